//! A link's capacity over time (RFC 8867 §5.1 varies it in steps).

use std::time::Duration;

use crate::error::ConfigError;
use crate::quantity::{parse_duration, Rate};

/// A rate from the link's start, then changes at given times since the
/// start; the last rate holds for ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateSchedule {
    /// `(since the start, rate)`: the first at zero, then strictly
    /// increasing times.
    steps: Vec<(Duration, Rate)>,
}

impl RateSchedule {
    /// The same rate for ever.
    pub fn constant(rate: Rate) -> RateSchedule {
        RateSchedule {
            steps: vec![(Duration::ZERO, rate)],
        }
    }

    /// This schedule, then `rate` from `at` since the start on; `at` must
    /// come after every earlier change.
    pub fn then(mut self, at: Duration, rate: Rate) -> Result<RateSchedule, ConfigError> {
        // The first step is at zero and is never removed.
        let last = self.steps.last().map_or(Duration::ZERO, |s| s.0);
        if at <= last {
            return Err(ConfigError::ScheduleOutOfOrder { at });
        }
        self.steps.push((at, rate));
        Ok(self)
    }

    /// Parses `1mbit` or `1mbit,40s:2.5mbit,60s:600kbit`: the first rate,
    /// then `time:rate` changes.
    pub fn parse(text: &str) -> Result<RateSchedule, ConfigError> {
        let mut parts = text.split(',');
        // split always yields a first part, possibly empty.
        let first = parts.next().unwrap_or_default();
        let mut schedule = RateSchedule::constant(Rate::parse(first)?);
        for change in parts {
            let (at, rate) = change
                .split_once(':')
                .ok_or_else(|| ConfigError::value("rate", change, "a change such as 40s:2.5mbit"))?;
            schedule = schedule.then(parse_duration("rate", at)?, Rate::parse(rate)?)?;
        }
        Ok(schedule)
    }

    /// The rate at `elapsed` since the start.
    pub fn rate_at(&self, elapsed: Duration) -> Rate {
        self.steps[self.step_at(elapsed)].1
    }

    /// When a transmission of `bits` that begins at `begin` since the
    /// start ends, following every change of rate on the way.
    pub fn finish(&self, begin: Duration, mut bits: u128) -> Duration {
        let mut step = self.step_at(begin);
        let mut at = begin;
        loop {
            let rate = self.steps[step].1;
            let Some(&(end, _)) = self.steps.get(step + 1) else {
                return at + rate.time_for(bits);
            };
            let here = rate.bits_in(end - at);
            if bits <= here {
                return at + rate.time_for(bits);
            }
            bits -= here;
            at = end;
            step += 1;
        }
    }

    /// How many bits the schedule sends from `from` to `to` since the
    /// start (none if `to` is not later).
    pub fn bits_between(&self, from: Duration, to: Duration) -> u128 {
        let mut bits = 0;
        let mut at = from;
        let mut step = self.step_at(from);
        while at < to {
            let end = self.steps.get(step + 1).map_or(to, |s| s.0.min(to));
            bits += self.steps[step].1.bits_in(end - at);
            at = end;
            step += 1;
        }
        bits
    }

    /// The index of the step in force at `elapsed`.
    fn step_at(&self, elapsed: Duration) -> usize {
        // steps[0] is at zero, so at least one step has begun.
        self.steps.partition_point(|(at, _)| *at <= elapsed) - 1
    }
}
