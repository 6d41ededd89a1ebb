//! A deterministic in-memory UDP network with NATs and a virtual clock,
//! for driving sans-IO endpoints (ICE agents, STUN and TURN servers).
//!
//! The network is made of zones: [`INTERNET`] and LANs added with
//! [`Network::add_lan`], each behind a NAT box whose public IP lives in
//! its parent zone (so a LAN may sit behind another LAN: carrier-grade
//! NAT). Every zone has its own address table, so two LANs may reuse the
//! same private addresses. Hosts own one or more IPs and receive every
//! datagram sent to any port of them; each host is an [`Endpoint`].
//!
//! A datagram crosses one zone per hop: from its sender to a host, or to
//! a NAT box, which translates it at the time it arrives there and sends
//! it on into the next zone. Each crossing takes the zone's [`Link`]
//! latency plus seeded jitter. NAT boxes follow RFC 4787: mapping and
//! filtering are endpoint-independent, address-dependent or
//! address-and-port-dependent ([`Nat`]), mappings time out unless
//! outbound traffic refreshes them (§4.3), hairpinning is optional (§6).
//!
//! Methods, in quinn-proto's taxonomy:
//! - getters: [`Network::now`], [`Network::endpoint`], [`Network::counters`],
//!   [`Network::trace`], [`Network::nat_mappings`], ...;
//! - configuration: [`Network::add_lan`], [`Network::add_host`],
//!   [`Network::set_link`], [`Network::set_loss`], [`Network::set_blackhole`];
//! - driving: [`Network::step`] processes the earliest event (a datagram
//!   reaching a NAT box or a host, or an endpoint's timer), then drains
//!   every endpoint's `poll_transmit`; [`Network::run_until`] and
//!   [`Network::run_for`] step until a predicate holds or a virtual
//!   deadline passes.
//!
//! Determinism: the clock starts at one `Instant::now()` taken in
//! [`Network::new`] and only ever advances by durations; events at the
//! same instant run in the order they were scheduled (datagrams before
//! timers, timers in host order); all randomness (loss, jitter, NAT ports)
//! comes from generators seeded from the network's seed, one stream per
//! purpose so that adding loss does not change the ports NATs pick.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_ice::{Transmit, Transport};

/// A sans-IO endpoint the network drives (ICE agents, STUN and TURN servers).
pub trait Endpoint {
    fn handle_receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]);
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;
    fn poll_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
}

/// RFC 8489 §5: the first byte of a STUN message is 0..=3 and bytes 4..8
/// hold the magic cookie. A loss filter for "only STUN".
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20 && data[0] <= 3 && data[4..8] == 0x2112_A442u32.to_be_bytes()
}

/// A zone: [`INTERNET`] or a LAN from [`Network::add_lan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneId(usize);

/// The public internet, the root zone.
pub const INTERNET: ZoneId = ZoneId(0);

/// A host whose endpoint is an `E`; [`Network::endpoint`] gives it back.
pub struct HostId<E> {
    index: usize,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E> HostId<E> {
    /// The untyped key, as [`Record`] names hosts.
    pub fn key(self) -> HostKey {
        HostKey(self.index)
    }
}

impl<E> Clone for HostId<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for HostId<E> {}

impl<E> fmt::Debug for HostId<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostId({})", self.index)
    }
}

impl<E> PartialEq for HostId<E> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

impl<E> Eq for HostId<E> {}

impl<E> From<HostId<E>> for HostKey {
    fn from(h: HostId<E>) -> Self {
        h.key()
    }
}

/// A host whatever its endpoint type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostKey(usize);

/// RFC 4787 §4.1: what a NAT reuses a mapping for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// One external port per internal address and port, whatever the
    /// destination (what RFC 4787 REQ-1 asks for).
    EndpointIndependent,
    /// A new external port per destination IP.
    AddressDependent,
    /// A new external port per destination IP and port ("symmetric").
    AddressAndPortDependent,
}

/// RFC 4787 §5: which inbound datagrams a mapping lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtering {
    /// Any source.
    EndpointIndependent,
    /// Sources at an IP the mapping has sent to.
    AddressDependent,
    /// Sources at an IP and port the mapping has sent to.
    AddressAndPortDependent,
}

