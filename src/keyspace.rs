//! Keyspaces: named, independent trees in one database (RocksDB's column
//! families, fjall's keyspaces), written together atomically.
//!
//! A [`Keyspace`] is a cheap handle (`Clone + Send + Sync`) from
//! [`Db::keyspace`]. Each keyspace has its own memtables, levels, flushes,
//! compactions and tree options ([`KeyspaceOptions`]); all of them share
//! the database's WAL, sequence numbers, snapshots and caches, so one
//! [`WriteBatch`] may write several keyspaces all or nothing, and one
//! [`Snapshot`] sees every keyspace at the same moment. `Db::put`,
//! `Db::get` and the other `Db` reads and writes act on the keyspace named
//! `default`, which always exists.

use std::ops::RangeBounds;
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::db::{prefix_bounds, to_bound, Db, DbInner, Tree};
use crate::error::{Error, Result};
use crate::iter::db_iter::Iter;
use crate::options::{KeyspaceOptions, WriteOptions};
use crate::snapshot::Snapshot;
use lightning_compaction::stats::CompactionStats;

/// The name of the keyspace `Db::put` and `Db::get` act on (id 0); it
/// always exists and cannot be dropped.
pub const DEFAULT_KEYSPACE_NAME: &str = "default";

/// The longest keyspace name, in bytes of UTF-8.
pub const MAX_KEYSPACE_NAME_LEN: usize = 255;

/// A keyspace of an open database: a handle to read and write it.
///
/// Every call fails with [`Error::KeyspaceDropped`] once the keyspace is
/// dropped, and with [`Error::Closed`] once the database is closed.
#[derive(Clone)]
pub struct Keyspace {
    db: Arc<DbInner>,
    tree: Arc<Tree>,
}

impl std::fmt::Debug for Keyspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.tree.name)
            .field("id", &self.tree.id)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// The keyspace `name`, created with its options from
    /// [`Options::keyspaces`](crate::Options::keyspaces) (else the
    /// database's) when it does not exist. Creating one is durable when
    /// this returns. `"default"` is the keyspace `Db::put` and `Db::get`
    /// use.
    ///
    /// Errors: [`Error::InvalidArgument`] for a name that is empty or
    /// longer than 255 bytes; [`Error::ReadOnly`] to create one through a
    /// read-only handle.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let users = db.keyspace("users")?;
    /// users.put("ann", "admin")?;
    /// assert_eq!(users.get("ann")?.as_deref(), Some(&b"admin"[..]));
    /// assert_eq!(db.get("ann")?, None); // the default keyspace is another one
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        let tree = self.inner().open_keyspace(name, None)?;
        Ok(Keyspace {
            db: Arc::clone(self.inner()),
            tree,
        })
    }

    /// The keyspace `name` with `options`: created with them when
    /// missing; an existing keyspace takes them from now on (new
    /// memtables, flushes and compactions; `compaction.num_levels` cannot
    /// change while open). Options are not stored in the database: pass
    /// them at every open (here or in
    /// [`Options::keyspaces`](crate::Options::keyspaces)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::{Compression, KeyspaceOptions};
    ///
    /// let mut opts = KeyspaceOptions::default();
    /// opts.compression = Compression::Zstd { level: 3 };
    /// opts.bloom_bits_per_key = 16;
    /// let logs = db.keyspace_with("logs", &opts)?;
    /// logs.put("2026-12-04T10:00", "started")?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn keyspace_with(&self, name: &str, options: &KeyspaceOptions) -> Result<Keyspace> {
        let tree = self.inner().open_keyspace(name, Some(options))?;
        Ok(Keyspace {
            db: Arc::clone(self.inner()),
            tree,
        })
    }

    /// Drops the keyspace `name` and everything in it: one manifest
    /// record, durable when this returns; after a crash the keyspace is
    /// either whole or gone. Its handles then fail with
    /// [`Error::KeyspaceDropped`]; its files are deleted once the
    /// iterators and snapshots reading them are done. The name may be
    /// used again for a new, empty keyspace.
    ///
    /// Errors: [`Error::InvalidArgument`] for `default` or a name that is
    /// not a keyspace.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let tmp = db.keyspace("tmp")?;
    /// tmp.put("k", "v")?;
    /// db.drop_keyspace("tmp")?;
    /// assert!(tmp.get("k").is_err());
    /// assert_eq!(db.keyspaces(), ["default"]);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.inner().drop_keyspace(name)
    }

    /// The names of the keyspaces, `default` first, then in creation
    /// order.
    pub fn keyspaces(&self) -> Vec<String> {
        self.inner().keyspace_names()
    }
}

impl Keyspace {
    /// The keyspace's name.
    pub fn name(&self) -> &str {
        &self.tree.name
    }

