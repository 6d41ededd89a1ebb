//! The media direction attributes `sendrecv`, `sendonly`, `recvonly` and
//! `inactive` (RFC 8866 §6.7; RFC 3264 §5.1), also used by `a=extmap`
//! (RFC 8285 §5).

use std::fmt;
use std::str::FromStr;

use crate::error::ValueError;

/// Which way media flows, from the point of view of the description's writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The default when no direction attribute is present (RFC 8866 §6.7).
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute named `name` states, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

impl FromStr for Direction {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        Direction::from_name(s).ok_or_else(|| ValueError::invalid("direction", s))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
