//! The configuration file: [`Options`] as TOML (docs/config.md).
//!
//! Parsing is done twice over the same text: once into a spanned tree
//! (`toml::de::DeTable`) that tells where every key and value is, which
//! finds unknown keys and maps later errors back to a line; once with serde
//! into the settings. Nothing is silently ignored: an unknown key, a value
//! of the wrong type, a bad size or compression string, or a value that
//! [`Options::validate`] refuses is an [`Error::InvalidArgument`] naming the
//! key, the line and what is allowed.
//!
//! A `[keyspace.NAME]` section holds per-tree keys of one keyspace
//! ([`KeyspaceOptions`]): it starts from the file's top-level values and
//! overrides those it sets. Its values are typed with the rest; the
//! sections are then read again, each over the top level's per-tree keys
//! (`keyspaces`), and validated with the whole.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::Range;
use std::path::Path;

use lightning_compaction::config::units::{self, format_size};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::cache::CachePolicy;
use crate::error::{Error, Result};
use crate::metrics::StatsLevel;
use crate::options::{
    keyspace_section, CompactionConfig, CompactionStyle, Compression, Invalid, KeyspaceOptions,
    Options, WalRecoveryMode, PER_TREE_KEYS,
};

/// Keys of the top level, in the order they are written.
const TOP_KEYS: &[&str] = &[
    "create_if_missing",
    "error_if_exists",
    "write_buffer_size",
    "max_write_buffer_number",
    "memtable_bloom",
    "block_size",
    "block_restart_interval",
    "index_page_size",
    "bloom_bits_per_key",
    "block_cache_size",
    "row_cache_size",
    "block_cache_policy",
    "compression",
    "compression_per_level",
    "enable_blob_files",
    "min_blob_size",
    "blob_file_size",
    "blob_compression_type",
    "enable_blob_garbage_collection",
    "blob_garbage_collection_age_cutoff",
    "blob_garbage_collection_force_threshold",
    "ttl",
    "block_size_per_level",
    "sync_writes",
    "wal_bytes_per_sync",
    "max_total_wal_size",
    "wal_sync_interval_ms",
    "wal_recovery_mode",
    "wal_mmap",
    "max_manifest_file_size",
    "allow_mmap_reads",
    "max_open_files",
    "statistics",
    "metrics_label",
    "event_log",
    "event_log_max_file_size",
    "event_log_keep_files",
    "compaction",
    "keyspace",
];

/// Keys of `[compaction]`.
const COMPACTION_KEYS: &[&str] = &[
    "style",
    "num_levels",
    "level0_file_num_compaction_trigger",
    "level0_slowdown_writes_trigger",
    "level0_stop_writes_trigger",
    "max_bytes_for_level_base",
    "max_bytes_for_level_multiplier",
    "level_compaction_dynamic_level_bytes",
    "target_file_size_base",
    "target_file_size_multiplier",
    "max_background_jobs",
    "max_subcompactions",
    "soft_pending_compaction_bytes_limit",
    "hard_pending_compaction_bytes_limit",
    "disable_auto_compactions",
    "periodic_compaction_seconds",
    "tiered",
    "fifo",
];

/// Keys of `[compaction.tiered]`.
const TIERED_KEYS: &[&str] = &[
    "size_ratio",
    "min_merge_width",
    "max_merge_width",
    "max_size_amplification_percent",
];

/// Keys of `[compaction.fifo]`.
const FIFO_KEYS: &[&str] = &["max_table_files_size"];

/// What a compression value may be, for error messages.
const COMPRESSION_SYNTAX: &str = "\"none\", \"zstd\" (level 3) or \"zstd:N\" with N in 1 ..= 22";

/// Name used for text given to [`Options::from_toml_str`] in messages.
const STRING_ORIGIN: &str = "<string>";

impl Options {
    /// Reads options from TOML text (docs/config.md; `lightning.example.toml`
    /// lists every key). Missing keys take their defaults; `fs` is always
    /// the real file system. The result is validated: any error is
    /// [`Error::InvalidArgument`] naming the key, the line and what is
    /// allowed.
    pub fn from_toml_str(s: &str) -> Result<Options> {
        parse(s, STRING_ORIGIN)
    }

    /// Reads options from a TOML file; see [`Options::from_toml_str`].
    /// Messages start with the path, the line and the column.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Options> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::InvalidArgument(format!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        parse(&text, &path.display().to_string())
    }

    /// Every setting in force as TOML (all but `fs`), one commented key per
    /// setting, then each entry of [`Options::keyspaces`] as a
    /// `[keyspace.NAME]` section holding every per-tree key (uncommented);
    /// [`Options::from_toml_str`] reads it back to equal options.
    pub fn to_toml_string(&self) -> String {
        to_toml(self)
    }
}

/// A key found in the document: its dotted path (a keyspace's name quoted
/// if it must be, as [`keyspace_section`] writes it) and where it is.
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
    is_table: bool,
    /// A keyspace's section, `[keyspace.NAME]`.
    is_keyspace: bool,
}

/// What a table of the document holds, which says the keys it may have.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Table {
    Top,
    Compaction,
    Tiered,
    Fifo,
    /// `[keyspace]`: a section per keyspace, any name.
    Keyspaces,
    /// `[keyspace.NAME]`: the per-tree keys.
    Keyspace,
}

impl Table {
    /// The keys it may have (`None`: any).
    fn keys(self) -> Option<&'static [&'static str]> {
        match self {
            Table::Top => Some(TOP_KEYS),
            Table::Compaction => Some(COMPACTION_KEYS),
            Table::Tiered => Some(TIERED_KEYS),
            Table::Fifo => Some(FIFO_KEYS),
            Table::Keyspaces => None,
            Table::Keyspace => Some(PER_TREE_KEYS),
        }
    }

    /// The kind of the table at `key`, if this module looks into it.
    fn child(self, key: &str) -> Option<Table> {
        match (self, key) {
            (Table::Top | Table::Keyspace, "compaction") => Some(Table::Compaction),
            (Table::Top, "keyspace") => Some(Table::Keyspaces),
            (Table::Compaction, "tiered") => Some(Table::Tiered),
            (Table::Compaction, "fifo") => Some(Table::Fifo),
            (Table::Keyspaces, _) => Some(Table::Keyspace),
            _ => None,
        }
    }
}

/// Parses and validates `src`; `origin` names it in messages.
pub(crate) fn parse(src: &str, origin: &str) -> Result<Options> {
    let doc = DeTable::parse(src).map_err(|e| toml_error(src, origin, &e, &[]))?;
    let mut entries = Vec::new();
    let mut unknown = Vec::new();
    walk(doc.get_ref(), "", Table::Top, &mut entries, &mut unknown);
    if let Some((span, msg)) = unknown.into_iter().min_by_key(|(s, _)| s.start) {
        let (line, col) = line_col(src, span.start);
        return Err(Error::InvalidArgument(format!(
            "{origin}:{line}:{col}: {msg}"
        )));
    }
    // Every value is typed here, the keyspace sections' included, so that
    // a wrong one is reported at its line.
    let file: FileOptions =
        toml::from_str(src).map_err(|e| toml_error(src, origin, &e, &entries))?;
    let mut opts = file.into_options();
    opts.keyspaces = keyspaces(src, origin)?;
    opts.validate_detail()
        .map_err(|inv| invalid_error(src, origin, &inv, &entries))?;
    Ok(opts)
}

