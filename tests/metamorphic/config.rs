//! Randomly drawn option sets: every run of an operation sequence uses
//! one, from tiny memtables and files to the defaults, every compaction
//! style, compression on and off, the WAL mapped or not, SSTs mapped or
//! read with `pread`, small manifests, and the in-memory or the real file
//! system.

use std::fmt;

use lightning_db::{CompactionStyle, Compression, Options, WalRecoveryMode};

use crate::common::Rng;

/// Where a run keeps its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    /// `FaultFs`: in memory, and power can be cut (`Op::Crash`).
    Fault,
    /// The real file system in a temporary directory; `Op::Crash` is a
    /// clean reopen there.
    Posix,
}

/// One drawn option set, with the seed that draws it again.
#[derive(Clone)]
pub struct Config {
    pub seed: u64,
    pub fs: FsKind,
    /// The options, but `fs` (set by the runner).
    pub opts: Options,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "option set {} ({:?} fs): {:?}",
            self.seed, self.fs, self.opts
        )
    }
}

fn pick<T: Copy>(r: &mut Rng, xs: &[T]) -> T {
    xs[r.below(xs.len() as u64) as usize]
}

impl Config {
    /// The option set drawn from `seed`. Option set 0 is the defaults (on
    /// the in-memory file system).
    pub fn draw(seed: u64) -> Config {
        let mut o = Options::default().merge_operator(Some(std::sync::Arc::new(
            lightning_db::AppendOperator::new(","),
        )));
        if seed == 0 {
            return Config {
                seed,
                fs: FsKind::Fault,
                opts: o,
            };
        }
        let r = &mut Rng(seed ^ 0x6f70_7473);
        let fs = if r.one_in(5) {
            FsKind::Posix
        } else {
            FsKind::Fault
        };
        o.write_buffer_size = pick(r, &[64 << 10, 96 << 10, 256 << 10, 1 << 20]);
        o.max_write_buffer_number = 2 + r.below(3) as usize;
        o.memtable_bloom = r.one_in(2);
        o.block_size = pick(r, &[256, 512, 1024, 4096, 16 << 10]);
        o.block_restart_interval = pick(r, &[1, 2, 4, 16, 64]);
        o.index_page_size = pick(r, &[256, 1024, 4096]);
        o.bloom_bits_per_key = pick(r, &[0, 1, 10, 20]);
        o.block_cache_size = pick(r, &[0, 64 << 10, 8 << 20]);
        o.compression = if r.one_in(3) {
            Compression::Zstd {
                level: 1 + r.below(5) as i32,
            }
        } else {
            Compression::None
        };
        o.sync_writes = r.one_in(10);
        o.wal_bytes_per_sync = pick(r, &[0, 0, 4096, 64 << 10]);
        o.wal_mmap = r.one_in(2);
        o.max_manifest_file_size = pick(r, &[1024, 4096, 64 << 20]);
        o.wal_recovery_mode = if r.one_in(4) {
            WalRecoveryMode::TolerateTornTail
        } else {
            WalRecoveryMode::PointInTime
        };
        let c = &mut o.compaction;
        c.style = if r.one_in(3) {
            CompactionStyle::Tiered
        } else {
            CompactionStyle::Leveled
        };
        c.num_levels = pick(r, &[2, 3, 4, 7]);
        c.level0_file_num_compaction_trigger = 1 + r.below(4) as usize;
        c.level0_slowdown_writes_trigger = c.level0_file_num_compaction_trigger + 4;
        c.level0_stop_writes_trigger = c.level0_slowdown_writes_trigger + 8;
        c.max_bytes_for_level_base = pick(r, &[64 << 10, 256 << 10, 4 << 20]);
        c.target_file_size_base = pick(r, &[64 << 10, 128 << 10, 1 << 20]);
        c.level_compaction_dynamic_level_bytes = r.one_in(2);
        c.max_subcompactions = 1 + r.below(2) as usize;
        c.disable_auto_compactions = r.one_in(10);
        // New draws go last, so that a seed keeps drawing the same values
        // for the options before them.
        o.allow_mmap_reads = r.one_in(2);
        o.max_open_files = if r.one_in(3) { 16 } else { -1 };
        o.row_cache_size = pick(r, &[0, 0, 16 << 10, 1 << 20]);
        // Key-value separation (issue 18).
        o.enable_blob_files = r.one_in(2);
        o.min_blob_size = pick(r, &[0, 100, 1000, 4096]);
        o.blob_file_size = pick(r, &[1 << 20, 4 << 20]);
        o.blob_compression_type = if r.one_in(3) {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        };
        o.enable_blob_garbage_collection = r.one_in(2);
        o.blob_garbage_collection_age_cutoff = pick(r, &[0.0, 0.25, 1.0]);
        // Prefix bloom filters (issue 20): keys here start with a-h.
        o.prefix_extractor = match r.below(3) {
            0 => None,
            n => Some(std::sync::Arc::new(lightning_db::FixedPrefix::new(
                n as usize,
            ))),
        };
        // Periodic compaction (issue 20): with a 1-second period, files
        // are rewritten again and again while the sequence runs, and the
        // results must not change. (TTL and FIFO change what reads see, so
        // they are not metamorphic options; tests/ttl.rs, the model test
        // and tests/fifo_and_periodic.rs cover them.)
        o.compaction.periodic_compaction_seconds = pick(r, &[0, 0, 1]);
        if let Err(e) = o.validate() {
            panic!("option set {seed} is invalid: {e}\n{o:?}");
        }
        Config { seed, fs, opts: o }
    }
}
