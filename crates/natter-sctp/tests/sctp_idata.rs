//! Message interleaving (RFC 8260): I-DATA and I-FORWARD-TSN, offered in
//! the Supported Extensions parameter (RFC 5061 §4.2.7) of INIT, INIT ACK
//! and SNAP's out-of-band INIT, and used only when both ends offer them.
//! Two natter associations on the in-memory wire under a virtual clock
//! (one test faces sctp-proto 0.10.8, which offers no I-DATA); what is
//! asserted is what crossed the wire and what was delivered.

mod sctp_support;
mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{snap_init, Association, Config, Event, Reliability, State};
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::param::Param;
use natter_sctp::sctp::Tsn;
use natter_sctp::ChannelId;
use proptest::prelude::*;
use sctp_support::{chunks_of, impair, packet, Natter, Side, Wire};

const BIG: usize = 256 * 1024;

fn interleaving(on: bool) -> Config {
    Config {
        interleaving: on,
        ..Config::default()
    }
}

/// Two natter associations, a offering interleaving as `a_offers` says
/// and b as `b_offers`, established (a connected).
fn pair(a_offers: bool, b_offers: bool) -> Wire<Natter, Natter> {
    let now = Instant::now();
    let mut w = Wire::new(
        now,
        Natter::new(interleaving(a_offers), 1, now),
        Natter::new(interleaving(b_offers), 2, now),
    );
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.a.assoc.state(), State::Established);
    assert_eq!(w.b.assoc.state(), State::Established);
    w
}

fn uses_idata(a: &Association) -> bool {
    a.peer().expect("established").capabilities.interleaving
}

/// The chunk types a side sent that carry user data or skip it.
fn data_kinds<A: Side, B: Side>(w: &Wire<A, B>, from_a: bool) -> HashSet<u8> {
    w.wire
        .iter()
        .filter(|s| s.from_a == from_a)
        .flat_map(|s| s.chunk_types())
        .filter(|t| matches!(*t, DATA | I_DATA | FORWARD_TSN | I_FORWARD_TSN))
        .collect()
}

/// Reads every whole message b has, as (stream, bytes).
fn read(n: &mut Natter, into: &mut Vec<(u16, Vec<u8>)>) {
    while let Some(m) = n.assoc.poll_message() {
        into.push((m.stream, m.data));
    }
}

/// Runs `span` in 5 ms steps, reading what b received.
fn run_reading<A: Side>(w: &mut Wire<A, Natter>, span: Duration, got: &mut Vec<(u16, Vec<u8>)>) {
    for _ in 0..span.as_millis() / 5 {
        w.run_for(Duration::from_millis(5));
        read(&mut w.b, got);
    }
}

fn message(stream: u16, n: u32, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len.max(8)];
    v[..2].copy_from_slice(&stream.to_be_bytes());
    v[2..6].copy_from_slice(&n.to_be_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(6) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(n) as u8;
    }
    v
}

/// The Supported Extensions of an INIT chunk (header included).
fn extensions(init: &[u8]) -> Vec<u8> {
    let len = usize::from(u16::from_be_bytes([init[2], init[3]]));
    match Chunk::parse(INIT, init[1], &init[4..len]).expect("an INIT") {
        Chunk::Init(i) => i
            .params
            .iter()
            .find_map(|p| match p {
                Param::SupportedExtensions(e) => Some(e.to_vec()),
                _ => None,
            })
            .unwrap_or_default(),
        other => panic!("not an INIT: {other:?}"),
    }
}

