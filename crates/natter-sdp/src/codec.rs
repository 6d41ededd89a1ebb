//! Codecs: the `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines of one RTP
//! payload type joined together, as JSEP negotiates them (RFC 8829 §5.3.1).

use crate::fmtp::{find, Parameter};
use crate::rtcp::Feedback;
use crate::rtpmap::RtpMap;

/// One payload format of an RTP media section.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Codec {
    pub payload_type: u8,
    pub encoding_name: String,
    /// In Hz.
    pub clock_rate: u32,
    /// For audio; `None` when `a=rtpmap` leaves it out (one channel).
    pub channels: Option<u16>,
    /// From `a=fmtp`, in order.
    pub parameters: Vec<Parameter>,
    /// From `a=rtcp-fb` for this payload type and for `*`, in order.
    pub feedback: Vec<Feedback>,
}

impl Codec {
    /// A codec with no channel count, parameters or feedback.
    pub fn new(payload_type: u8, encoding_name: impl Into<String>, clock_rate: u32) -> Self {
        Codec {
            payload_type,
            encoding_name: encoding_name.into(),
            clock_rate,
            channels: None,
            parameters: Vec::new(),
            feedback: Vec::new(),
        }
    }

    /// The codec described by `rtpmap`, with no parameters or feedback.
    pub fn from_rtpmap(rtpmap: RtpMap) -> Self {
        Codec {
            channels: rtpmap.channels,
            ..Codec::new(rtpmap.payload_type, rtpmap.encoding_name, rtpmap.clock_rate)
        }
    }

    /// The `a=rtpmap` of this codec.
    pub fn rtpmap(&self) -> RtpMap {
        RtpMap {
            payload_type: self.payload_type,
            encoding_name: self.encoding_name.clone(),
            clock_rate: self.clock_rate,
            channels: self.channels,
        }
    }

    /// The value of the format parameter `name` (case-insensitive), such
    /// as `apt` for RTX (RFC 4588 §8.1) or `profile-level-id` for H.264.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        find(&self.parameters, name)
    }

    /// The codec a static payload type stands for when no `a=rtpmap`
    /// names it (RFC 3551 §6, tables 4 and 5).
    pub fn from_static(payload_type: u8) -> Option<Self> {
        let (name, clock_rate, channels) = match payload_type {
            0 => ("PCMU", 8000, None),
            3 => ("GSM", 8000, None),
            4 => ("G723", 8000, None),
            5 => ("DVI4", 8000, None),
            6 => ("DVI4", 16000, None),
            7 => ("LPC", 8000, None),
            8 => ("PCMA", 8000, None),
            9 => ("G722", 8000, None),
            10 => ("L16", 44100, Some(2)),
            11 => ("L16", 44100, None),
            12 => ("QCELP", 8000, None),
            13 => ("CN", 8000, None),
            14 => ("MPA", 90000, None),
            15 => ("G728", 8000, None),
            16 => ("DVI4", 11025, None),
            17 => ("DVI4", 22050, None),
            18 => ("G729", 8000, None),
            25 => ("CelB", 90000, None),
            26 => ("JPEG", 90000, None),
            28 => ("nv", 90000, None),
            31 => ("H261", 90000, None),
            32 => ("MPV", 90000, None),
            33 => ("MP2T", 90000, None),
            34 => ("H263", 90000, None),
            _ => return None,
        };
        Some(Codec {
            channels,
            ..Codec::new(payload_type, name, clock_rate)
        })
    }
}
