//! The pacer in PeerConnection's send path (issue 12), under a virtual
//! clock over natter-impair's links (tests/support/path.rs). With
//! [`CongestionConfig::pace`], a frame of 30 packets leaves spread at
//! 2.5 times the target rather than in one burst (it does leave in one
//! burst unpaced), audio passes video that waits, and a retransmission
//! passes new media that waits.

use std::time::Duration;

use natter::congestion::CongestionConfig;
use natter::peer::*;

#[path = "support/frames.rs"]
mod frames;
#[path = "support/path.rs"]
mod path;
use frames::vp8_frame;
use path::{link, peer_config, Path, A, B};

/// 30 packets of about 1,100 bytes.
const FRAME: usize = 33_000;

/// A path at 1 Mbit/s start whose A sends `kinds` and has connected;
/// `pace` turns A's pacer on. The target stays under 3 Mbit/s, so that
/// frames wait in the pacer whatever the probes found on the unlimited
/// link.
fn connected(pace: bool, kinds: &[MediaKind], seed: u64) -> (Path, Vec<TransceiverId>) {
    let congestion = CongestionConfig {
        start_bps: 1_000_000,
        max_bps: 3_000_000,
        pace,
        ..CongestionConfig::default()
    };
    let configs = [peer_config(seed, congestion), peer_config(seed + 1, congestion)];
    let mut path = Path::with_configs(link(&["delay=20ms"]), link(&["delay=20ms"]), seed, configs);
    let ids: Vec<TransceiverId> = kinds.iter().map(|k| path.pcs[A].add_track(*k).unwrap()).collect();
    path.negotiate();
    let video = ids[kinds.iter().position(|k| *k == MediaKind::Video).unwrap()];
    path.run_until(Duration::from_secs(10), |p| {
        p.pcs[A]
            .send_frame(video, Duration::ZERO, &vp8_frame(0, true, 500))
            .is_ok()
    });
    // The initial probes are over, and what the first frame started.
    let settled = path.now + Duration::from_secs(2);
    path.run_until(Duration::from_secs(3), |p| p.now >= settled);
    (path, ids)
}

/// The video packets of A (its SSRC) sent from `from` on: when.
fn video_sent(path: &Path, ssrc: u32, from: usize) -> Vec<std::time::Instant> {
    (path.sent_by_a[from..].iter())
        .filter(|s| s.rtp.is_some_and(|(got, _)| got == ssrc))
        .map(|s| s.at)
        .collect()
}

fn ssrc(path: &Path, id: TransceiverId) -> u32 {
    let stats = path.pcs[A].stats();
    stats.senders.iter().find(|(t, _)| *t == id).unwrap().1.ssrc
}

#[test]
fn a_frame_leaves_spread_at_the_pacing_rate() {
    for pace in [false, true] {
        let (mut path, ids) = connected(pace, &[MediaKind::Video], 70);
        let video = ids[0];
        let from = path.sent_by_a.len();
        let target = path.pcs[A].target_bitrate();
        path.pcs[A]
            .send_frame(video, Duration::from_millis(2100), &vp8_frame(1, false, FRAME))
            .unwrap();
        let done = path.now + Duration::from_secs(1);
        path.run_until(Duration::from_secs(2), |p| p.now >= done);
        let sent = video_sent(&path, ssrc(&path, video), from);
        let n = sent.len();
        assert!(n >= 28, "{n} packets");
        let span = sent[n - 1] - sent[0];
        // The frame at 2.5 times the target, less one packet.
        let paced = Duration::from_secs_f64(FRAME as f64 * 8.0 * (n - 1) as f64 / n as f64 / (2.5 * target as f64));
        println!("pace {pace}: target {target} bit/s, {n} packets over {span:?} (at the pacing rate {paced:?})");
        if pace {
            assert!(span >= paced / 2, "paced frame left in {span:?}");
            assert!(span <= paced * 2, "paced frame took {span:?}");
        } else {
            assert_eq!(span, Duration::ZERO, "unpaced, a frame leaves at once");
        }
    }
}

