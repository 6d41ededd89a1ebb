//! The signaling core driven like the server drives it, under a virtual
//! clock: every documented error code, relaying, presence, resume and
//! timeouts.

use std::time::{Duration, Instant};

use natter_signaling::{Config, ConnectionId, Output, Signaling, TokenKey, TurnService};
use serde_json::{json, Value};

const NOW_UNIX: u64 = 1_800_000_000;

struct World {
    core: Signaling,
    now: Instant,
}

impl World {
    fn new(dev: bool) -> Self {
        let mut config = Config::new(TokenKey::new(b"test secret"));
        config.dev = dev;
        config.max_participants = 3;
        config.turn = Some(TurnService {
            stun_urls: vec!["stun:127.0.0.1:3478".into()],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: "turn secret".into(),
            ttl: Duration::from_secs(600),
        });
        World {
            core: Signaling::new(config, [1; 32]),
            now: Instant::now(),
        }
    }

    fn connect(&mut self) -> ConnectionId {
        self.core.handle_connect(self.now)
    }

    fn send(&mut self, conn: ConnectionId, message: Value) {
        self.core.handle_text(conn, &message.to_string(), self.now, NOW_UNIX);
    }

    fn raw(&mut self, conn: ConnectionId, text: &str) {
        self.core.handle_text(conn, text, self.now, NOW_UNIX);
    }

    /// Everything the core wants sent, as (connection, JSON).
    fn drain(&mut self) -> Vec<(ConnectionId, Value)> {
        let mut out = Vec::new();
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { conn, text } => out.push((conn, serde_json::from_str(&text).unwrap())),
                Output::Close { conn, code, .. } => out.push((conn, json!({"type": "close", "code": code}))),
            }
        }
        out
    }

    fn to(&mut self, conn: ConnectionId) -> Vec<Value> {
        self.drain()
            .into_iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, v)| v)
            .collect()
    }

    /// Joins `room` in dev mode and returns the socket and peer id.
    fn join(&mut self, room: &str, name: &str) -> (ConnectionId, String) {
        let conn = self.connect();
        self.send(conn, json!({"type": "join", "version": 1, "room": room, "name": name}));
        let welcome = self.to(conn).remove(0);
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (conn, welcome["id"].as_str().unwrap().to_owned())
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.core.handle_timeout(self.now);
    }
}

fn error_code(messages: &[Value]) -> &str {
    messages
        .iter()
        .find(|m| m["type"] == "error")
        .and_then(|m| m["code"].as_str())
        .unwrap_or("<no error>")
}

#[test]
fn join_announces_presence_and_hands_out_turn_credentials() {
    let mut w = World::new(true);
    let (a, a_id) = w.join("room", "Ann");
    let b = w.connect();
    w.send(
        b,
        json!({"type": "join", "version": 1, "room": "room", "name": "  Bob  "}),
    );
    let out = w.drain();
    let welcome = &out.iter().find(|(c, _)| *c == b).unwrap().1;
    assert_eq!(welcome["peers"][0]["id"], a_id.as_str());
    assert_eq!(welcome["peers"][0]["name"], "Ann");
    assert_eq!(welcome["name"], "Bob", "names are trimmed");
    let turn = &welcome["iceServers"][1];
    let username = turn["username"].as_str().unwrap();
    let expiry: u64 = username.split(':').next().unwrap().parse().unwrap();
    assert_eq!(expiry, NOW_UNIX + 600);
    let (_, password) = natter_turn::auth::rest_credentials("turn secret", &username[11..], expiry);
    assert_eq!(turn["credential"], password.as_str());
    let joined = &out.iter().find(|(c, _)| *c == a).unwrap().1;
    assert_eq!(joined["type"], "peer-joined");
    assert_eq!(joined["peer"]["name"], "Bob");
}

