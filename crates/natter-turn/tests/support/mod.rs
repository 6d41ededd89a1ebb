//! A tiny TURN client and a stand-in I/O layer for driving
//! [`natter_turn::Server`] under a virtual clock.
//!
//! The harness owns the server and the clock (a base `Instant` plus the
//! durations the test advances it by; nothing sleeps). It plays the I/O
//! layer: it answers `ClientAction::Allocate` with made-up relayed
//! addresses, feeds peer datagrams into `handle_peer` with the headroom the
//! core asks for, fires `handle_timeout` at every deadline the core asks
//! for, and collects `Event`s. Tests assert on what crosses the wire:
//! replies are decoded with `natter_stun::Message`.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_stun::{
    attribute, Attribute, ChannelData, Class, ErrorCode, IntegrityKey, IntegrityKind, Lifetime, Message, MessageType,
    MessageWriter, Method, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm, RequestedTransport, TransactionId,
    UserHash, Username, XorPeerAddress, XorRelayedAddress,
};
use natter_turn::auth::Credentials;
use natter_turn::{
    AllocateOutcome, AllocateRequest, ClientAction, Event, FiveTuple, Server, ServerConfig, Transport, PEER_HEADROOM,
    PEER_TAILROOM,
};

pub const REALM: &str = "natter.test";
pub const ALICE: (&str, &str) = ("alice", "wonderland");
pub const BOB: (&str, &str) = ("bob", "builder");
/// The wall-clock time at the harness's base instant.
pub const UNIX_START: u64 = 1_700_000_000;
/// The server's own listener.
pub const SERVER: &str = "192.0.2.200:3478";
/// Globally routable peers the default policy lets through.
pub const PEER_A: &str = "1.2.3.4:5000";
pub const PEER_B: &str = "5.6.7.8:6000";
pub const PEER_V6: &str = "[2606:4700::1111]:7000";
/// The IPs the harness hands out relayed addresses on.
pub const RELAY_V4: &str = "198.51.100.1";
pub const RELAY_V6: &str = "2001:db8::1";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

pub fn five(transport: Transport, client: &str) -> FiveTuple {
    FiveTuple {
        transport,
        client: addr(client),
        server: addr(SERVER),
    }
}

pub fn udp(client: &str) -> FiveTuple {
    five(Transport::Udp, client)
}

pub fn tcp(client: &str) -> FiveTuple {
    five(Transport::Tcp, client)
}

/// Static users alice and bob in [`REALM`].
pub fn credentials() -> Credentials {
    let mut c = Credentials::new(REALM);
    c.add_user(ALICE.0, ALICE.1).expect("user");
    c.add_user(BOB.0, BOB.1).expect("user");
    c
}

pub fn config() -> ServerConfig {
    ServerConfig::new(credentials(), [7; 32], [9; 32])
}

/// An owned copy of a STUN message the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply(pub Vec<u8>);

impl Reply {
    pub fn msg(&self) -> Message<'_> {
        Message::decode(&self.0).expect("the server sent a message that does not decode")
    }

    pub fn class(&self) -> Class {
        self.msg().class()
    }

    pub fn method(&self) -> Method {
        self.msg().method()
    }

    pub fn tid(&self) -> TransactionId {
        self.msg().transaction_id()
    }

    /// The first attribute of type `A`; panics if it does not decode.
    pub fn get<'a, A: Attribute<'a>>(&'a self) -> Option<A> {
        self.msg().get::<A>().expect("attribute decodes")
    }

    pub fn has(&self, typ: u16) -> bool {
        self.msg().has(typ)
    }

    /// The ERROR-CODE number, if any.
    pub fn code(&self) -> Option<u16> {
        self.get::<ErrorCode>().map(|e| e.code)
    }

    pub fn nonce(&self) -> Option<String> {
        self.get::<Nonce>().map(|n| n.0.to_owned())
    }

    pub fn realm(&self) -> Option<String> {
        self.get::<Realm>().map(|r| r.0.to_owned())
    }

    pub fn lifetime(&self) -> Option<u32> {
        self.get::<Lifetime>().map(|l| l.0)
    }

    /// Every XOR-RELAYED-ADDRESS, in order.
    pub fn relayed(&self) -> Vec<SocketAddr> {
        let msg = self.msg();
        let tid = msg.transaction_id();
        msg.attributes()
            .filter(|a| a.typ == attribute::XOR_RELAYED_ADDRESS)
            .map(|a| XorRelayedAddress::decode(a.value, &tid).expect("address decodes").0)
            .collect()
    }

    pub fn verify(&self, key: &IntegrityKey) -> Result<IntegrityKind, natter_stun::Error> {
        self.msg().verify_integrity(key)
    }

    /// Asserts a success response to `method`.
    #[track_caller]
    pub fn assert_success(&self, method: Method) -> &Self {
        assert_eq!(
            (self.method(), self.class(), self.code()),
            (method, Class::SuccessResponse, None),
            "expected a {method:?} success"
        );
        self
    }

    /// Asserts an error response to `method` with `code`.
    #[track_caller]
    pub fn assert_error(&self, method: Method, code: u16) -> &Self {
        assert_eq!(
            (self.method(), self.class(), self.code()),
            (method, Class::ErrorResponse, Some(code)),
            "expected a {method:?} {code} error"
        );
        self
    }
}

