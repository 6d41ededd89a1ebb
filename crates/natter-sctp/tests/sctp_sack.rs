//! When natter's SCTP receiver acknowledges (RFC 9260 §6.2): at once for
//! a message's last fragment (a sender with nothing more queued would
//! otherwise wait SACK.Delay, the 200 ms a first message used to wait),
//! for a chunk that fills a gap (§6.7) and for DCEP; after SACK.Delay
//! for a lone middle fragment. Two natter associations on the in-memory
//! wire of `sctp_support`, under its virtual clock.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::chunk::{Chunk, Data, DataFlags, SACK};
use natter_sctp::sctp::Tsn;
use sctp_support::{natter_pair, packet, Natter, Wire};

/// RFC 9260 §16: SACK.Delay.
const SACK_DELAY: Duration = Duration::from_millis(200);

/// When b sent each SACK after `since`.
fn sacks_from_b(w: &Wire<Natter, Natter>, since: std::time::Instant) -> Vec<Duration> {
    w.wire
        .iter()
        .filter(|s| !s.from_a && s.at >= since && s.chunk_types().contains(&SACK))
        .map(|s| s.at - since)
        .collect()
}

/// A DATA fragment from a to b, as a's next TSNs would carry it.
fn fragment(w: &Wire<Natter, Natter>, offset: u32, beginning: bool, end: bool) -> Vec<u8> {
    fragment_of(w, offset, beginning, end, 53)
}

/// The same, of a message with payload protocol `ppid`.
fn fragment_of(w: &Wire<Natter, Natter>, offset: u32, beginning: bool, end: bool, ppid: u32) -> Vec<u8> {
    let first = w.b.assoc.peer().expect("established").initial_tsn;
    let payload = [7u8; 100];
    let data = Data {
        flags: DataFlags {
            immediate: false,
            unordered: false,
            beginning,
            end,
        },
        tsn: Tsn(first.0.wrapping_add(offset)),
        stream: 1,
        ssn: 0,
        ppid,
        payload: &payload,
    };
    packet(w.b.assoc.local_tag(), &[Chunk::Data(data)])
}

#[test]
fn a_lone_message_is_acknowledged_when_it_arrives() {
    let mut w = natter_pair();
    let start = w.now;
    w.a.assoc.send(1, 51, false, b"hello").unwrap();
    w.run_for(Duration::from_secs(1));
    // Sent at `start`, it arrived one latency later and the SACK left then.
    assert_eq!(sacks_from_b(&w, start).first(), Some(&w.latency));
}

#[test]
fn a_lone_middle_fragment_waits_for_the_sack_delay() {
    let mut w = natter_pair();
    let start = w.now;
    let first = fragment(&w, 0, true, false);
    w.inject_to_b(&first);
    w.run_for(Duration::from_secs(1));
    assert_eq!(sacks_from_b(&w, start).first(), Some(&SACK_DELAY));
}

/// RFC 8831 §8, RFC 9260 §6.2: DCEP (PPID 50) is acknowledged at once,
/// whether or not the chunk ends its message: the fragment that
/// [`a_lone_middle_fragment_waits_for_the_sack_delay`] sends, but of a
/// DCEP message, gets its SACK when it arrives.
#[test]
fn a_dcep_fragment_is_acknowledged_at_once() {
    let mut w = natter_pair();
    let start = w.now;
    let first = fragment_of(&w, 0, true, false, 50);
    w.inject_to_b(&first);
    w.run_for(Duration::from_secs(1));
    assert_eq!(sacks_from_b(&w, start).first(), Some(&Duration::ZERO));
}

#[test]
fn a_fragment_that_fills_a_gap_is_acknowledged_at_once() {
    let mut w = natter_pair();
    let start = w.now;
    // The second fragment first: a gap, reported at once (§6.7).
    let second = fragment(&w, 1, false, false);
    w.inject_to_b(&second);
    w.run_for(Duration::from_millis(50));
    assert_eq!(sacks_from_b(&w, start), vec![Duration::ZERO]);
    // Then the first, which fills it: acknowledged at once too, though
    // the message is not complete and it is the only packet since.
    let filled_at = w.now;
    let first = fragment(&w, 0, true, false);
    w.inject_to_b(&first);
    w.run_for(Duration::from_secs(1));
    assert_eq!(sacks_from_b(&w, filled_at).first(), Some(&Duration::ZERO));
}

/// A receive window filled by chunks held past a hole (a peer counts
/// the window without natter's per-chunk charge, so after a loss it
/// does fill it) still takes the chunk that fills the hole; before, the
/// cumulative TSN never moved again and the association stalled (seen
/// with Firefox).
#[test]
fn a_full_window_still_takes_the_chunk_that_fills_the_first_hole() {
    let mut w = natter_pair();
    // Past the hole at offset 0: fragments of one message until the
    // 1 MiB window has no room for another.
    let mut offset = 1;
    loop {
        let before = w.b.assoc.received_amount();
        let next = fragment(&w, offset, false, false);
        w.inject_to_b(&next);
        if w.b.assoc.received_amount() == before {
            break;
        }
        offset += 1;
    }
    let full = w.b.assoc.received_amount();
    let first = fragment(&w, 0, true, false);
    w.inject_to_b(&first);
    assert!(w.b.assoc.received_amount() > full, "the hole's chunk was dropped");
}
