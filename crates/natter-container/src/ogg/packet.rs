//! Packets of one logical stream, put together from pages and cut into
//! pages (RFC 3533 §5, §6).

use std::collections::VecDeque;
use std::io::{Read, Write};

use super::page::{Page, PageReader, FLAG_BOS, FLAG_CONTINUED, FLAG_EOS, MAX_SEGMENTS, NO_GRANULE};
use crate::{Error, Result};

/// libogg's `ogg_stream_pageout`: a page is closed once its body holds
/// about 4 KiB.
pub const DEFAULT_PAGE_SIZE: usize = 4096;

/// One packet of a logical stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub data: Vec<u8>,
    /// The granule position of the page the packet ends on, if it is the
    /// last packet to end there (RFC 3533 §6); `None` for the others.
    pub granule_position: Option<u64>,
    /// The last packet that ends on the stream's last page.
    pub eos: bool,
}

/// Reads the packets of one logical stream, the one whose page comes
/// first, skipping the pages of any other stream multiplexed with it
/// (RFC 3533 §4).
///
/// Pages of the stream must follow each other by sequence number, and a
/// page must continue a packet exactly when the one before left one
/// unfinished; otherwise [`Error::OggStream`].
#[derive(Debug)]
pub struct PacketReader<R> {
    pages: PageReader<R>,
    /// The stream's serial number and the sequence number of its last page.
    stream: Option<(u32, u32)>,
    /// The packet begun on an earlier page; a page leaves a packet
    /// unfinished only after a piece of at least 255 bytes.
    partial: Vec<u8>,
    ready: VecDeque<Packet>,
}

