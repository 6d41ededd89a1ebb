//! Rooms and sessions: the sans-IO core of `natter serve`'s signaling.
//!
//! [`Signaling`] follows the method taxonomy of every natter core:
//!
//! - `handle_*` take input: a socket opened ([`Signaling::handle_connect`]),
//!   a text or binary frame, a socket closed, a timeout;
//! - application calls: [`Signaling::create_room`], [`Signaling::rooms`],
//!   [`Signaling::mint_token`];
//! - `poll_*` give output, in this order: [`Signaling::poll_output`] (frames
//!   to send and sockets to close), [`Signaling::poll_sfu`] (what the SFU
//!   is told, with [`Config::sfu`]), then [`Signaling::poll_timeout`].
//!
//! Time comes in as arguments: an [`Instant`] for timers and Unix seconds
//! for token expiry and TURN credentials.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{ErrorCode, Refusal};
use crate::message::{
    display_name, is_room_name, ClientMessage, IceServer, Join, LeaveReason, Limits, MediaState, Peer, ServerMessage,
    SFU_PEER, VERSION,
};
use crate::token::{JoinClaims, TokenKey};

/// A socket is closed after this many heartbeat intervals of silence.
const HEARTBEATS_MISSED: u32 = 3;
/// Messages held for a detached session; older ones are dropped first.
const RESUME_QUEUE: usize = 256;
/// WebSocket close codes (RFC 6455 §7.4.2: 4000-4999 are ours).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_REPLACED: u16 = 4409;
const CLOSE_SILENT: u16 = 4408;

/// Settings of the signaling core.
#[derive(Debug, Clone)]
pub struct Config {
    /// Rooms are open: no token needed.
    pub dev: bool,
    pub token_key: TokenKey,
    /// Default room size, for rooms created by a join.
    pub max_participants: usize,
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub burst: u32,
    pub heartbeat: Duration,
    /// How long a session whose socket closed may be resumed.
    pub resume: Duration,
    /// Most rooms at once.
    pub max_rooms: usize,
    pub turn: Option<TurnService>,
    /// Every room's media goes through the server's SFU: offers and
    /// candidates to [`SFU_PEER`] come out of [`Signaling::poll_sfu`].
    pub sfu: bool,
}

impl Config {
    /// Defaults of `docs/signaling.md`, with the given token key.
    pub fn new(token_key: TokenKey) -> Self {
        Config {
            dev: false,
            token_key,
            max_participants: 6,
            max_message_bytes: 65_536,
            messages_per_second: 50,
            burst: 200,
            heartbeat: Duration::from_secs(5),
            resume: Duration::from_secs(5),
            max_rooms: 10_000,
            turn: None,
            sfu: false,
        }
    }
}

/// The STUN/TURN server handed to every participant.
#[derive(Clone)]
pub struct TurnService {
    /// `stun:` URLs, given without credentials.
    pub stun_urls: Vec<String>,
    /// `turn:` and `turns:` URLs.
    pub turn_urls: Vec<String>,
    /// The TURN REST shared secret.
    pub secret: String,
    /// Lifetime of the credentials.
    pub ttl: Duration,
}

impl std::fmt::Debug for TurnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnService")
            .field("stun_urls", &self.stun_urls)
            .field("turn_urls", &self.turn_urls)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// One WebSocket, as the I/O layer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// Something for the I/O layer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a text frame.
    Send { conn: ConnectionId, text: String },
    /// Send a close frame with this code and reason, then drop the socket.
    Close {
        conn: ConnectionId,
        code: u16,
        reason: &'static str,
    },
}

/// What a participant's signaling tells the SFU.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuInput {
    /// A session description of type offer for its connection to the SFU.
    Offer { room: String, peer: String, sdp: String },
    /// A trickled ICE candidate; `Value::Null` is end-of-candidates.
    Candidate {
        room: String,
        peer: String,
        candidate: serde_json::Value,
    },
    /// The participant renders its section `mid` at this size.
    Tile {
        room: String,
        peer: String,
        mid: String,
        width: u16,
        height: u16,
    },
    /// The participant's session ended.
    Left { room: String, peer: String },
    /// The participant receives only `publisher`'s media (a WHEP player
    /// of one participant, [`Signaling::play_external`]).
    Source {
        room: String,
        peer: String,
        publisher: String,
    },
}

