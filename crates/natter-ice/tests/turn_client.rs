//! The TURN client against two real servers.
//!
//! - In memory, under a virtual clock: natter's own sans-IO server core
//!   (`natter_turn::Server`). The harness plays both I/O layers: it carries
//!   the client's packets to the server and the replies back, binds made-up
//!   relayed addresses when the server asks, feeds peers' datagrams into
//!   the server's relayed side, and can drop packets. Tests assert on
//!   events and on what crossed the wire.
//! - Over loopback sockets: coturn's `turnserver` (Debian package coturn),
//!   with a plain UDP socket as the peer, over UDP and TCP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::turn_client::{
    SendError, TurnClient, TurnConfig, TurnError, TurnEvent, TurnReceive, TurnServer, TurnState, MAX_SEND_OVERHEAD,
};
use natter_ice::Transport;
use natter_stun::{
    Class, Data, IntegrityKey, IntegrityKind, Lifetime, Message, MessageType, MessageWriter, Method, PasswordAlgorithm,
    TransactionId, Username, XorPeerAddress, XorRelayedAddress,
};
use natter_turn::auth::Credentials;
use natter_turn::peer_filter::{IpRange, PeerFilter};
use natter_turn::{AllocateOutcome, ClientAction, FiveTuple, ServerConfig, PEER_HEADROOM, PEER_TAILROOM};
use rand::rngs::StdRng;
use rand::SeedableRng;

const REALM: &str = "natter.test";
const USER: &str = "alice";
const PASSWORD: &str = "wonderland";
const SERVER: &str = "10.0.0.100:3478";
const CLIENT: &str = "10.0.0.1:5000";
/// Private peers: the server's PeerFilter lets them through only because
/// the test configuration allow-lists 10.0.0.0/8.
const PEER_A: &str = "10.1.0.1:7000";
const PEER_B: &str = "10.1.0.2:7002";
const RELAY_IP: &str = "10.2.0.1";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ------------------------------------------------------- in-memory harness

fn server_config() -> ServerConfig {
    let mut credentials = Credentials::new(REALM);
    credentials.add_user(USER, PASSWORD).expect("user");
    let mut config = ServerConfig::new(credentials, [3; 32], [4; 32]);
    let allowed: IpRange = "10.0.0.0/8".parse().expect("range");
    config.peer_filter = PeerFilter::new(vec![allowed], vec![], vec![addr(SERVER)]);
    config
}

/// One client, one server, a virtual clock, and the wire between them.
struct Net {
    server: natter_turn::Server,
    client: TurnClient,
    t0: Instant,
    now: Instant,
    five: FiveTuple,
    /// Relayed addresses handed out so far.
    relays: Vec<SocketAddr>,
    /// Every packet the client sent (including dropped ones), with its time.
    wire: Vec<(Duration, Vec<u8>)>,
    /// How many of the client's next packets to lose.
    drop_client_packets: usize,
    /// What the server relayed to peers: from (relayed address), to, data.
    to_peers: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    /// The client's events, oldest first.
    events: Vec<TurnEvent>,
    /// Server events (released allocations).
    server_events: Vec<natter_turn::Event>,
    /// Half-read TCP streams in each direction.
    to_server_stream: Vec<u8>,
    to_client_stream: Vec<u8>,
    /// Relay binding outcome to use for the next Allocate.
    outcome: Option<AllocateOutcome>,
}

impl Net {
    fn new(transport: Transport, password: &str, server: ServerConfig) -> Self {
        let t0 = Instant::now();
        let turn = TurnServer {
            address: addr(SERVER),
            transport,
            username: USER.into(),
            password: password.into(),
        };
        let mut rng = StdRng::seed_from_u64(42);
        let client = TurnClient::with_config(turn, addr(CLIENT), t0, &mut rng, TurnConfig::default());
        let five = FiveTuple {
            transport: match transport {
                Transport::Udp => natter_turn::Transport::Udp,
                Transport::Tcp => natter_turn::Transport::Tcp,
                Transport::Tls => natter_turn::Transport::Tls,
            },
            client: addr(CLIENT),
            server: addr(SERVER),
        };
        Net {
            server: natter_turn::Server::new(server, t0, 1_700_000_000),
            client,
            t0,
            now: t0,
            five,
            relays: Vec::new(),
            wire: Vec::new(),
            drop_client_packets: 0,
            to_peers: Vec::new(),
            events: Vec::new(),
            server_events: Vec::new(),
            to_server_stream: Vec::new(),
            to_client_stream: Vec::new(),
            outcome: None,
        }
    }

    fn udp() -> Self {
        Self::new(Transport::Udp, PASSWORD, server_config())
    }

    fn stream(&self) -> bool {
        self.five.transport != natter_turn::Transport::Udp
    }

