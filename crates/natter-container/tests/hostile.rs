//! Property tests: no input makes a reader panic; it gives frames,
//! packets or an error.

use natter_container::av1::{self, Av1Config};
use natter_container::h264::{access_units, AvcConfig};
use natter_container::ivf::IvfReader;
use natter_container::ogg::{PacketReader, Page, FLAG_BOS, NO_GRANULE};
use natter_container::opus::{packet_samples, OggOpusReader, OpusHead, OpusTags};
use natter_container::Error;
use proptest::prelude::*;

/// Bounds the work on an input however many items it claims.
const MAX_ITEMS: usize = 10_000;

/// What the formats start with, so that the readers get past their first checks.
const STARTS: &[&[u8]] = &[
    b"DKIF\0\0\x20\0VP80",
    b"OggS\0",
    b"\0\0\0\x01",
    b"OpusHead\x01\x02",
    b"OpusTags",
    // An H.264 SPS (Annex B) and an AV1 sequence header OBU.
    b"\0\0\0\x01\x67\x42\xc0\x0d",
    b"\x0a\x0b\0\0\0",
];

/// Drains every reader over `bytes`.
fn read_everything(bytes: &[u8]) {
    if let Ok(r) = IvfReader::new(bytes) {
        r.take(MAX_ITEMS).for_each(drop);
    }
    PacketReader::new(bytes).take(MAX_ITEMS).for_each(drop);
    if let Ok(r) = OggOpusReader::new(bytes) {
        r.take(MAX_ITEMS).for_each(drop);
    }
    if let Ok(units) = access_units(bytes) {
        units.take(MAX_ITEMS).for_each(drop);
    }
    let _ = Page::parse(bytes).map(|p| p.packets().count());
    let _ = OpusHead::parse(bytes);
    let _ = OpusTags::parse(bytes);
    let _ = packet_samples(bytes);
    let mut out = Vec::new();
    if let Ok(config) = AvcConfig::from_access_unit(bytes) {
        let _ = config.write_sample(bytes, &mut out);
        config.record();
    }
    let _ = Av1Config::from_temporal_unit(bytes);
    let _ = av1::write_block(bytes, &mut out);
}

/// libx264's 320x240 SPS and PPS, and libaom's 320x240 sequence header
/// OBU (as in the crate's unit tests).
const SPS: &[u8] = b"\x67\x42\xc0\x0d\xd9\x01\x41\xfb\x01\x10\0\0\x03\0\x10\0\0\x03\x03\xc0\xf1\x42\xa4\x80";
const PPS: &[u8] = b"\x68\xcb\x83\xcb\x20";
const SEQUENCE_HEADER: &[u8] = b"\x0a\x0b\0\0\0\x04\x3c\xff\xbc\xda\xf9\0\x40";

/// Annex B: a start code before each NAL unit.
fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter().flat_map(|nal| [&[0, 0, 0, 1][..], nal].concat()).collect()
}

