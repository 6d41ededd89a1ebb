//! Two [`SctpTransport`]s wired through an in-memory link under a virtual
//! clock, in the manner of quinn-proto's test `Pair`.
//!
//! The link is sans-IO too: each packet gets the link's latency plus a
//! seeded jitter (so packets can overtake each other) and may be lost
//! with the link's seeded loss rate. [`Pair::step`] delivers what is
//! due, fires due timers, then jumps the clock to the next thing that
//! will happen; [`Pair::drive_until`] steps until a predicate holds.
//! Every event either side raises is kept, in order.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use natter_sctp::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

/// One direction of the link.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub latency: Duration,
    /// Each packet's delay is latency plus a uniform draw from 0..jitter.
    pub jitter: Duration,
    /// Probability that a packet is dropped.
    pub loss: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// A packet on the link: arrival, order sent, sender, bytes.
type InFlight = (Instant, u64, Side, Vec<u8>);

pub struct Pair {
    pub now: Instant,
    pub client: SctpTransport,
    pub server: SctpTransport,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    /// Link from client to server, and back.
    pub up: Link,
    pub down: Link,
    rng: StdRng,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    /// Packets sent and dropped, per sending side.
    pub sent: [u64; 2],
    pub dropped: [u64; 2],
    /// When set, every packet sent (lost or not) is kept in `wire`.
    pub tap: bool,
    pub wire: Vec<(Side, Vec<u8>)>,
}

/// A DATA chunk (RFC 9260 §3.3.1) seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChunk {
    pub unordered: bool,
    pub tsn: u32,
    pub stream: u16,
    pub ssn: u16,
    pub ppid: u32,
    pub payload: Vec<u8>,
}

/// The chunks of an SCTP packet: (type, flags, value).
pub fn chunks(packet: &[u8]) -> Vec<(u8, u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 12;
    while i + 4 <= packet.len() {
        let len = usize::from(u16::from_be_bytes([packet[i + 2], packet[i + 3]]));
        if len < 4 || i + len > packet.len() {
            break;
        }
        out.push((packet[i], packet[i + 1], &packet[i + 4..i + len]));
        i += len.div_ceil(4) * 4;
    }
    out
}

/// The DATA chunks of a packet.
pub fn data_chunks(packet: &[u8]) -> Vec<DataChunk> {
    chunks(packet)
        .into_iter()
        .filter(|(t, _, v)| *t == 0 && v.len() >= 12)
        .map(|(_, flags, v)| DataChunk {
            unordered: flags & 0x04 != 0,
            tsn: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            stream: u16::from_be_bytes([v[4], v[5]]),
            ssn: u16::from_be_bytes([v[6], v[7]]),
            ppid: u32::from_be_bytes([v[8], v[9], v[10], v[11]]),
            payload: v[12..].to_vec(),
        })
        .collect()
}

impl Pair {
    pub fn new(seed: u64) -> Pair {
        Self::with_configs(
            seed,
            SctpConfig::new(DtlsRole::Client),
            SctpConfig::new(DtlsRole::Server),
        )
    }

    pub fn with_configs(seed: u64, client: SctpConfig, server: SctpConfig) -> Pair {
        Pair {
            now: Instant::now(),
            client: SctpTransport::new(client).expect("valid client config"),
            server: SctpTransport::new(server).expect("valid server config"),
            client_events: Vec::new(),
            server_events: Vec::new(),
            up: Link::default(),
            down: Link::default(),
            rng: StdRng::seed_from_u64(seed),
            in_flight: BinaryHeap::new(),
            seq: 0,
            sent: [0; 2],
            dropped: [0; 2],
            tap: false,
            wire: Vec::new(),
        }
    }

