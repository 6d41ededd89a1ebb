//! Security defaults of the TURN core: the peer-address policy on every
//! relaying path, bandwidth caps, bounded permission tables, and the
//! protection of spoofed sources from unauthenticated replies.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use natter_stun::*;
use natter_turn::auth::Credentials;
use natter_turn::peer_filter::{IpRange, PeerFilter};
use natter_turn::{ServerConfig, Transport};
use support::*;

fn ranges(list: &[&str]) -> Vec<IpRange> {
    list.iter().map(|s| s.parse().expect("test range")).collect()
}

/// Allocate attributes for a relay of the peer's family.
fn family_attrs(transport: RequestedTransport, v6: bool) -> impl Fn(&mut MessageWriter<'_>) -> Result<(), Error> {
    move |w| {
        w.add(&transport)?;
        if v6 {
            w.add(&RequestedAddressFamily(AddressFamily::V6))?;
        }
        Ok(())
    }
}

/// Asserts that `target` is refused on every path a client can use to
/// reach a peer, with an allocation of its family, while a global peer of
/// the same family goes through.
fn refused_on_every_path(target: &str) {
    let ip: IpAddr = target.parse().expect("test address");
    let v6 = ip.is_ipv6();
    let peer = SocketAddr::new(ip, 80);
    let good = addr(if v6 { PEER_V6 } else { PEER_A });
    let mut cfg = config();
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);

    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let r = h.allocate_with(&mut c, &family_attrs(RequestedTransport::UDP, v6));
    r.assert_success(Method::ALLOCATE);
    let relay = r.relayed()[0];
    assert_eq!(relay.is_ipv6(), v6, "{target}: the relay must be of the peer's family");

    // CreatePermission: 403, signed.
    let denied = h.stats().denied_peer;
    let r = h.create_permission(&mut c, &[peer]);
    r.assert_error(Method::CREATE_PERMISSION, 403);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.stats().denied_peer, denied + 1, "{target}: CreatePermission counted");
    // One bad peer fails the whole request: the good one is not installed.
    h.create_permission(&mut c, &[good, peer])
        .assert_error(Method::CREATE_PERMISSION, 403);
    assert_eq!(
        h.send_indication(&mut c, good, b"x"),
        Out::None,
        "{target}: nothing installed"
    );

    // ChannelBind: 403.
    let denied = h.stats().denied_peer;
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_error(Method::CHANNEL_BIND, 403);
    assert_eq!(h.stats().denied_peer, denied + 1, "{target}: ChannelBind counted");

    // Now a legitimate permission and channel exist on the allocation.
    h.create_permission(&mut c, &[good])
        .assert_success(Method::CREATE_PERMISSION);
    h.channel_bind(&mut c, 0x4001, good)
        .assert_success(Method::CHANNEL_BIND);

    // Send indication: dropped and counted.
    let denied = h.stats().denied_peer;
    let relayed = h.stats().relayed_to_peer;
    assert_eq!(h.send_indication(&mut c, peer, b"x"), Out::None, "{target}: Send");
    assert_eq!(h.stats().denied_peer, denied + 1, "{target}: Send counted");
    // ChannelData: the channel could not be bound, so nothing goes anywhere.
    assert_eq!(h.channel_data(&c, 0x4000, b"x"), Out::None, "{target}: ChannelData");
    assert_eq!(h.stats().relayed_to_peer, relayed);
    // Nor does anything from it reach the client.
    assert_eq!(h.peer_data(relay, peer, b"x"), None, "{target}: inbound");

    // The good peer works on both paths (the refusals above are the policy's).
    assert_eq!(
        h.send_indication(&mut c, good, b"ok").relay(),
        (relay, good, b"ok".to_vec())
    );
    assert_eq!(h.channel_data(&c, 0x4001, b"ok").relay(), (relay, good, b"ok".to_vec()));

    // Connect on a TCP allocation: 403 and no connection attempt.
    let mut t = c.on(tcp("192.0.2.1:40001"));
    let r = h.allocate_with(&mut t, &family_attrs(RequestedTransport::TCP, v6));
    r.assert_success(Method::ALLOCATE);
    let denied = h.stats().denied_peer;
    let r = h
        .transact(&mut t, Method::CONNECT, &|w| w.add(&XorPeerAddress(peer)))
        .reply();
    r.assert_error(Method::CONNECT, 403);
    assert_eq!(r.verify(&t.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.stats().denied_peer, denied + 1, "{target}: Connect counted");
    match h.transact(&mut t, Method::CONNECT, &|w| w.add(&XorPeerAddress(good))) {
        Out::Connect { peer, .. } => assert_eq!(peer, good),
        other => panic!("{target}: Connect to a global peer: {other:?}"),
    }
}

