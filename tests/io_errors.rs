//! I/O errors injected with `FaultFs`: EIO, ENOSPC and EINTR in WAL
//! appends and syncs, WAL rotation, SST writes of flushes and compactions,
//! manifest and CURRENT updates, renames and reads.
//!
//! The promise checked: the failing call (or the next write after a
//! background failure) returns an error; after a failed fsync or a failed
//! background flush or compaction the database is fail-stop (every later
//! write returns `Error::Background`, reads still work); nothing
//! acknowledged before the fault is lost, neither after a reopen on the
//! same file system nor after a crash and reopen; a failed fsync is never
//! retried; transient read errors (`Interrupted`) are retried a few times.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::within;
use lightning_db::fs::FileSystem;
use lightning_db::testing::{CrashMode, FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options, WriteBatch, WriteOptions};

const DIR: &str = "/db";

fn options(fs: &Arc<FaultFs>) -> Options {
    Options::default()
        .fs(fs.clone())
        .write_buffer_size(64 * 1024)
}

fn key(i: u64) -> String {
    format!("key{i:06}")
}

fn val(i: u64) -> Vec<u8> {
    let mut v = format!("value{i}:").into_bytes();
    v.resize(200, b'x');
    v
}

fn is_background(e: &Error) -> bool {
    matches!(e, Error::Background(_))
}

/// The kind of the I/O error `e` reports (under `Error::Background`).
fn io_kind(e: &Error) -> Option<ErrorKind> {
    match e {
        Error::Io { source, .. } => Some(source.kind()),
        Error::Background(inner) => io_kind(inner),
        _ => None,
    }
}

/// WAL rotation (memtable full) failing: the old WAL's trim or sync, the
/// new WAL's creation, its blocks (`fallocate`, mapped WAL) or sparse tail
/// (`ftruncate`, plain appends), or the directory sync; with either WAL
/// writer. The writer that triggered the rotation must get an error
/// reporting the injected one, not hang.
#[test]
fn failed_wal_rotation_returns_an_error() {
    let log = |kind, skip, error| FaultRule::new(kind, skip, error).on(".log");
    let both = [
        log(OpKind::Create, 0, ErrorKind::StorageFull),
        FaultRule::new(OpKind::SyncDir, 0, ErrorKind::Other),
        log(OpKind::Sync, 0, ErrorKind::Other),
        // The old WAL's trim.
        log(OpKind::SetLen, 0, ErrorKind::Other),
    ];
    // The new WAL's first blocks, then its preallocation (mapped); its
    // sparse tail (plain appends).
    let mapped = [
        log(OpKind::Allocate, 0, ErrorKind::StorageFull),
        log(OpKind::Allocate, 1, ErrorKind::StorageFull),
    ];
    let plain = [log(OpKind::SetLen, 1, ErrorKind::StorageFull)];
    let cases = both
        .iter()
        .flat_map(|r| [(true, r.clone()), (false, r.clone())])
        .chain(mapped.map(|r| (true, r)))
        .chain(plain.map(|r| (false, r)));
    for (wal_mmap, rule) in cases {
        let fs = Arc::new(FaultFs::new());
        let db = Arc::new(Db::open(DIR, options(&fs).wal_mmap(wal_mmap)).unwrap());
        fs.inject(rule.clone());
        let d = Arc::clone(&db);
        let (acked, err) = within(20, "write through a failed WAL rotation", move || {
            for i in 0..10_000u64 {
                if let Err(e) = d.put(key(i), val(i)) {
                    return (i, e);
                }
            }
            panic!("no write failed");
        });
        assert!(is_background(&err), "{rule:?}: {err}");
        assert_eq!(io_kind(&err), Some(rule.error), "{rule:?}: {err}");
        assert_eq!(fs.stats().total_injected(), 1);
        // Fail-stop: writes fail, reads work.
        assert!(is_background(&db.put("x", "y").unwrap_err()));
        assert!(is_background(&db.flush().unwrap_err()));
        assert_eq!(db.get(key(0)).unwrap().unwrap(), val(0));
        drop(db);
        // Everything acknowledged is still there after a reopen.
        let db = Db::open(DIR, options(&fs)).unwrap();
        for i in 0..acked {
            assert_eq!(db.get(key(i)).unwrap().unwrap(), val(i), "{rule:?} key {i}");
        }
    }
}

