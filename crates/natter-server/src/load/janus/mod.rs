//! `natter load --janus`: the same synthetic participants against Janus
//! VideoRoom (Janus 1.x over its HTTP REST transport), so that
//! bench/sfu-vs-janus puts one load on natter serve and on Janus.
//!
//! Janus gives a publisher and a subscriber a peer connection each, so a
//! participant here has two, each on a socket of its own. The publisher
//! offers what participant.rs's does (VP8, simulcast or one layer as
//! `--layers` says, and Opus, [`media`](super::media)) in a
//! `joinandconfigure`; the subscriber joins once the publishers it
//! expects are in the room, one stream per feed on one connection
//! (Janus 1.x multistream; of a simulcast feed, the top substream),
//! takes Janus's offer and answers with `start`. Events come by
//! long-poll `GET` on the session; a keepalive goes every [`KEEPALIVE`]. Reports are `stats` values of the shape
//! participant.rs sends, keyed by the publishers' display names.
//!
//! Everything Janus sends is checked ([`reply`]): a reply or event
//! without the fields named there is an error
//! ([`reply::JanusError`]), never a panic.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use natter::peer::{Description, MediaKind, SdpType, TransceiverId, Transport};
use natter::{PeerConnection, PeerEvent};
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::media::{Frames, Layer, AUDIO_INTERVAL, FRAME_RATE};
use super::participant::{connection, publishing, Params};

mod reply;
use reply::{message_reply, parse_event, parse_reply, poll_events, publishers, success_id, Event, ROOM_EXISTS};

/// Janus ends a session after 60 s without a request (its default
/// `session_timeout`); a long-poll counts, a keepalive makes sure.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// How long a subscriber waits for the publishers it expects before it
/// subscribes to those there are.
const GATHER: Duration = Duration::from_secs(30);
/// How often a subscriber asks who publishes while it waits.
const LIST_EVERY: Duration = Duration::from_millis(500);
/// A request's reply; a long-poll holds up to 30 s (Janus's default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_TIMEOUT: Duration = Duration::from_secs(45);

/// Janus's numeric room id for `--room`: FNV-1a (64 bit), kept within
/// JSON's exact integers (2^53).
fn room_id(name: &str) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash & ((1 << 53) - 1)).max(1)
}

/// The REST endpoint, `http://HOST:PORT/PATH`: one HTTP/1.1 connection
/// per request.
#[derive(Clone)]
struct Rest {
    host: String,
    port: u16,
    authority: String,
    base: String,
}

impl Rest {
    fn new(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url:?}: Janus's REST transport takes http:// URLs"));
        }
        let authority = uri.authority().ok_or_else(|| format!("{url:?}: no host"))?;
        Ok(Rest {
            host: authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            base: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    async fn request(&self, path: &str, body: Option<Value>, timeout: Duration) -> Result<Value, String> {
        let exchange = async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.authority))?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            let builder = hyper::Request::builder()
                .method(if body.is_some() { "POST" } else { "GET" })
                .uri(format!("{}{path}", self.base))
                .header(hyper::header::HOST, self.authority.as_str())
                .header(hyper::header::CONTENT_TYPE, "application/json");
            let bytes = body.map(|b| b.to_string()).unwrap_or_default();
            let request = builder.body(Full::new(Bytes::from(bytes))).map_err(|e| e.to_string())?;
            let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            parse_reply(&body).map_err(|e| e.to_string())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("no reply from Janus in {timeout:?}"))?
    }

    async fn post(&self, path: &str, mut body: Value) -> Result<Value, String> {
        body["transaction"] = json!(transaction());
        self.request(path, Some(body), REQUEST_TIMEOUT).await
    }

    /// A VideoRoom request on `handle`; the plugin's data for a
    /// synchronous one, `None` for an asynchronous one (`ack`).
    async fn message(
        &self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Option<Value>, String> {
        let mut message = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let reply = self.post(&format!("/{session}/{handle}"), message).await?;
        message_reply(&reply).map(|d| d.cloned()).map_err(|e| e.to_string())
    }

    async fn attach(&self, session: u64) -> Result<u64, String> {
        let reply = self
            .post(
                &format!("/{session}"),
                json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}),
            )
            .await?;
        success_id(&reply).map_err(|e| e.to_string())
    }

    /// Sends `body` without waiting for the reply (a keepalive).
    fn fire(&self, path: String, body: Value) {
        let rest = self.clone();
        tokio::spawn(async move {
            if let Err(e) = rest.post(&path, body).await {
                tracing::debug!(error = %e, "Janus request failed");
            }
        });
    }
}

