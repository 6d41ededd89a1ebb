//! The SCTP packet (RFC 9260 §3.1): the common header, the CRC32c over
//! the whole packet (§6.8, Appendix A) or, where both ends agreed, a zero
//! checksum (RFC 9653), and the chunks after it.

use crc::{Crc, Table, CRC_32_ISCSI};

use super::chunk::{Chunk, INIT};
use super::error::{BufferTooSmall, WireError};
use super::wire::{padded, put_u16, put_u32, u16_at, u32_at};

/// RFC 9260 §3.1: the common header's length.
pub const COMMON_HEADER_LEN: usize = 12;

/// RFC 9260 Appendix A: CRC32c (Castagnoli), as iSCSI uses it.
const CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);

/// RFC 9260 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonHeader {
    pub source_port: u16,
    pub destination_port: u16,
    /// The receiver's Initiate Tag; 0 only on a packet carrying INIT.
    pub verification_tag: u32,
}

/// How a packet's checksum field is filled or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// CRC32c, always (RFC 9260 §6.8).
    Crc32c,
    /// RFC 9653 §5: both ends announced the same error detection method
    /// (DTLS below us), so zero is sent, and accepted besides a right
    /// CRC32c. Packets with an INIT always carry the CRC32c.
    ZeroAcceptable,
}

/// The CRC32c of `packet` with its checksum field taken as zero, in the
/// field's wire order: Appendix A's reflected CRC goes out least
/// significant byte first, so it is read as a little-endian `u32`.
pub fn crc32c(packet: &[u8]) -> u32 {
    let mut digest = CASTAGNOLI.digest();
    digest.update(&packet[..8]);
    digest.update(&[0; 4]);
    digest.update(&packet[COMMON_HEADER_LEN..]);
    digest.finalize()
}

fn checksum_field(packet: &[u8]) -> u32 {
    u32::from_le_bytes([packet[8], packet[9], packet[10], packet[11]])
}

/// A received packet: the header, checked, and its chunks, not yet parsed.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub header: CommonHeader,
    chunks: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Checks the common header and the checksum.
    pub fn parse(b: &'a [u8], checksum: ChecksumMode) -> Result<Self, WireError> {
        if b.len() < COMMON_HEADER_LEN {
            return Err(WireError::PacketTooShort { len: b.len() });
        }
        let found = checksum_field(b);
        // RFC 9653 §5.4: an INIT always has its CRC32c checked.
        let zero_ok = checksum == ChecksumMode::ZeroAcceptable && b.get(COMMON_HEADER_LEN) != Some(&INIT);
        if !(found == 0 && zero_ok) {
            let computed = crc32c(b);
            if found != computed {
                return Err(WireError::BadChecksum { found, computed });
            }
        }
        Ok(Packet {
            header: CommonHeader {
                source_port: u16_at(b, 0),
                destination_port: u16_at(b, 2),
                verification_tag: u32_at(b, 4),
            },
            chunks: &b[COMMON_HEADER_LEN..],
        })
    }

    /// The chunks, in order; a chunk whose length is wrong ends the walk
    /// with an error (RFC 9260 §3.2: the packet is then discarded).
    pub fn chunks(&self) -> Chunks<'a> {
        Chunks {
            rest: self.chunks,
            offset: COMMON_HEADER_LEN,
        }
    }
}

/// One chunk's header and value, before its value is interpreted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawChunk<'a> {
    pub ty: u8,
    pub flags: u8,
    pub value: &'a [u8],
    /// The whole chunk, header included, without padding: what an
    /// Unrecognized Chunk Type cause reports (RFC 9260 §3.3.10.6).
    pub bytes: &'a [u8],
}

impl<'a> RawChunk<'a> {
    pub fn parse(&self) -> Result<Chunk<'a>, WireError> {
        Chunk::parse(self.ty, self.flags, self.value)
    }
}

/// Iterates the chunks of a [`Packet`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<RawChunk<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.rest;
        if b.is_empty() {
            return None;
        }
        if b.len() < 4 {
            self.rest = &[];
            return Some(Err(WireError::ChunkLength {
                ty: b[0],
                offset: self.offset,
                length: 0,
                available: b.len(),
            }));
        }
        let length = u16_at(b, 2);
        let len = usize::from(length);
        if len < 4 || len > b.len() {
            self.rest = &[];
            return Some(Err(WireError::ChunkLength {
                ty: b[0],
                offset: self.offset,
                length,
                available: b.len(),
            }));
        }
        // The last chunk's padding may be missing (RFC 9260 §3.2).
        let next = padded(len).min(b.len());
        self.rest = &b[next..];
        self.offset += next;
        Some(Ok(RawChunk {
            ty: b[0],
            flags: b[1],
            value: &b[4..len],
            bytes: &b[..len],
        }))
    }
}

