//! The W3C transceiver calls: `addTrack`, `addTransceiver`,
//! `removeTrack`, `direction`, `stop()`; each changes what the next
//! exchange asks for (RFC 8829 §4.2).

use natter_sdp::Direction;
use rand::distributions::Alphanumeric;
use rand::Rng;

use super::super::{PeerConnection, PeerError};
use crate::jsep::direction::{receives, sends};
use crate::jsep::{JsepError, LocalTrack, MediaKind, TransceiverId};

/// A random token of `len` letters and digits, for track and stream ids.
fn token(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

impl PeerConnection {
    /// W3C `addTrack`: a track of `kind` that we send. Like W3C, it takes
    /// a transceiver of its kind that a remote offer made and that never
    /// sent (turning `recvonly` into `sendrecv`), else adds one; either
    /// way [`PeerEvent::NegotiationNeeded`] follows unless this is
    /// before our answer to that offer.
    ///
    /// [`PeerEvent::NegotiationNeeded`]: crate::peer::PeerEvent::NegotiationNeeded
    pub fn add_track(&mut self, kind: MediaKind) -> Result<TransceiverId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let reusable = self.jsep.transceivers().iter().find(|t| {
            t.kind() == kind
                && t.track().is_none()
                && !t.is_stopping()
                && !t.current_direction().is_some_and(sends)
                && !self.media.senders.contains_key(&t.id())
        });
        let id = match reusable {
            Some(t) => {
                let (id, direction) = (t.id(), t.direction());
                let direction = if receives(direction) {
                    Direction::SendRecv
                } else {
                    Direction::SendOnly
                };
                self.jsep.set_direction(id, direction)?;
                id
            }
            None => self.jsep.add_transceiver(kind, Direction::SendRecv)?,
        };
        let track = self.new_track(kind);
        self.jsep.set_track(id, Some(track))?;
        self.update_negotiation_needed();
        Ok(id)
    }

    /// W3C `addTransceiver(track, {sendEncodings})` with a RID per
    /// encoding: a track of `kind` sent as simulcast (RFC 8853), one
    /// stream per RID of `rids` (lowest layer first, RFC 8851 §10
    /// rid-ids) that the peer takes, each with its own SSRC and RTX SSRC;
    /// send frames with [`PeerConnection::send_frame_rid`]. A peer that
    /// takes no simulcast gets the first RID as the one stream.
    pub fn add_simulcast_track(&mut self, kind: MediaKind, rids: &[&str]) -> Result<TransceiverId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let id = self.jsep.add_transceiver(kind, Direction::SendOnly)?;
        let added = self
            .jsep
            .set_send_rids(id, rids.iter().map(|r| (*r).to_owned()).collect());
        if let Err(error) = added {
            self.jsep.stop_transceiver(id)?;
            return Err(error.into());
        }
        let track = self.new_track(kind);
        self.jsep.set_track(id, Some(track))?;
        self.update_negotiation_needed();
        Ok(id)
    }

    /// A new track of `kind`: random SSRCs (RTX too for video) and ids.
    fn new_track(&mut self, kind: MediaKind) -> LocalTrack {
        LocalTrack {
            ssrc: self.new_ssrc(),
            rtx_ssrc: (kind == MediaKind::Video).then(|| self.new_ssrc()),
            stream_id: Some(token(&mut self.rng, 16)),
            track_id: token(&mut self.rng, 16),
        }
    }

    /// A random SSRC (RFC 3550 §8.1), never 0.
    pub(super) fn new_ssrc(&mut self) -> u32 {
        loop {
            let ssrc: u32 = self.rng.gen();
            if ssrc != 0 {
                break ssrc;
            }
        }
    }

    /// W3C `addTransceiver(kind, {direction})`: a transceiver that, with
    /// `recvonly`, only receives.
    pub fn add_transceiver(&mut self, kind: MediaKind, direction: Direction) -> Result<TransceiverId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let id = self.jsep.add_transceiver(kind, direction)?;
        self.update_negotiation_needed();
        Ok(id)
    }

    /// W3C `removeTrack`: transceiver `id` stops sending once the next
    /// exchange agrees (`sendrecv` becomes `recvonly`, `sendonly`
    /// `inactive`); [`PeerEvent::NegotiationNeeded`] follows. A
    /// transceiver without a track is left as it is.
    ///
    /// [`PeerEvent::NegotiationNeeded`]: crate::peer::PeerEvent::NegotiationNeeded
    pub fn remove_track(&mut self, id: TransceiverId) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let transceiver = self.jsep.transceiver(id).ok_or(JsepError::UnknownTransceiver(id))?;
        if transceiver.track().is_none() {
            return Ok(());
        }
        let direction = match transceiver.direction() {
            Direction::SendRecv => Direction::RecvOnly,
            Direction::SendOnly => Direction::Inactive,
            other => other,
        };
        self.jsep.set_track(id, None)?;
        self.jsep.set_direction(id, direction)?;
        self.update_negotiation_needed();
        Ok(())
    }

    /// W3C `RTCRtpTransceiver.direction`: the direction transceiver `id`
    /// asks for in the next exchange (RFC 8829 §4.2.3).
    pub fn set_direction(&mut self, id: TransceiverId, direction: Direction) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.jsep.set_direction(id, direction)?;
        self.update_negotiation_needed();
        Ok(())
    }

    /// W3C `RTCRtpTransceiver.stop()` (RFC 8829 §4.2.1): it stops
    /// sending and receiving at once; the next offer rejects its section,
    /// and the transceiver is gone once answered.
    pub fn stop_transceiver(&mut self, id: TransceiverId) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.jsep.stop_transceiver(id)?;
        self.media.senders.remove(&id);
        self.media.receivers.remove(&id);
        self.update_negotiation_needed();
        Ok(())
    }

    /// The transceivers, in the order they were made.
    pub fn transceivers(&self) -> &[crate::jsep::Transceiver] {
        self.jsep.transceivers()
    }
}
