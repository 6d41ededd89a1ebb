//! The recorder of `natter join --record DIR` and of `natter serve`'s
//! room recordings: each participant's video and audio to DIR/NAME.webm
//! (natter-container's WebM writer; VP8, VP9 or AV1 video), or to
//! DIR/NAME.mkv when the video is H.264, which WebM does not carry, and
//! DIR/manifest.json saying who was recorded, when, in which tracks
//! and codecs, and (in `natter serve`, whose SFU reads RFC 6464 audio
//! levels) who spoke when.
//!
//! Frames come as natter's depacketizers give them; AV1 temporal units
//! and H.264 Annex B access units are rewritten into the forms Matroska
//! stores (natter-container's `av1::write_block` and
//! `h264::AvcConfig::write_sample`), with the codec configuration taken
//! from the first keyframe. A keyframe whose configuration does not
//! read (no SPS or PPS, a bad sequence header) does not start a file.
//!
//! A participant's file starts at the first video keyframe it sends
//! (the caller asks for one with PLI, RFC 4585 §6.3.1, until it comes),
//! so it plays from its first frame; audio before it is not kept. Its
//! time 0 is that keyframe's arrival ([`Recorder::new`], natter join),
//! or the recording's start for every file alike ([`Recorder::room`],
//! natter serve), so a room's files line up. A participant that sends no video for [`AUDIO_ONLY_AFTER`]
//! after its first audio is recorded as audio alone. Block times come
//! from each track's RTP timestamps (RFC 3550 §5.1: 90 kHz video,
//! 48 kHz Opus) anchored at the frame's arrival; a track whose RTP time
//! drifts from arrival by more than [`REANCHOR`] (a new connection, a
//! new encoder) is anchored again. A file is finished when its
//! participant leaves and when the recording ends.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use natter_container::av1::{self, Av1Config};
use natter_container::h264::AvcConfig;
use natter_container::opus::OpusHead;
use natter_container::webm::{self, Track, TrackCodec, WebmWriter};
use natter_io::Format;
use serde_json::{json, Value};

/// Record a participant whose audio came this long before any video keyframe as audio alone.
const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(3);
/// A track whose RTP time and arrival time part by more than this is re-anchored.
const REANCHOR: Duration = Duration::from_secs(2);
/// RFC 7587 §4.1: Opus's RTP clock is 48 kHz whatever it encodes.
const OPUS_CLOCK: u64 = 48_000;
/// RFC 7741 §4.1, RFC 9628 §4.1, RFC 6184 §5.1, AV1 RTP §7.1: the
/// video RTP clock is 90 kHz.
const VIDEO_CLOCK: u64 = 90_000;

/// Something to print: an event name, its JSON fields, and a line of text.
pub struct Note {
    pub kind: &'static str,
    pub fields: Value,
    pub text: String,
}

/// One frame to record, as a depacketizer gave it.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub format: Format,
    /// The RTP timestamp (RFC 3550 §5.1).
    pub timestamp: u32,
    pub keyframe: bool,
    /// The picture size a video keyframe carried.
    pub size: Option<(u32, u32)>,
    /// Its RTP timestamps do not follow the previous frame's (another
    /// simulcast layer took over): its track is anchored again.
    pub restart: bool,
    pub data: &'a [u8],
}

pub struct Recorder {
    dir: PathBuf,
    started: SystemTime,
    /// `started` on the monotonic clock that frames and speakers come with.
    origin: Instant,
    /// Who spoke when; `None` where nobody says (natter join).
    speech: Option<SpeechLog>,
    /// Every file's time 0 is `origin`, not its first frame's arrival.
    shared_timeline: bool,
    /// Frames the recording lost before they reached us (a writer that
    /// fell behind), as the caller counted them.
    lost_frames: u64,
    live: HashMap<String, Participant>,
    /// Manifest entries of the files finished.
    finished: Vec<Value>,
    /// File names taken, so a second "Alice" gets a file of her own.
    names: HashSet<String>,
}

struct Participant {
    id: String,
    name: String,
    file: PathBuf,
    first_audio: Option<Instant>,
    writing: Option<Writing>,
    /// What went into the file, once started.
    recorded: Option<Recorded>,
    /// Why the file could not be written, once it could not.
    failed: Option<String>,
    dropped_video: u64,
}

