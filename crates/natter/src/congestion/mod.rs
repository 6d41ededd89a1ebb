//! Send-side congestion control, sans-IO: what natter sends is numbered
//! with transport-wide sequence numbers, the receiver's feedback
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01) is matched to
//! it, and a GCC-style estimator (draft-ietf-rmcat-gcc-02, in the shape
//! of libwebrtc's GoogCC) turns delay, loss and throughput into a
//! target bitrate that a pacer spreads the packets at.
//!
//! One file per concept:
//!
//! - [`history`]: [`SendHistory`], the packets sent and the feedback
//!   matched to them.
//! - [`inter_arrival`]: send-time groups of 5 ms and the deltas between
//!   them (gcc-02 §5.2).
//! - [`trendline`]: the slope of the accumulated delay over a window
//!   (libwebrtc's replacement of gcc-02 §5.3's Kalman filter).
//! - [`overuse`]: the overuse detector with its adaptive threshold
//!   (gcc-02 §5.4).
//! - [`aimd`]: the delay-based rate controller (gcc-02 §5.5).
//! - [`acknowledged`]: the rate the feedback says arrived.
//! - [`loss_based`]: the loss-based controller (gcc-02 §6) that learns
//!   a link's inherent random loss.
//! - [`alr`]: application-limited region detection.
//! - [`probe`]: probe clusters, when to send them and what their
//!   feedback says.
//! - [`pacer`]: a leaky bucket of packet handles at a multiple of the
//!   target.
//! - [`retransmission`]: the bound on the rate of RTX repairs.
//! - [`controller`]: [`CongestionController`], the facade over them.
//!
//! No clock is read: every input carries `now`. Buffers are kept and
//! reused, so feedback and sending allocate nothing once the history
//! and queues have grown to their working size.

pub mod acknowledged;
pub mod aimd;
pub mod alr;
pub mod controller;
pub mod history;
pub mod inter_arrival;
pub mod loss_based;
pub mod overuse;
pub mod pacer;
pub mod probe;
pub mod retransmission;
pub mod trendline;

pub use controller::{CongestionConfig, CongestionController, CongestionError, CongestionEvent};
pub use history::{FeedbackSummary, PacketKind, PacketResult, SendHistory, SentPacket};
pub use overuse::BandwidthUsage;
pub use pacer::{PacedPacket, Pacer, QueuedPacket};
pub use probe::ProbeCluster;

use std::time::{Duration, Instant};

/// `later - earlier` in microseconds, negative if `later` is earlier.
fn signed_micros(later: Instant, earlier: Instant) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(d) => micros(d),
        None => -micros(earlier - later),
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// `bits` per second sent in `d`, or `None` for an empty interval.
fn rate_bps(bytes: u64, d_us: i64) -> Option<u64> {
    (d_us > 0).then(|| (u128::from(bytes) * 8_000_000 / d_us as u128).min(u128::from(u64::MAX)) as u64)
}
