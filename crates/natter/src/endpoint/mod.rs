//! [`Endpoint`]: many [`PeerConnection`]s on the same sockets, as an SFU
//! or any server holding many calls needs (the split of quinn-proto's
//! `Endpoint` and `Connection`).
//!
//! An endpoint owns no socket either: the I/O layer reads the sockets of
//! its local addresses and hands every datagram to
//! [`Endpoint::handle_receive`], which routes it to one connection
//! (RFC 7983 §7 for what a datagram is):
//! - a STUN request by the local ufrag of its USERNAME (RFC 8445 §7.2.2):
//!   `ours:theirs`, ours being one of [`PeerConnection::local_ufrags`];
//! - a STUN response by the transaction id of the request a connection
//!   sent (RFC 8489 §6.3.3): checks, and Binding and TURN requests to
//!   servers;
//! - everything else (DTLS, SRTP and SRTCP, STUN indications, TURN
//!   ChannelData) by its local and remote address, which a connection
//!   claims when it sends there something only a validated path carries
//!   (a STUN success response, only sent after the check's
//!   MESSAGE-INTEGRITY held; an indication; application data), or when
//!   a success response to one of its requests comes from there.
//!
//! What matches no connection is dropped and counted
//! ([`EndpointStats`]); a connection gets only datagrams addressed to it,
//! and drops and counts what it cannot authenticate itself.
//!
//! Limits that follow from routing by address: one remote transport
//! address talks to one connection of an endpoint (the last to claim it),
//! and connections sharing a socket cannot each allocate on the same
//! TURN server (RFC 8656 §2.2: one allocation per 5-tuple), so a
//! connection that relays through TURN belongs on sockets of its own.
//!
//! # Methods
//!
//! - getters: [`Endpoint::get`] (a connection), [`Endpoint::len`], [`Endpoint::stats`],
//!   [`Endpoint::local_addresses`];
//! - application commands: [`Endpoint::insert`] a connection made with
//!   [`PeerConnection::new`] (an ICE-lite server sets
//!   [`PeerConfig::ice_lite`](crate::PeerConfig::ice_lite)), reach it with
//!   [`Endpoint::connection`] (a guard that derefs to the
//!   [`PeerConnection`]: its JSEP calls, data channels, tracks) or
//!   [`Endpoint::connection_pair`] (two at once, for forwarding), and
//!   [`Endpoint::remove`] it;
//! - input: [`Endpoint::handle_receive`] and [`Endpoint::handle_timeout`];
//! - output, drained after every input and command in this order:
//!   [`Endpoint::poll_transmit`] until `None`, then
//!   [`Endpoint::poll_timeout`], then [`Endpoint::poll_event`] until
//!   `None`. Each names the connection it comes from.
//!
//! Per connection, its own order holds (transmits, timeout, events).
//! Timers are a heap of connection deadlines, so a wake-up costs the
//! connections due, not all of them.
//!
//! ```
//! use std::time::Instant;
//! use natter::endpoint::Endpoint;
//! use natter::{PeerConfig, PeerConnection};
//!
//! let now = Instant::now();
//! let mut endpoint = Endpoint::new(vec!["192.0.2.1:3478".parse().unwrap()]);
//! let config = PeerConfig { ice_lite: true, ..PeerConfig::default() };
//! let handle = endpoint.insert(PeerConnection::new(config, now)?)?;
//! let mut pc = endpoint.connection(handle).expect("just inserted");
//! // pc.set_remote_description(&offer)?; let answer = pc.create_answer()?; ...
//! # let _ = &mut pc;
//! # Ok::<(), natter::PeerError>(())
//! ```

mod stats;

pub use stats::EndpointStats;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use natter_ice::Transport;
use natter_stun::{Class, Message, PacketKind, TransactionId, Username};

use crate::peer::{PeerConnection, PeerError, PeerEvent, Transmit};

/// RFC 8489 §6.2.1: a request is given up after Rc transmissions and a
/// last wait, 39.5 s with the default RTO; a response later than this
/// finds no connection.
const TRANSACTION_LIFETIME: Duration = Duration::from_secs(40);

/// Names a connection of an [`Endpoint`] while it is there; a handle of
/// a removed connection names nothing, even once its slot is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle {
    index: u32,
    generation: u32,
}

impl std::fmt::Display for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

