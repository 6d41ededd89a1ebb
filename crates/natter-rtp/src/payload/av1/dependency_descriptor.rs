//! The Dependency Descriptor RTP header extension (AV1 RTP
//! Specification, Appendix A): what an SFM needs to forward a frame
//! without reading the payload. Negotiated as [`URI_DEPENDENCY_DESCRIPTOR`].
//!
//! Every descriptor carries the mandatory fields (A.8.2); the first
//! packet of a coded video sequence also carries the template
//! dependency structure, which later descriptors refer to by template
//! id. A receiver keeps the structure as a [`DependencyStructure`]
//! (a fixed-size copy of what it needs) to place later packets in their
//! layer. Custom per-frame fields (frame_dtis, frame_fdiffs,
//! frame_chains) are not read.

use crate::payload::bits::BitReader;
use crate::payload::inspect::Layer;
use crate::payload::PayloadError;

/// AV1 RTP A.7 (the extmap URI).
pub const URI_DEPENDENCY_DESCRIPTOR: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// A.8.2: frame_dependency_template_id has 6 bits, so at most 64 templates.
const MAX_TEMPLATES: usize = 64;
/// A.8.2: the mandatory fields take 3 bytes.
const MANDATORY_LEN: usize = 3;

fn error(reason: &'static str) -> PayloadError {
    PayloadError::DependencyDescriptor { reason }
}

/// A.8.3, Table A.1: how a frame relates to a decode target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeTargetIndication {
    /// `-`: not in the decode target.
    NotPresent,
    /// `D`: in it, and no later frame of it depends on this one.
    Discardable,
    /// `S`: a switch point into the decode target.
    Switch,
    /// `R`: required by the decode target.
    Required,
}

impl DecodeTargetIndication {
    fn from_bits(v: u32) -> Self {
        match v & 3 {
            0 => DecodeTargetIndication::NotPresent,
            1 => DecodeTargetIndication::Discardable,
            2 => DecodeTargetIndication::Switch,
            _ => DecodeTargetIndication::Required,
        }
    }
}

/// A.8.2: one Frame dependency template, read from the structure.
#[derive(Clone, Debug)]
pub struct FrameTemplate<'a> {
    pub layer: Layer,
    dtis: BitReader<'a>,
    fdiffs: BitReader<'a>,
    chains: BitReader<'a>,
    decode_targets: u8,
    chain_count: u8,
}

impl<'a> FrameTemplate<'a> {
    /// template_dti: one indication per decode target.
    pub fn decode_target_indications(&self) -> impl Iterator<Item = DecodeTargetIndication> + 'a {
        let mut r = self.dtis;
        // The structure was checked when parsed: every field is there.
        (0..self.decode_targets).map_while(move |_| r.bits(2).map(DecodeTargetIndication::from_bits))
    }

    /// TemplateFdiff: how many frames back each referenced frame is, 1..=16.
    pub fn frame_diffs(&self) -> impl Iterator<Item = u8> + 'a {
        let mut r = self.fdiffs;
        std::iter::from_fn(move || match r.flag()? {
            true => r.bits(4).map(|d| d as u8 + 1),
            false => None,
        })
    }

    /// template_chain_fdiff: for each chain, how many frames back its
    /// previous frame is (0: this frame starts the chain), 0..=15.
    pub fn chain_diffs(&self) -> impl Iterator<Item = u8> + 'a {
        let mut r = self.chains;
        (0..self.chain_count).map_while(move |_| r.bits(4).map(|d| d as u8))
    }
}

/// A.8.2 template_dependency_structure(), borrowed from the descriptor
/// that carries it and checked when parsed.
#[derive(Clone, Copy, Debug)]
pub struct TemplateStructure<'a> {
    value: &'a [u8],
    /// template_id_offset: the frame_dependency_template_id of template 0.
    pub template_id_offset: u8,
    /// DtCnt, 1..=32.
    pub decode_targets: u8,
    /// TemplateCnt, 1..=64.
    pub templates: u8,
    /// chain_cnt, 0..=DtCnt.
    pub chains: u8,
    /// MaxSpatialId.
    pub max_spatial_id: u8,
    /// Where each section starts, in bits from the start of the value.
    layers_at: usize,
    dtis_at: usize,
    fdiffs_at: usize,
    protected_by_at: usize,
    chain_fdiffs_at: usize,
    resolutions_at: Option<usize>,
}

