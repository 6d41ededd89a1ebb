//! Why a [`PeerConnection`](super::PeerConnection) refused a call.

use natter_ice::candidate::ParseCandidateError;

use super::channel::DataChannelId;
use super::config::BundlePolicy;
use crate::dtls::DtlsError;
use crate::jsep::{JsepError, TransceiverId};

/// A refused call. The connection is left as it was before it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// W3C webrtc-pc `InvalidStateError`: the connection is closed.
    #[error("the peer connection is closed (W3C webrtc-pc InvalidStateError)")]
    Closed,
    /// W3C webrtc-pc §4.4.1.1: a URL of `iceServers` is malformed
    /// (`SyntaxError`).
    #[error("ICE server URL `{url}`: {reason} (RFC 7064/7065 §3.1)")]
    InvalidIceServerUrl { url: String, reason: &'static str },
    /// The host of an ICE server URL is a name; the I/O layer resolves
    /// names and passes addresses.
    #[error("ICE server URL `{0}` names a host; resolve it and give its IP address")]
    UnresolvedIceServer(String),
    /// `stuns:` and `turns:` over UDP (DTLS), which natter-ice does not
    /// speak (W3C `NotSupportedError`).
    #[error("ICE server URL `{0}` needs STUN over TLS or TURN over DTLS, which natter does not support")]
    UnsupportedIceServer(String),
    /// W3C webrtc-pc §4.4.1.1: a TURN URL without username and
    /// credential (`InvalidAccessError`).
    #[error("TURN server URL `{0}` needs a username and a credential")]
    MissingTurnCredentials(String),
    /// natter bundles everything (max-bundle, RFC 8829 §4.1.1).
    #[error("bundle policy {0:?} is not supported; natter only does max-bundle")]
    UnsupportedBundlePolicy(BundlePolicy),
    /// W3C webrtc-pc `InvalidStateError`: a candidate needs a remote
    /// description to belong to.
    #[error("addIceCandidate before setRemoteDescription (W3C webrtc-pc InvalidStateError)")]
    NoRemoteDescription,
    /// W3C webrtc-pc `OperationError`: the candidate names a media
    /// section the remote description does not have.
    #[error(
        "the candidate names no media section of the remote description (sdpMid {mid:?}, sdpMLineIndex {index:?})"
    )]
    UnknownMediaSection { mid: Option<String>, index: Option<u16> },
    #[error("invalid ICE candidate: {0}")]
    Candidate(#[from] ParseCandidateError),
    /// W3C webrtc-pc §6.2 `createDataChannel` throws a `TypeError`.
    #[error("invalid RTCDataChannelInit: {0}")]
    InvalidDataChannelInit(&'static str),
    /// W3C webrtc-pc `InvalidStateError`: `send` on a channel that is not
    /// open.
    #[error("data channel {0} is not open")]
    DataChannelNotOpen(DataChannelId),
    /// No exchange agreed that transceiver's track is sent, or DTLS has
    /// not connected yet.
    #[error("transceiver {0} does not send (yet): negotiate a sending direction and wait for the connection")]
    NotSending(TransceiverId),
    /// Transceiver does not receive, or nothing arrived on it yet.
    #[error("transceiver {0} receives no stream")]
    NotReceiving(TransceiverId),
    #[error("cannot send the frame: {0}")]
    Media(#[from] crate::media::MediaError),
    /// A call of the other media API: `write_rtp` without
    /// [`PeerConfig::rtp_mode`](super::PeerConfig::rtp_mode), `send_frame`
    /// with it.
    #[error("{call} is not available with rtp_mode {rtp_mode}")]
    MediaApi { call: &'static str, rtp_mode: bool },
    /// The transceiver has no simulcast layer of that RID (RFC 8852 §3.1).
    #[error("transceiver {transceiver} has no simulcast layer `{rid}`")]
    UnknownRid { transceiver: TransceiverId, rid: String },
    /// RTP written with a payload type the transceiver does not send.
    #[error("transceiver {transceiver} does not send payload type {payload_type}")]
    PayloadType {
        transceiver: TransceiverId,
        payload_type: u8,
    },
    /// An [`Endpoint`](crate::endpoint::Endpoint) holds at most 2^32
    /// connections.
    #[error("the endpoint holds as many connections as it can")]
    TooManyConnections,
    #[error(transparent)]
    Jsep(#[from] JsepError),
    #[error(transparent)]
    Congestion(#[from] crate::congestion::CongestionError),
    #[error(transparent)]
    Dtls(#[from] DtlsError),
    #[error(transparent)]
    Ice(#[from] natter_ice::AgentError),
    #[error(transparent)]
    Sctp(#[from] natter_sctp::Error),
}
