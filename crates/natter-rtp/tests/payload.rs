//! RTP payload formats: byte layouts written from the field definitions
//! of RFC 7741 (VP8), RFC 6184 (H.264) and RFC 7587 (Opus), round trips
//! through packetizer and depacketizer for many frame sizes and payload
//! budgets, loss and wrap-around handling, SPS parsing, and property
//! tests that arbitrary packets never panic a depacketizer.

use natter_rtp::payload::*;
use natter_rtp::{RtpHeader, RtpPacket, RtpWriter};
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// One packet as the sender produced it.
#[derive(Clone, Debug)]
struct Sent {
    seq: u16,
    ts: u32,
    marker: bool,
    payload: Vec<u8>,
}

impl Sent {
    fn rtp(&self) -> RtpPayload<'_> {
        RtpPayload {
            sequence_number: self.seq,
            timestamp: self.ts,
            marker: self.marker,
            payload: &self.payload,
        }
    }
}

fn bytes(chunk: &PayloadChunk<'_>) -> Vec<u8> {
    let mut v = vec![0u8; chunk.len()];
    assert_eq!(chunk.write_to(&mut v).unwrap(), chunk.len());
    v
}

/// Numbers the chunks of each frame into packets, 3000 ticks apart.
fn number(frames: Vec<Vec<PayloadChunk<'_>>>, seq0: u16, ts0: u32) -> Vec<Sent> {
    let mut seq = seq0;
    let mut out = Vec::new();
    for (i, chunks) in frames.into_iter().enumerate() {
        for c in chunks {
            out.push(Sent {
                seq,
                ts: ts0.wrapping_add(3000 * i as u32),
                marker: c.marker(),
                payload: bytes(&c),
            });
            seq = seq.wrapping_add(1);
        }
    }
    out
}

/// What a depacketizer made of a stream.
#[derive(Debug, Default)]
struct Received {
    frames: Vec<(u32, Vec<u8>, bool)>,
    dropped: u32,
    keyframe_requests: usize,
}

fn receive_vp8(d: &mut Vp8Depacketizer, packets: &[Sent]) -> Received {
    let mut r = Received::default();
    for p in packets {
        let out = d.push(p.rtp()).unwrap();
        r.dropped += out.frames_dropped;
        r.keyframe_requests += usize::from(out.keyframe_needed);
        if let Some(f) = out.frame {
            r.frames.push((f.timestamp, f.data.to_vec(), f.header.keyframe));
        }
    }
    r
}

fn receive_h264(d: &mut H264Depacketizer, packets: &[Sent]) -> Received {
    let mut r = Received::default();
    for p in packets {
        let out = d.push(p.rtp()).unwrap();
        r.dropped += out.frames_dropped;
        r.keyframe_requests += usize::from(out.keyframe_needed);
        if let Some(f) = out.frame {
            r.frames.push((f.timestamp, f.data.to_vec(), f.idr));
        }
    }
    r
}

/// RFC 6386 §9.1: a keyframe's 10-byte header, then `body`, whose first
/// `first_partition` bytes are the first partition.
fn vp8_keyframe(width: u16, height: u16, first_partition: u32, body: &[u8]) -> Vec<u8> {
    let tag = first_partition << 5 | 1 << 4; // show_frame, version 0, P = 0
    let mut f = tag.to_le_bytes()[..3].to_vec();
    f.extend_from_slice(&[0x9D, 0x01, 0x2A]);
    f.extend_from_slice(&width.to_le_bytes());
    f.extend_from_slice(&height.to_le_bytes());
    f.extend_from_slice(body);
    f
}

/// RFC 6386 §9.1: an inter frame's 3-byte tag, then `body`.
fn vp8_interframe(first_partition: u32, body: &[u8]) -> Vec<u8> {
    let tag = first_partition << 5 | 1 << 4 | 1;
    let mut f = tag.to_le_bytes()[..3].to_vec();
    f.extend_from_slice(body);
    f
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn vp8_chunks<'f>(frame: &'f [u8], info: &Vp8PictureInfo, max: usize) -> Vec<PayloadChunk<'f>> {
    Vp8Packetizer::new(frame, info, max).unwrap().collect()
}

fn h264_chunks(au: &[u8], max: usize) -> Vec<PayloadChunk<'_>> {
    H264Packetizer::new(NalUnits::annex_b(au).unwrap(), max)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// An Annex B access unit with 4-byte start codes.
fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(n);
    }
    v
}

fn nal(header: u8, len: usize, seed: u8) -> Vec<u8> {
    // Non-zero content: no start code emulation, no trailing zero.
    let mut v = vec![header];
    v.extend((0..len.saturating_sub(1)).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1));
    v
}

/// Writes RBSP bits for SPS test vectors, ITU-T H.264 §7.2 and §9.1.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    cur: u8,
    n: u8,
}

impl Bits {
    fn bit(&mut self, b: bool) {
        self.cur = self.cur << 1 | u8::from(b);
        self.n += 1;
        if self.n == 8 {
            self.bytes.push(self.cur);
            self.cur = 0;
            self.n = 0;
        }
    }

    fn bits(&mut self, v: u64, n: u32) {
        for i in (0..n).rev() {
            self.bit(v >> i & 1 != 0);
        }
    }

    fn ue(&mut self, v: u32) {
        let v1 = u64::from(v) + 1;
        let len = 64 - v1.leading_zeros();
        self.bits(0, len - 1);
        self.bits(v1, len);
    }

    fn se(&mut self, v: i32) {
        self.ue(if v > 0 { 2 * v as u32 - 1 } else { 2 * v.unsigned_abs() });
    }

    /// rbsp_trailing_bits, then emulation prevention (§7.4.1).
    fn into_nal(mut self, header: u8) -> Vec<u8> {
        self.bit(true);
        while self.n != 0 {
            self.bit(false);
        }
        let mut out = vec![header];
        let mut zeros = 0;
        for b in self.bytes {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }
}

#[derive(Clone, Copy, Debug)]
struct SpsFields {
    profile_idc: u8,
    constraint: u8,
    level_idc: u8,
    id: u32,
    chroma_format_idc: u32,
    separate_colour_plane: bool,
    scaling_lists: bool,
    poc_type: u32,
    width_mbs: u32,
    height_map_units: u32,
    frame_mbs_only: bool,
    crop: Option<(u32, u32, u32, u32)>,
}

impl SpsFields {
    fn baseline(width_mbs: u32, height_mbs: u32) -> Self {
        SpsFields {
            profile_idc: 66,
            constraint: 0xC0,
            level_idc: 31,
            id: 0,
            chroma_format_idc: 1,
            separate_colour_plane: false,
            scaling_lists: false,
            poc_type: 2,
            width_mbs,
            height_map_units: height_mbs,
            frame_mbs_only: true,
            crop: None,
        }
    }

    fn high(self) -> Self {
        SpsFields {
            profile_idc: 100,
            constraint: 0,
            level_idc: 40,
            ..self
        }
    }

    /// ITU-T H.264 §7.3.2.1.1, with VUI absent.
    fn encode(&self) -> Vec<u8> {
        let mut b = Bits::default();
        b.bits(u64::from(self.profile_idc), 8);
        b.bits(u64::from(self.constraint), 8);
        b.bits(u64::from(self.level_idc), 8);
        b.ue(self.id);
        if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&self.profile_idc) {
            b.ue(self.chroma_format_idc);
            if self.chroma_format_idc == 3 {
                b.bit(self.separate_colour_plane);
            }
            b.ue(0); // bit_depth_luma_minus8
            b.ue(2); // bit_depth_chroma_minus8
            b.bit(false);
            b.bit(self.scaling_lists);
            if self.scaling_lists {
                let lists = if self.chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    // Lists 0 and 6 explicit, ending early with a zero
                    // nextScale; list 1 explicit to the end; others absent.
                    match i {
                        0 | 6 => {
                            b.bit(true);
                            b.se(5);
                            b.se(-13); // nextScale 0: the rest repeat
                        }
                        1 => {
                            b.bit(true);
                            for j in 0..16 {
                                b.se(if j % 2 == 0 { 3 } else { -2 });
                            }
                        }
                        _ => b.bit(false),
                    }
                }
            }
        }
        b.ue(4); // log2_max_frame_num_minus4
        b.ue(self.poc_type);
        match self.poc_type {
            0 => b.ue(2),
            1 => {
                b.bit(false);
                b.se(-3);
                b.se(7);
                b.ue(3);
                for v in [1, -1, 2] {
                    b.se(v);
                }
            }
            _ => {}
        }
        b.ue(1); // max_num_ref_frames
        b.bit(false);
        b.ue(self.width_mbs - 1);
        b.ue(self.height_map_units - 1);
        b.bit(self.frame_mbs_only);
        if !self.frame_mbs_only {
            b.bit(true);
        }
        b.bit(true);
        b.bit(self.crop.is_some());
        if let Some((l, r, t, bo)) = self.crop {
            for v in [l, r, t, bo] {
                b.ue(v);
            }
        }
        b.bit(false); // vui_parameters_present_flag
        b.into_nal(0x67)
    }

    /// §7.4.2.1.1, computed independently of the parser.
    fn size(&self) -> (u32, u32) {
        let fields = if self.frame_mbs_only { 1 } else { 2 };
        let (sub_w, sub_h) = match (self.separate_colour_plane, self.chroma_format_idc) {
            (false, 1) => (2, 2),
            (false, 2) => (2, 1),
            _ => (1, 1),
        };
        let mono = self.separate_colour_plane || self.chroma_format_idc == 0;
        let (ux, uy) = if mono { (1, fields) } else { (sub_w, sub_h * fields) };
        let (l, r, t, b) = self.crop.unwrap_or_default();
        (
            self.width_mbs * 16 - ux * (l + r),
            fields * self.height_map_units * 16 - uy * (t + b),
        )
    }
}

