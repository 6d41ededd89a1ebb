//! Issue 18, acceptance 5: the forwarding path allocates nothing per
//! packet once warm. A sends VP8 frames to a forwarder F (two
//! connections in RTP mode: FA receives from A, FB sends to B); for each
//! datagram FA gets, F runs `handle_receive` (SRTP unprotect), `poll_rtp`,
//! `write_rtp` with SSRC, sequence number and timestamp rewritten
//! (protect) and `poll_transmit` into a reused buffer, and a counting
//! global allocator (stats_alloc: the counting needs an `unsafe impl
//! GlobalAlloc`, which workspace lints forbid here) counts what that
//! did. One test in this binary, so no other test thread allocates while
//! it counts.

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::peer::*;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[path = "support/frames.rs"]
mod frames;
#[path = "support/net.rs"]
mod net;
#[allow(dead_code)]
mod support;
use frames::vp8_frame;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const A: usize = 0;
const FA: usize = 1;
const FB: usize = 2;
const B: usize = 3;
const LATENCY: Duration = Duration::from_millis(5);

/// Packets forwarded while counting.
const PACKETS: usize = 10_000;

/// A datagram on its way, with its bytes.
struct Datagram {
    transmit: Transmit,
    data: Vec<u8>,
}

struct Node {
    pc: PeerConnection,
    addr: SocketAddr,
    connected: bool,
    candidates: Vec<Option<IceCandidate>>,
}

/// Four connections on two links (A-FA, FB-B) under one virtual clock,
/// without loss.
struct Mesh {
    nodes: Vec<Node>,
    now: Instant,
    in_flight: Vec<(Instant, Datagram)>,
    /// F's reused buffer for `poll_transmit`.
    buf: Vec<u8>,
    /// Where F's counted work stands.
    counts: Counts,
    counting: bool,
}

#[derive(Debug, Default)]
struct Counts {
    packets: usize,
    receive: usize,
    forward: usize,
    transmit: usize,
}

/// The other end of node `i`'s link.
fn other(i: usize) -> usize {
    i ^ 1
}

fn allocations(region: &Region<'_, System>) -> usize {
    let change = region.change();
    change.allocations + change.reallocations
}

impl Mesh {
    fn new() -> Mesh {
        let now = Instant::now();
        let nodes = (0..4)
            .map(|i| {
                let seed = 1800 + i as u64;
                let config = PeerConfig {
                    seed: Some(seed),
                    dtls: DtlsConfig {
                        deterministic_seed: Some(seed),
                        ..DtlsConfig::default()
                    },
                    rtp_mode: i == FA || i == FB,
                    ..PeerConfig::default()
                };
                let addr: SocketAddr = format!("10.0.0.{}:5000", i + 1).parse().unwrap();
                let mut pc = PeerConnection::new(config, now).unwrap();
                pc.add_local_address(addr).unwrap();
                pc.end_of_local_addresses();
                Node {
                    pc,
                    addr,
                    connected: false,
                    candidates: Vec::new(),
                }
            })
            .collect();
        Mesh {
            nodes,
            now,
            in_flight: Vec::new(),
            buf: Vec::new(),
            counts: Counts::default(),
            counting: false,
        }
    }

    fn pc(&mut self, i: usize) -> &mut PeerConnection {
        &mut self.nodes[i].pc
    }

    /// `offerer` (A or FB) offers to the other end of its link.
    fn negotiate(&mut self, offerer: usize) {
        let (left, right) = self.nodes.split_at_mut(offerer + 1);
        net::negotiate(&mut left[offerer].pc, &mut right[0].pc);
    }

