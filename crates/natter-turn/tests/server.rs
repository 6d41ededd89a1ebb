//! The TURN core under a virtual clock: authentication, Allocate and its
//! options, Refresh and lifetimes, permissions, channels and relaying in
//! both directions (RFC 8656, RFC 8489 §9.2).

mod support;

use natter_stun::*;
use natter_turn::auth::{rest_credentials, Credentials};
use natter_turn::{AllocateOutcome, Event, RelayTransport, ServerConfig, Transport};
use support::*;

// ---------------------------------------------------------------------------
// Authentication (RFC 8489 §9.2)
// ---------------------------------------------------------------------------

#[test]
fn first_allocate_is_challenged_with_realm_nonce_and_password_algorithms() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let req = c.unauthenticated(Method::ALLOCATE, &udp_transport);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::ALLOCATE, 401);
    assert_eq!(r.tid(), tid_of(&req));
    assert_eq!(r.realm().as_deref(), Some(REALM));
    let nonce = r.nonce().expect("401 carries NONCE");
    let features = SecurityFeatures::from_nonce(&nonce).expect("the nonce starts with the security-feature cookie");
    assert!(features.password_algorithms);
    assert!(features.username_anonymity, "only static users: USERHASH is offered");
    let offered: Vec<_> = r
        .get::<PasswordAlgorithms>()
        .expect("401 carries PASSWORD-ALGORITHMS")
        .iter()
        .collect();
    assert_eq!(offered, [PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5]);
    assert!(!r.msg().has_integrity(), "a challenge cannot be signed");
    assert!(
        r.msg().has_fingerprint(),
        "the request had FINGERPRINT, so the reply has one"
    );
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.stats().error_responses, 1);
    assert_eq!(h.stats().requests, 1);
}

#[test]
fn allocate_with_md5_key_gets_relayed_lifetime_and_mapped_addresses() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let ar = h.send(c.five, &req).allocate_request();
    assert_eq!(ar.client, c.five);
    assert_eq!(ar.username, "alice");
    assert_eq!(ar.transport, RelayTransport::Udp);
    assert_eq!(ar.family, AddressFamily::V4);
    assert!(!ar.additional_ipv6);
    assert_eq!(ar.even_port, None);
    assert_eq!(ar.reservation, None);
    assert!(!ar.dont_fragment);
    assert_eq!(
        h.server.allocation_count(),
        0,
        "nothing exists until the I/O layer has bound"
    );

    let relay = h.fresh_relay(false);
    let r = h.finish(
        &ar,
        AllocateOutcome::Bound {
            relay,
            additional: None,
            reservation: None,
        },
    );
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.tid(), tid_of(&req));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    let bob = Client::new(c.five, BOB);
    assert_eq!(r.verify(&bob.key()), Err(Error::IntegrityMismatch));
    assert_eq!(r.relayed(), [relay]);
    assert_eq!(r.lifetime(), Some(600));
    assert_eq!(r.get::<XorMappedAddress>().map(|a| a.0), Some(c.five.client));
    assert!(r.get::<Software>().is_some());
    assert_eq!(h.server.allocation_count(), 1);
    assert_eq!(
        h.server.allocation(&c.five).map(|a| a.relays.clone()),
        Some(vec![relay])
    );
    assert_eq!(h.stats().allocations_created, 1);
}

#[test]
fn dont_fragment_is_passed_to_the_io_layer() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&DontFragment)
        })
        .allocate_request();
    assert!(ar.dont_fragment);
}

#[test]
fn allocate_with_sha256_password_algorithm_and_message_integrity_sha256() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    c.negotiate = true;
    c.algorithm = PasswordAlgorithm::Sha256;
    c.sha256_integrity = true;
    let r = h.allocate_with(&mut c, &udp_transport);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(
        r.verify(&c.key()),
        Ok(IntegrityKind::Sha256),
        "answered in the request's kind"
    );
    let md5 = IntegrityKey::long_term(ALICE.0, REALM, ALICE.1, PasswordAlgorithm::Md5).unwrap();
    assert_eq!(
        r.verify(&md5),
        Err(Error::IntegrityMismatch),
        "signed with the SHA-256 key"
    );

    // The SHA-256 key with MESSAGE-INTEGRITY (HMAC-SHA1) is also fine.
    let mut d = Client::new(udp("192.0.2.2:40000"), ALICE);
    d.negotiate = true;
    d.algorithm = PasswordAlgorithm::Sha256;
    let r = h.allocate_with(&mut d, &udp_transport);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.verify(&d.key()), Ok(IntegrityKind::Sha1));
}

#[test]
fn password_algorithm_without_the_servers_list_is_400() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let cases: [(&str, Attrs<'_>); 3] = [
        ("PASSWORD-ALGORITHM alone", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&PasswordAlgorithm::Md5)
        }),
        ("PASSWORD-ALGORITHMS alone", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&PasswordAlgorithms::new(&[
                PasswordAlgorithm::Sha256,
                PasswordAlgorithm::Md5,
            ]))
        }),
        ("a list that is not the server's", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&PasswordAlgorithms::new(&[
                PasswordAlgorithm::Md5,
                PasswordAlgorithm::Sha256,
            ]))?;
            w.add(&PasswordAlgorithm::Md5)
        }),
    ];
    for (what, attrs) in cases {
        let req = c.request(Method::ALLOCATE, attrs);
        match h.send(c.five, &req) {
            Out::Reply(r) => {
                r.assert_error(Method::ALLOCATE, 400);
            }
            other => panic!("{what}: expected 400, got {other:?}"),
        }
    }
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn userhash_replaces_username() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    c.userhash = true;
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    assert!(!Message::decode(&req).unwrap().has(attribute::USERNAME));
    let ar = h.send(c.five, &req).allocate_request();
    assert_eq!(ar.username, "alice", "USERHASH resolved to the user");
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));

    // A hash of nobody is a 401.
    let mut m = Client::new(udp("192.0.2.2:40000"), ("mallory", "x"));
    m.userhash = true;
    let before = h.stats().auth_failures;
    h.allocate_with(&mut m, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);
    assert_eq!(h.stats().auth_failures, before + 1);
}

