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
//!
//! Simulcast (RFC 8853): `--layer RID=FILE` (repeated, lowest layer
//! first) instead of `--video` sends one video track as a stream per
//! file, each named by its RID. Browsers do not receive simulcast, so
//! this goes to another natter, such as the `record` example, with
//! natter offering: `POST /local-offer` returns our complete offer
//! (`a=simulcast:send`), `POST /answer` takes the peer's answer.
//!
//! ```text
//! cargo run --release -p natter-io --example ivf-send -- --layer q=q.ivf --layer h=h.ivf --layer f=f.ivf
//! curl -X POST localhost:8092/local-offer | curl -d @- localhost:8091/offer | curl -d @- localhost:8092/answer
//! ```
//!
//! Following the congestion controller (`--adapt`, VP8): the `--layer`
//! files are one picture encoded at several bitrates (lowest first,
//! their keyframes at the same frames) and go out as one stream, which
//! a browser receives. natter-sfu's layer selector, as the SFU uses it
//! for a subscriber, picks the file whose rate the target bitrate
//! (`PeerEvent::TargetBitrate`, draft-ietf-rmcat-gcc-02) covers with a
//! 10% margin, going up after 2 s. With `--follow-target` the sender
//! sends what its target allows, as an
//! encoder given the target would: the highest file whose rate its aim
//! covers, with no margin, straight there rather than a step at a time.
//! The aim is the target, lower at once when it falls but higher only
//! once it held for [`UP_HOLD`], plus what makes up the bits the target
//! allowed and were not sent (or less what was sent beyond it) within an
//! encoder-like rate-control buffer ([`BUDGET`]), so that the files'
//! steps of about 15% come closer to the target; never above the target.
//! Either way the selector switches at the next keyframe of the chosen
//! file; the rate of the
//! highest file is its demand (`set_application_demand`), which the
//! controller probes for while the files below hold it back. Every 500 ms a JSON
//! line on stdout gives the time (since sending began, and since the Unix
//! epoch), the target, the aim, the file sent (its index and rate) and
//! what was sent, in bits per second of frames:
//! `{"t_ms":1500,"unix_ms":1765101234567,"target_bps":812000,"aim_bps":790000,"layer":3,"layer_bps":700000,"sent_bps":698000}`.
//!
//! ```text
//! for k in 200 500 900 1400; do ffmpeg -f lavfi -i testsrc2=size=640x360:rate=30 -t 5 -c:v libvpx -g 15 -b:v ${k}k $k.ivf; done
//! cargo run --release -p natter-io --example ivf-send -- --adapt --layer a=200.ivf --layer b=500.ivf --layer c=900.ivf --layer d=1400.ivf
//! ```

#[path = "common/answer.rs"]
mod answer;
#[path = "common/files.rs"]
mod files;
#[path = "common/serve.rs"]
mod serve;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use natter_io::{
    Config, Description, Format, MediaKind, PeerConnection, PeerConnectionState, PeerEvent, SdpType, Track,
};
use natter_rtp::payload::Vp8FrameHeader;
use natter_sfu::layer::{LayerInfo, LayerSelector, PacketAction, SelectorConfig, TileSize};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
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
    #[arg(long, required_unless_present = "layers", conflicts_with = "layers")]
    video: Option<PathBuf>,
    /// A simulcast stream: its RID and its IVF file (repeatable, lowest
    /// layer first, every file in one format).
    #[arg(long = "layer", value_name = "RID=FILE", value_parser = parse_layer)]
    layers: Vec<(String, PathBuf)>,
    /// Send the `--layer` files (VP8) as one stream, switching among
    /// them to fit the congestion controller's target bitrate, and print
    /// a JSON line with the target every 500 ms.
    #[arg(long, requires = "layers")]
    adapt: bool,
    /// With `--adapt`: follow the target as an encoder would (no margin,
    /// up after 500 ms, a rate budget), not the SFU's selector policy
    /// for a subscriber (10% margin, up after 2 s).
    #[arg(long, requires = "adapt")]
    follow_target: bool,
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