/// An SPS cut anywhere, or a PPS missing, is an error that says so.
#[test]
fn bad_sps_and_missing_pps_are_errors() {
    let config = AvcConfig::from_access_unit(&annex_b(&[SPS, PPS, b"\x65\x88"])).unwrap();
    assert_eq!((config.width, config.height), (320, 240));
    // Cut before the frame size (the SPS's first 8 bytes hold it): an
    // error; cut in the VUI, which is not read: the same picture.
    for cut in 1..SPS.len() {
        match AvcConfig::from_access_unit(&annex_b(&[&SPS[..cut], PPS, b"\x65\x88"])) {
            Err(Error::AvcConfig(_)) if cut < 8 => {}
            Ok(c) if cut >= 8 => assert_eq!((c.width, c.height), (320, 240), "SPS cut at {cut}"),
            other => panic!("SPS cut at {cut}: {other:?}"),
        }
    }
    let err = AvcConfig::from_access_unit(&annex_b(&[SPS, b"\x65\x88"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "H.264 decoder configuration: the access unit has no PPS"
    );
}

/// A sequence header or temporal unit cut anywhere is an error.
#[test]
fn truncated_obus_are_errors() {
    let unit = [&[0x12, 0][..], SEQUENCE_HEADER, &[0x32, 0x03, 1, 2, 3]].concat();
    assert!(Av1Config::from_temporal_unit(&unit).is_ok());
    let mut out = Vec::new();
    av1::write_block(&unit, &mut out).unwrap();
    for cut in 1..unit.len() {
        let at = &unit[..cut];
        // Cut inside the sequence header, or inside the frame OBU after it.
        if cut < 2 + SEQUENCE_HEADER.len() {
            assert!(
                matches!(Av1Config::from_temporal_unit(at), Err(Error::Av1(_))),
                "cut at {cut}"
            );
        }
        if cut != 2 && cut != 2 + SEQUENCE_HEADER.len() {
            assert!(
                matches!(av1::write_block(at, &mut out), Err(Error::Av1(_))),
                "cut at {cut}"
            );
        }
    }
    // The sequence header's payload cut short of its color_config.
    for len in 0..SEQUENCE_HEADER.len() - 4 {
        let obu = [&[0x0a, len as u8][..], &SEQUENCE_HEADER[2..2 + len]].concat();
        let err = Av1Config::from_temporal_unit(&obu).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AV1 temporal unit: the sequence header ends before its color_config",
            "{len}"
        );
    }
}

/// A page to build with a valid CRC but any flags, granule position and
/// segment table, mostly of stream 0 and in sequence, so that the checks
/// behind the CRC run.
#[derive(Clone, Debug)]
struct PageSpec {
    header_type: u8,
    granule_position: u64,
    serial: u32,
    /// How many sequence numbers it skips.
    jump: u32,
    segments: Vec<u8>,
    /// The first body byte; the others follow from it.
    fill: u8,
}

fn page() -> impl Strategy<Value = PageSpec> {
    (
        prop_oneof![2 => Just(0u8), 1 => 0u8..8],
        prop_oneof![3 => 0u64..100_000, 1 => Just(NO_GRANULE)],
        prop_oneof![4 => Just(0u32), 1 => Just(1)],
        prop_oneof![4 => Just(0u32), 1 => 0u32..4],
        prop::collection::vec(prop_oneof![Just(255u8), any::<u8>()], 0..6),
        any::<u8>(),
    )
        .prop_map(
            |(header_type, granule_position, serial, jump, segments, fill)| PageSpec {
                header_type,
                granule_position,
                serial,
                jump,
                segments,
                fill,
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        read_everything(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_start(
        start in prop::sample::select(STARTS),
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
    ) {
        read_everything(&[start, &bytes[..]].concat());
    }

    #[test]
    fn pages_with_valid_crcs(pages in prop::collection::vec(page(), 0..12), opus_headers in any::<bool>()) {
        read_everything(&ogg_file(&pages, opus_headers));
    }
}

/// The pages, after OpusHead and OpusTags pages if `opus_headers`.
fn ogg_file(pages: &[PageSpec], opus_headers: bool) -> Vec<u8> {
    let mut file = Vec::new();
    let mut sequence = 0;
    if opus_headers {
        for header in [OpusHead::new(2, 48_000).unwrap().encode(), OpusTags::default().encode()] {
            let header_type = if sequence == 0 { FLAG_BOS } else { 0 };
            let segments = [header.len() as u8];
            let page = Page {
                header_type,
                granule_position: 0,
                serial: 0,
                sequence,
                segments: &segments,
                body: &header,
            };
            page.encode(&mut file);
            sequence += 1;
        }
    }
    for spec in pages {
        sequence += spec.jump;
        // Bodies of TOC-like bytes: every Opus configuration and code.
        let len = spec.segments.iter().map(|&l| usize::from(l)).sum();
        let body: Vec<u8> = (0..len)
            .map(|i| spec.fill.wrapping_add((i as u8).wrapping_mul(7)))
            .collect();
        let page = Page {
            header_type: spec.header_type,
            granule_position: spec.granule_position,
            serial: spec.serial,
            sequence,
            segments: &spec.segments,
            body: &body,
        };
        page.encode(&mut file);
        sequence += 1;
    }
    file
}
