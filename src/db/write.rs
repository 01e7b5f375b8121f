//! The write path: group commit.
//!
//! Each `write` call queues a [`Writer`]. The writer at the head of the
//! queue is the leader: it makes room (freezing a full memtable, stalling
//! when too many frozen memtables wait for flush), takes the writers queued
//! behind it as its group, assigns their consecutive sequence numbers, and
//! — with the queue unlocked, so new writers can queue up — appends one WAL
//! record per batch, hands the WAL to the OS once and fsyncs it at most once
//! for the whole group, inserts the batches into the memtable and publishes
//! the group's last sequence number. Then it wakes the next leader and the
//! group. Waiting writers park on their own thread, not on the queue
//! mutex: a leader stores each one's new state (done, or lead) and unparks
//! it after unlocking the queue, so a woken group does not take turns on
//! the queue lock. A synced writer first yields the CPU in a loop for about
//! as long as a synced group takes (`sync_spin`), so that when its group's
//! fdatasync ends it is running already rather than waiting to be woken.
//!
//! Invariants:
//! - Only the head of the queue runs as leader, so WAL appends, memtable
//!   inserts and memtable switches are never concurrent.
//! - Sequence numbers are assigned in queue order and published in the
//!   same order, so readers see a prefix of the write history.
//! - After a failed WAL write or fsync nothing is inserted and the database
//!   enters the background-error state: the data's durability is unknown
//!   and it must not be reported as written.
//! - Transactions: a writer may carry a [`CommitCheck`]. The leader
//!   validates the group's checked writers in queue order, with the queue
//!   unlocked, before it numbers the group: every earlier group is then in
//!   the memtable and visible, and no later group is numbered until this
//!   one is popped, so validation and sequence assignment are atomic with
//!   respect to every other commit (see `crate::txn::validate`). A writer
//!   that fails validation is answered with its error, gets no sequence
//!   numbers and writes nothing.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use parking_lot::{Mutex, MutexGuard};

use super::compact::decode_stall;
use super::{DbInner, WriterQueue};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::filename::log_file_name;
use crate::log::LogWriter;
use crate::memtable::MemTable;
use crate::metrics::{db_event, Stall};
use crate::txn::validate::{validate_group, CommitCheck};
use crate::version::superversion::SuperVersion;
use lightning_compaction::planner::WriteStall;

/// Largest group a leader builds, in encoded batch bytes.
const MAX_GROUP_BYTES: usize = 1 << 20;
/// A small first batch only takes this much extra company, so its own
/// latency stays low.
const SMALL_BATCH: usize = 128 << 10;

/// The write-group queue.
pub(crate) struct WriteQueue {
    pub(crate) writers: WriterQueue,
    /// Last sequence number handed out (may not be visible yet).
    pub(crate) last_seq: u64,
    /// Writers in the last synced group (for gathering, see `gather`).
    last_sync_group: usize,
    /// Moving average of a synced group's duration in µs, from its
    /// forming to its results (for `sync_spin`); 0 before the first.
    sync_group_us: u64,
    /// The leader's group vector, kept empty between groups so building a
    /// group allocates nothing.
    spare_group: Vec<Arc<Writer>>,
    /// The active memtable: always the current `SuperVersion`'s, because
    /// only a leader replaces that (`switch_memtable`, queue locked) and
    /// sets it here too. A leader moves it out for the unlocked part of
    /// its group and puts it back before the next leader can run, so a
    /// group costs no `SuperVersion` load and no reference count. `None`
    /// only while a leader holds it (or if one unwound with it).
    active_mem: Option<Arc<MemTable>>,
}

impl WriteQueue {
    pub(crate) fn new(last_seq: u64, active_mem: Arc<MemTable>) -> Self {
        WriteQueue {
            writers: WriterQueue::new(),
            last_seq,
            last_sync_group: 0,
            sync_group_us: 0,
            spare_group: Vec::new(),
            active_mem: Some(active_mem),
        }
    }
}

/// Longest a lone synced leader waits for the writers of the previous
/// synced group to queue up again (see `DbInner::gather`).
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_micros(50);

