//! The client session against natter-signaling's own server core, in
//! memory under a virtual clock: join, relay, presence, heartbeat,
//! resume (in time and too late), leave and refused tokens.

use std::time::{Duration, Instant};

use natter_client::{CloseVerdict, JoinOptions, Output, Session, SessionEvent, Signal};
use natter_signaling::{Config, ConnectionId, JoinClaims, Signaling, TokenKey};
use serde_json::{json, Value};

const SECRET: &[u8] = b"test secret of the session tests";
const UNIX: u64 = 1_800_000_000;

struct Client {
    session: Session,
    conn: Option<ConnectionId>,
    verdicts: Vec<CloseVerdict>,
    events: Vec<SessionEvent>,
    /// Frames from the server are held back (a half-open socket).
    deaf: bool,
}

struct Net {
    server: Signaling,
    now: Instant,
    clients: Vec<Client>,
}

impl Net {
    fn new(dev: bool) -> Net {
        let mut config = Config::new(TokenKey::new(SECRET));
        config.dev = dev;
        Net {
            server: Signaling::new(config, [7; 32]),
            now: Instant::now(),
            clients: Vec::new(),
        }
    }

    fn add(&mut self, name: &str, token: Option<String>) -> usize {
        let session = Session::new(JoinOptions {
            room: "room1".to_owned(),
            name: name.to_owned(),
            token,
        });
        self.clients.push(Client {
            session,
            conn: None,
            verdicts: Vec::new(),
            events: Vec::new(),
            deaf: false,
        });
        let i = self.clients.len() - 1;
        self.connect(i);
        i
    }

    fn connect(&mut self, i: usize) {
        let conn = self.server.handle_connect(self.now);
        self.clients[i].conn = Some(conn);
        self.clients[i].session.handle_open(self.now);
        self.pump();
    }

    /// The socket drops without a close frame.
    fn drop_socket(&mut self, i: usize) {
        let conn = self.clients[i].conn.take().unwrap();
        self.server.handle_closed(conn, self.now);
        let verdict = self.clients[i].session.handle_close(None);
        self.clients[i].verdicts.push(verdict);
        self.pump();
    }

    fn advance(&mut self, by: Duration, step: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += step;
            let now = self.now;
            for c in &mut self.clients {
                if c.session.poll_timeout().is_some_and(|t| t <= now) {
                    c.session.handle_timeout(now);
                }
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
            self.pump();
        }
    }

    fn pump(&mut self) {
        loop {
            let mut progress = false;
            for i in 0..self.clients.len() {
                while let Some(output) = self.clients[i].session.poll_output() {
                    progress = true;
                    match (output, self.clients[i].conn) {
                        (Output::Send(text), Some(conn)) => self.server.handle_text(conn, &text, self.now, UNIX),
                        (Output::Drop, Some(conn)) => {
                            self.server.handle_closed(conn, self.now);
                            self.clients[i].conn = None;
                            let verdict = self.clients[i].session.handle_close(None);
                            self.clients[i].verdicts.push(verdict);
                        }
                        (_, None) => {}
                    }
                }
                while let Some(event) = self.clients[i].session.poll_event() {
                    self.clients[i].events.push(event);
                }
            }
            while let Some(output) = self.server.poll_output() {
                progress = true;
                match output {
                    natter_signaling::Output::Send { conn, text } => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.conn == Some(conn) && !c.deaf) {
                            c.session.handle_text(self.now, &text).expect("server messages parse");
                        }
                    }
                    natter_signaling::Output::Close { conn, code, .. } => {
                        self.server.handle_closed(conn, self.now);
                        if let Some(c) = self.clients.iter_mut().find(|c| c.conn == Some(conn)) {
                            c.conn = None;
                            let verdict = c.session.handle_close(Some(code));
                            c.verdicts.push(verdict);
                        }
                    }
                }
            }
            if !progress {
                break;
            }
        }
    }

    fn id(&self, i: usize) -> String {
        self.clients[i].session.id().unwrap().to_owned()
    }

    fn take_events(&mut self, i: usize) -> Vec<SessionEvent> {
        std::mem::take(&mut self.clients[i].events)
    }
}

fn joined_peers(events: &[SessionEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::PeerJoined { peer, initiator } => Some((peer.name.clone(), *initiator)),
            _ => None,
        })
        .collect()
}

