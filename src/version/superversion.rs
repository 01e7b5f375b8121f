//! The superversion: everything a read needs, published through one
//! lock-free pointer.
//!
//! A [`SuperVersion`] bundles the active memtable, the frozen memtables
//! waiting for flush and the current file [`Version`]. The database swaps
//! in a new one (under its versions lock) whenever any of the three
//! changes; readers load it without locking and keep it, and so everything
//! in it, alive while they read.

use std::sync::Arc;

use bytes::Bytes;

use crate::blob::BlobRef;
use crate::error::{Error, Result};
use crate::iter::merge::MergingIterator;
use crate::iter::InternalIterator;
use crate::key::{encode_internal_key, parse_internal_key, SeqNo, ValueKind};
use crate::memtable::{Lookup, MemTable};
use crate::merge_operator::MergeOperator;
use crate::sst::filter_hash;
use crate::ttl::Expiry;
use crate::version::version::Version;
use lightning_compaction::FragmentedTombstones;

/// Gives the keyspace's merge operator to a read that needs one (called
/// only then, so a read without operands loads no options).
pub(crate) type MergeSource<'a> = &'a dyn Fn() -> Option<Arc<dyn MergeOperator>>;

/// A timed value's user value, or `None` when it has expired (an expired
/// version reads as a tombstone: [`crate::ttl`]).
#[inline]
pub(crate) fn live_timed(key: &[u8], stored: Bytes, expiry: Expiry) -> Result<Option<Bytes>> {
    let Some((v, at)) = crate::ttl::split(&stored) else {
        return Err(crate::ttl::short_value(key));
    };
    if expiry.expired(at) {
        return Ok(None);
    }
    let len = v.len();
    Ok(Some(stored.slice(..len)))
}

/// Memtables and files as of one moment.
pub(crate) struct SuperVersion {
    /// The memtable receiving writes.
    pub(crate) mem: Arc<MemTable>,
    /// Frozen memtables, newest first.
    pub(crate) imms: Vec<Arc<MemTable>>,
    /// The live SST files.
    pub(crate) version: Arc<Version>,
}

impl SuperVersion {
    /// The value of `key` visible at `seq`: memtables newest first, then
    /// level-0 files newest first, then deeper levels. When the newest
    /// version is a merge operand, `merge` gives the keyspace's operator
    /// and the operands are folded ([`SuperVersion::get_merged`]). A timed
    /// value reads without its time, and as deleted once `expiry` says it
    /// has expired ([`crate::ttl`]).
    pub(crate) fn get(
        &self,
        key: &[u8],
        seq: SeqNo,
        expiry: Expiry,
        merge: MergeSource<'_>,
    ) -> Result<Option<Bytes>> {
        self.get_hashed(key, filter_hash(key), seq, expiry, merge)
    }

    /// [`get`](Self::get) for a key whose `filter_hash` is `hash`.
    pub(crate) fn get_hashed(
        &self,
        key: &[u8],
        hash: u64,
        seq: SeqNo,
        expiry: Expiry,
        merge: MergeSource<'_>,
    ) -> Result<Option<Bytes>> {
        let found = match self.mem_get(key, hash, seq) {
            Some(l) => Some(l),
            None => self.version.get_hashed(key, hash, seq)?,
        };
        self.finish_get(key, found, seq, expiry, merge)
    }

    /// The newest version of `key` (whose `filter_hash` is `hash`) visible
    /// at `seq` in the memtables, newest first; `None` when none has one
    /// (the files are next).
    #[inline]
    pub(crate) fn mem_get(&self, key: &[u8], hash: u64, seq: SeqNo) -> Option<Lookup> {
        match self.mem.get_hashed(key, hash, seq) {
            Some(l) => Some(l),
            None => self.imms.iter().find_map(|m| m.get_hashed(key, hash, seq)),
        }
    }

    /// [`get_hashed`](Self::get_hashed)'s answer from `found`, the newest
    /// version of `key` visible at `seq` in the memtables, else in the
    /// files: range tombstones, blob values, expiry and merges applied.
    #[inline]
    pub(crate) fn finish_get(
        &self,
        key: &[u8],
        found: Option<Lookup>,
        seq: SeqNo,
        expiry: Expiry,
        merge: MergeSource<'_>,
    ) -> Result<Option<Bytes>> {
        Ok(match found {
            Some(Lookup::Value(v, at)) if !self.range_deleted(key, at, seq) => Some(v),
            Some(Lookup::Blob(r, at)) if !self.range_deleted(key, at, seq) => {
                Some(self.read_blob(&r)?)
            }
            Some(Lookup::Timed(v, at)) if !self.range_deleted(key, at, seq) => {
                live_timed(key, v, expiry)?
            }
            Some(Lookup::Merge(at)) if !self.range_deleted(key, at, seq) => {
                return self.get_merged(key, seq, expiry, merge().as_ref());
            }
            _ => None,
        })
    }

