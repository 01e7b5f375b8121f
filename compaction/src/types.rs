//! The vocabulary shared by the engine and the compaction crate: what the
//! engine tells the planner about its files, what a job is, and the traits
//! through which the merge reads and writes sorted runs.

/// Identifies a file; the engine uses its file number.
pub type FileId = u64;

/// What the planner knows about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The file's id.
    pub id: FileId,
    /// Size on disk in bytes.
    pub size: u64,
    /// Smallest user key in the file.
    pub smallest: Vec<u8>,
    /// Largest user key in the file.
    pub largest: Vec<u8>,
    /// Smallest sequence number in the file.
    pub smallest_seq: u64,
    /// Largest sequence number in the file.
    pub largest_seq: u64,
    /// Entries (versions and tombstones).
    pub num_entries: u64,
    /// Tombstones.
    pub num_deletions: u64,
    /// True while a running job has this file as input (it may not be
    /// picked again).
    pub being_compacted: bool,
    /// When the file was written, in seconds since the Unix epoch (0:
    /// unknown). Periodic compaction and FIFO's age limit read it.
    pub created_at: u64,
}

impl FileInfo {
    /// True when the user-key ranges of `self` and `[smallest, largest]`
    /// intersect.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest.as_slice() <= largest && smallest <= self.largest.as_slice()
    }
}

/// The tree as the planner sees it.
///
/// Invariants the engine keeps: `levels.len()` is the configured number of
/// levels; level 0 is ordered newest first (by largest sequence number);
/// every deeper level is sorted by key and its files do not overlap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelState {
    /// Files per level.
    pub levels: Vec<Vec<FileInfo>>,
    /// Sequence number of the oldest live snapshot, if any. The planner
    /// only rewrites a last-level file in place for its tombstones when
    /// every entry in it is at or below this (or there is no snapshot), so
    /// the rewrite surely drops them and the file is not picked again.
    pub oldest_snapshot: Option<u64>,
    /// The time now, in seconds since the Unix epoch (0: unknown; then
    /// nothing is picked by age).
    pub now: u64,
    /// The tree's time to live in seconds (0: none): FIFO deletes files
    /// whose `created_at` is at least this old.
    pub ttl: u64,
    /// Forced blob garbage collection (0: none): the engine asks for every
    /// file whose id is below this to be rewritten, because it may
    /// reference blob files whose live values must move (files written
    /// since never do). Picked after everything else.
    pub blob_gc_below: FileId,
}

impl LevelState {
    /// Total bytes of `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels
            .get(level)
            .map_or(0, |fs| fs.iter().map(|f| f.size).sum())
    }

    /// Total bytes of all levels.
    pub fn total_bytes(&self) -> u64 {
        (0..self.levels.len()).map(|l| self.level_bytes(l)).sum()
    }
}

/// A range of user keys: `start` inclusive, `end` exclusive; `None` is
/// unbounded on that side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// Smallest user key in the range (inclusive), or unbounded.
    pub start: Option<Vec<u8>>,
    /// First user key past the range (exclusive), or unbounded.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// The whole key space.
    pub fn all() -> Self {
        KeyRange::default()
    }

    /// True when `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.start.as_deref().is_none_or(|s| s <= key)
            && self.end.as_deref().is_none_or(|e| key < e)
    }

    /// True when some key of `[smallest, largest]` is in the range.
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        smallest <= largest
            && self.start.as_deref().is_none_or(|s| s <= largest)
            && self.end.as_deref().is_none_or(|e| smallest < e)
    }
}

