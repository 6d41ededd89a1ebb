//! WHIP (RFC 9725) and WHEP into `natter serve`'s SFU on loopback (issue
//! 14, acceptances 3 and 5), with natter peers as the clients and plain
//! HTTP/1.1 over a `TcpStream`: a publisher enters a room with a token
//! and is seen there under the token's name, a player's sections receive
//! its frames through the SFU, PATCH (trickle, and an ICE restart that
//! media outlives) and DELETE do what RFC 9725 §4.2, §4.3.1 and §4.3.2 say, and every bad request gets its status, a message, and
//! leaves nothing behind (`/metrics` counts return to zero).
//!
//! Set `NATTER_SERVE_LOGS=1` to see the server's logs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use natter::peer::{Description, Direction, MediaKind, SdpType, Transport};
use natter::{PeerConfig, PeerConnection, PeerEvent};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

mod process;
use process::{free_local_port, Natter};

const SECRET: &str = "whip test secret";
/// Frames the player must receive.
const FRAMES: usize = 30;
/// How long the media part may take.
const DEADLINE: Duration = Duration::from_secs(30);
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// A `natter serve` (SFU rooms, the default) on loopback with a secret, killed on drop.
struct Server {
    _natter: Natter,
    addr: SocketAddr,
}

/// With TURN on a free port when `turn`, so that the Link headers name
/// it, and `more` flags.
fn start_server(turn: bool, more: &[&str]) -> Server {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_local_port()));
    let listen = addr.to_string();
    let turn_port = free_local_port().to_string();
    let mut args = vec![
        "serve",
        "--secret",
        SECRET,
        "--listen",
        &listen,
        "--heartbeat-ms",
        "60000",
        "--resume-ms",
        "100",
    ];
    if turn {
        args.extend([
            "--turn-port",
            &turn_port,
            "--relay-ip",
            "127.0.0.1",
            "--turn-threads",
            "1",
        ]);
    } else {
        args.push("--no-turn");
    }
    args.extend(more);
    let mut natter = Natter::spawn(args);
    natter.wait_listening(addr);
    Server { _natter: natter, addr }
}

/// An HTTP response: status, headers (names lowercase), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request on its own connection.
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    // A server refusing early may not read it all.
    let _ = stream.write_all(&bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn mint(addr: SocketAddr, room: &str, name: &str) -> String {
    let auth = format!("Bearer {SECRET}");
    let body = json!({"name": name}).to_string();
    let response = http(
        addr,
        "POST",
        &format!("/api/rooms/{room}/tokens"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let value: Value = serde_json::from_str(&response.body).unwrap();
    value["token"].as_str().unwrap().to_owned()
}

/// A metric's value from `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let response = http(addr, "GET", "/metrics", &[], b"");
    let line = response
        .body
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// WHIP and WHEP sessions, pending offers, signaling sessions, rooms.
fn resource_counts(addr: SocketAddr) -> [u64; 5] {
    [
        metric(addr, "natter_whip_sessions{protocol=\"whip\"}"),
        metric(addr, "natter_whip_sessions{protocol=\"whep\"}"),
        metric(addr, "natter_whip_pending"),
        metric(addr, "natter_signaling_sessions"),
        metric(addr, "natter_signaling_rooms"),
    ]
}

/// A natter peer on its own UDP socket, in frame mode.
struct Client {
    pc: PeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    start: Instant,
    buf: Vec<u8>,
    datagram: Vec<u8>,
}

impl Client {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let start = Instant::now();
        let mut pc = PeerConnection::new(PeerConfig::default(), start).unwrap();
        pc.add_local_address(local).unwrap();
        pc.end_of_local_addresses();
        Client {
            pc,
            socket,
            local,
            start,
            buf: Vec::new(),
            datagram: vec![0u8; 2048],
        }
    }

    fn offer(&mut self) -> String {
        let offer = self.pc.create_offer().unwrap();
        self.pc.set_local_description(&offer).unwrap();
        offer.sdp
    }

    fn answer(&mut self, sdp: &str) {
        let answer = Description {
            kind: SdpType::Answer,
            sdp: sdp.to_owned(),
        };
        self.pc.set_remote_description(&answer).unwrap();
    }

    /// Sends what is due, reads a datagram (waiting at most 5 ms), fires
    /// timers; the events that came.
    fn step(&mut self) -> Vec<PeerEvent> {
        let now = Instant::now();
        while let Some(transmit) = self.pc.poll_transmit(now, 1, &mut self.buf) {
            let _ = self.socket.send_to(&self.buf[..transmit.size], transmit.destination);
        }
        let wait = (self.pc.poll_timeout().unwrap_or(now + Duration::from_millis(5)))
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(5));
        self.socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok((size, source)) = self.socket.recv_from(&mut self.datagram) {
            let data = &self.datagram[..size];
            self.pc
                .handle_receive(Instant::now(), Transport::Udp, source, self.local, data);
        }
        let now = Instant::now();
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            self.pc.handle_timeout(now);
        }
        std::iter::from_fn(|| self.pc.poll_event()).collect()
    }
}

