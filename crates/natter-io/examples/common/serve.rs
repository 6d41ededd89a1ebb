//! What the examples' processes share: logs on stderr (`RUST_LOG`,
//! `info` by default) and an HTTP server that runs until it is told to
//! stop.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Serves `router` on `listen` until `until` completes; logs `what` is
/// ready once it listens.
pub async fn serve(
    listen: SocketAddr,
    router: axum::Router,
    what: &str,
    until: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, "{what} ready");
    axum::serve(listener, router).with_graceful_shutdown(until).await?;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn interrupted() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::warn!(%error, "no SIGTERM handler: only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}
