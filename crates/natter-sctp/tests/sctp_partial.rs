//! natter's own SCTP, partial reliability (RFC 3758): messages with a
//! retransmission limit or a lifetime are abandoned exactly when their
//! policy says, FORWARD TSN moves the peer past them (dropping partial
//! reassemblies, delivering what waited behind them in order), a message
//! that expires before it is sent leaves no hole in its stream, and
//! reliable streams on the same association lose nothing. Two natter
//! associations on the in-memory wire under a virtual clock, and natter
//! sending to sctp-proto.

mod sctp_support;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use natter_sctp::sctp::association::{Reliability, State};
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::*;
use proptest::prelude::*;
use sctp_support::{dcep_open, Natter, Side, Wire};

fn established() -> Wire<Natter, Natter> {
    sctp_support::natter_pair()
}

/// A message that says which it is: its index, then a pattern.
fn message(index: u16, len: usize) -> Vec<u8> {
    let mut m = index.to_be_bytes().to_vec();
    m.extend((0..len.saturating_sub(2)).map(|i| (i as u8).wrapping_mul(11).wrapping_add(index as u8)));
    m
}

fn index_of(m: &[u8]) -> u16 {
    let i = u16::from_be_bytes([m[0], m[1]]);
    assert_eq!(m, message(i, m.len()), "message {i} arrived changed");
    i
}

/// The indices of the messages received, per stream.
fn received(n: &mut Natter) -> HashMap<u16, Vec<u16>> {
    let mut by_stream: HashMap<u16, Vec<u16>> = HashMap::new();
    while let Some(m) = n.assoc.poll_message() {
        by_stream.entry(m.stream).or_default().push(index_of(&m.data));
    }
    by_stream
}

/// Loses the next `n` packets with DATA that `a` sends, as the test sets.
fn lose_next(budget: Rc<Cell<u32>>) -> sctp_support::DropFilter {
    Box::new(move |from_a, types, _| {
        let n = budget.get();
        let lose = from_a && types.contains(&DATA) && n > 0;
        if lose {
            budget.set(n - 1);
        }
        lose
    })
}

/// How many times each DATA TSN went on the wire from `a`, per stream.
fn transmissions<A: Side, B: Side>(w: &Wire<A, B>) -> HashMap<u32, (u16, u32)> {
    let mut count: HashMap<u32, (u16, u32)> = HashMap::new();
    for s in w.wire.iter().filter(|s| s.from_a) {
        let p = Packet::parse(&s.bytes, ChecksumMode::ZeroAcceptable).unwrap();
        for c in p.chunks().flatten() {
            if let Ok(Chunk::Data(d)) = c.parse() {
                count.entry(d.tsn.0).or_insert((d.stream, 0)).1 += 1;
            }
        }
    }
    count
}

fn forward_tsns<A: Side, B: Side>(w: &Wire<A, B>) -> usize {
    w.wire
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&FORWARD_TSN))
        .count()
}

/// One message (one chunk) at a time, each losing a set number of
/// transmissions:
/// those lost more often than the policy retransmits are abandoned, the
/// others delivered, in order.
fn one_by_one(reliability: Reliability, losses: &[u32], delivered: &[u16]) {
    let mut w = established();
    let budget = Rc::new(Cell::new(0));
    w.drop = lose_next(budget.clone());
    for (i, lost) in losses.iter().enumerate() {
        budget.set(*lost);
        let now = w.now;
        w.a.assoc
            .send_with(now, 1, 53, false, &message(i as u16, 1000), reliability)
            .unwrap();
        // Karn's rule keeps the RTO backed off (up to 8 s) until a
        // message goes through on its first transmission.
        w.run_for(Duration::from_secs(200));
        assert_eq!(w.a.assoc.buffered_amount(), 0, "message {i} settled");
    }
    assert_eq!(received(&mut w.b).remove(&1).unwrap_or_default(), delivered);
    let abandoned = losses.len() - delivered.len();
    assert!(forward_tsns(&w) >= abandoned);
    if let Reliability::MaxRetransmits(n) = reliability {
        assert!(transmissions(&w).values().all(|(_, t)| *t <= 1 + u32::from(n)));
    }
    assert_eq!(w.a.assoc.state(), State::Established);
}

#[test]
fn max_retransmits_abandons_exactly_past_the_limit() {
    one_by_one(
        Reliability::MaxRetransmits(2),
        &[0, 1, 2, 3, 0, 5, 2, 4, 0],
        &[0, 1, 2, 4, 6, 8],
    );
}

#[test]
fn max_retransmits_zero_never_retransmits() {
    one_by_one(Reliability::MaxRetransmits(0), &[0, 1, 0, 1, 1, 0], &[0, 2, 5]);
}

/// T3-rtx fires 1 s after a loss, then 2 s later: a 1.5 s lifetime
/// survives one loss, not two; 0.5 s survives none. (The RTO is back to
/// 1 s after each message that went through at once.)
#[test]
fn max_lifetime_abandons_once_expired() {
    let long = Reliability::MaxLifetime(Duration::from_millis(1500));
    one_by_one(long, &[0, 1, 2, 0, 1, 3, 0, 1], &[0, 1, 3, 4, 6, 7]);
    let short = Reliability::MaxLifetime(Duration::from_millis(500));
    one_by_one(short, &[1, 0, 2, 0], &[1, 3]);
}

