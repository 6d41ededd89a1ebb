//! natter-turn: a sans-IO TURN server core.
//!
//! Implements RFC 8656 (TURN): allocations keyed by 5-tuple with
//! lifetimes (§5, §7, §8), permissions (§9, §10), Send and Data
//! indications (§11), channels and ChannelData (§12), IPv4, IPv6 and
//! dual-stack relays (REQUESTED-ADDRESS-FAMILY, ADDITIONAL-ADDRESS-FAMILY),
//! EVEN-PORT and RESERVATION-TOKEN, DONT-FRAGMENT; RFC 6062 TCP relays
//! (Connect, ConnectionBind, ConnectionAttempt); long-term credentials
//! with MD5 and SHA-256 keys, PASSWORD-ALGORITHMS, USERHASH and stateless
//! expiring nonces (RFC 8489 §9.2); the TURN REST shared-secret scheme.
//! Not implemented: ICMP attribute reporting (RFC 8656 §11.5) and
//! ALTERNATE-SERVER redirection.
//!
//! Security: a [`peer_filter::PeerFilter`] judges every peer address on
//! every path; allocation quotas ([`quota::QuotaLedger`]), per-allocation
//! bandwidth caps, and per-source rate limits on replies to
//! unauthenticated requests.
//!
//! The core owns no sockets and reads no clock: see [`Server`] for its
//! inputs and outputs. The `natter turn` command drives it.
//!
//! ```
//! use std::time::Instant;
//! use natter_turn::{auth::Credentials, ClientAction, FiveTuple, Server, ServerConfig, Transport};
//!
//! let mut creds = Credentials::new("example.org");
//! creds.add_user("alice", "secret").unwrap();
//! let now = Instant::now();
//! let mut server = Server::new(ServerConfig::new(creds, [1; 32], [2; 32]), now, 1_700_000_000);
//! let from = FiveTuple {
//!     transport: Transport::Udp,
//!     client: "192.0.2.1:5000".parse().unwrap(),
//!     server: "192.0.2.9:3478".parse().unwrap(),
//! };
//! // A Binding request gets the client's reflexive address.
//! let request = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
//! let mut reply = [0u8; 1500];
//! assert!(matches!(server.handle_client(now, from, &request, &mut reply), ClientAction::Reply(32)));
//! ```

use std::net::SocketAddr;

pub mod allocation;
pub mod auth;
pub mod bandwidth;
pub mod peer_filter;
pub mod quota;
pub mod rate_limit;
mod server;
pub mod stats;

pub use allocation::RelayTransport;
pub use server::{
    AllocateOutcome, AllocateRequest, ClientAction, Event, Server, ServerConfig, DEFAULT_LIFETIME, MAX_LIFETIME,
    PEER_HEADROOM, PEER_TAILROOM, RESERVATION_LIFETIME, SWEEP_INTERVAL,
};

/// The transport between a client and the server (RFC 8656 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// RFC 8656 §2: the 5-tuple that identifies a client's allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FiveTuple {
    pub transport: Transport,
    pub client: SocketAddr,
    pub server: SocketAddr,
}
