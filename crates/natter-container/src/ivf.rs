//! IVF, the simple container libvpx writes VP8, VP9 and AV1 frames in.
//!
//! There is no formal specification; the layout is the one of libvpx's
//! `ivfenc.c` and `ivfdec.c` (also described in the AV1 conformance
//! streams and FFmpeg's `ivfenc.c`). All fields are little-endian.
//!
//! A 32-byte file header:
//!
//! | bytes | field |
//! |---|---|
//! | 0-3 | signature "DKIF" |
//! | 4-5 | version, 0 |
//! | 6-7 | header length, 32 |
//! | 8-11 | codec FourCC ("VP80", "VP90", "AV01") |
//! | 12-13, 14-15 | width, height in pixels |
//! | 16-19, 20-23 | time base denominator, numerator (a frame rate of 30 is 30/1) |
//! | 24-27 | frame count |
//! | 28-31 | unused |
//!
//! then each frame behind a 12-byte header: its size (4 bytes) and its
//! presentation timestamp in time base units (8 bytes).

use std::io::{Read, Seek, SeekFrom, Write};

use crate::read::{read_record, read_to_vec};
use crate::{Error, Result};

/// The length of the file header.
pub const FILE_HEADER_LEN: usize = 32;
/// The length of the header in front of each frame.
pub const FRAME_HEADER_LEN: usize = 12;
/// Offset of the frame count in the file header.
const FRAME_COUNT_OFFSET: usize = 24;
const SIGNATURE: [u8; 4] = *b"DKIF";

/// The FourCC of VP8.
pub const FOURCC_VP8: [u8; 4] = *b"VP80";
/// The FourCC of VP9.
pub const FOURCC_VP9: [u8; 4] = *b"VP90";
/// The FourCC of AV1.
pub const FOURCC_AV1: [u8; 4] = *b"AV01";

/// The fields of an IVF file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvfHeader {
    pub fourcc: [u8; 4],
    pub width: u16,
    pub height: u16,
    /// Timestamps count units of `timebase_numerator / timebase_denominator`
    /// seconds.
    pub timebase_denominator: u32,
    pub timebase_numerator: u32,
    /// As the writer left it: files written to a pipe often say 0.
    pub frame_count: u32,
}

impl IvfHeader {
    /// Parses a file header, checking signature, version and length.
    pub fn parse(b: &[u8; FILE_HEADER_LEN]) -> Result<Self> {
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let signature = [b[0], b[1], b[2], b[3]];
        if signature != SIGNATURE {
            return Err(Error::IvfSignature(signature));
        }
        if u16_at(4) != 0 {
            return Err(Error::IvfVersion(u16_at(4)));
        }
        if usize::from(u16_at(6)) != FILE_HEADER_LEN {
            return Err(Error::IvfHeaderLen(u16_at(6)));
        }
        Ok(IvfHeader {
            fourcc: [b[8], b[9], b[10], b[11]],
            width: u16_at(12),
            height: u16_at(14),
            timebase_denominator: u32_at(16),
            timebase_numerator: u32_at(20),
            frame_count: u32_at(FRAME_COUNT_OFFSET),
        })
    }

    /// The 32 bytes of the file header.
    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..4].copy_from_slice(&SIGNATURE);
        b[6..8].copy_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.fourcc);
        b[12..14].copy_from_slice(&self.width.to_le_bytes());
        b[14..16].copy_from_slice(&self.height.to_le_bytes());
        b[16..20].copy_from_slice(&self.timebase_denominator.to_le_bytes());
        b[20..24].copy_from_slice(&self.timebase_numerator.to_le_bytes());
        b[24..28].copy_from_slice(&self.frame_count.to_le_bytes());
        b
    }
}

/// One frame and its presentation timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IvfFrame {
    /// In time base units ([`IvfHeader::timebase_numerator`]).
    pub pts: u64,
    pub data: Vec<u8>,
}

