//! The WebM writer: what it writes is read back by a small EBML reader
//! here (property tests over tracks, frames, keyframes and timestamps,
//! out of order and huge ones included). FFmpeg judges the files in
//! tests/ffprobe.rs.

use std::io::Cursor;
use std::time::Duration;

use natter_container::opus::OpusHead;
use natter_container::webm::{Track, TrackCodec, WebmWriter, MAX_TIMESTAMP_MS};
use natter_container::Error;
use proptest::prelude::*;

/// One EBML element: id, body, and where the body starts.
struct Element<'a> {
    id: u32,
    body: &'a [u8],
}

/// RFC 8794 §4: a vint's length from its first byte's leading zeros.
fn vint(data: &[u8]) -> (u64, usize, bool) {
    let len = data[0].leading_zeros() as usize + 1;
    assert!(len <= 8, "vint of more than 8 bytes");
    let mut value = u64::from(data[0]) & ((1u64 << (8 - len)) - 1);
    for b in &data[1..len] {
        value = value << 8 | u64::from(*b);
    }
    let unknown = value == (1u64 << (7 * len)) - 1;
    (value, len, unknown)
}

/// The elements of `data` one after another (an unknown size runs to the end).
fn elements(mut data: &[u8]) -> Vec<Element<'_>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let id_len = data[0].leading_zeros() as usize + 1;
        let id = data[..id_len].iter().fold(0u32, |a, b| a << 8 | u32::from(*b));
        let (size, size_len, unknown) = vint(&data[id_len..]);
        let start = id_len + size_len;
        let end = if unknown { data.len() } else { start + size as usize };
        out.push(Element {
            id,
            body: &data[start..end],
        });
        data = &data[end..];
    }
    out
}

fn child<'a>(parent: &[Element<'a>], id: u32) -> &'a [u8] {
    parent
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no element {id:#x}"))
        .body
}

fn uint(body: &[u8]) -> u64 {
    body.iter().fold(0, |a, b| a << 8 | u64::from(*b))
}

/// What a file holds: codec ids, duration (ms), and blocks as
/// (track from 0, ms, keyframe, data).
#[derive(Debug)]
struct Read {
    doc_type: String,
    codecs: Vec<String>,
    /// Each track's CodecPrivate, empty when it has none.
    configs: Vec<Vec<u8>>,
    duration: f64,
    blocks: Vec<(usize, u64, bool, Vec<u8>)>,
    clusters: usize,
}

fn read(file: &[u8]) -> Read {
    let top = elements(file);
    assert_eq!(top.len(), 2, "EBML header and one Segment");
    let ebml = elements(top[0].body);
    let doc_type = String::from_utf8(child(&ebml, 0x4282).to_vec()).unwrap();
    assert_eq!(top[1].id, 0x1853_8067);
    let segment = elements(top[1].body);
    let info = elements(child(&segment, 0x1549_A966));
    assert_eq!(uint(child(&info, 0x2A_D7B1)), 1_000_000);
    let duration = f64::from_be_bytes(child(&info, 0x4489).try_into().unwrap());
    let codecs = elements(child(&segment, 0x1654_AE6B))
        .iter()
        .map(|entry| String::from_utf8(child(&elements(entry.body), 0x86).to_vec()).unwrap())
        .collect();
    let configs = elements(child(&segment, 0x1654_AE6B))
        .iter()
        .map(|entry| {
            let children = elements(entry.body);
            children
                .iter()
                .find(|e| e.id == 0x63A2)
                .map_or(Vec::new(), |e| e.body.to_vec())
        })
        .collect();
    let mut blocks = Vec::new();
    let mut clusters = 0;
    for cluster in segment.iter().filter(|e| e.id == 0x1F43_B675) {
        clusters += 1;
        let children = elements(cluster.body);
        let start = uint(child(&children, 0xE7));
        for block in children.iter().filter(|e| e.id == 0xA3) {
            let b = block.body;
            let (track, n, _) = vint(b);
            let relative = i16::from_be_bytes([b[n], b[n + 1]]);
            let at = (start as i64 + i64::from(relative)) as u64;
            blocks.push((track as usize - 1, at, b[n + 2] & 0x80 != 0, b[n + 3..].to_vec()));
        }
    }
    Read {
        doc_type,
        codecs,
        configs,
        duration,
        blocks,
        clusters,
    }
}

fn tracks() -> Vec<Track> {
    vec![
        Track {
            codec: TrackCodec::Vp8 {
                width: 320,
                height: 240,
            },
        },
        Track {
            codec: TrackCodec::Opus {
                head: OpusHead::new(2, 48_000).unwrap(),
            },
        },
    ]
}