fn transaction() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The publishing connection: what participant.rs's call sends, on a
/// connection of its own.
struct Publisher {
    pc: PeerConnection,
    start: Instant,
    video: TransceiverId,
    audio: TransceiverId,
    layers: &'static [Layer],
    frames: Frames,
    keyframe_due: [bool; 3],
    due: Option<(Instant, Instant)>,
}

impl Publisher {
    fn new(name: &str, local: SocketAddr, layers: &'static [Layer], now: Instant) -> Result<Self, natter::PeerError> {
        let (pc, video, audio) = publishing(local, layers, now)?;
        Ok(Publisher {
            pc,
            start: now,
            video,
            audio,
            layers,
            frames: Frames::new(name, layers),
            keyframe_due: [true; 3],
            due: None,
        })
    }

    /// A video frame of each layer and an Opus frame when due, once
    /// Janus answered.
    fn send(&mut self, now: Instant) {
        let Some((video_at, audio_at)) = self.due else { return };
        let at = now - self.start;
        let mut next = (video_at, audio_at);
        if video_at <= now {
            let simulcast = self.layers.len() > 1;
            for (i, (layer, key)) in self.layers.iter().zip(&mut self.keyframe_due).enumerate() {
                let frame = self.frames.video(i, *key);
                let sent = if simulcast {
                    self.pc.send_frame_rid(self.video, layer.rid, at, frame)
                } else {
                    self.pc.send_frame(self.video, at, frame)
                };
                *key &= sent.is_err();
            }
            next.0 = (video_at + Duration::from_secs(1) / FRAME_RATE).max(now);
        }
        if audio_at <= now {
            let _ = self.pc.send_frame(self.audio, at, self.frames.audio());
            next.1 = (audio_at + AUDIO_INTERVAL).max(now);
        }
        self.due = Some(next);
    }
}

/// The subscribing connection and which publisher each mid carries.
struct Subscriber {
    pc: PeerConnection,
    feeds: HashMap<String, String>,
}

/// Frames per publisher (display name): (video, audio).
#[derive(Default, Clone)]
struct Counts {
    frames: HashMap<String, (u64, u64)>,
    packets: u64,
    lost: i64,
    /// Datagrams our sockets refused (a full send buffer).
    send_drops: u64,
    /// What we published: RTP packets sent, and the loss Janus's
    /// receiver reports state (RFC 3550 §6.4.1): loss on the way in.
    sent: u64,
    remote_lost: i64,
}

/// One participant; `publishers` of natter load's participants publish
/// in all, and it subscribes to as many as `params.slots` of the others.
pub async fn run(name: String, params: Params, publishers: usize, reports: mpsc::UnboundedSender<Value>) {
    let report = |value: Value| {
        let _ = reports.send(value);
    };
    let expect = params.slots.min(publishers.saturating_sub(usize::from(params.publish)));
    if let Err(e) = drive(&name, &params, expect, params.publish, &report).await {
        report(json!({"event": "closed", "participant": name, "error": e}));
    }
}

