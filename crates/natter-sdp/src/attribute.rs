//! Attributes (`a=`, RFC 8866 §5.13) and the list that holds them.
//!
//! The raw list is the source of truth: it keeps every attribute, known or
//! not, in the order it was written, and typed values are parsed from it on
//! demand. The list checks every attribute this crate knows when it is
//! added (on parsing, or through [`Attributes::push`]), so typed getters
//! never meet a malformed value.

use std::fmt;
use std::str::FromStr;

use crate::direction::Direction;
use crate::dtls::{Fingerprint, Setup};
use crate::error::{excerpt, AttributeError, ValueError};
use crate::extmap::Extmap;
use crate::fmtp::Fmtp;
use crate::grammar::{number, token, trim, Fields};
use crate::group::Group;
use crate::msid::{Msid, MsidSemantic};
use crate::rid::Rid;
use crate::rtcp::{Rtcp, RtcpFeedback};
use crate::rtpmap::RtpMap;
use crate::simulcast::Simulcast;
use crate::ssrc::{Ssrc, SsrcGroup};

/// One `a=` line: `a=<name>` (a property attribute) or `a=<name>:<value>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub name: String,
    /// `None` for `a=<name>`, `Some("")` for `a=<name>:`. Kept verbatim.
    pub value: Option<String>,
}

