//! Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb-03
//! §2.2): application layer feedback (PSFB, FMT=15) with the unique
//! identifier "REMB".

use super::{fmt, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{put_u32, u32_at};

/// draft-alvestrand-rmcat-remb-03 §2.2: the first four FCI bytes.
pub const REMB_IDENTIFIER: [u8; 4] = *b"REMB";
const MANTISSA_MAX: u64 = (1 << 18) - 1;

/// A received REMB, borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Remb<'a> {
    pub sender_ssrc: u32,
    /// Always 0 by the draft.
    pub media_ssrc: u32,
    /// BR Exp, 6 bits.
    pub exponent: u8,
    /// BR Mantissa, 18 bits.
    pub mantissa: u32,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    /// Whether an AFB packet's FCI starts with "REMB".
    pub fn is_remb(raw: &RawRtcp<'_>) -> bool {
        raw.body.get(8..12) == Some(&REMB_IDENTIFIER[..])
    }

    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let (sender_ssrc, media_ssrc, fci) = raw.feedback("REMB")?;
        if fci.len() < 8 {
            return Err(raw.truncated("REMB", 16));
        }
        if fci[..4] != REMB_IDENTIFIER {
            return Err(raw.invalid("REMB", "unique identifier is not \"REMB\""));
        }
        let n = usize::from(fci[4]);
        let Some(ssrcs) = fci.get(8..8 + 4 * n) else {
            return Err(raw.truncated("REMB", 16 + 4 * n));
        };
        Ok(Remb {
            sender_ssrc,
            media_ssrc,
            exponent: fci[5] >> 2,
            mantissa: (u32::from(fci[5] & 3) << 16) | (u32::from(fci[6]) << 8) | u32::from(fci[7]),
            ssrcs,
        })
    }

    /// mantissa × 2^exp bits per second, saturating at `u64::MAX`.
    pub fn bitrate_bps(&self) -> u64 {
        let v = u128::from(self.mantissa) << self.exponent;
        u64::try_from(v).unwrap_or(u64::MAX)
    }

    /// The media sources the estimate applies to.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + Clone + 'a {
        self.ssrcs.chunks_exact(4).map(|c| u32_at(c, 0))
    }
}

/// Builds a REMB. The bitrate is rounded down to what an 18-bit
/// mantissa and 6-bit exponent hold, so the estimate is never raised.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct RembBuilder<'a> {
    pub sender_ssrc: u32,
    pub bitrate_bps: u64,
    /// At most 255.
    pub ssrcs: &'a [u32],
}

impl RembBuilder<'_> {
    /// The (exponent, mantissa) pair written for `bitrate_bps`.
    pub fn exponent_mantissa(bitrate_bps: u64) -> (u8, u32) {
        let mut exp = 0u8;
        while bitrate_bps >> exp > MANTISSA_MAX {
            exp += 1;
        }
        (exp, (bitrate_bps >> exp) as u32)
    }
}

impl RtcpEncode for RembBuilder<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 16 + 4 * self.ssrcs.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let Ok(n) = u8::try_from(self.ssrcs.len()) else {
            return Err(Error::TooMany {
                what: "REMB SSRCs",
                count: self.ssrcs.len(),
                max: 255,
            });
        };
        let len = self.encoded_len();
        write_header(buf, fmt::AFB, packet_type::PSFB, len)?;
        put_u32(buf, 4, self.sender_ssrc);
        put_u32(buf, 8, 0);
        buf[12..16].copy_from_slice(&REMB_IDENTIFIER);
        let (exp, mantissa) = Self::exponent_mantissa(self.bitrate_bps);
        put_u32(buf, 16, (u32::from(n) << 24) | (u32::from(exp) << 18) | mantissa);
        for (i, s) in self.ssrcs.iter().enumerate() {
            put_u32(buf, 20 + 4 * i, *s);
        }
        Ok(len)
    }
}
