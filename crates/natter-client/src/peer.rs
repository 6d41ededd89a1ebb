//! One participant of the mesh: a task that owns a natter-io
//! `PeerConnection` to one other participant, with the web client's
//! rules (`web/peer.js`): perfect negotiation (the participant with the
//! smaller id is polite), the newcomer attaches the chat channel at once
//! and so offers first, the others attach theirs while answering or
//! after [`OFFER_GRACE`]; chat on the pre-negotiated channel 0; files on
//! channels labelled `file:<id>` (`transfer.rs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use natter_io::{
    Config, DataChannel, DataChannelId, DataChannelInit, Description, IceCandidate, IceConnectionState, MediaFrame,
    MediaKind, PeerConnection, PeerConnectionState, PeerEvent, PeerStats, SdpType, SignalingState, Track,
    TransceiverId,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, oneshot};

use crate::chat::{self, CHAT_CHANNEL_ID, CHAT_LABEL};
use crate::session::Signal;
use crate::transfer::{
    FileHeader, FileResult, FileSource, IncomingFile, Progress, CHUNK_BYTES, HIGH_WATER, LABEL_PREFIX, LOW_WATER,
};
use crate::{Audio, Event, ReceivedFile, Video};

/// web/peer.js: a non-initiator that hears no offer this long offers itself.
pub const OFFER_GRACE: Duration = Duration::from_millis(3000);
/// A sender re-reads the buffered amount at least this often while it
/// waits for `bufferedamountlow`.
pub(crate) const DRAIN_RECHECK: Duration = Duration::from_millis(250);
/// A sender reports its progress after this many chunks (1 MiB).
pub(crate) const PROGRESS_CHUNKS: usize = 64;
/// While a received video has sent no keyframe, ask again this often
/// (RFC 4585 §6.3.1 PLI; a lost request or a slow encoder).
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// A file to send, shared by the tasks of every recipient: the bytes
/// from `header.offset` on go (at most the whole file).
#[derive(Debug)]
pub(crate) struct OutgoingFile {
    pub header: FileHeader,
    pub source: FileSource,
}

/// What the client asks of a peer task.
#[derive(Debug)]
pub(crate) enum PeerInput {
    Signal(Signal),
    Chat(String),
    SendFile(Arc<OutgoingFile>),
    /// Receive transfer `id` into this, when its channel comes.
    Expect(String, Box<IncomingFile>),
    /// The connection's statistics.
    Stats(oneshot::Sender<Option<PeerStats>>),
    Close,
}

/// What a file sender hears about its channel.
#[derive(Debug)]
enum ChannelNote {
    Open,
    BufferedLow,
    Message(Vec<u8>, bool),
    Closed,
}

pub(crate) struct PeerParams {
    pub id: String,
    pub name: String,
    pub polite: bool,
    pub initiator: bool,
    pub config: Config,
    /// (to, signal) for the signaling session.
    pub signals: mpsc::UnboundedSender<(String, Signal)>,
    pub events: mpsc::UnboundedSender<Event>,
    pub media: Media,
}

/// What a connection sends and whether it hands out what it receives
/// (the [`crate::ClientConfig`] fields of the same names).
#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub video: Option<Arc<Video>>,
    pub audio: Option<Arc<Audio>>,
    /// Play each once instead of looped.
    pub once: bool,
    /// Emit [`Event::Media`] for what arrives.
    pub receive: bool,
}

impl Media {
    pub(crate) fn of(config: &crate::ClientConfig) -> Self {
        Media {
            video: config.video.clone(),
            audio: config.audio.clone(),
            once: config.play_once,
            receive: config.receive_media,
        }
    }
}

/// Starts the task; it ends on [`PeerInput::Close`] or when the sender is dropped.
pub(crate) fn spawn(params: PeerParams) -> mpsc::UnboundedSender<PeerInput> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(params, rx));
    tx
}

struct Peer {
    params: PeerParams,
    pc: PeerConnection,
    attached: bool,
    chat: Option<DataChannel>,
    chat_open: bool,
    outbox: Vec<String>,
    ignore_offer: bool,
    incoming: HashMap<DataChannelId, IncomingFile>,
    /// Transfers announced by [`PeerInput::Expect`], by id.
    expected: HashMap<String, IncomingFile>,
    outgoing: HashMap<DataChannelId, mpsc::UnboundedSender<ChannelNote>>,
    /// Our video and audio tracks, once attached, and their players once connected.
    track: Option<Track>,
    audio_track: Option<Track>,
    players: Vec<tokio::task::JoinHandle<()>>,
    keyframes: Keyframes,
}

