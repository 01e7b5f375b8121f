//! The k-way, MVCC-aware merge, and cutting its output into files.
//!
//! Garbage collection follows RocksDB's snapshot "stripes": the live
//! snapshots split the sequence numbers into stripes; the stripe of a
//! version with sequence number `s` is the smallest snapshot `>= s` (or
//! "latest" when there is none). A reader at any snapshot (or at the
//! latest state) sees, per user key, the newest version of some stripe,
//! so only the newest version of each stripe is kept. A tombstone that is
//! the newest version of the earliest stripe hides nothing any reader
//! could see; on the bottommost level (no older versions below) it is
//! dropped too, with everything older.
//!
//! # Range tombstones
//!
//! A range tombstone `[start, end) @ t` deletes a version `(k, s)` for a
//! reader at `r` when `start <= k < end` and `s < t <= r` (see
//! [`crate::range_del`]). The merge is given the range tombstones of its
//! inputs and drops a version the stripe rule keeps when a tombstone
//! covering its key has a sequence number above the version's **in the
//! same stripe** (the oldest such one decides: [`Fragment::oldest_above`]).
//! Why that is safe: only readers at `r >= s` see `(k, s)`; readers sit at
//! snapshots or at the latest state, so `r` is at least the snapshot that
//! closes the stripe, which is at least `t`. The tombstone deletes the
//! version for every reader that could see it. Every older version of `k`
//! (in this merge or below it) is below `t` too and stays deleted, so a
//! covered point tombstone may go as well, and the older versions of the
//! dropped one's stripe are dropped as usual. A tombstone in a later stripe
//! protects the version: the snapshot between them still sees it.
//!
//! The dropping relies on the tombstone surviving.
//! [`FragmentedTombstones::collect_garbage`] keeps the newest tombstone of
//! every stripe per fragment, except on the bottommost level in the
//! earliest stripe; but every version such a tombstone deletes is in the
//! merge (nothing is below) and is in the earliest stripe too, so the merge
//! drops it. This is why [`merge_runs`] takes the tombstones **before**
//! garbage collection (a garbage-collected set has lost exactly the
//! earliest-stripe tombstones it needs there); [`write_outputs`] collects
//! the garbage itself for what the files store.
//!
//! # Merge operands
//!
//! A merge operand ([`EntryKind::Merge`]) does not hide the older versions
//! of its stripe: a reader folds it onto them. When the newest version of
//! a stripe is an operand, the merge gathers the stripe's operands, newest
//! first, down to the first version that is not one (the *base*), and
//! then, with an [`crate::OperandMerge`] in the policy:
//!
//! - the base is a value or a tombstone, or a range tombstone of the same
//!   stripe deletes everything older (the base is "absent"), or the key
//!   has nothing older at all on the bottommost level: the operands and
//!   the base become one value at the newest operand's sequence number
//!   (a full merge). The stripe's older versions go as usual.
//! - the stripe ends first (older versions are in older stripes, which
//!   other readers see, or below this merge): the operands become one
//!   operand (a partial merge), or stay as they are when the operator
//!   cannot combine them.
//! - the base is an [`EntryKind::Indirect`] value (which only the engine
//!   can read), or the operator fails: the operands are kept, partially
//!   merged if possible, and so is the base.
//!
//! Without an operator every operand and the base are kept. Either way
//! each reader still finds, per stripe, everything it needs.
//!
//! # Compaction filter
//!
//! With an [`crate::EntryFilter`] in the policy, the newest version of
//! each key that is a value and is newer than every live snapshot (in the
//! latest stripe: no reader but the latest state sees it) is given to the
//! filter, which keeps it, changes its value, or removes the key: the
//! entry becomes a tombstone at its own sequence number, so nothing older
//! (in this merge's older stripes or below it) reappears; with no
//! snapshot on the bottommost level it is dropped with every older
//! version instead. Versions a snapshot can see are never filtered, so a
//! snapshot reads what it read before.
//!
//! # Output files
//!
//! [`OutputCutter`] cuts the merged entries into files between user keys.
//! Given the key range `[lo, hi)` of the merge (a subcompaction), file `i`
//! covers `[lo_i, hi_i)`: `lo_0 = lo`, `lo_i` is the first user key of
//! file `i`, `hi_i = lo_(i+1)` and the last file ends at `hi`. Each file
//! stores the tombstones clipped to its range, so the files' tombstones
//! together are exactly the range's, no file overlaps the next (a file's
//! tombstones may end, exclusively, at the next file's first key), and a
//! range whose tombstones outlive all of its entries still gets one file,
//! holding only tombstones.

