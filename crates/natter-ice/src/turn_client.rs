//! An RFC 8656 TURN client for one allocation on one server: the ICE
//! agent gathers a relayed candidate with it and sends and receives
//! through that candidate.
//!
//! What it does:
//! - Allocate with REQUESTED-TRANSPORT UDP (§7.1), first without
//!   credentials, then with the long-term credentials of RFC 8489 §9.2
//!   once a 401 gave the REALM and NONCE. A nonce carrying RFC 8489's
//!   cookie with the password-algorithms bit makes the client pick the
//!   first algorithm of the server's PASSWORD-ALGORITHMS it knows (SHA-256
//!   or MD5), echo the list and sign with MESSAGE-INTEGRITY-SHA256; a
//!   server without the cookie gets MD5 keys and MESSAGE-INTEGRITY.
//! - A 438 Stale Nonce to any request is answered by the same request
//!   with the new nonce ([`MAX_STALE_NONCE_RETRIES`] times in a row at
//!   most).
//! - Refresh before the allocation's LIFETIME ends (§8): 60 s before, or
//!   halfway through a lifetime of 2 minutes or less. Release is a
//!   Refresh with LIFETIME 0.
//! - CreatePermission (§9, §10) and ChannelBind (§11, §12), both kept
//!   fresh until the allocation ends: permissions 60 s before their 300 s
//!   run out, channels on the same schedule because a ChannelBind also
//!   refreshes the permission of its peer's IP (§12.1). Channel numbers
//!   are handed out from 0x4000 upwards and never reused.
//! - Data to a peer goes as ChannelData once its channel is bound
//!   (padded to 4 bytes over TCP and TLS, §12.5), else as a Send
//!   indication once its IP has a permission (§11.1). Data from peers
//!   comes out of Data indications (§11.4) and ChannelData (§12.6).
//! - Requests are retransmitted as RFC 8489 §6.2.1 says over UDP and sent
//!   once over TCP and TLS ([`crate::transaction`]). Responses are matched
//!   by transaction id; success responses count only with a valid
//!   MESSAGE-INTEGRITY(-SHA256), and error responses that carry one must
//!   verify too. Anything else is dropped and counted ([`TurnStats`]),
//!   never a panic.
//!
//! Not implemented: TCP relays (RFC 6062), EVEN-PORT and reservations,
//! IPv6 or dual-stack relays (REQUESTED-ADDRESS-FAMILY), DONT-FRAGMENT,
//! USERHASH, following 300 Try Alternate (it is reported as a failure
//! with the alternate address), and ICMP attributes.
//!
//! # Methods
//!
//! In quinn-proto's taxonomy:
//! - getters: [`TurnClient::state`], [`TurnClient::relayed`],
//!   [`TurnClient::mapped`], [`TurnClient::has_permission`],
//!   [`TurnClient::channel`], [`TurnClient::stats`] and others;
//! - input: [`TurnClient::handle_receive`] (one datagram, or one frame of
//!   a TCP/TLS stream), [`TurnClient::handle_timeout`],
//!   [`TurnClient::handle_connection_closed`];
//! - application commands: [`TurnClient::create_permission`],
//!   [`TurnClient::bind_channel`], [`TurnClient::release`], and
//!   [`TurnClient::encode_send`] which frames data for a peer at once
//!   into the caller's buffer;
//! - output, drained in this order after every input or command:
//!   [`TurnClient::poll_transmit`], [`TurnClient::poll_timeout`],
//!   [`TurnClient::poll_event`].
//!
//! The I/O layer owns the socket or connection to the server and must
//! pass in only what arrived from the server's address on it: a Data
//! indication or ChannelData from anyone else would be taken for a
//! peer's data.
//!
//! ```
//! use std::time::Instant;
//! use natter_ice::turn_client::{TurnClient, TurnServer};
//! use natter_ice::Transport;
//! use rand::SeedableRng;
//!
//! let server = TurnServer {
//!     address: "192.0.2.10:3478".parse().unwrap(),
//!     transport: Transport::Udp,
//!     username: "alice".into(),
//!     password: "secret".into(),
//! };
//! let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! let now = Instant::now();
//! let mut client = TurnClient::new(server, "192.0.2.1:5000".parse().unwrap(), now, &mut rng);
//! // The first Allocate, without credentials, is ready at once.
//! let allocate = client.poll_transmit().unwrap();
//! assert_eq!(allocate.destination, "192.0.2.10:3478".parse().unwrap());
//! // Without an answer it is resent after RTO (500 ms).
//! assert_eq!(client.poll_timeout(), Some(now + std::time::Duration::from_millis(500)));
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::{
    attribute, AlternateServer, Attribute, ChannelData, ChannelNumber, Class, Data, ErrorCode, IntegrityKey,
    IntegrityKind, Lifetime, Message, MessageType, MessageWriter, Method, Nonce, PacketKind, PasswordAlgorithm,
    PasswordAlgorithms, Realm, RequestedTransport, SecurityFeatures, TransactionId, Username, XorMappedAddress,
    XorPeerAddress, XorRelayedAddress, CHANNEL_NUMBERS,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::transaction::{Retransmit, RetransmitAction, RetransmitPolicy};
use crate::{Route, Transmit, Transport};

/// RFC 8656 §7.2: the lifetime of an allocation when the server names none.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 8656 §8: refresh this long before the allocation ends.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// RFC 8656 §9: a permission lasts 300 s.
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// RFC 8656 §12: a channel binding lasts 10 minutes.
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// When permissions and channels are refreshed: one minute before the
/// permission would end. Channels follow the permission's schedule since
/// a ChannelBind refreshes both (RFC 8656 §12.1).
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// How many 438 Stale Nonce answers in a row one request tolerates
/// before it fails, so a broken server cannot keep the client busy.
pub const MAX_STALE_NONCE_RETRIES: u8 = 3;
/// The most bytes [`TurnClient::encode_send`] adds around the data: a
/// Send indication's header, an IPv6 XOR-PEER-ADDRESS, the DATA
/// attribute's header and its padding.
pub const MAX_SEND_OVERHEAD: usize = 20 + 24 + 4 + 3;
/// The longest lifetime taken from a server (RFC 8656 §7.2 caps it at an
/// hour; a day leaves room), so that no answer overflows the clock.
const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// RFC 8656 §9.1: the server ignores the port of a CreatePermission's
/// XOR-PEER-ADDRESS. It must not be 0 all the same: natter's own
/// PeerFilter refuses port 0 as no valid destination.
const PERMISSION_PORT: u16 = 9;
/// Room for the largest request: USERNAME (512 bytes), REALM and NONCE
/// (763 each), a long PASSWORD-ALGORITHMS and the rest.
const REQUEST_BUFFER: usize = 4096;
/// Transaction ids of finished transactions remembered, so that late
/// retransmitted responses are recognised as the server's and dropped.
const RECENT_TRANSACTIONS: usize = 16;

/// The TURN server and the long-term credentials to use with it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    pub address: SocketAddr,
    /// UDP, or a TCP or TLS connection the I/O layer opened to `address`.
    pub transport: Transport,
    pub username: String,
    pub password: String,
}

