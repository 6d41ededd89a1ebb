//! Arbitrary bytes as RTCP into natter's congestion controller: the
//! first two bytes pick where the transport-wide sequence starts (so
//! that feedback meets the 16-bit wrap), 600 packets are sent, then
//! every transport-wide CC feedback and REMB natter-rtp parses from the
//! rest goes to the feedback matcher and the estimators, between rounds
//! of pacing. Nothing may panic, and the target stays within the
//! configured bitrates.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use natter::congestion::{CongestionConfig, CongestionController, PacketKind, QueuedPacket};
use natter_rtp::rtcp::{Compound, RtcpPacket};

fuzz_target!(|data: &[u8]| {
    let Some((seq, rtcp)) = data.split_first_chunk::<2>() else {
        return;
    };
    let mut seq = u16::from_be_bytes(*seq);
    let config = CongestionConfig::default();
    let mut now = Instant::now();
    let mut cc: CongestionController<usize> = CongestionController::new(config, now).unwrap();
    for i in 0..600 {
        cc.push(
            now,
            QueuedPacket {
                handle: i,
                size: 1200,
                kind: if i % 7 == 0 {
                    PacketKind::Audio
                } else {
                    PacketKind::Video
                },
            },
        );
    }
    let mut send = |cc: &mut CongestionController<usize>, now: Instant| {
        while let Some(paced) = cc.poll_send(now) {
            cc.on_packet_sent(now, paced.sent(seq));
            seq = seq.wrapping_add(1);
        }
    };
    let Ok(compound) = Compound::parse(rtcp) else {
        return;
    };
    for packet in compound.packets().flatten() {
        now += Duration::from_millis(20);
        cc.handle_timeout(now);
        send(&mut cc, now);
        match packet {
            RtcpPacket::TransportFeedback(feedback) => cc.on_transport_feedback(now, &feedback),
            RtcpPacket::Remb(remb) => cc.on_remb(now, remb.bitrate_bps()),
            _ => {}
        }
        let target = cc.target_bitrate();
        assert!((config.min_bps..=config.max_bps).contains(&target), "target {target}");
        while cc.poll_event().is_some() {}
    }
});
