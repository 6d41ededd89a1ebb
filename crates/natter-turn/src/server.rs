//! The TURN server state machine (RFC 8656, RFC 6062), without I/O.
//!
//! Methods, in quinn-proto's taxonomy:
//! - getters: [`Server::stats`], [`Server::allocation_count`];
//! - input: [`Server::handle_client`] (a packet from a client),
//!   [`Server::handle_peer`] (a datagram that arrived at a relayed
//!   address), [`Server::finish_allocate`] and [`Server::finish_connect`]
//!   (the I/O layer's answers to [`ClientAction::Allocate`] and
//!   [`ClientAction::Connect`]), [`Server::handle_peer_connection`] and
//!   [`Server::handle_peer_connection_closed`] (TCP relays),
//!   [`Server::handle_client_closed`] and [`Server::handle_timeout`];
//! - output: the [`ClientAction`] each input returns at once (the hot
//!   paths allocate nothing: replies are written into the caller's buffer
//!   and relayed data is framed in place), then [`Server::poll_event`]
//!   for what the I/O layer must release, and [`Server::poll_timeout`].

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_stun::{
    attribute, AdditionalAddressFamily, AddressErrorCode, AddressFamily, ChannelData, ChannelNumber, Class,
    ConnectionId, Data, DontFragment, ErrorCode, EvenPort, IntegrityKey, IntegrityKind, Lifetime, Message, MessageType,
    MessageWriter, Method, Nonce, PacketKind, PasswordAlgorithm, PasswordAlgorithms, Realm, RequestedAddressFamily,
    RequestedTransport, ReservationToken, SecurityFeatures, Software, TransactionId, UnknownAttributes, UserHash,
    Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress, LEGACY_CHANNEL_NUMBERS,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::allocation::{Allocation, PeerConnection, RelayTransport};
use crate::auth::{Credentials, NonceCheck, NonceMinter};
use crate::bandwidth::TokenBucket;
use crate::peer_filter::PeerFilter;
use crate::rate_limit::SourceLimiter;
use crate::stats::Stats;
use crate::{FiveTuple, Transport};

/// RFC 8656 §7.2: the default allocation lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 8656 §7.2: lifetimes above an hour are cut to an hour.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// RFC 8656 §7.2: a reserved port is held for about 30 seconds. The I/O
/// layer keeps reservations, because the next request may reach another
/// worker.
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);
/// RFC 6062 §5.3, §5.4: a peer connection waits 30 s for ConnectionBind.
pub const CONNECTION_BIND_TIMEOUT: Duration = Duration::from_secs(30);
/// How often expired state is swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes a peer datagram must have free in front of it in the buffer
/// given to [`Server::handle_peer`]: a STUN header, XOR-PEER-ADDRESS for
/// IPv6 and the DATA attribute's header.
pub const PEER_HEADROOM: usize = 20 + 24 + 4;
/// Bytes free after a peer datagram for padding.
pub const PEER_TAILROOM: usize = 3;

/// How the server is set up. Secrets live in `credentials` and
/// `nonce_secret`; `Debug` shows neither.
#[derive(Clone)]
pub struct ServerConfig {
    pub credentials: Credentials,
    /// Key for stateless nonces; the same on every worker.
    pub nonce_secret: [u8; 32],
    pub nonce_lifetime: Duration,
    pub peer_filter: PeerFilter,
    /// Relay address families the I/O layer can bind.
    pub relay_ipv4: bool,
    pub relay_ipv6: bool,
    /// Accept RFC 6062 TCP allocations.
    pub tcp_relay: bool,
    /// Per-allocation cap in bytes per second, both directions; 0: none.
    pub max_bps: u64,
    /// Replies to unauthenticated requests per source and second, and burst.
    pub unauthenticated_rate: (u32, u32),
    pub software: Option<String>,
    /// Seeds the generator of transaction and connection ids.
    pub seed: [u8; 32],
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("credentials", &self.credentials)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("relay_ipv4", &self.relay_ipv4)
            .field("relay_ipv6", &self.relay_ipv6)
            .field("tcp_relay", &self.tcp_relay)
            .field("max_bps", &self.max_bps)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// Defaults for the given credentials: IPv4 relays, UDP and TCP
    /// relaying, no bandwidth cap, 10-minute nonces, at most 5 replies
    /// per second (burst 20) to an unauthenticated source.
    pub fn new(credentials: Credentials, nonce_secret: [u8; 32], seed: [u8; 32]) -> Self {
        ServerConfig {
            credentials,
            nonce_secret,
            nonce_lifetime: Duration::from_secs(600),
            peer_filter: PeerFilter::default(),
            relay_ipv4: true,
            relay_ipv6: false,
            tcp_relay: true,
            max_bps: 0,
            unauthenticated_rate: (5, 20),
            software: Some(concat!("natter ", env!("CARGO_PKG_VERSION")).to_owned()),
            seed,
        }
    }
}

/// What the I/O layer must do right after an input.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientAction<'a> {
    /// Nothing to send; the packet was handled or dropped (and counted).
    None,
    /// Send the first `n` bytes of the reply buffer to the client.
    Reply(usize),
    /// Send `data` from the relayed address `from` to `to`.
    Relay {
        from: SocketAddr,
        to: SocketAddr,
        data: &'a [u8],
    },
    /// Bind relayed addresses as asked, then call
    /// [`Server::finish_allocate`] with the outcome.
    Allocate(Box<AllocateRequest>),
    /// Send the reply, then open a TCP connection from the relayed
    /// address `relay` to `peer` and report with [`Server::finish_connect`].
    Connect {
        id: u32,
        relay: SocketAddr,
        peer: SocketAddr,
    },
    /// Send the first `reply` bytes of the reply buffer on this client
    /// connection, then splice it to the peer connection `id` (RFC 6062
    /// §5.4): from now on bytes flow between them untouched.
    BindConnection { id: u32, reply: usize },
}

