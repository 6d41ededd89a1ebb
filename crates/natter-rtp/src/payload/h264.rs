//! H.264 over RTP (RFC 6184) in packetization-mode 1, non-interleaved
//! (§6.3): single NAL unit packets (§5.6), STAP-A aggregation (§5.7.1)
//! and FU-A fragmentation (§5.8). STAP-B, MTAP and FU-B belong to the
//! interleaved mode 2 and are refused.
//!
//! Also here: splitting an access unit into NAL units, from an Annex B
//! byte stream (ITU-T H.264 Annex B) or length-prefixed samples
//! (ISO/IEC 14496-15 §5.3.3). The picture size comes from the sequence
//! parameter set ([`super::H264Sps`]).

use super::h264_sps::H264Sps;
use super::{
    balanced_part, Depacketized, FrameBuffer, KeyframeGate, PayloadChunk, PayloadError, RtpPayload, SeqStep,
    SeqTracker, DEFAULT_MAX_FRAME_SIZE,
};

/// RFC 6184 §5.7.1: STAP-A.
const STAP_A: u8 = 24;
/// RFC 6184 §5.8: FU-A.
const FU_A: u8 = 28;
/// ITU-T H.264 Table 7-1.
pub(super) const NAL_IDR: u8 = 5;
pub(super) const NAL_SPS: u8 = 7;
const NAL_AUD: u8 = 9;
const NAL_NON_IDR: u8 = 1;
/// RFC 6184 §5.8: FU indicator and FU header.
const FU_HEADERS: usize = 2;
/// ITU-T H.264 Annex B: the 4-byte start code written before each NAL
/// unit of a reassembled access unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of one access unit, in order, borrowed from it.
///
/// Empty NAL units are skipped; in Annex B input, zero bytes before a
/// start code (trailing_zero_8bits, or the first byte of a 4-byte start
/// code) are not part of the NAL unit, which cannot end in 0x00
/// (ITU-T H.264 §7.4.1).
#[derive(Clone, Debug)]
pub struct NalUnits<'f> {
    data: &'f [u8],
    pos: usize,
    length_size: Option<usize>,
}

impl<'f> NalUnits<'f> {
    /// An Annex B byte stream: each NAL unit after a start code
    /// 00 00 01 or 00 00 00 01; only zero bytes may precede the first.
    pub fn annex_b(data: &'f [u8]) -> Result<Self, PayloadError> {
        let first = data.iter().position(|&b| b != 0);
        match first {
            Some(i) if i >= 2 && data[i] == 1 => Ok(NalUnits {
                data,
                pos: i + 1,
                length_size: None,
            }),
            _ => Err(PayloadError::AnnexBStartCode),
        }
    }

    /// NAL units each preceded by its length in `length_size` (1, 2 or
    /// 4) big-endian bytes, as in MP4 and the avcC format. Lengths are
    /// checked here, so iteration cannot fail.
    pub fn avcc(data: &'f [u8], length_size: usize) -> Result<Self, PayloadError> {
        if !matches!(length_size, 1 | 2 | 4) {
            return Err(PayloadError::InvalidInput {
                what: "H.264 length-prefixed NAL units",
                reason: "the length field is 1, 2 or 4 bytes",
            });
        }
        let mut at = 0;
        while at < data.len() {
            let declared = data
                .get(at..at + length_size)
                .map(|b| b.iter().fold(0usize, |n, &b| n << 8 | usize::from(b)));
            let available = data.len() - at;
            match declared {
                Some(n) if n <= available - length_size => at += length_size + n,
                _ => {
                    return Err(PayloadError::AvccOverrun {
                        offset: at,
                        declared: declared.map_or(length_size, |n| length_size + n),
                        available,
                    })
                }
            }
        }
        Ok(NalUnits {
            data,
            pos: 0,
            length_size: Some(length_size),
        })
    }

