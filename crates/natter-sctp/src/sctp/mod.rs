//! natter's own SCTP (RFC 9260 as RFC 8261 runs it over DTLS: one path,
//! no multi-homing), sans-IO, under every data channel
//! ([`SctpTransport`](crate::SctpTransport)).
//!
//! - [`packet`]: the common header, CRC32c (RFC 9260 §6.8) and zero
//!   checksums (RFC 9653), chunk iteration, and [`PacketWriter`] into a
//!   caller's buffer.
//! - [`chunk`]: every chunk WebRTC uses, parsed as borrowed views and
//!   written from the same values: DATA, INIT, INIT ACK, SACK, HEARTBEAT
//!   and its ACK, ABORT, SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE, ERROR,
//!   COOKIE ECHO, COOKIE ACK (RFC 9260 §3.3), FORWARD TSN (RFC 3758),
//!   RE-CONFIG (RFC 6525), I-DATA and I-FORWARD-TSN (RFC 8260); unknown
//!   types kept for [`UnknownAction`] (§3.2).
//! - [`param`] and [`cause`]: parameters (§3.2.1, RFC 5061 §4.2.7,
//!   RFC 3758 §3.1, RFC 6525 §4, RFC 9653 §4) and error causes (§3.3.10).
//! - [`tsn`]: serial number arithmetic (RFC 1982).
//! - [`received`] and [`reassembly`]: the receiver's TSN record (SACK
//!   gap blocks, duplicates) and user messages rebuilt per stream.
//! - [`cookie`], [`rto`], [`association`]: the sans-IO association
//!   (setup, INIT collision, DATA/SACK transfer, retransmission,
//!   congestion control, partial reliability, stream reset, the stream
//!   scheduler).

pub mod association;
pub mod cause;
pub mod chunk;
pub mod cookie;
pub mod error;
pub mod packet;
pub mod param;
pub mod reassembly;
pub mod received;
pub mod rto;
pub mod tsn;
pub mod wire;

pub use error::{BufferTooSmall, WireError};
pub use packet::{ChecksumMode, CommonHeader, Packet, PacketWriter};
pub use tsn::Tsn;
pub use wire::UnknownAction;
