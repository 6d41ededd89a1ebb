//! What the agent reports to its owner: events, connection states
//! (W3C `RTCIceConnectionState`), received data and statistics.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use super::Role;
use crate::candidate::Candidate;
use crate::Transport;

/// W3C webrtc-pc §5.6 `RTCIceConnectionState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    New,
    Checking,
    Connected,
    Completed,
    Disconnected,
    Failed,
    Closed,
}

/// Something the owner of an [`super::Agent`] should know or do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A candidate to signal to the peer (RFC 8838 §4: trickled as soon
    /// as it is known).
    LocalCandidate(Candidate),
    /// Every STUN and TURN gathering transaction has ended: signal
    /// end-of-candidates (RFC 8838 §8.2).
    GatheringComplete,
    /// RFC 8828 §5: resolve this `.local` name and call
    /// [`super::Agent::resolve_mdns`].
    ResolveMdns(String),
    ConnectionState(ConnectionState),
    /// Data now flows between these candidates.
    SelectedPair {
        local: Candidate,
        remote: Candidate,
    },
    /// RFC 8445 §7.3.1.1, §7.2.5.1: a role conflict changed our role.
    RoleChanged(Role),
}

/// What [`super::Agent::handle_receive`] made of a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// STUN (or TURN) that the agent consumed, including malformed or
    /// unauthenticated messages it dropped and counted.
    Handled,
    /// Application data from a remote candidate the agent knows (or,
    /// for relayed candidates, from a peer through the TURN server).
    /// `source` is the remote candidate's address.
    Data {
        source: SocketAddr,
        transport: Transport,
        data: Cow<'a, [u8]>,
    },
    /// Not STUN and not from a known remote address; the I/O layer
    /// decides (normally it drops it).
    Unknown,
}

/// A snapshot of the agent's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Round-trip time of the latest check or consent check on the
    /// selected pair.
    pub selected_rtt: Option<Duration>,
    /// Connectivity and consent checks sent (retransmissions included).
    pub checks_sent: u64,
    /// Authenticated Binding requests answered.
    pub checks_received: u64,
    /// Authenticated responses to our checks.
    pub responses_received: u64,
    /// STUN that failed to decode.
    pub malformed: u64,
    /// Requests or responses that failed authentication (RFC 8489 §9.1.3,
    /// §9.1.4).
    pub unauthenticated: u64,
    /// Responses that matched no transaction of ours.
    pub unmatched_responses: u64,
    /// Requests answered 420 (RFC 8489 §6.3.1).
    pub unknown_attributes: u64,
    /// Binding requests lost to the peer's silence for good.
    pub check_timeouts: u64,
}
