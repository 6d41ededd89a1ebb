//! Property tests: what the writers write, the readers read back the same.

use natter_container::h264::{access_units, write_access_unit};
use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter};
use natter_container::ogg::{Packet, PacketReader, PacketWriter};
use natter_container::opus::{packet_samples, OggOpusReader, OggOpusWriter, OpusHead, OpusPacket};
use proptest::prelude::*;

fn ivf_header() -> impl Strategy<Value = IvfHeader> {
    (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(fourcc, width, height, timebase_denominator, timebase_numerator, frame_count)| IvfHeader {
                fourcc,
                width,
                height,
                timebase_denominator,
                timebase_numerator,
                frame_count,
            },
        )
}

/// Packet sizes around the 255-byte lacing boundaries, and a few long
/// enough to span pages.
fn packet_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..600),
        1 => (0usize..4, any::<u8>()).prop_map(|(k, b)| vec![b; 255 * k]),
        1 => (60_000usize..140_000, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ]
}

/// ITU-T H.264 §7.4.1: inserts emulation_prevention_three_byte where
/// 00 00 is followed by 00 to 03, and ends the NAL unit on a non-zero byte.
fn escape(header: u8, body: &[u8]) -> Vec<u8> {
    let mut nal = vec![header];
    let mut zeros = 0;
    for &b in body {
        if zeros >= 2 && b <= 3 {
            nal.push(3);
            zeros = 0;
        }
        nal.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    if nal.ends_with(&[0]) {
        nal.push(0x80);
    }
    nal
}

/// An access unit whose boundaries the reader can find: optional SPS and
/// PPS, an optional SEI, then slices of one picture, the first with
/// first_mb_in_slice 0 (the first bit of its second byte set) and the
/// others not.
fn access_unit() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let body = || prop::collection::vec(any::<u8>(), 1..40);
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::select(vec![0x65u8, 0x41, 0x01, 0x25]),
        prop::collection::vec(body(), 1..4),
    )
        .prop_map(|(parameter_sets, sei, slice_header, mut slices)| {
            let mut unit = Vec::new();
            if parameter_sets {
                unit.push(escape(0x67, &[0x42, 0xc0, 0x1e]));
                unit.push(escape(0x68, &[0xce, 0x3c, 0x80]));
            }
            if sei {
                unit.push(escape(0x06, &[0x05, 0x10]));
            }
            for (i, body) in slices.iter_mut().enumerate() {
                body[0] = if i == 0 { body[0] | 0x80 } else { body[0] & 0x7f };
                unit.push(escape(slice_header, body));
            }
            unit
        })
}

proptest! {
    #[test]
    fn ivf(header in ivf_header(), frames in prop::collection::vec((any::<u64>(), packet_data()), 0..12)) {
        let mut w = IvfWriter::new(Vec::new(), &header).unwrap();
        for (pts, data) in &frames {
            w.write_frame(*pts, data).unwrap();
        }
        let file = w.finish().unwrap();
        let r = IvfReader::new(&file[..]).unwrap();
        prop_assert_eq!(*r.header(), header);
        let read: Vec<(u64, Vec<u8>)> = r.map(|f| f.map(|f| (f.pts, f.data))).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read, frames);
    }

    #[test]
    fn ogg_packets(
        packets in prop::collection::vec((packet_data(), 0u64..1000), 0..40),
        page_size in 1usize..10_000,
        serial in any::<u32>(),
    ) {
        let mut w = PacketWriter::new(Vec::new(), serial);
        w.set_page_size(page_size);
        let mut granule = 0;
        let mut granules = Vec::new();
        for (data, step) in &packets {
            granule += step;
            granules.push(granule);
            w.write_packet(data, granule).unwrap();
        }
        let file = w.finish().unwrap();
        let mut r = PacketReader::new(&file[..]);
        let read: Vec<Packet> = r.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(r.serial(), Some(serial));
        prop_assert_eq!(read.len(), packets.len());
        for ((p, (data, _)), granule) in read.iter().zip(&packets).zip(&granules) {
            prop_assert_eq!(&p.data, data);
            // Where a page gives a granule position, it is that packet's.
            prop_assert!(p.granule_position.is_none_or(|g| g == *granule));
        }
        if let Some(last) = read.last() {
            prop_assert_eq!(last.granule_position, granules.last().copied());
            prop_assert!(last.eos);
        }
        prop_assert!(read.iter().rev().skip(1).all(|p| !p.eos));
    }

    #[test]
    fn ogg_opus(
        channels in 1u8..=2,
        sample_rate in any::<u32>(),
        candidates in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..60),
        long_packets in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        let packets: Vec<(Vec<u8>, u32)> = candidates
            .into_iter()
            .chain(long_packets.into_iter().map(|b| vec![b; 5000]))
            .filter_map(|p| packet_samples(&p).ok().map(|n| (p, n)))
            .collect();
        let mut w = OggOpusWriter::new(Vec::new(), channels, sample_rate).unwrap();
        for (data, samples) in &packets {
            w.write_packet(data, *samples).unwrap();
        }
        let file = w.finish().unwrap();
        let r = OggOpusReader::new(&file[..]).unwrap();
        prop_assert_eq!(r.head(), &OpusHead::new(channels, sample_rate).unwrap());
        let read: Vec<OpusPacket> = r.collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read.len(), packets.len());
        let mut granule = 0;
        for (p, (data, samples)) in read.iter().zip(&packets) {
            granule += u64::from(*samples);
            prop_assert_eq!(&p.data, data);
            prop_assert_eq!(p.granule_position, granule);
        }
    }

    #[test]
    fn h264_annex_b(units in prop::collection::vec(access_unit(), 1..8)) {
        let mut stream = Vec::new();
        for unit in &units {
            let nal_units: Vec<&[u8]> = unit.iter().map(Vec::as_slice).collect();
            write_access_unit(&mut stream, &nal_units).unwrap();
        }
        let read: Vec<Vec<Vec<u8>>> = access_units(&stream)
            .unwrap()
            .map(|unit| unit.into_iter().map(<[u8]>::to_vec).collect())
            .collect();
        prop_assert_eq!(read, units);
    }
}
