//! The measured bitrate of each layer of a publication, which the
//! [`crate::layer::LayerSelector`] compares with a subscriber's estimate.
//! A sliding window of fixed buckets per layer: no allocation per
//! packet, and a layer that stops (paused by the publisher, RFC 8853
//! simulcast stream going away) reads 0 once its window has passed.
//!
//! A layer that starts (or resumes after a window of silence) is
//! measured over the time since its first packet, not over the whole
//! window: spread over the window, its first buckets read a fraction of
//! its rate, and a subscriber whose estimate pays for the lowest layer
//! only was given the top one (issue 13).

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
    /// The first packet after a window of silence (or ever).
    run_start: Option<Instant>,
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

/// One layer's measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    /// Bits per second; 0 for a silent layer, or one measured for less
    /// than a bucket (too short to say).
    pub bps: u64,
    /// How long the rate was measured over: the window's full buckets,
    /// or less for a layer that started within them.
    pub over: Duration,
}

/// Bitrates of a publication's layers.
///
/// - Input: [`BitrateMeter::handle_packet`] per received packet.
/// - Getters: [`BitrateMeter::rate`], [`BitrateMeter::full_window`].
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

    /// What a settled rate is measured over: the window's full buckets
    /// (the current, partial one is never counted).
    pub fn full_window(&self) -> Duration {
        self.bucket_len * (BUCKETS as u32 - 1)
    }

    /// A packet of `bytes` (RTP payload and header, as the subscriber
    /// will receive it) on `layer`; packets of unknown layers are ignored.
    pub fn handle_packet(&mut self, now: Instant, layer: u8, bytes: usize) {
        let bucket = self.bucket(now);
        if let Some(window) = self.layers.get_mut(usize::from(layer)) {
            window.advance(bucket);
            if window.bytes.iter().all(|&b| b == 0) {
                window.run_start = Some(now);
            }
            let slot = &mut window.bytes[(bucket % BUCKETS as u64) as usize];
            *slot = slot.saturating_add(bytes as u64);
        }
    }

    /// `layer`'s rate over the last window's full buckets (the current,
    /// partial bucket excluded so a rate does not dip at each bucket's
    /// start), or over the time since its first packet when that is
    /// shorter; 0 for an unknown or silent layer.
    pub fn rate(&mut self, now: Instant, layer: u8) -> Rate {
        let bucket = self.bucket(now);
        let bucket_len = self.bucket_len;
        let current_start = self.start + bucket_len * u32::try_from(bucket).unwrap_or(u32::MAX);
        let Some(window) = self.layers.get_mut(usize::from(layer)) else {
            return Rate::default();
        };
        window.advance(bucket);
        let current = (bucket % BUCKETS as u64) as usize;
        let bytes: u64 = (0..BUCKETS).filter(|&i| i != current).map(|i| window.bytes[i]).sum();
        let full = bucket_len * (BUCKETS as u64 - 1).min(bucket) as u32;
        let since_run = window
            .run_start
            .map_or(Duration::ZERO, |at| current_start.saturating_duration_since(at));
        let over = full.min(since_run);
        if bytes == 0 || over < bucket_len {
            return Rate { bps: 0, over };
        }
        let bps = u128::from(bytes) * 8 * 1_000_000_000 / over.as_nanos();
        Rate {
            bps: u64::try_from(bps).unwrap_or(u64::MAX),
            over,
        }
    }
}

/// The least a layer of `width` x `height` is sent at: libwebrtc's
/// simulcast table (`kSimulcastFormats`, video/config/simulcast.cc)
/// gives each resolution a minimum bitrate, below which Chromium turns
/// the layer off rather than send it. A layer not measured over a
/// window yet is offered at no less than this; 0 by 0 (not known) is
/// the table's last row.
pub fn min_bitrate_bps(width: u16, height: u16) -> u64 {
    /// (width x height at least, bits per second), largest first.
    const TABLE: [(u32, u64); 5] = [
        (1920 * 1080, 800_000),
        (1280 * 720, 600_000),
        (960 * 540, 350_000),
        (480 * 270, 150_000),
        (0, 30_000),
    ];
    let pixels = u32::from(width) * u32::from(height);
    TABLE
        .iter()
        .find(|(at_least, _)| pixels >= *at_least)
        .map_or(30_000, |row| row.1)
}

/// A layer of unknown size above a measured one is offered at no less
/// than this many times the layer below: libwebrtc's layers halve each
/// side (`scaleResolutionDownBy` 4, 2, 1) and its minimum rates grow by
/// more than twice a step (30, 150, 350 kbit/s).
pub const LAYER_STEP: u64 = 2;

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
        let rate = meter.rate(now, 0);
        assert!((990_000..=1_010_000).contains(&rate.bps), "{rate:?}");
        assert_eq!(rate.over, meter.full_window());
        assert_eq!(meter.rate(now, 1).bps, 0);
        assert_eq!(meter.rate(now, 7).bps, 0);
        // The layer stops: after a window it reads 0.
        assert_eq!(meter.rate(now + Duration::from_secs(2), 0).bps, 0);
    }

    #[test]
    fn a_layer_that_starts_late_reads_its_rate_not_a_fraction() {
        let start = Instant::now();
        let mut meter = BitrateMeter::new(2, DEFAULT_WINDOW, start);
        // Layer 0 from the start, layer 1 from 3.05 s: both 1 Mbit/s.
        let mut now = start;
        for tick in 0..330 {
            meter.handle_packet(now, 0, 1_250);
            if tick >= 305 {
                meter.handle_packet(now, 1, 1_250);
            }
            now += Duration::from_millis(10);
        }
        // 3.3 s: layer 1 measured over 3.05 s to 3.3 s, the current
        // bucket (3.3 s on) left out.
        let rate = meter.rate(now, 1);
        assert_eq!(rate.over, Duration::from_millis(250));
        assert!((990_000..=1_010_000).contains(&rate.bps), "{rate:?}");
        // Layer 0 is measured over the full window.
        assert_eq!(meter.rate(now, 0).over, meter.full_window());
        // Less than a bucket after its first packet: too short to say.
        let mut meter = BitrateMeter::new(1, DEFAULT_WINDOW, start);
        meter.handle_packet(start + Duration::from_millis(1_950), 0, 1_250);
        let rate = meter.rate(start + Duration::from_millis(2_010), 0);
        assert_eq!(rate.bps, 0);
        // Silent for a window, it starts a new run.
        meter.handle_packet(start + Duration::from_millis(3_500), 0, 1_250);
        meter.handle_packet(start + Duration::from_millis(3_650), 0, 1_250);
        let rate = meter.rate(start + Duration::from_millis(3_700), 0);
        assert_eq!(rate.over, Duration::from_millis(200));
        assert_eq!(rate.bps, 100_000);
    }
}
