//! Optimistic transactions with snapshot isolation (and, on request,
//! serializable validation). See `docs/transactions.md`.
//!
//! A [`Transaction`] reads at a [`Snapshot`] taken when it begins, buffers
//! its writes in memory (a sorted write set that its own reads see), and at
//! commit hands the write set to the write group as one [`WriteBatch`]
//! together with a [`validate::CommitCheck`]. The group leader validates
//! it against every commit ordered before it and either numbers and writes
//! the batch or answers [`Error::Conflict`] (see [`validate`] for why that
//! is exact under concurrent commits, flushes and compactions).
//!
//! Invariants:
//! - The snapshot is registered (and so its versions kept by flush and
//!   compaction) from `begin` until the transaction is committed, rolled
//!   back or dropped.
//! - Nothing reaches the database before commit; a failed or abandoned
//!   transaction leaves no trace.
//! - Memory: the write set (keys and values written), the `get_for_update`
//!   keys, and under serializable isolation the keys read and the ranges
//!   scanned. No value read is kept.
//!
//! Thread safety: a `Transaction` is `Send` (move it to another thread)
//! but not `Sync`: one thread uses it at a time. Any number of
//! transactions, plain writes and reads run concurrently.

mod merge_iter;
pub(crate) mod validate;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use merge_iter::TxnIter;

use crate::batch::WriteBatch;
use crate::db::{prefix_bounds, to_bound, Db, DbInner, Tree};
use crate::error::{ConflictKind, Error, Result};
use crate::iter::db_iter::Iter;
use crate::keyspace::Keyspace;
use crate::options::WriteOptions;
use crate::snapshot::Snapshot;
use merge_iter::{OwnWrite, WriteSet};
use validate::{range_is_empty, CommitCheck, KeyRange};

/// How much a transaction's commit validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Snapshot isolation (the default): every read sees the snapshot
    /// taken at `begin` (plus the transaction's own writes), and the commit
    /// fails if another commit wrote a key this transaction writes, or read
    /// with [`Transaction::get_for_update`], after the snapshot ("first
    /// committer wins"). Prevents dirty reads, non-repeatable reads,
    /// phantoms within the transaction and lost updates; allows **write
    /// skew**: two transactions that each read what the other writes, and
    /// write disjoint keys, both commit. Use `get_for_update` on the keys
    /// a decision depends on, or [`IsolationLevel::Serializable`].
    #[default]
    Snapshot,
    /// Snapshot isolation plus validation of the read set: the commit of a
    /// transaction that writes also fails if any key it read (found or
    /// not) or any key in any range it scanned was written after its
    /// snapshot. Committed writing transactions are then serializable in
    /// commit order, and a read-only transaction in the order of its
    /// snapshot (so it commits without validation). Costs memory for the
    /// read set and commit time to check it; more aborts.
    Serializable,
}

/// Options of a transaction. `TransactionOptions::default()` is snapshot
/// isolation, the database's default write options, and 16 retries for
/// [`Db::transaction_with_opt`].
///
/// `#[non_exhaustive]`: build one from `default()` or
/// [`serializable()`](Self::serializable) and the setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TransactionOptions {
    /// What the commit validates.
    pub isolation: IsolationLevel,
    /// Whether [`Transaction::commit`] syncs the WAL (see
    /// [`WriteOptions::sync`]); `None` uses [`crate::Options::sync_writes`],
    /// as [`Db::write`] does.
    pub sync: Option<bool>,
    /// How many times [`Db::transaction_with_opt`] runs the closure again
    /// after an [`Error::Conflict`] before returning that error.
    pub max_retries: u32,
}

impl Default for TransactionOptions {
    fn default() -> Self {
        TransactionOptions {
            isolation: IsolationLevel::Snapshot,
            sync: None,
            max_retries: 16,
        }
    }
}

impl TransactionOptions {
    /// The default options with [`IsolationLevel::Serializable`].
    pub fn serializable() -> Self {
        TransactionOptions {
            isolation: IsolationLevel::Serializable,
            ..TransactionOptions::default()
        }
    }