macro_rules! refused {
    ($($name:ident: $ip:expr;)*) => {$(
        #[test]
        fn $name() {
            refused_on_every_path($ip);
        }
    )*};
}

refused! {
    unspecified_ipv4_is_refused_on_every_path: "0.0.0.0";
    unspecified_ipv6_is_refused_on_every_path: "::";
    loopback_ipv6_is_refused_on_every_path: "::1";
    ipv4_mapped_loopback_is_refused_on_every_path: "::ffff:127.0.0.1";
    ipv4_compatible_loopback_is_refused_on_every_path: "::127.0.0.1";
    nat64_loopback_is_refused_on_every_path: "64:ff9b::7f00:1";
    six_to_four_loopback_is_refused_on_every_path: "2002:7f00:1::";
    cloud_metadata_is_refused_on_every_path: "169.254.169.254";
    private_ipv4_is_refused_on_every_path: "10.0.0.1";
    loopback_ipv4_is_refused_on_every_path: "127.0.0.1";
}

#[test]
fn an_ipv6_peer_on_an_ipv4_allocation_is_443() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    for peer in ["[::ffff:127.0.0.1]:80", PEER_V6] {
        h.create_permission(&mut c, &[addr(peer)])
            .assert_error(Method::CREATE_PERMISSION, 443);
        assert_eq!(h.send_indication(&mut c, addr(peer), b"x"), Out::None);
    }
    assert_eq!(h.stats().relayed_to_peer, 0);
}

fn with_filter(filter: PeerFilter) -> Harness {
    let mut cfg = config();
    cfg.peer_filter = filter;
    Harness::new(cfg)
}

#[test]
fn allow_listed_loopback_is_relayed() {
    let mut h = with_filter(PeerFilter::new(ranges(&["127.0.0.0/8"]), vec![], vec![addr(SERVER)]));
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr("127.0.0.1:9000");
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    assert_eq!(
        h.send_indication(&mut c, peer, b"local").relay(),
        (relay, peer, b"local".to_vec())
    );
    let (to, framed) = h.peer_data(relay, peer, b"back").unwrap();
    assert_eq!((to, data_indication(&framed)), (c.five, (peer, b"back".to_vec())));
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_success(Method::CHANNEL_BIND);
    assert_eq!(h.channel_data(&c, 0x4000, b"ch").relay(), (relay, peer, b"ch".to_vec()));

    let mut t = c.on(tcp("192.0.2.1:40001"));
    h.allocate_with(&mut t, &tcp_transport).assert_success(Method::ALLOCATE);
    assert!(matches!(
        h.transact(&mut t, Method::CONNECT, &|w| w.add(&XorPeerAddress(peer))),
        Out::Connect { .. }
    ));

    // Only the allowed range: other private space is still refused.
    h.create_permission(&mut c, &[addr("10.0.0.1:80")])
        .assert_error(Method::CREATE_PERMISSION, 403);
}

#[test]
fn a_service_address_is_refused_even_when_allow_listed() {
    let services = vec![addr("127.0.0.1:3478"), addr("0.0.0.0:9090"), addr(SERVER)];
    let filter = PeerFilter::new(ranges(&["127.0.0.0/8", "0.0.0.0/8", "192.0.2.0/24"]), vec![], services);
    let mut h = with_filter(filter);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let mut t = c.on(tcp("192.0.2.1:40001"));
    h.allocate_with(&mut t, &tcp_transport).assert_success(Method::ALLOCATE);

    for (i, service) in [
        "127.0.0.1:3478",   // the listener itself
        "0.0.0.0:3478",     // the unspecified address reaches the host
        "127.0.0.1:9090",   // loopback reaches a wildcard listener
        "0.0.0.0:9090",     //
        "192.0.2.200:9090", // so does any service IP
        "192.0.2.200:3478", // the TURN listener
    ]
    .into_iter()
    .enumerate()
    {
        let peer = addr(service);
        h.create_permission(&mut c, &[peer])
            .assert_error(Method::CREATE_PERMISSION, 403);
        h.channel_bind(&mut c, 0x4000 + i as u16, peer)
            .assert_error(Method::CHANNEL_BIND, 403);
        h.transact(&mut t, Method::CONNECT, &|w| w.add(&XorPeerAddress(peer)))
            .reply()
            .assert_error(Method::CONNECT, 403);
    }

    // A permission is for a whole IP, but the listener's port stays out
    // of reach on every packet.
    let other_port = addr("127.0.0.1:9000");
    h.create_permission(&mut c, &[other_port])
        .assert_success(Method::CREATE_PERMISSION);
    let denied = h.stats().denied_peer;
    assert_eq!(h.send_indication(&mut c, addr("127.0.0.1:3478"), b"x"), Out::None);
    assert_eq!(h.send_indication(&mut c, addr("127.0.0.1:9090"), b"x"), Out::None);
    assert_eq!(h.stats().denied_peer, denied + 2);
    assert_eq!(
        h.send_indication(&mut c, other_port, b"x").relay(),
        (relay, other_port, b"x".to_vec())
    );
}