impl fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnServer")
            .field("address", &self.address)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Tuning of a [`TurnClient`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnConfig {
    /// Retransmission of requests. `None`: RFC 8489's defaults over UDP
    /// (RTO 500 ms, 7 transmissions, 39.5 s in all), one transmission and
    /// 39.5 s over TCP and TLS.
    pub retransmit: Option<RetransmitPolicy>,
    /// The LIFETIME asked for in Allocate and Refresh (whole seconds).
    /// `None` leaves it to the server, 600 s by default (RFC 8656 §7.2).
    pub lifetime: Option<Duration>,
}

/// The four requests of a TURN client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TurnRequest {
    Allocate,
    Refresh,
    CreatePermission,
    ChannelBind,
}

impl fmt::Display for TurnRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TurnRequest::Allocate => "Allocate",
            TurnRequest::Refresh => "Refresh",
            TurnRequest::CreatePermission => "CreatePermission",
            TurnRequest::ChannelBind => "ChannelBind",
        })
    }
}

/// Why a request, and with an Allocate or Refresh the allocation, failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TurnError {
    /// The server refused the request with this ERROR-CODE: 437
    /// Allocation Mismatch, 403 Forbidden, 486 Allocation Quota Reached,
    /// 508 Insufficient Capacity and so on.
    #[error("{request} refused by the server: {code} {reason}")]
    ErrorResponse {
        request: TurnRequest,
        code: u16,
        reason: String,
    },
    /// RFC 8489 §10: 300 Try Alternate, with the ALTERNATE-SERVER the
    /// server named, if any. This client does not follow redirections.
    #[error("{request} redirected by 300 Try Alternate to {alternate:?}")]
    TryAlternate {
        request: TurnRequest,
        alternate: Option<SocketAddr>,
    },
    /// A 401 to a request that carried credentials: the username or
    /// password is wrong, or a REST credential has expired.
    #[error("{request} refused with 401 Unauthorized despite credentials: wrong username or password")]
    Unauthorized { request: TurnRequest },
    /// No response came in time.
    #[error("{request}: no response after {transmissions} transmission(s)")]
    Timeout { request: TurnRequest, transmissions: u32 },
    /// The server kept answering 438 Stale Nonce.
    #[error("{request}: {count} 438 Stale Nonce answers in a row")]
    StaleNonce { request: TurnRequest, count: u8 },
    /// A 401 or 438 lacked what the client needs to authenticate.
    #[error("the server's 401/438 challenge lacks a valid {0}")]
    BadChallenge(&'static str),
    /// RFC 8489 §9.2.5: the nonce announces PASSWORD-ALGORITHMS but the
    /// challenge carries none, which is how a downgrade to MD5 looks.
    #[error("the nonce announces PASSWORD-ALGORITHMS but the challenge carries none (a possible bid-down attack)")]
    BidDown,
    /// PASSWORD-ALGORITHMS names neither MD5 nor SHA-256.
    #[error("the server offers no password algorithm this client supports (MD5, SHA-256)")]
    NoSupportedAlgorithm,
    /// The username, realm or password failed OpaqueString preparation.
    #[error("credentials cannot be prepared: {0}")]
    Credentials(natter_stun::Error),
    /// An authenticated success response lacked a required attribute.
    #[error("{request} success response is malformed: {reason}")]
    MalformedResponse { request: TurnRequest, reason: &'static str },
    /// A request could not be written (a credential too long for STUN).
    #[error("{request} cannot be encoded: {error}")]
    Encode {
        request: TurnRequest,
        error: natter_stun::Error,
    },
    /// The peer's address family differs from the relayed address's.
    #[error("peer {peer} is not of the relayed address {relayed}'s family")]
    FamilyMismatch { peer: IpAddr, relayed: SocketAddr },
    /// Every channel number of RFC 8656 §12 has been used.
    #[error("no channel number left in 0x4000..=0x4FFF")]
    NoChannelNumber,
    /// The client was closed (released, expired or failed) first.
    #[error("the TURN client is closed")]
    Closed,
    /// The TCP or TLS connection to the server closed, and the
    /// allocation with it (RFC 8656 §3.1).
    #[error("the connection to the TURN server closed")]
    ConnectionClosed,
}

impl TurnError {
    /// The STUN error code, for failures the server reported.
    pub fn code(&self) -> Option<u16> {
        match self {
            TurnError::ErrorResponse { code, .. } => Some(*code),
            TurnError::TryAlternate { .. } => Some(300),
            TurnError::Unauthorized { .. } => Some(401),
            TurnError::StaleNonce { .. } => Some(438),
            _ => None,
        }
    }
}

/// Why [`TurnClient::encode_send`] framed nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no allocation to send through")]
    NoAllocation,
    #[error("no permission for peer {0}")]
    NoPermission(IpAddr),
    #[error("cannot frame data for the relay: {0}")]
    Encode(natter_stun::Error),
}

/// What [`TurnClient::poll_event`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TurnEvent {
    /// The allocation exists: `relayed` is the relayed candidate's
    /// address, `mapped` the server-reflexive address the server saw
    /// (XOR-MAPPED-ADDRESS), when it said.
    Allocated {
        relayed: SocketAddr,
        mapped: Option<SocketAddr>,
    },
    /// The Allocate failed; the client is closed.
    AllocationFailed(TurnError),
    /// The permission [`TurnClient::create_permission`] asked for is
    /// installed. (A bound channel brings a permission for its peer's IP
    /// without this event.)
    PermissionCreated(IpAddr),
    /// Creating or refreshing the permission failed; it is gone (see
    /// [`TurnClient::last_error`] for why).
    PermissionFailed(IpAddr),
    ChannelBound(SocketAddr),
    /// Binding or refreshing the channel failed; data to the peer falls
    /// back to Send indications while its IP has a permission.
    ChannelFailed(SocketAddr),
    /// [`TurnClient::release`] finished (or gave up waiting); closed.
    Released,
    /// The allocation ended without a release: its lifetime ran out
    /// because refreshing failed, the server answered 437, or the TCP/TLS
    /// connection closed. Closed; see [`TurnClient::last_error`].
    Expired,
}