/// A room as the REST API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    pub room: String,
    pub participants: usize,
    pub max_participants: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub joins: u64,
    pub resumes: u64,
    pub leaves: u64,
    pub timeouts: u64,
    pub relayed: u64,
    /// Refusals by code, in the order of [`ErrorCode::ALL`].
    pub errors: [u64; ErrorCode::ALL.len()],
}

struct Connection {
    session: Option<String>,
    last_seen: Instant,
    /// Token bucket of the rate limit.
    tokens: f64,
    refilled: Instant,
}

struct Session {
    room: String,
    name: String,
    resume: String,
    state: MediaState,
    conn: Option<ConnectionId>,
    /// When a detached session ends; never for one without a socket
    /// ([`Signaling::join_external`]).
    expires: Option<Instant>,
    queue: VecDeque<String>,
}

struct Room {
    max_participants: usize,
    /// Peer ids in joining order.
    members: Vec<String>,
    /// Made by the API: kept while empty.
    persistent: bool,
    /// Recorded by the server (docs/recording.md): kept while empty too.
    recording: bool,
}

/// Every room, session and socket of one server.
pub struct Signaling {
    config: Config,
    rng: StdRng,
    next_conn: u64,
    connections: HashMap<ConnectionId, Connection>,
    sessions: HashMap<String, Session>,
    /// Resume token → peer id.
    resumable: HashMap<String, String>,
    rooms: HashMap<String, Room>,
    outputs: VecDeque<Output>,
    sfu_inputs: VecDeque<SfuInput>,
    stats: Stats,
}

/// Errors of the REST API calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("room names are 1 to 64 characters from A-Z a-z 0-9 _ -")]
    BadRoomName,
    #[error("maxParticipants must be 2 to {0}")]
    BadSize(usize),
    #[error("room {0} already exists")]
    RoomExists(String),
    #[error("no room {0}")]
    NoSuchRoom(String),
    #[error("too many rooms")]
    TooManyRooms,
    #[error("name must be 1 to 64 characters without control characters")]
    BadName,
}

/// The largest mesh room the API accepts: every participant uploads
/// once per other, so a mesh beyond this melts.
pub const MAX_ROOM_SIZE: usize = 16;

/// The largest room with [`Config::sfu`]: each participant uploads once
/// and receives a fixed pool of streams (docs/signaling.md, "SFU rooms").
pub const MAX_SFU_ROOM_SIZE: usize = 100;

/// The largest room size accepted, with or without the SFU.
pub fn max_room_size(sfu: bool) -> usize {
    if sfu {
        MAX_SFU_ROOM_SIZE
    } else {
        MAX_ROOM_SIZE
    }
}

