//! Forwards one peer's video RTP to another without depacketizing it:
//! natter's RTP mode, as an SFU uses it. The first browser to POST an
//! offer that sends video to `/offer` (the webrtc-echoes convention, see
//! `common/answer.rs`) publishes, typically three simulcast layers (RFC
//! 8853); one whose offer only receives (`a=recvonly`) subscribes, and
//! gets one layer as one stream. Both connections share one UDP port
//! (an [`Endpoint`]).
//!
//! Each packet of the chosen layer goes on with its SSRC (the
//! subscriber's sender's), sequence number and timestamp rewritten, so
//! that the subscriber sees one continuous stream (RFC 3550 §5.1;
//! natter-sfu's `StreamRewriter`); so are VP8's PictureID and TL0PICIDX
//! (RFC 7741 §4.2; natter-sfu's `Vp8Rewriter`), which each layer numbers
//! on its own: a receiver finds a frame's references by them, and a
//! switch that made them jump could leave the new layer's frames without
//! references until its next keyframe. A
//! switch of layer (`POST /layer {"rid":"h"}`) asks the publisher for a
//! keyframe of the new layer (a PLI for its SSRC) and happens at the
//! first packet of one: the decoder can start there. The subscriber's
//! own keyframe requests go to the layer it is watching.
//!
//! ```text
//! cargo run --release -p natter-io --example forward -- --listen 127.0.0.1:8092 --rid q
//! ```
//!
//! `GET /status` shows the layer forwarded, the switches, the packets
//! forwarded and both connections' media statistics; `GET /healthz`.

#[path = "common/answer.rs"]
mod answer;
#[path = "common/serve.rs"]
mod serve;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use natter_io::{
    Config, Endpoint, Format, MediaKind, OutgoingPacket, PeerConfig, PeerConnection, PeerConnectionState, PeerEvent,
    RtpPacket, Track,
};
use natter_sfu::rewrite::{Incoming, StreamRewriter};
use natter_sfu::vp8::Vp8Rewriter;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

#[derive(Parser, Debug)]
#[command(
    about = "Forwards a WebRTC peer's video RTP, one simulcast layer at a time, to another (webrtc-echoes signaling)"
)]
struct Args {
    /// Where the HTTP server listens.
    #[arg(long, default_value = "127.0.0.1:8092")]
    listen: SocketAddr,
    /// An ICE host address (repeatable); without one, every address of
    /// the host's interfaces, loopback included.
    #[arg(long = "address")]
    addresses: Vec<IpAddr>,
    /// The simulcast layer forwarded first.
    #[arg(long, default_value = "q")]
    rid: String,
    /// How long to wait for our ICE gathering before answering.
    #[arg(long, default_value_t = 5000)]
    gather_timeout_ms: u64,
}

/// A keyframe asked for and not come within this long is asked for
/// again (the PLI or the keyframe may have been lost).
const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// RTP clock rate of video (RFC 7741 §4.1, RFC 6184 §8.1, RFC 9628 §6).
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// One change of layer, for `/status`.
#[derive(Clone, Serialize)]
struct Switch {
    from: String,
    to: String,
    /// The first packet forwarded from the new layer started a keyframe.
    at_keyframe: bool,
}

/// What `/status` shows.
#[derive(Clone, Default, Serialize)]
struct Status {
    target: String,
    current: Option<String>,
    switches: Vec<Switch>,
    forwarded: u64,
    /// Packets of other layers, or of the target before its keyframe.
    not_forwarded: u64,
    write_errors: u64,
    keyframe_requests: u64,
    publisher: serde_json::Value,
    subscriber: serde_json::Value,
    errors: Vec<String>,
}

/// The publisher's connection and the subscriber's sending transceiver,
/// once each has answered; the subscriber is forwarded to once its
/// connection is up (before that, its track does not send).
#[derive(Clone, Default)]
struct Peers {
    publisher: Option<PeerConnection>,
    subscriber: Option<Track>,
    subscriber_connected: bool,
}

#[derive(Clone)]
struct App {
    args: Arc<Args>,
    endpoint: Arc<Endpoint>,
    status: Arc<Mutex<Status>>,
    peers: Arc<Mutex<Peers>>,
    /// Layer changes and keyframe requests for the forwarding task.
    control: mpsc::UnboundedSender<Control>,
}

