//! `natter receive CODE`: joins the code's room, proves the code to the
//! sender there and checks its proof back, asks for the file from the
//! byte its part file already holds, and writes what comes as it comes.

use std::time::Duration;

use anyhow::Context;
use natter_client::transfer::{safe_file_name, transfer_id};
use natter_client::{Client, Event, IncomingFile};
use serde_json::json;
use tokio::sync::mpsc;

use super::code::{Binding, Code, Role};
use super::partial::Partial;
use super::progress::{bytes, Output};
use super::protocol::Message;
use super::{join_error, ReceiveOptions, Route, RECEIVER_NAME, SENDER_NAME};

/// The file as offered, once accepted.
struct Download {
    name: String,
    id: String,
    partial: Partial,
}

pub async fn run(options: ReceiveOptions) -> anyhow::Result<()> {
    let code = Code::parse(&options.code).map_err(|e| anyhow::anyhow!("not a natter code: {e}"))?;
    let key = code.key();
    let dir = &options.out;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let common = &options.common;
    let (client, mut events) = Client::join(common.config(code.room(), RECEIVER_NAME))
        .await
        .map_err(|e| join_error(&common.server, e))?;
    let mut out = Output::new(common.json);
    let result = receive(&client, &mut events, &options, &code, &key, &mut out).await;
    out.finish_line();
    client.leave().await;
    result
}

async fn receive(
    client: &Client,
    events: &mut mpsc::UnboundedReceiver<Event>,
    options: &ReceiveOptions,
    code: &Code,
    key: &super::code::ProofKey,
    out: &mut Output,
) -> anyhow::Result<()> {
    let dir = &options.out;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(options.wait);
    let sender = find_sender(events, deadline, code).await?;
    let (local, remote) = connect(client, events, deadline, &sender).await?;
    let binding = Binding {
        sender: &sender,
        receiver: client.id(),
        sender_fingerprint: &remote,
        receiver_fingerprint: &local,
    };
    let hello = Message::Hello {
        proof: key.prove(Role::Receiver, &binding),
    };
    client.chat_to(&sender, &hello.to_json())?;
    let mut download: Option<Download> = None;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let event = tokio::select! {
            event = events.recv() => event.context("the client stopped")?,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; run the same command again to resume"),
            _ = terminate.recv() => anyhow::bail!("interrupted; run the same command again to resume"),
        };
        match event {
            Event::Chat { from, text, .. } if from == sender => match Message::parse(&text) {
                Some(Message::Offer {
                    proof,
                    name,
                    size,
                    sha256,
                }) if download.is_none() => {
                    anyhow::ensure!(
                        key.check(Role::Sender, &binding, &proof),
                        "the sender in room {} could not prove it knows the code; nothing was received",
                        code.room()
                    );
                    let name = safe_file_name(&name);
                    let (partial, hash) = Partial::open(dir, &name, size, &sha256)
                        .with_context(|| format!("opening {}", dir.join(format!("{name}.natter-part")).display()))?;
                    let id = transfer_id();
                    let offset = partial.bytes();
                    client.expect_file(&sender, &id, IncomingFile::resume(offset, hash))?;
                    client.chat_to(&sender, &Message::Accept { id: id.clone(), offset }.to_json())?;
                    out.start(&name, size, offset, &Route::to(client, &sender).await);
                    download = Some(Download { name, id, partial });
                }
                Some(Message::Refused { reason }) => {
                    anyhow::bail!("the sender refused: {reason} (check the code {}-…)", code.nameplate())
                }
                _ => {}
            },
            Event::FileData { from, id, data } if from == sender => {
                let Some(d) = download.as_mut().filter(|d| d.id == id) else {
                    continue;
                };
                d.partial
                    .write(&data)
                    .with_context(|| format!("writing {}", d.partial.path().display()))?;
                out.update(d.partial.bytes());
            }
            Event::FileReceived { from, file, .. } if from == sender => {
                let Some(d) = download.take().filter(|d| d.id == file.id) else {
                    continue;
                };
                out.finish_line();
                if !file.verified {
                    let _ = d.partial.discard();
                    anyhow::bail!(
                        "{}: the SHA-256 of what arrived is {}, the sender's is {}; the part file is removed, run again",
                        d.name,
                        file.sha256,
                        file.expected_sha256
                    );
                }
                let size = d.partial.bytes();
                let path = d
                    .partial
                    .complete(dir, &d.name)
                    .with_context(|| format!("saving {} in {}", d.name, dir.display()))?;
                let (rate, _) = out.rate_eta();
                out.note(
                    "done",
                    json!({"file": d.name, "path": path, "bytes": size, "sha256": file.sha256, "rate": rate.round()}),
                    &format!(
                        "saved {} ({}, SHA-256 verified, {}/s)",
                        path.display(),
                        bytes(size),
                        bytes(rate as u64)
                    ),
                );
                sender_gone(events, &sender).await;
                return Ok(());
            }
            Event::FileFailed { peer, reason, .. } if peer == sender => {
                anyhow::bail!("the transfer broke off: {reason}; run the same command again to resume")
            }
            Event::PeerLeft { id, .. } if id == sender => {
                anyhow::bail!("the sender left before the file was complete; the part file is kept for a resume")
            }
            Event::Closed { error } => {
                anyhow::bail!(error.unwrap_or_else(|| "the session closed".to_owned()))
            }
            _ => {}
        }
    }
}

