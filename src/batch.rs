//! [`WriteBatch`]: a group of puts and deletes applied atomically.
//!
//! A batch keeps its operations already encoded in the write-ahead-log
//! payload format (docs/format.md, "WAL record payload: a write batch"):
//!
//! ```text
//! sequence: u64 LE ‖ count: u32 LE ‖ count × (kind: u8, key: lp-bytes, [value: lp-bytes])
//! ```
//!
//! where kind is 0 (delete), 1 (put) or 3 (delete range: the key is the
//! range's start, the "value" its end). Kind 3 is only written to and read
//! from WALs of format version 3.
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

use crate::coding::{encode_varint64, put_length_prefixed, Cursor, DecodeError, MAX_VARINT64_LEN};
use crate::error::{Error, Result};
use crate::key::{SeqNo, ValueKind, MAX_SEQUENCE};
use crate::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Bytes of the batch header: sequence (8) and count (4).
pub(crate) const BATCH_HEADER_LEN: usize = 12;

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
}

impl OpKind {
    /// The operation's byte in the encoding.
    pub(crate) fn code(self) -> u8 {
        match self {
            OpKind::Delete => 0,
            OpKind::Put => 1,
            OpKind::DeleteRange => 3,
        }
    }

    /// Decodes an operation byte of a WAL of format `version`: delete
    /// range only from version 3 on.
    pub(crate) fn from_code(b: u8, version: u32) -> Option<OpKind> {
        match b {
            0 => Some(OpKind::Delete),
            1 => Some(OpKind::Put),
            3 if version >= 3 => Some(OpKind::DeleteRange),
            _ => None,
        }
    }

    /// The internal-key kind of a point operation (`None` for a range).
    pub(crate) fn value_kind(self) -> Option<ValueKind> {
        match self {
            OpKind::Delete => Some(ValueKind::Delete),
            OpKind::Put => Some(ValueKind::Value),
            OpKind::DeleteRange => None,
        }
    }
}

