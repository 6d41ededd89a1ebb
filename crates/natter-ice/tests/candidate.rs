//! The SDP `candidate` attribute (RFC 8839 §5.1, RFC 6544 §4.5, RFC 8828)
//! as Chromium, Firefox and aiortc/aioice write it; typed errors; the
//! RFC 8445 §5.1.2.1 priority formula and §5.1.1.3 foundations; and
//! property tests: format → parse round trips, no panic on any string.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use natter_ice::candidate::*;
use proptest::prelude::*;

fn parse(s: &str) -> Candidate {
    s.parse().unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn err(s: &str) -> ParseCandidateError {
    match s.parse::<Candidate>() {
        Ok(c) => panic!("{s:?} should not parse, got {c:?}"),
        Err(e) => e,
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ext(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// Parses, checks the canonical form is the input itself, and that the
/// canonical form parses to the same value.
fn canonical(s: &str) -> Candidate {
    let c = parse(s);
    assert_eq!(c.to_string(), s);
    assert_eq!(parse(&c.to_string()), c);
    c
}

// ---- Chromium -------------------------------------------------------------

#[test]
fn chromium_host() {
    let c = canonical(
        "candidate:3745294315 1 udp 2122260223 192.168.1.7 56143 typ host generation 0 ufrag Hx7k network-id 1 network-cost 10",
    );
    assert_eq!(
        c,
        Candidate {
            foundation: "3745294315".into(),
            component: 1,
            protocol: Protocol::Udp,
            priority: 2122260223,
            address: CandidateAddress::Ip(sa("192.168.1.7:56143")),
            kind: CandidateKind::Host,
            related: None,
            extensions: ext(&[
                ("generation", "0"),
                ("ufrag", "Hx7k"),
                ("network-id", "1"),
                ("network-cost", "10")
            ]),
        }
    );
    assert_eq!(c.socket_addr(), Some(sa("192.168.1.7:56143")));
    assert_eq!(c.address.port(), 56143);
}

#[test]
fn chromium_mdns_host() {
    let c = canonical(
        "candidate:2 1 udp 2113937151 3e4b5c3d-1b2a-4c5d-9e8f-0a1b2c3d4e5f.local 54321 typ host generation 0",
    );
    assert_eq!(
        c.address,
        CandidateAddress::Mdns("3e4b5c3d-1b2a-4c5d-9e8f-0a1b2c3d4e5f.local".into(), 54321)
    );
    assert_eq!(c.socket_addr(), None);
    assert_eq!(c.address.port(), 54321);
    assert_eq!(c.kind, CandidateKind::Host);
    assert_eq!(c.extensions, ext(&[("generation", "0")]));
}

#[test]
fn chromium_srflx() {
    let c = canonical(
        "candidate:842163049 1 udp 1686052607 203.0.113.5 54123 typ srflx raddr 192.168.1.7 rport 56143 generation 0 ufrag Hx7k network-id 1 network-cost 10",
    );
    assert_eq!(c.kind, CandidateKind::ServerReflexive);
    assert_eq!(c.socket_addr(), Some(sa("203.0.113.5:54123")));
    assert_eq!(c.related, Some(sa("192.168.1.7:56143")));
    assert_eq!(c.extensions.len(), 4);
}

#[test]
fn chromium_srflx_with_hidden_base() {
    // With mDNS on, Chromium hides the base as 0.0.0.0:0.
    let c = canonical(
        "candidate:1052413582 1 udp 1685987071 203.0.113.5 54123 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag Hx7k network-id 1 network-cost 10",
    );
    assert_eq!(c.related, Some(sa("0.0.0.0:0")));
}

#[test]
fn chromium_relay() {
    let c = canonical(
        "candidate:3260416016 1 udp 41885439 198.51.100.20 61234 typ relay raddr 203.0.113.5 rport 54123 generation 0 ufrag Hx7k network-id 1 network-cost 10",
    );
    assert_eq!(c.kind, CandidateKind::Relayed);
    assert_eq!(c.priority, 41885439);
    assert_eq!(c.related, Some(sa("203.0.113.5:54123")));
}

#[test]
fn chromium_tcp() {
    let passive = canonical(
        "candidate:1015399395 1 tcp 1518280447 192.168.1.7 9 typ host tcptype passive generation 0 ufrag Hx7k network-id 1 network-cost 10",
    );
    assert_eq!(passive.protocol, Protocol::Tcp(TcpType::Passive));
    // `tcptype` is not an extension: it lives in `protocol`.
    assert!(passive.extensions.iter().all(|(n, _)| n != "tcptype"));
    assert_eq!(passive.extensions.len(), 4);
    let active = canonical("candidate:1015399395 1 tcp 1518280447 192.168.1.7 9 typ host tcptype active generation 0");
    assert_eq!(active.protocol, Protocol::Tcp(TcpType::Active));
    let so = canonical("candidate:1015399395 1 tcp 1518280447 192.168.1.7 50000 typ host tcptype so");
    assert_eq!(so.protocol, Protocol::Tcp(TcpType::SimultaneousOpen));
}

#[test]
fn chromium_ipv6() {
    let c = canonical(
        "candidate:1876313031 1 udp 2122262783 2001:db8::1234:5678 50110 typ host generation 0 ufrag Hx7k network-id 2 network-cost 10",
    );
    assert_eq!(c.socket_addr(), Some(sa("[2001:db8::1234:5678]:50110")));
    let srflx =
        canonical("candidate:9 1 udp 1686055167 2001:db8::1 50110 typ srflx raddr fe80::1 rport 50110 generation 0");
    assert_eq!(srflx.related, Some(sa("[fe80::1]:50110")));
}

#[test]
fn sdp_line_with_a_equals_and_crlf() {
    let line = "a=candidate:3745294315 1 udp 2122260223 192.168.1.7 56143 typ host generation 0\r\n";
    let c = parse(line);
    assert_eq!(
        c.to_string(),
        "candidate:3745294315 1 udp 2122260223 192.168.1.7 56143 typ host generation 0"
    );
    // Without any prefix: what the fields alone say.
    assert_eq!(
        parse("3745294315 1 udp 2122260223 192.168.1.7 56143 typ host generation 0"),
        c
    );
}

// ---- aiortc / aioice ------------------------------------------------------

#[test]
fn aioice_host_srflx_tcp() {
    let host = canonical("candidate:0d4c6c8d4b5f3b3e8f1c2a9e7d6b5a41 1 udp 2130706431 10.0.0.1 50000 typ host");
    assert_eq!(host.foundation.len(), 32);
    assert_eq!(host.priority, priority(CandidateKind::Host, 65535, 1));
    assert!(host.extensions.is_empty());
    let srflx =
        canonical("candidate:5e2b1f6a0c3d4e5f6a7b8c9d0e1f2a3b 1 udp 1694498815 203.0.113.9 50000 typ srflx raddr 10.0.0.1 rport 50000");
    assert_eq!(srflx.priority, priority(CandidateKind::ServerReflexive, 65535, 1));
    assert_eq!(srflx.related, Some(sa("10.0.0.1:50000")));
    let tcp =
        canonical("candidate:7a3c1e5b9d2f4a6c8e0b1d3f5a7c9e2b 1 tcp 1526726655 10.0.0.1 9 typ host tcptype active");
    assert_eq!(tcp.protocol, Protocol::Tcp(TcpType::Active));
}

// ---- Firefox --------------------------------------------------------------

#[test]
fn firefox_forms() {
    let host = parse("candidate:0 1 UDP 2122252543 192.168.1.7 51000 typ host");
    assert_eq!(host.protocol, Protocol::Udp);
    assert_eq!(host.foundation, "0");
    // Written back in lower case, parsed back the same.
    assert_eq!(
        host.to_string(),
        "candidate:0 1 udp 2122252543 192.168.1.7 51000 typ host"
    );
    assert_eq!(parse(&host.to_string()), host);

    let mdns = parse("candidate:0 1 UDP 2122252543 0f2a4c6e-8b1d-4f3a-9c5e-7a2b4d6f8e0c.local 51000 typ host");
    assert!(matches!(mdns.address, CandidateAddress::Mdns(ref n, 51000) if n.ends_with(".local")));

    let srflx = parse("candidate:1 1 UDP 1686052863 203.0.113.5 51000 typ srflx raddr 192.168.1.7 rport 51000");
    assert_eq!(srflx.related, Some(sa("192.168.1.7:51000")));
    let relay = parse("candidate:3 1 UDP 92217087 198.51.100.20 55000 typ relay raddr 198.51.100.20 rport 55000");
    assert_eq!(relay.kind, CandidateKind::Relayed);
    let tcp = parse("candidate:2 1 TCP 2105524479 192.168.1.7 9 typ host tcptype active");
    assert_eq!(tcp.protocol, Protocol::Tcp(TcpType::Active));
    let tcp_srflx =
        parse("candidate:4 1 TCP 1688084479 203.0.113.5 44321 typ srflx raddr 192.168.1.7 rport 44321 tcptype passive");
    assert_eq!(tcp_srflx.protocol, Protocol::Tcp(TcpType::Passive));
    assert_eq!(tcp_srflx.related, Some(sa("192.168.1.7:44321")));
}

// ---- Leniency -------------------------------------------------------------

#[test]
fn literals_match_in_any_case_and_whitespace_is_loose() {
    let c = parse("  CANDIDATE:1 1 Udp 5 10.0.0.1 9 TYP SrFlx RADDR 10.0.0.2 RPORT 10\tgeneration 0  ");
    assert_eq!(c.kind, CandidateKind::ServerReflexive);
    assert_eq!(c.related, Some(sa("10.0.0.2:10")));
    assert_eq!(c.extensions, ext(&[("generation", "0")]));
}

#[test]
fn tcptype_before_raddr_and_extensions_kept_in_order() {
    let c = parse("candidate:1 1 tcp 5 10.0.0.1 9 typ srflx tcptype so x 1 raddr 10.0.0.2 rport 10 y 2 x 3");
    assert_eq!(c.protocol, Protocol::Tcp(TcpType::SimultaneousOpen));
    assert_eq!(c.related, Some(sa("10.0.0.2:10")));
    assert_eq!(c.extensions, ext(&[("x", "1"), ("y", "2"), ("x", "3")]));
    assert_eq!(
        c.to_string(),
        "candidate:1 1 tcp 5 10.0.0.1 9 typ srflx raddr 10.0.0.2 rport 10 tcptype so x 1 y 2 x 3"
    );
}

#[test]
fn reflexive_without_related_address_is_accepted() {
    let c = canonical("candidate:1 1 udp 1686052607 203.0.113.5 54123 typ srflx");
    assert_eq!(c.related, None);
}

#[test]
fn limits_of_the_grammar() {
    let max_foundation = "a".repeat(32);
    let c = parse(&format!(
        "candidate:{max_foundation} 256 udp 4294967295 10.0.0.1 65535 typ prflx"
    ));
    assert_eq!(c.component, 256);
    assert_eq!(c.priority, u32::MAX);
    assert_eq!(c.kind, CandidateKind::PeerReflexive);
    assert_eq!(parse("candidate:a+/Z 1 udp 0 0.0.0.0 0 typ host").foundation, "a+/Z");
    assert_eq!(
        parse("candidate:1 1 udp 1 ::ffff:10.0.0.1 1 typ host").socket_addr(),
        Some(SocketAddr::new(
            IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
            1
        ))
    );
    assert!(matches!(
        parse("candidate:1 1 udp 1 X.LOCAL 1 typ host").address,
        CandidateAddress::Mdns(..)
    ));
}

// ---- Errors ---------------------------------------------------------------

#[test]
fn errors_name_the_field_and_value() {
    use ParseCandidateError as E;
    let cases: &[(&str, E, &str)] = &[
        (
            "a=ice-ufrag:abcd",
            E::NotCandidate("ice-ufrag".into()),
            "`a=ice-ufrag` is not a candidate attribute",
        ),
        ("", E::Missing(Field::Foundation), "candidate ends before its foundation"),
        ("candidate:", E::Missing(Field::Foundation), "candidate ends before its foundation"),
        ("candidate:1 1 udp 5 10.0.0.1 9", E::Missing(Field::CandidateType), "candidate ends before its candidate type"),
        ("candidate:1 1 udp 5 10.0.0.1 9 typ", E::Missing(Field::CandidateType), "candidate ends before its candidate type"),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ srflx raddr",
            E::Missing(Field::RelatedAddress),
            "candidate ends before its related address (raddr)",
        ),
        (
            "candidate:ab:c 1 udp 5 10.0.0.1 9 typ host",
            E::Invalid {
                field: Field::Foundation,
                value: "ab:c".into(),
                reason: "not 1 to 32 ice-chars (letters, digits, + and /)",
            },
            "invalid foundation `ab:c`: not 1 to 32 ice-chars (letters, digits, + and /)",
        ),
        (
            "candidate:1 0 udp 5 10.0.0.1 9 typ host",
            E::Invalid { field: Field::ComponentId, value: "0".into(), reason: "out of range 1–256" },
            "invalid component id `0`: out of range 1–256",
        ),
        (
            "candidate:1 257 udp 5 10.0.0.1 9 typ host",
            E::Invalid { field: Field::ComponentId, value: "257".into(), reason: "out of range 1–256" },
            "invalid component id `257`: out of range 1–256",
        ),
        (
            "candidate:1 1 sctp 5 10.0.0.1 9 typ host",
            E::UnsupportedTransport("sctp".into()),
            "transport `sctp` is not supported (expected UDP or TCP)",
        ),
        (
            "candidate:1 1 udp 4294967296 10.0.0.1 9 typ host",
            E::Invalid {
                field: Field::Priority,
                value: "4294967296".into(),
                reason: "out of range 0–4294967295",
            },
            "invalid priority `4294967296`: out of range 0–4294967295",
        ),
        (
            "candidate:1 1 udp +5 10.0.0.1 9 typ host",
            E::Invalid { field: Field::Priority, value: "+5".into(), reason: "not a decimal number" },
            "invalid priority `+5`: not a decimal number",
        ),
        (
            "candidate:1 1 udp 5 turn.example.com 9 typ relay",
            E::HostName("turn.example.com".into()),
            "connection address `turn.example.com` is a host name; only IP addresses and RFC 8828 mDNS names ending in `.local` are accepted",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.256 9 typ host",
            E::Invalid {
                field: Field::ConnectionAddress,
                value: "10.0.0.256".into(),
                reason: "not an IP address or host name",
            },
            "invalid connection address `10.0.0.256`: not an IP address or host name",
        ),
        (
            "candidate:1 1 udp 5 [::1] 9 typ host",
            E::Invalid {
                field: Field::ConnectionAddress,
                value: "[::1]".into(),
                reason: "not an IP address or host name",
            },
            "invalid connection address `[::1]`: not an IP address or host name",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 65536 typ host",
            E::Invalid { field: Field::Port, value: "65536".into(), reason: "out of range 0–65535" },
            "invalid port `65536`: out of range 0–65535",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 type host",
            E::ExpectedTyp("type".into()),
            "expected `typ` after the port, found `type`",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ nat",
            E::UnknownType("nat".into()),
            "unknown candidate type `nat` (expected host, srflx, prflx or relay)",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ srflx raddr x.local rport 1",
            E::Invalid {
                field: Field::RelatedAddress,
                value: "x.local".into(),
                reason: "not an IP address",
            },
            "invalid related address (raddr) `x.local`: not an IP address",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ srflx raddr 10.0.0.2 rport 1 rport 2",
            E::Duplicate(Field::RelatedPort),
            "related port (rport) appears more than once",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ srflx raddr 10.0.0.2 generation 0",
            E::RelatedIncomplete { present: Field::RelatedAddress, missing: Field::RelatedPort },
            "related address (raddr) without related port (rport)",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ srflx rport 1",
            E::RelatedIncomplete { present: Field::RelatedPort, missing: Field::RelatedAddress },
            "related port (rport) without related address (raddr)",
        ),
        (
            "candidate:1 1 tcp 5 10.0.0.1 9 typ host generation 0",
            E::MissingTcpType,
            "TCP candidate has no tcptype (RFC 6544 §4.5 requires active, passive or so)",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ host tcptype passive",
            E::TcpTypeOnUdp,
            "tcptype on a UDP candidate",
        ),
        (
            "candidate:1 1 tcp 5 10.0.0.1 9 typ host tcptype listen",
            E::Invalid {
                field: Field::TcpType,
                value: "listen".into(),
                reason: "expected active, passive or so",
            },
            "invalid tcptype `listen`: expected active, passive or so",
        ),
        (
            "candidate:1 1 tcp 5 10.0.0.1 9 typ host tcptype active tcptype active",
            E::Duplicate(Field::TcpType),
            "tcptype appears more than once",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ host generation 0 ufrag",
            E::ExtensionWithoutValue("ufrag".into()),
            "extension attribute `ufrag` has no value",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ host na(me) 1",
            E::Invalid { field: Field::Extension, value: "na(me)".into(), reason: "name is not a token" },
            "invalid extension attribute `na(me)`: name is not a token",
        ),
        (
            "candidate:1 1 udp 5 10.0.0.1 9 typ host name vàlue",
            E::Invalid {
                field: Field::Extension,
                value: "vàlue".into(),
                reason: "value is not visible ASCII",
            },
            "invalid extension attribute `vàlue`: value is not visible ASCII",
        ),
    ];
    for (input, error, message) in cases {
        let e = err(input);
        assert_eq!(&e, error, "{input:?}");
        assert_eq!(e.to_string(), *message, "{input:?}");
    }
}

#[test]
fn long_values_are_quoted_short() {
    let name = format!("{}.example", "a".repeat(60));
    let ParseCandidateError::HostName(quoted) = err(&format!("candidate:1 1 udp 5 {name} 9 typ host")) else {
        panic!("expected a host name error");
    };
    assert_eq!(quoted.chars().count(), MAX_QUOTED_CHARS + 1);
    assert!(quoted.ends_with('…'));
    let huge = "é".repeat(10_000);
    let e = err(&format!("candidate:{huge} 1 udp 5 10.0.0.1 9 typ host"));
    assert!(e.to_string().chars().count() < 200, "{e}");
}

// ---- priority() and foundation() -------------------------------------------

#[test]
fn priority_follows_rfc_8445_formula() {
    // §5.1.2.1 with §5.1.2.2's type preferences (126, 110, 100, 0).
    assert_eq!(priority(CandidateKind::Host, 65535, 1), 2130706431);
    assert_eq!(priority(CandidateKind::Host, 65535, 2), 2130706430);
    assert_eq!(priority(CandidateKind::PeerReflexive, 65535, 1), 1862270975);
    assert_eq!(priority(CandidateKind::ServerReflexive, 65535, 1), 1694498815);
    assert_eq!(priority(CandidateKind::Relayed, 65535, 1), 16777215);
    assert_eq!(priority(CandidateKind::Relayed, 0, 256), 0);
    // Chromium's host priority above: local preference 32542.
    assert_eq!(priority(CandidateKind::Host, 32542, 1), 2122260223);
    for lp in [0, 1, 32768, 65535] {
        let p = |k| priority(k, lp, 1);
        assert!(p(CandidateKind::Host) > p(CandidateKind::PeerReflexive));
        assert!(p(CandidateKind::PeerReflexive) > p(CandidateKind::ServerReflexive));
        assert!(p(CandidateKind::ServerReflexive) > p(CandidateKind::Relayed));
    }
}

#[test]
fn foundation_groups_type_base_server_and_transport() {
    let base: IpAddr = Ipv4Addr::new(192, 168, 1, 7).into();
    let other_base: IpAddr = Ipv4Addr::new(192, 168, 1, 8).into();
    let stun: IpAddr = Ipv4Addr::new(203, 0, 113, 1).into();
    let other_stun: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into();
    let udp = Protocol::Udp;
    let f = foundation(CandidateKind::ServerReflexive, base, Some(stun), udp);
    assert_eq!(f, foundation(CandidateKind::ServerReflexive, base, Some(stun), udp));
    assert_ne!(f, foundation(CandidateKind::Relayed, base, Some(stun), udp));
    assert_ne!(
        f,
        foundation(CandidateKind::ServerReflexive, other_base, Some(stun), udp)
    );
    assert_ne!(
        f,
        foundation(CandidateKind::ServerReflexive, base, Some(other_stun), udp)
    );
    assert_ne!(f, foundation(CandidateKind::ServerReflexive, base, None, udp));
    let tcp = foundation(
        CandidateKind::ServerReflexive,
        base,
        Some(stun),
        Protocol::Tcp(TcpType::Passive),
    );
    assert_ne!(f, tcp);
    // The TCP role is not part of the transport (§5.1.1.3).
    assert_eq!(
        tcp,
        foundation(
            CandidateKind::ServerReflexive,
            base,
            Some(stun),
            Protocol::Tcp(TcpType::Active)
        )
    );
    // The same on every run and platform: pinned.
    assert_eq!(
        foundation(CandidateKind::Host, base, None, udp),
        foundation(CandidateKind::Host, base, None, udp)
    );
    assert_eq!(f, FOUNDATION_SRFLX_192_168_1_7_VIA_203_0_113_1_UDP);
}

/// FNV-1a over `[1 (srflx), 0 (UDP), 192, 168, 1, 7, 203, 0, 113, 1]`,
/// computed independently.
const FOUNDATION_SRFLX_192_168_1_7_VIA_203_0_113_1_UDP: &str = "2563980293";

// ---- Properties -------------------------------------------------------------

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ]
}

fn candidate() -> impl Strategy<Value = Candidate> {
    let protocol = prop_oneof![
        Just(Protocol::Udp),
        Just(Protocol::Tcp(TcpType::Active)),
        Just(Protocol::Tcp(TcpType::Passive)),
        Just(Protocol::Tcp(TcpType::SimultaneousOpen)),
    ];
    let kind = prop_oneof![
        Just(CandidateKind::Host),
        Just(CandidateKind::ServerReflexive),
        Just(CandidateKind::PeerReflexive),
        Just(CandidateKind::Relayed),
    ];
    let address = prop_oneof![
        (ip(), any::<u16>()).prop_map(|(ip, port)| CandidateAddress::Ip(SocketAddr::new(ip, port))),
        (
            "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\\.(local|LOCAL)",
            any::<u16>()
        )
            .prop_map(|(name, port)| CandidateAddress::Mdns(name, port)),
        ("[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\\.local", any::<u16>())
            .prop_map(|(name, port)| CandidateAddress::Mdns(name, port)),
    ];
    let related = proptest::option::of((ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port)));
    let extension = ("[A-Za-z0-9.!%*_+`'~-]{1,12}", "[!-~]{1,16}").prop_filter("reserved name", |(name, _)| {
        !["raddr", "rport", "tcptype"]
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
    });
    (
        "[A-Za-z0-9+/]{1,32}",
        1u16..=256,
        protocol,
        any::<u32>(),
        address,
        kind,
        related,
        proptest::collection::vec(extension, 0..6),
    )
        .prop_map(
            |(foundation, component, protocol, priority, address, kind, related, extensions)| Candidate {
                foundation,
                component,
                protocol,
                priority,
                address,
                kind,
                related,
                extensions,
            },
        )
}

