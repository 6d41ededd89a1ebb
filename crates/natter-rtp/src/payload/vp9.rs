//! VP9 over RTP (RFC 9628): the payload descriptor (§4.2) and its
//! scalability structure (§4.2.1), the uncompressed header a receiver
//! reads for keyframes and picture sizes (VP9 Bitstream Specification
//! v0.6 §6.2), a packetizer and a frame reassembler (§4.5).
//!
//! The packetizer writes the non-flexible mode with one spatial layer:
//! a 15-bit picture ID on every packet, P = 0 and a scalability
//! structure with the picture size on a keyframe's first packet, the
//! mode libwebrtc uses for a single-layer stream. The reassembler takes
//! either mode and any number of layers, one layer frame at a time.

use super::bits::BitReader;
use super::{
    balanced_part, Depacketized, PayloadChunk, PayloadError, Reassembly, RtpPayload, Vp8PictureId,
    DEFAULT_MAX_FRAME_SIZE, MAX_CHUNK_HEADER,
};

/// RFC 9628 §4.2: the picture ID, 7 or 15 bits after the M bit, exactly
/// as in VP8 (RFC 7741 §4.2).
pub type Vp9PictureId = Vp8PictureId;

/// RFC 9628 §4.2: the most reference indices (P_DIFF) a picture has.
const MAX_REFERENCES: usize = 3;
/// VP9 §6.2 frame_sync_code.
const FRAME_SYNC_CODE: [u8; 3] = [0x49, 0x83, 0x42];
/// VP9 §7.2 color_space: CS_RGB.
const CS_RGB: u8 = 7;
/// VP9 §6.2: frame_marker.
const FRAME_MARKER: u32 = 2;

/// RFC 9628 §4.2: the layer indices octet (L = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp9LayerIndices {
    /// TID, 0..=7.
    pub temporal_id: u8,
    /// U: switching up point; a higher temporal layer may start here.
    pub switching_up: bool,
    /// SID, 0..=7.
    pub spatial_id: u8,
    /// D: the frame depends on the frame of the spatial layer below in
    /// the same picture. Always false for SID 0.
    pub inter_layer_dependency: bool,
    /// TL0PICIDX, present in non-flexible mode only.
    pub tl0_pic_idx: Option<u8>,
}

/// RFC 9628 §4.2: up to three reference indices (P_DIFF), each the
/// distance back in picture IDs to a picture this one predicts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Vp9References {
    diffs: [u8; MAX_REFERENCES],
    len: u8,
}

impl Vp9References {
    /// Up to three differences, 1..=127 each in a payload descriptor.
    pub fn new(diffs: &[u8]) -> Result<Self, PayloadError> {
        if diffs.len() > MAX_REFERENCES {
            return Err(PayloadError::InvalidInput {
                what: "VP9 reference indices",
                reason: "a picture has at most three",
            });
        }
        let mut r = Vp9References::default();
        r.diffs[..diffs.len()].copy_from_slice(diffs);
        r.len = diffs.len() as u8;
        Ok(r)
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.diffs[..usize::from(self.len)]
    }

    fn push(&mut self, diff: u8) -> bool {
        let Some(slot) = self.diffs.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = diff;
        self.len += 1;
        true
    }
}

/// RFC 9628 §4.2.1: the scalability structure (V = 1), a borrowed view
/// of its bytes, validated when parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp9ScalabilityStructure<'a> {
    bytes: &'a [u8],
}

/// RFC 9628 §4.2.1: one picture of the picture group (G = 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp9PictureGroupEntry {
    /// T, 0..=7.
    pub temporal_id: u8,
    /// U: a switching up point.
    pub switching_up: bool,
    /// R P_DIFFs (0 to 3), each one octet here.
    pub references: Vp9References,
}