/// Reads an IVF file: the header at once, then frames one by one until
/// the input ends (the header's frame count is not trusted).
///
/// ```
/// use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter, FOURCC_VP8};
///
/// let header = IvfHeader {
///     fourcc: FOURCC_VP8,
///     width: 320,
///     height: 240,
///     timebase_denominator: 30,
///     timebase_numerator: 1,
///     frame_count: 0,
/// };
/// let mut w = IvfWriter::new(Vec::new(), &header)?;
/// w.write_frame(0, b"key")?;
/// w.write_frame(1, b"delta")?;
/// let file = w.finish()?;
///
/// let mut r = IvfReader::new(&file[..])?;
/// assert_eq!(r.header().width, 320);
/// let frames: Vec<_> = r.collect::<Result<_, _>>()?;
/// assert_eq!((frames[1].pts, &frames[1].data[..]), (1, &b"delta"[..]));
/// # Ok::<(), natter_container::Error>(())
/// ```
#[derive(Debug)]
pub struct IvfReader<R> {
    r: R,
    header: IvfHeader,
    /// Where the next frame header starts.
    offset: u64,
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut r: R) -> Result<Self> {
        let mut b = [0u8; FILE_HEADER_LEN];
        if !read_record(&mut r, &mut b, "IVF file header", 0)? {
            return Err(Error::Truncated {
                what: "IVF file header",
                offset: 0,
                needed: FILE_HEADER_LEN,
                available: 0,
            });
        }
        Ok(IvfReader {
            r,
            header: IvfHeader::parse(&b)?,
            offset: FILE_HEADER_LEN as u64,
        })
    }

    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// The next frame, or `None` where the input ends between frames.
    pub fn next_frame(&mut self) -> Result<Option<IvfFrame>> {
        let mut b = [0u8; FRAME_HEADER_LEN];
        if !read_record(&mut self.r, &mut b, "IVF frame header", self.offset)? {
            return Ok(None);
        }
        let [s0, s1, s2, s3, pts @ ..] = b;
        let size = u32::from_le_bytes([s0, s1, s2, s3]) as usize;
        let mut data = Vec::new();
        let body_offset = self.offset + FRAME_HEADER_LEN as u64;
        read_to_vec(&mut self.r, size, &mut data, "IVF frame", body_offset)?;
        self.offset = body_offset + size as u64;
        Ok(Some(IvfFrame {
            pts: u64::from_le_bytes(pts),
            data,
        }))
    }
}

impl<R: Read> Iterator for IvfReader<R> {
    type Item = Result<IvfFrame>;

    fn next(&mut self) -> Option<Result<IvfFrame>> {
        self.next_frame().transpose()
    }
}

/// Writes an IVF file: the header when created, then each frame.
///
/// The header's frame count is written as given; [`Self::finish_with_frame_count`]
/// puts the number of frames written there when the output can seek.
#[derive(Debug)]
pub struct IvfWriter<W> {
    w: W,
    frames: u32,
    /// Bytes written, so the header can be found again.
    written: u64,
}

impl<W: Write> IvfWriter<W> {
    /// Writes the file header.
    pub fn new(mut w: W, header: &IvfHeader) -> Result<Self> {
        w.write_all(&header.encode())?;
        Ok(IvfWriter {
            w,
            frames: 0,
            written: FILE_HEADER_LEN as u64,
        })
    }

    /// Writes one frame with its presentation timestamp.
    pub fn write_frame(&mut self, pts: u64, data: &[u8]) -> Result<()> {
        let size = u32::try_from(data.len()).map_err(|_| Error::IvfFrameTooLarge(data.len()))?;
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[..4].copy_from_slice(&size.to_le_bytes());
        b[4..].copy_from_slice(&pts.to_le_bytes());
        self.w.write_all(&b)?;
        self.w.write_all(data)?;
        self.frames = self.frames.saturating_add(1);
        self.written += (FRAME_HEADER_LEN + data.len()) as u64;
        Ok(())
    }

    /// How many frames have been written.
    pub fn frames_written(&self) -> u32 {
        self.frames
    }

