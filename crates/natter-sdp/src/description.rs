//! Session descriptions (RFC 8866 §5): the session-level lines, the media
//! sections, parsing and writing.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::address::Address;
use crate::attribute::{Attribute, Attributes, Flag};
use crate::bandwidth::Bandwidth;
use crate::direction::Direction;
use crate::dtls::{Fingerprint, Setup};
use crate::error::{LineError, LineKind, ParseError, ValueError};
use crate::extmap::Extmap;
use crate::grammar::{number, trim, Fields};
use crate::group::Group;
use crate::line::{lines, split, UnknownLine};
use crate::media::MediaSection;
use crate::msid::MsidSemantic;

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`
/// (RFC 8866 §5.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `-` when there is none, as JSEP writes (RFC 8829 §5.2.1).
    pub username: String,
    /// Random, and below 2^63 (RFC 8829 §5.2.1).
    pub session_id: u64,
    /// Incremented with every new description of the session
    /// (RFC 8829 §5.2.2).
    pub session_version: u64,
    /// JSEP writes a placeholder, `IN IP4 0.0.0.0` (RFC 8829 §5.2.1).
    pub address: Address,
}

impl Origin {
    /// `o=- <session_id> <session_version> IN IP4 0.0.0.0`, as JSEP writes.
    pub fn new(session_id: u64, session_version: u64) -> Self {
        Origin {
            username: "-".into(),
            session_id,
            session_version,
            address: Address::new(std::net::Ipv4Addr::UNSPECIFIED.into()),
        }
    }
}

impl FromStr for Origin {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let username = fields.next("username")?.to_string();
        let session_id = number("session id", fields.next("session id")?)?;
        let session_version = number("session version", fields.next("session version")?)?;
        let address = Address::take(&mut fields)?;
        fields.end()?;
        Ok(Origin {
            username,
            session_id,
            session_version,
            address,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.username, self.session_id, self.session_version, self.address
        )
    }
}

/// A `t=<start> <stop>` line and its `r=` lines (RFC 8866 §5.9, §5.10).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Timing {
    /// NTP seconds; 0 with `stop` 0 for an unbounded session, which is
    /// what WebRTC writes (RFC 8829 §5.2.1).
    pub start: u64,
    pub stop: u64,
    /// `r=` values, as written.
    pub repeats: Vec<String>,
}

impl FromStr for Timing {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut fields = Fields::new(s);
        let start = number("start time", fields.next("start time")?)?;
        let stop = number("stop time", fields.next("stop time")?)?;
        fields.end()?;
        Ok(Timing {
            start,
            stop,
            repeats: Vec::new(),
        })
    }
}

/// A session description: the session-level lines and the media sections.
///
/// The model holds what the text says; text fields must hold no line
/// break and fields inside a line no space for the description to be
/// written as it is, and at least one [`Timing`] is needed for it to
/// parse again (RFC 8866 §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionDescription {
    /// `o=` (RFC 8866 §5.2).
    pub origin: Origin,
    /// `s=` (RFC 8866 §5.3), as written; JSEP writes `-` (RFC 8829 §5.2.1).
    pub session_name: String,
    /// `i=` (RFC 8866 §5.4).
    pub information: Option<String>,
    /// `u=` (RFC 8866 §5.5).
    pub uri: Option<String>,
    /// `e=` (RFC 8866 §5.6).
    pub emails: Vec<String>,
    /// `p=` (RFC 8866 §5.6).
    pub phones: Vec<String>,
    /// `c=` (RFC 8866 §5.7): the default for sections without their own.
    pub connection: Option<Address>,
    /// `b=` (RFC 8866 §5.8).
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` and `r=` (RFC 8866 §5.9, §5.10); at least one.
    pub timings: Vec<Timing>,
    /// `z=` (RFC 8866 §5.11), as written.
    pub time_zones: Option<String>,
    /// `k=` (RFC 8866 §5.12, obsolete), as written.
    pub encryption_key: Option<String>,
    /// Session-level `a=` lines.
    pub attributes: Attributes,
    /// Session-level lines of unknown type, in order; written after the
    /// attributes.
    pub unknown_lines: Vec<UnknownLine>,
    /// The media sections, in order (`m=` lines, RFC 8866 §5.14).
    pub media: Vec<MediaSection>,
}