#[test]
fn wrong_password_is_401_with_a_fresh_challenge() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), (ALICE.0, "not-her-password"));
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::ALLOCATE, 401);
    assert_eq!(r.realm().as_deref(), Some(REALM));
    assert!(r.nonce().is_some());
    assert!(!r.msg().has_integrity());
    assert_eq!(h.stats().auth_failures, 1);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn unknown_user_is_401() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ("mallory", "guess"));
    h.allocate_with(&mut c, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);
    assert_eq!(h.stats().auth_failures, 1);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn forged_or_foreign_nonce_is_438_with_a_new_nonce() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let good = c.nonce.clone().unwrap();

    c.nonce = Some(format!("{}AAAAAAAAAAAAAAAA", &good[..13]));
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::ALLOCATE, 438);
    assert_eq!(r.realm().as_deref(), Some(REALM));
    let fresh = r.nonce().expect("438 carries a new NONCE");
    assert_ne!(fresh, *c.nonce.as_ref().unwrap());
    assert!(r.get::<PasswordAlgorithms>().is_some());
    assert_eq!(h.stats().stale_nonces, 1);

    // A nonce minted for another client's IP is stale here too.
    let mut other = Client::new(udp("192.0.2.77:40000"), ALICE);
    other.nonce = Some(good);
    let req = other.request(Method::ALLOCATE, &udp_transport);
    h.send(other.five, &req).reply().assert_error(Method::ALLOCATE, 438);
    assert_eq!(h.stats().stale_nonces, 2);

    // With the nonce from the 438 the request goes through.
    c.learn(&r);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    h.send(c.five, &req).allocate_request();
}

#[test]
fn expired_nonce_is_438_with_a_new_nonce() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let minted = c.nonce.clone().unwrap();
    // Still valid just before the 600 s nonce lifetime ends.
    h.advance_secs(599);
    h.allocate(&mut c);
    h.advance_secs(1);
    let req = c.request(Method::REFRESH, &none);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::REFRESH, 438);
    let fresh = r.nonce().expect("438 carries a new NONCE");
    assert_ne!(fresh, minted);
    assert_eq!(h.stats().stale_nonces, 1);
    c.learn(&r);
    let req = c.request(Method::REFRESH, &none);
    h.send(c.five, &req).reply().assert_success(Method::REFRESH);
}

#[test]
fn realm_mismatch_is_401_naming_the_servers_realm() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    c.realm = "evil.test".to_owned();
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::ALLOCATE, 401);
    assert_eq!(r.realm().as_deref(), Some(REALM));
    assert_eq!(h.stats().auth_failures, 1);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn allocate_retransmission_gets_the_same_success_and_a_new_transaction_gets_437() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let ar = h.send(c.five, &req).allocate_request();
    let outcome = h.bind(&ar);
    let first = h.finish(&ar, outcome);
    first.assert_success(Method::ALLOCATE);

    let again = h.send(c.five, &req).reply();
    again.assert_success(Method::ALLOCATE);
    assert_eq!(again.tid(), first.tid());
    assert_eq!(again.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(again.relayed(), first.relayed());
    assert_eq!(again.lifetime(), first.lifetime());
    assert_eq!(again.get::<XorMappedAddress>(), first.get::<XorMappedAddress>());

    let other = c.request(Method::ALLOCATE, &udp_transport);
    let r = h.send(c.five, &other).reply();
    r.assert_error(Method::ALLOCATE, 437);
    assert_eq!(
        r.verify(&c.key()),
        Ok(IntegrityKind::Sha1),
        "errors after authentication are signed"
    );
    assert_eq!(h.stats().allocations_created, 1);
    assert_eq!(h.server.allocation_count(), 1);
}

/// RFC 8656 §7.2: a retransmitted Allocate must not create a second
/// allocation. The I/O layer may take a while to bind (it consults the
/// quota ledger, binds sockets); a retransmission arriving meanwhile must
/// not make the core ask it to bind a second relayed address for the same
/// 5-tuple, which would leak (never reported in any `AllocationClosed`).
#[test]
fn allocate_retransmitted_while_binding_does_not_bind_twice() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &udp_transport);
    let ar = h.send(c.five, &req).allocate_request();
    let second = h.send(c.five, &req);
    let mut bound = vec![];
    let outcome = h.bind(&ar);
    if let AllocateOutcome::Bound { relay, .. } = outcome {
        bound.push(relay);
    }
    h.finish(&ar, outcome).assert_success(Method::ALLOCATE);
    if let Out::Allocate(ar2) = &second {
        let outcome = h.bind(ar2);
        if let AllocateOutcome::Bound { relay, .. } = outcome {
            bound.push(relay);
        }
        h.finish(ar2, outcome);
    }
    // Every relayed address the I/O layer bound must be released when the
    // allocation ends.
    h.refresh(&mut c, Some(0)).assert_success(Method::REFRESH);
    let released: Vec<_> = h
        .take_events()
        .into_iter()
        .flat_map(|e| match e {
            Event::AllocationClosed { relays, .. } => relays,
            _ => vec![],
        })
        .collect();
    assert_eq!(
        released, bound,
        "a retransmission during binding made the core ask for a second relay ({second:?}) that is never released"
    );
}

