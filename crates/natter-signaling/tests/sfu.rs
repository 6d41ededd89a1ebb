//! Rooms of a server whose media goes through its SFU
//! (`docs/signaling.md`, "SFU rooms"): `welcome` says so, offers and
//! candidates to the peer `sfu` go to the SFU instead of a participant,
//! the SFU's messages reach the participant, and a session's end is
//! told to the SFU.

use std::time::Instant;

use natter_signaling::message::{ServerMessage, SFU_PEER};
use natter_signaling::{Config, ConnectionId, Output, SfuInput, Signaling, TokenKey};
use serde_json::{json, Value};

fn core(sfu: bool) -> Signaling {
    let mut config = Config::new(TokenKey::new(b"test secret"));
    config.dev = true;
    config.sfu = sfu;
    Signaling::new(config, [2; 32])
}

fn send(core: &mut Signaling, conn: ConnectionId, message: Value) {
    core.handle_text(conn, &message.to_string(), Instant::now(), 1_800_000_000);
}

/// The JSON frames sent to `conn`, draining everything.
fn sent_to(core: &mut Signaling, conn: ConnectionId) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(output) = core.poll_output() {
        if let Output::Send { conn: c, text } = output {
            if c == conn {
                out.push(serde_json::from_str(&text).unwrap());
            }
        }
    }
    out
}

fn join(core: &mut Signaling, name: &str) -> (ConnectionId, String) {
    let conn = core.handle_connect(Instant::now());
    send(
        core,
        conn,
        json!({"type": "join", "version": 1, "room": "r", "name": name}),
    );
    let welcome = sent_to(core, conn).remove(0);
    (conn, welcome["id"].as_str().unwrap().to_owned())
}

#[test]
fn offers_and_candidates_to_the_sfu_reach_it_and_its_answers_the_participant() {
    let mut core = core(true);
    let conn = core.handle_connect(Instant::now());
    send(
        &mut core,
        conn,
        json!({"type": "join", "version": 1, "room": "r", "name": "Ann"}),
    );
    let welcome = sent_to(&mut core, conn).remove(0);
    assert_eq!(welcome["sfu"], true);
    let ann = welcome["id"].as_str().unwrap().to_owned();

    send(&mut core, conn, json!({"type": "offer", "to": SFU_PEER, "sdp": "v=0"}));
    let candidate = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"});
    send(
        &mut core,
        conn,
        json!({"type": "candidate", "to": SFU_PEER, "candidate": candidate}),
    );
    assert!(sent_to(&mut core, conn).is_empty(), "no error for messages to the SFU");
    let room = "r".to_owned();
    assert_eq!(
        core.poll_sfu(),
        Some(SfuInput::Offer {
            room: room.clone(),
            peer: ann.clone(),
            sdp: "v=0".into()
        })
    );
    assert_eq!(
        core.poll_sfu(),
        Some(SfuInput::Candidate {
            room: room.clone(),
            peer: ann.clone(),
            candidate
        })
    );
    assert_eq!(core.poll_sfu(), None);

    let bob_conn = core.handle_connect(Instant::now());
    send(
        &mut core,
        bob_conn,
        json!({"type": "join", "version": 1, "room": "r", "name": "Bob"}),
    );
    let joined = sent_to(&mut core, conn).remove(0);
    assert_eq!(joined["type"], "peer-joined");
    let bob = joined["peer"]["id"].as_str().unwrap().to_owned();
    core.handle_sfu_message(
        &ann,
        &ServerMessage::Answer {
            from: SFU_PEER,
            sdp: "v=0 answer",
        },
    );
    core.handle_sfu_message(
        &ann,
        &ServerMessage::Track {
            mid: "3",
            peer: Some(&bob),
            kind: "video",
        },
    );
    core.handle_sfu_message(&ann, &ServerMessage::Speaker { peer: Some(&bob) });
    core.handle_sfu_message(&ann, &ServerMessage::Speaker { peer: None });
    let to_ann = sent_to(&mut core, conn);
    assert_eq!(to_ann[0], json!({"type": "answer", "from": "sfu", "sdp": "v=0 answer"}));
    assert_eq!(
        to_ann[1],
        json!({"type": "track", "mid": "3", "peer": bob, "kind": "video"})
    );
    assert_eq!(to_ann[2], json!({"type": "speaker", "peer": bob}));
    assert_eq!(to_ann[3], json!({"type": "speaker", "peer": null}));

    // Chat goes to everyone else in the room, not back; a blank one is
    // refused and goes nowhere.
    send(&mut core, bob_conn, json!({"type": "chat", "text": "hi all"}));
    send(&mut core, bob_conn, json!({"type": "chat", "text": " "}));
    let mut sent = Vec::new();
    while let Some(output) = core.poll_output() {
        if let Output::Send { conn: c, text } = output {
            sent.push((c == conn, serde_json::from_str::<Value>(&text).unwrap()));
        }
    }
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], (true, json!({"type": "chat", "from": bob, "text": "hi all"})));
    assert_eq!(
        (sent[1].0, &sent[1].1["code"], &sent[1].1["ref"]),
        (false, &json!("bad-message"), &json!("chat"))
    );

    send(&mut core, bob_conn, json!({"type": "leave"}));
    assert_eq!(core.poll_sfu(), Some(SfuInput::Left { room, peer: bob }));
}

#[test]
fn a_mesh_room_knows_no_sfu() {
    let mut core = core(false);
    let (conn, _) = join(&mut core, "Ann");
    send(&mut core, conn, json!({"type": "offer", "to": SFU_PEER, "sdp": "v=0"}));
    let refused = sent_to(&mut core, conn).remove(0);
    assert_eq!(refused["code"], "unknown-peer");
    assert_eq!(core.poll_sfu(), None);
}