    /// Carries packets both ways until the client has nothing to send.
    fn pump(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            assert_eq!((t.source, t.destination), (addr(CLIENT), addr(SERVER)));
            self.wire.push((self.now - self.t0, t.data.clone()));
            if self.drop_client_packets > 0 {
                self.drop_client_packets -= 1;
                continue;
            }
            for frame in self.frames_to_server(t.data) {
                self.deliver_to_server(&frame);
            }
        }
        self.collect();
    }

    /// Over TCP the bytes join a stream the server side cuts into frames.
    fn frames_to_server(&mut self, data: Vec<u8>) -> Vec<Vec<u8>> {
        if !self.stream() {
            return vec![data];
        }
        self.to_server_stream.extend_from_slice(&data);
        split_frames(&mut self.to_server_stream)
    }

    fn deliver_to_server(&mut self, packet: &[u8]) {
        let mut reply = vec![0u8; 1500];
        match self.server.handle_client(self.now, self.five, packet, &mut reply) {
            ClientAction::None => {}
            ClientAction::Reply(n) => self.deliver_to_client(reply[..n].to_vec()),
            ClientAction::Relay { from, to, data } => self.to_peers.push((from, to, data.to_vec())),
            ClientAction::Allocate(req) => {
                let outcome = self.outcome.take().unwrap_or_else(|| {
                    let port = 50_000 + 2 * self.relays.len() as u16;
                    let relay = SocketAddr::new(RELAY_IP.parse().expect("ip"), port);
                    self.relays.push(relay);
                    AllocateOutcome::Bound {
                        relay,
                        additional: None,
                        reservation: None,
                    }
                });
                let n = self.server.finish_allocate(self.now, req.token, outcome, &mut reply);
                assert!(n > 0, "finish_allocate wrote no reply");
                self.deliver_to_client(reply[..n].to_vec());
            }
            other => panic!("unexpected server action {other:?}"),
        }
    }

    /// Delivers a server reply; responses are always the client's business.
    fn deliver_to_client(&mut self, data: Vec<u8>) {
        for frame in self.frames_to_client(data) {
            let got = self.client.handle_receive(self.now, &frame);
            assert_eq!(got, TurnReceive::Handled, "the client did not take a server response");
        }
    }

    fn frames_to_client(&mut self, data: Vec<u8>) -> Vec<Vec<u8>> {
        if !self.stream() {
            return vec![data];
        }
        self.to_client_stream.extend_from_slice(&data);
        split_frames(&mut self.to_client_stream)
    }

    fn collect(&mut self) {
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
    }

    fn take_events(&mut self) -> Vec<TurnEvent> {
        self.collect();
        std::mem::take(&mut self.events)
    }

    /// Moves the clock to `now + d`, waking both sides at every deadline
    /// they ask for on the way, as an event loop would.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            self.pump();
            let next = [self.client.poll_timeout(), Some(self.server.poll_timeout())]
                .into_iter()
                .flatten()
                .min()
                .expect("the server always has a deadline");
            if next > target {
                break;
            }
            self.now = next.max(self.now);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
        self.now = target;
        self.pump();
    }

    /// Allocates and returns the relayed address.
    #[track_caller]
    fn allocate(&mut self) -> SocketAddr {
        self.pump();
        let events = self.take_events();
        let [TurnEvent::Allocated { relayed, mapped }] = events[..] else {
            panic!("expected Allocated, got {events:?}");
        };
        assert_eq!(Some(relayed), self.relays.last().copied());
        assert_eq!(mapped, Some(addr(CLIENT)));
        relayed
    }

    /// The client sends `data` to `peer`; returns what the server relayed.
    #[track_caller]
    fn client_sends(&mut self, peer: SocketAddr, data: &[u8]) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        let t = framed(&mut self.client, peer, data)?;
        self.wire.push((self.now - self.t0, t.clone()));
        let before = self.to_peers.len();
        for frame in self.frames_to_server(t) {
            self.deliver_to_server(&frame);
        }
        assert!(self.to_peers.len() <= before + 1);
        self.to_peers.pop().filter(|_| self.to_peers.len() == before)
    }

    /// `peer` sends `data` to the relayed address; returns what the client
    /// made of it, or `None` if the server dropped it.
    fn peer_sends(&mut self, peer: SocketAddr, data: &[u8]) -> Option<Vec<(SocketAddr, Vec<u8>)>> {
        let relay = *self.relays.last().expect("a relayed address");
        let mut buf = vec![0xEE; PEER_HEADROOM + data.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + data.len()].copy_from_slice(data);
        let (client, range) = self.server.handle_peer(self.now, relay, peer, &mut buf, data.len())?;
        assert_eq!(client, self.five);
        let mut got = Vec::new();
        for frame in self.frames_to_client(buf[range].to_vec()) {
            match self.client.handle_receive(self.now, &frame) {
                TurnReceive::Data { peer, data } => got.push((peer, data.to_vec())),
                other => panic!("expected peer data, got {other:?}"),
            }
        }
        Some(got)
    }

    /// The client's requests on the wire, decoded: method, class, time.
    fn requests(&self, method: Method) -> Vec<(Duration, Vec<u8>)> {
        self.wire
            .iter()
            .filter(|(_, p)| {
                Message::decode(p).is_ok_and(|m| m.message_type() == MessageType::new(method, Class::Request))
            })
            .cloned()
            .collect()
    }
}

