//! `a=extmap` (RFC 8285 §5, grammar in §8): RTP header extensions and
//! their local ids.

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::direction::Direction;
use crate::error::ValueError;
use crate::grammar::{number, Fields};

/// `a=extmap:<id>[/<direction>] <uri> [<extension attributes>]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extmap {
    /// RFC 8285 §5: 1-14 for one-byte headers, 1-255 for two-byte ones,
    /// 4096-4351 in offers for ids the answerer picks.
    pub id: u16,
    pub direction: Option<Direction>,
    /// The extension's URI, such as `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub uri: String,
    /// Extension-specific attributes after the URI, as written.
    pub attributes: Option<String>,
}

impl Extmap {
    pub fn new(id: u16, uri: impl Into<String>) -> Self {
        Extmap {
            id,
            direction: None,
            uri: uri.into(),
            attributes: None,
        }
    }
}

impl TypedAttribute for Extmap {
    const NAME: &'static str = "extmap";
}

impl FromStr for Extmap {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let entry = fields.next("extension id")?;
        let (id, direction) = match entry.split_once('/') {
            Some((id, direction)) => (id, Some(direction.parse()?)),
            None => (entry, None),
        };
        let id = match number("extension id", id)? {
            id @ (1..=255 | 4096..=4351) => id,
            _ => return Err(ValueError::invalid("extension id (1-255 or 4096-4351)", id)),
        };
        let uri = fields.next("extension URI")?.to_string();
        let attributes = Some(fields.rest()).filter(|a| !a.is_empty()).map(str::to_string);
        Ok(Extmap {
            id,
            direction,
            uri,
            attributes,
        })
    }
}

impl fmt::Display for Extmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(direction) = self.direction {
            write!(f, "/{direction}")?;
        }
        write!(f, " {}", self.uri)?;
        match &self.attributes {
            Some(attributes) => write!(f, " {attributes}"),
            None => Ok(()),
        }
    }
}
