//! What a synthetic participant publishes: VP8 simulcast in three
//! layers (RFC 8853, RIDs lowest first as docs/signaling.md asks), or
//! one VP8 layer (`--layers 1`), and Opus, as frames of the sizes a
//! browser's encoders make at about 1 Mbit/s in all, with no encoder
//! behind them. No recorded media is in
//! the repository (tests/peer's IVFs are made by ffmpeg at test time),
//! so the frames are made here: real VP8 that a browser decodes (a flat
//! grey picture, see [`Frames`]), padded to the layer's size, with the
//! publisher's id at the end, so a subscriber can tell a frame that
//! reached the wrong slot.
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

/// About 100, 250 and 700 kbit/s at 30 frames a second, at the sizes
/// Chromium sends a 640x360 camera's three layers in.
pub const LAYERS: [Layer; 3] = [
    Layer {
        rid: "q",
        width: 160,
        height: 90,
        delta_bytes: 420,
    },
    Layer {
        rid: "h",
        width: 320,
        height: 180,
        delta_bytes: 1040,
    },
    Layer {
        rid: "f",
        width: 640,
        height: 360,
        delta_bytes: 2900,
    },
];
/// `--layers 1`: one layer of about 1 Mbit/s (issue 13's 1 Mbit/s video
/// per publisher), sent without simulcast, so an SFU forwards all of it.
pub const SINGLE: [Layer; 1] = [Layer {
    rid: "f",
    width: 640,
    height: 360,
    delta_bytes: 4170,
}];
const KEYFRAME_FACTOR: usize = 4;

/// The layers a publisher sends for `--layers COUNT`: [`SINGLE`] for 1,
/// [`LAYERS`] for 3.
pub fn layers(count: usize) -> Result<&'static [Layer], String> {
    match count {
        1 => Ok(&SINGLE),
        3 => Ok(&LAYERS),
        _ => Err(format!("{count} layers: 1 (one 1 Mbit/s layer) or 3 (simulcast)")),
    }
}

/// The frames of one publisher, made once per connection and sent again
/// and again: nothing is allocated per frame.
///
/// Every bool the VP8 decoder reads from them is 0. RFC 6386 §7.3's
/// decoder reads a bool as 1 only when its value reaches the split, so a
/// run of zero bytes reads as 0 whatever the probability, and no encoder
/// or probability table is needed. All zero means (§19.2): YUV, no
/// segmentation, no loop filter, one token partition, quantizer index
/// 0, no probability updates, no skip flags; in a keyframe each
/// macroblock is B_PRED with B_DC_PRED subblocks and DC_PRED chroma
/// (§11.2: B_PRED is `kf_ymode_tree`'s first leaf); in an interframe
/// `prob_intra` is 0, so each macroblock is intra, DC_PRED (§16.1:
/// `ymode_tree`'s first leaf); every block's first token is `dct_eob`
/// (§13.2). The picture is flat grey. The zeros after what the decoder
/// reads pad the frame to the layer's size and the publisher's id ends
/// it.
pub struct Frames {
    /// Per layer: a keyframe and a delta frame.
    video: Vec<(Vec<u8>, Vec<u8>)>,
    audio: Vec<u8>,
}