/// An allocation the core has authorised; the I/O layer binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocateRequest {
    pub token: u64,
    pub client: FiveTuple,
    pub username: String,
    pub transport: RelayTransport,
    /// The relayed address family.
    pub family: AddressFamily,
    /// RFC 8656 §7.2: also an IPv6 relayed address (dual stack).
    pub additional_ipv6: bool,
    /// RFC 8656 §7.2: an even port, and whether to reserve the next one.
    pub even_port: Option<bool>,
    /// RFC 8656 §7.2: use the port an earlier request reserved under
    /// this RESERVATION-TOKEN (508 if it is unknown or expired).
    pub reservation: Option<[u8; 8]>,
    /// RFC 8656 §7.2: send with the DF bit set.
    pub dont_fragment: bool,
}

/// What the I/O layer bound for an [`AllocateRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocateOutcome {
    Bound {
        relay: SocketAddr,
        /// The IPv6 address of a dual-stack request, if it could be bound.
        additional: Option<SocketAddr>,
        /// The token under which the next port is held (EVEN-PORT R bit).
        reservation: Option<[u8; 8]>,
    },
    /// user-quota or total-quota reached: 486.
    QuotaReached,
    /// No port could be bound: 508.
    NoCapacity,
}

/// What the I/O layer must release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An allocation ended: close its relayed sockets and give its quota back.
    AllocationClosed {
        client: FiveTuple,
        relays: Vec<SocketAddr>,
        username: String,
        connections: Vec<u32>,
    },
    /// A peer connection was never bound: close it.
    ConnectionExpired { id: u32 },
}

/// A request that passed authentication (RFC 8489 §9.2.4).
struct Authenticated {
    username: String,
    key: IntegrityKey,
    kind: IntegrityKind,
}

/// Context of a request, for building its response.
#[derive(Clone, Copy)]
struct Request {
    method: Method,
    tid: TransactionId,
    from: FiveTuple,
    /// Length of the request, the budget of an unauthenticated reply
    /// over UDP.
    len: usize,
    fingerprint: bool,
}

struct PendingAllocate {
    request: Request,
    username: String,
    key: IntegrityKey,
    kind: IntegrityKind,
    lifetime: Duration,
    transport: RelayTransport,
    additional_ipv6: bool,
}

struct PendingConnect {
    request: Request,
    peer: SocketAddr,
    kind: IntegrityKind,
    allocation: FiveTuple,
}

/// The TURN server core. One per worker thread.
pub struct Server {
    config: ServerConfig,
    nonces: NonceMinter,
    start: Instant,
    start_unix: u64,
    allocations: HashMap<FiveTuple, Allocation>,
    by_relay: HashMap<SocketAddr, FiveTuple>,
    pending_allocations: HashMap<u64, PendingAllocate>,
    pending_connects: HashMap<u32, PendingConnect>,
    connection_owner: HashMap<u32, FiveTuple>,
    limiter: SourceLimiter,
    /// Largest reply to an unauthenticated UDP request, whatever its size.
    allowance: usize,
    rng: StdRng,
    next_token: u64,
    next_sweep: Instant,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Server {
    /// `unix_now` is the wall-clock time at `now`, for REST usernames.
    pub fn new(config: ServerConfig, now: Instant, unix_now: u64) -> Self {
        let features = SecurityFeatures {
            password_algorithms: true,
            username_anonymity: config.credentials.supports_userhash(),
        };
        let (rate, burst) = config.unauthenticated_rate;
        let mut server = Server {
            nonces: NonceMinter::new(&config.nonce_secret, config.nonce_lifetime.as_secs(), features),
            rng: StdRng::from_seed(config.seed),
            config,
            start: now,
            start_unix: unix_now,
            allocations: HashMap::new(),
            by_relay: HashMap::new(),
            pending_allocations: HashMap::new(),
            pending_connects: HashMap::new(),
            connection_owner: HashMap::new(),
            limiter: SourceLimiter::new(rate, burst, 65_536),
            allowance: 0,
            next_token: 1,
            next_sweep: now + SWEEP_INTERVAL,
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        server.allowance = server.measure_allowance(now);
        server.stats = Stats::default();
        server
    }

    /// The size of the largest challenge this server sends (a 401 with
    /// its realm, a nonce, PASSWORD-ALGORITHMS and FINGERPRINT), or 128
    /// bytes if that is more; replies to unauthenticated UDP requests
    /// never exceed the larger of this and the request.
    pub fn unauthenticated_allowance(&self) -> usize {
        self.allowance
    }

    fn measure_allowance(&mut self, now: Instant) -> usize {
        let request = Request {
            method: Method::ALLOCATE,
            tid: TransactionId::default(),
            from: FiveTuple {
                transport: Transport::Tcp,
                client: SocketAddr::from(([0; 16], 0)),
                server: SocketAddr::from(([0; 16], 0)),
            },
            len: 0,
            fingerprint: true,
        };
        let mut scratch = [0u8; 1024];
        match self.challenge(now, request, &mut scratch, ErrorCode::UNAUTHORIZED) {
            ClientAction::Reply(n) => n.max(128),
            _ => 128,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    /// The allocation a client owns, if any.
    pub fn allocation(&self, client: &FiveTuple) -> Option<&Allocation> {
        self.allocations.get(client)
    }

    fn unix(&self, now: Instant) -> u64 {
        self.start_unix + now.saturating_duration_since(self.start).as_secs()
    }

    /// A packet from a client. Replies are written into `reply`, which
    /// should hold at least 1500 bytes.
    pub fn handle_client<'a>(
        &mut self,
        now: Instant,
        from: FiveTuple,
        packet: &'a [u8],
        reply: &mut [u8],
    ) -> ClientAction<'a> {
        match PacketKind::of(packet) {
            PacketKind::ChannelData => self.channel_data(now, from, packet),
            PacketKind::Stun => match Message::decode(packet) {
                Ok(msg) => self.stun(now, from, &msg, reply),
                Err(_) => {
                    self.stats.malformed += 1;
                    ClientAction::None
                }
            },
            _ => {
                self.stats.malformed += 1;
                ClientAction::None
            }
        }
    }

    /// RFC 8656 §12.4: ChannelData from the client goes to the peer.
    fn channel_data<'a>(&mut self, now: Instant, from: FiveTuple, packet: &'a [u8]) -> ClientAction<'a> {
        let Ok(cd) = ChannelData::decode(packet) else {
            self.stats.malformed += 1;
            return ClientAction::None;
        };
        let Some(alloc) = self.allocations.get_mut(&from) else {
            self.stats.no_permission += 1;
            return ClientAction::None;
        };
        let Some(peer) = alloc.channel_peer(cd.number, now) else {
            self.stats.no_permission += 1;
            return ClientAction::None;
        };
        relay_to_peer(&self.config.peer_filter, &mut self.stats, alloc, now, peer, cd.data)
    }