/// What an input made the server do, with borrowed data copied out.
#[derive(Debug, PartialEq, Eq)]
pub enum Out {
    None,
    Reply(Reply),
    Relay {
        from: SocketAddr,
        to: SocketAddr,
        data: Vec<u8>,
    },
    Allocate(AllocateRequest),
    Connect {
        id: u32,
        relay: SocketAddr,
        peer: SocketAddr,
    },
    BindConnection {
        id: u32,
        reply: Reply,
    },
}

impl Out {
    #[track_caller]
    pub fn reply(self) -> Reply {
        match self {
            Out::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn allocate_request(self) -> AllocateRequest {
        match self {
            Out::Allocate(r) => r,
            other => panic!("expected ClientAction::Allocate, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn relay(self) -> (SocketAddr, SocketAddr, Vec<u8>) {
        match self {
            Out::Relay { from, to, data } => (from, to, data),
            other => panic!("expected ClientAction::Relay, got {other:?}"),
        }
    }
}

/// Builds attributes of a request.
pub type Attrs<'f> = &'f dyn Fn(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>;

/// No method attributes.
pub fn none(_: &mut MessageWriter<'_>) -> Result<(), natter_stun::Error> {
    Ok(())
}

pub fn udp_transport(w: &mut MessageWriter<'_>) -> Result<(), natter_stun::Error> {
    w.add(&RequestedTransport::UDP)
}

pub fn tcp_transport(w: &mut MessageWriter<'_>) -> Result<(), natter_stun::Error> {
    w.add(&RequestedTransport::TCP)
}

/// A client of the long-term credential mechanism (RFC 8489 §9.2) on one
/// 5-tuple.
#[derive(Clone, Debug)]
pub struct Client {
    pub five: FiveTuple,
    pub username: String,
    pub password: String,
    /// The realm the client signs with (normally learnt from a 401).
    pub realm: String,
    pub nonce: Option<String>,
    /// The key derivation; with `negotiate` the request carries
    /// PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM.
    pub algorithm: PasswordAlgorithm,
    pub negotiate: bool,
    /// Sign with MESSAGE-INTEGRITY-SHA256 instead of MESSAGE-INTEGRITY.
    pub sha256_integrity: bool,
    /// Send USERHASH instead of USERNAME.
    pub userhash: bool,
    pub fingerprint: bool,
    seq: u32,
}

impl Client {
    pub fn new(five: FiveTuple, (username, password): (&str, &str)) -> Self {
        Client {
            five,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: REALM.to_owned(),
            nonce: None,
            algorithm: PasswordAlgorithm::Md5,
            negotiate: false,
            sha256_integrity: false,
            userhash: false,
            fingerprint: true,
            seq: 0,
        }
    }

    /// The same credentials on another 5-tuple, sharing the nonce.
    pub fn on(&self, five: FiveTuple) -> Self {
        Client { five, ..self.clone() }
    }

    /// The key the server must sign responses with.
    pub fn key(&self) -> IntegrityKey {
        IntegrityKey::long_term(&self.username, &self.realm, &self.password, self.algorithm).expect("key")
    }

    pub fn kind(&self) -> IntegrityKind {
        if self.sha256_integrity {
            IntegrityKind::Sha256
        } else {
            IntegrityKind::Sha1
        }
    }

    /// A fresh, deterministic transaction id unique to this client.
    pub fn next_tid(&mut self) -> TransactionId {
        self.seq += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.seq.to_be_bytes());
        t[4..6].copy_from_slice(&self.five.client.port().to_be_bytes());
        match self.five.client.ip() {
            IpAddr::V4(v4) => t[6..10].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => t[6..10].copy_from_slice(&v6.octets()[12..]),
        }
        t[10] = self.five.transport as u8;
        t[11] = 0x5a;
        TransactionId(t)
    }

    /// Learns REALM and NONCE from a 401 or 438.
    #[track_caller]
    pub fn learn(&mut self, reply: &Reply) {
        self.realm = reply.realm().expect("challenge carries REALM");
        self.nonce = Some(reply.nonce().expect("challenge carries NONCE"));
    }

    /// A request without credentials.
    pub fn unauthenticated(&mut self, method: Method, attrs: Attrs<'_>) -> Vec<u8> {
        let tid = self.next_tid();
        let mut buf = vec![0u8; 65_600];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).expect("header");
        attrs(&mut w).expect("attributes fit");
        if self.fingerprint {
            w.add_fingerprint().expect("fits");
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    /// An authenticated request with a fresh transaction id.
    pub fn request(&mut self, method: Method, attrs: Attrs<'_>) -> Vec<u8> {
        let tid = self.next_tid();
        self.request_with_tid(method, tid, attrs)
    }

    /// An authenticated request: the method's attributes, then USERNAME
    /// (or USERHASH), REALM, NONCE, the password algorithms if
    /// negotiating, the integrity attribute and FINGERPRINT.
    pub fn request_with_tid(&self, method: Method, tid: TransactionId, attrs: Attrs<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; 65_600];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).expect("header");
        attrs(&mut w).expect("attributes fit");
        if self.userhash {
            let h = natter_stun::userhash(&self.username, &self.realm).expect("userhash");
            w.add(&UserHash(h)).expect("fits");
        } else {
            w.add(&Username(&self.username)).expect("fits");
        }
        w.add(&Realm(&self.realm)).expect("fits");
        let nonce = self.nonce.clone().unwrap_or_else(|| "no nonce yet".to_owned());
        w.add(&Nonce(&nonce)).expect("fits");
        if self.negotiate {
            w.add(&PasswordAlgorithms::new(&[
                PasswordAlgorithm::Sha256,
                PasswordAlgorithm::Md5,
            ]))
            .expect("fits");
            w.add(&self.algorithm).expect("fits");
        }
        w.add_integrity(&self.key(), self.kind()).expect("fits");
        if self.fingerprint {
            w.add_fingerprint().expect("fits");
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    /// A Send indication (RFC 8656 §11.1).
    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        let tid = self.next_tid();
        let mut buf = vec![0u8; 65_600];
        let typ = MessageType::new(Method::SEND, Class::Indication);
        let mut w = MessageWriter::new(&mut buf, typ, tid).expect("header");
        w.add(&XorPeerAddress(peer)).expect("fits");
        w.add(&natter_stun::Data(data)).expect("fits");
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    /// A ChannelData message, padded over stream transports (RFC 8656 §12.5).
    pub fn channel_data(&self, number: u16, data: &[u8]) -> Vec<u8> {
        let padded = self.five.transport != Transport::Udp;
        let mut buf = vec![0u8; ChannelData::encoded_len(data.len(), padded)];
        let n = ChannelData { number, data }.encode(&mut buf, padded).expect("fits");
        buf.truncate(n);
        buf
    }
}

/// The server, the virtual clock and a stand-in I/O layer.
pub struct Harness {
    pub server: Server,
    pub t0: Instant,
    pub now: Instant,
    /// Events drained from the server, oldest first.
    pub events: Vec<Event>,
    next_port: u16,
    /// Ports held for RESERVATION-TOKENs (the I/O layer keeps them).
    pub reservations: HashMap<[u8; 8], SocketAddr>,
}

impl Harness {
    pub fn new(config: ServerConfig) -> Self {
        let t0 = Instant::now();
        Harness {
            server: Server::new(config, t0, UNIX_START),
            t0,
            now: t0,
            events: Vec::new(),
            next_port: 50_000,
            reservations: HashMap::new(),
        }
    }

    pub fn default_config() -> Self {
        Self::new(config())
    }

    /// Virtual seconds since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    pub fn stats(&self) -> natter_turn::stats::Stats {
        *self.server.stats()
    }

    /// Moves the clock forward by `d`, firing `handle_timeout` at every
    /// deadline the server asks for on the way, as an event loop would.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        loop {
            let next = self.server.poll_timeout();
            if next > target {
                break;
            }
            self.now = next.max(self.now);
            self.server.handle_timeout(self.now);
            self.collect_events();
        }
        self.now = target;
    }

    pub fn advance_secs(&mut self, secs: u64) {
        self.advance(Duration::from_secs(secs));
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.server.poll_event() {
            self.events.push(e);
        }
    }

    /// Events produced since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.collect_events();
        std::mem::take(&mut self.events)
    }

    /// Feeds one packet from a client to the server.
    pub fn send(&mut self, from: FiveTuple, packet: &[u8]) -> Out {
        let mut reply = vec![0u8; 1500];
        let action = self.server.handle_client(self.now, from, packet, &mut reply);
        let out = match action {
            ClientAction::None => Out::None,
            ClientAction::Reply(n) => {
                assert!(n > 0, "ClientAction::Reply(0)");
                Out::Reply(Reply(reply[..n].to_vec()))
            }
            ClientAction::Relay { from, to, data } => Out::Relay {
                from,
                to,
                data: data.to_vec(),
            },
            ClientAction::Allocate(req) => Out::Allocate(*req),
            ClientAction::Connect { id, relay, peer } => Out::Connect { id, relay, peer },
            ClientAction::BindConnection { id, reply: n } => Out::BindConnection {
                id,
                reply: Reply(reply[..n].to_vec()),
            },
        };
        self.collect_events();
        out
    }

    /// A made-up relayed address of `family` on an even port.
    pub fn fresh_relay(&mut self, v6: bool) -> SocketAddr {
        let port = self.next_port;
        self.next_port += 2;
        let ip: IpAddr = if v6 { RELAY_V6 } else { RELAY_V4 }.parse().expect("ip");
        SocketAddr::new(ip, port)
    }

    /// What a well-behaved I/O layer binds for `req`: a fresh even port
    /// (and the next one held under a new token for EVEN-PORT with the R
    /// bit), the port held under a RESERVATION-TOKEN, or `NoCapacity` for
    /// a token it does not hold.
    pub fn bind(&mut self, req: &AllocateRequest) -> AllocateOutcome {
        let v6 = req.family == natter_stun::AddressFamily::V6;
        let relay = match req.reservation {
            Some(token) => match self.reservations.remove(&token) {
                Some(addr) => addr,
                None => return AllocateOutcome::NoCapacity,
            },
            None => self.fresh_relay(v6),
        };
        let additional = req.additional_ipv6.then(|| self.fresh_relay(true));
        let reservation = (req.even_port == Some(true)).then(|| {
            let mut token = [0x70; 8];
            token[..2].copy_from_slice(&relay.port().to_be_bytes());
            self.reservations
                .insert(token, SocketAddr::new(relay.ip(), relay.port() + 1));
            token
        });
        AllocateOutcome::Bound {
            relay,
            additional,
            reservation,
        }
    }

    pub fn finish(&mut self, req: &AllocateRequest, outcome: AllocateOutcome) -> Reply {
        let mut reply = vec![0u8; 1500];
        let n = self.server.finish_allocate(self.now, req.token, outcome, &mut reply);
        assert!(n > 0, "finish_allocate wrote no reply");
        self.collect_events();
        Reply(reply[..n].to_vec())
    }

    /// Sends a request without credentials and learns the nonce from the 401.
    #[track_caller]
    pub fn challenge(&mut self, c: &mut Client) -> Reply {
        let req = c.unauthenticated(Method::ALLOCATE, &udp_transport);
        let reply = self.send(c.five, &req).reply();
        reply.assert_error(Method::ALLOCATE, 401);
        c.learn(&reply);
        reply
    }

    /// Sends an authenticated request; on 438 learns the new nonce and
    /// tries once more, as a client does.
    pub fn transact(&mut self, c: &mut Client, method: Method, attrs: Attrs<'_>) -> Out {
        if c.nonce.is_none() {
            self.challenge(c);
        }
        let req = c.request(method, attrs);
        match self.send(c.five, &req) {
            Out::Reply(r) if r.code() == Some(438) => {
                c.learn(&r);
                let req = c.request(method, attrs);
                self.send(c.five, &req)
            }
            other => other,
        }
    }

    /// Runs an Allocate with `attrs` to completion, binding as [`Self::bind`] does.
    #[track_caller]
    pub fn allocate_with(&mut self, c: &mut Client, attrs: Attrs<'_>) -> Reply {
        match self.transact(c, Method::ALLOCATE, attrs) {
            Out::Allocate(req) => {
                let outcome = self.bind(&req);
                self.finish(&req, outcome)
            }
            Out::Reply(r) => r,
            other => panic!("unexpected answer to Allocate: {other:?}"),
        }
    }

    /// A UDP-relay allocation that must succeed; returns its relayed address.
    #[track_caller]
    pub fn allocate(&mut self, c: &mut Client) -> SocketAddr {
        let reply = self.allocate_with(c, &udp_transport);
        reply.assert_success(Method::ALLOCATE);
        reply
            .verify(&c.key())
            .expect("Allocate success is signed with the client's key");
        reply.relayed()[0]
    }

    #[track_caller]
    pub fn create_permission(&mut self, c: &mut Client, peers: &[SocketAddr]) -> Reply {
        let peers = peers.to_vec();
        self.transact(c, Method::CREATE_PERMISSION, &move |w| {
            peers.iter().try_for_each(|p| w.add(&XorPeerAddress(*p)))
        })
        .reply()
    }

    #[track_caller]
    pub fn channel_bind(&mut self, c: &mut Client, number: u16, peer: SocketAddr) -> Reply {
        self.transact(c, Method::CHANNEL_BIND, &move |w| {
            w.add(&natter_stun::ChannelNumber(number))?;
            w.add(&XorPeerAddress(peer))
        })
        .reply()
    }

    #[track_caller]
    pub fn refresh(&mut self, c: &mut Client, lifetime: Option<u32>) -> Reply {
        self.transact(c, Method::REFRESH, &move |w| match lifetime {
            Some(l) => w.add(&Lifetime(l)),
            None => Ok(()),
        })
        .reply()
    }

    pub fn send_indication(&mut self, c: &mut Client, peer: SocketAddr, data: &[u8]) -> Out {
        let packet = c.send_indication(peer, data);
        self.send(c.five, &packet)
    }

    pub fn channel_data(&mut self, c: &Client, number: u16, data: &[u8]) -> Out {
        let packet = c.channel_data(number, data);
        self.send(c.five, &packet)
    }

    /// A datagram from `peer` arriving at `relay`, placed with the headroom
    /// and tailroom the core asks for. Returns the client and the bytes to
    /// send it.
    pub fn peer_data(&mut self, relay: SocketAddr, peer: SocketAddr, data: &[u8]) -> Option<(FiveTuple, Vec<u8>)> {
        let mut buf = vec![0xEE; PEER_HEADROOM + data.len() + PEER_TAILROOM];
        buf[PEER_HEADROOM..PEER_HEADROOM + data.len()].copy_from_slice(data);
        let (client, range) = self.server.handle_peer(self.now, relay, peer, &mut buf, data.len())?;
        Some((client, buf[range].to_vec()))
    }
}

/// Decodes a ChannelData message the server framed for a client.
#[track_caller]
pub fn channel_data(bytes: &[u8]) -> (u16, Vec<u8>) {
    let cd = ChannelData::decode(bytes).expect("ChannelData decodes");
    (cd.number, cd.data.to_vec())
}

/// Decodes a Data indication the server framed for a client: its peer and data.
#[track_caller]
pub fn data_indication(bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    let msg = Message::decode(bytes).expect("Data indication decodes as a STUN message");
    assert_eq!(msg.message_type(), MessageType::new(Method::DATA, Class::Indication));
    let peer = msg.require::<XorPeerAddress>().expect("XOR-PEER-ADDRESS").0;
    let data = msg.require::<natter_stun::Data>().expect("DATA").0.to_vec();
    (peer, data)
}

/// The transaction id of a message the test built.
#[track_caller]
pub fn tid_of(packet: &[u8]) -> TransactionId {
    Message::decode(packet).expect("test message decodes").transaction_id()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