fn rest_config(secrets: &[&str]) -> ServerConfig {
    let mut creds = Credentials::new(REALM);
    for s in secrets {
        creds.add_secret(s);
    }
    ServerConfig::new(creds, [7; 32], [9; 32])
}

#[test]
fn rest_credentials_allocate_until_they_expire() {
    let mut h = Harness::new(rest_config(&["s3cret"]));
    let (user, pass) = rest_credentials("s3cret", "carol", UNIX_START + 100);
    let mut c = Client::new(udp("192.0.2.1:40000"), (&user, &pass));
    let challenge = h.challenge(&mut c);
    let features = SecurityFeatures::from_nonce(&challenge.nonce().unwrap()).unwrap();
    assert!(!features.username_anonymity, "USERHASH cannot resolve REST usernames");
    h.allocate(&mut c);

    // The user-less form, just the expiry time.
    let (user2, pass2) = rest_credentials("s3cret", "", UNIX_START + 100);
    assert!(!user2.contains(':'));
    h.allocate(&mut Client::new(udp("192.0.2.2:40000"), (&user2, &pass2)));

    // The right username with another password, or minted with another secret.
    let mut wrong = Client::new(udp("192.0.2.3:40000"), (&user, "bm90IGl0"));
    h.allocate_with(&mut wrong, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);
    let (user3, pass3) = rest_credentials("not-the-secret", "carol", UNIX_START + 100);
    let mut foreign = Client::new(udp("192.0.2.4:40000"), (&user3, &pass3));
    h.allocate_with(&mut foreign, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);

    // Already expired at the start.
    let (old, old_pass) = rest_credentials("s3cret", "carol", UNIX_START - 1);
    let mut stale = Client::new(udp("192.0.2.5:40000"), (&old, &old_pass));
    h.allocate_with(&mut stale, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);

    // The virtual clock drives the wall-clock time the server compares with.
    h.advance_secs(99);
    h.allocate(&mut Client::new(udp("192.0.2.6:40000"), (&user, &pass)));
    h.advance_secs(1);
    let mut late = Client::new(udp("192.0.2.7:40000"), (&user, &pass));
    h.allocate_with(&mut late, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);
    assert_eq!(h.server.allocation_count(), 3);
}

#[test]
fn two_rest_secrets_both_work() {
    let mut h = Harness::new(rest_config(&["old", "new"]));
    let expiry = UNIX_START + 3600;
    for (i, secret) in ["old", "new"].into_iter().enumerate() {
        let (user, pass) = rest_credentials(secret, "dave", expiry);
        let mut c = Client::new(udp(&format!("192.0.2.{}:40000", i + 1)), (&user, &pass));
        h.allocate(&mut c);
    }
    let (user, pass) = rest_credentials("retired", "dave", expiry);
    let mut c = Client::new(udp("192.0.2.9:40000"), (&user, &pass));
    h.allocate_with(&mut c, &udp_transport)
        .assert_error(Method::ALLOCATE, 401);
    assert_eq!(h.server.allocation_count(), 2);
}

#[test]
fn another_user_on_the_same_five_tuple_gets_441() {
    let mut h = Harness::default_config();
    let mut alice = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut alice);
    let mut bob = Client::new(alice.five, BOB);
    bob.nonce = alice.nonce.clone();
    let before = h.stats().auth_failures;
    for method in [Method::REFRESH, Method::ALLOCATE, Method::CREATE_PERMISSION] {
        let r = h
            .transact(&mut bob, method, &|w| {
                if method == Method::CREATE_PERMISSION {
                    w.add(&XorPeerAddress(addr(PEER_A)))?;
                }
                w.add(&RequestedTransport::UDP)
            })
            .reply();
        r.assert_error(method, 441);
    }
    assert_eq!(h.stats().auth_failures, before + 3);
    // Alice's allocation is untouched.
    assert_eq!(
        h.server.allocation(&alice.five).map(|a| a.username.as_str()),
        Some("alice")
    );
    h.refresh(&mut alice, None).assert_success(Method::REFRESH);
}

// ---------------------------------------------------------------------------
// Refresh and lifetimes (RFC 8656 §7.2, §8)
// ---------------------------------------------------------------------------

