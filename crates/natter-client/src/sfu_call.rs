//! [`crate::Client`] in an SFU room (docs/signaling.md, "SFU rooms"): a
//! task that owns the **one** natter-io connection to the peer id `sfu`.
//! It offers our video and audio (one layer, no simulcast), a fixed pool
//! of `recvonly` slots and the `relay` data channel, hands out the frames
//! of each slot as [`Event::Media`] of the participant the last `track`
//! message named for it, and sends and receives files over the relay
//! with the web client's file protocol (`web/relay.js`,
//! `web/transfer.js`). Chat goes over signaling (the client task's).

use std::collections::HashMap;
use std::sync::Arc;

use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, Direction, MediaFrame, MediaKind, Message, PeerConnection,
    PeerConnectionState, PeerEvent, PeerStats, Track, TransceiverId,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::peer::{
    candidate_json, connect, parse_candidate, set_answer, start_players, Audience, Chunks, Keyframes, Media,
    OutgoingFile, DRAIN_RECHECK, PROGRESS_CHUNKS,
};
use crate::session::{Signal, SFU_PEER};
use crate::sfu::{RelayMessage, Slots, ACKNOWLEDGE_BYTES, RELAY_LABEL};
use crate::transfer::{FileResult, IncomingFile, Progress, HIGH_WATER, LABEL_PREFIX};
use crate::{Event, ReceivedFile};

/// The web client's pool (`web/sfu.js` `POOL`): at most this many video
/// and audio receive slots, fewer in a smaller room.
const VIDEO_SLOTS: usize = 9;
const AUDIO_SLOTS: usize = 5;
/// Slots of each kind when `welcome` gave no limits.
const DEFAULT_SLOTS: usize = 5;

/// What the client task asks of the call.
#[derive(Debug)]
pub(crate) enum CallInput {
    Signal(Signal),
    /// A `track` message.
    Track {
        mid: String,
        peer: Option<String>,
    },
    PeerJoined(String, String),
    PeerLeft(String),
    /// A file to `to` (`None`: everyone else in the room now).
    SendFile(Arc<OutgoingFile>, Option<String>),
    Stats(oneshot::Sender<Option<PeerStats>>),
}

pub(crate) struct CallParams {
    pub config: Config,
    /// `welcome.limits.maxParticipants`.
    pub max_participants: Option<usize>,
    /// The participants in the room now: id -> name.
    pub peers: HashMap<String, String>,
    pub signals: mpsc::UnboundedSender<(String, Signal)>,
    pub events: mpsc::UnboundedSender<Event>,
    pub media: Media,
}

/// Starts the call; it ends when the sender is dropped.
pub(crate) fn spawn(params: CallParams) -> mpsc::UnboundedSender<CallInput> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(params, rx));
    tx
}

/// What a file sender hears: a relay message on its label, or a recipient gone.
#[derive(Debug)]
enum SendNote {
    Message { from: String, data: Vec<u8>, text: bool },
    Gone(String),
}

struct Call {
    params: CallParams,
    pc: PeerConnection,
    relay: Option<DataChannel>,
    relay_open: bool,
    /// Files waiting for the relay to open.
    queued: Vec<(Arc<OutgoingFile>, Option<String>)>,
    /// Our sending transfers, by label.
    sending: HashMap<String, mpsc::UnboundedSender<SendNote>>,
    /// Receiving transfers by (sender, label), and the bytes each acknowledged.
    receiving: HashMap<(String, String), (IncomingFile, u64)>,
    video_track: Option<Track>,
    audio_track: Option<Track>,
    players: Vec<tokio::task::JoinHandle<()>>,
    /// Our receive sections: mid -> transceiver, and back.
    sections: HashMap<String, TransceiverId>,
    mids: HashMap<TransceiverId, String>,
    slots: Slots,
    keyframes: Keyframes,
    envelope: Vec<u8>,
}

