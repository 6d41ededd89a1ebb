//! Two ICE agents wired back to back in memory under a virtual clock:
//! host-to-host in both roles, lite, role conflicts, trickle, mDNS,
//! consent loss and recovery, ICE restart and hostile STUN.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use natter_ice::agent::{Agent, AgentConfig, ConnectionState, Event, Received, Role};
use natter_ice::candidate::{Candidate, CandidateAddress, CandidateKind, Protocol};
use natter_ice::{Credentials, Transmit, Transport};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn creds(ufrag: &str) -> Credentials {
    Credentials {
        ufrag: ufrag.into(),
        pwd: format!("{ufrag}-password-0123456789"),
    }
}

/// How signaling carries candidates from one side to the other.
#[derive(Clone, Copy, PartialEq)]
enum Signal {
    /// Immediately.
    Now,
    /// Held until the test releases them.
    Hold,
}

struct Side {
    agent: Agent,
    hosts: Vec<SocketAddr>,
    events: Vec<(Duration, Event)>,
    received: Vec<Vec<u8>>,
    signal: Signal,
    held: Vec<Candidate>,
    held_eoc: bool,
    connected_at: Option<Duration>,
}

/// The two-peer harness: a, b, a virtual clock, latency and a filter
/// that may drop packets.
struct Net {
    a: Side,
    b: Side,
    start: Instant,
    now: Instant,
    latency: Duration,
    in_flight: VecDeque<(Instant, Transmit)>,
    /// Returns false to drop a packet.
    filter: Box<dyn FnMut(&Transmit) -> bool>,
    delivered: Vec<Transmit>,
}

impl Net {
    fn new(mut ca: AgentConfig, mut cb: AgentConfig) -> Self {
        let start = Instant::now();
        ca.credentials.get_or_insert_with(|| creds("aaaa"));
        cb.credentials.get_or_insert_with(|| creds("bbbb"));
        ca.seed.get_or_insert(1);
        cb.seed.get_or_insert(2);
        let side = |cfg| Side {
            agent: Agent::new(cfg, start),
            hosts: Vec::new(),
            events: Vec::new(),
            received: Vec::new(),
            signal: Signal::Now,
            held: Vec::new(),
            held_eoc: false,
            connected_at: None,
        };
        Net {
            a: side(ca),
            b: side(cb),
            start,
            now: start,
            latency: Duration::from_millis(10),
            in_flight: VecDeque::new(),
            filter: Box::new(|_| true),
            delivered: Vec::new(),
        }
    }

    /// Both sides get one UDP host and each other's credentials.
    fn standard() -> Self {
        Self::with_roles(Role::Controlling, Role::Controlled)
    }

    fn with_roles(ra: Role, rb: Role) -> Self {
        let mut net = Net::new(
            AgentConfig {
                role: ra,
                ..Default::default()
            },
            AgentConfig {
                role: rb,
                ..Default::default()
            },
        );
        net.setup("10.0.0.1:5000", "10.0.0.2:6000");
        net
    }

    fn setup(&mut self, a_host: &str, b_host: &str) {
        let now = self.now;
        let ac = self.a.agent.local_credentials().clone();
        let bc = self.b.agent.local_credentials().clone();
        self.a.agent.set_remote_credentials(bc, now);
        self.b.agent.set_remote_credentials(ac, now);
        self.a.hosts.push(addr(a_host));
        self.b.hosts.push(addr(b_host));
        self.a.agent.add_host(addr(a_host), Protocol::Udp).unwrap();
        self.b.agent.add_host(addr(b_host), Protocol::Udp).unwrap();
        self.a.agent.end_of_local_addresses();
        self.b.agent.end_of_local_addresses();
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn side(&mut self, a: bool) -> (&mut Side, &mut Side) {
        if a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        }
    }

