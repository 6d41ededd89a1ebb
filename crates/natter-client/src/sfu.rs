//! SFU rooms (docs/signaling.md, "SFU rooms"): the signaling of a
//! participant of `natter serve`'s SFU rooms, which makes **one** connection,
//! to the peer id `sfu`, and is told by `track` messages which of its
//! receive sections carries whom.
//!
//! [`SfuClient`] runs the [`Session`] (join, heartbeat, resume,
//! reconnect with backoff) on tokio and hands the caller the SFU's
//! answers, candidates and `track`s as [`SfuEvent`]s; the caller owns
//! its peer connection and offers with [`SfuClient::offer`]: a section
//! per published track and a pool of `recvonly` slots
//! ([`receive_slots`]). After a reconnect that could not resume (the
//! server restarted, or the resume window passed) it gets a fresh
//! [`SfuEvent::Joined`] and offers again on a new connection.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{
    connect, handle_frame, resolve, send_outputs, sleep_until, ClientConfig, Socket, BACKOFF_FIRST, BACKOFF_MAX,
};
use crate::error::Error;
use crate::message::IceServerInfo;
use crate::session::{CloseVerdict, Output, Session, SessionEvent, Signal, SFU_PEER};

/// What happened in an SFU room.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    /// A `welcome`: joined as `id`; unless `resumed`, our connection to
    /// the SFU (if any) is gone and we offer on a new one.
    Joined {
        id: String,
        resumed: bool,
        ice_servers: Vec<IceServerInfo>,
    },
    PeerJoined {
        id: String,
        name: String,
    },
    /// `reason`: `left`, `timeout`, or `rejoined`.
    PeerLeft {
        id: String,
        reason: String,
    },
    /// The SFU's answer to our offer.
    Answer(String),
    /// One of the SFU's candidates (`RTCIceCandidateInit`), or `Null`
    /// for end-of-candidates.
    Candidate(Value),
    /// Section `mid` now carries `peer`'s track of `kind`, or nothing.
    Track {
        mid: String,
        peer: Option<String>,
        kind: String,
    },
    /// The room's active speaker is now `peer` (or nobody).
    Speaker {
        peer: Option<String>,
    },
    /// A chat line from `from`, relayed by the server.
    Chat {
        from: String,
        text: String,
    },
    /// The signaling socket dropped; reconnecting.
    Reconnecting {
        reason: String,
    },
    Refused {
        code: String,
        message: String,
        reference: Option<String>,
    },
    /// The session ended, with the error when it was not us leaving.
    Closed {
        error: Option<String>,
    },
}

/// How many receive slots of each kind an offer should carry for a room
/// of `max_participants`: one per other participant.
pub fn receive_slots(max_participants: usize) -> usize {
    max_participants.saturating_sub(1)
}

enum Command {
    Signal(Signal),
    Leave(oneshot::Sender<()>),
}

/// A participant of an SFU room. Dropping it leaves.
#[derive(Debug)]
pub struct SfuClient {
    id: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Signal(_) => "Signal",
            Command::Leave(_) => "Leave",
        })
    }
}

impl SfuClient {
    /// Connects and joins; returns once the server welcomed us into an
    /// SFU room, with the events from then on (the `Joined` event
    /// first). A mesh room is an error: its participants connect to
    /// each other ([`crate::Client`]).
    pub async fn join(config: &ClientConfig) -> Result<(SfuClient, mpsc::UnboundedReceiver<SfuEvent>), Error> {
        let (url, options) = resolve(config)?;
        let socket = connect(&url).await?;
        let mut session = Session::new(options);
        session.handle_open(Instant::now());
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (joined_tx, joined_rx) = oneshot::channel();
        let driver = Driver {
            session,
            socket: Some(socket),
            url,
            reconnect_timeout: config.reconnect_timeout,
            events: events_tx,
            commands: commands_rx,
            joined: Some(joined_tx),
            backoff: BACKOFF_FIRST,
        };
        tokio::spawn(driver.run());
        let id = joined_rx.await.map_err(|_| Error::Closed)?.map_err(Error::BadOptions)?;
        Ok((
            SfuClient {
                id,
                commands: commands_tx,
            },
            events_rx,
        ))
    }

