//! The application's side: handles that send commands to the task that
//! owns the connection, and wait for its answer.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use natter::jsep::SignalingState;
use natter::peer::{
    DataChannelId, DataChannelInit, DataChannelState, DataChannelStats, Description, Direction, Format, IceCandidate,
    MediaKind, PeerConnectionState, PeerEvent, PeerStats, Transceiver, TransceiverId,
};
use tokio::sync::mpsc;

use natter::endpoint::ConnectionHandle;

use crate::driver::{Command, Driver, Link, Read};
use crate::{Config, Error, OutgoingPacket};

/// A running peer connection: a handle to the task that owns the sans-IO
/// [`natter::PeerConnection`] and its sockets (its own, or an
/// [`Endpoint`](crate::Endpoint)'s). Cloning gives another handle to the
/// same connection. The connection ends with [`PeerConnection::close`],
/// or once every handle (data channels' and tracks' included) is dropped.
#[derive(Clone, Debug)]
pub struct PeerConnection {
    link: Link,
}

/// A data channel's handle: the channel's id and the connection's
/// link. Keeps the connection alive like a [`PeerConnection`] handle.
#[derive(Clone, Debug)]
pub struct DataChannel {
    id: DataChannelId,
    link: Link,
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

/// A message received on a data channel, from [`ChannelMessages`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMessage {
    pub data: Vec<u8>,
    /// PPID 51 (or 56, empty), a string: `data` is what the peer sent,
    /// not checked to be UTF-8.
    pub is_text: bool,
}

/// One data channel's messages, read apart from the connection's events
/// ([`DataChannel::messages`]). natter-io hands it at most
/// 1 MiB of the channel's messages unread (one message more when none
/// is), so a reader that is slow or stops holds back only its own
/// channel, until the connection's data channels are paused (see the
/// crate documentation on backpressure). Dropping it sends the channel's
/// later messages to the connection's events again; those it held are
/// dropped.
#[derive(Debug)]
pub struct ChannelMessages {
    pub(crate) id: DataChannelId,
    pub(crate) connection: ConnectionHandle,
    /// Which of the channel's receivers this is (a later call of
    /// [`DataChannel::messages`] makes another).
    pub(crate) serial: u64,
    pub(crate) messages: mpsc::UnboundedReceiver<ChannelMessage>,
    /// Tells the task what was read, which frees the channel's share.
    pub(crate) read: mpsc::UnboundedSender<Read>,
}

impl ChannelMessages {
    /// The channel's next message; `None` once it is closed (after every
    /// message it had), or the connection is.
    pub async fn recv(&mut self) -> Option<ChannelMessage> {
        let message = self.messages.recv().await?;
        self.report(message.data.len(), false);
        Some(message)
    }

    fn report(&self, bytes: usize, gone: bool) {
        let (connection, id, serial) = (self.connection, self.id, self.serial);
        // The task may have ended.
        let _ = self.read.send(Read {
            connection,
            id,
            serial,
            bytes,
            gone,
        });
    }
}

impl Drop for ChannelMessages {
    fn drop(&mut self) {
        self.messages.close();
        let mut bytes = 0;
        while let Ok(message) = self.messages.try_recv() {
            bytes += message.data.len();
        }
        self.report(bytes, true);
    }
}

/// What natter-io holds for the application (see the crate
/// documentation on backpressure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Bytes of data channel messages waiting to be handed over, or
    /// handed over (as events or to a [`ChannelMessages`]) and not read.
    pub queued_bytes: usize,
    /// The most `queued_bytes` has been.
    pub peak_queued_bytes: usize,
    /// The connection's data channels are not read: SCTP's window closes.
    pub data_paused: bool,
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

impl PeerConnection {
    pub(crate) fn new(link: Link) -> Self {
        PeerConnection { link }
    }

