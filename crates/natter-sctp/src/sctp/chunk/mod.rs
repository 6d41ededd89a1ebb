//! Chunks (RFC 9260 §3.2, §3.3) as views over received bytes, and the
//! same values written into a caller's buffer by
//! [`PacketWriter`](super::packet::PacketWriter).

mod data;
mod forward_tsn;
mod init;
mod sack;

pub use data::{Data, DataFlags, IData};
pub use forward_tsn::{ForwardTsn, SkippedMessage, SkippedStream};
pub use init::Init;
pub use sack::{GapAckBlock, Sack};

use super::cause::ErrorCause;
use super::error::WireError;
use super::param::Param;
use super::tsn::Tsn;
use super::wire::{put_u32, u32_at, TlvList};

pub const DATA: u8 = 0;
pub const INIT: u8 = 1;
pub const INIT_ACK: u8 = 2;
pub const SACK: u8 = 3;
pub const HEARTBEAT: u8 = 4;
pub const HEARTBEAT_ACK: u8 = 5;
pub const ABORT: u8 = 6;
pub const SHUTDOWN: u8 = 7;
pub const SHUTDOWN_ACK: u8 = 8;
pub const ERROR: u8 = 9;
pub const COOKIE_ECHO: u8 = 10;
pub const COOKIE_ACK: u8 = 11;
pub const SHUTDOWN_COMPLETE: u8 = 14;
/// RFC 8260 §2.1.
pub const I_DATA: u8 = 0x40;
/// RFC 6525 §3.1.
pub const RE_CONFIG: u8 = 0x82;
/// RFC 3758 §3.2.
pub const FORWARD_TSN: u8 = 0xc0;
/// RFC 8260 §2.3.
pub const I_FORWARD_TSN: u8 = 0xc2;
/// RFC 4820 §3: PAD, which fills a PMTU probe (RFC 8899 §6.2.1.2);
/// receivers skip it (its upper bits are 10, RFC 9260 §3.2).
pub const PAD: u8 = 0x84;

