//! What Janus (1.x, its HTTP REST transport and the VideoRoom plugin)
//! answers natter load's Janus client: a request's reply, a long-poll's
//! events, and the plugin's data in both, read into our types.
//!
//! Everything here is checked: a reply or event without the fields named
//! here, or with a field of another type, is a [`JanusError`], never a
//! panic. It depends on `serde_json` and `std` only, so that
//! fuzz/fuzz_targets/janus_reply.rs fuzzes this very file.

use std::fmt;

use serde_json::Value;

/// What Janus answered that a participant cannot go on with.
#[derive(Debug, PartialEq)]
pub enum JanusError {
    /// `{"janus":"error","error":{"code":..,"reason":..}}`: the core refused.
    Janus { code: i64, reason: String },
    /// The VideoRoom plugin's `error_code` and `error`.
    Plugin { code: i64, reason: String },
    /// Not JSON, or without a field of the type named.
    Malformed(String),
}

impl fmt::Display for JanusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JanusError::Janus { code, reason } => write!(f, "Janus error {code}: {reason}"),
            JanusError::Plugin { code, reason } => write!(f, "VideoRoom error {code}: {reason}"),
            JanusError::Malformed(what) => write!(f, "malformed Janus reply: {what}"),
        }
    }
}

/// VideoRoom's `JANUS_VIDEOROOM_ERROR_ROOM_EXISTS`: another participant
/// created the room first.
pub const ROOM_EXISTS: i64 = 427;

/// At most this many characters of a value Janus sent are quoted in an
/// error, so that a hostile reply cannot make one huge.
const QUOTED: usize = 64;

fn malformed(what: impl Into<String>) -> JanusError {
    JanusError::Malformed(what.into())
}

/// `value` as JSON text, cut to [`QUOTED`] characters.
fn quoted(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(QUOTED) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// A reply body as JSON, with the core's own errors turned into [`JanusError::Janus`].
pub fn parse_reply(body: &[u8]) -> Result<Value, JanusError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON ({e})")))?;
    if !value.is_object() && !value.is_array() {
        return Err(malformed(format!(
            "{} is neither an object nor an array",
            quoted(&value)
        )));
    }
    if value["janus"] == "error" {
        let error = &value["error"];
        return Err(JanusError::Janus {
            code: error["code"].as_i64().unwrap_or(0),
            reason: error["reason"].as_str().unwrap_or("no reason").to_owned(),
        });
    }
    Ok(value)
}

/// The id in a `success` reply to `create` (a session) or `attach` (a handle).
pub fn success_id(reply: &Value) -> Result<u64, JanusError> {
    if reply["janus"] != "success" {
        return Err(malformed(format!("expected success, got {}", quoted(&reply["janus"]))));
    }
    let id = &reply["data"]["id"];
    id.as_u64()
        .ok_or_else(|| malformed(format!("success with data.id {}, not a u64", quoted(id))))
}

/// A plugin's `data` (in a synchronous reply or an event), its
/// `error_code` turned into [`JanusError::Plugin`].
pub fn plugin_data(message: &Value) -> Result<&Value, JanusError> {
    let data = &message["plugindata"]["data"];
    if !data.is_object() {
        return Err(malformed(format!("plugindata.data {} is not an object", quoted(data))));
    }
    if let Some(code) = data.get("error_code") {
        return Err(JanusError::Plugin {
            code: code.as_i64().unwrap_or(0),
            reason: data["error"].as_str().unwrap_or("no reason").to_owned(),
        });
    }
    Ok(data)
}

/// The reply to a VideoRoom `message`: the plugin's data for a
/// synchronous request, `None` for an asynchronous one (`ack`, its
/// outcome coming as an event).
pub fn message_reply(reply: &Value) -> Result<Option<&Value>, JanusError> {
    if reply["janus"] == "ack" {
        return Ok(None);
    }
    plugin_data(reply).map(Some)
}

/// `listparticipants`' publishers: (feed id, display name).
pub fn publishers(data: &Value) -> Result<Vec<(u64, String)>, JanusError> {
    let list = data["participants"]
        .as_array()
        .ok_or_else(|| malformed("no participants array"))?;
    let mut out = Vec::new();
    for p in list.iter().filter(|p| p["publisher"] == true) {
        let id = p["id"]
            .as_u64()
            .ok_or_else(|| malformed(format!("a participant with id {}, not a u64", quoted(&p["id"]))))?;
        let display = p["display"].as_str().map_or_else(|| id.to_string(), str::to_owned);
        out.push((id, display));
    }
    Ok(out)
}

