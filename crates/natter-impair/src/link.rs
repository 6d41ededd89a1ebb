//! `Link`: one direction of a path as a sans-IO state machine.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{LinkConfig, QueueLimit};
use crate::error::ConfigError;
use crate::loss::LossProcess;
use crate::stats::LinkStats;

/// One direction of a path: packets go in with the time they were sent
/// and come out when they arrive at the far end.
///
/// A packet first meets the bottleneck: if the drop-tail queue has no
/// room it is dropped, otherwise it leaves when the rate has sent it and
/// every packet before it (following the rate schedule), or, with a
/// token bucket ([`LinkConfig::burst`]), as soon as the bucket holds its
/// size after the packets before it left. Then the path:
/// the loss model may take it; it arrives after the delay with jitter
/// (never before the packet ahead of it), unless it is picked to be held
/// back and overtaken; it may arrive twice.
///
/// Methods, as in natter's protocol cores: [`handle_packet`] for input,
/// [`poll_packet`] for output (call until `None`), [`poll_timeout`] for
/// the next time a packet is due, and getters. No clock is read: time is
/// an argument and must not go backwards. Randomness comes from the seed,
/// so the same seed and the same calls give the same output.
///
/// [`handle_packet`]: Link::handle_packet
/// [`poll_packet`]: Link::poll_packet
/// [`poll_timeout`]: Link::poll_timeout
#[derive(Debug)]
pub struct Link<T> {
    config: LinkConfig,
    /// Where the rate schedule's times count from.
    start: Instant,
    rng: StdRng,
    loss: LossProcess,
    /// When each packet in the bottleneck's queue leaves it, and its size.
    backlog: VecDeque<(Instant, u64)>,
    backlog_bytes: u64,
    /// When the bottleneck has sent everything it has taken.
    busy_until: Instant,
    /// With a token bucket: the bits it held when the last packet left
    /// (at `busy_until`); full at the start.
    tokens: u128,
    /// Past the bottleneck, by arrival time, then by order of sending.
    in_flight: BinaryHeap<Reverse<InFlight<T>>>,
    /// The arrival of the latest packet that was not held back; jitter
    /// delivers no later packet before it.
    last_arrival: Instant,
    sent: u64,
    stats: LinkStats,
}

impl<T: AsRef<[u8]> + Clone> Link<T> {
    /// A link that starts at `now`, drawing its randomness from `seed`.
    pub fn new(config: LinkConfig, seed: u64, now: Instant) -> Result<Link<T>, ConfigError> {
        config.validate()?;
        let bucket_bits = config.burst.map_or(0, |b| u128::from(b) * 8);
        Ok(Link {
            loss: LossProcess::new(config.loss),
            config,
            start: now,
            rng: StdRng::seed_from_u64(seed),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            busy_until: now,
            tokens: bucket_bits,
            in_flight: BinaryHeap::new(),
            last_arrival: now,
            sent: 0,
            stats: LinkStats::default(),
        })
    }

    /// A packet sent into the link at `now`.
    pub fn handle_packet(&mut self, now: Instant, packet: T) {
        let size = packet.as_ref().len() as u64;
        self.stats.received += 1;
        self.stats.received_bytes += size;
        let Some(departure) = self.bottleneck(now, size) else {
            self.stats.queue_drops += 1;
            self.stats.queue_drop_bytes += size;
            return;
        };
        if self.loss.lose(&mut self.rng) {
            self.stats.lost += 1;
            return;
        }
        let mut arrival = departure + self.delay();
        if chance(&mut self.rng, self.config.reorder) {
            arrival += self.config.reorder_delay;
            self.stats.reordered += 1;
        } else {
            arrival = arrival.max(self.last_arrival);
            self.last_arrival = arrival;
        }
        if chance(&mut self.rng, self.config.duplicate) {
            self.stats.duplicated += 1;
            self.push(arrival, packet.clone());
        }
        self.push(arrival, packet);
    }

    /// The next packet that has arrived by `now`, in order of arrival.
    pub fn poll_packet(&mut self, now: Instant) -> Option<T> {
        if self.in_flight.peek()?.0.arrival > now {
            return None;
        }
        // peek just found a packet.
        let Reverse(next) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.delivered_bytes += next.packet.as_ref().len() as u64;
        Some(next.packet)
    }

    /// When the next packet arrives; `None` while the link is empty.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.peek().map(|next| next.0.arrival)
    }

    /// How long a packet sent at `now` would wait for the bottleneck
    /// before it begins to be sent.
    pub fn queue_delay(&self, now: Instant) -> Duration {
        self.busy_until.saturating_duration_since(now)
    }

    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// When a packet of `size` bytes offered at `now` leaves the
    /// bottleneck; `None` if the queue has no room for it.
    fn bottleneck(&mut self, now: Instant, size: u64) -> Option<Instant> {
        let Some(schedule) = &self.config.rate else {
            return Some(now);
        };
        while let Some(&(leaves, bytes)) = self.backlog.front() {
            if leaves > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= bytes;
        }
        let elapsed = now.saturating_duration_since(self.start);
        let rate = schedule.rate_at(elapsed);
        let mut limit = self.config.queue.bytes(rate);
        if let (QueueLimit::Time(_), Some(burst)) = (self.config.queue, self.config.burst) {
            // tbf's `latency`: the limit holds the bucket too.
            limit = limit.saturating_add(burst);
        }
        if !self.backlog.is_empty() && self.backlog_bytes + size > limit {
            return None;
        }
        let begin = self.busy_until.max(now).saturating_duration_since(self.start);
        let bits = u128::from(size) * 8;
        let leaves = match self.config.burst {
            None => self.start + schedule.finish(begin, bits),
            // tbf drops what its bucket can never hold.
            Some(burst) if size > burst => return None,
            Some(burst) => {
                let since = self.busy_until.saturating_duration_since(self.start);
                let held = (self.tokens + schedule.bits_between(since, begin)).min(u128::from(burst) * 8);
                if held >= bits {
                    self.tokens = held - bits;
                    self.start + begin
                } else {
                    self.tokens = 0;
                    self.start + schedule.finish(begin, bits - held)
                }
            }
        };
        self.busy_until = leaves;
        self.backlog.push_back((leaves, size));
        self.backlog_bytes += size;
        Some(leaves)
    }

    /// One packet's propagation delay: uniform in `delay ± jitter`.
    fn delay(&mut self) -> Duration {
        let (delay, jitter) = (self.config.delay, self.config.jitter);
        if jitter.is_zero() {
            return delay;
        }
        // validate() keeps jitter within the delay, so this stays >= 0.
        delay - jitter + self.rng.gen_range(Duration::ZERO..=jitter * 2)
    }

    fn push(&mut self, arrival: Instant, packet: T) {
        self.sent += 1;
        self.in_flight.push(Reverse(InFlight {
            arrival,
            order: self.sent,
            packet,
        }));
    }
}

/// True with probability `p`; no draw for `p` zero.
fn chance(rng: &mut StdRng, p: f64) -> bool {
    p > 0.0 && rng.gen_bool(p)
}

/// A packet past the bottleneck.
#[derive(Debug)]
struct InFlight<T> {
    arrival: Instant,
    /// Breaks ties in arrival time by order of sending.
    order: u64,
    packet: T,
}

impl<T> PartialEq for InFlight<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for InFlight<T> {}

impl<T> PartialOrd for InFlight<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for InFlight<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.arrival, self.order).cmp(&(other.arrival, other.order))
    }
}