/// How a NAT box behaves.
#[derive(Clone, Debug)]
pub struct Nat {
    /// Its address in the parent zone.
    pub public_ip: IpAddr,
    pub mapping: Mapping,
    pub filtering: Filtering,
    /// RFC 4787 §4.3: a mapping (and what it has sent to, for filtering)
    /// lives this long after the last outbound datagram. REQ-5 asks for
    /// at least 2 minutes; many home routers use 30 s.
    pub mapping_timeout: Duration,
    /// RFC 4787 §4.3 REQ-6: inbound datagrams refresh a mapping too.
    pub inbound_refresh: bool,
    /// RFC 4787 §6: a datagram to the NAT's own public address comes back
    /// in, translated.
    pub hairpinning: bool,
    /// RFC 4787 §4.2.1: keep the internal port when it is free. Off, the
    /// NAT picks a pseudo-random port from 1024..=65535.
    pub port_preservation: bool,
}

/// The mapping timeout of [`Nat::new`].
pub const DEFAULT_MAPPING_TIMEOUT: Duration = Duration::from_secs(30);

impl Nat {
    /// A NAT with a 30 s mapping timeout, outbound refresh only, no
    /// hairpinning and random ports.
    pub fn new(public_ip: IpAddr, mapping: Mapping, filtering: Filtering) -> Self {
        Nat {
            public_ip,
            mapping,
            filtering,
            mapping_timeout: DEFAULT_MAPPING_TIMEOUT,
            inbound_refresh: false,
            hairpinning: false,
            port_preservation: false,
        }
    }

    /// RFC 3489's "full cone": EIM, EIF.
    pub fn full_cone(public_ip: IpAddr) -> Self {
        Nat::new(public_ip, Mapping::EndpointIndependent, Filtering::EndpointIndependent)
    }

    /// RFC 3489's "restricted cone": EIM, ADF.
    pub fn restricted_cone(public_ip: IpAddr) -> Self {
        Nat::new(public_ip, Mapping::EndpointIndependent, Filtering::AddressDependent)
    }

    /// RFC 3489's "port restricted cone": EIM, APDF (Linux MASQUERADE).
    pub fn port_restricted_cone(public_ip: IpAddr) -> Self {
        Nat::new(
            public_ip,
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
        )
    }

    /// RFC 3489's "symmetric": APDM, APDF (MASQUERADE --random-fully).
    pub fn symmetric(public_ip: IpAddr) -> Self {
        Nat::new(
            public_ip,
            Mapping::AddressAndPortDependent,
            Filtering::AddressAndPortDependent,
        )
    }

    pub fn with_mapping_timeout(mut self, timeout: Duration) -> Self {
        self.mapping_timeout = timeout;
        self
    }

    pub fn with_hairpinning(mut self, on: bool) -> Self {
        self.hairpinning = on;
        self
    }

    pub fn with_port_preservation(mut self, on: bool) -> Self {
        self.port_preservation = on;
        self
    }

    pub fn with_inbound_refresh(mut self, on: bool) -> Self {
        self.inbound_refresh = on;
        self
    }
}

/// What crossing a zone costs a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// One-way latency across the zone.
    pub latency: Duration,
    /// Up to this much more, drawn uniformly per crossing (so datagrams
    /// may be reordered).
    pub jitter: Duration,
}

impl Link {
    pub const fn latency(latency: Duration) -> Self {
        Link {
            latency,
            jitter: Duration::ZERO,
        }
    }
}

/// The link of [`INTERNET`] until [`Network::set_link`] changes it.
pub const DEFAULT_INTERNET_LINK: Link = Link::latency(Duration::from_millis(10));
/// The link of a new LAN.
pub const DEFAULT_LAN_LINK: Link = Link::latency(Duration::from_millis(1));

