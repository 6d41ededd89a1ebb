//! The retransmission timeout (RFC 9260 §6.3.1): SRTT and RTTVAR from RTT
//! measurements, RTO between its bounds, doubled on each expiry (§6.3.3).

use std::time::Duration;

/// RFC 9260 §6.3.1: RTO.Alpha = 1/8, RTO.Beta = 1/4.
const ALPHA_SHIFT: u32 = 3;
const BETA_SHIFT: u32 = 2;

#[derive(Debug, Clone, Copy)]
pub struct Rto {
    min: Duration,
    max: Duration,
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
}

impl Rto {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        Rto {
            min,
            max,
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(min, max),
        }
    }

    pub fn get(&self) -> Duration {
        self.rto
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RFC 9260 §6.3.1 C1-C3: a new RTT measurement, from a chunk sent
    /// once (Karn's rule is the caller's).
    pub fn measure(&mut self, rtt: Duration) {
        let (srtt, rttvar) = match self.srtt {
            None => (rtt, rtt / 2),
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                let rttvar = self.rttvar - self.rttvar / (1 << BETA_SHIFT) + delta / (1 << BETA_SHIFT);
                (srtt - srtt / (1 << ALPHA_SHIFT) + rtt / (1 << ALPHA_SHIFT), rttvar)
            }
        };
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
        // C3 with G = 0: no clock granularity below a nanosecond here.
        self.rto = (srtt + 4 * rttvar).clamp(self.min, self.max);
    }

    /// RFC 9260 §6.3.3 E2: the timer expired; back off.
    pub fn back_off(&mut self) {
        self.rto = (self.rto * 2).min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_and_later_measurements() {
        let mut r = Rto::new(1000 * MS, 10 * MS, 60_000 * MS);
        assert_eq!(r.get(), 1000 * MS);
        r.measure(100 * MS);
        // C2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR.
        assert_eq!(r.get(), 300 * MS);
        r.measure(100 * MS);
        // RTTVAR = 3/4 * 50 = 37.5, SRTT = 100: RTO = 250.
        assert_eq!(r.get(), 250 * MS);
    }

    #[test]
    fn bounded_and_backed_off() {
        let mut r = Rto::new(1000 * MS, 200 * MS, 3000 * MS);
        r.measure(MS);
        assert_eq!(r.get(), 200 * MS);
        for _ in 0..10 {
            r.back_off();
        }
        assert_eq!(r.get(), 3000 * MS);
    }
}
