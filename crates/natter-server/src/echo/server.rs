//! Server mode: answers POSTed offers and echoes every data channel
//! message (see the module doc of `natter echo` for the convention).
//!
//! - `GET /` a page to run a browser's RTCPeerConnection from (a secure
//!   context on http://127.0.0.1);
//! - renegotiation of a connection that `POST /offer` made (its answer's
//!   `Location` header names it, `/connections/ID`):
//!   - `POST /connections/ID/offer` the peer's new offer (new tracks, a
//!     changed direction, an ICE restart), answered the same way;
//!   - `POST /connections/ID/negotiate` with [`Negotiate`] as JSON: natter
//!     changes what it asked for and replies with its own offer, whose
//!     answer goes to `POST /connections/ID/answer`;
//! - `GET /status` every connection's state, channels (label, options,
//!   counts, who closed them), errors, selected pair and DTLS state, as
//!   JSON;
//! - `GET /endpoint` with `--port`: what the shared endpoint routed and
//!   dropped (natter-io's `EndpointStats`), as JSON;
//! - `GET /healthz`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use natter::dtls::{DtlsConfig, DtlsRole};
use natter::peer::SctpSettings;
use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, Description, Direction, Endpoint, Format, LocalAddresses,
    MediaFrame, MediaKind, Message, PeerConfig, PeerConnection, PeerConnectionState, PeerEvent, SdpType, TransceiverId,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use natter_io::echoes::{self, SessionDescription};

/// What GET /status shows of one connection.
#[derive(Clone, Default, Serialize)]
struct ConnectionStatus {
    id: u64,
    state: String,
    ice_state: String,
    channels: BTreeMap<String, ChannelStatus>,
    errors: Vec<String>,
    selected_pair: Option<SelectedPair>,
    dtls: Option<DtlsStatus>,
    /// natter's media statistics ([`echoes::media_stats`]).
    media: serde_json::Value,
    /// Frames that could not be sent back.
    media_errors: u64,
    /// natter's counters (transport, SCTP, data channels), for diagnosis.
    counters: String,
    /// The SCTP association carries I-DATA (RFC 8260): both ends offered it.
    sctp_interleaving: bool,
    /// With `--sped`: whether the DTLS handshake rode ICE's checks
    /// (draft-hancke-webrtc-sped); `None` without it.
    sped: Option<SpedStatus>,
    /// Completed exchanges after the first: answers to the peer's offers
    /// and natter's own offers answered.
    renegotiations: u64,
    #[serde(skip)]
    pc: Option<PeerConnection>,
    /// Counts [`PeerEvent::IceGatheringComplete`], so that a description
    /// after an ICE restart waits for the candidates gathered anew.
    #[serde(skip)]
    gathered: Option<watch::Receiver<u64>>,
}

#[derive(Clone, Default, Serialize)]
struct ChannelStatus {
    label: String,
    stream_id: Option<u16>,
    ordered: bool,
    max_retransmits: Option<u32>,
    max_packet_life_time: Option<u32>,
    protocol: String,
    /// open, closing (natter asked), closed
    state: String,
    /// `peer` when the browser closed it, `natter` after `close-me`.
    closed_by: Option<String>,
    messages_echoed: u64,
    bytes_echoed: u64,
}

#[derive(Clone, Serialize)]
struct SelectedPair {
    local: String,
    remote: String,
    rtt_ms: Option<f64>,
}

/// [`natter::peer::SpedReport`] as /status shows it.
#[derive(Clone, Serialize)]
struct SpedStatus {
    /// `Complete` once a handshake carried in the checks ended, `Off`
    /// when the peer did not offer SPED (draft §6.3).
    state: String,
    /// natter's DTLS packets written into checks and responses.
    embedded_sent: u64,
    /// The peer's DTLS packets taken from them.
    embedded_received: u64,
    /// The peer's DTLS packets that came in them after natter had them
    /// already (plain, or in an earlier message).
    duplicates: u64,
    /// natter's packets the peer acknowledged in them.
    acknowledged: u64,
    /// The peer's STUN messages that carried SPED's attributes: it
    /// speaks SPED.
    peer_messages: u64,
}