    fn next_annex_b(&mut self) -> Option<&'f [u8]> {
        let start = self.pos;
        let rest = self.data.get(start..)?;
        let end = find_start_code(rest).map_or(self.data.len(), |i| start + i);
        self.pos = (end + 3).min(self.data.len());
        let mut nal = &self.data[start..end];
        while let [head @ .., 0] = nal {
            nal = head;
        }
        Some(nal)
    }

    fn next_length_prefixed(&mut self, size: usize) -> Option<&'f [u8]> {
        let at = self.pos;
        let len = self
            .data
            .get(at..at + size)?
            .iter()
            .fold(0usize, |n, &b| n << 8 | usize::from(b));
        let nal = self.data.get(at + size..at + size + len)?;
        self.pos = at + size + len;
        Some(nal)
    }
}

impl<'f> Iterator for NalUnits<'f> {
    type Item = &'f [u8];

    fn next(&mut self) -> Option<&'f [u8]> {
        loop {
            if self.pos >= self.data.len() {
                return None;
            }
            let nal = match self.length_size {
                None => self.next_annex_b(),
                Some(size) => self.next_length_prefixed(size),
            };
            match nal {
                None => {
                    self.pos = self.data.len();
                    return None;
                }
                Some([]) => continue,
                Some(nal) => return Some(nal),
            }
        }
    }
}

/// The offset of the first 00 00 01 in `s`.
fn find_start_code(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 2 < s.len() {
        match s[i + 2] {
            1 if s[i] == 0 && s[i + 1] == 0 => return Some(i),
            // A start code could begin at i + 1 or i + 2.
            0 => i += 1,
            // None can begin at i, i + 1 or i + 2.
            _ => i += 3,
        }
    }
    None
}

/// RFC 6184 §5.3: F, the forbidden_zero_bit.
fn forbidden(header: u8) -> bool {
    header & 0x80 != 0
}

/// Refuses what cannot travel as a NAL unit of its own (RFC 6184 §5.2,
/// Table 1): the forbidden bit, and types 0 and 24 to 31, which the
/// payload format uses for its own packets.
fn check_nal_header(header: u8) -> Result<(), PayloadError> {
    if forbidden(header) {
        return Err(PayloadError::H264ForbiddenBit(header));
    }
    match header & 0x1F {
        1..=23 => Ok(()),
        nal_type => Err(PayloadError::H264NalType {
            nal_type,
            reason: "only types 1 to 23 are NAL units; 0 and 24 to 31 are not",
        }),
    }
}

#[derive(Clone, Debug)]
struct Fragmenting<'f> {
    indicator: u8,
    nal_type: u8,
    rest: &'f [u8],
    packets_left: usize,
    first: bool,
}

/// Splits one access unit into RTP payloads (RFC 6184 §6.3): a NAL unit
/// that fits is sent alone or, with the NAL units after it that also
/// fit, in a STAP-A (so SPS and PPS travel together before an IDR); one
/// that does not fit is cut into FU-A fragments of balanced sizes. The
/// last payload of the access unit carries the marker bit (§5.1).
///
/// A NAL unit with the forbidden bit set or of type 0 or 24 to 31 is
/// an error when its turn comes, and ends the iteration.
///
/// ```
/// use natter_rtp::payload::{H264Packetizer, NalUnits};
///
/// let au = [0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, 0, 0, 1, 0x65, 0x88, 0x84];
/// let chunks: Vec<_> = H264Packetizer::new(NalUnits::annex_b(&au)?, 1200)?.collect::<Result<_, _>>()?;
/// assert_eq!(chunks.len(), 1); // one STAP-A with all three
/// assert!(chunks[0].marker());
/// # Ok::<(), natter_rtp::payload::PayloadError>(())
/// ```
#[derive(Clone, Debug)]
pub struct H264Packetizer<'f> {
    nals: NalUnits<'f>,
    /// The next NAL unit, and the splitter's state just before it.
    peeked: Option<(NalUnits<'f>, &'f [u8])>,
    fragmenting: Option<Fragmenting<'f>>,
    max_payload: usize,
}