// ------------------------------------------------------- VP8 descriptor

/// RFC 7741 §4.2: without optional fields the descriptor is one octet.
#[test]
fn vp8_descriptor_minimal_layout() {
    let d = Vp8Descriptor {
        start_of_partition: true,
        ..Default::default()
    };
    let mut buf = [0u8; 6];
    assert_eq!(d.encode(&mut buf), Ok(1));
    assert_eq!(buf[0], 0x10);
    assert_eq!(d.encoded_len(), 1);
    let (parsed, data) = Vp8Descriptor::parse(&[0x10, 0xAB]).unwrap();
    assert_eq!(parsed, d);
    assert_eq!(data, [0xAB]);
}

/// RFC 7741 §4.2: every optional field, with a 15-bit PictureID (M = 1).
#[test]
fn vp8_descriptor_full_layout() {
    let d = Vp8Descriptor {
        picture: Vp8PictureInfo {
            non_reference: true,
            picture_id: Some(Vp8PictureId::Long(0x1234)),
            tl0_pic_idx: Some(0x56),
            temporal_layer: Some(Vp8TemporalLayer {
                tid: 2,
                layer_sync: true,
            }),
            key_idx: Some(0x11),
        },
        start_of_partition: true,
        partition_index: 2,
    };
    // X|R|N|S|R|PID = 1 0 1 1 0 010; I L T K = 1111; M + 15 bits; TL0PICIDX;
    // TID = 10, Y = 1, KEYIDX = 10001.
    let expected = [0xB2, 0xF0, 0x92, 0x34, 0x56, 0xB1];
    let mut buf = [0u8; 8];
    assert_eq!(d.encode(&mut buf), Ok(6));
    assert_eq!(buf[..6], expected);
    let mut payload = expected.to_vec();
    payload.push(0xEE);
    let (parsed, data) = Vp8Descriptor::parse(&payload).unwrap();
    assert_eq!(parsed, d);
    assert_eq!(data, [0xEE]);
}

/// RFC 7741 §4.2: a 7-bit PictureID (M = 0), and K without T: TID and
/// Y are then not meaningful.
#[test]
fn vp8_descriptor_short_picture_id_and_keyidx_alone() {
    let payload = [0x90, 0x90, 0x05, 0xC3, 0x00];
    let (d, data) = Vp8Descriptor::parse(&payload).unwrap();
    assert_eq!(d.picture.picture_id, Some(Vp8PictureId::Short(5)));
    assert_eq!(d.picture.temporal_layer, None);
    assert_eq!(d.picture.key_idx, Some(3));
    assert!(d.start_of_partition && !d.picture.non_reference);
    assert_eq!(data, [0x00]);
    let mut buf = [0u8; 6];
    assert_eq!(d.encode(&mut buf), Ok(4));
    assert_eq!(buf[..4], [0x90, 0x90, 0x05, 0x03]);
}

#[test]
fn vp8_descriptor_truncations_are_typed_errors() {
    let cases: [(&[u8], &str); 6] = [
        (&[], "first octet"),
        (&[0x80], "extension octet"),
        (&[0x80, 0x80], "PictureID"),
        (&[0x80, 0x80, 0x80], "PictureID"),
        (&[0x80, 0x40], "TL0PICIDX"),
        (&[0x80, 0x10], "TID/Y/KEYIDX octet"),
    ];
    for (payload, field) in cases {
        assert_eq!(
            Vp8Descriptor::parse(payload),
            Err(PayloadError::Vp8DescriptorTruncated {
                field,
                len: payload.len()
            })
        );
    }
    assert_eq!(Vp8Descriptor::parse(&[0x10]), Err(PayloadError::Vp8NoData { len: 1 }));
    assert_eq!(
        Vp8Descriptor::parse(&[0x80, 0x80, 0x01]),
        Err(PayloadError::Vp8NoData { len: 3 })
    );
}

#[test]
fn vp8_descriptor_refuses_out_of_range_fields() {
    let mut buf = [0u8; 6];
    let pictures = [
        Vp8PictureInfo {
            picture_id: Some(Vp8PictureId::Short(128)),
            ..Default::default()
        },
        Vp8PictureInfo {
            picture_id: Some(Vp8PictureId::Long(0x8000)),
            ..Default::default()
        },
        Vp8PictureInfo {
            temporal_layer: Some(Vp8TemporalLayer {
                tid: 4,
                layer_sync: false,
            }),
            ..Default::default()
        },
        Vp8PictureInfo {
            key_idx: Some(32),
            ..Default::default()
        },
    ];
    for picture in pictures {
        let d = Vp8Descriptor {
            picture,
            ..Default::default()
        };
        assert!(matches!(d.encode(&mut buf), Err(PayloadError::InvalidInput { .. })));
    }
    let d = Vp8Descriptor {
        partition_index: 8,
        ..Default::default()
    };
    assert!(matches!(d.encode(&mut buf), Err(PayloadError::InvalidInput { .. })));
    let d = Vp8Descriptor {
        picture: pictures_long(),
        ..Default::default()
    };
    assert_eq!(
        d.encode(&mut buf[..3]),
        Err(PayloadError::BufferTooSmall {
            needed: 4,
            available: 3
        })
    );
}

fn pictures_long() -> Vp8PictureInfo {
    Vp8PictureInfo {
        picture_id: Some(Vp8PictureId::Long(300)),
        ..Default::default()
    }
}

#[test]
fn vp8_picture_id_wraps_within_its_width() {
    assert_eq!(Vp8PictureId::Short(127).next(), Vp8PictureId::Short(0));
    assert_eq!(Vp8PictureId::Long(0x7FFF).next(), Vp8PictureId::Long(0));
    assert_eq!(Vp8PictureId::Long(41).next(), Vp8PictureId::Long(42));
}

// --------------------------------------------------- VP8 frame header

/// RFC 6386 §9.1: a 640x480 keyframe, and the 2-bit scale fields.
#[test]
fn vp8_keyframe_header_gives_width_and_height() {
    let frame = vp8_keyframe(640, 480, 4, &[1, 2, 3, 4, 5]);
    assert_eq!(
        frame[..10],
        [0x90, 0x00, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01]
    );
    let h = Vp8FrameHeader::parse(&frame).unwrap();
    assert!(h.keyframe && h.show_frame);
    assert_eq!(h.version, 0);
    assert_eq!(h.first_partition_size, 4);
    assert_eq!(
        h.dimensions,
        Some(Vp8Dimensions {
            width: 640,
            horizontal_scale: 0,
            height: 480,
            vertical_scale: 0
        })
    );

    let scaled = vp8_keyframe(0x4000 | 1280, 0xC000 | 720, 0, &[]);
    let d = Vp8FrameHeader::parse(&scaled).unwrap().dimensions.unwrap();
    assert_eq!(
        (d.width, d.horizontal_scale, d.height, d.vertical_scale),
        (1280, 1, 720, 3)
    );
}

#[test]
fn vp8_interframe_header_has_no_dimensions() {
    let h = Vp8FrameHeader::parse(&vp8_interframe(2, &[9, 9, 9])).unwrap();
    assert!(!h.keyframe);
    assert_eq!(h.dimensions, None);
    assert_eq!(h.first_partition_size, 2);
}

