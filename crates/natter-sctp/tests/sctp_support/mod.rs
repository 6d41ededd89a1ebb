//! Two SCTP endpoints on an in-memory wire under a virtual clock, for
//! natter's own association: each side is anything that takes packets
//! and timeouts and gives packets ([`Side`]), so natter's association
//! can face another natter association ([`Natter`]) or sctp-proto 0.10.8
//! ([`Proto`], an independent implementation). Every packet sent is kept
//! in `wire`, with whether the wire's `drop` filter lost it.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod path;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use natter_sctp::dcep::{DataChannelOpen, DcepMessage};
use natter_sctp::sctp::association::{Association, Config, Event};
use natter_sctp::sctp::chunk::{Chunk, DATA, SACK};
use natter_sctp::sctp::{ChecksumMode, CommonHeader, Packet, PacketWriter};
use natter_sctp::{ChannelType, Priority};
use sctp_proto::{
    AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, PayloadProtocolIdentifier, ServerConfig,
    StreamEvent, TransportConfig,
};

/// One end of the wire.
pub trait Side {
    fn transmit(&mut self, now: Instant) -> Vec<Vec<u8>>;
    fn receive(&mut self, now: Instant, packet: &[u8]);
    fn timeout(&self) -> Option<Instant>;
    fn fire(&mut self, now: Instant);
}

/// natter's association, with the events it raised.
pub struct Natter {
    pub assoc: Association,
    pub events: Vec<(Instant, Event)>,
}

impl Natter {
    pub fn new(config: Config, seed: u8, now: Instant) -> Self {
        Natter {
            assoc: Association::new(config, &[seed; 32], now),
            events: Vec::new(),
        }
    }

    fn drain_events(&mut self, now: Instant) {
        while let Some(e) = self.assoc.poll_event() {
            self.events.push((now, e));
        }
    }
}

impl Side for Natter {
    fn transmit(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.drain_events(now);
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some(n) = self
            .assoc
            .poll_transmit(now, &mut buf)
            .expect("1500 bytes hold any packet")
        {
            out.push(buf[..n].to_vec());
        }
        out
    }
    fn receive(&mut self, now: Instant, packet: &[u8]) {
        let _ = self.assoc.handle_packet(now, packet);
        self.drain_events(now);
    }
    fn timeout(&self) -> Option<Instant> {
        self.assoc.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.assoc.handle_timeout(now);
        self.drain_events(now);
    }
}

/// sctp-proto 0.10.8, the independent stack: its sans-IO association
/// behind its endpoint. Above SCTP the harness does the little that
/// webrtc-data does there: it answers a DATA_CHANNEL_OPEN with a
/// DATA_CHANNEL_ACK (RFC 8832 §5.2) and, when the peer resets a stream
/// (RFC 8831 §6.7), resets its own side of it.
pub struct Proto {
    endpoint: Endpoint,
    /// Its association, once it connected or accepted natter's INIT.
    assoc: Option<(AssociationHandle, sctp_proto::Association)>,
    remote: SocketAddr,
    /// Messages read: (stream, PPID, bytes).
    pub received: Vec<(u16, u32, Vec<u8>)>,
    /// Association and stream events, in order.
    pub events: Vec<sctp_proto::Event>,
}

/// The largest message either way: sctp-proto takes 64 KiB by default
/// (and aborts the association on a longer one); browsers advertise
/// 256 KiB in SDP (`a=max-message-size`, RFC 8841 §6), and the
/// embedding application passes that on as this.
pub const PROTO_MAX_MESSAGE: u32 = 256 * 1024;

fn proto_transport() -> Arc<TransportConfig> {
    Arc::new(
        TransportConfig::default()
            .with_max_send_message_size(PROTO_MAX_MESSAGE)
            .with_max_receive_message_size(PROTO_MAX_MESSAGE),
    )
}

