//! SACK (RFC 9260 §3.3.4): the cumulative ack, gap ack blocks and
//! duplicate TSNs.

use crate::sctp::error::WireError;
use crate::sctp::tsn::Tsn;
use crate::sctp::wire::{put_u16, put_u32, u16_at, u32_at, FixedEntry, FixedList};

use super::SACK;

/// TSNs `cumulative_tsn_ack + start ..= cumulative_tsn_ack + end` arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapAckBlock {
    pub start: u16,
    pub end: u16,
}

impl FixedEntry for GapAckBlock {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Self {
        GapAckBlock {
            start: u16_at(b, 0),
            end: u16_at(b, 2),
        }
    }
    fn write(&self, out: &mut [u8]) {
        put_u16(out, 0, self.start);
        put_u16(out, 2, self.end);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sack<'a> {
    pub cumulative_tsn_ack: Tsn,
    /// Advertised receiver window credit, in bytes.
    pub a_rwnd: u32,
    pub gap_blocks: FixedList<'a, GapAckBlock>,
    pub duplicates: FixedList<'a, u32>,
}

impl<'a> Sack<'a> {
    pub(crate) fn parse(v: &'a [u8]) -> Result<Self, WireError> {
        let bad = |what| WireError::Chunk { ty: SACK, what };
        if v.len() < 12 {
            return Err(bad("shorter than its 16-byte fixed part"));
        }
        let (gaps, rest) =
            FixedList::take(&v[12..], usize::from(u16_at(v, 8))).ok_or(bad("gap ack blocks overrun the chunk"))?;
        let (duplicates, rest) =
            FixedList::take(rest, usize::from(u16_at(v, 10))).ok_or(bad("duplicate TSNs overrun the chunk"))?;
        if !rest.is_empty() {
            return Err(bad("bytes after the duplicate TSNs"));
        }
        Ok(Sack {
            cumulative_tsn_ack: Tsn(u32_at(v, 0)),
            a_rwnd: u32_at(v, 4),
            gap_blocks: gaps,
            duplicates,
        })
    }

    /// The TSN ranges the gap blocks acknowledge, as (first, last).
    pub fn gap_ranges(&self) -> impl Iterator<Item = (Tsn, Tsn)> + 'a {
        let base = self.cumulative_tsn_ack;
        self.gap_blocks
            .iter()
            .map(move |g| (base.plus(u32::from(g.start)), base.plus(u32::from(g.end))))
    }

    pub(crate) fn value_len(&self) -> usize {
        12 + self.gap_blocks.wire_len() + self.duplicates.wire_len()
    }

    pub(crate) fn write_value(&self, out: &mut [u8]) {
        put_u32(out, 0, self.cumulative_tsn_ack.0);
        put_u32(out, 4, self.a_rwnd);
        // Both counts are bounded by the chunk's u16 length.
        put_u16(out, 8, self.gap_blocks.len() as u16);
        put_u16(out, 10, self.duplicates.len() as u16);
        let gaps_end = 12 + self.gap_blocks.wire_len();
        self.gap_blocks.write(&mut out[12..gaps_end]);
        self.duplicates.write(&mut out[gaps_end..]);
    }
}