/// Cuts whole frames off the front of a stream buffer.
fn split_frames(stream: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(n) = natter_stun::stream_frame_len(stream).expect("a valid TURN stream") {
        frames.push(stream.drain(..n).collect());
    }
    frames
}

// ----------------------------------------------------------- in-memory tests

#[test]
fn allocates_after_a_401_challenge() {
    let mut net = Net::udp();
    let relayed = net.allocate();
    assert_eq!(net.client.state(), TurnState::Allocated);
    assert_eq!(net.client.relayed(), Some(relayed));
    assert_eq!(net.client.mapped(), Some(addr(CLIENT)));
    assert!(net.server.allocation(&net.five).is_some());

    let allocates = net.requests(Method::ALLOCATE);
    assert_eq!(allocates.len(), 2, "one challenged, one authenticated");
    let first = Message::decode(&allocates[0].1).expect("decodes");
    assert!(!first.has_integrity(), "the first Allocate carries no credentials");
    let second = Message::decode(&allocates[1].1).expect("decodes");
    assert_ne!(first.transaction_id(), second.transaction_id());
    assert_eq!(second.get::<Username>(), Ok(Some(Username(USER))));
    // natter's nonce announces PASSWORD-ALGORITHMS (SHA-256 first): the
    // client picks SHA-256 and signs with MESSAGE-INTEGRITY-SHA256.
    assert_eq!(second.get::<PasswordAlgorithm>(), Ok(Some(PasswordAlgorithm::Sha256)));
    let key = IntegrityKey::long_term(USER, REALM, PASSWORD, PasswordAlgorithm::Sha256).expect("key");
    assert_eq!(second.verify_integrity(&key), Ok(IntegrityKind::Sha256));
    // The allocation lasts the server's default 600 s.
    assert_eq!(net.client.expires(), Some(net.now + secs(600)));
}

#[test]
fn lost_first_allocate_is_retransmitted() {
    let mut net = Net::udp();
    net.drop_client_packets = 1;
    net.pump();
    assert!(net.take_events().is_empty());
    assert_eq!(net.client.poll_timeout(), Some(net.t0 + Duration::from_millis(500)));
    net.advance(Duration::from_millis(600));
    let allocates = net.requests(Method::ALLOCATE);
    assert!(allocates.len() >= 3);
    assert_eq!(allocates[0].1, allocates[1].1, "the same request, same transaction id");
    assert_eq!(allocates[1].0, Duration::from_millis(500));
    assert!(matches!(net.take_events()[..], [TurnEvent::Allocated { .. }]));
    assert_eq!(net.client.stats().retransmissions, 1);
}

#[test]
fn wrong_password_fails_the_allocation() {
    let mut net = Net::new(Transport::Udp, "not the password", server_config());
    net.pump();
    let events = net.take_events();
    let [TurnEvent::AllocationFailed(ref error)] = events[..] else {
        panic!("expected AllocationFailed, got {events:?}");
    };
    assert_eq!(
        error,
        &TurnError::Unauthorized {
            request: natter_ice::turn_client::TurnRequest::Allocate
        }
    );
    assert_eq!(error.code(), Some(401));
    assert_eq!(net.client.state(), TurnState::Closed);
    assert_eq!(net.client.poll_timeout(), None);
    assert_eq!(net.client.relayed(), None);
    assert_eq!(net.server.allocation_count(), 0);
}

#[test]
fn quota_and_capacity_errors_fail_the_allocation_with_their_code() {
    for (outcome, code) in [(AllocateOutcome::QuotaReached, 486), (AllocateOutcome::NoCapacity, 508)] {
        let mut net = Net::udp();
        net.outcome = Some(outcome);
        net.pump();
        let events = net.take_events();
        let [TurnEvent::AllocationFailed(ref error)] = events[..] else {
            panic!("expected AllocationFailed, got {events:?}");
        };
        assert_eq!(error.code(), Some(code));
        assert_eq!(net.client.state(), TurnState::Closed);
    }
}

