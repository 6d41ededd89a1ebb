//! Two natter-client participants through a real WebSocket server made
//! of natter-signaling's core (the one `natter serve` runs), on
//! loopback: the mesh connects, chat and a file go across, a dropped
//! socket resumes without touching the peer connection, leaving is seen
//! at once, a refused token and a server gone end with clear errors; a
//! file resumed from an offset (`expect_file`, `send_file_part`) arrives
//! as data events with progress, and its SHA-256 covers the whole file.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use natter_client::transfer::sha256_hex;
use natter_client::{Client, ClientConfig, Error, Event, FileHeader, IncomingFile, Sha256};
use natter_io::LocalAddresses;
use natter_signaling::{Config, ConnectionId, Output, Signaling, TokenKey};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

enum ToCore {
    Open(
        mpsc::UnboundedSender<Output>,
        tokio::sync::oneshot::Sender<ConnectionId>,
    ),
    Text(ConnectionId, String),
    Closed(ConnectionId),
    /// Drop every socket without a close frame, as a network outage would.
    DropAll,
}

/// A signaling server on 127.0.0.1: natter-signaling's core in one task,
/// a task per socket. Dropping the returned sender stops it.
async fn server(
    dev: bool,
) -> (
    SocketAddr,
    mpsc::UnboundedSender<ToCore>,
    [tokio::task::JoinHandle<()>; 2],
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (core_tx, mut core_rx) = mpsc::unbounded_channel::<ToCore>();
    let mut config = Config::new(TokenKey::new(b"client test secret"));
    config.dev = dev;
    let core = tokio::spawn(async move {
        let mut signaling = Signaling::new(config, [3; 32]);
        let mut sockets: HashMap<ConnectionId, mpsc::UnboundedSender<Output>> = HashMap::new();
        loop {
            let deadline = signaling
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                message = core_rx.recv() => {
                    let now = Instant::now();
                    match message {
                        Some(ToCore::Open(out, reply)) => {
                            let conn = signaling.handle_connect(now);
                            sockets.insert(conn, out);
                            let _ = reply.send(conn);
                        }
                        Some(ToCore::Text(conn, text)) => {
                            let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                            signaling.handle_text(conn, &text, now, unix);
                        }
                        Some(ToCore::Closed(conn)) => {
                            if sockets.remove(&conn).is_some() {
                                signaling.handle_closed(conn, now);
                            }
                        }
                        Some(ToCore::DropAll) => {
                            for (conn, _) in sockets.drain() {
                                signaling.handle_closed(conn, now);
                            }
                        }
                        None => return,
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => signaling.handle_timeout(Instant::now()),
            }
            while let Some(output) = signaling.poll_output() {
                let conn = match &output {
                    Output::Send { conn, .. } | Output::Close { conn, .. } => *conn,
                };
                if let Some(socket) = sockets.get(&conn) {
                    let _ = socket.send(output);
                }
            }
        }
    });
    let accept_core = core_tx.clone();
    let acceptor = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let core = accept_core.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (out_tx, mut out_rx) = mpsc::unbounded_channel();
                let (conn_tx, conn_rx) = tokio::sync::oneshot::channel();
                if core.send(ToCore::Open(out_tx, conn_tx)).is_err() {
                    return;
                }
                let Ok(conn) = conn_rx.await else { return };
                loop {
                    tokio::select! {
                        frame = ws.next() => match frame {
                            Some(Ok(Message::Text(text))) => { let _ = core.send(ToCore::Text(conn, text.to_string())); }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        output = out_rx.recv() => match output {
                            Some(Output::Send { text, .. }) => { let _ = ws.send(Message::text(text)).await; }
                            Some(Output::Close { code, reason, .. }) => {
                                let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                                let _ = ws.close(Some(frame)).await;
                                break;
                            }
                            // DropAll: the core forgot us; vanish without a close frame.
                            None => return,
                        },
                    }
                }
                let _ = core.send(ToCore::Closed(conn));
            });
        }
    });
    (addr, core_tx, [core, acceptor])
}

