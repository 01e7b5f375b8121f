//! A quick benchmark of the engine on a temporary directory, printing
//! lines in RocksDB `db_bench`'s format:
//!
//! ```text
//! fillrandom   :       2.345 micros/op 426439 ops/sec;   47.2 MB/s
//! ```
//!
//! Runs fillseq, fillrandom, overwrite, readrandom, readseq and readreverse
//! with 16-byte keys and 100-byte values. `--num=N` sets the number of keys
//! (default 1,000,000). The full `db_bench` tool (RocksDB-compatible
//! flags) lives in `tools/` once it lands; this example is the README's
//! main job until then.

use std::time::Instant;

use lightning_db::{Db, Options, WriteBatch};

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

fn main() -> lightning_db::Result<()> {
    let mut num: u64 = 1_000_000;
    for arg in std::env::args().skip(1) {
        if let Some(v) = arg.strip_prefix("--num=") {
            num = v.parse().expect("--num takes a whole number");
        } else {
            eprintln!("usage: quick_bench [--num=N]");
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
    let db = Db::open(&path, Options::default())?;
    let t = Instant::now();
    fill(&db, num, |i| i)?;
    report("fillseq", num, num * entry, t);
    drop(db);

    let path = dir.path().join("random");
    let db = Db::open(&path, Options::default())?;
    let keys: Vec<u64> = (0..num).map(|_| rng.next() % num).collect();
    let t = Instant::now();
    fill(&db, num, |i| keys[i as usize])?;
    report("fillrandom", num, num * entry, t);
    let t = Instant::now();
    fill(&db, num, |i| keys[(num - 1 - i) as usize])?;
    report("overwrite", num, num * entry, t);

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