impl SessionDescription {
    /// A description with no media, as JSEP starts one (RFC 8829 §5.2.1):
    /// `s=-` and `t=0 0`.
    pub fn new(origin: Origin) -> Self {
        SessionDescription {
            origin,
            session_name: "-".into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing::default()],
            time_zones: None,
            encryption_key: None,
            attributes: Attributes::new(),
            unknown_lines: Vec::new(),
            media: Vec::new(),
        }
    }

    /// Parses SDP text with CRLF or LF line ends (RFC 8866 §5).
    ///
    /// Lenient where browsers are: blank lines are skipped, fields may be
    /// separated by several spaces, session-level lines may come in any
    /// order after `v=`, and unknown lines and attributes are kept. Strict
    /// about what WebRTC relies on: every attribute this crate types must
    /// follow its grammar.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut lines = lines(text);
        let (number, first) = lines.next().ok_or(ParseError::Missing(LineKind::Version))?;
        let line_error = |line, kind, error| ParseError::Line { line, kind, error };
        let Some((letter, value)) = split(first) else {
            return Err(line_error(number, LineKind::Malformed, LineError::NotTypeValue));
        };
        if letter != 'v' {
            return Err(line_error(
                number,
                LineKind::of(letter, value),
                LineError::BeforeVersion,
            ));
        }
        if trim(value) != "0" {
            let error = ValueError::invalid("protocol version (only 0 exists)", value).into();
            return Err(line_error(number, LineKind::Version, error));
        }

        let mut session = SessionLines::default();
        let mut media: Vec<MediaSection> = Vec::new();
        for (number, line) in lines {
            let Some((letter, value)) = split(line) else {
                return Err(line_error(number, LineKind::Malformed, LineError::NotTypeValue));
            };
            let result = if letter == 'm' {
                MediaSection::parse_media_line(value)
                    .map(|section| media.push(section))
                    .map_err(LineError::from)
            } else if let Some(section) = media.last_mut() {
                media_line(section, letter, value)
            } else {
                session.line(letter, value)
            };
            result.map_err(|error| line_error(number, LineKind::of(letter, value), error))?;
        }
        let mut description = session.finish(media)?;
        description.shrink_to_fit();
        Ok(description)
    }

    /// Gives back what growing the lists while parsing reserved: a
    /// description is often kept for the whole session (issue 18).
    fn shrink_to_fit(&mut self) {
        self.emails.shrink_to_fit();
        self.phones.shrink_to_fit();
        self.bandwidths.shrink_to_fit();
        self.timings.shrink_to_fit();
        self.attributes.shrink_to_fit();
        self.unknown_lines.shrink_to_fit();
        self.media.shrink_to_fit();
        for section in &mut self.media {
            section.formats.shrink_to_fit();
            section.connections.shrink_to_fit();
            section.bandwidths.shrink_to_fit();
            section.attributes.shrink_to_fit();
            section.unknown_lines.shrink_to_fit();
        }
    }

    /// `a=group` (RFC 5888 §5), in order.
    pub fn groups(&self) -> impl Iterator<Item = Group> + '_ {
        self.attributes.typed()
    }

    /// The BUNDLE groups (RFC 8843 §7), in order.
    pub fn bundle_groups(&self) -> impl Iterator<Item = Group> + '_ {
        self.groups().filter(Group::is_bundle)
    }

    /// `a=msid-semantic`, in order.
    pub fn msid_semantics(&self) -> impl Iterator<Item = MsidSemantic> + '_ {
        self.attributes.typed()
    }

    /// `a=ice-lite` (RFC 8839 §5.3).
    pub fn ice_lite(&self) -> bool {
        self.attributes.flag(Flag::IceLite)
    }

    /// The media sections seen with the session-level defaults they inherit.
    pub fn media_views(&self) -> impl Iterator<Item = MediaView<'_>> + '_ {
        self.media
            .iter()
            .map(move |section| MediaView { session: self, section })
    }

    /// The media section at `index`, with the session-level defaults.
    pub fn media_view(&self, index: usize) -> Option<MediaView<'_>> {
        Some(MediaView {
            session: self,
            section: self.media.get(index)?,
        })
    }

    /// The media section whose `a=mid` is `mid`.
    pub fn media_by_mid(&self, mid: &str) -> Option<MediaView<'_>> {
        self.media_views().find(|view| view.mid() == Some(mid))
    }
}

