//! A `getStats()`-like snapshot (W3C webrtc-stats): the selected
//! candidate pair, the transport's counters, DTLS and data channels.

use std::time::Duration;

use natter_ice::candidate::Candidate;
use natter_srtp::ProtectionProfile;

use super::channel::{DataChannelId, DataChannelState, DataChannelStats};
use crate::dtls::{DtlsRole, DtlsState, DtlsVersion, Fingerprint};

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
}

/// The selected candidate pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidatePairStats {
    /// Its type, address and protocol.
    pub local: Candidate,
    pub remote: Candidate,
    /// W3C `currentRoundTripTime`: of the latest check on the pair.
    pub round_trip_time: Option<Duration>,
}

/// Datagrams through the ICE transport, STUN and TURN included, and what
/// was dropped where.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    /// RTP and RTCP (RFC 7983 §7: first byte 128..=191), which media
    /// will take; dropped for now.
    pub rtp_dropped: u64,
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
    /// The peer certificate's fingerprint, once it matched.
    pub peer_fingerprint: Option<Fingerprint>,
}
