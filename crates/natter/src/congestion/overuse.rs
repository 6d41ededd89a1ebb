//! The overuse detector (draft-ietf-rmcat-gcc-02 §5.4): compares the
//! delay gradient with a threshold that adapts to it, so that a flow
//! competing with loss-based TCP is not starved (gcc-02 §5.4, and
//! Carlucci et al., "Analysis and Design of the Google Congestion
//! Control for WebRTC", 2016, where the constants come from).

/// What the delay gradient says about the path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BandwidthUsage {
    /// The delay is steady.
    #[default]
    Normal,
    /// The delay grows: a queue builds at the bottleneck.
    Overusing,
    /// The delay shrinks: a queue drains.
    Underusing,
}

/// gcc-02 §5.4: the threshold moves up with K_u and down with K_d.
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// gcc-02 §5.4: the threshold stays within [6, 600] ms.
const MIN_THRESHOLD: f64 = 6.0;
const MAX_THRESHOLD: f64 = 600.0;
/// libwebrtc's initial threshold, ms.
const INITIAL_THRESHOLD: f64 = 12.5;
/// gcc-02 §5.4: overuse is signalled after the gradient stayed above the
/// threshold this long (ms)...
const OVERUSE_TIME_MS: f64 = 10.0;
/// ...and an estimate far out of the threshold (a spike, a route
/// change) does not move it (gcc-02 §5.4's |m| - γ > 15 ms rule).
const MAX_ADAPT_OFFSET_MS: f64 = 15.0;
/// gcc-02 §5.4: the threshold's update uses at most this much time, ms.
const MAX_TIME_DELTA_MS: f64 = 100.0;

/// The detector and its threshold (γ in gcc-02).
#[derive(Debug)]
pub struct OveruseDetector {
    threshold: f64,
    last_update_ms: Option<f64>,
    /// How long the estimate has been over the threshold, ms.
    time_over_ms: Option<f64>,
    over_count: u32,
    previous: f64,
    state: BandwidthUsage,
}

impl Default for OveruseDetector {
    fn default() -> Self {
        OveruseDetector {
            threshold: INITIAL_THRESHOLD,
            last_update_ms: None,
            time_over_ms: None,
            over_count: 0,
            previous: 0.0,
            state: BandwidthUsage::Normal,
        }
    }
}

impl OveruseDetector {
    /// One estimate `m` of the delay gradient (already scaled, ms), after
    /// a group `send_delta_ms` after the last one, arriving at `now_ms`.
    pub fn detect(&mut self, m: f64, send_delta_ms: f64, now_ms: f64) -> BandwidthUsage {
        if m > self.threshold {
            let over = match self.time_over_ms {
                None => send_delta_ms / 2.0,
                Some(t) => t + send_delta_ms,
            };
            self.time_over_ms = Some(over);
            self.over_count += 1;
            if over > OVERUSE_TIME_MS && self.over_count > 1 && m >= self.previous {
                self.time_over_ms = None;
                self.over_count = 0;
                self.state = BandwidthUsage::Overusing;
            }
        } else if m < -self.threshold {
            self.time_over_ms = None;
            self.over_count = 0;
            self.state = BandwidthUsage::Underusing;
        } else {
            self.time_over_ms = None;
            self.over_count = 0;
            self.state = BandwidthUsage::Normal;
        }
        self.previous = m;
        self.adapt(m, now_ms);
        self.state
    }

    pub fn state(&self) -> BandwidthUsage {
        self.state
    }

    /// gcc-02 §5.4: γ(i) = γ(i-1) + Δt·K(i)·(|m(i)| - γ(i-1)).
    fn adapt(&mut self, m: f64, now_ms: f64) {
        let last = *self.last_update_ms.get_or_insert(now_ms);
        if m.abs() > self.threshold + MAX_ADAPT_OFFSET_MS {
            self.last_update_ms = Some(now_ms);
            return;
        }
        let k = if m.abs() < self.threshold { K_DOWN } else { K_UP };
        let dt = (now_ms - last).clamp(0.0, MAX_TIME_DELTA_MS);
        self.threshold = (self.threshold + k * (m.abs() - self.threshold) * dt).clamp(MIN_THRESHOLD, MAX_THRESHOLD);
        self.last_update_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_overuse_only_after_it_lasts() {
        let mut d = OveruseDetector::default();
        assert_eq!(d.detect(20.0, 5.0, 0.0), BandwidthUsage::Normal);
        assert_eq!(d.detect(21.0, 5.0, 5.0), BandwidthUsage::Normal);
        assert_eq!(d.detect(22.0, 5.0, 10.0), BandwidthUsage::Overusing);
        assert_eq!(d.detect(-30.0, 5.0, 15.0), BandwidthUsage::Underusing);
        assert_eq!(d.detect(0.0, 5.0, 20.0), BandwidthUsage::Normal);
    }

    #[test]
    fn the_threshold_follows_the_estimate_within_bounds() {
        let mut d = OveruseDetector::default();
        for i in 0..1000 {
            d.detect(0.0, 5.0, f64::from(i) * 5.0);
        }
        assert_eq!(d.threshold, MIN_THRESHOLD);
    }
}
