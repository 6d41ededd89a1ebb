//! RTCP (RFC 3550 §6): compound datagrams, every packet type a WebRTC
//! peer exchanges, as borrowed views for parsing and builders that
//! encode into a caller's buffer.
//!
//! - [`Compound`] walks a datagram's packets (RFC 3550 §6.1, Appendix
//!   A.2), accepting reduced-size RTCP (RFC 5506 §3.1) that does not
//!   start with SR or RR; [`RtcpPacket::parse`] types each one.
//! - Every builder implements [`RtcpEncode`]; [`CompoundWriter`]
//!   concatenates them, and a single feedback packet may be encoded alone
//!   (RFC 5506).

mod app;
mod bye;
mod compound;
mod fir;
mod nack;
mod pli;
mod remb;
mod rr;
mod sdes;
mod sr;
mod twcc;
mod xr;

pub use app::App;
pub use bye::{Bye, ByeBuilder};
pub use compound::{is_rtcp, Compound, CompoundWriter, RawPackets, RtcpPacket, RtcpPackets};
pub use fir::{Fir, FirBuilder, FirEntry};
pub use nack::{lost_to_nack_items, Nack, NackBuilder, NackItem, NackItems, NackLost};
pub use pli::Pli;
pub use remb::{Remb, RembBuilder, REMB_IDENTIFIER};
pub use rr::{ReceiverReport, ReceiverReportBuilder};
pub use sdes::{Cname, Sdes, SdesBuilder, SdesChunk, SdesChunkBuilder, SdesItem, SdesItemType, SdesItems};
pub use sr::{ReportBlock, SenderInfo, SenderReport, SenderReportBuilder};
pub use twcc::{
    PacketStatusChunk, StatusSymbol, TransportFeedback, TransportFeedbackBuilder, TwccChunks, TwccPacket, TwccPackets,
    TWCC_DELTA_TICK_US, TWCC_REFERENCE_TICK_US,
};
pub use xr::{Dlrr, DlrrItem, ExtendedReport, ExtendedReportBuilder, XrBlock, XrBlocks, XrReport, BT_DLRR, BT_RRTR};

use crate::error::Error;
use crate::wire::{check_room, put_u16, u32_at};

/// RFC 3550 §6.4.1: version, padding, count, packet type and length.
pub const HEADER_LEN: usize = 4;
/// The length field counts 32-bit words minus one in 16 bits.
pub const MAX_PACKET_LEN: usize = 4 * (u16::MAX as usize + 1);
/// The 5-bit count field (RC, SC, FMT, subtype).
pub const MAX_COUNT: usize = 31;

/// RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611 §2).
pub mod packet_type {
    /// RFC 3550 §6.4.1.
    pub const SR: u8 = 200;
    /// RFC 3550 §6.4.2.
    pub const RR: u8 = 201;
    /// RFC 3550 §6.5.
    pub const SDES: u8 = 202;
    /// RFC 3550 §6.6.
    pub const BYE: u8 = 203;
    /// RFC 3550 §6.7.
    pub const APP: u8 = 204;
    /// RFC 4585 §6.1: transport layer feedback.
    pub const RTPFB: u8 = 205;
    /// RFC 4585 §6.1: payload-specific feedback.
    pub const PSFB: u8 = 206;
    /// RFC 3611 §2.
    pub const XR: u8 = 207;
}

/// Feedback message types, carried in the count field (RFC 4585 §6.1).
pub mod fmt {
    /// RFC 4585 §6.2.1: RTPFB generic NACK.
    pub const NACK: u8 = 1;
    /// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1: RTPFB.
    pub const TRANSPORT_CC: u8 = 15;
    /// RFC 4585 §6.3.1: PSFB picture loss indication.
    pub const PLI: u8 = 1;
    /// RFC 5104 §4.3.1: PSFB full intra request.
    pub const FIR: u8 = 4;
    /// RFC 4585 §6.4: PSFB application layer feedback (REMB).
    pub const AFB: u8 = 15;
}

