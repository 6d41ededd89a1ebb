//! `a=rtpmap` (RFC 8866 §6.6): what an RTP payload type stands for.

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{number, payload_type, token, Fields};

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RtpMap {
    pub payload_type: u8,
    /// Such as `opus`, `VP8`, `H264`, `rtx`; compared case-insensitively
    /// by media types (RFC 6838 §4.2), kept as written here.
    pub encoding_name: String,
    /// In Hz.
    pub clock_rate: u32,
    /// The encoding parameters: for audio, the number of channels, which
    /// may be left out when it is 1.
    pub channels: Option<u16>,
}

impl TypedAttribute for RtpMap {
    const NAME: &'static str = "rtpmap";
}

impl FromStr for RtpMap {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let payload_type = payload_type(fields.next("payload type")?)?;
        let encoding = fields.next("encoding")?;
        fields.end()?;
        let mut parts = encoding.split('/');
        let encoding_name = token("encoding name", parts.next().unwrap_or_default())?.to_string();
        let clock_rate = number("clock rate", parts.next().ok_or(ValueError::Missing("clock rate"))?)?;
        let channels = parts.next().map(|c| number("channel count", c)).transpose()?;
        if let Some(extra) = parts.next() {
            return Err(ValueError::Trailing(format!("/{}", crate::error::excerpt(extra))));
        }
        Ok(RtpMap {
            payload_type,
            encoding_name,
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.payload_type, self.encoding_name, self.clock_rate)?;
        match self.channels {
            Some(channels) => write!(f, "/{channels}"),
            None => Ok(()),
        }
    }
}
