//! WHIP ingest (RFC 9725) and WHEP egress (draft-ietf-wish-whep) into
//! the SFU rooms of `natter serve` (issue 14; docs/whip.md).
//!
//! A WHIP client POSTs an SDP offer of `sendonly` sections to
//! `/whip/{room}` and becomes a participant of the room without a socket
//! ([`natter_signaling::Signaling::join_external`]): the members see it
//! join under its token's name or `whip-N`, its media is published to
//! them as anyone's, and it receives nothing. A WHEP client POSTs
//! `recvonly` sections to `/whep/{room}` and its sections are receive
//! slots like a web client's: the room's publications fill them (at
//! `/whep/{room}/{participant}`, only that participant's). The
//! SFU's answer, its candidates written in, comes back in the 201 (RFC
//! 9725 §4.2) with the session's
//! `Location`, its `ETag` and the ICE servers as `Link` headers (§4.6).
//!
//! PATCH (§4.3.1) takes trickled candidates and answers 204: the SFU is
//! an ICE-lite agent, so the client's checks bring its addresses (RFC
//! 8445 §2.5) and the candidates themselves are not needed. A PATCH with
//! new ICE credentials restarts ICE (§4.3.2, [`restart`]): the SFU's
//! connection takes them and makes its own, which come back in a 200
//! with a new `ETag`, and media carries on over the same DTLS and SRTP
//! once the client's checks with them succeed. DELETE (§4.2) ends the session:
//! the room sees the participant leave and the SFU frees its connection.
//! So does a client that goes away without a DELETE, once the SFU's
//! connection to it fails (no ICE check or keepalive from it for the
//! consent timeout, RFC 7675 §5.1; `natter serve --sfu-consent-timeout-ms`).
//!
//! Not here: CORS for pages of other origins, redirects and load
//! balancing (§4.5).

mod answer;
mod request;
mod resource;
mod restart;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{to_bytes, Body};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::Router;
use natter_signaling::{ErrorCode, Refusal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::serve::signaling::SharedHub;
use crate::sfu::{Reply, Signal};
use request::{
    bearer_token, check_offer, if_match_allows, media_type_is, RequestError, Role, SdpFrag, MAX_BODY, SDP, SDP_FRAG,
};
use resource::{Resource, Resources};

/// RFC 5789 §3.1: the PATCH media types a resource takes.
const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");
/// The W3C LDP `Accept-Post` header (RFC 9725 §4.2's OPTIONS example).
const ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");
/// Longest wait for the SFU's answer to an offer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The WHIP and WHEP endpoints of one server.
#[derive(Clone)]
pub struct Whip {
    hub: SharedHub,
    resources: Arc<Mutex<Resources>>,
}

impl Whip {
    pub fn new(hub: SharedHub) -> Self {
        Whip {
            hub,
            resources: Arc::default(),
        }
    }

    /// `/whip/{room}` and `/whep/{room}` (POST, OPTIONS) and their
    /// sessions' resource URLs (PATCH, DELETE).
    pub fn routes(&self) -> Router {
        let endpoint = |role: Role| {
            let handler = move |state: State<Whip>, Path(room): Path<String>, headers: HeaderMap, body: Body| {
                offer(role, state, room, None, headers, body)
            };
            post(handler).options(options)
        };
        // POST /whep/{room}/{participant}: a player of that participant.
        let player_of =
            |state: State<Whip>, Path((room, who)): Path<(String, String)>, headers: HeaderMap, body: Body| {
                offer(Role::Player, state, room, Some(who), headers, body)
            };
        let session = |role: Role| {
            let trickled = move |state: State<Whip>, path: Path<(String, String)>, headers: HeaderMap, body: Body| {
                trickle(role, state, path, headers, body)
            };
            patch(trickled).delete(move |state: State<Whip>, path: Path<(String, String)>| end(role, state, path))
        };
        Router::new()
            .route("/whip/{room}", endpoint(Role::Publisher))
            .route("/whep/{room}", endpoint(Role::Player))
            .route("/whip/{room}/{resource}", session(Role::Publisher))
            .route("/whep/{room}/{resource}", session(Role::Player).post(player_of))
            .with_state(self.clone())
    }

    /// Takes the SFU's messages for WHIP and WHEP participants out of
    /// what the media worker sends signaling. A session whose connection
    /// failed (its client went away without a DELETE: ICE consent
    /// expired) ends as a DELETE would end it.
    pub async fn route_replies(self, mut from_worker: UnboundedReceiver<Reply>, to_signaling: UnboundedSender<Reply>) {
        while let Some(Reply { peer, signal }) = from_worker.recv().await {
            if signal == Signal::Closed {
                let gone = self.resources().remove_peer(&peer);
                if let Some(resource) = gone {
                    self.leave(&peer);
                    let protocol = resource.role.name();
                    tracing::debug!(room = %resource.room, %peer, protocol, "WHIP session ended: its connection failed");
                    continue;
                }
            }
            let rest = self.resources().take_reply(&peer, signal);
            if let Some(signal) = rest {
                let _ = to_signaling.send(Reply { peer, signal });
            }
        }
    }

    /// Prometheus text: open sessions by protocol, offers awaiting the SFU.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let (whip, whep, pending) = self.resources().counts();
        let _ = writeln!(
            out,
            "# HELP natter_whip_sessions Open WHIP and WHEP sessions\n# TYPE natter_whip_sessions gauge\n\
             natter_whip_sessions{{protocol=\"whip\"}} {whip}\nnatter_whip_sessions{{protocol=\"whep\"}} {whep}\n\
             # HELP natter_whip_pending Offers awaiting the SFU's answer\n# TYPE natter_whip_pending gauge\n\
             natter_whip_pending {pending}"
        );
    }

    fn resources(&self) -> MutexGuard<'_, Resources> {
        self.resources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends `peer`'s participation: the room sees it leave, the SFU frees
    /// its connection.
    fn leave(&self, peer: &str) {
        self.resources().forget(peer);
        let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        hub.core.leave_external(peer);
        hub.flush();
    }
}

