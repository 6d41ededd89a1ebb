//! Chat as the web client sends it (`web/peer.js`): one JSON text
//! message `{"type":"chat","text":...}` on the pre-negotiated, ordered
//! data channel `chat` with SCTP stream id 0.

use serde::{Deserialize, Serialize};

/// The chat channel's label.
pub const CHAT_LABEL: &str = "chat";
/// The chat channel is negotiated on both sides with this stream id.
pub const CHAT_CHANNEL_ID: u16 = 0;
/// Longer texts are cut to this many characters on receipt, as the web client does.
pub const MAX_CHAT_CHARS: usize = 4000;

#[derive(Serialize, Deserialize)]
struct ChatMessage {
    #[serde(rename = "type")]
    kind: String,
    text: String,
}

/// The message to send for `text`.
pub fn encode(text: &str) -> String {
    let message = ChatMessage {
        kind: "chat".to_owned(),
        text: text.to_owned(),
    };
    // A struct of two strings always serializes.
    serde_json::to_string(&message).expect("chat messages serialize")
}

/// The text of a received chat message; `None` for anything else (a
/// binary message, other JSON), which the web client ignores too.
pub fn decode(data: &[u8], is_text: bool) -> Option<String> {
    if !is_text {
        return None;
    }
    let message: ChatMessage = serde_json::from_slice(data).ok()?;
    (message.kind == "chat").then(|| message.text.chars().take(MAX_CHAT_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "héllo \"quoted\"\nline";
        assert_eq!(decode(encode(text).as_bytes(), true).as_deref(), Some(text));
    }

    #[test]
    fn other_messages_ignored() {
        assert_eq!(decode(br#"{"type":"chat","text":"x"}"#, false), None);
        assert_eq!(decode(br#"{"type":"file","text":"x"}"#, true), None);
        assert_eq!(decode(br#"{"type":"chat","text":5}"#, true), None);
        assert_eq!(decode(b"not json", true), None);
    }

    #[test]
    fn long_text_cut() {
        let long = "é".repeat(MAX_CHAT_CHARS + 10);
        assert_eq!(
            decode(encode(&long).as_bytes(), true).unwrap().chars().count(),
            MAX_CHAT_CHARS
        );
    }
}
