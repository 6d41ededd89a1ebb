//! What a [`PeerConnection`](super::PeerConnection) is made with (W3C
//! webrtc-pc §4.2.1 `RTCConfiguration`, plus the transport settings a
//! browser hides).

use natter_ice::TransportPolicy;
use natter_sctp::{DtlsRole, SctpConfig};
use natter_sdp::{Codec, Extmap};

use super::ice_server::IceServer;
use crate::dtls::{Certificate, DtlsConfig};
use crate::jsep::IceCredentials;

/// W3C webrtc-pc §4.2.5 `RTCBundlePolicy`. natter bundles everything on
/// one transport (RFC 8843, RFC 8829 §4.1.1), so only
/// [`BundlePolicy::MaxBundle`] is accepted; the others exist so that a
/// configuration copied from a browser fails with a clear error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BundlePolicy {
    Balanced,
    MaxCompat,
    #[default]
    MaxBundle,
}

/// The SCTP association's settings (RFC 8831, RFC 8841) that are ours to
/// choose; the DTLS role and the peer's port come from the negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SctpSettings {
    /// The largest message we send or accept, advertised as
    /// `a=max-message-size` (RFC 8841 §6). At least
    /// [`natter_sctp::MIN_MAX_MESSAGE_SIZE`].
    pub max_message_size: usize,
    /// The largest SCTP packet handed to DTLS (see
    /// [`SctpConfig::mtu`]).
    pub mtu: usize,
    /// Our advertised receiver window (RFC 9260 §6.2), at least twice
    /// `max_message_size`.
    pub receive_window: u32,
    /// Per channel, the most bytes a send may leave queued.
    pub max_buffered_amount: usize,
    /// RFC 8899 PMTU probing up to this packet size (see
    /// [`SctpConfig::max_mtu`]); `None`, the default: packets stay at
    /// `mtu`.
    pub max_mtu: Option<usize>,
    /// Offer and answer SNAP (draft-hancke-tsvwg-snap-01): our SCTP INIT
    /// in `a=sctp-init`. When the peer's description carries one too, the
    /// association is up as soon as DTLS is, two round trips sooner;
    /// otherwise the four-way handshake runs as before.
    pub snap: bool,
    /// Offer message interleaving (RFC 8260 I-DATA and I-FORWARD-TSN, see
    /// [`SctpConfig::interleaving`]) in our INIT and `a=sctp-init`. Used
    /// only when the peer offers it too (RFC 8260 §2.2: natter, or
    /// Chromium 156 under its `WebRTC-DataChannelMessageInterleaving`
    /// field trial); then a small message on one channel no longer waits
    /// on the wire behind a large one on another. On by default: a peer
    /// that does not offer it (Chromium by default, Firefox, aiortc)
    /// gets DATA as before.
    pub interleaving: bool,
}

/// natter-sctp's defaults.
impl Default for SctpSettings {
    fn default() -> Self {
        let config = SctpConfig::new(DtlsRole::Client);
        SctpSettings {
            max_message_size: config.max_message_size,
            mtu: config.mtu,
            receive_window: config.receive_window,
            max_buffered_amount: config.max_buffered_amount,
            max_mtu: config.max_mtu,
            snap: true,
            interleaving: true,
        }
    }
}

impl SctpSettings {
    /// The association's configuration once the DTLS role and the peer's
    /// `a=sctp-port` are known.
    pub(super) fn config(&self, role: DtlsRole, local_port: u16, remote_port: u16) -> SctpConfig {
        SctpConfig {
            local_port,
            remote_port,
            max_message_size: self.max_message_size,
            mtu: self.mtu,
            receive_window: self.receive_window,
            max_buffered_amount: self.max_buffered_amount,
            max_mtu: self.max_mtu,
            interleaving: self.interleaving,
            ..SctpConfig::new(role)
        }
    }
}