impl Attribute {
    /// `a=<name>`.
    pub fn property(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// `a=<name>:<value>`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// Splits the value of an `a=` line.
    pub(crate) fn parse(line_value: &str) -> Result<Self, ValueError> {
        let (name, value) = match line_value.split_once(':') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (line_value, None),
        };
        if name.is_empty() {
            return Err(ValueError::Missing("attribute name"));
        }
        Ok(Attribute {
            name: name.to_string(),
            value,
        })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}:{value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An attribute with a typed value: `FromStr` parses the value (without
/// the name and colon, and without surrounding spaces), `Display` writes it.
pub trait TypedAttribute: FromStr<Err = ValueError> + fmt::Display + PartialEq {
    /// The attribute's name.
    const NAME: &'static str;
}

/// The property attributes (`a=<name>`, no value) that WebRTC uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `a=ice-lite`, session level (RFC 8839 §5.3).
    IceLite,
    /// `a=rtcp-mux` (RFC 5761 §5.1.1).
    RtcpMux,
    /// `a=rtcp-mux-only` (RFC 8858 §3).
    RtcpMuxOnly,
    /// `a=rtcp-rsize`: reduced-size RTCP (RFC 5506 §5).
    RtcpRsize,
    /// `a=end-of-candidates` (RFC 8840).
    EndOfCandidates,
    /// `a=extmap-allow-mixed`: one- and two-byte header extensions mixed
    /// in one stream (RFC 8285 §6).
    ExtmapAllowMixed,
}

impl Flag {
    /// The attribute name.
    pub fn name(self) -> &'static str {
        match self {
            Flag::IceLite => "ice-lite",
            Flag::RtcpMux => "rtcp-mux",
            Flag::RtcpMuxOnly => "rtcp-mux-only",
            Flag::RtcpRsize => "rtcp-rsize",
            Flag::EndOfCandidates => "end-of-candidates",
            Flag::ExtmapAllowMixed => "extmap-allow-mixed",
        }
    }
}

/// `a=mid` (RFC 5888 §4): an `identification-tag`, a token.
pub(crate) const MID: &str = "mid";
/// `a=ice-ufrag` (RFC 8839 §5.4).
pub(crate) const ICE_UFRAG: &str = "ice-ufrag";
/// `a=ice-pwd` (RFC 8839 §5.4).
pub(crate) const ICE_PWD: &str = "ice-pwd";
/// `a=ice-options` (RFC 8839 §5.6).
pub(crate) const ICE_OPTIONS: &str = "ice-options";
/// `a=candidate` (RFC 8839 §5.1); natter-ice parses the value.
pub(crate) const CANDIDATE: &str = "candidate";
/// `a=sctp-port` (RFC 8841 §5).
pub(crate) const SCTP_PORT: &str = "sctp-port";
/// `a=max-message-size` (RFC 8841 §6).
pub(crate) const MAX_MESSAGE_SIZE: &str = "max-message-size";
/// `a=sctp-init` (draft-hancke-tsvwg-snap-01): the sender's SCTP INIT
/// chunk in base64 (RFC 4648 §4, padded).
pub(crate) const SCTP_INIT: &str = "sctp-init";
/// The longest `a=sctp-init` value taken: an INIT of 1536 bytes, far
/// more than any INIT with every optional parameter needs.
const MAX_SCTP_INIT_CHARS: usize = 2048;

type Check = fn(&str) -> Result<(), ValueError>;

/// Every attribute whose value this crate checks, with its check; the
/// value handed over has no surrounding spaces.
const CHECKS: &[(&str, Check)] = &[
    (Group::NAME, typed::<Group>),
    (MsidSemantic::NAME, typed::<MsidSemantic>),
    (Msid::NAME, typed::<Msid>),
    (Fingerprint::NAME, typed::<Fingerprint>),
    (Setup::NAME, typed::<Setup>),
    (Rtcp::NAME, typed::<Rtcp>),
    (RtcpFeedback::NAME, typed::<RtcpFeedback>),
    (Extmap::NAME, typed::<Extmap>),
    (RtpMap::NAME, typed::<RtpMap>),
    (Fmtp::NAME, typed::<Fmtp>),
    (Ssrc::NAME, typed::<Ssrc>),
    (SsrcGroup::NAME, typed::<SsrcGroup>),
    (Rid::NAME, typed::<Rid>),
    (Simulcast::NAME, typed::<Simulcast>),
    (MID, |v| token("mid", v).map(drop)),
    (ICE_UFRAG, |v| ice_chars("ice-ufrag", v)),
    (ICE_PWD, |v| ice_chars("ice-pwd", v)),
    (ICE_OPTIONS, ice_options),
    (CANDIDATE, |v| {
        if v.is_empty() {
            Err(ValueError::Missing("candidate"))
        } else {
            Ok(())
        }
    }),
    (SCTP_PORT, |v| number::<u16>("SCTP port", v).map(drop)),
    (MAX_MESSAGE_SIZE, |v| number::<u64>("max message size", v).map(drop)),
    (SCTP_INIT, |v| base64_value("sctp-init", v).map(drop)),
];

/// RFC 4648 §4 base64 with padding, decoded; at most
/// [`MAX_SCTP_INIT_CHARS`] characters and never empty.
pub(crate) fn base64_value(field: &'static str, value: &str) -> Result<Vec<u8>, ValueError> {
    use base64::Engine as _;
    if value.is_empty() || value.len() > MAX_SCTP_INIT_CHARS {
        return Err(ValueError::invalid(field, value));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| ValueError::invalid(field, value))
}

fn typed<T: TypedAttribute>(value: &str) -> Result<(), ValueError> {
    T::from_str(value).map(drop)
}

/// RFC 8839 §5.4: `1*256ice-char`, `ice-char = ALPHA / DIGIT / "+" / "/"`.
fn ice_chars(field: &'static str, value: &str) -> Result<(), ValueError> {
    let valid = matches!(value.len(), 1..=256)
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if valid {
        Ok(())
    } else {
        Err(ValueError::invalid(field, value))
    }
}

/// RFC 8839 §5.6: `ice-option-tag *(SP ice-option-tag)`.
fn ice_options(value: &str) -> Result<(), ValueError> {
    let mut fields = Fields::new(value);
    token("ICE option", fields.next("ICE option")?)?;
    while let Some(option) = fields.optional() {
        token("ICE option", option)?;
    }
    Ok(())
}

/// Checks the value of an attribute this crate knows.
fn check(attribute: &Attribute) -> Result<(), ValueError> {
    let Some((_, check)) = CHECKS.iter().find(|(name, _)| *name == attribute.name) else {
        return Ok(());
    };
    match &attribute.value {
        Some(value) => check(trim(value)),
        None => Err(ValueError::Missing("value")),
    }
}

/// The ordered attributes of a session or of a media section.
///
/// Known attributes are checked as they are added, so the typed getters
/// read back exactly what the list holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attributes(Vec<Attribute>);

impl Attributes {
    pub fn new() -> Self {
        Attributes::default()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Attribute> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.0.iter().find(|a| a.name == name)
    }

