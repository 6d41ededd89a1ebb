//! Creating answers (RFC 8829 §5.3): the offer's sections in its order,
//! each accepted with what both sides support or rejected with port 0.

use natter_sdp::{Codec, MediaView, Rid, RidDirection, Setup, Simulcast, SimulcastRid};

use super::codec::{answer_codecs, is_rtx};
use super::direction::{intersection, reversed};
use super::error::{JsepError, Operation};
use natter_rtp::extension::URI_RTP_STREAM_ID;

use super::header_extension::{answer_extensions, id_of};
use super::layout::{is_rejected, usable, Content, Usable};
use super::media_section::{data_section, rejected_section, rtp_section, RtpSection, Transport};
use super::parse::bundle_mids;
use super::signaling::SignalingState;
use super::transceiver::Transceiver;
use super::Jsep;

/// How we answer one offered section.
enum Answer {
    Rejected,
    Media { codecs: Vec<Codec> },
    Data,
}

impl Jsep {
    /// Writes the answer to the peer's offer (RFC 8829 §5.3.1, §5.3.2):
    /// the same mids in the same order; codecs and header extensions we
    /// share with the offer, in its order and with its numbers; each
    /// direction the one our transceiver wants within what the offer
    /// allows; `a=setup:active` (or passive, by configuration; the role
    /// of the previous exchange once there is one) to an `actpass` offer;
    /// a BUNDLE group of the accepted sections; port 0 for what we
    /// cannot or will not take.
    ///
    /// Fails in any state but `have-remote-offer` and
    /// `have-local-pranswer`, and when the offer restarts ICE and
    /// [`Jsep::restart_ice`] has not given new credentials.
    pub fn create_answer(&mut self) -> Result<String, JsepError> {
        let invalid = JsepError::InvalidState {
            operation: Operation::CreateAnswer,
            state: self.state,
        };
        if !matches!(
            self.state,
            SignalingState::HaveRemoteOffer | SignalingState::HaveLocalPranswer
        ) {
            return Err(invalid);
        }
        let Some(offer) = self.remote.pending.as_deref() else {
            return Err(invalid);
        };
        if self.needs_ice_credentials() {
            return Err(JsepError::IceCredentialsNeeded);
        }
        let credentials = match (&self.ice.restart, self.remote_ice_restart) {
            (Some(new), true) => new.clone(),
            _ => self.ice.credentials.clone(),
        };

        let answers: Vec<Answer> = offer
            .media_views()
            .zip(&self.mlines)
            .map(|(view, line)| self.answer_section(&view, &line.content))
            .collect();
        let accepted = |mid: &str| {
            offer
                .media_views()
                .zip(&answers)
                .any(|(view, answer)| view.mid() == Some(mid) && !matches!(answer, Answer::Rejected))
        };
        // RFC 8843 §7.3: the offer's group order, without rejected sections.
        let bundle: Vec<String> = bundle_mids(offer).into_iter().filter(|m| accepted(m)).collect();
        let bundle = if bundle.is_empty() {
            // A single unbundled section (checked when the offer was applied).
            offer
                .media_views()
                .filter_map(|v| v.mid().filter(|m| accepted(m)).map(str::to_string))
                .take(1)
                .collect()
        } else {
            bundle
        };

        let mut description = self.session_skeleton(&bundle)?;
        for ((view, line), answer) in offer.media_views().zip(&self.mlines).zip(answers) {
            let setup = self.answer_setup(&view);
            let transport = Transport {
                ice: &credentials,
                fingerprint: &self.fingerprint,
                setup,
                candidates: (bundle.first() == Some(&line.mid)).then_some((&self.ice, self.remote_ice_restart)),
                sped: self.config.sped && offers_sped(&view.ice_options()),
            };
            let section = match (answer, &line.content) {
                (Answer::Media { codecs }, Content::Transceiver(id)) => {
                    let Some(transceiver) = self.transceiver(*id) else {
                        continue;
                    };
                    let kind = transceiver.kind;
                    let direction = intersection(transceiver.direction, reversed(view.direction()));
                    let extensions = answer_extensions(&view.extmaps(), self.supported_extensions(kind));
                    let simulcast = id_of(&extensions, URI_RTP_STREAM_ID)
                        .and_then(|_| view.simulcast())
                        .and_then(|offered| answer_simulcast(&view, offered, direction, &transceiver.send_rids));
                    rtp_section(
                        &RtpSection {
                            kind,
                            protocol: view.protocol.clone(),
                            mid: &line.mid,
                            direction,
                            extensions: &extensions,
                            codecs: &codecs,
                            track: transceiver.track.as_ref(),
                            cname: &self.config.cname,
                            rtcp_rsize: view.flag(natter_sdp::Flag::RtcpRsize),
                            simulcast,
                        },
                        &transport,
                    )?
                }
                (Answer::Data, _) => {
                    let legacy = view.protocol == natter_sdp::Protocol::DtlsSctp;
                    // SNAP only when the offerer offered an INIT we can
                    // set up from; otherwise both sides fall back.
                    let snap = !legacy
                        && view.sctp_init().is_some_and(|init| {
                            natter_sctp::sctp::association::parse_snap_init(&init, natter_sctp::SnapSide::Peer).is_ok()
                        });
                    data_section(
                        &line.mid,
                        self.config.sctp_port,
                        self.config.max_message_size,
                        self.config.sctp_init.as_deref().filter(|_| snap),
                        legacy,
                        &transport,
                    )?
                }
                _ => rejected_section(
                    view.kind.clone(),
                    view.protocol.clone(),
                    view.formats.clone(),
                    &line.mid,
                    &transport,
                )?,
            };
            description.media.push(section);
        }
        self.stamp(&mut description);
        Ok(description.to_string())
    }