/// What a long-poll brought, for one of our handles.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// The answer to the publisher's offer.
    Answer(String),
    /// The subscriber's offer, and which feed (its display name) each
    /// mid carries.
    Offer { sdp: String, feeds: Vec<(String, String)> },
    /// Janus closed the handle's connection.
    Hangup(String),
    /// Anything else (`webrtcup`, `media`, `slowlink`, plugin notices).
    Other,
}

/// A long-poll's reply (one event, or an array with `maxev`) as events.
pub fn poll_events(reply: Value) -> Result<Vec<Value>, JanusError> {
    match reply {
        Value::Array(events) => Ok(events),
        event @ Value::Object(_) => Ok(vec![event]),
        other => Err(malformed(format!(
            "a long-poll reply {} is neither an object nor an array",
            quoted(&other)
        ))),
    }
}

/// One event: the handle it is for (`sender`; 0 for a keepalive) and
/// what it says.
pub fn parse_event(event: &Value) -> Result<(u64, Event), JanusError> {
    let kind = event["janus"]
        .as_str()
        .ok_or_else(|| malformed(format!("an event whose \"janus\" is {}", quoted(&event["janus"]))))?;
    if kind == "keepalive" {
        return Ok((0, Event::Other));
    }
    let sender = event["sender"].as_u64().ok_or_else(|| {
        malformed(format!(
            "a {} event with sender {}, not a u64",
            quoted(&event["janus"]),
            quoted(&event["sender"])
        ))
    })?;
    match kind {
        "hangup" | "detached" => {
            let reason = event["reason"].as_str().unwrap_or(kind).to_owned();
            return Ok((sender, Event::Hangup(reason)));
        }
        "event" => {}
        _ => return Ok((sender, Event::Other)),
    }
    let data = plugin_data(event)?;
    let jsep = &event["jsep"];
    if jsep.is_null() {
        return Ok((sender, Event::Other));
    }
    let sdp = jsep["sdp"]
        .as_str()
        .ok_or_else(|| malformed("jsep without sdp"))?
        .to_owned();
    match jsep["type"].as_str() {
        Some("answer") => Ok((sender, Event::Answer(sdp))),
        Some("offer") => {
            let streams = data["streams"]
                .as_array()
                .ok_or_else(|| malformed("an offer without streams"))?;
            let feeds = streams.iter().filter_map(stream_feed).collect::<Result<_, _>>()?;
            Ok((sender, Event::Offer { sdp, feeds }))
        }
        _ => Err(malformed(format!("jsep of type {}", quoted(&jsep["type"])))),
    }
}

