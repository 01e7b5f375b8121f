//! Compaction filters: garbage only the application can recognize,
//! dropped or rewritten as compaction passes over it.
//!
//! A [`CompactionFilter`] (RocksDB's `CompactionFilter`, fjall's
//! compaction filters) is called by compaction for the newest version of
//! each key that no snapshot can see, and keeps it, changes its value, or
//! removes the key. Set one per keyspace with
//! [`crate::Options::compaction_filter`]. It runs on the compaction
//! threads, many at once, and must be `Send + Sync` and quick: it is on the
//! path of every key compaction rewrites.
//!
//! What it sees and what it promises (docs/compaction.md, "Compaction
//! filter"):
//! - values only: not tombstones, not merge operands (a key whose newest
//!   version is an operand is not filtered until compaction folds it into
//!   a value), and for a value in a blob file, the value read from it;
//! - only versions newer than every live snapshot, so a snapshot keeps
//!   reading what it read;
//! - a removal turns the entry into a tombstone, so older versions below
//!   do not come back, and drops it with all older versions on the last
//!   level when no snapshot is live;
//! - filtering happens when compaction rewrites a key, not at once: reads
//!   see a filtered key until a compaction reaches it
//!   ([`crate::Db::compact_range`] forces one). Flushes do not filter.

use std::sync::Arc;

use lightning_compaction::{EntryFilter, EntryKind, FilterDecision, FilterFn, Shared};

use crate::ttl::Expiry;
use crate::version::version::Version;

/// What a [`CompactionFilter`] decides for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Keep the key's value.
    Keep,
    /// Delete the key.
    Remove,
    /// Replace the key's value with this one.
    ChangeValue(Vec<u8>),
}

/// Decides, during compaction, what becomes of a key's newest value. It
/// sees values only (a blob value is read for it), only versions newer
/// than every live snapshot, and only when compaction rewrites the key;
/// a removal hides the older versions too (docs/compaction.md,
/// "Compaction filter").
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::sync::Arc;
/// use lightning_db::{CompactionFilter, Db, Decision, Options};
///
/// /// Drops every key under `tmp/`.
/// struct DropTmp;
///
/// impl CompactionFilter for DropTmp {
///     fn name(&self) -> &str {
///         "drop-tmp"
///     }
///     fn filter(&self, _level: usize, key: &[u8], _value: &[u8]) -> Decision {
///         if key.starts_with(b"tmp/") { Decision::Remove } else { Decision::Keep }
///     }
/// }
///
/// let db = Db::open(dir.path(), Options::new().compaction_filter(Some(Arc::new(DropTmp))))?;
/// db.put("tmp/a", "x")?;
/// db.put("keep", "y")?;
/// db.compact_range::<&[u8], _>(..)?;
/// assert_eq!(db.get("tmp/a")?, None);
/// assert!(db.get("keep")?.is_some());
/// # Ok::<(), lightning_db::Error>(())
/// ```
pub trait CompactionFilter: Send + Sync {
    /// The filter's name, for logs and `Debug`.
    fn name(&self) -> &str;

    /// The decision for `key` with value `value`, met by a compaction
    /// writing to `level`.
    fn filter(&self, level: usize, key: &[u8], value: &[u8]) -> Decision;
}

impl std::fmt::Debug for dyn CompactionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompactionFilter({})", self.name())
    }
}

/// A keyspace's filter as one compaction job calls it: with the job's
/// output level, reading blob values from the job's version; and the
/// keyspace's TTL, which removes expired timed values first (`expiry`,
/// from the clock's time when the job started) and shows the filter the
/// others without their write time.
struct JobFilter {
    filter: Option<Arc<dyn CompactionFilter>>,
    expiry: Expiry,
    level: usize,
    version: Arc<Version>,
}

impl JobFilter {
    /// A timed value: removed when expired, else the user's filter on the
    /// value without its time (a changed value keeps the time).
    fn timed(&self, key: &[u8], stored: &[u8]) -> FilterDecision {
        // Too short to hold a time: damaged; kept for reads and `verify`
        // to report.
        let Some((value, at)) = crate::ttl::split(stored) else {
            return FilterDecision::Keep;
        };
        if self.expiry.expired(at) {
            return FilterDecision::Remove;
        }
        let Some(f) = &self.filter else {
            return FilterDecision::Keep;
        };
        match f.filter(self.level, key, value) {
            Decision::Keep => FilterDecision::Keep,
            Decision::Remove => FilterDecision::Remove,
            Decision::ChangeValue(v) => {
                FilterDecision::ChangeValue(crate::ttl::append_time(&v, at))
            }
        }
    }
}

impl EntryFilter for JobFilter {
    fn filter(&self, key: &[u8], kind: EntryKind, value: &[u8]) -> FilterDecision {
        if kind == EntryKind::TimedValue {
            return self.timed(key, value);
        }
        let Some(filter) = &self.filter else {
            return FilterDecision::Keep;
        };
        let blob;
        let value = match kind {
            EntryKind::Indirect => match self.version.read_blob(value, None) {
                Ok(v) => {
                    blob = v;
                    &blob[..]
                }
                Err(e) => {
                    // The value cannot be shown to the filter: keep it.
                    // Reads and `verify` report the damage.
                    tracing::warn!(
                        filter = filter.name(),
                        key = %crate::error::escape_key(key),
                        error = %e,
                        "compaction filter skipped a key whose blob value could not be read"
                    );
                    return FilterDecision::Keep;
                }
            },
            _ => value,
        };
        match filter.filter(self.level, key, value) {
            Decision::Keep => FilterDecision::Keep,
            Decision::Remove => FilterDecision::Remove,
            Decision::ChangeValue(v) => FilterDecision::ChangeValue(v),
        }
    }
}

/// What a compaction job writing to `level` of `version` filters with,
/// for a keyspace with options `opts`, at `now_ms` by the database's
/// clock (`None`: neither a filter nor a TTL).
pub(crate) fn job_filter(
    opts: &crate::Options,
    now_ms: u64,
    level: usize,
    version: &Arc<Version>,
) -> Option<FilterFn> {
    if opts.compaction_filter.is_none() && opts.ttl.is_none() {
        return None;
    }
    Some(Shared(Arc::new(JobFilter {
        filter: opts.compaction_filter.clone(),
        expiry: Expiry::at(opts.ttl, now_ms),
        level,
        version: Arc::clone(version),
    }) as Arc<dyn EntryFilter>))
}
