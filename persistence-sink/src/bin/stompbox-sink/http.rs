//! `GET /metrics`: the Prometheus text of [`SinkMetrics`]. Nothing else is served.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use persistence_sink::metrics::SinkMetrics;
use tokio_util::sync::CancellationToken;

/// Binds `addr` (so a bad address fails at start) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<SinkMetrics>,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "metrics at /metrics");
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move { metrics.prometheus() }
        }),
    );
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    }))
}
