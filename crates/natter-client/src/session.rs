//! The client side of signaling protocol v1 as a sans-IO state machine:
//! join, heartbeat, resume after a dropped socket, presence, and the
//! relay of offers, answers and candidates. No socket and no clock: the
//! caller reports what its WebSocket did and what time it is.
//!
//! Inputs: [`Session::handle_open`] (a socket connected),
//! [`Session::handle_text`] (a text frame), [`Session::handle_close`]
//! (the socket closed; the answer says whether to reconnect),
//! [`Session::handle_timeout`]. Application calls: [`Session::signal`],
//! [`Session::set_state`], [`Session::leave`]. Outputs, drained in this
//! order: [`Session::poll_output`] (frames to send, or a socket to drop),
//! [`Session::poll_event`], [`Session::poll_timeout`].
//!
//! The rules are the web client's (`web/signaling.js`, `web/app.js`):
//! the first message is `join`, with the `resume` key of the last
//! `welcome` after a reconnect; `resume-failed` joins afresh on the same
//! socket; a ping goes out every half heartbeat, and a socket that has
//! been silent for three heartbeats is dropped as half-open. After a
//! fresh `welcome` we are the newcomer and offer to everyone already
//! there; after a resume, whoever joined meanwhile has offered to us.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::message::{ClientMessage, IceServerInfo, PeerInfo, ServerMessage, Welcome};

/// RFC 6455 §7.4.1: normal closure, which the server sends after `leave`.
pub const CLOSE_NORMAL: u16 = 1000;
/// docs/signaling.md, Errors: the close codes after which joining again
/// cannot help (4000 plus 400, 401 or 403).
pub const FATAL_CLOSE: [u16; 3] = [4400, 4401, 4403];
/// The peer id of the server's SFU in SFU rooms (docs/signaling.md).
pub const SFU_PEER: &str = "sfu";
/// A socket silent for this many heartbeats is dropped (docs/signaling.md).
const SILENT_HEARTBEATS: u32 = 3;

/// Who joins, where, with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOptions {
    pub room: String,
    pub name: String,
    pub token: Option<String>,
}

/// A session description or candidate relayed between two participants.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    Offer(String),
    Answer(String),
    /// `{candidate, sdpMid, sdpMLineIndex, usernameFragment}`, or `Null`
    /// for end-of-candidates.
    Candidate(Value),
}

/// What the session learned.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A `welcome`: joined (or `resumed`) with this id.
    Joined {
        id: String,
        name: String,
        room: String,
        resumed: bool,
        ice_servers: Vec<IceServerInfo>,
        /// An SFU room: one connection, to [`SFU_PEER`], instead of a mesh.
        sfu: bool,
        /// `welcome.limits.maxParticipants`, when the server said.
        max_participants: Option<usize>,
    },
    /// A participant to connect to; `initiator` when we offer first.
    PeerJoined {
        peer: PeerInfo,
        initiator: bool,
    },
    /// A participant is gone: `left`, `timeout`, or `rejoined` when our
    /// own session expired and every old connection went with it.
    PeerLeft {
        id: String,
        reason: String,
    },
    PeerState {
        id: String,
        audio: bool,
        video: bool,
        screen: bool,
    },
    Signal {
        from: String,
        signal: Signal,
    },
    /// SFU rooms: section `mid` of our connection to the SFU now
    /// carries `peer`'s track of `kind` (`audio` or `video`), or nothing.
    Track {
        mid: String,
        peer: Option<String>,
        kind: String,
    },
    /// SFU rooms: the active speaker is now `peer` (or nobody).
    Speaker {
        peer: Option<String>,
    },
    /// SFU rooms: a chat line relayed by the server.
    Chat {
        from: String,
        text: String,
    },
    /// The server refused a message (docs/signaling.md, Errors).
    Refused {
        code: String,
        message: String,
        reference: Option<String>,
    },
}

/// What the socket should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this text frame.
    Send(String),
    /// Nothing heard for three heartbeats: the socket is half-open; drop
    /// it and reconnect.
    Drop,
}

/// What to do after the socket closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseVerdict {
    /// We left, or the server ended the session normally.
    Closed,
    /// The server refused us for good; `code` is its error code (e.g.
    /// `token-invalid`) when an `error` preceded the close.
    Fatal {
        close_code: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// Unexpected: reconnect and resume.
    Reconnect,
}

