//! Peer-address policy: which peers an allocation may relay to.
//!
//! RFC 8656 §10.2 and §12.2 let a server restrict the peer addresses in
//! CreatePermission and ChannelBind requests and answer 403 (Forbidden).
//! Without such a restriction a TURN server is an open proxy into its own
//! host and network. CVE-2020-26262 bypassed coturn's loopback protection
//! with the peer `0.0.0.0` (and `::`, `::1`), which the kernel delivers to
//! the host itself; CVE-2026-27624 belongs to the same class. Addresses that
//! hide IPv4 inside IPv6 (`::ffff:127.0.0.1`) are the other classic bypass.
//!
//! [`PeerFilter::check`] decides in this order:
//!
//! 1. Port 0 is refused: it is never a valid destination.
//! 2. A peer that reaches one of the server's own listeners
//!    ([`PeerFilter::new`] documents the rule) is refused, even if allow-listed.
//! 3. A peer in an allowed range is accepted (coturn's `allowed-peer-ip`
//!    overrides `denied-peer-ip` and the defaults).
//! 4. A peer on one of the server's own relay addresses, in the relay port
//!    range, is accepted: it is another allocation on this server
//!    ([`PeerFilter::with_own_relays`]), which two clients of one server
//!    reach each other through even when the relay address is private.
//! 5. A peer that is one of the server's own media endpoints is accepted
//!    ([`PeerFilter::with_own_peers`]): a client that can only reach the
//!    host through TURN reaches a co-located SFU this way, on that exact
//!    address and port only.
//! 6. A peer in a denied range is refused.
//! 7. A peer whose address is not globally reachable (the special-purpose
//!    registries of RFC 6890 and their successors) is refused.
//!
//! Every step judges an IPv6 address that embeds an IPv4 address
//! ([`embedded_ipv4`]) as that IPv4 address, so `::ffff:127.0.0.1`,
//! `64:ff9b::7f00:1` and `2002:7f00:1::` are all loopback.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An inclusive range of IP addresses of one family.
///
/// Parsed from coturn's syntax: a single address (`10.0.0.1`, `fd00::1`), a
/// CIDR block (`10.0.0.0/8`, `fd00::/8`) or two addresses joined by `-`
/// (`10.0.0.1-10.0.0.9`). A CIDR block must have its host bits clear, so that
/// a typo like `10.0.0.1/8` is reported rather than silently widened.
///
/// An address that embeds an IPv4 address is matched as that IPv4 address;
/// see [`IpRange::contains`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    // Invariant: same family, `first <= last`.
    first: IpAddr,
    last: IpAddr,
}

/// Why a string is not an [`IpRange`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpRangeError {
    /// The input is empty.
    #[error("empty IP range")]
    Empty,
    /// A part of the input is not an IPv4 or IPv6 address.
    #[error("{text:?} is not an IPv4 or IPv6 address")]
    InvalidAddress {
        /// The offending part of the input.
        text: String,
    },
    /// The text after `/` is not a decimal number.
    #[error("prefix length {text:?} is not a decimal number")]
    InvalidPrefixLength {
        /// The text after `/`.
        text: String,
    },
    /// The prefix length exceeds the address width.
    #[error("prefix length /{len} is longer than the {max} bits of {network}")]
    PrefixTooLong {
        /// The prefix length given.
        len: u16,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
        /// The address before `/`.
        network: IpAddr,
    },
    /// The address before `/` has bits set below the prefix length.
    #[error("{address}/{len} has host bits set (the network is {network}/{len})")]
    HostBitsSet {
        /// The address before `/`.
        address: IpAddr,
        /// The prefix length.
        len: u8,
        /// `address` with its host bits cleared.
        network: IpAddr,
    },
    /// The two ends of `first-last` are of different families.
    #[error("range {first}-{last} mixes IPv4 and IPv6")]
    FamilyMismatch {
        /// The address before `-`.
        first: IpAddr,
        /// The address after `-`.
        last: IpAddr,
    },
    /// The first address of `first-last` is above the last one.
    #[error("range {first}-{last} ends before it starts")]
    Reversed {
        /// The address before `-`.
        first: IpAddr,
        /// The address after `-`.
        last: IpAddr,
    },
}

impl IpRange {
    /// The range holding just `ip`.
    pub fn single(ip: IpAddr) -> Self {
        Self { first: ip, last: ip }
    }

