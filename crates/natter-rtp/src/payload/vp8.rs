//! VP8 over RTP (RFC 7741): the payload descriptor (§4.2), the frame
//! header a receiver reads (§4.3, RFC 6386 §9.1), a packetizer and a
//! frame reassembler (§4.5.1).
//!
//! The packetizer sends a frame as one partition run (every packet has
//! PID 0, S set only on the first), the mode libwebrtc uses; the
//! reassembler accepts frames split by partition as well.

use super::{
    balanced_part, Depacketized, FrameBuffer, KeyframeGate, PayloadChunk, PayloadError, RtpPayload, SeqStep,
    SeqTracker, DEFAULT_MAX_FRAME_SIZE, MAX_CHUNK_HEADER,
};

/// RFC 6386 §9.1: the start code of a keyframe's uncompressed chunk.
const START_CODE: [u8; 3] = [0x9D, 0x01, 0x2A];
/// RFC 6386 §9.1: the frame tag.
const FRAME_TAG_LEN: usize = 3;
/// RFC 6386 §9.1: tag, start code, then 2 bytes each of width and height.
const KEYFRAME_HEADER_LEN: usize = 10;

/// RFC 7741 §4.2: PictureID, 7 bits (M = 0) or 15 bits (M = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vp8PictureId {
    /// 0..=127.
    Short(u8),
    /// 0..=32767.
    Long(u16),
}

impl Vp8PictureId {
    /// The id of the next picture, wrapping within the field's width.
    pub fn next(self) -> Self {
        match self {
            Vp8PictureId::Short(v) => Vp8PictureId::Short(v.wrapping_add(1) & 0x7F),
            Vp8PictureId::Long(v) => Vp8PictureId::Long(v.wrapping_add(1) & 0x7FFF),
        }
    }

    fn encoded_len(self) -> usize {
        match self {
            Vp8PictureId::Short(_) => 1,
            Vp8PictureId::Long(_) => 2,
        }
    }
}

/// RFC 7741 §4.2: the T/K octet's temporal layer fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp8TemporalLayer {
    /// TID, 0..=3.
    pub tid: u8,
    /// Y: this frame depends only on the base layer (layer sync).
    pub layer_sync: bool,
}

/// The descriptor fields that describe a picture (RFC 7741 §4.2): the
/// same in every packet of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Vp8PictureInfo {
    /// N: no other frame references this one; it may be discarded.
    pub non_reference: bool,
    /// I: PictureID.
    pub picture_id: Option<Vp8PictureId>,
    /// L: TL0PICIDX, the running index of base-layer frames.
    pub tl0_pic_idx: Option<u8>,
    /// T: TID and Y.
    pub temporal_layer: Option<Vp8TemporalLayer>,
    /// K: KEYIDX, 0..=31.
    pub key_idx: Option<u8>,
}

impl Vp8PictureInfo {
    fn extended(&self) -> bool {
        self.picture_id.is_some()
            || self.tl0_pic_idx.is_some()
            || self.temporal_layer.is_some()
            || self.key_idx.is_some()
    }

    fn validate(&self) -> Result<(), PayloadError> {
        let bad = |reason| {
            Err(PayloadError::InvalidInput {
                what: "VP8 payload descriptor",
                reason,
            })
        };
        match self.picture_id {
            Some(Vp8PictureId::Short(v)) if v > 0x7F => return bad("a short PictureID has 7 bits"),
            Some(Vp8PictureId::Long(v)) if v > 0x7FFF => return bad("a long PictureID has 15 bits"),
            _ => {}
        }
        if self.temporal_layer.is_some_and(|t| t.tid > 3) {
            return bad("TID has 2 bits");
        }
        if self.key_idx.is_some_and(|k| k > 0x1F) {
            return bad("KEYIDX has 5 bits");
        }
        Ok(())
    }
}

