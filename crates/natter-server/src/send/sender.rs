//! `natter send`: joins the code's room, answers receivers that prove the
//! code, and sends the file from the byte each asks for. A receiver cut
//! off may come back under a new participant id; the newest accepted
//! transfer is the one that counts.

use std::collections::HashSet;

use anyhow::Context;
use natter_client::transfer::{FileSource, MAX_FILE_BYTES};
use natter_client::{Client, Event, FileHeader};
use serde_json::json;

use super::code::{Binding, Code, Role};
use super::progress::{bytes, Output};
use super::protocol::Message;
use super::{join_error, Route, SendOptions, SENDER_NAME};

/// Wrong codes tolerated before the sender stops, so nobody can go on
/// guessing online (magic-wormhole stops at the first).
const MAX_WRONG_CODES: u32 = 3;

pub async fn run(options: SendOptions) -> anyhow::Result<()> {
    let path = &options.file;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    // Hashed as it is read, then read again as the channel takes it: the
    // file is never whole in memory.
    let header = {
        let (path, name) = (path.clone(), name.clone());
        tokio::task::spawn_blocking(move || FileHeader::of_file("", &name, "application/octet-stream", &path))
            .await
            .context("hashing the file")?
    }
    .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        header.size <= MAX_FILE_BYTES,
        "{}: {} is over the 1 GiB a receiver takes",
        path.display(),
        bytes(header.size)
    );
    let source = FileSource::Path(path.clone());
    let code = Code::generate();
    let key = code.key();
    let common = &options.common;
    let (client, mut events) = Client::join(common.config(code.room(), SENDER_NAME))
        .await
        .map_err(|e| join_error(&common.server, e))?;
    let mut out = Output::new(common.json);
    let command = format!("natter receive {}", code.reveal());
    out.note(
        "code",
        json!({"code": code.reveal(), "command": command, "file": name, "size": header.size, "sha256": header.sha256}),
        &format!(
            "Sending {name} ({}). On the other machine run:\n\n    {command}\n",
            bytes(header.size)
        ),
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Receivers that proved the code, and the transfer under way.
    let mut proven = HashSet::new();
    let mut current: Option<(String, FileHeader)> = None;
    let mut wrong_codes = 0;
    loop {
        let event = tokio::select! {
            event = events.recv() => Some(event.context("the client stopped")?),
            _ = tokio::signal::ctrl_c() => None,
            _ = terminate.recv() => None,
        };
        let Some(event) = event else {
            out.finish_line();
            client.leave().await;
            anyhow::bail!("interrupted before a receiver had the file");
        };
        match event {
            Event::Chat { from, text, .. } => match Message::parse(&text) {
                Some(Message::Hello { proof }) => {
                    // The hello came over DTLS, so the peer's fingerprint is verified.
                    let fingerprints = client.dtls_fingerprints(&from).await?;
                    let (local, remote) = fingerprints.unwrap_or_default();
                    let binding = Binding {
                        sender: client.id(),
                        receiver: &from,
                        sender_fingerprint: &local,
                        receiver_fingerprint: &remote,
                    };
                    if !remote.is_empty() && key.check(Role::Receiver, &binding, &proof) {
                        proven.insert(from.clone());
                        let offer = Message::Offer {
                            proof: key.prove(Role::Sender, &binding),
                            name: name.clone(),
                            size: header.size,
                            sha256: header.sha256.clone(),
                        };
                        client.chat_to(&from, &offer.to_json())?;
                    } else {
                        tracing::warn!(peer = %from, "a receiver gave a wrong code");
                        out.note(
                            "wrong-code",
                            json!({"peer": from}),
                            "a receiver gave a wrong code; still waiting",
                        );
                        let refused = Message::Refused {
                            reason: "wrong code".to_owned(),
                        };
                        client.chat_to(&from, &refused.to_json())?;
                        wrong_codes += 1;
                        if wrong_codes == MAX_WRONG_CODES {
                            client.leave().await;
                            anyhow::bail!(
                                "{MAX_WRONG_CODES} receivers gave a wrong code (someone may be guessing); run natter send again for a new code"
                            );
                        }
                    }
                }
                Some(Message::Accept { id, offset }) if proven.contains(&from) && offset <= header.size => {
                    let mut part = header.clone();
                    part.id = id;
                    part.offset = offset;
                    out.finish_line();
                    out.start(&name, header.size, offset, &Route::to(&client, &from).await);
                    client.send_file_part(&from, part.clone(), source.clone()).await?;
                    current = Some((from, part));
                }
                _ => {}
            },
            Event::FileProgress { peer, id, bytes, .. } if is_current(&current, &peer, &id) => out.update(bytes),
            Event::FileSent {
                peer, verified, sha256, ..
            } if current.as_ref().is_some_and(|(p, _)| *p == peer) => {
                out.finish_line();
                anyhow::ensure!(
                    verified,
                    "the receiver's SHA-256 {sha256} is not the file's {}",
                    header.sha256
                );
                let offset = current.as_ref().map_or(0, |(_, part)| part.offset);
                let (rate, _) = out.rate_eta();
                out.note(
                    "done",
                    json!({"file": name, "bytes": header.size, "sent": header.size - offset, "sha256": sha256, "rate": rate.round()}),
                    &format!("sent {name}: {} verified by the receiver ({}/s)", bytes(header.size), bytes(rate as u64)),
                );
                break;
            }
            Event::FileFailed { peer, reason, .. } if current.as_ref().is_some_and(|(p, _)| *p == peer) => {
                out.finish_line();
                out.note(
                    "interrupted",
                    json!({"reason": reason}),
                    &format!("the transfer broke off ({reason}); waiting for the receiver to resume"),
                );
                current = None;
            }
            Event::Closed { error } => {
                return Err(anyhow::anyhow!(error.unwrap_or_else(|| "the session closed".to_owned())))
            }
            _ => {}
        }
    }
    client.leave().await;
    Ok(())
}

fn is_current(current: &Option<(String, FileHeader)>, peer: &str, id: &str) -> bool {
    current.as_ref().is_some_and(|(p, part)| p == peer && part.id == id)
}
