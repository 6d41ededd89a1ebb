//! Big-endian field access shared by the RTP and RTCP codecs. Readers
//! take slices whose length the caller has already checked.

use crate::error::Error;

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn u24_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(b, at)) << 32) | u64::from(u32_at(b, at + 4))
}

pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u24(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 3].copy_from_slice(&v.to_be_bytes()[1..]);
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Fails with [`Error::BufferTooSmall`] unless `needed` bytes fit.
pub(crate) fn check_room(available: usize, needed: usize) -> Result<(), Error> {
    if needed > available {
        Err(Error::BufferTooSmall { needed, available })
    } else {
        Ok(())
    }
}

/// Rounds up to a multiple of 4 (RTP extension blocks, RTCP packets).
pub(crate) const fn padded4(len: usize) -> usize {
    (len + 3) & !3
}
