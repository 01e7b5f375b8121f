//! The engines `db_bench` drives, behind one small trait, so that every
//! benchmark runs the same code (the same keys, values, seeds and threads)
//! whatever the engine: Lightning DB (`--engine=lightning`, the default),
//! with the `peer-fjall` cargo feature fjall 3 (`--engine=fjall`, see
//! `fjall_engine.rs`), and with the `peer-lmdb` feature LMDB through heed
//! (`--engine=lmdb`, see `lmdb_engine.rs`).
//!
//! The benchmark loop is generic over [`Engine`] (no dynamic dispatch per
//! operation), so adding the trait costs our own figures nothing.

use std::path::Path;
use std::sync::Arc;

use lightning_db::{
    AppendOperator, CachePolicy, CompactionStyle, Compression, Db, Options, StatsLevel,
    Transaction, TransactionOptions, U64AddOperator, WriteOptions,
};

use crate::Flags;

/// Any engine's error, as text for `db_bench: ...` on stderr.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The result of an engine operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A flag the engine refuses: `db_bench` prints it and exits with code 2,
/// as for a flag clap rejects (other engine errors exit with 1).
#[derive(Debug)]
pub struct FlagError(pub String);

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FlagError {}

/// What a benchmark needs from a key-value engine. Implementations are
/// shared between the benchmark threads (`Sync`); each call is one user
/// operation of the engine's public API.
pub trait Engine: Sized + Send + Sync + 'static {
    /// Opens the database in `path` (creating it when missing) with the
    /// engine's mapping of the flags (write buffer, cache, bloom bits,
    /// compression, sync, background threads).
    fn open(path: &Path, flags: &Flags) -> Result<Self>;

    /// Engine name and version, for the header.
    fn name(&self) -> String;

    /// The options in force, for the header (`Options: ...`).
    fn options(&self) -> String;

    /// Writes `key` = `value` as one atomic write (a one-entry write
    /// batch); with `sync` it is durable (WAL/journal fdatasync'ed) when
    /// the call returns.
    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Result<()>;

    /// Deletes `key` as one atomic write, durable on return with `sync`.
    fn delete(&self, key: &[u8], sync: bool) -> Result<()>;

    /// Deletes every key in `[start, end)` as one atomic write (a range
    /// tombstone where the engine has them); engines without range
    /// deletion refuse the flags that ask for it.
    fn delete_range(&self, start: &[u8], end: &[u8], sync: bool) -> Result<()> {
        let _ = (start, end, sync);
        Err(Box::new(FlagError(format!(
            "--writes_per_range_tombstone: {} has no range deletion",
            self.name()
        ))))
    }

    /// The length of `key`'s value, or `None` when absent. The value itself
    /// is fetched as the engine's `get` returns it, then dropped (Lightning
    /// DB: copied into a buffer the thread reuses, `Db::get_into`).
    fn get(&self, key: &[u8]) -> Result<Option<usize>>;

    /// Visits up to `limit` entries from a fresh iterator over the whole
    /// database, in ascending key order, or descending with `reverse`.
    fn scan(&self, reverse: bool, limit: u64, visit: impl FnMut(&[u8], &[u8])) -> Result<()>;

    /// Opens a fresh iterator, seeks to the first key `>= key`, and visits
    /// that entry and up to `nexts` entries after it (RocksDB's
    /// `seekrandom`: `Seek` then `Next` `seek_nexts` times).
    fn seek(
        &self,
        key: &[u8],
        end: Option<&[u8]>,
        nexts: u64,
        visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()>;

    /// Writes the memtable out to a table file and waits for it.
    fn flush(&self) -> Result<()>;

    /// Compacts the whole key range (RocksDB's `compact`).
    fn compact(&self) -> Result<()>;

    /// Waits until flushes and compactions have (probably) settled.
    fn wait_for_compactions(&self) -> Result<()>;

    /// The engine's own statistics, as text.
    fn stats(&self) -> String;

    /// Bytes of table (SST) files on disk, without the WAL/journal.
    fn sst_bytes(&self) -> u64;

    /// Closes the database, reporting errors.
    fn close(self) -> Result<()>;

    /// The value lengths of `keys` (`None`: absent), in order; engines
    /// without a batched read loop over `get`.
    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<usize>>> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// Merges `operand` into `key` with the `--merge_operator`
    /// (`mergerandom`); engines without merges here return an error.
    fn merge(&self, key: &[u8], operand: &[u8], sync: bool) -> Result<()> {
        let _ = (key, operand, sync);
        Err("mergerandom needs a merge operator, which db_bench drives on Lightning DB only".into())
    }

    /// Adds 1 to the 8-byte little-endian counter at `key` (absent: 0) in
    /// a read-modify-write transaction, retried on conflict
    /// (`updaterandom`); engines without transactions here return an
    /// error.
    fn increment(&self, key: &[u8], sync: bool) -> Result<()> {
        let _ = (key, sync);
        Err("updaterandom needs transactions, which db_bench drives on Lightning DB only".into())
    }

    /// One bank transfer for `txnbank`, as a read-modify-write
    /// transaction: reads the balances of `from` and `to` (big-endian
    /// `u64`s at the start of their values), moves up to `want` and writes
    /// both back padded to `value_size` bytes; durable on return with
    /// `sync`. Runs the transaction again on a conflict, calling `attempt`
    /// once per try. Engines without transactions here return an error.
    fn transfer(
        &self,
        from: &[u8],
        to: &[u8],
        want: u64,
        value_size: usize,
        sync: bool,
        attempt: &dyn Fn(),
    ) -> Result<()> {
        let _ = (from, to, want, value_size, sync, attempt);
        Err("txnbank needs transactions, which db_bench drives on Lightning DB only".into())
    }
}