/// RFC 7741 §4.2: the VP8 payload descriptor that opens every payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct Vp8Descriptor {
    pub picture: Vp8PictureInfo,
    /// S: the payload starts a VP8 partition.
    pub start_of_partition: bool,
    /// PID: the partition index, 0..=7.
    pub partition_index: u8,
}

impl Vp8Descriptor {
    /// Parses the descriptor at the start of `payload` and returns it
    /// with the VP8 data that follows. Reserved bits are ignored, as
    /// §4.2 asks of receivers.
    pub fn parse(payload: &[u8]) -> Result<(Self, &[u8]), PayloadError> {
        let len = payload.len();
        let byte = |at: usize, field| {
            payload
                .get(at)
                .copied()
                .ok_or(PayloadError::Vp8DescriptorTruncated { field, len })
        };
        let b0 = byte(0, "first octet")?;
        let mut d = Vp8Descriptor {
            picture: Vp8PictureInfo {
                non_reference: b0 & 0x20 != 0,
                ..Default::default()
            },
            start_of_partition: b0 & 0x10 != 0,
            partition_index: b0 & 0x07,
        };
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let x = byte(1, "extension octet")?;
            at = 2;
            if x & 0x80 != 0 {
                let p = byte(at, "PictureID")?;
                if p & 0x80 != 0 {
                    let low = byte(at + 1, "PictureID")?;
                    d.picture.picture_id = Some(Vp8PictureId::Long(u16::from(p & 0x7F) << 8 | u16::from(low)));
                    at += 2;
                } else {
                    d.picture.picture_id = Some(Vp8PictureId::Short(p));
                    at += 1;
                }
            }
            if x & 0x40 != 0 {
                d.picture.tl0_pic_idx = Some(byte(at, "TL0PICIDX")?);
                at += 1;
            }
            if x & 0x30 != 0 {
                let tk = byte(at, "TID/Y/KEYIDX octet")?;
                at += 1;
                if x & 0x20 != 0 {
                    d.picture.temporal_layer = Some(Vp8TemporalLayer {
                        tid: tk >> 6,
                        layer_sync: tk & 0x20 != 0,
                    });
                }
                if x & 0x10 != 0 {
                    d.picture.key_idx = Some(tk & 0x1F);
                }
            }
        }
        if at == len {
            return Err(PayloadError::Vp8NoData { len });
        }
        Ok((d, &payload[at..]))
    }

    /// Bytes [`Vp8Descriptor::encode`] writes: 1 to 6.
    pub fn encoded_len(&self) -> usize {
        let p = &self.picture;
        if !p.extended() {
            return 1;
        }
        2 + p.picture_id.map_or(0, Vp8PictureId::encoded_len)
            + usize::from(p.tl0_pic_idx.is_some())
            + usize::from(p.temporal_layer.is_some() || p.key_idx.is_some())
    }

    /// Writes the descriptor at the start of `out`; X is set when any
    /// optional field is present. Returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, PayloadError> {
        self.picture.validate()?;
        if self.partition_index > 7 {
            return Err(PayloadError::InvalidInput {
                what: "VP8 payload descriptor",
                reason: "PID has 3 bits",
            });
        }
        let len = self.encoded_len();
        if out.len() < len {
            return Err(PayloadError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        let p = &self.picture;
        out[0] = u8::from(p.extended()) << 7
            | u8::from(p.non_reference) << 5
            | u8::from(self.start_of_partition) << 4
            | self.partition_index;
        if len == 1 {
            return Ok(1);
        }
        out[1] = u8::from(p.picture_id.is_some()) << 7
            | u8::from(p.tl0_pic_idx.is_some()) << 6
            | u8::from(p.temporal_layer.is_some()) << 5
            | u8::from(p.key_idx.is_some()) << 4;
        let mut at = 2;
        match p.picture_id {
            Some(Vp8PictureId::Short(v)) => {
                out[at] = v;
                at += 1;
            }
            Some(Vp8PictureId::Long(v)) => {
                out[at..at + 2].copy_from_slice(&(v | 0x8000).to_be_bytes());
                at += 2;
            }
            None => {}
        }
        if let Some(idx) = p.tl0_pic_idx {
            out[at] = idx;
            at += 1;
        }
        if p.temporal_layer.is_some() || p.key_idx.is_some() {
            let t = p.temporal_layer.map_or(0, |t| t.tid << 6 | u8::from(t.layer_sync) << 5);
            out[at] = t | p.key_idx.unwrap_or(0);
            at += 1;
        }
        Ok(at)
    }
}