use crate::range_del::{Fragment, FragmentedTombstones};
use crate::types::{
    EntryCursor, EntryKind, EntryRef, FilterDecision, FilterFn, KeyRange, MergeFn, RunSink,
    RunWriter,
};
use std::cmp::Ordering;

/// What the merge may drop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPolicy {
    /// Sequence numbers of the live snapshots, ascending (they are sorted
    /// again if not).
    pub snapshots: Vec<u64>,
    /// No file below the output overlaps the merged range, so tombstones in
    /// the earliest stripe may go. With range tombstones, the merged range
    /// must include their extents too (an earliest-stripe range tombstone
    /// is dropped, so nothing it covers may live below).
    pub bottommost: bool,
    /// Folds merge operands (see "Merge operands" in the [module
    /// documentation](self)); `None` keeps them all.
    pub merge: Option<MergeFn>,
    /// Filters the newest version of each key when it is newer than every
    /// snapshot (see "Compaction filter" in the [module
    /// documentation](self)); `None` keeps them.
    pub filter: Option<FilterFn>,
}

/// Counters of one merge (or, added up, of a job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Entries read.
    pub input_entries: u64,
    /// Entries written.
    pub output_entries: u64,
    /// Versions dropped because a newer version of the same stripe hides
    /// them (or a dropped tombstone did).
    pub dropped_versions: u64,
    /// Tombstones dropped on the bottommost level.
    pub dropped_tombstones: u64,
    /// Entries (versions and point tombstones) the stripe rule would keep
    /// but a range tombstone of the same stripe deletes.
    pub dropped_by_range_tombstones: u64,
    /// Range tombstones (fragment, sequence number pairs) the merge was
    /// given. Added over subcompactions, a fragment crossing a split point
    /// counts once per piece; [`crate::executor::run_job`] reports the
    /// job's own count instead.
    pub input_range_tombstones: u64,
    /// Range tombstones (fragment, sequence number pairs) written to the
    /// output files; a fragment cut by a file boundary counts once per
    /// piece. Zero from [`merge_runs`] alone (it writes no files).
    pub output_range_tombstones: u64,
    /// Key and value bytes read.
    pub input_bytes: u64,
    /// Key and value bytes written.
    pub output_bytes: u64,
    /// Entries a compaction filter removed (turned into tombstones or
    /// dropped) or changed.
    pub filtered_entries: u64,
}

impl MergeStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &MergeStats) {
        self.input_entries += other.input_entries;
        self.output_entries += other.output_entries;
        self.dropped_versions += other.dropped_versions;
        self.dropped_tombstones += other.dropped_tombstones;
        self.dropped_by_range_tombstones += other.dropped_by_range_tombstones;
        self.input_range_tombstones += other.input_range_tombstones;
        self.output_range_tombstones += other.output_range_tombstones;
        self.input_bytes += other.input_bytes;
        self.output_bytes += other.output_bytes;
        self.filtered_entries += other.filtered_entries;
    }
}