/// One client session of signaling protocol v1.
#[derive(Debug)]
pub struct Session {
    options: JoinOptions,
    id: Option<String>,
    resume: Option<String>,
    heartbeat: Duration,
    joined: bool,
    sfu: bool,
    leaving: bool,
    last_heard: Option<Instant>,
    next_ping: Option<Instant>,
    peers: BTreeMap<String, PeerInfo>,
    last_error: Option<(String, String)>,
    outputs: VecDeque<Output>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    pub fn new(options: JoinOptions) -> Self {
        Session {
            options,
            id: None,
            resume: None,
            heartbeat: Duration::from_millis(5000),
            joined: false,
            sfu: false,
            leaving: false,
            last_heard: None,
            next_ping: None,
            peers: BTreeMap::new(),
            last_error: None,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our participant id, from the latest `welcome`.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether a `welcome` came on the current socket.
    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// The other participants, by id.
    pub fn peers(&self) -> &BTreeMap<String, PeerInfo> {
        &self.peers
    }

    /// Whether the latest `welcome` said the room runs through the SFU.
    pub fn is_sfu(&self) -> bool {
        self.sfu
    }

    /// The resume key of the latest `welcome`.
    pub fn resume_key(&self) -> Option<&str> {
        self.resume.as_deref()
    }

    /// A socket connected: join (resuming when we were joined before).
    pub fn handle_open(&mut self, now: Instant) {
        self.joined = false;
        self.last_heard = Some(now);
        self.last_error = None;
        self.send_join();
    }

    /// A text frame from the server. A frame that is not a protocol
    /// message is an error and otherwise ignored.
    pub fn handle_text(&mut self, now: Instant, text: &str) -> Result<(), serde_json::Error> {
        self.last_heard = Some(now);
        match ServerMessage::parse(text)? {
            ServerMessage::Welcome(welcome) => self.welcome(now, welcome),
            ServerMessage::PeerJoined { peer } => {
                if Some(&peer.id) != self.id.as_ref() && !self.peers.contains_key(&peer.id) {
                    self.peers.insert(peer.id.clone(), peer.clone());
                    self.events
                        .push_back(SessionEvent::PeerJoined { peer, initiator: false });
                }
            }
            ServerMessage::PeerLeft { id, reason } => {
                if self.peers.remove(&id).is_some() {
                    self.events.push_back(SessionEvent::PeerLeft { id, reason });
                }
            }
            ServerMessage::PeerState {
                id,
                audio,
                video,
                screen,
            } => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    (peer.audio, peer.video, peer.screen) = (audio, video, screen);
                    self.events.push_back(SessionEvent::PeerState {
                        id,
                        audio,
                        video,
                        screen,
                    });
                }
            }
            ServerMessage::Offer { from, sdp } => self.relayed(from, Signal::Offer(sdp)),
            ServerMessage::Answer { from, sdp } => self.relayed(from, Signal::Answer(sdp)),
            ServerMessage::Candidate { from, candidate } => self.relayed(from, Signal::Candidate(candidate)),
            ServerMessage::Track { mid, peer, kind } => {
                if self.sfu {
                    self.events.push_back(SessionEvent::Track { mid, peer, kind });
                }
            }
            ServerMessage::Speaker { peer } => {
                if self.sfu {
                    self.events.push_back(SessionEvent::Speaker { peer });
                }
            }
            ServerMessage::Chat { from, text } => {
                if self.sfu {
                    self.events.push_back(SessionEvent::Chat { from, text });
                }
            }
            // We publish no simulcast: nothing to pause. Whether the
            // room is recorded changes nothing for a bot.
            ServerMessage::Layers { .. } | ServerMessage::Recording { .. } | ServerMessage::Pong => {}
            ServerMessage::Error {
                code,
                message,
                reference,
            } => {
                if code == "resume-failed" {
                    // The session is gone (the resume window passed, or the
                    // server restarted): join as a new participant.
                    self.resume = None;
                    self.send_join();
                } else {
                    self.last_error = Some((code.clone(), message.clone()));
                    self.events.push_back(SessionEvent::Refused {
                        code,
                        message,
                        reference,
                    });
                }
            }
        }
        Ok(())
    }