/// `--layer RID=FILE`.
fn parse_layer(value: &str) -> Result<(String, PathBuf), String> {
    let (rid, file) = value.split_once('=').ok_or("expected RID=FILE")?;
    Ok((rid.to_owned(), file.into()))
}

#[derive(Clone)]
struct App {
    args: Arc<Args>,
    /// The video streams: one (`None`), or one per simulcast RID.
    video: Arc<Vec<(Option<String>, files::Media)>>,
    audio: Option<Arc<files::Media>>,
    status: Arc<Mutex<Status>>,
    /// Our offer's connection until `POST /answer`.
    offered: Arc<Mutex<Option<Offered>>>,
}

/// A connection that made our offer, and its tracks.
type Offered = (answer::Answered, Vec<Track>);

impl App {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A new connection on our addresses.
    fn spawn(&self) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), natter_io::Error> {
        PeerConnection::spawn(Config {
            local_addresses: answer::local_addresses(&self.args.addresses),
            mdns: self.args.mdns,
            ..Config::default()
        })
    }

    /// How long our ICE gathering may take before we describe ourselves.
    fn gather_timeout(&self) -> Duration {
        Duration::from_millis(self.args.gather_timeout_ms)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve::init_logs();
    let args = Args::parse();
    let streams = args
        .video
        .iter()
        .map(|file| (None, file))
        .chain(args.layers.iter().map(|(rid, file)| (Some(rid.clone()), file)));
    let mut video = Vec::new();
    for (rid, file) in streams {
        let media = files::read_ivf(file)?;
        tracing::info!(?rid, format = ?media.format, frames = media.frames.len(), size = ?media.size, "video read");
        if video
            .first()
            .is_some_and(|(_, first): &(_, files::Media)| first.format != media.format)
        {
            anyhow::bail!("{}: every layer must be in one format", file.display());
        }
        video.push((rid, media));
    }
    if args.adapt {
        anyhow::ensure!(
            video.iter().all(|(_, media)| media.format == Format::Vp8),
            "--adapt sends VP8 files only"
        );
    }
    let audio = match &args.audio {
        Some(path) => Some(Arc::new(files::read_ogg_opus(path)?)),
        None => None,
    };
    tracing::info!(audio_packets = audio.as_ref().map(|a| a.frames.len()), "files read");
    let app = App {
        args: Arc::new(args),
        video: Arc::new(video),
        audio,
        status: Arc::default(),
        offered: Arc::default(),
    };
    let router = Router::new()
        // A secure context on http://127.0.0.1 for a page that POSTs its offer.
        .route(
            "/",
            get(|| async { Html("<!doctype html><title>natter ivf-send</title>") }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/offer", post(offer))
        .route("/local-offer", post(local_offer))
        .route("/answer", post(apply_answer))
        .route("/status", get(status))
        .with_state(app.clone());
    serve::serve(app.args.listen, router, "sender", serve::interrupted()).await
}

async fn status(State(app): State<App>) -> Json<Status> {
    Json(app.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

async fn offer(State(app): State<App>, Json(offer): Json<answer::SessionDescription>) -> Response {
    let tracks: Arc<Mutex<Vec<Track>>> = Arc::default();
    let prepare = add_tracks(&app, tracks.clone());
    match answer::answer(app.spawn(), offer, app.gather_timeout(), prepare).await {
        Ok(answered) => {
            tracing::info!("answer:\n{}", answered.answer.sdp);
            let tracks = std::mem::take(&mut *tracks.lock().unwrap_or_else(|e| e.into_inner()));
            let answer = Json(answered.answer).into_response();
            match start(app, answered.pc, answered.events, tracks).await {
                Ok(()) => answer,
                Err(error) => (StatusCode::CONFLICT, error).into_response(),
            }
        }
        Err(error) => {
            tracing::warn!("{error}");
            (StatusCode::BAD_REQUEST, error).into_response()
        }
    }
}

/// `POST /local-offer`: a new connection with our tracks offers; its
/// complete offer, kept until `POST /answer`.
async fn local_offer(State(app): State<App>) -> Response {
    let (pc, events) = match app.spawn() {
        Ok(spawned) => spawned,
        Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("spawn: {error}")).into_response(),
    };
    let tracks: Arc<Mutex<Vec<Track>>> = Arc::default();
    let made = async {
        add_tracks(&app, tracks.clone())(pc.clone())
            .await
            .map_err(|e| format!("adding tracks: {e}"))?;
        let offer = pc.create_offer().await.map_err(|e| format!("createOffer: {e}"))?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| format!("setLocalDescription(offer): {e}"))?;
        answer::gathered(pc.clone(), events, app.gather_timeout(), "offer").await
    };
    match made.await {
        Ok(offered) => {
            tracing::info!("offer:\n{}", offered.answer.sdp);
            let offer = answer::SessionDescription {
                kind: offered.answer.kind.clone(),
                sdp: offered.answer.sdp.clone(),
            };
            let tracks = std::mem::take(&mut *tracks.lock().unwrap_or_else(|e| e.into_inner()));
            let previous = app
                .offered
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replace((offered, tracks));
            if let Some((previous, _)) = previous {
                previous.pc.close().await;
            }
            Json(offer).into_response()
        }
        Err(error) => {
            tracing::warn!("{error}");
            pc.close().await;
            (StatusCode::INTERNAL_SERVER_ERROR, error).into_response()
        }
    }
}

/// `POST /answer`: the peer's answer to our offer; sending starts once
/// connected.
async fn apply_answer(State(app): State<App>, Json(answer): Json<answer::SessionDescription>) -> Response {
    let Some((offered, tracks)) = app.offered.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return (
            StatusCode::CONFLICT,
            "no offer of ours waits for an answer: POST /local-offer first",
        )
            .into_response();
    };
    if answer.kind != "answer" {
        return (
            StatusCode::BAD_REQUEST,
            format!("expected {{\"type\":\"answer\"}}, got {:?}", answer.kind),
        )
            .into_response();
    }
    tracing::info!("answer:\n{}", answer.sdp);
    let remote = Description {
        kind: SdpType::Answer,
        sdp: answer.sdp,
    };
    if let Err(error) = offered.pc.set_remote_description(remote).await {
        offered.pc.close().await;
        return (
            StatusCode::BAD_REQUEST,
            format!("setRemoteDescription(answer): {error}"),
        )
            .into_response();
    }
    match start(app, offered.pc, offered.events, tracks).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::CONFLICT, error).into_response(),
    }
}

