//! Two PeerConnections over a bottleneck: natter-impair's `Link` (the
//! same model the UDP proxy of the real-peer tests runs) in each
//! direction, under a virtual clock. A data channel transfer through a
//! 1 Mbit/s link with a 100 ms drop-tail queue completes, never gets
//! more than the link's capacity, and overflows the queue on the way
//! (SCTP's congestion window grows until the queue drops a packet); one
//! through a capacity that drops from 2 Mbit/s to 500 kbit/s, with jitter
//! and random loss, stays under each capacity in its time. A video
//! sender whose encoder follows its congestion controller's target
//! brings that target below a 1 Mbit/s link's capacity.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::congestion::CongestionConfig;
use natter::dtls::DtlsConfig;
use natter::peer::*;
use natter_ice::Transmit;
use natter_impair::{Link, LinkConfig};
use natter_sctp::Message;

#[path = "support/frames.rs"]
mod frames;
use frames::vp8_frame;

const A: usize = 0;
const B: usize = 1;

/// A datagram crossing a link.
#[derive(Clone)]
struct Datagram(Transmit);

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.0.data
    }
}

/// Two peers, A at 10.0.0.1 and B at 10.0.0.2, each sending into its
/// own link, and a virtual clock.
struct Path {
    pcs: [PeerConnection; 2],
    /// `links[side]` carries what `side` sends.
    links: [Link<Datagram>; 2],
    events: [Vec<PeerEvent>; 2],
    /// When the links began: their rate schedules count from here.
    start: Instant,
    now: Instant,
    /// Each datagram B received: when, and its size.
    arrivals_at_b: Vec<(Instant, usize)>,
}

impl Path {
    /// Peers seeded from `seed`, A sending through `a_to_b` and B
    /// through `b_to_a`, their congestion controllers set to
    /// `congestion`.
    fn new(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64, congestion: CongestionConfig) -> Path {
        let now = Instant::now();
        let pc = |side: u64| {
            let config = PeerConfig {
                seed: Some(seed + side),
                dtls: DtlsConfig {
                    deterministic_seed: Some(seed + side),
                    ..DtlsConfig::default()
                },
                congestion,
                ..PeerConfig::default()
            };
            let mut pc = PeerConnection::new(config, now).unwrap();
            let addr: SocketAddr = format!("10.0.0.{}:5000", side + 1).parse().unwrap();
            pc.add_local_address(addr).unwrap();
            pc.end_of_local_addresses();
            pc
        };
        Path {
            pcs: [pc(0), pc(1)],
            links: [
                Link::new(a_to_b, seed, now).unwrap(),
                Link::new(b_to_a, seed + 1, now).unwrap(),
            ],
            events: [Vec::new(), Vec::new()],
            start: now,
            now,
            arrivals_at_b: Vec::new(),
        }
    }

