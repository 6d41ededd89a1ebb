//! Full intra request (RFC 5104 §4.3.1).

use super::{fmt, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u32, u32_at};

/// RFC 5104 §4.3.1.1: one FCI entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FirEntry {
    /// The media sender asked for a decoder refresh point.
    pub ssrc: u32,
    /// Command sequence number, incremented per new request to that SSRC.
    pub seq_nr: u8,
}

/// A received FIR (PSFB, FMT=4), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fir<'a> {
    pub sender_ssrc: u32,
    /// RFC 5104 §4.3.1.2: unused, 0.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Fir<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let (sender_ssrc, media_ssrc, fci) = raw.feedback("FIR")?;
        if fci.len() < 8 {
            return Err(raw.truncated("FIR", 16));
        }
        Ok(Fir {
            sender_ssrc,
            media_ssrc,
            fci: &fci[..fci.len() / 8 * 8],
        })
    }

    pub fn entries(&self) -> impl ExactSizeIterator<Item = FirEntry> + Clone + 'a {
        self.fci.chunks_exact(8).map(|c| FirEntry {
            ssrc: u32_at(c, 0),
            seq_nr: c[4],
        })
    }
}

/// Builds a FIR; the media source field is written 0.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FirBuilder<'a> {
    pub sender_ssrc: u32,
    /// At least one.
    pub entries: &'a [FirEntry],
}

impl RtcpEncode for FirBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 + 8 * self.entries.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.entries.is_empty() {
            return Err(Error::InvalidInput {
                what: "FIR",
                reason: "RFC 5104 §4.3.1 requires at least one entry",
            });
        }
        let len = self.encoded_len();
        write_header(buf, fmt::FIR, packet_type::PSFB, len)?;
        put_u32(buf, 4, self.sender_ssrc);
        put_u32(buf, 8, 0);
        for (i, e) in self.entries.iter().enumerate() {
            let at = 12 + 8 * i;
            put_u32(buf, at, e.ssrc);
            buf[at + 4] = e.seq_nr;
            buf[at + 5..at + 8].fill(0);
        }
        Ok(len)
    }
}
