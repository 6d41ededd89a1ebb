//! natter load's reading of Janus's REST replies and long-poll events
//! (crates/natter-server/src/load/janus/reply.rs): arbitrary bytes as a
//! reply body, and inside a subscriber's offer event and a
//! `listparticipants` reply, give our types or an error that says what
//! was wrong in a few words, never a panic; and a reply that parsed,
//! written out and parsed again, reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[path = "../../crates/natter-server/src/load/janus/reply.rs"]
#[allow(dead_code)]
mod reply;

use reply::{message_reply, parse_event, parse_reply, poll_events, publishers, success_id, JanusError};

/// Every reading natter load makes of a reply, as text to compare.
fn readings(reply: &Value) -> Vec<String> {
    let mut out = vec![reading(success_id(reply).as_ref())];
    match poll_events(reply.clone()) {
        Ok(events) => out.extend(events.iter().map(|event| reading(parse_event(event).as_ref()))),
        Err(error) => out.push(reading::<()>(Err(&error))),
    }
    match message_reply(reply) {
        Ok(Some(data)) => out.push(reading(publishers(data).as_ref())),
        other => out.push(reading(other.as_ref().map(|_| "ack"))),
    }
    out
}

/// What a reading gave, or which error: a malformed reply's message may
/// quote a number, which JSON need not give back to the last digit once
/// written out and parsed again (serde_json's fast float parsing).
fn reading<T: std::fmt::Debug>(result: Result<T, &JanusError>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(error) => {
            assert_clear(error);
            match error {
                JanusError::Malformed(_) => "malformed".to_owned(),
                error => format!("{error:?}"),
            }
        }
    }
}

/// An error names what was wrong, and quotes little of what Janus sent.
fn assert_clear(error: &JanusError) {
    let text = error.to_string();
    if let JanusError::Malformed(what) = error {
        assert!(!what.is_empty() && text.len() < 400, "{text}");
    }
}

/// A reply body: what parses is an object or an array and reads the
/// same once written out and parsed again; what does not is a clear error.
fn check(body: &[u8]) {
    match parse_reply(body) {
        Ok(reply) => {
            assert!(reply.is_object() || reply.is_array(), "{reply}");
            let again = parse_reply(reply.to_string().as_bytes()).expect("what parsed parses again");
            assert_eq!(readings(&reply), readings(&again));
        }
        Err(error) => assert_clear(&error),
    }
}

/// Where the input also goes (between prefix and suffix), so that the
/// fuzzer reaches the fields of a subscriber's offer and of
/// `listparticipants` soon: well-formed ones whose fields it can
/// override (the last of two equal keys counts).
const TEMPLATES: [(&str, &str); 3] = [
    (
        r#"{"janus":"event","sender":4,"jsep":{"type":"offer","sdp":"v=0"},"plugindata":{"data":"#,
        "}}",
    ),
    (
        r#"{"janus":"event","sender":4,"jsep":{"type":"offer","sdp":"v=0"},"plugindata":{"data":{"streams":[{"mid":"0","feed_id":11,"feed_display":"a","#,
        "}]}}}",
    ),
    (
        r#"{"janus":"success","plugindata":{"data":{"participants":[{"id":1,"publisher":true,"display":"a","#,
        "}]}}}",
    ),
];

fuzz_target!(|data: &[u8]| {
    check(data);
    for (prefix, suffix) in TEMPLATES {
        check(&[prefix.as_bytes(), data, suffix.as_bytes()].concat());
    }
});
