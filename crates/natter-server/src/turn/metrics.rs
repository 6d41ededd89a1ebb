//! Prometheus metrics (text exposition format) and a health check.

use std::fmt::Write;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::Shared;

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/metrics", get(move || async move { render(&shared) }))
        .route("/healthz", get(|| async { "ok\n" }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics server stopped");
    }
}

/// Every counter as `natter_turn_<name>`, plus gauges.
pub fn render(shared: &Shared) -> String {
    let (stats, allocations) = shared.totals();
    let mut out = String::new();
    for (name, help, value) in stats.counters() {
        let _ = writeln!(
            out,
            "# HELP natter_turn_{name} {help}\n# TYPE natter_turn_{name} counter\nnatter_turn_{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP natter_turn_allocations Live allocations\n# TYPE natter_turn_allocations gauge\nnatter_turn_allocations {allocations}"
    );
    out
}
