//! One synthetic participant: an [`SfuClient`] for signaling, a natter
//! [`PeerConnection`] in frame mode on a UDP socket of its own, on one
//! of `natter load`'s threads (a task of its current-thread runtime).
//!
//! Each has its own socket because the SFU, an ICE-lite agent (RFC 8445
//! §2.5), tells connections apart by the address their checks came from:
//! many connections of one client cannot share a 5-tuple.
//!
//! It offers a simulcast video track, an audio track and `slots` receive
//! sections of each kind; counts what arrives per publisher (the `track`
//! messages say which section carries whom) and reports as JSON values
//! on a channel: `track`, `keyframe` (the first video keyframe from a
//! publisher, and how long after the answer or its `track` it came),
//! `stats` every interval, `peer-left`, `reconnecting`, `rejoined`,
//! `closed`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter::peer::{Description, Direction, MediaKind, SdpType, TransceiverId, Transport};
use natter::{PeerConfig, PeerConnection, PeerEvent};
use natter_client::sfu::{SfuClient, SfuEvent, Slots};
use natter_client::ClientConfig;
use serde_json::{json, Value};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::media::{self, Frames, Layer, AUDIO_INTERVAL, FRAME_RATE};

/// What one participant is told to do.
pub struct Params {
    pub config: ClientConfig,
    pub address: IpAddr,
    pub slots: usize,
    pub interval: Duration,
    pub until: Option<Instant>,
    /// Sends media; false: only subscribes (`--publishers`).
    pub publish: bool,
    /// The video layers it sends (`--layers`): simulcast when more than one.
    pub layers: &'static [Layer],
    /// Janus VideoRoom instead of `natter serve` (`--janus`): how many
    /// participants publish in all ([`super::janus`]).
    pub janus: Option<usize>,
}

/// What arrived from one publisher.
#[derive(Default, Clone, Copy)]
struct Received {
    video_frames: u64,
    audio_frames: u64,
    keyframe_seen: bool,
    /// Its frames end with its id ([`media::publisher`]): it is one of
    /// natter load's, not a browser.
    marked: bool,
    /// When its `track` came (or our answer, if later).
    since: Option<Instant>,
}

/// A connection on `local` whose candidates are all gathered.
pub(super) fn connection(local: SocketAddr, now: Instant) -> Result<PeerConnection, natter::PeerError> {
    let mut pc = PeerConnection::new(PeerConfig::default(), now)?;
    pc.add_local_address(local)?;
    pc.end_of_local_addresses();
    Ok(pc)
}

/// A [`connection`] that publishes natter load's media: VP8 in `layers`
/// (simulcast when more than one) and Opus. (connection, video, audio)
pub(super) fn publishing(
    local: SocketAddr,
    layers: &'static [Layer],
    now: Instant,
) -> Result<(PeerConnection, TransceiverId, TransceiverId), natter::PeerError> {
    let mut pc = connection(local, now)?;
    let video = if let [_] = layers {
        pc.add_track(MediaKind::Video)?
    } else {
        let rids: Vec<&str> = layers.iter().map(|l| l.rid).collect();
        pc.add_simulcast_track(MediaKind::Video, &rids)?
    };
    let audio = pc.add_track(MediaKind::Audio)?;
    Ok((pc, video, audio))
}

/// Our connection to the SFU, made anew after each fresh `welcome`.
struct Call {
    pc: PeerConnection,
    start: Instant,
    id: String,
    video: TransceiverId,
    audio: TransceiverId,
    layers: &'static [Layer],
    frames: Frames,
    answered: Option<Instant>,
    /// Which publisher each section carries, from `track`.
    slots: Slots,
    /// Section mid -> when its last `track` message came.
    changed: HashMap<String, Instant>,
    /// Per simulcast layer: a keyframe is due.
    keyframe_due: [bool; 3],
    next_video: Instant,
    next_audio: Instant,
}

impl Call {
    fn new(
        id: String,
        local: SocketAddr,
        slots: usize,
        layers: &'static [Layer],
        now: Instant,
    ) -> Result<Self, natter::PeerError> {
        let (mut pc, video, audio) = publishing(local, layers, now)?;
        for _ in 0..slots {
            pc.add_transceiver(MediaKind::Video, Direction::RecvOnly)?;
            pc.add_transceiver(MediaKind::Audio, Direction::RecvOnly)?;
        }
        Ok(Call {
            pc,
            start: now,
            frames: Frames::new(&id, layers),
            layers,
            id,
            video,
            audio,
            answered: None,
            slots: Slots::default(),
            changed: HashMap::new(),
            keyframe_due: [true; 3],
            next_video: now,
            next_audio: now,
        })
    }

