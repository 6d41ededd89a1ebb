//! VP9 over RTP (RFC 9628): descriptor layouts written from the field
//! definitions of §4.2 and §4.2.1, uncompressed headers from VP9
//! Bitstream Specification §6.2, the packetizer's layout, reassembly
//! with loss, and properties: round trips for random frames and payload
//! budgets, one lost packet losing exactly its frame, and arbitrary
//! input never panicking.

// Binary literals are grouped by field, as RFC 9628 draws them.
#![allow(clippy::unusual_byte_groupings)]

mod support;

use natter_rtp::payload::*;
use proptest::prelude::*;
use support::{chunk_bytes, number, BitWriter, Packet, Received};

// ---------------------------------------------------------------- frames

/// The uncompressed header of a keyframe (VP9 §6.2) of `profile` 0 or
/// 2 (8 or 10 bits, BT.709 studio swing, 4:2:0), then `body`.
fn keyframe(profile: u8, width: u16, height: u16, body: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(2, 2)
        .put(u64::from(profile & 1), 1)
        .put(u64::from(profile >> 1), 1);
    w.put(0, 1).put(0, 1).put(1, 1).put(0, 1); // show_existing, KEY_FRAME, show_frame, error_resilient
    w.put(0x49_83_42, 24);
    if profile >= 2 {
        w.put(0, 1); // ten_or_twelve_bit: 10
    }
    w.put(2, 3).put(0, 1); // color_space BT.709, studio swing
    w.put(u64::from(width - 1), 16).put(u64::from(height - 1), 16);
    let mut frame = w.bytes();
    frame.extend_from_slice(body);
    frame
}

/// The uncompressed header of a shown profile 0 inter frame, then `body`.
fn interframe(body: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(2, 2).put(0, 2).put(0, 1).put(1, 1).put(1, 1).put(0, 1).put(0, 2);
    let mut frame = w.bytes();
    frame.extend_from_slice(body);
    frame
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn chunks(frame: &[u8], picture_id: u16, max: usize) -> Vec<PayloadChunk<'_>> {
    Vp9Packetizer::new(frame, Vp9PictureId::Long(picture_id), max)
        .unwrap()
        .collect()
}

fn receive(d: &mut Vp9Depacketizer, packets: &[Packet]) -> Received {
    Received::from_stream(packets, |p| {
        let out = d.push(p).unwrap();
        let frame = out.frame.map(|f| (f.data.to_vec(), f.header.keyframe));
        (out.frames_dropped, out.keyframe_needed, frame)
    })
}

// ----------------------------------------------------------- descriptor

#[test]
fn descriptor_minimal_layout() {
    // B and E set, nothing else: one packet holding a whole frame.
    let (d, data) = Vp9Descriptor::parse(&[0x0C, 0xAA]).unwrap();
    assert!(d.start_of_frame && d.end_of_frame);
    assert!(!d.inter_picture_predicted && !d.flexible_mode && !d.not_upper_layer_reference);
    assert_eq!((d.picture_id, d.layer, d.scalability_structure), (None, None, None));
    assert_eq!(data, [0xAA]);
    let mut buf = [0u8; 1];
    assert_eq!(d.encode(&mut buf), Ok(1));
    assert_eq!(buf, [0x0C]);
}

/// Non-flexible mode with every optional field: I with M (15 bits), L
/// with TL0PICIDX, V with two layers' resolutions and a two-picture group.
fn full_non_flexible() -> Vec<u8> {
    vec![
        0b1010_1011, // I P=0 L F=0 B=1 E=0 V=1 Z=1
        0x80 | 0x12,
        0x34,          // M=1, picture ID 0x1234
        0b010_1_001_1, // TID 2, U, SID 1, D
        0x77,          // TL0PICIDX
        0b001_1_1_000, // N_S = 1 (two layers), Y, G
        0x01,
        0x40,
        0x00,
        0xB4, // 320x180
        0x02,
        0x80,
        0x01,
        0x68, // 640x360
        2,    // N_G
        0b000_0_01_00,
        1, // T 0, R 1: P_DIFF 1
        0b001_1_10_00,
        1,
        2,    // T 1, U, R 2: P_DIFFs 1 and 2
        0xAB, // VP9 data
    ]
}

