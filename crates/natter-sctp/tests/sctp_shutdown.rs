//! natter's own SCTP ending an association: the orderly SHUTDOWN of
//! RFC 9260 §9.2 (everything queued delivered first, from either side,
//! both at once, lost control chunks retransmitted on T2-shutdown, a
//! shutdown while data is being retransmitted), ABORT on max
//! retransmissions (§8.1, §8.2) and on protocol violations (§6.2,
//! §12.4), forged ABORTs ignored (§8.5.1), and a flood of tiny DATA
//! chunks held within the receive window. Two natter associations on the
//! in-memory wire under a virtual clock, and natter against sctp-proto.

mod sctp_support;

use std::time::Duration;

use natter_sctp::sctp::association::{CloseReason, Config, DropReason, Event, SendError, State};
use natter_sctp::sctp::cause::ErrorCause;
use natter_sctp::sctp::chunk::*;
use natter_sctp::sctp::wire::{FixedList, TlvList};
use natter_sctp::sctp::*;
use sctp_support::{dcep_open, natter_and_proto, random_loss, Natter, Side, Wire};

fn established() -> Wire<Natter, Natter> {
    sctp_support::natter_pair()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn received(n: &mut Natter) -> Vec<(u16, Vec<u8>)> {
    std::iter::from_fn(|| n.assoc.poll_message())
        .map(|m| (m.stream, m.data))
        .collect()
}

fn closed_with(n: &Natter, reason: CloseReason) {
    assert_eq!(n.assoc.state(), State::Closed, "{:?}", n.events);
    let closes: Vec<_> = n.events.iter().filter(|(_, e)| matches!(e, Event::Closed(_))).collect();
    assert_eq!(closes.len(), 1, "{:?}", n.events);
    assert_eq!(closes[0].1, Event::Closed(reason));
}

fn packet(tag: u32, chunks: &[Chunk<'_>]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let header = CommonHeader {
        source_port: 5000,
        destination_port: 5000,
        verification_tag: tag,
    };
    let mut pw = PacketWriter::new(&mut buf, header).unwrap();
    for c in chunks {
        pw.push(c).unwrap();
    }
    let n = pw.finish(ChecksumMode::Crc32c);
    buf[..n].to_vec()
}

/// The control chunks (not DATA or SACK) each side sent, in order.
fn control<A: Side, B: Side>(w: &Wire<A, B>, from_a: bool) -> Vec<u8> {
    w.sent_by(from_a)
        .into_iter()
        .flatten()
        .filter(|t| ![DATA, SACK].contains(t))
        .collect()
}

/// Both sides queue data, one side shuts down at once (so everything is
/// still queued or in flight), over a lossy path: every message arrives
/// whole and in order on each side, and only then does the SHUTDOWN
/// exchange close both.
fn shutdown_delivers_everything(a_shuts: bool, b_shuts: bool, loss_one_in: u64) {
    let mut w = established();
    if loss_one_in > 0 {
        w.drop = random_loss(5, loss_one_in);
    }
    let from_a: Vec<Vec<u8>> = (0..12).map(|i| pattern(20_000 + i * 999, i as u8)).collect();
    let from_b: Vec<Vec<u8>> = (0..7).map(|i| pattern(9_000 + i * 777, 100 + i as u8)).collect();
    for m in &from_a {
        w.a.assoc.send(1, 53, false, m).unwrap();
    }
    for m in &from_b {
        w.b.assoc.send(2, 53, false, m).unwrap();
    }
    let now = w.now;
    if a_shuts {
        w.a.assoc.shutdown(now);
        assert_eq!(w.a.assoc.state(), State::ShutdownPending);
        // §9.2: no new data once the user asked to shut down.
        assert_eq!(w.a.assoc.send(1, 53, false, b"late"), Err(SendError::ShuttingDown));
    }
    if b_shuts {
        w.b.assoc.shutdown(now);
    }
    w.run_for(Duration::from_secs(300));
    let expect: Vec<_> = from_a.iter().map(|m| (1, m.clone())).collect();
    assert_eq!(received(&mut w.b), expect);
    let expect: Vec<_> = from_b.iter().map(|m| (2, m.clone())).collect();
    assert_eq!(received(&mut w.a), expect);
    closed_with(&w.a, CloseReason::Shutdown);
    closed_with(&w.b, CloseReason::Shutdown);
    // No SHUTDOWN before the last DATA of its sender was acknowledged.
    for (from_a, side_shuts) in [(true, a_shuts), (false, b_shuts)] {
        let last_data = w
            .wire
            .iter()
            .filter(|s| s.from_a == from_a && s.chunk_types().contains(&DATA))
            .map(|s| s.at)
            .max()
            .unwrap();
        let first_shutdown = w
            .wire
            .iter()
            .filter(|s| s.from_a == from_a && s.chunk_types().contains(&SHUTDOWN))
            .map(|s| s.at)
            .min();
        // Shutting down alone, a side sends SHUTDOWN; when both do, the
        // later one may answer the other's SHUTDOWN instead (§9.2).
        if side_shuts && !(a_shuts && b_shuts) {
            assert!(first_shutdown.is_some());
        }
        if let Some(at) = first_shutdown {
            assert!(
                side_shuts && at > last_data,
                "SHUTDOWN before the data was acknowledged"
            );
        }
    }
    // Nothing set a timer once closed.
    assert_eq!(w.a.assoc.poll_timeout(), None);
    assert_eq!(w.b.assoc.poll_timeout(), None);
}

#[test]
fn the_initiator_shuts_down_with_data_queued_both_ways() {
    shutdown_delivers_everything(true, false, 0);
}

#[test]
fn the_peer_shuts_down_with_data_queued_both_ways() {
    shutdown_delivers_everything(false, true, 0);
}

#[test]
fn both_shut_down_at_once() {
    shutdown_delivers_everything(true, true, 0);
}

#[test]
fn shutdown_through_ten_percent_loss() {
    for (a, b) in [(true, false), (false, true), (true, true)] {
        shutdown_delivers_everything(a, b, 10);
    }
}

#[test]
fn the_three_way_exchange() {
    let mut w = established();
    let now = w.now;
    w.a.assoc.shutdown(now);
    assert_eq!(
        w.a.assoc.state(),
        State::ShutdownSent,
        "nothing queued: SHUTDOWN at once"
    );
    w.run_for(Duration::from_secs(1));
    assert_eq!(control(&w, true), vec![INIT, COOKIE_ECHO, SHUTDOWN, SHUTDOWN_COMPLETE]);
    assert_eq!(control(&w, false), vec![INIT_ACK, COOKIE_ACK, SHUTDOWN_ACK]);
    closed_with(&w.a, CloseReason::Shutdown);
    closed_with(&w.b, CloseReason::Shutdown);
}

/// Each of SHUTDOWN, SHUTDOWN ACK and SHUTDOWN COMPLETE lost once: T2
/// brings SHUTDOWN or SHUTDOWN ACK again (a lost SHUTDOWN COMPLETE is
/// recovered by the closed side answering the repeated SHUTDOWN ACK as
/// out of the blue, §8.4 5).
#[test]
fn lost_shutdown_chunks_are_sent_again_on_t2() {
    for lost in [SHUTDOWN, SHUTDOWN_ACK, SHUTDOWN_COMPLETE] {
        let mut w = established();
        w.drop = Box::new(move |_, types, n| types == [lost] && n == 0);
        let start = w.now;
        w.a.assoc.send(0, 51, false, b"last words").unwrap();
        w.a.assoc.shutdown(start);
        w.run_for(Duration::from_secs(10));
        assert_eq!(received(&mut w.b), vec![(0, b"last words".to_vec())]);
        closed_with(&w.a, CloseReason::Shutdown);
        closed_with(&w.b, CloseReason::Shutdown);
        let closed_at = |n: &Natter| n.events.last().unwrap().0 - start;
        // One RTO (1 s) of T2 later than a clean exchange.
        let last = closed_at(&w.a).max(closed_at(&w.b));
        assert!(last >= Duration::from_secs(1), "{lost}: {last:?}");
        assert!(last < Duration::from_secs(2), "{lost}: {last:?}");
        let repeated = if lost == SHUTDOWN { SHUTDOWN } else { SHUTDOWN_ACK };
        assert_eq!(
            w.wire.iter().filter(|s| s.chunk_types() == [repeated]).count(),
            2,
            "{lost}"
        );
    }
}

/// The last DATA packet is lost, so only T3-rtx brings it; the user
/// shuts down meanwhile. SHUTDOWN waits for the retransmission's SACK.
#[test]
fn shutdown_during_retransmission() {
    let mut w = established();
    let start = w.now;
    w.drop = Box::new(|from_a, types, n| from_a && types == [DATA] && n == 2);
    let msg = pattern(3 * 1172, 9);
    w.a.assoc.send(0, 53, false, &msg).unwrap();
    // One RTT (20 ms): the SACK reported the first two packets, the
    // probe for the third is not due yet.
    w.run_for(Duration::from_millis(25));
    w.a.assoc.shutdown(w.now);
    assert_eq!(w.a.assoc.state(), State::ShutdownPending);
    w.run_for(Duration::from_secs(10));
    assert_eq!(received(&mut w.b), vec![(0, msg)]);
    closed_with(&w.a, CloseReason::Shutdown);
    closed_with(&w.b, CloseReason::Shutdown);
    let shutdown_at = w
        .wire
        .iter()
        .find(|s| s.chunk_types() == [SHUTDOWN])
        .map(|s| s.at - start)
        .unwrap();
    // The lost packet went again (on a tail loss probe, RFC 8985 §7),
    // and SHUTDOWN only after it.
    let data = w.data_sent_at(true, start);
    assert_eq!(data.len(), 4);
    assert!(shutdown_at > data[3], "{shutdown_at:?} {data:?}");
}

/// RFC 9260 §8.1, §8.2: the peer goes silent; after Path.Max.Retrans (5)
/// T3-rtx expirations, backing off 1+2+4+8+16+32 s, natter sends ABORT
/// and reports the peer unreachable.
#[test]
fn max_retransmissions_abort() {
    let mut w = established();
    let start = w.now;
    w.drop = Box::new(|from_a, types, _| !from_a || types.contains(&DATA));
    w.a.assoc.send(0, 53, false, b"into the void").unwrap();
    w.run_for(Duration::from_secs(200));
    closed_with(&w.a, CloseReason::PeerUnreachable);
    // Tail loss probes (RFC 8985 §7) go before the first T3-rtx, none
    // after it; then one retransmission per expiry.
    let data = w
        .wire
        .iter()
        .filter(|s| s.chunk_types() == [DATA] && s.at - start >= Duration::from_secs(1))
        .count();
    assert_eq!(data, 5, "5 retransmissions on T3-rtx");
    assert_eq!(w.a.assoc.stats().t3_expiries, 6);
    let abort = w.wire.iter().find(|s| s.chunk_types() == [ABORT]).unwrap();
    assert_eq!(abort.at - start, Duration::from_secs(63));
    // The ABORT reached b.
    closed_with(&w.b, CloseReason::PeerAborted);
}

/// The same for an unanswered SHUTDOWN: T2 counts toward the limit.
#[test]
fn an_unanswered_shutdown_aborts() {
    let mut w = established();
    w.drop = Box::new(|from_a, types, _| from_a && types == [SHUTDOWN]);
    let now = w.now;
    w.a.assoc.shutdown(now);
    w.run_for(Duration::from_secs(200));
    closed_with(&w.a, CloseReason::PeerUnreachable);
    assert_eq!(w.wire.iter().filter(|s| s.chunk_types() == [SHUTDOWN]).count(), 6);
    closed_with(&w.b, CloseReason::PeerAborted);
}

#[test]
fn an_empty_data_chunk_is_aborted_on() {
    let mut w = established();
    let tsn = w.b.assoc.peer().unwrap().initial_tsn;
    let empty = Chunk::Data(Data {
        flags: DataFlags {
            immediate: false,
            unordered: false,
            beginning: true,
            end: true,
        },
        tsn,
        stream: 0,
        ssn: 0,
        ppid: 53,
        payload: &[],
    });
    let p = packet(w.b.assoc.local_tag(), &[empty]);
    w.inject_to_b(&p);
    w.run_for(Duration::from_secs(1));
    closed_with(&w.b, CloseReason::ProtocolViolation);
    let abort = w.wire.iter().find(|s| !s.from_a && s.chunk_types() == [ABORT]).unwrap();
    sctp_support::with_first_chunk(&abort.bytes, |c| {
        let Chunk::Abort { causes, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(causes.iter().next(), Some(ErrorCause::NoUserData(tsn)));
    });
    closed_with(&w.a, CloseReason::PeerAborted);
}

/// RFC 9260 §12.4: a SACK of a TSN never sent aborts.
#[test]
fn a_sack_of_a_tsn_never_sent_is_aborted_on() {
    let mut w = established();
    let never = w.b.assoc.peer().unwrap().initial_tsn.plus(1000);
    let sack = Chunk::Sack(Sack {
        cumulative_tsn_ack: never,
        a_rwnd: 65536,
        gap_blocks: FixedList::Items(&[]),
        duplicates: FixedList::Items(&[]),
    });
    let p = packet(w.a.assoc.local_tag(), &[sack]);
    let now = w.now;
    assert_eq!(w.a.assoc.handle_packet(now, &p), Ok(()));
    w.run_for(Duration::from_secs(1));
    closed_with(&w.a, CloseReason::ProtocolViolation);
    closed_with(&w.b, CloseReason::PeerAborted);
}

/// RFC 9260 §8.5.1: ABORT, SHUTDOWN and SHUTDOWN COMPLETE with the wrong
/// tag (or a T bit over the wrong one) change nothing.
#[test]
fn forged_endings_are_ignored() {
    let mut w = established();
    let b_tag = w.b.assoc.local_tag();
    let now = w.now;
    let abort = |reflected| Chunk::Abort {
        reflected,
        causes: TlvList::Items(&[]),
    };
    for p in [
        packet(b_tag.wrapping_add(1), &[abort(false)]),
        packet(0, &[abort(false)]),
        packet(b_tag, &[abort(true)]),
        packet(
            b_tag ^ 0x8000_0000,
            &[Chunk::Shutdown {
                cumulative_tsn_ack: Tsn(0),
            }],
        ),
        packet(b_tag.wrapping_sub(1), &[Chunk::ShutdownComplete { reflected: false }]),
        packet(b_tag, &[Chunk::ShutdownComplete { reflected: true }]),
    ] {
        assert!(matches!(
            w.b.assoc.handle_packet(now, &p),
            Err(DropReason::VerificationTag { .. })
        ));
    }
    assert_eq!(w.b.assoc.state(), State::Established);
    // A SHUTDOWN ACK with the right tag in ESTABLISHED is meaningless.
    let _ = w.b.assoc.handle_packet(now, &packet(b_tag, &[Chunk::ShutdownAck]));
    assert_eq!(w.b.assoc.state(), State::Established);
    w.a.assoc.send(0, 51, false, b"still here").unwrap();
    w.run_for(Duration::from_secs(1));
    assert_eq!(received(&mut w.b), vec![(0, b"still here".to_vec())]);
    assert!(w.b.events.iter().all(|(_, e)| !matches!(e, Event::Closed(_))));
}

/// A flood of one-byte DATA chunks that never make a message (B bit
/// only, a new SSN each): the receiver holds at most its window's worth,
/// overhead counted, and drops the rest; no panic, still answering.
#[test]
fn a_flood_of_tiny_data_chunks_is_bounded() {
    for unordered in [false, true] {
        let mut w = established();
        let b_tag = w.b.assoc.local_tag();
        let first = w.b.assoc.peer().unwrap().initial_tsn;
        let window = Config::default().receive_window as usize;
        let now = w.now;
        let mut tsn = first;
        for p in 0..3000u32 {
            let chunks: Vec<Chunk<'_>> = (0..60u32)
                .map(|i| {
                    let n = p * 60 + i;
                    let c = Chunk::Data(Data {
                        flags: DataFlags {
                            immediate: false,
                            unordered,
                            beginning: true,
                            end: unordered,
                        },
                        tsn,
                        stream: (n % 7) as u16,
                        ssn: n as u16,
                        ppid: 53,
                        payload: &[0x55],
                    });
                    tsn = tsn.next();
                    c
                })
                .collect();
            let _ = w.b.assoc.handle_packet(now, &packet(b_tag, &chunks));
            assert!(
                w.b.assoc.received_amount() <= window + 64 + 1,
                "{} bytes held",
                w.b.assoc.received_amount()
            );
        }
        assert!(w.b.assoc.received_amount() > window / 2);
        assert_eq!(w.b.assoc.state(), State::Established);
        // b answers with a SACK, and keeps working.
        let mut buf = [0u8; 1500];
        let n = w.b.assoc.poll_transmit(now, &mut buf).unwrap().unwrap();
        assert!(sctp_support::chunk_types(&buf[..n]).contains(&SACK));
    }
}

// ----- against sctp-proto -----

#[test]
fn natter_shuts_down_and_sctp_proto_closes() {
    let mut w = natter_and_proto();
    let now = w.now;
    w.a.assoc.shutdown(now);
    w.run_for(Duration::from_secs(5));
    closed_with(&w.a, CloseReason::Shutdown);
    assert!(w.b.is_closed(), "sctp-proto: {:?}", w.b.events);
    assert_eq!(control(&w, true), vec![INIT, COOKIE_ECHO, SHUTDOWN, SHUTDOWN_COMPLETE]);
}

/// sctp-proto shuts down: natter answers SHUTDOWN ACK and closes, and
/// sctp-proto ends it with SHUTDOWN COMPLETE (RFC 9260 §9.2). sctp-proto
/// 0.10.8 then stays in SHUTDOWN-SENT (no AssociationLost; its user drops
/// the association on the Drained event `shutdown()` raises), so its
/// state is not asserted, only what it sent.
#[test]
fn sctp_proto_shuts_down_and_natter_closes() {
    let mut w = natter_and_proto();
    w.b.assoc().shutdown().unwrap();
    w.run_for(Duration::from_secs(5));
    closed_with(&w.a, CloseReason::Shutdown);
    let from_natter = control(&w, true);
    assert_eq!(from_natter.last(), Some(&SHUTDOWN_ACK));
    let from_proto = control(&w, false);
    assert_eq!(from_proto[from_proto.len() - 2..], [SHUTDOWN, SHUTDOWN_COMPLETE]);
}

/// natter opens a channel, queues 256 KiB messages and shuts down at
/// once, through 5% loss: sctp-proto gets every message before the
/// SHUTDOWN, and both close.
#[test]
fn natter_shuts_down_with_data_queued_to_sctp_proto() {
    let mut w = natter_and_proto();
    w.drop = random_loss(3, 20);
    w.a.assoc.send(0, 50, false, &dcep_open("bulk")).unwrap();
    let messages: Vec<Vec<u8>> = (0..3).map(|i| pattern(256 * 1024, i)).collect();
    for m in &messages {
        w.a.assoc.send(0, 53, false, m).unwrap();
    }
    let now = w.now;
    w.a.assoc.shutdown(now);
    w.run_for(Duration::from_secs(120));
    let got: Vec<&Vec<u8>> =
        w.b.received
            .iter()
            .filter(|(_, ppid, _)| *ppid == 53)
            .map(|(.., data)| data)
            .collect();
    assert_eq!(got.len(), messages.len());
    assert!(
        got.iter().zip(&messages).all(|(g, m)| *g == m),
        "a message arrived changed"
    );
    assert!(w.wire.iter().any(|s| s.lost));
    closed_with(&w.a, CloseReason::Shutdown);
    assert!(w.b.is_closed(), "sctp-proto: {:?}", w.b.events);
}
