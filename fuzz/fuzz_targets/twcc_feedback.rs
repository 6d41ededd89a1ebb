//! Arbitrary bytes as RTCP into natter's congestion controller: the
//! first two bytes pick where the transport-wide sequence starts (so
//! that feedback meets the 16-bit wrap) and 600 packets are sent. Then,
//! by the third byte, either every transport-wide CC feedback and REMB
//! natter-rtp parses from the rest goes to the feedback matcher and the
//! estimators, or the rest describes feedback (4 bytes a packet: a gap
//! in sequence, an arrival delta, a flag ending the feedback) that
//! natter-rtp's builder writes and its parser reads back, so that the
//! estimators see well-formed feedback of every shape. Pacing goes on
//! between feedback. Nothing may panic, and the target stays within the
//! configured bitrates.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter::congestion::{CongestionConfig, CongestionController, PacketKind, QueuedPacket};
use natter_rtp::rtcp::{Compound, RtcpEncode, RtcpPacket, TransportFeedbackBuilder};

struct Sender {
    cc: CongestionController<usize>,
    config: CongestionConfig,
    now: Instant,
    seq: u16,
}

impl Sender {
    fn new(seq: u16) -> Sender {
        let config = CongestionConfig::default();
        let now = Instant::now();
        let mut cc = CongestionController::new(config, now).unwrap();
        for i in 0..600 {
            let kind = if i % 7 == 0 {
                PacketKind::Audio
            } else {
                PacketKind::Video
            };
            cc.push(
                now,
                QueuedPacket {
                    handle: i,
                    size: 1200,
                    kind,
                },
            );
        }
        Sender { cc, config, now, seq }
    }

    /// 20 ms pass, paced packets go, then `rtcp` arrives.
    fn receive(&mut self, rtcp: &[u8]) {
        self.now += Duration::from_millis(20);
        self.cc.handle_timeout(self.now);
        while let Some(paced) = self.cc.poll_send(self.now) {
            self.cc.on_packet_sent(self.now, paced.sent(self.seq));
            self.seq = self.seq.wrapping_add(1);
        }
        let Ok(compound) = Compound::parse(rtcp) else { return };
        for packet in compound.packets().flatten() {
            match packet {
                RtcpPacket::TransportFeedback(feedback) => self.cc.on_transport_feedback(self.now, &feedback),
                RtcpPacket::Remb(remb) => self.cc.on_remb(self.now, remb.bitrate_bps()),
                _ => {}
            }
        }
        let target = self.cc.target_bitrate();
        assert!(
            (self.config.min_bps..=self.config.max_bps).contains(&target),
            "target {target}"
        );
        while self.cc.poll_event().is_some() {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&[s0, s1, mode], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let first = u16::from_be_bytes([s0, s1]);
    let mut sender = Sender::new(first);
    if mode & 1 == 0 {
        for raw in Compound::parse(rest).iter().flat_map(|c| c.raw_packets()) {
            sender.receive(raw.bytes);
        }
        return;
    }
    let mut received: Vec<(u16, i64)> = Vec::new();
    let (mut seq, mut arrival_us) = (first, 0i64);
    let mut count = 0u8;
    for entry in rest.chunks_exact(4) {
        seq = seq.wrapping_add(1 + u16::from(entry[0] & 0x0F));
        arrival_us += i64::from(i16::from_be_bytes([entry[1], entry[2]])) * 50;
        received.push((seq, arrival_us));
        if entry[3] & 1 == 1 {
            let builder = TransportFeedbackBuilder {
                sender_ssrc: 1,
                media_ssrc: 2,
                fb_pkt_count: count,
                base_seq: Some(received[0].0.wrapping_sub(u16::from(entry[3] >> 4))),
                received: &received,
            };
            let mut bytes = vec![0; builder.encoded_len()];
            if builder.encode(&mut bytes).is_ok() {
                sender.receive(&bytes);
            }
            count = count.wrapping_add(1 + ((entry[3] >> 1) & 1));
            received.clear();
        }
    }
});
