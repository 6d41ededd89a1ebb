//! The async client: one task owns the signaling WebSocket and the
//! [`Session`]; each other participant has a task of its own
//! (`peer.rs`) that owns its peer connection. They talk through
//! channels only.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use natter_io::{Config, IceServer, LocalAddresses, PeerConfig, PeerStats};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;
use crate::message::IceServerInfo;
use crate::peer::{self, Media, OutgoingFile, PeerInput, PeerParams};
use crate::session::{CloseVerdict, JoinOptions, Output, Session, SessionEvent, Signal, SFU_PEER};
use crate::sfu_call::{self, CallInput, CallParams};
use crate::transfer::{transfer_id, FileHeader, FileSource, IncomingFile};
use crate::url::ServerUrl;
use crate::{Audio, Event, Video};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// web/signaling.js: the first reconnect waits this long ...
pub(crate) const BACKOFF_FIRST: Duration = Duration::from_millis(250);
/// ... doubling up to this.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(8000);
/// How long to wait for the server to close the socket after `leave`.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

/// How to join.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server: `http://host:port`, the web client's link
    /// (`/?room=R#token=T`), or `ws://host:port/ws`.
    pub url: String,
    /// The room; else the URL's `room`.
    pub room: Option<String>,
    pub name: String,
    /// A join token; else the URL's `token`. Needed unless the server runs with `--dev`.
    pub token: Option<String>,
    /// The UDP sockets of each peer connection.
    pub local_addresses: LocalAddresses,
    /// After the socket dropped, give up when no connection succeeded for this long.
    pub reconnect_timeout: Duration,
    /// A video sent to every participant, looped, once connected to them.
    pub video: Option<Arc<Video>>,
    /// Opus audio sent to every participant, looped, once connected to them.
    pub audio: Option<Arc<Audio>>,
    /// Play `video` and `audio` once to each connection instead of
    /// looped ([`Event::MediaEnded`] when done).
    pub play_once: bool,
    /// Hand out the frames other participants send as [`Event::Media`],
    /// asking each for a keyframe (PLI) until its video sends one.
    pub receive_media: bool,
    /// In an SFU room (`welcome.sfu`), go through the SFU: one
    /// connection, to it ([`Client::is_sfu`]). Off by default: the
    /// client connects to each participant directly in every room (the
    /// server relays their signaling in SFU rooms too), end to end, as
    /// `natter send` needs for its proofs and resumed transfers.
    pub through_sfu: bool,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            room: None,
            name: name.into(),
            token: None,
            local_addresses: LocalAddresses::Host {
                loopback: true,
                ipv6: true,
            },
            reconnect_timeout: Duration::from_secs(30),
            video: None,
            audio: None,
            play_once: false,
            receive_media: false,
            through_sfu: false,
        }
    }
}

enum Command {
    Chat(String, Option<String>),
    SendFile(Arc<OutgoingFile>, Option<String>, oneshot::Sender<usize>),
    Expect(String, String, Box<IncomingFile>),
    Stats(String, oneshot::Sender<Option<PeerStats>>),
    Leave(oneshot::Sender<()>),
}

/// A participant in a room of `natter serve`. Dropping it leaves too.
#[derive(Debug)]
pub struct Client {
    id: String,
    room: String,
    sfu: bool,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Chat(..) => "Chat",
            Command::SendFile(..) => "SendFile",
            Command::Expect(..) => "Expect",
            Command::Stats(..) => "Stats",
            Command::Leave(_) => "Leave",
        })
    }
}

