//! The receiver's record of the TSNs that arrived (RFC 9260 §6.2): the
//! cumulative TSN, the TSNs beyond it as SACK gap ack blocks (§3.3.4),
//! and the duplicates to report. A fixed bitmap covers the TSNs past the
//! cumulative one; it and the lists a SACK borrows are sized once, so
//! receiving a chunk allocates nothing.

use super::chunk::{GapAckBlock, Sack};
use super::tsn::Tsn;
use super::wire::FixedList;

/// Duplicates reported per SACK at most (RFC 9260 §3.3.4 bounds nothing;
/// dcsctp and usrsctp keep a few dozen).
pub const MAX_DUPLICATES: usize = 32;
/// Gap ack blocks per SACK at most: the rest are reported once the first
/// ones fill in. As many as fit a 1200-byte packet beside the duplicates:
/// a slow start that overshoots a drop-tail queue loses every other
/// packet of a burst, and holes the sender does not hear of stay counted
/// in its flight until T3-rtx.
pub const MAX_GAP_BLOCKS: usize = 256;

/// What [`ReceivedTsns::receive`] made of a TSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First time seen: deliver its chunk.
    New,
    /// Already received: drop the chunk, report the TSN (§6.2).
    Duplicate,
    /// Farther ahead than the window the receiver offered: drop it.
    BeyondWindow,
}

#[derive(Debug, Clone)]
pub struct ReceivedTsns {
    /// The last TSN received with all before it.
    cumulative: Tsn,
    /// The highest TSN received, for the end of the last gap block.
    highest: Tsn,
    /// Bit `t % window` says whether TSN `t` (past `cumulative`) arrived.
    bits: Vec<u64>,
    duplicates: Vec<u32>,
    gaps: Vec<GapAckBlock>,
    /// Gap blocks that fit a packet, at most [`MAX_GAP_BLOCKS`].
    max_gaps: usize,
}

impl ReceivedTsns {
    /// `initial_tsn` is the peer's Initial TSN (from its INIT or INIT ACK);
    /// TSNs up to `window` past the cumulative one are tracked (rounded up
    /// to a power of two, at most 32768 so that gap offsets fit 16 bits).
    pub fn new(initial_tsn: Tsn, window: u32) -> Self {
        let window = window.clamp(64, 32_768).next_power_of_two();
        ReceivedTsns {
            cumulative: initial_tsn.prev(),
            highest: initial_tsn.prev(),
            bits: vec![0; (window / 64) as usize],
            duplicates: Vec::with_capacity(MAX_DUPLICATES),
            gaps: Vec::with_capacity(MAX_GAP_BLOCKS),
            max_gaps: MAX_GAP_BLOCKS,
        }
    }

    /// Reports no more gap blocks than a SACK in a `max_packet_size`
    /// packet holds (RFC 9260 §3.1, §3.3.4: 12 + 16 bytes of headers,
    /// 4 per block and per duplicate).
    pub fn fit_packet(&mut self, max_packet_size: usize) {
        self.max_gaps =
            ((max_packet_size.saturating_sub(12 + 16) / 4).saturating_sub(MAX_DUPLICATES)).clamp(1, MAX_GAP_BLOCKS);
    }

    /// The Cumulative TSN Ack of the next SACK.
    pub fn cumulative(&self) -> Tsn {
        self.cumulative
    }

    fn window(&self) -> u32 {
        (self.bits.len() * 64) as u32
    }