#[test]
fn vp8_frame_header_errors() {
    assert_eq!(
        Vp8FrameHeader::parse(&[0x01, 0x00]),
        Err(PayloadError::Vp8FrameTooShort { len: 2, needed: 3 })
    );
    assert_eq!(
        Vp8FrameHeader::parse(&vp8_keyframe(640, 480, 0, &[])[..9]),
        Err(PayloadError::Vp8FrameTooShort { len: 9, needed: 10 })
    );
    let mut bad = vp8_keyframe(640, 480, 0, &[]);
    bad[4] = 0x02;
    assert_eq!(
        Vp8FrameHeader::parse(&bad),
        Err(PayloadError::Vp8StartCode([0x9D, 0x02, 0x2A]))
    );
    assert_eq!(
        Vp8FrameHeader::parse(&vp8_interframe(4, &[1, 2, 3])),
        Err(PayloadError::Vp8FirstPartition { size: 4, available: 3 })
    );
}

// ---------------------------------------------------- VP8 packetizer

/// RFC 7741 §4.2, §4.1: S only on the first packet, PID 0, the marker
/// on the last; a 14-byte frame with 4 bytes of room per packet is cut
/// 4, 4, 3, 3.
#[test]
fn vp8_packetizer_known_layout() {
    let frame = vp8_keyframe(2, 2, 1, &[0xA0, 0xA1, 0xA2, 0xA3]);
    let chunks = vp8_chunks(&frame, &pictures_long(), 8);
    let payloads: Vec<Vec<u8>> = chunks.iter().map(bytes).collect();
    let markers: Vec<bool> = chunks.iter().map(|c| c.marker()).collect();
    assert_eq!(markers, [false, false, false, true]);
    // PictureID 300 = 0x12C, written with M set.
    assert_eq!(payloads[0], [0x90, 0x80, 0x81, 0x2C, 0x30, 0x00, 0x00, 0x9D]);
    assert_eq!(payloads[1], [0x80, 0x80, 0x81, 0x2C, 0x01, 0x2A, 0x02, 0x00]);
    assert_eq!(payloads[2], [0x80, 0x80, 0x81, 0x2C, 0x02, 0x00, 0xA0]);
    assert_eq!(payloads[3], [0x80, 0x80, 0x81, 0x2C, 0xA1, 0xA2, 0xA3]);
    assert!(
        Vp8Packetizer::new(&frame, &pictures_long(), 8)
            .unwrap()
            .frame_header()
            .keyframe
    );
}

#[test]
fn vp8_packetizer_errors() {
    let key = vp8_keyframe(2, 2, 0, &[]);
    let inter = vp8_interframe(0, &[1]);
    let none = Vp8PictureInfo::default();
    assert_eq!(
        Vp8Packetizer::new(&[], &none, 100).unwrap_err(),
        PayloadError::EmptyFrame { codec: "VP8" }
    );
    assert_eq!(
        Vp8Packetizer::new(&inter, &pictures_long(), 4).unwrap_err(),
        PayloadError::MaxPayloadTooSmall {
            codec: "VP8",
            needed: 5,
            max: 4
        }
    );
    assert!(Vp8Packetizer::new(&inter, &pictures_long(), 5).is_ok());
    let non_ref = Vp8PictureInfo {
        non_reference: true,
        ..none
    };
    assert!(matches!(
        Vp8Packetizer::new(&key, &non_ref, 100),
        Err(PayloadError::InvalidInput { .. })
    ));
    assert!(Vp8Packetizer::new(&inter, &non_ref, 100).is_ok());
    assert!(matches!(
        Vp8Packetizer::new(&[0x00, 0x00], &none, 100),
        Err(PayloadError::Vp8FrameTooShort { .. })
    ));
    let chunk = vp8_chunks(&inter, &none, 100).remove(0);
    assert_eq!(
        chunk.write_to(&mut [0u8; 4]),
        Err(PayloadError::BufferTooSmall {
            needed: 5,
            available: 4
        })
    );
}

/// Packetizer into RtpWriter, parsed back by RtpPacket, then
/// depacketized: the frame survives and the marker is where it belongs.
#[test]
fn vp8_through_rtp_packets() {
    let frame = vp8_keyframe(640, 480, 100, &pattern(3000, 1));
    let info = pictures_long();
    let mut packets = Vec::new();
    for (i, chunk) in Vp8Packetizer::new(&frame, &info, 1188).unwrap().enumerate() {
        let mut buf = [0u8; 1200];
        let header = RtpHeader {
            marker: chunk.marker(),
            payload_type: 96,
            sequence_number: 65534u16.wrapping_add(i as u16),
            timestamp: 90_000,
            ssrc: 1,
            ..Default::default()
        };
        let n = RtpWriter::new(&mut buf, &header).unwrap().finish_header().unwrap();
        let len = n + chunk.write_to(&mut buf[n..]).unwrap();
        packets.push(buf[..len].to_vec());
    }
    assert_eq!(packets.len(), 3);
    let mut d = Vp8Depacketizer::new();
    let mut got = None;
    for p in &packets {
        let pkt = RtpPacket::parse(p).unwrap();
        assert!(pkt.payload().len() <= 1188);
        let out = d.push((&pkt).into()).unwrap();
        if let Some(f) = out.frame {
            assert_eq!(f.picture, info);
            assert_eq!(f.header.dimensions.map(|d| (d.width, d.height)), Some((640, 480)));
            got = Some(f.data.to_vec());
        }
    }
    assert_eq!(got, Some(frame));
    assert!(!d.awaiting_keyframe());
}

#[test]
fn vp8_round_trips_many_sizes_and_budgets() {
    let infos = [
        Vp8PictureInfo::default(),
        pictures_long(),
        Vp8PictureInfo {
            picture_id: Some(Vp8PictureId::Short(9)),
            tl0_pic_idx: Some(3),
            temporal_layer: Some(Vp8TemporalLayer {
                tid: 1,
                layer_sync: false,
            }),
            key_idx: Some(4),
            non_reference: false,
        },
    ];
    for info in infos {
        let desc = Vp8Descriptor {
            picture: info,
            ..Default::default()
        }
        .encoded_len();
        for size in [0usize, 1, 2, 7, 100, 1189, 1190, 1191, 4000, 20_000] {
            let frame = vp8_keyframe(320, 240, 0, &pattern(size, size as u8));
            for max in [desc + 1, desc + 2, 17, 100, 1200, 65_000] {
                let chunks = vp8_chunks(&frame, &info, max);
                let bodies: Vec<usize> = chunks.iter().map(|c| c.len() - desc).collect();
                assert!(chunks.iter().all(|c| c.len() <= max));
                assert!(
                    bodies.iter().max().unwrap() - bodies.iter().min().unwrap() <= 1,
                    "balanced"
                );
                assert_eq!(chunks.len(), frame.len().div_ceil(max - desc));
                let packets = number(vec![chunks], 65_500, 7);
                let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
                assert_eq!(r.frames, [(7, frame.clone(), true)], "size {size} max {max}");
                assert_eq!((r.dropped, r.keyframe_requests), (0, 0));
            }
        }
    }
}

// -------------------------------------------------- VP8 depacketizer

/// Five frames of three packets; frame `i` is a keyframe when i == 0.
fn vp8_stream(info: impl Fn(usize) -> Vp8PictureInfo, seq0: u16) -> (Vec<Vec<u8>>, Vec<Sent>) {
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            if i == 0 {
                vp8_keyframe(640, 480, 10, &pattern(50, 0))
            } else {
                vp8_interframe(10, &pattern(57, i as u8))
            }
        })
        .collect();
    let infos: Vec<Vp8PictureInfo> = (0..5).map(&info).collect();
    let chunks = frames.iter().zip(&infos).map(|(f, i)| vp8_chunks(f, i, 26)).collect();
    let packets = number(chunks, seq0, 1000);
    assert_eq!(packets.len(), 15);
    (frames, packets)
}

#[test]
fn vp8_lost_packet_drops_exactly_its_frame() {
    let (frames, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 100);
    packets.remove(7); // the middle packet of frame 2
    let mut d = Vp8Depacketizer::new();
    let r = receive_vp8(&mut d, &packets);
    let got: Vec<&Vec<u8>> = r.frames.iter().map(|f| &f.1).collect();
    assert_eq!(got, [&frames[0], &frames[1], &frames[3], &frames[4]]);
    assert_eq!(r.frames[2].0, 1000 + 3 * 3000);
    assert_eq!(r.dropped, 1);
    // The lost frame was a reference frame.
    assert_eq!(r.keyframe_requests, 1);
    assert!(d.awaiting_keyframe());
}

