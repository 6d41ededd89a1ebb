//! The task that owns a connection: its sans-IO core, its sockets, its
//! timer and its mDNS resolver. One loop, in natter's documented order:
//! after every input or command, `poll_transmit` until `None` (each
//! datagram sent from the socket it names), then `poll_timeout`, then
//! `poll_event` until `None`; then wait for whichever comes first of a
//! command, the deadline, a datagram, room for an event, an mDNS answer.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use natter::jsep::SignalingState;
use natter::peer::{
    DataChannelId, DataChannelInit, Description, Direction, IceCandidate, MediaKind, PeerConnectionState, PeerEvent,
    PeerStats, Transceiver, TransceiverId,
};
use natter_ice::{Transmit, Transport};
use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::handle::{DataChannelInfo, Message};
use crate::mdns::Resolver;
use crate::{Config, Error};

type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What a handle asks of the task.
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
    AddTransceiver(MediaKind, Direction, Reply<TransceiverId>),
    RemoveTrack(TransceiverId, Reply<()>),
    SetDirection(TransceiverId, Direction, Reply<()>),
    StopTransceiver(TransceiverId, Reply<()>),
    Transceivers(Reply<Vec<Transceiver>>),
    SendFrame {
        id: TransceiverId,
        media_time: Duration,
        frame: Vec<u8>,
        reply: Reply<()>,
    },
    RequestKeyframe(TransceiverId, Reply<()>),
    BufferedAmount(DataChannelId, Reply<usize>),
    SetBufferedAmountLowThreshold(DataChannelId, usize, Reply<()>),
    ChannelInfo(DataChannelId, Reply<DataChannelInfo>),
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

/// While this many events wait for the application, the sockets are not
/// read (see the crate documentation on backpressure).
const MAX_PENDING_EVENTS: usize = 256;

/// At most this many datagrams are read from a socket before the next
/// flush.
const RECEIVE_BATCH: usize = 32;

/// At most this many commands are taken before the next flush.
const COMMAND_BATCH: usize = 64;

/// Why the loop woke up.
enum Wake {
    Command(Option<Command>),
    Timeout,
    /// An event went to the application.
    Delivered,
    Received(usize, io::Result<(usize, SocketAddr)>),
    Mdns,
}

struct LocalSocket {
    socket: UdpSocket,
    address: SocketAddr,
}

pub(crate) struct Driver {
    pc: natter::PeerConnection,
    sockets: Vec<LocalSocket>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<PeerEvent>,
    /// Events polled from the connection, waiting for room in `events`.
    pending: VecDeque<PeerEvent>,
    /// The application dropped its receiver: events are discarded.
    events_closed: bool,
    /// [`Config::mdns`]: `.local` names are ours to resolve.
    resolve_mdns: bool,
    /// Opened with the first name to resolve.
    mdns: Option<Resolver>,
    /// Names asked for when no mDNS socket could be opened.
    unresolvable: Vec<String>,
    buf: Vec<u8>,
    /// The socket read first next time, so that none starves the others.
    next_socket: usize,
    /// Transmits over TCP or TLS dropped (not supported yet).
    unsupported_transmits: u64,
}

impl Driver {
    pub(crate) fn new(
        config: Config,
        now: Instant,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<PeerEvent>,
    ) -> Result<Driver, Error> {
        let mut peer = config.peer;
        // The core reads no clock: sender reports need the wall clock's time.
        peer.wall_clock = peer.wall_clock.or_else(|| Some(SystemTime::now()));
        let mut pc = natter::PeerConnection::new(peer, now)?;
        let mut sockets = Vec::new();
        for address in config.local_addresses.resolve()? {
            let bind = |address| -> io::Result<LocalSocket> {
                let socket = std::net::UdpSocket::bind(address)?;
                socket.set_nonblocking(true)?;
                if let Some(size) = config.socket_buffer_size {
                    // The kernel caps these (net.core.rmem_max); best effort.
                    let socket = socket2::SockRef::from(&socket);
                    let _ = socket.set_recv_buffer_size(size);
                    let _ = socket.set_send_buffer_size(size);
                }
                let address = socket.local_addr()?;
                Ok(LocalSocket {
                    socket: UdpSocket::from_std(socket)?,
                    address,
                })
            };
            let socket = bind(address).map_err(|source| Error::Bind { address, source })?;
            pc.add_local_address(socket.address)?;
            tracing::debug!(address = %socket.address, "socket bound");
            sockets.push(socket);
        }
        pc.end_of_local_addresses();
        Ok(Driver {
            pc,
            sockets,
            commands,
            events,
            pending: VecDeque::new(),
            events_closed: false,
            resolve_mdns: config.mdns,
            mdns: None,
            unresolvable: Vec::new(),
            buf: vec![0; config.max_datagram_size.max(1500)],
            next_socket: 0,
            unsupported_transmits: 0,
        })
    }

