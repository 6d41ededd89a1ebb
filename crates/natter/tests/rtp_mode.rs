//! RTP mode (issue 18): a forwarder F between two natter peers. A sends
//! VP8 frames with the frame API to F's first connection, which is in
//! RTP mode; F hands every packet it gets to its second connection with
//! `write_rtp`, sequence number and timestamp rewritten; B receives the
//! frames with the frame API. Four connections, two links, one virtual
//! clock; loss per direction of each link.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::peer::*;

#[allow(dead_code)]
mod support;
use support::Rng;
#[path = "support/frames.rs"]
mod frames;
#[path = "support/net.rs"]
mod net;
use frames::vp8_frame;
use net::take_due;

const A: usize = 0;
/// F's connection to A (receives in RTP mode).
const FA: usize = 1;
/// F's connection to B (sends in RTP mode).
const FB: usize = 2;
const B: usize = 3;

/// What F adds to each sequence number and timestamp it forwards.
const SEQ_SHIFT: u16 = 40_000;
const TS_SHIFT: u32 = 0x8000_1234;

struct Node {
    pc: PeerConnection,
    addr: SocketAddr,
    events: Vec<PeerEvent>,
    /// Candidates for the other end of the link (`None`: the end).
    outbox: Vec<Option<IceCandidate>>,
}

/// Two links (A-FA and FB-B) under one clock, with latency and seeded
/// loss per direction; F forwards from FA to FB after every datagram FA
/// handles.
struct Mesh {
    nodes: Vec<Node>,
    now: Instant,
    latency: Duration,
    /// Loss from node `.0` to node `.1`.
    loss: BTreeMap<(usize, usize), f64>,
    rng: Rng,
    in_flight: Vec<(Instant, natter_ice::Transmit)>,
    /// Forwarder state and what it saw.
    forwarded: Vec<Seen>,
}

/// One packet F handed on, as `poll_rtp` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    transceiver: TransceiverId,
    mid: String,
    rid: Option<String>,
    format: Format,
    sequence_number: u16,
    extended_sequence_number: u64,
    timestamp: u32,
    retransmission: bool,
}

