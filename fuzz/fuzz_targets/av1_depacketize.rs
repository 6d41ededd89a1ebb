//! The AV1 depacketizer fed a stream of arbitrary packets: errors or
//! temporal units, never a panic; every unit it hands out starts with a
//! temporal delimiter, fits the size cap, and holds only OBUs that parse
//! with obu_has_size_field set, and a keyframe has its sequence header.
//! The payload, OBU and sequence header parsers and `VideoCodec::inspect`
//! take the raw payloads, and each payload that reads as a temporal unit
//! goes through the packetizer and back unchanged.
//!
//! Input: see `shared/rtp_stream.rs`; control bits 5-7 pick the
//! packetizer's payload budget.
#![no_main]

#[path = "shared/rtp_stream.rs"]
mod rtp_stream;

use libfuzzer_sys::fuzz_target;
use natter_rtp::payload::*;
use rtp_stream::RtpStream;

const MAX_FRAME: usize = 64 << 10;
const TEMPORAL_DELIMITER: [u8; 2] = [0x12, 0x00];

/// Packetizes `tu` and reassembles it; it must come back as it went, once
/// written the way the reassembler writes (a temporal delimiter, then
/// every OBU that travels, with a minimal size field).
fn round_trip(tu: &[u8], max_payload: usize) {
    let Ok(packetizer) = Av1Packetizer::new(tu, max_payload) else {
        return;
    };
    let mut expected = TEMPORAL_DELIMITER.to_vec();
    for obu in Obus::new(tu) {
        let obu = obu.expect("the packetizer checked every OBU");
        if matches!(obu.header.obu_type, ObuType::TemporalDelimiter | ObuType::TileList) {
            continue;
        }
        let (head, n) = ObuHeader {
            has_size_field: true,
            ..obu.header
        }
        .encode();
        expected.extend_from_slice(&head[..n]);
        let mut leb = [0u8; 8];
        let n = write_leb128(obu.payload.len() as u32, &mut leb);
        expected.extend_from_slice(&leb[..n]);
        expected.extend_from_slice(obu.payload);
    }
    let mut d = Av1Depacketizer::new();
    let mut got = None;
    for (i, chunk) in packetizer.enumerate() {
        assert!(chunk.len() <= max_payload);
        let mut buf = vec![0u8; chunk.len()];
        chunk.write_to(&mut buf).unwrap();
        let packet = RtpPayload {
            sequence_number: i as u16,
            timestamp: 0,
            marker: chunk.marker(),
            payload: &buf,
        };
        let out = d.push(packet).expect("the packetizer's payloads parse");
        assert_eq!(out.frames_dropped, 0);
        got = out.frame.map(|f| f.data.to_vec());
    }
    assert_eq!(got, Some(expected));
}

fuzz_target!(|data: &[u8]| {
    let mut av1 = Av1Depacketizer::with_max_frame_size(MAX_FRAME);
    for (control, packet) in RtpStream::new(data) {
        let payload = packet.payload;
        let _ = Av1SequenceHeader::parse(payload);
        let _ = VideoCodec::Av1.inspect(payload, None, None);
        if let Ok(p) = Av1Payload::parse(payload) {
            assert!(p.elements().all(|e| !e.is_empty()));
        }
        round_trip(payload, 2 + usize::from(control >> 5) * 7);

        if let Ok(out) = av1.push(packet) {
            if let Some(f) = out.frame {
                assert!(f.data.len() <= MAX_FRAME && f.data.starts_with(&TEMPORAL_DELIMITER));
                assert_eq!(f.timestamp, packet.timestamp);
                assert!(!f.keyframe || f.sequence_header.is_some());
                for obu in Obus::new(f.data) {
                    assert!(obu.expect("the reassembler checked every OBU").header.has_size_field);
                }
            }
        }
    }
});