/// A participant that has entered its room but whose session is not
/// created yet: if the request fails or its client goes away, it leaves.
struct Entered {
    whip: Whip,
    peer: String,
    created: bool,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if !self.created {
            self.whip.leave(&self.peer);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A refusal as text, the way RFC 9725's examples answer.
fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (status, headers, format!("{message}\n")).into_response()
}

fn request_error(e: &RequestError) -> Response {
    refuse(StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST), e)
}

/// The body, up to [`MAX_BODY`] bytes, once its `Content-Type` is `expected`.
async fn read_body(headers: &HeaderMap, body: Body, expected: &'static str) -> Result<Vec<u8>, RequestError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    media_type_is(content_type.unwrap_or(""), expected)?;
    let declared = (headers.get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(RequestError::TooLarge { limit: MAX_BODY });
    }
    // Also fails on a broken connection, which no one will read about.
    let bytes = to_bytes(body, MAX_BODY).await;
    bytes
        .map(Vec::from)
        .map_err(|_| RequestError::TooLarge { limit: MAX_BODY })
}

/// `Authorization: Bearer TOKEN` (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1); `Err` for another scheme.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ()> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(drop)?;
    bearer_token(value).map(Some).ok_or(())
}

/// RFC 9725 §4.5 and RFC 6750 §3: 401 with a `WWW-Authenticate` challenge.
fn unauthorized(message: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, message);
    let challenge = HeaderValue::from_static("Bearer realm=\"natter\"");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    response
}

fn refusal_response(refusal: &Refusal) -> Response {
    match refusal.code {
        ErrorCode::TokenRequired | ErrorCode::TokenInvalid | ErrorCode::TokenExpired => unauthorized(&refusal.message),
        ErrorCode::RoomFull => refuse(StatusCode::SERVICE_UNAVAILABLE, &refusal.message),
        _ => refuse(StatusCode::BAD_REQUEST, &refusal.message),
    }
}