fn peer(i: usize, seed: u64, rtp_mode: bool, now: Instant) -> Node {
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
fn other(i: usize) -> usize {
    i ^ 1
}

impl Mesh {
    fn new(seed: u64) -> Mesh {
        let now = Instant::now();
        Mesh {
            nodes: (0..4).map(|i| peer(i, seed, i == FA || i == FB, now)).collect(),
            now,
            latency: Duration::from_millis(10),
            loss: BTreeMap::new(),
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            in_flight: Vec::new(),
            forwarded: Vec::new(),
        }
    }

    fn pc(&mut self, i: usize) -> &mut PeerConnection {
        &mut self.nodes[i].pc
    }

    /// `offerer` offers to the other end of its link, which answers.
    fn negotiate(&mut self, offerer: usize) {
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
    fn forward(&mut self) {
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
        let out = OutgoingRtp {
            payload_type,
            sequence_number: packet.sequence_number().wrapping_add(SEQ_SHIFT),
            timestamp: packet.timestamp().wrapping_add(TS_SHIFT),
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
    fn step(&mut self) -> bool {
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

    fn run_for(&mut self, time: Duration) {
        let deadline = self.now + time;
        while self.now < deadline && self.step() {}
    }

    fn connected(&self, i: usize) -> bool {
        let connected = PeerEvent::ConnectionStateChange(PeerConnectionState::Connected);
        self.nodes[i].events.contains(&connected)
    }

    fn run_until_connected(&mut self) {
        let deadline = self.now + Duration::from_secs(30);
        while !(0..4).all(|i| self.connected(i)) {
            assert!(self.now < deadline, "not connected after 30 s");
            assert!(self.step(), "idle before connecting");
        }
    }

    fn frames(&self, i: usize) -> Vec<MediaFrame> {
        (self.nodes[i].events.iter())
            .filter_map(|e| match e {
                PeerEvent::MediaFrame(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A sends video to F, F's second connection sends video to B; all
/// connected. Returns A's and FB's sending transceivers.
fn forwarding(seed: u64) -> (Mesh, TransceiverId, TransceiverId) {
    let mut mesh = Mesh::new(seed);
    let a_video = mesh.pc(A).add_track(MediaKind::Video).unwrap();
    let f_video = mesh.pc(FB).add_track(MediaKind::Video).unwrap();
    mesh.negotiate(A);
    mesh.negotiate(FB);
    mesh.run_until_connected();
    (mesh, a_video, f_video)
}

/// A sends `count` frames, one every 33 ms, a keyframe first; returns
/// them.
fn send_frames(mesh: &mut Mesh, video: TransceiverId, count: usize) -> Vec<Vec<u8>> {
    let start = mesh.now;
    let mut sent = Vec::new();
    for i in 0..count {
        let frame = vp8_frame(i, i == 0, 2000 + 97 * (i % 13));
        let t = mesh.now - start;
        mesh.pc(A).send_frame(video, t, &frame).unwrap();
        sent.push(frame);
        mesh.run_for(Duration::from_millis(33));
    }
    mesh.run_for(Duration::from_secs(1));
    sent
}

fn ssrcs_on_wire(stats: &PeerStats) -> Vec<u32> {
    stats.receivers.iter().filter_map(|(_, r)| r.ssrc).collect()
}

/// Every packet of A's frames crosses F without being depacketized and
/// B gets the frames byte for byte, on F's SSRC with F's sequence
/// numbers and timestamps; F's view of each packet names its
/// transceiver, mid and codec.
#[test]
fn a_forwarder_in_rtp_mode_carries_frames_byte_exact() {
    let (mut mesh, a_video, _) = forwarding(1800);
    let sent = send_frames(&mut mesh, a_video, 60);

    let received: Vec<Vec<u8>> = mesh.frames(B).iter().map(|f| f.data.clone()).collect();
    assert_eq!(received, sent, "every frame, whole and in order");
    assert!(mesh.frames(FA).is_empty(), "RTP mode makes no frames");

    // F's view: one transceiver, its mid, VP8, consecutive numbers.
    let fa_video = mesh.pc(FA).transceivers()[0].id();
    let mid = mesh.pc(FA).transceivers()[0].mid().unwrap().to_owned();
    let seen = mesh.forwarded.clone();
    assert!(
        seen.len() >= 2 * sent.len(),
        "{} packets for {} frames",
        seen.len(),
        sent.len()
    );
    for s in &seen {
        assert_eq!(
            (s.transceiver, s.mid.as_str(), s.rid.as_deref()),
            (fa_video, mid.as_str(), None)
        );
        assert_eq!(s.format, Format::Vp8);
        assert!(!s.retransmission);
    }
    let first = seen[0].extended_sequence_number;
    let numbers: Vec<u64> = seen.iter().map(|s| s.extended_sequence_number).collect();
    assert_eq!(numbers, (first..first + seen.len() as u64).collect::<Vec<_>>());
    assert!(seen
        .iter()
        .all(|s| s.extended_sequence_number as u16 == s.sequence_number));

    // What B got is F's stream: F's SSRC, A's timestamps shifted.
    let fb_ssrc = mesh.pc(FB).stats().senders[0].1.ssrc;
    let a_ssrc = mesh.pc(A).stats().senders[0].1.ssrc;
    assert_eq!(ssrcs_on_wire(&mesh.pc(B).stats()), [fb_ssrc]);
    assert_ne!(fb_ssrc, a_ssrc);
    let a_timestamps: Vec<u32> = mesh.frames(FA).iter().map(|f| f.timestamp).collect();
    assert!(a_timestamps.is_empty());
    let mut sent_timestamps: Vec<u32> = seen.iter().map(|s| s.timestamp.wrapping_add(TS_SHIFT)).collect();
    sent_timestamps.dedup();
    let b_timestamps: Vec<u32> = mesh.frames(B).iter().map(|f| f.timestamp).collect();
    assert_eq!(b_timestamps, sent_timestamps);

    // Reports: F's sender reports reached B, B's receiver reports F.
    let b_stats = mesh.pc(B).stats();
    assert!(b_stats.receivers[0].1.last_sender_report.is_some());
    let f_out = mesh.pc(FB).stats().senders[0].1.counters;
    assert_eq!(f_out.packets_sent, seen.len() as u64);
    assert_eq!(f_out.frames_sent, sent.len() as u64);
    assert!(f_out.round_trip_time.is_some(), "{f_out:?}");
    let f_in = &mesh.pc(FA).stats().receivers[0].1;
    assert_eq!(f_in.packets_received, seen.len() as u64);
    assert_eq!(f_in.frames_received, 0);
}

/// The two media APIs are one per connection: frames on an RTP mode
/// connection, RTP on a frame mode one, are refused.
#[test]
fn each_connection_speaks_one_media_api() {
    let (mut mesh, a_video, f_video) = forwarding(1801);
    let packet = OutgoingRtp {
        payload_type: 96,
        payload: &[0x10, 0, 0, 0],
        ..OutgoingRtp::default()
    };
    assert!(matches!(
        mesh.pc(A).write_rtp(a_video, None, &packet),
        Err(PeerError::MediaApi { rtp_mode: false, .. })
    ));
    assert!(matches!(
        mesh.pc(FB)
            .send_frame(f_video, Duration::ZERO, &vp8_frame(0, true, 100)),
        Err(PeerError::MediaApi { rtp_mode: true, .. })
    ));
    let (_, vp8) = mesh.pc(FB).send_payload_type(f_video).unwrap();
    let wrong = OutgoingRtp {
        payload_type: vp8 + 1,
        ..packet
    };
    assert!(matches!(
        mesh.pc(FB).write_rtp(f_video, None, &wrong),
        Err(PeerError::PayloadType { .. })
    ));
    assert!(matches!(
        mesh.pc(FB).write_rtp(
            f_video,
            Some("h"),
            &OutgoingRtp {
                payload_type: vp8,
                ..packet
            }
        ),
        Err(PeerError::UnknownRid { .. })
    ));
}

/// Loss between F and B: B's NACKs reach F's connection, whose stack
/// answers them with RTX from what `write_rtp` wrote, and B gets every
/// frame; A never hears of it.
#[test]
fn loss_after_the_forwarder_is_repaired_by_its_stack() {
    let (mut mesh, a_video, _) = forwarding(1802);
    mesh.loss.insert((FB, B), 0.05);
    let sent = send_frames(&mut mesh, a_video, 150);

    let received: Vec<Vec<u8>> = mesh.frames(B).iter().map(|f| f.data.clone()).collect();
    assert_eq!(received, sent, "every frame, whole and in order");
    let f_out = mesh.pc(FB).stats().senders[0].1.counters;
    assert!(f_out.nack_count > 0, "{f_out:?}");
    assert!(f_out.retransmitted_packets_sent > 0, "{f_out:?}");
    let b_in = mesh.pc(B).stats().receivers[0].1.clone();
    assert!(b_in.retransmitted_packets_received > 0, "{b_in:?}");
    assert_eq!(b_in.packets_lost, 0, "{b_in:?}");
    let a_out = mesh.pc(A).stats().senders[0].1.counters;
    assert_eq!((a_out.nack_count, a_out.retransmitted_packets_sent), (0, 0));
    assert!(mesh.forwarded.iter().all(|s| !s.retransmission));
}

/// Loss between A and F: F's connection NACKs A like a frame receiver
/// would, A's RTX comes out of `poll_rtp` unwrapped (its original
/// sequence number and payload, marked as a retransmission), F forwards
/// it late, and B still gets every frame.
#[test]
fn loss_before_the_forwarder_is_nacked_by_its_stack() {
    let (mut mesh, a_video, _) = forwarding(1803);
    mesh.loss.insert((A, FA), 0.05);
    let sent = send_frames(&mut mesh, a_video, 150);

    let received: Vec<Vec<u8>> = mesh.frames(B).iter().map(|f| f.data.clone()).collect();
    assert_eq!(received, sent, "every frame, whole and in order");
    let f_in = mesh.pc(FA).stats().receivers[0].1.clone();
    assert!(f_in.nack_count > 0, "{f_in:?}");
    assert_eq!(f_in.packets_lost, 0, "{f_in:?}");
    assert_eq!(
        f_in.pli_count, 0,
        "RTP mode leaves keyframe requests to the application"
    );
    let a_out = mesh.pc(A).stats().senders[0].1.counters;
    assert!(a_out.retransmitted_packets_sent > 0, "{a_out:?}");

    // Each sequence number came out once, the repairs among them, after
    // the packets that overtook them.
    let repairs: Vec<&Seen> = mesh.forwarded.iter().filter(|s| s.retransmission).collect();
    assert_eq!(repairs.len() as u64, f_in.retransmitted_packets_received);
    let mut numbers: Vec<u64> = mesh.forwarded.iter().map(|s| s.extended_sequence_number).collect();
    let arrival_order = numbers.clone();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), mesh.forwarded.len(), "no sequence number twice");
    assert_ne!(numbers, arrival_order, "repairs came late");
    let first = numbers[0];
    assert_eq!(numbers, (first..first + numbers.len() as u64).collect::<Vec<_>>());
}

/// Datagrams that look like RTP but fail SRTP: dropped and counted,
/// never lent, and the stream goes on. (RTP for no transceiver and
/// malformed RTP behind SRTP: `peer/media/rtp_mode/tests.rs`.)
#[test]
fn forged_srtp_is_dropped_counted_and_never_lent() {
    let (mut mesh, a_video, _) = forwarding(1804);
    send_frames(&mut mesh, a_video, 5);
    let before = mesh.pc(FA).stats().media;
    let (a, fa) = (mesh.nodes[A].addr, mesh.nodes[FA].addr);
    let now = mesh.now;
    // Well-formed SRTP cannot be forged without the keys; these fail
    // SRTP, or are too short for it, and count there.
    for data in [vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef], vec![0x80; 40]] {
        mesh.pc(FA).handle_receive(now, Transport::Udp, a, fa, &data);
        assert!(mesh.pc(FA).poll_rtp().is_none());
    }
    let after = mesh.pc(FA).stats().media;
    assert_eq!(after.srtp_failed, before.srtp_failed + 2);
    let forwarded = mesh.forwarded.len();
    send_frames(&mut mesh, a_video, 5);
    assert!(mesh.forwarded.len() > forwarded, "the stream goes on");
    assert_eq!(mesh.frames(B).len(), 10);
}