/// One operation of a batch, borrowed from its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOp<'a> {
    /// Put, delete or delete range.
    pub kind: OpKind,
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
        let (key, value) = (key.as_ref(), value.as_ref());
        self.rep.reserve(1 + 10 + key.len() + 10 + value.len());
        self.rep.push(OpKind::Put.code());
        put_length_prefixed(&mut self.rep, key);
        put_length_prefixed(&mut self.rep, value);
        self.max_key = self.max_key.max(key.len());
        self.max_value = self.max_value.max(value.len());
        self.user_bytes += (key.len() + value.len()) as u64;
        self.set_ops(self.ops + 1);
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
        let key = key.as_ref();
        self.rep.reserve(1 + 10 + key.len());
        self.rep.push(OpKind::Delete.code());
        put_length_prefixed(&mut self.rep, key);
        self.max_key = self.max_key.max(key.len());
        self.user_bytes += key.len() as u64;
        self.deletes += 1;
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
            Bound::Excluded(end) => self.push_range_tombstone(&start, end.as_ref()),
            Bound::Included(last) => {
                let last = last.as_ref();
                if *start <= *last {
                    self.push_range_tombstone(&start, last);
                    self.delete(last);
                }
            }
            Bound::Unbounded => {
                let last = [0xffu8; MAX_KEY_SIZE];
                if *start <= last[..] {
                    self.push_range_tombstone(&start, &last);
                    self.delete(last);
                }
            }
        }
    }

    /// Adds "delete every key starting with `prefix`" (an empty prefix:
    /// every key), as [`delete_range`](Self::delete_range).
    pub fn delete_prefix(&mut self, prefix: impl AsRef<[u8]>) {
        let prefix = prefix.as_ref();
        match crate::iter::db_iter::prefix_successor(prefix) {
            Some(end) => self.push_range_tombstone(prefix, &end),
            None => self.delete_range(prefix..),
        }
    }

    /// Adds the range tombstone `[start, end)` (nothing when empty).
    pub(crate) fn push_range_tombstone(&mut self, start: &[u8], end: &[u8]) {
        if start >= end {
            return;
        }
        self.rep.reserve(1 + 10 + start.len() + 10 + end.len());
        self.rep.push(OpKind::DeleteRange.code());
        put_length_prefixed(&mut self.rep, start);
        put_length_prefixed(&mut self.rep, end);
        self.max_key = self.max_key.max(start.len()).max(end.len());
        self.user_bytes += (start.len() + end.len()) as u64;
        self.set_ops(self.ops + 1);
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
    }

    /// Sum of the key and value lengths in the batch.
    pub(crate) fn user_bytes(&self) -> u64 {
        self.user_bytes
    }

    /// Number of delete operations in the batch.
    pub(crate) fn deletes(&self) -> u64 {
        self.deletes
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
        let (mut max_key, mut max_value, mut user_bytes, mut deletes) =
            (0usize, 0usize, 0u64, 0u64);
        for _ in 0..count {
            let at = c.position();
            let kind = OpKind::from_code(c.u8("truncated write batch operation")?, version).ok_or(
                DecodeError {
                    offset: at,
                    reason: "unknown operation kind in write batch",
                },
            )?;
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
                OpKind::Put => {
                    let value_at = c.position();
                    let value = c.length_prefixed("write batch value runs past the record")?;
                    if value.len() > MAX_VALUE_SIZE {
                        return Err(DecodeError {
                            offset: value_at,
                            reason: "write batch value longer than MAX_VALUE_SIZE",
                        });
                    }
                    max_value = max_value.max(value.len());
                    user_bytes += value.len() as u64;
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
            let kind = OpKind::from_code(self.cursor.u8("kind").ok()?, u32::MAX)?;
            let key = self.cursor.length_prefixed("key").ok()?;
            let value = if kind == OpKind::Delete {
                &[][..]
            } else {
                self.cursor.length_prefixed("value").ok()?
            };
            Some(BatchOp { kind, key, value })
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

    fn arb_ops() -> impl Strategy<Value = Vec<(bool, Vec<u8>, Vec<u8>)>> {
        proptest::collection::vec(
            (
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            0..50,
        )
    }

    proptest! {
        #[test]
        fn random_batches_round_trip(ops in arb_ops(), seq in 0u64..(1 << 50)) {
            let mut b = WriteBatch::new();
            for (put, k, v) in &ops {
                if *put { b.put(k, v) } else { b.delete(k) }
            }
            b.set_sequence(seq);
            let d = WriteBatch::from_record(b.data()).unwrap();
            prop_assert_eq!(&d, &b);
            let got = ops_of(&d);
            prop_assert_eq!(got.len(), ops.len());
            for ((put, k, v), (kind, gk, gv)) in ops.iter().zip(got) {
                prop_assert_eq!(kind == OpKind::Put, *put);
                prop_assert_eq!(&gk, k);
                if *put { prop_assert_eq!(&gv, v) } else { prop_assert!(gv.is_empty()) }
            }
        }

        #[test]
        fn decoder_never_panics_on_random_bytes(d in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(b) = WriteBatch::from_record(&d) {
                prop_assert_eq!(b.iter().count(), b.len());
            }
        }

        #[test]
        fn decoder_never_panics_on_mutations(
            ops in arb_ops(),
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in any::<usize>(),
        ) {
            let mut b = WriteBatch::new();
            for (put, k, v) in &ops {
                if *put { b.put(k, v) } else { b.delete(k) }
            }
            let mut d = b.data().to_vec();
            for (p, x) in muts {
                let i = p % d.len();
                d[i] = x;
            }
            d.truncate(cut % (d.len() + 1));
            if let Ok(b) = WriteBatch::from_record(&d) {
                // A batch that validates iterates fully.
                prop_assert_eq!(b.iter().count(), b.len());
            }
        }
    }
}
