//! [`WriteBatch`]: a group of puts and deletes applied atomically.
//!
//! A batch keeps its operations already encoded in the write-ahead-log
//! payload format (docs/format.md, "WAL record payload: a write batch"):
//!
//! ```text
//! sequence: u64 LE ‖ count: u32 LE ‖
//!     count × (kind: u8, [keyspace_id: varint32], key: lp-bytes, [value: lp-bytes])
//! ```
//!
//! where kind is 0 (delete), 1 (put) or 3 (delete range: the key is the
//! range's start, the "value" its end). Kind 3 is only written to and read
//! from WALs of format version 3 and later. Kinds 4, 5, 6 are put, delete
//! and delete range in a keyspace other than the default one (id 0): the
//! kind byte is followed by `keyspace_id: varint32`, then the fields of
//! kind 1, 0, 3 (WAL format version 4, [`KEYSPACE_WAL_VERSION`]). An
//! operation on keyspace 0 is always written with kinds 0, 1, 3, so a batch
//! of the default keyspace only is encoded exactly as before version 4.
//! Kinds 7 and 8 are merges (the "value" is the operand) in keyspace 0 and
//! in another keyspace (followed by its id), from WAL format version 5
//! ([`MERGE_WAL_VERSION`]). Kinds 9 and 10 are timed puts in keyspace 0
//! and in another keyspace (followed by its id): a put into a keyspace
//! with a time to live, whose value is the user's value followed by its
//! 8-byte write time ([`crate::ttl`]), from WAL format version 6
//! ([`TTL_WAL_VERSION`]). A user's batch holds none: the write path stamps
//! its puts into such keyspaces when the write begins.
//!
//! ```text
//! ```
//!
//! and group commit concatenates batches with [`WriteBatch::append`].
//! WALs of format version 2 store the sequence and count as varints
//! instead ([`WriteBatch::with_wal_payload`]): the batch writes that
//! shorter header into the tail of its 12 header bytes for the length of
//! one `add_record`, so the record is still written without a copy.
//!
//! Invariants: `rep` always starts with the 12-byte header; the count in
//! the header equals the number of encoded operations (mod 2^32, see
//! [`WriteBatch::check_limits`]); every operation in `rep` is well formed, so
//! [`WriteBatch::iter`] cannot fail. `max_key`/`max_value` are the largest
//! key and value held, checked against [`MAX_KEY_SIZE`]/[`MAX_VALUE_SIZE`]
//! before a write because [`WriteBatch::put`] cannot return an error.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]
// The crate-internal half is used by the Db write path (not yet written).

use std::borrow::Cow;
use std::fmt;
use std::ops::{Bound, RangeBounds};

use crate::coding::{
    encode_varint64, put_length_prefixed, put_varint32, Cursor, DecodeError, MAX_VARINT64_LEN,
};
use crate::error::{Error, Result};
use crate::key::{SeqNo, ValueKind, MAX_SEQUENCE};
use crate::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Bytes of the batch header: sequence (8) and count (4).
pub(crate) const BATCH_HEADER_LEN: usize = 12;

/// The first WAL format version whose batches may hold range deletions
/// (kind 3).
pub(crate) const RANGE_DELETE_WAL_VERSION: u32 = 3;

/// The first WAL format version whose batches may hold operations in a
/// keyspace (kinds 4, 5, 6).
pub(crate) const KEYSPACE_WAL_VERSION: u32 = 4;

/// The first WAL format version whose batches may hold merges (kinds 7,
/// 8).
pub(crate) const MERGE_WAL_VERSION: u32 = 5;

/// The first WAL format version whose batches may hold timed puts (kinds
/// 9, 10).
pub(crate) const TTL_WAL_VERSION: u32 = 6;

/// The first WAL format version whose batches may hold blob references
/// (kinds 11, 12: values written to a blob file at put time), and the
/// version this build writes ([`crate::log::LogKind::format_version`]).
pub(crate) const BLOB_WAL_VERSION: u32 = 7;

/// An ordered group of puts and deletes, applied atomically by a write:
/// after a crash either every operation of the batch is visible or none is.
/// Later operations on the same key win over earlier ones.
#[derive(Clone, PartialEq, Eq)]
pub struct WriteBatch {
    rep: Vec<u8>,
    /// Number of operations (may exceed `u32::MAX`; then the batch is
    /// refused by `check_limits`).
    ops: u64,
    max_key: usize,
    max_value: usize,
    /// Sum of key and value lengths (what the user asked to store).
    user_bytes: u64,
    /// Number of delete operations (for the statistics).
    deletes: u64,
    /// Number of operations on a keyspace other than 0 (kinds 4, 5, 6, 8).
    keyspace_ops: u64,
    /// Number of merges (kinds 7, 8).
    merges: u64,
    /// Number of blob references (kinds 11, 12).
    blob_refs: u64,
}

/// What one operation of a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    /// Deletes the key.
    Delete,
    /// Sets the key to the value.
    Put,
    /// Deletes every key in `[key, value)` (a range tombstone).
    DeleteRange,
    /// Adds the merge operand `value` to the key.
    Merge,
    /// Sets the key to a timed value: `value` is the user's value followed
    /// by its write time ([`crate::ttl`]).
    PutTimed,
    /// Sets the key to a value the write path put in a blob file: `value`
    /// is the encoded [`crate::blob::BlobRef`] (never made by users:
    /// [`WriteBatch::separate_values`]).
    PutBlob,
}

impl OpKind {
    /// The operation's byte in the encoding, for an operation on keyspace
    /// `keyspace`: 0, 1, 3, 7 on keyspace 0, else 5, 4, 6, 8 (followed by
    /// the keyspace id).
    pub(crate) fn code(self, keyspace: u32) -> u8 {
        match (self, keyspace == 0) {
            (OpKind::Delete, true) => 0,
            (OpKind::Put, true) => 1,
            (OpKind::DeleteRange, true) => 3,
            (OpKind::Put, false) => 4,
            (OpKind::Delete, false) => 5,
            (OpKind::DeleteRange, false) => 6,
            (OpKind::Merge, true) => 7,
            (OpKind::Merge, false) => 8,
            (OpKind::PutTimed, true) => 9,
            (OpKind::PutTimed, false) => 10,
            (OpKind::PutBlob, true) => 11,
            (OpKind::PutBlob, false) => 12,
        }
    }

    /// Decodes an operation byte of a WAL of format `version`: delete
    /// range only from [`RANGE_DELETE_WAL_VERSION`] on, the keyspace kinds
    /// only from [`KEYSPACE_WAL_VERSION`] on, merges only from
    /// [`MERGE_WAL_VERSION`] on. The flag is true for the keyspace kinds,
    /// whose byte is followed by a keyspace id.
    pub(crate) fn from_code(b: u8, version: u32) -> Option<(OpKind, bool)> {
        let ks = version >= KEYSPACE_WAL_VERSION;
        match b {
            0 => Some((OpKind::Delete, false)),
            1 => Some((OpKind::Put, false)),
            3 if version >= RANGE_DELETE_WAL_VERSION => Some((OpKind::DeleteRange, false)),
            4 if ks => Some((OpKind::Put, true)),
            5 if ks => Some((OpKind::Delete, true)),
            6 if ks => Some((OpKind::DeleteRange, true)),
            7 if version >= MERGE_WAL_VERSION => Some((OpKind::Merge, false)),
            8 if version >= MERGE_WAL_VERSION => Some((OpKind::Merge, true)),
            9 if version >= TTL_WAL_VERSION => Some((OpKind::PutTimed, false)),
            10 if version >= TTL_WAL_VERSION => Some((OpKind::PutTimed, true)),
            11 if version >= BLOB_WAL_VERSION => Some((OpKind::PutBlob, false)),
            12 if version >= BLOB_WAL_VERSION => Some((OpKind::PutBlob, true)),
            _ => None,
        }
    }

    /// The internal-key kind of a point operation (`None` for a range).
    pub(crate) fn value_kind(self) -> Option<ValueKind> {
        match self {
            OpKind::Delete => Some(ValueKind::Delete),
            OpKind::Put => Some(ValueKind::Value),
            OpKind::Merge => Some(ValueKind::Merge),
            OpKind::PutTimed => Some(ValueKind::TimedValue),
            OpKind::PutBlob => Some(ValueKind::BlobIndex),
            OpKind::DeleteRange => None,
        }
    }
}

