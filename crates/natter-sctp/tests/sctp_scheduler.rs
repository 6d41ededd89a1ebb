//! natter's own SCTP stream scheduler (RFC 8260 §3): streams take turns
//! by message, so a chat message sent during a 4 MiB bulk transfer on
//! another stream waits for at most the rest of the bulk's current
//! message, not for the whole transfer; and turns are weighted by DCEP
//! priority (RFC 8831 §6.4, RFC 8832 §5.1), equal priorities being plain
//! round robin. Two natter associations on the in-memory wire under a
//! virtual clock; what is asserted is what crossed the wire.

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::chunk::*;
use natter_sctp::Priority;
use sctp_support::path::{Link, Path, WIRE_OVERHEAD};
use sctp_support::{chunks_of, Natter, Wire};

/// The bulk: 4 MiB in 16 KiB messages, as a file goes over a data
/// channel (with DATA, not I-DATA, a message's fragments are sent back to
/// back, RFC 9260 §6.9, so a message is the unit a turn can take).
const BULK_MESSAGE: usize = 16 * 1024;
const BULK: usize = 4 * 1024 * 1024;

/// The streams of the DATA chunks in a packet, with whether each is a
/// message's first fragment.
fn data_in(bytes: &[u8]) -> Vec<(u16, bool)> {
    chunks_of(bytes, |c| match c {
        Chunk::Data(d) => Some((d.stream, d.flags.beginning)),
        _ => None,
    })
}

/// The streams of the messages a side began to send, in the order their
/// first fragments went (first transmissions only).
fn message_order(w: &Wire<Natter, Natter>) -> Vec<u16> {
    let mut seen = std::collections::HashSet::new();
    w.wire
        .iter()
        .filter(|s| s.from_a)
        .flat_map(|s| {
            chunks_of(&s.bytes, |c| match c {
                Chunk::Data(d) if d.flags.beginning => Some((d.tsn.0, d.stream)),
                _ => None,
            })
        })
        .filter(|(tsn, _)| seen.insert(*tsn))
        .map(|(_, stream)| stream)
        .collect()
}

/// Runs `span` in 10 ms steps, reading what b received (so its window
/// stays open), as (stream, length).
fn run_reading(w: &mut Wire<Natter, Natter>, span: Duration, read: &mut Vec<(u16, usize)>) {
    for _ in 0..span.as_millis() / 10 {
        w.run_for(Duration::from_millis(10));
        while let Some(m) = w.b.assoc.poll_message() {
            read.push((m.stream, m.data.len()));
            w.b.assoc.recycle(m.data);
        }
    }
}

#[test]
fn a_chat_message_is_not_stuck_behind_a_bulk_transfer() {
    let mut w = sctp_support::natter_pair();
    w.latency = Duration::from_millis(25);
    for i in 0..BULK / BULK_MESSAGE {
        w.a.assoc.send(1, 53, false, &vec![i as u8; BULK_MESSAGE]).unwrap();
    }
    let per_message = BULK_MESSAGE.div_ceil(1200 - 12 - 16);
    let mut read = Vec::new();
    let mut worst = 0;
    let mut queued_at = Vec::new();
    for chat in 0..10u8 {
        run_reading(&mut w, Duration::from_millis(100), &mut read);
        let from = w.wire.len();
        queued_at.push(from);
        w.a.assoc.send(2, 51, false, &[b'c', chat]).unwrap();
        run_reading(&mut w, Duration::from_millis(100), &mut read);
        // DATA packets a sent after the chat message was queued and
        // before the one that carried it.
        let after: Vec<Vec<(u16, bool)>> = w.wire[from..]
            .iter()
            .filter(|s| s.from_a)
            .map(|s| data_in(&s.bytes))
            .filter(|d| !d.is_empty())
            .collect();
        let ahead = after
            .iter()
            .position(|d| d.iter().any(|(s, _)| *s == 2))
            .expect("the chat message went within 100 ms");
        assert!(
            ahead <= per_message,
            "chat message {chat}: {ahead} DATA packets ahead of it, more than one bulk message ({per_message})"
        );
        worst = worst.max(ahead);
    }
    run_reading(&mut w, Duration::from_secs(60), &mut read);
    assert_eq!(
        read.iter().filter(|(s, _)| *s == 1).count(),
        BULK / BULK_MESSAGE,
        "the bulk arrived"
    );
    assert_eq!(w.a.assoc.buffered_amount(), 0);
    let chats: Vec<usize> = read
        .iter()
        .enumerate()
        .filter(|(_, (s, _))| *s == 2)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(chats.len(), 10);
    assert!(
        *chats.last().unwrap() < read.len() - 1,
        "the chat messages came before the bulk ended"
    );
    // First-come first-served would have sent every bulk packet still
    // unsent when the chat message was queued before it.
    let fifo: Vec<usize> = queued_at
        .iter()
        .map(|from| {
            w.wire[*from..]
                .iter()
                .filter(|s| s.from_a && data_in(&s.bytes).iter().any(|(st, _)| *st == 1))
                .count()
        })
        .collect();
    assert!(fifo.iter().all(|n| *n > 10 * per_message), "{fifo:?}");
    println!(
        "4 MiB bulk in {} KiB messages, 25 ms one way: at most {worst} DATA packets ahead of a chat message \
         (bound {per_message}); first-come first-served would have had {fifo:?}",
        BULK_MESSAGE / 1024,
    );
}

