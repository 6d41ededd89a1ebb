//! natter-ice: a sans-IO ICE agent.
//!
//! - RFC 8445: full and lite agents, candidates and priorities, check
//!   lists, nomination, roles and tie-breaking ([`agent`], [`candidate`]).
//! - RFC 8838: trickle ICE; RFC 7675: consent freshness; RFC 8828:
//!   remote mDNS candidates resolved by the I/O layer.
//! - RFC 8489 §6.2.1 retransmission ([`transaction`]) and an RFC 8656
//!   TURN client ([`turn_client`]) for relayed candidates over UDP, TCP
//!   and TLS; RFC 6544 passive ICE-TCP candidates.
//! - draft-hancke-webrtc-sped: the DTLS handshake embedded in checks and
//!   their responses, when [`AgentConfig::sped`] is on ([`sped`]).
//!
//! Like every natter core it owns no sockets and reads no clock: the I/O
//! layer passes packets and the time in (`handle_*`) and takes packets,
//! deadlines and events out (`poll_*`).

pub mod agent;
pub mod candidate;
pub mod sped;
pub mod transaction;
pub mod turn_client;

pub use agent::{Agent, AgentConfig, AgentError, ConnectionState, Event, Received, Role, TransportPolicy};

use std::net::SocketAddr;

/// The transport between a local socket and a remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    /// A TCP connection; STUN and ChannelData are framed as RFC 8656
    /// §12.5 and RFC 6544 §3 describe.
    Tcp,
    /// TLS over TCP, to a TURN server (RFC 8656 §3.1).
    Tls,
}

/// Where a datagram goes: the transport, the local address to send it
/// from and its destination. [`Agent::send`] returns one for the bytes
/// it wrote into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub transport: Transport,
    /// The local address to send from (a socket the I/O layer opened).
    pub source: SocketAddr,
    pub destination: SocketAddr,
}

/// Bytes the I/O layer must send that the agent made itself: STUN
/// checks and answers, consent, TURN requests. They are few (paced by
/// Ta, RFC 8445 §14.2, and by consent's 5 s), so each owns its bytes;
/// application data goes through [`Agent::send`] into the caller's
/// buffer instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    /// The local address to send from (a socket the I/O layer opened).
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
}

impl Transmit {
    pub fn new(route: Route, data: Vec<u8>) -> Self {
        Transmit {
            transport: route.transport,
            source: route.source,
            destination: route.destination,
            data,
        }
    }

    pub fn route(&self) -> Route {
        Route {
            transport: self.transport,
            source: self.source,
            destination: self.destination,
        }
    }
}

/// ICE credentials (RFC 8445 §5.3): the username fragment and password
/// exchanged in `a=ice-ufrag` and `a=ice-pwd` (RFC 8839 §5.4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub ufrag: String,
    pub pwd: String,
}

impl Credentials {
    /// Fresh random credentials: an 8-character ufrag and a 24-character
    /// password from the `ice-char` alphabet, as RFC 8839 §5.4 requires
    /// (24 and 128 bits of randomness at least).
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(ICE_CHARS[rng.gen_range(0..ICE_CHARS.len())]))
                .collect()
        };
        let ufrag = pick(8);
        let pwd = pick(24);
        Credentials { ufrag, pwd }
    }
}
