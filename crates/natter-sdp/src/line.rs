//! SDP lines: `<type>=<value>`, one per line (RFC 8866 §5).

use std::fmt;

/// A line whose type letter RFC 8866 does not define, kept as written.
/// RFC 8866 §5 lets a parser ignore such lines; we keep them so that
/// nothing a peer wrote is lost.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UnknownLine {
    /// An ASCII letter outside `vosiuepcbtrzkam`.
    pub letter: char,
    /// The value after `=`; holds no line break.
    pub value: String,
}

impl fmt::Display for UnknownLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.letter, self.value)
    }
}

/// The non-empty lines of `text` with their numbers (from 1). Lines end
/// with CRLF (RFC 8866 §5) or, leniently, LF alone.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !line.is_empty())
}

/// The type letter and the value of a line, if it is `<letter>=<value>`.
pub(crate) fn split(line: &str) -> Option<(char, &str)> {
    match line.as_bytes() {
        // Both bytes are ASCII, so index 2 is a char boundary.
        [letter, b'=', ..] if letter.is_ascii_alphabetic() => Some((char::from(*letter), &line[2..])),
        _ => None,
    }
}
