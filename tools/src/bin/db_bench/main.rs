//! `db_bench` for Lightning DB: RocksDB's benchmark driver, with the same
//! flags, benchmark names and output lines, so the two can be run on the
//! same command line and compared.
//!
//! ```text
//! fillrandom   :       2.345 micros/op 426439 ops/sec;   47.2 MB/s
//! ```
//!
//! With no flags it runs fillseq, fillrandom, overwrite, readrandom, readseq
//! and seekrandom on 1,000,000 keys in a temporary directory that is
//! removed afterwards.
//!
//! `--engine=fjall` (built with the `peer-fjall` feature) runs the same
//! benchmarks, with the same keys and values, on fjall 3 instead: see
//! `engine.rs` for the trait both engines implement and `fjall_engine.rs`
//! for how the flags map to fjall's options (docs/benchmarks.md too).
//! `--engine=lmdb` (built with the `peer-lmdb` feature) does the same on
//! LMDB through heed, the anchor for read performance: see
//! `lmdb_engine.rs`.
//!
//! RocksDB's integrated-BlobDB flags (`--enable_blob_files`,
//! `--min_blob_size`, `--blob_file_size`, `--blob_compression_type`,
//! `--enable_blob_garbage_collection`,
//! `--blob_garbage_collection_age_cutoff`) turn on fjall's key-value
//! separation (`fjall_engine.rs`) and Lightning DB's options of the same
//! names (`apply_blob_flags` in `engine.rs`).

mod engine;
#[cfg(feature = "peer-fjall")]
mod fjall_engine;
#[cfg(feature = "peer-lmdb")]
mod lmdb_engine;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use lightning_tools::progress::Progress;

use crate::engine::Engine;