#[derive(Clone, Serialize)]
struct DtlsStatus {
    state: String,
    role: String,
    version: Option<String>,
    srtp_profile: Option<String>,
    /// Why DTLS failed (a received alert is named in it).
    error: Option<String>,
    /// The fatal alert natter sent when it failed the handshake, as
    /// `name (number)`.
    sent_alert: Option<String>,
}

/// How the server answers, from the command line.
pub struct Options {
    pub addresses: LocalAddresses,
    pub mdns: bool,
    pub gather_timeout: Duration,
    /// Answer as the DTLS server (`a=setup:passive`).
    pub dtls_server: bool,
    /// Every connection on one UDP port per address (a natter-io
    /// [`Endpoint`]) rather than on sockets of its own.
    pub port: Option<u16>,
    /// Answer as an ICE-lite agent (RFC 8445 §2.5).
    pub ice_lite: bool,
    /// Offer I-DATA (RFC 8260, [`SctpSettings::interleaving`], on unless
    /// `--no-sctp-interleaving`).
    pub sctp_interleaving: bool,
    /// Offer SPED ([`natter::dtls::DtlsConfig::sped`]).
    pub sped: bool,
}

#[derive(Clone)]
struct App {
    addresses: LocalAddresses,
    mdns: bool,
    /// What each connection is made with.
    peer: PeerConfig,
    /// With `--port`, the endpoint every connection shares.
    endpoint: Option<Endpoint>,
    gather_timeout: Duration,
    connections: Arc<Mutex<BTreeMap<u64, ConnectionStatus>>>,
    next_id: Arc<Mutex<u64>>,
}

impl App {
    fn update(&self, id: u64, f: impl FnOnce(&mut ConnectionStatus)) {
        let mut connections = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = connections.get_mut(&id) {
            f(status);
        }
    }
}

/// Serves `POST /offer`, `/status`, `/endpoint`, `/healthz` and the page
/// on `listen` until SIGINT or SIGTERM.
pub async fn serve(listen: SocketAddr, options: Options) -> anyhow::Result<()> {
    let peer = PeerConfig {
        answer_dtls_role: options.dtls_server.then_some(DtlsRole::Server),
        ice_lite: options.ice_lite,
        dtls: DtlsConfig {
            sped: options.sped,
            ..DtlsConfig::default()
        },
        sctp: SctpSettings {
            interleaving: options.sctp_interleaving,
            ..SctpSettings::default()
        },
        ..PeerConfig::default()
    };
    let endpoint = match options.port {
        Some(port) => {
            let LocalAddresses::Addresses(addresses) = &options.addresses else {
                anyhow::bail!("--port needs the addresses to bind it on (--address)");
            };
            let config = Config {
                local_addresses: LocalAddresses::Addresses(
                    addresses.iter().map(|a| SocketAddr::new(a.ip(), port)).collect(),
                ),
                mdns: options.mdns,
                peer: peer.clone(),
                ..Config::default()
            };
            let endpoint = Endpoint::bind(config).context("binding the endpoint's sockets")?;
            tracing::info!(addresses = ?endpoint.local_addresses(), "every connection on the endpoint's sockets");
            Some(endpoint)
        }
        None => None,
    };
    let app = App {
        addresses: options.addresses,
        mdns: options.mdns,
        peer,
        endpoint,
        gather_timeout: options.gather_timeout,
        connections: Arc::default(),
        next_id: Arc::new(Mutex::new(1)),
    };
    let router = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/offer", post(offer))
        .route("/connections/{id}/offer", post(reoffer))
        .route("/connections/{id}/negotiate", post(negotiate))
        .route("/connections/{id}/answer", post(apply_answer))
        .route("/status", get(status))
        .route("/endpoint", get(endpoint_stats))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, "echo server ready");
    axum::serve(listener, router)
        .with_graceful_shutdown(crate::shutdown_signal())
        .await?;
    tracing::info!("shutting down");
    Ok(())
}