#[test]
fn vp8_lost_marker_packet_drops_its_frame_only() {
    let (frames, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 100);
    packets.remove(8); // the last packet of frame 2
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
    let got: Vec<&Vec<u8>> = r.frames.iter().map(|f| &f.1).collect();
    assert_eq!(got, [&frames[0], &frames[1], &frames[3], &frames[4]]);
    assert_eq!(r.dropped, 1);
}

#[test]
fn vp8_lost_first_packet_drops_its_frame_only() {
    let (frames, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 100);
    packets.remove(6); // the first packet of frame 2 (S = 1)
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
    let got: Vec<&Vec<u8>> = r.frames.iter().map(|f| &f.1).collect();
    assert_eq!(got, [&frames[0], &frames[1], &frames[3], &frames[4]]);
    assert_eq!(r.dropped, 1);
    assert_eq!(r.keyframe_requests, 1);
}

/// RFC 7741 §4.2: N = 1 frames may be lost without a keyframe, when the
/// gap is inside the frame or the PictureID runs on after it.
#[test]
fn vp8_loss_of_non_reference_frame_needs_no_keyframe() {
    let info = |i: usize| Vp8PictureInfo {
        non_reference: i == 2,
        picture_id: Some(Vp8PictureId::Long((0x7FFE + i as u16) & 0x7FFF)),
        ..Default::default()
    };
    for lost in [7, 8] {
        let (frames, mut packets) = vp8_stream(info, 100);
        packets.remove(lost);
        let mut d = Vp8Depacketizer::new();
        let r = receive_vp8(&mut d, &packets);
        assert_eq!(r.frames.len(), 4);
        assert_eq!(r.frames[2].1, frames[3]);
        assert_eq!((r.dropped, r.keyframe_requests), (1, 0), "lost packet {lost}");
        assert!(!d.awaiting_keyframe());
    }
    // Losing a whole frame breaks the PictureID run: a keyframe is needed.
    let (_, mut packets) = vp8_stream(info, 100);
    packets.drain(6..9);
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
    assert_eq!((r.frames.len(), r.dropped, r.keyframe_requests), (4, 0, 1));
}

#[test]
fn vp8_whole_frame_lost_without_picture_ids_needs_keyframe() {
    let (_, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 100);
    packets.drain(6..9);
    let mut d = Vp8Depacketizer::new();
    let r = receive_vp8(&mut d, &packets);
    assert_eq!((r.frames.len(), r.dropped, r.keyframe_requests), (4, 0, 1));
    assert!(d.awaiting_keyframe());
}

#[test]
fn vp8_keyframe_needed_once_per_break_until_a_keyframe() {
    let mut d = Vp8Depacketizer::new();
    assert!(d.awaiting_keyframe());
    let inter = vp8_interframe(0, &[1, 2, 3]);
    let key = vp8_keyframe(16, 16, 0, &[4]);
    let none = Vp8PictureInfo::default();
    let frames: Vec<Vec<PayloadChunk<'_>>> = [&inter, &inter, &key, &inter, &inter, &inter]
        .iter()
        .map(|f| vp8_chunks(f, &none, 100))
        .collect();
    let packets = number(frames, 0, 0);
    let asks: Vec<bool> = packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4) // lose frame 4
        .map(|(_, p)| d.push(p.rtp()).unwrap().keyframe_needed)
        .collect();
    // A delta frame first: ask; again no; the keyframe settles it; the
    // loss of frame 4 asks once.
    assert_eq!(asks, [true, false, false, false, true]);
    assert!(d.awaiting_keyframe());
}

#[test]
fn vp8_sequence_numbers_wrap() {
    let (frames, packets) = vp8_stream(|_| Vp8PictureInfo::default(), 65_530);
    assert_eq!(packets[6].seq, 0);
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
    assert_eq!(r.frames.iter().map(|f| f.1.clone()).collect::<Vec<_>>(), frames);
    assert_eq!(r.dropped, 0);
}

#[test]
fn vp8_duplicates_late_packets_and_padding_are_ignored() {
    let (frames, packets) = vp8_stream(|_| Vp8PictureInfo::default(), 10);
    let mut stream: Vec<Sent> = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        // Frames 2 to 4 move one sequence number on, for the padding.
        let mut p = p.clone();
        p.seq += u16::from(i >= 6);
        stream.push(p);
        match i {
            4 => {
                stream.push(packets[4].clone()); // duplicate
                stream.push(packets[1].clone()); // late
            }
            5 => stream.push(Sent {
                seq: 16,
                ts: 4000,
                marker: false,
                payload: Vec::new(),
            }),
            _ => {}
        }
    }
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &stream);
    assert_eq!(r.frames.iter().map(|f| f.1.clone()).collect::<Vec<_>>(), frames);
    assert_eq!((r.dropped, r.keyframe_requests), (0, 0));
}

#[test]
fn vp8_malformed_packet_is_an_error_and_loses_its_frame() {
    let (frames, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 10);
    packets[4].payload = vec![0x80]; // truncated descriptor, frame 1
    let mut d = Vp8Depacketizer::new();
    let mut got = Vec::new();
    let mut dropped = 0;
    for (i, p) in packets.iter().enumerate() {
        match d.push(p.rtp()) {
            Ok(out) => {
                dropped += out.frames_dropped;
                got.extend(out.frame.map(|f| f.data.to_vec()));
            }
            Err(e) => {
                assert_eq!(i, 4);
                assert!(matches!(e, PayloadError::Vp8DescriptorTruncated { .. }));
            }
        }
    }
    assert_eq!(
        got,
        [
            frames[0].clone(),
            frames[2].clone(),
            frames[3].clone(),
            frames[4].clone()
        ]
    );
    assert_eq!(dropped, 1);
}

#[test]
fn vp8_frame_without_marker_is_dropped_when_the_timestamp_moves_on() {
    let (frames, mut packets) = vp8_stream(|_| Vp8PictureInfo::default(), 10);
    packets[5].marker = false; // frame 1 never ends
    let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
    assert_eq!(r.frames.len(), 4);
    assert_eq!(r.frames[1].1, frames[2]);
    assert_eq!(r.dropped, 1);
}

#[test]
fn vp8_frame_over_the_size_cap_is_dropped() {
    let big = vp8_keyframe(64, 64, 0, &pattern(500, 3));
    let small = vp8_keyframe(64, 64, 0, &pattern(100, 4));
    let none = Vp8PictureInfo::default();
    let packets = number(vec![vp8_chunks(&big, &none, 100), vp8_chunks(&small, &none, 100)], 0, 0);
    let r = receive_vp8(&mut Vp8Depacketizer::with_max_frame_size(200), &packets);
    assert_eq!(r.frames.len(), 1);
    assert_eq!(r.frames[0].1, small);
    assert_eq!(r.dropped, 1);
}

/// RFC 7741 §4.4: a frame sent one partition at a time, each starting
/// with S = 1 and its own PID, is one frame.
#[test]
fn vp8_partitioned_frame_reassembles() {
    let frame = vp8_keyframe(32, 32, 6, &pattern(20, 5));
    let parts: [(&[u8], u8, bool); 3] = [
        (&frame[..16], 0, true),
        (&frame[16..20], 1, true),
        (&frame[20..], 1, false),
    ];
    let mut d = Vp8Depacketizer::new();
    let mut got = None;
    for (i, (part, pid, start)) in parts.iter().enumerate() {
        let mut payload = vec![u8::from(*start) << 4 | pid];
        payload.extend_from_slice(part);
        let out = d
            .push(RtpPayload {
                sequence_number: i as u16,
                timestamp: 5,
                marker: i == 2,
                payload: &payload,
            })
            .unwrap();
        got = out.frame.map(|f| f.data.to_vec()).or(got);
    }
    assert_eq!(got, Some(frame));
}

// ------------------------------------------------------ H.264 splitting

