//! Received RTP: SRTP unprotected in place, routed to its transceiver
//! and layer ([`receiver`](super::receiver)), RTX unwrapped (RFC 4588
//! §4), counted (RFC 3550 Appendix A) and noted for NACKs; then in
//! frame mode reordered and depacketized into
//! [`PeerEvent::MediaFrame`]s, in RTP mode lent to the application
//! ([`rtp_mode`](super::rtp_mode)).

use std::time::Instant;

use natter_rtp::payload::RtpPayload;
use natter_rtp::{RtpHeader, RtpPacket, TransportSequenceNumber};

use super::super::event::{MediaFrame, PeerEvent};
use super::super::PeerConnection;
use super::receiver::{route, Incoming, Route, Unrouted};
use super::PLI_INTERVAL;
use crate::media::send::write_header_like;
use crate::media::twcc::feedback_interval;
use crate::media::Arrival;

impl PeerConnection {
    /// An SRTP or SRTCP packet from the bundle transport.
    pub(in crate::peer) fn receive_media(&mut self, now: Instant, data: &[u8]) {
        let media = &mut self.media;
        media.rtp_in = None;
        let Some((_, remote)) = media.srtp.as_mut() else {
            media.counters.srtp_failed += 1;
            return;
        };
        media.recv.clear();
        media.recv.extend_from_slice(data);
        let rtcp = natter_rtp::rtcp::is_rtcp(data);
        let unprotected = if rtcp {
            remote.unprotect_rtcp(&mut media.recv)
        } else {
            remote.unprotect_rtp(&mut media.recv)
        };
        match unprotected {
            Ok(len) => media.recv.truncate(len),
            Err(_) => return media.counters.srtp_failed += 1,
        }
        self.receive_unprotected(now, rtcp);
    }

    /// The RTP or RTCP packet SRTP left in the receive buffer, where RTP
    /// mode lends it from.
    pub(super) fn receive_unprotected(&mut self, now: Instant, rtcp: bool) {
        let packet = std::mem::take(&mut self.media.recv);
        if rtcp {
            self.receive_rtcp(now, &packet);
        } else {
            self.receive_rtp(now, &packet);
        }
        self.media.recv = packet;
    }

    pub(super) fn receive_rtp(&mut self, now: Instant, data: &[u8]) {
        let Ok(packet) = RtpPacket::parse(data) else {
            return self.media.counters.rtp_dropped += 1;
        };
        // Every packet counts for congestion control, RTX and probes too.
        let media = &mut self.media;
        if let Some(Ok(TransportSequenceNumber(seq))) = media
            .twcc_extension
            .and_then(|id| packet.extension_value::<TransportSequenceNumber>(id))
        {
            media.twcc.on_packet(now, seq);
            let interval = feedback_interval(media.cc.target_bitrate());
            media.next_twcc.get_or_insert(now + interval);
        }
        let to = match route(&mut media.receivers, &packet) {
            Ok(to) => to,
            Err(Unrouted::NoReceiver) => return media.counters.rtp_dropped += 1,
            Err(Unrouted::UnknownRid) => return media.counters.unknown_rid += 1,
        };
        if !to.rtx {
            return self.receive_media_packet(now, to, data, false);
        }
        // RFC 4588 §4: the original sequence number, then its payload.
        let Some(receiver) = self.media.receivers.get_mut(&to.id) else {
            return;
        };
        let Some(&(_, apt)) = receiver.rtx.iter().find(|(pt, _)| *pt == packet.payload_type()) else {
            return self.media.counters.rtp_dropped += 1;
        };
        // RFC 8852 §3.2: the repair names its stream by RepairedRtpStreamId;
        // the packet it gives back, by RtpStreamId.
        let renamed = receiver.repaired_rid_extension.zip(receiver.rid_extension);
        let Some(layer) = receiver.layers.get_mut(to.layer) else {
            return;
        };
        // Without media: a probe, or an original sequence number with
        // nothing to repair it with.
        let repair = layer.ssrc.zip(packet.payload().split_first_chunk::<2>());
        let Some((ssrc, (osn, payload))) = repair.filter(|(_, (_, payload))| !payload.is_empty()) else {
            return self.media.counters.padding_received += 1;
        };
        let header = RtpHeader {
            marker: packet.marker(),
            payload_type: apt,
            sequence_number: u16::from_be_bytes(*osn),
            timestamp: packet.timestamp(),
            ssrc,
            csrcs: &[],
        };
        // The repair's extensions are the original's (RFC 4588 §4 leaves
        // them to the sender; libwebrtc and natter copy them), the RID
        // renamed back.
        let mut buf = std::mem::take(&mut self.media.rtx_buf);
        buf.clear();
        buf.resize(packet.header_len() + payload.len(), 0);
        if let Ok(n) = write_header_like(&mut buf, &header, &packet, renamed) {
            buf[n..n + payload.len()].copy_from_slice(payload);
            buf.truncate(n + payload.len());
            self.receive_media_packet(now, to, &buf, true);
        }
        self.media.rtx_buf = buf;
    }

