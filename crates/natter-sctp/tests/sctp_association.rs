//! natter's own SCTP association setup (RFC 9260 §5), two natter
//! associations on an in-memory wire under a virtual clock: the four-way
//! handshake, both sides opening at once (§5.2.1, as WebRTC does), lost
//! INIT / INIT ACK / COOKIE ECHO / COOKIE ACK retransmitted on T1 with
//! the RTO backing off (§6.3), stale cookies (§5.2.6), a stray INIT, and
//! garbage.

mod sctp_support;

use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{CloseReason, Config, DropReason, Event, State};
use natter_sctp::sctp::cause::ErrorCause;
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::param::Param;
use natter_sctp::sctp::wire::TlvList;
use natter_sctp::sctp::*;
use sctp_support::{with_first_chunk, Natter, Wire};

const MS: Duration = Duration::from_millis(1);

fn pair(config_a: Config, config_b: Config) -> Wire<Natter, Natter> {
    let now = Instant::now();
    Wire::new(now, Natter::new(config_a, 1, now), Natter::new(config_b, 2, now))
}

fn connected(w: &Wire<Natter, Natter>) {
    let (a, b) = (&w.a.assoc, &w.b.assoc);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    // Each side's tag is the one the other puts in its packets.
    assert_eq!(a.peer().unwrap().verification_tag, b.local_tag());
    assert_eq!(b.peer().unwrap().verification_tag, a.local_tag());
    assert_ne!(a.local_tag(), 0);
    let connects = |e: &[(Instant, Event)]| e.iter().filter(|(_, e)| *e == Event::Connected).count();
    assert_eq!(connects(&w.a.events), 1, "a: {:?}", w.a.events);
    assert_eq!(connects(&w.b.events), 1, "b: {:?}", w.b.events);
}

fn connected_at(n: &Natter) -> Instant {
    n.events
        .iter()
        .find(|(_, e)| *e == Event::Connected)
        .expect("connected")
        .0
}

#[test]
fn four_way_handshake() {
    let mut w = pair(Config::default(), Config::default());
    let start = w.now;
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(5));
    connected(&w);
    assert_eq!(w.sent_by(true), vec![vec![INIT], vec![COOKIE_ECHO]]);
    assert_eq!(w.sent_by(false), vec![vec![INIT_ACK], vec![COOKIE_ACK]]);
    // Two round trips of 20 ms for the initiator, 1.5 for the other.
    assert_eq!(connected_at(&w.a) - start, 40 * MS);
    assert_eq!(connected_at(&w.b) - start, 30 * MS);
    // The INIT went with tag 0, the rest with the receiver's tag.
    let tag = |i: usize| u32::from_be_bytes(w.wire[i].bytes[4..8].try_into().unwrap());
    assert_eq!(tag(0), 0);
    assert_eq!(tag(1), w.a.assoc.local_tag());
    assert_eq!(tag(2), w.b.assoc.local_tag());
    let peer = w.a.assoc.peer().unwrap();
    assert!(peer.capabilities.partial_reliability && peer.capabilities.stream_reset);
}

#[test]
fn both_sides_open_at_once() {
    let mut w = pair(Config::default(), Config::default());
    let start = w.now;
    w.a.assoc.connect(w.now);
    w.b.assoc.connect(w.now);
    w.run_for(Duration::from_secs(5));
    connected(&w);
    // §5.2.1: each INIT ACK repeats the tag of its sender's own INIT, so
    // both cookies name the same pair of tags; no retransmission.
    for from_a in [true, false] {
        let sent = w.sent_by(from_a);
        assert_eq!(sent.iter().filter(|t| **t == [INIT]).count(), 1);
        assert!(
            sent.contains(&vec![INIT_ACK]) && sent.contains(&vec![COOKIE_ECHO]),
            "{sent:?}"
        );
    }
    assert!(connected_at(&w.a) - start <= 40 * MS);
    assert!(connected_at(&w.b) - start <= 40 * MS);
}

