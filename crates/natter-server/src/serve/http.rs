//! HTTP: the embedded web client, `/healthz`, `/metrics`, the REST API of
//! `docs/signaling.md`, the `/ws` signaling endpoint and, with the SFU,
//! WHIP and WHEP ([`crate::whip`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use include_dir::{include_dir, Dir};
use natter_signaling::{ApiError, Config, Signaling, TokenKey, TurnService};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::config::ServeConfig;
use super::signaling::{self, Hub, SharedHub};
use super::DRAIN;

/// The web client, built into the binary.
static WEB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/web");
/// Messages above this close the socket (1009) before the core sees them.
const MAX_FRAME: usize = 1 << 20;
/// Frames are read whole up to this size before the message size check
/// refuses them, so that the peer is not still sending when the socket
/// closes: unread data makes the kernel reset the connection, and the
/// reset can overtake the 1009 close frame (the browser then reports
/// 1006). Larger frames are refused from their header.
const MAX_FRAME_READ: usize = 2 * MAX_FRAME;
/// Longest token lifetime the API mints.
const MAX_TOKEN_TTL: u64 = 30 * 24 * 3600;

#[derive(Clone)]
struct App {
    hub: SharedHub,
    config: Arc<ServeConfig>,
    turn: Option<Arc<crate::turn::Shared>>,
    whip: Option<crate::whip::Whip>,
    recordings: Arc<super::recording::Recordings>,
    shutdown: watch::Receiver<bool>,
}

/// Serves until SIGINT or SIGTERM, then drains; `sfu_socket` is the SFU
/// worker's bound socket and the address it announces.
pub async fn serve(
    config: ServeConfig,
    turn: Option<Arc<crate::turn::Shared>>,
    sfu_socket: Option<(std::net::UdpSocket, std::net::IpAddr)>,
) -> anyhow::Result<()> {
    let (sfu, replies) = match sfu_socket {
        Some((socket, advertised)) => {
            let (replies, receiver) = tokio::sync::mpsc::unbounded_channel();
            (
                Some(crate::sfu::Sfu::start(
                    socket,
                    advertised,
                    config.sfu_relay_stall,
                    config.sfu_consent_timeout,
                    replies,
                )?),
                Some(receiver),
            )
        }
        None => (None, None),
    };
    let hub = Hub::new(Signaling::new(signaling_config(&config), rand::random()), sfu);
    // WHIP and WHEP participants (RFC 9725) are the SFU's: their replies
    // are taken out before signaling's.
    let whip = replies.is_some().then(|| crate::whip::Whip::new(hub.clone()));
    if let (Some(replies), Some(whip)) = (replies, &whip) {
        let (to_signaling, signaling_replies) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(whip.clone().route_replies(replies, to_signaling));
        tokio::spawn(signaling::sfu_replies(hub.clone(), signaling_replies));
    }
    let (stop, shutdown) = watch::channel(false);
    let recordings = Arc::new(super::recording::Recordings::new(config.record_dir.clone()));
    let app = App {
        hub: hub.clone(),
        config: Arc::new(config.clone()),
        turn,
        whip: whip.clone(),
        recordings: recordings.clone(),
        shutdown: shutdown.clone(),
    };
    let whip_routes = whip.as_ref().map_or_else(Router::new, crate::whip::Whip::routes);
    let router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/api/info", get(info))
        .route("/api/rooms", get(list_rooms).post(create_room))
        .route("/api/rooms/{room}/tokens", post(mint_token))
        .route(
            "/api/rooms/{room}/recording",
            post(start_recording).get(recording_status).delete(stop_recording),
        )
        .route("/ws", get(websocket))
        .route("/", get(|| async { asset("index.html") }))
        .route("/{file}", get(|Path(file): Path<String>| async move { asset(&file) }))
        .with_state(app)
        .merge(whip_routes);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("HTTP {}", config.listen))?;
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    tracing::info!(
        url = %format!("{scheme}://{}/", config.listen),
        dev = config.dev,
        turn = ?config.turn.as_ref().map(|t| t.port),
        public_host = %config.public_host,
        "natter serve ready"
    );
    tokio::spawn(signaling::timers(hub.clone(), shutdown.clone()));
    let graceful = {
        let mut shutdown = shutdown.clone();
        async move {
            let _ = shutdown.changed().await;
        }
    };
    let server = match &config.tls {
        Some((cert, key)) => {
            let acceptor = crate::turn::stream::tls_acceptor(cert, key)?;
            let listener = super::tls::TlsListener::new(listener, acceptor)?;
            tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(graceful).await })
        }
        None => tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(graceful).await }),
    };
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    recordings.stop_all(&hub).await;
    hub.lock().unwrap_or_else(|e| e.into_inner()).close_all();
    let _ = stop.send(true);
    match tokio::time::timeout(DRAIN, server).await {
        Ok(Ok(result)) => result.context("HTTP server")?,
        Ok(Err(e)) => anyhow::bail!("HTTP server task: {e}"),
        Err(_) => tracing::warn!("connections still open after {DRAIN:?}; closing them"),
    }
    Ok(())
}

