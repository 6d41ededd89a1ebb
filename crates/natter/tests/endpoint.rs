//! Many PeerConnections on one address of an [`Endpoint`], against
//! clients with an address each, over an in-memory network under a
//! virtual clock: routing by ufrag, transaction and address, data
//! channels echoing on every connection, ICE-lite, caller-chosen
//! credentials, ICE restart, removal, and hostile datagrams dropped and
//! counted while every connection carries on.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter::dtls::DtlsConfig;
use natter::endpoint::{ConnectionHandle, Endpoint};
use natter::jsep::IceCredentials;
use natter::peer::*;
use natter_ice::Transmit;
use natter_sctp::Message;
use natter_stun::{Class, IntegrityKey, MessageType, MessageWriter, Method, TransactionId, Username};

const SERVER: &str = "10.0.0.1:3478";

fn config(seed: u64) -> PeerConfig {
    PeerConfig {
        seed: Some(seed),
        dtls: DtlsConfig {
            deterministic_seed: Some(seed),
            ..DtlsConfig::default()
        },
        ..PeerConfig::default()
    }
}

/// A client: a connection with an address of its own.
struct Client {
    pc: PeerConnection,
    addr: SocketAddr,
    /// Its connection in the endpoint.
    handle: ConnectionHandle,
    channel: DataChannelId,
    open: bool,
    received: Vec<Vec<u8>>,
    /// Candidates for the server, once it has a remote description.
    outbox: VecDeque<Option<IceCandidate>>,
}

/// An endpoint on [`SERVER`] whose connections echo every data channel
/// message, clients, a virtual clock and a network with latency.
struct World {
    endpoint: Endpoint,
    server: SocketAddr,
    clients: Vec<Client>,
    by_addr: HashMap<SocketAddr, usize>,
    by_handle: HashMap<ConnectionHandle, usize>,
    now: Instant,
    latency: Duration,
    in_flight: Vec<(Instant, Transmit)>,
    /// Every datagram the endpoint sent, and where to.
    sent_by_server: Vec<(SocketAddr, Vec<u8>)>,
    /// Candidates of the server's connections for their clients.
    server_outbox: HashMap<ConnectionHandle, VecDeque<Option<IceCandidate>>>,
    server_events: Vec<(ConnectionHandle, PeerEvent)>,
}

impl World {
    fn new() -> World {
        let server: SocketAddr = SERVER.parse().unwrap();
        World {
            endpoint: Endpoint::new(vec![server]),
            server,
            clients: Vec::new(),
            by_addr: HashMap::new(),
            by_handle: HashMap::new(),
            now: Instant::now(),
            latency: Duration::from_millis(5),
            in_flight: Vec::new(),
            sent_by_server: Vec::new(),
            server_outbox: HashMap::new(),
            server_events: Vec::new(),
        }
    }

    /// A client that offers a data channel to a new connection of the
    /// endpoint, made with `server_config`, which answers.
    fn connect(&mut self, seed: u64, server_config: PeerConfig) -> usize {
        self.connect_with(config(seed), server_config)
    }

    fn connect_with(&mut self, client_config: PeerConfig, server_config: PeerConfig) -> usize {
        let index = self.clients.len();
        let addr: SocketAddr = format!("10.1.{}.{}:5000", index / 250, index % 250 + 1)
            .parse()
            .unwrap();
        let mut pc = PeerConnection::new(client_config, self.now).unwrap();
        pc.add_local_address(addr).unwrap();
        pc.end_of_local_addresses();
        let channel = pc
            .create_data_channel(&format!("echo-{index}"), DataChannelInit::default())
            .unwrap();
        let offer = pc.create_offer().unwrap();
        pc.set_local_description(&offer).unwrap();
        let server_pc = PeerConnection::new(server_config, self.now).unwrap();
        let handle = self.endpoint.insert(server_pc).unwrap();
        let answer = {
            let mut server = self.endpoint.connection(handle).unwrap();
            server.set_remote_description(&offer).unwrap();
            let answer = server.create_answer().unwrap();
            server.set_local_description(&answer).unwrap();
            answer
        };
        pc.set_remote_description(&answer).unwrap();
        self.clients.push(Client {
            pc,
            addr,
            handle,
            channel,
            open: false,
            received: Vec::new(),
            outbox: VecDeque::new(),
        });
        self.by_addr.insert(addr, index);
        self.by_handle.insert(handle, index);
        index
    }

