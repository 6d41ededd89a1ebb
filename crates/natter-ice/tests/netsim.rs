//! The in-memory network of `tests/support/net.rs`: NAT mapping and
//! filtering (RFC 4787), mapping expiry, hairpinning, latency, jitter and
//! seeded loss, the virtual clock, and the STUN and TURN server endpoints.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter_ice::{Transmit, Transport};
use natter_stun::{
    Class, Data, ErrorCode, IntegrityKey, Message, MessageType, MessageWriter, Method, Nonce, PasswordAlgorithm, Realm,
    RequestedTransport, TransactionId, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use support::net::{
    is_stun, DropReason, Endpoint, Fate, Filtering, HostId, Link, Mapping, MappingInfo, Nat, Network, ZoneId, INTERNET,
};
use support::probe::Probe;
use support::stun_server::StunServer;
use support::turn_server::{TurnServer, FIRST_RELAY_PORT, TURN_REALM};

const NAT_IP: &str = "198.18.1.1";
const INNER: &str = "192.168.1.10:5000";
const S1: &str = "198.18.0.10:3478";
const S2: &str = "198.18.0.20:3478";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test socket address")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A LAN behind `nat` with one plain probe at [`INNER`], and two
/// reflectors on the internet at [`S1`] and [`S2`].
struct World {
    net: Network,
    lan: ZoneId,
    inner: HostId<Probe>,
    s1: HostId<Probe>,
    s2: HostId<Probe>,
}

fn world(nat: Nat) -> World {
    let mut net = Network::new(1);
    let lan = net.add_lan("home", INTERNET, nat);
    let inner = net.add_host("inner", lan, &[sa(INNER).ip()], Probe::new());
    let s1 = net.add_host("s1", INTERNET, &[sa(S1).ip()], Probe::reflector());
    let s2 = net.add_host("s2", INTERNET, &[sa(S2).ip()], Probe::reflector());
    World {
        net,
        lan,
        inner,
        s1,
        s2,
    }
}

impl World {
    /// `inner` sends to `to`; returns the address the reflector saw.
    #[track_caller]
    fn reflect(&mut self, to: &str) -> SocketAddr {
        let before = self.net.endpoint(self.inner).received().len();
        self.net.endpoint_mut(self.inner).send(sa(INNER), sa(to), "hello");
        self.net.run_for(ms(100));
        let received = &self.net.endpoint(self.inner).received()[before..];
        assert_eq!(received.len(), 1, "one reflection from {to}");
        assert_eq!(
            received[0].source,
            sa(to),
            "the reflection comes from where it was sent"
        );
        received[0].reflected().expect("a reflector's answer")
    }

    /// `from` (a probe on the internet) sends to `to`; returns what `inner` got.
    fn unsolicited(&mut self, from: HostId<Probe>, source: &str, to: SocketAddr) -> Vec<support::probe::Received> {
        self.net.endpoint_mut(from).send(sa(source), to, "unsolicited");
        self.net.run_for(ms(100));
        self.net.endpoint_mut(self.inner).take_received()
    }
}

#[test]
fn endpoint_independent_nat_admits_a_third_party_once_a_mapping_exists() {
    let mut w = world(Nat::full_cone(ip(NAT_IP)));

    // No mapping yet: the NAT has nowhere to send it.
    let got = w.unsolicited(w.s2, S2, sa("198.18.1.1:40000"));
    assert!(got.is_empty());
    assert_eq!(w.net.counters().dropped(DropReason::NoMapping), 1);

    let mapped = w.reflect(S1);
    assert_eq!(mapped.ip(), ip(NAT_IP));
    let mappings: Vec<_> = w
        .net
        .nat_mappings(w.lan)
        .into_iter()
        .map(|m: MappingInfo| (m.internal, m.external, m.remote))
        .collect();
    assert_eq!(mappings, [(sa(INNER), mapped, None)]);
    w.net.endpoint_mut(w.inner).take_received();

    // S2 never heard from inner, yet EIF lets it in, translated.
    let got = w.unsolicited(w.s2, S2, mapped);
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].source, got[0].destination), (sa(S2), sa(INNER)));
    assert_eq!(got[0].data, b"unsolicited");
    // And EIM reuses the mapping for S2.
    assert_eq!(w.reflect(S2), mapped);
}