    /// Sets [`TransactionOptions::isolation`].
    #[must_use]
    pub fn isolation(mut self, isolation: IsolationLevel) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets [`TransactionOptions::max_retries`].
    #[must_use]
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets [`TransactionOptions::sync`] to `Some(sync)`: the commit syncs
    /// the WAL, or not, whatever [`crate::Options::sync_writes`] says.
    #[must_use]
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = Some(sync);
        self
    }
}

/// What a serializable transaction read from its snapshot, in one
/// keyspace.
#[derive(Debug, Default)]
struct ReadSet {
    keys: BTreeSet<Bytes>,
    ranges: Vec<KeyRange>,
}

/// What a transaction wrote in one keyspace, and the keys it read there
/// with `get_for_update`.
#[derive(Debug, Default)]
struct Part {
    writes: WriteSet,
    for_update: BTreeSet<Bytes>,
}

/// An optimistic transaction: reads at a snapshot taken when it began,
/// buffers its writes, and applies them atomically at [`commit`] unless
/// another commit conflicts (then nothing is written and `commit` returns
/// [`Error::Conflict`]). Begin one with [`Db::transaction`], or let
/// [`Db::transaction_with`] run and retry it.
///
/// Dropping a transaction without committing rolls it back.
///
/// **Keep transactions short.** An open transaction holds its snapshot, so
/// flush and compaction keep every version it could read (all overwritten
/// and deleted data newer than it stays on disk, and in memory until
/// flushed), and the longer it runs the likelier its commit conflicts.
/// Its memory grows with its own writes (and, serializable, its reads).
///
/// `Send`, not `Sync`.
///
/// ```
/// # fn main() -> lightning_db::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use lightning_db::{Db, Options};
///
/// let db = Db::open(dir.path(), Options::default())?;
/// db.put("alice", "100")?;
/// let balance = |v: Option<lightning_db::Bytes>| -> u64 {
///     v.map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap())
/// };
/// // Move 10 from alice to bob, all or nothing; run again on a conflict.
/// db.transaction_with(|tx| {
///     let (a, b) = (balance(tx.get("alice")?), balance(tx.get("bob")?));
///     tx.put("alice", (a - 10).to_string());
///     tx.put("bob", (b + 10).to_string());
///     Ok(())
/// })?;
/// assert_eq!(balance(db.get("bob")?), 10);
/// # Ok(())
/// # }
/// ```
///
/// [`commit`]: Transaction::commit
pub struct Transaction {
    inner: Arc<DbInner>,
    snapshot: Snapshot,
    opts: TransactionOptions,
    /// Per keyspace id (the default keyspace, 0, always present): its
    /// writes and `get_for_update` keys.
    parts: BTreeMap<u32, Part>,
    /// Per keyspace id, what was read (filled only under serializable
    /// isolation; a `RefCell` so reads take `&self`).
    reads: RefCell<BTreeMap<u32, ReadSet>>,
    /// The commit ran (and was counted); otherwise dropping it counts a
    /// rollback.
    finished: bool,
    /// A keyspace of another database this transaction was asked to
    /// write (the commit then fails).
    foreign_keyspace: Option<String>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("snapshot", &self.snapshot.sequence())
            .field("isolation", &self.opts.isolation)
            .field(
                "writes",
                &self.parts.values().map(|p| p.writes.len()).sum::<usize>(),
            )
            .field("keyspaces", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Begins a transaction with snapshot isolation at the current state
    /// (see [`Transaction`]). Never fails; errors come from its reads and
    /// its commit.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let mut tx = db.transaction();
    /// tx.put("k", "v");
    /// assert_eq!(db.get("k")?, None); // not visible before the commit
    /// tx.commit()?;
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"v"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn transaction(&self) -> Transaction {
        self.transaction_opt(&TransactionOptions::default())
    }

    /// Begins a transaction with `opts`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::TransactionOptions;
    ///
    /// let mut tx = db.transaction_opt(&TransactionOptions::serializable().sync(true));
    /// let seen = tx.get("counter")?; // read set: a conflicting write aborts the commit
    /// tx.put("counter", if seen.is_some() { "2" } else { "1" });
    /// tx.commit()?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn transaction_opt(&self, opts: &TransactionOptions) -> Transaction {
        begin(self.inner(), opts)
    }