    /// Drains events (signaling them to the other side) and transmits.
    fn drain(&mut self) {
        let now = self.now;
        let elapsed = self.elapsed();
        let latency = self.latency;
        for a in [true, false] {
            let (me, other) = self.side(a);
            while let Some(ev) = me.agent.poll_event() {
                match &ev {
                    Event::LocalCandidate(c) => match me.signal {
                        Signal::Now => other.agent.add_remote_candidate(c.clone(), now).unwrap(),
                        Signal::Hold => me.held.push(c.clone()),
                    },
                    Event::GatheringComplete => match me.signal {
                        Signal::Now => other.agent.end_of_remote_candidates(now),
                        Signal::Hold => me.held_eoc = true,
                    },
                    Event::ConnectionState(ConnectionState::Connected | ConnectionState::Completed) => {
                        me.connected_at.get_or_insert(elapsed);
                    }
                    _ => {}
                }
                me.events.push((elapsed, ev));
            }
            let mut out = Vec::new();
            while let Some(t) = me.agent.poll_transmit(now) {
                out.push(t);
            }
            for t in out {
                if (self.filter)(&t) {
                    self.in_flight.push_back((now + latency, t));
                }
            }
        }
    }

    /// Releases held candidates of side a (or b).
    fn release(&mut self, a: bool) {
        let now = self.now;
        let (me, other) = self.side(a);
        me.signal = Signal::Now;
        for c in me.held.drain(..) {
            other.agent.add_remote_candidate(c, now).unwrap();
        }
        if std::mem::take(&mut me.held_eoc) {
            other.agent.end_of_remote_candidates(now);
        }
    }

    fn deliver(&mut self, t: Transmit) {
        let now = self.now;
        let to_a = self.a.hosts.contains(&t.destination);
        let side = if to_a { &mut self.a } else { &mut self.b };
        if !side.hosts.contains(&t.destination) {
            return;
        }
        if let Received::Data { data, .. } =
            side.agent
                .handle_receive(now, t.transport, t.source, t.destination, &t.data)
        {
            side.received.push(data.into_owned());
        }
        self.delivered.push(t);
    }

