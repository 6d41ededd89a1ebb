//! Hostile input: malformed, truncated, oversized and forged packets,
//! unknown attributes and methods, and property tests that interleave
//! random traffic from many sources with a legitimate client's. The core
//! must never panic, must answer nothing it should not, and must keep
//! serving the legitimate client throughout.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use natter_stun::*;
use natter_turn::{FiveTuple, Transport};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use support::*;

fn binding_request(tid: u8, fingerprint: bool) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let typ = MessageType::new(Method::BINDING, Class::Request);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId([tid; 12])).unwrap();
    w.add(&Software("test")).unwrap();
    if fingerprint {
        w.add_fingerprint().unwrap();
    }
    let n = w.finish();
    buf[..n].to_vec()
}

/// Sends `packet` and asserts it is dropped and counted as malformed.
#[track_caller]
fn assert_dropped(h: &mut Harness, from: FiveTuple, packet: &[u8], what: &str) {
    let before = h.stats().malformed;
    assert_eq!(h.send(from, packet), Out::None, "{what}");
    assert_eq!(h.stats().malformed, before + 1, "{what}: counted as malformed");
}

#[test]
fn malformed_stun_is_dropped_and_counted() {
    let mut h = Harness::default_config();
    let from = udp("192.0.2.1:40000");
    let good = binding_request(1, true);
    h.send(from, &good).reply().assert_success(Method::BINDING);

    let mut bad_cookie = good.clone();
    bad_cookie[5] ^= 0xFF;
    assert_dropped(&mut h, from, &bad_cookie, "bad magic cookie");

    let mut unaligned = good.clone();
    unaligned[3] = 5;
    assert_dropped(&mut h, from, &unaligned, "length not a multiple of 4");

    let mut too_long = good.clone();
    too_long[3] += 8;
    assert_dropped(&mut h, from, &too_long, "length past the datagram");

    let mut overrun = good.clone();
    overrun[22..24].copy_from_slice(&200u16.to_be_bytes());
    assert_dropped(&mut h, from, &overrun, "attribute length past the message");

    let mut bad_fingerprint = good.clone();
    bad_fingerprint[10] ^= 1;
    assert_dropped(&mut h, from, &bad_fingerprint, "FINGERPRINT mismatch");

    let mut after_fingerprint = good.clone();
    after_fingerprint.extend_from_slice(&[0x80, 0x22, 0, 0]);
    let len = (after_fingerprint.len() - 20) as u16;
    after_fingerprint[2..4].copy_from_slice(&len.to_be_bytes());
    assert_dropped(&mut h, from, &after_fingerprint, "attribute after FINGERPRINT");

    let mut buf = [0u8; 64];
    let typ = MessageType::new(Method::BINDING, Class::Request);
    let mut w = MessageWriter::new(&mut buf, typ, TransactionId([2; 12])).unwrap();
    w.add_raw(attribute::MESSAGE_INTEGRITY, &[0; 16]).unwrap();
    let n = w.finish();
    assert_dropped(&mut h, from, &buf[..n], "MESSAGE-INTEGRITY of 16 bytes");

    let mut top_bits = good.clone();
    top_bits[0] |= 0xC0;
    assert_dropped(&mut h, from, &top_bits, "top bits set");

    assert_eq!(h.stats().binding_requests, 1);
}

#[test]
fn every_truncation_of_a_valid_request_is_dropped() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &|w| {
        w.add(&RequestedTransport::UDP)?;
        w.add(&Lifetime(1200))
    });
    let before = h.stats();
    for len in 0..req.len() {
        assert_eq!(h.send(c.five, &req[..len]), Out::None, "{len} of {} bytes", req.len());
    }
    assert_eq!(h.stats().malformed, before.malformed + req.len() as u64);
    assert_eq!(h.stats().requests, before.requests);
    // Whole, it works.
    assert!(matches!(h.send(c.five, &req), Out::Allocate(_)));

    // A truncated ChannelData on a bound channel is dropped too.
    let mut c = Client::new(udp("192.0.2.2:40000"), ALICE);
    h.allocate(&mut c);
    h.channel_bind(&mut c, 0x4000, addr(PEER_A));
    let cd = c.channel_data(0x4000, &[7; 100]);
    for len in 0..cd.len() {
        assert_eq!(h.send(c.five, &cd[..len]), Out::None, "ChannelData cut to {len}");
    }
    h.send(c.five, &cd).relay();
}