/// What [`TurnClient::handle_receive`] made of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnReceive<'a> {
    /// Not a TURN message for this client (another STUN transaction's
    /// response, a Binding request, media): the caller handles it.
    NotTurn,
    /// Consumed: a response, or TURN traffic dropped and counted.
    Handled,
    /// Data relayed from `peer`, borrowed from the packet.
    Data { peer: SocketAddr, data: &'a [u8] },
}

/// Where the client is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnState {
    Allocating,
    Allocated,
    /// A Refresh with LIFETIME 0 is on its way.
    Releasing,
    /// Released, expired or failed; nothing more happens.
    Closed,
}

/// The deadline behind [`TurnClient::poll_timeout`], for finding out why
/// the client wants to wake up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnTimer {
    /// A request's retransmission or final timeout.
    Transaction(TurnRequest),
    RefreshAllocation,
    AllocationExpiry,
    RefreshPermission(IpAddr),
    PermissionExpiry(IpAddr),
    RefreshChannel(SocketAddr),
    ChannelExpiry(SocketAddr),
}

/// Counters of what was dropped or resent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Packets in the STUN or ChannelData range that did not decode.
    pub malformed: u64,
    /// Responses whose transaction id matched nothing.
    pub unmatched_responses: u64,
    /// Responses dropped for a missing (on success) or wrong
    /// MESSAGE-INTEGRITY.
    pub unauthenticated_responses: u64,
    /// Peer data dropped: no permission for its IP, an unknown channel,
    /// or no allocation.
    pub dropped_data: u64,
    pub retransmissions: u64,
    pub stale_nonces: u64,
}

/// A request with what it is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Allocate,
    /// LIFETIME to ask for; `Some(0)` releases.
    Refresh(Option<u32>),
    CreatePermission(IpAddr),
    ChannelBind {
        number: u16,
        peer: SocketAddr,
    },
}

impl Request {
    fn kind(self) -> TurnRequest {
        match self {
            Request::Allocate => TurnRequest::Allocate,
            Request::Refresh(_) => TurnRequest::Refresh,
            Request::CreatePermission(_) => TurnRequest::CreatePermission,
            Request::ChannelBind { .. } => TurnRequest::ChannelBind,
        }
    }

    fn method(self) -> Method {
        match self {
            Request::Allocate => Method::ALLOCATE,
            Request::Refresh(_) => Method::REFRESH,
            Request::CreatePermission(_) => Method::CREATE_PERMISSION,
            Request::ChannelBind { .. } => Method::CHANNEL_BIND,
        }
    }
}

/// One outstanding request.
struct Transaction {
    tid: TransactionId,
    request: Request,
    bytes: Vec<u8>,
    timer: Retransmit,
    /// 438 answers so far in this chain of retries.
    stale: u8,
    /// Whether the request carried credentials.
    authenticated: bool,
}

/// What a 401 taught: the long-term credential for later requests.
struct Auth {
    realm: String,
    nonce: String,
    algorithm: PasswordAlgorithm,
    /// The server's PASSWORD-ALGORITHMS value, echoed as received (RFC
    /// 8489 §9.2.4), when negotiated.
    algorithms: Option<Vec<u8>>,
    integrity: IntegrityKind,
    key: IntegrityKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `release` was called while credentials were on their way: the
    /// allocation is released as soon as it exists.
    Allocating {
        release_when_done: bool,
    },
    Allocated {
        expires: Instant,
        /// `None` while a Refresh is in flight or after one failed.
        refresh_at: Option<Instant>,
    },
    Releasing,
    Closed,
}

/// A permission the application asked for (or a channel implied).
#[derive(Clone, Copy, Debug, Default)]
struct Permission {
    /// When the server's permission ends, once a success said it exists.
    installed_until: Option<Instant>,
    /// When to refresh; `None` while a request is in flight or queued.
    refresh_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    number: u16,
    bound_until: Option<Instant>,
    refresh_at: Option<Instant>,
}

/// An RFC 8656 TURN client for one allocation on one server; see the
/// [module documentation](self).
pub struct TurnClient {
    server: TurnServer,
    local: SocketAddr,
    config: TurnConfig,
    policy: RetransmitPolicy,
    rng: StdRng,
    state: State,
    auth: Option<Auth>,
    relayed: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    transactions: Vec<Transaction>,
    recent: VecDeque<TransactionId>,
    permissions: HashMap<IpAddr, Permission>,
    channels: HashMap<SocketAddr, Channel>,
    channel_peers: HashMap<u16, SocketAddr>,
    next_channel: u16,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TurnEvent>,
    last_error: Option<TurnError>,
    stats: TurnStats,
}

