//! `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8).

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;
use crate::grammar::{number, token, trim};

/// The modifier of a `b=` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BandwidthType {
    /// `CT`: conference total, kbit/s (RFC 8866 §5.8).
    ConferenceTotal,
    /// `AS`: application specific, kbit/s (RFC 8866 §5.8); JSEP sets it
    /// from a maximum bitrate (RFC 8829 §5.2.1).
    ApplicationSpecific,
    /// `TIAS`: transport-independent maximum, bit/s (RFC 3890 §6.2).
    Tias,
    /// `RS`: RTCP bandwidth of senders, bit/s (RFC 3556 §2).
    RtcpSenders,
    /// `RR`: RTCP bandwidth of receivers, bit/s (RFC 3556 §2).
    RtcpReceivers,
    /// Any other modifier, as written; never one of the names above.
    Other(String),
}

impl BandwidthType {
    /// The modifier named `name` (names are case-sensitive).
    pub fn from_name(name: &str) -> Self {
        match name {
            "CT" => BandwidthType::ConferenceTotal,
            "AS" => BandwidthType::ApplicationSpecific,
            "TIAS" => BandwidthType::Tias,
            "RS" => BandwidthType::RtcpSenders,
            "RR" => BandwidthType::RtcpReceivers,
            other => BandwidthType::Other(other.to_string()),
        }
    }

    /// The modifier as written in SDP.
    pub fn name(&self) -> &str {
        match self {
            BandwidthType::ConferenceTotal => "CT",
            BandwidthType::ApplicationSpecific => "AS",
            BandwidthType::Tias => "TIAS",
            BandwidthType::RtcpSenders => "RS",
            BandwidthType::RtcpReceivers => "RR",
            BandwidthType::Other(name) => name,
        }
    }
}

/// One `b=` line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    pub kind: BandwidthType,
    /// In the unit of `kind`: kbit/s for `AS` and `CT`, bit/s for `TIAS`.
    pub value: u64,
}

impl Bandwidth {
    pub fn new(kind: BandwidthType, value: u64) -> Self {
        Bandwidth { kind, value }
    }
}

impl FromStr for Bandwidth {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let (kind, value) = trim(s).split_once(':').ok_or(ValueError::Missing("`:<bandwidth>`"))?;
        let kind = BandwidthType::from_name(token("bandwidth type", kind)?);
        Ok(Bandwidth {
            kind,
            value: number("bandwidth", value)?,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.name(), self.value)
    }
}
