//! The trendline filter: libwebrtc's estimate of the delay gradient,
//! which replaced the Kalman filter of draft-ietf-rmcat-gcc-02 §5.3.
//! The one-way delay variation of each group delta is accumulated and
//! exponentially smoothed; the slope of a least-squares line through the
//! last [`WINDOW`] (arrival time, smoothed delay) points is the
//! gradient, which the overuse detector (gcc-02 §5.4) judges.

use std::collections::VecDeque;

use super::inter_arrival::GroupDelta;
use super::overuse::{BandwidthUsage, OveruseDetector};

/// Points in the regression (libwebrtc: 20).
pub const WINDOW: usize = 20;
/// Smoothing of the accumulated delay (libwebrtc: 0.9).
const SMOOTHING: f64 = 0.9;
/// The slope is scaled by this and by the number of deltas seen, up to
/// [`MAX_DELTAS`], before the detector compares it (libwebrtc: 4).
const THRESHOLD_GAIN: f64 = 4.0;
const MAX_DELTAS: u32 = 60;

/// The delay gradient estimator with its overuse detector.
#[derive(Debug)]
pub struct Trendline {
    first_arrival_us: Option<i64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    /// (arrival ms since the first, smoothed delay ms).
    points: VecDeque<(f64, f64)>,
    deltas: u32,
    slope: f64,
    detector: OveruseDetector,
}

impl Default for Trendline {
    fn default() -> Self {
        Trendline {
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            points: VecDeque::with_capacity(WINDOW + 1),
            deltas: 0,
            slope: 0.0,
            detector: OveruseDetector::default(),
        }
    }
}

impl Trendline {
    /// Takes one group delta; what the detector makes of the new slope.
    pub fn update(&mut self, delta: GroupDelta) -> BandwidthUsage {
        let variation_ms = (delta.arrival_delta_us - delta.send_delta_us) as f64 / 1000.0;
        self.deltas = (self.deltas + 1).min(1000);
        self.accumulated_ms += variation_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let first = *self.first_arrival_us.get_or_insert(delta.arrival_us);
        let at_ms = (delta.arrival_us - first) as f64 / 1000.0;
        self.points.push_back((at_ms, self.smoothed_ms));
        if self.points.len() > WINDOW {
            self.points.pop_front();
        }
        if self.points.len() == WINDOW {
            if let Some(slope) = least_squares_slope(&self.points) {
                self.slope = slope;
            }
        }
        let m = f64::from(self.deltas.min(MAX_DELTAS)) * self.slope * THRESHOLD_GAIN;
        self.detector
            .detect(m, delta.send_delta_us as f64 / 1000.0, delta.arrival_us as f64 / 1000.0)
    }

    pub fn state(&self) -> BandwidthUsage {
        self.detector.state()
    }
}

/// The slope of the least-squares line through `points`; `None` if
/// every x is the same.
fn least_squares_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den != 0.0).then(|| num / den)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(variation_us: i64) -> BandwidthUsage {
        let mut t = Trendline::default();
        let mut arrival = 0;
        let mut state = BandwidthUsage::Normal;
        for _ in 0..100 {
            arrival += 10_000 + variation_us;
            state = t.update(GroupDelta {
                send_delta_us: 10_000,
                arrival_delta_us: 10_000 + variation_us,
                arrival_us: arrival,
            });
        }
        state
    }

    #[test]
    fn a_growing_delay_is_overuse_and_a_steady_one_is_not() {
        assert_eq!(run(0), BandwidthUsage::Normal);
        assert_eq!(run(2_000), BandwidthUsage::Overusing);
        assert_eq!(run(-2_000), BandwidthUsage::Underusing);
    }
}