#[test]
fn oversized_datagrams_are_dropped() {
    let mut h = Harness::default_config();
    let from = udp("192.0.2.1:40000");
    // A header that declares the largest length, in 70 KB.
    let mut big = vec![0u8; 70_000];
    big[..20].copy_from_slice(&binding_request(3, false)[..20]);
    big[2..4].copy_from_slice(&65_532u16.to_be_bytes());
    assert_dropped(&mut h, from, &big, "70 KB STUN");
    // 70 KB of garbage of each kind.
    for first in [0x00, 0x16, 0x40, 0x80, 0xFF] {
        let mut garbage = vec![0xA5u8; 70_000];
        garbage[0] = first;
        let out = h.send(from, &garbage);
        assert_eq!(out, Out::None, "70 KB starting {first:#04x}");
    }
    assert_eq!(h.server.allocation_count(), 0);
}

#[test]
fn the_largest_valid_message_is_processed() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    // A comprehension-optional attribute fills the 16-bit length.
    let filler = vec![0x33u8; 65_535 - 4 - 8 - 4 - 8 - 4 - 8];
    let req = c.unauthenticated(Method::BINDING, &|w| w.add_raw(0xC0DE, &filler));
    assert!(req.len() > 65_000);
    h.send(c.five, &req).reply().assert_success(Method::BINDING);
    h.challenge(&mut c);
    let filler = vec![0x33u8; 60_000];
    let req = c.request(Method::ALLOCATE, &|w| {
        w.add(&RequestedTransport::UDP)?;
        w.add_raw(0xC0DE, &filler)
    });
    assert!(matches!(h.send(c.five, &req), Out::Allocate(_)));
}

#[test]
fn a_wrong_or_broken_integrity_is_401() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.challenge(&mut c);

    // Alice's name, Bob's password.
    let mut forger = c.clone();
    forger.password = BOB.1.to_owned();
    let req = forger.request(Method::ALLOCATE, &udp_transport);
    h.send(c.five, &req).reply().assert_error(Method::ALLOCATE, 401);

    h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);

    // A Refresh to delete, altered in transit: LIFETIME 0 -> 1.
    let mut tamper = c.clone();
    tamper.fingerprint = false;
    let mut req = tamper.request(Method::REFRESH, &|w| w.add(&Lifetime(0)));
    let at = req.windows(4).position(|w| w == [0x00, 0x0D, 0x00, 0x04]).unwrap() + 7;
    req[at] ^= 1;
    let before = h.stats().auth_failures;
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::REFRESH, 401);
    assert!(!r.msg().has_integrity());
    assert_eq!(h.stats().auth_failures, before + 1);
    assert_eq!(h.server.allocation_count(), 1);

    // The HMAC itself altered.
    let mut req = tamper.request(Method::REFRESH, &|w| w.add(&Lifetime(0)));
    let last = req.len() - 1;
    req[last] ^= 0x80;
    h.send(c.five, &req).reply().assert_error(Method::REFRESH, 401);

    // MESSAGE-INTEGRITY-SHA256 of garbage.
    let mut req = tamper.request(Method::REFRESH, &|w| w.add(&Lifetime(0)));
    req.truncate(req.len() - 24);
    let len = (req.len() - 20 + 36) as u16;
    req[2..4].copy_from_slice(&len.to_be_bytes());
    req.extend_from_slice(&[0x00, 0x1C, 0x00, 0x20]);
    req.extend_from_slice(&[0x42; 32]);
    h.send(c.five, &req).reply().assert_error(Method::REFRESH, 401);

    assert_eq!(h.server.allocation_count(), 1);
    h.send_indication(&mut c, addr(PEER_A), b"alive").relay();
}