    fn stun<'a>(&mut self, now: Instant, from: FiveTuple, msg: &Message<'a>, reply: &mut [u8]) -> ClientAction<'a> {
        let request = Request {
            method: msg.method(),
            tid: msg.transaction_id(),
            from,
            len: msg.as_bytes().len(),
            fingerprint: msg.has_fingerprint(),
        };
        match msg.class() {
            Class::Request => {}
            Class::Indication => {
                return match msg.method() {
                    // RFC 8489 §6.3.2: unknown comprehension-required attributes discard it.
                    Method::SEND if msg.unknown_comprehension_required().next().is_none() => {
                        self.send_indication(now, from, msg)
                    }
                    _ => ClientAction::None,
                };
            }
            // A server sends no requests, so it expects no responses.
            Class::SuccessResponse | Class::ErrorResponse => {
                self.stats.malformed += 1;
                return ClientAction::None;
            }
        }
        self.stats.requests += 1;
        let unknown = UnknownAttributes::collect(msg.unknown_comprehension_required());
        if !unknown.is_empty() {
            return self.unauthenticated_error(now, request, reply, ErrorCode::UNKNOWN_ATTRIBUTE, |w| w.add(&unknown));
        }
        if msg.method() == Method::BINDING {
            self.stats.binding_requests += 1;
            return self.binding(now, request, reply);
        }
        let known = matches!(
            msg.method(),
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
        );
        if !known {
            return self.unauthenticated_error(now, request, reply, ErrorCode::BAD_REQUEST, |_| Ok(()));
        }
        let auth = match self.authenticate(now, request, msg, reply) {
            Ok(auth) => auth,
            Err(action) => return action,
        };
        let result = match msg.method() {
            Method::ALLOCATE => return self.allocate(now, request, msg, auth, reply),
            Method::REFRESH => self.refresh(now, request, msg, &auth, reply),
            Method::CREATE_PERMISSION => self.create_permission(now, request, msg, &auth, reply),
            Method::CHANNEL_BIND => self.channel_bind(now, request, msg, &auth, reply),
            Method::CONNECT => return self.connect(now, request, msg, &auth, reply),
            _ => return self.connection_bind(request, msg, &auth, reply),
        };
        match result {
            Ok(n) => ClientAction::Reply(n),
            Err(code) => self.error(request, reply, Some(&auth.key), auth.kind, code, |_| Ok(())),
        }
    }

    /// RFC 8489 §7.3.1: XOR-MAPPED-ADDRESS of the source.
    fn binding(&mut self, now: Instant, request: Request, reply: &mut [u8]) -> ClientAction<'static> {
        let n = write_response(
            reply,
            request,
            Class::SuccessResponse,
            None,
            IntegrityKind::Sha1,
            None,
            None,
            |w| w.add(&XorMappedAddress(request.from.client)),
        );
        self.unauthenticated_reply(now, request, n)
    }

    /// RFC 8489 §9.2.4: the long-term credential checks, in order.
    fn authenticate(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        reply: &mut [u8],
    ) -> Result<Authenticated, ClientAction<'static>> {
        if !msg.has_integrity() {
            return Err(self.challenge(now, request, reply, ErrorCode::UNAUTHORIZED));
        }
        let username = match (msg.get::<Username>(), msg.get::<UserHash>()) {
            (Ok(Some(u)), _) => Some(u.0.to_owned()),
            (_, Ok(Some(h))) => match self.config.credentials.username_for_hash(&h.0) {
                Some(u) => Some(u.to_owned()),
                None => {
                    self.stats.auth_failures += 1;
                    return Err(self.challenge(now, request, reply, ErrorCode::UNAUTHORIZED));
                }
            },
            _ => None,
        };
        let (Some(username), Ok(Some(realm)), Ok(Some(nonce))) = (username, msg.get::<Realm>(), msg.get::<Nonce>())
        else {
            return Err(self.unauthenticated_error(now, request, reply, ErrorCode::BAD_REQUEST, |_| Ok(())));
        };
        let unix = self.unix(now);
        if self.nonces.check(nonce.0, request.from.client.ip(), unix) != NonceCheck::Valid {
            self.stats.stale_nonces += 1;
            return Err(self.challenge(now, request, reply, ErrorCode::STALE_NONCE));
        }
        let algorithm = match negotiated_algorithm(msg) {
            Some(a) => a,
            None => return Err(self.unauthenticated_error(now, request, reply, ErrorCode::BAD_REQUEST, |_| Ok(()))),
        };
        if realm.0 != self.config.credentials.realm() {
            self.stats.auth_failures += 1;
            return Err(self.challenge(now, request, reply, ErrorCode::UNAUTHORIZED));
        }
        // An existing allocation's key saves deriving one per request.
        if let Some(alloc) = self.allocations.get(&request.from) {
            if alloc.username != username {
                self.stats.auth_failures += 1;
                return Err(self.unauthenticated_error(now, request, reply, ErrorCode::WRONG_CREDENTIALS, |_| Ok(())));
            }
            // A REST username stops working when it expires, also for
            // the allocation it made.
            if self.config.credentials.is_expired(&username, unix) {
                self.stats.auth_failures += 1;
                return Err(self.challenge(now, request, reply, ErrorCode::UNAUTHORIZED));
            }
            if let Ok(kind) = msg.verify_integrity(&alloc.key) {
                return Ok(Authenticated {
                    username,
                    key: alloc.key.clone(),
                    kind,
                });
            }
        }
        let verified = self.config.credentials.keys(&username, unix).ok().and_then(|keys| {
            keys.into_iter().find_map(|k| {
                let key = k.key(algorithm);
                msg.verify_integrity(key).ok().map(|kind| (key.clone(), kind))
            })
        });
        match verified {
            Some((key, kind)) => Ok(Authenticated { username, key, kind }),
            None => {
                self.stats.auth_failures += 1;
                Err(self.challenge(now, request, reply, ErrorCode::UNAUTHORIZED))
            }
        }
    }

    /// A 401 or 438 with REALM, a fresh NONCE and PASSWORD-ALGORITHMS.
    fn challenge(
        &mut self,
        now: Instant,
        request: Request,
        reply: &mut [u8],
        code: ErrorCode,
    ) -> ClientAction<'static> {
        let nonce = self.nonces.mint(request.from.client.ip(), self.unix(now));
        let realm = self.config.credentials.realm().to_owned();
        let features = self.nonces.features();
        self.unauthenticated_error(now, request, reply, code, |w| {
            w.add(&Realm(&realm))?;
            w.add(&Nonce(&nonce))?;
            if features.password_algorithms {
                w.add(&server_algorithms())?;
            }
            Ok(())
        })
    }

    /// An error reply without MESSAGE-INTEGRITY.
    fn unauthenticated_error(
        &mut self,
        now: Instant,
        request: Request,
        reply: &mut [u8],
        code: ErrorCode,
        attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>,
    ) -> ClientAction<'static> {
        self.stats.error_responses += 1;
        let n = write_response(
            reply,
            request,
            Class::ErrorResponse,
            None,
            IntegrityKind::Sha1,
            Some(code),
            None,
            attrs,
        );
        self.unauthenticated_reply(now, request, n)
    }

    /// Sends a reply to a request that proved nothing about its source,
    /// within the per-source rate. Over UDP, where the source may be
    /// spoofed, the reply to a request may not be larger than the
    /// request, but for an allowance that lets the smallest legitimate
    /// requests through: a bare 20-byte Binding request, and a first
    /// Allocate that must learn the realm and a nonce (see
    /// [`Server::unauthenticated_allowance`]).
    fn unauthenticated_reply(&mut self, now: Instant, request: Request, n: usize) -> ClientAction<'static> {
        let spoofable = request.from.transport == Transport::Udp;
        let too_big = spoofable && n > request.len.max(self.allowance);
        if n == 0 || too_big || (spoofable && !self.limiter.allow(request.from.client.ip(), now)) {
            self.stats.unauthenticated_replies_suppressed += 1;
            return ClientAction::None;
        }
        ClientAction::Reply(n)
    }

    /// An error reply protected with the request's key.
    fn error(
        &mut self,
        request: Request,
        reply: &mut [u8],
        key: Option<&IntegrityKey>,
        kind: IntegrityKind,
        code: ErrorCode,
        attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>,
    ) -> ClientAction<'static> {
        self.stats.error_responses += 1;
        let software = self.config.software.as_deref();
        match write_response(
            reply,
            request,
            Class::ErrorResponse,
            key,
            kind,
            Some(code),
            software,
            attrs,
        ) {
            0 => ClientAction::None,
            n => ClientAction::Reply(n),
        }
    }

    fn success(
        &self,
        request: Request,
        reply: &mut [u8],
        key: &IntegrityKey,
        kind: IntegrityKind,
        attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>,
    ) -> usize {
        let software = self.config.software.as_deref();
        write_response(
            reply,
            request,
            Class::SuccessResponse,
            Some(key),
            kind,
            None,
            software,
            attrs,
        )
    }

    /// RFC 8656 §7.2 (and RFC 6062 §5.1 for TCP).
    fn allocate(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        auth: Authenticated,
        reply: &mut [u8],
    ) -> ClientAction<'static> {
        let fail = |s: &mut Self, reply: &mut [u8], code| {
            s.error(request, reply, Some(&auth.key), auth.kind, code, |_| Ok(()))
        };
        if let Some(alloc) = self.allocations.get(&request.from) {
            if alloc.created_by != request.tid {
                return fail(self, reply, ErrorCode::ALLOCATION_MISMATCH);
            }
            // A retransmission: answer as the first time.
            let (relays, lifetime) = (alloc.relays.clone(), alloc.expires.saturating_duration_since(now));
            let (reservation, v6_error) = (
                alloc.reservation,
                alloc.ipv6_refused.then_some(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED),
            );
            let n = self.success(request, reply, &auth.key, auth.kind, |w| {
                allocate_success(w, request.from.client, &relays, lifetime, reservation, v6_error)
            });
            return ClientAction::Reply(n);
        }
        // The I/O layer is still binding for this 5-tuple.
        if let Some(p) = self
            .pending_allocations
            .values()
            .find(|p| p.request.from == request.from)
        {
            if p.request.tid == request.tid {
                return ClientAction::None;
            }
            return fail(self, reply, ErrorCode::ALLOCATION_MISMATCH);
        }
        let transport = match msg.get::<RequestedTransport>() {
            Ok(Some(RequestedTransport::UDP)) => RelayTransport::Udp,
            Ok(Some(RequestedTransport::TCP)) if self.config.tcp_relay => {
                if request.from.transport == Transport::Udp {
                    return fail(self, reply, ErrorCode::BAD_REQUEST);
                }
                RelayTransport::Tcp
            }
            Ok(Some(_)) => return fail(self, reply, ErrorCode::UNSUPPORTED_TRANSPORT_PROTOCOL),
            _ => return fail(self, reply, ErrorCode::BAD_REQUEST),
        };
        let (Ok(even_port), Ok(reservation), Ok(requested), Ok(additional), Ok(dont_fragment), Ok(_)) = (
            msg.get::<EvenPort>(),
            msg.get::<ReservationToken>(),
            msg.get::<RequestedAddressFamily>(),
            msg.get::<AdditionalAddressFamily>(),
            msg.get::<DontFragment>(),
            msg.get::<Lifetime>(),
        ) else {
            return fail(self, reply, ErrorCode::BAD_REQUEST);
        };
        // RFC 8656 §7.2: combinations that make no sense.
        let conflicting = (reservation.is_some()
            && (even_port.is_some() || requested.is_some() || additional.is_some()))
            || (requested.is_some() && additional.is_some())
            || (even_port.is_some() && additional.is_some())
            || additional.is_some_and(|a| a.0 != AddressFamily::V6);
        if conflicting {
            return fail(self, reply, ErrorCode::BAD_REQUEST);
        }
        let family = requested.map_or(AddressFamily::V4, |r| r.0);
        let family_ok = match family {
            AddressFamily::V4 => self.config.relay_ipv4,
            AddressFamily::V6 => self.config.relay_ipv6,
        };
        if !family_ok {
            return fail(self, reply, ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
        }
        let lifetime = requested_lifetime(msg);
        let token = self.next_token;
        self.next_token += 1;
        let additional_ipv6 = additional.is_some();
        self.pending_allocations.insert(
            token,
            PendingAllocate {
                request,
                username: auth.username.clone(),
                key: auth.key,
                kind: auth.kind,
                lifetime,
                transport,
                additional_ipv6,
            },
        );
        ClientAction::Allocate(Box::new(AllocateRequest {
            token,
            client: request.from,
            username: auth.username,
            transport,
            family,
            additional_ipv6: additional_ipv6 && self.config.relay_ipv6,
            even_port: even_port.map(|e| e.reserve),
            reservation: reservation.map(|t| t.0),
            dont_fragment: dont_fragment.is_some(),
        }))
    }

    /// Completes an Allocate with what the I/O layer bound; returns the
    /// length of the reply to send to `request.client`, 0 for none.
    pub fn finish_allocate(&mut self, now: Instant, token: u64, outcome: AllocateOutcome, reply: &mut [u8]) -> usize {
        let Some(p) = self.pending_allocations.remove(&token) else {
            return 0;
        };
        let (relay, additional, reservation) = match outcome {
            AllocateOutcome::Bound {
                relay,
                additional,
                reservation,
            } => (relay, additional, reservation),
            AllocateOutcome::QuotaReached | AllocateOutcome::NoCapacity => {
                let code = if outcome == AllocateOutcome::QuotaReached {
                    ErrorCode::ALLOCATION_QUOTA_REACHED
                } else {
                    ErrorCode::INSUFFICIENT_CAPACITY
                };
                return match self.error(p.request, reply, Some(&p.key), p.kind, code, |_| Ok(())) {
                    ClientAction::Reply(n) => n,
                    _ => 0,
                };
            }
        };
        let mut relays = vec![relay];
        relays.extend(additional);
        if self.allocations.contains_key(&p.request.from) {
            // Cannot happen while allocate() refuses a second pending
            // request per 5-tuple; never overwrite a live allocation.
            self.events.push_back(Event::AllocationClosed {
                client: p.request.from,
                relays,
                username: p.username,
                connections: Vec::new(),
            });
            return 0;
        }
        let auth = Authenticated {
            username: p.username,
            key: p.key,
            kind: p.kind,
        };
        let v6_error = (p.additional_ipv6 && additional.is_none()).then_some(ErrorCode::ADDRESS_FAMILY_NOT_SUPPORTED);
        let n = self.success(p.request, reply, &auth.key, auth.kind, |w| {
            allocate_success(w, p.request.from.client, &relays, p.lifetime, reservation, v6_error)
        });
        for r in &relays {
            self.by_relay.insert(*r, p.request.from);
        }
        self.allocations.insert(
            p.request.from,
            Allocation {
                client: p.request.from,
                relays,
                transport: p.transport,
                expires: now + p.lifetime,
                username: auth.username,
                key: auth.key,
                created_by: p.request.tid,
                permissions: HashMap::new(),
                channels: HashMap::new(),
                channel_of_peer: HashMap::new(),
                connections: HashMap::new(),
                reservation,
                ipv6_refused: v6_error.is_some(),
                bandwidth: (self.config.max_bps > 0).then(|| TokenBucket::new(self.config.max_bps / 8, now)),
            },
        );
        self.stats.allocations_created += 1;
        n
    }

    /// RFC 8656 §8.
    fn refresh(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        auth: &Authenticated,
        reply: &mut [u8],
    ) -> Result<usize, ErrorCode<'static>> {
        if !self.allocations.contains_key(&request.from) {
            return Err(ErrorCode::ALLOCATION_MISMATCH);
        }
        let lifetime = match msg.get::<Lifetime>() {
            Ok(Some(Lifetime(0))) => Duration::ZERO,
            Ok(_) => requested_lifetime(msg),
            Err(_) => return Err(ErrorCode::BAD_REQUEST),
        };
        if lifetime.is_zero() {
            self.remove_allocation(&request.from);
            self.stats.allocations_deleted += 1;
        } else if let Some(alloc) = self.allocations.get_mut(&request.from) {
            alloc.expires = now + lifetime;
        }
        Ok(self.success(request, reply, &auth.key, auth.kind, |w| {
            w.add(&Lifetime(lifetime.as_secs() as u32))
        }))
    }

    /// RFC 8656 §10.
    fn create_permission(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        auth: &Authenticated,
        reply: &mut [u8],
    ) -> Result<usize, ErrorCode<'static>> {
        let alloc = self
            .allocations
            .get(&request.from)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        let tid = msg.transaction_id();
        let mut peers = msg
            .attributes()
            .filter(|a| a.typ == attribute::XOR_PEER_ADDRESS)
            .peekable();
        if peers.peek().is_none() {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let mut ips = Vec::new();
        for a in peers {
            let peer = <XorPeerAddress as natter_stun::Attribute>::decode(a.value, &tid)
                .map_err(|_| ErrorCode::BAD_REQUEST)?
                .0;
            check_peer(&self.config.peer_filter, &mut self.stats, alloc, peer)?;
            ips.push(peer.ip());
        }
        let alloc = self
            .allocations
            .get_mut(&request.from)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if !alloc.has_room_for(&ips) {
            return Err(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        for ip in ips {
            alloc.permit(ip, now);
        }
        Ok(self.success(request, reply, &auth.key, auth.kind, |_| Ok(())))
    }

    /// RFC 8656 §11.
    fn channel_bind(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        auth: &Authenticated,
        reply: &mut [u8],
    ) -> Result<usize, ErrorCode<'static>> {
        let alloc = self
            .allocations
            .get(&request.from)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if alloc.transport == RelayTransport::Tcp {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let (Ok(Some(ChannelNumber(number))), Ok(Some(XorPeerAddress(peer)))) =
            (msg.get::<ChannelNumber>(), msg.get::<XorPeerAddress>())
        else {
            return Err(ErrorCode::BAD_REQUEST);
        };
        // Clients of RFC 5766 use up to 0x7FFF.
        if !LEGACY_CHANNEL_NUMBERS.contains(&number) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        check_peer(&self.config.peer_filter, &mut self.stats, alloc, peer)?;
        let alloc = self
            .allocations
            .get_mut(&request.from)
            .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
        if !alloc.has_room_for(&[peer.ip()]) {
            return Err(ErrorCode::INSUFFICIENT_CAPACITY);
        }
        if !alloc.bind_channel(number, peer, now) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        alloc.permit(peer.ip(), now);
        Ok(self.success(request, reply, &auth.key, auth.kind, |_| Ok(())))
    }

    /// RFC 8656 §11.2: a Send indication's data goes to the peer.
    fn send_indication<'a>(&mut self, now: Instant, from: FiveTuple, msg: &Message<'a>) -> ClientAction<'a> {
        let (Ok(Some(XorPeerAddress(peer))), Ok(Some(Data(data)))) = (msg.get::<XorPeerAddress>(), msg.get::<Data>())
        else {
            self.stats.malformed += 1;
            return ClientAction::None;
        };
        match self.allocations.get_mut(&from) {
            Some(alloc) if alloc.transport == RelayTransport::Udp => {
                relay_to_peer(&self.config.peer_filter, &mut self.stats, alloc, now, peer, data)
            }
            _ => {
                self.stats.no_permission += 1;
                ClientAction::None
            }
        }
    }

    /// A datagram from `peer` arrived at the relayed address `relay`. It
    /// lies in `buf[PEER_HEADROOM..PEER_HEADROOM + len]`, and `buf` has
    /// [`PEER_TAILROOM`] bytes after it. On success the ChannelData
    /// message or Data indication to send to the client is framed in
    /// place; the returned range of `buf` is what to send.
    pub fn handle_peer(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<(FiveTuple, std::ops::Range<usize>)> {
        let alloc = self.by_relay.get(&relay).and_then(|c| self.allocations.get_mut(c));
        let Some(alloc) = alloc else {
            self.stats.no_permission += 1;
            return None;
        };
        if !alloc.has_permission(peer.ip(), now) {
            self.stats.no_permission += 1;
            return None;
        }
        if let Some(bucket) = &mut alloc.bandwidth {
            if !bucket.take(len as u64, now) {
                self.stats.over_bandwidth += 1;
                return None;
            }
        }
        let client = alloc.client;
        let stream = client.transport != Transport::Udp;
        if buf.len() < PEER_HEADROOM + len + PEER_TAILROOM {
            return None;
        }
        let range = match alloc.channel_for(&peer, now) {
            Some(number) => {
                let start = PEER_HEADROOM - natter_stun::CHANNEL_DATA_HEADER_LEN;
                let n = ChannelData::encode_header(&mut buf[start..], number, len, stream).ok()?;
                start..start + n
            }
            None => {
                // RFC 8656 §11.3: a Data indication with XOR-PEER-ADDRESS and DATA.
                let mut head = [0u8; PEER_HEADROOM];
                let typ = MessageType::new(Method::DATA, Class::Indication);
                let mut w = MessageWriter::new(&mut head, typ, TransactionId(self.rng.gen())).ok()?;
                w.add(&XorPeerAddress(peer)).ok()?;
                let pad = w.add_header_of_following_value(attribute::DATA, len).ok()?;
                let n = w.finish();
                let start = PEER_HEADROOM - n;
                buf[start..PEER_HEADROOM].copy_from_slice(&head[..n]);
                buf[PEER_HEADROOM + len..PEER_HEADROOM + len + pad].fill(0);
                start..PEER_HEADROOM + len + pad
            }
        };
        self.stats.relayed_to_client += 1;
        self.stats.relayed_to_client_bytes += len as u64;
        Some((client, range))
    }

    /// RFC 6062 §5.2: the client asks for a TCP connection to a peer.
    fn connect(
        &mut self,
        now: Instant,
        request: Request,
        msg: &Message<'_>,
        auth: &Authenticated,
        reply: &mut [u8],
    ) -> ClientAction<'static> {
        let result = (|| {
            let alloc = self
                .allocations
                .get(&request.from)
                .ok_or(ErrorCode::ALLOCATION_MISMATCH)?;
            if alloc.transport != RelayTransport::Tcp {
                return Err(ErrorCode::BAD_REQUEST);
            }
            let Ok(Some(XorPeerAddress(peer))) = msg.get::<XorPeerAddress>() else {
                return Err(ErrorCode::BAD_REQUEST);
            };
            let relay = check_peer(&self.config.peer_filter, &mut self.stats, alloc, peer)?;
            let pending = self
                .pending_connects
                .values()
                .any(|p| p.allocation == request.from && p.peer == peer);
            if alloc.connections.values().any(|c| c.peer() == peer) || pending {
                return Err(ErrorCode::CONNECTION_ALREADY_EXISTS);
            }
            if !alloc.has_room_for(&[peer.ip()]) {
                return Err(ErrorCode::INSUFFICIENT_CAPACITY);
            }
            Ok((peer, relay))
        })();
        let (peer, relay) = match result {
            Ok(v) => v,
            Err(code) => return self.error(request, reply, Some(&auth.key), auth.kind, code, |_| Ok(())),
        };
        if let Some(alloc) = self.allocations.get_mut(&request.from) {
            alloc.permit(peer.ip(), now);
        }
        let id = self.new_connection_id(request.from);
        self.pending_connects.insert(
            id,
            PendingConnect {
                request,
                peer,
                kind: auth.kind,
                allocation: request.from,
            },
        );
        ClientAction::Connect { id, relay, peer }
    }

    fn new_connection_id(&mut self, owner: FiveTuple) -> u32 {
        loop {
            let id: u32 = self.rng.gen();
            if id != 0 && !self.connection_owner.contains_key(&id) {
                self.connection_owner.insert(id, owner);
                return id;
            }
        }
    }

    /// Completes a Connect: the reply for the client connection that
    /// asked (success with CONNECTION-ID, or 447), or `None` if the
    /// allocation is gone and the I/O layer should close the connection.
    pub fn finish_connect(
        &mut self,
        now: Instant,
        id: u32,
        connected: Option<SocketAddr>,
        reply: &mut [u8],
    ) -> Option<(FiveTuple, usize)> {
        let p = self.pending_connects.remove(&id)?;
        let Some(alloc) = self.allocations.get_mut(&p.allocation) else {
            self.connection_owner.remove(&id);
            return None;
        };
        let key = alloc.key.clone();
        let Some(peer) = connected else {
            self.connection_owner.remove(&id);
            let code = ErrorCode::CONNECTION_TIMEOUT_OR_FAILURE;
            let n = match self.error(p.request, reply, Some(&key), p.kind, code, |_| Ok(())) {
                ClientAction::Reply(n) => n,
                _ => 0,
            };
            return Some((p.allocation, n));
        };
        alloc.connections.insert(
            id,
            PeerConnection::AwaitingBind {
                peer,
                until: now + CONNECTION_BIND_TIMEOUT,
            },
        );
        let n = self.success(p.request, reply, &key, p.kind, |w| w.add(&ConnectionId(id)));
        Some((p.allocation, n))
    }

    /// RFC 6062 §5.3: a peer opened a TCP connection to the relayed
    /// address `relay`. If a permission allows it, returns the new
    /// connection id, the client to notify and the length of the
    /// ConnectionAttempt indication written into `reply`; otherwise the
    /// I/O layer closes the connection.
    pub fn handle_peer_connection(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        reply: &mut [u8],
    ) -> Option<(u32, FiveTuple, usize)> {
        let client = *self.by_relay.get(&relay)?;
        let alloc = self.allocations.get(&client)?;
        if alloc.transport != RelayTransport::Tcp || !alloc.has_permission(peer.ip(), now) {
            self.stats.no_permission += 1;
            return None;
        }
        let id = self.new_connection_id(client);
        let alloc = self.allocations.get_mut(&client)?;
        alloc.connections.insert(
            id,
            PeerConnection::AwaitingBind {
                peer,
                until: now + CONNECTION_BIND_TIMEOUT,
            },
        );
        let typ = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
        let mut w = MessageWriter::new(reply, typ, TransactionId(self.rng.gen())).ok()?;
        w.add(&XorPeerAddress(peer)).ok()?;
        w.add(&ConnectionId(id)).ok()?;
        Some((id, client, w.finish()))
    }

    /// RFC 6062 §5.4: a new client connection claims a peer connection.
    fn connection_bind(
        &mut self,
        request: Request,
        msg: &Message<'_>,
        auth: &Authenticated,
        reply: &mut [u8],
    ) -> ClientAction<'static> {
        let result = (|| {
            if request.from.transport == Transport::Udp {
                return Err(ErrorCode::BAD_REQUEST);
            }
            let Ok(Some(ConnectionId(id))) = msg.get::<ConnectionId>() else {
                return Err(ErrorCode::BAD_REQUEST);
            };
            let owner = self.connection_owner.get(&id).ok_or(ErrorCode::BAD_REQUEST)?;
            let alloc = self.allocations.get_mut(owner).ok_or(ErrorCode::BAD_REQUEST)?;
            if alloc.username != auth.username {
                return Err(ErrorCode::WRONG_CREDENTIALS);
            }
            match alloc.connections.get(&id) {
                Some(&PeerConnection::AwaitingBind { peer, .. }) => {
                    alloc.connections.insert(id, PeerConnection::Bound { peer });
                    Ok(id)
                }
                _ => Err(ErrorCode::BAD_REQUEST),
            }
        })();
        match result {
            Ok(id) => {
                let n = self.success(request, reply, &auth.key, auth.kind, |_| Ok(()));
                ClientAction::BindConnection { id, reply: n }
            }
            Err(code) => self.error(request, reply, Some(&auth.key), auth.kind, code, |_| Ok(())),
        }
    }

    /// A peer connection or its client data connection closed.
    pub fn handle_peer_connection_closed(&mut self, id: u32) {
        if let Some(owner) = self.connection_owner.remove(&id) {
            if let Some(alloc) = self.allocations.get_mut(&owner) {
                alloc.connections.remove(&id);
            }
        }
    }

    /// A TCP or TLS client connection closed: its allocation ends
    /// (RFC 8656 §7, RFC 6062 §5.1 for the control connection).
    pub fn handle_client_closed(&mut self, client: &FiveTuple) {
        if self.allocations.contains_key(client) {
            self.remove_allocation(client);
            self.stats.allocations_deleted += 1;
        }
    }

    fn remove_allocation(&mut self, client: &FiveTuple) {
        if let Some(alloc) = self.allocations.remove(client) {
            for r in &alloc.relays {
                self.by_relay.remove(r);
            }
            let connections: Vec<u32> = alloc.connections.keys().copied().collect();
            for id in &connections {
                self.connection_owner.remove(id);
            }
            let owners = &mut self.connection_owner;
            self.pending_connects.retain(|id, p| {
                let keep = p.allocation != *client;
                if !keep {
                    owners.remove(id);
                }
                keep
            });
            self.events.push_back(Event::AllocationClosed {
                client: *client,
                relays: alloc.relays,
                username: alloc.username,
                connections,
            });
        }
    }

    /// Expires allocations, permissions, channels and
    /// unbound peer connections that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let expired: Vec<FiveTuple> = self
            .allocations
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(c, _)| *c)
            .collect();
        for c in &expired {
            self.remove_allocation(c);
            self.stats.allocations_expired += 1;
        }
        for alloc in self.allocations.values_mut() {
            alloc.expire(now);
            let stale: Vec<u32> = alloc
                .connections
                .iter()
                .filter(|(_, c)| matches!(c, PeerConnection::AwaitingBind { until, .. } if *until <= now))
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                alloc.connections.remove(&id);
                self.connection_owner.remove(&id);
                self.events.push_back(Event::ConnectionExpired { id });
            }
        }
        self.limiter.forget_idle(now);
    }

    /// When [`Server::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sweep
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// The peer-address checks every path shares: a relayed address of the
/// peer's family (443), and the policy (403).
fn check_peer(
    filter: &PeerFilter,
    stats: &mut Stats,
    alloc: &Allocation,
    peer: SocketAddr,
) -> Result<SocketAddr, ErrorCode<'static>> {
    let relay = alloc.relay_for(&peer).ok_or(ErrorCode::PEER_ADDRESS_FAMILY_MISMATCH)?;
    if filter.check(peer).is_err() {
        stats.denied_peer += 1;
        return Err(ErrorCode::FORBIDDEN);
    }
    Ok(relay)
}