    /// The first address of the range.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address of the range (inclusive).
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// Whether `ip` lies in this range, judging an IPv6 address that embeds
    /// an IPv4 address ([`embedded_ipv4`]) as that IPv4 address.
    ///
    /// So `10.0.0.0/8` contains `::ffff:10.0.0.1` and `2002:a00:1::`, while
    /// `::/0` contains neither. A range whose ends embed IPv4 through the
    /// same 96-bit prefix (`::ffff:10.0.0.0/104`, `64:ff9b::a00:1`) is the
    /// IPv4 range between them, so `::ffff:127.0.0.1` contains `127.0.0.1`.
    /// A range written inside one embedding prefix (`2002::/16`,
    /// `64:ff9b:1::/48`) also contains the addresses it literally holds.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v6 = match ip {
            IpAddr::V4(v4) => return self.contains_ipv4(v4),
            IpAddr::V6(v6) => v6,
        };
        match embedding(v6) {
            None => self.contains_exact(ip),
            Some((v4, net, len)) => self.contains_ipv4(v4) || (self.is_within(net, len) && self.contains_exact(ip)),
        }
    }

    fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.first, self.last, ip) {
            (IpAddr::V4(f), IpAddr::V4(l), IpAddr::V4(a)) => (f..=l).contains(&a),
            (IpAddr::V6(f), IpAddr::V6(l), IpAddr::V6(a)) => (f..=l).contains(&a),
            _ => false,
        }
    }

    /// Whether `ip` lies in the IPv4 range this range stands for, if any.
    fn contains_ipv4(&self, ip: Ipv4Addr) -> bool {
        match (self.first, self.last) {
            (IpAddr::V4(f), IpAddr::V4(l)) => (f..=l).contains(&ip),
            (IpAddr::V6(f), IpAddr::V6(l)) => match (embedding(f), embedding(l)) {
                // Within one /96 the IPv4 address is the low 32 bits, so
                // the order of the IPv6 addresses is the order of the IPv4.
                (Some((f, net, 96)), Some((l, net_l, _))) if net == net_l => (f..=l).contains(&ip),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether the whole range lies inside the IPv6 block `net/len`.
    fn is_within(&self, net: u128, len: u8) -> bool {
        match (self.first, self.last) {
            (IpAddr::V6(f), IpAddr::V6(l)) => in_block(f.into(), net, len) && in_block(l.into(), net, len),
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = IpRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(IpRangeError::Empty);
        }
        if let Some((first, last)) = s.split_once('-') {
            let (first, last) = (parse_ip(first)?, parse_ip(last)?);
            return match (first, last) {
                (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
                    Err(IpRangeError::FamilyMismatch { first, last })
                }
                _ if first > last => Err(IpRangeError::Reversed { first, last }),
                _ => Ok(Self { first, last }),
            };
        }
        if let Some((address, len)) = s.split_once('/') {
            return parse_cidr(parse_ip(address)?, len);
        }
        parse_ip(s).map(Self::single)
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, IpRangeError> {
    text.parse()
        .map_err(|_| IpRangeError::InvalidAddress { text: text.to_owned() })
}

fn parse_cidr(address: IpAddr, len_text: &str) -> Result<IpRange, IpRangeError> {
    // `u16::from_str` would also take "+8"; only plain digits are a length.
    let digits_only = !len_text.is_empty() && len_text.bytes().all(|b| b.is_ascii_digit());
    let len: u16 = match len_text.parse() {
        Ok(len) if digits_only => len,
        _ => {
            return Err(IpRangeError::InvalidPrefixLength {
                text: len_text.to_owned(),
            })
        }
    };
    let max: u8 = if address.is_ipv4() { 32 } else { 128 };
    if len > u16::from(max) {
        return Err(IpRangeError::PrefixTooLong {
            len,
            max,
            network: address,
        });
    }
    // Checked just above: `len <= 128`.
    let len = len as u8;
    let (first, last) = match address {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let a = u32::from(a);
            (IpAddr::V4((a & !host).into()), IpAddr::V4((a | host).into()))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let a = u128::from(a);
            (IpAddr::V6((a & !host).into()), IpAddr::V6((a | host).into()))
        }
    };
    if first != address {
        return Err(IpRangeError::HostBitsSet {
            address,
            len,
            network: first,
        });
    }
    Ok(IpRange { first, last })
}

impl fmt::Display for IpRange {
    /// Writes the shortest of the three input syntaxes, which parses back to
    /// the same range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            return write!(f, "{}", self.first);
        }
        let (host, bits) = match (self.first, self.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a) ^ u32::from(b)), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a) ^ u128::from(b), 128),
            // Unreachable by the invariant; still print something true.
            _ => return write!(f, "{}-{}", self.first, self.last),
        };
        // A CIDR block: `first ^ last` is a run of low one bits and `first`
        // has them all clear (so `last` has them all set).
        let low_run = host & host.wrapping_add(1) == 0;
        let first_clear = match self.first {
            IpAddr::V4(a) => u128::from(u32::from(a)) & host == 0,
            IpAddr::V6(a) => u128::from(a) & host == 0,
        };
        if low_run && first_clear {
            write!(f, "{}/{}", self.first, bits - host.count_ones())
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// `64:ff9b:1::/48`, the local-use NAT64 prefix (RFC 8215).
const LOCAL_USE_NAT64: u128 = 0x0064_ff9b_0001 << 80;

/// IPv6 prefixes that embed an IPv4 address: (prefix, length, bit position
/// of the IPv4 address counted from the least significant bit).
const EMBEDDINGS: [(u128, u8, u8); 5] = [
    (0xffff << 32, 96, 0),      // IPv4-mapped, RFC 4291 §2.5.5.2
    (0, 96, 0),                 // IPv4-compatible, RFC 4291 §2.5.5.1
    (0x0064_ff9b << 96, 96, 0), // NAT64 well-known prefix, RFC 6052 §2.1
    (LOCAL_USE_NAT64, 48, 0),   // NAT64 local-use, RFC 8215, /96 layout
    (0x2002 << 112, 16, 80),    // 6to4, RFC 3056 §2
];

/// The IPv4 address an IPv6 address stands for, if it embeds one.
///
/// - IPv4-mapped `::ffff:0:0/96` (RFC 4291 §2.5.5.2);
/// - IPv4-compatible `::/96` except `::` and `::1` (RFC 4291 §2.5.5.1);
/// - NAT64 well-known prefix `64:ff9b::/96` (RFC 6052 §2.1);
/// - NAT64 local-use prefix `64:ff9b:1::/48` (RFC 8215), read with the /96
///   layout of RFC 6052 §2.2 (the IPv4 address in the last 32 bits); the
///   prefix length is a local choice, so [`PeerFilter`] refuses this prefix
///   by default whatever it embeds;
/// - 6to4 `2002::/16` (RFC 3056 §2: the IPv4 address in bits 16..48).
///
/// Teredo (`2001::/32`, RFC 4380 §4) is left out: it carries the client's
/// address obfuscated, and [`PeerFilter`] refuses it by default.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    embedding(ip).map(|(v4, _, _)| v4)
}

/// The IPv4 address `ip` embeds, and the prefix (net, length) embedding it.
fn embedding(ip: Ipv6Addr) -> Option<(Ipv4Addr, u128, u8)> {
    let bits = u128::from(ip);
    // `::` and `::1` are themselves, not IPv4-compatible addresses.
    if bits <= 1 {
        return None;
    }
    EMBEDDINGS
        .iter()
        .find(|(net, len, _)| in_block(bits, *net, *len))
        // Truncation keeps the 32 bits at `shift`.
        .map(|&(net, len, shift)| (Ipv4Addr::from((bits >> shift) as u32), net, len))
}