/// Writes one packet into a caller's buffer: the header, then chunks as
/// long as they fit, then the checksum.
pub struct PacketWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    has_init: bool,
}

impl<'b> PacketWriter<'b> {
    pub fn new(buf: &'b mut [u8], header: CommonHeader) -> Result<Self, BufferTooSmall> {
        if buf.len() < COMMON_HEADER_LEN {
            return Err(BufferTooSmall {
                needed: COMMON_HEADER_LEN,
                available: buf.len(),
            });
        }
        put_u16(buf, 0, header.source_port);
        put_u16(buf, 2, header.destination_port);
        put_u32(buf, 4, header.verification_tag);
        put_u32(buf, 8, 0);
        Ok(PacketWriter {
            buf,
            len: COMMON_HEADER_LEN,
            has_init: false,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no chunk was added yet.
    pub fn is_empty(&self) -> bool {
        self.len == COMMON_HEADER_LEN
    }

    /// Room left for chunks, headers and padding included.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Appends a chunk, or leaves the packet as it was if it does not fit.
    pub fn push(&mut self, chunk: &Chunk<'_>) -> Result<(), BufferTooSmall> {
        let value_len = chunk.value_len();
        let len = 4 + value_len;
        let needed = padded(len);
        let too_small = BufferTooSmall {
            needed,
            available: self.remaining(),
        };
        if needed > self.remaining() {
            return Err(too_small);
        }
        // RFC 9260 §3.2: the chunk length is 16 bits.
        let length = u16::try_from(len).map_err(|_| too_small)?;
        let out = &mut self.buf[self.len..self.len + needed];
        out[0] = chunk.chunk_type();
        out[1] = chunk.flags();
        put_u16(out, 2, length);
        chunk.write_value(&mut out[4..len]);
        out[len..].fill(0);
        self.len += needed;
        self.has_init |= chunk.chunk_type() == INIT;
        Ok(())
    }

    /// Fills in the checksum; returns the packet's length.
    pub fn finish(self, checksum: ChecksumMode) -> usize {
        let packet = &mut self.buf[..self.len];
        let sum = match checksum {
            ChecksumMode::ZeroAcceptable if !self.has_init => 0,
            _ => crc32c(packet),
        };
        packet[8..12].copy_from_slice(&sum.to_le_bytes());
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // Appendix A's CRC32c of "123456789" is 0xe3069283; put it after a
        // header so that the function's skipping of the field is exercised.
        let mut p = [0u8; 12 + 9];
        p[..8].copy_from_slice(&[9; 8]);
        p[8..12].copy_from_slice(&[0xff; 4]);
        p[12..].copy_from_slice(b"123456789");
        let whole = CASTAGNOLI.checksum(&[&p[..8], &[0; 4], b"123456789"].concat());
        assert_eq!(crc32c(&p), whole);
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xe306_9283);
    }

    fn cookie_ack_packet(mode: ChecksumMode) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let header = CommonHeader {
            source_port: 5000,
            destination_port: 5000,
            verification_tag: 7,
        };
        let mut w = PacketWriter::new(&mut buf, header).unwrap();
        w.push(&Chunk::CookieAck).unwrap();
        let n = w.finish(mode);
        buf[..n].to_vec()
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut p = cookie_ack_packet(ChecksumMode::Crc32c);
        assert!(Packet::parse(&p, ChecksumMode::Crc32c).is_ok());
        p[5] ^= 1;
        assert!(matches!(
            Packet::parse(&p, ChecksumMode::Crc32c),
            Err(WireError::BadChecksum { .. })
        ));
    }

    #[test]
    fn zero_checksum_only_where_agreed() {
        let p = cookie_ack_packet(ChecksumMode::ZeroAcceptable);
        assert_eq!(&p[8..12], &[0; 4]);
        assert!(Packet::parse(&p, ChecksumMode::ZeroAcceptable).is_ok());
        assert!(Packet::parse(&p, ChecksumMode::Crc32c).is_err());
        // A right CRC32c is still taken when zero is acceptable.
        assert!(Packet::parse(&cookie_ack_packet(ChecksumMode::Crc32c), ChecksumMode::ZeroAcceptable).is_ok());
    }

    #[test]
    fn a_chunk_that_does_not_fit_leaves_the_packet_unchanged() {
        let mut buf = [0u8; 20];
        let header = CommonHeader {
            source_port: 1,
            destination_port: 2,
            verification_tag: 3,
        };
        let mut w = PacketWriter::new(&mut buf, header).unwrap();
        let err = w.push(&Chunk::CookieEcho(&[1; 9])).unwrap_err();
        assert_eq!(
            err,
            BufferTooSmall {
                needed: 16,
                available: 8
            }
        );
        assert!(w.is_empty());
        w.push(&Chunk::CookieEcho(&[1; 3])).unwrap();
        assert_eq!(w.len(), 20);
    }
}
