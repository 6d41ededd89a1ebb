//! Receiving transceivers and their RTP streams: one stream, or one per
//! simulcast layer (RFC 8853), each named by its RID (RFC 8852), and
//! which of them a packet belongs to.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use natter_rtp::extension::{URI_MID, URI_REPAIRED_RTP_STREAM_ID, URI_RTP_STREAM_ID, URI_SSRC_AUDIO_LEVEL};
use natter_rtp::payload::{DependencyStructure, URI_DEPENDENCY_DESCRIPTOR};
use natter_rtp::{Mid, RepairedRtpStreamId, RtpPacket, RtpStreamId};

use super::super::stats::ReceiverStats;
use crate::jsep::{NegotiatedMedia, TransceiverId};
use crate::media::{Depacketizer, Format, NackGenerator, ReceiveStream, ReorderBuffer};

/// A receiving transceiver: what the exchange said, and its layers.
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) mid: String,
    /// Our payload types: format and clock rate.
    pub(super) formats: Vec<(u8, Format, u32)>,
    /// RTX payload type to the one it repairs (RFC 4588 §8.1).
    pub(super) rtx: Vec<(u8, u8)>,
    pub(super) nack: bool,
    mid_extension: Option<u8>,
    /// `RtpStreamId` and `RepairedRtpStreamId` (RFC 8852 §3.1, §3.2).
    pub(super) rid_extension: Option<u8>,
    pub(super) repaired_rid_extension: Option<u8>,
    /// What RTP mode reads for the application: the audio level
    /// (RFC 6464) and the dependency descriptor (AV1 RTP Appendix A).
    pub(super) audio_level_extension: Option<u8>,
    pub(super) dependency_descriptor_extension: Option<u8>,
    /// The peer's SSRCs from the description: media, then RTX.
    signaled: Vec<(u32, bool)>,
    /// One layer with no RID, or one per RID received with simulcast.
    pub(super) layers: Vec<Layer>,
}

/// One RTP stream of a receiver (RFC 8852 §3) with its repair stream.
#[derive(Debug)]
pub(super) struct Layer {
    pub(super) rid: Option<String>,
    /// The media SSRC and RTX SSRC seen so far.
    pub(super) ssrc: Option<u32>,
    pub(super) rtx_ssrc: Option<u32>,
    pub(super) stream: Option<Incoming>,
    pub(super) last_pli: Option<Instant>,
    pub(super) stats: ReceiverStats,
}

/// The longest a missing packet holds the ones after it back: enough for
/// a NACK and its retransmission on any path worth calling real-time.
const VIDEO_REORDER_WAIT: Duration = Duration::from_millis(150);
/// Audio is not repaired; only reordering is waited for.
const AUDIO_REORDER_WAIT: Duration = Duration::from_millis(30);
const REORDER_PACKETS: usize = 512;

/// The state of a layer's current source.
#[derive(Debug)]
pub(super) struct Incoming {
    pub(super) format: Format,
    pub(super) payload_type: u8,
    pub(super) stats: ReceiveStream,
    pub(super) nack: NackGenerator,
    /// What puts frames together; `None` in RTP mode, where packets go
    /// to the application as they come.
    pub(super) frames: Option<Assembly>,
    /// RTP mode: the latest template dependency structure (AV1 RTP
    /// A.8.3), which later descriptors' layers are read from.
    pub(super) structure: Option<DependencyStructure>,
}

/// Frame mode: packets put in order, then reassembled.
#[derive(Debug)]
pub(super) struct Assembly {
    pub(super) reorder: ReorderBuffer,
    pub(super) depacketizer: Depacketizer,
}

impl Incoming {
    /// The first packet of source `ssrc` came in `format` on payload
    /// type `payload_type`.
    pub(super) fn new(ssrc: u32, format: Format, payload_type: u8, clock_rate: u32, rtp_mode: bool) -> Self {
        let wait = if format.is_video() {
            VIDEO_REORDER_WAIT
        } else {
            AUDIO_REORDER_WAIT
        };
        Incoming {
            format,
            payload_type,
            stats: ReceiveStream::new(ssrc, clock_rate),
            nack: NackGenerator::default(),
            frames: (!rtp_mode).then(|| Assembly {
                reorder: ReorderBuffer::new(wait, REORDER_PACKETS),
                depacketizer: Depacketizer::new(format),
            }),
            structure: None,
        }
    }

