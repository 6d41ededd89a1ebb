//! FFmpeg as an independent judge: files that FFmpeg wrote (libvpx VP8
//! in IVF, libopus in Ogg, libx264 as an H.264 Annex B stream) are read
//! with our readers and written again with our writers, and `ffprobe`
//! must decode what we wrote: the same codec, picture size and number of
//! frames or packets. Their VP8 and Opus muxed into WebM by natter must
//! demux and decode too, and so must libaom's AV1 in WebM and libx264's
//! H.264 in Matroska, which natter stores in their ISO forms (the
//! av1C and avcC records, length-prefixed NAL units).
//!
//! Needs the Debian package `ffmpeg`; the tests fail (they do not skip)
//! without it.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use natter_container::av1::{self, Av1Config};
use natter_container::h264::{access_units, write_access_unit, AvcConfig};
use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter, FOURCC_VP8};
use natter_container::opus::{packet_samples, OggOpusReader, OggOpusWriter, OpusPacket};
use natter_container::webm::{Track, TrackCodec, WebmWriter};
use std::time::Duration;

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

/// ffprobe's JSON of `path`'s streams and format, decoding every frame
/// to count them (`-count_frames`).
fn probe(path: &Path) -> serde_json::Value {
    let json = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration,format_name",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    serde_json::from_slice(&json).unwrap()
}