    /// Everything node `i` has to send, into flight.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        while let Some(transmit) = self.nodes[i].pc.poll_transmit(now, 1, &mut self.buf) {
            let data = self.buf.clone();
            self.in_flight.push((now + LATENCY, Datagram { transmit, data }));
        }
    }

    /// F's work for one datagram that reached FA, counted when counting.
    fn forward(&mut self, datagram: &Datagram) {
        let (now, t) = (self.now, &datagram.transmit);
        let (left, right) = self.nodes.split_at_mut(FB);
        let (fa, fb) = (&mut left[FA].pc, &mut right[0].pc);
        let region = Region::new(GLOBAL);
        fa.handle_receive(now, t.transport, t.source, t.destination, &datagram.data);
        let receive = allocations(&region);
        let region = Region::new(GLOBAL);
        let Some(packet) = fa.poll_rtp() else { return };
        let sender = fb.transceivers()[0].id();
        let (_, payload_type) = fb.send_payload_type(sender).expect("FB sends");
        let out = OutgoingRtp {
            payload_type,
            sequence_number: packet.sequence_number().wrapping_add(40_000),
            timestamp: packet.timestamp().wrapping_add(0x8000_1234),
            marker: packet.marker(),
            payload: packet.payload(),
            audio_level: packet.audio_level(),
            dependency_descriptor: packet.dependency_descriptor(),
        };
        fb.write_rtp(sender, None, &out).expect("FB sends");
        let forward = allocations(&region);
        let region = Region::new(GLOBAL);
        let sent = fb.poll_transmit(now, 1, &mut self.buf);
        let transmit = allocations(&region);
        assert!(sent.is_some(), "the forwarded packet goes out at once");
        if self.counting {
            self.counts.packets += 1;
            self.counts.receive += receive;
            self.counts.forward += forward;
            self.counts.transmit += transmit;
        }
        if let Some(transmit) = sent {
            let data = self.buf.clone();
            self.in_flight.push((now + LATENCY, Datagram { transmit, data }));
        }
    }

    /// Drains output, trickles candidates, then advances the clock to
    /// the next delivery or timer and handles what is due.
    fn step(&mut self) -> bool {
        for i in 0..self.nodes.len() {
            self.drain(i);
            while let Some(event) = self.nodes[i].pc.poll_event() {
                match event {
                    PeerEvent::IceCandidate(c) => self.nodes[i].candidates.push(Some(c)),
                    PeerEvent::IceGatheringComplete => self.nodes[i].candidates.push(None),
                    PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) => self.nodes[i].connected = true,
                    _ => {}
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[other(i)].pc.remote_description().is_some() {
                for c in std::mem::take(&mut self.nodes[i].candidates) {
                    self.nodes[other(i)].pc.add_ice_candidate(c.as_ref()).unwrap();
                }
            }
        }
        let deliveries = self.in_flight.iter().map(|(at, _)| *at);
        let timers = self.nodes.iter().filter_map(|n| n.pc.poll_timeout());
        let Some(next) = deliveries.chain(timers).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for datagram in net::take_due(&mut self.in_flight, now) {
            let t = &datagram.transmit;
            let i = self.nodes.iter().position(|n| n.addr == t.destination).unwrap();
            if i == FA && self.nodes[FB].connected {
                self.forward(&datagram);
            } else {
                self.nodes[i]
                    .pc
                    .handle_receive(now, t.transport, t.source, t.destination, &datagram.data);
            }
        }
        for node in &mut self.nodes {
            if node.pc.poll_timeout().is_some_and(|t| t <= now) {
                node.pc.handle_timeout(now);
            }
        }
        true
    }

    fn run_for(&mut self, time: Duration) {
        let deadline = self.now + time;
        while self.now < deadline && self.step() {}
    }
}

#[test]
fn forwarding_an_rtp_packet_allocates_nothing_once_warm() {
    let mut mesh = Mesh::new();
    let video = mesh.pc(A).add_track(MediaKind::Video).unwrap();
    mesh.pc(FB).add_track(MediaKind::Video).unwrap();
    mesh.negotiate(A);
    mesh.negotiate(FB);
    let deadline = mesh.now + Duration::from_secs(30);
    while !mesh.nodes.iter().all(|n| n.connected) {
        assert!(mesh.now < deadline, "not connected after 30 s");
        assert!(mesh.step(), "idle before connecting");
    }

    // Frames of about eight packets, 30 a second; the first second warms
    // the buffers up, then F's work is counted.
    let start = mesh.now;
    let mut frame = 0;
    while mesh.counts.packets < PACKETS {
        if frame == 120 {
            mesh.counting = true;
        }
        let data = vp8_frame(frame, frame % 300 == 0, 9000 + 101 * (frame % 7));
        let media_time = mesh.now - start;
        mesh.pc(A).send_frame(video, media_time, &data).unwrap();
        mesh.run_for(Duration::from_millis(33));
        frame += 1;
        assert!(frame < 10 * PACKETS, "F forwards nothing: {:?}", mesh.counts);
    }
    let counts = &mesh.counts;
    assert_eq!(
        (counts.receive, counts.forward, counts.transmit),
        (0, 0, 0),
        "allocations in F's handle_receive, poll_rtp + write_rtp, poll_transmit over {} packets",
        counts.packets
    );
    let b = mesh.pc(B).stats();
    let received: u64 = b.receivers.iter().map(|(_, r)| r.packets_received).sum();
    assert!(
        received >= PACKETS as u64,
        "B received {received} packets of the {PACKETS} forwarded"
    );
}
