//! What `natter send` and `natter receive` say to each other, as JSON in
//! chat messages on the pre-negotiated channel (DTLS end to end, never
//! through the server): the receiver's `hello` with its proof, the
//! sender's `offer` (its proof and what the file is) or `refused`, then
//! the receiver's `accept` naming the transfer and the byte to start at.
//! The file itself follows on natter-client's `file:<id>` channel.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "natterSend", rename_all = "kebab-case")]
pub enum Message {
    Hello {
        proof: String,
    },
    Offer {
        proof: String,
        name: String,
        size: u64,
        sha256: String,
    },
    Refused {
        reason: String,
    },
    Accept {
        id: String,
        offset: u64,
    },
}

impl Message {
    /// The message in a chat text, if it is one.
    pub fn parse(text: &str) -> Option<Message> {
        serde_json::from_str(text).ok()
    }

    pub fn to_json(&self) -> String {
        // Strings and numbers: serializing cannot fail.
        serde_json::to_string(self).expect("messages serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_chat_is_not_one() {
        let accept = Message::Accept {
            id: "t".to_owned(),
            offset: 7,
        };
        assert_eq!(accept.to_json(), r#"{"natterSend":"accept","id":"t","offset":7}"#);
        assert_eq!(Message::parse(&accept.to_json()), Some(accept));
        assert_eq!(Message::parse("hello there"), None);
        assert_eq!(Message::parse(r#"{"natterSend":"delete-all"}"#), None);
    }
}
