//! The real TURN server core, [`natter_turn::Server`], as an endpoint.
//!
//! The wrapper plays the server's I/O layer over UDP, and over TCP or
//! TLS for clients whose stream bytes come through
//! [`TurnServer::handle_stream`] (after TLS, which is not emulated; cut
//! into frames with `natter_stun::stream_frame_len`, RFC 8656 §12.5; the
//! replies go out as transmits of the same transport to the client's
//! connection address). Datagrams and frames to the listening address go
//! to `handle_client`; it "binds" relayed addresses
//! for `ClientAction::Allocate` by handing out even ports on the relay IP
//! (never reused, so the order the core closes allocations in does not
//! matter); datagrams to a bound relayed address go to `handle_peer`;
//! `AllocationClosed` events release the ports. The peer filter allows
//! the test ranges (198.18.0.0/15 and the RFC 1918 blocks), which the
//! default policy refuses as not globally reachable.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use natter_ice::{Transmit, Transport};
use natter_stun::AddressFamily;
use natter_turn::auth::Credentials;
use natter_turn::peer_filter::{IpRange, PeerFilter};
use natter_turn::{
    AllocateOutcome, AllocateRequest, ClientAction, Event, FiveTuple, RelayTransport, Server, ServerConfig,
    PEER_HEADROOM, PEER_TAILROOM,
};

use super::net::Endpoint;

/// The realm of [`TurnServer::new`].
pub const TURN_REALM: &str = "natter.test";
/// The wall-clock time the core believes it is at the network's start
/// (for REST usernames).
pub const TURN_UNIX_START: u64 = 1_700_000_000;
/// Relayed ports are handed out from here, upwards, even only.
pub const FIRST_RELAY_PORT: u16 = 49_152;
/// Peers the wrapper's default policy relays to.
pub const TEST_PEER_RANGES: [&str; 4] = ["198.18.0.0/15", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

/// A TURN server listening on one UDP address, relaying on `relay_ip`.
pub struct TurnServer {
    server: Server,
    listen: SocketAddr,
    relay_ip: IpAddr,
    next_port: u16,
    relays: BTreeSet<SocketAddr>,
    outbox: VecDeque<Transmit>,
    events: Vec<Event>,
    /// Bytes of each TCP client's stream not yet cut into frames.
    streams: HashMap<SocketAddr, Vec<u8>>,
    /// Datagrams to a port of this host that is neither the listener nor
    /// a bound relayed address.
    pub unknown_port: u64,
    /// Allocate requests refused for want of a port or support here.
    pub refused_allocations: u64,
    reply: Vec<u8>,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("listen", &self.listen)
            .field("relays", &self.relays)
            .field("stats", self.server.stats())
            .finish_non_exhaustive()
    }
}

impl TurnServer {
    /// A server with static `users` (name, password) in [`TURN_REALM`],
    /// relaying on the listener's IP.
    pub fn new(now: Instant, listen: SocketAddr, users: &[(&str, &str)]) -> Self {
        let config = TurnServer::config(listen, listen.ip(), users);
        TurnServer::with_config(now, listen, listen.ip(), config)
    }

    /// The configuration [`TurnServer::new`] uses, to adjust before
    /// [`TurnServer::with_config`]: the users, fixed secrets and seed, and
    /// a peer filter allowing [`TEST_PEER_RANGES`] and this server's own
    /// relayed addresses, refusing its listener.
    pub fn config(listen: SocketAddr, relay_ip: IpAddr, users: &[(&str, &str)]) -> ServerConfig {
        let mut credentials = Credentials::new(TURN_REALM);
        for (user, password) in users {
            credentials
                .add_user(user, password)
                .expect("test credentials are valid");
        }
        let mut config = ServerConfig::new(credentials, [0x4e; 32], [0x54; 32]);
        let allowed = TEST_PEER_RANGES
            .iter()
            .map(|r| r.parse::<IpRange>().expect("constant range"))
            .collect();
        config.peer_filter = PeerFilter::new(allowed, Vec::new(), vec![listen])
            .with_own_relays(&[relay_ip], FIRST_RELAY_PORT..=u16::MAX);
        config
    }