    /// Our participant id, from the first `welcome`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Offers our connection to the SFU (dropped while reconnecting, as
    /// the web client drops signals; offer again after `Joined`).
    pub fn offer(&self, sdp: String) -> Result<(), Error> {
        self.signal(Signal::Offer(sdp))
    }

    /// Sends one of our candidates (the ICE-lite SFU ignores them, but
    /// the protocol allows them).
    pub fn candidate(&self, candidate: Value) -> Result<(), Error> {
        self.signal(Signal::Candidate(candidate))
    }

    fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.commands.send(Command::Signal(signal)).map_err(|_| Error::Closed)
    }

    /// Leaves the room; the SFU frees our slots everywhere.
    pub async fn leave(self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Leave(done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        }
    }
}

struct Driver {
    session: Session,
    socket: Option<Socket>,
    url: String,
    reconnect_timeout: Duration,
    events: mpsc::UnboundedSender<SfuEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Until the first `welcome`: where `join` waits.
    joined: Option<oneshot::Sender<Result<String, String>>>,
    backoff: Duration,
}

/// What ended a socket.
enum Ended {
    Closed(Option<u16>, String),
    Leave(Option<oneshot::Sender<()>>),
    /// The welcome was for a mesh room.
    NotSfu,
}

impl Driver {
    async fn run(mut self) {
        let result = self.drive().await;
        match (self.joined.take(), result) {
            (Some(joined), Err(e)) => {
                let _ = joined.send(Err(e));
            }
            (_, result) => {
                let _ = self.events.send(SfuEvent::Closed { error: result.err() });
            }
        }
    }

    async fn drive(&mut self) -> Result<(), String> {
        loop {
            let ended = self.serve_socket().await.unwrap_or_else(|e| Ended::Closed(None, e));
            let (code, reason) = match ended {
                Ended::Leave(done) => {
                    self.leave().await;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return Ok(());
                }
                Ended::NotSfu => {
                    return Err("the room is not an SFU room (natter serve --mesh runs mesh rooms)".to_owned())
                }
                Ended::Closed(code, reason) => (code, reason),
            };
            self.socket = None;
            match self.session.handle_close(code) {
                CloseVerdict::Closed => return Ok(()),
                CloseVerdict::Fatal { close_code, code, .. } => {
                    return Err(format!(
                        "refused: {} (close code {close_code})",
                        code.unwrap_or_default()
                    ))
                }
                CloseVerdict::Reconnect => {
                    let _ = self.events.send(SfuEvent::Reconnecting { reason: reason.clone() });
                    self.reconnect(reason).await?;
                }
            }
        }
    }