proptest! {
    /// Blocks come back in order with their data and keyframe flags;
    /// each track's timestamps are the ones given, raised to the track's
    /// latest so far (never going back); the Duration is the latest.
    #[test]
    fn blocks_read_back(frames in prop::collection::vec(
        (0usize..2, 0u64..200_000, any::<bool>(), prop::collection::vec(any::<u8>(), 0..300)), 1..60)
    ) {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &tracks()).unwrap();
        let mut expected = Vec::new();
        let mut last = [0u64; 2];
        for (track, ms, keyframe, data) in &frames {
            w.write_block(*track, Duration::from_millis(*ms), *keyframe, data).unwrap();
            last[*track] = last[*track].max(*ms);
            expected.push((*track, last[*track], *keyframe, data.clone()));
        }
        let file = w.finish().unwrap().into_inner();
        let read = read(&file);
        prop_assert_eq!(read.doc_type, "webm");
        prop_assert_eq!(read.codecs, vec!["V_VP8".to_owned(), "A_OPUS".to_owned()]);
        prop_assert_eq!(read.duration, last.iter().copied().max().unwrap() as f64);
        prop_assert_eq!(read.blocks, expected);
    }

    /// Timestamps past the limit, and tracks the file lacks, are errors
    /// that leave the file as it was: later blocks and finish still work.
    #[test]
    fn bad_blocks_are_errors(ms in MAX_TIMESTAMP_MS + 1..u64::MAX, track in 2usize..1000) {
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &tracks()).unwrap();
        w.write_block(0, Duration::from_millis(5), true, b"key").unwrap();
        let late = w.write_block(0, Duration::from_millis(ms), true, b"x");
        prop_assert!(matches!(late, Err(Error::WebmTimestamp(_))), "{:?}", late);
        let missing = w.write_block(track, Duration::ZERO, true, b"x");
        prop_assert!(matches!(missing, Err(Error::WebmTrack { .. })), "{:?}", missing);
        prop_assert!(w.write_block(1, Duration::MAX, true, b"x").is_err());
        w.write_block(1, Duration::from_millis(7), true, b"opus").unwrap();
        let read = read(&w.finish().unwrap().into_inner());
        prop_assert_eq!(read.blocks.len(), 2);
    }
}

#[test]
fn no_tracks_or_too_many_is_an_error() {
    assert!(matches!(
        WebmWriter::new(Cursor::new(Vec::new()), &[]),
        Err(Error::WebmTracks(0))
    ));
    let many = vec![tracks()[0].clone(); 127];
    assert!(matches!(
        WebmWriter::new(Cursor::new(Vec::new()), &many),
        Err(Error::WebmTracks(127))
    ));
}

#[test]
fn video_keyframes_start_clusters_after_a_second_and_long_gaps_always_do() {
    let mut w = WebmWriter::new(Cursor::new(Vec::new()), &tracks()).unwrap();
    // 3 s of 30 fps video with a keyframe every 15 frames, and Opus every 20 ms.
    for i in 0..90u64 {
        w.write_block(0, Duration::from_millis(i * 1000 / 30), i % 15 == 0, b"v")
            .unwrap();
    }
    for i in 0..150u64 {
        w.write_block(1, Duration::from_millis(i * 20), true, b"a").unwrap();
    }
    // Past what a SimpleBlock's 16-bit offset reaches from the last cluster.
    w.write_block(1, Duration::from_secs(100), true, b"late").unwrap();
    let read = read(&w.finish().unwrap().into_inner());
    // Keyframes at 0, 0.5, 1.0 (a cluster), 1.5, 2.0 (a cluster), 2.5; then the late block.
    assert_eq!(read.clusters, 4);
    assert_eq!(read.duration, 100_000.0);
    assert_eq!(read.blocks.last().unwrap().1, 100_000);
}

#[test]
fn av1_stays_webm_and_h264_makes_matroska_each_with_its_codec_private() {
    let opus = tracks()[1].clone();
    for (codec, id, doc_type) in [
        (
            TrackCodec::Av1 {
                width: 320,
                height: 240,
                config: vec![0x81, 0, 0x0c, 0],
            },
            "V_AV1",
            "webm",
        ),
        (
            TrackCodec::H264 {
                width: 320,
                height: 240,
                config: vec![1, 0x42, 0xc0, 0x0d],
            },
            "V_MPEG4/ISO/AVC",
            "matroska",
        ),
    ] {
        let config = match &codec {
            TrackCodec::Av1 { config, .. } | TrackCodec::H264 { config, .. } => config.clone(),
            _ => unreachable!("the two above"),
        };
        let tracks = [Track { codec }, opus.clone()];
        assert_eq!(natter_container::webm::doc_type(&tracks), doc_type);
        let mut w = WebmWriter::new(Cursor::new(Vec::new()), &tracks).unwrap();
        w.write_block(0, Duration::ZERO, true, b"key").unwrap();
        let read = read(&w.finish().unwrap().into_inner());
        assert_eq!(read.doc_type, doc_type);
        assert_eq!(read.codecs, [id, "A_OPUS"]);
        assert_eq!(read.configs[0], config);
        assert_eq!(read.blocks, [(0, 0, true, b"key".to_vec())]);
    }
}
