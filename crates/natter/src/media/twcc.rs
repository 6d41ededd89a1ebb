//! What a receiver reports for transport-wide congestion control
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the arrival
//! time of every packet that carried a transport-wide sequence number,
//! sent back every [`feedback_interval`] so that the sender's bandwidth
//! estimator (Chromium's GoogCC) sees delay and loss. The buffers are
//! kept between feedbacks: recording and reporting allocate nothing once
//! they have grown to a feedback's size.
//!
//! A packet that arrives after a feedback reported it lost (reordering)
//! is reported again, as libwebrtc's `RemoteEstimatorProxy` does: the
//! next feedback starts at its number, so the sender learns its arrival
//! instead of counting a loss that was none (the draft's §3.1 lets a
//! feedback cover numbers an earlier one did). The numbers between it
//! and the rest of that feedback are reported not received: a sender
//! has them already (natter's `SendHistory` and libwebrtc's
//! `TransportFeedbackAdapter` ignore what they already know).

use std::time::{Duration, Instant};

use natter_rtp::SeqUnwrapper;

/// libwebrtc's interval before it knows its own send estimate
/// (`kDefaultInterval` of its transport-wide feedback generator).
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);
/// libwebrtc's bounds on the interval (`kMinInterval`, `kMaxInterval`).
pub const MIN_FEEDBACK_INTERVAL: Duration = Duration::from_millis(50);
pub const MAX_FEEDBACK_INTERVAL: Duration = Duration::from_millis(250);
/// A feedback packet as libwebrtc reckons it: IPv4, UDP, SRTCP and an
/// average report, 68 bytes.
const FEEDBACK_BITS: u64 = (20 + 8 + 10 + 30) * 8;

/// How often feedback goes out while packets arrive when our own send
/// estimate is `estimate_bps`: as libwebrtc's generator does, so that the
/// reports take 5% of it, within [`MIN_FEEDBACK_INTERVAL`] and
/// [`MAX_FEEDBACK_INTERVAL`] (every 50 ms from about 218 kbit/s up).
/// Chromium's estimator hears of a queue that much sooner: when natter
/// reported 100 ms after the first arrival since its last report (8 a
/// second; a Chromium receiver sent 15), Chromium's video overfilled a
/// 300 ms tbf queue after its capacity dropped from 1 to 0.6 Mbit/s
/// (tbf dropped 1.6-4% in 3 of 4 runs of tests/peer/bwe.test.mjs, none
/// toward Chromium); on this period, none in 3 runs.
pub fn feedback_interval(estimate_bps: u64) -> Duration {
    let share_bps = estimate_bps / 20;
    if share_bps == 0 {
        return MAX_FEEDBACK_INTERVAL;
    }
    Duration::from_micros(FEEDBACK_BITS * 1_000_000 / share_bps).clamp(MIN_FEEDBACK_INTERVAL, MAX_FEEDBACK_INTERVAL)
}
/// Arrivals held at most; more than a feedback packet reports.
const MAX_PENDING: usize = 4096;
/// How far behind the next feedback's first number a packet reported
/// lost is still reported when it arrives: 1024 numbers, a second of
/// reordering at 1000 packets a second (libwebrtc keeps 500 ms of
/// arrivals for this).
const LATE_SPAN: u64 = 1024;

/// The arrivals not reported yet.
#[derive(Debug)]
pub struct TwccRecorder {
    epoch: Option<Instant>,
    /// Starts in cycle 1: a packet sent before the first one to arrive
    /// is reported even across a wrap.
    seq: SeqUnwrapper,
    /// Extended sequence numbers and arrivals in µs from `epoch`, as
    /// they came (a duplicate too).
    arrivals: Vec<(u64, i64)>,
    /// The last feedback's arrivals, in order.
    report: Vec<(u16, i64)>,
    /// The first number the next feedback reports: packets from here on
    /// that never arrived are reported lost.
    next_base: Option<u64>,
    /// Of the [`LATE_SPAN`] numbers before `next_base`, those reported
    /// received (bit `seq % LATE_SPAN`): one of the others that turns up
    /// is reported again.
    reported: [u64; LATE_SPAN as usize / 64],
    feedback_count: u8,
}

impl Default for TwccRecorder {
    fn default() -> Self {
        TwccRecorder {
            epoch: None,
            seq: SeqUnwrapper::with_first_cycle(1),
            arrivals: Vec::new(),
            report: Vec::new(),
            next_base: None,
            reported: [0; LATE_SPAN as usize / 64],
            feedback_count: 0,
        }
    }
}