/// Longest a synced writer yields before it parks (see `sync_spin`).
const SYNC_SPIN_MAX: std::time::Duration = std::time::Duration::from_millis(1);
/// A yield that took this long means other threads have work for this
/// CPU; after [`SLOW_YIELDS`] of them a waiting writer parks at once.
const SLOW_YIELD: std::time::Duration = std::time::Duration::from_micros(100);
/// See [`SLOW_YIELD`].
const SLOW_YIELDS: u32 = 3;

/// How long a synced writer queued behind a leader yields before it parks:
/// 5/4 of the recent synced group's duration (`avg_us`), at most
/// [`SYNC_SPIN_MAX`]. Parking costs the woken writer a wake-up on top of
/// the fdatasync it waited for; on 2 cores, with 8 threads writing synced
/// batches, that was most of the 45-95 µs between one group's fdatasync
/// and the next one's. Yielding for 200 µs took 8-thread fillsync from
/// 35.7K to 49.1K ops/sec; yielding for 400-1500 µs gave only 42-45K
/// (probably writers two groups back taking CPU from the leader), hence a
/// budget of about one group. A yield loop gives the CPU away whenever
/// anything else wants it, and a writer whose yields come back slowly
/// parks.
fn sync_spin(avg_us: u64) -> std::time::Duration {
    std::time::Duration::from_micros(avg_us.saturating_mul(5) / 4).min(SYNC_SPIN_MAX)
}

/// Batches and writers above this capacity are not kept for reuse.
const REUSE_MAX_BYTES: usize = 64 << 10;

