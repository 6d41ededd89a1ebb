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

use std::net::SocketAddr;
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
    // The SFU's socket is bound first: a client that reaches the host only
    // through the embedded TURN server relays to it, and TURN refuses
    // non-global peers other than the server's own media endpoints.
    let sfu_socket = match config.sfu {
        Some((bind, advertised)) => {
            let socket = crate::sfu::Sfu::bind(bind)?;
            let endpoint = SocketAddr::new(advertised, socket.local_addr()?.port());
            Some((socket, advertised, endpoint))
        }
        None => None,
    };
    let own_peers: Vec<SocketAddr> = sfu_socket.iter().map(|(_, _, endpoint)| *endpoint).collect();
    let (stop_turn, turn_stopped) = tokio::sync::oneshot::channel::<()>();
    let (turn_stats, turn_thread) = match config.turn.clone() {
        None => (None, None),
        Some(turn_config) => {
            // The TURN server's stream side is single-threaded (`Rc`), so it
            // is built on the thread that runs it.
            let (ready, started) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new().name("turn".into()).spawn(move || {
                let turn = match crate::turn::start(turn_config, &own_peers) {
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
    let sfu_socket = sfu_socket.map(|(socket, advertised, _)| (socket, advertised));
    let result = runtime.block_on(http::serve(config, turn_stats, sfu_socket));
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
