//! Media on the peer connection: transceivers' senders and receivers
//! over SRTP, and the RTCP that keeps them going.
//!
//! - Keys: the SRTP contexts come from DTLS once it connects (RFC 5764
//!   §4.2); RTP and RTCP share the bundle's one transport (RFC 8843,
//!   rtcp-mux RFC 5761, told apart by the packet type, §4).
//! - Sending: [`PeerConnection::send_frame`] packetizes a frame with the
//!   first codec the peer accepted ([`SendStream`]), protects each
//!   packet and hands it to ICE. A simulcast track (RFC 8853) has one
//!   stream per RID the peer took, each with its own SSRC and RTX SSRC
//!   and its RID on every packet (RFC 8852), sent with
//!   [`PeerConnection::send_frame_rid`]; everything below is per stream. A NACK (RFC 4585 §6.2.1) is answered
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
//!   §3.1), which is what Chromium's bandwidth estimator runs on. What
//!   we send carries the extension too when the peer took it (§2): one
//!   counter for the connection numbers each packet as it leaves, RTX
//!   included, and the [`CongestionController`] matches the peer's
//!   feedback (and REMB, and the round trip of report blocks) to it,
//!   turning it into [`PeerConnection::target_bitrate`] and
//!   [`PeerEvent::TargetBitrate`](super::PeerEvent::TargetBitrate).
//! - Pacing, when [`CongestionConfig::pace`](crate::congestion::CongestionConfig::pace)
//!   asks for it (off by default for now):
//!   media, RTX and audio wait in the controller's pacer as a
//!   [`Paced`] handle into their stream's history and leave at
//!   [`PACING_FACTOR`](crate::congestion::pacer::PACING_FACTOR) times
//!   the target (draft-ietf-rmcat-gcc-02 §4), audio first, then
//!   retransmissions, then video, on
//!   [`Timer::Congestion`](super::Timer::Congestion) and
//!   [`PeerConnection::poll_transmit`]. A probe cluster's padding is an
//!   RTX copy of the latest video packet (RFC 4588; what libwebrtc
//!   sends), else padding-only packets (RFC 3550 §5.1, P bit) on the
//!   video stream's RTX SSRC, or without RTX on its own SSRC (never in
//!   RTP mode), each numbered so that the feedback measures it.
//!   Unpaced, packets leave at once.
//! - RTP mode ([`PeerConfig::rtp_mode`](super::PeerConfig::rtp_mode)):
//!   packets instead of frames both ways, for forwarding ([`rtp_mode`]).
//!
//! Here: the state, sending frames, the timers, protecting what goes
//! out. Beside: the transceiver calls (`transceivers.rs`), what an
//! exchange and DTLS set up (`negotiation.rs`), received RTP
//! (`incoming.rs`) and its routing (`receiver.rs`), RTCP in and out
//! (`rtcp.rs`), RTP mode (`rtp_mode.rs`).

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};
use std::time::{Duration, Instant};

use natter_rtp::rtcp::NackBuilder;
use natter_srtp::SrtpContext;
use rand::Rng;

use super::event::PeerEvent;
use super::stats::{ReceiverStats, SenderStats};
use super::{PeerConnection, PeerError};
use crate::congestion::{CongestionController, CongestionEvent, PacedPacket, PacketKind, QueuedPacket, SentPacket};
use crate::jsep::TransceiverId;
use crate::media::send::set_transport_seq;
use crate::media::twcc::feedback_interval;
use crate::media::{NtpClock, SendStream, TwccRecorder};
use receiver::{Receiver, Route};
pub use rtp_mode::ReceivedRtp;

mod incoming;
mod negotiation;
mod receiver;
mod rtcp;
mod rtp_mode;
#[cfg(test)]
mod tests;
mod transceivers;