async fn run(params: CallParams, mut input: mpsc::UnboundedReceiver<CallInput>) {
    let Some((pc, mut pc_events)) = connect(&params.config, &params.events, SFU_PEER, SFU_PEER) else {
        return;
    };
    let mut call = Call {
        params,
        pc,
        relay: None,
        relay_open: false,
        queued: Vec::new(),
        sending: HashMap::new(),
        receiving: HashMap::new(),
        video_track: None,
        audio_track: None,
        players: Vec::new(),
        sections: HashMap::new(),
        mids: HashMap::new(),
        slots: Slots::default(),
        keyframes: Keyframes::default(),
        envelope: Vec::new(),
    };
    if let Err(e) = call.offer().await {
        call.connection(format!("failed: {e}"));
    }
    loop {
        tokio::select! {
            command = input.recv() => match command {
                Some(command) => call.command(command).await,
                None => break,
            },
            event = pc_events.recv() => match event {
                Some(event) => call.event(event).await,
                None => break,
            },
        }
    }
    for player in call.players.drain(..) {
        player.abort();
    }
    call.pc.close().await;
}

impl Call {
    fn emit(&self, event: Event) {
        let _ = self.params.events.send(event);
    }

    fn connection(&self, state: String) {
        self.emit(Event::Connection {
            id: SFU_PEER.to_owned(),
            name: SFU_PEER.to_owned(),
            state,
        });
    }

    fn name(&self, id: &str) -> String {
        self.params.peers.get(id).cloned().unwrap_or_default()
    }

    /// Our tracks, the receive slots and the relay channel, in one offer
    /// (the server never renegotiates).
    async fn offer(&mut self) -> Result<(), natter_io::Error> {
        if self.params.media.video.is_some() {
            self.video_track = Some(self.pc.add_track(MediaKind::Video).await?);
        }
        if self.params.media.audio.is_some() {
            self.audio_track = Some(self.pc.add_track(MediaKind::Audio).await?);
        }
        let others = self
            .params
            .max_participants
            .map_or(DEFAULT_SLOTS, crate::sfu::receive_slots);
        for (kind, most) in [(MediaKind::Video, VIDEO_SLOTS), (MediaKind::Audio, AUDIO_SLOTS)] {
            for _ in 0..others.min(most) {
                self.pc.add_transceiver(kind, Direction::RecvOnly).await?;
            }
        }
        let relay = self
            .pc
            .create_data_channel(RELAY_LABEL, DataChannelInit::default())
            .await?;
        self.relay = Some(relay);
        let offer = self.pc.create_offer().await?;
        self.pc.set_local_description(offer.clone()).await?;
        for transceiver in self.pc.transceivers().await? {
            if let Some(mid) = transceiver.mid() {
                self.sections.insert(mid.to_owned(), transceiver.id());
                self.mids.insert(transceiver.id(), mid.to_owned());
            }
        }
        let _ = self
            .params
            .signals
            .send((SFU_PEER.to_owned(), Signal::Offer(offer.sdp)));
        Ok(())
    }