/// One chunk. Types natter does not take part in (ECN, AUTH, ASCONF,
/// PAD) are `Unknown` and handled by their type's upper two bits
/// ([`UnknownAction::for_chunk`](super::wire::UnknownAction::for_chunk)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Chunk<'a> {
    Data(Data<'a>),
    IData(IData<'a>),
    Init(Init<'a>),
    InitAck(Init<'a>),
    Sack(Sack<'a>),
    /// RFC 9260 §3.3.5: a Heartbeat Info parameter.
    Heartbeat(TlvList<'a, Param<'a>>),
    /// RFC 9260 §3.3.6: the Heartbeat Info echoed.
    HeartbeatAck(TlvList<'a, Param<'a>>),
    /// RFC 9260 §3.3.7. `reflected` (T bit): the sender had no TCB and
    /// used the receiver's own verification tag.
    Abort {
        reflected: bool,
        causes: TlvList<'a, ErrorCause<'a>>,
    },
    /// RFC 9260 §3.3.8.
    Shutdown {
        cumulative_tsn_ack: Tsn,
    },
    /// RFC 9260 §3.3.9.
    ShutdownAck,
    /// RFC 9260 §3.3.13, `reflected` as for ABORT.
    ShutdownComplete {
        reflected: bool,
    },
    /// RFC 9260 §3.3.10.
    Error(TlvList<'a, ErrorCause<'a>>),
    /// RFC 9260 §3.3.11: the State Cookie of the INIT ACK, as it came.
    CookieEcho(&'a [u8]),
    /// RFC 9260 §3.3.12.
    CookieAck,
    ForwardTsn(ForwardTsn<'a, SkippedStream>),
    IForwardTsn(ForwardTsn<'a, SkippedMessage>),
    /// RFC 6525 §3.1: one or two request or response parameters.
    ReConfig(TlvList<'a, Param<'a>>),
    Unknown {
        ty: u8,
        flags: u8,
        value: &'a [u8],
    },
}

fn empty(ty: u8, v: &[u8]) -> Result<(), WireError> {
    if v.is_empty() {
        Ok(())
    } else {
        Err(WireError::Chunk {
            ty,
            what: "a value where none belongs",
        })
    }
}

impl<'a> Chunk<'a> {
    /// Interprets a chunk's value (`v`, the bytes after the 4-byte chunk
    /// header, without padding).
    pub fn parse(ty: u8, flags: u8, v: &'a [u8]) -> Result<Self, WireError> {
        Ok(match ty {
            DATA => Chunk::Data(Data::parse(flags, v)?),
            I_DATA => Chunk::IData(IData::parse(flags, v)?),
            INIT => Chunk::Init(Init::parse(ty, v)?),
            INIT_ACK => Chunk::InitAck(Init::parse(ty, v)?),
            SACK => Chunk::Sack(Sack::parse(v)?),
            HEARTBEAT => Chunk::Heartbeat(TlvList::parse(v)?),
            HEARTBEAT_ACK => Chunk::HeartbeatAck(TlvList::parse(v)?),
            ABORT => Chunk::Abort {
                reflected: flags & 1 != 0,
                causes: TlvList::parse(v)?,
            },
            SHUTDOWN => {
                if v.len() != 4 {
                    return Err(WireError::Chunk {
                        ty,
                        what: "length is not 8",
                    });
                }
                Chunk::Shutdown {
                    cumulative_tsn_ack: Tsn(u32_at(v, 0)),
                }
            }
            SHUTDOWN_ACK => {
                empty(ty, v)?;
                Chunk::ShutdownAck
            }
            SHUTDOWN_COMPLETE => {
                empty(ty, v)?;
                Chunk::ShutdownComplete {
                    reflected: flags & 1 != 0,
                }
            }
            ERROR => Chunk::Error(TlvList::parse(v)?),
            COOKIE_ECHO => Chunk::CookieEcho(v),
            COOKIE_ACK => {
                empty(ty, v)?;
                Chunk::CookieAck
            }
            FORWARD_TSN => Chunk::ForwardTsn(ForwardTsn::parse(ty, v)?),
            I_FORWARD_TSN => Chunk::IForwardTsn(ForwardTsn::parse(ty, v)?),
            RE_CONFIG => {
                let params = TlvList::parse(v)?;
                if !(1..=2).contains(&params.iter().count()) {
                    return Err(WireError::Chunk {
                        ty,
                        what: "not one or two parameters",
                    });
                }
                Chunk::ReConfig(params)
            }
            ty => Chunk::Unknown { ty, flags, value: v },
        })
    }

    pub fn chunk_type(&self) -> u8 {
        match self {
            Chunk::Data(_) => DATA,
            Chunk::IData(_) => I_DATA,
            Chunk::Init(_) => INIT,
            Chunk::InitAck(_) => INIT_ACK,
            Chunk::Sack(_) => SACK,
            Chunk::Heartbeat(_) => HEARTBEAT,
            Chunk::HeartbeatAck(_) => HEARTBEAT_ACK,
            Chunk::Abort { .. } => ABORT,
            Chunk::Shutdown { .. } => SHUTDOWN,
            Chunk::ShutdownAck => SHUTDOWN_ACK,
            Chunk::ShutdownComplete { .. } => SHUTDOWN_COMPLETE,
            Chunk::Error(_) => ERROR,
            Chunk::CookieEcho(_) => COOKIE_ECHO,
            Chunk::CookieAck => COOKIE_ACK,
            Chunk::ForwardTsn(_) => FORWARD_TSN,
            Chunk::IForwardTsn(_) => I_FORWARD_TSN,
            Chunk::ReConfig(_) => RE_CONFIG,
            Chunk::Unknown { ty, .. } => *ty,
        }
    }

    pub fn flags(&self) -> u8 {
        match self {
            Chunk::Data(d) => d.flags.bits(),
            Chunk::IData(d) => d.flags.bits(),
            Chunk::Abort { reflected, .. } | Chunk::ShutdownComplete { reflected } => u8::from(*reflected),
            Chunk::Unknown { flags, .. } => *flags,
            _ => 0,
        }
    }

    /// The length of the value, without chunk header or padding.
    pub fn value_len(&self) -> usize {
        match self {
            Chunk::Data(d) => d.value_len(),
            Chunk::IData(d) => d.value_len(),
            Chunk::Init(i) | Chunk::InitAck(i) => i.value_len(),
            Chunk::Sack(s) => s.value_len(),
            Chunk::Heartbeat(p) | Chunk::HeartbeatAck(p) | Chunk::ReConfig(p) => p.wire_len(),
            Chunk::Abort { causes, .. } | Chunk::Error(causes) => causes.wire_len(),
            Chunk::Shutdown { .. } => 4,
            Chunk::ShutdownAck | Chunk::ShutdownComplete { .. } | Chunk::CookieAck => 0,
            Chunk::CookieEcho(c) => c.len(),
            Chunk::ForwardTsn(f) => f.value_len(),
            Chunk::IForwardTsn(f) => f.value_len(),
            Chunk::Unknown { value, .. } => value.len(),
        }
    }

    /// Writes the value into exactly `value_len()` bytes.
    pub(crate) fn write_value(&self, out: &mut [u8]) {
        match self {
            Chunk::Data(d) => d.write_value(out),
            Chunk::IData(d) => d.write_value(out),
            Chunk::Init(i) | Chunk::InitAck(i) => i.write_value(out),
            Chunk::Sack(s) => s.write_value(out),
            Chunk::Heartbeat(p) | Chunk::HeartbeatAck(p) | Chunk::ReConfig(p) => p.write(out),
            Chunk::Abort { causes, .. } | Chunk::Error(causes) => causes.write(out),
            Chunk::Shutdown { cumulative_tsn_ack } => put_u32(out, 0, cumulative_tsn_ack.0),
            Chunk::ShutdownAck | Chunk::ShutdownComplete { .. } | Chunk::CookieAck => {}
            Chunk::CookieEcho(c) => out.copy_from_slice(c),
            Chunk::ForwardTsn(f) => f.write_value(out),
            Chunk::IForwardTsn(f) => f.write_value(out),
            Chunk::Unknown { value, .. } => out.copy_from_slice(value),
        }
    }
}
