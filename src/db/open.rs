//! Opening a database: creation, recovery from the manifest and WALs,
//! and removal of files a crash left behind.
//!
//! Recovery order:
//! 1. Take the `LOCK` (fails with `Error::Locked` when held elsewhere).
//! 2. Read `CURRENT` and replay the manifest into the live file set.
//! 3. Open every live SST (footer, properties and filter are verified).
//! 4. Replay the WALs numbered at or above the manifest's log number, in
//!    order, into memtables, flushing each full one to a new level-0 file.
//!    Only the last WAL holding records may end in a torn record; the WAL
//!    before a rotation is synced before the rotation, so a torn record
//!    followed by records of a newer WAL means real damage and is reported
//!    as corruption. Newer WALs holding no record do not count: an open
//!    that failed after step 5 created its new (empty) WAL, behind a last
//!    WAL that may end in a torn record from the crash before.
//! 5. Start a new WAL and a new manifest holding a snapshot of the
//!    recovered version; switch `CURRENT` to it.
//!    Then write `OPTIONS-NNNNNN`, the options in force (informational).
//! 6. Delete what is no longer needed: replayed WALs, old manifests and
//!    OPTIONS files, SST files no manifest names (outputs of an
//!    interrupted flush) and temporary files. Only files whose names this engine writes are ever
//!    deleted.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::observe;
use super::replay::{
    finish_flushes, finish_trees, flush_replayed, recovering_trees, replay_batch, BlobReplayError,
    RecoveredTree, ReplayBlobs,
};
use super::tree::{ActiveMems, Tree};
use super::{BgError, CompactionCtl, Db, DbInner, FlushCtl, IoCounters, WriteSide};
use crate::batch::WriteBatch;
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::filename::{
    blob_file_name, current_file_name, lock_file_name, log_file_name, manifest_file_name,
    options_file_name, parse_file_name, table_file_name, temp_file_name, FileKind,
};
use crate::fs::FileSystem;
use crate::log::{LogKind, LogReader, LogWriter};
use crate::memtable::MemTable;
use crate::metrics::event_log::rfc3339_utc;
use crate::metrics::{db_event, Metrics};
use crate::options::{Options, WalRecoveryMode};
use crate::row_cache::RowCache;
use crate::version::set::{recover_manifest, RecoveredManifest, VersionSet};
use crate::version::superversion::SuperVersion;
use crate::version::table_cache::{capacity_for, TableCache, TableOpener};
use crate::version::version::Version;