    /// Runs `f` in a new transaction and commits it; on
    /// [`Error::Conflict`] (from the commit, or returned by `f`) runs `f`
    /// again in a fresh transaction, after a randomized, exponentially
    /// growing pause, up to 16 retries. `f` may therefore run more than
    /// once: keep side effects outside the database out of it.
    ///
    /// Returns `f`'s value once the commit succeeded. Any other error from
    /// `f` or the commit is returned at once, and the transaction is rolled
    /// back; so is the last conflict when the retries run out.
    ///
    /// **Blocking.** Like every `Db` call this blocks the calling thread
    /// (reads and the commit's WAL write and fsync), and between retries
    /// it sleeps (at most 10 ms each). From an async runtime, run it on a
    /// blocking thread (`tokio::task::spawn_blocking`, see
    /// `examples/async_service.rs`), or build the retry loop yourself from
    /// [`Db::transaction`] and [`Error::is_conflict`] with the runtime's
    /// own sleep.
    pub fn transaction_with<T>(&self, f: impl FnMut(&mut Transaction) -> Result<T>) -> Result<T> {
        self.transaction_with_opt(&TransactionOptions::default(), f)
    }

    /// [`Db::transaction_with`] with `opts` (isolation, sync, number of
    /// retries).
    pub fn transaction_with_opt<T>(
        &self,
        opts: &TransactionOptions,
        f: impl FnMut(&mut Transaction) -> Result<T>,
    ) -> Result<T> {
        run_with(self.inner(), opts, f)
    }
}

/// A new transaction on `inner` (see [`Db::transaction_opt`]).
pub(crate) fn begin(inner: &Arc<DbInner>, opts: &TransactionOptions) -> Transaction {
    let inner = Arc::clone(inner);
    inner.record_txn_begin();
    Transaction {
        snapshot: Snapshot::new(Arc::clone(&inner)),
        inner,
        opts: *opts,
        parts: BTreeMap::from([(0, Part::default())]),
        reads: RefCell::new(BTreeMap::new()),
        finished: false,
        foreign_keyspace: None,
    }
}

/// Runs `f` in transactions on `inner` until one commits (see
/// [`Db::transaction_with_opt`]).
pub(crate) fn run_with<T>(
    inner: &Arc<DbInner>,
    opts: &TransactionOptions,
    mut f: impl FnMut(&mut Transaction) -> Result<T>,
) -> Result<T> {
    let mut retry = 0u32;
    loop {
        let mut tx = begin(inner, opts);
        let result = f(&mut tx).and_then(|v| tx.commit().map(|()| v));
        match result {
            Err(e) if e.is_conflict() && retry < opts.max_retries => {
                std::thread::sleep(backoff(retry));
                retry += 1;
            }
            other => return other,
        }
    }
}

/// Pause before retry `retry` (0-based): uniform in `[0, min(50 µs ·
/// 2^retry, 10 ms)]` ("full jitter"), so that transactions that
/// conflicted do not meet again in lockstep.
fn backoff(retry: u32) -> Duration {
    const BASE_MICROS: u64 = 50;
    const CAP_MICROS: u64 = 10_000;
    let cap = BASE_MICROS
        .saturating_mul(1u64 << retry.min(20))
        .min(CAP_MICROS);
    // A fresh `RandomState` hashes with new keys each time: a cheap random
    // number without a dependency.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(retry);
    Duration::from_micros(h.finish() % (cap + 1))
}

impl Transaction {
    /// The sequence number of the snapshot this transaction reads at.
    pub fn snapshot_sequence(&self) -> u64 {
        self.snapshot.sequence()
    }

    /// The isolation level the commit validates.
    pub fn isolation(&self) -> IsolationLevel {
        self.opts.isolation
    }

    fn serializable(&self) -> bool {
        self.opts.isolation == IsolationLevel::Serializable
    }

