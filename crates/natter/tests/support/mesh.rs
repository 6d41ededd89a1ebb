//! The forwarding network of the RTP mode tests: A, F's two
//! connections (FA receiving from A in RTP mode, FB sending to B in RTP
//! mode) and B on two links (A-FA, FB-B) under one virtual clock, with
//! latency and seeded loss per direction; after every datagram FA
//! handles, F forwards what `poll_rtp` lends through its `Munger` and
//! FB's `write_rtp`, and passes B's keyframe requests on to A.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::peer::*;

use crate::net::take_due;
use crate::support::Rng;

pub const A: usize = 0;
/// F's connection to A (receives in RTP mode).
pub const FA: usize = 1;
/// F's connection to B (sends in RTP mode).
pub const FB: usize = 2;
pub const B: usize = 3;

/// What F adds to the first sequence number and timestamp it forwards.
pub const SEQ_SHIFT: u16 = 40_000;
pub const TS_SHIFT: u32 = 0x8000_1234;

pub struct Node {
    pub pc: PeerConnection,
    pub addr: SocketAddr,
    pub events: Vec<PeerEvent>,
    /// Candidates for the other end of the link (`None`: the end).
    pub outbox: Vec<Option<IceCandidate>>,
}

/// Two links (A-FA and FB-B) under one clock, with latency and seeded
/// loss per direction; F forwards from FA to FB after every datagram FA
/// handles.
pub struct Mesh {
    pub nodes: Vec<Node>,
    pub now: Instant,
    pub latency: Duration,
    /// Loss from node `.0` to node `.1`.
    pub loss: BTreeMap<(usize, usize), f64>,
    pub rng: Rng,
    pub in_flight: Vec<(Instant, natter_ice::Transmit)>,
    /// Forwarder state and what it saw.
    pub forwarded: Vec<Seen>,
    pub munger: Munger,
}

/// F's choice of what B gets and how it is numbered (LiveKit's
/// forwarder and RTP munger in one): the only stream, or the simulcast
/// layer `target` from its next keyframe on (and once the layer
/// forwarded so far ended a frame), its sequence numbers and timestamps
/// shifted to run on from the last ones B got.
#[derive(Default)]
pub struct Munger {
    pub target: Option<&'static str>,
    /// The layer forwarded (`Some(None)`: the only stream).
    pub current: Option<Option<String>>,
    /// Input extended sequence number and timestamp at the switch, and
    /// the output's there.
    pub seq_base: (u64, u16),
    pub ts_base: (u32, u32),
    /// The highest input number forwarded of the current layer, and the
    /// output's sequence number, timestamp and marker there.
    pub last: Option<(u64, u16, u32, bool)>,
}

impl Munger {
    /// B's sequence number and timestamp for `p`, or `None` to drop it.
    pub fn rewrite(&mut self, p: &ReceivedRtp<'_>) -> Option<(u16, u32)> {
        let rid = p.rid.map(str::to_owned);
        let wanted = self.target.is_none() || rid.as_deref() == self.target;
        if wanted && self.current.as_ref() != Some(&rid) {
            let keyframe = p.inspect().and_then(Result::ok).is_some_and(|i| i.starts_keyframe);
            let frame_ended = self.last.is_none_or(|(_, _, _, marker)| marker);
            if frame_ended && (self.target.is_none() || keyframe) {
                let (seq, ts) = self.last.map_or(
                    (
                        p.sequence_number().wrapping_add(SEQ_SHIFT),
                        p.timestamp().wrapping_add(TS_SHIFT),
                    ),
                    |(_, seq, ts, _)| (seq.wrapping_add(1), ts.wrapping_add(3000)),
                );
                self.seq_base = (p.extended_sequence_number, seq);
                self.ts_base = (p.timestamp(), ts);
                self.current = Some(rid.clone());
                // Input numbers are the new layer's from here on.
                self.last = None;
            }
        }
        if self.current.as_ref() != Some(&rid) || p.extended_sequence_number < self.seq_base.0 {
            return None;
        }
        let seq = (self.seq_base.1).wrapping_add((p.extended_sequence_number - self.seq_base.0) as u16);
        let ts = (self.ts_base.1).wrapping_add(p.timestamp().wrapping_sub(self.ts_base.0));
        if self
            .last
            .is_none_or(|(highest, ..)| p.extended_sequence_number > highest)
        {
            self.last = Some((p.extended_sequence_number, seq, ts, p.marker()));
        }
        Some((seq, ts))
    }
}

/// One packet F handed on, as `poll_rtp` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub transceiver: TransceiverId,
    pub mid: String,
    pub rid: Option<String>,
    pub format: Format,
    pub sequence_number: u16,
    pub extended_sequence_number: u64,
    pub timestamp: u32,
    pub retransmission: bool,
}

pub fn peer(i: usize, seed: u64, rtp_mode: bool, now: Instant) -> Node {
    let config = PeerConfig {
        seed: Some(seed + i as u64),
        dtls: DtlsConfig {
            deterministic_seed: Some(seed + i as u64),
            ..DtlsConfig::default()
        },
        rtp_mode,
        ..PeerConfig::default()
    };
    let addr: SocketAddr = format!("10.0.0.{}:5000", i + 1).parse().unwrap();
    let mut pc = PeerConnection::new(config, now).unwrap();
    pc.add_local_address(addr).unwrap();
    pc.end_of_local_addresses();
    Node {
        pc,
        addr,
        events: Vec::new(),
        outbox: Vec::new(),
    }
}

