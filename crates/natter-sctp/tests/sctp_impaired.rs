//! natter's own SCTP over bad paths (issue 15, acceptance 2): a table of
//! loss (0.5% to 10%), round-trip times (10 to 300 ms), reordering
//! (jitter larger than the packet spacing) and duplication (2%), each
//! with three ordered streams of different DCEP priority sharing the
//! association, a receiver that stops reading until its window is shut
//! (zero window, RFC 9260 §6.1), and a stream reset (RFC 6525) while its
//! data is still in flight. Nothing is lost, duplicated or reordered on
//! any stream, and the reset comes after the last message sent before
//! it. Two natter associations on the in-memory wire under a virtual
//! clock, every case seeded.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::association::{Config, Event, State};
use natter_sctp::Priority;
use sctp_support::{Natter, Wire};

const WINDOW: u32 = 64 * 1024;
const MESSAGES: usize = 40;

/// Message `i` of `stream`: its length varies, its bytes say which it is.
fn message(stream: u16, i: usize) -> Vec<u8> {
    let len = 2 + (i * 2_777 + usize::from(stream) * 911) % 12_000;
    let mut m = vec![stream as u8, i as u8];
    m.extend((2..len).map(|k| (k as u8).wrapping_mul(31).wrapping_add(i as u8)));
    m
}

fn case(seed: u64, loss_per_mille: u64, one_way_ms: u64) {
    let label = format!("seed {seed}, loss {loss_per_mille}‰, RTT {} ms", 2 * one_way_ms);
    let now = std::time::Instant::now();
    let small = Config {
        receive_window: WINDOW,
        ..Config::default()
    };
    let mut w = Wire::new(now, Natter::new(Config::default(), 1, now), Natter::new(small, 2, now));
    w.latency = Duration::from_millis(one_way_ms);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.a.assoc.state(), State::Established, "{label}");
    // Reordering: jitter up to 20 ms, far more than packets are apart.
    sctp_support::impair(&mut w, seed, loss_per_mille, 20, 20);

    let streams = [(1u16, Priority::NORMAL), (2, Priority::HIGH), (3, Priority::EXTRA_HIGH)];
    for (stream, priority) in streams {
        w.a.assoc.set_priority(stream, priority.0);
    }
    for i in 0..MESSAGES {
        for (stream, _) in streams {
            w.a.assoc.send(stream, 53, false, &message(stream, i)).unwrap();
        }
    }
    // Stream 1 closes with all its messages still queued.
    let t = w.now;
    w.a.assoc.reset_streams(t, &[1]).unwrap();

    // b reads nothing for a while: its window shuts.
    w.run_for(Duration::from_secs(8));
    let held = w.b.assoc.received_amount();
    assert!(
        held >= WINDOW as usize * 3 / 4,
        "{label}: only {held} bytes held, the window is open"
    );
    // One packet past the window, and the eighth a chunk that fills the
    // first hole may still take (receive.rs).
    assert!(
        held <= WINDOW as usize + WINDOW as usize / 8 + 1200,
        "{label}: {held} bytes held past a {WINDOW}-byte window"
    );
    assert!(w.a.assoc.buffered_amount() > 0, "{label}: the window held a back");

    let mut got: [Vec<Vec<u8>>; 4] = Default::default();
    for _ in 0..6_000 {
        w.run_for(Duration::from_millis(50));
        while let Some(m) = w.b.assoc.poll_message() {
            got[usize::from(m.stream)].push(m.data);
        }
        let reset = w.b.events.iter().any(|(_, e)| *e == Event::IncomingStreamReset(1));
        assert!(
            !reset || got[1].len() == MESSAGES,
            "{label}: the reset came with {} of stream 1's messages read",
            got[1].len()
        );
        let done = w.a.events.iter().any(|(_, e)| *e == Event::OutgoingStreamReset(1));
        if done && w.a.assoc.buffered_amount() == 0 {
            break;
        }
    }
    for (stream, _) in streams {
        let expect: Vec<Vec<u8>> = (0..MESSAGES).map(|i| message(stream, i)).collect();
        assert!(
            got[usize::from(stream)] == expect,
            "{label}: stream {stream} got {} messages, not all {MESSAGES} once in order",
            got[usize::from(stream)].len()
        );
    }
    let b_events: Vec<Event> = w.b.events.iter().map(|(_, e)| *e).collect();
    assert_eq!(b_events[1..], [Event::IncomingStreamReset(1)], "{label}");
    assert_eq!(w.a.assoc.buffered_amount(), 0, "{label}");
    assert_eq!(w.a.assoc.state(), State::Established, "{label}");
    let lost = w.wire.iter().filter(|s| s.lost).count();
    assert!(loss_per_mille < 20 || lost > 0, "{label}: nothing was lost");
}

/// One loss rate at 10, 100 and 300 ms RTT, each with its own seed.
fn at_every_rtt(loss_per_mille: u64) {
    for (i, one_way_ms) in [5, 50, 150].into_iter().enumerate() {
        case(loss_per_mille * 10 + i as u64, loss_per_mille, one_way_ms);
    }
}

#[test]
fn half_a_percent_loss() {
    at_every_rtt(5);
}

#[test]
fn two_percent_loss() {
    at_every_rtt(20);
}

#[test]
fn five_percent_loss() {
    at_every_rtt(50);
}

#[test]
fn ten_percent_loss() {
    at_every_rtt(100);
}
