//! The measured bitrate of each layer of a publication, which the
//! [`crate::layer::LayerSelector`] compares with a subscriber's estimate.
//! A sliding window of fixed buckets per layer: no allocation per
//! packet, and a layer that stops (paused by the publisher, RFC 8853
//! simulcast stream going away) reads 0 once its window has passed.

use std::time::{Duration, Instant};

/// Buckets per window.
const BUCKETS: usize = 10;

/// The window a rate is averaged over.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, Default)]
struct LayerWindow {
    /// Bytes per bucket, indexed by bucket number modulo `BUCKETS`.
    bytes: [u64; BUCKETS],
    /// The bucket number `bytes` was last advanced to.
    bucket: u64,
}

impl LayerWindow {
    /// Clears the buckets that fell out of the window up to `bucket`.
    fn advance(&mut self, bucket: u64) {
        if bucket <= self.bucket {
            return;
        }
        let stale = (bucket - self.bucket).min(BUCKETS as u64);
        for step in 1..=stale {
            self.bytes[((self.bucket + step) % BUCKETS as u64) as usize] = 0;
        }
        self.bucket = bucket;
    }
}

/// Bitrates of a publication's layers.
///
/// - Input: [`BitrateMeter::handle_packet`] per received packet.
/// - Getter: [`BitrateMeter::bitrate_bps`].
///
/// The layer table is allocated once, at construction.
#[derive(Clone, Debug)]
pub struct BitrateMeter {
    start: Instant,
    bucket_len: Duration,
    layers: Box<[LayerWindow]>,
}

impl BitrateMeter {
    /// A meter for `layers` layers over `window`, which starts at `now`.
    pub fn new(layers: usize, window: Duration, now: Instant) -> Self {
        Self {
            start: now,
            bucket_len: (window / BUCKETS as u32).max(Duration::from_millis(1)),
            layers: vec![LayerWindow::default(); layers].into_boxed_slice(),
        }
    }

    fn bucket(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        (elapsed / self.bucket_len.as_nanos()) as u64
    }

    /// A packet of `bytes` (RTP payload and header, as the subscriber
    /// will receive it) on `layer`; packets of unknown layers are ignored.
    pub fn handle_packet(&mut self, now: Instant, layer: u8, bytes: usize) {
        let bucket = self.bucket(now);
        if let Some(window) = self.layers.get_mut(usize::from(layer)) {
            window.advance(bucket);
            let slot = &mut window.bytes[(bucket % BUCKETS as u64) as usize];
            *slot = slot.saturating_add(bytes as u64);
        }
    }

    /// `layer`'s rate in bits per second over the last window (the
    /// current, partial bucket excluded so a rate does not dip at each
    /// bucket's start); 0 for an unknown or silent layer.
    pub fn bitrate_bps(&mut self, now: Instant, layer: u8) -> u64 {
        let bucket = self.bucket(now);
        let bucket_len = self.bucket_len;
        let Some(window) = self.layers.get_mut(usize::from(layer)) else {
            return 0;
        };
        window.advance(bucket);
        let current = (bucket % BUCKETS as u64) as usize;
        let full = (BUCKETS as u64 - 1).min(bucket);
        if full == 0 {
            return 0;
        }
        let bytes: u64 = (0..BUCKETS).filter(|&i| i != current).map(|i| window.bytes[i]).sum();
        let nanos = bucket_len.as_nanos() * u128::from(full);
        (u128::from(bytes) * 8 * 1_000_000_000 / nanos) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_packets_and_fall_to_zero() {
        let start = Instant::now();
        let mut meter = BitrateMeter::new(2, DEFAULT_WINDOW, start);
        // Layer 0: 1,250 bytes every 10 ms = 1 Mbit/s; layer 1 silent.
        let mut now = start;
        for _ in 0..300 {
            meter.handle_packet(now, 0, 1_250);
            meter.handle_packet(now, 7, 1_250);
            now += Duration::from_millis(10);
        }
        let rate = meter.bitrate_bps(now, 0);
        assert!((990_000..=1_010_000).contains(&rate), "{rate}");
        assert_eq!(meter.bitrate_bps(now, 1), 0);
        assert_eq!(meter.bitrate_bps(now, 7), 0);
        // The layer stops: after a window it reads 0.
        assert_eq!(meter.bitrate_bps(now + Duration::from_secs(2), 0), 0);
    }
}