fn bad_request(message: String) -> Response {
    tracing::warn!("{message}");
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn offer(State(app): State<App>, Json(offer): Json<SessionDescription>) -> Response {
    let spawned = match &app.endpoint {
        Some(endpoint) => endpoint.connect().await,
        None => PeerConnection::spawn(Config {
            local_addresses: app.addresses.clone(),
            mdns: app.mdns,
            peer: app.peer.clone(),
            ..Config::default()
        }),
    };
    let answered = match echoes::answer(spawned, offer, app.gather_timeout, add_reflecting_tracks).await {
        Ok(answered) => answered,
        Err(error) => return bad_request(error),
    };
    let id = {
        let mut next = app.next_id.lock().unwrap_or_else(|e| e.into_inner());
        *next += 1;
        *next - 1
    };
    let (gathered_sender, gathered) = watch::channel(0);
    app.connections.lock().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        ConnectionStatus {
            id,
            state: "new".into(),
            ice_state: "new".into(),
            pc: Some(answered.pc.clone()),
            gathered: Some(gathered),
            ..ConnectionStatus::default()
        },
    );
    tracing::info!(id, "answer:\n{}", answered.answer.sdp);
    tokio::spawn(echo(app, id, answered.pc, answered.events, gathered_sender));
    let location = format!("/connections/{id}");
    ([(header::LOCATION, location)], Json(answered.answer)).into_response()
}

/// A track of our own on each audio and video transceiver that an offer
/// brought and that has none yet, to send what arrives back on.
async fn add_reflecting_tracks(pc: PeerConnection) -> Result<(), natter_io::Error> {
    for transceiver in pc.transceivers().await? {
        if transceiver.track().is_none() && transceiver.current_direction().is_none() && !transceiver.is_stopping() {
            pc.add_track(transceiver.kind()).await?;
        }
    }
    Ok(())
}

/// What `POST /connections/ID/negotiate` asks natter to change before it
/// offers; every field is optional. Transceivers are named by mid.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Negotiate {
    /// W3C `restartIce`.
    #[serde(default)]
    restart_ice: bool,
    /// W3C `addTrack` of `audio` or `video`: natter sends back on it
    /// what the peer sends on it.
    add_track: Option<String>,
    /// W3C `removeTrack` of the transceiver with this mid.
    remove_track: Option<String>,
    /// The direction of the transceiver with this mid.
    direction: Option<SetDirection>,
    /// W3C `createDataChannel` with this label (echoed like the others).
    data_channel: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SetDirection {
    mid: String,
    direction: String,
}

/// The connection `id`'s handle and its gathering counter, while it is
/// open.
fn connection(app: &App, id: u64) -> Option<(PeerConnection, watch::Receiver<u64>)> {
    let connections = app.connections.lock().unwrap_or_else(|e| e.into_inner());
    let status = connections.get(&id)?;
    Some((status.pc.clone()?, status.gathered.clone()?))
}

fn not_found(id: u64) -> Response {
    (StatusCode::NOT_FOUND, format!("no open connection {id}")).into_response()
}

/// Our local description once it carries every candidate: after an ICE
/// restart, the ones gathered anew (RFC 8445 §9), or what there is after
/// the gathering timeout.
async fn complete_description(
    app: &App,
    pc: &PeerConnection,
    gathered: &mut watch::Receiver<u64>,
) -> Result<String, String> {
    let wait = tokio::time::timeout(app.gather_timeout, async {
        loop {
            match pc.local_description().await {
                Ok(Some(sdp)) if sdp.contains("a=end-of-candidates") => return Ok(sdp),
                Ok(Some(_)) => {}
                other => return Err(format!("no local description: {other:?}")),
            }
            if gathered.changed().await.is_err() {
                return Err("the connection ended".to_owned());
            }
        }
    });
    match wait.await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("gathering did not complete in time; sending what we have");
            pc.local_description()
                .await
                .ok()
                .flatten()
                .ok_or_else(|| "no local description".to_owned())
        }
    }
}

