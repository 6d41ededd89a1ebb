//! `natter serve` over real sockets: the signaling protocol of
//! `docs/signaling.md` (every error code, tokens, resume, leave), the
//! REST API, the embedded TURN server with the credentials of `welcome`,
//! the Origin check, graceful shutdown, the web client and metrics.
//!
//! Each test starts its own server on free ports and talks to it with a
//! synchronous WebSocket client (tungstenite) and a minimal HTTP client.
//! Set `NATTER_SERVE_LOGS=1` to see the servers' logs.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use natter_stun::{Class, IntegrityKey, PasswordAlgorithm, XorRelayedAddress};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::{Message, WebSocket};

mod process;
mod support;
use process::{serve_with_turn, Natter};
use support::{allocate, challenge, error_code, exchange};

const SECRET: &str = "0123456789abcdef0123";
/// How long any single expected event may take to arrive.
const WAIT: Duration = Duration::from_secs(5);

/// A `natter serve` on loopback, killed on drop.
struct Server {
    natter: Natter,
    addr: SocketAddr,
    turn_port: u16,
}

/// Starts a server with `extra` flags and waits until `/healthz` answers.
fn start(extra: &[&str]) -> Server {
    let (mut natter, addr, turn_port) = serve_with_turn(IpAddr::from([127, 0, 0, 1]), SECRET, extra);
    let r = natter.wait_for(&format!("/healthz with {extra:?}"), || {
        http(addr, "GET", "/healthz", None, None).ok()
    });
    assert_eq!(r.status, 200, "GET /healthz");
    Server {
        natter,
        addr,
        turn_port,
    }
}

// ---------------------------------------------------------------- HTTP

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(WAIT))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(secret) = bearer {
        request.push_str(&format!("Authorization: Bearer {secret}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a complete response head");
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_owned() };
    Ok(HttpResponse { status, headers, body })
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

fn metrics(server: &Server) -> String {
    let r = http(server.addr, "GET", "/metrics", None, None).unwrap();
    assert_eq!(r.status, 200, "GET /metrics");
    r.body
}

/// The value of the sample `name` (labels included) in Prometheus text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
        .trim()
        .parse()
        .unwrap()
}