struct Writing {
    writer: WebmWriter<BufWriter<File>>,
    /// When the file's time 0 arrived.
    origin: Instant,
    video: Option<TrackClock>,
    /// How video frames become blocks.
    conversion: Conversion,
    /// A converted frame, reused.
    block: Vec<u8>,
    audio: TrackClock,
}

/// What a video frame goes through on its way into a block.
enum Conversion {
    /// VP8, VP9: as the depacketizer gave it.
    None,
    Av1,
    H264(AvcConfig),
}

/// The video track's codec for the file, from its first keyframe.
fn video_track(
    format: Format,
    (width, height): (u32, u32),
    keyframe: &[u8],
) -> anyhow::Result<(TrackCodec, Conversion)> {
    Ok(match format {
        Format::Vp8 => (TrackCodec::Vp8 { width, height }, Conversion::None),
        Format::Vp9 => (TrackCodec::Vp9 { width, height }, Conversion::None),
        Format::Av1 => {
            let config = Av1Config::from_temporal_unit(keyframe)?;
            let codec = TrackCodec::Av1 {
                width,
                height,
                config: config.record().to_vec(),
            };
            (codec, Conversion::Av1)
        }
        Format::H264 => {
            let config = AvcConfig::from_access_unit(keyframe)?;
            let codec = TrackCodec::H264 {
                width,
                height,
                config: config.record(),
            };
            (codec, Conversion::H264(config))
        }
        Format::Opus => anyhow::bail!("Opus is not video"),
    })
}

struct Recorded {
    /// When the file's time 0 arrived, by the wall clock.
    started: SystemTime,
    /// The video track's codec and first picture size.
    video_format: Option<(Format, (u32, u32))>,
    video_frames: u64,
    audio_packets: u64,
}

/// One track's RTP timestamps mapped onto the file's time.
#[derive(Default)]
struct TrackClock {
    /// The RTP timestamp of the anchor, unwrapped, and the file time it is at.
    anchor: Option<(i64, Duration)>,
    /// The last RTP timestamp seen, unwrapped (RFC 3550 §A.1's idea for sequence numbers).
    last: Option<(u32, i64)>,
    /// The file time given last.
    given: Option<Duration>,
    /// The spacing of the last two frames timed from the anchor, at most
    /// [`MAX_SPACING`]: where a re-anchored frame goes after the last one.
    spacing: Duration,
}

/// The file's timestamp unit (the WebM writer's TimestampScale).
const TICK: Duration = Duration::from_millis(1);
/// The most a re-anchored frame is put after the last one (10 frames a
/// second's spacing).
const MAX_SPACING: Duration = Duration::from_millis(100);

impl TrackClock {
    /// The file time of a frame with RTP timestamp `rtp` in a clock of
    /// `rate` Hz that arrived at file time `arrival`. Times only go
    /// forward: a frame whose RTP time would put it at or before the last
    /// one's (another simulcast layer's RTP times, a new encoder) anchors
    /// the track again, at its arrival but no sooner than the track's
    /// frame spacing after the last frame, so that the cadence holds
    /// (frames a tick apart are ones a player at the track's frame rate
    /// shows at the same instant: ffmpeg calls them non-monotonic).
    fn time(&mut self, rtp: u32, rate: u64, arrival: Duration) -> Duration {
        let unwrapped = match self.last {
            Some((last, last_unwrapped)) => last_unwrapped + i64::from(rtp.wrapping_sub(last) as i32),
            None => i64::from(rtp),
        };
        self.last = Some((rtp, unwrapped));
        let after = |t: &Duration| self.given.is_none_or(|given| *t >= given + TICK);
        let anchored = self.anchor.and_then(|(anchor, at)| {
            let ticks = unwrapped - anchor;
            let offset = Duration::from_micros(ticks.unsigned_abs() * 1_000_000 / rate);
            let time = if ticks >= 0 {
                at.checked_add(offset)
            } else {
                at.checked_sub(offset)
            };
            time.filter(|t| t.abs_diff(arrival) <= REANCHOR && after(t))
        });
        let time = match (anchored, self.given) {
            (Some(time), Some(given)) => {
                self.spacing = (time - given).min(MAX_SPACING);
                time
            }
            (Some(time), None) => time,
            (None, given) => {
                let time = given.map_or(arrival, |given| arrival.max(given + self.spacing.max(TICK)));
                self.anchor = Some((unwrapped, time));
                time
            }
        };
        self.given = Some(time);
        time
    }
}

