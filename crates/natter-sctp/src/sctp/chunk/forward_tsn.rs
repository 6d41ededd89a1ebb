//! FORWARD TSN (RFC 3758 §3.2) and I-FORWARD-TSN (RFC 8260 §2.3): the
//! sender abandoned everything up to a TSN (partial reliability).

use crate::sctp::error::WireError;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{put_u16, put_u32, u16_at, u32_at, FixedEntry, FixedList};

/// RFC 3758 §3.2: the largest SSN skipped on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedStream {
    pub stream: u16,
    pub ssn: u16,
}

impl FixedEntry for SkippedStream {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Self {
        SkippedStream {
            stream: u16_at(b, 0),
            ssn: u16_at(b, 2),
        }
    }
    fn write(&self, out: &mut [u8]) {
        put_u16(out, 0, self.stream);
        put_u16(out, 2, self.ssn);
    }
}

/// RFC 8260 §2.3: the largest MID skipped on a stream, ordered or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedMessage {
    pub stream: u16,
    pub unordered: bool,
    pub mid: u32,
}

impl FixedEntry for SkippedMessage {
    const LEN: usize = 8;
    fn read(b: &[u8]) -> Self {
        SkippedMessage {
            stream: u16_at(b, 0),
            unordered: u16_at(b, 2) & 1 != 0,
            mid: u32_at(b, 4),
        }
    }
    fn write(&self, out: &mut [u8]) {
        put_u16(out, 0, self.stream);
        put_u16(out, 2, u16::from(self.unordered));
        put_u32(out, 4, self.mid);
    }
}

/// A FORWARD TSN (entries [`SkippedStream`]) or I-FORWARD-TSN (entries
/// [`SkippedMessage`]) chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardTsn<'a, T: FixedEntry> {
    pub new_cumulative_tsn: Tsn,
    pub skipped: FixedList<'a, T>,
}

impl<'a, T: FixedEntry> ForwardTsn<'a, T> {
    pub(crate) fn parse(ty: u8, v: &'a [u8]) -> Result<Self, WireError> {
        if v.len() < 4 {
            return Err(WireError::Chunk {
                ty,
                what: "shorter than its 8-byte fixed part",
            });
        }
        let skipped = FixedList::whole(&v[4..]).ok_or(WireError::Chunk {
            ty,
            what: "a partial stream entry",
        })?;
        Ok(ForwardTsn {
            new_cumulative_tsn: Tsn(u32_at(v, 0)),
            skipped,
        })
    }

    pub(crate) fn value_len(&self) -> usize {
        4 + self.skipped.wire_len()
    }

    pub(crate) fn write_value(&self, out: &mut [u8]) {
        put_u32(out, 0, self.new_cumulative_tsn.0);
        self.skipped.write(&mut out[4..]);
    }
}