/// Why a datagram did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// A TCP or TLS transmit: the network carries UDP only.
    NotUdp,
    /// The sending host does not own the source IP.
    BadSource,
    /// Larger than [`Network::set_max_payload`].
    TooBig,
    /// Matched [`Network::set_blackhole`].
    Blackholed,
    /// Random loss ([`Network::set_loss`]).
    Lost,
    /// No host or NAT owns the destination IP.
    UnknownAddress,
    /// To a NAT's public port with no live mapping.
    NoMapping,
    /// The NAT's filtering refused it.
    Filtered,
    /// To the NAT's own public address from inside, without hairpinning.
    HairpinDisabled,
}

/// Totals since the network started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Transmits taken from endpoints.
    pub sent: u64,
    /// Datagrams handed to an endpoint's `handle_receive`.
    pub delivered: u64,
    pub dropped: BTreeMap<DropReason, u64>,
    /// `handle_timeout` calls.
    pub timeouts: u64,
}

impl Counters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped.get(&reason).copied().unwrap_or(0)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What became of one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Handed to `to`, with the addresses it saw (after any NAT).
    Delivered {
        at: Instant,
        to: HostKey,
        source: SocketAddr,
        destination: SocketAddr,
    },
    Dropped {
        at: Instant,
        reason: DropReason,
    },
}

/// One datagram as it was sent, and its fate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Transmits are numbered from 0 in the order they were taken.
    pub id: u64,
    pub sent_at: Instant,
    pub from: HostKey,
    pub transport: Transport,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
    pub fate: Fate,
}

impl Record {
    pub fn delivered(&self) -> bool {
        matches!(self.fate, Fate::Delivered { .. })
    }

    pub fn dropped(&self) -> Option<DropReason> {
        match self.fate {
            Fate::Dropped { reason, .. } => Some(reason),
            Fate::Delivered { .. } => None,
        }
    }
}

/// A live NAT mapping, from [`Network::nat_mappings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingInfo {
    pub internal: SocketAddr,
    /// The NAT's public IP and the mapped port.
    pub external: SocketAddr,
    /// The destination (IP with port 0 for address-dependent mapping) the
    /// mapping is for; `None` for endpoint-independent mapping.
    pub remote: Option<SocketAddr>,
    pub expires: Instant,
}

/// A decision on a datagram as sent ([`Network::set_loss`], [`Network::set_blackhole`]).
pub type PacketFilter = Box<dyn FnMut(&Transmit) -> bool>;

/// A stream of pseudo-random numbers (SplitMix64). Written out rather than
/// taken from `rand` so a seed reproduces the same run across `rand`
/// upgrades.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD134_2543_DE82_EF95));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n] (bias below 2^-40 for the ranges used here).
    fn up_to(&mut self, n: u64) -> u64 {
        match n.checked_add(1) {
            Some(m) => self.next_u64() % m,
            None => self.next_u64(),
        }
    }
}

/// Random streams, so each purpose draws independently of the others.
const STREAM_LOSS: u64 = 1;
const STREAM_JITTER: u64 = 2;
const STREAM_NAT: u64 = 0x100;

/// Steps at one instant before the network assumes an endpoint is stuck
/// (a timer that stays due after `handle_timeout`, or a ping-pong with
/// zero latency).
const MAX_STEPS_PER_INSTANT: u32 = 100_000;
/// Transmits one drain may take from one endpoint.
const MAX_TRANSMITS_PER_DRAIN: u32 = 100_000;

/// An endpoint that can be given back as its concrete type.
trait AnyEndpoint: Endpoint {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<E: Endpoint + 'static> AnyEndpoint for E {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

struct Host {
    name: String,
    interfaces: Vec<(ZoneId, IpAddr)>,
    endpoint: Box<dyn AnyEndpoint>,
}

/// Where a datagram is headed within a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Host(usize),
    /// The inside of this zone's NAT box, on the way out.
    NatInside(usize),
    /// The public side of this zone's NAT box, on the way in.
    NatOutside(usize),
}

struct MappingState {
    internal: SocketAddr,
    remote: Option<SocketAddr>,
    last_outbound: Instant,
    /// Destinations this mapping sent to, and when last (for filtering).
    sent_to: BTreeMap<SocketAddr, Instant>,
}

