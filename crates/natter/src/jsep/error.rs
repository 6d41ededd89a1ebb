//! What can go wrong in an offer/answer exchange, and where.

use std::fmt;

use natter_sdp::{AttributeError, ParseError};

use super::signaling::{SdpType, SignalingState};
use super::transceiver::TransceiverId;

/// A call that the signaling state can refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateOffer,
    CreateAnswer,
    SetLocalDescription(SdpType),
    SetRemoteDescription(SdpType),
    /// Adding or changing a transceiver or a data channel.
    Modify,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::CreateOffer => f.write_str("createOffer"),
            Operation::CreateAnswer => f.write_str("createAnswer"),
            Operation::SetLocalDescription(kind) => write!(f, "setLocalDescription({kind})"),
            Operation::SetRemoteDescription(kind) => write!(f, "setRemoteDescription({kind})"),
            Operation::Modify => f.write_str("changing transceivers"),
        }
    }
}

/// Why a JSEP operation failed. The state is left as it was before the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsepError {
    /// W3C webrtc-pc `InvalidStateError`: the call does not fit the
    /// signaling state.
    #[error("{operation} is not allowed in signaling state {state} (W3C webrtc-pc InvalidStateError)")]
    InvalidState {
        operation: Operation,
        state: SignalingState,
    },
    /// The text is not SDP (RFC 8866).
    #[error("the session description does not parse: {0}")]
    Sdp(#[from] ParseError),
    /// RFC 8829 §5.8.2: every media section needs `a=mid`.
    #[error("media section {index} has no a=mid (RFC 8829 §5.8.2)")]
    MissingMid { index: usize },
    /// RFC 5888 §4: mids are unique in a description.
    #[error("a=mid:{mid} names more than one media section (RFC 5888 §4)")]
    DuplicateMid { mid: String },
    /// RFC 8843 §7: a BUNDLE group names media sections of the description.
    #[error("a=group:BUNDLE names mid {mid}, which no media section has (RFC 8843 §7)")]
    UnknownBundleMid { mid: String },
    /// We only do max-bundle (RFC 8829 §4.1.1): every accepted media
    /// section must share one transport.
    #[error(
        "media section {mid} is outside the BUNDLE group; natter needs every section bundled (max-bundle, RFC 8843)"
    )]
    NotBundled { mid: String },
    /// RFC 8839 §5.4: ICE needs a username fragment and password.
    #[error("media section {mid} has no a=ice-ufrag or a=ice-pwd, in it or at session level (RFC 8839 §5.4)")]
    MissingIceCredentials { mid: String },
    /// RFC 8839 §5.4: at least 4 and 22 characters.
    #[error("media section {mid}: ICE ufrag/pwd shorter than 4/22 characters (RFC 8839 §5.4)")]
    ShortIceCredentials { mid: String },
    /// RFC 8122 §5 / RFC 8827 §6.5: DTLS needs the peer's fingerprint.
    #[error("media section {mid} has no a=fingerprint, in it or at session level (RFC 8122 §5)")]
    MissingFingerprint { mid: String },
    /// RFC 8842 §5: an answer says `active` or `passive`.
    #[error("media section {mid}: a=setup:{setup} is not allowed in an answer (RFC 8842 §5)")]
    InvalidSetup { mid: String, setup: &'static str },
    /// RFC 8829 §5.1.1: RTP and RTCP share the port.
    #[error("media section {mid} lacks a=rtcp-mux, which natter requires (RFC 8829 §5.1.1, RFC 5761)")]
    RtcpMuxRequired { mid: String },
    /// RFC 3264 §6: the answer has the offer's media sections, in order.
    #[error("the answer does not match the offer: {reason} (RFC 3264 §6)")]
    AnswerMismatch { reason: String },
    /// RFC 3264 §8: a new offer keeps the sections of the session in order.
    #[error("the offer changes the negotiated media sections: {reason} (RFC 3264 §8)")]
    OfferMismatch { reason: String },
    /// W3C webrtc-pc `InvalidModificationError`: a local description
    /// must be the one we created, give or take what RFC 8829 §5.4
    /// lets an application change.
    #[error("the local description differs from the one created: {reason} (W3C webrtc-pc InvalidModificationError)")]
    LocalDescriptionMismatch { reason: String },
    /// The peer restarted ICE (RFC 8445 §9); the answer needs new local
    /// credentials, given with [`Jsep::restart_ice`](super::Jsep::restart_ice).
    #[error(
        "the remote offer restarts ICE; call restart_ice with new local credentials before createAnswer (RFC 8445 §9)"
    )]
    IceCredentialsNeeded,
    #[error("no transceiver {0}")]
    UnknownTransceiver(TransceiverId),
    /// W3C webrtc-pc: a stopped or stopping transceiver cannot change.
    #[error("transceiver {0} is stopped")]
    TransceiverStopped(TransceiverId),
    /// W3C webrtc-pc `setCodecPreferences`: only codecs we support.
    #[error("codec {name}/{clock_rate} is not one natter supports (W3C webrtc-pc InvalidModificationError)")]
    UnsupportedCodec { name: String, clock_rate: u32 },
    /// Configuration or application input that SDP cannot carry.
    #[error("invalid {what}: {reason}")]
    InvalidInput { what: &'static str, reason: String },
    /// An attribute built from our state or the peer's values does not
    /// follow its grammar.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
}