/// Why a job was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompactionReason {
    /// Level 0 reached its file-count trigger.
    L0FileCount,
    /// A level outgrew its target size.
    LevelSize,
    /// Tiered: runs other than the oldest take too much space.
    SizeAmplification,
    /// Tiered: a group of similar-sized runs.
    SizeRatio,
    /// Tiered: too many runs.
    RunCount,
    /// A file dense in tombstones (scans over it are slow).
    TombstoneDensity,
    /// Asked for by `compact_range`.
    Manual,
    /// A file older than `periodic_compaction_seconds`.
    Periodic,
    /// FIFO: the tree is larger than `fifo.max_table_files_size`; the
    /// oldest files are deleted.
    FifoMaxSize,
    /// FIFO: files whose age is at least the tree's time to live are
    /// deleted.
    FifoTtl,
    /// Forced blob garbage collection: the file may reference old blob
    /// files whose live values must move (`LevelState::blob_gc_below`).
    BlobGc,
}

/// Input files of one level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelInputs {
    /// The level.
    pub level: usize,
    /// Its input files (level 0: newest first; deeper: by key).
    pub files: Vec<FileInfo>,
}

/// One unit of compaction work.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionJob {
    /// Inputs, upper levels first.
    pub inputs: Vec<LevelInputs>,
    /// Where the outputs go.
    pub output_level: usize,
    /// Move the single input file to `output_level` without rewriting it
    /// (it overlaps nothing there).
    pub trivial_move: bool,
    /// Why.
    pub reason: CompactionReason,
    /// The score that won (1.0 = exactly at target).
    pub score: f64,
    /// Cut output files at about this size.
    pub target_file_size: u64,
    /// No file below `output_level` overlaps the job's key range, so a
    /// tombstone that no snapshot needs can be dropped.
    pub bottommost: bool,
    /// Most key-range pieces this job may be split into.
    pub max_subcompactions: usize,
}

impl CompactionJob {
    /// True for a job that deletes its input files and writes nothing
    /// (FIFO): the engine records their deletion without reading them.
    pub fn deletes_only(&self) -> bool {
        matches!(
            self.reason,
            CompactionReason::FifoMaxSize | CompactionReason::FifoTtl
        )
    }

    /// All input files.
    pub fn input_files(&self) -> impl Iterator<Item = &FileInfo> {
        self.inputs.iter().flat_map(|l| l.files.iter())
    }

    /// Total input bytes.
    pub fn input_bytes(&self) -> u64 {
        self.input_files().map(|f| f.size).sum()
    }
}

/// Value or tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// The key was deleted.
    Delete,
    /// The key was set.
    Value,
    /// The key was set to a value stored elsewhere; the entry's value is
    /// the engine's reference to it (a blob reference). Merged exactly as
    /// [`EntryKind::Value`].
    Indirect,
    /// A merge operand: the key's value is the engine's merge operator
    /// applied to the older value and the operands since. The merge folds
    /// operands with an [`OperandMerge`] when it is given one (see
    /// [`crate::merge`], "Merge operands"), and otherwise keeps them with
    /// the version they apply to.
    Merge,
    /// The key was set to a value whose bytes carry engine data beside the
    /// user's value (the engine's write time, for a time to live). Merged
    /// as [`EntryKind::Value`], except that merge operands never fold onto
    /// it (only the engine can read it, as with [`EntryKind::Indirect`]).
    TimedValue,
}

/// Folds merge operands ([`EntryKind::Merge`]) during a merge: the
/// engine's merge operator.
pub trait OperandMerge: Send + Sync {
    /// The value of `key` from its `base` value (`None`: absent or
    /// deleted) and `operands`, oldest first; `None` when the operator
    /// fails, and the merge then keeps the operands and the base.
    fn full_merge(&self, key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>>;
    /// One operand equal to `operands` (oldest first, at least two)
    /// applied in order; `None` when they do not combine.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>>;
}

/// What an [`EntryFilter`] decides for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterDecision {
    /// The entry stays as it is.
    Keep,
    /// The key is deleted: the entry becomes a tombstone at its sequence
    /// number (dropped outright on the bottommost level when no snapshot
    /// is live), so older versions below do not reappear.
    Remove,
    /// The entry's value becomes this one: a plain value, or for an
    /// [`EntryKind::TimedValue`] entry a timed value in the engine's
    /// encoding (the entry keeps its kind).
    ChangeValue(Vec<u8>),
}

