//! A quick benchmark of the engine on a temporary directory, printing
//! lines in RocksDB `db_bench`'s format:
//!
//! ```text
//! fillrandom   :       2.345 micros/op 426439 ops/sec;   47.2 MB/s
//! ```
//!
//! Runs fillseq, fillrandom, overwrite, readrandom, readseq and readreverse
//! with 16-byte keys and 100-byte values. Flags: `--num=N` (default
//! 1,000,000), `--style=leveled|tiered` (compaction style), `--stats`
//! (after the fills: wait for compaction, print the compaction stats table,
//! the on-disk size and the space amplification over a full compaction). The full `db_bench` tool (RocksDB-compatible
//! flags) lives in `tools/` once it lands; this example is the README's
//! main job until then.

use std::time::Instant;

use lightning_db::{CompactionStyle, Db, Options, WriteBatch};

const KEY_SIZE: usize = 16;
const VALUE_SIZE: usize = 100;

/// A small, fast, seeded generator (xorshift64*), so runs repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn key(i: u64) -> [u8; KEY_SIZE] {
    let mut k = [b'0'; KEY_SIZE];
    let s = format!("{i:016}");
    k.copy_from_slice(&s.as_bytes()[s.len() - KEY_SIZE..]);
    k
}

fn report(name: &str, ops: u64, bytes: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    let micros = secs * 1e6 / ops.max(1) as f64;
    let ops_sec = ops as f64 / secs;
    if bytes > 0 {
        println!(
            "{name:<12} : {micros:>11.3} micros/op {ops_sec:.0} ops/sec; {:>6.1} MB/s",
            bytes as f64 / 1048576.0 / secs
        );
    } else {
        println!("{name:<12} : {micros:>11.3} micros/op {ops_sec:.0} ops/sec;");
    }
}

fn fill(db: &Db, num: u64, order: impl Fn(u64) -> u64) -> lightning_db::Result<()> {
    let value = vec![b'v'; VALUE_SIZE];
    let mut b = WriteBatch::new();
    for i in 0..num {
        b.put(key(order(i)), &value);
        db.write(std::mem::take(&mut b))?;
    }
    Ok(())
}

fn dir_bytes(dir: &std::path::Path, suffix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> lightning_db::Result<()> {
    let mut num: u64 = 1_000_000;
    let mut stats = false;
    let mut opts = Options::default();
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--num=") {
            num = v.parse().expect("--num takes a whole number");
        } else if arg == "--stats" {
            stats = true;
        } else if arg == "--style=tiered" {
            opts.compaction.style = CompactionStyle::Tiered;
        } else if arg == "--style=leveled" {
            opts.compaction.style = CompactionStyle::Leveled;
        } else {
            eprintln!("usage: quick_bench [--num=N] [--style=leveled|tiered] [--stats]");
            std::process::exit(2);
        }
    }
    let dir = tempfile::tempdir().map_err(|e| lightning_db::Error::io("tempdir", e))?;
    println!(
        "Lightning DB quick_bench: {num} keys, {KEY_SIZE}-byte keys, {VALUE_SIZE}-byte values, dir {}",
        dir.path().display()
    );
    let entry = (KEY_SIZE + VALUE_SIZE) as u64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let path = dir.path().join("seq");
    let db = Db::open(&path, opts.clone())?;
    let t = Instant::now();
    fill(&db, num, |i| i)?;
    report("fillseq", num, num * entry, t);
    drop(db);

    let path = dir.path().join("random");
    let db = Db::open(&path, opts.clone())?;
    let keys: Vec<u64> = (0..num).map(|_| rng.next() % num).collect();
    let t = Instant::now();
    fill(&db, num, |i| keys[i as usize])?;
    report("fillrandom", num, num * entry, t);
    let t = Instant::now();
    fill(&db, num, |i| keys[(num - 1 - i) as usize])?;
    report("overwrite", num, num * entry, t);
    if stats {
        db.wait_for_compactions()?;
        let st = db.compaction_stats();
        println!("{st}");
        let settled = dir_bytes(&path, ".sst");
        db.compact_range::<&[u8], _>(..)?;
        let live = dir_bytes(&path, ".sst");
        println!(
            "on-disk after fillrandom+overwrite: {:.1} MiB of SST files; after a full compaction {:.1} MiB; space amplification {:.3}; write amplification (flush+compaction)/user {:.2}, (WAL+flush+compaction)/user {:.2}",
            settled as f64 / 1048576.0,
            live as f64 / 1048576.0,
            settled as f64 / live.max(1) as f64,
            st.write_amplification(),
            (st.wal_bytes + st.total_written()) as f64 / st.user_bytes_written.max(1) as f64,
        );
    }

    let t = Instant::now();
    let mut found = 0u64;
    for _ in 0..num {
        if db.get(key(rng.next() % num))?.is_some() {
            found += 1;
        }
    }
    report("readrandom", num, 0, t);
    println!("  ({found} of {num} found)");

    let t = Instant::now();
    let mut n = 0u64;
    for item in db.iter() {
        item?;
        n += 1;
    }
    report("readseq", n, n * entry, t);
    let t = Instant::now();
    let mut n = 0u64;
    for item in db.iter().rev() {
        item?;
        n += 1;
    }
    report("readreverse", n, n * entry, t);
    db.close()?;
    Ok(())
}
