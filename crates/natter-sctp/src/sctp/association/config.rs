//! The association's settings, with RFC 9260 §16's defaults.

use std::time::Duration;

/// The receive window we advertise unless told otherwise: at least a
/// long fat path's bandwidth-delay product (50 MB/s at 100 ms RTT is
/// 5 MB; a smaller window caps throughput at window / RTT whatever the
/// cwnd). Memory is taken only as data is held, never up front.
pub const DEFAULT_RECEIVE_WINDOW: u32 = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// RFC 8261 §5: 5000 unless SDP's `a=sctp-port` says otherwise.
    pub local_port: u16,
    pub remote_port: u16,
    /// The receive window we advertise (a_rwnd), in bytes.
    pub receive_window: u32,
    /// Streams we offer to open (OS) and take (MIS), §5.1.1.
    pub outbound_streams: u16,
    pub inbound_streams: u16,
    /// The largest SCTP packet we send (RFC 8261 §5: the DTLS record
    /// payload minus overheads; 1200 fits any path). With
    /// `max_plpmtu`, RFC 8899's BASE_PLPMTU, and the size DATA chunks
    /// are cut to.
    pub max_packet_size: usize,
    /// RFC 8899 MAX_PLPMTU: probe for packets up to this size once
    /// established (DPLPMTUD, `pmtud.rs`). `None` (or no more than
    /// `max_packet_size`): packets stay at `max_packet_size`.
    pub max_plpmtu: Option<usize>,
    /// Announce RFC 9653 zero checksums (DTLS detects errors below us)
    /// and accept them.
    pub zero_checksum: bool,
    /// Offer I-DATA (RFC 8260) besides DATA.
    pub interleaving: bool,
    /// RFC 9260 §16: RTO.Initial 1 s, RTO.Min 1 s, RTO.Max 60 s.
    pub rto_initial: Duration,
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// RFC 9260 §16: Max.Init.Retransmits 8; `None`: never give up (the
    /// DTLS layer decides when the peer is gone).
    pub max_init_retransmits: Option<u32>,
    /// RFC 9260 §16: Association.Max.Retrans 10 and Path.Max.Retrans 5
    /// (§8.1, §8.2); past the smaller, the peer is unreachable and the
    /// association aborts. `None`: no limit of that kind.
    pub max_retransmits: Option<u32>,
    pub path_max_retransmits: Option<u32>,
    /// RFC 9260 §8.3, §16: HB.interval 30 s; an idle association sends
    /// a HEARTBEAT every RTO + this, measuring the RTT. `None`: never.
    pub heartbeat_interval: Option<Duration>,
    /// RFC 9260 §16: Valid.Cookie.Life 60 s.
    pub cookie_lifetime: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            local_port: 5000,
            remote_port: 5000,
            receive_window: DEFAULT_RECEIVE_WINDOW,
            outbound_streams: u16::MAX,
            inbound_streams: u16::MAX,
            max_packet_size: 1200,
            max_plpmtu: None,
            zero_checksum: false,
            interleaving: false,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_secs(1),
            rto_max: Duration::from_secs(60),
            max_init_retransmits: Some(8),
            max_retransmits: Some(10),
            heartbeat_interval: Some(Duration::from_secs(30)),
            path_max_retransmits: Some(5),
            cookie_lifetime: Duration::from_secs(60),
        }
    }
}
