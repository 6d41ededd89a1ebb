//! Property tests: no input makes a reader panic; it gives frames,
//! packets or an error.

use natter_container::h264::access_units;
use natter_container::ivf::IvfReader;
use natter_container::ogg::{PacketReader, Page, FLAG_BOS, NO_GRANULE};
use natter_container::opus::{packet_samples, OggOpusReader, OpusHead, OpusTags};
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
