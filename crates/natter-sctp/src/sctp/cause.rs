//! Error causes (RFC 9260 §3.3.10), carried by ABORT and ERROR chunks.

use super::error::WireError;
use super::tsn::Tsn;
use super::wire::{put_u16, put_u32, u16_at, u32_at, FixedList, Tlv};

pub const INVALID_STREAM_IDENTIFIER: u16 = 1;
pub const MISSING_MANDATORY_PARAMETER: u16 = 2;
pub const STALE_COOKIE: u16 = 3;
pub const OUT_OF_RESOURCE: u16 = 4;
pub const UNRECOGNIZED_CHUNK_TYPE: u16 = 6;
pub const INVALID_MANDATORY_PARAMETER: u16 = 7;
pub const UNRECOGNIZED_PARAMETERS: u16 = 8;
pub const NO_USER_DATA: u16 = 9;
pub const COOKIE_WHILE_SHUTTING_DOWN: u16 = 10;
pub const USER_INITIATED_ABORT: u16 = 12;
pub const PROTOCOL_VIOLATION: u16 = 13;

/// One error cause. The causes WebRTC's SCTP meets are typed; the rest
/// (unresolvable addresses, restarts with new addresses) stay `Other`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ErrorCause<'a> {
    /// §3.3.10.1: DATA for a stream that does not exist.
    InvalidStreamIdentifier(u16),
    /// §3.3.10.2: the types of the missing parameters.
    MissingMandatoryParameter(FixedList<'a, u16>),
    /// §3.3.10.3: how late the cookie came, in microseconds.
    StaleCookie {
        staleness_us: u32,
    },
    /// §3.3.10.4.
    OutOfResource,
    /// §3.3.10.6: the unrecognized chunk as it came (header included).
    UnrecognizedChunkType(&'a [u8]),
    /// §3.3.10.7.
    InvalidMandatoryParameter,
    /// §3.3.10.8: the unrecognized parameters as they came.
    UnrecognizedParameters(&'a [u8]),
    /// §3.3.10.9: a DATA chunk without user data.
    NoUserData(Tsn),
    /// §3.3.10.10.
    CookieWhileShuttingDown,
    /// §3.3.10.12: the upper layer's reason.
    UserInitiatedAbort(&'a [u8]),
    /// §3.3.10.13: what was violated, for a human.
    ProtocolViolation(&'a [u8]),
    Other {
        code: u16,
        info: &'a [u8],
    },
}

fn len_is(code: u16, v: &[u8], n: usize) -> Result<(), WireError> {
    if v.len() == n {
        Ok(())
    } else {
        Err(WireError::Param {
            ty: code,
            what: "error cause of the wrong length",
        })
    }
}

impl<'a> Tlv<'a> for ErrorCause<'a> {
    fn parse(code: u16, v: &'a [u8]) -> Result<Self, WireError> {
        Ok(match code {
            INVALID_STREAM_IDENTIFIER => {
                len_is(code, v, 4)?;
                ErrorCause::InvalidStreamIdentifier(u16_at(v, 0))
            }
            MISSING_MANDATORY_PARAMETER => {
                let count = if v.len() >= 4 {
                    u32_at(v, 0) as usize
                } else {
                    usize::MAX
                };
                match FixedList::take(v.get(4..).unwrap_or(&[]), count) {
                    Some((list, [])) => ErrorCause::MissingMandatoryParameter(list),
                    _ => {
                        return Err(WireError::Param {
                            ty: code,
                            what: "parameter count does not match the length",
                        })
                    }
                }
            }
            STALE_COOKIE => {
                len_is(code, v, 4)?;
                ErrorCause::StaleCookie {
                    staleness_us: u32_at(v, 0),
                }
            }
            OUT_OF_RESOURCE => {
                len_is(code, v, 0)?;
                ErrorCause::OutOfResource
            }
            UNRECOGNIZED_CHUNK_TYPE => ErrorCause::UnrecognizedChunkType(v),
            INVALID_MANDATORY_PARAMETER => {
                len_is(code, v, 0)?;
                ErrorCause::InvalidMandatoryParameter
            }
            UNRECOGNIZED_PARAMETERS => ErrorCause::UnrecognizedParameters(v),
            NO_USER_DATA => {
                len_is(code, v, 4)?;
                ErrorCause::NoUserData(Tsn(u32_at(v, 0)))
            }
            COOKIE_WHILE_SHUTTING_DOWN => {
                len_is(code, v, 0)?;
                ErrorCause::CookieWhileShuttingDown
            }
            USER_INITIATED_ABORT => ErrorCause::UserInitiatedAbort(v),
            PROTOCOL_VIOLATION => ErrorCause::ProtocolViolation(v),
            code => ErrorCause::Other { code, info: v },
        })
    }

    fn tlv_type(&self) -> u16 {
        match self {
            ErrorCause::InvalidStreamIdentifier(_) => INVALID_STREAM_IDENTIFIER,
            ErrorCause::MissingMandatoryParameter(_) => MISSING_MANDATORY_PARAMETER,
            ErrorCause::StaleCookie { .. } => STALE_COOKIE,
            ErrorCause::OutOfResource => OUT_OF_RESOURCE,
            ErrorCause::UnrecognizedChunkType(_) => UNRECOGNIZED_CHUNK_TYPE,
            ErrorCause::InvalidMandatoryParameter => INVALID_MANDATORY_PARAMETER,
            ErrorCause::UnrecognizedParameters(_) => UNRECOGNIZED_PARAMETERS,
            ErrorCause::NoUserData(_) => NO_USER_DATA,
            ErrorCause::CookieWhileShuttingDown => COOKIE_WHILE_SHUTTING_DOWN,
            ErrorCause::UserInitiatedAbort(_) => USER_INITIATED_ABORT,
            ErrorCause::ProtocolViolation(_) => PROTOCOL_VIOLATION,
            ErrorCause::Other { code, .. } => *code,
        }
    }

    fn value_len(&self) -> usize {
        match self {
            ErrorCause::InvalidStreamIdentifier(_) | ErrorCause::StaleCookie { .. } | ErrorCause::NoUserData(_) => 4,
            ErrorCause::MissingMandatoryParameter(l) => 4 + l.wire_len(),
            ErrorCause::OutOfResource | ErrorCause::InvalidMandatoryParameter | ErrorCause::CookieWhileShuttingDown => {
                0
            }
            ErrorCause::UnrecognizedChunkType(b)
            | ErrorCause::UnrecognizedParameters(b)
            | ErrorCause::UserInitiatedAbort(b)
            | ErrorCause::ProtocolViolation(b)
            | ErrorCause::Other { info: b, .. } => b.len(),
        }
    }

    fn write_value(&self, out: &mut [u8]) {
        match self {
            ErrorCause::InvalidStreamIdentifier(id) => {
                put_u16(out, 0, *id);
                put_u16(out, 2, 0);
            }
            ErrorCause::MissingMandatoryParameter(l) => {
                // A parameter list bounded by the chunk's u16 length.
                put_u32(out, 0, l.len() as u32);
                l.write(&mut out[4..]);
            }
            ErrorCause::StaleCookie { staleness_us: n } | ErrorCause::NoUserData(Tsn(n)) => put_u32(out, 0, *n),
            ErrorCause::OutOfResource | ErrorCause::InvalidMandatoryParameter | ErrorCause::CookieWhileShuttingDown => {
            }
            ErrorCause::UnrecognizedChunkType(b)
            | ErrorCause::UnrecognizedParameters(b)
            | ErrorCause::UserInitiatedAbort(b)
            | ErrorCause::ProtocolViolation(b)
            | ErrorCause::Other { info: b, .. } => out.copy_from_slice(b),
        }
    }
}
