//! [`FaultFs`]: an in-memory file system that models durability and
//! injects I/O errors, for crash and error-handling tests.
//!
//! # Durability model
//!
//! Like LevelDB's `fault_injection_test.cc` and Pebble's `CrashableMem`,
//! every file keeps its *synced* content apart from the tail that was
//! written but not yet synced: [`WritableFile::sync_data`] makes the file's
//! current content durable. Data is only written at the end of the data
//! written before (appends, and writes into a preallocated zero tail), so
//! what is durable is a prefix; [`FileSystem::create`] always makes a new
//! file (an existing name is replaced by it, as after an `unlink` +
//! `creat`).
//!
//! Directory entries are durable only after [`FileSystem::sync_dir`] of the
//! parent: creating, renaming and removing a file change the visible
//! namespace at once, but a power loss brings the directory back to its
//! state at the last `sync_dir`. A file created and synced whose directory
//! was never synced disappears; a rename not followed by `sync_dir` is
//! undone; a removed file comes back. Directories themselves (made by
//! [`FileSystem::create_dir_all`]) are durable at once.
//!
//! [`FaultFs::crash`] simulates the power loss: every file reverts to its
//! synced content, optionally keeping a random prefix of its unsynced tail
//! and optionally garbling (tearing) the last unsynced 4 KiB page of what
//! was kept ([`CrashMode`]); the namespace reverts to the last synced
//! directory state (or, with [`CrashMode::keep_unsynced_dir_ops`], keeps
//! the live one, as a file system that journals metadata eagerly might).
//! Afterwards the file system is usable again: the next `Db::open` sees
//! the crashed state. Files and locks opened before the crash are dead
//! (every call on them fails; dropping them does nothing).
//!
//! # File sizes: preallocation and trim
//!
//! A file is the bytes written to it followed by zeros up to its size.
//! Besides writes, the size changes by `fallocate` ([`OpKind::Allocate`]:
//! a mapped file's reserved blocks) and `ftruncate` ([`OpKind::SetLen`]:
//! [`WritableFile::preallocate`] of a plain file, [`WritableFile::trim`]).
//! Such a change is metadata and is modelled on ext4, which journals it
//! with the other metadata changes, in order: it is durable once the
//! journal commits it. `fdatasync` of the file forces that (a size change
//! is metadata a later read needs, which `fdatasync` must write); before
//! it, any other file's `fsync` (ext4 has one running transaction) or the
//! periodic commit may or may not have committed it. So a crash keeps the
//! size of the last sync plus a prefix of the size changes made since —
//! none, or with [`CrashMode::keep_unsynced_prefix`] a random number of
//! them, or with [`CrashMode::keep_unsynced_dir_ops`] (eager metadata) all
//! — independently of how much unsynced data survives. A preallocated file
//! can then come back with zeros right after its last surviving byte
//! (blocks reserved by `fallocate` are "unwritten" extents that read as
//! zeros until a write into them is committed), and a trim not followed by
//! a sync can be undone or kept over lost data. Only kept unsynced data is
//! ever torn; the zero tail reads as zeros.
//!
//! # Mapped files
//!
//! [`FileSystem::create_mapped`] returns the engine's own mapped writer
//! (`MappedWritable`, that of the WAL) over a simulated file (`FaultMap`),
//! so all its logic runs in crash and error tests as it does on a disk:
//! blocks reserved ahead (one [`OpKind::Allocate`] per `fallocate`), 1 MiB
//! windows, the switches between stores into the map and buffered
//! `pwrite`s, the trim and the writeback hand-off. A store into a window
//! is an [`OpKind::Append`]: its bytes are in the file at once, visible to
//! every reader and unsynced, as through a shared mapping of the page
//! cache. A `pwrite` is an `Append` too. A store past the end of the file,
//! a `SIGBUS` on a real mapping, is an error here. Mapping a window counts
//! nothing. Writeback hints are counted
//! ([`FaultStats::writeback_requests`]) and change nothing: data handed to
//! writeback is as unsynced as any other until a sync. Unlike a real
//! store, a simulated one can fail (an injected `Append` fault, the power
//! off): it changes nothing and the writer gets an error, where a real
//! process would have had none to get, or would have died.
//!
//! A crash is usually taken while a database is still running, in three
//! steps: [`FaultFs::power_off`] (or [`FaultFs::power_off_after`], to cut
//! the power in the middle of background work) freezes the file system,
//! so every later call fails and changes nothing; the database is dropped
//! (its threads see errors and stop); [`FaultFs::crash`] then builds the
//! post-crash state and turns the power back on.
//!
//! # Fault injection
//!
//! Every operation of an [`OpKind`] is counted ([`FaultFs::stats`]). A
//! [`FaultRule`] ([`FaultFs::inject`], or the shorthand
//! [`FaultFs::fail_after`]) makes chosen operations fail with a chosen
//! [`std::io::ErrorKind`] — `Other` for an EIO-like error, `StorageFull`
//! for ENOSPC, `Interrupted` for EINTR — and [`FaultFs::fail_randomly`]
//! fails each operation with a probability, from a seeded generator. A
//! failed call changes nothing (a failed append writes nothing, a failed
//! sync makes nothing durable, a failed rename leaves both names as they
//! were), and the file system keeps working: only that call failed, so the
//! engine's reaction can be observed. [`FaultFs::record_ops`] keeps a log
//! of the operations, to check for example that a failed fsync is never
//! retried.
//!
//! Everything random is seeded: a test that prints its seed replays. (The
//! order of operations issued by concurrent threads is up to the
//! scheduler, so a replay is exact only for one thread's operations.)

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::fs::mapped::{MapBackend, MappedWritable};
use crate::fs::{FileLock, FileSystem, RandomAccessFile, WritableFile};