#[test]
fn descriptor_non_flexible_with_every_field() {
    let bytes = full_non_flexible();
    let (d, data) = Vp9Descriptor::parse(&bytes).unwrap();
    assert_eq!(data, [0xAB]);
    assert_eq!(d.picture_id, Some(Vp9PictureId::Long(0x1234)));
    assert!(d.start_of_frame && !d.end_of_frame && d.not_upper_layer_reference && !d.inter_picture_predicted);
    assert_eq!(
        d.layer,
        Some(Vp9LayerIndices {
            temporal_id: 2,
            switching_up: true,
            spatial_id: 1,
            inter_layer_dependency: true,
            tl0_pic_idx: Some(0x77),
        })
    );
    let ss = d.scalability_structure.unwrap();
    assert_eq!(ss.spatial_layers(), 2);
    assert_eq!(ss.resolutions().collect::<Vec<_>>(), [(320, 180), (640, 360)]);
    assert_eq!(ss.resolution(1), Some((640, 360)));
    assert_eq!(ss.resolution(2), None);
    let group: Vec<_> = ss.picture_group().collect();
    assert_eq!(group.len(), 2);
    assert_eq!((group[0].temporal_id, group[0].switching_up), (0, false));
    assert_eq!(group[0].references.as_slice(), [1]);
    assert_eq!((group[1].temporal_id, group[1].switching_up), (1, true));
    assert_eq!(group[1].references.as_slice(), [1, 2]);
    // Keyframe start? B and P = 0, but SID 1: not the base layer.
    assert!(!d.starts_keyframe());

    let mut out = vec![0u8; d.encoded_len()];
    assert_eq!(d.encode(&mut out), Ok(bytes.len() - 1));
    assert_eq!(out, bytes[..bytes.len() - 1]);
}

#[test]
fn descriptor_flexible_with_reference_indices() {
    // I (7-bit ID 5), P, L, F, E; SID 0 TID 1, no TL0PICIDX; P_DIFFs 1 and 3.
    let bytes = [0b1111_0100, 0x05, 0b001_0_000_0, 1 << 1 | 1, 3 << 1, 0xCD];
    let (d, data) = Vp9Descriptor::parse(&bytes).unwrap();
    assert_eq!(data, [0xCD]);
    assert_eq!(d.picture_id, Some(Vp9PictureId::Short(5)));
    assert!(d.flexible_mode && d.inter_picture_predicted && d.end_of_frame && !d.start_of_frame);
    assert_eq!(d.layer.unwrap().tl0_pic_idx, None);
    assert_eq!(d.layer.unwrap().temporal_id, 1);
    assert_eq!(d.references.as_slice(), [1, 3]);
    let mut out = [0u8; 5];
    assert_eq!(d.encode(&mut out), Ok(5));
    assert_eq!(out, bytes[..5]);
}

#[test]
fn scalability_structure_without_resolutions_or_group() {
    let (ss, n) = Vp9ScalabilityStructure::parse(&[0b010_0_0_000, 0xFF]).unwrap();
    assert_eq!(n, 1);
    assert_eq!(ss.spatial_layers(), 3);
    assert_eq!(ss.resolutions().count(), 0);
    assert_eq!(ss.picture_group().count(), 0);
    assert_eq!(ss.as_bytes(), [0b010_0_0_000]);
}