/// Who was the active speaker when, in time from the recording's start.
#[derive(Debug, Default)]
pub struct SpeechLog {
    /// The speaker now: its id, name and since when.
    current: Option<(String, String, Duration)>,
    spoken: Vec<Spoken>,
}

/// One stretch of one participant's speech.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spoken {
    pub id: String,
    pub name: String,
    pub start: Duration,
    pub end: Duration,
}

impl SpeechLog {
    /// The active speaker is `speaker` (id and name), or nobody, from `at`.
    pub fn change(&mut self, at: Duration, speaker: Option<(&str, &str)>) {
        if self.current.as_ref().map(|(id, _, _)| id.as_str()) == speaker.map(|(id, _)| id) {
            return;
        }
        self.close(at);
        self.current = speaker.map(|(id, name)| (id.to_owned(), name.to_owned(), at));
    }

    /// Participant `id` left at `at`: if it was speaking, it stopped.
    pub fn left(&mut self, at: Duration, id: &str) {
        if self.current.as_ref().is_some_and(|(current, _, _)| current == id) {
            self.close(at);
        }
    }

    /// Ends the current stretch at `at`; an empty one is not kept.
    fn close(&mut self, at: Duration) {
        if let Some((id, name, start)) = self.current.take() {
            if at > start {
                self.spoken.push(Spoken {
                    id,
                    name,
                    start,
                    end: at,
                });
            }
        }
    }

    /// The stretches so far, the current one up to `now`.
    pub fn spoken(&self, now: Duration) -> Vec<Spoken> {
        let mut spoken = self.spoken.clone();
        if let Some((id, name, start)) = self.current.as_ref().filter(|(_, _, start)| now > *start) {
            spoken.push(Spoken {
                id: id.clone(),
                name: name.clone(),
                start: *start,
                end: now,
            });
        }
        spoken
    }

    /// The manifest's `speech`: `{id, name, start_ms, end_ms}` each,
    /// from the recording's start.
    fn to_json(&self, now: Duration) -> Value {
        let ms = |d: Duration| d.as_millis() as u64;
        (self.spoken(now).iter())
            .map(|s| json!({"id": s.id, "name": s.name, "start_ms": ms(s.start), "end_ms": ms(s.end)}))
            .collect()
    }
}