#[test]
fn newcomer_offers_and_signals_relay() {
    let mut net = Net::new(true);
    let a = net.add("Alice", None);
    let b = net.add("Bob", None);
    assert!(net.clients[a].session.is_joined() && net.clients[b].session.is_joined());
    // Bob is the newcomer: he learns of Alice from `welcome` and offers first.
    assert_eq!(joined_peers(&net.take_events(b)), [("Alice".to_owned(), true)]);
    assert_eq!(joined_peers(&net.take_events(a)), [("Bob".to_owned(), false)]);

    let (ida, idb) = (net.id(a), net.id(b));
    let candidate = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "u"});
    assert!(net.clients[b]
        .session
        .signal(&ida, Signal::Offer("v=0 offer".to_owned())));
    assert!(net.clients[b]
        .session
        .signal(&ida, Signal::Candidate(candidate.clone())));
    assert!(net.clients[b].session.signal(&ida, Signal::Candidate(Value::Null)));
    assert!(net.clients[a]
        .session
        .signal(&idb, Signal::Answer("v=0 answer".to_owned())));
    net.pump();
    let at_a: Vec<_> = net.take_events(a);
    assert_eq!(
        at_a,
        [
            SessionEvent::Signal {
                from: idb.clone(),
                signal: Signal::Offer("v=0 offer".to_owned())
            },
            SessionEvent::Signal {
                from: idb.clone(),
                signal: Signal::Candidate(candidate)
            },
            SessionEvent::Signal {
                from: idb.clone(),
                signal: Signal::Candidate(Value::Null)
            },
        ]
    );
    assert_eq!(
        net.take_events(b),
        [SessionEvent::Signal {
            from: ida.clone(),
            signal: Signal::Answer("v=0 answer".to_owned())
        }]
    );
    assert!(net.clients[a].session.set_state(true, false, false));
    net.pump();
    assert_eq!(
        net.take_events(b),
        [SessionEvent::PeerState {
            id: ida,
            audio: true,
            video: false,
            screen: false
        }]
    );
}

#[test]
fn heartbeat_keeps_the_session_and_a_silent_socket_is_dropped() {
    let mut net = Net::new(true);
    let a = net.add("Alice", None);
    let b = net.add("Bob", None);
    net.take_events(a);
    // A minute of pings and pongs: nobody is dropped.
    net.advance(Duration::from_secs(60), Duration::from_millis(500));
    assert!(net.clients[a].session.is_joined() && net.clients[b].session.is_joined());
    assert!(net.take_events(a).is_empty(), "no presence change");
    // Bob's socket goes half-open: he hears nothing, so after three
    // heartbeats he drops it and reconnects with resume.
    net.clients[b].deaf = true;
    net.advance(Duration::from_millis(15_500), Duration::from_millis(100));
    assert_eq!(net.clients[b].verdicts, [CloseVerdict::Reconnect]);
    net.clients[b].deaf = false;
    let idb = net.id(b);
    net.connect(b);
    assert_eq!(net.id(b), idb);
    assert!(matches!(
        net.take_events(b).last(),
        Some(SessionEvent::Joined { resumed: true, .. }) | Some(SessionEvent::PeerState { .. })
    ));
    assert!(net.take_events(a).is_empty(), "Alice never saw Bob leave");
}

/// Alice and Bob in a room, their events so far taken, then Alice's socket drops.
fn alice_drops_out() -> (Net, usize, usize, String, String) {
    let mut net = Net::new(true);
    let a = net.add("Alice", None);
    let b = net.add("Bob", None);
    let (ida, idb) = (net.id(a), net.id(b));
    net.take_events(a);
    net.take_events(b);
    net.drop_socket(a);
    (net, a, b, ida, idb)
}

#[test]
fn resume_in_time_keeps_the_id_and_delivers_what_came_meanwhile() {
    let (mut net, a, b, ida, idb) = alice_drops_out();
    assert_eq!(net.clients[a].verdicts, [CloseVerdict::Reconnect]);
    assert!(
        !net.clients[a].session.signal(&idb, Signal::Offer("lost".to_owned())),
        "nothing sent while away"
    );
    net.clients[b]
        .session
        .signal(&ida, Signal::Offer("while away".to_owned()));
    net.advance(Duration::from_secs(2), Duration::from_millis(100));
    net.connect(a);
    assert_eq!(net.id(a), ida);
    let events = net.take_events(a);
    assert!(matches!(&events[0], SessionEvent::Joined { resumed: true, id, .. } if *id == ida));
    assert!(joined_peers(&events).is_empty(), "a resume makes no new connections");
    assert!(events.contains(&SessionEvent::Signal {
        from: idb,
        signal: Signal::Offer("while away".to_owned())
    }));
    assert!(net.take_events(b).is_empty(), "Bob never saw Alice leave");
}

#[test]
fn resume_too_late_joins_afresh_and_offers_again() {
    let (mut net, a, b, ida, idb) = alice_drops_out();
    net.advance(Duration::from_secs(6), Duration::from_millis(100));
    assert_eq!(
        net.take_events(b),
        [SessionEvent::PeerLeft {
            id: ida.clone(),
            reason: "timeout".to_owned()
        }]
    );
    // The server has forgotten Alice: `resume-failed`, then a fresh join
    // on the same socket, as a new participant who offers to Bob.
    net.connect(a);
    let new_id = net.id(a);
    assert_ne!(new_id, ida);
    let events = net.take_events(a);
    assert!(matches!(&events[0], SessionEvent::Joined { resumed: false, .. }));
    assert!(events.contains(&SessionEvent::PeerLeft {
        id: idb,
        reason: "rejoined".to_owned()
    }));
    assert_eq!(joined_peers(&events), [("Bob".to_owned(), true)]);
    assert_eq!(joined_peers(&net.take_events(b)), [("Alice".to_owned(), false)]);
}