#[test]
fn lifetimes_are_clamped_to_600_through_3600() {
    let mut h = Harness::default_config();
    for (i, (asked, granted)) in [(10, 600), (1200, 1200), (99_999, 3600)].into_iter().enumerate() {
        let mut c = Client::new(udp(&format!("192.0.2.{}:40000", i + 1)), ALICE);
        let r = h.allocate_with(&mut c, &move |w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&Lifetime(asked))
        });
        r.assert_success(Method::ALLOCATE);
        assert_eq!(r.lifetime(), Some(granted), "Allocate asking for {asked} s");
    }

    let mut c = Client::new(udp("192.0.2.9:40000"), ALICE);
    h.allocate(&mut c);
    for (asked, granted) in [(Some(30), 600), (Some(1000), 1000), (None, 600), (Some(7200), 3600)] {
        let r = h.refresh(&mut c, asked);
        r.assert_success(Method::REFRESH);
        assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
        assert_eq!(r.lifetime(), Some(granted), "Refresh asking for {asked:?}");
    }
    // The last grant, an hour, is what the allocation lives for.
    let expires = h.server.allocation(&c.five).unwrap().expires;
    assert_eq!(expires, h.now + secs(3600));
    h.advance_secs(3599);
    assert!(h.server.allocation(&c.five).is_some());
    h.advance_secs(1);
    assert!(h.server.allocation(&c.five).is_none());
}

#[test]
fn refresh_with_lifetime_zero_deletes_the_allocation() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    h.take_events();
    let r = h.refresh(&mut c, Some(0));
    r.assert_success(Method::REFRESH);
    assert_eq!(r.lifetime(), Some(0));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(
        h.take_events(),
        [Event::AllocationClosed {
            client: c.five,
            relays: vec![relay],
            username: "alice".to_owned(),
            connections: vec![],
        }]
    );
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.stats().allocations_deleted, 1);
    assert_eq!(h.peer_data(relay, addr(PEER_A), b"late"), None);
    assert_eq!(h.send_indication(&mut c, addr(PEER_A), b"late"), Out::None);
    h.refresh(&mut c, None).assert_error(Method::REFRESH, 437);
}

#[test]
fn refresh_without_an_allocation_is_437() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let r = h.refresh(&mut c, Some(600));
    r.assert_error(Method::REFRESH, 437);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    h.create_permission(&mut c, &[addr(PEER_A)])
        .assert_error(Method::CREATE_PERMISSION, 437);
    h.channel_bind(&mut c, 0x4000, addr(PEER_A))
        .assert_error(Method::CHANNEL_BIND, 437);
}

#[test]
fn allocation_expires_through_handle_timeout() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    h.take_events();
    h.advance_secs(200);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    h.advance_secs(200);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    h.advance_secs(199);
    assert_eq!(h.server.allocation_count(), 1, "alive at 599 s");
    assert!(h.take_events().is_empty());
    assert!(h.peer_data(relay, addr(PEER_A), b"x").is_some());
    assert!(h.server.poll_timeout() > h.now);

    h.advance_secs(1);
    assert_eq!(
        h.take_events(),
        [Event::AllocationClosed {
            client: c.five,
            relays: vec![relay],
            username: "alice".to_owned(),
            connections: vec![],
        }]
    );
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.stats().allocations_expired, 1);
    assert_eq!(h.stats().allocations_deleted, 0);
    assert_eq!(h.peer_data(relay, addr(PEER_A), b"x"), None);
    assert_eq!(h.send_indication(&mut c, addr(PEER_A), b"x"), Out::None);
    h.refresh(&mut c, None).assert_error(Method::REFRESH, 437);
}

#[test]
fn permission_expires_after_300_seconds() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.refresh(&mut c, Some(3600));
    let peer = addr(PEER_A);
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    h.advance_secs(299);
    h.send_indication(&mut c, peer, b"still").relay();
    assert!(h.peer_data(relay, peer, b"still").is_some());

    h.advance_secs(1);
    let before = h.stats().no_permission;
    assert_eq!(h.send_indication(&mut c, peer, b"gone"), Out::None);
    assert_eq!(h.peer_data(relay, peer, b"gone"), None);
    assert_eq!(h.stats().no_permission, before + 2);

    // Refreshing restarts the 300 s.
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    h.advance_secs(200);
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    h.advance_secs(299);
    h.send_indication(&mut c, peer, b"refreshed").relay();
    h.advance_secs(1);
    assert_eq!(h.send_indication(&mut c, peer, b"gone"), Out::None);
}

#[test]
fn channel_expires_after_600_seconds() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.refresh(&mut c, Some(3600));
    let peer = addr(PEER_A);
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_success(Method::CHANNEL_BIND);
    // Keep the permission (300 s) alive without refreshing the channel.
    h.advance_secs(290);
    h.create_permission(&mut c, &[peer]);
    h.advance_secs(290);
    h.create_permission(&mut c, &[peer]);
    h.advance_secs(19);
    assert_eq!(
        h.channel_data(&c, 0x4000, b"bound").relay(),
        (relay, peer, b"bound".to_vec())
    );
    let (_, framed) = h.peer_data(relay, peer, b"bound").unwrap();
    assert_eq!(channel_data(&framed), (0x4000, b"bound".to_vec()));

    h.advance_secs(1);
    assert_eq!(h.channel_data(&c, 0x4000, b"expired"), Out::None);
    let (to, framed) = h.peer_data(relay, peer, b"expired").unwrap();
    assert_eq!(to, c.five);
    assert_eq!(
        data_indication(&framed),
        (peer, b"expired".to_vec()),
        "with the channel gone, peer data comes as a Data indication"
    );
}

