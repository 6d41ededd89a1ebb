//! `VideoCodec::inspect`: keyframe starts and layers read from single
//! packets as an SFU sees them, for each codec, from hand-built payloads
//! and from what natter's own packetizers write; arbitrary bytes are an
//! error or an answer, never a panic.

// Binary literals are grouped by field, as the RFCs draw them.
#![allow(clippy::unusual_byte_groupings)]

mod support;

use natter_rtp::payload::*;
use proptest::prelude::*;
use support::{chunk_bytes, BitWriter};

fn info(codec: VideoCodec, payload: &[u8]) -> PacketInfo {
    codec.inspect(payload, None, None).unwrap()
}

fn layer(spatial_id: u8, temporal_id: u8) -> Option<Layer> {
    Some(Layer {
        spatial_id,
        temporal_id,
    })
}

#[test]
fn vp8_keyframe_start_and_temporal_layer() {
    // X, S, PID 0; T: TID 2; then a keyframe's payload header (P = 0).
    let key = [0b1001_0000, 0b0010_0000, 0b10_0_00000, 0x50, 0x01, 0x00];
    assert_eq!(
        info(VideoCodec::Vp8, &key),
        PacketInfo {
            starts_keyframe: true,
            layer: layer(0, 2)
        }
    );
    // The same with P = 1; then a packet without S.
    let inter = [0b1001_0000, 0b0010_0000, 0b01_0_00000, 0x51];
    assert_eq!(
        info(VideoCodec::Vp8, &inter),
        PacketInfo {
            starts_keyframe: false,
            layer: layer(0, 1)
        }
    );
    assert!(!info(VideoCodec::Vp8, &[0x00, 0x50]).starts_keyframe);
    // No T: no layer.
    assert_eq!(info(VideoCodec::Vp8, &[0x10, 0x50]).layer, None);
}

#[test]
fn vp9_keyframe_start_and_layers() {
    // B, P = 0, L: SID 0 TID 0 with TL0PICIDX.
    let base = [0b0010_1000, 0b000_0_000_0, 3, 0xAA];
    assert_eq!(
        info(VideoCodec::Vp9, &base),
        PacketInfo {
            starts_keyframe: true,
            layer: layer(0, 0)
        }
    );
    // SID 1 of the key picture is no keyframe start; neither is P = 1.
    let upper = [0b0010_1000, 0b000_0_001_1, 3, 0xAA];
    assert_eq!(
        info(VideoCodec::Vp9, &upper),
        PacketInfo {
            starts_keyframe: false,
            layer: layer(1, 0)
        }
    );
    let predicted = [0b0110_1000, 0b010_0_000_0, 3, 0xAA];
    assert_eq!(
        info(VideoCodec::Vp9, &predicted),
        PacketInfo {
            starts_keyframe: false,
            layer: layer(0, 2)
        }
    );
    // What the packetizer writes for a keyframe, first packet only.
    let frame = [0b10_0_0_0_0_1_0, 0x49, 0x83, 0x42, 0x00, 0, 15, 0, 15, 1, 2, 3];
    let chunks: Vec<Vec<u8>> = Vp9Packetizer::new(&frame, Vp9PictureId::Long(1), 12)
        .unwrap()
        .map(|c| chunk_bytes(&c))
        .collect();
    let starts: Vec<bool> = chunks
        .iter()
        .map(|c| info(VideoCodec::Vp9, c).starts_keyframe)
        .collect();
    assert_eq!(starts, [true, false]);
}

#[test]
fn h264_idr_and_sps_starts() {
    let single_idr = [0x65, 0x88, 0x84];
    let single_non_idr = [0x41, 0x9A];
    let stap_a_sps = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xCE];
    let fu_a_idr_start = [0x7C, 0x85, 0x88];
    let fu_a_idr_middle = [0x7C, 0x05, 0x88];
    for (payload, key) in [
        (&single_idr[..], true),
        (&single_non_idr, false),
        (&stap_a_sps, true),
        (&fu_a_idr_start, true),
        (&fu_a_idr_middle, false),
    ] {
        assert_eq!(
            info(VideoCodec::H264, payload),
            PacketInfo {
                starts_keyframe: key,
                layer: None
            },
            "{payload:02x?}"
        );
    }
    assert!(matches!(
        VideoCodec::H264.inspect(&[0x80], None, None),
        Err(PayloadError::H264ForbiddenBit(0x80))
    ));
}