/// Size of the page that [`CrashMode::tear_last_page`] garbles.
pub const PAGE_SIZE: usize = 4096;

/// The kinds of operations that are counted and can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`FileSystem::create`].
    Create,
    /// [`WritableFile::append`].
    Append,
    /// [`WritableFile::flush`].
    Flush,
    /// [`WritableFile::sync_data`].
    Sync,
    /// [`FileSystem::sync_dir`].
    SyncDir,
    /// [`FileSystem::rename`].
    Rename,
    /// [`FileSystem::remove_file`].
    Remove,
    /// [`FileSystem::read_file`].
    Read,
    /// `fallocate`: the blocks a mapped WAL reserves ahead
    /// ([`FileSystem::create_mapped`], [`WritableFile::preallocate`]).
    Allocate,
    /// `ftruncate`: [`WritableFile::preallocate`] of a plain file (a sparse
    /// tail) and every [`WritableFile::trim`].
    SetLen,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 10] = [
        OpKind::Create,
        OpKind::Append,
        OpKind::Flush,
        OpKind::Sync,
        OpKind::SyncDir,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::Read,
        OpKind::Allocate,
        OpKind::SetLen,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// True for the kinds that change the file system (all but `Read`).
    pub fn is_mutation(self) -> bool {
        self != OpKind::Read
    }
}

/// How [`FaultFs::crash`] treats what was not made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrashMode {
    /// Keep a random prefix (possibly empty, possibly all) of each file's
    /// unsynced tail, as if the OS had written some of it back, and of its
    /// size changes since its last sync (see the module docs).
    pub keep_unsynced_prefix: bool,
    /// Garble a random part of the last 4 KiB page of the kept unsynced
    /// data (a torn page write). Synced data is never damaged.
    pub tear_last_page: bool,
    /// Keep the live namespace (every create, rename and remove, synced or
    /// not) instead of reverting to the last `sync_dir`, and every file's
    /// latest size change (`fallocate`, `ftruncate`; see the module docs).
    /// File data still reverts to its synced data.
    pub keep_unsynced_dir_ops: bool,
}

impl CrashMode {
    /// Lose everything unsynced: data tails, size changes and directory
    /// changes.
    pub const DROP_UNSYNCED: CrashMode = CrashMode {
        keep_unsynced_prefix: false,
        tear_last_page: false,
        keep_unsynced_dir_ops: false,
    };

    /// A mode drawn from `seed`: each of the three switches is on with
    /// probability 1/2, except `keep_unsynced_dir_ops` (1/4).
    pub fn random(seed: u64) -> CrashMode {
        let mut r = Rng::new(seed ^ 0x6d6f_6465);
        CrashMode {
            keep_unsynced_prefix: r.below(2) == 0,
            tear_last_page: r.below(2) == 0,
            keep_unsynced_dir_ops: r.below(4) == 0,
        }
    }
}

/// Which operations fail, and how. Installed with [`FaultFs::inject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The kind of operation that fails.
    pub kind: OpKind,
    /// Matching operations that succeed first.
    pub skip: u64,
    /// How many matching operations fail after those (`u64::MAX`: all).
    pub times: u64,
    /// The error the failing calls report.
    pub error: ErrorKind,
    /// Only operations on a path whose file name contains this string
    /// match (for example `".log"`, `".sst"`, `"MANIFEST"`, `"CURRENT"`);
    /// `None` matches every path.
    pub name_contains: Option<String>,
}

impl FaultRule {
    /// The rule "after `skip` successful operations of `kind`, the next one
    /// fails with `error`", on any path.
    pub fn new(kind: OpKind, skip: u64, error: ErrorKind) -> FaultRule {
        FaultRule {
            kind,
            skip,
            times: 1,
            error,
            name_contains: None,
        }
    }

    /// The same rule, restricted to file names containing `s`.
    pub fn on(mut self, s: &str) -> FaultRule {
        self.name_contains = Some(s.to_string());
        self
    }

    /// The same rule, failing `n` matching operations in a row.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.times = n;
        self
    }

    fn matches(&self, kind: OpKind, path: &Path) -> bool {
        kind == self.kind
            && self.name_contains.as_deref().is_none_or(|s| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(s))
            })
    }
}