async fn drive(
    name: &str,
    params: &Params,
    expect: usize,
    publish: bool,
    report: &impl Fn(Value),
) -> Result<(), String> {
    let rest = Rest::new(&params.config.url)?;
    let room = room_id(params.config.room.as_deref().unwrap_or("load"));
    let sockets = [bind(params).await?, bind(params).await?];
    let locals = [local(&sockets[0])?, local(&sockets[1])?];
    let session = success_id(&rest.post("", json!({"janus": "create"})).await?).map_err(|e| e.to_string())?;
    let result = session_loop(
        name, params, expect, publish, report, &rest, session, room, &sockets, locals,
    )
    .await;
    let _ = rest.post(&format!("/{session}"), json!({"janus": "destroy"})).await;
    result?;
    report(json!({"event": "left", "participant": name}));
    Ok(())
}

async fn bind(params: &Params) -> Result<UdpSocket, String> {
    UdpSocket::bind((params.address, 0)).await.map_err(|e| e.to_string())
}

fn local(socket: &UdpSocket) -> Result<SocketAddr, String> {
    socket.local_addr().map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn session_loop(
    name: &str,
    params: &Params,
    expect: usize,
    publish: bool,
    report: &impl Fn(Value),
    rest: &Rest,
    session: u64,
    room: u64,
    sockets: &[UdpSocket; 2],
    locals: [SocketAddr; 2],
) -> Result<(), String> {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = tokio::spawn(long_poll(rest.clone(), session, events_tx));
    let _stop_polling = AbortOnDrop(poller);
    let publisher_handle = rest.attach(session).await?;
    // Janus 1.1.2 (Debian) corrupts its heap (glib's slice allocator
    // aborts) within a second of natter load's media when these
    // extensions are negotiated; without them it runs.
    let create = json!({"request": "create", "room": room, "publishers": 1000, "bitrate": 0, "videocodec": "vp8", "audiocodec": "opus",
        "audiolevel_ext": false, "videoorient_ext": false, "playoutdelay_ext": false, "transport_wide_cc_ext": false});
    match rest.message(session, publisher_handle, create, None).await {
        Err(e) if e.contains(&format!("error {ROOM_EXISTS}:")) => {}
        other => {
            other?;
        }
    }
    let started = Instant::now();
    let mut publisher = None;
    if publish {
        let mut p = Publisher::new(name, locals[0], params.layers, started).map_err(|e| e.to_string())?;
        let offer = p.pc.create_offer().map_err(|e| e.to_string())?;
        p.pc.set_local_description(&offer).map_err(|e| e.to_string())?;
        let join = json!({"request": "joinandconfigure", "ptype": "publisher", "room": room, "display": name});
        let sdp = described(&mut p.pc, &offer, (name, "publisher"), report);
        // Janus takes a=simulcast's RIDs as highest first unless told
        // (its `rid_order`); ours are lowest first (RFC 8853 leaves the
        // order to the application, docs/signaling.md asks for this one).
        let jsep = json!({"type": "offer", "sdp": sdp, "rid_order": "lmh"});
        rest.message(session, publisher_handle, join, Some(jsep)).await?;
        publisher = Some(p);
    }
    report(json!({"event": "joined", "participant": name, "id": session.to_string()}));
    let subscriber_handle = rest.attach(session).await?;
    let mut subscriber: Option<Subscriber> = None;
    let mut subscribed = expect == 0;
    let mut next_list = started;
    let mut next_keepalive = started + KEEPALIVE;
    let mut next_report = started + params.interval;
    let (mut last, mut last_report) = (Counts::default(), started);
    let mut counts = Counts::default();
    let mut buf = Vec::with_capacity(2048);
    let (mut datagram, mut datagram2) = (vec![0u8; 2048], vec![0u8; 2048]);
    loop {
        let pcs = publisher.iter().map(|p| &p.pc).chain(subscriber.iter().map(|s| &s.pc));
        let media = publisher.as_ref().and_then(|p| p.due).map(|(v, a)| v.min(a));
        let wake = (pcs.filter_map(PeerConnection::poll_timeout).chain(media))
            .chain([next_report, next_keepalive])
            .chain((!subscribed).then_some(next_list))
            .chain(params.until)
            .min()
            .unwrap_or(next_report);
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return Err("Janus's long-poll ended".to_owned()) };
                let (sender, event) = event?;
                let now = Instant::now();
                match event {
                    Event::Answer(sdp) if sender == publisher_handle => {
                        if let Some(p) = publisher.as_mut() {
                            p.pc.set_remote_description(&Description { kind: SdpType::Answer, sdp }).map_err(|e| e.to_string())?;
                            p.due = Some((now, now));
                        }
                    }
                    Event::Offer { sdp, feeds } if sender == subscriber_handle => {
                        let mut pc = connection(locals[1], now).map_err(|e| e.to_string())?;
                        pc.set_remote_description(&Description { kind: SdpType::Offer, sdp }).map_err(|e| e.to_string())?;
                        let answer = pc.create_answer().map_err(|e| e.to_string())?;
                        pc.set_local_description(&answer).map_err(|e| e.to_string())?;
                        for (mid, feed) in &feeds {
                            report(json!({"event": "track", "participant": name, "mid": mid, "peer": feed, "name": feed}));
                        }
                        let jsep = json!({"type": "answer", "sdp": described(&mut pc, &answer, (name, "subscriber"), report)});
                        subscriber = Some(Subscriber { pc, feeds: feeds.into_iter().collect() });
                        rest.message(session, subscriber_handle, json!({"request": "start"}), Some(jsep)).await?;
                    }
                    Event::Hangup(reason) => return Err(format!("Janus hung up handle {sender}: {reason}")),
                    _ => {}
                }
            }
            received = sockets[0].recv_from(&mut datagram) => {
                if let (Ok((size, source)), Some(p)) = (received, publisher.as_mut()) {
                    p.pc.handle_receive(Instant::now(), Transport::Udp, source, locals[0], &datagram[..size]);
                }
            }
            received = sockets[1].recv_from(&mut datagram2) => {
                if let (Ok((size, source)), Some(s)) = (received, subscriber.as_mut()) {
                    s.pc.handle_receive(Instant::now(), Transport::Udp, source, locals[1], &datagram2[..size]);
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        if params.until.is_some_and(|until| now >= until) {
            return Ok(());
        }
        if !subscribed && now >= next_list {
            next_list = now + LIST_EVERY;
            let list = rest
                .message(
                    session,
                    subscriber_handle,
                    json!({"request": "listparticipants", "room": room}),
                    None,
                )
                .await?;
            let others: Vec<(u64, String)> = publishers(&list.unwrap_or_default())
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|(_, display)| display != name)
                .take(expect)
                .collect();
            if others.len() >= expect || (now - started >= GATHER && !others.is_empty()) {
                let streams: Vec<Value> = others
                    .iter()
                    .map(|(id, _)| feed_stream(*id, params.layers.len()))
                    .collect();
                let join = json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams});
                rest.message(session, subscriber_handle, join, None).await?;
                subscribed = true;
            }
        }
        if now >= next_keepalive {
            next_keepalive = now + KEEPALIVE;
            rest.fire(format!("/{session}"), json!({"janus": "keepalive"}));
        }
        if let Some(p) = publisher.as_mut() {
            p.send(now);
            counts.send_drops += drive_pc(&mut p.pc, now, &sockets[0], &mut buf);
            while let Some(event) = p.pc.poll_event() {
                match event {
                    PeerEvent::KeyframeRequest { transceiver, rid } if transceiver == p.video => {
                        for (due, layer) in p.keyframe_due.iter_mut().zip(p.layers) {
                            *due |= rid.as_deref().is_none_or(|rid| rid == layer.rid);
                        }
                    }
                    event => other_event(name, "publisher", event, report),
                }
            }
        }
        if let Some(s) = subscriber.as_mut() {
            counts.send_drops += drive_pc(&mut s.pc, now, &sockets[1], &mut buf);
            while let Some(event) = s.pc.poll_event() {
                let PeerEvent::MediaFrame(frame) = event else {
                    other_event(name, "subscriber", event, report);
                    continue;
                };
                let transceiver = s.pc.transceivers().iter().find(|t| t.id() == frame.transceiver);
                let Some(t) = transceiver else { continue };
                let Some(feed) = t.mid().and_then(|mid| s.feeds.get(mid)) else {
                    continue;
                };
                let entry = counts.frames.entry(feed.clone()).or_default();
                if t.kind() == MediaKind::Audio {
                    entry.1 += 1;
                } else {
                    entry.0 += 1;
                }
            }
        }
        if now >= next_report {
            next_report = now + params.interval;
            if let Some(s) = &subscriber {
                let stats = s.pc.stats();
                counts.packets = stats.receivers.iter().map(|(_, r)| r.packets_received).sum();
                counts.lost = stats.receivers.iter().map(|(_, r)| r.packets_lost).sum();
            }
            if let Some(p) = &publisher {
                let stats = p.pc.stats();
                counts.sent = stats.senders.iter().map(|(_, s)| s.counters.packets_sent).sum();
                counts.remote_lost = stats.senders.iter().map(|(_, s)| s.counters.remote_packets_lost).sum();
            }
            report(stats(name, &counts, &last, now - last_report));
            (last, last_report) = (counts.clone(), now);
        }
    }
}

