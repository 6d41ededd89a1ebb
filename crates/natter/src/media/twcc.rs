//! What a receiver reports for transport-wide congestion control
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the arrival
//! time of every packet that carried a transport-wide sequence number,
//! sent back every [`feedback_interval`] so that the sender's bandwidth
//! estimator (Chromium's GoogCC) sees delay and loss. The buffers are
//! kept between feedbacks: recording and reporting allocate nothing once
//! they have grown to a feedback's size.

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

/// The arrivals not reported yet.
#[derive(Debug, Default)]
pub struct TwccRecorder {
    epoch: Option<Instant>,
    seq: SeqUnwrapper,
    /// Extended sequence numbers and arrivals in µs from `epoch`, as
    /// they came (a duplicate too).
    arrivals: Vec<(u64, i64)>,
    /// The last feedback's arrivals, in order.
    report: Vec<(u16, i64)>,
    /// The first number the next feedback reports: packets from here on
    /// that never arrived are reported lost.
    next_base: Option<u64>,
    feedback_count: u8,
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
    /// Packet `seq` arrived at `now`. One reported already (it came
    /// after its feedback, which said it was lost) is not reported again.
    pub fn on_packet(&mut self, now: Instant, seq: u16) {
        let Some(seq) = self.seq.unwrap(seq) else { return };
        if self.next_base.is_some_and(|base| seq < base) || self.arrivals.len() >= MAX_PENDING {
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
        self.next_base = Some(last + 1);
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
}

#[cfg(test)]
mod tests {
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
        // 12 and 13 are lost; 12 turns up after the feedback that said so.
        r.on_packet(t0 + Duration::from_millis(20), 14);
        let f = r.feedback().unwrap();
        assert_eq!((f.base_seq, f.feedback_count), (12, 1));
        assert_eq!(f.received, [(14, 20_000)]);
        r.on_packet(t0 + Duration::from_millis(30), 12);
        assert!(!r.has_pending());
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
