//! Simulcast receive (RFC 8853, RFC 8852): a Chromium offer's three
//! layers, fed to the receive path as unprotected RTP. natter cannot
//! send simulcast and SRTP sits inside the connection, so the packets
//! enter below SRTP, at `receive_rtp`; NACKs come from `media_timers`
//! with SRTP keys of our own (the RTCP then has no ICE pair to leave by).

use std::time::{Duration, Instant};

use crate::jsep::SdpType;
use natter_rtp::{ExtensionForm, Mid, RepairedRtpStreamId, RtpHeader, RtpStreamId, RtpWriter};
use natter_srtp::{Config, ProtectionProfile, SrtpContext};

use super::super::{Description, MediaFrame, PeerConfig, PeerConnection, PeerEvent, ReceiverStats};
use crate::jsep::TransceiverId;

/// Chromium's offer: video `mid:1` with `a=rid:q/h/f send`,
/// `a=simulcast:send q;h;f`, VP8 96 with RTX 97, mid id 4, rid id 10,
/// repaired-rid id 11.
pub(super) const OFFER: &str = include_str!("../../../../natter-sdp/tests/fixtures/chromium_offer.sdp");
pub(super) const MID_ID: u8 = 4;
pub(super) const RID_ID: u8 = 10;
const REPAIRED_RID_ID: u8 = 11;
pub(super) const VP8: u8 = 96;
const RTX: u8 = 97;

/// A layer the test sends.
pub(super) struct Sent {
    pub(super) rid: &'static str,
    pub(super) ssrc: u32,
    rtx_ssrc: u32,
    pub(super) first_seq: u16,
    /// The keyframe's picture size.
    pub(super) size: (u16, u16),
    /// The length of its inter frames.
    len: usize,
}

const fn sent(rid: &'static str, ssrc: u32, first_seq: u16, size: (u16, u16), len: usize) -> Sent {
    Sent {
        rid,
        ssrc,
        rtx_ssrc: ssrc + 1,
        first_seq,
        size,
        len,
    }
}

pub(super) const LAYERS: [Sent; 3] = [
    sent("q", 0x1111, 100, (320, 180), 150),
    sent("h", 0x2222, 65_530, (640, 360), 400),
    sent("f", 0x3333, 9_000, (1280, 720), 900),
];
const FRAMES: u16 = 8;
/// The frame layer `h` loses until RTX brings it.
const LOST: u16 = 3;

/// A VP8 frame (RFC 6386 §9.1) of `len` bytes: a keyframe of `size`, or
/// an inter frame.
fn vp8_frame(keyframe: bool, size: (u16, u16), len: usize) -> Vec<u8> {
    let first_partition = 10u32;
    let tag = u32::from(!keyframe) | (1 << 4) | (first_partition << 5);
    let mut frame = tag.to_le_bytes()[..3].to_vec();
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&size.0.to_le_bytes());
        frame.extend_from_slice(&size.1.to_le_bytes());
    }
    frame.extend((frame.len()..len).map(|i| i as u8));
    frame
}

/// Frame `n` of a layer as one RTP packet: VP8 descriptor with S set
/// (RFC 7741 §4.2), the marker, and Chromium's mid and rid extensions.
fn layer_packet(layer: usize, n: u16) -> Vec<u8> {
    let l = &LAYERS[layer];
    layer_frame(layer, n, n == 0, if n == 0 { l.len + 100 } else { l.len })
}

/// Frame `n` of a layer, a keyframe or not, of `len` bytes, as one RTP
/// packet.
pub(super) fn layer_frame(layer: usize, n: u16, keyframe: bool, len: usize) -> Vec<u8> {
    let l = &LAYERS[layer];
    let mut payload = vec![0x10];
    payload.extend(vp8_frame(keyframe, l.size, len));
    rtp(
        VP8,
        l.first_seq.wrapping_add(n),
        u32::from(n) * 3000,
        l.ssrc,
        (RID_ID, l.rid),
        &payload,
    )
}

