//! JSEP (RFC 8829): the offer/answer layer of the peer connection.
//!
//! [`Jsep`] holds the transceivers, the data channel section and our ICE
//! and DTLS parameters; it writes offers and answers as Chromium does and
//! reads those of Chromium, Firefox, aiortc and others. It does no ICE,
//! DTLS or media itself: applying an answer (or a provisional one) yields
//! a [`Negotiated`] summary that the transports and media layers act on.
//!
//! Implements:
//! - RFC 8829 §5.2 (offers, initial and subsequent, ICE restart), §5.3
//!   (answers), §5.5-§5.7 (processing descriptions and rollback), §5.8
//!   (the checks a remote description must pass), §5.9-§5.11 (applying
//!   descriptions); the W3C webrtc-pc signaling state machine, with its
//!   `InvalidStateError`s, implicit rollback and perfect negotiation.
//! - BUNDLE (RFC 8843) with the max-bundle policy: every section shares
//!   the first one's transport, and a peer must bundle too.
//! - DTLS roles from `a=setup` (RFC 8842 §5, RFC 5763 §5), RTP header
//!   extensions (RFC 8285), codec matching for H.264 (RFC 6184), Opus
//!   (RFC 7587) and RTX (RFC 4588), RTP sources (RFC 5576), simulcast
//!   received and sent (RFC 8851, RFC 8853), data channels (RFC 8841).
//!
//! Left out: non-bundled transports (balanced and max-compat policies),
//! `a=imageattr` (RFC 8829 §3.6), simulcast alternatives (we take the
//! first RID of each stream) and RID restrictions, trickled remote
//! candidates (natter-ice takes those directly), RTCP on its own port.
//!
//! # Methods
//!
//! Like every natter state machine, [`Jsep`] has four kinds of methods:
//! - getters (`&self`): [`Jsep::signaling_state`], [`Jsep::transceivers`],
//!   [`Jsep::negotiated`], [`Jsep::negotiation_needed`], the descriptions;
//! - application mutators: [`Jsep::add_transceiver`],
//!   [`Jsep::set_track`], [`Jsep::set_send_rids`], [`Jsep::set_direction`],
//!   [`Jsep::set_codec_preferences`], [`Jsep::stop_transceiver`],
//!   [`Jsep::add_data_channel`], [`Jsep::restart_ice`],
//!   [`Jsep::add_local_candidate`], [`Jsep::close`];
//! - outputs: [`Jsep::create_offer`] and [`Jsep::create_answer`] return
//!   SDP text for the signaling channel;
//! - inputs: [`Jsep::set_local_description`] and
//!   [`Jsep::set_remote_description`] take SDP text and return the
//!   [`Negotiated`] summary when an answer completes the exchange.
//!
//! A failed call leaves the state as it was (but for the implicit
//! rollback that a remote offer makes in `have-local-offer`, which W3C
//! keeps even when the offer is then refused).
//!
//! ```
//! use natter::jsep::{IceCredentials, Jsep, JsepConfig, MediaKind, SdpType};
//! use natter_sdp::Direction;
//!
//! let fingerprint = format!("sha-256 {}", ["AB"; 32].join(":"));
//! let config = |id, ufrag: &str| {
//!     JsepConfig::new(id, IceCredentials::new(ufrag, "0123456789abcdefghijkl"), &fingerprint, "cname")
//! };
//! let mut alice = Jsep::new(config(1, "alic"))?;
//! let mut bob = Jsep::new(config(2, "bobb"))?;
//!
//! alice.add_transceiver(MediaKind::Audio, Direction::SendRecv)?;
//! alice.add_data_channel()?;
//! let offer = alice.create_offer()?;
//! alice.set_local_description(SdpType::Offer, &offer)?;
//! bob.set_remote_description(SdpType::Offer, &offer)?;
//! let answer = bob.create_answer()?;
//! let bobs = bob.set_local_description(SdpType::Answer, &answer)?.expect("an answer negotiates");
//! let alices = alice.set_remote_description(SdpType::Answer, &answer)?.expect("an answer negotiates");
//!
//! let transport = alices.transport.as_ref().expect("one bundled transport");
//! assert_eq!(transport.remote_ice.ufrag, "bobb");
//! assert_eq!(alices.media[0].send_codecs, bobs.media[0].recv_codecs);
//! assert_eq!(bobs.data_channel.as_ref().map(|d| d.remote_sctp_port), Some(5000));
//! # Ok::<(), natter::jsep::JsepError>(())
//! ```

