//! ICE candidates (RFC 8445 §5.1): kinds, transport, the priority formula
//! (§5.1.2), foundations (§5.1.1.3) and the SDP `candidate` attribute
//! (RFC 8839 §5.1), including ICE-TCP's `tcptype` (RFC 6544 §4.5) and
//! mDNS host names (RFC 8828).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The candidate types of RFC 8445 §5.1.1 with their recommended type
/// preferences (§5.1.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandidateKind {
    Host,
    ServerReflexive,
    PeerReflexive,
    Relayed,
}

/// Transport of a candidate: UDP, or TCP with its RFC 6544 role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp(TcpType),
}

/// RFC 6544 §4.5 TCP candidate types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpType {
    Active,
    Passive,
    SimultaneousOpen,
}

/// The address of a candidate: an IP address and port, or (remote
/// candidates only) an RFC 8828 mDNS name still to be resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CandidateAddress {
    Ip(SocketAddr),
    /// `<uuid>.local` and its port.
    Mdns(String, u16),
}

/// One ICE candidate, local or remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// RFC 8445 §5.1.1.3; at most 32 `ice-char`s.
    pub foundation: String,
    /// Component id, 1 (RTP) with rtcp-mux, the only one WebRTC uses.
    pub component: u16,
    pub protocol: Protocol,
    pub priority: u32,
    pub address: CandidateAddress,
    pub kind: CandidateKind,
    /// `raddr`/`rport`: the base of a reflexive or relayed candidate.
    pub related: Option<SocketAddr>,
    /// Extension attributes after the standard fields (`generation 0`,
    /// `ufrag abc`, `network-id 1`...), kept in order.
    pub extensions: Vec<(String, String)>,
}

impl CandidateKind {
    /// RFC 8445 §5.1.2.2's recommended type preference.
    pub fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }
}

/// RFC 8445 §5.1.2.1: `2^24·type preference + 2^8·local preference +
/// (256 − component)`. `local_preference` is at most 65535.
pub fn priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    (kind.type_preference() << 24) + (u32::from(local_preference) << 8) + (256 - u32::from(component.clamp(1, 256)))
}

/// RFC 8445 §5.1.1.3: candidates share a foundation when they have the
/// same type, base IP address, STUN or TURN server IP address and
/// transport. The foundation is a short decimal digest of those, the
/// same on every run.
pub fn foundation(
    kind: CandidateKind,
    base: std::net::IpAddr,
    server: Option<std::net::IpAddr>,
    protocol: Protocol,
) -> String {
    // FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
    let mut hash: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    };
    eat(&[kind as u8, matches!(protocol, Protocol::Tcp(_)) as u8]);
    for ip in std::iter::once(base).chain(server) {
        match ip {
            std::net::IpAddr::V4(v4) => eat(&v4.octets()),
            std::net::IpAddr::V6(v6) => eat(&v6.octets()),
        }
    }
    hash.to_string()
}

impl CandidateAddress {
    /// The port, whether the address is an IP address or an mDNS name.
    pub fn port(&self) -> u16 {
        match self {
            CandidateAddress::Ip(addr) => addr.port(),
            CandidateAddress::Mdns(_, port) => *port,
        }
    }
}

impl Candidate {
    /// The candidate's transport address, or `None` while it is an
    /// RFC 8828 mDNS name the I/O layer has not resolved yet.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.address {
            CandidateAddress::Ip(addr) => Some(addr),
            CandidateAddress::Mdns(..) => None,
        }
    }
}

/// RFC 8839 §5.1 `candidate-types`: `host`, `srflx`, `prflx`, `relay`.
impl fmt::Display for CandidateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        })
    }
}

/// RFC 6544 §4.5 `tcp-type`: `active`, `passive`, `so`.
impl fmt::Display for TcpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpType::Active => "active",
            TcpType::Passive => "passive",
            TcpType::SimultaneousOpen => "so",
        })
    }
}

/// A part of the `candidate` attribute, named as RFC 8839 §5.1's grammar
/// (and RFC 6544 §4.5's for `tcptype`) names it; errors say which one was
/// wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Foundation,
    ComponentId,
    Transport,
    Priority,
    ConnectionAddress,
    Port,
    CandidateType,
    RelatedAddress,
    RelatedPort,
    TcpType,
    Extension,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Foundation => "foundation",
            Field::ComponentId => "component id",
            Field::Transport => "transport",
            Field::Priority => "priority",
            Field::ConnectionAddress => "connection address",
            Field::Port => "port",
            Field::CandidateType => "candidate type",
            Field::RelatedAddress => "related address (raddr)",
            Field::RelatedPort => "related port (rport)",
            Field::TcpType => "tcptype",
            Field::Extension => "extension attribute",
        })
    }
}