    /// Runs until `until` (virtual time since start).
    fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        for _ in 0..1_000_000 {
            self.drain();
            let mut next = end;
            for t in [self.a.agent.poll_timeout(), self.b.agent.poll_timeout()]
                .into_iter()
                .flatten()
            {
                next = next.min(t);
            }
            if let Some((t, _)) = self.in_flight.front() {
                next = next.min(*t);
            }
            self.now = self.now.max(next);
            while self.in_flight.front().is_some_and(|(t, _)| *t <= self.now) {
                let (_, t) = self.in_flight.pop_front().unwrap();
                self.deliver(t);
            }
            let now = self.now;
            for agent in [&mut self.a.agent, &mut self.b.agent] {
                if agent.poll_timeout().is_some_and(|t| t <= now) {
                    agent.handle_timeout(now);
                }
            }
            self.drain();
            if self.now >= end && self.in_flight.front().is_none_or(|(t, _)| *t > end) {
                return;
            }
        }
        panic!("the harness did not settle");
    }

    /// Runs until both sides are connected (or `limit` passes).
    fn connect(&mut self, limit: Duration) -> Duration {
        let step = Duration::from_millis(5);
        while self.elapsed() < limit {
            let next = self.elapsed() + step;
            self.run_until(next);
            if self.a.connected_at.is_some() && self.b.connected_at.is_some() {
                return self.elapsed();
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

    fn states(side: &Side) -> Vec<ConnectionState> {
        side.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::ConnectionState(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Sends data both ways and checks it arrives.
    fn exchange(&mut self, tag: &str) {
        let now = self.now;
        let msg_a = format!("a->b {tag}").into_bytes();
        let msg_b = format!("b->a {tag}").into_bytes();
        let (mut a_data, mut b_data) = (Vec::new(), Vec::new());
        let ta = Transmit::new(self.a.agent.send(&msg_a, &mut a_data, now).expect("a can send"), a_data);
        let tb = Transmit::new(self.b.agent.send(&msg_b, &mut b_data, now).expect("b can send"), b_data);
        self.in_flight.push_back((now + self.latency, ta));
        self.in_flight.push_back((now + self.latency, tb));
        let until = self.elapsed() + self.latency * 2;
        self.run_until(until);
        assert!(self.b.received.contains(&msg_a), "b did not receive {tag}");
        assert!(self.a.received.contains(&msg_b), "a did not receive {tag}");
    }
}

fn selected_kinds(agent: &Agent) -> (CandidateKind, CandidateKind) {
    let (l, r) = agent.selected_pair().expect("a selected pair");
    (l.kind, r.kind)
}

#[test]
fn host_to_host_controlling_offerer() {
    let mut net = Net::standard();
    let t = net.connect(Duration::from_secs(2));
    println!("connected after {t:?}");
    assert!(t <= Duration::from_millis(100), "took {t:?}");
    assert_eq!(selected_kinds(&net.a.agent), (CandidateKind::Host, CandidateKind::Host));
    assert_eq!(selected_kinds(&net.b.agent), (CandidateKind::Host, CandidateKind::Host));
    net.exchange("hello");
    net.run_until(Duration::from_secs(1));
    for side in [&net.a, &net.b] {
        assert_eq!(
            Net::states(side),
            [
                ConnectionState::Checking,
                ConnectionState::Connected,
                ConnectionState::Completed
            ]
        );
        assert_eq!(side.agent.stats().malformed, 0);
    }
    assert!(net.a.agent.stats().selected_rtt.is_some());
}

#[test]
fn host_to_host_controlled_offerer() {
    let mut net = Net::with_roles(Role::Controlled, Role::Controlling);
    net.connect(Duration::from_secs(2));
    assert_eq!(selected_kinds(&net.a.agent), (CandidateKind::Host, CandidateKind::Host));
    net.exchange("x");
    assert_eq!(net.a.agent.role(), Role::Controlled);
    assert_eq!(net.b.agent.role(), Role::Controlling);
}

#[test]
fn checks_carry_the_rfc_8445_attributes() {
    use natter_stun::*;
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    let key_b = IntegrityKey::short_term(&creds("bbbb").pwd).unwrap();
    let mut saw_use_candidate = false;
    for t in net.delivered.iter().filter(|t| t.source == addr("10.0.0.1:5000")) {
        let msg = Message::decode(&t.data).unwrap();
        if msg.class() != Class::Request {
            continue;
        }
        assert_eq!(msg.require::<Username>().unwrap().0, "bbbb:aaaa");
        msg.verify_integrity(&key_b).unwrap();
        assert!(msg.has_fingerprint());
        assert!(msg.get::<Priority>().unwrap().is_some());
        assert!(msg.get::<IceControlling>().unwrap().is_some());
        saw_use_candidate |= msg.has(attribute::USE_CANDIDATE);
    }
    assert!(saw_use_candidate);
}

#[test]
fn full_controlling_with_lite_controlled() {
    let mut net = Net::new(
        AgentConfig::default(),
        AgentConfig {
            lite: true,
            role: Role::Controlling, // ignored: lite agents are controlled
            ..Default::default()
        },
    );
    net.setup("10.0.0.1:5000", "10.0.0.2:6000");
    net.connect(Duration::from_secs(2));
    assert_eq!(net.b.agent.role(), Role::Controlled);
    // The lite agent never sent a request.
    assert!(net
        .delivered
        .iter()
        .filter(|t| t.source == addr("10.0.0.2:6000"))
        .all(|t| natter_stun::Message::decode(&t.data).map_or(true, |m| m.class() != natter_stun::Class::Request)));
    net.exchange("lite");
    // Keepalives flow from the lite side and consent from the full side.
    net.run_until(Duration::from_secs(40));
    assert_eq!(net.a.agent.state(), ConnectionState::Completed);
    assert_eq!(net.b.agent.state(), ConnectionState::Completed);
    net.exchange("later");
}

/// Issue 14: a lite agent (the SFU's side of a WHIP, WHEP or web-client
/// connection) whose full peer goes away without a word fails once the
/// peer's consent checks have stopped for the consent timeout.
#[test]
fn lite_agent_fails_when_its_full_peer_goes_silent() {
    for timeout in [Duration::from_secs(30), Duration::from_secs(8)] {
        let mut net = Net::new(
            AgentConfig::default(),
            AgentConfig {
                lite: true,
                consent_timeout: timeout,
                ..Default::default()
            },
        );
        net.setup("10.0.0.1:5000", "10.0.0.2:6000");
        net.connect(Duration::from_secs(2));
        // The full side's consent checks keep the lite side up, well past
        // the timeout.
        net.run_until(timeout * 2);
        assert_eq!(net.b.agent.state(), ConnectionState::Completed, "timeout {timeout:?}");
        net.exchange("alive");
        // a vanishes: nothing it sends arrives any more.
        net.filter = Box::new(|t| t.source != addr("10.0.0.1:5000"));
        let cut = net.elapsed();
        net.run_until(cut + timeout + Duration::from_secs(10));
        let failed = (net.b.events.iter())
            .find(|(_, e)| *e == Event::ConnectionState(ConnectionState::Failed))
            .map(|(t, _)| *t - cut)
            .expect("the lite agent fails");
        println!("timeout {timeout:?}: the lite agent failed {failed:?} after its peer went silent");
        // The last check arrived at most 6 s before the cut (RFC 7675
        // §5.1: every 5 s ± 20%), so expiry comes within the timeout.
        assert!(
            failed > timeout - Duration::from_secs(6) && failed <= timeout,
            "{failed:?}"
        );
        let states = Net::states(&net.b);
        assert!(
            states.ends_with(&[ConnectionState::Completed, ConnectionState::Failed])
                && !states.contains(&ConnectionState::Disconnected),
            "a lite agent goes from completed to failed: {states:?}"
        );
        assert!(
            net.b.agent.send(b"x", &mut Vec::new(), net.now).is_none(),
            "the lite agent stops sending"
        );
        assert_eq!(net.b.agent.poll_timeout(), None, "nothing left to wake up for");
    }
}

#[test]
fn role_conflict_both_controlling() {
    let mut net = Net::with_roles(Role::Controlling, Role::Controlling);
    let t = net.connect(Duration::from_secs(3));
    println!("connected after {t:?}");
    let roles = [net.a.agent.role(), net.b.agent.role()];
    assert!(
        roles.contains(&Role::Controlling) && roles.contains(&Role::Controlled),
        "{roles:?}"
    );
    let changed = |s: &Side| s.events.iter().any(|(_, e)| matches!(e, Event::RoleChanged(_)));
    assert!(changed(&net.a) ^ changed(&net.b));
    net.exchange("conflict");
}

#[test]
fn role_conflict_both_controlled() {
    let mut net = Net::with_roles(Role::Controlled, Role::Controlled);
    net.connect(Duration::from_secs(3));
    let roles = [net.a.agent.role(), net.b.agent.role()];
    assert!(
        roles.contains(&Role::Controlling) && roles.contains(&Role::Controlled),
        "{roles:?}"
    );
    net.exchange("conflict");
}

#[test]
fn trickle_candidates_added_late() {
    let mut net = Net::new(
        AgentConfig::default(),
        AgentConfig {
            role: Role::Controlled,
            ..Default::default()
        },
    );
    net.a.signal = Signal::Hold;
    net.b.signal = Signal::Hold;
    net.setup("10.0.0.1:5000", "10.0.0.2:6000");
    net.run_until(Duration::from_secs(2));
    assert_eq!(net.a.agent.state(), ConnectionState::New);
    // b's candidate trickles in first, a's much later: b learns a as
    // peer-reflexive from a's checks, then the signaled candidate
    // replaces it (RFC 8445 §7.3.1.3).
    net.release(false);
    let t = net.connect(Duration::from_secs(5));
    println!("connected {:?} after the late candidates", t - Duration::from_secs(2));
    assert!(t < Duration::from_millis(2100));
    net.release(true);
    net.run_until(Duration::from_secs(3));
    assert_eq!(net.b.agent.state(), ConnectionState::Completed);
    net.exchange("late");
}

#[test]
fn mdns_remote_candidates_are_resolved() {
    let mut net = Net::new(
        AgentConfig::default(),
        AgentConfig {
            role: Role::Controlled,
            ..Default::default()
        },
    );
    net.a.signal = Signal::Hold;
    net.b.signal = Signal::Hold;
    net.setup("10.0.0.1:5000", "10.0.0.2:6000");
    net.drain();
    // Replace b's host address by an mDNS name, plus one that won't resolve.
    let mut c = net.b.held.remove(0);
    c.address = CandidateAddress::Mdns("1f4712db-ea17-4bcf-a596-105139dfd8bf.local".into(), 6000);
    let mut bogus = c.clone();
    bogus.address = CandidateAddress::Mdns("00000000-0000-0000-0000-000000000000.local".into(), 7000);
    let now = net.now;
    net.a.agent.add_remote_candidate(c, now).unwrap();
    net.a.agent.add_remote_candidate(bogus, now).unwrap();
    let now = net.now;
    net.b.held_eoc = false;
    net.a.agent.end_of_remote_candidates(now);
    net.drain();
    let asked: Vec<String> = net
        .a
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::ResolveMdns(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2);
    net.run_until(Duration::from_millis(500));
    assert_eq!(net.a.agent.pairs().count(), 0, "nothing to check before resolution");
    let now = net.now;
    net.a
        .agent
        .resolve_mdns(&asked[0], Some("10.0.0.2".parse().unwrap()), now);
    net.a.agent.resolve_mdns(&asked[1], None, now);
    net.connect(Duration::from_secs(3));
    net.release(true);
    assert_eq!(net.a.agent.pairs().count(), 1);
    net.exchange("mdns");
    net.run_until(Duration::from_secs(4));
    assert_eq!(net.a.agent.state(), ConnectionState::Completed);
}

#[test]
fn consent_loss_disconnects_then_fails() {
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    net.run_until(Duration::from_secs(1));
    net.filter = Box::new(|_| false);
    let cut = net.elapsed();
    net.run_until(Duration::from_secs(60));
    for side in [&net.a, &net.b] {
        let at = |state| {
            side.events
                .iter()
                .find(|(_, e)| *e == Event::ConnectionState(state))
                .map(|(t, _)| *t - cut)
                .unwrap()
        };
        let (disconnected, failed) = (at(ConnectionState::Disconnected), at(ConnectionState::Failed));
        println!("disconnected after {disconnected:?}, failed after {failed:?}");
        // A consent check goes out within 6 s; unanswered for 2.5 s.
        assert!(disconnected <= Duration::from_millis(8600), "{disconnected:?}");
        assert!(
            failed >= Duration::from_secs(29) && failed <= Duration::from_secs(31),
            "{failed:?}"
        );
    }
    assert!(
        net.a.agent.send(b"x", &mut Vec::new(), net.now).is_none(),
        "sending stops after consent expiry"
    );
}

#[test]
fn consent_recovers_before_timeout() {
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    net.run_until(Duration::from_secs(1));
    net.filter = Box::new(|_| false);
    net.run_until(Duration::from_secs(15));
    assert_eq!(net.a.agent.state(), ConnectionState::Disconnected);
    net.filter = Box::new(|_| true);
    net.run_until(Duration::from_secs(25));
    for side in [&net.a, &net.b] {
        assert_eq!(side.agent.state(), ConnectionState::Completed);
        let states = Net::states(side);
        assert!(
            states.ends_with(&[ConnectionState::Disconnected, ConnectionState::Completed]),
            "{states:?}"
        );
    }
    net.run_until(Duration::from_secs(60));
    net.exchange("recovered");
}

#[test]
fn ice_restart_keeps_data_flowing() {
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    net.run_until(Duration::from_secs(1));
    let old = net
        .a
        .agent
        .selected_pair()
        .map(|(l, r)| (l.clone(), r.clone()))
        .unwrap();
    // a restarts; the new offer reaches b, whose answer restarts too.
    let now = net.now;
    let (na, nb) = (creds("aaa2"), creds("bbb2"));
    net.a.signal = Signal::Hold;
    net.b.signal = Signal::Hold;
    net.a.agent.restart(na.clone(), now);
    net.b.agent.restart(nb.clone(), now);
    net.drain();
    net.exchange("during restart");
    assert_eq!(
        net.a
            .agent
            .selected_pair()
            .map(|(l, r)| (l.clone(), r.clone()))
            .unwrap(),
        old
    );
    net.a.agent.set_remote_credentials(nb, now);
    net.b.agent.set_remote_credentials(na, now);
    net.run_until(Duration::from_millis(1500));
    net.exchange("still old path");
    net.release(true);
    net.release(false);
    let before = net.a.events.len();
    net.run_until(Duration::from_secs(3));
    assert!(net.a.events[before..]
        .iter()
        .any(|(_, e)| matches!(e, Event::SelectedPair { .. })));
    net.exchange("after restart");
    net.run_until(Duration::from_secs(60));
    net.exchange("much later");
    assert_eq!(net.a.agent.state(), ConnectionState::Completed);
    assert!(!Net::states(&net.a).contains(&ConnectionState::Failed));
}

#[test]
fn remote_credentials_change_restarts() {
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    // b restarts on its own; a only sees new credentials and candidates.
    let now = net.now;
    let nb = creds("bbb3");
    net.b.agent.restart(nb.clone(), now);
    net.a.agent.set_remote_credentials(nb, now);
    let before = net.a.events.len();
    net.run_until(Duration::from_secs(3));
    assert!(net.a.events[before..]
        .iter()
        .any(|(_, e)| matches!(e, Event::SelectedPair { .. })));
    net.exchange("after implicit restart");
}

/// Hostile and malformed STUN is dropped and counted, never fatal; the
/// RFC's error responses go back where it says so.
#[test]
fn bad_packets_are_counted() {
    use natter_stun::*;
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    let (attacker, a_host) = (addr("10.0.0.66:1234"), addr("10.0.0.1:5000"));
    let now = net.now;
    let inject = |net: &mut Net, data: &[u8]| {
        let r = match net.a.agent.handle_receive(now, Transport::Udp, attacker, a_host, data) {
            Received::Handled => "handled",
            Received::Data { .. } => "data",
            Received::Unknown => "unknown",
        };
        let mut replies = Vec::new();
        while let Some(t) = net.a.agent.poll_transmit(now) {
            if t.destination == attacker {
                replies.push(t);
            } else {
                net.in_flight.push_back((now, t));
            }
        }
        (r, replies)
    };
    let before = net.a.agent.stats();
    // Truncated, bad cookie, bad length, garbage: malformed.
    for junk in [
        &[0u8, 1, 0][..],
        &[0u8; 20][..],
        &[0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert_eq!(inject(&mut net, junk).0, "handled");
    }
    // Not STUN and from nowhere: unknown.
    assert_eq!(inject(&mut net, b"\x80hello").0, "unknown");
    let request = |user: &str, pwd: &str, extra: Option<u16>, fingerprint: bool| {
        let mut buf = [0u8; 512];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([9; 12]),
        )
        .unwrap();
        w.add(&Username(user)).unwrap();
        w.add(&Priority(1234)).unwrap();
        w.add(&IceControlled(1)).unwrap();
        if let Some(t) = extra {
            w.add_raw(t, &[1, 2, 3, 4]).unwrap();
        }
        w.add_message_integrity(&IntegrityKey::short_term(pwd).unwrap())
            .unwrap();
        if fingerprint {
            w.add_fingerprint().unwrap();
        }
        let n = w.finish();
        buf[..n].to_vec()
    };
    let code = |t: &Transmit| Message::decode(&t.data).unwrap().require::<ErrorCode>().unwrap().code;
    // Wrong password: 401, no state change.
    let (_, replies) = inject(&mut net, &request("aaaa:bbbb", "wrong-password", None, true));
    assert_eq!(replies.iter().map(code).collect::<Vec<_>>(), [401]);
    // Unknown ufrag: 401.
    let (_, replies) = inject(&mut net, &request("zzzz:bbbb", &creds("aaaa").pwd, None, true));
    assert_eq!(replies.iter().map(code).collect::<Vec<_>>(), [401]);
    // Unknown comprehension-required attribute: 420 listing it.
    let (_, replies) = inject(&mut net, &request("aaaa:bbbb", &creds("aaaa").pwd, Some(0x0031), true));
    assert_eq!(replies.iter().map(code).collect::<Vec<_>>(), [420]);
    let msg = Message::decode(&replies[0].data).unwrap();
    assert_eq!(msg.require::<UnknownAttributes>().unwrap().types(), [0x0031]);
    // Corrupted fingerprint: malformed.
    let mut bad = request("aaaa:bbbb", &creds("aaaa").pwd, None, true);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(inject(&mut net, &bad).1.is_empty());
    // A response nobody asked for.
    let mut buf = [0u8; 128];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::SuccessResponse),
        TransactionId([7; 12]),
    )
    .unwrap();
    w.add(&XorMappedAddress(attacker)).unwrap();
    let n = w.finish();
    inject(&mut net, &buf[..n]);
    let after = net.a.agent.stats();
    assert_eq!(after.malformed - before.malformed, 4);
    assert_eq!(after.unauthenticated - before.unauthenticated, 2);
    assert_eq!(after.unknown_attributes - before.unknown_attributes, 1);
    assert_eq!(after.unmatched_responses - before.unmatched_responses, 1);
    // The connection carries on.
    net.run_until(net.elapsed() + Duration::from_secs(1));
    assert_eq!(net.a.agent.state(), ConnectionState::Completed);
    net.exchange("after attack");
}

/// A valid check from an unknown address with the right credentials
/// creates a peer-reflexive remote candidate (§7.3.1.3).
#[test]
fn peer_reflexive_remote_from_unknown_source() {
    let mut net = Net::new(
        AgentConfig::default(),
        AgentConfig {
            role: Role::Controlled,
            ..Default::default()
        },
    );
    net.a.signal = Signal::Hold; // b never learns a's candidates
    net.setup("10.0.0.1:5000", "10.0.0.2:6000");
    net.connect(Duration::from_secs(2));
    assert_eq!(
        selected_kinds(&net.b.agent),
        (CandidateKind::Host, CandidateKind::PeerReflexive)
    );
    assert_eq!(selected_kinds(&net.a.agent), (CandidateKind::Host, CandidateKind::Host));
    net.exchange("prflx");
}

#[test]
fn fuzzed_input_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let real: Vec<Vec<u8>> = net.delivered.iter().map(|t| t.data.clone()).collect();
    let now = net.now;
    for i in 0..20_000 {
        let mut data = real[i % real.len()].clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..data.len());
            data[at] = rng.gen();
        }
        if rng.gen_bool(0.1) {
            data.truncate(rng.gen_range(0..data.len()));
        }
        let _ = net
            .a
            .agent
            .handle_receive(now, Transport::Udp, addr("10.0.0.2:6000"), addr("10.0.0.1:5000"), &data);
        while net.a.agent.poll_transmit(now).is_some() {}
    }
    assert!(net.a.agent.stats().malformed > 1000);
}

