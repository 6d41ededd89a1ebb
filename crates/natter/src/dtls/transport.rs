//! [`DtlsTransport`]: one DTLS-SRTP association over one ICE transport,
//! wrapping dimpl. This is the only file that names dimpl.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use dimpl::{Dtls, DtlsCertificate, Output, ProtocolVersion, SrtpProfile};
use natter_srtp::{ProtectionProfile, SrtpContext};

use super::fingerprint::{verify_certificate, Fingerprint};
use super::keying::SrtpKeyingMaterial;
use super::{is_dtls, Certificate, DtlsError};

/// RFC 6347 §4.1 (RFC 5246 §6.2.1): a record carries at most 2^14 bytes
/// of plaintext. Keep messages under the path MTU as well: a DTLS record
/// is never split across datagrams.
pub const MAX_APPLICATION_DATA: usize = 1 << 14;

/// Messages received after the handshake but before the remote
/// fingerprint arrived are held back, up to this many; more are dropped.
const MAX_HELD_MESSAGES: usize = 64;

/// A deadline this far past the last `now` means "no timer": dimpl parks
/// its timers ten years ahead when idle.
const NO_TIMER: Duration = Duration::from_secs(365 * 24 * 3600);

/// RFC 5246 §6.2.1 / RFC 6347 §4.1: the record content type of an alert.
const CONTENT_TYPE_ALERT: u8 = 21;

/// RFC 6347 §4.1: a DTLS 1.2 record header is type (1), version (2),
/// epoch (2), sequence number (6) and length (2).
const RECORD_HEADER_LEN: usize = 13;

/// RFC 5246 §7.2: `AlertLevel.fatal`.
const ALERT_LEVEL_FATAL: u8 = 2;

/// RFC 5246 §7.2.2: `bad_certificate`, "a certificate was corrupt,
/// contained signatures that did not verify correctly, etc."; what we
/// send when the peer's certificate does not match the remote
/// description's fingerprint (RFC 8122 §5 says only that the
/// association must not be established; OpenSSL-based stacks send this
/// one, BoringSSL's certificate callback sends `certificate_unknown`).
pub const ALERT_BAD_CERTIFICATE: u8 = 42;

/// The earliest a timer may fire after the last input. dimpl 0.9.0's DTLS
/// 1.3 client can re-arm its ACK timer at the very instant it fired (when
/// a fragmented flight arrived out of order), which would send ACKs in a
/// busy loop; a floor bounds that to one datagram per interval. Real
/// timers (retransmissions from 1 s on) are not affected.
const TIMER_FLOOR: Duration = Duration::from_millis(10);

/// What dimpl writes a datagram or a record's plaintext into lives on the
/// stack while it fits: a buffer kept for it was 2 KiB of every idle
/// connection's heap (issue 18). A larger MTU, or a record that does not
/// fit, grows [`DtlsTransport`]'s `oversize` buffer, which stays.
const SCRATCH: usize = 2048;

/// The buffer dimpl writes into: the stack's until `oversize` was needed.
fn scratch<'a>(stack: &'a mut [u8; SCRATCH], oversize: &'a mut [u8]) -> &'a mut [u8] {
    if oversize.is_empty() {
        stack
    } else {
        oversize
    }
}

/// Which side of the handshake we are. RFC 5763 §5 / RFC 8842 §5: the
/// endpoint whose `a=setup` is `active` is the DTLS client, `passive` the
/// server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello (`a=setup:active`).
    Client,
    /// Answers it (`a=setup:passive`).
    Server,
}

/// Which DTLS versions to speak.
///
/// The default is DTLS 1.2: dimpl 0.9.0's DTLS 1.3 and version sensing
/// are not yet robust to what networks do (see the module documentation,
/// "DTLS 1.3"). Every WebRTC peer in the field still speaks 1.2,
/// including Chromium when it offers 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VersionPolicy {
    /// DTLS 1.2 only (RFC 6347).
    #[default]
    Dtls12,
    /// DTLS 1.3 only (RFC 9147).
    Dtls13,
    /// DTLS 1.3 when the peer offers or accepts it, else 1.2. As client
    /// dimpl sends one ClientHello valid for both and follows the server's
    /// answer, but fails if the first datagram back is not the ServerHello
    /// (a reordered flight, a stray packet); as server it reads the
    /// ClientHello's `supported_versions`.
    Auto,
}

