//! Creating offers (RFC 8829 §5.2): the sections of the session in
//! order, new ones for new transceivers and data channels, stopped ones
//! with port 0, all bundled on the first one's transport.

use natter_rtp::extension::URI_RTP_STREAM_ID;
use natter_sdp::{Codec, Extmap, Protocol, Rid, RidDirection, SessionDescription, Setup, Simulcast};

use super::direction::sends;
use super::error::{JsepError, Operation};
use super::header_extension::{id_of, offer_extensions};
use super::layout::{plan_offer, Content, MLine};
use super::media_section::{data_section, rejected_section, rtp_section, RtpSection, Transport};
use super::payload_type::offer_codecs;
use super::{CreatedOffer, Jsep};

impl Jsep {
    /// Writes an offer (RFC 8829 §5.2.1 initial, §5.2.2 subsequent) as
    /// Chromium does: `a=group:BUNDLE` of every section in use,
    /// `a=setup:actpass`, `a=ice-options:trickle`, our codecs and header
    /// extensions with the numbers the session already gave them, and
    /// `a=ssrc` lines for the tracks we send. Fails only once closed.
    ///
    /// Apply it with [`Jsep::set_local_description`]; creating an offer
    /// changes nothing else.
    pub fn create_offer(&mut self) -> Result<String, JsepError> {
        self.ensure_open(Operation::CreateOffer)?;
        let mut mid_counter = self.mid_counter;
        let plan = plan_offer(&self.mlines, &self.transceivers, self.data_requested, &mut mid_counter);
        let restarting = self.ice.restart.is_some();
        let credentials = self.ice.restart.clone().unwrap_or_else(|| self.ice.credentials.clone());
        let bundle: Vec<String> = plan
            .iter()
            .filter(|line| self.in_use(line))
            .map(|line| line.mid.clone())
            .collect();

        let (mut session_codecs, mut session_extensions) = self.session_mappings();
        let mut description = self.session_skeleton(&bundle)?;
        for line in &plan {
            let transport = Transport {
                ice: &credentials,
                fingerprint: &self.fingerprint,
                // RFC 8842 §5.2: offers leave the role to the answerer.
                setup: Setup::ActPass,
                candidates: (bundle.first() == Some(&line.mid)).then_some((&self.ice, restarting)),
                sped: self.config.sped,
            };
            let section = match &line.content {
                Content::Transceiver(id) => {
                    let Some(transceiver) = self.transceiver(*id) else {
                        continue;
                    };
                    let previous = self.local.current.as_ref().and_then(|d| d.media_by_mid(&line.mid));
                    if transceiver.stopping {
                        let formats = previous.map(|p| p.formats.clone()).unwrap_or_default();
                        rejected_section(
                            transceiver.kind.sdp(),
                            Protocol::UdpTlsRtpSavpf,
                            formats,
                            &line.mid,
                            &transport,
                        )?
                    } else {
                        let previous_codecs = previous.map(|p| p.codecs()).unwrap_or_default();
                        let previous_extensions = previous.map(|p| p.extmaps()).unwrap_or_default();
                        let codecs = offer_codecs(self.codecs_for(transceiver), &previous_codecs, &session_codecs);
                        let extensions = offer_extensions(
                            self.supported_extensions(transceiver.kind),
                            &previous_extensions,
                            &session_extensions,
                        );
                        // RFC 8853 §5.1: simulcast needs the RID header extension.
                        let simulcast = (!transceiver.send_rids.is_empty()
                            && sends(transceiver.direction)
                            && id_of(&extensions, URI_RTP_STREAM_ID).is_some())
                        .then(|| offer_simulcast(&transceiver.send_rids));
                        let section = rtp_section(
                            &RtpSection {
                                kind: transceiver.kind,
                                protocol: Protocol::UdpTlsRtpSavpf,
                                mid: &line.mid,
                                direction: transceiver.direction,
                                extensions: &extensions,
                                codecs: &codecs,
                                track: transceiver.track.as_ref(),
                                cname: &self.config.cname,
                                rtcp_rsize: true,
                                simulcast,
                            },
                            &transport,
                        )?;
                        session_codecs.extend(codecs);
                        session_extensions.extend(extensions);
                        section
                    }
                }
                Content::DataChannel => data_section(
                    &line.mid,
                    self.config.sctp_port,
                    self.config.max_message_size,
                    self.config.sctp_init.as_deref(),
                    false,
                    &transport,
                )?,
                Content::Rejected {
                    kind,
                    protocol,
                    formats,
                } => rejected_section(kind.clone(), protocol.clone(), formats.clone(), &line.mid, &transport)?,
            };
            description.media.push(section);
        }
        self.stamp(&mut description);
        let text = description.to_string();
        self.created_offer = Some(Box::new(CreatedOffer {
            description,
            plan,
            mid_counter,
        }));
        Ok(text)
    }

    /// Whether a section of the plan carries media or data (and so is
    /// bundled), rather than being rejected or stopped.
    pub(super) fn in_use(&self, line: &MLine) -> bool {
        match &line.content {
            Content::Transceiver(id) => self.transceiver(*id).is_some_and(|t| !t.stopping),
            Content::DataChannel => true,
            Content::Rejected { .. } => false,
        }
    }

    /// Every codec and header extension the current descriptions number,
    /// so that new sections number them alike (RFC 8843 §9.1).
    pub(super) fn session_mappings(&self) -> (Vec<Codec>, Vec<Extmap>) {
        let mut codecs = Vec::new();
        let mut extensions = Vec::new();
        let descriptions: [Option<&SessionDescription>; 2] =
            [self.local.current.as_ref(), self.remote.current.as_ref()];
        for description in descriptions.into_iter().flatten() {
            for view in description.media_views() {
                codecs.extend(view.codecs());
                extensions.extend(view.extmaps());
            }
        }
        (codecs, extensions)
    }
}

/// The `a=rid:<id> send` lines and `a=simulcast:send` of an offer that
/// sends `rids` as simulcast (RFC 8851 §4, RFC 8853 §5.1).
fn offer_simulcast(rids: &[String]) -> (Vec<Rid>, Simulcast) {
    let lines = rids.iter().map(|id| Rid::new(id.clone(), RidDirection::Send)).collect();
    (lines, Simulcast::send(rids.iter().cloned()))
}