impl fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnClient")
            .field("server", &self.server)
            .field("local", &self.local)
            .field("state", &self.state)
            .field("relayed", &self.relayed)
            .field("mapped", &self.mapped)
            .field("transactions", &self.transactions.len())
            .field("permissions", &self.permissions.len())
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl TurnClient {
    /// A client that starts allocating at once: its first Allocate
    /// (without credentials) is ready in [`TurnClient::poll_transmit`].
    /// `local` is the address of the socket the I/O layer sends from;
    /// `rng` seeds the generator of transaction ids.
    pub fn new<R: Rng + ?Sized>(server: TurnServer, local: SocketAddr, now: Instant, rng: &mut R) -> Self {
        Self::with_config(server, local, now, rng, TurnConfig::default())
    }

    /// [`TurnClient::new`] with non-default tuning.
    pub fn with_config<R: Rng + ?Sized>(
        server: TurnServer,
        local: SocketAddr,
        now: Instant,
        rng: &mut R,
        config: TurnConfig,
    ) -> Self {
        let policy = config.retransmit.unwrap_or(match server.transport {
            Transport::Udp => RetransmitPolicy::default(),
            Transport::Tcp | Transport::Tls => RetransmitPolicy::reliable(),
        });
        let mut client = TurnClient {
            server,
            local,
            config,
            policy,
            rng: StdRng::from_seed(rng.gen()),
            state: State::Allocating {
                release_when_done: false,
            },
            auth: None,
            relayed: None,
            mapped: None,
            transactions: Vec::new(),
            recent: VecDeque::with_capacity(RECENT_TRANSACTIONS),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_peers: HashMap::new(),
            next_channel: *CHANNEL_NUMBERS.start(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_error: None,
            stats: TurnStats::default(),
        };
        client.start(now, Request::Allocate, 0);
        client
    }

    // ------------------------------------------------------------ getters

    pub fn server(&self) -> &TurnServer {
        &self.server
    }

    /// The local address requests are sent from.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    pub fn state(&self) -> TurnState {
        match self.state {
            State::Allocating { .. } => TurnState::Allocating,
            State::Allocated { .. } => TurnState::Allocated,
            State::Releasing => TurnState::Releasing,
            State::Closed => TurnState::Closed,
        }
    }

    /// The relayed transport address, once allocated (and until closed).
    pub fn relayed(&self) -> Option<SocketAddr> {
        self.relayed.filter(|_| self.state != State::Closed)
    }

    /// The client's address as the server saw it (XOR-MAPPED-ADDRESS).
    pub fn mapped(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// When the allocation ends unless refreshed.
    pub fn expires(&self) -> Option<Instant> {
        match self.state {
            State::Allocated { expires, .. } => Some(expires),
            _ => None,
        }
    }

    /// Whether the server holds a permission for `ip`, so that data to and
    /// from it is relayed (a bound channel implies one).
    pub fn has_permission(&self, ip: IpAddr) -> bool {
        self.permissions.get(&ip).is_some_and(|p| p.installed_until.is_some())
            || self
                .channels
                .iter()
                .any(|(peer, c)| peer.ip() == ip && c.bound_until.is_some())
    }

    /// The channel number bound to `peer`, once the server confirmed it.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|c| c.bound_until.is_some())
            .map(|c| c.number)
    }

    /// The most recent failure of any request, for logs.
    pub fn last_error(&self) -> Option<&TurnError> {
        self.last_error.as_ref()
    }

    pub fn stats(&self) -> &TurnStats {
        &self.stats
    }

    // ------------------------------------------------------------- input

    /// One datagram from the server over UDP, or one whole frame of the
    /// TCP/TLS stream (split with [`natter_stun::stream_frame_len`]).
    pub fn handle_receive<'a>(&mut self, now: Instant, data: &'a [u8]) -> TurnReceive<'a> {
        match PacketKind::of(data) {
            PacketKind::ChannelData => self.receive_channel_data(data),
            PacketKind::Stun => match Message::decode(data) {
                Ok(msg) => self.receive_stun(now, &msg),
                Err(_) => {
                    self.stats.malformed += 1;
                    TurnReceive::NotTurn
                }
            },
            _ => TurnReceive::NotTurn,
        }
    }

    /// Fires whatever is due: retransmissions, timeouts, refreshes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.transactions.len() {
            let t = &mut self.transactions[i];
            match t.timer.poll(now) {
                RetransmitAction::Wait(_) => i += 1,
                RetransmitAction::Send => {
                    self.stats.retransmissions += 1;
                    let data = t.bytes.clone();
                    self.transmit(data);
                    i += 1;
                }
                RetransmitAction::TimedOut => {
                    let t = self.transactions.remove(i);
                    self.remember(t.tid);
                    let error = TurnError::Timeout {
                        request: t.request.kind(),
                        transmissions: t.timer.transmissions(),
                    };
                    self.failed(now, t.request, error);
                }
            }
        }
        if let State::Allocated { expires, refresh_at } = self.state {
            if expires <= now {
                self.close(TurnEvent::Expired);
                return;
            }
            if refresh_at.is_some_and(|at| at <= now) {
                self.state = State::Allocated {
                    expires,
                    refresh_at: None,
                };
                self.start(now, Request::Refresh(self.requested_lifetime()), 0);
            }
        } else {
            return;
        }
        self.permission_timers(now);
        self.channel_timers(now);
    }

    /// The TCP or TLS connection to the server closed: so did the
    /// allocation (RFC 8656 §3.1).
    pub fn handle_connection_closed(&mut self) {
        let event = match self.state {
            State::Allocating { .. } => TurnEvent::AllocationFailed(TurnError::ConnectionClosed),
            State::Allocated { .. } => TurnEvent::Expired,
            State::Releasing => TurnEvent::Released,
            State::Closed => return,
        };
        self.last_error = Some(TurnError::ConnectionClosed);
        self.close(event);
    }

    // -------------------------------------------------------- commands

    /// Asks for a permission for `peer` (RFC 8656 §9), kept fresh until
    /// the allocation ends. Sent once the allocation exists; reported by
    /// [`TurnEvent::PermissionCreated`] or [`TurnEvent::PermissionFailed`].
    /// Asking again for an IP that has one does nothing.
    pub fn create_permission(&mut self, peer: IpAddr, now: Instant) {
        if !self.is_open() {
            return self.permission_refused(peer, TurnError::Closed);
        }
        if self.permissions.contains_key(&peer) {
            return;
        }
        if let Some(relayed) = self.relayed {
            if relayed.is_ipv4() != peer.is_ipv4() {
                return self.permission_refused(peer, TurnError::FamilyMismatch { peer, relayed });
            }
        }
        self.permissions.insert(peer, Permission::default());
        if matches!(self.state, State::Allocated { .. }) {
            self.start(now, Request::CreatePermission(peer), 0);
        }
    }

    /// Binds a channel to `peer` (RFC 8656 §11), kept fresh until the
    /// allocation ends; it also installs a permission for the peer's IP.
    /// Reported by [`TurnEvent::ChannelBound`] or
    /// [`TurnEvent::ChannelFailed`]. Asking again does nothing.
    pub fn bind_channel(&mut self, peer: SocketAddr, now: Instant) {
        if !self.is_open() {
            return self.channel_refused(peer, TurnError::Closed);
        }
        if self.channels.contains_key(&peer) {
            return;
        }
        if let Some(relayed) = self.relayed {
            if relayed.is_ipv4() != peer.is_ipv4() {
                let error = TurnError::FamilyMismatch {
                    peer: peer.ip(),
                    relayed,
                };
                return self.channel_refused(peer, error);
            }
        }
        if !CHANNEL_NUMBERS.contains(&self.next_channel) {
            return self.channel_refused(peer, TurnError::NoChannelNumber);
        }
        let number = self.next_channel;
        self.next_channel += 1;
        self.channels.insert(
            peer,
            Channel {
                number,
                bound_until: None,
                refresh_at: None,
            },
        );
        self.channel_peers.insert(number, peer);
        if matches!(self.state, State::Allocated { .. }) {
            self.start(now, Request::ChannelBind { number, peer }, 0);
        }
    }

    /// Frames `data` for `peer` into `out` (at least `data.len() +
    /// MAX_SEND_OVERHEAD` bytes is always enough) and returns its length:
    /// ChannelData if a channel is bound (RFC 8656 §12.4), else a Send
    /// indication if the peer's IP has a permission (§11.1). It goes to
    /// the server from the local address.
    pub fn encode_send(&mut self, peer: SocketAddr, data: &[u8], out: &mut [u8]) -> Result<usize, SendError> {
        if !matches!(self.state, State::Allocated { .. }) {
            return Err(SendError::NoAllocation);
        }
        if let Some(c) = self.channels.get(&peer).filter(|c| c.bound_until.is_some()) {
            let padded = self.server.transport != Transport::Udp;
            let cd = ChannelData { number: c.number, data };
            return cd.encode(out, padded).map_err(SendError::Encode);
        }
        if !self.has_permission(peer.ip()) {
            return Err(SendError::NoPermission(peer.ip()));
        }
        // RFC 8656 §11.1: XOR-PEER-ADDRESS and DATA.
        let tid = TransactionId(self.rng.gen());
        let typ = MessageType::new(Method::SEND, Class::Indication);
        let mut w = MessageWriter::new(out, typ, tid).map_err(SendError::Encode)?;
        w.add(&XorPeerAddress(peer)).map_err(SendError::Encode)?;
        w.add(&Data(data)).map_err(SendError::Encode)?;
        Ok(w.finish())
    }

    /// Deletes the allocation with a Refresh of LIFETIME 0 (RFC 8656 §8);
    /// [`TurnEvent::Released`] follows when the server confirms or the
    /// request times out. Permissions and channels stop being refreshed.
    /// While allocating: closes at once if no credentials went out yet,
    /// else releases the allocation as soon as it exists (or reports
    /// [`TurnEvent::AllocationFailed`] if it never does).
    pub fn release(&mut self, now: Instant) {
        match self.state {
            State::Allocating { .. } if self.transactions.iter().all(|t| !t.authenticated) => {
                // No authenticated Allocate has gone out: the server holds nothing.
                self.close(TurnEvent::Released);
            }
            State::Allocating { .. } => {
                self.state = State::Allocating {
                    release_when_done: true,
                }
            }
            State::Allocated { .. } => {
                for t in std::mem::take(&mut self.transactions) {
                    self.remember(t.tid);
                }
                self.state = State::Releasing;
                self.start(now, Request::Refresh(Some(0)), 0);
            }
            State::Releasing | State::Closed => {}
        }
    }

    // ------------------------------------------------------------ output

    /// The next packet to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`TurnClient::handle_timeout`] next has work; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// The earliest deadline and what it is for.
    pub fn next_timer(&self) -> Option<(Instant, TurnTimer)> {
        let mut next: Option<(Instant, TurnTimer)> = None;
        let mut consider = |at: Option<Instant>, timer: TurnTimer| {
            if let Some(at) = at {
                if next.is_none_or(|(t, _)| at < t) {
                    next = Some((at, timer));
                }
            }
        };
        for t in &self.transactions {
            consider(Some(t.timer.deadline()), TurnTimer::Transaction(t.request.kind()));
        }
        if let State::Allocated { expires, refresh_at } = self.state {
            consider(refresh_at, TurnTimer::RefreshAllocation);
            consider(Some(expires), TurnTimer::AllocationExpiry);
            for (ip, p) in &self.permissions {
                consider(p.refresh_at, TurnTimer::RefreshPermission(*ip));
                consider(p.installed_until, TurnTimer::PermissionExpiry(*ip));
            }
            for (peer, c) in &self.channels {
                consider(c.refresh_at, TurnTimer::RefreshChannel(*peer));
                consider(c.bound_until, TurnTimer::ChannelExpiry(*peer));
            }
        }
        next
    }

    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------- receiving

    /// RFC 8656 §12.6: data from the peer bound to the channel.
    fn receive_channel_data<'a>(&mut self, packet: &'a [u8]) -> TurnReceive<'a> {
        let Ok(cd) = ChannelData::decode(packet) else {
            self.stats.malformed += 1;
            return TurnReceive::Handled;
        };
        let peer = self.channel_peers.get(&cd.number).copied();
        match peer {
            Some(peer) if self.relayed().is_some() => TurnReceive::Data { peer, data: cd.data },
            _ => {
                self.stats.dropped_data += 1;
                TurnReceive::Handled
            }
        }
    }

    fn receive_stun<'a>(&mut self, now: Instant, msg: &Message<'a>) -> TurnReceive<'a> {
        match msg.class() {
            Class::SuccessResponse | Class::ErrorResponse => self.receive_response(now, msg),
            Class::Indication if msg.method() == Method::DATA => self.receive_data_indication(msg),
            _ => TurnReceive::NotTurn,
        }
    }

    /// RFC 8656 §11.4: data from a peer the client has a permission for.
    fn receive_data_indication<'a>(&mut self, msg: &Message<'a>) -> TurnReceive<'a> {
        // RFC 8489 §6.3.2: unknown comprehension-required attributes discard an indication.
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(data))), None) = (
            msg.get::<XorPeerAddress>(),
            msg.get::<Data>(),
            msg.unknown_comprehension_required().next(),
        ) else {
            self.stats.malformed += 1;
            return TurnReceive::Handled;
        };
        let known = self.relayed().is_some()
            && (self.permissions.contains_key(&peer.ip()) || self.channels.keys().any(|p| p.ip() == peer.ip()));
        if known {
            TurnReceive::Data { peer, data }
        } else {
            self.stats.dropped_data += 1;
            TurnReceive::Handled
        }
    }

    fn receive_response<'a>(&mut self, now: Instant, msg: &Message<'_>) -> TurnReceive<'a> {
        let tid = msg.transaction_id();
        let Some(index) = self.transactions.iter().position(|t| t.tid == tid) else {
            if self.recent.contains(&tid) {
                return TurnReceive::Handled;
            }
            self.stats.unmatched_responses += 1;
            return TurnReceive::NotTurn;
        };
        if msg.method() != self.transactions[index].request.method() {
            self.stats.malformed += 1;
            return TurnReceive::Handled;
        }
        let verified = match (&self.auth, msg.has_integrity()) {
            (Some(auth), true) => {
                if msg.verify_integrity(&auth.key).is_err() {
                    self.stats.unauthenticated_responses += 1;
                    return TurnReceive::Handled;
                }
                true
            }
            _ => false,
        };
        if msg.class() == Class::SuccessResponse {
            if !verified {
                // Forged, or a server that authenticates nobody: either
                // way nothing to build on. The request stays pending.
                self.stats.unauthenticated_responses += 1;
                return TurnReceive::Handled;
            }
            let t = self.transactions.remove(index);
            self.remember(t.tid);
            self.succeeded(now, t.request, msg);
            return TurnReceive::Handled;
        }
        let Ok(Some(ErrorCode { code, reason })) = msg.get::<ErrorCode>() else {
            self.stats.malformed += 1;
            return TurnReceive::Handled;
        };
        let t = self.transactions.remove(index);
        self.remember(t.tid);
        let request = t.request.kind();
        match code {
            // RFC 8489 §9.2.5: a challenge to a request without credentials.
            401 | 438 if !t.authenticated => match self.learn_challenge(msg) {
                Ok(()) => self.start(now, t.request, t.stale),
                Err(error) => self.failed(now, t.request, error),
            },
            401 => self.failed(now, t.request, TurnError::Unauthorized { request }),
            438 if t.stale >= MAX_STALE_NONCE_RETRIES => {
                self.stats.stale_nonces += 1;
                let count = t.stale + 1;
                self.failed(now, t.request, TurnError::StaleNonce { request, count });
            }
            438 => {
                self.stats.stale_nonces += 1;
                match self.learn_challenge(msg) {
                    Ok(()) => self.start(now, t.request, t.stale + 1),
                    Err(error) => self.failed(now, t.request, error),
                }
            }
            300 => {
                let alternate = msg.get::<AlternateServer>().ok().flatten().map(|a| a.0);
                self.failed(now, t.request, TurnError::TryAlternate { request, alternate });
            }
            _ => {
                let error = TurnError::ErrorResponse {
                    request,
                    code,
                    reason: reason.to_owned(),
                };
                self.failed(now, t.request, error);
            }
        }
        TurnReceive::Handled
    }

    /// RFC 8489 §9.2.5: REALM and NONCE from a 401 or 438, and the
    /// password algorithm the server prefers among those it offers.
    fn learn_challenge(&mut self, msg: &Message<'_>) -> Result<(), TurnError> {
        let Ok(Some(Realm(realm))) = msg.get::<Realm>() else {
            return Err(TurnError::BadChallenge("REALM"));
        };
        let Ok(Some(Nonce(nonce))) = msg.get::<Nonce>() else {
            return Err(TurnError::BadChallenge("NONCE"));
        };
        let features = SecurityFeatures::from_nonce(nonce);
        let offered = msg.attributes().find(|a| a.typ == attribute::PASSWORD_ALGORITHMS);
        let (algorithm, algorithms) = match (features.is_some_and(|f| f.password_algorithms), offered) {
            (true, None) => return Err(TurnError::BidDown),
            (true, Some(raw)) => {
                let list = PasswordAlgorithms::decode(raw.value, &msg.transaction_id())
                    .map_err(|_| TurnError::BadChallenge("PASSWORD-ALGORITHMS"))?;
                let first = list.iter().next().ok_or(TurnError::NoSupportedAlgorithm)?;
                (first, Some(raw.value.to_vec()))
            }
            // Without the cookie's bit the list means nothing (§9.2.5).
            (false, _) => (PasswordAlgorithm::Md5, None),
        };
        // An RFC 8489 server (one that sends the cookie) checks
        // MESSAGE-INTEGRITY-SHA256; older ones know only MESSAGE-INTEGRITY.
        let integrity = if features.is_some() {
            IntegrityKind::Sha256
        } else {
            IntegrityKind::Sha1
        };
        let key = match &self.auth {
            Some(a) if a.realm == realm && a.algorithm == algorithm => a.key.clone(),
            _ => IntegrityKey::long_term(&self.server.username, realm, &self.server.password, algorithm)
                .map_err(TurnError::Credentials)?,
        };
        self.auth = Some(Auth {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            algorithm,
            algorithms,
            integrity,
            key,
        });
        Ok(())
    }

    fn succeeded(&mut self, now: Instant, request: Request, msg: &Message<'_>) {
        match request {
            Request::Allocate => self.allocated(now, msg),
            Request::Refresh(Some(0)) => self.close(TurnEvent::Released),
            Request::Refresh(_) => {
                let lifetime = match msg.get::<Lifetime>() {
                    Ok(Some(Lifetime(secs))) => Duration::from_secs(secs.into()),
                    _ => self.config.lifetime.unwrap_or(DEFAULT_LIFETIME),
                };
                if lifetime.is_zero() {
                    return self.close(TurnEvent::Expired);
                }
                if let State::Allocated { .. } = self.state {
                    self.state = allocated_for(now, lifetime);
                }
            }
            Request::CreatePermission(ip) => {
                if let Some(p) = self.permissions.get_mut(&ip) {
                    let new = p.installed_until.is_none();
                    p.installed_until = Some(now + PERMISSION_LIFETIME);
                    p.refresh_at = Some(now + PERMISSION_REFRESH);
                    if new {
                        self.events.push_back(TurnEvent::PermissionCreated(ip));
                    }
                }
            }
            Request::ChannelBind { number, peer } => {
                let Some(c) = self.channels.get_mut(&peer).filter(|c| c.number == number) else {
                    return;
                };
                let new = c.bound_until.is_none();
                c.bound_until = Some(now + CHANNEL_LIFETIME);
                c.refresh_at = Some(now + PERMISSION_REFRESH);
                if new {
                    self.events.push_back(TurnEvent::ChannelBound(peer));
                }
            }
        }
    }

    /// RFC 8656 §7.3: the relayed address, the reflexive one and the
    /// lifetime of a new allocation.
    fn allocated(&mut self, now: Instant, msg: &Message<'_>) {
        let State::Allocating { release_when_done } = self.state else {
            return;
        };
        let Ok(Some(XorRelayedAddress(relayed))) = msg.get::<XorRelayedAddress>() else {
            let error = TurnError::MalformedResponse {
                request: TurnRequest::Allocate,
                reason: "no valid XOR-RELAYED-ADDRESS",
            };
            return self.failed(now, Request::Allocate, error);
        };
        let lifetime = match msg.get::<Lifetime>() {
            Ok(Some(Lifetime(0))) => {
                let error = TurnError::MalformedResponse {
                    request: TurnRequest::Allocate,
                    reason: "LIFETIME 0",
                };
                return self.failed(now, Request::Allocate, error);
            }
            Ok(Some(Lifetime(secs))) => Duration::from_secs(secs.into()),
            _ => DEFAULT_LIFETIME,
        };
        self.relayed = Some(relayed);
        self.mapped = msg.get::<XorMappedAddress>().ok().flatten().map(|m| m.0);
        self.state = allocated_for(now, lifetime);
        self.events.push_back(TurnEvent::Allocated {
            relayed,
            mapped: self.mapped,
        });
        if release_when_done {
            return self.release(now);
        }
        // What the application asked for while allocating.
        let mut refused = Vec::new();
        let ips: Vec<IpAddr> = self.permissions.keys().copied().collect();
        for ip in ips {
            if ip.is_ipv4() != relayed.is_ipv4() {
                refused.push((ip, None));
            } else {
                self.start(now, Request::CreatePermission(ip), 0);
            }
        }
        let channels: Vec<(SocketAddr, u16)> = self.channels.iter().map(|(p, c)| (*p, c.number)).collect();
        for (peer, number) in channels {
            if peer.is_ipv4() != relayed.is_ipv4() {
                refused.push((peer.ip(), Some(peer)));
            } else {
                self.start(now, Request::ChannelBind { number, peer }, 0);
            }
        }
        for (ip, channel) in refused {
            let error = TurnError::FamilyMismatch { peer: ip, relayed };
            match channel {
                Some(peer) => {
                    self.channels.remove(&peer);
                    self.channel_refused(peer, error);
                }
                None => {
                    self.permissions.remove(&ip);
                    self.permission_refused(ip, error);
                }
            }
        }
    }

    fn failed(&mut self, now: Instant, request: Request, error: TurnError) {
        self.last_error = Some(error.clone());
        match request {
            Request::Allocate => self.close(TurnEvent::AllocationFailed(error)),
            // Giving up on a release: the server forgets the allocation
            // when its lifetime ends.
            Request::Refresh(Some(0)) => self.close(TurnEvent::Released),
            Request::Refresh(_) => {
                let State::Allocated { expires, .. } = self.state else {
                    return;
                };
                match error {
                    // RFC 8656 §8.3: the allocation is gone.
                    TurnError::ErrorResponse { code: 437, .. } => self.close(TurnEvent::Expired),
                    // Try again while there is time; expiry ends it otherwise.
                    TurnError::Timeout { .. } if now < expires => {
                        self.start(now, Request::Refresh(self.requested_lifetime()), 0)
                    }
                    // Refused: use what is left, then report Expired.
                    _ => {}
                }
            }
            Request::CreatePermission(ip) => {
                if self.permissions.remove(&ip).is_some() {
                    self.events.push_back(TurnEvent::PermissionFailed(ip));
                }
            }
            Request::ChannelBind { number, peer } => {
                if self.channels.get(&peer).is_some_and(|c| c.number == number) {
                    self.channels.remove(&peer);
                    self.events.push_back(TurnEvent::ChannelFailed(peer));
                }
            }
        }
    }

    fn permission_refused(&mut self, ip: IpAddr, error: TurnError) {
        self.last_error = Some(error);
        self.events.push_back(TurnEvent::PermissionFailed(ip));
    }

    fn channel_refused(&mut self, peer: SocketAddr, error: TurnError) {
        self.last_error = Some(error);
        self.events.push_back(TurnEvent::ChannelFailed(peer));
    }

    fn permission_timers(&mut self, now: Instant) {
        let expired: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, p)| p.installed_until.is_some_and(|t| t <= now))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in expired {
            self.permissions.remove(&ip);
            self.cancel(|r| r == Request::CreatePermission(ip));
            self.events.push_back(TurnEvent::PermissionFailed(ip));
        }
        let due: Vec<IpAddr> = self
            .permissions
            .iter()
            .filter(|(_, p)| p.refresh_at.is_some_and(|t| t <= now))
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            if let Some(p) = self.permissions.get_mut(&ip) {
                p.refresh_at = None;
            }
            self.start(now, Request::CreatePermission(ip), 0);
        }
    }

    fn channel_timers(&mut self, now: Instant) {
        let expired: Vec<SocketAddr> = self
            .channels
            .iter()
            .filter(|(_, c)| c.bound_until.is_some_and(|t| t <= now))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in expired {
            self.channels.remove(&peer);
            self.cancel(|r| matches!(r, Request::ChannelBind { peer: p, .. } if p == peer));
            self.events.push_back(TurnEvent::ChannelFailed(peer));
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter()
            .filter(|(_, c)| c.refresh_at.is_some_and(|t| t <= now))
            .map(|(peer, c)| (*peer, c.number))
            .collect();
        for (peer, number) in due {
            if let Some(c) = self.channels.get_mut(&peer) {
                c.refresh_at = None;
            }
            self.start(now, Request::ChannelBind { number, peer }, 0);
        }
    }

    // ------------------------------------------------------------ helpers

    fn is_open(&self) -> bool {
        matches!(self.state, State::Allocating { .. } | State::Allocated { .. })
    }

    fn requested_lifetime(&self) -> Option<u32> {
        self.config
            .lifetime
            .map(|l| u32::try_from(l.as_secs()).unwrap_or(u32::MAX))
    }

    /// Builds `request` with the current credentials and sends it.
    fn start(&mut self, now: Instant, request: Request, stale: u8) {
        match self.encode(request) {
            Ok((tid, bytes)) => {
                let mut timer = Retransmit::new(self.policy, now);
                // The first transmission is due now.
                if timer.poll(now) == RetransmitAction::Send {
                    self.transmit(bytes.clone());
                }
                self.transactions.push(Transaction {
                    tid,
                    request,
                    bytes,
                    timer,
                    stale,
                    authenticated: self.auth.is_some(),
                });
            }
            Err(error) => {
                let error = TurnError::Encode {
                    request: request.kind(),
                    error,
                };
                self.failed(now, request, error);
            }
        }
    }

    fn encode(&mut self, request: Request) -> Result<(TransactionId, Vec<u8>), natter_stun::Error> {
        let tid = TransactionId(self.rng.gen());
        let mut buf = vec![0u8; REQUEST_BUFFER];
        let typ = MessageType::new(request.method(), Class::Request);
        let mut w = MessageWriter::new(&mut buf, typ, tid)?;
        match request {
            Request::Allocate => {
                w.add(&RequestedTransport::UDP)?;
                if let Some(secs) = self.requested_lifetime() {
                    w.add(&Lifetime(secs))?;
                }
            }
            Request::Refresh(lifetime) => {
                if let Some(secs) = lifetime {
                    w.add(&Lifetime(secs))?;
                }
            }
            Request::CreatePermission(ip) => w.add(&XorPeerAddress(SocketAddr::new(ip, PERMISSION_PORT)))?,
            Request::ChannelBind { number, peer } => {
                w.add(&ChannelNumber(number))?;
                w.add(&XorPeerAddress(peer))?;
            }
        }
        if let Some(auth) = &self.auth {
            w.add(&Username(&self.server.username))?;
            w.add(&Realm(&auth.realm))?;
            w.add(&Nonce(&auth.nonce))?;
            if let Some(list) = &auth.algorithms {
                w.add_raw(attribute::PASSWORD_ALGORITHMS, list)?;
                w.add(&auth.algorithm)?;
            }
            w.add_integrity(&auth.key, auth.integrity)?;
        }
        w.add_fingerprint()?;
        let n = w.finish();
        buf.truncate(n);
        Ok((tid, buf))
    }

    /// Where everything to the server goes: what
    /// [`TurnClient::encode_send`] wrote, and requests.
    pub fn route(&self) -> Route {
        Route {
            transport: self.server.transport,
            source: self.local,
            destination: self.server.address,
        }
    }

    fn transmit(&mut self, data: Vec<u8>) {
        let t = Transmit::new(self.route(), data);
        self.transmits.push_back(t);
    }

    fn remember(&mut self, tid: TransactionId) {
        if self.recent.len() == RECENT_TRANSACTIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(tid);
    }

    /// Drops outstanding requests that match.
    fn cancel(&mut self, matches: impl Fn(Request) -> bool) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.transactions)
            .into_iter()
            .partition(|t| matches(t.request));
        self.transactions = kept;
        for t in gone {
            self.remember(t.tid);
        }
    }

    /// Ends everything with a last event.
    fn close(&mut self, event: TurnEvent) {
        self.cancel(|_| true);
        self.permissions.clear();
        self.channels.clear();
        self.state = State::Closed;
        self.events.push_back(event);
    }
}

