//! The task that owns an endpoint: its sockets, the sans-IO
//! [`natter::endpoint::Endpoint`] with every connection on them, its
//! timer and its mDNS resolver. One loop, in natter's documented order:
//! after every input or command, `poll_transmit` until `None` (each
//! datagram sent from the socket it names), then `poll_timeout`, then
//! `poll_event` until `None` (each event queued for its connection's
//! channel); then wait for whichever comes first of a command, the
//! deadline, a datagram, room in a connection's event channel, a handle
//! dropped, an mDNS answer.
//!
//! [`PeerConnection::spawn`](crate::PeerConnection::spawn) runs this
//! task with one connection on sockets of its own;
//! [`Endpoint::bind`](crate::Endpoint::bind) with as many as the
//! application makes.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use natter::endpoint::{ConnectionHandle, EndpointStats};
use natter::jsep::SignalingState;
use natter::peer::Transmit;
use natter::peer::{
    DataChannelId, DataChannelInit, Description, Direction, Format, IceCandidate, MediaKind, PeerConfig,
    PeerConnectionState, PeerEvent, PeerStats, Transceiver, TransceiverId,
};
use natter_ice::Transport;
use quinn_udp::RecvMeta;
use tokio::sync::{mpsc, oneshot};

use crate::delivery::{Delivery, Sink};
use crate::handle::{ChannelMessage, ChannelMessages, DataChannelInfo, DeliveryStats, Message, PeerConnection};
use crate::mdns::Resolver;
use crate::rtp::{OutgoingPacket, RtpPacket, RTP_CAPACITY};
use crate::udp::{self, receive_buffers, ReceiveClock, UdpSocket, RECEIVE_BUFFERS};
use crate::{Config, Error};

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// RTP mode: the packet the datagram just handed to `connection` carried,
/// if any, copied into its channel (dropped and counted when the
/// application lags, so that a slow reader never holds the socket up).
fn take_rtp(
    endpoint: &mut natter::endpoint::Endpoint,
    peers: &mut HashMap<ConnectionHandle, Peer>,
    connection: ConnectionHandle,
) {
    let Some(peer) = peers.get_mut(&connection) else { return };
    let Some(rtp) = &peer.rtp else { return };
    let Some(mut pc) = endpoint.connection(connection) else {
        return;
    };
    let Some(packet) = pc.poll_rtp() else { return };
    match rtp.try_send(RtpPacket::from(&packet)) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            peer.rtp_dropped += 1;
            if peer.rtp_dropped.is_power_of_two() {
                tracing::warn!(%connection, dropped = peer.rtp_dropped, "RTP packets dropped: the application reads them too slowly");
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => peer.rtp = None,
    }
}

/// What a connection's handle asks of the task.
pub(crate) enum Command {
    CreateOffer(Reply<Description>),
    CreateAnswer(Reply<Description>),
    SetLocalDescription(Description, Reply<()>),
    SetRemoteDescription(Description, Reply<()>),
    AddIceCandidate(Option<IceCandidate>, Reply<()>),
    RestartIce(Reply<()>),
    CreateDataChannel {
        label: String,
        init: DataChannelInit,
        reply: Reply<DataChannelId>,
    },
    Send {
        id: DataChannelId,
        message: Message,
        reply: Reply<()>,
    },
    CloseChannel(DataChannelId, Reply<()>),
    AddTrack(MediaKind, Reply<TransceiverId>),
    AddSimulcastTrack(MediaKind, Vec<String>, Reply<TransceiverId>),
    AddTransceiver(MediaKind, Direction, Reply<TransceiverId>),
    RemoveTrack(TransceiverId, Reply<()>),
    SetDirection(TransceiverId, Direction, Reply<()>),
    StopTransceiver(TransceiverId, Reply<()>),
    Transceivers(Reply<Vec<Transceiver>>),
    SendFrame {
        id: TransceiverId,
        /// The simulcast stream, or `None` for the first.
        rid: Option<String>,
        media_time: Duration,
        frame: Vec<u8>,
        reply: Reply<()>,
    },
    RequestKeyframe(TransceiverId, Reply<()>),
    RequestLayerKeyframe(TransceiverId, String, Reply<()>),
    SetApplicationDemand(Option<u64>, Reply<()>),
    WriteRtp {
        id: TransceiverId,
        packet: OutgoingPacket,
        reply: Reply<()>,
    },
    SendPayloadType(TransceiverId, Reply<Option<(Format, u8)>>),
    BufferedAmount(DataChannelId, Reply<usize>),
    SetBufferedAmountLowThreshold(DataChannelId, usize, Reply<()>),
    ChannelInfo(DataChannelId, Reply<DataChannelInfo>),
    Messages(DataChannelId, Reply<ChannelMessages>),
    DeliveryStats(Reply<DeliveryStats>),
    LocalDescription(Reply<Option<String>>),
    RemoteDescription(Reply<Option<String>>),
    ConnectionState(Reply<PeerConnectionState>),
    SignalingState(Reply<SignalingState>),
    Stats(Reply<PeerStats>),
    LocalAddresses(Reply<Vec<SocketAddr>>),
    ResolveMdns {
        name: String,
        ip: Option<IpAddr>,
        reply: Reply<()>,
    },
    Close(Reply<()>),
}

