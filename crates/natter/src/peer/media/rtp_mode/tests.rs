//! RTP mode on a connection that answered Chromium's simulcast offer,
//! fed unprotected RTP below SRTP as `peer/media/tests.rs` does: what
//! `poll_rtp` lends, layer switching at keyframes found by `inspect()`,
//! the extensions an SFU reads, and what is dropped.

use std::time::{Duration, Instant};

use natter_rtp::payload::{Layer, RtpPayload, URI_DEPENDENCY_DESCRIPTOR};
use natter_rtp::{AudioLevel, ExtensionForm, RtpHeader, RtpPacket, RtpWriter};
use natter_sdp::Extmap;

use super::super::tests::{answered_with, layer_frame, layer_stats, rtp, LAYERS, MID_ID, OFFER, RID_ID, VP8};
use super::ReceivedRtp;
use crate::jsep::header_extension::default_video_extensions;
use crate::media::{Depacketizer, Format};
use crate::peer::{PeerConfig, PeerConnection};

const OPUS: u8 = 111;
const AV1: u8 = 45;
const VP8_RTX: u8 = 97;
const AUDIO_LEVEL_ID: u8 = 1;
const DESCRIPTOR_ID: u8 = 9;
const REPAIRED_RID_ID: u8 = 11;
/// Every layer sends a keyframe every this many frames.
const KEY_INTERVAL: u16 = 10;

/// An RTP packet as SRTP gives it back, at `now`.
fn receive(pc: &mut PeerConnection, now: Instant, data: &[u8]) {
    pc.media.rtp_in = None;
    pc.media.recv = data.to_vec();
    pc.receive_unprotected(now, false);
}

fn rtp_mode() -> PeerConfig {
    PeerConfig {
        seed: Some(18),
        rtp_mode: true,
        ..PeerConfig::default()
    }
}

/// An RTP packet with one-byte extension elements `extensions`.
fn packet(pt: u8, seq: u16, ssrc: u32, extensions: &[(u8, &[u8])], payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader {
        marker: true,
        payload_type: pt,
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc,
        csrcs: &[],
    };
    let mut buf = vec![0; 1500];
    let mut writer = RtpWriter::new(&mut buf, &header).unwrap();
    writer.start_extensions(ExtensionForm::OneByte).unwrap();
    for (id, value) in extensions {
        writer.add_extension(*id, value).unwrap();
    }
    let len = writer.finish(payload, 0).unwrap();
    buf.truncate(len);
    buf
}

/// Frame `n` of a layer as one packet, a keyframe every
/// [`KEY_INTERVAL`] frames.
fn frame_packet(layer: usize, n: u16) -> Vec<u8> {
    let keyframe = n.is_multiple_of(KEY_INTERVAL);
    layer_frame(layer, n, keyframe, 120 + 40 * layer + usize::from(n))
}

