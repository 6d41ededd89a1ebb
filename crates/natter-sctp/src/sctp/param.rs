//! Parameters (RFC 9260 §3.2.1): the variable part of INIT and INIT ACK
//! (§3.3.2, §3.3.3), HEARTBEAT (§3.3.5) and RE-CONFIG (RFC 6525 §4).
//! Types natter has no use for (IPv4/IPv6 addresses, since there is no
//! multi-homing over DTLS; ECN; AUTH) stay [`Param::Unknown`] and are
//! handled by the upper two bits of their type ([`UnknownAction`]).
//!
//! [`UnknownAction`]: super::wire::UnknownAction

use super::error::WireError;
use super::tsn::Tsn;
use super::wire::{put_u16, put_u32, u16_at, u32_at, FixedList, Tlv};

/// RFC 9260 §3.3.5: Heartbeat Info.
pub const HEARTBEAT_INFO: u16 = 1;
/// RFC 9260 §3.3.3: State Cookie.
pub const STATE_COOKIE: u16 = 7;
/// RFC 9260 §3.3.3: Unrecognized Parameter.
pub const UNRECOGNIZED_PARAMETER: u16 = 8;
/// RFC 9260 §3.3.2.1: Cookie Preservative.
pub const COOKIE_PRESERVATIVE: u16 = 9;
/// RFC 9260 §3.3.2.1: Supported Address Types.
pub const SUPPORTED_ADDRESS_TYPES: u16 = 12;
/// RFC 6525 §4.1: Outgoing SSN Reset Request.
pub const OUTGOING_SSN_RESET: u16 = 13;
/// RFC 6525 §4.2: Incoming SSN Reset Request.
pub const INCOMING_SSN_RESET: u16 = 14;
/// RFC 6525 §4.3: SSN/TSN Reset Request.
pub const SSN_TSN_RESET: u16 = 15;
/// RFC 6525 §4.4: Re-configuration Response.
pub const RECONFIG_RESPONSE: u16 = 16;
/// RFC 6525 §4.5: Add Outgoing Streams Request.
pub const ADD_OUTGOING_STREAMS: u16 = 17;
/// RFC 6525 §4.6: Add Incoming Streams Request.
pub const ADD_INCOMING_STREAMS: u16 = 18;
/// RFC 9653 §4: Zero Checksum Acceptable.
pub const ZERO_CHECKSUM_ACCEPTABLE: u16 = 0x8001;
/// RFC 5061 §4.2.7: Supported Extensions.
pub const SUPPORTED_EXTENSIONS: u16 = 0x8008;
/// RFC 3758 §3.1: Forward-TSN-Supported.
pub const FORWARD_TSN_SUPPORTED: u16 = 0xc000;

/// RFC 9653 §6: the Error Detection Method Identifier of SCTP over DTLS.
pub const EDMID_SCTP_OVER_DTLS: u32 = 1;

