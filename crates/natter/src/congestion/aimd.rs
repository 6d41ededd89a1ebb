//! The delay-based rate controller (draft-ietf-rmcat-gcc-02 §5.5): AIMD
//! driven by the overuse detector. Overuse decreases the rate to
//! β = 0.85 of what the feedback says arrived; normal use increases it,
//! multiplicatively (8% per second) while far from the link's capacity
//! as last seen at a decrease, additively (about one packet per response
//! time) near it; underuse holds it while the queue drains.

use std::time::{Duration, Instant};

use super::overuse::BandwidthUsage;

/// gcc-02 §5.5: the decrease factor β.
pub const BETA: f64 = 0.85;
/// gcc-02 §5.5: η, the multiplicative increase per second.
const ETA: f64 = 1.08;
/// libwebrtc: the response time is the RTT plus this (for the receiver
/// side's 100 ms feedback interval and the detector's delay).
const RESPONSE_MARGIN: Duration = Duration::from_millis(100);
/// libwebrtc: the RTT assumed before one is measured.
const DEFAULT_RTT: Duration = Duration::from_millis(200);
/// gcc-02 §5.5's frame rate and packet size for the additive increase.
const FRAMES_PER_SECOND: f64 = 30.0;
const PACKET_BITS: f64 = 1200.0 * 8.0;
/// The smallest additive increase, bits per second per second.
const MIN_ADDITIVE_INCREASE: f64 = 4000.0;
/// gcc-02 §5.5: the rate is never raised past 1.5 times what arrived
/// (plus a little, so that a low rate can still grow).
const THROUGHPUT_FACTOR: f64 = 1.5;
const THROUGHPUT_MARGIN_BPS: f64 = 10_000.0;
/// How fast the link capacity estimate follows each decrease.
const CAPACITY_SMOOTHING: f64 = 0.05;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Hold,
    Increase,
    Decrease,
}

/// The link's capacity as seen at decreases: an exponential average of
/// the acknowledged rate then, with its normalized variance, in kbit/s.
#[derive(Clone, Copy, Debug)]
struct LinkCapacity {
    mean_kbps: f64,
    deviation: f64,
}

impl LinkCapacity {
    fn spread(&self) -> f64 {
        3.0 * (self.deviation * self.mean_kbps).sqrt()
    }

    fn upper_bps(&self) -> f64 {
        (self.mean_kbps + self.spread()) * 1000.0
    }

    fn lower_bps(&self) -> f64 {
        (self.mean_kbps - self.spread()) * 1000.0
    }

    fn update(capacity: Option<LinkCapacity>, sample_bps: f64) -> LinkCapacity {
        let sample = sample_bps / 1000.0;
        let Some(c) = capacity else {
            return LinkCapacity {
                mean_kbps: sample,
                deviation: 0.4,
            };
        };
        let mean = (1.0 - CAPACITY_SMOOTHING) * c.mean_kbps + CAPACITY_SMOOTHING * sample;
        let error = mean - sample;
        let deviation = (1.0 - CAPACITY_SMOOTHING) * c.deviation + CAPACITY_SMOOTHING * error * error / mean.max(1.0);
        LinkCapacity {
            mean_kbps: mean,
            deviation: deviation.clamp(0.4, 2.5),
        }
    }
}

/// The AIMD controller of the delay-based estimate.
#[derive(Debug)]
pub struct AimdRateControl {
    min_bps: u64,
    max_bps: u64,
    rate_bps: f64,
    state: State,
    capacity: Option<LinkCapacity>,
    last_change: Option<Instant>,
    rtt: Duration,
    /// The application sends less than it wants because the estimate
    /// affords no more (a layered sender below its top layer).
    held_back: bool,
}

impl AimdRateControl {
    pub fn new(start_bps: u64, min_bps: u64, max_bps: u64) -> AimdRateControl {
        AimdRateControl {
            min_bps,
            max_bps,
            rate_bps: start_bps.clamp(min_bps, max_bps) as f64,
            state: State::Hold,
            capacity: None,
            last_change: None,
            rtt: DEFAULT_RTT,
            held_back: false,
        }
    }

    pub fn rate_bps(&self) -> u64 {
        self.rate_bps as u64
    }

    /// Whether the link's capacity is known (from a decrease, and not
    /// passed since): the increase is additive then.
    pub fn capacity_known(&self) -> bool {
        self.capacity.is_some()
    }

    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// Whether the application sends less than it wants because the
    /// estimate affords no more (it chose a lower layer). A decrease
    /// then starts from the estimate when that is above what arrived:
    /// what arrived is the layer's rate, below the link, so overuse at
    /// it is a burst's queue (a keyframe, a probe, a layer switch), and
    /// a cut to β of it would choose a lower layer, whose lower
    /// throughput the next burst would cut from again. Overuse that
    /// persists is the link: a further decrease comes a response time
    /// later, β each time, until what arrives is above the estimate.
    pub fn set_held_back(&mut self, held_back: bool) {
        self.held_back = held_back;
    }

    /// Sets the estimate outright (a probe's result).
    pub fn set_estimate(&mut self, now: Instant, bps: u64) {
        self.rate_bps = bps.clamp(self.min_bps, self.max_bps) as f64;
        self.last_change = Some(now);
    }

