//! Records what a browser sends. The browser POSTs its offer to `/offer`
//! (the webrtc-echoes convention, see `common/answer.rs`); natter
//! answers receive-only and writes, in `--out`:
//!
//! - `video.ivf`: VP8 (RFC 7741), VP9 (RFC 9628) or AV1 (AV1 RTP
//!   Specification; temporal units as IVF holds them), with the
//!   codec's fourcc, from the first keyframe on;
//! - `video.h264`: H.264 (RFC 6184) as an Annex B byte stream, from the
//!   first IDR picture on;
//! - with simulcast (RFC 8853), one video file per layer, named by its
//!   RID: `video-q.ivf`, `video-h.ivf`, `video-f.ivf`;
//! - `audio.ogg`: Opus (RFC 7587) in Ogg (RFC 7845).
//!
//! Once `--frames` video frames (of all layers) are written, and with
//! `--layer-frames N` at least N of each layer the offer names (`a=rid:… send`,
//! RFC 8851), it closes the files, prints a JSON summary line on stdout and
//! exits.
//!
//! ```text
//! cargo run --release -p natter-io --example record -- --listen 127.0.0.1:8091 --out /tmp/rec --frames 150
//! ```
//!
//! `GET /status` shows what was recorded so far and natter's media
//! statistics (NACKs, retransmissions, loss); `GET /healthz`.

#[path = "common/answer.rs"]
mod answer;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
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
use natter_container::ivf::{IvfHeader, IvfWriter, FOURCC_AV1, FOURCC_VP8, FOURCC_VP9};
use natter_container::opus::{packet_samples, OggOpusWriter};
use natter_io::{Config, Format, MediaFrame, PeerConnection, PeerConnectionState, PeerEvent};
use serde::Serialize;
use tokio::sync::Notify;

#[derive(Parser, Debug)]
#[command(
    about = "Records the VP8, VP9, H.264 or AV1 video and Opus audio a WebRTC peer sends (webrtc-echoes signaling)"
)]
struct Args {
    /// Where the HTTP server listens.
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: SocketAddr,
    /// An ICE host address (repeatable); without one, every address of
    /// the host's interfaces, loopback included.
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// The directory the files go to.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Video frames to record before finishing.
    #[arg(long, default_value_t = 150)]
    frames: u64,
    /// With simulcast, also wait for this many frames of each layer: a
    /// browser may start its top layer late, once its bandwidth estimate
    /// allows it.
    #[arg(long, default_value_t = 0)]
    layer_frames: u64,
    /// Resolve the browser's `.local` candidates with mDNS.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    mdns: bool,
    /// How long to wait for our ICE gathering before answering.
    #[arg(long, default_value_t = 5000)]
    gather_timeout_ms: u64,
}

/// What `/status` and the summary line show.
#[derive(Clone, Default, Serialize)]
struct Progress {
    connection: String,
    video_format: Option<String>,
    video_frames: u64,
    /// Frames written per simulcast layer, by RID.
    layer_frames: BTreeMap<String, u64>,
    keyframes: u64,
    /// Frames before the first keyframe, which no decoder can use.
    skipped_frames: u64,
    width: Option<u32>,
    height: Option<u32>,
    audio_packets: u64,
    files: Vec<String>,
    errors: Vec<String>,
    media: serde_json::Value,
    done: bool,
}

#[derive(Clone)]
struct App {
    args: Arc<Args>,
    progress: Arc<Mutex<Progress>>,
    busy: Arc<Mutex<bool>>,
    finished: Arc<Notify>,
}