/// One feedback to write with natter-rtp's `TransportFeedbackBuilder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwccFeedback<'a> {
    pub base_seq: u16,
    pub feedback_count: u8,
    /// Sequence numbers and arrival times in µs, ascending.
    pub received: &'a [(u16, i64)],
}

impl TwccRecorder {
    /// Packet `seq` arrived at `now`. One that a feedback reported lost
    /// is reported again if it is at most [`LATE_SPAN`] numbers late;
    /// one already reported received (a duplicate) is not.
    pub fn on_packet(&mut self, now: Instant, seq: u16) {
        let Some(seq) = self.seq.unwrap(seq) else { return };
        let late = self.next_base.is_some_and(|base| seq < base);
        if (late && !self.reports_again(seq)) || self.arrivals.len() >= MAX_PENDING {
            return;
        }
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = i64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        self.arrivals.push((seq, arrival));
    }

    pub fn has_pending(&self) -> bool {
        !self.arrivals.is_empty()
    }

    /// The feedback for every arrival since the last one, if any.
    pub fn feedback(&mut self) -> Option<TwccFeedback<'_>> {
        // In order of number, a duplicate after the first arrival (the
        // clock only moves forward), which is the one kept.
        self.arrivals.sort_unstable();
        self.arrivals.dedup_by_key(|(seq, _)| *seq);
        let (first, _) = *self.arrivals.first()?;
        let (last, _) = *self.arrivals.last()?;
        let base = self.next_base.unwrap_or(first).min(first);
        let end = self.next_base.unwrap_or(0).max(last + 1);
        self.remember(base, end);
        self.next_base = Some(end);
        self.report.clear();
        (self.report).extend(self.arrivals.drain(..).map(|(seq, at)| (seq as u16, at)));
        let count = self.feedback_count;
        self.feedback_count = self.feedback_count.wrapping_add(1);
        Some(TwccFeedback {
            base_seq: base as u16,
            feedback_count: count,
            received: &self.report,
        })
    }

    /// Whether late packet `seq` (before `next_base`) is to be reported:
    /// recent enough, and reported lost, not received.
    fn reports_again(&self, seq: u64) -> bool {
        let recent = self.next_base.is_some_and(|base| base - seq <= LATE_SPAN);
        recent && self.reported[bit(seq).0] & bit(seq).1 == 0
    }

    /// The feedback about to go reports `base..end`: which of them
    /// (within the last [`LATE_SPAN`]) were received. Numbers an
    /// earlier feedback reported keep what it said, unless they arrived
    /// since: a packet reported received and now reported not received
    /// again (it lies between a late packet and the rest) was received.
    fn remember(&mut self, base: u64, end: u64) {
        let window = end.saturating_sub(LATE_SPAN);
        let new = self.next_base.unwrap_or(base).max(window);
        for seq in new..end {
            self.reported[bit(seq).0] &= !bit(seq).1;
        }
        for &(seq, _) in self.arrivals.iter().filter(|(seq, _)| *seq >= window) {
            self.reported[bit(seq).0] |= bit(seq).1;
        }
    }
}