    /// Whether any attribute is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The values of the attributes named `name`, without surrounding spaces.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |a| a.name == name)
            .filter_map(|a| a.value.as_deref().map(trim))
    }

    /// The value of the first attribute named `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|a| a.name == name)
            .find_map(|a| a.value.as_deref().map(trim))
    }

    /// Appends an attribute. Fails if its name is empty or holds `:` or a
    /// line break, if its value holds a line break, or if it is an
    /// attribute this crate knows and its value does not follow the grammar.
    pub fn push(&mut self, attribute: Attribute) -> Result<(), AttributeError> {
        check_writable(&attribute)?;
        self.0.push(attribute);
        Ok(())
    }

    /// Frees the room the list has beyond its attributes.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// Appends an attribute read from SDP text (already split at `:`).
    pub(crate) fn push_parsed(&mut self, attribute: Attribute) -> Result<(), ValueError> {
        check(&attribute)?;
        self.0.push(attribute);
        Ok(())
    }

    /// Replaces the attributes named like `attribute` with it: it takes
    /// the place of the first one, or goes last if there was none.
    pub fn replace(&mut self, attribute: Attribute) -> Result<(), AttributeError> {
        check_writable(&attribute)?;
        self.replace_checked(attribute);
        Ok(())
    }

    fn replace_checked(&mut self, attribute: Attribute) {
        match self.0.iter().position(|a| a.name == attribute.name) {
            Some(first) => {
                let mut index = 0;
                self.0.retain(|a| {
                    let keep = index == first || a.name != attribute.name;
                    index += 1;
                    keep
                });
                self.0[first] = attribute;
            }
            None => self.0.push(attribute),
        }
    }

    /// [`Attributes::replace`] for an attribute valid by construction
    /// (a number this crate formatted, say).
    pub(crate) fn replace_valid(&mut self, attribute: Attribute) {
        debug_assert!(check_writable(&attribute).is_ok(), "{attribute} is not valid");
        self.replace_checked(attribute);
    }

    /// Removes every attribute named `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.0.len();
        self.0.retain(|a| a.name != name);
        before - self.0.len()
    }

    /// Keeps the attributes for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&Attribute) -> bool) {
        self.0.retain(keep);
    }

    /// The values of the attributes named `T::NAME`, parsed. A value that
    /// does not parse is skipped; for this crate's types there is none,
    /// since the list checks them as they are added.
    pub fn typed<T: TypedAttribute>(&self) -> impl Iterator<Item = T> + '_ {
        self.values(T::NAME).filter_map(|v| v.parse().ok())
    }

    /// The first attribute named `T::NAME`, parsed.
    pub fn first<T: TypedAttribute>(&self) -> Option<T> {
        self.typed().next()
    }

    /// Appends `a=<T::NAME>:<value>`. Fails if the text written would not
    /// read back as `value`.
    pub fn push_typed<T: TypedAttribute>(&mut self, value: &T) -> Result<(), AttributeError> {
        self.push(faithful(value)?)
    }

    /// Replaces the attributes named `T::NAME` with `value` (see [`Attributes::replace`]).
    pub fn set_typed<T: TypedAttribute>(&mut self, value: &T) -> Result<(), AttributeError> {
        self.replace(faithful(value)?)
    }

    /// Whether the property attribute `flag` is present.
    pub fn flag(&self, flag: Flag) -> bool {
        self.contains(flag.name())
    }

    /// Adds `flag` (at the end) if absent, or removes it.
    pub fn set_flag(&mut self, flag: Flag, on: bool) {
        if !on {
            self.remove(flag.name());
        } else if !self.flag(flag) {
            self.0.push(Attribute::property(flag.name()));
        }
    }

    /// The direction stated by the first direction attribute (RFC 8866 §6.7).
    pub fn direction(&self) -> Option<Direction> {
        self.0.iter().find_map(|a| Direction::from_name(&a.name))
    }

    /// Writes `direction`, in place of the first direction attribute or at
    /// the end, and removes any other.
    pub fn set_direction(&mut self, direction: Direction) {
        let new = Attribute::property(direction.name());
        match self.0.iter().position(|a| Direction::from_name(&a.name).is_some()) {
            Some(first) => {
                let mut index = 0;
                self.0.retain(|a| {
                    let keep = index == first || Direction::from_name(&a.name).is_none();
                    index += 1;
                    keep
                });
                self.0[first] = new;
            }
            None => self.0.push(new),
        }
    }

    /// `a=fingerprint` (RFC 8122 §5), in order.
    pub fn fingerprints(&self) -> impl Iterator<Item = Fingerprint> + '_ {
        self.typed()
    }

    /// `a=setup` (RFC 4145 §4).
    pub fn setup(&self) -> Option<Setup> {
        self.first()
    }

    /// `a=ice-ufrag` (RFC 8839 §5.4).
    pub fn ice_ufrag(&self) -> Option<&str> {
        self.value(ICE_UFRAG)
    }

    /// `a=ice-pwd` (RFC 8839 §5.4).
    pub fn ice_pwd(&self) -> Option<&str> {
        self.value(ICE_PWD)
    }

    /// The tags of every `a=ice-options` (RFC 8839 §5.6), such as `trickle`.
    pub fn ice_options(&self) -> impl Iterator<Item = &str> + '_ {
        self.values(ICE_OPTIONS).flat_map(str::split_ascii_whitespace)
    }

    /// `a=extmap` (RFC 8285 §5), in order.
    pub fn extmaps(&self) -> impl Iterator<Item = Extmap> + '_ {
        self.typed()
    }

    /// Writes `a=ice-ufrag` and `a=ice-pwd`, replacing earlier ones.
    pub fn set_ice_credentials(&mut self, ufrag: &str, pwd: &str) -> Result<(), AttributeError> {
        self.replace(Attribute::new(ICE_UFRAG, ufrag))?;
        self.replace(Attribute::new(ICE_PWD, pwd))
    }

    /// Writes `a=ice-options` with `options`, replacing earlier ones.
    pub fn set_ice_options<'a>(&mut self, options: impl IntoIterator<Item = &'a str>) -> Result<(), AttributeError> {
        let value = options.into_iter().collect::<Vec<_>>().join(" ");
        self.replace(Attribute::new(ICE_OPTIONS, value))
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a Attribute;
    type IntoIter = std::slice::Iter<'a, Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The attribute that writes `value`, if it reads back as `value`.
fn faithful<T: TypedAttribute>(value: &T) -> Result<Attribute, AttributeError> {
    let text = value.to_string();
    match trim(&text).parse::<T>() {
        Ok(back) if back == *value && !text.contains(['\r', '\n']) => Ok(Attribute::new(T::NAME, text)),
        _ => Err(AttributeError {
            name: T::NAME.into(),
            error: ValueError::Unfaithful(excerpt(&text)),
        }),
    }
}

/// Checks an attribute built in code: it must be written as one line that
/// parses back to itself.
fn check_writable(attribute: &Attribute) -> Result<(), AttributeError> {
    let error = |error| AttributeError {
        name: excerpt(&attribute.name),
        error,
    };
    let name_ok = !attribute.name.is_empty() && !attribute.name.contains([':', '\r', '\n']);
    if !name_ok {
        return Err(error(ValueError::invalid("attribute name", &attribute.name)));
    }
    if let Some(value) = &attribute.value {
        if value.contains(['\r', '\n']) {
            return Err(error(ValueError::invalid("attribute value (line break)", value)));
        }
    }
    check(attribute).map_err(error)
}