    fn slot(&self, tsn: Tsn) -> (usize, u64) {
        let i = tsn.0 & (self.window() - 1);
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn is_set(&self, tsn: Tsn) -> bool {
        let (w, bit) = self.slot(tsn);
        self.bits[w] & bit != 0
    }

    fn set(&mut self, tsn: Tsn, on: bool) {
        let (w, bit) = self.slot(tsn);
        if on {
            self.bits[w] |= bit;
        } else {
            self.bits[w] &= !bit;
        }
    }

    /// Records a DATA or I-DATA chunk's TSN.
    pub fn receive(&mut self, tsn: Tsn) -> Arrival {
        let offset = tsn.offset_from(self.cumulative);
        if offset == 0 || !self.cumulative.is_before(tsn) || (offset <= self.window() && self.is_set(tsn)) {
            if self.duplicates.len() < MAX_DUPLICATES {
                self.duplicates.push(tsn.0);
            }
            return Arrival::Duplicate;
        }
        if offset > self.window() {
            return Arrival::BeyondWindow;
        }
        self.set(tsn, true);
        if tsn.is_after(self.highest) {
            self.highest = tsn;
        }
        self.advance();
        Arrival::New
    }

    /// Moves the cumulative TSN over every TSN received in sequence.
    fn advance(&mut self) {
        while self.is_set(self.cumulative.next()) {
            self.cumulative = self.cumulative.next();
            self.set(self.cumulative, false);
        }
    }

    /// RFC 3758 §3.6: the sender abandoned every TSN up to `new_cumulative`;
    /// treat them as received. Older or equal values change nothing.
    pub fn forward_to(&mut self, new_cumulative: Tsn) {
        if !new_cumulative.is_after(self.cumulative) {
            return;
        }
        if new_cumulative.offset_from(self.cumulative) > self.window() {
            self.bits.fill(0);
        } else {
            while self.cumulative != new_cumulative {
                self.cumulative = self.cumulative.next();
                self.set(self.cumulative, false);
            }
        }
        self.cumulative = new_cumulative;
        if new_cumulative.is_after(self.highest) {
            self.highest = new_cumulative;
        }
        self.advance();
    }

    /// Whether TSNs past the cumulative one arrived (RFC 9260 §6.7: a
    /// receiver with gaps SACKs every packet).
    pub fn has_gaps(&self) -> bool {
        self.highest != self.cumulative
    }

    /// The SACK to send now, with `a_rwnd` from the receive buffer. Call
    /// [`ReceivedTsns::sack_sent`] once it went out.
    pub fn sack(&mut self, a_rwnd: u32) -> Sack<'_> {
        self.gaps.clear();
        let mut tsn = self.cumulative.next();
        let mut start = None;
        // Walk to one past the highest, so a gap that ends there closes.
        while self.gaps.len() < self.max_gaps && !tsn.is_after(self.highest.next()) {
            let got = tsn != self.highest.next() && self.is_set(tsn);
            // Offsets are at most the window (32768), within u16.
            let offset = tsn.offset_from(self.cumulative) as u16;
            match (got, start) {
                (true, None) => start = Some(offset),
                (false, Some(s)) => {
                    self.gaps.push(GapAckBlock {
                        start: s,
                        end: offset - 1,
                    });
                    start = None;
                }
                _ => {}
            }
            tsn = tsn.next();
        }
        Sack {
            cumulative_tsn_ack: self.cumulative,
            a_rwnd,
            gap_blocks: FixedList::Items(&self.gaps),
            duplicates: FixedList::Items(&self.duplicates),
        }
    }