/// What adds our tracks to a connection, into `tracks`: the video (one
/// track, simulcast with `--layer`), then the audio.
fn add_tracks(
    app: &App,
    tracks: Arc<Mutex<Vec<Track>>>,
) -> impl FnOnce(PeerConnection) -> Pin<Box<dyn Future<Output = Result<(), natter_io::Error>> + Send>> {
    // Adapting sends the files as one stream.
    let rids: Vec<String> = app
        .video
        .iter()
        .filter(|_| !app.args.adapt)
        .filter_map(|(rid, _)| rid.clone())
        .collect();
    let with_audio = app.audio.is_some();
    move |pc: PeerConnection| {
        Box::pin(async move {
            let video = if rids.is_empty() {
                pc.add_track(MediaKind::Video).await?
            } else {
                let rids: Vec<&str> = rids.iter().map(String::as_str).collect();
                pc.add_simulcast_track(MediaKind::Video, &rids).await?
            };
            let audio = if with_audio {
                Some(pc.add_track(MediaKind::Audio).await?)
            } else {
                None
            };
            tracks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend([Some(video), audio].into_iter().flatten());
            Ok(())
        })
    }
}

/// A negotiated connection: checks the formats, then reads its events
/// and sends the files once it connects; closed on a format it would
/// not send in.
async fn start(app: App, pc: PeerConnection, events: answer::Events, tracks: Vec<Track>) -> Result<(), String> {
    if let Err(error) = check_formats(&app, &pc, &tracks).await {
        tracing::warn!("{error}");
        pc.close().await;
        return Err(error);
    }
    let (connected_tx, connected_rx) = watch::channel(None);
    let (target_tx, target_rx) = watch::channel(0);
    tokio::spawn(watch_events(pc.clone(), events, app.clone(), connected_tx, target_tx));
    tokio::spawn(send(app, pc, tracks, connected_rx, target_rx));
    Ok(())
}

