//! Which packets to ask for again (RFC 4585 §6.2.1 Generic NACK): every
//! sequence number skipped is asked for at once, then again each round
//! trip until it arrives, for at most [`MAX_RETRIES`] times and
//! [`MAX_AGE`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Asks at most this often for one packet.
pub const MAX_RETRIES: u8 = 10;
/// A packet older than this is of no use to a real-time decoder.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// A gap wider than this is not repaired: a keyframe is cheaper.
pub const MAX_MISSING: u64 = 1000;
/// The least time between two requests for one packet.
const MIN_RETRY: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug)]
struct Missing {
    first: Instant,
    asked: u8,
    next: Instant,
}

/// The missing packets of one stream.
#[derive(Debug, Default)]
pub struct NackGenerator {
    highest: Option<u64>,
    missing: BTreeMap<u64, Missing>,
    /// No entry is due before this: exact after [`NackGenerator::poll`],
    /// at most early after an arrival. Kept, because a connection asks
    /// every stream for its deadline after every input, and a walk over
    /// up to [`MAX_MISSING`] entries there took 68% of the SFU worker
    /// under loss (bench/sfu-50).
    deadline: Option<Instant>,
}

impl NackGenerator {
    /// Notes the arrival of packet `seq` (extended); returns false when
    /// so many went missing before it that only a keyframe will do.
    pub fn on_packet(&mut self, now: Instant, seq: u64) -> bool {
        let Some(highest) = self.highest.filter(|&h| seq > h) else {
            self.highest = self.highest.or(Some(seq));
            self.missing.remove(&seq);
            if self.missing.is_empty() {
                self.deadline = None;
            }
            return true;
        };
        self.highest = Some(seq);
        if seq - highest - 1 > MAX_MISSING {
            self.missing.clear();
            self.deadline = None;
            return false;
        }
        if seq > highest + 1 {
            // The new entries are due now.
            self.deadline = Some(self.deadline.map_or(now, |d| d.min(now)));
        }
        for lost in highest + 1..seq {
            self.missing.insert(
                lost,
                Missing {
                    first: now,
                    asked: 0,
                    next: now,
                },
            );
        }
        // Keep the window bounded when losses pile up.
        while self.missing.len() as u64 > MAX_MISSING {
            self.missing.pop_first();
        }
        true
    }

    /// The sequence numbers to ask for now (into `lost`, as 16-bit
    /// numbers); `rtt` paces the next request for each.
    pub fn poll(&mut self, now: Instant, rtt: Duration, lost: &mut Vec<u16>) {
        let retry = rtt.max(MIN_RETRY);
        self.missing
            .retain(|_, m| m.asked < MAX_RETRIES && now.saturating_duration_since(m.first) < MAX_AGE);
        let mut deadline: Option<Instant> = None;
        for (&seq, m) in self.missing.iter_mut() {
            if m.next <= now {
                lost.push(seq as u16);
                m.asked += 1;
                m.next = now + retry;
            }
            let due = m.next.min(m.first + MAX_AGE);
            deadline = Some(deadline.map_or(due, |d| d.min(due)));
        }
        self.deadline = deadline;
    }

    /// When [`NackGenerator::poll`] next has something to ask for.
    /// It may be early (a packet asked for arrived since), never late.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Packets still missing.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_a_gap_at_once_then_each_round_trip_until_it_arrives() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut g = NackGenerator::default();
        assert!(g.on_packet(t0, 100));
        assert!(g.on_packet(t0, 103));
        let mut lost = Vec::new();
        g.poll(t0, rtt, &mut lost);
        assert_eq!(lost, [101, 102]);
        lost.clear();
        g.poll(t0 + Duration::from_millis(10), rtt, &mut lost);
        assert!(lost.is_empty());
        assert_eq!(g.deadline(), Some(t0 + rtt));
        assert!(g.on_packet(t0, 101));
        g.poll(t0 + rtt, rtt, &mut lost);
        assert_eq!(lost, [102]);
    }

    #[test]
    fn the_kept_deadline_is_never_late() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        let mut g = NackGenerator::default();
        assert_eq!(g.deadline(), None);
        g.on_packet(t0, 10);
        g.on_packet(t0, 12);
        assert_eq!(g.deadline(), Some(t0), "11 is due at once");
        g.poll(t0, rtt, &mut Vec::new());
        assert_eq!(g.deadline(), Some(t0 + rtt));
        let t5 = t0 + Duration::from_millis(5);
        g.on_packet(t5, 14);
        assert_eq!(g.deadline(), Some(t5), "13 is due at once");
        g.on_packet(t5, 11);
        g.on_packet(t5, 13);
        assert_eq!(g.deadline(), None, "nothing is missing");
    }

    #[test]
    fn gives_up_after_max_age_and_on_huge_gaps() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        g.on_packet(t0, 0);
        g.on_packet(t0, 2);
        let mut lost = Vec::new();
        g.poll(t0 + MAX_AGE, Duration::ZERO, &mut lost);
        assert!(lost.is_empty());
        assert_eq!(g.missing(), 0);
        assert!(!g.on_packet(t0, 3 + MAX_MISSING + 1));
        assert_eq!(g.missing(), 0);
    }

    #[test]
    fn wraps_at_16_bits() {
        let t0 = Instant::now();
        let mut g = NackGenerator::default();
        g.on_packet(t0, 65_534);
        g.on_packet(t0, 65_537);
        let mut lost = Vec::new();
        g.poll(t0, Duration::ZERO, &mut lost);
        assert_eq!(lost, [65_535, 0]);
    }
}
