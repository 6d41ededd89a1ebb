//! Rollback (RFC 8829 §5.7): what leaving `stable` changed, and undoing it.

use natter_sdp::Direction;

use super::ice::LocalIce;
use super::layout::MLine;
use super::signaling::SignalingState;
use super::transceiver::TransceiverId;
use super::Jsep;

/// The negotiation state when the exchange in progress began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    mlines: Vec<MLine>,
    mid_counter: u32,
    /// Each transceiver's mid and current direction.
    transceivers: Vec<(TransceiverId, Option<String>, Option<Direction>)>,
    ice: LocalIce,
}

impl Jsep {
    /// Remembers the state before the first description of an exchange.
    pub(super) fn save_stable(&mut self) {
        if self.state != SignalingState::Stable {
            return;
        }
        self.stable = Some(Box::new(Snapshot {
            mlines: self.mlines.clone(),
            mid_counter: self.mid_counter,
            transceivers: self
                .transceivers
                .iter()
                .map(|t| (t.id, t.mid.clone(), t.current_direction))
                .collect(),
            ice: self.ice.clone(),
        }));
    }

    /// Back to `stable` as it was (RFC 8829 §5.7, W3C webrtc-pc): the
    /// pending descriptions go, and so do the transceivers the peer's
    /// offer made unless the application has used them since; the
    /// others lose the mids the exchange gave them. What the application
    /// asked for meanwhile (new transceivers, data channels, an ICE
    /// restart) stays, for the next offer.
    pub(super) fn roll_back(&mut self) {
        if let Some(snapshot) = self.stable.take().map(|s| *s) {
            self.transceivers
                .retain(|t| t.touched || !t.from_remote || snapshot.transceivers.iter().any(|(id, ..)| *id == t.id));
            for transceiver in &mut self.transceivers {
                match snapshot.transceivers.iter().find(|(id, ..)| *id == transceiver.id) {
                    Some((_, mid, current)) => {
                        transceiver.mid = mid.clone();
                        transceiver.current_direction = *current;
                    }
                    None => transceiver.mid = None,
                }
            }
            self.mlines = snapshot.mlines;
            self.mid_counter = snapshot.mid_counter;
            // Candidates gathered meanwhile for the same credentials stay.
            let candidates = std::mem::take(&mut self.ice.candidates);
            let complete = self.ice.complete;
            let same_credentials = self.ice.credentials == snapshot.ice.credentials;
            let restart = self.ice.restart.take().or(snapshot.ice.restart.clone());
            self.ice = snapshot.ice;
            self.ice.restart = restart;
            if same_credentials {
                self.ice.candidates = candidates;
                self.ice.complete = complete;
            }
        }
        self.local.pending = None;
        self.remote.pending = None;
        self.created_offer = None;
        self.remote_ice_restart = false;
        self.state = SignalingState::Stable;
    }
}