/// RFC 6386 §9.1: a keyframe's picture size, 14 bits each, and the
/// upscaling the decoder applies (0: none, 1: 5/4, 2: 5/3, 3: 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp8Dimensions {
    pub width: u16,
    pub horizontal_scale: u8,
    pub height: u16,
    pub vertical_scale: u8,
}

/// RFC 6386 §9.1 (RFC 7741 §4.3): the uncompressed chunk at the start
/// of every VP8 frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp8FrameHeader {
    /// The inverse of the P bit: the frame decodes on its own.
    pub keyframe: bool,
    /// 3 bits; selects the reconstruction filter.
    pub version: u8,
    pub show_frame: bool,
    /// Size of the first partition, 19 bits.
    pub first_partition_size: u32,
    /// Present on keyframes only.
    pub dimensions: Option<Vp8Dimensions>,
}

impl Vp8FrameHeader {
    /// Reads the header at the start of a whole frame.
    pub fn parse(frame: &[u8]) -> Result<Self, PayloadError> {
        let Some(tag) = frame.get(..FRAME_TAG_LEN) else {
            return Err(PayloadError::Vp8FrameTooShort {
                len: frame.len(),
                needed: FRAME_TAG_LEN,
            });
        };
        // The tag is a 24-bit little-endian field.
        let tag = u32::from(tag[0]) | u32::from(tag[1]) << 8 | u32::from(tag[2]) << 16;
        let keyframe = tag & 1 == 0;
        let mut header = Vp8FrameHeader {
            keyframe,
            version: (tag >> 1 & 7) as u8,
            show_frame: tag >> 4 & 1 != 0,
            first_partition_size: tag >> 5,
            dimensions: None,
        };
        let mut header_len = FRAME_TAG_LEN;
        if keyframe {
            let Some(k) = frame.get(..KEYFRAME_HEADER_LEN) else {
                return Err(PayloadError::Vp8FrameTooShort {
                    len: frame.len(),
                    needed: KEYFRAME_HEADER_LEN,
                });
            };
            if k[3..6] != START_CODE {
                return Err(PayloadError::Vp8StartCode([k[3], k[4], k[5]]));
            }
            let w = u16::from_le_bytes([k[6], k[7]]);
            let h = u16::from_le_bytes([k[8], k[9]]);
            header.dimensions = Some(Vp8Dimensions {
                width: w & 0x3FFF,
                horizontal_scale: (w >> 14) as u8,
                height: h & 0x3FFF,
                vertical_scale: (h >> 14) as u8,
            });
            header_len = KEYFRAME_HEADER_LEN;
        }
        let available = frame.len() - header_len;
        if header.first_partition_size as usize > available {
            return Err(PayloadError::Vp8FirstPartition {
                size: header.first_partition_size,
                available,
            });
        }
        Ok(header)
    }
}

/// Splits one VP8 frame into RTP payloads (RFC 7741 §4.2, §4.4): the
/// descriptor, then a share of the frame, the shares balanced so no
/// packet is much smaller than the others. The last carries the marker
/// bit (§4.1).
#[derive(Clone, Debug)]
pub struct Vp8Packetizer<'f> {
    header: Vp8FrameHeader,
    descriptor: [u8; MAX_CHUNK_HEADER],
    descriptor_len: usize,
    rest: &'f [u8],
    packets_left: usize,
    first: bool,
}