/// Records every key of `table` (at dotted `prefix`, of kind `kind`) and
/// every unknown one.
fn walk(
    table: &DeTable<'_>,
    prefix: &str,
    kind: Table,
    out: &mut Vec<Entry>,
    unknown: &mut Vec<(Range<usize>, String)>,
) {
    let name = match kind {
        Table::Top => "[top level]".to_string(),
        _ => format!("[{prefix}]"),
    };
    for (k, v) in table.iter() {
        let key: &str = k.get_ref();
        if let Some(allowed) = kind.keys().filter(|a| !a.contains(&key)) {
            let why = if kind == Table::Keyspace && TOP_KEYS.contains(&key) {
                format!(
                    "key `{key}` cannot be set in {name}: it applies to the whole \
                     database (set it at the top level)"
                )
            } else {
                format!("unknown key `{key}` in {name}")
            };
            unknown.push((
                k.span(),
                format!("{why}; expected one of: {}", allowed.join(", ")),
            ));
            continue;
        }
        let path = match kind {
            Table::Top => key.to_string(),
            Table::Keyspaces => keyspace_section(key),
            _ => format!("{prefix}.{key}"),
        };
        out.push(Entry {
            path: path.clone(),
            key: k.span(),
            value: v.span(),
            is_table: matches!(v.get_ref(), DeValue::Table(_)),
            is_keyspace: kind == Table::Keyspaces,
        });
        if let (DeValue::Table(t), Some(child)) = (v.get_ref(), kind.child(key)) {
            walk(t, &path, child, out, unknown);
        }
    }
}

/// The `[keyspace.NAME]` sections of `src`, whose values were all typed
/// already. A section starts from the top level's per-tree keys as the file
/// gives them and overrides those it sets (in `compaction` and
/// `compaction.tiered` key by key).
fn keyspaces(src: &str, origin: &str) -> Result<BTreeMap<String, KeyspaceOptions>> {
    let bad = |e: toml::de::Error| Error::InvalidArgument(format!("{origin}: {}", e.message()));
    let doc: toml::Table = toml::from_str(src).map_err(bad)?;
    let Some(toml::Value::Table(sections)) = doc.get("keyspace") else {
        return Ok(BTreeMap::new());
    };
    let top: toml::Table = doc
        .iter()
        .filter(|(k, _)| PER_TREE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut out = BTreeMap::new();
    for (name, section) in sections {
        let mut merged = top.clone();
        if let toml::Value::Table(section) = section {
            overlay(&mut merged, section);
        }
        let file: FileOptions = toml::Value::Table(merged).try_into().map_err(|e| {
            Error::InvalidArgument(format!(
                "{origin}: [{}]: {}",
                keyspace_section(name),
                friendlier(e.message().trim_end())
            ))
        })?;
        out.insert(
            name.clone(),
            KeyspaceOptions::from_options(&file.into_options()),
        );
    }
    Ok(out)
}

/// Sets the keys of `over` in `base`, tables merged key by key.
fn overlay(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// 1-based line and column (in characters) of byte `pos` of `src`.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let bytes = src.as_bytes();
    let before = bytes.get(..pos).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = before
        .get(line_start..)
        .unwrap_or_default()
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, col)
}

/// The innermost known key whose key or value holds byte `pos`.
fn entry_at(entries: &[Entry], pos: usize) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| e.key.contains(&pos) || e.value.contains(&pos))
        .min_by_key(|e| (e.is_table, e.value.len()))
}

/// A parse or type error from the `toml` crate, with line, column and key.
fn toml_error(src: &str, origin: &str, e: &toml::de::Error, entries: &[Entry]) -> Error {
    let msg = friendlier(e.message().trim_end());
    let Some(span) = e.span() else {
        return Error::InvalidArgument(format!("{origin}: {msg}"));
    };
    let (line, col) = line_col(src, span.start);
    let msg = match entry_at(entries, span.start) {
        Some(entry) => format!("`{}`: {msg}", entry.path),
        None if entries.is_empty() => format!("TOML syntax error: {msg}"),
        None => msg.to_string(),
    };
    Error::InvalidArgument(format!("{origin}:{line}:{col}: {msg}"))
}

/// Serde's names of Rust types, in words of the file.
fn friendlier(msg: &str) -> String {
    msg.replace("expected struct CompactionConfig", "expected a table")
        .replace("expected struct FileOptions", "expected a table")
        .replace("expected a map", "expected a table")
        .replace("expected struct TieredConfig", "expected a table")
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected u32", "expected a non-negative integer below 2^32")
        .replace("expected f64", "expected a number")
}

/// A value [`Options::validate`] refused, located in the document: at its
/// own key, or, when the key is not in the file (its default, or for a
/// keyspace the top level's value, contradicts a value that is), at the key
/// it is compared with, looked for in the same section.
fn invalid_error(src: &str, origin: &str, inv: &Invalid, entries: &[Entry]) -> Error {
    let Invalid {
        key,
        value,
        allowed,
    } = inv;
    let section = entries
        .iter()
        .find(|e| e.is_keyspace && key.starts_with(&format!("{}.", e.path)));
    let scope = section.map(|s| format!("{}.", s.path));
    let in_scope = |e: &Entry| match &scope {
        Some(scope) => e.path.starts_with(scope),
        None => !e.path.starts_with("keyspace"),
    };
    let unset = match section {
        Some(s) => format!("not set in [{}]: the top level's", s.path),
        None => "its default; not set in the file".to_string(),
    };
    let msg = if let Some(e) = entries.iter().find(|e| e.path == *key) {
        let (line, _) = line_col(src, e.key.start);
        format!("{origin}:{line}: {key} = {value} is not allowed: {allowed}")
    } else if let Some(e) = entries.iter().find(|e| {
        !e.is_table
            && in_scope(e)
            && e.path
                .rsplit('.')
                .next()
                .is_some_and(|last| allowed.contains(last))
    }) {
        let (line, _) = line_col(src, e.key.start);
        format!(
            "{origin}:{line}: {key} = {value} ({unset}) is not allowed: {allowed}; set by `{}` here",
            e.path
        )
    } else {
        format!("{origin}: {key} = {value} is not allowed: {allowed}")
    };
    Error::InvalidArgument(msg)
}

/// The document as serde reads it. Field names are the keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileOptions {
    create_if_missing: bool,
    error_if_exists: bool,
    write_buffer_size: Size,
    max_write_buffer_number: usize,
    memtable_bloom: bool,
    block_size: Size,
    block_restart_interval: usize,
    index_page_size: Size,
    bloom_bits_per_key: u32,
    block_cache_size: Size,
    row_cache_size: Size,
    block_cache_policy: CachePolicyName,
    compression: Comp,
    compression_per_level: Vec<Comp>,
    enable_blob_files: bool,
    min_blob_size: Size,
    blob_file_size: Size,
    blob_compression_type: Comp,
    enable_blob_garbage_collection: bool,
    blob_garbage_collection_age_cutoff: f64,
    blob_garbage_collection_force_threshold: f64,
    /// Seconds; 0: none.
    ttl: u64,
    block_size_per_level: Vec<Size>,
    sync_writes: bool,
    wal_bytes_per_sync: Size,
    max_total_wal_size: Size,
    wal_sync_interval_ms: u64,
    wal_recovery_mode: RecoveryMode,
    wal_mmap: bool,
    max_manifest_file_size: Size,
    allow_mmap_reads: bool,
    max_open_files: i64,
    statistics: StatsName,
    metrics_label: String,
    event_log: bool,
    event_log_max_file_size: Size,
    event_log_keep_files: usize,
    compaction: CompactionConfig,
    /// The `[keyspace.NAME]` sections, typed as a whole file each (keys
    /// other than the per-tree ones were refused before); only to find
    /// wrong values at their line: [`keyspaces`] reads them.
    keyspace: BTreeMap<String, FileOptions>,
}

/// A TTL in whole seconds for the file, rounded up so that a sub-second
/// TTL set in code is not written as 0 (none).
fn ttl_seconds(ttl: Option<std::time::Duration>) -> u64 {
    ttl.map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// `"off"`, `"counters"` or `"all"`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatsName {
    Off,
    Counters,
    All,
}

impl From<StatsLevel> for StatsName {
    fn from(l: StatsLevel) -> Self {
        match l {
            StatsLevel::Off => StatsName::Off,
            StatsLevel::Counters => StatsName::Counters,
            StatsLevel::All => StatsName::All,
        }
    }
}

impl From<StatsName> for StatsLevel {
    fn from(l: StatsName) -> Self {
        match l {
            StatsName::Off => StatsLevel::Off,
            StatsName::Counters => StatsLevel::Counters,
            StatsName::All => StatsLevel::All,
        }
    }
}

/// `"arc"` or `"lru"`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CachePolicyName {
    Arc,
    Lru,
}