/// `POST /connections/ID/offer`: the peer's new offer, answered.
async fn reoffer(State(app): State<App>, Path(id): Path<u64>, Json(offer): Json<SessionDescription>) -> Response {
    let Some((pc, mut gathered)) = connection(&app, id) else {
        return not_found(id);
    };
    let steps = async {
        echoes::apply_offer(&pc, offer, add_reflecting_tracks).await?;
        complete_description(&app, &pc, &mut gathered).await
    };
    let result = steps.await;
    if result.is_ok() {
        app.update(id, |s| s.renegotiations += 1);
    }
    description_reply(id, "answer", result)
}

/// Our description as `{type, sdp}`, or what went wrong.
fn description_reply(id: u64, kind: &str, result: Result<String, String>) -> Response {
    match result {
        Ok(sdp) => {
            tracing::info!(id, "{kind}:\n{sdp}");
            Json(SessionDescription { kind: kind.into(), sdp }).into_response()
        }
        Err(error) => bad_request(format!("connection {id}: {error}")),
    }
}

/// `POST /connections/ID/negotiate`: natter changes what [`Negotiate`]
/// says and offers.
async fn negotiate(State(app): State<App>, Path(id): Path<u64>, Json(change): Json<Negotiate>) -> Response {
    let Some((pc, mut gathered)) = connection(&app, id) else {
        return not_found(id);
    };
    let steps = async {
        let by_mid = |mid: String| {
            let pc = pc.clone();
            async move {
                let transceivers = pc.transceivers().await.map_err(|e| e.to_string())?;
                let found = transceivers.iter().find(|t| t.mid() == Some(mid.as_str()));
                found
                    .map(|t| pc.track(t.id()))
                    .ok_or_else(|| format!("no transceiver with mid {mid:?}"))
            }
        };
        if change.restart_ice {
            pc.restart_ice().await.map_err(|e| format!("restartIce: {e}"))?;
        }
        if let Some(kind) = change.add_track {
            let kind = match kind.as_str() {
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                other => return Err(format!("addTrack: unknown kind {other:?}")),
            };
            pc.add_track(kind).await.map_err(|e| format!("addTrack: {e}"))?;
        }
        if let Some(mid) = change.remove_track {
            let track = by_mid(mid).await?;
            track.remove().await.map_err(|e| format!("removeTrack: {e}"))?;
        }
        if let Some(SetDirection { mid, direction }) = change.direction {
            let direction: Direction = direction
                .parse()
                .map_err(|_| format!("unknown direction {direction:?}"))?;
            let track = by_mid(mid).await?;
            track
                .set_direction(direction)
                .await
                .map_err(|e| format!("direction: {e}"))?;
        }
        if let Some(label) = change.data_channel {
            pc.create_data_channel(&label, DataChannelInit::default())
                .await
                .map_err(|e| format!("createDataChannel: {e}"))?;
        }
        let offer = pc.create_offer().await.map_err(|e| format!("createOffer: {e}"))?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| format!("setLocalDescription(offer): {e}"))?;
        complete_description(&app, &pc, &mut gathered).await
    };
    description_reply(id, "offer", steps.await)
}