    pub fn side(&mut self, side: Side) -> &mut SctpTransport {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    pub fn events(&self, side: Side) -> &[Event] {
        match side {
            Side::Client => &self.client_events,
            Side::Server => &self.server_events,
        }
    }

    /// Takes each side's output: packets onto the link, events into the log.
    fn drain(&mut self) {
        for side in [Side::Client, Side::Server] {
            let link = match side {
                Side::Client => self.up,
                Side::Server => self.down,
            };
            let now = self.now;
            while let Some(p) = self.side(side).poll_transmit(now) {
                self.sent[side as usize] += 1;
                if self.tap {
                    self.wire.push((side, p.to_vec()));
                }
                if link.loss > 0.0 && self.rng.gen_bool(link.loss) {
                    self.dropped[side as usize] += 1;
                    continue;
                }
                let jitter = if link.jitter.is_zero() {
                    Duration::ZERO
                } else {
                    link.jitter.mul_f64(self.rng.gen::<f64>())
                };
                self.seq += 1;
                let at = self.now + link.latency + jitter;
                self.in_flight.push(Reverse((at, self.seq, side, p.to_vec())));
            }
            while let Some(e) = self.side(side).poll_event() {
                match side {
                    Side::Client => self.client_events.push(e),
                    Side::Server => self.server_events.push(e),
                }
            }
        }
    }

    /// The next moment something happens, if anything will.
    fn next_wakeup(&self) -> Option<Instant> {
        let packet = self.in_flight.peek().map(|Reverse((at, ..))| *at);
        [packet, self.client.poll_timeout(), self.server.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Delivers what is due and fires due timers, then advances the
    /// clock to the next wake-up. False once nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.drain();
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        self.now = self.now.max(next);
        while let Some(Reverse((at, ..))) = self.in_flight.peek() {
            if *at > self.now {
                break;
            }
            let Some(Reverse((_, _, from, data))) = self.in_flight.pop() else {
                break;
            };
            let to = match from {
                Side::Client => Side::Server,
                Side::Server => Side::Client,
            };
            let now = self.now;
            self.side(to).handle_receive(now, &data);
        }
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            if self.side(side).poll_timeout().is_some_and(|t| t <= now) {
                self.side(side).handle_timeout(now);
            }
        }
        self.drain();
        true
    }

    /// Steps until `done` holds; panics after `max_steps`.
    pub fn drive_until(&mut self, max_steps: usize, mut done: impl FnMut(&mut Pair) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            if !self.step() {
                assert!(done(self), "the pair went idle before the condition held");
                return;
            }
        }
        assert!(done(self), "condition not met within {max_steps} steps");
    }

    /// Steps for `d` of virtual time (or until idle).
    pub fn drive_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            if !self.step() {
                return;
            }
        }
    }

    pub fn connect(&mut self) {
        self.drive_until(1000, |p| {
            p.client.state() == TransportState::Established && p.server.state() == TransportState::Established
        });
    }

    /// Messages a side received on `channel`, in order.
    pub fn messages(&self, side: Side, channel: ChannelId) -> Vec<(Vec<u8>, bool)> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                Event::Message {
                    channel: c,
                    data,
                    is_text,
                } if *c == channel => Some((data.clone(), *is_text)),
                _ => None,
            })
            .collect()
    }

    pub fn count(&self, side: Side, f: impl Fn(&Event) -> bool) -> usize {
        self.events(side).iter().filter(|e| f(e)).count()
    }

    /// Opens a channel from `side` and waits until both ends have it open.
    pub fn open(&mut self, side: Side, label: &str, protocol: &str, options: ChannelOptions) -> ChannelId {
        let id = self
            .side(side)
            .open_channel(label, protocol, options)
            .expect("open_channel");
        let peer = match side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        self.drive_until(1000, |p| {
            p.events(peer)
                .iter()
                .any(|e| matches!(e, Event::ChannelOpen { id: i, .. } if *i == id))
        });
        id
    }
}

impl Pair {
    /// The DATA chunks `side` put on the wire, in order (needs `tap`).
    pub fn data_sent(&self, side: Side) -> Vec<DataChunk> {
        self.wire
            .iter()
            .filter(|(s, _)| *s == side)
            .flat_map(|(_, p)| data_chunks(p))
            .collect()
    }
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}
