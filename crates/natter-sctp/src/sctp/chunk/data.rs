//! User data: DATA (RFC 9260 §3.3.1) and I-DATA (RFC 8260 §2.1).

use crate::sctp::error::WireError;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{put_u16, put_u32, u16_at, u32_at};

use super::{DATA, I_DATA};

/// The flags of DATA and I-DATA (RFC 9260 §3.3.1, RFC 7053 for I).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DataFlags {
    /// I: the receiver should SACK at once (RFC 7053).
    pub immediate: bool,
    /// U: delivered regardless of stream sequence.
    pub unordered: bool,
    /// B: the first fragment of a user message.
    pub beginning: bool,
    /// E: the last fragment of a user message.
    pub end: bool,
}

impl DataFlags {
    pub(crate) fn from_bits(b: u8) -> Self {
        DataFlags {
            immediate: b & 8 != 0,
            unordered: b & 4 != 0,
            beginning: b & 2 != 0,
            end: b & 1 != 0,
        }
    }

    pub(crate) fn bits(self) -> u8 {
        u8::from(self.immediate) << 3
            | u8::from(self.unordered) << 2
            | u8::from(self.beginning) << 1
            | u8::from(self.end)
    }
}

/// A DATA chunk (RFC 9260 §3.3.1): one fragment of a user message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Data<'a> {
    pub flags: DataFlags,
    pub tsn: Tsn,
    pub stream: u16,
    /// Stream Sequence Number: the message's place in its stream.
    pub ssn: u16,
    /// Payload Protocol Identifier (RFC 8831 §8 for WebRTC).
    pub ppid: u32,
    pub payload: &'a [u8],
}

impl<'a> Data<'a> {
    pub(crate) fn parse(flags: u8, v: &'a [u8]) -> Result<Self, WireError> {
        if v.len() < 12 {
            return Err(WireError::Chunk {
                ty: DATA,
                what: "shorter than its 16-byte header",
            });
        }
        Ok(Data {
            flags: DataFlags::from_bits(flags),
            tsn: Tsn(u32_at(v, 0)),
            stream: u16_at(v, 4),
            ssn: u16_at(v, 6),
            ppid: u32_at(v, 8),
            payload: &v[12..],
        })
    }

    pub(crate) fn value_len(&self) -> usize {
        12 + self.payload.len()
    }

    pub(crate) fn write_value(&self, out: &mut [u8]) {
        put_u32(out, 0, self.tsn.0);
        put_u16(out, 4, self.stream);
        put_u16(out, 6, self.ssn);
        put_u32(out, 8, self.ppid);
        out[12..].copy_from_slice(self.payload);
    }
}

/// An I-DATA chunk (RFC 8260 §2.1): a fragment identified by message id
/// and fragment sequence number, so messages of different streams may
/// interleave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IData<'a> {
    pub flags: DataFlags,
    pub tsn: Tsn,
    pub stream: u16,
    /// Message Identifier: the message's place in its stream.
    pub mid: u32,
    /// The PPID in the first fragment (B set), the Fragment Sequence
    /// Number in the others; see [`IData::ppid`] and [`IData::fsn`].
    pub ppid_or_fsn: u32,
    pub payload: &'a [u8],
}

impl<'a> IData<'a> {
    pub(crate) fn parse(flags: u8, v: &'a [u8]) -> Result<Self, WireError> {
        if v.len() < 16 {
            return Err(WireError::Chunk {
                ty: I_DATA,
                what: "shorter than its 20-byte header",
            });
        }
        Ok(IData {
            flags: DataFlags::from_bits(flags),
            tsn: Tsn(u32_at(v, 0)),
            stream: u16_at(v, 4),
            mid: u32_at(v, 8),
            ppid_or_fsn: u32_at(v, 12),
            payload: &v[16..],
        })
    }

    /// RFC 8260 §2.1: the PPID travels only in the first fragment.
    pub fn ppid(&self) -> Option<u32> {
        self.flags.beginning.then_some(self.ppid_or_fsn)
    }

    /// RFC 8260 §2.1: the first fragment's FSN is 0 implicitly.
    pub fn fsn(&self) -> u32 {
        if self.flags.beginning {
            0
        } else {
            self.ppid_or_fsn
        }
    }

    pub(crate) fn value_len(&self) -> usize {
        16 + self.payload.len()
    }

    pub(crate) fn write_value(&self, out: &mut [u8]) {
        put_u32(out, 0, self.tsn.0);
        put_u16(out, 4, self.stream);
        put_u16(out, 6, 0);
        put_u32(out, 8, self.mid);
        put_u32(out, 12, self.ppid_or_fsn);
        out[16..].copy_from_slice(self.payload);
    }
}
