//! RTP mode (issue 18): a forwarder F between two natter peers. A sends
//! VP8 frames with the frame API to F's first connection, which is in
//! RTP mode; F hands every packet it gets to its second connection with
//! `write_rtp`, sequence number and timestamp rewritten; B receives the
//! frames with the frame API. Four connections, two links, one virtual
//! clock (`support/mesh.rs`); loss per direction of each link.

use std::time::Duration;

use natter::peer::*;

#[path = "support/frames.rs"]
mod frames;
#[path = "support/mesh.rs"]
mod mesh;
#[path = "support/net.rs"]
mod net;
#[allow(dead_code)]
mod support;
use frames::{vp8_frame, vp8_frame_sized};
use mesh::{Mesh, Seen, A, B, FA, FB, TS_SHIFT};

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
    let b_plis = mesh.pc(B).stats().receivers[0].1.pli_count;
    assert_eq!(f_in.pli_count, b_plis, "only B's requests, passed on: none of its own");
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

/// A keyframe request from B reaches F's sending connection as an
/// event; F asks A (RTP mode sends no PLI of its own), and A sees each
/// of B's requests once.
#[test]
fn keyframe_requests_go_through_the_application() {
    let (mut mesh, a_video, f_video) = forwarding(1805);
    send_frames(&mut mesh, a_video, 3);
    let b_video = mesh.pc(B).transceivers()[0].id();
    for _ in 0..3 {
        mesh.pc(B).request_keyframe(b_video).unwrap();
        mesh.run_for(Duration::from_millis(100));
    }
    // Until every request made its way to A: the clock moves from
    // timer to timer, and the last may stop short of the last hop.
    mesh.run_for(Duration::from_millis(100));
    let requests = |mesh: &Mesh, i: usize, id: TransceiverId| {
        let request = PeerEvent::KeyframeRequest {
            transceiver: id,
            rid: None,
        };
        mesh.nodes[i].events.iter().filter(|e| **e == request).count() as u64
    };
    let b_plis = mesh.pc(B).stats().receivers[0].1.pli_count;
    assert!(b_plis >= 3);
    assert_eq!(requests(&mesh, FB, f_video), b_plis);
    assert_eq!(mesh.pc(FA).stats().receivers[0].1.pli_count, b_plis);
    assert_eq!(requests(&mesh, A, a_video), b_plis);
}

const RIDS: [&str; 3] = ["q", "h", "f"];
const SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// The layers A was asked for keyframes on since the last call, taken
/// out of its events.
fn keyframe_requests(mesh: &mut Mesh) -> Vec<String> {
    let mut asked = Vec::new();
    mesh.nodes[A].events.retain(|e| match e {
        PeerEvent::KeyframeRequest { rid, .. } => {
            asked.extend(rid.clone());
            false
        }
        _ => true,
    });
    asked
}

/// A natter peer publishes three simulcast layers; F, in RTP mode,
/// forwards one to B, moving to the layer it is told at that layer's
/// next keyframe (asked of A for that layer alone, found by
/// `inspect()`), rewriting SSRC, sequence numbers and timestamps. B gets
/// one stream that its depacketizer takes whole across five switches:
/// every frame time, each frame byte for byte, a keyframe of the new
/// layer's size at each switch.
#[test]
fn a_forwarder_switches_simulcast_layers_of_a_natter_publisher_at_keyframes() {
    let mut mesh = Mesh::new(1806);
    let a_video = mesh.pc(A).add_simulcast_track(MediaKind::Video, &RIDS).unwrap();
    mesh.pc(FB).add_track(MediaKind::Video).unwrap();
    mesh.negotiate(A);
    mesh.negotiate(FB);
    mesh.run_until_connected();
    let fa_video = mesh.pc(FA).transceivers()[0].id();
    mesh.munger.target = Some("q");
    let plan = [(13, "h"), (27, "f"), (43, "h"), (55, "q"), (68, "f")];
    let start = mesh.now;
    let mut sent: [Vec<Vec<u8>>; 3] = Default::default();
    let mut asked_of_a = Vec::new();
    for i in 0..80 {
        if let Some(&(_, target)) = plan.iter().find(|(at, _)| *at == i) {
            mesh.munger.target = Some(target);
            mesh.pc(FA).request_layer_keyframe(fa_video, target).unwrap();
        }
        // A's encoder makes a keyframe when asked, and every 30 frames.
        let asked = keyframe_requests(&mut mesh);
        let t = mesh.now - start;
        for (layer, rid) in RIDS.iter().enumerate() {
            let keyframe = i % 30 == 0 || asked.iter().any(|r| r == rid);
            let len = (400 << layer) + 7 * i;
            let frame = vp8_frame_sized(1000 * layer + i, keyframe, SIZES[layer], len);
            mesh.pc(A).send_frame_rid(a_video, rid, t, &frame).unwrap();
            sent[layer].push(frame);
        }
        asked_of_a.extend(asked);
        mesh.run_for(Duration::from_millis(33));
    }
    mesh.run_for(Duration::from_secs(1));
    asked_of_a.extend(keyframe_requests(&mut mesh));

    // Which layer and frame time each of B's frames is.
    let frames = mesh.frames(B);
    let got: Vec<(usize, usize)> = frames
        .iter()
        .map(|f| {
            (0..3)
                .find_map(|layer| Some((layer, sent[layer].iter().position(|s| *s == f.data)?)))
                .expect("B's frame is one A sent, byte for byte")
        })
        .collect();
    let mut times: Vec<usize> = got.iter().map(|(_, i)| *i).collect();
    assert!(times.is_sorted(), "frame times in order: {times:?}");
    times.dedup();
    assert_eq!(times, (0..80).collect::<Vec<_>>(), "every frame time");
    let mut layers = Vec::new();
    for (k, (frame, &(layer, i))) in frames.iter().zip(&got).enumerate() {
        if k > 0 && got[k - 1].0 == layer {
            continue;
        }
        let size = (u32::from(SIZES[layer].0), u32::from(SIZES[layer].1));
        assert_eq!(
            (frame.keyframe, frame.size),
            (true, Some(size)),
            "a switch to {} at {i}",
            RIDS[layer]
        );
        layers.push((RIDS[layer], i));
    }
    let order: Vec<&str> = layers.iter().map(|(rid, _)| *rid).collect();
    assert_eq!(order, ["q", "h", "f", "h", "q", "f"]);
    for (&(rid, at), &(planned, target)) in layers[1..].iter().zip(&plan) {
        assert_eq!(rid, target);
        assert!(
            (planned..=planned + 3).contains(&at),
            "{rid} asked at {planned}, switched at {at}"
        );
    }
    let b_in = mesh.pc(B).stats().receivers[0].1.clone();
    assert_eq!(b_in.frames_dropped, 0, "{b_in:?}");
    assert_eq!(b_in.frame_size, Some((1280, 720)));
    // A was asked for each target, on that layer alone.
    asked_of_a.sort();
    assert_eq!(asked_of_a, ["f", "f", "h", "h", "q"]);
}