mod answer;
mod apply;
pub mod codec;
pub mod config;
pub(crate) mod direction;
pub mod error;
pub mod header_extension;
mod ice;
mod layout;
mod media_section;
pub mod negotiated;
mod offer;
mod parse;
mod payload_type;
mod rollback;
pub mod signaling;
pub mod transceiver;

use natter_sdp::{Codec, Direction, Fingerprint, SessionDescription};

pub use codec::NegotiatedCodec;
pub use config::{DtlsRole, IceCredentials, JsepConfig};
pub use error::{JsepError, Operation};
pub use negotiated::{BundleTransport, Negotiated, NegotiatedDataChannel, NegotiatedMedia};
pub use signaling::{SdpType, SignalingState};
pub use transceiver::{LocalTrack, MediaKind, Transceiver, TransceiverId};

use ice::LocalIce;
use layout::{Content, MLine};
use rollback::Snapshot;

/// A description applied, and the one that will replace it when the
/// exchange in progress completes (W3C webrtc-pc: current and pending).
/// What exists only during an exchange is boxed, here and in [`Jsep`], so
/// that a connection in `stable` does not carry its room (issue 18).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Descriptions {
    current: Option<SessionDescription>,
    pending: Option<Box<SessionDescription>>,
}

impl Descriptions {
    /// The pending description, else the current one.
    fn latest(&self) -> Option<&SessionDescription> {
        self.pending.as_deref().or(self.current.as_ref())
    }

    /// The pending and the current description.
    fn iter_mut(&mut self) -> impl Iterator<Item = &mut SessionDescription> {
        [self.pending.as_deref_mut(), self.current.as_mut()]
            .into_iter()
            .flatten()
    }
}

/// The offer [`Jsep::create_offer`] wrote last, and the section layout
/// that applying it makes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CreatedOffer {
    description: SessionDescription,
    plan: Vec<MLine>,
    mid_counter: u32,
}

/// The JSEP state of one peer connection; see the [module](self) docs.
#[derive(Clone, Debug)]
pub struct Jsep {
    config: JsepConfig,
    fingerprint: Fingerprint,
    state: SignalingState,
    transceivers: Vec<Transceiver>,
    next_transceiver: u32,
    /// The sections of the latest description, in order.
    mlines: Vec<MLine>,
    mid_counter: u32,
    /// The application created a data channel (RFC 8829 §4.1.6).
    data_requested: bool,
    ice: LocalIce,
    session_version: u64,
    local: Descriptions,
    remote: Descriptions,
    created_offer: Option<Box<CreatedOffer>>,
    /// The pending remote offer restarts ICE (RFC 8445 §9).
    remote_ice_restart: bool,
    /// The DTLS role of the last exchange, kept by later answers (RFC 8842 §5.5).
    dtls_role: Option<DtlsRole>,
    negotiated: Option<Negotiated>,
    /// What a rollback restores (RFC 8829 §5.7).
    stable: Option<Box<Snapshot>>,
}

impl Jsep {
    /// A connection in `stable` with no transceivers. Fails if the
    /// fingerprint, ICE credentials or CNAME cannot be written in SDP.
    pub fn new(config: JsepConfig) -> Result<Self, JsepError> {
        let fingerprint: Fingerprint = config.fingerprint.parse().map_err(|e| JsepError::InvalidInput {
            what: "fingerprint",
            reason: format!("{e} (RFC 8122 §5: `sha-256 AB:CD:...`)"),
        })?;
        ice::check_credentials(&config.ice)?;
        natter_sdp::Attributes::new().push_typed(&natter_sdp::Ssrc::new(1, "cname", Some(&config.cname)))?;
        Ok(Jsep {
            fingerprint,
            state: SignalingState::Stable,
            transceivers: Vec::new(),
            next_transceiver: 0,
            mlines: Vec::new(),
            mid_counter: 0,
            data_requested: false,
            ice: LocalIce::new(config.ice.clone()),
            session_version: 0,
            local: Descriptions::default(),
            remote: Descriptions::default(),
            created_offer: None,
            remote_ice_restart: false,
            dtls_role: None,
            negotiated: None,
            stable: None,
            config,
        })
    }

    pub fn config(&self) -> &JsepConfig {
        &self.config
    }

    pub fn signaling_state(&self) -> SignalingState {
        self.state
    }

    /// The live transceivers, in the order they were made. Those whose
    /// sections were rejected or stopped are gone.
    pub fn transceivers(&self) -> &[Transceiver] {
        &self.transceivers
    }