/// The other end of `i`'s link.
pub fn other(i: usize) -> usize {
    i ^ 1
}

impl Mesh {
    pub fn new(seed: u64) -> Mesh {
        let now = Instant::now();
        Mesh {
            nodes: (0..4).map(|i| peer(i, seed, i == FA || i == FB, now)).collect(),
            now,
            latency: Duration::from_millis(10),
            loss: BTreeMap::new(),
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            in_flight: Vec::new(),
            forwarded: Vec::new(),
            munger: Munger::default(),
        }
    }

    pub fn pc(&mut self, i: usize) -> &mut PeerConnection {
        &mut self.nodes[i].pc
    }

    /// `offerer` offers to the other end of its link, which answers.
    pub fn negotiate(&mut self, offerer: usize) {
        let answerer = other(offerer);
        let offer = self.pc(offerer).create_offer().unwrap();
        self.pc(offerer).set_local_description(&offer).unwrap();
        self.pc(answerer).set_remote_description(&offer).unwrap();
        let answer = self.pc(answerer).create_answer().unwrap();
        self.pc(answerer).set_local_description(&answer).unwrap();
        self.pc(offerer).set_remote_description(&answer).unwrap();
    }

    /// F's forwarding: every packet FA lends goes out on FB's only
    /// sender, shifted.
    pub fn forward(&mut self) {
        let (left, right) = self.nodes.split_at_mut(FB);
        let (from, to) = (&mut left[FA].pc, &mut right[0].pc);
        let Some(packet) = from.poll_rtp() else { return };
        self.forwarded.push(Seen {
            transceiver: packet.transceiver,
            mid: packet.mid.to_owned(),
            rid: packet.rid.map(str::to_owned),
            format: packet.format,
            sequence_number: packet.sequence_number(),
            extended_sequence_number: packet.extended_sequence_number,
            timestamp: packet.timestamp(),
            retransmission: packet.retransmission,
        });
        let sender = to.transceivers()[0].id();
        let (_, payload_type) = to.send_payload_type(sender).expect("FB sends");
        let Some((sequence_number, timestamp)) = self.munger.rewrite(&packet) else {
            return;
        };
        let out = OutgoingRtp {
            payload_type,
            sequence_number,
            timestamp,
            marker: packet.marker(),
            payload: packet.payload(),
            audio_level: packet.audio_level(),
            dependency_descriptor: packet.dependency_descriptor(),
        };
        to.write_rtp(sender, None, &out).unwrap();
        assert!(from.poll_rtp().is_none(), "one packet per datagram");
    }

    /// Drains output, trickles candidates, then advances the clock to
    /// the next delivery or timer and handles what is due.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut buf = Vec::new();
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].pc.poll_transmit(now, 1, &mut buf) {
                let to = other(i);
                assert_eq!(t.destination, self.nodes[to].addr, "node {i} sends only on its link");
                let loss = self.loss.get(&(i, to)).copied().unwrap_or(0.0);
                if !self.rng.chance(loss) {
                    let datagram = natter_ice::Transmit::new(t.route(), buf[..t.size].to_vec());
                    self.in_flight.push((now + self.latency, datagram));
                }
            }
            while let Some(event) = self.nodes[i].pc.poll_event() {
                match &event {
                    PeerEvent::IceCandidate(c) => self.nodes[i].outbox.push(Some(c.clone())),
                    PeerEvent::IceGatheringComplete => self.nodes[i].outbox.push(None),
                    // F passes B's keyframe requests on to A.
                    PeerEvent::KeyframeRequest { .. } if i == FB => {
                        let receiving = self.nodes[FA].pc.transceivers()[0].id();
                        self.nodes[FA].pc.request_keyframe(receiving).unwrap();
                    }
                    _ => {}
                }
                self.nodes[i].events.push(event);
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[other(i)].pc.remote_description().is_none() {
                continue;
            }
            for candidate in std::mem::take(&mut self.nodes[i].outbox) {
                self.nodes[other(i)].pc.add_ice_candidate(candidate.as_ref()).unwrap();
            }
        }
        let deliveries = self.in_flight.iter().map(|(at, _)| *at);
        let timers = self.nodes.iter().filter_map(|n| n.pc.poll_timeout());
        let Some(next) = deliveries.chain(timers).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for t in take_due(&mut self.in_flight, now) {
            let i = (self.nodes.iter()).position(|n| n.addr == t.destination).unwrap();
            self.nodes[i]
                .pc
                .handle_receive(now, t.transport, t.source, t.destination, &t.data);
            if i == FA {
                self.forward();
            }
        }
        for node in &mut self.nodes {
            if node.pc.poll_timeout().is_some_and(|t| t <= now) {
                node.pc.handle_timeout(now);
            }
        }
        true
    }

    pub fn run_for(&mut self, time: Duration) {
        let deadline = self.now + time;
        while self.now < deadline && self.step() {}
    }

    pub fn connected(&self, i: usize) -> bool {
        let connected = PeerEvent::ConnectionStateChange(PeerConnectionState::Connected);
        self.nodes[i].events.contains(&connected)
    }

    pub fn run_until_connected(&mut self) {
        let deadline = self.now + Duration::from_secs(30);
        while !(0..4).all(|i| self.connected(i)) {
            assert!(self.now < deadline, "not connected after 30 s");
            assert!(self.step(), "idle before connecting");
        }
    }

    pub fn frames(&self, i: usize) -> Vec<MediaFrame> {
        (self.nodes[i].events.iter())
            .filter_map(|e| match e {
                PeerEvent::MediaFrame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}