#[test]
fn relaying_to_another_allocations_relayed_address_works_when_its_ip_is_allowed() {
    // The relays share their IP with the TURN listener.
    let listener = addr("198.51.100.1:3478");
    let filter = PeerFilter::new(ranges(&["198.51.100.0/24"]), vec![], vec![listener]);
    let mut h = with_filter(filter);
    let mut a = Client::new(udp("192.0.2.1:40000"), ALICE);
    let mut b = Client::new(udp("192.0.2.2:40000"), BOB);
    let ra = h.allocate(&mut a);
    let rb = h.allocate(&mut b);
    assert_eq!(ra.ip(), listener.ip());
    h.create_permission(&mut a, &[rb])
        .assert_success(Method::CREATE_PERMISSION);
    h.create_permission(&mut b, &[ra])
        .assert_success(Method::CREATE_PERMISSION);

    // A -> B with a Send indication; the I/O layer hands the datagram to B's relay.
    let (from, to, data) = h.send_indication(&mut a, rb, b"hello b").relay();
    assert_eq!((from, to), (ra, rb));
    let (client, framed) = h.peer_data(to, from, &data).expect("delivered to B");
    assert_eq!(client, b.five);
    assert_eq!(data_indication(&framed), (ra, b"hello b".to_vec()));

    // B -> A over a channel.
    h.channel_bind(&mut b, 0x4000, ra).assert_success(Method::CHANNEL_BIND);
    let (from, to, data) = h.channel_data(&b, 0x4000, b"hello a").relay();
    assert_eq!((from, to), (rb, ra));
    let (client, framed) = h.peer_data(to, from, &data).expect("delivered to A");
    assert_eq!(client, a.five);
    assert_eq!(data_indication(&framed), (rb, b"hello a".to_vec()));

    // The listener on the same IP stays out of reach.
    h.create_permission(&mut a, &[listener])
        .assert_error(Method::CREATE_PERMISSION, 403);
    assert_eq!(h.send_indication(&mut a, listener, b"x"), Out::None);
}

#[test]
fn relayed_addresses_in_special_purpose_space_are_refused_by_default() {
    // The same set-up without the allow-list: 198.51.100.0/24 is TEST-NET-2.
    let mut h = Harness::default_config();
    let mut a = Client::new(udp("192.0.2.1:40000"), ALICE);
    let mut b = Client::new(udp("192.0.2.2:40000"), BOB);
    h.allocate(&mut a);
    let rb = h.allocate(&mut b);
    h.create_permission(&mut a, &[rb])
        .assert_error(Method::CREATE_PERMISSION, 403);
}

#[test]
fn the_permission_table_is_bounded() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    let peers: Vec<SocketAddr> = (0..1024u32)
        .map(|i| SocketAddr::new(IpAddr::from((0x0100_0000 + i).to_be_bytes()), 5000))
        .collect();
    for chunk in peers.chunks(256) {
        h.create_permission(&mut c, chunk)
            .assert_success(Method::CREATE_PERMISSION);
    }
    let r = h.create_permission(&mut c, &[addr(PEER_B)]);
    r.assert_error(Method::CREATE_PERMISSION, 508);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.send_indication(&mut c, addr(PEER_B), b"x"), Out::None);
    // Refreshing an installed one still works.
    h.create_permission(&mut c, &peers[..1])
        .assert_success(Method::CREATE_PERMISSION);
}

/// 1023 distinct peer IPs, leaving room for one more permission.
fn fill_permissions(h: &mut Harness, c: &mut Client) {
    let peers: Vec<SocketAddr> = (0..1023u32)
        .map(|i| SocketAddr::new(IpAddr::from((0x0100_0000 + i).to_be_bytes()), 5000))
        .collect();
    for chunk in peers.chunks(256) {
        h.create_permission(c, chunk).assert_success(Method::CREATE_PERMISSION);
    }
}

