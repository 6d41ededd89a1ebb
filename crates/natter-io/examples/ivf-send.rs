//! Sends VP8, VP9 or AV1 from an IVF file (its fourcc names the codec),
//! and Opus from an Ogg file, to a browser. The browser POSTs its offer
//! to `/offer` (the webrtc-echoes convention, see `common/answer.rs`),
//! with a video section it receives (and an audio one for `--audio`);
//! natter answers with its tracks and, once connected, sends the frames
//! at the pace of their timestamps, from the start again when a file
//! ends.
//!
//! natter sends a track with the first codec of the offer it can send,
//! so the offer must put the file's codec first (a browser:
//! `setCodecPreferences` on its receiving transceiver); an offer that
//! prefers another is refused (HTTP 409) rather than sent the wrong
//! bitstream.
//!
//! ```text
//! ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 5 -c:v libvpx -g 30 video.ivf
//! ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 5 -c:v libvpx-vp9 -g 30 vp9.ivf
//! ffmpeg -f lavfi -i testsrc=size=320x240:rate=30 -t 5 -c:v libaom-av1 -cpu-used 8 -g 30 av1.ivf
//! ffmpeg -f lavfi -i sine=frequency=440 -t 5 -c:a libopus audio.ogg
//! cargo run --release -p natter-io --example ivf-send -- --video video.ivf --audio audio.ogg
//! ```
//!
//! A file cannot make a keyframe when the browser asks for one (PLI or
//! FIR); the requests are counted in `GET /status`, and the encoder's
//! keyframe interval (`-g`) bounds how long a decoder waits.

#[path = "common/answer.rs"]
mod answer;
#[path = "common/files.rs"]
mod files;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use natter_io::{Config, MediaKind, PeerConnection, PeerConnectionState, PeerEvent, Track};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(
    about = "Sends VP8, VP9 or AV1 from an IVF file and Opus from an Ogg file to a WebRTC peer (webrtc-echoes signaling)"
)]
struct Args {
    /// Where the HTTP server listens.
    #[arg(long, default_value = "127.0.0.1:8092")]
    listen: SocketAddr,
    /// An ICE host address (repeatable); without one, every address of
    /// the host's interfaces, loopback included.
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// The VP8, VP9 or AV1 video, in IVF.
    #[arg(long)]
    video: PathBuf,
    /// The Opus audio, in Ogg.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Resolve the browser's `.local` candidates with mDNS.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mdns: bool,
    /// How long to wait for our ICE gathering before answering.
    #[arg(long, default_value_t = 5000)]
    gather_timeout_ms: u64,
}

#[derive(Clone, Default, Serialize)]
struct Status {
    connection: String,
    video_frames_sent: u64,
    audio_packets_sent: u64,
    keyframe_requests: u64,
    errors: Vec<String>,
    media: serde_json::Value,
}

#[derive(Clone)]
struct App {
    args: Arc<Args>,
    video: Arc<files::Media>,
    audio: Option<Arc<files::Media>>,
    status: Arc<Mutex<Status>>,
}

