//! The few RTP and RTCP header fields SRTP needs (RFC 3550 §5.1, §5.3.1,
//! §6.4). The full codec lives in natter-rtp; this crate reads only what
//! it must, so the two stay independent.

use crate::Error;

/// RFC 3550 §5.1: the fixed RTP header.
pub(crate) const RTP_FIXED_HEADER_LEN: usize = 12;
/// RFC 3550 §6.4.1: RTCP header up to and including the sender's SSRC,
/// which SRTCP leaves unencrypted (RFC 3711 §3.4).
pub(crate) const RTCP_HEADER_LEN: usize = 8;

/// What SRTP reads from an RTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RtpHeader {
    pub(crate) sequence_number: u16,
    pub(crate) ssrc: u32,
    /// Octets before the payload: fixed header, CSRCs and extension
    /// (RFC 3711 §3.1: the part that is authenticated but not encrypted).
    pub(crate) len: usize,
}

/// Reads the RTP header of `packet`, which must hold the header and
/// `trailer` more bytes.
pub(crate) fn rtp_header(packet: &[u8], trailer: usize) -> Result<RtpHeader, Error> {
    let too_short = |needed: usize| Error::TooShort {
        len: packet.len(),
        needed,
    };
    if packet.len() < RTP_FIXED_HEADER_LEN + trailer {
        return Err(too_short(RTP_FIXED_HEADER_LEN + trailer));
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(Error::UnsupportedVersion(version));
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        // RFC 3550 §5.3.1: 16-bit profile field, 16-bit length in words.
        if packet.len() < len + 4 + trailer {
            return Err(too_short(len + 4 + trailer));
        }
        let words = usize::from(u16::from_be_bytes([packet[len + 2], packet[len + 3]]));
        len += 4 + 4 * words;
    }
    if packet.len() < len + trailer {
        return Err(too_short(len + trailer));
    }
    Ok(RtpHeader {
        sequence_number: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        len,
    })
}

/// Reads the sender SSRC of an RTCP compound packet that must hold the
/// first header and `trailer` more bytes.
pub(crate) fn rtcp_ssrc(packet: &[u8], trailer: usize) -> Result<u32, Error> {
    if packet.len() < RTCP_HEADER_LEN + trailer {
        return Err(Error::TooShort {
            len: packet.len(),
            needed: RTCP_HEADER_LEN + trailer,
        });
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(Error::UnsupportedVersion(version));
    }
    Ok(u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrcs_and_extension_count_towards_the_header() {
        let mut p = vec![0u8; 12 + 8 + 4 + 8 + 3];
        p[0] = 0x80 | 0x10 | 2; // V=2, X, CC=2
        p[2..4].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8..12].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        p[20..22].copy_from_slice(&0xbedeu16.to_be_bytes());
        p[22..24].copy_from_slice(&2u16.to_be_bytes());
        let h = rtp_header(&p, 0).unwrap();
        assert_eq!(
            h,
            RtpHeader {
                sequence_number: 0x1234,
                ssrc: 0xdeadbeef,
                len: 32
            }
        );
        assert_eq!(rtp_header(&p, 4), Err(Error::TooShort { len: 35, needed: 36 }));
    }

    #[test]
    fn an_extension_length_past_the_end_is_too_short() {
        let mut p = vec![0u8; 16];
        p[0] = 0x90;
        p[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
        assert!(matches!(rtp_header(&p, 0), Err(Error::TooShort { .. })));
    }
}
