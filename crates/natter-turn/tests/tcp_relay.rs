//! RFC 6062 TCP relays: Allocate with REQUESTED-TRANSPORT TCP, Connect,
//! ConnectionBind, ConnectionAttempt, and the lifetimes of peer
//! connections.

mod support;

use std::net::SocketAddr;

use natter_stun::*;
use natter_turn::{Event, FiveTuple, RelayTransport, Transport};
use support::*;

/// A TCP-relay allocation on a TCP control connection from `client`.
fn tcp_allocation(h: &mut Harness, client: &str) -> (Client, SocketAddr) {
    let mut c = Client::new(tcp(client), ALICE);
    let ar = h.transact(&mut c, Method::ALLOCATE, &tcp_transport).allocate_request();
    assert_eq!(ar.transport, RelayTransport::Tcp);
    assert_eq!(ar.client, c.five);
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(
        h.server.allocation(&c.five).map(|a| a.transport),
        Some(RelayTransport::Tcp)
    );
    (c, r.relayed()[0])
}

fn connect_request(c: &mut Client, peer: SocketAddr) -> Vec<u8> {
    c.request(Method::CONNECT, &move |w| w.add(&XorPeerAddress(peer)))
}

/// Sends Connect; returns the connection id the core asks the I/O layer to open.
#[track_caller]
fn connect(h: &mut Harness, c: &mut Client, peer: SocketAddr) -> (u32, SocketAddr) {
    let req = connect_request(c, peer);
    match h.send(c.five, &req) {
        Out::Connect { id, relay, peer: p } => {
            assert_eq!(p, peer);
            (id, relay)
        }
        other => panic!("expected ClientAction::Connect, got {other:?}"),
    }
}

/// Reports the outcome of a Connect as the I/O layer does.
fn finish_connect(h: &mut Harness, id: u32, connected: Option<SocketAddr>) -> Option<(FiveTuple, Reply)> {
    let mut reply = [0u8; 1500];
    let (client, n) = h.server.finish_connect(h.now, id, connected, &mut reply)?;
    assert!(n > 0);
    Some((client, Reply(reply[..n].to_vec())))
}

/// A peer opens a TCP connection to `relay`.
fn peer_connects(h: &mut Harness, relay: SocketAddr, peer: SocketAddr) -> Option<(u32, FiveTuple, Reply)> {
    let mut reply = [0u8; 1500];
    let (id, client, n) = h.server.handle_peer_connection(h.now, relay, peer, &mut reply)?;
    Some((id, client, Reply(reply[..n].to_vec())))
}

/// ConnectionBind for `id` on a new data connection from `data_client`.
fn connection_bind(h: &mut Harness, control: &Client, data_client: FiveTuple, id: u32) -> Out {
    let mut d = control.on(data_client);
    let req = d.request(Method::CONNECTION_BIND, &move |w| w.add(&ConnectionId(id)));
    h.send(d.five, &req)
}

#[track_caller]
fn expect_bound(out: Out, id: u32, key: &IntegrityKey) {
    match out {
        Out::BindConnection { id: bound, reply } => {
            assert_eq!(bound, id);
            reply.assert_success(Method::CONNECTION_BIND);
            assert_eq!(reply.verify(key), Ok(IntegrityKind::Sha1));
        }
        other => panic!("expected ClientAction::BindConnection, got {other:?}"),
    }
}

#[test]
fn tcp_allocation_over_tcp_and_tls() {
    let mut h = Harness::default_config();
    tcp_allocation(&mut h, "192.0.2.1:40000");
    let mut c = Client::new(five(Transport::Tls, "192.0.2.2:40000"), ALICE);
    let ar = h.transact(&mut c, Method::ALLOCATE, &tcp_transport).allocate_request();
    assert_eq!(ar.transport, RelayTransport::Tcp);
    assert_eq!(h.stats().error_responses, 2, "just the two 401 challenges");
}