/// Whether each track will be sent in its file's format: natter sends
/// with the first codec of the offer it can send.
async fn check_formats(app: &App, pc: &PeerConnection, tracks: &[Track]) -> Result<(), String> {
    let stats = pc.stats().await.map_err(|e| e.to_string())?;
    let video = app.video.first().map(|(_, media)| media);
    let files = [video, app.audio.as_deref()].into_iter().flatten();
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

/// Reads the connection's events: its state and target bitrate for the
/// sender, keyframe requests and statistics for `/status`; closes the
/// connection at the end.
async fn watch_events(
    pc: PeerConnection,
    mut events: answer::Events,
    app: App,
    connected: watch::Sender<Option<bool>>,
    target: watch::Sender<u64>,
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
            PeerEvent::KeyframeRequest { .. } => app.update(|s| s.keyframe_requests += 1),
            PeerEvent::TargetBitrate(bps) => {
                let _ = target.send(bps);
            }
            _ => {}
        }
    }
    pc.close().await;
    let _ = connected.send(Some(false));
}

/// Sends the files' frames at the pace of their timestamps, looping,
/// from the moment the connection is up until it ends; with `--adapt`,
/// each video frame only of the file the target chooses.
async fn send(
    app: App,
    pc: PeerConnection,
    tracks: Vec<Track>,
    mut connected: watch::Receiver<Option<bool>>,
    target: watch::Receiver<u64>,
) {
    if !connected
        .wait_for(Option::is_some)
        .await
        .is_ok_and(|c| *c == Some(true))
    {
        return;
    }
    let start = Instant::now();
    let mut adapter = app
        .args
        .adapt
        .then(|| Adapter::new(&app.video, start, app.args.follow_target));
    // The video streams, then the audio; each on its track and RID
    // (adapting: one stream).
    let video = app.video.iter().map(|(rid, media)| {
        let rid = rid.as_deref().filter(|_| adapter.is_none());
        (media, &tracks[0], rid)
    });
    let audio = app
        .audio
        .as_deref()
        .zip(tracks.get(1))
        .map(|(media, track)| (media, track, None));
    let streams: Vec<_> = video.chain(audio).collect();
    for (index, time, frame) in files::Schedule::new(streams.iter().map(|(media, ..)| *media), true) {
        tokio::select! {
            _ = tokio::time::sleep_until(start + time) => {}
            _ = connected.changed() => return,
        }
        let Some(&(media, track, rid)) = streams.get(index) else {
            return;
        };
        if let Some(adapter) = adapter.as_mut().filter(|_| media.format.is_video()) {
            let forward = adapter.forward(Instant::now(), index, frame, *target.borrow());
            if let Some(demand) = adapter.new_demand() {
                if let Err(error) = pc.set_application_demand(Some(demand)).await {
                    app.update(|s| s.errors.push(error.to_string()));
                }
            }
            if !forward {
                continue;
            }
        }
        let sent = match rid {
            Some(rid) => track.send_frame_rid(rid, time, frame.to_vec()).await,
            None => track.send_frame(time, frame.to_vec()).await,
        };
        match sent {
            Ok(()) if media.format.is_video() => app.update(|s| s.video_frames_sent += 1),
            Ok(()) => app.update(|s| s.audio_packets_sent += 1),
            Err(natter_io::Error::Closed) => return,
            Err(error) => app.update(|s| s.errors.push(error.to_string())),
        }
    }
}