/// One operation of a batch, borrowed from its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOp<'a> {
    /// Put, delete or delete range.
    pub kind: OpKind,
    /// The keyspace the operation applies to (0: `default`).
    pub keyspace: u32,
    /// The user key (the start of a range).
    pub key: &'a [u8],
    /// The value; empty for a delete; the end of a range.
    pub value: &'a [u8],
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch {
            rep: vec![0; BATCH_HEADER_LEN],
            ops: 0,
            max_key: 0,
            max_value: 0,
            user_bytes: 0,
            deletes: 0,
            keyspace_ops: 0,
            merges: 0,
            blob_refs: 0,
        }
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBatch")
            .field("len", &self.ops)
            .field("sequence", &self.sequence())
            .field("encoded_bytes", &self.rep.len())
            .finish()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds "set `key` to `value`". Keys longer than [`MAX_KEY_SIZE`] or
    /// values longer than [`MAX_VALUE_SIZE`] make the write of this batch
    /// fail with [`Error::InvalidArgument`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let mut batch = lightning_db::WriteBatch::new();
    /// batch.put("k", "v");
    /// batch.put("k", "w"); // the later put wins
    /// db.write(batch)?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"w"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.put_in_id(0, key, value);
    }

    /// [`put`](Self::put) in keyspace `ks` (0: `default`).
    pub(crate) fn put_in_id(&mut self, ks: u32, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        self.push_op(OpKind::Put, ks, key.as_ref(), Some(value));
        self.max_value = self.max_value.max(value.len());
    }

    /// Adds "delete `key`" (a no-op for a key that does not exist). Keys
    /// longer than [`MAX_KEY_SIZE`] make the write fail.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// let mut batch = lightning_db::WriteBatch::new();
    /// batch.delete("k");
    /// db.write(batch)?;
    /// assert_eq!(db.get("k")?, None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.delete_in_id(0, key);
    }

    /// Adds "merge `operand` into `key`": the key's value becomes the
    /// keyspace's merge operator applied to its current value and the
    /// operand ([`crate::MergeOperator`]; RocksDB's `Merge`). Writing a
    /// batch with a merge into a keyspace without a merge operator fails
    /// with `InvalidArgument` and writes nothing. Operands count as values
    /// for the size limits.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::sync::Arc;
    /// use lightning_db::{Db, Options, U64AddOperator, WriteBatch};
    ///
    /// let db = Db::open(dir.path(), Options::new().merge_operator(Some(Arc::new(U64AddOperator))))?;
    /// let mut batch = WriteBatch::new();
    /// batch.merge("visits", 1u64.to_le_bytes());
    /// batch.merge("visits", 1u64.to_le_bytes());
    /// db.write(batch)?;
    /// assert_eq!(db.get("visits")?.as_deref(), Some(&2u64.to_le_bytes()[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) {
        self.merge_in_id(0, key, operand);
    }

    /// [`merge`](Self::merge) in keyspace `ks` (0: `default`).
    pub(crate) fn merge_in_id(
        &mut self,
        ks: u32,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
    ) {
        let operand = operand.as_ref();
        self.push_op(OpKind::Merge, ks, key.as_ref(), Some(operand));
        self.max_value = self.max_value.max(operand.len());
        self.merges += 1;
    }

    /// True when the batch holds a merge. O(1).
    pub(crate) fn has_merges(&self) -> bool {
        self.merges != 0
    }

    /// Appends `op` (of another batch) as it is, with its accounting.
    pub(crate) fn push_copy(&mut self, op: &BatchOp<'_>) {
        match op.kind {
            OpKind::Put => self.put_in_id(op.keyspace, op.key, op.value),
            OpKind::Delete => self.delete_in_id(op.keyspace, op.key),
            OpKind::Merge => self.merge_in_id(op.keyspace, op.key, op.value),
            OpKind::DeleteRange => self.push_range_tombstone_in(op.keyspace, op.key, op.value),
            OpKind::PutTimed => {
                self.push_op(OpKind::PutTimed, op.keyspace, op.key, Some(op.value));
                self.timed_value_pushed(op.value.len());
            }
            OpKind::PutBlob => {
                self.blob_refs += 1;
                self.push_op(OpKind::PutBlob, op.keyspace, op.key, Some(op.value));
            }
        }
    }

    /// A timed put of `value` written at `write_ms` in keyspace `ks` (the
    /// write path's stamping of a put into a keyspace with a TTL).
    pub(crate) fn put_timed_in_id(&mut self, ks: u32, key: &[u8], value: &[u8], write_ms: u64) {
        let stored = crate::ttl::append_time(value, write_ms);
        self.push_op(OpKind::PutTimed, ks, key, Some(&stored));
        self.timed_value_pushed(stored.len());
    }

    /// Accounts for a timed put of `stored` bytes just pushed: only the
    /// user's value counts, as the decoder counts it.
    fn timed_value_pushed(&mut self, stored: usize) {
        let user = stored.saturating_sub(crate::ttl::TIME_LEN);
        self.max_value = self.max_value.max(user);
        self.user_bytes -= (stored - user) as u64;
    }

    /// [`delete`](Self::delete) in keyspace `ks` (0: `default`).
    pub(crate) fn delete_in_id(&mut self, ks: u32, key: impl AsRef<[u8]>) {
        self.push_op(OpKind::Delete, ks, key.as_ref(), None);
        self.deletes += 1;
    }

    /// Appends one operation on keyspace `ks`: its kind byte, the keyspace
    /// id unless `ks` is 0, the key, and `value` (a put's value, a range's
    /// end; `None` for a delete). The caller accounts for the value's
    /// limit and for deletes.
    fn push_op(&mut self, kind: OpKind, ks: u32, key: &[u8], value: Option<&[u8]>) {
        let value_len = value.map_or(0, <[u8]>::len);
        self.rep.reserve(1 + 5 + 10 + key.len() + 10 + value_len);
        self.rep.push(kind.code(ks));
        if ks != 0 {
            put_varint32(&mut self.rep, ks);
            self.keyspace_ops += 1;
        }
        put_length_prefixed(&mut self.rep, key);
        if let Some(value) = value {
            put_length_prefixed(&mut self.rep, value);
        }
        self.max_key = self.max_key.max(key.len());
        self.user_bytes += (key.len() + value_len) as u64;
        self.set_ops(self.ops + 1);
    }

    /// Adds "delete every key in `range`": one range tombstone, whatever
    /// the number of keys it covers, visible to every read at once
    /// (RocksDB's `DeleteRange`). Any bounds work (`a..b`, `a..=b`, `a..`,
    /// `..`); an empty range deletes nothing. A range ending at an
    /// included key, or unbounded, adds a point delete of that last key
    /// (of the largest possible key, `MAX_KEY_SIZE` bytes of `0xff`, when
    /// unbounded) beside the tombstone, since the key after it may be
    /// longer than a key may be. Keys longer than [`MAX_KEY_SIZE`] (an
    /// excluded start of exactly `MAX_KEY_SIZE` bytes among them) make
    /// the write fail. Later operations of the batch on keys in the range
    /// are not deleted by it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a1", "x")?;
    /// db.put("b1", "y")?;
    /// let mut batch = lightning_db::WriteBatch::new();
    /// batch.delete_range("a".."b");
    /// batch.put("a2", "z"); // later in the batch: not deleted
    /// db.write(batch)?;
    /// assert_eq!(db.get("a1")?, None);
    /// assert_eq!(db.get("a2")?.as_deref(), Some(&b"z"[..]));
    /// assert_eq!(db.get("b1")?.as_deref(), Some(&b"y"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn delete_range<K: AsRef<[u8]>>(&mut self, range: impl RangeBounds<K>) {
        self.delete_range_in_id(0, range);
    }

    /// [`delete_range`](Self::delete_range) in keyspace `ks` (0:
    /// `default`): the tombstone and the point delete of an included or
    /// unbounded end are both in `ks`.
    pub(crate) fn delete_range_in_id<K: AsRef<[u8]>>(
        &mut self,
        ks: u32,
        range: impl RangeBounds<K>,
    ) {
        let start: Cow<'_, [u8]> = match range.start_bound() {
            Bound::Included(k) => Cow::Borrowed(k.as_ref()),
            Bound::Excluded(k) => {
                let mut v = k.as_ref().to_vec();
                v.push(0);
                Cow::Owned(v)
            }
            Bound::Unbounded => Cow::Borrowed(&[][..]),
        };
        match range.end_bound() {
            Bound::Excluded(end) => self.push_range_tombstone_in(ks, &start, end.as_ref()),
            Bound::Included(last) => {
                let last = last.as_ref();
                if *start <= *last {
                    self.push_range_tombstone_in(ks, &start, last);
                    self.delete_in_id(ks, last);
                }
            }
            Bound::Unbounded => {
                let last = [0xffu8; MAX_KEY_SIZE];
                if *start <= last[..] {
                    self.push_range_tombstone_in(ks, &start, &last);
                    self.delete_in_id(ks, last);
                }
            }
        }
    }

    /// Adds "delete every key starting with `prefix`" (an empty prefix:
    /// every key), as [`delete_range`](Self::delete_range).
    pub fn delete_prefix(&mut self, prefix: impl AsRef<[u8]>) {
        self.delete_prefix_in_id(0, prefix);
    }

    /// [`delete_prefix`](Self::delete_prefix) in keyspace `ks` (0:
    /// `default`).
    pub(crate) fn delete_prefix_in_id(&mut self, ks: u32, prefix: impl AsRef<[u8]>) {
        let prefix = prefix.as_ref();
        match crate::iter::db_iter::prefix_successor(prefix) {
            Some(end) => self.push_range_tombstone_in(ks, prefix, &end),
            None => self.delete_range_in_id(ks, prefix..),
        }
    }

    /// Adds the range tombstone `[start, end)` in keyspace 0 (nothing when
    /// empty). Tests.
    #[cfg(test)]
    pub(crate) fn push_range_tombstone(&mut self, start: &[u8], end: &[u8]) {
        self.push_range_tombstone_in(0, start, end);
    }

    /// Adds the range tombstone `[start, end)` in keyspace `ks` (nothing
    /// when empty).
    pub(crate) fn push_range_tombstone_in(&mut self, ks: u32, start: &[u8], end: &[u8]) {
        if start >= end {
            return;
        }
        self.push_op(OpKind::DeleteRange, ks, start, Some(end));
        self.max_key = self.max_key.max(end.len());
    }

    /// True when the batch holds an operation on a keyspace other than 0
    /// (so its WAL record needs format [`KEYSPACE_WAL_VERSION`]). O(1).
    #[allow(dead_code)] // For the keyspace write path (being built).
    pub(crate) fn has_keyspace_ops(&self) -> bool {
        self.keyspace_ops != 0
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops as usize
    }

    /// True when the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops == 0
    }

    /// Bytes allocated for the encoded operations.
    pub(crate) fn capacity(&self) -> usize {
        self.rep.capacity()
    }

    /// Removes every operation, keeping the allocated buffer.
    pub fn clear(&mut self) {
        self.rep.clear();
        self.rep.resize(BATCH_HEADER_LEN, 0);
        self.ops = 0;
        self.max_key = 0;
        self.max_value = 0;
        self.user_bytes = 0;
        self.deletes = 0;
        self.keyspace_ops = 0;
        self.merges = 0;
        self.blob_refs = 0;
    }

    /// Sum of the key and value lengths in the batch.
    pub(crate) fn user_bytes(&self) -> u64 {
        self.user_bytes
    }

    /// Number of delete operations in the batch.
    pub(crate) fn deletes(&self) -> u64 {
        self.deletes
    }

    /// Length of the largest value in the batch (of the value a blob
    /// reference names).
    pub(crate) fn max_value(&self) -> usize {
        self.max_value
    }

    /// True when the batch holds blob references (kinds 11, 12).
    pub(crate) fn has_blob_refs(&self) -> bool {
        self.blob_refs > 0
    }

    /// Replaces operations: `f` sees each operation in order and returns
    /// `Some((kind, value))` to write the operation with that kind and
    /// value instead (same keyspace and key), or `None` to keep it. The
    /// batch keeps its sequence number, count and user byte total (what
    /// the user wrote: a blob reference counts as its value). Allocates a
    /// new encoding only when some operation is replaced.
    pub(crate) fn replace_ops<V: AsRef<[u8]>, E>(
        &mut self,
        mut f: impl FnMut(&BatchOp<'_>) -> std::result::Result<Option<(OpKind, V)>, E>,
    ) -> std::result::Result<(), E> {
        let mut out: Option<WriteBatch> = None;
        for (i, op) in self.iter().enumerate() {
            let replaced = f(&op)?;
            if replaced.is_none() && out.is_none() {
                continue;
            }
            let o = out.get_or_insert_with(|| {
                let mut o = WriteBatch::default();
                o.rep.reserve(self.rep.len());
                // The operations before this one, unchanged.
                for earlier in self.iter().take(i) {
                    o.push_copy(&earlier);
                }
                o
            });
            match replaced {
                Some((kind, value)) => {
                    o.blob_refs += u64::from(kind == OpKind::PutBlob);
                    o.deletes += u64::from(kind == OpKind::Delete);
                    o.merges += u64::from(kind == OpKind::Merge);
                    o.push_op(kind, op.keyspace, op.key, Some(value.as_ref()));
                }
                None => o.push_copy(&op),
            }
        }
        if let Some(mut o) = out {
            if let Some(h) = self.rep.get(..BATCH_HEADER_LEN) {
                o.rep
                    .get_mut(..BATCH_HEADER_LEN)
                    .unwrap_or_default()
                    .copy_from_slice(h);
            }
            o.max_key = self.max_key;
            o.max_value = self.max_value;
            o.user_bytes = self.user_bytes;
            *self = o;
        }
        Ok(())
    }

    /// Size of the batch's encoding in bytes (what it adds to the
    /// write-ahead log, before framing).
    pub fn approximate_size(&self) -> usize {
        self.rep.len()
    }

    fn set_ops(&mut self, ops: u64) {
        self.ops = ops;
        if let Some(c) = self.rep.get_mut(8..BATCH_HEADER_LEN) {
            c.copy_from_slice(&(ops as u32).to_le_bytes());
        }
    }

    /// Checks the batch against the engine's limits: key and value sizes,
    /// and at most `u32::MAX` operations.
    pub(crate) fn check_limits(&self) -> Result<()> {
        if self.max_key > MAX_KEY_SIZE {
            return Err(Error::InvalidArgument(format!(
                "write batch holds a key of {} bytes; keys are at most MAX_KEY_SIZE = {MAX_KEY_SIZE} bytes",
                self.max_key
            )));
        }
        if self.max_value > MAX_VALUE_SIZE {
            return Err(Error::InvalidArgument(format!(
                "write batch holds a value of {} bytes; values are at most MAX_VALUE_SIZE = {MAX_VALUE_SIZE} bytes",
                self.max_value
            )));
        }
        if self.ops > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument(format!(
                "write batch holds {} operations; at most {} are allowed",
                self.ops,
                u32::MAX
            )));
        }
        Ok(())
    }

    /// Number of operations as stored in the header.
    pub(crate) fn count(&self) -> u32 {
        self.ops as u32
    }

    /// Sets the sequence number of the first operation (operation `i` gets
    /// `seq + i`).
    pub(crate) fn set_sequence(&mut self, seq: SeqNo) {
        if let Some(s) = self.rep.get_mut(..8) {
            s.copy_from_slice(&seq.to_le_bytes());
        }
    }

    /// Sequence number of the first operation.
    pub(crate) fn sequence(&self) -> SeqNo {
        let mut a = [0u8; 8];
        if let Some(s) = self.rep.get(..8) {
            a.copy_from_slice(s);
        }
        u64::from_le_bytes(a)
    }

    /// The encoded batch: exactly a WAL record payload of log format
    /// version 1 (fixed-width sequence and count). Tests and fuzzing only:
    /// the engine writes [`with_wal_payload`](Self::with_wal_payload).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn data(&self) -> &[u8] {
        &self.rep
    }

    /// Calls `f` with this batch's WAL record payload in the current log
    /// format (version 2: `sequence` and `count` as varints, then the
    /// operations; docs/format.md). The short header is written over the
    /// end of the fixed 12-byte one for the call and the fixed header is
    /// put back after it, so the payload is not copied; a header longer
    /// than 12 bytes (a sequence above 2^56 or a count above 2^28, which
    /// the limits refuse anyway) is built in a separate buffer instead.
    pub(crate) fn with_wal_payload<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> R {
        let (short, n) = self.wal_header();
        let short = short.get(..n).unwrap_or_default();
        let (Some(start), Some(fixed)) = (
            BATCH_HEADER_LEN.checked_sub(n),
            self.rep.get(..BATCH_HEADER_LEN),
        ) else {
            let mut whole = short.to_vec();
            whole.extend_from_slice(self.rep.get(BATCH_HEADER_LEN..).unwrap_or_default());
            return f(&whole);
        };
        let mut saved = [0u8; BATCH_HEADER_LEN];
        saved.copy_from_slice(fixed);
        if let Some(dst) = self.rep.get_mut(start..BATCH_HEADER_LEN) {
            dst.copy_from_slice(short);
        }
        let out = f(self.rep.get(start..).unwrap_or_default());
        if let Some(dst) = self.rep.get_mut(..BATCH_HEADER_LEN) {
            dst.copy_from_slice(&saved);
        }
        out
    }

    /// The version-2 WAL header of this batch (varint sequence, varint
    /// count) and its length: at most 10 + 5 bytes.
    fn wal_header(&self) -> ([u8; 15], usize) {
        let mut buf = [0u8; 15];
        let mut n = 0;
        for v in [self.sequence(), u64::from(self.count())] {
            let mut one = [0u8; MAX_VARINT64_LEN];
            let len = encode_varint64(&mut one, v);
            if let (Some(dst), Some(src)) = (buf.get_mut(n..n + len), one.get(..len)) {
                dst.copy_from_slice(src);
            }
            n += len;
        }
        (buf, n)
    }

    /// Appends the operations of `other` after this batch's, so both apply
    /// atomically as one batch.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::WriteBatch;
    ///
    /// let mut a = WriteBatch::new();
    /// a.put("x", "1");
    /// let mut b = WriteBatch::new();
    /// b.put("y", "2");
    /// a.append(&b);
    /// assert_eq!(a.len(), 2);
    /// db.write(a)?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn append(&mut self, other: &WriteBatch) {
        self.rep
            .extend_from_slice(other.rep.get(BATCH_HEADER_LEN..).unwrap_or_default());
        self.max_key = self.max_key.max(other.max_key);
        self.max_value = self.max_value.max(other.max_value);
        self.user_bytes += other.user_bytes;
        self.deletes += other.deletes;
        self.keyspace_ops += other.keyspace_ops;
        self.merges += other.merges;
        self.blob_refs += other.blob_refs;
        self.set_ops(self.ops + other.ops);
    }

    /// The operations in order, borrowed from the encoding, without
    /// allocating.
    pub(crate) fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            cursor: Cursor::new(self.rep.get(BATCH_HEADER_LEN..).unwrap_or_default()),
            left: self.ops,
        }
    }

    /// Decodes and fully validates a version-1 WAL record payload (tests;
    /// the engine calls [`from_wal_record`](Self::from_wal_record)): header present,
    /// exactly `count` well-formed operations with known kinds, no byte
    /// left over, keys and values within the limits, and sequence numbers
    /// `sequence .. sequence + count` within the 56-bit range.
    #[cfg(test)]
    pub(crate) fn from_record(data: &[u8]) -> Result<WriteBatch, DecodeError> {
        Self::from_wal_record(data, 1)
    }

    /// [`from_record`](Self::from_record) for a record of a WAL of log
    /// format `version`: 1 has the fixed 12-byte header, 2 and later the
    /// varint one ([`with_wal_payload`](Self::with_wal_payload)). Varints
    /// must be minimal, so an accepted record is exactly what
    /// `with_wal_payload` writes for the batch.
    pub(crate) fn from_wal_record(data: &[u8], version: u32) -> Result<WriteBatch, DecodeError> {
        let mut c = Cursor::new(data);
        let (seq, count) = if version >= 2 {
            (
                c.varint64("truncated write batch header")?,
                c.varint32("truncated write batch header")?,
            )
        } else {
            (
                c.u64("truncated write batch header")?,
                c.u32("truncated write batch header")?,
            )
        };
        let ops_start = c.position();
        if count > 0
            && seq
                .checked_add(u64::from(count) - 1)
                .is_none_or(|last| last > MAX_SEQUENCE)
        {
            return Err(DecodeError {
                offset: 0,
                reason: "write batch sequence numbers exceed the 56-bit range",
            });
        }
        let (mut max_key, mut max_value, mut user_bytes, mut deletes, mut keyspace_ops) =
            (0usize, 0usize, 0u64, 0u64, 0u64);
        let (mut merges, mut blob_refs) = (0u64, 0u64);
        for _ in 0..count {
            let at = c.position();
            let (kind, in_keyspace) =
                OpKind::from_code(c.u8("truncated write batch operation")?, version).ok_or(
                    DecodeError {
                        offset: at,
                        reason: "unknown operation kind in write batch",
                    },
                )?;
            if in_keyspace {
                let ks_at = c.position();
                if c.varint32("bad keyspace id in write batch operation")? == 0 {
                    // Keyspace 0 is written with kinds 0, 1, 3, 7: no
                    // writer writes it with a keyspace kind.
                    return Err(DecodeError {
                        offset: ks_at,
                        reason: "write batch operation of kind 4-6 or 8 names keyspace 0",
                    });
                }
                keyspace_ops += 1;
            }
            let key_at = c.position();
            let key = c.length_prefixed("write batch key runs past the record")?;
            if key.len() > MAX_KEY_SIZE {
                return Err(DecodeError {
                    offset: key_at,
                    reason: "write batch key longer than MAX_KEY_SIZE",
                });
            }
            max_key = max_key.max(key.len());
            user_bytes += key.len() as u64;
            match kind {
                OpKind::Delete => deletes += 1,
                OpKind::Put | OpKind::Merge | OpKind::PutTimed => {
                    merges += u64::from(kind == OpKind::Merge);
                    let value_at = c.position();
                    let value = c.length_prefixed("write batch value runs past the record")?;
                    let time_len = match kind {
                        OpKind::PutTimed if value.len() < crate::ttl::TIME_LEN => {
                            return Err(DecodeError {
                                offset: value_at,
                                reason: "timed put shorter than its write time",
                            });
                        }
                        OpKind::PutTimed => crate::ttl::TIME_LEN,
                        _ => 0,
                    };
                    let value = value.get(..value.len() - time_len).unwrap_or_default();
                    if value.len() > MAX_VALUE_SIZE {
                        return Err(DecodeError {
                            offset: value_at,
                            reason: "write batch value longer than MAX_VALUE_SIZE",
                        });
                    }
                    max_value = max_value.max(value.len());
                    user_bytes += value.len() as u64;
                }
                OpKind::PutBlob => {
                    blob_refs += 1;
                    let value_at = c.position();
                    let value = c.length_prefixed("write batch value runs past the record")?;
                    let r = crate::blob::BlobRef::decode(value).map_err(|e| DecodeError {
                        offset: value_at + e.offset,
                        reason: e.reason,
                    })?;
                    let len = r.value_len as usize;
                    if len > MAX_VALUE_SIZE {
                        return Err(DecodeError {
                            offset: value_at,
                            reason: "blob reference to a value longer than MAX_VALUE_SIZE",
                        });
                    }
                    max_value = max_value.max(len);
                    user_bytes += len as u64;
                }
                OpKind::DeleteRange => {
                    let end_at = c.position();
                    let end = c.length_prefixed("write batch range end runs past the record")?;
                    if end.len() > MAX_KEY_SIZE {
                        return Err(DecodeError {
                            offset: end_at,
                            reason: "write batch range end longer than MAX_KEY_SIZE",
                        });
                    }
                    if key >= end {
                        return Err(DecodeError {
                            offset: key_at,
                            reason: "write batch range deletion is empty (start not below end)",
                        });
                    }
                    max_key = max_key.max(end.len());
                    user_bytes += end.len() as u64;
                }
            }
        }
        if !c.is_empty() {
            return Err(c.error("bytes left over after the write batch's operations"));
        }
        let ops = data.get(ops_start..).unwrap_or_default();
        let mut rep = Vec::with_capacity(BATCH_HEADER_LEN + ops.len());
        rep.extend_from_slice(&seq.to_le_bytes());
        rep.extend_from_slice(&count.to_le_bytes());
        rep.extend_from_slice(ops);
        Ok(WriteBatch {
            rep,
            ops: u64::from(count),
            max_key,
            max_value,
            user_bytes,
            deletes,
            keyspace_ops,
            merges,
            blob_refs,
        })
    }
}

