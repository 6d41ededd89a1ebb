//! The application's side: handles that send commands to the task that
//! owns the connection, and wait for its answer.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use natter::jsep::SignalingState;
use natter::peer::{
    DataChannelId, DataChannelInit, DataChannelState, DataChannelStats, Description, Direction, IceCandidate,
    MediaKind, PeerConnectionState, PeerEvent, PeerStats, Transceiver, TransceiverId,
};
use tokio::sync::{mpsc, oneshot};

use crate::driver::{Command, Driver};
use crate::{Config, Error};

/// How many commands may wait for the task; senders wait beyond that.
const COMMAND_CAPACITY: usize = 256;

/// A running peer connection: a handle to the task that owns the sans-IO
/// [`natter::PeerConnection`] and its sockets. Cloning gives another
/// handle to the same connection. The connection ends with
/// [`PeerConnection::close`], or once every handle (data channels'
/// included) is dropped.
#[derive(Clone, Debug)]
pub struct PeerConnection {
    commands: mpsc::Sender<Command>,
}

/// A data channel's handle: the channel's id and the connection's
/// command channel. Keeps the connection alive like a
/// [`PeerConnection`] handle.
#[derive(Clone, Debug)]
pub struct DataChannel {
    id: DataChannelId,
    commands: mpsc::Sender<Command>,
}

/// One data channel message to send (W3C `send` of a string or of
/// bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// PPID 51 (RFC 8831 §8).
    Text(String),
    /// PPID 53.
    Binary(Vec<u8>),
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.to_owned())
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes)
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Self {
        Message::Binary(bytes.to_vec())
    }
}

/// What a data channel is, as its `RTCDataChannel` attributes say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataChannelInfo {
    pub id: DataChannelId,
    pub label: String,
    pub protocol: String,
    pub ordered: bool,
    pub max_retransmits: Option<u32>,
    pub max_packet_life_time: Option<u32>,
    pub negotiated: bool,
    /// W3C `id`: the SCTP stream, once chosen.
    pub stream_id: Option<u16>,
    pub ready_state: DataChannelState,
    pub stats: DataChannelStats,
}

async fn call<T>(
    commands: &mpsc::Sender<Command>,
    make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
) -> Result<T, Error> {
    let (reply, answer) = oneshot::channel();
    commands.send(make(reply)).await.map_err(|_| Error::Closed)?;
    answer.await.map_err(|_| Error::Closed)?
}

impl PeerConnection {
    /// Binds the sockets of `config.local_addresses`, makes the
    /// connection and starts its task on the current tokio runtime.
    /// Returns the handle and the connection's events.
    ///
    /// Fails if a socket cannot be bound, the configuration is refused
    /// (W3C's constructor errors), or there is no runtime.
    pub fn spawn(config: Config) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
        let (events_sender, events) = mpsc::channel(config.event_capacity.max(1));
        let driver = Driver::new(config, Instant::now(), receiver, events_sender)?;
        runtime.spawn(driver.run());
        Ok((PeerConnection { commands }, events))
    }

    /// W3C `createOffer`.
    pub async fn create_offer(&self) -> Result<Description, Error> {
        call(&self.commands, Command::CreateOffer).await
    }

    /// W3C `createAnswer`.
    pub async fn create_answer(&self) -> Result<Description, Error> {
        call(&self.commands, Command::CreateAnswer).await
    }

    /// W3C `setLocalDescription`.
    pub async fn set_local_description(&self, description: Description) -> Result<(), Error> {
        call(&self.commands, |reply| Command::SetLocalDescription(description, reply)).await
    }

    /// W3C `setRemoteDescription`.
    pub async fn set_remote_description(&self, description: Description) -> Result<(), Error> {
        call(&self.commands, |reply| {
            Command::SetRemoteDescription(description, reply)
        })
        .await
    }

    /// W3C `addIceCandidate`; `None` (or an empty candidate) for the end
    /// of candidates.
    pub async fn add_ice_candidate(&self, candidate: Option<IceCandidate>) -> Result<(), Error> {
        call(&self.commands, |reply| Command::AddIceCandidate(candidate, reply)).await
    }

    /// W3C `restartIce`.
    pub async fn restart_ice(&self) -> Result<(), Error> {
        call(&self.commands, Command::RestartIce).await
    }

    /// W3C `createDataChannel`.
    pub async fn create_data_channel(&self, label: &str, init: DataChannelInit) -> Result<DataChannel, Error> {
        let label = label.to_owned();
        let id = call(&self.commands, |reply| Command::CreateDataChannel {
            label,
            init,
            reply,
        })
        .await?;
        Ok(self.data_channel(id))
    }

    /// W3C `addTrack`: a track of `kind` to send frames on (see
    /// [`natter::PeerConnection::add_track`]); negotiate it, then
    /// [`Track::send_frame`] once connected.
    pub async fn add_track(&self, kind: MediaKind) -> Result<Track, Error> {
        let id = call(&self.commands, |reply| Command::AddTrack(kind, reply)).await?;
        Ok(self.track(id))
    }

    /// W3C `addTransceiver`, such as a `recvonly` one to receive a kind of
    /// media without sending any.
    pub async fn add_transceiver(&self, kind: MediaKind, direction: Direction) -> Result<TransceiverId, Error> {
        call(&self.commands, |reply| Command::AddTransceiver(kind, direction, reply)).await
    }

    /// W3C `getTransceivers`.
    pub async fn transceivers(&self) -> Result<Vec<Transceiver>, Error> {
        call(&self.commands, Command::Transceivers).await
    }

    /// A handle for what transceiver `id` sends and receives, such as
    /// one a remote offer made ([`PeerEvent::Track`]).
    pub fn track(&self, id: TransceiverId) -> Track {
        Track {
            id,
            commands: self.commands.clone(),
        }
    }

    /// A handle for the channel `id`, such as one the peer opened
    /// ([`PeerEvent::DataChannel`]). Calls on it fail with
    /// [`Error::UnknownDataChannel`] once the channel is gone.
    pub fn data_channel(&self, id: DataChannelId) -> DataChannel {
        DataChannel {
            id,
            commands: self.commands.clone(),
        }
    }

    /// W3C `localDescription`, as SDP, with the candidates gathered so
    /// far (after [`PeerEvent::IceGatheringComplete`], all of them).
    pub async fn local_description(&self) -> Result<Option<String>, Error> {
        call(&self.commands, Command::LocalDescription).await
    }

    /// W3C `remoteDescription`, as SDP.
    pub async fn remote_description(&self) -> Result<Option<String>, Error> {
        call(&self.commands, Command::RemoteDescription).await
    }

    /// W3C `connectionState`.
    pub async fn connection_state(&self) -> Result<PeerConnectionState, Error> {
        call(&self.commands, Command::ConnectionState).await
    }

    /// W3C `signalingState`.
    pub async fn signaling_state(&self) -> Result<SignalingState, Error> {
        call(&self.commands, Command::SignalingState).await
    }

    /// A `getStats()`-like snapshot.
    pub async fn stats(&self) -> Result<PeerStats, Error> {
        call(&self.commands, Command::Stats).await
    }

    /// The addresses of the connection's sockets (its host candidates).
    pub async fn local_addresses(&self) -> Result<Vec<SocketAddr>, Error> {
        call(&self.commands, Command::LocalAddresses).await
    }

    /// The answer to a [`PeerEvent::ResolveMdns`], for applications that
    /// resolve `.local` names themselves ([`Config::mdns`] `false`).
    pub async fn resolve_mdns(&self, name: &str, ip: Option<IpAddr>) -> Result<(), Error> {
        let name = name.to_owned();
        call(&self.commands, |reply| Command::ResolveMdns { name, ip, reply }).await
    }

    /// W3C `close`: DTLS close_notify goes out, the sockets close and the
    /// task ends; every later call fails with [`Error::Closed`], and the
    /// event channel ends. Closing a closed connection does nothing.
    pub async fn close(&self) {
        let _ = call(&self.commands, Command::Close).await;
    }
}