    pub fn with_config(now: Instant, listen: SocketAddr, relay_ip: IpAddr, config: ServerConfig) -> Self {
        TurnServer {
            server: Server::new(config, now, TURN_UNIX_START),
            listen,
            relay_ip,
            next_port: FIRST_RELAY_PORT,
            relays: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: Vec::new(),
            streams: HashMap::new(),
            unknown_port: 0,
            refused_allocations: 0,
            reply: vec![0u8; 1500],
        }
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The core, for its stats and allocations.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The relayed addresses currently bound.
    pub fn relays(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.relays.iter().copied()
    }

    /// The events the core produced, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Bytes that arrived on the TCP or TLS connection from `client`:
    /// every whole frame goes to the core. A stream that is not STUN or
    /// ChannelData is closed, with the client's allocation.
    pub fn handle_stream(&mut self, now: Instant, transport: Transport, client: SocketAddr, bytes: &[u8]) {
        let mut stream = self.streams.remove(&client).unwrap_or_default();
        stream.extend_from_slice(bytes);
        loop {
            match natter_stun::stream_frame_len(&stream) {
                Ok(Some(n)) => {
                    let frame: Vec<u8> = stream.drain(..n).collect();
                    self.on_client_frame(now, transport, client, &frame);
                }
                Ok(None) => break,
                Err(_) => return self.handle_stream_closed(transport, client),
            }
        }
        self.streams.insert(client, stream);
    }

    /// The TCP or TLS connection from `client` closed: so does its
    /// allocation (RFC 8656 §3.1).
    pub fn handle_stream_closed(&mut self, transport: Transport, client: SocketAddr) {
        self.streams.remove(&client);
        self.server.handle_client_closed(&self.five_tuple(transport, client));
        self.collect_events();
    }

    fn five_tuple(&self, transport: Transport, client: SocketAddr) -> FiveTuple {
        FiveTuple {
            transport: match transport {
                Transport::Udp => natter_turn::Transport::Udp,
                Transport::Tcp => natter_turn::Transport::Tcp,
                Transport::Tls => natter_turn::Transport::Tls,
            },
            client,
            server: self.listen,
        }
    }

    fn push(&mut self, transport: Transport, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        self.outbox.push_back(Transmit {
            transport,
            source,
            destination,
            data: data.to_vec(),
        });
    }

    /// What this I/O layer binds: a fresh even port on the relay IP for a
    /// UDP IPv4 allocation; nothing for what it does not emulate.
    fn bind(&mut self, req: &AllocateRequest) -> AllocateOutcome {
        let supported = req.transport == RelayTransport::Udp
            && req.family == AddressFamily::of(&SocketAddr::new(self.relay_ip, 0))
            && req.reservation.is_none();
        if !supported || self.next_port == u16::MAX {
            self.refused_allocations += 1;
            return AllocateOutcome::NoCapacity;
        }
        let relay = SocketAddr::new(self.relay_ip, self.next_port);
        self.next_port = self.next_port.saturating_add(2);
        self.relays.insert(relay);
        AllocateOutcome::Bound {
            relay,
            additional: None,
            reservation: None,
        }
    }

    /// A datagram, or a frame of a TCP stream, from `client`.
    fn on_client_frame(&mut self, now: Instant, transport: Transport, client: SocketAddr, data: &[u8]) {
        let from = self.five_tuple(transport, client);
        let mut reply = std::mem::take(&mut self.reply);
        match self.server.handle_client(now, from, data, &mut reply) {
            ClientAction::None => {}
            ClientAction::Reply(n) => self.push(transport, self.listen, client, &reply[..n]),
            ClientAction::Relay { from, to, data } => self.push(Transport::Udp, from, to, data),
            ClientAction::Allocate(req) => {
                let outcome = self.bind(&req);
                let n = self.server.finish_allocate(now, req.token, outcome, &mut reply);
                if n > 0 {
                    self.push(transport, self.listen, client, &reply[..n]);
                }
            }
            // TCP relays (RFC 6062) need TCP connections to peers, which
            // the wrapper does not carry.
            ClientAction::Connect { .. } | ClientAction::BindConnection { .. } => {}
        }
        self.reply = reply;
        self.collect_events();
    }

    fn on_peer_datagram(&mut self, now: Instant, relay: SocketAddr, peer: SocketAddr, data: &[u8]) {
        let mut buf = vec![0u8; PEER_HEADROOM + data.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + data.len()].copy_from_slice(data);
        if let Some((client, range)) = self.server.handle_peer(now, relay, peer, &mut buf, data.len()) {
            let transport = match client.transport {
                natter_turn::Transport::Udp => Transport::Udp,
                natter_turn::Transport::Tcp => Transport::Tcp,
                natter_turn::Transport::Tls => Transport::Tls,
            };
            self.push(transport, client.server, client.client, &buf[range]);
        }
    }

    fn collect_events(&mut self) {
        while let Some(event) = self.server.poll_event() {
            if let Event::AllocationClosed { relays, .. } = &event {
                for r in relays {
                    self.relays.remove(r);
                }
            }
            self.events.push(event);
        }
    }
}

impl Endpoint for TurnServer {
    fn handle_receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        if destination == self.listen {
            self.on_client_frame(now, Transport::Udp, source, data);
        } else if self.relays.contains(&destination) {
            self.on_peer_datagram(now, destination, source, data);
        } else {
            self.unknown_port += 1;
        }
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.server.poll_timeout())
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.server.handle_timeout(now);
        self.collect_events();
    }
}