#[test]
fn annex_b_splits_on_both_start_codes() {
    let au = [
        0, 0, 0, 1, 0x67, 1, 2, // SPS, 4-byte start code
        0, 0, 1, 0x68, 3, // PPS, 3-byte start code
        0, 0, 0, 0, 1, 0x65, 4, 0, 5, 0, 0, // trailing_zero_8bits before, trailing zeros after
    ];
    let nals: Vec<&[u8]> = NalUnits::annex_b(&au).unwrap().collect();
    assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 0, 5]]);
    // Leading zeros are allowed; empty NAL units are skipped.
    let au = [0, 0, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0, 0, 1, 0x41, 9];
    let nals: Vec<&[u8]> = NalUnits::annex_b(&au).unwrap().collect();
    assert_eq!(nals, [&[0x09, 0xF0][..], &[0x41, 9]]);
    for bad in [
        &[][..],
        &[0, 0, 0],
        &[0, 1, 0x65],
        &[7, 0, 0, 1, 0x65],
        &[0, 0, 2, 0x65],
    ] {
        assert_eq!(NalUnits::annex_b(bad).unwrap_err(), PayloadError::AnnexBStartCode);
    }
    assert_eq!(NalUnits::annex_b(&[0, 0, 1]).unwrap().count(), 0);
}

#[test]
fn avcc_splits_length_prefixed_units() {
    let data = [0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0x68];
    let nals: Vec<&[u8]> = NalUnits::avcc(&data, 4).unwrap().collect();
    assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68]]);
    let data = [2, 0x65, 7, 1, 0x41];
    assert_eq!(NalUnits::avcc(&data, 1).unwrap().count(), 2);
    assert_eq!(
        NalUnits::avcc(&[0, 5, 0x65, 1], 2).unwrap_err(),
        PayloadError::AvccOverrun {
            offset: 0,
            declared: 7,
            available: 4
        }
    );
    assert_eq!(
        NalUnits::avcc(&[0, 1, 0x65, 0], 2).unwrap_err(),
        PayloadError::AvccOverrun {
            offset: 3,
            declared: 2,
            available: 1
        }
    );
    assert!(matches!(
        NalUnits::avcc(&data, 3),
        Err(PayloadError::InvalidInput { .. })
    ));
}

// ----------------------------------------------------- H.264 packetizer

/// RFC 6184 §5.7.1: SPS and PPS before an IDR slice go in one STAP-A,
/// F the OR and NRI the maximum of theirs; each unit after its size.
#[test]
fn h264_stap_a_of_sps_pps_and_idr() {
    let sps = SpsFields::baseline(40, 30).encode();
    let pps = [0x68, 0xCE, 0x3C, 0x80];
    let sei = [0x06, 0x05, 0x01, 0x80];
    let idr = nal(0x65, 20, 3);
    let au = annex_b(&[&sps, &pps, &sei, &idr]);
    let chunks = h264_chunks(&au, 1200);
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].marker());
    let mut expected = vec![0x78];
    for n in [&sps[..], &pps, &sei, &idr] {
        expected.extend_from_slice(&(n.len() as u16).to_be_bytes());
        expected.extend_from_slice(n);
    }
    assert_eq!(bytes(&chunks[0]), expected);

    // Units with NRI 0 and 2 only: the STAP-A header says NRI 2.
    let au = annex_b(&[&sei, &[0x48, 0x11]]);
    assert_eq!(bytes(&h264_chunks(&au, 100)[0])[0], 0x58);
}

/// The IDR slice is too big to join: SPS and PPS go in a STAP-A, the
/// IDR in FU-A fragments, the marker on the last.
#[test]
fn h264_stap_a_then_fu_a() {
    let sps = SpsFields::baseline(40, 30).encode();
    let pps = [0x68, 0xCE, 0x3C, 0x80];
    let idr = nal(0x65, 3000, 1);
    let au = annex_b(&[&sps, &pps, &idr]);
    let chunks = h264_chunks(&au, 1200);
    let payloads: Vec<Vec<u8>> = chunks.iter().map(bytes).collect();
    assert_eq!(payloads.len(), 4);
    assert_eq!(payloads[0][0], 0x78);
    assert_eq!(payloads[0].len(), 1 + 2 + sps.len() + 2 + pps.len());
    assert_eq!(payloads[1][..2], [0x7C, 0x85]);
    assert_eq!(payloads[2][..2], [0x7C, 0x05]);
    assert_eq!(payloads[3][..2], [0x7C, 0x45]);
    let fragments: Vec<u8> = payloads[1..].iter().flat_map(|p| p[2..].to_vec()).collect();
    assert_eq!(fragments, idr[1..]);
    let markers: Vec<bool> = chunks.iter().map(|c| c.marker()).collect();
    assert_eq!(markers, [false, false, false, true]);
}

/// RFC 6184 §5.8: a NAL unit that fits is sent alone; one byte more and
/// it becomes FU-A fragments with S, E and the NAL unit's F and NRI.
#[test]
fn h264_fu_a_boundaries() {
    let whole = nal(0x45, 6, 2);
    let au = annex_b(&[&whole]);
    let chunks = h264_chunks(&au, 6);
    assert_eq!(chunks.len(), 1);
    assert_eq!(bytes(&chunks[0]), whole);

    // 11 bytes, budget 6: 10 bytes after the header in 4 + 3 + 3.
    let nal11: Vec<u8> = [0x65].into_iter().chain(1..=10).collect();
    let au = annex_b(&[&nal11]);
    let chunks = h264_chunks(&au, 6);
    let payloads: Vec<Vec<u8>> = chunks.iter().map(bytes).collect();
    assert_eq!(
        payloads,
        [
            vec![0x7C, 0x85, 1, 2, 3, 4],
            vec![0x7C, 0x05, 5, 6, 7],
            vec![0x7C, 0x45, 8, 9, 10]
        ]
    );

    // The smallest budget: one byte of NAL unit per fragment.
    let au = annex_b(&[&[0x41, 0xAA, 0xBB, 0xCC]]);
    let chunks = h264_chunks(&au, 3);
    let payloads: Vec<Vec<u8>> = chunks.iter().map(bytes).collect();
    assert_eq!(payloads, [[0x5C, 0x81, 0xAA], [0x5C, 0x01, 0xBB], [0x5C, 0x41, 0xCC]]);
}

#[test]
fn h264_packetizer_errors() {
    let au = annex_b(&[&[0x65, 1]]);
    assert_eq!(
        H264Packetizer::new(NalUnits::annex_b(&au).unwrap(), 2).unwrap_err(),
        PayloadError::MaxPayloadTooSmall {
            codec: "H.264",
            needed: 3,
            max: 2
        }
    );
    assert_eq!(
        H264Packetizer::new(NalUnits::annex_b(&[0, 0, 1, 0, 0, 1]).unwrap(), 100).unwrap_err(),
        PayloadError::EmptyFrame { codec: "H.264" }
    );
    for bad in [0x18u8, 0x1C, 0x00, 0x1F, 0xE5] {
        let au = annex_b(&[&[0x67, 1], &[bad, 1, 2]]);
        let got: Vec<_> = H264Packetizer::new(NalUnits::annex_b(&au).unwrap(), 100)
            .unwrap()
            .collect();
        assert_eq!(got.len(), 2, "the good unit, then the error, then nothing");
        assert!(got[0].is_ok());
        let e = got[1].as_ref().unwrap_err();
        if bad & 0x80 != 0 {
            assert_eq!(*e, PayloadError::H264ForbiddenBit(bad));
        } else {
            assert!(matches!(e, PayloadError::H264NalType { nal_type, .. } if *nal_type == bad));
        }
    }
}

#[test]
fn h264_packetizer_takes_length_prefixed_input() {
    let sps = SpsFields::baseline(20, 15).encode();
    let idr = nal(0x65, 2500, 9);
    let mut avcc = Vec::new();
    for n in [&sps, &idr] {
        avcc.extend_from_slice(&(n.len() as u32).to_be_bytes());
        avcc.extend_from_slice(n);
    }
    let chunks: Vec<_> = H264Packetizer::new(NalUnits::avcc(&avcc, 4).unwrap(), 1000)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let packets = number(vec![chunks], 0, 0);
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames, [(0, annex_b(&[&sps, &idr]), true)]);
}

#[test]
fn h264_round_trips_many_sizes_and_budgets() {
    let sps = SpsFields::baseline(80, 45).encode();
    let pps = [0x68, 0xEE, 0x3C, 0x80];
    for size in [1usize, 2, 3, 50, 1199, 1200, 1201, 2500, 30_000] {
        let au = annex_b(&[
            &sps,
            &pps,
            &nal(0x65, size, 1),
            &nal(0x06, 3, 2),
            &nal(0x41, size / 3 + 1, 3),
        ]);
        for max in [3, 4, 5, 16, 100, 1200, 70_000] {
            let chunks = h264_chunks(&au, max);
            assert!(chunks.iter().all(|c| c.len() <= max));
            assert_eq!(chunks.iter().filter(|c| c.marker()).count(), 1);
            assert!(chunks.last().unwrap().marker());
            let packets = number(vec![chunks], 65_535, 0);
            let mut d = H264Depacketizer::new();
            let r = receive_h264(&mut d, &packets);
            assert_eq!(r.frames, [(0, au.clone(), true)], "size {size} max {max}");
            assert_eq!((r.dropped, r.keyframe_requests), (0, 0));
        }
    }
}

