//! ICE servers (W3C webrtc-pc §4.2.1 `RTCIceServer`): `stun:` and
//! `stuns:` URIs (RFC 7064 §3.1), `turn:` and `turns:` URIs (RFC 7065
//! §3.1), and how they become the natter-ice agent's server list.
//!
//! A sans-IO core resolves no names: the host of a URL must be an IP
//! address. The I/O layer parses a URL with a host name
//! ([`IceServerUrl`]), resolves it, puts the address in its place and
//! writes it back with `Display`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use natter_ice::turn_client::TurnServer;
use natter_ice::Transport;

use super::error::PeerError;

/// RFC 7064 §3.2, RFC 7065 §3.2: the default port of `stun:` and `turn:`.
pub const DEFAULT_PORT: u16 = 3478;
/// RFC 7064 §3.2, RFC 7065 §3.2: the default port of `stuns:` and `turns:`.
pub const DEFAULT_TLS_PORT: u16 = 5349;

/// One entry of W3C `iceServers`: URLs of one server, with the
/// long-term credentials TURN needs (RFC 8489 §9.2).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: Option<String>,
    pub credential: Option<String>,
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The scheme of an ICE server URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IceServerScheme {
    /// `stun:` (RFC 7064).
    Stun,
    /// `stuns:`: STUN over TLS (RFC 7064).
    Stuns,
    /// `turn:` (RFC 7065).
    Turn,
    /// `turns:`: TURN over TLS (RFC 7065).
    Turns,
}

impl IceServerScheme {
    fn name(self) -> &'static str {
        match self {
            IceServerScheme::Stun => "stun",
            IceServerScheme::Stuns => "stuns",
            IceServerScheme::Turn => "turn",
            IceServerScheme::Turns => "turns",
        }
    }

    fn is_secure(self) -> bool {
        matches!(self, IceServerScheme::Stuns | IceServerScheme::Turns)
    }
}

/// The host of an ICE server URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IceServerHost {
    Ip(IpAddr),
    /// A `reg-name` (RFC 3986 §3.2.2) the I/O layer must resolve.
    Name(String),
}

/// A parsed `stun:`/`stuns:`/`turn:`/`turns:` URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IceServerUrl {
    pub scheme: IceServerScheme,
    pub host: IceServerHost,
    /// The port given, or the scheme's default.
    pub port: u16,
    /// RFC 7065 §3.1 `?transport=`: `udp` or `tcp` for `turn:` (`udp`
    /// by default), `tcp` for `turns:`; `None` for STUN URLs.
    pub transport: Option<TurnTransport>,
}

/// RFC 7065 §3.1: how the TURN client reaches its server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TurnTransport {
    Udp,
    Tcp,
}

impl FromStr for IceServerUrl {
    type Err = PeerError;

