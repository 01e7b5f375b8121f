//! fjall 3 as a peer engine (`db_bench --engine=fjall`, cargo feature
//! `peer-fjall`): the same benchmark code as for Lightning DB, through
//! fjall's public API, one keyspace named `db_bench` in one `Database`.
//!
//! # How the flags map to fjall's options
//!
//! | flag | fjall 3 | note |
//! |---|---|---|
//! | `--write_buffer_size=B` | `KeyspaceCreateOptions::max_memtable_size(B)` | per-memtable size, as RocksDB's. fjall stalls writers at 4 sealed memtables (RocksDB: `max_write_buffer_number` 2) and rotates the journal at 64 MB / caps all journals at `max_journaling_size` 512 MiB |
//! | `--cache_size=B` | `DatabaseBuilder::cache_size(B)` | one block cache of data, index and filter blocks (uncompressed). fjall pins L0/L1 index blocks and L0 filter blocks outside it. Absent: fjall's default, 32 MiB (RocksDB's db_bench: 8 MiB) |
//! | `--bloom_bits=N` | `filter_policy(FilterPolicy::all(Bloom(BitsPerKey(N))))` | on every level; 0 gives `FilterPolicy::disabled()`. fjall's default is a 0.01 % false-positive-rate filter on L0 and 10 bits per key below |
//! | `--compression_type=none` | `data_block_compression_policy` and `index_block_compression_policy` `CompressionPolicy::all(None)`, `journal_compression(None)` | the only type accepted here (built without fjall's `lz4` feature; fjall has no zstd) |
//! | every write | `Keyspace::insert` / `remove` | atomic; fjall's default durability `PersistMode::Buffer`: the journal write reaches the OS before the call returns, as RocksDB's WAL write without sync |
//! | `--sync`, `fillsync` | then `Database::persist(PersistMode::SyncData)` (fdatasync, as RocksDB's `sync`), the durability call fjall's docs show | fjall has no group commit, but one writer's fdatasync also covers the journal writes other threads made before it, whose own syncs then find little to do. A one-entry `WriteBatch` with `durability(Some(SyncData))` holds the journal lock across the sync and measured no faster |
//! | `--max_background_jobs=N` | `DatabaseBuilder::worker_threads(N)` | flush + compaction workers; absent: min(cores, 4) = 2 here, as RocksDB's `max_background_jobs` 2 |
//! | `--compaction_style` | only 0 (fjall's `Leveled`: L0 trigger 4, 64 MiB tables, ratio 10 — RocksDB's defaults) | 1 (tiered) is refused |
//! | `--enable_blob_files=1` | `KeyspaceCreateOptions::with_kv_separation(Some(KvSeparationOptions))` | fjall's key-value separation (its BlobTree): values of at least the threshold go to blob files, the tables keep a reference. Off without the flag (`with_kv_separation(None)`, fjall's default). fjall stores the options with the keyspace when it creates it; a reopened keyspace (`--use_existing_db=1`) keeps them |
//! | `--min_blob_size=N` | `KvSeparationOptions::separation_threshold(N)` (u32; larger N capped) | both separate values of at least N bytes. fjall's default threshold is 1 KiB, RocksDB's `min_blob_size` 0 |
//! | `--blob_file_size=B` | `KvSeparationOptions::file_target_size(B)` | fjall's default 64 MiB, RocksDB's (and so the flag's) 256 MiB |
//! | `--blob_compression_type=none` | `KvSeparationOptions::compression(None)` | the only type accepted, as for tables |
//! | `--enable_blob_garbage_collection`, `--blob_garbage_collection_age_cutoff=F` | `KvSeparationOptions::age_cutoff(F)` with GC on, `age_cutoff(0.0)` with it off (RocksDB's default) | fjall's GC always runs in compaction: it rewrites the live values of the blob files the compacted tables reference, in the oldest `age_cutoff` fraction of them, as RocksDB's age cutoff. An age cutoff of 0 picks none, so GC off; blob files with no live value left are dropped either way, as in RocksDB. Does not map: fjall also skips files whose stale fraction is below `staleness_threshold` (left at fjall's default, 0.25), where RocksDB rewrites any file in the cutoff; `--blob_garbage_collection_force_threshold` (RocksDB's, and ours) has no fjall equivalent and is ignored; RocksDB's `blob_file_starting_level` has no flag here |
//! | `--subcompactions`, `--compression_level` | ignored (no fjall equivalent) | a warning says so |
//! | `--config` | refused (a Lightning DB TOML file) | |
//!
//! Operations: `get` is `Keyspace::get`; `readseq`/`readreverse` iterate
//! `Keyspace::iter()` (`.rev()`); `seekrandom` opens `Keyspace::range(key..)`
//! per seek and takes `1 + seek_nexts` entries; `flush` is
//! `Keyspace::rotate_memtable_and_wait`; `compact` is
//! `Keyspace::major_compact` (both public but `#[doc(hidden)]` in fjall 3).
//! fjall has no "wait for compaction": `waitforcompaction` polls until no
//! flush is queued, no memtable is sealed and no compaction is running, and
//! the compaction count has not moved, for 300 ms in a row (fjall starts
//! compactions only after flushes, so the tree is then quiet).

