//! The acknowledged bitrate: the rate at which the packets the feedback
//! reports received arrived, by the receiver's clock. The delay-based
//! controller decreases relative to it (draft-ietf-rmcat-gcc-02 §5.5)
//! and never increases far past it.
//!
//! As libwebrtc's bitrate estimator does, arrivals are summed over
//! windows of [`WINDOW_US`] (the first one longer, [`INITIAL_WINDOW_US`]),
//! and each window's rate updates a Bayesian estimate whose sample
//! uncertainty grows with its distance from the estimate, so one bunched
//! window does not swing it.

use super::rate_bps;

/// The first window, long enough to hold several frames, µs.
pub const INITIAL_WINDOW_US: i64 = 500_000;
/// Later windows, µs.
pub const WINDOW_US: i64 = 150_000;
/// How much a sample's distance from the estimate adds to its variance.
const UNCERTAINTY_SCALE: f64 = 10.0;
/// The estimate's variance grows by this per window (kbit/s squared).
const PROCESS_NOISE: f64 = 5.0;

/// The acknowledged bitrate estimator.
#[derive(Debug, Default)]
pub struct AcknowledgedBitrate {
    window_start_us: Option<i64>,
    bytes: u64,
    /// In kbit/s, with its variance.
    estimate_kbps: Option<f64>,
    variance: f64,
}

impl AcknowledgedBitrate {
    /// A packet of `size` bytes arrived at `arrival_us` (in order of
    /// arrival).
    pub fn on_packet(&mut self, arrival_us: i64, size: usize) {
        let start = *self.window_start_us.get_or_insert(arrival_us);
        if arrival_us < start {
            // The receiver's clock went back: start again.
            self.window_start_us = Some(arrival_us);
            self.bytes = 0;
        }
        let window = if self.estimate_kbps.is_none() {
            INITIAL_WINDOW_US
        } else {
            WINDOW_US
        };
        let elapsed = arrival_us - start;
        if elapsed > window {
            if let Some(sample) = rate_bps(self.bytes, window) {
                self.update(sample as f64 / 1000.0);
            }
            self.bytes = 0;
            // A long silence starts a new window at this packet.
            self.window_start_us = Some(if elapsed > 2 * window {
                arrival_us
            } else {
                start + window
            });
        }
        self.bytes += size as u64;
    }

    /// Forgets the estimate: what arrived while the application sent
    /// less than it could says nothing about what the path carries.
    pub fn reset(&mut self) {
        *self = AcknowledgedBitrate::default();
    }

    /// The estimate in bits per second, once a window has closed.
    pub fn bitrate_bps(&self) -> Option<u64> {
        self.estimate_kbps.map(|k| (k * 1000.0) as u64)
    }

    fn update(&mut self, sample_kbps: f64) {
        let Some(estimate) = self.estimate_kbps else {
            self.estimate_kbps = Some(sample_kbps);
            self.variance = 50.0;
            return;
        };
        let uncertainty = UNCERTAINTY_SCALE * (estimate - sample_kbps).abs() / estimate.max(1.0);
        let sample_variance = uncertainty * uncertainty;
        let predicted = self.variance + PROCESS_NOISE;
        let total = sample_variance + predicted;
        if total <= 0.0 {
            return;
        }
        self.estimate_kbps = Some((sample_variance * estimate + predicted * sample_kbps) / total);
        self.variance = sample_variance * predicted / total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_a_steady_arrival_rate() {
        let mut a = AcknowledgedBitrate::default();
        assert_eq!(a.bitrate_bps(), None);
        // 1000 bytes every 8 ms: 1 Mbit/s.
        for i in 0..500 {
            a.on_packet(i * 8_000, 1000);
        }
        let bps = a.bitrate_bps().unwrap();
        assert!((950_000..=1_050_000).contains(&bps), "{bps}");
    }
}
