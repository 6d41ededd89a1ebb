//! Issue 18, acceptance 5: the forwarding path allocates nothing per
//! packet once warm. A sends VP8 frames to a forwarder F, an
//! [`Endpoint`] on one address holding two connections in RTP mode (FA
//! receives from A, FB sends to B). For each datagram from A, F runs
//! the endpoint's `handle_receive` (routing, SRTP unprotect), borrows
//! both connections with `connection_pair`, takes the packet with
//! `poll_rtp`, writes it on FB with `write_rtp` with sequence number and
//! timestamp rewritten (FB's SSRC; protect), then drains the endpoint's
//! `poll_transmit` into a reused buffer and its `poll_event`. A counting
//! global allocator (stats_alloc: the counting needs an `unsafe impl
//! GlobalAlloc`, which workspace lints forbid here) counts what that
//! did. The binary runs without libtest's harness (`harness = false`)
//! so that no other thread allocates while it counts: libtest's main
//! thread registers the running test after spawning it, which can land
//! inside the count on a loaded machine (as natter-sfu's zero_alloc
//! test saw).

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::endpoint::{ConnectionHandle, Endpoint};
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

const LATENCY: Duration = Duration::from_millis(5);

/// Packets forwarded while counting.
const PACKETS: usize = 10_000;

/// A datagram on its way, with its bytes.
struct Datagram {
    transmit: Transmit,
    data: Vec<u8>,
}

/// An end of the forwarder: A (sends to FA) or B (receives from FB).
struct Peer {
    pc: PeerConnection,
    addr: SocketAddr,
    /// Its connection on the forwarder's endpoint.
    remote: ConnectionHandle,
    connected: bool,
}

/// A, B and the forwarder's endpoint under one virtual clock, without
/// loss.
struct Mesh {
    peers: [Peer; 2],
    endpoint: Endpoint,
    f_addr: SocketAddr,
    /// FA and FB, in that order.
    f: [ConnectionHandle; 2],
    f_connected: [bool; 2],
    now: Instant,
    in_flight: Vec<(Instant, Datagram)>,
    /// The reused buffer of every `poll_transmit`.
    buf: Vec<u8>,
    counting: bool,
    counts: Counts,
}

/// F's allocations while counting, by step.
#[derive(Debug, Default)]
struct Counts {
    packets: usize,
    receive: usize,
    forward: usize,
    output: usize,
}

fn config(seed: u64, rtp_mode: bool) -> PeerConfig {
    PeerConfig {
        seed: Some(seed),
        dtls: DtlsConfig {
            deterministic_seed: Some(seed),
            ..DtlsConfig::default()
        },
        rtp_mode,
        ..PeerConfig::default()
    }
}

fn allocations(region: &Region<'_, System>) -> usize {
    let change = region.change();
    change.allocations + change.reallocations
}

impl Mesh {
    fn new() -> Mesh {
        let now = Instant::now();
        let f_addr: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let mut endpoint = Endpoint::new(vec![f_addr]);
        let fa = endpoint
            .insert(PeerConnection::new(config(1801, true), now).unwrap())
            .unwrap();
        let fb = endpoint
            .insert(PeerConnection::new(config(1802, true), now).unwrap())
            .unwrap();
        let peer = |i: u8, remote| {
            let addr: SocketAddr = format!("10.0.0.{}:5000", i + 1).parse().unwrap();
            let mut pc = PeerConnection::new(config(1800 + 3 * u64::from(i), false), now).unwrap();
            pc.add_local_address(addr).unwrap();
            pc.end_of_local_addresses();
            Peer {
                pc,
                addr,
                remote,
                connected: false,
            }
        };
        Mesh {
            peers: [peer(0, fa), peer(1, fb)],
            endpoint,
            f_addr,
            f: [fa, fb],
            f_connected: [false; 2],
            now,
            in_flight: Vec::new(),
            buf: Vec::new(),
            counting: false,
            counts: Counts::default(),
        }
    }

    /// Which of A and B talks to the forwarder's connection `handle`.
    fn side(&self, handle: ConnectionHandle) -> usize {
        self.f
            .iter()
            .position(|&h| h == handle)
            .expect("one of F's connections")
    }

