//! Room recordings of `natter serve`'s SFU rooms (docs/recording.md): started
//! and stopped by the REST API (`POST` and `DELETE
//! /api/rooms/{room}/recording`), each into a directory of its own under
//! `--record-dir`. The media worker taps the room
//! ([`crate::recording::tap`]); a thread writes the files
//! ([`crate::recording::start`]); signaling tells the participants.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::signaling::SharedHub;
use crate::recording::Recording;

/// Why a request was refused: status, error code, message.
pub type Refused = (StatusCode, &'static str, String);

/// The recordings running, by room.
pub struct Recordings {
    root: PathBuf,
    running: Mutex<HashMap<String, Recording>>,
}

impl Recordings {
    pub fn new(root: PathBuf) -> Self {
        Recordings {
            root,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Recording>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording `room`, which must exist and not be recorded.
    pub fn start(&self, hub: &SharedHub, room: &str) -> Result<Value, Refused> {
        let mut running = self.running();
        if let Some(recording) = running.get(room) {
            let message = format!("room {room} is being recorded into {}", recording.dir.display());
            return Err((StatusCode::CONFLICT, "recording", message));
        }
        let mut locked = hub.lock().unwrap_or_else(|e| e.into_inner());
        if !locked.core.rooms().iter().any(|r| r.room == room) {
            return Err((StatusCode::NOT_FOUND, "no-such-room", format!("no room {room}")));
        }
        let Some(sfu) = locked.sfu() else {
            let message = "recording needs the SFU (natter serve without --mesh)".to_owned();
            return Err((StatusCode::CONFLICT, "no-sfu", message));
        };
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let dir = self.root.join(format!("{room}-{unix_ms}"));
        let names = {
            let hub = hub.clone();
            move |peer: &str| {
                let hub = hub.lock().unwrap_or_else(|e| e.into_inner());
                hub.core.participant_name(peer).map(str::to_owned)
            }
        };
        let (recording, sink) = crate::recording::start(&dir, names).map_err(|e| {
            let message = format!("cannot record into {}: {e:#}", dir.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "recording-failed", message)
        })?;
        sfu.record(room, Some(sink));
        // The room exists: checked above, under the same lock.
        let _ = locked.core.set_recording(room, true);
        locked.flush();
        let info = json!({"room": room, "dir": recording.dir.display().to_string(), "started": recording.started_ms});
        tracing::info!(room, dir = %recording.dir.display(), "recording started");
        running.insert(room.to_owned(), recording);
        Ok(info)
    }

    /// The recording of `room`, if it is recorded.
    pub fn status(&self, room: &str) -> Option<Value> {
        let running = self.running();
        let recording = running.get(room)?;
        Some(json!({
            "room": room,
            "dir": recording.dir.display().to_string(),
            "started": recording.started_ms,
            "lost_frames": recording.lost(),
        }))
    }

    /// Stops recording `room` and waits for its files; the manifest.
    pub async fn stop(&self, hub: &SharedHub, room: &str) -> Result<Value, Refused> {
        let Some(recording) = self.running().remove(room) else {
            return Err((
                StatusCode::NOT_FOUND,
                "not-recording",
                format!("room {room} is not recorded"),
            ));
        };
        {
            let mut locked = hub.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(sfu) = locked.sfu() {
                sfu.record(room, None);
            }
            // A room that went away is told nothing.
            let _ = locked.core.set_recording(room, false);
            locked.flush();
        }
        let dir = recording.dir.display().to_string();
        // The writer asks signaling for names: no lock is held here.
        let finished = tokio::task::spawn_blocking(move || recording.finish()).await;
        let manifest = match finished {
            Ok(Ok(manifest)) => manifest,
            Ok(Err(e)) => return Err((StatusCode::INTERNAL_SERVER_ERROR, "recording-failed", format!("{e:#}"))),
            Err(e) => return Err((StatusCode::INTERNAL_SERVER_ERROR, "recording-failed", e.to_string())),
        };
        tracing::info!(room, %dir, "recording finished");
        Ok(json!({"room": room, "dir": dir, "manifest": manifest}))
    }

    /// Stops every recording (at shutdown).
    pub async fn stop_all(&self, hub: &SharedHub) {
        let rooms: Vec<String> = self.running().keys().cloned().collect();
        for room in rooms {
            if let Err((_, _, message)) = self.stop(hub, &room).await {
                tracing::warn!(%room, %message, "recording not finished");
            }
        }
    }
}
