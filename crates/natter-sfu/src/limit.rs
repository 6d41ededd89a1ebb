//! A token bucket: how the room keeps one participant's feedback from
//! costing everyone else (a flood of PLIs or NACKs is limited and
//! counted, issue 13 acceptance 6). RFC 4585 §3.4 bounds feedback by
//! the RTCP bandwidth; an SFU cannot trust a peer to respect it, so it
//! enforces its own rates.

use std::time::Instant;

/// One token, in the bucket's fixed-point units (millionths).
const TOKEN: u64 = 1_000_000;

/// `rate` tokens a second, at most `burst` saved up; starts full.
///
/// Nothing allocates; time comes in as an argument.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate_per_second: u32,
    burst: u32,
    /// Millionths of a token.
    tokens: u64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        Self {
            rate_per_second,
            burst,
            tokens: u64::from(burst) * TOKEN,
            last: None,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_micros();
            // Micros times tokens per second: millionths of a token.
            let refill = elapsed.saturating_mul(u128::from(self.rate_per_second));
            let refill = u64::try_from(refill).unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(refill).min(u64::from(self.burst) * TOKEN);
        }
        // Time never goes back for the bucket: a stale `now` refills nothing.
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
        if self.tokens >= TOKEN {
            self.tokens -= TOKEN;
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
    fn a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(10, 5);
        let start = Instant::now();
        let taken = (0..100).filter(|_| bucket.try_take(start)).count();
        assert_eq!(taken, 5);
        // One second later: ten more at most, capped by the burst.
        let later = start + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| bucket.try_take(later)).count(), 5);
        // A tenth of a second: one.
        let later = later + Duration::from_millis(100);
        assert_eq!((0..100).filter(|_| bucket.try_take(later)).count(), 1);
    }
}