/// The version a handshake settled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsVersion {
    /// DTLS 1.2 (RFC 6347).
    Dtls12,
    /// DTLS 1.3 (RFC 9147).
    Dtls13,
}

/// Settings of a [`DtlsTransport`].
#[derive(Debug, Clone)]
pub struct DtlsConfig {
    /// Which versions to speak. Default [`VersionPolicy::Dtls12`].
    pub versions: VersionPolicy,
    /// The largest datagram to send; handshake messages are fragmented to
    /// fit. Default 1150 (dimpl's), which leaves room for TURN and IPv6
    /// headers under a 1280-byte path MTU.
    pub mtu: usize,
    /// RFC 6347 §4.2.4.1: the first retransmission timeout, doubled per
    /// retry with ±25% jitter. Default 1 s.
    pub initial_retransmit_timeout: Duration,
    /// Retransmissions of one flight before giving up. Default 4 (about
    /// 31 s of silence with the default timeout).
    pub max_retransmits: usize,
    /// Limit for the whole handshake, counted from the first ClientHello.
    /// Default 40 s.
    pub handshake_timeout: Duration,
    /// Make the server demand a cookie round trip (HelloVerifyRequest /
    /// HelloRetryRequest) before it commits state. Default off: ICE
    /// checks already proved the peer owns its address (RFC 8445 §2), so
    /// the cookie only adds a round trip; browsers do not send one either.
    pub server_cookie: bool,
    /// How the SRTP contexts handed out on connection are configured.
    pub srtp: natter_srtp::Config,
    /// Tests only: seeds dimpl's non-key randomness (retransmission
    /// jitter, hello randoms, explicit nonces) so a run repeats exactly.
    /// Key exchange and signatures stay random.
    pub deterministic_seed: Option<u64>,
    /// draft-hancke-webrtc-sped: offer (and answer an offer of) the
    /// `sped` ICE option, and carry the handshake in ICE's checks and
    /// responses when the peer does too, starting DTLS before ICE has a
    /// pair. Default off.
    pub sped: bool,
}

impl Default for DtlsConfig {
    fn default() -> DtlsConfig {
        DtlsConfig {
            versions: VersionPolicy::Dtls12,
            mtu: 1150,
            initial_retransmit_timeout: Duration::from_secs(1),
            max_retransmits: 4,
            handshake_timeout: Duration::from_secs(40),
            server_cookie: false,
            srtp: natter_srtp::Config::default(),
            deterministic_seed: None,
            sped: false,
        }
    }
}

/// What of a [`DtlsConfig`] dimpl's own configuration is made from.
#[derive(Clone, Copy, PartialEq)]
struct DimplSettings {
    mtu: usize,
    initial_retransmit_timeout: Duration,
    max_retransmits: usize,
    handshake_timeout: Duration,
    server_cookie: bool,
    deterministic_seed: Option<u64>,
}

impl DimplSettings {
    fn of(config: &DtlsConfig) -> DimplSettings {
        DimplSettings {
            mtu: config.mtu,
            initial_retransmit_timeout: config.initial_retransmit_timeout,
            max_retransmits: config.max_retransmits,
            handshake_timeout: config.handshake_timeout,
            server_cookie: config.server_cookie,
            deterministic_seed: config.deterministic_seed,
        }
    }

    /// dimpl's configuration (read-only, shared by design): the default
    /// settings' is made once per process, not once per connection,
    /// which cost 360 bytes of every idle connection (issue 18).
    fn config(self) -> Result<Arc<dimpl::Config>, DtlsError> {
        static DEFAULT: LazyLock<Result<Arc<dimpl::Config>, DtlsError>> =
            LazyLock::new(|| DimplSettings::of(&DtlsConfig::default()).build());
        if self == DimplSettings::of(&DtlsConfig::default()) {
            return DEFAULT.clone();
        }
        self.build()
    }

