//! natter's own SCTP on long fat paths (issue 15): a bulk transfer over a
//! 100 Mbit/s bottleneck with 100 ms RTT fills the link once slow start
//! is over (RFC 9260 §7.2.1, §7.2.2: the cwnd grows to the path's
//! bandwidth-delay product, and the receive window is no smaller), and
//! with 1% random loss it keeps at least what Reno-style congestion
//! control allows at that loss rate. A protocol property in virtual time:
//! two associations and a drop-tail bottleneck queue, seeded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Association, Config, State};

/// The bottleneck: 100 Mbit/s.
const RATE_BYTES_PER_SEC: u64 = 100_000_000 / 8;
/// Propagation delay each way: 100 ms RTT.
const ONE_WAY: Duration = Duration::from_millis(50);
/// The bottleneck's queue: one bandwidth-delay product, as routers are
/// commonly sized.
const QUEUE_BYTES: u64 = RATE_BYTES_PER_SEC / 10;
/// Bytes per SCTP packet on the wire besides the SCTP packet itself:
/// DTLS, UDP, IPv4.
const WIRE_OVERHEAD: u64 = 29 + 8 + 20;
/// What the sender keeps queued: 256 KiB messages, as the bench sends.
const MESSAGE: usize = 256 * 1024;

/// One direction of the path: a FIFO bottleneck that serializes packets
/// at the link rate after a drop-tail queue, then the propagation delay.
struct Link {
    /// When the bottleneck finishes the last packet queued.
    busy_until: Instant,
    /// Packets and when they arrive; FIFO, so arrivals are in order.
    arriving: VecDeque<(Instant, Vec<u8>)>,
    loss_per_mille: u64,
    rng: u64,
    dropped_by_queue: u64,
    dropped_by_loss: u64,
}

impl Link {
    fn new(now: Instant, loss_per_mille: u64, seed: u64) -> Self {
        Link {
            busy_until: now,
            arriving: VecDeque::new(),
            loss_per_mille,
            rng: seed | 1,
            dropped_by_queue: 0,
            dropped_by_loss: 0,
        }
    }

    fn send(&mut self, now: Instant, packet: &[u8]) {
        let start = self.busy_until.max(now);
        let backlog = (start - now).as_nanos() as u64 * RATE_BYTES_PER_SEC / 1_000_000_000;
        let size = packet.len() as u64 + WIRE_OVERHEAD;
        if backlog + size > QUEUE_BYTES {
            self.dropped_by_queue += 1;
            return;
        }
        self.busy_until = start + Duration::from_nanos(size * 1_000_000_000 / RATE_BYTES_PER_SEC);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 1000 < self.loss_per_mille {
            self.dropped_by_loss += 1;
            return;
        }
        self.arriving.push_back((self.busy_until + ONE_WAY, packet.to_vec()));
    }

    /// The next packet that has arrived by `now`.
    fn arrived(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.arriving.front().is_some_and(|(at, _)| *at <= now) {
            self.arriving.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }
}

struct Path {
    now: Instant,
    a: Association,
    b: Association,
    a_to_b: Link,
    b_to_a: Link,
    /// Payload bytes b read, and when (one entry per message).
    delivered: Vec<(Instant, usize)>,
}

impl Path {
    fn new(loss_per_mille: u64, seed: u64) -> Self {
        let now = Instant::now();
        // The defaults natter's data channels use (natter_sctp::SctpConfig).
        let config = || Config {
            receive_window: natter_sctp::SctpConfig::new(natter_sctp::DtlsRole::Client).receive_window,
            ..Config::default()
        };
        let mut p = Path {
            now,
            a: Association::new(config(), &[1; 32], now),
            b: Association::new(config(), &[2; 32], now),
            a_to_b: Link::new(now, loss_per_mille, seed),
            b_to_a: Link::new(now, loss_per_mille, seed.wrapping_mul(31)),
            delivered: Vec::new(),
        };
        p.a.connect(now);
        p.run_until(now + Duration::from_secs(1));
        assert_eq!(p.a.state(), State::Established);
        p
    }