impl Recorder {
    /// A recorder writing into `dir`, each file's time 0 its first
    /// frame, with no speech (natter join).
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        Self::start(dir, false)
    }

    /// A room's recorder writing into `dir`: every file's time 0 is the
    /// recording's start, and the caller reports speakers
    /// ([`Recorder::speaker`]).
    pub fn room(dir: &Path) -> anyhow::Result<Self> {
        Self::start(dir, true)
    }

    fn start(dir: &Path, room: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let recorder = Recorder {
            dir: dir.to_owned(),
            started: SystemTime::now(),
            origin: Instant::now(),
            speech: room.then(SpeechLog::default),
            shared_timeline: room,
            lost_frames: 0,
            live: HashMap::new(),
            finished: Vec::new(),
            names: HashSet::new(),
        };
        recorder
            .write_manifest(None)
            .with_context(|| format!("writing {}", dir.join("manifest.json").display()))?;
        Ok(recorder)
    }

    /// When the recording started, in ms since the Unix epoch.
    pub fn started_ms(&self) -> u64 {
        unix_ms(self.started)
    }

    /// The active speaker is `speaker` (id and name), or nobody, from `at`.
    pub fn speaker(&mut self, at: Instant, speaker: Option<(&str, &str)>) {
        let since = at.saturating_duration_since(self.origin);
        if let Some(speech) = self.speech.as_mut() {
            speech.change(since, speaker);
        }
    }

    /// `frames` more frames were lost on their way to the recorder.
    pub fn lost(&mut self, frames: u64) {
        self.lost_frames += frames;
    }

    /// Takes one frame participant `id` sent; returns what to tell the user.
    pub fn frame(&mut self, id: &str, name: &str, received: Instant, frame: &Frame<'_>) -> Vec<Note> {
        let (shared_timeline, recording_origin) = (self.shared_timeline, self.origin);
        if !self.live.contains_key(id) {
            let file = self.file_name(name, id);
            self.live.insert(
                id.to_owned(),
                Participant {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    file,
                    first_audio: None,
                    writing: None,
                    recorded: None,
                    failed: None,
                    dropped_video: 0,
                },
            );
        }
        // Inserted above.
        let Some(p) = self.live.get_mut(id) else {
            unreachable!("the participant was just added")
        };
        let mut notes = Vec::new();
        if p.failed.is_some() {
            return notes;
        }
        if p.writing.is_none() {
            let video = frame.format.is_video();
            let start_video = video && frame.keyframe && frame.size.is_some() && recordable(frame.format);
            if !video {
                p.first_audio.get_or_insert(received);
            }
            let audio_alone = !video
                && p.first_audio
                    .is_some_and(|at| received.duration_since(at) >= AUDIO_ONLY_AFTER);
            if !(start_video || audio_alone) {
                return notes;
            }
            let video_format = frame.size.filter(|_| start_video).map(|size| (frame.format, size));
            let video = match video_format.map(|(format, size)| video_track(format, size, frame.data)) {
                None => None,
                Some(Ok(track)) => Some(track),
                Some(Err(e)) => {
                    // Wait for a keyframe that has its configuration.
                    p.dropped_video += 1;
                    tracing::debug!(id, error = %e, "keyframe without a usable codec configuration");
                    return notes;
                }
            };
            let origin = if shared_timeline { recording_origin } else { received };
            match p.start(origin, video) {
                Ok(writing) => {
                    p.writing = Some(writing);
                    p.recorded = Some(Recorded {
                        started: SystemTime::now(),
                        video_format,
                        video_frames: 0,
                        audio_packets: 0,
                    });
                    notes.push(Note {
                        kind: "recording",
                        fields: json!({"id": p.id, "name": p.name, "file": p.file.display().to_string(),
                            "video": video_format.map(|(f, _)| codec_name(f))}),
                        text: format!("recording {} ({}) to {}", p.name, p.id, p.file.display()),
                    });
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    notes.push(failed_note(p, &reason));
                    p.failed = Some(reason);
                    return notes;
                }
            }
        }
        let (Some(w), Some(r)) = (p.writing.as_mut(), p.recorded.as_mut()) else {
            unreachable!("the file was just started")
        };
        let arrival = received.saturating_duration_since(w.origin);
        // The audio track follows the video track, if any.
        let audio_track = usize::from(w.video.is_some());
        let written = if frame.format == Format::Opus {
            let at = w.audio.time(frame.timestamp, OPUS_CLOCK, arrival);
            r.audio_packets += 1;
            w.writer.write_block(audio_track, at, true, frame.data)
        } else if let (Some(clock), Some((format, _))) = (w.video.as_mut(), r.video_format) {
            if frame.format != format {
                p.dropped_video += 1;
                return notes;
            }
            if frame.restart {
                clock.anchor = None;
            }
            let at = clock.time(frame.timestamp, VIDEO_CLOCK, arrival);
            let converted = match &w.conversion {
                Conversion::None => Ok(frame.data),
                Conversion::Av1 => av1::write_block(frame.data, &mut w.block).map(|()| w.block.as_slice()),
                Conversion::H264(config) => {
                    (config.write_sample(frame.data, &mut w.block)).map(|()| w.block.as_slice())
                }
            };
            match converted {
                Ok(block) => {
                    r.video_frames += 1;
                    w.writer.write_block(0, at, frame.keyframe, block)
                }
                Err(e) => {
                    // A malformed frame is left out; the file goes on.
                    tracing::debug!(id, error = %e, "video frame not recorded");
                    p.dropped_video += 1;
                    Ok(())
                }
            }
        } else {
            p.dropped_video += 1;
            Ok(())
        };
        if let Err(e) = written {
            let reason = format!("writing {}: {e}", p.file.display());
            notes.push(failed_note(p, &reason));
            p.failed = Some(reason);
        }
        notes
    }

    /// Participant `id` left: its file is finished.
    pub fn left(&mut self, id: &str) -> Option<Note> {
        let p = self.live.remove(id)?;
        let since = self.origin.elapsed();
        if let Some(speech) = self.speech.as_mut() {
            speech.left(since, id);
        }
        let (entry, note) = p.finish();
        self.finished.push(entry);
        if let Err(e) = self.write_manifest(None) {
            tracing::warn!(error = %e, "manifest not written");
        }
        note
    }

    /// We leave: every file is finished and the manifest written with our end.
    pub fn finish(mut self) -> Vec<Note> {
        let mut notes = Vec::new();
        let mut live: Vec<Participant> = self.live.drain().map(|(_, p)| p).collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        for p in live {
            let (entry, note) = p.finish();
            self.finished.push(entry);
            notes.extend(note);
        }
        if let Err(e) = self.write_manifest(Some(SystemTime::now())) {
            notes.push(Note {
                kind: "error",
                fields: json!({"message": format!("writing the manifest: {e}")}),
                text: format!("cannot write the manifest: {e}"),
            });
        }
        notes
    }

    /// `NAME.webm` with NAME made safe for a file name, or
    /// `NAME-ID.webm` when another participant had that name (or a file
    /// of either extension is there); [`Participant::start`] makes it
    /// `.mkv` for H.264.
    fn file_name(&mut self, name: &str, id: &str) -> PathBuf {
        let safe = |s: &str| -> String {
            let s: String = s
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            s.trim_matches('_').to_owned()
        };
        let mut stem = safe(name);
        if stem.is_empty() {
            stem = safe(id);
        }
        let taken = |stem: &str| {
            ["webm", "mkv"]
                .iter()
                .any(|ext| self.dir.join(format!("{stem}.{ext}")).exists())
        };
        if !self.names.insert(stem.clone()) || taken(&stem) {
            stem = format!("{stem}-{}", safe(id));
            self.names.insert(stem.clone());
        }
        self.dir.join(format!("{stem}.webm"))
    }

    fn write_manifest(&self, ended: Option<SystemTime>) -> std::io::Result<()> {
        let mut participants = self.finished.clone();
        for p in self.live.values() {
            participants.push(p.entry(None));
        }
        let manifest = json!({
            "started": unix_ms(self.started),
            "ended": ended.map(unix_ms),
            "participants": participants,
            // natter join: natter-client hands out no audio levels (RFC 6464) yet.
            "speech": self.speech.as_ref().map(|s| s.to_json(self.origin.elapsed())),
            "lost_frames": self.lost_frames,
        });
        let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
        // Written aside and renamed, so a reader never sees half of it.
        let path = self.dir.join("manifest.json");
        let partial = self.dir.join(".manifest.json.partial");
        std::fs::write(&partial, text + "\n")?;
        std::fs::rename(partial, path)
    }
}

