//! Relayed candidates through TURN over TCP and TLS (RFC 8656 §3.1): two
//! agents, relay-only, connect relay to relay through natter's TURN
//! server core (`tests/support/turn_server.rs`), a over a TCP (or TLS)
//! connection and b over UDP, under a virtual clock.
//!
//! The harness plays both I/O layers as the agent's documentation asks
//! ("TURN over TCP and TLS"), TLS being only a name here (no I/O layer
//! test can see inside it): a's `Tcp` (`Tls`) transmits to the server go
//! on one connection per (host address, server address), whose address
//! on the server's side is a port of its own; the bytes the server writes back
//! are cut with `natter_stun::stream_frame_len` and handed to the agent
//! frame by frame. Each direction of the stream is delivered in
//! segments of seeded random sizes that ignore frame boundaries, so that
//! frames arrive split and several at once.

mod support;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, PairState, Received, Role, TransportPolicy};
use natter_ice::candidate::{CandidateKind, Protocol};
use natter_ice::turn_client::TurnServer;
use natter_ice::{Credentials, Transmit, Transport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::net::Endpoint;
use support::turn_server::TurnServer as TurnEndpoint;

const TURN: &str = "198.18.0.20:3478";
const A_HOST: &str = "10.0.0.1:5000";
const B_HOST: &str = "10.0.0.2:6000";
/// The address a's TCP connection has on the server's side.
const A_CONNECTION: &str = "10.0.0.1:50000";
const PASSWORD: &str = "turn-password";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config(role: Role, seed: u64, ufrag: &str, transport: Transport) -> AgentConfig {
    AgentConfig {
        role,
        seed: Some(seed),
        credentials: Some(Credentials {
            ufrag: ufrag.into(),
            pwd: format!("{ufrag}-secret-password-123"),
        }),
        turn_servers: vec![TurnServer {
            address: sa(TURN),
            transport,
            username: format!("user-{ufrag}"),
            password: PASSWORD.into(),
        }],
        transport_policy: TransportPolicy::Relay,
        ..Default::default()
    }
}

struct Side {
    agent: Agent,
    host: SocketAddr,
    events: Vec<(Duration, Event)>,
    received: Vec<Vec<u8>>,
    /// Everything the agent asked to send.
    sent: Vec<Transmit>,
}

impl Side {
    fn connected_at(&self) -> Option<Duration> {
        self.events
            .iter()
            .find(|(_, e)| matches!(e, Event::ConnectionState(ConnectionState::Connected)))
            .map(|(t, _)| *t)
    }

    fn kinds(&self) -> (CandidateKind, CandidateKind) {
        let (l, r) = self.agent.selected_pair().expect("a selected pair");
        (l.kind, r.kind)
    }
}

/// a, b, the TURN server, the TCP connection of a and the packets in
/// flight.
struct World {
    start: Instant,
    now: Instant,
    latency: Duration,
    a: Side,
    b: Side,
    turn: TurnEndpoint,
    /// The server's bytes to a not yet cut into frames.
    to_a: Vec<u8>,
    /// How a reaches the TURN server: `Tcp` or `Tls`.
    stream: Transport,
    /// Whether a's connection is up (the harness closes it on demand).
    connection_open: bool,
    in_flight: VecDeque<(Instant, Transmit)>,
    /// Sizes of TCP segments.
    rng: StdRng,
}

impl World {
    /// a reaches the server over `stream` (`Tcp` or `Tls`).
    fn new(stream: Transport) -> Self {
        let start = Instant::now();
        let side = |cfg, host| Side {
            agent: Agent::new(cfg, start),
            host: sa(host),
            events: Vec::new(),
            received: Vec::new(),
            sent: Vec::new(),
        };
        let users = [("user-aaaa", PASSWORD), ("user-bbbb", PASSWORD)];
        let mut w = World {
            start,
            now: start,
            latency: Duration::from_millis(10),
            a: side(config(Role::Controlling, 1, "aaaa", stream), A_HOST),
            b: side(config(Role::Controlled, 2, "bbbb", Transport::Udp), B_HOST),
            turn: TurnEndpoint::new(start, sa(TURN), &users),
            to_a: Vec::new(),
            stream,
            connection_open: true,
            in_flight: VecDeque::new(),
            rng: StdRng::seed_from_u64(7),
        };
        let (ca, cb) = (
            w.a.agent.local_credentials().clone(),
            w.b.agent.local_credentials().clone(),
        );
        w.a.agent.set_remote_credentials(cb, start);
        w.b.agent.set_remote_credentials(ca, start);
        for side in [&mut w.a, &mut w.b] {
            side.agent.add_host(side.host, Protocol::Udp).unwrap();
            side.agent.end_of_local_addresses();
        }
        w
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Signals events to the other side and queues what everyone sends.
    fn drain(&mut self) {
        let (now, elapsed) = (self.now, self.elapsed());
        for from_a in [true, false] {
            let (me, other) = if from_a {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            };
            while let Some(e) = me.agent.poll_event() {
                match &e {
                    Event::LocalCandidate(c) => other.agent.add_remote_candidate(c.clone(), now).unwrap(),
                    Event::GatheringComplete => other.agent.end_of_remote_candidates(now),
                    _ => {}
                }
                me.events.push((elapsed, e));
            }
            while let Some(t) = me.agent.poll_transmit(now) {
                me.sent.push(t.clone());
                self.in_flight.push_back((now + self.latency, t));
            }
        }
        while let Some(t) = self.turn.poll_transmit(now) {
            self.in_flight.push_back((now + self.latency, t));
        }
    }

    /// The bytes of a stream, in segments of 1 to 40 bytes.
    fn segments(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.rng.gen_range(1..=40).min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }

    /// Delivers what is due now. Consecutive transmits on a's connection
    /// are one stream, segmented across their boundaries.
    fn deliver_due(&mut self) {
        let mut due: Vec<Transmit> = Vec::new();
        while self.in_flight.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, t) = self.in_flight.pop_front().unwrap();
            match due.last_mut() {
                Some(last)
                    if t.transport == self.stream
                        && (last.transport, last.source, last.destination)
                            == (t.transport, t.source, t.destination) =>
                {
                    last.data.extend_from_slice(&t.data)
                }
                _ => due.push(t),
            }
        }
        for t in due {
            self.deliver(t);
        }
    }

    fn deliver(&mut self, t: Transmit) {
        let now = self.now;
        match t.transport {
            Transport::Tcp | Transport::Tls if !self.connection_open => {}
            Transport::Tcp | Transport::Tls if t.destination == sa(TURN) => {
                assert_eq!(t.source, self.a.host, "a's connection is from its host address");
                for segment in self.segments(&t.data) {
                    self.turn.handle_stream(now, t.transport, sa(A_CONNECTION), &segment);
                }
            }
            Transport::Tcp | Transport::Tls => {
                assert_eq!((t.source, t.destination), (sa(TURN), sa(A_CONNECTION)));
                for segment in self.segments(&t.data) {
                    self.to_a.extend_from_slice(&segment);
                    while let Some(n) = natter_stun::stream_frame_len(&self.to_a).expect("a TURN stream") {
                        let frame: Vec<u8> = self.to_a.drain(..n).collect();
                        let got = self
                            .a
                            .agent
                            .handle_receive(now, t.transport, sa(TURN), self.a.host, &frame);
                        if let Received::Data { data, .. } = got {
                            self.a.received.push(data.into_owned());
                        }
                    }
                }
            }
            _ if t.destination.ip() == sa(TURN).ip() => self.turn.handle_receive(now, t.source, t.destination, &t.data),
            _ => {
                let side = [&mut self.a, &mut self.b]
                    .into_iter()
                    .find(|s| s.host == t.destination)
                    .expect("a datagram to an agent");
                if let Received::Data { data, .. } =
                    side.agent
                        .handle_receive(now, Transport::Udp, t.source, t.destination, &t.data)
                {
                    side.received.push(data.into_owned());
                }
            }
        }
    }

    /// Runs until `until` (virtual time since start).
    fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        for _ in 0..1_000_000 {
            self.drain();
            let next = [
                self.a.agent.poll_timeout(),
                self.b.agent.poll_timeout(),
                self.turn.poll_timeout(),
                self.in_flight.front().map(|(t, _)| *t),
            ]
            .into_iter()
            .flatten()
            .fold(end, Instant::min);
            self.now = self.now.max(next);
            self.deliver_due();
            let now = self.now;
            for agent in [&mut self.a.agent, &mut self.b.agent] {
                if agent.poll_timeout().is_some_and(|t| t <= now) {
                    agent.handle_timeout(now);
                }
            }
            self.turn.handle_timeout(now);
            self.drain();
            if self.now >= end && self.in_flight.front().is_none_or(|(t, _)| *t > end) {
                return;
            }
        }
        panic!("the harness did not settle");
    }

    /// Runs until both sides are connected; returns the later time.
    fn connect(&mut self, limit: Duration) -> Duration {
        while self.elapsed() < limit {
            let next = self.elapsed() + Duration::from_millis(5);
            self.run_until(next);
            if let (Some(ta), Some(tb)) = (self.a.connected_at(), self.b.connected_at()) {
                return ta.max(tb);
            }
        }
        panic!(
            "not connected after {limit:?}: a {:?} b {:?}\na events {:?}\nb events {:?}",
            self.a.agent.state(),
            self.b.agent.state(),
            self.a.events,
            self.b.events
        );
    }

    /// Sends `tag` each way on the selected pair and checks it arrives
    /// as it was sent; returns what a sent.
    fn exchange(&mut self, tag: &str) -> Transmit {
        let now = self.now;
        let (to_b, to_a) = (format!("a->b {tag}").into_bytes(), format!("b->a {tag}").into_bytes());
        let (mut a_data, mut b_data) = (Vec::new(), Vec::new());
        let ta = Transmit::new(self.a.agent.send(&to_b, &mut a_data, now).expect("a can send"), a_data);
        let tb = Transmit::new(self.b.agent.send(&to_a, &mut b_data, now).expect("b can send"), b_data);
        self.a.sent.push(ta.clone());
        self.in_flight.push_back((now + self.latency, ta.clone()));
        self.in_flight.push_back((now + self.latency, tb));
        let until = self.elapsed() + Duration::from_millis(100);
        self.run_until(until);
        assert!(self.b.received.contains(&to_b), "b did not receive {tag}");
        assert!(self.a.received.contains(&to_a), "a did not receive {tag}");
        ta
    }
}