#[test]
fn both_open_with_one_init_lost() {
    let mut w = pair(Config::default(), Config::default());
    w.drop = Box::new(|from_a, types, n| from_a && types == [INIT] && n == 0);
    w.a.assoc.connect(w.now);
    w.b.assoc.connect(w.now);
    w.run_for(Duration::from_secs(5));
    connected(&w);
}

/// Loses the first packet that has exactly `lose` from the side named,
/// and checks that setup still completes, after one RTO (1 s).
fn survives_loss(lose: u8, from_a: bool) {
    let mut w = pair(Config::default(), Config::default());
    let start = w.now;
    w.drop = Box::new(move |a, types, n| a == from_a && types == [lose] && n == 0);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(10));
    connected(&w);
    assert!(w.wire.iter().any(|s| s.lost), "nothing was lost");
    let took = connected_at(&w.a) - start;
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
        "{took:?}"
    );
}

#[test]
fn a_lost_init_is_sent_again_on_t1_init() {
    survives_loss(INIT, true);
}

#[test]
fn a_lost_init_ack_is_recovered_by_t1_init() {
    survives_loss(INIT_ACK, false);
}

#[test]
fn a_lost_cookie_echo_is_sent_again_on_t1_cookie() {
    survives_loss(COOKIE_ECHO, true);
}

#[test]
fn a_lost_cookie_ack_is_answered_again() {
    // §5.2.4 D: the COOKIE ECHO again, to an established peer, gets a
    // COOKIE ACK again and no second Connected.
    survives_loss(COOKIE_ACK, false);
}

#[test]
fn an_unanswered_init_backs_off_and_gives_up() {
    let config = Config {
        max_init_retransmits: Some(4),
        ..Config::default()
    };
    let mut w = pair(config, Config::default());
    let start = w.now;
    w.drop = Box::new(|from_a, _, _| from_a);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(120));
    let inits: Vec<u64> = w
        .wire
        .iter()
        .filter(|s| s.from_a)
        .map(|s| (s.at - start).as_secs())
        .collect();
    // RTO 1 s, doubled each time (§6.3.3 E2): 0, 1, 3, 7, 15.
    assert_eq!(inits, vec![0, 1, 3, 7, 15]);
    assert_eq!(w.a.assoc.state(), State::Closed);
    assert_eq!(w.a.events.last().unwrap().1, Event::Closed(CloseReason::SetupTimedOut));
    assert_eq!(w.a.events.last().unwrap().0 - start, Duration::from_secs(31));
    assert_eq!(w.b.assoc.state(), State::Closed, "b kept no state for the INITs");
}

#[test]
fn a_stale_cookie_brings_an_init_with_a_preservative() {
    let b = Config {
        cookie_lifetime: Duration::from_millis(100),
        ..Config::default()
    };
    let mut w = pair(Config::default(), b);
    // The first COOKIE ECHO arrives late: lose it, so T1-cookie (1 s)
    // sends it again, well past the cookie's 100 ms of life.
    w.drop = Box::new(|from_a, types, n| from_a && types == [COOKIE_ECHO] && n == 0);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(10));
    connected(&w);
    let errors: Vec<_> = w
        .wire
        .iter()
        .filter(|s| !s.from_a && s.chunk_types() == [ERROR])
        .collect();
    assert_eq!(errors.len(), 1);
    with_first_chunk(&errors[0].bytes, |c| {
        let Chunk::Error(causes) = c else { panic!("{c:?}") };
        assert!(
            matches!(causes.iter().next(), Some(ErrorCause::StaleCookie { staleness_us }) if staleness_us >= 900_000)
        );
    });
    let inits: Vec<_> = w
        .wire
        .iter()
        .filter(|s| s.from_a && s.chunk_types() == [INIT])
        .collect();
    assert_eq!(inits.len(), 2);
    with_first_chunk(&inits[1].bytes, |c| {
        let Chunk::Init(init) = c else { panic!("{c:?}") };
        assert!(init
            .params
            .iter()
            .any(|p| matches!(p, Param::CookiePreservative(ms) if ms >= 1800)));
    });
}