impl Proto {
    fn with(server: bool) -> Self {
        let server_config = server.then(|| {
            let mut c = ServerConfig::new();
            c.transport = proto_transport();
            Arc::new(c)
        });
        Proto {
            endpoint: Endpoint::new(Arc::new(EndpointConfig::default()), server_config),
            assoc: None,
            remote: "127.0.0.1:5000".parse().expect("an address"),
            received: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Waits for natter's INIT.
    pub fn server() -> Self {
        Self::with(true)
    }

    /// Sends an INIT at once. Its endpoint takes no INIT: sctp-proto
    /// 0.10.8 has no INIT collision handling across its endpoint (a
    /// client endpoint panics on a peer's INIT, endpoint/mod.rs:423), so
    /// simultaneous open is tested natter against natter.
    pub fn client() -> Self {
        let mut p = Self::with(false);
        let remote = p.remote;
        let mut config = ClientConfig::new();
        config.transport = proto_transport();
        p.assoc = Some(p.endpoint.connect(config, remote).expect("a valid config"));
        p
    }

    /// Set up from the two INITs alone (SNAP, draft-hancke-tsvwg-snap-01).
    pub fn snap(local: Bytes, remote: Bytes) -> Self {
        let mut p = Self::with(false);
        let to = p.remote;
        let config = ClientConfig::new().with_snap(local, remote);
        p.assoc = Some(p.endpoint.connect(config, to).expect("SNAP accepted"));
        p.poll();
        p
    }

    /// Its association (panics if natter's INIT never came: a test bug).
    pub fn assoc(&mut self) -> &mut sctp_proto::Association {
        &mut self.assoc.as_mut().expect("sctp-proto has an association").1
    }

    /// Connected, and not lost or closed since.
    pub fn is_established(&self) -> bool {
        let connected = self.events.iter().any(|e| matches!(e, sctp_proto::Event::Connected));
        connected
            && self
                .assoc
                .as_ref()
                .is_some_and(|(_, a)| !a.is_closed() && !a.is_closing())
    }

    pub fn is_closed(&self) -> bool {
        self.assoc.as_ref().is_some_and(|(_, a)| a.is_closed())
    }

    /// Writes one message on `stream` (opened first if it is new).
    pub fn send(&mut self, stream: u16, ppid: u32, data: &[u8]) {
        let ppi = PayloadProtocolIdentifier::from(ppid);
        let assoc = self.assoc();
        let mut s = match assoc.stream(stream) {
            Ok(s) => s,
            Err(_) => assoc.open_stream(stream, ppi).expect("a new stream"),
        };
        s.write_sctp(&Bytes::copy_from_slice(data), ppi).expect("written");
    }

    fn poll(&mut self) {
        let Some((_, assoc)) = self.assoc.as_mut() else { return };
        // The endpoint keeps routing to its one association until the
        // test drops it, so its Drained event is not handed back.
        while assoc.poll_endpoint_event().is_some() {}
        while assoc.accept_stream().is_some() {}
        while let Some(e) = assoc.poll() {
            if let sctp_proto::Event::Stream(StreamEvent::Finished { id }) = e {
                // The peer reset its outgoing stream: close ours too.
                if let Ok(mut s) = assoc.stream(id) {
                    let _ = s.close();
                }
            }
            self.events.push(e);
        }
        for id in assoc.stream_ids() {
            let Ok(mut s) = assoc.stream(id) else { continue };
            while let Ok(Some(chunks)) = s.read_sctp() {
                let mut buf = vec![0; chunks.len()];
                let n = chunks.read(&mut buf).expect("sized to fit");
                buf.truncate(n);
                let ppid = chunks.ppi as u32;
                if ppid == 50 && buf.first() == Some(&0x03) {
                    s.write_sctp(&Bytes::from_static(&[0x02]), PayloadProtocolIdentifier::Dcep)
                        .expect("the ACK is written");
                }
                self.received.push((id, ppid, buf));
            }
        }
    }
}

impl Side for Proto {
    fn transmit(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut raw = |t: sctp_proto::Transmit| {
            if let sctp_proto::Payload::RawEncode(parts) = t.payload {
                out.extend(parts.into_iter().map(|b| b.to_vec()));
            }
        };
        while let Some(t) = self.endpoint.poll_transmit() {
            raw(t);
        }
        if let Some((_, assoc)) = self.assoc.as_mut() {
            while let Some(t) = assoc.poll_transmit(now) {
                raw(t);
            }
        }
        self.poll();
        out
    }
    fn receive(&mut self, now: Instant, packet: &[u8]) {
        let event = self
            .endpoint
            .handle(now, self.remote, None, None, Bytes::copy_from_slice(packet));
        match event {
            Some((handle, DatagramEvent::NewAssociation(a))) if self.assoc.is_none() => {
                self.assoc = Some((handle, a));
            }
            Some((handle, DatagramEvent::AssociationEvent(e))) => {
                if let Some((ours, assoc)) = self.assoc.as_mut() {
                    assert_eq!(handle, *ours, "sctp-proto has one association");
                    assoc.handle_event(e);
                }
            }
            _ => {}
        }
        self.poll();
    }
    fn timeout(&self) -> Option<Instant> {
        self.assoc.as_ref().and_then(|(_, a)| a.poll_timeout())
    }
    fn fire(&mut self, now: Instant) {
        if let Some((_, assoc)) = self.assoc.as_mut() {
            assoc.handle_timeout(now);
        }
        self.poll();
    }
}

/// A packet that crossed (or was lost on) the wire.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    /// Sent by `a`.
    pub from_a: bool,
    pub bytes: Vec<u8>,
    pub lost: bool,
}

impl Seen {
    /// The types of the packet's chunks.
    pub fn chunk_types(&self) -> Vec<u8> {
        chunk_types(&self.bytes)
    }
}

pub fn chunk_types(bytes: &[u8]) -> Vec<u8> {
    match Packet::parse(bytes, ChecksumMode::ZeroAcceptable) {
        Ok(p) => p.chunks().flatten().map(|c| c.ty).collect(),
        Err(_) => Vec::new(),
    }
}

/// Decides whether a packet is lost: (sent by a, its chunk types, how
/// many packets with those chunk types that side sent before).
pub type DropFilter = Box<dyn FnMut(bool, &[u8], usize) -> bool>;

/// Loses each packet with DATA or SACK with probability 1/`one_in`, from
/// a seeded generator.
pub fn random_loss(seed: u64, one_in: u64) -> DropFilter {
    let mut x = seed | 1;
    Box::new(move |_, types, _| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (types.contains(&DATA) || types.contains(&SACK)) && x % one_in == 0
    })
}