/// A stream of [`probe`]'s: codec, width, height (0 for audio) and the
/// number of frames ffprobe read.
fn stream_summary(s: &serde_json::Value) -> (String, u64, u64, u64) {
    let frames = s["nb_read_frames"].as_str().and_then(|n| n.parse().ok());
    (
        s["codec_name"].as_str().unwrap().to_owned(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        frames.unwrap_or_else(|| panic!("no frame count in {s}")),
    )
}

/// What ffprobe decodes of the file's one stream, as [`stream_summary`].
fn ffprobe(path: &Path) -> (String, u64, u64, u64) {
    let v = probe(path);
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{v}");
    stream_summary(&streams[0])
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

#[test]
fn vp8_and_opus_from_ffmpeg_muxed_into_webm_play() {
    let dir = work_dir("webm");
    let ivf = ffmpeg_one_second(
        &dir,
        "ffmpeg.ivf",
        "testsrc=size=320x240:rate=30",
        &["-c:v", "libvpx", "-g", "10"],
    );
    let ogg = ffmpeg_one_second(&dir, "ffmpeg.ogg", "sine=r=48000", &["-c:a", "libopus"]);
    let video: Vec<_> = IvfReader::new(File::open(&ivf).unwrap())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let audio = OggOpusReader::new(File::open(&ogg).unwrap()).unwrap();
    let head = audio.head().clone();
    let packets: Vec<OpusPacket> = audio.collect::<Result<_, _>>().unwrap();

    let output = dir.join("natter.webm");
    let tracks = [
        Track {
            codec: TrackCodec::Vp8 {
                width: 320,
                height: 240,
            },
        },
        Track {
            codec: TrackCodec::Opus { head },
        },
    ];
    let mut w = WebmWriter::new(BufWriter::new(File::create(&output).unwrap()), &tracks).unwrap();
    // Interleaved by time, as a recorder gets them: each packet at the
    // samples before it.
    let mut samples = 0u64;
    let mut audio_at = Vec::new();
    for p in &packets {
        audio_at.push((samples * 1000 / 48_000, &p.data));
        samples += u64::from(packet_samples(&p.data).unwrap());
    }
    let mut pending = audio_at.iter().peekable();
    let opus = |w: &mut WebmWriter<_>, (at, data): &(u64, &Vec<u8>)| {
        w.write_block(1, Duration::from_millis(*at), true, data).unwrap();
    };
    for f in &video {
        let ms = f.pts * 1000 / 30;
        while let Some(packet) = pending.next_if(|(at, _)| *at <= ms) {
            opus(&mut w, packet);
        }
        // RFC 6386 §9.1: bit 0 of the frame tag is 0 on a keyframe.
        w.write_block(0, Duration::from_millis(ms), f.data[0] & 1 == 0, &f.data)
            .unwrap();
    }
    pending.for_each(|packet| opus(&mut w, packet));
    w.finish().unwrap();

    let v = probe(&output);
    let streams: Vec<_> = v["streams"].as_array().unwrap().iter().map(stream_summary).collect();
    let expected = [
        ("vp8".to_owned(), 320, 240, video.len() as u64),
        ("opus".to_owned(), 0, 0, packets.len() as u64),
    ];
    assert_eq!(streams, expected, "{v}");
    assert_eq!(v["format"]["format_name"], "matroska,webm");
    let duration: f64 = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((duration - 1.0).abs() < 0.1, "duration {duration} s of a 1 s file: {v}");
    decodes_clean(&output);
}

/// ffmpeg decodes all of `path` without a complaint.
fn decodes_clean(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path.to_str().unwrap(), "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `frames` (keyframe flag, block) at 30 fps into a one-track
/// file and returns what ffprobe makes of it: the stream, the container
/// and the duration in seconds.
fn mux_video(path: &Path, codec: TrackCodec, frames: &[(bool, Vec<u8>)]) -> ((String, u64, u64, u64), String, f64) {
    let mut w = WebmWriter::new(BufWriter::new(File::create(path).unwrap()), &[Track { codec }]).unwrap();
    for (i, (keyframe, block)) in frames.iter().enumerate() {
        w.write_block(0, Duration::from_millis(i as u64 * 1000 / 30), *keyframe, block)
            .unwrap();
    }
    w.finish().unwrap();
    let v = probe(path);
    let streams = v["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{v}");
    let duration = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    let format = v["format"]["format_name"].as_str().unwrap().to_owned();
    (stream_summary(&streams[0]), format, duration)
}

#[test]
fn h264_from_libx264_muxed_into_matroska_plays() {
    let dir = work_dir("h264-mkv");
    let input = ffmpeg_one_second(
        &dir,
        "ffmpeg.h264",
        "testsrc=size=320x240:rate=30",
        // No B-frames, as WebRTC senders send none: blocks go in decode order.
        &[
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "10", "-bf", "0", "-f", "h264",
        ],
    );
    let stream = std::fs::read(&input).unwrap();
    let units: Vec<Vec<u8>> = access_units(&stream)
        .unwrap()
        .map(|nals| {
            let mut unit = Vec::new();
            write_access_unit(&mut unit, &nals).unwrap();
            unit
        })
        .collect();
    let config = AvcConfig::from_access_unit(&units[0]).unwrap();
    assert_eq!((config.width, config.height), (320, 240));
    let frames: Vec<(bool, Vec<u8>)> = (units.iter())
        .map(|unit| {
            let mut sample = Vec::new();
            config.write_sample(unit, &mut sample).unwrap();
            // Table 7-1: type 5 is an IDR picture's slice.
            let idr = access_units(unit).unwrap().flatten().any(|nal| nal[0] & 0x1f == 5);
            (idr, sample)
        })
        .collect();
    assert_eq!(frames.iter().filter(|(idr, _)| *idr).count(), 3);
    let output = dir.join("natter.mkv");
    let codec = TrackCodec::H264 {
        width: config.width,
        height: config.height,
        config: config.record(),
    };
    let (stream, format, duration) = mux_video(&output, codec, &frames);
    assert_eq!(stream, ("h264".to_owned(), 320, 240, 30));
    assert_eq!(format, "matroska,webm");
    assert!((duration - 29.0 / 30.0).abs() < 0.05, "duration {duration} s");
    let doc_type = std::fs::read(&output).unwrap();
    assert!(doc_type.windows(8).take(40).any(|w| w == b"matroska"));
    decodes_clean(&output);
}

#[test]
fn av1_from_libaom_muxed_into_webm_plays() {
    let dir = work_dir("av1-webm");
    let input = ffmpeg_one_second(
        &dir,
        "ffmpeg.ivf",
        "testsrc=size=320x240:rate=30",
        &[
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libaom-av1",
            "-cpu-used",
            "8",
            "-g",
            "10",
        ],
    );
    let units: Vec<_> = IvfReader::new(File::open(&input).unwrap())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let config = Av1Config::from_temporal_unit(&units[0].data).unwrap();
    assert_eq!((config.width, config.height), (320, 240));
    let frames: Vec<(bool, Vec<u8>)> = (units.iter())
        .map(|unit| {
            let mut block = Vec::new();
            av1::write_block(&unit.data, &mut block).unwrap();
            // Temporal delimiters (OBU type 2, 0x12 with a size field) are gone.
            assert!(unit.data.starts_with(&[0x12, 0]) && !block.starts_with(&[0x12]));
            // libaom sends its sequence header with each key frame.
            (Av1Config::from_temporal_unit(&unit.data).is_ok(), block)
        })
        .collect();
    assert_eq!(frames.iter().filter(|(key, _)| *key).count(), 3);
    let output = dir.join("natter.webm");
    let codec = TrackCodec::Av1 {
        width: config.width,
        height: config.height,
        config: config.record().to_vec(),
    };
    let (stream, format, duration) = mux_video(&output, codec, &frames);
    assert_eq!(stream, ("av1".to_owned(), 320, 240, 30));
    assert_eq!(format, "matroska,webm");
    assert!((duration - 29.0 / 30.0).abs() < 0.05, "duration {duration} s");
    decodes_clean(&output);
}