/// RFC 5061 §4.2.7, RFC 8260 §2.2: I-DATA and I-FORWARD-TSN are used only
/// when both INITs list them; otherwise DATA and FORWARD TSN, whichever
/// side offered, and messages still arrive.
#[test]
fn i_data_is_used_only_when_both_ends_offer_it() {
    for (a_offers, b_offers) in [(true, true), (true, false), (false, true), (false, false)] {
        let mut w = pair(a_offers, b_offers);
        let both = a_offers && b_offers;
        assert_eq!(uses_idata(&w.a.assoc), both, "a, offers {a_offers}/{b_offers}");
        assert_eq!(uses_idata(&w.b.assoc), both, "b, offers {a_offers}/{b_offers}");
        // Each side's INIT or INIT ACK lists I-DATA exactly when it offers it.
        let (init_a, ack_b) = (&w.wire[0], &w.wire[1]);
        assert_eq!(init_a.chunk_types(), vec![INIT]);
        assert_eq!(ack_b.chunk_types(), vec![INIT_ACK]);
        let listed = |bytes: &[u8]| {
            chunks_of(bytes, |c| match c {
                Chunk::Init(i) | Chunk::InitAck(i) => Some(i.supports_chunk(I_DATA) && i.supports_chunk(I_FORWARD_TSN)),
                _ => None,
            })
        };
        assert_eq!(listed(&init_a.bytes), vec![a_offers]);
        assert_eq!(listed(&ack_b.bytes), vec![b_offers]);
        let sent = [message(1, 0, 3000), message(2, 1, 10)];
        w.a.assoc.send(1, 53, false, &sent[0]).unwrap();
        w.a.assoc.send(2, 51, true, &sent[1]).unwrap();
        w.b.assoc.send(3, 51, false, b"back").unwrap();
        let mut got = Vec::new();
        run_reading(&mut w, Duration::from_millis(200), &mut got);
        got.sort();
        assert_eq!(got, vec![(1, sent[0].clone()), (2, sent[1].clone())]);
        assert_eq!(w.a.assoc.poll_message().map(|m| m.data), Some(b"back".to_vec()));
        let kind = if both { I_DATA } else { DATA };
        assert_eq!(data_kinds(&w, true), HashSet::from([kind]));
        assert_eq!(data_kinds(&w, false), HashSet::from([kind]));
    }
}

/// natter offering I-DATA to sctp-proto 0.10.8, an independent stack that
/// does not: DATA, and the messages arrive.
#[test]
fn offering_i_data_to_a_peer_without_it_falls_back_to_data() {
    let mut w = sctp_support::natter_and_proto_with(interleaving(true));
    assert!(!uses_idata(&w.a.assoc));
    let sent = message(4, 7, 5000);
    w.a.assoc.send(4, 53, false, &sent).unwrap();
    w.run_for(Duration::from_millis(500));
    assert_eq!(w.b.received, vec![(4, 53, sent)]);
    assert_eq!(data_kinds(&w, true), HashSet::from([DATA]));
}

/// SNAP (draft-hancke-tsvwg-snap-01): the out-of-band INIT lists I-DATA
/// and I-FORWARD-TSN when interleaving is offered, and the association
/// set up from two INITs uses it only when both list them.
#[test]
fn snap_inits_carry_the_offer() {
    let ours = snap_init(&interleaving(true), 11, Tsn(100));
    let plain = snap_init(&interleaving(false), 12, Tsn(200));
    assert!(extensions(&ours).contains(&I_DATA) && extensions(&ours).contains(&I_FORWARD_TSN));
    assert!(!extensions(&plain).contains(&I_DATA) && !extensions(&plain).contains(&I_FORWARD_TSN));
    let theirs = snap_init(&interleaving(true), 13, Tsn(300));
    for (local_on, local, remote, expected) in [
        (true, &ours, &theirs, true),
        (true, &ours, &plain, false),
        (false, &plain, &theirs, false),
    ] {
        let mut a = Association::new(interleaving(local_on), &[5; 32], Instant::now());
        a.connect_snap(local, remote).unwrap();
        assert_eq!(uses_idata(&a), expected);
    }
}