/// Orders cursor `a` before cursor `b` by (user key ascending, sequence
/// number descending, input index); exhausted cursors go last.
fn before<C: EntryCursor>(cursors: &[C], a: usize, b: usize) -> bool {
    let ord = match (cursors[a].current(), cursors[b].current()) {
        (Some(x), Some(y)) => x
            .user_key
            .cmp(y.user_key)
            .then(y.seq.cmp(&x.seq))
            .then(a.cmp(&b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(&b),
    };
    ord == Ordering::Less
}

fn sift_down<C: EntryCursor>(heap: &mut [usize], cursors: &[C], mut i: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < heap.len() && before(cursors, heap[l], heap[m]) {
            m = l;
        }
        if r < heap.len() && before(cursors, heap[r], heap[m]) {
            m = r;
        }
        if m == i {
            return;
        }
        heap.swap(i, m);
        i = m;
    }
}

/// Merges sorted runs into one, newest version first per user key, and
/// passes every entry that survives garbage collection to `emit`, in
/// order.
///
/// `tombstones` are the range tombstones of the inputs, **not**
/// garbage-collected (see the [module documentation](self)): at least
/// those covering the merged keys. Entries they delete within a stripe are
/// dropped; the tombstones themselves are the caller's to store
/// ([`write_outputs`] does).
///
/// A binary heap of cursor indices holds every cursor that has an entry;
/// the top is the smallest (user key, newest sequence number). Each
/// `(user key, seq)` should appear once across all inputs; if it appears
/// twice, the lower input index wins and the other is dropped as an older
/// version.
pub fn merge_runs<C: EntryCursor>(
    inputs: Vec<C>,
    policy: &GcPolicy,
    tombstones: &FragmentedTombstones,
    mut emit: impl FnMut(EntryRef<'_>) -> Result<(), C::Error>,
) -> Result<MergeStats, C::Error> {
    let snaps = sorted_snapshots(policy);
    let stripe_of = |seq: u64| snaps.partition_point(|&s| s < seq);
    let mut cursors = inputs;
    let mut heap: Vec<usize> = (0..cursors.len())
        .filter(|&i| cursors[i].current().is_some())
        .collect();
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, &cursors, i);
    }
    let mut stats = MergeStats {
        input_range_tombstones: tombstones.len() as u64,
        ..MergeStats::default()
    };
    let mut ranges = tombstones.cursor();
    // The fragment covering the current user key, if any.
    let mut fragment: Option<&Fragment> = None;
    let mut last_key: Vec<u8> = Vec::new();
    let mut have_key = false;
    let mut last_stripe = 0usize;
    let mut drop_rest = false;
    // Merge operands of the current key's stripe `last_stripe` waiting
    // for their base (see "Merge operands").
    let mut pending = Operands::default();
    let fold = policy.merge.as_ref();
    while let Some(&top) = heap.first() {
        if let Some(e) = cursors[top].current() {
            let bytes = (e.user_key.len() + e.value.len()) as u64;
            stats.input_entries += 1;
            stats.input_bytes += bytes;
            let stripe = stripe_of(e.seq);
            let new_key = !have_key || e.user_key != last_key.as_slice();
            // The oldest range tombstone above the entry decides: if it is
            // in a later stripe, so are all the others.
            let covered = |fragment: Option<&Fragment>| {
                fragment
                    .and_then(|f| f.oldest_above(e.seq))
                    .is_some_and(|t| stripe_of(t) == stripe)
            };
            if !pending.is_empty() && !new_key && stripe == last_stripe {
                // An older version in the stripe of waiting operands.
                let base = if covered(fragment) {
                    stats.dropped_by_range_tombstones += 1;
                    Base::Absent
                } else {
                    match e.kind {
                        EntryKind::Merge => Base::More,
                        EntryKind::Value | EntryKind::Delete => Base::Entry(e),
                        EntryKind::Indirect | EntryKind::TimedValue => Base::Opaque(e),
                    }
                };
                match base {
                    Base::More => pending.push(e),
                    base => pending.finish(&last_key, base, fold, &mut stats, &mut emit)?,
                }
            } else {
                if !pending.is_empty() {
                    // The stripe (or the key) ended before a base.
                    let base = if new_key && policy.bottommost {
                        Base::Absent
                    } else {
                        Base::Unknown
                    };
                    pending.finish(&last_key, base, fold, &mut stats, &mut emit)?;
                }
                let keep = if new_key {
                    last_key.clear();
                    last_key.extend_from_slice(e.user_key);
                    have_key = true;
                    drop_rest = false;
                    last_stripe = stripe;
                    fragment = ranges.fragment_at(e.user_key);
                    true
                } else if drop_rest || stripe == last_stripe {
                    false
                } else {
                    last_stripe = stripe;
                    true
                };
                if !keep {
                    stats.dropped_versions += 1;
                } else if e.kind == EntryKind::Delete && stripe == 0 && policy.bottommost {
                    stats.dropped_tombstones += 1;
                    drop_rest = true;
                } else if covered(fragment) {
                    // `last_stripe` is this stripe: its older versions go as
                    // versions hidden by a newer one (they are covered too).
                    stats.dropped_by_range_tombstones += 1;
                } else if e.kind == EntryKind::Merge {
                    pending.push(e);
                } else {
                    // Only the newest version of a key, newer than every
                    // snapshot, goes through the filter.
                    let decision = match (&policy.filter, new_key && stripe == snaps.len()) {
                        (Some(f), true) if e.kind != EntryKind::Delete => {
                            f.0.filter(e.user_key, e.kind, e.value)
                        }
                        _ => FilterDecision::Keep,
                    };
                    let out = match &decision {
                        FilterDecision::Keep => Some(e),
                        FilterDecision::ChangeValue(v) => Some(EntryRef {
                            kind: match e.kind {
                                EntryKind::TimedValue => EntryKind::TimedValue,
                                _ => EntryKind::Value,
                            },
                            value: v,
                            ..e
                        }),
                        // No snapshot and nothing below: the key and its
                        // older versions go.
                        FilterDecision::Remove if stripe == 0 && policy.bottommost => {
                            drop_rest = true;
                            None
                        }
                        FilterDecision::Remove => Some(EntryRef {
                            kind: EntryKind::Delete,
                            value: &[],
                            ..e
                        }),
                    };
                    if decision != FilterDecision::Keep {
                        stats.filtered_entries += 1;
                    }
                    if let Some(o) = out {
                        stats.output_entries += 1;
                        stats.output_bytes += (o.user_key.len() + o.value.len()) as u64;
                        emit(o)?;
                    }
                }
            }
            cursors[top].advance()?;
        }
        if cursors[top].current().is_none() {
            let last = heap.len() - 1;
            heap.swap(0, last);
            heap.pop();
        }
        sift_down(&mut heap, &cursors, 0);
    }
    if !pending.is_empty() {
        let base = if policy.bottommost {
            Base::Absent
        } else {
            Base::Unknown
        };
        pending.finish(&last_key, base, fold, &mut stats, &mut emit)?;
    }
    Ok(stats)
}

