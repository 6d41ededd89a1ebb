//! Zero window probing (RFC 9260 §6.1 A, §6.2): a receiver that stops
//! reading closes its window; with nothing in flight the sender may send
//! one DATA chunk, the receiver drops it and SACKs its window again, and
//! the probes go on, one RTO apart with the RTO backed off. While SACKs
//! answer them, unanswered probes are no errors (§6.1 A), so a reader
//! that pauses for minutes does not get its association aborted, and the
//! transfer resumes when it reads again. Two natter associations on the
//! in-memory wire under a virtual clock.

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Config, State};
use natter_sctp::sctp::chunk::{Chunk, DATA, SACK};
use sctp_support::{chunks_of, Natter, Wire};

const WINDOW: u32 = 64 * 1024;
const MESSAGES: usize = 40;
/// A pause far longer than Path.Max.Retrans (5) T3-rtx expiries take,
/// so counting probes as errors would abort the association.
const PAUSE: Duration = Duration::from_secs(300);

fn message(i: usize) -> Vec<u8> {
    (0..16_000)
        .map(|k| (k as u8).wrapping_mul(7).wrapping_add(i as u8))
        .collect()
}

/// The DATA chunks in a packet.
fn data_chunks(bytes: &[u8]) -> usize {
    chunks_of(bytes, |c| matches!(c, Chunk::Data(_)).then_some(())).len()
}

/// The a_rwnd of each SACK in a packet.
fn sack_windows(bytes: &[u8]) -> Vec<u32> {
    chunks_of(bytes, |c| match c {
        Chunk::Sack(s) => Some(s.a_rwnd),
        _ => None,
    })
}

#[test]
fn a_closed_window_is_probed_on_the_rto_until_the_reader_reads_again() {
    let now = Instant::now();
    let small = Config {
        receive_window: WINDOW,
        ..Config::default()
    };
    let mut w = Wire::new(now, Natter::new(Config::default(), 1, now), Natter::new(small, 2, now));
    w.latency = Duration::from_millis(20);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.a.assoc.state(), State::Established);
    for i in 0..MESSAGES {
        w.a.assoc.send(1, 53, false, &message(i)).unwrap();
    }

    // b reads nothing: its window shuts within a few round trips.
    w.run_for(Duration::from_secs(2));
    let held = w.b.assoc.received_amount();
    assert!(
        held >= WINDOW as usize * 3 / 4,
        "only {held} bytes held: the window is open"
    );
    let shut_at = w.now;
    let mark = w.wire.len();
    w.run_for(PAUSE);
    let paused = &w.wire[mark..];

    // §6.1 A: every packet of DATA in the pause is a probe of one chunk,
    // and each is answered by a SACK that still shows no room (§6.2: the
    // receiver drops it and SACKs at once).
    let probes: Vec<Instant> = paused
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&DATA))
        .map(|s| {
            assert_eq!(data_chunks(&s.bytes), 1, "a zero window probe carries one chunk");
            s.at
        })
        .collect();
    assert!(probes.len() >= 4, "probes go on while the window is shut: {probes:?}");
    let windows: Vec<u32> = paused
        .iter()
        .filter(|s| !s.from_a && s.chunk_types().contains(&SACK))
        .flat_map(|s| sack_windows(&s.bytes))
        .collect();
    assert!(
        windows.len() >= probes.len(),
        "{} SACKs for {} probes",
        windows.len(),
        probes.len()
    );
    assert!(
        windows.iter().all(|rwnd| (*rwnd as usize) < 16_000),
        "the window stayed shut: {windows:?}"
    );
    // Probes one RTO apart (RTO.Min 1 s here), the RTO doubled each time.
    let gaps: Vec<Duration> = probes.windows(2).map(|p| p[1] - p[0]).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_secs(1)),
        "probes closer than RTO.Min: {gaps:?} (the window shut at {shut_at:?})"
    );
    assert!(
        gaps.windows(2).all(|g| g[1] >= g[0]),
        "the probe interval grows (backed off): {gaps:?}"
    );
    // Unanswered probes are no errors while SACKs come (§6.1 A).
    assert_eq!(
        w.a.assoc.state(),
        State::Established,
        "the sender gave up on a paused reader"
    );
    assert_eq!(w.b.assoc.state(), State::Established);
    assert!(
        w.b.assoc.received_amount() <= held + 1200,
        "probes grew what b holds: {held} -> {}",
        w.b.assoc.received_amount()
    );

    // b reads again: its window update brings the rest, all in order.
    let resumed_at = w.now;
    let mut got = Vec::new();
    for _ in 0..2_000 {
        while let Some(m) = w.b.assoc.poll_message() {
            got.push(m.data);
        }
        if got.len() == MESSAGES {
            break;
        }
        w.run_for(Duration::from_millis(50));
    }
    assert!(
        got.iter().eq((0..MESSAGES).map(message).collect::<Vec<_>>().iter()),
        "b got {} of {MESSAGES} messages, or not once each in order",
        got.len()
    );
    let took = w.now - resumed_at;
    assert!(
        took < Duration::from_secs(5),
        "the transfer resumed on b's window update, not on a backed-off probe: {took:?}"
    );
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.a.assoc.buffered_amount(), 0, "the last SACK freed a's buffer");
    // Each probe after the first went on T3-rtx: counted as a window
    // probe, neither as loss nor as an error.
    let stats = w.a.assoc.stats();
    assert_eq!(stats.t3_expiries, 0, "{stats:?}");
    assert!(
        stats.zero_window_probes as usize >= probes.len() - 1,
        "{stats:?}, {} probes",
        probes.len()
    );
    assert_eq!(w.a.assoc.state(), State::Established);
}