impl From<CachePolicy> for CachePolicyName {
    fn from(p: CachePolicy) -> Self {
        match p {
            CachePolicy::Arc => CachePolicyName::Arc,
            CachePolicy::Lru => CachePolicyName::Lru,
        }
    }
}

impl From<CachePolicyName> for CachePolicy {
    fn from(p: CachePolicyName) -> Self {
        match p {
            CachePolicyName::Arc => CachePolicy::Arc,
            CachePolicyName::Lru => CachePolicy::Lru,
        }
    }
}

/// `"point_in_time"` or `"tolerate_torn_tail"`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RecoveryMode {
    PointInTime,
    TolerateTornTail,
}

impl From<WalRecoveryMode> for RecoveryMode {
    fn from(m: WalRecoveryMode) -> Self {
        match m {
            WalRecoveryMode::PointInTime => RecoveryMode::PointInTime,
            WalRecoveryMode::TolerateTornTail => RecoveryMode::TolerateTornTail,
        }
    }
}

impl From<RecoveryMode> for WalRecoveryMode {
    fn from(m: RecoveryMode) -> Self {
        match m {
            RecoveryMode::PointInTime => WalRecoveryMode::PointInTime,
            RecoveryMode::TolerateTornTail => WalRecoveryMode::TolerateTornTail,
        }
    }
}

impl Default for FileOptions {
    fn default() -> Self {
        let o = Options::default();
        FileOptions {
            create_if_missing: o.create_if_missing,
            error_if_exists: o.error_if_exists,
            write_buffer_size: Size(o.write_buffer_size),
            max_write_buffer_number: o.max_write_buffer_number,
            memtable_bloom: o.memtable_bloom,
            block_size: Size(o.block_size),
            block_restart_interval: o.block_restart_interval,
            index_page_size: Size(o.index_page_size),
            bloom_bits_per_key: o.bloom_bits_per_key,
            block_cache_size: Size(o.block_cache_size),
            row_cache_size: Size(o.row_cache_size),
            block_cache_policy: o.block_cache_policy.into(),
            compression: Comp(o.compression),
            compression_per_level: o.compression_per_level.into_iter().map(Comp).collect(),
            enable_blob_files: o.enable_blob_files,
            min_blob_size: Size(o.min_blob_size),
            blob_file_size: Size(o.blob_file_size as usize),
            blob_compression_type: Comp(o.blob_compression_type),
            enable_blob_garbage_collection: o.enable_blob_garbage_collection,
            blob_garbage_collection_age_cutoff: o.blob_garbage_collection_age_cutoff,
            blob_garbage_collection_force_threshold: o.blob_garbage_collection_force_threshold,
            ttl: ttl_seconds(o.ttl),
            block_size_per_level: o.block_size_per_level.into_iter().map(Size).collect(),
            sync_writes: o.sync_writes,
            wal_bytes_per_sync: Size(o.wal_bytes_per_sync as usize),
            max_total_wal_size: Size(o.max_total_wal_size as usize),
            wal_sync_interval_ms: o.wal_sync_interval_ms,
            wal_recovery_mode: o.wal_recovery_mode.into(),
            wal_mmap: o.wal_mmap,
            max_manifest_file_size: Size(o.max_manifest_file_size as usize),
            allow_mmap_reads: o.allow_mmap_reads,
            max_open_files: o.max_open_files,
            statistics: o.statistics.into(),
            metrics_label: o.metrics_label,
            event_log: o.event_log,
            event_log_max_file_size: Size(o.event_log_max_file_size as usize),
            event_log_keep_files: o.event_log_keep_files,
            compaction: o.compaction,
            keyspace: BTreeMap::new(),
        }
    }
}

impl FileOptions {
    fn into_options(self) -> Options {
        Options {
            create_if_missing: self.create_if_missing,
            error_if_exists: self.error_if_exists,
            write_buffer_size: self.write_buffer_size.0,
            max_write_buffer_number: self.max_write_buffer_number,
            memtable_bloom: self.memtable_bloom,
            block_size: self.block_size.0,
            block_restart_interval: self.block_restart_interval,
            index_page_size: self.index_page_size.0,
            bloom_bits_per_key: self.bloom_bits_per_key,
            block_cache_size: self.block_cache_size.0,
            row_cache_size: self.row_cache_size.0,
            block_cache_policy: self.block_cache_policy.into(),
            compression: self.compression.0,
            enable_blob_files: self.enable_blob_files,
            min_blob_size: self.min_blob_size.0,
            blob_file_size: self.blob_file_size.0 as u64,
            blob_compression_type: self.blob_compression_type.0,
            enable_blob_garbage_collection: self.enable_blob_garbage_collection,
            blob_garbage_collection_age_cutoff: self.blob_garbage_collection_age_cutoff,
            blob_garbage_collection_force_threshold: self.blob_garbage_collection_force_threshold,
            ttl: (self.ttl > 0).then(|| std::time::Duration::from_secs(self.ttl)),
            compression_per_level: self
                .compression_per_level
                .into_iter()
                .map(|c| c.0)
                .collect(),
            block_size_per_level: self.block_size_per_level.into_iter().map(|s| s.0).collect(),
            sync_writes: self.sync_writes,
            wal_bytes_per_sync: self.wal_bytes_per_sync.0 as u64,
            max_total_wal_size: self.max_total_wal_size.0 as u64,
            wal_sync_interval_ms: self.wal_sync_interval_ms,
            wal_recovery_mode: self.wal_recovery_mode.into(),
            wal_mmap: self.wal_mmap,
            max_manifest_file_size: self.max_manifest_file_size.0 as u64,
            allow_mmap_reads: self.allow_mmap_reads,
            max_open_files: self.max_open_files,
            statistics: self.statistics.into(),
            metrics_label: self.metrics_label,
            event_log: self.event_log,
            event_log_max_file_size: self.event_log_max_file_size.0 as u64,
            event_log_keep_files: self.event_log_keep_files,
            compaction: self.compaction,
            ..Options::default()
        }
    }
}

/// A size in bytes: an integer or a string with a unit.
struct Size(usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let n = units::de_size(d)?;
        usize::try_from(n).map(Size).map_err(|_| {
            de::Error::custom(format!("size {n} does not fit in this machine's usize"))
        })
    }
}

/// A compression name.
struct Comp(Compression);

/// Parses `"none"`, `"zstd"` (level 3) or `"zstd:N"` (N in 1..=22).
pub(crate) fn parse_compression(s: &str) -> std::result::Result<Compression, String> {
    let bad = || format!("bad compression {s:?}: expected {COMPRESSION_SYNTAX}");
    match s {
        "none" => Ok(Compression::None),
        "zstd" => Ok(Compression::Zstd { level: 3 }),
        _ => {
            let level = s.strip_prefix("zstd:").ok_or_else(bad)?;
            if level.is_empty() || !level.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            match level.parse::<i32>() {
                Ok(level) if (1..=22).contains(&level) => Ok(Compression::Zstd { level }),
                _ => Err(bad()),
            }
        }
    }
}

struct CompVisitor;

impl Visitor<'_> for CompVisitor {
    type Value = Comp;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(COMPRESSION_SYNTAX)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Comp, E> {
        parse_compression(v).map(Comp).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Comp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_str(CompVisitor)
    }
}

/// A size as a TOML value: `"64MiB"` when a binary unit divides it, else an
/// integer (a string of digits past `i64::MAX`).
fn size_value(n: u64) -> String {
    let s = format_size(n);
    if s.bytes().all(|b| b.is_ascii_digit()) && i64::try_from(n).is_ok() {
        s
    } else {
        format!("\"{s}\"")
    }
}

/// An integer as a TOML value (a string of digits past `i64::MAX`).
fn int_value(n: impl Into<u64>) -> String {
    let n = n.into();
    if i64::try_from(n).is_ok() {
        n.to_string()
    } else {
        format!("\"{n}\"")
    }
}

/// A count as a TOML value: `"unlimited"` for `usize::MAX`.
fn count_value(n: usize) -> String {
    if n == usize::MAX {
        "\"unlimited\"".into()
    } else {
        int_value(n as u64)
    }
}

fn comp_value(c: &Compression) -> String {
    format!("\"{c}\"")
}

fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
    let v: Vec<String> = items.iter().map(f).collect();
    format!("[{}]", v.join(", "))
}

/// Writes `key = value` lines, each after its `# comment` line when
/// `comments` is on, and table headers.
struct Writer {
    out: String,
    comments: bool,
    /// Prefix of the table headers: empty, or `keyspace.NAME.`.
    prefix: String,
    /// The keys written in the current table (`None`: all); only a
    /// keyspace's section, before its first table, filters them.
    keys: Option<&'static [&'static str]>,
}

impl Writer {
    fn kv(&mut self, comment: &str, key: &str, value: &dyn Display) {
        if self.keys.is_some_and(|keys| !keys.contains(&key)) {
            return;
        }
        if self.comments {
            self.out.push_str(&format!("# {comment}\n"));
        }
        self.out.push_str(&format!("{key} = {value}\n"));
    }

    fn table(&mut self, name: &str) {
        self.keys = None;
        self.out.push_str(&format!("\n[{}{name}]\n", self.prefix));
    }
}

/// The options as the file says them: the top level, then a section per
/// keyspace, written by [`write_options`] from the options its tree runs
/// with, keeping only the per-tree keys.
fn to_toml(o: &Options) -> String {
    let mut w = Writer {
        out: String::new(),
        comments: true,
        prefix: String::new(),
        keys: None,
    };
    write_options(&mut w, o);
    if !o.keyspaces.is_empty() {
        w.out.push_str(
            "\n# Keyspaces: every per-tree key of each, in full (docs/config.md, \"Keyspaces\").\n",
        );
    }
    for (name, ks) in &o.keyspaces {
        let section = keyspace_section(name);
        let mut ksw = Writer {
            out: format!("[{section}]\n"),
            comments: false,
            prefix: format!("{section}."),
            keys: Some(PER_TREE_KEYS),
        };
        write_options(&mut ksw, &o.with_keyspace(ks));
        w.out.push_str(&ksw.out);
    }
    w.out
}