    /// Whether a further decrease is due while overuse persists: a
    /// response time after the last change, or at once if the rate is
    /// more than twice what arrives.
    pub fn time_to_reduce_further(&self, now: Instant, acknowledged_bps: Option<u64>) -> bool {
        let interval = self.rtt.clamp(Duration::from_millis(10), Duration::from_millis(200));
        if self
            .last_change
            .is_none_or(|last| now.saturating_duration_since(last) >= interval)
        {
            return true;
        }
        acknowledged_bps.is_some_and(|a| (a as f64) < self.rate_bps / 2.0)
    }

    /// gcc-02 §5.5: moves the state machine by the detector's signal and
    /// changes the rate; the new rate.
    pub fn update(&mut self, now: Instant, usage: BandwidthUsage, acknowledged_bps: Option<u64>) -> u64 {
        self.state = match (usage, self.state) {
            (BandwidthUsage::Overusing, _) => State::Decrease,
            (BandwidthUsage::Underusing, _) => State::Hold,
            (BandwidthUsage::Normal, State::Hold | State::Decrease) => State::Increase,
            (BandwidthUsage::Normal, State::Increase) => State::Increase,
        };
        let acknowledged = acknowledged_bps.map(|a| a as f64);
        let elapsed = self
            .last_change
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        match self.state {
            State::Hold => {}
            State::Increase => {
                if let (Some(a), Some(c)) = (acknowledged, self.capacity) {
                    if a > c.upper_bps() {
                        // The link's capacity changed: search again.
                        self.capacity = None;
                    }
                }
                let limit = acknowledged.map_or(f64::MAX, |a| THROUGHPUT_FACTOR * a + THROUGHPUT_MARGIN_BPS);
                if self.rate_bps < limit {
                    let increase = if self.capacity.is_some() {
                        self.additive_increase(elapsed)
                    } else {
                        self.multiplicative_increase(elapsed)
                    };
                    self.rate_bps = (self.rate_bps + increase).min(limit);
                }
            }
            State::Decrease => {
                let base = match acknowledged {
                    Some(a) if self.held_back => a.max(self.rate_bps),
                    Some(a) => a,
                    None => self.rate_bps,
                };
                let mut decreased = BETA * base;
                if decreased > self.rate_bps {
                    if let Some(c) = self.capacity {
                        decreased = BETA * c.mean_kbps * 1000.0;
                    }
                }
                self.rate_bps = self.rate_bps.min(decreased);
                if let (Some(a), Some(c)) = (acknowledged, self.capacity) {
                    if a < c.lower_bps() {
                        self.capacity = None;
                    }
                }
                if let Some(a) = acknowledged {
                    self.capacity = Some(LinkCapacity::update(self.capacity, a));
                }
                self.state = State::Hold;
            }
        }
        self.rate_bps = self.rate_bps.clamp(self.min_bps as f64, self.max_bps as f64);
        self.last_change = Some(now);
        self.rate_bps()
    }

    fn multiplicative_increase(&self, elapsed: Duration) -> f64 {
        let factor = ETA.powf(elapsed.as_secs_f64().min(1.0)) - 1.0;
        (self.rate_bps * factor).max(1000.0)
    }

    /// About one packet per response time, per second.
    fn additive_increase(&self, elapsed: Duration) -> f64 {
        let frame_bits = self.rate_bps / FRAMES_PER_SECOND;
        let packets_per_frame = (frame_bits / PACKET_BITS).ceil().max(1.0);
        let packet_bits = frame_bits / packets_per_frame;
        let response = (self.rtt + RESPONSE_MARGIN).as_secs_f64();
        (packet_bits / response).max(MIN_ADDITIVE_INCREASE) * elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decreases_to_beta_of_the_acknowledged_rate_then_grows_additively() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000);
        a.update(t0, BandwidthUsage::Normal, Some(900_000));
        let after = a.update(t0 + Duration::from_secs(1), BandwidthUsage::Normal, Some(900_000));
        assert!(after > 1_000_000, "multiplicative increase far from capacity: {after}");
        let decreased = a.update(
            t0 + Duration::from_millis(1100),
            BandwidthUsage::Overusing,
            Some(800_000),
        );
        assert_eq!(decreased, (BETA * 800_000.0) as u64);
        let grown = a.update(t0 + Duration::from_millis(2100), BandwidthUsage::Normal, Some(700_000));
        assert!(
            grown > decreased && grown < decreased + 40_000,
            "additive near capacity: {grown}"
        );
    }

    /// Held back (sending a lower layer than it wants), the sender's
    /// throughput is below the estimate: overuse cuts β of the estimate,
    /// not of the throughput.
    #[test]
    fn held_back_decreases_from_the_estimate() {
        let t0 = Instant::now();
        let mut a = AimdRateControl::new(1_000_000, 10_000, 10_000_000);
        a.set_held_back(true);
        let decreased = a.update(t0, BandwidthUsage::Overusing, Some(600_000));
        assert_eq!(decreased, (BETA * 1_000_000.0) as u64);
        // What arrives above the estimate is the base again.
        let again = a.update(t0 + Duration::from_secs(1), BandwidthUsage::Overusing, Some(900_000));
        assert_eq!(again, (BETA * 900_000.0) as u64);
    }
}