    fn build(self) -> Result<Arc<dimpl::Config>, DtlsError> {
        let mut builder = dimpl::Config::builder()
            .mtu(self.mtu)
            .flight_start_rto(self.initial_retransmit_timeout)
            .flight_retries(self.max_retransmits)
            .handshake_timeout(self.handshake_timeout)
            .use_server_cookie(self.server_cookie)
            .require_client_certificate(true);
        if let Some(seed) = self.deterministic_seed {
            builder = builder.dangerously_set_rng_seed(seed);
        }
        Ok(Arc::new(builder.build().map_err(|e| DtlsError::Config(e.to_string()))?))
    }
}

/// What [`DtlsEvent::Connected`] carries: the outcome of a handshake whose
/// peer certificate matched the remote description.
#[derive(Debug)]
pub struct DtlsConnected {
    /// The DTLS version negotiated.
    pub version: DtlsVersion,
    /// The SRTP protection profile negotiated through `use_srtp`.
    pub srtp_profile: ProtectionProfile,
    /// The peer certificate's fingerprint that matched the remote
    /// description (with the strongest hash function it offered).
    pub peer_fingerprint: Fingerprint,
    /// The peer's certificate, DER-encoded.
    pub peer_certificate: Vec<u8>,
    /// The exported keys, for anyone who needs them raw. Secret.
    pub keying_material: SrtpKeyingMaterial,
    /// Protects the SRTP/SRTCP we send (keyed with our write key).
    pub local_srtp: SrtpContext,
    /// Unprotects the SRTP/SRTCP we receive (keyed with the peer's).
    pub remote_srtp: SrtpContext,
}

/// What a [`DtlsTransport`] reports, drained with
/// [`DtlsTransport::poll_event`].
#[derive(Debug)]
pub enum DtlsEvent {
    /// The handshake finished and the peer's certificate matched the
    /// remote fingerprint. Comes once, before any `ApplicationData`.
    Connected(Box<DtlsConnected>),
    /// One record of application data (for SCTP, one SCTP packet).
    ApplicationData(Vec<u8>),
    /// The association closed: the peer sent close_notify (answered with
    /// ours) or [`DtlsTransport::close`] was called. Final.
    Closed,
    /// The association failed. Final; no further events follow.
    Failed(DtlsError),
}

/// Where a [`DtlsTransport`] is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsState {
    /// Handshaking, or handshake done but the remote fingerprint not yet
    /// known or checked.
    Handshaking,
    /// [`DtlsEvent::Connected`] was emitted; application data flows.
    Connected,
    /// Closed by either side.
    Closed,
    /// Failed; see the [`DtlsEvent::Failed`] that was emitted.
    Failed,
}

impl DtlsState {
    fn name(self) -> &'static str {
        match self {
            DtlsState::Handshaking => "still handshaking",
            DtlsState::Connected => "connected",
            DtlsState::Closed => "closed",
            DtlsState::Failed => "failed",
        }
    }
}