#[test]
fn tcp_allocation_over_udp_is_400() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let r = h.allocate_with(&mut c, &tcp_transport);
    r.assert_error(Method::ALLOCATE, 400);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn connect_succeeds_with_connection_id() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    let req = connect_request(&mut c, peer);
    let Out::Connect {
        id,
        relay: from,
        peer: to,
    } = h.send(c.five, &req)
    else {
        panic!("expected ClientAction::Connect");
    };
    assert_eq!((from, to), (relay, peer));
    assert_ne!(id, 0);
    let (client, r) = finish_connect(&mut h, id, Some(peer)).expect("the allocation exists");
    assert_eq!(client, c.five);
    r.assert_success(Method::CONNECT);
    assert_eq!(r.tid(), tid_of(&req));
    assert_eq!(r.get::<ConnectionId>(), Some(ConnectionId(id)));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.server.allocation(&c.five).unwrap().connections.len(), 1);
}

#[test]
fn duplicate_connect_to_the_same_peer_is_446() {
    let mut h = Harness::default_config();
    let peer = addr(PEER_A);

    // While the first is being opened.
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let (id, _) = connect(&mut h, &mut c, peer);
    let req = connect_request(&mut c, peer);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::CONNECT, 446);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));

    // And once it is open.
    finish_connect(&mut h, id, Some(peer))
        .unwrap()
        .1
        .assert_success(Method::CONNECT);
    let req = connect_request(&mut c, peer);
    h.send(c.five, &req).reply().assert_error(Method::CONNECT, 446);
}

/// RFC 6062 §5.2: 446 is for a Connect "with the same XOR-PEER-ADDRESS"
/// as one in progress or established; Connects to different peers may be
/// in progress together.
#[test]
fn connect_to_another_peer_while_one_is_pending_is_allowed() {
    let mut h = Harness::default_config();
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let (first, _) = connect(&mut h, &mut c, addr(PEER_A));
    let req = connect_request(&mut c, addr(PEER_B));
    let out = h.send(c.five, &req);
    let Out::Connect { id: second, peer, .. } = out else {
        panic!("a Connect to a second peer while the first is pending was refused: {out:?}");
    };
    assert_eq!(peer, addr(PEER_B));
    assert_ne!(first, second);
}

#[test]
fn a_failed_connect_is_447_and_may_be_retried() {
    let mut h = Harness::default_config();
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    let req = connect_request(&mut c, peer);
    let Out::Connect { id, .. } = h.send(c.five, &req) else {
        panic!("expected ClientAction::Connect");
    };
    let (client, r) = finish_connect(&mut h, id, None).expect("the allocation exists");
    assert_eq!(client, c.five);
    r.assert_error(Method::CONNECT, 447);
    assert_eq!(r.tid(), tid_of(&req));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert!(h.server.allocation(&c.five).unwrap().connections.is_empty());
    // The id is gone.
    assert_eq!(finish_connect(&mut h, id, Some(peer)), None);
    expect_bad_bind(&mut h, &c, id);
    connect(&mut h, &mut c, peer);
}

#[track_caller]
fn expect_bad_bind(h: &mut Harness, control: &Client, id: u32) {
    let data = tcp(&format!(
        "{}:{}",
        control.five.client.ip(),
        control.five.client.port() + 100
    ));
    match connection_bind(h, control, data, id) {
        Out::Reply(r) => {
            r.assert_error(Method::CONNECTION_BIND, 400);
            assert_eq!(r.verify(&control.key()), Ok(IntegrityKind::Sha1));
        }
        other => panic!("expected 400 to ConnectionBind of {id:#x}, got {other:?}"),
    }
}

#[test]
fn connection_bind_on_a_new_connection_splices_it() {
    let mut h = Harness::default_config();
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    let (id, _) = connect(&mut h, &mut c, peer);
    finish_connect(&mut h, id, Some(peer)).unwrap();
    let out = connection_bind(&mut h, &c, tcp("192.0.2.1:40001"), id);
    expect_bound(out, id, &c.key());
    assert_eq!(h.server.allocation_count(), 1, "the data connection is no allocation");
    // Bound once only.
    expect_bad_bind(&mut h, &c, id);
    // A bound connection does not expire.
    h.advance_secs(60);
    assert!(!h.take_events().contains(&Event::ConnectionExpired { id }));
}