/// `ip` as IPv4 if it is IPv4 or embeds an IPv4 address.
fn as_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => embedded_ipv4(a),
    }
}

/// `ip` with an embedded IPv4 address taken out of its IPv6 wrapping.
fn normalise(ip: IpAddr) -> IpAddr {
    as_ipv4(ip).map_or(ip, IpAddr::V4)
}

/// Why [`PeerFilter::check`] refused a peer.
///
/// The `Display` text names the peer, the rule and its source, for logs; the
/// variant (and [`PeerDenied::NotGlobal`]'s `block`) is a small, fixed set of
/// values for metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerDenied {
    /// The peer's port is 0, which no datagram can be sent to.
    #[error("peer {peer}: port 0 is not a valid destination")]
    PortZero {
        /// The refused peer.
        peer: SocketAddr,
    },
    /// The peer reaches one of the server's own listeners.
    #[error("peer {peer} reaches the server's own service address {service}")]
    ServiceAddress {
        /// The refused peer.
        peer: SocketAddr,
        /// The service address it reaches.
        service: SocketAddr,
    },
    /// The peer is in a configured denied range.
    #[error("peer {peer} is in denied range {range}")]
    DenyListed {
        /// The refused peer.
        peer: SocketAddr,
        /// The first denied range that matched.
        range: IpRange,
    },
    /// The peer's address is not globally reachable and is not allow-listed.
    #[error("peer {peer}: {ip} is {block}, which is not relayed to unless allow-listed")]
    NotGlobal {
        /// The refused peer.
        peer: SocketAddr,
        /// The address judged: the peer's, or the IPv4 address it embeds.
        ip: IpAddr,
        /// The special-purpose block `ip` is in, and the RFC defining it.
        block: &'static str,
    },
}

/// The policy deciding which peer addresses allocations may relay to.
///
/// Build it once from configuration; [`PeerFilter::check`] does not allocate.
/// Lists are scanned linearly, which suits the handful of entries a TURN
/// configuration holds.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    allowed: Vec<IpRange>,
    denied: Vec<IpRange>,
    /// Normalised with [`normalise`]; the originals are kept for reporting.
    service_addrs: Vec<(IpAddr, SocketAddr)>,
    /// The server's relay addresses (normalised) and its relay port range.
    own_relays: Vec<IpAddr>,
    relay_ports: Option<std::ops::RangeInclusive<u16>>,
    /// The server's own media endpoints, with normalised IPs.
    own_peers: Vec<SocketAddr>,
}

impl PeerFilter {
    /// A filter with the given allowed and denied ranges and the server's own
    /// listening addresses (TURN ports, metrics, HTTP API).
    ///
    /// A peer reaches a service address, and is refused whatever the lists
    /// say, when it has the service's port and:
    ///
    /// - its IP is the service's IP; or
    /// - its IP is unspecified (`0.0.0.0`, `::`): the kernel sends such a
    ///   datagram to the host itself; or
    /// - the service's IP is unspecified (a wildcard listener, either family,
    ///   since a dual-stack `[::]` socket also takes IPv4) and the peer's IP
    ///   is loopback or the IP of any service address.
    ///
    /// So list the host's concrete addresses too (for example its public and
    /// relay addresses with a listener port) when listening on a wildcard.
    /// Other ports on those addresses, such as other allocations' relayed
    /// transport addresses, stay reachable if the address is allowed.
    pub fn new(allowed: Vec<IpRange>, denied: Vec<IpRange>, service_addrs: Vec<SocketAddr>) -> Self {
        let service_addrs = service_addrs.into_iter().map(|s| (normalise(s.ip()), s)).collect();
        Self {
            allowed,
            denied,
            service_addrs,
            own_relays: Vec::new(),
            relay_ports: None,
            own_peers: Vec::new(),
        }
    }

    /// The same filter, accepting peers at `relay_ips` (the addresses the
    /// server's relayed sockets bind to or are announced as) on ports in
    /// `relay_ports`: the relayed transport addresses of other allocations.
    pub fn with_own_relays(mut self, relay_ips: &[IpAddr], relay_ports: std::ops::RangeInclusive<u16>) -> Self {
        self.own_relays = relay_ips.iter().map(|ip| normalise(*ip)).collect();
        self.relay_ports = Some(relay_ports);
        self
    }

    /// The same filter, accepting exactly `peers` (address and port): media
    /// endpoints of the same server, such as an SFU socket announced at a
    /// private address, which clients behind TURN must reach. Other ports on
    /// those addresses are judged by the remaining rules.
    pub fn with_own_peers(mut self, peers: &[SocketAddr]) -> Self {
        self.own_peers = peers
            .iter()
            .map(|p| SocketAddr::new(normalise(p.ip()), p.port()))
            .collect();
        self
    }

    /// `Ok` if the server may relay to `peer`; see the module documentation
    /// for the order of the rules.
    pub fn check(&self, peer: SocketAddr) -> Result<(), PeerDenied> {
        if peer.port() == 0 {
            return Err(PeerDenied::PortZero { peer });
        }
        let ip = normalise(peer.ip());
        if let Some(service) = self.service_reached(ip, peer.port()) {
            return Err(PeerDenied::ServiceAddress { peer, service });
        }
        if self.allowed.iter().any(|r| r.contains(peer.ip())) {
            return Ok(());
        }
        if self.relay_ports.as_ref().is_some_and(|p| p.contains(&peer.port())) && self.own_relays.contains(&ip) {
            return Ok(());
        }
        if self.own_peers.contains(&SocketAddr::new(ip, peer.port())) {
            return Ok(());
        }
        if let Some(range) = self.denied.iter().find(|r| r.contains(peer.ip())) {
            return Err(PeerDenied::DenyListed { peer, range: *range });
        }
        match special_purpose_block(peer.ip()) {
            Some(block) => Err(PeerDenied::NotGlobal { peer, ip, block }),
            None => Ok(()),
        }
    }

