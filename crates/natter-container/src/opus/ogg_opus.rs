//! Ogg Opus files (RFC 7845 §3, §4): OpusHead alone on the first page,
//! OpusTags on the pages after it, then audio packets.

use std::collections::VecDeque;
use std::io::{Read, Write};

use super::head::{OpusHead, OpusTags};
use super::packet_samples;
use crate::ogg::{Packet, PacketReader, PacketWriter};
use crate::{Error, Result};

/// The serial number [`OggOpusWriter::new`] gives its stream. RFC 3533
/// §4 wants serials unique within a physical stream; a file with one
/// stream may use any.
pub const DEFAULT_SERIAL: u32 = 0x4e41_5454;

/// An audio packet and its granule position: the 48 kHz sample count,
/// pre-skip included, at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpusPacket {
    pub data: Vec<u8>,
    pub granule_position: u64,
}

/// Reads an Ogg Opus file: the two headers at once, then audio packets.
///
/// Ogg gives a granule position only to the last packet ending on each
/// page; the others get theirs by walking back from it with each
/// packet's duration ([`packet_samples`]), as RFC 7845 §4 describes. A
/// page whose granule position is smaller than its packets' durations
/// (end trimming of a one-page stream, RFC 7845 §4.5) leaves the
/// earliest packets at 0.
///
/// ```
/// use natter_container::opus::{OggOpusReader, OggOpusWriter};
///
/// let mut w = OggOpusWriter::new(Vec::new(), 2, 48_000)?;
/// w.write_packet(&[0xfc, 0xff, 0xfe], 960)?;
/// w.write_packet(&[0xfc, 0xff, 0xfe], 960)?;
/// let file = w.finish()?;
///
/// let r = OggOpusReader::new(&file[..])?;
/// assert_eq!(r.head().channels, 2);
/// let granules: Vec<u64> = r.map(|p| p.map(|p| p.granule_position)).collect::<Result<_, _>>()?;
/// assert_eq!(granules, [960, 1920]);
/// # Ok::<(), natter_container::Error>(())
/// ```
#[derive(Debug)]
pub struct OggOpusReader<R> {
    packets: PacketReader<R>,
    head: OpusHead,
    tags: OpusTags,
    /// Packets of the current page that end before its last one.
    pending: Vec<Vec<u8>>,
    ready: VecDeque<OpusPacket>,
}