struct NatBox {
    config: Nat,
    /// By external port.
    mappings: BTreeMap<u16, MappingState>,
    /// (internal, remote as the mapping behaviour keys it) -> external port.
    by_key: BTreeMap<(SocketAddr, Option<SocketAddr>), u16>,
    rng: Rng,
}

impl NatBox {
    fn alive(&self, m: &MappingState, now: Instant) -> bool {
        now < m.last_outbound + self.config.mapping_timeout
    }

    fn remove(&mut self, port: u16) {
        if let Some(m) = self.mappings.remove(&port) {
            self.by_key.remove(&(m.internal, m.remote));
        }
    }

    /// Translates the source of an outbound datagram, creating or
    /// refreshing its mapping.
    fn outbound(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr) -> SocketAddr {
        let remote = match self.config.mapping {
            Mapping::EndpointIndependent => None,
            Mapping::AddressDependent => Some(SocketAddr::new(destination.ip(), 0)),
            Mapping::AddressAndPortDependent => Some(destination),
        };
        let key = (source, remote);
        let existing = self.by_key.get(&key).copied();
        let port = match existing {
            Some(port) if self.mappings.get(&port).is_some_and(|m| self.alive(m, now)) => port,
            _ => {
                if let Some(port) = existing {
                    self.remove(port);
                }
                let port = self.pick_port(now, source.port());
                self.by_key.insert(key, port);
                self.mappings.insert(
                    port,
                    MappingState {
                        internal: source,
                        remote,
                        last_outbound: now,
                        sent_to: BTreeMap::new(),
                    },
                );
                port
            }
        };
        // The port was just found or inserted.
        let m = self.mappings.get_mut(&port).expect("mapping exists");
        m.last_outbound = now;
        m.sent_to.insert(destination, now);
        SocketAddr::new(self.config.public_ip, port)
    }

    /// A free external port: the internal one if preserving, else random.
    fn pick_port(&mut self, now: Instant, internal: u16) -> u16 {
        let free = |nat: &Self, p: u16| p != 0 && nat.mappings.get(&p).is_none_or(|m| !nat.alive(m, now));
        let mut port = internal;
        if !(self.config.port_preservation && free(self, port)) {
            loop {
                port = 1024 + self.rng.up_to(65535 - 1024) as u16;
                if free(self, port) {
                    break;
                }
            }
        }
        self.remove(port);
        port
    }

    /// Translates the destination of an inbound datagram, or says why not.
    fn inbound(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr) -> Result<SocketAddr, DropReason> {
        let port = destination.port();
        let Some(m) = self.mappings.get(&port) else {
            return Err(DropReason::NoMapping);
        };
        if !self.alive(m, now) {
            self.remove(port);
            return Err(DropReason::NoMapping);
        }
        let timeout = self.config.mapping_timeout;
        let fresh = |t: &Instant| now < *t + timeout;
        let admitted = match self.config.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => m.sent_to.iter().any(|(d, t)| d.ip() == source.ip() && fresh(t)),
            Filtering::AddressAndPortDependent => m.sent_to.get(&source).is_some_and(fresh),
        };
        if !admitted {
            return Err(DropReason::Filtered);
        }
        let refresh = self.config.inbound_refresh;
        // Looked up above.
        let m = self.mappings.get_mut(&port).expect("mapping exists");
        if refresh {
            m.last_outbound = now;
        }
        Ok(m.internal)
    }
}

struct Zone {
    name: String,
    parent: Option<usize>,
    nat: Option<NatBox>,
    link: Link,
    /// The hosts and child NATs reachable in this zone, by IP.
    table: BTreeMap<IpAddr, Node>,
}

/// A datagram on its way.
struct InFlight {
    id: u64,
    sent_at: Instant,
    from: usize,
    transport: Transport,
    sent_source: SocketAddr,
    sent_destination: SocketAddr,
    /// The addresses as they are now, after any translation.
    source: SocketAddr,
    destination: SocketAddr,
    data: Vec<u8>,
}

struct Hop {
    packet: InFlight,
    to: Node,
}

