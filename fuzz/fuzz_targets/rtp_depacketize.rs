//! The VP8, H.264 and Opus depacketizers fed a stream of arbitrary
//! packets: errors or frames, never a panic, and every frame they hand
//! out is well-formed (a VP8 frame whose header parses as reported; an
//! Annex B access unit whose IDR and SPS flags match its NAL units),
//! and the SPS parser and NAL unit splitters take the raw payloads.
//!
//! Input: repeated [control, length, payload...]; control bit 0 is the
//! marker, bits 1-2 step the sequence number by +1, +2, 0 or -1, bit 3
//! moves the timestamp on, bit 4 jumps the sequence number far.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_rtp::payload::*;

const MAX_FRAME: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let mut vp8 = Vp8Depacketizer::with_max_frame_size(MAX_FRAME);
    let mut h264 = H264Depacketizer::with_max_frame_size(MAX_FRAME);
    let mut opus = OpusDepacketizer::new();
    let (mut seq, mut ts) = (65_530u16, 0u32);
    let mut rest = data;
    while let [control, len, tail @ ..] = rest {
        let (payload, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        seq = match control >> 1 & 3 {
            0 => seq.wrapping_add(1),
            1 => seq.wrapping_add(2),
            2 => seq,
            _ => seq.wrapping_sub(1),
        };
        if control & 0x10 != 0 {
            seq = seq.wrapping_add(20_000);
        }
        if control & 0x08 != 0 {
            ts = ts.wrapping_add(3000);
        }
        // The parsers behind the depacketizers, on the raw payload.
        let _ = H264Sps::parse(payload);
        if let Ok(nals) = NalUnits::annex_b(payload) {
            assert!(nals.into_iter().all(|n| !n.is_empty() && n.last() != Some(&0)));
        }
        if let Ok(nals) = NalUnits::avcc(payload, 2) {
            assert!(nals.into_iter().all(|n| !n.is_empty()));
        }

        let packet = RtpPayload {
            sequence_number: seq,
            timestamp: ts,
            marker: control & 1 != 0,
            payload,
        };

        if let Ok(out) = vp8.push(packet) {
            if let Some(f) = out.frame {
                assert!(!f.data.is_empty() && f.data.len() <= MAX_FRAME);
                assert_eq!(f.timestamp, ts);
                assert_eq!(Vp8FrameHeader::parse(f.data), Ok(f.header));
            }
        }
        if let Ok(out) = h264.push(packet) {
            if let Some(f) = out.frame {
                assert!(f.data.len() <= MAX_FRAME);
                assert_eq!(f.data[..4], [0, 0, 0, 1]);
                let nals: Vec<&[u8]> = NalUnits::annex_b(f.data).expect("starts with a start code").collect();
                assert!(!nals.is_empty());
                assert!(!f.idr || nals.iter().any(|n| n[0] & 0x1F == 5));
                assert!(f.sps.is_none() || nals.iter().any(|n| n[0] & 0x1F == 7));
            }
        }
        let out = opus.push(packet);
        if let Some(f) = out.frame {
            assert_eq!(f.data, payload);
        }
    }
});