    /// The service address a peer at normalised `ip` and `port` reaches.
    fn service_reached(&self, ip: IpAddr, port: u16) -> Option<SocketAddr> {
        let is_service_ip = |ip: IpAddr| self.service_addrs.iter().any(|(s, _)| *s == ip && !s.is_unspecified());
        self.service_addrs
            .iter()
            .filter(|(_, service)| service.port() == port)
            .find(|(service_ip, _)| {
                *service_ip == ip
                    || ip.is_unspecified()
                    || (service_ip.is_unspecified() && (ip.is_loopback() || is_service_ip(ip)))
            })
            .map(|(_, service)| *service)
    }
}

/// The not-globally-reachable block `ip` is in, judged as the IPv4 address it
/// embeds if any.
fn special_purpose_block(ip: IpAddr) -> Option<&'static str> {
    if let IpAddr::V6(v6) = ip {
        // Checked before unwrapping: its layout is a local choice (RFC 8215).
        if in_block(u128::from(v6), LOCAL_USE_NAT64, 48) {
            return Some("the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215)");
        }
    }
    match normalise(ip) {
        IpAddr::V4(a) => {
            let a = u128::from(u32::from(a));
            V4_BLOCKS
                .iter()
                .find(|(net, len, _)| in_block(a << 96, u128::from(*net) << 96, *len))
                .map(|b| b.2)
        }
        IpAddr::V6(a) => {
            let a = u128::from(a);
            let named = V6_BLOCKS
                .iter()
                .find(|(net, len, _)| in_block(a, *net, *len))
                .map(|b| b.2);
            // IANA allocates global unicast only from 2000::/3; everything
            // else (::/8, 100::/8, 5f00::/16, ...) is reserved or local.
            named.or_else(|| (!in_block(a, 0x2000 << 112, 3)).then_some(OUTSIDE_GLOBAL_UNICAST))
        }
    }
}

/// Whether the top `len` bits of `a` and `net` agree.
fn in_block(a: u128, net: u128, len: u8) -> bool {
    let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    a & !host == net & !host
}

const OUTSIDE_GLOBAL_UNICAST: &str = "outside the IPv6 global unicast space 2000::/3 (RFC 3587 §3)";

/// IPv4 blocks that are not globally reachable (RFC 6890 §2.2.2 and the IANA
/// registry it set up). First match names the reason, so specific blocks come
/// before the blocks holding them.
#[rustfmt::skip]
const V4_BLOCKS: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "\"this network\" 0.0.0.0/8 (RFC 1122 §3.2.1.3)"),
    (0x0a00_0000, 8, "private-use 10.0.0.0/8 (RFC 1918 §3)"),
    (0x6440_0000, 10, "shared address space 100.64.0.0/10 (RFC 6598)"),
    (0x7f00_0000, 8, "loopback 127.0.0.0/8 (RFC 1122 §3.2.1.3)"),
    (0xa9fe_a9fe, 32, "the cloud metadata service 169.254.169.254 in link-local 169.254.0.0/16 (RFC 3927)"),
    (0xa9fe_0000, 16, "link-local 169.254.0.0/16 (RFC 3927)"),
    (0xac10_0000, 12, "private-use 172.16.0.0/12 (RFC 1918 §3)"),
    (0xc000_0000, 24, "IETF protocol assignments 192.0.0.0/24 (RFC 6890 §2.1)"),
    (0xc000_0200, 24, "documentation TEST-NET-1 192.0.2.0/24 (RFC 5737 §3)"),
    (0xc0a8_0000, 16, "private-use 192.168.0.0/16 (RFC 1918 §3)"),
    (0xc612_0000, 15, "benchmarking 198.18.0.0/15 (RFC 2544)"),
    (0xc633_6400, 24, "documentation TEST-NET-2 198.51.100.0/24 (RFC 5737 §3)"),
    (0xcb00_7100, 24, "documentation TEST-NET-3 203.0.113.0/24 (RFC 5737 §3)"),
    (0xe000_0000, 4, "multicast 224.0.0.0/4 (RFC 5771)"),
    (0xffff_ffff, 32, "limited broadcast 255.255.255.255 (RFC 919 §7)"),
    (0xf000_0000, 4, "reserved 240.0.0.0/4 (RFC 1112 §4)"),
];