pub(super) fn open(dir: &Path, opts: Options) -> Result<Db> {
    opts.validate()?;
    let span = tracing::info_span!(
        "open",
        db = tracing::field::Empty,
        dir = %dir.display(),
        read_only = false
    );
    let _enter = span.enter();
    let start = Instant::now();
    let fs = Arc::clone(&opts.fs);
    if !fs.exists(dir)? {
        if !opts.create_if_missing {
            return Err(Error::NotADatabase {
                path: dir.to_path_buf(),
                reason: "the directory does not exist and create_if_missing is off".into(),
            });
        }
        fs.create_dir_all(dir)?;
    }
    // A directory that is refused gets nothing written into it, not even
    // `LOCK`: check before locking, and again under the lock (another
    // process may have created a database meanwhile).
    let has_current = |names: &[String]| {
        names
            .iter()
            .any(|n| parse_file_name(n) == Some(FileKind::Current))
    };
    let names = fs.list_dir(dir)?;
    if !has_current(&names) {
        if !opts.create_if_missing {
            return Err(Error::NotADatabase {
                path: dir.to_path_buf(),
                reason: "no database here and create_if_missing is off".into(),
            });
        }
        check_creatable(fs.as_ref(), dir, &names)?;
    }
    let lock = fs.lock(&lock_file_name(dir))?;
    let names = fs.list_dir(dir)?;
    let cache = opts.make_block_cache();
    let row_cache = make_row_cache(dir, &opts)?;
    let exists = has_current(&names);

    let recovered = if exists {
        if opts.error_if_exists {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a database and error_if_exists is set",
                dir.display()
            )));
        }
        recover_manifest(fs.as_ref(), dir)?
    } else {
        check_creatable(fs.as_ref(), dir, &names)?;
        if !opts.create_if_missing {
            return Err(Error::NotADatabase {
                path: dir.to_path_buf(),
                reason: "no database here and create_if_missing is off".into(),
            });
        }
        RecoveredManifest {
            next_file_number: 1,
            ..RecoveredManifest::default()
        }
    };
    // Only now is the directory known to hold (or to become) a database:
    // the event log may be started in it.
    let metrics = observe::make_metrics(dir, &opts, true);
    span.record("db", metrics.label.as_str());

    // Live files, keyspace by keyspace.
    let opener = table_opener(&fs, dir, &cache, &opts);
    let mut trees = recovering_trees(fs.as_ref(), dir, &recovered, &opener, &opts, false)?;
    let min_log = recovered.min_log_number();

    // File numbers: past everything the manifest or the directory knows.
    let mut next_file = recovered.next_file_number.max(1);
    let mut logs = Vec::new();
    for n in &names {
        match parse_file_name(n) {
            Some(FileKind::Log(x)) => {
                next_file = next_file.max(x + 1);
                // Without CURRENT a WAL is a creation leftover without
                // records (`check_creatable`): nothing to replay.
                if exists && x >= min_log {
                    logs.push(x);
                }
            }
            Some(FileKind::Table(x))
            | Some(FileKind::Blob(x))
            | Some(FileKind::Manifest(x))
            | Some(FileKind::Options(x)) => next_file = next_file.max(x + 1),
            _ => {}
        }
    }
    logs.sort_unstable();
    check_oldest_wal(dir, exists, &logs, min_log)?;

    // Replay the WALs.
    let mut last_seq = recovered.last_sequence;
    // Numbers of the SSTs and blob files the replay writes.
    let numbers = AtomicU64::new(next_file);
    let mut blobs = ReplayBlobs::new(&trees, false);
    let replayed = replay_wals(
        fs.as_ref(),
        dir,
        &logs,
        &opts,
        &metrics,
        &mut blobs,
        |wal, batch| {
            last_seq = last_seq.max(replay_batch(&trees, wal, batch));
            flush_replayed(fs.as_ref(), dir, &mut trees, &numbers, true)
        },
    )?;
    flush_replayed(fs.as_ref(), dir, &mut trees, &numbers, false)?;
    next_file = numbers.load(Ordering::Acquire);
    let new_files = finish_flushes(&mut trees, &opener)?;
    if new_files > 0 {
        fs.sync_dir(dir)?;
    }

    // New WAL, then a new manifest that makes everything above durable,
    // then the OPTIONS file recording the options in force.
    let log_number = next_file;
    let manifest_number = next_file + 1;
    let options_number = next_file + 2;
    next_file += 3;
    let wal_path = log_file_name(dir, log_number);
    let mut wal = LogWriter::create_wal(fs.as_ref(), wal_path, log_number, opts.wal_mmap)?;
    wal.sync()?;
    let (keyspaces, recovered_trees) = finish_trees(trees, |_| log_number);
    let versions = VersionSet::create(
        opener,
        manifest_number,
        keyspaces,
        recovered.max_keyspace_id,
        next_file,
        last_seq,
        opts.max_manifest_file_size,
    )?;
    write_options_file(fs.as_ref(), dir, options_number, &opts)?;
    remove_obsolete_files(
        fs.as_ref(),
        dir,
        recovered_trees.iter().map(|t| t.version.as_ref()),
        log_number,
        manifest_number,
        options_number,
    )?;
    db_event!(
        metrics,
        INFO,
        "opened database",
        dir = dir.display().to_string(),
        wals_replayed = logs.len(),
        records = replayed.records,
        bytes = replayed.bytes,
        flushed_files = new_files,
        last_sequence = last_seq,
        keyspaces = recovered_trees.len(),
        files = recovered_trees
            .iter()
            .map(|t| t.version.all_files().count())
            .sum::<usize>(),
        duration_ms = start.elapsed().as_millis() as u64,
    );

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(
            opts.compaction.max_background_jobs.max(2) - 1 + opts.compaction.max_subcompactions - 1,
        )
        .thread_name(|i| format!("lightning-compact-{i}"))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("cannot start compaction threads: {e}")))?;
    let trees = recovered_trees
        .into_iter()
        .map(|t| {
            let mem = Arc::new(MemTable::for_tree(log_number, &t.opts));
            serving_tree(t, mem)
        })
        .collect();
    let inner = Arc::new(new_inner(
        dir,
        fs,
        opts,
        trees,
        last_seq,
        next_file,
        Some((wal, log_number, pool)),
        versions,
        (cache, row_cache),
        metrics,
    ));
    #[cfg(feature = "prometheus")]
    let registry = observe::register(&inner, &inner.opts)?;
    let bg = Arc::clone(&inner);
    let mut threads = vec![std::thread::Builder::new()
        .name("lightning-flush".into())
        .spawn(move || bg.flush_loop())
        .map_err(|e| Error::io(dir, e))?];
    if inner.opts.wal_sync_interval_ms > 0 {
        let bg = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("lightning-wal-sync".into())
                .spawn(move || bg.wal_sync_loop())
                .map_err(|e| Error::io(dir, e))?,
        );
    }
    inner.after_version_change();
    inner.maybe_schedule_compaction();
    Ok(Db {
        inner,
        threads: Mutex::new(threads),
        lock: Mutex::new(Some(lock)),
        #[cfg(feature = "prometheus")]
        registry,
    })
}