    /// Runs the socket until it ends or we leave; Err is a send failure.
    async fn serve_socket(&mut self) -> Result<Ended, String> {
        loop {
            if let Some(lost) = send_outputs(&mut self.session, self.socket.as_mut()).await? {
                return Ok(Ended::Closed(None, lost));
            }
            while let Some(event) = self.session.poll_event() {
                if let Some(ended) = self.session_event(event) {
                    return Ok(ended);
                }
            }
            let deadline = self.session.poll_timeout();
            let socket = self.socket.as_mut().ok_or("no socket")?;
            tokio::select! {
                frame = socket.next() => if let Some((code, reason)) = handle_frame(&mut self.session, frame) {
                    return Ok(Ended::Closed(code, reason));
                },
                command = self.commands.recv() => match command {
                    Some(Command::Signal(signal)) => {
                        self.session.signal(SFU_PEER, signal);
                    }
                    Some(Command::Leave(done)) => return Ok(Ended::Leave(Some(done))),
                    None => return Ok(Ended::Leave(None)),
                },
                () = sleep_until(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    fn session_event(&mut self, event: SessionEvent) -> Option<Ended> {
        let event = match event {
            SessionEvent::Joined {
                id,
                resumed,
                ice_servers,
                sfu,
                ..
            } => {
                if !sfu {
                    return Some(Ended::NotSfu);
                }
                self.backoff = BACKOFF_FIRST;
                if let Some(joined) = self.joined.take() {
                    let _ = joined.send(Ok(id.clone()));
                }
                SfuEvent::Joined {
                    id,
                    resumed,
                    ice_servers,
                }
            }
            SessionEvent::PeerJoined { peer, .. } => SfuEvent::PeerJoined {
                id: peer.id,
                name: peer.name,
            },
            SessionEvent::PeerLeft { id, reason } => SfuEvent::PeerLeft { id, reason },
            SessionEvent::PeerState { .. } => return None,
            SessionEvent::Signal { signal, .. } => match signal {
                Signal::Answer(sdp) => SfuEvent::Answer(sdp),
                Signal::Candidate(candidate) => SfuEvent::Candidate(candidate),
                // The SFU never offers (docs/signaling.md).
                Signal::Offer(_) => return None,
            },
            SessionEvent::Track { mid, peer, kind } => SfuEvent::Track { mid, peer, kind },
            SessionEvent::Speaker { peer } => SfuEvent::Speaker { peer },
            SessionEvent::Chat { from, text } => SfuEvent::Chat { from, text },
            SessionEvent::Refused {
                code,
                message,
                reference,
            } => SfuEvent::Refused {
                code,
                message,
                reference,
            },
        };
        let _ = self.events.send(event);
        None
    }

    /// Reconnects with backoff until a socket opens, or fails once none
    /// did for `reconnect_timeout`.
    async fn reconnect(&mut self, mut reason: String) -> Result<(), String> {
        let away_since = Instant::now();
        loop {
            if away_since.elapsed() >= self.reconnect_timeout {
                return Err(format!(
                    "the server at {} is gone: no connection for {} s (last: {reason})",
                    self.url,
                    away_since.elapsed().as_secs()
                ));
            }
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            match connect(&self.url).await {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.session.handle_open(Instant::now());
                    return Ok(());
                }
                Err(e) => reason = e.to_string(),
            }
        }
    }

    async fn leave(&mut self) {
        self.session.leave();
        if let Some(mut socket) = self.socket.take() {
            while let Some(Output::Send(text)) = self.session.poll_output() {
                let _ = socket.send(WsMessage::text(text)).await;
            }
            let _ = socket.close(None).await;
        }
    }
}

/// The label of the one data channel to the SFU (natter-sfu's relay).
pub const RELAY_LABEL: &str = "relay";
/// Receivers of a file over the relay acknowledge every this many bytes
/// (`web/relay.js` `ACKNOWLEDGE_BYTES`).
pub const ACKNOWLEDGE_BYTES: u64 = 128 * 1024;
/// Flags bit 0 of an envelope: the payload is text.
const RELAY_TEXT: u8 = 0x01;

/// One message on the relay channel (docs/signaling.md, "SFU rooms" 8)
/// carrying the web client's labelled channels (`web/relay.js`): the
/// payload of an envelope is `[label length][label][data]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayMessage<'a> {
    /// From the server: the sender's id. From us: the recipient's, or
    /// empty for everyone else in the room.
    pub peer: &'a str,
    pub label: &'a str,
    pub text: bool,
    pub data: &'a [u8],
}

/// Why a relay message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("a relay message of {0} bytes is shorter than its 3-byte header")]
    Short(usize),
    #[error("a relay message's peer id and label ({0} bytes) overrun its {1} bytes")]
    Overrun(usize, usize),
    #[error("a relay message's peer id or label is not UTF-8")]
    NotUtf8,
    #[error("a relay peer id or label of {0} bytes is longer than 255")]
    TooLong(usize),
}

impl<'a> RelayMessage<'a> {
    /// Reads an envelope as the server sent it (a borrowed view).
    pub fn parse(message: &'a [u8]) -> Result<Self, RelayError> {
        if message.len() < 3 {
            return Err(RelayError::Short(message.len()));
        }
        let peer_end = 2 + usize::from(message[1]);
        let label_end = peer_end + 1 + usize::from(*message.get(peer_end).unwrap_or(&0));
        if label_end > message.len() {
            return Err(RelayError::Overrun(label_end, message.len()));
        }
        let text = |bytes| std::str::from_utf8(bytes).map_err(|_| RelayError::NotUtf8);
        Ok(RelayMessage {
            peer: text(&message[2..peer_end])?,
            label: text(&message[peer_end + 1..label_end])?,
            text: message[0] & RELAY_TEXT != 0,
            data: &message[label_end..],
        })
    }