/// The TURN client's contract with the I/O layer over a stream:
/// everything a sends is a transmit of the stream's transport from its
/// host address to the server; its data goes as ChannelData padded to 4
/// bytes (RFC 8656 §12.5), which b receives without the padding.
fn relay_to_relay_with_one_side_over(stream: Transport) {
    let mut w = World::new(stream);
    let t = w.connect(Duration::from_secs(5));
    println!("{stream:?}: connected after {t:?}; a {:?}", w.a.agent.stats());
    assert!(t < Duration::from_secs(1), "took {t:?}");
    for side in [&w.a, &w.b] {
        assert_eq!(side.kinds(), (CandidateKind::Relayed, CandidateKind::Relayed));
    }
    assert!(!w.a.sent.is_empty());
    for t in &w.a.sent {
        assert_eq!((t.transport, t.source, t.destination), (stream, sa(A_HOST), sa(TURN)));
    }
    assert!(w.b.sent.iter().all(|t| t.transport == Transport::Udp));
    // The server's view of the connection (XOR-MAPPED-ADDRESS over TCP) is
    // no server-reflexive candidate of the UDP socket.
    assert!(w
        .a
        .agent
        .local_candidates()
        .all(|c| c.kind != CandidateKind::ServerReflexive));
    // Right after the selection the channel is being bound: a Send
    // indication carries the data.
    let sent = w.exchange("at once");
    assert_eq!(sent.data[0], 0x00, "a STUN Send indication");
    // "a->b over tcp": 13 bytes, ChannelData of 17, padded to 20.
    w.run_until(w.elapsed() + Duration::from_secs(1));
    let sent = w.exchange("over tcp");
    assert_eq!(sent.data[0] & 0xC0, 0x40, "ChannelData once the channel is bound");
    assert_eq!(sent.data.len(), 20);
    w.run_until(w.elapsed() + Duration::from_secs(60));
    w.exchange("a minute later");
    assert_eq!(w.a.agent.state(), ConnectionState::Completed);
    assert_eq!(w.b.agent.state(), ConnectionState::Completed);
    assert_eq!(w.a.agent.stats().malformed, 0);
}