/// Opens an existing database read-only (see [`Db::open_read_only`]):
/// takes a shared lock on `LOCK` if the file exists, replays the manifest
/// and every live WAL into memory ([`replay_wals`], as [`open`]), and
/// creates, writes, renames and deletes nothing.
pub(super) fn open_read_only(dir: &Path, opts: Options) -> Result<Db> {
    read_only(dir, opts, true)
}

/// [`open_read_only`] without the shared lock, for a secondary instance
/// beside a live primary (`secondary.rs`).
pub(super) fn open_read_only_unlocked(dir: &Path, opts: Options) -> Result<Db> {
    read_only(dir, opts, false)
}

fn read_only(dir: &Path, opts: Options, lock: bool) -> Result<Db> {
    opts.validate()?;
    let metrics = observe::make_metrics(dir, &opts, false);
    let span = tracing::info_span!(
        "open",
        db = metrics.label.as_str(),
        dir = %dir.display(),
        read_only = true
    );
    let _enter = span.enter();
    let start = Instant::now();
    let fs = Arc::clone(&opts.fs);
    if !fs.exists(dir)? {
        return Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: "the directory does not exist (a read-only open never creates one)".into(),
        });
    }
    let beside_primary = !lock;
    let lock = match lock {
        true => fs.lock_shared(&lock_file_name(dir))?,
        false => None,
    };
    let names = fs.list_dir(dir)?;
    let cache = opts.make_block_cache();
    let row_cache = make_row_cache(dir, &opts)?;
    if !names
        .iter()
        .any(|n| parse_file_name(n) == Some(FileKind::Current))
    {
        return Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: "no CURRENT file (a read-only open never creates a database)".into(),
        });
    }
    let recovered = recover_manifest(fs.as_ref(), dir)?;
    let opener = table_opener(&fs, dir, &cache, &opts);
    let trees = recovering_trees(fs.as_ref(), dir, &recovered, &opener, &opts, true)?;
    let min_log = recovered.min_log_number();
    let mut logs: Vec<u64> = names
        .iter()
        .filter_map(|n| match parse_file_name(n) {
            Some(FileKind::Log(x)) if x >= min_log => Some(x),
            _ => None,
        })
        .collect();
    logs.sort_unstable();
    check_oldest_wal(dir, true, &logs, min_log)?;
    // Everything the WALs hold stays in memory: nothing is flushed.
    let mut last_seq = recovered.last_sequence;
    // Without the lock, a live primary may delete a live blob file under
    // the replay: a missing value then fails this recovery (retried by
    // the secondary), rather than ending the log early.
    let mut blobs = ReplayBlobs::new(&trees, beside_primary);
    replay_wals(
        fs.as_ref(),
        dir,
        &logs,
        &opts,
        &metrics,
        &mut blobs,
        |wal, batch| {
            last_seq = last_seq.max(replay_batch(&trees, wal, batch));
            Ok(())
        },
    )?;
    let (keyspaces, recovered_trees) = finish_trees(trees, |t| t.log_number);
    let live: Vec<Arc<Tree>> = recovered_trees
        .into_iter()
        .map(|t| {
            let mem = Arc::clone(&t.mem);
            serving_tree(t, mem)
        })
        .collect();
    let versions = VersionSet::read_only(
        opener,
        recovered.manifest_number,
        keyspaces,
        recovered.max_keyspace_id,
        last_seq,
    );
    db_event!(
        metrics,
        INFO,
        "opened database read-only",
        dir = dir.display().to_string(),
        wals_replayed = logs.len(),
        last_sequence = last_seq,
        keyspaces = live.len(),
        files = live
            .iter()
            .map(|t| t.sv.load().version.all_files().count())
            .sum::<usize>(),
        duration_ms = start.elapsed().as_millis() as u64,
    );
    let next_file = recovered.next_file_number;
    let inner = Arc::new(new_inner(
        dir,
        fs,
        opts,
        live,
        last_seq,
        next_file,
        None,
        versions,
        (cache, row_cache),
        metrics,
    ));
    #[cfg(feature = "prometheus")]
    let registry = observe::register(&inner, &inner.opts)?;
    Ok(Db {
        inner,
        threads: Mutex::new(Vec::new()),
        lock: Mutex::new(lock),
        #[cfg(feature = "prometheus")]
        registry,
    })
}

