//! What an [`Endpoint`](super::Endpoint) routed and dropped.

/// Counters of an [`Endpoint`](super::Endpoint) since it was made. A
/// datagram that reached a connection is counted there too
/// ([`PeerStats`](crate::peer::PeerStats)), including what the
/// connection itself then dropped (a bad MESSAGE-INTEGRITY, a replayed
/// SRTP packet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Connections held now.
    pub connections: u64,
    pub datagrams_received: u64,
    pub datagrams_sent: u64,
    /// STUN requests whose USERNAME names no connection's ufrag, or that
    /// have none: dropped unanswered (a 401 would tell a scanner which
    /// port is ICE).
    pub unknown_ufrag: u64,
    /// STUN responses to no request a connection sent (or one given up).
    pub unknown_transaction: u64,
    /// DTLS, RTP, RTCP, ChannelData or a STUN indication from an address
    /// no connection claimed.
    pub unknown_address: u64,
    /// Datagrams that look like STUN by their first byte (RFC 7983) but
    /// do not parse.
    pub malformed: u64,
    /// A connection claimed an address another one held (the same remote
    /// transport address talking to two connections).
    pub address_takeovers: u64,
    /// A connection's ufrag was already another's; the first keeps it.
    pub ufrag_conflicts: u64,
    /// Media and application data dropped for paused connections
    /// ([`Endpoint::set_paused`](super::Endpoint::set_paused)).
    pub paused_dropped: u64,
}

/// Counters of several endpoints together (the workers of one server).
impl std::ops::AddAssign for EndpointStats {
    fn add_assign(&mut self, other: EndpointStats) {
        self.connections += other.connections;
        self.datagrams_received += other.datagrams_received;
        self.datagrams_sent += other.datagrams_sent;
        self.unknown_ufrag += other.unknown_ufrag;
        self.unknown_transaction += other.unknown_transaction;
        self.unknown_address += other.unknown_address;
        self.malformed += other.malformed;
        self.address_takeovers += other.address_takeovers;
        self.ufrag_conflicts += other.ufrag_conflicts;
        self.paused_dropped += other.paused_dropped;
    }
}

impl EndpointStats {
    /// Everything dropped without reaching a connection.
    pub fn dropped(&self) -> u64 {
        self.unknown_ufrag + self.unknown_transaction + self.unknown_address + self.malformed
    }
}