/// `POST /connections/ID/answer`: the peer's answer to natter's offer.
async fn apply_answer(State(app): State<App>, Path(id): Path<u64>, Json(answer): Json<SessionDescription>) -> Response {
    let Some((pc, _)) = connection(&app, id) else {
        return not_found(id);
    };
    if answer.kind != "answer" {
        return bad_request(format!("expected {{\"type\":\"answer\"}}, got {:?}", answer.kind));
    }
    let remote = Description {
        kind: SdpType::Answer,
        sdp: answer.sdp,
    };
    match pc.set_remote_description(remote).await {
        Ok(()) => {
            app.update(id, |s| s.renegotiations += 1);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => bad_request(format!("connection {id}: setRemoteDescription(answer): {error}")),
    }
}

/// Above this many bytes queued in natter, echoes wait in the echo
/// server instead, until natter's queue falls to [`LOW_WATER`].
const HIGH_WATER: usize = 4 << 20;
const LOW_WATER: usize = 1 << 20;

/// One channel being echoed.
struct Echoed {
    handle: DataChannel,
    /// The key of its /status entry.
    key: String,
    /// Echoes waiting for natter's queue to drain.
    waiting: VecDeque<Message>,
}

/// Echoes every message of the connection until it fails or closes.
/// Respects natter's buffered amount (W3C `bufferedAmount`): when the
/// peer sends faster than natter gets the echoes out, they wait here.
async fn echo(app: App, id: u64, pc: PeerConnection, mut events: echoes::Events, gathered: watch::Sender<u64>) {
    let mut channels: BTreeMap<DataChannelId, Echoed> = BTreeMap::new();
    let mut reflected: BTreeMap<TransceiverId, Reflected> = BTreeMap::new();
    while let Some(event) = events.next_or_stats(|media| app.update(id, |s| s.media = media)).await {
        match event {
            PeerEvent::DataChannel(channel) | PeerEvent::DataChannelOpen(channel) => {
                if channels.contains_key(&channel) {
                    continue;
                }
                let handle = pc.data_channel(channel);
                let Ok(info) = handle.info().await else { continue };
                tracing::info!(id, %channel, label = %info.label, ordered = info.ordered,
                    max_retransmits = ?info.max_retransmits, "data channel open");
                if let Err(error) = handle.set_buffered_amount_low_threshold(LOW_WATER).await {
                    tracing::warn!(id, %channel, %error, "bufferedAmountLowThreshold");
                }
                let key = format!("{}#{}", info.label, info.stream_id.map_or(-1, i32::from));
                app.update(id, |s| {
                    s.channels.insert(
                        key.clone(),
                        ChannelStatus {
                            label: info.label.clone(),
                            stream_id: info.stream_id,
                            ordered: info.ordered,
                            max_retransmits: info.max_retransmits,
                            max_packet_life_time: info.max_packet_life_time,
                            protocol: info.protocol.clone(),
                            state: "open".into(),
                            ..ChannelStatus::default()
                        },
                    );
                });
                channels.insert(
                    channel,
                    Echoed {
                        handle,
                        key,
                        waiting: VecDeque::new(),
                    },
                );
            }
            PeerEvent::DataChannelMessage {
                id: channel,
                data,
                is_text,
            } => {
                let Some(echoed) = channels.get_mut(&channel) else {
                    continue;
                };
                if is_text && data == b"close-me" {
                    tracing::info!(id, %channel, "close-me: closing the channel");
                    app.update(id, |s| {
                        if let Some(c) = s.channels.get_mut(&echoed.key) {
                            c.state = "closing".into();
                            c.closed_by = Some("natter".into());
                        }
                    });
                    if let Err(error) = echoed.handle.close().await {
                        app.update(id, |s| s.errors.push(format!("close {}: {error}", echoed.key)));
                    }
                    continue;
                }
                let message = match is_text {
                    true => match String::from_utf8(data) {
                        Ok(text) => Message::Text(text),
                        Err(error) => {
                            let key = &echoed.key;
                            app.update(id, |s| s.errors.push(format!("{key}: text is not UTF-8: {error}")));
                            continue;
                        }
                    },
                    false => Message::Binary(data),
                };
                echoed.waiting.push_back(message);
                send_waiting(&app, id, echoed).await;
            }
            PeerEvent::BufferedAmountLow(channel) => {
                if let Some(echoed) = channels.get_mut(&channel) {
                    send_waiting(&app, id, echoed).await;
                }
            }
            PeerEvent::DataChannelClose(channel) => {
                if let Some(echoed) = channels.remove(&channel) {
                    tracing::info!(id, %channel, key = %echoed.key, "data channel closed");
                    app.update(id, |s| {
                        if let Some(c) = s.channels.get_mut(&echoed.key) {
                            c.state = "closed".into();
                            c.closed_by.get_or_insert_with(|| "peer".into());
                        }
                    });
                }
            }
            PeerEvent::MediaFrame(frame) => {
                if let Err(error) = reflect(&pc, &mut reflected, frame).await {
                    app.update(id, |s| s.media_errors += 1);
                    tracing::debug!(id, %error, "reflecting a frame");
                }
            }
            // The peer wants a keyframe of what we reflect: only its own
            // encoder can make one.
            PeerEvent::KeyframeRequest { transceiver, .. } => {
                let _ = pc.track(transceiver).request_keyframe().await;
            }
            PeerEvent::IceConnectionStateChange(state) => {
                tracing::info!(id, ?state, "ICE connection state");
                app.update(id, |s| s.ice_state = format!("{state:?}").to_lowercase());
                // A restart can select another pair.
                record_stats(&app, id, &pc).await;
            }
            PeerEvent::IceGatheringComplete => {
                gathered.send_modify(|n| *n += 1);
            }
            PeerEvent::ConnectionStateChange(state) => {
                tracing::info!(id, %state, "connection state");
                app.update(id, |s| s.state = state.to_string());
                if state == PeerConnectionState::Connected {
                    record_stats(&app, id, &pc).await;
                }
                if matches!(state, PeerConnectionState::Failed | PeerConnectionState::Closed) {
                    record_stats(&app, id, &pc).await;
                    break;
                }
            }
            PeerEvent::DtlsFailed(error) => app.update(id, |s| s.errors.push(format!("dtls: {error}"))),
            other => tracing::debug!(id, ?other, "event"),
        }
    }
    pc.close().await;
    app.update(id, |s| {
        s.state = "closed".into();
        s.pc = None;
        s.gathered = None;
    });
}

/// The stream a transceiver reflects: the first simulcast layer seen
/// (`None` without simulcast), and its first frame's RTP timestamp.
struct Reflected {
    rid: Option<String>,
    first_timestamp: u32,
}

/// Sends a received frame back on the transceiver it came in on, at
/// the time its RTP timestamp says (from the stream's first frame).
/// Of simulcast layers, only the first seen is reflected: one track
/// sends one stream.
async fn reflect(
    pc: &PeerConnection,
    reflected: &mut BTreeMap<TransceiverId, Reflected>,
    frame: MediaFrame,
) -> Result<(), natter_io::Error> {
    let clock_rate = match frame.format {
        Format::Opus => 48_000,
        Format::Vp8 | Format::Vp9 | Format::H264 | Format::Av1 => 90_000,
    };
    let stream = reflected.entry(frame.transceiver).or_insert_with(|| Reflected {
        rid: frame.rid.clone(),
        first_timestamp: frame.timestamp,
    });
    if stream.rid != frame.rid {
        return Ok(());
    }
    let ticks = frame.timestamp.wrapping_sub(stream.first_timestamp);
    let media_time = Duration::from_secs_f64(f64::from(ticks) / f64::from(clock_rate));
    pc.track(frame.transceiver).send_frame(media_time, frame.data).await
}

/// Sends the channel's waiting echoes while natter's queue is under
/// [`HIGH_WATER`]; the rest wait for [`PeerEvent::BufferedAmountLow`].
async fn send_waiting(app: &App, id: u64, echoed: &mut Echoed) {
    while !echoed.waiting.is_empty() {
        match echoed.handle.buffered_amount().await {
            Ok(queued) if queued > HIGH_WATER => return,
            Ok(_) => {}
            // The channel is gone; its close event follows.
            Err(_) => return echoed.waiting.clear(),
        }
        let Some(message) = echoed.waiting.pop_front() else {
            return;
        };
        let len = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) => bytes.len(),
        } as u64;
        let key = &echoed.key;
        match echoed.handle.send(message).await {
            Ok(()) => app.update(id, |s| {
                if let Some(c) = s.channels.get_mut(key) {
                    c.messages_echoed += 1;
                    c.bytes_echoed += len;
                }
            }),
            Err(error) => {
                tracing::warn!(id, %key, %error, "echo failed");
                app.update(id, |s| s.errors.push(format!("echo on {key} ({len} bytes): {error}")));
            }
        }
    }
}