/// The largest RTP packet we send, SRTP's tag included: what fits in a
/// 1280-byte IPv6 minimum MTU with IP, UDP and TURN framing around it.
const MAX_RTP_PACKET: usize = 1200;
/// SRTP and SRTCP add at most this much (an SRTCP index and a 16-byte
/// GCM tag).
const SRTP_OVERHEAD: usize = 20;
/// RFC 3550 §6.2 leaves the interval to the profile; browsers report
/// about once a second.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
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
    /// Congestion control of what we send, its pacer holding handles
    /// into the send streams' histories.
    cc: CongestionController<Paced>,
    /// Send through the pacer ([`CongestionConfig::pace`](crate::congestion::CongestionConfig::pace)).
    pace: bool,
    /// The latest video packet sent with a transport-wide sequence
    /// number on a stream with RTX: what a probe's padding copies.
    probe_source: Option<Paced>,
    /// The next transport-wide sequence number we send, one counter for
    /// the bundle (draft-holmer-rmcat-transport-wide-cc-extensions-01
    /// §2).
    transport_seq: u16,
    /// Where packets we send are protected.
    buf: Vec<u8>,
    /// Where a received packet is unprotected, in place.
    recv: Vec<u8>,
    /// Where a received RTX packet is unwrapped.
    rtx_buf: Vec<u8>,
    /// RTP mode ([`PeerConfig::rtp_mode`](super::PeerConfig::rtp_mode)).
    rtp_mode: bool,
    /// RTP mode: the packet of the latest datagram, not yet polled.
    rtp_in: Option<rtp_mode::Pending>,
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
    /// RTP packets sent with a transport-wide sequence number, which
    /// are the numbers sent so far (draft-holmer-rmcat-transport-wide-cc-extensions-01
    /// §2: consecutive, from zero).
    pub transport_numbered: u64,
    /// Probe padding sent (RTX copies or padding-only packets), counted
    /// in `transport_numbered` and in no stream's counters.
    pub padding_sent: u64,
    /// Packets that left their stream's history (512 packets) while they
    /// waited in the pacer, and were not sent.
    pub pacer_expired: u64,
    /// NACKed packets not repaired: a repair of the packet was queued
    /// or sent less than a round trip ago, or repairs took the target
    /// bitrate of the last second.
    pub repairs_held: u64,
    /// NACKed packets not repaired because the stream's send history
    /// ([`HISTORY`](crate::media::send::HISTORY) packets) no longer holds
    /// them, or never did: the repair RFC 4588 §4 asks for is
    /// impossible, and the NACK cost one lookup.
    pub repairs_missed: u64,
}

/// A packet waiting in the pacer, by where it is kept: sequence number
/// `seq` of the history of stream `layer` of transceiver `id`, sent as
/// it is or (`rtx`) as its RTX repair, written when it leaves. The
/// queue holds no bytes, so queueing allocates nothing once the
/// pacer's queues have grown to their working size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Paced {
    pub(super) id: TransceiverId,
    pub(super) layer: usize,
    pub(super) seq: u16,
    pub(super) rtx: bool,
}

#[derive(Debug)]
struct Sender {
    /// One stream, or one per simulcast RID the peer took, in our order
    /// (RFC 8853 §5.2).
    streams: Vec<SendStream>,
    /// The last exchange lets the track be sent. A track whose direction
    /// stopped sending keeps its stream, so that its sequence numbers and
    /// timestamps go on where they stopped when it sends again (RFC 3550
    /// §5.1).
    active: bool,
}

impl MediaState {
    pub(super) fn new(
        ntp: NtpClock,
        rtcp_ssrc: u32,
        cname: String,
        rtp_mode: bool,
        cc: CongestionController<Paced>,
        pace: bool,
    ) -> Self {
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
            cc,
            pace,
            probe_source: None,
            transport_seq: 0,
            buf: Vec::new(),
            recv: Vec::new(),
            rtx_buf: Vec::new(),
            rtp_mode,
            rtp_in: None,
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
            .flat_map(|s| [s.nack.deadline(), s.frames.as_ref().and_then(|f| f.reorder.deadline())])
            .chain([report, self.next_twcc])
            .flatten()
            .min()
    }

    /// When the congestion controller (its pacer, its periodic work)
    /// next has work: only once SRTP is up and we send media, paced or
    /// with transport-wide sequence numbers, so that a connection that
    /// sends none (data channels only) never wakes up for it.
    pub(super) fn congestion_timeout(&self) -> Option<Instant> {
        let mut streams = self.senders.values().flat_map(|s| &s.streams);
        let sends = if self.pace {
            streams.next().is_some()
        } else {
            streams.any(|s| s.params().transport_cc.is_some())
        };
        self.cc.poll_timeout().filter(|_| self.srtp.is_some() && sends)
    }

    /// Whether what we send goes through the pacer.
    fn paces(&self) -> bool {
        self.pace
    }

    /// Stream `layer` of what transceiver `id` sends.
    fn send_stream(&mut self, (id, layer): (TransceiverId, usize)) -> Option<&mut SendStream> {
        self.senders.get_mut(&id)?.streams.get_mut(layer)
    }