#[test]
fn descriptor_truncations_and_bad_fields_are_typed_errors() {
    let full = full_non_flexible();
    // Every cut inside the descriptor names a field; none panics.
    for len in 0..full.len() - 1 {
        let err = Vp9Descriptor::parse(&full[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                PayloadError::Vp9DescriptorTruncated { .. } | PayloadError::Vp9NoData { .. }
            ),
            "{len}: {err}"
        );
    }
    assert_eq!(Vp9Descriptor::parse(&[0x0C]), Err(PayloadError::Vp9NoData { len: 1 }));
    // RFC 9628 §4.2: at most three P_DIFFs; N on the third asks for a fourth.
    assert_eq!(
        Vp9Descriptor::parse(&[0b1101_1000, 0x01, 3, 3, 3, 3, 0]),
        Err(PayloadError::Vp9Descriptor {
            reason: "more than three reference indices"
        })
    );
}

#[test]
fn descriptor_encode_refuses_what_the_format_cannot_say() {
    let invalid = |d: Vp9Descriptor<'_>| matches!(d.encode(&mut [0u8; 32]), Err(PayloadError::InvalidInput { .. }));
    let layer = Vp9LayerIndices {
        temporal_id: 0,
        switching_up: false,
        spatial_id: 0,
        inter_layer_dependency: false,
        tl0_pic_idx: None,
    };
    assert!(invalid(Vp9Descriptor {
        picture_id: Some(Vp9PictureId::Short(128)),
        ..Default::default()
    }));
    assert!(invalid(Vp9Descriptor {
        picture_id: Some(Vp9PictureId::Long(0x8000)),
        ..Default::default()
    }));
    assert!(
        invalid(Vp9Descriptor {
            flexible_mode: true,
            ..Default::default()
        }),
        "flexible needs a picture ID"
    );
    // Non-flexible layer indices need TL0PICIDX; flexible ones have none.
    assert!(invalid(Vp9Descriptor {
        layer: Some(layer),
        ..Default::default()
    }));
    let flexible = Vp9Descriptor {
        flexible_mode: true,
        picture_id: Some(Vp9PictureId::Short(1)),
        ..Default::default()
    };
    assert!(invalid(Vp9Descriptor {
        layer: Some(Vp9LayerIndices {
            tl0_pic_idx: Some(1),
            ..layer
        }),
        ..flexible
    }));
    assert!(invalid(Vp9Descriptor {
        layer: Some(Vp9LayerIndices {
            spatial_id: 8,
            tl0_pic_idx: Some(0),
            ..layer
        }),
        ..Default::default()
    }));
    // Flexible with P needs references; without P or F it has none.
    assert!(invalid(Vp9Descriptor {
        inter_picture_predicted: true,
        ..flexible
    }));
    let refs = Vp9References::new(&[1]).unwrap();
    assert!(invalid(Vp9Descriptor {
        references: refs,
        ..Default::default()
    }));
    assert!(invalid(Vp9Descriptor {
        inter_picture_predicted: true,
        references: Vp9References::new(&[0]).unwrap(),
        ..flexible
    }));
    assert!(Vp9References::new(&[1, 2, 3, 4]).is_err());
    assert!(matches!(
        Vp9Descriptor::default().encode(&mut []),
        Err(PayloadError::BufferTooSmall {
            needed: 1,
            available: 0
        })
    ));
}

// --------------------------------------------------------- frame header

#[test]
fn keyframe_header_gives_profile_color_and_size() {
    let h = Vp9FrameHeader::parse(&keyframe(0, 640, 480, &[1, 2, 3])).unwrap();
    assert!(h.keyframe && h.show_frame && !h.intra_only && !h.show_existing_frame);
    assert_eq!(h.profile, 0);
    assert_eq!(h.size, Some((640, 480)));
    assert_eq!(
        h.color,
        Some(Vp9ColorConfig {
            bit_depth: 8,
            color_space: 2,
            full_range: false,
            subsampling_x: true,
            subsampling_y: true
        })
    );
    let h = Vp9FrameHeader::parse(&keyframe(2, 65535, 1, &[])).unwrap();
    assert_eq!(
        (h.profile, h.size, h.color.unwrap().bit_depth),
        (2, Some((65535, 1)), 10)
    );
}

