//! Media on the peer connection: transceivers' senders and receivers
//! over SRTP, and the RTCP that keeps them going.
//!
//! - Keys: the SRTP contexts come from DTLS once it connects (RFC 5764
//!   §4.2); RTP and RTCP share the bundle's one transport (RFC 8843,
//!   rtcp-mux RFC 5761, told apart by the packet type, §4).
//! - Sending: [`PeerConnection::send_frame`] packetizes a frame with the
//!   first codec the peer accepted ([`SendStream`]), protects each
//!   packet and hands it to ICE. A NACK (RFC 4585 §6.2.1) is answered
//!   from the stream's history with RTX (RFC 4588); PLI (RFC 4585
//!   §6.3.1) and FIR (RFC 5104 §4.3.1) become
//!   [`PeerEvent::KeyframeRequest`].
//! - Receiving: a packet finds its transceiver by SSRC (from `a=ssrc`,
//!   RFC 5576), else by the `sdes:mid` header extension (RFC 8843
//!   §9.2), else by a payload type that only one section receives. A
//!   transceiver receiving simulcast (RFC 8853) has one layer per RID,
//!   each an independent stream found by its `RtpStreamId` (RTX by its
//!   `RepairedRtpStreamId`, RFC 8852 §3); everything below is per
//!   layer ([`receiver`]). RTX is unwrapped back into the packet it
//!   repairs. Statistics
//!   ([`ReceiveStream`]) count each sequence number once, so that RTX
//!   probes of packets that came do not hide loss; NACKs
//!   ([`NackGenerator`]) and the rest see each packet the first time;
//!   a [`ReorderBuffer`] puts them in order for the depacketizer, whose
//!   frames become [`PeerEvent::MediaFrame`]. A PLI goes out when the
//!   decoder needs a keyframe: at the start and after a loss NACK did
//!   not repair.
//! - Reports: every second or so (randomized, RFC 3550 §6.2) one
//!   compound packet with a sender report per sending stream (or a
//!   receiver report), report blocks for every received stream, and our
//!   CNAME (§6.1). Feedback goes out at once, alone when reduced-size
//!   RTCP was negotiated (RFC 5506), else after an empty receiver
//!   report and the CNAME.
//! - Congestion control feedback: when the transport-wide sequence
//!   number extension was negotiated, every arrival is reported back
//!   about every 100 ms (draft-holmer-rmcat-transport-wide-cc-extensions-01
//!   §3.1), which is what Chromium's bandwidth estimator runs on. natter
//!   does not yet estimate bandwidth for what it sends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use natter_rtp::payload::RtpPayload;
use natter_rtp::rtcp::{
    Cname, Compound, CompoundWriter, NackBuilder, Pli, ReceiverReportBuilder, ReportBlock, RtcpEncode, RtcpPacket,
    SenderReportBuilder, TransportFeedbackBuilder,
};
use natter_rtp::{RtpHeader, RtpPacket, RtpWriter, TransportSequenceNumber};
use natter_sdp::Direction;
use natter_srtp::SrtpContext;
use rand::distributions::Alphanumeric;
use rand::Rng;

use super::event::{MediaFrame, PeerEvent};
use super::stats::{ReceiverStats, SenderStats};
use super::{PeerConnection, PeerError};
use crate::jsep::direction::{receives, sends};
use crate::jsep::{JsepError, LocalTrack, MediaKind, Negotiated, NegotiatedMedia, TransceiverId};
use crate::media::ntp::{from_short, middle_32};
use crate::media::twcc::FEEDBACK_INTERVAL;
use crate::media::{
    Arrival, Depacketizer, Format, NackGenerator, NtpClock, ReceiveStream, ReorderBuffer, SendParams, SendStream,
    TwccRecorder,
};
use natter_rtp::extension::{URI_MID, URI_TRANSPORT_WIDE_CC};
use receiver::{route, Incoming, Receiver, Route, Unrouted};

mod receiver;
#[cfg(test)]
mod tests;

