//! ChannelData decoding and stream framing: no panics, and a frame the
//! framer accepts decodes as what it says it is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_stun::{stream_frame_len, ChannelData, PacketKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(cd) = ChannelData::decode(data) {
        assert!(cd.data.len() + 4 <= data.len());
    }
    if let Ok(Some(n)) = stream_frame_len(data) {
        assert!(n <= data.len());
        if PacketKind::of(data) == PacketKind::ChannelData {
            assert!(ChannelData::decode(&data[..n]).is_ok());
        }
    }
});