    /// Forgets the duplicates a sent SACK reported.
    pub fn sack_sent(&mut self) {
        self.duplicates.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(r: &mut ReceivedTsns) -> Vec<(u16, u16)> {
        r.sack(0).gap_blocks.iter().map(|g| (g.start, g.end)).collect()
    }

    #[test]
    fn in_order_moves_the_cumulative_tsn() {
        let mut r = ReceivedTsns::new(Tsn(100), 1024);
        assert_eq!(r.cumulative(), Tsn(99));
        for t in 100..110 {
            assert_eq!(r.receive(Tsn(t)), Arrival::New);
        }
        assert_eq!(r.cumulative(), Tsn(109));
        assert!(!r.has_gaps());
        assert!(gaps(&mut r).is_empty());
    }

    #[test]
    fn holes_become_gap_blocks_and_fill_in() {
        let mut r = ReceivedTsns::new(Tsn(1), 1024);
        for t in [1, 3, 4, 7, 9, 10] {
            r.receive(Tsn(t));
        }
        assert_eq!(r.cumulative(), Tsn(1));
        // RFC 9260 §3.3.4: offsets from the cumulative TSN.
        assert_eq!(gaps(&mut r), vec![(2, 3), (6, 6), (8, 9)]);
        r.receive(Tsn(2));
        assert_eq!(r.cumulative(), Tsn(4));
        assert_eq!(gaps(&mut r), vec![(3, 3), (5, 6)]);
        for t in [5, 6, 8] {
            r.receive(Tsn(t));
        }
        assert_eq!(r.cumulative(), Tsn(10));
        assert!(!r.has_gaps());
    }

    #[test]
    fn duplicates_are_reported_once_and_bounded() {
        let mut r = ReceivedTsns::new(Tsn(1), 1024);
        r.receive(Tsn(1));
        r.receive(Tsn(3));
        assert_eq!(r.receive(Tsn(1)), Arrival::Duplicate);
        assert_eq!(r.receive(Tsn(3)), Arrival::Duplicate);
        let dups: Vec<u32> = r.sack(0).duplicates.iter().collect();
        assert_eq!(dups, vec![1, 3]);
        r.sack_sent();
        assert!(r.sack(0).duplicates.is_empty());
        for _ in 0..100 {
            r.receive(Tsn(1));
        }
        assert_eq!(r.sack(0).duplicates.len(), MAX_DUPLICATES);
    }

    #[test]
    fn wraps_around_zero() {
        let mut r = ReceivedTsns::new(Tsn(u32::MAX - 1), 1024);
        r.receive(Tsn(u32::MAX - 1));
        r.receive(Tsn(1));
        assert_eq!(gaps(&mut r), vec![(3, 3)]);
        r.receive(Tsn(u32::MAX));
        r.receive(Tsn(0));
        assert_eq!(r.cumulative(), Tsn(1));
    }

    #[test]
    fn beyond_the_window_is_refused() {
        let mut r = ReceivedTsns::new(Tsn(0), 64);
        assert_eq!(r.receive(Tsn(63)), Arrival::New);
        assert_eq!(r.receive(Tsn(64)), Arrival::BeyondWindow);
        assert_eq!(r.receive(Tsn(0x8000_0000)), Arrival::Duplicate);
    }

    #[test]
    fn forward_tsn_skips_what_was_abandoned() {
        let mut r = ReceivedTsns::new(Tsn(1), 1024);
        for t in [1, 5, 6] {
            r.receive(Tsn(t));
        }
        r.forward_to(Tsn(3));
        assert_eq!(r.cumulative(), Tsn(3));
        r.forward_to(Tsn(4));
        assert_eq!(r.cumulative(), Tsn(6), "5 and 6 had arrived");
        r.forward_to(Tsn(2));
        assert_eq!(r.cumulative(), Tsn(6));
        r.forward_to(Tsn(100_000));
        assert_eq!(r.cumulative(), Tsn(100_000));
        assert_eq!(r.receive(Tsn(100_001)), Arrival::New);
    }

    #[test]
    fn gap_blocks_are_bounded() {
        let mut r = ReceivedTsns::new(Tsn(0), 4096);
        for t in (2..1000).step_by(2) {
            r.receive(Tsn(t));
        }
        assert_eq!(gaps(&mut r).len(), MAX_GAP_BLOCKS);
    }

    #[test]
    fn gap_blocks_fit_a_small_packet() {
        let mut r = ReceivedTsns::new(Tsn(0), 4096);
        r.fit_packet(300);
        for t in (2..1000).step_by(2) {
            r.receive(Tsn(t));
        }
        // (300 - 12 - 16) / 4 = 68 four-byte entries, 32 of them kept for
        // duplicates.
        assert_eq!(gaps(&mut r).len(), 36);
    }
}