/// Recovery creates its new WAL before switching `CURRENT`. If the open
/// then fails (here: the new manifest cannot be created), the last WAL of
/// the old state, which ends in a torn record after a crash, is followed by
/// that new, empty WAL; the next open must not take the torn tail for
/// damage in the middle of the log.
#[test]
fn failed_open_after_a_crash_leaves_the_database_openable() {
    let mode = CrashMode {
        keep_unsynced_prefix: true,
        ..CrashMode::DROP_UNSYNCED
    };
    for seed in 0..20u64 {
        let fs = Arc::new(FaultFs::new());
        let db = Db::open(DIR, options(&fs)).unwrap();
        for i in 0..50u64 {
            let sync = i == 20;
            let mut b = WriteBatch::new();
            b.put(key(i), val(i));
            db.write_opt(b, &WriteOptions::default().sync(sync))
                .unwrap();
        }
        fs.power_off();
        drop(db);
        fs.crash(seed, mode);
        fs.inject(FaultRule::new(OpKind::Create, 0, ErrorKind::Other).on("MANIFEST"));
        let e = Db::open(DIR, options(&fs)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        let db = Db::open(DIR, options(&fs))
            .unwrap_or_else(|e| panic!("seed {seed}: reopen after a failed open: {e}"));
        for i in 0..=20 {
            assert_eq!(db.get(key(i)).unwrap().unwrap(), val(i), "seed {seed}");
        }
    }
}

/// Writes batches `from..to` (one key each); every `sync_every`-th is
/// synced. Returns (acknowledged, acknowledged with a sync up to here),
/// stopping at the first error, which is returned too.
/// A database (on `fs`, with `wal_sync_interval_ms`) holding keys 0..200
/// in two level-0 tables, whose compaction of them fails (its output's
/// create gets ENOSPC; the flushes pass) while unsynced writes from 200 on
/// (more each `round`) race with that failure. Returns the database, the
/// writes acknowledged and the write error, if one came.
fn compaction_failing_behind_writes(
    fs: &Arc<FaultFs>,
    round: u64,
    wal_sync_interval_ms: u64,
) -> (Db, u64, Option<Error>) {
    let mut o = options(fs).wal_sync_interval_ms(wal_sync_interval_ms);
    o.compaction.level0_file_num_compaction_trigger = 2;
    let db = Db::open(DIR, o).unwrap();
    write_range(&db, 0, 100, u64::MAX);
    db.flush().unwrap();
    write_range(&db, 100, 200, u64::MAX);
    fs.inject(FaultRule::new(OpKind::Create, 1, ErrorKind::StorageFull).on(".sst"));
    db.flush().unwrap();
    let (acked, _, err) = write_range(&db, 200, 200 + 50 * (round + 1), u64::MAX);
    db.wait_for_compactions().ok();
    (db, acked, err)
}

fn write_range(db: &Db, from: u64, to: u64, sync_every: u64) -> (u64, u64, Option<Error>) {
    let mut synced = from;
    for i in from..to {
        let sync = i % sync_every == 0;
        let mut b = WriteBatch::new();
        b.put(key(i), val(i));
        if let Err(e) = db.write_opt(b, &WriteOptions::default().sync(sync)) {
            return (i, synced, Some(e));
        }
        if sync {
            synced = i + 1;
        }
    }
    (to, synced, None)
}

fn assert_has(db: &Db, n: u64, what: &str) {
    for i in 0..n {
        assert_eq!(
            db.get(key(i)).unwrap().as_deref(),
            Some(&val(i)[..]),
            "{what}: key {i} lost"
        );
    }
}

/// After the fault: fail-stop (writes fail with `Error::Background`, reads
/// work), then nothing acknowledged is lost after a reopen on the same
/// file system, and nothing acknowledged with a sync after a crash.
fn check_fail_stop_and_recovery(fs: &Arc<FaultFs>, db: Db, acked: u64, synced: u64, what: &str) {
    let e = db.put("after", "fault").unwrap_err();
    assert!(is_background(&e), "{what}: write after the fault: {e}");
    assert!(is_background(&db.flush().unwrap_err()), "{what}");
    assert_has(&db, acked, what);
    drop(db);
    let db = Db::open(DIR, options(fs)).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    assert_has(&db, acked, &format!("{what}, reopened"));
    assert!(db.get("after").unwrap().is_none(), "{what}");
    drop(db);
    fs.crash(7, CrashMode::DROP_UNSYNCED);
    let db =
        Db::open(DIR, options(fs)).unwrap_or_else(|e| panic!("{what}: reopen after crash: {e}"));
    assert_has(
        &db,
        synced.max(acked.min(synced)),
        &format!("{what}, after crash"),
    );
}

/// No `Sync` on a path after a failed `Sync` on that path.
fn assert_no_fsync_retry(fs: &FaultFs, what: &str) {
    let log = fs.ops_log();
    for (i, op) in log.iter().enumerate() {
        if op.kind == OpKind::Sync && op.failed {
            let retried = log[i + 1..]
                .iter()
                .any(|o| o.kind == OpKind::Sync && o.path == op.path);
            assert!(
                !retried,
                "{what}: fsync of {} retried after failing",
                op.path.display()
            );
        }
    }
}

/// Every WAL call failing at a few points, for both WAL writers: plain
/// appends (`Append`, `Flush`, `Sync`, and the `ftruncate` of the sparse
/// preallocated tail and of the trim), and the mapped writer (`Append` is
/// a store into the map or a `pwrite`; `fallocate` reserves blocks; a
/// flush makes no call there, its bytes are in the page cache already).
#[test]
fn wal_write_errors_are_fail_stop_and_lose_nothing_acknowledged() {
    // Appends and syncs happen at every write; the size calls only at a
    // WAL switch (every few hundred writes here): fewer of them are
    // skipped.
    let often = [0u64, 7, 40];
    let at_switch = [0u64, 2, 5];
    let cases = [
        (false, OpKind::Append, ErrorKind::Other, often),
        (false, OpKind::Append, ErrorKind::StorageFull, often),
        (false, OpKind::Flush, ErrorKind::Other, often),
        (false, OpKind::Sync, ErrorKind::Other, often),
        (false, OpKind::Sync, ErrorKind::StorageFull, often),
        (false, OpKind::SetLen, ErrorKind::StorageFull, at_switch),
        (true, OpKind::Append, ErrorKind::Other, often),
        (true, OpKind::Append, ErrorKind::StorageFull, often),
        (true, OpKind::Sync, ErrorKind::Other, often),
        (true, OpKind::Sync, ErrorKind::StorageFull, often),
        (true, OpKind::Allocate, ErrorKind::StorageFull, at_switch),
        (true, OpKind::SetLen, ErrorKind::Other, at_switch),
    ];
    let mut faults = 0;
    for (wal_mmap, kind, error, skips) in cases {
        for skip in skips {
            let what = format!("{kind:?} {error:?} after {skip}, wal_mmap {wal_mmap}");
            let fs = Arc::new(FaultFs::new());
            let opts = options(&fs).wal_mmap(wal_mmap);
            let db = Db::open(DIR, opts).unwrap();
            let (acked, _, e) = write_range(&db, 0, 100, 10);
            assert!(e.is_none());
            fs.record_ops(true);
            fs.inject(FaultRule::new(kind, skip, error).on(".log"));
            let (acked, synced, e) = write_range(&db, acked, 2000, 10);
            let e = e.unwrap_or_else(|| panic!("{what}: no write failed"));
            assert!(is_background(&e), "{what}: {e}");
            assert_eq!(io_kind(&e), Some(error), "{what}: {e}");
            faults += fs.stats().total_injected();
            assert_no_fsync_retry(&fs, &what);
            check_fail_stop_and_recovery(&fs, db, acked, synced, &what);
        }
    }
    assert_eq!(faults, 36);
}

/// ENOSPC from `fallocate` in the middle of a mapped WAL, when the writer
/// reserves its next 4 MiB: the write that needed the blocks fails with
/// the disk-full error (no signal, and nothing of it stored: the blocks
/// are reserved before a byte is copied), writes are then fail-stop, and
/// nothing acknowledged is lost after a reopen, nor anything synced after
/// a crash.
#[test]
fn wal_fallocate_enospc_mid_wal_is_fail_stop_and_loses_nothing_acknowledged() {
    let fs = Arc::new(FaultFs::new());
    let opts = options(&fs).wal_mmap(true).write_buffer_size(64 << 20);
    let db = Db::open(DIR, opts).unwrap();
    let allocs = fs.stats().ops(OpKind::Allocate);
    assert!(allocs >= 2, "the WAL's window, then its preallocation");
    fs.record_ops(true);
    fs.inject(FaultRule::new(OpKind::Allocate, 0, ErrorKind::StorageFull).on(".log"));
    let (acked, synced, e) = write_range(&db, 0, 100_000, 100);
    let e = e.expect("a write needed more blocks");
    assert!(is_background(&e), "{e}");
    assert_eq!(io_kind(&e), Some(ErrorKind::StorageFull), "{e}");
    assert!(
        acked > 20_000,
        "the WAL was several MiB long: {acked} writes"
    );
    assert_eq!(fs.stats().injected(OpKind::Allocate), 1);
    // The record that failed stored nothing: the WAL's bytes after the
    // last acknowledged record are zeros.
    let log = fs
        .list_dir(std::path::Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .max()
        .unwrap();
    let wal = fs.read_file(&std::path::Path::new(DIR).join(&log)).unwrap();
    let last = val(acked - 1);
    let at = wal
        .windows(last.len())
        .rposition(|w| w == &last[..])
        .expect("the last acknowledged value is in the WAL");
    assert!(
        wal[at + last.len()..].iter().all(|&b| b == 0),
        "bytes of the failed write were stored"
    );
    assert_no_fsync_retry(&fs, "fallocate ENOSPC");
    check_fail_stop_and_recovery(&fs, db, acked, synced, "fallocate ENOSPC");
}

#[test]
fn flush_errors_are_fail_stop_and_lose_nothing_acknowledged() {
    let rules = [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Append, 3, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".sst"),
        FaultRule::new(OpKind::SyncDir, 0, ErrorKind::Other),
        FaultRule::new(OpKind::Append, 0, ErrorKind::StorageFull).on("MANIFEST"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on("MANIFEST"),
        FaultRule::new(OpKind::Read, 0, ErrorKind::Other).on(".sst"),
    ];
    for rule in rules {
        let what = format!("{rule:?}");
        let fs = Arc::new(FaultFs::new());
        let db = Db::open(DIR, options(&fs)).unwrap();
        let (acked, synced, _) = write_range(&db, 0, 200, 10);
        fs.record_ops(true);
        fs.inject(rule.clone());
        let e = db.flush().unwrap_err();
        assert!(is_background(&e), "{what}: {e}");
        assert_eq!(fs.stats().total_injected(), 1, "{what}");
        assert_no_fsync_retry(&fs, &what);
        check_fail_stop_and_recovery(&fs, db, acked, synced, &what);
    }
}

#[test]
fn compaction_errors_are_fail_stop_and_lose_nothing_acknowledged() {
    let rules = [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Append, 10, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".sst"),
        FaultRule::new(OpKind::SyncDir, 0, ErrorKind::Other),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on("MANIFEST"),
    ];
    for rule in rules {
        let what = format!("{rule:?}");
        let fs = Arc::new(FaultFs::new());
        let mut o = options(&fs);
        o.compaction.disable_auto_compactions = true;
        let db = Db::open(DIR, o.clone()).unwrap();
        let mut acked = 0;
        for round in 0..3 {
            let (a, _, _) = write_range(&db, round * 300, round * 300 + 300, 10);
            acked = a;
            db.flush().unwrap();
        }
        fs.record_ops(true);
        fs.inject(rule.clone());
        let e = db.compact_range::<&[u8], _>(..).unwrap_err();
        assert!(is_background(&e), "{what}: {e}");
        assert_eq!(fs.stats().total_injected(), 1, "{what}");
        assert_no_fsync_retry(&fs, &what);
        // Everything was flushed (synced) before the compaction.
        check_fail_stop_and_recovery(&fs, db, acked, acked, &what);
    }
}

#[test]
fn failed_opens_leave_the_database_openable() {
    let rules = [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".log"),
        FaultRule::new(OpKind::Allocate, 0, ErrorKind::StorageFull).on(".log"),
        FaultRule::new(OpKind::Allocate, 1, ErrorKind::StorageFull).on(".log"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".log"),
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on("MANIFEST"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on("MANIFEST"),
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on("CURRENT"),
        FaultRule::new(OpKind::Rename, 0, ErrorKind::Other).on("CURRENT"),
        FaultRule::new(OpKind::Rename, 0, ErrorKind::Other).on("OPTIONS"),
        FaultRule::new(OpKind::SyncDir, 0, ErrorKind::Other),
        FaultRule::new(OpKind::SyncDir, 1, ErrorKind::Other),
        FaultRule::new(OpKind::Remove, 0, ErrorKind::Other),
        FaultRule::new(OpKind::Read, 0, ErrorKind::Other).on("CURRENT"),
        FaultRule::new(OpKind::Read, 0, ErrorKind::Other).on("MANIFEST"),
        FaultRule::new(OpKind::Read, 0, ErrorKind::Other).on(".log"),
        FaultRule::new(OpKind::Read, 0, ErrorKind::Other).on(".sst"),
    ];
    for rule in rules {
        let what = format!("{rule:?}");
        let fs = Arc::new(FaultFs::new());
        let db = Db::open(DIR, options(&fs)).unwrap();
        let (acked, _, _) = write_range(&db, 0, 300, 1000);
        db.flush().unwrap();
        let (acked2, _, _) = write_range(&db, acked, acked + 100, 1000);
        db.close().unwrap();
        fs.inject(rule.clone());
        let e = Db::open(DIR, options(&fs)).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{what}: {e}");
        let db = Db::open(DIR, options(&fs)).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        assert_has(&db, acked2, &what);
        drop(db);
        fs.crash(3, CrashMode::DROP_UNSYNCED);
        let db = Db::open(DIR, options(&fs)).unwrap_or_else(|e| panic!("{what}: after crash: {e}"));
        assert_has(&db, acked2, &format!("{what}, after crash"));
    }
}

/// Reads are retried (3 attempts, 1-2 ms apart) when they fail with
/// `Interrupted` (EINTR) or `WouldBlock`; a third failure in a row, or any
/// other error, is reported.
#[test]
fn transient_read_errors_are_retried_a_few_times() {
    for (failures, error, opens) in [
        (1, ErrorKind::Interrupted, true),
        (2, ErrorKind::Interrupted, true),
        (2, ErrorKind::WouldBlock, true),
        (3, ErrorKind::Interrupted, false),
        (1, ErrorKind::Other, false),
    ] {
        for target in ["CURRENT", "MANIFEST", ".log", ".sst"] {
            let what = format!("{failures} x {error:?} reading {target}");
            let fs = Arc::new(FaultFs::new());
            let db = Db::open(DIR, options(&fs)).unwrap();
            let (acked, _, _) = write_range(&db, 0, 300, 1000);
            db.flush().unwrap();
            let (acked, _, _) = write_range(&db, acked, acked + 50, 1000);
            db.close().unwrap();
            fs.inject(
                FaultRule::new(OpKind::Read, 0, error)
                    .on(target)
                    .times(failures),
            );
            match Db::open(DIR, options(&fs)) {
                Ok(db) => {
                    assert!(opens, "{what}: opened");
                    assert_has(&db, acked, &what);
                }
                Err(Error::Io { source, .. }) => {
                    assert!(!opens, "{what}: {source}");
                    assert_eq!(source.kind(), error, "{what}");
                }
                Err(e) => panic!("{what}: {e}"),
            }
            assert_eq!(fs.stats().injected(OpKind::Read), failures, "{what}");
        }
    }
}

/// Regression (issue 16, defect 2): a first open that fails part-way must
/// leave a directory that a later open turns into a database. It used to
/// keep `000002.log` without `CURRENT`, and every later open returned
/// `NotADatabase`. Each mutating step of a first open is made to fail in
/// turn (an I/O error, then a power cut at that step followed by a crash in
/// each crash mode); the next open must create a working database.
#[test]
fn first_open_interrupted_at_any_step_leaves_a_creatable_directory() {
    let dir = "/fresh/db";
    let opts = |fs: &Arc<FaultFs>| {
        Options::default()
            .fs(fs.clone())
            .write_buffer_size(64 * 1024)
    };
    // How many mutating operations a first open does.
    let steps = {
        let fs = Arc::new(FaultFs::new());
        let before = fs.stats().total_ops() - fs.stats().ops(OpKind::Read);
        Db::open(dir, opts(&fs)).unwrap().close().unwrap();
        let s = fs.stats();
        s.total_ops() - s.ops(OpKind::Read) - before
    };
    assert!(steps >= 5, "a first open does {steps} mutating operations");
    let reopen_and_use = |fs: &Arc<FaultFs>, what: &str| {
        fs.clear_faults();
        let db = Db::open(dir, opts(fs)).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        assert_eq!(db.iter().count(), 0, "{what}: a new database is empty");
        let (acked, _, _) = write_range(&db, 0, 50, 1);
        db.close().unwrap();
        let db = Db::open(dir, opts(fs)).unwrap_or_else(|e| panic!("{what}: third open: {e}"));
        assert_has(&db, acked, what);
    };
    for step in 0..steps {
        for kind in [
            OpKind::Create,
            OpKind::Append,
            OpKind::Sync,
            OpKind::SyncDir,
            OpKind::Rename,
            OpKind::Allocate,
        ] {
            let fs = Arc::new(FaultFs::new());
            fs.inject(FaultRule::new(kind, step, ErrorKind::StorageFull));
            let what = format!("{kind:?} #{step} fails");
            if Db::open(dir, opts(&fs)).is_ok() {
                continue; // fewer operations of this kind than `step`
            }
            reopen_and_use(&fs, &what);
        }
        for (m, mode) in [
            CrashMode::DROP_UNSYNCED,
            CrashMode {
                keep_unsynced_prefix: true,
                tear_last_page: true,
                keep_unsynced_dir_ops: true,
            },
            CrashMode {
                keep_unsynced_prefix: true,
                tear_last_page: false,
                keep_unsynced_dir_ops: true,
            },
        ]
        .into_iter()
        .enumerate()
        {
            let fs = Arc::new(FaultFs::new());
            fs.power_off_after(step);
            let what = format!("power cut at step {step}, crash mode {m}");
            if let Ok(db) = Db::open(dir, opts(&fs)) {
                drop(db);
            }
            fs.crash(step, mode);
            reopen_and_use(&fs, &what);
        }
    }
}

/// A manifest rewrite (`max_manifest_file_size`) that fails — creating the
/// new manifest, syncing it, or switching `CURRENT` — is fail-stop like any
/// other manifest write, and loses nothing acknowledged.
#[test]
fn manifest_rewrite_errors_are_fail_stop_and_lose_nothing_acknowledged() {
    let rules = [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on("MANIFEST"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on("MANIFEST"),
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on("CURRENT"),
        FaultRule::new(OpKind::Rename, 0, ErrorKind::Other).on("CURRENT"),
    ];
    for rule in rules {
        let what = format!("{rule:?}");
        let fs = Arc::new(FaultFs::new());
        let mut o = options(&fs);
        o.max_manifest_file_size = 1024;
        o.compaction.disable_auto_compactions = true;
        let db = Db::open(DIR, o).unwrap();
        fs.record_ops(true);
        let (mut acked, mut synced) = (0, 0);
        // Flushes until one of them rewrites the manifest.
        let mut failed = None;
        for round in 0..200 {
            fs.clear_faults();
            let (a, s, _) = write_range(&db, round * 5, round * 5 + 5, 2);
            (acked, synced) = (a, s);
            // Create rules hit only a rewrite (nothing else creates a
            // manifest or CURRENT while open); the sync rule hits the
            // first manifest sync, an edit's own or a rewrite's.
            fs.inject(rule.clone());
            if let Err(e) = db.flush() {
                failed = Some(e);
                break;
            }
        }
        let e = failed.unwrap_or_else(|| panic!("{what}: no flush failed"));
        assert!(is_background(&e), "{what}: {e}");
        assert_no_fsync_retry(&fs, &what);
        check_fail_stop_and_recovery(&fs, db, acked, synced, &what);
    }
}

/// Regression (issue 16, defect 8): `close()` skipped the WAL sync whenever
/// any background error was set. A failed flush or compaction leaves the
/// WAL sound: its acknowledged, unsynced writes must still be made durable
/// by close. After a failed WAL sync, close must not sync it again.
#[test]
fn close_syncs_the_wal_after_a_background_error_that_is_not_the_wal() {
    for rule in [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".sst"),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".sst"),
        FaultRule::new(OpKind::Append, 0, ErrorKind::StorageFull).on("MANIFEST"),
    ] {
        let what = format!("{rule:?}");
        let fs = Arc::new(FaultFs::new());
        let db = Db::open(DIR, options(&fs)).unwrap();
        let (acked, _, _) = write_range(&db, 0, 150, u64::MAX);
        fs.inject(rule);
        assert!(is_background(&db.flush().unwrap_err()), "{what}");
        db.close().unwrap_or_else(|e| panic!("{what}: close: {e}"));
        fs.crash(11, CrashMode::DROP_UNSYNCED);
        let db = Db::open(DIR, options(&fs)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_has(&db, acked, &format!("{what}, after close and power loss"));
    }
    // A compaction that fails while acknowledged writes wait unsynced in
    // the WAL (a flush's WAL switch syncs the WAL, so only a background
    // compaction leaves such writes behind its error). Its error races
    // with the writes; rounds where none were acknowledged prove nothing.
    let mut proved = 0;
    for round in 0..40u64 {
        let fs = Arc::new(FaultFs::new());
        let (db, acked, err) = compaction_failing_behind_writes(&fs, round, 0);
        let unsynced = acked - 200;
        if err.is_none() && unsynced > 0 {
            // The compaction has not failed yet: no background error.
            continue;
        }
        proved += u64::from(unsynced > 0);
        db.close()
            .unwrap_or_else(|e| panic!("round {round}: close: {e}"));
        fs.crash(round, CrashMode::DROP_UNSYNCED);
        let db = Db::open(DIR, options(&fs)).unwrap();
        assert_has(
            &db,
            acked,
            &format!("round {round}: {unsynced} unsynced writes"),
        );
    }
    assert!(
        proved > 0,
        "no round had unsynced writes when the compaction failed"
    );
    // The periodic sync (`wal_sync_interval_ms`) goes on after such an
    // error too: acknowledged writes are durable after the interval,
    // without a close.
    let mut proved = 0;
    for round in 0..40u64 {
        let fs = Arc::new(FaultFs::new());
        let (db, acked, err) = compaction_failing_behind_writes(&fs, round, 20);
        if err.is_none() || acked == 200 {
            // No background error yet, or nothing unsynced behind it.
            continue;
        }
        proved += 1;
        std::thread::sleep(Duration::from_millis(200));
        fs.power_off();
        drop(db);
        fs.crash(round, CrashMode::DROP_UNSYNCED);
        let db = Db::open(DIR, options(&fs)).unwrap();
        assert_has(&db, acked, &format!("periodic sync, round {round}"));
    }
    assert!(
        proved > 0,
        "no round had unsynced writes when the compaction failed"
    );
    // The WAL's own sync failed: close reports it and does not retry it.
    let fs = Arc::new(FaultFs::new());
    let db = Db::open(DIR, options(&fs)).unwrap();
    write_range(&db, 0, 50, u64::MAX);
    fs.record_ops(true);
    fs.inject(FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".log"));
    let mut b = WriteBatch::new();
    b.put("synced", "write");
    assert!(db
        .write_opt(b, &WriteOptions::default().sync(true))
        .is_err());
    assert!(db.close().is_err(), "close reports the failed WAL");
    assert_no_fsync_retry(&fs, "a failed WAL sync, then close");
}
