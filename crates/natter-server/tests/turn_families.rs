//! REQUESTED-ADDRESS-FAMILY (RFC 8656 §7.2, §18.6) on the TURN server
//! embedded in a running `natter serve`, over real sockets: one server on
//! IPv6 loopback (`--listen [::1]:PORT`, so its relays are IPv6) and one on
//! IPv4 loopback. A client takes the TURN credentials of its `welcome` and
//! allocates with REQUESTED-ADDRESS-FAMILY IPv6, IPv4 and without it; the
//! relayed address has the family asked for, and a family the server has
//! no relay address for is refused with 440 (Address Family not
//! Supported). Without the attribute the server allocates IPv4 (§7.2),
//! which is what Chromium gets: it never sends the attribute
//! (tests/browser/ipv6.test.mjs).
//!
//! Set `NATTER_SERVE_LOGS=1` to see the servers' logs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use natter_stun::{AddressFamily, Class, ErrorCode, IntegrityKey, Message, PasswordAlgorithm, XorRelayedAddress};
use serde_json::{json, Value};

mod process;
mod support;
use process::{serve_with_turn, Natter};
use support::{allocate, challenge, exchange};

const SECRET: &str = "0123456789abcdef0123";
/// How long any single expected answer may take to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// RFC 8656 §18.6 / §19: the family is not supported.
const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;

/// A `natter serve` on one loopback address, killed on drop.
struct Server {
    _natter: Natter,
    addr: SocketAddr,
}

/// Starts `natter serve --dev` listening (HTTP and TURN) on `ip` only.
fn start(ip: IpAddr) -> Server {
    let (mut natter, addr, _) = serve_with_turn(ip, SECRET, &["--dev"]);
    natter.wait_listening(addr);
    Server { _natter: natter, addr }
}

/// TURN as `welcome` announces it: (server address, username, credential).
fn turn_credentials(server: &Server) -> (SocketAddr, String, String) {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{}/ws", server.addr), stream)
        .unwrap_or_else(|e| panic!("WebSocket handshake: {e}"));
    let join = json!({"type": "join", "version": 1, "room": "families", "name": "A"});
    ws.send(tungstenite::Message::text(join.to_string())).unwrap();
    let welcome: Value = match ws.read().expect("welcome") {
        tungstenite::Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected welcome, got {other:?}"),
    };
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let turn = welcome["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().is_some_and(|u| u.starts_with("turn:")))
        .unwrap_or_else(|| panic!("no turn: server in {}", welcome["iceServers"]));
    // turn:HOST:PORT?transport=udp, HOST bracketed when IPv6.
    let url = turn["urls"][0].as_str().unwrap();
    let host_port = url.trim_start_matches("turn:").split('?').next().unwrap();
    let addr: SocketAddr = host_port.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(
        addr.ip(),
        server.addr.ip(),
        "TURN is announced on the listening address: {url}"
    );
    let field = |name: &str| {
        turn[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {turn}"))
            .to_owned()
    };
    (addr, field("username"), field("credential"))
}

/// What an authenticated Allocate asking for `family` got, from a fresh
/// client socket: the relayed address, or the error code.
fn allocate_family(
    turn: SocketAddr,
    username: &str,
    credential: &str,
    family: Option<AddressFamily>,
) -> Result<SocketAddr, u16> {
    let socket = UdpSocket::bind(SocketAddr::new(turn.ip(), 0)).unwrap();
    let (realm, nonce) = challenge(&socket, turn, family);
    let key = IntegrityKey::long_term(username, &realm, credential, PasswordAlgorithm::Md5).unwrap();
    let response = exchange(
        &socket,
        turn,
        &allocate(2, family, Some((username, &realm, &nonce, &key))),
    );
    let m = Message::decode(&response).unwrap();
    match m.class() {
        Class::SuccessResponse => Ok(m.require::<XorRelayedAddress>().expect("XOR-RELAYED-ADDRESS").0),
        _ => Err(m.get::<ErrorCode>().unwrap().expect("ERROR-CODE").code),
    }
}

#[test]
fn an_ipv6_server_relays_on_ipv6_when_asked_and_refuses_ipv4() {
    let server = start(IpAddr::V6(Ipv6Addr::LOCALHOST));
    let (turn, username, credential) = turn_credentials(&server);
    let relayed = allocate_family(turn, &username, &credential, Some(AddressFamily::V6))
        .unwrap_or_else(|code| panic!("Allocate with REQUESTED-ADDRESS-FAMILY IPv6 refused with {code}"));
    assert!(
        relayed.is_ipv6() && relayed.ip().is_loopback() && relayed.port() != 0,
        "relayed {relayed}"
    );
    assert_eq!(
        allocate_family(turn, &username, &credential, Some(AddressFamily::V4)),
        Err(ADDRESS_FAMILY_NOT_SUPPORTED),
        "REQUESTED-ADDRESS-FAMILY IPv4 on a server with only IPv6 relays"
    );
    assert_eq!(
        allocate_family(turn, &username, &credential, None),
        Err(ADDRESS_FAMILY_NOT_SUPPORTED),
        "no REQUESTED-ADDRESS-FAMILY means IPv4 (RFC 8656 §7.2)"
    );
}

#[test]
fn an_ipv4_server_relays_on_ipv4_by_default_and_refuses_ipv6() {
    let server = start(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (turn, username, credential) = turn_credentials(&server);
    for family in [Some(AddressFamily::V4), None] {
        let relayed = allocate_family(turn, &username, &credential, family)
            .unwrap_or_else(|code| panic!("Allocate with {family:?} refused with {code}"));
        assert!(
            relayed.is_ipv4() && relayed.ip().is_loopback() && relayed.port() != 0,
            "{family:?}: relayed {relayed}"
        );
    }
    assert_eq!(
        allocate_family(turn, &username, &credential, Some(AddressFamily::V6)),
        Err(ADDRESS_FAMILY_NOT_SUPPORTED),
        "REQUESTED-ADDRESS-FAMILY IPv6 on a server with only IPv4 relays"
    );
}
