//! A `getStats()`-like snapshot (W3C webrtc-stats): the selected
//! candidate pair, the transport's counters, DTLS and data channels.

use std::time::Duration;

use natter_ice::candidate::Candidate;
use natter_ice::sped::{SpedState, SpedStats};
use natter_srtp::ProtectionProfile;

use super::channel::{DataChannelId, DataChannelState, DataChannelStats};
use super::media::MediaCounters;
use crate::dtls::{DtlsError, DtlsRole, DtlsState, DtlsVersion, Fingerprint};
use crate::jsep::TransceiverId;
use crate::media::{Format, SendCounters};

/// Everything [`PeerConnection::stats`](super::PeerConnection::stats)
/// reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStats {
    /// W3C `RTCIceCandidatePairStats` of the pair data flows on.
    pub selected_pair: Option<CandidatePairStats>,
    /// The ICE agent's own counters (checks, failures).
    pub ice: natter_ice::agent::Stats,
    /// W3C `RTCTransportStats` counters.
    pub transport: TransportStats,
    /// `None` until the DTLS transport starts.
    pub dtls: Option<DtlsStats>,
    /// W3C `RTCPeerConnectionStats.dataChannelsOpened`.
    pub data_channels_opened: u64,
    /// W3C `RTCPeerConnectionStats.dataChannelsClosed`.
    pub data_channels_closed: u64,
    /// The counters of every data channel there was, summed.
    pub data: DataChannelStats,
    /// The live channels, each with its state and counters.
    pub channels: Vec<(DataChannelId, DataChannelState, DataChannelStats)>,
    /// What the SCTP association dropped; `None` before it starts.
    pub sctp: Option<natter_sctp::Stats>,
    /// The association carries I-DATA (RFC 8260 §2.1): both INITs
    /// offered it ([`SctpSettings::interleaving`](super::SctpSettings::interleaving)).
    /// False until the association is up.
    pub sctp_interleaving: bool,
    /// draft-hancke-webrtc-sped: whether the DTLS handshake rode ICE's
    /// checks and what it carried; `None` when
    /// [`DtlsConfig::sped`](crate::dtls::DtlsConfig::sped) is off or ICE
    /// has not started.
    pub sped: Option<SpedReport>,
    /// W3C `RTCOutboundRtpStreamStats` of each sending transceiver.
    pub senders: Vec<(TransceiverId, SenderStats)>,
    /// W3C `RTCInboundRtpStreamStats` of each stream received: one per
    /// receiving transceiver, or one per simulcast layer (so a transceiver
    /// can appear up to three times).
    pub receivers: Vec<(TransceiverId, ReceiverStats)>,
    /// What the media layer dropped.
    pub media: MediaCounters,
}

/// SPED as the ICE agent saw it (draft-hancke-webrtc-sped §3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpedReport {
    /// `Complete` after a handshake that rode the checks (both sides
    /// offered it), `Off` when the peer did not speak SPED.
    pub state: SpedState,
    pub counters: SpedStats,
}

/// A stream we send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderStats {
    /// The simulcast stream's RID (RFC 8852 §3.1); `None` for a
    /// transceiver's one stream.
    pub rid: Option<String>,
    pub ssrc: u32,
    pub format: Format,
    /// W3C `RTCOutboundRtpStreamStats.active`: the last exchange lets
    /// the track be sent (not paused by its direction).
    pub active: bool,
    pub counters: SendCounters,
}

/// One stream a transceiver receives: its only one, or one simulcast
/// layer (RFC 8853).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// The layer's RID (RFC 8852 §3.1); `None` without simulcast.
    pub rid: Option<String>,
    /// `None` until a packet arrived.
    pub ssrc: Option<u32>,
    pub packets_received: u64,
    /// Payload bytes.
    pub bytes_received: u64,
    /// RFC 3550 §6.4.1 cumulative loss (late packets make up for it).
    pub packets_lost: i64,
    pub jitter: Duration,
    pub frames_received: u64,
    pub keyframes_received: u64,
    /// Frames given up on: incomplete or malformed.
    pub frames_dropped: u64,
    pub malformed_payloads: u64,
    /// The size of the latest keyframe.
    pub frame_size: Option<(u32, u32)>,
    /// RTX packets that repaired a loss (W3C `retransmittedPacketsReceived`).
    pub retransmitted_packets_received: u64,
    /// NACK packets we sent (W3C `nackCount`).
    pub nack_count: u64,
    pub pli_count: u64,
    /// The NTP and RTP timestamps of the latest sender report.
    pub last_sender_report: Option<(u64, u32)>,
}

/// The selected candidate pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidatePairStats {
    /// Its type, address and protocol.
    pub local: Candidate,
    pub remote: Candidate,
    /// W3C `currentRoundTripTime`: of the latest check on the pair.
    pub round_trip_time: Option<Duration>,
    /// W3C `availableOutgoingBitrate`, bits per second: the congestion
    /// controller's target for what we send
    /// ([`PeerConnection::target_bitrate`](super::PeerConnection::target_bitrate)).
    pub available_outgoing_bitrate: u64,
}

/// Datagrams through the ICE transport, STUN and TURN included, and what
/// was dropped where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    /// DTLS that arrived before the DTLS transport started, beyond the
    /// few held for it (the client retransmits it).
    pub dtls_dropped: u64,
    /// Neither STUN, DTLS nor RTP, or from an address ICE does not know.
    pub unknown_dropped: u64,
    /// DTLS datagrams dropped because ICE had no pair to send on for
    /// too long.
    pub unsent: u64,
}

/// W3C `RTCTransportStats`' DTLS part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtlsStats {
    pub state: DtlsState,
    pub role: DtlsRole,
    pub version: Option<DtlsVersion>,
    /// W3C `srtpCipher`, once connected.
    pub srtp_profile: Option<ProtectionProfile>,
    /// Our certificate's fingerprint (W3C `localCertificateId`'s
    /// `RTCCertificateStats`).
    pub local_fingerprint: Fingerprint,
    /// The peer certificate's fingerprint, once it matched (W3C
    /// `remoteCertificateId`'s).
    pub peer_fingerprint: Option<Fingerprint>,
    /// Why DTLS failed, once it did (W3C `RTCError` of the transport's
    /// `error` event); a received fatal alert is
    /// [`DtlsError::PeerAlert`] (W3C `receivedAlert`).
    pub error: Option<DtlsError>,
    /// W3C `RTCError.sentAlert`: the description of the fatal alert we
    /// sent when we failed the handshake (RFC 5246 §7.2; 42,
    /// `bad_certificate`, for a fingerprint mismatch).
    pub sent_alert: Option<u8>,
}
