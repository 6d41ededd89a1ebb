//! AV1 over RTP (AV1 RTP Specification v1.0.0): leb128 and OBU headers
//! (AV1 Bitstream Specification §4.10.5, §5.3), sequence and frame
//! headers (§5.5.1, §5.9.2), aggregation header layouts (§4.4), the
//! packetizer's layouts (W, Z, Y, N), reassembly with loss, and
//! properties: temporal units round trip byte for byte for random OBUs
//! and budgets, one lost packet loses its temporal unit, and arbitrary
//! input never panics.

// Binary literals are grouped by field, as the specification draws them.
#![allow(clippy::unusual_byte_groupings)]

mod support;

use natter_rtp::payload::*;
use proptest::prelude::*;
use support::{chunk_bytes, number, BitWriter, Packet, Received};

// ------------------------------------------------------------------ OBUs

const TD: [u8; 2] = [0x12, 0x00];
const SEQUENCE_HEADER: u8 = 1;
const FRAME: u8 = 6;
const TILE_LIST: u8 = 8;
const METADATA: u8 = 5;

/// An OBU with obu_has_size_field set and a minimal size, as encoders
/// and IVF files write them.
fn obu(obu_type: u8, extension: Option<(u8, u8)>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![obu_type << 3 | u8::from(extension.is_some()) << 2 | 0x02];
    if let Some((t, s)) = extension {
        out.push(t << 5 | s << 3);
    }
    let mut leb = [0u8; 8];
    let n = write_leb128(payload.len() as u32, &mut leb);
    out.extend_from_slice(&leb[..n]);
    out.extend_from_slice(payload);
    out
}

/// A sequence header payload (§5.5.1): profile 0, one operating point
/// at level 4.0 (tier bit present), 16-bit frame dimensions.
fn sequence_header(width: u32, height: u32) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0, 3).put(0, 1).put(0, 1); // profile, still_picture, reduced_still_picture_header
    w.put(0, 1).put(0, 1).put(0, 5); // timing_info_present, initial_display_delay_present, 1 operating point
    w.put(0, 12).put(8, 5).put(1, 1); // idc, seq_level_idx 8, seq_tier 1
    w.put(15, 4)
        .put(15, 4)
        .put(u64::from(width - 1), 16)
        .put(u64::from(height - 1), 16);
    w.put(0b1010_1010, 8); // the fields after, unread
    w.bytes()
}

/// A frame OBU payload (§5.9.2): a shown new frame, then `body`.
fn frame_payload(key: bool, body: &[u8]) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0, 1).put(if key { 0 } else { 1 }, 2).put(1, 1).put(0xA, 4);
    let mut out = w.bytes();
    out.extend_from_slice(body);
    out
}

/// A temporal unit: a temporal delimiter, then the OBUs.
fn temporal_unit(obus: &[Vec<u8>]) -> Vec<u8> {
    let mut tu = TD.to_vec();
    obus.iter().for_each(|o| tu.extend_from_slice(o));
    tu
}

fn key_unit(body: &[u8]) -> Vec<u8> {
    temporal_unit(&[
        obu(SEQUENCE_HEADER, None, &sequence_header(320, 240)),
        obu(FRAME, Some((0, 0)), &frame_payload(true, body)),
    ])
}

fn inter_unit(body: &[u8]) -> Vec<u8> {
    temporal_unit(&[obu(FRAME, Some((0, 0)), &frame_payload(false, body))])
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn chunks(tu: &[u8], max: usize) -> Vec<PayloadChunk<'_>> {
    Av1Packetizer::new(tu, max).unwrap().collect()
}

fn receive(d: &mut Av1Depacketizer, packets: &[Packet]) -> Received {
    Received::from_stream(packets, |p| {
        let out = d.push(p).unwrap();
        let frame = out.frame.map(|f| (f.data.to_vec(), f.keyframe));
        (out.frames_dropped, out.keyframe_needed, frame)
    })
}