#[test]
fn mapping_behaviour_decides_the_external_port_per_destination() {
    let destinations = [S1, "198.18.0.10:3479", S2];
    let ports = |mapping| {
        let mut w = world(Nat::new(ip(NAT_IP), mapping, Filtering::AddressAndPortDependent));
        let seen: Vec<SocketAddr> = destinations.iter().map(|d| w.reflect(d)).collect();
        assert!(seen.iter().all(|a| a.ip() == ip(NAT_IP)));
        assert_eq!(w.net.nat_mappings(w.lan).len(), {
            let mut distinct = seen.clone();
            distinct.sort();
            distinct.dedup();
            distinct.len()
        });
        seen
    };

    let eim = ports(Mapping::EndpointIndependent);
    assert!(eim[0] == eim[1] && eim[1] == eim[2], "EIM: one port for all: {eim:?}");

    let adm = ports(Mapping::AddressDependent);
    assert!(adm[0] == adm[1] && adm[1] != adm[2], "ADM: one port per IP: {adm:?}");

    let apdm = ports(Mapping::AddressAndPortDependent);
    assert!(
        apdm[0] != apdm[1] && apdm[1] != apdm[2] && apdm[0] != apdm[2],
        "APDM: one port per IP and port: {apdm:?}"
    );
    // Deterministic: the same seed picks the same ports.
    assert_eq!(ports(Mapping::AddressAndPortDependent), apdm);
}

#[test]
fn address_dependent_filtering_admits_any_port_of_a_known_ip_only() {
    let mut w = world(Nat::restricted_cone(ip(NAT_IP)));
    let mapped = w.reflect(S1);
    w.net.endpoint_mut(w.inner).take_received();

    let got = w.unsolicited(w.s1, "198.18.0.10:9999", mapped);
    assert_eq!(got.len(), 1, "another port of S1's IP gets in");
    assert_eq!(got[0].source, sa("198.18.0.10:9999"));

    let got = w.unsolicited(w.s2, S2, mapped);
    assert!(got.is_empty(), "an IP inner never sent to is filtered");
    assert_eq!(w.net.counters().dropped(DropReason::Filtered), 1);
}

#[test]
fn address_and_port_dependent_filtering_admits_the_exact_address_only() {
    let mut w = world(Nat::port_restricted_cone(ip(NAT_IP)));
    let mapped = w.reflect(S1);
    w.net.endpoint_mut(w.inner).take_received();

    assert_eq!(w.unsolicited(w.s1, S1, mapped).len(), 1);
    assert!(w.unsolicited(w.s1, "198.18.0.10:9999", mapped).is_empty());
    assert!(w.unsolicited(w.s2, S2, mapped).is_empty());
    assert_eq!(w.net.counters().dropped(DropReason::Filtered), 2);

    // A Filtered drop is recorded with the addresses as sent.
    let last = w.net.trace().last().expect("traced");
    assert_eq!((last.source, last.destination), (sa(S2), mapped));
    assert_eq!(last.dropped(), Some(DropReason::Filtered));
}