impl<'f> Vp8Packetizer<'f> {
    /// Checks the frame's header and the descriptor fields, and plans
    /// packets of at most `max_payload` bytes.
    pub fn new(frame: &'f [u8], picture: &Vp8PictureInfo, max_payload: usize) -> Result<Self, PayloadError> {
        if frame.is_empty() {
            return Err(PayloadError::EmptyFrame { codec: "VP8" });
        }
        let header = Vp8FrameHeader::parse(frame)?;
        if header.keyframe && picture.non_reference {
            return Err(PayloadError::InvalidInput {
                what: "VP8 payload descriptor",
                reason: "a keyframe is always a reference frame (N must be 0)",
            });
        }
        let d = Vp8Descriptor {
            picture: *picture,
            start_of_partition: false,
            partition_index: 0,
        };
        let mut descriptor = [0u8; MAX_CHUNK_HEADER];
        let descriptor_len = d.encode(&mut descriptor)?;
        if max_payload <= descriptor_len {
            return Err(PayloadError::MaxPayloadTooSmall {
                codec: "VP8",
                needed: descriptor_len + 1,
                max: max_payload,
            });
        }
        Ok(Vp8Packetizer {
            header,
            descriptor,
            descriptor_len,
            rest: frame,
            packets_left: frame.len().div_ceil(max_payload - descriptor_len),
            first: true,
        })
    }

    /// The frame's header, read before packetizing.
    pub fn frame_header(&self) -> &Vp8FrameHeader {
        &self.header
    }
}

impl<'f> Iterator for Vp8Packetizer<'f> {
    type Item = PayloadChunk<'f>;

    fn next(&mut self) -> Option<PayloadChunk<'f>> {
        if self.packets_left == 0 {
            return None;
        }
        let (body, rest) = self.rest.split_at(balanced_part(self.rest.len(), self.packets_left));
        self.rest = rest;
        self.packets_left -= 1;
        let mut descriptor = self.descriptor;
        if self.first {
            descriptor[0] |= 0x10;
            self.first = false;
        }
        Some(PayloadChunk::new(
            &descriptor[..self.descriptor_len],
            body,
            self.packets_left == 0,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.packets_left, Some(self.packets_left))
    }
}

impl ExactSizeIterator for Vp8Packetizer<'_> {}

/// A VP8 frame put back together, lent until the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vp8Frame<'a> {
    /// The frame as the encoder produced it.
    pub data: &'a [u8],
    pub timestamp: u32,
    /// From the descriptor of the frame's first packet.
    pub picture: Vp8PictureInfo,
    /// Keyframe flag and, for keyframes, the picture size.
    pub header: Vp8FrameHeader,
}

#[derive(Clone, Copy, Debug)]
struct Partial {
    timestamp: u32,
    /// From the first packet, if it was received (S = 1, PID = 0).
    picture: Option<Vp8PictureInfo>,
    /// A packet is missing or the frame outgrew the buffer.
    broken: bool,
}

impl Partial {
    /// Whether giving this frame up may break the reference chain: yes
    /// unless its first packet said N = 1.
    fn hurts_references(&self) -> bool {
        !self.picture.is_some_and(|p| p.non_reference)
    }
}

/// Reassembles VP8 frames from the packets of one SSRC, given in
/// sequence order (RFC 7741 §4.5.1).
///
/// A frame is the run of packets with one timestamp, from the one with
/// S = 1 and PID = 0 to the one with the marker bit, with no sequence
/// number missing. A frame with a gap is dropped; so is one whose
/// marker never came (the timestamp moved on). Loss is reported as
/// [`Depacketized::keyframe_needed`] unless the descriptors prove that
/// only a non-reference frame (N = 1) was hurt: the gap fell inside it,
/// or the PictureID after the gap follows the one before it.
///
/// Complete frames are returned even while a keyframe is awaited; a
/// decoder may conceal, and frames of a base temporal layer may still
/// decode.
#[derive(Clone, Debug)]
pub struct Vp8Depacketizer {
    seq: SeqTracker,
    buf: FrameBuffer,
    current: Option<Partial>,
    last_picture_id: Option<Vp8PictureId>,
    keyframes: KeyframeGate,
}

