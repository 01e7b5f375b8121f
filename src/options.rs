//! Options of a database, of its writes, and of its files.
//!
//! [`Options`] is a plain struct with public fields and `Default`; it is
//! validated by [`Options::validate`] when the database opens, and a value
//! out of range is an [`Error::InvalidArgument`] naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{default_fs, FileSystem};
use crate::keyspace::{DEFAULT_KEYSPACE_NAME, MAX_KEYSPACE_NAME_LEN};
pub use lightning_compaction::{CompactionConfig, CompactionStyle, FifoConfig, TieredConfig};

use crate::cache::{BlockCache, CachePolicy};
use crate::metrics::StatsLevel;

/// Largest user key accepted (64 KiB).
pub const MAX_KEY_SIZE: usize = 64 * 1024;
/// Largest value accepted (256 MiB).
pub const MAX_VALUE_SIZE: usize = 256 * 1024 * 1024;

/// Block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Blocks are stored as they are.
    #[default]
    None,
    /// Blocks are compressed with zstd at `level` (1..=22; 3 is zstd's
    /// default). A block is stored compressed only when that saves at least
    /// 1/8 of its size.
    Zstd {
        /// zstd compression level.
        level: i32,
    },
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd { level } => write!(f, "zstd:{level}"),
        }
    }
}

/// How recovery treats damage in the newest write-ahead log.
///
/// Older WALs were synced before the next one was started, so damage in
/// them is always [`Error::Corruption`]. The newest WAL may legitimately
/// end in garbage after a power loss when it held unsynced writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalRecoveryMode {
    /// Recover every batch before the first damaged record of the newest
    /// WAL and drop the rest, with a warning naming the offset (RocksDB's
    /// default, `kPointInTimeRecovery`). The database always opens at a
    /// consistent prefix of its history.
    #[default]
    PointInTime,
    /// Accept only a torn last record (an interrupted append); damage
    /// followed by valid records is [`Error::Corruption`], so nothing after
    /// it can be dropped silently.
    TolerateTornTail,
}

