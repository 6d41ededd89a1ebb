//! What a receiver reports for transport-wide congestion control
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the arrival
//! time of every packet that carried a transport-wide sequence number,
//! sent back about every [`FEEDBACK_INTERVAL`] so that the sender's
//! bandwidth estimator (Chromium's GoogCC) sees delay and loss. The
//! buffers are kept between feedbacks: recording and reporting allocate
//! nothing once they have grown to a feedback's size.

use std::time::{Duration, Instant};

use natter_rtp::SeqUnwrapper;

/// How often feedback goes out while packets arrive (libwebrtc's
/// default is 100 ms).
pub const FEEDBACK_INTERVAL: Duration = Duration::from_millis(100);
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