/// POST of an offer (RFC 9725 §4.2): the participant enters the room, the
/// SFU answers, and the session is created. A WHEP player with a `source`
/// (the id or unique name of a participant of the room) receives only
/// that participant's media.
async fn offer(
    role: Role,
    State(whip): State<Whip>,
    room: String,
    source: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(token) = bearer(&headers) else {
        return unauthorized("Authorization must be Bearer <room token>");
    };
    let body = match read_body(&headers, body, SDP).await {
        Ok(body) => body,
        Err(e) => return request_error(&e),
    };
    let offer = match check_offer(role, &body) {
        Ok(offer) => offer,
        Err(e) => return request_error(&e),
    };
    let name = whip.resources().next_name(role);
    let (entered, turn) = {
        let mut hub = whip.hub.lock().unwrap_or_else(|e| e.into_inner());
        if !hub.core.config().sfu {
            return refuse(
                StatusCode::NOT_FOUND,
                "WHIP and WHEP need the SFU (natter serve without --mesh)",
            );
        }
        let publisher = source
            .as_deref()
            .map(|who| hub.core.find_participant(&room, who).map(str::to_owned));
        if let (Some(who), Some(None)) = (&source, &publisher) {
            let why = format!("no participant {who} in room {room} (its id, or a name no one else there has)");
            return refuse(StatusCode::NOT_FOUND, why);
        }
        let entered = hub.core.join_external(&room, token, &name, unix_now());
        hub.flush();
        (
            entered.map(|peer| (peer, publisher.flatten())),
            hub.core.config().turn.clone(),
        )
    };
    let (peer, publisher) = match entered {
        Ok(entered) => entered,
        Err(refusal) => return refusal_response(&refusal),
    };
    let mut entered = Entered {
        whip: whip.clone(),
        peer: peer.clone(),
        created: false,
    };
    let answered = whip.resources().wait_for_answer(&peer);
    {
        let mut hub = whip.hub.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(publisher) = &publisher {
            hub.core.play_external(&peer, publisher);
        }
        hub.core.offer_external(&peer, offer.sdp.clone());
        hub.flush();
    }
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, answered).await {
        Ok(Ok(Ok(sdp))) => sdp,
        Ok(Ok(Err(why))) => return refuse(StatusCode::BAD_REQUEST, format!("offer refused: {why}")),
        Ok(Err(_)) | Err(_) => {
            let why = format!("the SFU did not answer within {ANSWER_TIMEOUT:?}");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, why);
        }
    };
    let id = hex(&rand::random::<[u8; 16]>());
    let etag = new_etag();
    let location = format!("/{}/{room}/{id}", role.name().to_ascii_lowercase());
    let resource = Resource {
        role,
        room: room.clone(),
        peer: peer.clone(),
        etag: etag.clone(),
        ufrag: offer.ufrag,
        previous_ufrag: None,
        offer: offer.sdp,
    };
    whip.resources().insert(id, resource);
    entered.created = true;
    tracing::debug!(%room, %peer, protocol = role.name(), %location, "WHIP session created");
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    headers.insert(ACCEPT_PATCH, HeaderValue::from_static(SDP_FRAG));
    for (name, value) in [(header::LOCATION, location), (header::ETAG, etag)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if let Some(turn) = turn {
        for link in ice_server_links(&turn, &peer, unix_now()) {
            if let Ok(value) = HeaderValue::from_str(&link) {
                headers.append(header::LINK, value);
            }
        }
    }
    response
}

/// RFC 9725 §4.6: the STUN and TURN servers as `Link` headers with
/// `rel="ice-server"`, TURN with the participant's TURN REST credentials
/// (the same scheme signaling's `welcome` gives).
fn ice_server_links(turn: &natter_signaling::TurnService, peer: &str, unix: u64) -> Vec<String> {
    let (username, credential) = natter_turn::auth::rest_credentials(&turn.secret, peer, unix + turn.ttl.as_secs());
    let stun = (turn.stun_urls.iter()).map(|url| format!("<{url}>; rel=\"ice-server\""));
    let turn = turn.turn_urls.iter().map(|url| {
        format!("<{url}>; rel=\"ice-server\"; username=\"{username}\"; credential=\"{credential}\"; credential-type=\"password\"")
    });
    stun.chain(turn).collect()
}