impl<'a> Vp9ScalabilityStructure<'a> {
    /// Reads the structure at the start of `bytes`; returns it and the
    /// bytes it took.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, usize), PayloadError> {
        let truncated = |field| PayloadError::Vp9DescriptorTruncated {
            field,
            len: bytes.len(),
        };
        let first = *bytes.first().ok_or(truncated("scalability structure"))?;
        let mut at = 1;
        if first & 0x10 != 0 {
            at += 4 * usize::from((first >> 5) + 1);
            if at > bytes.len() {
                return Err(truncated("spatial layer resolutions"));
            }
        }
        if first & 0x08 != 0 {
            let n_g = *bytes.get(at).ok_or(truncated("N_G"))?;
            at += 1;
            for _ in 0..n_g {
                let entry = *bytes.get(at).ok_or(truncated("picture group"))?;
                at += 1 + usize::from(entry >> 2 & 3);
                if at > bytes.len() {
                    return Err(truncated("picture group reference indices"));
                }
            }
        }
        Ok((Vp9ScalabilityStructure { bytes: &bytes[..at] }, at))
    }

    /// The structure's bytes as they appear in the descriptor.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// N_S + 1: the number of spatial layers, 1..=8.
    pub fn spatial_layers(&self) -> u8 {
        (self.bytes[0] >> 5) + 1
    }

    /// Y: each spatial layer's width and height, lowest layer first.
    pub fn resolutions(&self) -> impl Iterator<Item = (u16, u16)> + 'a {
        let count = if self.bytes[0] & 0x10 != 0 {
            usize::from(self.spatial_layers())
        } else {
            0
        };
        // parse() checked that the resolutions are all there.
        self.bytes[1..1 + 4 * count]
            .chunks_exact(4)
            .map(|r| (u16::from_be_bytes([r[0], r[1]]), u16::from_be_bytes([r[2], r[3]])))
    }

    /// The resolution of spatial layer `spatial_id`, if the structure
    /// carries resolutions.
    pub fn resolution(&self, spatial_id: u8) -> Option<(u16, u16)> {
        self.resolutions().nth(usize::from(spatial_id))
    }

    /// G: the picture group, in order from the key picture; empty when
    /// the structure describes none.
    pub fn picture_group(&self) -> impl Iterator<Item = Vp9PictureGroupEntry> + 'a {
        let b = self.bytes;
        let mut at = 1 + if b[0] & 0x10 != 0 {
            4 * usize::from(self.spatial_layers())
        } else {
            0
        };
        let count = if b[0] & 0x08 != 0 {
            at += 1;
            usize::from(b[at - 1])
        } else {
            0
        };
        (0..count).map(move |_| {
            // parse() checked every entry and its reference indices.
            let entry = b[at];
            let r = usize::from(entry >> 2 & 3);
            let references = Vp9References::new(&b[at + 1..at + 1 + r]).unwrap_or_default();
            at += 1 + r;
            Vp9PictureGroupEntry {
                temporal_id: entry >> 5,
                switching_up: entry & 0x10 != 0,
                references,
            }
        })
    }
}

/// RFC 9628 §4.2: the VP9 payload descriptor that opens every payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Vp9Descriptor<'a> {
    /// I: the picture ID.
    pub picture_id: Option<Vp9PictureId>,
    /// P: the frame predicts from an earlier picture; false on a key
    /// picture (and its upper spatial layers).
    pub inter_picture_predicted: bool,
    /// F: flexible mode, with reference indices in each descriptor.
    pub flexible_mode: bool,
    /// B: the payload starts a frame.
    pub start_of_frame: bool,
    /// E: the payload ends a frame.
    pub end_of_frame: bool,
    /// Z: no frame of a higher spatial layer predicts from this one.
    pub not_upper_layer_reference: bool,
    /// L: the layer indices.
    pub layer: Option<Vp9LayerIndices>,
    /// The reference indices, present in flexible mode when P = 1.
    pub references: Vp9References,
    /// V: the scalability structure.
    pub scalability_structure: Option<Vp9ScalabilityStructure<'a>>,
}