/// What an SFU does for one subscriber of a simulcast track (LiveKit's
/// forwarder and munger in one): it forwards one layer, moves to the
/// target layer at that layer's next keyframe, and rewrites sequence
/// numbers and timestamps into one continuous stream.
#[derive(Default)]
struct Switcher {
    target: &'static str,
    current: Option<&'static str>,
    /// Input extended sequence number and timestamp at the switch, and
    /// the output's there.
    seq_base: (u64, u16),
    ts_base: (u32, u32),
    last: Option<(u16, u32)>,
    out: Vec<Vec<u8>>,
    /// The layer and input frame of each packet of `out`.
    forwarded: Vec<(&'static str, u32)>,
    /// Each layer forwarded and the input frame it started at.
    switches: Vec<(&'static str, u32)>,
}

impl Switcher {
    fn on_packet(&mut self, p: &ReceivedRtp<'_>) {
        let rid = LAYERS.iter().map(|l| l.rid).find(|r| Some(*r) == p.rid).unwrap();
        let info = p.inspect().expect("video").expect("parses");
        if rid == self.target && self.current != Some(rid) && info.starts_keyframe {
            let (seq, ts) = self
                .last
                .map_or((0, 0), |(s, t)| (s.wrapping_add(1), t.wrapping_add(3000)));
            self.seq_base = (p.extended_sequence_number, seq);
            self.ts_base = (p.timestamp(), ts);
            self.current = Some(rid);
            self.switches.push((rid, p.timestamp() / 3000));
        }
        if self.current != Some(rid) || p.extended_sequence_number < self.seq_base.0 {
            return;
        }
        let seq = (self.seq_base.1).wrapping_add((p.extended_sequence_number - self.seq_base.0) as u16);
        let timestamp = (self.ts_base.1).wrapping_add(p.timestamp().wrapping_sub(self.ts_base.0));
        let header = RtpHeader {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence_number: seq,
            timestamp,
            ssrc: 0xF0,
            csrcs: &[],
        };
        let mut buf = vec![0; 12 + p.payload().len()];
        let len = RtpWriter::new(&mut buf, &header)
            .unwrap()
            .finish(p.payload(), 0)
            .unwrap();
        buf.truncate(len);
        self.out.push(buf);
        self.forwarded.push((rid, p.timestamp() / 3000));
        self.last = Some((seq, timestamp));
    }
}

/// Three VP8 layers; the subscriber's target changes five times between
/// keyframes, each switch happens at the target's next keyframe, and
/// the forwarded stream is one that a decoder takes whole: continuous
/// numbers, every frame complete, a keyframe of the new size at each
/// switch. Keyframes are asked per layer, and only when asked.
#[test]
fn a_forwarder_switches_simulcast_layers_at_keyframes() {
    let mut now = Instant::now();
    let (mut pc, video) = answered_with(now, rtp_mode(), OFFER);
    let mut switcher = Switcher {
        target: "q",
        ..Switcher::default()
    };
    let plan = [(13, "h"), (27, "f"), (43, "h"), (55, "q"), (68, "f")];
    for n in 0..80 {
        if let Some(&(_, target)) = plan.iter().find(|(at, _)| *at == n) {
            switcher.target = target;
            pc.request_layer_keyframe(video, target).unwrap();
        }
        for (layer, sent) in LAYERS.iter().enumerate() {
            if (layer, n) == (2, 5) {
                continue; // lost, and never repaired
            }
            receive(&mut pc, now, &frame_packet(layer, n));
            let p = pc.poll_rtp().expect("each packet is lent");
            assert_eq!((p.transceiver, p.mid, p.rid), (video, "1", Some(sent.rid)));
            assert_eq!((p.format, p.retransmission), (Format::Vp8, false));
            let first = u64::from(sent.first_seq);
            assert_eq!(p.extended_sequence_number, first + u64::from(n));
            switcher.on_packet(&p);
            assert!(pc.poll_rtp().is_none(), "lent once");
        }
        now += Duration::from_millis(33);
        pc.media_timers(now);
    }

    let expected = [("q", 0), ("h", 20), ("f", 30), ("h", 50), ("q", 60), ("f", 70)];
    assert_eq!(switcher.switches, expected);
    let size = |rid| {
        let l = LAYERS.iter().find(|l| l.rid == rid).unwrap();
        (u32::from(l.size.0), u32::from(l.size.1))
    };
    // The layer forwarded at each frame time: the latest switch's, and at
    // a switch also the old layer's frame if it came first.
    let layer_at = |n: u32| expected.iter().rev().find(|(_, at)| *at <= n).unwrap().0;
    let mut depacketizer = Depacketizer::new(Format::Vp8);
    let mut previous: Option<(&str, u32)> = None;
    for (i, (data, &(rid, n))) in switcher.out.iter().zip(&switcher.forwarded).enumerate() {
        let packet = RtpPacket::parse(data).unwrap();
        assert_eq!(packet.sequence_number(), i as u16, "continuous numbers");
        let out = depacketizer.push(RtpPayload::from(&packet)).unwrap();
        assert_eq!((out.frames_dropped, out.keyframe_needed), (0, false));
        let frame = out.frame.expect("every packet is a whole frame");
        let switched = previous.is_none_or(|(r, _)| r != rid);
        if switched {
            assert_eq!((frame.keyframe, frame.size), (true, Some(size(rid))), "{rid} at {n}");
        }
        let at_switch = expected.iter().any(|(_, at)| *at == n);
        assert!(rid == layer_at(n) || (at_switch && previous.is_some_and(|(r, _)| r == rid)));
        assert!(previous.is_none_or(|(_, before)| before <= n), "frame times in order");
        previous = Some((rid, n));
    }
    let mut times: Vec<u32> = switcher.forwarded.iter().map(|(_, n)| *n).collect();
    times.dedup();
    assert_eq!(times, (0..80).collect::<Vec<_>>(), "every frame time forwarded");

    let stats = layer_stats(&pc, video);
    let plis: Vec<u64> = stats.iter().map(|s| s.pli_count).collect();
    assert_eq!(plis, [1, 2, 2], "PLIs only as asked, per layer");
    assert!(stats[2].nack_count > 0, "the loss on f was NACKed");
    assert_eq!(stats[2].packets_lost, 1);
    assert!(stats.iter().all(|s| s.frames_received == 0), "no frames in RTP mode");
}

/// Chromium's offer with the dependency descriptor extension on video,
/// which our configuration accepts.
fn with_dependency_descriptor() -> (PeerConfig, String) {
    let mut extensions = default_video_extensions(true);
    extensions.push(Extmap::new(u16::from(DESCRIPTOR_ID), URI_DEPENDENCY_DESCRIPTOR));
    let config = PeerConfig {
        video_extensions: Some(extensions),
        ..rtp_mode()
    };
    let eol = if OFFER.contains("\r\n") { "\r\n" } else { "\n" };
    let rid_line = format!("a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id{eol}");
    let descriptor_line = format!("a=extmap:{DESCRIPTOR_ID} {URI_DEPENDENCY_DESCRIPTOR}{eol}");
    let offer = OFFER.replace(&rid_line, &format!("{rid_line}{descriptor_line}"));
    assert_ne!(offer, OFFER);
    (config, offer)
}

/// A template dependency structure with S0T0 and S0T1 (AV1 RTP A.8.3),
/// attached to a descriptor of template 0, frame 7.
const DESCRIPTOR_WITH_STRUCTURE: [u8; 8] = [0xC0, 0x00, 0x07, 0x80, 0x00, 0x7B, 0x40, 0x00];
/// A later descriptor: template 1, frame 8.
const LATER_DESCRIPTOR: [u8; 3] = [0b1100_0001, 0, 8];
/// An AV1 packet: one OBU element, a frame without extension.
const AV1_PAYLOAD: [u8; 3] = [0b0001_0000, 0b0011_0000, 0x10];

/// The extensions an SFU reads: the audio level with its voice flag on
/// audio, the raw dependency descriptor on AV1, and the layers
/// `inspect()` finds through the structure the layer kept.
#[test]
fn the_view_reads_audio_level_and_dependency_descriptor() {
    let now = Instant::now();
    let (config, offer) = with_dependency_descriptor();
    let (mut pc, video) = answered_with(now, config, &offer);
    let audio = pc.transceivers().iter().find(|t| t.mid() == Some("0")).unwrap().id();

    let level = [0x80 | 42];
    let extensions = [(MID_ID, &b"0"[..]), (AUDIO_LEVEL_ID, &level[..])];
    receive(&mut pc, now, &packet(OPUS, 1, 0x5555, &extensions, &[1, 2, 3]));
    let p = pc.poll_rtp().unwrap();
    assert_eq!(
        (p.transceiver, p.mid, p.rid, p.format),
        (audio, "0", None, Format::Opus)
    );
    let heard = AudioLevel {
        voice_activity: true,
        level: 42,
    };
    assert_eq!(p.audio_level(), Some(heard));
    assert_eq!((p.dependency_descriptor(), p.payload()), (None, &[1, 2, 3][..]));
    assert!(p.inspect().is_none(), "audio has no layers");
    assert_eq!(p.header().len(), p.packet().header_len());

    let q = &LAYERS[0];
    let rid = (RID_ID, q.rid.as_bytes());
    let mid = (MID_ID, &b"1"[..]);
    let key = packet(
        AV1,
        1,
        q.ssrc,
        &[mid, rid, (DESCRIPTOR_ID, &DESCRIPTOR_WITH_STRUCTURE[..])],
        &AV1_PAYLOAD,
    );
    receive(&mut pc, now, &key);
    let p = pc.poll_rtp().unwrap();
    assert_eq!((p.transceiver, p.rid, p.format), (video, Some("q"), Format::Av1));
    assert_eq!(p.dependency_descriptor(), Some(&DESCRIPTOR_WITH_STRUCTURE[..]));
    assert_eq!(p.audio_level(), None);
    let info = p.inspect().unwrap().unwrap();
    assert!(info.starts_keyframe);
    let base = Layer {
        spatial_id: 0,
        temporal_id: 0,
    };
    assert_eq!(info.layer, Some(base));

    let later = packet(
        AV1,
        2,
        q.ssrc,
        &[mid, rid, (DESCRIPTOR_ID, &LATER_DESCRIPTOR[..])],
        &AV1_PAYLOAD,
    );
    receive(&mut pc, now, &later);
    let info = pc.poll_rtp().unwrap().inspect().unwrap().unwrap();
    assert!(!info.starts_keyframe);
    let upper = Layer {
        spatial_id: 0,
        temporal_id: 1,
    };
    assert_eq!(info.layer, Some(upper), "from the structure the layer kept");
}

/// RTX comes out unwrapped (RFC 4588 §4) with its extensions; a copy of
/// a packet that came is not lent again; padding is, empty; RTP for no
/// transceiver and malformed RTP are dropped and counted.
#[test]
fn repairs_are_unwrapped_and_what_is_not_media_is_dropped() {
    let now = Instant::now();
    let (mut pc, video) = answered_with(now, rtp_mode(), OFFER);
    let h = &LAYERS[1];
    receive(&mut pc, now, &frame_packet(1, 0));
    assert!(pc.poll_rtp().is_some());
    // Frame 1 is lost; frame 2 comes, then frame 1 as RTX.
    receive(&mut pc, now, &frame_packet(1, 2));
    assert!(pc.poll_rtp().is_some());
    let original = frame_packet(1, 1);
    let original = RtpPacket::parse(&original).unwrap();
    let mut payload = original.sequence_number().to_be_bytes().to_vec();
    payload.extend_from_slice(original.payload());
    let rtx_ssrc = h.ssrc + 1;
    let repair = rtp(
        VP8_RTX,
        500,
        original.timestamp(),
        rtx_ssrc,
        (REPAIRED_RID_ID, h.rid),
        &payload,
    );
    receive(&mut pc, now, &repair);
    let p = pc.poll_rtp().expect("the repair is lent");
    assert_eq!((p.transceiver, p.rid, p.retransmission), (video, Some("h"), true));
    assert_eq!((p.ssrc(), p.payload_type()), (h.ssrc, VP8));
    assert_eq!(p.sequence_number(), original.sequence_number());
    assert_eq!(p.extended_sequence_number, u64::from(h.first_seq) + 1);
    assert_eq!((p.timestamp(), p.payload()), (original.timestamp(), original.payload()));
    assert_eq!(p.packet().extension(MID_ID), Some(&b"1"[..]), "extensions kept");
    let rid = Some(h.rid.as_bytes());
    assert_eq!(p.packet().extension(RID_ID), rid, "its RID named as the original's");
    assert_eq!(p.packet().extension(REPAIRED_RID_ID), None);

    // The same repair again, and the media packet again: duplicates.
    receive(&mut pc, now, &repair);
    assert!(pc.poll_rtp().is_none());
    receive(&mut pc, now, &frame_packet(1, 2));
    assert!(pc.poll_rtp().is_none());
    // A padding-only packet takes a sequence number: lent, empty.
    let padding = rtp(VP8, h.first_seq.wrapping_add(3), 6000, h.ssrc, (RID_ID, h.rid), &[]);
    receive(&mut pc, now, &padding);
    assert_eq!(pc.poll_rtp().map(|p| p.payload().len()), Some(0));

    let dropped = pc.media.counters.rtp_dropped;
    // No mid, an SSRC nobody signaled, a payload type nobody receives.
    receive(&mut pc, now, &packet(0, 1, 0x7777, &[], &[1]));
    assert!(pc.poll_rtp().is_none());
    for malformed in [
        &[0x80, 96][..],
        &[0x40; 20],
        &[0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xBE, 0xDE, 0, 9],
    ] {
        receive(&mut pc, now, malformed);
        assert!(pc.poll_rtp().is_none());
    }
    assert_eq!(pc.media.counters.rtp_dropped, dropped + 4);
}

/// The view lends the packet until the next datagram: a later RTCP
/// datagram, or one that fails SRTP, takes it away.
#[test]
fn the_packet_is_lent_until_the_next_datagram() {
    let now = Instant::now();
    let (mut pc, _) = answered_with(now, rtp_mode(), OFFER);
    pc.receive_media(now, &[0x80, 200, 0, 1, 0, 0, 0, 1]);
    assert!(pc.poll_rtp().is_none());
    receive(&mut pc, now, &frame_packet(0, 0));
    pc.receive_media(now, &[0x80; 30]);
    assert!(pc.poll_rtp().is_none(), "gone with the next datagram");
}

proptest::proptest! {
    /// Whatever arrives after SRTP, well formed or not, on a receiver's
    /// SSRCs or not, RTP mode never panics; what it lends is a packet of
    /// a receiving transceiver whose accessors and `inspect()` answer.
    #[test]
    fn arbitrary_rtp_never_panics(
        packets in proptest::collection::vec(
            (0usize..4, proptest::num::u16::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..64)),
            1..40,
        ),
    ) {
        let now = Instant::now();
        let (config, offer) = with_dependency_descriptor();
        let (mut pc, _) = answered_with(now, config, &offer);
        for (kind, seq, bytes) in packets {
            if kind == 2 && bytes.is_empty() {
                continue; // an empty extension element cannot be written
            }
            let data = match kind {
                // Garbage.
                0 => bytes.clone(),
                // A layer's SSRC and RID, any payload.
                1 => rtp(VP8, seq, 0, LAYERS[1].ssrc, (RID_ID, LAYERS[1].rid), &bytes),
                // AV1 with a descriptor of any bytes.
                2 => {
                    let q = &LAYERS[0];
                    let extensions = [(MID_ID, &b"1"[..]), (RID_ID, q.rid.as_bytes()), (DESCRIPTOR_ID, &bytes[..bytes.len().min(16)])];
                    packet(AV1, seq, q.ssrc, &extensions, &bytes)
                }
                // RTX of any length for layer h.
                _ => rtp(VP8_RTX, seq, 0, LAYERS[1].ssrc + 1, (REPAIRED_RID_ID, LAYERS[1].rid), &bytes),
            };
            receive(&mut pc, now, &data);
            if let Some(p) = pc.poll_rtp() {
                // Garbage may parse as audio, found by payload type.
                proptest::prop_assert!(["0", "1"].contains(&p.mid));
                let _ = (p.inspect(), p.audio_level(), p.dependency_descriptor(), p.header(), p.payload());
            }
        }
    }
}