/// Chromium 156's INIT as it put it in `a=sctp-init` (its WebRTC-Sctp-Snap
/// field trial), without and with its WebRTC-DataChannelMessageInterleaving
/// trial, captured from `createOffer` in headless Chromium 156.0.8078.129
/// (base64 `AQAAHhwGV7gAUAAA/////y08xrfAAAAEgAgABoLA` and
/// `AQAAIB62wSgAUAAA/////6MlSmTAAAAEgAgACILAQMI=`): Forward-TSN-Supported,
/// then Supported Extensions, which list I-DATA (0x40) and I-FORWARD-TSN
/// (0xc2) only with the trial.
const CHROMIUM_INIT: [u8; 30] = [
    0x01, 0x00, 0x00, 0x1e, 0x1c, 0x06, 0x57, 0xb8, 0x00, 0x50, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x2d, 0x3c, 0xc6,
    0xb7, 0xc0, 0x00, 0x00, 0x04, 0x80, 0x08, 0x00, 0x06, 0x82, 0xc0,
];
const CHROMIUM_INIT_INTERLEAVING: [u8; 32] = [
    0x01, 0x00, 0x00, 0x20, 0x1e, 0xb6, 0xc1, 0x28, 0x00, 0x50, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xa3, 0x25, 0x4a,
    0x64, 0xc0, 0x00, 0x00, 0x04, 0x80, 0x08, 0x00, 0x08, 0x82, 0xc0, 0x40, 0xc2,
];

/// natter offering interleaving uses it with Chromium's INIT only when
/// Chromium's trial made it list I-DATA and I-FORWARD-TSN.
#[test]
fn chromium_offers_i_data_only_under_its_field_trial() {
    let (plain, trial) = (&CHROMIUM_INIT[..], &CHROMIUM_INIT_INTERLEAVING[..]);
    assert_eq!(extensions(plain), vec![RE_CONFIG, FORWARD_TSN]);
    assert_eq!(extensions(trial), vec![RE_CONFIG, FORWARD_TSN, I_DATA, I_FORWARD_TSN]);
    let ours = snap_init(&interleaving(true), 21, Tsn(7));
    for (chromium, expected) in [(plain, false), (trial, true)] {
        let mut a = Association::new(interleaving(true), &[6; 32], Instant::now());
        a.connect_snap(&ours, chromium).unwrap();
        assert_eq!(uses_idata(&a), expected);
        // What natter sends Chromium then.
        a.send(0, 51, false, &[1; 3000]).unwrap();
        let mut buf = [0u8; 1500];
        let n = a
            .poll_transmit(Instant::now(), &mut buf)
            .unwrap()
            .expect("DATA goes at once");
        let kind = if expected { I_DATA } else { DATA };
        assert!(chunks_of(&buf[..n], |c| Some(c.chunk_type())).contains(&kind));
    }
}

/// RFC 8260 §1: with DATA, a message's fragments go back to back, so a
/// small message queued while a 256 KiB one on another stream is in
/// flight arrives after it; with I-DATA the scheduler interleaves
/// fragments of the two streams, so the small one arrives first, after
/// at most a couple of the big one's fragments.
#[test]
fn a_small_message_overtakes_a_256_kib_one_on_another_stream() {
    for on in [true, false] {
        let mut w = pair(on, on);
        w.latency = Duration::from_millis(25);
        let big = message(1, 0, BIG);
        w.a.assoc.send(1, 53, false, &big).unwrap();
        let mut got = Vec::new();
        run_reading(&mut w, Duration::from_millis(60), &mut got);
        let from = w.wire.len();
        w.a.assoc.send(2, 51, false, b"chat").unwrap();
        run_reading(&mut w, Duration::from_secs(3), &mut got);
        assert_eq!(got.len(), 2, "both arrive (interleaving {on})");
        let order: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(got[order.iter().position(|s| *s == 1).unwrap()].1, big);
        if on {
            assert_eq!(order, vec![2, 1], "the chat message first");
            // Fragments of the big message sent after the chat message was
            // queued and before it went: one turn of the other stream.
            let streams: Vec<u16> = w.wire[from..]
                .iter()
                .filter(|s| s.from_a)
                .flat_map(|s| {
                    chunks_of(&s.bytes, |c| match c {
                        Chunk::IData(d) => Some(d.stream),
                        _ => None,
                    })
                })
                .collect();
            let before = streams.iter().position(|s| *s == 2).expect("the chat message went");
            assert!(before <= 2, "{before} fragments of the big message went first");
            assert!(data_kinds(&w, true).contains(&I_DATA));
        } else {
            assert_eq!(order, vec![1, 2], "with DATA the big message is not interleaved");
        }
    }
}