/// A connection and what the endpoint routes to it.
struct Entry {
    pc: PeerConnection,
    /// The ufrags registered for it in `by_ufrag`.
    ufrags: Vec<String>,
    /// The (local, remote) addresses it claimed in `by_address`.
    addresses: Vec<(SocketAddr, SocketAddr)>,
    /// Its output waits in `output`.
    in_output: bool,
    /// Its events wait in `events`.
    in_events: bool,
    /// The deadline of its entry in `timers`.
    scheduled: Option<Instant>,
    /// See [`Endpoint::set_paused`].
    paused: bool,
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// Many peer connections on shared sockets. See the [module
/// documentation](self).
pub struct Endpoint {
    local_addresses: Vec<SocketAddr>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    by_ufrag: HashMap<String, ConnectionHandle>,
    by_address: HashMap<(SocketAddr, SocketAddr), ConnectionHandle>,
    /// Requests the connections sent, for routing their responses.
    transactions: HashMap<TransactionId, (ConnectionHandle, Instant)>,
    /// When expired transactions are next swept out.
    next_sweep: Option<Instant>,
    /// Connections touched by an input or command whose transmits are
    /// not all polled.
    output: VecDeque<ConnectionHandle>,
    /// Connections whose transmits were polled and whose events may not be.
    events: VecDeque<ConnectionHandle>,
    timers: BinaryHeap<Reverse<(Instant, ConnectionHandle)>>,
    stats: EndpointStats,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addresses", &self.local_addresses)
            .field("connections", &self.len)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint whose connections gather host candidates on these
    /// addresses (the sockets the I/O layer reads).
    pub fn new(local_addresses: Vec<SocketAddr>) -> Self {
        Endpoint {
            local_addresses,
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
            transactions: HashMap::new(),
            next_sweep: None,
            output: VecDeque::new(),
            events: VecDeque::new(),
            timers: BinaryHeap::new(),
            stats: EndpointStats::default(),
        }
    }

    // ----- getters -----

    /// How many connections the endpoint holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    /// The connection `handle` names, to read (its state, stats,
    /// descriptions); [`Endpoint::connection`] to change it.
    pub fn get(&self, handle: ConnectionHandle) -> Option<&PeerConnection> {
        self.entry(handle).map(|entry| &entry.pc)
    }

    /// What was routed and what was dropped.
    pub fn stats(&self) -> EndpointStats {
        EndpointStats {
            connections: self.len as u64,
            ..self.stats
        }
    }

    // ----- application commands -----

