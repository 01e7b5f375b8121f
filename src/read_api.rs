//! Reads beyond `get` and `range`: batched lookups (`multi_get`) and the
//! conveniences users reach for (`contains_key`, `first_key_value`,
//! `last_key_value`, `len_approximate`, `compare_and_swap`), and reads
//! with [`ReadOptions`], on the database, keyspaces, snapshots and
//! transactions.

use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;

use crate::db::multi_get::key_slices;
use crate::db::{prefix_bounds, to_bound, Db, DbInner, Tree};
use crate::error::{Error, Result};
use crate::iter::db_iter::Iter;
use crate::keyspace::Keyspace;
use crate::read_options::{FlagScope, ReadOptions};
use crate::snapshot::Snapshot;
use crate::txn::Transaction;

/// Why [`Db::compare_and_swap`] did not swap: the key's value was not the
/// expected one. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareAndSwapError {
    /// The key's value when the swap was tried (`None`: absent).
    pub current: Option<Bytes>,
    /// The value the swap would have written (`None`: a delete).
    pub proposed: Option<Bytes>,
}

impl std::fmt::Display for CompareAndSwapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "compare and swap failed: the key holds {:?}",
            self.current
        )
    }
}

impl std::error::Error for CompareAndSwapError {}

/// The sequence number `ro` reads at on `db` (`None`: now), or an error
/// for a snapshot of another database.
fn read_seq(db: &Arc<DbInner>, ro: &ReadOptions<'_>) -> Result<Option<u64>> {
    match ro.snapshot {
        Some(s) if !Arc::ptr_eq(s.inner(), db) => Err(Error::InvalidArgument(
            "ReadOptions::snapshot is a snapshot of another database".into(),
        )),
        Some(s) => Ok(Some(s.sequence())),
        None => Ok(None),
    }
}

/// `get` of `key` in `tree` with `ro`.
fn get_opt(
    db: &Arc<DbInner>,
    tree: &Tree,
    key: &[u8],
    ro: &ReadOptions<'_>,
) -> Result<Option<Bytes>> {
    db.check_open()?;
    let seq = read_seq(db, ro)?;
    let _flags = FlagScope::enter(ro.flags());
    match seq {
        Some(seq) => db.get_at(tree, key, seq),
        None => db.get_latest(tree, key),
    }
}

/// An iterator over `lo..hi` of `tree` with `ro`.
fn iter_opt(
    db: &Arc<DbInner>,
    tree: &Tree,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    ro: &ReadOptions<'_>,
) -> Iter {
    let seq = match db.check_open().and_then(|()| read_seq(db, ro)) {
        Ok(seq) => seq,
        Err(e) => return Iter::failed(e),
    };
    let (lo, hi) = ro.narrow(lo, hi);
    db.iter_at(tree, seq, lo, hi).with_read_flags(ro.flags())
}

/// The first and last pairs of an iterator (`None` when it is empty).
fn first(mut it: Iter) -> Result<Option<(Bytes, Bytes)>> {
    it.next().transpose()
}

fn last(mut it: Iter) -> Result<Option<(Bytes, Bytes)>> {
    it.next_back().transpose()
}