/// Why a `candidate` attribute could not be parsed. Values quoted from the
/// input are cut to [`MAX_QUOTED_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseCandidateError {
    /// The input starts with `a=` but the attribute is not `candidate`.
    #[error("`a={0}` is not a candidate attribute")]
    NotCandidate(String),
    /// The attribute ends before a mandatory field (or a value that
    /// `raddr`, `rport` or `tcptype` announces).
    #[error("candidate ends before its {0}")]
    Missing(Field),
    /// A field does not follow RFC 8839 §5.1 (or RFC 6544 §4.5).
    #[error("invalid {field} `{value}`: {reason}")]
    Invalid {
        field: Field,
        value: String,
        reason: &'static str,
    },
    /// RFC 8839 §5.1 allows transport extensions; only UDP and RFC 6544
    /// TCP are implemented.
    #[error("transport `{0}` is not supported (expected UDP or TCP)")]
    UnsupportedTransport(String),
    /// A fully qualified domain name other than an RFC 8828 mDNS name.
    /// RFC 8839 §5.1 lets an agent drop these rather than resolve them.
    #[error("connection address `{0}` is a host name; only IP addresses and RFC 8828 mDNS names ending in `.local` are accepted")]
    HostName(String),
    /// RFC 8839 §5.1: the port is followed by `typ`.
    #[error("expected `typ` after the port, found `{0}`")]
    ExpectedTyp(String),
    /// RFC 8839 §5.1 allows new candidate types; none is implemented.
    #[error("unknown candidate type `{0}` (expected host, srflx, prflx or relay)")]
    UnknownType(String),
    /// `raddr`, `rport` or `tcptype` given twice.
    #[error("{0} appears more than once")]
    Duplicate(Field),
    /// `raddr` without `rport` or the other way round.
    #[error("{present} without {missing}")]
    RelatedIncomplete { present: Field, missing: Field },
    /// RFC 6544 §4.5: a TCP candidate carries `tcptype`.
    #[error("TCP candidate has no tcptype (RFC 6544 §4.5 requires active, passive or so)")]
    MissingTcpType,
    /// `tcptype` belongs to TCP candidates only (RFC 6544 §4.5).
    #[error("tcptype on a UDP candidate")]
    TcpTypeOnUdp,
    /// RFC 8839 §5.1: extension attributes come in name/value pairs.
    #[error("extension attribute `{0}` has no value")]
    ExtensionWithoutValue(String),
}

/// The longest piece of input an error message quotes.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Quotes at most [`MAX_QUOTED_CHARS`] characters of hostile input.
fn quote(s: &str) -> String {
    match s.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn invalid(field: Field, value: &str, reason: &'static str) -> ParseCandidateError {
    ParseCandidateError::Invalid {
        field,
        value: quote(value),
        reason,
    }
}

/// RFC 8839 §5.1 `ice-char`: ALPHA / DIGIT / "+" / "/".
fn is_ice_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// RFC 3261 §25.1 `token`, the syntax of an extension attribute name.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A decimal field: digits only (`str::parse` would also take a `+`).
fn decimal<T: FromStr>(word: &str, field: Field, range_reason: &'static str) -> Result<T, ParseCandidateError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(field, word, "not a decimal number"));
    }
    word.parse().map_err(|_| invalid(field, word, range_reason))
}

fn parse_port(word: &str, field: Field) -> Result<u16, ParseCandidateError> {
    decimal(word, field, "out of range 0–65535")
}

/// An RFC 1123 host name: dot-separated labels of letters, digits and
/// inner hyphens, whose last label is not all digits (that would be a
/// malformed IPv4 address).
fn is_host_name(s: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    s.len() <= 253
        && s.split('.').all(label_ok)
        && !s
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
}

/// The connection address without its port, which comes after it.
enum Host<'a> {
    Ip(IpAddr),
    Mdns(&'a str),
}

/// RFC 8839 §5.1 `connection-address`: an IP address, or an FQDN of which
/// only RFC 8828 §3 mDNS names (ending in `.local`) are accepted.
fn connection_address(word: &str) -> Result<Host<'_>, ParseCandidateError> {
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    if !is_host_name(word) {
        return Err(invalid(
            Field::ConnectionAddress,
            word,
            "not an IP address or host name",
        ));
    }
    match word.rsplit_once('.') {
        Some((_, tld)) if tld.eq_ignore_ascii_case("local") => Ok(Host::Mdns(word)),
        _ => Err(ParseCandidateError::HostName(quote(word))),
    }
}

/// Strips a leading `candidate:` (any case, as ABNF literals are).
fn strip_candidate(s: &str) -> Option<&str> {
    const PREFIX: &str = "candidate:";
    s.get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| s.get(PREFIX.len()..))
}