/// Settings of a database, fixed when it is opened.
///
/// Start from [`Options::default()`] (or [`Options::new`]) and change what
/// you need with the setters, one per field, named as the field; or read
/// them from a config file ([`Options::from_toml_file`]). The struct is
/// `#[non_exhaustive]`: new options are added without breaking callers.
///
/// ```
/// use lightning_db::{CompactionConfig, Compression, Options};
///
/// let opts = Options::new()
///     .write_buffer_size(16 << 20)
///     .compression(Compression::Zstd { level: 3 })
///     .compaction(CompactionConfig::default().level0_file_num_compaction_trigger(8));
/// assert_eq!(opts.write_buffer_size, 16 << 20);
/// opts.validate().unwrap();
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// Create the database when the directory is empty or missing
    /// (default `true`). When `false`, opening a directory without a
    /// database is an error.
    pub create_if_missing: bool,
    /// Refuse to open a directory that already holds a database
    /// (default `false`).
    pub error_if_exists: bool,
    /// Size in bytes at which the active memtable is frozen and flushed to
    /// an SST file (default 64 MiB; at least 64 KiB).
    pub write_buffer_size: usize,
    /// Most memtables held in memory (the active one plus frozen ones
    /// waiting for flush); writers stall when it is reached (default 2, at
    /// least 2).
    pub max_write_buffer_number: usize,
    /// Keep a bloom filter over each memtable's keys, so that a point read
    /// of a key the memtable does not hold skips its skiplist search
    /// (default `true`). Costs `write_buffer_size / 128` bytes per memtable
    /// (512 KiB for 64 MiB; at most 32 MiB) and a hash per write.
    pub memtable_bloom: bool,
    /// Target size of an uncompressed data block (default 4 KiB).
    pub block_size: usize,
    /// Entries between restart points in data blocks (default 8; RocksDB
    /// and LevelDB use 16). A seek binary-searches the restart points and
    /// then decodes entries one by one: with 100-byte values, 8 measured
    /// 4-5 % faster point reads and seeks than 16 for about 1 % more disk
    /// and 4 % slower full scans.
    pub block_restart_interval: usize,
    /// Target size of a B+Tree index page (default 4 KiB).
    pub index_page_size: usize,
    /// Bloom filter bits per key; 0 disables filters (default 10).
    pub bloom_bits_per_key: u32,
    /// Bytes of the block cache: verified, decompressed SST blocks plus
    /// every open table's filter and root index page (default 32 MiB; 0
    /// turns the cache off, and each block read then re-verifies its
    /// checksum). Ignored when [`block_cache`](Self::block_cache) is set.
    pub block_cache_size: usize,
    /// Bytes of the row cache (RocksDB's `row_cache`): the newest values of
    /// keys read at least twice, served without a lock and without
    /// searching the memtables and SST files (default 0: off). Every write
    /// then also marks its keys' cache slots (one atomic per key). A
    /// quarter to half of the size is the cache's slot array, mapped at
    /// open (its pages are allocated as slots fill). A compaction that
    /// changes what keys read without a write (a compaction filter that
    /// removes or changes an entry, FIFO deleting files) empties the
    /// cache. See `src/row_cache.rs` for why a hit is never stale.
    pub row_cache_size: usize,
    /// Replacement policy of the block cache (default ARC, which keeps a
    /// re-read working set through scans; LRU for comparison).
    pub block_cache_policy: CachePolicy,
    /// A cache to share between databases (not in the config file); when
    /// `None` (the default) the database makes its own from
    /// `block_cache_size` and `block_cache_policy`.
    pub block_cache: Option<Arc<BlockCache>>,
    /// Block compression of new SST files (default none).
    pub compression: Compression,
    /// Folds merge operands ([`crate::Db::merge`]; docs/merge.md) on reads
    /// and in compaction (default `None`: merges are refused with
    /// `InvalidArgument`). Not in the config file: it is code. Must be the
    /// same operator at every open of a database that holds operands; a
    /// read that meets operands without one fails with
    /// [`crate::Error::Merge`].
    pub merge_operator: Option<Arc<dyn crate::MergeOperator>>,
    /// Called by compaction for the newest value of each key that no
    /// snapshot can see, to keep it, change it or remove the key
    /// ([`crate::CompactionFilter`]; default `None`). Not in the config
    /// file: it is code. With one, manual compactions rewrite the last
    /// level too and no compaction moves files without rewriting them.
    pub compaction_filter: Option<Arc<dyn crate::CompactionFilter>>,
    /// The part of keys that prefix scans share ([`crate::PrefixExtractor`],
    /// e.g. [`crate::FixedPrefix`]; RocksDB's `prefix_extractor`; default
    /// `None`). New SST files add each key's prefix to their bloom filter,
    /// and a scan within one prefix skips the files whose filter rules it
    /// out. Not in the config file: it is code.
    pub prefix_extractor: Option<Arc<dyn crate::PrefixExtractor>>,
    /// Time to live of the keyspace's values (default `None`: forever;
    /// config key `ttl`, whole seconds, 0 for none). With one, each put is
    /// stored with its write time, reads treat a value at least `ttl` old
    /// as deleted (hiding older versions too), and compaction drops it
    /// (docs/ttl.md). The setting may change between opens: expiry always
    /// uses the current one. Values written without it never expire;
    /// values written with it keep their time after it is turned off.
    /// Timed values are never put in blob files, and a keyspace with a
    /// TTL refuses merges (`InvalidArgument`).
    pub ttl: Option<std::time::Duration>,
    /// Key-value separation (RocksDB's `enable_blob_files`, default off):
    /// values of at least [`min_blob_size`](Self::min_blob_size) bytes are
    /// written once, at flush, to blob files, and the SSTs hold small
    /// references, so compaction moves references instead of values
    /// (`docs/format.md`, "Blob files").
    pub enable_blob_files: bool,
    /// Smallest value written to a blob file (default 4 KiB; RocksDB's
    /// default is 0, every value). Smaller values stay in the SSTs.
    pub min_blob_size: usize,
    /// A blob file is closed and a new one started once it reaches this
    /// size (default 256 MiB).
    pub blob_file_size: u64,
    /// Compression of the values in new blob files (default none); a value
    /// is stored compressed only when that saves at least 1/8 of it.
    pub blob_compression_type: Compression,
    /// Whether compaction rewrites the live values of the oldest blob
    /// files into new ones, so that those files can be deleted (default
    /// on; RocksDB's default is off). Without it a blob file is deleted
    /// only when every value in it is garbage.
    pub enable_blob_garbage_collection: bool,
    /// The oldest fraction of the blob files whose values compaction
    /// rewrites when garbage collection is on (default 0.25); of those,
    /// only files at least half garbage (or
    /// `blob_garbage_collection_force_threshold`, when lower) are
    /// rewritten.
    pub blob_garbage_collection_age_cutoff: f64,
    /// Forced garbage collection (RocksDB's name and default, 1.0: off):
    /// when the garbage of the oldest `blob_garbage_collection_age_cutoff`
    /// of the blob files reaches this fraction of their bytes, the tables
    /// that may reference them are compaction-rewritten even though no
    /// level needs it, so their live values move and the files go. Below
    /// 1.0 it bounds space amplification of random overwrites (e.g. 0.5:
    /// about 2x at worst), for the live values it moves (write
    /// amplification). Needs `enable_blob_garbage_collection`.
    pub blob_garbage_collection_force_threshold: f64,
    /// Compression per level, overriding `compression`: entry `n` applies
    /// to files written to level `n`; levels past the end use the last
    /// entry. Empty (the default) means `compression` everywhere. A common
    /// choice: none for levels 0–1, zstd below.
    pub compression_per_level: Vec<Compression>,
    /// Data block size per level, overriding `block_size` the same way
    /// (default empty).
    pub block_size_per_level: Vec<usize>,
    /// Compaction: style, level sizes, triggers, write stalls, threads.
    pub compaction: CompactionConfig,
    /// Per-keyspace options by keyspace name (default empty), as the
    /// config file's `[keyspace.NAME]` sections give them: a keyspace named
    /// here runs its tree with these instead of the per-tree fields above
    /// ([`Options::keyspace_options`]). A name is 1 ..= 255 bytes and not
    /// `default`: the default keyspace takes the fields above.
    pub keyspaces: BTreeMap<String, KeyspaceOptions>,
    /// Default of [`WriteOptions::sync`] for writes that do not say
    /// (default `false`).
    pub sync_writes: bool,
    /// Periodic WAL sync by volume: the WAL is fdatasynced whenever this
    /// many bytes were appended since its last sync (0, the default, turns
    /// it off). Bounds what a power loss can take from unsynced writes.
    pub wal_bytes_per_sync: u64,
    /// Most bytes the live WALs may hold before the keyspaces that keep the
    /// oldest one alive are flushed (RocksDB's name): a keyspace written
    /// rarely then never keeps old WALs, and recovery never replays more
    /// than about this much. 0 (the default): 4 × the memtable memory of
    /// all keyspaces (`write_buffer_size × max_write_buffer_number`
    /// summed). Checked whenever a new WAL is started.
    pub max_total_wal_size: u64,
    /// Periodic WAL sync by time: a background thread fdatasyncs the WAL
    /// when it holds writes older than this many milliseconds (0, the
    /// default, turns it off).
    pub wal_sync_interval_ms: u64,
    /// How recovery treats damage in the newest WAL.
    pub wal_recovery_mode: WalRecoveryMode,
    /// Write the WAL through a shared memory map (default `true`): an
    /// unsynced write reaches the operating system as a copy into the page
    /// cache instead of a `write` system call, and survives a crash of the
    /// process the same way. The WAL's blocks are reserved ahead with
    /// `fallocate`, 1 MiB at a time, so a full disk is an error before a
    /// write, never a `SIGBUS`. A writer that syncs every write gets plain
    /// `pwrite`s instead (faster there), switched back to the map after a
    /// few unsynced writes. Where the file system cannot reserve blocks
    /// (or off Linux), the WAL uses plain appends whatever this says.
    pub wal_mmap: bool,
    /// Most SST files open at once (RocksDB's name; default -1: as many as
    /// the system allows). An open file holds a memory map (or, with
    /// `allow_mmap_reads = false`, a file descriptor) and its pinned filter
    /// and index pages; past the bound the least recently read are closed
    /// and opened again when next read. The system's own bound always
    /// applies: half of what `vm.max_map_count` leaves after 8,192 maps
    /// with mapped reads, half of the open-file limit after 256 files
    /// with `pread` (at least 64). Otherwise -1 or 16 ..= 10,000,000.
    pub max_open_files: i64,
    /// Read SST files through a read-only memory map (RocksDB's name;
    /// default `true`, see `docs/durability.md` for the measurements).
    /// With the map, a value of an uncompressed block is a zero-copy slice
    /// of the file; but a device read error, or a file shortened by anyone,
    /// kills the process with `SIGBUS`. With `false`, every block is read
    /// with `pread` into the block cache, and such a failure is an
    /// [`Error::Io`] (or [`Error::Corruption`]) for that read only.
    pub allow_mmap_reads: bool,
    /// Size in bytes past which the manifest is rewritten (RocksDB's
    /// `max_manifest_file_size`; default 64 MiB, at least 1 KiB): the next
    /// change of the file set starts a new manifest holding a snapshot of
    /// the live files, `CURRENT` is switched to it and the old one is
    /// deleted. Bounds the manifest's disk use and the time an open spends
    /// replaying it.
    pub max_manifest_file_size: u64,
    /// What the database counts (default [`StatsLevel::Counters`]: every
    /// metric but the per-operation latency histograms; `All` adds them at
    /// the cost of two clock reads per operation; `Off` counts no user
    /// operation and registers no Prometheus metrics).
    /// docs/observability.md lists the metrics.
    pub statistics: StatsLevel,
    /// The value of the `db` label on the database's metrics and of the
    /// `db` field of its log events. Empty (the default): the directory
    /// path as given to `open`. Databases sharing a registry need distinct
    /// labels.
    pub metrics_label: String,
    /// A Prometheus registry to register the database's collector in (not
    /// in the config file), for example one shared by several databases
    /// and the application's own metrics. `None` (the default): the
    /// database makes a registry of its own
    /// ([`Db::metrics_registry`](crate::Db::metrics_registry)).
    /// Registering fails the open ([`Error::InvalidArgument`]) when a
    /// database with the same label is registered there.
    #[cfg(feature = "prometheus")]
    pub metrics_registry: Option<prometheus::Registry>,
    /// Write the event log: a `LOG` file in the database directory with
    /// one line per event at `INFO` and above (opens, flushes,
    /// compactions, stalls, errors), like RocksDB's `LOG` (default
    /// `false`). Independent of any `tracing` subscriber; never written by
    /// a read-only open.
    pub event_log: bool,
    /// Size at which the event log is rotated to `LOG.old.<micros>`
    /// (default 16 MiB; 0: only at open). Each open also rotates it.
    pub event_log_max_file_size: u64,
    /// Rotated event logs kept; older ones are deleted (default 4, at
    /// most 1000).
    pub event_log_keep_files: usize,
    /// The file system; the real one by default. Tests swap in in-memory
    /// or fault-injecting ones.
    pub fs: Arc<dyn FileSystem>,
    /// The clock of TTL write times and expiry ([`crate::Clock`]; default
    /// [`crate::SystemClock`]). Not in the config file: it is code. Tests
    /// drive expiry with a [`crate::ManualClock`].
    pub clock: Arc<dyn crate::Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            error_if_exists: false,
            write_buffer_size: 64 * 1024 * 1024,
            max_write_buffer_number: 2,
            memtable_bloom: true,
            block_size: 4096,
            block_restart_interval: 8,
            index_page_size: 4096,
            bloom_bits_per_key: 10,
            block_cache_size: 32 * 1024 * 1024,
            row_cache_size: 0,
            block_cache_policy: CachePolicy::Arc,
            block_cache: None,
            compression: Compression::None,
            merge_operator: None,
            compaction_filter: None,
            prefix_extractor: None,
            ttl: None,
            enable_blob_files: false,
            min_blob_size: 4096,
            blob_file_size: 256 << 20,
            blob_compression_type: Compression::None,
            enable_blob_garbage_collection: true,
            blob_garbage_collection_age_cutoff: 0.25,
            blob_garbage_collection_force_threshold: 1.0,
            compression_per_level: Vec::new(),
            block_size_per_level: Vec::new(),
            compaction: CompactionConfig::default(),
            keyspaces: BTreeMap::new(),
            sync_writes: false,
            wal_bytes_per_sync: 0,
            max_total_wal_size: 0,
            wal_sync_interval_ms: 0,
            wal_recovery_mode: WalRecoveryMode::PointInTime,
            wal_mmap: true,
            max_manifest_file_size: 64 << 20,
            allow_mmap_reads: true,
            max_open_files: -1,
            statistics: StatsLevel::Counters,
            metrics_label: String::new(),
            #[cfg(feature = "prometheus")]
            metrics_registry: None,
            event_log: false,
            event_log_max_file_size: 16 << 20,
            event_log_keep_files: 4,
            fs: default_fs(),
            clock: Arc::new(crate::SystemClock),
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("create_if_missing", &self.create_if_missing)
            .field("error_if_exists", &self.error_if_exists)
            .field("write_buffer_size", &self.write_buffer_size)
            .field("max_write_buffer_number", &self.max_write_buffer_number)
            .field("memtable_bloom", &self.memtable_bloom)
            .field("block_size", &self.block_size)
            .field("block_restart_interval", &self.block_restart_interval)
            .field("index_page_size", &self.index_page_size)
            .field("bloom_bits_per_key", &self.bloom_bits_per_key)
            .field("block_cache_size", &self.block_cache_size)
            .field("row_cache_size", &self.row_cache_size)
            .field("block_cache_policy", &self.block_cache_policy)
            .field("block_cache", &self.block_cache)
            .field("compression", &self.compression)
            .field("merge_operator", &self.merge_operator)
            .field("compaction_filter", &self.compaction_filter)
            .field("prefix_extractor", &self.prefix_extractor)
            .field("ttl", &self.ttl)
            .field("enable_blob_files", &self.enable_blob_files)
            .field("min_blob_size", &self.min_blob_size)
            .field("blob_file_size", &self.blob_file_size)
            .field("blob_compression_type", &self.blob_compression_type)
            .field(
                "enable_blob_garbage_collection",
                &self.enable_blob_garbage_collection,
            )
            .field(
                "blob_garbage_collection_age_cutoff",
                &self.blob_garbage_collection_age_cutoff,
            )
            .field(
                "blob_garbage_collection_force_threshold",
                &self.blob_garbage_collection_force_threshold,
            )
            .field("compression_per_level", &self.compression_per_level)
            .field("block_size_per_level", &self.block_size_per_level)
            .field("compaction", &self.compaction)
            .field("keyspaces", &self.keyspaces)
            .field("sync_writes", &self.sync_writes)
            .field("wal_bytes_per_sync", &self.wal_bytes_per_sync)
            .field("max_total_wal_size", &self.max_total_wal_size)
            .field("wal_sync_interval_ms", &self.wal_sync_interval_ms)
            .field("wal_recovery_mode", &self.wal_recovery_mode)
            .field("wal_mmap", &self.wal_mmap)
            .field("max_manifest_file_size", &self.max_manifest_file_size)
            .field("allow_mmap_reads", &self.allow_mmap_reads)
            .field("max_open_files", &self.max_open_files)
            .field("statistics", &self.statistics)
            .field("metrics_label", &self.metrics_label)
            .field("metrics_registry", &self.has_metrics_registry())
            .field("event_log", &self.event_log)
            .field("event_log_max_file_size", &self.event_log_max_file_size)
            .field("event_log_keep_files", &self.event_log_keep_files)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A setting out of range: its dotted name (as in the config file), its