impl<'a> Vp9Descriptor<'a> {
    /// Parses the descriptor at the start of `payload` and returns it
    /// with the VP9 data that follows.
    pub fn parse(payload: &'a [u8]) -> Result<(Self, &'a [u8]), PayloadError> {
        let len = payload.len();
        let byte = |at: usize, field| {
            payload
                .get(at)
                .copied()
                .ok_or(PayloadError::Vp9DescriptorTruncated { field, len })
        };
        let b0 = byte(0, "first octet")?;
        let mut d = Vp9Descriptor {
            inter_picture_predicted: b0 & 0x40 != 0,
            flexible_mode: b0 & 0x10 != 0,
            start_of_frame: b0 & 0x08 != 0,
            end_of_frame: b0 & 0x04 != 0,
            not_upper_layer_reference: b0 & 0x01 != 0,
            ..Default::default()
        };
        let mut at = 1;
        if b0 & 0x80 != 0 {
            let p = byte(at, "picture ID")?;
            if p & 0x80 != 0 {
                let low = byte(at + 1, "extended picture ID")?;
                d.picture_id = Some(Vp9PictureId::Long(u16::from(p & 0x7F) << 8 | u16::from(low)));
                at += 2;
            } else {
                d.picture_id = Some(Vp9PictureId::Short(p));
                at += 1;
            }
        }
        if b0 & 0x20 != 0 {
            let l = byte(at, "layer indices")?;
            at += 1;
            let tl0_pic_idx = if d.flexible_mode {
                None
            } else {
                at += 1;
                Some(byte(at - 1, "TL0PICIDX")?)
            };
            d.layer = Some(Vp9LayerIndices {
                temporal_id: l >> 5,
                switching_up: l & 0x10 != 0,
                spatial_id: l >> 1 & 7,
                inter_layer_dependency: l & 1 != 0,
                tl0_pic_idx,
            });
        }
        if d.flexible_mode && d.inter_picture_predicted {
            loop {
                let r = byte(at, "reference index")?;
                at += 1;
                if !d.references.push(r >> 1) {
                    return Err(PayloadError::Vp9Descriptor {
                        reason: "more than three reference indices",
                    });
                }
                if r & 1 == 0 {
                    break;
                }
            }
        }
        if b0 & 0x02 != 0 {
            let (ss, n) = Vp9ScalabilityStructure::parse(&payload[at..])?;
            d.scalability_structure = Some(ss);
            at += n;
        }
        if at == len {
            return Err(PayloadError::Vp9NoData { len });
        }
        Ok((d, &payload[at..]))
    }

    /// Whether this payload starts a keyframe: the first packet (B) of
    /// a picture that predicts from no earlier one (P = 0), in the base
    /// spatial layer.
    pub fn starts_keyframe(&self) -> bool {
        self.start_of_frame && !self.inter_picture_predicted && self.layer.is_none_or(|l| l.spatial_id == 0)
    }

    /// Bytes [`Vp9Descriptor::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .picture_id
            .map_or(0, |p| if matches!(p, Vp9PictureId::Short(_)) { 1 } else { 2 })
            + self.layer.map_or(0, |l| 1 + usize::from(l.tl0_pic_idx.is_some()))
            + self.references.as_slice().len()
            + self.scalability_structure.map_or(0, |s| s.bytes.len())
    }

    /// Writes the descriptor at the start of `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, PayloadError> {
        self.validate()?;
        let len = self.encoded_len();
        if out.len() < len {
            return Err(PayloadError::BufferTooSmall {
                needed: len,
                available: out.len(),
            });
        }
        out[0] = u8::from(self.picture_id.is_some()) << 7
            | u8::from(self.inter_picture_predicted) << 6
            | u8::from(self.layer.is_some()) << 5
            | u8::from(self.flexible_mode) << 4
            | u8::from(self.start_of_frame) << 3
            | u8::from(self.end_of_frame) << 2
            | u8::from(self.scalability_structure.is_some()) << 1
            | u8::from(self.not_upper_layer_reference);
        let mut at = 1;
        match self.picture_id {
            Some(Vp9PictureId::Short(v)) => {
                out[at] = v;
                at += 1;
            }
            Some(Vp9PictureId::Long(v)) => {
                out[at..at + 2].copy_from_slice(&(v | 0x8000).to_be_bytes());
                at += 2;
            }
            None => {}
        }
        if let Some(l) = self.layer {
            out[at] = l.temporal_id << 5
                | u8::from(l.switching_up) << 4
                | l.spatial_id << 1
                | u8::from(l.inter_layer_dependency);
            at += 1;
            if let Some(idx) = l.tl0_pic_idx {
                out[at] = idx;
                at += 1;
            }
        }
        let refs = self.references.as_slice();
        for (i, diff) in refs.iter().enumerate() {
            out[at] = diff << 1 | u8::from(i + 1 < refs.len());
            at += 1;
        }
        if let Some(ss) = self.scalability_structure {
            out[at..at + ss.bytes.len()].copy_from_slice(ss.bytes);
            at += ss.bytes.len();
        }
        Ok(at)
    }

    fn validate(&self) -> Result<(), PayloadError> {
        let bad = |reason| {
            Err(PayloadError::InvalidInput {
                what: "VP9 payload descriptor",
                reason,
            })
        };
        match self.picture_id {
            Some(Vp9PictureId::Short(v)) if v > 0x7F => return bad("a short picture ID has 7 bits"),
            Some(Vp9PictureId::Long(v)) if v > 0x7FFF => return bad("a long picture ID has 15 bits"),
            None if self.flexible_mode => return bad("flexible mode needs the picture ID"),
            _ => {}
        }
        if let Some(l) = self.layer {
            if l.temporal_id > 7 || l.spatial_id > 7 {
                return bad("TID and SID have 3 bits");
            }
            if l.tl0_pic_idx.is_some() == self.flexible_mode {
                return bad("TL0PICIDX is present in non-flexible mode only, and then required");
            }
        }
        let refs = self.references.as_slice();
        if refs.is_empty() == (self.flexible_mode && self.inter_picture_predicted) {
            return bad("reference indices are present exactly in flexible mode with P = 1");
        }
        if refs.iter().any(|&d| d == 0 || d > 0x7F) {
            return bad("a reference index is 1 to 127");
        }
        Ok(())
    }
}

