//! Acceptance scenarios: two ICE agents on the in-memory network of
//! `tests/support/net.rs`, behind NATs of every RFC 4787 mapping type,
//! with a STUN server and natter's TURN server on the internet.
//! Each asserts the selected candidate types and a bound on the virtual
//! time to connected.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, Received, Role, TransportPolicy};
use natter_ice::candidate::{CandidateKind, Protocol};
use natter_ice::turn_client::TurnServer;
use natter_ice::{Credentials, Transmit, Transport};
use support::net::{is_stun, Endpoint, Filtering, HostId, Mapping, Nat, Network, ZoneId, INTERNET};
use support::stun_server::StunServer;
use support::turn_server::TurnServer as TurnEndpoint;

const STUN: &str = "198.18.0.10:3478";
const TURN: &str = "198.18.0.20:3478";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An [`Agent`] as a network endpoint; it keeps the agent's events with
/// their times for the test to signal and inspect.
struct AgentHost {
    agent: Agent,
    events: Vec<(Duration, Event)>,
    received: Vec<Vec<u8>>,
    start: Instant,
    /// Application data the test sends; the network drains it after its
    /// next step.
    outbox: std::collections::VecDeque<Transmit>,
}

impl AgentHost {
    fn new(config: AgentConfig, start: Instant) -> Self {
        AgentHost {
            agent: Agent::new(config, start),
            events: Vec::new(),
            received: Vec::new(),
            start,
            outbox: Default::default(),
        }
    }

    fn collect(&mut self, now: Instant) {
        while let Some(e) = self.agent.poll_event() {
            self.events.push((now - self.start, e));
        }
    }

    fn connected_at(&self) -> Option<Duration> {
        self.events
            .iter()
            .find(|(_, e)| matches!(e, Event::ConnectionState(ConnectionState::Connected)))
            .map(|(t, _)| *t)
    }
}

impl Endpoint for AgentHost {
    fn handle_receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        if let Received::Data { data, .. } = self
            .agent
            .handle_receive(now, Transport::Udp, source, destination, data)
        {
            self.received.push(data.into_owned());
        }
        self.collect(now);
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.outbox.pop_front().or_else(|| self.agent.poll_transmit(now))
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        self.agent.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.agent.handle_timeout(now);
        self.collect(now);
    }
}

/// Where an agent sits.
#[allow(dead_code)]
enum Place {
    Internet,
    Lan(Nat),
    /// The LAN of the other agent (host-to-host).
    SameLanAsA,
}

struct World {
    net: Network,
    a: HostId<AgentHost>,
    b: HostId<AgentHost>,
    /// How many events of a and b were signaled already.
    signaled: (usize, usize),
}

fn config(role: Role, seed: u64, ufrag: &str) -> AgentConfig {
    AgentConfig {
        role,
        seed: Some(seed),
        credentials: Some(Credentials {
            ufrag: ufrag.into(),
            pwd: format!("{ufrag}-secret-password-123"),
        }),
        stun_servers: vec![sa(STUN)],
        turn_servers: vec![TurnServer {
            address: sa(TURN),
            transport: Transport::Udp,
            username: format!("user-{ufrag}"),
            password: "turn-password".into(),
        }],
        ..Default::default()
    }
}

impl World {
    fn new(seed: u64, pa: Place, pb: Place, ca: AgentConfig, cb: AgentConfig) -> Self {
        let mut net = Network::new(seed);
        let start = net.start();
        net.add_host("stun", INTERNET, &[sa(STUN).ip()], StunServer::new());
        let turn = TurnEndpoint::new(
            start,
            sa(TURN),
            &[("user-aaaa", "turn-password"), ("user-bbbb", "turn-password")],
        );
        net.add_host("turn", INTERNET, &[sa(TURN).ip()], turn);
        let mut lan_a: Option<ZoneId> = None;
        let mut place = |net: &mut Network, name: &str, p: Place, n: u8, cfg: AgentConfig| {
            let (zone, ip): (ZoneId, IpAddr) = match p {
                Place::Internet => (INTERNET, format!("198.18.0.{}", 100 + n).parse().unwrap()),
                Place::Lan(nat) => {
                    let z = net.add_lan(&format!("lan-{name}"), INTERNET, nat);
                    if n == 1 {
                        lan_a = Some(z);
                    }
                    (z, format!("192.168.{n}.10").parse().unwrap())
                }
                Place::SameLanAsA => (lan_a.expect("a is on a LAN"), "192.168.1.20".parse().unwrap()),
            };
            let host = net.add_host(name, zone, &[ip], AgentHost::new(cfg, start));
            (host, SocketAddr::new(ip, 5000 + u16::from(n)))
        };
        let (a, a_addr) = place(&mut net, "a", pa, 1, ca);
        let (b, b_addr) = place(&mut net, "b", pb, 2, cb);
        let mut w = World {
            net,
            a,
            b,
            signaled: (0, 0),
        };
        let now = w.net.now();
        let (ca, cb) = (
            w.net.endpoint(a).agent.local_credentials().clone(),
            w.net.endpoint(b).agent.local_credentials().clone(),
        );
        w.net.endpoint_mut(a).agent.set_remote_credentials(cb, now);
        w.net.endpoint_mut(b).agent.set_remote_credentials(ca, now);
        for (h, addr) in [(a, a_addr), (b, b_addr)] {
            let e = w.net.endpoint_mut(h);
            e.agent.add_host(addr, Protocol::Udp).unwrap();
            e.agent.end_of_local_addresses();
            e.collect(now);
        }
        w
    }