/// Everything sent on five streams, ordered and unordered, small and
/// large, in an interleaved mix, arrives exactly once, whole, and in
/// order on the ordered streams, through loss, reordering and
/// duplication, under several seeds.
#[test]
fn nothing_is_lost_duplicated_or_reordered_through_an_impaired_path() {
    for seed in [3u64, 17, 2024] {
        let mut w = pair(true, true);
        w.latency = Duration::from_millis(20);
        impair(&mut w, seed, 50, 15, 10);
        let mut sent: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
        let mut n = 0u32;
        for round in 0..6 {
            for stream in 0..5u16 {
                let len = match (stream + round) % 4 {
                    0 => 40_000,
                    1 => 3,
                    2 => 1500,
                    _ => 9000,
                };
                let m = message(stream, n, len);
                n += 1;
                let unordered = stream == 4;
                w.a.assoc.send(stream, 53, unordered, &m).unwrap();
                sent.entry(stream).or_default().push(m);
            }
        }
        let mut got = Vec::new();
        for _ in 0..60 {
            run_reading(&mut w, Duration::from_millis(500), &mut got);
            if got.len() == n as usize {
                break;
            }
        }
        assert_eq!(got.len(), n as usize, "seed {seed}: every message once");
        for (stream, messages) in &sent {
            let received: Vec<Vec<u8>> = got
                .iter()
                .filter(|(s, _)| s == stream)
                .map(|(_, m)| m.clone())
                .collect();
            if *stream == 4 {
                let mut a = received.clone();
                let mut b = messages.clone();
                a.sort();
                b.sort();
                assert_eq!(a, b, "seed {seed}: unordered stream, each message once");
            } else {
                assert_eq!(&received, messages, "seed {seed}: stream {stream} in order");
            }
        }
        let lost = w.wire.iter().filter(|s| s.lost).count();
        assert!(lost > 0, "seed {seed}: the path lost something");
        assert_eq!(
            data_kinds(&w, true),
            HashSet::from([I_DATA]),
            "no DATA, nothing abandoned"
        );
    }
}

/// (stream, MID) of the I-DATA chunks in packets the wire lost, and of
/// all I-DATA chunks sent, per direction a.
fn idata_messages<B: Side>(w: &Wire<Natter, B>, lost_only: bool) -> HashSet<(u16, bool, u32)> {
    w.wire
        .iter()
        .filter(|s| s.from_a && (s.lost || !lost_only))
        .flat_map(|s| {
            chunks_of(&s.bytes, |c| match c {
                Chunk::IData(d) => Some((d.stream, d.flags.unordered, d.mid)),
                _ => None,
            })
        })
        .collect()
}

/// How many distinct fragments (by TSN) of each (stream, U, MID) a sent.
fn idata_fragments<B: Side>(w: &Wire<Natter, B>) -> HashMap<(u16, bool, u32), usize> {
    let mut tsns: HashMap<(u16, bool, u32), HashSet<u32>> = HashMap::new();
    for s in w.wire.iter().filter(|s| s.from_a) {
        for (key, tsn) in chunks_of(&s.bytes, |c| match c {
            Chunk::IData(d) => Some(((d.stream, d.flags.unordered, d.mid), d.tsn.0)),
            _ => None,
        }) {
            tsns.entry(key).or_default().insert(tsn);
        }
    }
    tsns.into_iter().map(|(k, v)| (k, v.len())).collect()
}

