//! natter's own SCTP against a small drop-tail queue (issue 15): what a
//! loopback run meets when the receiver's UDP socket buffer overflows.
//! A burst larger than the queue loses its tail, and a receiver that
//! stops taking packets for a while loses the whole tail of the flight;
//! both are recovered by fast retransmit (§7.2.4, with a tail loss
//! probe, RFC 8985 §7), not by T3-rtx (§6.3.3), whose RTO.Min stalls a
//! fast path for far longer than its RTT. On a long path, slow start
//! leaves by HyStart++ (RFC 9406) before it overflows the bottleneck's
//! queue by a whole window. Protocol properties in virtual time, seeded.

mod sctp_support;

use std::time::{Duration, Instant};

use sctp_support::path::{Link, Path};

/// The loopback receiver: it takes about 100 MB/s of packets off its
/// socket, which holds about 100 packets (Linux's default 212992-byte
/// SO_RCVBUF, charged about 2 KiB per 1200-byte datagram).
const LOOPBACK_RATE: u64 = 100_000_000;
const LOOPBACK_QUEUE: u64 = 100 * 1257;
const LOOPBACK_ONE_WAY: Duration = Duration::from_micros(50);

/// 50 MB in 16 KiB messages, as bench/datachannel sends.
const MESSAGE: usize = 16 * 1024;
const MESSAGES: u64 = 50_000_000 / MESSAGE as u64;

fn loopback() -> Path {
    let now = Instant::now();
    let link = |seed| Link::new(now, LOOPBACK_RATE, LOOPBACK_ONE_WAY, LOOPBACK_QUEUE, seed);
    let mut p = Path::new(now, link(1), link(2), MESSAGE);
    p.to_send = MESSAGES;
    p
}

#[test]
fn a_small_receive_queue_loses_bursts_to_fast_retransmit_not_rto() {
    let mut p = loopback();
    let start = p.now;
    p.run_until(start + Duration::from_secs(10));
    let done = p.delivered.last().map(|(at, _)| *at).expect("b read messages");
    let stats = p.a.stats();
    let rate = (p.delivered.len() * MESSAGE) as f64 / (done - start).as_secs_f64();
    eprintln!(
        "loopback model: {:.1} MB/s of {} ({} dropped by the queue, {} chunks retransmitted, {} fast, {} T3-rtx)",
        rate / 1e6,
        LOOPBACK_RATE / 1_000_000,
        p.a_to_b.dropped_by_queue,
        stats.chunks_retransmitted,
        stats.fast_retransmits,
        stats.t3_expiries,
    );
    assert_eq!(p.delivered.len() as u64, MESSAGES, "every message arrived");
    assert_eq!(p.misdelivered, 0, "whole, once, in order");
    assert_eq!(stats.t3_expiries, 0, "no loss waited for T3-rtx");
    assert!(
        rate >= 0.7 * LOOPBACK_RATE as f64,
        "{:.1} MB/s through a 100 MB/s receiver",
        rate / 1e6
    );
}

/// natter-io pauses a connection whose application reads its events too
/// slowly, and drops its SCTP packets meanwhile: the whole tail of the
/// flight is lost, and no later packet reports the gap (300 ms: longer
/// than the receiver's delayed SACK, whose SACK would otherwise release
/// new DATA that reports it). A tail loss probe (RFC 8985 §7) 2 SRTT
/// after the last transmission, doubled while unanswered, finds the
/// receiver back and the loss is repaired by fast retransmit, without
/// waiting for T3-rtx.
#[test]
fn a_receiver_that_drops_everything_for_a_while_costs_no_rto() {
    let mut p = loopback();
    let start = p.now;
    p.a_to_b.down = Some((start + Duration::from_millis(100), start + Duration::from_millis(400)));
    p.run_until(start + Duration::from_secs(10));
    let done = p.delivered.last().map(|(at, _)| *at).expect("b read messages");
    let stats = p.a.stats();
    eprintln!(
        "300 ms without a receiver: done in {:?} ({} packets dropped meanwhile, {} chunks retransmitted, {} fast, {} T3-rtx)",
        done - start,
        p.a_to_b.dropped_while_down,
        stats.chunks_retransmitted,
        stats.fast_retransmits,
        stats.t3_expiries,
    );
    assert!(p.a_to_b.dropped_while_down > 10, "the pause cost a tail of packets");
    assert_eq!(p.delivered.len() as u64, MESSAGES, "every message arrived");
    assert_eq!(p.misdelivered, 0, "whole, once, in order");
    assert_eq!(stats.t3_expiries, 0, "the tail was not left to T3-rtx");
    assert!(stats.fast_retransmits > 0);
}