/// Every key of `o` (those `w` takes).
fn write_options(w: &mut Writer, o: &Options) {
    let mut kv = |comment: &str, key: &str, value: &dyn Display| {
        w.kv(comment, key, value);
    };
    let c = &o.compaction;
    let t = &c.tiered;
    kv(
        "Create the database when the directory is empty or missing.",
        "create_if_missing",
        &o.create_if_missing,
    );
    kv(
        "Refuse to open a directory that already holds a database.",
        "error_if_exists",
        &o.error_if_exists,
    );
    kv(
        "Memtable size at which it is frozen and flushed to an SST (64KiB ..= 1TiB).",
        "write_buffer_size",
        &size_value(o.write_buffer_size as u64),
    );
    kv(
        "Memtables in memory, active plus frozen; writers stall at this many (2 ..= 64).",
        "max_write_buffer_number",
        &int_value(o.max_write_buffer_number as u64),
    );
    kv(
        "Bloom filter over each memtable's keys, so point reads skip its search (write_buffer_size / 128 bytes, at most 32MiB).",
        "memtable_bloom",
        &o.memtable_bloom,
    );
    kv(
        "Target size of an uncompressed data block (256 ..= 64MiB).",
        "block_size",
        &size_value(o.block_size as u64),
    );
    kv(
        "Entries between restart points in data blocks (1 ..= 1024).",
        "block_restart_interval",
        &int_value(o.block_restart_interval as u64),
    );
    kv(
        "Target size of a B+Tree index page (256 ..= 64MiB).",
        "index_page_size",
        &size_value(o.index_page_size as u64),
    );
    kv(
        "Bloom filter bits per key; 0 disables filters (0 ..= 64).",
        "bloom_bits_per_key",
        &o.bloom_bits_per_key,
    );
    kv(
        "Block cache bytes: cached blocks plus open tables' filters and index roots (0: off).",
        "block_cache_size",
        &size_value(o.block_cache_size as u64),
    );
    kv(
        "Row cache bytes: newest values of keys read twice, served without a search (0: off).",
        "row_cache_size",
        &size_value(o.row_cache_size as u64),
    );
    let policy = match o.block_cache_policy {
        CachePolicy::Arc => "\"arc\"",
        CachePolicy::Lru => "\"lru\"",
    };
    kv(
        "Block cache replacement: \"arc\" (keeps re-read blocks through scans) or \"lru\".",
        "block_cache_policy",
        &policy,
    );
    kv(
        "Compression of new SSTs: \"none\", \"zstd\" (level 3) or \"zstd:N\" (N in 1 ..= 22).",
        "compression",
        &comp_value(&o.compression),
    );
    kv(
        "Compression per level, overriding `compression`; later levels use the last entry.",
        "compression_per_level",
        &list(&o.compression_per_level, comp_value),
    );
    kv(
        "Data block size per level, overriding `block_size` the same way.",
        "block_size_per_level",
        &list(&o.block_size_per_level, |&b| size_value(b as u64)),
    );
    kv(
        "Key-value separation: values of at least min_blob_size go to blob files at flush.",
        "enable_blob_files",
        &o.enable_blob_files,
    );
    kv(
        "Smallest value written to a blob file (0 ..= 256MiB).",
        "min_blob_size",
        &size_value(o.min_blob_size as u64),
    );
    kv(
        "A blob file is closed at this size (1MiB ..= 1TiB).",
        "blob_file_size",
        &size_value(o.blob_file_size),
    );
    kv(
        "Compression of values in blob files, as `compression`.",
        "blob_compression_type",
        &comp_value(&o.blob_compression_type),
    );
    kv(
        "Compaction rewrites live values of the oldest blob files so they can be deleted.",
        "enable_blob_garbage_collection",
        &o.enable_blob_garbage_collection,
    );
    kv(
        "The oldest fraction of blob files garbage collection drains, those half garbage (0.0 ..= 1.0).",
        "blob_garbage_collection_age_cutoff",
        // `{:?}` keeps the decimal point (`1.0`, not `1`): a TOML float.
        &format!("{:?}", o.blob_garbage_collection_age_cutoff),
    );
    kv(
        "Forced GC: the oldest files' garbage fraction that rewrites the tables referencing them (1.0: off).",
        "blob_garbage_collection_force_threshold",
        &format!("{:?}", o.blob_garbage_collection_force_threshold),
    );
    kv(
        "Time to live of values, in seconds (0: forever); expired values read as deleted (docs/ttl.md).",
        "ttl",
        &ttl_seconds(o.ttl),
    );
    kv(
        "Default of WriteOptions::sync: make the WAL durable before a write returns.",
        "sync_writes",
        &o.sync_writes,
    );
    kv(
        "Sync the WAL whenever this many bytes were appended since the last sync (0: off).",
        "wal_bytes_per_sync",
        &size_value(o.wal_bytes_per_sync),
    );
    kv(
        "Flush the keyspaces keeping the oldest WAL alive once the live WALs hold this much (0: 4 x the memtable memory).",
        "max_total_wal_size",
        &size_value(o.max_total_wal_size),
    );
    kv(
        "Sync the WAL in the background when it holds writes older than this many ms (0: off).",
        "wal_sync_interval_ms",
        &int_value(o.wal_sync_interval_ms),
    );
    let mode = match o.wal_recovery_mode {
        WalRecoveryMode::PointInTime => "\"point_in_time\"",
        WalRecoveryMode::TolerateTornTail => "\"tolerate_torn_tail\"",
    };
    kv(
        "Damage in the newest WAL: \"point_in_time\" (recover up to it) or \"tolerate_torn_tail\" (only a torn last record).",
        "wal_recovery_mode",
        &mode,
    );
    kv(
        "Write the WAL through a shared memory map (a copy into the page cache per write instead of a system call).",
        "wal_mmap",
        &o.wal_mmap,
    );
    kv(
        "Rewrite the manifest (a snapshot of the live files) once it grows past this size.",
        "max_manifest_file_size",
        &size_value(o.max_manifest_file_size),
    );
    kv(
        "Read SST files through a memory map (false: pread into the block cache; a read error is then an error, not SIGBUS).",
        "allow_mmap_reads",
        &o.allow_mmap_reads,
    );
    kv(
        "Most SST files open at once (-1: as many as vm.max_map_count or the open-file limit allow).",
        "max_open_files",
        &o.max_open_files,
    );
    kv(
        "What the database counts: \"counters\" (every metric but per-operation latencies), \"all\" (plus latency histograms: two clock reads per operation) or \"off\".",
        "statistics",
        &format!("\"{}\"", o.statistics.name()),
    );
    kv(
        "The `db` label of metrics and log events; empty: the database's path.",
        "metrics_label",
        &toml::Value::String(o.metrics_label.clone()),
    );
    kv(
        "Write the event log, a `LOG` file in the database directory (one line per event at INFO and above).",
        "event_log",
        &o.event_log,
    );
    kv(
        "Rotate the event log to `LOG.old.<micros>` at this size (0: only at each open).",
        "event_log_max_file_size",
        &size_value(o.event_log_max_file_size),
    );
    kv(
        "Rotated event logs kept (0 ..= 1000).",
        "event_log_keep_files",
        &int_value(o.event_log_keep_files as u64),
    );
    w.table("compaction");
    let mut kv = |comment: &str, key: &str, value: &dyn Display| {
        w.kv(comment, key, value);
    };
    let style = match c.style {
        CompactionStyle::Leveled => "\"leveled\"",
        CompactionStyle::Tiered => "\"tiered\"",
        CompactionStyle::Fifo => "\"fifo\"",
    };
    kv(
        "\"leveled\" (less space and read amplification), \"tiered\" (less write amplification) or \"fifo\" (logs: oldest files deleted, nothing merged).",
        "style",
        &style,
    );
    kv(
        "Number of levels, level 0 included (2 ..= 16).",
        "num_levels",
        &int_value(c.num_levels as u64),
    );
    kv(
        "Level-0 files that start a compaction (>= 1).",
        "level0_file_num_compaction_trigger",
        &count_value(c.level0_file_num_compaction_trigger),
    );
    kv(
        "Level-0 files at which writes slow down (>= level0_file_num_compaction_trigger).",
        "level0_slowdown_writes_trigger",
        &count_value(c.level0_slowdown_writes_trigger),
    );
    kv(
        "Level-0 files at which writes stop (>= level0_slowdown_writes_trigger).",
        "level0_stop_writes_trigger",
        &count_value(c.level0_stop_writes_trigger),
    );
    kv(
        "Target size of level 1, or of the first non-empty level (>= 64KiB).",
        "max_bytes_for_level_base",
        &size_value(c.max_bytes_for_level_base),
    );
    kv(
        "Size ratio between consecutive levels (2 ..= 1000).",
        "max_bytes_for_level_multiplier",
        &toml::Value::Float(c.max_bytes_for_level_multiplier),
    );
    kv(
        "Size levels from the last one up, leaving upper levels empty while data is small.",
        "level_compaction_dynamic_level_bytes",
        &c.level_compaction_dynamic_level_bytes,
    );
    kv(
        "Target size of a compaction output file (>= 64KiB).",
        "target_file_size_base",
        &size_value(c.target_file_size_base),
    );
    kv(
        "Output files of level n+1 are this many times those of level n (1 ..= 100).",
        "target_file_size_multiplier",
        &int_value(c.target_file_size_multiplier),
    );
    kv(
        "Threads for flushes and compactions together (1 ..= 256).",
        "max_background_jobs",
        &int_value(c.max_background_jobs as u64),
    );
    kv(
        "Key-range pieces one compaction may be split into, run in parallel (1 ..= 64).",
        "max_subcompactions",
        &int_value(c.max_subcompactions as u64),
    );
    kv(
        "Pending compaction bytes at which writes slow down; 0 disables.",
        "soft_pending_compaction_bytes_limit",
        &size_value(c.soft_pending_compaction_bytes_limit),
    );
    kv(
        "Pending compaction bytes at which writes stop; 0 disables, else >= the soft limit.",
        "hard_pending_compaction_bytes_limit",
        &size_value(c.hard_pending_compaction_bytes_limit),
    );
    kv(
        "Do not compact automatically (bulk loads); write stalls are off too.",
        "disable_auto_compactions",
        &c.disable_auto_compactions,
    );
    kv(
        "Compact files older than this many seconds, so a TTL or compaction filter reaches cold data (0: off).",
        "periodic_compaction_seconds",
        &c.periodic_compaction_seconds,
    );
    w.table("compaction.tiered");
    let mut kv = |comment: &str, key: &str, value: &dyn Display| {
        w.kv(comment, key, value);
    };
    kv(
        "A run joins a merge if at most (100 + size_ratio)% of the merged size so far.",
        "size_ratio",
        &t.size_ratio,
    );
    kv(
        "Fewest runs merged by a size-ratio merge (>= 2).",
        "min_merge_width",
        &count_value(t.min_merge_width),
    );
    kv(
        "Most runs merged at once (>= min_merge_width, or \"unlimited\").",
        "max_merge_width",
        &count_value(t.max_merge_width),
    );
    kv(
        "Merge everything when newer runs exceed this % of the oldest run's size (>= 1).",
        "max_size_amplification_percent",
        &t.max_size_amplification_percent,
    );
    w.table("compaction.fifo");
    w.kv(
        "FIFO: the oldest files are deleted while all files add up to more than this (>= 64KiB).",
        "max_table_files_size",
        &size_value(c.fifo.max_table_files_size),
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match Options::from_toml_str(s) {
            Ok(_) => panic!("accepted:\n{s}"),
            Err(Error::InvalidArgument(m)) => m,
            Err(e) => panic!("wrong error kind: {e}"),
        }
    }

    fn non_default() -> Options {
        Options {
            create_if_missing: false,
            error_if_exists: true,
            write_buffer_size: 3 << 20,
            max_write_buffer_number: 5,
            memtable_bloom: false,
            block_size: 16 * 1024 + 7,
            block_restart_interval: 8,
            index_page_size: 8192,
            bloom_bits_per_key: 0,
            compression: Compression::Zstd { level: 7 },
            compression_per_level: vec![Compression::None, Compression::Zstd { level: 19 }],
            block_size_per_level: vec![4096, 65536],
            sync_writes: true,
            wal_mmap: false,
            max_manifest_file_size: 5 << 20,
            allow_mmap_reads: false,
            max_open_files: 500,
            statistics: StatsLevel::All,
            metrics_label: "orders \"eu\" \\ db".into(),
            event_log: true,
            event_log_max_file_size: 1 << 20,
            event_log_keep_files: 9,
            compaction: CompactionConfig::default()
                .style(CompactionStyle::Tiered)
                .num_levels(5)
                .level0_file_num_compaction_trigger(3)
                .level0_slowdown_writes_trigger(9)
                .level0_stop_writes_trigger(usize::MAX)
                .max_bytes_for_level_base(100_000_000)
                .max_bytes_for_level_multiplier(7.5)
                .level_compaction_dynamic_level_bytes(false)
                .target_file_size_base(u64::MAX)
                .target_file_size_multiplier(2)
                .max_background_jobs(4)
                .max_subcompactions(3)
                .soft_pending_compaction_bytes_limit(0)
                .hard_pending_compaction_bytes_limit(1 << 50)
                .disable_auto_compactions(true)
                .tiered(
                    lightning_compaction::TieredConfig::default()
                        .size_ratio(5)
                        .min_merge_width(3)
                        .max_merge_width(10)
                        .max_size_amplification_percent(150),
                ),
            keyspaces: BTreeMap::from([
                (
                    "logs".to_string(),
                    KeyspaceOptions::default()
                        .write_buffer_size(1 << 20)
                        .compression(Compression::None)
                        .compression_per_level(vec![])
                        .blob_garbage_collection_age_cutoff(1.0)
                        .ttl(Some(std::time::Duration::from_secs(86_400)))
                        .compaction(CompactionConfig::default().num_levels(3)),
                ),
                (
                    "a.b \"c\"\n\u{7f} é".to_string(),
                    KeyspaceOptions::default()
                        .enable_blob_files(true)
                        .blob_file_size(u64::MAX >> 24),
                ),
            ]),
            ..Options::default()
        }
    }

    fn same(a: &Options, b: &Options) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn round_trip_default_and_non_default() {
        for o in [Options::default(), non_default()] {
            o.validate().unwrap();
            let s = o.to_toml_string();
            let back = Options::from_toml_str(&s).unwrap_or_else(|e| panic!("{e}\n{s}"));
            assert!(same(&o, &back), "{s}\n{o:?}\n{back:?}");
            assert_eq!(back.to_toml_string(), s);
        }
    }

    #[test]
    fn keyspace_sections_inherit_the_top_level_and_override_it() {
        let o = Options::from_toml_str(
            "compression = \"zstd\"\nwrite_buffer_size = \"8MiB\"\nsync_writes = true\n\
             [compaction]\nnum_levels = 5\nlevel0_slowdown_writes_trigger = 30\n\
             [keyspace.logs]\ncompression = \"none\"\nbloom_bits_per_key = 0\n\
             [keyspace.logs.compaction]\nstyle = \"tiered\"\nlevel0_file_num_compaction_trigger = 2\n\
             [keyspace.logs.compaction.tiered]\nsize_ratio = 7\n\
             [keyspace.\"user data\"]\nblock_size = \"16KiB\"\n\
             compaction = { max_bytes_for_level_multiplier = 4 }\n",
        )
        .unwrap();
        assert_eq!(o.compression, Compression::Zstd { level: 3 });
        assert!(o.sync_writes);
        assert_eq!(
            o.keyspaces.keys().collect::<Vec<_>>(),
            ["logs", "user data"]
        );
        let logs = &o.keyspaces["logs"];
        assert_eq!(logs.compression, Compression::None);
        assert_eq!(logs.bloom_bits_per_key, 0);
        assert_eq!(logs.write_buffer_size, 8 << 20);
        assert_eq!(logs.block_size, 4096);
        let c = &logs.compaction;
        assert_eq!(c.style, CompactionStyle::Tiered);
        assert_eq!(c.level0_file_num_compaction_trigger, 2);
        assert_eq!(c.num_levels, 5);
        assert_eq!(c.level0_slowdown_writes_trigger, 30);
        assert_eq!(c.tiered.size_ratio, 7);
        assert_eq!(c.tiered.min_merge_width, 2);
        let user = &o.keyspaces["user data"];
        assert_eq!(user.compression, Compression::Zstd { level: 3 });
        assert_eq!(user.bloom_bits_per_key, 10);
        assert_eq!(user.block_size, 16 << 10);
        assert_eq!(user.compaction.max_bytes_for_level_multiplier, 4.0);
        assert_eq!(user.compaction.num_levels, 5);
        assert_eq!(user.compaction.style, CompactionStyle::Leveled);
        // A keyspace without a section runs with the top level's.
        let other = o.keyspace_options("other");
        assert_eq!(
            format!("{other:?}"),
            format!("{:?}", KeyspaceOptions::from_options(&o))
        );
        // A section that sets nothing is the top level's, but named.
        let o = Options::from_toml_str("block_size = 1024\n[keyspace.empty]\n").unwrap();
        assert_eq!(o.keyspaces["empty"].block_size, 1024);
    }

    #[test]
    fn keyspace_section_errors_name_the_section_and_key() {
        let long = "k".repeat(256);
        let long_file = format!("\n[keyspace.{long}]\n");
        let long_start = format!("<string>:2: keyspace.{long} = ");
        let cases: &[(&str, &str)] = &[
            // Keys that are unknown, or not per keyspace.
            (
                "[keyspace.logs]\nblock_size = 8192\nblock_sise = 1\n",
                "<string>:3:1: unknown key `block_sise` in [keyspace.logs]; \
                 expected one of: write_buffer_size, ",
            ),
            (
                "[keyspace.logs]\n  sync_writes = true\n",
                "<string>:2:3: key `sync_writes` cannot be set in [keyspace.logs]: it applies \
                 to the whole database (set it at the top level); expected one of: write_buffer_size, ",
            ),
            (
                "[keyspace.\"a b\".compaction]\nnum_level = 3\n",
                "<string>:2:1: unknown key `num_level` in [keyspace.\"a b\".compaction]; \
                 expected one of: style, ",
            ),
            (
                "[keyspace.logs.compaction.tiered]\nmax_width = 3\n",
                "<string>:2:1: unknown key `max_width` in [keyspace.logs.compaction.tiered]; ",
            ),
            (
                "[keyspace.a.keyspace.b]\n",
                "<string>:1:13: key `keyspace` cannot be set in [keyspace.a]",
            ),
            // Names.
            (
                "block_size = 8192\n[keyspace.default]\nblock_size = 4096\n",
                "<string>:2: keyspace.default = default is not allowed: a keyspace name of \
                 1 ..= 255 bytes other than \"default\" (the default keyspace takes the \
                 top-level options)",
            ),
            (
                "[keyspace.\"\"]\n",
                "<string>:1: keyspace.\"\" = \"\" is not allowed: ",
            ),
            (&long_file, &long_start),
            // Values out of range, at their line in their section; the top
            // level is checked first.
            (
                "write_buffer_size = 1024\n[keyspace.logs]\nwrite_buffer_size = 2048\n",
                "<string>:1: write_buffer_size = 1024 is not allowed: 64 KiB ..= 1 TiB",
            ),
            (
                "[keyspace.logs]\n\nwrite_buffer_size = 1024\n",
                "<string>:3: keyspace.logs.write_buffer_size = 1024 is not allowed: 64 KiB ..= 1 TiB",
            ),
            (
                "[keyspace.logs.compaction.tiered]\nmin_merge_width = 1\n",
                "<string>:2: keyspace.logs.compaction.tiered.min_merge_width = 1 ",
            ),
            // A value of the section against one it inherits: the section's.
            (
                "[compaction]\nlevel0_slowdown_writes_trigger = 30\nlevel0_stop_writes_trigger = 40\n\
                 [keyspace.logs.compaction]\nlevel0_slowdown_writes_trigger = 50\n",
                "<string>:5: keyspace.logs.compaction.level0_stop_writes_trigger = 40 \
                 (not set in [keyspace.logs]: the top level's) is not allowed: \
                 >= level0_slowdown_writes_trigger (50); \
                 set by `keyspace.logs.compaction.level0_slowdown_writes_trigger` here",
            ),
            // Wrong types.
            (
                "[keyspace.logs]\ncompression = \"lz4\"\n",
                "<string>:2:15: `keyspace.logs.compression`: bad compression \"lz4\": expected \"none\"",
            ),
            (
                "[keyspace.logs.compaction]\nnum_levels = -3\n",
                "<string>:2:14: `keyspace.logs.compaction.num_levels`: ",
            ),
            (
                "keyspace = 3\n",
                "<string>:1:12: `keyspace`: invalid type: integer `3`, expected a table",
            ),
            (
                "[keyspace]\nlogs = 3\n",
                "<string>:2:8: `keyspace.logs`: invalid type: integer `3`, expected a table",
            ),
        ];
        for (file, start) in cases {
            let m = err(file);
            assert!(m.starts_with(start), "{m}\n{file}");
        }
        // A name of 255 bytes is fine.
        Options::from_toml_str(&format!("[keyspace.{}]\n", &long[1..])).unwrap();
    }

    #[test]
    fn the_keyspace_example_of_the_docs_reads_as_it_says() {
        let docs = include_str!("../docs/config.md");
        let section = &docs[docs.find("## Keyspaces").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let text = &section[start..];
        let text = &text[..text.find("```").unwrap()];
        let o = Options::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let logs = &o.keyspaces["logs"];
        assert_eq!(logs.compression, Compression::Zstd { level: 3 });
        assert_eq!(logs.write_buffer_size, 16 << 20);
        assert_eq!(logs.bloom_bits_per_key, 0);
        assert_eq!(logs.compaction.style, CompactionStyle::Tiered);
        assert_eq!(logs.compaction.level0_file_num_compaction_trigger, 4);
        let user = &o.keyspaces["user data"];
        assert_eq!(user.compression, Compression::None);
        assert_eq!(user.block_size, 16 << 10);
        assert_eq!(user.write_buffer_size, 64 << 20);
    }

    #[test]
    fn per_tree_keys_are_top_level_keys() {
        for k in PER_TREE_KEYS {
            assert!(TOP_KEYS.contains(k), "{k}");
        }
    }

    #[test]
    fn empty_file_is_defaults() {
        assert!(same(
            &Options::from_toml_str("").unwrap(),
            &Options::default()
        ));
        assert!(same(
            &Options::from_toml_str("# nothing\n[compaction]\n[compaction.tiered]\n").unwrap(),
            &Options::default()
        ));
    }

    const EXAMPLE_HEADER: &str = "\
# Lightning DB configuration: every key at its default (docs/config.md).
# Load it with `Options::from_toml_file(\"lightning.toml\")`; missing keys
# take their defaults. Sizes are a number of bytes or a string with a unit:
# \"4 KiB\", \"64MiB\", \"1GiB\" (powers of 1024) or \"1GB\" (powers of 1000).
# Regenerate with: LIGHTNING_REGEN_EXAMPLE=1 cargo test example_file

";

    /// A commented keyspace section after the defaults; the test reads it
    /// uncommented too.
    const EXAMPLE_FOOTER: &str = "
# Keyspaces (docs/config.md, \"Keyspaces\"): a [keyspace.NAME] section per
# keyspace, with any of the per-tree keys (memtable, SST, blob files and the
# [compaction] tables). A section starts from the top-level values above and
# overrides those it sets; a keyspace without a section takes them all.
#
# [keyspace.logs]
# write_buffer_size = \"16MiB\"
# compression = \"zstd\"
#
# [keyspace.logs.compaction]
# style = \"tiered\"
";

    #[test]
    fn example_file_is_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lightning.example.toml");
        if std::env::var_os("LIGHTNING_REGEN_EXAMPLE").is_some() {
            let text = format!(
                "{EXAMPLE_HEADER}{}{EXAMPLE_FOOTER}",
                Options::default().to_toml_string()
            );
            std::fs::write(path, text).unwrap();
        }
        let text = &std::fs::read_to_string(path).unwrap();
        let o = Options::from_toml_str(text).unwrap();
        assert!(same(&o, &Options::default()));
        // The example is the defaults as `to_toml_string` writes them,
        // between a header and a footer: regenerate it when a key or its
        // comment changes.
        assert!(
            text.strip_suffix(EXAMPLE_FOOTER)
                .is_some_and(|t| t.ends_with(&Options::default().to_toml_string())),
            "lightning.example.toml is out of date"
        );
        // The footer's keyspace section, uncommented, is a valid one.
        let section = EXAMPLE_FOOTER.split_once("#\n").unwrap().1;
        let section = section.replace("# ", "");
        let o = Options::from_toml_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        assert_eq!(o.keyspaces["logs"].write_buffer_size, 16 << 20);
        assert_eq!(
            o.keyspaces["logs"].compaction.style,
            CompactionStyle::Tiered
        );
        // Every key is in it.
        let doc = DeTable::parse(text).unwrap();
        let (mut entries, mut unknown) = (Vec::new(), Vec::new());
        walk(doc.get_ref(), "", Table::Top, &mut entries, &mut unknown);
        assert!(unknown.is_empty());
        // All but `keyspace`: the defaults have no keyspace sections.
        assert_eq!(
            entries.len(),
            TOP_KEYS.len() - 1 + COMPACTION_KEYS.len() + TIERED_KEYS.len() + FIFO_KEYS.len()
        );
    }

    /// The `pub` fields of `pub struct NAME` in the Rust source `src`.
    pub(crate) fn struct_fields(src: &str, name: &str) -> Vec<String> {
        let start = src
            .find(&format!("pub struct {name} {{"))
            .unwrap_or_else(|| panic!("no struct {name}"));
        let body = &src[start..];
        let body = &body[..body.find("\n}").expect("the struct's end")];
        body.lines()
            .filter_map(|l| l.trim().strip_prefix("pub "))
            .filter_map(|l| l.split_once(':').map(|(f, _)| f.trim().to_string()))
            .filter(|f| !f.contains(' '))
            .collect()
    }

    /// One source of truth for each option: every field of `Options`,
    /// `CompactionConfig` and `TieredConfig` is a key of the file (but the
    /// handles a file cannot hold), and every key has its row in
    /// docs/config.md and its line in the example file. Adding an option
    /// without its key, its documentation or its example fails here.
    #[test]
    fn every_option_has_its_key_its_doc_row_and_its_example_line() {
        let not_in_file = [
            "fs",
            "block_cache",
            "metrics_registry",
            "merge_operator",
            "compaction_filter",
            "prefix_extractor",
            "clock",
        ];
        let options_rs = include_str!("options.rs");
        let config_rs = include_str!("../compaction/src/config.rs");
        let docs = include_str!("../docs/config.md");
        let example = include_str!("../lightning.example.toml");
        for (fields, keys) in [
            (struct_fields(options_rs, "Options"), TOP_KEYS),
            (
                struct_fields(config_rs, "CompactionConfig"),
                COMPACTION_KEYS,
            ),
            (struct_fields(config_rs, "TieredConfig"), TIERED_KEYS),
            (struct_fields(config_rs, "FifoConfig"), FIFO_KEYS),
        ] {
            // `keyspaces` is read from the `[keyspace.NAME]` sections.
            let mut fields: Vec<&str> = fields
                .iter()
                .map(|f| if f == "keyspaces" { "keyspace" } else { f })
                .filter(|f| !not_in_file.contains(f))
                .collect();
            let mut keys = keys.to_vec();
            fields.sort_unstable();
            keys.sort_unstable();
            assert_eq!(fields, keys, "struct fields and file keys differ");
            for k in keys
                .iter()
                .filter(|k| !["compaction", "tiered", "fifo", "keyspace"].contains(k))
            {
                assert!(
                    docs.contains(&format!("| `{k}`")),
                    "`{k}` has no row in docs/config.md"
                );
                assert!(
                    example.lines().any(|l| l.starts_with(&format!("{k} = "))),
                    "`{k}` has no line in lightning.example.toml"
                );
            }
        }
    }

    #[test]
    fn key_lists_match_the_compaction_struct() {
        let t = toml::Table::try_from(CompactionConfig::default()).unwrap();
        let mut keys: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
        let mut want = COMPACTION_KEYS.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        let tiered = t["tiered"].as_table().unwrap();
        let mut keys: Vec<&str> = tiered.keys().map(|k| k.as_str()).collect();
        let mut want = TIERED_KEYS.to_vec();
        keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(tiered["max_merge_width"].as_str(), Some("unlimited"));
        let fifo = t["fifo"].as_table().unwrap();
        let keys: Vec<&str> = fifo.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, FIFO_KEYS);
    }

    #[test]
    fn sizes_and_compressions() {
        let o = Options::from_toml_str(
            "write_buffer_size = \"4 MiB\"\nblock_size = \"8KiB\"\nindex_page_size = 512\n\
             block_size_per_level = [\"4KB\", 100000]\ncompression = \"zstd\"\n\
             compression_per_level = [\"none\", \"zstd:22\"]\n\
             [compaction]\nmax_bytes_for_level_base = \"1GB\"\ntarget_file_size_base = \"2GiB\"\n\
             soft_pending_compaction_bytes_limit = \"1TiB\"\nhard_pending_compaction_bytes_limit = \"2TB\"\n\
             [compaction.tiered]\nmax_merge_width = \"unlimited\"\n",
        )
        .unwrap();
        assert_eq!(o.write_buffer_size, 4 << 20);
        assert_eq!(o.block_size, 8192);
        assert_eq!(o.index_page_size, 512);
        assert_eq!(o.block_size_per_level, vec![4000, 100_000]);
        assert_eq!(o.compression, Compression::Zstd { level: 3 });
        assert_eq!(
            o.compression_per_level,
            vec![Compression::None, Compression::Zstd { level: 22 }]
        );
        assert_eq!(o.compaction.max_bytes_for_level_base, 1_000_000_000);
        assert_eq!(o.compaction.target_file_size_base, 2 << 30);
        assert_eq!(o.compaction.soft_pending_compaction_bytes_limit, 1 << 40);
        assert_eq!(
            o.compaction.hard_pending_compaction_bytes_limit,
            2_000_000_000_000
        );
        assert_eq!(o.compaction.tiered.max_merge_width, usize::MAX);

        for bad in [
            "\"64 MeB\"",
            "\"\"",
            "\"1.5MiB\"",
            "-4096",
            "\"-1\"",
            "\"99999999999TiB\"",
            "true",
            "1.5",
        ] {
            let m = err(&format!("# c\nwrite_buffer_size = {bad}\n"));
            assert!(
                m.starts_with("<string>:2:21: `write_buffer_size`: "),
                "{bad}: {m}"
            );
        }
        let m = err("[compaction]\n\ntarget_file_size_base = \"12 parsecs\"\n");
        assert!(
            m.starts_with("<string>:3:25: `compaction.target_file_size_base`: "),
            "{m}"
        );
        assert!(m.contains("MiB"), "{m}");
    }

    #[test]
    fn bad_compression_names_key_and_line() {
        for bad in [
            "\"lz4\"",
            "\"zstd:0\"",
            "\"zstd:23\"",
            "\"zstd:\"",
            "\"ZSTD\"",
            "\"zstd:-1\"",
            "3",
        ] {
            let m = err(&format!("\n\ncompression = {bad}\n"));
            assert!(m.starts_with("<string>:3:15: `compression`: "), "{m}");
            assert!(m.contains("zstd:N"), "{m}");
        }
        let m = err("compression_per_level = [\"none\", \"snappy\"]\n");
        assert!(
            m.starts_with("<string>:1:34: `compression_per_level`: "),
            "{m}"
        );
    }

    #[test]
    fn unknown_keys_name_key_table_and_line() {
        let m = err("block_size = 4096\n\nwrite_bufer_size = 1\n");
        assert!(
            m.starts_with("<string>:3:1: unknown key `write_bufer_size` in [top level]; expected one of: create_if_missing, "),
            "{m}"
        );
        let m = err("[compaction]\nnum_levels = 7\n  num_level = 3\n");
        assert!(
            m.starts_with(
                "<string>:3:3: unknown key `num_level` in [compaction]; expected one of: style, "
            ),
            "{m}"
        );
        let m = err("[compaction.tiered]\nsize_ratio = 2\nmax_width = 3\n");
        assert!(
            m.starts_with("<string>:3:1: unknown key `max_width` in [compaction.tiered]; "),
            "{m}"
        );
        // Dotted keys and inline tables too; the first in the file is named.
        let m = err("zzz = 1\ncompaction.tiered.bogus = 1\n");
        assert!(m.starts_with("<string>:1:1: unknown key `zzz`"), "{m}");
        let m = err("compaction = { num_levels = 4, nope = 1 }\n");
        assert!(
            m.starts_with("<string>:1:32: unknown key `nope` in [compaction]"),
            "{m}"
        );
        let m = err("[other]\nx = 1\n");
        assert!(
            m.starts_with("<string>:1:2: unknown key `other` in [top level]"),
            "{m}"
        );
    }

    #[test]
    fn wrong_types_name_key_and_line() {
        let m = err("sync_writes = \"yes\"\n");
        assert!(m.starts_with("<string>:1:15: `sync_writes`: "), "{m}");
        let m = err("\n[compaction]\nnum_levels = -3\n");
        assert!(
            m.starts_with("<string>:3:14: `compaction.num_levels`: "),
            "{m}"
        );
        let m = err("[compaction]\nstyle = \"universal\"\n");
        assert!(m.starts_with("<string>:2:9: `compaction.style`: "), "{m}");
        assert!(m.contains("leveled"), "{m}");
        let m = err("compaction = 3\n");
        assert!(m.starts_with("<string>:1:14: `compaction`: "), "{m}");
        let m = err("[compaction.tiered]\nmax_merge_width = \"lots\"\n");
        assert!(
            m.starts_with("<string>:2:19: `compaction.tiered.max_merge_width`: "),
            "{m}"
        );
        assert!(m.contains("unlimited"), "{m}");
        let m = err("block_size_per_level = 4096\n");
        assert!(
            m.starts_with("<string>:1:24: `block_size_per_level`: "),
            "{m}"
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let m = err("block_size = 4096\nblock_size = 8192\n");
        assert!(m.starts_with("<string>:2:"), "{m}");
        let m = err("a = \n");
        assert!(m.starts_with("<string>:1:"), "{m}");
        let m = err("[compaction\n");
        assert!(m.starts_with("<string>:1:"), "{m}");
    }

    #[test]
    fn out_of_range_names_key_and_line() {
        let m = err("# x\nwrite_buffer_size = 1024\n");
        assert_eq!(
            m,
            "<string>:2: write_buffer_size = 1024 is not allowed: 64 KiB ..= 1 TiB"
        );
        let m = err(
            "[compaction]\nlevel0_slowdown_writes_trigger = 20\nlevel0_stop_writes_trigger = 10\n",
        );
        assert_eq!(
            m,
            "<string>:3: compaction.level0_stop_writes_trigger = 10 is not allowed: >= level0_slowdown_writes_trigger (20)"
        );
        // A default contradicting a value in the file: the line of that value.
        let m = err("[compaction]\n\nlevel0_slowdown_writes_trigger = 40\n");
        assert!(
            m.starts_with("<string>:3: compaction.level0_stop_writes_trigger = 36 (its default; not set in the file) is not allowed: >= level0_slowdown_writes_trigger (40)"),
            "{m}"
        );
        let m = err("[compaction.tiered]\nmin_merge_width = 1\n");
        assert!(
            m.starts_with("<string>:2: compaction.tiered.min_merge_width = 1 "),
            "{m}"
        );
        let m = err("\nblock_size_per_level = [4096, 100]\n");
        assert!(
            m.starts_with("<string>:2: block_size_per_level = 100 "),
            "{m}"
        );
        let m = err("[compaction]\nmax_bytes_for_level_multiplier = 1.5\n");
        assert!(
            m.starts_with("<string>:2: compaction.max_bytes_for_level_multiplier = 1.5 "),
            "{m}"
        );
        let m = err("[compaction]\nmax_bytes_for_level_multiplier = nan\n");
        assert!(
            m.starts_with("<string>:2: compaction.max_bytes_for_level_multiplier"),
            "{m}"
        );
        let m = err("max_write_buffer_number = 65\n");
        assert!(
            m.starts_with("<string>:1: max_write_buffer_number = 65 "),
            "{m}"
        );
    }

    #[test]
    fn file_errors_start_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lightning.toml");
        std::fs::write(&p, "\n\n\n\n\n\n\n\n\n\n\nwrite_bufer_size = 1\n").unwrap();
        let Err(Error::InvalidArgument(m)) = Options::from_toml_file(&p) else {
            panic!("accepted")
        };
        assert!(
            m.starts_with(&format!(
                "{}:12:1: unknown key `write_bufer_size`",
                p.display()
            )),
            "{m}"
        );
        std::fs::write(&p, b"\xff\n").unwrap();
        assert!(Options::from_toml_file(&p).is_err());
        assert!(Options::from_toml_file(dir.path().join("missing")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_input(s in "\\PC{0,200}") {
            let _ = Options::from_toml_str(&s);
        }

        #[test]
        fn never_panics_on_a_mangled_example(pos in 0usize..4000, len in 0usize..8, with in "[\\[\\]\"=.a-z0-9 \n#-]{0,8}") {
            let text = Options::default().to_toml_string();
            let start = pos.min(text.len());
            let end = (start + len).min(text.len());
            if text.is_char_boundary(start) && text.is_char_boundary(end) {
                let mangled = format!("{}{}{}", &text[..start], with, &text[end..]);
                if let Ok(o) = Options::from_toml_str(&mangled) {
                    // Whatever is accepted is valid and round-trips.
                    o.validate().unwrap();
                    let again = Options::from_toml_str(&o.to_toml_string()).unwrap();
                    proptest::prop_assert!(same(&o, &again));
                }
            }
        }
    }

    #[test]
    fn line_col_counts_chars() {
        let s = "a\néé = x";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 2), (2, 1));
        assert_eq!(line_col(s, 7), (2, 4));
        assert_eq!(line_col(s, 1000), (2, 7));
    }
}
