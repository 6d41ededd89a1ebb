//! [`PeerConnection`]: W3C webrtc-pc's `RTCPeerConnection` as a sans-IO
//! state machine, built from [`jsep`](crate::jsep), natter-ice,
//! [`dtls`](crate::dtls) and natter-sctp: data channels, and media on
//! transceivers as frames or, in RTP mode ([`PeerConfig::rtp_mode`]),
//! as RTP packets.
//!
//! # Methods
//!
//! Like every natter core it reads no clock and owns no socket:
//! - getters (`&self`): [`PeerConnection::connection_state`],
//!   [`PeerConnection::ice_connection_state`],
//!   [`PeerConnection::signaling_state`],
//!   [`PeerConnection::local_description`],
//!   [`PeerConnection::remote_description`],
//!   [`PeerConnection::certificate`], [`PeerConnection::dtls_error`],
//!   [`PeerConnection::stats`];
//! - application commands: the JSEP calls
//!   ([`PeerConnection::create_offer`], [`PeerConnection::create_answer`],
//!   [`PeerConnection::set_local_description`],
//!   [`PeerConnection::set_remote_description`],
//!   [`PeerConnection::add_ice_candidate`],
//!   [`PeerConnection::restart_ice`]), data channels
//!   ([`PeerConnection::create_data_channel`], and
//!   [`PeerConnection::data_channel`] for a [`DataChannel`] handle that
//!   sends and closes), media ([`PeerConnection::add_track`],
//!   [`PeerConnection::send_frame`], in RTP mode
//!   [`PeerConnection::write_rtp`], [`PeerConnection::request_keyframe`]),
//!   what the I/O layer knows
//!   ([`PeerConnection::add_local_address`],
//!   [`PeerConnection::end_of_local_addresses`],
//!   [`PeerConnection::resolve_mdns`]), and [`PeerConnection::close`].
//!   Commands take no time: they act at the time of the latest input;
//! - input: [`PeerConnection::handle_receive`] for every datagram (or
//!   TURN frame) that arrived on a local address,
//!   [`PeerConnection::handle_connection_closed`] when a TCP or TLS
//!   connection to a TURN server ends, and
//!   [`PeerConnection::handle_timeout`] once the deadline of
//!   [`PeerConnection::poll_timeout`] passed;
//! - output, drained after every input and command in this order:
//!   [`PeerConnection::poll_transmit`] until `None` (which also moves
//!   what commands queued through SCTP and DTLS), then
//!   [`PeerConnection::poll_timeout`] (or [`PeerConnection::poll_timer`],
//!   which also names the layer whose deadline it is), then
//!   [`PeerConnection::poll_event`] until `None`; in RTP mode,
//!   [`PeerConnection::poll_rtp`] after every
//!   [`PeerConnection::handle_receive`], before the next input.
//!
//! # How the layers are wired
//!
//! One ICE agent and one DTLS transport for the whole connection
//! (max-bundle, RFC 8843). Every received datagram goes to the ICE agent
//! first (STUN checks, TURN); the application data it passes on is
//! split by its first byte (RFC 7983 §7): DTLS to the [`DtlsTransport`],
//! RTP and RTCP (counted and dropped until media exists). DTLS
//! application data is SCTP (RFC 8261), whose messages are the data
//! channels' (RFC 8831, RFC 8832). Outgoing, SCTP packets become DTLS
//! records, which the ICE agent sends on its selected pair. See
//! `transport.rs` for when each layer starts, and `signaling.rs` for how
//! an exchange configures them.
//!
//! # What the I/O layer does
//!
//! - Opens a UDP socket per local address and calls
//!   [`PeerConnection::add_local_address`] with each (then
//!   [`PeerConnection::end_of_local_addresses`]); passes every datagram
//!   that arrives on one to [`PeerConnection::handle_receive`] with the
//!   socket's address as `destination`.
//! - Drains [`PeerConnection::poll_transmit`] into one reused buffer and
//!   sends what each [`Transmit`] wrote from the socket of its `source`
//!   (for TCP and TLS to a TURN server, on the connection natter-ice's
//!   agent documentation describes); a [`Transmit::segment_size`] asks
//!   for one UDP GSO send, or a send per segment without GSO.
//! - Calls [`PeerConnection::handle_timeout`] at
//!   [`PeerConnection::poll_timeout`].
//! - Resolves `.local` names of [`PeerEvent::ResolveMdns`] with mDNS
//!   (RFC 8828) and answers with [`PeerConnection::resolve_mdns`]; and
//!   resolves host names in ICE server URLs before making the connection.
//!
//! ```
//! use std::time::Instant;
//! use natter::peer::{DataChannelInit, PeerConfig, PeerConnection};
//!
//! let now = Instant::now();
//! let mut pc = PeerConnection::new(PeerConfig::default(), now)?;
//! let chat = pc.create_data_channel("chat", DataChannelInit::default())?;
//! let offer = pc.create_offer()?;
//! assert!(offer.sdp.contains("m=application 9 UDP/DTLS/SCTP webrtc-datachannel"));
//! pc.set_local_description(&offer)?;
//! pc.add_local_address("192.0.2.1:50000".parse().unwrap())?;
//! // Send `offer.sdp` and the candidates of PeerEvent::IceCandidate to the peer.
//! # let _ = chat;
//! # Ok::<(), natter::peer::PeerError>(())
//! ```