#[test]
fn odd_profiles_read_subsampling_and_rgb() {
    // Profile 1, RGB: no color_range or subsampling bits, 4:4:4, a reserved bit.
    let mut w = BitWriter::default();
    w.put(2, 2).put(1, 1).put(0, 1).put(0b0010, 4).put(0x49_83_42, 24);
    w.put(7, 3).put(0, 1).put(99, 16).put(49, 16);
    let h = Vp9FrameHeader::parse(&w.bytes()).unwrap();
    assert_eq!(h.profile, 1);
    assert_eq!(h.size, Some((100, 50)));
    let c = h.color.unwrap();
    assert_eq!(
        (c.color_space, c.full_range, c.subsampling_x, c.subsampling_y),
        (7, true, false, false)
    );

    // Profile 3 (reserved zero after the profile), 12-bit, full range 4:2:2.
    let mut w = BitWriter::default();
    w.put(2, 2)
        .put(1, 1)
        .put(1, 1)
        .put(0, 1)
        .put(0b0010, 4)
        .put(0x49_83_42, 24);
    w.put(1, 1)
        .put(1, 3)
        .put(1, 1)
        .put(1, 1)
        .put(0, 1)
        .put(0, 1)
        .put(7, 16)
        .put(7, 16);
    let h = Vp9FrameHeader::parse(&w.bytes()).unwrap();
    assert_eq!(h.profile, 3);
    let c = h.color.unwrap();
    assert_eq!(
        (
            c.bit_depth,
            c.color_space,
            c.full_range,
            c.subsampling_x,
            c.subsampling_y
        ),
        (12, 1, true, true, false)
    );
    assert_eq!(h.size, Some((8, 8)));
}

#[test]
fn intra_only_and_inter_and_show_existing_frames() {
    // Intra-only, profile 0: hidden, intra_only, reset_frame_context, sync
    // code, refresh_frame_flags, size; no color config.
    let mut w = BitWriter::default();
    w.put(2, 2)
        .put(0, 2)
        .put(0, 1)
        .put(1, 1)
        .put(0, 1)
        .put(0, 1)
        .put(1, 1)
        .put(0, 2);
    w.put(0x49_83_42, 24).put(0xFF, 8).put(319, 16).put(239, 16);
    let h = Vp9FrameHeader::parse(&w.bytes()).unwrap();
    assert!(h.intra_only && !h.keyframe && !h.show_frame);
    assert_eq!((h.color, h.size), (None, Some((320, 240))));

    let h = Vp9FrameHeader::parse(&interframe(&[])).unwrap();
    assert!(!h.keyframe && !h.intra_only && h.show_frame);
    assert_eq!(h.size, None);

    // show_existing_frame: the header ends after frame_to_show_map_idx.
    let h = Vp9FrameHeader::parse(&[0b1000_1000]).unwrap();
    assert!(h.show_existing_frame && !h.keyframe);
}

#[test]
fn frame_header_errors() {
    let bad = |bytes: &[u8]| match Vp9FrameHeader::parse(bytes) {
        Err(PayloadError::Vp9FrameHeader { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(&[]), "the frame ends inside its uncompressed header");
    assert_eq!(bad(&[0x40]), "frame_marker is not 2");
    // Profile 3 with the reserved bit set.
    assert_eq!(bad(&[0b1011_1000]), "the reserved bit after profile 3 is set");
    let mut key = keyframe(0, 16, 16, &[]);
    key[1] ^= 0x01;
    assert_eq!(bad(&key), "frame_sync_code is not 49 83 42");
    let key = keyframe(0, 16, 16, &[]);
    for len in 0..key.len() {
        assert_eq!(
            bad(&key[..len]),
            "the frame ends inside its uncompressed header",
            "{len}"
        );
    }
}

// ----------------------------------------------------------- packetizer

#[test]
fn packetizer_keyframe_layout() {
    let frame = keyframe(0, 320, 240, &pattern(20, 1));
    let chunks = chunks(&frame, 0x1234, 1200);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].marker());
    let bytes = chunk_bytes(&chunks[0]);
    // I, P = 0, B, E, V; M and picture ID; SS: one layer with Y; 320x240.
    assert_eq!(bytes[..8], [0b1000_1110, 0x92, 0x34, 0x10, 0x01, 0x40, 0x00, 0xF0]);
    assert_eq!(bytes[8..], frame);
}