impl Db {
    /// [`get`](Self::get) with `ro` (a snapshot, cache and checksum
    /// settings).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::ReadOptions;
    ///
    /// db.put("k", "old")?;
    /// let snap = db.snapshot();
    /// db.put("k", "new")?;
    /// let ro = ReadOptions::new().snapshot(&snap);
    /// assert_eq!(db.get_opt("k", &ro)?.as_deref(), Some(&b"old"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_opt(&self, key: impl AsRef<[u8]>, ro: &ReadOptions<'_>) -> Result<Option<Bytes>> {
        get_opt(self.inner(), self.inner().default_tree(), key.as_ref(), ro)
    }

    /// [`range`](Self::range) with `ro`; its iterate bounds narrow `range`.
    pub fn range_opt<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        ro: &ReadOptions<'_>,
    ) -> Iter {
        let (lo, hi) = (to_bound(range.start_bound()), to_bound(range.end_bound()));
        iter_opt(self.inner(), self.inner().default_tree(), lo, hi, ro)
    }

    /// [`iter`](Self::iter) with `ro` (see the [`ReadOptions`] example).
    pub fn iter_opt(&self, ro: &ReadOptions<'_>) -> Iter {
        self.range_opt::<&[u8], _>(.., ro)
    }

    /// [`prefix`](Self::prefix) with `ro`.
    pub fn prefix_opt(&self, prefix: impl AsRef<[u8]>, ro: &ReadOptions<'_>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        iter_opt(self.inner(), self.inner().default_tree(), lo, hi, ro)
    }

    /// The values of `keys`, in the same order, read at one moment (one
    /// superversion, one sequence number): each is what [`get`](Self::get)
    /// would have returned at that moment, which a loop of gets does not
    /// promise while others write. The lookups go in key order and share
    /// their setup; measured on uniformly random keys it is about as fast
    /// as the same gets one by one (each still verifies the checksum of
    /// the block it reads), not faster.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a", "1")?;
    /// db.put("c", "3")?;
    /// let got = db.multi_get(["c", "b", "a"]);
    /// assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&b"3"[..]));
    /// assert_eq!(got[1].as_ref().unwrap(), &None);
    /// assert_eq!(got[2].as_ref().unwrap().as_deref(), Some(&b"1"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<Bytes>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        if let Err(e) = self.inner().check_open() {
            return keys.iter().map(|_| Err(e.clone())).collect();
        }
        self.inner()
            .multi_get(self.inner().default_tree(), None, &key_slices(&keys))
    }

    /// Whether `key` has a value (a [`get`](Self::get) that returns no
    /// value).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// assert!(db.contains_key("k")?);
    /// assert!(!db.contains_key("other")?);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// The pair with the smallest key, or `None` for an empty database.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("b", "2")?;
    /// db.put("a", "1")?;
    /// assert_eq!(db.first_key_value()?.unwrap().0, "a");
    /// assert_eq!(db.last_key_value()?.unwrap().0, "b");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn first_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        first(self.iter())
    }

    /// The pair with the largest key, or `None` for an empty database.
    pub fn last_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        last(self.iter())
    }

    /// An estimate of the number of keys: the entries of the memtables
    /// and SST files minus their tombstones (the property
    /// `lightning.estimate-num-keys`). Overwritten versions not yet
    /// compacted away count more than once, as do merge operands, and range
    /// deletions are not subtracted until compaction applies them; exact
    /// after a full compaction without snapshots of a keyspace without
    /// operands. O(files), no read of data.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// for i in 0..100u32 {
    ///     db.put(i.to_be_bytes(), "v")?;
    /// }
    /// assert_eq!(db.len_approximate(), 100);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn len_approximate(&self) -> u64 {
        self.property_u64("lightning.estimate-num-keys")
            .unwrap_or(0)
    }

    /// Sets `key` to `new` (`None`: deletes it) only if its value is now
    /// `expected` (`None`: absent), atomically against every other writer
    /// (sled's `compare_and_swap`). Returns `Ok(Err(..))` with the current
    /// value when it differs; nothing is written then. Built on an
    /// optimistic transaction that reads the key for update, retried on
    /// conflicts (which are not returned).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// // Create only if absent.
    /// assert!(db.compare_and_swap("lock", None, Some(b"me"))?.is_ok());
    /// let taken = db.compare_and_swap("lock", None, Some(b"you"))?.unwrap_err();
    /// assert_eq!(taken.current.as_deref(), Some(&b"me"[..]));
    /// // Release it.
    /// assert!(db.compare_and_swap("lock", Some(b"me"), None)?.is_ok());
    /// assert_eq!(db.get("lock")?, None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        let key = key.as_ref();
        crate::txn::run_with(self.inner(), &cas_options(), |tx| {
            cas(tx, None, key, expected, new)
        })
    }
}

/// A compare-and-swap retries its transaction until it commits: a
/// conflict only means another writer got there first, and the next try
/// reads what it wrote.
fn cas_options() -> crate::TransactionOptions {
    crate::TransactionOptions::default().max_retries(u32::MAX)
}