/// The checks and accounting of client-to-peer data on every path
/// (Send and ChannelData): policy, permission, bandwidth.
fn relay_to_peer<'a>(
    filter: &PeerFilter,
    stats: &mut Stats,
    alloc: &mut Allocation,
    now: Instant,
    peer: SocketAddr,
    data: &'a [u8],
) -> ClientAction<'a> {
    let Ok(from) = check_peer(filter, stats, alloc, peer) else {
        return ClientAction::None;
    };
    if !alloc.has_permission(peer.ip(), now) {
        stats.no_permission += 1;
        return ClientAction::None;
    }
    if let Some(bucket) = &mut alloc.bandwidth {
        if !bucket.take(data.len() as u64, now) {
            stats.over_bandwidth += 1;
            return ClientAction::None;
        }
    }
    stats.relayed_to_peer += 1;
    stats.relayed_to_peer_bytes += data.len() as u64;
    ClientAction::Relay { from, to: peer, data }
}

/// RFC 8489 §9.2.4: the password algorithm a request uses. Both
/// PASSWORD-ALGORITHMS (echoing the server's list) and PASSWORD-ALGORITHM
/// (one of them), or neither (MD5); anything else is a 400.
fn negotiated_algorithm(msg: &Message<'_>) -> Option<PasswordAlgorithm> {
    match (msg.get::<PasswordAlgorithms>(), msg.get::<PasswordAlgorithm>()) {
        (Ok(None), Ok(None)) => Some(PasswordAlgorithm::Md5),
        (Ok(Some(list)), Ok(Some(chosen))) if list == server_algorithms() && list.contains(chosen) => Some(chosen),
        _ => None,
    }
}

