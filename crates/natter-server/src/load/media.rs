//! What a synthetic participant publishes: VP8 simulcast in three
//! layers (RFC 8853, RIDs lowest first as docs/signaling.md asks) and
//! Opus, as frames of the sizes a browser's encoders make at about
//! 1 Mbit/s in all, with no encoder behind them. No recorded media is in
//! the repository (tests/peer's IVFs are made by ffmpeg at test time),
//! so the frames are synthetic: a valid VP8 frame tag (RFC 6386 §9.1)
//! and the publisher's id in the body, so a subscriber can tell a frame
//! that reached the wrong slot.
//!
//! A layer sends a keyframe first and then only when asked (a PLI or FIR
//! the SFU sent, `PeerEvent::KeyframeRequest`), as a browser does: a
//! subscriber that joins mid-call decodes only if the SFU asks.

use std::time::Duration;

/// Video frames per second, every layer.
pub const FRAME_RATE: u32 = 30;
/// Opus frames are 20 ms (RFC 7587 §4.2's default ptime).
pub const AUDIO_INTERVAL: Duration = Duration::from_millis(20);
/// An Opus frame at about 32 kbit/s.
const AUDIO_BYTES: usize = 80;

/// One simulcast layer: RID, picture size, and the size of a delta frame
/// (a keyframe is [`KEYFRAME_FACTOR`] times larger).
pub struct Layer {
    pub rid: &'static str,
    width: u16,
    height: u16,
    delta_bytes: usize,
}

/// About 100, 250 and 700 kbit/s at 30 frames a second.
pub const LAYERS: [Layer; 3] = [
    Layer {
        rid: "q",
        width: 320,
        height: 180,
        delta_bytes: 420,
    },
    Layer {
        rid: "h",
        width: 640,
        height: 360,
        delta_bytes: 1040,
    },
    Layer {
        rid: "f",
        width: 1280,
        height: 720,
        delta_bytes: 2900,
    },
];
const KEYFRAME_FACTOR: usize = 4;

/// The frames of one publisher, made once per connection and sent again
/// and again: nothing is allocated per frame.
pub struct Frames {
    /// Per layer: a keyframe and a delta frame.
    video: Vec<(Vec<u8>, Vec<u8>)>,
    audio: Vec<u8>,
}

impl Frames {
    /// Frames whose bodies carry `mark` (the publisher's id).
    pub fn new(mark: &str) -> Self {
        let video = (LAYERS.iter())
            .map(|layer| {
                let size = layer.delta_bytes * KEYFRAME_FACTOR;
                (keyframe(layer, mark, size), delta(mark, layer.delta_bytes))
            })
            .collect();
        // A TOC byte (RFC 6716 §3.1: SILK wideband, 20 ms, one frame).
        let audio = body(vec![0x48], mark, AUDIO_BYTES);
        Frames { video, audio }
    }

    /// Layer `layer`'s keyframe or delta frame.
    pub fn video(&self, layer: usize, keyframe: bool) -> &[u8] {
        let (key, delta) = &self.video[layer];
        if keyframe {
            key
        } else {
            delta
        }
    }

    pub fn audio(&self) -> &[u8] {
        &self.audio
    }
}

/// RFC 6386 §9.1: the frame tag (P = 0 keyframe, version 0, shown, the
/// first partition's size), the start code 9d 01 2a, then the width and
/// height (14 bits each, no scaling), then the body.
fn keyframe(layer: &Layer, mark: &str, size: usize) -> Vec<u8> {
    let mut frame = frame_tag(false, size);
    frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
    frame.extend_from_slice(&layer.width.to_le_bytes());
    frame.extend_from_slice(&layer.height.to_le_bytes());
    body(frame, mark, size)
}

fn delta(mark: &str, size: usize) -> Vec<u8> {
    body(frame_tag(true, size), mark, size)
}

/// The 3-byte frame tag: bit 0 the inverse keyframe flag, bits 1-3 the
/// version, bit 4 show_frame, bits 5-23 the first partition's size.
fn frame_tag(inter: bool, size: usize) -> Vec<u8> {
    let partition = (size as u32 / 2) & 0x7_FFFF;
    let tag = u32::from(inter) | 1 << 4 | partition << 5;
    tag.to_le_bytes()[..3].to_vec()
}

fn body(mut frame: Vec<u8>, mark: &str, size: usize) -> Vec<u8> {
    frame.extend_from_slice(b"from:");
    frame.extend_from_slice(mark.as_bytes());
    frame.push(b';');
    frame.resize(size.max(frame.len()), 0xAB);
    frame
}

/// Whether a received frame names `mark` as its publisher.
pub fn is_from(frame: &[u8], mark: &str) -> bool {
    let head = &frame[..frame.len().min(64)];
    let tag = head.windows(5).position(|w| w == b"from:");
    tag.is_some_and(|at| {
        let rest = &head[at + 5..];
        rest.len() > mark.len() && rest.starts_with(mark.as_bytes()) && rest[mark.len()] == b';'
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_a_vp8_frame_tag_and_their_publisher() {
        let frames = Frames::new("abc");
        let key = frames.video(2, true);
        // RFC 6386 §9.1: P = 0, shown, the start code, 1280x720.
        assert_eq!(key[0] & 1, 0);
        assert_eq!(&key[3..6], &[0x9d, 0x01, 0x2a]);
        assert_eq!(u16::from_le_bytes([key[6], key[7]]), 1280);
        assert_eq!(u16::from_le_bytes([key[8], key[9]]), 720);
        assert_eq!(key.len(), 2900 * KEYFRAME_FACTOR);
        let delta = frames.video(0, false);
        assert_eq!(delta[0] & 1, 1);
        assert_eq!(delta.len(), 420);
        assert!(is_from(key, "abc") && is_from(delta, "abc"));
        assert!(!is_from(key, "ab") && !is_from(delta, "abcd"));
        assert_eq!(frames.audio().len(), AUDIO_BYTES);
        assert!(is_from(frames.audio(), "abc"));
    }
}
