//! The packets sent with a transport-wide sequence number, and the
//! transport-wide CC feedback matched to them
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1).
//!
//! The sender numbers every packet it sends on the transport (media,
//! retransmissions, padding) with a 16-bit counter; the history extends
//! it to 64 bits and keeps, for each, when it went out, its size and
//! kind. Feedback reports a range of numbers with arrival times on the
//! receiver's clock; matching yields one [`PacketResult`] per packet the
//! first time it is reported received, and once when it is first
//! reported lost. Duplicated and reordered feedback therefore never
//! counts a packet twice, a packet reported lost and then received (the
//! receiver's later feedback) is given its arrival, and packets whose
//! feedback was lost are simply never reported (the next feedback starts
//! after them, as natter's and libwebrtc's receivers do).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use natter_rtp::rtcp::{TransportFeedback, TWCC_REFERENCE_TICK_US};
use natter_rtp::SeqUnwrapper;

/// Packets kept at most: half the 16-bit space, beyond which a reported
/// number could be mistaken for one a wrap earlier.
const MAX_PACKETS: usize = 1 << 15;
/// Packets older than this are forgotten (libwebrtc keeps 60 s; feedback
/// comes every 100 ms or so).
const MAX_AGE: Duration = Duration::from_secs(10);
/// §3.1: the reference time is a 24-bit count of 64 ms.
const REFERENCE_MODULUS: i64 = 1 << 24;

/// What a sent packet carried, which decides how the pacer orders it and
/// whether it counts as the application's media.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    Audio,
    Video,
    /// An RTX retransmission (RFC 4588).
    Retransmission,
    /// Padding sent only to probe the path.
    Padding,
}

impl PacketKind {
    /// Whether the packet is the application's own media (not padding).
    pub fn is_media(self) -> bool {
        self != PacketKind::Padding
    }
}

/// A packet handed to the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentPacket {
    /// The transport-wide sequence number it carries.
    pub transport_seq: u16,
    /// Bytes on the wire above UDP: RTP header and extensions, payload,
    /// padding and the SRTP authentication tag.
    pub size: usize,
    pub kind: PacketKind,
    /// The probe cluster the pacer sent it in, if any.
    pub probe_cluster: Option<u32>,
}

/// One packet's fate as feedback reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketResult {
    /// The transport-wide sequence number, extended to 64 bits.
    pub seq: u64,
    pub send_time: Instant,
    pub size: usize,
    pub kind: PacketKind,
    pub probe_cluster: Option<u32>,
    /// Arrival in µs on the receiver's clock (its origin is arbitrary);
    /// `None` if reported lost.
    pub arrival_us: Option<i64>,
}

/// What one feedback packet held, beyond its per-packet results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackSummary {
    /// Packets reported received for the first time.
    pub received: usize,
    /// Packets reported lost for the first time.
    pub lost: usize,
    /// Reports of packets already reported received, and of packets
    /// this history does not hold (never sent, or forgotten).
    pub ignored: usize,
    /// Feedback packets missing before this one, by its feedback count.
    pub feedback_lost: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// A number skipped by the sender.
    NotSent,
    InFlight,
    Lost,
    Received,
}

#[derive(Clone, Copy, Debug)]
struct Record {
    send_time: Instant,
    size: usize,
    kind: PacketKind,
    probe_cluster: Option<u32>,
    status: Status,
}

/// The history of sent packets, matched against feedback.
#[derive(Debug, Default)]
pub struct SendHistory {
    seq: SeqUnwrapper,
    /// The extended number of `packets[0]`.
    first: u64,
    packets: VecDeque<Record>,
    /// The feedback count expected next.
    next_feedback_count: Option<u8>,
    /// The last reference time, unwrapped.
    reference: Option<i64>,
}

impl SendHistory {
    /// Records a packet sent at `now`. A number at or before one already
    /// recorded (a reuse) is ignored; a jump ahead leaves the numbers in
    /// between as never sent.
    pub fn on_packet_sent(&mut self, now: Instant, packet: SentPacket) {
        let Some(seq) = self.seq.peek(packet.transport_seq) else {
            return;
        };
        let end = self.first + self.packets.len() as u64;
        if !self.packets.is_empty() && seq < end {
            return;
        }
        self.seq.unwrap(packet.transport_seq);
        if self.packets.is_empty() || seq - end >= MAX_PACKETS as u64 {
            self.packets.clear();
            self.first = seq;
        }
        let record = |status| Record {
            send_time: now,
            size: packet.size,
            kind: packet.kind,
            probe_cluster: packet.probe_cluster,
            status,
        };
        while self.first + (self.packets.len() as u64) < seq {
            self.packets.push_back(record(Status::NotSent));
        }
        self.packets.push_back(record(Status::InFlight));
        while self.packets.len() > MAX_PACKETS
            || self
                .packets
                .front()
                .is_some_and(|p| now.saturating_duration_since(p.send_time) > MAX_AGE)
        {
            self.packets.pop_front();
            self.first += 1;
        }
    }