#[test]
fn packetizer_splits_inter_frames_with_b_and_e() {
    let frame = interframe(&pattern(100, 2));
    let chunks = chunks(&frame, 7, 40);
    let bytes: Vec<Vec<u8>> = chunks.iter().map(chunk_bytes).collect();
    assert_eq!(bytes.len(), 3);
    // I and P on all; B on the first, E on the last; no SS.
    assert_eq!(bytes[0][..3], [0b1100_1000, 0x80, 7]);
    assert_eq!(bytes[1][..3], [0b1100_0000, 0x80, 7]);
    assert_eq!(bytes[2][..3], [0b1100_0100, 0x80, 7]);
    assert_eq!(
        chunks.iter().map(PayloadChunk::marker).collect::<Vec<_>>(),
        [false, false, true]
    );
    let sizes: Vec<usize> = bytes.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|&s| s <= 40) && sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    let joined: Vec<u8> = bytes.iter().flat_map(|b| b[3..].to_vec()).collect();
    assert_eq!(joined, frame);
}

#[test]
fn packetizer_errors() {
    assert_eq!(
        Vp9Packetizer::new(&[], Vp9PictureId::Short(0), 100).err(),
        Some(PayloadError::EmptyFrame { codec: "VP9" })
    );
    assert!(matches!(
        Vp9Packetizer::new(&[0x00], Vp9PictureId::Short(0), 100),
        Err(PayloadError::Vp9FrameHeader { .. })
    ));
    // A keyframe's first descriptor takes 8 bytes: 9 is the least
    // budget, leaving 1 byte in the first packet and 6 in the others.
    let key = keyframe(0, 16, 16, &[0; 4]);
    assert_eq!(
        Vp9Packetizer::new(&key, Vp9PictureId::Long(0), 8).err(),
        Some(PayloadError::MaxPayloadTooSmall {
            codec: "VP9",
            needed: 9,
            max: 8
        })
    );
    assert_eq!(
        Vp9Packetizer::new(&key, Vp9PictureId::Long(0), 9).unwrap().len(),
        1 + (key.len() - 1).div_ceil(6)
    );
    assert!(matches!(
        Vp9Packetizer::new(&key, Vp9PictureId::Short(200), 100),
        Err(PayloadError::InvalidInput { .. })
    ));
}

// --------------------------------------------------------- depacketizer

/// Keyframe, then inter frames, each of `size` bytes, split at `max`.
fn stream(frames: usize, size: usize, max: usize, seq0: u16) -> (Vec<Vec<u8>>, Vec<Packet>) {
    let sent: Vec<Vec<u8>> = (0..frames)
        .map(|i| {
            let body = pattern(size, i as u8);
            if i == 0 {
                keyframe(0, 64, 48, &body)
            } else {
                interframe(&body)
            }
        })
        .collect();
    let packets = number(sent.iter().enumerate().map(|(i, f)| chunks(f, i as u16, max)), seq0);
    (sent, packets)
}

#[test]
fn depacketizer_reports_keyframes_sizes_and_descriptor_fields() {
    let (sent, packets) = stream(3, 300, 100, 65_530);
    let mut d = Vp9Depacketizer::new();
    assert!(d.awaiting_keyframe());
    let mut frames = Vec::new();
    for p in &packets {
        let out = d.push(p.rtp()).unwrap();
        assert!(!out.keyframe_needed);
        if let Some(f) = out.frame {
            assert_eq!(f.picture_id, Some(Vp9PictureId::Long(frames.len() as u16)));
            assert_eq!(f.inter_picture_predicted, !f.header.keyframe);
            let expected = if frames.is_empty() { Some((64, 48)) } else { None };
            assert_eq!(
                (f.resolution.map(|(w, h)| (u32::from(w), u32::from(h))), f.size()),
                (expected, expected)
            );
            frames.push(f.data.to_vec());
        }
    }
    assert_eq!(frames, sent);
    assert!(!d.awaiting_keyframe());
}

