//! natter-rtp's VP9 and AV1 payload formats against FFmpeg: FFmpeg
//! encodes a second of test pattern (libvpx-vp9, libaom-av1; 320x240,
//! a keyframe every 10 frames) into IVF; every frame goes through the
//! packetizer at a 1200-byte MTU and back through the reassembler, the
//! frames are written to a new IVF, and `ffprobe` must decode it with
//! the same frame count and size, and report key frames exactly where
//! natter saw them, in the reassembled frames and in the packets
//! (`VideoCodec::inspect`).
//!
//! Needs the Debian package `ffmpeg` with those encoders; the tests fail
//! (they do not skip) without them.

use std::path::{Path, PathBuf};
use std::process::Command;

use natter_container::ivf::{IvfHeader, IvfReader, IvfWriter, FOURCC_AV1, FOURCC_VP9};
use natter_rtp::payload::{
    Av1Depacketizer, Av1Packetizer, PayloadChunk, RtpPayload, VideoCodec, Vp9Depacketizer, Vp9Packetizer, Vp9PictureId,
};

/// An Ethernet-sized packet less IP, UDP, SRTP tag and RTP header.
const MAX_PAYLOAD: usize = 1200 - 12;
const FRAMES: usize = 30;
const KEYFRAME_INTERVAL: &str = "10";

