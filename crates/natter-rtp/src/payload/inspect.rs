//! Reading a video packet for forwarding, without reassembling frames
//! (what an SFU does with every packet): does it start a keyframe, a
//! point where a receiver can start decoding or switch layers, and to
//! which spatial and temporal layer does it belong. Each codec's answer
//! comes from the parsers its depacketizer uses, over the payload as
//! received; nothing is copied or allocated.

use super::av1::{Av1Payload, DependencyDescriptor, DependencyStructure, ObuHeader, ObuType};
use super::h264::{Received, NAL_IDR, NAL_SPS};
use super::vp8::Vp8Descriptor;
use super::vp9::Vp9Descriptor;
use super::PayloadError;

/// The video payload formats a packet can be inspected in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// RFC 7741.
    Vp8,
    /// RFC 9628.
    Vp9,
    /// RFC 6184.
    H264,
    /// AV1 RTP Specification.
    Av1,
}

/// A spatial and temporal layer, 0 being the base of each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layer {
    pub spatial_id: u8,
    pub temporal_id: u8,
}

/// What a packet says about its place in the stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PacketInfo {
    /// The packet is the first of a keyframe.
    pub starts_keyframe: bool,
    /// Its layer, when the payload (or dependency descriptor) names one.
    pub layer: Option<Layer>,
}

impl VideoCodec {
    /// Inspects one RTP payload (without padding).
    ///
    /// - VP8 (RFC 7741 §4.2, §4.3): a keyframe starts with S = 1, PID 0
    ///   and the P bit of the VP8 payload header clear; TID names the
    ///   temporal layer (spatial layer 0).
    /// - VP9 (RFC 9628 §4.2): B = 1 and P = 0 in spatial layer 0; the
    ///   layer indices give SID and TID.
    /// - H.264 (RFC 6184 §5): the first NAL unit the packet starts (a
    ///   single NAL unit, the first unit of a STAP-A, or an FU-A with S)
    ///   is an IDR slice or an SPS. H.264 names no layers.
    /// - AV1: a dependency descriptor, when the packet has one, says
    ///   both (the structure attached to a frame's first packet marks a
    ///   keyframe, A.8.3; the layer comes from its template, looked up in
    ///   the attached structure or in `structure`, kept from an earlier
    ///   packet). Otherwise the payload: N = 1, or a whole sequence
    ///   header first, starts a keyframe (AV1 RTP §4.4); the layer is
    ///   that of the OBU extension headers (§6).
    ///
    /// An empty payload (padding) is no keyframe and has no layer.
    pub fn inspect(
        self,
        payload: &[u8],
        descriptor: Option<&DependencyDescriptor<'_>>,
        structure: Option<&DependencyStructure>,
    ) -> Result<PacketInfo, PayloadError> {
        if payload.is_empty() {
            return Ok(PacketInfo::default());
        }
        Ok(match self {
            VideoCodec::Vp8 => {
                let (d, data) = Vp8Descriptor::parse(payload)?;
                PacketInfo {
                    // RFC 7741 §4.3: P, the first bit of the payload header, is 0 on keyframes.
                    starts_keyframe: d.start_of_partition && d.partition_index == 0 && data[0] & 1 == 0,
                    layer: d.picture.temporal_layer.map(|t| Layer {
                        spatial_id: 0,
                        temporal_id: t.tid,
                    }),
                }
            }
            VideoCodec::Vp9 => {
                let (d, _) = Vp9Descriptor::parse(payload)?;
                PacketInfo {
                    starts_keyframe: d.starts_keyframe(),
                    layer: d.layer.map(|l| Layer {
                        spatial_id: l.spatial_id,
                        temporal_id: l.temporal_id,
                    }),
                }
            }
            VideoCodec::H264 => PacketInfo {
                starts_keyframe: Received::parse(payload[0], payload)?
                    .first_nal()
                    .is_some_and(|(header, _)| matches!(header & 0x1F, NAL_IDR | NAL_SPS)),
                layer: None,
            },
            VideoCodec::Av1 => {
                let p = Av1Payload::parse(payload)?;
                let from_payload = av1_packet_info(&p);
                match descriptor {
                    Some(d) => PacketInfo {
                        starts_keyframe: d.starts_keyframe() || from_payload.starts_keyframe,
                        layer: d.layer(structure).or(from_payload.layer),
                    },
                    None => from_payload,
                }
            }
        })
    }
}

/// AV1 RTP §4.4, §6: what the aggregation header and the OBU headers of
/// the elements that start an OBU say.
fn av1_packet_info(p: &Av1Payload<'_>) -> PacketInfo {
    let skip = usize::from(p.header.continues_fragment);
    let mut headers = p
        .elements()
        .skip(skip)
        .filter_map(|e| ObuHeader::parse(e, 0).ok().map(|(h, _)| h));
    let first = headers.clone().next();
    PacketInfo {
        starts_keyframe: p.header.new_coded_video_sequence
            || (skip == 0 && first.is_some_and(|h| h.obu_type == ObuType::SequenceHeader)),
        layer: headers.find_map(|h| h.extension).map(|e| Layer {
            spatial_id: e.spatial_id,
            temporal_id: e.temporal_id,
        }),
    }
}