/// What [`replay_wals`] read.
struct Replayed {
    /// Batches replayed.
    records: u64,
    /// Bytes of the WAL files read.
    bytes: u64,
}

/// Replays the WALs numbered `logs` (ascending) of `dir`, oldest first,
/// handing every batch to `apply` with its WAL's number, as both [`open`] and [`open_read_only`]
/// recover (docs/durability.md, "Recovery and `wal_recovery_mode`").
///
/// Damage is handled per `opts.wal_recovery_mode`: a torn tail, and with
/// `PointInTime` any damage, ends the replay of that WAL; it is
/// [`Error::Corruption`] only when a newer WAL holds a record (older WALs
/// were synced before the next one started; a newer WAL without records is
/// what an interrupted open leaves behind). With `TolerateTornTail`, damage
/// followed by a valid record is `Corruption` at once.
///
/// The values of blob references (written to a live blob file at put
/// time, `super::separate`) are read back and replayed inline, for the
/// keyspaces that replay the WAL (`blobs`). A reference whose value is not there whole ends the log as a
/// torn tail does, in either recovery mode: its batch was never durable (a
/// durable record names only durable values), and after a power loss the
/// WAL's and the blob file's unsynced tails survive independently (beside
/// a live primary, `ReplayBlobs::missing_is_error`, it is an error).
fn replay_wals(
    fs: &dyn FileSystem,
    dir: &Path,
    logs: &[u64],
    opts: &Options,
    metrics: &Metrics,
    blobs: &mut ReplayBlobs,
    mut apply: impl FnMut(u64, &WriteBatch) -> Result<()>,
) -> Result<Replayed> {
    let mut out = Replayed {
        records: 0,
        bytes: 0,
    };
    // A torn tail seen so far: fine unless a newer WAL holds a record.
    let mut torn: Option<(std::path::PathBuf, u64, String)> = None;
    for &n in logs {
        let path = log_file_name(dir, n);
        let data = crate::fs::read_file_retrying(fs, &path)?;
        let data_len = data.len() as u64;
        out.bytes += data_len;
        let records_before = out.records;
        let mut reader = LogReader::new(path.clone(), data, LogKind::Wal, n)?;
        loop {
            let rec = match reader.next_record() {
                Ok(Some(rec)) => rec,
                Ok(None) => break,
                Err(Error::Corruption { offset, reason, .. })
                    if opts.wal_recovery_mode == WalRecoveryMode::PointInTime =>
                {
                    // Unsynced writes of the newest WAL may come back as
                    // any mix of old, new and torn pages after a power
                    // loss: recover the consistent prefix before the damage.
                    db_event!(
                        metrics,
                        WARN,
                        "damaged record in the WAL; recovering the batches before it (wal_recovery_mode = point_in_time)",
                        wal = path.display().to_string(),
                        offset = offset,
                        reason = reason.to_string(),
                    );
                    torn.get_or_insert((path.clone(), offset, reason));
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Some((p, offset, reason)) = torn.take() {
                return Err(Error::corruption(
                    &p,
                    offset,
                    format!(
                        "WAL ends in a damaged record ({reason}) but a newer WAL with records \
                         follows it ({})",
                        path.display()
                    ),
                ));
            }
            let mut batch = WriteBatch::from_wal_record(&rec.payload, reader.version())
                .map_err(|e| e.into_error(&path, rec.offset))?;
            match blobs.resolve(fs, dir, n, &mut batch) {
                Ok(()) => {}
                Err(BlobReplayError::Failed(e)) => return Err(e),
                Err(BlobReplayError::Missing(e)) if blobs.missing_is_error => return Err(e),
                Err(BlobReplayError::Missing(e)) => {
                    // In either recovery mode: after a power loss the
                    // unsynced tails of the WAL and of the blob file
                    // survive independently, so an intact record may name
                    // a value that is gone; it was never synced (a sync
                    // syncs the blob files first), nor was anything after
                    // it. The log ends here, as at a torn tail.
                    db_event!(
                        metrics,
                        WARN,
                        "a WAL record names a value its blob file does not hold whole; recovering the batches before it",
                        wal = path.display().to_string(),
                        offset = rec.offset,
                        reason = e.to_string(),
                    );
                    torn.get_or_insert((path.clone(), rec.offset, e.to_string()));
                    break;
                }
            }
            apply(n, &batch)?;
            out.records += 1;
        }
        tracing::debug!(
            db = metrics.label.as_str(),
            wal = n,
            records = out.records - records_before,
            bytes = data_len,
            "replayed WAL"
        );
        if let Some(t) = reader.torn_tail() {
            db_event!(
                metrics,
                WARN,
                "WAL ends in a torn record; recovered up to it",
                wal = path.display().to_string(),
                offset = t.offset,
                reason = t.reason.to_string(),
            );
            // The oldest torn tail is the one a later record contradicts.
            torn.get_or_insert((path.clone(), t.offset, t.reason.to_string()));
        }
    }
    Ok(out)
}

/// The tree serving recovered keyspace `t`, with `mem` as its active
/// memtable.
fn serving_tree(t: RecoveredTree, mem: Arc<MemTable>) -> Arc<Tree> {
    let sv = SuperVersion {
        mem,
        imms: Vec::new(),
        version: t.version,
    };
    Tree::new(t.id, t.name, t.opts, sv)
}

/// The WAL the manifest names as the oldest still needed (the smallest
/// log number of any keyspace) always exists: it is created before the
/// manifest names it and deleted only after a later edit raised every
/// keyspace's number past it. Missing, it means the manifest lost its
/// last synced edits to damage that looks like a torn tail: the tables
/// those edits added would be deleted as orphans and their data, whose
/// WALs are gone, silently lost.
fn check_oldest_wal(dir: &Path, exists: bool, logs: &[u64], min_log: u64) -> Result<()> {
    if exists && logs.first() != Some(&min_log) {
        return Err(Error::corruption(
            log_file_name(dir, min_log),
            0,
            "the manifest names this WAL as the oldest still needed but it is missing: \
             the manifest is damaged (edits after it were lost)",
        ));
    }
    Ok(())
}

/// How the database opens its tables (`allow_mmap_reads`), and the table
/// cache bounding how many are open (`max_open_files`).
fn table_opener(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    cache: &Option<Arc<BlockCache>>,
    opts: &Options,
) -> TableOpener {
    let capacity = capacity_for(opts.max_open_files, opts.allow_mmap_reads);
    tracing::debug!(
        dir = %dir.display(),
        max_open_files = opts.max_open_files,
        open_tables_at_most = capacity,
        "table cache"
    );
    TableOpener {
        fs: Arc::clone(fs),
        dir: dir.to_path_buf(),
        cache: cache.clone(),
        mmap_reads: opts.allow_mmap_reads,
        tables: Arc::new(TableCache::new(capacity)),
        blob_bytes_read: Arc::default(),
    }
}

/// The row cache `opts` asks for, if any (its slot array is mapped now,
/// before anything is written: a failure loses nothing).
fn make_row_cache(dir: &Path, opts: &Options) -> Result<Option<RowCache>> {
    if opts.row_cache_size == 0 {
        return Ok(None);
    }
    RowCache::new(opts.row_cache_size).map(Some).map_err(|e| {
        Error::io(
            dir,
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot map a row cache of {} bytes: {e}",
                    opts.row_cache_size
                ),
            ),
        )
    })
}