#[test]
fn leave_ends_the_session_for_everyone() {
    let mut net = Net::new(true);
    let a = net.add("Alice", None);
    let b = net.add("Bob", None);
    let ida = net.id(a);
    net.take_events(b);
    net.clients[a].session.leave();
    net.pump();
    assert_eq!(net.clients[a].verdicts, [CloseVerdict::Closed]);
    assert_eq!(
        net.take_events(b),
        [SessionEvent::PeerLeft {
            id: ida,
            reason: "left".to_owned()
        }]
    );
}

#[test]
fn refused_tokens_are_fatal_with_the_servers_code() {
    let mut net = Net::new(false);
    let a = net.add("Alice", None);
    assert_eq!(
        net.clients[a].verdicts,
        [CloseVerdict::Fatal {
            close_code: 4401,
            code: Some("token-required".to_owned()),
            message: net.clients[a].verdicts.first().and_then(|v| match v {
                CloseVerdict::Fatal { message, .. } => message.clone(),
                _ => None,
            })
        }]
    );
    let b = net.add("Bob", Some("not.a.token".to_owned()));
    assert!(
        matches!(&net.clients[b].verdicts[..], [CloseVerdict::Fatal { close_code: 4401, code: Some(code), .. }] if code == "token-invalid")
    );
    let other_room = TokenKey::new(SECRET).mint(&JoinClaims {
        room: "elsewhere".to_owned(),
        exp: UNIX + 60,
        name: None,
        iat: None,
    });
    let c = net.add("Carol", Some(other_room));
    assert!(
        matches!(&net.clients[c].verdicts[..], [CloseVerdict::Fatal { code: Some(code), .. }] if code == "token-invalid")
    );
    let expired = TokenKey::new(SECRET).mint(&JoinClaims {
        room: "room1".to_owned(),
        exp: UNIX - 60,
        name: None,
        iat: None,
    });
    let d = net.add("Dave", Some(expired));
    assert!(
        matches!(&net.clients[d].verdicts[..], [CloseVerdict::Fatal { code: Some(code), .. }] if code == "token-expired")
    );
    let good = TokenKey::new(SECRET).mint(&JoinClaims {
        room: "room1".to_owned(),
        exp: UNIX + 60,
        name: Some("Eve".to_owned()),
        iat: None,
    });
    let e = net.add("ignored", Some(good));
    assert!(net.clients[e].session.is_joined());
    assert!(matches!(&net.take_events(e)[0], SessionEvent::Joined { name, .. } if name == "Eve"));
}

#[test]
fn our_messages_are_what_the_server_accepts() {
    use natter_client::message::ClientMessage as Ours;
    use natter_signaling::ClientMessage as Theirs;
    let join = Ours::Join {
        version: 1,
        room: "r".into(),
        name: "n".into(),
        token: Some("t".into()),
        resume: Some("k".into()),
    };
    assert!(
        matches!(Theirs::parse(&join.to_json()), Ok(Theirs::Join(j)) if j.token.as_deref() == Some("t") && j.resume.as_deref() == Some("k"))
    );
    let cases = [
        (
            Ours::Offer {
                to: "p".into(),
                sdp: "s".into(),
            },
            Theirs::Offer {
                to: "p".into(),
                sdp: "s".into(),
            },
        ),
        (
            Ours::Answer {
                to: "p".into(),
                sdp: "s".into(),
            },
            Theirs::Answer {
                to: "p".into(),
                sdp: "s".into(),
            },
        ),
        (
            Ours::Candidate {
                to: "p".into(),
                candidate: Value::Null,
            },
            Theirs::Candidate {
                to: "p".into(),
                candidate: Value::Null,
            },
        ),
        (Ours::Ping, Theirs::Ping),
        (Ours::Leave, Theirs::Leave),
    ];
    for (ours, theirs) in cases {
        assert_eq!(Theirs::parse(&ours.to_json()).unwrap(), theirs);
    }
    assert!(
        matches!(Theirs::parse(&Ours::State { audio: true, video: true, screen: false }.to_json()), Ok(Theirs::State(s)) if s.audio && !s.screen)
    );
}

#[test]
fn server_errors_are_reported_and_the_session_carries_on() {
    let mut net = Net::new(true);
    let a = net.add("Alice", None);
    net.take_events(a);
    net.clients[a].session.signal("nobody", Signal::Offer("x".to_owned()));
    net.pump();
    assert!(matches!(&net.take_events(a)[..], [SessionEvent::Refused { code, .. }] if code == "unknown-peer"));
    assert!(net.clients[a].session.is_joined());
    let mut session = Session::new(JoinOptions {
        room: "r".into(),
        name: "n".into(),
        token: None,
    });
    assert!(session.handle_text(Instant::now(), "{\"type\":\"surprise\"}").is_err());
    assert!(session.handle_text(Instant::now(), "not json").is_err());
}
