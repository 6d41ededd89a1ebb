//! The AV1 RTP payload (AV1 RTP Specification §4.4, §4.5): the
//! aggregation header, then OBU elements, each an OBU or a fragment of
//! one, with a leb128 length before all of them or all but the last.

use super::obu::read_leb128;
use crate::payload::PayloadError;

/// AV1 RTP §4.4: the first byte of every payload, `Z Y W W N - - -`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Av1AggregationHeader {
    /// Z: the first element continues an OBU from the previous packet.
    pub continues_fragment: bool,
    /// Y: the last element is continued in the next packet.
    pub fragment_continues: bool,
    /// W: how many elements the packet holds (1 to 3; the last has no
    /// length field), or 0 for "each has a length field".
    pub element_count: u8,
    /// N: the packet starts a coded video sequence.
    pub new_coded_video_sequence: bool,
}

impl Av1AggregationHeader {
    pub fn from_byte(b: u8) -> Self {
        Av1AggregationHeader {
            continues_fragment: b & 0x80 != 0,
            fragment_continues: b & 0x40 != 0,
            element_count: b >> 4 & 3,
            new_coded_video_sequence: b & 0x08 != 0,
        }
    }

    pub fn to_byte(self) -> u8 {
        u8::from(self.continues_fragment) << 7
            | u8::from(self.fragment_continues) << 6
            | (self.element_count & 3) << 4
            | u8::from(self.new_coded_video_sequence) << 3
    }
}

/// One received AV1 payload, its elements' lengths checked, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Av1Payload<'a> {
    pub header: Av1AggregationHeader,
    /// The bytes after the aggregation header.
    body: &'a [u8],
}

impl<'a> Av1Payload<'a> {
    /// Reads a payload: at least one element, none empty, every length
    /// within the packet, exactly W elements when W is not 0, and N only
    /// on a packet that does not continue a fragment.
    pub fn parse(payload: &'a [u8]) -> Result<Self, PayloadError> {
        let bad = |reason| Err(PayloadError::Av1Payload { reason });
        let Some((&first, body)) = payload.split_first() else {
            return bad("empty payload");
        };
        let header = Av1AggregationHeader::from_byte(first);
        if header.new_coded_video_sequence && header.continues_fragment {
            return bad("N = 1 starts a coded video sequence, which cannot continue a fragment (Z = 1)");
        }
        if body.is_empty() {
            return bad("no OBU element after the aggregation header");
        }
        let p = Av1Payload { header, body };
        let mut elements = p.elements();
        let mut count = 0;
        while elements.pos < body.len() {
            match elements.next_element() {
                Some(e) if !e.is_empty() => count += 1,
                Some(_) => return bad("an OBU element is empty"),
                None => return bad("an OBU element's length overruns the packet"),
            }
        }
        if header.element_count != 0 && count != header.element_count {
            return bad("the packet does not hold the W elements its header announces");
        }
        Ok(p)
    }

    /// The OBU elements in order.
    pub fn elements(&self) -> Av1Elements<'a> {
        Av1Elements {
            body: self.body,
            pos: 0,
            left: self.header.element_count,
        }
    }
}

/// The OBU elements of an [`Av1Payload`].
#[derive(Clone, Debug)]
pub struct Av1Elements<'a> {
    body: &'a [u8],
    pos: usize,
    /// Elements still to come when W gave their number; 0 otherwise.
    left: u8,
}

impl<'a> Av1Elements<'a> {
    /// The next element, or `None` where a length overruns.
    fn next_element(&mut self) -> Option<&'a [u8]> {
        let rest = &self.body[self.pos..];
        if self.left == 1 {
            self.pos = self.body.len();
            self.left = 0;
            return Some(rest);
        }
        self.left = self.left.saturating_sub(1);
        let (len, n) = read_leb128(rest)?;
        let element = rest.get(n..n + len as usize)?;
        self.pos += n + element.len();
        Some(element)
    }
}

impl<'a> Iterator for Av1Elements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.body.len() {
            return None;
        }
        let element = self.next_element();
        if element.is_none() {
            self.pos = self.body.len();
        }
        element
    }
}
