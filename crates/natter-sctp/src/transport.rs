//! [`SctpTransport`]: one SCTP association over DTLS (RFC 8261), natter's
//! own ([`crate::sctp::association`]), with WebRTC data channels
//! (RFC 8831) and DCEP (RFC 8832) on top.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::channel::{Channel, ChannelId, ChannelInfo, ChannelOptions, ChannelOrigin, ChannelState, Message};
use crate::config::{DtlsRole, SctpConfig};
use crate::dcep::{DataChannelOpen, DcepMessage};
use crate::error::Error;
use crate::event::{CloseReason, Datagram, Event, Stats, TransportState};
use crate::ppid::Ppid;
use crate::sctp::association::{
    self, Association, CloseReason as SctpCloseReason, Event as SctpEvent, Reliability, SendError, State,
};
use crate::sctp::tsn::Tsn;

/// Room for any control packet (an INIT ACK with its cookie is the
/// largest); DATA packets stay within [`SctpConfig::mtu`].
const CONTROL_PACKET_ROOM: usize = 4096;

/// A sans-IO SCTP association carrying WebRTC data channels.
///
/// # Methods
///
/// Like every natter core it reads no clock and owns no socket:
/// - getters: [`SctpTransport::state`], [`SctpTransport::channel`],
///   [`SctpTransport::channels`], [`SctpTransport::max_message_size`],
///   [`SctpTransport::buffered_amount`], [`SctpTransport::stats`];
/// - application commands: [`SctpTransport::open_channel`],
///   [`SctpTransport::send`], [`SctpTransport::close_channel`],
///   [`SctpTransport::set_buffered_amount_low_threshold`],
///   [`SctpTransport::set_remote_max_message_size`],
///   [`SctpTransport::set_reading`], [`SctpTransport::shutdown`];
/// - input: [`SctpTransport::handle_receive`] with each DTLS
///   application-data record, decrypted, and
///   [`SctpTransport::handle_timeout`] once [`SctpTransport::poll_timeout`]
///   has passed;
/// - output, drained after every input and command in this order:
///   [`SctpTransport::poll_transmit`] (SCTP packets to encrypt and send
///   as DTLS application data), then [`SctpTransport::poll_timeout`],
///   then [`SctpTransport::poll_event`].
///
/// Commands take no time argument: those that need one (a message's
/// lifetime, RFC 3758; a stream reset's timer, RFC 6525) count from the
/// last time given to an input or output method.
///
/// # Who sends INIT
///
/// The DTLS client, at its first [`SctpTransport::poll_transmit`]; the
/// DTLS server answers. Chromium and Firefox send INIT from both sides,
/// and RFC 9260 §5.2.1 sorts out INITs that cross. With SNAP
/// ([`SctpConfig::snap`]) nobody does: both ends are up at once.
pub struct SctpTransport {
    config: SctpConfig,
    /// Keys the State Cookie's HMAC and seeds tags and TSNs.
    secret: [u8; 32],
    /// Made at the first method given the time.
    assoc: Option<Association>,
    /// The last time an input or output method was given.
    now: Option<Instant>,
    state: TransportState,
    channels: BTreeMap<u16, Channel>,
    /// Ids whose outgoing reset has not completed; not reused until it has.
    resetting: BTreeSet<u16>,
    remote_max_message_size: Option<usize>,
    /// A packet is written here, then copied into its [`Datagram`].
    packet: Vec<u8>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Received messages are delivered ([`SctpTransport::set_reading`]).
    reading: bool,
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
    /// A transport for `config`; call it when DTLS is connected. The DTLS
    /// client's INIT goes at the first [`SctpTransport::poll_transmit`].
    pub fn new(config: SctpConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut secret = [0; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| Error::Random)?;
        Ok(SctpTransport {
            packet: vec![0; config.max_mtu.unwrap_or(0).max(config.mtu).max(CONTROL_PACKET_ROOM)],
            config,
            secret,
            assoc: None,
            now: None,
            state: TransportState::Connecting,
            channels: BTreeMap::new(),
            resetting: BTreeSet::new(),
            remote_max_message_size: None,
            events: VecDeque::new(),
            stats: Stats::default(),
            reading: true,
        })
    }

