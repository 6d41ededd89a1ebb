//! Fields of whole bits read most significant bit first, as the VP9
//! bitstream (VP9 Bitstream Specification v0.6 §4.9, `f(n)`), the AV1
//! bitstream (AV1 Bitstream Specification §4.10: `f(n)`, `uvlc()`) and
//! the dependency descriptor (AV1 RTP Specification A.8.2: `f(n)`,
//! `ns(n)`) write them. Unlike H.264 (see `h264_sps`), none of these
//! escapes start codes, so the bytes are read as they are.
//!
//! Every read returns `None` past the end; callers turn that into the
//! error of what they were reading.

/// A cursor over the bits of a byte slice.
#[derive(Clone, Copy, Debug)]
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// The next bit, counted from the first byte's most significant bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// A reader starting at bit `pos` of `data`.
    pub(super) fn at(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos }
    }

    /// Bits read so far, counted from the start of the data.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    pub(super) fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = byte >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        Some(bit != 0)
    }

    /// `f(n)` for n up to 32.
    pub(super) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut v = 0u64;
        for _ in 0..n {
            v = v << 1 | u64::from(self.flag()?);
        }
        // At most 32 bits were read.
        Some(v as u32)
    }

    /// Moves on `n` bits, failing if fewer remain.
    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// AV1 §4.10.3 `uvlc()`: an Exp-Golomb-like code of up to 32 bits.
    pub(super) fn uvlc(&mut self) -> Option<u32> {
        let mut leading_zeros = 0u32;
        while !self.flag()? {
            leading_zeros += 1;
        }
        if leading_zeros >= 32 {
            return Some(u32::MAX);
        }
        let value = self.bits(leading_zeros)?;
        // value < 2^leading_zeros, so the sum stays below 2^32.
        Some(value + ((1u32 << leading_zeros) - 1))
    }

    /// AV1 RTP A.8.2 `ns(n)`: a value in 0..n in w - 1 or w bits, where
    /// w is the bit length of n. `n` is at least 1.
    pub(super) fn ns(&mut self, n: u32) -> Option<u32> {
        let w = u32::BITS - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.bits(w - 1)?;
        if v < m {
            return Some(v);
        }
        let extra = u32::from(self.flag()?);
        Some((v << 1) - m + extra)
    }
}

#[cfg(test)]
mod tests {
    use super::BitReader;

    #[test]
    fn reads_fields_across_byte_boundaries() {
        let mut r = BitReader::new(&[0b1011_0011, 0b1100_0000]);
        assert_eq!(r.bits(3), Some(0b101));
        assert_eq!(r.bits(7), Some(0b100_1111));
        assert_eq!(r.position(), 10);
        assert_eq!(r.bits(6), Some(0));
        assert_eq!(r.flag(), None);
    }

    #[test]
    fn skip_refuses_to_pass_the_end() {
        let mut r = BitReader::at(&[0xFF], 3);
        assert_eq!(r.skip(6), None);
        assert_eq!(r.skip(5), Some(()));
        assert_eq!(r.flag(), None);
    }

    #[test]
    fn uvlc_values() {
        // 1 -> 0; 010 -> 1; 011 -> 2; 00100 -> 3.
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!(r.uvlc(), Some(0));
        assert_eq!(r.uvlc(), Some(1));
        assert_eq!(r.uvlc(), Some(2));
        assert_eq!(r.uvlc(), Some(3));
        // 32 leading zeros: the largest value, whatever follows.
        let mut r = BitReader::new(&[0, 0, 0, 0, 0x80]);
        assert_eq!(r.uvlc(), Some(u32::MAX));
        assert_eq!(BitReader::new(&[0, 0]).uvlc(), None);
    }

    #[test]
    fn ns_matches_the_table_for_five() {
        // A.8.2: for n = 5, values 0..=2 take 2 bits, 3 and 4 take 3.
        let codes: [(u8, usize, u32); 5] = [
            (0b0000_0000, 2, 0),
            (0b0100_0000, 2, 1),
            (0b1000_0000, 2, 2),
            (0b1100_0000, 3, 3),
            (0b1110_0000, 3, 4),
        ];
        for (byte, len, value) in codes {
            let mut r = BitReader::new(std::slice::from_ref(&byte));
            assert_eq!(r.ns(5), Some(value));
            assert_eq!(r.position(), len);
        }
        // n = 1 has one value and takes no bits.
        assert_eq!(BitReader::new(&[]).ns(1), Some(0));
    }
}
