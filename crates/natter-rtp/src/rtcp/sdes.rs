//! Source description (RFC 3550 §6.5): chunks of items per SSRC/CSRC.

use super::{check_count, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{padded4, put_u32, u32_at};

/// RFC 3550 §6.5: an SDES item type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SdesItemType(pub u8);

impl SdesItemType {
    /// Ends a chunk's item list; never an item itself.
    pub const END: SdesItemType = SdesItemType(0);
    /// RFC 3550 §6.5.1: canonical end-point identifier.
    pub const CNAME: SdesItemType = SdesItemType(1);
    pub const NAME: SdesItemType = SdesItemType(2);
    pub const EMAIL: SdesItemType = SdesItemType(3);
    pub const PHONE: SdesItemType = SdesItemType(4);
    pub const LOC: SdesItemType = SdesItemType(5);
    pub const TOOL: SdesItemType = SdesItemType(6);
    pub const NOTE: SdesItemType = SdesItemType(7);
    /// RFC 3550 §6.5.8: prefix length, prefix, value.
    pub const PRIV: SdesItemType = SdesItemType(8);
}

/// One SDES item: type and value (at most 255 bytes, UTF-8 by RFC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SdesItem<'a> {
    pub kind: SdesItemType,
    pub value: &'a [u8],
}

/// One chunk: a source and its items.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    pub fn items(&self) -> SdesItems<'a> {
        SdesItems { data: self.items }
    }

    /// The value of the first item of this type.
    pub fn item(&self, kind: SdesItemType) -> Option<&'a [u8]> {
        self.items().find(|i| i.kind == kind).map(|i| i.value)
    }

    /// The CNAME (RFC 3550 §6.5.1), if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.item(SdesItemType::CNAME)
    }
}

/// Iterator over a chunk's items (validated when the packet was parsed).
#[derive(Clone, Debug)]
pub struct SdesItems<'a> {
    data: &'a [u8],
}

impl<'a> Iterator for SdesItems<'a> {
    type Item = SdesItem<'a>;

    fn next(&mut self) -> Option<SdesItem<'a>> {
        let (&kind, rest) = self.data.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let value = rest.get(..usize::from(len))?;
        self.data = &rest[usize::from(len)..];
        Some(SdesItem {
            kind: SdesItemType(kind),
            value,
        })
    }
}

/// A received SDES packet (PT=202), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let mut pos = 0;
        for _ in 0..raw.count {
            pos = next_chunk(raw.body, pos)
                .map_err(|reason| raw.invalid("SDES", reason))?
                .1;
        }
        Ok(Sdes {
            count: raw.count,
            body: raw.body,
        })
    }

    /// The chunks, SC of them.
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + Clone + 'a {
        let body = self.body;
        let mut pos = 0;
        (0..self.count).map_while(move |_| {
            let (chunk, next) = next_chunk(body, pos).ok()?;
            pos = next;
            Some(chunk)
        })
    }
}

/// RFC 3550 §6.5: parses the chunk at `pos`; returns it and where the
/// next one starts (chunks start on 32-bit boundaries).
fn next_chunk(body: &[u8], pos: usize) -> Result<(SdesChunk<'_>, usize), &'static str> {
    if body.len() < pos + 4 {
        return Err("chunk SSRC runs past the packet");
    }
    let ssrc = u32_at(body, pos);
    let start = pos + 4;
    let mut at = start;
    loop {
        let Some(&kind) = body.get(at) else {
            return Err("chunk has no terminating null item");
        };
        if kind == 0 {
            break;
        }
        let Some(&len) = body.get(at + 1) else {
            return Err("item length runs past the packet");
        };
        at += 2 + usize::from(len);
        if at > body.len() {
            return Err("item value runs past the packet");
        }
    }
    // The null octet ends the list; null octets pad to the boundary.
    let next = padded4(at + 1);
    if next > body.len() {
        return Err("chunk padding runs past the packet");
    }
    Ok((
        SdesChunk {
            ssrc,
            items: &body[start..at],
        },
        next,
    ))
}

/// A chunk to write: a source and its items.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SdesChunkBuilder<'a> {
    pub ssrc: u32,
    pub items: &'a [SdesItem<'a>],
}

impl SdesChunkBuilder<'_> {
    fn encoded_len(&self) -> usize {
        padded4(4 + self.items.iter().map(|i| 2 + i.value.len()).sum::<usize>() + 1)
    }

    fn write(&self, b: &mut [u8]) -> Result<usize, Error> {
        let len = self.encoded_len();
        put_u32(b, 0, self.ssrc);
        let mut at = 4;
        for item in self.items {
            if item.kind == SdesItemType::END {
                return Err(Error::InvalidInput {
                    what: "SDES item",
                    reason: "type 0 is END, not an item",
                });
            }
            let Ok(l) = u8::try_from(item.value.len()) else {
                return Err(Error::TooMany {
                    what: "SDES item bytes",
                    count: item.value.len(),
                    max: 255,
                });
            };
            b[at] = item.kind.0;
            b[at + 1] = l;
            b[at + 2..at + 2 + item.value.len()].copy_from_slice(item.value);
            at += 2 + item.value.len();
        }
        b[at..len].fill(0);
        Ok(len)
    }
}

/// Builds an SDES packet of any chunks and items.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SdesBuilder<'a> {
    /// At most 31.
    pub chunks: &'a [SdesChunkBuilder<'a>],
}

impl RtcpEncode for SdesBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + self.chunks.iter().map(SdesChunkBuilder::encoded_len).sum::<usize>()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let count = check_count("SDES chunks", self.chunks.len())?;
        let len = self.encoded_len();
        write_header(buf, count, packet_type::SDES, len)?;
        let mut at = HEADER_LEN;
        for chunk in self.chunks {
            at += chunk.write(&mut buf[at..len])?;
        }
        Ok(len)
    }
}

/// Builds the SDES packet every compound RTCP packet carries (RFC 3550
/// §6.1): one chunk with the CNAME item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cname<'a> {
    pub ssrc: u32,
    pub cname: &'a str,
}

impl Cname<'_> {
    fn item(&self) -> [SdesItem<'_>; 1] {
        [SdesItem {
            kind: SdesItemType::CNAME,
            value: self.cname.as_bytes(),
        }]
    }
}

impl RtcpEncode for Cname<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + padded4(4 + 2 + self.cname.len() + 1)
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let items = self.item();
        let chunks = [SdesChunkBuilder {
            ssrc: self.ssrc,
            items: &items,
        }];
        SdesBuilder { chunks: &chunks }.encode(buf)
    }
}