/// Parses the value of an SDP `candidate` attribute (RFC 8839 §5.1), with
/// or without a leading `a=` and `candidate:`, as a browser's
/// `RTCIceCandidate.candidate` or an SDP line carries it.
///
/// What is accepted, beyond the grammar's letter:
///
/// - Fields may be separated by any ASCII whitespace, and surrounding
///   whitespace (a trailing CRLF) is ignored. Literals (`UDP`, `typ`,
///   `host`, `raddr`, `tcptype`, `passive`...) match in any case, as ABNF
///   literals do.
/// - The component id must be 1–256 (RFC 8839 §5.1); any `u32` priority
///   is taken as sent.
/// - The connection address is an IPv4 or IPv6 address, or an RFC 8828
///   mDNS name ending in `.local` ([`CandidateAddress::Mdns`], resolved
///   later by the I/O layer). Other host names are refused
///   ([`ParseCandidateError::HostName`]): RFC 8839 §5.1 lets an agent
///   ignore candidates whose FQDN it does not resolve.
/// - `raddr` must be an IP address and comes with `rport`; both are
///   optional whatever the type (RFC 8839 §5.1 wants them on reflexive
///   and relayed candidates, but they only serve diagnostics and
///   browsers may hide them behind `0.0.0.0 0`).
/// - After `typ`, `raddr`, `rport` and `tcptype` are recognised in any
///   order among the extension attributes (browsers put `tcptype` after
///   `raddr`/`rport`, RFC 6544 §4.5 before). All other name/value pairs
///   are kept in order in [`Candidate::extensions`]; names must be RFC
///   3261 tokens and values visible ASCII. A name without a value is an
///   error.
/// - RFC 6544 §4.5 makes `tcptype` mandatory on TCP candidates, and a
///   wrong guess at the role would only produce failing checks, so a TCP
///   candidate without it is an error ([`ParseCandidateError::MissingTcpType`]),
///   as is `tcptype` on a UDP candidate.
///
/// Any input gives a candidate or an error, never a panic. Formatting a
/// parsed candidate with [`Display`](fmt::Display) and parsing it again
/// gives the same value.
impl FromStr for Candidate {
    type Err = ParseCandidateError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut rest = input.trim_ascii();
        if let Some(attribute) = rest.strip_prefix("a=") {
            rest = strip_candidate(attribute).ok_or_else(|| {
                let name = attribute.split([':', ' ']).next().unwrap_or(attribute);
                ParseCandidateError::NotCandidate(quote(name))
            })?;
        } else if let Some(value) = strip_candidate(rest) {
            rest = value;
        }
        let mut words = rest.split_ascii_whitespace();
        let mut next = |field| words.next().ok_or(ParseCandidateError::Missing(field));

        let foundation = next(Field::Foundation)?;
        if !(1..=32).contains(&foundation.len()) || !foundation.bytes().all(is_ice_char) {
            return Err(invalid(
                Field::Foundation,
                foundation,
                "not 1 to 32 ice-chars (letters, digits, + and /)",
            ));
        }
        let component_word = next(Field::ComponentId)?;
        let component: u16 = decimal(component_word, Field::ComponentId, "out of range 1–256")?;
        if !(1..=256).contains(&component) {
            return Err(invalid(Field::ComponentId, component_word, "out of range 1–256"));
        }
        let transport = next(Field::Transport)?;
        let tcp = if transport.eq_ignore_ascii_case("udp") {
            false
        } else if transport.eq_ignore_ascii_case("tcp") {
            true
        } else {
            return Err(ParseCandidateError::UnsupportedTransport(quote(transport)));
        };
        let priority = decimal(next(Field::Priority)?, Field::Priority, "out of range 0–4294967295")?;
        let host = connection_address(next(Field::ConnectionAddress)?)?;
        let port = parse_port(next(Field::Port)?, Field::Port)?;
        let address = match host {
            Host::Ip(ip) => CandidateAddress::Ip(SocketAddr::new(ip, port)),
            Host::Mdns(name) => CandidateAddress::Mdns(name.to_owned(), port),
        };
        let typ = next(Field::CandidateType)?;
        if !typ.eq_ignore_ascii_case("typ") {
            return Err(ParseCandidateError::ExpectedTyp(quote(typ)));
        }
        let kind_word = next(Field::CandidateType)?;
        let kind = [
            CandidateKind::Host,
            CandidateKind::ServerReflexive,
            CandidateKind::PeerReflexive,
            CandidateKind::Relayed,
        ]
        .into_iter()
        .find(|k| kind_word.eq_ignore_ascii_case(&k.to_string()))
        .ok_or_else(|| ParseCandidateError::UnknownType(quote(kind_word)))?;