/// Words that steer the parser deep into the grammar, and some that
/// break it.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("candidate:1".to_string()),
        Just("a=candidate:".to_string()),
        Just("udp".to_string()),
        Just("TCP".to_string()),
        Just("typ".to_string()),
        Just("host".to_string()),
        Just("srflx".to_string()),
        Just("relay".to_string()),
        Just("raddr".to_string()),
        Just("rport".to_string()),
        Just("tcptype".to_string()),
        Just("passive".to_string()),
        Just("x.local".to_string()),
        Just("::1".to_string()),
        Just("10.0.0.1".to_string()),
        "[0-9]{1,11}",
        "\\PC{0,8}",
        ".{0,4}",
    ]
}

proptest! {
    #[test]
    fn display_then_parse_is_identity(c in candidate()) {
        let text = c.to_string();
        prop_assert!(text.starts_with("candidate:"));
        let back: Candidate = text.parse().map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(back.to_string(), text.clone());
        // The SDP line form parses too.
        prop_assert_eq!(format!("a={text}\r\n").parse::<Candidate>().ok(), Some(c));
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        if let Ok(c) = s.parse::<Candidate>() {
            prop_assert_eq!(c.to_string().parse::<Candidate>().ok(), Some(c));
        }
    }

    #[test]
    fn word_soup_never_panics(words in proptest::collection::vec(word(), 0..16), prefix in "(candidate:)?[0-9a-z]{0,3}") {
        let s = format!("{prefix}{}", words.join(" "));
        match s.parse::<Candidate>() {
            Ok(c) => prop_assert_eq!(c.to_string().parse::<Candidate>().ok(), Some(c)),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn valid_prefix_with_any_tail_never_panics(tail in "\\PC{0,40}") {
        let s = format!("candidate:1 1 tcp 5 10.0.0.1 9 typ srflx {tail}");
        if let Ok(c) = s.parse::<Candidate>() {
            prop_assert_eq!(c.to_string().parse::<Candidate>().ok(), Some(c));
        }
    }

    #[test]
    fn foundation_is_a_valid_ice_foundation(
        base in ip(),
        server in proptest::option::of(ip()),
        tcp in any::<bool>(),
    ) {
        let protocol = if tcp { Protocol::Tcp(TcpType::Passive) } else { Protocol::Udp };
        let f = foundation(CandidateKind::ServerReflexive, base, server, protocol);
        prop_assert!((1..=32).contains(&f.len()));
        prop_assert!(f.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
    }
}