struct Loss {
    probability: f64,
    applies_to: PacketFilter,
}

/// What [`Network::step`] does next.
enum Next {
    Hop((Instant, u64)),
    Timer(Instant, usize),
}

/// The network, its hosts and the virtual clock. See the module docs.
pub struct Network {
    start: Instant,
    now: Instant,
    seed: u64,
    zones: Vec<Zone>,
    hosts: Vec<Host>,
    /// Hops by arrival time, then scheduling order.
    queue: BTreeMap<(Instant, u64), Hop>,
    next_seq: u64,
    next_id: u64,
    loss: Option<Loss>,
    loss_rng: Rng,
    jitter_rng: Rng,
    blackhole: Option<PacketFilter>,
    max_payload: Option<usize>,
    counters: Counters,
    tracing: bool,
    trace: Vec<Record>,
    steps_at_now: u32,
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("elapsed", &self.elapsed())
            .field("zones", &self.zones.iter().map(|z| &z.name).collect::<Vec<_>>())
            .field("hosts", &self.hosts.iter().map(|h| &h.name).collect::<Vec<_>>())
            .field("in_flight", &self.queue.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// An empty internet ([`DEFAULT_INTERNET_LINK`]); `seed` drives loss,
    /// jitter and NAT port choice.
    pub fn new(seed: u64) -> Self {
        let start = Instant::now();
        Network {
            start,
            now: start,
            seed,
            zones: vec![Zone {
                name: "internet".to_owned(),
                parent: None,
                nat: None,
                link: DEFAULT_INTERNET_LINK,
                table: BTreeMap::new(),
            }],
            hosts: Vec::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            next_id: 0,
            loss: None,
            loss_rng: Rng::new(seed, STREAM_LOSS),
            jitter_rng: Rng::new(seed, STREAM_JITTER),
            blackhole: None,
            max_payload: None,
            counters: Counters::default(),
            tracing: true,
            trace: Vec::new(),
            steps_at_now: 0,
        }
    }

    // --- getters ---------------------------------------------------------

    pub fn now(&self) -> Instant {
        self.now
    }

    /// The instant the clock started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    #[track_caller]
    pub fn endpoint<E: 'static>(&self, host: HostId<E>) -> &E {
        // A HostId<E> is only made by add_host with an E.
        self.hosts[host.index]
            .endpoint
            .as_any()
            .downcast_ref()
            .expect("HostId's type matches its endpoint")
    }