/// Lightning DB through its public API.
pub struct Lightning {
    db: Db,
    opts: Options,
}

/// Lightning DB's options from the flags.
fn lightning_options(flags: &Flags) -> Result<Options> {
    let mut o = match &flags.config {
        Some(p) => Options::from_toml_file(p)?,
        None => Options::default(),
    };
    o.bloom_bits_per_key = flags.bloom_bits;
    o.compression = compression(flags, "compression_type", &flags.compression_type)?;
    if let Some(w) = flags.write_buffer_size {
        o.write_buffer_size = w;
    }
    if let Some(c) = flags.cache_size {
        o.block_cache_size = c as usize;
    }
    if let Some(c) = flags.row_cache_size {
        o.row_cache_size = c as usize;
    }
    o.block_cache_policy = match flags.cache_policy.as_str() {
        "arc" => CachePolicy::Arc,
        "lru" => CachePolicy::Lru,
        other => return Err(format!("--cache_policy={other}: expected arc or lru").into()),
    };
    if let Some(s) = flags.compaction_style {
        o.compaction.style = match s {
            0 => CompactionStyle::Leveled,
            1 => CompactionStyle::Tiered,
            _ => return Err("--compaction_style takes 0 (leveled) or 1 (tiered)".into()),
        };
    }
    if let Some(j) = flags.max_background_jobs {
        o.compaction.max_background_jobs = j;
    }
    if let Some(s) = flags.subcompactions {
        o.compaction.max_subcompactions = s;
    }
    if flags.sync {
        o.sync_writes = true;
    }
    apply_blob_flags(&mut o, flags)?;
    if flags.prefix_size > 0 {
        o.prefix_extractor = Some(Arc::new(lightning_db::FixedPrefix::new(flags.prefix_size)));
    }
    o.merge_operator = match flags.merge_operator.as_str() {
        "" => None,
        "uint64add" => Some(Arc::new(U64AddOperator)),
        "stringappend" => Some(Arc::new(AppendOperator::new(","))),
        other => {
            return Err(
                format!("--merge_operator={other}: expected uint64add or stringappend").into(),
            )
        }
    };
    if let Some(l) = &flags.stats_level {
        o.statistics = match l.as_str() {
            "off" => StatsLevel::Off,
            "counters" => StatsLevel::Counters,
            "all" => StatsLevel::All,
            other => {
                return Err(format!("--stats_level={other}: expected off, counters or all").into())
            }
        };
    }
    Ok(o)
}

/// A `--compression_type`-like flag: `none` or `zstd` (at
/// `--compression_level`).
fn compression(flags: &Flags, name: &str, value: &str) -> Result<Compression> {
    match value {
        "none" => Ok(Compression::None),
        "zstd" => Ok(Compression::Zstd {
            level: flags.compression_level,
        }),
        other => Err(FlagError(format!("--{name}={other} is not supported (none or zstd)")).into()),
    }
}

/// The blob-file flags (`--enable_blob_files`, `--min_blob_size`,
/// `--blob_file_size`, `--blob_compression_type`,
/// `--enable_blob_garbage_collection`,
/// `--blob_garbage_collection_age_cutoff`) on Lightning DB's options of
/// the same names. As in RocksDB, the others do nothing without
/// `--enable_blob_files`, and its defaults apply (`--min_blob_size=0`:
/// every value goes to a blob file; garbage collection off).
fn apply_blob_flags(o: &mut Options, flags: &Flags) -> Result<()> {
    if !flags.enable_blob_files {
        return Ok(());
    }
    o.enable_blob_files = true;
    o.min_blob_size = usize::try_from(flags.min_blob_size).map_err(|_| {
        FlagError(format!(
            "--min_blob_size={} is too large",
            flags.min_blob_size
        ))
    })?;
    o.blob_file_size = flags.blob_file_size;
    o.blob_compression_type =
        compression(flags, "blob_compression_type", &flags.blob_compression_type)?;
    o.enable_blob_garbage_collection = flags.enable_blob_garbage_collection;
    o.blob_garbage_collection_age_cutoff = flags.blob_garbage_collection_age_cutoff;
    o.blob_garbage_collection_force_threshold = flags.blob_garbage_collection_force_threshold;
    o.validate()
        .map_err(|e| FlagError(format!("blob flags: {e}")))?;
    Ok(())
}

