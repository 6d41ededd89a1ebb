//! The ICE agent (RFC 8445): gathering, check lists, connectivity
//! checks and their answers, nomination, roles, ICE-lite, trickle
//! (RFC 8838), remote mDNS candidates (RFC 8828), consent freshness
//! (RFC 7675) and ICE restart (RFC 8445 §9).
//!
//! # Methods
//!
//! Like every natter core, [`Agent`] never reads a clock or touches a
//! socket. Its methods come in four kinds:
//! - getters (`&self`): [`Agent::state`], [`Agent::selected_pair`],
//!   [`Agent::stats`], [`Agent::role`], [`Agent::local_credentials`];
//! - application commands: [`Agent::add_host`],
//!   [`Agent::end_of_local_addresses`], [`Agent::set_remote_credentials`],
//!   [`Agent::add_remote_candidate`], [`Agent::end_of_remote_candidates`],
//!   [`Agent::resolve_mdns`], [`Agent::restart`], [`Agent::send`],
//!   [`Agent::close`];
//! - input: [`Agent::handle_receive`] for every datagram (or TCP frame)
//!   that arrives on a socket the agent was given, and
//!   [`Agent::handle_timeout`] when the deadline of
//!   [`Agent::poll_timeout`] passes;
//! - output, drained after every input in this order:
//!   [`Agent::poll_transmit`], then [`Agent::poll_timeout`], then
//!   [`Agent::poll_event`].
//!
//! # What the I/O layer does
//!
//! It opens one socket per host address and passes it to
//! [`Agent::add_host`]. Application data is not demultiplexed by the
//! agent beyond RFC 7983's first byte: [`Agent::handle_receive`] returns
//! [`Received::Data`] for non-STUN packets from a remote address the
//! agent knows (including data relayed by a TURN server) and
//! [`Received::Unknown`] for the rest, which the I/O layer should drop.
//!
//! ICE-TCP (RFC 6544) is partial: the agent announces passive TCP host
//! candidates and answers checks that arrive over TCP connections the
//! I/O layer accepted (one STUN message per [`Agent::handle_receive`],
//! the I/O layer removing and adding RFC 4571 framing), sending its
//! triggered checks back on the same connection. It does not open
//! active TCP connections nor do simultaneous-open.
//!
//! ```
//! use std::time::Instant;
//! use natter_ice::agent::{Agent, AgentConfig, Role};
//! use natter_ice::candidate::Protocol;
//!
//! let now = Instant::now();
//! let mut agent = Agent::new(AgentConfig { role: Role::Controlling, seed: Some(1), ..Default::default() }, now);
//! agent.add_host("192.0.2.1:5000".parse().unwrap(), Protocol::Udp).unwrap();
//! agent.end_of_local_addresses();
//! while let Some(event) = agent.poll_event() {
//!     println!("{event:?}"); // LocalCandidate(..), GatheringComplete
//! }
//! ```

mod check_list;
mod config;
mod consent;
mod event;
mod stun;

pub use check_list::{pair_priority, PairState};
pub use config::{AgentConfig, Role, TransportPolicy};
pub use event::{ConnectionState, Event, Received, Stats};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::{
    attribute, Class, ErrorCode, IceControlled, IceControlling, IntegrityKey, MappedAddress, Message, Method,
    PacketKind, Priority, TransactionId, UnknownAttributes, Username, XorMappedAddress,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::candidate::{self, Candidate, CandidateAddress, CandidateKind, Protocol, TcpType};
use crate::transaction::{Retransmit, RetransmitAction, RetransmitPolicy};
use crate::turn_client::{TurnClient, TurnEvent, TurnReceive, TurnServer};
use crate::{Credentials, Transmit, Transport};
use check_list::{CandidatePair, CheckList};
use consent::{Consent, Freshness};

/// Misuse of the agent's API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// natter uses rtcp-mux (RFC 8843 bundles everything on component 1).
    #[error("candidate component {0} is not 1 (natter requires rtcp-mux)")]
    UnsupportedComponent(u16),
    /// RFC 6544: natter announces passive TCP host candidates only.
    #[error("TCP host candidates must be passive, not {0:?}")]
    UnsupportedTcpType(TcpType),
    #[error("host address {0} was already added")]
    DuplicateHost(SocketAddr),
    #[error("the agent is closed")]
    Closed,
}

/// Type preferences of TCP candidates are lowered by this much so that
/// UDP is preferred (RFC 6544 §4.2 leaves the values to the agent).
const TCP_TYPE_PENALTY: u32 = 40 << 24;

/// Checks over TCP are sent once (RFC 8489 §6.2.2) and given this long.
const TCP_CHECK_TIMEOUT: Duration = Duration::from_secs(8);

/// RFC 8445 §5.1.2.1 with RFC 6544 §4.2's lower preference for TCP.
fn candidate_priority(kind: CandidateKind, local_preference: u16, transport: Transport) -> u32 {
    let p = candidate::priority(kind, local_preference, 1);
    match transport {
        Transport::Udp => p,
        _ => p.saturating_sub(TCP_TYPE_PENALTY),
    }
}

/// RFC 8489 §9.1.1 short-term key; a password that fails OpaqueString
/// preparation is used as raw bytes rather than refused, so that the
/// agent can still answer such a peer with a 401 instead of panicking.
fn short_term_key(pwd: &str) -> IntegrityKey {
    IntegrityKey::short_term(pwd).unwrap_or_else(|_| IntegrityKey::from_bytes(pwd.as_bytes()))
}

/// One of our candidates (RFC 8445 §5.1.1).
#[derive(Clone, Debug)]
struct LocalCandidate {
    candidate: Candidate,
    addr: SocketAddr,
    /// §5.1.1.1: the address packets are sent from; a relayed
    /// candidate is its own base.
    base: SocketAddr,
    transport: Transport,
    local_preference: u16,
    foundation: usize,
    /// Whether the transport policy lets it be announced and paired.
    usable: bool,
    /// For a relayed candidate, the index of its TURN client.
    relay: Option<usize>,
}

/// One TURN allocation (RFC 8656) made from a UDP host candidate.
struct Relay {
    client: TurnClient,
    /// The relayed local candidate once allocated.
    local: Option<usize>,
    /// Allocation succeeded or failed (gathering waits for this).
    settled: bool,
    local_preference: u16,
}

/// A gathering transaction not started yet (paced by Ta, §5.1.1.1).
#[derive(Clone, Copy, Debug)]
enum GatherTask {
    Stun { host: usize, server: SocketAddr },
    Turn { host: usize, server: usize },
}

/// One of the peer's candidates, signaled or peer-reflexive.
#[derive(Clone, Debug)]
struct RemoteCandidate {
    candidate: Candidate,
    addr: SocketAddr,
    transport: Transport,
    foundation: usize,
}

/// The selected pair with what it needs to outlive the check list that
/// found it (an ICE restart clears the list but keeps the path).
#[derive(Clone, Debug)]
struct Path {
    id: u64,
    local: usize,
    remote: RemoteCandidate,
    /// Its index in the current check list, `None` after a restart.
    pair: Option<usize>,
    priority: u64,
    local_credentials: Credentials,
    local_key: IntegrityKey,
    remote_credentials: Option<Credentials>,
    remote_key: Option<IntegrityKey>,
    consent: Consent,
    rtt: Option<Duration>,
}

#[derive(Clone, Debug)]
enum PendingKind {
    Check {
        pair: usize,
        use_candidate: bool,
        role: Role,
        priority: u32,
    },
    Consent {
        path: u64,
    },
    Gather {
        host: usize,
        server: SocketAddr,
    },
}