pub(super) fn rtp(pt: u8, seq: u16, timestamp: u32, ssrc: u32, rid: (u8, &str), payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader {
        marker: true,
        payload_type: pt,
        sequence_number: seq,
        timestamp,
        ssrc,
        csrcs: &[],
    };
    let mut buf = vec![0; 1500];
    let mut writer = RtpWriter::new(&mut buf, &header).unwrap();
    writer.start_extensions(ExtensionForm::OneByte).unwrap();
    writer.add(MID_ID, &Mid("1")).unwrap();
    if rid.0 == RID_ID {
        writer.add(RID_ID, &RtpStreamId(rid.1)).unwrap();
    } else {
        writer.add(rid.0, &RepairedRtpStreamId(rid.1)).unwrap();
    }
    let len = writer.finish(payload, 0).unwrap();
    buf.truncate(len);
    buf
}

/// A connection that answered `OFFER`, with SRTP keys, and the id of
/// its video transceiver.
fn answered(now: Instant) -> (PeerConnection, TransceiverId) {
    let config = PeerConfig {
        seed: Some(18),
        ..PeerConfig::default()
    };
    answered_with(now, config, OFFER)
}

/// A connection made with `config` that answered `offer` (Chromium's
/// simulcast offer, or one like it), with SRTP keys, and the id of its
/// video transceiver.
pub(super) fn answered_with(now: Instant, config: PeerConfig, offer: &str) -> (PeerConnection, TransceiverId) {
    let mut pc = PeerConnection::new(config, now).unwrap();
    let offer = Description {
        kind: SdpType::Offer,
        sdp: offer.to_owned(),
    };
    pc.set_remote_description(&offer).unwrap();
    let answer = pc.create_answer().unwrap();
    assert!(answer.sdp.contains("a=simulcast:recv q;h;f\r\n"), "{}", answer.sdp);
    pc.set_local_description(&answer).unwrap();
    pc.start_srtp(srtp_context(), srtp_context());
    let video = pc.transceivers().iter().find(|t| t.mid() == Some("1")).unwrap().id();
    (pc, video)
}

/// Fixed keys, the same both ways.
fn srtp_context() -> SrtpContext {
    let profile = ProtectionProfile::Aes128CmHmacSha1_80;
    SrtpContext::new(profile, &[7; 16], &[9; 14], Config::default()).unwrap()
}

pub(super) fn layer_stats(pc: &PeerConnection, id: TransceiverId) -> Vec<ReceiverStats> {
    let stats = pc.media.receiver_stats();
    stats.into_iter().filter(|(t, _)| *t == id).map(|(_, s)| s).collect()
}

fn frames(pc: &mut PeerConnection) -> Vec<MediaFrame> {
    std::iter::from_fn(|| pc.poll_event())
        .filter_map(|e| match e {
            PeerEvent::MediaFrame(f) => Some(f),
            _ => None,
        })
        .collect()
}