/// RFC 8260 §2.3 with RFC 3758: messages with no retransmissions allowed
/// are abandoned only when a fragment of theirs was lost, skipped with
/// I-FORWARD-TSN (never FORWARD TSN), and what is delivered on the
/// ordered partial stream stays in order, while a reliable stream beside
/// it gets everything, and the partial stream takes reliable messages
/// again afterwards.
#[test]
fn partial_reliability_skips_with_i_forward_tsn() {
    for seed in [5u64, 99] {
        let mut w = pair(true, true);
        w.latency = Duration::from_millis(15);
        impair(&mut w, seed, 80, 0, 0);
        let now = w.now;
        let mut partial = Vec::new();
        let mut reliable = Vec::new();
        for i in 0..40u32 {
            // Ordered partial (stream 1) and unordered partial (stream 3),
            // some of several fragments, beside a reliable stream 2.
            let m = message(1, i, if i % 3 == 0 { 5000 } else { 700 });
            w.a.assoc
                .send_with(now, 1, 53, false, &m, Reliability::MaxRetransmits(0))
                .unwrap();
            partial.push(m);
            let u = message(3, i, 2500);
            w.a.assoc
                .send_with(now, 3, 53, true, &u, Reliability::MaxRetransmits(0))
                .unwrap();
            let r = message(2, i, 3000);
            w.a.assoc.send(2, 53, false, &r).unwrap();
            reliable.push(r);
        }
        let mut got = Vec::new();
        run_reading(&mut w, Duration::from_secs(20), &mut got);
        // Stream 1 still works afterwards, reliably and in order.
        let tail = message(1, 1000, 4000);
        w.a.assoc.send(1, 53, false, &tail).unwrap();
        run_reading(&mut w, Duration::from_secs(10), &mut got);

        let on = |stream: u16| {
            got.iter()
                .filter(|(s, _)| *s == stream)
                .map(|(_, m)| m.clone())
                .collect::<Vec<_>>()
        };
        let numbers = |ms: &[Vec<u8>]| ms.iter().map(|m| (m[2..6].to_vec(), m.len())).collect::<Vec<_>>();
        assert_eq!(
            numbers(&on(2)),
            numbers(&reliable),
            "seed {seed}: the reliable stream gets everything in order"
        );
        assert!(on(2) == reliable, "seed {seed}: reliable messages intact");
        let ordered = on(1);
        assert_eq!(ordered.last(), Some(&tail), "seed {seed}: stream 1 after the skips");
        let delivered = &ordered[..ordered.len() - 1];
        // In order: a subsequence of what was sent.
        let mut it = partial.iter();
        assert!(
            delivered.iter().all(|d| it.any(|p| p == d)),
            "seed {seed}: ordered partial delivery out of order"
        );
        assert!(delivered.len() < partial.len(), "seed {seed}: some were abandoned");
        let unordered = on(3);
        assert_eq!(
            unordered.iter().collect::<HashSet<_>>().len(),
            unordered.len(),
            "seed {seed}: no duplicates"
        );
        // Exactly what the policy allows: a message missing at b had a
        // fragment in a lost packet, or was cut short (its remaining
        // fragments never sent once one was taken for lost); with no
        // jitter, nothing sent and not lost is overtaken by the
        // I-FORWARD-TSN. Message i of stream 1 has MID i: with a
        // retransmission limit only what was sent is abandoned.
        let lost = idata_messages(&w, true);
        let fragments = idata_fragments(&w);
        for (i, m) in partial.iter().enumerate().filter(|(_, m)| !delivered.contains(m)) {
            let key = (1, false, i as u32);
            let whole = m.len().div_ceil(1200 - 12 - 20);
            assert!(
                lost.contains(&key) || fragments.get(&key).copied().unwrap_or(0) < whole,
                "seed {seed}: message {i} of stream 1 dropped without a loss"
            );
        }
        let kinds = data_kinds(&w, true);
        assert!(
            kinds.contains(&I_FORWARD_TSN),
            "seed {seed}: skipped with I-FORWARD-TSN"
        );
        assert!(
            !kinds.contains(&FORWARD_TSN) && !kinds.contains(&DATA),
            "seed {seed}: {kinds:?}"
        );
        assert_eq!(w.b.assoc.state(), State::Established);
        assert!(w.b.assoc.received_amount() == 0, "seed {seed}: nothing left held at b");
    }
}