/// The allocated state for a lifetime starting now: refresh 60 s before
/// the end, or halfway through a lifetime of two minutes or less.
fn allocated_for(now: Instant, lifetime: Duration) -> State {
    let lifetime = lifetime.min(MAX_LIFETIME);
    let refresh = if lifetime > 2 * REFRESH_MARGIN {
        lifetime - REFRESH_MARGIN
    } else {
        lifetime / 2
    };
    State::Allocated {
        expires: now + lifetime,
        refresh_at: Some(now + refresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(transport: Transport) -> (TurnClient, Instant) {
        let server = TurnServer {
            address: "192.0.2.10:3478".parse().unwrap(),
            transport,
            username: "alice".into(),
            password: "secret".into(),
        };
        let now = Instant::now();
        let mut rng = StdRng::seed_from_u64(7);
        (
            TurnClient::new(server, "192.0.2.1:5000".parse().unwrap(), now, &mut rng),
            now,
        )
    }

    #[test]
    fn refresh_schedule() {
        let now = Instant::now();
        let at = |secs| match allocated_for(now, Duration::from_secs(secs)) {
            State::Allocated { refresh_at, .. } => refresh_at.map(|t| (t - now).as_secs()),
            _ => None,
        };
        assert_eq!(at(600), Some(540));
        assert_eq!(at(120), Some(60));
        assert_eq!(at(60), Some(30));
        assert_eq!(at(u32::MAX.into()), Some(86_400 - 60));
    }

    #[test]
    fn first_allocate_has_no_credentials() {
        let (mut c, _) = client(Transport::Udp);
        let t = c.poll_transmit().expect("an Allocate");
        let msg = Message::decode(&t.data).expect("decodes");
        assert_eq!(msg.message_type(), MessageType::new(Method::ALLOCATE, Class::Request));
        assert_eq!(msg.get::<RequestedTransport>(), Ok(Some(RequestedTransport::UDP)));
        assert!(!msg.has_integrity());
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn tcp_sends_once_and_times_out_after_39_5_s() {
        let (mut c, now) = client(Transport::Tcp);
        assert!(c.poll_transmit().is_some());
        let deadline = c.poll_timeout().expect("a deadline");
        assert_eq!(deadline - now, Duration::from_millis(39_500));
        c.handle_timeout(deadline);
        assert!(c.poll_transmit().is_none());
        assert!(matches!(
            c.poll_event(),
            Some(TurnEvent::AllocationFailed(TurnError::Timeout { transmissions: 1, .. }))
        ));
        assert_eq!(c.state(), TurnState::Closed);
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn garbage_never_panics() {
        let (mut c, now) = client(Transport::Udp);
        let sent = c.poll_transmit().unwrap().data;
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0x40, 0, 0, 9], vec![0xff; 40]];
        // Every truncation and a bit flip in every byte of a real message.
        for n in 0..sent.len() {
            inputs.push(sent[..n].to_vec());
            let mut flipped = sent.clone();
            flipped[n] ^= 0x11;
            inputs.push(flipped);
        }
        // Its own request reflected back as a success and an error
        // response (class bits 0x0100 and 0x0110 of the type).
        for class in [0x0100u16, 0x0110] {
            let mut reflected = sent.clone();
            reflected[0] |= (class >> 8) as u8;
            reflected[1] |= class as u8;
            inputs.push(reflected);
        }
        for input in &inputs {
            let _ = c.handle_receive(now, input);
        }
        assert_eq!(c.state(), TurnState::Allocating);
        assert!(c.stats().malformed + c.stats().unauthenticated_responses > 0);
    }
}
