//! A keyspace's tree: its memtables and levels as one superversion, the
//! options its flushes and compactions use, and its compaction
//! statistics.
//!
//! Every keyspace (RocksDB's column family) is one `Tree`; the database
//! shares the WAL, the sequence numbers, the snapshots, the caches and the
//! manifest between them (`docs/keyspaces.md`). Keyspace 0,
//! `default`, always exists.
//!
//! Invariants kept here:
//! - `sv` is replaced only under the database's versions lock, so its
//!   memtables and version always agree with the manifest's view of this
//!   keyspace.
//! - Once `dropped` is set (under the write queue and the versions lock),
//!   no write reaches the tree and no flush or compaction installs into
//!   it; readers that still hold its superversion keep reading it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use lightning_compaction::stats::CompactionStats;
use parking_lot::Mutex;

use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::memtable::MemTable;
use crate::options::Options;
use crate::version::superversion::SuperVersion;

/// The id of the default keyspace.
pub(crate) const DEFAULT_KEYSPACE: u32 = 0;

/// One keyspace's LSM tree.
pub(crate) struct Tree {
    /// The keyspace's id (never reused in a database).
    pub(crate) id: u32,
    /// The keyspace's name.
    pub(crate) name: String,
    /// The database's options with this keyspace's tree options applied
    /// (`Options::with_keyspace`): memtable size, table format,
    /// compression, compaction, blob files. Replaced by
    /// [`Tree::set_options`]; a flush or compaction uses the options it
    /// started with.
    opts: ArcSwap<Options>,
    /// The forced blob garbage collection round of this keyspace
    /// (`DbInner::blob_gc_below`).
    pub(crate) blob_gc: Mutex<BlobGcRound>,
    /// `opts.write_buffer_size`, read by every write group without
    /// touching `opts`.
    write_buffer_size: AtomicUsize,
    /// `opts.ttl` in milliseconds (0: none), read by every point read and
    /// write without touching `opts`.
    ttl_ms: AtomicU64,
    /// What readers of this keyspace read.
    pub(crate) sv: ArcSwap<SuperVersion>,
    /// Cumulative flush and compaction statistics (a leaf lock).
    pub(crate) stats: Mutex<CompactionStats>,
    /// Set when the keyspace is dropped.
    dropped: AtomicBool,
}

impl Tree {
    /// A tree over `sv`.
    pub(crate) fn new(id: u32, name: String, opts: Options, sv: SuperVersion) -> Arc<Tree> {
        let stats = Mutex::new(CompactionStats::new(opts.compaction.num_levels));
        Arc::new(Tree {
            id,
            name,
            write_buffer_size: AtomicUsize::new(opts.write_buffer_size),
            ttl_ms: AtomicU64::new(ttl_millis(&opts)),
            opts: ArcSwap::from_pointee(opts),
            sv: ArcSwap::from_pointee(sv),
            stats,
            dropped: AtomicBool::new(false),
            blob_gc: Mutex::new(BlobGcRound::default()),
        })
    }

    /// The tree's options now.
    #[inline]
    pub(crate) fn opts(&self) -> Arc<Options> {
        self.opts.load_full()
    }

    /// The keyspace's merge operator now (`Options::merge_operator`).
    pub(crate) fn merge_operator(&self) -> Option<Arc<dyn crate::MergeOperator>> {
        self.opts.load().merge_operator.clone()
    }

    /// The keyspace's prefix extractor now (`Options::prefix_extractor`).
    pub(crate) fn prefix_extractor(&self) -> Option<Arc<dyn crate::PrefixExtractor>> {
        self.opts.load().prefix_extractor.clone()
    }

    /// Whether the keyspace has a time to live now (`Options::ttl`).
    #[inline]
    pub(crate) fn has_ttl(&self) -> bool {
        self.ttl_ms.load(Ordering::Relaxed) != 0
    }

    /// What a read of this keyspace at `clock`'s now treats as expired
    /// (no clock read without a TTL).
    #[inline]
    pub(crate) fn expiry(&self, clock: &dyn crate::Clock) -> crate::ttl::Expiry {
        match self.ttl_ms.load(Ordering::Relaxed) {
            0 => crate::ttl::Expiry::NEVER,
            ms => crate::ttl::Expiry::at(
                Some(std::time::Duration::from_millis(ms)),
                clock.now_millis(),
            ),
        }
    }

    /// The memtable size at which the active memtable is frozen (no
    /// reference count touched: read on every write group).
    #[inline]
    pub(crate) fn write_buffer_size(&self) -> usize {
        self.write_buffer_size.load(Ordering::Relaxed)
    }