#[test]
fn a_stray_init_does_not_disturb_an_association() {
    let mut w = pair(Config::default(), Config::default());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    connected(&w);
    let (a_tag, b_tag) = (w.a.assoc.local_tag(), w.b.assoc.local_tag());
    let params = [Param::ForwardTsnSupported];
    let stray = Init {
        initiate_tag: 0xdead_beef,
        a_rwnd: 1000,
        outbound_streams: 1,
        inbound_streams: 1,
        initial_tsn: Tsn(1),
        params: TlvList::Items(&params),
    };
    let mut buf = [0u8; 256];
    let header = CommonHeader {
        source_port: 5000,
        destination_port: 5000,
        verification_tag: 0,
    };
    let mut pw = PacketWriter::new(&mut buf, header).unwrap();
    pw.push(&Chunk::Init(stray)).unwrap();
    let n = pw.finish(ChecksumMode::Crc32c);
    w.inject_to_b(&buf[..n]);
    w.run_for(Duration::from_secs(1));
    // §5.2.2: answered with an INIT ACK to the stray tag, and a new tag
    // of b's own; the association is as it was.
    let reply = w.wire.last().unwrap();
    assert_eq!(reply.chunk_types(), vec![INIT_ACK]);
    assert_eq!(&reply.bytes[4..8], &0xdead_beef_u32.to_be_bytes());
    with_first_chunk(&reply.bytes, |c| {
        let Chunk::InitAck(ack) = c else { panic!("{c:?}") };
        assert_ne!(ack.initiate_tag, b_tag);
    });
    assert_eq!(w.b.assoc.state(), State::Established);
    assert_eq!((w.a.assoc.local_tag(), w.b.assoc.local_tag()), (a_tag, b_tag));
    assert_eq!(w.b.events.len(), 1);
}

fn packet(tag: u32, chunk: Chunk<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let header = CommonHeader {
        source_port: 5000,
        destination_port: 5000,
        verification_tag: tag,
    };
    let mut pw = PacketWriter::new(&mut buf, header).unwrap();
    pw.push(&chunk).unwrap();
    let n = pw.finish(ChecksumMode::Crc32c);
    buf[..n].to_vec()
}

#[test]
fn abort_only_with_the_right_tag() {
    let mut w = pair(Config::default(), Config::default());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    let b_tag = w.b.assoc.local_tag();
    let abort = Chunk::Abort {
        reflected: false,
        causes: TlvList::Items(&[]),
    };
    let now = w.now;
    let forged = packet(b_tag ^ 1, abort);
    assert_eq!(
        w.b.assoc.handle_packet(now, &forged),
        Err(DropReason::VerificationTag { found: b_tag ^ 1 })
    );
    // T bit set: the sender claims to reflect b's peer tag; it is not.
    let reflected = packet(
        b_tag,
        Chunk::Abort {
            reflected: true,
            causes: TlvList::Items(&[]),
        },
    );
    assert!(w.b.assoc.handle_packet(now, &reflected).is_err());
    assert_eq!(w.b.assoc.state(), State::Established);
    assert_eq!(w.b.assoc.handle_packet(now, &packet(b_tag, abort)), Ok(()));
    assert_eq!(w.b.assoc.state(), State::Closed);
    assert_eq!(w.b.assoc.poll_event(), Some(Event::Closed(CloseReason::PeerAborted)));
}

#[test]
fn heartbeats_are_echoed() {
    let mut w = pair(Config::default(), Config::default());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    let info = [Param::HeartbeatInfo(b"ping 42")];
    let hb = packet(w.b.assoc.local_tag(), Chunk::Heartbeat(TlvList::Items(&info)));
    w.inject_to_b(&hb);
    w.run_for(Duration::from_millis(1));
    let reply = w.wire.last().unwrap();
    assert_eq!(&reply.bytes[4..8], &w.a.assoc.local_tag().to_be_bytes());
    with_first_chunk(&reply.bytes, |c| {
        assert_eq!(c, Chunk::HeartbeatAck(TlvList::Items(&info)))
    });
}