    fn send(&mut self, index: usize, data: &[u8]) {
        let client = &mut self.clients[index];
        let id = client.channel;
        client.pc.data_channel(id).unwrap().send(Message::Binary(data)).unwrap();
    }

    /// Collects output, forwards candidates, echoes, then advances the
    /// clock to the next delivery or timer. False when nothing is left.
    fn step(&mut self) -> bool {
        let now = self.now;
        let mut buf = Vec::new();
        for client in &mut self.clients {
            while let Some(t) = client.pc.poll_transmit(now, 1, &mut buf) {
                assert_eq!(t.source, client.addr);
                self.in_flight
                    .push((now + self.latency, Transmit::new(t.route(), buf.clone())));
            }
            while let Some(event) = client.pc.poll_event() {
                match event {
                    PeerEvent::IceCandidate(c) => client.outbox.push_back(Some(c)),
                    PeerEvent::IceGatheringComplete => client.outbox.push_back(None),
                    PeerEvent::DataChannelOpen(id) if id == client.channel => client.open = true,
                    PeerEvent::DataChannelMessage { id, data, .. } if id == client.channel => {
                        client.received.push(data);
                    }
                    _ => {}
                }
            }
        }
        self.drain_endpoint();
        for index in 0..self.clients.len() {
            let handle = self.clients[index].handle;
            if self.endpoint.connection(handle).is_none() {
                continue;
            }
            while let Some(candidate) = self.clients[index].outbox.pop_front() {
                let mut server = self.endpoint.connection(handle).unwrap();
                server.add_ice_candidate(candidate.as_ref()).unwrap();
            }
            let outbox = self.server_outbox.entry(handle).or_default();
            while let Some(candidate) = outbox.pop_front() {
                self.clients[index].pc.add_ice_candidate(candidate.as_ref()).unwrap();
            }
        }
        self.drain_endpoint();
        let next_delivery = self.in_flight.iter().map(|(at, _)| *at).min();
        let timers = self.clients.iter().filter_map(|c| c.pc.poll_timeout());
        let Some(next) = next_delivery
            .into_iter()
            .chain(timers)
            .chain(self.endpoint.poll_timeout())
            .min()
        else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        let (due, later) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.in_flight = later;
        for (_, t) in due {
            if t.destination == self.server {
                self.endpoint.handle_receive(now, t.source, t.destination, &t.data);
            } else if let Some(&index) = self.by_addr.get(&t.destination) {
                let client = &mut self.clients[index];
                client
                    .pc
                    .handle_receive(now, t.transport, t.source, t.destination, &t.data);
            }
        }
        for client in &mut self.clients {
            if client.pc.poll_timeout().is_some_and(|t| t <= now) {
                client.pc.handle_timeout(now);
            }
        }
        self.endpoint.handle_timeout(now);
        true
    }