/// A VP8 keyframe (RFC 6386 §9.1: P = 0, the start code, 640x480) whose
/// body is marked, so the player can tell which publisher it came from.
fn keyframe(mark: &str, number: u32) -> Vec<u8> {
    let mut frame = vec![0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    frame.extend_from_slice(format!("{mark}:{number}:").as_bytes());
    frame.resize(1200, 0xAB);
    frame
}

/// A room member on signaling, to see the WHIP publisher come and go.
fn observer(addr: SocketAddr, room: &str) -> WebSocket<MaybeTlsStream<TcpStream>> {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws")).unwrap();
    let token = mint(addr, room, "watcher");
    let join = json!({"type": "join", "version": 1, "room": room, "name": "watcher", "token": token});
    ws.send(Message::text(join.to_string())).unwrap();
    let welcome = next_message(&mut ws);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

fn next_message(ws: &mut WebSocket<MaybeTlsStream<TcpStream>>) -> Value {
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    }
    loop {
        match ws.read().expect("signaling message within 15 s") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            _ => continue,
        }
    }
}

#[test]
fn a_whip_publisher_is_played_over_whep_and_delete_frees_everything() {
    let server = start_server(true, &[]);
    let addr = server.addr;
    let room = "stage";
    let mut watcher = observer(addr, room);

    // The publisher: one sendonly video section (RFC 9725 §4.2).
    let mut publisher = Client::new();
    let video = publisher.pc.add_track(MediaKind::Video).unwrap();
    publisher.pc.set_direction(video, Direction::SendOnly).unwrap();
    let offer = publisher.offer();
    let token = mint(addr, room, "camera");
    let auth = format!("Bearer {token}");
    let created = http(
        addr,
        "POST",
        &format!("/whip/{room}"),
        &[("Authorization", &auth), ("Content-Type", "application/sdp")],
        offer.as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("content-type"), Some("application/sdp"));
    let location = created.header("location").unwrap().to_owned();
    assert!(location.starts_with(&format!("/whip/{room}/")), "{location}");
    let etag = created.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a quoted entity-tag: {etag}"
    );
    let links = created.all("link");
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("<stun:") && l.contains("rel=\"ice-server\"")),
        "{links:?}"
    );
    let turn_link = links
        .iter()
        .find(|l| l.starts_with("<turn:"))
        .expect("a TURN Link header");
    for part in [
        "rel=\"ice-server\"",
        "username=\"",
        "credential=\"",
        "credential-type=\"password\"",
    ] {
        assert!(turn_link.contains(part), "RFC 9725 §4.6: {part} in {turn_link}");
    }
    publisher.answer(&created.body);

    // The room sees it join under its token's name.
    let joined = next_message(&mut watcher);
    assert_eq!(joined["type"], "peer-joined", "{joined}");
    assert_eq!(joined["peer"]["name"], "camera");
    let publisher_id = joined["peer"]["id"].as_str().unwrap().to_owned();

    // PATCH: a trickled candidate (204), a stale entity-tag (412); RFC
    // 9725 §4.3.1.
    let frag_type = ("Content-Type", "application/trickle-ice-sdpfrag");
    let trickle = "a=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n\
                   a=candidate:1 1 udp 2113937151 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n";
    let patched = http(
        addr,
        "PATCH",
        &location,
        &[frag_type, ("If-Match", &etag)],
        trickle.as_bytes(),
    );
    assert_eq!(patched.status, 204, "{}", patched.body);
    let patched = http(
        addr,
        "PATCH",
        &location,
        &[frag_type, ("If-Match", "\"stale\"")],
        trickle.as_bytes(),
    );
    assert_eq!(patched.status, 412, "{}", patched.body);

    // The publisher sends frames until the player has its share.
    let stop = Arc::new(AtomicBool::new(false));
    let sending = send_frames(publisher, video, "whip", stop.clone());

    // The player: recvonly video and audio over WHEP.
    let mut player = Client::new();
    player
        .pc
        .add_transceiver(MediaKind::Video, Direction::RecvOnly)
        .unwrap();
    player
        .pc
        .add_transceiver(MediaKind::Audio, Direction::RecvOnly)
        .unwrap();
    let offer = player.offer();
    let player_token = mint(addr, room, "screen");
    let auth = format!("Bearer {player_token}");
    let created = http(
        addr,
        "POST",
        &format!("/whep/{room}"),
        &[("Authorization", &auth), ("Content-Type", "application/sdp")],
        offer.as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let player_location = created.header("location").unwrap().to_owned();
    assert!(
        player_location.starts_with(&format!("/whep/{room}/")),
        "{player_location}"
    );
    player.answer(&created.body);
    assert_eq!(resource_counts(addr)[..3], [1, 1, 0], "one WHIP and one WHEP session");
    let player_etag = created.header("etag").unwrap().to_owned();

    let unmarked = receive_frames(&mut player, "whip");
    assert_eq!(unmarked, 0, "every frame the player got is the publisher's");

    // An ICE restart of the player (RFC 9725 §4.3.2) while media flows:
    // 200 with the server's new credentials and a new ETag, the old ETag
    // is stale, and frames keep coming over the new pair.
    let server_ufrag = sdp_value(&created.body, "a=ice-ufrag:").unwrap();
    let (restarted, client_ufrag) = restart_ice(addr, &mut player, &player_location);
    let new_etag = restarted.header("etag").unwrap();
    assert_ne!(new_etag, player_etag, "a new ETag after the restart");
    let new_server_ufrag = sdp_value(&restarted.body, "a=ice-ufrag:").unwrap();
    assert_ne!(
        new_server_ufrag, server_ufrag,
        "new server credentials: {}",
        restarted.body
    );
    let stale = http(
        addr,
        "PATCH",
        &player_location,
        &[frag_type, ("If-Match", &player_etag)],
        trickle.as_bytes(),
    );
    assert_eq!(stale.status, 412, "the ETag before the restart: {}", stale.body);
    // A late candidate of the generation before the restart is trickle,
    // not a restart back (RFC 8838 §4.4).
    let (old_ufrag, old_pwd) = (
        sdp_value(&offer, "a=ice-ufrag:").unwrap(),
        sdp_value(&offer, "a=ice-pwd:").unwrap(),
    );
    let late = format!("a=ice-ufrag:{old_ufrag}\r\na=ice-pwd:{old_pwd}\r\n{trickle}");
    let late = http(
        addr,
        "PATCH",
        &player_location,
        &[frag_type, ("If-Match", new_etag)],
        late.as_bytes(),
    );
    assert_eq!(late.status, 204, "the old generation's candidates: {}", late.body);
    while player.pc.local_ufrags().ne([client_ufrag.as_str()]) || player.pc.stats().selected_pair.is_none() {
        assert!(
            player.start.elapsed() < DEADLINE,
            "the restarted checks selected no pair in {DEADLINE:?}"
        );
        player.step();
    }
    let unmarked = receive_frames(&mut player, "whip");
    stop.store(true, Ordering::SeqCst);
    let sent = sending.join().expect("the publisher");
    assert_eq!(
        unmarked, 0,
        "every frame the player got after the restart is the publisher's"
    );
    println!(
        "publisher sent {sent} frames, the WHEP player received {FRAMES} before the ICE restart and {FRAMES} after"
    );

    // DELETE ends both (RFC 9725 §4.2); the room sees the publisher leave.
    assert_eq!(http(addr, "DELETE", &location, &[], b"").status, 200);
    // The player's join came first.
    let left = std::iter::from_fn(|| Some(next_message(&mut watcher)))
        .find(|m| m["type"] == "peer-left")
        .unwrap();
    assert_eq!(left["id"], publisher_id.as_str(), "{left}");
    assert_eq!(http(addr, "DELETE", &player_location, &[], b"").status, 200);
    assert_eq!(
        http(addr, "DELETE", &location, &[], b"").status,
        404,
        "gone once deleted"
    );
    watcher.close(None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while resource_counts(addr) != [0; 5] {
        assert!(Instant::now() < deadline, "resources left: {:?}", resource_counts(addr));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `publisher`'s marked keyframes on `video` until `stop`; the
/// number sent.
fn send_frames(
    mut publisher: Client,
    video: natter::peer::TransceiverId,
    mark: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut next_frame = Instant::now();
        let mut number = 0u32;
        while !stop.load(Ordering::SeqCst) {
            assert!(
                publisher.start.elapsed() < DEADLINE * 2,
                "the publisher was never stopped"
            );
            let now = Instant::now();
            if now >= next_frame {
                next_frame = now + FRAME_INTERVAL;
                // Fails until DTLS connects.
                let media_time = now - publisher.start;
                if publisher
                    .pc
                    .send_frame(video, media_time, &keyframe(mark, number))
                    .is_ok()
                {
                    number += 1;
                }
            }
            publisher.step();
        }
        number
    })
}

/// Receives [`FRAMES`] frames on `player` within [`DEADLINE`]; how many
/// of them do not carry `mark`.
fn receive_frames(player: &mut Client, mark: &str) -> usize {
    let mark = format!("{mark}:");
    let (mut frames, mut unmarked) = (0, 0);
    while frames < FRAMES {
        assert!(
            player.start.elapsed() < DEADLINE,
            "the player received {frames} frames in {DEADLINE:?}"
        );
        for event in player.step() {
            if let PeerEvent::MediaFrame(frame) = event {
                if !frame.data.windows(mark.len()).any(|w| w == mark.as_bytes()) {
                    unmarked += 1;
                }
                frames += 1;
            }
        }
    }
    unmarked
}

/// The value of `client`'s first `prefix` line in `sdp`.
fn sdp_value(sdp: &str, prefix: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(prefix).map(str::to_owned))
}

