//! A publication: one track a participant publishes into a room (its
//! microphone, camera or screen), received once and forwarded to each
//! subscriber. A video publication may carry simulcast layers (RFC
//! 8853), each an RTP stream named by its RID (RFC 8851 §4, RFC 8852
//! §3.1 `RtpStreamId`) with its own SSRC and RTX SSRC (RFC 4588), lowest
//! first.
//!
//! The publication owns what every subscriber shares: the layers'
//! measured bitrates, the keyframe-request aggregation, the packet
//! caches that answer NACKs, and dynacast (a layer above every layer
//! anyone receives is paused at the publisher).

use std::time::{Duration, Instant};

use crate::bitrate::{min_bitrate_bps, BitrateMeter, DEFAULT_WINDOW, LAYER_STEP};
use crate::cache::PacketCache;
use crate::keyframe::KeyframeAggregator;
use crate::layer::LayerInfo;
use crate::limit::TokenBucket;
use crate::participant::ParticipantId;
use crate::subscription::Subscription;

/// Names a publication; the room assigns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicationId(pub u32);

/// What a publication carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Microphone,
    Camera,
    ScreenShare,
}

impl Source {
    pub fn is_audio(self) -> bool {
        self == Source::Microphone
    }
}

/// At most this many layers per publication (three simulcast layers
/// are what browsers send; RFC 8853 sets no limit).
pub const MAX_LAYERS: usize = 4;

/// One layer as signaled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSpec {
    /// RFC 8851 §4 rid; `None` for a publication without simulcast.
    pub rid: Option<String>,
    /// The SSRC when signaled (RFC 8852: learned from the first packet
    /// carrying the RID otherwise).
    pub ssrc: Option<u32>,
    /// The RTX SSRC (RFC 4588 §8.6), when signaled.
    pub rtx_ssrc: Option<u32>,
    /// Encoded frame size in pixels (0 for audio).
    pub width: u16,
    pub height: u16,
}

/// A publication as signaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicationSpec {
    pub source: Source,
    /// RTP clock rate (90,000 for video, RFC 3551 §5; 48,000 for Opus).
    pub clock_rate: u32,
    /// VP8 (RFC 7741): its descriptor is rewritten per subscriber.
    pub vp8: bool,
    /// Lowest first; one for audio and for video without simulcast.
    pub layers: Vec<LayerSpec>,
}

#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub(crate) rid: Option<Box<str>>,
    pub(crate) ssrc: Option<u32>,
    pub(crate) rtx_ssrc: Option<u32>,
    pub(crate) width: u16,
    pub(crate) height: u16,
    /// Video only.
    pub(crate) cache: Option<PacketCache>,
    /// Dynacast: the publisher was told to stop sending it.
    pub(crate) paused: bool,
    /// The last rate measured over a full window while it was sent (not
    /// while resuming): a paused layer is still offered to the selectors
    /// at this rate, so that wanting it resumes it.
    pub(crate) last_bitrate_bps: u64,
    pub(crate) unwanted_since: Option<Instant>,
    /// When dynacast last resumed it: until the publisher's packets
    /// are measured again, it is offered at its last rate.
    pub(crate) resumed_at: Option<Instant>,
}

/// How long a resumed layer is offered at its last rate while its
/// packets have not been measured yet (a round trip, the encoder's
/// restart, the meter's first bucket).
pub const RESUME_GRACE: Duration = Duration::from_secs(2);

/// One publication of a room.
///
/// Getters only; the [`crate::room::Room`] drives it.
#[derive(Clone, Debug)]
pub struct Publication {
    pub(crate) id: PublicationId,
    pub(crate) publisher: ParticipantId,
    pub(crate) source: Source,
    pub(crate) clock_rate: u32,
    pub(crate) vp8: bool,
    pub(crate) layers: Box<[Layer]>,
    pub(crate) meter: BitrateMeter,
    pub(crate) keyframes: KeyframeAggregator,
    pub(crate) subscriptions: Vec<Subscription>,
    /// NACKs the room sends the publisher for packets it lacks.
    pub(crate) upstream_nacks: TokenBucket,
    /// The last few upstream NACKs (layer, extended sequence number),
    /// so that many subscribers missing one packet ask once.
    pub(crate) recent_nacks: [Option<(u8, u64)>; RECENT_NACKS],
    pub(crate) recent_next: usize,
}

pub(crate) const RECENT_NACKS: usize = 32;