impl Client {
    /// Connects and joins; returns once the server welcomed us, with the
    /// events of the session from then on (the `Joined` event first).
    pub async fn join(config: ClientConfig) -> Result<(Client, mpsc::UnboundedReceiver<Event>), Error> {
        let (websocket, options) = resolve(&config)?;
        let room = options.room.clone();
        let socket = connect(&websocket).await?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (joined_tx, joined_rx) = oneshot::channel();
        let (signals_tx, signals_rx) = mpsc::unbounded_channel();
        let mut session = Session::new(options);
        session.handle_open(Instant::now());
        let driver = Driver {
            session,
            socket: Some(socket),
            url: websocket,
            config,
            peers: HashMap::new(),
            call: None,
            sfu_peers: HashMap::new(),
            ice_servers: Vec::new(),
            events: events_tx,
            signals_tx,
            signals: signals_rx,
            commands: commands_rx,
            joined: Some(joined_tx),
            away_since: None,
            backoff: BACKOFF_FIRST,
        };
        tokio::spawn(driver.run());
        let (id, sfu) = joined_rx.await.map_err(|_| Error::Closed)??;
        Ok((
            Client {
                id,
                room,
                sfu,
                commands: commands_tx,
            },
            events_rx,
        ))
    }

    /// Our participant id.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    /// We go through the server's SFU ([`ClientConfig::through_sfu`] in
    /// an SFU room, `welcome.sfu`): one
    /// connection, to the peer id `sfu` ([`crate::session::SFU_PEER`]),
    /// whose [`Event::Connection`] events name it; media, chat and files
    /// go through the server.
    pub fn is_sfu(&self) -> bool {
        self.sfu
    }

    /// Sends a chat message to everyone.
    pub fn chat(&self, text: &str) -> Result<(), Error> {
        self.command(Command::Chat(text.to_owned(), None))
    }

    /// Sends a chat message to participant `to` only; not in SFU rooms,
    /// whose chat goes to everyone over signaling.
    pub fn chat_to(&self, to: &str, text: &str) -> Result<(), Error> {
        if self.sfu {
            return Err(Error::BadOptions(
                "chat to one participant is not available in SFU rooms".to_owned(),
            ));
        }
        self.command(Command::Chat(text.to_owned(), Some(to.to_owned())))
    }

    /// Receives transfer `id` from participant `from` into `file` (e.g.
    /// [`IncomingFile::resume`]: its bytes come as [`Event::FileData`]);
    /// say so before the sender opens the transfer's channel.
    pub fn expect_file(&self, from: &str, id: &str, file: IncomingFile) -> Result<(), Error> {
        self.command(Command::Expect(from.to_owned(), id.to_owned(), Box::new(file)))
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).map_err(|_| Error::Closed)
    }

    /// Sends a file to everyone in the room now; returns how many
    /// recipients it goes to. `FileSent` or `FileFailed` events follow,
    /// one per recipient.
    pub async fn send_file(&self, name: &str, mime: &str, data: Vec<u8>) -> Result<usize, Error> {
        self.send(None, name, mime, data).await
    }

    /// Sends a file to participant `to` only; 0 when it is not in the room.
    pub async fn send_file_to(&self, to: &str, name: &str, mime: &str, data: Vec<u8>) -> Result<usize, Error> {
        self.send(Some(to.to_owned()), name, mime, data).await
    }

    /// Sends participant `to` the bytes of `data` from `header.offset` on,
    /// as transfer `header.id`; `header` describes the whole of `data`
    /// ([`FileHeader::new`], or [`FileHeader::of_file`] for a
    /// [`FileSource::Path`], read as it goes). 0 when `to` is not in the room.
    pub async fn send_file_part(
        &self,
        to: &str,
        header: FileHeader,
        data: impl Into<FileSource>,
    ) -> Result<usize, Error> {
        let source = data.into();
        let size = source
            .size()
            .map_err(|e| Error::BadOptions(format!("cannot read the file to send: {e}")))?;
        if header.size != size || header.offset > header.size {
            return Err(Error::BadOptions(format!(
                "a file of {size} bytes cannot be sent as {} bytes from byte {}",
                header.size, header.offset
            )));
        }
        self.queue(Some(to.to_owned()), OutgoingFile { header, source }).await
    }

    /// The W3C `candidateType`s (`host`, `srflx`, `prflx`, `relay`) of the
    /// local and remote candidates that data to participant `peer` flows
    /// on (natter's stats); `None` before ICE selected a pair or when
    /// `peer` is not in the room.
    pub async fn selected_pair(&self, peer: &str) -> Result<Option<(String, String)>, Error> {
        let pair = self.stats(peer).await?.and_then(|stats| stats.selected_pair);
        Ok(pair.map(|pair| (pair.local.kind.to_string(), pair.remote.kind.to_string())))
    }

    /// The DTLS certificate fingerprints (RFC 8122 §5, as SDP writes them:
    /// `sha-256 AB:…`) of our side and of participant `peer`'s, of the
    /// connection to it; `None` before DTLS verified the peer's, or when
    /// `peer` is not in the room. Binding these into an application's
    /// proof detects a signaling server that put itself in the middle.
    pub async fn dtls_fingerprints(&self, peer: &str) -> Result<Option<(String, String)>, Error> {
        let dtls = self.stats(peer).await?.and_then(|stats| stats.dtls);
        Ok(dtls.and_then(|dtls| Some((dtls.local_fingerprint.to_string(), dtls.peer_fingerprint?.to_string()))))
    }

    /// natter's statistics of the connection to participant `peer`;
    /// `None` when `peer` is not in the room.
    pub async fn stats(&self, peer: &str) -> Result<Option<PeerStats>, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Stats(peer.to_owned(), tx))?;
        Ok(rx.await.ok().flatten())
    }

    async fn send(&self, to: Option<String>, name: &str, mime: &str, data: Vec<u8>) -> Result<usize, Error> {
        let header = FileHeader::new(&transfer_id(), name, mime, &data);
        self.queue(
            to,
            OutgoingFile {
                header,
                source: FileSource::Memory(Arc::new(data)),
            },
        )
        .await
    }

    async fn queue(&self, to: Option<String>, file: OutgoingFile) -> Result<usize, Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::SendFile(Arc::new(file), to, tx))?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// Leaves the room: the others see us leave at once.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).is_ok() {
            // The client task says goodbye within LEAVE_WAIT of reading
            // the command; a task stuck elsewhere must not hold the
            // caller forever.
            let _ = tokio::time::timeout(LEAVE_WAIT * 5, rx).await;
        }
    }
}