#[test]
fn an_expired_channel_is_quarantined_for_300_seconds() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.refresh(&mut c, Some(3600));
    let (a, b) = (addr(PEER_A), addr(PEER_B));
    h.channel_bind(&mut c, 0x4000, a).assert_success(Method::CHANNEL_BIND);
    h.advance_secs(600);
    // Neither the number nor the peer may go to another binding yet.
    h.channel_bind(&mut c, 0x4000, b)
        .assert_error(Method::CHANNEL_BIND, 400);
    h.channel_bind(&mut c, 0x4001, a)
        .assert_error(Method::CHANNEL_BIND, 400);
    h.advance_secs(300);
    h.channel_bind(&mut c, 0x4000, b).assert_success(Method::CHANNEL_BIND);
    h.channel_bind(&mut c, 0x4001, a).assert_success(Method::CHANNEL_BIND);
}

// ---------------------------------------------------------------------------
// Permissions and Send indications (RFC 8656 §9, §10, §11)
// ---------------------------------------------------------------------------

#[test]
fn send_indication_is_relayed_after_create_permission() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    let r = h.create_permission(&mut c, &[peer]);
    r.assert_success(Method::CREATE_PERMISSION);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(
        h.send_indication(&mut c, peer, b"hello peer").relay(),
        (relay, peer, b"hello peer".to_vec())
    );
    assert_eq!(h.stats().relayed_to_peer, 1);
    assert_eq!(h.stats().relayed_to_peer_bytes, 10);
}

#[test]
fn a_permission_covers_every_port_of_the_ip() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr("1.2.3.4:5000")]);
    let other_port = addr("1.2.3.4:9999");
    assert_eq!(h.send_indication(&mut c, other_port, b"x").relay().1, other_port);
    assert!(h.peer_data(relay, addr("1.2.3.4:1234"), b"y").is_some());
    assert_eq!(h.send_indication(&mut c, addr("1.2.3.5:5000"), b"x"), Out::None);
}

#[test]
fn create_permission_needs_a_peer_and_takes_several() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.create_permission(&mut c, &[])
        .assert_error(Method::CREATE_PERMISSION, 400);
    h.create_permission(&mut c, &[addr(PEER_A), addr(PEER_B)])
        .assert_success(Method::CREATE_PERMISSION);
    h.send_indication(&mut c, addr(PEER_A), b"a").relay();
    h.send_indication(&mut c, addr(PEER_B), b"b").relay();
}

#[test]
fn nothing_is_relayed_without_a_permission() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    assert_eq!(h.send_indication(&mut c, addr(PEER_A), b"x"), Out::None);
    assert_eq!(h.peer_data(relay, addr(PEER_A), b"x"), None);
    assert_eq!(h.stats().no_permission, 2);
    assert_eq!(h.stats().relayed_to_peer, 0);
    assert_eq!(h.stats().relayed_to_client, 0);
}

#[test]
fn send_indication_from_another_five_tuple_is_not_relayed() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let mut spoof = c.on(udp("192.0.2.1:40001"));
    assert_eq!(h.send_indication(&mut spoof, addr(PEER_A), b"x"), Out::None);
    let mut over_tcp = c.on(tcp("192.0.2.1:40000"));
    assert_eq!(h.send_indication(&mut over_tcp, addr(PEER_A), b"x"), Out::None);
    assert_eq!(h.stats().relayed_to_peer, 0);
}

#[test]
fn send_indication_without_data_or_peer_is_dropped() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let before = h.stats().malformed;
    let cases: [Attrs<'_>; 2] = [&|w| w.add(&XorPeerAddress(addr(PEER_A))), &|w| w.add(&Data(b"x"))];
    for attrs in cases {
        let mut buf = [0u8; 128];
        let typ = MessageType::new(Method::SEND, Class::Indication);
        let mut w = MessageWriter::new(&mut buf, typ, c.next_tid()).unwrap();
        attrs(&mut w).unwrap();
        let n = w.finish();
        assert_eq!(h.send(c.five, &buf[..n]), Out::None);
    }
    assert_eq!(h.stats().malformed, before + 2);
    assert_eq!(h.stats().relayed_to_peer, 0);
}

// ---------------------------------------------------------------------------
// Channels (RFC 8656 §12)
// ---------------------------------------------------------------------------

/// RFC 8656 §12 has clients pick 0x4000..=0x4FFF; the core also takes
/// RFC 5766's 0x4000..=0x7FFF, which older clients use. Outside that: 400.
#[test]
fn channel_numbers_outside_the_channel_range_are_400() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    for (i, number) in [0x4000, 0x4FFF, 0x5000, 0x7FFF].into_iter().enumerate() {
        let peer = addr(&format!("1.2.3.4:{}", i + 1));
        h.channel_bind(&mut c, number, peer)
            .assert_success(Method::CHANNEL_BIND);
        assert_eq!(
            h.channel_data(&c, number, b"x").relay().1,
            peer,
            "channel {number:#06x}"
        );
    }
    for number in [0x0000, 0x0001, 0x3FFF, 0x8000, 0xBFFF, 0xFFFF] {
        let r = h.channel_bind(&mut c, number, addr("1.2.3.4:99"));
        r.assert_error(Method::CHANNEL_BIND, 400);
        assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    }
    // No channel exists past the ones bound above.
    assert_eq!(h.channel_data(&c, 0x4001, b"x"), Out::None);
}

