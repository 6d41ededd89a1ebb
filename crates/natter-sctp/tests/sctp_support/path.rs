//! A path with a bottleneck, for natter's association in virtual time:
//! each direction is a FIFO that serializes packets at a link rate
//! after a drop-tail queue, then a propagation delay; it may also lose
//! packets at random or drop those larger than a path MTU (which a test
//! may lower mid-transfer). `a` sends a bulk transfer of numbered
//! messages; `b` reads them (or stops reading) and checks that they
//! come whole, once and in order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use natter_sctp::sctp::association::{Association, Config, State};

/// Bytes per SCTP packet on the wire besides the SCTP packet itself:
/// DTLS, UDP, IPv4.
pub const WIRE_OVERHEAD: u64 = 29 + 8 + 20;

/// One direction of a path.
pub struct Link {
    /// Bytes per second the bottleneck serializes.
    pub rate: u64,
    pub one_way: Duration,
    /// The drop-tail queue in front of the bottleneck, in wire bytes.
    pub queue_bytes: u64,
    /// SCTP packets larger than this are dropped (a path MTU, less the
    /// DTLS, UDP and IP headers).
    pub mtu: usize,
    pub loss_per_mille: u64,
    /// Everything sent in `[from, to)` is dropped (a receiver that
    /// stopped taking packets for a while).
    pub down: Option<(Instant, Instant)>,
    rng: u64,
    /// When the bottleneck finishes the last packet queued.
    busy_until: Instant,
    /// Packets and when they arrive; FIFO, so arrivals are in order.
    arriving: VecDeque<(Instant, Vec<u8>)>,
    pub dropped_by_queue: u64,
    pub dropped_by_loss: u64,
    pub dropped_by_mtu: u64,
    pub dropped_while_down: u64,
}

impl Link {
    pub fn new(now: Instant, rate: u64, one_way: Duration, queue_bytes: u64, seed: u64) -> Self {
        Link {
            rate,
            one_way,
            queue_bytes,
            mtu: usize::MAX,
            loss_per_mille: 0,
            down: None,
            rng: seed | 1,
            busy_until: now,
            arriving: VecDeque::new(),
            dropped_by_queue: 0,
            dropped_by_loss: 0,
            dropped_by_mtu: 0,
            dropped_while_down: 0,
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped_by_queue + self.dropped_by_loss + self.dropped_by_mtu + self.dropped_while_down
    }

    fn send(&mut self, now: Instant, packet: &[u8]) {
        if self.down.is_some_and(|(from, to)| now >= from && now < to) {
            self.dropped_while_down += 1;
            return;
        }
        if packet.len() > self.mtu {
            self.dropped_by_mtu += 1;
            return;
        }
        let start = self.busy_until.max(now);
        let backlog = (start - now).as_nanos() as u64 * self.rate / 1_000_000_000;
        let size = packet.len() as u64 + WIRE_OVERHEAD;
        if backlog + size > self.queue_bytes {
            self.dropped_by_queue += 1;
            return;
        }
        self.busy_until = start + Duration::from_nanos(size * 1_000_000_000 / self.rate);
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng % 1000 < self.loss_per_mille {
            self.dropped_by_loss += 1;
            return;
        }
        self.arriving
            .push_back((self.busy_until + self.one_way, packet.to_vec()));
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

/// Two associations on a path, `a` sending to `b`.
pub struct Path {
    pub now: Instant,
    pub a: Association,
    pub b: Association,
    pub a_to_b: Link,
    pub b_to_a: Link,
    /// Bytes per message a sends.
    pub message: usize,
    /// Messages a queues in all (`u64::MAX`: without end; 0 at first).
    pub to_send: u64,
    /// Messages a queued.
    pub sent: u64,
    /// Whether b reads what arrives.
    pub reading: bool,
    /// Payload bytes b read, and when (one entry per message).
    pub delivered: Vec<(Instant, usize)>,
    /// Messages b read that were not the next in order, or not whole.
    pub misdelivered: u64,
    /// Messages b read on streams other than the bulk's (stream 1), for
    /// tests that send beside it: when, the stream, the bytes.
    pub beside: Vec<(Instant, u16, Vec<u8>)>,
}

impl Path {
    /// Two associations with natter's data channel defaults, connected
    /// at `now` over `a_to_b` and `b_to_a`.
    pub fn new(now: Instant, a_to_b: Link, b_to_a: Link, message: usize) -> Self {
        let config = || Config {
            receive_window: natter_sctp::SctpConfig::new(natter_sctp::DtlsRole::Client).receive_window,
            ..Config::default()
        };
        Self::with_configs(now, a_to_b, b_to_a, message, config(), config())
    }

    pub fn with_configs(now: Instant, a_to_b: Link, b_to_a: Link, message: usize, a: Config, b: Config) -> Self {
        let mut p = Path {
            now,
            a: Association::new(a, &[1; 32], now),
            b: Association::new(b, &[2; 32], now),
            a_to_b,
            b_to_a,
            message,
            to_send: 0,
            sent: 0,
            reading: true,
            delivered: Vec::new(),
            misdelivered: 0,
            beside: Vec::new(),
        };
        p.a.connect(now);
        p.run_until(now + Duration::from_secs(1));
        assert_eq!(p.a.state(), State::Established);
        p
    }

    /// Message `i`: its number, then bytes that depend on it.
    fn message(&self, i: u64) -> Vec<u8> {
        let mut m: Vec<u8> = (0..self.message).map(|k| (k as u64 ^ i) as u8).collect();
        let n = m.len().min(8);
        m[..n].copy_from_slice(&i.to_be_bytes()[..n]);
        m
    }

    /// Runs the path, keeping a's send queue topped up (while it has
    /// messages to send) and b reading everything at once (while
    /// `reading`), until `end`.
    pub fn run_until(&mut self, end: Instant) {
        let mut buf = [0u8; 1500];
        loop {
            if self.a.state() == State::Established {
                while self.sent < self.to_send && self.a.buffered_amount() < 32 * self.message.max(8192) {
                    let m = self.message(self.sent);
                    self.a.send(1, 53, false, &m).expect("a queues the message");
                    self.sent += 1;
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
            if self.reading {
                self.read(now);
            }
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
        }
        self.now = end;
    }

    /// b reads every message it has.
    pub fn read(&mut self, now: Instant) {
        while let Some(m) = self.b.poll_message() {
            if m.stream != 1 {
                self.beside.push((now, m.stream, m.data));
                continue;
            }
            let i = self.delivered.len() as u64;
            if m.data != self.message(i) {
                self.misdelivered += 1;
            }
            self.delivered.push((now, m.data.len()));
            self.b.recycle(m.data);
        }
    }

    /// What b read in `[from, to)`, in bytes per second.
    pub fn goodput(&self, from: Instant, to: Instant) -> f64 {
        let bytes: usize = self
            .delivered
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, n)| n)
            .sum();
        bytes as f64 / (to - from).as_secs_f64()
    }
}
