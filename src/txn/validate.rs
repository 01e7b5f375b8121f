//! Commit validation of optimistic transactions.
//!
//! A transaction commits only if no other commit wrote any key it must
//! check (its write set and `get_for_update` keys; under serializable
//! isolation also the keys it read and the ranges it scanned) after its
//! snapshot. The write-group leader runs [`validate_group`] for every
//! group that holds a transaction, just before it numbers the group (see
//! `crate::db::write`).
//!
//! Invariants this relies on, and why validation never misses a conflict:
//! - **Exclusive and complete.** Validation runs in the leader, after every
//!   earlier group is in the memtable and visible, and before any later
//!   group is numbered. So the commits ordered before the transaction are
//!   exactly the ones in the database plus the earlier members of its own
//!   group (checked through the keys those members write); none can slip
//!   in between validation and sequence assignment. No lock is held: the
//!   leader role itself is the exclusion.
//! - **Data that moved is still found.** "Another commit wrote `k` after
//!   snapshot `s`" is "some version of `k` with sequence number `> s`
//!   exists", and the *newest* version of every key survives flush and
//!   compaction: the MVCC merge (`lightning_compaction::merge_runs`)
//!   always keeps the first (newest) version of each key, except a
//!   tombstone in the earliest snapshot stripe on the bottommost level,
//!   whose sequence number is at or below every live snapshot — and the
//!   transaction's own snapshot is live until it commits. A flush or
//!   compaction that started before the snapshot was taken only holds
//!   versions at or below it. Sequence numbers are never rewritten.
//! - **Searching the right places.** The versions newer than `s` are in
//!   the memtables or in files whose `largest_seq > s`: other files are
//!   skipped by their metadata, the rest by their bloom filter, so a
//!   transaction whose snapshot is newer than the last flush reads no file
//!   at all. Every candidate is searched (not just the first hit), so the
//!   check does not depend on the order of level-0 files.
//! - **Cost.** One memtable seek per key and memtable, plus filtered file
//!   lookups only for transactions older than a flush. A scanned range
//!   (serializable only) is read in full in every memtable and in every
//!   file newer than the snapshot that overlaps it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::{OpKind, WriteBatch};
use crate::error::{ConflictKind, Error, Result};
use crate::iter::InternalIterator;
use crate::key::MAX_SEQUENCE;
use crate::key::{encode_internal_key, parse_internal_key, user_key, SeqNo, ValueKind};
use crate::version::superversion::SuperVersion;
use crate::version::version::TableFile;

/// A key range as `(lower, upper)` bounds.
pub(crate) type KeyRange = (Bound<Bytes>, Bound<Bytes>);

/// What a transaction's commit must validate.
#[derive(Debug, Clone)]
pub(crate) struct CommitCheck {
    /// The snapshot the transaction read at.
    pub(crate) snapshot: SeqNo,
    /// Each key to check once, with its keyspace and the reason (writes
    /// first).
    pub(crate) keys: Vec<(u32, Bytes, ConflictKind)>,
    /// Ranges scanned, with their keyspace (serializable isolation only).
    pub(crate) ranges: Vec<(u32, KeyRange)>,
}

/// The current superversion of a keyspace by id
/// (`DbInner::superversion_of`): [`Error::KeyspaceDropped`] for one that
/// is gone.
pub(crate) type Superversions<'a> = dyn Fn(u32) -> Result<Arc<SuperVersion>> + 'a;

/// Validates a write group in order. `members` are the group's writers:
/// their check (`None` for plain writes, which always pass) and their
/// batch. A checked member fails when a key it checks was written after
/// its snapshot by the database as `sv` holds it, or by an earlier member
/// that passed. Returns, per member, `None` (write it) or its error.
///
/// `svs` must give superversions holding every write numbered before the
/// group (the leader validates after the previous group published).
pub(crate) fn validate_group<'a>(
    svs: &Superversions<'_>,
    members: impl Iterator<Item = (Option<&'a CommitCheck>, &'a WriteBatch)>,
) -> Vec<Option<Error>> {
    let members: Vec<_> = members.collect();
    // Keys of earlier members only matter up to the last checked member.
    let last_checked = members.iter().rposition(|(c, _)| c.is_some());
    let mut written = Written::default();
    let mut out = Vec::with_capacity(members.len());
    for (i, (check, batch)) in members.into_iter().enumerate() {
        let rejected = check.and_then(|c| match find_conflict(svs, c, &written) {
            Ok(found) => found,
            Err(e) => Some(e),
        });
        if rejected.is_none() && last_checked.is_some_and(|l| i < l) {
            written.add(batch);
        }
        out.push(rejected);
    }
    out
}