    /// The tree, or [`Error::KeyspaceDropped`] / [`Error::Closed`].
    fn live(&self) -> Result<&Arc<Tree>> {
        self.db.check_open()?;
        if self.tree.is_dropped() {
            return Err(Error::KeyspaceDropped(self.tree.name.clone()));
        }
        Ok(&self.tree)
    }

    /// Checks that `self` belongs to the database of `db`.
    pub(crate) fn check_db(&self, db: &Arc<DbInner>) -> Result<()> {
        if Arc::ptr_eq(&self.db, db) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "keyspace `{}` belongs to another database",
                self.tree.name
            )))
        }
    }

    /// The tree, or [`Error::KeyspaceDropped`] / [`Error::Closed`].
    pub(crate) fn live_tree(&self) -> Result<&Arc<Tree>> {
        self.live()
    }

    /// The database this keyspace belongs to.
    pub(crate) fn db(&self) -> &Arc<DbInner> {
        &self.db
    }

    /// The keyspace's id (for batches).
    pub(crate) fn id(&self) -> u32 {
        self.tree.id
    }

    /// The keyspace's tree.
    pub(crate) fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    fn write(&self, batch: WriteBatch, opts: Option<&WriteOptions>) -> Result<()> {
        self.live()?;
        let sync = opts.map_or(self.db.default_sync(), |o| o.sync);
        self.db.write_user(batch, sync)
    }

    /// Sets `key` to `value` in this keyspace (see [`Db::put`]).
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.put_in_id(self.tree.id, key, value);
        self.write(b, None)
    }

    /// Merges `operand` into `key` in this keyspace with its merge
    /// operator (see [`Db::merge`]).
    pub fn merge(&self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.merge_in_id(self.tree.id, key, operand);
        self.write(b, None)
    }

    /// [`merge`](Self::merge) with `opts`.
    pub fn merge_opt(
        &self,
        key: impl AsRef<[u8]>,
        operand: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.merge_in_id(self.tree.id, key, operand);
        self.write(b, Some(opts))
    }

    /// [`put`](Self::put) with `opts`.
    pub fn put_opt(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        opts: &WriteOptions,
    ) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.put_in_id(self.tree.id, key, value);
        self.write(b, Some(opts))
    }

    /// Deletes `key` from this keyspace (see [`Db::delete`]).
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.delete_in_id(self.tree.id, key);
        self.write(b, None)
    }

    /// [`delete`](Self::delete) with `opts`.
    pub fn delete_opt(&self, key: impl AsRef<[u8]>, opts: &WriteOptions) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.delete_in_id(self.tree.id, key);
        self.write(b, Some(opts))
    }

    /// Deletes every key of this keyspace in `range` with one range
    /// tombstone (see [`Db::delete_range`]).
    pub fn delete_range<K: AsRef<[u8]>>(&self, range: impl RangeBounds<K>) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.delete_range_in_id(self.tree.id, range);
        self.write(b, None)
    }

    /// Deletes every key of this keyspace starting with `prefix` (see
    /// [`Db::delete_prefix`]).
    pub fn delete_prefix(&self, prefix: impl AsRef<[u8]>) -> Result<()> {
        let mut b = crate::db::take_spare_batch();
        b.delete_prefix_in_id(self.tree.id, prefix);
        self.write(b, None)
    }

    /// The current value of `key` in this keyspace (see [`Db::get`]).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let tree = self.live()?;
        self.db.get_latest(tree, key.as_ref())
    }

    /// [`get`](Self::get) into `value` (see [`Db::get_into`](crate::Db::get_into)).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let ks = db.keyspace("users")?;
    /// ks.put("k", "v")?;
    /// let mut value = Vec::new();
    /// assert!(ks.get_into("k", &mut value)?);
    /// assert_eq!(value, b"v");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_into(&self, key: impl AsRef<[u8]>, value: &mut Vec<u8>) -> Result<bool> {
        let tree = self.live()?;
        self.db.get_latest_into(tree, key.as_ref(), value)
    }

    /// The pairs of this keyspace whose keys lie in `range`, in key order
    /// (`.rev()` for reverse), as of this call (see [`Db::range`]).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self.live() {
            Ok(tree) => self.db.iter_at(
                tree,
                None,
                to_bound(range.start_bound()),
                to_bound(range.end_bound()),
            ),
            Err(e) => Iter::failed(e),
        }
    }

    /// Every pair of this keyspace, in key order.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The pairs of this keyspace whose keys start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match self.live() {
            Ok(tree) => {
                let (lo, hi) = prefix_bounds(prefix.as_ref());
                self.db.iter_at(tree, None, lo, hi)
            }
            Err(e) => Iter::failed(e),
        }
    }

    /// Flushes, then compacts the files of this keyspace holding keys in
    /// `range` down to its last level (see [`Db::compact_range`]).
    pub fn compact_range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Result<()> {
        let tree = self.live()?;
        self.db.writable()?;
        self.db.compact_range(
            tree,
            to_bound(range.start_bound()),
            to_bound(range.end_bound()),
        )
    }

    /// Ingests SST files made by [`crate::SstWriter`] into this keyspace
    /// (see [`Db::ingest`]).
    pub fn ingest<P: AsRef<std::path::Path>>(
        &self,
        files: &[P],
        opts: &crate::IngestOptions,
    ) -> Result<()> {
        self.live()?;
        let files: Vec<std::path::PathBuf> =
            files.iter().map(|p| p.as_ref().to_path_buf()).collect();
        self.db.ingest(&self.tree, &files, opts)?;
        self.db.maybe_schedule_compaction();
        Ok(())
    }

    /// This keyspace's compaction statistics (see [`Db::compaction_stats`]).
    pub fn compaction_stats(&self) -> Result<CompactionStats> {
        Ok(self.db.compaction_stats(self.live()?))
    }

    /// A property of this keyspace (see [`Db::property`]): the per-tree
    /// ones (files, levels, memtables, compaction) are this keyspace's,
    /// the others the database's. `None` for an unknown name or a dropped
    /// keyspace.
    pub fn property(&self, name: &str) -> Option<String> {
        self.db.property_string(self.live().ok()?, name)
    }

    /// An integer property of this keyspace (see [`Keyspace::property`]).
    pub fn property_u64(&self, name: &str) -> Option<u64> {
        self.db.property_int(self.live().ok()?, name)
    }
}