#[test]
fn close_stops_everything() {
    let mut net = Net::standard();
    net.connect(Duration::from_secs(2));
    net.a.agent.close();
    assert_eq!(net.a.agent.state(), ConnectionState::Closed);
    assert!(net.a.agent.poll_timeout().is_none());
    assert!(net.a.agent.send(b"x", &mut Vec::new(), net.now).is_none());
}

#[test]
fn gathering_events() {
    let now = Instant::now();
    let mut agent = Agent::new(
        AgentConfig {
            seed: Some(3),
            ..Default::default()
        },
        now,
    );
    agent.add_host(addr("10.0.0.1:5000"), Protocol::Udp).unwrap();
    agent.add_host(addr("10.0.1.1:5000"), Protocol::Udp).unwrap();
    agent.add_host(addr("[2001:db8::1]:5000"), Protocol::Udp).unwrap();
    agent
        .add_host(
            addr("10.0.0.1:443"),
            Protocol::Tcp(natter_ice::candidate::TcpType::Passive),
        )
        .unwrap();
    assert!(agent.add_host(addr("10.0.0.1:5000"), Protocol::Udp).is_err());
    agent.end_of_local_addresses();
    let mut cands = Vec::new();
    let mut complete = false;
    while let Some(e) = agent.poll_event() {
        match e {
            Event::LocalCandidate(c) => cands.push(c),
            Event::GatheringComplete => complete = true,
            _ => {}
        }
    }
    assert!(complete);
    assert_eq!(cands.len(), 4);
    let prio = |a: &str| {
        cands
            .iter()
            .find(|c| c.address == CandidateAddress::Ip(addr(a)))
            .unwrap()
            .priority
    };
    assert!(prio("[2001:db8::1]:5000") > prio("10.0.0.1:5000"));
    assert!(prio("10.0.0.1:5000") > prio("10.0.1.1:5000"));
    assert!(prio("10.0.1.1:5000") > prio("10.0.0.1:443"));
    let unique: std::collections::HashSet<u32> = cands.iter().map(|c| c.priority).collect();
    assert_eq!(unique.len(), 4);
}

