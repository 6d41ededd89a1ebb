//! Two PeerConnections over a bottleneck under a virtual clock:
//! natter-impair's `Link` (the model the UDP proxy of the real-peer
//! tests runs) in each direction, A at 10.0.0.1 sending into
//! `links[A]`, B at 10.0.0.2 into `links[B]`. What A sends is logged
//! (when, size, RTP header fields: SRTP leaves the header in the clear)
//! and so is the queuing delay each datagram of A met at the link.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::congestion::CongestionConfig;
use natter::dtls::DtlsConfig;
use natter::peer::*;
use natter_ice::Transmit;
use natter_impair::{Link, LinkConfig};

use super::frames::vp8_frame;

pub const A: usize = 0;
pub const B: usize = 1;

/// A datagram crossing a link.
#[derive(Clone)]
pub struct Datagram(pub Transmit);

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.0.data
    }
}

/// One datagram A sent: when, its size, and its RTP SSRC and sequence
/// number when it is RTP.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub at: Instant,
    pub len: usize,
    pub rtp: Option<(u32, u16)>,
}

/// The SSRC and sequence number of an SRTP packet (RFC 3711 §3.1: the
/// header is not encrypted); `None` for RTCP (RFC 5761 §4), STUN and
/// DTLS.
pub fn rtp_header(data: &[u8]) -> Option<(u32, u16)> {
    let rtp = data.len() >= 12 && data[0] >> 6 == 2 && !(64..96).contains(&(data[1] & 0x7F));
    rtp.then(|| {
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        (ssrc, u16::from_be_bytes([data[2], data[3]]))
    })
}

/// Says whether to drop a datagram A sent.
pub type DropFilter = Box<dyn FnMut(&Sent) -> bool>;

pub struct Path {
    pub pcs: [PeerConnection; 2],
    /// `links[side]` carries what `side` sends.
    pub links: [Link<Datagram>; 2],
    pub events: [Vec<PeerEvent>; 2],
    /// When the links began: their rate schedules count from here.
    pub start: Instant,
    pub now: Instant,
    /// Each datagram B received: when, and its size.
    pub arrivals_at_b: Vec<(Instant, usize)>,
    /// What A sent.
    pub sent_by_a: Vec<Sent>,
    /// The queuing delay each datagram of A met, and when.
    pub queuing_at_a: Vec<(Instant, Duration)>,
    /// Drops A's datagram if this says so (a loss of the test's
    /// choosing), before its link.
    pub drop_from_a: Option<DropFilter>,
}

pub fn peer_config(seed: u64, congestion: CongestionConfig) -> PeerConfig {
    PeerConfig {
        seed: Some(seed),
        dtls: DtlsConfig {
            deterministic_seed: Some(seed),
            ..DtlsConfig::default()
        },
        congestion,
        ..PeerConfig::default()
    }
}

impl Path {
    /// Peers seeded from `seed`, A sending through `a_to_b` and B
    /// through `b_to_a`, their congestion controllers set to
    /// `congestion`.
    pub fn new(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64, congestion: CongestionConfig) -> Path {
        Path::with_configs(
            a_to_b,
            b_to_a,
            seed,
            [peer_config(seed, congestion), peer_config(seed + 1, congestion)],
        )
    }

    pub fn with_configs(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64, configs: [PeerConfig; 2]) -> Path {
        let now = Instant::now();
        let [a, b] = configs;
        let pc = |side: usize, config: PeerConfig| {
            let mut pc = PeerConnection::new(config, now).unwrap();
            let addr: SocketAddr = format!("10.0.0.{}:5000", side + 1).parse().unwrap();
            pc.add_local_address(addr).unwrap();
            pc.end_of_local_addresses();
            pc
        };
        Path {
            pcs: [pc(A, a), pc(B, b)],
            links: [
                Link::new(a_to_b, seed, now).unwrap(),
                Link::new(b_to_a, seed + 1, now).unwrap(),
            ],
            events: [Vec::new(), Vec::new()],
            start: now,
            now,
            arrivals_at_b: Vec::new(),
            sent_by_a: Vec::new(),
            queuing_at_a: Vec::new(),
            drop_from_a: None,
        }
    }

    /// A offers, B answers, before any candidate is out, so that each
    /// candidate can go to the other side as soon as it comes.
    pub fn negotiate(&mut self) {
        let offer = self.pcs[A].create_offer().unwrap();
        self.pcs[A].set_local_description(&offer).unwrap();
        self.pcs[B].set_remote_description(&offer).unwrap();
        let answer = self.pcs[B].create_answer().unwrap();
        self.pcs[B].set_local_description(&answer).unwrap();
        self.pcs[A].set_remote_description(&answer).unwrap();
    }