    /// The value of `key` at `seq` when its newest version is a merge
    /// operand: the operands newest first down to the first version that
    /// is not one (a value, a blob value, a tombstone) or that a range
    /// tombstone deletes (then nothing), folded by `op`. Walks the sources
    /// newest first, each with a seek of its own (memtables, then the
    /// files a point lookup would probe, skipping those whose filter rules
    /// the key out): no merged cursor over everything.
    pub(crate) fn get_merged(
        &self,
        key: &[u8],
        seq: SeqNo,
        expiry: Expiry,
        op: Option<&Arc<dyn MergeOperator>>,
    ) -> Result<Option<Bytes>> {
        let hash = filter_hash(key);
        let target = encode_internal_key(key, seq, ValueKind::FOR_SEEK);
        let mut operands: Vec<Bytes> = Vec::new();
        // One source's versions of `key` at `seq`, newest first: `Some`
        // with the fold's base once it is found (`None` inside: absent).
        let mut walk = |it: &mut dyn InternalIterator| -> Result<Option<Option<Bytes>>> {
            it.seek(&target);
            while it.valid() {
                let Some(p) = parse_internal_key(it.key()) else {
                    return Err(Error::Internal(
                        "malformed internal key in a merge lookup".into(),
                    ));
                };
                if p.user_key != key {
                    break;
                }
                if self.range_deleted(key, p.seq, seq) {
                    return Ok(Some(None));
                }
                match p.kind {
                    ValueKind::Merge => operands.push(it.value_bytes()),
                    ValueKind::Value => return Ok(Some(Some(it.value_bytes()))),
                    ValueKind::BlobIndex => {
                        return Ok(Some(Some(self.read_blob(&it.value_bytes())?)))
                    }
                    ValueKind::TimedValue => {
                        return Ok(Some(live_timed(key, it.value_bytes(), expiry)?))
                    }
                    ValueKind::Delete => return Ok(Some(None)),
                }
                it.next();
            }
            it.status()?;
            Ok(None)
        };
        let mut base = None;
        for m in std::iter::once(&self.mem).chain(&self.imms) {
            if m.may_contain_hash(hash) {
                if let Some(b) = walk(&mut m.iter())? {
                    base = Some(b);
                    break;
                }
            }
        }
        if base.is_none() {
            base = self.version.for_each_candidate(key, seq, |f| {
                let t = f.table()?;
                if !t.may_contain_hash(hash) {
                    return Ok(None);
                }
                walk(&mut t.iter())
            })?;
        }
        let base = base.flatten();
        if operands.is_empty() {
            return Ok(base);
        }
        crate::merge_operator::fold(op, key, base.as_deref(), &operands).map(Some)
    }

    /// The value the encoded blob reference `r` points to: in the live
    /// blob file of one of the memtables (a value put since their flush),
    /// else in the version's blob files ([`Version::read_blob`]).
    pub(crate) fn read_blob(&self, r: &[u8]) -> Result<Bytes> {
        if let Ok(b) = BlobRef::decode(r) {
            let live = std::iter::once(&self.mem)
                .chain(&self.imms)
                .filter_map(|m| m.live_blob())
                .find(|f| f.number() == b.file_number);
            if let Some(f) = live {
                return f.read(&b);
            }
        }
        self.version.read_blob(r, None)
    }

    /// True when the superversion holds blob references: its version has
    /// blob files, or a memtable has a live blob file.
    pub(crate) fn has_blobs(&self) -> bool {
        !self.version.blob_files().is_empty()
            || std::iter::once(&self.mem)
                .chain(&self.imms)
                .any(|m| m.live_blob().is_some())
    }

    /// True when a range tombstone deletes the version of `key` at
    /// sequence number `at` for a reader at `seq`.
    #[inline]
    pub(crate) fn range_deleted(&self, key: &[u8], at: SeqNo, seq: SeqNo) -> bool {
        self.range_deletion_seq(key, seq) > at
    }

    /// The newest sequence number, at most `seq`, of a range tombstone
    /// covering `key` in any memtable or file (0: none). Cheap when there
    /// are none: an atomic load per memtable and a pointer test.
    #[inline]
    pub(crate) fn range_deletion_seq(&self, key: &[u8], seq: SeqNo) -> SeqNo {
        let mut max = 0;
        for m in std::iter::once(&self.mem).chain(&self.imms) {
            max = max.max(m.max_covering_seq(key, seq));
        }
        if let Some(t) = self.version.range_tombstones() {
            max = max.max(t.max_covering_seq(key, seq));
        }
        max
    }

    /// Every range tombstone a reader of this superversion may need: the
    /// memtables' (as of now) and the files'.
    pub(crate) fn range_tombstone_sets(&self) -> Vec<Arc<FragmentedTombstones>> {
        let mut sets = Vec::new();
        for m in std::iter::once(&self.mem).chain(&self.imms) {
            sets.extend(m.range_tombstones());
        }
        sets.extend(self.version.range_tombstones().cloned());
        sets
    }

    /// [`merged_iter`](Self::merged_iter) for keys that all have prefix
    /// `prefix` under the extractor named `extractor`: files that cannot
    /// hold such a key are left out.
    pub(crate) fn merged_iter_in_prefix(&self, extractor: &str, prefix: &[u8]) -> MergingIterator {
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::with_capacity(2 + self.imms.len());
        for m in std::iter::once(&self.mem).chain(&self.imms) {
            if m.may_hold_prefix(extractor, prefix) {
                children.push(Box::new(m.iter()));
            }
        }
        crate::iter::level::add_prefix_iterators(&self.version, extractor, prefix, &mut children);
        MergingIterator::new(children)
    }

    /// A merged cursor over every memtable and file.
    pub(crate) fn merged_iter(&self) -> MergingIterator {
        let mut children: Vec<Box<dyn InternalIterator>> =
            Vec::with_capacity(1 + self.imms.len() + self.version.files(0).len() + 6);
        children.push(Box::new(self.mem.iter()));
        for m in &self.imms {
            children.push(Box::new(m.iter()));
        }
        crate::iter::level::add_version_iterators(&self.version, &mut children);
        MergingIterator::new(children)
    }
}