/// Validates `check` against the database as it is now, outside the write
/// group: for a transaction that writes nothing, so no sequence number is
/// assigned and only the moment of the check matters.
pub(crate) fn validate_alone(svs: &Superversions<'_>, check: &CommitCheck) -> Result<()> {
    match find_conflict(svs, check, &Written::default())? {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What the earlier members of a write group write (all numbered after
/// the snapshot of any later member).
#[derive(Debug, Default)]
struct Written {
    /// Per keyspace id, the keys written.
    keys: BTreeMap<u32, BTreeSet<Vec<u8>>>,
    /// Range deletions `(keyspace, [start, end))`.
    ranges: Vec<(u32, Vec<u8>, Vec<u8>)>,
}

impl Written {
    fn add(&mut self, batch: &WriteBatch) {
        for op in batch.iter() {
            match op.kind {
                OpKind::DeleteRange => {
                    self.ranges
                        .push((op.keyspace, op.key.to_vec(), op.value.to_vec()))
                }
                _ => {
                    self.keys
                        .entry(op.keyspace)
                        .or_default()
                        .insert(op.key.to_vec());
                }
            }
        }
    }

    /// True when `key` of keyspace `ks` is written.
    fn contains(&self, ks: u32, key: &[u8]) -> bool {
        self.keys.get(&ks).is_some_and(|k| k.contains(key))
            || self
                .ranges
                .iter()
                .any(|(r, s, e)| *r == ks && s.as_slice() <= key && key < e.as_slice())
    }

    /// A written key of keyspace `ks` in `bounds`, or the first key of a
    /// range deletion there overlapping them.
    fn first_in(&self, ks: u32, bounds: (Bound<&[u8]>, Bound<&[u8]>)) -> Option<Bytes> {
        if let Some(k) = self
            .keys
            .get(&ks)
            .and_then(|keys| keys.range::<[u8], _>(bounds).next())
        {
            return Some(Bytes::copy_from_slice(k));
        }
        self.ranges
            .iter()
            .filter(|(r, _, _)| *r == ks)
            .find_map(|(_, s, e)| overlap_start(&bounds.0, &bounds.1, s, e))
    }
}

/// The first key of `[start, end)` inside `lo..hi`, if they overlap.
fn overlap_start(lo: &Bound<&[u8]>, hi: &Bound<&[u8]>, start: &[u8], end: &[u8]) -> Option<Bytes> {
    let first: &[u8] = match lo {
        Bound::Included(l) if *l > start => l,
        Bound::Excluded(l) if *l >= start => {
            // The first key after `l`.
            let mut k = l.to_vec();
            k.push(0);
            return (k.as_slice() < end && !above(hi, &k)).then(|| Bytes::from(k));
        }
        _ => start,
    };
    (first < end && !above(hi, first)).then(|| Bytes::copy_from_slice(first))
}

/// The conflict error for `check`, if any of its keys or ranges was
/// written after its snapshot, in `sv` or in `written` (keys written by
/// earlier members of the same group, all numbered after the snapshot).
fn find_conflict(
    svs: &Superversions<'_>,
    check: &CommitCheck,
    written: &Written,
) -> Result<Option<Error>> {
    let conflict = |key: Bytes, kind| Error::Conflict {
        key,
        snapshot: check.snapshot,
        kind,
    };
    // One superversion per keyspace for the whole check.
    let mut loaded: Vec<(u32, Arc<SuperVersion>)> = Vec::new();
    let mut sv_of = |ks: u32| -> Result<Arc<SuperVersion>> {
        if let Some((_, sv)) = loaded.iter().find(|(id, _)| *id == ks) {
            return Ok(Arc::clone(sv));
        }
        let sv = svs(ks)?;
        loaded.push((ks, Arc::clone(&sv)));
        Ok(sv)
    };
    for (ks, key, kind) in &check.keys {
        if written.contains(*ks, key) || written_after(&*sv_of(*ks)?, key, check.snapshot)? {
            return Ok(Some(conflict(key.clone(), *kind)));
        }
    }
    for (ks, (lo, hi)) in &check.ranges {
        if range_is_empty(lo, hi) {
            continue;
        }
        let sv = sv_of(*ks)?;
        let sv = sv.as_ref();
        let bounds = (as_slice_bound(lo), as_slice_bound(hi));
        if let Some(k) = written.first_in(*ks, bounds) {
            return Ok(Some(conflict(k, ConflictKind::Range)));
        }
        if let Some(k) = range_deleted_after(sv, &bounds, check.snapshot) {
            return Ok(Some(conflict(k, ConflictKind::Range)));
        }
        if let Some(k) = range_written_after(sv, lo, hi, check.snapshot)? {
            return Ok(Some(conflict(k, ConflictKind::Range)));
        }
    }
    Ok(None)
}

/// The first key in `bounds` that a range deletion newer than `snapshot`
/// covers, if any.
fn range_deleted_after(
    sv: &SuperVersion,
    bounds: &(Bound<&[u8]>, Bound<&[u8]>),
    snapshot: SeqNo,
) -> Option<Bytes> {
    sv.range_tombstone_sets()
        .iter()
        .flat_map(|set| set.fragments().iter())
        .filter(|f| f.seqs.first().is_some_and(|&s| s > snapshot))
        .filter_map(|f| overlap_start(&bounds.0, &bounds.1, &f.start, &f.end))
        .min()
}

/// True when some version of `key` newer than `snapshot` exists, or a
/// range deletion newer than `snapshot` covers it.
fn written_after(sv: &SuperVersion, key: &[u8], snapshot: SeqNo) -> Result<bool> {
    if sv.range_deletion_seq(key, MAX_SEQUENCE) > snapshot {
        return Ok(true);
    }
    // Memtables hold the newest writes, the active one newest of all: the
    // first memtable holding `key` has its newest version.
    for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
        let mut it = mem.iter();
        it.seek(&encode_internal_key(key, MAX_SEQUENCE, ValueKind::FOR_SEEK));
        if it.valid() {
            if let Some(p) = parse_internal_key(it.key()) {
                if p.user_key == key {
                    return Ok(p.seq > snapshot);
                }
            }
        }
    }
    for f in candidate_files(sv, snapshot) {
        if !file_overlaps(f, &Bound::Included(key), &Bound::Included(key)) {
            continue;
        }
        if let Some((seq, _, _)) = f.table()?.get(key, MAX_SEQUENCE)? {
            if seq > snapshot {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The first key in `lo..hi` of which a version newer than `snapshot`
/// exists, searching every memtable and every file newer than `snapshot`.
fn range_written_after(
    sv: &SuperVersion,
    lo: &Bound<Bytes>,
    hi: &Bound<Bytes>,
    snapshot: SeqNo,
) -> Result<Option<Bytes>> {
    let mut sources: Vec<Box<dyn InternalIterator>> = Vec::new();
    for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
        sources.push(Box::new(mem.iter()));
    }
    for f in candidate_files(sv, snapshot) {
        if file_overlaps(f, &as_slice_bound(lo), &as_slice_bound(hi)) {
            sources.push(crate::iter::level::table_iter(f, false));
        }
    }
    let mut first: Option<Bytes> = None;
    for mut it in sources {
        match lo {
            Bound::Unbounded => it.seek_to_first(),
            Bound::Included(k) | Bound::Excluded(k) => {
                it.seek(&encode_internal_key(k, MAX_SEQUENCE, ValueKind::FOR_SEEK))
            }
        }
        while it.valid() {
            let Some(p) = parse_internal_key(it.key()) else {
                return Err(Error::corruption(
                    "<transaction validation>",
                    0,
                    "malformed internal key",
                ));
            };
            if above(hi, p.user_key) || first.as_ref().is_some_and(|f| p.user_key >= f.as_ref()) {
                break;
            }
            let excluded = matches!(lo, Bound::Excluded(k) if p.user_key == k.as_ref());
            if !excluded && p.seq > snapshot {
                first = Some(Bytes::copy_from_slice(p.user_key));
                break;
            }
            it.next();
        }
        it.status()?;
    }
    Ok(first)
}

/// Files that may hold a version newer than `snapshot`.
fn candidate_files(sv: &SuperVersion, snapshot: SeqNo) -> impl Iterator<Item = &TableFile> {
    sv.version
        .all_files()
        .map(|(_, f)| f.as_ref())
        .filter(move |f| f.meta.largest_seq > snapshot)
}

/// True when the key range of `f` reaches into `lo..hi`.
fn file_overlaps(f: &TableFile, lo: &Bound<&[u8]>, hi: &Bound<&[u8]>) -> bool {
    let (smallest, largest) = (user_key(&f.meta.smallest), user_key(&f.meta.largest));
    !below(lo, largest) && !above(hi, smallest)
}

/// True when `k` lies above the upper bound `hi`.
fn above<K: AsRef<[u8]>>(hi: &Bound<K>, k: &[u8]) -> bool {
    match hi {
        Bound::Unbounded => false,
        Bound::Included(h) => k > h.as_ref(),
        Bound::Excluded(h) => k >= h.as_ref(),
    }
}

/// True when `k` lies below the lower bound `lo`.
fn below<K: AsRef<[u8]>>(lo: &Bound<K>, k: &[u8]) -> bool {
    match lo {
        Bound::Unbounded => false,
        Bound::Included(l) => k < l.as_ref(),
        Bound::Excluded(l) => k <= l.as_ref(),
    }
}

/// True when no key lies in `lo..hi` (std's range methods panic on such
/// bounds).
pub(crate) fn range_is_empty(lo: &Bound<Bytes>, hi: &Bound<Bytes>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// `b` borrowed as a byte-slice bound.
pub(crate) fn as_slice_bound(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
