//! VP9 (RFC 9628) and AV1 (AV1 RTP Specification) tracks between two
//! PeerConnections over the in-memory network of the peer tests: each
//! codec negotiated alone, frames sent both ways, a clean second and a
//! second with 5% loss repaired by NACK and RTX; every frame arrives as
//! it was sent, with its keyframe flag and picture size, and the
//! receive statistics count the true loss.

use std::time::Duration;

use natter::jsep::MediaKind;
use natter::peer::*;
use natter_rtp::payload::write_leb128;

// The harness's randomness offers more than this file uses.
#[allow(dead_code)]
mod support;

#[path = "support/net.rs"]
mod net;
use net::{Net, A, B};

/// Bits written as `0` and `1` characters (others are spacing), most
/// significant first, packed into bytes and padded with zeros.
fn bits(layout: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, bit) in layout.chars().filter(|c| matches!(c, '0' | '1')).enumerate() {
        if i % 8 == 0 {
            out.push(0);
        }
        if bit == '1' {
            *out.last_mut().expect("pushed above") |= 0x80 >> (i % 8);
        }
    }
    out
}

/// `value` as `width` bits.
fn field(value: u32, width: usize) -> String {
    format!("{value:0width$b}")
}

/// A VP9 profile 0 frame (VP9 Bitstream Specification §6.2): a 320x240
/// keyframe or a shown inter frame, then `len` bytes numbered by `n`.
fn vp9_frame(n: usize, keyframe: bool, len: usize) -> Vec<u8> {
    // frame_marker, profile 0, show_existing_frame 0, frame_type,
    // show_frame 1, error_resilient_mode 0.
    let mut header = format!("10 0 0 0 {} 1 0", u8::from(!keyframe));
    if keyframe {
        // frame_sync_code, color_space BT.709, studio swing, then the
        // size less one.
        header += &format!("{} 010 0 {} {}", field(0x49_83_42, 24), field(319, 16), field(239, 16));
    } else {
        header += " 00"; // reset_frame_context
    }
    let mut frame = bits(&header);
    frame.extend((0..len).map(|i| (i ^ n) as u8));
    frame
}

/// An OBU with its size field (AV1 §5.3), as encoders and IVF write them.
fn obu(obu_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![obu_type << 3 | 0x02];
    let mut size = [0u8; 8];
    let n = write_leb128(payload.len() as u32, &mut size);
    out.extend_from_slice(&size[..n]);
    out.extend_from_slice(payload);
    out
}

/// An AV1 temporal unit (AV1 §7.5): a temporal delimiter; for a key
/// frame a sequence header (§5.5.1: Main profile, one operating point
/// at level 4.0, 320x240); a frame OBU (§5.9.2) of `len` bytes
/// numbered by `n`.
fn av1_temporal_unit(n: usize, keyframe: bool, len: usize) -> Vec<u8> {
    let mut unit = vec![0x12, 0x00];
    if keyframe {
        // seq_profile, still_picture, reduced_still_picture_header,
        // timing_info_present_flag, initial_display_delay_present_flag,
        // operating_points_cnt_minus_1, operating_point_idc[0],
        // seq_level_idx[0] 8, seq_tier[0], frame_width_bits_minus_1,
        // frame_height_bits_minus_1, max_frame_width_minus_1,
        // max_frame_height_minus_1.
        let sequence = format!(
            "000 0 0 0 0 00000 {} 01000 0 1111 1111 {} {}",
            field(0, 12),
            field(319, 16),
            field(239, 16)
        );
        unit.extend(obu(1, &bits(&sequence)));
    }
    // show_existing_frame 0, frame_type KEY or INTER, show_frame 1.
    let mut frame = bits(&format!("0 {} 1", if keyframe { "00" } else { "01" }));
    frame.extend((0..len).map(|i| (i ^ n) as u8));
    unit.extend(obu(6, &frame));
    unit
}

/// Only the codec `name` and its RTX left in the offer's video section,
/// as a browser's `setCodecPreferences` would offer it: natter sends
/// with the first codec the other side accepts.
fn prefer(offer: &Description, name: &str) -> Description {
    let sdp = &offer.sdp;
    let payload_type = |line: &str| line.split([':', ' ']).nth(1).map(str::to_string);
    let kept: Vec<String> = sdp
        .lines()
        .filter(|l| l.starts_with("a=rtpmap:") && l.contains(&format!(" {name}/")))
        .filter_map(payload_type)
        .collect();
    let rtx: Vec<String> = sdp
        .lines()
        .filter(|l| {
            kept.iter()
                .any(|pt| l.starts_with("a=fmtp:") && l.ends_with(&format!(" apt={pt}")))
        })
        .filter_map(payload_type)
        .collect();
    let keep = |pt: &str| kept.iter().chain(&rtx).any(|k| k == pt);
    let mut out = String::new();
    for line in sdp.lines() {
        if let Some(rest) = line.strip_prefix("m=video ") {
            // The port and the protocol, then the payload types.
            let fields: Vec<&str> = rest
                .split(' ')
                .enumerate()
                .filter(|&(i, f)| i < 2 || keep(f))
                .map(|(_, f)| f)
                .collect();
            out += &format!("m=video {}\r\n", fields.join(" "));
            continue;
        }
        let per_codec = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"];
        if per_codec.iter().any(|p| line.starts_with(p)) && payload_type(line).is_some_and(|pt| !keep(&pt)) {
            continue;
        }
        out += line;
        out += "\r\n";
    }
    Description {
        kind: offer.kind,
        sdp: out,
    }
}