/// Three interleaved layers come out as three frame sequences with
/// their rids and sizes; one layer's loss is NACKed and repaired by RTX
/// found by its repaired-rid, and stays that layer's alone.
#[test]
fn three_interleaved_layers_are_three_streams_repaired_apart() {
    let mut now = Instant::now();
    let (mut pc, video) = answered(now);
    let mut out = Vec::new();
    for n in 0..FRAMES {
        for layer in 0..LAYERS.len() {
            if (layer, n) != (1, LOST) {
                pc.receive_rtp(now, &layer_packet(layer, n));
            }
        }
        now += Duration::from_millis(5);
        pc.media_timers(now);
        out.extend(frames(&mut pc));
    }

    // Before the repair: only `h` lost a packet, NACKed it, and holds
    // its frames after the gap back.
    let stats = layer_stats(&pc, video);
    let rids: Vec<Option<&str>> = stats.iter().map(|s| s.rid.as_deref()).collect();
    assert_eq!(rids, [Some("q"), Some("h"), Some("f")]);
    let lost: Vec<i64> = stats.iter().map(|s| s.packets_lost).collect();
    assert_eq!(lost, [0, 1, 0]);
    let nacks: Vec<bool> = stats.iter().map(|s| s.nack_count > 0).collect();
    assert_eq!(nacks, [false, true, false]);
    let count = |out: &[MediaFrame], rid: &str| out.iter().filter(|f| f.rid.as_deref() == Some(rid)).count();
    assert_eq!(count(&out, "q"), usize::from(FRAMES));
    assert_eq!(count(&out, "h"), usize::from(LOST));
    assert_eq!(count(&out, "f"), usize::from(FRAMES));

    // RTX on a new SSRC, named only by its repaired-rid (RFC 8852 §3.2).
    let Sent {
        rtx_ssrc, first_seq, ..
    } = LAYERS[1];
    let original = layer_packet(1, LOST);
    let original = natter_rtp::RtpPacket::parse(&original).unwrap();
    let mut payload = first_seq.wrapping_add(LOST).to_be_bytes().to_vec();
    payload.extend_from_slice(original.payload());
    let repair = rtp(RTX, 1, original.timestamp(), rtx_ssrc, (REPAIRED_RID_ID, "h"), &payload);
    pc.receive_rtp(now, &repair);
    out.extend(frames(&mut pc));

    for Sent {
        rid, ssrc, size, len, ..
    } in LAYERS
    {
        let layer: Vec<&MediaFrame> = out.iter().filter(|f| f.rid.as_deref() == Some(rid)).collect();
        assert_eq!(layer.len(), usize::from(FRAMES), "{rid}");
        let timestamps: Vec<u32> = layer.iter().map(|f| f.timestamp).collect();
        let expected: Vec<u32> = (0..u32::from(FRAMES)).map(|n| n * 3000).collect();
        assert_eq!(timestamps, expected, "{rid}");
        assert!(layer.iter().all(|f| f.transceiver == video));
        assert_eq!(
            (layer[0].keyframe, layer[0].size),
            (true, Some((u32::from(size.0), u32::from(size.1))))
        );
        assert!(layer[1..].iter().all(|f| !f.keyframe && f.data.len() == len), "{rid}");
        let stats = layer_stats(&pc, video)
            .into_iter()
            .find(|s| s.rid.as_deref() == Some(rid))
            .unwrap();
        assert_eq!(stats.ssrc, Some(ssrc));
        assert_eq!(stats.frames_received, u64::from(FRAMES), "{rid}");
    }
    let stats = layer_stats(&pc, video);
    let lost: Vec<i64> = stats.iter().map(|s| s.packets_lost).collect();
    assert_eq!(lost, [0, 0, 0]);
    let repaired: Vec<u64> = stats.iter().map(|s| s.retransmitted_packets_received).collect();
    assert_eq!(repaired, [0, 1, 0]);
    let received: Vec<u64> = stats.iter().map(|s| s.packets_received).collect();
    assert_eq!(received, [8, 8, 8]);
}

/// A packet whose rid the receiver did not accept is dropped and counted;
/// a keyframe request goes to every layer's SSRC.
#[test]
fn unknown_rid_is_dropped_and_keyframes_are_asked_per_layer() {
    let now = Instant::now();
    let (mut pc, video) = answered(now);
    for layer in 0..LAYERS.len() {
        pc.receive_rtp(now, &layer_packet(layer, 0));
    }
    let stray = rtp(VP8, 1, 0, 0x4444, (RID_ID, "x"), &[0x10, 0, 0, 0]);
    pc.receive_rtp(now, &stray);
    assert_eq!(pc.media.counters.unknown_rid, 1);
    assert_eq!(pc.media.counters.rtp_dropped, 0);
    assert!(layer_stats(&pc, video).iter().all(|s| s.ssrc != Some(0x4444)));

    pc.request_keyframe(video).unwrap();
    let plis: Vec<u64> = layer_stats(&pc, video).iter().map(|s| s.pli_count).collect();
    assert_eq!(plis, [1, 1, 1]);
}

