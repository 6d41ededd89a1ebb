//! A bound on the rate of retransmissions: RTX repairs (RFC 4588) are
//! sent at most at the target bitrate over a window of
//! [`WINDOW`] (libwebrtc's retransmission rate limiter, which it sets to
//! the target). Media and its repairs share the path: repairs that are
//! lost at a full queue are asked for again, and without a bound they
//! alone can take more than the path carries and keep the queue full.

use std::time::{Duration, Instant};

/// The window the rate is judged over (libwebrtc: 1 s).
pub const WINDOW: Duration = Duration::from_secs(1);

/// A leaky bucket of the bytes repaired: it empties at the target rate
/// and holds at most one [`WINDOW`] of it.
#[derive(Debug, Default)]
pub struct RetransmissionLimiter {
    /// Bytes repaired and not yet drained.
    level: f64,
    last: Option<Instant>,
}

impl RetransmissionLimiter {
    /// Whether a repair of `size` bytes may be sent at `now` under
    /// `target_bps`; if so it is counted.
    pub fn try_send(&mut self, now: Instant, size: usize, target_bps: u64) -> bool {
        let per_second = target_bps as f64 / 8.0;
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
        self.level = (self.level - per_second * elapsed.as_secs_f64()).max(0.0);
        if self.level + size as f64 > per_second * WINDOW.as_secs_f64() {
            return false;
        }
        self.level += size as f64;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repairs_stay_within_the_target_over_the_window() {
        let t0 = Instant::now();
        let mut limiter = RetransmissionLimiter::default();
        // 80 kbit/s: 10,000 bytes a second.
        let sent = (0..20).filter(|_| limiter.try_send(t0, 1000, 80_000)).count();
        assert_eq!(sent, 10);
        assert!(!limiter.try_send(t0 + Duration::from_millis(50), 1000, 80_000));
        // 100 ms drains 1,000 bytes: one more repair fits.
        assert!(limiter.try_send(t0 + Duration::from_millis(100), 1000, 80_000));
        assert!(!limiter.try_send(t0 + Duration::from_millis(100), 1000, 80_000));
    }
}