impl Signaling {
    /// A core with `config`; `seed` makes ids and resume tokens
    /// (deterministic in tests, random in the server).
    pub fn new(config: Config, seed: [u8; 32]) -> Self {
        Signaling {
            config,
            rng: StdRng::from_seed(seed),
            next_conn: 0,
            connections: HashMap::new(),
            sessions: HashMap::new(),
            resumable: HashMap::new(),
            rooms: HashMap::new(),
            outputs: VecDeque::new(),
            sfu_inputs: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Open sockets, live sessions (attached or awaiting resume), rooms.
    pub fn gauges(&self) -> (usize, usize, usize) {
        (self.connections.len(), self.sessions.len(), self.rooms.len())
    }

    /// A socket opened.
    pub fn handle_connect(&mut self, now: Instant) -> ConnectionId {
        let id = ConnectionId(self.next_conn);
        self.next_conn += 1;
        self.connections.insert(
            id,
            Connection {
                session: None,
                last_seen: now,
                tokens: f64::from(self.config.burst),
                refilled: now,
            },
        );
        id
    }

    /// A binary frame arrived: the protocol has none.
    pub fn handle_binary(&mut self, conn: ConnectionId, now: Instant) {
        if self.admit(conn, 0, now).is_ok() {
            self.refuse(
                conn,
                Refusal::new(ErrorCode::BadMessage, "binary frames are not part of the protocol"),
            );
        }
    }

    /// A text frame arrived.
    pub fn handle_text(&mut self, conn: ConnectionId, text: &str, now: Instant, unix: u64) {
        if self.admit(conn, text.len(), now).is_err() {
            return;
        }
        let message = match ClientMessage::parse(text) {
            Ok(m) => m,
            Err(refusal) => return self.refuse(conn, refusal),
        };
        let kind = message.kind();
        if let Err(refusal) = self.dispatch(conn, message, unix) {
            let refusal = if refusal.reference.is_none() {
                refusal.with_ref(kind)
            } else {
                refusal
            };
            self.refuse(conn, refusal);
        }
    }

    /// The socket closed (or the I/O layer gave up on it). A joined
    /// session waits [`Config::resume`] for a `join` with `resume`.
    pub fn handle_closed(&mut self, conn: ConnectionId, now: Instant) {
        let Some(c) = self.connections.remove(&conn) else {
            return;
        };
        if let Some(session) = c.session.and_then(|id| self.sessions.get_mut(&id)) {
            if session.conn == Some(conn) {
                session.conn = None;
                session.expires = Some(now + self.config.resume);
            }
        }
    }

    /// Closes silent sockets and ends sessions not resumed in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let silence = self.config.heartbeat * HEARTBEATS_MISSED;
        let silent: Vec<ConnectionId> = self
            .connections
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_seen) >= silence)
            .map(|(id, _)| *id)
            .collect();
        for conn in silent {
            self.outputs.push_back(Output::Close {
                conn,
                code: CLOSE_SILENT,
                reason: "no heartbeat",
            });
            self.handle_closed(conn, now);
        }
        let ended: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expires.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            self.stats.timeouts += 1;
            self.end_session(&id, LeaveReason::Timeout);
        }
    }

    /// The next time [`Signaling::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let silence = self.config.heartbeat * HEARTBEATS_MISSED;
        let sockets = self.connections.values().map(|c| c.last_seen + silence);
        let sessions = self.sessions.values().filter_map(|s| s.expires);
        sockets.chain(sessions).min()
    }

    /// The next frame to send or socket to close.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next input for the SFU ([`Config::sfu`]), after
    /// [`Signaling::poll_output`].
    pub fn poll_sfu(&mut self) -> Option<SfuInput> {
        self.sfu_inputs.pop_front()
    }

    /// Creates a room ahead of its first join (REST API).
    pub fn create_room(&mut self, room: Option<&str>, max: Option<usize>) -> Result<RoomInfo, ApiError> {
        let max = max.unwrap_or(self.config.max_participants);
        let largest = max_room_size(self.config.sfu);
        if !(2..=largest).contains(&max) {
            return Err(ApiError::BadSize(largest));
        }
        if self.rooms.len() >= self.config.max_rooms {
            return Err(ApiError::TooManyRooms);
        }
        let room = match room {
            Some(r) if !is_room_name(r) => return Err(ApiError::BadRoomName),
            Some(r) if self.rooms.contains_key(r) => return Err(ApiError::RoomExists(r.to_owned())),
            Some(r) => r.to_owned(),
            None => self.random_id(6),
        };
        self.rooms.insert(
            room.clone(),
            Room {
                max_participants: max,
                members: Vec::new(),
                persistent: true,
                recording: false,
            },
        );
        Ok(RoomInfo {
            room,
            participants: 0,
            max_participants: max,
        })
    }

    /// Every room, sorted by name.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(name, r)| RoomInfo {
                room: name.clone(),
                participants: r.members.len(),
                max_participants: r.max_participants,
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// A join token for `room`, valid for `ttl` from `unix`.
    pub fn mint_token(&self, room: &str, name: Option<&str>, ttl: Duration, unix: u64) -> Result<String, ApiError> {
        if !is_room_name(room) {
            return Err(ApiError::BadRoomName);
        }
        let name = match name {
            Some(n) => Some(display_name(n).ok_or(ApiError::BadName)?.to_owned()),
            None => None,
        };
        Ok(self.config.token_key.mint(&JoinClaims {
            room: room.to_owned(),
            exp: unix + ttl.as_secs(),
            name,
            iat: Some(unix),
        }))
    }

    /// Updates liveness, then applies the size limit and the rate limit.
    fn admit(&mut self, conn: ConnectionId, len: usize, now: Instant) -> Result<(), ()> {
        let config = &self.config;
        let Some(c) = self.connections.get_mut(&conn) else {
            return Err(());
        };
        c.last_seen = now;
        let elapsed = now.saturating_duration_since(c.refilled).as_secs_f64();
        c.refilled = now;
        c.tokens = (c.tokens + elapsed * f64::from(config.messages_per_second)).min(f64::from(config.burst));
        if c.tokens < 1.0 {
            let message = format!("more than {} messages per second", config.messages_per_second);
            self.refuse(conn, Refusal::new(ErrorCode::RateLimited, message));
            return Err(());
        }
        c.tokens -= 1.0;
        if len > config.max_message_bytes {
            let message = format!("{len} bytes is more than {}", config.max_message_bytes);
            self.refuse(conn, Refusal::new(ErrorCode::TooLarge, message));
            return Err(());
        }
        Ok(())
    }

    fn dispatch(&mut self, conn: ConnectionId, message: ClientMessage, unix: u64) -> Result<(), Refusal> {
        let session = self.connections.get(&conn).and_then(|c| c.session.clone());
        match (message, session) {
            (ClientMessage::Ping, _) => self.send(conn, &ServerMessage::Pong),
            (ClientMessage::Join(join), None) => self.join(conn, join, unix)?,
            (ClientMessage::Join(_), Some(_)) => {
                return Err(Refusal::new(ErrorCode::AlreadyJoined, "this socket has joined already"))
            }
            (_, None) => return Err(Refusal::new(ErrorCode::NotJoined, "send join first")),
            (ClientMessage::Leave, Some(id)) => {
                self.stats.leaves += 1;
                self.end_session(&id, LeaveReason::Left);
                self.connections.remove(&conn);
                self.outputs.push_back(Output::Close {
                    conn,
                    code: CLOSE_NORMAL,
                    reason: "left",
                });
            }
            (ClientMessage::State(state), Some(id)) => {
                // A socket's session lives as long as the socket is attached.
                let session = self.sessions.get_mut(&id).expect("a socket's session exists");
                session.state = state;
                let text = ServerMessage::PeerState { id: &id, state }.to_json();
                self.broadcast(&id, &text);
            }
            (ClientMessage::Chat { text }, Some(id)) => {
                let text = ServerMessage::Chat { from: &id, text: &text }.to_json();
                self.broadcast(&id, &text);
            }
            (ClientMessage::Tile { mid, width, height }, Some(id)) => {
                // Only the SFU forwards layers; in a mesh the sender adapts.
                if self.config.sfu {
                    let room = self.sessions[&id].room.clone();
                    let peer = id;
                    (self.sfu_inputs).push_back(SfuInput::Tile {
                        room,
                        peer,
                        mid,
                        width,
                        height,
                    });
                }
            }
            (ClientMessage::Offer { to, sdp }, Some(id)) if self.config.sfu && to == SFU_PEER => {
                let room = self.sessions[&id].room.clone();
                self.sfu_inputs.push_back(SfuInput::Offer { room, peer: id, sdp });
            }
            (ClientMessage::Candidate { to, candidate }, Some(id)) if self.config.sfu && to == SFU_PEER => {
                let room = self.sessions[&id].room.clone();
                let peer = id;
                self.sfu_inputs.push_back(SfuInput::Candidate { room, peer, candidate });
            }
            (ClientMessage::Offer { to, sdp }, Some(id)) => {
                self.relay(&id, &to, &ServerMessage::Offer { from: &id, sdp: &sdp })?
            }
            (ClientMessage::Answer { to, sdp }, Some(id)) => {
                self.relay(&id, &to, &ServerMessage::Answer { from: &id, sdp: &sdp })?
            }
            (ClientMessage::Candidate { to, candidate }, Some(id)) => self.relay(
                &id,
                &to,
                &ServerMessage::Candidate {
                    from: &id,
                    candidate: &candidate,
                },
            )?,
        }
        Ok(())
    }

    fn join(&mut self, conn: ConnectionId, join: Join, unix: u64) -> Result<(), Refusal> {
        if join.version != VERSION {
            let message = format!("this server speaks version {VERSION}, not {}", join.version);
            return Err(Refusal::new(ErrorCode::UnsupportedVersion, message));
        }
        if let Some(resume) = &join.resume {
            return self.resume(conn, resume, &join.room, unix);
        }
        let id = self.enter(&join.room, join.token.as_deref(), &join.name, Some(conn), unix)?;
        self.connections.get_mut(&conn).expect("admitted").session = Some(id.clone());
        self.welcome(&id, false, unix);
        let peer = self.peer(&id);
        self.broadcast(&id, &ServerMessage::PeerJoined { peer }.to_json());
        Ok(())
    }

    /// A participant without a socket: a WHIP publisher or WHEP player of
    /// `natter serve` (RFC 9725). It enters `room` as a `join` would, with
    /// the same token check (`token` is its `Authorization: Bearer`), is
    /// named by the token or `name`, never times out and is never resumed;
    /// what signaling would send it is dropped. It stays until
    /// [`Signaling::leave_external`]. Returns its peer id.
    pub fn join_external(&mut self, room: &str, token: Option<&str>, name: &str, unix: u64) -> Result<String, Refusal> {
        if !is_room_name(room) {
            return Err(Refusal::new(
                ErrorCode::BadMessage,
                "room names are 1 to 64 characters from A-Z a-z 0-9 _ -",
            ));
        }
        let id = self.enter(room, token, name, None, unix)?;
        let resume = self.sessions[&id].resume.clone();
        self.resumable.remove(&resume);
        let peer = self.peer(&id);
        self.broadcast(&id, &ServerMessage::PeerJoined { peer }.to_json());
        Ok(id)
    }

    /// The server records `room` now (`active`), or stopped: everyone in
    /// it is told with a `recording` message, and so is each participant
    /// who joins while it records. A recorded room is kept while empty.
    pub fn set_recording(&mut self, room: &str, active: bool) -> Result<(), ApiError> {
        let entry = self
            .rooms
            .get_mut(room)
            .ok_or_else(|| ApiError::NoSuchRoom(room.to_owned()))?;
        if entry.recording == active {
            return Ok(());
        }
        entry.recording = active;
        let members = entry.members.clone();
        if members.is_empty() && !entry.persistent && !active {
            self.rooms.remove(room);
        }
        let text = ServerMessage::Recording { active }.to_json();
        for member in members {
            self.deliver(&member, text.clone());
        }
        Ok(())
    }

    /// The display name of participant `peer`, while it is in a room.
    pub fn participant_name(&self, peer: &str) -> Option<&str> {
        self.sessions.get(peer).map(|s| s.name.as_str())
    }

    /// An offer of a participant of [`Signaling::join_external`] for its
    /// connection to the SFU ([`Config::sfu`]); nothing if it has left.
    pub fn offer_external(&mut self, peer: &str, sdp: String) {
        if let Some(session) = self.sessions.get(peer).filter(|_| self.config.sfu) {
            let room = session.room.clone();
            let peer = peer.to_owned();
            self.sfu_inputs.push_back(SfuInput::Offer { room, peer, sdp });
        }
    }

    /// The peer id of the participant of `room` that `who` names: its id,
    /// or its name when no other participant of the room has that name.
    pub fn find_participant(&self, room: &str, who: &str) -> Option<&str> {
        let members = &self.rooms.get(room)?.members;
        if let Some(id) = members.iter().find(|id| *id == who) {
            return Some(id);
        }
        let mut named = (members.iter()).filter(|id| self.sessions.get(*id).is_some_and(|s| s.name == who));
        match (named.next(), named.next()) {
            (Some(id), None) => Some(id),
            _ => None,
        }
    }

    /// A participant of [`Signaling::join_external`] receives only
    /// `publisher`'s media through the SFU (a WHEP player of one
    /// participant). Told before its offer, it holds from the start.
    pub fn play_external(&mut self, peer: &str, publisher: &str) {
        if let Some(session) = self.sessions.get(peer).filter(|_| self.config.sfu) {
            let (room, peer, publisher) = (session.room.clone(), peer.to_owned(), publisher.to_owned());
            self.sfu_inputs.push_back(SfuInput::Source { room, peer, publisher });
        }
    }

    /// A participant of [`Signaling::join_external`] leaves; the others
    /// see `peer-left` and the SFU frees its connection.
    pub fn leave_external(&mut self, peer: &str) {
        let external = self
            .sessions
            .get(peer)
            .is_some_and(|s| s.conn.is_none() && s.expires.is_none());
        if external {
            self.stats.leaves += 1;
            self.end_session(peer, LeaveReason::Left);
        }
    }

    /// The checks and bookkeeping of a join: the token, the room's limits,
    /// the name; a new session attached to `conn` (or to no socket).
    fn enter(
        &mut self,
        room: &str,
        token: Option<&str>,
        name: &str,
        conn: Option<ConnectionId>,
        unix: u64,
    ) -> Result<String, Refusal> {
        let claims = match token {
            Some(token) => Some(self.config.token_key.verify(token, room, unix)?),
            None if self.config.dev => None,
            None => return Err(Refusal::new(ErrorCode::TokenRequired, "this room needs a join token")),
        };
        if !self.rooms.contains_key(room) && self.rooms.len() >= self.config.max_rooms {
            return Err(Refusal::new(
                ErrorCode::RoomFull,
                "the server has as many rooms as it may",
            ));
        }
        let entered = self.rooms.entry(room.to_owned()).or_insert_with(|| Room {
            max_participants: self.config.max_participants,
            members: Vec::new(),
            persistent: false,
            recording: false,
        });
        if entered.members.len() >= entered.max_participants {
            let message = format!("room {room} has {} participants already", entered.max_participants);
            return Err(Refusal::new(ErrorCode::RoomFull, message));
        }
        let name = match claims.and_then(|c| c.name) {
            Some(name) => name,
            // `parse` validated it.
            None => display_name(name).unwrap_or("guest").to_owned(),
        };
        let id = self.random_id(8);
        let resume = self.random_id(16);
        self.rooms
            .get_mut(room)
            .expect("inserted above")
            .members
            .push(id.clone());
        self.sessions.insert(
            id.clone(),
            Session {
                room: room.to_owned(),
                name,
                resume: resume.clone(),
                state: MediaState::default(),
                conn,
                expires: None,
                queue: VecDeque::new(),
            },
        );
        self.resumable.insert(resume, id.clone());
        self.stats.joins += 1;
        Ok(id)
    }

    fn resume(&mut self, conn: ConnectionId, resume: &str, room: &str, unix: u64) -> Result<(), Refusal> {
        let id = match self.resumable.get(resume) {
            Some(id) if self.sessions.get(id).is_some_and(|s| s.room == room) => id.clone(),
            _ => {
                return Err(Refusal::new(
                    ErrorCode::ResumeFailed,
                    "no such session; join without resume",
                ))
            }
        };
        let session = self.sessions.get_mut(&id).expect("resumable sessions exist");
        if let Some(old) = session.conn.replace(conn) {
            // The old socket has not noticed it is dead yet.
            self.connections.remove(&old);
            self.outputs.push_back(Output::Close {
                conn: old,
                code: CLOSE_REPLACED,
                reason: "resumed elsewhere",
            });
        }
        session.expires = None;
        let queued = std::mem::take(&mut session.queue);
        self.connections.get_mut(&conn).expect("admitted").session = Some(id.clone());
        self.stats.resumes += 1;
        self.welcome(&id, true, unix);
        for text in queued {
            self.outputs.push_back(Output::Send { conn, text });
        }
        Ok(())
    }

    fn welcome(&mut self, id: &str, resumed: bool, unix: u64) {
        let session = &self.sessions[id];
        let room = &self.rooms[&session.room];
        let peers = room.members.iter().filter(|m| *m != id).map(|m| self.peer(m)).collect();
        let ice_servers = self.ice_servers(id, unix);
        let text = ServerMessage::Welcome {
            version: VERSION,
            id,
            room: &session.room,
            name: &session.name,
            resume: &session.resume,
            resumed,
            peers,
            ice_servers: &ice_servers,
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            resume_ms: self.config.resume.as_millis() as u64,
            limits: Limits {
                max_message_bytes: self.config.max_message_bytes,
                messages_per_second: self.config.messages_per_second,
                burst: self.config.burst,
                max_participants: room.max_participants,
            },
            sfu: self.config.sfu,
        }
        .to_json();
        self.deliver(id, text);
        if self.rooms.get(&self.sessions[id].room).is_some_and(|r| r.recording) {
            self.deliver(id, ServerMessage::Recording { active: true }.to_json());
        }
    }

    /// STUN without credentials, TURN with REST credentials (RFC 8656 has
    /// none of its own; this is the scheme of draft-uberti-behave-turn-rest).
    fn ice_servers(&self, id: &str, unix: u64) -> Vec<IceServer> {
        let Some(turn) = &self.config.turn else {
            return Vec::new();
        };
        let mut servers = Vec::new();
        if !turn.stun_urls.is_empty() {
            servers.push(IceServer {
                urls: turn.stun_urls.clone(),
                username: None,
                credential: None,
            });
        }
        if !turn.turn_urls.is_empty() {
            let (username, credential) =
                natter_turn::auth::rest_credentials(&turn.secret, id, unix + turn.ttl.as_secs());
            servers.push(IceServer {
                urls: turn.turn_urls.clone(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        servers
    }

    fn peer(&self, id: &str) -> Peer {
        let s = &self.sessions[id];
        Peer {
            id: id.to_owned(),
            name: s.name.clone(),
            state: s.state,
        }
    }

    fn relay(&mut self, from: &str, to: &str, message: &ServerMessage<'_>) -> Result<(), Refusal> {
        let same_room = self
            .sessions
            .get(to)
            .is_some_and(|t| to != from && t.room == self.sessions[from].room);
        if !same_room {
            return Err(Refusal::new(ErrorCode::UnknownPeer, "no such peer in this room"));
        }
        self.stats.relayed += 1;
        self.deliver(to, message.to_json());
        Ok(())
    }

    /// Sends `text` to everyone in `from`'s room but `from`.
    fn broadcast(&mut self, from: &str, text: &str) {
        let room = &self.sessions[from].room;
        let others: Vec<String> = self.rooms[room]
            .members
            .iter()
            .filter(|m| *m != from)
            .cloned()
            .collect();
        for other in others {
            self.deliver(&other, text.to_owned());
        }
    }

    /// A message of the SFU to participant `peer` (an answer or a
    /// candidate from [`SFU_PEER`], a `track`); nothing if its session
    /// has ended.
    pub fn handle_sfu_message(&mut self, peer: &str, message: &ServerMessage<'_>) {
        self.deliver(peer, message.to_json());
    }

    /// Sends to a session's socket, or holds the text until it resumes.
    fn deliver(&mut self, id: &str, text: String) {
        let Some(session) = self.sessions.get_mut(id) else {
            return;
        };
        match session.conn {
            Some(conn) => self.outputs.push_back(Output::Send { conn, text }),
            // A participant without a socket (join_external): nothing to hold.
            None if session.expires.is_none() => {}
            None => {
                if session.queue.len() == RESUME_QUEUE {
                    session.queue.pop_front();
                }
                session.queue.push_back(text);
            }
        }
    }

    fn end_session(&mut self, id: &str, reason: LeaveReason) {
        let Some(session) = self.sessions.remove(id) else {
            return;
        };
        self.resumable.remove(&session.resume);
        if self.config.sfu {
            self.sfu_inputs.push_back(SfuInput::Left {
                room: session.room.clone(),
                peer: id.to_owned(),
            });
        }
        if let Some(room) = self.rooms.get_mut(&session.room) {
            room.members.retain(|m| m != id);
            let others = room.members.clone();
            if others.is_empty() && !room.persistent && !room.recording {
                self.rooms.remove(&session.room);
            }
            let text = ServerMessage::PeerLeft { id, reason }.to_json();
            for other in others {
                self.deliver(&other, text.clone());
            }
        }
    }

    fn send(&mut self, conn: ConnectionId, message: &ServerMessage<'_>) {
        self.outputs.push_back(Output::Send {
            conn,
            text: message.to_json(),
        });
    }

    fn refuse(&mut self, conn: ConnectionId, refusal: Refusal) {
        let index = ErrorCode::ALL.iter().position(|c| *c == refusal.code).unwrap_or(0);
        self.stats.errors[index] += 1;
        self.send(
            conn,
            &ServerMessage::Error {
                code: refusal.code,
                message: &refusal.message,
                reference: refusal.reference.as_deref(),
            },
        );
        if let Some(code) = refusal.code.close_code() {
            self.connections.remove(&conn);
            self.outputs.push_back(Output::Close {
                conn,
                code,
                reason: refusal.code.as_str(),
            });
        }
    }

    /// `bytes` random bytes in lowercase hex.
    fn random_id(&mut self, bytes: usize) -> String {
        (0..bytes).map(|_| format!("{:02x}", self.rng.gen::<u8>())).collect()
    }
}