    fn nat(ip: &str, mapping: Mapping) -> Place {
        Place::Lan(Nat::new(
            ip.parse().unwrap(),
            mapping,
            Filtering::AddressAndPortDependent,
        ))
    }

    /// EIM with address-dependent filtering: lets in any port of an IP it
    /// has sent to, so a peer behind a non-EIM NAT can reach it.
    fn restricted_cone(ip: &str) -> Place {
        Place::Lan(Nat::restricted_cone(ip.parse().unwrap()))
    }

    /// Passes new candidates and end-of-candidates between the agents
    /// (signaling without delay).
    fn signal(&mut self) {
        let now = self.net.now();
        for from_a in [true, false] {
            let (from, to) = if from_a { (self.a, self.b) } else { (self.b, self.a) };
            let seen = if from_a { self.signaled.0 } else { self.signaled.1 };
            let new: Vec<Event> = self.net.endpoint(from).events[seen..]
                .iter()
                .map(|(_, e)| e.clone())
                .collect();
            if from_a {
                self.signaled.0 += new.len();
            } else {
                self.signaled.1 += new.len();
            }
            let to = self.net.endpoint_mut(to);
            for e in new {
                match e {
                    Event::LocalCandidate(c) => to.agent.add_remote_candidate(c, now).unwrap(),
                    Event::GatheringComplete => to.agent.end_of_remote_candidates(now),
                    _ => {}
                }
            }
            to.collect(now);
        }
    }

    /// Runs for `d` of virtual time, signaling as events appear.
    fn run_for(&mut self, d: Duration) {
        let deadline = self.net.now() + d;
        loop {
            self.signal();
            let (a, b, seen) = (self.a, self.b, self.signaled);
            let pending = move |n: &Network| n.endpoint(a).events.len() > seen.0 || n.endpoint(b).events.len() > seen.1;
            if !self.net.run_until(deadline, pending) {
                self.signal();
                return;
            }
        }
    }

    /// Runs until both agents are connected; returns the later time.
    fn connect(&mut self, limit: Duration) -> Duration {
        let step = Duration::from_millis(10);
        while self.net.elapsed() < limit {
            self.run_for(step);
            if let (Some(ta), Some(tb)) = (self.agent(true).connected_at(), self.agent(false).connected_at()) {
                return ta.max(tb);
            }
        }
        panic!(
            "not connected after {limit:?}: a {:?} b {:?}\na: {:?}\nb: {:?}",
            self.agent(true).agent.state(),
            self.agent(false).agent.state(),
            self.agent(true).events,
            self.agent(false).events
        );
    }

    fn agent(&self, a: bool) -> &AgentHost {
        self.net.endpoint(if a { self.a } else { self.b })
    }

    fn agent_mut(&mut self, a: bool) -> &mut AgentHost {
        self.net.endpoint_mut(if a { self.a } else { self.b })
    }

    fn kinds(&self, a: bool) -> (CandidateKind, CandidateKind) {
        let (l, r) = self.agent(a).agent.selected_pair().expect("selected pair");
        (l.kind, r.kind)
    }

    /// Sends a datagram each way over the selected pair and checks it
    /// arrives.
    fn exchange(&mut self, tag: &str) {
        for from_a in [true, false] {
            let now = self.net.now();
            let msg = format!("{tag} {from_a}").into_bytes();
            let mut data = Vec::new();
            let route = self
                .agent_mut(from_a)
                .agent
                .send(&msg, &mut data, now)
                .expect("can send");
            let t = Transmit::new(route, data);
            let from = if from_a { self.a } else { self.b };
            self.net.endpoint_mut(from).outbox.push_back(t);
            self.run_for(Duration::from_millis(300));
            assert!(
                self.agent(!from_a).received.contains(&msg),
                "{tag}: datagram from {} lost",
                if from_a { "a" } else { "b" }
            );
        }
    }
}

