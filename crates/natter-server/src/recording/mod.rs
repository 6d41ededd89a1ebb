//! Recording (issue 14; docs/recording.md): each participant's video
//! and audio to a WebM file of its own, with a manifest of who was
//! recorded and who spoke when.
//!
//! - [`writer`]: the files and the manifest, shared by `natter join
//!   --record` and `natter serve`.
//! - [`tap`]: in `natter serve`'s media worker, a recorded room's
//!   packets put back in order and into frames ([`tap::RoomTap`]).
//! - [`start`]: the thread that writes a recording. The media worker
//!   hands it frames over a bounded channel ([`Sink`]) and never waits
//!   on the disk: when the writer falls behind, frames are dropped and
//!   counted (the manifest's `lost_frames`).

pub mod tap;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use natter::media::Format;
use serde_json::Value;

/// Messages queued for the writer thread: at 6 participants' 50 audio
/// packets and 30 video frames a second, about 2 s of media.
pub const QUEUE: usize = 1024;

/// What the media worker tells a recording's writer.
#[derive(Debug)]
pub enum Message {
    /// A frame participant `peer` sent, received at `received`.
    Frame {
        peer: String,
        received: Instant,
        format: Format,
        timestamp: u32,
        keyframe: bool,
        size: Option<(u32, u32)>,
        /// Another simulcast layer took over ([`writer::Frame::restart`]).
        restart: bool,
        data: Vec<u8>,
    },
    /// `peer` left the room: its file is finished.
    Left { peer: String },
    /// `peer` is the room's active speaker from `at`, or nobody.
    Speaker { at: Instant, peer: Option<String> },
}

/// The media worker's end of a recording: sending never blocks.
#[derive(Debug)]
pub struct Sink {
    queue: SyncSender<Message>,
    lost: Arc<AtomicU64>,
}

impl Sink {
    /// Queues `message`, or drops and counts it if the writer is behind
    /// (or gone).
    pub fn send(&self, message: Message) {
        match self.queue.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A recording being written, seen from the API.
#[derive(Debug)]
pub struct Recording {
    pub dir: PathBuf,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    lost: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

impl Recording {
    /// Messages dropped so far because the writer was behind.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Waits for the writer to finish (its [`Sink`] dropped) and returns
    /// the manifest; a file that could not be written says so in it.
    pub fn finish(self) -> anyhow::Result<Value> {
        if self.thread.join().is_err() {
            anyhow::bail!("the recording thread panicked");
        }
        let path = self.dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Starts recording into `dir` (created): the writer thread and the
/// worker's [`Sink`]. `names` gives a participant's display name.
pub fn start(dir: &Path, names: impl Fn(&str) -> Option<String> + Send + 'static) -> anyhow::Result<(Recording, Sink)> {
    let recorder = writer::Recorder::room(dir)?;
    let started_ms = recorder.started_ms();
    let (queue, messages) = mpsc::sync_channel(QUEUE);
    let lost = Arc::new(AtomicU64::new(0));
    let counted = lost.clone();
    let thread = std::thread::Builder::new()
        .name("record".into())
        .spawn(move || write(recorder, &messages, &names, &counted))?;
    Ok((
        Recording {
            dir: dir.to_owned(),
            started_ms,
            lost: lost.clone(),
            thread,
        },
        Sink { queue, lost },
    ))
}

/// The writer thread: until the sink is dropped, then the files and the
/// manifest are finished.
fn write(
    mut recorder: writer::Recorder,
    messages: &mpsc::Receiver<Message>,
    names: &dyn Fn(&str) -> Option<String>,
    lost: &AtomicU64,
) {
    let mut known: HashMap<String, String> = HashMap::new();
    let mut name_of = |peer: &str| -> String {
        known
            .entry(peer.to_owned())
            .or_insert_with(|| names(peer).unwrap_or_else(|| peer.to_owned()))
            .clone()
    };
    for message in messages {
        let notes = match message {
            Message::Frame {
                peer,
                received,
                format,
                timestamp,
                keyframe,
                size,
                restart,
                data,
            } => {
                let name = name_of(&peer);
                let frame = writer::Frame {
                    format,
                    timestamp,
                    keyframe,
                    size,
                    restart,
                    data: &data,
                };
                recorder.frame(&peer, &name, received, &frame)
            }
            Message::Left { peer } => recorder.left(&peer).into_iter().collect(),
            Message::Speaker { at, peer } => {
                let speaker = peer.map(|peer| {
                    let name = name_of(&peer);
                    (peer, name)
                });
                recorder.speaker(at, speaker.as_ref().map(|(id, name)| (id.as_str(), name.as_str())));
                Vec::new()
            }
        };
        log(&notes);
    }
    recorder.lost(lost.load(Ordering::Relaxed));
    log(&recorder.finish());
}

fn log(notes: &[writer::Note]) {
    for note in notes {
        match note.kind {
            "error" => tracing::warn!(fields = %note.fields, "{}", note.text),
            _ => tracing::info!(fields = %note.fields, "{}", note.text),
        }
    }
}
