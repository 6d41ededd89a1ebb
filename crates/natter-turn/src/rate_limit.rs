//! Rate limiting of replies to unauthenticated requests per source
//! address, so the server cannot be used to flood a spoofed victim with
//! 401 challenges.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// At most `burst` replies per source, refilled at `per_second`.
#[derive(Debug)]
pub struct SourceLimiter {
    per_second: u32,
    burst: u32,
    sources: HashMap<IpAddr, (u32, Instant)>,
    max_sources: usize,
}

impl SourceLimiter {
    pub fn new(per_second: u32, burst: u32, max_sources: usize) -> Self {
        SourceLimiter {
            per_second,
            burst,
            sources: HashMap::new(),
            max_sources,
        }
    }

    /// Whether a reply to `source` may be sent now.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if self.sources.len() >= self.max_sources && !self.sources.contains_key(&source) {
            self.forget_idle(now);
            if self.sources.len() >= self.max_sources {
                return false;
            }
        }
        let (tokens, last) = self.sources.entry(source).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_millis() as u64 * u64::from(self.per_second) / 1000;
        if refill > 0 {
            *tokens = (u64::from(*tokens) + refill).min(u64::from(self.burst)) as u32;
            *last = now;
        }
        if *tokens > 0 {
            *tokens -= 1;
            true
        } else {
            false
        }
    }

    /// Drops sources whose bucket would be full again.
    pub fn forget_idle(&mut self, now: Instant) {
        let full_after = Duration::from_millis(u64::from(self.burst) * 1000 / u64::from(self.per_second.max(1)) + 1);
        self.sources
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < full_after);
    }

    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_source_separately() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(10, 3, 100);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| l.allow(a, t0)));
        assert!(!l.allow(a, t0));
        assert!(l.allow(b, t0));
        assert!(l.allow(a, t0 + Duration::from_millis(100)));
        l.forget_idle(t0 + Duration::from_secs(10));
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn bounded_memory_under_spoofed_sources() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(10, 3, 100);
        for i in 0..1000u32 {
            l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.tracked() <= 100);
    }
}