/// Decides, during a merge, what becomes of the newest version of a key
/// when no snapshot can see it (it is newer than every live snapshot): the
/// engine's compaction filter. Only values ([`EntryKind::Value`],
/// [`EntryKind::Indirect`] and [`EntryKind::TimedValue`]) are given to it.
pub trait EntryFilter: Send + Sync {
    /// The decision for `key`, whose newest version has `kind` and
    /// `value` (for [`EntryKind::Indirect`], the engine's reference).
    fn filter(&self, key: &[u8], kind: EntryKind, value: &[u8]) -> FilterDecision;
}

/// A shared [`EntryFilter`], comparable by identity.
pub type FilterFn = Shared<dyn EntryFilter>;

/// A shared [`OperandMerge`], comparable by identity.
pub type MergeFn = Shared<dyn OperandMerge>;

/// Engine code shared by `Arc`, compared by identity (so a
/// [`crate::GcPolicy`] holding some stays `Eq`) and shown by its type's
/// name only.
pub struct Shared<T: ?Sized>(pub std::sync::Arc<T>);

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(std::sync::Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared<{}>", std::any::type_name::<T>())
    }
}

impl<T: ?Sized> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ?Sized> Eq for Shared<T> {}

/// The engine's code a merge runs besides the MVCC rules: the merge
/// operator and the compaction filter (either may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserHooks {
    /// Folds merge operands.
    pub merge: Option<MergeFn>,
    /// Filters the newest versions no snapshot sees.
    pub filter: Option<FilterFn>,
}

/// One internal entry, borrowed from its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// Its sequence number.
    pub seq: u64,
    /// Value or tombstone.
    pub kind: EntryKind,
    /// The value (empty for tombstones).
    pub value: &'a [u8],
}

/// A sorted run being read: entries in (user key ascending, sequence number
/// descending) order, each `(user key, seq)` at most once. A new cursor
/// stands on its first entry.
pub trait EntryCursor: Send {
    /// The engine's error type.
    type Error: Send;
    /// The current entry, or `None` at the end.
    fn current(&self) -> Option<EntryRef<'_>>;
    /// Moves to the next entry.
    fn advance(&mut self) -> Result<(), Self::Error>;
}

/// A new sorted run being written (one output file).
pub trait RunWriter: Send {
    /// The engine's error type.
    type Error: Send;
    /// Appends an entry; entries come in cursor order.
    fn add(&mut self, entry: EntryRef<'_>) -> Result<(), Self::Error>;
    /// Stores the range tombstones this file must keep. The merge calls it
    /// at most once per file, right before [`RunSink::finish`], only when
    /// the set is not empty, with fragments already clipped to the file's
    /// key range (see [`crate::merge::OutputCutter`]); they may extend
    /// below the file's first and past its last entry, and a file may hold
    /// tombstones and no entry at all. The file's key range as the engine
    /// records it must include them (the end is exclusive).
    fn add_range_tombstones(
        &mut self,
        tombstones: &crate::range_del::FragmentedTombstones,
    ) -> Result<(), Self::Error>;
    /// Bytes the finished file would take so far (for cutting outputs).
    fn estimated_size(&self) -> u64;
}

/// Creates and finishes output runs.
pub trait RunSink: Sync {
    /// The engine's error type.
    type Error: Send;
    /// The writer type.
    type Writer: RunWriter<Error = Self::Error>;
    /// What a finished run is (e.g. the new file's metadata).
    type Output: Send;
    /// Starts a new output file.
    fn create(&self) -> Result<Self::Writer, Self::Error>;
    /// Finishes (and syncs) an output file.
    fn finish(&self, writer: Self::Writer) -> Result<Self::Output, Self::Error>;
}