#[test]
fn channel_bind_without_number_or_peer_is_400() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.transact(&mut c, Method::CHANNEL_BIND, &|w| w.add(&ChannelNumber(0x4000)))
        .reply()
        .assert_error(Method::CHANNEL_BIND, 400);
    h.transact(&mut c, Method::CHANNEL_BIND, &|w| w.add(&XorPeerAddress(addr(PEER_A))))
        .reply()
        .assert_error(Method::CHANNEL_BIND, 400);
}

#[test]
fn channel_rebinding_rules() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    let (a, b) = (addr(PEER_A), addr(PEER_B));
    h.channel_bind(&mut c, 0x4001, a).assert_success(Method::CHANNEL_BIND);
    // The same binding again is a refresh.
    h.channel_bind(&mut c, 0x4001, a).assert_success(Method::CHANNEL_BIND);
    // The number is taken by another peer; the peer has another number.
    h.channel_bind(&mut c, 0x4001, b)
        .assert_error(Method::CHANNEL_BIND, 400);
    h.channel_bind(&mut c, 0x4002, a)
        .assert_error(Method::CHANNEL_BIND, 400);
    // A peer of the same IP on another port is another peer.
    h.channel_bind(&mut c, 0x4003, addr("1.2.3.4:5001"))
        .assert_success(Method::CHANNEL_BIND);
    h.channel_bind(&mut c, 0x4002, b).assert_success(Method::CHANNEL_BIND);
    assert_eq!(h.channel_data(&c, 0x4001, b"a").relay().1, a);
    assert_eq!(h.channel_data(&c, 0x4002, b"b").relay().1, b);
}

#[test]
fn channel_bind_installs_a_permission() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, addr(PEER_A));
    h.send_indication(&mut c, addr(PEER_A), b"x").relay();
    assert!(h.peer_data(relay, addr(PEER_A), b"y").is_some());
}

#[test]
fn channel_data_is_relayed_to_the_bound_peer() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_success(Method::CHANNEL_BIND);
    assert_eq!(
        h.channel_data(&c, 0x4000, b"via channel").relay(),
        (relay, peer, b"via channel".to_vec())
    );
    assert_eq!(h.stats().relayed_to_peer_bytes, 11);

    let before = h.stats().no_permission;
    assert_eq!(h.channel_data(&c, 0x4001, b"unbound"), Out::None);
    assert_eq!(h.stats().no_permission, before + 1);
    // From another 5-tuple, the channel is not ours.
    let other = c.on(udp("192.0.2.1:40001"));
    assert_eq!(h.channel_data(&other, 0x4000, b"spoof"), Out::None);
}

#[test]
fn padded_channel_data_over_tcp_relays_only_the_data() {
    let mut h = Harness::default_config();
    let mut c = Client::new(tcp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    h.channel_bind(&mut c, 0x4000, peer)
        .assert_success(Method::CHANNEL_BIND);
    let packet = c.channel_data(0x4000, b"odd");
    assert_eq!(packet.len(), 8, "padded to 4 bytes over TCP");
    assert_eq!(h.send(c.five, &packet).relay(), (relay, peer, b"odd".to_vec()));
}

#[test]
fn peer_data_on_a_channel_is_framed_as_channel_data() {
    let mut h = Harness::default_config();
    let peer = addr(PEER_A);

    // Over UDP, unpadded.
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4ABC, peer);
    let (to, framed) = h.peer_data(relay, peer, b"hello").unwrap();
    assert_eq!(to, c.five);
    assert_eq!(framed.len(), 4 + 5);
    assert_eq!(PacketKind::of(&framed), PacketKind::ChannelData);
    assert_eq!(channel_data(&framed), (0x4ABC, b"hello".to_vec()));
    assert_eq!(h.stats().relayed_to_client, 1);
    assert_eq!(h.stats().relayed_to_client_bytes, 5);

    // Over TCP, padded to a multiple of 4 with zeros (RFC 8656 §12.5).
    let mut t = Client::new(tcp("192.0.2.2:40000"), ALICE);
    let relay = h.allocate(&mut t);
    h.channel_bind(&mut t, 0x4001, peer);
    let (to, framed) = h.peer_data(relay, peer, b"hello").unwrap();
    assert_eq!(to, t.five);
    assert_eq!(framed.len(), 12);
    assert_eq!(&framed[9..], [0, 0, 0]);
    assert_eq!(stream_frame_len(&framed), Ok(Some(12)));
    assert_eq!(channel_data(&framed), (0x4001, b"hello".to_vec()));
}

#[test]
fn peer_data_without_a_channel_is_a_data_indication() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    let peer = addr(PEER_A);
    h.create_permission(&mut c, &[peer]);
    let (to, framed) = h.peer_data(relay, peer, b"hello").unwrap();
    assert_eq!(to, c.five);
    let msg = Message::decode(&framed).expect("a whole STUN message");
    assert_eq!(msg.class(), Class::Indication);
    assert_eq!(msg.method(), Method::DATA);
    assert_eq!(msg.require::<XorPeerAddress>().unwrap().0, peer);
    assert_eq!(msg.require::<Data>().unwrap().0, b"hello");
    assert_eq!(framed.len() % 4, 0, "DATA padded");
    assert_eq!(h.stats().relayed_to_client, 1);
}