/// The largest RTP packet we send, SRTP's tag included: what fits in a
/// 1280-byte IPv6 minimum MTU with IP, UDP and TURN framing around it.
const MAX_RTP_PACKET: usize = 1200;
/// SRTP and SRTCP add at most this much (an SRTCP index and a 16-byte
/// GCM tag).
const SRTP_OVERHEAD: usize = 20;
/// RFC 3550 §6.2 leaves the interval to the profile; browsers report
/// about once a second.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest a missing packet holds the ones after it back: enough for
/// a NACK and its retransmission on any path worth calling real-time.
const VIDEO_REORDER_WAIT: Duration = Duration::from_millis(150);
/// Audio is not repaired; only reordering is waited for.
const AUDIO_REORDER_WAIT: Duration = Duration::from_millis(30);
const REORDER_PACKETS: usize = 512;
/// The least time between two PLIs while a keyframe is awaited.
const PLI_INTERVAL: Duration = Duration::from_millis(500);
/// Report blocks in one report (RFC 3550 §6.4: a 5-bit count).
const MAX_REPORT_BLOCKS: usize = 31;

/// What the media layer knows across exchanges.
#[derive(Debug)]
pub(super) struct MediaState {
    /// `(local, remote)`: protect what we send, unprotect what we get.
    srtp: Option<(SrtpContext, SrtpContext)>,
    pub(super) ntp: NtpClock,
    senders: BTreeMap<TransceiverId, Sender>,
    receivers: BTreeMap<TransceiverId, Receiver>,
    /// The SSRC of our reports when we send nothing (RFC 3550 §8).
    rtcp_ssrc: u32,
    cname: String,
    /// Reduced-size RTCP was negotiated (RFC 5506).
    rtcp_rsize: bool,
    next_report: Option<Instant>,
    /// The transport-wide sequence number extension's id, when we
    /// receive it and send feedback for it.
    twcc_extension: Option<u8>,
    twcc: TwccRecorder,
    next_twcc: Option<Instant>,
    /// Where packets are unprotected and protected.
    buf: Vec<u8>,
    /// Where an RTX packet is unwrapped or written.
    rtx_buf: Vec<u8>,
    lost: Vec<u16>,
    pub(super) counters: MediaCounters,
}

/// What the media layer dropped, and why; and the transport-wide
/// feedback it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MediaCounters {
    /// SRTP or SRTCP that failed authentication or replay checks, or
    /// arrived before the keys.
    pub srtp_failed: u64,
    /// RTP for no receiving transceiver, or malformed.
    pub rtp_dropped: u64,
    /// RTP for a simulcast receiver without a RID it receives (RFC 8852
    /// §3.1), not counted in `rtp_dropped`.
    pub unknown_rid: u64,
    /// RTCP that did not parse.
    pub rtcp_dropped: u64,
    /// RTP and RTCP we could not send: no selected pair yet.
    pub unsent: u64,
    /// RTX without media (an original sequence number at most):
    /// bandwidth probes.
    pub padding_received: u64,
    /// Transport-wide congestion control feedback packets sent.
    pub twcc_feedback_sent: u64,
}

#[derive(Debug)]
struct Sender {
    stream: SendStream,
    /// The last exchange lets the track be sent. A track whose direction
    /// stopped sending keeps its stream, so that its sequence numbers and
    /// timestamps go on where they stopped when it sends again (RFC 3550
    /// §5.1).
    active: bool,
}

impl MediaState {
    pub(super) fn new(ntp: NtpClock, rtcp_ssrc: u32, cname: String) -> Self {
        MediaState {
            srtp: None,
            ntp,
            senders: BTreeMap::new(),
            receivers: BTreeMap::new(),
            rtcp_ssrc,
            cname,
            rtcp_rsize: false,
            next_report: None,
            twcc_extension: None,
            twcc: TwccRecorder::default(),
            next_twcc: None,
            buf: Vec::new(),
            rtx_buf: Vec::new(),
            lost: Vec::new(),
            counters: MediaCounters::default(),
        }
    }

    /// The earliest time media has work: a report, a NACK, a packet
    /// held for too long.
    pub(super) fn next_timeout(&self) -> Option<Instant> {
        let streams = self
            .receivers
            .values()
            .flat_map(|r| &r.layers)
            .filter_map(|l| l.stream.as_ref());
        let report = self.next_report.filter(|_| self.srtp.is_some());
        streams
            .flat_map(|s| [s.nack.deadline(), s.reorder.deadline()])
            .chain([report, self.next_twcc])
            .flatten()
            .min()
    }