/// Benchmarks run when `--benchmarks` is not given.
const DEFAULT_BENCHMARKS: &str = "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "db_bench",
    about = "Lightning DB benchmark, compatible with RocksDB's db_bench flags and output",
    rename_all = "snake_case"
)]
pub struct Flags {
    /// Comma-separated benchmarks, run in order (an unknown name is refused
    /// before anything runs).
    #[arg(long, value_enum, value_delimiter = ',', default_value = DEFAULT_BENCHMARKS)]
    benchmarks: Vec<Benchmark>,
    /// Engine under test: lightning, fjall (a peer engine; needs a build
    /// with `--features peer-fjall`) or lmdb (the peer engine for reads;
    /// needs a build with `--features peer-lmdb`).
    #[arg(long, value_enum, default_value_t = EngineKind::Lightning)]
    engine: EngineKind,
    /// Number of keys (the key space, and the writes of fill benchmarks).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) num: u64,
    /// Reads per read benchmark (-1: --num).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    reads: i64,
    /// Writes per write benchmark (-1: --num; fillsync: --num / 1000).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    writes: i64,
    /// Key size in bytes (at least 8).
    #[arg(long, default_value_t = 16)]
    key_size: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Threads running each benchmark.
    #[arg(long, default_value_t = 1)]
    pub(crate) threads: usize,
    /// Sync every write (fillsync always does).
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) sync: bool,
    /// Database directory (default: a temporary directory, removed at the end).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Reuse the database in --db instead of starting empty.
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    use_existing_db: bool,
    /// Block compression: none or zstd.
    #[arg(long, default_value = "none")]
    pub(crate) compression_type: String,
    /// zstd level when --compression_type=zstd.
    #[arg(long, default_value_t = 3)]
    pub(crate) compression_level: i32,
    /// Memtable size in bytes (default: the engine's, 64 MiB).
    #[arg(long)]
    pub(crate) write_buffer_size: Option<usize>,
    /// Block cache size in bytes (default: the engine's; Lightning DB's is
    /// 32 MiB and includes open tables' filters and index roots; 0 turns
    /// it off).
    #[arg(long)]
    pub(crate) cache_size: Option<u64>,
    /// Row cache size in bytes (RocksDB's `--row_cache_size`; Lightning
    /// DB's `row_cache_size`, default 0: off).
    #[arg(long)]
    pub(crate) row_cache_size: Option<u64>,
    /// Block cache replacement policy (Lightning DB): arc or lru.
    #[arg(long, default_value = "arc")]
    pub(crate) cache_policy: String,
    /// Scanner threads of readrandomwhilescanning (0: the readers alone,
    /// for a baseline hit rate).
    #[arg(long, default_value_t = 1)]
    pub(crate) scanners: usize,
    /// Skew of readrandomwhilescanning's Zipfian keys, in (0, 1).
    #[arg(long, default_value_t = 0.99)]
    zipf_theta: f64,
    /// Bloom filter bits per key (0: no filter).
    #[arg(long, default_value_t = 10)]
    pub(crate) bloom_bits: u32,
    /// Print latency percentiles per benchmark.
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    histogram: bool,
    /// Print the database's statistics after the benchmarks (Lightning
    /// DB: the `lightning.stats` property).
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    statistics: bool,
    /// What Lightning DB counts (`Options::statistics`): off, counters
    /// (every metric but per-operation latencies; the engine's default)
    /// or all (plus latency histograms).
    #[arg(long)]
    pub(crate) stats_level: Option<String>,
    /// Random seed (0: fixed default).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Nexts after each seek in seekrandom.
    #[arg(long, default_value_t = 0)]
    seek_nexts: u64,
    /// Keys' first N bytes are their prefix (RocksDB's `--prefix_size`;
    /// 0: none): Lightning DB filters SST files by prefix
    /// (`Options::prefix_extractor`), and `seekrandom` reads only within
    /// the sought key's prefix (RocksDB's `prefix_same_as_start`).
    #[arg(long, default_value_t = 0)]
    pub(crate) prefix_size: usize,
    /// Keys per `multi_get` in multireadrandom (RocksDB's `--batch_size`).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Write benchmarks issue one range deletion after every this many
    /// writes of a thread (0: none; RocksDB's flag).
    #[arg(long, default_value_t = 0)]
    writes_per_range_tombstone: u64,
    /// Keys each range deletion covers, from a random start (RocksDB's
    /// flag).
    #[arg(long, default_value_t = 100)]
    range_tombstone_width: u64,
    /// Most range deletions per thread and benchmark (0: no limit;
    /// RocksDB's flag).
    #[arg(long, default_value_t = 0)]
    max_num_range_tombstones: u64,
    /// Bytes per second for the writer of readwhilewriting (0: unthrottled).
    #[arg(long, default_value_t = 0)]
    benchmark_write_rate_limit: u64,
    /// 0 leveled, 1 tiered (RocksDB's universal).
    #[arg(long)]
    pub(crate) compaction_style: Option<u8>,
    /// Background threads for flush and compaction.
    #[arg(long)]
    pub(crate) max_background_jobs: Option<usize>,
    /// Subcompactions per compaction job.
    #[arg(long)]
    pub(crate) subcompactions: Option<usize>,
    /// Key-value separation (RocksDB's integrated BlobDB): store values of
    /// at least --min_blob_size bytes in blob files, the tables keeping a
    /// reference. fjall: its KV separation; Lightning DB: its blob files.
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) enable_blob_files: bool,
    /// Smallest value, in bytes, stored in a blob file (with
    /// --enable_blob_files).
    #[arg(long, default_value_t = 0)]
    pub(crate) min_blob_size: u64,
    /// Target size of a blob file in bytes (with --enable_blob_files).
    #[arg(long, default_value_t = 268_435_456)]
    pub(crate) blob_file_size: u64,
    /// Compression of blob files (with --enable_blob_files): none or zstd,
    /// as --compression_type.
    #[arg(long, default_value = "none")]
    pub(crate) blob_compression_type: String,
    /// Garbage-collect blob files during compaction: rewrite the live
    /// values of the oldest ones (with --enable_blob_files).
    #[arg(long, default_value_t = false, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) enable_blob_garbage_collection: bool,
    /// Fraction of the oldest blob files that garbage collection may
    /// rewrite, in [0, 1].
    #[arg(long, default_value_t = 0.25, value_parser = parse_fraction)]
    pub(crate) blob_garbage_collection_age_cutoff: f64,
    /// Forced blob garbage collection: the garbage fraction of the oldest
    /// `age_cutoff` blob files that rewrites the tables referencing them,
    /// in [0, 1] (1: off, RocksDB's default).
    #[arg(long, default_value_t = 1.0, value_parser = parse_fraction)]
    pub(crate) blob_garbage_collection_force_threshold: f64,
    /// Accounts of txnbank (fewer accounts: more conflicts).
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    /// The merge operator of `mergerandom` (RocksDB's names): `uint64add`
    /// (8-byte little-endian counters; needs --value_size=8) or
    /// `stringappend` (`,` between pieces). Empty: none.
    #[arg(long, default_value = "")]
    pub(crate) merge_operator: String,
    /// Options from a Lightning DB TOML file; the flags above override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

/// The benchmarks `--benchmarks` names (RocksDB's db_bench names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Benchmark {
    /// Writes `--num` keys in order into a new database.
    Fillseq,
    /// Writes `--num` random keys into a new database.
    Fillrandom,
    /// Writes random keys into the existing database.
    Overwrite,
    /// Synced random writes into a new database (`--num` / 1000 of them).
    Fillsync,
    /// Point reads of random keys.
    Readrandom,
    /// Point reads of random keys in batches of `--batch_size`, one
    /// `multi_get` per batch (RocksDB's `multireadrandom`); each key
    /// counts as one operation.
    Multireadrandom,
    /// Point reads of random keys from the hot 1 % of the key space
    /// (LevelDB's and RocksDB's `readhot`: keys below `--num` / 100).
    Readhot,
    /// Scans the whole database forwards.
    Readseq,
    /// Scans the whole database backwards.
    Readreverse,
    /// Seeks to random keys, then reads `--seek_nexts` entries.
    Seekrandom,
    /// Deletes random keys.
    Deleterandom,
    /// Merges random keys with `--merge_operator` (RocksDB's
    /// `mergerandom`): operands of `--value_size` bytes.
    Mergerandom,
    /// Read-modify-write of random 8-byte little-endian counters: each
    /// increment a transaction (`Db::transaction_with`: get for update,
    /// put), the way to count without a merge operator. RocksDB's
    /// `updaterandom` does a plain get and put.
    Updaterandom,
    /// Random reads while one thread writes (at `--benchmark_write_rate_limit`).
    Readwhilewriting,
    /// Random reads while one thread scans.
    Readrandomwhilescanning,
    /// Transactions moving money between accounts.
    Txnbank,
    /// Flushes the memtable.
    Flush,
    /// Compacts the whole key range.
    Compact,
    /// Waits until background work has settled.
    Waitforcompaction,
    /// Prints the engine's statistics.
    Stats,
}