    /// Runs the path, keeping a's send queue topped up and b reading
    /// everything at once, until `end`.
    fn run_until(&mut self, end: Instant) {
        let mut buf = [0u8; 1500];
        let message = vec![7u8; MESSAGE];
        loop {
            if self.a.state() == State::Established {
                while self.a.buffered_amount() < 32 * MESSAGE {
                    self.a.send(1, 53, false, &message).expect("a queues the message");
                }
            }
            while let Some(n) = self.a.poll_transmit(self.now, &mut buf).expect("room for a packet") {
                self.a_to_b.send(self.now, &buf[..n]);
            }
            while let Some(n) = self.b.poll_transmit(self.now, &mut buf).expect("room for a packet") {
                self.b_to_a.send(self.now, &buf[..n]);
            }
            let next = [
                self.a_to_b.arriving.front().map(|(at, _)| *at),
                self.b_to_a.arriving.front().map(|(at, _)| *at),
                self.a.poll_timeout(),
                self.b.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|t| *t <= end) else { break };
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(p) = self.a_to_b.arrived(now) {
                let _ = self.b.handle_packet(now, &p);
            }
            while let Some(p) = self.b_to_a.arrived(now) {
                let _ = self.a.handle_packet(now, &p);
            }
            if self.a.poll_timeout().is_some_and(|t| t <= now) {
                self.a.handle_timeout(now);
            }
            if self.b.poll_timeout().is_some_and(|t| t <= now) {
                self.b.handle_timeout(now);
            }
            while let Some(m) = self.b.poll_message() {
                self.delivered.push((now, m.data.len()));
                self.b.recycle(m.data);
            }
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
        }
        self.now = end;
    }

    /// What b read in `[from, to)`, as a share of the link's payload rate.
    fn share_of_link(&self, from: Instant, to: Instant) -> f64 {
        let bytes: usize = self
            .delivered
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, n)| n)
            .sum();
        bytes as f64 / (to - from).as_secs_f64() / RATE_BYTES_PER_SEC as f64
    }
}

#[test]
fn a_bulk_transfer_fills_a_100_mbit_100_ms_path_after_slow_start() {
    let mut p = Path::new(0, 1);
    let start = p.now;
    p.run_until(start + Duration::from_secs(20));
    let share = p.share_of_link(start + Duration::from_secs(5), start + Duration::from_secs(20));
    eprintln!(
        "no loss: {:.1}% of the link from 5 s to 20 s ({} packets dropped by the queue)",
        share * 100.0,
        p.a_to_b.dropped_by_queue
    );
    assert!(
        share >= 0.70,
        "{:.1}% of a 100 Mbit/s, 100 ms RTT link after slow start",
        share * 100.0
    );
}

#[test]
fn one_percent_loss_on_a_100_ms_path_keeps_what_reno_allows() {
    let mut p = Path::new(10, 2);
    let start = p.now;
    p.run_until(start + Duration::from_secs(30));
    let share = p.share_of_link(start + Duration::from_secs(5), start + Duration::from_secs(30));
    // Mathis et al. (1997): Reno-style congestion control sustains
    // MSS / RTT * sqrt(3/2) / sqrt(p) at a random loss rate p.
    let mss = 1200.0 - 28.0;
    let reno = mss / 0.1 * (1.5f64 / 0.01).sqrt() / RATE_BYTES_PER_SEC as f64;
    eprintln!(
        "1% loss: {:.2}% of the link from 5 s to 30 s, Reno's bound {:.2}% ({} lost)",
        share * 100.0,
        reno * 100.0,
        p.a_to_b.dropped_by_loss
    );
    assert!(
        share >= reno,
        "{:.2}% of the link at 1% loss, under the {:.2}% Reno sustains",
        share * 100.0,
        reno * 100.0
    );
}