/// The WebSocket URL and the join of `config`, checked against the
/// protocol's rules before anything connects.
pub(crate) fn resolve(config: &ClientConfig) -> Result<(String, JoinOptions), Error> {
    let url = ServerUrl::parse(&config.url)?;
    if url.websocket.starts_with("wss:") {
        return Err(Error::BadUrl {
            url: config.url.clone(),
            reason: "https and wss are not supported by natter join yet; use the server's http address",
        });
    }
    let room = config
        .room
        .clone()
        .or(url.room.clone())
        .ok_or_else(|| Error::BadOptions("no room: give --room, or a URL with ?room=".to_owned()))?;
    if !natter_signaling::message::is_room_name(&room) {
        return Err(Error::BadOptions(format!(
            "room {room:?}: room names are 1 to 64 characters from A-Z a-z 0-9 _ -"
        )));
    }
    let name = natter_signaling::message::display_name(&config.name)
        .ok_or_else(|| {
            Error::BadOptions(format!(
                "name {:?}: 1 to 64 characters, no control characters",
                config.name
            ))
        })?
        .to_owned();
    let token = config.token.clone().or(url.token.clone());
    Ok((url.websocket, JoinOptions { room, name, token }))
}

/// Sends the session's frames on `socket`; `Some(reason)` when the
/// session found it half-open and it must be dropped.
pub(crate) async fn send_outputs(
    session: &mut Session,
    mut socket: Option<&mut Socket>,
) -> Result<Option<String>, String> {
    while let Some(output) = session.poll_output() {
        match output {
            Output::Send(text) => {
                let socket = socket.as_mut().ok_or("no socket")?;
                socket.send(WsMessage::text(text)).await.map_err(|e| describe(&e))?;
            }
            Output::Drop => return Ok(Some("heartbeat lost".to_owned())),
        }
    }
    Ok(None)
}

