//! `natter join`: a participant of a room of `natter serve` in the
//! terminal, over natter-client. Prints what happens as text or JSON
//! lines, sends lines typed on stdin as chat, sends files to everyone
//! and saves the files others send; publishes a video file (IVF VP8,
//! VP9 or AV1, H.264 Annex B) and an Ogg Opus file, looped or once
//! (read by [`natter_io::media_file`]), and records what the others send
//! to WebM files ([`crate::recording::writer`]).

use std::io::{BufRead, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use natter_client::session::SFU_PEER;
use natter_client::{Audio, Client, ClientConfig, Event, ReceivedFile, Video};
use natter_io::media_file::{self, Media};
use natter_io::{Format, LocalAddresses};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::recording::writer as record;

/// Join a room of `natter serve` as a participant the web client sees.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  natter join http://127.0.0.1:8080 --room demo --name bot
  natter join 'https://meet.example.org/?room=standup#token=...' --json
  natter join http://127.0.0.1:8080 --room demo --send-file report.pdf --save-dir ~/Downloads
  natter join http://127.0.0.1:8080 --room demo --video video.ivf --audio audio.ogg
  natter join http://127.0.0.1:8080 --room demo --video video.h264 --fps 25 --once
  natter join http://127.0.0.1:8080 --room demo --record recordings/

Lines typed on stdin go to everyone as chat; `/send PATH` sends a file to
everyone, `/quit` leaves (so do Ctrl-C and SIGTERM).

Rooms of `natter serve --sfu` are joined through the SFU (one connection,
to it; chat over signaling, files over its relay); mesh rooms with a
connection to each participant.")]
pub struct JoinOptions {
    /// The server: http://HOST:PORT, the web client's link
    /// (/?room=ROOM#token=TOKEN) or ws://HOST:PORT/ws.
    url: String,
    /// The room (else the URL's `room`).
    #[arg(long)]
    room: Option<String>,
    /// Our display name.
    #[arg(long, default_value = "natter")]
    name: String,
    /// A join token (else the URL's `#token=`); not needed with `serve --dev`.
    #[arg(long, env = "NATTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// Send this file to every participant once connected to them
    /// (repeat for more; participants who join later get it too).
    #[arg(long = "send-file", value_name = "PATH")]
    send_files: Vec<PathBuf>,
    /// Publish this video file as our camera, looped: IVF with VP8, VP9
    /// or AV1 (ffmpeg -i in.mp4 -c:v libvpx -g 30 video.ivf), or H.264
    /// Annex B (ffmpeg -i in.mp4 -c:v libx264 -profile:v baseline
    /// video.h264). Mesh rooms only for VP9, AV1 and H.264: the SFU
    /// forwards VP8.
    #[arg(long, value_name = "FILE")]
    video: Option<PathBuf>,
    /// The frame rate of an H.264 Annex B --video, which holds no times
    /// (IVF files carry their own).
    #[arg(long, default_value_t = 30, value_name = "N")]
    fps: u32,
    /// Publish this Ogg Opus file as our microphone, looped
    /// (ffmpeg -i in.wav -c:a libopus audio.ogg).
    #[arg(long, value_name = "FILE")]
    audio: Option<PathBuf>,
    /// Play --video and --audio once to each participant (from when we
    /// connect to it), then send nothing and stay in the room;
    /// `media-ended` events say when.
    #[arg(long)]
    once: bool,
    /// Record each other participant's video (VP8, VP9) and audio (Opus)
    /// to DIR/NAME.webm, with DIR/manifest.json; files are finished when
    /// they leave and when we do.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Save received files in this directory (else they are only reported).
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,
    /// Local addresses for the peer connections' sockets (default: every
    /// interface address, loopback included).
    #[arg(long = "address", value_name = "IP")]
    addresses: Vec<IpAddr>,
    /// Give up after the server has been unreachable this many seconds.
    #[arg(long, default_value_t = 30)]
    reconnect_timeout: u64,
}

struct File {
    name: String,
    data: Vec<u8>,
}

pub fn run(options: JoinOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(join(options))
}

async fn join(options: JoinOptions) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for path in &options.send_files {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map_or("file".into(), |n| n.to_string_lossy().into_owned());
        files.push(File { name, data });
    }
    if let Some(dir) = &options.save_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut config = ClientConfig::new(options.url.clone(), options.name.clone());
    if let Some(path) = &options.video {
        let media = media_file::read_video(path, options.fps)?;
        config.video = Some(std::sync::Arc::new(Video {
            format: media.format,
            length: media.length,
            frames: media.frames,
        }));
    }
    if let Some(path) = &options.audio {
        config.audio = Some(std::sync::Arc::new(read_ogg(path)?));
    }
    config.play_once = options.once;
    let mut recorder = match &options.record {
        Some(dir) => Some(record::Recorder::new(dir)?),
        None => None,
    };
    config.receive_media = recorder.is_some();
    config.through_sfu = true;
    config.room = options.room.clone();
    config.token = options.token.clone();
    config.reconnect_timeout = Duration::from_secs(options.reconnect_timeout);
    if !options.addresses.is_empty() {
        config.local_addresses =
            LocalAddresses::Addresses(options.addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
    }
    let video_format = config.video.as_ref().map(|v| v.format);
    let (client, mut events) = Client::join(config).await?;
    if let Some(format) = video_format.filter(|f| client.is_sfu() && *f != Format::Vp8) {
        client.leave().await;
        anyhow::bail!(
            "{}: this room goes through the server's SFU, which forwards VP8 only, not {format:?}; \
             publish a VP8 IVF here, or this file in a mesh room",
            options.video.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    let out = Printer { json: options.json };
    let result = run_room(&options, &client, &mut events, &out, &files, &mut recorder).await;
    if let Some(recorder) = recorder {
        for note in recorder.finish() {
            out.recorded(&note);
        }
    }
    result
}

async fn run_room(
    options: &JoinOptions,
    client: &Client,
    events: &mut mpsc::UnboundedReceiver<Event>,
    out: &Printer,
    files: &[File],
    recorder: &mut Option<record::Recorder>,
) -> anyhow::Result<()> {
    let mut lines = stdin_lines();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sent_to = std::collections::HashSet::new();
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return Ok(()) };
                if let Event::Media { from, name, received, frame } = &event {
                    if let Some(recorder) = recorder.as_mut() {
                        let frame = record::Frame {
                            format: frame.format,
                            timestamp: frame.timestamp,
                            keyframe: frame.keyframe,
                            size: frame.size,
                            restart: false,
                            data: &frame.data,
                        };
                        for note in recorder.frame(from, name, *received, &frame) {
                            out.recorded(&note);
                        }
                    }
                    continue;
                }
                // Files go to each participant once connected to it; in
                // an SFU room, to everyone once connected to the SFU and
                // to each who joins later.
                let connected = match &event {
                    Event::Connection { id, state, .. } if state == "connected" => Some(id.as_str()),
                    Event::PeerJoined { id, .. } if client.is_sfu() && sent_to.contains(SFU_PEER) => Some(id.as_str()),
                    _ => None,
                };
                if let Some(id) = connected.filter(|id| sent_to.insert((*id).to_owned())) {
                    for file in files {
                        let (name, data) = (&file.name, file.data.clone());
                        if id == SFU_PEER {
                            client.send_file(name, mime(name), data).await?;
                        } else {
                            client.send_file_to(id, name, mime(name), data).await?;
                        }
                    }
                }
                if let Event::PeerLeft { id, .. } = &event {
                    sent_to.remove(id);
                    if let Some(note) = recorder.as_mut().and_then(|r| r.left(id)) {
                        out.recorded(&note);
                    }
                }
                if let Event::Closed { error } = &event {
                    return match error {
                        Some(e) => Err(anyhow::anyhow!("{e}")),
                        None => Ok(()),
                    };
                }
                out.event(&event, options.save_dir.as_deref());
            }
            line = lines.recv() => match line {
                Some(line) => {
                    if line.trim() == "/quit" {
                        break;
                    } else if let Some(path) = line.strip_prefix("/send ") {
                        let path = Path::new(path.trim());
                        match std::fs::read(path) {
                            Ok(data) => {
                                let name = path.file_name().map_or("file".into(), |n| n.to_string_lossy().into_owned());
                                let n = client.send_file(&name, mime(&name), data).await?;
                                out.note("sending", json!({"file": name, "recipients": n}), &format!("sending {name} to {n} participant(s)"));
                            }
                            Err(e) => out.note("error", json!({"message": format!("{}: {e}", path.display())}), &format!("cannot read {}: {e}", path.display())),
                        }
                    } else if !line.trim().is_empty() {
                        client.chat(line.trim())?;
                    }
                }
                // stdin closed: a bot run with </dev/null stays in the room.
                None => lines = never_lines(),
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    client.leave().await;
    out.note("left", json!({}), "left the room");
    Ok(())
}

/// An Ogg Opus file's packets at the times their first samples play
/// (RFC 6716 §3.1), so the loop is paced by the packets' own durations.
fn read_ogg(path: &Path) -> anyhow::Result<Audio> {
    let Media { frames, length, .. } = media_file::read_ogg_opus(path)?;
    Ok(Audio {
        packets: frames,
        length,
    })
}

/// Lines of stdin, read on a thread of their own (tokio's stdin is one too).
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn never_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::mem::forget(tx);
    rx
}

fn mime(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

struct Printer {
    json: bool,
}

impl Printer {
    fn note(&self, kind: &str, mut fields: Value, text: &str) {
        if self.json {
            fields["event"] = json!(kind);
            self.line(&fields.to_string());
        } else {
            self.line(text);
        }
    }

    fn line(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{text}");
        let _ = stdout.flush();
    }

    fn recorded(&self, note: &record::Note) {
        self.note(note.kind, note.fields.clone(), &note.text);
    }

    fn event(&self, event: &Event, save_dir: Option<&Path>) {
        match event {
            Event::Joined {
                id,
                name,
                room,
                resumed,
            } => self.note(
                "joined",
                json!({"id": id, "name": name, "room": room, "resumed": resumed}),
                &format!(
                    "{} room {room} as {name} ({id})",
                    if *resumed { "resumed" } else { "joined" }
                ),
            ),
            Event::PeerJoined { id, name } => self.note(
                "peer-joined",
                json!({"id": id, "name": name}),
                &format!("{name} ({id}) joined"),
            ),
            Event::PeerLeft { id, name, reason } => self.note(
                "peer-left",
                json!({"id": id, "name": name, "reason": reason}),
                &format!("{name} ({id}) left ({reason})"),
            ),
            Event::Connection { id, name, state } => self.note(
                "connection",
                json!({"id": id, "name": name, "state": state}),
                &format!("connection to {name}: {state}"),
            ),
            Event::Chat { from, name, text } => self.note(
                "chat",
                json!({"from": from, "name": name, "text": text}),
                &format!("<{name}> {text}"),
            ),
            Event::FileReceived { from, name, file } => self.received(from, name, file, save_dir),
            Event::FileSent {
                peer,
                name,
                file_name,
                verified,
                sha256,
            } => self.note(
                "file-sent",
                json!({"to": peer, "name": name, "file": file_name, "verified": verified, "sha256": sha256}),
                &format!(
                    "{file_name} sent to {name}: {}",
                    if *verified { "verified" } else { "checksum mismatch" }
                ),
            ),
            Event::FileFailed {
                peer,
                name,
                file_name,
                reason,
            } => self.note(
                "file-failed",
                json!({"peer": peer, "name": name, "file": file_name, "reason": reason}),
                &format!("{file_name} with {name} failed: {reason}"),
            ),
            Event::Speaker { id, name } => self.note(
                "speaker",
                json!({"id": id, "name": name}),
                &match name {
                    Some(name) => format!("{name} speaks"),
                    None => "nobody speaks".to_owned(),
                },
            ),
            Event::Reconnecting { reason } => self.note(
                "reconnecting",
                json!({"reason": reason}),
                &format!("signaling lost ({reason}), reconnecting"),
            ),
            Event::Refused {
                code,
                message,
                reference,
            } => self.note(
                "refused",
                json!({"code": code, "message": message, "ref": reference}),
                &format!("the server refused a message: {message} ({code})"),
            ),
            Event::MediaEnded { peer, name, kind } => self.note(
                "media-ended",
                json!({"peer": peer, "name": name, "kind": kind}),
                &format!("our {kind} file ended for {name}"),
            ),
            Event::MediaFailed {
                peer,
                name,
                kind,
                reason,
            } => self.note(
                "media-failed",
                json!({"peer": peer, "name": name, "kind": kind, "reason": reason}),
                &format!("our {kind} is not sent to {name}: {reason}"),
            ),
            // Progress of sends, and bytes of expected files (none here).
            // Frames go to the recorder.
            Event::FileProgress { .. } | Event::FileData { .. } | Event::Media { .. } | Event::Closed { .. } => {}
        }
    }

    fn received(&self, from: &str, name: &str, file: &ReceivedFile, save_dir: Option<&Path>) {
        let saved = match save_dir.filter(|_| file.verified) {
            Some(dir) => match save(dir, &file.file_name, &file.data) {
                Ok(path) => Some(path),
                Err(e) => {
                    self.note(
                        "error",
                        json!({"message": format!("saving {}: {e}", file.file_name)}),
                        &format!("cannot save {}: {e}", file.file_name),
                    );
                    None
                }
            },
            None => None,
        };
        let path = saved.as_ref().map(|p| p.display().to_string());
        self.note(
            "file-received",
            json!({
                "from": from, "name": name, "file": file.file_name, "size": file.data.len(), "mime": file.mime,
                "sha256": file.sha256, "verified": file.verified, "path": path,
            }),
            &format!(
                "{} ({} bytes) from {name}: {}{}",
                file.file_name,
                file.data.len(),
                if file.verified {
                    "verified"
                } else {
                    "CHECKSUM MISMATCH, not saved"
                },
                path.as_deref().map(|p| format!(", saved to {p}")).unwrap_or_default()
            ),
        );
    }
}

/// Writes `data` as `name` in `dir`, never over an existing file.
fn save(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<PathBuf> {
    crate::send::new_file(dir, name, |candidate| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(candidate)?;
        file.write_all(data)
    })
}
