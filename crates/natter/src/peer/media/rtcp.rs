//! RTCP in and out (RFC 3550 §6, RFC 4585, RFC 5104): what the peer
//! reports and asks of our senders (report blocks, NACKs answered with
//! RTX, PLI and FIR), and what we send: reports, feedback, PLIs and
//! transport-wide congestion control feedback.

use std::time::Instant;

use natter_rtp::rtcp::{
    Cname, Compound, CompoundWriter, Pli, ReceiverReportBuilder, ReportBlock, RtcpEncode, RtcpPacket,
    SenderReportBuilder, TransportFeedbackBuilder,
};

use super::super::event::PeerEvent;
use super::super::PeerConnection;
use super::{Paced, MAX_REPORT_BLOCKS, MAX_RTP_PACKET};
use crate::jsep::TransceiverId;
use crate::media::ntp::{from_short, middle_32};
use crate::media::{SendCounters, TwccRecorder};

impl PeerConnection {
    pub(super) fn receive_rtcp(&mut self, now: Instant, data: &[u8]) {
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
                    let Some(at) = self.sender_of(nack.media_ssrc) else {
                        continue;
                    };
                    for seq in nack.lost() {
                        self.retransmit(now, at, seq);
                    }
                    if let Some(stream) = self.media.send_stream(at) {
                        stream.counters.nack_count += 1;
                    }
                }
                RtcpPacket::Pli(pli) => self.keyframe_requested(pli.media_ssrc, |c| &mut c.pli_count),
                RtcpPacket::Fir(fir) => {
                    for entry in fir.entries() {
                        self.keyframe_requested(entry.ssrc, |c| &mut c.fir_count);
                    }
                }
                RtcpPacket::TransportFeedback(feedback) => self.media.cc.on_transport_feedback(now, &feedback),
                RtcpPacket::Remb(remb) => self.media.cc.on_remb(now, remb.bitrate_bps()),
                _ => {}
            }
        }
        self.release_paced(now);
        self.congestion_events();
    }

    /// The transceiver and stream index of our stream `ssrc`.
    fn sender_of(&self, ssrc: u32) -> Option<(TransceiverId, usize)> {
        self.media.senders.iter().find_map(|(&id, s)| {
            let layer = s.streams.iter().position(|s| s.params().ssrc == ssrc)?;
            Some((id, layer))
        })
    }

    /// A PLI or FIR for our stream `ssrc`: counted by `count`, and a
    /// [`PeerEvent::KeyframeRequest`] naming its transceiver and RID.
    fn keyframe_requested(&mut self, ssrc: u32, count: fn(&mut SendCounters) -> &mut u64) {
        let Some(at) = self.sender_of(ssrc) else { return };
        let Some(stream) = self.media.send_stream(at) else {
            return;
        };
        *count(&mut stream.counters) += 1;
        let rid = stream.params().rid().map(str::to_owned);
        self.events
            .push_back(PeerEvent::KeyframeRequest { transceiver: at.0, rid });
    }

    /// Report blocks about our streams: the round trip (RFC 3550 §6.4.1,
    /// A - LSR - DLSR) and the loss the peer saw.
    fn on_report_blocks(&mut self, now: Instant, blocks: impl Iterator<Item = ReportBlock>) {
        let arrival = middle_32(self.media.ntp.ntp(now));
        for block in blocks {
            let Some(at) = self.sender_of(block.ssrc) else { continue };
            let Some(stream) = self.media.send_stream(at) else {
                continue;
            };
            stream.counters.remote_packets_lost = i64::from(block.cumulative_lost);
            if block.last_sr != 0 {
                let rtt = arrival
                    .wrapping_sub(block.last_sr)
                    .wrapping_sub(block.delay_since_last_sr);
                // A negative round trip (clock skew, a stale report) wraps.
                if rtt < 1 << 31 {
                    let rtt = from_short(rtt);
                    stream.counters.round_trip_time = Some(rtt);
                    self.media.cc.on_rtt(rtt);
                }
            }
        }
    }

    /// A NACKed packet's RTX repair (RFC 4588), through the pacer ahead
    /// of new media when we pace.
    fn retransmit(&mut self, now: Instant, (id, layer): (TransceiverId, usize), seq: u16) {
        let paced = Paced {
            id,
            layer,
            seq,
            rtx: true,
        };
        self.send_or_queue(now, paced);
    }

    pub(super) fn send_twcc_feedback(&mut self) {
        // Out of the state while the feedback borrows it (an empty
        // recorder allocates nothing).
        let mut twcc = std::mem::take(&mut self.media.twcc);
        self.write_twcc_feedback(&mut twcc);
        self.media.twcc = twcc;
    }

    fn write_twcc_feedback(&mut self, twcc: &mut TwccRecorder) {
        let Some(feedback) = twcc.feedback() else {
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
            received: feedback.received,
        };
        self.media.counters.twcc_feedback_sent += 1;
        self.send_feedback(&builder);
    }

    /// A PLI for the source of a layer of transceiver `id`, if it has
    /// one yet; whether it had.
    pub(super) fn send_pli(&mut self, id: TransceiverId, layer: usize) -> bool {
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
    pub(super) fn send_feedback(&mut self, feedback: &dyn RtcpEncode) {
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
    /// what we receive, and the CNAME. None while no media section is
    /// negotiated: without one there is no RTP session to report on
    /// (RFC 3550 §6), and a data-only connection never derives its SRTP
    /// contexts.
    pub(super) fn send_report(&mut self, now: Instant) {
        let media = &mut self.media;
        if media.senders.is_empty() && media.receivers.is_empty() {
            return;
        }
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
            .flat_map(|s| &s.streams)
            .filter_map(|s| Some((s.params().ssrc, s.sender_info(now, &media.ntp)?)))
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
}
