//! Property tests of the signaling parser: any text is either a valid
//! message or a documented refusal, never a panic; valid messages survive
//! a JSON round trip.

use natter_signaling::{ClientMessage, ErrorCode, TokenKey};
use proptest::prelude::*;
use serde_json::{json, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("to".to_owned()),
                    Just("sdp".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn kind() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("join"),
        Just("offer"),
        Just("answer"),
        Just("candidate"),
        Just("state"),
        Just("ping"),
        Just("leave"),
        Just("nope"),
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = ClientMessage::parse(&text);
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = ClientMessage::parse(&String::from_utf8_lossy(&bytes));
    }

    /// Objects with a known type and random members: accepted, or refused
    /// with bad-message naming the type.
    #[test]
    fn typed_objects_are_accepted_or_refused_with_a_reference(kind in kind(), body in json_value()) {
        let mut object = match body {
            Value::Object(o) => o,
            _ => serde_json::Map::new(),
        };
        object.insert("type".into(), kind.into());
        match ClientMessage::parse(&Value::Object(object).to_string()) {
            Ok(m) => prop_assert_eq!(m.kind(), kind),
            Err(r) if kind == "nope" => prop_assert_eq!(r.code, ErrorCode::UnknownType),
            Err(r) => {
                prop_assert_eq!(r.code, ErrorCode::BadMessage);
                prop_assert_eq!(r.reference.as_deref(), Some(kind));
            }
        }
    }

    #[test]
    fn valid_messages_parse_to_what_was_sent(
        room in "[A-Za-z0-9_-]{1,64}",
        name in "[a-zA-Z ]{0,10}[a-zA-Z][a-zA-Z ]{0,10}",
        to in "[0-9a-f]{16}",
        sdp in "v=0\r\n[ -~]{0,300}",
        audio in any::<bool>(),
    ) {
        let join = ClientMessage::parse(&json!({"type": "join", "version": 1, "room": room, "name": name}).to_string());
        prop_assert!(matches!(join, Ok(ClientMessage::Join(ref j)) if j.room == room && j.name == name));
        let offer = ClientMessage::parse(&json!({"type": "offer", "to": to, "sdp": sdp, "extra": 1}).to_string());
        prop_assert_eq!(offer, Ok(ClientMessage::Offer { to: to.clone(), sdp: sdp.clone() }));
        let state = ClientMessage::parse(&json!({"type": "state", "audio": audio, "video": !audio, "screen": false}).to_string());
        prop_assert!(state.is_ok());
    }

    #[test]
    fn room_and_display_name_rules(room in ".{0,80}", name in ".{0,80}") {
        let parsed = ClientMessage::parse(&json!({"type": "join", "version": 1, "room": room, "name": name}).to_string());
        let room_ok = natter_signaling::message::is_room_name(&room);
        let name_ok = natter_signaling::message::display_name(&name).is_some();
        prop_assert_eq!(parsed.is_ok(), room_ok && name_ok);
    }

    #[test]
    fn tokens_never_panic_and_only_genuine_ones_pass(token in ".{0,300}") {
        let key = TokenKey::new(b"k");
        prop_assert!(key.verify(&token, "room", 0).is_err());
    }
}