pub struct Wire<A, B> {
    pub now: Instant,
    pub a: A,
    pub b: B,
    pub latency: Duration,
    pub drop: DropFilter,
    /// Extra delay per packet (jitter, so packets overtake each other)
    /// and whether a packet also arrives a second time.
    pub jitter: Box<dyn FnMut() -> Duration>,
    pub duplicate: Box<dyn FnMut() -> bool>,
    /// Packets larger than this are lost, as on a path whose MTU it is
    /// (with DF set: silently).
    pub mtu: usize,
    pub wire: Vec<Seen>,
    in_flight: Vec<(Instant, bool, Vec<u8>)>,
}

impl<A: Side, B: Side> Wire<A, B> {
    pub fn new(now: Instant, a: A, b: B) -> Self {
        Wire {
            now,
            a,
            b,
            latency: Duration::from_millis(10),
            drop: Box::new(|_, _, _| false),
            jitter: Box::new(|| Duration::ZERO),
            duplicate: Box::new(|| false),
            mtu: usize::MAX,
            wire: Vec::new(),
            in_flight: Vec::new(),
        }
    }

    fn collect(&mut self) {
        for from_a in [true, false] {
            let out = if from_a {
                self.a.transmit(self.now)
            } else {
                self.b.transmit(self.now)
            };
            for p in out {
                let types = chunk_types(&p);
                let before = self
                    .wire
                    .iter()
                    .filter(|s| s.from_a == from_a && s.chunk_types() == types)
                    .count();
                let lost = (self.drop)(from_a, &types, before) || p.len() > self.mtu;
                self.wire.push(Seen {
                    at: self.now,
                    from_a,
                    bytes: p.clone(),
                    lost,
                });
                if !lost {
                    if (self.duplicate)() {
                        let at = self.now + self.latency + (self.jitter)();
                        self.in_flight.push((at, from_a, p.clone()));
                    }
                    let at = self.now + self.latency + (self.jitter)();
                    self.in_flight.push((at, from_a, p));
                }
            }
        }
    }

    /// Runs until nothing is due before `self.now + span`.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        for _ in 0..100_000 {
            self.collect();
            let next = self
                .in_flight
                .iter()
                .map(|(at, ..)| *at)
                .chain(self.a.timeout())
                .chain(self.b.timeout())
                .min();
            let Some(next) = next.filter(|t| *t <= end) else { break };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|(at, ..)| *at <= now);
            self.in_flight = later;
            for (_, from_a, p) in due {
                if from_a {
                    self.b.receive(now, &p);
                } else {
                    self.a.receive(now, &p);
                }
            }
            if self.a.timeout().is_some_and(|t| t <= now) {
                self.a.fire(now);
            }
            if self.b.timeout().is_some_and(|t| t <= now) {
                self.b.fire(now);
            }
        }
        self.now = self.now.max(end);
    }

    /// Hands `packet` to `b` as if it came over the wire now.
    pub fn inject_to_b(&mut self, packet: &[u8]) {
        self.b.receive(self.now, packet);
    }

    /// When each packet with DATA from `a` (or b) went, counted from
    /// `start`, lost ones included.
    pub fn data_sent_at(&self, from_a: bool, start: Instant) -> Vec<Duration> {
        self.wire
            .iter()
            .filter(|s| s.from_a == from_a && s.chunk_types().contains(&DATA))
            .map(|s| s.at - start)
            .collect()
    }

    /// The chunk types of the packets that crossed, in order, per sender.
    pub fn sent_by(&self, from_a: bool) -> Vec<Vec<u8>> {
        self.wire
            .iter()
            .filter(|s| s.from_a == from_a)
            .map(Seen::chunk_types)
            .collect()
    }
}

