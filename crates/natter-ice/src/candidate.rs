//! ICE candidates (RFC 8445 §5.1): kinds, transport, the priority formula
//! (§5.1.2), foundations (§5.1.1.3) and the SDP `candidate` attribute
//! (RFC 8839 §5.1), including ICE-TCP's `tcptype` (RFC 6544 §4.5) and
//! mDNS host names (RFC 8828).

use std::net::SocketAddr;

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