/// The shared state of a freshly opened database: writable when `write`
/// (the WAL and the compaction threads) is given, read-only without.
#[allow(clippy::too_many_arguments)]
fn new_inner(
    dir: &Path,
    fs: Arc<dyn FileSystem>,
    opts: Options,
    trees: Vec<Arc<Tree>>,
    last_seq: u64,
    next_file: u64,
    write: Option<(LogWriter, u64, rayon::ThreadPool)>,
    versions: VersionSet,
    (block_cache, row_cache): (Option<Arc<BlockCache>>, Option<RowCache>),
    metrics: Arc<Metrics>,
) -> DbInner {
    let default = Arc::clone(&trees[0]);
    debug_assert_eq!(default.id, super::tree::DEFAULT_KEYSPACE);
    let write = write.map(|(wal, wal_number, pool)| {
        WriteSide::new(
            last_seq,
            ActiveMems::of(trees.iter().cloned()),
            wal,
            wal_number,
            pool,
        )
    });
    let ttl_seen = trees.iter().any(|t| t.has_ttl());
    DbInner {
        dir: dir.to_path_buf(),
        fs,
        default,
        trees: RwLock::new(trees.into_iter().map(|t| (t.id, t)).collect()),
        dropped_keyspaces: Mutex::new(BTreeMap::new()),
        visible_seq: AtomicU64::new(last_seq),
        next_file_number: AtomicU64::new(next_file),
        blob_bytes_read: versions.blob_bytes_read_counter(),
        checkpoints: std::sync::atomic::AtomicUsize::new(0),
        ttl_seen: std::sync::atomic::AtomicBool::new(ttl_seen),
        write,
        versions: Mutex::new(versions),
        flush: FlushCtl::default(),
        compaction: CompactionCtl::default(),
        bg_error: BgError::default(),
        snapshots: Mutex::new(Default::default()),
        io: IoCounters::default(),
        closed: AtomicBool::new(false),
        block_cache,
        row_cache,
        metrics,
        opts,
    }
}