impl<'f> H264Packetizer<'f> {
    /// Plans payloads of at most `max_payload` bytes, at least 3 (an
    /// FU-A with one byte of its NAL unit).
    pub fn new(nals: NalUnits<'f>, max_payload: usize) -> Result<Self, PayloadError> {
        if max_payload <= FU_HEADERS {
            return Err(PayloadError::MaxPayloadTooSmall {
                codec: "H.264",
                needed: FU_HEADERS + 1,
                max: max_payload,
            });
        }
        let mut p = H264Packetizer {
            nals,
            peeked: None,
            fragmenting: None,
            max_payload,
        };
        p.advance();
        if p.peeked.is_none() {
            return Err(PayloadError::EmptyFrame { codec: "H.264" });
        }
        Ok(p)
    }

    fn advance(&mut self) {
        let before = self.nals.clone();
        self.peeked = self.nals.next().map(|nal| (before, nal));
    }

    fn next_fragment(&mut self) -> Option<PayloadChunk<'f>> {
        let fu = self.fragmenting.as_mut()?;
        let (body, rest) = fu.rest.split_at(balanced_part(fu.rest.len(), fu.packets_left));
        fu.rest = rest;
        fu.packets_left -= 1;
        let end = fu.packets_left == 0;
        let header = u8::from(fu.first) << 7 | u8::from(end) << 6 | fu.nal_type;
        fu.first = false;
        let chunk = PayloadChunk::new(&[fu.indicator, header], body, end && self.peeked.is_none());
        if end {
            self.fragmenting = None;
        }
        Some(chunk)
    }
}

impl<'f> Iterator for H264Packetizer<'f> {
    type Item = Result<PayloadChunk<'f>, PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.fragmenting.is_some() {
            return self.next_fragment().map(Ok);
        }
        // NalUnits never yields an empty NAL unit, so nal[0] exists.
        let (state, nal) = self.peeked.take()?;
        if let Err(e) = check_nal_header(nal[0]) {
            return Some(Err(e));
        }
        self.advance();
        let max = self.max_payload;
        if nal.len() > max {
            // §5.8: S and E never share a fragment, as the NAL unit
            // minus its header is longer than one fragment can carry.
            let rest = &nal[1..];
            self.fragmenting = Some(Fragmenting {
                indicator: nal[0] & 0xE0 | FU_A,
                nal_type: nal[0] & 0x1F,
                rest,
                packets_left: rest.len().div_ceil(max - FU_HEADERS),
                first: true,
            });
            return self.next_fragment().map(Ok);
        }
        // §5.7.1: F is the OR and NRI the maximum over the units.
        let mut header = nal[0] & 0xE0;
        let mut len = 1 + 2 + nal.len();
        let mut count = 1;
        while let Some((_, next)) = self.peeked {
            let fits = nal.len() <= usize::from(u16::MAX) && next.len() <= usize::from(u16::MAX);
            if !fits || len + 2 + next.len() > max || check_nal_header(next[0]).is_err() {
                break;
            }
            header = header & 0x80 | next[0] & 0x80 | (header & 0x60).max(next[0] & 0x60);
            len += 2 + next.len();
            count += 1;
            self.advance();
        }
        let marker = self.peeked.is_none();
        Some(Ok(if count == 1 {
            PayloadChunk::new(&[], nal, marker)
        } else {
            PayloadChunk::stap_a(header | STAP_A, state, count, len, marker)
        }))
    }
}