/// A subscriber's stream as (mid, feed's display name); `None` for one
/// that carries no feed (`data`, or a feed's stream that went away).
fn stream_feed(stream: &Value) -> Option<Result<(String, String), JanusError>> {
    let feed = &stream["feed_id"];
    if feed.is_null() {
        return None;
    }
    let Some(feed) = feed.as_u64() else {
        return Some(Err(malformed(format!(
            "a stream with feed_id {}, not a u64",
            quoted(feed)
        ))));
    };
    let Some(mid) = stream["mid"].as_str() else {
        return Some(Err(malformed(format!("the stream of feed {feed} without mid"))));
    };
    let name = stream["feed_display"]
        .as_str()
        .map_or_else(|| feed.to_string(), str::to_owned);
    Some(Ok((mid.to_owned(), name)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn core_errors_are_errors() {
        let body = br#"{"janus":"error","transaction":"x","error":{"code":458,"reason":"No such session 1"}}"#;
        assert_eq!(
            parse_reply(body),
            Err(JanusError::Janus {
                code: 458,
                reason: "No such session 1".into()
            })
        );
        let bare = br#"{"janus":"error"}"#;
        assert_eq!(
            parse_reply(bare),
            Err(JanusError::Janus {
                code: 0,
                reason: "no reason".into()
            })
        );
    }

    #[test]
    fn replies_that_are_not_json_objects_are_refused() {
        for body in [
            &b""[..],
            b"<html>",
            b"42",
            b"\"success\"",
            b"{\"janus\":",
            &[0xff, 0xfe][..],
        ] {
            assert!(matches!(parse_reply(body), Err(JanusError::Malformed(_))), "{body:?}");
        }
    }

    #[test]
    fn success_ids_must_be_numbers() {
        assert_eq!(success_id(&json!({"janus": "success", "data": {"id": 7}})), Ok(7));
        for reply in [
            json!({"janus": "success", "data": {"id": "7"}}),
            json!({"janus": "success", "data": {"id": -1}}),
            json!({"janus": "success", "data": {"id": 1e300}}),
            json!({"janus": "success", "data": []}),
            json!({"janus": "ack"}),
            json!([1, 2]),
        ] {
            assert!(matches!(success_id(&reply), Err(JanusError::Malformed(_))), "{reply}");
        }
    }

    #[test]
    fn plugin_errors_carry_code_and_reason() {
        let reply = json!({"janus": "success", "plugindata": {"data": {"videoroom": "event", "error_code": 427, "error": "Room 5 already exists"}}});
        assert_eq!(
            plugin_data(&reply),
            Err(JanusError::Plugin {
                code: ROOM_EXISTS,
                reason: "Room 5 already exists".into()
            })
        );
        assert!(plugin_data(&json!({"janus": "success"})).is_err());
        assert!(plugin_data(&json!({"plugindata": {"data": "x"}})).is_err());
    }

    #[test]
    fn an_ack_has_no_data_and_a_synchronous_reply_has() {
        assert_eq!(message_reply(&json!({"janus": "ack"})), Ok(None));
        let reply = json!({"janus": "success", "plugindata": {"data": {"videoroom": "created"}}});
        assert_eq!(message_reply(&reply), Ok(Some(&json!({"videoroom": "created"}))));
        assert!(message_reply(&json!({"janus": "success"})).is_err());
    }

    #[test]
    fn publishers_are_the_participants_that_publish() {
        let data = json!({"participants": [
            {"id": 1, "display": "load-0", "publisher": true},
            {"id": 2, "display": "load-1", "publisher": false},
            {"id": 3, "publisher": true},
        ]});
        assert_eq!(publishers(&data), Ok(vec![(1, "load-0".into()), (3, "3".into())]));
        assert!(publishers(&json!({"participants": {}})).is_err());
        assert!(publishers(&json!({"participants": [{"id": "1", "publisher": true}]})).is_err());
    }

    #[test]
    fn events_name_their_handle_and_jsep() {
        let answer = json!({"janus": "event", "sender": 9, "plugindata": {"data": {"videoroom": "event", "configured": "ok"}}, "jsep": {"type": "answer", "sdp": "v=0"}});
        assert_eq!(parse_event(&answer), Ok((9, Event::Answer("v=0".into()))));
        let offer = json!({"janus": "event", "sender": 4, "plugindata": {"data": {"videoroom": "attached", "streams": [
            {"mindex": 0, "mid": "0", "type": "video", "feed_id": 11, "feed_display": "load-1"},
            {"mindex": 1, "mid": "1", "type": "audio", "feed_id": 11},
            {"mindex": 2, "mid": "2", "type": "data"},
        ]}}, "jsep": {"type": "offer", "sdp": "v=0"}});
        let feeds = vec![("0".into(), "load-1".into()), ("1".into(), "11".into())];
        assert_eq!(
            parse_event(&offer),
            Ok((
                4,
                Event::Offer {
                    sdp: "v=0".into(),
                    feeds
                }
            ))
        );
        let hangup = json!({"janus": "hangup", "sender": 4, "reason": "DTLS alert"});
        assert_eq!(parse_event(&hangup), Ok((4, Event::Hangup("DTLS alert".into()))));
        assert_eq!(parse_event(&json!({"janus": "keepalive"})), Ok((0, Event::Other)));
        assert_eq!(
            parse_event(&json!({"janus": "webrtcup", "sender": 4})),
            Ok((4, Event::Other))
        );
    }

    #[test]
    fn hostile_events_are_errors() {
        for event in [
            json!({}),
            json!({"janus": 5}),
            json!({"janus": "event"}),
            json!({"janus": "event", "sender": "4"}),
            json!({"janus": "event", "sender": 4}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {"error_code": 428, "error": "No such feed"}}}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {}}, "jsep": {"type": "offer"}}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {}}, "jsep": {"type": "pranswer", "sdp": ""}}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {}}, "jsep": {"type": "offer", "sdp": ""}}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {"streams": [{"feed_id": 1}]}}, "jsep": {"type": "offer", "sdp": ""}}),
            json!({"janus": "event", "sender": 4, "plugindata": {"data": {"streams": [{"feed_id": "1", "mid": "0"}]}}, "jsep": {"type": "offer", "sdp": ""}}),
        ] {
            assert!(parse_event(&event).is_err(), "{event}");
        }
    }

    #[test]
    fn errors_quote_little_of_a_huge_value() {
        let huge = "x".repeat(1 << 20);
        for event in [
            json!({"janus": huge}),
            json!({"janus": "event", "sender": huge}),
            json!({"janus": "event", "sender": 1, "plugindata": {"data": {}}, "jsep": {"type": huge, "sdp": ""}}),
        ] {
            let error = parse_event(&event).unwrap_err().to_string();
            assert!(error.len() < 200, "{} bytes: {}...", error.len(), &error[..100]);
        }
    }

    #[test]
    fn long_poll_replies_are_lists_of_events() {
        assert_eq!(poll_events(json!([{"janus": "keepalive"}])).map(|v| v.len()), Ok(1));
        assert_eq!(poll_events(json!({"janus": "keepalive"})).map(|v| v.len()), Ok(1));
        assert!(poll_events(json!("keepalive")).is_err());
    }

    /// Any JSON value, nested up to four deep, with the numbers and
    /// strings Janus's fields take and the ones they must refuse.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![Just(0), Just(u64::MAX), Just(1 << 53)].prop_map(Value::from),
            prop_oneof![
                Just("event"),
                Just("success"),
                Just("ack"),
                Just("error"),
                Just("hangup"),
                Just("keepalive"),
                Just("offer"),
                Just("answer"),
            ]
            .prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::vec((field(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// The names Janus's replies and events use, and others.
    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            prop_oneof![
                Just("janus"),
                Just("sender"),
                Just("data"),
                Just("id"),
                Just("plugindata"),
                Just("error_code"),
                Just("error"),
                Just("jsep"),
                Just("type"),
                Just("sdp"),
                Just("streams"),
                Just("feed_id"),
                Just("mid"),
                Just("feed_display"),
                Just("participants"),
                Just("publisher"),
                Just("display"),
            ]
            .prop_map(str::to_owned),
            "[a-z_]{0,6}",
        ]
    }

    /// A well-formed subscriber offer with each field named in `hostile`
    /// replaced by `value`, wherever it stands.
    fn offer_with(hostile: &str, value: &Value) -> Value {
        let mut event = json!({"janus": "event", "sender": 4, "plugindata": {"data": {"videoroom": "attached", "streams": [
            {"mid": "0", "feed_id": 11, "feed_display": "load-1"},
            {"mid": "1", "feed_id": 12},
        ]}}, "jsep": {"type": "offer", "sdp": "v=0"}});
        replace(&mut event, hostile, value);
        event
    }

    fn replace(at: &mut Value, name: &str, value: &Value) {
        match at {
            Value::Object(fields) => {
                for (key, field) in fields.iter_mut() {
                    if key == name {
                        *field = value.clone();
                    } else {
                        replace(field, name, value);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| replace(item, name, value)),
            _ => {}
        }
    }

    /// What every reading of `value` gives, its errors aside (one may
    /// quote a float, which need not come back to the last digit once
    /// written out and parsed again).
    type Readings = (
        Option<u64>,
        Option<Vec<Option<(u64, Event)>>>,
        Option<Option<Vec<(u64, String)>>>,
    );

    fn readings(value: &Value) -> Readings {
        let events = poll_events(value.clone()).ok();
        let data = message_reply(value).ok();
        (
            success_id(value).ok(),
            events.map(|list| list.iter().map(|e| parse_event(e).ok()).collect()),
            data.map(|d| d.and_then(|d| publishers(d).ok())),
        )
    }

    proptest! {
        #[test]
        fn any_reply_reads_without_panic_and_reads_the_same_once_reserialized(value in any_json()) {
            let body = value.to_string();
            match parse_reply(body.as_bytes()) {
                Ok(reply) => {
                    prop_assert!(reply.is_object() || reply.is_array());
                    let again = parse_reply(reply.to_string().as_bytes()).expect("what parsed parses again");
                    prop_assert_eq!(readings(&reply), readings(&again));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn any_bytes_are_a_reply_or_an_error(body in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Err(JanusError::Malformed(what)) = parse_reply(&body) {
                prop_assert!(!what.is_empty());
            }
        }

        #[test]
        fn a_hostile_field_in_an_offer_is_read_or_refused_never_misread(hostile in field(), value in any_json()) {
            let event = offer_with(&hostile, &value);
            match parse_event(&event) {
                Ok((sender, Event::Offer { sdp, feeds })) => {
                    prop_assert_eq!(Some(sender), event["sender"].as_u64());
                    prop_assert_eq!(Some(sdp.as_str()), event["jsep"]["sdp"].as_str());
                    let streams = event["plugindata"]["data"]["streams"].as_array().expect("an offer's streams");
                    for (mid, _) in &feeds {
                        prop_assert!(streams.iter().any(|s| s["mid"] == mid.as_str()), "{} is no stream's mid", mid);
                    }
                }
                Ok((sender, other)) => {
                    let keepalive = event["janus"] == "keepalive";
                    let expected = if keepalive { Some(0) } else { event["sender"].as_u64() };
                    prop_assert_eq!(Some(sender), expected, "{:?}", other);
                }
                Err(e) => prop_assert!(e.to_string().len() < 300, "{}", e),
            }
        }
    }
}