/// Restarts `client`'s ICE (RFC 9725 §4.3.2): its new offer's credentials
/// PATCHed to the session at `location` with `If-Match: "*"`, and the
/// answer it applies, its current remote description with the server's
/// new credentials from the 200's fragment. The 200 and the client's new
/// ufrag.
fn restart_ice(addr: SocketAddr, client: &mut Client, location: &str) -> (Response, String) {
    client.pc.restart_ice().unwrap();
    let offer = client.offer();
    let (ufrag, pwd) = (
        sdp_value(&offer, "a=ice-ufrag:").unwrap(),
        sdp_value(&offer, "a=ice-pwd:").unwrap(),
    );
    let frag = format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n");
    let frag_type = ("Content-Type", "application/trickle-ice-sdpfrag");
    let patched = http(
        addr,
        "PATCH",
        location,
        &[frag_type, ("If-Match", "*")],
        frag.as_bytes(),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.header("content-type"), Some("application/trickle-ice-sdpfrag"));
    let new_ufrag = sdp_value(&patched.body, "a=ice-ufrag:").expect("the server's new ice-ufrag");
    let new_pwd = sdp_value(&patched.body, "a=ice-pwd:").expect("the server's new ice-pwd");
    let current = client.pc.remote_description().unwrap();
    let answer: String = current
        .lines()
        .map(|line| match line.trim_end() {
            l if l.starts_with("a=ice-ufrag:") => format!("a=ice-ufrag:{new_ufrag}\r\n"),
            l if l.starts_with("a=ice-pwd:") => format!("a=ice-pwd:{new_pwd}\r\n"),
            l => format!("{l}\r\n"),
        })
        .collect();
    client.answer(&answer);
    (patched, ufrag)
}