/// What reaches the task on its command channel.
pub(crate) enum Envelope {
    /// A command for one connection.
    Peer(ConnectionHandle, Command),
    /// A new connection on the endpoint's sockets.
    Connect(Box<PeerConfig>, Reply<Connected>),
    Stats(Reply<EndpointStats>),
}

/// A new connection's handle, its events and, in RTP mode, its packets.
pub(crate) type Connected = (
    PeerConnection,
    mpsc::Receiver<PeerEvent>,
    Option<mpsc::Receiver<RtpPacket>>,
);

/// How a handle reaches its connection: the task's command channel and
/// the connection's handle there. Its clones share one [`Life`].
#[derive(Clone, Debug)]
pub(crate) struct Link {
    commands: mpsc::Sender<Envelope>,
    connection: ConnectionHandle,
    _life: Arc<Life>,
}

impl Link {
    /// Sends the command `make` builds and waits for its answer.
    pub(crate) async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        let envelope = Envelope::Peer(self.connection, make(reply));
        self.commands.send(envelope).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

/// Tells the task when the last clone of a handle is dropped: the
/// connection's (`Some`), which then closes, or the endpoint's (`None`).
#[derive(Debug)]
pub(crate) struct Life {
    dropped: mpsc::UnboundedSender<Option<ConnectionHandle>>,
    connection: Option<ConnectionHandle>,
}

impl Drop for Life {
    fn drop(&mut self) {
        // The task may have ended already.
        let _ = self.dropped.send(self.connection);
    }
}

/// A [`ChannelMessages`] read `bytes` of its channel's messages, or was
/// dropped (`gone`) with `bytes` unread.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) connection: ConnectionHandle,
    pub(crate) id: DataChannelId,
    pub(crate) serial: u64,
    pub(crate) bytes: usize,
    pub(crate) gone: bool,
}

/// At most about this many datagrams are read from a socket before the
/// next flush (a `recvmmsg` batch may end past it).
const RECEIVE_BATCH: usize = 64;

/// At most this many commands are taken before the next flush.
const COMMAND_BATCH: usize = 64;

/// Why the loop woke up.
enum Wake {
    Command(Option<Envelope>),
    Timeout,
    /// A connection's event channel has room (or its receiver is gone).
    Room(ConnectionHandle, Option<mpsc::OwnedPermit<PeerEvent>>),
    Dropped(Option<ConnectionHandle>),
    /// A channel's own receiver read messages.
    Read(Read),
    /// Receive buffers a socket filled.
    Received(usize, io::Result<usize>),
    Mdns,
}

/// A connection's side of the task: where its events go.
struct Peer {
    events: mpsc::Sender<PeerEvent>,
    /// Events polled from the connection on their way to the
    /// application, and the bytes of messages it has not read.
    pending: Delivery,
    /// Slots of `events` held while events wait, so that the task hears
    /// (from the task waiting for room) each time the application reads
    /// one; given back once none wait.
    hoard: Vec<mpsc::OwnedPermit<PeerEvent>>,
    /// The channels read apart ([`ChannelMessages`]): which receiver, and
    /// where their messages go.
    readers: HashMap<DataChannelId, (u64, mpsc::UnboundedSender<ChannelMessage>)>,
    /// The application dropped its receiver: events are discarded.
    events_closed: bool,
    /// A task waits for room in `events` and reports on `room`.
    waiting_for_room: bool,
    /// Its data channels are not read ([`Delivery::data_paused`]).
    data_paused: bool,
    /// RTP mode: where its packets go, until the receiver is dropped.
    rtp: Option<mpsc::Sender<RtpPacket>>,
    /// RTP packets dropped because the application did not take them.
    rtp_dropped: u64,
}

impl Peer {
    /// A slot of the event channel, if it has one free.
    fn reserve(&mut self) -> Option<mpsc::OwnedPermit<PeerEvent>> {
        match self.events.clone().try_reserve_owned() {
            Ok(permit) => Some(permit),
            Err(mpsc::error::TrySendError::Full(_)) => None,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.close_events();
                None
            }
        }
    }

    /// The application dropped its event channel: what would go there is
    /// discarded.
    fn close_events(&mut self) {
        self.events_closed = true;
        self.hoard.clear();
        self.pending.events_closed();
    }

    /// Tells the delivery how many of its events the application read
    /// from the event channel: those no longer in it (the slots neither
    /// free nor held here; one the waiting task just took counts as
    /// unread until it arrives).
    fn sync_events(&mut self) {
        let free = self.events.capacity() + self.hoard.len();
        let in_channel = self.events.max_capacity().saturating_sub(free);
        let read = self.pending.in_events().saturating_sub(in_channel);
        self.pending.events_read(read);
    }

    /// A message for channel `id`'s own receiver; if that is gone, the
    /// message with it, and the channel's next ones go to the events.
    fn hand_to_reader(&mut self, id: DataChannelId, event: PeerEvent) {
        let PeerEvent::DataChannelMessage { data, is_text, .. } = event else {
            return;
        };
        let len = data.len();
        let sent =
            (self.readers.get(&id)).is_some_and(|(_, reader)| reader.send(ChannelMessage { data, is_text }).is_ok());
        if !sent {
            self.readers.remove(&id);
            self.pending.reader_read(id, len);
            self.pending.set_reader(id, false);
        }
    }
}