// --------------------------------------------------- H.264 depacketizer

#[test]
fn h264_depacketizer_reports_idr_and_sps_size() {
    let sps = SpsFields::baseline(40, 30).encode();
    let au = annex_b(&[&sps, &[0x68, 0xCE, 0x3C, 0x80], &nal(0x65, 4000, 4)]);
    let packets = number(vec![h264_chunks(&au, 1200)], 0, 0);
    let mut d = H264Depacketizer::new();
    let mut seen = false;
    for p in &packets {
        if let Some(f) = d.push(p.rtp()).unwrap().frame {
            assert!(f.idr);
            let s = f.sps.unwrap();
            assert_eq!((s.width, s.height, s.profile_idc, s.level_idc), (640, 480, 66, 31));
            assert_eq!(f.data, au);
            seen = true;
        }
    }
    assert!(seen);
}

/// Five access units: IDR (SPS, PPS, slice) then P slices with
/// first_mb_in_slice 0 (the byte after the header starts with bit 1),
/// each FU-A in three packets.
fn h264_stream(nri: impl Fn(usize) -> u8, seq0: u16) -> (Vec<Vec<u8>>, Vec<Sent>) {
    let sps = SpsFields::baseline(40, 30).encode();
    let aus: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            let header = if i == 0 { 0x65 } else { 0x01 | nri(i) << 5 };
            let mut slice = nal(header, 300, i as u8);
            slice[1] |= 0x80;
            if i == 0 {
                annex_b(&[&sps, &[0x68, 0xCE, 0x3C, 0x80], &slice])
            } else {
                annex_b(&[&slice])
            }
        })
        .collect();
    let chunks: Vec<_> = aus.iter().map(|au| h264_chunks(au, 120)).collect();
    assert!(chunks.iter().skip(1).all(|c| c.len() == 3));
    (aus.clone(), number(chunks, seq0, 0))
}

#[test]
fn h264_lost_fragment_drops_exactly_its_access_unit() {
    let (aus, mut packets) = h264_stream(|_| 2, 200);
    let first_of_2 = packets.iter().position(|p| p.ts == 6000).unwrap();
    packets.remove(first_of_2 + 1);
    let mut d = H264Depacketizer::new();
    let r = receive_h264(&mut d, &packets);
    let got: Vec<&Vec<u8>> = r.frames.iter().map(|f| &f.1).collect();
    assert_eq!(got, [&aus[0], &aus[1], &aus[3], &aus[4]]);
    assert_eq!((r.dropped, r.keyframe_requests), (1, 1));
    assert!(d.awaiting_keyframe());
}

#[test]
fn h264_lost_marker_packet_keeps_the_next_access_unit() {
    let (aus, mut packets) = h264_stream(|_| 2, 200);
    let last_of_2 = packets.iter().rposition(|p| p.ts == 6000).unwrap();
    packets.remove(last_of_2);
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    let got: Vec<&Vec<u8>> = r.frames.iter().map(|f| &f.1).collect();
    assert_eq!(got, [&aus[0], &aus[1], &aus[3], &aus[4]]);
    assert_eq!(r.dropped, 1);
}

/// After a gap, an access unit whose first packet is an IDR slice may
/// have lost its SPS and PPS: it is dropped, and a keyframe asked for.
#[test]
fn h264_gap_before_an_idr_slice_drops_it() {
    let (_, mut packets) = h264_stream(|_| 3, 0);
    let idr_au = annex_b(&[&nal(0x65, 10, 1)]);
    packets.extend(number(vec![h264_chunks(&idr_au, 120)], 100, 50_000));
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames.len(), 5);
    assert!(r.frames.iter().all(|f| f.1 != idr_au));
    assert_eq!((r.dropped, r.keyframe_requests), (1, 1));
    // Without the gap the same access unit is kept.
    let (_, mut packets) = h264_stream(|_| 3, 0);
    packets.extend(number(vec![h264_chunks(&idr_au, 120)], 16, 50_000));
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames.last().unwrap().1, idr_au);
}

/// After a gap, an SPS first proves the access unit complete. The gap
/// itself asks for a keyframe (it may have taken whole pictures); the
/// IDR that follows settles it.
#[test]
fn h264_gap_before_an_sps_keeps_the_access_unit() {
    let (aus, mut packets) = h264_stream(|_| 3, 0);
    packets.extend(number(vec![h264_chunks(&aus[0], 120)], 100, 50_000));
    let mut d = H264Depacketizer::new();
    let r = receive_h264(&mut d, &packets);
    assert_eq!(r.frames.len(), 6);
    assert_eq!((r.dropped, r.keyframe_requests), (0, 1));
    assert!(!d.awaiting_keyframe());
}

#[test]
fn h264_loss_inside_non_reference_picture_needs_no_keyframe() {
    let (aus, mut packets) = h264_stream(|i| if i == 2 { 0 } else { 2 }, 10);
    let first_of_2 = packets.iter().position(|p| p.ts == 6000).unwrap();
    packets.remove(first_of_2 + 1);
    let mut d = H264Depacketizer::new();
    let r = receive_h264(&mut d, &packets);
    assert_eq!(r.frames.len(), 4);
    assert_eq!(r.frames[2].1, aus[3]);
    assert_eq!((r.dropped, r.keyframe_requests), (1, 0));
    assert!(!d.awaiting_keyframe());
}

#[test]
fn h264_fu_a_without_end_is_dropped() {
    let (aus, mut packets) = h264_stream(|_| 2, 10);
    // Frame 1's middle fragment claims to start a new NAL unit.
    let i = packets.iter().position(|p| p.ts == 3000).unwrap() + 1;
    packets[i].payload[1] |= 0x80;
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames.len(), 4);
    assert_eq!(r.frames[1].1, aus[2]);
    assert_eq!(r.dropped, 1);
    // The marker on a packet in the middle of an FU-A: dropped.
    let (_, mut packets) = h264_stream(|_| 2, 10);
    let i = packets.iter().position(|p| p.ts == 3000).unwrap();
    packets[i].marker = true;
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames.len(), 4);
}

#[test]
fn h264_sequence_numbers_wrap() {
    let (aus, packets) = h264_stream(|_| 2, 65_533);
    let r = receive_h264(&mut H264Depacketizer::new(), &packets);
    assert_eq!(r.frames.iter().map(|f| f.1.clone()).collect::<Vec<_>>(), aus);
    assert_eq!(r.dropped, 0);
}

#[test]
fn h264_malformed_payloads_are_typed_errors() {
    let mut d = H264Depacketizer::new();
    let mut push = |payload: &[u8]| {
        d.push(RtpPayload {
            sequence_number: 1,
            timestamp: 1,
            marker: true,
            payload,
        })
        .map(|_| ())
    };
    assert_eq!(push(&[0xE5, 1]), Err(PayloadError::H264ForbiddenBit(0xE5)));
    for t in [0u8, 30, 31, 25, 26, 27, 29] {
        assert!(matches!(push(&[t, 1, 2]), Err(PayloadError::H264NalType { nal_type, .. }) if nal_type == t));
    }
    assert_eq!(
        push(&[0x78, 0x00]),
        Err(PayloadError::H264StapOverrun {
            offset: 1,
            declared: 2,
            available: 1
        })
    );
    assert_eq!(
        push(&[0x78, 0x00, 0x03, 0x67, 0x42]),
        Err(PayloadError::H264StapOverrun {
            offset: 1,
            declared: 5,
            available: 4
        })
    );
    assert_eq!(
        push(&[0x78, 0x00, 0x01, 0x67, 0x00, 0x00]),
        Err(PayloadError::H264StapEmpty { offset: 4 })
    );
    assert_eq!(push(&[0x78]), Err(PayloadError::H264StapEmpty { offset: 1 }));
    assert!(matches!(
        push(&[0x78, 0x00, 0x02, 0x7C, 0x85]),
        Err(PayloadError::H264NalType { nal_type: 28, .. })
    ));
    assert!(matches!(push(&[0x7C]), Err(PayloadError::H264FuA { .. })));
    assert!(matches!(push(&[0x7C, 0xC5, 1]), Err(PayloadError::H264FuA { .. })));
    assert!(matches!(
        push(&[0x7C, 0x98, 1]),
        Err(PayloadError::H264NalType { nal_type: 24, .. })
    ));
    // A well-formed single NAL unit is fine.
    assert_eq!(push(&[0x65, 0x88]), Ok(()));
}