    pub fn transceiver(&self, id: TransceiverId) -> Option<&Transceiver> {
        self.transceivers.iter().find(|t| t.id == id)
    }

    /// The transceiver of the section `mid`.
    pub fn transceiver_by_mid(&self, mid: &str) -> Option<&Transceiver> {
        self.transceivers.iter().find(|t| t.mid.as_deref() == Some(mid))
    }

    /// Our pending description, else the current one (W3C `localDescription`).
    pub fn local_description(&self) -> Option<&SessionDescription> {
        self.local.latest()
    }

    /// The peer's pending description, else the current one.
    pub fn remote_description(&self) -> Option<&SessionDescription> {
        self.remote.latest()
    }

    /// Our description of the last completed exchange.
    pub fn current_local_description(&self) -> Option<&SessionDescription> {
        self.local.current.as_ref()
    }

    /// The peer's description of the last completed exchange.
    pub fn current_remote_description(&self) -> Option<&SessionDescription> {
        self.remote.current.as_ref()
    }

    /// What the last answer or provisional answer negotiated.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The mid of the data channel section, once one is placed.
    pub fn data_channel_mid(&self) -> Option<&str> {
        self.mlines
            .iter()
            .find(|m| m.content == Content::DataChannel)
            .map(|m| m.mid.as_str())
    }

    /// Whether a new offer is needed for what the application changed
    /// (W3C webrtc-pc "check if negotiation is needed"): a transceiver or
    /// data channel without a section, a stopped transceiver still in
    /// one, a direction that differs from the one negotiated, or an ICE
    /// restart. Only ever true in `stable`.
    pub fn negotiation_needed(&self) -> bool {
        if self.state != SignalingState::Stable {
            return false;
        }
        let data_missing = self.data_requested && self.data_channel_mid().is_none();
        data_missing || self.ice.restart.is_some() || self.transceivers.iter().any(|t| self.transceiver_needs_offer(t))
    }

    fn transceiver_needs_offer(&self, transceiver: &Transceiver) -> bool {
        let Some(mid) = &transceiver.mid else {
            return !transceiver.stopping;
        };
        if transceiver.stopping {
            return true;
        }
        let (Some(local), Some(remote)) = (&self.local.current, &self.remote.current) else {
            return false;
        };
        let (Some(ours), Some(theirs)) = (local.media_by_mid(mid), remote.media_by_mid(mid)) else {
            return false;
        };
        // An offer writes the direction asked for; an answer what the offer allowed.
        let we_offered = self.negotiated.as_ref().is_some_and(|n| n.we_offered);
        let wanted = if we_offered {
            transceiver.direction
        } else {
            direction::intersection(transceiver.direction, direction::reversed(theirs.direction()))
        };
        let sends = direction::sends(wanted);
        wanted != ours.direction() || (sends && ours.msids().next() != transceiver.track.as_ref().map(LocalTrack::msid))
    }

    /// Whether [`Jsep::create_answer`] waits for [`Jsep::restart_ice`]:
    /// the peer's offer restarts ICE and we have no new credentials.
    pub fn needs_ice_credentials(&self) -> bool {
        self.remote_ice_restart && self.ice.restart.is_none()
    }

    fn ensure_open(&self, operation: Operation) -> Result<(), JsepError> {
        if self.state == SignalingState::Closed {
            return Err(JsepError::InvalidState {
                operation,
                state: self.state,
            });
        }
        Ok(())
    }

    /// A transceiver the application may change.
    fn live_transceiver(&mut self, id: TransceiverId) -> Result<&mut Transceiver, JsepError> {
        self.ensure_open(Operation::Modify)?;
        let transceiver = self
            .transceivers
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or(JsepError::UnknownTransceiver(id))?;
        if transceiver.stopping {
            return Err(JsepError::TransceiverStopped(id));
        }
        Ok(transceiver)
    }

    /// Adds a transceiver (RFC 8829 §4.1.4); it gets a section with the
    /// next offer.
    pub fn add_transceiver(&mut self, kind: MediaKind, direction: Direction) -> Result<TransceiverId, JsepError> {
        self.ensure_open(Operation::Modify)?;
        let id = TransceiverId(self.next_transceiver);
        self.next_transceiver += 1;
        let mut transceiver = Transceiver::new(id, kind, direction, false);
        transceiver.touched = true;
        self.transceivers.push(transceiver);
        Ok(id)
    }