/// A NACK (RFC 4585 §6.2.1) for packets the send history no longer
/// holds, or never held, cannot be repaired (RFC 4588 §4): each such
/// number is counted in `repairs_missed` and nothing is resent; a NACK
/// for a packet still kept is not counted there.
#[test]
fn a_nack_for_packets_older_than_the_send_history_is_counted_missed() {
    use natter_rtp::rtcp::{NackBuilder, RtcpEncode};

    use super::super::MediaKind;
    use crate::media::send::HISTORY;

    let now = Instant::now();
    let config = PeerConfig {
        seed: Some(18),
        ..PeerConfig::default()
    };
    let mut pc = PeerConnection::new(config, now).unwrap();
    let video = pc.add_track(MediaKind::Video).unwrap();
    let offer = pc.create_offer().unwrap();
    pc.set_local_description(&offer).unwrap();
    let mut answerer = PeerConnection::new(PeerConfig::default(), now).unwrap();
    answerer.set_remote_description(&offer).unwrap();
    let answer = answerer.create_answer().unwrap();
    answerer.set_local_description(&answer).unwrap();
    pc.set_remote_description(&answer).unwrap();
    pc.start_srtp(srtp_context(), srtp_context());

    // One packet a frame; no ICE pair, so they stay in the history only.
    const OLD: u16 = 8;
    let frames = HISTORY as u16 + OLD;
    let frame = vp8_frame(false, (0, 0), 40);
    pc.send_frame(video, Duration::ZERO, &frame).unwrap();
    let stream = pc.media.send_stream((video, 0)).unwrap();
    let ssrc = stream.params().ssrc;
    // The stream's first number is random: find the one packet kept.
    let first = (0..=u16::MAX).find(|&s| stream.packet(s).is_some()).unwrap();
    for n in 1..frames {
        let media_time = Duration::from_millis(u64::from(n) * 10);
        pc.send_frame(video, media_time, &frame).unwrap();
    }
    let newest = first.wrapping_add(frames - 1);
    let stream = pc.media.send_stream((video, 0)).unwrap();
    assert!(stream.packet(first.wrapping_add(OLD - 1)).is_none(), "left the history");
    assert!(stream.packet(first.wrapping_add(OLD)).is_some(), "still kept");

    let nack = |lost: &[u16]| {
        let builder = NackBuilder::from_lost(0x5eed, ssrc, lost);
        let mut buf = vec![0; builder.encoded_len()];
        let len = builder.encode(&mut buf).unwrap();
        buf.truncate(len);
        buf
    };
    let resent = |pc: &PeerConnection| -> u64 {
        (pc.media.sender_stats().iter())
            .map(|(_, s)| s.counters.retransmitted_packets_sent)
            .sum()
    };
    // The oldest OLD packets, and one never sent (the number after the
    // newest).
    let mut lost: Vec<u16> = (0..OLD).map(|i| first.wrapping_add(i)).collect();
    lost.push(newest.wrapping_add(1));
    pc.receive_rtcp(now, &nack(&lost));
    assert_eq!(pc.media.counters.repairs_missed, u64::from(OLD) + 1);
    assert_eq!(resent(&pc), 0, "nothing to resend");
    assert_eq!(pc.media.counters.rtcp_dropped, 0);

    // The newest is kept: not missed, but queued for its repair, resent,
    // or held, as the pacer and the rate allow.
    let held = pc.media.counters.repairs_held;
    pc.receive_rtcp(now, &nack(&[newest]));
    assert_eq!(pc.media.counters.repairs_missed, u64::from(OLD) + 1);
    let stream = pc.media.send_stream((video, 0)).unwrap();
    let queued = !stream.repair_due(newest, now, Duration::ZERO);
    let answered = queued || resent(&pc) == 1 || pc.media.counters.repairs_held == held + 1;
    assert!(answered, "the kept packet's NACK was answered");
}
