//! Bulk load: `--num` sorted pairs (16-byte keys, 100-byte values) through
//! `SstWriter` + `Db::ingest`, beside the same pairs through `put`
//! (db_bench's `fillseq`, then a flush and settled compactions), in
//! interleaved rounds (issue 21's target: ingest ≥ 3× fillseq).
//!
//! `cargo bench --bench bulk_load -- [num] [rounds] [ingest-only]`
//! (default 10M, 3; `ingest-only` skips the `put` side, for profiles).

use std::time::Instant;

use lightning_db::{Db, IngestOptions, Options, SstWriter};

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Pairs per ingested file (about 64 MiB of data each).
const PER_FILE: u64 = 500_000;

fn by_put(dir: &std::path::Path, num: u64) -> f64 {
    let db = Db::open(dir, Options::default()).unwrap();
    let value = [7u8; 100];
    let t = Instant::now();
    for i in 0..num {
        db.put(key(i), value).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    let s = t.elapsed().as_secs_f64();
    assert_eq!(db.get(key(num - 1)).unwrap().as_deref(), Some(&value[..]));
    s
}

fn by_ingest(dir: &std::path::Path, num: u64) -> f64 {
    let db = Db::open(dir.join("db"), Options::default()).unwrap();
    let value = [7u8; 100];
    let t = Instant::now();
    let mut files = Vec::new();
    let mut i = 0;
    while i < num {
        let path = dir.join(format!("load-{}.sst", files.len()));
        let mut w = SstWriter::create(&path, &Options::default()).unwrap();
        for j in i..(i + PER_FILE).min(num) {
            w.put(key(j), value).unwrap();
        }
        files.push(w.finish().unwrap().path);
        i += PER_FILE;
    }
    let written = t.elapsed().as_secs_f64();
    db.ingest(&files, &IngestOptions::default().move_files(true))
        .unwrap();
    let s = t.elapsed().as_secs_f64();
    eprintln!("  SstWriter {written:.2} s, ingest {:.2} s", s - written);
    assert_eq!(db.get(key(num - 1)).unwrap().as_deref(), Some(&value[..]));
    s
}

fn main() {
    // `cargo bench` passes `--bench`; positional numbers are ours.
    let nums: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let num = nums.first().copied().unwrap_or(10_000_000);
    let rounds = nums.get(1).copied().unwrap_or(3);
    if std::env::args().any(|a| a == "ingest-only") {
        // For profiling the SstWriter + ingest path alone.
        for _ in 0..rounds {
            let b = tempfile::tempdir().unwrap();
            let s = by_ingest(b.path(), num);
            println!("SstWriter+ingest {:.0} ops/s ({s:.2} s)", num as f64 / s);
        }
        return;
    }
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let a = tempfile::tempdir().unwrap();
        let put = by_put(a.path(), num);
        drop(a);
        let b = tempfile::tempdir().unwrap();
        let ingest = by_ingest(b.path(), num);
        drop(b);
        let ratio = put / ingest;
        ratios.push(ratio);
        println!(
            "round {round}: fillseq {:.0} ops/s ({put:.2} s), SstWriter+ingest {:.0} ops/s ({ingest:.2} s): {ratio:.2}x",
            num as f64 / put,
            num as f64 / ingest
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio {:.2}x", ratios[ratios.len() / 2]);
}
