//! RTP mode: the second media API beside frames, for forwarding (an
//! SFU). A receiver neither reorders nor depacketizes: each packet goes
//! to the application as it arrived, unprotected in place, routed to its
//! transceiver and simulcast layer, RTX unwrapped back into the packet
//! it repairs (RFC 4588 §4), and lent until the next datagram
//! ([`PeerConnection::poll_rtp`]). The application writes packets with
//! sequence numbers and timestamps of its own choosing
//! ([`PeerConnection::write_rtp`]); the stack gives them the sender's
//! SSRC and mid, keeps them to answer NACKs with RTX, and reports them
//! in sender reports. Reception statistics, NACKs, transport-wide
//! feedback and receiver reports go on as in frame mode; PLIs do not go
//! out by themselves: the application, which knows which layers anyone
//! watches, asks with [`PeerConnection::request_keyframe`] or
//! [`PeerConnection::request_layer_keyframe`].

use natter_rtp::payload::{DependencyDescriptor, DependencyStructure, PacketInfo, PayloadError, VideoCodec};
use natter_rtp::{AudioLevel, RtpPacket};

use super::receiver::Route;
use super::{PeerConnection, PeerError};
use crate::jsep::TransceiverId;
use crate::media::send::OutgoingRtp;
use crate::media::Format;

#[cfg(test)]
mod tests;

/// What RTP mode keeps of the latest datagram's packet until it is
/// polled; the packet itself stays in the media buffer it was
/// unprotected (or unwrapped) in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    route: Route,
    /// The extended sequence number (RFC 3550 Appendix A.1).
    sequence: u64,
    /// Unwrapped from RTX, in the RTX buffer.
    retransmission: bool,
}

/// A received RTP packet in RTP mode, lent until the next input. SRTP
/// is gone and RTX unwrapped: header and payload are those of the media
/// packet as its sender first sent it.
#[derive(Clone, Copy, Debug)]
pub struct ReceivedRtp<'a> {
    pub transceiver: TransceiverId,
    pub mid: &'a str,
    /// The simulcast layer (RFC 8852 §3.1 `RtpStreamId`), on a
    /// transceiver that receives simulcast.
    pub rid: Option<&'a str>,
    /// The negotiated format of its payload type.
    pub format: Format,
    /// It came as RTX (RFC 4588), repairing a loss.
    pub retransmission: bool,
    /// The sequence number extended past its wraps (RFC 3550 Appendix
    /// A.1): 65,536 more for each wrap since the source's first packet,
    /// so it orders the source's packets however late they come.
    pub extended_sequence_number: u64,
    packet: RtpPacket<'a>,
    audio_level_extension: Option<u8>,
    dependency_descriptor_extension: Option<u8>,
    /// The layer's latest dependency structure (AV1 RTP A.8.3).
    structure: Option<&'a DependencyStructure>,
}

impl<'a> ReceivedRtp<'a> {
    /// The whole packet, parsed.
    pub fn packet(&self) -> &RtpPacket<'a> {
        &self.packet
    }

    pub fn ssrc(&self) -> u32 {
        self.packet.ssrc()
    }

    pub fn sequence_number(&self) -> u16 {
        self.packet.sequence_number()
    }

    pub fn timestamp(&self) -> u32 {
        self.packet.timestamp()
    }

    pub fn marker(&self) -> bool {
        self.packet.marker()
    }

    pub fn payload_type(&self) -> u8 {
        self.packet.payload_type()
    }

    /// The payload without RTP padding; empty for a padding-only packet
    /// (a bandwidth probe that still takes a sequence number).
    pub fn payload(&self) -> &'a [u8] {
        self.packet.payload()
    }

    /// The header as received, extensions included.
    pub fn header(&self) -> &'a [u8] {
        &self.packet.as_bytes()[..self.packet.header_len()]
    }

    /// RFC 6464 §3: the audio level and the voice activity flag, when
    /// the extension was negotiated and the packet carries it.
    pub fn audio_level(&self) -> Option<AudioLevel> {
        self.packet.extension_value(self.audio_level_extension?)?.ok()
    }

    /// The dependency descriptor's value (AV1 RTP Appendix A), raw, as
    /// forwarded on.
    pub fn dependency_descriptor(&self) -> Option<&'a [u8]> {
        self.packet.extension(self.dependency_descriptor_extension?)
    }

    /// Where the packet stands in its video stream: whether it starts a
    /// keyframe (a place to switch layers) and its spatial and temporal
    /// layer, from the payload of its negotiated codec and its
    /// dependency descriptor (see [`VideoCodec::inspect`]). `None` for
    /// audio.
    pub fn inspect(&self) -> Option<Result<PacketInfo, PayloadError>> {
        let codec = video_codec(self.format)?;
        let descriptor = match self.dependency_descriptor().map(DependencyDescriptor::parse) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => return Some(Err(e)),
            None => None,
        };
        Some(codec.inspect(self.payload(), descriptor.as_ref(), self.structure))
    }
}

