//! Splitting a temporal unit into AV1 RTP payloads (AV1 RTP
//! Specification §4.4, §4.5, §5).

use super::aggregation::Av1AggregationHeader;
use super::obu::{leb128_len, write_leb128, Obu, ObuHeader, ObuType, Obus};
use super::sequence_header::{Av1FrameHeader, Av1SequenceHeader};
use crate::payload::{PayloadChunk, PayloadError};

/// AV1 RTP §4.4: W counts up to three elements.
const MAX_COUNTED_ELEMENTS: usize = 3;
/// The aggregation header and one byte of an element.
const MIN_PAYLOAD: usize = 2;

/// One OBU as it travels: its header with obu_has_size_field cleared
/// (AV1 RTP §4.5: the element's length says it), then its data.
#[derive(Clone, Copy, Debug)]
struct Element<'f> {
    head: [u8; 2],
    head_len: usize,
    payload: &'f [u8],
}

impl<'f> Element<'f> {
    fn new(obu: Obu<'f>) -> Self {
        let header = ObuHeader {
            has_size_field: false,
            ..obu.header
        };
        let (head, head_len) = header.encode();
        Element {
            head,
            head_len,
            payload: obu.payload,
        }
    }

    fn len(&self) -> usize {
        self.head_len + self.payload.len()
    }

    /// Writes bytes `from..to` of the element at the start of `out`.
    fn write(&self, from: usize, to: usize, out: &mut [u8]) {
        let mut at = 0;
        if from < self.head_len {
            let head = &self.head[from..self.head_len.min(to)];
            out[..head.len()].copy_from_slice(head);
            at = head.len();
        }
        let start = from.max(self.head_len) - self.head_len;
        let end = to.max(self.head_len) - self.head_len;
        out[at..at + end - start].copy_from_slice(&self.payload[start..end]);
    }
}

/// The elements of a temporal unit, whose OBUs were checked: every OBU
/// but temporal delimiters and tile lists.
#[derive(Clone, Debug)]
struct Elements<'f> {
    obus: Obus<'f>,
}

impl<'f> Iterator for Elements<'f> {
    type Item = Element<'f>;

    fn next(&mut self) -> Option<Element<'f>> {
        self.obus
            .by_ref()
            .flatten()
            .find(|o| o.header.obu_type.travels_over_rtp())
            .map(Element::new)
    }
}

/// The elements of one packet: a run of the temporal unit's elements,
/// the first possibly entered part way, the last possibly left part way.
#[derive(Clone, Debug)]
pub(crate) struct ElementRun<'f> {
    /// Positioned before the first element.
    start: Elements<'f>,
    /// Bytes of the first element sent in earlier packets.
    skip: usize,
    count: usize,
    /// Where in the last element this packet stops.
    last_end: usize,
    /// W = 0: the last element has a length field too.
    length_on_last: bool,
}

impl ElementRun<'_> {
    /// Writes the elements, each after its length field if it has one,
    /// at the start of `out`, which the chunk's length fits.
    pub(crate) fn write(&self, out: &mut [u8]) {
        let mut at = 0;
        for (i, e) in self.start.clone().take(self.count).enumerate() {
            let from = if i == 0 { self.skip } else { 0 };
            let last = i + 1 == self.count;
            let to = if last { self.last_end } else { e.len() };
            if !last || self.length_on_last {
                // Element lengths come from OBU sizes, which are u32.
                at += write_leb128((to - from) as u32, &mut out[at..]);
            }
            e.write(from, to, &mut out[at..]);
            at += to - from;
        }
    }
}

/// Splits one temporal unit into AV1 RTP payloads (AV1 RTP §4.5, §5).
///
/// The input is a temporal unit in the low overhead bitstream format
/// (AV1 §5.2), as an IVF frame or an encoder's output holds it. Its
/// temporal delimiter and any tile list OBUs are dropped (§5); every
/// other OBU goes out as an element without its size field, packed
/// greedily: as many elements as fit, the one that does not fit split
/// across packets (Y, then Z on the next). W counts the elements when
/// there are three or fewer, so the last needs no length field. N is
/// set on the first packet of a temporal unit that starts a coded video
/// sequence: a sequence header and a key frame. The last payload
/// carries the marker bit (§4.2).
#[derive(Clone, Debug)]
pub struct Av1Packetizer<'f> {
    /// Positioned after `current`.
    elements: Elements<'f>,
    /// The element the next packet starts with, and the iterator before it.
    current: Option<(Elements<'f>, Element<'f>)>,
    /// Bytes of `current` already sent.
    offset: usize,
    max_payload: usize,
    starts_sequence: bool,
    sequence_header: Option<Av1SequenceHeader>,
    first: bool,
}