thread_local! {
    /// This thread's last writer, reused by its next write when nothing
    /// else holds it any more (no allocation per write).
    static SPARE_WRITER: std::cell::RefCell<Option<Arc<Writer>>> =
        const { std::cell::RefCell::new(None) };
    /// A cleared batch with capacity, for [`take_spare_batch`].
    static SPARE_BATCH: std::cell::RefCell<Option<WriteBatch>> =
        const { std::cell::RefCell::new(None) };
    /// The threads a leader wakes after its group, reused.
    static SPARE_WAKE: std::cell::RefCell<Vec<Thread>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// [`Writer::state`]: queued, waiting for its turn or its group.
const WAITING: u8 = 0;
/// [`Writer::state`]: written by a group; the result is set.
const DONE: u8 = 1;
/// [`Writer::state`]: at the head of the queue; it leads the next group.
const LEAD: u8 = 2;

/// An empty batch, reusing this thread's last write's buffer when there is
/// one: `Db::put` and `Db::delete` allocate nothing in steady state.
pub(crate) fn take_spare_batch() -> WriteBatch {
    // `try_with`: a write from a thread-local destructor just allocates.
    let mut b = SPARE_BATCH
        .try_with(|c| c.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_default();
    b.clear();
    b
}

/// Keeps `batch` (a finished write's buffer) for the next
/// [`take_spare_batch`] unless it is large.
fn keep_spare_batch(batch: WriteBatch) {
    if batch.capacity() <= REUSE_MAX_BYTES {
        let _ = SPARE_BATCH.try_with(|c| *c.borrow_mut() = Some(batch));
    }
}

impl Writer {
    /// A writer for `batch`: this thread's previous one when nothing else
    /// holds it (its old batch goes back to the spare slot), else a new
    /// one.
    fn take(
        batch: WriteBatch,
        sync: bool,
        force_switch: bool,
        check: Option<CommitCheck>,
    ) -> Arc<Writer> {
        if let Some(mut w) = SPARE_WRITER
            .try_with(|c| c.borrow_mut().take())
            .ok()
            .flatten()
        {
            if let Some(m) = Arc::get_mut(&mut w) {
                let old = std::mem::replace(m.batch.get_mut(), batch);
                keep_spare_batch(old);
                m.sync = sync;
                m.force_switch = force_switch;
                m.check = check;
                *m.state.get_mut() = WAITING;
                *m.result.get_mut() = None;
                return w;
            }
        }
        Arc::new(Writer {
            batch: UnsafeCell::new(batch),
            sync,
            force_switch,
            check,
            state: AtomicU8::new(WAITING),
            result: Mutex::new(None),
            thread: std::thread::current(),
        })
    }

    /// Keeps a finished writer for this thread's next write.
    fn keep(mut w: Arc<Writer>) {
        let Some(m) = Arc::get_mut(&mut w) else {
            return;
        };
        // A transaction's read set is not kept alive by the cache.
        m.check = None;
        if m.batch.get_mut().capacity() <= REUSE_MAX_BYTES {
            let _ = SPARE_WRITER.try_with(|c| *c.borrow_mut() = Some(w));
        }
    }
}

/// One queued write.
///
/// Who touches `batch` (the invariant that makes the `UnsafeCell` sound):
/// - its own thread, before the writer is queued and after its state is
///   `DONE` (or after it led the group itself), and then only through
///   `Arc::get_mut`, i.e. when no leader holds the writer any more;
/// - while it is queued, only the leader, which is the head of the queue
///   and the only one: a leader reads queued batches to build its group,
///   and numbers, logs and inserts the group's batches, before it stores
///   `DONE` (release; the writer's thread loads it with acquire).
///
/// Queuing happens under the queue mutex, which orders the writer's own
/// accesses before any leader's; leaders follow one another through the
/// same mutex. No two of these accesses overlap, so the batch needs no
/// lock of its own (a lock and unlock per access were 8 locked
/// instructions per put).
pub(crate) struct Writer {
    batch: UnsafeCell<WriteBatch>,
    sync: bool,
    /// A `flush()` request: freeze the memtable even when not full.
    force_switch: bool,
    /// A transaction's commit validation, run by the leader.
    check: Option<CommitCheck>,
    /// `WAITING`, then `DONE` (set after `result`) or `LEAD`, each stored
    /// with release by the leader before it unparks `thread`.
    state: AtomicU8,
    result: Mutex<Option<Result<()>>>,
    /// The thread that queued this writer and parks until `state` moves.
    /// A writer is only reused by the thread that made it.
    thread: Thread,
}

// SAFETY: `batch` is the only field not `Sync` by itself; the access
// protocol documented on `Writer` keeps its accesses from overlapping.
unsafe impl Sync for Writer {}

impl Writer {
    /// The batch, for the one thread allowed to touch it now.
    ///
    /// # Safety
    /// The caller is the leader of the queue while this writer is queued
    /// (see [`Writer`]), and holds no other reference from this method.
    #[allow(clippy::mut_from_ref)]
    unsafe fn batch(&self) -> &mut WriteBatch {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.batch.get() }
    }
}

impl DbInner {
    /// Queues a write and waits until it is done (as leader or follower).
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool, force_switch: bool) -> Result<()> {
        self.write_checked(batch, sync, force_switch, None)
    }

    /// [`DbInner::write`] for a transaction's commit: the leader runs
    /// `check` just before numbering the batch, and answers
    /// [`Error::Conflict`] (writing nothing) when it fails.
    pub(crate) fn write_checked(
        &self,
        batch: WriteBatch,
        sync: bool,
        force_switch: bool,
        check: Option<CommitCheck>,
    ) -> Result<()> {
        self.check_open()?;
        self.check_writable()?;
        let w = Writer::take(batch, sync, force_switch, check);
        let mut q = self.queue.lock();
        // Checked again under the queue lock: `shutdown` sets `closed`
        // before it locks the queue to wait for it to drain, so a writer
        // either sees `closed` here or is queued before that wait, which
        // then waits for it.
        if let Err(e) = self.check_open() {
            drop(q);
            Writer::keep(w);
            return Err(e);
        }
        q.writers.push_back(Arc::clone(&w));
        if q.writers.len() > 1 {
            // Behind another writer: wait, without the queue lock, until a
            // leader either wrote this batch or made this writer the next
            // leader. Waking needs no lock, so a group's writers do not
            // take turns on the queue mutex to learn they are done. A
            // synced writer yields for about one group first (see
            // `sync_spin`), then parks.
            let spin = if sync {
                sync_spin(q.sync_group_us)
            } else {
                std::time::Duration::ZERO
            };
            // The end of the yielding; `None` (no clock read) for unsynced
            // writers and before the first synced group.
            let spin_until = (!spin.is_zero()).then(|| std::time::Instant::now() + spin);
            drop(q);
            let mut slow_yields = 0;
            loop {
                match w.state.load(Ordering::Acquire) {
                    DONE => {
                        let result = w.result.lock().take().unwrap_or(Ok(()));
                        Writer::keep(w);
                        return result;
                    }
                    LEAD => break,
                    _ if slow_yields < SLOW_YIELDS
                        && spin_until.is_some_and(|u| std::time::Instant::now() < u) =>
                    {
                        let t = std::time::Instant::now();
                        std::thread::yield_now();
                        if t.elapsed() >= SLOW_YIELD {
                            slow_yields += 1;
                        }
                    }
                    // A leader's unpark before this park makes it return
                    // at once; the state is checked again either way.
                    _ => std::thread::park(),
                }
            }
            q = self.queue.lock();
        }
        // Leader: at the head of the queue.
        debug_assert!(q.writers.front().is_some_and(|f| Arc::ptr_eq(f, &w)));
        let mut wake = SPARE_WAKE
            .try_with(|c| std::mem::take(&mut *c.borrow_mut()))
            .unwrap_or_default();
        let result = self.lead(&mut q, &w, &mut wake);
        // The next leader first: its group can start while this one's
        // writers are still being woken.
        let next = q.writers.front().map(|n| {
            n.state.store(LEAD, Ordering::Release);
            n.thread.clone()
        });
        if next.is_none() && self.closed.load(Ordering::Acquire) {
            // `shutdown` waits for the queue to drain.
            self.stall_cv.notify_all();
        }
        drop(q);
        if let Some(t) = next {
            t.unpark();
        }
        for t in wake.drain(..) {
            t.unpark();
        }
        let _ = SPARE_WAKE.try_with(|c| *c.borrow_mut() = wake);
        Writer::keep(w);
        result
    }

    /// Runs one group with `leader` at the head of the queue; pops the
    /// group from the queue before returning, with each follower's result
    /// set and its thread in `wake`, to unpark once the queue is unlocked.
    fn lead(
        &self,
        q: &mut MutexGuard<'_, WriteQueue>,
        leader: &Arc<Writer>,
        wake: &mut Vec<Thread>,
    ) -> Result<()> {
        if let Err(e) = self.make_room(q, leader.force_switch) {
            q.writers.pop_front();
            return Err(e);
        }
        if leader.force_switch {
            q.writers.pop_front();
            return Ok(());
        }
        if leader.sync {
            self.gather(q);
        }
        // Build the group. Sequence numbers are assigned below, after
        // transaction validation, so a rejected transaction leaves no gap.
        let mut group = std::mem::take(&mut q.spare_group);
        group.clear();
        let mut bytes = 0usize;
        let mut limit = MAX_GROUP_BYTES;
        for w in q.writers.iter() {
            if w.force_switch {
                break;
            }
            // SAFETY: this thread leads and `w` is queued (see `Writer`).
            let size = unsafe { w.batch() }.approximate_size();
            if group.is_empty() {
                if size <= SMALL_BATCH {
                    limit = size + SMALL_BATCH;
                }
            } else if bytes + size > limit {
                break;
            }
            bytes += size;
            group.push(Arc::clone(w));
        }
        let first_seq = q.last_seq;
        let synced = group.iter().any(|w| w.sync);
        if synced {
            q.last_sync_group = group.len();
        }
        // Timed for `sync_spin` (synced groups only: a clock read is not
        // free next to an unsynced put).
        let group_start = synced.then(std::time::Instant::now);
        let mem = q
            .active_mem
            .take()
            .unwrap_or_else(|| Arc::clone(&self.sv.load().mem));

        // With the queue unlocked (new writers keep queuing): validate the
        // transactions of the group, number the writers that stay in, then
        // WAL and memtable. This leader alone runs until the group is
        // popped below, so nothing else is numbered or written meanwhile.
        let (result, rejected, last_seq) = MutexGuard::unlocked(q, || {
            let rejected = self.validate_writers(&group);
            let is_rejected = |i: usize| rejected.get(i).is_some_and(Option::is_some);
            let mut seq = first_seq;
            let mut sync = false;
            for (i, w) in group.iter().enumerate() {
                if !is_rejected(i) {
                    // SAFETY: this thread leads the group holding `w`.
                    let b = unsafe { w.batch() };
                    b.set_sequence(seq + 1);
                    seq += u64::from(b.count());
                    sync |= w.sync;
                }
            }
            let result = if rejected.iter().any(Option::is_some) {
                let members: Vec<_> = (0..group.len())
                    .filter(|&i| !is_rejected(i))
                    .map(|i| Arc::clone(&group[i]))
                    .collect();
                if members.is_empty() {
                    Ok(())
                } else {
                    self.write_group(&members, sync, &mem, seq)
                }
            } else {
                self.write_group(&group, sync, &mem, seq)
            };
            (result, rejected, seq)
        });
        q.active_mem = Some(mem);
        q.last_seq = last_seq;
        if let Some(start) = group_start {
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            q.sync_group_us = (q.sync_group_us.saturating_mul(7)).saturating_add(us) / 8;
        }

        // Hand results to the group (the leader is its first member).
        for _ in 0..group.len() {
            q.writers.pop_front();
        }
        let mut rejected = rejected.into_iter().chain(std::iter::repeat_with(|| None));
        let leader_rejected = rejected.next().flatten();
        for (w, r) in group.iter().skip(1).zip(rejected) {
            *w.result.lock() = Some(match (r, &result) {
                (Some(e), _) => Err(e),
                (None, Ok(())) => Ok(()),
                // Of the same kind as the leader's (issue 22).
                (None, Err(e)) => Err(e.clone()),
            });
            wake.push(w.thread.clone());
            w.state.store(DONE, Ordering::Release);
        }
        // Drop the group's references before anyone is woken, so each
        // writer can be reused by its thread.
        group.clear();
        q.spare_group = group;
        match leader_rejected {
            Some(e) => Err(e),
            None => result,
        }
    }

    /// Group-commit gathering. When a synced group of several writers
    /// finishes, its leader wakes them and the next writer in line becomes
    /// leader at once, usually alone: the woken writers have not queued
    /// their next write yet, so groups alternate between one writer and
    /// all the rest, and half the fsyncs carry one write. A synced leader
    /// that is alone while the last synced group had company therefore
    /// yields (queue unlocked) for up to `GATHER_WAIT` (a third of one
    /// fdatasync here), until as many writers are queued as last time. A
    /// single synced writer never waits: its last group had no company.
    fn gather(&self, q: &mut MutexGuard<'_, WriteQueue>) {
        let want = q.last_sync_group;
        if want <= 1 || q.writers.len() >= want {
            return;
        }
        let start = std::time::Instant::now();
        while q.writers.len() < want && start.elapsed() < GATHER_WAIT {
            MutexGuard::unlocked(q, std::thread::yield_now);
        }
    }

    /// The validation outcome of each writer of `group`, in order: `None`
    /// to write it, or the error that rejects it (a failed transaction
    /// check). Writers without a check always pass; a group without
    /// transactions gets an empty vector and costs nothing here.
    fn validate_writers(&self, group: &[Arc<Writer>]) -> Vec<Option<Error>> {
        if group.iter().all(|w| w.check.is_none()) {
            return Vec::new();
        }
        // SAFETY: this thread leads the group holding these writers.
        let batches: Vec<&WriteBatch> = group.iter().map(|w| &*unsafe { w.batch() }).collect();
        validate_group(
            &self.sv.load_full(),
            group
                .iter()
                .zip(&batches)
                .map(|(w, b)| (w.check.as_ref(), &**b)),
        )
    }

    /// WAL then memtable for a group, with the queue unlocked.
    fn write_group(
        &self,
        group: &[Arc<Writer>],
        sync: bool,
        mem: &MemTable,
        last_seq: u64,
    ) -> Result<()> {
        {
            let mut wal = self.wal.lock();
            let res = (|| {
                // Bytes appended to the file: records with their headers
                // and any block padding.
                let start = wal.len();
                for w in group {
                    // SAFETY: this thread leads the group holding `w`.
                    unsafe { w.batch() }.with_wal_payload(|p| wal.add_record(p))?;
                }
                let added = wal.len() - start;
                self.wal_bytes.fetch_add(added, Ordering::Relaxed);
                let unsynced = self.wal_unsynced.load(Ordering::Relaxed) + added;
                let per_bytes = self.opts.wal_bytes_per_sync;
                if sync || (per_bytes > 0 && unsynced >= per_bytes) {
                    self.sync_wal(&mut wal)?;
                    self.wal_unsynced.store(0, Ordering::Relaxed);
                } else {
                    wal.flush()?;
                    self.wal_unsynced.store(unsynced, Ordering::Relaxed);
                }
                Ok(())
            })();
            // The WAL lock is released before the queue is taken to
            // record the error (lock order: queue, then WAL).
            drop(wal);
            if let Err(e) = res {
                return Err(Error::Background(self.set_bg_error(e)));
            }
        }
        let (mut user_bytes, mut ops, mut deletes) = (0u64, 0u64, 0u64);
        for w in group {
            // SAFETY: this thread leads the group holding `w`.
            let b = unsafe { w.batch() };
            user_bytes += b.user_bytes();
            ops += u64::from(b.count());
            deletes += b.deletes();
            mem.insert_batch(b);
        }
        self.visible_seq.store(last_seq, Ordering::Release);
        self.user_bytes.fetch_add(user_bytes, Ordering::Relaxed);
        self.metrics.record_writes(group.len() as u64, ops, deletes);
        Ok(())
    }

    /// Ensures the active memtable has room, freezing it when full (or when
    /// `force` and it is not empty). Stalls while the frozen memtables are
    /// at `max_write_buffer_number - 1`.
    fn make_room(&self, q: &mut MutexGuard<'_, WriteQueue>, mut force: bool) -> Result<()> {
        let mut stalled: Option<(std::time::Instant, Stall)> = None;
        let mut slowed = false;
        let result = loop {
            if let Some(e) = self.bg_error() {
                break Err(e);
            }
            if let Err(e) = self.check_open() {
                break Err(e);
            }
            let condition = decode_stall(self.stall_condition.load(Ordering::Acquire));
            match (condition, Stall::from_condition(condition)) {
                (WriteStall::Stop { .. }, Some(stall)) => {
                    if stalled.is_none() {
                        db_event!(
                            self.metrics,
                            WARN,
                            "writes stopped: waiting for compaction to catch up",
                            cause = stall.cause()
                        );
                        stalled = Some((std::time::Instant::now(), stall));
                        self.metrics.stall_begun(stall);
                    }
                    let t = std::time::Instant::now();
                    self.stall_cv.wait(q);
                    self.metrics.stalled_for(stall, t.elapsed());
                    continue;
                }
                (WriteStall::Slowdown { .. }, Some(stall)) if !slowed => {
                    // Like LevelDB: delay each write group by 1 ms, handing
                    // the CPU to compaction, rather than stop it later.
                    slowed = true;
                    self.metrics.stall_begun(stall);
                    let t = std::time::Instant::now();
                    MutexGuard::unlocked(q, || {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    });
                    self.metrics.stalled_for(stall, t.elapsed());
                    continue;
                }
                _ => {}
            }
            let (full, empty) = {
                let loaded;
                let active = match &q.active_mem {
                    Some(m) => m,
                    None => {
                        loaded = self.sv.load();
                        &loaded.mem
                    }
                };
                (
                    active.approximate_size() >= self.opts.write_buffer_size,
                    active.is_empty(),
                )
            };
            if !(full || force) || (force && empty) {
                break Ok(());
            }
            let sv = self.sv.load_full();
            if sv.imms.len() + 1 >= self.opts.max_write_buffer_number {
                if stalled.is_none() {
                    db_event!(
                        self.metrics,
                        WARN,
                        "writes stopped: waiting for a memtable flush",
                        frozen_memtables = sv.imms.len()
                    );
                    stalled = Some((std::time::Instant::now(), Stall::MemtableStop));
                    self.metrics.stall_begun(Stall::MemtableStop);
                }
                let t = std::time::Instant::now();
                self.stall_cv.wait(q);
                self.metrics.stalled_for(Stall::MemtableStop, t.elapsed());
                continue;
            }
            match self.switch_memtable(&sv) {
                Ok(mem) => q.active_mem = Some(mem),
                // Recorded here, with the queue held: `set_bg_error` would
                // lock the queue again and deadlock.
                Err(e) => break Err(Error::Background(self.set_bg_error_queue_locked(e, q))),
            }
            force = false;
        };
        if let Some((t, stall)) = stalled {
            db_event!(
                self.metrics,
                INFO,
                "write stall ended",
                cause = stall.cause(),
                stalled_ms = t.elapsed().as_millis() as u64
            );
        }
        result
    }

    /// Freezes the active memtable and starts a new one with a new WAL.
    /// Called by the leader with the queue locked; an error must become the
    /// background error (the old WAL's sync may have failed), which the
    /// caller records. Returns the new active memtable.
    fn switch_memtable(&self, sv: &SuperVersion) -> Result<Arc<MemTable>> {
        let number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let span =
            tracing::debug_span!("wal_switch", db = self.metrics.label.as_str(), wal = number);
        let _enter = span.enter();
        let path = log_file_name(&self.dir, number);
        let res = (|| {
            let mut wal = self.wal.lock();
            // Everything in the old WAL becomes durable before anything in
            // the new one can be: a power loss then never leaves a hole.
            self.timed_wal_sync(|| wal.finish())?;
            self.wal_unsynced.store(0, Ordering::Relaxed);
            let mut new_wal =
                LogWriter::create_wal(self.fs.as_ref(), path.clone(), number, self.opts.wal_mmap)?;
            // The header becomes durable before the directory entry does:
            // a crash can then leave the new WAL missing, or with a valid
            // header, but never with a torn one (which recovery must take
            // for a damaged or foreign file).
            self.sync_wal(&mut new_wal)?;
            self.fs.sync_dir(&self.dir)?;
            *wal = new_wal;
            Ok(())
        })();
        res?;
        let mem = Arc::new(MemTable::new(number, self.opts.memtable_bloom_bytes()));
        {
            let _v = self.versions.lock();
            let cur = self.sv.load();
            let mut imms = Vec::with_capacity(cur.imms.len() + 1);
            imms.push(Arc::clone(&sv.mem));
            imms.extend(cur.imms.iter().cloned());
            self.sv.store(Arc::new(SuperVersion {
                mem: Arc::clone(&mem),
                imms,
                version: Arc::clone(&cur.version),
            }));
        }
        let mut st = self.flush_state.lock();
        st.pending = true;
        self.flush_cv.notify_one();
        Ok(mem)
    }
}