fn server_algorithms() -> PasswordAlgorithms {
    PasswordAlgorithms::new(&[PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5])
}

/// RFC 8656 §7.2: the default if absent or shorter, at most an hour.
fn requested_lifetime(msg: &Message<'_>) -> Duration {
    match msg.get::<Lifetime>() {
        Ok(Some(Lifetime(secs))) => Duration::from_secs(secs.into()).clamp(DEFAULT_LIFETIME, MAX_LIFETIME),
        _ => DEFAULT_LIFETIME,
    }
}

fn allocate_success(
    w: &mut MessageWriter<'_>,
    client: SocketAddr,
    relays: &[SocketAddr],
    lifetime: Duration,
    reservation: Option<[u8; 8]>,
    v6_error: Option<ErrorCode<'_>>,
) -> Result<(), natter_stun::Error> {
    for r in relays {
        w.add(&XorRelayedAddress(*r))?;
    }
    w.add(&Lifetime(lifetime.as_secs() as u32))?;
    if let Some(t) = reservation {
        w.add(&ReservationToken(t))?;
    }
    if let Some(error) = v6_error {
        w.add(&AddressErrorCode {
            family: AddressFamily::V6,
            error,
        })?;
    }
    w.add(&XorMappedAddress(client))
}

/// Writes a response to `request`: ERROR-CODE, the method's attributes,
/// SOFTWARE, the integrity attribute the request used (RFC 8489 §9.2.4)
/// and FINGERPRINT if the request had one. 0 if it does not fit.
#[allow(clippy::too_many_arguments)]
fn write_response(
    reply: &mut [u8],
    request: Request,
    class: Class,
    key: Option<&IntegrityKey>,
    kind: IntegrityKind,
    error: Option<ErrorCode<'_>>,
    software: Option<&str>,
    attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>,
) -> usize {
    let write = || -> Result<usize, natter_stun::Error> {
        let mut w = MessageWriter::new(reply, MessageType::new(request.method, class), request.tid)?;
        if let Some(e) = error {
            w.add(&e)?;
        }
        attrs(&mut w)?;
        if let Some(s) = software {
            w.add(&Software(s))?;
        }
        if let Some(k) = key {
            w.add_integrity(k, kind)?;
        }
        if request.fingerprint {
            w.add_fingerprint()?;
        }
        Ok(w.finish())
    };
    write().unwrap_or(0)
}