impl Participant {
    /// Opens the file, with `video`'s track if any, named `.mkv` if the
    /// tracks make it Matroska and `.webm` if WebM.
    fn start(&mut self, origin: Instant, video: Option<(TrackCodec, Conversion)>) -> anyhow::Result<Writing> {
        let mut tracks = Vec::new();
        let (has_video, conversion) = match video {
            Some((codec, conversion)) => {
                tracks.push(Track { codec });
                (true, conversion)
            }
            None => (false, Conversion::None),
        };
        // WebRTC's Opus is opus/48000/2 (RFC 7587 §7).
        let head = OpusHead::new(2, 48_000)?;
        tracks.push(Track {
            codec: TrackCodec::Opus { head },
        });
        if webm::doc_type(&tracks) == "matroska" {
            self.file.set_extension("mkv");
        }
        let file = File::create(&self.file).with_context(|| format!("creating {}", self.file.display()))?;
        let writer = WebmWriter::new(BufWriter::new(file), &tracks)
            .with_context(|| format!("writing {}", self.file.display()))?;
        Ok(Writing {
            writer,
            origin,
            video: has_video.then(TrackClock::default),
            conversion,
            block: Vec::new(),
            audio: TrackClock::default(),
        })
    }

    /// The manifest's entry of this participant; `finished` at, with
    /// the file's duration, once finished.
    fn entry(&self, finished: Option<(SystemTime, Duration)>) -> Value {
        let r = self.recorded.as_ref();
        let mut tracks = Vec::new();
        if let Some(r) = r {
            if let Some((format, (width, height))) = r.video_format {
                tracks.push(json!({"kind": "video", "codec": codec_name(format), "width": width, "height": height, "frames": r.video_frames}));
            }
            tracks.push(json!({"kind": "audio", "codec": "opus", "packets": r.audio_packets}));
        }
        json!({
            "id": self.id,
            "name": self.name,
            "file": r.map(|_| self.file.file_name().map(|n| n.to_string_lossy().into_owned())),
            "started": r.map(|r| unix_ms(r.started)),
            "ended": finished.map(|(at, _)| unix_ms(at)),
            "duration_ms": finished.map(|(_, d)| d.as_millis() as u64),
            "tracks": tracks,
            "dropped_video_frames": self.dropped_video,
            "error": self.failed,
        })
    }

