//! Applying descriptions (RFC 8829 §5.5-§5.11): moving the signaling
//! state, placing sections and transceivers, and summing up what an
//! answer negotiated.

use natter_sdp::{Direction, SessionDescription};

use super::error::{JsepError, Operation};
use super::layout::{is_rejected, observe_mid, usable, Content, MLine, Usable};
use super::negotiated::{negotiate, Exchange, Negotiated};
use super::parse::{bundle_mids, check, transport_credentials};
use super::signaling::{transition, SdpType, Side, SignalingState};
use super::transceiver::{Transceiver, TransceiverId};
use super::Jsep;

impl Jsep {
    /// Applies one of our descriptions (RFC 8829 §5.5, §5.9): an offer
    /// from [`Jsep::create_offer`], an answer or provisional answer from
    /// [`Jsep::create_answer`] (the text may be changed as RFC 8829 §5.4
    /// allows, not its sections), or a rollback, whose text is ignored.
    ///
    /// Returns the [`Negotiated`] summary when an answer or provisional
    /// answer completes the exchange.
    pub fn set_local_description(&mut self, kind: SdpType, sdp: &str) -> Result<Option<Negotiated>, JsepError> {
        let next = self.next_state(Side::Local, kind, Operation::SetLocalDescription(kind))?;
        if kind == SdpType::Rollback {
            self.roll_back();
            return Ok(None);
        }
        let description: SessionDescription = sdp.parse()?;
        check(&description, kind != SdpType::Offer)?;
        if kind == SdpType::Offer {
            self.apply_local_offer(description)?;
            return Ok(None);
        }
        let Some(offer) = self.remote.pending.as_deref() else {
            return Err(self.invalid_state(Operation::SetLocalDescription(kind)));
        };
        same_sections(offer, &description).map_err(|reason| JsepError::LocalDescriptionMismatch { reason })?;
        let negotiated = negotiate(&Exchange {
            local: &description,
            remote: offer,
            we_offered: false,
            mlines: &self.mlines,
            previous: self.negotiated.as_ref(),
        })?;
        if let Some(credentials) = transport_credentials(&description) {
            self.ice.apply(credentials);
        }
        if kind == SdpType::Answer {
            self.remote.current = self.remote.pending.take().map(|d| *d);
            self.local.current = Some(description);
            self.local.pending = None;
        } else {
            self.local.pending = Some(Box::new(description));
        }
        Ok(Some(self.conclude(kind, next, negotiated)))
    }

    /// Applies the peer's description (RFC 8829 §5.6, §5.10, §5.11) after
    /// the checks of RFC 8829 §5.8. An offer places its sections: a new
    /// audio or video section goes to a transceiver of its kind that has
    /// a track and no section yet, else to a new `recvonly` one; an offer
    /// in `have-local-offer` first rolls ours back (W3C implicit
    /// rollback, which perfect negotiation's polite peer relies on).
    ///
    /// Returns the [`Negotiated`] summary when an answer or provisional
    /// answer completes the exchange.
    pub fn set_remote_description(&mut self, kind: SdpType, sdp: &str) -> Result<Option<Negotiated>, JsepError> {
        let operation = Operation::SetRemoteDescription(kind);
        if kind == SdpType::Offer && self.state == SignalingState::HaveLocalOffer {
            self.roll_back();
        }
        let next = self.next_state(Side::Remote, kind, operation)?;
        if kind == SdpType::Rollback {
            self.roll_back();
            return Ok(None);
        }
        let description: SessionDescription = sdp.parse()?;
        check(&description, kind != SdpType::Offer)?;
        if kind == SdpType::Offer && self.state == SignalingState::HaveRemoteOffer {
            // A new offer replaces the pending one: place it on the state
            // before that one, and keep the old if the new one fails.
            let mut replaced = self.clone();
            replaced.roll_back();
            replaced.apply_remote_offer(description)?;
            *self = replaced;
            return Ok(None);
        }
        if kind == SdpType::Offer {
            self.apply_remote_offer(description)?;
            return Ok(None);
        }
        let Some(offer) = self.local.pending.as_deref() else {
            return Err(self.invalid_state(operation));
        };
        same_sections(offer, &description).map_err(|reason| JsepError::AnswerMismatch { reason })?;
        let offered = bundle_mids(offer);
        if let Some(mid) = bundle_mids(&description).into_iter().find(|m| !offered.contains(m)) {
            return Err(JsepError::AnswerMismatch {
                reason: format!("BUNDLE names {mid}, which the offer did not bundle"),
            });
        }
        let negotiated = negotiate(&Exchange {
            local: offer,
            remote: &description,
            we_offered: true,
            mlines: &self.mlines,
            previous: self.negotiated.as_ref(),
        })?;
        if kind == SdpType::Answer {
            self.local.current = self.local.pending.take().map(|d| *d);
            self.remote.current = Some(description);
            self.remote.pending = None;
        } else {
            self.remote.pending = Some(Box::new(description));
        }
        Ok(Some(self.conclude(kind, next, negotiated)))
    }

