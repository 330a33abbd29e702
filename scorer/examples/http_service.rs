//! A small scoring service: std-only HTTP/1.1 (no framework) around an embedded [`Scorer`]
//! whose watcher hot-swaps every model the engine promotes.
//!
//! ```text
//! cargo run -p eddy-scorer --example http_service -- --dir models/quickstart --listen 127.0.0.1:8080
//! curl -s localhost:8080/score -d '{"amount": 12.5, "country": "fr", "is_new": true}'
//! {"prediction":0.8123,"version":7}
//! curl -s localhost:8080/health
//! ```
//!
//! JSON values map to raw features as numbers → numeric, strings → categorical, booleans →
//! boolean, `null` → missing; arrays and objects are ignored. One thread per connection with
//! keep-alive: fine for an example, put a real server in front for production traffic.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use eddy_scorer::encoding::RawValue;
use eddy_scorer::Scorer;

const MAX_BODY: usize = 1 << 20;

struct Args {
    dir: String,
    listen: String,
    poll: Duration,
    demo: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: String::new(),
        listen: "127.0.0.1:8080".into(),
        poll: Duration::from_secs(1),
        demo: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => args.dir = value()?,
            "--listen" => args.listen = value()?,
            "--poll-ms" => {
                let v = value()?;
                args.poll =
                    Duration::from_millis(v.parse().map_err(|_| format!("--poll-ms: {v:?} is not a number"))?)
            }
            "--demo" => args.demo = true,
            "-h" | "--help" => {
                return Err(
                    "usage: http_service --dir MODEL_DIR [--listen ADDR] [--poll-ms MS] [--demo]".into()
                );
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    if args.dir.is_empty() {
        return Err("--dir MODEL_DIR is required (a registry directory with a CURRENT file)".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if args.demo {
        if let Err(e) = publish_demo(&args.dir) {
            eprintln!("cannot publish the demo model: {e}");
            std::process::exit(1);
        }
    }
    let scorer = match Scorer::open(&args.dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot load a model: {e}");
            std::process::exit(1);
        }
    };
    let _watch = scorer.watch(args.poll);
    let listener = match TcpListener::bind(&args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    eprintln!("serving model v{} from {} on http://{}", scorer.version(), args.dir, args.listen);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let scorer = scorer.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &scorer) {
                        eprintln!("connection error: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
}

/// `--demo`: when `dir` serves nothing yet, publishes a small hand-made model (features
/// `amount`, `country`, `is_new`) so the service can be tried before the engine has run.
fn publish_demo(dir: &str) -> Result<(), eddy_scorer::RegistryError> {
    use eddy_scorer::encoding::{Encoding, FeatureKind, FeatureSpec, NumericStats};
    let reg = eddy_scorer::ModelRegistry::open(dir)?;
    if reg.current()?.is_some() {
        return Ok(());
    }
    let spec = |name: &str, kind| FeatureSpec { name: name.into(), kind };
    let mut encoding = Encoding::new(
        vec![
            spec("amount", FeatureKind::Numeric),
            spec("country", FeatureKind::Categorical),
            spec("is_new", FeatureKind::Boolean),
        ],
        true,
        8,
        42,
    );
    encoding.stats[0] = NumericStats { mean: 50.0, std: 25.0 };
    let weights = (0..encoding.dim()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 100.0).collect();
    let snapshot = eddy_scorer::ModelSnapshot {
        version: 0,
        kind: eddy_scorer::model::ModelKind::Logistic,
        encoding,
        weights,
        bias: -0.5,
    };
    let manifest =
        eddy_scorer::Manifest::new("champion", eddy_scorer::Producer::Retrain { trigger: "demo".into() });
    let v = reg.publish(&snapshot, manifest)?;
    eprintln!("published demo model v{v} in {dir}");
    Ok(())
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    keep_alive: bool,
}

/// Reads one request; `None` when the client closed the connection.
fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let http10 = parts.next() == Some("HTTP/1.0");
    let mut content_length = 0usize;
    let mut keep_alive = !http10;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = value.parse().unwrap_or(usize::MAX),
                "connection" => keep_alive = value.eq_ignore_ascii_case("keep-alive"),
                _ => {}
            }
        }
    }
    if content_length > MAX_BODY {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "body too large or bad Content-Length",
        ));
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request { method, path, body, keep_alive }))
}

fn serve(stream: TcpStream, scorer: &Scorer) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader)? {
        let (status, body) = route(&req, scorer);
        let conn = if req.keep_alive { "keep-alive" } else { "close" };
        write!(
            writer,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{body}",
            body.len()
        )?;
        writer.flush()?;
        if !req.keep_alive {
            break;
        }
    }
    Ok(())
}

fn route(req: &Request, scorer: &Scorer) -> (&'static str, String) {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/score") => score(&req.body, scorer),
        ("GET", "/health") => (
            "200 OK",
            serde_json::json!({
                "version": scorer.version(),
                "swaps": scorer.swaps(),
                "rejected_loads": scorer.rejected_loads(),
                "last_error": scorer.last_error().map(|e| e.to_string()),
            })
            .to_string(),
        ),
        _ => ("404 Not Found", r#"{"error":"POST /score or GET /health"}"#.into()),
    }
}

fn score(body: &[u8], scorer: &Scorer) -> (&'static str, String) {
    let obj = match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body) {
        Ok(o) => o,
        Err(e) => {
            return (
                "400 Bad Request",
                serde_json::json!({ "error": format!("expected a flat JSON object: {e}") }).to_string(),
            )
        }
    };
    let features: Vec<(&str, RawValue<'_>)> = obj
        .iter()
        .filter_map(|(k, v)| {
            let raw = match v {
                serde_json::Value::Number(n) => RawValue::Number(n.as_f64()?),
                serde_json::Value::String(s) => RawValue::Text(s),
                serde_json::Value::Bool(b) => RawValue::Bool(*b),
                serde_json::Value::Null => RawValue::Missing,
                _ => return None,
            };
            Some((k.as_str(), raw))
        })
        .collect();
    let p = scorer.score(&features);
    ("200 OK", serde_json::json!({ "prediction": p.value, "version": p.version }).to_string())
}