    /// A media packet (or one RTX gave back) for a layer of a receiver.
    fn receive_media_packet(&mut self, now: Instant, to: Route, data: &[u8], retransmission: bool) {
        let Some(receiver) = self.media.receivers.get_mut(&to.id) else {
            return;
        };
        let Ok(packet) = RtpPacket::parse(data) else { return };
        let pt = packet.payload_type();
        let Some(&(_, format, clock_rate)) = receiver.formats.iter().find(|f| f.0 == pt) else {
            return self.media.counters.rtp_dropped += 1;
        };
        let nack = receiver.nack;
        let Some(layer) = receiver.layers.get_mut(to.layer) else {
            return;
        };
        if let Some(stream) = layer.stream.as_mut().filter(|s| s.payload_type != pt) {
            stream.set_format(pt, format);
        }
        let rtp_mode = self.media.rtp_mode;
        let stream =
            (layer.stream).get_or_insert_with(|| Incoming::new(packet.ssrc(), format, pt, clock_rate, rtp_mode));
        layer.stats.bytes_received += packet.payload().len() as u64;
        let arrival = match (retransmission, packet.payload().is_empty()) {
            (true, _) => Arrival::Retransmission,
            (false, true) => Arrival::Padding,
            (false, false) => Arrival::Media,
        };
        // A duplicate (an RTX probe, a repair that came twice) has
        // nothing more for the decoder.
        let Some(seq) = stream
            .stats
            .on_packet(now, packet.sequence_number(), packet.timestamp(), arrival)
        else {
            return;
        };
        // A repair counts once it filled a gap: an RTX copy of a packet
        // already here (a bandwidth probe) is a duplicate.
        layer.stats.retransmitted_packets_received += u64::from(retransmission);
        let repairable = !nack || stream.nack.on_packet(now, seq);
        let Some(frames) = stream.frames.as_mut() else {
            // RTP mode: the application takes it from here, and asks for
            // keyframes itself.
            return self.hold_rtp(to, &packet, seq, retransmission);
        };
        frames.reorder.push(now, seq, data);
        if !repairable {
            self.keyframe_needed(to, now, true);
        }
        self.deliver(to, now);
    }

    /// Hands a layer's packets that are in order (or waited long enough)
    /// to its depacketizer, and its frames to the application.
    pub(super) fn deliver(&mut self, to: Route, now: Instant) {
        loop {
            let Some(receiver) = self.media.receivers.get_mut(&to.id) else {
                return;
            };
            let Some(layer) = receiver.layers.get_mut(to.layer) else {
                return;
            };
            let Some(stream) = layer.stream.as_mut() else { return };
            let Some(frames) = stream.frames.as_mut() else { return };
            let Some((_, data)) = frames.reorder.pop(now) else {
                break;
            };
            let Ok(packet) = RtpPacket::parse(&data) else {
                frames.reorder.recycle(data);
                continue;
            };
            let format = stream.format;
            let mut need_keyframe = false;
            let mut frame = None;
            match frames.depacketizer.push(RtpPayload::from(&packet)) {
                Ok(out) => {
                    layer.stats.frames_dropped += u64::from(out.frames_dropped);
                    need_keyframe = out.keyframe_needed;
                    if let Some(f) = out.frame {
                        layer.stats.frames_received += 1;
                        layer.stats.keyframes_received += u64::from(f.keyframe && format.is_video());
                        if let Some(size) = f.size {
                            layer.stats.frame_size = Some(size);
                        }
                        frame = Some(MediaFrame {
                            transceiver: to.id,
                            rid: layer.rid.clone(),
                            format,
                            timestamp: f.timestamp,
                            keyframe: f.keyframe,
                            size: f.size,
                            data: f.data.to_vec(),
                        });
                    }
                }
                Err(_) => layer.stats.malformed_payloads += 1,
            }
            let awaiting = frames.depacketizer.awaiting_keyframe();
            frames.reorder.recycle(data);
            if let Some(frame) = frame {
                self.events.push_back(PeerEvent::MediaFrame(frame));
            }
            if need_keyframe || awaiting {
                self.keyframe_needed(to, now, need_keyframe);
            }
        }
    }

    /// A layer's decoder needs a keyframe: a PLI, at once when
    /// `now_please`, else at most every [`PLI_INTERVAL`].
    fn keyframe_needed(&mut self, to: Route, now: Instant, now_please: bool) {
        let layer = self.media.receivers.get(&to.id).and_then(|r| r.layers.get(to.layer));
        let Some(layer) = layer else {
            return;
        };
        if layer.last_pli.is_none_or(|t| now_please || now >= t + PLI_INTERVAL) {
            self.send_pli(to.id, to.layer);
        }
    }
}