    /// Sets or clears the track a transceiver sends (W3C `addTrack` and
    /// `replaceTrack`). A transceiver with a track and no section is
    /// matched to a peer's new section of its kind (RFC 8829 §5.10).
    pub fn set_track(&mut self, id: TransceiverId, track: Option<LocalTrack>) -> Result<(), JsepError> {
        if let Some(track) = &track {
            check_track(track)?;
        }
        let transceiver = self.live_transceiver(id)?;
        transceiver.track = track;
        transceiver.touched = true;
        Ok(())
    }

    /// Has a transceiver send simulcast (RFC 8853, W3C `addTransceiver`'s
    /// `sendEncodings`): its offers carry `a=rid:<id> send` for each of
    /// `rids` (lowest layer first) and `a=simulcast:send`, and it answers
    /// a peer's `a=simulcast:recv` with the RIDs both name. Each RID
    /// follows RFC 8851 §10's grammar and appears once. Like W3C, only
    /// before the transceiver has a section; an empty list sends one
    /// stream.
    pub fn set_send_rids(&mut self, id: TransceiverId, rids: Vec<String>) -> Result<(), JsepError> {
        let invalid = |reason: String| JsepError::InvalidInput {
            what: "simulcast rids",
            reason,
        };
        for (i, rid) in rids.iter().enumerate() {
            let parsed: Option<natter_sdp::Rid> = format!("{rid} send").parse().ok();
            if parsed.is_none_or(|p| p.id != *rid) {
                return Err(invalid(format!(
                    "{rid:?} is not an RFC 8851 §10 rid-id (letters, digits, - and _)"
                )));
            }
            if rids[..i].contains(rid) {
                return Err(invalid(format!("{rid:?} appears twice")));
            }
        }
        let transceiver = self.live_transceiver(id)?;
        if transceiver.mid.is_some() {
            return Err(invalid(format!(
                "transceiver {id} already has a section (W3C sets sendEncodings in addTransceiver)"
            )));
        }
        transceiver.send_rids = rids;
        transceiver.touched = true;
        Ok(())
    }

    /// Changes the direction the application wants (RFC 8829 §4.2.3);
    /// it takes effect with the next exchange.
    pub fn set_direction(&mut self, id: TransceiverId, direction: Direction) -> Result<(), JsepError> {
        let transceiver = self.live_transceiver(id)?;
        transceiver.direction = direction;
        transceiver.touched = true;
        Ok(())
    }

    /// Restricts and orders the codecs of a transceiver (RFC 8829
    /// §4.2.6); an empty list restores the configured ones. Each codec
    /// must be one the configuration supports.
    pub fn set_codec_preferences(&mut self, id: TransceiverId, codecs: Vec<Codec>) -> Result<(), JsepError> {
        let kind = self.transceiver(id).ok_or(JsepError::UnknownTransceiver(id))?.kind;
        let supported = self.supported_codecs(kind);
        if let Some(codec) = codecs.iter().find(|c| !codec::is_supported(c, supported)) {
            return Err(JsepError::UnsupportedCodec {
                name: codec.encoding_name.clone(),
                clock_rate: codec.clock_rate,
            });
        }
        let transceiver = self.live_transceiver(id)?;
        transceiver.codec_preferences = codecs;
        transceiver.touched = true;
        Ok(())
    }

    /// Stops a transceiver (RFC 8829 §4.2.1): the next offer rejects its
    /// section with port 0, and the transceiver is gone once the answer
    /// is applied. One that never had a section goes at once.
    pub fn stop_transceiver(&mut self, id: TransceiverId) -> Result<(), JsepError> {
        let transceiver = self.live_transceiver(id)?;
        transceiver.stopping = true;
        transceiver.touched = true;
        transceiver.direction = Direction::Inactive;
        if transceiver.mid.is_none() {
            self.transceivers.retain(|t| t.id != id);
        }
        Ok(())
    }

    /// Asks for data channels (RFC 8829 §4.1.6): the first one makes the
    /// next offer carry an `m=application` section; later ones need none.
    pub fn add_data_channel(&mut self) -> Result<(), JsepError> {
        self.ensure_open(Operation::Modify)?;
        self.data_requested = true;
        Ok(())
    }

    /// Restarts ICE with new credentials (RFC 8829 §5.2.3.1, RFC 8445
    /// §9): the next offer carries them, or the answer to a peer's offer
    /// that restarts ICE.
    pub fn restart_ice(&mut self, credentials: IceCredentials) -> Result<(), JsepError> {
        self.ensure_open(Operation::Modify)?;
        ice::check_credentials(&credentials)?;
        self.ice.restart = Some(credentials);
        Ok(())
    }