#[test]
fn leb128_encodings() {
    let cases: [(u32, &[u8]); 5] = [
        (0, &[0]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (300, &[0xAC, 0x02]),
        (u32::MAX, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    ];
    for (value, bytes) in cases {
        let mut out = [0u8; 8];
        assert_eq!(write_leb128(value, &mut out), bytes.len());
        assert_eq!(&out[..bytes.len()], bytes);
        assert_eq!(leb128_len(value), bytes.len());
        assert_eq!(read_leb128(bytes), Some((value, bytes.len())));
    }
    // Padded encodings are read; too long, too large or cut off are not.
    assert_eq!(read_leb128(&[0x85, 0x80, 0x00]), Some((5, 3)));
    assert_eq!(read_leb128(&[0x80; 9]), None);
    assert_eq!(read_leb128(&[0xFF, 0xFF, 0xFF, 0xFF, 0x1F]), None);
    assert_eq!(read_leb128(&[0x80]), None);
}

#[test]
fn obu_header_with_and_without_extension() {
    // Frame OBU with extension (temporal 2, spatial 1), no size field.
    let (h, len) = ObuHeader::parse(&[0b0_0110_1_0_0, 0b010_01_000], 0).unwrap();
    assert_eq!(len, 2);
    assert_eq!(h.obu_type, ObuType::Frame);
    assert!(!h.has_size_field);
    assert_eq!(
        h.extension,
        Some(ObuExtension {
            temporal_id: 2,
            spatial_id: 1
        })
    );
    assert_eq!(h.encode(), ([0b0_0110_1_0_0, 0b010_01_000], 2));
    let (h, len) = ObuHeader::parse(&TD, 0).unwrap();
    assert_eq!(
        (h.obu_type, h.extension, h.has_size_field, len),
        (ObuType::TemporalDelimiter, None, true, 1)
    );
    assert_eq!(ObuType::from_bits(9), ObuType::Reserved(9));
    assert_eq!(ObuType::Reserved(9).bits(), 9);
    for (bytes, reason) in [
        (&[][..], "no OBU header"),
        (&[0x80], "obu_forbidden_bit is set"),
        (&[0x34], "the OBU extension header is missing"),
    ] {
        assert_eq!(
            ObuHeader::parse(bytes, 7),
            Err(PayloadError::Av1Obu { offset: 7, reason })
        );
    }
}

#[test]
fn obus_of_a_temporal_unit() {
    let mut tu = key_unit(&[1, 2, 3]);
    // A last OBU without a size field takes the rest.
    tu.extend_from_slice(&[METADATA << 3, 0xAA, 0xBB]);
    let obus: Vec<Obu<'_>> = Obus::new(&tu).collect::<Result<_, _>>().unwrap();
    let types: Vec<ObuType> = obus.iter().map(|o| o.header.obu_type).collect();
    assert_eq!(
        types,
        [
            ObuType::TemporalDelimiter,
            ObuType::SequenceHeader,
            ObuType::Frame,
            ObuType::Metadata
        ]
    );
    assert_eq!(obus[3].payload, [0xAA, 0xBB]);
    assert_eq!(obus[2].payload, frame_payload(true, &[1, 2, 3]));
    // A size past the end is an error, and the last item.
    let cut = &tu[..tu.len() - 5];
    let results: Vec<_> = Obus::new(cut).collect();
    assert_eq!(
        results.last(),
        Some(&Err(PayloadError::Av1Obu {
            offset: 2 + obu(SEQUENCE_HEADER, None, &sequence_header(320, 240)).len(),
            reason: "obu_size overruns the temporal unit"
        }))
    );
}

#[test]
fn sequence_header_fields() {
    let sh = Av1SequenceHeader::parse(&sequence_header(1920, 1080)).unwrap();
    assert_eq!((sh.profile, sh.level, sh.tier, sh.operating_points), (0, 8, 1, 1));
    assert_eq!((sh.max_frame_width, sh.max_frame_height), (1920, 1080));
    assert!(!sh.reduced_still_picture_header);

    // Reduced still picture header: profile 1, level 5, 8-bit sizes.
    let mut w = BitWriter::default();
    w.put(1, 3)
        .put(1, 1)
        .put(1, 1)
        .put(5, 5)
        .put(7, 4)
        .put(7, 4)
        .put(99, 8)
        .put(49, 8);
    let sh = Av1SequenceHeader::parse(&w.bytes()).unwrap();
    assert_eq!(
        (sh.profile, sh.still_picture, sh.reduced_still_picture_header, sh.level),
        (1, true, true, 5)
    );
    assert_eq!((sh.max_frame_width, sh.max_frame_height), (100, 50));

    // Timing info with a uvlc, a decoder model, two operating points
    // (the second with decoder model and display delay), 11-bit sizes.
    let mut w = BitWriter::default();
    w.put(2, 3).put(0, 1).put(0, 1).put(1, 1); // profile 2, timing_info_present
    w.put(1001, 32).put(60000, 32).put(1, 1).put(0b011, 3); // equal_picture_interval, uvlc 2
    w.put(1, 1).put(9, 5).put(1, 32).put(4, 5).put(4, 5); // decoder model: buffer_delay_length 10
    w.put(1, 1).put(1, 5); // initial_display_delay_present, 2 operating points
    w.put(0x101, 12).put(4, 5).put(0, 1).put(0, 1); // op 0: level 4, no model, no delay
    w.put(0x103, 12)
        .put(12, 5)
        .put(0, 1)
        .put(1, 1)
        .put(0, 10)
        .put(0, 10)
        .put(1, 1)
        .put(1, 1)
        .put(3, 4);
    w.put(10, 4).put(10, 4).put(1279, 11).put(719, 11);
    let sh = Av1SequenceHeader::parse(&w.bytes()).unwrap();
    assert_eq!(
        (sh.profile, sh.operating_points, sh.operating_point_idc, sh.level),
        (2, 2, 0x101, 4)
    );
    assert_eq!((sh.max_frame_width, sh.max_frame_height), (1280, 720));

    let full = sequence_header(16, 16);
    for len in 0..full.len() - 1 {
        assert!(
            matches!(
                Av1SequenceHeader::parse(&full[..len]),
                Err(PayloadError::Av1SequenceHeader { .. })
            ),
            "{len}"
        );
    }
}

#[test]
fn frame_header_start() {
    assert_eq!(
        Av1FrameHeader::parse(&frame_payload(true, &[]), false),
        Ok(Av1FrameHeader::New {
            frame_type: Av1FrameType::Key,
            show_frame: true
        })
    );
    assert!(!Av1FrameHeader::parse(&frame_payload(false, &[]), false)
        .unwrap()
        .is_key_frame());
    assert_eq!(Av1FrameHeader::parse(&[0x80], false), Ok(Av1FrameHeader::ShowExisting));
    assert_eq!(
        Av1FrameHeader::parse(&[0b0_10_0_0000, 0], false),
        Ok(Av1FrameHeader::New {
            frame_type: Av1FrameType::IntraOnly,
            show_frame: false
        })
    );
    // Reduced still picture headers are always shown key frames.
    assert!(Av1FrameHeader::parse(&[], true).unwrap().is_key_frame());
    assert!(matches!(
        Av1FrameHeader::parse(&[], false),
        Err(PayloadError::Av1FrameHeader { .. })
    ));
}

// ----------------------------------------------------------- aggregation

#[test]
fn aggregation_header_bits() {
    let h = Av1AggregationHeader {
        continues_fragment: true,
        fragment_continues: true,
        element_count: 3,
        new_coded_video_sequence: false,
    };
    assert_eq!(h.to_byte(), 0b1_1_11_0_000);
    assert_eq!(Av1AggregationHeader::from_byte(0b1_1_11_0_111), h);
    let n = Av1AggregationHeader {
        new_coded_video_sequence: true,
        ..Default::default()
    };
    assert_eq!(n.to_byte(), 0b0_0_00_1_000);
}

#[test]
fn payload_elements_with_and_without_w() {
    // W = 2: one element with its length, the last without.
    let p = Av1Payload::parse(&[0b0_0_10_0_000, 2, 0x30, 0xAA, 0x30, 0xBB, 0xCC]).unwrap();
    assert_eq!(
        p.elements().collect::<Vec<_>>(),
        [&[0x30, 0xAA][..], &[0x30, 0xBB, 0xCC]]
    );
    // W = 0: every element with its length.
    let p = Av1Payload::parse(&[0, 1, 0x30, 2, 0x30, 0xBB]).unwrap();
    assert_eq!(p.elements().collect::<Vec<_>>(), [&[0x30][..], &[0x30, 0xBB]]);
    let bad = |bytes: &[u8]| match Av1Payload::parse(bytes) {
        Err(PayloadError::Av1Payload { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(&[]), "empty payload");
    assert_eq!(bad(&[0x10]), "no OBU element after the aggregation header");
    assert_eq!(
        bad(&[0b1_0_01_1_000, 0x30]),
        "N = 1 starts a coded video sequence, which cannot continue a fragment (Z = 1)"
    );
    assert_eq!(bad(&[0, 0, 1, 0x30]), "an OBU element is empty");
    assert_eq!(bad(&[0, 5, 0x30]), "an OBU element's length overruns the packet");
    assert_eq!(
        bad(&[0b0_0_11_0_000, 1, 0x30, 1, 0x30]),
        "the packet does not hold the W elements its header announces"
    );
}

// ------------------------------------------------------------ packetizer

#[test]
fn packetizer_aggregates_a_small_key_unit() {
    let sh = sequence_header(320, 240);
    let frame = frame_payload(true, &[7; 5]);
    let tu = temporal_unit(&[obu(SEQUENCE_HEADER, None, &sh), obu(FRAME, Some((1, 0)), &frame)]);
    let p = Av1Packetizer::new(&tu, 1200).unwrap();
    assert!(p.starts_coded_video_sequence());
    assert_eq!(p.sequence_header().map(|s| s.max_frame_width), Some(320));
    let chunks: Vec<_> = p.collect();
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].marker());
    // W = 2, N; the temporal delimiter is gone and no OBU keeps its size.
    let mut expected = vec![0b0_0_10_1_000, 1 + sh.len() as u8, SEQUENCE_HEADER << 3];
    expected.extend(&sh);
    expected.extend([FRAME << 3 | 0x04, 1 << 5]);
    expected.extend(&frame);
    assert_eq!(chunk_bytes(&chunks[0]), expected);
}

#[test]
fn packetizer_fragments_a_large_obu() {
    let body = pattern(100, 3);
    let tu = inter_unit(&body);
    let chunks = chunks(&tu, 40);
    let bytes: Vec<Vec<u8>> = chunks.iter().map(chunk_bytes).collect();
    // The element is the 2-byte header and 101 bytes of frame: 39 + 39 + 25.
    assert_eq!(bytes.iter().map(Vec::len).collect::<Vec<_>>(), [40, 40, 26]);
    assert_eq!(bytes[0][0], 0b0_1_01_0_000, "Y, W = 1");
    assert_eq!(bytes[1][0], 0b1_1_01_0_000, "Z, Y, W = 1");
    assert_eq!(bytes[2][0], 0b1_0_01_0_000, "Z, W = 1");
    assert_eq!(
        chunks.iter().map(PayloadChunk::marker).collect::<Vec<_>>(),
        [false, false, true]
    );
    let element: Vec<u8> = bytes.iter().flat_map(|b| b[1..].to_vec()).collect();
    assert_eq!(element[..2], [FRAME << 3 | 0x04, 0]);
    assert_eq!(element[2..], frame_payload(false, &body));
}

#[test]
fn packetizer_counts_up_to_three_elements_then_lengths_all() {
    let obus: Vec<Vec<u8>> = (0..5).map(|i| obu(METADATA, None, &[i; 3])).collect();
    let tu = temporal_unit(&obus);
    let bytes = chunk_bytes(&chunks(&tu, 1200)[0]);
    // W = 0: five elements of 4 bytes, each after its length.
    let mut expected = vec![0];
    for i in 0..5 {
        expected.extend([4, METADATA << 3, i, i, i]);
    }
    assert_eq!(bytes, expected);
    // Three fit: W = 3, the last without a length field.
    let three = temporal_unit(&obus[..3]);
    assert_eq!(chunk_bytes(&chunks(&three, 1200)[0])[..2], [0b0_0_11_0_000, 4]);
}

#[test]
fn packetizer_drops_temporal_delimiters_and_tile_lists() {
    let tu = temporal_unit(&[obu(TILE_LIST, None, &[1, 2]), obu(METADATA, None, &[9])]);
    let bytes = chunk_bytes(&chunks(&tu, 1200)[0]);
    assert_eq!(bytes, [0b0_0_01_0_000, METADATA << 3, 9]);
    assert_eq!(
        Av1Packetizer::new(&TD, 1200).err(),
        Some(PayloadError::EmptyFrame { codec: "AV1" })
    );
    assert_eq!(
        Av1Packetizer::new(&key_unit(&[]), 1).err(),
        Some(PayloadError::MaxPayloadTooSmall {
            codec: "AV1",
            needed: 2,
            max: 1
        })
    );
    assert!(matches!(
        Av1Packetizer::new(&[0x12, 0x05], 1200),
        Err(PayloadError::Av1Obu { .. })
    ));
}

// ---------------------------------------------------------- depacketizer

fn stream(units: usize, size: usize, max: usize, seq0: u16) -> (Vec<Vec<u8>>, Vec<Packet>) {
    let sent: Vec<Vec<u8>> = (0..units)
        .map(|i| {
            if i == 0 {
                key_unit(&pattern(size, 0))
            } else {
                inter_unit(&pattern(size, i as u8))
            }
        })
        .collect();
    let packets = number(sent.iter().map(|tu| chunks(tu, max)), seq0);
    (sent, packets)
}

#[test]
fn depacketizer_rebuilds_units_with_keyframes_and_size() {
    let (sent, packets) = stream(3, 500, 120, 65_500);
    let mut d = Av1Depacketizer::new();
    assert!(d.awaiting_keyframe());
    let mut got = Vec::new();
    for p in &packets {
        let out = d.push(p.rtp()).unwrap();
        assert!(!out.keyframe_needed);
        if let Some(f) = out.frame {
            assert_eq!(f.keyframe, got.is_empty());
            assert_eq!(
                f.sequence_header.map(|s| (s.max_frame_width, s.max_frame_height)),
                f.keyframe.then_some((320, 240))
            );
            got.push(f.data.to_vec());
        }
    }
    assert_eq!(got, sent);
    assert!(!d.awaiting_keyframe());
}

#[test]
fn depacketizer_keeps_size_fields_and_ignores_temporal_delimiters() {
    // A sender that keeps obu_has_size_field and sends a TD element.
    let metadata = obu(METADATA, None, &[1, 2, 3]);
    let mut payload = vec![0b0_0_10_0_000, 2];
    payload.extend(TD);
    payload.extend(&metadata);
    let mut d = Av1Depacketizer::new();
    let out = d
        .push(RtpPayload {
            sequence_number: 1,
            timestamp: 0,
            marker: true,
            payload: &payload,
        })
        .unwrap();
    assert_eq!(out.frame.unwrap().data, temporal_unit(&[metadata]));
    // An element whose size field disagrees with its length loses the unit.
    let mut bad = vec![0b0_0_01_0_000];
    bad.extend(obu(METADATA, None, &[1, 2, 3]));
    bad.push(0xFF);
    let out = d
        .push(RtpPayload {
            sequence_number: 2,
            timestamp: 1,
            marker: true,
            payload: &bad,
        })
        .unwrap();
    assert_eq!((out.frame.is_some(), out.frames_dropped), (false, 1));
}

#[test]
fn lost_fragment_drops_its_unit_and_the_next_needs_n() {
    let (sent, mut packets) = stream(4, 300, 100, 0);
    // Lose a middle fragment of unit 1: unit 1 dropped, the rest decode.
    let victim = packets.iter().position(|p| p.frame == 1).unwrap() + 1;
    packets.remove(victim);
    let r = receive(&mut Av1Depacketizer::new(), &packets);
    assert_eq!(r.data(), [&sent[0][..], &sent[2], &sent[3]]);
    assert_eq!((r.dropped, r.keyframe_requests), (1, 1));

    // Lose unit 1's last packet: the marker never comes, and unit 2
    // follows a gap without N, so its start may be lost too.
    let (sent, mut packets) = stream(4, 300, 100, 0);
    let last_of_1 = packets.iter().rposition(|p| p.frame == 1).unwrap();
    packets.remove(last_of_1);
    let r = receive(&mut Av1Depacketizer::new(), &packets);
    assert_eq!(r.data(), [&sent[0][..], &sent[3]]);
    assert_eq!((r.dropped, r.keyframe_requests), (2, 1));
}

#[test]
fn gap_before_a_new_coded_video_sequence_needs_no_keyframe() {
    let (_, mut packets) = stream(2, 50, 1200, 0);
    let key = key_unit(&[5; 50]);
    packets.extend(number([Vec::new(), Vec::new(), Vec::new(), chunks(&key, 1200)], 5));
    let r = receive(&mut Av1Depacketizer::new(), &packets);
    assert_eq!((r.frames.len(), r.keyframe_requests), (3, 0));
    assert!(r.frames[2].1);
}

#[test]
fn continuation_without_a_start_and_oversized_units_are_dropped() {
    let (_, packets) = stream(1, 300, 100, 0);
    let r = receive(&mut Av1Depacketizer::new(), &packets[1..]);
    assert_eq!((r.frames.len(), r.dropped), (0, 1));
    let r = receive(&mut Av1Depacketizer::with_max_frame_size(200), &packets);
    assert_eq!((r.frames.len(), r.dropped), (0, 1));
    // Padding, and a repeated packet, change nothing.
    let mut d = Av1Depacketizer::new();
    d.push(packets[0].rtp()).unwrap();
    assert_eq!(d.push(packets[0].rtp()).unwrap(), Depacketized::default());
    let padding = RtpPayload {
        sequence_number: 1,
        timestamp: 0,
        marker: false,
        payload: &[],
    };
    assert_eq!(d.push(padding).unwrap(), Depacketized::default());
}

// ----------------------------------------------- dependency descriptor

#[test]
fn dependency_descriptor_mandatory_fields_only() {
    let d = DependencyDescriptor::parse(&[0b1_0_000101, 0x12, 0x34]).unwrap();
    assert!(d.start_of_frame && !d.end_of_frame);
    assert_eq!((d.template_id, d.frame_number), (5, 0x1234));
    assert!(d.structure.is_none() && !d.starts_keyframe());
    assert_eq!(d.layer(None), None);
    assert_eq!(d.active_decode_targets(None), Ok(None));
    assert_eq!(
        DependencyDescriptor::parse(&[0, 0]).err(),
        Some(PayloadError::DependencyDescriptor {
            reason: "shorter than the 3 bytes of mandatory fields"
        })
    );
}

/// One template of a generated structure.
#[derive(Clone, Debug)]
struct TemplateSpec {
    next_layer_idc: u64,
    dtis: Vec<u64>,
    fdiffs: Vec<u8>,
    chain_fdiffs: Vec<u8>,
}

/// A structure as A.8.2 writes it, after the mandatory fields and
/// extended flags: templates (the last one's next_layer_idc is 3),
/// `chains` chains with each decode target protected by target % chains,
/// optional resolutions (one per spatial layer).
fn structure_bytes(
    template_id: u8,
    offset: u8,
    targets: u32,
    templates: &[TemplateSpec],
    chains: u32,
    resolutions: Option<&[(u16, u16)]>,
    active: Option<u32>,
) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.put(0b11, 2).put(u64::from(template_id), 6).put(0xBEEF, 16);
    w.put(1, 1).put(u64::from(active.is_some()), 1).put(0, 3);
    w.put(u64::from(offset), 6).put(u64::from(targets - 1), 5);
    for (i, t) in templates.iter().enumerate() {
        w.put(if i + 1 == templates.len() { 3 } else { t.next_layer_idc }, 2);
    }
    for t in templates {
        t.dtis.iter().for_each(|&d| {
            w.put(d, 2);
        });
    }
    for t in templates {
        for &f in &t.fdiffs {
            w.put(1, 1).put(u64::from(f - 1), 4);
        }
        w.put(0, 1);
    }
    w.ns(targets + 1, chains);
    if chains > 0 {
        for dt in 0..targets {
            w.ns(chains, dt % chains);
        }
    }
    for t in templates {
        t.chain_fdiffs.iter().for_each(|&c| {
            w.put(u64::from(c), 4);
        });
    }
    w.put(u64::from(resolutions.is_some()), 1);
    for &(width, height) in resolutions.unwrap_or_default() {
        w.put(u64::from(width - 1), 16).put(u64::from(height - 1), 16);
    }
    if let Some(mask) = active {
        w.put(u64::from(mask), targets);
    }
    w.bytes()
}

/// L1T3 (AV1 RTP A.10.2.1-like): one key template and T0, T1, T2.
fn l1t3() -> Vec<TemplateSpec> {
    let t = |idc, dtis: [u64; 3], fdiffs: &[u8], chain| TemplateSpec {
        next_layer_idc: idc,
        dtis: dtis.to_vec(),
        fdiffs: fdiffs.to_vec(),
        chain_fdiffs: vec![chain],
    };
    vec![
        t(0, [2, 2, 2], &[], 0),  // S0T0 key: S S S
        t(1, [3, 3, 3], &[4], 4), // S0T0: R R R
        t(1, [0, 2, 3], &[2], 2), // S0T1: - S R
        t(3, [0, 0, 1], &[1], 1), // S0T2: - - D
    ]
}

#[test]
fn dependency_descriptor_with_an_l1t3_structure() {
    let bytes = structure_bytes(62, 62, 3, &l1t3(), 1, Some(&[(640, 360)]), None);
    let d = DependencyDescriptor::parse(&bytes).unwrap();
    assert!(d.start_of_frame && d.end_of_frame && d.starts_keyframe());
    assert_eq!((d.template_id, d.frame_number), (62, 0xBEEF));
    let s = d.structure.unwrap();
    assert_eq!(
        (
            s.template_id_offset,
            s.decode_targets,
            s.templates,
            s.chains,
            s.max_spatial_id
        ),
        (62, 3, 4, 1, 0)
    );
    let templates: Vec<FrameTemplate<'_>> = s.templates().collect();
    let layers: Vec<(u8, u8)> = templates
        .iter()
        .map(|t| (t.layer.spatial_id, t.layer.temporal_id))
        .collect();
    assert_eq!(layers, [(0, 0), (0, 0), (0, 1), (0, 2)]);
    use DecodeTargetIndication::*;
    assert_eq!(
        templates[2].decode_target_indications().collect::<Vec<_>>(),
        [NotPresent, Switch, Required]
    );
    assert_eq!(
        templates[3].decode_target_indications().collect::<Vec<_>>(),
        [NotPresent, NotPresent, Discardable]
    );
    assert_eq!(templates[1].frame_diffs().collect::<Vec<_>>(), [4]);
    assert_eq!(templates[0].frame_diffs().count(), 0);
    assert_eq!(
        templates.iter().flat_map(|t| t.chain_diffs()).collect::<Vec<_>>(),
        [0, 4, 2, 1]
    );
    assert_eq!(s.decode_target_protected_by().collect::<Vec<_>>(), [0, 0, 0]);
    assert_eq!(s.resolutions().collect::<Vec<_>>(), [(640, 360)]);
    assert_eq!(
        d.layer(None),
        Some(Layer {
            spatial_id: 0,
            temporal_id: 0
        })
    );
    assert_eq!(d.active_decode_targets(None), Ok(Some(0b111)));

    // Later packets name templates modulo 64 from the offset 62: id 1 is
    // index 3, id 2 is past the four templates.
    let known = DependencyStructure::from(&s);
    let later = |id: u8| DependencyDescriptor::parse(&[id, 0, 1]).unwrap().layer(Some(&known));
    assert_eq!(
        later(1),
        Some(Layer {
            spatial_id: 0,
            temporal_id: 2
        })
    );
    assert_eq!(
        later(63),
        Some(Layer {
            spatial_id: 0,
            temporal_id: 0
        })
    );
    assert_eq!(later(2), None);
}

#[test]
fn dependency_descriptor_active_decode_targets() {
    let with_mask = structure_bytes(0, 0, 3, &l1t3(), 1, None, Some(0b011));
    let d = DependencyDescriptor::parse(&with_mask).unwrap();
    assert_eq!(d.active_decode_targets(None), Ok(Some(0b011)));
    // Without a structure attached, the bitmask is sized by the known one.
    let known = DependencyStructure::from(&d.structure.unwrap());
    let d = DependencyDescriptor::parse(&[0x80, 0, 2, 0b0100_0101, 0b0000_0000]).unwrap();
    assert_eq!(d.active_decode_targets(Some(&known)), Ok(Some(0b101)));
    assert!(d.active_decode_targets(None).is_err());
}

#[test]
fn dependency_descriptor_errors() {
    let bytes = structure_bytes(0, 0, 3, &l1t3(), 1, Some(&[(640, 360)]), Some(1));
    for len in 4..bytes.len() {
        match DependencyDescriptor::parse(&bytes[..len]) {
            Err(PayloadError::DependencyDescriptor { .. }) => {}
            other => panic!("{len}: {other:?}"),
        }
    }
    // 65 templates: next_layer_idc 0 sixty-four times before the 3.
    let many: Vec<TemplateSpec> = (0..65)
        .map(|_| TemplateSpec {
            next_layer_idc: 0,
            dtis: vec![0],
            fdiffs: vec![],
            chain_fdiffs: vec![],
        })
        .collect();
    assert_eq!(
        DependencyDescriptor::parse(&structure_bytes(0, 0, 1, &many, 0, None, None)).err(),
        Some(PayloadError::DependencyDescriptor {
            reason: "more than 64 frame dependency templates"
        })
    );
}

// ------------------------------------------------------------ properties

/// An OBU that may follow the frame in a temporal unit: tile group,
/// metadata or padding.
fn any_obu() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(4u8), Just(METADATA), Just(15)],
        prop::option::of((0u8..8, 0u8..4)),
        prop::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(t, ext, payload)| obu(t, ext, &payload))
}