    /// The endpoint's output in its documented order; its connections
    /// echo what they receive.
    fn drain_endpoint(&mut self) {
        let now = self.now;
        let mut buf = Vec::new();
        loop {
            while let Some((handle, t)) = self.endpoint.poll_transmit(now, 1, &mut buf) {
                assert_eq!(t.source, self.server);
                assert!(
                    self.by_handle.contains_key(&handle),
                    "a transmit of an unknown connection"
                );
                self.sent_by_server.push((t.destination, buf.clone()));
                self.in_flight
                    .push((now + self.latency, Transmit::new(t.route(), buf.clone())));
            }
            let mut echoed = false;
            while let Some((handle, event)) = self.endpoint.poll_event() {
                match &event {
                    PeerEvent::IceCandidate(c) => {
                        self.server_outbox.entry(handle).or_default().push_back(Some(c.clone()));
                    }
                    PeerEvent::IceGatheringComplete => self.server_outbox.entry(handle).or_default().push_back(None),
                    PeerEvent::DataChannelMessage { id, data, .. } => {
                        let mut server = self.endpoint.connection(handle).unwrap();
                        server.data_channel(*id).unwrap().send(Message::Binary(data)).unwrap();
                        echoed = true;
                    }
                    _ => {}
                }
                self.server_events.push((handle, event));
            }
            if !echoed {
                return;
            }
        }
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&World) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(self.now <= deadline, "not done after {limit:?} of virtual time");
            assert!(self.step(), "the network went idle first");
        }
    }

    /// The ufrags the endpoint routes to `handle`'s connection.
    fn ufrags(&self, handle: ConnectionHandle) -> Vec<String> {
        let pc = self.endpoint.get(handle).unwrap();
        pc.local_ufrags().map(String::from).collect()
    }

    fn all_open(&self) -> bool {
        self.clients.iter().all(|c| c.open)
    }

    /// Each client sends `count` messages naming itself and gets exactly
    /// those back.
    fn echo_everywhere(&mut self, count: usize, tag: &str) {
        let before: Vec<usize> = self.clients.iter().map(|c| c.received.len()).collect();
        for index in 0..self.clients.len() {
            for n in 0..count {
                self.send(index, format!("{tag} {index} {n}").as_bytes());
            }
        }
        self.run_until(Duration::from_secs(10), |w| {
            w.clients
                .iter()
                .zip(&before)
                .all(|(c, b)| c.received.len() >= b + count)
        });
        for (index, (client, b)) in self.clients.iter().zip(&before).enumerate() {
            let expected: Vec<Vec<u8>> = (0..count).map(|n| format!("{tag} {index} {n}").into_bytes()).collect();
            assert_eq!(
                client.received[*b..],
                expected[..],
                "client {index} got another's messages"
            );
        }
    }
}

/// A STUN message with these attributes, signed with `key` when given.
fn stun(class: Class, tid: [u8; 12], username: Option<&str>, key: Option<&IntegrityKey>) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut writer =
        MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, class), TransactionId(tid)).unwrap();
    if let Some(username) = username {
        writer.add(&Username(username)).unwrap();
    }
    if let Some(key) = key {
        writer.add_message_integrity(key).unwrap();
    }
    writer.add_fingerprint().unwrap();
    let len = writer.finish();
    buf.truncate(len);
    buf
}

#[test]
fn a_hundred_connections_share_one_address_and_each_echoes_its_own_messages() {
    let mut world = World::new();
    for i in 0..100 {
        world.connect(1000 + i, config(5000 + i));
    }
    world.run_until(Duration::from_secs(10), World::all_open);
    world.echo_everywhere(5, "hello");
    let stats = world.endpoint.stats();
    assert_eq!(stats.connections, 100);
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(stats.address_takeovers + stats.ufrag_conflicts, 0, "{stats:?}");
    // Each connection took only its own client's datagrams.
    for client in &world.clients {
        let server = world.endpoint.connection(client.handle).unwrap();
        let pair = server.stats().selected_pair.expect("a selected pair");
        assert_eq!(pair.remote.socket_addr(), Some(client.addr));
        assert_eq!(server.stats().transport.unknown_dropped, 0);
    }
}

