//! [`SctpTransport`]: one SCTP association over DTLS (RFC 8261) run by
//! sctp-proto, with WebRTC data channels (RFC 8831) and DCEP (RFC 8832)
//! on top.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationError, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig,
    EndpointEvent, Event as SctpEvent, Payload, PayloadProtocolIdentifier, ServerConfig, StreamEvent, TransportConfig,
};

use crate::channel::{Channel, ChannelId, ChannelInfo, ChannelOptions, ChannelOrigin, ChannelState, Message};
use crate::config::{DtlsRole, SctpConfig};
use crate::dcep::{DataChannelOpen, DcepMessage};
use crate::error::Error;
use crate::event::{CloseReason, Datagram, Event, Stats, TransportState};
use crate::ppid::Ppid;

/// The association never sees a real address: DTLS is below it. sctp-proto
/// wants one, so every packet claims to come from here.
/// RFC 9260 §3.2: chunk type of SHUTDOWN COMPLETE, the first chunk
/// type octet sitting after the 12-byte common header.
const CHUNK_SHUTDOWN_COMPLETE: u8 = 14;

const PLACEHOLDER_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5000);

/// A sans-IO SCTP association carrying WebRTC data channels.
///
/// # Methods
///
/// Like every natter core it reads no clock and owns no socket:
/// - getters: [`SctpTransport::state`], [`SctpTransport::channel`],
///   [`SctpTransport::channels`], [`SctpTransport::max_message_size`],
///   [`SctpTransport::stats`];
/// - application commands: [`SctpTransport::open_channel`],
///   [`SctpTransport::send`], [`SctpTransport::close_channel`],
///   [`SctpTransport::buffered_amount`],
///   [`SctpTransport::set_buffered_amount_low_threshold`],
///   [`SctpTransport::set_remote_max_message_size`],
///   [`SctpTransport::shutdown`];
/// - input: [`SctpTransport::handle_receive`] with each DTLS
///   application-data record, decrypted, and
///   [`SctpTransport::handle_timeout`] once [`SctpTransport::poll_timeout`]
///   has passed;
/// - output, drained after every input and command in this order:
///   [`SctpTransport::poll_transmit`] (SCTP packets to encrypt and send
///   as DTLS application data), then [`SctpTransport::poll_timeout`],
///   then [`SctpTransport::poll_event`].
///
/// # Who sends INIT
///
/// The DTLS client does; the DTLS server waits. sctp-proto 0.10.8 cannot
/// resolve an INIT collision (RFC 9260 §5.2.1) through its `Endpoint`:
/// a peer's INIT that arrives while our own is outstanding is routed to
/// a second, new association. We keep the first association and drop
/// such a second one. A peer that sends INIT whatever its DTLS role
/// (Chromium's stacks open SCTP from both sides) resolves the collision
/// itself, so our INIT still completes the handshake; the browser
/// interop tests are to confirm it.
pub struct SctpTransport {
    config: SctpConfig,
    endpoint: Endpoint,
    assoc: Option<(AssociationHandle, Association)>,
    state: TransportState,
    channels: BTreeMap<u16, Channel>,
    /// Streams the peer sent on before (or without) DATA_CHANNEL_OPEN.
    unannounced: BTreeSet<u16>,
    /// Ids whose reset has not completed; not reused until it has.
    resetting: BTreeSet<u16>,
    remote_max_message_size: Option<usize>,
    /// Shutdown asked for, waiting for queued data to be acknowledged.
    shutdown_requested: bool,
    /// We sent SHUTDOWN, so we end the association after SHUTDOWN COMPLETE.
    shutdown_sent: bool,
    transmits: VecDeque<Bytes>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl std::fmt::Debug for SctpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SctpTransport")
            .field("role", &self.config.dtls_role)
            .field("state", &self.state)
            .field("channels", &self.channels.len())
            .finish()
    }
}