#[test]
fn connection_bind_errors() {
    let mut h = Harness::default_config();
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    let (id, _) = connect(&mut h, &mut c, peer);
    finish_connect(&mut h, id, Some(peer)).unwrap();

    // An id nobody has.
    expect_bad_bind(&mut h, &c, id.wrapping_add(1));
    // No CONNECTION-ID.
    let mut d = c.on(tcp("192.0.2.1:40002"));
    let req = d.request(Method::CONNECTION_BIND, &none);
    h.send(d.five, &req).reply().assert_error(Method::CONNECTION_BIND, 400);
    // Over UDP.
    match connection_bind(&mut h, &c, udp("192.0.2.1:40003"), id) {
        Out::Reply(r) => {
            r.assert_error(Method::CONNECTION_BIND, 400);
        }
        other => panic!("{other:?}"),
    }
    // Another user's credentials.
    let mut bob = Client::new(tcp("192.0.2.1:40004"), BOB);
    bob.nonce = c.nonce.clone();
    let req = bob.request(Method::CONNECTION_BIND, &move |w| w.add(&ConnectionId(id)));
    h.send(bob.five, &req)
        .reply()
        .assert_error(Method::CONNECTION_BIND, 441);
    // None of that took the connection: the owner still binds it.
    expect_bound(connection_bind(&mut h, &c, tcp("192.0.2.1:40005"), id), id, &c.key());
}

#[test]
fn a_peer_connection_with_a_permission_is_announced_with_connection_attempt() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    let incoming = addr("1.2.3.4:61000");
    let (id, client, r) = peer_connects(&mut h, relay, incoming).expect("the permission allows it");
    assert_eq!(client, c.five);
    assert_eq!(
        r.msg().message_type(),
        MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication)
    );
    assert_eq!(r.get::<XorPeerAddress>().map(|a| a.0), Some(incoming));
    assert_eq!(r.get::<ConnectionId>(), Some(ConnectionId(id)));
    expect_bound(connection_bind(&mut h, &c, tcp("192.0.2.1:40001"), id), id, &c.key());
}

#[test]
fn a_peer_connection_without_a_permission_is_refused() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let before = h.stats().no_permission;
    assert_eq!(peer_connects(&mut h, relay, addr(PEER_B)), None);
    assert_eq!(h.stats().no_permission, before + 1);
    // Not to an unknown relayed address.
    let unknown = SocketAddr::new(relay.ip(), relay.port() + 100);
    assert_eq!(peer_connects(&mut h, unknown, addr(PEER_A)), None);
    // Not to a UDP relay, even with a permission.
    let mut u = Client::new(udp("192.0.2.2:40000"), ALICE);
    let udp_relay = h.allocate(&mut u);
    h.create_permission(&mut u, &[addr(PEER_A)]);
    assert_eq!(peer_connects(&mut h, udp_relay, addr(PEER_A)), None);
    assert!(h.server.allocation(&c.five).unwrap().connections.is_empty());
}

#[test]
fn unbound_peer_connections_expire_after_30_seconds() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    let (outgoing, _) = connect(&mut h, &mut c, peer);
    finish_connect(&mut h, outgoing, Some(peer)).unwrap();
    let (incoming, _, _) = peer_connects(&mut h, relay, addr("1.2.3.4:61000")).unwrap();
    h.take_events();

    h.advance_secs(29);
    assert!(h.take_events().is_empty());
    h.advance_secs(1);
    let mut expired: Vec<u32> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            Event::ConnectionExpired { id } => id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    expired.sort_unstable();
    let mut both = vec![outgoing, incoming];
    both.sort_unstable();
    assert_eq!(expired, both);
    assert!(h.server.allocation(&c.five).unwrap().connections.is_empty());
    expect_bad_bind(&mut h, &c, outgoing);
    expect_bad_bind(&mut h, &c, incoming);
    // The peer is free again.
    connect(&mut h, &mut c, peer);
}