/// `--adapt`: which file's frames the one video stream carries: the one
/// natter-sfu's [`LayerSelector`] chooses for the target, or with
/// `--follow-target` the highest its aim ([`HeldTarget`] and
/// [`RateBudget`]) covers (the selector with no margin and no hold of its
/// own), switched to at its keyframe; and the JSON line that reports it.
struct Adapter {
    selector: LayerSelector,
    follow_target: bool,
    held: HeldTarget,
    budget: RateBudget,
    aim_bps: u64,
    /// Each file's rate over its length and its picture size.
    layers: Vec<LayerInfo>,
    /// Larger than any file: none is too large to be worth sending.
    tile: TileSize,
    start: Instant,
    /// The report's period: its start, and the bytes sent since.
    period: (Instant, u64),
    target_bps: u64,
    /// The demand last told to the controller.
    demand_bps: u64,
}

/// How often `--adapt` prints its JSON line.
const REPORT_INTERVAL: Duration = Duration::from_millis(500);

/// How long the target must stay at or above a higher rate before
/// `--adapt` goes up to it: a few of the controller's updates, well under
/// the files' keyframe interval, which delays every switch anyway.
const UP_HOLD: Duration = Duration::from_millis(500);

/// The target `--adapt` follows: the controller's target, lower at once
/// when it falls, raised only to the lowest target of a run above the
/// held one that lasted [`UP_HOLD`] (downward-fast, upward-after-stable).
#[derive(Debug, Default)]
struct HeldTarget {
    held_bps: u64,
    /// The current run of targets above `held_bps`: since when, and the
    /// lowest of them.
    above: Option<(Instant, u64)>,
}

impl HeldTarget {
    /// The target to follow at `now`, given the controller's `target_bps`.
    fn update(&mut self, now: Instant, target_bps: u64) -> u64 {
        if target_bps <= self.held_bps || self.held_bps == 0 {
            // The first target, or a fall: followed at once.
            self.held_bps = target_bps;
            self.above = None;
            return self.held_bps;
        }
        let (since, lowest) = self.above.get_or_insert((now, target_bps));
        *lowest = (*lowest).min(target_bps);
        if now.duration_since(*since) >= UP_HOLD {
            self.held_bps = *lowest;
            self.above = None;
        }
        self.held_bps
    }
}

/// How far what `--adapt` sends may fall behind or run ahead of its
/// target, in time at the target: the rate-control buffer an encoder
/// keeps (libvpx's realtime buffer is about half a second), small so
/// that catching up adds at most a quarter to the target.
const BUDGET: Duration = Duration::from_millis(250);

/// Over how long `--adapt` plans to make up its budget: the ladder's
/// keyframe interval, the time a chosen file is sent at least.
const CATCH_UP: Duration = Duration::from_secs(1);

/// The bits the target allowed and were not sent (negative: sent beyond
/// it), within [`BUDGET`] at the target either way.
#[derive(Debug, Default)]
struct RateBudget {
    bits: i64,
    last: Option<Instant>,
}

impl RateBudget {
    /// Adds what `target_bps` allowed since the last call and takes off
    /// `sent_bits`, just sent.
    fn account(&mut self, now: Instant, target_bps: u64, sent_bits: u64) {
        let elapsed = self.last.map_or(Duration::ZERO, |last| now.duration_since(last));
        self.last = Some(now);
        let allowed = (target_bps as f64 * elapsed.as_secs_f64()) as i64;
        let limit = (target_bps as f64 * BUDGET.as_secs_f64()) as i64;
        let sent = i64::try_from(sent_bits).unwrap_or(i64::MAX);
        self.bits = self
            .bits
            .saturating_add(allowed)
            .saturating_sub(sent)
            .clamp(-limit, limit);
    }