impl Default for Vp8Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp8Depacketizer {
    /// Reassembles frames of up to [`DEFAULT_MAX_FRAME_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// Reassembles frames of up to `max` bytes; larger ones are dropped.
    pub fn with_max_frame_size(max: usize) -> Self {
        Vp8Depacketizer {
            seq: SeqTracker::default(),
            buf: FrameBuffer::new(max),
            current: None,
            last_picture_id: None,
            keyframes: KeyframeGate::new(),
        }
    }

    /// True from the start, and from a loss that broke the reference
    /// chain, until a keyframe is reassembled.
    pub fn awaiting_keyframe(&self) -> bool {
        self.keyframes.awaiting
    }

    /// Takes the next packet. An error means the payload was malformed;
    /// the packet is then treated as lost.
    pub fn push(&mut self, packet: RtpPayload<'_>) -> Result<Depacketized<Vp8Frame<'_>>, PayloadError> {
        let parsed = match packet.payload {
            [] => None,
            payload => Some(Vp8Descriptor::parse(payload)?),
        };
        let mut dropped = 0;
        let mut broke = false;
        match self.seq.step(packet.sequence_number) {
            SeqStep::Stale => return Ok(Depacketized::default()),
            SeqStep::Next => {}
            SeqStep::Gap { .. } | SeqStep::Jump => broke |= self.on_gap(packet.timestamp, parsed.as_ref()),
        }
        let mut completed = None;
        // A padding-only packet moves the sequence on and nothing else.
        if let Some((descriptor, data)) = parsed {
            if let Some(cur) = self.current.filter(|c| c.timestamp != packet.timestamp) {
                self.current = None;
                dropped += 1;
                broke |= cur.hurts_references();
            }
            let starts = descriptor.start_of_partition && descriptor.partition_index == 0;
            let cur = match &mut self.current {
                Some(cur) => {
                    // A second start within one timestamp: not one frame.
                    cur.broken |= starts;
                    cur
                }
                None => {
                    self.buf.clear();
                    if starts {
                        self.last_picture_id = descriptor.picture.picture_id;
                    }
                    self.current.insert(Partial {
                        timestamp: packet.timestamp,
                        picture: starts.then_some(descriptor.picture),
                        broken: !starts,
                    })
                }
            };
            if !cur.broken && !self.buf.extend(&[data]) {
                cur.broken = true;
            }
            if packet.marker {
                if let Some(cur) = self.current.take() {
                    match cur.picture.filter(|_| !cur.broken) {
                        Some(picture) => match Vp8FrameHeader::parse(&self.buf.data) {
                            Ok(header) => completed = Some((cur.timestamp, picture, header)),
                            Err(_) => {
                                dropped += 1;
                                broke = true;
                            }
                        },
                        None => {
                            dropped += 1;
                            broke |= cur.hurts_references();
                        }
                    }
                }
            }
        }
        Ok(Depacketized {
            keyframe_needed: self.keyframes.settle(broke, completed.map(|(_, _, h)| h.keyframe)),
            frames_dropped: dropped,
            frame: completed.map(|(timestamp, picture, header)| Vp8Frame {
                data: &self.buf.data,
                timestamp,
                picture,
                header,
            }),
        })
    }

    /// Packets are missing before one with `timestamp`; returns whether
    /// the loss may have taken a reference frame with it.
    fn on_gap(&mut self, timestamp: u32, next: Option<&(Vp8Descriptor, &[u8])>) -> bool {
        if let Some(cur) = self.current.as_mut().filter(|c| c.timestamp == timestamp) {
            // The gap lies inside this frame, which is judged when dropped.
            cur.broken = true;
            return false;
        }
        // Whole frames may have gone, unless PictureIDs run on unbroken.
        let follows = match (next, self.last_picture_id) {
            (Some((d, _)), Some(last)) => {
                d.start_of_partition && d.partition_index == 0 && d.picture.picture_id == Some(last.next())
            }
            _ => false,
        };
        !follows
    }
}