impl Frames {
    /// Frames of `layers` that end with `mark` (the publisher's id).
    pub fn new(mark: &str, layers: &[Layer]) -> Self {
        let video = (layers.iter())
            .map(|layer| {
                let size = layer.delta_bytes * KEYFRAME_FACTOR;
                (vp8(layer, true, mark, size), vp8(layer, false, mark, layer.delta_bytes))
            })
            .collect();
        // A TOC byte (RFC 6716 §3.1: SILK wideband, 20 ms, one frame).
        let audio = with_mark(vec![0x48], mark, AUDIO_BYTES);
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

/// Bits per macroblock that decoding an all-zero frame reads, with room
/// to spare: (first partition, token partition) of a keyframe and of an
/// interframe. libvpx (through ffmpeg) read about 4, 5.7, 10 and 0.9: in
/// frames with 0xFF bytes from some offset on, those bytes changed the
/// decoded picture only within these lengths.
const KEYFRAME_BITS: (usize, usize) = (8, 8);
const INTERFRAME_BITS: (usize, usize) = (16, 2);
/// Bytes beyond that, per partition: the bool decoder loads 2 bytes
/// before its first bool (RFC 6386 §7.3) and libvpx reads ahead.
const PARTITION_SLACK: usize = 16;

/// A VP8 frame of `size` bytes (more if the layer's picture needs it).
/// RFC 6386 §9.1: the frame tag (P = 0 for a keyframe, version 0,
/// shown, the first partition's size) and in a keyframe the start code
/// 9d 01 2a, the width and the height (14 bits each, no scaling); then
/// the first partition and the token partition, all zeros.
fn vp8(layer: &Layer, keyframe: bool, mark: &str, size: usize) -> Vec<u8> {
    let macroblocks = usize::from(layer.width.div_ceil(16)) * usize::from(layer.height.div_ceil(16));
    let (first_bits, token_bits) = if keyframe { KEYFRAME_BITS } else { INTERFRAME_BITS };
    let first = macroblocks * first_bits / 8 + PARTITION_SLACK;
    let tokens = macroblocks * token_bits / 8 + PARTITION_SLACK;
    let tag = u32::from(!keyframe) | 1 << 4 | (first as u32) << 5;
    let mut frame = tag.to_le_bytes()[..3].to_vec();
    if keyframe {
        frame.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        frame.extend_from_slice(&layer.width.to_le_bytes());
        frame.extend_from_slice(&layer.height.to_le_bytes());
    }
    frame.resize(frame.len() + first + tokens, 0);
    with_mark(frame, mark, size)
}

/// `frame`, padded with zeros so that with `from:MARK;` after them it is
/// `size` bytes long (or longer, if it already is).
fn with_mark(mut frame: Vec<u8>, mark: &str, size: usize) -> Vec<u8> {
    let tail = 6 + mark.len();
    frame.resize(frame.len().max(size.saturating_sub(tail)), 0);
    frame.extend_from_slice(b"from:");
    frame.extend_from_slice(mark.as_bytes());
    frame.push(b';');
    frame
}

/// The publisher a frame of natter load ends with (`from:ID;`), or
/// None for a frame that has no such end (a browser's).
pub fn publisher(frame: &[u8]) -> Option<&[u8]> {
    let body = frame.strip_suffix(b";")?;
    // A participant id is 16 hex digits; 64 bytes leave room for more.
    let tail = &body[body.len().saturating_sub(64)..];
    let at = tail.windows(5).rposition(|w| w == b"from:")?;
    Some(&tail[at + 5..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_counts_are_one_or_three() {
        assert_eq!(layers(1).map(<[Layer]>::len), Ok(1));
        assert_eq!(layers(3).map(<[Layer]>::len), Ok(3));
        for count in [0, 2, 4] {
            assert!(layers(count).is_err(), "{count}");
        }
        // One layer carries issue 13's 1 Mbit/s, three about as much in all.
        let kbits = |l: &[Layer]| {
            l.iter()
                .map(|l| l.delta_bytes * 8 * FRAME_RATE as usize / 1000)
                .sum::<usize>()
        };
        assert_eq!(kbits(&SINGLE), 1000);
        assert_eq!(kbits(&LAYERS), 1045);
    }

    #[test]
    fn frames_are_vp8_of_zero_bools_ending_with_their_publisher() {
        for layers in [&LAYERS[..], &SINGLE[..]] {
            let frames = Frames::new("abc", layers);
            for (i, layer) in layers.iter().enumerate() {
                let macroblocks = usize::from(layer.width.div_ceil(16)) * usize::from(layer.height.div_ceil(16));
                for (keyframe, size, header, bits) in [
                    (true, layer.delta_bytes * KEYFRAME_FACTOR, 10, KEYFRAME_BITS),
                    (false, layer.delta_bytes, 3, INTERFRAME_BITS),
                ] {
                    let frame = frames.video(i, keyframe);
                    // The layer's budget holds the picture: the bit rate is the one named.
                    assert_eq!(frame.len(), size, "layer {} keyframe {keyframe}", layer.rid);
                    // RFC 6386 §9.1: P, version 0, shown, the first partition's size.
                    let tag = u32::from_le_bytes([frame[0], frame[1], frame[2], 0]);
                    assert_eq!(tag & 1, u32::from(!keyframe));
                    assert_eq!(tag >> 1 & 0xF, 0b1000);
                    let first = (tag >> 5) as usize;
                    assert!(first * 8 >= macroblocks * bits.0, "first partition {first} bytes");
                    let body = &frame[header..frame.len() - "from:abc;".len()];
                    assert!(
                        body.len() - first >= macroblocks * bits.1 / 8,
                        "token partition {} bytes",
                        body.len() - first
                    );
                    assert!(body.iter().all(|b| *b == 0), "every bool reads as 0");
                    if keyframe {
                        assert_eq!(&frame[3..6], &[0x9d, 0x01, 0x2a]);
                        assert_eq!(u16::from_le_bytes([frame[6], frame[7]]), layer.width);
                        assert_eq!(u16::from_le_bytes([frame[8], frame[9]]), layer.height);
                    }
                    assert_eq!(publisher(frame), Some(&b"abc"[..]));
                }
            }
        }
        let frames = Frames::new("abc", &SINGLE);
        assert_eq!(frames.audio().len(), AUDIO_BYTES);
        assert_eq!(frames.audio()[0], 0x48);
        assert_eq!(publisher(frames.audio()), Some(&b"abc"[..]));
        // A browser's frame names no publisher.
        assert_eq!(publisher(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]), None);
        assert_eq!(publisher(b"xx;"), None);
    }
}