    /// Writes the envelope into `out` (cleared first).
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RelayError> {
        for field in [self.peer, self.label] {
            if field.len() > 255 {
                return Err(RelayError::TooLong(field.len()));
            }
        }
        out.clear();
        out.push(if self.text { RELAY_TEXT } else { 0 });
        // Both lengths were checked above.
        out.push(self.peer.len() as u8);
        out.extend_from_slice(self.peer.as_bytes());
        out.push(self.label.len() as u8);
        out.extend_from_slice(self.label.as_bytes());
        out.extend_from_slice(self.data);
        Ok(())
    }
}

/// The signaled `RTCIceCandidateInit` of a candidate, or `None` for
/// end-of-candidates: how the SFU's candidates are read.
pub fn parse_candidate(value: &Value) -> Option<natter_io::IceCandidate> {
    crate::peer::parse_candidate(value)
}

/// Which publisher each receive slot carries, from `track` messages.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    /// Section mid -> publisher id.
    tracks: std::collections::HashMap<String, String>,
}

impl Slots {
    /// A `track` message: section `mid` now carries `peer`, or nothing.
    pub fn handle_track(&mut self, mid: &str, peer: Option<&str>) {
        match peer {
            Some(peer) => {
                self.tracks.insert(mid.to_owned(), peer.to_owned());
            }
            None => {
                self.tracks.remove(mid);
            }
        }
    }

    /// `peer` left the room: its sections carry nothing from now on,
    /// before the server's `track` messages say so (its last packets
    /// may still be on their way).
    pub fn forget(&mut self, peer: &str) {
        self.tracks.retain(|_, p| p != peer);
    }

    /// The publisher section `mid` carries now.
    pub fn peer(&self, mid: &str) -> Option<&str> {
        self.tracks.get(mid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_envelopes_round_trip_and_bad_ones_are_errors() {
        let mut out = Vec::new();
        let message = RelayMessage {
            peer: "p1",
            label: "file:x",
            text: true,
            data: b"{}",
        };
        message.write(&mut out).unwrap();
        assert_eq!(out, b"\x01\x02p1\x06file:x{}");
        assert_eq!(RelayMessage::parse(&out), Ok(message));
        assert_eq!(RelayMessage::parse(b"\x00\x00"), Err(RelayError::Short(2)));
        assert_eq!(RelayMessage::parse(b"\x00\x05ab"), Err(RelayError::Overrun(8, 4)));
        assert_eq!(RelayMessage::parse(b"\x00\x01\xff\x00"), Err(RelayError::NotUtf8));
        let long = "x".repeat(256);
        let too_long = RelayMessage { peer: &long, ..message };
        assert_eq!(too_long.write(&mut out), Err(RelayError::TooLong(256)));
    }

    #[test]
    fn slots_follow_track_messages() {
        let mut slots = Slots::default();
        slots.handle_track("1", Some("a"));
        assert_eq!(slots.peer("1"), Some("a"));
        slots.handle_track("1", None);
        assert_eq!(slots.peer("1"), None);
        slots.handle_track("1", Some("a"));
        slots.handle_track("2", Some("a"));
        slots.handle_track("3", Some("b"));
        slots.forget("a");
        assert_eq!(
            [slots.peer("1"), slots.peer("2"), slots.peer("3")],
            [None, None, Some("b")]
        );
    }
}