/// A received payload, checked.
#[derive(Clone, Copy, Debug)]
pub(super) enum Received<'a> {
    /// §5.6: one NAL unit. Neither it nor a STAP-A unit is empty.
    Single(&'a [u8]),
    /// §5.7.1: the whole STAP-A, its units checked to be NAL units.
    StapA(&'a [u8]),
    /// §5.8.
    FuA { indicator: u8, header: u8, data: &'a [u8] },
}

impl<'a> Received<'a> {
    /// `header` is the first byte of `payload`.
    pub(super) fn parse(header: u8, payload: &'a [u8]) -> Result<Self, PayloadError> {
        if forbidden(header) {
            return Err(PayloadError::H264ForbiddenBit(header));
        }
        match header & 0x1F {
            1..=23 => Ok(Received::Single(payload)),
            STAP_A => {
                let mut count = 0;
                for unit in StapUnits::new(payload) {
                    let (offset, nal) = unit?;
                    match nal.first() {
                        None => return Err(PayloadError::H264StapEmpty { offset }),
                        Some(&h) => check_nal_header(h)?,
                    }
                    count += 1;
                }
                if count == 0 {
                    return Err(PayloadError::H264StapEmpty { offset: 1 });
                }
                Ok(Received::StapA(payload))
            }
            FU_A => {
                let [indicator, fu, data @ ..] = payload else {
                    return Err(PayloadError::H264FuA {
                        reason: "shorter than the FU indicator and FU header",
                    });
                };
                if fu & 0xC0 == 0xC0 {
                    return Err(PayloadError::H264FuA {
                        reason: "S and E are both set",
                    });
                }
                // The reconstructed header must be a NAL unit's.
                check_nal_header(indicator & 0xE0 | fu & 0x1F)?;
                Ok(Received::FuA {
                    indicator: *indicator,
                    header: *fu,
                    data,
                })
            }
            nal_type @ (25..=27 | 29) => Err(PayloadError::H264NalType {
                nal_type,
                reason: "STAP-B, MTAP and FU-B need the interleaved packetization-mode 2",
            }),
            nal_type => Err(PayloadError::H264NalType {
                nal_type,
                reason: "reserved or unspecified in RFC 6184",
            }),
        }
    }

    /// The header and the byte after it of the first NAL unit the packet
    /// starts, if it starts one.
    pub(super) fn first_nal(&self) -> Option<(u8, Option<u8>)> {
        match *self {
            Received::Single(nal) => Some((nal[0], nal.get(1).copied())),
            Received::StapA(units) => {
                let (_, nal) = StapUnits::new(units).next()?.ok()?;
                Some((*nal.first()?, nal.get(1).copied()))
            }
            Received::FuA {
                indicator,
                header,
                data,
            } if header & 0x80 != 0 => Some((indicator & 0xE0 | header & 0x1F, data.first().copied())),
            Received::FuA { .. } => None,
        }
    }

    /// Whether nothing a decoder needs can have come before this packet
    /// in its access unit (ITU-T H.264 §7.4.1.2.3): it opens with an
    /// access unit delimiter, an SPS, or the slice of a non-IDR picture
    /// whose first_mb_in_slice is 0 (ue(v) 0 is the single bit 1). An
    /// IDR slice does not count: its SPS and PPS may have been lost.
    fn starts_access_unit(&self) -> bool {
        match self.first_nal() {
            Some((h, _)) if matches!(h & 0x1F, NAL_AUD | NAL_SPS) => true,
            Some((h, Some(next))) => h & 0x1F == NAL_NON_IDR && next & 0x80 != 0,
            _ => false,
        }
    }
}

/// The units of a STAP-A payload: each NAL unit with the offset of its
/// size field in the payload, or an error where a size overruns.
#[derive(Clone, Copy, Debug)]
struct StapUnits<'a> {
    payload: &'a [u8],
    at: usize,
}

impl<'a> StapUnits<'a> {
    /// The units of `payload`, a whole STAP-A with its header.
    fn new(payload: &'a [u8]) -> Self {
        StapUnits { payload, at: 1 }
    }
}

impl<'a> Iterator for StapUnits<'a> {
    type Item = Result<(usize, &'a [u8]), PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at;
        let rest = self.payload.get(at..).filter(|r| !r.is_empty())?;
        let declared = rest.get(..2).map(|b| 2 + usize::from(u16::from_be_bytes([b[0], b[1]])));
        match declared.and_then(|n| rest.get(2..n)) {
            Some(nal) => {
                self.at = at + 2 + nal.len();
                Some(Ok((at, nal)))
            }
            None => {
                self.at = self.payload.len();
                Some(Err(PayloadError::H264StapOverrun {
                    offset: at,
                    declared: declared.unwrap_or(2),
                    available: rest.len(),
                }))
            }
        }
    }
}

/// An H.264 access unit put back together as an Annex B byte stream
/// (each NAL unit after 00 00 00 01), lent until the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Frame<'a> {
    pub data: &'a [u8],
    pub timestamp: u32,
    /// It holds a slice of an IDR picture (NAL unit type 5).
    pub idr: bool,
    /// Its first SPS (NAL unit type 7), if it has one that parses.
    pub sps: Option<H264Sps>,
}