/// A sans-IO DTLS-SRTP association (RFC 5764, RFC 8842) over dimpl.
///
/// Methods, in quinn-proto's taxonomy:
/// - getters (`&self`): [`state`](Self::state), [`role`](Self::role),
///   [`version`](Self::version), [`peer_fingerprint`](Self::peer_fingerprint),
///   [`dropped_datagrams`](Self::dropped_datagrams);
/// - input: [`handle_receive`](Self::handle_receive) for a datagram from
///   the ICE transport, [`handle_timeout`](Self::handle_timeout) when the
///   deadline of [`poll_timeout`](Self::poll_timeout) has passed;
/// - application mutators: [`set_remote_fingerprints`](Self::set_remote_fingerprints),
///   [`send_application_data`](Self::send_application_data),
///   [`close`](Self::close);
/// - output, drained after every input or mutation in this order:
///   [`poll_transmit`](Self::poll_transmit) until `None`, then
///   [`poll_timeout`](Self::poll_timeout), then
///   [`poll_event`](Self::poll_event) until `None`.
///
/// The peer certificate is checked against the remote description's
/// fingerprints (RFC 8122 §5); until they are set and match, no
/// `Connected` event is emitted and received application data is held.
/// The time is always an argument; nothing here reads a clock or does I/O.
pub struct DtlsTransport {
    dtls: Dtls,
    role: DtlsRole,
    srtp_config: natter_srtp::Config,
    state: DtlsState,
    remote_fingerprints: Vec<Fingerprint>,
    peer_certificate: Option<Vec<u8>>,
    peer_fingerprint: Option<Fingerprint>,
    handshake_complete: bool,
    peer_closed: bool,
    keying_material: Option<SrtpKeyingMaterial>,
    error: Option<DtlsError>,
    sent_alert: Option<u8>,
    /// What went out in epoch 0 so far (RFC 6347 §4.1): where our own
    /// plaintext alert must continue, and whether the peer may already
    /// read us in a later epoch (then it would drop a plaintext alert).
    epoch0: Epoch0,
    transmits: VecDeque<Vec<u8>>,
    spare_buffers: Vec<Vec<u8>>,
    events: VecDeque<DtlsEvent>,
    held: VecDeque<Vec<u8>>,
    timeout: Option<Instant>,
    now: Instant,
    /// Empty unless the MTU or a record needed more than [`SCRATCH`].
    oversize: Vec<u8>,
    dropped: u64,
}