    /// A codec change restarts the depacketizer; statistics go on.
    pub(super) fn set_format(&mut self, payload_type: u8, format: Format) {
        self.payload_type = payload_type;
        self.format = format;
        if let Some(frames) = self.frames.as_mut() {
            frames.depacketizer = Depacketizer::new(format);
        }
    }
}

/// Where a packet goes: a transceiver's layer, as media or as RTX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Route {
    pub(super) id: TransceiverId,
    pub(super) layer: usize,
    pub(super) rtx: bool,
}

/// Why a packet has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Unrouted {
    /// No receiving transceiver takes it.
    NoReceiver,
    /// A simulcast receiver's packet without a RID it receives.
    UnknownRid,
}

impl Layer {
    fn new(rid: Option<String>) -> Self {
        Layer {
            rid,
            ssrc: None,
            rtx_ssrc: None,
            stream: None,
            last_pli: None,
            stats: ReceiverStats::default(),
        }
    }

    /// The statistics of `getStats()`: the counters kept here, and the
    /// current source's.
    pub(super) fn snapshot(&self) -> ReceiverStats {
        let mut stats = self.stats.clone();
        stats.rid.clone_from(&self.rid);
        if let Some(s) = &self.stream {
            stats.ssrc = Some(s.stats.ssrc());
            stats.packets_received = s.stats.packets_received();
            stats.packets_lost = s.stats.packets_lost();
            stats.jitter = s.stats.jitter();
            stats.last_sender_report = s.stats.last_sender_report().map(|sr| (sr.ntp, sr.rtp));
        }
        stats
    }
}

pub(super) fn extension_id(media: &NegotiatedMedia, uri: &str) -> Option<u8> {
    media.extension_id(uri).and_then(|id| u8::try_from(id).ok())
}

impl Receiver {
    /// A receiver for section `media`, which we receive.
    pub(super) fn new(media: &NegotiatedMedia) -> Self {
        let formats = media
            .recv_codecs
            .iter()
            .filter_map(|c| Some((c.payload_type, Format::from_name(&c.name)?, c.clock_rate)))
            .collect();
        let rtx = media
            .recv_codecs
            .iter()
            .filter_map(|c| Some((c.rtx_payload_type?, c.payload_type)))
            .collect();
        let nack = media
            .recv_codecs
            .iter()
            .any(|c| c.feedback.iter().any(|f| f.kind == "nack" && f.parameter.is_none()));
        // RFC 4588 §8.3 / RFC 5576 §4.2: `FID media rtx`.
        let rtx_ssrcs: Vec<u32> = media
            .remote_ssrc_groups
            .iter()
            .filter(|g| g.semantics == natter_sdp::SsrcGroupSemantics::Fid)
            .filter_map(|g| g.ssrcs.get(1).copied())
            .collect();
        let signaled = media
            .remote_ssrcs
            .iter()
            .map(|&s| (s, rtx_ssrcs.contains(&s)))
            .collect();
        let layers = if media.recv_rids.is_empty() {
            vec![Layer::new(None)]
        } else {
            media
                .recv_rids
                .iter()
                .map(|rid| Layer::new(Some(rid.clone())))
                .collect()
        };
        Receiver {
            mid: media.mid.clone(),
            formats,
            rtx,
            nack,
            mid_extension: extension_id(media, URI_MID),
            rid_extension: extension_id(media, URI_RTP_STREAM_ID),
            repaired_rid_extension: extension_id(media, URI_REPAIRED_RTP_STREAM_ID),
            audio_level_extension: extension_id(media, URI_SSRC_AUDIO_LEVEL),
            dependency_descriptor_extension: extension_id(media, URI_DEPENDENCY_DESCRIPTOR),
            signaled,
            layers,
        }
    }

