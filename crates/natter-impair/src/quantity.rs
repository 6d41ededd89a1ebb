//! The quantities a link is described with, as a command line writes
//! them: durations (`50ms`), rates (`2mbit`), sizes (`64kb`) and
//! probabilities (`2%`).

use std::time::Duration;

use crate::error::ConfigError;

/// A link's capacity in bits per second; never zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(u64);

impl Rate {
    /// A rate of `bits_per_second`; `None` for zero, which would never
    /// finish sending a packet.
    pub fn new(bits_per_second: u64) -> Option<Rate> {
        (bits_per_second > 0).then_some(Rate(bits_per_second))
    }

    pub fn bits_per_second(self) -> u64 {
        self.0
    }

    /// How many bytes this rate sends in `time`, rounded down.
    pub fn bytes_in(self, time: Duration) -> u64 {
        let bits = u128::from(self.0) * time.as_nanos() / NANOS_PER_SECOND;
        u64::try_from(bits / 8).unwrap_or(u64::MAX)
    }

    /// How long this rate takes to send `bits`, rounded up to the
    /// nanosecond so that a link never sends faster than its rate.
    pub fn time_for(self, bits: u128) -> Duration {
        let nanos = (bits * NANOS_PER_SECOND).div_ceil(u128::from(self.0));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// How many bits this rate sends in `time`, rounded down.
    pub fn bits_in(self, time: Duration) -> u128 {
        u128::from(self.0) * time.as_nanos() / NANOS_PER_SECOND
    }

    /// Parses `2mbit`, `500kbit`, `2.5mbit`, `64000bit` or `1gbit`: bits
    /// per second with decimal prefixes, as `tc` writes them.
    pub fn parse(text: &str) -> Result<Rate, ConfigError> {
        let units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)];
        let bits = scaled(text, &units).ok_or_else(|| ConfigError::value("rate", text, "a rate such as 2mbit"))?;
        Rate::new(bits).ok_or_else(|| ConfigError::value("rate", text, "a rate above zero"))
    }
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses `50ms`, `1.5s`, `250us` or `0`.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let units = [("us", 1e3), ("ms", 1e6), ("s", 1e9)];
    scaled(text, &units)
        .map(Duration::from_nanos)
        .ok_or_else(|| ConfigError::value(key, text, "a duration such as 50ms"))
}

/// Parses a size in bytes: `1500b`, `64kb` (64,000 bytes) or `1mb`.
pub fn parse_bytes(key: &str, text: &str) -> Result<u64, ConfigError> {
    let units = [("kb", 1e3), ("mb", 1e6), ("b", 1.0)];
    scaled(text, &units).ok_or_else(|| ConfigError::value(key, text, "a size such as 64kb"))
}

/// Parses a probability: `2%`, `0.5%` or a fraction such as `0.02`.
pub fn parse_probability(key: &str, text: &str) -> Result<f64, ConfigError> {
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    value
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| ConfigError::value(key, text, "a probability such as 2% or 0.02"))
}

/// `text` as a number followed by one of `units`, multiplied by that
/// unit's scale and rounded to an integer. The first unit that is a
/// suffix wins, so longer units go first.
fn scaled(text: &str, units: &[(&str, f64)]) -> Option<u64> {
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, *scale)))?;
    let value = number.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)? * scale;
    // f64 to u64 saturates; anything that large is refused instead.
    (value < u64::MAX as f64).then(|| value.round() as u64)
}
