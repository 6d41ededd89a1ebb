//! An allocation (RFC 8656 §2.2, §5): relayed transport addresses bound
//! to a client's 5-tuple, with its permissions (§9), channels (§12) and,
//! for TCP relays, its peer connections (RFC 6062 §5).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::{IntegrityKey, TransactionId};

use crate::bandwidth::TokenBucket;
use crate::FiveTuple;

/// RFC 8656 §9: a permission lasts 300 seconds.
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// RFC 8656 §12: a channel binding lasts 10 minutes.
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 8656 §12: after a binding expires, neither its number nor its
/// peer may be bound to another for 5 more minutes.
pub const CHANNEL_QUARANTINE: Duration = Duration::from_secs(300);
/// A bound on the permissions one allocation may hold, so that one
/// authenticated client cannot grow the server's memory without limit.
pub const MAX_PERMISSIONS: usize = 1024;

/// The transport between the server and peers (RFC 8656 §5, RFC 6062).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RelayTransport {
    Udp,
    Tcp,
}

/// A channel binding (RFC 8656 §12).
#[derive(Clone, Copy, Debug)]
pub struct Channel {
    pub peer: SocketAddr,
    pub expires: Instant,
}

/// A TCP connection to a peer (RFC 6062 §5.3, §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerConnection {
    /// Established, waiting for the client's ConnectionBind until then.
    AwaitingBind { peer: SocketAddr, until: Instant },
    /// Spliced to a client data connection.
    Bound { peer: SocketAddr },
}

impl PeerConnection {
    pub fn peer(&self) -> SocketAddr {
        match *self {
            PeerConnection::AwaitingBind { peer, .. } | PeerConnection::Bound { peer } => peer,
        }
    }
}

/// One allocation.
#[derive(Debug)]
pub struct Allocation {
    pub client: FiveTuple,
    /// One relayed address, or two for a dual-stack allocation (§7.2).
    pub relays: Vec<SocketAddr>,
    pub transport: RelayTransport,
    pub expires: Instant,
    pub username: String,
    pub key: IntegrityKey,
    /// The Allocate request that created it, so a retransmission gets
    /// the same success response (RFC 8656 §7.2).
    pub created_by: TransactionId,
    pub permissions: HashMap<IpAddr, Instant>,
    pub channels: HashMap<u16, Channel>,
    pub channel_of_peer: HashMap<SocketAddr, u16>,
    pub connections: HashMap<u32, PeerConnection>,
    /// What the first success response carried besides addresses, so a
    /// retransmitted Allocate gets the same answer.
    pub reservation: Option<[u8; 8]>,
    pub ipv6_refused: bool,
    pub bandwidth: Option<TokenBucket>,
}

impl Allocation {
    /// The relayed address that talks to peers of `peer`'s family.
    pub fn relay_for(&self, peer: &SocketAddr) -> Option<SocketAddr> {
        self.relays.iter().copied().find(|r| r.is_ipv4() == peer.is_ipv4())
    }

    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|&until| until > now)
    }

    /// Whether permissions for all of `ips` fit in the table.
    pub fn has_room_for(&self, ips: &[IpAddr]) -> bool {
        let mut new: Vec<&IpAddr> = ips.iter().filter(|ip| !self.permissions.contains_key(ip)).collect();
        new.sort();
        new.dedup();
        self.permissions.len() + new.len() <= MAX_PERMISSIONS
    }

    /// Installs or refreshes a permission; callers check
    /// [`Allocation::has_room_for`] first.
    pub fn permit(&mut self, ip: IpAddr, now: Instant) {
        self.permissions.insert(ip, now + PERMISSION_LIFETIME);
    }

    /// The peer of a live channel.
    pub fn channel_peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.channels.get(&number).filter(|c| c.expires > now).map(|c| c.peer)
    }

    /// RFC 8656 §12.2: binds or refreshes a channel. Fails if the number
    /// or the peer is bound (or quarantined) to something else.
    pub fn bind_channel(&mut self, number: u16, peer: SocketAddr, now: Instant) -> bool {
        if let Some(c) = self.channels.get(&number) {
            if c.peer != peer {
                return false;
            }
        }
        if self.channel_of_peer.get(&peer).is_some_and(|&n| n != number) {
            return false;
        }
        // A binding lives on in quarantine after it expires.
        self.channels.insert(
            number,
            Channel {
                peer,
                expires: now + CHANNEL_LIFETIME,
            },
        );
        self.channel_of_peer.insert(peer, number);
        true
    }

    /// Forgets expired permissions and channels past their quarantine.
    pub fn expire(&mut self, now: Instant) {
        self.permissions.retain(|_, until| *until > now);
        let before = self.channels.len();
        self.channels.retain(|_, c| c.expires + CHANNEL_QUARANTINE > now);
        if self.channels.len() != before {
            let channels = &self.channels;
            self.channel_of_peer.retain(|_, n| channels.contains_key(n));
        }
    }

    /// The live channel number for `peer`, if any.
    pub fn channel_for(&self, peer: &SocketAddr, now: Instant) -> Option<u16> {
        let n = *self.channel_of_peer.get(peer)?;
        self.channels.get(&n).filter(|c| c.expires > now).map(|_| n)
    }
}
