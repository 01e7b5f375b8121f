//! Snapshots: a pinned sequence number.

use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;

use crate::db::{prefix_bounds, DbInner};
use crate::error::Result;
use crate::iter::db_iter::Iter;
use crate::key::SeqNo;

/// A consistent, read-only view of the database at the moment it was
/// taken. Reads through it never see later writes, whatever flushes (and
/// compactions) happen meanwhile; the versions it can see are kept until it
/// is dropped. `Send + Sync`.
pub struct Snapshot {
    inner: Arc<DbInner>,
    seq: SeqNo,
}

impl Snapshot {
    /// The database this snapshot reads.
    pub(crate) fn inner(&self) -> &Arc<DbInner> {
        &self.inner
    }

    pub(crate) fn new(inner: Arc<DbInner>) -> Self {
        let seq = inner.acquire_snapshot();
        Snapshot { inner, seq }
    }

    /// The sequence number this snapshot reads at.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    /// The value of `key` as of the snapshot, or `None`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "1")?;
    /// let snap = db.snapshot();
    /// db.delete("k")?;
    /// assert_eq!(snap.get("k")?.as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.inner.check_open()?;
        self.inner
            .get_at(self.inner.default_tree(), key.as_ref(), self.seq)
    }

    /// [`get`](Self::get) into `value` (see [`Db::get_into`](crate::Db::get_into)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "1")?;
    /// let snap = db.snapshot();
    /// db.delete("k")?;
    /// let mut value = Vec::new();
    /// assert!(snap.get_into("k", &mut value)?);
    /// assert_eq!(value, b"1");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_into(&self, key: impl AsRef<[u8]>, value: &mut Vec<u8>) -> Result<bool> {
        Ok(crate::db::copy_value_into(self.get(key)?, value))
    }

    /// The pairs in `range` as of the snapshot, in key order (`.rev()` for
    /// reverse).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a", "1")?;
    /// db.put("b", "2")?;
    /// let snap = db.snapshot();
    /// db.put("a1", "later")?;
    /// assert_eq!(snap.range("a".."c").count(), 2); // not a1
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        self.inner.iter_at(
            self.inner.default_tree(),
            Some(self.seq),
            crate::db::to_bound(range.start_bound()),
            crate::db::to_bound(range.end_bound()),
        )
    }

    /// Every pair as of the snapshot.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a", "1")?;
    /// let snap = db.snapshot();
    /// db.put("b", "2")?;
    /// assert_eq!(snap.iter().count(), 1);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs whose keys start with `prefix`, as of the snapshot.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("user/1", "ann")?;
    /// let snap = db.snapshot();
    /// db.put("user/2", "bob")?;
    /// assert_eq!(snap.prefix("user/").count(), 1);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        self.inner
            .iter_at(self.inner.default_tree(), Some(self.seq), lo, hi)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.release_snapshot(self.seq);
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("seq", &self.seq).finish()
    }
}