/// An outstanding Binding request of ours.
#[derive(Clone, Debug)]
struct Pending {
    kind: PendingKind,
    /// The key the response must be signed with (none for STUN servers).
    key: Option<IntegrityKey>,
    retransmit: Retransmit,
    sent_at: Instant,
    local: usize,
    destination: SocketAddr,
    bytes: Vec<u8>,
    /// RFC 8445 §7.3.1.4: superseded by a triggered check; no more
    /// retransmissions and no failure on timeout, but a response still
    /// counts.
    cancelled: bool,
}

/// Which credentials a received request was made with.
enum Generation {
    Current,
    /// An ICE restart is under way and the request is for the path
    /// still carrying data.
    Previous,
}

/// An RFC 8445 ICE agent for one data stream with one component.
/// See the [module documentation](self) for how to drive it.
pub struct Agent {
    config: AgentConfig,
    rng: StdRng,
    role: Role,
    /// RFC 8445 §7.1.1: for role conflicts.
    tie_breaker: u64,
    local_credentials: Credentials,
    local_key: IntegrityKey,
    remote_credentials: Option<Credentials>,
    remote_key: Option<IntegrityKey>,
    locals: Vec<LocalCandidate>,
    remotes: Vec<RemoteCandidate>,
    /// Interned foundation strings, so pair foundations compare cheaply.
    foundations: Vec<String>,
    check_list: CheckList,
    pending: HashMap<TransactionId, Pending>,
    selected: Option<Path>,
    /// The path selected before an ICE restart; it carries data until
    /// the new check list selects one.
    previous: Option<Path>,
    next_path_id: u64,
    /// RFC 8445 §14.2: when the next new transaction may start.
    ta_due: Instant,
    /// §5.1.1.2: STUN and TURN transactions not started yet.
    gather_queue: VecDeque<GatherTask>,
    relays: Vec<Relay>,
    /// Whether the latest Ta tick went to gathering.
    gathered_last: bool,
    /// The latest time any input carried, for work that methods without
    /// a `now` (like [`Agent::close`]) must do.
    last_now: Instant,
    first_valid_at: Option<Instant>,
    /// The pair the controlling agent is nominating.
    nominating: Option<usize>,
    local_addresses_done: bool,
    gathering_complete: bool,
    remote_end_of_candidates: bool,
    mdns_pending: Vec<Candidate>,
    mdns_asked: HashSet<String>,
    prflx_count: u32,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    state: ConnectionState,
    /// Checks or consent failed for good; only a restart clears it.
    failed: bool,
    closed: bool,
    stats: Stats,
}

impl Agent {
    pub fn new(config: AgentConfig, now: Instant) -> Self {
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let local_credentials = config
            .credentials
            .clone()
            .unwrap_or_else(|| Credentials::random(&mut rng));
        let local_key = short_term_key(&local_credentials.pwd);
        // RFC 8445 §6.1.1: a lite agent is always controlled.
        let role = if config.lite { Role::Controlled } else { config.role };
        let tie_breaker = rng.gen();
        Agent {
            config,
            rng,
            role,
            tie_breaker,
            local_credentials,
            local_key,
            remote_credentials: None,
            remote_key: None,
            locals: Vec::new(),
            remotes: Vec::new(),
            foundations: Vec::new(),
            check_list: CheckList::default(),
            pending: HashMap::new(),
            selected: None,
            previous: None,
            next_path_id: 0,
            ta_due: now,
            gather_queue: VecDeque::new(),
            relays: Vec::new(),
            gathered_last: true,
            last_now: now,
            first_valid_at: None,
            nominating: None,
            local_addresses_done: false,
            gathering_complete: false,
            remote_end_of_candidates: false,
            mdns_pending: Vec::new(),
            mdns_asked: HashSet::new(),
            prflx_count: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            state: ConnectionState::New,
            failed: false,
            closed: false,
            stats: Stats::default(),
        }
    }

    // ----- getters -----

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_lite(&self) -> bool {
        self.config.lite
    }