/// POSTs `offer` to `path` with a token of `room` naming `name`.
fn post_offer(addr: SocketAddr, path: &str, room: &str, name: &str, offer: &str) -> Response {
    let auth = format!("Bearer {}", mint(addr, room, name));
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/sdp")];
    http(addr, "POST", path, &headers, offer.as_bytes())
}

/// `/whep/{room}/{participant}`: a player of one participant receives its
/// frames and no one else's; an unknown participant gets 404 and leaves
/// nothing.
#[test]
fn a_whep_player_of_one_participant_receives_only_its_media() {
    let server = start_server(false, &[]);
    let addr = server.addr;
    let room = "stage";
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut locations = Vec::new();
    for (name, mark) in [("camera", "cam"), ("other", "oth")] {
        let mut publisher = Client::new();
        let video = publisher.pc.add_track(MediaKind::Video).unwrap();
        publisher.pc.set_direction(video, Direction::SendOnly).unwrap();
        let offer = publisher.offer();
        let created = post_offer(addr, &format!("/whip/{room}"), room, name, &offer);
        assert_eq!(created.status, 201, "{}", created.body);
        publisher.answer(&created.body);
        locations.push(created.header("location").unwrap().to_owned());
        senders.push(send_frames(publisher, video, mark, stop.clone()));
    }

    let mut player = Client::new();
    player
        .pc
        .add_transceiver(MediaKind::Video, Direction::RecvOnly)
        .unwrap();
    let offer = player.offer();
    let unknown = post_offer(addr, &format!("/whep/{room}/nobody"), room, "screen", &offer);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("no participant nobody in room stage"),
        "{}",
        unknown.body
    );
    assert_eq!(
        resource_counts(addr),
        [2, 0, 0, 2, 1],
        "the refused player left nothing"
    );
    // By name; the first publisher, which would fill the one slot otherwise, is not played.
    let created = post_offer(addr, &format!("/whep/{room}/other"), room, "screen", &offer);
    assert_eq!(created.status, 201, "{}", created.body);
    player.answer(&created.body);
    locations.push(created.header("location").unwrap().to_owned());

    let others = receive_frames(&mut player, "oth");
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.join().expect("a publisher");
    }
    assert_eq!(others, 0, "only other's frames reach its player");
    for location in &locations {
        assert_eq!(http(addr, "DELETE", location, &[], b"").status, 200);
    }
    assert_eq!(resource_counts(addr), [0; 5]);
}