    /// Takes a new connection: its host candidates are the endpoint's
    /// addresses. Fails if it already has local addresses of its own.
    pub fn insert(&mut self, mut pc: PeerConnection) -> Result<ConnectionHandle, PeerError> {
        for &address in &self.local_addresses {
            pc.add_local_address(address)?;
        }
        pc.end_of_local_addresses();
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).map_err(|_| PeerError::TooManyConnections)?;
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Entry {
            pc,
            ufrags: Vec::new(),
            addresses: Vec::new(),
            in_output: false,
            in_events: false,
            scheduled: None,
            paused: false,
        });
        let handle = ConnectionHandle {
            index,
            generation: slot.generation,
        };
        self.len += 1;
        self.touch(handle);
        Ok(handle)
    }

    /// The connection `handle` names, while it is there. When the guard
    /// drops, the endpoint learns what the calls changed (new ICE
    /// credentials) and queues the connection's output.
    pub fn connection(&mut self, handle: ConnectionHandle) -> Option<Connection<'_>> {
        self.entry(handle)?;
        Some(Connection { endpoint: self, handle })
    }

    /// Two different connections at once, as a forwarder needs to hand
    /// the packet one of them lends ([`PeerConnection::poll_rtp`]) to
    /// the other ([`PeerConnection::write_rtp`]) without copying it.
    /// `None` unless both are there and `a` is not `b`. Dropping the
    /// guard does what dropping a [`Connection`] does, for both.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use natter::endpoint::Endpoint;
    /// # use natter::{PeerConfig, PeerConnection};
    /// let now = Instant::now();
    /// let mut endpoint = Endpoint::new(vec!["192.0.2.1:3478".parse().unwrap()]);
    /// let a = endpoint.insert(PeerConnection::new(PeerConfig::default(), now)?)?;
    /// let b = endpoint.insert(PeerConnection::new(PeerConfig::default(), now)?)?;
    /// assert!(endpoint.connection_pair(a, a).is_none());
    /// let mut pair = endpoint.connection_pair(a, b).expect("both are there");
    /// let (from, to) = pair.get();
    /// assert_ne!(from.certificate().fingerprint(), to.certificate().fingerprint());
    /// drop(pair);
    /// endpoint.remove(b);
    /// assert!(endpoint.connection_pair(a, b).is_none());
    /// # Ok::<(), natter::PeerError>(())
    /// ```
    pub fn connection_pair(&mut self, a: ConnectionHandle, b: ConnectionHandle) -> Option<ConnectionPair<'_>> {
        if a == b {
            return None;
        }
        self.entry(a)?;
        self.entry(b)?;
        Some(ConnectionPair {
            endpoint: self,
            handles: [a, b],
        })
    }

    /// Backpressure for an application that reads a connection's events
    /// too slowly: while paused, the connection gets only what keeps it
    /// alive (STUN: checks and consent, RFC 7675; DTLS handshake records
    /// and alerts), and its media and application data (RTP, RTCP, DTLS
    /// application data carrying SCTP) are dropped and counted, to be
    /// repaired by retransmission once it runs again. Its neighbours on
    /// the socket are not slowed down.
    pub fn set_paused(&mut self, handle: ConnectionHandle, paused: bool) {
        if let Some(entry) = self.entry_mut(handle) {
            entry.paused = paused;
        }
    }

    /// Takes the connection out, with whatever it had not sent; nothing
    /// is routed to it any more.
    pub fn remove(&mut self, handle: ConnectionHandle) -> Option<PeerConnection> {
        self.entry(handle)?;
        let slot = &mut self.slots[handle.index as usize];
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(handle.index);
        self.len -= 1;
        for ufrag in &entry.ufrags {
            if self.by_ufrag.get(ufrag.as_str()) == Some(&handle) {
                self.by_ufrag.remove(ufrag.as_str());
            }
        }
        for key in &entry.addresses {
            if self.by_address.get(key) == Some(&handle) {
                self.by_address.remove(key);
            }
        }
        self.transactions.retain(|_, (owner, _)| *owner != handle);
        // Its places in `output`, `events` and `timers` name a slot of
        // another generation now, and are skipped.
        Some(entry.pc)
    }

    // ----- input -----

    /// A datagram from `source` that arrived on the local address
    /// `destination`: to the connection it belongs to, whose handle is
    /// returned, or dropped and counted.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Option<ConnectionHandle> {
        self.stats.datagrams_received += 1;
        let handle = self.route(source, destination, data)?;
        let entry = self.entry_mut(handle)?;
        if entry.paused && is_payload(data) {
            self.stats.paused_dropped += 1;
            return None;
        }
        entry.pc.handle_receive(now, Transport::Udp, source, destination, data);
        self.queue_output(handle);
        Some(handle)
    }

    /// Fires the timers of every connection that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, handle))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.entry_mut(handle).filter(|e| e.scheduled == Some(deadline)) else {
                // Removed, or scheduled again since.
                continue;
            };
            entry.scheduled = None;
            match entry.pc.poll_timeout() {
                Some(due) if due <= now => {
                    entry.pc.handle_timeout(now);
                    self.queue_output(handle);
                }
                // Its deadline moved later since it was scheduled.
                Some(later) => self.schedule(handle, later),
                None => {}
            }
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.transactions
                .retain(|_, (_, sent)| now.saturating_duration_since(*sent) < TRANSACTION_LIFETIME);
            self.next_sweep = (!self.transactions.is_empty()).then(|| now + TRANSACTION_LIFETIME);
        }
    }

    // ----- output -----

    /// Writes the next datagram to send into `buf`, and says where it
    /// goes and which connection it is from: the connection's
    /// [`PeerConnection::poll_transmit`], so with `max_datagrams` above 1
    /// a GSO batch of one connection's datagrams.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<(ConnectionHandle, Transmit)> {
        while let Some(&handle) = self.output.front() {
            let Some(entry) = self.entry_mut(handle) else {
                self.output.pop_front();
                continue;
            };
            if let Some(transmit) = entry.pc.poll_transmit(now, max_datagrams, buf) {
                self.learn(now, handle, &transmit, buf);
                self.stats.datagrams_sent += transmit.datagrams() as u64;
                return Some((handle, transmit));
            }
            // Drained: its deadline and events are next.
            entry.in_output = false;
            let deadline = entry.pc.poll_timeout();
            let queue_events = !std::mem::replace(&mut entry.in_events, true);
            self.output.pop_front();
            if queue_events {
                self.events.push_back(handle);
            }
            if let Some(deadline) = deadline {
                self.schedule(handle, deadline);
            }
        }
        None
    }

    /// The earliest moment [`Endpoint::handle_timeout`] may have work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let timer = self.timers.peek().map(|Reverse((deadline, _))| *deadline);
        timer.into_iter().chain(self.next_sweep).min()
    }

    /// The next event of a connection whose transmits were polled.
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, PeerEvent)> {
        while let Some(&handle) = self.events.front() {
            let Some(entry) = self.entry_mut(handle) else {
                self.events.pop_front();
                continue;
            };
            if let Some(event) = entry.pc.poll_event() {
                return Some((handle, event));
            }
            entry.in_events = false;
            self.events.pop_front();
        }
        None
    }

    // ----- routing -----

    /// The connection a datagram is for (see the module documentation).
    fn route(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> Option<ConnectionHandle> {
        if PacketKind::of(data) != PacketKind::Stun {
            let handle = self.by_address.get(&(destination, source)).copied();
            if handle.is_none() {
                self.stats.unknown_address += 1;
            }
            return handle;
        }
        let Ok(message) = Message::decode(data) else {
            self.stats.malformed += 1;
            return None;
        };
        match message.class() {
            Class::Request => {
                let Ok(Some(Username(username))) = message.get::<Username>() else {
                    self.stats.unknown_ufrag += 1;
                    return None;
                };
                let ours = username.split(':').next().unwrap_or_default();
                let handle = self.by_ufrag.get(ours).copied();
                if handle.is_none() {
                    self.stats.unknown_ufrag += 1;
                }
                handle
            }
            Class::SuccessResponse | Class::ErrorResponse => {
                let Some((handle, _)) = self.transactions.remove(&message.transaction_id()) else {
                    self.stats.unknown_transaction += 1;
                    return None;
                };
                // The peer answered a request only the connection could
                // address (its 96 random bits, RFC 8489 §6): the path
                // works, and a DTLS server may hear its ClientHello next.
                if message.class() == Class::SuccessResponse {
                    self.claim(handle, (destination, source));
                }
                Some(handle)
            }
            Class::Indication => {
                let handle = self.by_address.get(&(destination, source)).copied();
                if handle.is_none() {
                    self.stats.unknown_address += 1;
                }
                handle
            }
        }
    }

    /// What a connection's datagram tells about routing: a request's
    /// transaction id for its response; an address the connection
    /// validated (see the module documentation). `data` is what the
    /// transmit wrote (STUN always comes alone).
    fn learn(&mut self, now: Instant, handle: ConnectionHandle, transmit: &Transmit, data: &[u8]) {
        if transmit.transport != Transport::Udp {
            return;
        }
        let claims = match PacketKind::of(data) {
            PacketKind::Stun => match natter_stun::decode_header(data) {
                Ok((kind, _, tid)) => match kind.class {
                    Class::Request => {
                        self.transactions.insert(tid, (handle, now));
                        self.next_sweep.get_or_insert(now + TRANSACTION_LIFETIME);
                        false
                    }
                    Class::SuccessResponse | Class::Indication => true,
                    Class::ErrorResponse => false,
                },
                Err(_) => false,
            },
            _ => true,
        };
        if claims {
            self.claim(handle, (transmit.source, transmit.destination));
        }
    }

    /// Routes what comes from `key`'s remote address to `key`'s local one
    /// to the connection.
    fn claim(&mut self, handle: ConnectionHandle, key: (SocketAddr, SocketAddr)) {
        if self.by_address.get(&key) == Some(&handle) {
            return;
        }
        if self.by_address.insert(key, handle).is_some() {
            self.stats.address_takeovers += 1;
        }
        if let Some(entry) = self.entry_mut(handle) {
            entry.addresses.push(key);
        }
    }

    /// Brings the ufrags routed to a connection up to date.
    fn sync_ufrags(&mut self, handle: ConnectionHandle) {
        let Some(Some(entry)) = self.slots.get_mut(handle.index as usize).map(|s| s.entry.as_mut()) else {
            return;
        };
        if entry.pc.local_ufrags().eq(entry.ufrags.iter().map(String::as_str)) {
            return;
        }
        for old in entry.ufrags.drain(..) {
            if self.by_ufrag.get(old.as_str()) == Some(&handle) {
                self.by_ufrag.remove(old.as_str());
            }
        }
        for ufrag in entry.pc.local_ufrags() {
            match self.by_ufrag.get(ufrag) {
                Some(other) if *other != handle => self.stats.ufrag_conflicts += 1,
                _ => {
                    self.by_ufrag.insert(ufrag.to_owned(), handle);
                    entry.ufrags.push(ufrag.to_owned());
                }
            }
        }
    }

    // ----- bookkeeping -----

    fn entry(&self, handle: ConnectionHandle) -> Option<&Entry> {
        let slot = self.slots.get(handle.index as usize)?;
        slot.entry.as_ref().filter(|_| slot.generation == handle.generation)
    }

    fn entry_mut(&mut self, handle: ConnectionHandle) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        slot.entry.as_mut().filter(|_| slot.generation == handle.generation)
    }

    /// A command or input reached the connection: its ufrags may have
    /// changed and it may have output.
    fn touch(&mut self, handle: ConnectionHandle) {
        self.sync_ufrags(handle);
        self.queue_output(handle);
    }

    fn queue_output(&mut self, handle: ConnectionHandle) {
        if let Some(entry) = self.entry_mut(handle) {
            if !std::mem::replace(&mut entry.in_output, true) {
                self.output.push_back(handle);
            }
        }
    }

    /// Puts the connection's deadline in the heap, unless an earlier one
    /// is there already (which, once due, finds the later one).
    fn schedule(&mut self, handle: ConnectionHandle, deadline: Instant) {
        let Some(entry) = self.entry_mut(handle) else { return };
        if entry.scheduled.is_some_and(|t| t <= deadline) {
            return;
        }
        entry.scheduled = Some(deadline);
        self.timers.push(Reverse((deadline, handle)));
    }
}