    /// The rate to aim for: `base_bps` and the budget made up over
    /// [`CATCH_UP`], at most `target_bps` (catching up on a target that
    /// swings would swing further).
    fn aim_bps(&self, base_bps: u64, target_bps: u64) -> u64 {
        let aim = (base_bps as f64 + self.bits as f64 / CATCH_UP.as_secs_f64()).max(0.0) as u64;
        aim.min(target_bps)
    }
}

impl Adapter {
    fn new(video: &[(Option<String>, files::Media)], start: Instant, follow_target: bool) -> Adapter {
        let layers: Vec<LayerInfo> = video
            .iter()
            .map(|(_, media)| {
                let bytes: usize = media.frames.iter().map(|(_, frame)| frame.len()).sum();
                let (width, height) = media.size.unwrap_or_default();
                LayerInfo {
                    bitrate_bps: (bytes as f64 * 8.0 / media.length.as_secs_f64().max(1e-3)) as u64,
                    width,
                    height,
                }
            })
            .collect();
        tracing::info!(?layers, "adapting among the layers");
        Adapter {
            selector: LayerSelector::new(if follow_target {
                // The sender's own policy: target = estimate, as an
                // encoder (the hysteresis is HeldTarget's).
                SelectorConfig {
                    up_margin_per_mille: 0,
                    up_hold: Duration::ZERO,
                    ..SelectorConfig::default()
                }
            } else {
                // One sender, nothing to share the estimate with: a
                // small margin before going up.
                SelectorConfig {
                    up_margin_per_mille: 100,
                    ..SelectorConfig::default()
                }
            }),
            follow_target,
            held: HeldTarget::default(),
            budget: RateBudget::default(),
            aim_bps: 0,
            layers,
            tile: TileSize {
                width: u16::MAX,
                height: u16::MAX,
            },
            start,
            period: (start, 0),
            target_bps: 0,
            demand_bps: 0,
        }
    }

    /// Whether `frame` of file `index`, due at `now`, is sent: the
    /// selector's choice for the aim; a switch waits for the
    /// chosen file's keyframe (RFC 6386 §9.1: the frame tag's P bit).
    fn forward(&mut self, now: Instant, index: usize, frame: &[u8], target_bps: u64) -> bool {
        self.target_bps = target_bps;
        self.aim_bps = if self.follow_target {
            let held_bps = self.held.update(now, target_bps);
            self.budget.aim_bps(held_bps, target_bps)
        } else {
            target_bps
        };
        self.selector
            .update(now.into_std(), self.aim_bps, &self.layers, self.tile);
        let keyframe = Vp8FrameHeader::parse(frame).is_ok_and(|header| header.keyframe);
        let layer = u8::try_from(index).unwrap_or(u8::MAX);
        let sent = self.selector.handle_packet(layer, keyframe) != PacketAction::Drop;
        let bytes = if sent { frame.len() as u64 } else { 0 };
        self.period.1 += bytes;
        if self.follow_target {
            self.budget.account(now, target_bps, bytes * 8);
        }
        if now.duration_since(self.period.0) >= REPORT_INTERVAL {
            self.report(now);
        }
        sent
    }

    /// What the files would send if the target let them (the highest
    /// file's rate), when it changed.
    fn new_demand(&mut self) -> Option<u64> {
        let wanted = self.selector.wanted_bps();
        (wanted != self.demand_bps).then(|| {
            self.demand_bps = wanted;
            wanted
        })
    }

    /// Prints the JSON line of the period ending `now`, and starts the next.
    fn report(&mut self, now: Instant) {
        let (since, bytes) = self.period;
        let current = self.selector.current();
        let line = serde_json::json!({
            "t_ms": now.duration_since(self.start).as_millis() as u64,
            "unix_ms": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            "target_bps": self.target_bps,
            "aim_bps": self.aim_bps,
            "layer": current,
            "layer_bps": current.and_then(|l| self.layers.get(usize::from(l))).map(|l| l.bitrate_bps),
            "sent_bps": (bytes as f64 * 8.0 / now.duration_since(since).as_secs_f64()) as u64,
        });
        println!("{line}");
        self.period = (now, 0);
    }
}