    /// RFC 7064 §3.1 `stunURI = scheme ":" host [ ":" port ]`; RFC 7065
    /// §3.1 adds `[ "?transport=" transport ]` to `turn:` and `turns:`.
    /// Schemes and the transport match in any case (RFC 3986 §3.1).
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &'static str| PeerError::InvalidIceServerUrl {
            url: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once(':').ok_or(invalid("no scheme"))?;
        let scheme = [
            IceServerScheme::Stun,
            IceServerScheme::Stuns,
            IceServerScheme::Turn,
            IceServerScheme::Turns,
        ]
        .into_iter()
        .find(|s| scheme.eq_ignore_ascii_case(s.name()))
        .ok_or(invalid("the scheme is not stun, stuns, turn or turns"))?;
        let (authority, query) = match rest.split_once('?') {
            Some((authority, query)) => (authority, Some(query)),
            None => (rest, None),
        };
        let transport = match (scheme, query) {
            (IceServerScheme::Stun | IceServerScheme::Stuns, Some(_)) => {
                return Err(invalid("STUN URLs take no query (RFC 7064 §3.1)"))
            }
            (IceServerScheme::Stun | IceServerScheme::Stuns, None) => None,
            (_, None) => Some(if scheme.is_secure() {
                TurnTransport::Tcp
            } else {
                TurnTransport::Udp
            }),
            (_, Some(query)) => {
                let value = query
                    .strip_prefix("transport=")
                    .ok_or(invalid("the only query is ?transport= (RFC 7065 §3.1)"))?;
                if value.eq_ignore_ascii_case("udp") {
                    Some(TurnTransport::Udp)
                } else if value.eq_ignore_ascii_case("tcp") {
                    Some(TurnTransport::Tcp)
                } else {
                    return Err(invalid("the transport is not udp or tcp"));
                }
            }
        };
        let (host, port) = split_host_port(authority).ok_or(invalid("the host or port is malformed"))?;
        let port = match port {
            Some(port) => port.parse().map_err(|_| invalid("the port is not 0-65535"))?,
            None if scheme.is_secure() => DEFAULT_TLS_PORT,
            None => DEFAULT_PORT,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => IceServerHost::Ip(ip),
            Err(_) if is_reg_name(host) => IceServerHost::Name(host.to_owned()),
            Err(_) => return Err(invalid("the host is not an IP address or host name")),
        };
        Ok(IceServerUrl {
            scheme,
            host,
            port,
            transport,
        })
    }
}

impl fmt::Display for IceServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.name())?;
        match &self.host {
            IceServerHost::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            IceServerHost::Ip(ip) => write!(f, "{ip}")?,
            IceServerHost::Name(name) => f.write_str(name)?,
        }
        write!(f, ":{}", self.port)?;
        match self.transport {
            Some(TurnTransport::Udp) => f.write_str("?transport=udp"),
            Some(TurnTransport::Tcp) => f.write_str("?transport=tcp"),
            None => Ok(()),
        }
    }
}

/// `host [ ":" port ]` with `host` an `IP-literal` in brackets, or
/// anything without a colon.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, after) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            host.parse::<std::net::Ipv6Addr>().ok()?;
            (host, after)
        }
        None => match authority.find(':') {
            Some(i) => (&authority[..i], &authority[i..]),
            None => (authority, ""),
        },
    };
    let port = match after {
        "" => None,
        _ => Some(after.strip_prefix(':').filter(|p| !p.is_empty())?),
    };
    (!host.is_empty()).then_some((host, port))
}

/// RFC 3986 §3.2.2 `reg-name`, narrowed to DNS names: letters, digits,
/// hyphens and dots.
fn is_reg_name(host: &str) -> bool {
    host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// The agent's server lists, from W3C `iceServers`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AgentServers {
    pub(super) stun: Vec<SocketAddr>,
    pub(super) turn: Vec<TurnServer>,
}

