//! The Ogg page, packet and Ogg Opus readers: arbitrary bytes give
//! packets or an error, never a panic. The input is read as it is and
//! also as a recipe for pages with valid CRCs, so that the checks behind
//! the CRC (continuation, sequence numbers, granule positions, Opus
//! headers and durations) are reached. Packets read write out to a
//! stream that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_container::ogg::{PacketReader, PacketWriter, Page, NO_GRANULE};
use natter_container::opus::{OggOpusReader, OpusHead, OpusTags};

/// Pages built from the input: per page a header type, a granule
/// position (255: -1, else in 20 ms steps), a byte whose low two bits
/// skip sequence numbers and whose top bit picks serial 1, a segment
/// count and that many lacing values; then the body, zero-padded where
/// the input runs out.
fn pages_from(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sequence = 0u32;
    while let [header_type, granule, stream, count, rest @ ..] = data {
        let (segments, rest) = rest.split_at(usize::from(*count).min(rest.len()));
        let len: usize = segments.iter().map(|&l| usize::from(l)).sum();
        let (body, rest) = rest.split_at(len.min(rest.len()));
        let mut body = body.to_vec();
        body.resize(len, 0);
        sequence = sequence.wrapping_add(u32::from(stream & 0x03));
        let page = Page {
            header_type: *header_type,
            granule_position: match granule {
                255 => NO_GRANULE,
                g => u64::from(*g) * 960,
            },
            serial: u32::from(stream >> 7),
            sequence,
            segments,
            body: &body,
        };
        page.encode(&mut out);
        sequence = sequence.wrapping_add(1);
        data = rest;
    }
    out
}

fn check(file: &[u8]) {
    let _ = Page::parse(file).map(|p| p.packets().count());

    let packets: Vec<_> = PacketReader::new(file).map_while(Result::ok).collect();
    let mut w = PacketWriter::new(Vec::new(), 1);
    for p in &packets {
        w.write_packet(&p.data, p.granule_position.unwrap_or(0))
            .expect("a Vec takes pages");
    }
    let written = w.finish().expect("a Vec flushes");
    let again: Vec<_> = PacketReader::new(&written[..])
        .collect::<Result<_, _>>()
        .expect("written packets parse");
    assert!(again.iter().map(|p| &p.data).eq(packets.iter().map(|p| &p.data)));

    if let Ok(r) = OggOpusReader::new(file) {
        assert_eq!(
            &OpusHead::parse(&r.head().encode()).expect("OpusHead re-encodes"),
            r.head()
        );
        assert_eq!(
            &OpusTags::parse(&r.tags().encode()).expect("OpusTags re-encodes"),
            r.tags()
        );
        r.map_while(Result::ok).for_each(drop);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&pages_from(data));
});