fn signaling_config(config: &ServeConfig) -> Config {
    let mut c = Config::new(TokenKey::new(config.secret.as_bytes()));
    c.dev = config.dev;
    c.max_participants = config.max_participants;
    c.max_rooms = config.max_rooms;
    c.max_message_bytes = config.max_message_bytes;
    c.messages_per_second = config.messages_per_second;
    c.burst = config.messages_per_second * 4;
    c.heartbeat = config.heartbeat;
    c.resume = config.resume;
    c.sfu = config.sfu.is_some();
    c.turn = config.turn.as_ref().map(|turn| {
        let host = url_host(&config.public_host);
        let mut turn_urls = vec![
            format!("turn:{host}:{}?transport=udp", turn.port),
            format!("turn:{host}:{}?transport=tcp", turn.port),
        ];
        if turn.tls.is_some() {
            turn_urls.push(format!("turns:{host}:{}?transport=tcp", turn.tls_port));
        }
        TurnService {
            stun_urls: vec![format!("stun:{host}:{}", turn.port)],
            turn_urls,
            secret: turn.secrets[0].clone(),
            ttl: config.turn_ttl,
        }
    });
    c
}

/// An IPv6 address goes in brackets in a URL.
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One embedded file of the web client.
fn asset(name: &str) -> Response {
    let Some(file) = WEB.get_file(name) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "webmanifest") => "application/json",
        _ => "application/octet-stream",
    };
    let headers = [
        (header::CONTENT_TYPE, kind),
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
             media-src 'self' blob: mediastream:; style-src 'self' 'unsafe-inline'; object-src 'none'; \
             frame-ancestors 'none'",
        ),
    ];
    (headers, file.contents()).into_response()
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let mut out = String::new();
    signaling::render_metrics(&app.hub, &mut out);
    if let Some(whip) = &app.whip {
        whip.render_metrics(&mut out);
    }
    if let Some(turn) = &app.turn {
        out.push_str(&crate::turn::metrics::render(turn));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn info(State(app): State<App>) -> impl IntoResponse {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "dev": app.config.dev,
        "signaling": natter_signaling::VERSION,
    }))
}

/// Refuses a WebSocket opened by a page of another origin (cross-site
/// WebSocket hijacking); clients that send no Origin are not browsers.
async fn websocket(State(app): State<App>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host != Some(host) {
            return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused\n").into_response();
        }
    }
    let App { hub, shutdown, .. } = app;
    upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME_READ)
        .on_upgrade(move |socket| signaling::session(hub, socket, shutdown))
}

/// `{"error": code, "message": text}` with a status.
fn api_error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": code, "message": message.to_string()}))).into_response()
}

/// Checks `Authorization: Bearer SECRET` in constant time; the refusal
/// if it is wrong.
fn unauthorized(app: &App, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = app.config.secret.as_bytes();
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected)
        .is_err()
        .then(|| {
            api_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authorization: Bearer <server secret> required",
            )
        })
}