/// How a [`PeerConnection`](super::PeerConnection) is set up.
#[derive(Clone, Debug, Default)]
pub struct PeerConfig {
    /// W3C `iceServers`; hosts must be IP addresses (see
    /// [`IceServerUrl`](super::IceServerUrl)).
    pub ice_servers: Vec<IceServer>,
    /// W3C `iceTransportPolicy`.
    pub ice_transport_policy: TransportPolicy,
    /// W3C `bundlePolicy`: only `MaxBundle`.
    pub bundle_policy: BundlePolicy,
    /// W3C `certificates`: `None` generates an ECDSA P-256 one.
    pub certificate: Option<Certificate>,
    pub dtls: DtlsConfig,
    /// The DTLS role we take when we answer an `actpass` offer (RFC 8842
    /// §5): `None` is the client (`a=setup:active`), as browsers answer.
    pub answer_dtls_role: Option<crate::dtls::DtlsRole>,
    pub sctp: SctpSettings,
    /// Be an ICE-lite agent (RFC 8445 §2.5), as servers with public
    /// addresses are: host candidates only, no checks of our own, always
    /// controlled by a full peer; `a=ice-lite` in our descriptions.
    pub ice_lite: bool,
    /// RFC 7675 §5.1: how long without consent before the connection
    /// fails; for an ICE-lite agent, without a check or keepalive from
    /// the peer (a peer that went away). `None` is 30 s.
    pub ice_consent_timeout: Option<std::time::Duration>,
    /// The codecs we offer and accept, in order of preference (RTX
    /// entries included, RFC 4588); `None` is Chromium's list
    /// ([`natter::jsep::codec`](crate::jsep::codec)). A server that
    /// forwards one codec offers only it.
    pub audio_codecs: Option<Vec<Codec>>,
    pub video_codecs: Option<Vec<Codec>>,
    /// The RTP header extensions (RFC 8285) we offer and accept, with
    /// the ids we prefer; `None` is Chromium's list
    /// ([`natter::jsep::header_extension`](crate::jsep::header_extension)).
    pub audio_extensions: Option<Vec<Extmap>>,
    pub video_extensions: Option<Vec<Extmap>>,
    /// Our first ICE credentials (RFC 8839 §5.4), for an
    /// [`Endpoint`](crate::endpoint::Endpoint) or a server that must know
    /// the ufrag its checks will carry; `None` draws them at random.
    /// Restarts always draw new ones.
    pub ice_credentials: Option<IceCredentials>,
    /// RTP mode, for forwarding (an SFU): received RTP is handed out
    /// packet by packet ([`PeerConnection::poll_rtp`]) instead of as
    /// frames, and what we send is written as RTP
    /// ([`PeerConnection::write_rtp`]) instead of as frames; NACK/RTX,
    /// RTCP reports and transport-wide feedback stay in the stack, and
    /// keyframe requests are the application's. One setting for the
    /// whole connection: a forwarder forwards every track, and a
    /// sender's sequence numbers come from one source only.
    ///
    /// [`PeerConnection::poll_rtp`]: super::PeerConnection::poll_rtp
    /// [`PeerConnection::write_rtp`]: super::PeerConnection::write_rtp
    pub rtp_mode: bool,
    /// Seeds the ICE credentials, the SDP session id and the ICE agent's
    /// randomness, for tests that repeat exactly; `None` seeds from the
    /// OS. DTLS has its own, [`DtlsConfig::deterministic_seed`].
    pub seed: Option<u64>,
    /// The wall-clock time at the `now` the connection is made with,
    /// for the NTP timestamps of sender reports (RFC 3550 §6.4.1); the
    /// core reads no clock. `None` counts from the NTP epoch, which
    /// keeps the NTP/RTP mapping and round trips exact.
    pub wall_clock: Option<std::time::SystemTime>,
    /// The bitrates the congestion controller of what we send works
    /// within ([`PeerConnection::target_bitrate`](super::PeerConnection::target_bitrate)).
    pub congestion: crate::congestion::CongestionConfig,
}
