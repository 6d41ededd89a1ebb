//! Rebuilding temporal units from AV1 RTP payloads (AV1 RTP
//! Specification §4, §5).

use super::aggregation::Av1Payload;
use super::obu::{read_leb128, write_leb128, ObuHeader, ObuType, HAS_SIZE_FIELD};
use super::sequence_header::{Av1FrameHeader, Av1SequenceHeader};
use crate::payload::{Depacketized, FrameBuffer, PayloadError, Reassembly, RtpPayload, DEFAULT_MAX_FRAME_SIZE};

/// AV1 §5.6: a temporal delimiter OBU with obu_has_size_field set and
/// obu_size 0, the first OBU of every temporal unit.
const TEMPORAL_DELIMITER: [u8; 2] = [0x12, 0x00];

/// A temporal unit put back together, lent until the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Av1Frame<'a> {
    /// The temporal unit in the low overhead bitstream format (AV1
    /// §5.2): a temporal delimiter, then each OBU received, every one
    /// with obu_has_size_field set, as IVF and decoders take it.
    pub data: &'a [u8],
    pub timestamp: u32,
    /// It holds a sequence header and a key frame: decoding can start
    /// here.
    pub keyframe: bool,
    /// Its sequence header, if it has one.
    pub sequence_header: Option<Av1SequenceHeader>,
}

#[derive(Clone, Copy, Debug)]
struct Partial {
    timestamp: u32,
    /// A packet is missing, a fragment does not continue, an OBU is
    /// malformed, or the unit outgrew the buffer.
    broken: bool,
    /// Where the OBU still arriving in fragments starts in the buffer.
    open: Option<usize>,
    sequence_header: Option<Av1SequenceHeader>,
    /// From the sequence header in force, to read frame headers.
    reduced_still_picture_header: bool,
    key_frame: bool,
}

impl Partial {
    /// Takes a packet's OBU elements: an element that continues a
    /// fragment (Z) extends the open OBU; an element that is not left
    /// open for the next packet (Y) closes its OBU.
    fn take(&mut self, buf: &mut FrameBuffer, payload: &Av1Payload<'_>) {
        let fragment_continues = payload.header.fragment_continues;
        let mut continues = payload.header.continues_fragment;
        let mut elements = payload.elements().peekable();
        while let Some(element) = elements.next() {
            let ends = elements.peek().is_some() || !fragment_continues;
            if self.broken || !self.append(buf, element, continues) || (ends && !self.close(buf)) {
                self.broken = true;
                return;
            }
            continues = false;
        }
    }

    /// Appends one OBU element; false if it does not continue the
    /// temporal unit or does not fit.
    fn append(&mut self, buf: &mut FrameBuffer, element: &[u8], continues: bool) -> bool {
        if continues != self.open.is_some() {
            return false;
        }
        if !continues {
            self.open = Some(buf.data.len());
        }
        buf.extend(&[element])
    }

    /// The OBU from `open` to the end of the buffer is whole: gives it a
    /// size field if it came without one (AV1 §5.3.1), drops it if
    /// receivers ignore it (AV1 RTP §5), notes a sequence header or key
    /// frame. False if it is malformed or the size does not fit.
    fn close(&mut self, buf: &mut FrameBuffer) -> bool {
        let Some(start) = self.open.take() else {
            return true;
        };
        let Ok((header, header_len)) = ObuHeader::parse(&buf.data[start..], start) else {
            return false;
        };
        if !header.obu_type.travels_over_rtp() {
            buf.data.truncate(start);
            return true;
        }
        let after_header = start + header_len;
        let payload_start = if header.has_size_field {
            match read_leb128(&buf.data[after_header..]) {
                Some((size, n)) if after_header + n + size as usize == buf.data.len() => after_header + n,
                _ => return false,
            }
        } else {
            let Ok(size) = u32::try_from(buf.data.len() - after_header) else {
                return false;
            };
            let mut leb = [0u8; 8];
            let n = write_leb128(size, &mut leb);
            if !buf.extend(&[&leb[..n]]) {
                return false;
            }
            buf.data[after_header..].rotate_right(n);
            buf.data[after_header..after_header + n].copy_from_slice(&leb[..n]);
            buf.data[start] |= HAS_SIZE_FIELD;
            after_header + n
        };
        let payload = &buf.data[payload_start..];
        match header.obu_type {
            ObuType::SequenceHeader => match Av1SequenceHeader::parse(payload) {
                Ok(sh) => {
                    self.reduced_still_picture_header = sh.reduced_still_picture_header;
                    self.sequence_header.get_or_insert(sh);
                }
                Err(_) => return false,
            },
            t if t.has_frame_header() => match Av1FrameHeader::parse(payload, self.reduced_still_picture_header) {
                Ok(fh) => self.key_frame |= fh.is_key_frame(),
                Err(_) => return false,
            },
            _ => {}
        }
        true
    }
}