use std::path::Path;
use std::time::{Duration, Instant};

use fjall::config::{BloomConstructionPolicy, CompressionPolicy, FilterPolicy, FilterPolicyEntry};
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode,
};

use crate::engine::{Engine, FlagError, Result};
use crate::Flags;

/// fjall's `Database` with the keyspace the benchmarks use.
pub struct Fjall {
    db: Database,
    ks: Keyspace,
    settings: String,
}

/// fjall's key-value separation from the blob flags (the table above):
/// `None` without `--enable_blob_files`.
fn kv_separation(flags: &Flags) -> Result<Option<KvSeparationOptions>> {
    if !flags.enable_blob_files {
        return Ok(None);
    }
    if flags.blob_compression_type != "none" {
        return Err(FlagError(format!(
            "--engine=fjall: --blob_compression_type={} is not supported (none only)",
            flags.blob_compression_type
        ))
        .into());
    }
    let age_cutoff = if flags.enable_blob_garbage_collection {
        flags.blob_garbage_collection_age_cutoff as f32
    } else {
        0.0
    };
    Ok(Some(
        KvSeparationOptions::default()
            .compression(CompressionType::None)
            .separation_threshold(u32::try_from(flags.min_blob_size).unwrap_or(u32::MAX))
            .file_target_size(flags.blob_file_size)
            .age_cutoff(age_cutoff),
    ))
}

impl Engine for Fjall {
    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        if flags.compression_type != "none" {
            return Err(format!(
                "--engine=fjall: --compression_type={} is not supported (none only)",
                flags.compression_type
            )
            .into());
        }
        if flags.config.is_some() {
            return Err("--engine=fjall: --config is a Lightning DB options file".into());
        }
        if flags.compaction_style.is_some_and(|s| s != 0) {
            return Err("--engine=fjall: only --compaction_style=0 (leveled)".into());
        }
        if flags.subcompactions.is_some() {
            eprintln!("db_bench: warning: --subcompactions has no fjall equivalent; ignored");
        }

        let kv_separation = kv_separation(flags)?;

        let mut builder = Database::builder(path).journal_compression(CompressionType::None);
        if let Some(bytes) = flags.cache_size {
            builder = builder.cache_size(bytes);
        }
        if let Some(jobs) = flags.max_background_jobs {
            builder = builder.worker_threads(jobs.max(1));
        }
        let db = builder.open()?;