#[test]
fn ipv6_peer_data_is_a_data_indication_using_all_the_headroom() {
    let mut cfg = config();
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);
    let mut c = Client::new(udp("[2001:db8::99]:40000"), ALICE);
    let r = h.allocate_with(&mut c, &|w| {
        w.add(&RequestedTransport::UDP)?;
        w.add(&RequestedAddressFamily(AddressFamily::V6))
    });
    r.assert_success(Method::ALLOCATE);
    let relay = r.relayed()[0];
    assert!(relay.is_ipv6());
    assert_eq!(r.get::<XorMappedAddress>().unwrap().0, c.five.client);
    let peer = addr(PEER_V6);
    h.create_permission(&mut c, &[peer])
        .assert_success(Method::CREATE_PERMISSION);
    let data = [0xAB; 1201];
    let (_, framed) = h.peer_data(relay, peer, &data).unwrap();
    assert_eq!(data_indication(&framed), (peer, data.to_vec()));
    assert_eq!(
        h.send_indication(&mut c, peer, b"v6").relay(),
        (relay, peer, b"v6".to_vec())
    );
}

#[test]
fn peer_data_to_an_unknown_relay_is_dropped() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let elsewhere = std::net::SocketAddr::new(relay.ip(), relay.port() + 100);
    assert_eq!(h.peer_data(elsewhere, addr(PEER_A), b"x"), None);
    assert_eq!(h.stats().relayed_to_client, 0);
}

// ---------------------------------------------------------------------------
// Allocate options (RFC 8656 §7.2)
// ---------------------------------------------------------------------------

#[test]
fn even_port_with_r_bit_returns_the_reservation_token_and_the_token_is_passed_on() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&EvenPort { reserve: true })
        })
        .allocate_request();
    assert_eq!(ar.even_port, Some(true));
    assert_eq!(ar.reservation, None);
    let relay = addr("198.51.100.1:50000");
    let token = [0xA5, 1, 2, 3, 4, 5, 6, 7];
    h.reservations.insert(token, addr("198.51.100.1:50001"));
    let r = h.finish(
        &ar,
        AllocateOutcome::Bound {
            relay,
            additional: None,
            reservation: Some(token),
        },
    );
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.relayed(), [relay]);
    assert_eq!(r.get::<ReservationToken>().map(|t| t.0), Some(token));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));

    // Another client claims the reserved port with the token.
    let mut d = Client::new(udp("192.0.2.2:40000"), ALICE);
    let claim = move |w: &mut MessageWriter<'_>| {
        w.add(&RequestedTransport::UDP)?;
        w.add(&ReservationToken(token))
    };
    let ar = h.transact(&mut d, Method::ALLOCATE, &claim).allocate_request();
    assert_eq!(ar.reservation, Some(token));
    assert_eq!(ar.even_port, None);
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.relayed(), [addr("198.51.100.1:50001")]);
    assert!(r.get::<ReservationToken>().is_none());

    // The I/O layer holds a token once; claimed again it answers NoCapacity.
    let mut e = Client::new(udp("192.0.2.3:40000"), ALICE);
    h.allocate_with(&mut e, &claim).assert_error(Method::ALLOCATE, 508);
}

#[test]
fn even_port_without_r_bit_gets_no_token() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&EvenPort { reserve: false })
        })
        .allocate_request();
    assert_eq!(ar.even_port, Some(false));
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.relayed()[0].port() % 2, 0);
    assert!(r.get::<ReservationToken>().is_none());
}

#[test]
fn unknown_reservation_token_is_508() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let unknown = [1, 2, 3, 4, 5, 6, 7, 8];
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &move |w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&ReservationToken(unknown))
        })
        .allocate_request();
    assert_eq!(ar.reservation, Some(unknown));
    // The I/O layer holds no port under it.
    let outcome = h.bind(&ar);
    assert_eq!(outcome, AllocateOutcome::NoCapacity);
    let r = h.finish(&ar, outcome);
    r.assert_error(Method::ALLOCATE, 508);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn conflicting_allocate_attributes_are_400() {
    let mut cfg = config();
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);
    let token = ReservationToken([1; 8]);
    let cases: [(&str, Attrs<'_>); 5] = [
        ("RESERVATION-TOKEN with EVEN-PORT", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&token)?;
            w.add(&EvenPort { reserve: false })
        }),
        ("RESERVATION-TOKEN with REQUESTED-ADDRESS-FAMILY", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&token)?;
            w.add(&RequestedAddressFamily(AddressFamily::V4))
        }),
        ("REQUESTED- with ADDITIONAL-ADDRESS-FAMILY", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&RequestedAddressFamily(AddressFamily::V4))?;
            w.add(&AdditionalAddressFamily(AddressFamily::V6))
        }),
        ("EVEN-PORT with ADDITIONAL-ADDRESS-FAMILY", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&EvenPort { reserve: true })?;
            w.add(&AdditionalAddressFamily(AddressFamily::V6))
        }),
        ("ADDITIONAL-ADDRESS-FAMILY IPv4", &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&AdditionalAddressFamily(AddressFamily::V4))
        }),
    ];
    for (i, (what, attrs)) in cases.into_iter().enumerate() {
        let mut c = Client::new(udp(&format!("192.0.2.{}:40000", i + 1)), ALICE);
        match h.transact(&mut c, Method::ALLOCATE, attrs) {
            Out::Reply(r) => {
                r.assert_error(Method::ALLOCATE, 400);
                assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
            }
            other => panic!("{what}: expected 400, got {other:?}"),
        }
    }
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn requested_ipv6_without_ipv6_relays_is_440() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let r = h.allocate_with(&mut c, &|w| {
        w.add(&RequestedTransport::UDP)?;
        w.add(&RequestedAddressFamily(AddressFamily::V6))
    });
    r.assert_error(Method::ALLOCATE, 440);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn requested_ipv4_without_ipv4_relays_is_440() {
    let mut cfg = config();
    cfg.relay_ipv4 = false;
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    // No REQUESTED-ADDRESS-FAMILY means IPv4.
    h.allocate_with(&mut c, &udp_transport)
        .assert_error(Method::ALLOCATE, 440);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&RequestedAddressFamily(AddressFamily::V6))
        })
        .allocate_request();
    assert_eq!(ar.family, AddressFamily::V6);
}