/// Operation and fault counters of a [`FaultFs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    ops: [u64; OpKind::ALL.len()],
    injected: [u64; OpKind::ALL.len()],
    /// Crashes simulated by [`FaultFs::crash`].
    pub crashes: u64,
    /// Calls refused because the power was off.
    pub refused_powered_off: u64,
    /// Writeback hints of mapped files (`sync_file_range` on a real file
    /// system): counted only, they change nothing (see the module docs).
    pub writeback_requests: u64,
}

impl FaultStats {
    /// Operations of `kind` attempted (failed ones included).
    pub fn ops(&self, kind: OpKind) -> u64 {
        self.ops[kind.index()]
    }

    /// Faults injected into operations of `kind`.
    pub fn injected(&self, kind: OpKind) -> u64 {
        self.injected[kind.index()]
    }

    /// Operations of every kind attempted.
    pub fn total_ops(&self) -> u64 {
        self.ops.iter().sum()
    }

    /// Faults injected into operations of every kind.
    pub fn total_injected(&self) -> u64 {
        self.injected.iter().sum()
    }
}

/// One entry of the operation log kept after [`FaultFs::record_ops`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// What was done.
    pub kind: OpKind,
    /// On which file (the source, for a rename).
    pub path: PathBuf,
    /// True when the call failed (injected fault or power off).
    pub failed: bool,
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// A file: the bytes written, then a tail of zeros up to its size.
///
/// Data is written at the end only (appends, and writes into the
/// preallocated zero tail right after the data), so what is durable is a
/// prefix of `data`. The size set by `fallocate` or `ftruncate` is
/// metadata kept apart, with the changes made to it since the last sync.
#[derive(Debug, Default)]
struct Inode {
    /// Bytes written from offset 0.
    data: Vec<u8>,
    /// Length of the durable prefix of `data`.
    synced_len: usize,
    /// The size last set by `fallocate` or `ftruncate` (0 when never): the
    /// file is `max(data.len(), alloc)` bytes long and reads as zeros after
    /// `data`.
    alloc: usize,
    /// `alloc` at the last sync: a crash keeps at least this.
    synced_alloc: usize,
    /// The values `alloc` took since the last sync, in order: a crash
    /// keeps a prefix of them (see [`FaultFs::crash`]).
    alloc_changes: Vec<usize>,
}

impl Inode {
    /// The file's size.
    fn size(&self) -> usize {
        self.data.len().max(self.alloc)
    }

    fn set_alloc(&mut self, n: usize) {
        self.alloc = n;
        self.alloc_changes.push(n);
    }

    /// `ftruncate(n)`. Cutting into synced data is taken as durable at
    /// once (the engine never does it: `trim` cuts at the end of the data).
    fn set_len(&mut self, n: usize) {
        if n < self.synced_len {
            self.data.truncate(n);
            self.synced_len = n;
            self.synced_alloc = n;
            self.alloc = n;
            self.alloc_changes.clear();
            return;
        }
        self.data.truncate(n);
        self.set_alloc(n);
    }

    /// `fallocate(0..end)`, mode 0: grows the size, never shrinks it.
    fn allocate(&mut self, end: usize) {
        if end > self.size() {
            self.set_alloc(end);
        }
    }

    /// Writes `bytes` at `offset`, at or after the synced data (a gap
    /// before it reads as zeros, as it did).
    fn write_at(&mut self, offset: usize, bytes: &[u8]) -> std::io::Result<()> {
        if offset < self.synced_len {
            return Err(std::io::Error::new(
                ErrorKind::Unsupported,
                "FaultFs: overwriting synced data is not modelled",
            ));
        }
        if offset == self.data.len() {
            // An append: one copy.
            self.data.extend_from_slice(bytes);
            return Ok(());
        }
        let end = offset + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset..end].copy_from_slice(bytes);
        Ok(())
    }

    /// Makes the data and the size durable (`fdatasync`: a size change is
    /// metadata a later read needs, so it is written too).
    fn sync(&mut self) {
        self.synced_len = self.data.len();
        self.synced_alloc = self.alloc;
        self.alloc_changes.clear();
    }

    /// Copies the bytes at `offset` into `buf`; returns how many (fewer
    /// only at the end of the file).
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> usize {
        let n = self.size().saturating_sub(offset).min(buf.len());
        let from_data = self.data.len().saturating_sub(offset).min(n);
        if from_data > 0 {
            buf[..from_data].copy_from_slice(&self.data[offset..offset + from_data]);
        }
        buf[from_data..n].fill(0);
        n
    }

    /// The whole content.
    fn contents(&self) -> Bytes {
        let mut v = Vec::with_capacity(self.size());
        v.extend_from_slice(&self.data);
        v.resize(self.size(), 0);
        Bytes::from(v)
    }
}