    fn invalid_state(&self, operation: Operation) -> JsepError {
        JsepError::InvalidState {
            operation,
            state: self.state,
        }
    }

    fn next_state(&self, side: Side, kind: SdpType, operation: Operation) -> Result<SignalingState, JsepError> {
        transition(self.state, side, kind).ok_or_else(|| self.invalid_state(operation))
    }

    /// RFC 8829 §5.9 for an offer: its sections become the session's,
    /// with the mids of the offer we created.
    fn apply_local_offer(&mut self, description: SessionDescription) -> Result<(), JsepError> {
        let mismatch = |reason: String| JsepError::LocalDescriptionMismatch { reason };
        let created = self
            .created_offer
            .as_ref()
            .ok_or_else(|| mismatch("no offer was created".into()))?;
        same_sections(&created.description, &description).map_err(mismatch)?;
        let (plan, mid_counter) = (created.plan.clone(), created.mid_counter);
        if plan.iter().any(|line| match &line.content {
            Content::Transceiver(id) => self.transceiver(*id).is_none(),
            _ => false,
        }) {
            return Err(mismatch("a transceiver of the offer is gone".into()));
        }
        self.save_stable();
        for line in &plan {
            if let Content::Transceiver(id) = &line.content {
                if let Some(transceiver) = self.transceivers.iter_mut().find(|t| t.id == *id) {
                    transceiver.mid = Some(line.mid.clone());
                }
            }
        }
        self.mlines = plan;
        self.mid_counter = mid_counter;
        // An offer without sections in use has no transport to restart,
        // but it was the offer a restart waited for.
        if let Some(credentials) = transport_credentials(&description).or_else(|| self.ice.restart.clone()) {
            self.ice.apply(credentials);
        }
        self.local.pending = Some(Box::new(description));
        self.state = SignalingState::HaveLocalOffer;
        Ok(())
    }

    /// RFC 8829 §5.10 for an offer: sections keep their places (RFC 3264
    /// §8); new ones, or rejected ones the peer recycled, get a
    /// transceiver, the data channels, or a rejection.
    fn apply_remote_offer(&mut self, description: SessionDescription) -> Result<(), JsepError> {
        let mismatch = |reason: String| JsepError::OfferMismatch { reason };
        if description.media.len() < self.mlines.len() {
            return Err(mismatch(format!(
                "{} sections where the session has {}",
                description.media.len(),
                self.mlines.len()
            )));
        }
        let mut mlines = self.mlines.clone();
        let mut transceivers = self.transceivers.clone();
        let mut next_transceiver = self.next_transceiver;
        let mut mid_counter = self.mid_counter;
        for (index, section) in description.media.iter().enumerate() {
            // `check` made sure every section has a mid.
            let mid = section.mid().unwrap_or_default().to_string();
            observe_mid(&mut mid_counter, &mid);
            if let Some(line) = mlines.get(index) {
                // A rejected section the peer brings back is placed anew.
                let revived = matches!(line.content, Content::Rejected { .. }) && !is_rejected(section);
                if line.mid == mid && !revived {
                    if let Content::Transceiver(id) = line.content {
                        let kind = transceivers.iter().find(|t| t.id == id).map(|t| t.kind.sdp());
                        if kind.as_ref() != Some(&section.kind) {
                            return Err(mismatch(format!("section {mid} changed its media type")));
                        }
                    }
                    continue;
                }
                if !matches!(line.content, Content::Rejected { .. }) {
                    return Err(mismatch(format!("section {index} was {}, now {mid}", line.mid)));
                }
            }
            let data_elsewhere = mlines
                .iter()
                .enumerate()
                .any(|(i, m)| i != index && m.content == Content::DataChannel);
            let content = match usable(section).filter(|_| !is_rejected(section)) {
                Some(Usable::Media(kind)) => {
                    let reusable = transceivers
                        .iter_mut()
                        .find(|t| t.kind == kind && t.mid.is_none() && t.track.is_some() && !t.stopping);
                    let transceiver = match reusable {
                        Some(transceiver) => transceiver,
                        None => {
                            let id = TransceiverId(next_transceiver);
                            next_transceiver += 1;
                            transceivers.push(Transceiver::new(id, kind, Direction::RecvOnly, true));
                            let last = transceivers.len() - 1;
                            &mut transceivers[last]
                        }
                    };
                    transceiver.mid = Some(mid.clone());
                    Content::Transceiver(transceiver.id)
                }
                Some(Usable::Data) if !data_elsewhere => Content::DataChannel,
                _ => Content::Rejected {
                    kind: section.kind.clone(),
                    protocol: section.protocol.clone(),
                    formats: section.formats.clone(),
                },
            };
            let line = MLine { mid, content };
            match mlines.get_mut(index) {
                Some(slot) => *slot = line,
                None => mlines.push(line),
            }
        }
        // Kept for the session: what growing it reserved goes back (issue 18).
        mlines.shrink_to_fit();

        let restart = match (&self.remote.current, transport_credentials(&description)) {
            (Some(current), Some(new)) => transport_credentials(current).is_some_and(|old| old != new),
            _ => false,
        };
        self.save_stable();
        self.mlines = mlines;
        self.transceivers = transceivers;
        self.next_transceiver = next_transceiver;
        self.mid_counter = mid_counter;
        self.remote_ice_restart = restart;
        self.remote.pending = Some(Box::new(description));
        self.state = SignalingState::HaveRemoteOffer;
        Ok(())
    }

