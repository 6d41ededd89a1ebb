//! Media files read whole for sending: VP8, VP9 or AV1 frames from IVF
//! (the file's fourcc names the codec), H.264 access units from an Annex
//! B byte stream ([`annexb`]), Opus packets from Ogg (RFC 7845), each
//! with its time from the start of the file, and a [`Schedule`] that
//! sends several files' frames in the order of their times.
//!
//! ```no_run
//! # fn example() -> Result<(), natter_io::media_file::MediaFileError> {
//! use natter_io::media_file::{read_ivf, read_ogg_opus, Schedule};
//!
//! let video = read_ivf("video.ivf".as_ref())?;
//! let audio = read_ogg_opus("audio.ogg".as_ref())?;
//! for (file, at, frame) in Schedule::new([&video, &audio], false) {
//!     // ... at `at` from the start, send `frame` on file `file`'s track ...
//! #   let _ = (file, at, frame);
//! }
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Duration;

use natter_container::ivf::{IvfReader, FOURCC_AV1, FOURCC_VP8, FOURCC_VP9};
use natter_container::opus::{packet_samples, OggOpusReader};

use crate::Format;

pub mod annexb;

/// Why a media file could not be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum MediaFileError {
    #[error("opening {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    /// The container is malformed or cut short.
    #[error("reading {}: {source}", path.display())]
    Container {
        path: PathBuf,
        source: natter_container::Error,
    },
    #[error("{} is neither VP8, VP9 nor AV1 (fourcc {fourcc:?})", path.display())]
    Codec { path: PathBuf, fourcc: String },
    #[error("{} has a zero time base", path.display())]
    ZeroTimeBase { path: PathBuf },
    #[error("{} has no frames", path.display())]
    Empty { path: PathBuf },
    /// Not a `source` field, so an error chain says it once.
    #[error("{} is not an H.264 Annex B stream: {error}", path.display())]
    AnnexB { path: PathBuf, error: annexb::AnnexBError },
    #[error("{} has {channels} channels; WebRTC's Opus carries one or two", path.display())]
    Channels { path: PathBuf, channels: u8 },
    #[error("{} plays at {fps} frames a second; give 1 to 240", path.display())]
    FrameRate { path: PathBuf, fps: u32 },
}

fn open(path: &Path) -> Result<BufReader<File>, MediaFileError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| MediaFileError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Tags a container error with the file it came from.
fn container(path: &Path) -> impl Fn(natter_container::Error) -> MediaFileError + '_ {
    move |source| MediaFileError::Container {
        path: path.to_owned(),
        source,
    }
}

/// A file's frames with their times, read once.
#[derive(Clone, Debug)]
pub struct Media {
    pub frames: Vec<(Duration, Vec<u8>)>,
    /// When the file ends: where the next loop starts.
    pub length: Duration,
    /// The picture size the IVF header states (video only).
    pub size: Option<(u16, u16)>,
    /// What the frames are: the IVF fourcc's codec, or Opus.
    pub format: Format,
}

/// An IVF file's frames, its codec named by the header's fourcc.
pub fn read_ivf(path: &Path) -> Result<Media, MediaFileError> {
    let mut reader = IvfReader::new(open(path)?).map_err(container(path))?;
    let header = *reader.header();
    let format = match header.fourcc {
        FOURCC_VP8 => Format::Vp8,
        FOURCC_VP9 => Format::Vp9,
        FOURCC_AV1 => Format::Av1,
        other => {
            return Err(MediaFileError::Codec {
                path: path.to_owned(),
                fourcc: String::from_utf8_lossy(&other).into_owned(),
            })
        }
    };
    if header.timebase_denominator == 0 {
        return Err(MediaFileError::ZeroTimeBase { path: path.to_owned() });
    }
    let unit = |pts: u64| {
        Duration::from_secs_f64(
            pts as f64 * f64::from(header.timebase_numerator) / f64::from(header.timebase_denominator),
        )
    };
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().map_err(container(path))? {
        frames.push((unit(frame.pts), frame.data));
    }
    if frames.is_empty() {
        return Err(MediaFileError::Empty { path: path.to_owned() });
    }
    // One frame interval after the last frame.
    let step = if frames.len() > 1 {
        frames[frames.len() - 1].0.saturating_sub(frames[0].0) / (frames.len() as u32 - 1)
    } else {
        Duration::from_millis(33)
    };
    let length = frames[frames.len() - 1].0 + step;
    Ok(Media {
        frames,
        length,
        size: Some((header.width, header.height)),
        format,
    })
}

/// The IVF file signature (`DKIF`), which [`read_video`] tells IVF by.
const IVF_SIGNATURE: &[u8; 4] = b"DKIF";