/// A and B each send a video track in the one codec `name`; connected.
fn call(name: &str, seed: u64) -> (Net, TransceiverId, TransceiverId) {
    let mut net = Net::new(0.0, seed);
    let a_video = net.pc(A).add_track(MediaKind::Video).unwrap();
    let offer = net.pc(A).create_offer().unwrap();
    net.pc(A).set_local_description(&offer).unwrap();
    net.pc(B).set_remote_description(&prefer(&offer, name)).unwrap();
    let b_video = net.pc(B).add_track(MediaKind::Video).unwrap();
    let answer = net.pc(B).create_answer().unwrap();
    let video_codecs: Vec<&str> = answer.sdp.lines().filter(|l| l.starts_with("a=rtpmap:")).collect();
    assert_eq!(video_codecs.len(), 2, "{name} and its RTX: {}", answer.sdp);
    net.pc(B).set_local_description(&answer).unwrap();
    net.pc(A).set_remote_description(&answer).unwrap();
    net.run_until_connected();
    (net, a_video, b_video)
}

/// One second clean, then one with 5% loss each way, frames of 2-4 KB
/// (several packets) at 30 per second from both sides, a keyframe every
/// 30; then what B and A received, checked against what was sent.
fn exchange(name: &str, format: Format, seed: u64, frame: fn(usize, bool, usize) -> Vec<u8>) {
    let (mut net, a_video, b_video) = call(name, seed);
    let start = net.now;
    let mut sent = [Vec::new(), Vec::new()];
    for i in 0..60 {
        if i == 30 {
            net.loss = 0.05;
        }
        let t = net.now - start;
        for (side, id, seed) in [(A, a_video, 0), (B, b_video, 1000)] {
            let f = frame(seed + i, i % 30 == 0, 2000 + 67 * (i % 30));
            net.pc(side).send_frame(id, t, &f).unwrap();
            sent[side].push(f);
        }
        net.run_for(Duration::from_millis(33));
    }
    net.loss = 0.0;
    net.run_for(Duration::from_secs(2));
    assert!(net.lost > 0, "the lossy second lost packets");

    for (from, to, receiving) in [(A, B, b_video), (B, A, a_video)] {
        let got = net.media_frames(to, format);
        let data: Vec<&Vec<u8>> = got.iter().map(|f| &f.data).collect();
        let clean: Vec<&Vec<u8>> = sent[from][..30].iter().collect();
        assert_eq!(
            data[..30],
            clean[..],
            "{name}: the clean second arrives whole and in order"
        );
        assert!(got.len() >= 58, "{name}: {} of 60 frames", got.len());
        for f in &got {
            assert!(
                sent[from].contains(&f.data),
                "{name}: a frame arrived that was never sent"
            );
        }
        let keyframes: Vec<bool> = got.iter().map(|f| f.keyframe).collect();
        let expected: Vec<bool> = got
            .iter()
            .map(|f| {
                sent[from]
                    .iter()
                    .position(|s| *s == f.data)
                    .is_some_and(|i| i % 30 == 0)
            })
            .collect();
        assert_eq!(keyframes, expected, "{name}: keyframes are the ones sent as such");
        assert_eq!(got[0].size, Some((320, 240)));

        let stats = net.pc(to).stats();
        let (_, inbound) = stats.receivers.iter().find(|(id, _)| *id == receiving).unwrap();
        assert_eq!(inbound.frame_size, Some((320, 240)), "{inbound:?}");
        assert!(
            inbound.retransmitted_packets_received > 0,
            "{name}: RTX repaired: {inbound:?}"
        );
        // Every packet came in the end, first time or by RTX, each
        // counted once.
        assert_eq!(inbound.packets_lost, 0, "{name}: {inbound:?}");
        let outbound = net.pc(from).stats();
        let (_, outbound) = outbound
            .senders
            .iter()
            .find(|(_, s)| s.ssrc == inbound.ssrc.unwrap())
            .unwrap();
        assert_eq!(outbound.format, format);
        assert_eq!(inbound.packets_received, outbound.counters.packets_sent, "{name}");
    }
}

#[test]
fn vp9_both_ways_with_loss_repaired() {
    exchange("VP9", Format::Vp9, 61, vp9_frame);
}

#[test]
fn av1_both_ways_with_loss_repaired() {
    exchange("AV1", Format::Av1, 62, av1_temporal_unit);
}
