//! `natter serve`: the web client, the REST API, WebSocket signaling
//! (rooms of [`natter_signaling`]) and the embedded TURN server, in one
//! process.
//!
//! Threads: the TURN server's UDP workers and its TCP/TLS thread (see
//! [`crate::turn`]), and a small tokio runtime for HTTP and signaling.
//! SIGINT or SIGTERM closes every WebSocket with code 1001, waits up to
//! [`DRAIN`] for connections to finish, then stops TURN.

pub mod config;
mod http;
mod recording;
pub(crate) mod signaling;
mod tls;

use std::time::Duration;

use anyhow::Context;

pub use config::{ServeConfig, ServeOptions};

/// Longest wait for open connections at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs until SIGINT or SIGTERM.
pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    if config.secret_generated {
        tracing::warn!(
            "no --secret: tokens are signed with a random key until restart and the REST API is unusable; \
             use --dev for open rooms, or set NATTER_SECRET and mint tokens (natter token, POST /api/rooms/ROOM/tokens)"
        );
    }
    let (stop_turn, turn_stopped) = tokio::sync::oneshot::channel::<()>();
    let (turn_stats, turn_thread) = match config.turn.clone() {
        None => (None, None),
        Some(turn_config) => {
            // The TURN server's stream side is single-threaded (`Rc`), so it
            // is built on the thread that runs it.
            let (ready, started) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new().name("turn".into()).spawn(move || {
                let turn = match crate::turn::start(turn_config) {
                    Ok(turn) => turn,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready.send(Ok(turn.shared()));
                turn.run_until(async {
                    let _ = turn_stopped.await;
                })
            })?;
            let stats = started.recv().context("the TURN thread ended")??;
            (Some(stats), Some(thread))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve")
        .enable_all()
        .build()?;
    let result = runtime.block_on(http::serve(config, turn_stats));
    let _ = stop_turn.send(());
    if let Some(thread) = turn_thread {
        match thread.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("the TURN thread panicked"),
        }
    }
    tracing::info!("stopped");
    result
}