/// Whether a datagram carries media or application data rather than
/// what keeps a connection up (RFC 7983 §7; RFC 6347 §4.1: DTLS content
/// type 23 is application data).
fn is_payload(data: &[u8]) -> bool {
    match PacketKind::of(data) {
        PacketKind::Rtp => true,
        PacketKind::Dtls => data.first() == Some(&23),
        _ => false,
    }
}

/// A connection of an [`Endpoint`], borrowed: it derefs to the
/// [`PeerConnection`]. Dropping it tells the endpoint to look at the
/// connection again (new credentials, output to send).
pub struct Connection<'a> {
    endpoint: &'a mut Endpoint,
    handle: ConnectionHandle,
}

impl Connection<'_> {
    pub fn handle(&self) -> ConnectionHandle {
        self.handle
    }
}

impl Deref for Connection<'_> {
    type Target = PeerConnection;

    fn deref(&self) -> &PeerConnection {
        // A guard is only made for a live handle, and the endpoint cannot
        // remove a connection while the guard borrows it.
        &self
            .endpoint
            .entry(self.handle)
            .expect("a guard's connection is live")
            .pc
    }
}

impl DerefMut for Connection<'_> {
    fn deref_mut(&mut self) -> &mut PeerConnection {
        // As in `deref`.
        &mut self
            .endpoint
            .entry_mut(self.handle)
            .expect("a guard's connection is live")
            .pc
    }
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        self.endpoint.touch(self.handle);
    }
}

/// Two connections of an [`Endpoint`], borrowed together (see
/// [`Endpoint::connection_pair`]).
pub struct ConnectionPair<'a> {
    endpoint: &'a mut Endpoint,
    handles: [ConnectionHandle; 2],
}

impl ConnectionPair<'_> {
    /// The two connections, in the order they were asked for.
    pub fn get(&mut self) -> (&mut PeerConnection, &mut PeerConnection) {
        let [a, b] = self.handles.map(|h| h.index as usize);
        // `connection_pair` checked both handles live and different (so
        // at different slots: a slot holds one generation at a time),
        // and the endpoint cannot remove one while the guard borrows it.
        let [a, b] = self
            .endpoint
            .slots
            .get_disjoint_mut([a, b])
            .expect("two different slots");
        let live = "a guard's connection is live";
        (
            &mut a.entry.as_mut().expect(live).pc,
            &mut b.entry.as_mut().expect(live).pc,
        )
    }
}

impl Drop for ConnectionPair<'_> {
    fn drop(&mut self) {
        for handle in self.handles {
            self.endpoint.touch(handle);
        }
    }
}