/// A message whose lifetime ends while it waits behind a bulk transfer
/// is never sent, and the ordered stream does not wait for it.
#[test]
fn a_message_expiring_before_it_is_sent_leaves_no_hole() {
    let mut w = established();
    let now = w.now;
    w.a.assoc.send(1, 53, false, &message(0, 200_000)).unwrap();
    w.a.assoc
        .send_with(
            now,
            1,
            53,
            false,
            &message(1, 5000),
            Reliability::MaxLifetime(Duration::from_millis(5)),
        )
        .unwrap();
    w.a.assoc.send(1, 53, false, &message(2, 100)).unwrap();
    w.run_for(Duration::from_secs(10));
    assert_eq!(received(&mut w.b).remove(&1).unwrap(), vec![0, 2]);
    assert_eq!(forward_tsns(&w), 0, "nothing in flight was abandoned");
    assert_eq!(w.a.assoc.buffered_amount(), 0);
}

/// An abandoned message of several fragments, one of which arrived: the
/// FORWARD TSN drops the partial reassembly at the receiver, and the
/// messages behind it on the stream come out in order.
#[test]
fn forward_tsn_drops_a_partial_message_and_unblocks_the_stream() {
    let mut w = established();
    // The second of the first message's four packets is lost.
    w.drop = Box::new(|from_a, types, n| from_a && types == [DATA] && n == 1);
    let now = w.now;
    let first = message(0, 4 * 1172);
    w.a.assoc
        .send_with(now, 1, 53, false, &first, Reliability::MaxRetransmits(0))
        .unwrap();
    for i in 1..5 {
        w.a.assoc.send(1, 53, false, &message(i, 500)).unwrap();
    }
    w.run_for(Duration::from_secs(30));
    assert_eq!(received(&mut w.b).remove(&1).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(w.b.assoc.received_amount(), 0, "the partial message was dropped");
    assert_eq!(forward_tsns(&w), 1);
    assert_eq!(w.a.assoc.buffered_amount(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Over loss, reordering and duplication, with a reliable ordered
    /// stream, an ordered stream that never retransmits and an unordered
    /// one that retransmits once: the reliable one loses nothing, the
    /// others deliver intact messages once, ordered ones in order, and no
    /// chunk goes more often than its policy allows.
    #[test]
    fn partial_and_reliable_streams_share_an_impaired_path(
        seed in any::<u64>(),
        loss_per_mille in 0u64..150,
        jitter_ms in 0u64..30,
        dup_per_mille in 0u64..100,
        sizes in proptest::collection::vec(1usize..6_000, 1..40),
    ) {
        let mut w = established();
        sctp_support::impair(&mut w, seed, loss_per_mille, jitter_ms, dup_per_mille);
        let now = w.now;
        for (i, n) in sizes.iter().enumerate() {
            let m = message(i as u16, *n + 2);
            w.a.assoc.send(1, 53, false, &m).unwrap();
            w.a.assoc.send_with(now, 2, 53, false, &m, Reliability::MaxRetransmits(0)).unwrap();
            w.a.assoc.send_with(now, 3, 53, true, &m, Reliability::MaxRetransmits(1)).unwrap();
        }
        w.run_for(Duration::from_secs(300));
        let mut got = received(&mut w.b);
        let all: Vec<u16> = (0..sizes.len() as u16).collect();
        prop_assert_eq!(got.remove(&1).unwrap_or_default(), all);
        let ordered = got.remove(&2).unwrap_or_default();
        prop_assert!(ordered.windows(2).all(|p| p[0] < p[1]), "{:?}", ordered);
        let mut unordered = got.remove(&3).unwrap_or_default();
        unordered.sort_unstable();
        let n = unordered.len();
        unordered.dedup();
        prop_assert_eq!(unordered.len(), n, "a message twice");
        for (stream, t) in transmissions(&w).values() {
            let max = match stream { 2 => 1, 3 => 2, _ => u32::MAX };
            prop_assert!(*t <= max, "stream {} chunk sent {} times", stream, t);
        }
        prop_assert_eq!(w.a.assoc.buffered_amount(), 0);
        prop_assert_eq!(w.b.assoc.received_amount(), 0);
    }
}

/// natter sends messages that are never retransmitted to sctp-proto
/// through 10% loss: sctp-proto takes the FORWARD TSNs, delivers the
/// rest in order, and the last message gets through.
#[test]
fn sctp_proto_follows_natters_forward_tsn() {
    let mut w = sctp_support::natter_and_proto();
    w.a.assoc.send(0, 50, false, &dcep_open("lossy")).unwrap();
    w.run_for(Duration::from_secs(1));
    w.drop = sctp_support::random_loss(17, 10);
    let now = w.now;
    for i in 0..200u16 {
        w.a.assoc
            .send_with(now, 0, 53, false, &message(i, 1000), Reliability::MaxRetransmits(0))
            .unwrap();
    }
    w.run_for(Duration::from_secs(60));
    w.drop = Box::new(|_, _, _| false);
    let now = w.now;
    w.a.assoc
        .send_with(now, 0, 53, false, &message(200, 1000), Reliability::MaxRetransmits(0))
        .unwrap();
    w.run_for(Duration::from_secs(10));
    let got: Vec<u16> =
        w.b.received
            .iter()
            .filter(|(_, ppid, _)| *ppid == 53)
            .map(|(.., data)| index_of(data))
            .collect();
    assert!(got.windows(2).all(|p| p[0] < p[1]), "{got:?}");
    assert!(got.len() < 200, "some were abandoned");
    assert!(got.len() > 100, "most arrived: {}", got.len());
    assert_eq!(got.last(), Some(&200));
    assert!(forward_tsns(&w) > 0);
    assert_eq!(w.a.assoc.buffered_amount(), 0);
}