/// A WHIP publisher (RFC 9725) enters a room without a socket: the
/// members see it join with its name, its offer goes to the SFU, nothing
/// is queued for it, and its leaving is told to the room and the SFU. A
/// wrong token enters nothing.
#[test]
fn a_participant_without_a_socket_joins_offers_and_leaves() {
    let mut config = Config::new(TokenKey::new(b"test secret"));
    config.sfu = true;
    let key = config.token_key.clone();
    let mut core = Signaling::new(config, [3; 32]);
    let unix = 1_800_000_000;
    let token = core
        .mint_token("r", Some("Ann"), std::time::Duration::from_secs(60), unix)
        .unwrap();
    let conn = core.handle_connect(Instant::now());
    send(
        &mut core,
        conn,
        json!({"type": "join", "version": 1, "room": "r", "name": "Bob", "token": token}),
    );
    sent_to(&mut core, conn);

    let refused = core
        .join_external("r", Some("not a token"), "whip-1", unix)
        .unwrap_err();
    assert_eq!(refused.code, natter_signaling::ErrorCode::TokenInvalid);
    assert_eq!(core.gauges(), (1, 1, 1), "the refused publisher left no session");

    let other = key.mint(&natter_signaling::JoinClaims {
        room: "r".into(),
        exp: unix + 60,
        name: None,
        iat: None,
    });
    let whip = core.join_external("r", Some(&other), "whip-1", unix).unwrap();
    let joined = sent_to(&mut core, conn);
    assert_eq!(joined[0]["type"], "peer-joined");
    assert_eq!(joined[0]["peer"]["id"], whip.as_str());
    assert_eq!(
        joined[0]["peer"]["name"], "whip-1",
        "named by the caller when the token names nobody"
    );

    core.offer_external(&whip, "v=0".into());
    assert_eq!(
        core.poll_sfu(),
        Some(SfuInput::Offer {
            room: "r".into(),
            peer: whip.clone(),
            sdp: "v=0".into()
        })
    );
    core.handle_sfu_message(&whip, &ServerMessage::Speaker { peer: None });
    assert!(core.poll_output().is_none(), "nothing is sent or held for it");

    core.leave_external(&whip);
    let left = sent_to(&mut core, conn);
    assert_eq!(left[0]["type"], "peer-left");
    assert_eq!(left[0]["id"], whip.as_str());
    assert_eq!(
        core.poll_sfu(),
        Some(SfuInput::Left {
            room: "r".into(),
            peer: whip
        })
    );
    assert_eq!(core.gauges(), (1, 1, 1));
}

#[test]
fn everyone_is_told_when_the_room_is_recorded_and_so_is_a_later_joiner() {
    let mut core = core(true);
    assert!(core.set_recording("r", true).is_err(), "no such room yet");
    let (ann_conn, ann) = join(&mut core, "Ann");
    assert_eq!(core.participant_name(&ann), Some("Ann"));
    core.set_recording("r", true).unwrap();
    assert_eq!(
        sent_to(&mut core, ann_conn),
        [json!({"type": "recording", "active": true})]
    );
    core.set_recording("r", true).unwrap();
    assert!(sent_to(&mut core, ann_conn).is_empty(), "told once");

    let bob_conn = core.handle_connect(Instant::now());
    send(
        &mut core,
        bob_conn,
        json!({"type": "join", "version": 1, "room": "r", "name": "Bob"}),
    );
    let told = sent_to(&mut core, bob_conn);
    assert_eq!(told[0]["type"], "welcome");
    assert_eq!(told[1], json!({"type": "recording", "active": true}));

    // Emptied while recorded, the room stays; stopped, it goes.
    send(&mut core, ann_conn, json!({"type": "leave"}));
    send(&mut core, bob_conn, json!({"type": "leave"}));
    sent_to(&mut core, bob_conn);
    assert_eq!(core.gauges().2, 1);
    assert_eq!(core.participant_name(&ann), None);
    core.set_recording("r", false).unwrap();
    assert_eq!(core.gauges().2, 0);
}

#[test]
fn a_player_of_one_participant_names_it_by_id_or_by_a_unique_name() {
    let mut core = core(true);
    let (_, ann) = join(&mut core, "Ann");
    let player = core.join_external("r", None, "whep-1", 1_800_000_000).unwrap();
    assert_eq!(core.find_participant("r", &ann), Some(ann.as_str()));
    assert_eq!(core.find_participant("r", "Ann"), Some(ann.as_str()));
    assert_eq!(core.find_participant("r", "whep-1"), Some(player.as_str()));
    assert_eq!(core.find_participant("elsewhere", "Ann"), None);
    assert_eq!(core.find_participant("r", "Bob"), None);
    let (_, _other) = join(&mut core, "Ann");
    assert_eq!(core.find_participant("r", "Ann"), None, "two are named Ann");
    assert_eq!(core.find_participant("r", &ann), Some(ann.as_str()));
    // Told before the offer, so the SFU has it when the connection is made.
    core.play_external(&player, &ann);
    core.offer_external(&player, "v=0".into());
    assert_eq!(
        core.poll_sfu(),
        Some(SfuInput::Source {
            room: "r".into(),
            peer: player.clone(),
            publisher: ann.clone()
        })
    );
    assert!(matches!(core.poll_sfu(), Some(SfuInput::Offer { .. })));
}
