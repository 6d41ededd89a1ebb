//! WebM files (the Matroska subset of the WebM Project's container
//! guidelines, Matroska as RFC 9559 specifies it): VP8, VP9 or AV1
//! video and Opus audio, written as they arrive; with an H.264 track
//! (which WebM does not take) the same layout with DocType "matroska".
//!
//! The file is an EBML header (RFC 8794 §8) and one Segment
//! (RFC 9559 §5.1) holding Info with a TimestampScale of 1 ms and the
//! Duration, Tracks, then Clusters of SimpleBlocks (RFC 9559 §10.2) each
//! written whole once the next one starts. The Segment is written with
//! an unknown size (RFC 8794 §6.2), so a file cut short by a crash still
//! plays up to its last cluster; [`WebmWriter::finish`] seeks back to
//! write the Segment's size and the Duration. No Cues, SeekHead, lacing
//! or BlockGroups: players find clusters by scanning.
//!
//! A new Cluster starts at each video keyframe once the current one
//! holds [`CLUSTER_SPAN_MS`], and whenever a block's timestamp is not
//! within the signed 16 bits a SimpleBlock can hold relative to its
//! Cluster (RFC 9559 §10.2). Each track's timestamps must not go back;
//! one that does is written at the track's last timestamp (players
//! expect monotonic blocks), and one past [`MAX_TIMESTAMP_MS`] is an
//! [`Error::WebmTimestamp`].

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use crate::{Error, Result};

/// RFC 8794 §11.2: the EBML header.
const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
/// RFC 9559 §5.1 element ids.
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// RFC 8794 §6.2: an 8-byte size with every value bit set is "unknown".
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
/// Nanoseconds per timestamp tick: 1 ms (RFC 9559 §11.1, the default).
const TIMESTAMP_SCALE_NS: u64 = 1_000_000;
/// A video keyframe starts a new Cluster once the current one spans this.
pub const CLUSTER_SPAN_MS: u64 = 1_000;
/// Larger timestamps are refused: 2^40 ms is 34 years, and keeps every
/// timestamp exact in the f64 Duration.
pub const MAX_TIMESTAMP_MS: u64 = 1 << 40;
/// RFC 9559 §10.2: SimpleBlock flag bit 0 (the most significant), Keyframe.
const KEYFRAME_FLAG: u8 = 0x80;
/// The Matroska Opus mapping: SeekPreRoll is 80 ms.
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

/// A track's codec and what the Tracks element says of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackCodec {
    /// `V_VP8`, with the picture size of the first keyframe.
    Vp8 { width: u32, height: u32 },
    /// `V_VP9`.
    Vp9 { width: u32, height: u32 },
    /// `V_AV1`: `config` is [`crate::av1::Av1Config::record`], and each
    /// block a temporal unit as [`crate::av1::write_block`] writes it.
    Av1 { width: u32, height: u32, config: Vec<u8> },
    /// `V_MPEG4/ISO/AVC`: `config` is [`crate::h264::AvcConfig::record`],
    /// and each block a sample as [`crate::h264::AvcConfig::write_sample`]
    /// writes it. Makes the file Matroska, not WebM.
    H264 { width: u32, height: u32, config: Vec<u8> },
    /// `A_OPUS`: `head` is the OpusHead (RFC 7845 §5.1) the Matroska
    /// mapping carries as CodecPrivate, its pre-skip the CodecDelay.
    Opus { head: crate::opus::OpusHead },
}

/// One track of the file; its number is its place in the list, from 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub codec: TrackCodec,
}

/// Writes a WebM file: [`WebmWriter::new`] with the tracks, then
/// [`WebmWriter::write_block`] for each frame, then [`WebmWriter::finish`].
#[derive(Debug)]
pub struct WebmWriter<W: Write + Seek> {
    w: W,
    tracks: usize,
    /// Which tracks are video: their keyframes start Clusters.
    video: Vec<bool>,
    /// Where the Segment's size field and the Duration's value are.
    segment_size_at: u64,
    duration_at: u64,
    /// The open Cluster's timestamp and body, written when it closes.
    cluster: Option<(u64, Vec<u8>)>,
    /// Each track's last timestamp, ms.
    last: Vec<Option<u64>>,
    /// The end of the last block written, ms.
    end: u64,
}