/// A subscriber's stream of feed `id`: of a simulcast feed (`layers`
/// more than 1), the top substream, as an SFU forwards to a subscriber
/// with bandwidth to spare.
fn feed_stream(id: u64, layers: usize) -> Value {
    if layers > 1 {
        json!({"feed": id, "substream": layers - 1})
    } else {
        json!({"feed": id})
    }
}

/// Timers due, then every datagram out; a full socket buffer drops, as
/// the network would. How many it dropped.
fn drive_pc(pc: &mut PeerConnection, now: Instant, socket: &UdpSocket, buf: &mut Vec<u8>) -> u64 {
    if pc.poll_timeout().is_some_and(|t| t <= now) {
        pc.handle_timeout(now);
    }
    let mut dropped = 0;
    while let Some(transmit) = pc.poll_transmit(now, 1, buf) {
        dropped += u64::from(socket.try_send_to(&buf[..transmit.size], transmit.destination).is_err());
    }
    dropped
}

/// A connection's state changes are reported; its candidates went in
/// its description ([`described`]).
fn other_event(name: &str, role: &str, event: PeerEvent, report: &impl Fn(Value)) {
    if let PeerEvent::ConnectionStateChange(state) = event {
        report(json!({"event": "connection", "participant": name, "role": role, "state": state.name()}));
    }
}