    /// Finishes the file; its manifest entry, and a note when there was a file.
    fn finish(mut self) -> (Value, Option<Note>) {
        let Some(w) = self.writing.take() else {
            return (self.entry(None), None);
        };
        let duration = w.writer.duration();
        let result = w.writer.finish().map_err(anyhow::Error::from).and_then(|mut file| {
            use std::io::Write;
            file.flush()?;
            Ok(())
        });
        if let Err(e) = result {
            self.failed = Some(format!("finishing {}: {e:#}", self.file.display()));
        }
        let entry = self.entry(Some((SystemTime::now(), duration)));
        let (video_frames, audio_packets) = self
            .recorded
            .as_ref()
            .map_or((0, 0), |r| (r.video_frames, r.audio_packets));
        let note = Note {
            kind: "recorded",
            fields: json!({"id": self.id, "name": self.name, "file": self.file.display().to_string(),
                "duration_ms": duration.as_millis() as u64, "video_frames": video_frames,
                "audio_packets": audio_packets, "error": self.failed}),
            text: format!(
                "recorded {} ({}): {:.1} s, {video_frames} video frames, {audio_packets} audio packets in {}{}",
                self.name,
                self.id,
                duration.as_secs_f64(),
                self.file.display(),
                self.failed.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
        };
        (entry, Some(note))
    }
}

fn failed_note(p: &Participant, reason: &str) -> Note {
    Note {
        kind: "error",
        fields: json!({"message": format!("recording {} ({}): {reason}", p.name, p.id)}),
        text: format!("cannot record {} ({}): {reason}", p.name, p.id),
    }
}

/// Video formats the files take: every one natter depacketizes.
fn recordable(format: Format) -> bool {
    format.is_video()
}

fn codec_name(format: Format) -> &'static str {
    match format {
        Format::Vp8 => "vp8",
        Format::Vp9 => "vp9",
        Format::H264 => "h264",
        Format::Av1 => "av1",
        Format::Opus => "opus",
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_clocks_follow_rtp_unwrap_and_reanchor() {
        let mut clock = TrackClock::default();
        let ms = Duration::from_millis;
        // Anchored at the first frame's arrival.
        assert_eq!(clock.time(u32::MAX - 899, VIDEO_CLOCK, ms(40)), ms(40));
        // 1800 ticks later across the wrap: 20 ms, whatever the arrival jitter.
        assert_eq!(clock.time(900, VIDEO_CLOCK, ms(75)), ms(60));
        // A jump of an hour of RTP time (a new encoder) re-anchors at arrival.
        assert_eq!(clock.time(900 + 90_000 * 3600, VIDEO_CLOCK, ms(100)), ms(100));
        assert_eq!(clock.time(900 + 90_000 * 3600 + 9000, VIDEO_CLOCK, ms(200)), ms(200));
        // RTP time going back by less than REANCHOR (another simulcast
        // layer): anchored again at arrival, or a frame spacing (the last
        // one, 100 ms) after the last frame if that is later.
        assert_eq!(clock.time(900 + 90_000 * 3600 - 9000, VIDEO_CLOCK, ms(330)), ms(330));
        assert_eq!(clock.time(900 + 90_000 * 3600 - 6030, VIDEO_CLOCK, ms(350)), ms(363));
        assert_eq!(clock.time(900 + 90_000 * 3600 - 12_000, VIDEO_CLOCK, ms(364)), ms(396));
        assert_eq!(clock.time(900 + 90_000 * 3600 - 9030, VIDEO_CLOCK, ms(400)), ms(429));
        // An arrival anchor before the last time: the spacing, at most
        // MAX_SPACING, after it; a tick when no spacing is known yet.
        let mut clock = TrackClock::default();
        assert_eq!(clock.time(90_000, VIDEO_CLOCK, ms(500)), ms(500));
        assert_eq!(clock.time(0, VIDEO_CLOCK, ms(490)), ms(501));
        assert_eq!(clock.time(90 * 900, VIDEO_CLOCK, ms(520)), ms(1401));
        assert_eq!(clock.time(0, VIDEO_CLOCK, ms(540)), ms(1501));
    }

    #[test]
    fn speech_is_kept_as_stretches_between_speaker_changes() {
        let ms = Duration::from_millis;
        let mut log = SpeechLog::default();
        log.change(ms(300), Some(("a", "Alice")));
        // The same speaker again changes nothing.
        log.change(ms(600), Some(("a", "Alice")));
        log.change(ms(900), Some(("b", "Bob")));
        log.change(ms(1500), None);
        // A speaker named and replaced at the same instant spoke for no time.
        log.change(ms(1800), Some(("c", "Carol")));
        log.change(ms(1800), Some(("a", "Alice")));
        // Someone else leaving ends nothing; the speaker leaving does.
        log.left(ms(2000), "b");
        log.left(ms(2400), "a");
        log.change(ms(2700), Some(("b", "Bob")));
        let spoken = |id: &str, name: &str, start, end| Spoken {
            id: id.into(),
            name: name.into(),
            start: ms(start),
            end: ms(end),
        };
        assert_eq!(
            log.spoken(ms(3000)),
            vec![
                spoken("a", "Alice", 300, 900),
                spoken("b", "Bob", 900, 1500),
                spoken("a", "Alice", 1800, 2400),
                // Still speaking: up to now.
                spoken("b", "Bob", 2700, 3000),
            ]
        );
    }

    #[test]
    fn the_manifest_lists_participants_files_and_who_spoke_when() {
        let dir = std::env::temp_dir().join(format!("natter-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut recorder = Recorder::room(&dir).unwrap();
        let t0 = recorder.origin;
        let ms = Duration::from_millis;
        let keyframe = Frame {
            format: Format::Vp8,
            timestamp: 0,
            keyframe: true,
            size: Some((320, 240)),
            restart: false,
            data: b"vp8",
        };
        let opus = Frame {
            format: Format::Opus,
            timestamp: 960,
            keyframe: true,
            size: None,
            restart: false,
            data: b"opus",
        };
        for (id, name) in [("p1", "Alice"), ("p2", "Bob"), ("p3", "Alice")] {
            assert_eq!(recorder.frame(id, name, t0 + ms(100), &keyframe)[0].kind, "recording");
            assert!(recorder.frame(id, name, t0 + ms(120), &opus).is_empty());
        }
        recorder.speaker(t0 + ms(500), Some(("p1", "Alice")));
        recorder.speaker(t0 + ms(1500), Some(("p2", "Bob")));
        recorder.speaker(t0 + ms(2500), None);
        recorder.lost(3);
        assert_eq!(recorder.left("p3").map(|n| n.kind), Some("recorded"));
        let notes = recorder.finish();
        assert_eq!(notes.len(), 2, "p1 and p2 finished at the end");
        let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        let manifest: Value = serde_json::from_str(&text).unwrap();
        let participants = manifest["participants"].as_array().unwrap();
        let files: Vec<(&str, &str)> = (participants.iter())
            .map(|p| (p["id"].as_str().unwrap(), p["file"].as_str().unwrap()))
            .collect();
        // The second Alice gets a file of her own.
        assert_eq!(
            files,
            [("p3", "Alice-p3.webm"), ("p1", "Alice.webm"), ("p2", "Bob.webm")]
        );
        for p in participants {
            assert!(dir.join(p["file"].as_str().unwrap()).is_file());
            // One timeline: the last block, 120 ms after the recording started.
            assert_eq!(p["duration_ms"], 120);
            let kinds: Vec<&str> = (p["tracks"].as_array().unwrap().iter())
                .map(|t| t["kind"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, ["video", "audio"]);
        }
        assert!(manifest["ended"].as_u64().unwrap() >= manifest["started"].as_u64().unwrap());
        assert_eq!(manifest["lost_frames"], 3);
        assert_eq!(
            manifest["speech"],
            json!([
                {"id": "p1", "name": "Alice", "start_ms": 500, "end_ms": 1500},
                {"id": "p2", "name": "Bob", "start_ms": 1500, "end_ms": 2500},
            ])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// H.264 goes to a Matroska file (`.mkv`), AV1 to WebM; each file
    /// starts at the first keyframe whose configuration reads, and the
    /// manifest names the codec.
    #[test]
    fn h264_and_av1_are_recorded_from_a_keyframe_with_their_configuration() {
        let dir = std::env::temp_dir().join(format!("natter-codecs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut recorder = Recorder::new(&dir).unwrap();
        let t0 = recorder.origin;
        let ms = Duration::from_millis;
        // libx264's 320x240 SPS and PPS, and libaom's sequence header OBU.
        let sps = b"\x67\x42\xc0\x0d\xd9\x01\x41\xfb\x01\x10\0\0\x03\0\x10\0\0\x03\x03\xc0\xf1\x42\xa4\x80";
        let pps = b"\x68\xcb\x83\xcb\x20";
        let idr = [&[0, 0, 0, 1][..], sps, &[0, 0, 0, 1], pps, &[0, 0, 0, 1, 0x65, 0x88]].concat();
        let no_pps = [&[0, 0, 0, 1][..], sps, &[0, 0, 0, 1, 0x65, 0x88]].concat();
        let sequence_header = b"\x0a\x0b\0\0\0\x04\x3c\xff\xbc\xda\xf9\0\x40";
        let key_tu = [&[0x12, 0][..], sequence_header, &[0x32, 1, 0xaa]].concat();
        let frame = |format, keyframe, data| Frame {
            format,
            timestamp: 0,
            keyframe,
            size: keyframe.then_some((320, 240)),
            restart: false,
            data,
        };
        assert!(recorder
            .frame("h", "Hana", t0, &frame(Format::H264, true, &no_pps))
            .is_empty());
        let notes = recorder.frame("h", "Hana", t0 + ms(10), &frame(Format::H264, true, &idr));
        assert_eq!(notes[0].fields["video"], "h264");
        assert!(recorder
            .frame("a", "Ada", t0, &frame(Format::Av1, true, &[0x12, 0, 0x32, 1, 0xaa]))
            .is_empty());
        let notes = recorder.frame("a", "Ada", t0 + ms(10), &frame(Format::Av1, true, &key_tu));
        assert_eq!(notes[0].fields["video"], "av1");
        recorder.finish();
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
        let files: Vec<(&str, &str, u64, u64)> = (manifest["participants"].as_array().unwrap().iter())
            .map(|p| {
                let video = &p["tracks"][0];
                (
                    p["file"].as_str().unwrap(),
                    video["codec"].as_str().unwrap(),
                    video["frames"].as_u64().unwrap(),
                    p["dropped_video_frames"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(files, [("Ada.webm", "av1", 1, 1), ("Hana.mkv", "h264", 1, 1)]);
        let mkv = std::fs::read(dir.join("Hana.mkv")).unwrap();
        assert!(mkv.windows(8).any(|w| w == b"matroska") && mkv.windows(15).any(|w| w == b"V_MPEG4/ISO/AVC"));
        let webm = std::fs::read(dir.join("Ada.webm")).unwrap();
        assert!(webm.windows(4).any(|w| w == b"webm") && webm.windows(5).any(|w| w == b"V_AV1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
