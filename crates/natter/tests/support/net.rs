//! The deterministic two-peer network of the peer tests: two
//! PeerConnections, a virtual clock, latency and seeded random loss, and
//! a record of every datagram sent. Each test file uses part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::peer::*;
use natter_ice::Transmit;

use crate::support::Rng;

pub const A: usize = 0;
pub const B: usize = 1;

/// One side: its connection, its address and what it reported.
pub struct Peer {
    pub pc: PeerConnection,
    pub addr: SocketAddr,
    pub events: Vec<PeerEvent>,
    /// Candidates for the other side (`None`: end-of-candidates), held
    /// until it has a remote description.
    pub outbox: VecDeque<Option<IceCandidate>>,
}

/// Two peers, a virtual clock and a network with latency and random
/// loss that records every datagram sent.
pub struct Net {
    pub peers: [Peer; 2],
    pub now: Instant,
    pub start: Instant,
    pub latency: Duration,
    pub loss: f64,
    pub rng: Rng,
    pub in_flight: Vec<(Instant, Transmit)>,
    /// Every datagram sent, by sender, lost or not.
    pub wire: Vec<(usize, Vec<u8>)>,
    pub lost: u64,
    /// With `Some(side)`, that side's candidates carry an mDNS name
    /// (RFC 8828) instead of its address, as Chromium's do by default;
    /// the other side's I/O layer resolves it.
    pub mdns: Option<usize>,
}

/// What is due at `now` of what is in flight, taken out in the order it
/// was sent.
pub fn take_due<T>(in_flight: &mut Vec<(Instant, T)>, now: Instant) -> Vec<T> {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(in_flight).into_iter().partition(|(at, _)| *at <= now);
    *in_flight = later;
    due.into_iter().map(|(_, t)| t).collect()
}

/// `offerer` offers, `answerer` answers, each applying both descriptions.
pub fn negotiate(offerer: &mut PeerConnection, answerer: &mut PeerConnection) -> (Description, Description) {
    let offer = offerer.create_offer().unwrap();
    offerer.set_local_description(&offer).unwrap();
    answerer.set_remote_description(&offer).unwrap();
    let answer = answerer.create_answer().unwrap();
    answerer.set_local_description(&answer).unwrap();
    offerer.set_remote_description(&answer).unwrap();
    (offer, answer)
}

/// The name `Net::mdns` gives the side's address.
pub fn mdns_name(side: usize) -> String {
    format!("3f1a9c2e-0b7d-4e55-9a61-00000000000{side}.local")
}

fn config(seed: u64) -> PeerConfig {
    PeerConfig {
        seed: Some(seed),
        dtls: DtlsConfig {
            deterministic_seed: Some(seed),
            ..DtlsConfig::default()
        },
        ..PeerConfig::default()
    }
}

impl Net {
    pub fn new(loss: f64, seed: u64) -> Net {
        Self::with_config(loss, seed, |_, _| {})
    }

    /// As [`Net::new`], with `change(side, config)` applied to each
    /// side's configuration first.
    pub fn with_config(loss: f64, seed: u64, change: impl Fn(usize, &mut PeerConfig)) -> Net {
        let start = Instant::now();
        let peer = |i: u8| {
            let addr: SocketAddr = format!("10.0.0.{}:5000", i + 1).parse().unwrap();
            let mut config = config(seed + u64::from(i));
            change(usize::from(i), &mut config);
            let mut pc = PeerConnection::new(config, start).unwrap();
            pc.add_local_address(addr).unwrap();
            pc.end_of_local_addresses();
            Peer {
                pc,
                addr,
                events: Vec::new(),
                outbox: VecDeque::new(),
            }
        };
        Net {
            peers: [peer(0), peer(1)],
            now: start,
            start,
            latency: Duration::from_millis(10),
            loss,
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            in_flight: Vec::new(),
            wire: Vec::new(),
            lost: 0,
            mdns: None,
        }
    }

    pub fn pc(&mut self, side: usize) -> &mut PeerConnection {
        &mut self.peers[side].pc
    }

    /// A offers, B answers; candidates trickle as the peers gather them.
    pub fn negotiate(&mut self) -> (Description, Description) {
        let [a, b] = &mut self.peers;
        negotiate(&mut a.pc, &mut b.pc)
    }