/// `description`, just set as `pc`'s local one, with `pc`'s candidates
/// and `a=end-of-candidates` in every media section (RFC 8839 §5.1,
/// §5.2): Janus learns them with the description, and no trickle
/// requests load it during the run.
fn described(pc: &mut PeerConnection, description: &Description, who: (&str, &str), report: &impl Fn(Value)) -> String {
    let mut candidates = Vec::new();
    while let Some(event) = pc.poll_event() {
        if let PeerEvent::IceCandidate(c) = event {
            candidates.push(c.candidate);
        } else {
            other_event(who.0, who.1, event, report);
        }
    }
    with_candidates(&description.sdp, &candidates)
}

fn with_candidates(sdp: &str, candidates: &[String]) -> String {
    let mut block = String::new();
    for c in candidates {
        block.push_str(&format!("a={c}\r\n"));
    }
    block.push_str("a=end-of-candidates\r\n");
    let mut out = String::with_capacity(sdp.len() + 4 * block.len());
    let mut in_media = false;
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            if in_media {
                out.push_str(&block);
            }
            in_media = true;
        }
        out.push_str(line);
    }
    if in_media {
        if !out.ends_with('\n') {
            out.push_str("\r\n");
        }
        out.push_str(&block);
    }
    out
}

/// The `stats` report participant.rs sends: rates since `last`.
fn stats(name: &str, now: &Counts, last: &Counts, elapsed: Duration) -> Value {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let per_second = |n: u64| (n as f64 / seconds * 10.0).round() / 10.0;
    let (mut video_fps, mut audio_fps) = (serde_json::Map::new(), serde_json::Map::new());
    for (feed, (video, audio)) in &now.frames {
        let (video_before, audio_before) = last.frames.get(feed).copied().unwrap_or_default();
        video_fps.insert(feed.clone(), per_second(video.saturating_sub(video_before)).into());
        audio_fps.insert(feed.clone(), per_second(audio.saturating_sub(audio_before)).into());
    }
    let packets = now.packets.saturating_sub(last.packets);
    let lost = (now.lost - last.lost).max(0) as u64;
    let loss = if packets + lost == 0 {
        0.0
    } else {
        lost as f64 * 100.0 / (packets + lost) as f64
    };
    json!({
        "event": "stats",
        "participant": name,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "publishers": now.frames.values().filter(|(video, _)| *video > 0).count(),
        "video_fps": video_fps,
        "audio_fps": audio_fps,
        "packets_per_second": (packets as f64 / seconds).round(),
        "loss_percent": (loss * 100.0).round() / 100.0,
        "misrouted": 0,
        "send_drops": now.send_drops,
        "sent_per_second": (now.sent.saturating_sub(last.sent) as f64 / seconds).round(),
        "remote_lost": now.remote_lost,
        "video_frames": now.frames.values().map(|(video, _)| video).sum::<u64>(),
    })
}