    /// What a later exchange says replaces what this one said; layers
    /// whose RID it keeps go on.
    pub(super) fn renew(&mut self, new: Receiver) {
        let mut old = std::mem::take(&mut self.layers);
        let layers = new
            .layers
            .into_iter()
            .map(|layer| match old.iter().position(|l| l.rid == layer.rid) {
                Some(i) => old.swap_remove(i),
                None => layer,
            })
            .collect();
        *self = Receiver { layers, ..new };
    }

    fn simulcast(&self) -> bool {
        self.layers.iter().any(|l| l.rid.is_some())
    }

    /// The layer of a new source of this receiver (RFC 8852 §3): the
    /// only one, or the one its RID names (`RepairedRtpStreamId` on RTX).
    fn layer_of(&self, packet: &RtpPacket<'_>, rtx: bool) -> Result<usize, Unrouted> {
        if !self.simulcast() {
            return Ok(0);
        }
        let rid = if rtx {
            self.repaired_rid_extension
                .and_then(|id| packet.extension_value::<RepairedRtpStreamId>(id)?.ok())
                .map(|r| r.0)
        } else {
            self.rid_extension
                .and_then(|id| packet.extension_value::<RtpStreamId>(id)?.ok())
                .map(|r| r.0)
        };
        let rid = rid.ok_or(Unrouted::UnknownRid)?;
        (self.layers.iter().position(|l| l.rid.as_deref() == Some(rid))).ok_or(Unrouted::UnknownRid)
    }
}

/// Which receiving transceiver and layer a packet is for, and whether it
/// is RTX (RFC 8843 §9.2, RFC 8852 §3). A known SSRC keeps its place; a
/// new one finds its transceiver by the signaled SSRCs, else by its
/// `sdes:mid`, else (without simulcast) by a payload type only one
/// section receives, and its layer by its RID; it replaces only its own
/// layer's source.
pub(super) fn route(
    receivers: &mut BTreeMap<TransceiverId, Receiver>,
    packet: &RtpPacket<'_>,
) -> Result<Route, Unrouted> {
    let (ssrc, pt) = (packet.ssrc(), packet.payload_type());
    for (&id, r) in receivers.iter() {
        for (layer, l) in r.layers.iter().enumerate() {
            if l.ssrc == Some(ssrc) || l.rtx_ssrc == Some(ssrc) {
                let rtx = l.ssrc != Some(ssrc);
                return Ok(Route { id, layer, rtx });
            }
        }
    }
    let signaled = receivers
        .iter()
        .find_map(|(&id, r)| r.signaled.iter().find(|(s, _)| *s == ssrc).map(|&(_, rtx)| (id, rtx)));
    let by_mid = || {
        receivers.iter().find_map(|(&id, r)| {
            let mid = packet.extension_value::<Mid>(r.mid_extension?)?.ok()?;
            (mid.0 == r.mid).then_some(id)
        })
    };
    let by_payload_type = || {
        let mut takers = receivers.iter().filter(|(_, r)| {
            !r.simulcast() && (r.formats.iter().any(|f| f.0 == pt) || r.rtx.iter().any(|f| f.0 == pt))
        });
        match (takers.next(), takers.next()) {
            (Some((&id, _)), None) => Some(id),
            _ => None,
        }
    };
    let (id, rtx) = match signaled {
        Some(found) => found,
        None => {
            let id = by_mid().or_else(by_payload_type).ok_or(Unrouted::NoReceiver)?;
            let rtx = receivers.get(&id).is_some_and(|r| r.rtx.iter().any(|f| f.0 == pt));
            (id, rtx)
        }
    };
    let receiver = receivers.get_mut(&id).ok_or(Unrouted::NoReceiver)?;
    let layer = receiver.layer_of(packet, rtx)?;
    let l = &mut receiver.layers[layer];
    if rtx {
        l.rtx_ssrc = Some(ssrc);
    } else {
        l.ssrc = Some(ssrc);
        l.stream = None;
    }
    Ok(Route { id, layer, rtx })
}
