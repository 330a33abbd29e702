//! The Prometheus endpoint: `/metrics` (text exposition format) and `/healthz`, served from a
//! small tokio task so that scrapes never touch the engine thread.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics` and `/healthz` while the pipeline runs.
    pub enabled: bool,
    /// Address to listen on; port 0 picks a free port (printed at start).
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address. Off by default: metrics reveal data volumes and
    /// model quality, so exposing them is a deliberate choice.
    pub allow_public: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9464)), allow_public: false }
    }
}

/// Buckets of the `_seconds` histograms: 1 µs to 1 s.
const SECONDS_BUCKETS: &[f64] = &[1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0];

/// A recorder and the handle that renders it.
pub fn recorder() -> (Arc<PrometheusRecorder>, PrometheusHandle) {
    let recorder = PrometheusBuilder::new()
        .set_buckets(SECONDS_BUCKETS)
        .expect("static bucket list is non-empty")
        .build_recorder();
    let handle = recorder.handle();
    (Arc::new(recorder), handle)
}

/// Binds the listener and serves scrapes on a background thread; returns the bound address.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(listen: SocketAddr, handle: PrometheusHandle) -> std::io::Result<SocketAddr> {
    let handler = move |r: &crate::http::Request| -> crate::http::Response {
        match r.path.as_str() {
            "/metrics" => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", handle.render()),
            "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
            _ => ("404 Not Found", "text/plain", "try /metrics or /healthz\n".to_string()),
        }
    };
    crate::http::serve(listen, "metrics-http", Arc::new(handler))
}