    /// The next timer of the connection, and of our media if we publish
    /// (a subscriber's media times never advance: counting them would spin).
    fn next_wake(&self, publish: bool) -> Option<Instant> {
        let media = (self.answered.filter(|_| publish)).map(|_| self.next_video.min(self.next_audio));
        self.pc.poll_timeout().into_iter().chain(media).min()
    }

    /// Sends the frames that are due; they fail (and are skipped) until
    /// DTLS connects.
    fn send_media(&mut self, now: Instant) {
        if self.answered.is_none() {
            return;
        }
        let media_time = now - self.start;
        if now >= self.next_video {
            self.next_video += Duration::from_secs(1) / FRAME_RATE;
            let simulcast = self.layers.len() > 1;
            for (i, layer) in self.layers.iter().enumerate() {
                let key = self.keyframe_due[i];
                let frame = self.frames.video(i, key);
                let sent = if simulcast {
                    self.pc.send_frame_rid(self.video, layer.rid, media_time, frame)
                } else {
                    self.pc.send_frame(self.video, media_time, frame)
                };
                if sent.is_ok() {
                    self.keyframe_due[i] = false;
                }
            }
            // A late timer sends once, not a burst.
            self.next_video = self.next_video.max(now);
        }
        if now >= self.next_audio {
            self.next_audio = (self.next_audio + AUDIO_INTERVAL).max(now);
            let _ = self.pc.send_frame(self.audio, media_time, self.frames.audio());
        }
    }
}

/// How far apart a slot's `track` message and media of its new
/// publisher may arrive: they take different paths (signaling over TCP,
/// media over UDP), so frames of the previous publisher may follow the
/// message, and the new one's precede it.
const SLOT_CHANGE: Duration = Duration::from_millis(500);

/// Counters between two reports, and since the start.
#[derive(Default)]
struct Totals {
    received: HashMap<String, Received>,
    /// Frames not from their slot's publisher, further than
    /// [`SLOT_CHANGE`] from a change of the slot.
    misrouted: u64,
    /// Frames not from their slot's publisher (section mid, when), not
    /// yet explained by a change of the slot.
    suspects: Vec<(String, Instant)>,
    packets: u64,
    lost: i64,
    /// Datagrams our socket refused (a full send buffer): the load
    /// generator, not the server, dropped them.
    send_drops: u64,
    /// RTP packets we sent, and the loss the SFU's receiver reports
    /// state (RFC 3550 §6.4.1): loss on the way in.
    sent: u64,
    remote_lost: i64,
}

pub async fn run(name: String, params: Params, reports: mpsc::UnboundedSender<Value>) {
    if let Some(publishers) = params.janus {
        return super::janus::run(name, params, publishers, reports).await;
    }
    let report = |value: Value| {
        let _ = reports.send(value);
    };
    if let Err(e) = drive(&name, params, &report).await {
        report(json!({"event": "closed", "participant": name, "error": e}));
    }
}