    /// Everything the endpoint has to send into flight, then its events;
    /// the allocations that made, not counting the copies kept in flight.
    fn drain_endpoint(&mut self) -> usize {
        let now = self.now;
        let mut counted = 0;
        loop {
            let region = Region::new(GLOBAL);
            let sent = self.endpoint.poll_transmit(now, 1, &mut self.buf);
            counted += allocations(&region);
            let Some((_, transmit)) = sent else { break };
            let data = self.buf.clone();
            self.in_flight.push((now + LATENCY, Datagram { transmit, data }));
        }
        loop {
            let region = Region::new(GLOBAL);
            let event = self.endpoint.poll_event();
            counted += allocations(&region);
            let Some((handle, event)) = event else { break };
            let side = self.side(handle);
            match event {
                PeerEvent::IceCandidate(c) => self.peers[side].pc.add_ice_candidate(Some(&c)).unwrap(),
                PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) => self.f_connected[side] = true,
                _ => {}
            }
        }
        counted
    }

    /// F's work for a datagram from A or B, counted when counting.
    fn forward(&mut self, datagram: &Datagram) {
        let (now, t) = (self.now, &datagram.transmit);
        let region = Region::new(GLOBAL);
        let routed = self
            .endpoint
            .handle_receive(now, t.source, t.destination, &datagram.data);
        let receive = allocations(&region);
        let region = Region::new(GLOBAL);
        let mut forwarded = false;
        if routed == Some(self.f[0]) {
            let mut pair = self.endpoint.connection_pair(self.f[0], self.f[1]).unwrap();
            let (fa, fb) = pair.get();
            if let Some(packet) = fa.poll_rtp() {
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
                forwarded = true;
            }
        }
        let forward = allocations(&region);
        let output = self.drain_endpoint();
        if self.counting && forwarded {
            self.counts.packets += 1;
            self.counts.receive += receive;
            self.counts.forward += forward;
            self.counts.output += output;
        }
    }

    /// Drains output, trickles candidates, then advances the clock to
    /// the next delivery or timer and handles what is due.
    fn step(&mut self) -> bool {
        let now = self.now;
        for side in 0..2 {
            while let Some(transmit) = self.peers[side].pc.poll_transmit(now, 1, &mut self.buf) {
                let data = self.buf.clone();
                self.in_flight.push((now + LATENCY, Datagram { transmit, data }));
            }
            while let Some(event) = self.peers[side].pc.poll_event() {
                let remote = self.peers[side].remote;
                match event {
                    PeerEvent::IceCandidate(c) => {
                        let mut f = self.endpoint.connection(remote).unwrap();
                        f.add_ice_candidate(Some(&c)).unwrap();
                    }
                    PeerEvent::ConnectionStateChange(PeerConnectionState::Connected) => {
                        self.peers[side].connected = true
                    }
                    _ => {}
                }
            }
        }
        self.drain_endpoint();
        let deliveries = self.in_flight.iter().map(|(at, _)| *at);
        let timers = self.peers.iter().filter_map(|p| p.pc.poll_timeout());
        let Some(next) = deliveries.chain(timers).chain(self.endpoint.poll_timeout()).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for datagram in net::take_due(&mut self.in_flight, now) {
            let t = &datagram.transmit;
            match self.peers.iter_mut().find(|p| p.addr == t.destination) {
                Some(peer) => peer
                    .pc
                    .handle_receive(now, t.transport, t.source, t.destination, &datagram.data),
                None if t.destination == self.f_addr => self.forward(&datagram),
                None => panic!("a datagram to {}, where nobody is", t.destination),
            }
        }
        for peer in &mut self.peers {
            if peer.pc.poll_timeout().is_some_and(|t| t <= now) {
                peer.pc.handle_timeout(now);
            }
        }
        self.endpoint.handle_timeout(now);
        true
    }

    fn run_for(&mut self, time: Duration) {
        let deadline = self.now + time;
        while self.now < deadline && self.step() {}
    }

    fn connected(&self) -> bool {
        self.peers.iter().all(|p| p.connected) && self.f_connected == [true; 2]
    }
}

fn main() {
    forwarding_an_rtp_packet_through_an_endpoint_allocates_nothing_once_warm();
    println!("forwarding_an_rtp_packet_through_an_endpoint_allocates_nothing_once_warm ... ok");
}

fn forwarding_an_rtp_packet_through_an_endpoint_allocates_nothing_once_warm() {
    let mut mesh = Mesh::new();
    let video = mesh.peers[0].pc.add_track(MediaKind::Video).unwrap();
    let [fa, fb] = mesh.f;
    mesh.endpoint
        .connection(fb)
        .unwrap()
        .add_track(MediaKind::Video)
        .unwrap();
    {
        let [a, b] = &mut mesh.peers;
        net::negotiate(&mut a.pc, &mut mesh.endpoint.connection(fa).unwrap());
        net::negotiate(&mut mesh.endpoint.connection(fb).unwrap(), &mut b.pc);
    }
    let deadline = mesh.now + Duration::from_secs(30);
    while !mesh.connected() {
        assert!(mesh.now < deadline, "not connected after 30 s");
        assert!(mesh.step(), "idle before connecting");
    }

    // Frames of about eight packets, 30 a second; four seconds warm the
    // buffers up (the send history's 512 slots among them), then F's
    // work is counted.
    let start = mesh.now;
    let mut frame = 0;
    while mesh.counts.packets < PACKETS {
        mesh.counting = frame >= 120;
        let data = vp8_frame(frame, frame % 300 == 0, 9000 + 101 * (frame % 7));
        let media_time = mesh.now - start;
        mesh.peers[0].pc.send_frame(video, media_time, &data).unwrap();
        mesh.run_for(Duration::from_millis(33));
        frame += 1;
        assert!(frame < 10 * PACKETS, "F forwards nothing: {:?}", mesh.counts);
    }
    let counts = &mesh.counts;
    assert_eq!(
        (counts.receive, counts.forward, counts.output),
        (0, 0, 0),
        "allocations in F's handle_receive, poll_rtp + write_rtp, poll_transmit + poll_event over {} packets",
        counts.packets
    );
    let stats = mesh.peers[1].pc.stats();
    let received: u64 = stats.receivers.iter().map(|(_, r)| r.packets_received).sum();
    assert!(
        received >= PACKETS as u64,
        "B received {received} packets of the {PACKETS} forwarded"
    );
}
