//! Two natter-io connections on 127.0.0.1 talk to each other: trickled
//! candidates, a data channel each way, text and binary messages up to
//! the maximum size, closing a channel and the connection. Every wait is
//! on an event, under one deadline.

use std::time::Duration;

use natter_io::{
    Config, DataChannelId, DataChannelInit, Error, LocalAddresses, PeerConnection, PeerConnectionState, PeerEvent,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config {
        local_addresses: LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]),
        mdns: false,
        ..Config::default()
    }
}

/// One side: its handle and its events.
struct Side {
    name: &'static str,
    pc: PeerConnection,
    events: mpsc::Receiver<PeerEvent>,
}

/// Runs both sides' events until `done` says so for one of them:
/// candidates trickle across, everything else goes to `done`, which
/// returns the value to stop with.
async fn drive<T>(a: &mut Side, b: &mut Side, mut done: impl FnMut(&'static str, &PeerEvent) -> Option<T>) -> T {
    let run = async {
        loop {
            let (event, from, to) = tokio::select! {
                event = a.events.recv() => (event, &*a, &*b),
                event = b.events.recv() => (event, &*b, &*a),
            };
            let event = event.unwrap_or_else(|| panic!("{}'s events ended", from.name));
            if let PeerEvent::IceCandidate(candidate) = &event {
                to.pc
                    .add_ice_candidate(Some(candidate.clone()))
                    .await
                    .expect("the peer's candidate is accepted");
            }
            if let Some(value) = done(from.name, &event) {
                return value;
            }
        }
    };
    timeout(DEADLINE, run)
        .await
        .expect("the connections got there before the deadline")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_exchange_messages_and_close() {
    let (pc, events) = PeerConnection::spawn(config()).unwrap();
    let mut a = Side { name: "a", pc, events };
    let (pc, events) = PeerConnection::spawn(config()).unwrap();
    let mut b = Side { name: "b", pc, events };
    assert_eq!(
        a.pc.local_addresses().await.unwrap().len(),
        1,
        "one socket per given address"
    );

    let chat =
        a.pc.create_data_channel("chat", DataChannelInit::default())
            .await
            .unwrap();
    let offer = a.pc.create_offer().await.unwrap();
    a.pc.set_local_description(offer.clone()).await.unwrap();
    b.pc.set_remote_description(offer).await.unwrap();
    let answer = b.pc.create_answer().await.unwrap();
    b.pc.set_local_description(answer.clone()).await.unwrap();
    a.pc.set_remote_description(answer).await.unwrap();

    // Both sides connect, and the channel opens on both.
    let (mut a_open, mut b_channel, mut a_connected, mut b_connected) = (false, None, false, false);
    drive(&mut a, &mut b, |side, event| {
        match (side, event) {
            ("a", PeerEvent::DataChannelOpen(id)) if *id == chat.id() => a_open = true,
            ("b", PeerEvent::DataChannelOpen(id)) => b_channel = Some(*id),
            ("a", PeerEvent::ConnectionStateChange(PeerConnectionState::Connected)) => a_connected = true,
            ("b", PeerEvent::ConnectionStateChange(PeerConnectionState::Connected)) => b_connected = true,
            _ => {}
        }
        (a_open && a_connected && b_connected && b_channel.is_some()).then_some(())
    })
    .await;
    let b_chat = b.pc.data_channel(b_channel.unwrap());
    let info = b_chat.info().await.unwrap();
    assert_eq!(
        (info.label.as_str(), info.ordered),
        ("chat", true),
        "b sees a's channel as a made it"
    );

    // Text and binary, the largest message included, arrive as sent.
    let big: Vec<u8> = (0..262_144u32).map(|i| (i * 7 % 251) as u8).collect();
    chat.send("héllo").await.unwrap();
    chat.send(big.clone()).await.unwrap();
    let mut received = Vec::new();
    drive(&mut a, &mut b, |side, event| {
        if let ("b", PeerEvent::DataChannelMessage { data, is_text, .. }) = (side, event) {
            received.push((data.clone(), *is_text));
        }
        (received.len() == 2).then_some(())
    })
    .await;
    assert_eq!(
        received[0],
        ("héllo".as_bytes().to_vec(), true),
        "the text came as text"
    );
    assert!(
        received[1] == (big, false),
        "the 256 KiB binary message came whole, as binary"
    );

    // And the other way, on the channel's handle made from its id.
    b_chat.send(&b"back"[..]).await.unwrap();
    let back = drive(&mut a, &mut b, |side, event| match (side, event) {
        ("a", PeerEvent::DataChannelMessage { id, data, is_text }) => Some((*id, data.clone(), *is_text)),
        _ => None,
    })
    .await;
    assert_eq!(back, (chat.id(), b"back".to_vec(), false));

    // b closes the channel: both sides see it close.
    b_chat.close().await.unwrap();
    let mut closed: Vec<(&str, DataChannelId)> = Vec::new();
    drive(&mut a, &mut b, |side, event| {
        if let PeerEvent::DataChannelClose(id) = event {
            closed.push((side, *id));
        }
        (closed.len() == 2).then_some(())
    })
    .await;
    assert!(
        closed.contains(&("a", chat.id())) && closed.contains(&("b", b_chat.id())),
        "{closed:?}"
    );
    assert!(
        matches!(chat.send("late").await, Err(Error::UnknownDataChannel(_))),
        "a closed channel refuses to send"
    );

    // a closes the connection: its task ends, its events end, calls fail.
    a.pc.close().await;
    let ended = timeout(DEADLINE, async { while a.events.recv().await.is_some() {} }).await;
    assert!(ended.is_ok(), "a's events end once it is closed");
    assert!(matches!(a.pc.create_offer().await, Err(Error::Closed)));
    b.pc.close().await;
}

#[tokio::test]
async fn dropping_every_handle_ends_the_task() {
    let (pc, mut events) = PeerConnection::spawn(config()).unwrap();
    let channel = pc.create_data_channel("x", DataChannelInit::default()).await.unwrap();
    drop(pc);
    // The channel's handle keeps the connection alive...
    assert!(channel.info().await.is_ok());
    drop(channel);
    // ...and without it the task closes the connection and ends.
    let ended = timeout(DEADLINE, async { while events.recv().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the events end when the task does");
}

#[tokio::test]
async fn errors_say_what_was_wrong() {
    let (pc, _events) = PeerConnection::spawn(config()).unwrap();
    let answer_first = pc.create_answer().await;
    assert!(
        matches!(answer_first, Err(Error::Peer(_))),
        "createAnswer without an offer: {answer_first:?}"
    );
    let taken = Config {
        local_addresses: LocalAddresses::Addresses(vec!["192.0.2.1:0".parse().unwrap()]),
        ..config()
    };
    match PeerConnection::spawn(taken) {
        Err(Error::Bind { address, .. }) => assert_eq!(address.to_string(), "192.0.2.1:0"),
        other => panic!("binding an address the host does not have: {other:?}"),
    }
}

#[test]
fn spawn_outside_a_runtime_is_an_error() {
    assert!(matches!(PeerConnection::spawn(config()), Err(Error::NoRuntime)));
}