    /// The socket closed with this close code (`None`: no close frame).
    pub fn handle_close(&mut self, code: Option<u16>) -> CloseVerdict {
        self.joined = false;
        self.next_ping = None;
        self.outputs.clear();
        if self.leaving || code == Some(CLOSE_NORMAL) {
            return CloseVerdict::Closed;
        }
        match code {
            Some(close_code) if FATAL_CLOSE.contains(&close_code) => {
                let (code, message) = self.last_error.take().unzip();
                CloseVerdict::Fatal {
                    close_code,
                    code,
                    message,
                }
            }
            _ => CloseVerdict::Reconnect,
        }
    }

    /// Sends the heartbeat when due, and drops a silent socket.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.joined {
            return;
        }
        if let Some(heard) = self.last_heard {
            if now.saturating_duration_since(heard) > self.heartbeat * SILENT_HEARTBEATS {
                self.joined = false;
                self.next_ping = None;
                self.outputs.push_back(Output::Drop);
                return;
            }
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            self.outputs.push_back(Output::Send(ClientMessage::Ping.to_json()));
            self.next_ping = Some(now + self.ping_interval());
        }
    }

    /// When [`Session::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.joined {
            return None;
        }
        let silent = self.last_heard.map(|t| t + self.heartbeat * SILENT_HEARTBEATS);
        match (self.next_ping, silent) {
            (Some(a), Some(b)) => Some(a.min(b + Duration::from_millis(1))),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Relays a description or candidate to participant `to`; `false`
    /// (and nothing sent) while not joined, as the web client drops them.
    pub fn signal(&mut self, to: &str, signal: Signal) -> bool {
        if !self.joined {
            return false;
        }
        let to = to.to_owned();
        let message = match signal {
            Signal::Offer(sdp) => ClientMessage::Offer { to, sdp },
            Signal::Answer(sdp) => ClientMessage::Answer { to, sdp },
            Signal::Candidate(candidate) => ClientMessage::Candidate { to, candidate },
        };
        self.outputs.push_back(Output::Send(message.to_json()));
        true
    }

    /// Tells the others what we send.
    pub fn set_state(&mut self, audio: bool, video: bool, screen: bool) -> bool {
        if !self.joined {
            return false;
        }
        let message = ClientMessage::State { audio, video, screen };
        self.outputs.push_back(Output::Send(message.to_json()));
        true
    }

    /// SFU rooms: sends a chat line to everyone over signaling
    /// (docs/signaling.md); `false` (nothing sent) while not joined.
    pub fn chat(&mut self, text: &str) -> bool {
        if !self.joined {
            return false;
        }
        let message = ClientMessage::Chat { text: text.to_owned() };
        self.outputs.push_back(Output::Send(message.to_json()));
        true
    }

    /// Leaves the room: the server ends the session and closes the socket.
    pub fn leave(&mut self) {
        if self.joined {
            self.outputs.push_back(Output::Send(ClientMessage::Leave.to_json()));
        }
        self.leaving = true;
        self.joined = false;
        self.next_ping = None;
    }

    fn send_join(&mut self) {
        let join = ClientMessage::Join {
            version: natter_signaling::VERSION,
            room: self.options.room.clone(),
            name: self.options.name.clone(),
            token: self.options.token.clone(),
            resume: self.resume.clone(),
        };
        self.outputs.push_back(Output::Send(join.to_json()));
    }

    fn ping_interval(&self) -> Duration {
        // "at least every heartbeatMs": twice per period, so a late timer
        // never lets the server think we are gone.
        (self.heartbeat / 2).max(Duration::from_millis(100))
    }

    fn welcome(&mut self, now: Instant, welcome: Welcome) {
        let fresh = !welcome.resumed;
        let expired = fresh && self.id.as_ref().is_some_and(|old| *old != welcome.id);
        self.id = Some(welcome.id.clone());
        self.resume = Some(welcome.resume.clone());
        self.heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(1));
        self.joined = true;
        self.sfu = welcome.sfu;
        self.last_heard = Some(now);
        self.next_ping = Some(now + self.ping_interval());
        self.events.push_back(SessionEvent::Joined {
            id: welcome.id.clone(),
            name: welcome.name.clone(),
            room: welcome.room.clone(),
            resumed: welcome.resumed,
            ice_servers: welcome.ice_servers.clone(),
            sfu: welcome.sfu,
            max_participants: welcome.limits.map(|l| l.max_participants),
        });
        if expired {
            // Our old session expired while we were away: every connection
            // of it is gone with it.
            for id in std::mem::take(&mut self.peers).into_keys() {
                self.events.push_back(SessionEvent::PeerLeft {
                    id,
                    reason: "rejoined".to_owned(),
                });
            }
        }
        let present: Vec<&str> = welcome.peers.iter().map(|p| p.id.as_str()).collect();
        let gone: Vec<String> = self
            .peers
            .keys()
            .filter(|id| !present.contains(&id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.peers.remove(&id);
            self.events.push_back(SessionEvent::PeerLeft {
                id,
                reason: "left".to_owned(),
            });
        }
        for peer in welcome.peers {
            if peer.id == welcome.id {
                continue;
            }
            match self.peers.get_mut(&peer.id) {
                Some(known) => {
                    *known = peer.clone();
                    self.events.push_back(SessionEvent::PeerState {
                        id: peer.id,
                        audio: peer.audio,
                        video: peer.video,
                        screen: peer.screen,
                    });
                }
                None => {
                    self.peers.insert(peer.id.clone(), peer.clone());
                    self.events
                        .push_back(SessionEvent::PeerJoined { peer, initiator: fresh });
                }
            }
        }
    }

    fn relayed(&mut self, from: String, signal: Signal) {
        if self.peers.contains_key(&from) || (self.sfu && from == SFU_PEER) {
            self.events.push_back(SessionEvent::Signal { from, signal });
        } else {
            tracing::debug!(%from, "signal from an unknown participant dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(sfu: bool) -> Session {
        let mut session = Session::new(JoinOptions {
            room: "r".to_owned(),
            name: "a".to_owned(),
            token: None,
        });
        let now = Instant::now();
        session.handle_open(now);
        let welcome =
            serde_json::json!({"type": "welcome", "id": "me", "room": "r", "name": "a", "resume": "k", "sfu": sfu});
        session.handle_text(now, &welcome.to_string()).unwrap();
        session
    }

    fn events(session: &mut Session, texts: &[&str]) -> Vec<SessionEvent> {
        for text in texts {
            session.handle_text(Instant::now(), text).unwrap();
        }
        std::iter::from_fn(|| session.poll_event()).collect()
    }

    const FROM_SFU: [&str; 5] = [
        r#"{"type":"answer","from":"sfu","sdp":"v=0"}"#,
        r#"{"type":"track","mid":"2","peer":"p1","kind":"video"}"#,
        r#"{"type":"track","mid":"2","peer":null,"kind":"video"}"#,
        r#"{"type":"speaker","peer":"p1"}"#,
        r#"{"type":"chat","from":"p1","text":"hi"}"#,
    ];

    #[test]
    fn an_sfu_room_hands_out_the_sfus_answer_its_track_speaker_and_chat_messages() {
        let mut session = joined(true);
        assert!(session.is_sfu());
        let events = events(&mut session, &FROM_SFU);
        assert!(matches!(&events[0], SessionEvent::Joined { sfu: true, .. }));
        assert_eq!(
            events[1..],
            [
                SessionEvent::Signal {
                    from: SFU_PEER.to_owned(),
                    signal: Signal::Answer("v=0".to_owned())
                },
                SessionEvent::Track {
                    mid: "2".to_owned(),
                    peer: Some("p1".to_owned()),
                    kind: "video".to_owned()
                },
                SessionEvent::Track {
                    mid: "2".to_owned(),
                    peer: None,
                    kind: "video".to_owned()
                },
                SessionEvent::Speaker {
                    peer: Some("p1".to_owned())
                },
                SessionEvent::Chat {
                    from: "p1".to_owned(),
                    text: "hi".to_owned()
                },
            ]
        );
    }

    #[test]
    fn a_layers_message_is_understood_and_ignored() {
        // We publish no simulcast: dynacast has nothing to stop.
        let mut session = joined(true);
        let events = events(&mut session, &[r#"{"type":"layers","mid":"0","active":["q"]}"#]);
        assert!(matches!(&events[..], [SessionEvent::Joined { .. }]), "{events:?}");
    }

    #[test]
    fn a_mesh_room_ignores_what_claims_to_come_from_the_sfu() {
        let mut session = joined(false);
        assert!(!session.is_sfu());
        let events = events(&mut session, &FROM_SFU);
        assert!(
            matches!(&events[..], [SessionEvent::Joined { sfu: false, .. }]),
            "{events:?}"
        );
    }
}