impl App {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let video = Arc::new(files::read_ivf(&args.video)?);
    let audio = match &args.audio {
        Some(path) => Some(Arc::new(files::read_ogg_opus(path)?)),
        None => None,
    };
    tracing::info!(
        video_format = ?video.format,
        video_frames = video.frames.len(),
        size = ?video.size,
        audio_packets = audio.as_ref().map(|a| a.frames.len()),
        "files read"
    );
    let app = App {
        args: Arc::new(args),
        video,
        audio,
        status: Arc::default(),
    };
    let router = Router::new()
        // A secure context on http://127.0.0.1 for a page that POSTs its offer.
        .route(
            "/",
            get(|| async { Html("<!doctype html><title>natter ivf-send</title>") }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/offer", post(offer))
        .route("/status", get(status))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(app.args.listen)
        .await
        .with_context(|| format!("listening on {}", app.args.listen))?;
    tracing::info!(listen = %app.args.listen, "sender ready");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn status(State(app): State<App>) -> Json<Status> {
    Json(app.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

async fn offer(State(app): State<App>, Json(offer): Json<answer::SessionDescription>) -> Response {
    let config = Config {
        local_addresses: answer::local_addresses(&app.args.addresses),
        mdns: app.args.mdns,
        ..Config::default()
    };
    let gather_timeout = Duration::from_millis(app.args.gather_timeout_ms);
    let tracks: Arc<Mutex<Vec<Track>>> = Arc::default();
    let with_audio = app.audio.is_some();
    let made = tracks.clone();
    let prepare = |pc: PeerConnection| async move {
        let video = pc.add_track(MediaKind::Video).await?;
        let audio = if with_audio {
            Some(pc.add_track(MediaKind::Audio).await?)
        } else {
            None
        };
        made.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([Some(video), audio].into_iter().flatten());
        Ok(())
    };
    match answer::answer(PeerConnection::spawn(config), offer, gather_timeout, prepare).await {
        Ok(answered) => {
            tracing::info!("answer:\n{}", answered.answer.sdp);
            let tracks = std::mem::take(&mut *tracks.lock().unwrap_or_else(|e| e.into_inner()));
            if let Err(error) = check_formats(&app, &answered.pc, &tracks).await {
                tracing::warn!("{error}");
                answered.pc.close().await;
                return (StatusCode::CONFLICT, error).into_response();
            }
            let (connected_tx, connected_rx) = watch::channel(None);
            tokio::spawn(watch_events(answered.pc, answered.events, app.clone(), connected_tx));
            tokio::spawn(send(app, tracks, connected_rx));
            Json(answered.answer).into_response()
        }
        Err(error) => {
            tracing::warn!("{error}");
            (StatusCode::BAD_REQUEST, error).into_response()
        }
    }
}

/// Whether each track will be sent in its file's format: natter sends
/// with the first codec of the offer it can send.
async fn check_formats(app: &App, pc: &PeerConnection, tracks: &[Track]) -> Result<(), String> {
    let stats = pc.stats().await.map_err(|e| e.to_string())?;
    let files = [Some(&*app.video), app.audio.as_deref()].into_iter().flatten();
    for (track, file) in tracks.iter().zip(files) {
        let negotiated = stats
            .senders
            .iter()
            .find(|(id, _)| *id == track.id())
            .map(|(_, s)| s.format);
        if negotiated != Some(file.format) {
            return Err(format!(
                "the file is {:?} but the offer prefers {negotiated:?}: put {:?} first (setCodecPreferences)",
                file.format, file.format
            ));
        }
    }
    Ok(())
}

/// Reads the connection's events: its state for the sender, keyframe
/// requests and statistics for `/status`; closes the connection at the end.
async fn watch_events(
    pc: PeerConnection,
    mut events: answer::Events,
    app: App,
    connected: watch::Sender<Option<bool>>,
) {
    while let Some(event) = events.next_or_stats(|media| app.update(|s| s.media = media)).await {
        match event {
            PeerEvent::ConnectionStateChange(state) => {
                app.update(|s| s.connection = format!("{state:?}"));
                match state {
                    PeerConnectionState::Connected => {
                        let _ = connected.send(Some(true));
                    }
                    PeerConnectionState::Failed | PeerConnectionState::Closed => break,
                    _ => {}
                }
            }
            PeerEvent::KeyframeRequest(_) => app.update(|s| s.keyframe_requests += 1),
            _ => {}
        }
    }
    pc.close().await;
    let _ = connected.send(Some(false));
}

/// Sends the files' frames at the pace of their timestamps, looping,
/// from the moment the connection is up until it ends.
async fn send(app: App, tracks: Vec<Track>, mut connected: watch::Receiver<Option<bool>>) {
    if !connected
        .wait_for(Option::is_some)
        .await
        .is_ok_and(|c| *c == Some(true))
    {
        return;
    }
    let start = Instant::now();
    let files = [Some(&*app.video), app.audio.as_deref()].into_iter().flatten();
    for (index, time, frame) in files::Schedule::new(files, true) {
        tokio::select! {
            _ = tokio::time::sleep_until(start + time) => {}
            _ = connected.changed() => return,
        }
        let Some(track) = tracks.get(index) else { return };
        match track.send_frame(time, frame.to_vec()).await {
            Ok(()) if index == 0 => app.update(|s| s.video_frames_sent += 1),
            Ok(()) => app.update(|s| s.audio_packets_sent += 1),
            Err(natter_io::Error::Closed) => return,
            Err(error) => app.update(|s| s.errors.push(error.to_string())),
        }
    }
}