    async fn command(&mut self, command: CallInput) {
        match command {
            CallInput::Signal(signal) => {
                let result = match signal {
                    Signal::Answer(sdp) => set_answer(&self.pc, sdp).await,
                    Signal::Candidate(candidate) => {
                        let end = candidate.is_null();
                        let result = self.pc.add_ice_candidate(parse_candidate(&candidate)).await;
                        if end {
                            Ok(())
                        } else {
                            result
                        }
                    }
                    // The SFU never offers (docs/signaling.md).
                    Signal::Offer(_) => Ok(()),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "signaling message from the SFU failed");
                }
            }
            CallInput::Track { mid, peer } => {
                self.slots.handle_track(&mid, peer.as_deref());
                let Some(&transceiver) = self.sections.get(&mid) else {
                    return;
                };
                // A new publisher on a video slot: ask for its keyframe.
                self.keyframes.restart(transceiver);
                if peer.is_some() && self.params.media.receive {
                    self.ask_keyframe(transceiver).await;
                }
            }
            CallInput::PeerJoined(id, name) => {
                self.params.peers.insert(id, name);
            }
            CallInput::PeerLeft(id) => {
                // Its frames still on their way would start a new recording.
                self.slots.forget(&id);
                self.receiving.retain(|(from, _), _| *from != id);
                for note in self.sending.values() {
                    let _ = note.send(SendNote::Gone(id.clone()));
                }
                self.params.peers.remove(&id);
            }
            CallInput::SendFile(file, to) => {
                if self.relay_open {
                    self.send_file(file, to);
                } else {
                    self.queued.push((file, to));
                }
            }
            CallInput::Stats(reply) => {
                let _ = reply.send(self.pc.stats().await.ok());
            }
        }
    }

    async fn event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::IceCandidate(candidate) => {
                let signal = Signal::Candidate(candidate_json(&candidate));
                let _ = self.params.signals.send((SFU_PEER.to_owned(), signal));
            }
            PeerEvent::ConnectionStateChange(state) => {
                if state == PeerConnectionState::Connected && self.players.is_empty() {
                    let audience = Audience {
                        pc: self.pc.clone(),
                        peer: SFU_PEER.to_owned(),
                        name: SFU_PEER.to_owned(),
                        events: self.params.events.clone(),
                    };
                    self.players = start_players(
                        audience,
                        self.video_track.as_ref().zip(self.params.media.video.as_ref()),
                        self.audio_track.as_ref().zip(self.params.media.audio.as_ref()),
                        self.params.media.once,
                    );
                }
                self.connection(state.name().to_owned());
            }
            PeerEvent::DataChannelOpen(id) if self.is_relay(id) => {
                self.relay_open = true;
                for (file, to) in std::mem::take(&mut self.queued) {
                    self.send_file(file, to);
                }
            }
            PeerEvent::DataChannelClose(id) if self.is_relay(id) => {
                self.relay_open = false;
                self.receiving.clear();
                self.sending.clear();
            }
            PeerEvent::DataChannelMessage { id, data, .. } if self.is_relay(id) => self.relayed(&data).await,
            PeerEvent::MediaFrame(frame) if self.params.media.receive => self.media(frame).await,
            _ => {}
        }
    }

    fn is_relay(&self, id: DataChannelId) -> bool {
        self.relay.as_ref().is_some_and(|relay| relay.id() == id)
    }

    /// A frame of a slot: the participant its `track` named sent it.
    async fn media(&mut self, frame: MediaFrame) {
        let peer = self.mids.get(&frame.transceiver).and_then(|mid| self.slots.peer(mid));
        let Some(peer) = peer.map(str::to_owned) else {
            return;
        };
        if self.keyframes.frame(&frame, tokio::time::Instant::now()) {
            self.ask_keyframe(frame.transceiver).await;
        }
        self.emit(Event::Media {
            name: self.name(&peer),
            from: peer,
            received: std::time::Instant::now(),
            frame,
        });
    }

    async fn ask_keyframe(&mut self, transceiver: TransceiverId) {
        if self.keyframes.due(transceiver, tokio::time::Instant::now()) {
            if let Err(e) = self.pc.track(transceiver).request_keyframe().await {
                tracing::debug!(error = %e, "keyframe request not sent");
            }
        }
    }

    /// Sends one message on the relay to `to` ('' for everyone).
    async fn relay_send(&mut self, to: &str, label: &str, text: bool, data: &[u8]) {
        let message = RelayMessage {
            peer: to,
            label,
            text,
            data,
        };
        if let Err(e) = message.write(&mut self.envelope) {
            tracing::warn!(error = %e, "relay message not sent");
            return;
        }
        if let Some(relay) = &self.relay {
            if let Err(e) = relay.send(Message::Binary(self.envelope.clone())).await {
                tracing::debug!(error = %e, "relay message not sent");
            }
        }
    }

    /// A message someone sent us over the relay.
    async fn relayed(&mut self, data: &[u8]) {
        let message = match RelayMessage::parse(data) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, "bad relay message");
                return;
            }
        };
        let (from, label, text) = (message.peer.to_owned(), message.label.to_owned(), message.text);
        if let Some(note) = self.sending.get(&label) {
            let _ = note.send(SendNote::Message {
                from,
                data: message.data.to_vec(),
                text,
            });
            return;
        }
        if !label.starts_with(LABEL_PREFIX) {
            return;
        }
        let key = (from.clone(), label.clone());
        // A transfer starts with its header (text); bytes of one we did
        // not see start are dropped, as web/relay.js does.
        if !self.receiving.contains_key(&key) && !text {
            return;
        }
        let (incoming, acknowledged) = self.receiving.entry(key.clone()).or_default();
        let progress = incoming.handle_message(message.data, text);
        let ack = match progress {
            Ok(Progress::Received(bytes)) if bytes / ACKNOWLEDGE_BYTES > *acknowledged / ACKNOWLEDGE_BYTES => {
                *acknowledged = bytes;
                Some(json!({"type": "received", "bytes": bytes}).to_string())
            }
            _ => None,
        };
        if let Some(ack) = ack {
            self.relay_send(&from, &label, true, ack.as_bytes()).await;
        }
        match progress {
            Ok(Progress::Complete { verified, result }) => {
                self.relay_send(&from, &label, true, result.to_json().as_bytes()).await;
                let (incoming, _) = self.receiving.remove(&key).unwrap_or_default();
                if let Some(header) = incoming.header().cloned() {
                    self.emit(Event::FileReceived {
                        name: self.name(&from),
                        from,
                        file: ReceivedFile {
                            id: header.id,
                            file_name: incoming.safe_name(),
                            mime: header.mime,
                            sha256: result.sha256,
                            expected_sha256: header.sha256.to_ascii_lowercase(),
                            verified,
                            data: incoming.data().to_vec(),
                        },
                    });
                }
            }
            Ok(_) => {}
            Err(e) => {
                let (incoming, _) = self.receiving.remove(&key).unwrap_or_default();
                self.emit(Event::FileFailed {
                    name: self.name(&from),
                    peer: from,
                    file_name: incoming.safe_name(),
                    reason: e.to_string(),
                });
            }
        }
    }

    /// Starts a transfer over the relay: once to everyone (or to `to`),
    /// each recipient answering its result.
    fn send_file(&mut self, file: Arc<OutgoingFile>, to: Option<String>) {
        let recipients: HashMap<String, String> = match &to {
            Some(to) => [(to.clone(), self.name(to))].into(),
            None => self.params.peers.clone(),
        };
        let Some(relay) = self.relay.clone() else {
            return;
        };
        let label = format!("{LABEL_PREFIX}{}", file.header.id);
        let (tx, rx) = mpsc::unbounded_channel();
        self.sending.insert(label.clone(), tx);
        let sender = RelaySender {
            relay,
            label,
            to: to.unwrap_or_default(),
            recipients,
            events: self.params.events.clone(),
            envelope: Vec::new(),
        };
        tokio::spawn(sender.run(file, rx));
    }
}