impl Engine for Lightning {
    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        let opts = lightning_options(flags)?;
        let db = Db::open(path, opts.clone())?;
        Ok(Lightning { db, opts })
    }

    fn name(&self) -> String {
        format!("Lightning DB {}", env!("CARGO_PKG_VERSION"))
    }

    fn options(&self) -> String {
        let o = &self.opts;
        format!(
            "Options: write_buffer_size {}, bloom_bits {}, compression {}, compaction {:?}, sync {}, statistics {}",
            o.write_buffer_size,
            o.bloom_bits_per_key,
            o.compression,
            o.compaction.style,
            o.sync_writes,
            o.statistics.name()
        )
    }

    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Result<()> {
        Ok(self
            .db
            .put_opt(key, value, &WriteOptions::default().sync(sync))?)
    }

    fn delete(&self, key: &[u8], sync: bool) -> Result<()> {
        Ok(self
            .db
            .delete_opt(key, &WriteOptions::default().sync(sync))?)
    }

    fn delete_range(&self, start: &[u8], end: &[u8], sync: bool) -> Result<()> {
        Ok(self
            .db
            .delete_range_opt(start..end, &WriteOptions::default().sync(sync))?)
    }

    /// Through `get_into` with one buffer per thread, as RocksDB's
    /// db_bench reads into one `PinnableSlice` per thread: a row-cache
    /// hit then allocates nothing.
    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        thread_local! {
            // A page of its own, so that two threads' buffers never share
            // a cache line (see `key_buffer`).
            static VALUE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(4096));
        }
        VALUE.with(|buf| {
            let mut buf = buf.borrow_mut();
            Ok(self.db.get_into(key, &mut buf)?.then(|| buf.len()))
        })
    }

    fn multi_get(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<usize>>> {
        self.db
            .multi_get(keys)
            .into_iter()
            .map(|r| Ok(r?.map(|v| v.len())))
            .collect()
    }

    fn merge(&self, key: &[u8], operand: &[u8], sync: bool) -> Result<()> {
        Ok(self
            .db
            .merge_opt(key, operand, &WriteOptions::default().sync(sync))?)
    }

    fn increment(&self, key: &[u8], sync: bool) -> Result<()> {
        let opts = TransactionOptions::default().sync(sync).max_retries(10_000);
        Ok(self.db.transaction_with_opt(&opts, |tx| {
            let n = tx
                .get_for_update(key)?
                .and_then(|v| {
                    v.get(..8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
                })
                .unwrap_or(0);
            tx.put(key, (n + 1).to_le_bytes());
            Ok(())
        })?)
    }

    fn scan(&self, reverse: bool, limit: u64, mut visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let mut it = self.db.iter();
        if reverse {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            for item in it.rev().take(limit) {
                let (k, v) = item?;
                visit(&k, &v);
            }
        } else {
            // Borrowed views, like RocksDB's `key()`/`value()` slices.
            let mut n = 0;
            while n < limit {
                let Some(item) = it.next_ref() else { break };
                let (k, v) = item?;
                visit(k, v);
                n += 1;
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
        let mut it = match end {
            Some(end) => self.db.range(key..end),
            None => self.db.range(key..),
        };
        for _ in 0..=nexts {
            let Some(item) = it.next_ref() else { break };
            let (k, v) = item?;
            visit(k, v);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(self.db.flush()?)
    }

    fn compact(&self) -> Result<()> {
        Ok(self.db.compact_range::<&[u8], _>(..)?)
    }

    fn wait_for_compactions(&self) -> Result<()> {
        Ok(self.db.wait_for_compactions()?)
    }

    fn stats(&self) -> String {
        let mut s = self.db.property("lightning.stats").unwrap_or_default();
        if let Some(n) = self.db.property_u64("lightning.num-range-deletions") {
            s.push_str(&format!("Range deletions (memtables and files): {n}\n"));
        }
        s
    }

    fn sst_bytes(&self) -> u64 {
        sst_bytes(self.db.path())
    }

    fn close(self) -> Result<()> {
        Ok(self.db.close()?)
    }

    fn transfer(
        &self,
        from: &[u8],
        to: &[u8],
        want: u64,
        value_size: usize,
        sync: bool,
        attempt: &dyn Fn(),
    ) -> Result<()> {
        let opts = TransactionOptions::default().sync(sync).max_retries(10_000);
        let balance = |tx: &Transaction, key: &[u8]| -> lightning_db::Result<u64> {
            let v = tx.get(key)?.unwrap_or_default();
            Ok(v.get(..8)
                .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or_default())))
        };
        let encode = |b: u64| {
            let mut v = b.to_be_bytes().to_vec();
            v.resize(value_size.max(8), b' ');
            v
        };
        Ok(self.db.transaction_with_opt(&opts, |tx| {
            attempt();
            let (fb, tb) = (balance(tx, from)?, balance(tx, to)?);
            let amount = want.min(fb);
            tx.put(from, encode(fb - amount));
            tx.put(to, encode(tb + amount));
            Ok(())
        })?)
    }
}

/// Bytes of the `*.sst` files in `dir`.
fn sst_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