    /// Binds the sockets of `config.local_addresses`, makes the
    /// connection and starts its task on the current tokio runtime.
    /// Returns the handle and the connection's events.
    ///
    /// Fails if a socket cannot be bound, the configuration is refused
    /// (W3C's constructor errors), or there is no runtime.
    pub fn spawn(config: Config) -> Result<(PeerConnection, mpsc::Receiver<PeerEvent>), Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let peer = config.peer.clone();
        if peer.rtp_mode {
            return Err(Error::RtpMode);
        }
        // No endpoint handle: the task ends with its only connection.
        let (mut driver, commands, _) = Driver::bind(config, false)?;
        let (pc, events, _) = driver.connect(peer, commands)?;
        runtime.spawn(driver.run());
        Ok((pc, events))
    }

    /// W3C `createOffer`.
    pub async fn create_offer(&self) -> Result<Description, Error> {
        self.link.call(Command::CreateOffer).await
    }

    /// W3C `createAnswer`.
    pub async fn create_answer(&self) -> Result<Description, Error> {
        self.link.call(Command::CreateAnswer).await
    }

    /// W3C `setLocalDescription`.
    pub async fn set_local_description(&self, description: Description) -> Result<(), Error> {
        self.link
            .call(|reply| Command::SetLocalDescription(description, reply))
            .await
    }

    /// W3C `setRemoteDescription`.
    pub async fn set_remote_description(&self, description: Description) -> Result<(), Error> {
        self.link
            .call(|reply| Command::SetRemoteDescription(description, reply))
            .await
    }

    /// W3C `addIceCandidate`; `None` (or an empty candidate) for the end
    /// of candidates.
    pub async fn add_ice_candidate(&self, candidate: Option<IceCandidate>) -> Result<(), Error> {
        self.link.call(|reply| Command::AddIceCandidate(candidate, reply)).await
    }

    /// W3C `restartIce`.
    pub async fn restart_ice(&self) -> Result<(), Error> {
        self.link.call(Command::RestartIce).await
    }

    /// How much the application would send, bits per second, if the
    /// congestion controller's target ([`PeerEvent::TargetBitrate`]) let
    /// it; `None`: as much as it lets. A sender held below its target by
    /// its source is application-limited, and the controller then probes
    /// up to this demand rather than trusting the little it sees
    /// acknowledged ([`natter::PeerConnection::set_application_demand`]).
    pub async fn set_application_demand(&self, demand_bps: Option<u64>) -> Result<(), Error> {
        self.link
            .call(|reply| Command::SetApplicationDemand(demand_bps, reply))
            .await
    }

    /// W3C `createDataChannel`.
    pub async fn create_data_channel(&self, label: &str, init: DataChannelInit) -> Result<DataChannel, Error> {
        let label = label.to_owned();
        let id = self
            .link
            .call(|reply| Command::CreateDataChannel { label, init, reply })
            .await?;
        Ok(self.data_channel(id))
    }

    /// W3C `addTrack`: a track of `kind` to send frames on (see
    /// [`natter::PeerConnection::add_track`]); negotiate it, then
    /// [`Track::send_frame`] once connected.
    pub async fn add_track(&self, kind: MediaKind) -> Result<Track, Error> {
        let id = self.link.call(|reply| Command::AddTrack(kind, reply)).await?;
        Ok(self.track(id))
    }

    /// A track of `kind` sent as simulcast, one stream per RID of `rids`
    /// the peer takes (see [`natter::PeerConnection::add_simulcast_track`]);
    /// negotiate it, then [`Track::send_frame_rid`] once connected.
    pub async fn add_simulcast_track(&self, kind: MediaKind, rids: &[&str]) -> Result<Track, Error> {
        let rids = rids.iter().map(|r| (*r).to_owned()).collect();
        let id = (self.link)
            .call(|reply| Command::AddSimulcastTrack(kind, rids, reply))
            .await?;
        Ok(self.track(id))
    }

    /// W3C `addTransceiver`, such as a `recvonly` one to receive a kind of
    /// media without sending any.
    pub async fn add_transceiver(&self, kind: MediaKind, direction: Direction) -> Result<TransceiverId, Error> {
        self.link
            .call(|reply| Command::AddTransceiver(kind, direction, reply))
            .await
    }

    /// W3C `getTransceivers`.
    pub async fn transceivers(&self) -> Result<Vec<Transceiver>, Error> {
        self.link.call(Command::Transceivers).await
    }

    /// A handle for what transceiver `id` sends and receives, such as
    /// one a remote offer made ([`PeerEvent::Track`]).
    pub fn track(&self, id: TransceiverId) -> Track {
        Track {
            id,
            link: self.link.clone(),
        }
    }

    /// A handle for the channel `id`, such as one the peer opened
    /// ([`PeerEvent::DataChannel`]). Calls on it fail with
    /// [`Error::UnknownDataChannel`] once the channel is gone.
    pub fn data_channel(&self, id: DataChannelId) -> DataChannel {
        DataChannel {
            id,
            link: self.link.clone(),
        }
    }

    /// W3C `localDescription`, as SDP, with the candidates gathered so
    /// far (after [`PeerEvent::IceGatheringComplete`], all of them).
    pub async fn local_description(&self) -> Result<Option<String>, Error> {
        self.link.call(Command::LocalDescription).await
    }

    /// W3C `remoteDescription`, as SDP.
    pub async fn remote_description(&self) -> Result<Option<String>, Error> {
        self.link.call(Command::RemoteDescription).await
    }

    /// W3C `connectionState`.
    pub async fn connection_state(&self) -> Result<PeerConnectionState, Error> {
        self.link.call(Command::ConnectionState).await
    }

    /// W3C `signalingState`.
    pub async fn signaling_state(&self) -> Result<SignalingState, Error> {
        self.link.call(Command::SignalingState).await
    }

    /// A `getStats()`-like snapshot.
    pub async fn stats(&self) -> Result<PeerStats, Error> {
        self.link.call(Command::Stats).await
    }

    /// What natter-io holds for the application, in bytes.
    pub async fn delivery_stats(&self) -> Result<DeliveryStats, Error> {
        self.link.call(Command::DeliveryStats).await
    }

    /// The addresses of the connection's sockets (its host candidates).
    pub async fn local_addresses(&self) -> Result<Vec<SocketAddr>, Error> {
        self.link.call(Command::LocalAddresses).await
    }

    /// The answer to a [`PeerEvent::ResolveMdns`], for applications that
    /// resolve `.local` names themselves ([`Config::mdns`] `false`).
    pub async fn resolve_mdns(&self, name: &str, ip: Option<IpAddr>) -> Result<(), Error> {
        let name = name.to_owned();
        self.link.call(|reply| Command::ResolveMdns { name, ip, reply }).await
    }

    /// W3C `close`: DTLS close_notify goes out, the sockets close and the
    /// task ends; every later call fails with [`Error::Closed`], and the
    /// event channel ends. Closing a closed connection does nothing.
    pub async fn close(&self) {
        let _ = self.link.call(Command::Close).await;
    }
}