#[test]
fn mappings_expire_unless_outbound_traffic_refreshes_them() {
    let mut w = world(Nat::port_restricted_cone(ip(NAT_IP)).with_mapping_timeout(secs(30)));
    let start = w.net.start();
    let mapped = w.reflect(S1);
    w.net.run_until(start + secs(20), |_| false);

    // An outbound datagram at 20 s refreshes the mapping as it crosses
    // the NAT, one LAN latency later.
    assert_eq!(w.reflect(S1), mapped);
    let expires = start + secs(20) + w.net.link(w.lan).latency + secs(30);
    assert_eq!(w.net.nat_mappings(w.lan)[0].expires, expires);

    // Inbound traffic does not refresh it (RFC 4787 REQ-6 is a MAY, off
    // here): still open at 45 s, gone after 50 s.
    w.net.run_until(start + secs(45), |_| false);
    w.net.endpoint_mut(w.inner).take_received();
    assert_eq!(w.unsolicited(w.s1, S1, mapped).len(), 1);
    w.net.run_until(expires, |_| false);
    assert!(w.net.nat_mappings(w.lan).is_empty());
    assert!(w.unsolicited(w.s1, S1, mapped).is_empty());
    assert_eq!(w.net.counters().dropped(DropReason::NoMapping), 1);

    // The next outbound datagram makes a new mapping.
    let again = w.reflect(S1);
    assert_eq!(again.ip(), ip(NAT_IP));
    assert_eq!(w.net.nat_mappings(w.lan).len(), 1);
}

#[test]
fn each_zone_crossed_adds_its_latency() {
    let mut w = world(Nat::full_cone(ip(NAT_IP)));
    w.net.set_link(INTERNET, Link::latency(ms(25)));
    w.net.set_link(w.lan, Link::latency(ms(2)));
    let start = w.net.start();

    w.net.endpoint_mut(w.inner).send(sa(INNER), sa(S1), "hello");
    assert!(w.net.run_until(start + secs(1), |n| n.endpoint(w.s1).last().is_some()));
    assert_eq!(w.net.now(), start + ms(27), "LAN, then internet");
    assert!(w
        .net
        .run_until(start + secs(1), |n| n.endpoint(w.inner).last().is_some()));
    assert_eq!(w.net.endpoint(w.inner).received()[0].at, start + ms(54));
    assert_eq!(w.net.counters().delivered, 2);
}

#[test]
fn jitter_spreads_arrivals_within_its_bound_the_same_way_for_a_seed() {
    let arrivals = |seed| {
        let mut net = Network::new(seed);
        net.set_link(
            INTERNET,
            Link {
                latency: ms(20),
                jitter: ms(10),
            },
        );
        let a = net.add_host("a", INTERNET, &[ip("198.18.0.1")], Probe::new());
        let b = net.add_host("b", INTERNET, &[ip("198.18.0.2")], Probe::new());
        for i in 0..50u8 {
            net.endpoint_mut(a).send(sa("198.18.0.1:1"), sa("198.18.0.2:2"), [i]);
        }
        net.run_for(secs(1));
        let start = net.start();
        net.endpoint(b)
            .received()
            .iter()
            .map(|r| (r.data[0], r.at - start))
            .collect::<Vec<_>>()
    };
    let first = arrivals(5);
    assert_eq!(first.len(), 50);
    assert!(first.iter().all(|(_, t)| (ms(20)..=ms(30)).contains(t)));
    assert!(first.windows(2).all(|w| w[0].1 <= w[1].1), "delivered in time order");
    assert!(first.windows(2).any(|w| w[0].0 > w[1].0), "jitter reorders");
    assert_eq!(arrivals(5), first);
    assert_ne!(arrivals(6), first);
}

fn binding_request(tid: u32) -> Vec<u8> {
    let mut t = [0u8; 12];
    t[..4].copy_from_slice(&tid.to_be_bytes());
    let mut buf = [0u8; 64];
    let typ = MessageType::new(Method::BINDING, Class::Request);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId(t)).expect("fits");
    w.add_fingerprint().expect("fits");
    let n = w.finish();
    buf[..n].to_vec()
}