impl Benchmark {
    /// The name on the command line and in the result line.
    fn name(self) -> &'static str {
        match self {
            Benchmark::Fillseq => "fillseq",
            Benchmark::Fillrandom => "fillrandom",
            Benchmark::Overwrite => "overwrite",
            Benchmark::Fillsync => "fillsync",
            Benchmark::Readrandom => "readrandom",
            Benchmark::Readhot => "readhot",
            Benchmark::Multireadrandom => "multireadrandom",
            Benchmark::Readseq => "readseq",
            Benchmark::Readreverse => "readreverse",
            Benchmark::Seekrandom => "seekrandom",
            Benchmark::Deleterandom => "deleterandom",
            Benchmark::Mergerandom => "mergerandom",
            Benchmark::Updaterandom => "updaterandom",
            Benchmark::Readwhilewriting => "readwhilewriting",
            Benchmark::Readrandomwhilescanning => "readrandomwhilescanning",
            Benchmark::Txnbank => "txnbank",
            Benchmark::Flush => "flush",
            Benchmark::Compact => "compact",
            Benchmark::Waitforcompaction => "waitforcompaction",
            Benchmark::Stats => "stats",
        }
    }
}

/// The engines `--engine` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EngineKind {
    /// Lightning DB.
    Lightning,
    /// fjall 3, the peer engine (cargo feature `peer-fjall`).
    Fjall,
    /// LMDB through heed, the peer engine for reads (cargo feature
    /// `peer-lmdb`).
    Lmdb,
}

/// Booleans as gflags takes them: `1`/`0`, `true`/`false`, `yes`/`no`.
fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "t" | "y" => Ok(true),
        "0" | "false" | "no" | "f" | "n" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean (1/0, true/false)")),
    }
}

/// A fraction in [0, 1].
fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction in [0, 1]")),
    }
}

/// A small, fast, seedable generator (splitmix64).
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A thread's key buffer for keys of `ks` bytes, with a capacity of at
/// least 4 KiB so that no other allocation shares a cache line with the
/// key bytes. Two reader threads' 16-byte buffers had landed on one line:
/// each thread's key write moved the line away from the other's next read,
/// and `readhot --threads=2` measured 8M ops/s instead of 15.5M.
fn key_buffer(ks: usize) -> Vec<u8> {
    Vec::with_capacity(ks.max(4096))
}

/// Keys as RocksDB's db_bench makes them: the number big-endian in the
/// first 8 bytes, padded with '0' to the key size.
fn make_key(n: u64, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&n.to_be_bytes());
    out.resize(size.max(8), b'0');
}

/// Values: half random bytes, half repeated, like db_bench's default
/// compression ratio of 0.5.
struct ValueGen {
    data: Vec<u8>,
    pos: usize,
}

impl ValueGen {
    fn new(seed: u64) -> Self {
        let mut rng = Rng(seed ^ 0x5151);
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            let piece: Vec<u8> = (0..50).map(|_| b' ' + (rng.next() % 95) as u8).collect();
            data.extend_from_slice(&piece);
            data.extend_from_slice(&piece);
        }
        ValueGen { data, pos: 0 }
    }

    fn next(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        let s = &self.data[self.pos..self.pos + len.min(self.data.len())];
        self.pos += len;
        s
    }
}

/// Per-thread results of one benchmark.
#[derive(Default)]
struct ThreadStats {
    ops: u64,
    bytes: u64,
    found: u64,
    hist: Histogram,
}

/// Latency histogram: HdrHistogram with 3 significant digits (a recorded
/// value is within 0.1 % of the latency, at any scale), so percentiles are
/// the latencies themselves, not bucket bounds.
#[derive(Clone)]
struct Histogram(hdrhistogram::Histogram<u64>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(hdrhistogram::Histogram::new(3).expect("3 significant digits are allowed"))
    }
}

impl Histogram {
    /// Records one latency.
    fn add(&mut self, nanos: u64) {
        // Auto-resizing (`Histogram::new`): recording any u64 grows it.
        self.0
            .record(nanos.max(1))
            .expect("an auto-resizing histogram records any value");
    }

    /// Adds `o`'s counts (another thread's).
    fn merge(&mut self, o: &Histogram) {
        self.0
            .add(&o.0)
            .expect("auto-resizing histograms always merge");
    }