impl<'f> Av1Packetizer<'f> {
    /// Checks every OBU of `temporal_unit` and plans payloads of at most
    /// `max_payload` bytes (at least 2).
    pub fn new(temporal_unit: &'f [u8], max_payload: usize) -> Result<Self, PayloadError> {
        if max_payload < MIN_PAYLOAD {
            return Err(PayloadError::MaxPayloadTooSmall {
                codec: "AV1",
                needed: MIN_PAYLOAD,
                max: max_payload,
            });
        }
        let mut sequence_header = None;
        let mut key_frame = false;
        for obu in Obus::new(temporal_unit) {
            let obu = obu?;
            match obu.header.obu_type {
                ObuType::SequenceHeader => sequence_header = Some(Av1SequenceHeader::parse(obu.payload)?),
                t if t.has_frame_header() => {
                    let reduced = sequence_header.is_some_and(|s| s.reduced_still_picture_header);
                    key_frame |= Av1FrameHeader::parse(obu.payload, reduced)?.is_key_frame();
                }
                _ => {}
            }
        }
        let mut elements = Elements {
            obus: Obus::new(temporal_unit),
        };
        let before = elements.clone();
        let Some(first) = elements.next() else {
            return Err(PayloadError::EmptyFrame { codec: "AV1" });
        };
        Ok(Av1Packetizer {
            elements,
            current: Some((before, first)),
            offset: 0,
            max_payload,
            starts_sequence: sequence_header.is_some() && key_frame,
            sequence_header,
            first: true,
        })
    }

    /// Whether the temporal unit starts a coded video sequence (N = 1).
    pub fn starts_coded_video_sequence(&self) -> bool {
        self.starts_sequence
    }

    /// The temporal unit's sequence header, if it has one.
    pub fn sequence_header(&self) -> Option<&Av1SequenceHeader> {
        self.sequence_header.as_ref()
    }

    /// Moves on to the element after the current one.
    fn advance(&mut self) {
        let before = self.elements.clone();
        self.current = self.elements.next().map(|e| (before, e));
        self.offset = 0;
    }
}

impl<'f> Iterator for Av1Packetizer<'f> {
    type Item = PayloadChunk<'f>;

    fn next(&mut self) -> Option<PayloadChunk<'f>> {
        let (start, _) = self.current.clone()?;
        let skip = self.offset;
        let budget = self.max_payload - 1;
        // Bytes of the elements taken so far, each with a length field.
        let mut used = 0;
        let mut count = 0;
        let mut last = (0, 0);
        let mut fragment_continues = false;
        while let Some((_, e)) = self.current {
            let from = self.offset;
            let remaining = e.len() - from;
            let counted = count < MAX_COUNTED_ELEMENTS;
            let Some(room) = budget.checked_sub(used) else { break };
            let cost = |n: usize| if counted { n } else { leb128_len(n as u32) + n };
            if cost(remaining) <= room {
                count += 1;
                used += leb128_len(remaining as u32) + remaining;
                last = (e.len(), remaining);
                self.advance();
                continue;
            }
            let fragment = if counted {
                room
            } else {
                room.saturating_sub(leb128_len(room as u32))
            };
            if fragment > 0 {
                count += 1;
                used += leb128_len(fragment as u32) + fragment;
                last = (from + fragment, fragment);
                self.offset += fragment;
                fragment_continues = true;
            }
            break;
        }
        let (last_end, last_len) = last;
        let length_on_last = count > MAX_COUNTED_ELEMENTS;
        let len = 1 + used - if length_on_last { 0 } else { leb128_len(last_len as u32) };
        let header = Av1AggregationHeader {
            continues_fragment: skip > 0,
            fragment_continues,
            element_count: if length_on_last { 0 } else { count as u8 },
            new_coded_video_sequence: self.first && self.starts_sequence,
        };
        self.first = false;
        Some(PayloadChunk::av1(
            header.to_byte(),
            ElementRun {
                start,
                skip,
                count,
                last_end,
                length_on_last,
            },
            len,
            self.current.is_none(),
        ))
    }
}