    /// Matches a feedback packet: `results` is cleared and gets one entry
    /// per packet reported for the first time (received, or lost), in
    /// sequence order.
    pub fn on_feedback(
        &mut self,
        feedback: &TransportFeedback<'_>,
        results: &mut Vec<PacketResult>,
    ) -> FeedbackSummary {
        results.clear();
        let mut summary = FeedbackSummary::default();
        if let Some(expected) = self.next_feedback_count {
            let missing = feedback.fb_pkt_count.wrapping_sub(expected);
            // A count behind the expected one is reordered feedback.
            if missing < 128 {
                summary.feedback_lost = missing;
            }
        }
        if self
            .next_feedback_count
            .is_none_or(|e| feedback.fb_pkt_count.wrapping_sub(e) < 128)
        {
            self.next_feedback_count = Some(feedback.fb_pkt_count.wrapping_add(1));
        }
        let offset_us = self.reference_offset(feedback.reference_time);
        // Feedback reports only numbers already sent, so the nearest
        // extension to the last one sent is the right one.
        let Some(base) = self.seq.peek(feedback.base_seq) else {
            summary.ignored = usize::from(feedback.status_count);
            return summary;
        };
        for (i, reported) in feedback.packets().enumerate() {
            let seq = base + i as u64;
            let record = seq
                .checked_sub(self.first)
                .and_then(|index| self.packets.get_mut(index as usize));
            let Some(record) = record else {
                summary.ignored += 1;
                continue;
            };
            let arrival_us = reported.arrival_us.map(|a| a + offset_us);
            let first_report = match (record.status, arrival_us) {
                (Status::InFlight | Status::Lost, Some(_)) => {
                    record.status = Status::Received;
                    summary.received += 1;
                    true
                }
                (Status::InFlight, None) => {
                    record.status = Status::Lost;
                    summary.lost += 1;
                    true
                }
                _ => {
                    summary.ignored += 1;
                    false
                }
            };
            if first_report {
                results.push(PacketResult {
                    seq,
                    send_time: record.send_time,
                    size: record.size,
                    kind: record.kind,
                    probe_cluster: record.probe_cluster,
                    arrival_us,
                });
            }
        }
        summary
    }

    /// What to add to the arrival times of a feedback with this 24-bit
    /// reference time so that they continue those before it across the
    /// reference time's wrap (every 2^24 × 64 ms, about 12.4 days).
    fn reference_offset(&mut self, reference_time: i32) -> i64 {
        let raw = i64::from(reference_time);
        let unwrapped = match self.reference {
            None => raw,
            Some(last) => {
                let diff = (raw - last).rem_euclid(REFERENCE_MODULUS);
                let step = if diff >= REFERENCE_MODULUS / 2 {
                    diff - REFERENCE_MODULUS
                } else {
                    diff
                };
                last + step
            }
        };
        // Only a newer reference moves the base, so reordered feedback
        // unwraps against the same one.
        if self.reference.is_none_or(|last| unwrapped > last) {
            self.reference = Some(unwrapped);
        }
        (unwrapped - raw) * TWCC_REFERENCE_TICK_US
    }
}

#[cfg(test)]
mod tests {
    use natter_rtp::rtcp::{Compound, RtcpEncode, RtcpPacket, TransportFeedbackBuilder};

    use super::*;

    fn feedback(count: u8, received: &[(u16, i64)]) -> Vec<u8> {
        let builder = TransportFeedbackBuilder {
            sender_ssrc: 1,
            media_ssrc: 2,
            fb_pkt_count: count,
            base_seq: None,
            received,
        };
        let mut bytes = vec![0; builder.encoded_len()];
        builder.encode(&mut bytes).unwrap();
        bytes
    }

    fn matched(history: &mut SendHistory, bytes: &[u8]) -> (FeedbackSummary, Vec<PacketResult>) {
        let mut results = Vec::new();
        let packet = Compound::parse(bytes).unwrap().packets().next().unwrap().unwrap();
        let RtcpPacket::TransportFeedback(fb) = packet else {
            panic!("not feedback")
        };
        let summary = history.on_feedback(&fb, &mut results);
        (summary, results)
    }

    #[test]
    fn arrival_times_continue_across_the_reference_time_wrap() {
        let t0 = Instant::now();
        let mut history = SendHistory::default();
        for seq in 0..2 {
            let packet = SentPacket {
                transport_seq: seq,
                size: 100,
                kind: PacketKind::Audio,
                probe_cluster: None,
            };
            history.on_packet_sent(t0, packet);
        }
        // The 24-bit reference time goes from 2^23 - 1 to 2^23, which
        // reads as -2^23.
        let before = ((1 << 23) - 1) * TWCC_REFERENCE_TICK_US;
        let (_, first) = matched(&mut history, &feedback(0, &[(0, before)]));
        let (summary, second) = matched(&mut history, &feedback(1, &[(1, before + 64_000)]));
        assert_eq!(summary.feedback_lost, 0);
        let gap = second[0].arrival_us.unwrap() - first[0].arrival_us.unwrap();
        assert_eq!(gap, 64_000);
    }

    #[test]
    fn a_packet_reported_lost_then_received_is_given_its_arrival() {
        let t0 = Instant::now();
        let mut history = SendHistory::default();
        for seq in 10..13 {
            let packet = SentPacket {
                transport_seq: seq,
                size: 100,
                kind: PacketKind::Video,
                probe_cluster: None,
            };
            history.on_packet_sent(t0, packet);
        }
        let (summary, _) = matched(&mut history, &feedback(0, &[(10, 0), (12, 2_000)]));
        assert_eq!((summary.received, summary.lost), (2, 1));
        // Feedback count 2: one feedback in between was lost.
        let (summary, results) = matched(&mut history, &feedback(2, &[(11, 5_000), (12, 2_000)]));
        assert_eq!((summary.received, summary.lost, summary.ignored), (1, 0, 1));
        assert_eq!(summary.feedback_lost, 1);
        assert_eq!((results[0].seq, results[0].arrival_us), (11, Some(5_000)));
    }
}