fn report(name: &str, w: &World, t: Duration) {
    println!(
        "{name}: connected after {t:?}; a {:?} b {:?}; a stats {:?}",
        w.kinds(true),
        w.kinds(false),
        w.agent(true).agent.stats()
    );
}

use CandidateKind::{Host, PeerReflexive as Prflx, Relayed as Relay, ServerReflexive as Srflx};

#[test]
fn host_to_host_on_one_lan() {
    let nat = World::nat("198.18.1.1", Mapping::EndpointIndependent);
    let mut w = World::new(
        1,
        nat,
        Place::SameLanAsA,
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(5));
    report("host", &w, t);
    assert_eq!(w.kinds(true), (Host, Host));
    assert_eq!(w.kinds(false), (Host, Host));
    assert!(t <= Duration::from_millis(100), "{t:?}");
    w.exchange("lan");
}

#[test]
fn server_reflexive_through_endpoint_independent_nats() {
    let mut w = World::new(
        2,
        World::nat("198.18.1.1", Mapping::EndpointIndependent),
        World::nat("198.18.2.1", Mapping::EndpointIndependent),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(10));
    report("EIM", &w, t);
    assert_eq!(w.kinds(true), (Srflx, Srflx));
    assert_eq!(w.kinds(false), (Srflx, Srflx));
    assert!(t <= Duration::from_millis(800), "{t:?}");
    w.exchange("eim");
}

#[test]
fn address_dependent_nat_against_endpoint_independent() {
    let mut w = World::new(
        3,
        World::nat("198.18.1.1", Mapping::AddressDependent),
        World::restricted_cone("198.18.2.1"),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(10));
    report("ADM-EIM", &w, t);
    // a's mapping towards b differs from the STUN server's view: b
    // learns it as peer-reflexive.
    assert_eq!(w.kinds(true).1, Srflx);
    assert!(matches!(w.kinds(true).0, Prflx | Srflx));
    assert_eq!(w.kinds(false), (Srflx, Prflx));
    assert!(t <= Duration::from_millis(1500), "{t:?}");
    w.exchange("adm");
}