#[test]
fn relay_to_relay_with_one_side_over_tcp() {
    relay_to_relay_with_one_side_over(Transport::Tcp);
}

#[test]
fn relay_to_relay_with_one_side_over_tls() {
    relay_to_relay_with_one_side_over(Transport::Tls);
}

/// The connection closing takes the allocation with it (RFC 8656 §3.1):
/// the pairs through it fail at once, data stops, and consent then
/// expires on both sides.
#[test]
fn connection_loss_ends_the_relayed_path() {
    let mut w = World::new(Transport::Tcp);
    w.connect(Duration::from_secs(5));
    w.exchange("before");
    let now = w.now;
    w.connection_open = false;
    w.turn.handle_stream_closed(Transport::Tcp, sa(A_CONNECTION));
    w.a.agent
        .handle_connection_closed(now, Transport::Tcp, sa(A_HOST), sa(TURN));
    assert!(w.a.agent.pairs().all(|(_, _, state)| state == PairState::Failed));
    assert!(w.a.agent.send(b"after", &mut Vec::new(), now).is_none());
    w.run_until(w.elapsed() + Duration::from_secs(40));
    assert_eq!(w.a.agent.state(), ConnectionState::Failed);
    assert_eq!(w.b.agent.state(), ConnectionState::Failed);
}

