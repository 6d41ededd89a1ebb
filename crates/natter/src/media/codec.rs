//! The payload formats natter sends and receives, and one depacketizer
//! type over natter-rtp's five (RFC 7741 VP8, RFC 9628 VP9, RFC 6184
//! H.264, the AV1 RTP Specification v1.0.0, RFC 7587 Opus).

use natter_rtp::payload::{
    Av1Depacketizer, Depacketized, H264Depacketizer, OpusDepacketizer, PayloadError, RtpPayload, Vp8Depacketizer,
    Vp8PictureId, Vp8PictureInfo, Vp9Depacketizer,
};

/// A media format natter can packetize and reassemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Opus,
    Vp8,
    /// VP9 profile 0 (RFC 9628 §6: `profile-id=0`).
    Vp9,
    H264,
    /// AV1 Main profile (AV1 RTP Specification §7.2: `profile=0`).
    Av1,
}

impl Format {
    /// The format of an `a=rtpmap` encoding name; `None` for RTX, FEC
    /// and formats natter does not carry.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(Format::Opus),
            "vp8" => Some(Format::Vp8),
            "vp9" => Some(Format::Vp9),
            "h264" => Some(Format::H264),
            "av1" => Some(Format::Av1),
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        self != Format::Opus
    }
}

/// A frame put back together, lent until the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssembledFrame<'a> {
    /// VP8 and VP9 as the encoder wrote them, H.264 as an Annex B
    /// access unit, AV1 as a temporal unit in the low overhead bitstream
    /// format (AV1 §5.2, as IVF holds it), one Opus packet.
    pub data: &'a [u8],
    pub timestamp: u32,
    /// A VP8 or VP9 keyframe, an H.264 IDR picture, an AV1 temporal unit
    /// with a sequence header and a key frame; always true for Opus.
    pub keyframe: bool,
    /// The picture size a keyframe (VP8, VP9), the VP9 scalability
    /// structure, the SPS (H.264) or the AV1 sequence header (its
    /// maximum frame size, AV1 §5.5.1) carried.
    pub size: Option<(u32, u32)>,
}

/// What one packet gave: see natter-rtp's `Depacketized`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Assembled<'a> {
    pub frame: Option<AssembledFrame<'a>>,
    pub frames_dropped: u32,
    pub keyframe_needed: bool,
}

/// The depacketizer of one received stream.
#[derive(Clone, Debug)]
pub enum Depacketizer {
    Opus(OpusDepacketizer),
    Vp8(Vp8Depacketizer),
    Vp9(Vp9Depacketizer),
    H264(H264Depacketizer),
    Av1(Av1Depacketizer),
}

impl Depacketizer {
    pub fn new(format: Format) -> Self {
        match format {
            Format::Opus => Depacketizer::Opus(OpusDepacketizer::new()),
            Format::Vp8 => Depacketizer::Vp8(Vp8Depacketizer::new()),
            Format::Vp9 => Depacketizer::Vp9(Vp9Depacketizer::new()),
            Format::H264 => Depacketizer::H264(H264Depacketizer::new()),
            Format::Av1 => Depacketizer::Av1(Av1Depacketizer::new()),
        }
    }

    /// Takes the stream's next packet in sequence order.
    pub fn push<'a>(&'a mut self, packet: RtpPayload<'a>) -> Result<Assembled<'a>, PayloadError> {
        Ok(match self {
            Depacketizer::Opus(d) => {
                let out = d.push(packet);
                Assembled {
                    frame: out.frame.map(|f| AssembledFrame {
                        data: f.data,
                        timestamp: f.timestamp,
                        keyframe: true,
                        size: None,
                    }),
                    frames_dropped: out.frames_dropped,
                    keyframe_needed: false,
                }
            }
            Depacketizer::Vp8(d) => assembled(d.push(packet)?, |f| AssembledFrame {
                data: f.data,
                timestamp: f.timestamp,
                keyframe: f.header.keyframe,
                size: f.header.dimensions.map(|d| (u32::from(d.width), u32::from(d.height))),
            }),
            Depacketizer::Vp9(d) => assembled(d.push(packet)?, |f| AssembledFrame {
                data: f.data,
                timestamp: f.timestamp,
                keyframe: f.header.keyframe,
                size: f.size(),
            }),
            Depacketizer::H264(d) => assembled(d.push(packet)?, |f| AssembledFrame {
                data: f.data,
                timestamp: f.timestamp,
                keyframe: f.idr,
                size: f.sps.map(|s| (s.width, s.height)),
            }),
            Depacketizer::Av1(d) => assembled(d.push(packet)?, |f| AssembledFrame {
                data: f.data,
                timestamp: f.timestamp,
                keyframe: f.keyframe,
                size: f.sequence_header.map(|s| (s.max_frame_width, s.max_frame_height)),
            }),
        })
    }

    /// Whether the decoder still waits for a keyframe.
    pub fn awaiting_keyframe(&self) -> bool {
        match self {
            Depacketizer::Opus(_) => false,
            Depacketizer::Vp8(d) => d.awaiting_keyframe(),
            Depacketizer::Vp9(d) => d.awaiting_keyframe(),
            Depacketizer::H264(d) => d.awaiting_keyframe(),
            Depacketizer::Av1(d) => d.awaiting_keyframe(),
        }
    }
}

/// A video depacketizer's output with its frame in natter's terms.
fn assembled<'a, F>(out: Depacketized<F>, frame: impl FnOnce(F) -> AssembledFrame<'a>) -> Assembled<'a> {
    Assembled {
        frame: out.frame.map(frame),
        frames_dropped: out.frames_dropped,
        keyframe_needed: out.keyframe_needed,
    }
}

/// The VP8 descriptor of the next frame a sender writes: a running
/// 15-bit PictureID (RFC 7741 §4.2), which lets a receiver tell which
/// frames a loss took.
pub fn vp8_picture(picture_id: u16) -> Vp8PictureInfo {
    Vp8PictureInfo {
        picture_id: Some(Vp8PictureId::Long(picture_id & 0x7FFF)),
        ..Vp8PictureInfo::default()
    }
}