    /// Flushes and gives back the output, leaving the header's frame
    /// count as it was written.
    pub fn finish(mut self) -> Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Puts the number of frames written into the header, then flushes
    /// and gives back the output positioned at the end of the file.
    pub fn finish_with_frame_count(mut self) -> Result<W> {
        let end = self.w.stream_position()?;
        // The header and every frame went through `w`, so it is at least `written` bytes in.
        let count_at = end - self.written + FRAME_COUNT_OFFSET as u64;
        self.w.seek(SeekFrom::Start(count_at))?;
        self.w.write_all(&self.frames.to_le_bytes())?;
        self.w.seek(SeekFrom::Start(end))?;
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// The header FFmpeg 5.1 wrote for 30 VP8 frames of 320x240 at 30 fps.
    const FFMPEG_HEADER: [u8; 32] = [
        b'D', b'K', b'I', b'F', 0, 0, 32, 0, b'V', b'P', b'8', b'0', 0x40, 0x01, 0xf0, 0, 30, 0, 0, 0, 1, 0, 0, 0, 30,
        0, 0, 0, 0, 0, 0, 0,
    ];

    fn vp8_header() -> IvfHeader {
        IvfHeader {
            fourcc: FOURCC_VP8,
            width: 320,
            height: 240,
            timebase_denominator: 30,
            timebase_numerator: 1,
            frame_count: 30,
        }
    }

    #[test]
    fn header_layout() {
        assert_eq!(IvfHeader::parse(&FFMPEG_HEADER).unwrap(), vp8_header());
        assert_eq!(vp8_header().encode(), FFMPEG_HEADER);
    }

    #[test]
    fn header_errors() {
        let with = |at: usize, b: u8| {
            let mut h = FFMPEG_HEADER;
            h[at] = b;
            IvfHeader::parse(&h).unwrap_err()
        };
        assert!(matches!(with(0, b'd'), Error::IvfSignature(s) if &s == b"dKIF"));
        assert!(matches!(with(4, 1), Error::IvfVersion(1)));
        assert!(matches!(with(6, 64), Error::IvfHeaderLen(64)));
        let short = IvfReader::new(&FFMPEG_HEADER[..31]).unwrap_err();
        assert_eq!(short.truncation(), Some((0, 32, 31)));
        let empty = IvfReader::new(&[][..]).unwrap_err();
        assert!(matches!(empty, Error::Truncated { available: 0, .. }));
    }

    #[test]
    fn frames_and_truncation() {
        let mut file = FFMPEG_HEADER.to_vec();
        file.extend_from_slice(&[3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'c']);
        let mut r = IvfReader::new(&file[..]).unwrap();
        let frame = r.next_frame().unwrap().unwrap();
        assert_eq!((frame.pts, &frame.data[..]), (7, &b"abc"[..]));
        assert!(r.next_frame().unwrap().is_none());

        // A frame header cut short, then a frame body.
        let r = IvfReader::new(&file[..40]).unwrap();
        let err = r.last().unwrap().unwrap_err();
        assert_eq!(err.truncation(), Some((32, 12, 8)));
        let mut r = IvfReader::new(&file[..file.len() - 1]).unwrap();
        let err = r.next_frame().unwrap_err();
        assert_eq!(err.truncation(), Some((44, 3, 2)));
    }

    #[test]
    fn a_huge_frame_size_allocates_only_what_is_there() {
        let mut file = FFMPEG_HEADER.to_vec();
        file.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let err = IvfReader::new(&file[..]).unwrap().next_frame().unwrap_err();
        assert_eq!(err.truncation(), Some((44, 0xffff_ffff, 1)));
    }

    #[test]
    fn frame_count_patched_where_the_header_was_written() {
        let mut out = Cursor::new(b"prefix".to_vec());
        out.set_position(6);
        let header = IvfHeader {
            frame_count: 0,
            ..vp8_header()
        };
        let mut w = IvfWriter::new(out, &header).unwrap();
        for pts in 0..3 {
            w.write_frame(pts, &[pts as u8; 5]).unwrap();
        }
        assert_eq!(w.frames_written(), 3);
        let out = w.finish_with_frame_count().unwrap();
        assert_eq!(out.position(), out.get_ref().len() as u64);
        let file = &out.get_ref()[6..];
        let r = IvfReader::new(file).unwrap();
        assert_eq!(r.header().frame_count, 3);
        assert_eq!(r.count(), 3);
    }
}