/// A connection that cannot be opened ends the allocation before it
/// starts: gathering completes at once instead of after the Allocate's
/// 39.5 s timeout.
#[test]
fn connection_refused_ends_gathering() {
    let now = Instant::now();
    let mut agent = Agent::new(config(Role::Controlling, 3, "cccc", Transport::Tcp), now);
    agent.add_host(sa(A_HOST), Protocol::Udp).unwrap();
    agent.end_of_local_addresses();
    let at = agent.poll_timeout().expect("Ta for the TURN allocation");
    agent.handle_timeout(at);
    let allocate = agent.poll_transmit(at).expect("an Allocate");
    assert_eq!(
        (allocate.transport, allocate.source, allocate.destination),
        (Transport::Tcp, sa(A_HOST), sa(TURN))
    );
    assert!(!std::iter::from_fn(|| agent.poll_event()).any(|e| e == Event::GatheringComplete));
    agent.handle_connection_closed(at, Transport::Tcp, sa(A_HOST), sa(TURN));
    let events: Vec<Event> = std::iter::from_fn(|| agent.poll_event()).collect();
    assert!(events.contains(&Event::GatheringComplete), "{events:?}");
    assert!(agent.poll_transmit(at).is_none());
    assert_eq!(agent.poll_timeout(), None);
    // The same call for a connection the agent does not use does nothing.
    agent.handle_connection_closed(at, Transport::Tcp, sa(A_HOST), sa("198.18.0.99:3478"));
    assert!(agent.poll_event().is_none());
}