/// VP9 §6.2, §7.2 color_config: how samples are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp9ColorConfig {
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// color_space, 0..=7 (7 is RGB).
    pub color_space: u8,
    /// color_range: full swing rather than studio swing.
    pub full_range: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
}

/// VP9 §6.2: the start of a frame's uncompressed header, as far as the
/// frame size of keyframes and intra-only frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vp9FrameHeader {
    /// 0..=3.
    pub profile: u8,
    /// The frame only shows one decoded earlier; nothing else follows.
    pub show_existing_frame: bool,
    /// frame_type is KEY_FRAME.
    pub keyframe: bool,
    /// An intra-only frame: decodes without references, unlike a
    /// keyframe keeps the other reference slots.
    pub intra_only: bool,
    pub show_frame: bool,
    pub error_resilient: bool,
    /// For keyframes, and intra-only frames of profiles 1 to 3.
    pub color: Option<Vp9ColorConfig>,
    /// frame_width_minus_1 + 1 and frame_height_minus_1 + 1, for
    /// keyframes and intra-only frames.
    pub size: Option<(u32, u32)>,
}

impl Vp9FrameHeader {
    /// Reads the header at the start of a frame (or of a superframe,
    /// whose first frame it then describes).
    pub fn parse(frame: &[u8]) -> Result<Self, PayloadError> {
        let mut r = BitReader::new(frame);
        let bad = |reason| PayloadError::Vp9FrameHeader { reason };
        let ended = || bad("the frame ends inside its uncompressed header");
        if r.bits(2).ok_or_else(ended)? != FRAME_MARKER {
            return Err(bad("frame_marker is not 2"));
        }
        let low = r.bits(1).ok_or_else(ended)?;
        let profile = (r.bits(1).ok_or_else(ended)? << 1 | low) as u8;
        if profile == 3 && r.flag().ok_or_else(ended)? {
            return Err(bad("the reserved bit after profile 3 is set"));
        }
        let mut h = Vp9FrameHeader {
            profile,
            show_existing_frame: r.flag().ok_or_else(ended)?,
            keyframe: false,
            intra_only: false,
            show_frame: true,
            error_resilient: false,
            color: None,
            size: None,
        };
        if h.show_existing_frame {
            return Ok(h);
        }
        h.keyframe = !r.flag().ok_or_else(ended)?;
        h.show_frame = r.flag().ok_or_else(ended)?;
        h.error_resilient = r.flag().ok_or_else(ended)?;
        if !h.keyframe {
            h.intra_only = !h.show_frame && r.flag().ok_or_else(ended)?;
            if !h.error_resilient {
                r.bits(2).ok_or_else(ended)?; // reset_frame_context
            }
            if !h.intra_only {
                return Ok(h);
            }
        }
        for expected in FRAME_SYNC_CODE {
            if r.bits(8).ok_or_else(ended)? != u32::from(expected) {
                return Err(bad("frame_sync_code is not 49 83 42"));
            }
        }
        if h.keyframe || profile > 0 {
            h.color = Some(color_config(&mut r, profile).ok_or_else(ended)?);
        }
        if h.intra_only {
            r.bits(8).ok_or_else(ended)?; // refresh_frame_flags
        }
        let width = r.bits(16).ok_or_else(ended)? + 1;
        let height = r.bits(16).ok_or_else(ended)? + 1;
        h.size = Some((width, height));
        Ok(h)
    }
}

