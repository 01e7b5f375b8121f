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
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use lightning_db::fs::{CrashMode, FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options, WriteBatch, WriteOptions};

const DIR: &str = "/db";

fn options(fs: &Arc<FaultFs>) -> Options {
    Options {
        fs: fs.clone(),
        write_buffer_size: 64 * 1024,
        ..Options::default()
    }
}

/// Runs `f` on another thread and fails the test if it does not return
/// within `secs` seconds (a deadlock would otherwise hang the test run).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s (deadlock?)"))
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

/// WAL rotation (memtable full) failing: the old WAL's sync, the new WAL's
/// creation or its directory sync. The writer that triggered the rotation
/// must get an error, not hang.
#[test]
fn failed_wal_rotation_returns_an_error() {
    for rule in [
        FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".log"),
        FaultRule::new(OpKind::SyncDir, 0, ErrorKind::Other),
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other).on(".log"),
    ] {
        let fs = Arc::new(FaultFs::new());
        let db = Arc::new(Db::open(DIR, options(&fs)).unwrap());
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
            db.write_opt(b, &WriteOptions { sync }).unwrap();
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
