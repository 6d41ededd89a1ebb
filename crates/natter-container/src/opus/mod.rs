//! Opus in Ogg (RFC 7845): the OpusHead and OpusTags headers, the reader
//! and writer of Ogg Opus files, and the duration of an Opus packet
//! from its TOC byte (RFC 6716 §3.1) for the granule positions.
//!
//! Granule positions count 48 kHz samples from the start of the stream,
//! pre-skip included (RFC 7845 §4).

mod head;
mod ogg_opus;

pub use head::{ChannelMapping, OpusHead, OpusTags, DEFAULT_PRE_SKIP};
pub use ogg_opus::{OggOpusReader, OggOpusWriter, OpusPacket, DEFAULT_SERIAL};

use crate::{Error, Result};

/// RFC 6716 §3.2.5 (R5): a packet lasts at most 120 ms.
pub const MAX_PACKET_SAMPLES: u32 = 5760;

/// The duration in 48 kHz samples of each frame of a packet with this
/// TOC byte: its configuration number (the top five bits) picks the
/// mode and frame size (RFC 6716 §3.1, Table 2).
pub fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// The duration in 48 kHz samples of an Opus packet: the frame size of
/// its TOC byte times its frame count (RFC 6716 §3.2: one frame for
/// code 0, two for codes 1 and 2, and the count byte's M for code 3).
///
/// ```
/// // CELT, 20 ms (config 31), code 0: one frame.
/// assert_eq!(natter_container::opus::packet_samples(&[0xf8, 0xff, 0xfe])?, 960);
/// # Ok::<(), natter_container::Error>(())
/// ```
pub fn packet_samples(packet: &[u8]) -> Result<u32> {
    let (&toc, rest) = packet
        .split_first()
        .ok_or(Error::OpusPacket("empty, but R1 requires at least the TOC byte"))?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => match rest.first().map(|count| count & 0x3f) {
            None => return Err(Error::OpusPacket("code 3 without its frame count byte (R6, R7)")),
            Some(0) => return Err(Error::OpusPacket("code 3 with a frame count of 0 (R5)")),
            Some(m) => u32::from(m),
        },
    };
    let samples = frames * frame_samples(toc);
    if samples > MAX_PACKET_SAMPLES {
        return Err(Error::OpusPacket("its frames last more than 120 ms (R5)"));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_sizes_of_every_mode() {
        let config = |c: u8| frame_samples(c << 3);
        assert_eq!([config(0), config(1), config(2), config(3)], [480, 960, 1920, 2880]);
        assert_eq!([config(8), config(11)], [480, 2880]);
        assert_eq!([config(12), config(13), config(14), config(15)], [480, 960, 480, 960]);
        assert_eq!([config(16), config(17), config(18), config(19)], [120, 240, 480, 960]);
        assert_eq!(config(31), 960);
    }

    #[test]
    fn frame_counts_of_every_code() {
        // Config 1 (SILK, 20 ms) with codes 0 to 3.
        assert_eq!(packet_samples(&[0x08]).unwrap(), 960);
        assert_eq!(packet_samples(&[0x09, 0, 0]).unwrap(), 1920);
        assert_eq!(packet_samples(&[0x0a, 1, 0]).unwrap(), 1920);
        assert_eq!(packet_samples(&[0x0b, 0x83]).unwrap(), 2880);
        // Config 16 (CELT, 2.5 ms): 48 frames are 120 ms, the most allowed.
        assert_eq!(packet_samples(&[0x83, 48]).unwrap(), MAX_PACKET_SAMPLES);
    }

    #[test]
    fn malformed_packets() {
        assert!(matches!(packet_samples(&[]), Err(Error::OpusPacket(_))));
        assert!(matches!(packet_samples(&[0x0b]), Err(Error::OpusPacket(_))));
        assert!(matches!(packet_samples(&[0x0b, 0x40]), Err(Error::OpusPacket(_))));
        // Config 3 (SILK, 60 ms) times 3 frames is 180 ms.
        assert!(matches!(packet_samples(&[0x1b, 3]), Err(Error::OpusPacket(_))));
        assert!(matches!(packet_samples(&[0x83, 49]), Err(Error::OpusPacket(_))));
    }
}
