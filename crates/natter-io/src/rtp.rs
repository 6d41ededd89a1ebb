//! RTP mode on the async API (natter's second media API, for
//! forwarding): a connection made with
//! [`Endpoint::connect_rtp`](crate::Endpoint::connect_rtp) hands every
//! RTP packet it receives to the application on a channel of its own,
//! as it arrived (unprotected, RTX unwrapped, neither reordered nor
//! depacketized), and [`Track::write_rtp`](crate::Track::write_rtp)
//! sends packets whose sequence numbers and timestamps the application
//! chose. NACK/RTX, reports and transport-wide feedback stay in the
//! stack (see [`natter::PeerConnection::poll_rtp`]).
//!
//! The packets are copies of natter's borrowed [`ReceivedRtp`]: an
//! application that forwards at scale runs the sans-IO
//! [`natter::endpoint::Endpoint`] itself and copies nothing.

use natter::peer::{Format, OutgoingRtp, ReceivedRtp, TransceiverId};
use natter_rtp::payload::PacketInfo;
use natter_rtp::AudioLevel;

/// Packets that wait for the application, per connection; past this the
/// newest are dropped (late media is worth less than the next packet)
/// and counted in the log.
pub(crate) const RTP_CAPACITY: usize = 1024;

/// A received RTP packet (see [`ReceivedRtp`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub transceiver: TransceiverId,
    /// The simulcast layer (RFC 8852 §3.1), on a transceiver that
    /// receives simulcast.
    pub rid: Option<String>,
    /// The negotiated format of its payload type.
    pub format: Format,
    /// It came as RTX (RFC 4588), repairing a loss.
    pub retransmission: bool,
    pub ssrc: u32,
    pub sequence_number: u16,
    /// The sequence number extended past its wraps (RFC 3550 Appendix A.1).
    pub extended_sequence_number: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_type: u8,
    /// RFC 6464, when negotiated and present.
    pub audio_level: Option<AudioLevel>,
    /// The dependency descriptor's raw value (AV1 RTP Appendix A).
    pub dependency_descriptor: Option<Vec<u8>>,
    /// Where a video packet stands (keyframe start, layer: see
    /// [`ReceivedRtp::inspect`]); `None` for audio and for payloads that
    /// did not parse.
    pub info: Option<PacketInfo>,
    /// The payload, without RTP padding.
    pub payload: Vec<u8>,
}

impl From<&ReceivedRtp<'_>> for RtpPacket {
    fn from(packet: &ReceivedRtp<'_>) -> Self {
        RtpPacket {
            transceiver: packet.transceiver,
            rid: packet.rid.map(str::to_owned),
            format: packet.format,
            retransmission: packet.retransmission,
            ssrc: packet.ssrc(),
            sequence_number: packet.sequence_number(),
            extended_sequence_number: packet.extended_sequence_number,
            timestamp: packet.timestamp(),
            marker: packet.marker(),
            payload_type: packet.payload_type(),
            audio_level: packet.audio_level(),
            dependency_descriptor: packet.dependency_descriptor().map(<[u8]>::to_vec),
            info: packet.inspect().and_then(Result::ok),
            payload: packet.payload().to_vec(),
        }
    }
}

/// An RTP packet for [`Track::write_rtp`](crate::Track::write_rtp):
/// natter's [`OutgoingRtp`], owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingPacket {
    /// The sending transceiver's negotiated payload type
    /// ([`Track::send_payload_type`](crate::Track::send_payload_type)).
    pub payload_type: u8,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
    pub audio_level: Option<AudioLevel>,
    pub dependency_descriptor: Option<Vec<u8>>,
}

impl OutgoingPacket {
    /// What `received` carries, to forward: its payload and extensions
    /// (moved, not copied), with the caller's header fields still to set.
    pub fn forwarding(received: RtpPacket) -> Self {
        OutgoingPacket {
            payload_type: received.payload_type,
            sequence_number: received.sequence_number,
            timestamp: received.timestamp,
            marker: received.marker,
            payload: received.payload,
            audio_level: received.audio_level,
            dependency_descriptor: received.dependency_descriptor,
        }
    }

    pub(crate) fn as_outgoing(&self) -> OutgoingRtp<'_> {
        OutgoingRtp {
            payload_type: self.payload_type,
            sequence_number: self.sequence_number,
            timestamp: self.timestamp,
            marker: self.marker,
            payload: &self.payload,
            audio_level: self.audio_level,
            dependency_descriptor: self.dependency_descriptor.as_deref(),
        }
    }
}
