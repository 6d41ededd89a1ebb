//! Goodbye (RFC 3550 §6.6).

use super::{check_count, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::{padded4, put_u32, u32_at};

/// A received BYE (PT=203), borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// The reason for leaving, if given (UTF-8 by RFC, not checked).
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let b = raw.body;
        let n = 4 * usize::from(raw.count);
        if b.len() < n {
            return Err(raw.truncated("BYE", n));
        }
        let reason = match b.get(n) {
            None => None,
            Some(&len) => match b.get(n + 1..n + 1 + usize::from(len)) {
                Some(text) => Some(text),
                None => return Err(raw.invalid("BYE", "reason runs past the packet")),
            },
        };
        Ok(Bye { ssrcs: &b[..n], reason })
    }

    /// The sources leaving, SC of them.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + Clone + 'a {
        self.ssrcs.chunks_exact(4).map(|c| u32_at(c, 0))
    }
}

/// Builds a BYE.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ByeBuilder<'a> {
    /// At most 31.
    pub ssrcs: &'a [u32],
    /// At most 255 bytes.
    pub reason: Option<&'a [u8]>,
}

impl RtcpEncode for ByeBuilder<'_> {
    fn encoded_len(&self) -> usize {
        let reason = self.reason.map_or(0, |r| 1 + r.len());
        HEADER_LEN + padded4(4 * self.ssrcs.len() + reason)
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let count = check_count("BYE sources", self.ssrcs.len())?;
        if let Some(r) = self.reason {
            if r.len() > 255 {
                return Err(Error::TooMany {
                    what: "BYE reason bytes",
                    count: r.len(),
                    max: 255,
                });
            }
        }
        let len = self.encoded_len();
        write_header(buf, count, packet_type::BYE, len)?;
        let mut at = HEADER_LEN;
        for s in self.ssrcs {
            put_u32(buf, at, *s);
            at += 4;
        }
        if let Some(r) = self.reason {
            buf[at] = r.len() as u8;
            buf[at + 1..at + 1 + r.len()].copy_from_slice(r);
            at += 1 + r.len();
        }
        buf[at..len].fill(0);
        Ok(len)
    }
}