#[test]
fn unknown_comprehension_required_attributes_are_420() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let req = c.unauthenticated(Method::BINDING, &|w| {
        w.add_raw(0x7777, b"x")?;
        w.add_raw(0xC001, b"optional")?;
        w.add_raw(0x0030, &[])
    });
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::BINDING, 420);
    assert_eq!(r.get::<UnknownAttributes>().unwrap().types(), [0x7777, 0x0030]);
    assert!(!r.msg().has_integrity());

    // Comprehension-optional ones alone are ignored.
    let req = c.unauthenticated(Method::BINDING, &|w| w.add_raw(0xC001, b"optional"));
    h.send(c.five, &req).reply().assert_success(Method::BINDING);

    // Before authentication, so an Allocate with one fails whatever its credentials.
    h.challenge(&mut c);
    let req = c.request(Method::ALLOCATE, &|w| {
        w.add(&RequestedTransport::UDP)?;
        w.add_raw(0x7777, b"x")
    });
    let r = h.send(c.five, &req).reply();
    r.assert_error(Method::ALLOCATE, 420);
    assert_eq!(r.get::<UnknownAttributes>().unwrap().types(), [0x7777]);
    assert_eq!(h.server.allocation_count(), 0);

    // At most 16 are listed.
    let req = c.unauthenticated(Method::BINDING, &|w| {
        (0x7000..0x7014).try_for_each(|t| w.add_raw(t, &[]))
    });
    let r = h.send(c.five, &req).reply();
    assert_eq!(r.get::<UnknownAttributes>().unwrap().types().len(), 16);
}

#[test]
fn attributes_after_message_integrity_are_ignored() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    c.fingerprint = false;
    h.challenge(&mut c);
    let mut req = c.request(Method::ALLOCATE, &udp_transport);
    // Appended after signing: an unknown comprehension-required attribute
    // and a LIFETIME the client never asked for.
    req.extend_from_slice(&[0x77, 0x77, 0x00, 0x00, 0x00, 0x0D, 0x00, 0x04, 0x00, 0x00, 0x0E, 0x10]);
    let len = (req.len() - 20) as u16;
    req[2..4].copy_from_slice(&len.to_be_bytes());
    let ar = h.send(c.five, &req).allocate_request();
    let outcome = h.bind(&ar);
    let r = h.finish(&ar, outcome);
    r.assert_success(Method::ALLOCATE);
    assert_eq!(r.lifetime(), Some(600), "the appended LIFETIME did not count");
}

/// RFC 8489 §6.3.2: an indication with unknown comprehension-required
/// attributes is discarded.
#[test]
fn send_indication_with_unknown_comprehension_required_attribute_is_discarded() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let mut buf = [0u8; 128];
    let typ = MessageType::new(Method::SEND, Class::Indication);
    let mut w = MessageWriter::new(&mut buf, typ, c.next_tid()).unwrap();
    w.add(&XorPeerAddress(addr(PEER_A))).unwrap();
    w.add(&Data(b"x")).unwrap();
    w.add_raw(0x7777, b"must understand").unwrap();
    let n = w.finish();
    assert_eq!(h.send(c.five, &buf[..n]), Out::None);
    assert_eq!(h.stats().relayed_to_peer, 0);
    // Without it, the same indication is relayed.
    h.send_indication(&mut c, addr(PEER_A), b"x").relay();
}

