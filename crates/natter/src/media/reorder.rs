//! Puts one stream's packets back in sequence order for its
//! depacketizer (a jitter buffer without playout timing: frames leave
//! as soon as they are complete).
//!
//! A missing packet holds the ones after it back for at most
//! `max_wait`, long enough for a retransmission that a NACK asked for
//! (RFC 4585 §6.2.1, RFC 4588) to arrive; then the buffer gives it up
//! and moves on, and the depacketizer sees the gap.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Held {
    arrival: Instant,
    packet: Vec<u8>,
}

/// Packets by extended sequence number (RFC 3550 Appendix A.1).
#[derive(Debug)]
pub struct ReorderBuffer {
    /// The sequence number the depacketizer expects next.
    next: Option<u64>,
    held: BTreeMap<u64, Held>,
    max_wait: Duration,
    max_packets: usize,
    /// Buffers of packets handed out and given back, for reuse.
    spare: Vec<Vec<u8>>,
    /// Packets that arrived after their turn, or twice.
    pub late: u64,
}

impl ReorderBuffer {
    pub fn new(max_wait: Duration, max_packets: usize) -> Self {
        ReorderBuffer {
            next: None,
            held: BTreeMap::new(),
            max_wait,
            max_packets,
            spare: Vec::new(),
            late: 0,
        }
    }

    /// Holds a copy of `packet`, number `seq`, that arrived at `now`.
    pub fn push(&mut self, now: Instant, seq: u64, packet: &[u8]) {
        if self.next.is_some_and(|next| seq < next) || self.held.contains_key(&seq) {
            self.late += 1;
            return;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.held.insert(
            seq,
            Held {
                arrival: now,
                packet: buf,
            },
        );
    }

    /// The next packet in order, or one after a gap that waited too long.
    pub fn pop(&mut self, now: Instant) -> Option<(u64, Vec<u8>)> {
        let (&first, _) = self.held.first_key_value()?;
        let in_order = self.next.is_none_or(|next| first == next);
        let overdue = self.deadline().is_some_and(|d| d <= now) || self.held.len() > self.max_packets;
        if !in_order && !overdue {
            return None;
        }
        let (seq, held) = self.held.pop_first()?;
        self.next = Some(seq + 1);
        Some((seq, held.packet))
    }

    /// Gives a buffer from [`ReorderBuffer::pop`] back.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < 64 {
            self.spare.push(buf);
        }
    }

    /// When a gap stops holding packets back.
    pub fn deadline(&self) -> Option<Instant> {
        let (&first, _) = self.held.first_key_value()?;
        if self.next.is_none_or(|next| first == next) {
            return None;
        }
        self.held.values().map(|h| h.arrival).min().map(|t| t + self.max_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_packets_pass_at_once_and_a_gap_waits_for_its_packet() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(Duration::from_millis(100), 100);
        b.push(t0, 10, b"a");
        assert_eq!(b.pop(t0).map(|(s, _)| s), Some(10));
        b.push(t0, 12, b"c");
        assert_eq!(b.pop(t0), None);
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
        b.push(t0 + Duration::from_millis(30), 11, b"b");
        assert_eq!(b.pop(t0), Some((11, b"b".to_vec())));
        assert_eq!(b.pop(t0).map(|(s, _)| s), Some(12));
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn a_gap_is_given_up_after_max_wait_and_late_packets_are_dropped() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(Duration::from_millis(100), 100);
        b.push(t0, 1, b"a");
        b.pop(t0);
        b.push(t0, 3, b"c");
        assert_eq!(b.pop(t0 + Duration::from_millis(99)), None);
        assert_eq!(b.pop(t0 + Duration::from_millis(100)).map(|(s, _)| s), Some(3));
        b.push(t0, 2, b"b");
        assert_eq!(b.late, 1);
        assert_eq!(b.pop(t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_full_buffer_moves_on() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(Duration::from_secs(10), 2);
        b.push(t0, 0, b"a");
        b.pop(t0);
        for seq in 2..5 {
            b.push(t0, seq, b"x");
        }
        assert_eq!(b.pop(t0).map(|(s, _)| s), Some(2));
    }
}
