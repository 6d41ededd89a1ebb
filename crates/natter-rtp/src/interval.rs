//! The RTCP report interval (RFC 3550 §6.2, §6.3.1 and Appendix A.7).
//!
//! Sans-IO: no clock and no random source. The caller supplies the
//! session state and a random factor drawn uniformly from [0.5, 1.5],
//! and adds the returned interval to its own `Instant`.

use std::time::Duration;

/// RFC 3550 §6.2: the recommended fixed minimum interval, 5 s.
pub const RTCP_MIN_TIME: Duration = Duration::from_secs(5);
/// RFC 3550 §6.2 / A.7: the fraction of RTCP bandwidth for senders.
pub const RTCP_SENDER_BW_FRACTION: f64 = 0.25;
/// RFC 3550 §6.3.1 / A.7: `e - 3/2`, the divisor compensating for
/// timer reconsideration converging below the intended bandwidth.
pub const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// RFC 3550 §6.2: which minimum interval applies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinimumInterval {
    /// The fixed minimum, 5 s.
    Fixed,
    /// The reduced minimum: 360 s divided by the session bandwidth in
    /// kb/s, capped at 5 s (it is smaller above 72 kb/s).
    Reduced {
        /// The session bandwidth in kilobits per second.
        session_bandwidth_kbps: f64,
    },
}

impl MinimumInterval {
    /// Tmin, before the halving for a participant's first report.
    pub fn duration(self) -> Duration {
        match self {
            MinimumInterval::Fixed => RTCP_MIN_TIME,
            MinimumInterval::Reduced { session_bandwidth_kbps } => {
                let reduced = 360.0 / session_bandwidth_kbps;
                if reduced.is_finite() && reduced > 0.0 && reduced < RTCP_MIN_TIME.as_secs_f64() {
                    Duration::from_secs_f64(reduced)
                } else {
                    RTCP_MIN_TIME
                }
            }
        }
    }
}

/// The inputs of RFC 3550 Appendix A.7's `rtcp_interval()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RtcpInterval {
    /// Members of the session, this participant included.
    pub members: u32,
    /// Members that sent RTP since the last report interval.
    pub senders: u32,
    /// The RTCP bandwidth in octets per second (5 % of the session
    /// bandwidth by default).
    pub rtcp_bw: f64,
    /// Whether this participant sent RTP in the last two intervals.
    pub we_sent: bool,
    /// The average compound RTCP packet size in octets, lower layers
    /// included (see [`update_avg_rtcp_size`]).
    pub avg_rtcp_size: f64,
    /// No RTCP packet has been sent yet.
    pub initial: bool,
    pub minimum: MinimumInterval,
}

impl RtcpInterval {
    /// Td, the deterministic interval of §6.3.1, before randomisation.
    pub fn deterministic(&self) -> Duration {
        seconds(self.deterministic_secs())
    }

    fn deterministic_secs(&self) -> f64 {
        let mut tmin = self.minimum.duration().as_secs_f64();
        if self.initial {
            // §6.2: the first report goes out after half the minimum.
            tmin /= 2.0;
        }
        let mut bw = self.rtcp_bw;
        let mut n = f64::from(self.members);
        if f64::from(self.senders) <= f64::from(self.members) * RTCP_SENDER_BW_FRACTION {
            if self.we_sent {
                bw *= RTCP_SENDER_BW_FRACTION;
                n = f64::from(self.senders);
            } else {
                bw *= 1.0 - RTCP_SENDER_BW_FRACTION;
                n -= f64::from(self.senders);
            }
        }
        let t = self.avg_rtcp_size * n / bw;
        // NaN (0/0) and infinities (no bandwidth) fall back to the bounds.
        if t.is_nan() {
            tmin
        } else {
            t.max(tmin)
        }
    }

    /// T, the interval until the next report: Td times `random_factor`
    /// (clamped to [0.5, 1.5]), divided by e - 3/2. Without RTCP
    /// bandwidth it is `Duration::MAX`: never.
    pub fn interval(&self, random_factor: f64) -> Duration {
        let r = if random_factor.is_nan() {
            1.0
        } else {
            random_factor.clamp(0.5, 1.5)
        };
        seconds(self.deterministic_secs() * r / COMPENSATION)
    }
}

/// RFC 3550 §6.3.3: `avg_rtcp_size = 1/16 * packet_size + 15/16 * avg_rtcp_size`,
/// applied for each compound RTCP packet sent or received.
pub fn update_avg_rtcp_size(avg_rtcp_size: f64, packet_size: usize) -> f64 {
    (packet_size as f64) / 16.0 + avg_rtcp_size * 15.0 / 16.0
}

/// A duration of `t` seconds; beyond what `Duration` holds, its maximum.
fn seconds(t: f64) -> Duration {
    Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX)
}
