//! natter-container: the media file formats Natter's examples and CLI
//! read and write.
//!
//! - [`ivf`]: IVF, libvpx's container for VP8, VP9 and AV1 frames.
//! - [`ogg`]: Ogg pages and packets (RFC 3533).
//! - [`opus`]: Ogg Opus files (RFC 7845) and Opus packet durations
//!   (RFC 6716 §3.1, §3.2).
//! - [`h264`]: H.264 Annex B byte streams (ITU-T H.264 Annex B), split
//!   into access units (§7.4.1.2.3) and written from their NAL units,
//!   and their ISO/IEC 14496-15 form (decoder configuration record and
//!   length-prefixed samples).
//! - [`av1`]: AV1 temporal units as Matroska holds them, and their
//!   AV1CodecConfigurationRecord.
//! - [`webm`]: WebM and Matroska (RFC 9559) files of VP8, VP9, AV1 or
//!   H.264 video and Opus audio, written as frames arrive (a writer
//!   only).
//!
//! Readers take an `impl Read` (a `&[u8]` will do) or a slice and return
//! an [`Error`] for any malformed or truncated input, never panicking;
//! writers write into an `impl Write`. Nothing here opens files, reads a
//! clock or draws random numbers. Not here: Ogg resynchronisation after
//! damage and chained streams, decoding, and seeking.
//!
//! ```
//! use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter, FOURCC_VP8};
//! use natter_container::opus::{packet_samples, OggOpusReader, OggOpusWriter};
//!
//! // Copy the frames of an IVF file into another...
//! let header = IvfHeader {
//!     fourcc: FOURCC_VP8,
//!     width: 640,
//!     height: 480,
//!     timebase_denominator: 30,
//!     timebase_numerator: 1,
//!     frame_count: 1,
//! };
//! let mut w = IvfWriter::new(Vec::new(), &header)?;
//! w.write_frame(0, b"keyframe")?;
//! let file = w.finish()?;
//! let r = IvfReader::new(&file[..])?;
//! let mut copy = IvfWriter::new(std::io::Cursor::new(Vec::new()), r.header())?;
//! for frame in r {
//!     let frame = frame?;
//!     copy.write_frame(frame.pts, &frame.data)?;
//! }
//! assert_eq!(copy.finish_with_frame_count()?.into_inner(), file);
//!
//! // ...and Opus packets into an Ogg Opus file, granules from their TOC bytes.
//! let mut w = OggOpusWriter::new(Vec::new(), 1, 48_000)?;
//! for packet in [&[0x08, 0x11][..], &[0x09, 0x22, 0x33]] {
//!     w.write_packet(packet, packet_samples(packet)?)?;
//! }
//! let file = w.finish()?;
//! let last = OggOpusReader::new(&file[..])?.last().unwrap()?;
//! assert_eq!(last.granule_position, 960 + 1920);
//! # Ok::<(), natter_container::Error>(())
//! ```

pub mod av1;
mod error;
pub mod h264;
pub mod ivf;
pub mod ogg;
pub mod opus;
mod read;
pub mod webm;

pub use error::{Error, Result};