/// Recording a room may be asked for with the server secret, with a
/// join token for that room (any participant), or by anyone in `--dev`.
fn unauthorized_for_room(app: &App, headers: &HeaderMap, room: &str) -> Option<Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let hub = app.hub.lock().unwrap_or_else(|e| e.into_inner());
    let config = hub.core.config();
    if config.dev || token.is_some_and(|t| config.token_key.verify(t, room, unix_now()).is_ok()) {
        return None;
    }
    drop(hub);
    unauthorized(app, headers)
}

async fn start_recording(State(app): State<App>, Path(room): Path<String>, headers: HeaderMap) -> Response {
    if let Some(denied) = unauthorized_for_room(&app, &headers, &room) {
        return denied;
    }
    match app.recordings.start(&app.hub, &room) {
        Ok(info) => (StatusCode::CREATED, Json(info)).into_response(),
        Err((status, code, message)) => api_error(status, code, message),
    }
}

async fn recording_status(State(app): State<App>, Path(room): Path<String>, headers: HeaderMap) -> Response {
    if let Some(denied) = unauthorized_for_room(&app, &headers, &room) {
        return denied;
    }
    match app.recordings.status(&room) {
        Some(info) => Json(info).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            "not-recording",
            format!("room {room} is not recorded"),
        ),
    }
}

async fn stop_recording(State(app): State<App>, Path(room): Path<String>, headers: HeaderMap) -> Response {
    if let Some(denied) = unauthorized_for_room(&app, &headers, &room) {
        return denied;
    }
    match app.recordings.stop(&app.hub, &room).await {
        Ok(done) => Json(done).into_response(),
        Err((status, code, message)) => api_error(status, code, message),
    }
}

fn api_status(e: &ApiError) -> (StatusCode, &'static str) {
    match e {
        ApiError::NoSuchRoom(_) => (StatusCode::NOT_FOUND, "no-such-room"),
        ApiError::RoomExists(_) => (StatusCode::CONFLICT, "room-exists"),
        ApiError::TooManyRooms => (StatusCode::SERVICE_UNAVAILABLE, "too-many-rooms"),
        ApiError::BadRoomName | ApiError::BadSize(_) | ApiError::BadName => (StatusCode::BAD_REQUEST, "bad-request"),
    }
}

/// A JSON request body; an empty body means every member is absent.
fn json_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> serde_json::Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateRoom {
    room: Option<String>,
    max_participants: Option<usize>,
}

async fn create_room(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    let request: CreateRoom = match json_body(&body) {
        Ok(r) => r,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "bad-request", e),
    };
    let created = app
        .hub
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .core
        .create_room(request.room.as_deref(), request.max_participants);
    match created {
        Ok(info) => (StatusCode::CREATED, Json(info)).into_response(),
        Err(e) => {
            let (status, code) = api_status(&e);
            api_error(status, code, e)
        }
    }
}

async fn list_rooms(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    let rooms = app.hub.lock().unwrap_or_else(|e| e.into_inner()).core.rooms();
    Json(rooms).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct MintToken {
    name: Option<String>,
    /// Seconds.
    ttl: Option<u64>,
}

async fn mint_token(State(app): State<App>, Path(room): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(denied) = unauthorized(&app, &headers) {
        return denied;
    }
    let request: MintToken = match json_body(&body) {
        Ok(r) => r,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, "bad-request", e),
    };
    let ttl = request.ttl.unwrap_or(3600);
    if ttl > MAX_TOKEN_TTL {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("ttl is at most {MAX_TOKEN_TTL}"),
        );
    }
    let minted = app.hub.lock().unwrap_or_else(|e| e.into_inner()).core.mint_token(
        &room,
        request.name.as_deref(),
        Duration::from_secs(ttl),
        unix_now(),
    );
    match minted {
        Ok(token) => {
            let scheme = if app.config.tls.is_some() { "https" } else { "http" };
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map_or_else(|| app.config.listen.to_string(), str::to_owned);
            let url = format!("{scheme}://{host}/?room={room}#token={token}");
            Json(json!({"token": token, "url": url})).into_response()
        }
        Err(e) => {
            let (status, code) = api_status(&e);
            api_error(status, code, e)
        }
    }
}