pub(crate) struct Driver {
    endpoint: natter::endpoint::Endpoint,
    sockets: Vec<UdpSocket>,
    peers: HashMap<ConnectionHandle, Peer>,
    commands: mpsc::Receiver<Envelope>,
    /// For the handles of connections made later; weak, so that the
    /// channel ends when the application's handles are all gone.
    command_sender: mpsc::WeakSender<Envelope>,
    dropped: mpsc::UnboundedReceiver<Option<ConnectionHandle>>,
    dropped_sender: mpsc::UnboundedSender<Option<ConnectionHandle>>,
    room: mpsc::UnboundedReceiver<(ConnectionHandle, Option<mpsc::OwnedPermit<PeerEvent>>)>,
    room_sender: mpsc::UnboundedSender<(ConnectionHandle, Option<mpsc::OwnedPermit<PeerEvent>>)>,
    read: mpsc::UnboundedReceiver<Read>,
    read_sender: mpsc::UnboundedSender<Read>,
    /// The last [`ChannelMessages::serial`] handed out.
    reader_serial: u64,
    /// An [`Endpoint`](crate::Endpoint) handle lives: the task waits for
    /// connections even while it has none.
    endpoint_handle: bool,
    config: Config,
    /// Opened with the first name to resolve.
    mdns: Option<Resolver>,
    /// Who asked for each name being resolved.
    mdns_waiting: HashMap<String, Vec<ConnectionHandle>>,
    /// Names asked for when no mDNS socket could be opened.
    unresolvable: Vec<(String, ConnectionHandle)>,
    /// Connections whose events were polled in this flush.
    touched: Vec<ConnectionHandle>,
    /// [`RECEIVE_BUFFERS`] receive buffers of `slot` bytes each, for one
    /// `recvmmsg`, and what the kernel said of each.
    buf: Vec<u8>,
    slot: usize,
    meta: [RecvMeta; RECEIVE_BUFFERS],
    /// When each datagram arrived (the kernel's timestamp), as the time
    /// the endpoint is given with it.
    receive_clock: ReceiveClock,
    /// What the endpoint's next transmit wrote: a datagram or a GSO
    /// batch.
    send_buf: Vec<u8>,
    /// The socket read first next time, so that none starves the others.
    next_socket: usize,
    /// Transmits over TCP or TLS dropped (not supported yet).
    unsupported_transmits: u64,
}

impl Driver {
    /// Binds the sockets of `config.local_addresses`, without any
    /// connection yet; `endpoint_handle` says whether an endpoint handle
    /// holds the task open.
    pub(crate) fn bind(
        config: Config,
        endpoint_handle: bool,
    ) -> Result<(Driver, mpsc::Sender<Envelope>, Arc<Life>), Error> {
        let mut sockets = Vec::new();
        for address in config.local_addresses.resolve()? {
            let socket = UdpSocket::bind(address, config.socket_buffer_size)
                .map_err(|source| Error::Bind { address, source })?;
            tracing::debug!(address = %socket.address, "socket bound");
            sockets.push(socket);
        }
        let endpoint = natter::endpoint::Endpoint::new(sockets.iter().map(|s| s.address).collect());
        // With GRO one buffer takes several datagrams: the largest UDP
        // payload fits them all.
        let slot = config.max_datagram_size.max(1500);
        let (command_sender, commands) = mpsc::channel(COMMAND_CAPACITY);
        let (dropped_sender, dropped) = mpsc::unbounded_channel();
        let (room_sender, room) = mpsc::unbounded_channel();
        let (read_sender, read) = mpsc::unbounded_channel();
        let life = Arc::new(Life {
            dropped: dropped_sender.clone(),
            connection: None,
        });
        let driver = Driver {
            endpoint,
            sockets,
            peers: HashMap::new(),
            commands,
            command_sender: command_sender.downgrade(),
            dropped,
            dropped_sender,
            room,
            room_sender,
            read,
            read_sender,
            reader_serial: 0,
            endpoint_handle,
            // Zeroed pages are mapped when the kernel first writes them.
            buf: vec![0; slot * RECEIVE_BUFFERS],
            slot,
            meta: [RecvMeta::default(); RECEIVE_BUFFERS],
            receive_clock: ReceiveClock::default(),
            send_buf: Vec::new(),
            config,
            mdns: None,
            mdns_waiting: HashMap::new(),
            unresolvable: Vec::new(),
            touched: Vec::new(),
            next_socket: 0,
            unsupported_transmits: 0,
        };
        Ok((driver, command_sender, life))
    }

