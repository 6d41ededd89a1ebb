//! Application-defined packet (RFC 3550 §6.7).

use super::{packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN, MAX_COUNT};
use crate::error::Error;
use crate::wire::{put_u32, u32_at};

/// An APP packet (PT=204): both the received view and the builder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct App<'a> {
    /// The 5-bit subtype in the count field.
    pub subtype: u8,
    pub ssrc: u32,
    /// Four ASCII characters naming the application.
    pub name: [u8; 4],
    /// Application data; a multiple of 4 bytes when written.
    pub data: &'a [u8],
}

impl<'a> App<'a> {
    pub fn parse(raw: &RawRtcp<'a>) -> Result<Self, Error> {
        let b = raw.body;
        if b.len() < 8 {
            return Err(raw.truncated("APP", 8));
        }
        Ok(App {
            subtype: raw.count,
            ssrc: u32_at(b, 0),
            name: [b[4], b[5], b[6], b[7]],
            data: &b[8..],
        })
    }
}

impl RtcpEncode for App<'_> {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 + self.data.len()
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if usize::from(self.subtype) > MAX_COUNT {
            return Err(Error::InvalidInput {
                what: "APP packet",
                reason: "subtype is more than 5 bits",
            });
        }
        if self.data.len() % 4 != 0 {
            return Err(Error::InvalidInput {
                what: "APP packet",
                reason: "data is not a multiple of 4 bytes",
            });
        }
        let len = self.encoded_len();
        write_header(buf, self.subtype, packet_type::APP, len)?;
        put_u32(buf, HEADER_LEN, self.ssrc);
        buf[HEADER_LEN + 4..HEADER_LEN + 8].copy_from_slice(&self.name);
        buf[HEADER_LEN + 8..len].copy_from_slice(self.data);
        Ok(len)
    }
}