    /// The ufrag and password to signal (`a=ice-ufrag`, `a=ice-pwd`).
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_credentials
    }

    /// The local and remote candidates data flows between.
    pub fn selected_pair(&self) -> Option<(&Candidate, &Candidate)> {
        let path = self.selected.as_ref().or(self.previous.as_ref())?;
        Some((&self.locals[path.local].candidate, &path.remote.candidate))
    }

    /// Our candidates so far (including peer-reflexive ones, which are
    /// not signaled).
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals.iter().map(|l| &l.candidate)
    }

    /// The pairs of the current check list with their states.
    pub fn pairs(&self) -> impl Iterator<Item = (&Candidate, &Candidate, PairState)> {
        self.check_list.pairs.iter().map(|p| {
            (
                &self.locals[p.local].candidate,
                &self.remotes[p.remote].candidate,
                p.state,
            )
        })
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.selected_rtt = self.selected.as_ref().or(self.previous.as_ref()).and_then(|p| p.rtt);
        stats
    }

    // ----- application commands -----

    /// Adds a local socket's address: a host candidate (RFC 8445
    /// §5.1.1.1), and for UDP the server-reflexive candidates of every
    /// configured STUN server of the same address family. TCP hosts must
    /// be passive (RFC 6544 §4.5).
    pub fn add_host(&mut self, addr: SocketAddr, protocol: Protocol) -> Result<(), AgentError> {
        if self.closed {
            return Err(AgentError::Closed);
        }
        let transport = match protocol {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp(TcpType::Passive) => Transport::Tcp,
            Protocol::Tcp(other) => return Err(AgentError::UnsupportedTcpType(other)),
        };
        if self
            .locals
            .iter()
            .any(|l| l.candidate.kind == CandidateKind::Host && l.base == addr && l.transport == transport)
        {
            return Err(AgentError::DuplicateHost(addr));
        }
        // §5.1.2.1: IPv6 before IPv4, then interfaces in the order given.
        let same_family = self
            .locals
            .iter()
            .filter(|l| {
                l.candidate.kind == CandidateKind::Host
                    && l.transport == transport
                    && l.base.is_ipv6() == addr.is_ipv6()
            })
            .count() as u16;
        let local_preference = match (transport, addr.is_ipv6()) {
            // RFC 6544 §4.2: direction preference 4 (passive) · 2^13 + other.
            (Transport::Tcp, v6) => (4 << 13) + if v6 { 8191 } else { 4095 } - same_family.min(4095),
            (_, true) => 65535 - same_family.saturating_mul(256).min(32767),
            (_, false) => 32767 - same_family.saturating_mul(256).min(32767),
        };
        let idx = self.push_local(
            CandidateKind::Host,
            addr,
            addr,
            transport,
            protocol,
            local_preference,
            None,
            None,
        );
        if transport == Transport::Udp && !self.config.lite {
            let servers: Vec<SocketAddr> = self
                .config
                .stun_servers
                .iter()
                .filter(|s| s.is_ipv6() == addr.is_ipv6())
                .copied()
                .collect();
            for server in servers {
                self.gather_queue.push_back(GatherTask::Stun { host: idx, server });
            }
            for (server, turn) in self.config.turn_servers.iter().enumerate() {
                if turn.address.is_ipv6() == addr.is_ipv6() {
                    self.gather_queue.push_back(GatherTask::Turn { host: idx, server });
                }
            }
        }
        self.pair_local(idx);
        Ok(())
    }

    /// The I/O layer has added every address it has; gathering completes
    /// once the STUN and TURN transactions end.
    pub fn end_of_local_addresses(&mut self) {
        self.local_addresses_done = true;
        self.check_gathering_complete();
    }

    /// The peer's `ice-ufrag` and `ice-pwd`. New credentials after others
    /// were set mean the peer restarted ICE (RFC 8445 §9); the agent then
    /// restarts too, keeping its own credentials.
    pub fn set_remote_credentials(&mut self, credentials: Credentials, now: Instant) {
        if self.remote_credentials.as_ref().is_some_and(|c| *c != credentials) {
            let local = self.local_credentials.clone();
            self.restart(local, now);
        }
        self.remote_key = Some(short_term_key(&credentials.pwd));
        self.remote_credentials = Some(credentials);
        self.update_state(now);
    }

    /// A candidate from the peer, at any time (RFC 8838 §11). A `.local`
    /// name raises [`Event::ResolveMdns`] and waits for
    /// [`Agent::resolve_mdns`].
    pub fn add_remote_candidate(&mut self, candidate: Candidate, now: Instant) -> Result<(), AgentError> {
        if self.closed {
            return Err(AgentError::Closed);
        }
        self.last_now = now;
        if candidate.component != 1 {
            return Err(AgentError::UnsupportedComponent(candidate.component));
        }
        match &candidate.address {
            CandidateAddress::Mdns(name, _) => {
                if self.mdns_asked.insert(name.clone()) {
                    self.events.push_back(Event::ResolveMdns(name.clone()));
                }
                self.mdns_pending.push(candidate);
            }
            CandidateAddress::Ip(addr) => {
                let addr = *addr;
                self.add_remote(candidate, addr);
            }
        }
        self.update_state(now);
        Ok(())
    }

    /// RFC 8838 §8.2: the peer will send no more candidates.
    pub fn end_of_remote_candidates(&mut self, now: Instant) {
        self.remote_end_of_candidates = true;
        self.update_state(now);
    }

    /// The I/O layer's answer to [`Event::ResolveMdns`]: the address, or
    /// `None` if the name did not resolve (its candidates are dropped,
    /// RFC 8828 §5.2).
    pub fn resolve_mdns(&mut self, name: &str, ip: Option<IpAddr>, now: Instant) {
        self.last_now = now;
        let (matching, rest): (Vec<Candidate>, Vec<Candidate>) = std::mem::take(&mut self.mdns_pending)
            .into_iter()
            .partition(|c| matches!(&c.address, CandidateAddress::Mdns(n, _) if n == name));
        self.mdns_pending = rest;
        if let Some(ip) = ip {
            for mut c in matching {
                let addr = SocketAddr::new(ip, c.address.port());
                c.address = CandidateAddress::Ip(addr);
                self.add_remote(c, addr);
            }
        }
        self.update_state(now);
    }

    /// RFC 8445 §9: an ICE restart with new local credentials. The check
    /// list and remote candidates are dropped (the peer signals new
    /// ones); local candidates are kept and announced again. The
    /// selected pair keeps carrying data, with its old credentials, until
    /// the new checks select a pair.
    pub fn restart(&mut self, local: Credentials, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(path) = self.selected.take() {
            if !path.consent.expired {
                self.previous = Some(Path { pair: None, ..path });
            }
        }
        self.local_key = short_term_key(&local.pwd);
        self.local_credentials = local;
        self.remote_credentials = None;
        self.remote_key = None;
        self.remotes.clear();
        self.check_list.clear();
        self.pending.retain(|_, p| !matches!(p.kind, PendingKind::Check { .. }));
        self.nominating = None;
        self.first_valid_at = None;
        self.remote_end_of_candidates = false;
        self.mdns_pending.clear();
        self.mdns_asked.clear();
        self.failed = false;
        for l in &self.locals {
            if l.usable && l.candidate.kind != CandidateKind::PeerReflexive {
                self.events.push_back(Event::LocalCandidate(l.candidate.clone()));
            }
        }
        if self.gathering_complete {
            self.events.push_back(Event::GatheringComplete);
        }
        self.update_state(now);
    }

    /// Application data to the peer on the selected pair; `None` before
    /// a pair is selected, after consent expired (RFC 7675 §5.1) or once
    /// closed.
    pub fn send(&mut self, data: &[u8], now: Instant) -> Option<Transmit> {
        if self.closed {
            return None;
        }
        let path = self.selected.as_mut().or(self.previous.as_mut())?;
        if path.consent.expired {
            return None;
        }
        path.consent.last_sent = now;
        let (local, dest) = (path.local, path.remote.addr);
        self.route(local, dest, data.to_vec())
    }

    /// Stops everything: no more checks, consent or data.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.pending.clear();
        self.gather_queue.clear();
        // RFC 8656 §7: release allocations (sent once; nobody waits).
        let now = self.last_now;
        for r in &mut self.relays {
            r.client.release(now);
            while let Some(t) = r.client.poll_transmit() {
                self.transmits.push_back(t);
            }
        }
        self.set_state(ConnectionState::Closed);
    }

    // ----- input -----

    /// A datagram (or one STUN message from a TCP connection) that
    /// arrived from `source` on the local socket `destination`.
    pub fn handle_receive<'a>(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        data: &'a [u8],
    ) -> Received<'a> {
        if self.closed {
            return Received::Unknown;
        }
        self.last_now = now;
        if let Some(i) = self.relays.iter().position(|r| {
            r.client.server().address == source
                && r.client.local() == destination
                && r.client.server().transport == transport
        }) {
            match self.relays[i].client.handle_receive(now, data) {
                TurnReceive::NotTurn => {}
                TurnReceive::Handled => {
                    self.drain_relays(now);
                    self.after_input(now);
                    return Received::Handled;
                }
                TurnReceive::Data { peer, data } => {
                    self.drain_relays(now);
                    let Some(relayed) = self.relays[i].local.map(|l| self.locals[l].base) else {
                        return Received::Handled;
                    };
                    if PacketKind::of(data) == PacketKind::Stun {
                        self.handle_stun(now, Transport::Udp, peer, relayed, data);
                        self.after_input(now);
                        return Received::Handled;
                    }
                    return Received::Data {
                        source: peer,
                        transport: Transport::Udp,
                        data: Cow::Borrowed(data),
                    };
                }
            }
        }
        if PacketKind::of(data) == PacketKind::Stun {
            self.handle_stun(now, transport, source, destination, data);
            self.after_input(now);
            return Received::Handled;
        }
        if self.is_known_remote(source, transport) {
            return Received::Data {
                source,
                transport,
                data: Cow::Borrowed(data),
            };
        }
        Received::Unknown
    }

    /// Fires whatever is due at `now`: Ta pacing of gathering and checks
    /// (RFC 8445 §6.1.4.2), retransmissions, nomination, consent and
    /// keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.last_now = now;
        self.retransmit(now);
        for r in &mut self.relays {
            if r.client.poll_timeout().is_some_and(|t| t <= now) {
                r.client.handle_timeout(now);
            }
        }
        self.drain_relays(now);
        if now >= self.ta_due {
            // Gathering and checks share Ta (§14.2), taking turns, so
            // that host pairs do not wait for the servers.
            let check = if self.can_check() && (self.gather_queue.is_empty() || self.gathered_last) {
                self.next_check()
            } else {
                None
            };
            if let Some(pair) = check {
                self.send_check(now, pair);
                self.gathered_last = false;
                self.ta_due = now + self.config.ta;
            } else if let Some(task) = self.gather_queue.pop_front() {
                match task {
                    GatherTask::Stun { host, server } => self.start_gather(now, host, server),
                    GatherTask::Turn { host, server } => self.start_relay(now, host, server),
                }
                self.gathered_last = true;
                self.ta_due = now + self.config.ta;
            }
        }
        self.maybe_nominate(now);
        self.consent_tick(now);
        self.after_input(now);
    }

    // ----- output -----

    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest moment [`Agent::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for p in self.pending.values() {
            at(p.retransmit.deadline());
        }
        for r in &self.relays {
            if let Some(t) = r.client.poll_timeout() {
                at(t);
            }
        }
        if !self.gather_queue.is_empty() || (self.can_check() && self.has_check_work()) {
            at(self.ta_due);
        }
        if let Some(t) = self.nomination_deadline() {
            at(t);
        }
        for path in self.selected.iter().chain(self.previous.iter()) {
            if path.consent.expired {
                continue;
            }
            if self.config.lite {
                at(path.consent.last_sent + self.config.keepalive_interval);
            } else {
                at(path.consent.next_check);
                if let Some(t) = path
                    .consent
                    .deadline(self.config.disconnected_timeout, self.config.consent_timeout)
                {
                    at(t);
                }
            }
        }
        next
    }

    // ----- candidates and pairs -----

    fn intern(&mut self, foundation: &str) -> usize {
        if let Some(i) = self.foundations.iter().position(|f| f == foundation) {
            return i;
        }
        self.foundations.push(foundation.to_owned());
        self.foundations.len() - 1
    }

    #[allow(clippy::too_many_arguments)]
    fn push_local(
        &mut self,
        kind: CandidateKind,
        addr: SocketAddr,
        base: SocketAddr,
        transport: Transport,
        protocol: Protocol,
        local_preference: u16,
        server: Option<IpAddr>,
        related: Option<SocketAddr>,
    ) -> usize {
        let foundation_str = candidate::foundation(kind, base.ip(), server, protocol);
        let foundation = self.intern(&foundation_str);
        let usable = self.config.transport_policy == TransportPolicy::All || kind == CandidateKind::Relayed;
        let c = Candidate {
            foundation: foundation_str,
            component: 1,
            protocol,
            priority: candidate_priority(kind, local_preference, transport),
            address: CandidateAddress::Ip(addr),
            kind,
            related: related.or((kind != CandidateKind::Host).then_some(base)),
            extensions: Vec::new(),
        };
        if usable && kind != CandidateKind::PeerReflexive {
            self.events.push_back(Event::LocalCandidate(c.clone()));
        }
        self.locals.push(LocalCandidate {
            candidate: c,
            addr,
            base,
            transport,
            local_preference,
            foundation,
            usable,
            relay: None,
        });
        self.locals.len() - 1
    }

    fn add_remote(&mut self, candidate: Candidate, addr: SocketAddr) {
        let transport = match candidate.protocol {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp(_) => Transport::Tcp,
        };
        if let Some(i) = self
            .remotes
            .iter()
            .position(|r| r.addr == addr && r.transport == transport)
        {
            // RFC 8445 §7.3.1.3: a signaled candidate replaces the
            // peer-reflexive one learnt from a check.
            if self.remotes[i].candidate.kind == CandidateKind::PeerReflexive
                && candidate.kind != CandidateKind::PeerReflexive
            {
                self.remotes[i].foundation = self.intern(&candidate.foundation);
                self.remotes[i].candidate = candidate;
                self.recompute_priorities();
            }
            return;
        }
        let foundation = self.intern(&candidate.foundation);
        self.remotes.push(RemoteCandidate {
            candidate,
            addr,
            transport,
            foundation,
        });
        let idx = self.remotes.len() - 1;
        if !self.config.lite {
            for l in 0..self.locals.len() {
                self.try_pair(l, idx);
            }
        }
    }

    fn pair_local(&mut self, local: usize) {
        if self.config.lite {
            return;
        }
        for r in 0..self.remotes.len() {
            self.try_pair(local, r);
        }
    }

    /// RFC 8445 §6.1.2.2 pairing with §6.1.2.4 pruning: reflexive local
    /// candidates are replaced by their base, which is already paired, so
    /// only host and relayed candidates pair. TCP pairs arise only from
    /// checks the peer opens (passive candidates do not connect).
    fn try_pair(&mut self, local: usize, remote: usize) -> Option<usize> {
        let (l, r) = (&self.locals[local], &self.remotes[remote]);
        if !l.usable
            || !matches!(l.candidate.kind, CandidateKind::Host | CandidateKind::Relayed)
            || l.transport != Transport::Udp
            || r.transport != Transport::Udp
            || l.addr.is_ipv6() != r.addr.is_ipv6()
            || self.check_list.find(local, remote).is_some()
        {
            return None;
        }
        let priority = self.pair_priority_of(local, remote);
        let added = self
            .check_list
            .add(CandidatePair::new(local, remote, priority), self.config.max_pairs);
        // RFC 8656 §9: the relay forwards only to and from permitted peers.
        if let (Some(_), Some(relay)) = (added, self.locals[local].relay) {
            let ip = self.remotes[remote].addr.ip();
            self.relays[relay].client.create_permission(ip, self.last_now);
        }
        added
    }

    fn pair_priority_of(&self, local: usize, remote: usize) -> u64 {
        let (l, r) = (
            self.locals[local].candidate.priority,
            self.remotes[remote].candidate.priority,
        );
        match self.role {
            Role::Controlling => pair_priority(l, r),
            Role::Controlled => pair_priority(r, l),
        }
    }

    fn recompute_priorities(&mut self) {
        for i in 0..self.check_list.pairs.len() {
            let p = &self.check_list.pairs[i];
            self.check_list.pairs[i].priority = self.pair_priority_of(p.local, p.remote);
        }
        if let Some(path) = &self.selected {
            if let Some(pair) = path.pair {
                let priority = self.check_list.pairs[pair].priority;
                if let Some(path) = self.selected.as_mut() {
                    path.priority = priority;
                }
            }
        }
    }

    fn find_remote(&self, addr: SocketAddr, transport: Transport) -> Option<usize> {
        self.remotes
            .iter()
            .position(|r| r.addr == addr && r.transport == transport)
    }

    /// The host or relayed candidate whose base is the socket a packet
    /// arrived on.
    fn local_at(&self, destination: SocketAddr, transport: Transport) -> Option<usize> {
        self.locals.iter().position(|l| {
            l.base == destination
                && l.transport == transport
                && matches!(l.candidate.kind, CandidateKind::Host | CandidateKind::Relayed)
        })
    }

    fn is_known_remote(&self, source: SocketAddr, transport: Transport) -> bool {
        self.find_remote(source, transport).is_some()
            || self
                .selected
                .iter()
                .chain(self.previous.iter())
                .any(|p| p.remote.addr == source && p.remote.transport == transport)
    }

    /// RFC 8445 §7.3.1.3: a peer-reflexive remote candidate for a check
    /// from an unknown source, with the PRIORITY the check carried.
    fn add_prflx_remote(&mut self, addr: SocketAddr, transport: Transport, priority: u32) -> usize {
        self.prflx_count += 1;
        let foundation_str = format!("prflx{}", self.prflx_count);
        let foundation = self.intern(&foundation_str);
        self.remotes.push(RemoteCandidate {
            candidate: Candidate {
                foundation: foundation_str,
                component: 1,
                protocol: match transport {
                    Transport::Udp => Protocol::Udp,
                    _ => Protocol::Tcp(TcpType::Active),
                },
                priority,
                address: CandidateAddress::Ip(addr),
                kind: CandidateKind::PeerReflexive,
                related: None,
                extensions: Vec::new(),
            },
            addr,
            transport,
            foundation,
        });
        self.remotes.len() - 1
    }

    // ----- gathering -----

    fn start_gather(&mut self, now: Instant, host: usize, server: SocketAddr) {
        let tid = self.new_tid();
        let Ok(bytes) = stun::binding_request(tid) else {
            return;
        };
        self.start_transaction(
            now,
            tid,
            Pending {
                kind: PendingKind::Gather { host, server },
                key: None,
                retransmit: Retransmit::new(self.config.gather_retransmit, now),
                sent_at: now,
                local: host,
                destination: server,
                bytes,
                cancelled: false,
            },
        );
    }

    fn on_gather_response(&mut self, host: usize, server: SocketAddr, msg: &Message<'_>) {
        if msg.class() != Class::SuccessResponse {
            return;
        }
        let mapped = match msg.get::<XorMappedAddress>() {
            Ok(Some(XorMappedAddress(a))) => a,
            _ => match msg.get::<MappedAddress>() {
                Ok(Some(MappedAddress(a))) => a,
                _ => {
                    self.stats.malformed += 1;
                    return;
                }
            },
        };
        // RFC 8445 §5.1.3: redundant when equal to the base or to another
        // server-reflexive candidate.
        if self
            .locals
            .iter()
            .any(|l| l.addr == mapped && l.transport == Transport::Udp)
        {
            return;
        }
        let base = self.locals[host].base;
        let lp = self.locals[host].local_preference;
        self.push_local(
            CandidateKind::ServerReflexive,
            mapped,
            base,
            Transport::Udp,
            Protocol::Udp,
            lp,
            Some(server.ip()),
            None,
        );
    }

    /// RFC 8445 §5.1.1.2: a TURN allocation from a UDP host candidate.
    fn start_relay(&mut self, now: Instant, host: usize, server: usize) {
        let server: TurnServer = self.config.turn_servers[server].clone();
        let local_preference = match server.transport {
            Transport::Udp => 65535,
            Transport::Tcp => 49151,
            Transport::Tls => 32767,
        } - (self.relays.len() as u16).min(16383);
        let client = TurnClient::new(server, self.locals[host].base, now, &mut self.rng);
        self.relays.push(Relay {
            client,
            local: None,
            settled: false,
            local_preference,
        });
        self.drain_relays(now);
    }

    /// Moves the TURN clients' datagrams to our queue and acts on their
    /// events.
    fn drain_relays(&mut self, now: Instant) {
        for i in 0..self.relays.len() {
            while let Some(t) = self.relays[i].client.poll_transmit() {
                self.transmits.push_back(t);
            }
            while let Some(event) = self.relays[i].client.poll_event() {
                self.on_relay_event(now, i, event);
            }
        }
    }

    fn on_relay_event(&mut self, _now: Instant, i: usize, event: TurnEvent) {
        match event {
            TurnEvent::Allocated { relayed, mapped } => {
                self.relays[i].settled = true;
                let server = self.relays[i].client.server().address;
                let host_base = self.relays[i].client.local();
                let host = self
                    .locals
                    .iter()
                    .position(|l| l.base == host_base && l.relay.is_none());
                if let (Some(mapped), Some(host)) = (mapped, host) {
                    if !self
                        .locals
                        .iter()
                        .any(|l| l.addr == mapped && l.transport == Transport::Udp)
                    {
                        let lp = self.locals[host].local_preference;
                        self.push_local(
                            CandidateKind::ServerReflexive,
                            mapped,
                            host_base,
                            Transport::Udp,
                            Protocol::Udp,
                            lp,
                            Some(server.ip()),
                            None,
                        );
                    }
                }
                // A relayed candidate is its own base (§5.1.1.2); its
                // raddr is the mapped address the server saw.
                let lp = self.relays[i].local_preference;
                let idx = self.push_local(
                    CandidateKind::Relayed,
                    relayed,
                    relayed,
                    Transport::Udp,
                    Protocol::Udp,
                    lp,
                    Some(server.ip()),
                    Some(mapped.unwrap_or(host_base)),
                );
                self.locals[idx].relay = Some(i);
                self.relays[i].local = Some(idx);
                self.pair_local(idx);
            }
            TurnEvent::AllocationFailed(_) => self.relays[i].settled = true,
            TurnEvent::Expired => {
                self.relays[i].settled = true;
                // Pairs through a dead allocation cannot work any more.
                if let Some(local) = self.relays[i].local {
                    for p in &mut self.check_list.pairs {
                        if p.local == local || self.locals[p.local].relay == Some(i) {
                            p.state = PairState::Failed;
                            p.valid = false;
                        }
                    }
                }
            }
            TurnEvent::PermissionFailed(ip) => {
                for p in &mut self.check_list.pairs {
                    if self.locals[p.local].relay == Some(i) && self.remotes[p.remote].addr.ip() == ip {
                        p.state = PairState::Failed;
                    }
                }
            }
            _ => {}
        }
    }

    fn check_gathering_complete(&mut self) {
        if self.gathering_complete || !self.local_addresses_done || !self.gather_queue.is_empty() {
            return;
        }
        if self
            .pending
            .values()
            .any(|p| matches!(p.kind, PendingKind::Gather { .. }))
            || self.relays.iter().any(|r| !r.settled)
        {
            return;
        }
        self.gathering_complete = true;
        self.events.push_back(Event::GatheringComplete);
    }

    // ----- transactions -----

    fn new_tid(&mut self) -> TransactionId {
        TransactionId(self.rng.gen())
    }

    fn start_transaction(&mut self, now: Instant, tid: TransactionId, mut pending: Pending) {
        if pending.retransmit.poll(now) == RetransmitAction::Send {
            if !matches!(pending.kind, PendingKind::Gather { .. }) {
                self.stats.checks_sent += 1;
            }
            self.queue(pending.local, pending.destination, pending.bytes.clone());
        }
        pending.sent_at = now;
        self.pending.insert(tid, pending);
    }

    fn retransmit(&mut self, now: Instant) {
        let due: Vec<TransactionId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.retransmit.deadline() <= now)
            .map(|(t, _)| *t)
            .collect();
        for tid in due {
            let Some(p) = self.pending.get_mut(&tid) else { continue };
            match p.retransmit.poll(now) {
                RetransmitAction::Wait(_) => {}
                RetransmitAction::Send if p.cancelled => {}
                RetransmitAction::Send => {
                    let (local, dest, bytes) = (p.local, p.destination, p.bytes.clone());
                    if !matches!(p.kind, PendingKind::Gather { .. }) {
                        self.stats.checks_sent += 1;
                    }
                    self.queue(local, dest, bytes);
                }
                RetransmitAction::TimedOut => {
                    let Some(p) = self.pending.remove(&tid) else { continue };
                    if !p.cancelled {
                        self.on_transaction_timeout(p.kind);
                    }
                }
            }
        }
    }

    fn on_transaction_timeout(&mut self, kind: PendingKind) {
        match kind {
            PendingKind::Check { pair, .. } => {
                self.stats.check_timeouts += 1;
                // §7.2.5.4: no response means failure.
                let p = &mut self.check_list.pairs[pair];
                p.state = PairState::Failed;
                p.valid = false;
                if self.nominating == Some(pair) {
                    self.nominating = None;
                    p.use_candidate = false;
                }
                for q in &mut self.check_list.pairs {
                    if q.valid_pair == Some(pair) {
                        q.valid_pair = None;
                    }
                }
            }
            PendingKind::Gather { .. } => self.check_gathering_complete(),
            PendingKind::Consent { .. } => {}
        }
    }

    /// Sends `data` from local candidate `local` to `dest`.
    fn route(&mut self, local: usize, dest: SocketAddr, data: Vec<u8>) -> Option<Transmit> {
        let l = &self.locals[local];
        if let Some(relay) = l.relay {
            return self.relays[relay].client.send_to(dest, &data);
        }
        Some(Transmit {
            transport: l.transport,
            source: l.base,
            destination: dest,
            data,
        })
    }

    fn queue(&mut self, local: usize, dest: SocketAddr, data: Vec<u8>) {
        if let Some(t) = self.route(local, dest, data) {
            self.transmits.push_back(t);
        }
    }

    /// Replies to a request that arrived on `destination` from `source`.
    fn reply(&mut self, transport: Transport, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        match self.local_at(destination, transport) {
            Some(local) => self.queue(local, source, data),
            None => self.transmits.push_back(Transmit {
                transport,
                source: destination,
                destination: source,
                data,
            }),
        }
    }

    // ----- connectivity checks (RFC 8445 §7.2) -----

    fn can_check(&self) -> bool {
        !self.config.lite && self.remote_credentials.is_some()
    }

    /// Each pair's foundation and whether its local candidate can
    /// originate checks (passive TCP cannot), indexed like the pairs.
    fn pair_facts(&self) -> (Vec<(usize, usize)>, Vec<bool>) {
        self.check_list
            .pairs
            .iter()
            .map(|p| {
                let l = &self.locals[p.local];
                let permitted = l
                    .relay
                    .is_none_or(|r| self.relays[r].client.has_permission(self.remotes[p.remote].addr.ip()));
                (
                    (l.foundation, self.remotes[p.remote].foundation),
                    l.transport == Transport::Udp && permitted,
                )
            })
            .unzip()
    }

    fn has_check_work(&self) -> bool {
        let (foundation, checkable) = self.pair_facts();
        self.check_list.has_work(&foundation, &checkable)
    }

    fn next_check(&mut self) -> Option<usize> {
        let (foundation, checkable) = self.pair_facts();
        self.check_list.next_check(&foundation, &checkable)
    }

    fn send_check(&mut self, now: Instant, pair: usize) {
        let (Some(remote_creds), Some(remote_key)) = (self.remote_credentials.as_ref(), self.remote_key.as_ref())
        else {
            return;
        };
        let p = &self.check_list.pairs[pair];
        let local = &self.locals[p.local];
        let remote = &self.remotes[p.remote];
        let username = format!("{}:{}", remote_creds.ufrag, self.local_credentials.ufrag);
        let priority = candidate_priority(CandidateKind::PeerReflexive, local.local_preference, local.transport);
        let use_candidate = self.role == Role::Controlling && p.use_candidate;
        let policy = match local.transport {
            Transport::Udp => self.config.check_retransmit,
            _ => RetransmitPolicy {
                initial_rto: TCP_CHECK_TIMEOUT,
                max_rto: TCP_CHECK_TIMEOUT,
                max_transmissions: 1,
                last_wait_factor: 1,
            },
        };
        let key = remote_key.clone();
        let (local_idx, dest) = (p.local, remote.addr);
        let tid = self.new_tid();
        let request = stun::CheckRequest {
            username: &username,
            key: &key,
            priority,
            role: self.role,
            tie_breaker: self.tie_breaker,
            use_candidate,
        };
        let Ok(bytes) = stun::check_request(tid, &request) else {
            // Only an over-long ufrag can make this fail; the pair cannot
            // be checked.
            self.check_list.pairs[pair].state = PairState::Failed;
            return;
        };
        let p = &mut self.check_list.pairs[pair];
        if p.state != PairState::Succeeded {
            p.state = PairState::InProgress;
        }
        self.start_transaction(
            now,
            tid,
            Pending {
                kind: PendingKind::Check {
                    pair,
                    use_candidate,
                    role: self.role,
                    priority,
                },
                key: Some(key),
                retransmit: Retransmit::new(policy, now),
                sent_at: now,
                local: local_idx,
                destination: dest,
                bytes,
                cancelled: false,
            },
        );
    }

    // ----- received STUN -----

    fn handle_stun(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match (msg.class(), msg.method()) {
            (Class::Request, Method::BINDING) => self.handle_request(now, transport, source, destination, &msg),
            (Class::Indication, Method::BINDING) => {} // §11 keepalive
            (Class::SuccessResponse | Class::ErrorResponse, _) => {
                self.handle_response(now, transport, source, destination, &msg)
            }
            _ => self.stats.malformed += 1,
        }
    }

    /// RFC 8445 §7.3: answers a connectivity check.
    fn handle_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        msg: &Message<'_>,
    ) {
        let tid = msg.transaction_id();
        let local = self.local_at(destination, transport);
        if self.config.transport_policy == TransportPolicy::Relay && local.is_some_and(|l| !self.locals[l].usable) {
            return;
        }
        // RFC 8489 §9.1.3: without USERNAME and MESSAGE-INTEGRITY, 400.
        let username = match msg.get::<Username>() {
            Ok(Some(Username(u))) if msg.has_integrity() => u,
            _ => {
                self.stats.unauthenticated += 1;
                if let Ok(b) = stun::error_response(tid, ErrorCode::BAD_REQUEST, None, None) {
                    self.reply(transport, source, destination, b);
                }
                return;
            }
        };
        let ours = username.split(':').next().unwrap_or_default();
        let (generation, key) = if ours == self.local_credentials.ufrag {
            (Generation::Current, self.local_key.clone())
        } else if let Some(prev) = self.previous.as_ref().filter(|p| p.local_credentials.ufrag == ours) {
            (Generation::Previous, prev.local_key.clone())
        } else {
            self.unauthorized(tid, transport, source, destination);
            return;
        };
        let kind = match msg.verify_integrity(&key) {
            Ok(kind) => kind,
            Err(_) => {
                self.unauthorized(tid, transport, source, destination);
                return;
            }
        };
        let signed = Some((&key, kind));
        // RFC 8489 §6.3.1: unknown comprehension-required attributes, 420.
        let unknown = UnknownAttributes::collect(msg.unknown_comprehension_required());
        if !unknown.is_empty() {
            self.stats.unknown_attributes += 1;
            if let Ok(b) = stun::error_response(tid, ErrorCode::UNKNOWN_ATTRIBUTE, Some(&unknown), signed) {
                self.reply(transport, source, destination, b);
            }
            return;
        }
        // RFC 8445 §7.1.1: PRIORITY is mandatory.
        let Ok(Some(Priority(priority))) = msg.get::<Priority>() else {
            self.stats.malformed += 1;
            if let Ok(b) = stun::error_response(tid, ErrorCode::BAD_REQUEST, None, signed) {
                self.reply(transport, source, destination, b);
            }
            return;
        };
        let use_candidate = msg.has(attribute::USE_CANDIDATE);
        let their_controlling = msg.get::<IceControlling>().ok().flatten();
        let their_controlled = msg.get::<IceControlled>().ok().flatten();
        if matches!(generation, Generation::Current) && !self.config.lite {
            // RFC 8445 §7.3.1.1: role conflicts.
            match (self.role, their_controlling, their_controlled) {
                (Role::Controlling, Some(IceControlling(tb)), _) => {
                    if self.tie_breaker >= tb {
                        if let Ok(b) = stun::error_response(tid, ErrorCode::ROLE_CONFLICT, None, signed) {
                            self.reply(transport, source, destination, b);
                        }
                        return;
                    }
                    self.switch_role(Role::Controlled);
                }
                (Role::Controlled, _, Some(IceControlled(tb))) => {
                    if self.tie_breaker >= tb {
                        self.switch_role(Role::Controlling);
                    } else {
                        if let Ok(b) = stun::error_response(tid, ErrorCode::ROLE_CONFLICT, None, signed) {
                            self.reply(transport, source, destination, b);
                        }
                        return;
                    }
                }
                _ => {}
            }
        }
        let Ok(response) = stun::success_response(tid, source, &key, kind) else {
            return;
        };
        self.reply(transport, source, destination, response);
        self.stats.checks_received += 1;
        let (Generation::Current, Some(local)) = (generation, local) else {
            return;
        };
        let remote = match self.find_remote(source, transport) {
            Some(r) => r,
            None => self.add_prflx_remote(source, transport, priority),
        };
        let pair = match self.check_list.find(local, remote) {
            Some(p) => p,
            None => {
                let priority = self.pair_priority_of(local, remote);
                let mut pair = CandidatePair::new(local, remote, priority);
                pair.state = PairState::Waiting;
                match self.check_list.add(pair, self.config.max_pairs) {
                    Some(p) => {
                        if !self.config.lite {
                            self.check_list.trigger(p);
                        }
                        p
                    }
                    None => return,
                }
            }
        };
        if self.config.lite {
            // RFC 8445 §8.2.1: a lite agent selects the pair the
            // controlling agent nominates; it never checks it.
            if use_candidate {
                let p = &mut self.check_list.pairs[pair];
                p.state = PairState::Succeeded;
                p.valid = true;
                p.valid_pair = Some(pair);
                p.nominated = true;
                self.select(now, pair);
            }
            return;
        }
        // §7.3.1.4: triggered check. An in-progress check is cancelled
        // and replaced: the peer's check just opened its NAT for us.
        let p = &mut self.check_list.pairs[pair];
        match p.state {
            PairState::Frozen | PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                self.check_list.trigger(pair);
            }
            PairState::InProgress => {
                p.state = PairState::Waiting;
                for q in self.pending.values_mut() {
                    if matches!(q.kind, PendingKind::Check { pair: x, .. } if x == pair) {
                        q.cancelled = true;
                    }
                }
                self.check_list.trigger(pair);
            }
            PairState::Succeeded => {}
        }
        // §7.3.1.5: nomination by the controlling agent.
        if use_candidate && self.role == Role::Controlled {
            let p = &mut self.check_list.pairs[pair];
            if p.state == PairState::Succeeded {
                let valid = p.valid_pair.unwrap_or(pair);
                self.check_list.pairs[valid].nominated = true;
                self.select(now, valid);
            } else {
                p.nominate_on_success = true;
            }
        }
    }

    fn unauthorized(&mut self, tid: TransactionId, transport: Transport, source: SocketAddr, destination: SocketAddr) {
        self.stats.unauthenticated += 1;
        if let Ok(b) = stun::error_response(tid, ErrorCode::UNAUTHORIZED, None, None) {
            self.reply(transport, source, destination, b);
        }
    }

    /// RFC 8445 §7.2.5: a response to one of our requests.
    fn handle_response(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        msg: &Message<'_>,
    ) {
        let tid = msg.transaction_id();
        let Some(pending) = self.pending.get(&tid) else {
            self.stats.unmatched_responses += 1;
            return;
        };
        match &pending.key {
            // RFC 8489 §9.1.4: an unauthenticated response is discarded
            // as if never received.
            Some(key) => {
                if msg.verify_integrity(key).is_err() {
                    self.stats.unauthenticated += 1;
                    return;
                }
            }
            None => {
                if let PendingKind::Gather { server, .. } = pending.kind {
                    if server != source {
                        self.stats.unmatched_responses += 1;
                        return;
                    }
                }
            }
        }
        let Some(pending) = self.pending.remove(&tid) else {
            return;
        };
        let rtt = (pending.retransmit.transmissions() == 1).then(|| now.saturating_duration_since(pending.sent_at));
        match pending.kind {
            PendingKind::Gather { host, server } => {
                self.on_gather_response(host, server, msg);
                self.check_gathering_complete();
            }
            PendingKind::Consent { path } => {
                self.stats.responses_received += 1;
                let local_base = self.locals[pending.local].base;
                let symmetric = source == pending.destination && destination == local_base;
                if msg.class() == Class::SuccessResponse && symmetric {
                    for p in self.selected.iter_mut().chain(self.previous.iter_mut()) {
                        if p.id == path {
                            p.consent.on_response(now);
                            p.rtt = rtt.or(p.rtt);
                        }
                    }
                }
            }
            PendingKind::Check {
                pair,
                use_candidate,
                role,
                priority,
            } => {
                self.stats.responses_received += 1;
                self.on_check_response(
                    now,
                    transport,
                    source,
                    destination,
                    msg,
                    pair,
                    use_candidate,
                    role,
                    priority,
                    rtt,
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_check_response(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        msg: &Message<'_>,
        pair: usize,
        use_candidate: bool,
        sent_role: Role,
        priority: u32,
        rtt: Option<Duration>,
    ) {
        let p = &self.check_list.pairs[pair];
        let (local_idx, remote_idx) = (p.local, p.remote);
        let local = &self.locals[local_idx];
        let remote = &self.remotes[remote_idx];
        // §7.2.5.2.1: responses must come back symmetric.
        if source != remote.addr || destination != local.base || transport != local.transport {
            self.fail_pair(pair);
            return;
        }
        if msg.class() == Class::ErrorResponse {
            let code = msg.get::<ErrorCode>().ok().flatten().map(|e| e.code);
            if code == Some(487) {
                // §7.2.5.1: switch to the role opposite the one the
                // request claimed, and check the pair again.
                if self.role == sent_role {
                    self.switch_role(match sent_role {
                        Role::Controlling => Role::Controlled,
                        Role::Controlled => Role::Controlling,
                    });
                }
                let p = &mut self.check_list.pairs[pair];
                if p.state != PairState::Succeeded {
                    p.state = PairState::Waiting;
                }
                self.check_list.trigger(pair);
            } else {
                self.fail_pair(pair);
            }
            return;
        }
        let Ok(Some(XorMappedAddress(mapped))) = msg.get::<XorMappedAddress>() else {
            self.stats.malformed += 1;
            self.fail_pair(pair);
            return;
        };
        // §7.2.5.3.1: a mapped address we do not know is a new
        // peer-reflexive local candidate with the same base.
        let base = local.base;
        let valid_local = if mapped == local.addr {
            local_idx
        } else if let Some(i) = self
            .locals
            .iter()
            .position(|l| l.addr == mapped && l.base == base && l.transport == transport)
        {
            i
        } else {
            let (lp, protocol) = (local.local_preference, local.candidate.protocol);
            let relay = local.relay;
            let i = self.push_local(
                CandidateKind::PeerReflexive,
                mapped,
                base,
                transport,
                protocol,
                lp,
                None,
                None,
            );
            self.locals[i].candidate.priority = priority;
            self.locals[i].relay = relay;
            i
        };
        // §7.2.5.3.2: the valid pair.
        let valid = if valid_local == local_idx {
            pair
        } else if let Some(v) = self.check_list.find(valid_local, remote_idx) {
            v
        } else {
            let prio = self.pair_priority_of(valid_local, remote_idx);
            let mut v = CandidatePair::new(valid_local, remote_idx, prio);
            v.in_check_list = false;
            v.state = PairState::Succeeded;
            self.check_list.pairs.push(v);
            self.check_list.pairs.len() - 1
        };
        let p = &mut self.check_list.pairs[pair];
        p.state = PairState::Succeeded;
        p.valid_pair = Some(valid);
        p.rtt = rtt.or(p.rtt);
        let nominate_on_success = p.nominate_on_success;
        let v = &mut self.check_list.pairs[valid];
        v.valid = true;
        v.state = PairState::Succeeded;
        v.rtt = rtt.or(v.rtt);
        self.first_valid_at.get_or_insert(now);
        // §7.2.5.3.3: unfreeze the foundation.
        let (foundation, _) = self.pair_facts();
        self.check_list.unfreeze_foundation(&foundation, pair);
        // A check on the selected path also refreshes consent.
        if let Some(path) = self
            .selected
            .as_mut()
            .filter(|s| s.pair == Some(valid) || s.pair == Some(pair))
        {
            path.consent.on_response(now);
            path.rtt = rtt.or(path.rtt);
        }
        // §8.1.1 / §7.3.1.5: nomination.
        let nominated =
            (use_candidate && self.role == Role::Controlling) || (self.role == Role::Controlled && nominate_on_success);
        if nominated {
            self.check_list.pairs[valid].nominated = true;
            if self.nominating == Some(pair) {
                self.nominating = None;
            }
            self.select(now, valid);
        }
    }

    fn fail_pair(&mut self, pair: usize) {
        let p = &mut self.check_list.pairs[pair];
        p.state = PairState::Failed;
        if self.nominating == Some(pair) {
            self.nominating = None;
            p.use_candidate = false;
            p.valid = false;
        }
    }

    /// RFC 8445 §7.2.5.1, §7.3.1.1: a role change recomputes pair
    /// priorities; the new controlling agent starts nominating afresh.
    fn switch_role(&mut self, role: Role) {
        if self.role == role || self.config.lite {
            return;
        }
        self.role = role;
        self.nominating = None;
        for p in &mut self.check_list.pairs {
            p.use_candidate = false;
        }
        self.recompute_priorities();
        self.events.push_back(Event::RoleChanged(role));
    }

    // ----- nomination and selection (RFC 8445 §8) -----

    fn nomination_deadline(&self) -> Option<Instant> {
        if self.config.lite
            || self.role != Role::Controlling
            || self.nominating.is_some()
            || self.selected.as_ref().is_some_and(|s| s.pair.is_some())
        {
            return None;
        }
        Some(self.first_valid_at? + self.config.nomination_delay)
    }

    /// §8.1.1 regular nomination: once the best valid pair cannot be
    /// beaten by a pair still being checked (or after the nomination
    /// delay), check it again with USE-CANDIDATE.
    fn maybe_nominate(&mut self, now: Instant) {
        let Some(deadline) = self.nomination_deadline() else {
            return;
        };
        let Some(best) = self.check_list.best_valid() else {
            return;
        };
        let best_priority = self.check_list.pairs[best].priority;
        let better_pending = self
            .check_list
            .pairs
            .iter()
            .any(|p| p.in_check_list && !p.is_done() && p.priority > best_priority);
        if better_pending && now < deadline {
            return;
        }
        self.nominating = Some(best);
        self.check_list.pairs[best].use_candidate = true;
        self.check_list.triggered.retain(|&p| p != best);
        // One check outside Ta pacing: it decides when data can flow.
        self.send_check(now, best);
    }

    /// Makes a nominated valid pair the selected one if it beats the
    /// current one (the selection only moves to higher priority).
    fn select(&mut self, now: Instant, pair: usize) {
        let p = &self.check_list.pairs[pair];
        let remote = self.remotes[p.remote].clone();
        if let Some(sel) = &self.selected {
            if sel.local == p.local && sel.remote.addr == remote.addr {
                return;
            }
            if sel.priority >= p.priority {
                return;
            }
        }
        let first_check = now + consent::jittered(&mut self.rng, self.config.consent_interval);
        self.next_path_id += 1;
        let path = Path {
            id: self.next_path_id,
            local: p.local,
            remote,
            pair: Some(pair),
            priority: p.priority,
            local_credentials: self.local_credentials.clone(),
            local_key: self.local_key.clone(),
            remote_credentials: self.remote_credentials.clone(),
            remote_key: self.remote_key.clone(),
            consent: Consent::new(now, first_check),
            rtt: p.rtt,
        };
        self.events.push_back(Event::SelectedPair {
            local: self.locals[path.local].candidate.clone(),
            remote: path.remote.candidate.clone(),
        });
        // RFC 8656 §12: ChannelData costs 4 bytes instead of 36.
        if let Some(relay) = self.locals[path.local].relay {
            self.relays[relay].client.bind_channel(path.remote.addr, now);
        }
        self.selected = Some(path);
        // RFC 8445 §9: the restart is over; the old path goes.
        self.previous = None;
    }

    // ----- consent (RFC 7675) and keepalives (RFC 8445 §11) -----

    fn consent_tick(&mut self, now: Instant) {
        let mut paths: Vec<Path> = self.selected.take().into_iter().collect();
        let had_previous = self.previous.is_some();
        paths.extend(self.previous.take());
        let has_selected = paths.len() == 2 || (!had_previous && paths.len() == 1);
        for path in &mut paths {
            if path.consent.expired {
                continue;
            }
            if self.config.lite {
                if now >= path.consent.last_sent + self.config.keepalive_interval {
                    let tid = self.new_tid();
                    if let Ok(b) = stun::binding_indication(tid) {
                        self.queue(path.local, path.remote.addr, b);
                    }
                    path.consent.last_sent = now;
                }
                continue;
            }
            if now >= path.consent.next_check {
                self.send_consent_check(now, path);
            }
        }
        let mut it = paths.into_iter();
        if has_selected {
            self.selected = it.next();
        }
        self.previous = it.next();
    }

    fn send_consent_check(&mut self, now: Instant, path: &mut Path) {
        let next = now + consent::jittered(&mut self.rng, self.config.consent_interval);
        let (Some(creds), Some(key)) = (path.remote_credentials.as_ref(), path.remote_key.clone()) else {
            path.consent.next_check = next;
            return;
        };
        let local = &self.locals[path.local];
        let username = format!("{}:{}", creds.ufrag, path.local_credentials.ufrag);
        let priority = candidate_priority(CandidateKind::PeerReflexive, local.local_preference, local.transport);
        let tid = self.new_tid();
        let request = stun::CheckRequest {
            username: &username,
            key: &key,
            priority,
            role: self.role,
            tie_breaker: self.tie_breaker,
            use_candidate: false,
        };
        let Ok(bytes) = stun::check_request(tid, &request) else {
            return;
        };
        // Retransmit within the interval only; the next check takes over.
        let policy = RetransmitPolicy {
            last_wait_factor: 4,
            ..self.config.check_retransmit
        };
        self.start_transaction(
            now,
            tid,
            Pending {
                kind: PendingKind::Consent { path: path.id },
                key: Some(key),
                retransmit: Retransmit::new(policy, now),
                sent_at: now,
                local: path.local,
                destination: path.remote.addr,
                bytes,
                cancelled: false,
            },
        );
        path.consent.on_check_sent(now, next);
    }

    // ----- state (W3C RTCIceConnectionState) -----

    fn after_input(&mut self, now: Instant) {
        self.maybe_nominate(now);
        self.check_gathering_complete();
        self.update_state(now);
    }

    fn set_state(&mut self, state: ConnectionState) {
        // W3C: `completed` follows `connected`.
        if state == ConnectionState::Completed && matches!(self.state, ConnectionState::New | ConnectionState::Checking)
        {
            self.set_state(ConnectionState::Connected);
        }
        if self.state != state {
            self.state = state;
            self.events.push_back(Event::ConnectionState(state));
        }
    }

    fn update_state(&mut self, now: Instant) {
        if self.closed {
            return self.set_state(ConnectionState::Closed);
        }
        let (disc, timeout) = (self.config.disconnected_timeout, self.config.consent_timeout);
        let lite = self.config.lite;
        if let Some(prev) = self.previous.as_mut() {
            if !lite && prev.consent.freshness(now, disc, timeout) == Freshness::Expired {
                self.previous = None;
            }
        }
        let state = if self.failed {
            ConnectionState::Failed
        } else if let Some(path) = self.selected.as_mut().or(self.previous.as_mut()) {
            let freshness = if lite {
                Freshness::Fresh
            } else {
                path.consent.freshness(now, disc, timeout)
            };
            match freshness {
                Freshness::Expired => {
                    self.failed = true;
                    ConnectionState::Failed
                }
                Freshness::Disconnected => ConnectionState::Disconnected,
                Freshness::Fresh if self.selected.is_some() && self.checks_complete() => ConnectionState::Completed,
                Freshness::Fresh => ConnectionState::Connected,
            }
        } else if self.check_list.pairs.is_empty() && self.remotes.is_empty() && self.mdns_pending.is_empty() {
            ConnectionState::New
        } else if !lite
            && self.remote_end_of_candidates
            && self.gathering_complete
            && self.mdns_pending.is_empty()
            && self.check_list.pairs.iter().all(|p| p.state == PairState::Failed)
            && self.check_list.triggered.is_empty()
        {
            self.failed = true;
            ConnectionState::Failed
        } else {
            ConnectionState::Checking
        };
        self.set_state(state);
    }

    /// Every check is over and no more candidates can come.
    fn checks_complete(&self) -> bool {
        self.remote_end_of_candidates
            && self.gathering_complete
            && self.mdns_pending.is_empty()
            && self.check_list.triggered.is_empty()
            && self.check_list.pairs.iter().all(|p| !p.in_check_list || p.is_done())
    }
}