    /// Whether and how we take an offered section.
    fn answer_section(&self, view: &MediaView<'_>, content: &Content) -> Answer {
        if is_rejected(view) {
            return Answer::Rejected;
        }
        match (content, usable(view)) {
            (Content::Transceiver(id), Some(Usable::Media(_))) => {
                let Some(transceiver) = self.transceiver(*id).filter(|t| !t.stopping) else {
                    return Answer::Rejected;
                };
                let codecs = self.answer_codecs_for(transceiver, view);
                if codecs.iter().all(is_rtx) {
                    Answer::Rejected
                } else {
                    Answer::Media { codecs }
                }
            }
            (Content::DataChannel, Some(Usable::Data)) => Answer::Data,
            _ => Answer::Rejected,
        }
    }

    fn answer_codecs_for(&self, transceiver: &Transceiver, view: &MediaView<'_>) -> Vec<Codec> {
        answer_codecs(&view.codecs(), self.codecs_for(transceiver))
    }

    /// Our `a=setup` (RFC 8842 §5.3): the opposite of a definite offer;
    /// for `actpass`, the role we have (so the DTLS association stays,
    /// RFC 8842 §5.5), else the configured one.
    fn answer_setup(&self, view: &MediaView<'_>) -> Setup {
        match view.setup() {
            Some(Setup::Active) | None => Setup::Passive,
            Some(Setup::Passive) => Setup::Active,
            Some(_) => self.dtls_role.unwrap_or(self.config.answer_dtls_role).setup(),
        }
    }
}

/// Our answer to a peer's simulcast (RFC 8853 §5.3): the streams it
/// offers to send, all received when we receive; the streams it offers
/// to receive that we send (`send_rids`, [`Jsep::set_send_rids`]), the
/// first unpaused alternative of each, when we send. `None` when neither is left.
fn answer_simulcast(
    view: &MediaView<'_>,
    offered: Simulcast,
    direction: natter_sdp::Direction,
    send_rids: &[String],
) -> Option<(Vec<Rid>, Simulcast)> {
    let mut rids = Vec::new();
    let mut answer = Simulcast::default();
    if super::direction::receives(direction) {
        let known: Vec<String> = view
            .rids()
            .filter(|r| r.direction == RidDirection::Send)
            .map(|r| r.id)
            .collect();
        answer.recv = offered
            .send
            .into_iter()
            .map(|alternatives| {
                alternatives
                    .into_iter()
                    .filter(|a| known.contains(&a.rid))
                    .collect::<Vec<_>>()
            })
            .filter(|alternatives| !alternatives.is_empty())
            .collect();
        if !answer.recv.is_empty() {
            rids.extend(known.into_iter().map(|id| Rid::new(id, RidDirection::Recv)));
        }
    }
    if super::direction::sends(direction) {
        let wanted: Vec<String> = view
            .rids()
            .filter(|r| r.direction == RidDirection::Recv && send_rids.contains(&r.id))
            .map(|r| r.id)
            .collect();
        let chosen: Vec<String> = offered
            .recv
            .iter()
            .filter_map(|alternatives| alternatives.iter().find(|a| !a.paused && wanted.contains(&a.rid)))
            .map(|a| a.rid.clone())
            .collect();
        rids.extend(chosen.iter().map(|id| Rid::new(id.clone(), RidDirection::Send)));
        answer.send = chosen.into_iter().map(|id| vec![SimulcastRid::new(id)]).collect();
    }
    (!answer.send.is_empty() || !answer.recv.is_empty()).then_some((rids, answer))
}

/// draft-hancke-webrtc-sped §6.2: whether a description's ICE options
/// offer SPED, under the draft's tag or libwebrtc's.
pub(crate) fn offers_sped(options: &[&str]) -> bool {
    options.iter().any(|o| natter_ice::sped::ICE_OPTIONS.contains(o))
}