    /// A offers, B answers, before any candidate is out, so that each
    /// candidate can go to the other side as soon as it comes.
    fn negotiate(&mut self) {
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
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut buf = Vec::new();
        for side in [A, B] {
            while let Some(t) = self.pcs[side].poll_transmit(now, 1, &mut buf) {
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

    /// Steps until `done` holds; panics after `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Path) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now <= deadline, "not done after {limit:?} of virtual time");
            assert!(self.step(), "the path went idle first");
        }
    }

    /// The bytes B received in each whole second since the start.
    fn bytes_per_second(&self) -> Vec<u64> {
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

    /// The bytes of the messages `side` received on `id` since the last
    /// call, taken out of its events.
    fn take_received(&mut self, side: usize, id: DataChannelId) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.events[side].retain(|e| match e {
            PeerEvent::DataChannelMessage { id: got, data, .. } if *got == id => {
                bytes.extend_from_slice(data);
                false
            }
            _ => true,
        });
        bytes
    }
}

fn link(settings: &[&str]) -> LinkConfig {
    let mut config = LinkConfig::default();
    for setting in settings {
        config.apply(setting).unwrap();
    }
    config
}

/// A path whose peers have negotiated and opened a channel; its ids at
/// A and at B.
fn connected(a_to_b: LinkConfig, b_to_a: LinkConfig, seed: u64) -> (Path, DataChannelId, DataChannelId) {
    let mut path = Path::new(a_to_b, b_to_a, seed, CongestionConfig::default());
    let a = path.pcs[A]
        .create_data_channel("bulk", DataChannelInit::default())
        .unwrap();
    path.negotiate();
    path.run_until(Duration::from_secs(10), |p| {
        p.events[A].contains(&PeerEvent::DataChannelOpen(a))
            && p.events[B].iter().any(|e| matches!(e, PeerEvent::DataChannelOpen(_)))
    });
    let b = path.events[B]
        .iter()
        .find_map(|e| match e {
            PeerEvent::DataChannel(id) => Some(*id),
            _ => None,
        })
        .expect("B announced the channel");
    (path, a, b)
}

/// A sends `len` bytes to B in 16 KiB messages, with up to 128 KiB
/// waiting in its buffer (always more than these links carry), and
/// checks that they arrive intact and in order; returns how long that
/// took.
fn transfer(path: &mut Path, a: DataChannelId, b: DataChannelId, len: usize) -> Duration {
    let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let began = path.now;
    let (mut sent, mut received) = (0, Vec::new());
    path.run_until(Duration::from_secs(120), |p| {
        let mut channel = p.pcs[A].data_channel(a).expect("the channel lives");
        while sent < len && channel.buffered_amount() < 128 * 1024 {
            let end = len.min(sent + 16 * 1024);
            channel.send(Message::Binary(&payload[sent..end])).unwrap();
            sent = end;
        }
        received.extend(p.take_received(B, b));
        received.len() >= len
    });
    assert!(received == payload, "B received the payload, in order and intact");
    path.now - began
}

/// What a link carries in a second, in bytes, at `bits` per second.
fn per_second(bits: u64) -> u64 {
    bits / 8
}

/// Slack for a second's count: the datagram on the line at each edge.
const MTU: u64 = 1500;

#[test]
fn a_transfer_through_a_1_mbit_link_completes_within_its_capacity() {
    let a_to_b = link(&["rate=1mbit", "queue=100ms", "delay=20ms"]);
    let b_to_a = link(&["delay=20ms"]);
    let (mut path, a, b) = connected(a_to_b, b_to_a, 40);
    let drops_before = path.links[A].stats().queue_drops;
    let len = 384 * 1024;
    let took = transfer(&mut path, a, b, len);
    let capacity = per_second(1_000_000);
    let goodput = len as f64 / took.as_secs_f64();
    let seconds = path.bytes_per_second();
    let stats = path.links[A].stats();
    println!("{len} bytes in {took:?}: {goodput:.0} B/s; per second {seconds:?}; A to B {stats}");
    assert!(goodput <= capacity as f64, "{goodput} B/s through {capacity} B/s");
    for (second, bytes) in seconds.iter().enumerate() {
        assert!(*bytes <= capacity + MTU, "{bytes} bytes arrived in second {second}");
    }
    assert!(
        stats.queue_drops > drops_before,
        "SCTP offered more than the link carries, yet the queue dropped nothing"
    );
    assert_eq!(stats.lost, 0, "the link has no random loss");
}

#[test]
fn a_transfer_follows_a_capacity_that_drops() {
    // 2 Mbit/s for the first 2 s, 500 kbit/s after; jitter and 1% loss.
    let a_to_b = link(&[
        "rate=2mbit,2s:500kbit",
        "queue=100ms",
        "delay=20ms",
        "jitter=5ms",
        "loss=1%",
    ]);
    let b_to_a = link(&["delay=20ms", "jitter=5ms"]);
    let (mut path, a, b) = connected(a_to_b, b_to_a, 41);
    let took = transfer(&mut path, a, b, 768 * 1024);
    let seconds = path.bytes_per_second();
    let stats = path.links[A].stats();
    println!("done in {took:?}; per second {seconds:?}; A to B {stats}");
    assert!(seconds.len() > 3, "the transfer outlasted the change of capacity");
    for (second, bytes) in seconds.iter().enumerate() {
        let capacity = per_second(if second < 2 { 2_000_000 } else { 500_000 });
        assert!(*bytes <= capacity + MTU, "{bytes} bytes arrived in second {second}");
    }
    assert!(stats.lost > 0 && stats.queue_drops > 0, "{stats}");
}

#[test]
fn a_video_sender_through_a_1_mbit_link_brings_its_target_below_the_capacity() {
    // A's encoder follows A's target (30 frames a second of target / 30
    // bits each), starting at 2 Mbit/s: twice what the link carries.
    // The link's queue fills, B's transport-wide feedback shows the
    // delay growing, and A's GCC target (draft-ietf-rmcat-gcc-02) falls
    // below the capacity; after 10 s its mean stays between half of it
    // and all of it, its sawtooth (AIMD grows until the queue shows
    // again) peaking at most 5% above, and the link's queue no longer
    // overflows; what it delivers then is printed. What A sent carried
    // transport-wide sequence numbers: B had them to report, and A
    // numbered each packet it sent, retransmissions included.
    let capacity = 1_000_000;
    let a_to_b = link(&["rate=1mbit", "queue=100ms", "delay=20ms"]);
    let b_to_a = link(&["delay=20ms"]);
    let congestion = CongestionConfig {
        start_bps: 2 * capacity,
        ..CongestionConfig::default()
    };
    let mut path = Path::new(a_to_b, b_to_a, 42, congestion);
    let video = path.pcs[A].add_track(MediaKind::Video).unwrap();
    path.negotiate();
    path.run_until(Duration::from_secs(10), |p| {
        p.pcs[A]
            .send_frame(video, Duration::ZERO, &vp8_frame(0, true, 1000))
            .is_ok()
    });
    let began = path.now;
    let mut announced = Vec::new();
    let mut frame = 1;
    let mut at_10s = None;
    while path.now < began + Duration::from_secs(20) {
        if path.now >= began + Duration::from_secs(10) {
            at_10s.get_or_insert(*path.links[A].stats());
        }
        let media_time = Duration::from_millis(frame as u64 * 1000 / 30);
        if path.now >= began + media_time {
            let len = (path.pcs[A].target_bitrate() / 8 / 30) as usize;
            path.pcs[A]
                .send_frame(video, media_time, &vp8_frame(frame, frame % 300 == 0, len))
                .unwrap();
            frame += 1;
        }
        assert!(path.step(), "the path went idle");
        for event in path.events[A].drain(..) {
            if let PeerEvent::TargetBitrate(bps) = event {
                announced.push((path.now, bps));
            }
        }
    }
    let targets: Vec<(Duration, u64)> = announced.iter().map(|(at, bps)| (*at - began, *bps)).collect();
    let target = path.pcs[A].target_bitrate();
    let (a, b) = (path.pcs[A].stats(), path.pcs[B].stats());
    let sent = |s: &SenderStats| s.counters.packets_sent + s.counters.retransmitted_packets_sent;
    let packets: u64 = a.senders.iter().map(|(_, s)| sent(s)).sum();
    let late: Vec<u64> = (targets.iter())
        .filter(|(at, _)| *at >= Duration::from_secs(10))
        .map(|(_, bps)| *bps)
        .collect();
    let mean = late.iter().sum::<u64>() / late.len().max(1) as u64;
    println!("target {target} bit/s, mean after 10 s {mean}; announced {targets:?}");
    println!("A to B {}", path.links[A].stats());
    println!(
        "A numbered {} of its {packets} packets; B sent {} feedback",
        a.media.transport_numbered, b.media.twcc_feedback_sent
    );
    assert_eq!(a.media.transport_numbered, packets, "every packet A sent was numbered");
    assert!(b.media.twcc_feedback_sent > 0, "B saw transport-wide sequence numbers");
    assert!(
        targets.iter().any(|(_, bps)| *bps < capacity),
        "the target fell below the capacity"
    );
    assert!(late.len() > 10, "the target kept adapting after 10 s: {late:?}");
    assert!(
        (capacity / 2..=capacity).contains(&mean),
        "mean target {mean} bit/s after 10 s, capacity {capacity}"
    );
    let (at_10s, end) = (at_10s.unwrap(), path.links[A].stats());
    let delivered = (end.delivered_bytes - at_10s.delivered_bytes) * 8 / 10;
    println!(
        "after 10 s: {delivered} bit/s delivered, {} queue drops",
        end.queue_drops - at_10s.queue_drops
    );
    assert_eq!(end.queue_drops, at_10s.queue_drops, "the queue overflowed after 10 s");
    for bps in late {
        assert!(
            bps <= capacity * 105 / 100,
            "target {bps} bit/s after 10 s, capacity {capacity}"
        );
    }
}