#[test]
fn equal_priorities_take_turns_message_by_message() {
    let mut w = sctp_support::natter_pair();
    for stream in [1u16, 2, 3] {
        for _ in 0..10 {
            w.a.assoc.send(stream, 53, false, &[stream as u8; 3000]).unwrap();
        }
    }
    w.run_for(Duration::from_secs(10));
    let order = message_order(&w);
    let expected: Vec<u16> = (0..10).flat_map(|_| [1, 2, 3]).collect();
    assert_eq!(order, expected);
}

#[test]
fn turns_are_weighted_by_dcep_priority() {
    let mut w = sctp_support::natter_pair();
    w.a.assoc.set_priority(1, Priority::NORMAL.0);
    w.a.assoc.set_priority(2, Priority::EXTRA_HIGH.0);
    w.a.assoc.set_priority(3, Priority::HIGH.0);
    for stream in [1u16, 2, 3] {
        for _ in 0..100 {
            w.a.assoc.send(stream, 53, false, &[stream as u8; 500]).unwrap();
        }
    }
    w.run_for(Duration::from_secs(10));
    let order = message_order(&w);
    assert_eq!(order.len(), 300);
    // While all three have messages queued: 1024 : 512 : 256.
    let first: Vec<u16> = order[..70].to_vec();
    let count = |s| first.iter().filter(|x| **x == s).count();
    assert_eq!((count(2), count(3), count(1)), (40, 20, 10), "{first:?}");
}

/// The bench's case (bench/datachannel, natter to Chromium at 50 ms RTT):
/// a bulk transfer in 256 KiB messages saturating a 1 MB/s path, each
/// message taking longer to cross it than the 50 ms between two chat
/// messages on another stream. Charged by message, the chat stream got
/// one turn per bulk message and its queue grew for the whole transfer
/// (17 s in the bench); charged by bytes (RFC 8260 §3.6), every chat
/// message goes once the bulk message under way has gone, so it arrives
/// within one bulk message's time on the wire plus the path's delay.
#[test]
fn chat_messages_keep_up_beside_a_bulk_transfer_of_big_messages() {
    const RATE: u64 = 1_000_000;
    const ONE_WAY: Duration = Duration::from_millis(25);
    const MESSAGE: usize = 256 * 1024;
    const CHAT_EVERY: Duration = Duration::from_millis(50);
    let now = Instant::now();
    // A drop-tail queue of one bandwidth-delay product.
    let link = |seed| Link::new(now, RATE, ONE_WAY, RATE / 20, seed);
    let mut p = Path::new(now, link(1), link(2), MESSAGE);
    // As many bulk messages queued as the path keeps (8 MiB): the chat
    // waits behind none of them, only behind the one being sent.
    p.to_send = u64::MAX;
    p.run_until(p.now + Duration::from_secs(3));
    let mut queued = Vec::new();
    for i in 0..200u32 {
        queued.push(p.now);
        let mut chat = vec![0u8; 100];
        chat[..4].copy_from_slice(&i.to_be_bytes());
        p.a.send(2, 51, false, &chat).expect("a queues the chat message");
        p.run_until(p.now + CHAT_EVERY);
    }
    let bulk_before = p.delivered.len();
    p.run_until(p.now + Duration::from_secs(2));
    assert_eq!(p.misdelivered, 0);
    assert!(p.delivered.len() > bulk_before, "the bulk transfer went on");
    assert_eq!(p.beside.len(), queued.len(), "every chat message arrived");
    // One bulk message on the wire (fragments of 1172 bytes, each with
    // 28 bytes of SCTP headers and the DTLS/UDP/IP overhead), plus one
    // round trip: the chat message's way across and, should it be lost,
    // the SACKs that report it missing; plus the bottleneck's queue.
    let packets = MESSAGE.div_ceil(1172) as u64;
    let message_time = Duration::from_nanos((MESSAGE as u64 + packets * (28 + WIRE_OVERHEAD)) * 1_000_000_000 / RATE);
    let bound = message_time + 2 * ONE_WAY + Duration::from_nanos(RATE / 20 * 1_000_000_000 / RATE);
    let mut latencies: Vec<Duration> = p
        .beside
        .iter()
        .enumerate()
        .map(|(i, (at, stream, data))| {
            assert_eq!(*stream, 2);
            assert_eq!(data[..4], (i as u32).to_be_bytes(), "chat messages in order");
            *at - queued[i]
        })
        .collect();
    latencies.sort();
    let (p50, max) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
    println!(
        "chat every {CHAT_EVERY:?} beside 256 KiB messages at 1 MB/s, 50 ms RTT: p50 {p50:?}, max {max:?} \
         (bound {bound:?}); bulk {:.0} KB/s; {} packets dropped by the queue",
        p.goodput(now + Duration::from_secs(3), p.now) / 1e3,
        p.a_to_b.dropped()
    );
    assert!(max <= bound, "a chat message waited {max:?}, more than {bound:?}");
}