#[test]
fn a_forged_success_response_is_ignored() {
    let mut net = Net::udp();
    // Let the challenge through, then keep the authenticated Allocate.
    let first = net.client.poll_transmit().expect("Allocate");
    net.deliver_to_server(&first.data);
    let request = net.client.poll_transmit().expect("authenticated Allocate");
    let tid = Message::decode(&request.data).expect("decodes").transaction_id();
    // A success for it signed with a key the attacker made up.
    let forged = success_response(
        tid,
        &IntegrityKey::long_term(USER, REALM, "guess", PasswordAlgorithm::Md5).unwrap(),
    );
    assert_eq!(net.client.handle_receive(net.now, &forged), TurnReceive::Handled);
    // And one without any MESSAGE-INTEGRITY.
    let mut unsigned = vec![0u8; 100];
    let mut w = MessageWriter::new(
        &mut unsigned,
        MessageType::new(Method::ALLOCATE, Class::SuccessResponse),
        tid,
    )
    .unwrap();
    w.add(&XorRelayedAddress(addr("203.0.113.1:1"))).unwrap();
    let n = w.finish();
    assert_eq!(net.client.handle_receive(net.now, &unsigned[..n]), TurnReceive::Handled);
    assert!(net.take_events().is_empty());
    assert_eq!(net.client.stats().unauthenticated_responses, 2);
    assert_eq!(net.client.state(), TurnState::Allocating);
    // The real server's answer still counts.
    net.deliver_to_server(&request.data);
    assert!(matches!(net.take_events()[..], [TurnEvent::Allocated { .. }]));
}

fn success_response(tid: TransactionId, key: &IntegrityKey) -> Vec<u8> {
    let mut buf = vec![0u8; 200];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::SuccessResponse),
        tid,
    )
    .unwrap();
    w.add(&XorRelayedAddress(addr("203.0.113.1:1"))).unwrap();
    w.add(&Lifetime(600)).unwrap();
    w.add_message_integrity(key).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn permission_then_send_and_data_indications_both_ways() {
    let mut net = Net::udp();
    let relayed = net.allocate();
    let peer = addr(PEER_A);
    assert_eq!(framed(&mut net.client, peer, b"too early"), None, "no permission yet");
    net.client.create_permission(peer.ip(), net.now);
    net.pump();
    assert_eq!(net.take_events(), [TurnEvent::PermissionCreated(peer.ip())]);
    assert!(net.client.has_permission(peer.ip()));

    let (from, to, data) = net.client_sends(peer, b"hello peer").expect("relayed");
    assert_eq!((from, to, &data[..]), (relayed, peer, &b"hello peer"[..]));
    let sent = Message::decode(&net.wire.last().unwrap().1).expect("a STUN message");
    assert_eq!(sent.message_type(), MessageType::new(Method::SEND, Class::Indication));

    // Any port of a permitted IP may answer, through a Data indication.
    let other_port = SocketAddr::new(peer.ip(), 7777);
    for from in [peer, other_port] {
        let got = net.peer_sends(from, b"hello client").expect("permitted");
        assert_eq!(got, [(from, b"hello client".to_vec())]);
    }
    // The server drops a stranger's datagram; the client drops a Data
    // indication from a peer it never permitted.
    assert_eq!(net.peer_sends(addr(PEER_B), b"x"), None);
    let stray = data_indication(addr(PEER_B), b"stray");
    assert_eq!(net.client.handle_receive(net.now, &stray), TurnReceive::Handled);
    assert_eq!(net.client.stats().dropped_data, 1);
    assert_eq!(
        net.client.encode_send(addr(PEER_B), b"x", &mut [0u8; 100]),
        Err(SendError::NoPermission(addr(PEER_B).ip()))
    );
}

/// What the client sends to the server for `data` to `peer`, if it can.
fn framed(client: &mut TurnClient, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; data.len() + MAX_SEND_OVERHEAD];
    let n = client.encode_send(peer, data, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn data_indication(peer: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 200];
    let typ = MessageType::new(Method::DATA, Class::Indication);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId([9; 12])).unwrap();
    w.add(&XorPeerAddress(peer)).unwrap();
    w.add(&Data(data)).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn channel_bind_then_channel_data_both_ways() {
    let mut net = Net::udp();
    let relayed = net.allocate();
    let peer = addr(PEER_B);
    net.client.bind_channel(peer, net.now);
    net.pump();
    assert_eq!(net.take_events(), [TurnEvent::ChannelBound(peer)]);
    assert_eq!(net.client.channel(peer), Some(0x4000));
    assert!(net.client.has_permission(peer.ip()), "a channel brings a permission");

    let (from, to, data) = net.client_sends(peer, b"over the channel").expect("relayed");
    assert_eq!((from, to, &data[..]), (relayed, peer, &b"over the channel"[..]));
    let sent = &net.wire.last().unwrap().1;
    assert_eq!(&sent[..4], &[0x40, 0x00, 0x00, 16], "ChannelData 0x4000, 16 bytes");
    assert_eq!(sent.len(), 20, "not padded over UDP");

    let got = net.peer_sends(peer, b"back").expect("relayed");
    assert_eq!(got, [(peer, b"back".to_vec())]);
    // Another port of that IP has a permission but no channel: a Data indication.
    let other = SocketAddr::new(peer.ip(), 9999);
    assert_eq!(
        net.peer_sends(other, b"other").expect("permitted"),
        [(other, b"other".to_vec())]
    );
    // ChannelData on a channel the client never bound is dropped.
    assert_eq!(
        net.client.handle_receive(net.now, &[0x40, 0x07, 0x00, 0x01, 0xAA]),
        TurnReceive::Handled
    );

    // A second peer gets the next number.
    net.client.bind_channel(addr(PEER_A), net.now);
    net.pump();
    assert_eq!(net.take_events(), [TurnEvent::ChannelBound(addr(PEER_A))]);
    assert_eq!(net.client.channel(addr(PEER_A)), Some(0x4001));
}