#[test]
fn descriptions_and_candidates_reach_only_their_peer() {
    let mut w = World::new(true);
    let (a, a_id) = w.join("room", "Ann");
    let (b, b_id) = w.join("room", "Bob");
    let (c, _) = w.join("room", "Cy");
    w.drain();
    w.send(a, json!({"type": "offer", "to": b_id, "sdp": "v=0\r\n"}));
    w.send(b, json!({"type": "answer", "to": a_id, "sdp": "v=0\r\nx"}));
    let cand = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"});
    w.send(a, json!({"type": "candidate", "to": b_id, "candidate": cand}));
    w.send(a, json!({"type": "candidate", "to": b_id, "candidate": null}));
    let out = w.drain();
    let at = |conn| {
        out.iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let to_b = at(b);
    assert_eq!(to_b[0], json!({"type": "offer", "from": a_id, "sdp": "v=0\r\n"}));
    assert_eq!(to_b[1], json!({"type": "candidate", "from": a_id, "candidate": cand}));
    assert_eq!(to_b[2], json!({"type": "candidate", "from": a_id, "candidate": null}));
    assert_eq!(at(a), vec![json!({"type": "answer", "from": b_id, "sdp": "v=0\r\nx"})]);
    assert!(at(c).is_empty());
    assert_eq!(w.core.stats().relayed, 4);
}

#[test]
fn state_is_broadcast_and_shown_to_newcomers() {
    let mut w = World::new(true);
    let (a, a_id) = w.join("room", "Ann");
    w.send(
        a,
        json!({"type": "state", "audio": true, "video": false, "screen": true}),
    );
    let (b, _) = w.join("room", "Bob");
    let _ = b;
    let c = w.connect();
    w.send(c, json!({"type": "join", "version": 1, "room": "room", "name": "Cy"}));
    let welcome = w.to(c).remove(0);
    let ann = welcome["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == a_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        ann,
        json!({"id": a_id, "name": "Ann", "audio": true, "video": false, "screen": true})
    );
}

#[test]
fn bad_messages_get_their_code_and_the_room_carries_on() {
    let mut w = World::new(true);
    let (a, _) = w.join("room", "Ann");
    let (b, b_id) = w.join("room", "Bob");
    w.drain();
    let cases: Vec<(&str, String)> = vec![
        ("bad-json", "{not json".into()),
        ("bad-json", "[1,2]".into()),
        ("bad-message", r#"{"no":"type"}"#.into()),
        ("bad-message", r#"{"type":7}"#.into()),
        ("bad-message", json!({"type": "offer", "to": b_id}).to_string()),
        (
            "bad-message",
            json!({"type": "offer", "to": b_id, "sdp": 5}).to_string(),
        ),
        (
            "bad-message",
            json!({"type": "candidate", "to": b_id, "candidate": 5}).to_string(),
        ),
        (
            "bad-message",
            json!({"type": "candidate", "to": b_id, "candidate": {"candidate": "x".repeat(2000)}}).to_string(),
        ),
        ("unknown-type", json!({"type": "shout"}).to_string()),
        (
            "too-large",
            json!({"type": "offer", "to": b_id, "sdp": "x".repeat(70_000)}).to_string(),
        ),
        (
            "already-joined",
            json!({"type": "join", "version": 1, "room": "room", "name": "A"}).to_string(),
        ),
        (
            "unknown-peer",
            json!({"type": "offer", "to": "nobody", "sdp": "v=0"}).to_string(),
        ),
    ];
    for (code, text) in cases {
        w.raw(a, &text);
        let replies = w.drain();
        assert_eq!(replies.len(), 1, "{code}: one reply to the sender only: {replies:?}");
        assert_eq!(replies[0].0, a);
        assert_eq!(replies[0].1["code"], code, "{text:.80}");
    }
    w.core.handle_binary(a, w.now);
    assert_eq!(error_code(&w.to(a)), "bad-message");
    // The sender's own session is intact.
    w.send(a, json!({"type": "offer", "to": b_id, "sdp": "v=0"}));
    assert_eq!(w.to(b)[0]["type"], "offer");
}

#[test]
fn before_join_only_ping_and_join_are_accepted() {
    let mut w = World::new(true);
    let c = w.connect();
    w.send(c, json!({"type": "ping"}));
    assert_eq!(w.to(c)[0]["type"], "pong");
    w.send(c, json!({"type": "offer", "to": "x", "sdp": "v=0"}));
    let replies = w.to(c);
    assert_eq!(error_code(&replies), "not-joined");
    assert_eq!(replies[0]["ref"], "offer");
}

#[test]
fn tokens_are_required_checked_and_expire() {
    let mut w = World::new(false);
    let attempt = |w: &mut World, token: Option<String>| {
        let c = w.connect();
        let mut join = json!({"type": "join", "version": 1, "room": "room", "name": "Ann"});
        if let Some(t) = token {
            join["token"] = t.into();
        }
        w.send(c, join);
        w.to(c)
    };
    let replies = attempt(&mut w, None);
    assert_eq!(error_code(&replies), "token-required");
    assert_eq!(replies[1], json!({"type": "close", "code": 4401}));
    assert_eq!(error_code(&attempt(&mut w, Some("garbage".into()))), "token-invalid");
    let other_key = TokenKey::new(b"other");
    let forged = natter_signaling::JoinClaims {
        room: "room".into(),
        exp: NOW_UNIX + 60,
        name: None,
        iat: None,
    };
    assert_eq!(
        error_code(&attempt(&mut w, Some(other_key.mint(&forged)))),
        "token-invalid"
    );
    let wrong_room = w
        .core
        .mint_token("elsewhere", None, Duration::from_secs(60), NOW_UNIX)
        .unwrap();
    assert_eq!(error_code(&attempt(&mut w, Some(wrong_room))), "token-invalid");
    let expired = w
        .core
        .mint_token("room", None, Duration::from_secs(60), NOW_UNIX - 61)
        .unwrap();
    assert_eq!(error_code(&attempt(&mut w, Some(expired))), "token-expired");
    let good = w
        .core
        .mint_token("room", Some("Fixed"), Duration::from_secs(60), NOW_UNIX)
        .unwrap();
    let replies = attempt(&mut w, Some(good));
    assert_eq!(replies[0]["type"], "welcome");
    assert_eq!(replies[0]["name"], "Fixed", "the token's name wins");
    assert_eq!(w.core.gauges().0, 1, "refused sockets are dropped");
}

#[test]
fn a_full_room_and_a_wrong_version_close_the_socket() {
    let mut w = World::new(true);
    for name in ["A", "B", "C"] {
        w.join("room", name);
    }
    w.drain();
    let d = w.connect();
    w.send(d, json!({"type": "join", "version": 1, "room": "room", "name": "D"}));
    let replies = w.drain();
    assert_eq!(replies.len(), 2, "nobody in the room hears of it: {replies:?}");
    assert_eq!(error_code(&[replies[0].1.clone()]), "room-full");
    assert_eq!(replies[1].1, json!({"type": "close", "code": 4403}));
    let e = w.connect();
    w.send(e, json!({"type": "join", "version": 2, "room": "other", "name": "E"}));
    let replies = w.to(e);
    assert_eq!(error_code(&replies), "unsupported-version");
    assert_eq!(replies[1]["code"], 4400);
}

#[test]
fn rate_limit_refuses_the_excess_only() {
    let mut w = World::new(true);
    let (a, _) = w.join("room", "Ann");
    w.drain();
    for _ in 0..300 {
        w.send(a, json!({"type": "ping"}));
    }
    let replies = w.to(a);
    let pongs = replies.iter().filter(|m| m["type"] == "pong").count();
    let limited = replies.iter().filter(|m| m["code"] == "rate-limited").count();
    assert_eq!(pongs + limited, 300);
    assert!((199..=200).contains(&pongs), "the burst ({pongs}) passes");
    w.advance(Duration::from_secs(1));
    w.drain();
    w.send(a, json!({"type": "ping"}));
    assert_eq!(w.to(a)[0]["type"], "pong", "the bucket refills");
}

#[test]
fn leave_tells_the_others_and_closes() {
    let mut w = World::new(true);
    let (a, a_id) = w.join("room", "Ann");
    let (b, _) = w.join("room", "Bob");
    w.drain();
    w.send(a, json!({"type": "leave"}));
    let out = w.drain();
    assert!(out.contains(&(a, json!({"type": "close", "code": 1000}))));
    assert!(out.contains(&(b, json!({"type": "peer-left", "id": a_id, "reason": "left"}))));
    w.core.handle_closed(a, w.now);
    assert_eq!(w.core.gauges().1, 1);
}

#[test]
fn a_dropped_socket_resumes_with_what_it_missed() {
    let mut w = World::new(true);
    let (a, a_id) = w.join("room", "Ann");
    let b = w.connect();
    w.send(b, json!({"type": "join", "version": 1, "room": "room", "name": "Bob"}));
    let welcome = w.to(b).remove(0);
    let (b_id, resume) = (
        welcome["id"].as_str().unwrap().to_owned(),
        welcome["resume"].as_str().unwrap().to_owned(),
    );
    w.core.handle_closed(b, w.now);
    w.send(a, json!({"type": "offer", "to": b_id, "sdp": "v=0 while away"}));
    w.advance(Duration::from_secs(4));
    assert!(w.drain().is_empty(), "nobody is told of a short absence");
    let b2 = w.connect();
    w.send(
        b2,
        json!({"type": "join", "version": 1, "room": "room", "name": "Bob", "resume": resume}),
    );
    let replies = w.to(b2);
    assert_eq!(replies[0]["type"], "welcome");
    assert_eq!(replies[0]["resumed"], true);
    assert_eq!(replies[0]["id"], b_id.as_str());
    assert_eq!(
        replies[1],
        json!({"type": "offer", "from": a_id, "sdp": "v=0 while away"})
    );
    let _ = a;
    // A resume token for a session that ended is refused, without closing.
    let c = w.connect();
    w.send(
        c,
        json!({"type": "join", "version": 1, "room": "room", "name": "X", "resume": "feedface"}),
    );
    let replies = w.to(c);
    assert_eq!(error_code(&replies), "resume-failed");
    assert_eq!(replies.len(), 1);
}

#[test]
fn a_socket_that_never_comes_back_leaves_after_the_resume_time() {
    let mut w = World::new(true);
    let (a, _) = w.join("room", "Ann");
    let (b, b_id) = w.join("room", "Bob");
    w.drain();
    w.core.handle_closed(b, w.now);
    let deadline = w.core.poll_timeout().unwrap();
    assert_eq!(deadline - w.now, Duration::from_secs(5));
    w.advance(Duration::from_secs(5));
    assert_eq!(
        w.to(a),
        vec![json!({"type": "peer-left", "id": b_id, "reason": "timeout"})]
    );
    assert_eq!(w.core.stats().timeouts, 1);
}

#[test]
fn silent_sockets_are_closed_after_three_heartbeats() {
    let mut w = World::new(true);
    let (a, _) = w.join("room", "Ann");
    let (b, b_id) = w.join("room", "Bob");
    w.drain();
    // Ann pings every 4 s; Bob says nothing for 16 s, over 3 × 5 s.
    for _ in 0..4 {
        w.now += Duration::from_secs(4);
        w.send(a, json!({"type": "ping"}));
        w.core.handle_timeout(w.now);
    }
    let out = w.drain();
    assert!(out.contains(&(b, json!({"type": "close", "code": 4408}))));
    assert!(!out.iter().any(|(c, m)| *c == a && m["type"] == "close"));
    w.advance(Duration::from_secs(5));
    assert!(w
        .to(a)
        .contains(&json!({"type": "peer-left", "id": b_id, "reason": "timeout"})));
}

#[test]
fn rooms_from_the_api_persist_and_carry_their_size() {
    let mut w = World::new(false);
    let info = w.core.create_room(Some("standup"), Some(2)).unwrap();
    assert_eq!(info.max_participants, 2);
    assert!(w.core.create_room(Some("standup"), None).is_err());
    assert!(w.core.create_room(Some("bad name!"), None).is_err());
    assert!(w.core.create_room(None, Some(1)).is_err());
    let random = w.core.create_room(None, None).unwrap();
    assert_eq!(random.room.len(), 12);
    let token = w
        .core
        .mint_token("standup", None, Duration::from_secs(60), NOW_UNIX)
        .unwrap();
    let mut socks = Vec::new();
    for _ in 0..3 {
        let c = w.connect();
        w.send(
            c,
            json!({"type": "join", "version": 1, "room": "standup", "name": "N", "token": token}),
        );
        socks.push(c);
    }
    let out = w.drain();
    assert_eq!(
        error_code(
            &out.iter()
                .filter(|(c, _)| *c == socks[2])
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        ),
        "room-full"
    );
    for c in &socks[..2] {
        w.send(*c, json!({"type": "leave"}));
    }
    assert_eq!(
        w.core
            .rooms()
            .iter()
            .find(|r| r.room == "standup")
            .unwrap()
            .participants,
        0
    );
}