    /// The endpoint, to change it; what it queues is sent at the next step.
    #[track_caller]
    pub fn endpoint_mut<E: 'static>(&mut self, host: HostId<E>) -> &mut E {
        // As in endpoint().
        self.hosts[host.index]
            .endpoint
            .as_any_mut()
            .downcast_mut()
            .expect("HostId's type matches its endpoint")
    }

    pub fn host_name(&self, host: impl Into<HostKey>) -> &str {
        &self.hosts[host.into().0].name
    }

    /// The host's addresses and their zones.
    pub fn host_interfaces(&self, host: impl Into<HostKey>) -> &[(ZoneId, IpAddr)] {
        &self.hosts[host.into().0].interfaces
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Every datagram sent so far and its fate (once decided), in the
    /// order fates were decided. Empty if tracing is off.
    pub fn trace(&self) -> &[Record] {
        &self.trace
    }

    /// Datagrams still on their way.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    pub fn link(&self, zone: ZoneId) -> Link {
        self.zones[zone.0].link
    }

    /// The public IP of the NAT in front of `lan`.
    #[track_caller]
    pub fn nat_public_ip(&self, lan: ZoneId) -> IpAddr {
        self.nat(lan).config.public_ip
    }

    /// The live mappings of the NAT in front of `lan`, by external port.
    #[track_caller]
    pub fn nat_mappings(&self, lan: ZoneId) -> Vec<MappingInfo> {
        let nat = self.nat(lan);
        nat.mappings
            .iter()
            .filter(|(_, m)| nat.alive(m, self.now))
            .map(|(port, m)| MappingInfo {
                internal: m.internal,
                external: SocketAddr::new(nat.config.public_ip, *port),
                remote: m.remote,
                expires: m.last_outbound + nat.config.mapping_timeout,
            })
            .collect()
    }

    #[track_caller]
    fn nat(&self, lan: ZoneId) -> &NatBox {
        self.zones[lan.0]
            .nat
            .as_ref()
            .unwrap_or_else(|| panic!("zone {} has no NAT", self.zones[lan.0].name))
    }

    // --- configuration ---------------------------------------------------

    /// A LAN behind a NAT whose public IP is in `parent`, with
    /// [`DEFAULT_LAN_LINK`].
    #[track_caller]
    pub fn add_lan(&mut self, name: &str, parent: ZoneId, nat: Nat) -> ZoneId {
        let id = self.zones.len();
        let public_ip = nat.public_ip;
        self.claim(parent, public_ip, Node::NatOutside(id));
        self.zones.push(Zone {
            name: name.to_owned(),
            parent: Some(parent.0),
            nat: Some(NatBox {
                config: nat,
                mappings: BTreeMap::new(),
                by_key: BTreeMap::new(),
                rng: Rng::new(self.seed, STREAM_NAT + id as u64),
            }),
            link: DEFAULT_LAN_LINK,
            table: BTreeMap::new(),
        });
        ZoneId(id)
    }

    /// A host with `ips` in `zone`.
    #[track_caller]
    pub fn add_host<E: Endpoint + 'static>(
        &mut self,
        name: &str,
        zone: ZoneId,
        ips: &[IpAddr],
        endpoint: E,
    ) -> HostId<E> {
        let interfaces: Vec<_> = ips.iter().map(|ip| (zone, *ip)).collect();
        self.add_multihomed_host(name, &interfaces, endpoint)
    }

    /// A host with addresses in several zones; it sends into the zone of
    /// a transmit's source IP.
    #[track_caller]
    pub fn add_multihomed_host<E: Endpoint + 'static>(
        &mut self,
        name: &str,
        interfaces: &[(ZoneId, IpAddr)],
        endpoint: E,
    ) -> HostId<E> {
        assert!(!interfaces.is_empty(), "host {name} needs an address");
        let ips: BTreeSet<IpAddr> = interfaces.iter().map(|(_, ip)| *ip).collect();
        assert_eq!(ips.len(), interfaces.len(), "host {name} has one IP twice");
        let index = self.hosts.len();
        for (zone, ip) in interfaces {
            self.claim(*zone, *ip, Node::Host(index));
        }
        self.hosts.push(Host {
            name: name.to_owned(),
            interfaces: interfaces.to_vec(),
            endpoint: Box::new(endpoint),
        });
        HostId {
            index,
            _endpoint: PhantomData,
        }
    }

    #[track_caller]
    fn claim(&mut self, zone: ZoneId, ip: IpAddr, node: Node) {
        let z = &mut self.zones[zone.0];
        assert!(
            z.table.insert(ip, node).is_none(),
            "{ip} is already in use in zone {}",
            z.name
        );
    }

    pub fn set_link(&mut self, zone: ZoneId, link: Link) {
        self.zones[zone.0].link = link;
    }

    /// Drops each datagram for which `applies_to` holds with
    /// `probability`, drawn from the seeded loss stream (only for those
    /// datagrams, so the others do not shift the pattern).
    pub fn set_loss(&mut self, probability: f64, applies_to: impl FnMut(&Transmit) -> bool + 'static) {
        assert!((0.0..=1.0).contains(&probability), "loss probability {probability}");
        self.loss = Some(Loss {
            probability,
            applies_to: Box::new(applies_to),
        });
    }

    pub fn clear_loss(&mut self) {
        self.loss = None;
    }

    /// Drops every datagram for which `matches` holds (a cut cable, a
    /// firewall rule); `clear_blackhole` restores the path.
    pub fn set_blackhole(&mut self, matches: impl FnMut(&Transmit) -> bool + 'static) {
        self.blackhole = Some(Box::new(matches));
    }

    pub fn clear_blackhole(&mut self) {
        self.blackhole = None;
    }

    /// Drops datagrams whose payload is longer (the path MTU less the IP
    /// and UDP headers); `None` for no limit, the default.
    pub fn set_max_payload(&mut self, max: Option<usize>) {
        self.max_payload = max;
    }

    /// Keep a [`Record`] of every datagram (on by default).
    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
    }

    // --- driving ---------------------------------------------------------

    /// Processes the earliest event: a datagram reaching a NAT box or a
    /// host, or an endpoint's timer. Returns false if there is none.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_event() else {
            return false;
        };
        let at = match next {
            Next::Hop((at, _)) | Next::Timer(at, _) => at,
        };
        self.advance_to(at);
        match next {
            Next::Hop(key) => {
                // next_event() just found this key.
                let hop = self.queue.remove(&key).expect("queued hop");
                self.arrive(hop);
            }
            Next::Timer(_, host) => {
                self.counters.timeouts += 1;
                self.hosts[host].endpoint.handle_timeout(self.now);
            }
        }
        self.drain();
        true
    }

    /// Steps until `done` holds (true) or the next event is after
    /// `deadline` (false, with the clock moved to `deadline`).
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            match self.next_event() {
                Some(Next::Hop((at, _)) | Next::Timer(at, _)) if at <= deadline => {
                    self.step();
                }
                _ => {
                    self.advance_to(deadline);
                    return done(self);
                }
            }
        }
    }

    /// Steps through every event up to `now + duration`; the clock ends there.
    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        self.run_until(deadline, |_| false);
    }

    /// Takes what endpoints have queued since the last step (after
    /// [`Network::endpoint_mut`]); [`Network::step`] does this too.
    pub fn drain(&mut self) {
        for h in 0..self.hosts.len() {
            let mut taken = 0;
            while let Some(t) = self.hosts[h].endpoint.poll_transmit(self.now) {
                taken += 1;
                assert!(
                    taken <= MAX_TRANSMITS_PER_DRAIN,
                    "host {} keeps returning transmits at {:?}",
                    self.hosts[h].name,
                    self.elapsed()
                );
                self.send(h, t);
            }
        }
    }

    fn advance_to(&mut self, at: Instant) {
        if at > self.now {
            self.now = at;
            self.steps_at_now = 0;
        } else {
            self.steps_at_now += 1;
            assert!(
                self.steps_at_now < MAX_STEPS_PER_INSTANT,
                "no progress after {MAX_STEPS_PER_INSTANT} events at {:?}: an endpoint's timer stays due \
                 or datagrams loop with zero latency",
                self.elapsed()
            );
        }
    }

    /// The earliest hop or timer; hops first at the same instant, then
    /// timers in host order. Past timers count as due now.
    fn next_event(&mut self) -> Option<Next> {
        self.drain();
        let hop = self.queue.keys().next().copied();
        let mut timer: Option<(Instant, usize)> = None;
        for (h, host) in self.hosts.iter_mut().enumerate() {
            if let Some(t) = host.endpoint.poll_timeout() {
                let t = t.max(self.now);
                if timer.is_none_or(|(best, _)| t < best) {
                    timer = Some((t, h));
                }
            }
        }
        match (hop, timer) {
            (Some(key), Some((t, _))) if key.0 <= t => Some(Next::Hop(key)),
            (Some(key), None) => Some(Next::Hop(key)),
            (_, Some((t, h))) => Some(Next::Timer(t, h)),
            (None, None) => None,
        }
    }

    /// Takes a transmit from host `from` at `now`.
    fn send(&mut self, from: usize, t: Transmit) {
        self.counters.sent += 1;
        let zone = self.hosts[from]
            .interfaces
            .iter()
            .find(|(_, ip)| *ip == t.source.ip())
            .map(|(zone, _)| zone.0);
        let verdict = if t.transport != Transport::Udp {
            Err(DropReason::NotUdp)
        } else if zone.is_none() {
            Err(DropReason::BadSource)
        } else if self.max_payload.is_some_and(|max| t.data.len() > max) {
            Err(DropReason::TooBig)
        } else if self.blackhole.as_mut().is_some_and(|f| f(&t)) {
            Err(DropReason::Blackholed)
        } else if self.lose(&t) {
            Err(DropReason::Lost)
        } else {
            Ok(())
        };
        let packet = InFlight {
            id: self.next_id,
            sent_at: self.now,
            from,
            transport: t.transport,
            sent_source: t.source,
            sent_destination: t.destination,
            source: t.source,
            destination: t.destination,
            data: t.data,
        };
        self.next_id += 1;
        match (verdict, zone) {
            (Ok(()), Some(zone)) => self.forward(zone, packet),
            (Err(reason), _) => self.drop_packet(packet, reason),
            (Ok(()), None) => unreachable!("a transmit without a zone is refused above"),
        }
    }

    fn lose(&mut self, t: &Transmit) -> bool {
        let Some(loss) = &mut self.loss else {
            return false;
        };
        loss.probability > 0.0 && (loss.applies_to)(t) && self.loss_rng.unit() < loss.probability
    }

    /// Sends `packet`, now in `zone`, across it towards its destination.
    fn forward(&mut self, zone: usize, packet: InFlight) {
        let z = &self.zones[zone];
        let to = match z.table.get(&packet.destination.ip()) {
            Some(node) => *node,
            None if z.nat.is_some() => Node::NatInside(zone),
            None => return self.drop_packet(packet, DropReason::UnknownAddress),
        };
        let link = z.link;
        let jitter = match u64::try_from(link.jitter.as_nanos()) {
            Ok(0) => Duration::ZERO,
            Ok(max) => Duration::from_nanos(self.jitter_rng.up_to(max)),
            Err(_) => link.jitter,
        };
        let at = self.now + link.latency + jitter;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((at, seq), Hop { packet, to });
    }

    fn arrive(&mut self, hop: Hop) {
        let Hop { mut packet, to } = hop;
        let now = self.now;
        match to {
            Node::Host(h) => {
                self.counters.delivered += 1;
                self.hosts[h]
                    .endpoint
                    .handle_receive(now, packet.source, packet.destination, &packet.data);
                let fate = Fate::Delivered {
                    at: now,
                    to: HostKey(h),
                    source: packet.source,
                    destination: packet.destination,
                };
                self.record(packet, fate);
            }
            Node::NatInside(zone) => {
                // Only LANs route to NatInside.
                let nat = self.zones[zone].nat.as_mut().expect("a LAN has a NAT");
                packet.source = nat.outbound(now, packet.source, packet.destination);
                if packet.destination.ip() != nat.config.public_ip {
                    let parent = self.zones[zone].parent.expect("a LAN has a parent");
                    return self.forward(parent, packet);
                }
                // RFC 4787 §6: hairpinning, inside the box.
                if !nat.config.hairpinning {
                    return self.drop_packet(packet, DropReason::HairpinDisabled);
                }
                match nat.inbound(now, packet.source, packet.destination) {
                    Ok(internal) => {
                        packet.destination = internal;
                        self.forward(zone, packet);
                    }
                    Err(reason) => self.drop_packet(packet, reason),
                }
            }
            Node::NatOutside(zone) => {
                let nat = self.zones[zone].nat.as_mut().expect("a LAN has a NAT");
                match nat.inbound(now, packet.source, packet.destination) {
                    Ok(internal) => {
                        packet.destination = internal;
                        self.forward(zone, packet);
                    }
                    Err(reason) => self.drop_packet(packet, reason),
                }
            }
        }
    }

    fn drop_packet(&mut self, packet: InFlight, reason: DropReason) {
        *self.counters.dropped.entry(reason).or_default() += 1;
        let fate = Fate::Dropped { at: self.now, reason };
        self.record(packet, fate);
    }

    fn record(&mut self, packet: InFlight, fate: Fate) {
        if self.tracing {
            self.trace.push(Record {
                id: packet.id,
                sent_at: packet.sent_at,
                from: HostKey(packet.from),
                transport: packet.transport,
                source: packet.sent_source,
                destination: packet.sent_destination,
                data: packet.data,
                fate,
            });
        }
    }
}