/// Iterator over the operations of a [`WriteBatch`].
#[derive(Debug, Clone)]
pub(crate) struct BatchIter<'a> {
    cursor: Cursor<'a>,
    left: u64,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // A batch is valid by construction (put/delete or from_record), so
        // none of these fail; if one did, iteration would just stop.
        let op = (|| {
            // The encoding was made or checked by this build: every kind.
            let (kind, in_keyspace) = OpKind::from_code(self.cursor.u8("kind").ok()?, u32::MAX)?;
            let keyspace = match in_keyspace {
                true => self.cursor.varint32("keyspace").ok()?,
                false => 0,
            };
            let key = self.cursor.length_prefixed("key").ok()?;
            let value = if kind == OpKind::Delete {
                &[][..]
            } else {
                self.cursor.length_prefixed("value").ok()?
            };
            Some(BatchOp {
                kind,
                keyspace,
                key,
                value,
            })
        })();
        debug_assert!(op.is_some(), "write batch encoding invariant broken");
        if op.is_none() {
            self.left = 0;
        }
        op
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, usize::try_from(self.left).ok())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ops_of(b: &WriteBatch) -> Vec<(OpKind, Vec<u8>, Vec<u8>)> {
        b.iter()
            .map(|o| (o.kind, o.key.to_vec(), o.value.to_vec()))
            .collect()
    }

    /// WAL format 2: varint header, exact bytes, header restored after the
    /// call, and every size of header (including one longer than the 12
    /// fixed bytes, built in a separate buffer).
    #[test]
    fn wal_v2_payload_round_trip() {
        let mut b = WriteBatch::new();
        b.put(b"k1", b"v1");
        b.delete("k2");
        b.set_sequence(300);
        let fixed = b.data().to_vec();
        let p = b.with_wal_payload(<[u8]>::to_vec);
        // 300 = 0xac 0x02; count 2.
        assert_eq!(&p[..3], &[0xac, 0x02, 2]);
        assert_eq!(&p[3..], &fixed[12..]);
        assert_eq!(b.data(), &fixed[..], "the fixed header is put back");
        let d = WriteBatch::from_wal_record(&p, 2).unwrap();
        assert_eq!(d, b);
        for seq in [
            0,
            1,
            127,
            128,
            1 << 21,
            1 << 49,
            MAX_SEQUENCE - 2,
            u64::MAX - 5,
        ] {
            b.set_sequence(seq);
            let p = b.with_wal_payload(<[u8]>::to_vec);
            let (_, n) = b.wal_header();
            assert_eq!(p.len(), n + fixed.len() - 12, "seq {seq}");
            assert_eq!(b.sequence(), seq, "seq {seq}: header put back");
            match WriteBatch::from_wal_record(&p, 2) {
                Ok(d) => assert_eq!(d, b, "seq {seq}"),
                Err(e) => assert!(seq > MAX_SEQUENCE - 1, "seq {seq}: {e:?}"),
            }
        }
        // A header longer than 12 bytes: built in a separate buffer.
        let mut many = WriteBatch::new();
        for i in 0..20_000u32 {
            many.put(i.to_be_bytes(), "");
        }
        many.set_sequence(u64::MAX - 5);
        assert_eq!(many.wal_header().1, 13);
        let fixed_many = many.data().to_vec();
        let p = many.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(p.len(), 13 + fixed_many.len() - 12);
        assert_eq!(&p[13..], &fixed_many[12..]);
        assert_eq!(&p[10..13], &[0xa0, 0x9c, 0x01], "count 20000");
        assert_eq!(many.data(), &fixed_many[..]);
        // The two versions do not read each other's records.
        b.set_sequence(300);
        let v2 = b.with_wal_payload(<[u8]>::to_vec);
        assert!(WriteBatch::from_wal_record(&v2, 1).is_err());
        assert!(WriteBatch::from_wal_record(b.data(), 2).is_err());
    }

    /// Range deletions: kind 3, only in WAL version 3, never empty; the
    /// bounds of every shape become a tombstone (and a point delete for an
    /// included or unbounded end).
    #[test]
    fn range_deletions_encode_decode_and_refuse_what_no_writer_writes() {
        let mut b = WriteBatch::new();
        b.put("k", "v");
        b.delete_range("a".."c");
        b.set_sequence(9);
        let p = b.with_wal_payload(<[u8]>::to_vec);
        let d = WriteBatch::from_wal_record(&p, 3).unwrap();
        assert_eq!(d, b);
        assert_eq!(
            ops_of(&d),
            vec![
                (OpKind::Put, b"k".to_vec(), b"v".to_vec()),
                (OpKind::DeleteRange, b"a".to_vec(), b"c".to_vec()),
            ]
        );
        // An older WAL cannot hold one.
        assert!(WriteBatch::from_wal_record(&p, 2).is_err());
        // An empty range (start not below end) is corrupt.
        let mut e = WriteBatch::new();
        e.push_range_tombstone(b"a", b"c");
        let mut raw = e.with_wal_payload(<[u8]>::to_vec);
        let n = raw.len();
        raw[n - 1] = b'a'; // end "a" == start "a"
        assert!(WriteBatch::from_wal_record(&raw, 3).is_err());
        // Shapes of bounds.
        let shapes = |f: &dyn Fn(&mut WriteBatch)| {
            let mut b = WriteBatch::new();
            f(&mut b);
            ops_of(&b)
        };
        let max = vec![0xffu8; MAX_KEY_SIZE];
        assert_eq!(
            shapes(&|b| b.delete_range("a"..="c")),
            vec![
                (OpKind::DeleteRange, b"a".to_vec(), b"c".to_vec()),
                (OpKind::Delete, b"c".to_vec(), vec![]),
            ]
        );
        assert_eq!(
            shapes(&|b| b.delete_range::<&str>(..)),
            vec![
                (OpKind::DeleteRange, vec![], max.clone()),
                (OpKind::Delete, max.clone(), vec![]),
            ]
        );
        assert_eq!(
            shapes(&|b| b.delete_range::<&str>((Bound::Excluded("a"), Bound::Excluded("c")))),
            vec![(OpKind::DeleteRange, b"a\0".to_vec(), b"c".to_vec())]
        );
        assert!(shapes(&|b| b.delete_range("c".."a")).is_empty());
        assert!(shapes(&|b| b.delete_range("c"..="a")).is_empty());
        assert_eq!(
            shapes(&|b| b.delete_prefix("ab")),
            vec![(OpKind::DeleteRange, b"ab".to_vec(), b"ac".to_vec())]
        );
        assert_eq!(shapes(&|b| b.delete_prefix([0xff])).len(), 2);
    }

    #[test]
    fn merges_encode_as_documented_and_need_wal_version_5() {
        let mut b = WriteBatch::new();
        b.merge("c", 1u64.to_le_bytes());
        b.set_sequence(9);
        let p = b.with_wal_payload(<[u8]>::to_vec);
        // The example of docs/format.md, "Version 5".
        assert_eq!(p, [9, 1, 7, 1, b'c', 8, 1, 0, 0, 0, 0, 0, 0, 0]);
        let d = WriteBatch::from_wal_record(&p, MERGE_WAL_VERSION).unwrap();
        assert_eq!(d, b);
        assert!(d.has_merges());
        assert!(WriteBatch::from_wal_record(&p, KEYSPACE_WAL_VERSION).is_err());
        // In a keyspace: kind 8 and the id; keyspace 0 there is corrupt.
        let mut k = WriteBatch::new();
        k.merge_in_id(5, "c", "x");
        let mut p = k.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(&p[2..5], [8, 5, 1]);
        let d = WriteBatch::from_wal_record(&p, MERGE_WAL_VERSION).unwrap();
        assert_eq!(
            d.iter().next().map(|op| (op.kind, op.keyspace)),
            Some((OpKind::Merge, 5))
        );
        p[3] = 0;
        assert!(WriteBatch::from_wal_record(&p, MERGE_WAL_VERSION).is_err());
        // Appending keeps the merge count; a batch without merges has none.
        let mut a = WriteBatch::new();
        a.put("p", "v");
        assert!(!a.has_merges());
        a.append(&k);
        assert!(a.has_merges());
    }

    #[test]
    fn timed_puts_encode_as_documented_and_need_wal_version_6() {
        let mut b = WriteBatch::new();
        b.put_timed_in_id(0, b"k", b"v", 1_700_000_000_000);
        b.set_sequence(9);
        let p = b.with_wal_payload(<[u8]>::to_vec);
        // The example of docs/format.md, "Version 6".
        assert_eq!(
            p,
            [9, 1, 9, 1, b'k', 9, b'v', 0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0, 0]
        );
        let d = WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).unwrap();
        assert_eq!(d, b);
        let op = d.iter().next().unwrap();
        assert_eq!(op.kind.value_kind(), Some(ValueKind::TimedValue));
        assert_eq!(
            crate::ttl::split(op.value),
            Some((&b"v"[..], 1_700_000_000_000))
        );
        assert!(WriteBatch::from_wal_record(&p, MERGE_WAL_VERSION).is_err());
        // Shorter than the time: corrupt.
        let mut short = WriteBatch::new();
        short.push_op(OpKind::PutTimed, 0, b"k", Some(b"1234567"));
        let p = short.with_wal_payload(<[u8]>::to_vec);
        assert!(WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).is_err());
        // In a keyspace: kind 10 and the id; keyspace 0 there is corrupt.
        let mut k = WriteBatch::new();
        k.put_timed_in_id(5, b"c", b"x", 1);
        let mut p = k.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(&p[2..5], [10, 5, 1]);
        let d = WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).unwrap();
        assert_eq!(
            d.iter().next().map(|op| (op.kind, op.keyspace)),
            Some((OpKind::PutTimed, 5))
        );
        p[3] = 0;
        assert!(WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).is_err());
        // A value of MAX_VALUE_SIZE with its time is accepted.
        let mut max = WriteBatch::new();
        max.put_timed_in_id(0, b"m", &vec![0u8; MAX_VALUE_SIZE], 3);
        assert!(max.check_limits().is_ok());
        let p = max.with_wal_payload(<[u8]>::to_vec);
        assert!(WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).is_ok());
    }

    /// A put of a large value becomes a blob put by `replace_ops` (the
    /// write path's separation) and back (recovery): the bytes are the
    /// example of docs/format.md, "Version 7", and the batch keeps its
    /// header and its user byte count.
    #[test]
    fn blob_puts_encode_as_documented_and_need_wal_version_7() {
        let r = crate::blob::BlobRef {
            file_number: 7,
            offset: 41,
            stored_len: 5000,
            value_len: 5000,
            value_checksum: 0x1122_3344,
        };
        let mut b = WriteBatch::new();
        b.put(b"k", vec![5u8; 5000]);
        b.delete(b"d");
        b.set_sequence(9);
        let user_bytes = b.user_bytes();
        b.replace_ops(|op| {
            Ok::<_, ()>((op.kind == OpKind::Put).then(|| (OpKind::PutBlob, r.encode())))
        })
        .unwrap();
        assert!(b.has_blob_refs());
        assert_eq!((b.sequence(), b.len(), b.user_bytes()), (9, 2, user_bytes));
        assert_eq!(b.deletes(), 1);
        let p = b.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(
            &p[..16],
            [9, 2, 0x0b, 1, b'k', 0x0a, 7, 0x29, 0x88, 0x27, 0x88, 0x27, 0x44, 0x33, 0x22, 0x11]
        );
        let d = WriteBatch::from_wal_record(&p, BLOB_WAL_VERSION).unwrap();
        assert_eq!(d, b);
        assert!(WriteBatch::from_wal_record(&p, TTL_WAL_VERSION).is_err());
        // Back inline, as recovery does.
        let mut back = d.clone();
        back.replace_ops(|op| {
            Ok::<_, ()>((op.kind == OpKind::PutBlob).then(|| (OpKind::Put, vec![5u8; 5000])))
        })
        .unwrap();
        let mut want = WriteBatch::new();
        want.put(b"k", vec![5u8; 5000]);
        want.delete(b"d");
        want.set_sequence(9);
        assert_eq!(back, want);
        // A reference that does not decode, or names a value beyond the
        // limit, is corrupt; so is kind 12 naming keyspace 0.
        let mut bad = WriteBatch::new();
        bad.push_op(OpKind::PutBlob, 0, b"k", Some(b"\x07"));
        let p = bad.with_wal_payload(<[u8]>::to_vec);
        assert!(WriteBatch::from_wal_record(&p, BLOB_WAL_VERSION).is_err());
        let huge = crate::blob::BlobRef {
            value_len: (MAX_VALUE_SIZE + 1) as u32,
            stored_len: (MAX_VALUE_SIZE + 1) as u32,
            ..r
        };
        let mut bad = WriteBatch::new();
        bad.push_op(OpKind::PutBlob, 0, b"k", Some(&huge.encode()));
        let p = bad.with_wal_payload(<[u8]>::to_vec);
        assert!(WriteBatch::from_wal_record(&p, BLOB_WAL_VERSION).is_err());
        let mut k = WriteBatch::new();
        k.push_op(OpKind::PutBlob, 3, b"k", Some(&r.encode()));
        let mut p = k.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(&p[2..4], [12, 3]);
        assert!(WriteBatch::from_wal_record(&p, BLOB_WAL_VERSION).is_ok());
        p[3] = 0;
        assert!(WriteBatch::from_wal_record(&p, BLOB_WAL_VERSION).is_err());
    }

    #[test]
    fn wal_v2_decoder_rejects_malformed() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value");
        b.set_sequence(5);
        let good = b.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(&good[..2], &[5, 1]);
        // Every truncation.
        for n in 0..good.len() {
            assert!(
                WriteBatch::from_wal_record(&good[..n], 2).is_err(),
                "len {n}"
            );
        }
        // A non-minimal varint sequence (5 as 0x85 0x00).
        let mut long = vec![0x85, 0x00];
        long.extend_from_slice(&good[1..]);
        assert!(WriteBatch::from_wal_record(&long, 2).is_err());
        // A count that disagrees with the operations.
        let mut c = good.clone();
        c[1] = 2;
        assert!(WriteBatch::from_wal_record(&c, 2).is_err());
        // A count above u32.
        let mut big = vec![5, 0x80, 0x80, 0x80, 0x80, 0x10];
        big.extend_from_slice(&good[2..]);
        assert!(WriteBatch::from_wal_record(&big, 2).is_err());
        // A byte left over.
        let mut extra = good.clone();
        extra.push(0);
        assert!(WriteBatch::from_wal_record(&extra, 2).is_err());
    }

    #[test]
    fn encode_decode_round_trip() {
        let mut b = WriteBatch::new();
        assert!(b.is_empty());
        assert_eq!(b.approximate_size(), BATCH_HEADER_LEN);
        b.put(b"k1", b"v1");
        b.delete("k2");
        b.put(vec![0u8; 300], "");
        b.set_sequence(1000);
        assert_eq!(b.len(), 3);
        assert_eq!(b.count(), 3);
        assert_eq!(b.sequence(), 1000);
        let d = WriteBatch::from_record(b.data()).unwrap();
        assert_eq!(d, b);
        assert_eq!(d.sequence(), 1000);
        assert_eq!(
            ops_of(&d),
            vec![
                (OpKind::Put, b"k1".to_vec(), b"v1".to_vec()),
                (OpKind::Delete, b"k2".to_vec(), vec![]),
                (OpKind::Put, vec![0u8; 300], vec![]),
            ]
        );
        // Exact layout of the header and first op.
        assert_eq!(&b.data()[..8], &1000u64.to_le_bytes());
        assert_eq!(&b.data()[8..12], &3u32.to_le_bytes());
        assert_eq!(&b.data()[12..18], &[1, 2, b'k', b'1', 2, b'v']);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.data(), &[0u8; 12]);
        assert_eq!(
            format!("{b:?}"),
            "WriteBatch { len: 0, sequence: 0, encoded_bytes: 12 }"
        );
    }

    #[test]
    fn append_concatenates_ops() {
        let mut a = WriteBatch::new();
        a.put("a", "1");
        a.set_sequence(5);
        let mut b = WriteBatch::new();
        b.delete("b");
        b.put("c", vec![7u8; 10]);
        b.set_sequence(99);
        a.append(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.sequence(), 5);
        let d = WriteBatch::from_record(a.data()).unwrap();
        assert_eq!(ops_of(&d).len(), 3);
        assert_eq!(ops_of(&d)[2].2, vec![7u8; 10]);
    }

    #[test]
    fn limits() {
        let mut b = WriteBatch::new();
        b.put(vec![1u8; MAX_KEY_SIZE], "v");
        b.check_limits().unwrap();
        b.delete(vec![1u8; MAX_KEY_SIZE + 1]);
        let e = b.check_limits().unwrap_err().to_string();
        assert!(e.contains("65537") && e.contains("MAX_KEY_SIZE"), "{e}");
        // The decoder refuses oversize keys too.
        assert!(WriteBatch::from_record(b.data()).is_err());
        let mut b = WriteBatch::new();
        b.put("k", vec![0u8; MAX_VALUE_SIZE + 1]);
        let e = b.check_limits().unwrap_err().to_string();
        assert!(e.contains("MAX_VALUE_SIZE"), "{e}");
        assert!(WriteBatch::from_record(b.data()).is_err());
        drop(b);
        // Limits follow operations through append.
        let mut big = WriteBatch::new();
        big.delete(vec![1u8; MAX_KEY_SIZE + 1]);
        let mut a = WriteBatch::new();
        a.append(&big);
        assert!(a.check_limits().is_err());
    }

    #[test]
    fn decoder_rejects_malformed() {
        let mut b = WriteBatch::new();
        b.put("key", "value");
        b.delete("gone");
        let good = b.data().to_vec();
        // Truncated anywhere.
        for n in 0..good.len() {
            assert!(WriteBatch::from_record(&good[..n]).is_err(), "len {n}");
        }
        // Trailing byte.
        let mut t = good.clone();
        t.push(0);
        let e = WriteBatch::from_record(&t).unwrap_err();
        assert_eq!(e.offset, good.len());
        // Count too large / too small.
        let mut c = good.clone();
        c[8] = 3;
        assert!(WriteBatch::from_record(&c).is_err());
        c[8] = 1;
        assert!(WriteBatch::from_record(&c).is_err());
        // Unknown kind.
        let mut k = good.clone();
        k[12] = 2;
        assert_eq!(WriteBatch::from_record(&k).unwrap_err().offset, 12);
        // Sequence overflow.
        let mut s = good.clone();
        s[..8].copy_from_slice(&MAX_SEQUENCE.to_le_bytes());
        assert!(WriteBatch::from_record(&s).is_err());
        s[..8].copy_from_slice(&(MAX_SEQUENCE - 1).to_le_bytes());
        assert!(WriteBatch::from_record(&s).is_ok());
        // An empty batch decodes (it is never written, but is harmless).
        assert!(WriteBatch::from_record(&[0u8; 12]).unwrap().is_empty());
    }

    #[test]
    fn overlong_length_varints_are_refused() {
        // Found by the wal_reader fuzz target: a value length of 1 written
        // as `0x81 0x00` decoded, so the batch held bytes that re-encode
        // differently (fuzz/regressions/wal_reader/).
        let mut d = vec![180, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, b'k', b'1'];
        let mut minimal = d.clone();
        minimal.extend_from_slice(&[1, 0]);
        let b = WriteBatch::from_record(&minimal).unwrap();
        assert_eq!(b.data(), &minimal[..]);
        d.extend_from_slice(&[0x81, 0x00, 0x00]);
        let e = WriteBatch::from_record(&d).unwrap_err();
        assert_eq!(e.offset, 16);
    }

    /// WAL format 4: operations in keyspaces (kinds 4, 5, 6) round-trip,
    /// mixed with default-keyspace ones, with exact bytes; keyspace 0 is
    /// written with the old kinds, so a default-only batch is unchanged.
    #[test]
    fn keyspace_ops_round_trip_in_wal_v4() {
        let mut b = WriteBatch::new();
        assert!(!b.has_keyspace_ops());
        b.put("d", "0");
        b.put_in_id(7, "k", "v");
        b.delete_in_id(1 << 20, "gone");
        b.delete_range_in_id(3, "a"..="c");
        b.delete_prefix_in_id(u32::MAX, "ab");
        b.push_range_tombstone_in(9, b"x", b"y");
        b.push_range_tombstone_in(9, b"y", b"x"); // empty: nothing
        b.set_sequence(77);
        assert!(b.has_keyspace_ops());
        assert_eq!(b.len(), 7);
        assert_eq!(b.deletes(), 2);
        // The keyspace ids are not user bytes.
        assert_eq!(b.user_bytes(), 2 + 2 + 4 + 2 + 1 + 4 + 2);
        let ops: Vec<_> = b
            .iter()
            .map(|o| (o.kind, o.keyspace, o.key.to_vec(), o.value.to_vec()))
            .collect();
        assert_eq!(
            ops,
            vec![
                (OpKind::Put, 0, b"d".to_vec(), b"0".to_vec()),
                (OpKind::Put, 7, b"k".to_vec(), b"v".to_vec()),
                (OpKind::Delete, 1 << 20, b"gone".to_vec(), vec![]),
                (OpKind::DeleteRange, 3, b"a".to_vec(), b"c".to_vec()),
                (OpKind::Delete, 3, b"c".to_vec(), vec![]),
                (
                    OpKind::DeleteRange,
                    u32::MAX,
                    b"ab".to_vec(),
                    b"ac".to_vec()
                ),
                (OpKind::DeleteRange, 9, b"x".to_vec(), b"y".to_vec()),
            ]
        );
        // Exact bytes: header (77, 7), put "d" (kind 1), put in 7 (kind 4),
        // delete in 2^20 (kind 5, a 3-byte id), range in 3 (kind 6), and
        // the point delete of its included end, in 3 too.
        let p = b.with_wal_payload(<[u8]>::to_vec);
        assert_eq!(
            &p[..30],
            &[
                77, 7, //
                1, 1, b'd', 1, b'0', //
                4, 7, 1, b'k', 1, b'v', //
                5, 0x80, 0x80, 0x40, 4, b'g', b'o', b'n', b'e', //
                6, 3, 1, b'a', 1, b'c', //
                5, 3,
            ]
        );
        let mut d = WriteBatch::from_wal_record(&p, KEYSPACE_WAL_VERSION).unwrap();
        assert_eq!(d, b, "counters (keyspace ops included) survive decoding");
        assert!(d.has_keyspace_ops());
        assert_eq!(d.with_wal_payload(<[u8]>::to_vec), p);
        // The example of docs/format.md ("Version 4").
        let mut ex = WriteBatch::new();
        ex.put_in_id(7, "k", "v");
        ex.delete("d");
        ex.set_sequence(300);
        assert_eq!(
            ex.with_wal_payload(<[u8]>::to_vec),
            [0xac, 0x02, 2, 4, 7, 1, b'k', 1, b'v', 0, 1, b'd']
        );
        // Every older version refuses the keyspace kinds, at the kind byte.
        for v in 1..KEYSPACE_WAL_VERSION {
            let mut one = WriteBatch::new();
            one.put("d", "0");
            one.put_in_id(7, "k", "v");
            let rec = if v == 1 {
                one.data().to_vec()
            } else {
                one.with_wal_payload(<[u8]>::to_vec)
            };
            let e = WriteBatch::from_wal_record(&rec, v).unwrap_err();
            assert_eq!(e.reason, "unknown operation kind in write batch", "v{v}");
            assert_eq!(e.offset, rec.len() - 6, "v{v}");
        }
        for kind in [4u8, 5, 6] {
            let rec = [1, 1, kind, 7, 1, b'a', 1, b'b'];
            for v in 2..KEYSPACE_WAL_VERSION {
                let e = WriteBatch::from_wal_record(&rec, v).unwrap_err();
                assert_eq!(
                    (e.offset, e.reason),
                    (2, "unknown operation kind in write batch")
                );
            }
            let mut fixed = vec![1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
            fixed.extend_from_slice(&rec[2..]);
            assert_eq!(
                WriteBatch::from_wal_record(&fixed, 1).unwrap_err().offset,
                12
            );
        }
        // Keyspace 0 through the keyspace API: the old kinds, byte for byte.
        let mut old = WriteBatch::new();
        old.put("k", "v");
        old.delete("d");
        old.delete_range("a"..="c");
        old.delete_prefix("p");
        let mut new = WriteBatch::new();
        new.put_in_id(0, "k", "v");
        new.delete_in_id(0, "d");
        new.delete_range_in_id(0, "a"..="c");
        new.delete_prefix_in_id(0, "p");
        assert_eq!(new, old);
        assert!(!new.has_keyspace_ops());
        // The flag follows clear, append and decoding.
        let mut a = WriteBatch::new();
        a.put("x", "1");
        a.append(&old);
        assert!(!a.has_keyspace_ops());
        a.append(&b);
        assert!(a.has_keyspace_ops());
        assert_eq!(a.len(), 1 + old.len() + b.len());
        assert_eq!(a.user_bytes(), 2 + old.user_bytes() + b.user_bytes());
        assert_eq!(a.deletes(), old.deletes() + b.deletes());
        assert_eq!(
            a.approximate_size(),
            BATCH_HEADER_LEN + 5 + (old.approximate_size() - 12) + (b.approximate_size() - 12)
        );
        a.check_limits().unwrap();
        let ad = WriteBatch::from_wal_record(&a.with_wal_payload(<[u8]>::to_vec), 4).unwrap();
        assert_eq!(ad, a);
        a.clear();
        assert!(!a.has_keyspace_ops());
        assert_eq!(a, WriteBatch::new());
        // Limits hold in keyspaces too.
        let mut big = WriteBatch::new();
        big.put_in_id(5, vec![0u8; MAX_KEY_SIZE + 1], "");
        assert!(big.check_limits().is_err());
        let mut big = WriteBatch::new();
        big.put_in_id(5, "k", vec![0u8; MAX_VALUE_SIZE + 1]);
        assert!(big.check_limits().is_err());
        assert!(WriteBatch::from_wal_record(&big.with_wal_payload(<[u8]>::to_vec), 4).is_err());
    }

    /// What no writer writes is refused in a keyspace op: keyspace 0, an
    /// id above 32 bits, a non-minimal id, an empty range, a truncation.
    #[test]
    fn keyspace_ops_decoder_rejects_malformed() {
        let v4 = KEYSPACE_WAL_VERSION;
        let ok = |rec: &[u8]| WriteBatch::from_wal_record(rec, v4);
        // seq 1, count 1, then one op.
        assert!(ok(&[1, 1, 4, 7, 1, b'k', 1, b'v']).is_ok());
        assert!(ok(&[1, 1, 5, 7, 1, b'k']).is_ok());
        assert!(ok(&[1, 1, 6, 7, 1, b'a', 1, b'b']).is_ok());
        for op in [
            &[4u8, 0, 1, b'k', 1, b'v'][..],
            &[5, 0, 1, b'k'],
            &[6, 0, 1, b'a', 1, b'b'],
        ] {
            let mut rec = vec![1, 1];
            rec.extend_from_slice(op);
            let e = ok(&rec).unwrap_err();
            assert_eq!(e.offset, 3, "{op:?}");
            assert!(e.reason.contains("keyspace 0"), "{e:?}");
        }
        // A keyspace id of 2^32.
        let e = ok(&[1, 1, 4, 0x80, 0x80, 0x80, 0x80, 0x10, 1, b'k', 1, b'v']).unwrap_err();
        assert_eq!(e.offset, 3);
        // Largest id: fine.
        assert!(ok(&[1, 1, 5, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, b'k']).is_ok());
        // A non-minimal id (7 as 0x87 0x00).
        assert!(ok(&[1, 1, 5, 0x87, 0x00, 1, b'k']).is_err());
        // Empty and inverted ranges.
        assert!(ok(&[1, 1, 6, 7, 1, b'a', 1, b'a']).is_err());
        assert!(ok(&[1, 1, 6, 7, 1, b'b', 1, b'a']).is_err());
        // A range end above the key limit.
        let mut long_end = vec![1, 1, 6, 7, 1, b'a'];
        let end = vec![b'b'; MAX_KEY_SIZE + 1];
        put_length_prefixed(&mut long_end, &end);
        assert!(ok(&long_end).is_err());
        // Unknown kinds after the keyspace ones.
        for kind in [2u8, 7, 8, 255] {
            assert!(ok(&[1, 1, kind, 7, 1, b'k']).is_err(), "kind {kind}");
        }
        // Every truncation of a batch of every keyspace kind.
        let mut b = WriteBatch::new();
        b.put_in_id(300, "key", "value");
        b.delete_in_id(1, "gone");
        b.delete_range_in_id(2, "a".."b");
        b.set_sequence(5);
        let good = b.with_wal_payload(<[u8]>::to_vec);
        assert!(ok(&good).is_ok());
        for n in 0..good.len() {
            assert!(ok(&good[..n]).is_err(), "len {n}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(ok(&extra).is_err());
    }

    /// An operation of a batch, owned: `(kind, keyspace, key, value)`.
    type OwnedOp = (OpKind, u32, Vec<u8>, Vec<u8>);

    /// A random operation: kind (0 put, 1 delete, 2 range `key..value`),
    /// keyspace (0 half the time), key, value.
    type ArbOp = (u8, u32, Vec<u8>, Vec<u8>);

    fn arb_ops() -> impl Strategy<Value = Vec<ArbOp>> {
        proptest::collection::vec(
            (
                0u8..3,
                prop_oneof![Just(0u32), Just(0), 1u32..200, Just(u32::MAX)],
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            0..50,
        )
    }

    /// The batch of `ops`, and the operations it should hold:
    /// `(kind, keyspace, key, value)`.
    fn build(ops: &[ArbOp]) -> (WriteBatch, Vec<OwnedOp>) {
        let mut b = WriteBatch::new();
        let mut want = Vec::new();
        for (kind, ks, k, v) in ops {
            match kind {
                0 => {
                    b.put_in_id(*ks, k, v);
                    want.push((OpKind::Put, *ks, k.clone(), v.clone()));
                }
                1 => {
                    b.delete_in_id(*ks, k);
                    want.push((OpKind::Delete, *ks, k.clone(), vec![]));
                }
                _ => {
                    b.delete_range_in_id(*ks, k.as_slice()..v.as_slice());
                    if k < v {
                        want.push((OpKind::DeleteRange, *ks, k.clone(), v.clone()));
                    }
                }
            }
        }
        (b, want)
    }

    proptest! {
        #[test]
        fn random_batches_round_trip(ops in arb_ops(), seq in 0u64..(1 << 50)) {
            let (mut b, want) = build(&ops);
            b.set_sequence(seq);
            let p = b.with_wal_payload(<[u8]>::to_vec);
            let d = WriteBatch::from_wal_record(&p, KEYSPACE_WAL_VERSION).unwrap();
            prop_assert_eq!(&d, &b);
            let got: Vec<_> = d
                .iter()
                .map(|o| (o.kind, o.keyspace, o.key.to_vec(), o.value.to_vec()))
                .collect();
            prop_assert_eq!(&got, &want);
            let in_ks = want.iter().any(|o| o.1 != 0);
            prop_assert_eq!(d.has_keyspace_ops(), in_ks);
            // Older versions read it exactly when it needs nothing newer.
            let ranges = want.iter().any(|o| o.0 == OpKind::DeleteRange);
            prop_assert_eq!(WriteBatch::from_wal_record(&p, 3).is_ok(), !in_ks);
            prop_assert_eq!(WriteBatch::from_wal_record(&p, 2).is_ok(), !in_ks && !ranges);
            prop_assert_eq!(
                WriteBatch::from_record(b.data()).is_ok(),
                !in_ks && !ranges
            );
        }

        #[test]
        fn decoder_never_panics_on_random_bytes(d in proptest::collection::vec(any::<u8>(), 0..200)) {
            for v in 1..=KEYSPACE_WAL_VERSION {
                if let Ok(b) = WriteBatch::from_wal_record(&d, v) {
                    prop_assert_eq!(b.iter().count(), b.len());
                }
            }
        }

        #[test]
        fn decoder_never_panics_on_mutations(
            ops in arb_ops(),
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in any::<usize>(),
        ) {
            let (mut b, _) = build(&ops);
            for mut d in [b.data().to_vec(), b.with_wal_payload(<[u8]>::to_vec)] {
                for (p, x) in &muts {
                    let i = p % d.len();
                    d[i] = *x;
                }
                d.truncate(cut % (d.len() + 1));
                for v in 1..=KEYSPACE_WAL_VERSION {
                    if let Ok(b) = WriteBatch::from_wal_record(&d, v) {
                        // A batch that validates iterates fully, and
                        // re-encodes to its bytes.
                        prop_assert_eq!(b.iter().count(), b.len());
                        let ks = b.iter().filter(|o| o.keyspace != 0).count();
                        prop_assert_eq!(b.has_keyspace_ops(), ks > 0);
                        if v >= 2 {
                            let mut b = b;
                            prop_assert_eq!(b.with_wal_payload(<[u8]>::to_vec), d.clone());
                        }
                    }
                }
            }
        }
    }
}
