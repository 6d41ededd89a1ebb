//! Ogg pages (RFC 3533 §6): a 27-byte header, the segment table, and a
//! body holding pieces of packets.

use std::io::Read;

use super::crc;
use crate::read::{read_record, read_to_vec};
use crate::{Error, Result};

/// RFC 3533 §6: the first four bytes of every page.
pub const CAPTURE_PATTERN: [u8; 4] = *b"OggS";
/// RFC 3533 §6: the header up to and including `page_segments`.
pub const PAGE_HEADER_LEN: usize = 27;
/// RFC 3533 §6: `page_segments` is one byte.
pub const MAX_SEGMENTS: usize = 255;
/// RFC 3533 §6: granule position -1 says no packet ends on the page.
pub const NO_GRANULE: u64 = u64::MAX;
/// RFC 3533 §6, header_type_flag: the page starts with the rest of a packet.
pub const FLAG_CONTINUED: u8 = 0x01;
/// RFC 3533 §6, header_type_flag: the first page of a logical stream.
pub const FLAG_BOS: u8 = 0x02;
/// RFC 3533 §6, header_type_flag: the last page of a logical stream.
pub const FLAG_EOS: u8 = 0x04;

/// Offsets in the page header (RFC 3533 §6).
const CRC_AT: usize = 22;
const SEGMENTS_AT: usize = 26;

/// A page, borrowed from the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page<'a> {
    /// [`FLAG_CONTINUED`], [`FLAG_BOS`], [`FLAG_EOS`].
    pub header_type: u8,
    /// The codec's position at the end of the last packet that ends on
    /// this page, or [`NO_GRANULE`].
    pub granule_position: u64,
    pub serial: u32,
    pub sequence: u32,
    /// The lacing values: a packet ends with the first one under 255
    /// (RFC 3533 §5).
    pub segments: &'a [u8],
    pub body: &'a [u8],
}

impl<'a> Page<'a> {
    /// Parses the page at the start of `buf`, checking its CRC; bytes
    /// after it are left alone ([`Self::encoded_len`] says where it ends).
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let header = part(buf, 0, PAGE_HEADER_LEN, "Ogg page header")?;
        check_header(header)?;
        let segments = part(
            buf,
            PAGE_HEADER_LEN,
            usize::from(header[SEGMENTS_AT]),
            "Ogg segment table",
        )?;
        let body_at = PAGE_HEADER_LEN + segments.len();
        let body = part(buf, body_at, body_len(segments), "Ogg page body")?;
        let u32_at = |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let page = Page {
            header_type: header[5],
            granule_position: u64::from_le_bytes([
                header[6], header[7], header[8], header[9], header[10], header[11], header[12], header[13],
            ]),
            serial: u32_at(14),
            sequence: u32_at(18),
            segments,
            body,
        };
        let stored = u32_at(CRC_AT);
        let computed = crc::update(
            crc::update(crc::update(0, &header[..CRC_AT]), &[0; 4]),
            &buf[CRC_AT + 4..body_at + body.len()],
        );
        if stored != computed {
            return Err(Error::OggCrc {
                serial: page.serial,
                sequence: page.sequence,
                stored,
                computed,
            });
        }
        Ok(page)
    }

    /// The page's length in bytes: header, segment table and body.
    pub fn encoded_len(&self) -> usize {
        PAGE_HEADER_LEN + self.segments.len() + self.body.len()
    }

    /// The page starts with the rest of a packet begun on an earlier one.
    pub fn continued(&self) -> bool {
        self.header_type & FLAG_CONTINUED != 0
    }

    pub fn bos(&self) -> bool {
        self.header_type & FLAG_BOS != 0
    }

    pub fn eos(&self) -> bool {
        self.header_type & FLAG_EOS != 0
    }

    /// The pieces of packets in the body, in order, each with whether it
    /// ends its packet; only the last piece can leave its packet
    /// unfinished, to be continued on the next page.
    pub fn packets(&self) -> PagePackets<'a> {
        PagePackets {
            segments: self.segments,
            body: self.body,
        }
    }

    /// Appends the page to `out`, with its CRC. A page whose segment
    /// table holds more than [`MAX_SEGMENTS`] values or does not add up
    /// to the body's length encodes to bytes that do not parse back.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&CAPTURE_PATTERN);
        out.push(0);
        out.push(self.header_type);
        out.extend_from_slice(&self.granule_position.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.sequence.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(self.segments.len() as u8);
        out.extend_from_slice(self.segments);
        out.extend_from_slice(self.body);
        let crc = crc::update(0, &out[start..]);
        out[start + CRC_AT..start + CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// `len` bytes of `buf` from `at`, or how much of them is missing.
fn part<'a>(buf: &'a [u8], at: usize, len: usize, what: &'static str) -> Result<&'a [u8]> {
    buf.get(at..at + len).ok_or(Error::Truncated {
        what,
        offset: at as u64,
        needed: len,
        available: buf.len().saturating_sub(at),
    })
}

/// Checks the capture pattern and version of a page header.
fn check_header(header: &[u8]) -> Result<()> {
    let capture = [header[0], header[1], header[2], header[3]];
    if capture != CAPTURE_PATTERN {
        return Err(Error::OggCapturePattern(capture));
    }
    match header[4] {
        0 => Ok(()),
        version => Err(Error::OggVersion(version)),
    }
}

fn body_len(segments: &[u8]) -> usize {
    segments.iter().map(|&l| usize::from(l)).sum()
}

/// The pieces of packets in a page ([`Page::packets`]).
#[derive(Clone, Debug)]
pub struct PagePackets<'a> {
    segments: &'a [u8],
    body: &'a [u8],
}

impl<'a> Iterator for PagePackets<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<(&'a [u8], bool)> {
        if self.segments.is_empty() {
            return None;
        }
        let (lacing, complete) = match self.segments.iter().position(|&l| l < 255) {
            Some(i) => (i + 1, true),
            None => (self.segments.len(), false),
        };
        // A page built by hand may have less body than its segment table says.
        let len = body_len(&self.segments[..lacing]).min(self.body.len());
        let (piece, rest) = self.body.split_at(len);
        self.segments = &self.segments[lacing..];
        self.body = rest;
        Some((piece, complete))
    }
}