/// A fresh entity-tag for a session's ICE state (RFC 9725 §4.3.1), quoted.
fn new_etag() -> String {
    format!("\"{}\"", hex(&rand::random::<[u8; 8]>()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session at this URL, if it is one of `role` in `room`.
fn session(whip: &Whip, role: Role, room: &str, id: &str) -> Option<Resource> {
    (whip.resources().get(id))
        .filter(|r| r.role == role && r.room == room)
        .cloned()
}

fn unknown(role: Role, room: &str, id: &str) -> Response {
    let path = format!("/{}/{room}/{id}", role.name().to_ascii_lowercase());
    refuse(StatusCode::NOT_FOUND, format!("no {} session at {path}", role.name()))
}

/// PATCH (RFC 9725 §4.3.1): trickled candidates get 204 (also late ones
/// of the generation before a restart); new ICE credentials restart ICE
/// (§4.3.2) and get 200 with the server's.
async fn trickle(
    role: Role,
    State(whip): State<Whip>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(resource) = session(&whip, role, &room, &id) else {
        return unknown(role, &room, &id);
    };
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    if if_match.is_some_and(|tag| !if_match_allows(tag, &resource.etag)) {
        return refuse(
            StatusCode::PRECONDITION_FAILED,
            format!("If-Match does not match the session's ETag {}", resource.etag),
        );
    }
    let frag = match read_body(&headers, body, SDP_FRAG).await {
        Ok(body) => SdpFrag::parse(&body),
        Err(e) => Err(e),
    };
    let frag = match frag {
        Ok(frag) => frag,
        Err(e) => return request_error(&e),
    };
    let known = |ufrag: &String| [&resource.ufrag, &resource.previous_ufrag].contains(&&Some(ufrag.clone()));
    match (frag.ufrag, frag.pwd) {
        (Some(ufrag), Some(pwd)) if !known(&ufrag) => restart_ice(&whip, &id, &resource, ufrag, &pwd).await,
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// An ICE restart (RFC 9725 §4.3.2): the session's offer with the
/// client's new credentials goes to the SFU, whose answer restarts ICE on
/// its connection (new local credentials, RFC 8445 §9); its credentials
/// and candidates come back as an SDP fragment with a new `ETag`.
async fn restart_ice(whip: &Whip, id: &str, resource: &Resource, ufrag: String, pwd: &str) -> Response {
    let offer = restart::restarted_offer(&resource.offer, &ufrag, pwd);
    let peer = &resource.peer;
    let answered = whip.resources().wait_for_answer(peer);
    {
        let mut hub = whip.hub.lock().unwrap_or_else(|e| e.into_inner());
        hub.core.offer_external(peer, offer.clone());
        hub.flush();
    }
    let answer = match tokio::time::timeout(ANSWER_TIMEOUT, answered).await {
        Ok(Ok(Ok(sdp))) => sdp,
        Ok(Ok(Err(why))) => {
            whip.resources().stop_waiting(peer);
            return refuse(StatusCode::BAD_REQUEST, format!("ICE restart refused: {why}"));
        }
        Ok(Err(_)) | Err(_) => {
            whip.resources().stop_waiting(peer);
            let why = format!("the SFU did not answer the ICE restart within {ANSWER_TIMEOUT:?}");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, why);
        }
    };
    let Some(fragment) = restart::answer_fragment(&answer) else {
        return refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the SFU's answer has no ICE credentials",
        );
    };
    let etag = new_etag();
    if !whip.resources().restarted(id, etag.clone(), ufrag, offer) {
        return unknown(resource.role, &resource.room, id);
    }
    tracing::debug!(room = %resource.room, %peer, protocol = resource.role.name(), "WHIP session restarted ICE");
    let mut response = (StatusCode::OK, fragment).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP_FRAG));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

/// DELETE (RFC 9725 §4.2): the session ends and its participant leaves.
async fn end(role: Role, State(whip): State<Whip>, Path((room, id)): Path<(String, String)>) -> Response {
    if session(&whip, role, &room, &id).is_none() {
        return unknown(role, &room, &id);
    }
    let Some(resource) = whip.resources().remove(&id) else {
        return unknown(role, &room, &id);
    };
    whip.leave(&resource.peer);
    tracing::debug!(%room, peer = %resource.peer, protocol = role.name(), "WHIP session ended");
    StatusCode::OK.into_response()
}

/// OPTIONS of an endpoint (RFC 9725 §4.2, RFC 9110 §9.3.7): what it takes.
async fn options() -> Response {
    let headers = [(header::ALLOW, "OPTIONS, POST"), (ACCEPT_POST, SDP)];
    (StatusCode::NO_CONTENT, headers).into_response()
}