/// The output of an FFmpeg tool that must succeed.
fn tool(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is missing ({e}): install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y ffmpeg`")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} {args:?} failed: {stderr}");
    out.stdout
}

/// `FRAMES` frames of FFmpeg's test source encoded by `encoder` into an
/// IVF file of their own under target/.
fn encode(encoder: &str, options: &[&str]) -> PathBuf {
    let encoders = String::from_utf8(tool("ffmpeg", &["-hide_banner", "-encoders"])).unwrap();
    assert!(
        encoders.split_whitespace().any(|w| w == encoder),
        "this ffmpeg has no {encoder} encoder: install Debian's ffmpeg (`apt-get install -y ffmpeg`), built with libvpx and libaom"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("natter-rtp-vp9-av1");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{encoder}.ivf"));
    let frames = FRAMES.to_string();
    let mut args = vec![
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
        "-frames:v",
        &frames,
        "-c:v",
        encoder,
        "-g",
        KEYFRAME_INTERVAL,
        "-keyint_min",
        KEYFRAME_INTERVAL,
    ];
    args.extend_from_slice(options);
    args.push(path.to_str().unwrap());
    tool("ffmpeg", &args);
    path
}

/// What ffprobe decodes: width, height and each frame's key_frame flag.
fn probe(path: &Path) -> (u64, u64, Vec<bool>) {
    let json = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height:frame=key_frame",
            "-of",
            "json",
            path.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let stream = &v["streams"][0];
    let keys = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key_frame"] == 1)
        .collect();
    (
        stream["width"].as_u64().unwrap(),
        stream["height"].as_u64().unwrap(),
        keys,
    )
}

/// One frame after the trip: its bytes, whether the reassembler called
/// it a keyframe, the size it read, and whether inspecting its first
/// packet said it starts a keyframe.
struct Trip {
    data: Vec<u8>,
    keyframe: bool,
    size: Option<(u32, u32)>,
    first_packet_keyframe: bool,
}

/// Reads the IVF file, sends each frame through `trip`, writes what comes
/// back to a new IVF file and returns it with the trips.
fn round_trip(input: &Path, fourcc: [u8; 4], mut trip: impl FnMut(&[u8], u16, u32) -> Trip) -> (PathBuf, Vec<Trip>) {
    let file = std::fs::read(input).unwrap();
    let reader = IvfReader::new(&file[..]).unwrap();
    let header: IvfHeader = *reader.header();
    assert_eq!((header.fourcc, header.width, header.height), (fourcc, 320, 240));
    let output = input.with_extension("natter.ivf");
    let mut writer = IvfWriter::new(std::fs::File::create(&output).unwrap(), &header).unwrap();
    let mut trips = Vec::new();
    for (i, frame) in reader.enumerate() {
        let frame = frame.unwrap();
        let t = trip(&frame.data, i as u16, 3000 * i as u32);
        writer.write_frame(frame.pts, &t.data).unwrap();
        trips.push(t);
    }
    writer.finish_with_frame_count().unwrap();
    (output, trips)
}

/// The bytes of each chunk, as RTP payloads.
fn payloads<'f>(chunks: impl Iterator<Item = PayloadChunk<'f>>) -> Vec<(bool, Vec<u8>)> {
    chunks
        .map(|c| {
            assert!(c.len() <= MAX_PAYLOAD);
            let mut buf = vec![0; c.len()];
            c.write_to(&mut buf).unwrap();
            (c.marker(), buf)
        })
        .collect()
}

/// Checks what ffprobe makes of the input and of natter's copy.
fn check(input: &Path, output: &Path, trips: &[Trip]) {
    let (w, h, original_keys) = probe(input);
    assert_eq!((w, h, original_keys.len()), (320, 240, FRAMES));
    assert_eq!(
        original_keys.iter().filter(|&&k| k).count(),
        FRAMES / 10,
        "{original_keys:?}"
    );
    assert_eq!(probe(output), (320, 240, original_keys.clone()));
    let ours: Vec<bool> = trips.iter().map(|t| t.keyframe).collect();
    assert_eq!(ours, original_keys, "keyframes in reassembled frames");
    let inspected: Vec<bool> = trips.iter().map(|t| t.first_packet_keyframe).collect();
    assert_eq!(inspected, original_keys, "keyframes seen in packets");
    for t in trips.iter().filter(|t| t.keyframe) {
        assert_eq!(t.size, Some((320, 240)));
    }
}

/// Numbers a frame's payloads and hands them to a depacketizer through
/// `push`, which says how many frames it dropped and what it completed:
/// the frame's bytes, keyframe flag and size. The last payload must
/// complete the frame, with nothing dropped.
fn deliver(
    codec: VideoCodec,
    packets: &[(bool, Vec<u8>)],
    seq: &mut u16,
    timestamp: u32,
    mut push: impl FnMut(RtpPayload<'_>) -> (u32, Option<(Vec<u8>, bool, Option<(u32, u32)>)>),
) -> Trip {
    let first_packet_keyframe = codec.inspect(&packets[0].1, None, None).unwrap().starts_keyframe;
    let mut back = None;
    for (marker, payload) in packets {
        *seq = seq.wrapping_add(1);
        let (dropped, frame) = push(RtpPayload {
            sequence_number: *seq,
            timestamp,
            marker: *marker,
            payload,
        });
        assert_eq!(dropped, 0);
        back = frame;
    }
    let (data, keyframe, size) = back.expect("the last packet completes the frame");
    Trip {
        data,
        keyframe,
        size,
        first_packet_keyframe,
    }
}

#[test]
fn vp9_from_ffmpeg_survives_packetizing_and_reassembly() {
    let input = encode("libvpx-vp9", &["-deadline", "realtime", "-cpu-used", "8"]);
    let mut depacketizer = Vp9Depacketizer::new();
    let mut seq = 0u16;
    let (output, trips) = round_trip(&input, FOURCC_VP9, |frame, picture_id, timestamp| {
        let packets = payloads(Vp9Packetizer::new(frame, Vp9PictureId::Long(picture_id), MAX_PAYLOAD).unwrap());
        let trip = deliver(VideoCodec::Vp9, &packets, &mut seq, timestamp, |p| {
            let out = depacketizer.push(p).unwrap();
            let frame = out.frame.map(|f| (f.data.to_vec(), f.header.keyframe, f.size()));
            (out.frames_dropped, frame)
        });
        assert_eq!(trip.data, frame);
        trip
    });
    check(&input, &output, &trips);
}

#[test]
fn av1_from_ffmpeg_survives_packetizing_and_reassembly() {
    let input = encode("libaom-av1", &["-cpu-used", "8", "-b:v", "2M"]);
    let mut depacketizer = Av1Depacketizer::new();
    let mut seq = 0u16;
    let (output, trips) = round_trip(&input, FOURCC_AV1, |tu, _, timestamp| {
        let packets = payloads(Av1Packetizer::new(tu, MAX_PAYLOAD).unwrap());
        let trip = deliver(VideoCodec::Av1, &packets, &mut seq, timestamp, |p| {
            let out = depacketizer.push(p).unwrap();
            let frame = out.frame.map(|f| {
                let size = f.sequence_header.map(|s| (s.max_frame_width, s.max_frame_height));
                (f.data.to_vec(), f.keyframe, size)
            });
            (out.frames_dropped, frame)
        });
        // FFmpeg writes what the reassembler writes: a temporal
        // delimiter, then every OBU with a minimal size field.
        assert_eq!(trip.data, tu);
        trip
    });
    check(&input, &output, &trips);
}