#[test]
fn responses_and_foreign_indications_get_no_reply() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    let relay = h.allocate(&mut c);
    h.create_permission(&mut c, &[addr(PEER_A)]);
    let build = |typ: MessageType, attrs: Attrs<'_>| {
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::new(&mut buf, typ, TransactionId([0x33; 12])).unwrap();
        attrs(&mut w).unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    };
    let before = h.stats();
    for (what, typ) in [
        (
            "Allocate success",
            MessageType::new(Method::ALLOCATE, Class::SuccessResponse),
        ),
        ("Binding error", MessageType::new(Method::BINDING, Class::ErrorResponse)),
        (
            "unknown-method success",
            MessageType::new(Method(0x0FF), Class::SuccessResponse),
        ),
    ] {
        let packet = build(typ, &|w| w.add(&XorRelayedAddress(addr(PEER_A))));
        assert_eq!(h.send(c.five, &packet), Out::None, "{what}");
    }
    assert_eq!(h.stats().malformed, before.malformed + 3);
    for (what, method) in [
        ("unknown method", Method(0x0FF)),
        ("Data (server to client)", Method::DATA),
        ("ConnectionAttempt (server to client)", Method::CONNECTION_ATTEMPT),
        ("Allocate", Method::ALLOCATE),
        ("Binding", Method::BINDING),
    ] {
        let packet = build(MessageType::new(method, Class::Indication), &|w| {
            w.add(&XorPeerAddress(addr(PEER_A)))?;
            w.add(&Data(b"x"))
        });
        assert_eq!(h.send(c.five, &packet), Out::None, "{what} indication");
    }
    // Requests of methods a server does not serve: 400.
    for method in [
        Method(0x0FF),
        Method::DATA,
        Method::SEND,
        Method::CONNECTION_ATTEMPT,
        Method(0x0FE),
    ] {
        let packet = build(MessageType::new(method, Class::Request), &|_| Ok(()));
        let r = h.send(c.five, &packet).reply();
        r.assert_error(method, 400);
    }
    // A method above 0x0FF starts with a byte RFC 7983 gives to DTLS.
    let packet = build(MessageType::new(Method(0xFFF), Class::Request), &|_| Ok(()));
    assert_eq!(PacketKind::of(&packet), PacketKind::Dtls);
    assert_eq!(h.send(c.five, &packet), Out::None);
    assert_eq!(h.stats().relayed_to_peer, before.relayed_to_peer);
    // The client carries on.
    h.send_indication(&mut c, addr(PEER_A), b"fine").relay();
    assert!(h.peer_data(relay, addr(PEER_A), b"fine").is_some());
}

