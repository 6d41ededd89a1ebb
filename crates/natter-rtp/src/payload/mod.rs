//! RTP payload formats: what goes between the RTP header and the end of
//! the packet for VP8 (RFC 7741), VP9 (RFC 9628), H.264 (RFC 6184,
//! packetization-mode 1), AV1 (AV1 RTP Specification v1.0.0) and Opus
//! (RFC 7587). Headers are the business of [`crate::RtpWriter`] and
//! [`crate::RtpPacket`]; here only payload bytes and the marker bit, and
//! the AV1 Dependency Descriptor extension's value ([`DependencyDescriptor`]).
//!
//! **Sending.** A packetizer borrows one encoded frame and iterates over
//! [`PayloadChunk`]s no larger than the caller's payload budget. A chunk
//! knows its length and marker bit before it is written, so the RTP
//! header can be written first and the chunk right after it: the frame
//! is copied once, from the encoder's buffer into the packet.
//!
//! ```
//! use natter_rtp::payload::{Vp8Packetizer, Vp8PictureInfo, Vp8PictureId};
//! use natter_rtp::{RtpHeader, RtpWriter};
//!
//! // An inter frame (RFC 6386 §9.1: P bit set) with a 2-byte first partition.
//! let frame = [0x51, 0x00, 0x00, 0xAA, 0xBB, 0xCC, 0xDD];
//! let info = Vp8PictureInfo { picture_id: Some(Vp8PictureId::Long(300)), ..Default::default() };
//! let mut packet = [0u8; 1200];
//! let mut seq = 1000u16;
//! for chunk in Vp8Packetizer::new(&frame, &info, 1160)? {
//!     let header = RtpHeader { marker: chunk.marker(), payload_type: 96, sequence_number: seq, ..Default::default() };
//!     let n = RtpWriter::new(&mut packet, &header)?.finish_header()?;
//!     let len = n + chunk.write_to(&mut packet[n..])?;
//!     // send &packet[..len]
//!     seq = seq.wrapping_add(1);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Receiving.** A depacketizer takes the packets of one SSRC in
//! sequence-number order (a jitter buffer upstream reorders them) and
//! returns a [`Depacketized`] for each: a complete frame when the packet
//! finished one, how many frames were given up on, and whether the
//! decoder needs a keyframe (to be asked for with PLI, RFC 4585 §6.3.1,
//! or FIR, RFC 5104 §4.3.1). Frames are reassembled in a buffer the
//! depacketizer owns and reuses, and lent to the caller until the next
//! packet. A malformed payload is a [`PayloadError`] and leaves the
//! depacketizer as if the packet had never arrived, so the frame it
//! belonged to is lost like any other.
//!
//! **Forwarding.** [`VideoCodec::inspect`] reads one packet as an SFU
//! needs it, without reassembling: whether it starts a keyframe, and
//! its spatial and temporal layer.

mod av1;
mod bits;
mod h264;
mod h264_sps;
mod inspect;
mod opus;
mod vp8;
mod vp9;

pub use av1::{
    leb128_len, read_leb128, write_leb128, Av1AggregationHeader, Av1Depacketizer, Av1Elements, Av1Frame,
    Av1FrameHeader, Av1FrameType, Av1Packetizer, Av1Payload, Av1SequenceHeader, DecodeTargetIndication,
    DependencyDescriptor, DependencyStructure, FrameTemplate, Obu, ObuExtension, ObuHeader, ObuType, Obus,
    TemplateStructure, URI_DEPENDENCY_DESCRIPTOR,
};
pub use h264::{H264Depacketizer, H264Frame, H264Packetizer, NalUnits};
pub use h264_sps::H264Sps;
pub use inspect::{Layer, PacketInfo, VideoCodec};
pub use opus::{OpusDepacketizer, OpusFrame, OpusPacketizer};
pub use vp8::{
    Vp8Depacketizer, Vp8Descriptor, Vp8Dimensions, Vp8Frame, Vp8FrameHeader, Vp8Packetizer, Vp8PictureId,
    Vp8PictureInfo, Vp8TemporalLayer,
};
pub use vp9::{
    Vp9ColorConfig, Vp9Depacketizer, Vp9Descriptor, Vp9Frame, Vp9FrameHeader, Vp9LayerIndices, Vp9Packetizer,
    Vp9PictureGroupEntry, Vp9PictureId, Vp9References, Vp9ScalabilityStructure,
};