#[test]
fn requests_made_while_allocating_go_out_once_allocated() {
    let mut net = Net::udp();
    net.client.create_permission(addr(PEER_A).ip(), net.now);
    net.client.bind_channel(addr(PEER_B), net.now);
    net.pump();
    let mut events = net.take_events();
    assert!(matches!(events.remove(0), TurnEvent::Allocated { .. }));
    events.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        events,
        [
            TurnEvent::ChannelBound(addr(PEER_B)),
            TurnEvent::PermissionCreated(addr(PEER_A).ip()),
        ]
    );
}

#[test]
fn stale_nonce_on_refresh_is_retried_with_the_new_nonce() {
    let mut config = server_config();
    config.nonce_lifetime = secs(30);
    let mut net = Net::new(Transport::Udp, PASSWORD, config);
    net.allocate();
    // The Refresh goes out 60 s before the 600 s lifetime ends, with the
    // nonce that expired at 30 s.
    net.advance(secs(545));
    let refreshes = net.requests(Method::REFRESH);
    assert_eq!(refreshes.len(), 2, "the first refused with 438, then the retry");
    assert_eq!(refreshes[0].0, secs(540));
    let nonce = |p: &[u8]| {
        Message::decode(p)
            .unwrap()
            .get::<natter_stun::Nonce>()
            .unwrap()
            .unwrap()
            .0
            .to_owned()
    };
    assert_ne!(nonce(&refreshes[0].1), nonce(&refreshes[1].1));
    assert_eq!(net.client.stats().stale_nonces, 1);
    assert!(net.take_events().is_empty(), "no failure reported");
    assert_eq!(net.client.expires(), Some(net.t0 + secs(540 + 600)));
    let alloc = net.server.allocation(&net.five).expect("still allocated");
    assert_eq!(alloc.expires, net.t0 + secs(540 + 600));
}

#[test]
fn refreshes_keep_allocation_permissions_and_channels_alive() {
    let mut config = server_config();
    config.nonce_lifetime = secs(100);
    let mut net = Net::new(Transport::Udp, PASSWORD, config);
    let relayed = net.allocate();
    let (a, b) = (addr(PEER_A), addr(PEER_B));
    net.client.create_permission(a.ip(), net.now);
    net.client.bind_channel(b, net.now);
    net.pump();
    assert_eq!(net.take_events().len(), 2);
    // Three allocation lifetimes, six permission lifetimes, on the
    // virtual clock; nonces go stale every 100 s.
    net.advance(secs(1900));
    assert_eq!(net.take_events(), [], "nothing failed or expired");
    assert_eq!(net.client.state(), TurnState::Allocated);
    assert!(net.server.allocation(&net.five).is_some());
    assert!(net.requests(Method::REFRESH).len() >= 3);
    assert!(net.requests(Method::CREATE_PERMISSION).len() >= 8);
    assert!(net.requests(Method::CHANNEL_BIND).len() >= 8);
    // Data still flows both ways, over the indication and the channel.
    assert_eq!(net.client_sends(a, b"late a").map(|r| r.0), Some(relayed));
    assert_eq!(net.client_sends(b, b"late b").map(|r| r.0), Some(relayed));
    assert_eq!(net.wire.last().unwrap().1[0], 0x40, "ChannelData");
    assert_eq!(net.peer_sends(a, b"a"), Some(vec![(a, b"a".to_vec())]));
    assert_eq!(net.peer_sends(b, b"b"), Some(vec![(b, b"b".to_vec())]));
}

#[test]
fn without_answers_the_allocation_expires() {
    let mut net = Net::udp();
    net.allocate();
    net.client.create_permission(addr(PEER_A).ip(), net.now);
    net.pump();
    net.take_events();
    // The server goes silent.
    net.drop_client_packets = usize::MAX;
    net.advance(secs(700));
    let events = net.take_events();
    assert!(
        events.contains(&TurnEvent::PermissionFailed(addr(PEER_A).ip())),
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&TurnEvent::Expired));
    assert_eq!(net.client.state(), TurnState::Closed);
    assert_eq!(net.client.poll_timeout(), None);
    assert!(matches!(net.client.last_error(), Some(TurnError::Timeout { .. })));
    assert_eq!(framed(&mut net.client, addr(PEER_A), b"x"), None);
}