/// value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) allowed: String,
}

fn check(
    ok: bool,
    field: &str,
    allowed: &str,
    value: impl fmt::Display,
) -> std::result::Result<(), Invalid> {
    if ok {
        Ok(())
    } else {
        Err(Invalid {
            key: field.to_string(),
            value: value.to_string(),
            allowed: allowed.to_string(),
        })
    }
}

impl Invalid {
    /// The error [`Options::validate`] returns for it.
    pub(crate) fn into_error(self) -> Error {
        Error::InvalidArgument(format!(
            "option `{}` = {} is out of range: {}",
            self.key, self.value, self.allowed
        ))
    }
}

/// `name` as a TOML key: bare when it may be (ASCII letters, digits, `_`
/// and `-`), else a quoted string.
pub(crate) fn toml_key(name: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !name.is_empty() && name.chars().all(bare) {
        return name.to_string();
    }
    let mut q = String::from("\"");
    for c in name.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The dotted name of keyspace `name`'s section in the config file,
/// `keyspace.NAME` (the name quoted if it must be).
pub(crate) fn keyspace_section(name: &str) -> String {
    format!("keyspace.{}", toml_key(name))
}

impl Options {
    /// Bytes of each memtable's key filter (0 without one): 1/128 of the
    /// write buffer, at most 32 MiB (about 27M keys at 10 bits each).
    pub(crate) fn memtable_bloom_bytes(&self) -> usize {
        const MAX: usize = 32 << 20;
        if self.memtable_bloom {
            (self.write_buffer_size / 128).min(MAX)
        } else {
            0
        }
    }

    /// The block cache these options ask for: the shared one if set, else
    /// a new one of `block_cache_size` bytes, or none when that is 0.
    pub(crate) fn make_block_cache(&self) -> Option<Arc<BlockCache>> {
        match &self.block_cache {
            Some(c) => Some(Arc::clone(c)),
            None if self.block_cache_size == 0 => None,
            None => Some(Arc::new(BlockCache::new(
                self.block_cache_size,
                self.block_cache_policy,
            ))),
        }
    }

    /// Checks every field, and every keyspace's name and options; the error
    /// names the first field out of range (`keyspace.NAME.FIELD` for a
    /// keyspace's).
    pub fn validate(&self) -> Result<()> {
        self.validate_detail().map_err(|e| e.into_error())
    }

    /// [`Options::validate`], with the offending key, value and range apart.
    pub(crate) fn validate_detail(&self) -> std::result::Result<(), Invalid> {
        KeyspaceOptions::from_options(self).validate_detail()?;
        check(
            self.max_open_files == -1 || (16..=10_000_000).contains(&self.max_open_files),
            "max_open_files",
            "-1 (as many as the system allows) or 16 ..= 10000000",
            self.max_open_files,
        )?;
        check(
            (1024..=(1 << 40)).contains(&self.max_manifest_file_size),
            "max_manifest_file_size",
            "1 KiB ..= 1 TiB",
            self.max_manifest_file_size,
        )?;
        check(
            self.event_log_keep_files <= 1000,
            "event_log_keep_files",
            "0 ..= 1000",
            self.event_log_keep_files,
        )?;
        for (name, ks) in &self.keyspaces {
            let section = keyspace_section(name);
            check(
                !name.is_empty()
                    && name.len() <= MAX_KEYSPACE_NAME_LEN
                    && name != DEFAULT_KEYSPACE_NAME,
                &section,
                "a keyspace name of 1 ..= 255 bytes other than \"default\" \
                 (the default keyspace takes the top-level options)",
                toml_key(name),
            )?;
            ks.validate_detail().map_err(|e| Invalid {
                key: format!("{section}.{}", e.key),
                ..e
            })?;
        }
        Ok(())
    }

    /// The options of keyspace `name`: its entry of
    /// [`keyspaces`](Self::keyspaces) if it has one, else the per-tree
    /// fields of `self` ([`KeyspaceOptions::from_options`]).
    pub fn keyspace_options(&self, name: &str) -> KeyspaceOptions {
        match self.keyspaces.get(name) {
            Some(ks) => ks.clone(),
            None => KeyspaceOptions::from_options(self),
        }
    }

    /// Compression of files written to `level`.
    pub fn compression_for_level(&self, level: usize) -> Compression {
        match self.compression_per_level.len() {
            0 => self.compression,
            n => self.compression_per_level[level.min(n - 1)],
        }
    }

    /// Data block size of files written to `level`.
    pub fn block_size_for_level(&self, level: usize) -> usize {
        match self.block_size_per_level.len() {
            0 => self.block_size,
            n => self.block_size_per_level[level.min(n - 1)],
        }
    }
}

impl Options {
    /// The default options (the same as [`Options::default()`]).
    pub fn new() -> Self {
        Options::default()
    }

    /// Whether a registry was given (`false` without the `prometheus`
    /// feature).
    fn has_metrics_registry(&self) -> bool {
        #[cfg(feature = "prometheus")]
        return self.metrics_registry.is_some();
        #[cfg(not(feature = "prometheus"))]
        false
    }
}

lightning_compaction::option_setters!(Options {
    create_if_missing: bool,
    error_if_exists: bool,
    write_buffer_size: usize,
    max_write_buffer_number: usize,
    memtable_bloom: bool,
    block_size: usize,
    block_restart_interval: usize,
    index_page_size: usize,
    bloom_bits_per_key: u32,
    block_cache_size: usize,
    row_cache_size: usize,
    block_cache_policy: CachePolicy,
    block_cache: Option<Arc<BlockCache>>,
    compression: Compression,
    merge_operator: Option<Arc<dyn crate::MergeOperator>>,
    compaction_filter: Option<Arc<dyn crate::CompactionFilter>>,
    prefix_extractor: Option<Arc<dyn crate::PrefixExtractor>>,
    ttl: Option<std::time::Duration>,
    enable_blob_files: bool,
    min_blob_size: usize,
    blob_file_size: u64,
    blob_compression_type: Compression,
    enable_blob_garbage_collection: bool,
    blob_garbage_collection_age_cutoff: f64,
    blob_garbage_collection_force_threshold: f64,
    compression_per_level: Vec<Compression>,
    block_size_per_level: Vec<usize>,
    compaction: CompactionConfig,
    keyspaces: BTreeMap<String, KeyspaceOptions>,
    sync_writes: bool,
    wal_bytes_per_sync: u64,
    max_total_wal_size: u64,
    wal_sync_interval_ms: u64,
    wal_recovery_mode: WalRecoveryMode,
    wal_mmap: bool,
    max_open_files: i64,
    allow_mmap_reads: bool,
    max_manifest_file_size: u64,
    statistics: StatsLevel,
    metrics_label: String,
    #[cfg(feature = "prometheus")]
    metrics_registry: Option<prometheus::Registry>,
    event_log: bool,
    event_log_max_file_size: u64,
    event_log_keep_files: usize,
    fs: Arc<dyn FileSystem>,
    clock: Arc<dyn crate::Clock>,
});

/// [`KeyspaceOptions`] and the code that goes over its fields, from one
/// list of them: the struct (each field documented as the [`Options`] field
/// of that name), [`KeyspaceOptions::from_options`],
/// [`Options::with_keyspace`], the setters, and `PER_TREE_KEYS` (the
/// fields' names, which are also their keys in the config file).
macro_rules! per_tree_fields {
    (
        $(#[$meta:meta])*
        pub struct KeyspaceOptions {
            $($field:ident: $t:ty),* $(,)?
            ;
            $($code_field:ident: $code_t:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct KeyspaceOptions {
            $(
                #[doc = concat!(
                    "The same as [`Options::", stringify!($field), "`], for one keyspace."
                )]
                pub $field: $t,
            )*
            $(
                #[doc = concat!(
                    "The same as [`Options::", stringify!($code_field), "`], for one keyspace."
                )]
                pub $code_field: $code_t,
            )*
        }

        /// The names of the fields of [`KeyspaceOptions`] that are config
        /// file keys, in order.
        pub(crate) const PER_TREE_KEYS: &[&str] = &[$(stringify!($field)),*];

        /// The names of the fields of [`KeyspaceOptions`] set in code only
        /// (not in the config file).
        #[cfg(test)]
        pub(crate) const PER_TREE_CODE_FIELDS: &[&str] = &[$(stringify!($code_field)),*];

        impl KeyspaceOptions {
            /// The per-tree fields of `o`.
            pub fn from_options(o: &Options) -> KeyspaceOptions {
                KeyspaceOptions {
                    $($field: o.$field.clone(),)*
                    $($code_field: o.$code_field.clone(),)*
                }
            }
        }

        impl Options {
            /// A copy of these options with the per-tree fields replaced by
            /// `ks`'s (every field of [`KeyspaceOptions`]; all others,
            /// `keyspaces` included, are kept): the options a keyspace's
            /// tree runs with.
            pub fn with_keyspace(&self, ks: &KeyspaceOptions) -> Options {
                Options {
                    $($field: ks.$field.clone(),)*
                    $($code_field: ks.$code_field.clone(),)*
                    ..self.clone()
                }
            }
        }

        lightning_compaction::option_setters!(KeyspaceOptions {
            $($field: $t,)* $($code_field: $code_t),*
        });
    };
}