mod channel;
mod config;
mod error;
mod event;
mod ice_server;
mod media;
mod signaling;
mod state;
mod stats;
mod transmit;
mod transport;

pub use crate::jsep::{MediaKind, Transceiver, TransceiverId};
pub use crate::media::{Format, OutgoingRtp, SendCounters};
pub use channel::{DataChannel, DataChannelId, DataChannelInit, DataChannelState, DataChannelStats};
pub use config::{BundlePolicy, PeerConfig, SctpSettings};
pub use error::PeerError;
pub use event::{IceCandidate, MediaFrame, PeerEvent};
pub use ice_server::{IceServer, IceServerHost, IceServerScheme, IceServerUrl, TurnTransport};
pub use media::{MediaCounters, ReceivedRtp};
pub use natter_sdp::Direction;
pub use signaling::Description;
pub use state::PeerConnectionState;
pub use stats::{CandidatePairStats, DtlsStats, PeerStats, ReceiverStats, SenderStats, SpedReport, TransportStats};
pub use transmit::Transmit;
pub use transport::Timer;
// The types of the layers below that this API speaks in.
pub use crate::jsep::{SdpType, SignalingState};
pub use natter_ice::{ConnectionState as IceConnectionState, Transport};
pub use natter_sctp::{ChannelOptions, Message};

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use natter_ice::candidate::{Candidate, Protocol};
use natter_ice::{Agent, AgentConfig, ConnectionState};
use natter_sctp::SctpTransport;
use natter_srtp::ProtectionProfile;
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::dtls::{Certificate, DtlsConfig, DtlsError, DtlsTransport};
use crate::jsep::Jsep;
use ice_server::AgentServers;
use transport::TransportParams;

/// A WebRTC peer connection. See the [module documentation](self).
pub struct PeerConnection {
    rng: StdRng,
    /// The agent's configuration but for its role and credentials, which
    /// the first description decides.
    agent_config: AgentConfig,
    dtls_config: DtlsConfig,
    sctp_settings: SctpSettings,
    certificate: Certificate,
    jsep: Jsep,
    /// Made by the first description we apply (see `signaling.rs`).
    ice: Option<Agent>,
    /// Local addresses, kept until the agent exists.
    local_addresses: Vec<SocketAddr>,
    local_addresses_done: bool,
    /// Trickled candidates that wait for their exchange to complete.
    pending_candidates: Vec<(Candidate, Option<String>)>,
    pending_end_of_candidates: bool,
    /// The peer's ufrag of the latest exchange.
    remote_ufrag: Option<String>,
    params: Option<TransportParams>,
    dtls: Option<DtlsTransport>,
    /// Why DTLS failed, if it did.
    dtls_error: Option<DtlsError>,
    srtp_profile: Option<ProtectionProfile>,
    sctp: Option<SctpTransport>,
    channels: channel::Channels,
    media: media::MediaState,
    /// Datagrams for [`PeerConnection::poll_transmit`].
    transmits: transmit::TransmitQueue,
    events: VecDeque<PeerEvent>,
    /// DTLS writes each datagram here before ICE takes it.
    scratch: Vec<u8>,
    /// DTLS datagrams waiting for ICE to select a pair.
    unsent: VecDeque<Vec<u8>>,
    /// DTLS datagrams that came before DTLS started, for it to take
    /// when it does (see `transport.rs`).
    early_dtls: Vec<Vec<u8>>,
    /// The latest time an input carried.
    now: Instant,
    ice_state: ConnectionState,
    state: PeerConnectionState,
    signaling_state: SignalingState,
    /// `negotiationneeded` fired and no exchange completed since.
    negotiation_needed: bool,
    stats: TransportStats,
    closed: bool,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("state", &self.state)
            .field("ice_state", &self.ice_state)
            .field("signaling_state", &self.signaling_state)
            .field("dtls", &self.dtls)
            .field("sctp", &self.sctp)
            .finish_non_exhaustive()
    }
}