    pub(crate) fn local_addresses(&self) -> &[SocketAddr] {
        self.endpoint.local_addresses()
    }

    /// A new connection on the task's sockets, and its handle.
    pub(crate) fn connect(
        &mut self,
        mut peer: PeerConfig,
        commands: mpsc::Sender<Envelope>,
    ) -> Result<Connected, Error> {
        // The core reads no clock: sender reports need the wall clock's time.
        peer.wall_clock = peer.wall_clock.or_else(|| Some(SystemTime::now()));
        let peer_rtp_mode = peer.rtp_mode;
        let now = Instant::now();
        self.receive_clock.advance(now);
        let pc = natter::PeerConnection::new(peer, now)?;
        let connection = self.endpoint.insert(pc)?;
        let (events_sender, events) = mpsc::channel(self.config.event_capacity.max(1));
        let (rtp_sender, rtp) = match peer_rtp_mode {
            true => {
                let (sender, receiver) = mpsc::channel(RTP_CAPACITY);
                (Some(sender), Some(receiver))
            }
            false => (None, None),
        };
        self.peers.insert(
            connection,
            Peer {
                events: events_sender,
                pending: Delivery::default(),
                hoard: Vec::new(),
                readers: HashMap::new(),
                events_closed: false,
                waiting_for_room: false,
                data_paused: false,
                rtp: rtp_sender,
                rtp_dropped: 0,
            },
        );
        let life = Arc::new(Life {
            dropped: self.dropped_sender.clone(),
            connection: Some(connection),
        });
        let link = Link {
            commands,
            connection,
            _life: life,
        };
        Ok((PeerConnection::new(link), events, rtp))
    }