#[test]
fn release_deletes_the_allocation() {
    let mut net = Net::udp();
    net.allocate();
    net.client.bind_channel(addr(PEER_A), net.now);
    net.pump();
    net.take_events();
    net.client.release(net.now);
    assert_eq!(net.client.state(), TurnState::Releasing);
    net.pump();
    assert_eq!(net.take_events(), [TurnEvent::Released]);
    let refresh = net.requests(Method::REFRESH);
    let last = Message::decode(&refresh.last().unwrap().1).unwrap();
    assert_eq!(last.get::<Lifetime>(), Ok(Some(Lifetime(0))));
    assert_eq!(net.server.allocation_count(), 0);
    assert!(matches!(
        net.server_events[..],
        [natter_turn::Event::AllocationClosed { .. }]
    ));
    assert_eq!(net.client.state(), TurnState::Closed);
    assert_eq!(framed(&mut net.client, addr(PEER_A), b"x"), None);
    assert_eq!(net.client.poll_timeout(), None);
}

#[test]
fn allocation_mismatch_on_refresh_means_the_allocation_is_gone() {
    let mut net = Net::udp();
    net.allocate();
    // The server forgets the allocation behind the client's back.
    net.server.handle_client_closed(&net.five);
    net.advance(secs(541));
    assert_eq!(net.take_events(), [TurnEvent::Expired]);
    assert_eq!(net.client.last_error().and_then(|e| e.code()), Some(437));
    assert_eq!(net.client.state(), TurnState::Closed);
}

#[test]
fn release_while_allocating() {
    // Before any credentials went out there is nothing to release.
    let mut net = Net::udp();
    net.client.release(net.now);
    assert_eq!(net.take_events(), [TurnEvent::Released]);
    assert_eq!(net.client.state(), TurnState::Closed);

    // With the authenticated Allocate on its way, the allocation is
    // released as soon as it exists.
    let mut net = Net::udp();
    let first = net.client.poll_transmit().expect("Allocate");
    net.deliver_to_server(&first.data);
    net.client.release(net.now);
    net.pump();
    let events = net.take_events();
    assert!(
        matches!(events[..], [TurnEvent::Allocated { .. }, TurnEvent::Released]),
        "{events:?}"
    );
    assert_eq!(net.server.allocation_count(), 0);
}

#[test]
fn tcp_pads_channel_data_and_sends_requests_once() {
    let mut net = Net::new(Transport::Tcp, PASSWORD, server_config());
    let relayed = net.allocate();
    let peer = addr(PEER_A);
    net.client.bind_channel(peer, net.now);
    net.pump();
    assert_eq!(net.take_events(), [TurnEvent::ChannelBound(peer)]);
    let (from, _, data) = net.client_sends(peer, b"12345").expect("relayed");
    assert_eq!((from, &data[..]), (relayed, &b"12345"[..]));
    assert_eq!(net.wire.last().unwrap().1.len(), 12, "4 + 5 bytes padded to 12");
    // Padded ChannelData from the server is cut by stream_frame_len.
    assert_eq!(net.peer_sends(peer, b"abc"), Some(vec![(peer, b"abc".to_vec())]));
    // A request the server never answers is not resent over TCP.
    net.drop_client_packets = usize::MAX;
    net.client.create_permission(addr(PEER_B).ip(), net.now);
    net.advance(secs(45));
    assert_eq!(net.requests(Method::CREATE_PERMISSION).len(), 1);
    assert_eq!(net.take_events(), [TurnEvent::PermissionFailed(addr(PEER_B).ip())]);
    // Closing the connection ends the allocation.
    net.client.handle_connection_closed();
    assert_eq!(net.take_events(), [TurnEvent::Expired]);
}

// ------------------------------------------------------------ coturn interop

mod coturn {
    use std::fs;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use natter_ice::turn_client::{TurnClient, TurnEvent, TurnReceive, TurnServer, TurnState};
    use natter_ice::Transport;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const USER: &str = "alice";
    const PASSWORD: &str = "wonderland";
    const DEADLINE: Duration = Duration::from_secs(10);

    /// A `turnserver` on a free loopback port, killed when dropped.
    struct Coturn {
        child: Child,
        port: u16,
        dir: PathBuf,
    }

    impl Coturn {
        fn start() -> Self {
            Self::start_with(&[])
        }