/// The video codec whose payload format `format` is.
fn video_codec(format: Format) -> Option<VideoCodec> {
    match format {
        Format::Opus => None,
        Format::Vp8 => Some(VideoCodec::Vp8),
        Format::Vp9 => Some(VideoCodec::Vp9),
        Format::H264 => Some(VideoCodec::H264),
        Format::Av1 => Some(VideoCodec::Av1),
    }
}

impl PeerConnection {
    /// RTP mode: the RTP packet the latest datagram carried, once (one
    /// datagram holds at most one SRTP packet). Call it after every
    /// [`PeerConnection::handle_receive`]; the packet is gone with the
    /// next datagram. Always `None` in frame mode, and for what is not
    /// media for the application: RTCP, malformed or unroutable packets
    /// (counted in [`MediaCounters`](super::MediaCounters)), duplicates
    /// of a sequence number that came before, RTX padding.
    pub fn poll_rtp(&mut self) -> Option<ReceivedRtp<'_>> {
        let pending = self.media.rtp_in.take()?;
        let media = &self.media;
        let data = if pending.retransmission {
            &media.rtx_buf
        } else {
            &media.recv
        };
        let packet = RtpPacket::parse(data).ok()?;
        let receiver = media.receivers.get(&pending.route.id)?;
        let layer = receiver.layers.get(pending.route.layer)?;
        let stream = layer.stream.as_ref()?;
        Some(ReceivedRtp {
            transceiver: pending.route.id,
            mid: &receiver.mid,
            rid: layer.rid.as_deref(),
            format: stream.format,
            retransmission: pending.retransmission,
            extended_sequence_number: pending.sequence,
            packet,
            audio_level_extension: receiver.audio_level_extension,
            dependency_descriptor_extension: receiver.dependency_descriptor_extension,
            structure: stream.structure.as_ref(),
        })
    }

    /// RTP mode: sends `packet` on the track of transceiver `id` (on its
    /// simulcast stream `rid`, as [`PeerConnection::send_frame_rid`]
    /// finds it; the first for `None`) with the stream's SSRC and
    /// negotiated header extensions; its sequence number and timestamp
    /// are the caller's, continuous per stream (RFC 3550 §5.1). The
    /// packet stays in the stream's history, which answers NACKs with
    /// RTX (RFC 4588). Fails
    /// with [`PeerError::NotSending`] until an exchange agreed that we
    /// send and DTLS has connected, and on a payload type the
    /// transceiver does not send ([`PeerConnection::send_payload_type`]).
    pub fn write_rtp(
        &mut self,
        id: TransceiverId,
        rid: Option<&str>,
        packet: &OutgoingRtp<'_>,
    ) -> Result<(), PeerError> {
        let now = self.now;
        let (layer, stream) = self.sender_for("write_rtp", true, id, rid)?;
        if packet.payload_type != stream.params().payload_type {
            return Err(PeerError::PayloadType {
                transceiver: id,
                payload_type: packet.payload_type,
            });
        }
        let seq = stream.write_rtp(now, packet)?;
        self.send_stored(now, (id, layer), seq, 1);
        Ok(())
    }

    /// The format and payload type transceiver `id` sends, once an
    /// exchange agreed on them: what [`OutgoingRtp::payload_type`]
    /// must be.
    pub fn send_payload_type(&self, id: TransceiverId) -> Option<(Format, u8)> {
        let params = self.media.senders.get(&id)?.streams.first()?.params();
        Some((params.format, params.payload_type))
    }

    /// Asks for a keyframe on one simulcast layer of transceiver `id`
    /// (a PLI for its SSRC, RFC 4585 §6.3.1): what an SFU does when a
    /// subscriber switches to that layer.
    pub fn request_layer_keyframe(&mut self, id: TransceiverId, rid: &str) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let receiver = self.media.receivers.get(&id).ok_or(PeerError::NotReceiving(id))?;
        let layer = (receiver.layers.iter()).position(|l| l.rid.as_deref() == Some(rid));
        let Some(layer) = layer else {
            return Err(PeerError::UnknownRid {
                transceiver: id,
                rid: rid.to_owned(),
            });
        };
        if !self.send_pli(id, layer) {
            return Err(PeerError::NotReceiving(id));
        }
        Ok(())
    }

    /// RTP mode: a layer's packet, counted and noted for NACKs, waits
    /// for [`PeerConnection::poll_rtp`]. Keeps the dependency structure
    /// its descriptor attaches, for the layers of later packets.
    pub(super) fn hold_rtp(&mut self, to: Route, packet: &RtpPacket<'_>, sequence: u64, retransmission: bool) {
        let media = &mut self.media;
        let Some(receiver) = media.receivers.get_mut(&to.id) else {
            return;
        };
        let descriptor = (receiver.dependency_descriptor_extension)
            .and_then(|id| packet.extension(id))
            .and_then(|value| DependencyDescriptor::parse(value).ok());
        let stream = receiver.layers.get_mut(to.layer).and_then(|l| l.stream.as_mut());
        if let (Some(structure), Some(stream)) = (descriptor.and_then(|d| d.structure), stream) {
            stream.structure = Some(DependencyStructure::from(&structure));
        }
        media.rtp_in = Some(Pending {
            route: to,
            sequence,
            retransmission,
        });
    }
}