    pub(super) fn sender_stats(&self) -> Vec<(TransceiverId, SenderStats)> {
        self.senders
            .iter()
            .flat_map(|(&id, s)| {
                s.streams.iter().map(move |stream| {
                    let params = stream.params();
                    (
                        id,
                        SenderStats {
                            rid: params.rid().map(str::to_owned),
                            ssrc: params.ssrc,
                            format: params.format,
                            active: s.active,
                            counters: stream.counters,
                        },
                    )
                })
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

impl PeerConnection {
    // ----- application commands (transceivers: `transceivers.rs`) -----

    /// Sends one encoded frame on the track of transceiver `id`: VP8 and
    /// VP9 as the encoder wrote them, H.264 as an Annex B access unit, an
    /// AV1 temporal unit as IVF holds it, one Opus packet. `media_time` is its capture time from the start of the
    /// track; it sets the RTP timestamp. Fails with
    /// [`PeerError::NotSending`] until an exchange agreed that we send
    /// and DTLS has connected. On a simulcast track it sends the first
    /// stream.
    pub fn send_frame(&mut self, id: TransceiverId, media_time: Duration, frame: &[u8]) -> Result<(), PeerError> {
        self.send_stream_frame(id, None, media_time, frame)
    }

    /// Sends one encoded frame, as [`PeerConnection::send_frame`] does,
    /// on the simulcast stream `rid` of transceiver `id`
    /// ([`PeerConnection::add_simulcast_track`], RFC 8853). When the peer
    /// took no simulcast, the first RID is sent as the one stream (W3C
    /// keeps the first encoding); a RID not sent fails with
    /// [`PeerError::UnknownRid`].
    pub fn send_frame_rid(
        &mut self,
        id: TransceiverId,
        rid: &str,
        media_time: Duration,
        frame: &[u8],
    ) -> Result<(), PeerError> {
        self.send_stream_frame(id, Some(rid), media_time, frame)
    }

    fn send_stream_frame(
        &mut self,
        id: TransceiverId,
        rid: Option<&str>,
        media_time: Duration,
        frame: &[u8],
    ) -> Result<(), PeerError> {
        let now = self.now;
        let (layer, stream) = self.sender_for("send_frame", false, id, rid)?;
        let (first, count) = stream.write_frame(now, media_time, frame, MAX_RTP_PACKET - SRTP_OVERHEAD)?;
        self.send_stored(now, (id, layer), first, count);
        Ok(())
    }

    /// The stream of transceiver `id` that `rid` names (the first for
    /// `None`, as [`PeerConnection::send_frame_rid`] says) and its index,
    /// for `call` of the frame API or (with `rtp_mode`) of RTP mode: the
    /// connection is open, in that mode, and sends on `id`.
    fn sender_for(
        &mut self,
        call: &'static str,
        rtp_mode: bool,
        id: TransceiverId,
        rid: Option<&str>,
    ) -> Result<(usize, &mut SendStream), PeerError> {
        if self.closed {
            return Err(PeerError::Closed);
        }
        let media = &mut self.media;
        if media.rtp_mode != rtp_mode {
            let rtp_mode = media.rtp_mode;
            return Err(PeerError::MediaApi { call, rtp_mode });
        }
        let srtp = media.srtp.is_some();
        let sender = media.senders.get_mut(&id).filter(|s| s.active && srtp);
        let sender = sender.ok_or(PeerError::NotSending(id))?;
        let layer = match rid {
            None => 0,
            Some(rid) => {
                let first = self.jsep.transceiver(id).and_then(|t| t.send_rids().first());
                (sender.streams.iter())
                    .position(|s| match s.params().rid() {
                        Some(sent) => sent == rid,
                        None => first.is_some_and(|f| f == rid),
                    })
                    .ok_or_else(|| PeerError::UnknownRid {
                        transceiver: id,
                        rid: rid.to_owned(),
                    })?
            }
        };
        let stream = sender.streams.get_mut(layer).ok_or(PeerError::NotSending(id))?;
        Ok((layer, stream))
    }

    /// Sends `count` packets of the history of stream `layer` of
    /// transceiver `id` from sequence number `first` on: through the
    /// pacer when we pace, else at once.
    fn send_stored(&mut self, now: Instant, (id, layer): (TransceiverId, usize), first: u16, count: u16) {
        for i in 0..count {
            let paced = Paced {
                id,
                layer,
                seq: first.wrapping_add(i),
                rtx: false,
            };
            self.send_or_queue(now, paced);
        }
        self.release_paced(now);
        self.media.next_report.get_or_insert(now);
    }

    /// Queues `paced` in the pacer when we pace, else sends it now. A
    /// repair goes only when its packet is due one
    /// ([`SendStream::repair_due`]) and the repairs' rate allows it
    /// ([`CongestionController::allow_retransmission`]).
    pub(super) fn send_or_queue(&mut self, now: Instant, paced: Paced) {
        let media = &mut self.media;
        let rtt = media.cc.rtt().unwrap_or_default();
        let stream = (media.senders.get_mut(&paced.id)).and_then(|s| s.streams.get_mut(paced.layer));
        let Some(stream) = stream else { return };
        let Some(packet) = stream.packet(paced.seq) else {
            if paced.rtx {
                media.counters.repairs_missed += 1;
            }
            return;
        };
        // RTX adds the original sequence number (RFC 4588 §4).
        let size = packet.len() + SRTP_OVERHEAD + if paced.rtx { 2 } else { 0 };
        if paced.rtx {
            if !(stream.repair_due(paced.seq, now, rtt) && media.cc.allow_retransmission(now, size)) {
                media.counters.repairs_held += 1;
                return;
            }
            stream.on_repair_queued(paced.seq);
        }
        if !media.pace {
            return self.send_paced(now, paced, None);
        }
        let (_, kind) = sent_as(stream, paced.rtx);
        media.cc.push(
            now,
            QueuedPacket {
                handle: paced,
                size,
                kind,
            },
        );
    }

    /// Sends what the pacer lets go at `now`: queued packets, and the
    /// padding a probe cluster asks for.
    pub(super) fn release_paced(&mut self, now: Instant) {
        if self.media.srtp.is_none() || !self.media.paces() {
            return;
        }
        while let Some(paced) = self.media.cc.poll_send(now) {
            match paced {
                PacedPacket::Media {
                    handle, probe_cluster, ..
                } => self.send_paced(now, handle, probe_cluster),
                PacedPacket::Padding { size, probe_cluster } => self.send_padding(now, size, probe_cluster),
            }
        }
    }

    /// Writes the packet `paced` names into the media buffer (its RTX
    /// repair if so) and sends it.
    fn send_paced(&mut self, now: Instant, paced: Paced, probe_cluster: Option<u32>) {
        let media = &mut self.media;
        let stream = (media.senders.get_mut(&paced.id)).and_then(|s| s.streams.get_mut(paced.layer));
        let Some(stream) = stream else { return };
        if paced.rtx {
            if !stream.retransmit(paced.seq, &mut media.buf) {
                return;
            }
        } else {
            let Some(packet) = stream.packet(paced.seq) else {
                media.counters.pacer_expired += 1;
                return;
            };
            media.buf.clear();
            media.buf.extend_from_slice(packet);
        }
        let sent = sent_as(stream, paced.rtx);
        let probe_source = !paced.rtx && sent.1 == PacketKind::Video && stream.params().rtx.is_some();
        if self.send_rtp(now, sent, probe_cluster) && probe_source {
            self.media.probe_source = Some(paced);
        }
        if let Some(stream) = self.media.send_stream((paced.id, paced.layer)) {
            stream.on_sent(paced.seq, now);
        }
    }

    /// Padding of about `size` bytes for probe cluster `cluster`
    /// (draft-ietf-rmcat-gcc-02 §5.5 leaves probing to the sender;
    /// libwebrtc's): an RTX copy of the latest video packet sent when
    /// its stream has RTX (RFC 4588 §4, which a receiver drops as a
    /// duplicate), else padding-only packets on the first video stream
    /// (RFC 3550 §5.1; [`SendStream::write_padding`]: on its RTX SSRC
    /// when it has one) up to `size`. Only packets with a transport-wide
    /// sequence number are worth sending: the feedback measures them.
    fn send_padding(&mut self, now: Instant, size: usize, cluster: u32) {
        let media = &mut self.media;
        if let Some(source) = media.probe_source {
            let stream = (media.senders.get_mut(&source.id)).and_then(|s| s.streams.get_mut(source.layer));
            if stream.is_some_and(|s| s.params().transport_cc.is_some())
                && self.send_padding_copies(now, source, size, cluster)
            {
                return;
            }
        }
        let media = &self.media;
        let rtp_mode = media.rtp_mode;
        let video = (media.senders.iter()).filter(|(_, s)| s.active).find_map(|(&id, s)| {
            let video = |s: &SendStream| s.params().format.is_video() && s.params().transport_cc.is_some();
            Some((id, s.streams.iter().position(video)?))
        });
        let Some(at) = video else { return };
        let mut left = size;
        while left > 0 {
            let media = &mut self.media;
            let stream = (media.senders.get_mut(&at.0)).and_then(|s| s.streams.get_mut(at.1));
            let Some(stream) = stream else { return };
            if !stream.write_padding(left.min(MAX_RTP_PACKET - SRTP_OVERHEAD), rtp_mode, &mut media.buf) {
                return;
            }
            let transport_cc = stream.params().transport_cc;
            left = left.saturating_sub(media.buf.len() + SRTP_OVERHEAD);
            if self.send_rtp(now, (transport_cc, PacketKind::Padding), Some(cluster)) {
                self.media.counters.padding_sent += 1;
            }
        }
    }

    /// RTX copies of `source` until they make up `size` bytes, as
    /// libwebrtc's `RTPSender::GeneratePadding` does: one copy of a
    /// packet smaller than the pacer asked for left the cluster short
    /// of the bytes its result needs (a 3.4 Mbit/s cluster of 6,257
    /// bytes ended after 7 copies of a 671-byte packet, 4,693 bytes,
    /// under the 80% the estimator waits for, so it gave no result).
    /// False if not even one copy could be made.
    fn send_padding_copies(&mut self, now: Instant, source: Paced, size: usize, cluster: u32) -> bool {
        let mut left = size;
        while left > 0 {
            let media = &mut self.media;
            let stream = (media.senders.get_mut(&source.id)).and_then(|s| s.streams.get_mut(source.layer));
            let Some(stream) = stream else { break };
            // A probe is not a repair: the stream's counters stay.
            let counters = stream.counters;
            let copied = stream.retransmit(source.seq, &mut media.buf);
            stream.counters = counters;
            if !copied {
                break;
            }
            let transport_cc = stream.params().transport_cc;
            left = left.saturating_sub(media.buf.len() + SRTP_OVERHEAD);
            if self.send_rtp(now, (transport_cc, PacketKind::Padding), Some(cluster)) {
                self.media.counters.padding_sent += 1;
            }
        }
        left < size
    }

    /// The bitrate, bits per second, that what we send should stay
    /// under, as the congestion controller estimates it from the peer's
    /// transport-wide feedback or REMB (draft-ietf-rmcat-gcc-02): the
    /// configured start until feedback comes.
    pub fn target_bitrate(&self) -> u64 {
        self.media.cc.target_bitrate()
    }

    /// How much the application would send, bits per second, if the
    /// target let it (`None`: as much as it lets): a sender below its
    /// target is application-limited, and the controller then probes
    /// rather than trusts the little it sees acknowledged.
    pub fn set_application_demand(&mut self, demand_bps: Option<u64>) {
        self.media.cc.set_application_demand(self.now, demand_bps);
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

    // ----- configuration by the exchange and by DTLS: `negotiation.rs` -----

    // ----- input: `incoming.rs` (RTP), `rtcp.rs` (RTCP) -----

    // ----- output -----

    /// Sends what the media layer has due at `now`: NACKs, reports, and
    /// frames whose missing packets waited long enough.
    pub(super) fn media_timers(&mut self, now: Instant) {
        if self.media.srtp.is_none() {
            return;
        }
        let rtt = self
            .ice
            .as_ref()
            .and_then(|ice| ice.stats().selected_rtt)
            .unwrap_or(Duration::from_millis(100));
        // Each layer of each receiver, walked without collecting them (a
        // timer fires often; it allocates nothing).
        let mut next = self.media.receivers.keys().next().copied();
        while let Some(id) = next {
            let layers = self.media.receivers.get(&id).map_or(0, |r| r.layers.len());
            for layer in 0..layers {
                self.layer_timers(Route { id, layer, rtx: false }, now, rtt);
            }
            next = (self.media.receivers.range((Excluded(id), Unbounded)).next()).map(|(&id, _)| id);
        }
        if self.media.next_twcc.is_some_and(|t| t <= now) {
            // On a fixed period while packets arrive, as libwebrtc's
            // generator: the next report is due an interval after this
            // one, not an interval after the next arrival.
            let pending = self.media.twcc.has_pending();
            self.send_twcc_feedback();
            let interval = feedback_interval(self.media.cc.target_bitrate());
            self.media.next_twcc = pending.then_some(now + interval);
        }
        if self.media.next_report.is_some_and(|t| t <= now) {
            self.send_report(now);
            let factor = self.rng.gen_range(0.5..1.5);
            self.media.next_report = Some(now + REPORT_INTERVAL.mul_f64(factor));
        }
    }

    /// The congestion controller's work: the round trip of the selected
    /// pair's STUN checks (RFC 8445 §7.2.5.3, consent freshness RFC 7675
    /// keeps measuring it) for its AIMD response time, its periodic look
    /// at ALR and probes, and what its pacer lets go.
    pub(super) fn congestion_timers(&mut self, now: Instant) {
        if let Some(rtt) = self.ice.as_ref().and_then(|ice| ice.stats().selected_rtt) {
            self.media.cc.on_rtt(rtt);
        }
        self.media.cc.handle_timeout(now);
        if self.media.paces() {
            self.release_paced(now);
        } else {
            // Unpaced, nothing waits in the pacer and its probes' padding
            // is not sent: what it releases is dropped.
            while self.media.cc.poll_send(now).is_some() {}
        }
        self.congestion_events();
    }

    /// The controller's new target, as [`PeerEvent::TargetBitrate`].
    pub(super) fn congestion_events(&mut self) {
        while let Some(CongestionEvent::TargetBitrate(bps)) = self.media.cc.poll_event() {
            self.events.push_back(PeerEvent::TargetBitrate(bps));
        }
    }

    /// A layer's timers: packets that waited long enough go to the
    /// depacketizer, and a NACK for what is still missing.
    fn layer_timers(&mut self, to: Route, now: Instant, rtt: Duration) {
        self.deliver(to, now);
        let layer = self
            .media
            .receivers
            .get_mut(&to.id)
            .and_then(|r| r.layers.get_mut(to.layer));
        let Some(layer) = layer else {
            return;
        };
        let (Some(ssrc), Some(stream)) = (layer.ssrc, layer.stream.as_mut()) else {
            return;
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

    /// Numbers the RTP packet in the media buffer with the next
    /// transport-wide sequence number when `sent` says it carries one,
    /// protects it, sends it, and tells the congestion controller its
    /// size on the wire (SRTP's tag included), in probe cluster
    /// `probe_cluster` if it is part of one; whether it left.
    fn send_rtp(
        &mut self,
        now: Instant,
        (transport_cc, kind): (Option<u8>, PacketKind),
        probe_cluster: Option<u32>,
    ) -> bool {
        let media = &mut self.media;
        let Some((local, _)) = media.srtp.as_mut() else {
            return false;
        };
        let transport_seq = media.transport_seq;
        let numbered = transport_cc.is_some_and(|id| set_transport_seq(&mut media.buf, id, transport_seq));
        let len = media.buf.len();
        media.buf.resize(len + SRTP_OVERHEAD, 0);
        match local.protect_rtp(&mut media.buf, len) {
            Ok(n) => media.buf.truncate(n),
            Err(_) => return false,
        }
        let size = media.buf.len();
        // A number that never left is used again.
        let sent = self.send_protected(now);
        if sent && numbered {
            let media = &mut self.media;
            media.transport_seq = transport_seq.wrapping_add(1);
            media.counters.transport_numbered += 1;
            let packet = SentPacket {
                transport_seq,
                size,
                kind,
                probe_cluster,
            };
            media.cc.on_packet_sent(now, packet);
        }
        sent
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

    /// Sends the protected packet in the media buffer; whether it left.
    fn send_protected(&mut self, now: Instant) -> bool {
        let sent = (self.ice.as_mut()).is_some_and(|ice| self.transmits.send(ice, &self.media.buf, now));
        if !sent {
            self.media.counters.unsent += 1;
        }
        sent
    }
}

/// How a packet of `stream` is counted by congestion control: the id of
/// the transport-wide sequence number it carries, if any, and its kind
/// (`rtx`: a retransmission).
fn sent_as(stream: &SendStream, rtx: bool) -> (Option<u8>, PacketKind) {
    let kind = if rtx {
        PacketKind::Retransmission
    } else if stream.params().format.is_video() {
        PacketKind::Video
    } else {
        PacketKind::Audio
    };
    (stream.params().transport_cc, kind)
}
