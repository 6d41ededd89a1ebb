//! The messages of signaling protocol version 1 (`docs/signaling.md`):
//! what a client may send, parsed and validated, and what the server
//! sends, serialized.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, Refusal};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;
/// The peer id of the server's SFU in a room that runs through it
/// (`docs/signaling.md`); participants' ids are 16 hex digits.
pub const SFU_PEER: &str = "sfu";
/// Longest room name, display name and peer id, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest `resume` and `token` values, in bytes.
const MAX_CREDENTIAL_BYTES: usize = 4096;
/// Longest ICE candidate line, in bytes; real ones are under 300.
const MAX_CANDIDATE_BYTES: usize = 1024;
/// The longest `chat` text, in characters (the web client's limit).
pub const MAX_CHAT_CHARS: usize = 4000;
/// The largest `tile` width and height: RFC 6386 §9.1's 14-bit frame
/// size (no layer is larger, so no tile needs to say more).
pub const MAX_TILE_PIXELS: u32 = 0x3FFF;
/// Longest `tile` mid, in bytes (RFC 8843 §15: a token; browsers use
/// small numbers).
const MAX_MID_BYTES: usize = 32;

/// A validated message from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Join(Join),
    /// A session description of type offer for peer `to`.
    Offer {
        to: String,
        sdp: String,
    },
    /// A session description of type answer for peer `to`.
    Answer {
        to: String,
        sdp: String,
    },
    /// An ICE candidate for peer `to`; `Value::Null` is end-of-candidates.
    Candidate {
        to: String,
        candidate: Value,
    },
    State(MediaState),
    /// A chat message for everyone else in the room (SFU rooms, where
    /// there is no data channel between participants).
    Chat {
        text: String,
    },
    /// SFU rooms: the subscriber renders the track of its section `mid`
    /// at `width` x `height` CSS pixels times the device pixel ratio, so
    /// the SFU forwards no larger a layer than that.
    Tile {
        mid: String,
        width: u16,
        height: u16,
    },
    Ping,
    Leave,
}

#[derive(Deserialize)]
struct TileFields {
    mid: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct ChatFields {
    text: String,
}

/// `join`: the first message of every session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Join {
    pub version: u32,
    pub room: String,
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub resume: Option<String>,
}

/// What a participant is sending, shown to the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaState {
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
}

#[derive(Deserialize)]
struct Description {
    to: String,
    sdp: String,
}

#[derive(Deserialize)]
struct CandidateFields {
    to: String,
    candidate: Value,
}

