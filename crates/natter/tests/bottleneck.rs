//! Two PeerConnections over a bottleneck: natter-impair's `Link` (the
//! same model the UDP proxy of the real-peer tests runs) in each
//! direction, under a virtual clock. A data channel transfer through a
//! 1 Mbit/s link with a 100 ms drop-tail queue completes, never gets
//! more than the link's capacity, and overflows the queue on the way
//! (SCTP's congestion window grows until the queue drops a packet); one
//! through a capacity that drops from 2 Mbit/s to 500 kbit/s, with jitter
//! and random loss, stays under each capacity in its time. A video
//! sender whose encoder follows its congestion controller's target
//! brings that target below a 1 Mbit/s link's capacity, paced and
//! unpaced: paced, its retransmissions once fed themselves (each NACK
//! of a repair the full queue dropped was answered, several times per
//! packet, at up to 2.5 times the target) and the queue kept
//! overflowing.

use std::time::Duration;

use natter::congestion::CongestionConfig;
use natter::peer::*;
use natter_impair::LinkConfig;
use natter_sctp::Message;

#[path = "support/frames.rs"]
mod frames;
#[path = "support/path.rs"]
mod path;
use path::{link, Path, A, B};

/// The bytes of the messages `side` received on `id` since the last
/// call, taken out of its events.
fn take_received(path: &mut Path, side: usize, id: DataChannelId) -> Vec<u8> {
    let mut bytes = Vec::new();
    path.events[side].retain(|e| match e {
        PeerEvent::DataChannelMessage { id: got, data, .. } if *got == id => {
            bytes.extend_from_slice(data);
            false
        }
        _ => true,
    });
    bytes
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
        received.extend(take_received(p, B, b));
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
        // Datagrams put on the line at 2 Mbit/s in the last delay +
        // jitter (25 ms) before the drop arrive in second 2.
        let on_the_line = if second == 2 {
            per_second(2_000_000) * 25 / 1000
        } else {
            0
        };
        assert!(
            *bytes <= capacity + MTU + on_the_line,
            "{bytes} bytes arrived in second {second}"
        );
    }
    assert!(stats.lost > 0 && stats.queue_drops > 0, "{stats}");
}

#[test]
fn a_video_sender_through_a_1_mbit_link_brings_its_target_below_the_capacity() {
    video_through_a_1_mbit_link(false);
}

#[test]
fn a_paced_video_sender_through_a_1_mbit_link_brings_its_target_below_the_capacity() {
    video_through_a_1_mbit_link(true);
}

fn video_through_a_1_mbit_link(pace: bool) {
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
        pace,
        ..CongestionConfig::default()
    };
    let mut path = Path::new(a_to_b, b_to_a, 42, congestion);
    let video = path.connect_video();
    let began = path.now;
    let mut at_10s = None;
    let targets = path.send_video(
        video,
        Duration::from_secs(20),
        |t| t,
        |p| {
            if p.now >= began + Duration::from_secs(10) {
                at_10s.get_or_insert(*p.links[A].stats());
            }
        },
    );
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
        "A numbered {} of its {packets} packets and {} of padding; B sent {} feedback",
        a.media.transport_numbered, a.media.padding_sent, b.media.twcc_feedback_sent
    );
    // Queuing delay at the bottleneck once the target has converged.
    let converged = began + Duration::from_secs(10);
    let (p50, p95) = (
        path.queuing_percentile(converged, 50),
        path.queuing_percentile(converged, 95),
    );
    println!("queuing delay after 10 s: p50 {p50:?}, p95 {p95:?}");
    assert!(
        p95 <= Duration::from_millis(100),
        "p95 queuing delay {p95:?} after 10 s"
    );
    assert_eq!(
        a.media.transport_numbered,
        packets + a.media.padding_sent,
        "every packet A sent was numbered, probes' padding too"
    );
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