/// One file going out over the relay (`web/transfer.js` over
/// `web/relay.js`): the header, 16 KiB chunks while the slowest
/// recipient has acknowledged all but [`HIGH_WATER`] bytes, then each
/// recipient's result.
struct RelaySender {
    relay: DataChannel,
    label: String,
    to: String,
    /// Who has not answered yet: id -> name.
    recipients: HashMap<String, String>,
    events: mpsc::UnboundedSender<Event>,
    envelope: Vec<u8>,
}

impl RelaySender {
    async fn run(mut self, file: Arc<OutgoingFile>, mut notes: mpsc::UnboundedReceiver<SendNote>) {
        let file_name = file.header.name.clone();
        if let Err(reason) = self.send(&file, &mut notes).await {
            for (peer, name) in self.recipients.drain() {
                let _ = self.events.send(Event::FileFailed {
                    peer,
                    name,
                    file_name: file_name.clone(),
                    reason: reason.clone(),
                });
            }
        }
    }

    async fn write(&mut self, text: bool, data: &[u8]) -> Result<(), String> {
        let message = RelayMessage {
            peer: &self.to,
            label: &self.label,
            text,
            data,
        };
        message.write(&mut self.envelope).map_err(|e| e.to_string())?;
        self.relay
            .send(Message::Binary(self.envelope.clone()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn send(&mut self, file: &OutgoingFile, notes: &mut mpsc::UnboundedReceiver<SendNote>) -> Result<(), String> {
        let mut acked: HashMap<String, u64> = self.recipients.keys().map(|id| (id.clone(), 0)).collect();
        self.write(true, file.header.to_json().as_bytes()).await?;
        let reading = |e: std::io::Error| format!("reading the file to send: {e}");
        let mut chunks = Chunks::open(&file.source, file.header.offset, file.header.size)
            .await
            .map_err(reading)?;
        let (mut sent, mut n) = (0u64, 0usize);
        while let Some(chunk) = chunks.next().await.map_err(reading)? {
            loop {
                let slowest = acked.values().copied().min().unwrap_or(sent);
                let queued = self.relay.buffered_amount().await.map_err(|e| e.to_string())? as u64;
                if queued.max(sent - slowest) <= HIGH_WATER as u64 {
                    break;
                }
                match tokio::time::timeout(DRAIN_RECHECK, notes.recv()).await {
                    Ok(Some(note)) => self.note(note, &mut acked, file),
                    Ok(None) => return Err("the connection to the SFU closed".to_owned()),
                    Err(_) => {}
                }
            }
            self.write(false, chunk).await?;
            sent += chunk.len() as u64;
            n += 1;
            if n % PROGRESS_CHUNKS == 0 {
                self.progress(file, file.header.offset + sent);
            }
        }
        self.progress(file, file.header.size);
        while !self.recipients.is_empty() {
            match notes.recv().await {
                Some(note) => self.note(note, &mut acked, file),
                None => return Err("the connection to the SFU closed".to_owned()),
            }
        }
        Ok(())
    }

    fn progress(&self, file: &OutgoingFile, bytes: u64) {
        let _ = self.events.send(Event::FileProgress {
            peer: self.to.clone(),
            id: file.header.id.clone(),
            bytes,
            size: file.header.size,
        });
    }

    /// An acknowledgement, a recipient's result, or a recipient gone.
    fn note(&mut self, note: SendNote, acked: &mut HashMap<String, u64>, file: &OutgoingFile) {
        let file_name = file.header.name.clone();
        match note {
            SendNote::Message { from, data, text } => {
                if let Some(result) = FileResult::parse(&data, text) {
                    acked.remove(&from);
                    if let Some(name) = self.recipients.remove(&from) {
                        let _ = self.events.send(Event::FileSent {
                            peer: from,
                            name,
                            file_name,
                            verified: result.ok,
                            sha256: result.sha256,
                        });
                    }
                    return;
                }
                let bytes = text
                    .then(|| serde_json::from_slice::<Value>(&data).ok())
                    .flatten()
                    .filter(|v| v["type"] == "received")
                    .and_then(|v| v["bytes"].as_u64());
                if let (Some(bytes), Some(seen)) = (bytes, acked.get_mut(&from)) {
                    *seen = (*seen).max(bytes);
                }
            }
            SendNote::Gone(peer) => {
                acked.remove(&peer);
                if let Some(name) = self.recipients.remove(&peer) {
                    let _ = self.events.send(Event::FileFailed {
                        peer,
                        name,
                        file_name,
                        reason: "left the room".to_owned(),
                    });
                }
            }
        }
    }
}
