//! PMTU probing (RFC 8899 DPLPMTUD, §6.2 for SCTP; RFC 8261 §5) between
//! two natter associations on the in-memory wire under a virtual clock.
//! Both start at BASE_PLPMTU (1200 bytes) and probe with HEARTBEAT and
//! PAD chunks up to MAX_PLPMTU (1400); the path carries 1400 bytes, then
//! mid-transfer only 1200, larger packets silently lost (an MTU drop, a
//! black hole). Nothing is lost, duplicated or reordered, the transfer
//! completes, the sender falls back to 1200 and its new search settles
//! there; no DATA packet ever exceeds the PLPMTU in use. Against
//! sctp-proto 0.10.8, which drops the PAD probes, the search ends at the
//! base.

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Config, PmtudState, State};
use natter_sctp::sctp::chunk::{DATA, HEARTBEAT, PAD};
use sctp_support::{natter_pair, Natter, Side, Wire};

const BASE: usize = 1200;
const MAX: usize = 1400;
const MESSAGES: usize = 300;
const STREAMS: [u16; 2] = [1, 2];

/// Message `i` of `stream`: sizes from 50 to 2,949 bytes, so that small
/// ones and the tails of large ones share packets.
fn message(stream: u16, i: usize) -> Vec<u8> {
    let len = 50 + (i * 397 + usize::from(stream) * 131) % 2_900;
    let mut m = vec![stream as u8, (i >> 8) as u8, i as u8];
    m.extend((3..len).map(|k| (k as u8).wrapping_mul(29).wrapping_add(i as u8)));
    m
}

fn config() -> Config {
    Config {
        max_packet_size: BASE,
        max_plpmtu: Some(MAX),
        ..Config::default()
    }
}

/// What b has received, per stream.
fn read(w: &mut Wire<Natter, Natter>, got: &mut [Vec<Vec<u8>>; 3]) {
    while let Some(m) = w.b.assoc.poll_message() {
        got[usize::from(m.stream)].push(m.data);
    }
}

#[test]
fn an_mtu_drop_mid_transfer_falls_back_without_losing_a_message() {
    let now = Instant::now();
    let mut w = Wire::new(now, Natter::new(config(), 1, now), Natter::new(config(), 2, now));
    w.latency = Duration::from_millis(20);
    w.mtu = MAX;
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.a.assoc.state(), State::Established);

    // The first probe is MAX_PLPMTU, which crosses: one round trip.
    assert_eq!(w.a.assoc.pmtu(), MAX);
    assert_eq!(w.a.assoc.pmtud_state(), Some(PmtudState::SearchComplete));
    let probe = w
        .wire
        .iter()
        .find(|s| s.from_a && s.chunk_types() == [HEARTBEAT, PAD])
        .expect("a probe went");
    assert_eq!(probe.bytes.len(), MAX, "a probe is exactly the size it tries");

    for i in 0..MESSAGES {
        for stream in STREAMS {
            w.a.assoc.send(stream, 53, false, &message(stream, i)).unwrap();
        }
    }
    let mut got: [Vec<Vec<u8>>; 3] = Default::default();
    w.run_for(Duration::from_millis(300));
    read(&mut w, &mut got);
    let sent_so_far = w.wire.len();
    let big = w.wire[..sent_so_far]
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&DATA) && s.bytes.len() > BASE)
        .count();
    assert!(big > 0, "no DATA packet used the larger PLPMTU");
    let done: usize = got.iter().map(Vec::len).sum();
    assert!(
        done < MESSAGES * STREAMS.len() / 2,
        "the transfer is still on ({done} read)"
    );

    // The path now carries 1200 bytes; larger packets vanish.
    w.mtu = BASE;
    let mut fell_back_at = None;
    for _ in 0..20_000 {
        w.run_for(Duration::from_millis(10));
        read(&mut w, &mut got);
        if fell_back_at.is_none() && w.a.assoc.stats().pmtu_black_holes > 0 {
            fell_back_at = Some(w.wire.len());
        }
        if w.a.assoc.buffered_amount() == 0 {
            break;
        }
    }
    for stream in STREAMS {
        let expect: Vec<Vec<u8>> = (0..MESSAGES).map(|i| message(stream, i)).collect();
        assert!(
            got[usize::from(stream)] == expect,
            "stream {stream}: {} messages, not all {MESSAGES} once in order",
            got[usize::from(stream)].len()
        );
    }
    let fell_back_at = fell_back_at.expect("the black hole was detected");
    let lost = w.wire[sent_so_far..].iter().filter(|s| s.lost).count();
    assert!(lost > 0, "the drop lost packets");
    // After the fall back, DATA fits the base size.
    let oversized: Vec<usize> = w.wire[fell_back_at..]
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&DATA) && s.bytes.len() > BASE)
        .map(|s| s.bytes.len())
        .collect();
    assert!(
        oversized.is_empty(),
        "DATA past the PLPMTU after the fall back: {oversized:?}"
    );
    assert!(
        w.wire.iter().all(|s| s.bytes.len() <= MAX),
        "a packet larger than MAX_PLPMTU"
    );

    // The new search (old size first, then halving) settles on the base.
    w.run_for(Duration::from_secs(60));
    assert_eq!(w.a.assoc.pmtu(), BASE);
    assert_eq!(w.a.assoc.pmtud_state(), Some(PmtudState::SearchComplete));
    let stats = w.a.assoc.stats();
    assert_eq!(stats.pmtu_black_holes, 1, "{stats:?}");
    assert_eq!(w.a.assoc.state(), State::Established);
    assert_eq!(w.b.assoc.state(), State::Established);
}