impl App {
    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn peers(&self) -> Peers {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

enum Control {
    /// Forward this layer from its next keyframe.
    Layer(String),
    /// The subscriber asked for a keyframe.
    KeyframeRequest,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    serve::init_logs();
    let args = Args::parse();
    let endpoint = Endpoint::bind(Config {
        local_addresses: answer::local_addresses(&args.addresses),
        ..Config::default()
    })?;
    let (control, controls) = mpsc::unbounded_channel();
    let app = App {
        status: Arc::new(Mutex::new(Status {
            target: args.rid.clone(),
            ..Status::default()
        })),
        args: Arc::new(args),
        endpoint: Arc::new(endpoint),
        peers: Arc::default(),
        control,
    };
    let (packets_sender, packets) = oneshot::channel();
    tokio::spawn(forward(app.clone(), packets, controls));
    let packets_sender = Arc::new(Mutex::new(Some(packets_sender)));
    let router = Router::new()
        .route(
            "/",
            get(|| async { Html("<!doctype html><title>natter forward</title>") }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/offer",
            post(move |state, body| offer(state, body, packets_sender.clone())),
        )
        .route("/layer", post(layer))
        .route("/status", get(status))
        .with_state(app.clone());
    serve::serve(app.args.listen, router, "forwarder", serve::interrupted()).await
}

async fn status(State(app): State<App>) -> Json<Status> {
    Json(app.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

#[derive(Deserialize)]
struct LayerRequest {
    rid: String,
}

async fn layer(State(app): State<App>, Json(request): Json<LayerRequest>) -> Response {
    app.update(|s| s.target = request.rid.clone());
    match app.control.send(Control::Layer(request.rid)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the forwarder stopped").into_response(),
    }
}

type PacketsSender = Arc<Mutex<Option<oneshot::Sender<mpsc::Receiver<RtpPacket>>>>>;

async fn offer(
    State(app): State<App>,
    Json(offer): Json<answer::SessionDescription>,
    packets: PacketsSender,
) -> Response {
    let subscribes = offer.sdp.lines().any(|l| l.trim_end() == "a=recvonly");
    let role = if subscribes { "subscriber" } else { "publisher" };
    let peers = app.peers();
    let taken = if subscribes {
        peers.subscriber.is_some()
    } else {
        peers.publisher.is_some()
    };
    if taken {
        return (StatusCode::CONFLICT, format!("already have a {role}")).into_response();
    }
    let connected = match app.endpoint.connect_rtp(PeerConfig::default()).await {
        Ok(connected) => connected,
        Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    };
    let (pc, events, rtp) = connected;
    let (track_sender, track) = oneshot::channel();
    let gather_timeout = Duration::from_millis(app.args.gather_timeout_ms);
    let answered = answer::answer(Ok((pc, events)), offer, gather_timeout, move |pc| async move {
        if subscribes {
            let _ = track_sender.send(pc.add_track(MediaKind::Video).await?);
        }
        Ok(())
    })
    .await;
    let answered = match answered {
        Ok(answered) => answered,
        Err(error) => {
            tracing::warn!("{role}: {error}");
            return (StatusCode::BAD_REQUEST, error).into_response();
        }
    };
    tracing::info!("{role} answer:\n{}", answered.answer.sdp);
    if subscribes {
        let Ok(track) = track.await else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "no video track for the subscriber").into_response();
        };
        app.peers.lock().unwrap_or_else(|e| e.into_inner()).subscriber = Some(track);
    } else if let Some(sender) = packets.lock().unwrap_or_else(|e| e.into_inner()).take() {
        app.peers.lock().unwrap_or_else(|e| e.into_inner()).publisher = Some(answered.pc.clone());
        let _ = sender.send(rtp);
    }
    tokio::spawn(watch(app, answered.events, subscribes));
    Json(answered.answer).into_response()
}

/// Drains a connection's events (so it never pauses), keeps its stats
/// for `/status`, and passes the subscriber's keyframe requests on.
async fn watch(app: App, mut events: answer::Events, subscriber: bool) {
    let on_stats = |stats| {
        app.update(|s| match subscriber {
            true => s.subscriber = stats,
            false => s.publisher = stats,
        })
    };
    while let Some(event) = events.next_or_stats(on_stats).await {
        match event {
            PeerEvent::KeyframeRequest { .. } if subscriber => {
                let _ = app.control.send(Control::KeyframeRequest);
            }
            PeerEvent::ConnectionStateChange(state) => {
                tracing::info!(subscriber, ?state, "connection");
                if subscriber {
                    let connected = state == PeerConnectionState::Connected;
                    app.peers.lock().unwrap_or_else(|e| e.into_inner()).subscriber_connected = connected;
                }
            }
            _ => {}
        }
    }
}

/// The forwarding loop: the publisher's packets in, the chosen layer's
/// out to the subscriber, rewritten.
async fn forward(
    app: App,
    packets: oneshot::Receiver<mpsc::Receiver<RtpPacket>>,
    mut controls: mpsc::UnboundedReceiver<Control>,
) {
    let Ok(mut packets) = packets.await else { return };
    let mut layers = Layers::new(app.args.rid.clone());
    let mut rewriter = StreamRewriter::new(VIDEO_CLOCK_RATE);
    let mut vp8 = Vp8Rewriter::new();
    let mut retry = tokio::time::interval(KEYFRAME_RETRY / 2);
    // The subscriber's format and payload type, once it sends.
    let mut sending = None;
    loop {
        let packet = tokio::select! {
            packet = packets.recv() => match packet {
                Some(packet) => packet,
                None => return,
            },
            Some(control) = controls.recv() => {
                if let Control::Layer(rid) = control {
                    layers.target = rid;
                }
                layers.asked = None;
                ask_keyframe(&app, &mut layers).await;
                continue;
            }
            _ = retry.tick() => {
                ask_keyframe(&app, &mut layers).await;
                continue;
            }
        };
        if layers.publisher.is_none() {
            layers.publisher = app.peers().publisher.map(|pc| pc.track(packet.transceiver));
        }
        let peers = app.peers();
        let Some(subscriber) = peers.subscriber.filter(|_| peers.subscriber_connected) else {
            app.update(|s| s.not_forwarded += 1);
            continue;
        };
        let now = Instant::now();
        let incoming = Incoming {
            sequence: packet.sequence_number,
            timestamp: packet.timestamp,
            retransmission: packet.retransmission,
        };
        let admit = layers.admit(&packet);
        let switch = matches!(admit, Admit::Switch { .. });
        let rewritten = match admit {
            Admit::No => None,
            Admit::Current => rewriter.rewrite(incoming, now).ok(),
            Admit::Switch { from } => {
                let keyframe = packet.info.is_some_and(|i| i.starts_keyframe);
                tracing::info!(from = ?from, to = ?packet.rid, "layer switched");
                app.update(|s| {
                    s.current = packet.rid.clone();
                    if let Some(from) = from {
                        s.switches.push(Switch {
                            from,
                            to: packet.rid.clone().unwrap_or_default(),
                            at_keyframe: keyframe,
                        });
                    }
                });
                Some(rewriter.switch(incoming, now))
            }
        };
        let Some(rewritten) = rewritten else {
            app.update(|s| s.not_forwarded += 1);
            continue;
        };
        if sending.is_none() {
            sending = subscriber.send_payload_type().await.ok().flatten();
        }
        let Some((format, payload_type)) = sending else {
            app.update(|s| s.write_errors += 1);
            continue;
        };
        let mut out = OutgoingPacket::forwarding(packet);
        let described = match format {
            Format::Vp8 => vp8.rewrite(&mut out.payload, switch).map(drop),
            _ => Ok(()),
        };
        if let Err(error) = described {
            app.update(|s| {
                s.write_errors += 1;
                if s.errors.len() < 10 {
                    s.errors.push(error.to_string());
                }
            });
            continue;
        }
        out.payload_type = payload_type;
        out.sequence_number = rewritten.sequence;
        out.timestamp = rewritten.timestamp;
        match subscriber.write_rtp(out).await {
            Ok(()) => app.update(|s| s.forwarded += 1),
            Err(error) => app.update(|s| {
                s.write_errors += 1;
                if s.errors.len() < 10 {
                    s.errors.push(error.to_string());
                }
            }),
        }
    }
}

/// Asks the publisher for a keyframe of the target layer while the
/// forwarder waits for one: to switch, to start, or because the
/// subscriber asked; again after [`KEYFRAME_RETRY`].
async fn ask_keyframe(app: &App, layers: &mut Layers) {
    let waiting = layers.current.as_ref() != Some(&layers.target) || layers.asked.is_none();
    if !waiting || layers.asked.is_some_and(|t| t.elapsed() < KEYFRAME_RETRY) {
        return;
    }
    let Some(publisher) = layers.publisher.as_ref() else {
        return;
    };
    let rid = layers.target.clone();
    if publisher.request_layer_keyframe(&rid).await.is_ok() {
        layers.asked = Some(Instant::now());
        app.update(|s| s.keyframe_requests += 1);
    }
}

/// Which layer is forwarded, and which is wanted.
struct Layers {
    target: String,
    current: Option<String>,
    /// When a keyframe of `target` was last asked for; `None` to ask now.
    asked: Option<Instant>,
    /// The publisher's receiving transceiver, known from its packets.
    publisher: Option<Track>,
}

/// Whether a packet is forwarded.
enum Admit {
    No,
    /// On the layer forwarded.
    Current,
    /// It starts a keyframe of the target layer: the stream switches to
    /// it `from` the layer forwarded until now (`None` at the start).
    Switch {
        from: Option<String>,
    },
}

impl Layers {
    fn new(target: String) -> Self {
        Layers {
            target,
            current: None,
            asked: None,
            publisher: None,
        }
    }

    /// Whether `packet` is forwarded. A switch happens only at the start
    /// of a keyframe of the target; until then the current layer goes on.
    fn admit(&mut self, packet: &RtpPacket) -> Admit {
        let Some(rid) = packet.rid.as_ref() else {
            return Admit::No;
        };
        if self.current.as_ref() == Some(rid) {
            return Admit::Current;
        }
        let keyframe = packet.info.is_some_and(|i| i.starts_keyframe);
        if *rid != self.target || !keyframe || packet.retransmission {
            return Admit::No;
        }
        let from = self.current.replace(rid.clone());
        Admit::Switch { from }
    }
}