/// Reads pages one after another from an `impl Read`.
#[derive(Debug)]
pub struct PageReader<R> {
    r: R,
    /// The current page.
    buf: Vec<u8>,
    /// Where the next page starts.
    offset: u64,
}

impl<R: Read> PageReader<R> {
    pub fn new(r: R) -> Self {
        PageReader {
            r,
            buf: Vec::new(),
            offset: 0,
        }
    }

    /// The next page, or `None` where the input ends between pages.
    pub fn next_page(&mut self) -> Result<Option<Page<'_>>> {
        let mut header = [0u8; PAGE_HEADER_LEN];
        if !read_record(&mut self.r, &mut header, "Ogg page header", self.offset)? {
            return Ok(None);
        }
        check_header(&header)?;
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        let segments = usize::from(header[SEGMENTS_AT]);
        let table_at = self.offset + PAGE_HEADER_LEN as u64;
        read_to_vec(&mut self.r, segments, &mut self.buf, "Ogg segment table", table_at)?;
        let body = body_len(&self.buf[PAGE_HEADER_LEN..]);
        let body_at = table_at + segments as u64;
        read_to_vec(&mut self.r, body, &mut self.buf, "Ogg page body", body_at)?;
        self.offset = body_at + body as u64;
        Page::parse(&self.buf).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first page FFmpeg 5.1 wrote for a mono libopus stream.
    const FFMPEG_FIRST_PAGE: [u8; 47] = [
        b'O', b'g', b'g', b'S', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0xbd, 0x7f, 0x2f, 0, 0, 0, 0, 0x46, 0xab, 0xbf,
        0x29, 1, 19, b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_and_encodes_a_real_page() {
        let page = Page::parse(&FFMPEG_FIRST_PAGE).unwrap();
        assert!(page.bos() && !page.eos() && !page.continued());
        assert_eq!((page.granule_position, page.serial, page.sequence), (0, 0x2f7f_bd10, 0));
        assert_eq!(page.encoded_len(), FFMPEG_FIRST_PAGE.len());
        assert_eq!(page.packets().collect::<Vec<_>>(), [(&FFMPEG_FIRST_PAGE[28..], true)]);
        let mut out = vec![0xaa];
        page.encode(&mut out);
        assert_eq!(out[1..], FFMPEG_FIRST_PAGE);
    }

    #[test]
    fn header_errors() {
        let with = |at: usize, b: u8| {
            let mut p = FFMPEG_FIRST_PAGE;
            p[at] ^= b;
            Page::parse(&p).unwrap_err()
        };
        assert!(matches!(with(0, 0x20), Error::OggCapturePattern(c) if &c == b"oggS"));
        assert!(matches!(with(4, 1), Error::OggVersion(1)));
        let err = with(40, 1);
        assert!(
            matches!(
                err,
                Error::OggCrc {
                    stored: 0x29bf_ab46,
                    ..
                }
            ),
            "{err}"
        );
        let err = Page::parse(&FFMPEG_FIRST_PAGE[..46]).unwrap_err();
        assert_eq!(err.truncation(), Some((28, 19, 18)));
        let err = Page::parse(&FFMPEG_FIRST_PAGE[..20]).unwrap_err();
        assert_eq!(err.truncation(), Some((0, 27, 20)));
    }

    #[test]
    fn lacing_splits_the_body_into_packets() {
        let body = [1u8; 255 + 10 + 255 + 255];
        let page = Page {
            header_type: 0,
            granule_position: 0,
            serial: 1,
            sequence: 0,
            segments: &[255, 10, 0, 255, 255],
            body: &body,
        };
        let pieces: Vec<(usize, bool)> = page.packets().map(|(p, complete)| (p.len(), complete)).collect();
        assert_eq!(pieces, [(265, true), (0, true), (510, false)]);
    }

    #[test]
    fn page_reader_reports_stream_offsets() {
        let mut two = FFMPEG_FIRST_PAGE.to_vec();
        two.extend_from_slice(&FFMPEG_FIRST_PAGE[..40]);
        let mut r = PageReader::new(&two[..]);
        assert_eq!(r.next_page().unwrap().unwrap().sequence, 0);
        let err = r.next_page().unwrap_err();
        assert_eq!(err.truncation(), Some((75, 19, 12)));
        let mut r = PageReader::new(&b"RIFF...."[..]);
        assert!(matches!(r.next_page(), Err(Error::Truncated { offset: 0, .. })));
        let mut r = PageReader::new(&[0u8; 40][..]);
        assert!(matches!(r.next_page(), Err(Error::OggCapturePattern(_))));
    }
}
