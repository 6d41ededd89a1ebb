//! The JSEP calls (RFC 8829; W3C webrtc-pc §4.4.1) and how an exchange
//! configures the transports.
//!
//! - ICE: the agent is made by the first description we apply, with the
//!   credentials it carries: controlling for our offer (RFC 8445 §6.1.1),
//!   and for our answer the role the exchange settled (we control an
//!   ICE-lite offerer). Later roles do not change. New local credentials
//!   in a description restart the agent (RFC 8445 §9); a peer's offer
//!   that restarts ICE gets new credentials of ours for the answer.
//! - An answer (or provisional answer) gives the agent the peer's
//!   credentials and candidates, and gives DTLS its role (RFC 8842 §5)
//!   and the fingerprints to check (RFC 8122 §5), and SCTP its ports and
//!   the peer's `a=max-message-size` (RFC 8841). A later exchange that
//!   names another certificate does not restart DTLS.
//! - Trickled candidates (RFC 8838) go to the agent once the exchange
//!   they belong to is complete; until then they wait, and those of an
//!   ICE generation a restart ended are dropped.

use std::sync::Arc;

use natter_ice::candidate::{Candidate, Protocol};
use natter_ice::{Agent, AgentConfig, Credentials, Role};
use natter_sdp::SessionDescription;
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::Rng;

use super::config::PeerConfig;
use super::error::PeerError;
use super::event::{IceCandidate, PeerEvent};
use super::transport::{SctpParams, TransportParams};
use super::PeerConnection;
use crate::dtls::{Certificate, DtlsRole, Fingerprint};
use crate::jsep::{IceCredentials, Jsep, JsepConfig, Negotiated, SdpType, SignalingState};

/// W3C webrtc-pc §4.8.1 `RTCSessionDescriptionInit`: what goes over the
/// signaling channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Description {
    pub kind: SdpType,
    pub sdp: String,
}

/// The JSEP state of a new connection: the configured ICE credentials
/// or fresh ones, a random session id (RFC 8829 §5.2.1) and CNAME
/// (RFC 7022), our fingerprint, `a=max-message-size`, whether we are
/// ICE-lite, the codecs and header extensions configured (else
/// Chromium's) and the DTLS role we answer with.
pub(super) fn new_jsep(rng: &mut StdRng, certificate: &Certificate, peer: &PeerConfig) -> Result<Jsep, PeerError> {
    let session_id = rng.gen::<u64>() >> 1;
    let cname: String = (&mut *rng).sample_iter(Alphanumeric).take(16).map(char::from).collect();
    let ice = match &peer.ice_credentials {
        Some(credentials) => credentials.clone(),
        None => ice_credentials(Credentials::random(rng)),
    };
    let mut config = JsepConfig {
        max_message_size: peer.sctp.max_message_size as u64,
        ice_lite: peer.ice_lite,
        sped: peer.dtls.sped,
        ..JsepConfig::new(session_id, ice, certificate.fingerprint().to_string(), cname)
    };
    configured(&peer.audio_codecs, &mut config.audio_codecs);
    configured(&peer.video_codecs, &mut config.video_codecs);
    configured(&peer.audio_extensions, &mut config.audio_extensions);
    configured(&peer.video_extensions, &mut config.video_extensions);
    if peer.answer_dtls_role == Some(DtlsRole::Server) {
        config.answer_dtls_role = crate::jsep::DtlsRole::Server;
    }
    if peer.sctp.snap {
        // One INIT for the connection's life: the association is made once.
        let port = natter_sctp::DEFAULT_SCTP_PORT;
        let sctp = peer.sctp.config(natter_sctp::DtlsRole::Client, port, port);
        config.sctp_init = Some(natter_sctp::SctpTransport::snap_init(&sctp)?);
    }
    Ok(Jsep::new(config)?)
}

/// The configured list, if there is one, in place of the (shared) default.
fn configured<T: Clone>(list: &Option<Vec<T>>, default: &mut Arc<[T]>) {
    if let Some(list) = list {
        *default = list.as_slice().into();
    }
}