/// RFC 6525 with RFC 8260 §2.1: a reset stream's MIDs start at 0 again,
/// both ways, and messages after the reset arrive.
#[test]
fn a_reset_stream_numbers_its_messages_from_zero() {
    let mut w = pair(true, true);
    for i in 0..3 {
        w.a.assoc.send(5, 51, false, &message(5, i, 2000)).unwrap();
        w.a.assoc.send(5, 51, true, &message(5, 100 + i, 10)).unwrap();
    }
    let mut got = Vec::new();
    run_reading(&mut w, Duration::from_millis(300), &mut got);
    assert_eq!(got.len(), 6);
    let now = w.now;
    w.a.assoc.reset_streams(now, &[5]).unwrap();
    run_reading(&mut w, Duration::from_millis(300), &mut got);
    assert!(w.a.events.iter().any(|(_, e)| *e == Event::OutgoingStreamReset(5)));
    assert!(w.b.events.iter().any(|(_, e)| *e == Event::IncomingStreamReset(5)));
    let from = w.wire.len();
    let after = [message(5, 9, 2000), message(5, 10, 10)];
    w.a.assoc.send(5, 51, false, &after[0]).unwrap();
    w.a.assoc.send(5, 51, true, &after[1]).unwrap();
    run_reading(&mut w, Duration::from_millis(300), &mut got);
    let mids: HashSet<(bool, u32)> = w.wire[from..]
        .iter()
        .filter(|s| s.from_a)
        .flat_map(|s| {
            chunks_of(&s.bytes, |c| match c {
                Chunk::IData(d) => Some((d.flags.unordered, d.mid)),
                _ => None,
            })
        })
        .collect();
    assert_eq!(mids, HashSet::from([(false, 0), (true, 0)]));
    assert_eq!(
        got[6..].iter().map(|(_, m)| m.clone()).collect::<Vec<_>>(),
        after.to_vec()
    );
}

/// b's verification tag, and the TSN b expects next from a.
fn b_tag_and_next_tsn(w: &Wire<Natter, Natter>) -> (u32, u32) {
    let tag = w.b.assoc.local_tag();
    let next = w
        .wire
        .iter()
        .filter(|s| s.from_a)
        .flat_map(|s| {
            chunks_of(&s.bytes, |c| match c {
                Chunk::Data(d) => Some(d.tsn.0),
                Chunk::IData(d) => Some(d.tsn.0),
                _ => None,
            })
        })
        .max()
        .map_or_else(|| w.b.assoc.peer().expect("up").initial_tsn.0, |t| t.wrapping_add(1));
    (tag, next)
}

fn aborted_for_violation(n: &Natter) -> bool {
    n.events
        .iter()
        .any(|(_, e)| *e == Event::Closed(natter_sctp::sctp::association::CloseReason::ProtocolViolation))
}