per_tree_fields! {
    /// The options of one keyspace: the per-tree fields of [`Options`] (its
    /// memtables, SST format, blob files and compaction), which each keyspace
    /// sets for itself. Everything else (WAL, caches, file system, metrics) is
    /// the database's and comes from [`Options`].
    ///
    /// Start from [`KeyspaceOptions::default()`] (the defaults of
    /// [`Options::default()`]) or from a database's options with
    /// [`KeyspaceOptions::from_options`], and change what you need with the
    /// setters, one per field, named as the field. In the config file, a
    /// `[keyspace.NAME]` section holds them (docs/config.md, "Keyspaces").
    ///
    /// ```
    /// use lightning_db::{Compression, KeyspaceOptions, Options};
    ///
    /// let logs = KeyspaceOptions::default()
    ///     .write_buffer_size(8 << 20)
    ///     .compression(Compression::Zstd { level: 9 });
    /// logs.validate().unwrap();
    /// let opts = Options::new().with_keyspace(&logs);
    /// assert_eq!(opts.write_buffer_size, 8 << 20);
    /// ```
    #[derive(Clone, Debug)]
    #[non_exhaustive]
    pub struct KeyspaceOptions {
        // In the order of a write's path: memtables, SST files, blob
        // files, compaction.
        write_buffer_size: usize,
        max_write_buffer_number: usize,
        memtable_bloom: bool,
        block_size: usize,
        block_size_per_level: Vec<usize>,
        block_restart_interval: usize,
        index_page_size: usize,
        bloom_bits_per_key: u32,
        compression: Compression,
        compression_per_level: Vec<Compression>,
        enable_blob_files: bool,
        min_blob_size: usize,
        blob_compression_type: Compression,
        blob_file_size: u64,
        enable_blob_garbage_collection: bool,
        blob_garbage_collection_age_cutoff: f64,
        blob_garbage_collection_force_threshold: f64,
        ttl: Option<std::time::Duration>,
        compaction: CompactionConfig,
        ;
        // Set in code only: not config file keys.
        merge_operator: Option<Arc<dyn crate::MergeOperator>>,
        compaction_filter: Option<Arc<dyn crate::CompactionFilter>>,
        prefix_extractor: Option<Arc<dyn crate::PrefixExtractor>>,
    }
}

