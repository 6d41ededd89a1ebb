//! Unwrapping RTP's wrapping counters into 64-bit values: the 16-bit
//! sequence number (RFC 3550 §5.1, Appendix A.1) and the 32-bit RTP
//! timestamp. The same logic serves transport-wide sequence numbers.
//!
//! Each unwrapper interprets a new value as the nearest one, forward or
//! back, to the value it returned last, so reordering within half the
//! counter's range (32768 packets, 2^31 ticks) and any number of wraps
//! are handled. The first value maps to itself (cycle 0), matching the
//! extended highest sequence number of RFC 3550 §6.4.1; a value from
//! before that, which would fall below 0, gives `None`.

use std::marker::PhantomData;

/// A wrapping counter an [`Unwrapper`] extends: `u16` sequence numbers
/// and `u32` timestamps.
pub trait WrappingCounter: Copy + Into<u64> {
    /// The number of values the counter takes: `2^bits`.
    const CYCLE: u64;
    /// The signed distance from `last`'s low bits to `self`, the short
    /// way round the counter.
    fn distance_from(self, last: u64) -> i64;
}

impl WrappingCounter for u16 {
    const CYCLE: u64 = 1 << 16;
    fn distance_from(self, last: u64) -> i64 {
        i64::from(self.wrapping_sub(last as u16) as i16)
    }
}

impl WrappingCounter for u32 {
    const CYCLE: u64 = 1 << 32;
    fn distance_from(self, last: u64) -> i64 {
        i64::from(self.wrapping_sub(last as u32) as i32)
    }
}

/// Extends a wrapping counter to 64 bits (RFC 3550 Appendix A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unwrapper<T> {
    last: Option<u64>,
    /// The cycle the first value is placed in.
    first_cycle: u64,
    counter: PhantomData<T>,
}

/// Extends 16-bit sequence numbers to 64 bits.
///
/// ```
/// # use natter_rtp::SeqUnwrapper;
/// let mut u = SeqUnwrapper::new();
/// assert_eq!(u.unwrap(65534), Some(65534));
/// assert_eq!(u.unwrap(1), Some(65537)); // wrapped
/// assert_eq!(u.unwrap(65535), Some(65535)); // reordered, before the wrap
/// ```
pub type SeqUnwrapper = Unwrapper<u16>;

/// Extends 32-bit RTP timestamps to 64 bits.
///
/// ```
/// # use natter_rtp::TimestampUnwrapper;
/// let mut u = TimestampUnwrapper::new();
/// assert_eq!(u.unwrap(u32::MAX - 959), Some(u64::from(u32::MAX) - 959));
/// assert_eq!(u.unwrap(1920), Some((1u64 << 32) + 1920));
/// ```
pub type TimestampUnwrapper = Unwrapper<u32>;

impl<T> Default for Unwrapper<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Unwrapper<T> {
    pub const fn new() -> Self {
        Self::with_first_cycle(0)
    }

    /// An unwrapper that places the first value in cycle `cycle`, so
    /// that values from up to `cycle` wraps before it (packets reordered
    /// ahead of the first one, across a wrap) unwrap too. The 64-bit
    /// values are then only meaningful relative to each other.
    ///
    /// ```
    /// # use natter_rtp::SeqUnwrapper;
    /// let mut u = SeqUnwrapper::with_first_cycle(1);
    /// assert_eq!(u.unwrap(0), Some(65536));
    /// assert_eq!(u.unwrap(65535), Some(65535)); // sent before the first
    /// ```
    pub const fn with_first_cycle(cycle: u64) -> Self {
        Unwrapper {
            last: None,
            first_cycle: cycle,
            counter: PhantomData,
        }
    }

    /// The value returned last.
    pub fn last(&self) -> Option<u64> {
        self.last
    }
}

impl<T: WrappingCounter> Unwrapper<T> {
    /// The 64-bit value of `value`; `None` if it precedes the first value.
    pub fn unwrap(&mut self, value: T) -> Option<u64> {
        let v = self.peek(value)?;
        self.last = Some(v);
        Some(v)
    }

    /// The value [`Unwrapper::unwrap`] would return, without updating.
    pub fn peek(&self, value: T) -> Option<u64> {
        match self.last {
            None => Some(value.into() + self.first_cycle * T::CYCLE),
            Some(last) => last.checked_add_signed(value.distance_from(last)),
        }
    }
}