/// RFC 8656 §10.2: a CreatePermission the server cannot fulfil is
/// refused (508) as a whole; it must not install part of its list.
#[test]
fn a_create_permission_refused_for_capacity_installs_nothing() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    fill_permissions(&mut h, &mut c);
    h.create_permission(&mut c, &[addr(PEER_A), addr(PEER_B)])
        .assert_error(Method::CREATE_PERMISSION, 508);
    assert_eq!(
        h.send_indication(&mut c, addr(PEER_A), b"x"),
        Out::None,
        "the refused request installed a permission for its first peer"
    );
}

/// A ChannelBind refused for capacity (508) must not take the channel:
/// the number stays free for another peer.
#[test]
fn a_channel_bind_refused_for_capacity_takes_no_channel() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.refresh(&mut c, Some(3600));
    fill_permissions(&mut h, &mut c);
    h.create_permission(&mut c, &[addr(PEER_B)])
        .assert_success(Method::CREATE_PERMISSION);
    h.channel_bind(&mut c, 0x4000, addr(PEER_A))
        .assert_error(Method::CHANNEL_BIND, 508);
    // Channel 0x4000 was never bound, so it can go to a peer with room.
    h.channel_bind(&mut c, 0x4000, addr(PEER_B))
        .assert_success(Method::CHANNEL_BIND);
}

#[test]
fn bandwidth_cap_drops_over_rate_traffic_both_ways() {
    let mut cfg = config();
    cfg.max_bps = 8_000; // 1000 bytes per second, a second's worth of burst
    let mut h = Harness::new(cfg);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    h.channel_bind(&mut c, 0x4000, peer);
    let chunk = [0x55u8; 250];
    for _ in 0..3 {
        h.send_indication(&mut c, peer, &chunk).relay();
    }
    h.channel_data(&c, 0x4000, &chunk).relay();
    assert_eq!(h.send_indication(&mut c, peer, &chunk), Out::None);
    assert_eq!(h.channel_data(&c, 0x4000, &chunk), Out::None);
    assert_eq!(
        h.peer_data(relay, peer, &chunk[..10]),
        None,
        "the cap covers both directions"
    );
    assert_eq!(h.stats().over_bandwidth, 3);
    assert_eq!(h.stats().relayed_to_peer, 4);
    assert_eq!(h.stats().relayed_to_peer_bytes, 1000);

    // Half a second refills half the budget.
    h.advance(Duration::from_millis(500));
    h.send_indication(&mut c, peer, &chunk).relay();
    assert!(h.peer_data(relay, peer, &chunk).is_some());
    assert_eq!(h.send_indication(&mut c, peer, &chunk[..1]), Out::None);
    assert_eq!(h.stats().over_bandwidth, 4);

    // Each allocation has its own budget.
    let mut d = Client::new(udp("192.0.2.2:40000"), ALICE);
    h.allocate(&mut d);
    h.create_permission(&mut d, &[peer]);
    h.send_indication(&mut d, peer, &[0; 1000]).relay();
}

#[test]
fn without_a_cap_nothing_is_dropped_for_bandwidth() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    h.create_permission(&mut c, &[peer]);
    for _ in 0..200 {
        h.send_indication(&mut c, peer, &[1; 1200]).relay();
        assert!(h.peer_data(relay, peer, &[2; 1200]).is_some());
    }
    assert_eq!(h.stats().over_bandwidth, 0);
}

