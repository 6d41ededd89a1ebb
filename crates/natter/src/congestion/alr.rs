//! Application-limited region (ALR) detection. When the application
//! sends less than the target, feedback cannot show what the path would
//! carry, so the estimate must not be trusted to grow, and probing is
//! how to learn more (libwebrtc's AlrDetector).
//!
//! A budget fills at [`BUDGET_RATIO`] of the target and empties by what
//! the application sends, within one [`WINDOW`] of it: a budget mostly
//! unspent means the application is limited. The application may also
//! say outright how much it wants to send.

use std::time::{Duration, Instant};

/// The budget's rate as a share of the target (libwebrtc: 65%).
const BUDGET_RATIO: f64 = 0.65;
/// The budget holds this much sending (libwebrtc: 500 ms).
const WINDOW: Duration = Duration::from_millis(500);
/// ALR starts when this share of the budget is unspent...
const START_RATIO: f64 = 0.8;
/// ...and ends when less than this is.
const STOP_RATIO: f64 = 0.5;

/// The ALR detector.
#[derive(Debug, Default)]
pub struct AlrDetector {
    /// Unspent budget in bytes, within ±one window at the budget rate.
    budget: f64,
    last: Option<Instant>,
    by_budget: bool,
    /// What the application says it wants to send.
    demand_bps: Option<u64>,
    target_bps: u64,
}

impl AlrDetector {
    /// The application sent `size` bytes of media at `now`.
    pub fn on_media_sent(&mut self, now: Instant, size: usize) {
        self.advance(now);
        self.budget -= size as f64;
        self.settle();
    }

    /// Time passing with nothing sent fills the budget.
    pub fn on_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.settle();
    }

    pub fn set_target(&mut self, target_bps: u64) {
        self.target_bps = target_bps;
    }

    pub fn set_demand(&mut self, demand_bps: Option<u64>) {
        self.demand_bps = demand_bps;
    }

    /// What the application said it wants to send.
    pub fn demand_bps(&self) -> Option<u64> {
        self.demand_bps
    }

    /// Whether the application said it wants more than the target.
    pub fn wants_more(&self) -> bool {
        self.demand_bps.is_some_and(|d| d > self.target_bps)
    }

    /// Whether the application is sending less than the target lets it.
    pub fn in_alr(&self) -> bool {
        self.by_budget
            || self
                .demand_bps
                .is_some_and(|d| (d as f64) < BUDGET_RATIO * self.target_bps as f64)
    }

    fn capacity(&self) -> f64 {
        self.target_bps as f64 * BUDGET_RATIO / 8.0 * WINDOW.as_secs_f64()
    }

    fn advance(&mut self, now: Instant) {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(now);
        let cap = self.capacity();
        self.budget =
            (self.budget + self.target_bps as f64 * BUDGET_RATIO / 8.0 * elapsed.as_secs_f64()).clamp(-cap, cap);
    }

    fn settle(&mut self) {
        let cap = self.capacity();
        self.budget = self.budget.clamp(-cap, cap);
        let unspent = if cap > 0.0 { self.budget / cap } else { 0.0 };
        if unspent > START_RATIO {
            self.by_budget = true;
        } else if unspent < STOP_RATIO {
            self.by_budget = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_a_third_of_the_target_is_application_limited() {
        let t0 = Instant::now();
        let mut alr = AlrDetector::default();
        alr.set_target(1_000_000);
        // 1000 bytes every 24 ms: a third of 1 Mbit/s.
        for i in 0..100 {
            alr.on_media_sent(t0 + Duration::from_millis(24 * i), 1000);
        }
        assert!(alr.in_alr());
        // 1250 bytes every 10 ms: the whole target.
        for i in 0..100 {
            alr.on_media_sent(t0 + Duration::from_millis(2400 + 10 * i), 1250);
        }
        assert!(!alr.in_alr());
    }
}
