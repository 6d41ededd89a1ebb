//! RFC 8656 §12: ChannelData messages, a 4-byte header (channel number
//! and length) in front of application data.

use crate::error::Error;

/// RFC 8656 §12: ChannelData header length.
pub const CHANNEL_DATA_HEADER_LEN: usize = 4;

/// RFC 8656 §12: the channel numbers a client picks from, 0x4000
/// through 0x4FFF.
pub const CHANNEL_NUMBERS: std::ops::RangeInclusive<u16> = 0x4000..=0x4FFF;

/// RFC 5766 §11: the wider range of the first TURN specification,
/// 0x4000 through 0x7FFF, which clients still use (coturn's among them).
/// A server accepts it; RFC 8656 §12 reserved the upper part for demux
/// with other protocols, which a TURN port does not carry.
pub const LEGACY_CHANNEL_NUMBERS: std::ops::RangeInclusive<u16> = 0x4000..=0x7FFF;

/// A ChannelData message borrowing the received bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelData<'a> {
    pub number: u16,
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Decodes a message at the start of `bytes`; bytes past its length
    /// (padding, RFC 8656 §12.5) are ignored.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < CHANNEL_DATA_HEADER_LEN {
            return Err(Error::InvalidChannelData("shorter than the 4-byte header"));
        }
        let number = u16::from_be_bytes([bytes[0], bytes[1]]);
        if !LEGACY_CHANNEL_NUMBERS.contains(&number) {
            return Err(Error::InvalidChannelData("channel number outside 0x4000..=0x7FFF"));
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        let data = bytes
            .get(CHANNEL_DATA_HEADER_LEN..CHANNEL_DATA_HEADER_LEN + len)
            .ok_or(Error::InvalidChannelData("length runs past the end"))?;
        Ok(ChannelData { number, data })
    }

    /// Length on the wire; over TCP, TLS and DTLS it is padded to a
    /// multiple of 4 (RFC 8656 §12.5).
    pub fn encoded_len(data_len: usize, padded: bool) -> usize {
        let len = CHANNEL_DATA_HEADER_LEN + data_len;
        if padded {
            crate::message::padded_len(len)
        } else {
            len
        }
    }

    /// Writes the header into `out[..4]`; the data must already be at
    /// `out[4..4 + data_len]`, so a relay can receive in place and add
    /// the header without a copy. Returns the length to send.
    pub fn encode_header(out: &mut [u8], number: u16, data_len: usize, padded: bool) -> Result<usize, Error> {
        let total = Self::encoded_len(data_len, padded);
        let len = u16::try_from(data_len).map_err(|_| Error::MessageTooLong)?;
        if out.len() < total {
            return Err(Error::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        out[..2].copy_from_slice(&number.to_be_bytes());
        out[2..4].copy_from_slice(&len.to_be_bytes());
        out[CHANNEL_DATA_HEADER_LEN + data_len..total].fill(0);
        Ok(total)
    }

    /// Writes a whole message into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8], padded: bool) -> Result<usize, Error> {
        let total = Self::encoded_len(self.data.len(), padded);
        if out.len() < total {
            return Err(Error::BufferTooSmall {
                needed: total,
                available: out.len(),
            });
        }
        out[CHANNEL_DATA_HEADER_LEN..CHANNEL_DATA_HEADER_LEN + self.data.len()].copy_from_slice(self.data);
        Self::encode_header(out, self.number, self.data.len(), padded)
    }
}