/// IPv6 blocks that are not globally reachable (RFC 6890 §2.2.3 and the IANA
/// registry it set up), other than those [`embedded_ipv4`] unwraps and those
/// outside 2000::/3. First match names the reason.
#[rustfmt::skip]
const V6_BLOCKS: &[(u128, u8, &str)] = &[
    (0, 128, "the unspecified address :: (RFC 4291 §2.5.2)"),
    (1, 128, "loopback ::1 (RFC 4291 §2.5.3)"),
    (0x0100 << 112, 64, "discard-only 100::/64 (RFC 6666)"),
    (0x2001_0000 << 96, 32, "Teredo 2001::/32, whose IPv4 address is obfuscated (RFC 4380 §4)"),
    (0x2001_0002 << 96, 48, "benchmarking 2001:2::/48 (RFC 5180)"),
    (0x2001_0010 << 96, 28, "ORCHID 2001:10::/28 (RFC 4843)"),
    (0x2001_0020 << 96, 28, "ORCHIDv2 2001:20::/28 (RFC 7343)"),
    (0x2001 << 112, 23, "IETF protocol assignments 2001::/23 (RFC 2928)"),
    (0x2001_0db8 << 96, 32, "documentation 2001:db8::/32 (RFC 3849)"),
    (0x3fff << 112, 20, "documentation 3fff::/20 (RFC 9637)"),
    (0xfc00 << 112, 7, "unique local fc00::/7 (RFC 4193 §3)"),
    (0xfe80 << 112, 10, "link-local fe80::/10 (RFC 4291 §2.5.6)"),
    (0xfec0 << 112, 10, "deprecated site-local fec0::/10 (RFC 3879)"),
    (0xff00 << 112, 8, "multicast ff00::/8 (RFC 4291 §2.7)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|s| s.parse().expect("test range")).collect()
    }

    fn peer(ip: IpAddr, port: u16) -> SocketAddr {
        SocketAddr::new(ip, port)
    }

    #[test]
    fn own_relays_are_reachable_on_relay_ports_only() {
        let service = vec![sa("192.168.1.5:3478")];
        let filter = PeerFilter::new(Vec::new(), Vec::new(), service)
            .with_own_relays(&["192.168.1.5".parse().expect("test address")], 49152..=65535);
        assert!(filter.check(sa("192.168.1.5:50000")).is_ok(), "another allocation");
        assert!(
            filter.check(sa("[::ffff:192.168.1.5]:50000")).is_ok(),
            "the same, mapped"
        );
        for refused in [
            "192.168.1.5:22",
            "192.168.1.5:3478",
            "192.168.1.6:50000",
            "127.0.0.1:50000",
        ] {
            assert!(filter.check(sa(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn own_peers_are_reachable_on_their_exact_port_only() {
        let service = vec![sa("127.0.0.1:3478"), sa("127.0.0.1:8080")];
        let filter = PeerFilter::new(Vec::new(), Vec::new(), service).with_own_peers(&[sa("127.0.0.1:40000")]);
        assert!(filter.check(sa("127.0.0.1:40000")).is_ok(), "the SFU socket");
        assert!(filter.check(sa("[::ffff:127.0.0.1]:40000")).is_ok(), "the same, mapped");
        for refused in [
            "127.0.0.1:40001",
            "127.0.0.1:3478",
            "127.0.0.1:8080",
            "127.0.0.2:40000",
            "[::1]:40000",
        ] {
            assert!(filter.check(sa(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn an_own_peer_on_a_service_address_stays_refused() {
        let filter =
            PeerFilter::new(Vec::new(), Vec::new(), vec![sa("127.0.0.1:3478")]).with_own_peers(&[sa("127.0.0.1:3478")]);
        let result = filter.check(sa("127.0.0.1:3478"));
        assert!(matches!(result, Err(PeerDenied::ServiceAddress { .. })), "{result:?}");
    }

    #[test]
    fn refuses_ssrf_targets_by_default() {
        let filter = PeerFilter::default();
        for ip in [
            "0.0.0.0",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "169.254.169.254",
            "10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().expect("test address");
            let result = filter.check(peer(ip, 80));
            assert!(matches!(result, Err(PeerDenied::NotGlobal { .. })), "{ip}: {result:?}");
        }
    }

    #[test]
    fn refuses_every_special_purpose_block_by_default() {
        let filter = PeerFilter::default();
        for ip in "0.1.2.3 127.255.0.1 172.16.0.1 172.31.255.255 192.168.1.1 100.64.0.1 100.127.255.255 169.254.0.1 \
            192.0.0.10 192.0.2.1 198.51.100.1 203.0.113.1 198.18.0.1 198.19.255.255 240.0.0.1 255.255.255.255 \
            224.0.0.1 239.255.255.250 fe80::1 fc00::1 fd12:3456::1 fec0::1 ff02::1 100::1 2001::1 \
            2001:0:4136:e378:8000:63bf:3fff:fdd2 2001:10::1 2001:20::1 2001:db8::1 2001:2::1 3fff::1 5f00::1 \
            64:ff9b:1::808:808 ::ffff:0:808:808 1::1 4000::1 ::ffff:10.0.0.1 ::ffff:0.0.0.0 2002:a9fe:a9fe::1 \
            64:ff9b::c0a8:101"
            .split_whitespace()
        {
            let ip: IpAddr = ip.parse().expect("test address");
            assert!(filter.check(peer(ip, 3478)).is_err(), "{ip} should be refused");
        }
    }

    #[test]
    fn allows_global_addresses_by_default() {
        let filter = PeerFilter::default();
        for ip in "8.8.8.8 1.1.1.1 100.63.255.255 100.128.0.0 172.32.0.1 192.0.3.1 198.20.0.1 223.255.255.255 \
            2606:4700::1111 2a00:1450::1 ::ffff:8.8.8.8 64:ff9b::808:808 2002:808:808::1 ::8.8.8.8"
            .split_whitespace()
        {
            let ip: IpAddr = ip.parse().expect("test address");
            assert_eq!(filter.check(peer(ip, 3478)), Ok(()), "{ip} should be allowed");
        }
    }

    #[test]
    fn refuses_port_zero_even_if_allowed() {
        let filter = PeerFilter::new(ranges(&["0.0.0.0/0"]), vec![], vec![]);
        assert_eq!(
            filter.check(sa("8.8.8.8:0")),
            Err(PeerDenied::PortZero { peer: sa("8.8.8.8:0") })
        );
    }

    #[test]
    fn allow_list_overrides_defaults_and_deny_list() {
        let filter = PeerFilter::new(ranges(&["10.0.0.0/8", "fd00::/8"]), ranges(&["10.1.0.0/16"]), vec![]);
        assert_eq!(filter.check(sa("10.1.2.3:5000")), Ok(()));
        assert_eq!(filter.check(sa("[::ffff:10.1.2.3]:5000")), Ok(()));
        assert_eq!(filter.check(sa("[64:ff9b::a01:203]:5000")), Ok(()));
        assert_eq!(filter.check(sa("[fd00::1]:5000")), Ok(()));
        assert!(filter.check(sa("192.168.0.1:5000")).is_err());
        assert!(filter.check(sa("[fc00::1]:5000")).is_err());
    }

    #[test]
    fn allow_list_in_ipv6_form_matches_ipv4() {
        let filter = PeerFilter::new(ranges(&["::ffff:127.0.0.1"]), vec![], vec![]);
        assert_eq!(filter.check(sa("127.0.0.1:8080")), Ok(()));
        assert_eq!(filter.check(sa("[::ffff:127.0.0.1]:8080")), Ok(()));
        assert!(filter.check(sa("127.0.0.2:8080")).is_err());
    }

    #[test]
    fn deny_list_refuses_global_addresses_in_any_form() {
        let filter = PeerFilter::new(vec![], ranges(&["8.8.8.0/24", "2606:4700::/32"]), vec![]);
        for p in [
            "8.8.8.8:53",
            "[::ffff:8.8.8.8]:53",
            "[64:ff9b::808:808]:53",
            "[2002:808:808::]:53",
            "[2606:4700::1111]:53",
        ] {
            let result = filter.check(sa(p));
            assert!(matches!(result, Err(PeerDenied::DenyListed { .. })), "{p}: {result:?}");
        }
        assert_eq!(filter.check(sa("8.8.4.4:53")), Ok(()));
    }

    #[test]
    fn broad_ipv6_allow_range_does_not_allow_embedded_ipv4() {
        let filter = PeerFilter::new(ranges(&["::/0"]), vec![], vec![]);
        assert_eq!(filter.check(sa("[fd00::1]:80")), Ok(()));
        for p in ["[::ffff:127.0.0.1]:80", "[64:ff9b::a00:1]:80", "[2002:a9fe:a9fe::]:80"] {
            let result = filter.check(sa(p));
            assert!(matches!(result, Err(PeerDenied::NotGlobal { .. })), "{p}: {result:?}");
        }
    }

    #[test]
    fn local_use_nat64_needs_allow_listing() {
        let peer = sa("[64:ff9b:1::808:808]:80");
        let result = PeerFilter::default().check(peer);
        assert!(matches!(result, Err(PeerDenied::NotGlobal { .. })), "{result:?}");
        let filter = PeerFilter::new(ranges(&["64:ff9b:1::/48"]), vec![], vec![]);
        assert_eq!(filter.check(peer), Ok(()));
        assert_eq!(
            filter.check(sa("[64:ff9b:1::7f00:1]:80")),
            Ok(()),
            "the operator vouched for the prefix"
        );
        assert!(filter.check(sa("127.0.0.1:80")).is_err());
    }

    #[test]
    fn deny_list_in_ipv6_form_matches_raw_ipv6() {
        let filter = PeerFilter::new(vec![], ranges(&["2002::/16"]), vec![]);
        assert!(matches!(
            filter.check(sa("[2002:808:808::]:53")),
            Err(PeerDenied::DenyListed { .. })
        ));
        assert_eq!(filter.check(sa("8.8.8.8:53")), Ok(()));
    }

    #[test]
    fn service_address_refused_even_if_allowed() {
        let filter = PeerFilter::new(ranges(&["0.0.0.0/0", "::/0"]), vec![], vec![sa("203.0.113.5:3478")]);
        let expected = Err(PeerDenied::ServiceAddress {
            peer: sa("203.0.113.5:3478"),
            service: sa("203.0.113.5:3478"),
        });
        assert_eq!(filter.check(sa("203.0.113.5:3478")), expected);
        assert!(filter.check(sa("[::ffff:203.0.113.5]:3478")).is_err());
        assert!(
            filter.check(sa("0.0.0.0:3478")).is_err(),
            "0.0.0.0 reaches the host itself"
        );
        assert!(filter.check(sa("[::]:3478")).is_err(), ":: reaches the host itself");
        // A concrete listener is not reached through loopback.
        assert_eq!(filter.check(sa("127.0.0.1:3478")), Ok(()));
        // Another allocation's relayed address on the same IP.
        assert_eq!(filter.check(sa("203.0.113.5:50000")), Ok(()));
    }

    #[test]
    fn wildcard_service_address() {
        let services = vec![sa("0.0.0.0:3478"), sa("198.51.100.7:443"), sa("127.0.0.1:9090")];
        let filter = PeerFilter::new(ranges(&["0.0.0.0/0", "::/0"]), vec![], services);
        for p in [
            "127.0.0.1:3478",
            "127.1.2.3:3478",
            "[::1]:3478",
            "[::ffff:127.0.0.1]:3478",
            "0.0.0.0:3478",
            "[::]:3478",
            "198.51.100.7:3478",
            "198.51.100.7:443",
            "127.0.0.1:9090",
            "[::ffff:127.0.0.1]:9090",
        ] {
            let result = filter.check(sa(p));
            assert!(
                matches!(result, Err(PeerDenied::ServiceAddress { .. })),
                "{p}: {result:?}"
            );
        }
        for p in [
            "8.8.8.8:3478",
            "198.51.100.7:50000",
            "127.0.0.1:50000",
            "198.51.100.8:443",
        ] {
            assert_eq!(filter.check(sa(p)), Ok(()), "{p}");
        }
    }

    #[test]
    fn dual_stack_wildcard_service_covers_ipv4_loopback() {
        let filter = PeerFilter::new(ranges(&["0.0.0.0/0"]), vec![], vec![sa("[::]:3478")]);
        assert!(matches!(
            filter.check(sa("127.0.0.1:3478")),
            Err(PeerDenied::ServiceAddress { .. })
        ));
    }

    #[test]
    fn relaying_between_allocations_stays_allowed() {
        let services = vec![sa("0.0.0.0:3478"), sa("10.0.0.5:3478")];
        let filter = PeerFilter::new(ranges(&["10.0.0.5"]), vec![], services);
        assert_eq!(filter.check(sa("10.0.0.5:49152")), Ok(()));
        assert!(filter.check(sa("10.0.0.5:3478")).is_err());
        assert!(filter.check(sa("10.0.0.6:49152")).is_err(), "not allow-listed, private");
    }

    #[test]
    fn display_names_peer_and_reason() {
        let filter = PeerFilter::default();
        let err = filter.check(sa("[::ffff:127.0.0.1]:22")).expect_err("loopback");
        let text = err.to_string();
        assert!(text.contains("[::ffff:127.0.0.1]:22"), "{text}");
        assert!(text.contains("127.0.0.1 is loopback"), "{text}");
        assert!(text.contains("RFC 1122"), "{text}");
    }

    #[test]
    fn embedded_ipv4_forms() {
        let cases = [
            ("::ffff:1.2.3.4", Some("1.2.3.4")),
            ("::1.2.3.4", Some("1.2.3.4")),
            ("::2", Some("0.0.0.2")),
            ("::", None),
            ("::1", None),
            ("64:ff9b::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b:1::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b:1:abcd::1.2.3.4", Some("1.2.3.4")),
            ("64:ff9b:2::1.2.3.4", None),
            ("2002:102:304::", Some("1.2.3.4")),
            ("2002:102:304:5::6", Some("1.2.3.4")),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", None),
            ("::ffff:0:102:304", None),
            ("2606:4700::1111", None),
        ];
        for (v6, v4) in cases {
            let v6: Ipv6Addr = v6.parse().expect("test address");
            let v4 = v4.map(|s| s.parse::<Ipv4Addr>().expect("test address"));
            assert_eq!(embedded_ipv4(v6), v4, "{v6}");
        }
    }

    #[test]
    fn parses_all_syntaxes() {
        let cases = [
            ("10.0.0.1", "10.0.0.1", "10.0.0.1"),
            ("10.0.0.0/8", "10.0.0.0", "10.255.255.255"),
            ("0.0.0.0/0", "0.0.0.0", "255.255.255.255"),
            ("10.0.0.1/32", "10.0.0.1", "10.0.0.1"),
            ("10.0.0.1-10.0.0.9", "10.0.0.1", "10.0.0.9"),
            ("10.0.0.1-10.0.0.1", "10.0.0.1", "10.0.0.1"),
            ("fd00::/8", "fd00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ("::1", "::1", "::1"),
            ("::1/128", "::1", "::1"),
            ("fd00::1-fd00::9", "fd00::1", "fd00::9"),
            ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0", "::ffff:10.255.255.255"),
        ];
        for (text, first, last) in cases {
            let range: IpRange = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(range.first(), first.parse::<IpAddr>().expect("test address"), "{text}");
            assert_eq!(range.last(), last.parse::<IpAddr>().expect("test address"), "{text}");
        }
    }

    #[test]
    fn rejects_bad_ranges_with_typed_errors() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("test address");
        let invalid = |s: &str| IpRangeError::InvalidAddress { text: s.to_owned() };
        let bad_len = |s: &str| IpRangeError::InvalidPrefixLength { text: s.to_owned() };
        let too_long = |len, max, network| IpRangeError::PrefixTooLong {
            len,
            max,
            network: ip(network),
        };
        let host_bits = |a, len, n| IpRangeError::HostBitsSet {
            address: ip(a),
            len,
            network: ip(n),
        };
        let cases = [
            ("", IpRangeError::Empty),
            ("10.0.0", invalid("10.0.0")),
            ("10.0.0.256", invalid("10.0.0.256")),
            ("example.com", invalid("example.com")),
            (" 10.0.0.1", invalid(" 10.0.0.1")),
            ("[::1]", invalid("[::1]")),
            ("fe80::1%eth0", invalid("fe80::1%eth0")),
            ("10.0.0.1-", invalid("")),
            ("-10.0.0.1", invalid("")),
            ("10.0.0.1-10.0.0.2-10.0.0.3", invalid("10.0.0.2-10.0.0.3")),
            ("10.0.0.0/", bad_len("")),
            ("10.0.0.0/+8", bad_len("+8")),
            ("10.0.0.0/-8", invalid("10.0.0.0/")),
            ("10.0.0.0/8/8", bad_len("8/8")),
            ("10.0.0.0/x", bad_len("x")),
            ("10.0.0.0/99999999999999999999", bad_len("99999999999999999999")),
            ("/8", invalid("")),
            ("10.0.0.0/33", too_long(33, 32, "10.0.0.0")),
            ("::/129", too_long(129, 128, "::")),
            ("10.0.0.1/8", host_bits("10.0.0.1", 8, "10.0.0.0")),
            ("fd00::1/8", host_bits("fd00::1", 8, "fd00::")),
            (
                "10.0.0.1-::1",
                IpRangeError::FamilyMismatch {
                    first: ip("10.0.0.1"),
                    last: ip("::1"),
                },
            ),
            (
                "10.0.0.9-10.0.0.1",
                IpRangeError::Reversed {
                    first: ip("10.0.0.9"),
                    last: ip("10.0.0.1"),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<IpRange>(), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn range_error_messages_say_what_is_wrong() {
        let err = "10.0.0.1/8".parse::<IpRange>().expect_err("host bits");
        assert_eq!(
            err.to_string(),
            "10.0.0.1/8 has host bits set (the network is 10.0.0.0/8)"
        );
    }

    #[test]
    fn contains_respects_bounds_and_families() {
        let range: IpRange = "10.0.0.1-10.0.0.9".parse().expect("test range");
        let ip = |s: &str| s.parse::<IpAddr>().expect("test address");
        assert!(range.contains(ip("10.0.0.1")));
        assert!(range.contains(ip("10.0.0.9")));
        assert!(range.contains(ip("::ffff:10.0.0.5")));
        assert!(range.contains(ip("2002:a00:5::1")));
        assert!(!range.contains(ip("10.0.0.0")));
        assert!(!range.contains(ip("10.0.0.10")));
        assert!(!range.contains(ip("::a00:0")), "IPv4-compatible 10.0.0.0");
        let compatible: IpRange = "::/96".parse().expect("test range");
        assert!(compatible.contains(ip("::1")));
        assert!(compatible.contains(ip("::a00:1")), "written inside ::/96");
        assert!(!compatible.contains(ip("10.0.0.1")), "its first address embeds nothing");
        let six_to_four: IpRange = "2002:a00:1::/48".parse().expect("test range");
        assert!(six_to_four.contains(ip("2002:a00:1::5")));
        assert!(
            !six_to_four.contains(ip("10.0.0.1")),
            "6to4 ranges match only 6to4 addresses"
        );
        let all_v6: IpRange = "::/0".parse().expect("test range");
        assert!(all_v6.contains(ip("fe80::1")));
        for embedded in [
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "64:ff9b:1::1",
        ] {
            assert!(!all_v6.contains(ip(embedded)), "{embedded} is judged as IPv4");
        }
        let mapped: IpRange = "::ffff:10.0.0.1-::ffff:10.0.0.9".parse().expect("test range");
        assert!(mapped.contains(ip("10.0.0.9")));
        assert!(mapped.contains(ip("64:ff9b::a00:5")));
        assert!(!mapped.contains(ip("10.0.0.10")));
        let across: IpRange = "::ffff:10.0.0.1-64:ff9b::a00:9".parse().expect("test range");
        assert!(
            !across.contains(ip("10.0.0.5")),
            "ends in different prefixes have no IPv4 view"
        );
    }

    #[test]
    fn display_uses_shortest_syntax() {
        for text in [
            "10.0.0.1",
            "10.0.0.0/8",
            "0.0.0.0/0",
            "10.0.0.1-10.0.0.9",
            "10.0.0.0-10.0.0.2",
            "fd00::/8",
            "::/0",
            "fd00::1-fd00::9",
        ] {
            let range: IpRange = text.parse().expect("test range");
            assert_eq!(range.to_string(), text);
        }
        let range: IpRange = "10.0.0.0-10.0.0.255".parse().expect("test range");
        assert_eq!(range.to_string(), "10.0.0.0/24");
    }

    /// Outcome of a check without the peer, which differs between the forms.
    fn verdict(filter: &PeerFilter, peer: SocketAddr) -> Result<(), String> {
        filter.check(peer).map_err(|e| match e {
            PeerDenied::PortZero { .. } => "port 0".to_owned(),
            PeerDenied::ServiceAddress { service, .. } => format!("service {service}"),
            PeerDenied::DenyListed { range, .. } => format!("denied {range}"),
            PeerDenied::NotGlobal { ip, block, .. } => format!("{ip} {block}"),
        })
    }

    fn filters() -> Vec<PeerFilter> {
        vec![
            PeerFilter::default(),
            PeerFilter::new(
                ranges(&["10.1.0.0/16", "127.0.0.1", "192.168.0.1-192.168.0.9"]),
                ranges(&["8.8.0.0/16", "10.1.2.0/24"]),
                vec![sa("0.0.0.0:3478"), sa("10.1.0.5:443"), sa("127.0.0.1:9090")],
            ),
        ]
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC*") {
            let _ = s.parse::<IpRange>();
        }

        #[test]
        fn parsing_range_like_strings_never_panics(s in "[0-9a-fA-F:./\\-]{0,48}") {
            if let Ok(range) = s.parse::<IpRange>() {
                prop_assert!(range.first() <= range.last());
                prop_assert_eq!(range.to_string().parse::<IpRange>(), Ok(range));
            }
        }

        #[test]
        fn display_round_trips(a: u32, b: u32, len in 0u8..=32, v6: u128, len6 in 0u8..=128) {
            let (lo, hi) = (a.min(b), a.max(b));
            let span: IpRange = format!("{}-{}", Ipv4Addr::from(lo), Ipv4Addr::from(hi)).parse().expect("valid range");
            prop_assert_eq!(span.to_string().parse::<IpRange>(), Ok(span));
            let net = a & !u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let block: IpRange = format!("{}/{len}", Ipv4Addr::from(net)).parse().expect("valid block");
            prop_assert_eq!(block.to_string().parse::<IpRange>(), Ok(block));
            prop_assert!(block.contains(IpAddr::V4(a.into())));
            let net6 = v6 & !u128::MAX.checked_shr(u32::from(len6)).unwrap_or(0);
            let block6: IpRange = format!("{}/{len6}", Ipv6Addr::from(net6)).parse().expect("valid block");
            prop_assert_eq!(block6.to_string().parse::<IpRange>(), Ok(block6));
            prop_assert!(block6.contains(IpAddr::V6(v6.into())));
        }

        #[test]
        fn ipv6_embeddings_are_judged_as_their_ipv4(a: u32, suffix: u128, port in 1u16..=u16::MAX) {
            let v4 = IpAddr::V4(a.into());
            let a = u128::from(a);
            let mapped = IpAddr::V6((0xffff_u128 << 32 | a).into());
            let nat64 = IpAddr::V6((0x0064_ff9b_u128 << 96 | a).into());
            let six_to_four = IpAddr::V6((0x2002_u128 << 112 | a << 80 | suffix & ((1 << 80) - 1)).into());
            let compatible = IpAddr::V6(a.into());
            for filter in filters() {
                let expected = verdict(&filter, peer(v4, port));
                prop_assert_eq!(&verdict(&filter, peer(mapped, port)), &expected);
                prop_assert_eq!(&verdict(&filter, peer(nat64, port)), &expected);
                prop_assert_eq!(&verdict(&filter, peer(six_to_four, port)), &expected);
                if a > 1 {
                    prop_assert_eq!(&verdict(&filter, peer(compatible, port)), &expected);
                }
            }
        }

        #[test]
        fn wildcard_service_port_is_unreachable_through_loopback(host in 0u32..1 << 24, allow_all: bool) {
            let allowed = if allow_all { ranges(&["0.0.0.0/0", "::/0"]) } else { vec![] };
            let filter = PeerFilter::new(allowed, vec![], vec![sa("0.0.0.0:3478")]);
            let v4 = u128::from(0x7f00_0000 | host);
            for ip in [
                IpAddr::V4(Ipv4Addr::from(v4 as u32)),
                IpAddr::V6((0xffff_u128 << 32 | v4).into()),
                IpAddr::V6((0x2002_u128 << 112 | v4 << 80).into()),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ] {
                let result = filter.check(peer(ip, 3478));
                prop_assert!(matches!(result, Err(PeerDenied::ServiceAddress { .. })), "{}: {:?}", ip, result);
            }
        }
    }
}