/// Which received videos have sent a keyframe, and when we last asked
/// those that have not (RFC 4585 §6.3.1 PLI, at most every
/// [`KEYFRAME_RETRY`]).
#[derive(Debug, Default)]
pub(crate) struct Keyframes {
    awaiting: HashMap<TransceiverId, Option<tokio::time::Instant>>,
    seen: std::collections::HashSet<TransceiverId>,
}

impl Keyframes {
    /// Transceiver `id` receives a new video: wait for its keyframe again.
    pub(crate) fn restart(&mut self, id: TransceiverId) {
        self.seen.remove(&id);
        self.awaiting.insert(id, None);
    }

    /// A frame arrived; `true` when a keyframe should be asked for now.
    pub(crate) fn frame(&mut self, frame: &MediaFrame, now: tokio::time::Instant) -> bool {
        if !frame.format.is_video() || self.seen.contains(&frame.transceiver) {
            return false;
        }
        if frame.keyframe {
            self.awaiting.remove(&frame.transceiver);
            self.seen.insert(frame.transceiver);
            return false;
        }
        self.due(frame.transceiver, now)
    }

    /// Whether to ask `id` for a keyframe now (and note that we did).
    pub(crate) fn due(&mut self, id: TransceiverId, now: tokio::time::Instant) -> bool {
        let last = self.awaiting.entry(id).or_insert(None);
        if last.is_some_and(|at| now.duration_since(at) < KEYFRAME_RETRY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Where our media goes: the connection, and the participant (or the
/// SFU) it reaches, for the events a player emits.
pub(crate) struct Audience {
    pub pc: PeerConnection,
    pub peer: String,
    pub name: String,
    pub events: mpsc::UnboundedSender<Event>,
}

/// Plays our video and audio on their tracks, looped or once, once
/// connected; a track the peer takes in another codec than the file's
/// (or not at all) is not played, and said so ([`Event::MediaFailed`]).
pub(crate) fn start_players(
    audience: Audience,
    video: Option<(&Track, &Arc<Video>)>,
    audio: Option<(&Track, &Arc<Audio>)>,
    once: bool,
) -> Vec<tokio::task::JoinHandle<()>> {
    let audience = Arc::new(audience);
    let mut players = Vec::new();
    if let Some((track, video)) = video {
        let (track, video, audience) = (track.clone(), video.clone(), audience.clone());
        players.push(tokio::spawn(async move {
            let file = (video.format, &video.frames[..], video.length);
            publish(&audience, track, "video", file, once).await;
        }));
    }
    if let Some((track, audio)) = audio {
        let (track, audio, audience) = (track.clone(), audio.clone(), audience.clone());
        players.push(tokio::spawn(async move {
            let file = (natter_io::Format::Opus, &audio.packets[..], audio.length);
            publish(&audience, track, "audio", file, once).await;
        }));
    }
    players
}

/// Plays `file` (its format, frames, length) on `track` when the last
/// exchange lets us send it in that format; reports the end of a single
/// pass and a refused track.
async fn publish(
    audience: &Audience,
    track: Track,
    kind: &str,
    (format, frames, length): (natter_io::Format, &[(Duration, Vec<u8>)], Duration),
    once: bool,
) {
    let sending = audience.pc.stats().await.ok().and_then(|stats| {
        stats
            .senders
            .iter()
            .find(|(id, s)| *id == track.id() && s.active)
            .map(|(_, s)| s.format)
    });
    if sending != Some(format) {
        let reason = match sending {
            Some(other) => format!("the peer took our {kind} as {other:?}, not the file's {format:?}"),
            None => format!("the peer did not take our {kind} in the file's codec, {format:?}"),
        };
        let _ = audience.events.send(Event::MediaFailed {
            peer: audience.peer.clone(),
            name: audience.name.clone(),
            kind: kind.to_owned(),
            reason,
        });
        return;
    }
    if play(track, frames, length, once).await == Played::Ended {
        let _ = audience.events.send(Event::MediaEnded {
            peer: audience.peer.clone(),
            name: audience.name.clone(),
            kind: kind.to_owned(),
        });
    }
}

/// Starts a connection with `config`; when that fails, says so as an
/// [`Event::Connection`] to participant `id` and returns `None`.
pub(crate) fn connect(
    config: &Config,
    events: &mpsc::UnboundedSender<Event>,
    id: &str,
    name: &str,
) -> Option<(PeerConnection, mpsc::Receiver<PeerEvent>)> {
    let spawned = PeerConnection::spawn(config.clone()).or_else(|e| {
        // The server's ICE servers may be ones natter cannot use yet
        // (host names): go on without them rather than not at all.
        tracing::warn!(error = %e, "peer connection with the server's ICE servers failed; trying without");
        let mut config = config.clone();
        config.peer.ice_servers.clear();
        PeerConnection::spawn(config)
    });
    match spawned {
        Ok(spawned) => Some(spawned),
        Err(e) => {
            let _ = events.send(Event::Connection {
                id: id.to_owned(),
                name: name.to_owned(),
                state: format!("failed: {e}"),
            });
            None
        }
    }
}

async fn run(params: PeerParams, mut input: mpsc::UnboundedReceiver<PeerInput>) {
    let Some((pc, mut pc_events)) = connect(&params.config, &params.events, &params.id, &params.name) else {
        return;
    };
    let mut peer = Peer {
        params,
        pc,
        attached: false,
        chat: None,
        chat_open: false,
        outbox: Vec::new(),
        ignore_offer: false,
        incoming: HashMap::new(),
        expected: HashMap::new(),
        outgoing: HashMap::new(),
        track: None,
        audio_track: None,
        players: Vec::new(),
        keyframes: Keyframes::default(),
    };
    if peer.params.initiator {
        peer.attach().await;
    }
    let grace = tokio::time::sleep(OFFER_GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            command = input.recv() => match command {
                Some(PeerInput::Signal(signal)) => peer.signal(signal).await,
                Some(PeerInput::Chat(text)) => peer.send_chat(text).await,
                Some(PeerInput::SendFile(file)) => peer.send_file(file).await,
                Some(PeerInput::Expect(id, file)) => {
                    peer.expected.insert(id, *file);
                }
                Some(PeerInput::Stats(reply)) => {
                    let _ = reply.send(peer.pc.stats().await.ok());
                }
                Some(PeerInput::Close) | None => break,
            },
            event = pc_events.recv() => match event {
                Some(event) => peer.event(event).await,
                None => break,
            },
            () = &mut grace, if !peer.attached => peer.attach().await,
        }
    }
    for player in peer.players.drain(..) {
        player.abort();
    }
    for note in peer.outgoing.values() {
        let _ = note.send(ChannelNote::Closed);
    }
    peer.pc.close().await;
}

impl Peer {
    fn emit(&self, event: Event) {
        let _ = self.params.events.send(event);
    }

    fn send_signal(&self, signal: Signal) {
        let _ = self.params.signals.send((self.params.id.clone(), signal));
    }

    /// Adds the chat channel (once); negotiation follows.
    async fn attach(&mut self) {
        if self.attached {
            return;
        }
        self.attached = true;
        if self.params.media.video.is_some() {
            match self.pc.add_track(MediaKind::Video).await {
                Ok(track) => self.track = Some(track),
                Err(e) => tracing::warn!(peer = %self.params.id, error = %e, "cannot add the video track"),
            }
        }
        if self.params.media.audio.is_some() {
            match self.pc.add_track(MediaKind::Audio).await {
                Ok(track) => self.audio_track = Some(track),
                Err(e) => tracing::warn!(peer = %self.params.id, error = %e, "cannot add the audio track"),
            }
        }
        let init = DataChannelInit {
            ordered: true,
            negotiated: true,
            id: Some(CHAT_CHANNEL_ID),
            ..DataChannelInit::default()
        };
        match self.pc.create_data_channel(CHAT_LABEL, init).await {
            Ok(channel) => self.chat = Some(channel),
            Err(e) => tracing::warn!(peer = %self.params.id, error = %e, "cannot open the chat channel"),
        }
    }

    async fn offer(&mut self) {
        if !matches!(self.pc.signaling_state().await, Ok(SignalingState::Stable)) {
            // Negotiation runs already; natter asks again once it is stable.
            return;
        }
        let result = async {
            let offer = self.pc.create_offer().await?;
            self.pc.set_local_description(offer.clone()).await?;
            Ok::<_, natter_io::Error>(offer.sdp)
        }
        .await;
        match result {
            Ok(sdp) => self.send_signal(Signal::Offer(sdp)),
            Err(e) => tracing::warn!(peer = %self.params.id, error = %e, "offer failed"),
        }
    }

    async fn signal(&mut self, signal: Signal) {
        let result = match signal {
            Signal::Offer(sdp) => self.remote_offer(sdp).await,
            Signal::Answer(sdp) => set_answer(&self.pc, sdp).await,
            Signal::Candidate(candidate) => {
                let result = self.pc.add_ice_candidate(parse_candidate(&candidate)).await;
                // Candidates of an offer we ignored fail; so may end-of-candidates.
                if self.ignore_offer || candidate.is_null() {
                    Ok(())
                } else {
                    result
                }
            }
        };
        if let Err(e) = result {
            tracing::warn!(peer = %self.params.id, error = %e, "signaling message failed");
        }
    }

    async fn remote_offer(&mut self, sdp: String) -> Result<(), natter_io::Error> {
        let stable = matches!(self.pc.signaling_state().await?, SignalingState::Stable);
        self.ignore_offer = !self.params.polite && !stable;
        if self.ignore_offer {
            return Ok(());
        }
        // A polite peer's own offer is rolled back implicitly.
        self.pc
            .set_remote_description(Description {
                kind: SdpType::Offer,
                sdp,
            })
            .await?;
        self.attach().await;
        let answer = self.pc.create_answer().await?;
        self.pc.set_local_description(answer.clone()).await?;
        self.send_signal(Signal::Answer(answer.sdp));
        Ok(())
    }

    async fn send_chat(&mut self, text: String) {
        let message = chat::encode(&text);
        match &self.chat {
            Some(chat) if self.chat_open => {
                if let Err(e) = chat.send(message).await {
                    tracing::warn!(peer = %self.params.id, error = %e, "chat not sent");
                }
            }
            _ => self.outbox.push(message),
        }
    }

    async fn send_file(&mut self, file: Arc<OutgoingFile>) {
        self.attach().await;
        let label = format!("{LABEL_PREFIX}{}", file.header.id);
        let channel = match self.pc.create_data_channel(&label, DataChannelInit::default()).await {
            Ok(channel) => channel,
            Err(e) => {
                self.emit(Event::FileFailed {
                    peer: self.params.id.clone(),
                    name: self.params.name.clone(),
                    file_name: file.header.name.clone(),
                    reason: e.to_string(),
                });
                return;
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.outgoing.insert(channel.id(), tx);
        let (id, name, events) = (
            self.params.id.clone(),
            self.params.name.clone(),
            self.params.events.clone(),
        );
        tokio::spawn(async move {
            let file_name = file.header.name.clone();
            let progress = |bytes| {
                let _ = events.send(Event::FileProgress {
                    peer: id.clone(),
                    id: file.header.id.clone(),
                    bytes,
                    size: file.header.size,
                });
            };
            let result = send_file(&channel, &file, rx, progress).await;
            let event = match result {
                Ok(result) => Event::FileSent {
                    peer: id,
                    name,
                    file_name,
                    verified: result.ok,
                    sha256: result.sha256,
                },
                Err(reason) => Event::FileFailed {
                    peer: id,
                    name,
                    file_name,
                    reason,
                },
            };
            let _ = channel.close().await;
            let _ = events.send(event);
        });
    }

    async fn event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::NegotiationNeeded => self.offer().await,
            PeerEvent::IceCandidate(candidate) => self.send_signal(Signal::Candidate(candidate_json(&candidate))),
            PeerEvent::IceGatheringComplete => self.send_signal(Signal::Candidate(Value::Null)),
            PeerEvent::IceConnectionStateChange(IceConnectionState::Failed) => {
                if let Err(e) = self.pc.restart_ice().await {
                    tracing::warn!(peer = %self.params.id, error = %e, "ICE restart failed");
                }
            }
            PeerEvent::ConnectionStateChange(state) => {
                if state == PeerConnectionState::Connected && self.players.is_empty() {
                    let audience = Audience {
                        pc: self.pc.clone(),
                        peer: self.params.id.clone(),
                        name: self.params.name.clone(),
                        events: self.params.events.clone(),
                    };
                    self.players = start_players(
                        audience,
                        self.track.as_ref().zip(self.params.media.video.as_ref()),
                        self.audio_track.as_ref().zip(self.params.media.audio.as_ref()),
                        self.params.media.once,
                    );
                }
                self.emit(Event::Connection {
                    id: self.params.id.clone(),
                    name: self.params.name.clone(),
                    state: state.name().to_owned(),
                });
            }
            PeerEvent::DataChannel(id) => {
                let channel = self.pc.data_channel(id);
                match channel.info().await {
                    Ok(info) if info.label.starts_with(LABEL_PREFIX) => {
                        let transfer = &info.label[LABEL_PREFIX.len()..];
                        let file = self.expected.remove(transfer).unwrap_or_default();
                        self.incoming.insert(id, file);
                    }
                    _ => {
                        let _ = channel.close().await;
                    }
                }
            }
            PeerEvent::DataChannelOpen(id) => {
                if self.chat.as_ref().is_some_and(|c| c.id() == id) {
                    self.chat_open = true;
                    for message in std::mem::take(&mut self.outbox) {
                        if let Some(chat) = &self.chat {
                            let _ = chat.send(message).await;
                        }
                    }
                } else if let Some(note) = self.outgoing.get(&id) {
                    let _ = note.send(ChannelNote::Open);
                }
            }
            PeerEvent::DataChannelMessage { id, data, is_text } => self.message(id, data, is_text).await,
            PeerEvent::Track {
                transceiver,
                kind: MediaKind::Video,
                ..
            } if self.params.media.receive => {
                self.keyframes.restart(transceiver);
                if self.keyframes.due(transceiver, tokio::time::Instant::now()) {
                    self.ask_keyframe(transceiver).await;
                }
            }
            PeerEvent::MediaFrame(frame) if self.params.media.receive => self.media(frame).await,
            PeerEvent::BufferedAmountLow(id) => {
                if let Some(note) = self.outgoing.get(&id) {
                    let _ = note.send(ChannelNote::BufferedLow);
                }
            }
            PeerEvent::DataChannelClose(id) => {
                if self.chat.as_ref().is_some_and(|c| c.id() == id) {
                    self.chat_open = false;
                }
                if let Some(note) = self.outgoing.remove(&id) {
                    let _ = note.send(ChannelNote::Closed);
                }
                if let Some(incoming) = self.incoming.remove(&id) {
                    if let Err(e) = incoming.handle_close() {
                        self.file_failed(&incoming, e.to_string());
                    }
                }
            }
            _ => {}
        }
    }

    async fn message(&mut self, id: DataChannelId, data: Vec<u8>, is_text: bool) {
        if self.chat.as_ref().is_some_and(|c| c.id() == id) {
            if let Some(text) = chat::decode(&data, is_text) {
                self.emit(Event::Chat {
                    from: self.params.id.clone(),
                    name: self.params.name.clone(),
                    text,
                });
            }
            return;
        }
        if let Some(note) = self.outgoing.get(&id) {
            let _ = note.send(ChannelNote::Message(data, is_text));
            return;
        }
        let Some(incoming) = self.incoming.get_mut(&id) else {
            return;
        };
        let progress = incoming.handle_message(&data, is_text);
        if incoming.is_streamed()
            && matches!(progress, Ok(Progress::Received(_) | Progress::Complete { .. }))
            && !is_text
        {
            let transfer = incoming.header().map(|h| h.id.clone()).unwrap_or_default();
            self.emit(Event::FileData {
                from: self.params.id.clone(),
                id: transfer,
                data,
            });
        }
        match progress {
            Ok(Progress::Complete { verified, result }) => {
                let _ = self.pc.data_channel(id).send(result.to_json()).await;
                // The sender closes the channel once it has the result.
                let incoming = self.incoming.remove(&id).unwrap_or_default();
                let header = incoming.header().cloned();
                let file_name = incoming.safe_name();
                let data = incoming.data().to_vec();
                if let Some(header) = header {
                    self.emit(Event::FileReceived {
                        from: self.params.id.clone(),
                        name: self.params.name.clone(),
                        file: ReceivedFile {
                            id: header.id,
                            file_name,
                            mime: header.mime,
                            sha256: result.sha256,
                            expected_sha256: header.sha256.to_ascii_lowercase(),
                            verified,
                            data,
                        },
                    });
                }
            }
            Ok(_) => {}
            Err(e) => {
                let incoming = self.incoming.remove(&id).unwrap_or_default();
                self.file_failed(&incoming, e.to_string());
                let _ = self.pc.data_channel(id).close().await;
            }
        }
    }

    /// Hands a received frame out; a video that has not sent a keyframe
    /// yet is asked for one (at most every [`KEYFRAME_RETRY`]).
    async fn media(&mut self, frame: MediaFrame) {
        if self.keyframes.frame(&frame, tokio::time::Instant::now()) {
            self.ask_keyframe(frame.transceiver).await;
        }
        self.emit(Event::Media {
            from: self.params.id.clone(),
            name: self.params.name.clone(),
            received: std::time::Instant::now(),
            frame,
        });
    }

    async fn ask_keyframe(&mut self, transceiver: TransceiverId) {
        if let Err(e) = self.pc.track(transceiver).request_keyframe().await {
            tracing::debug!(peer = %self.params.id, error = %e, "keyframe request not sent");
        }
    }

    fn file_failed(&self, incoming: &IncomingFile, reason: String) {
        self.emit(Event::FileFailed {
            peer: self.params.id.clone(),
            name: self.params.name.clone(),
            file_name: incoming.safe_name(),
            reason,
        });
    }
}

/// Sends `file` on `channel` as web/transfer.js does and returns the
/// recipient's result, or why it failed.
async fn send_file(
    channel: &DataChannel,
    file: &OutgoingFile,
    mut notes: mpsc::UnboundedReceiver<ChannelNote>,
    progress: impl Fn(u64),
) -> Result<FileResult, String> {
    loop {
        match notes.recv().await {
            Some(ChannelNote::Open) => break,
            Some(ChannelNote::Closed) | None => return Err("the channel closed before opening".to_owned()),
            Some(_) => {}
        }
    }
    let failed = |e: natter_io::Error| e.to_string();
    channel
        .set_buffered_amount_low_threshold(LOW_WATER)
        .await
        .map_err(failed)?;
    channel.send(file.header.to_json()).await.map_err(failed)?;
    let mut result = None;
    let offset = file.header.offset;
    let reading = |e: std::io::Error| format!("reading the file to send: {e}");
    let mut chunks = Chunks::open(&file.source, offset, file.header.size)
        .await
        .map_err(reading)?;
    let mut n = 0;
    while let Some(chunk) = chunks.next().await.map_err(reading)? {
        // natter-io's buffered amount falls while we await sends too, so
        // read it before each send rather than counting.
        while channel.buffered_amount().await.map_err(failed)? > HIGH_WATER {
            match tokio::time::timeout(DRAIN_RECHECK, notes.recv()).await {
                Ok(Some(ChannelNote::Closed) | None) => return Err("the recipient closed the channel".to_owned()),
                Ok(Some(ChannelNote::Message(data, is_text))) => result = result.or(FileResult::parse(&data, is_text)),
                _ => {}
            }
        }
        channel.send(chunk).await.map_err(failed)?;
        n += 1;
        if n % PROGRESS_CHUNKS == 0 {
            progress(offset + (n * CHUNK_BYTES) as u64);
        }
    }
    progress(file.header.size);
    loop {
        if let Some(result) = result.take() {
            return Ok(result);
        }
        match notes.recv().await {
            Some(ChannelNote::Message(data, is_text)) => result = FileResult::parse(&data, is_text),
            Some(ChannelNote::Closed) | None => return Err("the recipient closed the channel".to_owned()),
            Some(_) => {}
        }
    }
}

/// The bytes of a file to send from an offset on, [`CHUNK_BYTES`] at a
/// time: slices of the memory, or reads into one buffer.
pub(crate) enum Chunks<'a> {
    Memory(std::slice::Chunks<'a, u8>),
    File {
        file: tokio::fs::File,
        buffer: Vec<u8>,
        left: u64,
    },
}

impl<'a> Chunks<'a> {
    /// From byte `offset` to `size`; the client checked both against the source.
    pub(crate) async fn open(source: &'a FileSource, offset: u64, size: u64) -> std::io::Result<Chunks<'a>> {
        Ok(match source {
            FileSource::Memory(data) => Chunks::Memory(data[offset as usize..].chunks(CHUNK_BYTES)),
            FileSource::Path(path) => {
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(std::io::SeekFrom::Start(offset)).await?;
                Chunks::File {
                    file,
                    buffer: vec![0; CHUNK_BYTES],
                    left: size - offset,
                }
            }
        })
    }

    /// The next chunk; a file that got shorter is an error.
    pub(crate) async fn next(&mut self) -> std::io::Result<Option<&[u8]>> {
        match self {
            Chunks::Memory(chunks) => Ok(chunks.next()),
            Chunks::File { file, buffer, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                let n = CHUNK_BYTES.min(*left as usize);
                file.read_exact(&mut buffer[..n]).await?;
                *left -= n as u64;
                Ok(Some(&buffer[..n]))
            }
        }
    }
}

/// How [`play`] stopped.
#[derive(Debug, PartialEq, Eq)]
enum Played {
    /// The single pass ended.
    Ended,
    Closed,
}

/// Sends `frames` (video frames or Opus packets, each at its time in a
/// loop of `length`) on `track` in real time, looped until the
/// connection closes, or `once`. Each lap's media times go on from the
/// last one's (`length` on), so RTP timestamps only grow; a lap starts
/// again at the first frame, the file's first keyframe.
async fn play(track: Track, frames: &[(Duration, Vec<u8>)], length: Duration, once: bool) -> Played {
    let length = length.max(Duration::from_millis(1));
    let start = tokio::time::Instant::now();
    let laps = if once { 1 } else { u32::MAX };
    for lap in 0..laps {
        for (pts, data) in frames {
            let at = length * lap + *pts;
            tokio::time::sleep_until(start + at).await;
            match track.send_frame(at, data.clone()).await {
                Ok(()) => {}
                Err(natter_io::Error::Closed) => return Played::Closed,
                Err(e) => tracing::debug!(error = %e, "frame not sent"),
            }
        }
    }
    Played::Ended
}

/// Applies a signaled answer to our offer.
pub(crate) async fn set_answer(pc: &PeerConnection, sdp: String) -> Result<(), natter_io::Error> {
    pc.set_remote_description(Description {
        kind: SdpType::Answer,
        sdp,
    })
    .await
}

/// W3C `RTCIceCandidate.toJSON()`, as the web client signals it.
pub(crate) fn candidate_json(candidate: &IceCandidate) -> Value {
    let line = if candidate.candidate.starts_with("candidate:") || candidate.candidate.is_empty() {
        candidate.candidate.clone()
    } else {
        format!("candidate:{}", candidate.candidate)
    };
    json!({
        "candidate": line,
        "sdpMid": candidate.sdp_mid,
        "sdpMLineIndex": candidate.sdp_m_line_index,
        "usernameFragment": candidate.username_fragment,
    })
}

/// A signaled `RTCIceCandidateInit`; `None` for end-of-candidates
/// (`null`, or anything without a candidate string).
pub(crate) fn parse_candidate(value: &Value) -> Option<IceCandidate> {
    let candidate = value.get("candidate")?.as_str()?.to_owned();
    Some(IceCandidate {
        candidate,
        sdp_mid: value.get("sdpMid").and_then(Value::as_str).map(str::to_owned),
        sdp_m_line_index: value
            .get("sdpMLineIndex")
            .and_then(Value::as_u64)
            .and_then(|i| u16::try_from(i).ok()),
        username_fragment: value.get("usernameFragment").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_round_trip_as_browsers_write_them() {
        let browser = json!({
            "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
            "sdpMid": "0",
            "sdpMLineIndex": 0,
            "usernameFragment": "abcd"
        });
        let parsed = parse_candidate(&browser).unwrap();
        assert_eq!(parsed.sdp_mid.as_deref(), Some("0"));
        assert_eq!(parsed.sdp_m_line_index, Some(0));
        assert_eq!(candidate_json(&parsed), browser);
        let bare = IceCandidate {
            candidate: "1 1 udp 1 127.0.0.1 1 typ host".to_owned(),
            ..parsed
        };
        assert!(candidate_json(&bare)["candidate"]
            .as_str()
            .unwrap()
            .starts_with("candidate:1 "));
        assert_eq!(parse_candidate(&Value::Null), None);
        assert_eq!(parse_candidate(&json!({"sdpMid": "0"})), None);
    }
}