impl<R: Read> PacketReader<R> {
    pub fn new(r: R) -> Self {
        PacketReader {
            pages: PageReader::new(r),
            stream: None,
            partial: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// The serial number of the stream, once its first page is read.
    pub fn serial(&self) -> Option<u32> {
        self.stream.map(|(serial, _)| serial)
    }

    /// The next packet, or `None` where the input ends after a whole one.
    pub fn next_packet(&mut self) -> Result<Option<Packet>> {
        loop {
            if let Some(packet) = self.ready.pop_front() {
                return Ok(Some(packet));
            }
            let Some(page) = self.pages.next_page()? else {
                return match self.stream {
                    Some((serial, sequence)) if !self.partial.is_empty() => Err(Error::OggStream {
                        serial,
                        sequence,
                        reason: "the input ends inside a packet",
                    }),
                    _ => Ok(None),
                };
            };
            let stream_error = |reason| Error::OggStream {
                serial: page.serial,
                sequence: page.sequence,
                reason,
            };
            match self.stream {
                Some((serial, _)) if serial != page.serial => continue,
                Some((_, last)) if page.sequence != last.wrapping_add(1) => {
                    return Err(stream_error("the page sequence number skips or goes back"))
                }
                _ => self.stream = Some((page.serial, page.sequence)),
            }
            let unfinished = !self.partial.is_empty();
            if page.continued() != unfinished {
                return Err(stream_error(if page.continued() {
                    "the page continues a packet that was never begun"
                } else {
                    "the page does not continue the unfinished packet"
                }));
            }
            let before = self.ready.len();
            for (piece, complete) in page.packets() {
                self.partial.extend_from_slice(piece);
                if complete {
                    self.ready.push_back(Packet {
                        data: std::mem::take(&mut self.partial),
                        granule_position: None,
                        eos: false,
                    });
                }
            }
            if self.ready.len() > before {
                if page.granule_position == NO_GRANULE {
                    return Err(stream_error("packets end on a page with granule position -1"));
                }
                // Not empty: it grew just above.
                let last = self.ready.back_mut().expect("a packet ended on this page");
                last.granule_position = Some(page.granule_position);
                last.eos = page.eos();
            }
        }
    }
}

impl<R: Read> Iterator for PacketReader<R> {
    type Item = Result<Packet>;

    fn next(&mut self) -> Option<Result<Packet>> {
        self.next_packet().transpose()
    }
}

/// Cuts the packets of one logical stream into pages and writes them.
///
/// A page is written when the next packet would take its body past the
/// page size ([`Self::set_page_size`]), when its 255 lacing values are
/// used up (a long packet continues on the next page), at
/// [`Self::flush_page`], and by [`Self::finish`], which marks it as the
/// stream's last. The first page carries the BOS flag.
#[derive(Debug)]
pub struct PacketWriter<W> {
    w: W,
    serial: u32,
    /// The sequence number of the next page.
    sequence: u32,
    page_size: usize,
    segments: Vec<u8>,
    body: Vec<u8>,
    /// The page being filled starts with the rest of a packet.
    continued: bool,
    /// The granule position of the last packet ending on the page being filled.
    granule_position: u64,
    /// The page being encoded.
    out: Vec<u8>,
}

impl<W: Write> PacketWriter<W> {
    /// `serial` should be unique among the streams of a physical stream,
    /// so random (RFC 3533 §4); one stream alone in a file may use any.
    pub fn new(w: W, serial: u32) -> Self {
        PacketWriter {
            w,
            serial,
            sequence: 0,
            page_size: DEFAULT_PAGE_SIZE,
            segments: Vec::new(),
            body: Vec::new(),
            continued: false,
            granule_position: NO_GRANULE,
            out: Vec::new(),
        }
    }

    /// How many body bytes a page may collect before the next packet
    /// starts a new one; a single packet can still make a larger page.
    pub fn set_page_size(&mut self, bytes: usize) {
        self.page_size = bytes;
    }

    /// Adds a packet, writing out the pages it fills. `granule_position`
    /// is the codec's position at its end.
    pub fn write_packet(&mut self, data: &[u8], granule_position: u64) -> Result<()> {
        if self.segments.len() == MAX_SEGMENTS
            || (!self.body.is_empty() && self.body.len() + data.len() > self.page_size)
        {
            self.write_page(0)?;
        }
        // RFC 3533 §5: 255 for each full segment, then one under 255
        // (0 if the length is a multiple of 255).
        let mut rest = data;
        loop {
            let n = rest.len().min(255);
            self.segments.push(n as u8);
            self.body.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < 255 {
                break;
            }
            if self.segments.len() == MAX_SEGMENTS {
                self.write_page(0)?;
                self.continued = true;
            }
        }
        self.granule_position = granule_position;
        Ok(())
    }

    /// Writes out the page being filled, if it holds anything, so the
    /// next packet starts a page (RFC 7845 §3 wants this after each header).
    pub fn flush_page(&mut self) -> Result<()> {
        if self.segments.is_empty() {
            return Ok(());
        }
        self.write_page(0)
    }

    /// Writes the last page with the EOS flag (an empty one if nothing
    /// is left to write), flushes and gives back the output.
    pub fn finish(mut self) -> Result<W> {
        self.write_page(FLAG_EOS)?;
        self.w.flush()?;
        Ok(self.w)
    }

    fn write_page(&mut self, flags: u8) -> Result<()> {
        let mut header_type = flags;
        if self.continued {
            header_type |= FLAG_CONTINUED;
        }
        if self.sequence == 0 {
            header_type |= FLAG_BOS;
        }
        let page = Page {
            header_type,
            granule_position: self.granule_position,
            serial: self.serial,
            sequence: self.sequence,
            segments: &self.segments,
            body: &self.body,
        };
        self.out.clear();
        page.encode(&mut self.out);
        self.w.write_all(&self.out)?;
        self.sequence = self.sequence.wrapping_add(1);
        self.segments.clear();
        self.body.clear();
        self.continued = false;
        self.granule_position = NO_GRANULE;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::page::PageReader;
    use super::*;

    fn pages(file: &[u8]) -> Vec<(u8, u64, Vec<u8>)> {
        let mut r = PageReader::new(file);
        let mut out = Vec::new();
        while let Some(p) = r.next_page().unwrap() {
            out.push((p.header_type, p.granule_position, p.segments.to_vec()));
        }
        out
    }

    #[test]
    fn long_packets_continue_on_the_next_page() {
        let mut w = PacketWriter::new(Vec::new(), 9);
        w.write_packet(&[1; 255], 10).unwrap();
        w.write_packet(&vec![2; 255 * 300], 20).unwrap();
        w.write_packet(&[3; 4], 30).unwrap();
        let file = w.finish().unwrap();
        let pages = pages(&file);
        // The 255-byte packet ends with a 0 lacing value; the long one
        // would pass the page size, so it starts a page, fills it and
        // continues on the next, where the last packet does not fit; the
        // last page is marked EOS.
        assert_eq!(pages[0], (FLAG_BOS, 10, vec![255, 0]));
        assert_eq!(pages[1], (0, NO_GRANULE, vec![255; 255]));
        let mut rest = vec![255; 45];
        rest.push(0);
        assert_eq!(pages[2], (FLAG_CONTINUED, 20, rest));
        assert_eq!(pages[3], (FLAG_EOS, 30, vec![4]));
        assert_eq!(pages.len(), 4);

        let packets: Vec<Packet> = PacketReader::new(&file[..]).collect::<Result<_>>().unwrap();
        let summary: Vec<_> = packets
            .iter()
            .map(|p| (p.data.len(), p.granule_position, p.eos))
            .collect();
        assert_eq!(
            summary,
            [
                (255, Some(10), false),
                (255 * 300, Some(20), false),
                (4, Some(30), true)
            ]
        );
    }

    #[test]
    fn page_size_and_flush_close_pages() {
        let mut w = PacketWriter::new(Vec::new(), 9);
        w.set_page_size(10);
        for g in 0..4 {
            w.write_packet(&[g as u8; 4], g).unwrap();
        }
        w.flush_page().unwrap();
        w.flush_page().unwrap();
        let file = w.finish().unwrap();
        let pages = pages(&file);
        assert_eq!(
            pages,
            [
                (FLAG_BOS, 1, vec![4, 4]),
                (0, 3, vec![4, 4]),
                // finish() after a flush: an empty page, only to carry EOS.
                (FLAG_EOS, NO_GRANULE, vec![]),
            ]
        );
    }

    /// Writes pages built by hand.
    fn file(pages: &[Page<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pages {
            p.encode(&mut out);
        }
        out
    }

    fn page<'a>(serial: u32, sequence: u32, header_type: u8, segments: &'a [u8], body: &'a [u8]) -> Page<'a> {
        Page {
            header_type,
            granule_position: u64::from(sequence),
            serial,
            sequence,
            segments,
            body,
        }
    }

    fn read_all(file: &[u8]) -> Result<Vec<Packet>> {
        PacketReader::new(file).collect()
    }

    #[test]
    fn other_streams_are_skipped() {
        let f = file(&[
            page(1, 0, FLAG_BOS, &[1], b"a"),
            page(2, 0, FLAG_BOS, &[1], b"x"),
            page(1, 1, 0, &[1], b"b"),
        ]);
        let mut r = PacketReader::new(&f[..]);
        let data: Vec<Vec<u8>> = r.by_ref().map(|p| p.unwrap().data).collect();
        assert_eq!(data, [b"a", b"b"]);
        assert_eq!(r.serial(), Some(1));
    }

    #[test]
    fn stream_errors() {
        let reason = |pages: &[Page<'_>]| match read_all(&file(pages)) {
            Err(Error::OggStream { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        let full = [0u8; 255];
        assert!(reason(&[page(1, 0, 0, &[1], b"a"), page(1, 2, 0, &[1], b"b")]).contains("skips"));
        assert!(reason(&[page(1, 0, FLAG_CONTINUED, &[1], b"a")]).contains("never begun"));
        assert!(reason(&[page(1, 0, 0, &[255], &full), page(1, 1, 0, &[1], b"b")]).contains("does not continue"));
        assert!(reason(&[page(1, 0, 0, &[255], &full)]).contains("ends inside"));
        let no_granule = Page {
            granule_position: NO_GRANULE,
            ..page(1, 0, 0, &[1], b"a")
        };
        assert!(reason(&[no_granule]).contains("-1"));
    }
}
