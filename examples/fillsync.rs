//! Synced write throughput with several writer threads (group commit).
//!
//! `cargo run --release --example fillsync -- --threads=1,4,16 --writes=2000`
//! Each thread writes `--writes` 116-byte entries with `sync: true`; the
//! line per thread count follows RocksDB `db_bench`'s format.

use std::sync::Arc;
use std::time::Instant;

use lightning_db::{Db, Options, WriteBatch, WriteOptions};

fn main() -> lightning_db::Result<()> {
    let mut threads = vec![1usize, 4, 16];
    let mut writes = 2000u64;
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--threads=") {
            threads = v
                .split(',')
                .map(|t| t.parse().expect("--threads=1,4,16"))
                .collect();
        } else if let Some(v) = arg.strip_prefix("--writes=") {
            writes = v.parse().expect("--writes=N");
        } else {
            eprintln!("usage: fillsync [--threads=1,4,16] [--writes=N per thread]");
            std::process::exit(2);
        }
    }
    for &n in &threads {
        let dir = tempfile::tempdir().map_err(|e| lightning_db::Error::io("tempdir", e))?;
        let db = Arc::new(Db::open(dir.path(), Options::default())?);
        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || -> lightning_db::Result<()> {
                    for i in 0..writes {
                        let mut b = WriteBatch::new();
                        b.put(format!("{t:04}{i:012}"), [b'v'; 100]);
                        db.write_opt(b, &WriteOptions { sync: true })?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().expect("writer thread panicked")?;
        }
        let secs = start.elapsed().as_secs_f64();
        let ops = (n as u64 * writes) as f64;
        println!(
            "fillsync {n:>2} threads : {:>11.3} micros/op {:.0} ops/sec; {:>6.1} MB/s",
            secs * 1e6 / ops,
            ops / secs,
            ops * 116.0 / 1048576.0 / secs
        );
    }
    Ok(())
}