#[test]
fn zero_checksums_once_both_agree() {
    let zc = Config {
        zero_checksum: true,
        ..Config::default()
    };
    let mut w = pair(zc.clone(), zc);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    connected(&w);
    assert!(w.a.assoc.peer().unwrap().capabilities.zero_checksum);
    assert!(w.b.assoc.peer().unwrap().capabilities.zero_checksum);
    // INIT and INIT ACK went with CRC32c (RFC 9653 §5.4), the COOKIE ACK
    // of an association that is up with zero, and so does a heartbeat
    // answer.
    for s in &w.wire {
        let zero = s.bytes[8..12] == [0; 4];
        assert_eq!(zero, s.chunk_types() == [COOKIE_ACK], "{:?}", s.chunk_types());
    }
    let info = [Param::HeartbeatInfo(b"x")];
    w.inject_to_b(&packet(w.b.assoc.local_tag(), Chunk::Heartbeat(TlvList::Items(&info))));
    w.run_for(Duration::from_millis(1));
    assert_eq!(&w.wire.last().unwrap().bytes[8..12], &[0; 4]);
    // One side without it: CRC32c throughout.
    let mut w = pair(
        Config {
            zero_checksum: true,
            ..Config::default()
        },
        Config::default(),
    );
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    assert!(!w.a.assoc.peer().unwrap().capabilities.zero_checksum);
}

#[test]
fn garbage_is_dropped_and_counted() {
    let mut w = pair(Config::default(), Config::default());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    let tag = w.b.assoc.local_tag();
    let now = w.now;
    let mut rng = 0x1234_5678_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..2000 {
        let len = (next() % 120) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if p.len() >= 12 && i % 2 == 0 {
            // Half with real ports, tag and checksum, so chunks are read.
            p[..4].copy_from_slice(&[0x13, 0x88, 0x13, 0x88]);
            p[4..8].copy_from_slice(&tag.to_be_bytes());
            if p.len() > 12 {
                // Not ABORT, which would rightly close it.
                p[12] = if p[12] == ABORT { 0x3f } else { p[12] };
            }
            let sum = packet::crc32c(&p);
            p[8..12].copy_from_slice(&sum.to_le_bytes());
        }
        let _ = w.b.assoc.handle_packet(now, &p);
    }
    assert_eq!(w.b.assoc.state(), State::Established);
    assert!(w.b.assoc.stats().packets_dropped > 1000);
    // A forged cookie is refused.
    let forged = packet(tag, Chunk::CookieEcho(&[0; 80]));
    assert_eq!(w.b.assoc.handle_packet(now, &forged), Err(DropReason::ForgedCookie));
    // Still answers.
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.b.assoc.state(), State::Established);
}

// ----- data transfer (RFC 9260 §6, §7) -----