#[derive(Debug, Default)]
struct Dir {
    /// What callers see now: file name → inode.
    live: BTreeMap<String, u64>,
    /// What survives a power loss: the namespace at the last `sync_dir`.
    durable: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct RandomFaults {
    rng: Rng,
    probability: f64,
    kinds: HashSet<OpKind>,
    error: ErrorKind,
}

#[derive(Debug)]
struct State {
    dirs: BTreeMap<PathBuf, Dir>,
    inodes: HashMap<u64, Inode>,
    /// Open handles (writers and readers) per inode (an open file is kept
    /// even when unnamed).
    open: HashMap<u64, usize>,
    next_inode: u64,
    /// Incremented by every crash: handles of an older epoch are dead.
    epoch: u64,
    locks: HashMap<PathBuf, u64>,
    powered: bool,
    /// Mutating operations left before the power goes off.
    power_budget: Option<u64>,
    rules: Vec<FaultRule>,
    random: Option<RandomFaults>,
    stats: FaultStats,
    log: Option<Vec<OpRecord>>,
}

impl State {
    /// Counts an operation and decides whether it fails.
    fn check(&mut self, kind: OpKind, path: &Path) -> Result<()> {
        self.stats.ops[kind.index()] += 1;
        let failed = self.decide(kind, path);
        if let Some(log) = &mut self.log {
            log.push(OpRecord {
                kind,
                path: path.to_path_buf(),
                failed: failed.is_some(),
            });
        }
        match failed {
            None => Ok(()),
            Some(e) => Err(Error::io(path, e)),
        }
    }

    fn decide(&mut self, kind: OpKind, path: &Path) -> Option<std::io::Error> {
        if kind.is_mutation() {
            if let Some(b) = &mut self.power_budget {
                if *b == 0 {
                    self.powered = false;
                    self.power_budget = None;
                } else {
                    *b -= 1;
                }
            }
        }
        if !self.powered {
            self.stats.refused_powered_off += 1;
            return Some(std::io::Error::other("FaultFs: the power is off"));
        }
        for i in 0..self.rules.len() {
            let r = &mut self.rules[i];
            if !r.matches(kind, path) {
                continue;
            }
            if r.skip > 0 {
                r.skip -= 1;
                continue;
            }
            let error = r.error;
            r.times = r.times.saturating_sub(1);
            if r.times == 0 {
                self.rules.remove(i);
            }
            self.stats.injected[kind.index()] += 1;
            return Some(injected(error, kind));
        }
        if let Some(rf) = &mut self.random {
            if rf.kinds.contains(&kind) && rf.rng.chance(rf.probability) {
                let error = rf.error;
                self.stats.injected[kind.index()] += 1;
                return Some(injected(error, kind));
            }
        }
        None
    }

    fn check_epoch(&self, epoch: u64, path: &Path) -> Result<()> {
        if epoch != self.epoch {
            return Err(Error::io(
                path,
                std::io::Error::other("FaultFs: file handle from before a crash"),
            ));
        }
        Ok(())
    }

    fn lookup(&self, path: &Path) -> Option<u64> {
        let (dir, name) = split(path)?;
        self.dirs.get(dir)?.live.get(name).copied()
    }

    fn dir_mut(&mut self, dir: &Path, path: &Path) -> Result<&mut Dir> {
        self.dirs
            .get_mut(dir)
            .ok_or_else(|| not_found(path, "no such directory"))
    }

    /// A handle (writer or reader) of `ino` opened in `epoch` is dropped:
    /// the inode goes when nothing else holds it. A handle from before a
    /// crash holds nothing.
    fn close_handle(&mut self, ino: u64, epoch: u64) {
        if self.epoch != epoch {
            return;
        }
        if let Some(n) = self.open.get_mut(&ino) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ino);
            }
        }
        self.collect(&[ino]);
    }

    /// Drops inodes that no name (live or durable) and no open handle
    /// holds.
    fn collect(&mut self, candidates: &[u64]) {
        for &ino in candidates {
            if self.open.get(&ino).is_some_and(|&n| n > 0) {
                continue;
            }
            let named = self.dirs.values().any(|d| {
                d.live.values().any(|&i| i == ino) || d.durable.values().any(|&i| i == ino)
            });
            if !named {
                self.inodes.remove(&ino);
            }
        }
    }
}

fn injected(kind: ErrorKind, op: OpKind) -> std::io::Error {
    std::io::Error::new(kind, format!("FaultFs: injected {kind:?} on {op:?}"))
}

fn not_found(path: &Path, what: &str) -> Error {
    Error::io(path, std::io::Error::new(ErrorKind::NotFound, what))
}

/// `(parent directory, file name)` of `path`.
fn split(path: &Path) -> Option<(&Path, &str)> {
    Some((path.parent()?, path.file_name()?.to_str()?))
}

/// An in-memory file system that separates synced from unsynced data,
/// simulates power loss and injects I/O errors (see the module docs).
/// Cheap to clone: clones share the same files.
#[derive(Clone)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("FaultFs")
            .field("files", &s.inodes.len())
            .field("epoch", &s.epoch)
            .field("powered", &s.powered)
            .finish_non_exhaustive()
    }
}

impl Default for FaultFs {
    fn default() -> Self {
        FaultFs::new()
    }
}