        let (mut raddr, mut rport, mut tcp_type) = (None, None, None);
        let mut extensions = Vec::new();
        while let Some(name) = words.next() {
            let special = [Field::RelatedAddress, Field::RelatedPort, Field::TcpType]
                .into_iter()
                .zip(["raddr", "rport", "tcptype"])
                .find(|(_, keyword)| name.eq_ignore_ascii_case(keyword));
            let Some(value) = words.next() else {
                return Err(match special {
                    Some((field, _)) => ParseCandidateError::Missing(field),
                    None => ParseCandidateError::ExtensionWithoutValue(quote(name)),
                });
            };
            match special {
                Some((Field::RelatedAddress, _)) => {
                    let ip = value
                        .parse::<IpAddr>()
                        .map_err(|_| invalid(Field::RelatedAddress, value, "not an IP address"))?;
                    set_once(&mut raddr, ip, Field::RelatedAddress)?;
                }
                Some((Field::RelatedPort, _)) => {
                    set_once(&mut rport, parse_port(value, Field::RelatedPort)?, Field::RelatedPort)?
                }
                // The only other special name: `tcptype`.
                Some(_) => {
                    let t = [TcpType::Active, TcpType::Passive, TcpType::SimultaneousOpen]
                        .into_iter()
                        .find(|t| value.eq_ignore_ascii_case(&t.to_string()))
                        .ok_or_else(|| invalid(Field::TcpType, value, "expected active, passive or so"))?;
                    set_once(&mut tcp_type, t, Field::TcpType)?;
                }
                None => {
                    if !name.bytes().all(is_token_char) {
                        return Err(invalid(Field::Extension, name, "name is not a token"));
                    }
                    if !value.bytes().all(|b| b.is_ascii_graphic()) {
                        return Err(invalid(Field::Extension, value, "value is not visible ASCII"));
                    }
                    extensions.push((name.to_owned(), value.to_owned()));
                }
            }
        }

        let related = match (raddr, rport) {
            (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ParseCandidateError::RelatedIncomplete {
                    present: Field::RelatedAddress,
                    missing: Field::RelatedPort,
                })
            }
            (None, Some(_)) => {
                return Err(ParseCandidateError::RelatedIncomplete {
                    present: Field::RelatedPort,
                    missing: Field::RelatedAddress,
                })
            }
        };
        let protocol = match (tcp, tcp_type) {
            (false, None) => Protocol::Udp,
            (false, Some(_)) => return Err(ParseCandidateError::TcpTypeOnUdp),
            (true, Some(t)) => Protocol::Tcp(t),
            (true, None) => return Err(ParseCandidateError::MissingTcpType),
        };
        Ok(Candidate {
            foundation: foundation.to_owned(),
            component,
            protocol,
            priority,
            address,
            kind,
            related,
            extensions,
        })
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T, field: Field) -> Result<(), ParseCandidateError> {
    if slot.replace(value).is_some() {
        return Err(ParseCandidateError::Duplicate(field));
    }
    Ok(())
}

/// Writes the attribute value in canonical form, without `a=`:
/// `candidate:<foundation> <component> udp|tcp <priority> <address>
/// <port> typ <type> [raddr <ip> rport <port>] [tcptype <t>]
/// [<name> <value>]...` (RFC 8839 §5.1, RFC 6544 §4.5). Transports are
/// written in lower case, as browsers write them.
///
/// The output parses back to the same value when the candidate is one
/// [`FromStr`] could have produced: a valid foundation, a component of
/// 1–256, and extensions whose names are tokens other than `raddr`,
/// `rport` and `tcptype` and whose values are non-empty visible ASCII.
/// IPv6 scope ids and flow labels are not part of the attribute and are
/// not written.
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.protocol {
            Protocol::Udp => "udp",
            Protocol::Tcp(_) => "tcp",
        };
        write!(
            f,
            "candidate:{} {} {} {} ",
            self.foundation, self.component, transport, self.priority
        )?;
        match &self.address {
            CandidateAddress::Ip(addr) => write!(f, "{} {}", addr.ip(), addr.port())?,
            CandidateAddress::Mdns(name, port) => write!(f, "{name} {port}")?,
        }
        write!(f, " typ {}", self.kind)?;
        if let Some(related) = self.related {
            write!(f, " raddr {} rport {}", related.ip(), related.port())?;
        }
        if let Protocol::Tcp(t) = self.protocol {
            write!(f, " tcptype {t}")?;
        }
        for (name, value) in &self.extensions {
            write!(f, " {name} {value}")?;
        }
        Ok(())
    }
}