#[test]
fn audio_leaves_before_queued_video() {
    let (mut path, ids) = connected(true, &[MediaKind::Audio, MediaKind::Video], 71);
    let (audio, video) = (ids[0], ids[1]);
    let (audio_ssrc, video_ssrc) = (ssrc(&path, audio), ssrc(&path, video));
    let media_time = Duration::from_millis(2100);
    let begun = path.sent_by_a.len();
    path.pcs[A]
        .send_frame(video, media_time, &vp8_frame(1, false, FRAME))
        .unwrap();
    // Once the frame has begun to leave, the audio comes.
    path.run_until(Duration::from_secs(1), |p| video_sent(p, video_ssrc, begun).len() >= 8);
    path.flush();
    let from = path.sent_by_a.len();
    path.pcs[A].send_frame(audio, media_time, &[0x78; 80]).unwrap();
    let done = path.now + Duration::from_secs(1);
    path.run_until(Duration::from_secs(2), |p| p.now >= done);
    let order: Vec<u32> = (path.sent_by_a[from..].iter())
        .filter_map(|s| s.rtp.map(|(ssrc, _)| ssrc))
        .filter(|s| *s == audio_ssrc || *s == video_ssrc)
        .collect();
    let audio_at = order.iter().position(|s| *s == audio_ssrc).expect("the audio left");
    let video_after = order[audio_at..].iter().filter(|s| **s == video_ssrc).count();
    println!(
        "audio left {audio_at}th of {}, {video_after} video packets after it",
        order.len()
    );
    assert!(audio_at <= 1, "audio waited behind {audio_at} video packets");
    assert!(
        video_after >= 15,
        "the video had mostly not left: {video_after} after the audio"
    );
    let b_audio = (path.events[B].iter()).any(|e| matches!(e, PeerEvent::MediaFrame(f) if f.format == Format::Opus));
    assert!(b_audio, "B received the audio frame");
}

#[test]
fn a_retransmission_leaves_before_queued_media() {
    let (mut path, ids) = connected(true, &[MediaKind::Video], 72);
    let video = ids[0];
    let video_ssrc = ssrc(&path, video);
    // The third packet of the next frame is lost; B NACKs it while
    // two more frames wait in A's pacer.
    let mut seen = 0;
    path.drop_from_a = Some(Box::new(move |sent| {
        if sent.rtp.is_some_and(|(ssrc, _)| ssrc == video_ssrc) {
            seen += 1;
            return seen == 3;
        }
        false
    }));
    let from = path.sent_by_a.len();
    for (frame, ms) in [(1, 2100), (2, 2133), (3, 2166)] {
        path.pcs[A]
            .send_frame(video, Duration::from_millis(ms), &vp8_frame(frame, false, FRAME))
            .unwrap();
    }
    let done = path.now + Duration::from_secs(1);
    path.run_until(Duration::from_secs(2), |p| p.now >= done);
    let rtp: Vec<u32> = (path.sent_by_a[from..].iter())
        .filter_map(|s| s.rtp.map(|(ssrc, _)| ssrc))
        .collect();
    let rtx_at = rtp
        .iter()
        .position(|s| *s != video_ssrc)
        .expect("a retransmission left");
    let video_after = rtp[rtx_at..].iter().filter(|s| **s == video_ssrc).count();
    let stats = path.pcs[A].stats();
    let counters = stats.senders[0].1.counters;
    println!(
        "RTX left {rtx_at}th of {} RTP packets, {video_after} video packets after it; {} retransmitted",
        rtp.len(),
        counters.retransmitted_packets_sent
    );
    assert!(counters.retransmitted_packets_sent >= 1);
    assert!(
        video_after >= 20,
        "the RTX waited behind the queued frames: {video_after} after it"
    );
}