/// A WHIP offer of one sendonly section, as a client would make it.
fn whip_offer() -> String {
    let mut client = Client::new();
    let video = client.pc.add_track(MediaKind::Video).unwrap();
    client.pc.set_direction(video, Direction::SendOnly).unwrap();
    client.offer()
}

#[test]
fn bad_requests_get_their_status_and_a_message_and_leave_nothing() {
    let server = start_server(false, &[]);
    let addr = server.addr;
    let offer = whip_offer();
    let sdp = ("Content-Type", "application/sdp");
    let post = |headers: &[(&str, &str)], body: &[u8]| http(addr, "POST", "/whip/hall", headers, body);

    // No token, a wrong one, one for another room: 401 with a challenge.
    let other_room = format!("Bearer {}", mint(addr, "elsewhere", "x"));
    for auth in [
        None,
        Some("Bearer not-a-token"),
        Some(other_room.as_str()),
        Some("Basic dXNlcjpwYXNz"),
    ] {
        let mut headers = vec![sdp];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let refused = post(&headers, offer.as_bytes());
        assert_eq!(refused.status, 401, "{auth:?}: {}", refused.body);
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|c| c.starts_with("Bearer")),
            "{auth:?}"
        );
        assert!(!refused.body.trim().is_empty(), "a message says why");
        assert_eq!(resource_counts(addr), [0; 5], "{auth:?} created nothing");
    }

    let auth = format!("Bearer {}", mint(addr, "hall", "cam"));
    let authorized = [sdp, ("Authorization", auth.as_str())];
    let malformed = post(&authorized, b"v=0\r\nthis is not SDP\r\n");
    assert_eq!(malformed.status, 400);
    assert!(malformed.body.contains("does not parse"), "{}", malformed.body);
    let receiving = offer.replace("a=sendonly", "a=recvonly");
    let refused = post(&authorized, receiving.as_bytes());
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("a WHIP offer's sections are sendonly"),
        "{}",
        refused.body
    );
    let text = post(&[("Content-Type", "text/plain"), authorized[1]], offer.as_bytes());
    assert_eq!(text.status, 415, "{}", text.body);
    let huge = vec![b'a'; 64 * 1024 + 1];
    let too_large = post(&authorized, &huge);
    assert_eq!(too_large.status, 413, "{}", too_large.body);
    assert_eq!(resource_counts(addr), [0; 5], "refused offers created nothing");

    let frag = ("Content-Type", "application/trickle-ice-sdpfrag");
    let unknown = http(addr, "PATCH", "/whip/hall/0123", &[frag], b"a=end-of-candidates\r\n");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("no WHIP session"), "{}", unknown.body);
    assert_eq!(http(addr, "DELETE", "/whep/hall/0123", &[], b"").status, 404);

    let options = http(addr, "OPTIONS", "/whip/hall", &[], b"");
    assert_eq!(options.status, 204);
    assert_eq!(options.header("accept-post"), Some("application/sdp"));

    // A session made with the same token is fine, and its bad PATCH is a 400.
    let created = post(&authorized, offer.as_bytes());
    assert_eq!(created.status, 201, "{}", created.body);
    let location = created.header("location").unwrap();
    let bad = http(addr, "PATCH", location, &[frag], b"c=IN IP4 127.0.0.1\r\n");
    assert_eq!(bad.status, 400, "{}", bad.body);
    let half_restart = http(addr, "PATCH", location, &[frag], b"a=ice-ufrag:R3st\r\n");
    assert_eq!(
        half_restart.status, 400,
        "a restart's ufrag without its pwd: {}",
        half_restart.body
    );
    assert_eq!(resource_counts(addr)[..4], [1, 0, 0, 1]);
    assert_eq!(http(addr, "DELETE", location, &[], b"").status, 200);
    assert_eq!(resource_counts(addr), [0; 5]);
}