impl SctpTransport {
    /// Starts the association: the DTLS client queues its INIT at once.
    /// Call it when DTLS is connected.
    ///
    /// sctp-proto anchors the first INIT retransmission timer on
    /// `Instant::now()` rather than on a time we pass; later timers
    /// use the times given to [`SctpTransport::handle_timeout`].
    pub fn new(config: SctpConfig) -> Result<Self, Error> {
        config.validate()?;
        // validate() bounds each of these to a u32.
        let max_message = config.max_message_size as u32;
        let transport = Arc::new(
            TransportConfig::default()
                .with_local_port(config.local_port)
                .with_remote_port(config.remote_port)
                .with_max_send_message_size(max_message)
                .with_max_receive_message_size(max_message)
                .with_max_receive_buffer_size(config.receive_window)
                // The association lives as long as ICE and DTLS say it
                // does, so SCTP never gives up on its own.
                .with_max_init_retransmits(None)
                .with_max_data_retransmits(None)
                .with_rto_initial_ms(millis(config.rto_initial))
                .with_rto_min_ms(millis(config.rto_min))
                .with_rto_max_ms(millis(config.rto_max)),
        );
        let mut endpoint_config = EndpointConfig::new();
        endpoint_config.max_payload_size(config.max_payload_size());
        let mut server_config = ServerConfig::new();
        server_config.transport = transport.clone();
        // Always a ServerConfig, even on the DTLS client: without one
        // sctp-proto's Endpoint panics on an INIT for no association.
        let mut endpoint = Endpoint::new(Arc::new(endpoint_config), Some(Arc::new(server_config)));
        let assoc = match config.dtls_role {
            DtlsRole::Client => {
                let mut client = ClientConfig::new();
                client.transport = transport;
                Some(
                    endpoint
                        .connect(client, PLACEHOLDER_ADDR)
                        .map_err(|e| Error::Sctp(e.to_string()))?,
                )
            }
            DtlsRole::Server => None,
        };
        Ok(SctpTransport {
            config,
            endpoint,
            assoc,
            state: TransportState::Connecting,
            channels: BTreeMap::new(),
            unannounced: BTreeSet::new(),
            resetting: BTreeSet::new(),
            remote_max_message_size: None,
            shutdown_requested: false,
            shutdown_sent: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    // ----- getters -----

    pub fn state(&self) -> TransportState {
        self.state
    }

    pub fn config(&self) -> &SctpConfig {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The largest message [`SctpTransport::send`] accepts: our own
    /// limit, lowered to the peer's `a=max-message-size` if it was given.
    pub fn max_message_size(&self) -> usize {
        match self.remote_max_message_size {
            Some(remote) => remote.min(self.config.max_message_size),
            None => self.config.max_message_size,
        }
    }

    pub fn channel(&self, id: ChannelId) -> Option<ChannelInfo> {
        self.channels.get(&id.0).map(|c| c.info(id))
    }

    pub fn channels(&self) -> impl Iterator<Item = ChannelInfo> + '_ {
        self.channels.iter().map(|(id, c)| c.info(ChannelId(*id)))
    }

    // ----- application commands -----

    /// The peer's `a=max-message-size` (RFC 8841 §6): `Some(0)` means
    /// any size, `None` that the attribute was absent (then 65536).
    pub fn set_remote_max_message_size(&mut self, remote: Option<usize>) {
        self.remote_max_message_size = Some(match remote {
            // RFC 8841 §6: 0 means the peer takes any size.
            Some(0) => usize::MAX,
            Some(n) => n,
            // RFC 8841 §6: absent means 64 KiB.
            None => 65_536,
        });
        self.apply_max_message_size();
    }

    /// Opens a data channel. With `options.negotiated_id` it uses that
    /// stream id and sends no DCEP; otherwise it picks a free id of this
    /// side's parity (RFC 8832 §6: even for the DTLS client) and sends
    /// DATA_CHANNEL_OPEN. Before the association is up the channel
    /// waits in [`ChannelState::Connecting`]; [`Event::ChannelOpen`]
    /// says when it can carry messages.
    pub fn open_channel(&mut self, label: &str, protocol: &str, options: ChannelOptions) -> Result<ChannelId, Error> {
        options.validate()?;
        for (field, value) in [("label", label), ("protocol", protocol)] {
            if value.len() > usize::from(u16::MAX) {
                return Err(Error::FieldTooLong {
                    field,
                    len: value.len(),
                });
            }
        }
        if matches!(self.state, TransportState::Closed | TransportState::ShuttingDown) {
            return Err(Error::Closed);
        }
        let id = match options.negotiated_id {
            Some(id) if self.channels.contains_key(&id) => return Err(Error::StreamIdInUse(ChannelId(id))),
            Some(id) => id,
            None => self.free_stream_id()?,
        };
        let origin = if options.negotiated_id.is_some() {
            ChannelOrigin::Negotiated
        } else {
            ChannelOrigin::Local
        };
        self.channels.insert(
            id,
            Channel {
                label: label.to_owned(),
                protocol: protocol.to_owned(),
                options,
                state: ChannelState::Connecting,
                origin,
                acknowledged: origin != ChannelOrigin::Local,
                low_threshold: self.config.buffered_amount_low_threshold,
                low_armed: false,
            },
        );
        if self.state == TransportState::Established {
            if let Err(e) = self.start_channel(id) {
                self.channels.remove(&id);
                return Err(e);
            }
        }
        Ok(ChannelId(id))
    }

    /// Queues one message on an open channel. Empty messages go as one
    /// zero byte with PPID 56 or 57 (RFC 8831 §6.6).
    pub fn send(&mut self, channel: ChannelId, message: Message<'_>) -> Result<(), Error> {
        let ch = self.channels.get(&channel.0).ok_or(Error::UnknownChannel(channel))?;
        if ch.state != ChannelState::Open {
            return Err(Error::ChannelNotOpen(channel));
        }
        let data = message.bytes();
        let max = self.max_message_size();
        if data.len() > max {
            return Err(Error::MessageTooLarge { len: data.len(), max });
        }
        let max_buffered = self.config.max_buffered_amount;
        let (_, assoc) = self.assoc.as_mut().ok_or(Error::NotEstablished)?;
        let mut stream = assoc.stream(channel.0).map_err(|_| Error::ChannelNotOpen(channel))?;
        let buffered = stream.buffered_amount().map_err(|_| Error::ChannelNotOpen(channel))?;
        if buffered.saturating_add(data.len()) > max_buffered {
            return Err(Error::SendBufferFull {
                channel,
                buffered,
                len: data.len(),
                max: max_buffered,
            });
        }
        let ppid = Ppid::for_message(message.is_text(), data.is_empty());
        let payload: &[u8] = if data.is_empty() { &[0] } else { data };
        stream.write_with_ppi(payload, to_sctp_ppi(ppid)).map_err(|e| match e {
            sctp_proto::Error::ErrStreamClosed => Error::ChannelNotOpen(channel),
            sctp_proto::Error::ErrOutboundPacketTooLarge => Error::MessageTooLarge { len: data.len(), max },
            other => other.into(),
        })?;
        if let Some(ch) = self.channels.get_mut(&channel.0) {
            ch.low_armed = true;
        }
        Ok(())
    }

    /// Bytes queued on a channel and not yet acknowledged by the peer
    /// (sctp-proto counts until the SACK; W3C's `bufferedAmount` until
    /// the send). It takes `&mut self` because sctp-proto lends streams
    /// only mutably.
    pub fn buffered_amount(&mut self, channel: ChannelId) -> Result<usize, Error> {
        if !self.channels.contains_key(&channel.0) {
            return Err(Error::UnknownChannel(channel));
        }
        let Some((_, assoc)) = self.assoc.as_mut() else {
            return Ok(0);
        };
        match assoc.stream(channel.0) {
            Ok(stream) => Ok(stream.buffered_amount().unwrap_or(0)),
            Err(_) => Ok(0),
        }
    }

    /// Sets the threshold at or below which [`Event::BufferedAmountLow`]
    /// fires when acknowledged data brings the buffered amount down.
    pub fn set_buffered_amount_low_threshold(&mut self, channel: ChannelId, threshold: usize) -> Result<(), Error> {
        let ch = self
            .channels
            .get_mut(&channel.0)
            .ok_or(Error::UnknownChannel(channel))?;
        ch.low_threshold = threshold;
        if let Some((_, assoc)) = self.assoc.as_mut() {
            if let Ok(mut stream) = assoc.stream(channel.0) {
                stream.set_buffered_amount_low_threshold(threshold)?;
            }
        }
        Ok(())
    }

    /// Closes a channel by resetting its outgoing stream (RFC 8831 §6.7,
    /// RFC 6525); queued messages go first. [`Event::ChannelClosed`]
    /// follows once the peer has reset its side too.
    pub fn close_channel(&mut self, channel: ChannelId) -> Result<(), Error> {
        let ch = self
            .channels
            .get_mut(&channel.0)
            .ok_or(Error::UnknownChannel(channel))?;
        match ch.state {
            ChannelState::Closing => Ok(()),
            ChannelState::Connecting => {
                self.channels.remove(&channel.0);
                self.events.push_back(Event::ChannelClosed(channel));
                Ok(())
            }
            ChannelState::Open => {
                ch.state = ChannelState::Closing;
                let reset = match self.assoc.as_mut() {
                    Some((_, assoc)) => assoc.stream(channel.0).and_then(|mut s| s.close()),
                    None => Err(sctp_proto::Error::ErrStreamClosed),
                };
                if reset.is_err() {
                    // No stream to reset: the channel is gone already.
                    self.channels.remove(&channel.0);
                    self.events.push_back(Event::ChannelClosed(channel));
                }
                Ok(())
            }
        }
    }

    /// Starts a graceful SHUTDOWN (RFC 9260 §9.2); [`Event::Closed`]
    /// follows. Channels take no new messages from now on.
    ///
    /// sctp-proto 0.10.8 sends SHUTDOWN at once, however much data is
    /// queued or in flight, and then never sends queued data, so we hold
    /// SHUTDOWN back until every stream's data is acknowledged.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        match self.state {
            TransportState::Established => {}
            TransportState::ShuttingDown => return Ok(()),
            TransportState::Closed => return Err(Error::Closed),
            TransportState::Connecting => return Err(Error::NotEstablished),
        }
        self.state = TransportState::ShuttingDown;
        self.shutdown_requested = true;
        for ch in self.channels.values_mut() {
            if ch.state == ChannelState::Open {
                ch.state = ChannelState::Closing;
            }
        }
        self.pump();
        Ok(())
    }

    // ----- input -----

    /// One SCTP packet: the plaintext of a DTLS application-data record.
    /// Packets that do not parse are dropped and counted.
    pub fn handle_receive(&mut self, now: Instant, data: &[u8]) {
        if self.state == TransportState::Closed {
            return;
        }
        let input = self
            .endpoint
            .handle(now, PLACEHOLDER_ADDR, None, None, Bytes::copy_from_slice(data));
        match input {
            None => self.stats.packets_dropped += 1,
            Some((handle, DatagramEvent::NewAssociation(assoc))) => {
                if self.assoc.is_none() {
                    self.assoc = Some((handle, assoc));
                    self.apply_max_message_size();
                } else {
                    // An INIT that crossed ours (see the module docs):
                    // keep the first association, forget this one.
                    drop(assoc);
                    let _ = self.endpoint.handle_event(handle, EndpointEvent::drained());
                    self.stats.packets_dropped += 1;
                }
            }
            Some((handle, DatagramEvent::AssociationEvent(event))) => match self.assoc.as_mut() {
                Some((ours, assoc)) if *ours == handle => assoc.handle_event(event),
                _ => self.stats.packets_dropped += 1,
            },
        }
        self.pump();
    }

    /// Fires the association's timers that are due at `now`
    /// (retransmission, delayed SACK, shutdown, stream reset).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some((_, assoc)) = self.assoc.as_mut() {
            assoc.handle_timeout(now);
        }
        self.pump();
    }

    // ----- output -----

    /// The next SCTP packet to encrypt and send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Datagram> {
        if let Some(p) = self.transmits.pop_front() {
            return Some(Datagram(p));
        }
        self.pump();
        while let Some(t) = self.endpoint.poll_transmit() {
            if let Payload::RawEncode(packets) = t.payload {
                self.transmits.extend(packets);
            }
        }
        if let Some((_, assoc)) = self.assoc.as_mut() {
            if let Some(t) = assoc.poll_transmit(now) {
                if let Payload::RawEncode(packets) = t.payload {
                    let completes = packets.iter().any(|p| p.get(12) == Some(&CHUNK_SHUTDOWN_COMPLETE));
                    self.transmits.extend(packets);
                    if completes && self.shutdown_sent {
                        // sctp-proto leaves the side that sent SHUTDOWN open
                        // after its SHUTDOWN COMPLETE (RFC 9260 §9.2 closes it).
                        let _ = assoc.close();
                        self.pump();
                    }
                }
            }
        }
        self.transmits.pop_front().map(Datagram)
    }

    /// When [`SctpTransport::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.assoc.as_ref().and_then(|(_, a)| a.poll_timeout())
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.pump();
        }
        self.events.pop_front()
    }

    // ----- the association's events -----

    /// Moves sctp-proto's events into ours, answering DCEP as it goes.
    fn pump(&mut self) {
        self.pump_events();
        if self.shutdown_requested && self.all_acknowledged() {
            self.shutdown_requested = false;
            if let Some((_, assoc)) = self.assoc.as_mut() {
                match assoc.shutdown() {
                    Ok(()) => self.shutdown_sent = true,
                    Err(e) => self.on_closed(CloseReason::Error(e.to_string())),
                }
            }
            self.pump_events();
        }
        if self.state == TransportState::Established && self.assoc.as_ref().is_some_and(|(_, a)| a.is_closing()) {
            // The peer sent SHUTDOWN.
            self.state = TransportState::ShuttingDown;
        }
    }

    /// Whether no stream holds data the peer has not acknowledged.
    fn all_acknowledged(&mut self) -> bool {
        let Some((_, assoc)) = self.assoc.as_mut() else {
            return true;
        };
        assoc
            .stream_ids()
            .into_iter()
            .all(|id| assoc.stream(id).and_then(|s| s.buffered_amount()).unwrap_or(0) == 0)
    }

    fn pump_events(&mut self) {
        loop {
            let Some((_, assoc)) = self.assoc.as_mut() else {
                return;
            };
            // This association is the only one the endpoint keeps for us.
            // Its Drained event is not forwarded: sctp-proto raises it as
            // soon as shutdown() is called, and the endpoint would then stop
            // routing the peer's SHUTDOWN ACK to it.
            while assoc.poll_endpoint_event().is_some() {}
            let Some(event) = assoc.poll() else {
                return;
            };
            self.on_sctp_event(event);
        }
    }

    fn on_sctp_event(&mut self, event: SctpEvent) {
        match event {
            SctpEvent::Connected if self.state == TransportState::Connecting => self.on_connected(),
            SctpEvent::Stream(StreamEvent::Opened { id }) => {
                if let Some((_, assoc)) = self.assoc.as_mut() {
                    // Drain sctp-proto's queue of accepted streams; we track them here.
                    while assoc.accept_stream().is_some() {}
                }
                if !self.channels.contains_key(&id) {
                    self.unannounced.insert(id);
                }
            }
            SctpEvent::Stream(StreamEvent::Readable { id }) => self.read_stream(id),
            SctpEvent::Stream(StreamEvent::Finished { id }) => {
                self.unannounced.remove(&id);
                self.resetting.insert(id);
                if self.channels.remove(&id).is_some() {
                    self.events.push_back(Event::ChannelClosed(ChannelId(id)));
                }
            }
            SctpEvent::Stream(StreamEvent::ResetComplete { id } | StreamEvent::ResetFailed { id, .. }) => {
                self.resetting.remove(&id);
            }
            SctpEvent::Stream(StreamEvent::BufferedAmountLow { id }) => {
                // Only for the application's own messages: the stream's
                // buffered amount also counts DCEP.
                if let Some(ch) = self.channels.get_mut(&id) {
                    if std::mem::take(&mut ch.low_armed) {
                        self.events.push_back(Event::BufferedAmountLow(ChannelId(id)));
                    }
                }
            }
            SctpEvent::HandshakeFailed { reason } => {
                self.on_closed(CloseReason::HandshakeFailed(reason.to_string()));
            }
            SctpEvent::AssociationLost { reason } => self.on_closed(close_reason(reason)),
            _ => {}
        }
    }

    /// Opens the channels that were waiting for the association.
    fn on_connected(&mut self) {
        self.state = TransportState::Established;
        self.events.push_back(Event::Connected);
        let waiting: Vec<u16> = self
            .channels
            .iter()
            .filter(|(_, c)| c.state == ChannelState::Connecting)
            .map(|(id, _)| *id)
            .collect();
        for id in waiting {
            if self.start_channel(id).is_err() {
                self.channels.remove(&id);
                self.events.push_back(Event::ChannelClosed(ChannelId(id)));
            }
        }
    }

    fn on_closed(&mut self, reason: CloseReason) {
        if self.state == TransportState::Closed {
            return;
        }
        self.state = TransportState::Closed;
        for id in std::mem::take(&mut self.channels).into_keys() {
            self.events.push_back(Event::ChannelClosed(ChannelId(id)));
        }
        self.unannounced.clear();
        self.events.push_back(Event::Closed { reason });
    }

    /// Reads every complete message the stream holds.
    fn read_stream(&mut self, id: u16) {
        loop {
            let Some((_, assoc)) = self.assoc.as_mut() else {
                return;
            };
            let Ok(mut stream) = assoc.stream(id) else {
                return;
            };
            let chunks = match stream.read_sctp() {
                Ok(Some(chunks)) => chunks,
                Ok(None) | Err(_) => return,
            };
            let mut data = vec![0; chunks.len()];
            if chunks.read(&mut data).is_err() {
                // Sized from chunks.len() just above, so this cannot happen.
                continue;
            }
            match chunks.ppi {
                PayloadProtocolIdentifier::Dcep => self.on_dcep(id, &data),
                PayloadProtocolIdentifier::String => self.on_message(id, data, true),
                PayloadProtocolIdentifier::Binary => self.on_message(id, data, false),
                PayloadProtocolIdentifier::StringEmpty => self.on_message(id, Vec::new(), true),
                PayloadProtocolIdentifier::BinaryEmpty => self.on_message(id, Vec::new(), false),
                // sctp-proto folds every other PPID (the deprecated partial
                // ones of RFC 8831 §8 too) into Unknown.
                _ => self.stats.messages_dropped += 1,
            }
        }
    }

    fn on_message(&mut self, id: u16, data: Vec<u8>, is_text: bool) {
        let Some(ch) = self.channels.get_mut(&id) else {
            // No DATA_CHANNEL_OPEN and no negotiated channel of that id.
            self.stats.messages_dropped += 1;
            return;
        };
        if !ch.acknowledged {
            // RFC 8832 §6: any message from the peer acknowledges the channel.
            ch.acknowledged = true;
            self.configure_stream(id);
        }
        self.events.push_back(Event::Message {
            channel: ChannelId(id),
            data,
            is_text,
        });
    }

    fn on_dcep(&mut self, id: u16, data: &[u8]) {
        let message = match DcepMessage::parse(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dcep_errors += 1;
                if self.unannounced.contains(&id) {
                    // RFC 8832 §6: a malformed OPEN closes the stream, unanswered.
                    self.reset_stream(id);
                }
                return;
            }
        };
        match message {
            DcepMessage::Open(open) => self.on_open(id, &open),
            DcepMessage::Ack => match self.channels.get_mut(&id) {
                Some(ch) if ch.origin == ChannelOrigin::Local => {
                    if !ch.acknowledged {
                        ch.acknowledged = true;
                        self.configure_stream(id);
                    }
                }
                _ => self.stats.dcep_errors += 1,
            },
        }
    }

    /// RFC 8832 §6: answer an OPEN on an unused stream of the peer's
    /// parity with ACK; close the stream for any other.
    fn on_open(&mut self, id: u16, open: &DataChannelOpen<'_>) {
        let peer_parity = match self.config.dtls_role {
            DtlsRole::Client => 1,
            DtlsRole::Server => 0,
        };
        if self.channels.contains_key(&id) || id % 2 != peer_parity {
            self.stats.dcep_errors += 1;
            if self.channels.remove(&id).is_some() {
                self.events.push_back(Event::ChannelClosed(ChannelId(id)));
            }
            self.reset_stream(id);
            return;
        }
        self.unannounced.remove(&id);
        let options = ChannelOptions::from_open(open);
        self.channels.insert(
            id,
            Channel {
                label: open.label.to_owned(),
                protocol: open.protocol.to_owned(),
                options,
                state: ChannelState::Open,
                origin: ChannelOrigin::Remote,
                acknowledged: true,
                low_threshold: self.config.buffered_amount_low_threshold,
                low_armed: false,
            },
        );
        self.configure_stream(id);
        let ack = self.write_dcep(id, &DcepMessage::Ack);
        if ack.is_err() {
            self.channels.remove(&id);
            self.reset_stream(id);
            return;
        }
        self.events.push_back(Event::ChannelOpen {
            id: ChannelId(id),
            label: open.label.to_owned(),
            protocol: open.protocol.to_owned(),
            options,
            origin: ChannelOrigin::Remote,
        });
    }

    // ----- helpers -----

    /// Opens the stream of a channel created here, and sends its
    /// DATA_CHANNEL_OPEN unless it was negotiated.
    fn start_channel(&mut self, id: u16) -> Result<(), Error> {
        let (_, assoc) = self.assoc.as_mut().ok_or(Error::NotEstablished)?;
        match assoc.open_stream(id, PayloadProtocolIdentifier::Binary) {
            Ok(_) => {}
            // The peer sent on a negotiated channel's stream before we opened it.
            Err(sctp_proto::Error::ErrStreamAlreadyExist) if self.unannounced.contains(&id) => {
                self.unannounced.remove(&id);
            }
            Err(e) => return Err(e.into()),
        }
        self.configure_stream(id);
        let ch = self.channels.get_mut(&id).ok_or(Error::UnknownChannel(ChannelId(id)))?;
        ch.state = ChannelState::Open;
        let (origin, label, protocol, options) = (ch.origin, ch.label.clone(), ch.protocol.clone(), ch.options);
        if origin == ChannelOrigin::Local {
            let (channel_type, reliability_parameter) = options.channel_type();
            let open = DcepMessage::Open(DataChannelOpen {
                channel_type,
                priority: options.priority,
                reliability_parameter,
                label: &label,
                protocol: &protocol,
            });
            self.write_dcep(id, &open)?;
        }
        self.events.push_back(Event::ChannelOpen {
            id: ChannelId(id),
            label,
            protocol,
            options,
            origin,
        });
        Ok(())
    }

    /// Gives the stream its channel's ordering, reliability and threshold.
    fn configure_stream(&mut self, id: u16) {
        let Some(ch) = self.channels.get(&id) else {
            return;
        };
        let (kind, value) = ch.options.sctp_reliability();
        let (unordered, threshold) = (ch.send_unordered(), ch.low_threshold);
        if let Some((_, assoc)) = self.assoc.as_mut() {
            if let Ok(mut stream) = assoc.stream(id) {
                // Both only fail for a stream that is gone.
                let _ = stream.set_reliability_params(unordered, kind, value);
                let _ = stream.set_buffered_amount_low_threshold(threshold);
            }
        }
    }

    fn write_dcep(&mut self, id: u16, message: &DcepMessage<'_>) -> Result<(), Error> {
        let bytes = message.to_vec()?;
        let (_, assoc) = self.assoc.as_mut().ok_or(Error::NotEstablished)?;
        let mut stream = assoc.stream(id)?;
        // sctp-proto sends DCEP ordered and reliable whatever the stream's settings.
        stream.write_with_ppi(&bytes, PayloadProtocolIdentifier::Dcep)?;
        Ok(())
    }

    fn reset_stream(&mut self, id: u16) {
        self.unannounced.remove(&id);
        if let Some((_, assoc)) = self.assoc.as_mut() {
            if let Ok(mut stream) = assoc.stream(id) {
                let _ = stream.close();
            }
        }
    }

    fn free_stream_id(&mut self) -> Result<u16, Error> {
        let first = match self.config.dtls_role {
            DtlsRole::Client => 0,
            DtlsRole::Server => 1,
        };
        // 65535 is reserved (W3C WebRTC §6.2), and is odd, so step_by
        // over 0..65535 never yields it.
        for id in (first..u16::MAX).step_by(2) {
            if self.channels.contains_key(&id) || self.resetting.contains(&id) || self.unannounced.contains(&id) {
                continue;
            }
            if let Some((_, assoc)) = self.assoc.as_mut() {
                if assoc.stream(id).is_ok() {
                    continue;
                }
            }
            return Ok(id);
        }
        Err(Error::NoFreeStreamId)
    }

    fn apply_max_message_size(&mut self) {
        let max = u32::try_from(self.max_message_size()).unwrap_or(u32::MAX);
        if let Some((_, assoc)) = self.assoc.as_mut() {
            assoc.set_max_send_message_size(max);
        }
    }
}

fn to_sctp_ppi(ppid: Ppid) -> PayloadProtocolIdentifier {
    match ppid {
        Ppid::Dcep => PayloadProtocolIdentifier::Dcep,
        Ppid::String | Ppid::StringPartial => PayloadProtocolIdentifier::String,
        Ppid::Binary | Ppid::BinaryPartial => PayloadProtocolIdentifier::Binary,
        Ppid::StringEmpty => PayloadProtocolIdentifier::StringEmpty,
        Ppid::BinaryEmpty => PayloadProtocolIdentifier::BinaryEmpty,
    }
}

fn close_reason(reason: AssociationError) -> CloseReason {
    match reason {
        AssociationError::AssociationClosed | AssociationError::ApplicationClosed | AssociationError::LocallyClosed => {
            CloseReason::Closed
        }
        AssociationError::HandshakeFailed(e) => CloseReason::HandshakeFailed(e.to_string()),
        AssociationError::ReceiveBufferExhausted => CloseReason::ReceiveBufferExhausted,
        AssociationError::Reset => CloseReason::Reset,
        AssociationError::TimedOut => CloseReason::TimedOut,
        other => CloseReason::Error(other.to_string()),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
