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
//!   that arrives on a socket the agent was given,
//!   [`Agent::handle_connection_closed`] when a TCP or TLS connection to a
//!   TURN server ends, and [`Agent::handle_timeout`] when the deadline
//!   of [`Agent::poll_timeout`] passes;
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
//! # TURN over TCP and TLS
//!
//! A [`TurnServer`](crate::turn_client::TurnServer) with transport
//! [`Transport::Tcp`] (or [`Transport::Tls`]) is reached over a
//! connection the I/O layer owns; the relayed candidate it yields is
//! still UDP between the server and the peer (RFC 8656 §3.1). The
//! contract:
//!
//! - A [`Transmit`] (or the [`Route`] of what [`Agent::send`] wrote)
//!   with transport `Tcp` (`Tls`) and a TURN server's address as
//!   `destination` belongs to the connection from the host address
//!   `source` to that server: one connection per (host address,
//!   server address) pair, opened on the first such transmit (holding
//!   what follows until it is up) and kept while the agent lives. The
//!   local port the connection itself gets does not matter.
//! - The bytes are written to the stream as they are: STUN messages and
//!   ChannelData (padded to 4 bytes) delimit themselves (RFC 8656
//!   §12.5), so there is no RFC 4571 framing.
//! - Bytes read from the connection are appended to a buffer and cut
//!   with [`natter_stun::stream_frame_len`]; each whole frame goes to
//!   [`Agent::handle_receive`] with that transport, the server's address
//!   as `source` and the host address as `destination`. An error from
//!   `stream_frame_len` means the stream is not TURN: close it.
//! - When the connection fails to open, or closes, the I/O layer calls
//!   [`Agent::handle_connection_closed`]: the allocation is gone with it.
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
//!
//! # Layout
//!
//! One module per part of the RFCs: `gather` (RFC 8445 §5.1),
//! `candidates` (§5.1.2, §5.3), `pairing` and `check_list` (§6.1.2),
//! `transactions` (RFC 8489 §6.2, §6.3), `checks` (§7.2), `answer`
//! (§7.3), `role_conflict` (§7.3.1.1, §7.2.5.1), `nomination` (§8),
//! `consent` (RFC 7675, §11), `state` (W3C `RTCIceConnectionState`) and
//! `stun` (the messages). This module holds the [`Agent`], its public
//! methods and the dispatch of input to those parts.

mod answer;
mod candidates;
mod check_list;
mod checks;
mod config;
mod consent;
mod event;
mod gather;
mod nomination;
mod pairing;
mod role_conflict;
mod state;
mod stun;
mod transactions;