impl WriteBatch {
    /// Sets `key` to `value` in keyspace `ks` (a batch may write several
    /// keyspaces; [`Db::write`] applies it all or nothing). A batch must
    /// be written to the database `ks` belongs to.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::WriteBatch;
    ///
    /// let (users, index) = (db.keyspace("users")?, db.keyspace("by_email")?);
    /// let mut b = WriteBatch::new();
    /// b.put_in(&users, "u1", "ann@example.com");
    /// b.put_in(&index, "ann@example.com", "u1");
    /// db.write(b)?; // both, or neither after a crash
    /// assert_eq!(index.get("ann@example.com")?.as_deref(), Some(&b"u1"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn put_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.put_in_id(ks.id(), key, value);
    }

    /// Merges `operand` into `key` of keyspace `ks` (see
    /// [`WriteBatch::merge`]).
    pub fn merge_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) {
        self.merge_in_id(ks.id(), key, operand);
    }

    /// Deletes `key` from keyspace `ks` (see [`WriteBatch::put_in`]).
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) {
        self.delete_in_id(ks.id(), key);
    }

    /// Deletes every key of keyspace `ks` in `range` (see
    /// [`WriteBatch::delete_range`]).
    pub fn delete_range_in<K: AsRef<[u8]>>(&mut self, ks: &Keyspace, range: impl RangeBounds<K>) {
        self.delete_range_in_id(ks.id(), range);
    }

    /// Deletes every key of keyspace `ks` starting with `prefix`.
    pub fn delete_prefix_in(&mut self, ks: &Keyspace, prefix: impl AsRef<[u8]>) {
        self.delete_prefix_in_id(ks.id(), prefix);
    }
}

impl Snapshot {
    /// The value of `key` in keyspace `ks` as of the snapshot (see
    /// [`Snapshot::get`]). One snapshot sees every keyspace at the same
    /// sequence number.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let ks = db.keyspace("users")?;
    /// ks.put("k", "old")?;
    /// let snap = db.snapshot();
    /// ks.put("k", "new")?;
    /// assert_eq!(snap.get_in(&ks, "k")?.as_deref(), Some(&b"old"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        ks.check_db(self.inner())?;
        let tree = ks.live()?;
        self.inner().get_at(tree, key.as_ref(), self.sequence())
    }

    /// The pairs of keyspace `ks` in `range` as of the snapshot.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, ks: &Keyspace, range: R) -> Iter {
        match ks.check_db(self.inner()).and_then(|()| ks.live()) {
            Ok(tree) => self.inner().iter_at(
                tree,
                Some(self.sequence()),
                to_bound(range.start_bound()),
                to_bound(range.end_bound()),
            ),
            Err(e) => Iter::failed(e),
        }
    }

    /// Every pair of keyspace `ks` as of the snapshot.
    pub fn iter_in(&self, ks: &Keyspace) -> Iter {
        self.range_in::<&[u8], _>(ks, ..)
    }

    /// The pairs of keyspace `ks` whose keys start with `prefix`, as of
    /// the snapshot.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> Iter {
        match ks.check_db(self.inner()).and_then(|()| ks.live()) {
            Ok(tree) => {
                let (lo, hi) = prefix_bounds(prefix.as_ref());
                self.inner().iter_at(tree, Some(self.sequence()), lo, hi)
            }
            Err(e) => Iter::failed(e),
        }
    }
}
