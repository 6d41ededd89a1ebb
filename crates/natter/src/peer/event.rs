//! What a [`PeerConnection`](super::PeerConnection) tells its owner: the
//! events of W3C webrtc-pc's `RTCPeerConnection` and `RTCDataChannel`,
//! and the candidates it trickles.

use natter_ice::ConnectionState;

use super::channel::DataChannelId;
use super::state::PeerConnectionState;
use crate::dtls::DtlsError;
use crate::jsep::SignalingState;
use crate::jsep::{MediaKind, TransceiverId};
use crate::media::Format;

/// W3C webrtc-pc §4.8.1 `RTCIceCandidateInit`: a candidate with the media
/// section it belongs to, as trickled between peers (RFC 8838 §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IceCandidate {
    /// The `candidate` attribute's value (RFC 8839 §5.1), with or
    /// without the leading `candidate:`; empty for end-of-candidates.
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_m_line_index: Option<u16>,
    /// The ufrag of the ICE generation the candidate belongs to; a
    /// candidate of a generation before an ICE restart is ignored.
    pub username_fragment: Option<String>,
}

/// Something the owner of a [`PeerConnection`](super::PeerConnection)
/// should know or do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// W3C `icecandidate`: a local candidate to signal to the peer.
    IceCandidate(IceCandidate),
    /// W3C `icecandidate` with a null candidate: gathering is complete
    /// (RFC 8838 §4.4, signal end-of-candidates).
    IceGatheringComplete,
    /// W3C `iceconnectionstatechange`.
    IceConnectionStateChange(ConnectionState),
    /// W3C `connectionstatechange`.
    ConnectionStateChange(PeerConnectionState),
    /// W3C webrtc-pc §5.5 `RTCDtlsTransport`'s `error` event: why DTLS
    /// failed (a fingerprint mismatch, RFC 8122 §5; a fatal alert from
    /// the peer, RFC 5246 §7.2; a timeout...). Comes before the
    /// `ConnectionStateChange` to `Failed`; the fatal alert we sent, if
    /// any, is in [`DtlsStats::sent_alert`](super::DtlsStats::sent_alert).
    DtlsFailed(DtlsError),
    /// W3C `signalingstatechange`.
    SignalingStateChange(SignalingState),
    /// W3C `negotiationneeded`: create and send a new offer.
    NegotiationNeeded,
    /// RFC 8828 §5: resolve this `.local` name and call
    /// [`PeerConnection::resolve_mdns`](super::PeerConnection::resolve_mdns).
    ResolveMdns(String),
    /// W3C `datachannel`: the peer opened a channel. Its
    /// [`DataChannelOpen`](PeerEvent::DataChannelOpen) follows.
    DataChannel(DataChannelId),
    /// W3C `open`: the channel carries messages.
    DataChannelOpen(DataChannelId),
    /// W3C `message`: one whole message.
    DataChannelMessage {
        id: DataChannelId,
        data: Vec<u8>,
        is_text: bool,
    },
    /// W3C `close`: the channel is gone, closed by either side or with the
    /// association.
    DataChannelClose(DataChannelId),
    /// W3C `bufferedamountlow`.
    BufferedAmountLow(DataChannelId),
    /// W3C `track`: an exchange made transceiver `transceiver` receive.
    Track {
        transceiver: TransceiverId,
        mid: String,
        kind: MediaKind,
    },
    /// A frame the peer sent, put back together.
    MediaFrame(MediaFrame),
    /// The peer asked for a keyframe on what transceiver `transceiver`
    /// sends (PLI, RFC 4585 §6.3.1, or FIR, RFC 5104 §4.3.1), on its
    /// simulcast stream `rid` (`None` for its one stream): have that
    /// encoder make one.
    KeyframeRequest {
        transceiver: TransceiverId,
        rid: Option<String>,
    },
    /// The congestion controller's target bitrate, bits per second, is
    /// now this (draft-ietf-rmcat-gcc-02): what the encoders together
    /// should aim at. The first is the configured start, once DTLS
    /// connects a connection that sends with transport-wide feedback.
    TargetBitrate(u64),
}

/// One received frame, as its format's depacketizer reassembled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFrame {
    pub transceiver: TransceiverId,
    /// The simulcast stream it came from (RFC 8852 §3.1 `RtpStreamId`);
    /// `None` on a transceiver that receives one stream.
    pub rid: Option<String>,
    pub format: Format,
    /// The RTP timestamp, in the codec's clock (90 kHz video, 48 kHz Opus).
    pub timestamp: u32,
    /// A VP8 keyframe or H.264 IDR picture (always true for Opus).
    pub keyframe: bool,
    /// The picture size a keyframe carried.
    pub size: Option<(u32, u32)>,
    /// VP8 as encoded, H.264 as an Annex B access unit, one Opus packet.
    pub data: Vec<u8>,
}