async fn drive(name: &str, params: Params, report: &impl Fn(Value)) -> Result<(), String> {
    let socket = UdpSocket::bind((params.address, 0)).await.map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let (client, mut events) = SfuClient::join(&params.config).await.map_err(|e| e.to_string())?;
    let mut call: Option<Call> = None;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut totals = Totals::default();
    let mut last = Totals::default();
    let started = Instant::now();
    let mut next_report = started + params.interval;
    let mut last_report = started;
    let mut buf = Vec::with_capacity(2048);
    let mut datagram = vec![0u8; 2048];
    loop {
        let wake = (call.as_ref().and_then(|c| c.next_wake(params.publish)).into_iter())
            .chain([next_report])
            .chain(params.until)
            .min()
            .unwrap_or(next_report);
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return Err("signaling ended".to_owned()) };
                let now = Instant::now();
                match event {
                    SfuEvent::Joined { id, resumed, .. } => {
                        if resumed && call.is_some() {
                            continue;
                        }
                        if call.is_some() {
                            report(json!({"event": "rejoined", "participant": name, "id": id}));
                        }
                        totals.received.clear();
                        let mut fresh = Call::new(id, local, params.slots, params.layers, now).map_err(|e| e.to_string())?;
                        let offer = fresh.pc.create_offer().map_err(|e| e.to_string())?;
                        fresh.pc.set_local_description(&offer).map_err(|e| e.to_string())?;
                        client.offer(offer.sdp).map_err(|e| e.to_string())?;
                        report(json!({"event": "joined", "participant": name, "id": fresh.id}));
                        call = Some(fresh);
                    }
                    SfuEvent::PeerJoined { id, name: peer } => {
                        names.insert(id, peer);
                    }
                    SfuEvent::PeerLeft { id, reason } => {
                        report(json!({"event": "peer-left", "participant": name, "peer": id, "name": names.get(&id), "reason": reason}));
                    }
                    SfuEvent::Answer(sdp) => {
                        if let Some(call) = call.as_mut() {
                            let answer = Description { kind: SdpType::Answer, sdp };
                            call.pc.set_remote_description(&answer).map_err(|e| e.to_string())?;
                            call.answered = Some(now);
                        }
                    }
                    SfuEvent::Candidate(c) => {
                        if let Some(call) = call.as_mut() {
                            let candidate = natter_client::sfu::parse_candidate(&c);
                            if let Err(e) = call.pc.add_ice_candidate(candidate.as_ref()) {
                                tracing::debug!(error = %e, "SFU candidate refused");
                            }
                        }
                    }
                    SfuEvent::Track { mid, peer, kind } => {
                        if let Some(call) = call.as_mut() {
                            call.changed.insert(mid.clone(), now);
                            totals.suspects.retain(|(m, at)| *m != mid || now - *at > SLOT_CHANGE);
                            call.slots.handle_track(&mid, peer.as_deref());
                            if let Some(peer) = &peer {
                                let entry = totals.received.entry(peer.clone()).or_default();
                                entry.since.get_or_insert(now);
                            }
                        }
                        report(json!({"event": "track", "participant": name, "mid": mid, "peer": peer, "name": peer.as_ref().and_then(|p| names.get(p)), "kind": kind}));
                    }
                    SfuEvent::Speaker { peer } => {
                        report(json!({"event": "speaker", "participant": name, "peer": peer, "name": peer.as_ref().and_then(|p| names.get(p))}));
                    }
                    SfuEvent::Chat { from, text } => {
                        report(json!({"event": "chat", "participant": name, "from": from, "name": names.get(&from), "text": text}));
                    }
                    SfuEvent::Reconnecting { reason } => {
                        report(json!({"event": "reconnecting", "participant": name, "reason": reason}));
                    }
                    SfuEvent::Refused { code, message, .. } => {
                        report(json!({"event": "refused", "participant": name, "code": code, "message": message}));
                    }
                    SfuEvent::Closed { error } => return Err(error.unwrap_or_else(|| "closed".to_owned())),
                }
            }
            received = socket.recv_from(&mut datagram) => {
                if let (Ok((size, source)), Some(call)) = (received, call.as_mut()) {
                    call.pc.handle_receive(Instant::now(), Transport::Udp, source, local, &datagram[..size]);
                }
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        if params.until.is_some_and(|until| now >= until) {
            break;
        }
        if let Some(call) = call.as_mut() {
            if call.pc.poll_timeout().is_some_and(|t| t <= now) {
                call.pc.handle_timeout(now);
            }
            if params.publish {
                call.send_media(now);
            }
            while let Some(transmit) = call.pc.poll_transmit(now, 1, &mut buf) {
                // A full socket buffer drops, as the network would.
                if socket.try_send_to(&buf[..transmit.size], transmit.destination).is_err() {
                    totals.send_drops += 1;
                }
            }
            while let Some(event) = call.pc.poll_event() {
                handle_peer_event(name, call, event, now, &mut totals, &names, &client, report);
            }
        }
        if now >= next_report {
            next_report = now + params.interval;
            if let Some(call) = &call {
                let stats = call.pc.stats();
                totals.packets = stats.receivers.iter().map(|(_, r)| r.packets_received).sum();
                totals.lost = stats.receivers.iter().map(|(_, r)| r.packets_lost).sum();
                totals.sent = stats.senders.iter().map(|(_, s)| s.counters.packets_sent).sum();
                totals.remote_lost = stats.senders.iter().map(|(_, s)| s.counters.remote_packets_lost).sum();
            }
            let unexplained = totals.suspects.iter().filter(|(_, at)| now - *at > SLOT_CHANGE).count();
            totals.misrouted += unexplained as u64;
            totals.suspects.retain(|(_, at)| now - *at <= SLOT_CHANGE);
            report(stats_report(name, &totals, &last, now - last_report));
            last_report = now;
            last.received.clone_from(&totals.received);
            (last.misrouted, last.packets, last.lost, last.sent) =
                (totals.misrouted, totals.packets, totals.lost, totals.sent);
        }
    }
    client.leave().await;
    report(json!({"event": "left", "participant": name}));
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn handle_peer_event(
    name: &str,
    call: &mut Call,
    event: PeerEvent,
    now: Instant,
    totals: &mut Totals,
    names: &HashMap<String, String>,
    client: &SfuClient,
    report: &impl Fn(Value),
) {
    match event {
        PeerEvent::MediaFrame(frame) => {
            let transceiver = call.pc.transceivers().iter().find(|t| t.id() == frame.transceiver);
            let Some(peer) = transceiver.and_then(|t| t.mid()).and_then(|mid| call.slots.peer(mid)) else {
                return;
            };
            let audio = transceiver.is_some_and(|t| t.kind() == MediaKind::Audio);
            let mid = transceiver.and_then(|t| t.mid()).unwrap_or_default();
            let settling = call.changed.get(mid).is_some_and(|at| now - *at <= SLOT_CHANGE);
            let received = totals.received.entry(peer.to_owned()).or_default();
            // Another publisher's frame on the slot: one naming someone
            // else, or one naming no one on the slot of a natter load
            // participant (a browser's frames name no publisher).
            let from = media::publisher(&frame.data);
            received.marked |= from == Some(peer.as_bytes());
            let other = from.map_or(received.marked, |from| from != peer.as_bytes());
            if other && !settling {
                totals.suspects.push((mid.to_owned(), now));
            }
            if audio {
                received.audio_frames += 1;
                return;
            }
            received.video_frames += 1;
            if frame.keyframe && !received.keyframe_seen {
                received.keyframe_seen = true;
                let since = received.since.into_iter().chain(call.answered).max().unwrap_or(now);
                let ms = now.saturating_duration_since(since).as_secs_f64() * 1000.0;
                report(
                    json!({"event": "keyframe", "participant": name, "peer": peer, "name": names.get(peer), "after_ms": (ms * 10.0).round() / 10.0}),
                );
            }
        }
        PeerEvent::KeyframeRequest { transceiver, rid } if transceiver == call.video => {
            for (due, layer) in call.keyframe_due.iter_mut().zip(call.layers) {
                *due |= rid.as_deref().is_none_or(|rid| rid == layer.rid);
            }
        }
        PeerEvent::IceCandidate(c) => {
            let candidate = json!({"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index});
            let _ = client.candidate(candidate);
        }
        PeerEvent::ConnectionStateChange(state) => {
            report(json!({"event": "connection", "participant": name, "id": call.id, "state": state.name()}));
        }
        _ => {}
    }
}

/// Rates over the interval `elapsed` since `last`.
fn stats_report(name: &str, totals: &Totals, last: &Totals, elapsed: Duration) -> Value {
    let seconds = elapsed.as_secs_f64().max(1e-3);
    let mut video_fps = serde_json::Map::new();
    let mut audio_fps = serde_json::Map::new();
    for (peer, now) in &totals.received {
        let before = last.received.get(peer).copied().unwrap_or_default();
        let rate = |a: u64, b: u64| ((a.saturating_sub(b)) as f64 / seconds * 10.0).round() / 10.0;
        video_fps.insert(peer.clone(), rate(now.video_frames, before.video_frames).into());
        audio_fps.insert(peer.clone(), rate(now.audio_frames, before.audio_frames).into());
    }
    let packets = totals.packets.saturating_sub(last.packets);
    let lost = (totals.lost - last.lost).max(0) as u64;
    let loss = if packets + lost == 0 {
        0.0
    } else {
        lost as f64 / (packets + lost) as f64 * 100.0
    };
    json!({
        "event": "stats",
        "participant": name,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "publishers": totals.received.values().filter(|r| r.video_frames > 0).count(),
        "video_fps": video_fps,
        "audio_fps": audio_fps,
        "packets_per_second": (packets as f64 / seconds).round(),
        "loss_percent": (loss * 100.0).round() / 100.0,
        "misrouted": totals.misrouted,
        "send_drops": totals.send_drops,
        "sent_per_second": (totals.sent.saturating_sub(last.sent) as f64 / seconds).round(),
        "remote_lost": totals.remote_lost,
        "video_frames": totals.received.values().map(|r| r.video_frames).sum::<u64>(),
    })
}