/// One parameter, a view over the received bytes or a value to write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    /// Opaque to the receiver, echoed in HEARTBEAT ACK (RFC 9260 §3.3.6).
    HeartbeatInfo(&'a [u8]),
    StateCookie(&'a [u8]),
    /// A parameter of the INIT that its receiver did not know, as it came
    /// (header included), reported in the INIT ACK (RFC 9260 §3.3.3).
    UnrecognizedParameter(&'a [u8]),
    /// Milliseconds by which the sender asks the cookie's life be longer.
    CookiePreservative(u32),
    SupportedAddressTypes(FixedList<'a, u16>),
    OutgoingSsnReset(OutgoingSsnReset<'a>),
    IncomingSsnReset(IncomingSsnReset<'a>),
    SsnTsnReset {
        request_seq: u32,
    },
    ReconfigResponse(ReconfigResponse),
    AddOutgoingStreams {
        request_seq: u32,
        new_streams: u16,
    },
    AddIncomingStreams {
        request_seq: u32,
        new_streams: u16,
    },
    ZeroChecksumAcceptable {
        edmid: u32,
    },
    /// The chunk types the sender supports beyond RFC 9260's.
    SupportedExtensions(&'a [u8]),
    ForwardTsnSupported,
    Unknown {
        ty: u16,
        value: &'a [u8],
    },
}

/// RFC 6525 §4.1: the sender will reset these outgoing streams (all when
/// the list is empty) once `last_tsn` is delivered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutgoingSsnReset<'a> {
    pub request_seq: u32,
    pub response_seq: u32,
    pub last_tsn: Tsn,
    pub streams: FixedList<'a, u16>,
}

/// RFC 6525 §4.2: the sender asks its peer to reset these streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncomingSsnReset<'a> {
    pub request_seq: u32,
    pub streams: FixedList<'a, u16>,
}

/// RFC 6525 §4.4: the answer to a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconfigResponse {
    pub response_seq: u32,
    pub result: ReconfigResult,
    /// Sender's and receiver's next TSN, present only in answers to an
    /// SSN/TSN Reset Request.
    pub next_tsns: Option<(Tsn, Tsn)>,
}

/// RFC 6525 §4.4: the result codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconfigResult {
    SuccessNothingToDo,
    SuccessPerformed,
    Denied,
    ErrorWrongSsn,
    ErrorRequestAlreadyInProgress,
    ErrorBadSequenceNumber,
    InProgress,
    Other(u32),
}

impl ReconfigResult {
    pub fn code(self) -> u32 {
        match self {
            ReconfigResult::SuccessNothingToDo => 0,
            ReconfigResult::SuccessPerformed => 1,
            ReconfigResult::Denied => 2,
            ReconfigResult::ErrorWrongSsn => 3,
            ReconfigResult::ErrorRequestAlreadyInProgress => 4,
            ReconfigResult::ErrorBadSequenceNumber => 5,
            ReconfigResult::InProgress => 6,
            ReconfigResult::Other(n) => n,
        }
    }

    pub fn from_code(n: u32) -> Self {
        match n {
            0 => ReconfigResult::SuccessNothingToDo,
            1 => ReconfigResult::SuccessPerformed,
            2 => ReconfigResult::Denied,
            3 => ReconfigResult::ErrorWrongSsn,
            4 => ReconfigResult::ErrorRequestAlreadyInProgress,
            5 => ReconfigResult::ErrorBadSequenceNumber,
            6 => ReconfigResult::InProgress,
            n => ReconfigResult::Other(n),
        }
    }
}

fn fixed(ty: u16, value: &[u8], len: usize) -> Result<(), WireError> {
    if value.len() == len {
        Ok(())
    } else {
        Err(WireError::Param {
            ty,
            what: "wrong length for its type",
        })
    }
}

fn at_least(ty: u16, value: &[u8], len: usize) -> Result<(), WireError> {
    if value.len() >= len {
        Ok(())
    } else {
        Err(WireError::Param {
            ty,
            what: "shorter than its fixed fields",
        })
    }
}

fn stream_list(ty: u16, b: &[u8]) -> Result<FixedList<'_, u16>, WireError> {
    FixedList::whole(b).ok_or(WireError::Param {
        ty,
        what: "stream list of an odd number of bytes",
    })
}

impl<'a> Tlv<'a> for Param<'a> {
    fn parse(ty: u16, v: &'a [u8]) -> Result<Self, WireError> {
        Ok(match ty {
            HEARTBEAT_INFO => Param::HeartbeatInfo(v),
            STATE_COOKIE => Param::StateCookie(v),
            UNRECOGNIZED_PARAMETER => Param::UnrecognizedParameter(v),
            COOKIE_PRESERVATIVE => {
                fixed(ty, v, 4)?;
                Param::CookiePreservative(u32_at(v, 0))
            }
            SUPPORTED_ADDRESS_TYPES => Param::SupportedAddressTypes(stream_list(ty, v)?),
            OUTGOING_SSN_RESET => {
                at_least(ty, v, 12)?;
                Param::OutgoingSsnReset(OutgoingSsnReset {
                    request_seq: u32_at(v, 0),
                    response_seq: u32_at(v, 4),
                    last_tsn: Tsn(u32_at(v, 8)),
                    streams: stream_list(ty, &v[12..])?,
                })
            }
            INCOMING_SSN_RESET => {
                at_least(ty, v, 4)?;
                Param::IncomingSsnReset(IncomingSsnReset {
                    request_seq: u32_at(v, 0),
                    streams: stream_list(ty, &v[4..])?,
                })
            }
            SSN_TSN_RESET => {
                fixed(ty, v, 4)?;
                Param::SsnTsnReset {
                    request_seq: u32_at(v, 0),
                }
            }
            RECONFIG_RESPONSE => {
                let next_tsns = match v.len() {
                    8 => None,
                    16 => Some((Tsn(u32_at(v, 8)), Tsn(u32_at(v, 12)))),
                    _ => {
                        return Err(WireError::Param {
                            ty,
                            what: "wrong length for its type",
                        })
                    }
                };
                Param::ReconfigResponse(ReconfigResponse {
                    response_seq: u32_at(v, 0),
                    result: ReconfigResult::from_code(u32_at(v, 4)),
                    next_tsns,
                })
            }
            ADD_OUTGOING_STREAMS | ADD_INCOMING_STREAMS => {
                fixed(ty, v, 8)?;
                let (request_seq, new_streams) = (u32_at(v, 0), u16_at(v, 4));
                if ty == ADD_OUTGOING_STREAMS {
                    Param::AddOutgoingStreams {
                        request_seq,
                        new_streams,
                    }
                } else {
                    Param::AddIncomingStreams {
                        request_seq,
                        new_streams,
                    }
                }
            }
            ZERO_CHECKSUM_ACCEPTABLE => {
                fixed(ty, v, 4)?;
                Param::ZeroChecksumAcceptable { edmid: u32_at(v, 0) }
            }
            SUPPORTED_EXTENSIONS => Param::SupportedExtensions(v),
            FORWARD_TSN_SUPPORTED => {
                fixed(ty, v, 0)?;
                Param::ForwardTsnSupported
            }
            ty => Param::Unknown { ty, value: v },
        })
    }

    fn tlv_type(&self) -> u16 {
        match self {
            Param::HeartbeatInfo(_) => HEARTBEAT_INFO,
            Param::StateCookie(_) => STATE_COOKIE,
            Param::UnrecognizedParameter(_) => UNRECOGNIZED_PARAMETER,
            Param::CookiePreservative(_) => COOKIE_PRESERVATIVE,
            Param::SupportedAddressTypes(_) => SUPPORTED_ADDRESS_TYPES,
            Param::OutgoingSsnReset(_) => OUTGOING_SSN_RESET,
            Param::IncomingSsnReset(_) => INCOMING_SSN_RESET,
            Param::SsnTsnReset { .. } => SSN_TSN_RESET,
            Param::ReconfigResponse(_) => RECONFIG_RESPONSE,
            Param::AddOutgoingStreams { .. } => ADD_OUTGOING_STREAMS,
            Param::AddIncomingStreams { .. } => ADD_INCOMING_STREAMS,
            Param::ZeroChecksumAcceptable { .. } => ZERO_CHECKSUM_ACCEPTABLE,
            Param::SupportedExtensions(_) => SUPPORTED_EXTENSIONS,
            Param::ForwardTsnSupported => FORWARD_TSN_SUPPORTED,
            Param::Unknown { ty, .. } => *ty,
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Param::HeartbeatInfo(b)
            | Param::StateCookie(b)
            | Param::UnrecognizedParameter(b)
            | Param::SupportedExtensions(b)
            | Param::Unknown { value: b, .. } => b.len(),
            Param::CookiePreservative(_) | Param::SsnTsnReset { .. } | Param::ZeroChecksumAcceptable { .. } => 4,
            Param::SupportedAddressTypes(l) => l.wire_len(),
            Param::OutgoingSsnReset(r) => 12 + r.streams.wire_len(),
            Param::IncomingSsnReset(r) => 4 + r.streams.wire_len(),
            Param::ReconfigResponse(r) => {
                if r.next_tsns.is_some() {
                    16
                } else {
                    8
                }
            }
            Param::AddOutgoingStreams { .. } | Param::AddIncomingStreams { .. } => 8,
            Param::ForwardTsnSupported => 0,
        }
    }

    fn write_value(&self, out: &mut [u8]) {
        match self {
            Param::HeartbeatInfo(b)
            | Param::StateCookie(b)
            | Param::UnrecognizedParameter(b)
            | Param::SupportedExtensions(b)
            | Param::Unknown { value: b, .. } => out.copy_from_slice(b),
            Param::CookiePreservative(n)
            | Param::SsnTsnReset { request_seq: n }
            | Param::ZeroChecksumAcceptable { edmid: n } => put_u32(out, 0, *n),
            Param::SupportedAddressTypes(l) => l.write(out),
            Param::OutgoingSsnReset(r) => {
                put_u32(out, 0, r.request_seq);
                put_u32(out, 4, r.response_seq);
                put_u32(out, 8, r.last_tsn.0);
                r.streams.write(&mut out[12..]);
            }
            Param::IncomingSsnReset(r) => {
                put_u32(out, 0, r.request_seq);
                r.streams.write(&mut out[4..]);
            }
            Param::ReconfigResponse(r) => {
                put_u32(out, 0, r.response_seq);
                put_u32(out, 4, r.result.code());
                if let Some((sender, receiver)) = r.next_tsns {
                    put_u32(out, 8, sender.0);
                    put_u32(out, 12, receiver.0);
                }
            }
            Param::AddOutgoingStreams {
                request_seq,
                new_streams,
            }
            | Param::AddIncomingStreams {
                request_seq,
                new_streams,
            } => {
                put_u32(out, 0, *request_seq);
                put_u16(out, 4, *new_streams);
                put_u16(out, 6, 0);
            }
            Param::ForwardTsnSupported => {}
        }
    }
}