fn established() -> Wire<Natter, Natter> {
    let mut w = pair(Config::default(), Config::default());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    connected(&w);
    w
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

fn received(n: &mut Natter) -> Vec<(u16, bool, Vec<u8>)> {
    std::iter::from_fn(|| n.assoc.poll_message())
        .map(|m| (m.stream, m.unordered, m.data))
        .collect()
}

#[test]
fn messages_cross_both_ways_whole_and_in_order() {
    let mut w = established();
    let big = pattern(10_000, 1);
    w.a.assoc.send(1, 53, false, b"first").unwrap();
    w.a.assoc.send(1, 53, false, &big).unwrap();
    w.a.assoc.send(3, 51, true, b"unordered").unwrap();
    w.b.assoc.send(2, 51, false, b"back").unwrap();
    w.run_for(Duration::from_secs(2));
    let at_b = received(&mut w.b);
    assert_eq!(at_b.len(), 3);
    let on_1: Vec<_> = at_b.iter().filter(|m| m.0 == 1).map(|m| m.2.clone()).collect();
    assert_eq!(on_1, vec![b"first".to_vec(), big]);
    assert!(at_b.contains(&(3, true, b"unordered".to_vec())));
    assert_eq!(received(&mut w.a), vec![(2, false, b"back".to_vec())]);
    assert_eq!(w.a.assoc.buffered_amount(), 0);
    assert_eq!(w.b.assoc.buffered_amount(), 0);
    assert_eq!(
        w.a.assoc.send(0, 53, false, b""),
        Err(natter_sctp::sctp::association::SendError::Empty)
    );
}

#[test]
fn the_first_flight_is_the_initial_cwnd() {
    let mut w = established();
    let start = w.now;
    w.a.assoc.send(0, 53, false, &pattern(100_000, 2)).unwrap();
    w.run_for(Duration::from_secs(5));
    // cwnd starts at RFC 6928's min(10 MTU, max(2 MTU, 14600)) = 12000
    // bytes for 1200-byte packets, not RFC 9260 §7.2.1's 4380
    // (send.rs, initial_cwnd): 11 chunks of 1172 bytes go before any
    // SACK, the 11th while the flight is still under cwnd (as 4 went
    // under 4380).
    let first_burst = w
        .wire
        .iter()
        .filter(|s| s.from_a && s.at == start && s.chunk_types() == [DATA])
        .count();
    assert_eq!(first_burst, 11);
    assert_eq!(received(&mut w.b).len(), 1);
}

#[test]
fn a_lost_data_packet_is_fast_retransmitted() {
    let mut w = established();
    let start = w.now;
    w.drop = Box::new(|from_a, types, n| from_a && types == [DATA] && n == 1);
    let msg = pattern(40_000, 3);
    w.a.assoc.send(0, 53, false, &msg).unwrap();
    w.run_for(Duration::from_secs(5));
    let got = received(&mut w.b);
    assert_eq!(got, vec![(0, false, msg)]);
    // Three SACKs reporting the hole, not the 1 s T3-rtx, brought it:
    // the same chunk went again within the first round trips.
    let lost = w.wire.iter().find(|s| s.lost).unwrap();
    let lost_chunk = &lost.bytes[12..];
    assert!(w
        .wire
        .iter()
        .any(|s| s.from_a && s.at > lost.at && s.bytes.ends_with(lost_chunk)));
    let last_data = w
        .wire
        .iter()
        .filter(|s| s.from_a && s.chunk_types().contains(&DATA))
        .map(|s| s.at)
        .max()
        .unwrap();
    assert!(
        last_data - start < Duration::from_millis(500),
        "{:?}",
        last_data - start
    );
}

#[test]
fn a_lost_last_packet_comes_on_a_tail_loss_probe() {
    let mut w = established();
    let start = w.now;
    // Three packets of DATA; the last one lost, so no SACK can report it
    // missing. RFC 8985 §7: a probe 2 SRTT after the last transmission
    // sends it again, long before T3-rtx (RTO, at least 1 s) would.
    w.drop = Box::new(|from_a, types, n| from_a && types == [DATA] && n == 2);
    let msg = pattern(3 * 1172, 4);
    w.a.assoc.send(0, 53, false, &msg).unwrap();
    w.run_for(Duration::from_secs(5));
    assert_eq!(received(&mut w.b), vec![(0, false, msg)]);
    let data = w.data_sent_at(true, start);
    assert_eq!(data.len(), 4);
    let srtt = w.a.assoc.srtt().expect("an RTT measured");
    let gap = data[3] - data[2];
    assert!(
        gap >= 2 * srtt && gap < Duration::from_secs(1),
        "{data:?}, SRTT {srtt:?}"
    );
    assert_eq!(w.a.assoc.stats().t3_expiries, 0);
}

#[test]
fn bulk_through_ten_percent_loss_arrives_whole_once_in_order() {
    let mut w = established();
    w.drop = sctp_support::random_loss(3, 10);
    let messages: Vec<Vec<u8>> = (0..20).map(|i| pattern(16 * 1024, i)).collect();
    for m in &messages {
        w.a.assoc.send(5, 53, false, m).unwrap();
        w.b.assoc.send(6, 53, false, m).unwrap();
    }
    w.run_for(Duration::from_secs(120));
    assert!(w.wire.iter().filter(|s| s.lost).count() > 20);
    let expect: Vec<_> = messages.iter().map(|m| (5, false, m.clone())).collect();
    assert_eq!(received(&mut w.b), expect);
    let expect: Vec<_> = messages.iter().map(|m| (6, false, m.clone())).collect();
    assert_eq!(received(&mut w.a), expect);
    assert_eq!(w.a.assoc.buffered_amount() + w.b.assoc.buffered_amount(), 0);
}

#[test]
fn a_receiver_that_stops_reading_closes_the_window_and_reopens_it() {
    let small = Config {
        receive_window: 64 * 1024,
        ..Config::default()
    };
    let mut w = pair(Config::default(), small);
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    let messages: Vec<Vec<u8>> = (0..16).map(|i| pattern(16 * 1024, i)).collect();
    for m in &messages {
        w.a.assoc.send(0, 53, false, m).unwrap();
    }
    // b reads nothing: a may not send past b's window (RFC 9260 §6.1).
    w.run_for(Duration::from_secs(10));
    let delivered_unread: usize = w
        .wire
        .iter()
        .filter(|s| s.from_a)
        .flat_map(|s| {
            let p = Packet::parse(&s.bytes, ChecksumMode::Crc32c).unwrap();
            p.chunks()
                .flatten()
                .filter(|c| c.ty == DATA)
                .map(|c| c.value.len() - 12)
                .collect::<Vec<_>>()
        })
        .sum();
    assert!(w.a.assoc.buffered_amount() > 128 * 1024, "a still holds most of it");
    assert!(
        delivered_unread < 256 * 1024,
        "{delivered_unread} bytes sent to a closed window"
    );
    // b reads what it has; the window update lets a finish quickly.
    let mut got = received(&mut w.b);
    let resumed = w.now;
    w.run_for(Duration::from_secs(2));
    got.extend(received(&mut w.b));
    while w.a.assoc.buffered_amount() > 0 && w.now - resumed < Duration::from_secs(30) {
        w.run_for(Duration::from_millis(100));
        got.extend(received(&mut w.b));
    }
    let expect: Vec<_> = messages.iter().map(|m| (0, false, m.clone())).collect();
    assert_eq!(got, expect);
    assert!(w.now - resumed < Duration::from_secs(3), "took {:?}", w.now - resumed);
}

mod impaired {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the loss (up to 15%), reordering (jitter up to 30 ms
        /// on a 10 ms path) and duplication (up to 10%), ordered messages
        /// arrive whole, once, in order, both ways.
        #[test]
        fn ordered_messages_survive_an_impaired_path(
            seed in any::<u64>(),
            loss_per_mille in 0u64..150,
            jitter_ms in 0u64..30,
            dup_per_mille in 0u64..100,
            sizes in proptest::collection::vec(1usize..40_000, 1..12),
        ) {
            let mut w = established();
            sctp_support::impair(&mut w, seed, loss_per_mille, jitter_ms, dup_per_mille);
            let messages: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| pattern(*n, i as u8)).collect();
            for m in &messages {
                w.a.assoc.send(2, 53, false, m).unwrap();
                w.b.assoc.send(3, 53, false, m).unwrap();
            }
            w.run_for(Duration::from_secs(300));
            let expect: Vec<_> = messages.iter().map(|m| (2, false, m.clone())).collect();
            prop_assert_eq!(received(&mut w.b), expect);
            let expect: Vec<_> = messages.iter().map(|m| (3, false, m.clone())).collect();
            prop_assert_eq!(received(&mut w.a), expect);
            prop_assert_eq!(w.a.assoc.buffered_amount() + w.b.assoc.buffered_amount(), 0);
        }
    }
}