    pub(crate) async fn run(mut self) {
        let mut sleep = Box::pin(tokio::time::sleep_until(tokio::time::Instant::now()));
        loop {
            self.flush().await;
            let deadline = [
                self.pc.poll_timeout(),
                self.mdns.as_ref().and_then(Resolver::poll_timeout),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(deadline) = deadline {
                sleep.as_mut().reset(deadline.into());
            }
            let read_sockets = self.pending.len() < MAX_PENDING_EVENTS;
            let deliver = !self.pending.is_empty() && !self.events_closed;
            let (sockets, buf, next_socket) = (&self.sockets, &mut self.buf, self.next_socket);
            let (events, pending, events_closed) = (&self.events, &mut self.pending, &mut self.events_closed);
            let has_mdns = self.mdns.is_some();
            let mdns = self.mdns.as_mut();
            // Unbiased: a busy command channel must not starve the sockets.
            let wake = tokio::select! {
                command = self.commands.recv() => Wake::Command(command),
                () = &mut sleep, if deadline.is_some() => Wake::Timeout,
                permit = events.reserve(), if deliver => {
                    match permit {
                        Ok(permit) => {
                            // `deliver` says there is one.
                            if let Some(event) = pending.pop_front() {
                                permit.send(event);
                            }
                        }
                        Err(_) => {
                            *events_closed = true;
                            pending.clear();
                        }
                    }
                    Wake::Delivered
                },
                (index, received) = recv_any(sockets, buf, next_socket), if read_sockets => {
                    Wake::Received(index, received)
                },
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
                Wake::Command(Some(Command::Close(reply))) => {
                    self.close().await;
                    let _ = reply.send(Ok(()));
                    return;
                }
                Wake::Command(Some(command)) => {
                    self.handle_command(command);
                    // Commands that came meanwhile go before the flush, so
                    // that SCTP can bundle small messages into one packet.
                    for _ in 1..COMMAND_BATCH {
                        match self.commands.try_recv() {
                            Ok(Command::Close(reply)) => {
                                self.close().await;
                                let _ = reply.send(Ok(()));
                                return;
                            }
                            Ok(command) => self.handle_command(command),
                            Err(_) => break,
                        }
                    }
                }
                Wake::Command(None) => {
                    tracing::debug!("every handle dropped: closing");
                    self.close().await;
                    return;
                }
                Wake::Timeout => {
                    let now = Instant::now();
                    self.pc.handle_timeout(now);
                    if let Some(mdns) = self.mdns.as_mut() {
                        mdns.handle_timeout(now);
                    }
                    self.take_mdns_answers();
                }
                Wake::Delivered => {}
                Wake::Received(index, received) => {
                    self.next_socket = (index + 1) % self.sockets.len().max(1);
                    match received {
                        Ok((len, source)) => {
                            let socket = &self.sockets[index];
                            let now = Instant::now();
                            let data = &self.buf[..len];
                            self.pc
                                .handle_receive(now, Transport::Udp, source, socket.address, data);
                            // What else waits on the socket goes in before
                            // the flush: fewer passes through SCTP's output.
                            for _ in 1..RECEIVE_BATCH {
                                let Ok((len, source)) = socket.socket.try_recv_from(&mut self.buf) else {
                                    break;
                                };
                                let data = &self.buf[..len];
                                self.pc
                                    .handle_receive(now, Transport::Udp, source, socket.address, data);
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

    /// Sends what the connection has to send, then takes its events; again
    /// while mDNS answers (which make new checks) come out of them.
    async fn flush(&mut self) {
        loop {
            let now = Instant::now();
            while let Some(transmit) = self.pc.poll_transmit(now) {
                self.send(transmit).await;
            }
            while let Some(event) = self.pc.poll_event() {
                if let PeerEvent::DtlsFailed(error) = &event {
                    let sent_alert = self.pc.stats().dtls.and_then(|dtls| dtls.sent_alert);
                    tracing::warn!(%error, sent_alert = ?sent_alert.map(natter::dtls::alert_name), "DTLS failed");
                }
                match event {
                    PeerEvent::ResolveMdns(name) if self.resolve_mdns => self.query_mdns(&name, now),
                    event if !self.events_closed => self.pending.push_back(event),
                    _ => {}
                }
            }
            if !self.take_mdns_answers() {
                return;
            }
        }
    }

    /// One datagram, from the socket of its source address.
    async fn send(&mut self, transmit: Transmit) {
        if transmit.transport != Transport::Udp {
            self.unsupported_transmits += 1;
            if self.unsupported_transmits == 1 {
                tracing::warn!(transport = ?transmit.transport, destination = %transmit.destination,
                    "TURN over TCP/TLS is not supported by natter-io yet; dropped");
            }
            return;
        }
        let Some(socket) = self.sockets.iter().find(|s| s.address == transmit.source) else {
            tracing::debug!(source = %transmit.source, "transmit from an address without a socket; dropped");
            return;
        };
        if let Err(error) = socket.socket.send_to(&transmit.data, transmit.destination).await {
            tracing::debug!(source = %transmit.source, destination = %transmit.destination, %error, "send");
        }
    }

    /// Asks for `name`, opening the mDNS socket the first time; without
    /// one the name does not resolve (RFC 8828 §5.2: its candidates are
    /// dropped).
    fn query_mdns(&mut self, name: &str, now: Instant) {
        if self.mdns.is_none() {
            match Resolver::new() {
                Ok(resolver) => self.mdns = Some(resolver),
                Err(error) => {
                    tracing::warn!(%error, name, "no mDNS socket: the .local name does not resolve");
                    return self.unresolvable.push(name.to_owned());
                }
            }
        }
        tracing::debug!(name, "resolving with mDNS");
        if let Some(mdns) = self.mdns.as_mut() {
            mdns.query(name, now);
        }
    }

    /// Gives the connection the names resolved or given up; whether there
    /// were any.
    fn take_mdns_answers(&mut self) -> bool {
        let mut any = false;
        for name in std::mem::take(&mut self.unresolvable) {
            self.pc.resolve_mdns(&name, None);
            any = true;
        }
        while let Some((name, ip)) = self.mdns.as_mut().and_then(Resolver::poll_answer) {
            self.pc.resolve_mdns(&name, ip);
            any = true;
        }
        any
    }

    /// W3C close: the last datagrams (close_notify) go out, the events
    /// already polled are delivered if there is room.
    async fn close(&mut self) {
        self.pc.close();
        self.flush().await;
        for event in self.pending.drain(..) {
            if self.events.try_send(event).is_err() {
                break;
            }
        }
    }

    fn handle_command(&mut self, command: Command) {
        let pc = &mut self.pc;
        match command {
            Command::CreateOffer(reply) => answer(reply, pc.create_offer()),
            Command::CreateAnswer(reply) => answer(reply, pc.create_answer()),
            Command::SetLocalDescription(description, reply) => answer(reply, pc.set_local_description(&description)),
            Command::SetRemoteDescription(description, reply) => answer(reply, pc.set_remote_description(&description)),
            Command::AddIceCandidate(candidate, reply) => answer(reply, pc.add_ice_candidate(candidate.as_ref())),
            Command::RestartIce(reply) => answer(reply, pc.restart_ice()),
            Command::CreateDataChannel { label, init, reply } => answer(reply, pc.create_data_channel(&label, init)),
            Command::AddTrack(kind, reply) => answer(reply, pc.add_track(kind)),
            Command::AddTransceiver(kind, direction, reply) => answer(reply, pc.add_transceiver(kind, direction)),
            Command::RemoveTrack(id, reply) => answer(reply, pc.remove_track(id)),
            Command::SetDirection(id, direction, reply) => answer(reply, pc.set_direction(id, direction)),
            Command::StopTransceiver(id, reply) => answer(reply, pc.stop_transceiver(id)),
            Command::Transceivers(reply) => {
                let _ = reply.send(Ok(pc.transceivers().to_vec()));
            }
            Command::SendFrame {
                id,
                media_time,
                frame,
                reply,
            } => answer(reply, pc.send_frame(id, media_time, &frame)),
            Command::RequestKeyframe(id, reply) => answer(reply, pc.request_keyframe(id)),
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
                let _ = reply.send(Ok(self.sockets.iter().map(|s| s.address).collect()));
            }
            Command::ResolveMdns { name, ip, reply } => {
                pc.resolve_mdns(&name, ip);
                let _ = reply.send(Ok(()));
            }
            // Handled by the loop, which ends.
            Command::Close(_) => {}
        }
    }
}

fn answer<T, E: Into<Error>>(reply: Reply<T>, result: Result<T, E>) {
    // The caller may have stopped waiting; the command took effect anyway.
    let _ = reply.send(result.map_err(Into::into));
}

/// The next datagram of any socket, starting with `first`: the socket's
/// index, and the length and source or the error.
async fn recv_any(sockets: &[LocalSocket], buf: &mut [u8], first: usize) -> (usize, io::Result<(usize, SocketAddr)>) {
    poll_fn(|cx| {
        for offset in 0..sockets.len() {
            let index = (first + offset) % sockets.len();
            let mut read = ReadBuf::new(buf);
            match sockets[index].socket.poll_recv_from(cx, &mut read) {
                Poll::Ready(Ok(source)) => return Poll::Ready((index, Ok((read.filled().len(), source)))),
                Poll::Ready(Err(error)) => return Poll::Ready((index, Err(error))),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
}
