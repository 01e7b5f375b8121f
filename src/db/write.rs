//! The write path: group commit, concurrent memtable inserts, pipelined
//! groups.
//!
//! Each `write` call queues a [`Writer`]. The writer at the head of the
//! queue is the leader: it makes room (freezing a full memtable, stalling
//! when too many frozen memtables wait for flush), takes the writers queued
//! behind it as its group, assigns their consecutive sequence numbers, and
//! — with the queue unlocked, so new writers can queue up — appends one WAL
//! record per batch, hands the WAL to the OS once and fsyncs it at most once
//! for the whole group. It then pops the group, queues its batches for
//! publication and makes the next writer in line leader at once: the next
//! group is logged while this one is inserted (RocksDB's pipelined write).
//!
//! An unsynced write that finds the queue empty, the memtables with room
//! and no stall in force skips all of that (`write_direct`): with the
//! queue locked it numbers and logs its own batch, then inserts it with
//! the queue unlocked and is published like a group member. Unsynced
//! writes rarely wait for one another, so most of them go this way, and
//! a queued group forms only behind a synced write, a transaction, a
//! leader task, a memtable switch or a stall.
//!
//! Inserting is parallel (RocksDB's concurrent memtable writes): an
//! unsynced follower still waiting actively gets `INSERT` and inserts its
//! own batch into the memtable; the leader inserts its own and those of
//! the followers that parked (a wake-up costs more than an insert) or
//! that are synced (next to an fdatasync an insert is cheap). A batch
//! becomes visible when it and every batch before it are inserted
//! (`mark_inserted`): whoever completes the prefix moves the visible
//! sequence number and wakes the writers it published. A writer returns
//! once its batch is visible, so it reads its own write.
//!
//! Waiting: an unsynced follower spins, then yields, for a few
//! microseconds — only as many at a time as there are spare CPUs — then
//! parks. A synced writer yields for about as long as a synced group takes
//! (`sync_spin`), so that when its group's fdatasync ends it is running
//! already rather than waiting to be woken.
//!
//! Invariants:
//! - Only the head of the queue runs as leader, so WAL appends and
//!   memtable switches are never concurrent, and groups are numbered and
//!   logged in queue order. A direct write numbers and logs only with the
//!   queue locked *and empty*: no leader is at work then (a leader stays
//!   queued until its group is popped, even while it works with the
//!   queue unlocked), and none can start until the direct write unlocks.
//! - Batches are published in sequence order, so readers see a prefix of
//!   the write history. A memtable is frozen only after every batch
//!   numbered before the switch is published (`wait_published`), so a
//!   frozen memtable is complete.
//! - After a failed WAL write or fsync nothing of the group is inserted
//!   and the database enters the background-error state: the data's
//!   durability is unknown and it must not be reported as written.
//! - Transactions: a writer may carry a [`CommitCheck`]. The leader
//!   validates the group's checked writers in queue order, with the queue
//!   unlocked, before it numbers the group, after waiting until every
//!   earlier batch is visible; no later group is numbered until this one
//!   is popped, so validation and sequence assignment are atomic with
//!   respect to every other commit (see `crate::txn::validate`). A writer
//!   that fails validation is answered with its error, gets no sequence
//!   numbers and writes nothing.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use parking_lot::{Mutex, MutexGuard};

use super::compact::decode_stall;
use super::tree::{ActiveMems, Tree};
use super::{DbInner, WriteSide, WriterQueue};
use crate::batch::WriteBatch;
use crate::error::{Error, Result};
use crate::filename::log_file_name;
use crate::key::SeqNo;
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
    /// Every keyspace's active memtable: always their current
    /// `SuperVersion`s', because only a leader replaces those
    /// (`switch_memtables`, queue locked) and sets them here too, and
    /// creating or dropping a keyspace holds the queue; so a group costs
    /// no `SuperVersion` load.
    pub(crate) active: Arc<ActiveMems>,
    /// Number of the WAL being written.
    pub(crate) wal_number: u64,
    /// The WALs started since open that may still be live, oldest first:
    /// each one's number and the WAL bytes written before it (for
    /// `max_total_wal_size`).
    wal_starts: VecDeque<(u64, u64)>,
}