impl Default for KeyspaceOptions {
    /// The per-tree fields of [`Options::default()`].
    fn default() -> Self {
        KeyspaceOptions::from_options(&Options::default())
    }
}

impl KeyspaceOptions {
    /// Checks every field with the rules of [`Options::validate`]; the
    /// error names the first field out of range.
    pub fn validate(&self) -> Result<()> {
        self.validate_detail().map_err(|e| e.into_error())
    }

    /// [`KeyspaceOptions::validate`], with the offending key, value and
    /// range apart. [`Options::validate_detail`] checks its per-tree fields
    /// with this.
    pub(crate) fn validate_detail(&self) -> std::result::Result<(), Invalid> {
        check(
            (64 * 1024..=(1 << 40)).contains(&self.write_buffer_size),
            "write_buffer_size",
            "64 KiB ..= 1 TiB",
            self.write_buffer_size,
        )?;
        check(
            (2..=64).contains(&self.max_write_buffer_number),
            "max_write_buffer_number",
            "2 ..= 64",
            self.max_write_buffer_number,
        )?;
        check(
            (256..=(64 << 20)).contains(&self.block_size),
            "block_size",
            "256 B ..= 64 MiB",
            self.block_size,
        )?;
        check(
            (1..=1024).contains(&self.block_restart_interval),
            "block_restart_interval",
            "1 ..= 1024",
            self.block_restart_interval,
        )?;
        check(
            (256..=(64 << 20)).contains(&self.index_page_size),
            "index_page_size",
            "256 B ..= 64 MiB",
            self.index_page_size,
        )?;
        check(
            self.bloom_bits_per_key <= 64,
            "bloom_bits_per_key",
            "0 (no filter) ..= 64",
            self.bloom_bits_per_key,
        )?;
        check(
            self.min_blob_size <= MAX_VALUE_SIZE,
            "min_blob_size",
            "0 ..= 256 MiB",
            self.min_blob_size,
        )?;
        check(
            ((1 << 20)..=(1 << 40)).contains(&self.blob_file_size),
            "blob_file_size",
            "1 MiB ..= 1 TiB",
            self.blob_file_size,
        )?;
        check(
            (0.0..=1.0).contains(&self.blob_garbage_collection_age_cutoff),
            "blob_garbage_collection_age_cutoff",
            "0.0 ..= 1.0",
            self.blob_garbage_collection_age_cutoff,
        )?;
        check(
            (0.0..=1.0).contains(&self.blob_garbage_collection_force_threshold),
            "blob_garbage_collection_force_threshold",
            "0.0 ..= 1.0",
            self.blob_garbage_collection_force_threshold,
        )?;
        check(
            !(self.enable_blob_files
                && self.compaction.style == lightning_compaction::CompactionStyle::Fifo),
            "enable_blob_files",
            "false with compaction.style = \"fifo\" (FIFO deletes whole SSTs and would \
             leave their blob values behind; RocksDB's BlobDB refuses FIFO too)",
            self.enable_blob_files,
        )?;
        check(
            self.ttl
                .is_none_or(|t| t >= std::time::Duration::from_millis(1)),
            "ttl",
            "none, or at least 1 ms (1 s in the config file)",
            format!("{:?}", self.ttl),
        )?;
        for (field, c) in [
            ("compression", &self.compression),
            ("blob_compression_type", &self.blob_compression_type),
        ]
        .into_iter()
        .chain(
            self.compression_per_level
                .iter()
                .map(|c| ("compression_per_level", c)),
        ) {
            if let Compression::Zstd { level } = *c {
                check(
                    (1..=22).contains(&level),
                    field,
                    "zstd level 1 ..= 22",
                    level,
                )?;
            }
        }
        for &b in &self.block_size_per_level {
            check(
                (256..=(64 << 20)).contains(&b),
                "block_size_per_level",
                "256 B ..= 64 MiB",
                b,
            )?;
        }
        self.compaction.validate().map_err(|e| Invalid {
            key: format!("compaction.{}", e.key),
            value: e.value,
            allowed: e.allowed,
        })
    }
}

