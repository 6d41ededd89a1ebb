//! Serial number arithmetic (RFC 1982, as RFC 9260 §1.6 requires for TSNs,
//! SSNs and, by RFC 8260 §2.1, MIDs): comparison that wraps around, so
//! that 0 follows 0xffff_ffff. It is not a total order (a number and the
//! one 2^31 away are unordered), hence methods rather than `Ord`.

use std::fmt;

/// A Transmission Sequence Number (RFC 9260 §3.3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tsn(pub u32);

impl Tsn {
    /// The TSN after this one.
    pub fn next(self) -> Tsn {
        Tsn(self.0.wrapping_add(1))
    }

    pub fn prev(self) -> Tsn {
        Tsn(self.0.wrapping_sub(1))
    }

    pub fn plus(self, n: u32) -> Tsn {
        Tsn(self.0.wrapping_add(n))
    }

    /// RFC 1982 §3.2: `self < other`.
    pub fn is_before(self, other: Tsn) -> bool {
        serial_lt32(self.0, other.0)
    }

    /// `self > other`.
    pub fn is_after(self, other: Tsn) -> bool {
        serial_lt32(other.0, self.0)
    }

    /// How far `self` lies after `base` (wrapping), e.g. the offset of a
    /// gap ack block (RFC 9260 §3.3.4).
    pub fn offset_from(self, base: Tsn) -> u32 {
        self.0.wrapping_sub(base.0)
    }
}

impl fmt::Debug for Tsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tsn({})", self.0)
    }
}

/// RFC 1982 §3.2 for 32-bit serial numbers (TSN, MID).
pub fn serial_lt32(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// RFC 1982 §3.2 for 16-bit serial numbers (SSN).
pub fn serial_lt16(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 15
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        assert!(Tsn(u32::MAX).is_before(Tsn(0)));
        assert!(Tsn(0).is_after(Tsn(u32::MAX)));
        assert!(Tsn(5).is_before(Tsn(6)));
        assert!(!Tsn(6).is_before(Tsn(6)));
        assert_eq!(Tsn(u32::MAX).next(), Tsn(0));
        assert_eq!(Tsn(3).offset_from(Tsn(u32::MAX - 1)), 5);
        assert!(serial_lt16(0xfffe, 1));
        assert!(!serial_lt16(1, 0xfffe));
    }

    #[test]
    fn half_the_space_apart_is_unordered() {
        let (a, b) = (Tsn(0), Tsn(1 << 31));
        assert!(!a.is_before(b) && !b.is_before(a));
    }
}
