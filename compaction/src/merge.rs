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

use crate::types::{EntryCursor, EntryKind, EntryRef, RunSink, RunWriter};
use std::cmp::Ordering;

/// What the merge may drop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPolicy {
    /// Sequence numbers of the live snapshots, ascending (they are sorted
    /// again if not).
    pub snapshots: Vec<u64>,
    /// No file below the output overlaps the merged range, so tombstones in
    /// the earliest stripe may go.
    pub bottommost: bool,
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
    /// Key and value bytes read.
    pub input_bytes: u64,
    /// Key and value bytes written.
    pub output_bytes: u64,
}

impl MergeStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &MergeStats) {
        self.input_entries += other.input_entries;
        self.output_entries += other.output_entries;
        self.dropped_versions += other.dropped_versions;
        self.dropped_tombstones += other.dropped_tombstones;
        self.input_bytes += other.input_bytes;
        self.output_bytes += other.output_bytes;
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
/// A binary heap of cursor indices holds every cursor that has an entry;
/// the top is the smallest (user key, newest sequence number). Each
/// `(user key, seq)` should appear once across all inputs; if it appears
/// twice, the lower input index wins and the other is dropped as an older
/// version.
pub fn merge_runs<C: EntryCursor>(
    inputs: Vec<C>,
    policy: &GcPolicy,
    mut emit: impl FnMut(EntryRef<'_>) -> Result<(), C::Error>,
) -> Result<MergeStats, C::Error> {
    let mut snaps = policy.snapshots.clone();
    snaps.sort_unstable();
    snaps.dedup();
    let mut cursors = inputs;
    let mut heap: Vec<usize> = (0..cursors.len())
        .filter(|&i| cursors[i].current().is_some())
        .collect();
    for i in (0..heap.len() / 2).rev() {
        sift_down(&mut heap, &cursors, i);
    }
    let mut stats = MergeStats::default();
    let mut last_key: Vec<u8> = Vec::new();
    let mut have_key = false;
    let mut last_stripe = 0usize;
    let mut drop_rest = false;
    while let Some(&top) = heap.first() {
        if let Some(e) = cursors[top].current() {
            let bytes = (e.user_key.len() + e.value.len()) as u64;
            stats.input_entries += 1;
            stats.input_bytes += bytes;
            let stripe = snaps.partition_point(|&s| s < e.seq);
            let keep = if !have_key || e.user_key != last_key.as_slice() {
                last_key.clear();
                last_key.extend_from_slice(e.user_key);
                have_key = true;
                drop_rest = false;
                last_stripe = stripe;
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
            } else {
                stats.output_entries += 1;
                stats.output_bytes += bytes;
                emit(e)?;
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
    Ok(stats)
}

/// Writes entries into output files through a [`RunSink`], starting a new
/// file when the current one has reached the target size and the next
/// entry has a new user key (one user key's versions never span files).
pub struct OutputCutter<'s, S: RunSink> {
    sink: &'s S,
    target_file_size: u64,
    writer: Option<S::Writer>,
    last_key: Vec<u8>,
    outputs: Vec<S::Output>,
}

impl<'s, S: RunSink> OutputCutter<'s, S> {
    /// A cutter writing files of about `target_file_size` bytes to `sink`.
    pub fn new(sink: &'s S, target_file_size: u64) -> Self {
        OutputCutter {
            sink,
            target_file_size,
            writer: None,
            last_key: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Appends an entry (entries must come in merge order).
    pub fn add(&mut self, entry: EntryRef<'_>) -> Result<(), S::Error> {
        let same_key = self.writer.is_some() && self.last_key.as_slice() == entry.user_key;
        if !same_key {
            if let Some(w) = self
                .writer
                .take_if(|w| w.estimated_size() >= self.target_file_size)
            {
                self.outputs.push(self.sink.finish(w)?);
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

    /// Finishes the open file, if any, and returns all outputs in order.
    pub fn finish(mut self) -> Result<Vec<S::Output>, S::Error> {
        if let Some(w) = self.writer.take() {
            self.outputs.push(self.sink.finish(w)?);
        }
        Ok(self.outputs)
    }
}

/// Merges `inputs` under `policy` into new files of about
/// `target_file_size` bytes (see [`OutputCutter`]); returns the files in
/// key order and the merge's counters. No file is created when nothing
/// survives.
pub fn write_outputs<C, S>(
    inputs: Vec<C>,
    policy: &GcPolicy,
    sink: &S,
    target_file_size: u64,
) -> Result<(Vec<S::Output>, MergeStats), S::Error>
where
    S: RunSink,
    C: EntryCursor<Error = S::Error>,
{
    let mut cutter = OutputCutter::new(sink, target_file_size);
    let stats = merge_runs(inputs, policy, |e| cutter.add(e))?;
    Ok((cutter.finish()?, stats))
}

#[cfg(test)]
mod tests;
