//! Counters a server core keeps; the I/O layer adds them up across
//! workers and exports them as Prometheus metrics.

/// Monotonic counters of one server core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub allocations_created: u64,
    pub allocations_expired: u64,
    pub allocations_deleted: u64,
    pub requests: u64,
    pub binding_requests: u64,
    /// Error responses sent, all codes.
    pub error_responses: u64,
    pub auth_failures: u64,
    pub stale_nonces: u64,
    /// Packets relayed client to peer, and their payload bytes.
    pub relayed_to_peer: u64,
    pub relayed_to_peer_bytes: u64,
    /// Packets relayed peer to client, and their payload bytes.
    pub relayed_to_client: u64,
    pub relayed_to_client_bytes: u64,
    /// Input that failed to parse.
    pub malformed: u64,
    /// Relaying refused by the peer-address policy.
    pub denied_peer: u64,
    /// Peer packets without a permission, or client data without a
    /// channel or allocation.
    pub no_permission: u64,
    /// Dropped over the allocation's bandwidth cap.
    pub over_bandwidth: u64,
    /// Replies to unauthenticated requests withheld by the per-source
    /// rate limit or because they would be larger than the request.
    pub unauthenticated_replies_suppressed: u64,
}

impl Stats {
    /// Adds another core's counters.
    pub fn add(&mut self, o: &Stats) {
        self.allocations_created += o.allocations_created;
        self.allocations_expired += o.allocations_expired;
        self.allocations_deleted += o.allocations_deleted;
        self.requests += o.requests;
        self.binding_requests += o.binding_requests;
        self.error_responses += o.error_responses;
        self.auth_failures += o.auth_failures;
        self.stale_nonces += o.stale_nonces;
        self.relayed_to_peer += o.relayed_to_peer;
        self.relayed_to_peer_bytes += o.relayed_to_peer_bytes;
        self.relayed_to_client += o.relayed_to_client;
        self.relayed_to_client_bytes += o.relayed_to_client_bytes;
        self.malformed += o.malformed;
        self.denied_peer += o.denied_peer;
        self.no_permission += o.no_permission;
        self.over_bandwidth += o.over_bandwidth;
        self.unauthenticated_replies_suppressed += o.unauthenticated_replies_suppressed;
    }

    /// Name, help and value of every counter, for an exporter.
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 17] {
        [
            (
                "allocations_created_total",
                "Allocations created",
                self.allocations_created,
            ),
            (
                "allocations_expired_total",
                "Allocations that expired",
                self.allocations_expired,
            ),
            (
                "allocations_deleted_total",
                "Allocations deleted by the client or a closed connection",
                self.allocations_deleted,
            ),
            ("requests_total", "STUN requests received", self.requests),
            (
                "binding_requests_total",
                "STUN Binding requests received",
                self.binding_requests,
            ),
            (
                "error_responses_total",
                "STUN error responses sent",
                self.error_responses,
            ),
            (
                "auth_failures_total",
                "Requests that failed authentication",
                self.auth_failures,
            ),
            (
                "stale_nonces_total",
                "Requests with an expired or foreign nonce",
                self.stale_nonces,
            ),
            (
                "relayed_to_peer_packets_total",
                "Packets relayed from clients to peers",
                self.relayed_to_peer,
            ),
            (
                "relayed_to_peer_bytes_total",
                "Payload bytes relayed from clients to peers",
                self.relayed_to_peer_bytes,
            ),
            (
                "relayed_to_client_packets_total",
                "Packets relayed from peers to clients",
                self.relayed_to_client,
            ),
            (
                "relayed_to_client_bytes_total",
                "Payload bytes relayed from peers to clients",
                self.relayed_to_client_bytes,
            ),
            (
                "malformed_packets_total",
                "Packets that failed to parse",
                self.malformed,
            ),
            (
                "denied_peer_total",
                "Relaying refused by the peer-address policy",
                self.denied_peer,
            ),
            (
                "no_permission_total",
                "Packets dropped for want of a permission, channel or allocation",
                self.no_permission,
            ),
            (
                "over_bandwidth_total",
                "Packets dropped over an allocation's bandwidth cap",
                self.over_bandwidth,
            ),
            (
                "unauthenticated_replies_suppressed_total",
                "Replies to unauthenticated requests withheld",
                self.unauthenticated_replies_suppressed,
            ),
        ]
    }
}