use crate::packet::RtpPacket;
use crate::wire::put_u16;

/// The largest frame a depacketizer reassembles unless told otherwise.
///
/// A stream that never sets the marker bit would otherwise grow the
/// buffer without bound; 4 MiB holds a keyframe of 4K video with room
/// to spare.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 << 20;

/// RFC 3550 Appendix A.1: packets this far behind the expected sequence
/// number are late or duplicated; further back, the source restarted.
const MAX_MISORDER: i16 = 100;

/// Why a payload could not be read or a frame could not be packetized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// A packetizer was given an empty frame.
    #[error("{codec} frame is empty")]
    EmptyFrame { codec: &'static str },
    /// The payload budget cannot hold the smallest packet of this format.
    #[error("{codec} needs a payload budget of at least {needed} bytes, {max} given")]
    MaxPayloadTooSmall {
        codec: &'static str,
        needed: usize,
        max: usize,
    },
    /// A frame that is sent whole does not fit in the payload budget.
    #[error("{codec} frame of {len} bytes exceeds the payload budget of {max} bytes")]
    FrameTooLarge {
        codec: &'static str,
        len: usize,
        max: usize,
    },
    /// The caller's buffer cannot hold the chunk.
    #[error("buffer too small: {needed} bytes needed, {available} available")]
    BufferTooSmall { needed: usize, available: usize },
    /// A value handed to a packetizer is out of its field's range.
    #[error("cannot write {what}: {reason}")]
    InvalidInput { what: &'static str, reason: &'static str },
    /// RFC 7741 §4.2: the payload ends inside the payload descriptor.
    #[error("VP8 payload descriptor ends before its {field} (payload of {len} bytes)")]
    Vp8DescriptorTruncated { field: &'static str, len: usize },
    /// RFC 7741 §4.2: a descriptor with nothing after it.
    #[error("VP8 payload has a {len}-byte descriptor and no data")]
    Vp8NoData { len: usize },
    /// RFC 6386 §9.1: the frame is shorter than its uncompressed chunk.
    #[error("VP8 frame of {len} bytes is shorter than its {needed}-byte frame header")]
    Vp8FrameTooShort { len: usize, needed: usize },
    /// RFC 6386 §9.1: a keyframe must carry the start code 9d 01 2a.
    #[error("VP8 keyframe start code is {0:02x?}, not [9d, 01, 2a]")]
    Vp8StartCode([u8; 3]),
    /// RFC 6386 §9.1: the first partition must lie within the frame.
    #[error("VP8 first partition of {size} bytes overruns the {available} bytes after the frame header")]
    Vp8FirstPartition { size: u32, available: usize },
    /// RFC 6184 §5.3: the F bit marks a NAL unit known to be corrupt.
    #[error("H.264 NAL unit header {0:#04x} has the forbidden_zero_bit set")]
    H264ForbiddenBit(u8),
    /// RFC 6184 §5.2, §5.4: a NAL unit or packet type this format does
    /// not carry in packetization-mode 1.
    #[error("H.264 NAL unit type {nal_type} is not allowed here: {reason}")]
    H264NalType { nal_type: u8, reason: &'static str },
    /// RFC 6184 §5.7.1: an aggregation unit's size overruns the packet.
    #[error("H.264 STAP-A unit at byte {offset} declares {declared} bytes but {available} remain")]
    H264StapOverrun {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// RFC 6184 §5.7.1: an aggregation packet, or a unit in one, with no
    /// NAL unit in it.
    #[error("H.264 STAP-A has an empty unit at byte {offset}")]
    H264StapEmpty { offset: usize },
    /// RFC 6184 §5.8: an FU-A packet is shorter than its two headers, or
    /// claims to start and end its NAL unit at once.
    #[error("H.264 FU-A is malformed: {reason}")]
    H264FuA { reason: &'static str },
    /// ITU-T H.264 Annex B: the byte stream does not open with a start code.
    #[error("H.264 Annex B stream does not begin with a start code")]
    AnnexBStartCode,
    /// ISO/IEC 14496-15 §5.3.3: a length-prefixed NAL unit overruns the sample.
    #[error("H.264 length-prefixed NAL unit at byte {offset} declares {declared} bytes but {available} remain")]
    AvccOverrun {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// ITU-T H.264 §7.3.2.1.1: a sequence parameter set that cannot be read.
    #[error("H.264 SPS is malformed: {reason}")]
    H264Sps { reason: &'static str },
    /// RFC 9628 §4.2: the payload ends inside the payload descriptor.
    #[error("VP9 payload descriptor ends before its {field} (payload of {len} bytes)")]
    Vp9DescriptorTruncated { field: &'static str, len: usize },
    /// RFC 9628 §4.2: a descriptor that breaks the format's rules.
    #[error("VP9 payload descriptor is malformed: {reason}")]
    Vp9Descriptor { reason: &'static str },
    /// RFC 9628 §4.2: a descriptor with nothing after it.
    #[error("VP9 payload has a {len}-byte descriptor and no data")]
    Vp9NoData { len: usize },
    /// VP9 Bitstream Specification §6.2: an uncompressed header that
    /// cannot be read.
    #[error("VP9 frame header is malformed: {reason}")]
    Vp9FrameHeader { reason: &'static str },
    /// AV1 RTP Specification §4.4, §4.5: an aggregation header or OBU
    /// elements that do not add up.
    #[error("AV1 payload is malformed: {reason}")]
    Av1Payload { reason: &'static str },
    /// AV1 Bitstream Specification §5.2, §5.3: an OBU that cannot be read.
    #[error("AV1 OBU at byte {offset} is malformed: {reason}")]
    Av1Obu { offset: usize, reason: &'static str },
    /// AV1 Bitstream Specification §5.5.1.
    #[error("AV1 sequence header is malformed: {reason}")]
    Av1SequenceHeader { reason: &'static str },
    /// AV1 Bitstream Specification §5.9.2.
    #[error("AV1 frame header is malformed: {reason}")]
    Av1FrameHeader { reason: &'static str },
    /// AV1 RTP Specification A.8.2.
    #[error("dependency descriptor is malformed: {reason}")]
    DependencyDescriptor { reason: &'static str },
}

/// The fields of one received RTP packet that a depacketizer reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RtpPayload<'a> {
    pub sequence_number: u16,
    pub timestamp: u32,
    pub marker: bool,
    /// The payload without RTP padding; empty for a padding-only packet.
    pub payload: &'a [u8],
}

impl<'a> From<&RtpPacket<'a>> for RtpPayload<'a> {
    fn from(p: &RtpPacket<'a>) -> Self {
        RtpPayload {
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            marker: p.marker(),
            payload: p.payload(),
        }
    }
}

/// What one packet handed to a depacketizer produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Depacketized<F> {
    /// The frame this packet completed.
    pub frame: Option<F>,
    /// Frames given up on because of this packet: incomplete (a gap in
    /// sequence numbers, a missing start or end), oversized or malformed.
    /// Frames lost without a trace (all their packets missing) are not
    /// counted. For Opus, each lost packet is one frame.
    pub frames_dropped: u32,
    /// The decoder's chain of reference frames is broken (or was never
    /// started): ask the sender for a keyframe. Raised once per break,
    /// then not again until a keyframe has arrived; see the
    /// depacketizer's `awaiting_keyframe` for the standing state.
    pub keyframe_needed: bool,
}

impl<F> Default for Depacketized<F> {
    fn default() -> Self {
        Depacketized {
            frame: None,
            frames_dropped: 0,
            keyframe_needed: false,
        }
    }
}

/// One RTP payload produced by a packetizer, borrowing the frame.
///
/// The length and the marker bit are known before anything is written,
/// so the caller can write the RTP header, then [`PayloadChunk::write_to`]
/// the bytes after it.
#[derive(Clone, Debug)]
pub struct PayloadChunk<'f> {
    header: [u8; MAX_CHUNK_HEADER],
    header_len: u8,
    body: ChunkBody<'f>,
    len: usize,
    marker: bool,
}

/// RFC 9628 §4.2: the VP9 descriptor of a keyframe's first packet (a
/// 15-bit picture ID and a one-layer scalability structure), the
/// longest header any packetizer puts before frame bytes.
const MAX_CHUNK_HEADER: usize = 8;

#[derive(Clone, Debug)]
enum ChunkBody<'f> {
    /// Frame bytes copied as they are.
    Bytes(&'f [u8]),
    /// RFC 6184 §5.7.1: `count` NAL units, each written after its
    /// 16-bit size.
    StapA { units: NalUnits<'f>, count: usize },
    /// AV1 RTP §4.5: OBU elements, each rebuilt from its OBU.
    Av1(av1::ElementRun<'f>),
}

impl<'f> PayloadChunk<'f> {
    /// A header (at most [`MAX_CHUNK_HEADER`] bytes) then frame bytes.
    fn new(header: &[u8], body: &'f [u8], marker: bool) -> Self {
        let mut h = [0u8; MAX_CHUNK_HEADER];
        h[..header.len()].copy_from_slice(header);
        PayloadChunk {
            header: h,
            header_len: header.len() as u8,
            body: ChunkBody::Bytes(body),
            len: header.len() + body.len(),
            marker,
        }
    }

    fn stap_a(header: u8, units: NalUnits<'f>, count: usize, len: usize, marker: bool) -> Self {
        let mut h = [0u8; MAX_CHUNK_HEADER];
        h[0] = header;
        PayloadChunk {
            header: h,
            header_len: 1,
            body: ChunkBody::StapA { units, count },
            len,
            marker,
        }
    }

    /// AV1 RTP §4.4: the aggregation header, then OBU elements.
    fn av1(header: u8, elements: av1::ElementRun<'f>, len: usize, marker: bool) -> Self {
        let mut h = [0u8; MAX_CHUNK_HEADER];
        h[0] = header;
        PayloadChunk {
            header: h,
            header_len: 1,
            body: ChunkBody::Av1(elements),
            len,
            marker,
        }
    }

    /// Bytes [`PayloadChunk::write_to`] writes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: every chunk carries at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The RTP marker bit for this packet: the last packet of a video
    /// frame (RFC 7741 §4.1, RFC 6184 §5.1), the start of a talkspurt
    /// for audio (RFC 3551 §4.1).
    pub fn marker(&self) -> bool {
        self.marker
    }

    /// Writes the payload at the start of `out` and returns its length.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, PayloadError> {
        if out.len() < self.len {
            return Err(PayloadError::BufferTooSmall {
                needed: self.len,
                available: out.len(),
            });
        }
        let h = usize::from(self.header_len);
        out[..h].copy_from_slice(&self.header[..h]);
        match &self.body {
            ChunkBody::Bytes(b) => out[h..h + b.len()].copy_from_slice(b),
            ChunkBody::StapA { units, count } => {
                let mut at = h;
                for nal in units.clone().take(*count) {
                    // The packetizer only aggregates units of at most 65535 bytes.
                    put_u16(out, at, nal.len() as u16);
                    out[at + 2..at + 2 + nal.len()].copy_from_slice(nal);
                    at += 2 + nal.len();
                }
            }
            ChunkBody::Av1(elements) => elements.write(&mut out[h..self.len]),
        }
        Ok(self.len)
    }
}

/// Splits `len` bytes into `packets` parts whose sizes differ by at
/// most one, largest first: the next part's size.
fn balanced_part(remaining: usize, packets_left: usize) -> usize {
    remaining.div_ceil(packets_left.max(1))
}

/// Where a packet's sequence number falls relative to the one expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeqStep {
    /// The expected packet, or the first one.
    Next,
    /// `lost` packets are missing before this one.
    Gap { lost: u16 },
    /// Far behind: the source restarted its sequence.
    Jump,
    /// A little behind: late or duplicated, to be ignored.
    Stale,
}

/// Follows the 16-bit sequence number across wrap-around.
#[derive(Clone, Copy, Debug, Default)]
struct SeqTracker {
    next: Option<u16>,
}

impl SeqTracker {
    fn step(&mut self, seq: u16) -> SeqStep {
        let step = match self.next {
            None => SeqStep::Next,
            Some(next) => match seq.wrapping_sub(next) as i16 {
                0 => SeqStep::Next,
                d if d > 0 => SeqStep::Gap { lost: d as u16 },
                d if d >= -MAX_MISORDER => return SeqStep::Stale,
                _ => SeqStep::Jump,
            },
        };
        self.next = Some(seq.wrapping_add(1));
        step
    }
}

/// A reassembly buffer, reused from frame to frame, with a size cap.
#[derive(Clone, Debug)]
struct FrameBuffer {
    data: Vec<u8>,
    max: usize,
}

impl FrameBuffer {
    fn new(max: usize) -> Self {
        FrameBuffer { data: Vec::new(), max }
    }

    fn clear(&mut self) {
        self.data.clear();
    }

    /// Appends all of `parts`, or nothing if they would pass the cap.
    fn extend(&mut self, parts: &[&[u8]]) -> bool {
        let add: usize = parts.iter().map(|p| p.len()).sum();
        if self.data.len() + add > self.max {
            return false;
        }
        for p in parts {
            self.data.extend_from_slice(p);
        }
        true
    }
}

/// What a video depacketizer keeps between packets: where the sequence
/// is, the frame in progress and its buffer, and the keyframe gate.
#[derive(Clone, Debug)]
struct Reassembly<P> {
    seq: SeqTracker,
    buf: FrameBuffer,
    current: Option<P>,
    keyframes: KeyframeGate,
}

impl<P: Copy> Reassembly<P> {
    fn new(max_frame_size: usize) -> Self {
        Reassembly {
            seq: SeqTracker::default(),
            buf: FrameBuffer::new(max_frame_size),
            current: None,
            keyframes: KeyframeGate::new(),
        }
    }

    /// `None` for a late or repeated packet, which is ignored; otherwise
    /// whether packets are missing before this one (or the source
    /// restarted its sequence).
    fn gap(&mut self, sequence_number: u16) -> Option<bool> {
        match self.seq.step(sequence_number) {
            SeqStep::Stale => None,
            SeqStep::Next => Some(false),
            SeqStep::Gap { .. } | SeqStep::Jump => Some(true),
        }
    }

    /// Takes the frame in progress if `unfinished` says it can no longer
    /// complete.
    fn abandon_if(&mut self, unfinished: impl FnOnce(&P) -> bool) -> Option<P> {
        self.current.take_if(|p| unfinished(p))
    }

    /// The frame in progress, or one `start` begins on the emptied
    /// buffer; with the buffer.
    fn continue_or(&mut self, start: impl FnOnce(&mut FrameBuffer) -> P) -> (&mut P, &mut FrameBuffer) {
        let partial = match &mut self.current {
            Some(p) => p,
            none => {
                self.buf.clear();
                none.insert(start(&mut self.buf))
            }
        };
        (partial, &mut self.buf)
    }
}

/// Whether the decoder holds a usable reference chain, and whether the
/// caller has been told that it does not.
#[derive(Clone, Copy, Debug)]
struct KeyframeGate {
    awaiting: bool,
    requested: bool,
}

impl KeyframeGate {
    /// Nothing decodes before the first keyframe.
    fn new() -> Self {
        KeyframeGate {
            awaiting: true,
            requested: false,
        }
    }

    /// Settles one packet's outcome and says whether to ask for a
    /// keyframe: `broke` if it lost a reference, `completed` the kind of
    /// frame it finished (true for a keyframe).
    fn settle(&mut self, broke: bool, completed: Option<bool>) -> bool {
        if broke && !self.awaiting {
            self.awaiting = true;
            self.requested = false;
        }
        if completed == Some(true) {
            self.awaiting = false;
            self.requested = false;
            return false;
        }
        let ask = self.awaiting && !self.requested && (broke || completed == Some(false));
        self.requested |= ask;
        ask
    }
}