    /// The value of `key` as this transaction sees it: its own latest put
    /// or delete of `key`, else the snapshot's value; `None` when absent.
    /// Under serializable isolation a key read from the snapshot joins the
    /// read set (absent keys too: a later insert is a conflict).
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        self.get_part(self.inner.default_tree(), key.as_ref())
    }

    /// [`get`](Self::get) into `value` (see [`Db::get_into`](crate::Db::get_into));
    /// the read joins the read set as `get`'s does.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let mut tx = db.transaction();
    /// tx.put("k", "mine");
    /// let mut value = Vec::new();
    /// assert!(tx.get_into("k", &mut value)?);
    /// assert_eq!(value, b"mine");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_into(&self, key: impl AsRef<[u8]>, value: &mut Vec<u8>) -> Result<bool> {
        Ok(crate::db::copy_value_into(self.get(key)?, value))
    }

    /// [`get`](Self::get) in keyspace `ks`. A transaction reads every
    /// keyspace at its one snapshot.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let (stock, orders) = (db.keyspace("stock")?, db.keyspace("orders")?);
    /// stock.put("apple", "3")?;
    /// db.transaction_with(|tx| {
    ///     let n: u32 = std::str::from_utf8(&tx.get_for_update_in(&stock, "apple")?.unwrap())
    ///         .unwrap()
    ///         .parse()
    ///         .unwrap();
    ///     tx.put_in(&stock, "apple", (n - 1).to_string());
    ///     tx.put_in(&orders, "o1", "apple");
    ///     Ok(())
    /// })?;
    /// assert_eq!(stock.get("apple")?.as_deref(), Some(&b"2"[..]));
    /// assert!(orders.get("o1")?.is_some());
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_in(&self, ks: &Keyspace, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        ks.check_db(&self.inner)?;
        self.get_part(ks.tree(), key.as_ref())
    }

    fn get_part(&self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>> {
        let part = self.parts.get(&tree.id);
        if let Some(own) = part.and_then(|p| p.writes.get(key)) {
            return own.value(
                key,
                || self.snapshot_get(tree, key),
                tree.merge_operator().as_ref(),
            );
        }
        let v = self.snapshot_get(tree, key)?;
        if self.serializable() && !part.is_some_and(|p| p.for_update.contains(key)) {
            self.reads
                .borrow_mut()
                .entry(tree.id)
                .or_default()
                .keys
                .insert(Bytes::copy_from_slice(key));
        }
        Ok(v)
    }

    fn snapshot_get(&self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.check_open()?;
        if tree.is_dropped() {
            return Err(Error::KeyspaceDropped(tree.name.clone()));
        }
        self.inner.get_at(tree, key, self.snapshot.sequence())
    }

    /// [`get`](Self::get), and records `key` for conflict checking at every
    /// isolation level, as if the transaction wrote it: the commit fails
    /// if another commit wrote `key` after the snapshot, even when this
    /// transaction does not write it. Use it on the keys a decision depends
    /// on, to rule out write skew without serializable isolation.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("stock", "5")?;
    /// let mut tx = db.transaction();
    /// let n: u32 = std::str::from_utf8(&tx.get_for_update("stock")?.unwrap()).unwrap().parse().unwrap();
    /// tx.put("stock", (n - 1).to_string());
    /// // A commit that wrote "stock" meanwhile would make this one fail with a conflict.
    /// tx.commit()?;
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn get_for_update(&mut self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        let tree = Arc::clone(self.inner.default_tree());
        self.get_for_update_part(&tree, key.as_ref())
    }

    /// [`get_for_update`](Self::get_for_update) in keyspace `ks`.
    pub fn get_for_update_in(
        &mut self,
        ks: &Keyspace,
        key: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>> {
        ks.check_db(&self.inner)?;
        self.get_for_update_part(ks.tree(), key.as_ref())
    }

    fn get_for_update_part(&mut self, tree: &Tree, key: &[u8]) -> Result<Option<Bytes>> {
        let part = self.parts.entry(tree.id).or_default();
        if !part.for_update.contains(key) {
            part.for_update.insert(Bytes::copy_from_slice(key));
        }
        self.get_part(tree, key)
    }

    /// Sets `key` to `value` in this transaction (visible to its own reads
    /// at once, to others after commit). Keys above [`crate::MAX_KEY_SIZE`]
    /// or values above [`crate::MAX_VALUE_SIZE`] make the commit fail with
    /// [`Error::InvalidArgument`].
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.write_part(0, key.as_ref(), Some(value.as_ref()));
    }

    /// [`put`](Self::put) in keyspace `ks` (committed with the rest of the
    /// transaction, all or nothing). `ks` must belong to this
    /// transaction's database, or the commit fails.
    pub fn put_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.note_keyspace(ks);
        self.write_part(ks.id(), key.as_ref(), Some(value.as_ref()));
    }

    /// Merges `operand` into `key` in this transaction ([`Db::merge`]):
    /// its own reads fold it at once, onto its own put or delete of the
    /// key or else onto the snapshot's value; the commit writes it as a
    /// merge. The key counts as written for conflict checks. Without a
    /// merge operator the commit fails with `InvalidArgument`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::sync::Arc;
    /// use lightning_db::{Db, Options, U64AddOperator};
    ///
    /// let db = Db::open(dir.path(), Options::new().merge_operator(Some(Arc::new(U64AddOperator))))?;
    /// db.put("stock", 10u64.to_le_bytes())?;
    /// let mut tx = db.transaction();
    /// tx.merge("stock", 5u64.to_le_bytes());
    /// assert_eq!(tx.get("stock")?.as_deref(), Some(&15u64.to_le_bytes()[..]));
    /// tx.commit()?;
    /// assert_eq!(db.get("stock")?.as_deref(), Some(&15u64.to_le_bytes()[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn merge(&mut self, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) {
        self.merge_part(0, key.as_ref(), operand.as_ref());
    }

    /// [`merge`](Self::merge) in keyspace `ks`.
    pub fn merge_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>, operand: impl AsRef<[u8]>) {
        self.note_keyspace(ks);
        self.merge_part(ks.id(), key.as_ref(), operand.as_ref());
    }

    fn merge_part(&mut self, id: u32, key: &[u8], operand: &[u8]) {
        let writes = &mut self.parts.entry(id).or_default().writes;
        let operand = Bytes::copy_from_slice(operand);
        match writes.get_mut(key) {
            Some(w) => w.operands.push(operand),
            None => {
                writes.insert(
                    Bytes::copy_from_slice(key),
                    OwnWrite {
                        base: None,
                        operands: vec![operand],
                    },
                );
            }
        }
    }

    /// Deletes `key` in this transaction (a delete of an absent key is
    /// still a write, checked for conflicts and written at commit).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) {
        self.write_part(0, key.as_ref(), None);
    }

    /// [`delete`](Self::delete) in keyspace `ks`.
    pub fn delete_in(&mut self, ks: &Keyspace, key: impl AsRef<[u8]>) {
        self.note_keyspace(ks);
        self.write_part(ks.id(), key.as_ref(), None);
    }

    /// Remembers that the commit must check `ks` belongs to this database.
    fn note_keyspace(&mut self, ks: &Keyspace) {
        if ks.check_db(&self.inner).is_err() && self.foreign_keyspace.is_none() {
            self.foreign_keyspace = Some(ks.name().to_string());
        }
    }

    fn write_part(&mut self, id: u32, key: &[u8], value: Option<&[u8]>) {
        self.parts.entry(id).or_default().writes.insert(
            Bytes::copy_from_slice(key),
            OwnWrite {
                base: Some(value.map(Bytes::copy_from_slice)),
                operands: Vec::new(),
            },
        );
    }

    /// The pairs in `range` as this transaction sees it — its own writes
    /// merged over the snapshot — in key order; `.rev()` for reverse order,
    /// and both ends may be mixed. Under serializable isolation the whole
    /// `range` joins the read set when the iterator is created (however
    /// much of it is then read).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> TxnIter<'_> {
        let lo = to_bound(range.start_bound());
        let hi = to_bound(range.end_bound());
        self.range_bounds(self.inner.default_tree(), lo, hi)
    }

    /// [`range`](Self::range) in keyspace `ks`.
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        ks: &Keyspace,
        range: R,
    ) -> TxnIter<'_> {
        let lo = to_bound(range.start_bound());
        let hi = to_bound(range.end_bound());
        match ks.check_db(&self.inner) {
            Ok(()) => self.range_bounds(ks.tree(), lo, hi),
            Err(e) => TxnIter::new(Iter::failed(e), Iter::failed(Error::Closed), None, None),
        }
    }

    /// Every pair as this transaction sees it (see [`range`](Self::range)).
    pub fn iter(&self) -> TxnIter<'_> {
        self.range::<&[u8], _>(..)
    }

    /// Every pair of keyspace `ks` as this transaction sees it.
    pub fn iter_in(&self, ks: &Keyspace) -> TxnIter<'_> {
        self.range_in::<&[u8], _>(ks, ..)
    }

    /// The pairs whose keys start with `prefix` (see
    /// [`range`](Self::range)).
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> TxnIter<'_> {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        self.range_bounds(self.inner.default_tree(), lo, hi)
    }

    /// The pairs of keyspace `ks` whose keys start with `prefix`.
    pub fn prefix_in(&self, ks: &Keyspace, prefix: impl AsRef<[u8]>) -> TxnIter<'_> {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        match ks.check_db(&self.inner) {
            Ok(()) => self.range_bounds(ks.tree(), lo, hi),
            Err(e) => TxnIter::new(Iter::failed(e), Iter::failed(Error::Closed), None, None),
        }
    }

    fn range_bounds(&self, tree: &Tree, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> TxnIter<'_> {
        let lo = lo.map(Bytes::from);
        let hi = hi.map(Bytes::from);
        let empty = range_is_empty(&lo, &hi);
        if self.serializable() && !empty {
            self.reads
                .borrow_mut()
                .entry(tree.id)
                .or_default()
                .ranges
                .push((lo.clone(), hi.clone()));
        }
        let own = self.parts.get(&tree.id).filter(|_| !empty).map(|p| {
            p.writes
                .range::<[u8], _>((validate::as_slice_bound(&lo), validate::as_slice_bound(&hi)))
        });
        let bounds = (lo.map(Vec::from), hi.map(Vec::from));
        let snap = |b: (Bound<Vec<u8>>, Bound<Vec<u8>>)| {
            if tree.is_dropped() {
                return Iter::failed(Error::KeyspaceDropped(tree.name.clone()));
            }
            self.inner
                .iter_at(tree, Some(self.snapshot.sequence()), b.0, b.1)
        };
        TxnIter::new(
            snap(bounds.clone()),
            snap(bounds),
            own,
            tree.merge_operator(),
        )
    }

    /// Commits with the transaction's sync option (see
    /// [`TransactionOptions::sync`]). See [`commit_opt`](Self::commit_opt).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// use lightning_db::Error;
    ///
    /// db.put("k", "0")?;
    /// let mut a = db.transaction();
    /// let mut b = db.transaction();
    /// a.put("k", "a");
    /// b.put("k", "b");
    /// a.commit()?;
    /// // b wrote the same key after its snapshot: it conflicts, nothing is written.
    /// assert!(matches!(b.commit(), Err(Error::Conflict { .. })));
    /// assert_eq!(db.get("k")?.as_deref(), Some(&b"a"[..]));
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn commit(self) -> Result<()> {
        let sync = self.opts.sync.unwrap_or(self.inner.default_sync());
        self.commit_opt(&WriteOptions { sync })
    }

    /// Validates the transaction and, if no conflict is found, writes all
    /// its puts and deletes as one atomic [`WriteBatch`] (all or nothing,
    /// also after a crash; synced per `opts` as [`Db::write_opt`]).
    ///
    /// - `Ok(())`: committed; visible to every read that starts after this
    ///   returns. A transaction that wrote nothing (and read nothing for
    ///   update) commits without validation.
    /// - [`Error::Conflict`]: another commit wrote a key of the write set or
    ///   the `get_for_update` set (serializable: also of the read set or a
    ///   scanned range) after this transaction's snapshot. Nothing was
    ///   written; run the transaction again.
    /// - [`Error::InvalidArgument`] for a key or value over the size limits,
    ///   [`Error::ReadOnly`], [`Error::Closed`], [`Error::Background`] and
    ///   I/O errors as for [`Db::write_opt`]; nothing was written (after a
    ///   WAL failure, as for `write_opt`, durability is unknown and the
    ///   database stops accepting writes).
    pub fn commit_opt(mut self, opts: &WriteOptions) -> Result<()> {
        let timer = self.inner.op_timer();
        let r = self.commit_inner(opts);
        self.finished = true;
        self.inner.record_txn_end(Some(&r));
        self.inner.record_commit_latency(timer);
        r
    }

    /// The body of [`Transaction::commit_opt`].
    fn commit_inner(&mut self, opts: &WriteOptions) -> Result<()> {
        self.inner.check_open()?;
        if let Some(name) = &self.foreign_keyspace {
            return Err(Error::InvalidArgument(format!(
                "the transaction writes keyspace `{name}`, which belongs to another database"
            )));
        }
        let writes = self.parts.values().any(|p| !p.writes.is_empty());
        if !writes && self.parts.values().all(|p| p.for_update.is_empty()) {
            // Read-only: consistent at its snapshot, nothing to validate.
            return Ok(());
        }
        self.inner.writable()?;
        let check = self.commit_check();
        if !writes {
            return validate::validate_alone(&|id| self.inner.superversion_of(id), &check);
        }
        let mut batch = WriteBatch::new();
        for (&id, part) in &mut self.parts {
            for (k, w) in std::mem::take(&mut part.writes) {
                match w.base {
                    Some(Some(v)) => batch.put_in_id(id, &k, &v),
                    Some(None) => batch.delete_in_id(id, &k),
                    None => {}
                }
                for op in &w.operands {
                    batch.merge_in_id(id, &k, op);
                }
            }
        }
        batch.check_limits()?;
        self.inner.check_merges(&batch)?;
        let batch = self.inner.stamp_times(batch);
        // The transaction, and so its registered snapshot, lives until
        // validation is done: while it does, flush and compaction keep
        // every version newer than the snapshot findable (see `validate`).
        self.inner
            .write_checked(batch, opts.sync, false, Some(check))
    }

    /// Abandons the transaction: nothing it wrote reaches the database and
    /// its snapshot is released. Dropping it does the same.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// let mut tx = db.transaction();
    /// tx.put("k", "v");
    /// tx.rollback();
    /// assert_eq!(db.get("k")?, None);
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn rollback(self) {}
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.record_txn_end(None);
        }
    }
}