#[test]
fn hostile_datagrams_are_dropped_and_counted_and_every_connection_carries_on() {
    let mut world = World::new();
    for i in 0..3 {
        world.connect(10 + i, config(20 + i));
    }
    world.run_until(Duration::from_secs(10), World::all_open);
    let server = world.server;
    let now = world.now;
    let stranger: SocketAddr = "203.0.113.9:4444".parse().unwrap();
    let spoofed = SocketAddr::new(world.clients[0].addr.ip(), 6000);
    let before = world.endpoint.stats();

    // A check for a ufrag no connection has: dropped, unanswered.
    let unknown = stun(Class::Request, [1; 12], Some("nobody:abcd"), None);
    assert_eq!(world.endpoint.handle_receive(now, stranger, server, &unknown), None);
    // A request without USERNAME.
    let anonymous = stun(Class::Request, [2; 12], None, None);
    assert_eq!(world.endpoint.handle_receive(now, stranger, server, &anonymous), None);
    // A response to nothing we asked.
    let response = stun(Class::SuccessResponse, [3; 12], None, None);
    assert_eq!(world.endpoint.handle_receive(now, stranger, server, &response), None);
    // STUN by its first byte, but not STUN.
    assert_eq!(
        world
            .endpoint
            .handle_receive(now, stranger, server, &[0, 1, 0, 8, 1, 2]),
        None
    );
    // DTLS and RTP from addresses no connection validated: a stranger,
    // and a client's IP on another port.
    let dtls = [23u8, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4];
    let rtp = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
    for source in [stranger, spoofed] {
        assert_eq!(world.endpoint.handle_receive(now, source, server, &dtls), None);
        assert_eq!(world.endpoint.handle_receive(now, source, server, &rtp), None);
    }
    // Bytes no protocol of RFC 7983 has.
    assert_eq!(world.endpoint.handle_receive(now, stranger, server, &[255; 40]), None);

    let stats = world.endpoint.stats();
    assert_eq!(stats.unknown_ufrag - before.unknown_ufrag, 2, "{stats:?}");
    assert_eq!(stats.unknown_transaction - before.unknown_transaction, 1, "{stats:?}");
    assert_eq!(stats.malformed - before.malformed, 1, "{stats:?}");
    assert_eq!(stats.unknown_address - before.unknown_address, 5, "{stats:?}");
    world.drain_endpoint();
    let answered = world
        .sent_by_server
        .iter()
        .filter(|(to, _)| [stranger, spoofed].contains(to))
        .count();
    assert_eq!(answered, 0, "the endpoint answered a hostile datagram");

    // A check with a real ufrag but a forged MESSAGE-INTEGRITY reaches
    // its connection, which refuses it without giving the attacker the
    // address.
    let ufrag = world
        .endpoint
        .connection(world.clients[1].handle)
        .unwrap()
        .local_ufrags()
        .next()
        .unwrap()
        .to_owned();
    let forged = stun(
        Class::Request,
        [4; 12],
        Some(&format!("{ufrag}:x")),
        Some(&IntegrityKey::short_term("not-the-password-at-all").unwrap()),
    );
    assert_eq!(
        world.endpoint.handle_receive(now, stranger, server, &forged),
        Some(world.clients[1].handle)
    );
    assert_eq!(world.endpoint.handle_receive(now, stranger, server, &rtp), None);
    let pc = world.endpoint.connection(world.clients[1].handle).unwrap();
    assert_eq!(pc.stats().ice.unauthenticated, 1, "{:?}", pc.stats().ice);
    drop(pc);

    world.echo_everywhere(3, "after");
}

#[test]
fn an_ice_lite_endpoint_says_so_and_sends_no_checks() {
    let mut world = World::new();
    let lite = PeerConfig {
        ice_lite: true,
        ..config(31)
    };
    world.connect(30, lite);
    let handle = world.clients[0].handle;
    let answer = world.endpoint.get(handle).unwrap().local_description().unwrap();
    assert!(answer.contains("a=ice-lite\r\n"), "{answer}");
    world.run_until(Duration::from_secs(10), World::all_open);
    world.echo_everywhere(3, "lite");
    let requests = world
        .sent_by_server
        .iter()
        .filter(|(_, d)| natter_stun::decode_header(d).is_ok_and(|(t, _, _)| t.class == Class::Request))
        .count();
    assert_eq!(requests, 0, "a lite agent sends no checks (RFC 8445 §2.5)");
}

#[test]
fn a_connection_that_only_checked_a_lite_peer_hears_its_client_hello() {
    // The endpoint's connection controls a lite client and is the DTLS
    // server: it never answers a check on that path, so the success
    // responses to its own checks are what validate the address.
    let mut world = World::new();
    let client = PeerConfig {
        ice_lite: true,
        ..config(35)
    };
    let server = PeerConfig {
        answer_dtls_role: Some(natter::dtls::DtlsRole::Server),
        ..config(36)
    };
    world.connect_with(client, server);
    world.run_until(Duration::from_secs(10), World::all_open);
    world.echo_everywhere(3, "checked");
    let responses = world
        .sent_by_server
        .iter()
        .filter(|(_, d)| natter_stun::decode_header(d).is_ok_and(|(t, _, _)| t.class == Class::SuccessResponse))
        .count();
    assert_eq!(responses, 0, "a lite peer sends no checks to answer");
}

