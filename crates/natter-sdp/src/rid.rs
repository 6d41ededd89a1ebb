//! `a=rid` (RFC 8851 §10): RTP stream identifiers and their restrictions.

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::fmtp::{parse_parameters, Parameter, ParameterList};
use crate::grammar::{payload_type, Fields};

/// Whether the writer of a description sends or receives a RID's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RidDirection {
    Send,
    Recv,
}

impl RidDirection {
    pub fn name(self) -> &'static str {
        match self {
            RidDirection::Send => "send",
            RidDirection::Recv => "recv",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, ValueError> {
        match s {
            "send" => Ok(RidDirection::Send),
            "recv" => Ok(RidDirection::Recv),
            other => Err(ValueError::invalid("direction (send or recv)", other)),
        }
    }
}

/// RFC 8851 §10: `rid-id = 1*(alpha-numeric / "-" / "_")`.
pub(crate) fn is_rid_id(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `a=rid:<id> <send|recv> [pt=<pt>,...][;<restriction>...]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rid {
    pub id: String,
    pub direction: RidDirection,
    /// The payload types the stream may use; empty for any.
    pub payload_types: Vec<u8>,
    /// Restrictions such as `max-width=1280`, in order; none named `pt`.
    pub restrictions: Vec<Parameter>,
}

impl Rid {
    pub fn new(id: impl Into<String>, direction: RidDirection) -> Self {
        Rid {
            id: id.into(),
            direction,
            payload_types: Vec::new(),
            restrictions: Vec::new(),
        }
    }
}

impl TypedAttribute for Rid {
    const NAME: &'static str = "rid";
}

impl FromStr for Rid {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let id = fields.next("rid id")?;
        if !is_rid_id(id) {
            return Err(ValueError::invalid("rid id", id));
        }
        let direction = RidDirection::parse(fields.next("rid direction")?)?;
        let mut restrictions = parse_parameters(fields.rest());
        // RFC 8851 §10: a payload type list comes first.
        let mut payload_types = Vec::new();
        if let Some(first) = restrictions.first().filter(|p| p.name == "pt") {
            let list = first.value.as_deref().ok_or(ValueError::Missing("payload type list"))?;
            payload_types = list.split(',').map(payload_type).collect::<Result<_, _>>()?;
            restrictions.remove(0);
        }
        Ok(Rid {
            id: id.to_string(),
            direction,
            payload_types,
            restrictions,
        })
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.direction.name())?;
        let mut separator = " ";
        if !self.payload_types.is_empty() {
            f.write_str(" pt=")?;
            for (i, pt) in self.payload_types.iter().enumerate() {
                write!(f, "{}{pt}", if i == 0 { "" } else { "," })?;
            }
            separator = ";";
        }
        if !self.restrictions.is_empty() {
            write!(f, "{separator}{}", ParameterList(&self.restrictions))?;
        }
        Ok(())
    }
}