/// One try of a compare-and-swap in `tx` (in keyspace `ks`, else the
/// default one).
fn cas(
    tx: &mut Transaction,
    ks: Option<&Keyspace>,
    key: &[u8],
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> Result<std::result::Result<(), CompareAndSwapError>> {
    let current = match ks {
        Some(ks) => tx.get_for_update_in(ks, key)?,
        None => tx.get_for_update(key)?,
    };
    if current.as_deref() != expected {
        return Ok(Err(CompareAndSwapError {
            current,
            proposed: new.map(Bytes::copy_from_slice),
        }));
    }
    match (ks, new) {
        (Some(ks), Some(v)) => tx.put_in(ks, key, v),
        (Some(ks), None) => tx.delete_in(ks, key),
        (None, Some(v)) => tx.put(key, v),
        (None, None) => tx.delete(key),
    }
    Ok(Ok(()))
}

impl Keyspace {
    /// [`Db::get_opt`] in this keyspace.
    pub fn get_opt(&self, key: impl AsRef<[u8]>, ro: &ReadOptions<'_>) -> Result<Option<Bytes>> {
        get_opt(self.db(), self.live_tree()?, key.as_ref(), ro)
    }

    /// [`Db::range_opt`] in this keyspace.
    pub fn range_opt<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        ro: &ReadOptions<'_>,
    ) -> Iter {
        let (lo, hi) = (to_bound(range.start_bound()), to_bound(range.end_bound()));
        match self.live_tree() {
            Ok(tree) => iter_opt(self.db(), tree, lo, hi, ro),
            Err(e) => Iter::failed(e),
        }
    }

    /// [`Db::iter_opt`] in this keyspace.
    pub fn iter_opt(&self, ro: &ReadOptions<'_>) -> Iter {
        self.range_opt::<&[u8], _>(.., ro)
    }

    /// [`Db::prefix_opt`] in this keyspace.
    pub fn prefix_opt(&self, prefix: impl AsRef<[u8]>, ro: &ReadOptions<'_>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        match self.live_tree() {
            Ok(tree) => iter_opt(self.db(), tree, lo, hi, ro),
            Err(e) => Iter::failed(e),
        }
    }

    /// [`Db::multi_get`] in this keyspace.
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<Bytes>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        match self.live_tree() {
            Ok(tree) => self.db().multi_get(tree, None, &key_slices(&keys)),
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// [`Db::contains_key`] in this keyspace.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// [`Db::first_key_value`] in this keyspace.
    pub fn first_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        first(self.iter())
    }

    /// [`Db::last_key_value`] in this keyspace.
    pub fn last_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        last(self.iter())
    }

    /// [`Db::len_approximate`] for this keyspace.
    pub fn len_approximate(&self) -> u64 {
        self.property_u64("lightning.estimate-num-keys")
            .unwrap_or(0)
    }

    /// [`Db::compare_and_swap`] in this keyspace.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        let key = key.as_ref();
        self.live_tree()?;
        crate::txn::run_with(self.db(), &cas_options(), |tx| {
            cas(tx, Some(self), key, expected, new)
        })
    }
}

impl Snapshot {
    /// [`Db::multi_get`] as of the snapshot.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a", "old")?;
    /// let snap = db.snapshot();
    /// db.put("a", "new")?;
    /// assert_eq!(snap.multi_get(["a"])[0].as_ref().unwrap().as_deref(), Some(&b"old"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<Bytes>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        if let Err(e) = self.inner().check_open() {
            return keys.iter().map(|_| Err(e.clone())).collect();
        }
        self.inner().multi_get(
            self.inner().default_tree(),
            Some(self.sequence()),
            &key_slices(&keys),
        )
    }

    /// [`Db::multi_get`] in keyspace `ks` as of the snapshot.
    pub fn multi_get_in<K: AsRef<[u8]>>(
        &self,
        ks: &Keyspace,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<Bytes>>> {
        let keys: Vec<K> = keys.into_iter().collect();
        match ks.check_db(self.inner()).and_then(|()| ks.live_tree()) {
            Ok(tree) => self
                .inner()
                .multi_get(tree, Some(self.sequence()), &key_slices(&keys)),
            Err(e) => keys.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Whether `key` has a value as of the snapshot.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// The pair with the smallest key as of the snapshot.
    pub fn first_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        first(self.iter())
    }

    /// The pair with the largest key as of the snapshot.
    pub fn last_key_value(&self) -> Result<Option<(Bytes, Bytes)>> {
        last(self.iter())
    }
}

impl Transaction {
    /// The values of `keys` as this transaction sees them (its own writes
    /// over its snapshot), in order; each read joins the read set as a
    /// [`get`](Self::get) does.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("a", "1")?;
    /// let mut tx = db.transaction();
    /// tx.put("b", "2");
    /// let got = tx.multi_get(["a", "b", "c"]);
    /// assert_eq!(got[1].as_ref().unwrap().as_deref(), Some(&b"2"[..]));
    /// assert_eq!(got[2].as_ref().unwrap(), &None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn multi_get<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Vec<Result<Option<Bytes>>> {
        keys.into_iter().map(|k| self.get(k)).collect()
    }

    /// Whether `key` has a value as this transaction sees it (a read, as
    /// [`get`](Self::get)).
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }
}