impl ClientMessage {
    /// The message's `type`, as the protocol spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Join(_) => "join",
            ClientMessage::Offer { .. } => "offer",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Candidate { .. } => "candidate",
            ClientMessage::State(_) => "state",
            ClientMessage::Chat { .. } => "chat",
            ClientMessage::Tile { .. } => "tile",
            ClientMessage::Ping => "ping",
            ClientMessage::Leave => "leave",
        }
    }

    /// Parses and validates one text frame. The size limit is the
    /// caller's (it depends on configuration); everything else is checked
    /// here.
    pub fn parse(text: &str) -> Result<ClientMessage, Refusal> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Refusal::new(ErrorCode::BadJson, format!("not JSON: {e}")))?;
        let Value::Object(mut object) = value else {
            return Err(Refusal::new(ErrorCode::BadJson, "a message must be a JSON object"));
        };
        let kind = match object.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(Refusal::new(ErrorCode::BadMessage, "member type must be a string")),
            None => return Err(Refusal::new(ErrorCode::BadMessage, "member type is missing")),
        };
        let value = Value::Object(object);
        let fields = |e: serde_json::Error| Refusal::new(ErrorCode::BadMessage, format!("{kind}: {e}")).with_ref(&kind);
        let message = match kind.as_str() {
            "join" => ClientMessage::Join(serde_json::from_value(value).map_err(fields)?),
            "offer" | "answer" => {
                let d: Description = serde_json::from_value(value).map_err(fields)?;
                if kind == "offer" {
                    ClientMessage::Offer { to: d.to, sdp: d.sdp }
                } else {
                    ClientMessage::Answer { to: d.to, sdp: d.sdp }
                }
            }
            "candidate" => {
                let c: CandidateFields = serde_json::from_value(value).map_err(fields)?;
                ClientMessage::Candidate {
                    to: c.to,
                    candidate: c.candidate,
                }
            }
            "state" => ClientMessage::State(serde_json::from_value(value).map_err(fields)?),
            "chat" => {
                let c: ChatFields = serde_json::from_value(value).map_err(fields)?;
                ClientMessage::Chat { text: c.text }
            }
            "tile" => {
                let t: TileFields = serde_json::from_value(value).map_err(fields)?;
                let pixels = |v: u32| {
                    u16::try_from(v)
                        .ok()
                        .filter(|v| (1..=MAX_TILE_PIXELS).contains(&u32::from(*v)))
                };
                let (Some(width), Some(height)) = (pixels(t.width), pixels(t.height)) else {
                    let refusal = Refusal::new(
                        ErrorCode::BadMessage,
                        format!("tile: width and height must be 1 to {MAX_TILE_PIXELS}"),
                    );
                    return Err(refusal.with_ref(&kind));
                };
                ClientMessage::Tile {
                    mid: t.mid,
                    width,
                    height,
                }
            }
            "ping" => ClientMessage::Ping,
            "leave" => ClientMessage::Leave,
            _ => {
                let shown: String = kind.chars().take(MAX_NAME_CHARS).collect();
                let refusal = Refusal::new(ErrorCode::UnknownType, format!("unknown message type {shown:?}"));
                return Err(refusal.with_ref(&kind));
            }
        };
        message.validate().map_err(|r| r.with_ref(message.kind()))?;
        Ok(message)
    }

    fn validate(&self) -> Result<(), Refusal> {
        let bad = |m: String| Err(Refusal::new(ErrorCode::BadMessage, m));
        match self {
            ClientMessage::Join(join) => {
                if !is_room_name(&join.room) {
                    return bad(format!(
                        "room must be 1 to {MAX_NAME_CHARS} characters from A-Z a-z 0-9 _ -"
                    ));
                }
                if display_name(&join.name).is_none() {
                    return bad(format!(
                        "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
                    ));
                }
                for (what, v) in [("token", &join.token), ("resume", &join.resume)] {
                    if v.as_ref().is_some_and(|v| v.len() > MAX_CREDENTIAL_BYTES) {
                        return bad(format!("{what} is longer than {MAX_CREDENTIAL_BYTES} bytes"));
                    }
                }
            }
            ClientMessage::Offer { to, sdp } | ClientMessage::Answer { to, sdp } => {
                check_peer_id(to)?;
                if sdp.is_empty() {
                    return bad("sdp is empty".into());
                }
            }
            ClientMessage::Candidate { to, candidate } => {
                check_peer_id(to)?;
                match candidate {
                    Value::Null => {}
                    Value::Object(c) => match c.get("candidate") {
                        Some(Value::String(line)) if line.len() <= MAX_CANDIDATE_BYTES => {}
                        _ => {
                            return bad(format!(
                                "candidate.candidate must be a string of at most {MAX_CANDIDATE_BYTES} bytes"
                            ))
                        }
                    },
                    _ => return bad("candidate must be an object or null".into()),
                }
            }
            ClientMessage::Chat { text } => {
                if text.trim().is_empty() || text.chars().count() > MAX_CHAT_CHARS {
                    return bad(format!(
                        "text must be 1 to {MAX_CHAT_CHARS} characters, not only spaces"
                    ));
                }
            }
            ClientMessage::Tile { mid, .. } => {
                if mid.is_empty() || mid.len() > MAX_MID_BYTES {
                    return bad(format!("mid must be 1 to {MAX_MID_BYTES} bytes"));
                }
            }
            ClientMessage::State(_) | ClientMessage::Ping | ClientMessage::Leave => {}
        }
        Ok(())
    }
}

fn check_peer_id(id: &str) -> Result<(), Refusal> {
    if id.is_empty() || id.len() > MAX_NAME_CHARS {
        return Err(Refusal::new(ErrorCode::BadMessage, "to must be a peer id"));
    }
    Ok(())
}

/// Room names: 1 to 64 characters from `A-Z a-z 0-9 _ -`.
pub fn is_room_name(room: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The trimmed display name, if it is 1 to 64 characters without control
/// characters.
pub fn display_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let chars = name.chars().count();
    ((1..=MAX_NAME_CHARS).contains(&chars) && !name.chars().any(char::is_control)).then_some(name)
}

/// A participant as the others see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peer {
    pub id: String,
    pub name: String,
    #[serde(flatten)]
    pub state: MediaState,
}

