//! Two SCTP endpoints on an in-memory wire under a virtual clock, for
//! natter's own association: each side is anything that takes packets
//! and timeouts and gives packets ([`Side`]), so natter's association
//! can face another natter association or sctp-proto (through
//! [`SctpTransport`]). Every packet sent is kept in `wire`, with whether
//! the wire's `drop` filter lost it.

// Each test file uses a different part of this module.
#![allow(dead_code)]

pub mod path;

use std::time::{Duration, Instant};

use natter_sctp::dcep::{DataChannelOpen, DcepMessage};
use natter_sctp::sctp::association::{Association, Config, Event};
use natter_sctp::sctp::chunk::{Chunk, DATA, SACK};
use natter_sctp::sctp::{ChecksumMode, CommonHeader, Packet, PacketWriter};
use natter_sctp::{ChannelType, Priority, SctpTransport};

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

/// sctp-proto behind natter's data channel transport, with its events.
pub struct Proto {
    pub t: SctpTransport,
    pub events: Vec<natter_sctp::Event>,
}

impl Side for Proto {
    fn transmit(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let out = std::iter::from_fn(|| self.t.poll_transmit(now).map(|d| d.to_vec())).collect();
        self.events.extend(std::iter::from_fn(|| self.t.poll_event()));
        out
    }
    fn receive(&mut self, now: Instant, packet: &[u8]) {
        self.t.handle_receive(now, packet);
        self.events.extend(std::iter::from_fn(|| self.t.poll_event()));
    }
    fn timeout(&self) -> Option<Instant> {
        self.t.poll_timeout()
    }
    fn fire(&mut self, now: Instant) {
        self.t.handle_timeout(now);
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

/// natter (a, connecting) and sctp-proto as DTLS server (b), established.
pub fn natter_and_proto() -> Wire<Natter, Proto> {
    let now = Instant::now();
    let theirs =
        SctpTransport::new(natter_sctp::SctpConfig::new(natter_sctp::DtlsRole::Server)).expect("a valid config");
    let mut w = Wire::new(
        now,
        Natter::new(Config::default(), 9, now),
        Proto {
            t: theirs,
            events: Vec::new(),
        },
    );
    w.a.assoc.connect(w.now);
    w.run_for(Duration::from_secs(2));
    assert_eq!(w.a.assoc.state(), natter_sctp::sctp::association::State::Established);
    assert_eq!(w.b.t.state(), natter_sctp::TransportState::Established);
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