fn any_unit() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        1u32..65536,
        1u32..65536,
        prop::option::of((0u8..8, 0u8..4)),
        prop::collection::vec(any::<u8>(), 0..3000),
        prop::collection::vec(any_obu(), 0..4),
    )
        .prop_map(|(key, w, h, ext, body, extra)| {
            let mut obus = Vec::new();
            if key {
                obus.push(obu(SEQUENCE_HEADER, None, &sequence_header(w, h)));
            }
            obus.push(obu(FRAME, ext, &frame_payload(key, &body)));
            obus.extend(extra);
            temporal_unit(&obus)
        })
}

fn any_template() -> impl Strategy<Value = (u64, Vec<u8>)> {
    (0u64..3, prop::collection::vec(1u8..=16, 0..4))
}

proptest! {
    #[test]
    fn temporal_units_round_trip(units in prop::collection::vec(any_unit(), 1..5), max in 2usize..1500, seq0: u16) {
        let packets = number(units.iter().map(|tu| chunks(tu, max)), seq0);
        prop_assert!(packets.iter().all(|p| p.payload.len() <= max));
        let r = receive(&mut Av1Depacketizer::new(), &packets);
        prop_assert_eq!(r.data(), units.iter().map(|u| &u[..]).collect::<Vec<_>>());
        prop_assert_eq!(r.dropped, 0);
        // Key units start with a sequence header OBU; their first packet has N.
        for (i, (_, key)) in r.frames.iter().enumerate() {
            prop_assert_eq!(*key, units[i][2] == obu(SEQUENCE_HEADER, None, &[])[0]);
            let first = packets.iter().find(|p| p.frame == i).unwrap();
            prop_assert_eq!(first.payload[0] & 0x08 != 0, *key);
        }
    }

    /// One packet lost, neither the first nor the last: its temporal unit
    /// is missing, and so is the next if the loss took the marker and the
    /// next does not start with N; all others come through.
    #[test]
    fn one_lost_packet_loses_its_unit(units in prop::collection::vec(any_unit(), 3..6), max in 2usize..600, victim: prop::sample::Index) {
        let mut packets = number(units.iter().map(|tu| chunks(tu, max)), 0);
        let lost = packets.remove(1 + victim.index(packets.len() - 2));
        let r = receive(&mut Av1Depacketizer::new(), &packets);
        let next_starts_sequence = packets.iter().find(|p| p.frame == lost.frame + 1).is_some_and(|p| p.payload[0] & 0x08 != 0);
        let also_lost = lost.marker && !next_starts_sequence;
        let expected: Vec<&[u8]> = units
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lost.frame && !(also_lost && *i == lost.frame + 1))
            .map(|(_, u)| &u[..])
            .collect();
        prop_assert_eq!(r.data(), expected);
        prop_assert!(r.keyframe_requests >= 1 || next_starts_sequence);
    }

    #[test]
    fn arbitrary_packets_never_panic(
        packets in prop::collection::vec((prop_oneof![Just(1i16), Just(1), Just(2), Just(0), Just(-1), any::<i16>()], any::<bool>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..60)), 0..80),
    ) {
        let mut d = Av1Depacketizer::with_max_frame_size(300);
        let (mut seq, mut ts) = (0u16, 0u32);
        for (step, marker, next_ts, payload) in &packets {
            seq = seq.wrapping_add(*step as u16);
            ts = ts.wrapping_add(u32::from(*next_ts) * 3000);
            let _ = Av1SequenceHeader::parse(payload);
            let _ = Obus::new(payload).count();
            if let Ok(dd) = DependencyDescriptor::parse(payload) {
                let _ = dd.active_decode_targets(None);
                if let Some(s) = dd.structure {
                    for t in s.templates() {
                        let _ = (t.decode_target_indications().count(), t.frame_diffs().count(), t.chain_diffs().count());
                    }
                    let _ = (s.decode_target_protected_by().count(), s.resolutions().count());
                }
            }
            if let Ok(out) = d.push(RtpPayload { sequence_number: seq, timestamp: ts, marker: *marker, payload }) {
                if let Some(f) = out.frame {
                    // A temporal delimiter, then OBUs that all have a size field.
                    prop_assert!(f.data.len() <= 300 && f.data.starts_with(&TD));
                    for o in Obus::new(f.data) {
                        prop_assert!(o.unwrap().header.has_size_field);
                    }
                }
            }
        }
    }

    #[test]
    fn dependency_structures_read_back(
        offset in 0u8..64,
        targets in 1u32..=32,
        templates in prop::collection::vec(any_template(), 1..20),
        chain_seed: u32,
        resolutions: bool,
        dti_seed: u64,
    ) {
        let chains = chain_seed % (targets + 1);
        let specs: Vec<TemplateSpec> = templates
            .iter()
            .enumerate()
            .map(|(i, (idc, fdiffs))| TemplateSpec {
                next_layer_idc: *idc,
                dtis: (0..targets).map(|dt| dti_seed.rotate_left(i as u32 * 7 + dt) & 3).collect(),
                fdiffs: fdiffs.clone(),
                chain_fdiffs: (0..chains).map(|c| ((i as u32 + c) % 16) as u8).collect(),
            })
            .collect();
        let mut layers = vec![(0u8, 0u8)];
        for t in &specs[..specs.len() - 1] {
            let (s, tid) = *layers.last().unwrap();
            layers.push(match t.next_layer_idc { 1 => (s, tid + 1), 2 => (s + 1, 0), _ => (s, tid) });
        }
        let spatial_layers = usize::from(layers.last().unwrap().0) + 1;
        let sizes: Vec<(u16, u16)> = (0..spatial_layers).map(|s| (160 << s.min(8), 90 << s.min(8))).collect();
        let bytes = structure_bytes(offset, offset, targets, &specs, chains, resolutions.then_some(&sizes[..]), None);
        let d = DependencyDescriptor::parse(&bytes).unwrap();
        let s = d.structure.unwrap();
        prop_assert_eq!((s.template_id_offset, u32::from(s.decode_targets), usize::from(s.templates), u32::from(s.chains)), (offset, targets, specs.len(), chains));
        for ((t, spec), layer) in s.templates().zip(&specs).zip(&layers) {
            prop_assert_eq!((t.layer.spatial_id, t.layer.temporal_id), *layer);
            prop_assert_eq!(t.decode_target_indications().count(), targets as usize);
            prop_assert_eq!(t.frame_diffs().collect::<Vec<_>>(), spec.fdiffs.clone());
            prop_assert_eq!(t.chain_diffs().collect::<Vec<_>>(), spec.chain_fdiffs.clone());
        }
        let protected: Vec<u8> = (0..if chains > 0 { targets } else { 0 }).map(|dt| (dt % chains.max(1)) as u8).collect();
        prop_assert_eq!(s.decode_target_protected_by().collect::<Vec<_>>(), protected);
        let expected_sizes: Vec<(u32, u32)> = if resolutions { sizes.iter().map(|&(w, h)| (u32::from(w), u32::from(h))).collect() } else { vec![] };
        prop_assert_eq!(s.resolutions().collect::<Vec<_>>(), expected_sizes);
        let known = DependencyStructure::from(&s);
        for (i, layer) in layers.iter().enumerate() {
            let id = (offset + i as u8) % 64;
            prop_assert_eq!(known.layer(id).map(|l| (l.spatial_id, l.temporal_id)), Some(*layer));
        }
    }
}