    /// RFC 8829 §5.11: an answer sets each transceiver's current
    /// direction; a final one also retires what it rejected and returns
    /// to `stable`.
    fn conclude(&mut self, kind: SdpType, next: SignalingState, negotiated: Negotiated) -> Negotiated {
        for media in &negotiated.media {
            if let Some(transceiver) = self.transceivers.iter_mut().find(|t| t.id == media.transceiver) {
                transceiver.current_direction = Some(media.direction);
            }
        }
        if kind == SdpType::Answer {
            self.retire_rejected(&negotiated);
            self.dtls_role = negotiated.transport.as_ref().map(|t| t.dtls_role).or(self.dtls_role);
            self.stable = None;
            self.created_offer = None;
            self.remote_ice_restart = false;
        }
        self.state = next;
        self.negotiated = Some(negotiated.clone());
        negotiated
    }

    /// Stops the transceivers and data channels whose sections the
    /// exchange rejected (RFC 8829 §5.11), leaving the sections to be
    /// recycled.
    fn retire_rejected(&mut self, negotiated: &Negotiated) {
        let local = self.local.current.as_ref();
        for line in &mut self.mlines {
            let rejected = match &line.content {
                Content::Transceiver(id) => negotiated.media.iter().any(|m| m.transceiver == *id && m.rejected),
                Content::DataChannel => negotiated.data_channel.is_none(),
                Content::Rejected { .. } => false,
            };
            if !rejected {
                continue;
            }
            let Some(section) = local.and_then(|d| d.media_by_mid(&line.mid)) else {
                continue;
            };
            if let Content::Transceiver(id) = line.content {
                self.transceivers.retain(|t| t.id != id);
            } else {
                self.data_requested = false;
            }
            line.content = Content::Rejected {
                kind: section.kind.clone(),
                protocol: section.protocol.clone(),
                formats: section.formats.clone(),
            };
        }
    }
}

/// Whether `answer` has the sections of `offer`: as many, with the same
/// mids and media types, in the same order (RFC 3264 §6).
fn same_sections(offer: &SessionDescription, answer: &SessionDescription) -> Result<(), String> {
    if offer.media.len() != answer.media.len() {
        return Err(format!(
            "{} media sections where the offer has {}",
            answer.media.len(),
            offer.media.len()
        ));
    }
    for (index, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        if o.mid() != a.mid() || o.kind != a.kind {
            return Err(format!(
                "section {index} is {} {}, the offer's is {} {}",
                a.kind.name(),
                a.mid().unwrap_or("(no mid)"),
                o.kind.name(),
                o.mid().unwrap_or("(no mid)")
            ));
        }
    }
    Ok(())
}
