//! The smallest HTTP/1.1 server the daemon needs for `/metrics`, `/healthz` and the admin
//! endpoint: one request per connection, the head read whole whatever TCP segments it comes
//! in, bounded in size and time. Written here rather than pulling in an HTTP framework because
//! these endpoints answer a handful of fixed paths with plain text.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A parsed request head.
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path.
    pub path: String,
    /// Header lines as `(name, value)`.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A response: status line text, content type, body.
pub type Response = (&'static str, &'static str, String);

/// Serves `handler` on `listen` from a background thread named `name`; returns the bound
/// address.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(
    listen: SocketAddr,
    name: &str,
    handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(listen))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name(name.into()).spawn(move || {
        runtime.block_on(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut stream).await else { return };
                    let (status, content_type, body) = handler(&parse(&head));
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

fn parse(head: &str) -> Request {
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("/").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Request { method, path, headers }
}

/// Reads a request's head (up to the blank line) within 5 seconds and 16 KiB.
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}
