//! Media files read whole for sending: VP8, VP9 or AV1 frames from IVF
//! (the file's fourcc names the codec), Opus packets from Ogg, each with
//! its time from the start of the file.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use natter_container::ivf::{IvfReader, FOURCC_AV1, FOURCC_VP8, FOURCC_VP9};
use natter_container::opus::{packet_samples, OggOpusReader};
use natter_io::Format;

/// A file's frames with their times, read once.
pub struct Media {
    pub frames: Vec<(Duration, Vec<u8>)>,
    /// When the file ends: where the next loop starts.
    pub length: Duration,
    /// The picture size the IVF header states (video only).
    pub size: Option<(u16, u16)>,
    /// What the frames are: the IVF fourcc's codec, or Opus.
    pub format: Format,
}

pub fn read_ivf(path: &Path) -> anyhow::Result<Media> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = IvfReader::new(BufReader::new(file))?;
    let header = *reader.header();
    let format = match header.fourcc {
        FOURCC_VP8 => Format::Vp8,
        FOURCC_VP9 => Format::Vp9,
        FOURCC_AV1 => Format::Av1,
        other => anyhow::bail!(
            "{} is neither VP8, VP9 nor AV1 (fourcc {:?})",
            path.display(),
            String::from_utf8_lossy(&other)
        ),
    };
    anyhow::ensure!(
        header.timebase_denominator > 0,
        "{} has a zero time base",
        path.display()
    );
    let unit = |pts: u64| {
        Duration::from_secs_f64(
            pts as f64 * f64::from(header.timebase_numerator) / f64::from(header.timebase_denominator),
        )
    };
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        frames.push((unit(frame.pts), frame.data));
    }
    anyhow::ensure!(!frames.is_empty(), "{} has no frames", path.display());
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

pub fn read_ogg_opus(path: &Path) -> anyhow::Result<Media> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = OggOpusReader::new(BufReader::new(file))?;
    let mut frames = Vec::new();
    let mut samples = 0u64;
    while let Some(packet) = reader.next_packet()? {
        frames.push((Duration::from_micros(samples * 1000 / 48), packet.data.clone()));
        samples += u64::from(packet_samples(&packet.data)?);
    }
    anyhow::ensure!(!frames.is_empty(), "{} has no Opus packets", path.display());
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