    /// SNAP (draft-hancke-tsvwg-snap-01): our INIT chunk for `config`,
    /// to send in SDP's `a=sctp-init` before the association exists, and
    /// to give back in [`SctpConfig::snap`] with the peer's. Its tag and
    /// TSN are fresh random numbers (RFC 9260 §5.3.1).
    pub fn snap_init(config: &SctpConfig) -> Result<Vec<u8>, Error> {
        let mut random = [0; 8];
        aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Random)?;
        let [a, b, c, d, e, f, g, h] = random;
        let tag = u32::from_be_bytes([a, b, c, d]);
        let tsn = Tsn(u32::from_be_bytes([e, f, g, h]));
        Ok(association::snap_init(&association_config(config), tag, tsn))
    }

    // ----- getters -----

    pub fn state(&self) -> TransportState {
        self.state
    }

    pub fn config(&self) -> &SctpConfig {
        &self.config
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats;
        if let Some(a) = self.assoc.as_ref().map(Association::stats) {
            stats.chunks_retransmitted = a.chunks_retransmitted;
            stats.fast_retransmits = a.fast_retransmits;
            stats.t3_expiries = a.t3_expiries;
            stats.zero_window_probes = a.zero_window_probes;
        }
        stats
    }

    /// Whether the association uses I-DATA (RFC 8260): both ends offered
    /// it ([`SctpConfig::interleaving`]). False until it is up.
    pub fn interleaving(&self) -> bool {
        self.assoc
            .as_ref()
            .and_then(Association::peer)
            .is_some_and(|p| p.capabilities.interleaving)
    }

    /// The largest SCTP packet sent now: `mtu`, or what PMTU probing
    /// found the path carries ([`SctpConfig::max_mtu`], RFC 8899).
    pub fn pmtu(&self) -> usize {
        self.assoc.as_ref().map_or(self.config.mtu, Association::pmtu)
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

    /// Bytes queued on a channel and not yet acknowledged by the peer
    /// (W3C's `bufferedAmount` counts until the send; natter, like
    /// Chromium's dcSCTP, until the SACK). DCEP messages count too.
    pub fn buffered_amount(&self, channel: ChannelId) -> Result<usize, Error> {
        if !self.channels.contains_key(&channel.0) {
            return Err(Error::UnknownChannel(channel));
        }
        Ok(self.assoc.as_ref().map_or(0, |a| a.buffered_amount_on(channel.0)))
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
        let (unordered, reliability) = (ch.send_unordered(), reliability(&ch.options));
        let (assoc, now) = self.assoc.as_mut().zip(self.now).ok_or(Error::NotEstablished)?;
        let buffered = assoc.buffered_amount_on(channel.0);
        let max_buffered = self.config.max_buffered_amount;
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
        assoc
            .send_with(now, channel.0, ppid.value(), unordered, payload, reliability)
            .map_err(|e| send_error(channel, e))?;
        if let Some(ch) = self.channels.get_mut(&channel.0) {
            ch.low_armed = true;
        }
        Ok(())
    }

    /// Sets the threshold at or below which [`Event::BufferedAmountLow`]
    /// fires when acknowledged data brings the buffered amount down.
    pub fn set_buffered_amount_low_threshold(&mut self, channel: ChannelId, threshold: usize) -> Result<(), Error> {
        let ch = self
            .channels
            .get_mut(&channel.0)
            .ok_or(Error::UnknownChannel(channel))?;
        ch.low_threshold = threshold;
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
                if !self.reset_stream(channel.0) {
                    // No association to reset it on: the channel is gone.
                    self.channels.remove(&channel.0);
                    self.events.push_back(Event::ChannelClosed(channel));
                }
                Ok(())
            }
        }
    }

    /// Starts a graceful SHUTDOWN (RFC 9260 §9.2): everything queued is
    /// delivered first; [`Event::Closed`] follows. Channels take no new
    /// messages from now on.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        match self.state {
            TransportState::Established => {}
            TransportState::ShuttingDown => return Ok(()),
            TransportState::Closed => return Err(Error::Closed),
            TransportState::Connecting => return Err(Error::NotEstablished),
        }
        self.state = TransportState::ShuttingDown;
        for ch in self.channels.values_mut() {
            if ch.state == ChannelState::Open {
                ch.state = ChannelState::Closing;
            }
        }
        if let Some((assoc, now)) = self.assoc.as_mut().zip(self.now) {
            assoc.shutdown(now);
        }
        self.pump();
        Ok(())
    }

    /// Whether received messages are delivered (at first they are).
    /// While not, they stay in the association's receive buffer, which
    /// the window it advertises counts (a_rwnd, RFC 9260 §6.2), so a peer
    /// that keeps sending fills it and then waits (§6.1 rule A): the
    /// application pushes back on the whole association, DCEP included.
    /// Reading again delivers them in order, and a SACK reopens a window
    /// the peer last saw (nearly) closed.
    pub fn set_reading(&mut self, reading: bool) {
        self.reading = reading;
        // What waited is delivered now, and the window update is queued.
        self.pump();
    }

    // ----- input -----

    /// One SCTP packet: the plaintext of a DTLS application-data record.
    /// Packets that do not parse, or are not this association's, are
    /// dropped and counted.
    pub fn handle_receive(&mut self, now: Instant, data: &[u8]) {
        if self.state == TransportState::Closed {
            return;
        }
        if self.association(now).handle_packet(now, data).is_err() {
            self.stats.packets_dropped += 1;
        }
        self.pump();
    }

    /// Fires the association's timers that are due at `now`
    /// (retransmission, delayed SACK, heartbeat, shutdown, stream reset).
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(assoc) = self.assoc.as_mut() {
            self.now = Some(now);
            assoc.handle_timeout(now);
        }
        self.pump();
    }

    // ----- output -----

    /// The next SCTP packet to encrypt and send.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Datagram> {
        if self.state == TransportState::Closed && self.assoc.is_none() {
            return None;
        }
        self.association(now);
        let assoc = self.assoc.as_mut()?;
        // The buffer has room for any packet the association makes.
        let n = assoc.poll_transmit(now, &mut self.packet).ok().flatten()?;
        Some(Datagram(Bytes::copy_from_slice(self.packet.get(..n)?)))
    }

    /// When [`SctpTransport::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.assoc.as_ref().and_then(Association::poll_timeout)
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        if self.events.is_empty() {
            self.pump();
        }
        self.events.pop_front()
    }

    // ----- the association's messages and events -----

    /// The association, made the first time: set up from the two INITs
    /// with SNAP, or with the DTLS client's INIT queued.
    fn association(&mut self, now: Instant) -> &mut Association {
        self.now = Some(now);
        let config = &self.config;
        self.assoc.get_or_insert_with(|| {
            let mut assoc = Association::new(association_config(config), &self.secret, now);
            // `new` checked the INITs, so SNAP cannot fail here.
            let snapped = config
                .snap
                .as_ref()
                .is_some_and(|s| assoc.connect_snap(&s.local, &s.remote).is_ok());
            if !snapped && config.dtls_role == DtlsRole::Client {
                assoc.connect(now);
            }
            assoc
        })
    }

    /// Moves the association's messages and events into ours, answering
    /// DCEP as it goes.
    fn pump(&mut self) {
        let Some(state) = self.assoc.as_ref().map(Association::state) else {
            return;
        };
        if self.state == TransportState::Connecting && state.is_up() {
            // Before its messages: DATA may come bundled with COOKIE ECHO.
            self.on_connected();
        }
        while self.reading {
            let Some(m) = self.assoc.as_mut().and_then(Association::poll_message) else {
                break;
            };
            self.on_message(m.stream, m.ppid, m.data);
        }
        while let Some(event) = self.assoc.as_mut().and_then(Association::poll_event) {
            self.on_sctp_event(event);
        }
        self.buffered_amount_low();
        let state = self.assoc.as_ref().map(Association::state);
        if self.state == TransportState::Established
            && matches!(state, Some(State::ShutdownReceived | State::ShutdownAckSent))
        {
            // The peer sent SHUTDOWN.
            self.state = TransportState::ShuttingDown;
        }
    }

    fn on_sctp_event(&mut self, event: SctpEvent) {
        match event {
            // Handled in pump(), from the association's state.
            SctpEvent::Connected => {}
            SctpEvent::Restarted => {
                // RFC 9260 §5.2.4: the peer lost its state, and its
                // channels with it.
                if let Some(assoc) = self.assoc.as_mut() {
                    assoc.abort();
                }
                self.on_closed(CloseReason::Reset);
            }
            SctpEvent::Closed(reason) => self.on_closed(close_reason(reason)),
            SctpEvent::IncomingStreamReset(id) => {
                // RFC 8831 §6.7: the peer closed the channel; we reset our
                // side too, unless we began. (A stream of no channel is
                // left alone, so two sides never reset back and forth.)
                if self.channels.get(&id).is_some_and(|c| c.state != ChannelState::Closing) {
                    self.reset_stream(id);
                }
                if self.channels.remove(&id).is_some() {
                    self.events.push_back(Event::ChannelClosed(ChannelId(id)));
                }
            }
            SctpEvent::OutgoingStreamReset(id) | SctpEvent::StreamResetFailed(id) => {
                self.resetting.remove(&id);
            }
        }
    }

    /// [`Event::BufferedAmountLow`] for each channel whose application
    /// messages were sent and whose buffered amount fell to its threshold.
    fn buffered_amount_low(&mut self) {
        let Some(assoc) = self.assoc.as_ref() else { return };
        for (id, ch) in self.channels.iter_mut().filter(|(_, c)| c.low_armed) {
            if assoc.buffered_amount_on(*id) <= ch.low_threshold {
                ch.low_armed = false;
                self.events.push_back(Event::BufferedAmountLow(ChannelId(*id)));
            }
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
        self.events.push_back(Event::Closed { reason });
    }

    /// One whole message from the association, by its PPID (RFC 8831 §8).
    fn on_message(&mut self, id: u16, ppid: u32, data: Vec<u8>) {
        let (data, is_text) = match Ppid::from_value(ppid) {
            Some(Ppid::Dcep) => {
                self.on_dcep(id, &data);
                return self.recycle(data);
            }
            Some(p @ (Ppid::String | Ppid::Binary)) => (data, p.is_text()),
            Some(p @ (Ppid::StringEmpty | Ppid::BinaryEmpty)) => {
                self.recycle(data);
                (Vec::new(), p.is_text())
            }
            // The deprecated partial PPIDs (RFC 8831 §8: no current
            // browser sends them) and every other.
            Some(Ppid::StringPartial | Ppid::BinaryPartial) | None => {
                self.stats.messages_dropped += 1;
                return self.recycle(data);
            }
        };
        let Some(ch) = self.channels.get_mut(&id) else {
            // No DATA_CHANNEL_OPEN and no negotiated channel of that id.
            self.stats.messages_dropped += 1;
            return self.recycle(data);
        };
        // RFC 8832 §6: any message from the peer acknowledges the channel.
        ch.acknowledged = true;
        self.events.push_back(Event::Message {
            channel: ChannelId(id),
            data,
            is_text,
        });
    }

    fn recycle(&mut self, data: Vec<u8>) {
        if let Some(assoc) = self.assoc.as_mut() {
            assoc.recycle(data);
        }
    }

    fn on_dcep(&mut self, id: u16, data: &[u8]) {
        let message = match DcepMessage::parse(data) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dcep_errors += 1;
                if !self.channels.contains_key(&id) {
                    // RFC 8832 §6: a malformed OPEN closes the stream, unanswered.
                    self.reset_stream(id);
                }
                return;
            }
        };
        match message {
            DcepMessage::Open(open) => self.on_open(id, &open),
            DcepMessage::Ack => match self.channels.get_mut(&id) {
                Some(ch) if ch.origin == ChannelOrigin::Local => ch.acknowledged = true,
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
        if self.write_dcep(id, &DcepMessage::Ack).is_err() {
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

    /// Opens a channel created here: its stream's priority (RFC 8831
    /// §6.4), and its DATA_CHANNEL_OPEN unless it was negotiated.
    fn start_channel(&mut self, id: u16) -> Result<(), Error> {
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
        } else if let Some(assoc) = self.assoc.as_mut() {
            assoc.set_priority(id, options.priority.0);
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

    /// Sends a DCEP message, ordered and reliable whatever the channel's
    /// options (RFC 8832 §6), and gives the stream its channel's priority.
    fn write_dcep(&mut self, id: u16, message: &DcepMessage<'_>) -> Result<(), Error> {
        let bytes = message.to_vec()?;
        let priority = self.channels.get(&id).map(|c| c.options.priority.0);
        let (assoc, now) = self.assoc.as_mut().zip(self.now).ok_or(Error::NotEstablished)?;
        if let Some(p) = priority {
            assoc.set_priority(id, p);
        }
        assoc
            .send_with(now, id, Ppid::Dcep.value(), false, &bytes, Reliability::Reliable)
            .map_err(|e| send_error(ChannelId(id), e))
    }

    /// RFC 8831 §6.7: resets our outgoing stream `id`; whether a reset
    /// is under way.
    fn reset_stream(&mut self, id: u16) -> bool {
        let Some((assoc, now)) = self.assoc.as_mut().zip(self.now) else {
            return false;
        };
        let ok = assoc.reset_streams(now, &[id]).is_ok();
        if ok {
            self.resetting.insert(id);
        }
        ok
    }

    fn free_stream_id(&self) -> Result<u16, Error> {
        let first = match self.config.dtls_role {
            DtlsRole::Client => 0,
            DtlsRole::Server => 1,
        };
        // 65535 is reserved (W3C WebRTC §6.2), and is odd, so step_by
        // over 0..65535 never yields it.
        (first..u16::MAX)
            .step_by(2)
            .find(|id| !self.channels.contains_key(id) && !self.resetting.contains(id))
            .ok_or(Error::NoFreeStreamId)
    }
}

/// RFC 3758 via RFC 8831 §6.1: a channel's limit on each message.
/// The association's settings for a transport's.
fn association_config(config: &SctpConfig) -> association::Config {
    association::Config {
        local_port: config.local_port,
        remote_port: config.remote_port,
        receive_window: config.receive_window,
        max_packet_size: config.mtu,
        max_plpmtu: config.max_mtu,
        // RFC 9653: DTLS below us detects errors.
        zero_checksum: true,
        interleaving: config.interleaving,
        rto_initial: config.rto_initial,
        rto_min: config.rto_min,
        rto_max: config.rto_max,
        // The association lives as long as ICE and DTLS say
        // it does, so SCTP never gives up on its own.
        max_init_retransmits: None,
        max_retransmits: None,
        path_max_retransmits: None,
        ..association::Config::default()
    }
}

fn reliability(options: &ChannelOptions) -> Reliability {
    match (options.max_retransmits, options.max_packet_lifetime) {
        (Some(n), _) => Reliability::MaxRetransmits(u16::try_from(n).unwrap_or(u16::MAX)),
        (None, Some(ms)) => Reliability::MaxLifetime(Duration::from_millis(u64::from(ms))),
        (None, None) => Reliability::Reliable,
    }
}

fn send_error(channel: ChannelId, e: SendError) -> Error {
    match e {
        SendError::NotEstablished => Error::NotEstablished,
        SendError::ShuttingDown => Error::Closed,
        SendError::StreamResetting(_) | SendError::Empty => Error::ChannelNotOpen(channel),
        SendError::PartialReliabilityNotSupported => Error::PartialReliabilityNotSupported,
    }
}

fn close_reason(reason: SctpCloseReason) -> CloseReason {
    match reason {
        SctpCloseReason::Shutdown => CloseReason::Closed,
        SctpCloseReason::PeerAborted => CloseReason::Aborted,
        SctpCloseReason::LocalAbort => CloseReason::LocalAbort,
        SctpCloseReason::SetupTimedOut | SctpCloseReason::InvalidInitAck => CloseReason::HandshakeFailed,
        SctpCloseReason::PeerUnreachable => CloseReason::TimedOut,
        SctpCloseReason::ProtocolViolation => CloseReason::ProtocolViolation,
    }
}
