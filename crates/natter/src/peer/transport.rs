//! The data path: ICE carries everything; what comes out of it is
//! demultiplexed by its first byte (RFC 7983 §7) into DTLS, whose
//! application data is SCTP (RFC 8261), whose messages are the data
//! channels' (RFC 8831). Outgoing, SCTP packets become DTLS records that
//! ICE sends on the selected pair.
//!
//! DTLS starts once an exchange settled the roles: the server at once,
//! so that it hears the first ClientHello, the client when ICE has
//! selected a pair to send it on, or at once when both sides offered
//! SPED (draft-hancke-webrtc-sped): then every DTLS flight is also
//! handed to the ICE agent, which embeds it in its checks and responses
//! until acknowledged, and the packets the peer embedded come out of the
//! agent into DTLS as if they had arrived on their own. SCTP starts when DTLS is connected,
//! which is after the peer's certificate matched the remote
//! description's fingerprint (RFC 8122 §5).

use std::time::Instant;

use natter_ice::{Event as IceEvent, Received, Transport};
use natter_sctp::{Event as SctpEvent, SctpTransport};
use natter_stun::PacketKind;

use super::event::{IceCandidate, PeerEvent};
use super::state::PeerConnectionState;
use super::PeerConnection;
use crate::dtls::{DtlsEvent, DtlsRole, DtlsTransport, Fingerprint};

/// DTLS datagrams held while ICE has no pair to send them on: more than
/// a handshake flight, far less than a retransmission timer's worth of
/// data.
const MAX_UNSENT: usize = 32;

/// DTLS datagrams held until DTLS starts: a ClientHello flight, sent
/// again. A peer that starts DTLS as soon as a pair is writable
/// (Chromium answering our offer) can send its ClientHello before its
/// answer has reached us; dropping it costs a retransmission (in
/// bench/connect, 65-135 ms to open instead of 9). libwebrtc caches an
/// early ClientHello too.
const MAX_EARLY_DTLS: usize = 8;

/// Which layer a [`PeerConnection::poll_timer`] deadline belongs to: why
/// the connection wakes up then.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// ICE: pacing of checks (RFC 8445 §14.2), retransmissions, consent
    /// (RFC 7675), TURN refreshes.
    Ice,
    /// DTLS handshake retransmission (RFC 6347 §4.2.4).
    Dtls,
    /// SCTP: retransmission, delayed SACK, heartbeats (RFC 9260).
    Sctp,
    /// Media: RTCP reports (RFC 3550 §6.2), NACKs, TWCC feedback, the
    /// reorder buffer's wait.
    Media,
    /// The congestion controller of what we send: its periodic look at
    /// application-limited sending and the probes it calls for, and its
    /// pacer's next packet (draft-ietf-rmcat-gcc-02 §4) when it paces.
    Congestion,
}

/// What the latest offer/answer exchange settled for the transports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TransportParams {
    /// RFC 8842 §5: ours, from the `a=setup` exchange.
    pub(super) dtls_role: DtlsRole,
    /// The remote description's `a=fingerprint`s (RFC 8122 §5).
    pub(super) remote_fingerprints: Vec<Fingerprint>,
    /// The data channel section, when one was accepted.
    pub(super) sctp: Option<SctpParams>,
}

/// RFC 8841: the SCTP association the exchange agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SctpParams {
    pub(super) local_port: u16,
    pub(super) remote_port: u16,
    /// The peer's `a=max-message-size`, if it sent one (RFC 8841 §6).
    pub(super) remote_max_message_size: Option<usize>,
    /// Both INITs, when both sides offered SNAP.
    pub(super) snap: Option<natter_sctp::SnapInits>,
}