#[test]
fn lost_packet_drops_its_frame_and_asks_for_a_keyframe_once() {
    let (sent, mut packets) = stream(4, 300, 100, 0);
    let victim = packets.iter().position(|p| p.frame == 2).unwrap() + 1;
    packets.remove(victim);
    let r = receive(&mut Vp9Depacketizer::new(), &packets);
    assert_eq!(r.data(), [&sent[0][..], &sent[1], &sent[3]]);
    assert_eq!((r.dropped, r.keyframe_requests), (1, 1));
}

#[test]
fn gap_before_a_keyframe_or_the_next_picture_id_needs_no_keyframe() {
    // A padding packet lost between frames: picture IDs run on.
    let (_, packets) = stream(3, 50, 1200, 100);
    let mut spaced = packets.clone();
    for p in spaced.iter_mut().skip(1) {
        p.seq += 1;
    }
    let r = receive(&mut Vp9Depacketizer::new(), &spaced);
    assert_eq!((r.frames.len(), r.dropped, r.keyframe_requests), (3, 0, 0));

    // A whole inter frame lost: the next picture ID skips one.
    let mut lost = packets.clone();
    lost.remove(1);
    let r = receive(&mut Vp9Depacketizer::new(), &lost);
    assert_eq!((r.frames.len(), r.dropped, r.keyframe_requests), (2, 0, 1));

    // The same loss, then a keyframe: only the keyframe request from the loss.
    let key = keyframe(0, 16, 16, &[9; 30]);
    let mut then_key = lost.clone();
    then_key.extend(number(
        [Vec::new(), Vec::new(), Vec::new(), chunks(&key, 50, 1200)],
        104,
    ));
    let r = receive(&mut Vp9Depacketizer::new(), &then_key);
    assert_eq!((r.frames.len(), r.keyframe_requests), (3, 1));
    assert!(r.frames[2].1);

    // A gap straight before a keyframe needs nothing.
    let mut d = Vp9Depacketizer::new();
    receive(&mut d, &packets);
    let key_after_gap = number([chunks(&key, 90, 1200)], 200);
    let r = receive(&mut d, &key_after_gap);
    assert_eq!((r.frames.len(), r.keyframe_requests), (1, 0));
}

#[test]
fn frame_without_end_is_dropped_when_another_begins() {
    // Two spatial layers in one picture: same timestamp, SID 0 then 1.
    let layer = |sid: u8, b0: u8| {
        let mut payload = vec![b0 | 0x20, sid << 1, 0];
        payload.extend(interframe(&[sid; 10]));
        payload
    };
    let packet = |seq: u16, marker: bool, payload: Vec<u8>| Packet {
        frame: 0,
        seq,
        ts: 9000,
        marker,
        payload,
    };
    // B and E in each: both frames come out, with their layers.
    let both = [packet(1, false, layer(0, 0x4C)), packet(2, true, layer(1, 0x4C))];
    let mut d = Vp9Depacketizer::new();
    let sids: Vec<u8> = both
        .iter()
        .filter_map(|p| d.push(p.rtp()).unwrap().frame.map(|f| f.layer.unwrap().spatial_id))
        .collect();
    assert_eq!(sids, [0, 1]);
    // SID 0 without E: dropped when SID 1 begins, which still comes out.
    let cut = [packet(1, false, layer(0, 0x48)), packet(2, true, layer(1, 0x4C))];
    let r = receive(&mut Vp9Depacketizer::new(), &cut);
    assert_eq!((r.frames.len(), r.dropped), (1, 1));
}

