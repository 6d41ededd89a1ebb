//! FFmpeg as an independent judge: files that FFmpeg wrote (libvpx VP8
//! in IVF, libopus in Ogg, libx264 as an H.264 Annex B stream) are read
//! with our readers and written again with our writers, and `ffprobe`
//! must decode what we wrote: the same codec, picture size and number of
//! frames or packets.
//!
//! Needs the Debian package `ffmpeg`; the tests fail (they do not skip)
//! without it.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use natter_container::h264::{access_units, write_access_unit};
use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter, FOURCC_VP8};
use natter_container::opus::{packet_samples, OggOpusReader, OggOpusWriter, OpusPacket};

/// A directory of its own for each test, under target/.
fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("natter-container-ffprobe")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs an FFmpeg tool, failing the test with how to install it if it is missing.
fn run(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} is missing ({e}): install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg`")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One second of FFmpeg's test source, encoded into `name`.
fn ffmpeg_one_second(dir: &Path, name: &str, source: &str, codec: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["-v", "error", "-y", "-f", "lavfi", "-i", source, "-t", "1"];
    args.extend_from_slice(codec);
    args.push(path.to_str().unwrap());
    run("ffmpeg", &args);
    path
}

/// What ffprobe decodes of the file's one stream: codec, width, height
/// (0 for audio) and the number of frames it read.
fn ffprobe(path: &Path) -> (String, u64, u64, u64) {
    let json = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{v}");
    let s = &streams[0];
    let frames = s["nb_read_frames"].as_str().and_then(|n| n.parse().ok());
    (
        s["codec_name"].as_str().unwrap().to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        frames.unwrap_or_else(|| panic!("no frame count in {v}")),
    )
}

#[test]
fn ivf_vp8_from_ffmpeg_is_read_and_rewritten() {
    let dir = work_dir("ivf");
    let input = ffmpeg_one_second(&dir, "ffmpeg.ivf", "testsrc=size=320x240:rate=30", &["-c:v", "libvpx"]);
    let original = std::fs::read(&input).unwrap();
    let r = IvfReader::new(&original[..]).unwrap();
    let header = *r.header();
    assert_eq!((header.fourcc, header.width, header.height), (FOURCC_VP8, 320, 240));
    assert_eq!((header.timebase_numerator, header.timebase_denominator), (1, 30));
    let frames: Vec<_> = r.collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 30);
    assert!(frames
        .iter()
        .enumerate()
        .all(|(i, f)| f.pts == i as u64 && !f.data.is_empty()));

    // Written with the count unknown at first, as when streaming.
    let output = dir.join("natter.ivf");
    let unknown_count = IvfHeader {
        frame_count: 0,
        ..header
    };
    let mut w = IvfWriter::new(File::create(&output).unwrap(), &unknown_count).unwrap();
    for f in &frames {
        w.write_frame(f.pts, &f.data).unwrap();
    }
    w.finish_with_frame_count().unwrap();
    assert_eq!(
        std::fs::read(&output).unwrap(),
        original,
        "FFmpeg and natter write the same IVF file"
    );
    assert_eq!(ffprobe(&output), ("vp8".into(), 320, 240, 30));
}

#[test]
fn ogg_opus_from_ffmpeg_is_read_and_rewritten() {
    let dir = work_dir("ogg");
    let input = ffmpeg_one_second(&dir, "ffmpeg.ogg", "sine", &["-c:a", "libopus"]);
    let (_, _, _, ffmpeg_packets) = ffprobe(&input);
    let r = OggOpusReader::new(File::open(&input).unwrap()).unwrap();
    let head = r.head().clone();
    assert_eq!((head.channels, head.pre_skip, head.mapping_family()), (1, 312, 0));
    assert!(r.tags().vendor.starts_with("Lavf"), "{:?}", r.tags());
    let packets: Vec<OpusPacket> = r.collect::<Result<_, _>>().unwrap();
    assert_eq!(packets.len() as u64, ffmpeg_packets);
    assert!(packets
        .windows(2)
        .all(|w| w[0].granule_position < w[1].granule_position));
    // One second at 48 kHz after the pre-skip: the end is trimmed on the last page.
    assert_eq!(
        packets.last().unwrap().granule_position,
        48_000 + u64::from(head.pre_skip)
    );

    let output = dir.join("natter.ogg");
    let file = BufWriter::new(File::create(&output).unwrap());
    let mut w = OggOpusWriter::new(file, head.channels, head.input_sample_rate).unwrap();
    for p in &packets {
        w.write_packet(&p.data, packet_samples(&p.data).unwrap()).unwrap();
    }
    w.finish().unwrap();
    let again: Vec<OpusPacket> = OggOpusReader::new(File::open(&output).unwrap())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(again.iter().map(|p| &p.data).eq(packets.iter().map(|p| &p.data)));
    assert_eq!(ffprobe(&output), ("opus".into(), 0, 0, ffmpeg_packets));
}

#[test]
fn h264_annex_b_from_ffmpeg_is_read_and_rewritten() {
    let dir = work_dir("h264");
    let input = ffmpeg_one_second(
        &dir,
        "ffmpeg.h264",
        "testsrc=size=320x240:rate=30",
        &["-c:v", "libx264", "-f", "h264"],
    );
    let stream = std::fs::read(&input).unwrap();
    let units: Vec<Vec<&[u8]>> = access_units(&stream).unwrap().collect();
    assert_eq!(units.len(), 30);
    let first_types: Vec<u8> = units[0].iter().map(|nal| nal[0] & 0x1f).collect();
    assert!(
        first_types.starts_with(&[7, 8]) && first_types.contains(&5),
        "{first_types:?}"
    );

    let output = dir.join("natter.h264");
    let mut w = BufWriter::new(File::create(&output).unwrap());
    for unit in &units {
        write_access_unit(&mut w, unit).unwrap();
    }
    w.into_inner().unwrap();
    assert_eq!(ffprobe(&output), ("h264".into(), 320, 240, 30));
}