// ------------------------------------------------------------- H.264 SPS

#[test]
fn sps_baseline_640x480() {
    let sps = SpsFields::baseline(40, 30).encode();
    let s = H264Sps::parse(&sps).unwrap();
    assert_eq!(
        s,
        H264Sps {
            profile_idc: 66,
            constraint_flags: 0xC0,
            level_idc: 31,
            id: 0,
            chroma_format_idc: 1,
            frame_mbs_only: true,
            width: 640,
            height: 480
        }
    );
}

/// 1080p in High profile: 68 macroblock rows, 8 cropped (4 crop units
/// of 2 rows in 4:2:0), with scaling matrices and POC type 0.
#[test]
fn sps_high_1080p_with_cropping_and_scaling_lists() {
    let f = SpsFields {
        crop: Some((0, 0, 0, 4)),
        scaling_lists: true,
        poc_type: 0,
        id: 3,
        ..SpsFields::baseline(120, 68).high()
    };
    let s = H264Sps::parse(&f.encode()).unwrap();
    assert_eq!((s.width, s.height, s.profile_idc, s.id), (1920, 1080, 100, 3));
}

#[test]
fn sps_crop_units_follow_chroma_format_and_field_coding() {
    let cases = [
        // (chroma_format_idc, separate planes, frame_mbs_only, expected size)
        (0, false, true, (640 - 3, 480 - 5)),
        (1, false, true, (640 - 6, 480 - 10)),
        (2, false, true, (640 - 6, 480 - 5)),
        (3, false, true, (640 - 3, 480 - 5)),
        (3, true, true, (640 - 3, 480 - 5)),
        (1, false, false, (640 - 6, 960 - 20)),
        (0, false, false, (640 - 3, 960 - 10)),
    ];
    for (chroma, separate, frame_mbs_only, size) in cases {
        let f = SpsFields {
            chroma_format_idc: chroma,
            separate_colour_plane: separate,
            frame_mbs_only,
            scaling_lists: chroma == 3,
            poc_type: 1,
            crop: Some((1, 2, 2, 3)),
            ..SpsFields::baseline(40, 30).high()
        };
        assert_eq!(f.size(), size);
        let s = H264Sps::parse(&f.encode()).unwrap();
        assert_eq!((s.width, s.height), size, "{f:?}");
        assert_eq!(s.chroma_format_idc, chroma as u8);
        assert_eq!(s.frame_mbs_only, frame_mbs_only);
    }
}

/// ITU-T H.264 §7.4.1: 00 00 03 in the NAL unit is 00 00 in the RBSP.
#[test]
fn sps_with_emulation_prevention() {
    let f = SpsFields {
        profile_idc: 0,
        constraint: 0,
        level_idc: 0,
        ..SpsFields::baseline(22, 18)
    };
    let nal = f.encode();
    assert_eq!(nal[..5], [0x67, 0x00, 0x00, 0x03, 0x00]);
    let s = H264Sps::parse(&nal).unwrap();
    assert_eq!((s.width, s.height, s.level_idc), (352, 288, 0));
}

#[test]
fn sps_errors() {
    let bad = |nal: &[u8]| match H264Sps::parse(nal) {
        Err(PayloadError::H264Sps { reason }) => reason,
        other => panic!("{other:?}"),
    };
    assert_eq!(bad(&[]), "the NAL unit is empty");
    assert_eq!(bad(&[0x68, 0x42]), "the NAL unit type is not 7");
    let sps = SpsFields::baseline(40, 30).encode();
    for len in 1..sps.len() - 1 {
        assert_eq!(bad(&sps[..len]), "the NAL unit ends inside a field", "length {len}");
    }
    let crop = SpsFields {
        crop: Some((160, 160, 0, 0)),
        ..SpsFields::baseline(40, 30)
    };
    assert_eq!(bad(&crop.encode()), "frame cropping removes the whole picture");
    let chroma = SpsFields {
        chroma_format_idc: 4,
        ..SpsFields::baseline(40, 30).high()
    };
    assert_eq!(bad(&chroma.encode()), "chroma_format_idc exceeds 3");
    let id = SpsFields {
        id: 32,
        ..SpsFields::baseline(40, 30)
    };
    assert_eq!(bad(&id.encode()), "seq_parameter_set_id exceeds 31");
    let poc = SpsFields {
        poc_type: 3,
        ..SpsFields::baseline(40, 30)
    };
    assert_eq!(bad(&poc.encode()), "pic_order_cnt_type exceeds 2");
    // 33 leading zero bits: no exp-Golomb code that long fits 32 bits.
    assert_eq!(
        bad(&[0x67, 0x42, 0, 0x1F, 0, 0, 0x03, 0, 0, 0, 0x40]),
        "an exp-Golomb code is longer than 32 bits"
    );
}

// ------------------------------------------------------------------ Opus

#[test]
fn opus_frame_is_the_payload() {
    let frame = [0xFC, 0xFF, 0xFE];
    let chunks: Vec<_> = OpusPacketizer::new(&frame, 100, true).unwrap().collect();
    assert_eq!(chunks.len(), 1);
    assert!(chunks[0].marker());
    assert_eq!(bytes(&chunks[0]), frame);
    assert!(!OpusPacketizer::new(&frame, 3, false).unwrap().next().unwrap().marker());
    assert_eq!(OpusPacketizer::new(&frame, 3, false).unwrap().len(), 1);
    assert_eq!(
        OpusPacketizer::new(&frame, 2, false).unwrap_err(),
        PayloadError::FrameTooLarge {
            codec: "Opus",
            len: 3,
            max: 2
        }
    );
    assert_eq!(
        OpusPacketizer::new(&[], 2, false).unwrap_err(),
        PayloadError::EmptyFrame { codec: "Opus" }
    );
}

#[test]
fn opus_depacketizer_counts_lost_packets_across_wrap() {
    let mut d = OpusDepacketizer::new();
    let p = |seq: u16, payload: &'static [u8]| RtpPayload {
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        marker: false,
        payload,
    };
    let out = d.push(p(65_534, &[1]));
    assert_eq!(out.frame.map(|f| f.data), Some(&[1u8][..]));
    assert_eq!(out.frames_dropped, 0);
    let out = d.push(p(1, &[2])); // 65535 and 0 lost
    assert_eq!(out.frame.map(|f| (f.data, f.timestamp)), Some((&[2u8][..], 960)));
    assert_eq!(out.frames_dropped, 2);
    assert_eq!(d.push(p(1, &[2])), Depacketized::default(), "duplicate");
    assert_eq!(d.push(p(2, &[])).frame, None, "padding only");
    assert_eq!(d.push(p(3, &[3])).frames_dropped, 0);
    // Far behind: the source restarted; nothing is counted as lost.
    let out = d.push(p(65_000, &[4]));
    assert_eq!((out.frames_dropped, out.frame.is_some()), (0, true));
}

// ------------------------------------------------------------ properties

fn any_picture() -> impl Strategy<Value = Vp8PictureInfo> {
    (
        prop::option::of(prop_oneof![
            (0u8..128).prop_map(Vp8PictureId::Short),
            (0u16..0x8000).prop_map(Vp8PictureId::Long)
        ]),
        prop::option::of(any::<u8>()),
        prop::option::of((0u8..4, any::<bool>())),
        prop::option::of(0u8..32),
    )
        .prop_map(|(picture_id, tl0_pic_idx, t, key_idx)| Vp8PictureInfo {
            non_reference: false,
            picture_id,
            tl0_pic_idx,
            temporal_layer: t.map(|(tid, layer_sync)| Vp8TemporalLayer { tid, layer_sync }),
            key_idx,
        })
}

fn any_vp8_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        1u16..0x3FFF,
        1u16..0x3FFF,
        prop::collection::vec(any::<u8>(), 0..3000),
        any::<u32>(),
    )
        .prop_map(|(key, w, h, body, part)| {
            let part = if body.is_empty() { 0 } else { part % body.len() as u32 };
            if key {
                vp8_keyframe(w, h, part, &body)
            } else {
                vp8_interframe(part, &body)
            }
        })
}

/// NAL units whose content never emulates a start code: no two zero
/// bytes in a row, no zero at the end.
fn any_nal() -> impl Strategy<Value = Vec<u8>> {
    (0u8..4, 1u8..24, prop::collection::vec(any::<u8>(), 0..2500)).prop_map(|(nri, t, mut body)| {
        for i in 1..body.len() {
            if body[i] == 0 && body[i - 1] == 0 {
                body[i] = 3;
            }
        }
        if body.last() == Some(&0) {
            body.pop();
        }
        let mut nal = vec![nri << 5 | t];
        nal.extend(body);
        nal
    })
}