impl<W: Write + Seek> WebmWriter<W> {
    /// Writes the EBML header, the Segment's start, Info and Tracks.
    pub fn new(mut w: W, tracks: &[Track]) -> Result<Self> {
        if tracks.is_empty() || tracks.len() > 126 {
            return Err(Error::WebmTracks(tracks.len()));
        }
        let mut head = Vec::new();
        let mut ebml = Vec::new();
        uint(&mut ebml, EBML_VERSION, 1);
        uint(&mut ebml, EBML_READ_VERSION, 1);
        uint(&mut ebml, EBML_MAX_ID_LENGTH, 4);
        uint(&mut ebml, EBML_MAX_SIZE_LENGTH, 8);
        element(&mut ebml, DOC_TYPE, doc_type(tracks).as_bytes());
        uint(&mut ebml, DOC_TYPE_VERSION, 4);
        uint(&mut ebml, DOC_TYPE_READ_VERSION, 2);
        element(&mut head, EBML, &ebml);
        id(&mut head, SEGMENT);
        let segment_size_at = head.len() as u64;
        head.extend_from_slice(&UNKNOWN_SIZE);
        let mut info = Vec::new();
        uint(&mut info, TIMESTAMP_SCALE, TIMESTAMP_SCALE_NS);
        element(&mut info, MUXING_APP, b"natter");
        element(&mut info, WRITING_APP, b"natter");
        id(&mut info, DURATION);
        size(&mut info, 8);
        let duration_in_info = info.len();
        info.extend_from_slice(&0f64.to_be_bytes());
        id(&mut head, INFO);
        size(&mut head, info.len() as u64);
        let duration_at = (head.len() + duration_in_info) as u64;
        head.extend_from_slice(&info);
        let mut entries = Vec::new();
        for (i, track) in tracks.iter().enumerate() {
            entries.extend_from_slice(&track_entry(i as u64 + 1, &track.codec));
        }
        element(&mut head, TRACKS, &entries);
        let start = w.stream_position()?;
        w.write_all(&head)?;
        Ok(WebmWriter {
            w,
            tracks: tracks.len(),
            video: tracks
                .iter()
                .map(|t| !matches!(t.codec, TrackCodec::Opus { .. }))
                .collect(),
            segment_size_at: start + segment_size_at,
            duration_at: start + duration_at,
            cluster: None,
            last: vec![None; tracks.len()],
            end: 0,
        })
    }

    /// Adds one frame of track `track` (from 0, in the order given to
    /// [`WebmWriter::new`]) at `at` from the start of the file;
    /// `keyframe` marks a frame decodable alone (every Opus packet is).
    pub fn write_block(&mut self, track: usize, at: Duration, keyframe: bool, frame: &[u8]) -> Result<()> {
        if track >= self.tracks {
            return Err(Error::WebmTrack {
                track,
                tracks: self.tracks,
            });
        }
        let ms = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
        if ms > MAX_TIMESTAMP_MS {
            return Err(Error::WebmTimestamp(at));
        }
        // A track's blocks never go back in time.
        let ms = self.last[track].map_or(ms, |last| ms.max(last));
        self.last[track] = Some(ms);
        let starts_cluster = match &self.cluster {
            None => true,
            Some((start, _)) => {
                let relative = ms as i64 - *start as i64;
                relative > i64::from(i16::MAX)
                    || relative < i64::from(i16::MIN)
                    || (keyframe && self.video[track] && relative >= CLUSTER_SPAN_MS as i64)
            }
        };
        if starts_cluster {
            self.close_cluster()?;
            let mut body = Vec::with_capacity(64 * 1024);
            uint(&mut body, TIMESTAMP, ms);
            self.cluster = Some((ms, body));
        }
        // The Cluster opened above when there was none.
        let Some((start, body)) = self.cluster.as_mut() else {
            unreachable!("a cluster is open");
        };
        let relative = (ms as i64 - *start as i64) as i16;
        id(body, SIMPLE_BLOCK);
        size(body, 4 + frame.len() as u64);
        // Track number as a 1-byte EBML vint (tracks are at most 126).
        body.push(0x80 | (track as u8 + 1));
        body.extend_from_slice(&relative.to_be_bytes());
        body.push(if keyframe { KEYFRAME_FLAG } else { 0 });
        body.extend_from_slice(frame);
        self.end = self.end.max(ms);
        Ok(())
    }