/// VP9 §6.2 color_config().
fn color_config(r: &mut BitReader<'_>, profile: u8) -> Option<Vp9ColorConfig> {
    let bit_depth = match profile {
        0 | 1 => 8,
        _ if r.flag()? => 12,
        _ => 10,
    };
    let color_space = r.bits(3)? as u8;
    let odd_profile = profile & 1 == 1;
    let (full_range, subsampling_x, subsampling_y) = if color_space != CS_RGB {
        let full_range = r.flag()?;
        if odd_profile {
            let (x, y) = (r.flag()?, r.flag()?);
            r.flag()?; // reserved_zero
            (full_range, x, y)
        } else {
            (full_range, true, true)
        }
    } else {
        if odd_profile {
            r.flag()?; // reserved_zero
        }
        (true, false, false)
    };
    Some(Vp9ColorConfig {
        bit_depth,
        color_space,
        full_range,
        subsampling_x,
        subsampling_y,
    })
}

/// Splits one VP9 frame (or superframe) into RTP payloads (RFC 9628
/// §4.5) in non-flexible mode with one spatial layer. Every payload
/// carries the picture ID; the first has B, the last E and the marker
/// bit (§4.1). A keyframe goes out with P = 0 and, on its first packet,
/// a scalability structure giving its size (§4.2.1); other frames with
/// P = 1. Packet sizes are balanced.
#[derive(Clone, Debug)]
pub struct Vp9Packetizer<'f> {
    header: Vp9FrameHeader,
    /// The descriptor of the first packet (with SS on a keyframe), then
    /// of the others, each without B and E.
    first: [u8; MAX_CHUNK_HEADER],
    first_len: usize,
    others: [u8; MAX_CHUNK_HEADER],
    others_len: usize,
    rest: &'f [u8],
    packets_left: usize,
    sent: usize,
}

impl<'f> Vp9Packetizer<'f> {
    /// Reads the frame's uncompressed header and plans payloads of at
    /// most `max_payload` bytes.
    pub fn new(frame: &'f [u8], picture_id: Vp9PictureId, max_payload: usize) -> Result<Self, PayloadError> {
        if frame.is_empty() {
            return Err(PayloadError::EmptyFrame { codec: "VP9" });
        }
        let header = Vp9FrameHeader::parse(frame)?;
        let mut ss = [0u8; 5];
        let scalability_structure = match header.size {
            Some((w, h)) if header.keyframe => {
                let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h)) else {
                    return Err(PayloadError::InvalidInput {
                        what: "VP9 scalability structure",
                        reason: "a resolution is 16 bits; this keyframe is larger",
                    });
                };
                // N_S = 0 (one layer), Y = 1, G = 0.
                ss[0] = 0x10;
                ss[1..3].copy_from_slice(&w.to_be_bytes());
                ss[3..5].copy_from_slice(&h.to_be_bytes());
                Some(Vp9ScalabilityStructure { bytes: &ss })
            }
            _ => None,
        };
        let mut d = Vp9Descriptor {
            picture_id: Some(picture_id),
            inter_picture_predicted: !header.keyframe,
            scalability_structure,
            ..Default::default()
        };
        let mut first = [0u8; MAX_CHUNK_HEADER];
        let first_len = d.encode(&mut first)?;
        d.scalability_structure = None;
        let mut others = [0u8; MAX_CHUNK_HEADER];
        let others_len = d.encode(&mut others)?;
        if max_payload <= first_len {
            return Err(PayloadError::MaxPayloadTooSmall {
                codec: "VP9",
                needed: first_len + 1,
                max: max_payload,
            });
        }
        let after_first = frame.len().saturating_sub(max_payload - first_len);
        Ok(Vp9Packetizer {
            header,
            first,
            first_len,
            others,
            others_len,
            rest: frame,
            packets_left: 1 + after_first.div_ceil(max_payload - others_len),
            sent: 0,
        })
    }

    /// The frame's header, read before packetizing.
    pub fn frame_header(&self) -> &Vp9FrameHeader {
        &self.header
    }
}