impl FaultFs {
    /// An empty file system holding only the root directory `/`.
    pub fn new() -> FaultFs {
        let mut dirs = BTreeMap::new();
        dirs.insert(PathBuf::from("/"), Dir::default());
        FaultFs {
            state: Arc::new(Mutex::new(State {
                dirs,
                inodes: HashMap::new(),
                open: HashMap::new(),
                next_inode: 1,
                epoch: 0,
                locks: HashMap::new(),
                powered: true,
                power_budget: None,
                rules: Vec::new(),
                random: None,
                stats: FaultStats::default(),
                log: None,
            })),
        }
    }

    /// Simulates a power loss (see the module docs and [`CrashMode`]); the
    /// random choices come from `rng_seed`. Afterwards the power is on,
    /// every lock is released, and handles opened before are dead. Fault
    /// rules stay installed.
    pub fn crash(&self, rng_seed: u64, mode: CrashMode) {
        let mut s = self.state.lock();
        let mut rng = Rng::new(rng_seed);
        s.epoch += 1;
        s.locks.clear();
        s.open.clear();
        s.powered = true;
        s.power_budget = None;
        s.stats.crashes += 1;
        let mut alive = HashSet::new();
        for d in s.dirs.values_mut() {
            if mode.keep_unsynced_dir_ops {
                d.durable = d.live.clone();
            } else {
                d.live = d.durable.clone();
            }
            alive.extend(d.live.values().copied());
        }
        s.inodes.retain(|ino, _| alive.contains(ino));
        // Visit inodes in a fixed order so that a seed replays.
        let mut inos: Vec<u64> = s.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(f) = s.inodes.get_mut(&ino) else {
                continue;
            };
            let synced = f.synced_len.min(f.data.len());
            let unsynced = f.data.len() - synced;
            let mut keep = synced;
            if mode.keep_unsynced_prefix && unsynced > 0 {
                keep += rng.below(unsynced as u64 + 1) as usize;
            }
            f.data.truncate(keep);
            if mode.tear_last_page && keep > synced {
                let page = (keep - 1) / PAGE_SIZE * PAGE_SIZE;
                let from = page.max(synced);
                let a = from + rng.below((keep - from) as u64) as usize;
                let b = a + 1 + rng.below((keep - a) as u64) as usize;
                for byte in &mut f.data[a..b] {
                    *byte = rng.next_u64() as u8;
                }
            }
            // Size changes (fallocate, ftruncate) are journalled metadata:
            // a prefix of those made since the last sync survives.
            let changes = std::mem::take(&mut f.alloc_changes);
            let kept = if changes.is_empty() || mode.keep_unsynced_dir_ops {
                changes.len()
            } else if mode.keep_unsynced_prefix {
                rng.below(changes.len() as u64 + 1) as usize
            } else {
                0
            };
            f.alloc = match kept.checked_sub(1) {
                Some(i) => changes[i],
                None => f.synced_alloc,
            };
            f.sync();
        }
    }

    /// Cuts the power now: every later call fails (with
    /// `ErrorKind::Other`) and changes nothing, until [`FaultFs::crash`].
    pub fn power_off(&self) {
        self.state.lock().powered = false;
    }

    /// Cuts the power after `n` more mutating operations (every kind but
    /// `Read`): the `n + 1`-th one and everything after it fail.
    pub fn power_off_after(&self, n: u64) {
        self.state.lock().power_budget = Some(n);
    }

    /// True while the power is on.
    pub fn is_powered(&self) -> bool {
        self.state.lock().powered
    }

    /// Installs a fault rule. Rules are checked in the order installed;
    /// a rule is removed once it has failed `times` operations.
    pub fn inject(&self, rule: FaultRule) {
        self.state.lock().rules.push(rule);
    }

    /// After `n` more successful operations of `kind` (on any path), the
    /// next one fails with `error`; later ones succeed again.
    pub fn fail_after(&self, kind: OpKind, n: u64, error: ErrorKind) {
        self.inject(FaultRule::new(kind, n, error));
    }

    /// Makes every operation of one of `kinds` fail with `probability`
    /// (0.0..=1.0) and `error`, drawing from a generator seeded with
    /// `seed`. Replaces an earlier random mode.
    pub fn fail_randomly(&self, seed: u64, probability: f64, kinds: &[OpKind], error: ErrorKind) {
        self.state.lock().random = Some(RandomFaults {
            rng: Rng::new(seed),
            probability,
            kinds: kinds.iter().copied().collect(),
            error,
        });
    }

    /// Removes every fault rule and the random mode.
    pub fn clear_faults(&self) {
        let mut s = self.state.lock();
        s.rules.clear();
        s.random = None;
    }

    /// Counters of operations and injected faults.
    pub fn stats(&self) -> FaultStats {
        self.state.lock().stats.clone()
    }

    /// Starts (`true`, clearing any earlier log) or stops keeping a log of
    /// every counted operation.
    pub fn record_ops(&self, on: bool) {
        self.state.lock().log = on.then(Vec::new);
    }

    /// The operations logged since [`FaultFs::record_ops`]`(true)`.
    pub fn ops_log(&self) -> Vec<OpRecord> {
        self.state.lock().log.clone().unwrap_or_default()
    }

    /// Length of the durable (synced) data of the file at `path`, or
    /// `None` when no such file is visible.
    pub fn synced_len(&self, path: &Path) -> Option<u64> {
        let s = self.state.lock();
        let ino = s.lookup(path)?;
        s.inodes.get(&ino).map(|f| f.synced_len as u64)
    }

    /// True when the directory entry of `path` is durable: it survives a
    /// crash and names the file visible now.
    pub fn is_entry_durable(&self, path: &Path) -> bool {
        let s = self.state.lock();
        let Some((dir, name)) = split(path) else {
            return false;
        };
        s.dirs
            .get(dir)
            .is_some_and(|d| d.live.contains_key(name) && d.live.get(name) == d.durable.get(name))
    }
}

