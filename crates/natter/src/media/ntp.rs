//! NTP timestamps for RTCP (RFC 3550 §4): seconds since 1900 as 32.32
//! fixed point, and the 16.16 "short" form of LSR and DLSR (§6.4.1).
//!
//! The core reads no clock, so an [`NtpClock`] pairs one `Instant` with
//! the wall-clock time the I/O layer read at the same moment, and counts
//! from there. Without a wall clock it counts from the NTP epoch: the
//! NTP/RTP mapping of sender reports and the round trips computed from
//! them stay exact, only the absolute date is meaningless.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// RFC 868: seconds from 1900-01-01 to 1970-01-01.
const UNIX_TO_NTP_SECONDS: u64 = 2_208_988_800;

/// Maps `Instant`s to NTP time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtpClock {
    base: Instant,
    /// NTP time at `base`, since 1900.
    base_ntp: Duration,
}

impl NtpClock {
    /// A clock on which `base` is the wall-clock time `wall` (or the NTP
    /// epoch without one).
    pub fn new(base: Instant, wall: Option<SystemTime>) -> Self {
        let since_unix = wall.and_then(|w| w.duration_since(UNIX_EPOCH).ok());
        let base_ntp = since_unix.map_or(Duration::ZERO, |d| d + Duration::from_secs(UNIX_TO_NTP_SECONDS));
        NtpClock { base, base_ntp }
    }

    /// The 64-bit NTP timestamp of `at`.
    pub fn ntp(&self, at: Instant) -> u64 {
        let t = self.base_ntp + at.saturating_duration_since(self.base);
        let fraction = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
        (t.as_secs() << 32) | fraction
    }
}

/// The middle 32 bits of an NTP timestamp: LSR (RFC 3550 §6.4.1).
pub fn middle_32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in units of 1/65536 s: DLSR (RFC 3550 §6.4.1).
pub fn to_short(d: Duration) -> u32 {
    let units = d.as_nanos() * 65_536 / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The duration of `units` 1/65536 s.
pub fn from_short(units: u32) -> Duration {
    Duration::from_nanos(u64::from(units) * 1_000_000_000 / 65_536)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        let now = Instant::now();
        let clock = NtpClock::new(now, Some(UNIX_EPOCH + Duration::from_millis(1500)));
        assert_eq!(clock.ntp(now), ((UNIX_TO_NTP_SECONDS + 1) << 32) | (1 << 31));
        let later = clock.ntp(now + Duration::from_millis(250));
        assert_eq!(later, ((UNIX_TO_NTP_SECONDS + 1) << 32) | (3 << 30));
    }

    #[test]
    fn short_form_round_trips_to_the_unit() {
        for ms in [0, 1, 999, 65_000] {
            let d = Duration::from_millis(ms);
            let back = from_short(to_short(d));
            assert!(d.saturating_sub(back) < Duration::from_micros(16), "{d:?} {back:?}");
        }
        assert_eq!(middle_32(0x0123_4567_89AB_CDEF), 0x4567_89AB);
    }
}