/// One `RTCIceServer` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The limits a client must respect, announced in `welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub burst: u32,
    pub max_participants: usize,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerMessage<'a> {
    #[serde(rename_all = "camelCase")]
    Welcome {
        version: u32,
        id: &'a str,
        room: &'a str,
        name: &'a str,
        resume: &'a str,
        resumed: bool,
        peers: Vec<Peer>,
        ice_servers: &'a [IceServer],
        heartbeat_ms: u64,
        resume_ms: u64,
        limits: Limits,
        /// The room's media goes through the server's SFU: the client
        /// makes one connection, to the peer [`SFU_PEER`].
        sfu: bool,
    },
    PeerJoined {
        peer: Peer,
    },
    PeerLeft {
        id: &'a str,
        reason: LeaveReason,
    },
    PeerState {
        id: &'a str,
        #[serde(flatten)]
        state: MediaState,
    },
    Offer {
        from: &'a str,
        sdp: &'a str,
    },
    Answer {
        from: &'a str,
        sdp: &'a str,
    },
    Candidate {
        from: &'a str,
        candidate: &'a Value,
    },
    /// SFU rooms: media section `mid` of the client's connection to the
    /// SFU now carries participant `peer`'s track of `kind` (`audio` or
    /// `video`), or nothing when `peer` is `None`.
    Track {
        mid: &'a str,
        peer: Option<&'a str>,
        kind: &'a str,
    },
    /// A participant's `chat`, relayed to everyone else in the room.
    Chat {
        from: &'a str,
        text: &'a str,
    },
    /// SFU rooms: participant `peer` is the active speaker now (the
    /// loudest, from its RFC 6464 audio levels), or nobody (`None`).
    Speaker {
        peer: Option<&'a str>,
    },
    /// SFU rooms, dynacast: of the simulcast layers the client sends on
    /// section `mid`, only those whose RID (RFC 8851) is in `active` are
    /// received by anyone; the client stops encoding the others (WebRTC
    /// 1.0 §5.2, `RTCRtpEncodingParameters.active`) until a later
    /// `layers` message lists them again.
    Layers {
        mid: &'a str,
        active: &'a [String],
    },
    /// SFU rooms: the server records the room (docs/recording.md) now,
    /// or stopped; sent to everyone when it starts or stops and to each
    /// participant who joins while it records.
    Recording {
        active: bool,
    },
    Pong,
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a str>,
    },
}

impl ServerMessage<'_> {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("server messages serialize")
    }
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its socket closed and it did not come back in time.
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refusal {
        ClientMessage::parse(text).unwrap_err()
    }

    #[test]
    fn layers_is_written_as_docs_signaling_says() {
        let active = ["q".to_owned(), "h".to_owned()];
        let message = ServerMessage::Layers {
            mid: "0",
            active: &active,
        };
        assert_eq!(message.to_json(), r#"{"type":"layers","mid":"0","active":["q","h"]}"#);
        let none = ServerMessage::Layers { mid: "0", active: &[] };
        assert_eq!(none.to_json(), r#"{"type":"layers","mid":"0","active":[]}"#);
    }

    #[test]
    fn recording_is_written_as_docs_signaling_says() {
        let message = ServerMessage::Recording { active: true };
        assert_eq!(message.to_json(), r#"{"type":"recording","active":true}"#);
    }

    #[test]
    fn a_tile_parses_and_bad_ones_are_refused() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"tile","mid":"3","width":160,"height":90}"#),
            Ok(ClientMessage::Tile {
                mid: "3".into(),
                width: 160,
                height: 90
            })
        );
        for bad in [
            r#"{"type":"tile","mid":"3","width":0,"height":90}"#,
            r#"{"type":"tile","mid":"3","width":160,"height":16384}"#,
            r#"{"type":"tile","mid":"3","width":4294967296,"height":90}"#,
            r#"{"type":"tile","mid":"3","width":-1,"height":90}"#,
            r#"{"type":"tile","mid":"3","width":1.5,"height":90}"#,
            r#"{"type":"tile","mid":"","width":160,"height":90}"#,
            r#"{"type":"tile","mid":3,"width":160,"height":90}"#,
            r#"{"type":"tile","width":160,"height":90}"#,
        ] {
            assert_eq!(refused(bad).code, ErrorCode::BadMessage, "{bad}");
        }
        let long = format!(r#"{{"type":"tile","mid":"{}","width":1,"height":1}}"#, "m".repeat(33));
        assert_eq!(refused(&long).code, ErrorCode::BadMessage);
    }
}