impl AgentServers {
    /// W3C webrtc-pc §4.4.1.1 ("validate the ICE servers"): every URL
    /// parses, and TURN URLs come with a username and credential. natter
    /// also needs IP addresses (see the [module documentation](self)) and
    /// cannot reach a STUN server over TLS.
    pub(super) fn from_config(servers: &[IceServer]) -> Result<Self, PeerError> {
        let mut out = AgentServers::default();
        for server in servers {
            for url in &server.urls {
                let parsed: IceServerUrl = url.parse()?;
                let IceServerHost::Ip(ip) = parsed.host else {
                    return Err(PeerError::UnresolvedIceServer(url.clone()));
                };
                let address = SocketAddr::new(ip, parsed.port);
                let transport = match (parsed.scheme, parsed.transport) {
                    (IceServerScheme::Stun, _) => {
                        out.stun.push(address);
                        continue;
                    }
                    (IceServerScheme::Stuns, _) => return Err(PeerError::UnsupportedIceServer(url.clone())),
                    // RFC 7065 §3.1: `turns:` over UDP would be DTLS.
                    (IceServerScheme::Turns, Some(TurnTransport::Udp)) => {
                        return Err(PeerError::UnsupportedIceServer(url.clone()))
                    }
                    (IceServerScheme::Turns, _) => Transport::Tls,
                    (IceServerScheme::Turn, Some(TurnTransport::Tcp)) => Transport::Tcp,
                    (IceServerScheme::Turn, _) => Transport::Udp,
                };
                let (Some(username), Some(password)) = (&server.username, &server.credential) else {
                    return Err(PeerError::MissingTurnCredentials(url.clone()));
                };
                out.turn.push(TurnServer {
                    address,
                    transport,
                    username: username.clone(),
                    password: password.clone(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> IceServerUrl {
        s.parse().unwrap()
    }

    #[test]
    fn urls_parse_with_default_ports_and_transports() {
        let u = url("stun:192.0.2.1");
        assert_eq!(u.host, IceServerHost::Ip([192, 0, 2, 1].into()));
        assert_eq!((u.port, u.transport), (3478, None));
        let u = url("TURN:[2001:db8::1]:3479?transport=TCP");
        assert_eq!(u.scheme, IceServerScheme::Turn);
        assert_eq!(u.host, IceServerHost::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!((u.port, u.transport), (3479, Some(TurnTransport::Tcp)));
        let u = url("turns:turn.example.org");
        assert_eq!(u.host, IceServerHost::Name("turn.example.org".into()));
        assert_eq!((u.port, u.transport), (5349, Some(TurnTransport::Tcp)));
        assert_eq!(url("turn:192.0.2.1").transport, Some(TurnTransport::Udp));
    }

    #[test]
    fn urls_write_back() {
        for s in [
            "stun:192.0.2.1:3478",
            "turn:[2001:db8::1]:3479?transport=tcp",
            "turns:turn.example.org:5349?transport=tcp",
        ] {
            assert_eq!(url(s).to_string(), s);
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        for s in [
            "http://example.org",
            "stun:",
            "stun:192.0.2.1:",
            "stun:192.0.2.1:70000",
            "stun:192.0.2.1?transport=udp",
            "turn:192.0.2.1?transport=sctp",
            "turn:192.0.2.1?proto=udp",
            "turn:[192.0.2.1]",
            "turn:bad_host",
            "stun:2001:db8::1",
        ] {
            assert!(
                matches!(s.parse::<IceServerUrl>(), Err(PeerError::InvalidIceServerUrl { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn servers_become_the_agents_lists() {
        let servers = [
            IceServer {
                urls: vec!["stun:192.0.2.1".into()],
                ..Default::default()
            },
            IceServer {
                urls: vec![
                    "turn:192.0.2.2?transport=udp".into(),
                    "turn:192.0.2.2?transport=tcp".into(),
                    "turns:192.0.2.2".into(),
                ],
                username: Some("u".into()),
                credential: Some("p".into()),
            },
        ];
        let lists = AgentServers::from_config(&servers).unwrap();
        assert_eq!(lists.stun, ["192.0.2.1:3478".parse().unwrap()]);
        let turn: Vec<_> = lists.turn.iter().map(|t| (t.address.port(), t.transport)).collect();
        assert_eq!(
            turn,
            [(3478, Transport::Udp), (3478, Transport::Tcp), (5349, Transport::Tls)]
        );
    }

    #[test]
    fn what_the_agent_cannot_use_is_refused() {
        let one = |url: &str, credentials: bool| {
            AgentServers::from_config(&[IceServer {
                urls: vec![url.into()],
                username: credentials.then(|| "u".into()),
                credential: credentials.then(|| "p".into()),
            }])
        };
        assert!(matches!(
            one("turn:192.0.2.1", false),
            Err(PeerError::MissingTurnCredentials(_))
        ));
        assert!(matches!(
            one("stun:stun.example.org", false),
            Err(PeerError::UnresolvedIceServer(_))
        ));
        assert!(matches!(
            one("stuns:192.0.2.1", false),
            Err(PeerError::UnsupportedIceServer(_))
        ));
        assert!(matches!(
            one("turns:192.0.2.1?transport=udp", true),
            Err(PeerError::UnsupportedIceServer(_))
        ));
    }
}
