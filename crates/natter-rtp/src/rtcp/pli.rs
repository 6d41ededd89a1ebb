//! Picture loss indication (RFC 4585 §6.3.1).

use super::{fmt, packet_type, write_header, RawRtcp, RtcpEncode, HEADER_LEN};
use crate::error::Error;
use crate::wire::put_u32;

/// A PLI (PSFB, FMT=1): both the received value and the builder. It has
/// no FCI, so its length field is 2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct Pli {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
}

impl Pli {
    pub fn parse(raw: &RawRtcp<'_>) -> Result<Self, Error> {
        let (sender_ssrc, media_ssrc, _) = raw.feedback("PLI")?;
        Ok(Pli {
            sender_ssrc,
            media_ssrc,
        })
    }
}

impl RtcpEncode for Pli {
    fn encoded_len(&self) -> usize {
        HEADER_LEN + 8
    }

    fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        write_header(buf, fmt::PLI, packet_type::PSFB, 12)?;
        put_u32(buf, 4, self.sender_ssrc);
        put_u32(buf, 8, self.media_ssrc);
        Ok(12)
    }
}