#[test]
fn unauthenticated_replies_to_one_source_are_rate_limited() {
    let mut h = Harness::default_config();
    let mut s = Client::new(udp("192.0.2.1:40000"), ALICE);
    let burst = 20;
    let mut answered = 0;
    for _ in 0..burst + 5 {
        let req = s.unauthenticated(Method::ALLOCATE, &udp_transport);
        match h.send(s.five, &req) {
            Out::Reply(r) => {
                r.assert_error(Method::ALLOCATE, 401);
                s.learn(&r);
                answered += 1;
            }
            Out::None => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, burst);
    assert_eq!(h.stats().unauthenticated_replies_suppressed, 5);
    // Every source is limited on its own IP, whatever the port.
    let mut same_ip = Client::new(udp("192.0.2.1:40001"), ALICE);
    let req = same_ip.unauthenticated(Method::BINDING, &none);
    assert_eq!(h.send(same_ip.five, &req), Out::None);
    let mut other = Client::new(udp("192.0.2.2:40000"), ALICE);
    let req = other.unauthenticated(Method::ALLOCATE, &udp_transport);
    h.send(other.five, &req).reply().assert_error(Method::ALLOCATE, 401);
    // A source proves itself with MESSAGE-INTEGRITY: its nonce still works.
    h.allocate(&mut s);

    // Tokens come back at 5 per second.
    h.advance_secs(1);
    let mut answered = 0;
    for _ in 0..10 {
        let req = s.unauthenticated(Method::BINDING, &none);
        if let Out::Reply(r) = h.send(s.five, &req) {
            r.assert_success(Method::BINDING);
            answered += 1;
        }
    }
    assert_eq!(answered, 5);

    // Over TCP the source is not spoofable, so nothing is withheld.
    let mut t = Client::new(tcp("192.0.2.1:40002"), ALICE);
    let before = h.stats().unauthenticated_replies_suppressed;
    for _ in 0..50 {
        let req = t.unauthenticated(Method::ALLOCATE, &udp_transport);
        h.send(t.five, &req).reply().assert_error(Method::ALLOCATE, 401);
    }
    assert_eq!(h.stats().unauthenticated_replies_suppressed, before);
}

#[test]
fn a_20_byte_binding_request_gets_its_32_byte_reply() {
    let mut h = Harness::default_config();
    let from = udp("192.0.2.1:40000");
    let request = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let r = h.send(from, &request).reply();
    assert_eq!(r.0.len(), 32);
    r.assert_success(Method::BINDING);
    assert_eq!(r.tid(), TransactionId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    assert_eq!(r.get::<XorMappedAddress>().unwrap().0, from.client);
    assert!(!r.msg().has_fingerprint());
    assert_eq!(h.stats().binding_requests, 1);
    assert_eq!(h.stats().unauthenticated_replies_suppressed, 0);

    // From IPv6, 44 bytes.
    let from = udp("[2001:db8::5]:40000");
    let r = h.send(from, &request).reply();
    assert_eq!(r.0.len(), 44);
    assert_eq!(r.get::<XorMappedAddress>().unwrap().0, from.client);
}

#[test]
fn a_udp_reply_to_an_unauthenticated_request_stays_within_the_allowance() {
    // With a short realm the allowance is 128 bytes.
    let h = Harness::new(config());
    assert_eq!(h.server.unauthenticated_allowance(), 128);

    // A long realm makes the 401 bigger than a minimal Allocate: the
    // allowance grows to the challenge, so such clients can still log in,
    // and no unauthenticated reply is larger than it.
    let realm = "r".repeat(100);
    let mut creds = Credentials::new(&realm);
    creds.add_user(ALICE.0, ALICE.1).unwrap();
    let mut h = Harness::new(ServerConfig::new(creds, [7; 32], [9; 32]));
    let allowance = h.server.unauthenticated_allowance();
    assert!(allowance > 128);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    c.fingerprint = false;
    let small = c.unauthenticated(Method::ALLOCATE, &udp_transport);
    assert_eq!(small.len(), 28);
    let r = h.send(c.five, &small).reply();
    r.assert_error(Method::ALLOCATE, 401);
    assert_eq!(r.realm(), Some(realm.clone()));
    assert!(r.0.len() <= allowance, "{} > {allowance}", r.0.len());

    // A reply that would exceed both the request and the allowance (420
    // listing many unknown attributes of a small request cannot, so build
    // a request whose 420 lists 16 types) is withheld over UDP.
    let before = h.stats().unauthenticated_replies_suppressed;
    let unknown = c.unauthenticated(Method::BINDING, &|w| {
        for t in 0x7000..0x7010u16 {
            w.add_raw(t, &[])?;
        }
        Ok(())
    });
    match h.send(c.five, &unknown) {
        Out::Reply(r) => assert!(r.0.len() <= unknown.len().max(allowance)),
        Out::None => assert_eq!(h.stats().unauthenticated_replies_suppressed, before + 1),
        other => panic!("unexpected {other:?}"),
    }

    // Over TCP the small request is answered too.
    let mut t = Client::new(five(Transport::Tcp, "192.0.2.1:40001"), ALICE);
    t.fingerprint = false;
    let small = t.unauthenticated(Method::ALLOCATE, &udp_transport);
    h.send(t.five, &small).reply().assert_error(Method::ALLOCATE, 401);
}