/// Waits (at most [`SENDER_LEAVE_WAIT`]) for the sender to leave: it
/// does once our result reached it, and leaving first could cut the
/// result off (the sender would then wait for a resume that never comes).
async fn sender_gone(events: &mut mpsc::UnboundedReceiver<Event>, sender: &str) {
    let left = async {
        while let Some(event) = events.recv().await {
            if matches!(&event, Event::PeerLeft { id, .. } if id == sender) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(SENDER_LEAVE_WAIT, left).await;
}

/// How long a receiver that has the file waits for the sender to leave.
const SENDER_LEAVE_WAIT: Duration = Duration::from_secs(5);

/// The sender's participant id: the one participant of the code's room
/// under the sender's name, there when we joined.
async fn find_sender(
    events: &mut mpsc::UnboundedReceiver<Event>,
    deadline: tokio::time::Instant,
    code: &Code,
) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::PeerJoined { id, name })) if name == SENDER_NAME => return Ok(id),
            Ok(Some(Event::Closed { error })) => {
                anyhow::bail!(error.unwrap_or_else(|| "the session closed".to_owned()))
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the client stopped"),
            Err(_) => anyhow::bail!(
                "no sender is waiting on code {}-… at this server (check the code; is `natter send` still running?)",
                code.nameplate()
            ),
        }
    }
}

/// Waits for the connection to `sender` (DTLS included), by `deadline`;
/// returns our and the sender's certificate fingerprints, which the
/// proofs bind.
async fn connect(
    client: &Client,
    events: &mut mpsc::UnboundedReceiver<Event>,
    deadline: tokio::time::Instant,
    sender: &str,
) -> anyhow::Result<(String, String)> {
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Connection { id, state, .. })) if id == sender && state == "connected" => {
                return client
                    .dtls_fingerprints(sender)
                    .await?
                    .context("connected to the sender, but DTLS verified no certificate");
            }
            Ok(Some(Event::Connection { id, state, .. })) if id == sender && state == "failed" => {
                anyhow::bail!("could not connect to the sender (ICE or DTLS failed)")
            }
            Ok(Some(Event::PeerLeft { id, .. })) if id == sender => anyhow::bail!("the sender left"),
            Ok(Some(Event::Closed { error })) => {
                anyhow::bail!(error.unwrap_or_else(|| "the session closed".to_owned()))
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("the client stopped"),
            Err(_) => anyhow::bail!("found the sender but could not connect to it in time"),
        }
    }
}