#[test]
fn stale_packets_padding_and_malformed_payloads() {
    let (sent, packets) = stream(2, 300, 100, 10);
    let mut d = Vp9Depacketizer::new();
    let mut got = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if i == 2 {
            // A repeat of the previous packet, then padding in its place.
            assert_eq!(d.push(packets[1].rtp()).unwrap(), Depacketized::default());
        }
        if let Some(f) = d.push(p.rtp()).unwrap().frame {
            got.push(f.data.to_vec());
        }
    }
    assert_eq!(got, sent);
    let padding = RtpPayload {
        sequence_number: packets.last().unwrap().seq + 1,
        timestamp: 0,
        marker: false,
        payload: &[],
    };
    assert_eq!(d.push(padding).unwrap(), Depacketized::default());
    // A malformed descriptor is an error and leaves no trace.
    let bad = RtpPayload {
        payload: &[0x80],
        ..padding
    };
    assert!(matches!(d.push(bad), Err(PayloadError::Vp9DescriptorTruncated { .. })));
    // A frame whose bytes are no VP9 frame is dropped.
    let junk = RtpPayload {
        sequence_number: padding.sequence_number + 1,
        marker: true,
        payload: &[0x0C, 0x00],
        ..padding
    };
    let out = d.push(junk).unwrap();
    assert_eq!((out.frame.is_some(), out.frames_dropped), (false, 1));
}

#[test]
fn frame_over_the_size_cap_is_dropped() {
    let (_, packets) = stream(1, 500, 100, 0);
    let r = receive(&mut Vp9Depacketizer::with_max_frame_size(400), &packets);
    assert_eq!((r.frames.len(), r.dropped), (0, 1));
}

// ----------------------------------------------------------- properties

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        1u16..,
        1u16..,
        prop::collection::vec(any::<u8>(), 0..4000),
        prop_oneof![Just(0u8), Just(2)],
    )
        .prop_map(|(key, w, h, body, profile)| {
            if key {
                keyframe(profile, w, h, &body)
            } else {
                interframe(&body)
            }
        })
}

fn any_layer() -> impl Strategy<Value = Option<Vp9LayerIndices>> {
    prop::option::of(
        (0u8..8, any::<bool>(), 0u8..8, any::<bool>(), any::<u8>()).prop_map(|(t, u, s, d, tl0)| Vp9LayerIndices {
            temporal_id: t,
            switching_up: u,
            spatial_id: s,
            inter_layer_dependency: d,
            tl0_pic_idx: Some(tl0),
        }),
    )
}

