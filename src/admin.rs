//! The admin endpoint: `POST /retrain` asks a running daemon for a manual retrain. Off by
//! default, bound to localhost only, and every request must carry the configured token
//! (`Authorization: Bearer TOKEN`); `eddy retrain` is its client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use eddy_engine::retrain::ManualTrigger;
use serde::{Deserialize, Serialize};

use crate::http::{Request, Response};

/// `[admin]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the admin endpoint.
    pub enabled: bool,
    /// Loopback address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The shared secret; `EDDY_ADMIN_TOKEN` is used when this is empty.
    pub token: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { enabled: false, listen: SocketAddr::from(([127, 0, 0, 1], 9465)), token: String::new() }
    }
}

impl AdminConfig {
    /// The token in force.
    pub fn token(&self) -> Option<String> {
        if !self.token.is_empty() {
            return Some(self.token.clone());
        }
        std::env::var("EDDY_ADMIN_TOKEN").ok().filter(|t| !t.is_empty())
    }
}

/// Compares in time independent of where the strings differ, so the token cannot be guessed
/// byte by byte from response times.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shortest admin token accepted, in bytes (config validation refuses shorter ones).
pub const MIN_TOKEN_BYTES: usize = 16;

/// Whether an `Authorization` header value carries `token` with the `Bearer` scheme; the
/// scheme is case-insensitive (RFC 9110: `bearer`, `BEARER` are the same scheme).
fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some((scheme, credentials)) = header.map(str::trim_start).and_then(|h| h.split_once([' ', '\t']))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && same(credentials.trim(), token)
}

/// Serves the endpoint on a background thread; returns the bound address.
///
/// # Errors
/// When the address cannot be bound.
pub fn serve(listen: SocketAddr, token: String, manual: ManualTrigger) -> std::io::Result<SocketAddr> {
    let handler = move |r: &Request| -> Response {
        let authorized = authorized(r.header("authorization"), &token);
        let (status, body) = match (r.method.as_str(), r.path.as_str()) {
            ("POST", "/retrain") if authorized => {
                manual.request();
                ("202 Accepted", "retrain requested\n")
            }
            (_, "/retrain") if !authorized => ("401 Unauthorized", "missing or wrong token\n"),
            (_, "/retrain") => ("405 Method Not Allowed", "use POST\n"),
            _ => ("404 Not Found", "try POST /retrain\n"),
        };
        (status, "text/plain", body.to_string())
    };
    crate::http::serve(listen, "admin-http", Arc::new(handler))
}

/// `eddy retrain`.
#[derive(Debug, Args)]
pub struct RetrainArgs {
    /// The daemon's admin address.
    #[arg(long, default_value = "127.0.0.1:9465")]
    pub admin: String,
    /// The admin token (or EDDY_ADMIN_TOKEN).
    #[arg(long, env = "EDDY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// Asks a running daemon for a manual retrain.
pub fn retrain(args: RetrainArgs) -> ExitCode {
    let result = (|| -> std::io::Result<String> {
        let mut s = TcpStream::connect(&args.admin)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "POST /retrain HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            args.admin, args.token
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })();
    match result {
        Ok(response) if response.starts_with("HTTP/1.1 202") => {
            let _ = crate::models::print_quietly("retrain requested\n");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("error: {}", response.lines().next().unwrap_or("no response"));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: cannot reach the admin endpoint at {}: {e}", args.admin);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::authorized;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        let token = "0123456789abcdef";
        for h in ["Bearer 0123456789abcdef", "bearer 0123456789abcdef", "BEARER  0123456789abcdef "] {
            assert!(authorized(Some(h), token), "{h}");
        }
        for h in ["Bearer 0123456789abcde", "Basic 0123456789abcdef", "Bearer", "0123456789abcdef", ""] {
            assert!(!authorized(Some(h), token), "{h}");
        }
        assert!(!authorized(None, token));
    }
}