impl<'a> TemplateStructure<'a> {
    /// Reads the structure at `r` and checks that every field is there.
    fn read(value: &'a [u8], r: &mut BitReader<'a>) -> Option<Result<Self, PayloadError>> {
        let template_id_offset = r.bits(6)? as u8;
        let decode_targets = r.bits(5)? as u8 + 1;
        let layers_at = r.position();
        let (mut templates, mut spatial) = (0usize, 0u8);
        loop {
            templates += 1;
            if templates > MAX_TEMPLATES {
                return Some(Err(error("more than 64 frame dependency templates")));
            }
            match r.bits(2)? {
                2 => spatial += 1,
                3 => break,
                _ => {}
            }
        }
        let dtis_at = r.position();
        r.skip(templates * usize::from(decode_targets) * 2)?;
        let fdiffs_at = r.position();
        for _ in 0..templates {
            while r.flag()? {
                r.skip(4)?;
            }
        }
        let chains = r.ns(u32::from(decode_targets) + 1)? as u8;
        let protected_by_at = r.position();
        if chains > 0 {
            for _ in 0..decode_targets {
                r.ns(u32::from(chains))?;
            }
        }
        let chain_fdiffs_at = r.position();
        r.skip(templates * usize::from(chains) * 4)?;
        let resolutions_at = if r.flag()? {
            let at = r.position();
            r.skip((usize::from(spatial) + 1) * 32)?;
            Some(at)
        } else {
            None
        };
        Some(Ok(TemplateStructure {
            value,
            template_id_offset,
            decode_targets,
            // At most 64, checked above.
            templates: templates as u8,
            chains,
            max_spatial_id: spatial,
            layers_at,
            dtis_at,
            fdiffs_at,
            protected_by_at,
            chain_fdiffs_at,
            resolutions_at,
        }))
    }

    /// The templates in order of their index (template id minus the offset).
    pub fn templates(&self) -> impl Iterator<Item = FrameTemplate<'a>> + 'a {
        let s = *self;
        let mut layers = BitReader::at(s.value, s.layers_at);
        let mut fdiffs = BitReader::at(s.value, s.fdiffs_at);
        let mut layer = Layer::default();
        (0..s.templates).map(move |i| {
            let i = usize::from(i);
            let template = FrameTemplate {
                layer,
                dtis: BitReader::at(s.value, s.dtis_at + i * usize::from(s.decode_targets) * 2),
                fdiffs,
                chains: BitReader::at(s.value, s.chain_fdiffs_at + i * usize::from(s.chains) * 4),
                decode_targets: s.decode_targets,
                chain_count: s.chains,
            };
            // A.8.2 template_layers(): next_layer_idc says where the next one is.
            match layers.bits(2) {
                Some(1) => layer.temporal_id += 1,
                Some(2) => {
                    layer = Layer {
                        spatial_id: layer.spatial_id + 1,
                        temporal_id: 0,
                    }
                }
                _ => {}
            }
            // Past this template's fdiffs, to the next one's.
            while fdiffs.flag() == Some(true) {
                fdiffs.skip(4);
            }
            template
        })
    }

    /// decode_target_protected_by: the chain protecting each decode
    /// target; empty when there are no chains.
    pub fn decode_target_protected_by(&self) -> impl Iterator<Item = u8> + 'a {
        let mut r = BitReader::at(self.value, self.protected_by_at);
        let (targets, chains) = (if self.chains > 0 { self.decode_targets } else { 0 }, self.chains);
        (0..targets).map_while(move |_| r.ns(u32::from(chains)).map(|c| c as u8))
    }

    /// render_resolutions(): the largest width and height of each
    /// spatial layer's frames, from spatial id 0; empty if not sent.
    pub fn resolutions(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        let count = self.resolutions_at.map_or(0, |_| usize::from(self.max_spatial_id) + 1);
        let mut r = BitReader::at(self.value, self.resolutions_at.unwrap_or(0));
        (0..count).map_while(move |_| Some((r.bits(16)? + 1, r.bits(16)? + 1)))
    }
}

/// What a receiver keeps of a template dependency structure to read
/// later descriptors: each template's layer, and the counts later
/// fields are sized by. Fixed size, copied without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DependencyStructure {
    pub template_id_offset: u8,
    pub templates: u8,
    pub decode_targets: u8,
    pub chains: u8,
    layers: [Layer; MAX_TEMPLATES],
}

impl DependencyStructure {
    /// The layer of frames using `template_id`, or `None` when it is
    /// not one of this structure's (A.8.3: a newer structure was lost).
    pub fn layer(&self, template_id: u8) -> Option<Layer> {
        let index = usize::from(template_id.wrapping_sub(self.template_id_offset) & 0x3F);
        self.layers[..usize::from(self.templates)].get(index).copied()
    }
}