#[test]
fn symmetric_nat_against_endpoint_independent() {
    let mut w = World::new(
        4,
        World::nat("198.18.1.1", Mapping::AddressAndPortDependent),
        World::restricted_cone("198.18.2.1"),
        config(Role::Controlled, 1, "aaaa"),
        config(Role::Controlling, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(10));
    report("APDM-EIM", &w, t);
    assert_eq!(w.kinds(true), (Prflx, Srflx));
    assert_eq!(w.kinds(false), (Srflx, Prflx));
    assert!(t <= Duration::from_millis(1500), "{t:?}");
    w.exchange("symmetric");
}

#[test]
fn symmetric_against_symmetric_ends_on_relay() {
    let mut w = World::new(
        5,
        World::nat("198.18.1.1", Mapping::AddressAndPortDependent),
        World::nat("198.18.2.1", Mapping::AddressAndPortDependent),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(15));
    report("APDM-APDM", &w, t);
    let (ka, kb) = (w.kinds(true), w.kinds(false));
    assert!(ka.0 == Relay || ka.1 == Relay, "{ka:?}");
    assert!(kb.0 == Relay || kb.1 == Relay, "{kb:?}");
    assert!(t <= Duration::from_secs(3), "{t:?}");
    w.exchange("relay");
    w.run_for(Duration::from_secs(60));
    assert_eq!(w.agent(true).agent.state(), ConnectionState::Completed);
    w.exchange("relay later");
}

#[test]
fn relay_only_policy() {
    let relay_only = |role, seed, ufrag| AgentConfig {
        transport_policy: TransportPolicy::Relay,
        ..config(role, seed, ufrag)
    };
    let mut w = World::new(
        6,
        World::nat("198.18.1.1", Mapping::EndpointIndependent),
        World::nat("198.18.2.1", Mapping::EndpointIndependent),
        relay_only(Role::Controlling, 1, "aaaa"),
        relay_only(Role::Controlled, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(10));
    report("relay-only", &w, t);
    assert_eq!(w.kinds(true), (Relay, Relay));
    assert_eq!(w.kinds(false), (Relay, Relay));
    // Only relayed candidates were signaled.
    for a in [true, false] {
        assert!(w.agent(a).events.iter().all(|(_, e)| match e {
            Event::LocalCandidate(c) => c.kind == Relay,
            _ => true,
        }));
    }
    // Each CreatePermission goes out with the remote candidate that
    // needs it, not with some later input.
    assert!(t <= Duration::from_millis(400), "{t:?}");
    w.exchange("relay-only");
}

#[test]
fn role_conflict_across_nats() {
    let mut w = World::new(
        7,
        World::nat("198.18.1.1", Mapping::EndpointIndependent),
        World::nat("198.18.2.1", Mapping::EndpointIndependent),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlling, 2, "bbbb"),
    );
    let t = w.connect(Duration::from_secs(10));
    report("conflict", &w, t);
    let roles = [w.agent(true).agent.role(), w.agent(false).agent.role()];
    assert!(roles.contains(&Role::Controlling) && roles.contains(&Role::Controlled));
    assert_eq!(w.kinds(true), (Srflx, Srflx));
    assert!(t <= Duration::from_secs(1), "{t:?}");
    w.exchange("conflict");
}

#[test]
fn thirty_percent_stun_loss() {
    for seed in 10..15 {
        let mut w = World::new(
            seed,
            World::nat("198.18.1.1", Mapping::EndpointIndependent),
            World::nat("198.18.2.1", Mapping::EndpointIndependent),
            config(Role::Controlling, seed, "aaaa"),
            config(Role::Controlled, seed + 100, "bbbb"),
        );
        w.net.set_loss(0.3, |t| is_stun(&t.data));
        let t = w.connect(Duration::from_secs(20));
        report(&format!("30% loss seed {seed}"), &w, t);
        if std::env::var("DEBUG_EVENTS").is_ok() {
            for (t, e) in &w.agent(true).events {
                println!("a {t:?} {e:?}");
            }
            for (t, e) in &w.agent(false).events {
                println!("b {t:?} {e:?}");
            }
            for (l, r, s) in w.agent(true).agent.pairs() {
                println!(
                    "pair {:?} {:?} -> {:?} {:?} {s:?}",
                    l.kind, l.address, r.kind, r.address
                );
            }
        }
        assert!(t <= Duration::from_secs(8), "{t:?}");
        w.net.clear_loss();
        w.exchange("lossy");
    }
}

#[test]
fn ice_restart_across_nats() {
    let mut w = World::new(
        8,
        World::nat("198.18.1.1", Mapping::EndpointIndependent),
        World::nat("198.18.2.1", Mapping::EndpointIndependent),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    w.connect(Duration::from_secs(10));
    w.run_for(Duration::from_secs(1));
    let now = w.net.now();
    let (na, nb) = (
        Credentials {
            ufrag: "aaa2".into(),
            pwd: "aaa2-secret-password-123".into(),
        },
        Credentials {
            ufrag: "bbb2".into(),
            pwd: "bbb2-secret-password-123".into(),
        },
    );
    w.agent_mut(true).agent.restart(na.clone(), now);
    w.agent_mut(false).agent.restart(nb.clone(), now);
    w.agent_mut(true).agent.set_remote_credentials(nb, now);
    w.agent_mut(false).agent.set_remote_credentials(na, now);
    let before = w.agent(true).events.len();
    w.exchange("during restart");
    w.run_for(Duration::from_secs(3));
    let selected_again = w.agent(true).events[before..]
        .iter()
        .find(|(_, e)| matches!(e, Event::SelectedPair { .. }));
    let (t, _) = selected_again.expect("a new pair is selected");
    println!("restart: new pair after {:?}", *t - (now - w.net.start()));
    w.exchange("after restart");
    assert!(!w
        .agent(true)
        .events
        .iter()
        .any(|(_, e)| *e == Event::ConnectionState(ConnectionState::Failed)));
}

#[test]
fn consent_loss_disconnects_then_fails() {
    let mut w = World::new(
        9,
        World::nat("198.18.1.1", Mapping::EndpointIndependent),
        World::nat("198.18.2.1", Mapping::EndpointIndependent),
        config(Role::Controlling, 1, "aaaa"),
        config(Role::Controlled, 2, "bbbb"),
    );
    w.connect(Duration::from_secs(10));
    w.run_for(Duration::from_secs(2));
    let cut = w.net.elapsed();
    w.net.set_blackhole(|_| true);
    w.run_for(Duration::from_secs(40));
    for a in [true, false] {
        let at = |s| {
            w.agent(a)
                .events
                .iter()
                .find(|(t, e)| *t >= cut && *e == Event::ConnectionState(s))
                .map(|(t, _)| *t - cut)
                .unwrap_or_else(|| panic!("no {s:?}"))
        };
        let (d, f) = (at(ConnectionState::Disconnected), at(ConnectionState::Failed));
        println!("consent: disconnected after {d:?}, failed after {f:?}");
        assert!(d <= Duration::from_secs(9), "{d:?}");
        // 30 s after the last response, which came up to 6 s before the cut.
        assert!(f >= Duration::from_secs(23) && f <= Duration::from_secs(31), "{f:?}");
    }
    let now = w.net.now();
    assert!(w.agent_mut(true).agent.send(b"x", &mut Vec::new(), now).is_none());
}