/// Long-polls the session until the receiver goes or a poll fails.
async fn long_poll(rest: Rest, session: u64, events: mpsc::UnboundedSender<Result<(u64, Event), String>>) {
    loop {
        let batch = rest.request(&format!("/{session}?maxev=10"), None, POLL_TIMEOUT).await;
        let parsed = batch.and_then(|reply| poll_events(reply).map_err(|e| e.to_string()));
        let list = match parsed {
            Ok(list) => list,
            Err(e) => {
                let _ = events.send(Err(e));
                return;
            }
        };
        for event in &list {
            if events.send(parse_event(event).map_err(|e| e.to_string())).is_err() {
                return;
            }
        }
    }
}

/// Ends the long-poll task with the participant.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_are_exact_json_integers() {
        for name in ["", "load", "a-much-longer-room-name-than-usual"] {
            let id = room_id(name);
            assert!((1..1 << 53).contains(&id), "{name}: {id}");
        }
        assert_eq!(room_id("load"), room_id("load"));
        assert_ne!(room_id("load"), room_id("load2"));
    }

    #[test]
    fn candidates_end_every_media_section() {
        let sdp =
            "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1";
        let c = "candidate:1 1 udp 2122317823 198.18.0.2 5000 typ host".to_owned();
        let out = with_candidates(sdp, &[c]);
        let block = "a=candidate:1 1 udp 2122317823 198.18.0.2 5000 typ host\r\na=end-of-candidates\r\n";
        assert_eq!(out.matches(block).count(), 2, "{out}");
        assert!(out.contains(&format!("a=mid:0\r\n{block}m=audio")), "{out}");
        assert!(out.ends_with(&format!("a=mid:1\r\n{block}")), "{out}");
        assert_eq!(with_candidates("v=0\r\ns=-\r\n", &[]), "v=0\r\ns=-\r\n");
    }

    #[test]
    fn simulcast_feeds_ask_for_the_top_substream() {
        assert_eq!(feed_stream(7, 3), json!({"feed": 7, "substream": 2}));
        assert_eq!(feed_stream(7, 1), json!({"feed": 7}));
    }

    #[test]
    fn rest_urls_are_http_with_a_host() {
        let rest = Rest::new("http://198.18.0.1:8088/janus/").map_err(|e| e.to_string());
        assert!(rest
            .as_ref()
            .is_ok_and(|r| r.port == 8088 && r.base == "/janus" && r.host == "198.18.0.1"));
        assert!(Rest::new("https://h/janus").is_err());
        assert!(Rest::new("ws://h:8188").is_err());
        assert!(Rest::new("not a url").is_err());
    }
}
