//! Generic NACK (RFC 4585 §6.2.1): transport-layer feedback naming lost
//! RTP packets as a packet id plus a bitmask of the 16 that follow.

use super::{fmt, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u16, put_u32, u16_at};

/// RFC 4585 §6.2.1: one FCI entry, PID and BLP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NackItem {
    /// PID: a lost packet's sequence number.
    pub pid: u16,
    /// BLP: bit i set means PID + i + 1 is lost too.
    pub blp: u16,
}

impl NackItem {
    /// The sequence numbers this item reports lost, PID first.
    pub fn lost(self) -> impl Iterator<Item = u16> + Clone {
        std::iter::once(self.pid).chain(
            (0..16u16)
                .filter(move |i| self.blp & (1 << i) != 0)
                .map(move |i| self.pid.wrapping_add(i + 1)),
        )
    }
}

/// Turns lost sequence numbers, in ascending (wrapping) order, into
/// the fewest NACK items that greedy packing gives; duplicates are
/// merged. Out-of-order input still yields items covering exactly the
/// listed numbers, only more of them.
pub fn lost_to_nack_items(lost: &[u16]) -> NackItems<'_> {
    NackItems { lost }
}

/// Iterator built by [`lost_to_nack_items`].
#[derive(Clone, Debug)]
pub struct NackItems<'a> {
    lost: &'a [u16],
}

impl Iterator for NackItems<'_> {
    type Item = NackItem;

    fn next(&mut self) -> Option<NackItem> {
        let (&pid, mut rest) = self.lost.split_first()?;
        let mut blp = 0u16;
        while let Some((&seq, tail)) = rest.split_first() {
            match seq.wrapping_sub(pid) {
                0 => {}
                d @ 1..=16 => blp |= 1 << (d - 1),
                _ => break,
            }
            rest = tail;
        }
        self.lost = rest;
        Some(NackItem { pid, blp })
    }
}

/// Iterator over every lost sequence number of a NACK's items.
#[derive(Clone, Debug)]
pub struct NackLost<'a> {
    fci: &'a [u8],
    item: Option<NackItem>,
    bit: u8,
}

impl Iterator for NackLost<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        loop {
            if let Some(item) = self.item {
                if self.bit == 0 {
                    self.bit = 1;
                    return Some(item.pid);
                }
                while self.bit <= 16 {
                    let b = self.bit;
                    self.bit += 1;
                    if item.blp & (1 << (b - 1)) != 0 {
                        return Some(item.pid.wrapping_add(u16::from(b)));
                    }
                }
            }
            if self.fci.len() < 4 {
                return None;
            }
            self.item = Some(NackItem {
                pid: u16_at(self.fci, 0),
                blp: u16_at(self.fci, 2),
            });
            self.fci = &self.fci[4..];
            self.bit = 0;
        }
    }
}

/// A received generic NACK (RTPFB, FMT=1), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Nack<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let (sender_ssrc, media_ssrc, fci) = raw.feedback("generic NACK")?;
        if fci.len() < 4 {
            return Err(raw.truncated("generic NACK", 12));
        }
        Ok(Nack {
            sender_ssrc,
            media_ssrc,
            fci: &fci[..fci.len() / 4 * 4],
        })
    }

    pub fn items(&self) -> impl ExactSizeIterator<Item = NackItem> + Clone + 'a {
        self.fci.chunks_exact(4).map(|c| NackItem {
            pid: u16_at(c, 0),
            blp: u16_at(c, 2),
        })
    }

    /// Every sequence number reported lost, item by item.
    pub fn lost(&self) -> NackLost<'a> {
        NackLost {
            fci: self.fci,
            item: None,
            bit: 0,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NackSource<'a> {
    Items(&'a [NackItem]),
    Lost(&'a [u16]),
}

/// Builds a generic NACK from items or straight from lost numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NackBuilder<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    source: NackSource<'a>,
}

impl<'a> NackBuilder<'a> {
    pub fn from_items(sender_ssrc: u32, media_ssrc: u32, items: &'a [NackItem]) -> Self {
        NackBuilder {
            sender_ssrc,
            media_ssrc,
            source: NackSource::Items(items),
        }
    }

    /// Packs `lost` (ascending, wrapping) with [`lost_to_nack_items`].
    pub fn from_lost(sender_ssrc: u32, media_ssrc: u32, lost: &'a [u16]) -> Self {
        NackBuilder {
            sender_ssrc,
            media_ssrc,
            source: NackSource::Lost(lost),
        }
    }

    fn item_count(&self) -> usize {
        match self.source {
            NackSource::Items(items) => items.len(),
            NackSource::Lost(lost) => lost_to_nack_items(lost).count(),
        }
    }
}

impl RtcpEncode for NackBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 + 4 * self.item_count()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.item_count() == 0 {
            return Err(Error::InvalidInput {
                what: "generic NACK",
                reason: "RFC 4585 §6.2.1 requires at least one item",
            });
        }
        let len = self.encoded_len();
        write_header(buf, fmt::NACK, packet_type::RTPFB, len)?;
        put_u32(buf, 4, self.sender_ssrc);
        put_u32(buf, 8, self.media_ssrc);
        let mut write = |i: usize, item: NackItem| {
            put_u16(buf, 12 + 4 * i, item.pid);
            put_u16(buf, 14 + 4 * i, item.blp);
        };
        match self.source {
            NackSource::Items(items) => items.iter().enumerate().for_each(|(i, it)| write(i, *it)),
            NackSource::Lost(lost) => lost_to_nack_items(lost).enumerate().for_each(|(i, it)| write(i, it)),
        }
        Ok(len)
    }
}