/// Reassembles AV1 temporal units from the packets of one SSRC, given
/// in sequence order (AV1 RTP §4.2, §4.4).
///
/// A temporal unit is the run of packets with one timestamp, ending
/// with the marker bit, with no sequence number missing and every
/// fragmented OBU continued where Y and Z say. Received temporal
/// delimiters and tile lists are ignored (§5); the unit handed out
/// starts with its own temporal delimiter. A unit whose marker never
/// came (the timestamp moved on) is dropped: without it the end cannot
/// be told from a loss. AV1 payloads carry nothing like a picture ID,
/// so any gap between temporal units may have lost a reference and
/// raises [`Depacketized::keyframe_needed`], unless the packet after
/// the gap starts a coded video sequence (N = 1); and a unit that
/// follows a gap is kept only if it starts with N = 1, as its first
/// packets may be among those lost.
#[derive(Clone, Debug)]
pub struct Av1Depacketizer {
    state: Reassembly<Partial>,
    /// The last sequence header of a complete temporal unit.
    sequence_header: Option<Av1SequenceHeader>,
}

impl Default for Av1Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Av1Depacketizer {
    /// Reassembles temporal units of up to [`DEFAULT_MAX_FRAME_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// Reassembles temporal units of up to `max` bytes as handed out
    /// (size fields and temporal delimiter included); larger ones are
    /// dropped.
    pub fn with_max_frame_size(max: usize) -> Self {
        Av1Depacketizer {
            state: Reassembly::new(max),
            sequence_header: None,
        }
    }

    /// True from the start, and from a loss that broke the reference
    /// chain, until a temporal unit with a key frame is reassembled.
    pub fn awaiting_keyframe(&self) -> bool {
        self.state.keyframes.awaiting
    }

    /// Takes the next packet. An error means the payload was malformed;
    /// the packet is then treated as lost.
    pub fn push(&mut self, packet: RtpPayload<'_>) -> Result<Depacketized<Av1Frame<'_>>, PayloadError> {
        let parsed = match packet.payload {
            [] => None,
            payload => Some(Av1Payload::parse(payload)?),
        };
        let Some(gap) = self.state.gap(packet.sequence_number) else {
            return Ok(Depacketized::default());
        };
        let starts_sequence = parsed.is_some_and(|p| p.header.new_coded_video_sequence);
        let mut broke = false;
        if gap {
            match self.state.current.as_mut().filter(|c| c.timestamp == packet.timestamp) {
                // Inside this temporal unit: judged when it is dropped.
                Some(cur) => cur.broken = true,
                None => broke = !starts_sequence,
            }
        }
        let mut dropped = 0;
        let mut completed = None;
        // A padding-only packet moves the sequence on and nothing else.
        if let Some(payload) = parsed {
            if self.state.abandon_if(|c| c.timestamp != packet.timestamp).is_some() {
                dropped += 1;
                broke = true;
            }
            let reduced = self.sequence_header.is_some_and(|s| s.reduced_still_picture_header);
            let (cur, buf) = self.state.continue_or(|buf| Partial {
                timestamp: packet.timestamp,
                broken: !buf.extend(&[&TEMPORAL_DELIMITER]) || (gap && !starts_sequence),
                open: None,
                sequence_header: None,
                reduced_still_picture_header: reduced,
                key_frame: false,
            });
            cur.take(buf, &payload);
            if let Some(cur) = self.state.current.take_if(|_| packet.marker) {
                if cur.broken || cur.open.is_some() {
                    dropped += 1;
                    broke = true;
                } else {
                    completed = Some(cur);
                }
            }
        }
        if let Some(sh) = completed.and_then(|c| c.sequence_header) {
            self.sequence_header = Some(sh);
        }
        let keyframe = |c: &Partial| c.sequence_header.is_some() && c.key_frame;
        Ok(Depacketized {
            keyframe_needed: self.state.keyframes.settle(broke, completed.as_ref().map(keyframe)),
            frames_dropped: dropped,
            frame: completed.map(|c| Av1Frame {
                data: &self.state.buf.data,
                timestamp: c.timestamp,
                keyframe: keyframe(&c),
                sequence_header: c.sequence_header,
            }),
        })
    }
}
