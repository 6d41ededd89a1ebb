//! Data channels (RFC 8831 §6): what a channel is, how it was opened,
//! and how its options map to DCEP (RFC 8832 §5.1) and to SCTP's
//! partial reliability (RFC 3758).

use std::fmt;

use crate::dcep::{ChannelType, DataChannelOpen, Priority, ReliabilityKind};
use crate::error::Error;

/// A data channel, named by its SCTP stream identifier (RFC 8831 §6.5:
/// one channel is one pair of incoming and outgoing streams with the
/// same id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a channel delivers messages, as `RTCDataChannelInit` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelOptions {
    /// In-order delivery (RFC 8831 §6.1).
    pub ordered: bool,
    /// At most this many retransmissions of each message (RFC 3758 via
    /// RFC 8831 §6.1); `Some(0)` sends each message once.
    pub max_retransmits: Option<u32>,
    /// Give up on a message this many milliseconds after it was first sent.
    pub max_packet_lifetime: Option<u32>,
    /// Carried in DCEP, and the stream's weight in the association's
    /// scheduler (RFC 8831 §6.4, RFC 8260 §3.6).
    pub priority: Priority,
    /// `Some(id)`: the application agreed the stream id out of band
    /// (`negotiated: true`), so no DCEP is sent (RFC 8832 §1).
    pub negotiated_id: Option<u16>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            ordered: true,
            max_retransmits: None,
            max_packet_lifetime: None,
            priority: Priority::NORMAL,
            negotiated_id: None,
        }
    }
}

impl ChannelOptions {
    /// Reliable and ordered: the default of `createDataChannel`.
    pub fn reliable() -> Self {
        Self::default()
    }

    /// Refuses options that ask for two limits at once (W3C WebRTC §6.2
    /// throws a TypeError).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.max_retransmits.is_some() && self.max_packet_lifetime.is_some() {
            return Err(Error::ConflictingReliability);
        }
        if self.negotiated_id == Some(u16::MAX) {
            return Err(Error::ReservedStreamId);
        }
        Ok(())
    }

    /// The DCEP channel type and reliability parameter (RFC 8832 §5.1).
    pub fn channel_type(&self) -> (ChannelType, u32) {
        let (kind, parameter) = match (self.max_retransmits, self.max_packet_lifetime) {
            (Some(n), _) => (ReliabilityKind::Rexmit, n),
            (None, Some(ms)) => (ReliabilityKind::Timed, ms),
            (None, None) => (ReliabilityKind::Reliable, 0),
        };
        (ChannelType::new(self.ordered, kind), parameter)
    }

    /// The options a peer's DATA_CHANNEL_OPEN asks for.
    pub fn from_open(open: &DataChannelOpen<'_>) -> Self {
        let t = open.channel_type;
        let (max_retransmits, max_packet_lifetime) = match t.reliability() {
            ReliabilityKind::Reliable => (None, None),
            ReliabilityKind::Rexmit => (Some(open.reliability_parameter), None),
            ReliabilityKind::Timed => (None, Some(open.reliability_parameter)),
        };
        ChannelOptions {
            ordered: t.is_ordered(),
            max_retransmits,
            max_packet_lifetime,
            priority: open.priority,
            negotiated_id: None,
        }
    }
}

/// Where a channel is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelState {
    /// Opened locally before the association was up: its stream (and
    /// its DATA_CHANNEL_OPEN) waits for the association.
    Connecting,
    /// Messages may be sent.
    Open,
    /// Its outgoing stream is being reset (RFC 8831 §6.7).
    Closing,
}

/// Who opened a channel, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelOrigin {
    /// This side sent DATA_CHANNEL_OPEN.
    Local,
    /// The peer sent DATA_CHANNEL_OPEN.
    Remote,
    /// Both sides agreed the id out of band; no DCEP.
    Negotiated,
}

/// An application message to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A string: PPID 51, or 56 when empty (RFC 8831 §6.6).
    Text(&'a str),
    /// Bytes: PPID 53, or 57 when empty.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}

/// What [`SctpTransport::channel`](crate::SctpTransport::channel) tells about a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: ChannelId,
    pub label: String,
    pub protocol: String,
    pub options: ChannelOptions,
    pub state: ChannelState,
    pub origin: ChannelOrigin,
    /// For a channel opened here with DCEP: whether the peer's
    /// DATA_CHANNEL_ACK, or any other message on the channel, has come
    /// (RFC 8832 §6). Always true for the other channels.
    pub acknowledged: bool,
}

/// The transport's record of one channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) label: String,
    pub(crate) protocol: String,
    pub(crate) options: ChannelOptions,
    pub(crate) state: ChannelState,
    pub(crate) origin: ChannelOrigin,
    pub(crate) acknowledged: bool,
    pub(crate) low_threshold: usize,
    /// Set by a send; a fall to the threshold after it is reported once.
    pub(crate) low_armed: bool,
}

impl Channel {
    pub(crate) fn info(&self, id: ChannelId) -> ChannelInfo {
        ChannelInfo {
            id,
            label: self.label.clone(),
            protocol: self.protocol.clone(),
            options: self.options,
            state: self.state,
            origin: self.origin,
            acknowledged: self.acknowledged,
        }
    }

    /// RFC 8832 §6: until the peer has acknowledged a channel we opened,
    /// its messages go ordered, so none can overtake DATA_CHANNEL_OPEN.
    pub(crate) fn send_unordered(&self) -> bool {
        !self.options.ordered && self.acknowledged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_to_channel_types_and_back() {
        let cases = [
            (ChannelOptions::default(), ChannelType::Reliable, 0),
            (
                ChannelOptions {
                    ordered: false,
                    max_retransmits: Some(0),
                    ..Default::default()
                },
                ChannelType::PartialReliableRexmitUnordered,
                0,
            ),
            (
                ChannelOptions {
                    max_packet_lifetime: Some(1500),
                    ..Default::default()
                },
                ChannelType::PartialReliableTimed,
                1500,
            ),
        ];
        for (options, t, p) in cases {
            assert_eq!(options.channel_type(), (t, p));
            let open = DataChannelOpen {
                channel_type: t,
                priority: options.priority,
                reliability_parameter: p,
                label: "",
                protocol: "",
            };
            assert_eq!(ChannelOptions::from_open(&open), options);
        }
    }

    #[test]
    fn two_limits_are_refused() {
        let o = ChannelOptions {
            max_retransmits: Some(1),
            max_packet_lifetime: Some(1),
            ..Default::default()
        };
        assert_eq!(o.validate(), Err(Error::ConflictingReliability));
    }
}