#[test]
fn loss_filter_drops_that_fraction_of_matching_datagrams_only_and_reproducibly() {
    let run = |seed| {
        let mut net = Network::new(seed);
        net.set_loss(0.3, |t: &Transmit| is_stun(&t.data));
        let a = net.add_host("a", INTERNET, &[ip("198.18.0.1")], Probe::new());
        let b = net.add_host("b", INTERNET, &[ip("198.18.0.2")], Probe::new());
        for i in 0..1000 {
            let p = net.endpoint_mut(a);
            p.send(sa("198.18.0.1:1"), sa("198.18.0.2:2"), binding_request(i));
            p.send(sa("198.18.0.1:1"), sa("198.18.0.2:2"), b"media, not STUN".to_vec());
        }
        net.run_for(secs(1));
        let lost: Vec<u64> = net
            .trace()
            .iter()
            .filter(|r| r.dropped() == Some(DropReason::Lost))
            .map(|r| r.id)
            .collect();
        assert!(net.trace().iter().all(|r| r.delivered() || is_stun(&r.data)));
        let received = net.endpoint(b).received();
        assert_eq!(received.iter().filter(|r| !is_stun(&r.data)).count(), 1000);
        assert_eq!(received.len() + lost.len(), 2000);
        assert_eq!(net.counters().dropped(DropReason::Lost), lost.len() as u64);
        assert_eq!(net.counters().dropped_total(), lost.len() as u64);
        lost
    };
    let lost = run(42);
    assert!(
        (250..=350).contains(&lost.len()),
        "{} of 1000 STUN messages lost",
        lost.len()
    );
    assert_eq!(run(42), lost, "same seed, same datagrams lost");
    assert_ne!(run(43), lost, "another seed, another pattern");
}

#[test]
fn stun_binding_through_a_nat_reports_the_public_mapping() {
    let mut net = Network::new(3);
    let lan = net.add_lan("home", INTERNET, Nat::symmetric(ip(NAT_IP)));
    let client = net.add_host("client", lan, &[sa(INNER).ip()], Probe::new());
    let stun = net.add_host("stun", INTERNET, &[ip("198.18.0.100")], StunServer::new());

    net.endpoint_mut(client)
        .send(sa(INNER), sa("198.18.0.100:3478"), binding_request(7));
    let deadline = net.now() + secs(1);
    assert!(net.run_until(deadline, |n| n.endpoint(client).last().is_some()));

    let reply = net.endpoint(client).last().expect("reply").clone();
    assert_eq!(reply.source, sa("198.18.0.100:3478"));
    let msg = Message::decode(&reply.data).expect("a STUN message");
    assert_eq!(
        msg.message_type(),
        MessageType::new(Method::BINDING, Class::SuccessResponse)
    );
    assert_eq!(
        msg.transaction_id(),
        Message::decode(&binding_request(7)).expect("STUN").transaction_id()
    );
    let mapped = msg.require::<XorMappedAddress>().expect("XOR-MAPPED-ADDRESS").0;
    let mappings = net.nat_mappings(lan);
    assert_eq!(mappings.len(), 1);
    assert_eq!(mapped, mappings[0].external);
    assert_eq!(mapped.ip(), ip(NAT_IP));
    assert_eq!(net.endpoint(stun).answered, 1);
}

/// A TURN request: the method's attributes, then the long-term
/// credential attributes if `auth` is given, and FINGERPRINT.
fn turn_request(
    method: Method,
    tid: u8,
    auth: Option<(&str, &str, &IntegrityKey)>,
    attrs: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), natter_stun::Error>,
) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let typ = MessageType::new(method, Class::Request);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId([tid; 12])).expect("fits");
    attrs(&mut w).expect("fits");
    if let Some((realm, nonce, key)) = auth {
        w.add(&Username("alice")).expect("fits");
        w.add(&Realm(realm)).expect("fits");
        w.add(&Nonce(nonce)).expect("fits");
        w.add_message_integrity(key).expect("fits");
    }
    w.add_fingerprint().expect("fits");
    let n = w.finish();
    buf[..n].to_vec()
}