fn config(addr: SocketAddr, name: &str) -> ClientConfig {
    let mut config = ClientConfig::new(format!("http://{addr}/?room=test"), name);
    config.local_addresses = LocalAddresses::Addresses(vec!["127.0.0.1:0".parse().unwrap()]);
    config.reconnect_timeout = Duration::from_secs(2);
    config
}

/// The first event matching `want`, within [`WAIT`].
async fn until<T>(
    events: &mut mpsc::UnboundedReceiver<Event>,
    what: &str,
    mut want: impl FnMut(&Event) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            if let Some(found) = want(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("events ended before {what}"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

async fn connected(events: &mut mpsc::UnboundedReceiver<Event>, to: &str) {
    until(events, "connected", |e| {
        matches!(e, Event::Connection { id, state, .. } if id == to && state == "connected").then_some(())
    })
    .await;
}

type Joined = (Client, mpsc::UnboundedReceiver<Event>);

/// Alice and Bob in the room, connected to each other.
async fn alice_and_bob(addr: SocketAddr) -> (Joined, Joined) {
    let (alice, mut alice_events) = Client::join(config(addr, "Alice")).await.unwrap();
    let (bob, mut bob_events) = Client::join(config(addr, "Bob")).await.unwrap();
    connected(&mut alice_events, bob.id()).await;
    connected(&mut bob_events, alice.id()).await;
    ((alice, alice_events), (bob, bob_events))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_mesh_chat_files_resume_and_leave() {
    let (addr, core, _task) = server(true).await;
    let ((alice, mut alice_events), (bob, mut bob_events)) = alice_and_bob(addr).await;

    alice.chat("hello Bob").unwrap();
    let text = until(&mut bob_events, "chat", |e| match e {
        Event::Chat { from, name, text } if from == alice.id() && name == "Alice" => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "hello Bob");

    let data: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(
        bob.send_file("numbers.bin", "application/octet-stream", data.clone())
            .await
            .unwrap(),
        1
    );
    let file = until(&mut alice_events, "file", |e| match e {
        Event::FileReceived { file, .. } => Some(file.clone()),
        Event::FileFailed { reason, .. } => panic!("file failed: {reason}"),
        _ => None,
    })
    .await;
    assert!(file.verified);
    assert_eq!(file.file_name, "numbers.bin");
    assert!(file.data == data, "the bytes arrived as sent");
    let verified = until(&mut bob_events, "file result", |e| match e {
        Event::FileSent { verified, peer, .. } if peer == alice.id() => Some(*verified),
        _ => None,
    })
    .await;
    assert!(verified);

    // Every socket drops: both resume their sessions, the peer
    // connection is untouched and chat still flows.
    core.send(ToCore::DropAll).unwrap();
    until(&mut alice_events, "reconnecting", |e| {
        matches!(e, Event::Reconnecting { .. }).then_some(())
    })
    .await;
    let resumed = until(&mut alice_events, "resumed", |e| match e {
        Event::Joined { resumed, id, .. } => Some((*resumed, id.clone())),
        Event::PeerLeft { .. } => panic!("{e:?} after a resume"),
        _ => None,
    })
    .await;
    assert_eq!(resumed, (true, alice.id().to_owned()));
    bob.chat("still here").unwrap();
    until(&mut alice_events, "chat after the resume", |e| match e {
        Event::Chat { text, .. } if text == "still here" => Some(()),
        Event::PeerLeft { .. } => panic!("{e:?} after a resume"),
        _ => None,
    })
    .await;

    // Leaving is seen at once (not after a heartbeat timeout).
    let left = Instant::now();
    alice.leave().await;
    let reason = until(&mut bob_events, "Alice leaving", |e| match e {
        Event::PeerLeft { id, name, reason } if id == alice.id() => Some((name.clone(), reason.clone())),
        _ => None,
    })
    .await;
    assert_eq!(reason, ("Alice".to_owned(), "left".to_owned()));
    assert!(left.elapsed() < Duration::from_secs(3));
    assert!(matches!(
        alice_events.recv().await,
        Some(Event::Closed { error: None }) | Some(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_resumed_from_an_offset_is_checked_whole() {
    let (addr, _core, _task) = server(true).await;
    let ((alice, mut alice_events), (bob, mut bob_events)) = alice_and_bob(addr).await;

    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    // Alice kept the first 1,000,000 bytes of an earlier attempt.
    let had = 1_000_000;
    let mut prefix = Sha256::new();
    prefix.update(&data[..had]);
    alice
        .expect_file(bob.id(), "resumed-1", IncomingFile::resume(had as u64, prefix))
        .unwrap();
    let mut header = FileHeader::new("resumed-1", "numbers.bin", "application/octet-stream", &data);
    header.offset = had as u64;
    let data = std::sync::Arc::new(data);
    let mut wrong = header.clone();
    wrong.offset = wrong.size + 1;
    assert!(matches!(
        bob.send_file_part(alice.id(), wrong, data.clone()).await,
        Err(Error::BadOptions(_))
    ));
    assert_eq!(bob.send_file_part(alice.id(), header, data.clone()).await.unwrap(), 1);

    let mut stored = data[..had].to_vec();
    let file = until(&mut alice_events, "the rest of the file", |e| match e {
        Event::FileData { id, data, from } if id == "resumed-1" && from == bob.id() => {
            stored.extend_from_slice(data);
            None
        }
        Event::FileReceived { file, .. } => Some(file.clone()),
        Event::FileFailed { reason, .. } => panic!("file failed: {reason}"),
        _ => None,
    })
    .await;
    assert!(file.verified && file.data.is_empty(), "{file:?}");
    assert_eq!(file.sha256, sha256_hex(&data));
    assert!(stored == *data, "data events carry the rest in order");

    let mut progress = Vec::new();
    let verified = until(&mut bob_events, "file result", |e| match e {
        Event::FileProgress { bytes, size, .. } => {
            progress.push((*bytes, *size));
            None
        }
        Event::FileSent { verified, .. } => Some(*verified),
        _ => None,
    })
    .await;
    assert!(verified);
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "{progress:?}");
    assert!(
        progress[0].0 > had as u64,
        "progress counts from the offset: {progress:?}"
    );
    assert_eq!(progress.last(), Some(&(data.len() as u64, data.len() as u64)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_token_and_server_gone_are_clear_errors() {
    let (addr, core, tasks) = server(false).await;
    let refused = Client::join(config(addr, "Mallory")).await.unwrap_err();
    assert!(
        matches!(&refused, Error::Refused { close_code: 4401, code: Some(code), .. } if code == "token-required"),
        "{refused}"
    );
    assert!(refused.to_string().contains("token-required"), "{refused}");

    let mut with_token = config(addr, "Trent");
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    with_token.token = Some(
        TokenKey::new(b"client test secret").mint(&natter_signaling::JoinClaims {
            room: "test".to_owned(),
            exp: unix + 60,
            name: None,
            iat: None,
        }),
    );
    let (_trent, mut events) = Client::join(with_token).await.unwrap();
    // The server goes away for good: after reconnect_timeout (2 s) the
    // session ends with an error that says so.
    // The listener closes; the sockets' tasks end as the core's channel does.
    drop(core);
    for task in tasks {
        task.abort();
    }
    let error = until(&mut events, "the end", |e| match e {
        Event::Closed { error } => Some(error.clone()),
        _ => None,
    })
    .await;
    let error = error.expect("an error");
    assert!(error.contains("is gone"), "{error}");

    let nobody = Client::join(config("127.0.0.1:1".parse().unwrap(), "Nobody"))
        .await
        .unwrap_err();
    assert!(
        nobody.to_string().starts_with("cannot connect to ws://127.0.0.1:1/ws"),
        "{nobody}"
    );
    let bad = Client::join(ClientConfig::new("gopher://x", "n")).await.unwrap_err();
    assert!(bad.to_string().contains("scheme"), "{bad}");
}