impl<'f> Iterator for Vp9Packetizer<'f> {
    type Item = PayloadChunk<'f>;

    fn next(&mut self) -> Option<PayloadChunk<'f>> {
        if self.packets_left == 0 {
            return None;
        }
        let (mut descriptor, header_len) = if self.sent == 0 {
            (self.first, self.first_len)
        } else {
            (self.others, self.others_len)
        };
        // Balance whole packets, descriptors included: the first may be
        // longer. Each share is at least one byte and fits the budget,
        // and what is left still fits the packets left (their count was
        // the least that holds the frame).
        let headers_after = (self.packets_left - 1) * self.others_len;
        let share = balanced_part(self.rest.len() + header_len + headers_after, self.packets_left);
        let max_body = if self.packets_left == 1 {
            self.rest.len()
        } else {
            self.rest.len() - (self.packets_left - 1)
        };
        let body_len = share.saturating_sub(header_len).max(1).min(max_body);
        let (body, rest) = self.rest.split_at(body_len);
        self.rest = rest;
        self.packets_left -= 1;
        if self.sent == 0 {
            descriptor[0] |= 0x08; // B
        }
        if self.packets_left == 0 {
            descriptor[0] |= 0x04; // E
        }
        self.sent += 1;
        Some(PayloadChunk::new(
            &descriptor[..header_len],
            body,
            self.packets_left == 0,
        ))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.packets_left, Some(self.packets_left))
    }
}

impl ExactSizeIterator for Vp9Packetizer<'_> {}

/// A VP9 frame put back together, lent until the next packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vp9Frame<'a> {
    /// The frame (or superframe) as the encoder produced it.
    pub data: &'a [u8],
    pub timestamp: u32,
    /// From the descriptor of the frame's first packet.
    pub picture_id: Option<Vp9PictureId>,
    pub inter_picture_predicted: bool,
    pub layer: Option<Vp9LayerIndices>,
    /// The resolution a scalability structure in the frame's first
    /// packet gave for its spatial layer.
    pub resolution: Option<(u16, u16)>,
    /// Keyframe flag and, for keyframes, the picture size.
    pub header: Vp9FrameHeader,
}

impl Vp9Frame<'_> {
    /// The picture size: from the frame's own header (keyframes and
    /// intra-only frames), else from the scalability structure.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.header
            .size
            .or(self.resolution.map(|(w, h)| (u32::from(w), u32::from(h))))
    }
}

#[derive(Clone, Copy, Debug)]
struct Partial {
    timestamp: u32,
    /// From the first packet, if it was received (B = 1).
    first: Option<FirstPacket>,
    /// A packet is missing or the frame outgrew the buffer.
    broken: bool,
}

/// What the first packet of a frame says about it.
#[derive(Clone, Copy, Debug)]
struct FirstPacket {
    picture_id: Option<Vp9PictureId>,
    inter_picture_predicted: bool,
    layer: Option<Vp9LayerIndices>,
    resolution: Option<(u16, u16)>,
}

impl FirstPacket {
    fn of(d: &Vp9Descriptor<'_>) -> Self {
        FirstPacket {
            picture_id: d.picture_id,
            inter_picture_predicted: d.inter_picture_predicted,
            layer: d.layer,
            resolution: d
                .scalability_structure
                .and_then(|ss| ss.resolution(d.layer.map_or(0, |l| l.spatial_id))),
        }
    }
}

/// Reassembles VP9 frames from the packets of one SSRC, given in
/// sequence order (RFC 9628 §4.5).
///
/// A frame is the run of packets from one with B = 1 to one with
/// E = 1, with one timestamp and no sequence number missing. In a
/// spatially scalable stream each layer's frame is handed out on its
/// own (not joined into a superframe). A frame with a gap, or whose E
/// never came (the timestamp moved on, or another frame began), is
/// dropped, and [`Depacketized::keyframe_needed`] raised, unless the
/// packet after the gap shows nothing was lost that later frames need:
/// it starts a keyframe, or a frame whose picture ID follows the last
/// one seen.
#[derive(Clone, Debug)]
pub struct Vp9Depacketizer {
    state: Reassembly<Partial>,
    last_picture_id: Option<Vp9PictureId>,
}