#[test]
fn garbage_is_dropped() {
    let mut h = Harness::default_config();
    let from = udp("192.0.2.1:40000");
    let cases: [(&str, &[u8]); 9] = [
        ("empty", &[]),
        ("one byte", &[0x00]),
        ("19 zero bytes", &[0; 19]),
        ("RTP", &[0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("DTLS", &[0x16, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("0xFF", &[0xFF; 100]),
        ("ChannelData header only", &[0x40, 0x00]),
        ("ChannelData longer than sent", &[0x40, 0x00, 0x00, 0x10, 1, 2, 3]),
        ("ChannelData on no channel", &[0x40, 0x00, 0x00, 0x01, 1]),
    ];
    for (what, packet) in cases {
        assert_eq!(h.send(from, packet), Out::None, "{what}");
    }
    assert_eq!(h.stats().malformed, 8);
    assert_eq!(h.stats().no_permission, 1);
    assert_eq!(h.stats().requests, 0);
}

#[test]
fn malformed_attribute_values_in_authenticated_requests_are_400() {
    let mut h = Harness::default_config();
    let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
    h.allocate(&mut c);
    let cases: [(&str, Method, Attrs<'_>); 5] = [
        ("XOR-PEER-ADDRESS of family 3", Method::CREATE_PERMISSION, &|w| {
            w.add_raw(attribute::XOR_PEER_ADDRESS, &[0, 3, 0, 80, 1, 2, 3, 4])
        }),
        ("XOR-PEER-ADDRESS cut short", Method::CREATE_PERMISSION, &|w| {
            w.add_raw(attribute::XOR_PEER_ADDRESS, &[0, 1, 0, 80])
        }),
        ("CHANNEL-NUMBER of 2 bytes", Method::CHANNEL_BIND, &|w| {
            w.add_raw(attribute::CHANNEL_NUMBER, &[0x40, 0])?;
            w.add(&XorPeerAddress(addr(PEER_A)))
        }),
        ("REQUESTED-TRANSPORT of 1 byte", Method::ALLOCATE, &|w| {
            w.add_raw(attribute::REQUESTED_TRANSPORT, &[17])
        }),
        ("EVEN-PORT of 4 bytes", Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add_raw(attribute::EVEN_PORT, &[0x80, 0, 0, 0])
        }),
    ];
    for (i, (what, method, attrs)) in cases.into_iter().enumerate() {
        // Allocate needs a 5-tuple without an allocation.
        let mut on = if method == Method::ALLOCATE {
            c.on(udp(&format!("192.0.2.1:{}", 41_000 + i)))
        } else {
            c.clone()
        };
        match h.transact(&mut on, method, attrs) {
            Out::Reply(r) => {
                r.assert_error(method, 400);
                assert_eq!(r.verify(&c.key()), Ok(IntegrityKind::Sha1), "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    // Credentials that do not decode are a 400 before any key is tried.
    let mut long_name = Client::new(udp("192.0.2.3:40000"), (&"x".repeat(600), "pw"));
    h.allocate_with(&mut long_name, &udp_transport)
        .assert_error(Method::ALLOCATE, 400);
    let mut bad_utf8 = Client::new(udp("192.0.2.4:40000"), ALICE);
    h.challenge(&mut bad_utf8);
    let mut buf = vec![0u8; 256];
    let typ = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut w = MessageWriter::new(&mut buf, typ, bad_utf8.next_tid()).unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    w.add_raw(attribute::USERNAME, &[0xFF, 0xFE]).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(bad_utf8.nonce.as_deref().unwrap())).unwrap();
    w.add_message_integrity(&bad_utf8.key()).unwrap();
    let n = w.finish();
    h.send(bad_utf8.five, &buf[..n])
        .reply()
        .assert_error(Method::ALLOCATE, 400);
    assert_eq!(h.server.allocation_count(), 1);
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

/// Deterministic unless `PROPTEST_RNG_SEED` asks for another seed.
fn proptest_config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x7E57_7C2E);
    }
    config
}

/// The legitimate client: an allocation with a permission and channel
/// 0x4000 for PEER_A, kept fresh.
struct Legit {
    c: Client,
    relay: SocketAddr,
    refreshed: Duration,
    checks: u32,
}

const LEGIT_CHANNEL: u16 = 0x4000;

impl Legit {
    fn new(h: &mut Harness) -> Self {
        let mut c = Client::new(udp("192.0.2.1:40000"), ALICE);
        let relay = h.allocate(&mut c);
        h.channel_bind(&mut c, LEGIT_CHANNEL, addr(PEER_A))
            .assert_success(Method::CHANNEL_BIND);
        Legit {
            c,
            relay,
            refreshed: h.elapsed(),
            checks: 0,
        }
    }

    /// The requests a client sends, as templates for mutation.
    fn templates(&mut self) -> Vec<Vec<u8>> {
        let c = &mut self.c;
        let peer = addr(PEER_A);
        let mut data_indication = vec![0u8; 64];
        let typ = MessageType::new(Method::DATA, Class::Indication);
        let mut w = MessageWriter::new(&mut data_indication, typ, TransactionId([5; 12])).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
        w.add(&Data(b"abc")).unwrap();
        let n = w.finish();
        data_indication.truncate(n);
        vec![
            c.unauthenticated(Method::ALLOCATE, &udp_transport),
            c.request(Method::ALLOCATE, &udp_transport),
            c.request(Method::REFRESH, &|w| w.add(&Lifetime(0))),
            c.request(Method::CREATE_PERMISSION, &move |w| w.add(&XorPeerAddress(peer))),
            c.request(Method::CHANNEL_BIND, &|w| {
                w.add(&ChannelNumber(0x4001))?;
                w.add(&XorPeerAddress(addr(PEER_B)))
            }),
            c.send_indication(peer, b"template data"),
            c.channel_data(LEGIT_CHANNEL, b"template channel data"),
            c.unauthenticated(Method::BINDING, &none),
            c.request(Method::CONNECT, &move |w| w.add(&XorPeerAddress(peer))),
            c.request(Method::CONNECTION_BIND, &|w| w.add(&ConnectionId(1))),
            data_indication,
            c.request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add(&EvenPort { reserve: true })?;
                w.add(&DontFragment)?;
                w.add(&Lifetime(3600))?;
                w.add(&RequestedAddressFamily(AddressFamily::V4))
            }),
        ]
    }

    /// Asserts the allocation, permission and channel work both ways, and
    /// refreshes them as a client does every couple of minutes.
    fn check(&mut self, h: &mut Harness) {
        self.checks += 1;
        let peer = addr(PEER_A);
        let payload = self.checks.to_be_bytes();
        assert_eq!(
            h.send_indication(&mut self.c, peer, &payload),
            Out::Relay {
                from: self.relay,
                to: peer,
                data: payload.to_vec()
            },
            "Send at {:?}",
            h.elapsed()
        );
        assert_eq!(
            h.channel_data(&self.c, LEGIT_CHANNEL, &payload),
            Out::Relay {
                from: self.relay,
                to: peer,
                data: payload.to_vec()
            },
            "ChannelData at {:?}",
            h.elapsed()
        );
        let (to, framed) = h
            .peer_data(self.relay, peer, &payload)
            .unwrap_or_else(|| panic!("peer data at {:?}", h.elapsed()));
        assert_eq!(to, self.c.five);
        assert_eq!(channel_data(&framed), (LEGIT_CHANNEL, payload.to_vec()));

        if h.elapsed() - self.refreshed >= Duration::from_secs(100) {
            h.refresh(&mut self.c, None).assert_success(Method::REFRESH);
            h.channel_bind(&mut self.c, LEGIT_CHANNEL, peer)
                .assert_success(Method::CHANNEL_BIND);
            self.refreshed = h.elapsed();
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Random bytes from a hostile source.
    Garbage { src: u8, tcp: bool, bytes: Vec<u8> },
    /// A template mutated: bytes XORed, then cut or extended.
    Mutant {
        src: u8,
        tcp: bool,
        template: usize,
        flips: Vec<(usize, u8)>,
        cut: Option<usize>,
        extend: Vec<u8>,
    },
    /// A datagram from a random peer at the legitimate relay.
    PeerNoise { peer: u8, port: u16, bytes: Vec<u8> },
    /// A random peer opens a TCP connection to the legitimate relay.
    PeerConnection { peer: u8, port: u16 },
    /// A hostile TCP connection closes.
    Close { src: u8 },
    /// Time passes.
    Tick { millis: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = prop::collection::vec(any::<u8>(), 0..300);
    let flips = prop::collection::vec((any::<usize>(), 1..=255u8), 0..6);
    prop_oneof![
        3 => (any::<u8>(), any::<bool>(), bytes.clone()).prop_map(|(src, tcp, bytes)| Op::Garbage { src, tcp, bytes }),
        // Random bytes behind a plausible STUN or ChannelData start.
        2 => (any::<u8>(), any::<bool>(), bytes.clone(), 0..4u8).prop_map(|(src, tcp, mut bytes, kind)| {
            let head: &[u8] = match kind {
                0 => &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42],
                1 => &[0x00, 0x03, 0x00, 0x10, 0x21, 0x12, 0xA4, 0x42],
                2 => &[0x00, 0x16, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42],
                _ => &[0x40, 0x00, 0x00, 0x08],
            };
            bytes.splice(0..0, head.iter().copied());
            Op::Garbage { src, tcp, bytes }
        }),
        6 => (
            any::<u8>(),
            any::<bool>(),
            0..12usize,
            flips,
            prop::option::of(any::<usize>()),
            prop::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(src, tcp, template, flips, cut, extend)| Op::Mutant {
                src,
                tcp,
                template,
                flips,
                cut,
                extend
            }),
        2 => (any::<u8>(), 1..=u16::MAX, bytes).prop_map(|(peer, port, bytes)| Op::PeerNoise { peer, port, bytes }),
        1 => (any::<u8>(), 1..=u16::MAX).prop_map(|(peer, port)| Op::PeerConnection { peer, port }),
        1 => any::<u8>().prop_map(|src| Op::Close { src }),
        2 => (0..30_000u32).prop_map(|millis| Op::Tick { millis }),
    ]
}

fn hostile_source(src: u8, tcp: bool) -> FiveTuple {
    let client = format!("203.0.113.{src}:{}", 1024 + u16::from(src));
    five(if tcp { Transport::Tcp } else { Transport::Udp }, &client)
}

fn mutate(template: &[u8], flips: &[(usize, u8)], cut: Option<usize>, extend: &[u8]) -> Vec<u8> {
    let mut m = template.to_vec();
    for &(at, x) in flips {
        let len = m.len();
        m[at % len] ^= x;
    }
    if let Some(cut) = cut {
        m.truncate(cut % (template.len() + 1));
    }
    m.extend_from_slice(extend);
    m
}

/// What a hostile source may get back: nothing, or a response to its
/// request that is no bigger than the request (beyond the allowance for
/// challenges) when it came over UDP.
#[track_caller]
fn assert_harmless(out: &Out, from: FiveTuple, packet: &[u8]) {
    match out {
        Out::None => {}
        Out::Reply(r) => {
            let msg = r.msg();
            assert!(
                matches!(msg.class(), Class::SuccessResponse | Class::ErrorResponse),
                "a reply that is no response: {msg:?}"
            );
            assert_eq!(Some(msg.transaction_id()), decode_header(packet).ok().map(|h| h.2));
            if from.transport == Transport::Udp {
                assert!(
                    r.0.len() <= packet.len().max(128),
                    "{} bytes answered {} from a spoofable source",
                    r.0.len(),
                    packet.len()
                );
            }
        }
        other => panic!("a source without credentials got {other:?} for {packet:02x?}"),
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Hostile traffic from many sources and peers, interleaved with a
    /// legitimate client's, over up to half an hour of virtual time.
    #[test]
    fn hostile_sources_never_disturb_a_legitimate_client(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = Harness::default_config();
        let mut legit = Legit::new(&mut h);
        let templates = legit.templates();
        for op in &ops {
            match op {
                Op::Garbage { src, tcp, bytes } => {
                    let from = hostile_source(*src, *tcp);
                    let out = h.send(from, bytes);
                    assert_harmless(&out, from, bytes);
                }
                Op::Mutant { src, tcp, template, flips, cut, extend } => {
                    let from = hostile_source(*src, *tcp);
                    let packet = mutate(&templates[*template], flips, *cut, extend);
                    let out = h.send(from, &packet);
                    assert_harmless(&out, from, &packet);
                }
                Op::PeerNoise { peer, port, bytes } => {
                    let peer = SocketAddr::new([9, 9, 9, *peer].into(), *port);
                    prop_assert_eq!(h.peer_data(legit.relay, peer, bytes), None);
                }
                Op::PeerConnection { peer, port } => {
                    let peer = SocketAddr::new([9, 9, 9, *peer].into(), *port);
                    let mut reply = [0u8; 1500];
                    let now = h.now;
                    prop_assert_eq!(h.server.handle_peer_connection(now, legit.relay, peer, &mut reply), None);
                }
                Op::Close { src } => h.server.handle_client_closed(&hostile_source(*src, true)),
                Op::Tick { millis } => h.advance(Duration::from_millis(u64::from(*millis))),
            }
            legit.check(&mut h);
        }
        prop_assert_eq!(h.server.allocation_count(), 1);
        prop_assert_eq!(h.stats().allocations_created, 1);
        prop_assert!(h.take_events().is_empty(), "nothing of the legitimate client's was closed");
    }

    /// Mutated copies of the legitimate client's own requests, sent from
    /// its own 5-tuple (a spoofing attacker). Anything that still relays
    /// goes from its relay to a peer it has a permission for, and the
    /// client keeps working.
    #[test]
    fn mutations_from_the_clients_own_five_tuple_do_not_break_it(
        mutants in prop::collection::vec(
            (0..12usize, prop::collection::vec((any::<usize>(), 1..=255u8), 1..4), prop::option::of(any::<usize>())),
            1..40,
        )
    ) {
        let mut h = Harness::default_config();
        let mut legit = Legit::new(&mut h);
        let templates = legit.templates();
        for (template, flips, cut) in &mutants {
            let original = &templates[*template];
            let packet = mutate(original, flips, *cut, &[]);
            if packet == *original {
                // An exact replay is a valid request; a replayed Refresh with
                // LIFETIME 0 would rightly delete the allocation.
                continue;
            }
            let now = h.now;
            match h.send(legit.c.five, &packet) {
                Out::None | Out::Reply(_) => {}
                Out::Relay { from, to, .. } => {
                    prop_assert_eq!(from, legit.relay);
                    let alloc = h.server.allocation(&legit.c.five).unwrap();
                    prop_assert!(alloc.has_permission(to.ip(), now), "relayed to {} without a permission", to);
                    prop_assert!(natter_turn::peer_filter::PeerFilter::default().check(to).is_ok());
                }
                other => prop_assert!(false, "a mutated request was acted on: {:?}", other),
            }
            legit.check(&mut h);
        }
        prop_assert_eq!(h.server.allocation_count(), 1);
        prop_assert!(h.take_events().is_empty());
    }
}