async fn record_stats(app: &App, id: u64, pc: &PeerConnection) {
    let Ok(stats) = pc.stats().await else { return };
    let counters = format!(
        "transport {:?}; sctp {:?}; data {:?}; channels {:?}; ice {:?}",
        stats.transport, stats.sctp, stats.data, stats.channels, stats.ice
    );
    let media = echoes::media_stats(&stats);
    app.update(id, |s| {
        s.counters = counters;
        s.sctp_interleaving = stats.sctp_interleaving;
        s.sped = stats.sped.map(|sped| SpedStatus {
            state: format!("{:?}", sped.state),
            embedded_sent: sped.counters.embedded_sent,
            embedded_received: sped.counters.embedded_received,
            duplicates: sped.counters.duplicates,
            acknowledged: sped.counters.acknowledged,
            peer_messages: sped.counters.peer_messages,
        });
        s.media = media;
        s.selected_pair = stats.selected_pair.map(|pair| SelectedPair {
            local: pair.local.to_string(),
            remote: pair.remote.to_string(),
            rtt_ms: pair.round_trip_time.map(|rtt| rtt.as_secs_f64() * 1000.0),
        });
        s.dtls = stats.dtls.map(|dtls| DtlsStatus {
            state: format!("{:?}", dtls.state),
            role: format!("{:?}", dtls.role),
            version: dtls.version.map(|v| format!("{v:?}")),
            srtp_profile: dtls.srtp_profile.map(|p| format!("{p:?}")),
            error: dtls.error.map(|e| e.to_string()),
            sent_alert: dtls
                .sent_alert
                .map(|a| format!("{} ({a})", natter::dtls::alert_name(a))),
        });
    });
}