impl<R: Read> OggOpusReader<R> {
    /// Reads and parses OpusHead and OpusTags.
    pub fn new(r: R) -> Result<Self> {
        let mut packets = PacketReader::new(r);
        let mut header = |header| {
            packets.next_packet()?.ok_or(Error::OpusHeader {
                header,
                reason: "the stream ends before it",
            })
        };
        let head = OpusHead::parse(&header("OpusHead")?.data)?;
        let tags = OpusTags::parse(&header("OpusTags")?.data)?;
        Ok(OggOpusReader {
            packets,
            head,
            tags,
            pending: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    pub fn head(&self) -> &OpusHead {
        &self.head
    }

    pub fn tags(&self) -> &OpusTags {
        &self.tags
    }

    /// The next audio packet, or `None` at the end of the stream.
    pub fn next_packet(&mut self) -> Result<Option<OpusPacket>> {
        while self.ready.is_empty() {
            let Some(Packet {
                data, granule_position, ..
            }) = self.packets.next_packet()?
            else {
                // Every page ending packets has a granule position, so none are pending.
                return Ok(None);
            };
            self.pending.push(data);
            let Some(mut end) = granule_position else {
                continue;
            };
            let mut granules = Vec::with_capacity(self.pending.len());
            for data in self.pending.iter().rev() {
                granules.push(end);
                end = end.saturating_sub(u64::from(packet_samples(data)?));
            }
            let packets = self.pending.drain(..).zip(granules.into_iter().rev());
            self.ready
                .extend(packets.map(|(data, granule_position)| OpusPacket { data, granule_position }));
        }
        Ok(self.ready.pop_front())
    }
}

impl<R: Read> Iterator for OggOpusReader<R> {
    type Item = Result<OpusPacket>;

    fn next(&mut self) -> Option<Result<OpusPacket>> {
        self.next_packet().transpose()
    }
}

/// Writes an Ogg Opus file: OpusHead on the first page and OpusTags on
/// the second (RFC 7845 §3), then audio packets, the last on a page with
/// the EOS flag.
#[derive(Debug)]
pub struct OggOpusWriter<W> {
    packets: PacketWriter<W>,
    granule_position: u64,
}

impl<W: Write> OggOpusWriter<W> {
    /// A mono or stereo stream ([`OpusHead::new`]) whose encoder took
    /// input at `sample_rate`.
    pub fn new(w: W, channels: u8, sample_rate: u32) -> Result<Self> {
        Self::with_head(w, &OpusHead::new(channels, sample_rate)?, DEFAULT_SERIAL)
    }

    /// A stream with any identification header and serial number.
    pub fn with_head(w: W, head: &OpusHead, serial: u32) -> Result<Self> {
        let tags = OpusTags {
            vendor: concat!("natter-container ", env!("CARGO_PKG_VERSION")).to_owned(),
            comments: Vec::new(),
        };
        let mut packets = PacketWriter::new(w, serial);
        // RFC 7845 §3: each header ends its page, with granule position 0.
        for header in [head.encode(), tags.encode()] {
            packets.write_packet(&header, 0)?;
            packets.flush_page()?;
        }
        Ok(OggOpusWriter {
            packets,
            granule_position: 0,
        })
    }

    /// Adds an audio packet that decodes to `samples_48k` samples at
    /// 48 kHz ([`packet_samples`] computes it from the packet).
    pub fn write_packet(&mut self, data: &[u8], samples_48k: u32) -> Result<()> {
        self.granule_position += u64::from(samples_48k);
        self.packets.write_packet(data, self.granule_position)
    }

    /// Writes the last page with the EOS flag, flushes and gives back
    /// the output.
    pub fn finish(self) -> Result<W> {
        self.packets.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ogg::{PageReader, FLAG_BOS, FLAG_EOS};

    /// CELT 20 ms (config 31, code 0) and 10 ms (config 30) packets.
    const MS20: &[u8] = &[0xf8, 0xff, 0xfe];
    const MS10: &[u8] = &[0xf0, 0xff, 0xfe];

    #[test]
    fn headers_on_their_own_pages_and_eos_on_the_last() {
        let mut w = OggOpusWriter::new(Vec::new(), 2, 44_100).unwrap();
        w.write_packet(MS20, 960).unwrap();
        let file = w.finish().unwrap();
        let mut pages = PageReader::new(&file[..]);
        let mut seen = Vec::new();
        while let Some(p) = pages.next_page().unwrap() {
            seen.push((p.header_type, p.granule_position, p.serial, p.body.to_vec()));
        }
        let [head, tags, audio] = &seen[..] else {
            panic!("{} pages", seen.len());
        };
        assert_eq!(head.3, OpusHead::new(2, 44_100).unwrap().encode());
        assert_eq!((head.0, head.1, head.2), (FLAG_BOS, 0, DEFAULT_SERIAL));
        assert!(tags.3.starts_with(b"OpusTags"));
        assert_eq!((tags.0, tags.1, tags.2), (0, 0, DEFAULT_SERIAL));
        assert_eq!(*audio, (FLAG_EOS, 960, DEFAULT_SERIAL, MS20.to_vec()));
        let r = OggOpusReader::new(&file[..]).unwrap();
        assert_eq!(r.head().input_sample_rate, 44_100);
        assert!(r.tags().vendor.starts_with("natter-container "));
    }

    #[test]
    fn granules_walk_back_from_each_page() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, 48_000).unwrap();
        let packets = [MS20, MS10, MS20, MS10];
        for p in packets {
            w.write_packet(p, packet_samples(p).unwrap()).unwrap();
        }
        let file = w.finish().unwrap();
        let read: Vec<OpusPacket> = OggOpusReader::new(&file[..]).unwrap().collect::<Result<_>>().unwrap();
        let granules: Vec<u64> = read.iter().map(|p| p.granule_position).collect();
        assert_eq!(granules, [960, 1440, 2400, 2880]);
        assert!(read.iter().zip(packets).all(|(r, p)| r.data == p));
    }

    #[test]
    fn missing_headers() {
        let empty = PacketWriter::new(Vec::new(), 1).finish().unwrap();
        let err = OggOpusReader::new(&empty[..]).unwrap_err();
        assert!(matches!(err, Error::OpusHeader { header: "OpusHead", .. }), "{err}");
        let mut w = PacketWriter::new(Vec::new(), 1);
        w.write_packet(&OpusHead::new(1, 8000).unwrap().encode(), 0).unwrap();
        let err = OggOpusReader::new(&w.finish().unwrap()[..]).unwrap_err();
        assert!(matches!(err, Error::OpusHeader { header: "OpusTags", .. }), "{err}");
    }
}
