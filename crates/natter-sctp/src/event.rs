//! What an [`SctpTransport`](crate::SctpTransport) tells its owner:
//! packets to send, its state, events and counters.

use std::ops::Deref;

use bytes::Bytes;

use crate::channel::{ChannelId, ChannelOptions, ChannelOrigin};

/// One SCTP packet to hand to DTLS. It derefs to its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram(pub(crate) Bytes);

impl Deref for Datagram {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Datagram {
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.to_vec()
    }
}

/// Where the association is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportState {
    /// The four-way handshake (RFC 9260 §5.1) is under way, or, on the
    /// DTLS server, has not begun.
    Connecting,
    Established,
    /// A SHUTDOWN exchange (RFC 9260 §9.2) is under way.
    ShuttingDown,
    Closed,
}

/// Why the association ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// SHUTDOWN completed (RFC 9260 §9.2): everything sent either way
    /// was delivered.
    Closed,
    /// The peer sent ABORT (RFC 9260 §9.1).
    Aborted,
    /// We aborted (a restart by the peer, or the application).
    LocalAbort,
    /// The peer's INIT ACK was malformed, or setup gave up (RFC 9260 §5.1).
    HandshakeFailed,
    /// Retransmissions went unanswered past their limit (RFC 9260 §8.1).
    TimedOut,
    /// The peer broke the protocol (RFC 9260 §6.2, §12.4); we sent ABORT.
    ProtocolViolation,
    /// The peer restarted the association (RFC 9260 §5.2.4): its
    /// channels are gone.
    Reset,
}

/// Something the application should hear about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The association is established; channels can carry messages.
    Connected,
    /// A channel opened: one we opened, or one the peer opened with
    /// DATA_CHANNEL_OPEN (W3C `ondatachannel`).
    ChannelOpen {
        id: ChannelId,
        label: String,
        protocol: String,
        options: ChannelOptions,
        origin: ChannelOrigin,
    },
    /// A whole message. An empty message (PPID 56 or 57) has empty `data`.
    Message {
        channel: ChannelId,
        data: Vec<u8>,
        is_text: bool,
    },
    /// A channel's buffered amount fell to its low-water threshold.
    BufferedAmountLow(ChannelId),
    /// Both streams of a channel were reset (RFC 8831 §6.7), by either
    /// side, or the association ended.
    ChannelClosed(ChannelId),
    /// The association ended; nothing more will be sent or received.
    Closed { reason: CloseReason },
}

/// Counters of what was dropped and sent again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets the association did not accept (bad checksum, truncated,
    /// wrong verification tag or ports, unexpected, RFC 9260 §8.5).
    pub packets_dropped: u64,
    /// User messages on streams with no channel, or with a PPID that is
    /// not WebRTC's.
    pub messages_dropped: u64,
    /// DCEP messages that did not parse, or came when not expected.
    pub dcep_errors: u64,
    /// DATA chunks sent again (fast retransmit or T3-rtx).
    pub chunks_retransmitted: u64,
    /// Chunks found lost by miss indications (RFC 9260 §7.2.4).
    pub fast_retransmits: u64,
    /// T3-rtx expiries (RFC 9260 §6.3.3) taken as loss: each a stall
    /// of one RTO.
    pub t3_expiries: u64,
    /// Zero window probes (RFC 9260 §6.1 A): T3-rtx expiries while the
    /// peer's SACKs said its window was shut (it did not read).
    pub zero_window_probes: u64,
}