        let filter = if flags.bloom_bits == 0 {
            FilterPolicy::disabled()
        } else {
            FilterPolicy::all(FilterPolicyEntry::Bloom(
                BloomConstructionPolicy::BitsPerKey(flags.bloom_bits as f32),
            ))
        };
        let mut ks_opts = KeyspaceCreateOptions::default()
            .data_block_compression_policy(CompressionPolicy::all(CompressionType::None))
            .index_block_compression_policy(CompressionPolicy::all(CompressionType::None))
            .filter_policy(filter)
            .with_kv_separation(kv_separation.clone());
        if let Some(bytes) = flags.write_buffer_size {
            ks_opts = ks_opts.max_memtable_size(bytes as u64);
        }
        let ks = db.keyspace("db_bench", || ks_opts)?;

        let settings = format!(
            "Options: max_memtable_size {}, cache_size {}, bloom bits per key {}, compression none, sync {}, kv separation {}",
            flags
                .write_buffer_size
                .map_or_else(|| "default (64 MiB)".to_string(), |b| b.to_string()),
            db.cache_capacity(),
            flags.bloom_bits,
            flags.sync,
            kv_separation.map_or_else(
                || "off".to_string(),
                |k| format!(
                    "on (threshold {}, file size {}, compression {}, age cutoff {}, staleness threshold {})",
                    k.separation_threshold,
                    k.file_target_size,
                    k.compression,
                    k.age_cutoff,
                    k.staleness_threshold
                )
            )
        );
        Ok(Fjall { db, ks, settings })
    }

    fn name(&self) -> String {
        "fjall 3 (peer engine)".to_string()
    }

    fn options(&self) -> String {
        self.settings.clone()
    }

    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Result<()> {
        self.ks.insert(key, value)?;
        if sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn delete(&self, key: &[u8], sync: bool) -> Result<()> {
        self.ks.remove(key)?;
        if sync {
            self.db.persist(PersistMode::SyncData)?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.ks.get(key)?.map(|v| v.len()))
    }

    fn scan(&self, reverse: bool, limit: u64, mut visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let it = self.ks.iter();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if reverse {
            for guard in it.rev().take(limit) {
                let (k, v) = guard.into_inner()?;
                visit(&k, &v);
            }
        } else {
            for guard in it.take(limit) {
                let (k, v) = guard.into_inner()?;
                visit(&k, &v);
            }
        }
        Ok(())
    }

    fn seek(
        &self,
        key: &[u8],
        end: Option<&[u8]>,
        nexts: u64,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        let n = usize::try_from(nexts)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let range: (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>) = (
            std::ops::Bound::Included(key),
            end.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
        );
        for guard in self.ks.range::<&[u8], _>(range).take(n) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(self.ks.rotate_memtable_and_wait()?)
    }

    fn compact(&self) -> Result<()> {
        Ok(self.ks.major_compact()?)
    }

    fn wait_for_compactions(&self) -> Result<()> {
        const QUIET: Duration = Duration::from_millis(300);
        let busy = || {
            self.db.outstanding_flushes() > 0
                || self.ks.sealed_memtable_count() > 0
                || self.db.active_compactions() > 0
        };
        let mut completed = self.db.compactions_completed();
        let mut quiet_since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let now_completed = self.db.compactions_completed();
            if busy() || now_completed != completed {
                completed = now_completed;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= QUIET {
                return Ok(());
            }
        }
    }

    fn stats(&self) -> String {
        format!(
            "fjall: {} tables ({} in L0), {:.2} MiB in tables, journal {:.2} MiB, {} compactions in {:.3} s",
            self.ks.table_count(),
            self.ks.l0_table_count(),
            self.ks.disk_space() as f64 / 1048576.0,
            self.db.journal_disk_space().unwrap_or(0) as f64 / 1048576.0,
            self.db.compactions_completed(),
            self.db.time_compacting().as_secs_f64()
        )
    }

    fn sst_bytes(&self) -> u64 {
        self.ks.disk_space()
    }

    fn close(self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        // Dropping the last handle stops fjall's workers (and waits for
        // them); the directory stays.
        let Fjall { db, ks, .. } = self;
        drop(ks);
        drop(db);
        Ok(())
    }
}