proptest! {
    #[test]
    fn descriptor_round_trips(
        pid in prop::option::of(prop_oneof![(0u8..128).prop_map(Vp9PictureId::Short), (0u16..0x8000).prop_map(Vp9PictureId::Long)]),
        flags in any::<[bool; 5]>(),
        layer in any_layer(),
        refs in prop::collection::vec(1u8..128, 1..4),
        ss in prop::option::of((0u8..8, any::<bool>(), prop::collection::vec((0u8..8, any::<bool>(), prop::collection::vec(any::<u8>(), 0..4)), 0..5))),
    ) {
        let [p, flexible, b, e, z] = flags;
        let mut ss_bytes = Vec::new();
        if let Some((n_s, y, group)) = &ss {
            ss_bytes.push(n_s << 5 | u8::from(*y) << 4 | u8::from(!group.is_empty()) << 3);
            if *y {
                ss_bytes.extend((0..=*n_s).flat_map(|i| [0, i, 1, i]));
            }
            if !group.is_empty() {
                ss_bytes.push(group.len() as u8);
                for (t, u, r) in group {
                    ss_bytes.push(t << 5 | u8::from(*u) << 4 | (r.len() as u8) << 2);
                    ss_bytes.extend(r);
                }
            }
        }
        let pid = if flexible { pid.or(Some(Vp9PictureId::Short(0))) } else { pid };
        let layer = layer.map(|l| Vp9LayerIndices { tl0_pic_idx: l.tl0_pic_idx.filter(|_| !flexible), ..l });
        let d = Vp9Descriptor {
            picture_id: pid,
            inter_picture_predicted: p,
            flexible_mode: flexible,
            start_of_frame: b,
            end_of_frame: e,
            not_upper_layer_reference: z,
            layer,
            references: if flexible && p { Vp9References::new(&refs).unwrap() } else { Vp9References::default() },
            scalability_structure: (!ss_bytes.is_empty()).then(|| Vp9ScalabilityStructure::parse(&ss_bytes).unwrap().0),
        };
        let mut buf = vec![0xEEu8; d.encoded_len() + 1];
        let n = d.encode(&mut buf).unwrap();
        prop_assert_eq!(n, d.encoded_len());
        let (parsed, data) = Vp9Descriptor::parse(&buf).unwrap();
        prop_assert_eq!(parsed, d);
        prop_assert_eq!(data, &[0xEE][..]);
    }

    #[test]
    fn frames_round_trip(frames in prop::collection::vec(any_frame(), 1..5), max in 9usize..1500, seq0: u16) {
        let packets = number(frames.iter().enumerate().map(|(i, f)| chunks(f, i as u16, max)), seq0);
        prop_assert!(packets.iter().all(|p| p.payload.len() <= max && p.payload.len() > 3));
        let r = receive(&mut Vp9Depacketizer::new(), &packets);
        prop_assert_eq!(r.data(), frames.iter().map(|f| &f[..]).collect::<Vec<_>>());
        let keys: Vec<bool> = r.frames.iter().map(|f| f.1).collect();
        let sent_keys: Vec<bool> = frames.iter().map(|f| Vp9FrameHeader::parse(f).unwrap().keyframe).collect();
        prop_assert_eq!(keys, sent_keys);
        prop_assert_eq!(r.dropped, 0);
    }

    /// One packet lost, neither the stream's first (nothing shows it is
    /// missing) nor its last (nothing follows it): its frame, and only
    /// it, is missing, and a keyframe is asked for unless the next frame
    /// is one.
    #[test]
    fn one_lost_packet_loses_exactly_its_frame(
        frames in prop::collection::vec(any_frame(), 3..6),
        max in 9usize..600,
        victim: prop::sample::Index,
    ) {
        let mut packets = number(frames.iter().enumerate().map(|(i, f)| chunks(f, i as u16, max)), 0);
        let lost = packets.remove(1 + victim.index(packets.len() - 2));
        let r = receive(&mut Vp9Depacketizer::new(), &packets);
        let expected: Vec<&[u8]> = frames.iter().enumerate().filter(|(i, _)| *i != lost.frame).map(|(_, f)| &f[..]).collect();
        prop_assert_eq!(r.data(), expected);
        let others_of_its_frame = packets.iter().any(|p| p.frame == lost.frame);
        prop_assert_eq!(r.dropped, u32::from(others_of_its_frame));
        let healed = frames.get(lost.frame + 1).is_some_and(|f| Vp9FrameHeader::parse(f).unwrap().keyframe);
        prop_assert!(r.keyframe_requests >= 1 || healed);
    }

    #[test]
    fn arbitrary_packets_never_panic(
        packets in prop::collection::vec((prop_oneof![Just(1i16), Just(1), Just(2), Just(0), Just(-1), any::<i16>()], any::<bool>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..60)), 0..80),
    ) {
        let mut d = Vp9Depacketizer::with_max_frame_size(300);
        let (mut seq, mut ts) = (0u16, 0u32);
        for (step, marker, next_ts, payload) in &packets {
            seq = seq.wrapping_add(*step as u16);
            ts = ts.wrapping_add(u32::from(*next_ts) * 3000);
            let _ = Vp9FrameHeader::parse(payload);
            let _ = Vp9ScalabilityStructure::parse(payload).map(|(ss, _)| (ss.resolutions().count(), ss.picture_group().count()));
            if let Ok(out) = d.push(RtpPayload { sequence_number: seq, timestamp: ts, marker: *marker, payload }) {
                if let Some(f) = out.frame {
                    prop_assert!(f.data.len() <= 300);
                    prop_assert_eq!(Vp9FrameHeader::parse(f.data), Ok(f.header));
                }
            }
        }
    }
}