/// An open handle on a file of a [`FaultFs`], for writing.
struct Handle {
    state: Arc<Mutex<State>>,
    ino: u64,
    path: PathBuf,
    epoch: u64,
}

impl Handle {
    /// Counts an operation of `kind` on the file (which may fail it: an
    /// injected fault, the power off, a handle from before a crash), then
    /// runs `f` on the inode. A failed call changes nothing.
    fn op<T>(&self, kind: OpKind, f: impl FnOnce(&mut Inode) -> std::io::Result<T>) -> Result<T> {
        let mut s = self.state.lock();
        s.check_epoch(self.epoch, &self.path)?;
        s.check(kind, &self.path)?;
        let inode = s
            .inodes
            .get_mut(&self.ino)
            .ok_or_else(|| not_found(&self.path, "file vanished"))?;
        f(inode).map_err(|e| Error::io(&self.path, e))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.state.lock().close_handle(self.ino, self.epoch);
    }
}

impl FaultFs {
    /// Creates the file `path` (one [`OpKind::Create`]; an existing name
    /// is replaced) and opens it for writing.
    fn new_file(&self, path: &Path) -> Result<Handle> {
        let mut s = self.state.lock();
        s.check(OpKind::Create, path)?;
        let (dir, name) = split(path).ok_or_else(|| not_found(path, "bad file name"))?;
        if s.dirs.contains_key(path) {
            return Err(Error::io(
                path,
                std::io::Error::new(ErrorKind::IsADirectory, "is a directory"),
            ));
        }
        let ino = s.next_inode;
        let old = s.dir_mut(dir, path)?.live.insert(name.to_string(), ino);
        s.next_inode += 1;
        s.inodes.insert(ino, Inode::default());
        *s.open.entry(ino).or_insert(0) += 1;
        if let Some(old) = old {
            s.collect(&[old]);
        }
        Ok(Handle {
            state: Arc::clone(&self.state),
            ino,
            path: path.to_path_buf(),
            epoch: s.epoch,
        })
    }

    /// [`FileSystem::create_mapped`] before boxing (unit tests look inside
    /// the writer). `Ok(None)`: the first reservation failed with
    /// `Unsupported`.
    pub(crate) fn create_mapped_writable(
        &self,
        path: &Path,
    ) -> Result<Option<MappedWritable<FaultMap>>> {
        let h = self.new_file(path)?;
        MappedWritable::new(path.to_path_buf(), FaultMap { h })
    }
}

/// A file of a [`FaultFs`] opened for appending: every append reaches the
/// file at once (no user-space buffer).
struct FaultFile {
    h: Handle,
    len: u64,
    /// The size a `preallocate` gave the file when larger than `len`, else
    /// 0 (as `PosixFs`'s own writer keeps it).
    allocated: u64,
}

impl WritableFile for FaultFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let at = usize::try_from(self.len).unwrap_or(usize::MAX);
        self.h.op(OpKind::Append, |f| f.write_at(at, data))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.h.op(OpKind::Flush, |_| Ok(()))
    }

    fn sync_data(&mut self) -> Result<()> {
        self.h.op(OpKind::Sync, |f| {
            f.sync();
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.len
    }

    /// A sparse tail, as `PosixFs` makes it: one `ftruncate` ([`OpKind::SetLen`]).
    fn preallocate(&mut self, len: u64) -> Result<()> {
        if len > self.len.max(self.allocated) {
            let n = to_usize(len, &self.h.path)?;
            self.h.op(OpKind::SetLen, |f| {
                f.set_len(n);
                Ok(())
            })?;
            self.allocated = len;
        }
        Ok(())
    }

    fn trim(&mut self) -> Result<()> {
        if self.allocated > self.len {
            let n = to_usize(self.len, &self.h.path)?;
            self.h.op(OpKind::SetLen, |f| {
                f.set_len(n);
                Ok(())
            })?;
        }
        self.allocated = 0;
        Ok(())
    }
}

/// `n` as an in-memory offset.
fn to_usize(n: u64, path: &Path) -> Result<usize> {
    usize::try_from(n).map_err(|e| Error::io(path, std::io::Error::other(e)))
}

/// The [`MapBackend`] of a [`FaultFs`] file: the production
/// [`MappedWritable`] runs over it (see the module docs, "Mapped files").
pub(crate) struct FaultMap {
    h: Handle,
}

/// A window of a [`FaultMap`]: the range it covers. Stores go to the inode.
pub(crate) struct FaultWindow {
    start: usize,
    len: usize,
}

/// The `std::io::Error` inside a [`FaultFs`] error.
fn into_io(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => Arc::try_unwrap(source)
            .unwrap_or_else(|shared| std::io::Error::new(shared.kind(), shared.to_string())),
        other => std::io::Error::other(other.to_string()),
    }
}