#[derive(Clone, Copy, Debug)]
struct Partial {
    timestamp: u32,
    /// A packet is missing, the start is unknown, a fragment does not
    /// continue its NAL unit, or the frame outgrew the buffer.
    broken: bool,
    /// The NAL unit type of an FU-A in progress, and where it starts.
    fragment: Option<(u8, usize)>,
    idr: bool,
    /// Saw a slice; saw one with nal_ref_idc other than 0.
    slice: bool,
    reference: bool,
    /// Where the first complete SPS lies in the buffer.
    sps: Option<(usize, usize)>,
}

impl Partial {
    /// Notes a NAL unit header seen in the access unit.
    fn note(&mut self, header: u8) {
        let nal_type = header & 0x1F;
        self.idr |= nal_type == NAL_IDR;
        if (1..=5).contains(&nal_type) {
            self.slice = true;
            self.reference |= header & 0x60 != 0;
        }
    }

    /// Notes a complete NAL unit at `start..end` of the buffer.
    fn complete(&mut self, header: u8, start: usize, end: usize) {
        if header & 0x1F == NAL_SPS && self.sps.is_none() {
            self.sps = Some((start, end));
        }
    }

    /// ITU-T H.264 §7.4.1: all slices of a picture share nal_ref_idc
    /// being 0 or not, so one slice with 0 marks a non-reference picture.
    fn hurts_references(&self) -> bool {
        !self.slice || self.reference
    }

    /// Appends a packet's NAL units; false if they do not continue the
    /// access unit or do not fit.
    fn append(&mut self, buf: &mut FrameBuffer, packet: &Received<'_>) -> bool {
        match *packet {
            Received::Single(nal) => self.append_nal(buf, nal),
            Received::StapA(units) => StapUnits::new(units)
                .flatten()
                .all(|(_, nal)| self.append_nal(buf, nal)),
            Received::FuA {
                indicator,
                header,
                data,
            } => {
                let nal_type = header & 0x1F;
                if header & 0x80 != 0 {
                    let nal_header = indicator & 0xE0 | nal_type;
                    let start = buf.data.len() + START_CODE.len();
                    if self.fragment.is_some() || !buf.extend(&[&START_CODE, &[nal_header], data]) {
                        return false;
                    }
                    self.fragment = Some((nal_type, start));
                } else if self.fragment.is_none_or(|(t, _)| t != nal_type) || !buf.extend(&[data]) {
                    return false;
                }
                if header & 0x40 != 0 {
                    if let Some((_, start)) = self.fragment.take() {
                        self.complete(nal_type, start, buf.data.len());
                    }
                }
                true
            }
        }
    }

    /// `nal` is not empty (see [`Received`]).
    fn append_nal(&mut self, buf: &mut FrameBuffer, nal: &[u8]) -> bool {
        let start = buf.data.len() + START_CODE.len();
        if self.fragment.is_some() || !buf.extend(&[&START_CODE, nal]) {
            return false;
        }
        self.complete(nal[0], start, buf.data.len());
        true
    }
}