/// The first chunk of a packet, parsed, for assertions.
pub fn with_first_chunk<R>(bytes: &[u8], f: impl FnOnce(Chunk<'_>) -> R) -> R {
    let p = Packet::parse(bytes, ChecksumMode::ZeroAcceptable).expect("a valid packet");
    let c = p.chunks().next().expect("a chunk").expect("well formed");
    f(c.parse().expect("parses"))
}

/// A DATA_CHANNEL_OPEN (RFC 8832 §5.1) for a reliable channel.
pub fn dcep_open(label: &str) -> Vec<u8> {
    DcepMessage::Open(DataChannelOpen {
        channel_type: ChannelType::Reliable,
        priority: Priority::default(),
        reliability_parameter: 0,
        label,
        protocol: "",
    })
    .to_vec()
    .expect("a short label")
}

/// Impairs the wire both ways from one seeded xorshift: loss and
/// duplication per mille, jitter up to `jitter_ms` (so packets overtake
/// each other).
pub fn impair<A: Side, B: Side>(
    w: &mut Wire<A, B>,
    seed: u64,
    loss_per_mille: u64,
    jitter_ms: u64,
    dup_per_mille: u64,
) {
    fn draw(r: &std::cell::Cell<u64>) -> u64 {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        x
    }
    let r = std::rc::Rc::new(std::cell::Cell::new(seed | 1));
    let (l, j, d) = (r.clone(), r.clone(), r);
    w.drop = Box::new(move |_, _, _| draw(&l) % 1000 < loss_per_mille);
    w.jitter = Box::new(move || Duration::from_micros(draw(&j) % (jitter_ms * 1000 + 1)));
    w.duplicate = Box::new(move || draw(&d) % 1000 < dup_per_mille);
}

/// natter (a, connecting) and sctp-proto (b, answering), established.
pub fn natter_and_proto() -> Wire<Natter, Proto> {
    natter_and_proto_with(Config::default())
}

/// [`natter_and_proto`] with natter's association configured.
pub fn natter_and_proto_with(config: Config) -> Wire<Natter, Proto> {
    let now = Instant::now();
    let mut w = Wire::new(now, Natter::new(config, 9, now), Proto::server());
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.a.assoc.state(), natter_sctp::sctp::association::State::Established);
    assert!(w.b.is_established(), "sctp-proto: {:?}", w.b.events);
    w
}

/// Two natter associations with default configs, established (a
/// connected).
pub fn natter_pair() -> Wire<Natter, Natter> {
    let now = Instant::now();
    let mut w = Wire::new(
        now,
        Natter::new(Config::default(), 1, now),
        Natter::new(Config::default(), 2, now),
    );
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.a.assoc.state(), natter_sctp::sctp::association::State::Established);
    assert_eq!(w.b.assoc.state(), natter_sctp::sctp::association::State::Established);
    w
}

/// A packet of `chunks` between the default ports, with a CRC32c.
pub fn packet(tag: u32, chunks: &[Chunk<'_>]) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let header = CommonHeader {
        source_port: 5000,
        destination_port: 5000,
        verification_tag: tag,
    };
    let mut w = PacketWriter::new(&mut buf, header).expect("room for a header");
    for c in chunks {
        w.push(c).expect("the chunks fit");
    }
    let n = w.finish(ChecksumMode::Crc32c);
    buf[..n].to_vec()
}

/// Every chunk of a packet, as the test wants it (`None`s dropped).
pub fn chunks_of<R>(bytes: &[u8], mut f: impl FnMut(Chunk<'_>) -> Option<R>) -> Vec<R> {
    let Ok(p) = Packet::parse(bytes, ChecksumMode::ZeroAcceptable) else {
        return Vec::new();
    };
    p.chunks()
        .flatten()
        .filter_map(|c| c.parse().ok().and_then(&mut f))
        .collect()
}