impl FromStr for SessionDescription {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        SessionDescription::parse(s)
    }
}

impl fmt::Display for SessionDescription {
    /// The description as SDP text: CRLF line ends, lines in the order of
    /// RFC 8866 §5 (`v o s i u e p c b t r z k a`, then each media section).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        if let Some(information) = &self.information {
            write!(f, "i={information}\r\n")?;
        }
        if let Some(uri) = &self.uri {
            write!(f, "u={uri}\r\n")?;
        }
        self.emails.iter().try_for_each(|e| write!(f, "e={e}\r\n"))?;
        self.phones.iter().try_for_each(|p| write!(f, "p={p}\r\n"))?;
        if let Some(connection) = &self.connection {
            write!(f, "c={connection}\r\n")?;
        }
        self.bandwidths.iter().try_for_each(|b| write!(f, "b={b}\r\n"))?;
        for timing in &self.timings {
            write!(f, "t={} {}\r\n", timing.start, timing.stop)?;
            timing.repeats.iter().try_for_each(|r| write!(f, "r={r}\r\n"))?;
        }
        if let Some(zones) = &self.time_zones {
            write!(f, "z={zones}\r\n")?;
        }
        if let Some(key) = &self.encryption_key {
            write!(f, "k={key}\r\n")?;
        }
        self.attributes.iter().try_for_each(|a| write!(f, "a={a}\r\n"))?;
        self.unknown_lines.iter().try_for_each(|l| write!(f, "{l}\r\n"))?;
        self.media.iter().try_for_each(|m| write!(f, "{m}"))
    }
}

/// Sets a line that may appear once per section.
fn once(slot: &mut Option<String>, value: &str) -> Result<(), LineError> {
    match slot {
        Some(_) => Err(LineError::Duplicate),
        None => {
            *slot = Some(value.to_string());
            Ok(())
        }
    }
}

/// Adds one line after `m=` to `section`.
fn media_line(section: &mut MediaSection, letter: char, value: &str) -> Result<(), LineError> {
    match letter {
        'i' => once(&mut section.information, value),
        'c' => {
            section.connections.push(value.parse()?);
            Ok(())
        }
        'b' => {
            section.bandwidths.push(value.parse()?);
            Ok(())
        }
        'k' => once(&mut section.encryption_key, value),
        'a' => {
            section.attributes.push_parsed(Attribute::parse(value)?)?;
            Ok(())
        }
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => Err(LineError::InMediaSection),
        letter => {
            section.unknown_lines.push(UnknownLine {
                letter,
                value: value.to_string(),
            });
            Ok(())
        }
    }
}

/// The session-level lines read so far.
#[derive(Default)]
struct SessionLines {
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Address>,
    bandwidths: Vec<Bandwidth>,
    timings: Vec<Timing>,
    time_zones: Option<String>,
    encryption_key: Option<String>,
    attributes: Attributes,
    unknown_lines: Vec<UnknownLine>,
}

impl SessionLines {
    fn line(&mut self, letter: char, value: &str) -> Result<(), LineError> {
        match letter {
            'v' => Err(LineError::Duplicate),
            'o' if self.origin.is_some() => Err(LineError::Duplicate),
            'o' => {
                self.origin = Some(value.parse()?);
                Ok(())
            }
            's' => once(&mut self.session_name, value),
            'i' => once(&mut self.information, value),
            'u' => once(&mut self.uri, value),
            'e' => {
                self.emails.push(value.to_string());
                Ok(())
            }
            'p' => {
                self.phones.push(value.to_string());
                Ok(())
            }
            'c' if self.connection.is_some() => Err(LineError::Duplicate),
            'c' => {
                self.connection = Some(value.parse()?);
                Ok(())
            }
            'b' => {
                self.bandwidths.push(value.parse()?);
                Ok(())
            }
            't' => {
                self.timings.push(value.parse()?);
                Ok(())
            }
            'r' => match self.timings.last_mut() {
                Some(timing) => {
                    timing.repeats.push(value.to_string());
                    Ok(())
                }
                None => Err(LineError::RepeatWithoutTiming),
            },
            'z' => once(&mut self.time_zones, value),
            'k' => once(&mut self.encryption_key, value),
            'a' => {
                self.attributes.push_parsed(Attribute::parse(value)?)?;
                Ok(())
            }
            letter => {
                self.unknown_lines.push(UnknownLine {
                    letter,
                    value: value.to_string(),
                });
                Ok(())
            }
        }
    }