/// With `--port`, what the endpoint routed and dropped.
async fn endpoint_stats(State(app): State<App>) -> Response {
    let Some(endpoint) = &app.endpoint else {
        return (StatusCode::NOT_FOUND, "no shared endpoint: start with --port").into_response();
    };
    match endpoint.stats().await {
        Ok(s) => Json(serde_json::json!({
            "local_addresses": endpoint.local_addresses(),
            "connections": s.connections, "datagrams_received": s.datagrams_received,
            "datagrams_sent": s.datagrams_sent, "unknown_ufrag": s.unknown_ufrag,
            "unknown_transaction": s.unknown_transaction, "unknown_address": s.unknown_address,
            "malformed": s.malformed, "address_takeovers": s.address_takeovers,
            "ufrag_conflicts": s.ufrag_conflicts, "paused_dropped": s.paused_dropped, "dropped": s.dropped(),
        }))
        .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

async fn status(State(app): State<App>) -> Json<Vec<ConnectionStatus>> {
    let live: Vec<(u64, PeerConnection)> = {
        let connections = app.connections.lock().unwrap_or_else(|e| e.into_inner());
        connections
            .values()
            .filter_map(|c| Some((c.id, c.pc.clone()?)))
            .collect()
    };
    for (id, pc) in live {
        record_stats(&app, id, &pc).await;
    }
    let connections = app.connections.lock().unwrap_or_else(|e| e.into_inner());
    Json(connections.values().cloned().collect())
}

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>natter echo</title>
<p>natter-io echo server. Connect a data channel: POST your complete offer to <code>/offer</code>;
every message comes back on its channel; the text <code>close-me</code> makes natter close the channel.
<code>/status</code> shows what natter saw.</p>
<button id="try">Try it</button> <output id="out"></output>
<script>
document.getElementById('try').onclick = async () => {
  const out = document.getElementById('out');
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel('echo');
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
  });
  const res = await fetch('/offer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(pc.localDescription) });
  await pc.setRemoteDescription(await res.json());
  dc.onopen = () => dc.send('hello natter');
  dc.onmessage = (e) => (out.textContent = `echoed: ${e.data}`);
};
</script>
"#;
