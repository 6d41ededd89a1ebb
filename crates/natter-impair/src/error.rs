//! What can be wrong with a link's description.

use std::time::Duration;

/// A link description that cannot be used, naming what was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown link setting {0:?} (known: {known})", known = crate::config::KEYS.join(", "))]
    UnknownKey(String),
    #[error("{key} = {value:?}: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("a jitter of {jitter:?} exceeds the delay of {delay:?}: packets would arrive before they were sent")]
    JitterExceedsDelay { jitter: Duration, delay: Duration },
    #[error("the rate schedule's changes must come in increasing order of time, after 0 s ({at:?} does not)")]
    ScheduleOutOfOrder { at: Duration },
    #[error("a link setting must be written key=value, not {0:?}")]
    NotKeyValue(String),
}

impl ConfigError {
    pub(crate) fn value(key: &str, value: &str, expected: &'static str) -> ConfigError {
        ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        }
    }
}