#[test]
fn av1_from_the_payload() {
    // N = 1, one element: a sequence header.
    assert!(info(VideoCodec::Av1, &[0b0_0_01_1_000, 0x08, 0]).starts_keyframe);
    // N = 0 but a whole sequence header first: a keyframe start too.
    assert!(info(VideoCodec::Av1, &[0b0_0_01_0_000, 0x08, 0]).starts_keyframe);
    // A frame OBU with an extension (temporal 1, spatial 2).
    let frame = [0b0_0_01_0_000, 0b0_0110_1_0_0, 0b001_10_000, 0x10];
    assert_eq!(
        info(VideoCodec::Av1, &frame),
        PacketInfo {
            starts_keyframe: false,
            layer: layer(2, 1)
        }
    );
    // Z = 1: the first element is the middle of an OBU, not a header.
    let continued = [0b1_0_10_0_000, 1, 0b0_0001_1_0_0, 0b0_0110_1_0_0, 0b011_01_000];
    assert_eq!(
        info(VideoCodec::Av1, &continued),
        PacketInfo {
            starts_keyframe: false,
            layer: layer(1, 3)
        }
    );
    assert!(VideoCodec::Av1.inspect(&[0b1_0_00_1_000, 1], None, None).is_err());
}

#[test]
fn av1_from_the_dependency_descriptor() {
    // A structure with two templates, S0T0 and S0T1, one decode target.
    let mut w = BitWriter::default();
    w.put(0b11, 2).put(0, 6).put(7, 16); // start and end of frame, template 0, frame 7
    w.put(0b10000, 5).put(0, 6).put(0, 5); // structure attached; offset 0, one target
    w.put(1, 2).put(3, 2); // next_layer_idc: temporal + 1, then the end
    w.put(0b10, 2).put(0b11, 2); // DTIs: switch, required
    w.put(0, 1).put(1, 1).put(0, 4).put(0, 1); // fdiffs: none; 1
    w.ns(2, 0).put(0, 1); // no chains, no resolutions
    let structure = w.bytes();
    let key = DependencyDescriptor::parse(&structure).unwrap();
    let payload = [0b0_0_01_0_000, 0b0_0110_0_0_0, 0x10];
    let got = VideoCodec::Av1.inspect(&payload, Some(&key), None).unwrap();
    assert_eq!(
        got,
        PacketInfo {
            starts_keyframe: true,
            layer: layer(0, 0)
        }
    );
    // A later packet names template 1, found in the structure kept.
    let known = DependencyStructure::from(&key.structure.unwrap());
    let later = DependencyDescriptor::parse(&[0b1_1_000001, 0, 8]).unwrap();
    let got = VideoCodec::Av1.inspect(&payload, Some(&later), Some(&known)).unwrap();
    assert_eq!(
        got,
        PacketInfo {
            starts_keyframe: false,
            layer: layer(0, 1)
        }
    );
    // Without the structure the layer is unknown.
    assert_eq!(
        VideoCodec::Av1.inspect(&payload, Some(&later), None).unwrap().layer,
        None
    );
}

#[test]
fn padding_is_neither_keyframe_nor_layer() {
    for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
        assert_eq!(codec.inspect(&[], None, None), Ok(PacketInfo::default()));
    }
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(payload in prop::collection::vec(any::<u8>(), 0..64), dd in prop::collection::vec(any::<u8>(), 0..32)) {
        let descriptor = DependencyDescriptor::parse(&dd).ok();
        let known = descriptor.and_then(|d| d.structure).map(|s| DependencyStructure::from(&s));
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264, VideoCodec::Av1] {
            let _ = codec.inspect(&payload, descriptor.as_ref(), known.as_ref());
        }
    }
}
