//! Replay protection (RFC 3711 §3.3.2): a sliding window over packet
//! indices, kept as a bitmap.

use crate::Error;

/// What a [`ReplayWindow`] says about an index before it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not seen, and inside or ahead of the window.
    Fresh,
    /// Already accepted.
    Replayed,
    /// Behind the window: it cannot be told from a replay, so it is refused.
    TooOld,
}

/// The indices accepted lately: the highest one and a bitmap of the
/// `size` indices up to it.
///
/// RFC 3711 §3.3.2 asks for at least 64 packets; video with
/// retransmissions reorders further, so the default is 1024. The bitmap is
/// a ring addressed by `index mod size`, so advancing the window clears
/// only the bits it passes over and never shifts.
#[derive(Clone)]
pub struct ReplayWindow {
    bits: Box<[u64]>,
    mask: u64,
    highest: Option<u64>,
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("size", &self.size())
            .field("highest", &self.highest)
            .finish()
    }
}

impl ReplayWindow {
    /// Default window: 1024 packets.
    pub const DEFAULT_SIZE: usize = 1024;

    /// A window of `size` packets, a power of two of at least 64.
    pub fn new(size: usize) -> Result<ReplayWindow, Error> {
        if size < 64 || !size.is_power_of_two() {
            return Err(Error::InvalidReplayWindow(size));
        }
        Ok(ReplayWindow {
            bits: vec![0; size / 64].into_boxed_slice(),
            mask: size as u64 - 1,
            highest: None,
        })
    }

    /// How many indices the window spans.
    pub fn size(&self) -> u64 {
        self.mask + 1
    }

    /// The highest index accepted, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `index` may be accepted.
    pub fn check(&self, index: u64) -> Verdict {
        let Some(highest) = self.highest else {
            return Verdict::Fresh;
        };
        if index > highest {
            Verdict::Fresh
        } else if highest - index > self.mask {
            Verdict::TooOld
        } else if self.get(index) {
            Verdict::Replayed
        } else {
            Verdict::Fresh
        }
    }

    /// Records `index` as seen (after its packet authenticated), moving the
    /// window forward if it is the new highest. An index behind the window
    /// is ignored.
    pub fn accept(&mut self, index: u64) {
        match self.highest {
            Some(highest) if index > highest => {
                if index - highest > self.mask {
                    self.bits.fill(0);
                } else {
                    self.clear_range(highest + 1, index);
                }
                self.highest = Some(index);
            }
            Some(highest) if highest - index > self.mask => return,
            Some(_) => {}
            None => self.highest = Some(index),
        }
        let bit = index & self.mask;
        self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }

    fn get(&self, index: u64) -> bool {
        let bit = index & self.mask;
        self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0
    }

    /// Clears the bits of indices `from..=to`, fewer than `size` of them.
    fn clear_range(&mut self, mut from: u64, to: u64) {
        while from <= to {
            let bit = from & self.mask;
            let word = (bit / 64) as usize;
            if bit % 64 == 0 && to - from >= 63 {
                self.bits[word] = 0;
                from += 64;
            } else {
                self.bits[word] &= !(1 << (bit % 64));
                from += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_powers_of_two_of_at_least_64() {
        assert!(ReplayWindow::new(64).is_ok());
        assert_eq!(ReplayWindow::new(32).unwrap_err(), Error::InvalidReplayWindow(32));
        assert_eq!(ReplayWindow::new(100).unwrap_err(), Error::InvalidReplayWindow(100));
    }

    #[test]
    fn replays_and_old_indices_are_refused() {
        let mut w = ReplayWindow::new(64).unwrap();
        assert_eq!(w.check(1000), Verdict::Fresh);
        w.accept(1000);
        assert_eq!(w.check(1000), Verdict::Replayed);
        assert_eq!(w.check(999), Verdict::Fresh);
        assert_eq!(w.check(1000 - 63), Verdict::Fresh);
        assert_eq!(w.check(1000 - 64), Verdict::TooOld);
        w.accept(1100);
        assert_eq!(w.check(1000), Verdict::TooOld);
        assert_eq!(w.check(1099), Verdict::Fresh);
        w.accept(1099);
        assert_eq!(w.check(1099), Verdict::Replayed);
        // Advancing over the ring clears stale bits.
        w.accept(1100 + 64);
        assert_eq!(w.check(1100 + 1), Verdict::Fresh);
        assert_eq!(w.check(1100 + 64), Verdict::Replayed);
    }
}