#[test]
fn dual_stack_allocation_relays_both_families() {
    let mut cfg = config();
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&AdditionalAddressFamily(AddressFamily::V6))
        })
        .allocate_request();
    assert_eq!(ar.family, AddressFamily::V4);
    assert!(ar.additional_ipv6);
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    let relays = r.relayed();
    assert_eq!(relays.len(), 2);
    assert!(relays[0].is_ipv4() && relays[1].is_ipv6(), "{relays:?}");
    assert!(r.get::<AddressErrorCode>().is_none());

    let (v4, v6) = (addr(PEER_A), addr(PEER_V6));
    h.create_permission(&mut c, &[v4, v6])
        .assert_success(Method::CREATE_PERMISSION);
    assert_eq!(h.send_indication(&mut c, v4, b"4").relay().0, relays[0]);
    assert_eq!(h.send_indication(&mut c, v6, b"6").relay().0, relays[1]);
    assert_eq!(h.peer_data(relays[1], v6, b"6").map(|(to, _)| to), Some(c.five));
    assert_eq!(h.peer_data(relays[0], v4, b"4").map(|(to, _)| to), Some(c.five));
    h.refresh(&mut c, Some(0));
    let closed = h.take_events();
    assert!(
        matches!(&closed[..], [Event::AllocationClosed { relays: r, .. }] if *r == relays),
        "{closed:?}"
    );
}

#[test]
fn dual_stack_partial_failure_reports_address_error_code() {
    let mut cfg = config();
    cfg.relay_ipv6 = true;
    let mut h = Harness::new(cfg);
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let ar = h
        .transact(&mut c, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&AdditionalAddressFamily(AddressFamily::V6))
        })
        .allocate_request();
    let relay = h.fresh_relay(false);
    let r = h.finish(
        &ar,
        AllocateOutcome::Bound {
            relay,
            additional: None,
            reservation: None,
        },
    );
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.relayed(), [relay]);
    let e = r.get::<AddressErrorCode>().expect("ADDRESS-ERROR-CODE");
    assert_eq!((e.family, e.error.code), (AddressFamily::V6, 440));
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    // Only IPv4 peers can be reached.
    h.create_permission(&mut c, &[addr(PEER_V6)])
        .assert_error(Method::CREATE_PERMISSION, 443);
    h.create_permission(&mut c, &[addr(PEER_A)])
        .assert_success(Method::CREATE_PERMISSION);
}

#[test]
fn quota_reached_is_486_and_no_capacity_is_508() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    for (outcome, code) in [(AllocateOutcome::QuotaReached, 486), (AllocateOutcome::NoCapacity, 508)] {
        let ar = h.transact(&mut c, Method::ALLOCATE, &udp_transport).allocate_request();
        let r = h.finish(&ar, outcome);
        r.assert_error(Method::ALLOCATE, code);
        assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
        assert_eq!(h.server.allocation_count(), 0);
    }
    // Nothing was left behind: the next attempt is a new allocation, not a 437.
    h.allocate(&mut c);
    assert_eq!(h.stats().allocations_created, 1);
}

#[test]
fn finish_allocate_with_an_unknown_token_writes_nothing() {
    let mut h = Harness::default_config();
    let mut reply = [0u8; 1500];
    let n = h.server.finish_allocate(
        h.now,
        12345,
        AllocateOutcome::Bound {
            relay: addr("198.51.100.1:50000"),
            additional: None,
            reservation: None,
        },
        &mut reply,
    );
    assert_eq!(n, 0);
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn requested_transport_missing_is_400_and_unknown_is_442() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let r = h.allocate_with(&mut c, &none);
    r.assert_error(Method::ALLOCATE, 400);
    assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1));
    h.allocate_with(&mut c, &|w| w.add(&RequestedTransport(99)))
        .assert_error(Method::ALLOCATE, 442);
    assert_eq!(h.server.allocation_count(), 0);

    let mut cfg = config();
    cfg.tcp_relay = false;
    let mut h = Harness::new(cfg);
    let mut t = Client::new(tcp("192.0.2.1:40000"), ALICE);
    h.allocate_with(&mut t, &tcp_transport)
        .assert_error(Method::ALLOCATE, 442);
}

#[test]
fn a_tls_client_is_served_like_a_tcp_one_with_padded_channel_data() {
    // The 5-tuple's transport does not change how requests are answered.
    let mut h = Harness::default_config();
    let mut c = Client::new(five(Transport::Tls, "192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    h.channel_bind(&mut c, 0x4000, addr(PEER_A));
    let (to, framed) = h.peer_data(relay, addr(PEER_A), b"abcde").unwrap();
    assert_eq!(to, c.five);
    assert_eq!(framed.len(), 12, "ChannelData padded over TLS");
}