impl WriteQueue {
    pub(crate) fn new(last_seq: u64, active: ActiveMems, wal_number: u64) -> Self {
        WriteQueue {
            writers: WriterQueue::new(),
            last_seq,
            last_sync_group: 0,
            sync_group_us: 0,
            active: Arc::new(active),
            wal_number,
            wal_starts: VecDeque::from([(wal_number, 0)]),
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
    /// A leader's group vector, kept empty between groups so building a
    /// group allocates nothing.
    static SPARE_GROUP: std::cell::RefCell<Vec<Arc<Writer>>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// The batches one `mark_inserted` publishes, reused.
    static SPARE_DONE: std::cell::RefCell<Vec<Pending>> =
        const { std::cell::RefCell::new(Vec::new()) };
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
/// [`Writer::state`]: its group is logged and its batch numbered; its
/// thread inserts the batch into `mem` and publishes it.
const INSERT: u8 = 3;
/// [`Writer::state`]: still waiting, parked: the leader of its group
/// inserts its batch for it, then answers `DONE`.
const PARKED: u8 = 4;

/// [`Writer::publication`]: its batch is queued for publication, not yet
/// visible.
const UNPUBLISHED: u8 = 0;
/// [`Writer::publication`]: its batch is visible.
const PUBLISHED: u8 = 1;
/// [`Writer::publication`]: not yet visible, and its thread parks until it
/// is: its publisher must wake it.
const PUBLISH_PARKED: u8 = 2;

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
                *m.task.get_mut() = None;
                m.has_task = false;
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
            task: Mutex::new(None),
            has_task: false,
            state: AtomicU8::new(WAITING),
            mem: UnsafeCell::new(None),
            publication: AtomicU8::new(UNPUBLISHED),
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
        *m.task.get_mut() = None;
        m.has_task = false;
        if m.batch.get_mut().capacity() <= REUSE_MAX_BYTES {
            let _ = SPARE_WRITER.try_with(|c| *c.borrow_mut() = Some(w));
        }
    }
}

/// Work run by its writer as leader, alone, at one point of the write
/// order: every batch numbered before it is visible, none after it is
/// numbered until it returns. It gets sequence number `S` (the next one)
/// and, if it returns `Ok(true)`, has published it (`visible_seq = S`); it
/// runs with the queue unlocked (writers keep queuing) on the thread that
/// queued it.
pub(crate) type LeaderTask = Box<dyn FnOnce(&DbInner, SeqNo) -> Result<bool> + Send>;

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
    /// Work that must run at one point of the write order (an ingestion):
    /// run by this writer itself as leader, alone, once every earlier
    /// batch is visible, with the next sequence number (see
    /// [`LeaderTask`]). Taken out by that leader.
    task: Mutex<Option<LeaderTask>>,
    /// `task` was set when the writer was queued (read by leaders forming
    /// groups, without the lock).
    has_task: bool,
    /// `WAITING` (or `PARKED`, set by the writer's thread), then `DONE`
    /// (set after `result`), `LEAD` or `INSERT` (set after `mem`), each
    /// stored with release by a leader.
    state: AtomicU8,
    /// With `INSERT`: the memtable this writer inserts its batch into.
    /// Same access protocol as `batch`.
    mem: UnsafeCell<Option<Arc<ActiveMems>>>,
    /// `UNPUBLISHED` when its batch is queued for publication, then
    /// `PUBLISHED` (`DbInner::mark_inserted`), or `PUBLISH_PARKED` first if
    /// its thread parks to wait (`wait_published_own`). As with `state`,
    /// only a thread found parked is woken: a wake-up is two
    /// read-modify-writes on the waiter's `Thread`, lines that another
    /// core wrote last when writers alternate (issue 17).
    publication: AtomicU8,
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

/// What a queued writer learned when its wait ended.
enum Turn {
    /// A leader answered it (written and visible, or failed).
    Done(Result<()>),
    /// It is at the head of the queue and leads the next group.
    Lead,
    /// Its group is logged and its batch numbered: it inserts the batch
    /// itself and publishes it.
    Insert,
}

/// Waits, without the queue lock, until a leader moves `w` on: waits
/// actively for up to `spin` first (see [`sync_spin`], [`UNSYNCED_SPIN`]),
/// then parks. A writer that parks first says so (`WAITING` → `PARKED`),
/// and a leader that finds it parked inserts its batch for it rather than
/// waking it to do so: a wake-up costs more than the insert.
///
/// Active waiting is `spin_loop` for the first [`PAUSE_SPIN`] (unsynced
/// writers only: a synced group takes an fdatasync), then `yield_now`,
/// and stops early when yields come back slowly (other threads want this
/// CPU).
fn wait_turn(w: &Writer, spin: std::time::Duration) -> Turn {
    // The end of the active wait; `None` (no clock read) without a budget.
    let start = (!spin.is_zero()).then(std::time::Instant::now);
    let mut slow_yields = 0;
    loop {
        match w.state.load(Ordering::Acquire) {
            DONE => return Turn::Done(w.result.lock().take().unwrap_or(Ok(()))),
            LEAD => return Turn::Lead,
            INSERT => return Turn::Insert,
            // A leader's unpark before this park makes it return at once;
            // the state is checked again either way.
            PARKED => std::thread::park(),
            _ => {
                let waited = start.map(|s| s.elapsed());
                match waited {
                    Some(t) if slow_yields < SLOW_YIELDS && t < spin => {
                        if t < PAUSE_SPIN && !w.sync {
                            for _ in 0..32 {
                                std::hint::spin_loop();
                            }
                        } else {
                            let y = std::time::Instant::now();
                            std::thread::yield_now();
                            if y.elapsed() >= SLOW_YIELD {
                                slow_yields += 1;
                            }
                        }
                    }
                    _ => {
                        // Fails only when a leader moved the state meanwhile.
                        let _ = w.state.compare_exchange(
                            WAITING,
                            PARKED,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                    }
                }
            }
        }
    }
}

/// How long a waiting writer spins on the CPU (`spin_loop`) before it
/// starts yielding it.
const PAUSE_SPIN: std::time::Duration = std::time::Duration::from_micros(2);

/// How long an unsynced writer queued behind a leader yields before it
/// parks. An unsynced group is logged in about a microsecond, and a writer
/// still running when its group is logged inserts its own batch, in
/// parallel with the leader and the next group; a parked one is woken
/// (tens of microseconds) only after the leader inserted for it.
const UNSYNCED_SPIN: std::time::Duration = std::time::Duration::from_micros(20);

/// A logged batch waiting to be published (`DbInner::mark_inserted`).
pub(crate) struct Pending {
    /// Its last sequence number.
    last: SeqNo,
    writer: Arc<Writer>,
    /// In the memtable.
    inserted: bool,
    /// Inserted by the leader for a parked writer, which is answered
    /// `DONE` when the batch is published.
    for_parked: bool,
}

/// Returns once `w`'s batch (inserted) is published: spins for
/// [`PAUSE_SPIN`] (the batches before it are being inserted and take
/// about a microsecond), then says it parks (`PUBLISH_PARKED`) and parks
/// until its publisher wakes it.
fn wait_published_own(w: &Writer) {
    if w.publication.load(Ordering::Acquire) == PUBLISHED {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < PAUSE_SPIN {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
        if w.publication.load(Ordering::Acquire) == PUBLISHED {
            return;
        }
    }
    // Fails only when the batch was published meanwhile.
    if w.publication
        .compare_exchange(
            UNPUBLISHED,
            PUBLISH_PARKED,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return;
    }
    // A publisher that saw `PUBLISH_PARKED` unparks this thread (an
    // unpark before the park makes it return at once).
    while w.publication.load(Ordering::Acquire) != PUBLISHED {
        std::thread::park();
    }
}

/// A logged group, popped from the queue: what its leader still does with
/// the queue unlocked (see [`DbInner::finish_group`]).
struct Logged {
    group: Vec<Arc<Writer>>,
    /// The WAL write's outcome; on error nothing is inserted.
    result: Result<()>,
    /// Per writer (group order), the error that rejected it, if any; empty
    /// when none was rejected.
    rejected: Vec<Option<Error>>,
    /// The memtables the group's batches go to.
    mem: Arc<ActiveMems>,
}

impl DbInner {
    /// Queues a write and waits until it is done (as leader or follower).
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool, force_switch: bool) -> Result<()> {
        self.write_checked(batch, sync, force_switch, None)
    }

    /// Runs `task` at one point of the write order (see [`LeaderTask`]).
    pub(crate) fn run_as_leader(&self, task: LeaderTask) -> Result<()> {
        self.write_with(WriteBatch::new(), false, false, None, Some(task))
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
        self.write_with(batch, sync, force_switch, check, None)
    }

    fn write_with(
        &self,
        batch: WriteBatch,
        sync: bool,
        force_switch: bool,
        check: Option<CommitCheck>,
        task: Option<LeaderTask>,
    ) -> Result<()> {
        self.check_open()?;
        let ws = self.writable()?;
        let mut w = Writer::take(batch, sync, force_switch, check);
        if let Some(task) = task {
            match Arc::get_mut(&mut w) {
                Some(m) => {
                    *m.task.get_mut() = Some(task);
                    m.has_task = true;
                }
                None => return Err(Error::Internal("a new writer is shared".into())),
            }
        }
        #[cfg(test)]
        super::tests_hooks::reached(super::tests_hooks::Point::BeforeWriteQueue);
        let mut q = ws.queue.lock();
        // Checked again under the queue lock: `shutdown` sets `closed`
        // before it locks the queue to wait for it to drain, so a writer
        // either sees `closed` here or is queued before that wait, which
        // then waits for it.
        if let Err(e) = self.check_open() {
            drop(q);
            Writer::keep(w);
            return Err(e);
        }
        if q.writers.is_empty() && self.may_write_direct(&w, &q) {
            return self.write_direct(ws, q, w);
        }
        q.writers.push_back(Arc::clone(&w));
        if q.writers.len() > 1 {
            // Behind another writer: wait, without the queue lock, until a
            // leader answered this writer, handed it its insert, or made
            // it the next leader. Waking needs no lock, so a group's
            // writers do not take turns on the queue mutex.
            // Unsynced writers wait actively only while there is a CPU to
            // spare for it: more would take the CPUs from the leader and
            // the inserting writers they wait for.
            let spinner = !sync && ws.spinners.fetch_add(1, Ordering::Relaxed) < ws.max_spinners;
            let spin = if sync {
                sync_spin(q.sync_group_us)
            } else if spinner {
                UNSYNCED_SPIN
            } else {
                std::time::Duration::ZERO
            };
            drop(q);
            let turn = wait_turn(&w, spin);
            if !sync {
                ws.spinners.fetch_sub(1, Ordering::Relaxed);
            }
            match turn {
                Turn::Done(result) => {
                    Writer::keep(w);
                    return result;
                }
                Turn::Insert => {
                    self.insert_own(ws, &w);
                    Writer::keep(w);
                    return Ok(());
                }
                Turn::Lead => {}
            }
            q = ws.queue.lock();
        }
        // Leader: at the head of the queue.
        debug_assert!(q.writers.front().is_some_and(|f| Arc::ptr_eq(f, &w)));
        let logged = self.lead(ws, &mut q, &w);
        // The next leader first: its group is logged while this one's
        // batches are inserted (a pipelined write).
        // Woken only if it parked (see `wait_turn`).
        let next = q.writers.front().and_then(|n| {
            (n.state.swap(LEAD, Ordering::AcqRel) == PARKED).then(|| n.thread.clone())
        });
        if q.writers.is_empty() && self.closed.load(Ordering::Acquire) {
            // `shutdown` waits for the queue to drain.
            ws.stall_cv.notify_all();
        }
        drop(q);
        if let Some(t) = next {
            t.unpark();
        }
        let result = match logged {
            Ok(logged) => self.finish_group(ws, logged),
            Err(e) => Err(e),
        };
        Writer::keep(w);
        result
    }

    /// Whether `w`, finding no writer queued (so no leader at work), may
    /// skip the queue ([`Self::write_direct`]): an unsynced, unchecked
    /// batch with operations, no leader task or memtable switch asked for,
    /// no stall in force and room in every active memtable (what
    /// `make_room` would find without doing anything). Anything else goes
    /// through the queue and its leader.
    fn may_write_direct(&self, w: &Writer, q: &WriteQueue) -> bool {
        if w.sync || w.check.is_some() || w.has_task || w.force_switch {
            return false;
        }
        // SAFETY: `w` is not queued: only this thread has it.
        if unsafe { w.batch() }.count() == 0 {
            return false;
        }
        let condition = decode_stall(self.compaction.stall_condition.load(Ordering::Acquire));
        !matches!(
            condition,
            WriteStall::Slowdown { .. } | WriteStall::Stop { .. }
        ) && self.bg_error().is_none()
            && !q.active.entries().iter().any(|(t, m)| memtable_full(t, m))
    }

    /// An unsynced write that found the queue empty: numbered and logged
    /// by its own thread with the queue locked (no group, no leader, no
    /// hand-off), then inserted with the queue unlocked and published in
    /// sequence order through the publication queue, like a group member.
    ///
    /// Why: with every write its own group (unsynced writes rarely wait
    /// for one another), queueing, leading and handing leadership on cost
    /// more than the logging itself. `fillrandom`, interleaved with the
    /// queued path (docs/benchmarks.md): 1 thread +5-13 %, 2 threads
    /// +10-18 %, 8 threads +17-37 %.
    ///
    /// Ordering: the queue is empty, so no leader is numbering or logging
    /// with the queue unlocked (a leader stays queued until its group is
    /// popped), and none can start while this writer holds the queue; the
    /// publication queue takes this batch after every group numbered
    /// before it, so batches still become visible in sequence order. A
    /// memtable switch waits for this batch's publication like any other.
    fn write_direct(
        &self,
        ws: &WriteSide,
        mut q: MutexGuard<'_, WriteQueue>,
        w: Arc<Writer>,
    ) -> Result<()> {
        let mem = Arc::clone(&q.active);
        // SAFETY: `w` is not queued: only this thread has it.
        let b = unsafe { w.batch() };
        if let Some(id) = mem.missing_keyspace(b) {
            drop(q);
            Writer::keep(w);
            return Err(Error::KeyspaceDropped(self.keyspace_name_of(id)));
        }
        b.set_sequence(q.last_seq + 1);
        let last = q.last_seq + u64::from(b.count());
        if let Err(e) = self.append_group(ws, &mem, std::iter::once(&w), false) {
            let e = Error::Background(self.set_bg_error_queue_locked(e, &mut q));
            drop(q);
            Writer::keep(w);
            return Err(e);
        }
        q.last_seq = last;
        w.publication.store(UNPUBLISHED, Ordering::Relaxed);
        ws.publishing.lock().push_back(Pending {
            last,
            writer: Arc::clone(&w),
            inserted: false,
            for_parked: false,
        });
        drop(q);
        mem.insert_batch(b);
        self.note_row_writes(b);
        self.mark_inserted(ws, std::slice::from_ref(&w), Some(&w));
        wait_published_own(&w);
        Writer::keep(w);
        Ok(())
    }

    /// A follower's part of a logged group: inserts its own batch into the
    /// memtable its leader chose, and returns once it is visible.
    fn insert_own(&self, ws: &WriteSide, w: &Arc<Writer>) {
        // SAFETY: `INSERT` (loaded with acquire) hands the batch and `mem`
        // back to this writer's thread; the leader touches neither again.
        let (b, mem) = unsafe { (w.batch(), (*w.mem.get()).take()) };
        match mem {
            Some(mem) => {
                mem.insert_batch(b);
                self.note_row_writes(b);
            }
            // A leader always sets `mem` before `INSERT`.
            None => debug_assert!(false, "INSERT without a memtable"),
        }
        self.mark_inserted(ws, std::slice::from_ref(w), Some(w));
        wait_published_own(w);
    }

    /// Records that the batches of `writers` are in the memtable, and
    /// publishes every pending batch at the front of the publication queue
    /// that is: the visible sequence number moves to the last of them,
    /// their writers learn it (`published`; a batch its leader inserted
    /// for a parked writer is answered `DONE`) and are woken. Readers thus
    /// always see a prefix of the write history, whatever order the
    /// inserts finish in, and nobody waits for a predecessor by spinning.
    /// `own` is the caller's own writer among `writers`; the others are
    /// parked followers whose leader inserted for them.
    fn mark_inserted(&self, ws: &WriteSide, writers: &[Arc<Writer>], own: Option<&Arc<Writer>>) {
        let mut done = SPARE_DONE
            .try_with(|c| std::mem::take(&mut *c.borrow_mut()))
            .unwrap_or_default();
        {
            let mut pq = ws.publishing.lock();
            for w in writers {
                if let Some(p) = pq.iter_mut().find(|p| Arc::ptr_eq(&p.writer, w)) {
                    p.inserted = true;
                    p.for_parked = !own.is_some_and(|o| Arc::ptr_eq(o, w));
                }
            }
            let mut last = None;
            while pq.front().is_some_and(|p| p.inserted) {
                if let Some(p) = pq.pop_front() {
                    last = Some(p.last);
                    done.push(p);
                }
            }
            if let Some(last) = last {
                self.visible_seq.store(last, Ordering::Release);
            }
        }
        for p in done.drain(..) {
            // Only a thread found parked is woken (see `Writer::publication`
            // and `wait_turn`): one waiting actively sees the store itself.
            let mut parked = false;
            if p.for_parked {
                *p.writer.result.lock() = Some(Ok(()));
                parked |= p.writer.state.swap(DONE, Ordering::AcqRel) == PARKED;
            }
            parked |= p.writer.publication.swap(PUBLISHED, Ordering::AcqRel) == PUBLISH_PARKED;
            let t = parked.then(|| p.writer.thread.clone());
            // The reference goes before the wake-up, so the writer can be
            // reused by its thread (`Writer::keep`).
            drop(p);
            if let Some(t) = t {
                t.unpark();
            }
        }
        let _ = SPARE_DONE.try_with(|c| *c.borrow_mut() = done);
    }

    /// Returns once everything up to `seq` is visible (rare callers: a
    /// memtable switch, a transaction's validation). The writes before it
    /// are being inserted and wait on nothing the caller holds.
    pub(crate) fn wait_published(&self, seq: SeqNo) {
        let mut round = 0u32;
        while self.visible_seq.load(Ordering::Acquire) < seq {
            if round < 64 {
                std::hint::spin_loop();
            } else if round < 128 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(std::time::Duration::from_micros(10));
            }
            round = round.saturating_add(1);
        }
    }

    /// Runs `leader`'s task (see [`LeaderTask`]) and pops it; its result
    /// is the write's. Safe to wait for publication: every earlier group
    /// was popped by its leader before being inserted.
    fn lead_task(&self, q: &mut MutexGuard<'_, WriteQueue>, leader: &Arc<Writer>) -> Logged {
        let task = leader.task.lock().take();
        let first_seq = q.last_seq;
        let result = MutexGuard::unlocked(q, || {
            self.wait_published(first_seq);
            match task {
                Some(task) => task(self, first_seq + 1),
                None => Ok(false),
            }
        });
        if let Ok(true) = result {
            q.last_seq = first_seq + 1;
        }
        q.writers.pop_front();
        Logged {
            group: Vec::new(),
            result: result.map(|_| ()),
            rejected: Vec::new(),
            mem: Arc::clone(&q.active),
        }
    }

    /// Runs the locked part of one group with `leader` at the head of the
    /// queue: makes room, builds the group, numbers and logs it (queue
    /// unlocked meanwhile), and pops it. `Err` when the leader's write
    /// ends without a group (no room, or a `flush()` request done).
    fn lead(
        &self,
        ws: &WriteSide,
        q: &mut MutexGuard<'_, WriteQueue>,
        leader: &Arc<Writer>,
    ) -> Result<Logged> {
        if let Err(e) = self.make_room(ws, q, leader.force_switch) {
            q.writers.pop_front();
            return Err(e);
        }
        if leader.has_task {
            return Ok(self.lead_task(q, leader));
        }
        if leader.force_switch {
            q.writers.pop_front();
            // Done: there is no group to finish.
            return Ok(Logged {
                group: Vec::new(),
                result: Ok(()),
                rejected: Vec::new(),
                mem: Arc::clone(&q.active),
            });
        }
        if leader.sync {
            self.gather(q);
        }
        // Build the group. Sequence numbers are assigned below, after
        // transaction validation, so a rejected transaction leaves no gap.
        let mut group = SPARE_GROUP
            .try_with(|c| std::mem::take(&mut *c.borrow_mut()))
            .unwrap_or_default();
        group.clear();
        let mut bytes = 0usize;
        let mut limit = MAX_GROUP_BYTES;
        for w in q.writers.iter() {
            if w.force_switch || w.has_task {
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
        let mem = Arc::clone(&q.active);
        // A batch writing to a keyspace dropped meanwhile is refused whole
        // (checked here, queue locked: the drop holds the queue).
        let missing = self.missing_keyspaces(&group, &mem);

        // With the queue unlocked (new writers keep queuing): validate the
        // transactions of the group, number the writers that stay in, and
        // log them. This leader alone runs until the group is popped
        // below, so nothing else is numbered or logged meanwhile.
        let (result, rejected, last_seq) = MutexGuard::unlocked(q, || {
            let mut rejected = self.validate_writers(&group, first_seq);
            if let Some(missing) = missing {
                rejected.resize_with(group.len(), || None);
                for (r, m) in rejected.iter_mut().zip(missing) {
                    if r.is_none() {
                        *r = m;
                    }
                }
            }
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
            let members = group
                .iter()
                .enumerate()
                .filter(|&(i, _)| !is_rejected(i))
                .map(|(_, w)| w);
            (self.log_group(ws, &mem, members, sync), rejected, seq)
        });
        if result.is_ok() {
            q.last_seq = last_seq;
            // Queued for publication in sequence order (the queue lock
            // orders groups), before the next leader can log anything.
            let mut pq = ws.publishing.lock();
            for (i, w) in group.iter().enumerate() {
                // SAFETY: this thread leads the group holding `w`.
                let b = unsafe { w.batch() };
                if b.count() > 0 && !rejected.get(i).is_some_and(Option::is_some) {
                    w.publication.store(UNPUBLISHED, Ordering::Relaxed);
                    pq.push_back(Pending {
                        last: b.sequence() + u64::from(b.count()) - 1,
                        writer: Arc::clone(w),
                        inserted: false,
                        for_parked: false,
                    });
                }
            }
        }
        if let Some(start) = group_start {
            let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            q.sync_group_us = (q.sync_group_us.saturating_mul(7)).saturating_add(us) / 8;
        }
        for _ in 0..group.len() {
            q.writers.pop_front();
        }
        Ok(Logged {
            group,
            result,
            rejected,
            mem,
        })
    }

    /// The unlocked end of a group, run by its leader after the next
    /// leader took over: answers the writers that are not inserted
    /// (rejected, failed group, empty batch) and, if the group was logged,
    /// hands each unsynced follower still waiting actively its own insert
    /// (`INSERT`), inserts its own batch and those of the parked and the
    /// synced followers, marks them inserted and waits until its own is
    /// visible.
    /// Returns the leader's own result.
    fn finish_group(&self, ws: &WriteSide, logged: Logged) -> Result<()> {
        let Logged {
            mut group,
            result,
            rejected,
            mem,
        } = logged;
        if group.is_empty() {
            return result;
        }
        let mut wake = SPARE_WAKE
            .try_with(|c| std::mem::take(&mut *c.borrow_mut()))
            .unwrap_or_default();
        let mut rejected = rejected.into_iter().chain(std::iter::repeat_with(|| None));
        // `group` is reordered so that its first `mine` writers are the
        // ones this leader inserts (itself first, if it is inserted), in
        // sequence order.
        let mut mine = 0usize;
        let mut leader_result = None;
        for i in 0..group.len() {
            let w = &group[i];
            // SAFETY: this leader owns the popped writers until it answers
            // them or hands them their insert.
            let empty = unsafe { w.batch() }.count() == 0;
            let answer = match (rejected.next().flatten(), &result) {
                (Some(e), _) => Some(Err(e)),
                // Of the same kind as the leader's (issue 22).
                (None, Err(e)) => Some(Err(e.clone())),
                (None, Ok(())) if empty => Some(Ok(())),
                (None, Ok(())) => None,
            };
            let leader_inserts = match answer {
                Some(answer) if i == 0 => {
                    leader_result = Some(answer);
                    false
                }
                Some(answer) => {
                    *w.result.lock() = Some(answer);
                    // Woken only if it parked (see `wait_turn`).
                    if w.state.swap(DONE, Ordering::AcqRel) == PARKED {
                        wake.push(w.thread.clone());
                    }
                    false
                }
                None if i == 0 => true,
                // A synced follower is answered by the leader, which
                // inserts its batch: next to the fdatasync the insert is
                // cheap, and handing it out made 8 synced writers on 2
                // cores wait on each other's scheduling (fillsync,
                // 8 threads: 36.8K -> 19.7K ops/s).
                None if w.sync => true,
                None => {
                    // SAFETY: as above; `mem` is set before `INSERT` is
                    // published (release) and read by its thread after.
                    unsafe { *w.mem.get() = Some(Arc::clone(&mem)) };
                    let handed = w
                        .state
                        .compare_exchange(WAITING, INSERT, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    if !handed {
                        // Parked: its batch is this leader's to insert.
                        // SAFETY: as above; the writer waits for `DONE`.
                        unsafe { *w.mem.get() = None };
                    }
                    !handed
                }
            };
            if leader_inserts {
                group.swap(mine, i);
                mine += 1;
            }
        }
        // The other followers' references go now, so that each can reuse
        // its writer (`Writer::keep`).
        group.truncate(mine);
        for t in wake.drain(..) {
            t.unpark();
        }
        let _ = SPARE_WAKE.try_with(|c| *c.borrow_mut() = wake);
        if !group.is_empty() {
            for w in &group {
                // SAFETY: the leader's own batch, or a parked follower's.
                let b = unsafe { w.batch() };
                mem.insert_batch(b);
                self.note_row_writes(b);
            }
            let own = group.first().filter(|_| leader_result.is_none());
            self.mark_inserted(ws, &group, own);
            if let Some(own) = own {
                wait_published_own(own);
            }
        }
        group.clear();
        let _ = SPARE_GROUP.try_with(|c| *c.borrow_mut() = group);
        leader_result.unwrap_or(result)
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
    /// transactions gets an empty vector and costs nothing here. With a
    /// check, it first waits until every write before `first_seq` (the
    /// group's numbering start) is visible: validation reads them.
    fn validate_writers(&self, group: &[Arc<Writer>], first_seq: SeqNo) -> Vec<Option<Error>> {
        if group.iter().all(|w| w.check.is_none()) {
            return Vec::new();
        }
        self.wait_published(first_seq);
        // SAFETY: this thread leads the group holding these writers.
        let batches: Vec<&WriteBatch> = group.iter().map(|w| &*unsafe { w.batch() }).collect();
        validate_group(
            &|id| self.superversion_of(id),
            group
                .iter()
                .zip(&batches)
                .map(|(w, b)| (w.check.as_ref(), &**b)),
        )
    }

    /// Appends the WAL records of a numbered group and syncs or flushes
    /// the WAL (queue unlocked), and counts the group's writes. Large
    /// values go to the live blob files of their memtables in `mems`
    /// first (`super::separate`). A failure becomes the background error
    /// and is returned as such.
    fn log_group<'a>(
        &self,
        ws: &WriteSide,
        mems: &ActiveMems,
        members: impl Iterator<Item = &'a Arc<Writer>> + Clone,
        sync: bool,
    ) -> Result<()> {
        self.append_group(ws, mems, members, sync)
            .map_err(|e| Error::Background(self.set_bg_error(e)))
    }

    /// [`Self::log_group`] without recording a failure as the background
    /// error: the caller must (with [`DbInner::set_bg_error`], or
    /// [`DbInner::set_bg_error_queue_locked`] when it holds the queue).
    fn append_group<'a>(
        &self,
        ws: &WriteSide,
        mems: &ActiveMems,
        members: impl Iterator<Item = &'a Arc<Writer>> + Clone,
        sync: bool,
    ) -> std::result::Result<(), Error> {
        let mut wal = ws.wal.lock();
        let res = (|| {
            if mems.min_separated() != usize::MAX {
                let mut separated = false;
                for w in members.clone() {
                    // SAFETY: this thread leads the group holding `w`.
                    let b = unsafe { w.batch() };
                    if b.max_value() >= mems.min_separated() {
                        self.separate_values(&mut wal, mems, b)?;
                        separated = true;
                    }
                }
                if separated {
                    wal.publish_blobs()?;
                }
            }
            // Bytes appended to the file: records with their headers
            // and any block padding.
            let start = wal.len();
            for w in members.clone() {
                // SAFETY: this thread leads the group holding `w`.
                unsafe { w.batch() }.with_wal_payload(|p| wal.add_record(p))?;
            }
            let added = wal.len() - start;
            // Written only with the WAL locked (appends, syncs, switches),
            // so a load and a store, no locked instruction: the locked add
            // was the direct writer's largest sample while logging (two
            // threads: about +2 % without it).
            let user_bytes: u64 = members
                .clone()
                // SAFETY: this thread leads the group holding `w`.
                .map(|w| unsafe { w.batch() }.user_bytes())
                .sum();
            let io = &self.io;
            io.wal_bytes.store(
                io.wal_bytes.load(Ordering::Relaxed) + added,
                Ordering::Relaxed,
            );
            io.user_bytes.store(
                io.user_bytes.load(Ordering::Relaxed) + user_bytes,
                Ordering::Relaxed,
            );
            let unsynced = self.io.wal_unsynced.load(Ordering::Relaxed) + added;
            let per_bytes = self.opts.wal_bytes_per_sync;
            if sync || (per_bytes > 0 && unsynced >= per_bytes) {
                self.sync_wal(&mut wal)?;
                self.io.wal_unsynced.store(0, Ordering::Relaxed);
            } else {
                wal.flush()?;
                self.io.wal_unsynced.store(unsynced, Ordering::Relaxed);
            }
            Ok(())
        })();
        // The WAL lock is released before the caller records the error
        // (`set_bg_error` takes the queue; lock order: queue, then WAL).
        drop(wal);
        res?;
        let (mut ops, mut deletes, mut writers) = (0u64, 0u64, 0u64);
        for w in members {
            // SAFETY: this thread leads the group holding `w`.
            let b = unsafe { w.batch() };
            ops += u64::from(b.count());
            deletes += b.deletes();
            writers += 1;
        }
        self.metrics.record_writes(writers, ops, deletes);
        Ok(())
    }

    /// Ensures the active memtable has room, freezing it when full (or when
    /// `force` and it is not empty). Stalls while the frozen memtables are
    /// at `max_write_buffer_number - 1`.
    fn make_room(
        &self,
        ws: &WriteSide,
        q: &mut MutexGuard<'_, WriteQueue>,
        mut force: bool,
    ) -> Result<()> {
        let mut stalled: Option<(std::time::Instant, Stall)> = None;
        let mut slowed = false;
        let result = loop {
            if let Some(e) = self.bg_error() {
                break Err(e);
            }
            if let Err(e) = self.check_open() {
                break Err(e);
            }
            let condition = decode_stall(self.compaction.stall_condition.load(Ordering::Acquire));
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
                    ws.stall_cv.wait(q);
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
            // The keyspaces whose memtable is full (or, forced, holds
            // anything); usually none, checked with two atomic loads each.
            let due = |t: &Tree, m: &MemTable| memtable_full(t, m) || (force && !m.is_empty());
            if !q.active.entries().iter().any(|(t, m)| due(t, m)) {
                break Ok(());
            }
            let mut switch: Vec<u32> = q
                .active
                .entries()
                .iter()
                .filter(|(t, m)| due(t, m))
                .map(|(t, _)| t.id)
                .collect();
            self.add_wal_pinners(q, &mut switch);
            let crowded = q.active.entries().iter().find_map(|(t, _)| {
                let n = t.sv.load().imms.len();
                (switch.contains(&t.id) && n + 1 >= t.opts().max_write_buffer_number).then_some(n)
            });
            if let Some(frozen) = crowded {
                if stalled.is_none() {
                    db_event!(
                        self.metrics,
                        WARN,
                        "writes stopped: waiting for a memtable flush",
                        frozen_memtables = frozen
                    );
                    stalled = Some((std::time::Instant::now(), Stall::MemtableStop));
                    self.metrics.stall_begun(Stall::MemtableStop);
                }
                let t = std::time::Instant::now();
                ws.stall_cv.wait(q);
                self.metrics.stalled_for(Stall::MemtableStop, t.elapsed());
                continue;
            }
            // The groups before this one may still be inserting into the
            // memtables about to be frozen: a frozen memtable is complete
            // (the flush reads it once). They wait on nothing this leader
            // holds.
            self.wait_published(q.last_seq);
            if let Err(e) = self.switch_memtables(ws, q, &switch) {
                // Recorded here, with the queue held: `set_bg_error` would
                // lock the queue again and deadlock.
                break Err(Error::Background(self.set_bg_error_queue_locked(e, q)));
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

    /// Starts a new WAL, freezes the active memtables of the keyspaces in
    /// `switch` and gives them new ones writing to it. The other
    /// keyspaces keep their memtables, which then span several WALs; an
    /// empty one moves to the new WAL, so an idle keyspace never keeps old
    /// WALs alive. Called by the leader with the queue locked, every
    /// logged group inserted; an error must become the background error
    /// (the old WAL's sync may have failed), which the caller records.
    fn switch_memtables(
        &self,
        ws: &WriteSide,
        q: &mut MutexGuard<'_, WriteQueue>,
        switch: &[u32],
    ) -> Result<()> {
        let number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let span =
            tracing::debug_span!("wal_switch", db = self.metrics.label.as_str(), wal = number);
        let _enter = span.enter();
        let path = log_file_name(&self.dir, number);
        let res = (|| {
            let mut wal = ws.wal.lock();
            // Everything in the old WAL becomes durable before anything in
            // the new one can be: a power loss then never leaves a hole.
            self.timed_wal_sync(|| wal.finish())?;
            self.io.wal_unsynced.store(0, Ordering::Relaxed);
            let mut new_wal =
                LogWriter::create_wal(self.fs.as_ref(), path.clone(), number, self.opts.wal_mmap)?;
            // The header becomes durable before the directory entry does:
            // a crash can then leave the new WAL missing, or with a valid
            // header, but never with a torn one (which recovery must take
            // for a damaged or foreign file).
            self.timed_wal_sync(|| new_wal.sync())?;
            self.fs.sync_dir(&self.dir)?;
            wal.replace(new_wal);
            Ok(())
        })();
        res?;
        {
            let _v = self.versions.lock();
            for (tree, mem) in q.active.entries() {
                if switch.contains(&tree.id) {
                    freeze(tree, mem, number);
                } else {
                    mem.advance_empty_log_number(number);
                }
            }
        }
        q.wal_number = number;
        let written = self.io.wal_bytes.load(Ordering::Relaxed);
        q.wal_starts.push_back((number, written));
        q.active = Arc::new(ActiveMems::of(
            q.active.entries().iter().map(|(t, _)| Arc::clone(t)),
        ));
        let mut st = self.flush.state.lock();
        st.pending = true;
        self.flush.work_cv.notify_one();
        Ok(())
    }

    /// `max_total_wal_size`: when the live WALs hold more than it, adds to
    /// `switch` (the keyspaces about to get a new WAL) the keyspaces whose
    /// active memtable keeps the oldest live WAL alive, so that they are
    /// flushed and the WAL can go (RocksDB flushes them the same way).
    /// Runs only when a new WAL is about to start.
    fn add_wal_pinners(&self, q: &mut WriteQueue, switch: &mut Vec<u32>) {
        let entries = q.active.entries();
        let Some(oldest) = entries.iter().map(|(t, _)| t.oldest_log_needed()).min() else {
            return;
        };
        while q.wal_starts.len() > 1 && q.wal_starts[1].0 <= oldest {
            q.wal_starts.pop_front();
        }
        let start = q.wal_starts.front().map_or(0, |&(_, b)| b);
        let live = self
            .io
            .wal_bytes
            .load(Ordering::Relaxed)
            .saturating_sub(start);
        let limit = match self.opts.max_total_wal_size {
            0 => entries
                .iter()
                .map(|(t, _)| {
                    let o = t.opts();
                    (o.write_buffer_size as u64).saturating_mul(o.max_write_buffer_number as u64)
                })
                .sum::<u64>()
                .saturating_mul(4),
            n => n,
        };
        if live <= limit {
            return;
        }
        for (t, m) in entries {
            let pins = t.oldest_log_needed() == oldest && t.sv.load().imms.is_empty();
            if pins && !m.is_empty() && !switch.contains(&t.id) {
                tracing::debug!(
                    db = self.metrics.label.as_str(),
                    keyspace = t.name.as_str(),
                    live_wal_bytes = live,
                    "flushing a keyspace that keeps the oldest WAL alive (max_total_wal_size)"
                );
                switch.push(t.id);
            }
        }
    }

    /// The error of each writer of `group` whose batch writes to a
    /// keyspace `mems` does not have (dropped meanwhile); `None` when
    /// there is none (the common case costs one flag test per batch).
    fn missing_keyspaces(
        &self,
        group: &[Arc<Writer>],
        mems: &ActiveMems,
    ) -> Option<Vec<Option<Error>>> {
        let mut out: Option<Vec<Option<Error>>> = None;
        for (i, w) in group.iter().enumerate() {
            // SAFETY: this thread leads the group holding `w`.
            let b = unsafe { w.batch() };
            if let Some(id) = mems.missing_keyspace(b) {
                let v = out.get_or_insert_with(|| Vec::with_capacity(group.len()));
                v.resize_with(i, || None);
                v.push(Some(Error::KeyspaceDropped(self.keyspace_name_of(id))));
            }
        }
        if let Some(v) = &mut out {
            v.resize_with(group.len(), || None);
        }
        out
    }
}

/// Whether `m`, the active memtable of `t`, is full and must be switched
/// before the next write (`make_room`; a direct write leaves that to a
/// leader).
fn memtable_full(t: &Tree, m: &MemTable) -> bool {
    m.approximate_size() >= t.write_buffer_size()
}

/// Freezes `mem`, the active memtable of `tree`, and installs a new one
/// writing to WAL `number` (versions lock held).
fn freeze(tree: &Tree, mem: &Arc<MemTable>, number: u64) {
    let cur = tree.sv.load();
    debug_assert!(Arc::ptr_eq(&cur.mem, mem));
    let mut imms = Vec::with_capacity(cur.imms.len() + 1);
    imms.push(Arc::clone(mem));
    imms.extend(cur.imms.iter().cloned());
    tree.sv.store(Arc::new(SuperVersion {
        mem: Arc::new(MemTable::for_tree(number, &tree.opts())),
        imms,
        version: Arc::clone(&cur.version),
    }));
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
                let mut st = self.flush.state.lock();
                if st.shutdown {
                    return;
                }
                self.flush.wal_sync_cv.wait_for(&mut st, half);
                if st.shutdown {
                    return;
                }
            }
            if self.io.wal_unsynced.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let Ok(ws) = self.writable() else {
                return;
            };
            let mut wal = ws.wal.lock();
            if wal.check_failed().is_err() {
                // The WAL itself failed: never fsync it again (fail-stop).
                // Any other background error (a failed flush or
                // compaction) leaves it sound, and its acknowledged writes
                // are still made durable on time.
                return;
            }
            match self.sync_wal(&mut wal) {
                Ok(()) => self.io.wal_unsynced.store(0, Ordering::Relaxed),
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