#[test]
fn closing_the_control_connection_ends_the_allocation_with_its_connections() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let (bound, _) = connect(&mut h, &mut c, addr(PEER_A));
    finish_connect(&mut h, bound, Some(addr(PEER_A))).unwrap();
    expect_bound(
        connection_bind(&mut h, &c, tcp("192.0.2.1:40001"), bound),
        bound,
        &c.key(),
    );
    let (waiting, _, _) = peer_connects(&mut h, relay, addr("1.2.3.4:61000")).unwrap();
    let (pending, _) = connect(&mut h, &mut c, addr(PEER_B));
    h.take_events();

    h.server.handle_client_closed(&c.five);
    let events = h.take_events();
    let [Event::AllocationClosed {
        client,
        relays,
        username,
        connections,
    }] = &events[..]
    else {
        panic!("expected one AllocationClosed, got {events:?}");
    };
    assert_eq!((client, relays, username.as_str()), (&c.five, &vec![relay], "alice"));
    let mut connections = connections.clone();
    connections.sort_unstable();
    let mut expected = vec![bound, waiting];
    expected.sort_unstable();
    assert_eq!(connections, expected);
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.stats().allocations_deleted, 1);
    // The Connect still being opened has nobody to answer.
    assert_eq!(finish_connect(&mut h, pending, Some(addr(PEER_B))), None);
    assert_eq!(peer_connects(&mut h, relay, addr("1.2.3.4:61001")), None);

    // Closing a connection without an allocation changes nothing.
    h.server.handle_client_closed(&tcp("192.0.2.1:40001"));
    assert!(h.take_events().is_empty());
    assert_eq!(h.stats().allocations_deleted, 1);
}

#[test]
fn a_closed_peer_connection_is_forgotten() {
    let mut h = Harness::default_config();
    let (mut c, relay) = tcp_allocation(&mut h, "192.0.2.1:40000");
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let (id, _, _) = peer_connects(&mut h, relay, addr(PEER_A)).unwrap();
    h.server.handle_peer_connection_closed(id);
    expect_bad_bind(&mut h, &c, id);
    h.server.handle_client_closed(&c.five);
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::AllocationClosed { connections, .. }] if connections.is_empty()),
        "{events:?}"
    );
}

#[test]
fn udp_only_methods_are_refused_on_a_tcp_allocation() {
    let mut h = Harness::default_config();
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.1:40000");
    let peer = addr(PEER_A);
    h.create_permission(&mut c, &[peer]);
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_error(Method::CHANNEL_BIND, 400);
    assert_eq!(h.send_indication(&mut c, peer, b"x"), Out::None);
    assert_eq!(h.channel_data(&c, 0x4000, b"x"), Out::None);
    assert_eq!(h.stats().relayed_to_peer, 0);
}

#[test]
fn connect_needs_a_tcp_allocation_and_a_peer() {
    let mut h = Harness::default_config();
    // No allocation.
    let mut n = Client::new(tcp("192.0.2.9:40000"), ALICE);
    h.transact(&mut n, Method::CONNECT, &|w| w.add(&XorPeerAddress(addr(PEER_A))))
        .reply()
        .assert_error(Method::CONNECT, 437);
    // A UDP allocation.
    let mut u = Client::new(tcp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut u);
    h.transact(&mut u, Method::CONNECT, &|w| w.add(&XorPeerAddress(addr(PEER_A))))
        .reply()
        .assert_error(Method::CONNECT, 400);
    // No XOR-PEER-ADDRESS.
    let (mut c, _) = tcp_allocation(&mut h, "192.0.2.2:40000");
    h.transact(&mut c, Method::CONNECT, &none)
        .reply()
        .assert_error(Method::CONNECT, 400);
}
