//! The messages of signaling protocol v1 (`docs/signaling.md`) as a
//! client sees them: what it sends, serialized, and what the server
//! sends, parsed. Unknown members are ignored, as the protocol asks, so
//! a later server that adds members still parses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message to the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientMessage {
    Join {
        version: u32,
        room: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    Offer {
        to: String,
        sdp: String,
    },
    Answer {
        to: String,
        sdp: String,
    },
    /// `Value::Null` is end-of-candidates.
    Candidate {
        to: String,
        candidate: Value,
    },
    State {
        audio: bool,
        video: bool,
        screen: bool,
    },
    /// SFU rooms: a chat line to everyone, which the server relays.
    Chat {
        text: String,
    },
    Ping,
    Leave,
}

impl ClientMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Every map key is a string, so serializing cannot fail.
        serde_json::to_string(self).expect("client messages serialize")
    }
}

/// A participant as `welcome` and `peer-joined` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PeerInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub audio: bool,
    #[serde(default)]
    pub video: bool,
    #[serde(default)]
    pub screen: bool,
}

/// One `RTCIceServer` of `welcome.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct IceServerInfo {
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub credential: Option<String>,
}

/// The limits of `welcome.limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub burst: u32,
    pub max_participants: usize,
}

/// `welcome`: the session is joined (or resumed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub id: String,
    pub room: String,
    pub name: String,
    pub resume: String,
    #[serde(default)]
    pub resumed: bool,
    #[serde(default)]
    pub peers: Vec<PeerInfo>,
    #[serde(default)]
    pub ice_servers: Vec<IceServerInfo>,
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "default_resume_ms")]
    pub resume_ms: u64,
    #[serde(default)]
    pub limits: Option<Limits>,
    /// The room's media goes through the server's SFU (docs/signaling.md,
    /// "SFU rooms"): one connection, to the peer id `sfu`.
    #[serde(default)]
    pub sfu: bool,
}

/// docs/signaling.md: `heartbeatMs` defaults to 5000.
fn default_heartbeat_ms() -> u64 {
    5000
}

/// docs/signaling.md: `resumeMs` defaults to 5000.
fn default_resume_ms() -> u64 {
    5000
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage {
    Welcome(Welcome),
    PeerJoined {
        peer: PeerInfo,
    },
    PeerLeft {
        id: String,
        #[serde(default)]
        reason: String,
    },
    PeerState {
        id: String,
        #[serde(default)]
        audio: bool,
        #[serde(default)]
        video: bool,
        #[serde(default)]
        screen: bool,
    },
    Offer {
        from: String,
        sdp: String,
    },
    Answer {
        from: String,
        sdp: String,
    },
    Candidate {
        from: String,
        #[serde(default)]
        candidate: Value,
    },
    /// SFU rooms: section `mid` of our connection to `sfu` now carries
    /// `peer`'s track, or nothing (`null`).
    Track {
        mid: String,
        #[serde(default)]
        peer: Option<String>,
        kind: String,
    },
    /// SFU rooms: the active speaker changed (`null`: nobody speaks).
    Speaker {
        #[serde(default)]
        peer: Option<String>,
    },
    /// SFU rooms: a chat line from `from`, relayed by the server.
    Chat {
        from: String,
        text: String,
    },
    /// SFU rooms, dynacast: of the simulcast layers we send on section
    /// `mid`, only the RIDs in `active` are received by anyone.
    Layers {
        mid: String,
        #[serde(default)]
        active: Vec<String>,
    },
    /// SFU rooms: the server records the room now, or stopped.
    Recording {
        #[serde(default)]
        active: bool,
    },
    Pong,
    Error {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(rename = "ref", default)]
        reference: Option<String>,
    },
}

impl ServerMessage {
    /// Parses one text frame; an unknown `type` or a malformed message
    /// is an error naming what was wrong.
    pub fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }
}