#[test]
fn turn_allocation_through_a_nat_relays_both_ways() {
    let turn_addr = sa("198.18.0.50:3478");
    let peer_addr = sa("198.18.0.60:7000");
    let mut net = Network::new(4);
    let lan = net.add_lan("home", INTERNET, Nat::port_restricted_cone(ip(NAT_IP)));
    let client = net.add_host("client", lan, &[sa(INNER).ip()], Probe::new());
    let now = net.now();
    let turn = net.add_host(
        "turn",
        INTERNET,
        &[turn_addr.ip()],
        TurnServer::new(now, turn_addr, &[("alice", "wonderland")]),
    );
    let peer = net.add_host("peer", INTERNET, &[peer_addr.ip()], Probe::new());

    // One request, one response.
    let transact = |net: &mut Network, request: Vec<u8>| -> Vec<u8> {
        net.endpoint_mut(client).send(sa(INNER), turn_addr, request);
        let deadline = net.now() + secs(1);
        assert!(net.run_until(deadline, |n| !n.endpoint(client).received().is_empty()));
        let r = net.endpoint_mut(client).take_received().remove(0);
        assert_eq!(r.source, turn_addr);
        r.data
    };

    // RFC 8656 §7.2: the first Allocate learns the realm and a nonce.
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP);
    let challenge = transact(&mut net, turn_request(Method::ALLOCATE, 1, None, udp));
    let msg = Message::decode(&challenge).expect("STUN");
    assert_eq!(msg.require::<ErrorCode>().expect("ERROR-CODE").code, 401);
    let realm = msg.require::<Realm>().expect("REALM").0.to_owned();
    let nonce = msg.require::<Nonce>().expect("NONCE").0.to_owned();
    assert_eq!(realm, TURN_REALM);
    let key = IntegrityKey::long_term("alice", &realm, "wonderland", PasswordAlgorithm::Md5).expect("key");
    let auth = Some((realm.as_str(), nonce.as_str(), &key));

    let success = transact(&mut net, turn_request(Method::ALLOCATE, 2, auth, udp));
    let msg = Message::decode(&success).expect("STUN");
    assert_eq!(
        msg.message_type(),
        MessageType::new(Method::ALLOCATE, Class::SuccessResponse)
    );
    msg.verify_integrity(&key).expect("signed with alice's key");
    let relayed = msg.require::<XorRelayedAddress>().expect("XOR-RELAYED-ADDRESS").0;
    assert_eq!(relayed, SocketAddr::new(turn_addr.ip(), FIRST_RELAY_PORT));
    let mapped = msg.require::<XorMappedAddress>().expect("XOR-MAPPED-ADDRESS").0;
    assert_eq!(mapped, net.nat_mappings(lan)[0].external);
    assert_eq!(net.endpoint(turn).relays().collect::<Vec<_>>(), [relayed]);

    // Without a permission the peer's datagram stops at the server.
    net.endpoint_mut(peer).send(peer_addr, relayed, "too early");
    net.run_for(ms(100));
    assert!(net.endpoint(client).received().is_empty());
    assert_eq!(net.endpoint(turn).server().stats().no_permission, 1);

    let permit = |w: &mut MessageWriter<'_>| w.add(&XorPeerAddress(peer_addr));
    let reply = transact(&mut net, turn_request(Method::CREATE_PERMISSION, 3, auth, permit));
    let msg = Message::decode(&reply).expect("STUN");
    assert_eq!(
        msg.message_type(),
        MessageType::new(Method::CREATE_PERMISSION, Class::SuccessResponse)
    );

    // RFC 8656 §11: a Send indication reaches the peer from the relayed address.
    let mut buf = [0u8; 128];
    let typ = MessageType::new(Method::SEND, Class::Indication);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId([4; 12])).expect("fits");
    w.add(&XorPeerAddress(peer_addr)).expect("fits");
    w.add(&Data(b"via relay")).expect("fits");
    let n = w.finish();
    net.endpoint_mut(client).send(sa(INNER), turn_addr, buf[..n].to_vec());
    let deadline = net.now() + secs(1);
    assert!(net.run_until(deadline, |n| n.endpoint(peer).last().is_some()));
    let got = net.endpoint(peer).last().expect("relayed").clone();
    assert_eq!(
        (got.source, got.destination, got.data.as_slice()),
        (relayed, peer_addr, &b"via relay"[..])
    );

    // The peer answers the relayed address; the client gets a Data indication.
    net.endpoint_mut(peer).send(peer_addr, relayed, "back");
    let deadline = net.now() + secs(1);
    assert!(net.run_until(deadline, |n| !n.endpoint(client).received().is_empty()));
    let data = net.endpoint_mut(client).take_received().remove(0);
    assert_eq!((data.source, data.destination), (turn_addr, sa(INNER)));
    let msg = Message::decode(&data.data).expect("STUN");
    assert_eq!(msg.message_type(), MessageType::new(Method::DATA, Class::Indication));
    assert_eq!(msg.require::<XorPeerAddress>().expect("XOR-PEER-ADDRESS").0, peer_addr);
    assert_eq!(msg.require::<Data>().expect("DATA").0, b"back");

    // A refresh with lifetime 0 ends the allocation and frees the port.
    let zero = |w: &mut MessageWriter<'_>| w.add(&natter_stun::Lifetime(0));
    let reply = transact(&mut net, turn_request(Method::REFRESH, 5, auth, zero));
    assert_eq!(Message::decode(&reply).expect("STUN").class(), Class::SuccessResponse);
    assert_eq!(net.endpoint(turn).relays().count(), 0);
}

