//! `a=fmtp` (RFC 8866 §6.15): format parameters, and the `;`-separated
//! `name[=value]` lists that fmtp and `a=rid` restrictions share.

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{payload_type, trim, Fields};

/// One `name=value` (or bare `name`, as in telephone-event's `0-15` or
/// RED's `111/111`) of a `;`-separated parameter list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parameter {
    /// Without surrounding spaces; holds neither `;` nor `=`.
    pub name: String,
    /// Everything after the first `=` (so base64 padding survives),
    /// without surrounding spaces; holds no `;`.
    pub value: Option<String>,
}

impl Parameter {
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        Parameter {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        match &self.value {
            Some(value) => write!(f, "={value}"),
            None => Ok(()),
        }
    }
}

/// Parses `key=value;key;key=value` into parameters, in order; empty
/// entries (`a;;b`, a trailing `;`) are skipped and spaces around names
/// and values are dropped, as browsers do.
pub fn parse_parameters(s: &str) -> Vec<Parameter> {
    s.split(';')
        .map(trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => Parameter {
                name: trim(name).into(),
                value: Some(trim(value).into()),
            },
            None => Parameter {
                name: p.into(),
                value: None,
            },
        })
        .collect()
}

/// The writer of [`parse_parameters`]'s lists.
pub(crate) struct ParameterList<'a>(pub(crate) &'a [Parameter]);

impl fmt::Display for ParameterList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, parameter) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{parameter}")?;
        }
        Ok(())
    }
}

/// The value of the first parameter named `name` (ASCII case-insensitive,
/// as media type parameter names are: RFC 6838 §4.3).
pub(crate) fn find<'a>(parameters: &'a [Parameter], name: &str) -> Option<&'a str> {
    parameters
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))?
        .value
        .as_deref()
}

/// `a=fmtp:<payload type> <parameters>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fmtp {
    pub payload_type: u8,
    pub parameters: Vec<Parameter>,
}

impl Fmtp {
    /// The value of the parameter `name`, such as `apt` for RTX.
    pub fn get(&self, name: &str) -> Option<&str> {
        find(&self.parameters, name)
    }
}

impl TypedAttribute for Fmtp {
    const NAME: &'static str = "fmtp";
}

impl FromStr for Fmtp {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let payload_type = payload_type(fields.next("payload type")?)?;
        Ok(Fmtp {
            payload_type,
            parameters: parse_parameters(fields.rest()),
        })
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.payload_type)?;
        if !self.parameters.is_empty() {
            write!(f, " {}", ParameterList(&self.parameters))?;
        }
        Ok(())
    }
}