/// Polls `/metrics` until `name` has `value`.
fn await_metric(server: &Server, name: &str, value: u64) {
    let deadline = Instant::now() + WAIT;
    while metric(&metrics(server), name) != value {
        assert!(Instant::now() < deadline, "{name} never became {value}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------- WebSocket

/// What a socket saw next.
#[derive(Debug, PartialEq)]
enum Event {
    Json(Value),
    /// A close frame and its code.
    Close(Option<u16>),
    /// The connection ended without a close frame.
    Closed,
    Timeout,
}

struct Client {
    ws: WebSocket<TcpStream>,
}

impl Client {
    fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{}/ws", server.addr), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake: {e}"));
        Client { ws }
    }

    /// A socket that has joined `room`, and its welcome.
    fn join(server: &Server, room: &str, name: &str) -> (Client, Value) {
        let mut c = Client::connect(server);
        c.send(json!({"type": "join", "version": 1, "room": room, "name": name}));
        let welcome = c.expect_type("welcome");
        (c, welcome)
    }

    fn send(&mut self, message: Value) {
        self.send_text(&message.to_string());
    }

    fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send a text frame");
    }

    fn next_within(&mut self, within: Duration) -> Event {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::Timeout;
            }
            self.ws.get_mut().set_read_timeout(Some(left)).unwrap();
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    return Event::Json(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
                }
                Ok(Message::Close(frame)) => return Event::Close(frame.map(|f| u16::from(f.code))),
                Ok(Message::Binary(b)) => panic!("the server sent a binary frame of {} bytes", b.len()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Event::Closed,
            }
        }
    }

    fn next(&mut self) -> Event {
        self.next_within(WAIT)
    }

    /// The next message, which must be JSON.
    fn message(&mut self) -> Value {
        match self.next() {
            Event::Json(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn expect_type(&mut self, kind: &str) -> Value {
        let m = self.message();
        assert_eq!(m["type"], kind, "expected {kind}, got {m}");
        m
    }

    /// The next message must be an error with `code`.
    fn expect_error(&mut self, code: &str) -> Value {
        let m = self.expect_type("error");
        assert_eq!(m["code"], code, "{m}");
        assert!(m["message"].as_str().is_some_and(|s| !s.is_empty()), "{m}");
        m
    }

    /// Sends `message` and expects the error `code` in answer.
    fn expect_error_for(&mut self, message: Value, code: &str) -> Value {
        self.send(message);
        self.expect_error(code)
    }

    fn expect_close(&mut self, code: u16) {
        assert_eq!(self.next(), Event::Close(Some(code)));
    }

    /// Sends `ping` and returns everything that arrived before the `pong`:
    /// the server answers in order, so this is all that was queued for
    /// this socket until now.
    fn drain(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping"}));
        let mut seen = Vec::new();
        loop {
            let m = self.message();
            if m["type"] == "pong" {
                return seen;
            }
            seen.push(m);
        }
    }
}

fn id(welcome: &Value) -> String {
    welcome["id"].as_str().expect("welcome.id").to_owned()
}

fn offer(to: &str, sdp: &str) -> Value {
    json!({"type": "offer", "to": to, "sdp": sdp})
}

/// `natter token` with `args`.
fn offline_token(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("token")
        .args(args)
        .output()
        .expect("natter token");
    assert!(
        out.status.success(),
        "natter token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

// ---------------------------------------------------------------- tests

#[test]
fn every_error_code_reaches_its_sender_and_the_room_goes_on() {
    let server = start(&["--dev", "--max-participants", "3"]);
    let (mut a, welcome_a) = Client::join(&server, "r", "A");
    let (mut b, welcome_b) = Client::join(&server, "r", "B");
    let (id_a, id_b) = (id(&welcome_a), id(&welcome_b));
    assert_eq!(welcome_b["peers"][0]["id"], id_a.as_str());
    assert_eq!(a.expect_type("peer-joined")["peer"]["id"], id_b.as_str());

    let mut c = Client::connect(&server);
    c.send_text("{\"type\": \"join\",");
    c.expect_error("bad-json");
    let shout = c.expect_error_for(json!({"type": "shout"}), "unknown-type");
    assert_eq!(shout["ref"], "shout", "unknown-type names the refused type: {shout}");
    let mut large = String::from("{\"type\":\"ping\",\"pad\":\"");
    large.push_str(&"x".repeat(70_000 - large.len() - 2));
    large.push_str("\"}");
    assert_eq!(large.len(), 70_000);
    c.send_text(&large);
    c.expect_error("too-large");
    c.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    c.expect_error("bad-message");
    let early = c.expect_error_for(offer(&id_b, "v=0"), "not-joined");
    assert_eq!(early["ref"], "offer");
    c.send(json!({"type": "join", "version": 2, "room": "r", "name": "C"}));
    c.expect_error("unsupported-version");
    c.expect_close(4400);

    let (mut c2, welcome_c2) = Client::join(&server, "r", "C2");
    let id_c2 = id(&welcome_c2);
    assert_eq!(welcome_c2["peers"].as_array().unwrap().len(), 2);
    assert_eq!(a.expect_type("peer-joined")["peer"]["id"], id_c2.as_str());
    assert_eq!(b.expect_type("peer-joined")["peer"]["id"], id_c2.as_str());

    let mut d = Client::connect(&server);
    d.send(json!({"type": "join", "version": 1, "room": "r", "name": "D"}));
    d.expect_error("room-full");
    d.expect_close(4403);

    let again = a.expect_error_for(
        json!({"type": "join", "version": 1, "room": "r", "name": "A"}),
        "already-joined",
    );
    assert_eq!(again["ref"], "join");
    let stray = a.expect_error_for(offer("00000000deadbeef", "v=0"), "unknown-peer");
    assert_eq!(stray["ref"], "offer");

    let burst = welcome_c2["limits"]["burst"].as_u64().unwrap();
    assert_eq!(burst, 200, "burst is 4 x messagesPerSecond");
    for _ in 0..300 {
        c2.ws.write(Message::text(json!({"type": "ping"}).to_string())).unwrap();
    }
    c2.ws.flush().unwrap();
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..300 {
        let m = c2.message();
        match m["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if m["code"] == "rate-limited" => limited += 1,
            _ => panic!("unexpected answer to a ping: {m}"),
        }
    }
    // The join spent one token of the bucket.
    assert!(pongs >= burst - 1, "{pongs} pongs, {limited} rate-limited");
    assert!(limited > 0, "300 pings at once were all answered");

    a.send(offer(&id_b, "v=0 from A"));
    let relayed = b.expect_type("offer");
    assert_eq!(
        (relayed["from"].as_str(), relayed["sdp"].as_str()),
        (Some(id_a.as_str()), Some("v=0 from A"))
    );
    assert_eq!(a.drain(), Vec::<Value>::new(), "A saw something of the hostile sockets");
    assert_eq!(b.drain(), Vec::<Value>::new(), "B saw something of the hostile sockets");

    // Over 1 MiB: the socket is closed before the core sees the frame.
    let huge = format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat((1 << 20) + 1));
    let ended = match c2.ws.send(Message::text(huge)) {
        Ok(()) => c2.next(),
        Err(_) => Event::Closed,
    };
    assert!(
        matches!(ended, Event::Close(Some(1009)) | Event::Closed),
        "a frame over 1 MiB got {ended:?}"
    );
    a.send(offer(&id_b, "v=0 again"));
    assert_eq!(b.expect_type("offer")["from"], id_a.as_str());
    b.send(json!({"type": "answer", "to": id_a, "sdp": "v=0 answer"}));
    assert_eq!(a.expect_type("answer")["from"], id_b.as_str());
    // C2's session waits out its resume window: nothing yet for the others.
    assert_eq!(a.drain(), Vec::<Value>::new());
    assert_eq!(b.drain(), Vec::<Value>::new());
}

#[test]
fn join_tokens_and_the_rest_api() {
    let server = start(&[]);
    let refused = |join: Value, code: &str| {
        let mut c = Client::connect(&server);
        c.send(join);
        c.expect_error(code);
        c.expect_close(4401);
    };
    let join = |token: Option<&str>| {
        let mut j = json!({"type": "join", "version": 1, "room": "r", "name": "Someone"});
        if let Some(t) = token {
            j["token"] = json!(t);
        }
        j
    };
    refused(join(None), "token-required");
    refused(join(Some("not.a.token")), "token-invalid");
    let foreign = offline_token(&["--secret", "another secret, not the server's", "--room", "r"]);
    refused(join(Some(&foreign)), "token-invalid");
    let expired = offline_token(&["--secret", SECRET, "--room", "r", "--ttl", "0"]);
    refused(join(Some(&expired)), "token-expired");
    let other_room = offline_token(&["--secret", SECRET, "--room", "x"]);
    refused(join(Some(&other_room)), "token-invalid");

    // REST: the secret is required.
    let body = Some(r#"{"name":"Fixed"}"#);
    for bearer in [None, Some("0123456789abcdef0124")] {
        let r = http(server.addr, "POST", "/api/rooms/r/tokens", bearer, body).unwrap();
        assert_eq!(r.status, 401, "token endpoint with bearer {bearer:?}: {}", r.body);
        assert_eq!(r.json()["error"], "unauthorized");
        assert!(r.json()["message"].is_string());
    }
    let r = http(server.addr, "GET", "/api/rooms", None, None).unwrap();
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("unauthorized")));

    let minted = http(server.addr, "POST", "/api/rooms/r/tokens", Some(SECRET), body).unwrap();
    assert_eq!(minted.status, 200, "{}", minted.body);
    let minted = minted.json();
    let token = minted["token"].as_str().unwrap();
    let url = minted["url"].as_str().unwrap();
    assert!(url.contains(&format!("?room=r#token={token}")), "{url}");
    let mut c = Client::connect(&server);
    c.send(join(Some(token)));
    let welcome = c.expect_type("welcome");
    assert_eq!(
        (welcome["name"].as_str(), welcome["room"].as_str()),
        (Some("Fixed"), Some("r"))
    );

    let create = Some(r#"{"room":"standup","maxParticipants":2}"#);
    let r = http(server.addr, "POST", "/api/rooms", Some(SECRET), create).unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let created = r.json();
    assert_eq!(
        (created["room"].as_str(), created["maxParticipants"].as_u64()),
        (Some("standup"), Some(2)),
        "{created}"
    );
    let r = http(server.addr, "POST", "/api/rooms", Some(SECRET), create).unwrap();
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["error"].is_string());
    let r = http(server.addr, "GET", "/api/rooms", Some(SECRET), None).unwrap();
    assert_eq!(r.status, 200);
    let rooms = r.json();
    assert!(
        rooms
            .as_array()
            .unwrap()
            .contains(&json!({"room": "standup", "participants": 0, "maxParticipants": 2})),
        "{rooms}"
    );
}

/// docs/recording.md: recording takes the secret or a token of the
/// room, a room that exists, and the SFU (a mesh's media never reaches
/// the server; `--mesh` rooms); each refusal names why.
#[test]
fn recording_a_room_needs_a_token_or_the_secret_the_room_and_the_sfu() {
    let server = start(&["--mesh"]);
    let request = |method: &str, room: &str, bearer: Option<&str>| {
        let r = http(
            server.addr,
            method,
            &format!("/api/rooms/{room}/recording"),
            bearer,
            None,
        )
        .unwrap();
        let error = r.json()["error"].as_str().map(str::to_owned);
        (r.status, error)
    };
    let unauthorized = (401, Some("unauthorized".to_owned()));
    assert_eq!(request("POST", "standup", None), unauthorized);
    let other_room = offline_token(&["--secret", SECRET, "--room", "other"]);
    assert_eq!(request("POST", "standup", Some(&other_room)), unauthorized);
    assert_eq!(request("GET", "standup", None), unauthorized);
    assert_eq!(request("DELETE", "standup", None), unauthorized);
    assert_eq!(
        request("POST", "standup", Some(SECRET)),
        (404, Some("no-such-room".to_owned()))
    );
    let create = Some(r#"{"room":"standup"}"#);
    assert_eq!(
        http(server.addr, "POST", "/api/rooms", Some(SECRET), create)
            .unwrap()
            .status,
        201
    );
    let no_sfu = (409, Some("no-sfu".to_owned()));
    assert_eq!(request("POST", "standup", Some(SECRET)), no_sfu);
    let token = offline_token(&["--secret", SECRET, "--room", "standup"]);
    assert_eq!(
        request("POST", "standup", Some(&token)),
        no_sfu,
        "a token of the room may ask"
    );
    let not_recording = (404, Some("not-recording".to_owned()));
    assert_eq!(request("GET", "standup", Some(&token)), not_recording);
    assert_eq!(request("DELETE", "standup", Some(SECRET)), not_recording);
}

#[test]
fn welcome_turn_credentials_allocate_on_the_embedded_turn_server() {
    let server = start(&["--dev"]);
    let (_c, welcome) = Client::join(&server, "r", "A");
    let turn = welcome["iceServers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urls"][0].as_str().is_some_and(|u| u.starts_with("turn:")))
        .unwrap_or_else(|| panic!("no turn: server in {}", welcome["iceServers"]));
    let url = turn["urls"][0].as_str().unwrap();
    let port: u16 = url
        .trim_start_matches("turn:")
        .split('?')
        .next()
        .and_then(|hostport| hostport.rsplit_once(':'))
        .map(|(_, p)| p.parse().unwrap())
        .unwrap_or_else(|| panic!("no port in {url}"));
    assert_eq!(port, server.turn_port, "{url}");
    let turn_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let username = turn["username"].as_str().unwrap();
    let credential = turn["credential"].as_str().unwrap();

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (realm, nonce) = challenge(&socket, turn_addr, None);
    let key = IntegrityKey::long_term(username, &realm, credential, PasswordAlgorithm::Md5).unwrap();
    let response = exchange(
        &socket,
        turn_addr,
        &allocate(2, None, Some((username, &realm, &nonce, &key))),
    );
    let m = natter_stun::Message::decode(&response).unwrap();
    assert_eq!((m.class(), error_code(&response)), (Class::SuccessResponse, None));
    let relayed = m.require::<XorRelayedAddress>().expect("XOR-RELAYED-ADDRESS").0;
    assert!(relayed.ip().is_loopback() && relayed.port() != 0, "{relayed}");

    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (realm, nonce) = challenge(&other, turn_addr, None);
    let wrong = IntegrityKey::long_term(username, &realm, "not the credential", PasswordAlgorithm::Md5).unwrap();
    let response = exchange(
        &other,
        turn_addr,
        &allocate(3, None, Some((username, &realm, &nonce, &wrong))),
    );
    assert_eq!(error_code(&response), Some(401), "Allocate with a wrong credential");
}

#[test]
fn a_dropped_socket_resumes_its_session_or_times_out() {
    let server = start(&["--dev", "--resume-ms", "1500"]);
    let (mut a, welcome_a) = Client::join(&server, "r", "A");
    let (b, welcome_b) = Client::join(&server, "r", "B");
    let (id_a, id_b) = (id(&welcome_a), id(&welcome_b));
    a.expect_type("peer-joined");

    drop(b);
    // Once the server has seen the socket close, the offer is held for
    // the session instead of being written to the dead socket.
    await_metric(&server, "natter_signaling_sockets", 1);
    a.send(offer(&id_b, "v=0 meanwhile"));
    let mut b = Client::connect(&server);
    b.send(json!({"type": "join", "version": 1, "room": "r", "name": "B", "resume": welcome_b["resume"]}));
    let welcome = b.expect_type("welcome");
    assert_eq!(
        (welcome["resumed"].as_bool(), welcome["id"].as_str()),
        (Some(true), Some(id_b.as_str()))
    );
    let held = b.expect_type("offer");
    assert_eq!(
        (held["from"].as_str(), held["sdp"].as_str()),
        (Some(id_a.as_str()), Some("v=0 meanwhile"))
    );
    assert_eq!(a.drain(), Vec::<Value>::new(), "A noticed B's reconnect");

    let dropped = Instant::now();
    drop(b);
    let left = a.message();
    let after = dropped.elapsed();
    assert_eq!(left, json!({"type": "peer-left", "id": id_b, "reason": "timeout"}));
    assert!(
        after >= Duration::from_millis(1500),
        "peer-left {after:?} after the drop"
    );
}

#[test]
fn leave_closes_the_socket_and_tells_the_room_at_once() {
    let server = start(&["--dev"]);
    let (mut a, _) = Client::join(&server, "r", "A");
    let (mut b, welcome_b) = Client::join(&server, "r", "B");
    a.expect_type("peer-joined");
    let sent = Instant::now();
    b.send(json!({"type": "leave"}));
    b.expect_close(1000);
    let left = a.message();
    assert_eq!(
        left,
        json!({"type": "peer-left", "id": id(&welcome_b), "reason": "left"})
    );
    // Not after the 5 s resume window.
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "peer-left after {:?}",
        sent.elapsed()
    );
}

#[test]
fn a_websocket_from_another_origin_is_refused() {
    let server = start(&["--dev"]);
    // The socket, or the HTTP status of the refusal.
    let upgrade = |origin: &str| -> Result<Client, u16> {
        let mut request = format!("ws://{}/ws", server.addr).into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        match tungstenite::client(request, stream) {
            Ok((ws, _)) => Ok(Client { ws }),
            Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => Err(response.status().as_u16()),
            Err(e) => panic!("upgrade with Origin {origin}: {e}"),
        }
    };
    match upgrade("http://evil.example") {
        Err(status) => assert_eq!(status, 403, "cross-origin upgrade"),
        Ok(_) => panic!("a WebSocket from http://evil.example was accepted"),
    }
    let Ok(mut c) = upgrade(&format!("http://{}", server.addr)) else {
        panic!("a WebSocket from the server's own origin was refused");
    };
    assert_eq!(c.drain(), Vec::<Value>::new());
}

#[test]
fn sigterm_closes_every_socket_with_1001_and_exits_cleanly() {
    let mut server = start(&["--dev"]);
    let (mut a, _) = Client::join(&server, "r", "A");
    let (mut b, _) = Client::join(&server, "r", "B");
    a.expect_type("peer-joined");
    let pid = server.natter.id() as libc::pid_t;
    // SAFETY: signals our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let signalled = Instant::now();
    a.expect_close(1001);
    b.expect_close(1001);
    let deadline = signalled + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.natter.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "natter serve still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "natter serve exited with {status}");
}

#[test]
fn web_client_and_metrics() {
    let server = start(&["--dev"]);
    let page = http(server.addr, "GET", "/", None, None).unwrap();
    assert_eq!(page.status, 200, "GET /: {}", page.body);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    let csp = page
        .header("content-security-policy")
        .expect("Content-Security-Policy on /");
    assert!(csp.contains("default-src"), "{csp}");

    let before = metrics(&server);
    assert!(before.contains("\nnatter_signaling_joins "), "{before}");
    assert!(before.contains("\nnatter_turn_"), "no TURN metrics:\n{before}");
    let codes = ["bad-json", "unknown-type", "bad-message", "not-joined"];
    let count = |text: &str, code: &str| metric(text, &format!("natter_signaling_errors{{code=\"{code}\"}}"));
    let (_a, _) = Client::join(&server, "r", "A");
    let mut c = Client::connect(&server);
    c.send_text("[1, 2");
    c.expect_error("bad-json");
    c.expect_error_for(json!({"type": "shout"}), "unknown-type");
    c.ws.send(Message::binary(vec![0u8])).unwrap();
    c.expect_error("bad-message");
    c.expect_error_for(offer("00000000deadbeef", "v=0"), "not-joined");
    let after = metrics(&server);
    for code in codes {
        assert_eq!(count(&after, code), count(&before, code) + 1, "errors with code {code}");
    }
    assert_eq!(
        metric(&after, "natter_signaling_joins"),
        metric(&before, "natter_signaling_joins") + 1
    );
}