/// Reassembles H.264 access units from the packets of one SSRC, given in
/// sequence order, into Annex B byte streams.
///
/// An access unit is the run of packets with one timestamp, ending with
/// the marker bit (RFC 6184 §5.1), with no sequence number missing and
/// every FU-A complete. H.264 carries nothing like VP8's PictureID, so
/// any gap between access units may have lost a reference picture and
/// raises [`Depacketized::keyframe_needed`]; a gap inside one that
/// proves non-reference (a slice with nal_ref_idc 0) does not. After a
/// gap, the next access unit is kept only if its first packet shows
/// that nothing needed came before it (an AUD, an SPS, or a non-IDR
/// slice with first_mb_in_slice 0).
#[derive(Clone, Debug)]
pub struct H264Depacketizer {
    seq: SeqTracker,
    buf: FrameBuffer,
    current: Option<Partial>,
    keyframes: KeyframeGate,
}

impl Default for H264Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Depacketizer {
    /// Reassembles access units of up to [`DEFAULT_MAX_FRAME_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// Reassembles access units of up to `max` bytes (start codes
    /// included); larger ones are dropped.
    pub fn with_max_frame_size(max: usize) -> Self {
        H264Depacketizer {
            seq: SeqTracker::default(),
            buf: FrameBuffer::new(max),
            current: None,
            keyframes: KeyframeGate::new(),
        }
    }

    /// True from the start, and from a loss that broke the reference
    /// chain, until an IDR access unit is reassembled.
    pub fn awaiting_keyframe(&self) -> bool {
        self.keyframes.awaiting
    }

    /// Takes the next packet. An error means the payload was malformed;
    /// the packet is then treated as lost.
    pub fn push(&mut self, packet: RtpPayload<'_>) -> Result<Depacketized<H264Frame<'_>>, PayloadError> {
        let parsed = match packet.payload {
            [] => None,
            payload @ [header, ..] => Some(Received::parse(*header, payload)?),
        };
        let mut dropped = 0;
        let mut broke = false;
        let gap = match self.seq.step(packet.sequence_number) {
            SeqStep::Stale => return Ok(Depacketized::default()),
            SeqStep::Next => false,
            SeqStep::Gap { .. } | SeqStep::Jump => true,
        };
        if gap {
            match self.current.as_mut().filter(|c| c.timestamp == packet.timestamp) {
                // Inside this access unit: judged when it is dropped.
                Some(cur) => cur.broken = true,
                None => broke = true,
            }
        }
        let mut completed = None;
        // A padding-only packet moves the sequence on and nothing else.
        if let Some(received) = parsed {
            if let Some(cur) = self.current.filter(|c| c.timestamp != packet.timestamp) {
                self.current = None;
                dropped += 1;
                broke |= cur.hurts_references();
            }
            let cur = match &mut self.current {
                Some(cur) => cur,
                None => {
                    self.buf.clear();
                    self.current.insert(Partial {
                        timestamp: packet.timestamp,
                        broken: gap && !received.starts_access_unit(),
                        fragment: None,
                        idr: false,
                        slice: false,
                        reference: false,
                        sps: None,
                    })
                }
            };
            match received {
                Received::Single(nal) => cur.note(nal[0]),
                Received::StapA(units) => StapUnits::new(units).flatten().for_each(|(_, nal)| cur.note(nal[0])),
                Received::FuA { indicator, header, .. } => cur.note(indicator & 0xE0 | header & 0x1F),
            }
            if !cur.broken && !cur.append(&mut self.buf, &received) {
                cur.broken = true;
            }
            if packet.marker {
                if let Some(cur) = self.current.take() {
                    if cur.broken || cur.fragment.is_some() {
                        dropped += 1;
                        broke |= cur.hurts_references();
                    } else {
                        completed = Some(cur);
                    }
                }
            }
        }
        Ok(Depacketized {
            keyframe_needed: self.keyframes.settle(broke, completed.map(|c| c.idr)),
            frames_dropped: dropped,
            frame: completed.map(|c| H264Frame {
                data: &self.buf.data,
                timestamp: c.timestamp,
                idr: c.idr,
                sps: c
                    .sps
                    .and_then(|(start, end)| H264Sps::parse(&self.buf.data[start..end]).ok()),
            }),
        })
    }
}