    fn finish(self, media: Vec<MediaSection>) -> Result<SessionDescription, ParseError> {
        let origin = self.origin.ok_or(ParseError::Missing(LineKind::Origin))?;
        let session_name = self.session_name.ok_or(ParseError::Missing(LineKind::SessionName))?;
        if self.timings.is_empty() {
            return Err(ParseError::Missing(LineKind::Timing));
        }
        Ok(SessionDescription {
            origin,
            session_name,
            information: self.information,
            uri: self.uri,
            emails: self.emails,
            phones: self.phones,
            connection: self.connection,
            bandwidths: self.bandwidths,
            timings: self.timings,
            time_zones: self.time_zones,
            encryption_key: self.encryption_key,
            attributes: self.attributes,
            unknown_lines: self.unknown_lines,
            media,
        })
    }
}

/// A media section together with its session, for what a section
/// inherits from the session level when it does not say it itself.
///
/// It dereferences to the [`MediaSection`]; where both have a method of
/// the same name (`direction`), the view's gives the value in effect.
#[derive(Clone, Copy, Debug)]
pub struct MediaView<'a> {
    session: &'a SessionDescription,
    section: &'a MediaSection,
}

impl<'a> MediaView<'a> {
    pub fn session(&self) -> &'a SessionDescription {
        self.session
    }

    pub fn section(&self) -> &'a MediaSection {
        self.section
    }

    /// The section's `a=fingerprint` lines, or the session's if it has
    /// none (RFC 8122 §5).
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let own: Vec<Fingerprint> = self.section.attributes.fingerprints().collect();
        if own.is_empty() {
            self.session.attributes.fingerprints().collect()
        } else {
            own
        }
    }

    /// `a=setup` of the section, else of the session (RFC 4145 §4).
    pub fn setup(&self) -> Option<Setup> {
        self.section
            .attributes
            .setup()
            .or_else(|| self.session.attributes.setup())
    }

    /// `a=ice-ufrag` of the section, else of the session (RFC 8839 §5.4).
    pub fn ice_ufrag(&self) -> Option<&'a str> {
        self.section
            .attributes
            .ice_ufrag()
            .or_else(|| self.session.attributes.ice_ufrag())
    }

    /// `a=ice-pwd` of the section, else of the session (RFC 8839 §5.4).
    pub fn ice_pwd(&self) -> Option<&'a str> {
        self.section
            .attributes
            .ice_pwd()
            .or_else(|| self.session.attributes.ice_pwd())
    }

    /// The section's ICE options, or the session's if it states none
    /// (RFC 8839 §5.6).
    pub fn ice_options(&self) -> Vec<&'a str> {
        let own: Vec<&str> = self.section.attributes.ice_options().collect();
        if own.is_empty() {
            self.session.attributes.ice_options().collect()
        } else {
            own
        }
    }

    /// The direction in effect: the section's, else the session's, else
    /// `sendrecv` (RFC 8866 §6.7).
    pub fn direction(&self) -> Direction {
        self.section
            .attributes
            .direction()
            .or_else(|| self.session.attributes.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The section's first `c=`, else the session's (RFC 8866 §5.7).
    pub fn connection(&self) -> Option<&'a Address> {
        self.section.connections.first().or(self.session.connection.as_ref())
    }

    /// The header extensions that apply: the session's `a=extmap` lines,
    /// then the section's (RFC 8285 §5).
    pub fn extmaps(&self) -> Vec<Extmap> {
        self.session
            .attributes
            .extmaps()
            .chain(self.section.attributes.extmaps())
            .collect()
    }

    /// Whether `flag` is set in the section or at session level; for
    /// `extmap-allow-mixed`, which may be written at either (RFC 8285 §6).
    pub fn flag(&self, flag: Flag) -> bool {
        self.section.attributes.flag(flag) || self.session.attributes.flag(flag)
    }
}

impl Deref for MediaView<'_> {
    type Target = MediaSection;

    fn deref(&self) -> &MediaSection {
        self.section
    }
}