/// Writes an RTCP packet's own bytes at the start of a caller's buffer.
///
/// Builders implement it; so does [`Pli`], whose view and builder are
/// the same value. A single packet written alone is a reduced-size RTCP
/// packet (RFC 5506).
pub trait RtcpEncode {
    /// Bytes [`RtcpEncode::encode`] writes.
    fn encoded_len(&self) -> usize;
    /// Writes the packet and returns its length.
    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error>;
}

/// One packet of a compound datagram, framing checked, padding removed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawRtcp<'a> {
    /// Where the packet starts in the datagram.
    pub offset: usize,
    /// P: the packet carried padding (already stripped from `body`).
    pub padding: bool,
    /// The 5-bit count field: RC, SC, FMT or APP subtype.
    pub count: u8,
    pub packet_type: u8,
    /// The bytes after the 4-byte header, padding excluded.
    pub body: &'a [u8],
    /// The whole packet as received, header and padding included.
    pub bytes: &'a [u8],
}

impl<'a> RawRtcp<'a> {
    /// Parses the packet at the start of `data`, which starts at
    /// `offset` in its datagram; returns it and its length.
    pub fn parse(data: &'a [u8], offset: usize) -> Result<(Self, usize), Error> {
        if data.len() < HEADER_LEN {
            return Err(Error::RtcpTooShort {
                offset,
                available: data.len(),
            });
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(Error::RtcpVersion { offset, version });
        }
        let len = 4 * (usize::from(crate::wire::u16_at(data, 2)) + 1);
        if len > data.len() {
            return Err(Error::RtcpLengthOverrun {
                offset,
                declared: len,
                available: data.len(),
            });
        }
        let padding = data[0] & 0x20 != 0;
        let mut end = len;
        if padding {
            let count = data[len - 1];
            if count == 0 || usize::from(count) > len - HEADER_LEN {
                return Err(Error::RtcpPadding { offset, count, len });
            }
            end -= usize::from(count);
        }
        Ok((
            RawRtcp {
                offset,
                padding,
                count: data[0] & 0x1F,
                packet_type: data[1],
                body: &data[HEADER_LEN..end],
                bytes: &data[..len],
            },
            len,
        ))
    }

    pub(crate) fn truncated(&self, packet: &'static str, needed: usize) -> Error {
        Error::RtcpTruncated {
            packet,
            offset: self.offset,
            needed: HEADER_LEN + needed,
            len: HEADER_LEN + self.body.len(),
        }
    }

    pub(crate) fn invalid(&self, packet: &'static str, reason: &'static str) -> Error {
        Error::InvalidRtcp {
            packet,
            offset: self.offset,
            reason,
        }
    }

    /// RFC 4585 §6.1: SSRC of packet sender, SSRC of media source, FCI.
    pub(crate) fn feedback(&self, packet: &'static str) -> Result<(u32, u32, &'a [u8]), Error> {
        if self.body.len() < 8 {
            return Err(self.truncated(packet, 8));
        }
        Ok((u32_at(self.body, 0), u32_at(self.body, 4), &self.body[8..]))
    }
}

/// Checks room for a packet of `len` bytes (a multiple of 4) and writes
/// its header: version 2, no padding, `count`, `packet_type`, length.
pub(crate) fn write_header(buf: &mut [u8], count: u8, packet_type: u8, len: usize) -> Result<(), Error> {
    debug_assert!(len % 4 == 0 && len >= HEADER_LEN);
    if len > MAX_PACKET_LEN {
        return Err(Error::TooMany {
            what: "RTCP packet bytes",
            count: len,
            max: MAX_PACKET_LEN,
        });
    }
    check_room(buf.len(), len)?;
    buf[0] = 0x80 | (count & 0x1F);
    buf[1] = packet_type;
    // len <= MAX_PACKET_LEN, so the word count fits 16 bits.
    put_u16(buf, 2, (len / 4 - 1) as u16);
    Ok(())
}

/// Fails unless a list fits the 5-bit count field.
pub(crate) fn check_count(what: &'static str, count: usize) -> Result<u8, Error> {
    if count > MAX_COUNT {
        return Err(Error::TooMany {
            what,
            count,
            max: MAX_COUNT,
        });
    }
    Ok(count as u8)
}
