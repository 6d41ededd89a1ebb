//! natter's own SCTP association sets up with sctp-proto 0.10.8 (its
//! sans-IO endpoint and association) on an in-memory wire: each side's
//! packets are parsed by the other's independent implementation. natter initiating,
//! sctp-proto initiating, also with packets lost. Both at once (WebRTC's
//! simultaneous open, RFC 9260 §5.2.1) is natter against natter in
//! sctp_association.rs: sctp-proto 0.10.8 cannot (see [`Proto::client`]).

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Config, Event, State};
use natter_sctp::sctp::chunk::*;
use sctp_support::{dcep_open, random_loss, DropFilter, Natter, Proto, Wire};

/// sctp-proto sends its INIT at once if it connects, else waits for one.
fn wire(proto_connects: bool) -> Wire<Natter, Proto> {
    let now = Instant::now();
    let theirs = if proto_connects {
        Proto::client()
    } else {
        Proto::server()
    };
    Wire::new(now, Natter::new(Config::default(), 9, now), theirs)
}

fn up(w: &Wire<Natter, Proto>) {
    assert_eq!(w.a.assoc.state(), State::Established, "natter: {:?}", w.a.events);
    assert!(w.b.is_established(), "sctp-proto: {:?}", w.b.events);
    assert_eq!(w.a.events.iter().filter(|(_, e)| *e == Event::Connected).count(), 1);
}

fn run(proto_connects: bool, natter_connects: bool, drop: DropFilter) -> Wire<Natter, Proto> {
    let mut w = wire(proto_connects);
    w.drop = drop;
    if natter_connects {
        w.a.assoc.connect(w.now);
    }
    w.run_for(Duration::from_secs(20));
    w
}

#[test]
fn natter_initiates_and_sctp_proto_answers() {
    let w = run(false, true, Box::new(|_, _, _| false));
    up(&w);
    assert_eq!(w.sent_by(true), vec![vec![INIT], vec![COOKIE_ECHO]]);
    assert_eq!(w.sent_by(false)[..2], [vec![INIT_ACK], vec![COOKIE_ACK]]);
    // sctp-proto's INIT ACK told natter what it supports.
    let peer = w.a.assoc.peer().unwrap();
    assert!(peer.capabilities.partial_reliability && peer.capabilities.stream_reset);
    assert_ne!(peer.verification_tag, 0);
}

#[test]
fn sctp_proto_initiates_and_natter_answers() {
    let w = run(true, false, Box::new(|_, _, _| false));
    up(&w);
    assert_eq!(w.sent_by(false)[..2], [vec![INIT], vec![COOKIE_ECHO]]);
    assert_eq!(w.sent_by(true), vec![vec![INIT_ACK], vec![COOKIE_ACK]]);
}

#[test]
fn natter_retransmits_a_lost_init_and_cookie_echo_to_sctp_proto() {
    let w = run(
        false,
        true,
        Box::new(|from_a, types, n| from_a && n == 0 && (types == [INIT] || types == [COOKIE_ECHO])),
    );
    up(&w);
    assert_eq!(w.wire.iter().filter(|s| s.lost).count(), 2);
}

#[test]
fn sctp_proto_retransmits_when_natter_answers_are_lost() {
    let w = run(
        true,
        false,
        Box::new(|from_a, types, n| from_a && n == 0 && (types == [INIT_ACK] || types == [COOKIE_ACK])),
    );
    up(&w);
    assert_eq!(w.wire.iter().filter(|s| s.lost).count(), 2);
}

/// PPIDs of RFC 8831 §8.
const PPID_DCEP: u32 = 50;
const PPID_BINARY: u32 = 53;