    /// The last timestamp written, from the start of the file.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.end)
    }

    fn close_cluster(&mut self) -> Result<()> {
        if let Some((_, body)) = self.cluster.take() {
            let mut head = Vec::with_capacity(12);
            id(&mut head, CLUSTER);
            size(&mut head, body.len() as u64);
            self.w.write_all(&head)?;
            self.w.write_all(&body)?;
        }
        Ok(())
    }

    /// Writes the last Cluster, then the Segment's size and the
    /// Duration, and returns the writer (positioned at the end).
    pub fn finish(mut self) -> Result<W> {
        self.close_cluster()?;
        let end = self.w.stream_position()?;
        // A writer that moved back before the Segment leaves it empty.
        let segment_size = end.saturating_sub(self.segment_size_at + 8);
        self.w.seek(SeekFrom::Start(self.segment_size_at))?;
        let mut field = [0u8; 8];
        field[0] = 0x01;
        field[1..].copy_from_slice(&segment_size.to_be_bytes()[1..]);
        self.w.write_all(&field)?;
        self.w.seek(SeekFrom::Start(self.duration_at))?;
        self.w.write_all(&(self.end as f64).to_be_bytes())?;
        self.w.seek(SeekFrom::Start(end))?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// The EBML DocType of a file of `tracks`: "webm" unless a track's
/// codec is not one WebM takes (H.264), then "matroska".
pub fn doc_type(tracks: &[Track]) -> &'static str {
    if tracks.iter().any(|t| matches!(t.codec, TrackCodec::H264 { .. })) {
        "matroska"
    } else {
        "webm"
    }
}

fn track_entry(number: u64, codec: &TrackCodec) -> Vec<u8> {
    let mut entry = Vec::new();
    uint(&mut entry, TRACK_NUMBER, number);
    uint(&mut entry, TRACK_UID, number);
    uint(&mut entry, FLAG_LACING, 0);
    match codec {
        TrackCodec::Vp8 { width, height } => video_entry(&mut entry, b"V_VP8", &[], *width, *height),
        TrackCodec::Vp9 { width, height } => video_entry(&mut entry, b"V_VP9", &[], *width, *height),
        TrackCodec::Av1 { width, height, config } => video_entry(&mut entry, b"V_AV1", config, *width, *height),
        TrackCodec::H264 { width, height, config } => {
            video_entry(&mut entry, b"V_MPEG4/ISO/AVC", config, *width, *height)
        }
        TrackCodec::Opus { head } => {
            // TrackType 2 is audio.
            uint(&mut entry, TRACK_TYPE, 2);
            element(&mut entry, CODEC_ID, b"A_OPUS");
            element(&mut entry, CODEC_PRIVATE, &head.encode());
            // RFC 7845 §4.2: pre-skip is in 48 kHz samples.
            uint(
                &mut entry,
                CODEC_DELAY,
                u64::from(head.pre_skip) * 1_000_000_000 / 48_000,
            );
            uint(&mut entry, SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
            let mut audio = Vec::new();
            id(&mut audio, SAMPLING_FREQUENCY);
            size(&mut audio, 8);
            audio.extend_from_slice(&48_000f64.to_be_bytes());
            uint(&mut audio, CHANNELS, u64::from(head.channels));
            element(&mut entry, AUDIO, &audio);
        }
    }
    let mut out = Vec::new();
    element(&mut out, TRACK_ENTRY, &entry);
    out
}

/// A video TrackEntry's TrackType, CodecID, CodecPrivate (when there is
/// one) and Video.
fn video_entry(entry: &mut Vec<u8>, codec_id: &[u8], config: &[u8], width: u32, height: u32) {
    // RFC 9559 §5.1.4.1.3: TrackType 1 is video.
    uint(entry, TRACK_TYPE, 1);
    element(entry, CODEC_ID, codec_id);
    if !config.is_empty() {
        element(entry, CODEC_PRIVATE, config);
    }
    let mut video = Vec::new();
    uint(&mut video, PIXEL_WIDTH, u64::from(width));
    uint(&mut video, PIXEL_HEIGHT, u64::from(height));
    element(entry, VIDEO, &video);
}

/// RFC 8794 §5: an Element ID is written with its marker bits as is.
fn id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// RFC 8794 §6: a data size as the shortest vint that holds it (all
/// value bits set is reserved for "unknown", so one more byte then).
fn size(out: &mut Vec<u8>, n: u64) {
    let mut len = 1;
    while len < 8 && n >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let marked = n | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

fn element(out: &mut Vec<u8>, element_id: u32, body: &[u8]) {
    id(out, element_id);
    size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// RFC 8794 §7.2: an unsigned integer in the fewest bytes (at least one).
fn uint(out: &mut Vec<u8>, element_id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    element(out, element_id, &bytes[skip..]);
}