impl FaultMap {
    fn io_op(
        &self,
        kind: OpKind,
        f: impl FnOnce(&mut Inode) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        self.h.op(kind, f).map_err(into_io)
    }
}

impl MapBackend for FaultMap {
    type Window = FaultWindow;

    fn allocate(&self, offset: u64, len: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(len)
            .and_then(|e| usize::try_from(e).ok())
            .ok_or_else(|| std::io::Error::from(ErrorKind::InvalidInput))?;
        self.io_op(OpKind::Allocate, |f| {
            f.allocate(end);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let n = usize::try_from(len).map_err(std::io::Error::other)?;
        self.io_op(OpKind::SetLen, |f| {
            f.set_len(n);
            Ok(())
        })
    }

    fn write_at(&self, data: &[u8], offset: u64) -> std::io::Result<()> {
        let at = usize::try_from(offset).map_err(std::io::Error::other)?;
        self.io_op(OpKind::Append, |f| f.write_at(at, data))
    }

    /// Counts nothing and cannot be made to fail, except by the power
    /// being off or the handle being dead.
    unsafe fn map(&self, offset: u64, len: usize) -> std::io::Result<FaultWindow> {
        let s = self.h.state.lock();
        s.check_epoch(self.h.epoch, &self.h.path).map_err(into_io)?;
        if !s.powered {
            return Err(std::io::Error::other("FaultFs: the power is off"));
        }
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        Ok(FaultWindow { start, len })
    }

    /// An [`OpKind::Append`]: the bytes are in the file at once, visible
    /// to readers and unsynced, as through a shared mapping. A store past
    /// the end of the file, which would be a `SIGBUS` on a real mapping,
    /// is an error instead (it fails the test that causes it).
    fn store(&self, w: &mut FaultWindow, at: usize, data: &[u8]) -> std::io::Result<()> {
        if at.checked_add(data.len()).is_none_or(|end| end > w.len) {
            return Err(std::io::Error::other(
                "append offset outside the mapped window",
            ));
        }
        let offset = w.start + at;
        self.io_op(OpKind::Append, |f| {
            if offset + data.len() > f.size() {
                return Err(std::io::Error::other(format!(
                    "FaultFs: store at {offset}..{} into a mapping past the end of the \
                     file ({} bytes): SIGBUS on a real file system",
                    offset + data.len(),
                    f.size()
                )));
            }
            f.write_at(offset, data)
        })
    }

    fn sync_data(&self) -> std::io::Result<()> {
        self.io_op(OpKind::Sync, |f| {
            f.sync();
            Ok(())
        })
    }

    /// Counted in [`FaultStats::writeback_requests`]; changes nothing:
    /// data handed to writeback is as unsynced as any other.
    fn start_writeback(&self, _offset: u64, _len: u64) {
        let mut s = self.h.state.lock();
        if s.epoch == self.h.epoch {
            s.stats.writeback_requests += 1;
        }
    }
}

/// A [`RandomAccessFile`] of a [`FaultFs`].
struct FaultReader {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    ino: u64,
    epoch: u64,
}

impl RandomAccessFile for FaultReader {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut s = self.state.lock();
        s.check_epoch(self.epoch, &self.path)?;
        s.check(OpKind::Read, &self.path)?;
        let f = s
            .inodes
            .get(&self.ino)
            .ok_or_else(|| not_found(&self.path, "no such file"))?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        Ok(f.read_at(start, buf))
    }

    fn size(&self) -> Result<u64> {
        let s = self.state.lock();
        s.check_epoch(self.epoch, &self.path)?;
        s.inodes
            .get(&self.ino)
            .map(|f| f.size() as u64)
            .ok_or_else(|| not_found(&self.path, "no such file"))
    }
}

impl Drop for FaultReader {
    fn drop(&mut self) {
        self.state.lock().close_handle(self.ino, self.epoch);
    }
}

#[derive(Debug)]
struct FaultLock {
    state: Arc<Mutex<State>>,
    path: PathBuf,
    epoch: u64,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        let mut s = self.state.lock();
        if s.locks.get(&self.path) == Some(&self.epoch) {
            s.locks.remove(&self.path);
        }
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let mut s = self.state.lock();
        for d in dir.ancestors() {
            if d.as_os_str().is_empty() {
                continue;
            }
            if s.lookup(d).is_some() {
                return Err(Error::io(
                    d,
                    std::io::Error::new(ErrorKind::AlreadyExists, "a file has this name"),
                ));
            }
            s.dirs.entry(d.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(FaultFile {
            h: self.new_file(path)?,
            len: 0,
            allocated: 0,
        }))
    }

