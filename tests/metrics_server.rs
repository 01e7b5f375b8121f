//! `examples/metrics_server.rs` end to end: its server serves a registry
//! holding a database (under load from the example's workload) and an
//! application metric; this test scrapes `/metrics` over HTTP on a
//! loopback port, twice, parses the exposition with `prometheus-parse`
//! and checks that the counters move.

#[allow(dead_code)]
#[path = "../examples/metrics_server.rs"]
mod metrics_server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_db::testing::MemFs;
use lightning_db::{prometheus, Db};
use metrics_server::{run_workload, workload_options, MetricsServer};
use prometheus_parse::{Scrape, Value};

/// One HTTP/1.1 GET: (status line, headers, body).
fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").expect("a header block");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no {name} {labels:?}"));
    match found.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => panic!("{name} is not a scalar"),
    }
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, headers, body) = get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let content_length: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(content_length, body.len());
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

#[test]
fn scrape_a_running_workload_over_http() {
    let registry = prometheus::Registry::new();
    let rounds = prometheus::IntCounter::new("example_workload_rounds_total", "Rounds.").unwrap();
    registry.register(Box::new(rounds.clone())).unwrap();
    let mut opts = workload_options(&registry, "served");
    opts.fs = Arc::new(MemFs::new());
    let db = Arc::new(Db::open("/db", opts).unwrap());
    let server = MetricsServer::start("127.0.0.1:0", registry).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());

    let stop = Arc::new(AtomicBool::new(false));
    let workload = {
        let (db, stop, rounds) = (Arc::clone(&db), Arc::clone(&stop), rounds.clone());
        std::thread::spawn(move || {
            run_workload(
                &db,
                Instant::now() + Duration::from_secs(20),
                &stop,
                &rounds,
            )
        })
    };
    // Wait for some flushes, then scrape twice.
    let start = Instant::now();
    while db.stats().flush_latency.count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(15), "no flushes");
        std::thread::sleep(Duration::from_millis(10));
    }
    let first = scrape(addr);
    std::thread::sleep(Duration::from_millis(100));
    let second = scrape(addr);
    stop.store(true, Ordering::Release);
    workload.join().unwrap();

    let db_label = [("db", "served")];
    for op in ["get", "put", "write"] {
        let l = [("db", "served"), ("op", op)];
        let (a, b) = (
            value(&first, "lightning_operations_total", &l),
            value(&second, "lightning_operations_total", &l),
        );
        assert!(a > 0.0 && b > a, "{op}: {a} then {b}");
    }
    assert!(value(&first, "lightning_operations_total", &[("op", "delete")]) > 0.0);
    assert!(value(&second, "lightning_flush_written_bytes_total", &db_label) > 0.0);
    assert!(value(&second, "lightning_transaction_commits_total", &db_label) > 0.0);
    assert!(value(&second, "example_workload_rounds_total", &[]) >= 1.0);
    // Histograms (statistics = all): cumulative buckets ending in +Inf.
    let hist = second
        .samples
        .iter()
        .find(|s| {
            s.metric == "lightning_operation_duration_seconds" && s.labels.get("op") == Some("get")
        })
        .expect("get latency histogram");
    let Value::Histogram(buckets) = &hist.value else {
        panic!("not a histogram")
    };
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
    assert!(buckets.last().unwrap().less_than.is_infinite());
    assert!(buckets.last().unwrap().count > 0.0);
    assert!(second
        .docs
        .contains_key("lightning_wal_sync_duration_seconds"));

    // Anything but GET /metrics is refused.
    assert_eq!(get(addr, "/").0, "HTTP/1.1 404 Not Found");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    drop(server);
}
