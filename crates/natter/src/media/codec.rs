//! The payload formats natter sends and receives, and one depacketizer
//! type over natter-rtp's three (RFC 7741 VP8, RFC 6184 H.264, RFC 7587
//! Opus).

use natter_rtp::payload::{
    H264Depacketizer, OpusDepacketizer, PayloadError, RtpPayload, Vp8Depacketizer, Vp8PictureId, Vp8PictureInfo,
};

/// A media format natter can packetize and reassemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Opus,
    Vp8,
    H264,
}

impl Format {
    /// The format of an `a=rtpmap` encoding name; `None` for RTX, FEC
    /// and formats natter does not carry.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(Format::Opus),
            "vp8" => Some(Format::Vp8),
            "h264" => Some(Format::H264),
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
    /// VP8 as the encoder wrote it, H.264 as an Annex B access unit,
    /// one Opus packet.
    pub data: &'a [u8],
    pub timestamp: u32,
    /// A VP8 keyframe or an H.264 IDR picture; always true for Opus.
    pub keyframe: bool,
    /// The picture size a keyframe (VP8) or SPS (H.264) carried.
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
    H264(H264Depacketizer),
}

impl Depacketizer {
    pub fn new(format: Format) -> Self {
        match format {
            Format::Opus => Depacketizer::Opus(OpusDepacketizer::new()),
            Format::Vp8 => Depacketizer::Vp8(Vp8Depacketizer::new()),
            Format::H264 => Depacketizer::H264(H264Depacketizer::new()),
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
            Depacketizer::Vp8(d) => {
                let out = d.push(packet)?;
                Assembled {
                    frame: out.frame.map(|f| AssembledFrame {
                        data: f.data,
                        timestamp: f.timestamp,
                        keyframe: f.header.keyframe,
                        size: f.header.dimensions.map(|d| (u32::from(d.width), u32::from(d.height))),
                    }),
                    frames_dropped: out.frames_dropped,
                    keyframe_needed: out.keyframe_needed,
                }
            }
            Depacketizer::H264(d) => {
                let out = d.push(packet)?;
                Assembled {
                    frame: out.frame.map(|f| AssembledFrame {
                        data: f.data,
                        timestamp: f.timestamp,
                        keyframe: f.idr,
                        size: f.sps.map(|s| (s.width, s.height)),
                    }),
                    frames_dropped: out.frames_dropped,
                    keyframe_needed: out.keyframe_needed,
                }
            }
        })
    }

    /// Whether the decoder still waits for a keyframe.
    pub fn awaiting_keyframe(&self) -> bool {
        match self {
            Depacketizer::Opus(_) => false,
            Depacketizer::Vp8(d) => d.awaiting_keyframe(),
            Depacketizer::H264(d) => d.awaiting_keyframe(),
        }
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