pub use check_list::{pair_priority, PairState};
pub use config::{AgentConfig, Role, TransportPolicy};
pub use event::{ConnectionState, Event, Received, Stats};

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use natter_stun::{Class, IntegrityKey, Message, Method, PacketKind, TransactionId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::candidate::{Candidate, CandidateAddress, CandidateKind, Protocol, TcpType};
use crate::sped::{DtlsInStun, DtlsInStunAck, Sped};
use crate::turn_client::TurnReceive;
use crate::{Credentials, Route, Transmit, Transport};
use candidates::{LocalCandidate, RemoteCandidate};
use check_list::CheckList;
use gather::{GatherTask, Relay};
use nomination::Path;
use stun::short_term_key;
use transactions::Pending;

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

/// How a STUN message reached the agent: over which transport, from
/// where, and on which local socket (for relayed data, the relayed
/// address).
#[derive(Clone, Copy, Debug)]
struct Arrival {
    transport: Transport,
    source: SocketAddr,
    destination: SocketAddr,
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
    /// the new check list selects one. Boxed: a path is large (its two
    /// integrity keys) and most connections never restart (issue 18).
    previous: Option<Box<Path>>,
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
    /// draft-hancke-webrtc-sped, when [`AgentConfig::sped`] is on.
    sped: Option<Sped>,
    /// Success responses to checks that embedded a new DTLS packet,
    /// written at the next [`Agent::poll_transmit`] so that they carry
    /// what DTLS answered (see [`crate::sped`]).
    deferred: Vec<answer::DeferredResponse>,
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
        let sped = config.sped.then(Sped::new);
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
            sped,
            deferred: Vec::new(),
        }
    }

    // ----- getters -----

    /// SPED's state and counters, when [`AgentConfig::sped`] is on.
    pub fn sped(&self) -> Option<&Sped> {
        self.sped.as_ref()
    }

    /// SPED, for the DTLS layer: its flights in, the peer's out, and the
    /// end of the handshake (see [`crate::sped`]).
    pub fn sped_mut(&mut self) -> Option<&mut Sped> {
        self.sped.as_mut()
    }

    pub fn state(&self) -> ConnectionState {
        self.state
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The ufrags of the checks this agent answers (§7.3): its own and,
    /// while a restart is under way, the one before it (§9). An endpoint
    /// that shares a socket between agents routes checks by them.
    pub fn local_ufrags(&self) -> impl Iterator<Item = &str> + '_ {
        let previous = self.previous.as_ref().map(|p| p.local_credentials.ufrag.as_str());
        std::iter::once(self.local_credentials.ufrag.as_str()).chain(previous)
    }

    /// The ufrag and password to signal (`a=ice-ufrag`, `a=ice-pwd`).
    pub fn local_credentials(&self) -> &Credentials {
        &self.local_credentials
    }

    /// The local and remote candidates data flows between.
    pub fn selected_pair(&self) -> Option<(&Candidate, &Candidate)> {
        let path = self.active_path()?;
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
        stats.selected_rtt = self.active_path().and_then(|p| p.rtt);
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
        let idx = self.gather_host(addr, transport, protocol);
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
        self.drain_relays();
        self.update_state(now);
        Ok(())
    }

    /// RFC 8838 §8.2: the peer will send no more candidates.
    pub fn end_of_remote_candidates(&mut self, now: Instant) {
        self.remote_end_of_candidates = true;
        self.remotes.shrink_to_fit();
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
        self.drain_relays();
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
                self.previous = Some(Box::new(Path { pair: None, ..path }));
            }
        }
        self.local_key = short_term_key(&local.pwd);
        self.local_credentials = local;
        self.remote_credentials = None;
        self.remote_key = None;
        self.remotes.clear();
        self.check_list.clear();
        self.pending.retain(|_, p| !p.is_check());
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

    /// Application data to the peer on the selected pair (or, while SPED
    /// embeds the DTLS handshake, the best valid pair): writes the
    /// datagram at the end of `out` (framed for the TURN server when the
    /// pair is relayed, RFC 8656 §11.1 and §12.4) and returns where it
    /// goes. Nothing is allocated once `out` has room. `None`, with `out`
    /// unchanged, before a pair is selected, after consent expired (RFC
    /// 7675 §5.1) or once closed.
    pub fn send(&mut self, data: &[u8], out: &mut Vec<u8>, now: Instant) -> Option<Route> {
        if self.closed {
            return None;
        }
        let Some(path) = self.selected.as_mut().or(self.previous.as_deref_mut()) else {
            // draft-hancke-webrtc-sped §3.3.5: while the handshake is
            // embedded, DTLS may go on a pair whose check succeeded.
            let (local, dest) = self.sped_pair()?;
            return self.route(local, dest, data, out);
        };
        if path.consent.expired {
            return None;
        }
        path.consent.last_sent = now;
        let (local, dest) = (path.local, path.remote.addr);
        self.route(local, dest, data, out)
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

    /// A datagram that arrived from `source` on the local socket
    /// `destination`, or one frame of a TCP or TLS connection: a STUN
    /// message of ICE-TCP, or a STUN message or ChannelData from a TURN
    /// server (see [TURN over TCP and TLS](self#turn-over-tcp-and-tls)).
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
        if let Some(i) = self.relay_at(transport, source, destination) {
            match self.relays[i].client.handle_receive(now, data) {
                TurnReceive::NotTurn => {}
                TurnReceive::Handled => {
                    self.after_input(now);
                    return Received::Handled;
                }
                TurnReceive::Data { peer, data } => {
                    let Some(relayed) = self.relays[i].local.map(|l| self.locals[l].base) else {
                        return Received::Handled;
                    };
                    if PacketKind::of(data) == PacketKind::Stun {
                        let arrival = Arrival {
                            transport: Transport::Udp,
                            source: peer,
                            destination: relayed,
                        };
                        self.handle_stun(now, arrival, data);
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
            let arrival = Arrival {
                transport,
                source,
                destination,
            };
            self.handle_stun(now, arrival, data);
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

    /// The TCP or TLS connection from host address `local` to `remote`
    /// could not be opened, or closed. If `remote` is a TURN server the
    /// agent allocates through, the allocation ends with it (RFC 8656
    /// §3.1): gathering stops waiting for it, or the pairs through it
    /// fail. ICE-TCP connections are not tracked; this ignores them.
    pub fn handle_connection_closed(
        &mut self,
        now: Instant,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        if self.closed {
            return;
        }
        self.last_now = now;
        let Some(i) = self.relay_at(transport, remote, local) else {
            return;
        };
        self.relays[i].client.handle_connection_closed();
        self.after_input(now);
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
        self.drain_relays();
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
                self.start_gather_task(now, task);
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
        self.reply_deferred();
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if self.events.is_empty() {
            // Events come in bursts (gathering, connecting) and rarely
            // after: an idle agent keeps no queue (issue 18).
            self.events.shrink_to_fit();
        }
        event
    }

    /// The earliest moment [`Agent::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let ta = (!self.gather_queue.is_empty() || (self.can_check() && self.has_check_work())).then_some(self.ta_due);
        self.pending
            .values()
            .map(|p| p.retransmit.deadline())
            .chain(self.relays.iter().filter_map(|r| r.client.poll_timeout()))
            .chain(ta)
            .chain(self.nomination_deadline())
            .chain(self.consent_deadlines())
            .min()
    }

    // ----- dispatch -----

    /// The path data flows on: the selected one, or during an ICE
    /// restart the one selected before.
    fn active_path(&self) -> Option<&Path> {
        self.selected.as_ref().or(self.previous.as_deref())
    }

    /// The selected path and the one before a restart, if any.
    fn paths(&self) -> impl Iterator<Item = &Path> {
        self.selected.iter().chain(self.previous.as_deref())
    }

    /// RFC 8445 §7.2.5, §7.3: requests are checks to answer, responses
    /// end our transactions; Binding indications are keepalives (§11).
    fn handle_stun(&mut self, now: Instant, arrival: Arrival, data: &[u8]) {
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.malformed += 1;
                return;
            }
        };
        match (msg.class(), msg.method()) {
            (Class::Request, Method::BINDING) => self.handle_request(now, arrival, &msg),
            (Class::Indication, Method::BINDING) if self.config.lite => self.peer_alive(now, arrival),
            (Class::Indication, Method::BINDING) => {}
            (Class::SuccessResponse | Class::ErrorResponse, _) => self.handle_response(now, arrival, &msg),
            _ => self.stats.malformed += 1,
        }
    }

    /// draft-hancke-webrtc-sped §3.3: SPED's attributes in an
    /// authenticated check or success response from the peer. True when
    /// it carried a DTLS packet that is new.
    fn sped_received(&mut self, msg: &Message<'_>) -> bool {
        let Some(sped) = self.sped.as_mut() else {
            return false;
        };
        let data = msg.has(crate::sped::DTLS_IN_STUN).then(|| msg.require::<DtlsInStun>());
        let ack = msg
            .has(crate::sped::DTLS_IN_STUN_ACK)
            .then(|| msg.require::<DtlsInStunAck>());
        let received = sped.stats().embedded_received;
        sped.on_received(data, ack);
        sped.stats().embedded_received > received
    }

    /// §3.3.5: the valid pair of highest priority, for DTLS while SPED
    /// is on and no pair is selected yet.
    fn sped_pair(&self) -> Option<(usize, SocketAddr)> {
        let pair = &self.check_list.pairs[self.sped_valid_pair()?];
        Some((pair.local, self.remotes[pair.remote].addr))
    }

    /// The index of [`Agent::sped_pair`]'s pair.
    fn sped_valid_pair(&self) -> Option<usize> {
        if !self.sped.as_ref().is_some_and(Sped::is_active) {
            return None;
        }
        let pairs = &self.check_list.pairs;
        (0..pairs.len())
            .filter(|&i| pairs[i].valid)
            .max_by_key(|&i| pairs[i].priority)
    }

    /// draft-hancke-webrtc-sped §3.3.4: DTLS sent all it had (after
    /// [`Sped::capture`]). A new flight rides the next check or response;
    /// when none is due, because what DTLS answered came in a plain
    /// packet or in a response (a ClientHello of two datagrams, the
    /// second sent plain once the peer's pair is writable), a check
    /// goes at once on the best valid pair to carry it, as the
    /// ClientHello rides the first checks. The plain copy still goes
    /// too (§3.3.5).
    pub fn sped_flush(&mut self, now: Instant) {
        let Some(sped) = self.sped.as_mut() else { return };
        if !sped.flush() || !self.deferred.is_empty() || !self.can_check() {
            return;
        }
        if let Some(pair) = self.sped_valid_pair() {
            self.send_check(now, pair);
        }
    }

    /// What the next check or response embeds, copied out of the SPED
    /// state (a check is written while the agent is borrowed).
    fn next_embedded(&mut self) -> Option<(Option<Vec<u8>>, DtlsInStunAck)> {
        let (data, ack) = self.sped.as_mut()?.to_send();
        Some((data.map(<[u8]>::to_vec), ack?))
    }
}