#[test]
fn hairpinning_is_off_by_default_and_translates_both_ends_when_on() {
    let run = |hairpinning| {
        let mut w = world(Nat::full_cone(ip(NAT_IP)).with_hairpinning(hairpinning));
        let other = w.net.add_host("other", w.lan, &[ip("192.168.1.11")], Probe::new());
        let inner_mapped = w.reflect(S1);
        w.net.endpoint_mut(other).send(sa("192.168.1.11:6000"), sa(S1), "hello");
        w.net.run_for(ms(100));
        let other_mapped = w
            .net
            .endpoint(other)
            .last()
            .and_then(|r| r.reflected())
            .expect("reflected");
        w.net.endpoint_mut(w.inner).take_received();

        w.net
            .endpoint_mut(other)
            .send(sa("192.168.1.11:6000"), inner_mapped, "hairpin");
        w.net.run_for(ms(100));
        let got = w.net.endpoint_mut(w.inner).take_received();
        (got, other_mapped, w.net.counters().dropped(DropReason::HairpinDisabled))
    };

    let (got, _, refused) = run(false);
    assert!(got.is_empty());
    assert_eq!(refused, 1);

    let (got, other_mapped, refused) = run(true);
    assert_eq!(refused, 0);
    assert_eq!(got.len(), 1);
    // RFC 4787 REQ-9: the source is the sender's external address.
    assert_eq!((got[0].source, got[0].destination), (other_mapped, sa(INNER)));
}

#[test]
fn nested_nats_and_reused_private_addresses_route_independently() {
    let mut net = Network::new(9);
    let isp = net.add_lan("isp", INTERNET, Nat::port_restricted_cone(ip("198.18.2.1")));
    let home = net.add_lan("home", isp, Nat::full_cone(ip("100.64.0.2")));
    let office = net.add_lan("office", INTERNET, Nat::symmetric(ip("198.18.3.1")));
    // The same private address in two LANs.
    let a = net.add_host("a", home, &[sa(INNER).ip()], Probe::new());
    let b = net.add_host("b", office, &[sa(INNER).ip()], Probe::new());
    net.add_host("s1", INTERNET, &[sa(S1).ip()], Probe::reflector());

    net.endpoint_mut(a).send(sa(INNER), sa(S1), "from a");
    net.endpoint_mut(b).send(sa(INNER), sa(S1), "from b");
    net.run_for(ms(200));
    let seen_a = net
        .endpoint(a)
        .last()
        .and_then(|r| r.reflected())
        .expect("a's reflection");
    let seen_b = net
        .endpoint(b)
        .last()
        .and_then(|r| r.reflected())
        .expect("b's reflection");
    assert_eq!(seen_a, net.nat_mappings(isp)[0].external, "the outer NAT's mapping");
    assert_eq!(net.nat_mappings(isp)[0].internal.ip(), ip("100.64.0.2"));
    assert_eq!(net.nat_mappings(home)[0].internal, sa(INNER));
    assert_eq!(seen_b.ip(), ip("198.18.3.1"));
    // Default links: home and isp 1 ms, internet 10 ms; both ways.
    assert_eq!(net.endpoint(a).last().expect("reflection").at, net.start() + ms(24));
}

