//! Source-specific attributes (RFC 5576): `a=ssrc` (§4.1) and
//! `a=ssrc-group` (§4.2).

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{number, token, Fields};

/// `a=ssrc:<ssrc> <attribute>[:<value>]`, such as `cname:...` or
/// `msid:<stream> <track>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ssrc {
    pub ssrc: u32,
    /// The source attribute's name, a token.
    pub attribute: String,
    /// Its value, as written (it may hold spaces).
    pub value: Option<String>,
}

impl Ssrc {
    pub fn new(ssrc: u32, attribute: impl Into<String>, value: Option<&str>) -> Self {
        Ssrc {
            ssrc,
            attribute: attribute.into(),
            value: value.map(str::to_string),
        }
    }
}

impl TypedAttribute for Ssrc {
    const NAME: &'static str = "ssrc";
}

impl FromStr for Ssrc {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let ssrc = number("SSRC", fields.next("SSRC")?)?;
        let rest = fields.rest();
        let (attribute, value) = match rest.split_once(':') {
            Some((attribute, value)) => (attribute, Some(value.to_string())),
            None => (rest, None),
        };
        if attribute.is_empty() {
            return Err(ValueError::Missing("source attribute"));
        }
        let attribute = token("source attribute", attribute)?.to_string();
        Ok(Ssrc { ssrc, attribute, value })
    }
}

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.ssrc, self.attribute)?;
        match &self.value {
            Some(value) => write!(f, ":{value}"),
            None => Ok(()),
        }
    }
}

/// The semantics of an SSRC group.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SsrcGroupSemantics {
    /// `FID`: flow identification, an RTX stream after its original
    /// (RFC 5576 §4.2, RFC 4588 §8.7).
    Fid,
    /// `SIM`: simulcast layers, lowest first (Chromium's legacy simulcast).
    Sim,
    /// `FEC-FR`: a FEC stream after its source (RFC 5956 §4.3).
    FecFr,
    /// Any other semantics, as written; never one of the names above.
    Other(String),
}

impl SsrcGroupSemantics {
    pub fn from_name(name: &str) -> Self {
        match name {
            "FID" => SsrcGroupSemantics::Fid,
            "SIM" => SsrcGroupSemantics::Sim,
            "FEC-FR" => SsrcGroupSemantics::FecFr,
            other => SsrcGroupSemantics::Other(other.to_string()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SsrcGroupSemantics::Fid => "FID",
            SsrcGroupSemantics::Sim => "SIM",
            SsrcGroupSemantics::FecFr => "FEC-FR",
            SsrcGroupSemantics::Other(name) => name,
        }
    }
}

/// `a=ssrc-group:<semantics> <ssrc>...`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SsrcGroup {
    pub semantics: SsrcGroupSemantics,
    pub ssrcs: Vec<u32>,
}

impl SsrcGroup {
    pub fn new(semantics: SsrcGroupSemantics, ssrcs: Vec<u32>) -> Self {
        SsrcGroup { semantics, ssrcs }
    }
}

impl TypedAttribute for SsrcGroup {
    const NAME: &'static str = "ssrc-group";
}

impl FromStr for SsrcGroup {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let semantics = SsrcGroupSemantics::from_name(token("group semantics", fields.next("group semantics")?)?);
        let mut ssrcs = Vec::new();
        while let Some(ssrc) = fields.optional() {
            ssrcs.push(number("SSRC", ssrc)?);
        }
        Ok(SsrcGroup { semantics, ssrcs })
    }
}

impl fmt::Display for SsrcGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.semantics.name())?;
        self.ssrcs.iter().try_for_each(|ssrc| write!(f, " {ssrc}"))
    }
}