    /// The production mapped writer (`MappedWritable`) over a
    /// `FaultMap` (see the module docs, "Mapped files"). An injected
    /// [`OpKind::Allocate`] failure of kind `Unsupported` on its first
    /// reservation makes it fall back to [`create`](FileSystem::create),
    /// as `PosixFs` does on a file system without `fallocate`.
    fn create_mapped(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        match self.create_mapped_writable(path)? {
            Some(w) => Ok(Box::new(w)),
            None => self.create(path),
        }
    }

    fn read_file(&self, path: &Path) -> Result<Bytes> {
        let mut s = self.state.lock();
        s.check(OpKind::Read, path)?;
        let ino = s
            .lookup(path)
            .ok_or_else(|| not_found(path, "no such file"))?;
        let f = s
            .inodes
            .get(&ino)
            .ok_or_else(|| not_found(path, "no such file"))?;
        Ok(f.contents())
    }

    /// Opening counts as a `Read` operation, and so does every
    /// [`RandomAccessFile::read_at`]: each can be made to fail. The handle
    /// reads the file's current content (unsynced data included) and keeps
    /// the file alive after its name is removed, as an open descriptor
    /// does; a crash kills it.
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        let mut s = self.state.lock();
        s.check(OpKind::Read, path)?;
        let ino = s
            .lookup(path)
            .ok_or_else(|| not_found(path, "no such file"))?;
        *s.open.entry(ino).or_insert(0) += 1;
        Ok(Box::new(FaultReader {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            ino,
            epoch: s.epoch,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let mut s = self.state.lock();
        s.check(OpKind::Rename, from)?;
        let ino = s
            .lookup(from)
            .ok_or_else(|| not_found(from, "no such file"))?;
        let (fdir, fname) = split(from).ok_or_else(|| not_found(from, "bad file name"))?;
        let (tdir, tname) = split(to).ok_or_else(|| not_found(to, "bad file name"))?;
        if !s.dirs.contains_key(tdir) {
            return Err(not_found(to, "no such directory"));
        }
        s.dir_mut(fdir, from)?.live.remove(fname);
        let old = s.dir_mut(tdir, to)?.live.insert(tname.to_string(), ino);
        if let Some(old) = old.filter(|&o| o != ino) {
            s.collect(&[old]);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        let mut s = self.state.lock();
        s.check(OpKind::Remove, path)?;
        let (dir, name) = split(path).ok_or_else(|| not_found(path, "bad file name"))?;
        let ino = s
            .dir_mut(dir, path)?
            .live
            .remove(name)
            .ok_or_else(|| not_found(path, "no such file"))?;
        s.collect(&[ino]);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let s = self.state.lock();
        if !s.powered {
            return Err(Error::io(
                dir,
                std::io::Error::other("FaultFs: the power is off"),
            ));
        }
        let d = s
            .dirs
            .get(dir)
            .ok_or_else(|| not_found(dir, "no such directory"))?;
        let mut out: Vec<String> = d.live.keys().cloned().collect();
        for sub in s.dirs.keys() {
            if sub.parent() == Some(dir) {
                if let Some(n) = sub.file_name().and_then(|n| n.to_str()) {
                    out.push(n.to_string());
                }
            }
        }
        Ok(out)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let mut s = self.state.lock();
        s.check(OpKind::SyncDir, dir)?;
        let d = s.dir_mut(dir, dir)?;
        d.durable = d.live.clone();
        let gone: Vec<u64> = s.inodes.keys().copied().collect();
        s.collect(&gone);
        Ok(())
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        let s = self.state.lock();
        Ok(s.dirs.contains_key(path) || s.lookup(path).is_some())
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        let s = self.state.lock();
        let ino = s
            .lookup(path)
            .ok_or_else(|| not_found(path, "no such file"))?;
        Ok(s.inodes.get(&ino).map_or(0, |f| f.size() as u64))
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let mut s = self.state.lock();
        if !s.powered {
            return Err(Error::io(
                path,
                std::io::Error::other("FaultFs: the power is off"),
            ));
        }
        if s.locks.contains_key(path) {
            return Err(Error::Locked(path.parent().unwrap_or(path).to_path_buf()));
        }
        if s.lookup(path).is_none() {
            let (dir, name) = split(path).ok_or_else(|| not_found(path, "bad file name"))?;
            let ino = s.next_inode;
            s.dir_mut(dir, path)?.live.insert(name.to_string(), ino);
            s.next_inode += 1;
            s.inodes.insert(ino, Inode::default());
        }
        let epoch = s.epoch;
        s.locks.insert(path.to_path_buf(), epoch);
        Ok(Box::new(FaultLock {
            state: Arc::clone(&self.state),
            path: path.to_path_buf(),
            epoch,
        }))
    }
}