    /// Collects output, forwards candidates, then advances the clock to
    /// the next delivery or timer and handles what is due. False when
    /// nothing is left to do.
    pub fn step(&mut self) -> bool {
        for side in [A, B] {
            let now = self.now;
            let mut buf = Vec::new();
            while let Some(t) = self.peers[side].pc.poll_transmit(now, 1, &mut buf) {
                assert_eq!(t.source, self.peers[side].addr);
                let t = Transmit::new(t.route(), buf.clone());
                self.wire.push((side, t.data.clone()));
                if self.rng.chance(self.loss) {
                    self.lost += 1;
                } else {
                    self.in_flight.push((now + self.latency, t));
                }
            }
            while let Some(event) = self.peers[side].pc.poll_event() {
                match &event {
                    PeerEvent::IceCandidate(c) => {
                        let mut c = c.clone();
                        if self.mdns == Some(side) {
                            let ip = self.peers[side].addr.ip().to_string();
                            c.candidate = c.candidate.replace(&ip, &mdns_name(side));
                        }
                        self.peers[side].outbox.push_back(Some(c));
                    }
                    PeerEvent::IceGatheringComplete => self.peers[side].outbox.push_back(None),
                    PeerEvent::ResolveMdns(name) => {
                        let other = 1 - side;
                        let ip = (*name == mdns_name(other)).then(|| self.peers[other].addr.ip());
                        self.peers[side].pc.resolve_mdns(name, ip);
                    }
                    _ => {}
                }
                self.peers[side].events.push(event);
            }
        }
        for (from, to) in [(A, B), (B, A)] {
            if self.peers[to].pc.remote_description().is_none() {
                continue;
            }
            while let Some(candidate) = self.peers[from].outbox.pop_front() {
                self.peers[to].pc.add_ice_candidate(candidate.as_ref()).unwrap();
            }
        }
        let next_delivery = self.in_flight.iter().map(|(at, _)| *at).min();
        let timers = self.peers.iter().filter_map(|p| p.pc.poll_timeout());
        let Some(next) = next_delivery.into_iter().chain(timers).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for t in take_due(&mut self.in_flight, now) {
            let Some(peer) = self.peers.iter_mut().find(|p| p.addr == t.destination) else {
                continue;
            };
            peer.pc
                .handle_receive(now, t.transport, t.source, t.destination, &t.data);
        }
        for peer in &mut self.peers {
            if peer.pc.poll_timeout().is_some_and(|t| t <= now) {
                peer.pc.handle_timeout(now);
            }
        }
        true
    }

    /// Steps until `done` holds; panics after `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now <= deadline, "not done after {limit:?} of virtual time");
            if !self.step() {
                assert!(done(self), "the network went idle first");
                return;
            }
        }
    }

    pub fn run_for(&mut self, time: Duration) {
        let deadline = self.now + time;
        while self.now < deadline && self.step() {}
    }

    pub fn events(&self, side: usize) -> &[PeerEvent] {
        &self.peers[side].events
    }

    pub fn has(&self, side: usize, event: &PeerEvent) -> bool {
        self.events(side).contains(event)
    }

    /// The channel the peer announced with `DataChannel`, by label.
    pub fn incoming(&mut self, side: usize, label: &str) -> Option<DataChannelId> {
        let ids: Vec<DataChannelId> = self
            .events(side)
            .iter()
            .filter_map(|e| match e {
                PeerEvent::DataChannel(id) => Some(*id),
                _ => None,
            })
            .collect();
        ids.into_iter()
            .find(|id| self.pc(side).data_channel(*id).is_some_and(|c| c.label() == label))
    }

    /// Messages received on `id`, taken out of the event log.
    pub fn take_messages(&mut self, side: usize, id: DataChannelId) -> Vec<(Vec<u8>, bool)> {
        let mut taken = Vec::new();
        self.peers[side].events.retain(|e| match e {
            PeerEvent::DataChannelMessage { id: got, data, is_text } if *got == id => {
                taken.push((data.clone(), *is_text));
                false
            }
            _ => true,
        });
        taken
    }

    pub fn state_changes(&self, side: usize) -> Vec<PeerConnectionState> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                PeerEvent::ConnectionStateChange(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Steps until both sides are connected.
    pub fn run_until_connected(&mut self) {
        self.run_until(Duration::from_secs(30), |n| {
            [A, B]
                .iter()
                .all(|&s| n.state_changes(s).contains(&PeerConnectionState::Connected))
        });
    }

    /// The media frames `side` received in `format`.
    pub fn media_frames(&self, side: usize, format: Format) -> Vec<MediaFrame> {
        self.events(side)
            .iter()
            .filter_map(|e| match e {
                PeerEvent::MediaFrame(f) if f.format == format => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}