impl core::fmt::Debug for DtlsTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DtlsTransport")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("dtls", &self.dtls)
            .field("transmits", &self.transmits.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl DtlsTransport {
    /// A transport that will handshake as `role` with `certificate`. A
    /// client sends its ClientHello at once (drain
    /// [`poll_transmit`](Self::poll_transmit)).
    pub fn new(
        role: DtlsRole,
        certificate: &Certificate,
        config: DtlsConfig,
        now: Instant,
    ) -> Result<DtlsTransport, DtlsError> {
        let dimpl_config = DimplSettings::of(&config).config()?;
        let cert = DtlsCertificate {
            certificate: certificate.der().to_vec(),
            private_key: certificate.private_key_der().to_vec(),
        };
        let mut dtls = match config.versions {
            VersionPolicy::Dtls12 => Dtls::new_12(dimpl_config, cert, now),
            VersionPolicy::Dtls13 => Dtls::new_13(dimpl_config, cert, now),
            VersionPolicy::Auto => Dtls::new_auto(dimpl_config, cert, now),
        };
        if role == DtlsRole::Client {
            dtls.set_active(true);
        }
        let mut transport = DtlsTransport {
            dtls,
            role,
            srtp_config: config.srtp,
            state: DtlsState::Handshaking,
            remote_fingerprints: Vec::new(),
            peer_certificate: None,
            peer_fingerprint: None,
            handshake_complete: false,
            peer_closed: false,
            keying_material: None,
            error: None,
            sent_alert: None,
            epoch0: Epoch0::default(),
            transmits: VecDeque::new(),
            spare_buffers: Vec::new(),
            events: VecDeque::new(),
            held: VecDeque::new(),
            timeout: None,
            now,
            oversize: if config.mtu > SCRATCH {
                vec![0; config.mtu]
            } else {
                Vec::new()
            },
            dropped: 0,
        };
        transport.handle_timeout(now);
        Ok(transport)
    }

    /// Our side of the handshake.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Where the association is.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// The negotiated version, once known (as client: after the server's
    /// first answer).
    pub fn version(&self) -> Option<DtlsVersion> {
        match self.dtls.protocol_version()? {
            ProtocolVersion::DTLS1_2 => Some(DtlsVersion::Dtls12),
            ProtocolVersion::DTLS1_3 => Some(DtlsVersion::Dtls13),
            _ => None,
        }
    }

    /// The peer certificate's fingerprint, once it was checked and matched.
    pub fn peer_fingerprint(&self) -> Option<&Fingerprint> {
        self.peer_fingerprint.as_ref()
    }

    /// Why the association failed, once it did (the error of
    /// [`DtlsEvent::Failed`]).
    pub fn error(&self) -> Option<&DtlsError> {
        self.error.as_ref()
    }

    /// The description (RFC 5246 §7.2) of the fatal alert we sent when we
    /// failed the association, if we sent one: W3C webrtc-pc's
    /// `RTCError.sentAlert`. The [module documentation](super) ("Errors")
    /// says when one can be sent.
    pub fn sent_alert(&self) -> Option<u8> {
        self.sent_alert
    }

    /// Datagrams dropped without reaching the DTLS state machine: not
    /// DTLS by their first byte (RFC 7983), arriving after the end, or
    /// beyond dimpl's receive queue. dimpl itself drops malformed and
    /// replayed records silently; those are not counted here.
    pub fn dropped_datagrams(&self) -> u64 {
        self.dropped
    }

    /// Sets the fingerprints of the remote description's `a=fingerprint`
    /// lines (RFC 8122 §5). May come before or after the handshake: the
    /// peer certificate is checked as soon as both are known, and a
    /// mismatch fails the association with
    /// [`DtlsError::FingerprintMismatch`]. Ignored once checked.
    pub fn set_remote_fingerprints(&mut self, fingerprints: Vec<Fingerprint>) -> Result<(), DtlsError> {
        if fingerprints.is_empty() {
            return Err(DtlsError::NoRemoteFingerprint);
        }
        if self.peer_fingerprint.is_none() && !self.is_finished() {
            self.remote_fingerprints = fingerprints;
            self.drain();
        }
        Ok(())
    }

    /// Feeds one datagram the ICE transport received. Datagrams that are
    /// not DTLS (RFC 7983: first byte outside 20..=63), malformed or
    /// replayed are dropped; nothing here panics on input.
    pub fn handle_receive(&mut self, now: Instant, datagram: &[u8]) {
        if self.is_finished() || !datagram.first().is_some_and(|b| is_dtls(*b)) {
            self.dropped += 1;
            return;
        }
        self.handle_timeout(now);
        if self.is_finished() {
            return;
        }
        match self.dtls.handle_packet(datagram) {
            Ok(()) => {}
            // dimpl 0.9 refuses the datagram before touching any state
            // (dtls12/engine.rs and dtls13/engine.rs `insert_incoming`), so
            // unlike its other errors this one is not fatal.
            Err(dimpl::Error::ReceiveQueueFull) => self.dropped += 1,
            Err(e) => return self.fail_from_dimpl(e),
        }
        self.drain();
    }

    /// Advances time to `now`: fires retransmissions and the handshake
    /// deadline that are due. Times earlier than one seen before are taken
    /// as that one.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.now = self.now.max(now);
        if let Err(e) = self.dtls.handle_timeout(self.now) {
            return self.fail_from_dimpl(e);
        }
        self.drain();
    }

    /// Encrypts `data` as one application data record (for SCTP: one SCTP
    /// packet, RFC 8261 §5). Only once [`DtlsEvent::Connected`] was
    /// emitted.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsError> {
        if self.state != DtlsState::Connected {
            return Err(DtlsError::NotConnected(self.state.name()));
        }
        if data.len() > MAX_APPLICATION_DATA {
            return Err(DtlsError::MessageTooLarge {
                len: data.len(),
                max: MAX_APPLICATION_DATA,
            });
        }
        if let Err(e) = self.dtls.send_application_data(data) {
            let error = map_error(e);
            self.fail(error.clone());
            return Err(error);
        }
        self.drain();
        Ok(())
    }

    /// Closes the association: sends close_notify if the handshake
    /// finished (RFC 6347 §4.2.7; it is not retransmitted), else just
    /// stops. Emits [`DtlsEvent::Closed`] unless already closed or failed.
    pub fn close(&mut self) {
        if self.is_finished() {
            return;
        }
        // An error here means dimpl already considers itself closed.
        let _ = self.dtls.close();
        self.poll_dimpl();
        self.finish_closed();
    }

    /// The next datagram to send to the peer, swapped into `buf` (whose
    /// old allocation is kept for reuse, so steady state allocates
    /// nothing). Returns its length, or `None` when there is none.
    pub fn poll_transmit(&mut self, buf: &mut Vec<u8>) -> Option<usize> {
        let mut datagram = self.transmits.pop_front()?;
        if self.state == DtlsState::Handshaking {
            self.epoch0.sent(&datagram);
        }
        core::mem::swap(buf, &mut datagram);
        datagram.clear();
        self.spare_buffers.push(datagram);
        Some(buf.len())
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called,
    /// if a timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        self.timeout
            .filter(|t| t.saturating_duration_since(self.now) < NO_TIMER)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    fn is_finished(&self) -> bool {
        matches!(self.state, DtlsState::Closed | DtlsState::Failed)
    }

    /// Polls dimpl to its `Timeout` (its state is only consistent after
    /// that), then acts on what it reported; repeats while acting fed
    /// dimpl more input.
    fn drain(&mut self) {
        loop {
            self.poll_dimpl();
            if !self.progress() {
                break;
            }
        }
    }

    fn poll_dimpl(&mut self) {
        let mut stack = [0; SCRATCH];
        loop {
            match self.dtls.poll_output(scratch(&mut stack, &mut self.oversize)) {
                Output::Packet(packet) if self.state != DtlsState::Failed => {
                    let mut datagram = self.spare_buffers.pop().unwrap_or_default();
                    datagram.extend_from_slice(packet);
                    self.transmits.push_back(datagram);
                }
                Output::BufferTooSmall { needed } => self.oversize.resize(needed, 0),
                Output::Packet(_) => {}
                Output::Timeout(at) => {
                    self.timeout = Some(at.max(self.now + TIMER_FLOOR));
                    break;
                }
                Output::Connected => self.handshake_complete = true,
                Output::PeerCert(der) => self.peer_certificate = Some(der.to_vec()),
                Output::KeyingMaterial(material, profile) => {
                    self.keying_material =
                        srtp_profile(profile).and_then(|p| SrtpKeyingMaterial::new(p, material.to_vec()).ok());
                    if self.keying_material.is_none() {
                        self.fail(DtlsError::UnsupportedSrtpProfile(profile.to_string()));
                    }
                }
                Output::ApplicationData(data) => match self.state {
                    DtlsState::Connected => self.events.push_back(DtlsEvent::ApplicationData(data.to_vec())),
                    DtlsState::Handshaking if self.held.len() < MAX_HELD_MESSAGES => {
                        self.held.push_back(data.to_vec());
                    }
                    _ => {}
                },
                Output::CloseNotify => self.peer_closed = true,
                // dimpl's Output is non-exhaustive; nothing else exists in 0.9.
                _ => {}
            }
        }
    }

    /// Acts on what dimpl reported. Returns whether dimpl got new input
    /// and must be polled again.
    fn progress(&mut self) -> bool {
        if self.is_finished() {
            return false;
        }
        if self.peer_fingerprint.is_none() && !self.remote_fingerprints.is_empty() {
            if let Some(cert) = &self.peer_certificate {
                match verify_certificate(cert, &self.remote_fingerprints) {
                    Ok(fingerprint) => self.peer_fingerprint = Some(fingerprint),
                    Err(e) => {
                        self.fail(e);
                        return false;
                    }
                }
            }
        }
        if self.handshake_complete && self.state == DtlsState::Handshaking {
            if self.keying_material.is_none() {
                self.fail(DtlsError::NoSrtpProfile);
                return false;
            }
            if self.peer_fingerprint.is_some() {
                if let Err(e) = self.emit_connected() {
                    self.fail(e);
                    return false;
                }
            }
        }
        if self.peer_closed {
            // RFC 5246 §7.2.1: answer close_notify with our own. dimpl's
            // DTLS 1.3 already did; closing again is then a no-op.
            let _ = self.dtls.close();
            self.poll_dimpl();
            self.finish_closed();
        }
        false
    }

    fn emit_connected(&mut self) -> Result<(), DtlsError> {
        let (Some(keying_material), Some(peer_fingerprint), Some(peer_certificate)) = (
            self.keying_material.take(),
            self.peer_fingerprint.clone(),
            self.peer_certificate.take(),
        ) else {
            return Err(DtlsError::Protocol(
                "handshake completed without a peer certificate".into(),
            ));
        };
        let (local_srtp, remote_srtp) = keying_material.contexts(self.role, self.srtp_config.clone())?;
        let version = self.version().unwrap_or(DtlsVersion::Dtls12);
        self.state = DtlsState::Connected;
        // The handshake's leftovers: the fingerprints are checked, and the
        // spare buffers were grown by its flights (issue 18).
        self.remote_fingerprints = Vec::new();
        self.spare_buffers = Vec::new();
        self.events.push_back(DtlsEvent::Connected(Box::new(DtlsConnected {
            version,
            srtp_profile: keying_material.profile(),
            peer_fingerprint,
            peer_certificate,
            keying_material,
            local_srtp,
            remote_srtp,
        })));
        self.events.extend(self.held.drain(..).map(DtlsEvent::ApplicationData));
        Ok(())
    }

    fn finish_closed(&mut self) {
        self.state = DtlsState::Closed;
        self.held.clear();
        self.keying_material = None;
        self.events.push_back(DtlsEvent::Closed);
    }

    /// Fails the association. Nothing more goes out (above all not the
    /// flight that would complete a handshake with an unverified peer),
    /// except the fatal alert the error calls for, when the peer can
    /// still read it.
    fn fail(&mut self, error: DtlsError) {
        if self.is_finished() {
            return;
        }
        self.state = DtlsState::Failed;
        while let Some(mut datagram) = self.transmits.pop_front() {
            datagram.clear();
            self.spare_buffers.push(datagram);
        }
        self.held.clear();
        self.keying_material = None;
        if let DtlsError::FingerprintMismatch { .. } = error {
            self.send_plaintext_alert(ALERT_BAD_CERTIFICATE);
        }
        self.error = Some(error.clone());
        self.events.push_back(DtlsEvent::Failed(error));
    }

    /// dimpl gave up. It may have queued a fatal alert of its own as it
    /// did (0.9 does when a DTLS 1.2 client sends no certificate:
    /// `handshake_failure` in epoch 0); that alert, and nothing else it
    /// queued, goes out.
    fn fail_from_dimpl(&mut self, error: dimpl::Error) {
        let mut alert = None;
        let mut stack = [0; SCRATCH];
        loop {
            match self.dtls.poll_output(scratch(&mut stack, &mut self.oversize)) {
                Output::Packet(packet) => {
                    if let Some(description) = plaintext_fatal_alert(packet) {
                        alert = Some((packet.to_vec(), description));
                    }
                }
                Output::BufferTooSmall { needed } => self.oversize.resize(needed, 0),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        self.fail(map_error(error));
        if let Some((datagram, description)) = alert {
            self.transmits.push_back(datagram);
            self.sent_alert = Some(description);
        }
    }

    /// RFC 5246 §7.2 / RFC 6347 §4.1: a fatal alert "as specified by the
    /// current connection state", which is the null cipher of epoch 0
    /// while the peer has not received our ChangeCipherSpec. dimpl 0.9
    /// has no way to send an alert on the application's behalf, so we
    /// write the record ourselves, continuing dimpl's epoch-0 sequence
    /// numbers so that the peer's replay window (RFC 6347 §4.1.2.6)
    /// accepts it. Only in DTLS 1.2: every DTLS 1.3 alert after the
    /// ServerHello is encrypted with keys dimpl keeps to itself.
    fn send_plaintext_alert(&mut self, description: u8) {
        if self.version() != Some(DtlsVersion::Dtls12) || self.epoch0.later_epoch_sent {
            return;
        }
        let mut record = self.spare_buffers.pop().unwrap_or_default();
        record.push(CONTENT_TYPE_ALERT);
        record.extend_from_slice(&DTLS12_RECORD_VERSION);
        record.extend_from_slice(&0u16.to_be_bytes());
        record.extend_from_slice(&self.epoch0.next_sequence.to_be_bytes()[2..]);
        record.extend_from_slice(&2u16.to_be_bytes());
        record.extend_from_slice(&[ALERT_LEVEL_FATAL, description]);
        self.epoch0.next_sequence += 1;
        self.transmits.push_back(record);
        self.sent_alert = Some(description);
    }
}

/// RFC 6347 §4.1: `ProtocolVersion` {254, 253} is DTLS 1.2.
const DTLS12_RECORD_VERSION: [u8; 2] = [254, 253];

/// The epoch-0 records we sent, as far as our own alert needs to know.
#[derive(Debug, Default)]
struct Epoch0 {
    /// One past the highest epoch-0 sequence number sent.
    next_sequence: u64,
    /// A record of a later epoch (after our ChangeCipherSpec) was sent.
    later_epoch_sent: bool,
}

impl Epoch0 {
    /// Notes the records of a datagram that goes out. DTLS 1.3's unified
    /// header (first byte 0b001x_xxxx, RFC 9147 §4) is a later epoch too.
    fn sent(&mut self, datagram: &[u8]) {
        let mut rest = datagram;
        while let Some(header) = rest.get(..RECORD_HEADER_LEN) {
            if header[0] & 0xe0 == 0x20 {
                self.later_epoch_sent = true;
                return;
            }
            let epoch = u16::from_be_bytes([header[3], header[4]]);
            let mut sequence = [0u8; 8];
            sequence[2..].copy_from_slice(&header[5..11]);
            let length = usize::from(u16::from_be_bytes([header[11], header[12]]));
            if epoch == 0 {
                self.next_sequence = self.next_sequence.max(u64::from_be_bytes(sequence) + 1);
            } else {
                self.later_epoch_sent = true;
            }
            rest = rest.get(RECORD_HEADER_LEN + length..).unwrap_or_default();
        }
    }
}

/// The description of a datagram that is one plaintext (epoch 0) DTLS
/// 1.2 fatal alert record, else `None`.
fn plaintext_fatal_alert(datagram: &[u8]) -> Option<u8> {
    let (header, body) = datagram.split_at_checked(RECORD_HEADER_LEN)?;
    let epoch = u16::from_be_bytes([header[3], header[4]]);
    match (header[0], epoch, body) {
        (CONTENT_TYPE_ALERT, 0, [ALERT_LEVEL_FATAL, description]) => Some(*description),
        _ => None,
    }
}

fn srtp_profile(profile: SrtpProfile) -> Option<ProtectionProfile> {
    match profile {
        SrtpProfile::AES128_CM_SHA1_80 => Some(ProtectionProfile::Aes128CmHmacSha1_80),
        SrtpProfile::AEAD_AES_128_GCM => Some(ProtectionProfile::AeadAes128Gcm),
        SrtpProfile::AEAD_AES_256_GCM => Some(ProtectionProfile::AeadAes256Gcm),
        _ => None,
    }
}

fn map_error(error: dimpl::Error) -> DtlsError {
    use dimpl::{CryptoError as C, Error as E, SecurityError as S};
    match error {
        E::Timeout(t) => DtlsError::HandshakeTimeout(t.to_string()),
        E::SecurityError(S::FatalAlert { description }) => DtlsError::PeerAlert { description },
        E::CryptoError(
            e @ (C::UnsupportedSignatureAlgorithm(_) | C::UnsupportedPublicKeyAlgorithm | C::UnsupportedEcCurve),
        ) => DtlsError::UnsupportedPeerCertificate(e.to_string()),
        E::ConfigError(e) => DtlsError::Config(e.to_string()),
        other => DtlsError::Protocol(other.to_string()),
    }
}