#[test]
fn caller_chosen_credentials_are_the_ones_routed_and_answered_with() {
    let mut world = World::new();
    let chosen = IceCredentials::new("endpointufrag1", "apasswordlongenoughforice");
    let server_config = PeerConfig {
        ice_credentials: Some(chosen.clone()),
        ..config(41)
    };
    world.connect(40, server_config);
    let handle = world.clients[0].handle;
    let answer = world.endpoint.get(handle).unwrap().local_description().unwrap();
    assert!(answer.contains("a=ice-ufrag:endpointufrag1\r\n"), "{answer}");
    assert!(answer.contains("a=ice-pwd:apasswordlongenoughforice\r\n"), "{answer}");
    world.run_until(Duration::from_secs(10), World::all_open);
    world.echo_everywhere(2, "chosen");

    let short = PeerConfig {
        ice_credentials: Some(IceCredentials::new("ab", "short")),
        ..config(42)
    };
    let refused = PeerConnection::new(short, world.now);
    assert!(matches!(refused, Err(PeerError::Jsep(_))), "{refused:?}");
}

#[test]
fn an_ice_restart_routes_the_new_ufrag_to_the_same_connection() {
    let mut world = World::new();
    for i in 0..2 {
        world.connect(50 + i, config(60 + i));
    }
    world.run_until(Duration::from_secs(10), World::all_open);
    let handle = world.clients[0].handle;
    let old = world.ufrags(handle);

    let client = &mut world.clients[0];
    client.pc.restart_ice().unwrap();
    let offer = client.pc.create_offer().unwrap();
    client.pc.set_local_description(&offer).unwrap();
    let answer = {
        let mut server = world.endpoint.connection(handle).unwrap();
        server.set_remote_description(&offer).unwrap();
        let answer = server.create_answer().unwrap();
        server.set_local_description(&answer).unwrap();
        answer
    };
    world.clients[0].pc.set_remote_description(&answer).unwrap();
    let new = world.ufrags(handle);
    assert_ne!(new[0], old[0], "the answer to a restart has a new ufrag");
    assert!(
        new.contains(&old[0]),
        "the old ufrag is answered until the new checks succeed (RFC 8445 §9)"
    );

    world.run_until(Duration::from_secs(10), |w| {
        let state = w.clients[0].pc.ice_connection_state();
        matches!(state, IceConnectionState::Connected | IceConnectionState::Completed)
            && w.endpoint.get(handle).is_some_and(|s| s.local_ufrags().count() == 1)
    });
    world.echo_everywhere(3, "restarted");
    let stats = world.endpoint.stats();
    assert_eq!(
        stats.unknown_ufrag, 0,
        "every check of both generations was routed: {stats:?}"
    );
}

#[test]
fn a_removed_connection_gets_nothing_and_its_handle_names_nothing() {
    let mut world = World::new();
    for i in 0..3 {
        world.connect(70 + i, config(80 + i));
    }
    world.run_until(Duration::from_secs(10), World::all_open);
    let gone = world.clients[1].handle;
    let pc = world.endpoint.remove(gone).expect("it was there");
    assert_eq!(pc.connection_state(), PeerConnectionState::Connected);
    assert!(world.endpoint.connection(gone).is_none());
    assert!(world.endpoint.remove(gone).is_none());
    assert_eq!(world.endpoint.len(), 2);

    let before = world.endpoint.stats();
    world.send(1, b"to nobody");
    let deadline = world.now + Duration::from_secs(1);
    while world.now < deadline && world.step() {}
    let after = world.endpoint.stats();
    assert!(
        after.unknown_address > before.unknown_address,
        "the removed connection's client is unknown now: {after:?}"
    );

    // Its slot is reused under another handle.
    let reused = world
        .endpoint
        .insert(PeerConnection::new(config(90), world.now).unwrap())
        .unwrap();
    assert_ne!(reused, gone);
    assert!(world.endpoint.connection(gone).is_none());

    // The others carry on.
    let remaining = [0, 2];
    for &index in &remaining {
        world.send(index, format!("still {index}").as_bytes());
    }
    world.run_until(Duration::from_secs(5), |w| {
        remaining.iter().all(|&i| {
            w.clients[i]
                .received
                .last()
                .is_some_and(|m| *m == format!("still {i}").into_bytes())
        })
    });
}

