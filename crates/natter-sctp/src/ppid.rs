//! SCTP Payload Protocol Identifiers of WebRTC data channels.
//!
//! RFC 8831 §8 registers the user-data PPIDs and RFC 8832 §8.1 the one
//! for DCEP. The receiver tells text from binary, and an empty message
//! from a one-byte one, only by the PPID (RFC 8831 §6.6).

/// A PPID seen on a WebRTC data channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ppid {
    /// 50: a DCEP message (RFC 8832 §8.1).
    Dcep,
    /// 51: a non-empty UTF-8 message (RFC 8831 §8).
    String,
    /// 52: part of a binary message (RFC 8831 §8, deprecated; sent by
    /// no current browser).
    BinaryPartial,
    /// 53: a non-empty binary message (RFC 8831 §8).
    Binary,
    /// 54: part of a UTF-8 message (RFC 8831 §8, deprecated).
    StringPartial,
    /// 56: an empty UTF-8 message, carried as one zero byte (RFC 8831 §6.6).
    StringEmpty,
    /// 57: an empty binary message, carried as one zero byte (RFC 8831 §6.6).
    BinaryEmpty,
}

impl Ppid {
    /// The IANA value.
    pub const fn value(self) -> u32 {
        match self {
            Ppid::Dcep => 50,
            Ppid::String => 51,
            Ppid::BinaryPartial => 52,
            Ppid::Binary => 53,
            Ppid::StringPartial => 54,
            Ppid::StringEmpty => 56,
            Ppid::BinaryEmpty => 57,
        }
    }

    /// The PPID with IANA value `value`, if it is one of WebRTC's.
    pub const fn from_value(value: u32) -> Option<Ppid> {
        Some(match value {
            50 => Ppid::Dcep,
            51 => Ppid::String,
            52 => Ppid::BinaryPartial,
            53 => Ppid::Binary,
            54 => Ppid::StringPartial,
            56 => Ppid::StringEmpty,
            57 => Ppid::BinaryEmpty,
            _ => return None,
        })
    }

    /// The PPID for an application message (RFC 8831 §6.6): empty
    /// messages use the "Empty" PPIDs, since SCTP cannot carry an empty
    /// user message.
    pub const fn for_message(is_text: bool, is_empty: bool) -> Ppid {
        match (is_text, is_empty) {
            (true, false) => Ppid::String,
            (true, true) => Ppid::StringEmpty,
            (false, false) => Ppid::Binary,
            (false, true) => Ppid::BinaryEmpty,
        }
    }

    /// Whether messages with this PPID are text.
    pub const fn is_text(self) -> bool {
        matches!(self, Ppid::String | Ppid::StringPartial | Ppid::StringEmpty)
    }

    /// Whether this PPID marks an empty message whose one payload byte
    /// is to be ignored.
    pub const fn is_empty_message(self) -> bool {
        matches!(self, Ppid::StringEmpty | Ppid::BinaryEmpty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in 0..=100u32 {
            if let Some(p) = Ppid::from_value(v) {
                assert_eq!(p.value(), v);
            }
        }
        assert_eq!(Ppid::from_value(55), None);
        assert_eq!(Ppid::for_message(true, true).value(), 56);
        assert_eq!(Ppid::for_message(false, true).value(), 57);
        assert_eq!(Ppid::for_message(true, false).value(), 51);
        assert_eq!(Ppid::for_message(false, false).value(), 53);
    }
}
