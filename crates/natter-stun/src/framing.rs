//! Telling STUN from ChannelData from other traffic on one port
//! (RFC 7983 §7), and finding message boundaries in a TCP or TLS byte
//! stream (RFC 8656 §12.5, RFC 8489 §6.2.2).

use crate::channel_data::{ChannelData, CHANNEL_DATA_HEADER_LEN};
use crate::error::Error;
use crate::message::{decode_header, HEADER_LEN};

/// What the first byte of a packet says it is (RFC 7983 §7).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacketKind {
    /// 0..=3
    Stun,
    /// 64..=79 (RFC 7983), and up to 127 for the channel numbers of
    /// RFC 5766 (see [`crate::LEGACY_CHANNEL_NUMBERS`]).
    ChannelData,
    /// 20..=63: DTLS.
    Dtls,
    /// 128..=191: RTP and RTCP.
    Rtp,
    Other,
}

impl PacketKind {
    pub fn of(packet: &[u8]) -> Self {
        match packet.first() {
            Some(0..=3) => PacketKind::Stun,
            Some(20..=63) => PacketKind::Dtls,
            Some(64..=127) => PacketKind::ChannelData,
            Some(128..=191) => PacketKind::Rtp,
            _ => PacketKind::Other,
        }
    }
}

/// The length of the first whole STUN or ChannelData frame at the start
/// of a stream buffer, `Ok(None)` if more bytes are needed, or an error
/// if the stream holds neither (the connection should then be closed).
/// ChannelData frames over a stream are padded to 4 bytes.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    match PacketKind::of(buf) {
        PacketKind::Stun => {
            if buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let (_, len, _) = decode_header(buf)?;
            Ok(Some(HEADER_LEN + len).filter(|&n| n <= buf.len()))
        }
        PacketKind::ChannelData => {
            if buf.len() < CHANNEL_DATA_HEADER_LEN {
                return Ok(None);
            }
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            let total = ChannelData::encoded_len(len, true);
            // A first byte of 0x40..=0x7F is always a valid channel number.
            Ok(Some(total).filter(|&n| n <= buf.len()))
        }
        _ if buf.is_empty() => Ok(None),
        _ => Err(Error::NotStun(buf[0])),
    }
}