/// Where `seq`'s bit is in [`TwccRecorder::reported`]: word and mask.
fn bit(seq: u64) -> (usize, u64) {
    let index = seq % LATE_SPAN;
    ((index / 64) as usize, 1 << (index % 64))
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn reports_arrivals_in_order_and_losses_from_the_last_feedback_on() {
        let t0 = Instant::now();
        let mut r = TwccRecorder::default();
        assert!(r.feedback().is_none());
        r.on_packet(t0, 11);
        r.on_packet(t0 + Duration::from_millis(5), 10);
        let f = r.feedback().unwrap();
        assert_eq!((f.base_seq, f.feedback_count), (10, 0));
        assert_eq!(f.received, [(10, 5000), (11, 0)]);
        // 12 and 13 are lost; 12 turns up after the feedback that said
        // so, and the next one reports it from its number on.
        r.on_packet(t0 + Duration::from_millis(20), 14);
        let f = r.feedback().unwrap();
        assert_eq!((f.base_seq, f.feedback_count), (12, 1));
        assert_eq!(f.received, [(14, 20_000)]);
        r.on_packet(t0 + Duration::from_millis(30), 12);
        r.on_packet(t0 + Duration::from_millis(31), 15);
        let f = r.feedback().unwrap();
        assert_eq!((f.base_seq, f.feedback_count), (12, 2));
        assert_eq!(f.received, [(12, 30_000), (15, 31_000)]);
        // A duplicate of a packet reported received is not reported.
        r.on_packet(t0 + Duration::from_millis(40), 14);
        r.on_packet(t0 + Duration::from_millis(41), 12);
        assert!(!r.has_pending());
    }

    #[test]
    fn a_packet_too_late_is_not_reported_again() {
        let t0 = Instant::now();
        let mut r = TwccRecorder::default();
        r.on_packet(t0, 0);
        r.on_packet(t0, LATE_SPAN as u16 + 2);
        r.feedback().unwrap();
        // The next feedback starts at 1027: 1 and 2 are more than
        // LATE_SPAN behind it, 3 is not.
        r.on_packet(t0, 1);
        r.on_packet(t0, 2);
        assert!(!r.has_pending());
        r.on_packet(t0, 3);
        assert_eq!(r.feedback().unwrap().received, [(3, 0)]);
    }

    proptest! {
        /// Packets numbered from `start` (wrapping), sent 1 ms apart,
        /// each lost or delayed by up to 60 ms (so reordered), with
        /// feedback every `interval` ms: every packet that arrived is
        /// reported received exactly once, with its arrival time, and
        /// every number from the first feedback's base to the last is in
        /// some feedback's range (received, or lost). Before that base a
        /// late arrival is reported, but the numbers between it and the
        /// base are not: a feedback ends at a received packet, and the
        /// ones after the late packet were reported already.
        #[test]
        fn every_arrival_is_reported_received_once(
            start in any::<u16>(),
            fates in proptest::collection::vec(proptest::option::weighted(0.9, 0u64..60), 1..300),
            interval in 5u64..120,
        ) {
            let t0 = Instant::now();
            let mut arrivals: Vec<(u64, u16)> = (fates.iter().enumerate())
                .filter_map(|(i, delay)| Some((i as u64 + (*delay)?, start.wrapping_add(i as u16))))
                .collect();
            arrivals.sort();
            let mut r = TwccRecorder::default();
            let mut received: HashMap<u16, Vec<i64>> = HashMap::new();
            let mut covered: HashSet<u16> = HashSet::new();
            let mut first_base = None;
            let mut take = |r: &mut TwccRecorder| {
                if let Some(f) = r.feedback() {
                    first_base.get_or_insert(f.base_seq);
                    let last = f.received.last().unwrap().0;
                    for offset in 0..=last.wrapping_sub(f.base_seq) {
                        covered.insert(f.base_seq.wrapping_add(offset));
                    }
                    for &(seq, at) in f.received {
                        received.entry(seq).or_default().push(at);
                    }
                }
            };
            let mut next_feedback = interval;
            for &(at_ms, seq) in &arrivals {
                while next_feedback <= at_ms {
                    take(&mut r);
                    next_feedback += interval;
                }
                r.on_packet(t0 + Duration::from_millis(at_ms), seq);
            }
            take(&mut r);
            let first_ms = arrivals.first().map_or(0, |a| a.0);
            for &(at_ms, seq) in &arrivals {
                let at_us = (at_ms - first_ms) as i64 * 1000;
                prop_assert_eq!(received.get(&seq), Some(&vec![at_us]), "packet {}", seq);
            }
            let (Some(lowest), Some(highest)) = (first_base.map(|base| base.wrapping_sub(start)), arrivals.iter().map(|a| a.1.wrapping_sub(start)).max()) else {
                return Ok(());
            };
            for offset in lowest..=highest {
                prop_assert!(covered.contains(&start.wrapping_add(offset)), "{} in no feedback", offset);
            }
        }
    }

    #[test]
    fn the_interval_keeps_reports_at_5_percent_of_the_estimate_within_50_and_250_ms() {
        assert_eq!(feedback_interval(0), MAX_FEEDBACK_INTERVAL);
        assert_eq!(feedback_interval(30_000), MAX_FEEDBACK_INTERVAL);
        // 544 bits in 5% of 100 kbit/s: 108.8 ms.
        assert_eq!(feedback_interval(100_000), Duration::from_micros(108_800));
        assert_eq!(feedback_interval(300_000), MIN_FEEDBACK_INTERVAL);
        assert_eq!(feedback_interval(u64::MAX), MIN_FEEDBACK_INTERVAL);
    }

    #[test]
    fn wraps_at_16_bits() {
        let t0 = Instant::now();
        let mut r = TwccRecorder::default();
        r.on_packet(t0, 65_535);
        r.on_packet(t0, 0);
        let f = r.feedback().unwrap();
        assert_eq!(f.base_seq, 65_535);
        assert_eq!(f.received, [(65_535, 0), (0, 0)]);
    }
}