/// A packet as the network might deliver it: a real one, damaged, or
/// garbage, with sequence numbers that step, skip or go back.
fn any_packets() -> impl Strategy<Value = Vec<(i16, bool, bool, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop_oneof![Just(1i16), Just(1), Just(1), Just(2), Just(0), Just(-1), any::<i16>()],
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..40),
        ),
        0..80,
    )
}

/// Checks what a VP8 depacketizer hands out, whatever it was fed.
fn check_vp8(out: &Depacketized<Vp8Frame<'_>>) {
    if let Some(f) = out.frame {
        assert_eq!(Vp8FrameHeader::parse(f.data), Ok(f.header));
    }
}

fn check_h264(out: &Depacketized<H264Frame<'_>>) {
    if let Some(f) = out.frame {
        assert_eq!(f.data[..4], [0, 0, 0, 1]);
        let nals: Vec<&[u8]> = NalUnits::annex_b(f.data).unwrap().collect();
        assert!(!nals.is_empty());
        assert!(!f.idr || nals.iter().any(|n| n[0] & 0x1F == 5));
        assert!(f.sps.is_none() || nals.iter().any(|n| n[0] & 0x1F == 7));
    }
}

proptest! {
    #[test]
    fn vp8_descriptor_round_trips(picture in any_picture(), non_reference: bool, start: bool, pid in 0u8..8) {
        let d = Vp8Descriptor { picture: Vp8PictureInfo { non_reference, ..picture }, start_of_partition: start, partition_index: pid };
        let mut buf = [0xEEu8; 7];
        let n = d.encode(&mut buf).unwrap();
        prop_assert_eq!(n, d.encoded_len());
        let (parsed, data) = Vp8Descriptor::parse(&buf[..n + 1]).unwrap();
        prop_assert_eq!(parsed, d);
        prop_assert_eq!(data, &[0xEE][..]);
    }

    #[test]
    fn vp8_frames_round_trip(
        frames in prop::collection::vec((any_vp8_frame(), any_picture()), 1..5),
        max in 7usize..1500,
        seq0: u16,
        ts0: u32,
    ) {
        let chunks = frames.iter().map(|(f, p)| vp8_chunks(f, p, max)).collect();
        let packets = number(chunks, seq0, ts0);
        prop_assert!(packets.iter().all(|p| p.payload.len() <= max));
        let r = receive_vp8(&mut Vp8Depacketizer::new(), &packets);
        let got: Vec<Vec<u8>> = r.frames.into_iter().map(|f| f.1).collect();
        let sent: Vec<Vec<u8>> = frames.into_iter().map(|f| f.0).collect();
        prop_assert_eq!(got, sent);
        prop_assert_eq!(r.dropped, 0);
    }

    #[test]
    fn h264_access_units_round_trip(
        aus in prop::collection::vec(prop::collection::vec(any_nal(), 1..6), 1..4),
        max in 3usize..1500,
        length_prefixed: bool,
        seq0: u16,
    ) {
        let mut chunks = Vec::new();
        let inputs: Vec<Vec<u8>> = aus
            .iter()
            .map(|nals| {
                let mut v = Vec::new();
                for n in nals {
                    if length_prefixed {
                        v.extend_from_slice(&(n.len() as u16).to_be_bytes());
                    } else {
                        v.extend_from_slice(&[0, 0, 1]);
                    }
                    v.extend_from_slice(n);
                }
                v
            })
            .collect();
        for input in &inputs {
            let units = if length_prefixed { NalUnits::avcc(input, 2) } else { NalUnits::annex_b(input) };
            let c: Vec<_> = H264Packetizer::new(units.unwrap(), max).unwrap().collect::<Result<_, _>>().unwrap();
            prop_assert!(c.iter().all(|c| c.len() <= max));
            chunks.push(c);
        }
        let packets = number(chunks, seq0, 0);
        let r = receive_h264(&mut H264Depacketizer::new(), &packets);
        prop_assert_eq!(r.frames.len(), aus.len());
        for (got, nals) in r.frames.iter().zip(&aus) {
            let refs: Vec<&[u8]> = nals.iter().map(|n| &n[..]).collect();
            prop_assert_eq!(&got.1, &annex_b(&refs));
            prop_assert_eq!(got.2, nals.iter().any(|n| n[0] & 0x1F == 5));
        }
    }

    #[test]
    fn sps_size_round_trips(
        width_mbs in 1u32..300,
        height in 1u32..300,
        chroma in 0u32..4,
        separate: bool,
        frame_mbs_only: bool,
        scaling_lists: bool,
        poc_type in 0u32..3,
        high: bool,
        crop in prop::option::of((0u32..8, 0u32..8, 0u32..4, 0u32..4)),
    ) {
        let base = SpsFields { poc_type, scaling_lists, frame_mbs_only, crop, ..SpsFields::baseline(width_mbs + 8, height + 8) };
        let f = if high { SpsFields { chroma_format_idc: chroma, separate_colour_plane: separate && chroma == 3, ..base.high() } } else { base };
        let s = H264Sps::parse(&f.encode()).unwrap();
        prop_assert_eq!((s.width, s.height), f.size());
    }

    #[test]
    fn sps_parse_never_panics(nal in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = H264Sps::parse(&nal);
        let mut with_header = vec![0x67];
        with_header.extend(nal);
        let _ = H264Sps::parse(&with_header);
    }

    #[test]
    fn arbitrary_packets_never_panic_the_depacketizers(packets in any_packets(), seq0: u16) {
        let mut vp8 = Vp8Depacketizer::with_max_frame_size(500);
        let mut h264 = H264Depacketizer::with_max_frame_size(500);
        let mut opus = OpusDepacketizer::new();
        let mut seq = seq0;
        let mut ts = 0u32;
        for (step, marker, next_ts, payload) in &packets {
            seq = seq.wrapping_add(*step as u16);
            ts = ts.wrapping_add(u32::from(*next_ts) * 3000);
            let p = RtpPayload { sequence_number: seq, timestamp: ts, marker: *marker, payload };
            if let Ok(out) = vp8.push(p) { check_vp8(&out); }
            if let Ok(out) = h264.push(p) { check_h264(&out); }
            if let Some(f) = opus.push(p).frame {
                prop_assert_eq!(f.data, &payload[..]);
            }
        }
    }

    /// Real streams, then damaged: packets lost, repeated, reordered,
    /// bytes flipped. Depacketizers report what they can and never panic.
    #[test]
    fn damaged_streams_never_panic(
        vp8_frames in prop::collection::vec((any_vp8_frame(), any_picture()), 1..4),
        aus in prop::collection::vec(prop::collection::vec(any_nal(), 1..4), 1..4),
        max in 3usize..300,
        damage in prop::collection::vec((any::<u16>(), 0u8..4, any::<u8>()), 0..12),
    ) {
        let max_vp8 = max.max(7);
        let vp8_chunks = vp8_frames.iter().map(|(f, p)| vp8_chunks(f, p, max_vp8)).collect();
        let vp8_packets = number(vp8_chunks, 65_000, 0);
        let inputs: Vec<Vec<u8>> = aus.iter().map(|nals| {
            let refs: Vec<&[u8]> = nals.iter().map(|n| &n[..]).collect();
            annex_b(&refs)
        }).collect();
        let h264_packets = number(inputs.iter().map(|au| h264_chunks(au, max)).collect(), 65_000, 0);
        for mut packets in [vp8_packets, h264_packets] {
            for (at, kind, byte) in &damage {
                if packets.is_empty() { break; }
                let i = usize::from(*at) % packets.len();
                match kind {
                    0 => { packets.remove(i); }
                    1 => { let p = packets[i].clone(); packets.insert(i, p); }
                    2 => {
                        let j = (i + 1) % packets.len();
                        packets.swap(i, j)
                    }
                    _ => if let Some(b) = packets[i].payload.get_mut(usize::from(*byte) % 4) { *b ^= byte | 1; },
                }
            }
            let mut vp8 = Vp8Depacketizer::new();
            let mut h264 = H264Depacketizer::new();
            for p in &packets {
                if let Ok(out) = vp8.push(p.rtp()) { check_vp8(&out); }
                if let Ok(out) = h264.push(p.rtp()) { check_h264(&out); }
            }
        }
    }
}
