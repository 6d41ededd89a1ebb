//! The errors of this crate: one for DCEP's codec, one for the transport.

use crate::channel::ChannelId;
use crate::sctp::association::SnapError;

/// A DCEP message that could not be parsed or encoded (RFC 8832 §5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DcepError {
    #[error("DCEP message is empty")]
    Empty,
    #[error("DCEP message type 0x{0:02x} is not OPEN (0x03) or ACK (0x02)")]
    UnknownMessageType(u8),
    #[error("DCEP channel type 0x{0:02x} is unassigned or reserved")]
    UnknownChannelType(u8),
    #[error("DCEP message needs {needed} bytes but has {actual}")]
    Truncated { needed: usize, actual: usize },
    #[error("DCEP message of {expected} bytes is followed by more: {actual} in all")]
    TrailingBytes { expected: usize, actual: usize },
    #[error("DCEP OPEN {field} is not UTF-8")]
    InvalidUtf8 { field: &'static str },
    #[error("DCEP OPEN {field} of {len} bytes does not fit its 16-bit length")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("buffer too small: DCEP message needs {needed} bytes")]
    BufferTooSmall { needed: usize },
}

/// Why a command to the [`SctpTransport`](crate::SctpTransport) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("no data channel with stream id {0}")]
    UnknownChannel(ChannelId),
    #[error("data channel {0} is not open")]
    ChannelNotOpen(ChannelId),
    #[error("stream id {0} is already used by a data channel")]
    StreamIdInUse(ChannelId),
    #[error("stream id 65535 is reserved (W3C WebRTC §6.2)")]
    ReservedStreamId,
    #[error("no free stream id of this side's parity (RFC 8832 §6)")]
    NoFreeStreamId,
    #[error("a channel may limit retransmissions or lifetime, not both")]
    ConflictingReliability,
    #[error("{field} of {len} bytes is longer than 65535 bytes")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("message of {len} bytes exceeds the maximum message size of {max} bytes")]
    MessageTooLarge { len: usize, max: usize },
    #[error("channel {channel} has {buffered} bytes buffered; {len} more would exceed {max}")]
    SendBufferFull {
        channel: ChannelId,
        buffered: usize,
        len: usize,
        max: usize,
    },
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    #[error("the SCTP association is not established")]
    NotEstablished,
    #[error("the SCTP association is closed")]
    Closed,
    #[error("the peer does not support partial reliability (RFC 3758), which the channel needs")]
    PartialReliabilityNotSupported,
    #[error("the system's random number generator failed")]
    Random,
    #[error(transparent)]
    Dcep(#[from] DcepError),
    /// The INITs of [`SctpConfig::snap`](crate::SctpConfig::snap) cannot
    /// set an association up.
    #[error(transparent)]
    Snap(#[from] SnapError),
}