impl PeerConnection {
    /// A connection in `new` and `stable`, with the certificate given or a
    /// new one. Fails on configuration W3C's constructor refuses, or
    /// natter cannot honour.
    pub fn new(mut config: PeerConfig, now: Instant) -> Result<Self, PeerError> {
        if config.bundle_policy != BundlePolicy::MaxBundle {
            return Err(PeerError::UnsupportedBundlePolicy(config.bundle_policy));
        }
        let servers = AgentServers::from_config(&config.ice_servers)?;
        // Checked now rather than when DTLS connects: SCTP validates its
        // configuration as it is made, and a server makes no packets.
        let port = natter_sctp::DEFAULT_SCTP_PORT;
        SctpTransport::new(config.sctp.config(natter_sctp::DtlsRole::Server, port, port))?;
        let certificate = match config.certificate.take() {
            Some(certificate) => certificate,
            None => Certificate::generate()?,
        };
        // Likewise for DTLS: a server sends nothing until it hears a ClientHello.
        DtlsTransport::new(crate::dtls::DtlsRole::Server, &certificate, config.dtls.clone(), now)?;
        let mut rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let jsep = signaling::new_jsep(&mut rng, &certificate, &config)?;
        let ntp = crate::media::NtpClock::new(now, config.wall_clock);
        let cname = jsep.config().cname.clone();
        let cc = crate::congestion::CongestionController::new(config.congestion, now)?;
        let pace = config.congestion.pace;
        let media = media::MediaState::new(ntp, rand::Rng::gen(&mut rng), cname, config.rtp_mode, cc, pace);
        let defaults = AgentConfig::default();
        let agent_config = AgentConfig {
            stun_servers: servers.stun,
            turn_servers: servers.turn,
            transport_policy: config.ice_transport_policy,
            lite: config.ice_lite,
            seed: config.seed,
            consent_timeout: config.ice_consent_timeout.unwrap_or(defaults.consent_timeout),
            ..defaults
        };
        Ok(PeerConnection {
            rng,
            agent_config,
            dtls_config: config.dtls,
            sctp_settings: config.sctp,
            certificate,
            jsep,
            ice: None,
            local_addresses: Vec::new(),
            local_addresses_done: false,
            pending_candidates: Vec::new(),
            pending_end_of_candidates: false,
            remote_ufrag: None,
            params: None,
            dtls: None,
            dtls_error: None,
            srtp_profile: None,
            sctp: None,
            channels: channel::Channels::default(),
            media,
            transmits: transmit::TransmitQueue::default(),
            events: VecDeque::new(),
            scratch: Vec::new(),
            unsent: VecDeque::new(),
            early_dtls: Vec::new(),
            now,
            ice_state: ConnectionState::New,
            state: PeerConnectionState::New,
            signaling_state: SignalingState::Stable,
            negotiation_needed: false,
            stats: TransportStats::default(),
            closed: false,
        })
    }

    // ----- getters -----

    /// W3C `connectionState`.
    pub fn connection_state(&self) -> PeerConnectionState {
        self.state
    }

    /// W3C `iceConnectionState`.
    pub fn ice_connection_state(&self) -> ConnectionState {
        self.ice_state
    }

    /// W3C `signalingState`.
    pub fn signaling_state(&self) -> SignalingState {
        self.signaling_state
    }

    /// Why DTLS failed, if it did: a fingerprint that did not match the
    /// remote description, a handshake that timed out, an alert...
    pub fn dtls_error(&self) -> Option<&DtlsError> {
        self.dtls_error.as_ref()
    }