/// Why a publication spec was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("a publication has 1 to {MAX_LAYERS} layers, not {0}")]
    LayerCount(usize),
    /// RFC 8851 §10: rid-id = 1*255(alpha-numeric / "-" / "_").
    #[error("rid {0:?} is not an RFC 8851 rid-id")]
    BadRid(String),
    #[error("rid {0:?} names two layers")]
    DuplicateRid(String),
    #[error("a simulcast publication names every layer by rid")]
    MissingRid,
    #[error("SSRC {0:#010x} names two streams")]
    DuplicateSsrc(u32),
}

/// RFC 8851 §10's rid-id grammar.
fn valid_rid(rid: &str) -> bool {
    (1..=255).contains(&rid.len()) && rid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PublicationSpec {
    /// A microphone: one Opus stream (48 kHz clock, RFC 7587 §4.1) on
    /// `ssrc`, when signaled.
    pub fn microphone(ssrc: Option<u32>) -> Self {
        Self {
            source: Source::Microphone,
            clock_rate: 48_000,
            vp8: false,
            layers: vec![LayerSpec {
                ssrc,
                ..LayerSpec::default()
            }],
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        let layers = &self.layers;
        if layers.is_empty() || layers.len() > MAX_LAYERS {
            return Err(SpecError::LayerCount(layers.len()));
        }
        for (i, layer) in layers.iter().enumerate() {
            match &layer.rid {
                Some(rid) if !valid_rid(rid) => return Err(SpecError::BadRid(rid.clone())),
                Some(rid) if layers[..i].iter().any(|l| l.rid.as_ref() == Some(rid)) => {
                    return Err(SpecError::DuplicateRid(rid.clone()))
                }
                None if layers.len() > 1 => return Err(SpecError::MissingRid),
                _ => {}
            }
        }
        let ssrcs = || layers.iter().flat_map(|l| l.ssrc.into_iter().chain(l.rtx_ssrc));
        for (i, ssrc) in ssrcs().enumerate() {
            if ssrcs().take(i).any(|earlier| earlier == ssrc) {
                return Err(SpecError::DuplicateSsrc(ssrc));
            }
        }
        Ok(())
    }
}

impl Publication {
    pub(crate) fn new(
        id: PublicationId,
        publisher: ParticipantId,
        spec: &PublicationSpec,
        cache_packets: usize,
        keyframes: KeyframeAggregator,
        upstream_nacks: TokenBucket,
        now: Instant,
    ) -> Self {
        let video = !spec.source.is_audio();
        let layers = spec
            .layers
            .iter()
            .map(|layer| Layer {
                rid: layer.rid.as_deref().map(Box::from),
                ssrc: layer.ssrc,
                rtx_ssrc: layer.rtx_ssrc,
                width: layer.width,
                height: layer.height,
                cache: (video && cache_packets > 0).then(|| PacketCache::new(cache_packets)),
                paused: false,
                last_bitrate_bps: 0,
                unwanted_since: None,
                resumed_at: None,
            })
            .collect::<Box<[_]>>();
        Self {
            id,
            publisher,
            source: spec.source,
            clock_rate: spec.clock_rate,
            vp8: spec.vp8,
            meter: BitrateMeter::new(layers.len(), DEFAULT_WINDOW, now),
            layers,
            keyframes,
            subscriptions: Vec::new(),
            upstream_nacks,
            recent_nacks: [None; RECENT_NACKS],
            recent_next: 0,
        }
    }

    pub fn id(&self) -> PublicationId {
        self.id
    }

    pub fn publisher(&self) -> ParticipantId {
        self.publisher
    }

    pub fn source(&self) -> Source {
        self.source
    }

    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }

    /// Layer `layer`'s RID (RFC 8851), to name it to the publisher.
    pub fn rid(&self, layer: u8) -> Option<&str> {
        self.layers.get(usize::from(layer))?.rid.as_deref()
    }

    /// Layer `layer`'s SSRC, signaled or learned.
    pub fn ssrc(&self, layer: u8) -> Option<u32> {
        self.layers.get(usize::from(layer))?.ssrc
    }

    /// Whether dynacast paused layer `layer`.
    pub fn paused(&self, layer: u8) -> bool {
        self.layers.get(usize::from(layer)).is_some_and(|l| l.paused)
    }

    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// The layer a packet on `ssrc` (or, for a stream not yet seen,
    /// carrying `rid`, RFC 8852 §3.3) belongs to, and whether it came on
    /// the RTX SSRC. Learns the SSRC of a layer found by RID.
    pub(crate) fn route(&mut self, ssrc: u32, rid: Option<&str>) -> Option<(u8, bool)> {
        for (index, layer) in self.layers.iter().enumerate() {
            // At most MAX_LAYERS layers.
            if layer.ssrc == Some(ssrc) {
                return Some((index as u8, false));
            }
            if layer.rtx_ssrc == Some(ssrc) {
                return Some((index as u8, true));
            }
        }
        let rid = rid?;
        let (index, layer) = self
            .layers
            .iter_mut()
            .enumerate()
            .find(|(_, layer)| layer.ssrc.is_none() && layer.rid.as_deref() == Some(rid))?;
        layer.ssrc = Some(ssrc);
        Some((index as u8, false))
    }

    /// Takes a layer's frame size from the first packet of one of its
    /// VP8 keyframes (RFC 6386 §9.1), so that a publisher whose sizes
    /// were not signaled (browsers send none) is capped by tiles. A
    /// header that does not parse, or a size of 0, leaves the size known.
    pub(crate) fn learn_size(&mut self, layer: u8, payload: &[u8]) {
        let Some(layer) = self.layers.get_mut(usize::from(layer)) else {
            return;
        };
        if let Ok(Some(size)) = crate::vp8::keyframe_size(payload) {
            if size.width > 0 && size.height > 0 {
                layer.width = size.width;
                layer.height = size.height;
            }
        }
    }

    /// The layers as the selectors see them: a paused layer at its last
    /// settled rate, so a subscriber can still want it; a layer not
    /// measured over a full window yet (starting, or resumed) at no less
    /// than what its size costs ([`min_bitrate_bps`]; twice the layer
    /// below when its size is not known), so that a rate read from its
    /// first packets does not make it look affordable; and no layer below
    /// the one under it. A layer never measured is not offered (0).
    pub(crate) fn layer_infos(&mut self, now: Instant) -> [LayerInfo; MAX_LAYERS] {
        let mut infos = [LayerInfo::default(); MAX_LAYERS];
        let full_window = self.meter.full_window();
        let mut below = 0u64;
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let measured = self.meter.rate(now, index as u8);
            let resuming = (layer.resumed_at).is_some_and(|at| now.saturating_duration_since(at) < RESUME_GRACE);
            let settled = measured.over >= full_window && !resuming;
            if settled && measured.bps > 0 && !layer.paused {
                layer.last_bitrate_bps = measured.bps;
            }
            let known = if layer.paused {
                layer.last_bitrate_bps
            } else if resuming {
                measured.bps.max(layer.last_bitrate_bps)
            } else {
                measured.bps
            };
            let offered = if known == 0 || layer.paused || settled {
                known
            } else if layer.width == 0 || layer.height == 0 {
                known.max(below.saturating_mul(LAYER_STEP)).max(min_bitrate_bps(0, 0))
            } else {
                known.max(min_bitrate_bps(layer.width, layer.height))
            };
            let offered = if offered == 0 { 0 } else { offered.max(below) };
            below = below.max(offered);
            infos[index] = LayerInfo {
                bitrate_bps: offered,
                width: layer.width,
                height: layer.height,
            };
        }
        infos
    }

    /// Whether an upstream NACK for this packet went out lately.
    pub(crate) fn upstream_nack_recent(&self, layer: u8, sequence: u64) -> bool {
        self.recent_nacks.contains(&Some((layer, sequence)))
    }

    /// An upstream NACK for this packet went out.
    pub(crate) fn note_upstream_nack(&mut self, layer: u8, sequence: u64) {
        self.recent_nacks[self.recent_next] = Some((layer, sequence));
        self.recent_next = (self.recent_next + 1) % RECENT_NACKS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rids: &[Option<&str>]) -> PublicationSpec {
        PublicationSpec {
            source: Source::Camera,
            clock_rate: 90_000,
            vp8: true,
            layers: rids
                .iter()
                .map(|rid| LayerSpec {
                    rid: rid.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn specs_are_checked() {
        assert_eq!(spec(&[Some("q"), Some("h"), Some("f")]).validate(), Ok(()));
        assert_eq!(spec(&[None]).validate(), Ok(()));
        assert_eq!(spec(&[]).validate(), Err(SpecError::LayerCount(0)));
        assert_eq!(spec(&[Some("a"), None]).validate(), Err(SpecError::MissingRid));
        assert_eq!(
            spec(&[Some("a"), Some("a")]).validate(),
            Err(SpecError::DuplicateRid("a".into()))
        );
        assert_eq!(spec(&[Some("a b")]).validate(), Err(SpecError::BadRid("a b".into())));
        let mut twice = spec(&[Some("a"), Some("b")]);
        twice.layers[0].ssrc = Some(7);
        twice.layers[1].rtx_ssrc = Some(7);
        assert_eq!(twice.validate(), Err(SpecError::DuplicateSsrc(7)));
    }
}
