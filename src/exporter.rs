//! The Prometheus endpoint: `/metrics` (text exposition format) and `/healthz`, served from a
//! small tokio task so that scrapes never touch the engine thread.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(listen))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name("metrics-http".into()).spawn(move || {
        runtime.block_on(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let handle = handle.clone();
                tokio::spawn(async move {
                    let Some(request) = read_head(&mut stream).await else { return };
                    let path = request.split_whitespace().nth(1).unwrap_or("/");
                    let (status, content_type, body) = match path {
                        "/metrics" => {
                            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", handle.render())
                        }
                        "/healthz" => ("200 OK", "text/plain", "ok\n".to_string()),
                        _ => ("404 Not Found", "text/plain", "try /metrics or /healthz\n".to_string()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
    })?;
    Ok(addr)
}

/// Reads a request's head (up to the blank line), whatever TCP segments it came in, within 5
/// seconds and 16 KiB.
pub(crate) async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}
