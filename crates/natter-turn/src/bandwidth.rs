//! A token bucket that caps an allocation's relayed bytes per second.

use std::time::Instant;

/// Allows `rate` bytes per second on average, with bursts of up to one
/// second's worth.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: u64,
    tokens: u64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate_bytes_per_sec: u64, now: Instant) -> Self {
        TokenBucket {
            rate: rate_bytes_per_sec,
            tokens: rate_bytes_per_sec,
            last: now,
        }
    }

    /// Takes `cost` tokens if there are enough.
    pub fn take(&mut self, cost: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        let refill = (elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000) as u64;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(self.rate);
            self.last = now;
        }
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_the_rate_and_refills_over_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, t0);
        assert!(b.take(600, t0));
        assert!(!b.take(600, t0));
        assert!(b.take(400, t0));
        assert!(!b.take(1, t0));
        assert!(b.take(500, t0 + Duration::from_millis(500)));
        // A long idle period refills to one second's worth, no more.
        let later = t0 + Duration::from_secs(10);
        assert!(b.take(1000, later));
        assert!(!b.take(1, later));
    }
}