        fn start_with(extra: &[&str]) -> Self {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("natter-ice-coturn-{}-{port}", std::process::id()));
            fs::create_dir_all(&dir).expect("create a scratch directory");
            let path = |f: &str| dir.join(f).display().to_string();
            let args = [
                "-n",
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--listening-ip",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "--listening-port",
                &port.to_string(),
                "--lt-cred-mech",
                "--realm",
                "natter.test",
                "--user",
                &format!("{USER}:{PASSWORD}"),
                "--allow-loopback-peers",
                "--log-file",
                &path("turnserver.log"),
                "--simple-log",
                "--no-stdout-log",
                "--pidfile",
                &path("turnserver.pid"),
                "--db",
                &path("turndb"),
            ];
            let child = Command::new("turnserver")
                .args(args)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    if e.kind() == ErrorKind::NotFound {
                        panic!("`turnserver` not found: this test needs coturn; run `apt-get install coturn`");
                    }
                    panic!("cannot start turnserver: {e}");
                });
            let mut server = Coturn { child, port, dir };
            server.wait_until_ready();
            server
        }

        fn address(&self) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], self.port))
        }

        fn log(&self) -> String {
            fs::read_to_string(self.dir.join("turnserver.log")).unwrap_or_default()
        }

        /// Until a STUN Binding request is answered and TCP connects.
        fn wait_until_ready(&mut self) {
            let probe = UdpSocket::bind("127.0.0.1:0").expect("bind a probe");
            probe.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            let mut request = [0u8; 20];
            request[..8].copy_from_slice(&[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]);
            let deadline = Instant::now() + DEADLINE;
            loop {
                if let Some(status) = self.child.try_wait().expect("poll turnserver") {
                    panic!("turnserver exited ({status}); its log:\n{}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "turnserver not ready; its log:\n{}",
                    self.log()
                );
                let _ = probe.send_to(&request, self.address());
                let mut buf = [0u8; 1500];
                if probe.recv_from(&mut buf).is_ok() && TcpStream::connect(self.address()).is_ok() {
                    return;
                }
            }
        }
    }

    impl Drop for Coturn {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// A loopback port free for both UDP and TCP right now.
    fn free_port() -> u16 {
        loop {
            let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let port = udp.local_addr().expect("local address").port();
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }

    /// The client's path to the server: a UDP socket or a TCP stream.
    enum Link {
        Udp(UdpSocket, SocketAddr),
        Tcp(TcpStream, Vec<u8>),
    }

    impl Link {
        fn send(&mut self, data: &[u8]) {
            match self {
                Link::Udp(s, to) => {
                    s.send_to(data, *to).expect("send to coturn");
                }
                Link::Tcp(s, _) => s.write_all(data).expect("write to coturn"),
            }
        }

        /// Packets (UDP) or whole frames (TCP) that arrive within 20 ms.
        fn receive(&mut self) -> Vec<Vec<u8>> {
            let mut buf = [0u8; 4096];
            match self {
                Link::Udp(s, from) => match s.recv_from(&mut buf) {
                    Ok((n, src)) if src == *from => vec![buf[..n].to_vec()],
                    _ => vec![],
                },
                Link::Tcp(s, stream) => {
                    match s.read(&mut buf) {
                        Ok(0) => panic!("coturn closed the TCP connection"),
                        Ok(n) => stream.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                    let mut frames = Vec::new();
                    while let Some(n) = natter_stun::stream_frame_len(stream).expect("a valid TURN stream") {
                        frames.push(stream.drain(..n).collect());
                    }
                    frames
                }
            }
        }
    }

    /// A TurnClient driven by the real clock over a real link.
    struct Driver {
        client: TurnClient,
        link: Link,
        /// Peer data the client received.
        data: Vec<(SocketAddr, Vec<u8>)>,
    }

    impl Driver {
        fn new(server: &Coturn, transport: Transport) -> Self {
            let (link, local) = match transport {
                Transport::Udp => {
                    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    let local = s.local_addr().unwrap();
                    (Link::Udp(s, server.address()), local)
                }
                _ => {
                    let s = TcpStream::connect(server.address()).expect("connect to coturn");
                    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    s.set_nodelay(true).unwrap();
                    let local = s.local_addr().unwrap();
                    (Link::Tcp(s, Vec::new()), local)
                }
            };
            let turn = TurnServer {
                address: server.address(),
                transport,
                username: USER.into(),
                password: PASSWORD.into(),
            };
            let mut rng = StdRng::seed_from_u64(9);
            let client = TurnClient::new(turn, local, Instant::now(), &mut rng);
            Driver {
                client,
                link,
                data: Vec::new(),
            }
        }

        /// One round: send what is queued, take what arrived, fire timers.
        fn step(&mut self) {
            while let Some(t) = self.client.poll_transmit() {
                self.link.send(&t.data);
            }
            for packet in self.link.receive() {
                match self.client.handle_receive(Instant::now(), &packet) {
                    TurnReceive::Data { peer, data } => self.data.push((peer, data.to_vec())),
                    TurnReceive::Handled => {}
                    TurnReceive::NotTurn => panic!("coturn sent something the client does not take"),
                }
            }
            let now = Instant::now();
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
        }

        /// Steps until an event arrives; fails after the deadline.
        fn event(&mut self, server: &Coturn, what: &str) -> TurnEvent {
            let deadline = Instant::now() + DEADLINE;
            loop {
                if let Some(e) = self.client.poll_event() {
                    return e;
                }
                assert!(
                    Instant::now() < deadline,
                    "no {what} from coturn within {DEADLINE:?}; coturn's log:\n{}",
                    server.log()
                );
                self.step();
            }
        }

        /// Steps until the client received peer data.
        fn data(&mut self, server: &Coturn) -> (SocketAddr, Vec<u8>) {
            let deadline = Instant::now() + DEADLINE;
            while self.data.is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "no relayed data; coturn's log:\n{}",
                    server.log()
                );
                self.step();
            }
            self.data.remove(0)
        }
    }

    fn peer_receives(peer: &UdpSocket) -> (SocketAddr, Vec<u8>) {
        let mut buf = [0u8; 1500];
        let (n, from) = peer
            .recv_from(&mut buf)
            .expect("the peer got the relayed datagram in time");
        (from, buf[..n].to_vec())
    }

    /// Allocate, permission with Send/Data indications, channel with
    /// ChannelData, both ways, then release.
    fn exchange_through_coturn(transport: Transport) {
        let server = Coturn::start();
        let mut d = Driver::new(&server, transport);
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind the peer");
        peer.set_read_timeout(Some(DEADLINE)).unwrap();
        let peer_addr = peer.local_addr().unwrap();

        let TurnEvent::Allocated { relayed, mapped } = d.event(&server, "Allocated") else {
            panic!(
                "allocation failed: {:?}; coturn's log:\n{}",
                d.client.last_error(),
                server.log()
            );
        };
        assert_eq!(relayed.ip(), peer_addr.ip());
        assert_eq!(mapped, Some(d.client.local()));

        d.client.create_permission(peer_addr.ip(), Instant::now());
        assert_eq!(
            d.event(&server, "PermissionCreated"),
            TurnEvent::PermissionCreated(peer_addr.ip()),
            "{:?}",
            d.client.last_error()
        );
        let t = super::framed(&mut d.client, peer_addr, b"send indication").expect("a permission");
        d.link.send(&t);
        assert_eq!(peer_receives(&peer), (relayed, b"send indication".to_vec()));
        peer.send_to(b"data indication", relayed).unwrap();
        assert_eq!(d.data(&server), (peer_addr, b"data indication".to_vec()));

        d.client.bind_channel(peer_addr, Instant::now());
        assert_eq!(
            d.event(&server, "ChannelBound"),
            TurnEvent::ChannelBound(peer_addr),
            "{:?}",
            d.client.last_error()
        );
        let t = super::framed(&mut d.client, peer_addr, b"channel data").expect("a channel");
        assert_eq!(t[0] & 0xC0, 0x40, "ChannelData");
        d.link.send(&t);
        assert_eq!(peer_receives(&peer), (relayed, b"channel data".to_vec()));
        peer.send_to(b"and back", relayed).unwrap();
        assert_eq!(d.data(&server), (peer_addr, b"and back".to_vec()));

        d.client.release(Instant::now());
        assert_eq!(d.event(&server, "Released"), TurnEvent::Released);
        assert_eq!(d.client.state(), TurnState::Closed);
        assert_eq!(d.client.stats().unauthenticated_responses, 0);
    }

    /// coturn with nonces that go stale after a second: a request after
    /// that is answered 438 and retried with the new nonce.
    #[test]
    fn stale_nonce_from_coturn() {
        let server = Coturn::start_with(&["--stale-nonce=1"]);
        let mut d = Driver::new(&server, Transport::Udp);
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind the peer");
        let peer_addr = peer.local_addr().unwrap();
        assert!(matches!(d.event(&server, "Allocated"), TurnEvent::Allocated { .. }));
        // Keep the client running (nothing is due) until the nonce is stale.
        let stale = Instant::now() + Duration::from_millis(2100);
        while Instant::now() < stale {
            d.step();
        }
        d.client.create_permission(peer_addr.ip(), Instant::now());
        assert_eq!(
            d.event(&server, "PermissionCreated"),
            TurnEvent::PermissionCreated(peer_addr.ip()),
            "{:?}",
            d.client.last_error()
        );
        assert_eq!(d.client.stats().stale_nonces, 1);
    }

    #[test]
    fn udp_through_coturn() {
        exchange_through_coturn(Transport::Udp);
    }

    #[test]
    fn tcp_through_coturn() {
        exchange_through_coturn(Transport::Tcp);
    }
}