impl From<&TemplateStructure<'_>> for DependencyStructure {
    fn from(s: &TemplateStructure<'_>) -> Self {
        let mut layers = [Layer::default(); MAX_TEMPLATES];
        for (slot, t) in layers.iter_mut().zip(s.templates()) {
            *slot = t.layer;
        }
        DependencyStructure {
            template_id_offset: s.template_id_offset,
            templates: s.templates,
            decode_targets: s.decode_targets,
            chains: s.chains,
            layers,
        }
    }
}

/// A.8.2 dependency_descriptor(): one packet's descriptor, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct DependencyDescriptor<'a> {
    /// The packet's payload starts a frame.
    pub start_of_frame: bool,
    /// The packet ends a frame.
    pub end_of_frame: bool,
    /// frame_dependency_template_id, 0..=63.
    pub template_id: u8,
    pub frame_number: u16,
    /// The template dependency structure, on the first packet of a coded
    /// video sequence (A.8.3).
    pub structure: Option<TemplateStructure<'a>>,
    pub custom_dtis: bool,
    pub custom_fdiffs: bool,
    pub custom_chains: bool,
    value: &'a [u8],
    /// Where active_decode_targets_bitmask is, if present.
    active_decode_targets_at: Option<usize>,
}

impl<'a> DependencyDescriptor<'a> {
    /// Reads an extension element's value: the mandatory fields, the
    /// extended flags and, when attached, the whole template structure.
    pub fn parse(value: &'a [u8]) -> Result<Self, PayloadError> {
        if value.len() < MANDATORY_LEN {
            return Err(error("shorter than the 3 bytes of mandatory fields"));
        }
        let mut d = DependencyDescriptor {
            start_of_frame: value[0] & 0x80 != 0,
            end_of_frame: value[0] & 0x40 != 0,
            template_id: value[0] & 0x3F,
            frame_number: u16::from_be_bytes([value[1], value[2]]),
            structure: None,
            custom_dtis: false,
            custom_fdiffs: false,
            custom_chains: false,
            value,
            active_decode_targets_at: None,
        };
        if value.len() == MANDATORY_LEN {
            return Ok(d);
        }
        let mut r = BitReader::at(value, MANDATORY_LEN * 8);
        let truncated = || error("ends inside the extended fields or the template dependency structure");
        let flags = r.bits(5).ok_or_else(truncated)?;
        d.custom_dtis = flags & 0x04 != 0;
        d.custom_fdiffs = flags & 0x02 != 0;
        d.custom_chains = flags & 0x01 != 0;
        if flags & 0x10 != 0 {
            d.structure = Some(TemplateStructure::read(value, &mut r).ok_or_else(truncated)??);
        }
        if flags & 0x08 != 0 {
            d.active_decode_targets_at = Some(r.position());
            // Sized by the structure; check it now when it is here.
            if let Some(s) = d.structure {
                r.skip(usize::from(s.decode_targets)).ok_or_else(truncated)?;
            }
        }
        Ok(d)
    }

    /// The frame's spatial and temporal layer, from the structure this
    /// descriptor carries or else `known`, the one a receiver kept.
    pub fn layer(&self, known: Option<&DependencyStructure>) -> Option<Layer> {
        match &self.structure {
            Some(s) => DependencyStructure::from(s).layer(self.template_id),
            None => known?.layer(self.template_id),
        }
    }

    /// Whether this packet starts a key frame: it begins a frame and
    /// carries the structure, as the first packet of a coded video
    /// sequence must (A.8.3).
    pub fn starts_keyframe(&self) -> bool {
        self.start_of_frame && self.structure.is_some()
    }

    /// active_decode_targets_bitmask: bit i for decode target i. With a
    /// structure attached and no bitmask, every target is active; with
    /// neither, `None` (the last bitmask still holds). Sized by the
    /// attached or `known` structure.
    pub fn active_decode_targets(&self, known: Option<&DependencyStructure>) -> Result<Option<u32>, PayloadError> {
        let targets = match (&self.structure, known) {
            (Some(s), _) => s.decode_targets,
            (None, Some(k)) => k.decode_targets,
            (None, None) if self.active_decode_targets_at.is_none() => return Ok(None),
            (None, None) => return Err(error("active decode targets need the structure of an earlier packet")),
        };
        match self.active_decode_targets_at {
            Some(at) => BitReader::at(self.value, at)
                .bits(u32::from(targets))
                .map(Some)
                .ok_or(error("ends inside active_decode_targets_bitmask")),
            // DtCnt is at most 32.
            None if self.structure.is_some() => Ok(Some(((1u64 << targets) - 1) as u32)),
            None => Ok(None),
        }
    }
}
