//! Serves a database's Prometheus metrics at `/metrics` on a loopback port
//! while a workload runs against it.
//!
//! ```text
//! cargo run --release --example metrics_server -- --port 9898 --seconds 60
//! curl -s http://127.0.0.1:9898/metrics | grep lightning_operations_total
//! RUST_LOG=info cargo run --release --example metrics_server   # engine events on stderr
//! ```
//!
//! The database registers its collector in a registry the application
//! owns (`Options::metrics_registry`), beside the application's own
//! metrics (here `example_workload_rounds_total`); the server encodes
//! whatever the registry gathers. The HTTP server is a few lines of
//! `std::net` (one request per connection), enough for a scraper; a real
//! service would mount the same handler in its own HTTP stack.
//!
//! The workload (puts, deletes, gets, scans, snapshots and transactions on
//! a small write buffer, so flushes and compactions happen) stops by
//! itself after `--seconds` (default 30); so does the example.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lightning_db::prometheus::{self, Encoder};
use lightning_db::{Db, Options};

/// An HTTP server answering `GET /metrics` with the text exposition of a
/// registry. Stops (and joins its thread) when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: any free port) and serves `registry`.
    pub fn start(addr: &str, registry: prometheus::Registry) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        if let Err(e) = handle(stream, &registry) {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                    }
                }
            })?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request: `GET /metrics` → 200 with the exposition, any
/// other path → 404, any other method → 405.
fn handle(stream: TcpStream, registry: &prometheus::Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let mut body = Vec::new();
            let encoder = prometheus::TextEncoder::new();
            match encoder.encode(&registry.gather(), &mut body) {
                Ok(()) => ("200 OK", encoder.format_type().to_string(), body),
                Err(e) => (
                    "500 Internal Server Error",
                    "text/plain".into(),
                    e.to_string().into_bytes(),
                ),
            }
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain".into(),
            b"metrics are at /metrics\n".to_vec(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain".into(),
            b"GET only\n".to_vec(),
        ),
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    out.write_all(&body)?;
    out.flush()
}

/// Options for the example's database: a small write buffer so flushes
/// and compactions happen within seconds, latency histograms on, metrics
/// registered in `registry` under `label`.
pub fn workload_options(registry: &prometheus::Registry, label: &str) -> Options {
    Options::default()
        .write_buffer_size(256 << 10)
        .statistics(lightning_db::StatsLevel::All)
        .metrics_label(label.to_string())
        .metrics_registry(Some(registry.clone()))
}

/// Runs a mixed workload on `db` until `deadline` or `stop`; counts its
/// rounds in `rounds`.
pub fn run_workload(
    db: &Db,
    deadline: Instant,
    stop: &AtomicBool,
    rounds: &prometheus::IntCounter,
) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    while Instant::now() < deadline && !stop.load(Ordering::Acquire) {
        for _ in 0..500 {
            let k = format!("key{:06}", next() % 20_000);
            if next() % 10 == 0 {
                let _ = db.delete(&k);
            } else {
                let _ = db.put(&k, vec![b'v'; 100]);
            }
            let _ = db.get(format!("key{:06}", next() % 20_000));
        }
        let snap = db.snapshot();
        let _ = snap.range(&b"key01"[..]..&b"key02"[..]).take(50).count();
        let _ = db.transaction_with(|tx| {
            let v = tx.get("counter")?.map_or(0, |v| v.len());
            tx.put("counter", vec![b'c'; (v + 1) % 64]);
            Ok(())
        });
        rounds.inc();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let mut port = 9898u16;
    let mut seconds = 30u64;
    let mut dir: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--port" => port = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--dir" => dir = Some(value()?.into()),
            _ => return Err(format!("unknown argument {a}; use --port, --seconds, --dir").into()),
        }
    }
    let tmp = tempfile::tempdir()?;
    let dir = dir.unwrap_or_else(|| tmp.path().join("db"));

    let registry = prometheus::Registry::new();
    let rounds = prometheus::IntCounter::new(
        "example_workload_rounds_total",
        "Rounds of the example's workload.",
    )?;
    registry.register(Box::new(rounds.clone()))?;
    let db = Db::open(&dir, workload_options(&registry, "example"))?;
    let server = MetricsServer::start(&format!("127.0.0.1:{port}"), registry)?;
    println!(
        "serving http://{}/metrics for {seconds} s (database in {})",
        server.addr(),
        dir.display()
    );
    let stop = AtomicBool::new(false);
    run_workload(
        &db,
        Instant::now() + Duration::from_secs(seconds),
        &stop,
        &rounds,
    );
    println!("{}", db.property("lightning.stats").unwrap_or_default());
    drop(server);
    db.close()?;
    Ok(())
}