    pub(super) fn sender_stats(&self) -> Vec<(TransceiverId, SenderStats)> {
        self.senders
            .iter()
            .map(|(&id, s)| {
                let params = s.stream.params();
                (
                    id,
                    SenderStats {
                        ssrc: params.ssrc,
                        format: params.format,
                        active: s.active,
                        counters: s.stream.counters,
                    },
                )
            })
            .collect()
    }

    pub(super) fn receiver_stats(&self) -> Vec<(TransceiverId, ReceiverStats)> {
        self.receivers
            .iter()
            .flat_map(|(&id, r)| r.layers.iter().map(move |l| (id, l.snapshot())))
            .collect()
    }
}

/// A random token of `len` letters and digits, for track and stream ids.
fn token(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(Alphanumeric).take(len).map(char::from).collect()
}

impl PeerConnection {
    // ----- application commands -----

    /// W3C `addTrack`: a track of `kind` that we send. Like W3C, it takes
    /// a transceiver of its kind that a remote offer made and that never
    /// sent (turning `recvonly` into `sendrecv`), else adds one; either
    /// way [`PeerEvent::NegotiationNeeded`] follows unless this is
    /// before our answer to that offer.
    pub fn add_track(&mut self, kind: MediaKind) -> Result<TransceiverId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let reusable = self.jsep.transceivers().iter().find(|t| {
            t.kind() == kind
                && t.track().is_none()
                && !t.is_stopping()
                && !t.current_direction().is_some_and(sends)
                && !self.media.senders.contains_key(&t.id())
        });
        let id = match reusable {
            Some(t) => {
                let (id, direction) = (t.id(), t.direction());
                let direction = if receives(direction) {
                    Direction::SendRecv
                } else {
                    Direction::SendOnly
                };
                self.jsep.set_direction(id, direction)?;
                id
            }
            None => self.jsep.add_transceiver(kind, Direction::SendRecv)?,
        };
        let mut ssrc = || loop {
            let ssrc: u32 = self.rng.gen();
            if ssrc != 0 {
                break ssrc;
            }
        };
        let track = LocalTrack {
            ssrc: ssrc(),
            rtx_ssrc: (kind == MediaKind::Video).then(ssrc),
            stream_id: Some(token(&mut self.rng, 16)),
            track_id: token(&mut self.rng, 16),
        };
        self.jsep.set_track(id, Some(track))?;
        self.update_negotiation_needed();
        Ok(id)
    }

    /// W3C `addTransceiver(kind, {direction})`: a transceiver that, with
    /// `recvonly`, only receives.
    pub fn add_transceiver(&mut self, kind: MediaKind, direction: Direction) -> Result<TransceiverId, PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let id = self.jsep.add_transceiver(kind, direction)?;
        self.update_negotiation_needed();
        Ok(id)
    }

    /// W3C `removeTrack`: transceiver `id` stops sending once the next
    /// exchange agrees (`sendrecv` becomes `recvonly`, `sendonly`
    /// `inactive`); [`PeerEvent::NegotiationNeeded`] follows. A
    /// transceiver without a track is left as it is.
    pub fn remove_track(&mut self, id: TransceiverId) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let transceiver = self.jsep.transceiver(id).ok_or(JsepError::UnknownTransceiver(id))?;
        if transceiver.track().is_none() {
            return Ok(());
        }
        let direction = match transceiver.direction() {
            Direction::SendRecv => Direction::RecvOnly,
            Direction::SendOnly => Direction::Inactive,
            other => other,
        };
        self.jsep.set_track(id, None)?;
        self.jsep.set_direction(id, direction)?;
        self.update_negotiation_needed();
        Ok(())
    }

    /// W3C `RTCRtpTransceiver.direction`: the direction transceiver `id`
    /// asks for in the next exchange (RFC 8829 §4.2.3).
    pub fn set_direction(&mut self, id: TransceiverId, direction: Direction) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.jsep.set_direction(id, direction)?;
        self.update_negotiation_needed();
        Ok(())
    }

    /// W3C `RTCRtpTransceiver.stop()` (RFC 8829 §4.2.1): it stops
    /// sending and receiving at once; the next offer rejects its section,
    /// and the transceiver is gone once answered.
    pub fn stop_transceiver(&mut self, id: TransceiverId) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        self.jsep.stop_transceiver(id)?;
        self.media.senders.remove(&id);
        self.media.receivers.remove(&id);
        self.update_negotiation_needed();
        Ok(())
    }

    /// The transceivers, in the order they were made.
    pub fn transceivers(&self) -> &[crate::jsep::Transceiver] {
        self.jsep.transceivers()
    }

    /// Sends one encoded frame on the track of transceiver `id`: VP8 and
    /// VP9 as the encoder wrote them, H.264 as an Annex B access unit, an
    /// AV1 temporal unit as IVF holds it, one Opus packet. `media_time` is its capture time from the start of the
    /// track; it sets the RTP timestamp. Fails with
    /// [`PeerError::NotSending`] until an exchange agreed that we send
    /// and DTLS has connected.
    pub fn send_frame(&mut self, id: TransceiverId, media_time: Duration, frame: &[u8]) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let now = self.now;
        let sender = (self.media.senders.get_mut(&id)).filter(|s| s.active && self.media.srtp.is_some());
        let Some(sender) = sender else {
            return Err(PeerError::NotSending(id));
        };
        let (first, count) = sender
            .stream
            .write_frame(now, media_time, frame, MAX_RTP_PACKET - SRTP_OVERHEAD)?;
        for i in 0..count {
            let media = &mut self.media;
            let Some(packet) = media
                .senders
                .get(&id)
                .and_then(|s| s.stream.packet(first.wrapping_add(i)))
            else {
                continue;
            };
            media.buf.clear();
            media.buf.extend_from_slice(packet);
            self.send_rtp(now);
        }
        self.media.next_report.get_or_insert(now);
        Ok(())
    }

    /// Asks the peer for a keyframe on each stream transceiver `id`
    /// receives, every simulcast layer (a PLI per SSRC, RFC 4585
    /// §6.3.1).
    pub fn request_keyframe(&mut self, id: TransceiverId) -> Result<(), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let receiver = self.media.receivers.get(&id);
        let layers = receiver.map_or(0, |r| r.layers.len());
        let mut asked = false;
        for layer in 0..layers {
            asked |= self.send_pli(id, layer);
        }
        if !asked {
            return Err(PeerError::NotReceiving(id));
        }
        Ok(())
    }

    // ----- configuration by the exchange and by DTLS -----

    /// Senders and receivers as an exchange left them.
    pub(super) fn apply_media(&mut self, negotiated: &Negotiated) {
        self.media.rtcp_rsize = negotiated.media.iter().any(|m| !m.rejected && m.rtcp_rsize);
        // One extension id for the bundle (RFC 8843 §9.1), on sections we
        // receive with a codec that asked for transport-cc feedback.
        self.media.twcc_extension = negotiated
            .media
            .iter()
            .filter(|m| !m.rejected && receives(m.direction))
            .filter(|m| {
                m.recv_codecs
                    .iter()
                    .any(|c| c.feedback.iter().any(|f| f.kind == "transport-cc"))
            })
            .find_map(|m| u8::try_from(m.extension_id(URI_TRANSPORT_WIDE_CC)?).ok());
        for media in &negotiated.media {
            let id = media.transceiver;
            let track = self.jsep.transceiver(id).and_then(|t| t.track()).cloned();
            match (send_params(media, track.as_ref()), self.media.senders.get_mut(&id)) {
                (Some(params), Some(sender)) if sender.stream.params().ssrc == params.ssrc => {
                    sender.stream.set_params(params);
                    sender.active = true;
                }
                (Some(params), _) => {
                    let stream = SendStream::new(params, self.rng.gen());
                    self.media.senders.insert(id, Sender { stream, active: true });
                }
                // The same track, in a direction that does not send: paused.
                (None, Some(sender))
                    if !media.rejected && track.as_ref().is_some_and(|t| t.ssrc == sender.stream.params().ssrc) =>
                {
                    sender.active = false;
                }
                (None, _) => {
                    self.media.senders.remove(&id);
                }
            }
            if media.rejected || !receives(media.direction) {
                self.media.receivers.remove(&id);
                continue;
            }
            let receiver = Receiver::new(media);
            match self.media.receivers.get_mut(&id) {
                // The streams go on; what the exchange says is renewed.
                Some(existing) => existing.renew(receiver),
                None => {
                    self.media.receivers.insert(id, receiver);
                    self.events.push_back(PeerEvent::Track {
                        transceiver: id,
                        mid: media.mid.clone(),
                        kind: media.kind,
                    });
                }
            }
        }
    }

    /// DTLS connected: the SRTP keys.
    pub(super) fn start_srtp(&mut self, local: SrtpContext, remote: SrtpContext) {
        self.media.srtp = Some((local, remote));
        self.media.next_report = Some(self.now + REPORT_INTERVAL / 2);
    }

    // ----- input -----

    /// An SRTP or SRTCP packet from the bundle transport.
    pub(super) fn receive_media(&mut self, now: Instant, data: &[u8]) {
        let media = &mut self.media;
        let Some((_, remote)) = media.srtp.as_mut() else {
            media.counters.srtp_failed += 1;
            return;
        };
        media.buf.clear();
        media.buf.extend_from_slice(data);
        let rtcp = natter_rtp::rtcp::is_rtcp(data);
        let unprotected = if rtcp {
            remote.unprotect_rtcp(&mut media.buf)
        } else {
            remote.unprotect_rtp(&mut media.buf)
        };
        match unprotected {
            Ok(len) => media.buf.truncate(len),
            Err(_) => return media.counters.srtp_failed += 1,
        }
        let packet = std::mem::take(&mut media.buf);
        if rtcp {
            self.receive_rtcp(now, &packet);
        } else {
            self.receive_rtp(now, &packet);
        }
        self.media.buf = packet;
    }

    fn receive_rtp(&mut self, now: Instant, data: &[u8]) {
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
            media.next_twcc.get_or_insert(now + FEEDBACK_INTERVAL);
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
        let Some(layer) = receiver.layers.get_mut(to.layer) else {
            return;
        };
        // Without media: a probe, or an original sequence number with
        // nothing to repair it with.
        let repair = layer.ssrc.zip(packet.payload().split_first_chunk::<2>());
        let Some((ssrc, (osn, payload))) = repair.filter(|(_, (_, payload))| !payload.is_empty()) else {
            return self.media.counters.padding_received += 1;
        };
        layer.stats.retransmitted_packets_received += 1;
        let header = RtpHeader {
            marker: packet.marker(),
            payload_type: apt,
            sequence_number: u16::from_be_bytes(*osn),
            timestamp: packet.timestamp(),
            ssrc,
            csrcs: &[],
        };
        let mut buf = std::mem::take(&mut self.media.rtx_buf);
        buf.clear();
        buf.resize(12 + payload.len(), 0);
        if let Ok(len) = RtpWriter::new(&mut buf, &header).and_then(|w| w.finish(payload, 0)) {
            self.receive_media_packet(now, to, &buf[..len], true);
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
            // A codec change restarts the depacketizer; statistics go on.
            stream.payload_type = pt;
            stream.format = format;
            stream.depacketizer = Depacketizer::new(format);
        }
        let stream = layer.stream.get_or_insert_with(|| Incoming {
            format,
            payload_type: pt,
            stats: ReceiveStream::new(packet.ssrc(), clock_rate),
            nack: NackGenerator::default(),
            reorder: ReorderBuffer::new(
                if format.is_video() {
                    VIDEO_REORDER_WAIT
                } else {
                    AUDIO_REORDER_WAIT
                },
                REORDER_PACKETS,
            ),
            depacketizer: Depacketizer::new(format),
        });
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
        let repairable = !nack || stream.nack.on_packet(now, seq);
        stream.reorder.push(now, seq, data);
        if !repairable {
            self.keyframe_needed(to, now, true);
        }
        self.deliver(to, now);
    }

    /// Hands a layer's packets that are in order (or waited long enough)
    /// to its depacketizer, and its frames to the application.
    fn deliver(&mut self, to: Route, now: Instant) {
        loop {
            let Some(receiver) = self.media.receivers.get_mut(&to.id) else {
                return;
            };
            let Some(layer) = receiver.layers.get_mut(to.layer) else {
                return;
            };
            let Some(stream) = layer.stream.as_mut() else { return };
            let Some((_, data)) = stream.reorder.pop(now) else {
                break;
            };
            let Ok(packet) = RtpPacket::parse(&data) else {
                stream.reorder.recycle(data);
                continue;
            };
            let format = stream.format;
            let mut need_keyframe = false;
            let mut frame = None;
            match stream.depacketizer.push(RtpPayload::from(&packet)) {
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
            let awaiting = stream.depacketizer.awaiting_keyframe();
            stream.reorder.recycle(data);
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

    fn receive_rtcp(&mut self, now: Instant, data: &[u8]) {
        let Ok(compound) = Compound::parse(data) else {
            return self.media.counters.rtcp_dropped += 1;
        };
        for packet in compound.packets() {
            let Ok(packet) = packet else {
                self.media.counters.rtcp_dropped += 1;
                continue;
            };
            match packet {
                RtcpPacket::SenderReport(sr) => {
                    let stream = self
                        .media
                        .receivers
                        .values_mut()
                        .flat_map(|r| &mut r.layers)
                        .filter_map(|l| l.stream.as_mut())
                        .find(|s| s.stats.ssrc() == sr.ssrc);
                    if let Some(stream) = stream {
                        stream
                            .stats
                            .on_sender_report(now, sr.sender_info.ntp_timestamp, sr.sender_info.rtp_timestamp);
                    }
                    self.on_report_blocks(now, sr.report_blocks());
                }
                RtcpPacket::ReceiverReport(rr) => self.on_report_blocks(now, rr.report_blocks()),
                RtcpPacket::Nack(nack) => {
                    let Some(id) = self.sender_of(nack.media_ssrc) else {
                        continue;
                    };
                    for seq in nack.lost() {
                        self.retransmit(now, id, seq);
                    }
                    if let Some(sender) = self.media.senders.get_mut(&id) {
                        sender.stream.counters.nack_count += 1;
                    }
                }
                RtcpPacket::Pli(pli) => {
                    if let Some(id) = self.sender_of(pli.media_ssrc) {
                        if let Some(sender) = self.media.senders.get_mut(&id) {
                            sender.stream.counters.pli_count += 1;
                        }
                        self.events.push_back(PeerEvent::KeyframeRequest(id));
                    }
                }
                RtcpPacket::Fir(fir) => {
                    for entry in fir.entries() {
                        if let Some(id) = self.sender_of(entry.ssrc) {
                            if let Some(sender) = self.media.senders.get_mut(&id) {
                                sender.stream.counters.fir_count += 1;
                            }
                            self.events.push_back(PeerEvent::KeyframeRequest(id));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn sender_of(&self, ssrc: u32) -> Option<TransceiverId> {
        self.media
            .senders
            .iter()
            .find(|(_, s)| s.stream.params().ssrc == ssrc)
            .map(|(&id, _)| id)
    }

    /// Report blocks about our streams: the round trip (RFC 3550 §6.4.1,
    /// A - LSR - DLSR) and the loss the peer saw.
    fn on_report_blocks(&mut self, now: Instant, blocks: impl Iterator<Item = ReportBlock>) {
        let arrival = middle_32(self.media.ntp.ntp(now));
        for block in blocks {
            let Some(id) = self.sender_of(block.ssrc) else { continue };
            let Some(sender) = self.media.senders.get_mut(&id) else {
                continue;
            };
            sender.stream.counters.remote_packets_lost = i64::from(block.cumulative_lost);
            if block.last_sr != 0 {
                let rtt = arrival
                    .wrapping_sub(block.last_sr)
                    .wrapping_sub(block.delay_since_last_sr);
                // A negative round trip (clock skew, a stale report) wraps.
                if rtt < 1 << 31 {
                    sender.stream.counters.round_trip_time = Some(from_short(rtt));
                }
            }
        }
    }

    // ----- output -----

    /// Sends what the media layer has due at `now`: NACKs, reports, and
    /// frames whose missing packets waited long enough.
    pub(super) fn media_timers(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
        }
        let layers: Vec<Route> = (self.media.receivers.iter())
            .flat_map(|(&id, r)| (0..r.layers.len()).map(move |layer| Route { id, layer, rtx: false }))
            .collect();
        let rtt = self
            .ice
            .as_ref()
            .and_then(|ice| ice.stats().selected_rtt)
            .unwrap_or(Duration::from_millis(100));
        for to in layers {
            self.deliver(to, now);
            let layer = self
                .media
                .receivers
                .get_mut(&to.id)
                .and_then(|r| r.layers.get_mut(to.layer));
            let Some(layer) = layer else {
                continue;
            };
            let (Some(ssrc), Some(stream)) = (layer.ssrc, layer.stream.as_mut()) else {
                continue;
            };
            let mut lost = std::mem::take(&mut self.media.lost);
            lost.clear();
            stream.nack.poll(now, rtt, &mut lost);
            if !lost.is_empty() {
                layer.stats.nack_count += 1;
                let sender = self.media.rtcp_ssrc;
                self.send_feedback(&NackBuilder::from_lost(sender, ssrc, &lost));
            }
            self.media.lost = lost;
        }
        if self.media.next_twcc.is_some_and(|t| t <= now) {
            self.send_twcc_feedback();
            self.media.next_twcc = self.media.twcc.has_pending().then_some(now + FEEDBACK_INTERVAL);
        }
        if self.media.next_report.is_some_and(|t| t <= now) {
            self.send_report(now);
            let factor = self.rng.gen_range(0.5..1.5);
            self.media.next_report = Some(now + REPORT_INTERVAL.mul_f64(factor));
        }
    }

    fn retransmit(&mut self, now: Instant, id: TransceiverId, seq: u16) {
        let media = &mut self.media;
        let Some(sender) = media.senders.get_mut(&id) else {
            return;
        };
        let mut buf = std::mem::take(&mut media.buf);
        if sender.stream.retransmit(seq, &mut buf) {
            media.buf = buf;
            self.send_rtp(now);
        } else {
            media.buf = buf;
        }
    }

    fn send_twcc_feedback(&mut self) {
        let Some(feedback) = self.media.twcc.feedback() else {
            return;
        };
        // The media source of a transport-wide report is any of the
        // peer's streams; libwebrtc reads none.
        let media_ssrc = (self.media.receivers.values().flat_map(|r| &r.layers))
            .find_map(|l| l.ssrc)
            .unwrap_or(0);
        let builder = TransportFeedbackBuilder {
            sender_ssrc: self.media.rtcp_ssrc,
            media_ssrc,
            fb_pkt_count: feedback.feedback_count,
            base_seq: Some(feedback.base_seq),
            received: &feedback.received,
        };
        self.media.counters.twcc_feedback_sent += 1;
        self.send_feedback(&builder);
    }

    /// A PLI for the source of a layer of transceiver `id`, if it has
    /// one yet; whether it had.
    fn send_pli(&mut self, id: TransceiverId, layer: usize) -> bool {
        let layer = self.media.receivers.get_mut(&id).and_then(|r| r.layers.get_mut(layer));
        let Some(layer) = layer else { return false };
        let Some(media_ssrc) = layer.ssrc else { return false };
        layer.last_pli = Some(self.now);
        layer.stats.pli_count += 1;
        let sender_ssrc = self.media.rtcp_ssrc;
        self.send_feedback(&Pli {
            sender_ssrc,
            media_ssrc,
        });
        true
    }

    /// A feedback message (RFC 4585 §3.1): alone with reduced-size RTCP,
    /// else in the smallest compound packet.
    fn send_feedback(&mut self, feedback: &dyn RtcpEncode) {
        let mut buf = std::mem::take(&mut self.media.buf);
        buf.clear();
        buf.resize(MAX_RTP_PACKET, 0);
        let mut writer = CompoundWriter::new(&mut buf);
        let ssrc = self.media.rtcp_ssrc;
        let written = if self.media.rtcp_rsize {
            writer.add(feedback)
        } else {
            let rr = ReceiverReportBuilder {
                ssrc,
                report_blocks: &[],
                profile_extension: &[],
            };
            let cname = Cname {
                ssrc,
                cname: &self.media.cname,
            };
            writer
                .add(&rr)
                .and_then(|()| writer.add(&cname))
                .and_then(|()| writer.add(feedback))
        };
        let len = writer.finish();
        if written.is_ok() {
            buf.truncate(len);
            self.media.buf = buf;
            self.send_rtcp();
        } else {
            self.media.buf = buf;
        }
    }

    /// RFC 3550 §6.4: sender reports for what we send, report blocks for
    /// what we receive, and the CNAME.
    fn send_report(&mut self, now: Instant) {
        let media = &mut self.media;
        let mut blocks: Vec<ReportBlock> = media
            .receivers
            .values_mut()
            .flat_map(|r| &mut r.layers)
            .filter_map(|l| l.stream.as_mut()?.stats.report_block(now))
            .collect();
        blocks.truncate(MAX_REPORT_BLOCKS);
        let sender_infos: Vec<_> = media
            .senders
            .values()
            .filter(|s| s.active)
            .filter_map(|s| Some((s.stream.params().ssrc, s.stream.sender_info(now, &media.ntp)?)))
            .collect();
        let mut buf = std::mem::take(&mut media.buf);
        buf.clear();
        buf.resize(MAX_RTP_PACKET, 0);
        let mut writer = CompoundWriter::new(&mut buf);
        let mut result = Ok(());
        let mut first_ssrc = media.rtcp_ssrc;
        for (i, (ssrc, info)) in sender_infos.iter().enumerate() {
            if i == 0 {
                first_ssrc = *ssrc;
            }
            let sr = SenderReportBuilder {
                ssrc: *ssrc,
                sender_info: *info,
                report_blocks: if i == 0 { &blocks } else { &[] },
                profile_extension: &[],
            };
            result = result.and_then(|()| writer.add(&sr));
        }
        if sender_infos.is_empty() {
            let rr = ReceiverReportBuilder {
                ssrc: media.rtcp_ssrc,
                report_blocks: &blocks,
                profile_extension: &[],
            };
            result = result.and_then(|()| writer.add(&rr));
        }
        let cname = Cname {
            ssrc: first_ssrc,
            cname: &media.cname,
        };
        result = result.and_then(|()| writer.add(&cname));
        let len = writer.finish();
        buf.truncate(len);
        media.buf = buf;
        if result.is_ok() {
            self.send_rtcp();
        }
    }

    /// Protects the RTP packet in the media buffer and sends it.
    fn send_rtp(&mut self, now: Instant) {
        let media = &mut self.media;
        let Some((local, _)) = media.srtp.as_mut() else { return };
        let len = media.buf.len();
        media.buf.resize(len + SRTP_OVERHEAD, 0);
        match local.protect_rtp(&mut media.buf, len) {
            Ok(n) => media.buf.truncate(n),
            Err(_) => return,
        }
        self.send_protected(now);
    }

    /// Protects the RTCP compound packet in the media buffer and sends it.
    fn send_rtcp(&mut self) {
        let media = &mut self.media;
        let Some((local, _)) = media.srtp.as_mut() else { return };
        let len = media.buf.len();
        media.buf.resize(len + SRTP_OVERHEAD, 0);
        match local.protect_rtcp(&mut media.buf, len) {
            Ok(n) => media.buf.truncate(n),
            Err(_) => return,
        }
        self.send_protected(self.now);
    }

    fn send_protected(&mut self, now: Instant) {
        let sent = (self.ice.as_mut()).is_some_and(|ice| self.transmits.send(ice, &self.media.buf, now));
        if !sent {
            self.media.counters.unsent += 1;
        }
    }
}

/// The parameters of what we send in section `media`, if we send: the
/// first codec the peer accepted that natter can packetize.
fn send_params(media: &NegotiatedMedia, track: Option<&LocalTrack>) -> Option<SendParams> {
    let track = track?;
    if media.rejected || !sends(media.direction) {
        return None;
    }
    let codec = media
        .send_codecs
        .iter()
        .find(|c| Format::from_name(&c.name).is_some())?;
    Some(SendParams {
        ssrc: track.ssrc,
        format: Format::from_name(&codec.name)?,
        payload_type: codec.payload_type,
        clock_rate: codec.clock_rate,
        rtx: track.rtx_ssrc.zip(codec.rtx_payload_type),
        mid: media
            .extension_id(URI_MID)
            .and_then(|id| u8::try_from(id).ok())
            .filter(|id| (1..=14).contains(id))
            .map(|id| (id, media.mid.clone())),
    })
}