/// Options of one write: `WriteOptions::default()` (not synced) or
/// [`WriteOptions::synced()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteOptions {
    /// When `true`, the call returns only after the write-ahead log holding
    /// the write is durable (`fdatasync`): the write survives a power loss.
    /// When `false`, it returns once the operating system has the write: it
    /// survives a crash of the process but the most recent writes may be
    /// lost in a power loss (never partially, never out of order).
    pub sync: bool,
}

impl WriteOptions {
    /// Options of a write that returns once it is durable (`sync: true`).
    pub fn synced() -> Self {
        WriteOptions { sync: true }
    }
}

lightning_compaction::option_setters!(WriteOptions { sync: bool });

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn memtable_bloom_is_a_bounded_share_of_the_write_buffer() {
        let mut o = Options::default();
        assert_eq!(o.memtable_bloom_bytes(), 512 << 10);
        o.write_buffer_size = 1 << 40;
        assert_eq!(o.memtable_bloom_bytes(), 32 << 20);
        o.memtable_bloom = false;
        assert_eq!(o.memtable_bloom_bytes(), 0);
    }

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn keyspace_defaults_are_those_of_options() {
        let ks = KeyspaceOptions::default();
        ks.validate().unwrap();
        assert_eq!(
            format!("{ks:?}"),
            format!("{:?}", KeyspaceOptions::from_options(&Options::default()))
        );
        assert_eq!(ks.write_buffer_size, 64 << 20);
        assert_eq!(ks.blob_garbage_collection_age_cutoff, 0.25);
    }

    /// Each per-tree field at the ends of its range is accepted, one step
    /// past them refused with the field named: by `KeyspaceOptions::validate`
    /// and, for the same values, by `Options::validate` (one set of rules).
    #[test]
    fn keyspace_validate_at_the_extremes() {
        type Set = fn(KeyspaceOptions) -> KeyspaceOptions;
        macro_rules! edge {
            ($field:ident: $ok:expr, $bad:expr) => {
                (
                    stringify!($field),
                    (|k: KeyspaceOptions| k.$field($ok)) as Set,
                    (|k: KeyspaceOptions| k.$field($bad)) as Set,
                )
            };
        }
        fn zstd(level: i32) -> Compression {
            Compression::Zstd { level }
        }
        fn levels(n: usize) -> CompactionConfig {
            CompactionConfig::default().num_levels(n)
        }
        let mut cases = [
            edge!(write_buffer_size: 64 << 10, (64 << 10) - 1),
            edge!(write_buffer_size: 1 << 40, (1 << 40) + 1),
            edge!(max_write_buffer_number: 2, 1),
            edge!(max_write_buffer_number: 64, 65),
            edge!(block_size: 256, 255),
            edge!(block_size: 64 << 20, (64 << 20) + 1),
            edge!(block_restart_interval: 1, 0),
            edge!(block_restart_interval: 1024, 1025),
            edge!(index_page_size: 256, 255),
            edge!(index_page_size: 64 << 20, (64 << 20) + 1),
            edge!(bloom_bits_per_key: 64, 65),
            edge!(min_blob_size: MAX_VALUE_SIZE, MAX_VALUE_SIZE + 1),
            edge!(blob_file_size: 1 << 20, (1 << 20) - 1),
            edge!(blob_file_size: 1 << 40, (1 << 40) + 1),
            edge!(blob_garbage_collection_age_cutoff: 0.0, -0.01),
            edge!(blob_garbage_collection_age_cutoff: 1.0, f64::NAN),
            edge!(blob_garbage_collection_force_threshold: 0.0, -0.5),
            edge!(blob_garbage_collection_force_threshold: 1.0, 1.01),
            edge!(ttl: Some(Duration::from_millis(1)), Some(Duration::ZERO)),
            edge!(ttl: Some(Duration::MAX), Some(Duration::from_micros(999))),
            edge!(compression: zstd(1), zstd(0)),
            edge!(compression: zstd(22), zstd(23)),
            edge!(blob_compression_type: zstd(22), zstd(23)),
            edge!(compression_per_level: vec![zstd(22)], vec![zstd(1), zstd(-1)]),
            edge!(block_size_per_level: vec![256, 64 << 20], vec![256, 255]),
            edge!(compaction: levels(16), levels(17)),
        ];
        cases.last_mut().unwrap().0 = "compaction.num_levels";
        for (field, ok, bad) in cases {
            let good = ok(KeyspaceOptions::default());
            good.validate()
                .unwrap_or_else(|e| panic!("{field}: {good:?}: {e}"));
            Options::new().with_keyspace(&good).validate().unwrap();
            let bad = bad(KeyspaceOptions::default());
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("option `{field}` = ")), "{field}: {e}");
            let e = Options::new().with_keyspace(&bad).validate().unwrap_err();
            assert!(
                e.to_string().contains(&format!("`{field}`")),
                "{field}: {e}"
            );
            // As an entry of `keyspaces`: named with its keyspace.
            let o = Options::new().keyspaces(BTreeMap::from([("logs".into(), bad)]));
            let e = o.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("option `keyspace.logs.{field}` = ")),
                "{field}: {e}"
            );
        }
    }

    #[test]
    fn keyspace_names_are_checked() {
        let with = |name: &str| {
            Options::new().keyspaces(BTreeMap::from([(
                name.to_string(),
                KeyspaceOptions::default(),
            )]))
        };
        with("logs").validate().unwrap();
        with(&"n".repeat(255)).validate().unwrap();
        with("defaults").validate().unwrap();
        for (name, key) in [
            ("default", "keyspace.default".to_string()),
            ("", "keyspace.\"\"".to_string()),
            (&"n".repeat(256), format!("keyspace.{}", "n".repeat(256))),
            ("a b", "keyspace.\"a b\"".to_string()),
        ] {
            let r = with(name).validate();
            if name == "a b" {
                r.unwrap();
                assert_eq!(keyspace_section(name), key);
                continue;
            }
            let Err(Error::InvalidArgument(m)) = r else {
                panic!("{name:?} accepted")
            };
            assert!(m.starts_with(&format!("option `{key}` = ")), "{m}");
            assert!(m.contains("default keyspace"), "{m}");
        }
    }

    #[test]
    fn keyspace_options_takes_the_entry_else_the_top_level() {
        let logs = KeyspaceOptions::default().bloom_bits_per_key(3);
        let o = Options::new()
            .bloom_bits_per_key(7)
            .keyspaces(BTreeMap::from([("logs".into(), logs)]));
        assert_eq!(o.keyspace_options("logs").bloom_bits_per_key, 3);
        assert_eq!(o.keyspace_options("users").bloom_bits_per_key, 7);
        assert_eq!(o.keyspace_options("default").bloom_bits_per_key, 7);
    }

    #[test]
    fn toml_keys_are_quoted_when_they_must_be() {
        assert_eq!(toml_key("logs-2_x"), "logs-2_x");
        assert_eq!(toml_key(""), "\"\"");
        assert_eq!(toml_key("a.b"), "\"a.b\"");
        assert_eq!(toml_key("q\"\\\n"), "\"q\\\"\\\\\\u000A\"");
        assert_eq!(toml_key("été"), "\"été\"");
    }

    /// `with_keyspace` replaces the fields of `KeyspaceOptions` and nothing
    /// else: every other field of `Options` is listed here, set away from
    /// its default, and must come through untouched.
    #[test]
    fn with_keyspace_replaces_exactly_the_per_tree_fields() {
        const NOT_PER_TREE: &[&str] = &[
            "create_if_missing",
            "error_if_exists",
            "block_cache_size",
            "row_cache_size",
            "block_cache_policy",
            "block_cache",
            "keyspaces",
            "sync_writes",
            "wal_bytes_per_sync",
            "max_total_wal_size",
            "wal_sync_interval_ms",
            "wal_recovery_mode",
            "wal_mmap",
            "max_open_files",
            "allow_mmap_reads",
            "max_manifest_file_size",
            "statistics",
            "metrics_label",
            "metrics_registry",
            "event_log",
            "event_log_max_file_size",
            "event_log_keep_files",
            "fs",
            "clock",
        ];
        use crate::options_file::tests::struct_fields;
        let src = include_str!("options.rs");
        let mut all = struct_fields(src, "Options");
        let mut split: Vec<String> = PER_TREE_KEYS.iter().map(|f| f.to_string()).collect();
        split.extend(PER_TREE_CODE_FIELDS.iter().map(|f| f.to_string()));
        split.extend(NOT_PER_TREE.iter().map(|f| f.to_string()));
        all.sort_unstable();
        split.sort_unstable();
        assert_eq!(
            all, split,
            "a field of Options is neither per-tree nor listed"
        );

        let base = Options {
            create_if_missing: false,
            error_if_exists: true,
            block_cache_size: 1 << 20,
            row_cache_size: 2 << 20,
            block_cache_policy: CachePolicy::Lru,
            block_cache: Some(Arc::new(BlockCache::new(1 << 20, CachePolicy::Lru))),
            keyspaces: BTreeMap::from([("logs".into(), KeyspaceOptions::default())]),
            sync_writes: true,
            wal_bytes_per_sync: 4096,
            max_total_wal_size: 1 << 30,
            wal_sync_interval_ms: 7,
            wal_recovery_mode: WalRecoveryMode::TolerateTornTail,
            wal_mmap: false,
            max_open_files: 100,
            allow_mmap_reads: false,
            max_manifest_file_size: 1 << 20,
            statistics: StatsLevel::All,
            metrics_label: "label".into(),
            #[cfg(feature = "prometheus")]
            metrics_registry: Some(prometheus::Registry::new()),
            event_log: true,
            event_log_max_file_size: 1,
            event_log_keep_files: 3,
            ..Options::default()
        };
        let ks = KeyspaceOptions {
            write_buffer_size: 1 << 20,
            max_write_buffer_number: 5,
            memtable_bloom: false,
            block_size: 8192,
            block_restart_interval: 3,
            index_page_size: 512,
            bloom_bits_per_key: 4,
            compression: Compression::Zstd { level: 5 },
            compression_per_level: vec![Compression::None],
            block_size_per_level: vec![1024],
            compaction: CompactionConfig::default().num_levels(4),
            enable_blob_files: true,
            min_blob_size: 100,
            blob_file_size: 2 << 20,
            blob_compression_type: Compression::Zstd { level: 2 },
            enable_blob_garbage_collection: false,
            blob_garbage_collection_age_cutoff: 0.5,
            blob_garbage_collection_force_threshold: 0.75,
            merge_operator: Some(Arc::new(crate::U64AddOperator)),
            compaction_filter: None,
            prefix_extractor: Some(Arc::new(crate::FixedPrefix::new(3))),
            ttl: Some(std::time::Duration::from_secs(30)),
        };
        let out = base.with_keyspace(&ks);
        assert_eq!(
            format!("{:?}", KeyspaceOptions::from_options(&out)),
            format!("{ks:?}")
        );
        macro_rules! kept {
            ($($f:ident),*) => {$(
                assert_eq!(
                    format!("{:?}", out.$f),
                    format!("{:?}", base.$f),
                    stringify!($f)
                );
            )*};
        }
        kept!(
            create_if_missing,
            error_if_exists,
            block_cache_size,
            row_cache_size,
            block_cache_policy,
            keyspaces,
            sync_writes,
            wal_bytes_per_sync,
            max_total_wal_size,
            wal_sync_interval_ms,
            wal_recovery_mode,
            wal_mmap,
            max_open_files,
            allow_mmap_reads,
            max_manifest_file_size,
            statistics,
            metrics_label,
            event_log,
            event_log_max_file_size,
            event_log_keep_files
        );
        let same_arc = |a: &Option<Arc<BlockCache>>, b: &Option<Arc<BlockCache>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        assert!(same_arc(&out.block_cache, &base.block_cache), "block_cache");
        assert!(Arc::ptr_eq(&out.fs, &base.fs), "fs");
        assert!(Arc::ptr_eq(&out.clock, &base.clock), "clock");
        #[cfg(feature = "prometheus")]
        assert!(out.metrics_registry.is_some(), "metrics_registry");
        // And with the per-tree fields put back, the options are the same.
        let back = out.with_keyspace(&KeyspaceOptions::from_options(&base));
        assert_eq!(format!("{back:?}"), format!("{base:?}"));
    }

    #[test]
    fn out_of_range_names_the_field() {
        let o = Options {
            write_buffer_size: 10,
            ..Options::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("write_buffer_size"), "{e}");
    }
}