impl PeerConnection {
    /// A datagram (or frame) for the ICE agent, then for whichever layer
    /// it carries. False when it was SRTP or SRTCP, or dropped: nothing
    /// then waits to move between ICE, DTLS and SCTP (media sends and
    /// reports by itself), so `drive` can be skipped on
    /// the media path.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: std::net::SocketAddr,
        destination: std::net::SocketAddr,
        data: &[u8],
    ) -> bool {
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        let Some(ice) = self.ice.as_mut() else {
            self.stats.unknown_dropped += 1;
            return false;
        };
        match ice.handle_receive(now, transport, source, destination, data) {
            Received::Handled => true,
            Received::Data { data, .. } => match PacketKind::of(&data) {
                PacketKind::Dtls => {
                    if let Some(sped) = self.ice.as_mut().and_then(|ice| ice.sped_mut()) {
                        sped.note_received(&data);
                    }
                    match self.dtls.as_mut() {
                        Some(dtls) => dtls.handle_receive(now, &data),
                        None if self.dtls_error.is_none() && self.early_dtls.len() < MAX_EARLY_DTLS => {
                            self.early_dtls.push(data.into_owned());
                        }
                        None => self.stats.dtls_dropped += 1,
                    }
                    true
                }
                PacketKind::Rtp => {
                    self.receive_media(now, &data);
                    false
                }
                _ => {
                    self.stats.unknown_dropped += 1;
                    false
                }
            },
            Received::Unknown => {
                self.stats.unknown_dropped += 1;
                false
            }
        }
    }

    /// Fires every layer's timers that are due.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        let due = |deadline: Option<Instant>| deadline.is_some_and(|t| t <= now);
        if let Some(ice) = self.ice.as_mut().filter(|ice| due(ice.poll_timeout())) {
            ice.handle_timeout(now);
        }
        if let Some(dtls) = self.dtls.as_mut().filter(|dtls| due(dtls.poll_timeout())) {
            dtls.handle_timeout(now);
        }
        if let Some(sctp) = self.sctp.as_mut().filter(|sctp| due(sctp.poll_timeout())) {
            sctp.handle_timeout(now);
        }
        if due(self.media.next_timeout()) {
            self.media_timers(now);
        }
        if due(self.media.congestion_timeout()) {
            self.congestion_timers(now);
        }
    }

    /// The earliest deadline of the layers, and whose it is.
    pub(super) fn next_timer(&self) -> Option<(Instant, Timer)> {
        let ice = self.ice.as_ref().and_then(|ice| ice.poll_timeout());
        let dtls = self.dtls.as_ref().and_then(|dtls| dtls.poll_timeout());
        let sctp = self.sctp.as_ref().and_then(|sctp| sctp.poll_timeout());
        [
            (ice, Timer::Ice),
            (dtls, Timer::Dtls),
            (sctp, Timer::Sctp),
            (self.media.next_timeout(), Timer::Media),
            (self.media.congestion_timeout(), Timer::Congestion),
        ]
        .into_iter()
        .filter_map(|(deadline, timer)| Some((deadline?, timer)))
        .min_by_key(|(deadline, _)| *deadline)
    }

    /// Moves what each layer produced to the next one until nothing moves,
    /// then updates the aggregate state.
    pub(super) fn drive(&mut self, now: Instant) {
        loop {
            let mut moved = self.ice_events();
            self.start_dtls(now);
            moved |= self.sped_to_dtls(now);
            moved |= self.sctp_to_dtls(now);
            moved |= self.dtls_to_ice(now);
            moved |= self.dtls_events(now);
            moved |= self.sctp_events();
            if !moved {
                break;
            }
        }
        self.update_connection_state();
    }

    fn ice_events(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.ice.as_mut().and_then(|ice| ice.poll_event()) {
            moved = true;
            match event {
                IceEvent::LocalCandidate(candidate) => {
                    let (mid, index) = self.candidate_target();
                    let candidate = candidate.to_string();
                    self.record_local_candidate(&candidate);
                    let ufrag = self.ice.as_ref().map(|ice| ice.local_credentials().ufrag.clone());
                    self.events.push_back(PeerEvent::IceCandidate(IceCandidate {
                        candidate,
                        sdp_mid: mid,
                        sdp_m_line_index: index,
                        username_fragment: ufrag,
                    }));
                }
                IceEvent::GatheringComplete => {
                    self.record_gathering_complete();
                    self.events.push_back(PeerEvent::IceGatheringComplete);
                }
                IceEvent::ResolveMdns(name) => self.events.push_back(PeerEvent::ResolveMdns(name)),
                IceEvent::ConnectionState(state) => {
                    self.ice_state = state;
                    self.events.push_back(PeerEvent::IceConnectionStateChange(state));
                }
                // DTLS follows the selected pair by itself; ICE roles do
                // not touch DTLS roles.
                IceEvent::SelectedPair { .. } | IceEvent::RoleChanged(_) => {}
            }
        }
        moved
    }

    /// Starts DTLS once the exchange settled the roles (see the module
    /// documentation).
    fn start_dtls(&mut self, now: Instant) {
        let Some(params) = self.params.as_ref() else { return };
        let has_pair = self.ice.as_ref().is_some_and(|ice| ice.selected_pair().is_some());
        // With SPED the ClientHello rides the first checks.
        let sped = self
            .ice
            .as_ref()
            .and_then(|ice| ice.sped())
            .is_some_and(|s| s.is_negotiating());
        let started = self.dtls.is_some() || self.dtls_error.is_some();
        if started || (params.dtls_role == DtlsRole::Client && !has_pair && !sped) {
            return;
        }
        let started = DtlsTransport::new(params.dtls_role, &self.certificate, self.dtls_config.clone(), now).and_then(
            |mut dtls| {
                dtls.set_remote_fingerprints(params.remote_fingerprints.clone())
                    .map(|()| dtls)
            },
        );
        match started {
            Ok(mut dtls) => {
                for datagram in self.early_dtls.drain(..) {
                    dtls.handle_receive(now, &datagram);
                }
                self.dtls = Some(dtls);
            }
            // `new` checked the configuration; this is a remote
            // description with no fingerprint we can verify with, and
            // the connection fails.
            Err(error) => {
                self.early_dtls.clear();
                self.events.push_back(PeerEvent::DtlsFailed(error.clone()));
                self.dtls_error = Some(error);
            }
        }
    }

    fn sctp_to_dtls(&mut self, now: Instant) -> bool {
        let (Some(sctp), Some(dtls)) = (self.sctp.as_mut(), self.dtls.as_mut()) else {
            return false;
        };
        let mut moved = false;
        while let Some(packet) = sctp.poll_transmit(now) {
            moved = true;
            // Only fails once DTLS ended, which ends SCTP with it.
            let _ = dtls.send_application_data(&packet);
        }
        moved
    }

    /// Hands DTLS datagrams to ICE. Until ICE has selected a pair (the
    /// controlling side may hear a ClientHello before its own nomination
    /// completes) they wait, oldest first, rather than wait for a
    /// retransmission a second later.
    pub(super) fn dtls_to_ice(&mut self, now: Instant) -> bool {
        let (Some(dtls), Some(ice)) = (self.dtls.as_mut(), self.ice.as_mut()) else {
            return false;
        };
        while let Some(datagram) = self.unsent.front() {
            if !self.transmits.send(ice, datagram, now) {
                break;
            }
            self.unsent.pop_front();
        }
        let mut moved = false;
        while dtls.poll_transmit(&mut self.scratch).is_some() {
            moved = true;
            if let Some(sped) = ice.sped_mut() {
                sped.capture(&self.scratch);
            }
            let sent = self.unsent.is_empty() && self.transmits.send(ice, &self.scratch, now);
            if sent {
                continue;
            }
            if self.unsent.len() < MAX_UNSENT {
                self.unsent.push_back(self.scratch.clone());
            } else {
                self.stats.unsent += 1;
            }
        }
        ice.sped_flush(now);
        moved
    }

    /// draft-hancke-webrtc-sped: the DTLS packets the peer embedded in
    /// its checks and responses, to DTLS (held like any early DTLS until
    /// it starts).
    fn sped_to_dtls(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(packet) = self
            .ice
            .as_mut()
            .and_then(|ice| ice.sped_mut())
            .and_then(|s| s.poll_dtls())
        {
            moved = true;
            match self.dtls.as_mut() {
                Some(dtls) => dtls.handle_receive(now, &packet),
                None if self.dtls_error.is_none() && self.early_dtls.len() < MAX_EARLY_DTLS => {
                    self.early_dtls.push(packet);
                }
                None => self.stats.dtls_dropped += 1,
            }
        }
        moved
    }

    fn dtls_events(&mut self, now: Instant) -> bool {
        let mut moved = false;
        while let Some(event) = self.dtls.as_mut().and_then(|dtls| dtls.poll_event()) {
            moved = true;
            match event {
                DtlsEvent::Connected(connected) => {
                    let connected = *connected;
                    let is_client = self.dtls.as_ref().is_some_and(|d| d.role() == DtlsRole::Client);
                    let is_dtls13 = self
                        .dtls
                        .as_ref()
                        .is_some_and(|d| d.version() == Some(crate::dtls::DtlsVersion::Dtls13));
                    if let Some(sped) = self.ice.as_mut().and_then(|ice| ice.sped_mut()) {
                        sped.handshake_complete(is_client, is_dtls13);
                    }
                    self.srtp_profile = Some(connected.srtp_profile);
                    self.start_srtp(connected.local_srtp, connected.remote_srtp);
                    self.start_sctp();
                }
                DtlsEvent::ApplicationData(data) => {
                    if let Some(sped) = self.ice.as_mut().and_then(|ice| ice.sped_mut()) {
                        sped.application_data_received();
                    }
                    if let Some(sctp) = self.sctp.as_mut() {
                        sctp.handle_receive(now, &data);
                    }
                }
                DtlsEvent::Closed => self.end_data_channels(),
                DtlsEvent::Failed(error) => {
                    if let Some(sped) = self.ice.as_mut().and_then(|ice| ice.sped_mut()) {
                        sped.turn_off();
                    }
                    self.events.push_back(PeerEvent::DtlsFailed(error.clone()));
                    self.dtls_error = Some(error);
                    self.end_data_channels();
                }
            }
        }
        moved
    }

    /// SCTP over the connected DTLS, if a data channel section was
    /// accepted; the channels made so far open on it.
    pub(super) fn start_sctp(&mut self) {
        let connected = self
            .dtls
            .as_ref()
            .is_some_and(|dtls| dtls.state() == crate::dtls::DtlsState::Connected);
        let Some((role, Some(params))) = self.params.as_ref().map(|p| (p.dtls_role, p.sctp.clone())) else {
            return;
        };
        if self.sctp.is_some() || !connected {
            return;
        }
        let role = match role {
            DtlsRole::Client => natter_sctp::DtlsRole::Client,
            DtlsRole::Server => natter_sctp::DtlsRole::Server,
        };
        let mut config = self.sctp_settings.config(role, params.local_port, params.remote_port);
        config.snap = params.snap;
        // SNAP with an INIT from the peer that cannot set an association
        // up (draft-hancke-tsvwg-snap-01 leaves this open): the four-way
        // handshake instead, which a peer that did set up by SNAP takes
        // as a restart (RFC 9260 §5.2.4).
        let sctp = match SctpTransport::new(config.clone()) {
            Err(natter_sctp::Error::Snap(_)) => SctpTransport::new(natter_sctp::SctpConfig { snap: None, ..config }),
            made => made,
        };
        // `new` checked our settings; only the peer's port can be wrong.
        let Ok(mut sctp) = sctp else {
            return self.end_data_channels();
        };
        sctp.set_remote_max_message_size(params.remote_max_message_size);
        sctp.set_reading(!self.channels.paused);
        for id in self.channels.unbound() {
            let Some(entry) = self.channels.get(id) else { continue };
            match sctp.open_channel(&entry.label, &entry.protocol, entry.options) {
                Ok(stream) => self.channels.bind(id, stream),
                Err(_) => {
                    self.channels.remove(id);
                    self.events.push_back(PeerEvent::DataChannelClose(id));
                }
            }
        }
        self.sctp = Some(sctp);
    }

    fn sctp_events(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.sctp.as_mut().and_then(|sctp| sctp.poll_event()) {
            moved = true;
            match event {
                SctpEvent::Connected => {}
                SctpEvent::ChannelOpen {
                    id: stream,
                    label,
                    protocol,
                    options,
                    ..
                } => {
                    let id = match self.channels.by_stream(stream) {
                        Some(id) => id,
                        None => {
                            let id = self.channels.insert(&label, &protocol, options, Some(stream));
                            self.events.push_back(PeerEvent::DataChannel(id));
                            id
                        }
                    };
                    self.channels.open(id);
                    self.events.push_back(PeerEvent::DataChannelOpen(id));
                }
                SctpEvent::Message { channel, data, is_text } => {
                    let Some(id) = self.channels.by_stream(channel) else {
                        continue;
                    };
                    if let Some(entry) = self.channels.get_mut(id) {
                        entry.stats.messages_received += 1;
                        entry.stats.bytes_received += data.len() as u64;
                    }
                    self.events
                        .push_back(PeerEvent::DataChannelMessage { id, data, is_text });
                }
                SctpEvent::BufferedAmountLow(stream) => {
                    if let Some(id) = self.channels.by_stream(stream) {
                        self.events.push_back(PeerEvent::BufferedAmountLow(id));
                    }
                }
                SctpEvent::ChannelClosed(stream) => {
                    if let Some(id) = self.channels.by_stream(stream) {
                        self.channels.remove(id);
                        self.events.push_back(PeerEvent::DataChannelClose(id));
                    }
                }
                SctpEvent::Closed { .. } => self.end_data_channels(),
            }
        }
        moved
    }

    /// The association is gone (SCTP or DTLS ended): every channel
    /// closes.
    pub(super) fn end_data_channels(&mut self) {
        for id in self.channels.ids() {
            self.channels.remove(id);
            self.events.push_back(PeerEvent::DataChannelClose(id));
        }
    }

    fn update_connection_state(&mut self) {
        let dtls = self.dtls.as_ref().map(|dtls| dtls.state());
        let dtls = dtls.or(self.dtls_error.as_ref().map(|_| crate::dtls::DtlsState::Failed));
        let state = PeerConnectionState::aggregate(self.closed, self.ice_state, dtls);
        if state != self.state {
            self.state = state;
            self.events.push_back(PeerEvent::ConnectionStateChange(state));
        }
    }
}