/// Hands one frame of the socket to the session; `Some((close code,
/// reason))` when the socket ended.
pub(crate) fn handle_frame(
    session: &mut Session,
    frame: Option<Result<WsMessage, tungstenite::Error>>,
) -> Option<(Option<u16>, String)> {
    match frame {
        Some(Ok(WsMessage::Text(text))) => {
            if let Err(e) = session.handle_text(Instant::now(), text.as_str()) {
                tracing::warn!(error = %e, "unparsable signaling message");
            }
            None
        }
        Some(Ok(WsMessage::Close(frame))) => {
            let (code, reason) =
                (frame.map(|f| (Some(u16::from(f.code)), f.reason.to_string()))).unwrap_or((None, String::new()));
            let reason = if reason.is_empty() {
                "the server closed the socket".to_owned()
            } else {
                reason
            };
            Some((code, reason))
        }
        Some(Ok(_)) => None,
        Some(Err(e)) => Some((None, describe(&e))),
        None => Some((None, "the socket closed".to_owned())),
    }
}

pub(crate) async fn connect(url: &str) -> Result<Socket, Error> {
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(e) => Err(Error::Connect {
            url: url.to_owned(),
            reason: describe(&e),
        }),
    }
}

pub(crate) fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(response) => format!(
            "the server answered HTTP {} instead of a WebSocket (is this natter serve?)",
            response.status()
        ),
        tungstenite::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

struct Driver {
    session: Session,
    socket: Option<Socket>,
    url: String,
    config: ClientConfig,
    /// Each participant's task, and its name (mesh rooms).
    peers: HashMap<String, (mpsc::UnboundedSender<PeerInput>, String)>,
    /// SFU rooms: the task of our one connection, and the participants' names.
    call: Option<mpsc::UnboundedSender<CallInput>>,
    sfu_peers: HashMap<String, String>,
    ice_servers: Vec<IceServer>,
    events: mpsc::UnboundedSender<Event>,
    signals_tx: mpsc::UnboundedSender<(String, Signal)>,
    signals: mpsc::UnboundedReceiver<(String, Signal)>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Until the first `welcome`: where `join` waits.
    joined: Option<oneshot::Sender<Result<(String, bool), Error>>>,
    /// Since when no socket has been welcomed.
    away_since: Option<Instant>,
    /// The next reconnect's wait.
    backoff: Duration,
}

/// What ended the socket.
enum Ended {
    Closed(Option<u16>, String),
    Leave(oneshot::Sender<()>),
}

impl Driver {
    async fn run(mut self) {
        let result = self.drive().await;
        for (peer, _) in self.peers.values() {
            let _ = peer.send(PeerInput::Close);
        }
        match (self.joined.take(), result) {
            (Some(joined), Err(e)) => {
                let _ = joined.send(Err(e));
            }
            (_, Err(e)) => {
                let _ = self.events.send(Event::Closed {
                    error: Some(e.to_string()),
                });
            }
            (_, Ok(())) => {
                let _ = self.events.send(Event::Closed { error: None });
            }
        }
    }