impl DbInner {
    /// Body of the periodic WAL sync thread (`wal_sync_interval_ms`):
    /// every half interval, syncs the WAL if it holds unsynced writes, so
    /// a write that returned more than one interval ago is durable. A
    /// failed sync is a background error (writes stop); after a failure of
    /// the WAL itself it syncs no more, after any other background error it
    /// goes on.
    pub(crate) fn wal_sync_loop(self: Arc<Self>) {
        let half = std::time::Duration::from_millis(self.opts.wal_sync_interval_ms.div_ceil(2));
        loop {
            {
                let mut st = self.flush_state.lock();
                if st.shutdown {
                    return;
                }
                self.wal_sync_cv.wait_for(&mut st, half);
                if st.shutdown {
                    return;
                }
            }
            if self.wal_unsynced.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut wal = self.wal.lock();
            if wal.check_failed().is_err() {
                // The WAL itself failed: never fsync it again (fail-stop).
                // Any other background error (a failed flush or
                // compaction) leaves it sound, and its acknowledged writes
                // are still made durable on time.
                return;
            }
            match self.sync_wal(&mut wal) {
                Ok(()) => self.wal_unsynced.store(0, Ordering::Relaxed),
                Err(e) => {
                    drop(wal);
                    self.set_bg_error(e);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sync_spin_is_about_one_group_and_bounded() {
        // No synced group yet: park at once.
        assert_eq!(sync_spin(0), Duration::ZERO);
        // A 160 µs group: yield for 200 µs.
        assert_eq!(sync_spin(160), Duration::from_micros(200));
        // A slow disk: never more than the cap, even for absurd averages.
        assert_eq!(sync_spin(10_000), SYNC_SPIN_MAX);
        assert_eq!(sync_spin(u64::MAX), SYNC_SPIN_MAX);
    }
}
