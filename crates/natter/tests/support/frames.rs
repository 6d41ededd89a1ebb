//! Encoded frames for the media tests.

/// A VP8 frame (RFC 6386 §9.1) of `len` bytes: a 320x240 keyframe or
/// an inter frame, its bytes numbered by `n`.
pub fn vp8_frame(n: usize, keyframe: bool, len: usize) -> Vec<u8> {
    let first_partition = 100u32;
    let tag = u32::from(!keyframe) | (1 << 4) | (first_partition << 5);
    let mut frame = tag.to_le_bytes()[..3].to_vec();
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&320u16.to_le_bytes());
        frame.extend_from_slice(&240u16.to_le_bytes());
    }
    frame.extend((frame.len()..len).map(|i| (i ^ n) as u8));
    frame
}
