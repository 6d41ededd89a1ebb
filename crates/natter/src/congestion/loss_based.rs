//! The loss-based controller (draft-ietf-rmcat-gcc-02 §6): loss above
//! 10% lowers the rate by half the loss, loss below 2% lets it grow,
//! between the two it holds. Loss only ever lowers the target: the
//! controller gives an upper bound, and none while loss is low.
//!
//! What differs from gcc-02 (the idea of libwebrtc's loss-based v2): the
//! loss a link has without congestion is learned and only the loss
//! beyond it counts. Loss that comes while the delay-based detector sees
//! no queue building is not congestion (a drop-tail queue overflows only
//! after its delay grew), so its average is the link's inherent loss; a
//! link with 5% random loss then runs at its capacity instead of at
//! half of it. (NADA, RFC 8698 §4.2, damps small loss for the same
//! reason: its congestion signal weighs the loss ratio by its square.)

use std::time::{Duration, Instant};

use super::overuse::BandwidthUsage;

/// gcc-02 §6: above this loss the rate decreases...
const DECREASE_LOSS: f64 = 0.10;
/// ...and below this it may increase.
const INCREASE_LOSS: f64 = 0.02;
/// gcc-02 §6: the increase while loss is low, per second.
const INCREASE_PER_SECOND: f64 = 1.05;
/// Loss is judged over at least this many packets...
const MIN_PACKETS: u32 = 50;
/// ...and this much time.
const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// How fast the inherent loss follows new windows (after the first few,
/// which are averaged evenly).
const INHERENT_SMOOTHING: f64 = 0.1;
/// Loss above this is never taken as the link's own.
const MAX_INHERENT_LOSS: f64 = 0.2;

/// The loss-based bound and the inherent loss it has learned.
#[derive(Debug, Default)]
pub struct LossBasedController {
    bound_bps: Option<f64>,
    inherent: f64,
    windows: u32,
    lost: u32,
    received: u32,
    /// Whether the delay detector saw overuse during the window.
    congested: bool,
    window_start: Option<Instant>,
    last_bound_change: Option<Instant>,
}

impl LossBasedController {
    /// Counts one feedback's newly reported packets; `usage` is the delay
    /// detector's state then, and `delay_based_bps` the delay-based
    /// estimate. Once a window is complete the bound is updated: it
    /// grows while loss is low and is dropped once it no longer limits
    /// the delay-based estimate (compared with the target, which the
    /// bound itself sets, it would be dropped at once, and the target
    /// would jump to whatever the delay-based estimate grew to under
    /// it).
    pub fn on_feedback(
        &mut self,
        now: Instant,
        lost: usize,
        received: usize,
        usage: BandwidthUsage,
        delay_based_bps: u64,
    ) {
        let start = *self.window_start.get_or_insert(now);
        self.lost = self.lost.saturating_add(lost as u32);
        self.received = self.received.saturating_add(received as u32);
        self.congested |= usage == BandwidthUsage::Overusing;
        let total = self.lost + self.received;
        if total < MIN_PACKETS || now.saturating_duration_since(start) < MIN_INTERVAL {
            return;
        }
        let loss = f64::from(self.lost) / f64::from(total);
        if !self.congested {
            self.windows += 1;
            let alpha = (1.0 / f64::from(self.windows)).max(INHERENT_SMOOTHING);
            self.inherent = (self.inherent + alpha * (loss - self.inherent)).min(MAX_INHERENT_LOSS);
        }
        let excess = (loss - self.inherent).max(0.0);
        let elapsed = self
            .last_bound_change
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        if excess > DECREASE_LOSS {
            let from = self
                .bound_bps
                .unwrap_or(delay_based_bps as f64)
                .min(delay_based_bps as f64);
            self.bound_bps = Some(from * (1.0 - 0.5 * excess));
        } else if excess < INCREASE_LOSS {
            if let Some(bound) = self.bound_bps {
                let grown = bound * INCREASE_PER_SECOND.powf(elapsed.as_secs_f64().min(1.0));
                self.bound_bps = (grown < delay_based_bps as f64).then_some(grown);
            }
        }
        self.last_bound_change = Some(now);
        self.window_start = Some(now);
        self.lost = 0;
        self.received = 0;
        self.congested = false;
    }

    /// A probe reached `bps` without the delay growing: the bound is
    /// at least that (libwebrtc's `SetSendBitrate` on a probe result).
    /// Loss that lowered the bound came from a path that has since
    /// grown; growing back at 5% a second would take a minute.
    pub fn on_probe(&mut self, bps: u64) {
        if let Some(bound) = &mut self.bound_bps {
            *bound = bound.max(bps as f64);
        }
    }

    /// The upper bound loss puts on the target, if any.
    pub fn bound_bps(&self) -> Option<u64> {
        self.bound_bps.map(|b| b as u64)
    }

    /// The loss the link has without congestion, as learned so far.
    pub fn inherent_loss(&self) -> f64 {
        self.inherent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_raises_the_bound() {
        let t0 = Instant::now();
        let mut c = LossBasedController::default();
        // Half the packets lost: the bound falls below 1 Mbit/s.
        c.on_feedback(t0, 50, 50, BandwidthUsage::Overusing, 1_000_000);
        c.on_feedback(
            t0 + Duration::from_secs(1),
            50,
            50,
            BandwidthUsage::Overusing,
            1_000_000,
        );
        let low = c.bound_bps().unwrap();
        assert!(low < 1_000_000, "{low}");
        c.on_probe(low / 2);
        assert_eq!(c.bound_bps(), Some(low));
        c.on_probe(3_000_000);
        assert_eq!(c.bound_bps(), Some(3_000_000));
    }

    #[test]
    fn random_loss_is_learned_and_congestive_loss_lowers() {
        let t0 = Instant::now();
        let mut c = LossBasedController::default();
        for i in 0..20 {
            let now = t0 + Duration::from_millis(500 * i);
            c.on_feedback(now, 10, 90, BandwidthUsage::Normal, 1_000_000);
        }
        assert!((c.inherent_loss() - 0.1).abs() < 1e-9);
        assert_eq!(c.bound_bps(), None);
        c.on_feedback(
            t0 + Duration::from_secs(11),
            40,
            60,
            BandwidthUsage::Overusing,
            1_000_000,
        );
        let bound = c.bound_bps().unwrap();
        assert_eq!(bound, (1_000_000.0 * (1.0 - 0.5 * 0.3)) as u64);
    }

    /// Once loss is low again the bound grows by 5% a second (gcc-02
    /// §6) until it passes the delay-based estimate; it does not vanish
    /// at once and let the target jump to an estimate that grew while
    /// the bound held it.
    #[test]
    fn the_bound_grows_back_to_the_delay_based_estimate() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut c = LossBasedController::default();
        c.on_feedback(at(0), 0, 0, BandwidthUsage::Normal, 1_000_000);
        c.on_feedback(at(500), 40, 60, BandwidthUsage::Overusing, 1_000_000);
        let bound = c.bound_bps().unwrap();
        assert_eq!(bound, 800_000);
        c.on_feedback(at(1000), 0, 100, BandwidthUsage::Normal, 1_300_000);
        let grown = c.bound_bps().expect("the bound still limits");
        assert!(grown > bound && grown < 900_000, "{grown}");
        for i in 1..=10 {
            c.on_feedback(at(1000 + 1000 * i), 0, 100, BandwidthUsage::Normal, 1_300_000);
        }
        assert_eq!(c.bound_bps(), None, "the bound passed the delay-based estimate");
    }
}
