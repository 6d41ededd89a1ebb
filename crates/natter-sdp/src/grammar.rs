//! Pieces of the SDP grammar (RFC 8866 §9) that every line and attribute
//! parser shares: tokens, numbers and whitespace-separated fields.

use std::str::FromStr;

use crate::error::ValueError;

/// Fields are separated by SP in RFC 8866 §9; browsers accept runs of
/// spaces and tabs, and so do we.
pub(crate) fn is_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// `s` without leading and trailing spaces, by the same rule that splits
/// fields (so trimming never disagrees with splitting).
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// RFC 8866 §9 `token-char`.
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

/// RFC 8866 §9 `token = 1*(token-char)`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `s` if it is a `token`, else an error naming `field`.
pub(crate) fn token<'a>(field: &'static str, s: &'a str) -> Result<&'a str, ValueError> {
    if is_token(s) {
        Ok(s)
    } else {
        Err(ValueError::invalid(field, s))
    }
}

/// A decimal number written as `1*DIGIT` (no sign) that fits in `T`.
pub(crate) fn number<T: FromStr>(field: &'static str, s: &str) -> Result<T, ValueError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::invalid(field, s));
    }
    s.parse().map_err(|_| ValueError::invalid(field, s))
}

/// An RTP payload type: RFC 3550 §5.1 gives it 7 bits.
pub(crate) fn payload_type(s: &str) -> Result<u8, ValueError> {
    match number::<u8>("payload type (0-127)", s)? {
        pt @ 0..=127 => Ok(pt),
        _ => Err(ValueError::invalid("payload type (0-127)", s)),
    }
}

/// A cursor over the space-separated fields of a value.
pub(crate) struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Fields(trim(s))
    }

    /// The next field, if any.
    pub(crate) fn optional(&mut self) -> Option<&'a str> {
        if self.0.is_empty() {
            return None;
        }
        let (field, rest) = match self.0.find(is_space) {
            // `find` returns the index of an ASCII character: a char boundary.
            Some(end) => (&self.0[..end], &self.0[end..]),
            None => (self.0, ""),
        };
        self.0 = rest.trim_start_matches(is_space);
        Some(field)
    }

    /// The next field, which the grammar requires.
    pub(crate) fn next(&mut self, field: &'static str) -> Result<&'a str, ValueError> {
        self.optional().ok_or(ValueError::Missing(field))
    }

    /// Whether every field has been taken.
    pub(crate) fn is_done(&self) -> bool {
        self.0.is_empty()
    }

    /// Everything after the fields taken so far, inner spacing kept.
    pub(crate) fn rest(self) -> &'a str {
        self.0
    }

    /// Fails if anything follows the fields taken so far.
    pub(crate) fn end(self) -> Result<(), ValueError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValueError::Trailing(crate::error::excerpt(self.0)))
        }
    }
}