    /// Hands what the peers send to their links and their candidates
    /// to each other, then moves the clock to the earliest arrival or
    /// timer and handles what is due. False once nothing is left.
    pub fn step(&mut self) -> bool {
        self.flush();
        let arrivals = self.links.iter().filter_map(Link::poll_timeout);
        let timers = self.pcs.iter().filter_map(PeerConnection::poll_timeout);
        let Some(next) = arrivals.chain(timers).min() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        for side in [A, B] {
            while let Some(Datagram(t)) = self.links[side].poll_packet(now) {
                if side == A {
                    self.arrivals_at_b.push((now, t.data.len()));
                }
                self.pcs[1 - side].handle_receive(now, t.transport, t.source, t.destination, &t.data);
            }
        }
        for pc in &mut self.pcs {
            if pc.poll_timeout().is_some_and(|at| at <= now) {
                pc.handle_timeout(now);
            }
        }
        true
    }

    /// Hands what the peers have to send now to their links, and their
    /// events to `events`.
    pub fn flush(&mut self) {
        let now = self.now;
        let mut buf = Vec::new();
        for side in [A, B] {
            while let Some(t) = self.pcs[side].poll_transmit(now, 1, &mut buf) {
                if side == A {
                    let sent = Sent {
                        at: now,
                        len: buf.len(),
                        rtp: rtp_header(&buf),
                    };
                    self.sent_by_a.push(sent);
                    if self.drop_from_a.as_mut().is_some_and(|drop| drop(&sent)) {
                        continue;
                    }
                    self.queuing_at_a.push((now, self.links[A].queue_delay(now)));
                }
                let transmit = Transmit::new(t.route(), buf.clone());
                self.links[side].handle_packet(now, Datagram(transmit));
            }
            while let Some(event) = self.pcs[side].poll_event() {
                if let PeerEvent::IceCandidate(candidate) = &event {
                    self.pcs[1 - side].add_ice_candidate(Some(candidate)).unwrap();
                }
                self.events[side].push(event);
            }
        }
    }

    /// Steps until `done` holds; panics after `limit` of virtual time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Path) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now <= deadline, "not done after {limit:?} of virtual time");
            assert!(self.step(), "the path went idle first");
        }
    }

    /// A sends a video track: negotiated, connected, its first frame
    /// (a keyframe of 1,000 bytes) sent.
    pub fn connect_video(&mut self) -> TransceiverId {
        let video = self.pcs[A].add_track(MediaKind::Video).unwrap();
        self.negotiate();
        self.run_until(Duration::from_secs(10), |p| {
            p.pcs[A]
                .send_frame(video, Duration::ZERO, &vp8_frame(0, true, 1000))
                .is_ok()
        });
        video
    }

    /// Runs A's VP8 encoder on `video` for `time`, 30 frames a second
    /// of `rate(target)` bits per second each (the second frame on,
    /// a keyframe every 300), calling `each` before every step; returns
    /// the targets A announced, by time since it began.
    pub fn send_video(
        &mut self,
        video: TransceiverId,
        time: Duration,
        rate: impl Fn(u64) -> u64,
        mut each: impl FnMut(&Path),
    ) -> Vec<(Duration, u64)> {
        let began = self.now;
        let mut frame = 1;
        let mut targets = Vec::new();
        while self.now < began + time {
            each(self);
            let media_time = Duration::from_millis(frame as u64 * 1000 / 30);
            if self.now >= began + media_time {
                let len = (rate(self.pcs[A].target_bitrate()) / 8 / 30) as usize;
                self.pcs[A]
                    .send_frame(video, media_time, &vp8_frame(frame, frame % 300 == 0, len))
                    .unwrap();
                frame += 1;
            }
            assert!(self.step(), "the path went idle");
            for event in self.events[A].drain(..) {
                if let PeerEvent::TargetBitrate(bps) = event {
                    targets.push((self.now - began, bps));
                }
            }
        }
        targets
    }

    /// The bytes B received in each whole second since the start.
    pub fn bytes_per_second(&self) -> Vec<u64> {
        let mut seconds = Vec::new();
        for (at, size) in &self.arrivals_at_b {
            let second = (*at - self.start).as_secs() as usize;
            if seconds.len() <= second {
                seconds.resize(second + 1, 0);
            }
            seconds[second] += *size as u64;
        }
        seconds
    }

    /// The `p`th percentile (0 to 100) of the queuing delay A's
    /// datagrams met from `since` on.
    pub fn queuing_percentile(&self, since: Instant, p: usize) -> Duration {
        let mut delays: Vec<Duration> = (self.queuing_at_a.iter())
            .filter(|(at, _)| *at >= since)
            .map(|(_, d)| *d)
            .collect();
        delays.sort();
        delays
            .get((delays.len() * p / 100).min(delays.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

pub fn link(settings: &[&str]) -> LinkConfig {
    let mut config = LinkConfig::default();
    for setting in settings {
        config.apply(setting).unwrap();
    }
    config
}