/// RFC 6544: a passive TCP host candidate answers a check that arrives
/// on an accepted connection, checks back on the same connection and
/// selects the pair the peer nominates.
#[test]
fn passive_tcp_host_answers_and_selects() {
    use natter_ice::candidate::TcpType;
    use natter_stun::*;
    let now = Instant::now();
    let mut b = Agent::new(
        AgentConfig {
            role: Role::Controlled,
            credentials: Some(creds("bbbb")),
            seed: Some(5),
            ..Default::default()
        },
        now,
    );
    b.set_remote_credentials(creds("aaaa"), now);
    let (a_src, b_tcp) = (addr("10.0.0.1:50000"), addr("10.0.0.2:443"));
    b.add_host(b_tcp, Protocol::Tcp(TcpType::Passive)).unwrap();
    let mut buf = [0u8; 256];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId([3; 12]),
    )
    .unwrap();
    w.add(&Username("bbbb:aaaa")).unwrap();
    w.add(&Priority(1_000_000)).unwrap();
    w.add(&IceControlling(1)).unwrap();
    w.add(&UseCandidate).unwrap();
    w.add_message_integrity(&IntegrityKey::short_term(&creds("bbbb").pwd).unwrap())
        .unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    assert_eq!(
        b.handle_receive(now, Transport::Tcp, a_src, b_tcp, &buf[..n]),
        Received::Handled
    );
    let response = b.poll_transmit(now).unwrap();
    assert_eq!(
        (response.transport, response.source, response.destination),
        (Transport::Tcp, b_tcp, a_src)
    );
    let msg = Message::decode(&response.data).unwrap();
    assert_eq!(msg.class(), Class::SuccessResponse);
    assert_eq!(msg.require::<XorMappedAddress>().unwrap().0, a_src);
    // The triggered check goes back over the connection.
    let at = b.poll_timeout().unwrap();
    b.handle_timeout(at);
    let check = b.poll_transmit(at).unwrap();
    assert_eq!((check.transport, check.destination), (Transport::Tcp, a_src));
    let req = Message::decode(&check.data).unwrap();
    assert_eq!(req.require::<Username>().unwrap().0, "aaaa:bbbb");
    let mut buf = [0u8; 256];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::SuccessResponse),
        req.transaction_id(),
    )
    .unwrap();
    w.add(&XorMappedAddress(b_tcp)).unwrap();
    w.add_message_integrity(&IntegrityKey::short_term(&creds("aaaa").pwd).unwrap())
        .unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    b.handle_receive(at, Transport::Tcp, a_src, b_tcp, &buf[..n]);
    let (l, r) = b.selected_pair().expect("the nominated TCP pair");
    assert_eq!(l.protocol, Protocol::Tcp(TcpType::Passive));
    assert_eq!(
        (r.kind, r.protocol),
        (CandidateKind::PeerReflexive, Protocol::Tcp(TcpType::Active))
    );
    assert_eq!(b.state(), ConnectionState::Connected);
    let mut data = Vec::new();
    let route = b.send(b"over tcp", &mut data, at).unwrap();
    assert_eq!((route.transport, route.destination), (Transport::Tcp, a_src));
    assert_eq!(data, b"over tcp");
}

/// A nomination that is never answered fails its pair (RFC 8445
/// §7.2.5.4) and with it ICE; the controlling agent is then left with
/// nothing to nominate, and no deadline in the past to spin on.
#[test]
fn unanswered_nomination_fails_without_spinning() {
    use natter_stun::{attribute, Message};
    let mut net = Net::standard();
    net.filter = Box::new(|t| Message::decode(&t.data).map_or(true, |m| !m.has(attribute::USE_CANDIDATE)));
    net.run_until(Duration::from_secs(20));
    assert_eq!(net.a.agent.state(), ConnectionState::Failed);
    assert!(net.a.agent.stats().check_timeouts >= 1);
    assert!(net.a.agent.poll_timeout().is_none_or(|t| t > net.now));
}