impl Transaction {
    /// What the commit must validate: each key once per keyspace,
    /// writes first.
    fn commit_check(&self) -> CommitCheck {
        let mut keys: Vec<(u32, Bytes, ConflictKind)> = Vec::new();
        for (&id, p) in &self.parts {
            keys.extend(
                p.writes
                    .keys()
                    .map(|k| (id, k.clone(), ConflictKind::Write)),
            );
        }
        for (&id, p) in &self.parts {
            keys.extend(
                p.for_update
                    .iter()
                    .filter(|k| !p.writes.contains_key(*k))
                    .map(|k| (id, k.clone(), ConflictKind::ForUpdate)),
            );
        }
        let reads = self.reads.borrow();
        let mut ranges = Vec::new();
        for (&id, r) in reads.iter() {
            let part = self.parts.get(&id);
            let known = |k: &Bytes| {
                part.is_some_and(|p| p.writes.contains_key(k) || p.for_update.contains(k))
            };
            keys.extend(
                r.keys
                    .iter()
                    .filter(|k| !known(k))
                    .map(|k| (id, k.clone(), ConflictKind::Read)),
            );
            ranges.extend(r.ranges.iter().map(|range| (id, range.clone())));
        }
        CommitCheck {
            snapshot: self.snapshot.sequence(),
            keys,
            ranges,
        }
    }
}