/// RFC 8260 §2.1, §2.3: DATA or FORWARD TSN on an association using
/// I-DATA, I-DATA or I-FORWARD-TSN on one that is not, and an I-DATA
/// chunk without user data are protocol violations: ABORT.
#[test]
fn the_wrong_kind_of_data_chunk_aborts() {
    // One whole message, unfragmented.
    let whole = DataFlags {
        beginning: true,
        end: true,
        ..DataFlags::default()
    };
    let idata = |tsn| IData {
        flags: whole,
        tsn: Tsn(tsn),
        stream: 1,
        mid: 0,
        ppid_or_fsn: 51,
        payload: b"x",
    };
    let data = |tsn| Data {
        flags: whole,
        tsn: Tsn(tsn),
        stream: 1,
        ssn: 0,
        ppid: 51,
        payload: b"x",
    };
    for case in 0..5u8 {
        let on_idata = case != 3 && case != 4;
        let mut w = pair(on_idata, on_idata);
        let (tag, tsn) = b_tag_and_next_tsn(&w);
        let bytes = match case {
            0 => packet(tag, &[Chunk::Data(data(tsn))]),
            1 => packet(
                tag,
                &[Chunk::ForwardTsn(ForwardTsn {
                    new_cumulative_tsn: Tsn(tsn),
                    skipped: natter_sctp::sctp::wire::FixedList::Items(&[]),
                })],
            ),
            2 => packet(
                tag,
                &[Chunk::IData(IData {
                    payload: b"",
                    ..idata(tsn)
                })],
            ),
            3 => packet(tag, &[Chunk::IData(idata(tsn))]),
            _ => packet(
                tag,
                &[Chunk::IForwardTsn(ForwardTsn {
                    new_cumulative_tsn: Tsn(tsn),
                    skipped: natter_sctp::sctp::wire::FixedList::Items(&[]),
                })],
            ),
        };
        w.inject_to_b(&bytes);
        w.run_for(Duration::from_millis(100));
        assert_eq!(w.b.assoc.state(), State::Closed, "case {case}");
        assert!(aborted_for_violation(&w.b), "case {case}: {:?}", w.b.events);
        assert!(
            w.a.events.iter().any(|(_, e)| matches!(e, Event::Closed(_))),
            "case {case}: a heard the ABORT"
        );
    }
}

/// One hostile I-DATA chunk: any flags, stream, MID, FSN or PPID, a TSN
/// near what b expects, a payload of 1 to 40 bytes.
#[derive(Debug, Clone)]
struct Hostile {
    flags: u8,
    tsn_offset: i16,
    stream: u16,
    mid: u32,
    ppid_or_fsn: u32,
    len: usize,
}