fn ice_credentials(credentials: Credentials) -> IceCredentials {
    IceCredentials::new(credentials.ufrag, credentials.pwd)
}

/// The tagged section of our transport (RFC 8843 §7): the first of the
/// BUNDLE group. Its mid and index are the `sdpMid` and `sdpMLineIndex`
/// of our candidates, its ufrag and password our ICE credentials.
fn tagged_section(description: &SessionDescription) -> Option<(String, u16, Credentials)> {
    let mid = description.bundle_groups().next()?.mids.into_iter().next()?;
    let index = description.media.iter().position(|m| m.mid() == Some(mid.as_str()))?;
    let view = description.media_by_mid(&mid)?;
    let credentials = Credentials {
        ufrag: view.ice_ufrag()?.to_owned(),
        pwd: view.ice_pwd()?.to_owned(),
    };
    Some((mid, u16::try_from(index).ok()?, credentials))
}

impl PeerConnection {
    /// W3C `localDescription`, as SDP.
    pub fn local_description(&self) -> Option<String> {
        self.jsep.local_description().map(ToString::to_string)
    }

    /// W3C `remoteDescription`, as SDP.
    pub fn remote_description(&self) -> Option<String> {
        self.jsep.remote_description().map(ToString::to_string)
    }

    /// W3C `createOffer` (RFC 8829 §5.2).
    pub fn create_offer(&mut self) -> Result<Description, PeerError> {
        let sdp = self.jsep.create_offer()?;
        Ok(Description {
            kind: SdpType::Offer,
            sdp,
        })
    }

    /// W3C `createAnswer` (RFC 8829 §5.3).
    pub fn create_answer(&mut self) -> Result<Description, PeerError> {
        let sdp = self.jsep.create_answer()?;
        Ok(Description {
            kind: SdpType::Answer,
            sdp,
        })
    }