/// A directory without `CURRENT` may become a database only when it holds
/// nothing but what an interrupted creation leaves behind: the lock, a
/// manifest, temporary files, event logs, and WALs that hold no record (a
/// first open creates and syncs its WAL before `CURRENT` names a manifest;
/// no record is written to a WAL before `CURRENT` exists). Such a WAL is
/// numbered below the new one and deleted with the other leftovers.
fn check_creatable(fs: &dyn FileSystem, dir: &Path, names: &[String]) -> Result<()> {
    let refuse = |n: &str, why: &str| {
        Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: format!(
                "it has no CURRENT file but holds `{n}`{why}; refusing to create a database over it"
            ),
        })
    };
    for n in names {
        match parse_file_name(n) {
            Some(FileKind::Lock)
            | Some(FileKind::Manifest(_))
            | Some(FileKind::Temp)
            | Some(FileKind::InfoLog)
            | Some(FileKind::OldInfoLog(_)) => {}
            Some(FileKind::Log(x)) => {
                let path = log_file_name(dir, x);
                let data = crate::fs::read_file_retrying(fs, &path)?;
                // Power lost before the header was synced may leave any
                // bytes in the header's place and in the preallocated
                // zeros after it (a torn page), but never a valid record.
                if crate::log::reader::holds_a_fragment(&data) {
                    return refuse(n, " (a WAL with records, or not a WAL)");
                }
            }
            _ => return refuse(n, ""),
        }
    }
    Ok(())
}

/// Atomically writes `OPTIONS-NNNNNN` (docs/format.md, "OPTIONS file"):
/// a comment line with the time, then [`Options::to_toml_string`]. Written
/// to `*.tmp`, synced, renamed into place, and the directory synced.
fn write_options_file(fs: &dyn FileSystem, dir: &Path, number: u64, opts: &Options) -> Result<()> {
    let path = options_file_name(dir, number);
    let base = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("OPTIONS")
        .to_string();
    let tmp = temp_file_name(dir, &base);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let content = format!(
        "# Lightning DB options in force at open, written {}\n{}",
        rfc3339_utc(secs),
        opts.to_toml_string()
    );
    let mut f = fs.create(&tmp)?;
    f.append(content.as_bytes())?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, &path)?;
    fs.sync_dir(dir)
}

