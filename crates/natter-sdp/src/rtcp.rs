//! RTCP attributes: the RTCP address `a=rtcp` (RFC 3605 §2.1) and
//! feedback capabilities `a=rtcp-fb` (RFC 4585 §4.2).

use std::fmt;
use std::str::FromStr;

use crate::address::Address;
use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{number, payload_type, token, Fields};

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]`; JSEP writes
/// `a=rtcp:9 IN IP4 0.0.0.0` (RFC 8829 §5.2.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rtcp {
    pub port: u16,
    pub address: Option<Address>,
}

impl TypedAttribute for Rtcp {
    const NAME: &'static str = "rtcp";
}

impl FromStr for Rtcp {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let port = number("RTCP port", fields.next("RTCP port")?)?;
        let address = if fields.is_done() {
            None
        } else {
            Some(Address::take(&mut fields)?)
        };
        fields.end()?;
        Ok(Rtcp { port, address })
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        match &self.address {
            Some(address) => write!(f, " {address}"),
            None => Ok(()),
        }
    }
}

/// One kind of RTCP feedback: `nack`, `nack pli`, `ccm fir`,
/// `transport-cc`, `goog-remb`, `trr-int 100`... (RFC 4585 §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Feedback {
    /// The feedback type, a token such as `nack` or `ccm`.
    pub kind: String,
    /// What follows the type: `pli` after `nack`, `fir` after `ccm`;
    /// kept as written when it has several words.
    pub parameter: Option<String>,
}

impl Feedback {
    pub fn new(kind: impl Into<String>, parameter: Option<&str>) -> Self {
        Feedback {
            kind: kind.into(),
            parameter: parameter.map(str::to_string),
        }
    }
}

impl fmt::Display for Feedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        match &self.parameter {
            Some(parameter) => write!(f, " {parameter}"),
            None => Ok(()),
        }
    }
}

/// `a=rtcp-fb:<payload type or *> <type> [<parameter>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RtcpFeedback {
    /// `None` for `*`: every payload type of the section.
    pub payload_type: Option<u8>,
    pub feedback: Feedback,
}

impl TypedAttribute for RtcpFeedback {
    const NAME: &'static str = "rtcp-fb";
}

impl FromStr for RtcpFeedback {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let payload_type = match fields.next("payload type")? {
            "*" => None,
            pt => Some(payload_type(pt)?),
        };
        let kind = token("feedback type", fields.next("feedback type")?)?.to_string();
        let parameter = Some(fields.rest()).filter(|p| !p.is_empty()).map(str::to_string);
        Ok(RtcpFeedback {
            payload_type,
            feedback: Feedback { kind, parameter },
        })
    }
}

impl fmt::Display for RtcpFeedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.payload_type {
            Some(pt) => write!(f, "{pt} {}", self.feedback),
            None => write!(f, "* {}", self.feedback),
        }
    }
}
