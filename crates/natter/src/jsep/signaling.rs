//! The signaling state machine (W3C webrtc-pc `RTCSignalingState`) and
//! the description types that drive it (RFC 8829 §5.5–§5.7).

use std::fmt;

/// Where the offer/answer exchange stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalingState {
    /// No exchange in progress.
    Stable,
    /// We applied an offer of our own and wait for the answer.
    HaveLocalOffer,
    /// We applied the peer's offer and owe an answer.
    HaveRemoteOffer,
    /// We answered the peer's offer provisionally (RFC 8829 §4.1.10.1).
    HaveLocalPranswer,
    /// The peer answered our offer provisionally.
    HaveRemotePranswer,
    /// [`Jsep::close`](super::Jsep::close) was called; nothing more happens.
    Closed,
}

impl SignalingState {
    /// The W3C name, such as `have-local-offer`.
    pub fn name(self) -> &'static str {
        match self {
            SignalingState::Stable => "stable",
            SignalingState::HaveLocalOffer => "have-local-offer",
            SignalingState::HaveRemoteOffer => "have-remote-offer",
            SignalingState::HaveLocalPranswer => "have-local-pranswer",
            SignalingState::HaveRemotePranswer => "have-remote-pranswer",
            SignalingState::Closed => "closed",
        }
    }
}

impl fmt::Display for SignalingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of a session description (W3C webrtc-pc `RTCSdpType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdpType {
    Offer,
    /// A provisional answer: it negotiates, but the exchange stays open.
    Pranswer,
    Answer,
    /// Undoes the offer in progress (RFC 8829 §5.7); carries no SDP.
    Rollback,
}

impl SdpType {
    /// The W3C name, as signaling messages carry it.
    pub fn name(self) -> &'static str {
        match self {
            SdpType::Offer => "offer",
            SdpType::Pranswer => "pranswer",
            SdpType::Answer => "answer",
            SdpType::Rollback => "rollback",
        }
    }

    /// The type named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "offer" => Some(SdpType::Offer),
            "pranswer" => Some(SdpType::Pranswer),
            "answer" => Some(SdpType::Answer),
            "rollback" => Some(SdpType::Rollback),
            _ => None,
        }
    }
}

impl fmt::Display for SdpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whose description is being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Local,
    Remote,
}

/// The state after applying a description of type `kind` from `side`, or
/// `None` where W3C webrtc-pc ("set the session description") rejects the
/// call with an `InvalidStateError`.
///
/// A remote offer in `have-local-offer` is not listed: W3C makes it an
/// implicit rollback first, which [`Jsep`](super::Jsep) does itself.
/// Rollback is refused in `stable` (nothing to undo, RFC 8829 §4.1.10.2)
/// and in the pranswer states, where W3C refuses it too.
pub(crate) fn transition(state: SignalingState, side: Side, kind: SdpType) -> Option<SignalingState> {
    use SignalingState::*;
    let next = match (side, kind, state) {
        (Side::Local, SdpType::Offer, Stable | HaveLocalOffer) => HaveLocalOffer,
        (Side::Local, SdpType::Answer, HaveRemoteOffer | HaveLocalPranswer) => Stable,
        (Side::Local, SdpType::Pranswer, HaveRemoteOffer | HaveLocalPranswer) => HaveLocalPranswer,
        (Side::Remote, SdpType::Offer, Stable | HaveRemoteOffer) => HaveRemoteOffer,
        (Side::Remote, SdpType::Answer, HaveLocalOffer | HaveRemotePranswer) => Stable,
        (Side::Remote, SdpType::Pranswer, HaveLocalOffer | HaveRemotePranswer) => HaveRemotePranswer,
        (_, SdpType::Rollback, HaveLocalOffer | HaveRemoteOffer) => Stable,
        _ => return None,
    };
    Some(next)
}