#[test]
fn timers_fire_for_connections_that_receive_nothing() {
    // Consent freshness (RFC 7675) of an idle full agent: its checks
    // leave on time with no input at all, so the heap of deadlines works.
    let mut world = World::new();
    world.connect(100, config(101));
    world.run_until(Duration::from_secs(10), World::all_open);
    let before = world.sent_by_server.len();
    let until = world.now + Duration::from_secs(12);
    while world.now < until {
        assert!(world.step());
    }
    let checks = world.sent_by_server[before..]
        .iter()
        .filter(|(_, d)| natter_stun::decode_header(d).is_ok_and(|(t, _, _)| t.class == Class::Request))
        .count();
    assert!(checks >= 2, "consent checks every ~5 s: {checks} in 12 s");
}

#[test]
fn a_paused_connection_keeps_consent_and_gets_its_data_once_resumed() {
    let mut world = World::new();
    for i in 0..2 {
        world.connect(110 + i, config(120 + i));
    }
    world.run_until(Duration::from_secs(10), World::all_open);
    let paused = world.clients[0].handle;
    world.endpoint.set_paused(paused, true);
    world.send(0, b"while paused");
    world.send(1, b"not paused");
    // Longer than consent lasts without a response (RFC 7675 §5.1: 30 s).
    let until = world.now + Duration::from_secs(35);
    while world.now < until {
        assert!(world.step());
    }
    assert!(world.clients[0].received.is_empty(), "a paused connection got its data");
    assert_eq!(world.clients[1].received, [b"not paused".to_vec()]);
    let stats = world.endpoint.stats();
    assert!(stats.paused_dropped > 0, "{stats:?}");
    for client in &world.clients {
        assert_eq!(client.pc.connection_state(), PeerConnectionState::Connected);
    }
    assert_eq!(
        world.endpoint.get(paused).unwrap().connection_state(),
        PeerConnectionState::Connected,
        "consent and keepalives still reached it"
    );

    // SCTP's retransmission timer backed off while the data was dropped
    // (RFC 9260 §6.3.3, at most RTO.Max = 60 s).
    world.endpoint.set_paused(paused, false);
    world.run_until(Duration::from_secs(65), |w| !w.clients[0].received.is_empty());
    assert_eq!(world.clients[0].received, [b"while paused".to_vec()]);
}

#[test]
fn a_connection_says_which_layer_its_next_deadline_is() {
    let mut world = World::new();
    let idle = world
        .endpoint
        .insert(PeerConnection::new(config(130), world.now).unwrap())
        .unwrap();
    assert_eq!(
        world.endpoint.get(idle).unwrap().poll_timer(),
        None,
        "nothing to do before a description"
    );
    world.connect(131, config(132));
    let handle = world.clients[0].handle;
    let mut seen = Vec::new();
    // Long enough for SCTP's HEARTBEAT on the idle association (RFC 9260
    // §8.3: RTO + HB.interval, 31 s).
    let until = world.now + Duration::from_secs(35);
    while world.now < until {
        let server = world.endpoint.get(handle).unwrap();
        if let Some((deadline, timer)) = server.poll_timer() {
            assert_eq!(server.poll_timeout(), Some(deadline));
            if !seen.contains(&timer) {
                seen.push(timer);
            }
        }
        assert!(world.step());
    }
    assert!(world.all_open());
    // Checks and consent, and SCTP's timers once the association is up.
    for timer in [Timer::Ice, Timer::Sctp] {
        assert!(seen.contains(&timer), "{timer:?} never set the deadline: {seen:?}");
    }
}