/// A transceiver's handle: its id and the connection's command channel.
#[derive(Clone, Debug)]
pub struct Track {
    id: TransceiverId,
    commands: mpsc::Sender<Command>,
}

impl Track {
    pub fn id(&self) -> TransceiverId {
        self.id
    }

    /// Sends one encoded frame captured at `media_time` from the start of
    /// the track (see [`natter::PeerConnection::send_frame`]).
    pub async fn send_frame(&self, media_time: Duration, frame: Vec<u8>) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::SendFrame {
            id,
            media_time,
            frame,
            reply,
        })
        .await
    }

    /// Asks the peer for a keyframe of the stream this transceiver
    /// receives (PLI).
    pub async fn request_keyframe(&self) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::RequestKeyframe(id, reply)).await
    }

    /// W3C `removeTrack`: stop sending on this transceiver from the next
    /// exchange (see [`natter::PeerConnection::remove_track`]).
    pub async fn remove(&self) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::RemoveTrack(id, reply)).await
    }

    /// W3C `RTCRtpTransceiver.direction`, asked for in the next exchange.
    pub async fn set_direction(&self, direction: Direction) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::SetDirection(id, direction, reply)).await
    }

    /// W3C `RTCRtpTransceiver.stop()`: the next offer rejects its section.
    pub async fn stop(&self) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::StopTransceiver(id, reply)).await
    }
}

impl DataChannel {
    pub fn id(&self) -> DataChannelId {
        self.id
    }

    /// W3C `send`: queues the message. Fails unless the channel is open,
    /// if the message is larger than the peer's `a=max-message-size`, or
    /// if it would queue more than the configured `max_buffered_amount`.
    pub async fn send(&self, message: impl Into<Message>) -> Result<(), Error> {
        let (id, message) = (self.id, message.into());
        call(&self.commands, |reply| Command::Send { id, message, reply }).await
    }

    /// W3C `close`: what was queued goes first, then the streams are
    /// reset; [`PeerEvent::DataChannelClose`] follows. Closing a channel
    /// that is gone does nothing.
    pub async fn close(&self) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::CloseChannel(id, reply)).await
    }

    /// W3C `bufferedAmount`.
    pub async fn buffered_amount(&self) -> Result<usize, Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::BufferedAmount(id, reply)).await
    }

    /// W3C `bufferedAmountLowThreshold`: [`PeerEvent::BufferedAmountLow`]
    /// fires when the buffered amount falls to it.
    pub async fn set_buffered_amount_low_threshold(&self, threshold: usize) -> Result<(), Error> {
        let id = self.id;
        call(&self.commands, |reply| {
            Command::SetBufferedAmountLowThreshold(id, threshold, reply)
        })
        .await
    }

    /// The channel's label, options, state and counters.
    pub async fn info(&self) -> Result<DataChannelInfo, Error> {
        let id = self.id;
        call(&self.commands, |reply| Command::ChannelInfo(id, reply)).await
    }
}