/// A full room refuses a WHEP player with 503 (docs/whip.md) and keeps
/// nothing of it; once the WHIP publisher that filled the room is deleted,
/// the same request makes a session.
#[test]
fn a_full_room_refuses_with_503_and_keeps_nothing() {
    let server = start_server(false, &["--max-participants", "2"]);
    let addr = server.addr;
    let room = "small";
    let _watcher = observer(addr, room);
    let publisher = http(
        addr,
        "POST",
        &format!("/whip/{room}"),
        &[
            ("Authorization", &format!("Bearer {}", mint(addr, room, "camera"))),
            ("Content-Type", "application/sdp"),
        ],
        whip_offer().as_bytes(),
    );
    assert_eq!(publisher.status, 201, "{}", publisher.body);
    assert_eq!(resource_counts(addr), [1, 0, 0, 2, 1]);

    let mut player = Client::new();
    let video = player.pc.add_track(MediaKind::Video).unwrap();
    player.pc.set_direction(video, Direction::RecvOnly).unwrap();
    let offer = player.offer();
    let auth = format!("Bearer {}", mint(addr, room, "screen"));
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/sdp")];
    let play = || http(addr, "POST", &format!("/whep/{room}"), &headers, offer.as_bytes());
    let full = play();
    assert_eq!(full.status, 503, "{}", full.body);
    assert!(full.body.contains("has 2 participants already"), "{}", full.body);
    assert!(full.header("location").is_none());
    assert_eq!(
        resource_counts(addr),
        [1, 0, 0, 2, 1],
        "the refused player left nothing"
    );

    let location = publisher.header("location").unwrap();
    assert_eq!(http(addr, "DELETE", location, &[], b"").status, 200);
    let played = play();
    assert_eq!(played.status, 201, "{}", played.body);
    assert_eq!(resource_counts(addr), [0, 1, 0, 2, 1]);
    assert_eq!(
        http(addr, "DELETE", played.header("location").unwrap(), &[], b"").status,
        200
    );
    assert_eq!(resource_counts(addr), [0, 0, 0, 1, 1]);
}