/// What lies below a run of merge operands in their stripe.
enum Base<'a> {
    /// Another operand: the run goes on (never passed to `finish`).
    More,
    /// A value or a tombstone, which the operands apply to.
    Entry(EntryRef<'a>),
    /// Nothing: a range tombstone of the stripe deletes everything older,
    /// or the key has no older version on the bottommost level.
    Absent,
    /// A value only the engine can read (a blob reference).
    Opaque(EntryRef<'a>),
    /// Older versions are in older stripes or below this merge.
    Unknown,
}

/// The merge operands of one stripe of one key, newest first, owned (the
/// cursors they came from have moved on).
#[derive(Default)]
struct Operands {
    /// Each operand's sequence number and value.
    ops: Vec<(u64, Vec<u8>)>,
}

impl Operands {
    fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(&mut self, e: EntryRef<'_>) {
        self.ops.push((e.seq, e.value.to_vec()));
    }

    /// Emits what the operands and `base` become (see "Merge operands" in
    /// the module documentation) and empties the run.
    fn finish<E>(
        &mut self,
        key: &[u8],
        base: Base<'_>,
        fold: Option<&MergeFn>,
        stats: &mut MergeStats,
        emit: &mut impl FnMut(EntryRef<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let ops = std::mem::take(&mut self.ops);
        let Some((newest, _)) = ops.first().map(|(s, v)| (*s, v)) else {
            return Ok(());
        };
        let oldest_first: Vec<&[u8]> = ops.iter().rev().map(|(_, v)| v.as_slice()).collect();
        let mut out = |stats: &mut MergeStats, seq: u64, kind: EntryKind, value: &[u8]| {
            stats.output_entries += 1;
            stats.output_bytes += (key.len() + value.len()) as u64;
            emit(EntryRef {
                user_key: key,
                seq,
                kind,
                value,
            })
        };
        let full =
            |base: Option<&[u8]>| fold.and_then(|f| f.0.full_merge(key, base, &oldest_first));
        let merged = match base {
            Base::Entry(b) => full((b.kind == EntryKind::Value).then_some(b.value)),
            Base::Absent => full(None),
            _ => None,
        };
        if let Some(v) = merged {
            // Every operand and the base are folded into one value.
            stats.dropped_versions += ops.len() as u64 - 1;
            if let Base::Entry(_) = base {
                stats.dropped_versions += 1;
            }
            return out(stats, newest, EntryKind::Value, &v);
        }
        let partial = match ops.len() {
            1 => None,
            _ => fold.and_then(|f| f.0.partial_merge(key, &oldest_first)),
        };
        match partial {
            Some(v) => {
                stats.dropped_versions += ops.len() as u64 - 1;
                out(stats, newest, EntryKind::Merge, &v)?;
            }
            None => {
                for (seq, v) in &ops {
                    out(stats, *seq, EntryKind::Merge, v)?;
                }
            }
        }
        match base {
            Base::Entry(b) | Base::Opaque(b) => out(stats, b.seq, b.kind, b.value),
            _ => Ok(()),
        }
    }
}

/// The policy's snapshots, ascending, without duplicates.
fn sorted_snapshots(policy: &GcPolicy) -> Vec<u64> {
    let mut snaps = policy.snapshots.clone();
    snaps.sort_unstable();
    snaps.dedup();
    snaps
}

/// Writes entries into output files through a [`RunSink`], starting a new
/// file when the current one has reached the target size and the next
/// entry has a new user key (one user key's versions never span files),
/// and gives each file the range tombstones of its key range (see the
/// [module documentation](self)).
pub struct OutputCutter<'s, S: RunSink> {
    sink: &'s S,
    target_file_size: u64,
    tombstones: &'s FragmentedTombstones,
    /// Start of the open file's key range (of the first file: the merge's).
    lo: Option<Vec<u8>>,
    /// End of the merge's key range.
    hi: Option<Vec<u8>>,
    writer: Option<S::Writer>,
    last_key: Vec<u8>,
    outputs: Vec<S::Output>,
    tombstones_written: u64,
}

impl<'s, S: RunSink> OutputCutter<'s, S> {
    /// A cutter writing files of about `target_file_size` bytes to `sink`
    /// for the entries of `range`, storing `tombstones` (those to keep,
    /// i.e. garbage-collected) in the files whose key range they cover.
    /// Tombstones outside `range` are ignored; entries must lie inside it.
    pub fn new(
        sink: &'s S,
        target_file_size: u64,
        range: &KeyRange,
        tombstones: &'s FragmentedTombstones,
    ) -> Self {
        OutputCutter {
            sink,
            target_file_size,
            tombstones,
            lo: range.start.clone(),
            hi: range.end.clone(),
            writer: None,
            last_key: Vec::new(),
            outputs: Vec::new(),
            tombstones_written: 0,
        }
    }

    /// Appends an entry (entries must come in merge order).
    pub fn add(&mut self, entry: EntryRef<'_>) -> Result<(), S::Error> {
        debug_assert!(
            self.lo.as_deref().is_none_or(|lo| lo <= entry.user_key)
                && self.hi.as_deref().is_none_or(|hi| entry.user_key < hi),
            "entry outside the cutter's range"
        );
        let same_key = self.writer.is_some() && self.last_key.as_slice() == entry.user_key;
        if !same_key {
            if let Some(w) = self
                .writer
                .take_if(|w| w.estimated_size() >= self.target_file_size)
            {
                // The file ends where the next one starts: at this key.
                self.close(w, Some(entry.user_key))?;
                self.lo = Some(entry.user_key.to_vec());
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(entry.user_key);
        }
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(self.sink.create()?),
        };
        writer.add(entry)
    }

    /// Gives `w` the tombstones of `[self.lo, hi)`, if any, and finishes it.
    fn close(&mut self, mut w: S::Writer, hi: Option<&[u8]>) -> Result<(), S::Error> {
        let ts = self.tombstones.clip(self.lo.as_deref(), hi);
        if !ts.is_empty() {
            self.tombstones_written += ts.len() as u64;
            w.add_range_tombstones(&ts)?;
        }
        self.outputs.push(self.sink.finish(w)?);
        Ok(())
    }

    /// Finishes the open file, if any, and returns all outputs in order,
    /// with the number of range tombstones (fragment, sequence number
    /// pairs) written to them. When no entry came but the range has
    /// tombstones, one file holding only them is written.
    pub fn finish(mut self) -> Result<(Vec<S::Output>, u64), S::Error> {
        let hi = self.hi.take();
        let w = match self.writer.take() {
            Some(w) => Some(w),
            None if self.outputs.is_empty()
                && !self
                    .tombstones
                    .clip(self.lo.as_deref(), hi.as_deref())
                    .is_empty() =>
            {
                Some(self.sink.create()?)
            }
            None => None,
        };
        if let Some(w) = w {
            self.close(w, hi.as_deref())?;
        }
        Ok((self.outputs, self.tombstones_written))
    }
}

/// Merges `inputs` under `policy` into new files of about
/// `target_file_size` bytes (see [`OutputCutter`]); returns the files in
/// key order and the merge's counters.
///
/// `range` is the key range of the merge (a subcompaction's; every input
/// entry must lie in it) and `tombstones` the range tombstones of the
/// inputs in it, **not** garbage-collected: the merge drops what they
/// delete ([`merge_runs`]), and the files store what
/// [`FragmentedTombstones::collect_garbage`] keeps of them. No file is
/// created when neither an entry nor a tombstone survives.
pub fn write_outputs<C, S>(
    inputs: Vec<C>,
    policy: &GcPolicy,
    tombstones: &FragmentedTombstones,
    range: &KeyRange,
    sink: &S,
    target_file_size: u64,
) -> Result<(Vec<S::Output>, MergeStats), S::Error>
where
    S: RunSink,
    C: EntryCursor<Error = S::Error>,
{
    let kept = tombstones.collect_garbage(&sorted_snapshots(policy), policy.bottommost);
    let mut cutter = OutputCutter::new(sink, target_file_size, range, &kept);
    let mut stats = merge_runs(inputs, policy, tombstones, |e| cutter.add(e))?;
    let (outputs, written) = cutter.finish()?;
    stats.output_range_tombstones = written;
    Ok((outputs, stats))
}

#[cfg(test)]
mod filter_tests;
#[cfg(test)]
mod operand_tests;
#[cfg(test)]
mod tests;