impl App {
    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve::init_logs();
    let args = Args::parse();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let app = App {
        args: Arc::new(args),
        progress: Arc::default(),
        busy: Arc::default(),
        finished: Arc::new(Notify::new()),
    };
    let router = Router::new()
        // A secure context on http://127.0.0.1 for a page that POSTs its offer.
        .route(
            "/",
            get(|| async { Html("<!doctype html><title>natter record</title>") }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/offer", post(offer))
        .route("/status", get(status))
        .with_state(app.clone());
    tracing::info!(out = %app.args.out.display(), "recording to");
    let finished = app.finished.clone();
    serve::serve(app.args.listen, router, "recorder", async move {
        tokio::select! {
            () = finished.notified() => {}
            () = serve::interrupted() => {}
        }
    })
    .await?;
    let progress = app.progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("{}", serde_json::to_string(&progress)?);
    Ok(())
}

async fn status(State(app): State<App>) -> Json<Progress> {
    Json(app.progress.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

async fn offer(State(app): State<App>, Json(offer): Json<answer::SessionDescription>) -> Response {
    {
        let mut busy = app.busy.lock().unwrap_or_else(|e| e.into_inner());
        if *busy {
            return (StatusCode::CONFLICT, "already recording one connection").into_response();
        }
        *busy = true;
    }
    let config = Config {
        local_addresses: answer::local_addresses(&app.args.addresses),
        mdns: app.args.mdns,
        ..Config::default()
    };
    let gather_timeout = Duration::from_millis(app.args.gather_timeout_ms);
    let rids: Vec<String> = (offer.sdp.lines())
        .filter_map(|line| line.strip_prefix("a=rid:")?.split_once(' '))
        .filter(|(_, rest)| rest.starts_with("send"))
        .map(|(rid, _)| rid.to_owned())
        .collect();
    // Receive-only: the browser's sections are answered without tracks.
    match answer::answer(PeerConnection::spawn(config), offer, gather_timeout, |_| async {
        Ok(())
    })
    .await
    {
        Ok(answered) => {
            tracing::info!("answer:\n{}", answered.answer.sdp);
            app.update(|p| p.layer_frames = rids.into_iter().map(|rid| (rid, 0)).collect());
            tokio::spawn(record(app, answered.pc, answered.events));
            Json(answered.answer).into_response()
        }
        Err(error) => {
            *app.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
            tracing::warn!("{error}");
            (StatusCode::BAD_REQUEST, error).into_response()
        }
    }
}

/// The IVF fourcc of a video format IVF holds; `None` for H.264, which
/// goes to an Annex B file.
fn ivf_fourcc(format: Format) -> Option<[u8; 4]> {
    match format {
        Format::Vp8 => Some(FOURCC_VP8),
        Format::Vp9 => Some(FOURCC_VP9),
        Format::Av1 => Some(FOURCC_AV1),
        Format::H264 | Format::Opus => None,
    }
}

/// The files being written.
#[derive(Default)]
struct Files {
    /// One video file per simulcast layer's RID (`None` without).
    video: BTreeMap<Option<String>, VideoFile>,
    ogg: Option<OggOpusWriter<BufWriter<File>>>,
}

/// A video stream's file, opened at its first keyframe.
enum VideoFile {
    Ivf {
        writer: IvfWriter<BufWriter<File>>,
        /// The RTP timestamp of the first frame written.
        first_timestamp: u32,
    },
    H264(BufWriter<File>),
}

fn create(app: &App, name: &str) -> std::io::Result<BufWriter<File>> {
    let path = app.args.out.join(name);
    app.update(|p| p.files.push(path.display().to_string()));
    Ok(BufWriter::new(File::create(path)?))
}

impl Files {
    /// Writes a frame; returns whether it was a video frame written.
    fn write(&mut self, app: &App, frame: &MediaFrame) -> anyhow::Result<bool> {
        match frame.format {
            Format::Opus => {
                if self.ogg.is_none() {
                    self.ogg = Some(OggOpusWriter::new(create(app, "audio.ogg")?, 2, 48_000)?);
                }
                let samples = packet_samples(&frame.data).unwrap_or(960);
                if let Some(ogg) = self.ogg.as_mut() {
                    ogg.write_packet(&frame.data, samples)?;
                }
                app.update(|p| p.audio_packets += 1);
                Ok(false)
            }
            Format::Vp8 | Format::Vp9 | Format::H264 | Format::Av1 => {
                let started = self.video.contains_key(&frame.rid);
                if !started && !frame.keyframe {
                    app.update(|p| p.skipped_frames += 1);
                    return Ok(false);
                }
                if !started {
                    let (width, height) = frame.size.unwrap_or((0, 0));
                    if self.video.is_empty() {
                        app.update(|p| {
                            p.video_format = Some(format!("{:?}", frame.format));
                            p.width = frame.size.map(|s| s.0);
                            p.height = frame.size.map(|s| s.1);
                        });
                    }
                    let stem = match &frame.rid {
                        Some(rid) => format!("video-{rid}"),
                        None => "video".to_owned(),
                    };
                    let file = if let Some(fourcc) = ivf_fourcc(frame.format) {
                        let header = IvfHeader {
                            fourcc,
                            width: width as u16,
                            height: height as u16,
                            timebase_denominator: 90_000,
                            timebase_numerator: 1,
                            frame_count: 0,
                        };
                        VideoFile::Ivf {
                            writer: IvfWriter::new(create(app, &format!("{stem}.ivf"))?, &header)?,
                            first_timestamp: frame.timestamp,
                        }
                    } else {
                        VideoFile::H264(create(app, &format!("{stem}.h264"))?)
                    };
                    self.video.insert(frame.rid.clone(), file);
                }
                match self.video.get_mut(&frame.rid) {
                    Some(VideoFile::Ivf {
                        writer,
                        first_timestamp,
                    }) => {
                        let pts = u64::from(frame.timestamp.wrapping_sub(*first_timestamp));
                        writer.write_frame(pts, &frame.data)?;
                    }
                    Some(VideoFile::H264(h264)) => std::io::Write::write_all(h264, &frame.data)?,
                    None => {}
                }
                app.update(|p| {
                    p.video_frames += 1;
                    p.keyframes += u64::from(frame.keyframe);
                    if let Some(count) = frame.rid.as_ref().and_then(|rid| p.layer_frames.get_mut(rid)) {
                        *count += 1;
                    }
                });
                Ok(true)
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        for file in self.video.into_values() {
            match file {
                VideoFile::Ivf { writer, .. } => {
                    writer.finish_with_frame_count()?;
                }
                VideoFile::H264(mut h264) => std::io::Write::flush(&mut h264)?,
            }
        }
        if let Some(ogg) = self.ogg {
            ogg.finish()?;
        }
        Ok(())
    }
}

/// Writes frames until `--frames` video frames (and `--layer-frames` of
/// each layer) are in, or the connection ends; then closes the files and
/// ends the server.
async fn record(app: App, pc: PeerConnection, mut events: answer::Events) {
    let mut files = Files::default();
    let mut video_frames = 0;
    while let Some(event) = events.next_or_stats(|media| app.update(|p| p.media = media)).await {
        match event {
            PeerEvent::ConnectionStateChange(state) => {
                app.update(|p| p.connection = format!("{state:?}"));
                if matches!(state, PeerConnectionState::Failed | PeerConnectionState::Closed) {
                    break;
                }
            }
            PeerEvent::Track { transceiver, kind, .. } => tracing::info!(%transceiver, ?kind, "track"),
            PeerEvent::MediaFrame(frame) => match files.write(&app, &frame) {
                Ok(true) => {
                    video_frames += 1;
                    let layers_done = || {
                        let progress = app.progress.lock().unwrap_or_else(|e| e.into_inner());
                        progress.layer_frames.values().all(|&n| n >= app.args.layer_frames)
                    };
                    if video_frames >= app.args.frames && layers_done() {
                        break;
                    }
                }
                Ok(false) => {}
                Err(error) => app.update(|p| p.errors.push(error.to_string())),
            },
            _ => {}
        }
    }
    if let Ok(stats) = pc.stats().await {
        app.update(|p| p.media = answer::media_stats(&stats));
    }
    if let Err(error) = files.finish() {
        app.update(|p| p.errors.push(format!("closing the files: {error}")));
    }
    pc.close().await;
    app.update(|p| p.done = true);
    tracing::info!(video_frames, "recording finished");
    app.finished.notify_one();
}