    async fn drive(&mut self) -> Result<(), Error> {
        loop {
            let ended = match self.serve_socket().await {
                Ok(ended) => ended,
                Err(e) => Ended::Closed(None, e),
            };
            let (code, reason) = match ended {
                Ended::Leave(done) => {
                    self.finish_leave().await;
                    let _ = done.send(());
                    return Ok(());
                }
                Ended::Closed(code, reason) => (code, reason),
            };
            self.socket = None;
            match self.session.handle_close(code) {
                CloseVerdict::Closed => return Ok(()),
                CloseVerdict::Fatal {
                    close_code,
                    code,
                    message,
                } => {
                    return Err(Error::Refused {
                        close_code,
                        code,
                        message,
                    })
                }
                CloseVerdict::Reconnect => {
                    let _ = self.events.send(Event::Reconnecting { reason: reason.clone() });
                    if let Some(done) = self.reconnect(reason).await? {
                        let _ = done.send(());
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Runs the socket until it ends (or we leave); Err is a send failure.
    async fn serve_socket(&mut self) -> Result<Ended, String> {
        loop {
            if let Some(lost) = send_outputs(&mut self.session, self.socket.as_mut()).await? {
                return Ok(Ended::Closed(None, lost));
            }
            while let Some(event) = self.session.poll_event() {
                self.session_event(event);
            }
            let deadline = self.session.poll_timeout();
            let socket = self.socket.as_mut().ok_or("no socket")?;
            tokio::select! {
                frame = socket.next() => if let Some((code, reason)) = handle_frame(&mut self.session, frame) {
                    return Ok(Ended::Closed(code, reason));
                },
                Some((to, signal)) = self.signals.recv() => {
                    self.session.signal(&to, signal);
                }
                command = self.commands.recv() => match command {
                    Some(Command::Leave(done)) => return Ok(Ended::Leave(done)),
                    None => {
                        let (done, _) = oneshot::channel();
                        return Ok(Ended::Leave(done));
                    }
                    Some(command) => self.command(command),
                },
                () = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    /// Reconnects with backoff; `Some` when the application left
    /// meanwhile. Gives up once no `welcome` came for `reconnect_timeout`,
    /// whether the sockets failed to open or opened and closed again.
    async fn reconnect(&mut self, reason: String) -> Result<Option<oneshot::Sender<()>>, Error> {
        let away_since = *self.away_since.get_or_insert_with(Instant::now);
        let mut reason = reason;
        loop {
            if away_since.elapsed() >= self.config.reconnect_timeout {
                return Err(Error::ServerGone {
                    url: self.url.clone(),
                    seconds: away_since.elapsed().as_secs(),
                    reason,
                });
            }
            let jitter = 0.75 + rand::random::<f64>() * 0.5;
            let wait = tokio::time::sleep(self.backoff.mul_f64(jitter));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = self.commands.recv() => match command {
                        Some(Command::Leave(done)) => return Ok(Some(done)),
                        None => return Ok(Some(oneshot::channel().0)),
                        Some(command) => self.command(command),
                    },
                    Some(_) = self.signals.recv() => {} // dropped while away, as the web client does
                }
            }
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            match connect(&self.url).await {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.session.handle_open(Instant::now());
                    return Ok(None);
                }
                Err(e) => reason = e.to_string(),
            }
        }
    }

    async fn finish_leave(&mut self) {
        self.session.leave();
        if let Some(mut socket) = self.socket.take() {
            while let Some(Output::Send(text)) = self.session.poll_output() {
                let _ = socket.send(WsMessage::text(text)).await;
            }
            // The server closes the socket after `leave`.
            let _ = tokio::time::timeout(LEAVE_WAIT, async {
                while let Some(Ok(frame)) = socket.next().await {
                    if matches!(frame, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
            let _ = socket
                .close(Some(tungstenite::protocol::CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                }))
                .await;
        }
    }

    fn command(&mut self, command: Command) {
        if self.through_sfu() {
            return self.sfu_command(command);
        }
        match command {
            Command::Chat(text, to) => {
                for (id, (peer, _)) in &self.peers {
                    if to.as_ref().is_none_or(|to| to == id) {
                        let _ = peer.send(PeerInput::Chat(text.clone()));
                    }
                }
            }
            Command::Expect(from, id, file) => {
                if let Some((peer, _)) = self.peers.get(&from) {
                    let _ = peer.send(PeerInput::Expect(id, file));
                }
            }
            Command::Stats(id, reply) => {
                if let Some((peer, _)) = self.peers.get(&id) {
                    let _ = peer.send(PeerInput::Stats(reply));
                }
            }
            Command::SendFile(file, to, reply) => {
                let mut recipients = 0;
                for (id, (peer, _)) in &self.peers {
                    if to.as_ref().is_none_or(|to| to == id) {
                        let _ = peer.send(PeerInput::SendFile(file.clone()));
                        recipients += 1;
                    }
                }
                let _ = reply.send(recipients);
            }
            Command::Leave(_) => {}
        }
    }

    /// We are in an SFU room and go through the SFU.
    fn through_sfu(&self) -> bool {
        self.config.through_sfu && self.session.is_sfu()
    }

    /// A command in an SFU room: chat over signaling, the rest to the call.
    fn sfu_command(&mut self, command: Command) {
        let call = |input| {
            if let Some(call) = &self.call {
                let _ = call.send(input);
            }
        };
        match command {
            Command::Chat(text, _) => {
                self.session.chat(&text);
            }
            Command::SendFile(file, to, reply) => {
                let recipients = match &to {
                    Some(to) => usize::from(self.sfu_peers.contains_key(to)),
                    None => self.sfu_peers.len(),
                };
                if recipients > 0 {
                    call(CallInput::SendFile(file, to));
                }
                let _ = reply.send(recipients);
            }
            Command::Stats(id, reply) => {
                if id == SFU_PEER {
                    call(CallInput::Stats(reply));
                }
            }
            // Resumed transfers are for the mesh (`natter send`).
            Command::Expect(..) | Command::Leave(_) => {}
        }
    }

    /// What the session learned in an SFU room.
    fn sfu_event(&mut self, event: SessionEvent) {
        let call = |input| {
            if let Some(call) = &self.call {
                let _ = call.send(input);
            }
        };
        match event {
            SessionEvent::PeerJoined { peer, .. } => {
                self.sfu_peers.insert(peer.id.clone(), peer.name.clone());
                call(CallInput::PeerJoined(peer.id.clone(), peer.name.clone()));
                let _ = self.events.send(Event::PeerJoined {
                    id: peer.id,
                    name: peer.name,
                });
            }
            SessionEvent::PeerLeft { id, reason } => {
                call(CallInput::PeerLeft(id.clone()));
                let name = self.sfu_peers.remove(&id).unwrap_or_default();
                let _ = self.events.send(Event::PeerLeft { id, name, reason });
            }
            SessionEvent::Signal { from, signal } if from == SFU_PEER => call(CallInput::Signal(signal)),
            SessionEvent::Track { mid, peer, .. } => call(CallInput::Track { mid, peer }),
            SessionEvent::Chat { from, text } => {
                let name = self.sfu_peers.get(&from).cloned().unwrap_or_default();
                let _ = self.events.send(Event::Chat { from, name, text });
            }
            SessionEvent::Speaker { peer } => {
                let name = peer.as_ref().and_then(|p| self.sfu_peers.get(p)).cloned();
                let _ = self.events.send(Event::Speaker { id: peer, name });
            }
            other => self.mesh_event(other),
        }
    }

    /// A connection's settings: `ice_servers`, and video in our file's
    /// codec alone when we publish one.
    fn peer_config(&self, ice_servers: Vec<IceServer>) -> PeerConfig {
        let mut peer = PeerConfig {
            ice_servers,
            ..PeerConfig::default()
        };
        if let Some(video) = &self.config.video {
            natter_io::media_file::negotiate_only(&mut peer, video.format);
        }
        peer
    }

    fn session_event(&mut self, event: SessionEvent) {
        if let SessionEvent::Joined {
            resumed: false,
            sfu: true,
            ref ice_servers,
            max_participants,
            ..
        } = event
        {
            if !self.config.through_sfu {
                return self.mesh_event(event);
            }
            // A fresh session: a new connection to the SFU (the old one,
            // if any, ends with its sender).
            let config = Config {
                peer: self.peer_config(usable_ice_servers(ice_servers)),
                local_addresses: self.config.local_addresses.clone(),
                ..Config::default()
            };
            self.call = Some(sfu_call::spawn(CallParams {
                config,
                max_participants,
                peers: self.sfu_peers.clone(),
                signals: self.signals_tx.clone(),
                events: self.events.clone(),
                media: Media::of(&self.config),
            }));
        }
        if self.through_sfu() && !matches!(event, SessionEvent::Joined { .. }) {
            return self.sfu_event(event);
        }
        self.mesh_event(event);
    }

    fn mesh_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Joined {
                id,
                name,
                room,
                resumed,
                ice_servers,
                ..
            } => {
                self.ice_servers = usable_ice_servers(&ice_servers);
                self.away_since = None;
                self.backoff = BACKOFF_FIRST;
                if self.config.video.is_some() {
                    // The tiles of the others show our camera as on.
                    self.session.set_state(false, true, false);
                }
                if let Some(joined) = self.joined.take() {
                    let _ = joined.send(Ok((id.clone(), self.through_sfu())));
                }
                let _ = self.events.send(Event::Joined {
                    id,
                    name,
                    room,
                    resumed,
                });
            }
            SessionEvent::PeerJoined { peer, initiator } => {
                let our_id = self.session.id().unwrap_or_default().to_owned();
                let config = Config {
                    peer: self.peer_config(self.ice_servers.clone()),
                    local_addresses: self.config.local_addresses.clone(),
                    ..Config::default()
                };
                let input = peer::spawn(PeerParams {
                    id: peer.id.clone(),
                    name: peer.name.clone(),
                    // web/app.js: `polite: call.id < p.id`.
                    polite: our_id < peer.id,
                    initiator,
                    config,
                    media: Media::of(&self.config),
                    signals: self.signals_tx.clone(),
                    events: self.events.clone(),
                });
                self.peers.insert(peer.id.clone(), (input, peer.name.clone()));
                let _ = self.events.send(Event::PeerJoined {
                    id: peer.id,
                    name: peer.name,
                });
            }
            SessionEvent::PeerLeft { id, reason } => {
                let name = match self.peers.remove(&id) {
                    Some((peer, name)) => {
                        let _ = peer.send(PeerInput::Close);
                        name
                    }
                    None => String::new(),
                };
                let _ = self.events.send(Event::PeerLeft { id, name, reason });
            }
            // SFU rooms only (`sfu_event`).
            SessionEvent::PeerState { .. }
            | SessionEvent::Track { .. }
            | SessionEvent::Speaker { .. }
            | SessionEvent::Chat { .. } => {}
            SessionEvent::Signal { from, signal } => {
                if let Some((peer, _)) = self.peers.get(&from) {
                    let _ = peer.send(PeerInput::Signal(signal));
                }
            }
            SessionEvent::Refused {
                code,
                message,
                reference,
            } => {
                let _ = self.events.send(Event::Refused {
                    code,
                    message,
                    reference,
                });
            }
        }
    }
}

pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// The server's ICE servers that natter-io can use: STUN and TURN over
/// UDP at an IP address (natter-io resolves no names and drops TCP/TLS
/// transmits).
pub(crate) fn usable_ice_servers(servers: &[IceServerInfo]) -> Vec<IceServer> {
    servers
        .iter()
        .filter_map(|server| {
            let urls: Vec<String> = server.urls.iter().filter(|url| usable_url(url)).cloned().collect();
            (!urls.is_empty()).then(|| IceServer {
                urls,
                username: server.username.clone(),
                credential: server.credential.clone(),
            })
        })
        .collect()
}

fn usable_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("stun:").or_else(|| url.strip_prefix("turn:")) else {
        return false;
    };
    let (host_port, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.contains("transport=tcp") {
        return false;
    }
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    host.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ice_servers_natter_io_can_use() {
        let servers = vec![IceServerInfo {
            urls: vec![
                "stun:127.0.0.1:3478".to_owned(),
                "turn:127.0.0.1:3478?transport=udp".to_owned(),
                "turn:127.0.0.1:3478?transport=tcp".to_owned(),
                "turns:127.0.0.1:5349?transport=tcp".to_owned(),
                "turn:meet.example.org:3478".to_owned(),
                "turn:[::1]:3478".to_owned(),
            ],
            username: Some("u".to_owned()),
            credential: Some("p".to_owned()),
        }];
        let usable = usable_ice_servers(&servers);
        assert_eq!(
            usable[0].urls,
            [
                "stun:127.0.0.1:3478",
                "turn:127.0.0.1:3478?transport=udp",
                "turn:[::1]:3478"
            ]
        );
        assert!(usable_ice_servers(&[IceServerInfo {
            urls: vec!["turns:h".to_owned()],
            username: None,
            credential: None
        }])
        .is_empty());
    }
}
