//! What one direction of a link does to the packets that cross it.

use std::time::Duration;

use crate::error::ConfigError;
use crate::loss::LossModel;
use crate::quantity::{parse_bytes, parse_duration, parse_probability, Rate};
use crate::schedule::RateSchedule;

/// The settings [`LinkConfig::set`] knows, as the command line names them.
pub const KEYS: [&str; 10] = [
    "delay",
    "jitter",
    "loss",
    "burst-loss",
    "reorder",
    "reorder-delay",
    "duplicate",
    "rate",
    "queue",
    "burst",
];

/// One direction of a path: a bottleneck (a rate and a drop-tail queue
/// in front of it), then propagation delay with jitter, loss,
/// reordering and duplication. The default changes nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Propagation delay, added after the bottleneck.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter`;
    /// jitter alone never reorders (a packet is held until the one
    /// before it has arrived). At most `delay`.
    pub jitter: Duration,
    /// Loss on the path, after the bottleneck.
    pub loss: LossModel,
    /// The probability that a packet is held back by `reorder_delay`
    /// more, so that the packets behind it overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// The probability that a packet arrives twice.
    pub duplicate: f64,
    /// The bottleneck's capacity over time; `None` for no bottleneck.
    pub rate: Option<RateSchedule>,
    /// How much the bottleneck's drop-tail queue holds.
    pub queue: QueueLimit,
    /// The bottleneck as a token bucket of this many bytes, as Linux's
    /// `tbf` shapes (`tc qdisc ... tbf rate R burst B`): tokens fill at
    /// the rate up to the bucket's size, and a packet leaves, in order,
    /// as soon as the bucket holds its size, at once rather than
    /// serialized at the rate; after a pause up to `burst` bytes pass
    /// at the sender's speed. A packet larger than the bucket is
    /// dropped, as tbf does. A queue given as a time then holds that
    /// time at the rate plus the bucket (tbf's `latency`). `None`: the
    /// rate serializes each packet.
    pub burst: Option<u64>,
}

/// The size of a drop-tail queue: a packet that would not fit is
/// dropped. The queue counts the packet being sent; a packet that finds
/// it empty is always taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLimit {
    /// As much as the link sends in this time at its rate when a packet
    /// arrives: no accepted packet waits longer, while the rate holds.
    Time(Duration),
    /// This many bytes.
    Bytes(u64),
}

impl QueueLimit {
    /// The limit in bytes at `rate`.
    pub fn bytes(self, rate: Rate) -> u64 {
        match self {
            QueueLimit::Time(time) => rate.bytes_in(time),
            QueueLimit::Bytes(bytes) => bytes,
        }
    }

    /// Parses a time (`100ms`) or a size (`64kb`).
    pub fn parse(text: &str) -> Result<QueueLimit, ConfigError> {
        parse_duration("queue", text)
            .map(QueueLimit::Time)
            .or_else(|_| parse_bytes("queue", text).map(QueueLimit::Bytes))
            .map_err(|_| ConfigError::value("queue", text, "a time such as 100ms or a size such as 64kb"))
    }
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: LossModel::None,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            duplicate: 0.0,
            rate: None,
            queue: QueueLimit::Time(Duration::from_millis(100)),
            burst: None,
        }
    }
}

impl LinkConfig {
    /// Sets one of [`KEYS`] from its command-line form: `delay` and
    /// `jitter` `50ms`; `loss` `2%`; `burst-loss` `p,r[,bad_loss,good_loss]`
    /// (see [`LossModel::GilbertElliott`]); `reorder` and `duplicate`
    /// `1%`; `reorder-delay` `20ms`; `rate` `2mbit` or a schedule
    /// `1mbit,40s:2.5mbit`; `queue` `100ms` or `64kb`; `burst` `3kb`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "delay" => self.delay = parse_duration(key, value)?,
            "jitter" => self.jitter = parse_duration(key, value)?,
            "loss" => self.loss = LossModel::Random(parse_probability(key, value)?),
            "burst-loss" => self.loss = LossModel::parse_bursts(value)?,
            "reorder" => self.reorder = parse_probability(key, value)?,
            "reorder-delay" => self.reorder_delay = parse_duration(key, value)?,
            "duplicate" => self.duplicate = parse_probability(key, value)?,
            "rate" => self.rate = Some(RateSchedule::parse(value)?),
            "queue" => self.queue = QueueLimit::parse(value)?,
            "burst" => match parse_bytes(key, value)? {
                0 => return Err(ConfigError::value(key, value, "a bucket of at least one byte")),
                bytes => self.burst = Some(bytes),
            },
            _ => return Err(ConfigError::UnknownKey(key.to_owned())),
        }
        Ok(())
    }

    /// Sets one setting written `key=value`.
    pub fn apply(&mut self, setting: &str) -> Result<(), ConfigError> {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| ConfigError::NotKeyValue(setting.to_owned()))?;
        self.set(key, value)
    }

    /// Checks what [`set`](Self::set) cannot see alone: jitter within
    /// the delay, a bucket of at least a byte, and probabilities set
    /// directly in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.burst == Some(0) {
            return Err(ConfigError::value("burst", "0", "a bucket of at least one byte"));
        }
        if self.jitter > self.delay {
            return Err(ConfigError::JitterExceedsDelay {
                jitter: self.jitter,
                delay: self.delay,
            });
        }
        let loss = match self.loss {
            LossModel::None => vec![],
            LossModel::Random(p) => vec![p],
            LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            } => vec![p, r, bad_loss, good_loss],
        };
        let named = [("reorder", self.reorder), ("duplicate", self.duplicate)];
        let probabilities = loss.into_iter().map(|p| ("loss", p)).chain(named);
        for (key, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::value(key, &p.to_string(), "a probability from 0 to 1"));
            }
        }
        Ok(())
    }
}
