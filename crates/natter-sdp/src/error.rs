//! What went wrong in a session description, and where.

use std::fmt;

/// The kind of an SDP line, named by its type letter (RFC 8866 §5) and,
/// for an attribute, by the attribute's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LineKind {
    /// `v=` (RFC 8866 §5.1).
    Version,
    /// `o=` (§5.2).
    Origin,
    /// `s=` (§5.3).
    SessionName,
    /// `i=` (§5.4).
    Information,
    /// `u=` (§5.5).
    Uri,
    /// `e=` (§5.6).
    Email,
    /// `p=` (§5.6).
    Phone,
    /// `c=` (§5.7).
    Connection,
    /// `b=` (§5.8).
    Bandwidth,
    /// `t=` (§5.9).
    Timing,
    /// `r=` (§5.10).
    Repeat,
    /// `z=` (§5.11).
    TimeZone,
    /// `k=` (§5.12).
    EncryptionKey,
    /// `a=<name>` (§5.13).
    Attribute(String),
    /// `m=` (§5.14).
    Media,
    /// A line whose type letter RFC 8866 does not define.
    Unknown(char),
    /// Not a `<type>=<value>` line at all.
    Malformed,
}

impl LineKind {
    /// The kind of a line with type letter `letter` and value `value`.
    pub(crate) fn of(letter: char, value: &str) -> Self {
        match letter {
            'v' => LineKind::Version,
            'o' => LineKind::Origin,
            's' => LineKind::SessionName,
            'i' => LineKind::Information,
            'u' => LineKind::Uri,
            'e' => LineKind::Email,
            'p' => LineKind::Phone,
            'c' => LineKind::Connection,
            'b' => LineKind::Bandwidth,
            't' => LineKind::Timing,
            'r' => LineKind::Repeat,
            'z' => LineKind::TimeZone,
            'k' => LineKind::EncryptionKey,
            'a' => LineKind::Attribute(excerpt(value.split(':').next().unwrap_or_default())),
            'm' => LineKind::Media,
            other => LineKind::Unknown(other),
        }
    }
}

impl fmt::Display for LineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self {
            LineKind::Version => "v",
            LineKind::Origin => "o",
            LineKind::SessionName => "s",
            LineKind::Information => "i",
            LineKind::Uri => "u",
            LineKind::Email => "e",
            LineKind::Phone => "p",
            LineKind::Connection => "c",
            LineKind::Bandwidth => "b",
            LineKind::Timing => "t",
            LineKind::Repeat => "r",
            LineKind::TimeZone => "z",
            LineKind::EncryptionKey => "k",
            LineKind::Attribute(name) => return write!(f, "a={name}"),
            LineKind::Media => "m",
            LineKind::Unknown(letter) => return write!(f, "{letter}="),
            LineKind::Malformed => return f.write_str("malformed line"),
        };
        write!(f, "{letter}=")
    }
}

/// Why a session description could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line is wrong; `line` counts from 1, blank lines included.
    #[error("line {line} ({kind}): {error}")]
    Line {
        line: usize,
        kind: LineKind,
        error: LineError,
    },
    /// RFC 8866 §5: every description has one `v=`, one `o=`, one `s=` and at
    /// least one `t=` line.
    #[error("no {0} line: RFC 8866 §5 requires one in every session description")]
    Missing(LineKind),
}

/// What is wrong with one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// RFC 8866 §5: a line is `<type>=<value>` with a one-letter type.
    #[error("expected `<type>=<value>` with a one-letter type")]
    NotTypeValue,
    /// RFC 8866 §5.1: the description starts with `v=`.
    #[error("comes before v=: a description starts with v= (RFC 8866 §5.1)")]
    BeforeVersion,
    /// The line may appear once in its section (RFC 8866 §5).
    #[error("appears more than once in its section (RFC 8866 §5)")]
    Duplicate,
    /// A session-level line inside a media section (RFC 8866 §5).
    #[error("belongs at session level, not in a media section (RFC 8866 §5)")]
    InMediaSection,
    /// RFC 8866 §5.10: `r=` follows the `t=` it repeats.
    #[error("comes before any t= line it could repeat (RFC 8866 §5.10)")]
    RepeatWithoutTiming,
    /// A field of the line is missing or malformed.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// What is wrong with the value of a line or an attribute.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A required field is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A field does not follow its grammar; `value` is cut to 64 characters.
    #[error("invalid {field}: `{value}`")]
    Invalid { field: &'static str, value: String },
    /// Text after the last field the grammar allows.
    #[error("unexpected `{0}` after the last field")]
    Trailing(String),
    /// A value built in code that would be written as text that reads back
    /// as a different value (a name holding a separator, say).
    #[error("`{0}` would not read back as the value written")]
    Unfaithful(String),
}

/// The longest excerpt of input an error message quotes.
const EXCERPT_CHARS: usize = 64;

/// `s`, cut on a character boundary so that errors stay short whatever the input.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

impl ValueError {
    pub(crate) fn invalid(field: &'static str, value: &str) -> Self {
        ValueError::Invalid {
            field,
            value: excerpt(value),
        }
    }
}

/// Why an attribute cannot be added to an attribute list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a={name}: {error}")]
pub struct AttributeError {
    /// The attribute's name, cut to 64 characters.
    pub name: String,
    pub error: ValueError,
}