/// A transceiver's handle: its id and the connection's link.
#[derive(Clone, Debug)]
pub struct Track {
    id: TransceiverId,
    link: Link,
}

impl Track {
    pub fn id(&self) -> TransceiverId {
        self.id
    }

    /// Sends one encoded frame captured at `media_time` from the start of
    /// the track (see [`natter::PeerConnection::send_frame`]).
    pub async fn send_frame(&self, media_time: Duration, frame: Vec<u8>) -> Result<(), Error> {
        self.send(None, media_time, frame).await
    }

    /// Sends one encoded frame on the simulcast stream `rid` (see
    /// [`natter::PeerConnection::send_frame_rid`]).
    pub async fn send_frame_rid(&self, rid: &str, media_time: Duration, frame: Vec<u8>) -> Result<(), Error> {
        self.send(Some(rid.to_owned()), media_time, frame).await
    }

    async fn send(&self, rid: Option<String>, media_time: Duration, frame: Vec<u8>) -> Result<(), Error> {
        let id = self.id;
        self.link
            .call(|reply| Command::SendFrame {
                id,
                rid,
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
        self.link.call(|reply| Command::RequestKeyframe(id, reply)).await
    }

    /// Asks the peer for a keyframe of simulcast layer `rid` of what this
    /// transceiver receives (a PLI for that layer's SSRC).
    pub async fn request_layer_keyframe(&self, rid: &str) -> Result<(), Error> {
        let (id, rid) = (self.id, rid.to_owned());
        self.link
            .call(|reply| Command::RequestLayerKeyframe(id, rid, reply))
            .await
    }

    /// RTP mode: sends `packet` on this transceiver's track, with its
    /// SSRC and mid (see [`natter::PeerConnection::write_rtp`]).
    pub async fn write_rtp(&self, packet: OutgoingPacket) -> Result<(), Error> {
        let id = self.id;
        self.link.call(|reply| Command::WriteRtp { id, packet, reply }).await
    }

    /// The format and payload type this transceiver sends with, once an
    /// exchange agreed that it sends: what [`OutgoingPacket::payload_type`]
    /// must be.
    pub async fn send_payload_type(&self) -> Result<Option<(Format, u8)>, Error> {
        let id = self.id;
        self.link.call(|reply| Command::SendPayloadType(id, reply)).await
    }

    /// W3C `removeTrack`: stop sending on this transceiver from the next
    /// exchange (see [`natter::PeerConnection::remove_track`]).
    pub async fn remove(&self) -> Result<(), Error> {
        let id = self.id;
        self.link.call(|reply| Command::RemoveTrack(id, reply)).await
    }

    /// W3C `RTCRtpTransceiver.direction`, asked for in the next exchange.
    pub async fn set_direction(&self, direction: Direction) -> Result<(), Error> {
        let id = self.id;
        self.link
            .call(|reply| Command::SetDirection(id, direction, reply))
            .await
    }

    /// W3C `RTCRtpTransceiver.stop()`: the next offer rejects its section.
    pub async fn stop(&self) -> Result<(), Error> {
        let id = self.id;
        self.link.call(|reply| Command::StopTransceiver(id, reply)).await
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
        self.link.call(|reply| Command::Send { id, message, reply }).await
    }

    /// The channel's messages from now on, on a receiver of their own
    /// instead of as [`PeerEvent::DataChannelMessage`]s: a reader per
    /// channel, so that one that does not keep up holds back only its
    /// channel (see [`ChannelMessages`]). Its other events (open, close)
    /// stay with the connection's. Calling it again moves the channel's
    /// later messages to the new receiver.
    pub async fn messages(&self) -> Result<ChannelMessages, Error> {
        let id = self.id;
        self.link.call(|reply| Command::Messages(id, reply)).await
    }

    /// W3C `close`: what was queued goes first, then the streams are
    /// reset; [`PeerEvent::DataChannelClose`] follows. Closing a channel
    /// that is gone does nothing.
    pub async fn close(&self) -> Result<(), Error> {
        let id = self.id;
        self.link.call(|reply| Command::CloseChannel(id, reply)).await
    }

    /// W3C `bufferedAmount`.
    pub async fn buffered_amount(&self) -> Result<usize, Error> {
        let id = self.id;
        self.link.call(|reply| Command::BufferedAmount(id, reply)).await
    }

    /// W3C `bufferedAmountLowThreshold`: [`PeerEvent::BufferedAmountLow`]
    /// fires when the buffered amount falls to it.
    pub async fn set_buffered_amount_low_threshold(&self, threshold: usize) -> Result<(), Error> {
        let id = self.id;
        self.link
            .call(|reply| Command::SetBufferedAmountLowThreshold(id, threshold, reply))
            .await
    }

    /// The channel's label, options, state and counters.
    pub async fn info(&self) -> Result<DataChannelInfo, Error> {
        let id = self.id;
        self.link.call(|reply| Command::ChannelInfo(id, reply)).await
    }
}