impl Default for Vp9Depacketizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp9Depacketizer {
    /// Reassembles frames of up to [`DEFAULT_MAX_FRAME_SIZE`] bytes.
    pub fn new() -> Self {
        Self::with_max_frame_size(DEFAULT_MAX_FRAME_SIZE)
    }

    /// Reassembles frames of up to `max` bytes; larger ones are dropped.
    pub fn with_max_frame_size(max: usize) -> Self {
        Vp9Depacketizer {
            state: Reassembly::new(max),
            last_picture_id: None,
        }
    }

    /// True from the start, and from a loss that broke the reference
    /// chain, until a keyframe is reassembled.
    pub fn awaiting_keyframe(&self) -> bool {
        self.state.keyframes.awaiting
    }

    /// Takes the next packet. An error means the payload was malformed;
    /// the packet is then treated as lost.
    pub fn push(&mut self, packet: RtpPayload<'_>) -> Result<Depacketized<Vp9Frame<'_>>, PayloadError> {
        let parsed = match packet.payload {
            [] => None,
            payload => Some(Vp9Descriptor::parse(payload)?),
        };
        let Some(gap) = self.state.gap(packet.sequence_number) else {
            return Ok(Depacketized::default());
        };
        let descriptor = parsed.as_ref().map(|(d, _)| d);
        let mut broke = gap && self.lost_needed_frames(packet.timestamp, descriptor);
        let mut dropped = 0;
        let mut completed = None;
        // A padding-only packet moves the sequence on and nothing else.
        if let Some((d, data)) = parsed {
            // A frame whose end never came: the timestamp moved on or
            // another frame began.
            if self
                .state
                .abandon_if(|c| c.timestamp != packet.timestamp || d.start_of_frame)
                .is_some()
            {
                dropped += 1;
                broke = true;
            }
            if d.start_of_frame {
                self.last_picture_id = d.picture_id;
            }
            let (cur, buf) = self.state.continue_or(|_| Partial {
                timestamp: packet.timestamp,
                first: d.start_of_frame.then(|| FirstPacket::of(&d)),
                broken: !d.start_of_frame,
            });
            cur.broken |= !cur.broken && !buf.extend(&[data]);
            if let Some(cur) = self.state.current.take_if(|_| d.end_of_frame) {
                let header = Vp9FrameHeader::parse(&self.state.buf.data);
                match (cur.first.filter(|_| !cur.broken), header) {
                    (Some(first), Ok(header)) => completed = Some((cur.timestamp, first, header)),
                    _ => {
                        dropped += 1;
                        broke = true;
                    }
                }
            }
        }
        Ok(Depacketized {
            keyframe_needed: self
                .state
                .keyframes
                .settle(broke, completed.map(|(_, _, h)| h.keyframe)),
            frames_dropped: dropped,
            frame: completed.map(|(timestamp, first, header)| Vp9Frame {
                data: &self.state.buf.data,
                timestamp,
                picture_id: first.picture_id,
                inter_picture_predicted: first.inter_picture_predicted,
                layer: first.layer,
                resolution: first.resolution,
                header,
            }),
        })
    }

    /// Packets are missing before one with `timestamp` and descriptor
    /// `next`; returns whether they may have held a frame later ones need.
    fn lost_needed_frames(&mut self, timestamp: u32, next: Option<&Vp9Descriptor<'_>>) -> bool {
        let starts = next.is_some_and(|d| d.start_of_frame);
        if let Some(cur) = self
            .state
            .current
            .as_mut()
            .filter(|c| c.timestamp == timestamp && !starts)
        {
            // The gap lies inside this frame, which is judged when dropped.
            cur.broken = true;
            return false;
        }
        let follows = next.is_some_and(|d| {
            let next_picture = d.picture_id.is_some() && d.picture_id == self.last_picture_id.map(Vp9PictureId::next);
            d.starts_keyframe() || (d.start_of_frame && next_picture)
        });
        !follows
    }
}
