//! The shapes every SCTP structure is built from (RFC 9260 §3): big-endian
//! fields, 4-byte padding, arrays of fixed-size entries (gap ack blocks,
//! TSNs, stream numbers) and type-length-value lists (parameters, error
//! causes). A list is either the received bytes, checked once when the
//! chunk was parsed, or the caller's typed items to be written; both
//! iterate the same way, so nothing is copied on receipt.

use std::fmt;

use super::error::WireError;

/// RFC 9260 §3.2: chunks and parameters are padded to a multiple of 4.
pub fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads a big-endian `u16` at `at`; the caller has checked the length.
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`; the caller has checked the length.
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// An entry of a fixed-size array in a chunk or parameter.
pub trait FixedEntry: Copy + fmt::Debug + PartialEq {
    const LEN: usize;
    /// Reads the entry from exactly `LEN` bytes.
    fn read(b: &[u8]) -> Self;
    /// Writes the entry into exactly `LEN` bytes.
    fn write(&self, out: &mut [u8]);
}

impl FixedEntry for u16 {
    const LEN: usize = 2;
    fn read(b: &[u8]) -> Self {
        u16_at(b, 0)
    }
    fn write(&self, out: &mut [u8]) {
        put_u16(out, 0, *self)
    }
}

impl FixedEntry for u32 {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Self {
        u32_at(b, 0)
    }
    fn write(&self, out: &mut [u8]) {
        put_u32(out, 0, *self)
    }
}

/// An array of fixed-size entries: received bytes or items to write.
pub enum FixedList<'a, T> {
    /// Received bytes, a whole number of entries (checked on parse).
    Wire(&'a [u8]),
    Items(&'a [T]),
}

impl<T> Clone for FixedList<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for FixedList<'_, T> {}

impl<'a, T: FixedEntry> FixedList<'a, T> {
    /// Takes the first `count` entries of `b`, if they are there.
    pub(crate) fn take(b: &'a [u8], count: usize) -> Option<(Self, &'a [u8])> {
        let len = count.checked_mul(T::LEN)?;
        (b.len() >= len).then(|| (FixedList::Wire(&b[..len]), &b[len..]))
    }

    /// All of `b`, which must be a whole number of entries.
    pub(crate) fn whole(b: &'a [u8]) -> Option<Self> {
        (b.len() % T::LEN == 0).then_some(FixedList::Wire(b))
    }

    pub fn len(&self) -> usize {
        match self {
            FixedList::Wire(b) => b.len() / T::LEN,
            FixedList::Items(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        let (wire, items): (&'a [u8], &'a [T]) = match *self {
            FixedList::Wire(b) => (b, &[]),
            FixedList::Items(items) => (&[], items),
        };
        wire.chunks_exact(T::LEN).map(T::read).chain(items.iter().copied())
    }

    pub(crate) fn wire_len(&self) -> usize {
        self.len() * T::LEN
    }

    /// Writes the entries into exactly `wire_len()` bytes.
    pub(crate) fn write(&self, out: &mut [u8]) {
        for (entry, slot) in self.iter().zip(out.chunks_exact_mut(T::LEN)) {
            entry.write(slot);
        }
    }
}

impl<T: FixedEntry> PartialEq for FixedList<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: FixedEntry> fmt::Debug for FixedList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One type-length-value element (RFC 9260 §3.2.1 parameters, §3.3.10
/// error causes): a 16-bit type, a 16-bit length that counts the 4-byte
/// header and the value but not the padding.
pub trait Tlv<'a>: Sized + fmt::Debug + PartialEq {
    /// Interprets one element's value.
    fn parse(ty: u16, value: &'a [u8]) -> Result<Self, WireError>;
    fn tlv_type(&self) -> u16;
    fn value_len(&self) -> usize;
    /// Writes the value into exactly `value_len()` bytes.
    fn write_value(&self, out: &mut [u8]);

    /// The element's length with header and padding.
    fn padded_len(&self) -> usize {
        padded(4 + self.value_len())
    }

    /// Writes the element, header and padding, into exactly `padded_len()`
    /// bytes.
    fn write(&self, out: &mut [u8]) {
        let len = 4 + self.value_len();
        put_u16(out, 0, self.tlv_type());
        // Values are bounded by the u16 length of the chunk they ride in.
        put_u16(out, 2, len as u16);
        self.write_value(&mut out[4..len]);
        out[len..].fill(0);
    }
}

/// Splits the next TLV off `b`: (type, value, the rest after padding).
pub(crate) fn next_tlv(b: &[u8]) -> Result<(u16, &[u8], &[u8]), WireError> {
    if b.len() < 4 {
        return Err(WireError::TlvLength {
            ty: if b.len() >= 2 { u16_at(b, 0) } else { 0 },
            length: 0,
            available: b.len(),
        });
    }
    let ty = u16_at(b, 0);
    let length = u16_at(b, 2);
    let len = usize::from(length);
    if len < 4 || len > b.len() {
        return Err(WireError::TlvLength {
            ty,
            length,
            available: b.len(),
        });
    }
    // The last element's padding may be left out (RFC 9260 §3.2).
    let next = padded(len).min(b.len());
    Ok((ty, &b[4..len], &b[next..]))
}

/// A list of TLV elements: received bytes or items to write.
pub enum TlvList<'a, T> {
    /// Received bytes whose every element parsed (checked on parse).
    Wire(&'a [u8]),
    Items(&'a [T]),
}

impl<T> Clone for TlvList<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for TlvList<'_, T> {}

impl<'a, T: Tlv<'a> + Copy> TlvList<'a, T> {
    /// Checks that every element of `b` parses, and keeps the bytes.
    pub(crate) fn parse(mut b: &'a [u8]) -> Result<Self, WireError> {
        let all = b;
        while !b.is_empty() {
            let (ty, value, rest) = next_tlv(b)?;
            T::parse(ty, value)?;
            b = rest;
        }
        Ok(TlvList::Wire(all))
    }

    pub fn iter(&self) -> TlvIter<'a, T> {
        match *self {
            TlvList::Wire(b) => TlvIter { wire: b, items: &[] },
            TlvList::Items(items) => TlvIter { wire: &[], items },
        }
    }

    pub(crate) fn wire_len(&self) -> usize {
        match self {
            // Received padding of the last element may be missing.
            TlvList::Wire(_) => self.iter().map(|t| t.padded_len()).sum(),
            TlvList::Items(items) => items.iter().map(|t| t.padded_len()).sum(),
        }
    }

    /// Writes the elements into exactly `wire_len()` bytes.
    pub(crate) fn write(&self, out: &mut [u8]) {
        let mut at = 0;
        for t in self.iter() {
            let n = t.padded_len();
            t.write(&mut out[at..at + n]);
            at += n;
        }
    }
}

/// Iterates a [`TlvList`].
pub struct TlvIter<'a, T> {
    wire: &'a [u8],
    items: &'a [T],
}

impl<'a, T: Tlv<'a> + Copy> Iterator for TlvIter<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if !self.wire.is_empty() {
            // Every element was checked when the list was parsed; a
            // failure here would end the iteration, not panic.
            let (ty, value, rest) = next_tlv(self.wire).ok()?;
            self.wire = rest;
            return T::parse(ty, value).ok();
        }
        let (first, rest) = self.items.split_first()?;
        self.items = rest;
        Some(*first)
    }
}

impl<'a, T: Tlv<'a> + Copy> PartialEq for TlvList<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: Tlv<'a> + Copy> fmt::Debug for TlvList<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// What a receiver does with a chunk or parameter type it does not know,
/// from the type's upper two bits (RFC 9260 §3.2 for chunks, §3.2.1 for
/// parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownAction {
    /// Carry on with the next chunk or parameter (bit 7 / bit 15 set);
    /// otherwise stop processing the packet or parameters here.
    pub skip: bool,
    /// Report it to the peer (bit 6 / bit 14 set): an ERROR with an
    /// Unrecognized Chunk Type cause, or an Unrecognized Parameter.
    pub report: bool,
}

impl UnknownAction {
    /// From the upper two bits of a chunk type (RFC 9260 §3.2).
    pub fn for_chunk(ty: u8) -> Self {
        UnknownAction {
            skip: ty & 0x80 != 0,
            report: ty & 0x40 != 0,
        }
    }

    /// From the upper two bits of a parameter type (RFC 9260 §3.2.1).
    pub fn for_param(ty: u16) -> Self {
        UnknownAction {
            skip: ty & 0x8000 != 0,
            report: ty & 0x4000 != 0,
        }
    }
}
