//! The VP9 depacketizer fed a stream of arbitrary packets: errors or
//! frames, never a panic; every frame it hands out has the uncompressed
//! header it reports and fits the size cap. The descriptor, scalability
//! structure and frame header parsers and `VideoCodec::inspect` take
//! the raw payloads, and a parsed descriptor writes back to its bytes.
//!
//! Input: see `shared/rtp_stream.rs`.
#![no_main]

#[path = "shared/rtp_stream.rs"]
mod rtp_stream;

use libfuzzer_sys::fuzz_target;
use natter_rtp::payload::*;
use rtp_stream::RtpStream;

const MAX_FRAME: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let mut vp9 = Vp9Depacketizer::with_max_frame_size(MAX_FRAME);
    for (_, packet) in RtpStream::new(data) {
        let payload = packet.payload;
        let _ = Vp9FrameHeader::parse(payload);
        let _ = VideoCodec::Vp9.inspect(payload, None, None);
        if let Ok((ss, _)) = Vp9ScalabilityStructure::parse(payload) {
            let _ = (ss.resolutions().count(), ss.picture_group().count());
        }
        if let Ok((d, body)) = Vp9Descriptor::parse(payload) {
            // What parses and is valid to write writes back as it was.
            let mut out = vec![0u8; d.encoded_len()];
            if d.encode(&mut out).is_ok() {
                assert_eq!(out, payload[..payload.len() - body.len()]);
            }
        }

        if let Ok(out) = vp9.push(packet) {
            if let Some(f) = out.frame {
                assert!(!f.data.is_empty() && f.data.len() <= MAX_FRAME);
                assert_eq!(f.timestamp, packet.timestamp);
                assert_eq!(Vp9FrameHeader::parse(f.data), Ok(f.header));
            }
        }
    }
});