#[test]
fn probing_is_off_unless_configured() {
    let mut w = natter_pair();
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.a.assoc.pmtu(), 1200);
    assert_eq!(w.a.assoc.pmtud_state(), None);
    assert!(w.wire.iter().all(|s| !s.chunk_types().contains(&PAD)), "a probe went");
}

/// Runs 120 s with every probe unanswered: MAX_PROBES (3) of each size
/// tried (1400, 1300, 1248, 1224, 1212, then the interval is under 16
/// bytes), the search complete at the base. Then sends 20 messages on
/// stream 1 for 5 s: packets stay within the base, no black hole counted.
fn unanswered_probes<B: Side>(w: &mut Wire<Natter, B>) {
    w.run_for(Duration::from_secs(120));
    assert_eq!(w.a.assoc.state(), State::Established);
    assert_eq!(w.a.assoc.pmtud_state(), Some(PmtudState::SearchComplete));
    assert_eq!(w.a.assoc.pmtu(), BASE);
    let probes = w
        .wire
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&PAD))
        .count();
    assert_eq!(probes, 15);
    for i in 0..20 {
        w.a.assoc.send(1, 53, false, &message(1, i)).unwrap();
    }
    w.run_for(Duration::from_secs(5));
    assert_eq!(w.a.assoc.stats().pmtu_black_holes, 0);
    assert!(w
        .wire
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&DATA))
        .all(|s| s.bytes.len() <= BASE));
}

/// A peer that drops every probe (as sctp-proto 0.10.8 does, see
/// `sctp_proto_drops_the_probes_and_packets_stay_at_the_base`): the
/// search gives up size by size, packets stay at the base, data flows,
/// and nothing counts as a black hole.
#[test]
fn a_peer_that_drops_probes_leaves_packets_at_the_base() {
    let now = Instant::now();
    let mut w = Wire::new(now, Natter::new(config(), 1, now), Natter::new(config(), 2, now));
    w.drop = Box::new(|_, types, _| types.contains(&PAD));
    w.a.assoc.connect(w.now);
    unanswered_probes(&mut w);
    let mut got: [Vec<Vec<u8>>; 3] = Default::default();
    read(&mut w, &mut got);
    assert!(got[1]
        .iter()
        .eq((0..20).map(|i| message(1, i)).collect::<Vec<_>>().iter()));
}

/// Against sctp-proto 0.10.8, on a path that loses nothing: it refuses
/// every packet with a chunk type it does not know, PAD (RFC 4820)
/// included, so no probe is answered; natter's search gives up size by
/// size and completes at the base, and data flows in packets of at most
/// 1200 bytes.
#[test]
fn sctp_proto_drops_the_probes_and_packets_stay_at_the_base() {
    let mut w = sctp_support::natter_and_proto_with(config());
    unanswered_probes(&mut w);
    assert!(w.wire.iter().all(|s| !s.lost), "the wire lost nothing");
    let got: Vec<Vec<u8>> = w.b.received.iter().map(|(.., data)| data.clone()).collect();
    assert_eq!(got, (0..20).map(|i| message(1, i)).collect::<Vec<_>>());
}