/// A video file: IVF (by its `DKIF` signature) or else an H.264 Annex B
/// stream played at `fps` frames a second.
pub fn read_video(path: &Path, fps: u32) -> Result<Media, MediaFileError> {
    let mut signature = [0u8; 4];
    let is_ivf = {
        use std::io::Read;
        let mut file = open(path)?;
        file.read_exact(&mut signature).is_ok() && &signature == IVF_SIGNATURE
    };
    if is_ivf {
        read_ivf(path)
    } else {
        read_annexb(path, fps)
    }
}

/// An H.264 Annex B file's access units ([`annexb::access_units`]),
/// the n-th at n / `fps` seconds (the stream carries no times).
pub fn read_annexb(path: &Path, fps: u32) -> Result<Media, MediaFileError> {
    if !(1..=240).contains(&fps) {
        return Err(MediaFileError::FrameRate {
            path: path.to_owned(),
            fps,
        });
    }
    let data = std::fs::read(path).map_err(|source| MediaFileError::Open {
        path: path.to_owned(),
        source,
    })?;
    let units = annexb::access_units(&data).map_err(|error| MediaFileError::AnnexB {
        path: path.to_owned(),
        error,
    })?;
    let at = |n: usize| Duration::from_secs(n as u64) / fps;
    let length = at(units.len());
    Ok(Media {
        frames: units
            .into_iter()
            .enumerate()
            .map(|(n, unit)| (at(n), unit.data))
            .collect(),
        length,
        size: None,
        format: Format::H264,
    })
}

/// Makes `config` negotiate video in `format` alone: natter's default
/// entries of that codec (for H.264, packetization mode 1, RFC 6184
/// §8.1) and their RTX (RFC 4588 §8.1), so a peer that takes our track
/// decodes what the file holds, and one that cannot is seen to refuse it.
pub fn negotiate_only(config: &mut crate::PeerConfig, format: Format) {
    let all = natter::jsep::codec::default_video_codecs();
    let primary: Vec<u8> = all
        .iter()
        .filter(|c| Format::from_name(&c.encoding_name) == Some(format))
        .map(|c| c.payload_type)
        .collect();
    let kept = all
        .into_iter()
        .filter(|c| {
            primary.contains(&c.payload_type)
                || (c.encoding_name.eq_ignore_ascii_case("rtx")
                    && c.parameter("apt")
                        .and_then(|apt| apt.parse().ok())
                        .is_some_and(|apt| primary.contains(&apt)))
        })
        .collect();
    config.video_codecs = Some(kept);
}

/// An Ogg Opus file's packets, each at the time its first sample plays
/// (the samples before it, from each packet's TOC, RFC 6716 §3.1).
pub fn read_ogg_opus(path: &Path) -> Result<Media, MediaFileError> {
    let mut reader = OggOpusReader::new(open(path)?).map_err(container(path))?;
    let channels = reader.head().channels;
    if channels > 2 {
        return Err(MediaFileError::Channels {
            path: path.to_owned(),
            channels,
        });
    }
    let mut frames = Vec::new();
    let mut samples = 0u64;
    while let Some(packet) = reader.next_packet().map_err(container(path))? {
        let duration = packet_samples(&packet.data).map_err(container(path))?;
        frames.push((Duration::from_micros(samples * 1000 / 48), packet.data));
        samples += u64::from(duration);
    }
    if frames.is_empty() {
        return Err(MediaFileError::Empty { path: path.to_owned() });
    }
    Ok(Media {
        frames,
        length: Duration::from_micros(samples * 1000 / 48),
        size: None,
        format: Format::Opus,
    })
}

/// The frames of several files in the order of their times: the index
/// of the file, the frame's time, the frame. With `looping`, a file
/// that ends starts again, its times going on from its length.
pub struct Schedule<'a> {
    /// Each file, the next frame's index, and the time its pass began.
    files: Vec<(&'a Media, usize, Duration)>,
    looping: bool,
}

impl<'a> Schedule<'a> {
    /// The frames of `files`, from the start; with `looping` without end.
    pub fn new(files: impl IntoIterator<Item = &'a Media>, looping: bool) -> Self {
        Schedule {
            files: files.into_iter().map(|m| (m, 0, Duration::ZERO)).collect(),
            looping,
        }
    }
}

impl<'a> Iterator for Schedule<'a> {
    type Item = (usize, Duration, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (index, (media, at, base)) = self
            .files
            .iter_mut()
            .enumerate()
            .filter(|(_, (media, at, _))| *at < media.frames.len())
            .min_by_key(|(_, (media, at, base))| *base + media.frames[*at].0)?;
        let (time, frame) = &media.frames[*at];
        let item = (index, *base + *time, frame.as_slice());
        *at += 1;
        if *at == media.frames.len() && self.looping {
            *at = 0;
            *base += media.length;
        }
        Some(item)
    }
}