fn hostile() -> impl Strategy<Value = Hostile> {
    (
        0u8..16,
        -20i16..200,
        prop_oneof![0u16..4, any::<u16>()],
        prop_oneof![0u32..4, any::<u32>()],
        prop_oneof![0u32..4, any::<u32>()],
        1usize..40,
    )
        .prop_map(|(flags, tsn_offset, stream, mid, ppid_or_fsn, len)| Hostile {
            flags,
            tsn_offset,
            stream,
            mid,
            ppid_or_fsn,
            len,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Hostile I-DATA chunks (overlapping, contradicting, out of order,
    /// endless) into an established association using I-DATA: no panic,
    /// what b holds stays within its receive window, and a real message
    /// from a still arrives.
    #[test]
    fn hostile_i_data_is_survived(chunks in proptest::collection::vec(hostile(), 1..60)) {
        let mut w = pair(true, true);
        let (tag, next) = b_tag_and_next_tsn(&w);
        // a sends 300 TSNs that the wire loses, so the forged TSNs are
        // ones a sent: b's SACKs of them are no violation (RFC 9260
        // §12.4) and a carries on, retransmitting what b has not taken.
        w.drop = Box::new(|from_a, _, _| from_a);
        for i in 0..300u32 {
            w.a.assoc.send(8, 51, false, &i.to_be_bytes()).unwrap();
        }
        w.run_for(Duration::from_millis(1));
        w.drop = Box::new(|_, _, _| false);
        let payload = [0x5au8; 40];
        for h in &chunks {
            let c = IData {
                flags: DataFlags {
                    immediate: h.flags & 8 != 0,
                    unordered: h.flags & 4 != 0,
                    beginning: h.flags & 2 != 0,
                    end: h.flags & 1 != 0,
                },
                tsn: Tsn(next.wrapping_add(h.tsn_offset as u32)),
                stream: h.stream,
                mid: h.mid,
                ppid_or_fsn: h.ppid_or_fsn,
                payload: &payload[..h.len],
            };
            w.inject_to_b(&packet(tag, &[Chunk::IData(c)]));
            prop_assert!(w.b.assoc.received_amount() <= Config::default().receive_window as usize * 9 / 8);
        }
        w.run_for(Duration::from_millis(500));
        while let Some(m) = w.b.assoc.poll_message() {
            w.b.assoc.recycle(m.data);
        }
        // Chunks with user data are no violation: both stay up, and a
        // message sent after it all (its TSN past every forged one)
        // arrives.
        prop_assert_eq!(w.b.assoc.state(), State::Established);
        prop_assert_eq!(w.a.assoc.state(), State::Established);
        w.a.assoc.send(9, 51, true, b"after").unwrap();
        let mut got = Vec::new();
        run_reading(&mut w, Duration::from_secs(3), &mut got);
        prop_assert!(got.iter().any(|(s, m)| *s == 9 && m == b"after"));
    }
}

/// Data channels (SctpTransport, RFC 8831 with DCEP) over I-DATA when both
/// transports are configured to offer it, through 2% loss: channels open
/// (DCEP in I-DATA), a chat message sent while a 256 KiB message is in
/// flight on another channel arrives first, an unordered partially
/// reliable channel and a reliable one deliver as their policies say, and
/// closing a channel (stream reset) works both ways.
#[test]
fn data_channels_run_on_i_data_between_two_transports() {
    use natter_sctp::{ChannelOptions, DtlsRole, Event as ChannelEvent, Message, SctpConfig, TransportState};
    use support::{Link, Pair, Side as End};
    let offer = |role| SctpConfig {
        interleaving: true,
        ..SctpConfig::new(role)
    };
    let mut p = Pair::with_configs(7, offer(DtlsRole::Client), offer(DtlsRole::Server));
    let lossy = Link {
        latency: Duration::from_millis(20),
        jitter: Duration::ZERO,
        loss: 0.02,
    };
    (p.up, p.down) = (lossy, lossy);
    p.connect();
    assert!(p.client.interleaving() && p.server.interleaving());
    let bulk = p.open(End::Client, "bulk", "", ChannelOptions::reliable());
    let chat = p.open(End::Client, "chat", "", ChannelOptions::reliable());
    let lossy_channel = p.open(
        End::Client,
        "telemetry",
        "",
        ChannelOptions {
            ordered: false,
            max_retransmits: Some(0),
            ..ChannelOptions::default()
        },
    );
    let big = message(0, 1, BIG);
    p.client.send(bulk, Message::Binary(&big)).unwrap();
    p.drive_for(Duration::from_millis(60));
    p.client.send(chat, Message::Text("hi")).unwrap();
    for i in 0..50u32 {
        p.client
            .send(lossy_channel, Message::Binary(&message(2, i, 300)))
            .unwrap();
    }
    p.drive_until(100_000, |p| p.messages(End::Server, bulk).len() == 1);
    let order: Vec<ChannelId> = p
        .events(End::Server)
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::Message { channel, .. } if *channel == bulk || *channel == chat => Some(*channel),
            _ => None,
        })
        .collect();
    assert_eq!(order, vec![chat, bulk], "the chat message first");
    assert_eq!(p.messages(End::Server, bulk), vec![(big, false)]);
    let telemetry = p.messages(End::Server, lossy_channel);
    assert!(!telemetry.is_empty() && telemetry.len() <= 50);
    assert_eq!(
        telemetry.iter().collect::<HashSet<_>>().len(),
        telemetry.len(),
        "no duplicates"
    );
    // Closing from either side resets the stream both ways.
    p.client.close_channel(chat).unwrap();
    p.server.close_channel(bulk).unwrap();
    p.drive_until(100_000, |p| {
        [End::Client, End::Server].into_iter().all(|side| {
            let closed = |id| p.count(side, |e| *e == ChannelEvent::ChannelClosed(id)) == 1;
            closed(chat) && closed(bulk)
        })
    });
    assert_eq!(p.client.state(), TransportState::Established);
    assert_eq!(p.server.state(), TransportState::Established);
}