fn remove_obsolete_files<'a>(
    fs: &dyn FileSystem,
    dir: &Path,
    versions: impl Iterator<Item = &'a Version> + Clone,
    log_number: u64,
    manifest_number: u64,
    options_number: u64,
) -> Result<()> {
    let live: HashSet<u64> = versions
        .clone()
        .flat_map(|v| v.all_files().map(|(_, f)| f.meta.number))
        .collect();
    let live_blobs: HashSet<u64> = versions
        .flat_map(|v| v.blob_files().keys().copied())
        .collect();
    for n in fs.list_dir(dir)? {
        let path = match parse_file_name(&n) {
            Some(FileKind::Log(x)) if x < log_number => log_file_name(dir, x),
            Some(FileKind::Manifest(x)) if x != manifest_number => manifest_file_name(dir, x),
            Some(FileKind::Options(x)) if x != options_number => options_file_name(dir, x),
            Some(FileKind::Table(x)) if !live.contains(&x) => table_file_name(dir, x),
            // Written by a flush or compaction whose edit never made it
            // into the manifest (a crash), or garbage collected.
            Some(FileKind::Blob(x)) if !live_blobs.contains(&x) => blob_file_name(dir, x),
            Some(FileKind::Temp) => dir.join(&n),
            _ => continue,
        };
        if path == current_file_name(dir) {
            continue;
        }
        tracing::debug!(file = %path.display(), "removing obsolete file");
        fs.remove_file(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::batch::WriteBatch;
    use crate::db::Db;
    use crate::error::Error;
    use crate::filename::log_file_name;
    use crate::fs::FileSystem;
    use crate::log::{LogKind, LogWriter};
    use crate::options::Options;
    use crate::testing::MemFs;
    use std::path::Path;
    use std::sync::Arc;

    /// Writes WAL `n` holding one batch per key (sequences from `seq`),
    /// cut by `cut` bytes at the end.
    fn write_wal(fs: &MemFs, dir: &Path, n: u64, seq: u64, keys: &[&str], cut: usize) {
        write_wal_version(fs, dir, n, seq, keys, cut, LogKind::Wal.format_version());
    }

    /// [`write_wal`] in WAL format `version` (1: fixed batch headers).
    fn write_wal_version(
        fs: &MemFs,
        dir: &Path,
        n: u64,
        seq: u64,
        keys: &[&str],
        cut: usize,
        version: u32,
    ) {
        let path = log_file_name(dir, n);
        let file = fs.create(&path).unwrap();
        let mut w = LogWriter::with_version(file, path.clone(), LogKind::Wal, n, version).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let mut b = WriteBatch::new();
            b.put(k, format!("v-{k}"));
            b.set_sequence(seq + i as u64);
            if version == 1 {
                w.add_record(b.data()).unwrap();
            } else {
                b.with_wal_payload(|p| w.add_record(p)).unwrap();
            }
        }
        // Trimmed and synced, as a WAL is closed: it ends at its last record.
        w.finish().unwrap();
        drop(w);
        let data = fs.read_file(&path).unwrap();
        let mut f = fs.create(&path).unwrap();
        f.append(&data[..data.len() - cut]).unwrap();
        f.sync_data().unwrap();
    }

    /// The last WAL of a database that was opened and closed once.
    fn fresh(fs: &Arc<MemFs>, dir: &Path) -> u64 {
        let opts = Options {
            fs: fs.clone(),
            ..Options::default()
        };
        Db::open(dir, opts).unwrap().close().unwrap();
        fs.list_dir(dir)
            .unwrap()
            .iter()
            .filter_map(|n| n.strip_suffix(".log").and_then(|n| n.parse().ok()))
            .max()
            .unwrap()
    }

    #[test]
    fn torn_wal_followed_by_empty_wals_recovers_but_not_by_records() {
        let dir = Path::new("/db");
        for newer_has_records in [false, true] {
            let fs = Arc::new(MemFs::new());
            let last = fresh(&fs, dir);
            // The last WAL ends in a torn record; newer WALs follow.
            write_wal(&fs, dir, last, 1, &["a", "b", "c"], 3);
            write_wal(&fs, dir, last + 10, 10, &[], 0);
            let newer: &[&str] = if newer_has_records { &["d"] } else { &[] };
            write_wal(&fs, dir, last + 20, 10, newer, 0);
            let opts = || Options {
                fs: fs.clone(),
                ..Options::default()
            };
            // A read-only open recovers exactly what an open does (it
            // used to refuse a torn WAL followed by an empty one).
            match Db::open_read_only(dir, opts()) {
                Ok(db) => {
                    assert!(!newer_has_records);
                    assert!(db.get("b").unwrap().is_some());
                    assert!(db.get("c").unwrap().is_none());
                }
                Err(e) => {
                    assert!(newer_has_records, "read-only: {e}");
                    assert!(matches!(e, Error::Corruption { .. }), "{e}");
                }
            }
            match Db::open(dir, opts()) {
                Ok(db) => {
                    assert!(!newer_has_records);
                    assert!(db.get("b").unwrap().is_some());
                    assert!(db.get("c").unwrap().is_none());
                }
                Err(e) => {
                    assert!(newer_has_records, "{e}");
                    assert!(matches!(e, Error::Corruption { .. }), "{e}");
                    assert!(e.to_string().contains(&format!("{last:06}.log")), "{e}");
                }
            }
        }
    }

    /// Regression: a rotated WAL whose last record ends 1 to 6 bytes
    /// before a block boundary (the writer pads a block's tail only when
    /// the next record comes) was read as ending in a torn record, and a
    /// newer WAL with records then made every open fail with `Corruption`.
    #[test]
    fn wal_ending_just_before_a_block_boundary_is_not_torn() {
        let dir = Path::new("/db");
        let mut tested = 0;
        for value_len in 32_600..32_760 {
            let fs = Arc::new(MemFs::new());
            let last = fresh(&fs, dir);
            let path = log_file_name(dir, last);
            let mut w = LogWriter::new(fs.create(&path).unwrap(), path.clone(), LogKind::Wal, last)
                .unwrap();
            let mut b = WriteBatch::new();
            b.put("a", vec![7u8; value_len]);
            b.set_sequence(1);
            b.with_wal_payload(|p| w.add_record(p)).unwrap();
            // Rotated away: trimmed to its last record and synced.
            w.finish().unwrap();
            let gap = 32_768 - w.len() % 32_768;
            drop(w);
            if !(1..7).contains(&gap) {
                continue;
            }
            tested += 1;
            write_wal(&fs, dir, last + 1, 2, &["b"], 0);
            let opts = || Options {
                fs: fs.clone(),
                ..Options::default()
            };
            let db = Db::open_read_only(dir, opts()).unwrap_or_else(|e| panic!("gap {gap}: {e}"));
            assert_eq!(db.get("a").unwrap().map(|v| v.len()), Some(value_len));
            drop(db);
            let db = Db::open(dir, opts()).unwrap_or_else(|e| panic!("gap {gap}: {e}"));
            assert_eq!(db.get("a").unwrap().map(|v| v.len()), Some(value_len));
            assert!(db.get("b").unwrap().is_some());
        }
        assert_eq!(tested, 6, "every gap of 1 to 6 bytes was tried");
    }

    /// WALs written by a build of format version 1 (fixed 12-byte batch
    /// headers) still replay, also beside a newer version-2 WAL.
    #[test]
    fn version_1_wals_still_replay() {
        let dir = Path::new("/db");
        let fs = Arc::new(MemFs::new());
        let last = fresh(&fs, dir);
        write_wal_version(&fs, dir, last, 1, &["a", "b"], 0, 1);
        write_wal_version(&fs, dir, last + 1, 3, &["c", "a"], 0, 2);
        let opts = || Options {
            fs: fs.clone(),
            ..Options::default()
        };
        let db = Db::open(dir, opts()).unwrap();
        assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"v-a"[..]));
        assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"v-b"[..]));
        assert_eq!(db.get("c").unwrap().as_deref(), Some(&b"v-c"[..]));
        db.put("d", "v-d").unwrap();
        db.close().unwrap();
        let db = Db::open(dir, opts()).unwrap();
        for k in ["a", "b", "c", "d"] {
            assert_eq!(
                db.get(k).unwrap().as_deref(),
                Some(format!("v-{k}").as_bytes())
            );
        }
        // A version-1 record in a version-2 WAL is corruption, not a
        // silently different batch.
        let fs = Arc::new(MemFs::new());
        let last = fresh(&fs, dir);
        let path = log_file_name(dir, last);
        let mut w =
            LogWriter::new(fs.create(&path).unwrap(), path.clone(), LogKind::Wal, last).unwrap();
        let mut b = WriteBatch::new();
        b.put("x", "y");
        b.set_sequence(1);
        w.add_record(b.data()).unwrap();
        w.finish().unwrap();
        drop(w);
        let e = Db::open(
            dir,
            Options {
                fs: fs.clone(),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::Corruption { .. }), "{e}");
    }
}