    /// Latencies recorded.
    fn count(&self) -> u64 {
        self.0.len()
    }

    /// The `p`-th percentile, in microseconds.
    fn percentile(&self, p: f64) -> f64 {
        self.0.value_at_quantile(p / 100.0) as f64 / 1000.0
    }

    /// The largest latency, in microseconds.
    fn max_micros(&self) -> f64 {
        self.0.max() as f64 / 1000.0
    }
}

/// The p50, in microseconds, of an empty interval timed as each
/// operation is (`Instant::now` before, `elapsed` after): what the clock
/// itself adds to every latency in the histogram. Sub-microsecond
/// percentiles (a row-cache hit) are this much above the operation's own
/// time. Measured once per process, over 200,000 intervals.
fn clock_floor_p50() -> f64 {
    static FLOOR: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *FLOOR.get_or_init(|| {
        let mut h = Histogram::default();
        for _ in 0..200_000 {
            let t0 = std::hint::black_box(Instant::now());
            h.add(t0.elapsed().as_nanos() as u64);
        }
        h.percentile(50.0)
    })
}

struct Bench<E: Engine> {
    flags: Flags,
    /// Position of the running benchmark in `--benchmarks`: each one draws
    /// its own random keys (so `overwrite` after `fillrandom` writes fresh
    /// random keys, as in RocksDB's db_bench).
    run: u64,
    db: Option<Arc<E>>,
    path: PathBuf,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("db_bench: {msg}");
    std::process::exit(1);
}

/// Fails on an engine's error: exit code 2 when it refused a flag
/// ([`engine::FlagError`], as clap does for a bad flag), 1 otherwise.
fn fail_engine(e: engine::Error) -> ! {
    if e.downcast_ref::<engine::FlagError>().is_some() {
        eprintln!("db_bench: {e}");
        std::process::exit(2);
    }
    fail(e)
}

impl<E: Engine> Bench<E> {
    fn open(&mut self, fresh: bool) {
        self.close();
        if fresh && self.path.exists() {
            std::fs::remove_dir_all(&self.path).unwrap_or_else(|e| fail(e));
        }
        let db = E::open(&self.path, &self.flags).unwrap_or_else(|e| fail_engine(e));
        self.db = Some(Arc::new(db));
    }

    fn close(&mut self) {
        if let Some(db) = self.db.take() {
            match Arc::try_unwrap(db) {
                Ok(db) => db.close().unwrap_or_else(|e| fail(e)),
                Err(_) => fail("database still in use"),
            }
        }
    }

    fn db(&self) -> Arc<E> {
        Arc::clone(self.db.as_ref().unwrap_or_else(|| fail("no database open")))
    }

    /// The random seed of the running benchmark.
    fn seed(&self) -> u64 {
        self.flags.seed ^ (self.run + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93)
    }

    fn count(&self, v: i64) -> u64 {
        if v < 0 {
            self.flags.num
        } else {
            v as u64
        }
    }