/// Wakes every 100 ms and counts.
struct Ticker {
    next: Instant,
    ticks: u32,
}

impl Endpoint for Ticker {
    fn handle_receive(&mut self, _: Instant, _: SocketAddr, _: SocketAddr, _: &[u8]) {}
    fn poll_transmit(&mut self, _: Instant) -> Option<Transmit> {
        None
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.next)
    }
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next {
            self.ticks += 1;
            self.next = now + ms(100);
        }
    }
}

#[test]
fn the_virtual_clock_jumps_to_timers_and_stops_at_deadlines() {
    let mut net = Network::new(0);
    assert!(!net.step(), "nothing to do");
    let start = net.start();
    let t = net.add_host(
        "ticker",
        INTERNET,
        &[ip("198.18.0.1")],
        Ticker {
            next: start + ms(100),
            ticks: 0,
        },
    );
    assert!(net.run_until(start + secs(1), |n| n.endpoint(t).ticks >= 5));
    assert_eq!(net.now(), start + ms(500));

    assert!(!net.run_until(start + ms(750), |_| false));
    assert_eq!(net.now(), start + ms(750));
    assert_eq!(net.endpoint(t).ticks, 7);

    assert!(net.step());
    assert_eq!(net.now(), start + ms(800));
    net.run_for(secs(1));
    assert_eq!(net.elapsed(), ms(1800));
    assert_eq!(net.endpoint(t).ticks, 18);
    assert_eq!(net.counters().timeouts, 18);
}

#[test]
fn undeliverable_datagrams_are_dropped_and_counted_by_reason() {
    let mut w = world(Nat::full_cone(ip(NAT_IP)));
    let p = w.net.endpoint_mut(w.inner);
    p.send_transmit(Transmit {
        transport: Transport::Tcp,
        source: sa(INNER),
        destination: sa(S1),
        data: b"tcp".to_vec(),
    });
    p.send(sa("192.168.1.99:5000"), sa(S1), "spoofed");
    p.send(sa(INNER), sa("198.18.99.99:1"), "nobody there");
    p.send(sa(INNER), sa("192.168.1.99:1"), "nobody on the LAN");
    w.net.set_max_payload(Some(1200));
    w.net.endpoint_mut(w.inner).send(sa(INNER), sa(S1), vec![0u8; 1201]);
    w.net.set_blackhole(|t: &Transmit| t.data == b"cut");
    w.net.endpoint_mut(w.inner).send(sa(INNER), sa(S1), "cut");
    w.net.run_for(secs(1));

    let c = w.net.counters().clone();
    assert_eq!(c.sent, 6);
    assert_eq!(c.delivered, 0);
    assert_eq!(c.dropped(DropReason::NotUdp), 1);
    assert_eq!(c.dropped(DropReason::BadSource), 1);
    assert_eq!(c.dropped(DropReason::UnknownAddress), 2, "past the NAT, then nowhere");
    assert_eq!(c.dropped(DropReason::TooBig), 1);
    assert_eq!(c.dropped(DropReason::Blackholed), 1);
    assert_eq!(c.dropped_total(), 6);
    assert!(w.net.endpoint(w.s1).received().is_empty());

    // A datagram to an unknown LAN address left through the NAT and died
    // on the internet, at the time it got there.
    let nobody = w
        .net
        .trace()
        .iter()
        .find(|r| r.data == b"nobody on the LAN")
        .expect("traced");
    assert_eq!(
        nobody.fate,
        Fate::Dropped {
            at: w.net.start() + ms(1),
            reason: DropReason::UnknownAddress
        }
    );
}