/// The TSNs of the DATA chunks in a packet.
fn data_tsns(bytes: &[u8]) -> Vec<u32> {
    let Ok(p) = natter_sctp::sctp::Packet::parse(bytes, natter_sctp::sctp::ChecksumMode::Crc32c) else {
        return Vec::new();
    };
    p.chunks()
        .flatten()
        .filter_map(|c| match c.parse() {
            Ok(Chunk::Data(d)) => Some(d.tsn.0),
            _ => None,
        })
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// natter's association carries a DCEP OPEN and then 256 KiB messages to
/// sctp-proto, which reassembles them: DATA, SACK, T3-rtx and fast
/// retransmit against an independent receiver, with 5% loss.
fn natter_sends(loss_one_in: u64) {
    let mut w = run(false, true, Box::new(|_, _, _| false));
    up(&w);
    if loss_one_in > 0 {
        w.drop = random_loss(7, loss_one_in);
    }
    let open = dcep_open("bulk");
    // Stream 0: even, as the DTLS client opens (RFC 8832 §6).
    w.a.assoc.send(0, PPID_DCEP, false, &open).unwrap();
    let messages: Vec<Vec<u8>> = (0..3).map(|i| pattern(256 * 1024, i)).collect();
    for m in &messages {
        w.a.assoc.send(0, PPID_BINARY, false, m).unwrap();
    }
    w.run_for(Duration::from_secs(60));
    let got: Vec<&Vec<u8>> =
        w.b.received
            .iter()
            .filter(|(stream, ppid, _)| (*stream, *ppid) == (0, PPID_BINARY))
            .map(|(.., data)| data)
            .collect();
    assert_eq!(got.len(), messages.len(), "sctp-proto's events: {:?}", w.b.events);
    for (g, m) in got.iter().zip(&messages) {
        assert!(*g == m, "a message arrived changed");
    }
    assert_eq!(w.a.assoc.buffered_amount(), 0, "everything acknowledged");
    if loss_one_in > 0 {
        let lost = w.wire.iter().filter(|s| s.lost && s.from_a).count();
        assert!(lost > 10, "only {lost} of natter's packets lost");
        // Every lost DATA was sent again: some TSN went out twice.
        let mut tsns: Vec<u32> = w
            .wire
            .iter()
            .filter(|s| s.from_a)
            .flat_map(|s| data_tsns(&s.bytes))
            .collect();
        let sent = tsns.len();
        tsns.sort_unstable();
        tsns.dedup();
        assert!(sent > tsns.len(), "no retransmission");
    }
    // sctp-proto carried the harness's DCEP ACK (RFC 8832 §5.2) back.
    let ack = w.a.assoc.poll_message().expect("the DATA_CHANNEL_ACK");
    assert_eq!((ack.stream, ack.ppid, ack.data), (0, PPID_DCEP, vec![0x02]));
}

#[test]
fn natter_sends_256_kib_messages_to_sctp_proto() {
    natter_sends(0);
}

#[test]
fn natter_sends_to_sctp_proto_through_5_percent_loss() {
    natter_sends(20);
}

/// sctp-proto sends a DCEP OPEN and messages; natter's receiver reassembles
/// and SACKs (gap blocks under loss) so that sctp-proto's sender moves on.
fn sctp_proto_sends_to(loss_one_in: u64) {
    let mut w = run(true, false, Box::new(|_, _, _| false));
    up(&w);
    if loss_one_in > 0 {
        w.drop = random_loss(11, loss_one_in);
    }
    // Stream 0: even, as the DTLS client opens (RFC 8832 §6).
    w.b.send(0, PPID_DCEP, &dcep_open("bulk"));
    let messages: Vec<Vec<u8>> = (0..3).map(|i| pattern(100 * 1024, i)).collect();
    for m in &messages {
        w.b.send(0, PPID_BINARY, m);
    }
    w.run_for(Duration::from_secs(60));
    let got: Vec<_> = std::iter::from_fn(|| w.a.assoc.poll_message()).collect();
    assert_eq!(got.len(), 1 + messages.len(), "the OPEN, then the messages");
    assert_eq!((got[0].stream, got[0].ppid), (0, PPID_DCEP));
    for (g, m) in got[1..].iter().zip(&messages) {
        assert_eq!(g.ppid, PPID_BINARY);
        assert!(g.data == *m, "a message arrived changed");
    }
    assert_eq!(
        w.b.assoc().stream(0).unwrap().buffered_amount().unwrap(),
        0,
        "sctp-proto saw it all acknowledged"
    );
    if loss_one_in > 0 {
        // Losses on the way in left holes that natter's SACKs reported.
        assert!(w.wire.iter().any(|s| !s.from_a && s.lost));
        let gaps = w.wire.iter().filter(|s| s.from_a).any(|s| {
            natter_sctp::sctp::Packet::parse(&s.bytes, natter_sctp::sctp::ChecksumMode::Crc32c).is_ok_and(|p| {
                p.chunks()
                    .flatten()
                    .any(|c| matches!(c.parse(), Ok(Chunk::Sack(sack)) if !sack.gap_blocks.is_empty()))
            })
        });
        assert!(gaps, "no SACK with gap blocks");
    }
}

#[test]
fn sctp_proto_sends_to_natter() {
    sctp_proto_sends_to(0);
}

#[test]
fn sctp_proto_sends_to_natter_through_5_percent_loss() {
    sctp_proto_sends_to(20);
}
