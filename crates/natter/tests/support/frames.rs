//! Encoded frames for the media tests.

/// A VP8 frame (RFC 6386 §9.1) of `len` bytes: a 320x240 keyframe or
/// an inter frame, its bytes numbered by `n`.
pub fn vp8_frame(n: usize, keyframe: bool, len: usize) -> Vec<u8> {
    vp8_frame_sized(n, keyframe, (320, 240), len)
}

/// [`vp8_frame`] with a keyframe of `size` (width, height).
pub fn vp8_frame_sized(n: usize, keyframe: bool, size: (u16, u16), len: usize) -> Vec<u8> {
    let first_partition = 100u32;
    let tag = u32::from(!keyframe) | (1 << 4) | (first_partition << 5);
    let mut frame = tag.to_le_bytes()[..3].to_vec();
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&size.0.to_le_bytes());
        frame.extend_from_slice(&size.1.to_le_bytes());
    }
    frame.extend((frame.len()..len).map(|i| (i ^ n) as u8));
    frame
}
