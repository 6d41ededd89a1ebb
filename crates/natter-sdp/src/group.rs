//! `a=group` (RFC 5888 §5), in WebRTC mostly with BUNDLE semantics
//! (RFC 8843).

use std::fmt;
use std::str::FromStr;

use crate::attribute::TypedAttribute;
use crate::error::ValueError;
use crate::grammar::{token, Fields};

/// A group of media sections named by their `a=mid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Group {
    /// A token such as `BUNDLE` or `LS` (RFC 5888 §5).
    pub semantics: String,
    /// The `identification-tag`s of the members, in order; for BUNDLE the
    /// first is the offerer's or answerer's tagged section (RFC 8843 §7).
    pub mids: Vec<String>,
}

impl Group {
    /// The BUNDLE semantics (RFC 8843).
    pub const BUNDLE: &'static str = "BUNDLE";

    /// `a=group:BUNDLE <mids>`.
    pub fn bundle<S: Into<String>>(mids: impl IntoIterator<Item = S>) -> Self {
        Group {
            semantics: Group::BUNDLE.into(),
            mids: mids.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether this is a BUNDLE group.
    pub fn is_bundle(&self) -> bool {
        self.semantics == Group::BUNDLE
    }
}

impl TypedAttribute for Group {
    const NAME: &'static str = "group";
}

impl FromStr for Group {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let semantics = token("group semantics", fields.next("group semantics")?)?.to_string();
        let mut mids = Vec::new();
        while let Some(mid) = fields.optional() {
            mids.push(token("mid", mid)?.to_string());
        }
        Ok(Group { semantics, mids })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        self.mids.iter().try_for_each(|mid| write!(f, " {mid}"))
    }
}