    pub(crate) async fn run(mut self) {
        let mut sleep = Box::pin(tokio::time::sleep_until(tokio::time::Instant::now()));
        loop {
            self.flush().await;
            if self.peers.is_empty() && !self.endpoint_handle {
                tracing::debug!("no connection and no endpoint handle left: the task ends");
                return;
            }
            let deadline = [
                self.endpoint.poll_timeout(),
                self.mdns.as_ref().and_then(Resolver::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(deadline) = deadline {
                sleep.as_mut().reset(deadline.into());
            }
            let (sockets, next_socket) = (&self.sockets, self.next_socket);
            let (buf, slot, meta) = (&mut self.buf, self.slot, &mut self.meta);
            let has_mdns = self.mdns.is_some();
            let mdns = self.mdns.as_mut();
            // Unbiased: a busy command channel must not starve the sockets.
            let wake = tokio::select! {
                envelope = self.commands.recv() => Wake::Command(envelope),
                () = &mut sleep, if deadline.is_some() => Wake::Timeout,
                Some((connection, permit)) = self.room.recv() => Wake::Room(connection, permit),
                Some(connection) = self.dropped.recv() => Wake::Dropped(connection),
                Some(read) = self.read.recv() => Wake::Read(read),
                (index, received) = recv_any(sockets, buf, slot, meta, next_socket) => Wake::Received(index, received),
                () = async {
                    match mdns {
                        Some(mdns) => mdns.receive().await,
                        None => std::future::pending().await,
                    }
                }, if has_mdns => {
                    Wake::Mdns
                },
            };
            match wake {
                Wake::Command(Some(envelope)) => {
                    self.handle_envelope(envelope).await;
                    // Commands that came meanwhile go before the flush, so
                    // that SCTP can bundle small messages into one packet.
                    for _ in 1..COMMAND_BATCH {
                        match self.commands.try_recv() {
                            Ok(envelope) => self.handle_envelope(envelope).await,
                            Err(_) => break,
                        }
                    }
                }
                Wake::Command(None) => {
                    tracing::debug!("every handle dropped: closing");
                    let connections: Vec<_> = self.peers.keys().copied().collect();
                    for connection in connections {
                        self.close(connection).await;
                    }
                    return;
                }
                Wake::Timeout => {
                    let now = Instant::now();
                    self.receive_clock.advance(now);
                    self.endpoint.handle_timeout(now);
                    if let Some(mdns) = self.mdns.as_mut() {
                        mdns.handle_timeout(now);
                    }
                    self.take_mdns_answers();
                }
                Wake::Room(connection, permit) => self.room_for(connection, permit),
                Wake::Dropped(Some(connection)) => {
                    tracing::debug!(%connection, "every handle of the connection dropped: closing it");
                    self.close(connection).await;
                }
                Wake::Dropped(None) => self.endpoint_handle = false,
                Wake::Read(read) => self.read_by_reader(read),
                Wake::Received(index, received) => {
                    self.next_socket = (index + 1) % self.sockets.len().max(1);
                    match received {
                        Ok(filled) => {
                            let mut read = self.handle_received(index, filled);
                            // What else waits on the socket goes in before
                            // the flush: fewer passes through SCTP's output.
                            while read < RECEIVE_BATCH {
                                let mut bufs = receive_buffers(&mut self.buf, self.slot);
                                let Ok(filled) = self.sockets[index].try_recv(&mut bufs, &mut self.meta) else {
                                    break;
                                };
                                read += self.handle_received(index, filled);
                            }
                        }
                        // Such as ECONNREFUSED after an ICMP error; the
                        // socket is still good.
                        Err(error) => tracing::debug!(socket = %self.sockets[index].address, %error, "receive"),
                    }
                }
                Wake::Mdns => {
                    self.take_mdns_answers();
                }
            }
        }
    }

    async fn handle_envelope(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Peer(connection, Command::Close(reply)) => {
                self.close(connection).await;
                let _ = reply.send(Ok(()));
            }
            Envelope::Peer(connection, Command::Messages(id, reply)) => self.messages(connection, id, reply),
            Envelope::Peer(connection, Command::DeliveryStats(reply)) => {
                // Closed meanwhile: the caller gets `Error::Closed`.
                if let Some(peer) = self.peers.get_mut(&connection) {
                    peer.sync_events();
                    let stats = DeliveryStats {
                        queued_bytes: peer.pending.queued_bytes(),
                        peak_queued_bytes: peer.pending.peak_bytes(),
                        data_paused: peer.data_paused,
                    };
                    let _ = reply.send(Ok(stats));
                }
            }
            Envelope::Peer(connection, command) => {
                let local_addresses = self.endpoint.local_addresses().to_vec();
                match self.endpoint.connection(connection) {
                    Some(mut pc) => apply(&mut pc, command, &local_addresses),
                    // Closed meanwhile: dropping the command drops its
                    // reply, and the caller gets `Error::Closed`.
                    None => drop(command),
                }
            }
            Envelope::Connect(peer, reply) => {
                let made = match self.command_sender.upgrade() {
                    Some(commands) => self.connect(*peer, commands),
                    None => Err(Error::Closed),
                };
                let _ = reply.send(made);
            }
            Envelope::Stats(reply) => {
                let _ = reply.send(Ok(self.endpoint.stats()));
            }
        }
    }

    /// Hands the datagrams of the `filled` receive buffers of socket
    /// `index` to the endpoint, each at the time it arrived; how many
    /// there were.
    fn handle_received(&mut self, index: usize, filled: usize) -> usize {
        let mut datagrams = 0;
        let local = self.sockets[index].address;
        let (now, wall) = (Instant::now(), SystemTime::now());
        for (buf, meta) in self.buf.chunks(self.slot).zip(&self.meta).take(filled) {
            // GRO's datagrams in one buffer came together: one timestamp.
            let at = self.receive_clock.arrival(meta, now, wall);
            for datagram in udp::datagrams(buf, meta) {
                if let Some(connection) = self.endpoint.handle_receive(at, meta.addr, local, datagram) {
                    take_rtp(&mut self.endpoint, &mut self.peers, connection);
                }
                datagrams += 1;
            }
        }
        datagrams
    }

    /// Sends what the connections have to send, then queues their events
    /// for the application; again while mDNS answers (which make new
    /// checks) come out of them.
    async fn flush(&mut self) {
        loop {
            let now = Instant::now();
            self.receive_clock.advance(now);
            // A batch may leave from any socket: the smallest GSO limit.
            let segments = self.sockets.iter().map(UdpSocket::max_gso_segments).min().unwrap_or(1);
            while let Some((_, transmit)) = self.endpoint.poll_transmit(now, segments, &mut self.send_buf) {
                self.send(transmit).await;
            }
            for socket in &mut self.sockets {
                socket.flush().await;
            }
            while let Some((connection, event)) = self.endpoint.poll_event() {
                self.queue_event(connection, event, now);
            }
            let mut resumed = false;
            for connection in std::mem::take(&mut self.touched) {
                resumed |= self.deliver(connection);
            }
            // A connection read again has messages and a window update.
            if !self.take_mdns_answers() && !resumed {
                return;
            }
        }
    }

    fn queue_event(&mut self, connection: ConnectionHandle, event: PeerEvent, now: Instant) {
        if let PeerEvent::DtlsFailed(error) = &event {
            let sent_alert = self
                .endpoint
                .get(connection)
                .and_then(|pc| pc.stats().dtls)
                .and_then(|dtls| dtls.sent_alert);
            tracing::warn!(%connection, %error, sent_alert = ?sent_alert.map(natter::dtls::alert_name), "DTLS failed");
        }
        match event {
            PeerEvent::ResolveMdns(name) if self.config.mdns => self.query_mdns(name, connection, now),
            event => {
                let Some(peer) = self.peers.get_mut(&connection).filter(|p| !p.events_closed) else {
                    return;
                };
                peer.pending.push(event);
                if !self.touched.contains(&connection) {
                    self.touched.push(connection);
                }
            }
        }
    }

    /// Hands a connection's pending events over while they may go (see
    /// [`Delivery`]); when the event channel has no room, or events wait,
    /// a task waits for room, and so for the application to read one.
    /// Past [`Delivery::data_paused`] the connection's data channels are
    /// not read, past [`Delivery::connection_paused`] it is paused.
    /// Returns whether its data channels were resumed.
    fn deliver(&mut self, connection: ConnectionHandle) -> bool {
        let Some(peer) = self.peers.get_mut(&connection) else {
            return false;
        };
        peer.sync_events();
        loop {
            // A slot of the event channel is held before an event is
            // taken for it.
            let permit = match peer.events_closed {
                true => None,
                false => peer.hoard.pop().or_else(|| peer.reserve()),
            };
            let Some((sink, event)) = peer.pending.pop(permit.is_some() || peer.events_closed) else {
                peer.hoard.extend(permit);
                break;
            };
            match sink {
                Sink::Reader(id) => {
                    peer.hoard.extend(permit);
                    peer.hand_to_reader(id, event);
                }
                Sink::Events => {
                    if let PeerEvent::DataChannelClose(id) = &event {
                        // Its receiver ends after what it holds.
                        peer.readers.remove(id);
                    }
                    // Without a permit the application dropped its events.
                    if let Some(permit) = permit {
                        permit.send(event);
                    }
                }
            }
            if peer.events_closed {
                peer.pending.events_closed();
            }
        }
        match peer.pending.pending_events() {
            0 => peer.hoard.clear(),
            _ if !peer.events_closed => {
                // Every free slot is held: the next read frees one, which
                // the waiting task takes and reports.
                while let Some(permit) = peer.reserve() {
                    peer.hoard.push(permit);
                }
                if !peer.waiting_for_room && !peer.events_closed {
                    peer.waiting_for_room = true;
                    let (events, room) = (peer.events.clone(), self.room_sender.clone());
                    tokio::spawn(async move {
                        let permit = events.reserve_owned().await.ok();
                        let _ = room.send((connection, permit));
                    });
                }
            }
            _ => {}
        }
        let data_paused = peer.pending.data_paused();
        let changed = data_paused != peer.data_paused;
        peer.data_paused = data_paused;
        if changed {
            tracing::trace!(%connection, data_paused, queued = peer.pending.queued_bytes(), "data channels");
            if let Some(mut pc) = self.endpoint.connection(connection) {
                pc.pause_data_channels(data_paused);
            }
        }
        self.endpoint.set_paused(connection, peer.pending.connection_paused());
        changed && !data_paused
    }

    /// The event channel of `connection` has room for one (`permit`), or
    /// its receiver is gone (`None`).
    fn room_for(&mut self, connection: ConnectionHandle, permit: Option<mpsc::OwnedPermit<PeerEvent>>) {
        let Some(peer) = self.peers.get_mut(&connection) else {
            return;
        };
        peer.waiting_for_room = false;
        match permit {
            Some(permit) => peer.hoard.push(permit),
            None => peer.close_events(),
        }
        // A resumed connection is flushed next, at the top of the loop.
        self.deliver(connection);
    }

    /// A channel's own receiver read, or was dropped.
    fn read_by_reader(&mut self, read: Read) {
        let Some(peer) = self.peers.get_mut(&read.connection) else {
            return;
        };
        peer.pending.reader_read(read.id, read.bytes);
        if read.gone
            && peer
                .readers
                .get(&read.id)
                .is_some_and(|(serial, _)| *serial == read.serial)
        {
            peer.readers.remove(&read.id);
            peer.pending.set_reader(read.id, false);
        }
        self.deliver(read.connection);
    }

    /// [`Command::Messages`]: a receiver of channel `id`'s own.
    fn messages(&mut self, connection: ConnectionHandle, id: DataChannelId, reply: Reply<ChannelMessages>) {
        let known = (self.endpoint.connection(connection)).is_some_and(|mut pc| pc.data_channel(id).is_some());
        // Closed meanwhile: the caller gets `Error::Closed`.
        let Some(peer) = self.peers.get_mut(&connection) else {
            return;
        };
        if !known {
            let _ = reply.send(Err(Error::UnknownDataChannel(id)));
            return;
        }
        self.reader_serial += 1;
        let serial = self.reader_serial;
        let (sender, messages) = mpsc::unbounded_channel();
        peer.readers.insert(id, (serial, sender));
        peer.pending.set_reader(id, true);
        let read = self.read_sender.clone();
        let _ = reply.send(Ok(ChannelMessages {
            id,
            connection,
            serial,
            messages,
            read,
        }));
        self.deliver(connection);
    }

    /// The datagram or GSO batch in `send_buf`, from the socket of its
    /// source address: a single datagram is queued for the socket's next
    /// `sendmmsg`, a GSO batch leaves at once after what is queued (so a
    /// destination gets its datagrams in order).
    async fn send(&mut self, transmit: Transmit) {
        if transmit.transport != Transport::Udp {
            self.unsupported_transmits += 1;
            if self.unsupported_transmits == 1 {
                tracing::warn!(transport = ?transmit.transport, destination = %transmit.destination,
                    "TURN over TCP/TLS is not supported by natter-io yet; dropped");
            }
            return;
        }
        let Some(socket) = self.sockets.iter_mut().find(|s| s.address == transmit.source) else {
            tracing::debug!(source = %transmit.source, "transmit from an address without a socket; dropped");
            return;
        };
        if transmit.datagrams() == 1 {
            socket.queue(transmit.destination, &self.send_buf).await;
            return;
        }
        socket.flush().await;
        if let Err(error) = socket.send(&transmit, &self.send_buf).await {
            tracing::debug!(source = %transmit.source, destination = %transmit.destination, %error, "send");
        }
    }

    /// Asks for `name` for `connection`, opening the mDNS socket the
    /// first time; without one the name does not resolve (RFC 8828 §5.2:
    /// its candidates are dropped).
    fn query_mdns(&mut self, name: String, connection: ConnectionHandle, now: Instant) {
        if self.mdns.is_none() {
            match Resolver::new() {
                Ok(resolver) => self.mdns = Some(resolver),
                Err(error) => {
                    tracing::warn!(%error, name, "no mDNS socket: the .local name does not resolve");
                    return self.unresolvable.push((name, connection));
                }
            }
        }
        tracing::debug!(name, "resolving with mDNS");
        let waiting = self.mdns_waiting.entry(name.clone()).or_default();
        if !waiting.contains(&connection) {
            waiting.push(connection);
        }
        if let Some(mdns) = self.mdns.as_mut() {
            mdns.query(&name, now);
        }
    }

    /// Gives the connections the names resolved or given up; whether there
    /// were any.
    fn take_mdns_answers(&mut self) -> bool {
        let mut any = false;
        for (name, connection) in std::mem::take(&mut self.unresolvable) {
            if let Some(mut pc) = self.endpoint.connection(connection) {
                pc.resolve_mdns(&name, None);
            }
            any = true;
        }
        while let Some((name, ip)) = self.mdns.as_mut().and_then(Resolver::poll_answer) {
            for connection in self.mdns_waiting.remove(&name).unwrap_or_default() {
                if let Some(mut pc) = self.endpoint.connection(connection) {
                    pc.resolve_mdns(&name, ip);
                }
            }
            any = true;
        }
        any
    }

    /// W3C close of one connection: its last datagrams (close_notify) go
    /// out, the events already polled are delivered if there is room,
    /// and the endpoint forgets it.
    async fn close(&mut self, connection: ConnectionHandle) {
        let Some(mut pc) = self.endpoint.connection(connection) else {
            return;
        };
        pc.close();
        drop(pc);
        self.flush().await;
        if let Some(mut peer) = self.peers.remove(&connection) {
            peer.hoard.clear();
            while let Some((sink, event)) = peer.pending.pop(peer.events.capacity() > 0) {
                match sink {
                    Sink::Reader(id) => peer.hand_to_reader(id, event),
                    Sink::Events if peer.events.try_send(event).is_err() => break,
                    Sink::Events => {}
                }
            }
        }
        self.endpoint.remove(connection);
        self.mdns_waiting
            .values_mut()
            .for_each(|w| w.retain(|c| *c != connection));
    }
}

/// How many commands may wait for the task; senders wait beyond that.
const COMMAND_CAPACITY: usize = 256;

/// Runs a command on its connection. `local_addresses` answers
/// [`Command::LocalAddresses`].
fn apply(pc: &mut natter::PeerConnection, command: Command, local_addresses: &[SocketAddr]) {
    {
        match command {
            Command::CreateOffer(reply) => answer(reply, pc.create_offer()),
            Command::CreateAnswer(reply) => answer(reply, pc.create_answer()),
            Command::SetLocalDescription(description, reply) => answer(reply, pc.set_local_description(&description)),
            Command::SetRemoteDescription(description, reply) => answer(reply, pc.set_remote_description(&description)),
            Command::AddIceCandidate(candidate, reply) => answer(reply, pc.add_ice_candidate(candidate.as_ref())),
            Command::RestartIce(reply) => answer(reply, pc.restart_ice()),
            Command::CreateDataChannel { label, init, reply } => answer(reply, pc.create_data_channel(&label, init)),
            Command::AddTrack(kind, reply) => answer(reply, pc.add_track(kind)),
            Command::AddSimulcastTrack(kind, rids, reply) => {
                let rids: Vec<&str> = rids.iter().map(String::as_str).collect();
                answer(reply, pc.add_simulcast_track(kind, &rids))
            }
            Command::AddTransceiver(kind, direction, reply) => answer(reply, pc.add_transceiver(kind, direction)),
            Command::RemoveTrack(id, reply) => answer(reply, pc.remove_track(id)),
            Command::SetDirection(id, direction, reply) => answer(reply, pc.set_direction(id, direction)),
            Command::StopTransceiver(id, reply) => answer(reply, pc.stop_transceiver(id)),
            Command::Transceivers(reply) => {
                let _ = reply.send(Ok(pc.transceivers().to_vec()));
            }
            Command::SendFrame {
                id,
                rid: None,
                media_time,
                frame,
                reply,
            } => answer(reply, pc.send_frame(id, media_time, &frame)),
            Command::SendFrame {
                id,
                rid: Some(rid),
                media_time,
                frame,
                reply,
            } => answer(reply, pc.send_frame_rid(id, &rid, media_time, &frame)),
            Command::RequestKeyframe(id, reply) => answer(reply, pc.request_keyframe(id)),
            Command::RequestLayerKeyframe(id, rid, reply) => answer(reply, pc.request_layer_keyframe(id, &rid)),
            Command::WriteRtp { id, packet, reply } => answer(reply, pc.write_rtp(id, None, &packet.as_outgoing())),
            Command::SendPayloadType(id, reply) => {
                let _ = reply.send(Ok(pc.send_payload_type(id)));
            }
            Command::Send { id, message, reply } => {
                let result = match pc.data_channel(id) {
                    Some(mut channel) => channel
                        .send(match &message {
                            Message::Text(text) => natter_sctp::Message::Text(text),
                            Message::Binary(bytes) => natter_sctp::Message::Binary(bytes),
                        })
                        .map_err(Error::from),
                    None => Err(Error::UnknownDataChannel(id)),
                };
                let _ = reply.send(result);
            }
            Command::CloseChannel(id, reply) => {
                if let Some(channel) = pc.data_channel(id) {
                    channel.close();
                }
                let _ = reply.send(Ok(()));
            }
            Command::BufferedAmount(id, reply) => {
                let result = pc
                    .data_channel(id)
                    .map(|mut channel| channel.buffered_amount())
                    .ok_or(Error::UnknownDataChannel(id));
                let _ = reply.send(result);
            }
            Command::SetBufferedAmountLowThreshold(id, threshold, reply) => {
                let result = match pc.data_channel(id) {
                    Some(mut channel) => channel
                        .set_buffered_amount_low_threshold(threshold)
                        .map_err(Error::from),
                    None => Err(Error::UnknownDataChannel(id)),
                };
                let _ = reply.send(result);
            }
            Command::ChannelInfo(id, reply) => {
                let info = pc.data_channel(id).map(|channel| {
                    let options = channel.options();
                    DataChannelInfo {
                        id,
                        label: channel.label().to_owned(),
                        protocol: channel.protocol().to_owned(),
                        ordered: options.ordered,
                        max_retransmits: options.max_retransmits,
                        max_packet_life_time: options.max_packet_lifetime,
                        negotiated: options.negotiated_id.is_some(),
                        stream_id: channel.stream_id(),
                        ready_state: channel.ready_state(),
                        stats: channel.stats(),
                    }
                });
                let _ = reply.send(info.ok_or(Error::UnknownDataChannel(id)));
            }
            Command::LocalDescription(reply) => {
                let _ = reply.send(Ok(pc.local_description()));
            }
            Command::RemoteDescription(reply) => {
                let _ = reply.send(Ok(pc.remote_description()));
            }
            Command::ConnectionState(reply) => {
                let _ = reply.send(Ok(pc.connection_state()));
            }
            Command::SignalingState(reply) => {
                let _ = reply.send(Ok(pc.signaling_state()));
            }
            Command::Stats(reply) => {
                let _ = reply.send(Ok(pc.stats()));
            }
            Command::LocalAddresses(reply) => {
                let _ = reply.send(Ok(local_addresses.to_vec()));
            }
            Command::ResolveMdns { name, ip, reply } => {
                pc.resolve_mdns(&name, ip);
                let _ = reply.send(Ok(()));
            }
            Command::SetApplicationDemand(demand_bps, reply) => {
                pc.set_application_demand(demand_bps);
                let _ = reply.send(Ok(()));
            }
            // Handled by the loop (which ends), and by the task.
            Command::Close(_) | Command::Messages(..) | Command::DeliveryStats(_) => {}
        }
    }
}

fn answer<T, E: Into<Error>>(reply: Reply<T>, result: Result<T, E>) {
    // The caller may have stopped waiting; the command took effect anyway.
    let _ = reply.send(result.map_err(Into::into));
}

/// The next datagram of any socket, starting with `first`: the socket's
/// index, and the length and source or the error.
/// Waits for datagrams on any socket, trying them from `first` on so
/// that none starves the others; the socket's index and how many of the
/// buffers it filled.
async fn recv_any(
    sockets: &[UdpSocket],
    buf: &mut [u8],
    slot: usize,
    meta: &mut [RecvMeta],
    first: usize,
) -> (usize, io::Result<usize>) {
    poll_fn(|cx| {
        for offset in 0..sockets.len() {
            let index = (first + offset) % sockets.len();
            let mut bufs = receive_buffers(buf, slot);
            if let Poll::Ready(received) = sockets[index].poll_recv(cx, &mut bufs, meta) {
                return Poll::Ready((index, received));
            }
        }
        Poll::Pending
    })
    .await
}