    /// Adds a candidate natter-ice gathered (`candidate:...`, with or
    /// without the prefix) to the descriptions we write from now on, and
    /// to the one applied, as W3C `localDescription` shows them.
    pub fn add_local_candidate(&mut self, candidate: &str) -> Result<(), JsepError> {
        self.ensure_open(Operation::Modify)?;
        let value = ice::candidate_value(candidate)?.to_string();
        for description in self.local.iter_mut() {
            if let Some(section) = parse::tagged_section_mut(description) {
                section.push_candidate(&value)?;
            }
        }
        self.ice.candidates.push(value);
        Ok(())
    }

    /// Gathering finished (RFC 8840): descriptions say `a=end-of-candidates`.
    pub fn end_of_local_candidates(&mut self) -> Result<(), JsepError> {
        self.ensure_open(Operation::Modify)?;
        for description in self.local.iter_mut() {
            if let Some(section) = parse::tagged_section_mut(description) {
                section.attributes.set_flag(natter_sdp::Flag::EndOfCandidates, true);
            }
        }
        self.ice.complete = true;
        Ok(())
    }

    /// Closes the connection (W3C `close`): every later call fails.
    pub fn close(&mut self) {
        self.state = SignalingState::Closed;
        self.stable = None;
        self.created_offer = None;
        for transceiver in &mut self.transceivers {
            transceiver.stopping = true;
            transceiver.direction = Direction::Inactive;
            transceiver.current_direction = None;
        }
    }

    /// The codecs a transceiver of `kind` may use by configuration.
    fn supported_codecs(&self, kind: MediaKind) -> &[Codec] {
        match kind {
            MediaKind::Audio => &self.config.audio_codecs,
            MediaKind::Video => &self.config.video_codecs,
        }
    }

    /// The codecs a transceiver offers and accepts.
    fn codecs_for<'a>(&'a self, transceiver: &'a Transceiver) -> &'a [Codec] {
        if transceiver.codec_preferences.is_empty() {
            self.supported_codecs(transceiver.kind)
        } else {
            &transceiver.codec_preferences
        }
    }

    fn supported_extensions(&self, kind: MediaKind) -> &[natter_sdp::Extmap] {
        match kind {
            MediaKind::Audio => &self.config.audio_extensions,
            MediaKind::Video => &self.config.video_extensions,
        }
    }

    /// The session-level lines of our descriptions (RFC 8829 §5.2.1):
    /// the BUNDLE group, `a=extmap-allow-mixed` (RFC 8285 §6) and
    /// `a=msid-semantic: WMS`, as Chromium writes them, and `a=ice-lite`
    /// when we are a lite agent (RFC 8839 §5.3).
    fn session_skeleton(&self, bundle: &[String]) -> Result<SessionDescription, JsepError> {
        let mut description =
            SessionDescription::new(natter_sdp::Origin::new(self.config.session_id, self.session_version));
        if !bundle.is_empty() {
            description
                .attributes
                .push_typed(&natter_sdp::Group::bundle(bundle.iter().cloned()))?;
        }
        description
            .attributes
            .set_flag(natter_sdp::Flag::IceLite, self.config.ice_lite);
        description
            .attributes
            .set_flag(natter_sdp::Flag::ExtmapAllowMixed, true);
        description.attributes.push_typed(&natter_sdp::MsidSemantic {
            semantic: "WMS".into(),
            stream_ids: Vec::new(),
        })?;
        Ok(description)
    }

    /// Sets the `o=` version (RFC 8829 §5.2.2, RFC 3264 §8): the last
    /// one if nothing changed since our latest description (applied, else
    /// created), else one more.
    fn stamp(&mut self, description: &mut SessionDescription) {
        let created = self.created_offer.as_ref().map(|c| &c.description);
        if let Some(latest) = self.local.latest().or(created) {
            description.origin.session_version = latest.origin.session_version;
            if latest == description {
                return;
            }
            self.session_version = self.session_version.max(latest.origin.session_version);
        }
        self.session_version += 1;
        description.origin.session_version = self.session_version;
    }
}

/// Checks that a track's ids can be written in `a=msid` (RFC 8830 §2).
fn check_track(track: &LocalTrack) -> Result<(), JsepError> {
    natter_sdp::Attributes::new()
        .push_typed(&track.msid())
        .map_err(|e| JsepError::InvalidInput {
            what: "track",
            reason: e.to_string(),
        })
}