    /// Runs `body` on `threads` threads; prints the db_bench line.
    fn run<F>(&self, name: &str, threads: usize, ops_per_thread: u64, body: F)
    where
        F: Fn(usize, &mut ThreadStats, &Progress) + Sync,
    {
        let progress = Progress::labelled(
            name,
            ops_per_thread * threads as u64,
            "ops",
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        );
        let start = Instant::now();
        let results: Vec<ThreadStats> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let body = &body;
                    let progress = &progress;
                    s.spawn(move || {
                        let mut st = ThreadStats::default();
                        body(t, &mut st, progress);
                        st
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| fail("benchmark thread panicked"))
                })
                .collect()
        });
        let secs = start.elapsed().as_secs_f64();
        drop(progress);
        let mut total = ThreadStats::default();
        for r in &results {
            total.ops += r.ops;
            total.bytes += r.bytes;
            total.found += r.found;
            total.hist.merge(&r.hist);
        }
        let micros = secs * 1e6 * threads as f64 / total.ops.max(1) as f64;
        let ops_sec = total.ops as f64 / secs;
        let mut line = format!("{name:<12} : {micros:>11.3} micros/op {ops_sec:.0} ops/sec;");
        if total.bytes > 0 {
            line.push_str(&format!(
                " {:>6.1} MB/s",
                total.bytes as f64 / 1048576.0 / secs
            ));
        }
        if matches!(
            name,
            "readrandom" | "readhot" | "readwhilewriting" | "seekrandom"
        ) {
            line.push_str(&format!(" ({} of {} found)", total.found, total.ops));
        }
        println!("{line}");
        if self.flags.histogram && total.hist.count() > 0 {
            let h = &total.hist;
            // Sub-microsecond operations (row-cache hits) get a third
            // decimal: at two, 0.055 and 0.064 both print as 0.06.
            let d = if h.percentile(50.0) < 1.0 { 3 } else { 2 };
            println!(
                "Microseconds per op: P50: {:.d$} P95: {:.d$} P99: {:.d$} P99.9: {:.d$} Max: {:.2} ({} ops)",
                h.percentile(50.0),
                h.percentile(95.0),
                h.percentile(99.0),
                h.percentile(99.9),
                h.max_micros(),
                h.count()
            );
            if h.percentile(50.0) < 1.0 {
                println!(
                    "Clock floor: an empty timed interval measures P50: {:.3} (included above)",
                    clock_floor_p50()
                );
            }
        }
    }

    /// `n` writes per thread of keys below `num` (the key space).
    fn write_bench(&self, name: &str, order: Order, n: u64, num: u64, sync: bool) {
        let db = self.db();
        let (ks, vs, seed, hist) = (
            self.flags.key_size,
            self.flags.value_size,
            self.seed(),
            self.flags.histogram,
        );
        let threads = self.flags.threads;
        let sync = sync || self.flags.sync;
        let (per_range, width, max_ranges) = (
            self.flags.writes_per_range_tombstone,
            self.flags.range_tombstone_width.max(1),
            self.flags.max_num_range_tombstones,
        );
        self.run(name, threads, n, |t, st, pb| {
            let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
            let mut values = ValueGen::new(seed + t as u64);
            let mut key = key_buffer(ks);
            let (mut end, mut ranges) = (key_buffer(ks), 0u64);
            for i in 0..n {
                // RocksDB's DoWrite: a range deletion after every
                // `writes_per_range_tombstone` writes, up to the limit.
                if per_range > 0
                    && i > 0
                    && i % per_range == 0
                    && (max_ranges == 0 || ranges < max_ranges)
                {
                    let start = rng.next() % num;
                    make_key(start, ks, &mut key);
                    make_key(start.saturating_add(width), ks, &mut end);
                    db.delete_range(&key, &end, sync)
                        .unwrap_or_else(|e| fail(e));
                    ranges += 1;
                }
                let k = match order {
                    Order::Sequential => i * threads as u64 + t as u64,
                    _ => rng.next() % num,
                };
                make_key(k, ks, &mut key);
                let t0 = hist.then(Instant::now);
                match order {
                    Order::Delete => db.delete(&key, sync),
                    Order::Merge => db.merge(&key, values.next(vs), sync),
                    Order::Update => db.increment(&key, sync),
                    _ => db.put(&key, values.next(vs), sync),
                }
                .unwrap_or_else(|e| fail(e));
                if let Some(t0) = t0 {
                    st.hist.add(t0.elapsed().as_nanos() as u64);
                }
                st.ops += 1;
                st.bytes += (ks + vs) as u64;
                if i % 1024 == 0 {
                    pb.inc(1024);
                }
            }
        });
    }

    /// `--reads` point reads per thread of random keys below `range`.
    fn read_random(&self, name: &str, range: u64) {
        let db = self.db();
        let (ks, num, seed, hist) = (
            self.flags.key_size,
            range.max(1),
            self.seed(),
            self.flags.histogram,
        );
        let reads = self.count(self.flags.reads);
        self.run(name, self.flags.threads, reads, |t, st, pb| {
            let mut rng = Rng(seed ^ 0xBEEF ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
            let mut key = key_buffer(ks);
            for i in 0..reads {
                make_key(rng.next() % num, ks, &mut key);
                let t0 = hist.then(Instant::now);
                if let Some(len) = db.get(&key).unwrap_or_else(|e| fail(e)) {
                    st.found += 1;
                    st.bytes += (ks + len) as u64;
                }
                if let Some(t0) = t0 {
                    st.hist.add(t0.elapsed().as_nanos() as u64);
                }
                st.ops += 1;
                if i % 1024 == 0 {
                    pb.inc(1024);
                }
            }
        });
    }

    /// `--reads` point reads per thread of random keys, `--batch_size`
    /// keys per `multi_get`.
    fn multi_read_random(&self, name: &str) {
        let db = self.db();
        let (ks, num, seed, hist) = (
            self.flags.key_size,
            self.flags.num.max(1),
            self.seed(),
            self.flags.histogram,
        );
        let batch = self.flags.batch_size.max(1);
        let reads = self.count(self.flags.reads);
        self.run(name, self.flags.threads, reads, |t, st, pb| {
            // The same keys as readrandom's, in batches.
            let mut rng = Rng(seed ^ 0xBEEF ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
            // Not `vec![..; batch]`: its clones would drop the capacity.
            let mut keys: Vec<Vec<u8>> = (0..batch).map(|_| key_buffer(ks)).collect();
            let mut done = 0u64;
            while done < reads {
                let n = batch.min((reads - done) as usize);
                for k in keys.iter_mut().take(n) {
                    make_key(rng.next() % num, ks, k);
                }
                let t0 = hist.then(Instant::now);
                for len in db
                    .multi_get(&keys[..n])
                    .unwrap_or_else(|e| fail(e))
                    .into_iter()
                    .flatten()
                {
                    st.found += 1;
                    st.bytes += (ks + len) as u64;
                }
                if let Some(t0) = t0 {
                    st.hist.add(t0.elapsed().as_nanos() as u64);
                }
                st.ops += n as u64;
                if done % 1024 < n as u64 {
                    pb.inc(1024);
                }
                done += n as u64;
            }
        });
    }

    fn read_seq(&self, name: &str, reverse: bool) {
        let db = self.db();
        let reads = self.count(self.flags.reads);
        self.run(name, self.flags.threads, reads, |_, st, pb| {
            db.scan(reverse, reads, |k, v| {
                st.ops += 1;
                st.found += 1;
                st.bytes += (k.len() + v.len()) as u64;
                if st.ops % 4096 == 0 {
                    pb.inc(4096);
                }
            })
            .unwrap_or_else(|e| fail(e));
        });
    }

    fn seek_random(&self, name: &str) {
        let db = self.db();
        let (ks, num, seed, nexts, hist) = (
            self.flags.key_size,
            self.flags.num,
            self.seed(),
            self.flags.seek_nexts,
            self.flags.histogram,
        );
        let reads = self.count(self.flags.reads);
        self.run(name, self.flags.threads, reads, |t, st, pb| {
            let mut rng = Rng(seed ^ 0x5EEC ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
            let mut key = key_buffer(ks);
            let prefix = self.flags.prefix_size;
            for i in 0..reads {
                make_key(rng.next() % num, ks, &mut key);
                let t0 = hist.then(Instant::now);
                let mut first = true;
                let end = (prefix > 0)
                    .then(|| lightning_db::inspect::prefix_successor(&key[..prefix.min(key.len())]))
                    .flatten();
                db.seek(&key, end.as_deref(), nexts, |k, v| {
                    if first && k == key.as_slice() {
                        st.found += 1;
                    }
                    first = false;
                    st.bytes += (k.len() + v.len()) as u64;
                })
                .unwrap_or_else(|e| fail(e));
                if let Some(t0) = t0 {
                    st.hist.add(t0.elapsed().as_nanos() as u64);
                }
                st.ops += 1;
                if i % 1024 == 0 {
                    pb.inc(1024);
                }
            }
        });
    }

    /// `--threads` readers drawing Zipfian keys (`--zipf_theta`, hot keys
    /// scattered over the key space), plus one thread running full forward
    /// scans for as long as they read. Prints the readers' line and the
    /// block cache's hit rate over the benchmark: with a cache smaller
    /// than the data, ARC keeps the hot blocks through the scans where LRU
    /// lets the scans flush them (compare `--cache_policy=arc|lru`).
    fn read_random_while_scanning(&self) {
        let db = self.db();
        let (ks, num, seed) = (self.flags.key_size, self.flags.num, self.seed());
        let zipf = lightning_tools::zipf::Zipf::new(num.max(2), self.flags.zipf_theta);
        let stop = AtomicBool::new(false);
        let scanned = AtomicU64::new(0);
        let reads = self.count(self.flags.reads);
        let reader_lookups = AtomicU64::new(0);
        let reader_hits = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..self.flags.scanners {
                s.spawn(|| {
                    // Whole passes; the last one ends after the readers.
                    while !stop.load(Ordering::Relaxed) {
                        db.scan(false, u64::MAX, |_, _| {
                            scanned.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap_or_else(|e| fail(e));
                    }
                });
            }
            self.run(
                "readrandomwhilescanning",
                self.flags.threads,
                reads,
                |t, st, pb| {
                    let mut rng = Rng(seed ^ 0x21FF ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
                    let mut key = key_buffer(ks);
                    let (h0, m0) = lightning_db::block_cache_thread_lookups();
                    for i in 0..reads {
                        make_key(zipf.key(rng.next()), ks, &mut key);
                        if let Some(n) = db.get(&key).unwrap_or_else(|e| fail(e)) {
                            st.found += 1;
                            st.bytes += (ks + n) as u64;
                        }
                        st.ops += 1;
                        if i % 1024 == 0 {
                            pb.inc(1024);
                        }
                    }
                    let (h1, m1) = lightning_db::block_cache_thread_lookups();
                    reader_hits.fetch_add(h1 - h0, Ordering::Relaxed);
                    reader_lookups.fetch_add(h1 - h0 + m1 - m0, Ordering::Relaxed);
                },
            );
            stop.store(true, Ordering::Relaxed);
        });
        let (h, n) = (
            reader_hits.load(Ordering::Relaxed),
            reader_lookups.load(Ordering::Relaxed),
        );
        // Counted by Lightning DB's cache only (zero for other engines).
        println!(
            "Block cache ({}, {}): readers {:.1}% hits ({h} of {n} lookups) while the scanners read {} entries",
            self.flags.cache_policy,
            self.flags
                .cache_size
                .map_or("default size".to_string(), |c| format!("{:.1} MiB", c as f64 / 1048576.0)),
            100.0 * h as f64 / n.max(1) as f64,
            scanned.load(Ordering::Relaxed)
        );
    }

    /// Bank transfers: `--threads` threads each commit `n` transactions
    /// that move a random amount between two of `--accounts` accounts
    /// (read both balances, write both; see [`Engine::transfer`]), retried
    /// on conflict. An op is a committed transfer; the line after the
    /// result gives the aborted attempts. Checks at the end that the total
    /// is unchanged.
    fn txn_bank(&self, name: &str, n: u64) {
        const INITIAL: u64 = 1_000_000;
        let db = self.db();
        let (ks, vs, seed, hist, sync) = (
            self.flags.key_size,
            self.flags.value_size.max(8),
            self.seed(),
            self.flags.histogram,
            self.flags.sync,
        );
        let accounts = self.flags.accounts.max(2);
        let mut key = key_buffer(ks);
        let mut value = INITIAL.to_be_bytes().to_vec();
        value.resize(vs, b' ');
        for i in 0..accounts {
            make_key(i, ks, &mut key);
            db.put(&key, &value, false).unwrap_or_else(|e| fail(e));
        }
        let attempts = AtomicU64::new(0);
        self.run(name, self.flags.threads, n, |t, st, pb| {
            let mut rng = Rng(seed ^ 0x7A2B ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
            let (mut from_key, mut to_key) = (key_buffer(ks), key_buffer(ks));
            let attempt = || {
                attempts.fetch_add(1, Ordering::Relaxed);
            };
            for i in 0..n {
                let from = rng.next() % accounts;
                let to = (from + 1 + rng.next() % (accounts - 1)) % accounts;
                let want = rng.next() % 1000;
                make_key(from, ks, &mut from_key);
                make_key(to, ks, &mut to_key);
                let t0 = hist.then(Instant::now);
                db.transfer(&from_key, &to_key, want, vs, sync, &attempt)
                    .unwrap_or_else(|e| fail(e));
                if let Some(t0) = t0 {
                    st.hist.add(t0.elapsed().as_nanos() as u64);
                }
                st.ops += 1;
                st.bytes += 2 * (ks + vs) as u64;
                if i % 1024 == 0 {
                    pb.inc(1024);
                }
            }
        });
        let attempts = attempts.load(Ordering::Relaxed);
        let aborts = attempts - n * self.flags.threads as u64;
        println!(
            "  ({aborts} aborted attempts: {:.2}% of {attempts}; {accounts} accounts)",
            100.0 * aborts as f64 / attempts.max(1) as f64
        );
        // The database holds the accounts only (txnbank starts empty).
        let mut total = 0u64;
        db.scan(false, u64::MAX, |_, v| {
            total += v
                .get(..8)
                .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
        })
        .unwrap_or_else(|e| fail(e));
        if total != accounts * INITIAL {
            fail(format!(
                "txnbank: the total is {total}, expected {}",
                accounts * INITIAL
            ));
        }
    }

    /// `--threads` readers, plus one writer for as long as they read.
    fn read_while_writing(&self) {
        let db = self.db();
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (db, stop, written) = (Arc::clone(&db), Arc::clone(&stop), Arc::clone(&written));
            let (ks, vs, num, seed, rate, sync) = (
                self.flags.key_size,
                self.flags.value_size,
                self.flags.num,
                self.seed(),
                self.flags.benchmark_write_rate_limit,
                self.flags.sync,
            );
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ 0x11FE);
                let mut values = ValueGen::new(seed ^ 0x11FE);
                let mut key = key_buffer(ks);
                let start = Instant::now();
                let mut bytes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    make_key(rng.next() % num, ks, &mut key);
                    db.put(&key, values.next(vs), sync)
                        .unwrap_or_else(|e| fail(e));
                    bytes += (ks + vs) as u64;
                    written.fetch_add(1, Ordering::Relaxed);
                    if rate > 0 {
                        let due = Duration::from_secs_f64(bytes as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                }
            })
        };
        self.read_random("readwhilewriting", self.flags.num);
        stop.store(true, Ordering::Relaxed);
        writer
            .join()
            .unwrap_or_else(|_| fail("writer thread panicked"));
        println!(
            "  (the writer wrote {} entries meanwhile)",
            written.load(Ordering::Relaxed)
        );
    }
}

#[derive(Clone, Copy)]
enum Order {
    Sequential,
    Random,
    Delete,
    /// Random keys, merged (`mergerandom`).
    Merge,
    /// Random keys, incremented in a transaction (`updaterandom`).
    Update,
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    lightning_tools::init_tracing();
    let flags = Flags::parse();
    if flags.key_size < 8 {
        fail("--key_size must be at least 8");
    }
    let (path, _tempdir) = match &flags.db {
        Some(p) => (p.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("lightning-db_bench-")
                .tempdir()
                .unwrap_or_else(|e| fail(e));
            (t.path().join("db"), Some(t))
        }
    };
    match flags.engine {
        EngineKind::Lightning => {
            run_benchmarks::<engine::Lightning>(flags, path);
        }
        #[cfg(feature = "peer-fjall")]
        EngineKind::Fjall => run_benchmarks::<fjall_engine::Fjall>(flags, path),
        #[cfg(not(feature = "peer-fjall"))]
        EngineKind::Fjall => fail(
            "--engine=fjall needs a db_bench built with the peer-fjall feature: \
             cargo build --release -p lightning-tools --features peer-fjall",
        ),
        #[cfg(feature = "peer-lmdb")]
        EngineKind::Lmdb => run_benchmarks::<lmdb_engine::Lmdb>(flags, path),
        #[cfg(not(feature = "peer-lmdb"))]
        EngineKind::Lmdb => fail(
            "--engine=lmdb needs a db_bench built with the peer-lmdb feature: \
             cargo build --release -p lightning-tools --features peer-lmdb",
        ),
    }
}

/// Runs `--benchmarks` in order on engine `E` in `path`.
fn run_benchmarks<E: Engine>(flags: Flags, path: PathBuf) {
    let mut bench = Bench::<E> {
        flags: flags.clone(),
        run: 0,
        db: None,
        path,
    };
    bench.open(!flags.use_existing_db);
    let db = bench.db();
    println!(
        "{}: keys {} bytes, values {} bytes, {} entries, {} thread(s), dir {}",
        db.name(),
        flags.key_size,
        flags.value_size,
        flags.num,
        flags.threads,
        bench.path.display()
    );
    println!("{}", db.options());
    drop(db);
    println!("------------------------------------------------");
    for (run, &b) in flags.benchmarks.iter().enumerate() {
        let name = b.name();
        bench.run = run as u64;
        let writes = bench.count(flags.writes);
        match b {
            Benchmark::Fillseq => {
                bench.open(true);
                bench.write_bench(name, Order::Sequential, writes, flags.num, false);
            }
            Benchmark::Fillrandom => {
                bench.open(true);
                bench.write_bench(name, Order::Random, writes, flags.num, false);
            }
            Benchmark::Fillsync => {
                // As RocksDB's: every write synced, random keys from
                // --num / 1000 (RocksDB divides its num_ by 1000). Writes per
                // thread: --writes, else --num / 1000 (LevelDB's count;
                // RocksDB's default is --num synced writes).
                bench.open(true);
                let keys = (flags.num / 1000).max(1);
                let n = if flags.writes < 0 { keys } else { writes };
                bench.write_bench(name, Order::Random, n, keys, true);
            }
            Benchmark::Overwrite => {
                bench.write_bench(name, Order::Random, writes, flags.num, false)
            }
            Benchmark::Deleterandom => {
                bench.write_bench(name, Order::Delete, writes, flags.num, false)
            }
            Benchmark::Mergerandom => {
                if flags.merge_operator == "uint64add" && flags.value_size != 8 {
                    fail("--merge_operator=uint64add needs --value_size=8 (8-byte counters)");
                }
                bench.write_bench(name, Order::Merge, writes, flags.num, false)
            }
            Benchmark::Updaterandom => {
                bench.write_bench(name, Order::Update, writes, flags.num, false)
            }
            Benchmark::Readrandom => bench.read_random(name, bench.flags.num),
            Benchmark::Readhot => bench.read_random(name, bench.flags.num.div_ceil(100)),
            Benchmark::Multireadrandom => bench.multi_read_random(name),
            Benchmark::Readseq => bench.read_seq(name, false),
            Benchmark::Readreverse => bench.read_seq(name, true),
            Benchmark::Seekrandom => bench.seek_random(name),
            Benchmark::Readwhilewriting => bench.read_while_writing(),
            Benchmark::Readrandomwhilescanning => bench.read_random_while_scanning(),
            Benchmark::Txnbank => {
                bench.open(true);
                bench.txn_bank(name, writes);
            }
            Benchmark::Flush | Benchmark::Compact | Benchmark::Waitforcompaction => {
                let t = Instant::now();
                let db = bench.db();
                match b {
                    Benchmark::Flush => db.flush(),
                    Benchmark::Compact => db.compact(),
                    _ => db.wait_for_compactions(),
                }
                .unwrap_or_else(|e| fail(e));
                println!("{name:<12} : {:>11.3} seconds", t.elapsed().as_secs_f64());
            }
            Benchmark::Stats => {
                let db = bench.db();
                println!("{}", db.stats());
                println!(
                    "On-disk SST files: {:.2} MiB",
                    db.sst_bytes() as f64 / 1048576.0
                );
            }
        }
    }
    if flags.statistics {
        println!("{}", bench.db().stats());
    }
    if let Some(kib) = peak_rss_kib() {
        println!("Peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
    }
    bench.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_names_are_the_command_line_names() {
        for b in Benchmark::value_variants() {
            let pv = b.to_possible_value().expect("every benchmark is listed");
            assert_eq!(pv.get_name(), b.name());
        }
    }

    #[test]
    fn percentiles_are_the_latencies_not_bucket_bounds() {
        let mut h = Histogram::default();
        for _ in 0..1000 {
            h.add(1_234);
        }
        let mut other = Histogram::default();
        other.add(987_654_321);
        h.merge(&other);
        assert_eq!(h.count(), 1001);
        assert!(
            (h.percentile(50.0) - 1.234).abs() < 0.002,
            "{}",
            h.percentile(50.0)
        );
        let max = h.max_micros();
        assert!((max - 987_654.321).abs() / 987_654.321 < 0.001, "{max}");
    }
}