    /// W3C `setLocalDescription` (RFC 8829 §5.5). Our offer starts ICE
    /// gathering; our answer also configures the transports.
    pub fn set_local_description(&mut self, description: &Description) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let negotiated = self.jsep.set_local_description(description.kind, &description.sdp)?;
        if description.kind == SdpType::Offer {
            let local = self.jsep.local_description().and_then(tagged_section);
            if let Some((_, _, credentials)) = local {
                self.use_local_credentials(Role::Controlling, credentials);
            }
        }
        if let Some(negotiated) = negotiated {
            self.apply(negotiated);
        }
        self.after_exchange();
        Ok(())
    }

    /// W3C `setRemoteDescription` (RFC 8829 §5.6). The peer's answer
    /// configures the transports.
    pub fn set_remote_description(&mut self, description: &Description) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let negotiated = self.jsep.set_remote_description(description.kind, &description.sdp)?;
        if self.jsep.needs_ice_credentials() {
            // RFC 8445 §9: the peer restarted ICE, so do we.
            let credentials = ice_credentials(Credentials::random(&mut self.rng));
            self.jsep.restart_ice(credentials)?;
        }
        if let Some(negotiated) = negotiated {
            self.apply(negotiated);
        }
        self.after_exchange();
        Ok(())
    }

    /// W3C `addIceCandidate`: a trickled candidate of the peer (RFC 8838
    /// §11), or with `None` (or an empty `candidate`, whose
    /// `username_fragment` may name the ICE generation) the end of them.
    /// A candidate must name a media section of the remote description.
    pub fn add_ice_candidate(&mut self, candidate: Option<&IceCandidate>) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let remote = self.jsep.remote_description().ok_or(PeerError::NoRemoteDescription)?;
        let Some(candidate) = candidate.filter(|c| !c.candidate.trim().is_empty()) else {
            let ufrag = candidate.and_then(|c| c.username_fragment.as_deref());
            let direct = self.takes_candidates(ufrag);
            match self.ice.as_mut().filter(|_| direct) {
                Some(ice) => ice.end_of_remote_candidates(self.now),
                None => self.pending_end_of_candidates = true,
            }
            return Ok(());
        };
        let known = match (&candidate.sdp_mid, candidate.sdp_m_line_index) {
            (Some(mid), _) => remote.media_by_mid(mid).is_some(),
            (None, Some(index)) => remote.media_view(usize::from(index)).is_some(),
            (None, None) => false,
        };
        if !known {
            return Err(PeerError::UnknownMediaSection {
                mid: candidate.sdp_mid.clone(),
                index: candidate.sdp_m_line_index,
            });
        }
        let parsed: Candidate = candidate.candidate.parse()?;
        let ufrag = candidate.username_fragment.clone();
        let direct = self.takes_candidates(ufrag.as_deref());
        match self.ice.as_mut().filter(|_| direct) {
            Some(ice) => ice.add_remote_candidate(parsed, self.now)?,
            None => self.pending_candidates.push((parsed, ufrag)),
        }
        Ok(())
    }

    /// W3C `restartIce` (RFC 8829 §5.2.3.1): the next offer carries new
    /// ICE credentials; [`PeerEvent::NegotiationNeeded`] follows.
    pub fn restart_ice(&mut self) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let credentials = ice_credentials(Credentials::random(&mut self.rng));
        self.jsep.restart_ice(credentials)?;
        self.update_negotiation_needed();
        Ok(())
    }

    /// Whether a trickled candidate of ICE generation `ufrag` can go to
    /// the agent now: the exchange it belongs to is complete.
    fn takes_candidates(&self, ufrag: Option<&str>) -> bool {
        let complete = self.remote_ufrag.is_some() && self.jsep.signaling_state() != SignalingState::HaveRemoteOffer;
        complete && ufrag.is_none_or(|u| self.remote_ufrag.as_deref() == Some(u))
    }

    /// Makes the agent with these credentials, or restarts it when they
    /// are new (RFC 8445 §9).
    fn use_local_credentials(&mut self, role: Role, credentials: Credentials) {
        match self.ice.as_mut() {
            Some(ice) if *ice.local_credentials() != credentials => {
                ice.restart(credentials, self.now);
                self.remote_ufrag = None;
            }
            Some(_) => {}
            None => {
                let config = AgentConfig {
                    role,
                    credentials: Some(credentials),
                    sped: self.dtls_config.sped && self.dtls.is_none(),
                    ..self.agent_config.clone()
                };
                let mut agent = Agent::new(config, self.now);
                for address in self.local_addresses.drain(..) {
                    // Duplicates were refused as they came; a new agent is open.
                    let _ = agent.add_host(address, Protocol::Udp);
                }
                if self.local_addresses_done {
                    agent.end_of_local_addresses();
                }
                self.ice = Some(agent);
            }
        }
    }

    /// Configures the transports with what an answer settled.
    fn apply(&mut self, negotiated: Negotiated) {
        self.apply_media(&negotiated);
        if negotiated.we_offered && negotiated.data_channel.is_none() && self.sctp.is_none() && self.offered_data() {
            // The peer rejected our data channel section (RFC 8841 §9):
            // the channels waiting for it cannot open.
            self.end_data_channels();
        }
        let Some(transport) = negotiated.transport else {
            return;
        };
        let role = if transport.ice_controlling {
            Role::Controlling
        } else {
            Role::Controlled
        };
        self.use_local_credentials(
            role,
            Credentials {
                ufrag: transport.local_ice.ufrag,
                pwd: transport.local_ice.pwd,
            },
        );
        let now = self.now;
        let remote_ufrag = transport.remote_ice.ufrag.clone();
        if let Some(sped) = self
            .ice
            .as_mut()
            .and_then(|ice| ice.sped_mut())
            .filter(|_| !transport.sped)
        {
            // draft-hancke-webrtc-sped §6.3: not in the peer's description.
            sped.turn_off();
        }
        if let Some(ice) = self.ice.as_mut() {
            ice.set_remote_credentials(
                Credentials {
                    ufrag: transport.remote_ice.ufrag,
                    pwd: transport.remote_ice.pwd,
                },
                now,
            );
            // RFC 8839 §5.1: a candidate that does not parse is ignored.
            for candidate in transport.remote_candidates.iter().filter_map(|c| c.parse().ok()) {
                let _ = ice.add_remote_candidate(candidate, now);
            }
            for (candidate, ufrag) in std::mem::take(&mut self.pending_candidates) {
                if ufrag.is_none_or(|u| u == remote_ufrag) {
                    let _ = ice.add_remote_candidate(candidate, now);
                }
            }
            if transport.remote_end_of_candidates || std::mem::take(&mut self.pending_end_of_candidates) {
                ice.end_of_remote_candidates(now);
            }
        }
        self.remote_ufrag = Some(remote_ufrag);
        // RFC 8122 §5: hash functions we cannot verify with are skipped.
        let remote_fingerprints = transport
            .remote_fingerprints
            .iter()
            .filter_map(|f| Fingerprint::try_from(f).ok())
            .collect();
        let sctp = negotiated.data_channel.map(|data| SctpParams {
            local_port: data.local_sctp_port,
            remote_port: data.remote_sctp_port,
            remote_max_message_size: Some(usize::try_from(data.remote_max_message_size).unwrap_or(usize::MAX)),
            snap: data
                .sctp_inits
                .map(|(local, remote)| natter_sctp::SnapInits { local, remote }),
        });
        self.params = Some(TransportParams {
            dtls_role: match transport.dtls_role {
                crate::jsep::DtlsRole::Client => DtlsRole::Client,
                crate::jsep::DtlsRole::Server => DtlsRole::Server,
            },
            remote_fingerprints,
            sctp,
        });
        // A later exchange may add the data channel section.
        self.start_sctp();
    }

    /// Our offer of the exchange just completed had a data channel section.
    fn offered_data(&self) -> bool {
        let offer = self.jsep.current_local_description();
        offer.is_some_and(|d| {
            d.media
                .iter()
                .any(|m| m.kind == natter_sdp::MediaKind::Application && m.port != 0)
        })
    }

    /// Reports the signaling state, and after an exchange completes checks
    /// anew whether another is needed (W3C webrtc-pc §4.7.3).
    fn after_exchange(&mut self) {
        let state = self.jsep.signaling_state();
        if state != self.signaling_state {
            self.signaling_state = state;
            self.events.push_back(PeerEvent::SignalingStateChange(state));
        }
        if state == SignalingState::Stable {
            self.negotiation_needed = false;
        }
        self.update_negotiation_needed();
    }

    /// W3C webrtc-pc §4.7.3 "update the negotiation-needed flag":
    /// `negotiationneeded` fires once per need, in `stable`.
    pub(super) fn update_negotiation_needed(&mut self) {
        if !self.negotiation_needed && self.jsep.negotiation_needed() {
            self.negotiation_needed = true;
            self.events.push_back(PeerEvent::NegotiationNeeded);
        }
    }

    /// The `sdpMid` and `sdpMLineIndex` of our candidates.
    pub(super) fn candidate_target(&self) -> (Option<String>, Option<u16>) {
        match self.jsep.local_description().and_then(tagged_section) {
            Some((mid, index, _)) => (Some(mid), Some(index)),
            None => (None, None),
        }
    }

    /// A candidate natter-ice gathered joins our descriptions (W3C
    /// `localDescription` shows it).
    pub(super) fn record_local_candidate(&mut self, candidate: &str) {
        // Fails only once closed, when nothing is gathered any more.
        let _ = self.jsep.add_local_candidate(candidate);
    }

    /// Gathering completed: descriptions say `a=end-of-candidates`.
    pub(super) fn record_gathering_complete(&mut self) {
        // Fails only once closed.
        let _ = self.jsep.end_of_local_candidates();
    }
}