    /// The ufrags of the ICE checks this connection answers: those of
    /// our latest description and, during a restart, the one before
    /// (RFC 8445 §9). Empty until a description is applied.
    pub fn local_ufrags(&self) -> impl Iterator<Item = &str> + '_ {
        self.ice.iter().flat_map(Agent::local_ufrags)
    }

    /// Our certificate, whose fingerprint our descriptions carry.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// A `getStats()`-like snapshot.
    pub fn stats(&self) -> PeerStats {
        let selected_pair = self.ice.as_ref().and_then(|ice| {
            let (local, remote) = ice.selected_pair()?;
            Some(CandidatePairStats {
                local: local.clone(),
                remote: remote.clone(),
                round_trip_time: ice.stats().selected_rtt,
                available_outgoing_bitrate: self.target_bitrate(),
            })
        });
        let dtls = self.dtls.as_ref().map(|dtls| DtlsStats {
            state: dtls.state(),
            role: dtls.role(),
            version: dtls.version(),
            srtp_profile: self.srtp_profile,
            local_fingerprint: self.certificate.fingerprint().clone(),
            peer_fingerprint: dtls.peer_fingerprint().cloned(),
            error: self.dtls_error.clone(),
            sent_alert: dtls.sent_alert(),
        });
        PeerStats {
            selected_pair,
            ice: self.ice.as_ref().map(Agent::stats).unwrap_or_default(),
            transport: self.stats,
            dtls,
            data_channels_opened: self.channels.opened,
            data_channels_closed: self.channels.closed,
            data: self.channels.total_stats(),
            channels: self.channels.iter().map(|(id, e)| (id, e.state, e.stats)).collect(),
            sctp: self.sctp.as_ref().map(SctpTransport::stats),
            sctp_interleaving: self.sctp.as_ref().is_some_and(SctpTransport::interleaving),
            sped: self.ice.as_ref().and_then(Agent::sped).map(|sped| SpedReport {
                state: sped.state(),
                counters: sped.stats().clone(),
            }),
            senders: self.media.sender_stats(),
            receivers: self.media.receiver_stats(),
            media: self.media.counters,
        }
    }

    // ----- what the I/O layer knows -----

    /// A local address with a socket the I/O layer reads: a host
    /// candidate, and through STUN and TURN servers more (RFC 8445
    /// §5.1.1). Candidates are gathered from the first local description
    /// on (W3C webrtc-pc §4.4.1.5).
    pub fn add_local_address(&mut self, address: SocketAddr) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        match self.ice.as_mut() {
            Some(ice) => ice.add_host(address, Protocol::Udp)?,
            None if self.local_addresses.contains(&address) => {
                return Err(natter_ice::AgentError::DuplicateHost(address).into())
            }
            None => self.local_addresses.push(address),
        }
        Ok(())
    }

    /// Every local address was added; gathering completes once the STUN
    /// and TURN transactions end.
    pub fn end_of_local_addresses(&mut self) {
        self.local_addresses_done = true;
        if let Some(ice) = self.ice.as_mut() {
            ice.end_of_local_addresses();
        }
    }

    /// The answer to [`PeerEvent::ResolveMdns`]: the address of the name,
    /// or `None` if it did not resolve (its candidates are dropped,
    /// RFC 8828 §5.2).
    pub fn resolve_mdns(&mut self, name: &str, ip: Option<IpAddr>) {
        if let Some(ice) = self.ice.as_mut() {
            ice.resolve_mdns(name, ip, self.now);
        }
    }

    // ----- data channels -----

    /// W3C `createDataChannel`. The first channel asks for an
    /// `m=application` section (RFC 8829 §4.1.6), so
    /// [`PeerEvent::NegotiationNeeded`] follows; the channel opens once
    /// the SCTP association is up ([`PeerEvent::DataChannelOpen`]).
    pub fn create_data_channel(&mut self, label: &str, init: DataChannelInit) -> Result<DataChannelId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let options = init.options(label)?;
        let stream = match self.sctp.as_mut() {
            Some(sctp) => Some(sctp.open_channel(label, &init.protocol, options)?),
            None => None,
        };
        self.jsep.add_data_channel()?;
        let id = self.channels.insert(label, &init.protocol, options, stream);
        self.update_negotiation_needed();
        Ok(id)
    }

    /// Stops (`true`) or resumes delivering data channel messages
    /// ([`PeerEvent::DataChannelMessage`]), on every channel. While
    /// paused, what arrives waits in the SCTP association's receive
    /// buffer, which the window it advertises counts (RFC 9260 §6.2), so
    /// the peer stops sending once that is full: backpressure on a peer
    /// that sends faster than the application can pass its messages on.
    /// Messages already given as events stay queued. Resuming delivers
    /// what waited at once, and queues the SACK that tells the peer its
    /// window is open again.
    pub fn pause_data_channels(&mut self, paused: bool) {
        self.channels.paused = paused;
        if let Some(sctp) = self.sctp.as_mut() {
            sctp.set_reading(!paused);
        }
        if !paused {
            self.drive(self.now);
        }
    }

    /// The channel `id`, while it lives.
    pub fn data_channel(&mut self, id: DataChannelId) -> Option<DataChannel<'_>> {
        self.channels.get(id)?;
        Some(DataChannel { pc: self, id })
    }

    fn close_data_channel(&mut self, id: DataChannelId) {
        let Some(entry) = self.channels.get_mut(id) else { return };
        let reset = match (entry.stream, self.sctp.as_mut()) {
            (Some(stream), Some(sctp)) => sctp.close_channel(stream).is_ok(),
            _ => false,
        };
        if reset {
            // natter-sctp reports ChannelClosed once both streams are reset.
            entry.state = DataChannelState::Closing;
        } else {
            self.channels.remove(id);
            self.events.push_back(PeerEvent::DataChannelClose(id));
        }
    }

    /// W3C `close`: sends DTLS close_notify, releases TURN allocations and
    /// stops everything. As W3C says, no event follows: every state is
    /// `closed` at once. [`PeerConnection::poll_transmit`] still yields
    /// the last datagrams.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.jsep.close();
        self.signaling_state = SignalingState::Closed;
        self.sctp = None;
        for id in self.channels.ids() {
            if let Some(entry) = self.channels.get_mut(id) {
                entry.state = DataChannelState::Closed;
            }
        }
        if let Some(dtls) = self.dtls.as_mut() {
            dtls.close();
        }
        // close_notify goes out before ICE stops sending.
        self.dtls_to_ice(self.now);
        if let Some(ice) = self.ice.as_mut() {
            ice.close();
        }
        self.ice_state = ConnectionState::Closed;
        self.state = PeerConnectionState::Closed;
    }

    // ----- input -----

    /// A datagram that arrived from `source` on the local address
    /// `destination`, or one frame of a TCP or TLS connection to a TURN
    /// server. Nothing in it can make this fail; what is not understood
    /// is dropped and counted ([`PeerStats::transport`]).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        if self.closed {
            return;
        }
        self.now = self.now.max(now);
        if self.receive(now, transport, source, destination, data) {
            self.drive(now);
        }
    }

    /// The TCP or TLS connection from `local` to the TURN server `remote`
    /// failed to open or closed (see natter-ice's agent).
    pub fn handle_connection_closed(
        &mut self,
        now: Instant,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        if self.closed {
            return;
        }
        self.now = self.now.max(now);
        if let Some(ice) = self.ice.as_mut() {
            ice.handle_connection_closed(now, transport, local, remote);
        }
        self.drive(now);
    }

    /// Fires whatever is due at `now` in ICE, DTLS and SCTP.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        self.now = self.now.max(now);
        self.fire_timers(now);
        self.drive(now);
    }

    // ----- output -----

    /// Writes the next datagram to send into `buf` (cleared first) and
    /// says where it goes; with `max_datagrams` above 1, several of one
    /// size to one destination may follow it in `buf`, to be sent as one
    /// UDP GSO batch ([`Transmit::segment_size`]). `buf` grows as needed,
    /// so one reused buffer makes this allocate nothing. Moves what
    /// commands queued (messages, channel opens and closes) through SCTP
    /// and DTLS first.
    pub fn poll_transmit(&mut self, now: Instant, max_datagrams: usize, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.transmits.is_empty() && !self.closed {
            self.now = self.now.max(now);
            self.drive(now);
            self.release_paced(now);
        }
        // ICE's own datagrams first: they answer the input that made the
        // data behind them (a nomination's response before the ClientHello
        // its selected pair let out).
        let transmit = match self.ice.as_mut().and_then(|ice| ice.poll_transmit(now)) {
            Some(own) => {
                buf.clear();
                buf.extend_from_slice(&own.data);
                Transmit {
                    transport: own.transport,
                    source: own.source,
                    destination: own.destination,
                    size: own.data.len(),
                    segment_size: None,
                }
            }
            None => self.transmits.pop_into(max_datagrams.max(1), buf)?,
        };
        self.stats.packets_sent += transmit.datagrams() as u64;
        self.stats.bytes_sent += transmit.size as u64;
        Some(transmit)
    }

    /// The earliest moment [`PeerConnection::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_timer().map(|(deadline, _)| deadline)
    }

    /// [`PeerConnection::poll_timeout`] with the layer that set it: why
    /// the connection will wake up.
    pub fn poll_timer(&self) -> Option<(Instant, Timer)> {
        if self.closed {
            return None;
        }
        self.next_timer()
    }

    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        self.events.pop_front()
    }
}