    /// Replaces the tree's options (`Db::keyspace_with` on an open
    /// keyspace). New memtables, flushes and compactions use them; the
    /// number of levels cannot change while the keyspace holds a version
    /// shaped by the old one ([`Error::InvalidArgument`]).
    pub(crate) fn set_options(&self, opts: Options) -> Result<()> {
        let old = self.opts.load();
        if old.compaction.num_levels != opts.compaction.num_levels {
            return Err(Error::InvalidArgument(format!(
                "keyspace `{}` is open with compaction.num_levels = {}; it cannot change to {} \
                 while the database is open (reopen with the new value)",
                self.name, old.compaction.num_levels, opts.compaction.num_levels
            )));
        }
        self.write_buffer_size
            .store(opts.write_buffer_size, Ordering::Relaxed);
        self.ttl_ms.store(ttl_millis(&opts), Ordering::Relaxed);
        self.opts.store(Arc::new(opts));
        Ok(())
    }

    /// Whether the keyspace was dropped.
    #[inline]
    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    /// Marks the keyspace dropped (by `drop_keyspace`, under the write
    /// queue and versions locks).
    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// The oldest WAL that may hold data of this keyspace not yet in its
    /// SST files: the oldest frozen memtable's, else the active one's.
    pub(crate) fn oldest_log_needed(&self) -> u64 {
        let sv = self.sv.load();
        sv.imms
            .last()
            .map_or(sv.mem.log_number(), |m| m.log_number())
    }
}

/// The active memtable of every keyspace, as the write group inserts into
/// them: a leader hands one `Arc` of it to its group. Replaced (write
/// queue locked) when a memtable is switched and when a keyspace is
/// created or dropped; a group logged before a switch inserts into the
/// memtables it was given, which the switch waits for.
pub(crate) struct ActiveMems {
    /// Sorted by keyspace id; the default keyspace first.
    entries: Vec<(Arc<Tree>, Arc<MemTable>)>,
    /// The smallest value any of the memtables separates at put time
    /// (`MemTable::separation`; `usize::MAX`: none does), so that a group
    /// of small values costs one comparison per batch.
    min_separated: usize,
}

impl ActiveMems {
    /// The active memtables of `trees` (their superversions' `mem`).
    pub(crate) fn of(trees: impl IntoIterator<Item = Arc<Tree>>) -> ActiveMems {
        let mut entries: Vec<(Arc<Tree>, Arc<MemTable>)> = trees
            .into_iter()
            .map(|t| {
                let mem = Arc::clone(&t.sv.load().mem);
                (t, mem)
            })
            .collect();
        entries.sort_by_key(|(t, _)| t.id);
        debug_assert_eq!(entries.first().map(|(t, _)| t.id), Some(DEFAULT_KEYSPACE));
        let min_separated = entries
            .iter()
            .filter_map(|(_, m)| m.separation().map(|(min, _)| min))
            .min()
            .unwrap_or(usize::MAX);
        ActiveMems {
            entries,
            min_separated,
        }
    }

    /// See the field.
    pub(crate) fn min_separated(&self) -> usize {
        self.min_separated
    }

    /// Every keyspace's tree and active memtable, by id.
    pub(crate) fn entries(&self) -> &[(Arc<Tree>, Arc<MemTable>)] {
        &self.entries
    }

    /// The active memtable of keyspace `id`, if it exists.
    pub(crate) fn get(&self, id: u32) -> Option<&Arc<MemTable>> {
        self.entries
            .binary_search_by_key(&id, |(t, _)| t.id)
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The default keyspace's active memtable.
    pub(crate) fn default_mem(&self) -> &Arc<MemTable> {
        &self.entries[0].1
    }

    /// Inserts `batch` (numbered) into its keyspaces' memtables. The
    /// leader checked under the queue lock that they all exist here.
    pub(crate) fn insert_batch(&self, batch: &WriteBatch) {
        if !batch.has_keyspace_ops() {
            self.default_mem().insert_batch(batch);
            return;
        }
        for (tree, mem) in &self.entries {
            if batch.iter().any(|op| op.keyspace == tree.id) {
                mem.insert_batch_in(batch, tree.id);
            }
        }
    }

    /// The first keyspace of `batch` that has no memtable here (it was
    /// dropped, or never existed).
    pub(crate) fn missing_keyspace(&self, batch: &WriteBatch) -> Option<u32> {
        if !batch.has_keyspace_ops() {
            return None;
        }
        batch
            .iter()
            .map(|op| op.keyspace)
            .find(|&id| self.get(id).is_none())
    }
}

/// A forced blob garbage collection round (`DbInner::blob_gc_below`).
#[derive(Debug, Default)]
pub(crate) struct BlobGcRound {
    /// Tables numbered below this are rewritten (0: no round).
    pub(crate) below: u64,
    /// The newest blob file the round was started for.
    pub(crate) victims: u64,
}

/// `opts.ttl` in whole milliseconds, at least 1 (0: none).
fn ttl_millis(opts: &Options) -> u64 {
    opts.ttl
        .map_or(0, |t| crate::ttl::duration_millis(t).max(1))
}
