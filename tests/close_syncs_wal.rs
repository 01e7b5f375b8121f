//! Issue 16, defect 2: what `close` does with the WAL after a background
//! error.
//!
//! Why it matters: `close` syncs the WAL so that writes acknowledged
//! without `sync` survive a power loss after it. It skipped that sync
//! whenever any background error was set; but a failed flush or compaction
//! (an SST or manifest write) says nothing about the WAL, which still holds
//! every acknowledged write, and a power loss after such a close lost them.
//! Only a failure of the WAL itself (an append, flush or fsync) makes its
//! data's state unknown: then `close` must not fsync it again as if it were
//! safe (after a failed fsync the kernel may have dropped the dirty pages,
//! and a second fsync "succeeds"), and must report the error.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use common::gate::{Gate, GateFs, GateOp};
use lightning_db::testing::{CrashMode, FaultFs, FaultRule, OpKind, OpRecord};
use lightning_db::{Db, Error, Options, WriteOptions};

const DIR: &str = "/db";

fn options(fs: Arc<dyn lightning_db::fs::FileSystem>) -> Options {
    Options::default().fs(fs).write_buffer_size(64 * 1024)
}

fn val(i: u64) -> Vec<u8> {
    let mut v = format!("value{i}:").into_bytes();
    v.resize(200, b'x');
    v
}

/// The error recorded inside an `Error::Background`.
fn recorded(e: &Error) -> &Arc<Error> {
    match e {
        Error::Background(inner) => inner,
        other => panic!("not a background error: {other:?}"),
    }
}

/// Makes the next flush fail (its SST cannot be created) while writes go
/// on into the new WAL: fills the memtable until it switches to a new WAL
/// (which syncs the old one), holds the flush before its SST, writes more,
/// then lets the flush fail and writes until writes stop. Returns the keys
/// acknowledged, the last ones not synced.
fn fail_a_flush(fault: &FaultFs, gate: &Gate, db: &Db) -> Vec<String> {
    gate.arm(GateOp::Create, ".sst");
    let mut acked = Vec::new();
    for i in 0.. {
        db.put(format!("a{i:06}"), val(i)).unwrap();
        acked.push(format!("a{i:06}"));
        if db.stats().memtables.immutable_count > 0 {
            break;
        }
        assert!(i < 100_000, "the memtable did not switch");
    }
    assert!(
        gate.wait_holding(Duration::from_secs(10)),
        "the flush did not start"
    );
    // Unsynced writes into the new WAL, acknowledged before the flush fails.
    for i in 0..100 {
        db.put(format!("b{i:06}"), val(i)).unwrap();
        acked.push(format!("b{i:06}"));
    }
    fault.inject(FaultRule::new(OpKind::Create, 0, ErrorKind::StorageFull).on(".sst"));
    gate.release();
    // Writes stop once the flush failed (the ones acknowledged until then
    // count too).
    let mut i = 0u64;
    let err = loop {
        match db.put(format!("c{i:06}"), val(i)) {
            Ok(()) => acked.push(format!("c{i:06}")),
            Err(e) => break e,
        }
        i += 1;
        assert!(i < 1_000_000, "the flush did not fail");
    };
    match &**recorded(&err) {
        Error::Io { path, source } => {
            assert!(path.to_string_lossy().ends_with(".sst"), "{path:?}");
            assert_eq!(source.kind(), ErrorKind::StorageFull);
        }
        other => panic!("{other:?}"),
    }
    acked
}

/// After a power loss and a reopen, every key of `acked` is there.
fn assert_survived_power_loss(fault: &Arc<FaultFs>, acked: &[String], what: &str) {
    fault.crash(1, CrashMode::DROP_UNSYNCED);
    let db = Db::open(DIR, options(fault.clone())).unwrap();
    for k in acked {
        assert!(
            db.get(k).unwrap().is_some(),
            "{k}, acknowledged {what}, lost to the power loss"
        );
    }
}

/// A flush fails; the writes acknowledged before, not synced, survive a
/// power loss after `close`.
#[test]
fn close_syncs_the_wal_after_a_flush_failure() {
    let fault = Arc::new(FaultFs::new());
    let (fs, gate) = GateFs::new(fault.clone());
    let db = Db::open(DIR, options(fs)).unwrap();
    let acked = fail_a_flush(&fault, &gate, &db);
    fault.record_ops(true);
    db.close().expect("close after a flush failure");
    let wal_synced = fault
        .ops_log()
        .iter()
        .any(|o| o.kind == OpKind::Sync && o.path.to_string_lossy().ends_with(".log"));
    assert_survived_power_loss(&fault, &acked, "before close");
    assert!(wal_synced, "close did not sync the WAL");
}

/// The same for the periodic WAL sync (`wal_sync_interval_ms`): a failed
/// flush does not stop it, so writes acknowledged more than one interval
/// before a power loss survive it, closed or not.
#[test]
fn the_periodic_wal_sync_goes_on_after_a_flush_failure() {
    let fault = Arc::new(FaultFs::new());
    let (fs, gate) = GateFs::new(fault.clone());
    let db = Db::open(DIR, options(fs).wal_sync_interval_ms(20)).unwrap();
    let acked = fail_a_flush(&fault, &gate, &db);
    std::thread::sleep(Duration::from_millis(200));
    fault.power_off();
    drop(db);
    assert_survived_power_loss(&fault, &acked, "200 ms before");
}

/// The first sync of a WAL file after an operation on it failed, if any.
fn sync_after_failure(log: &[OpRecord]) -> Option<&OpRecord> {
    let first = log
        .iter()
        .position(|o| o.failed && o.path.to_string_lossy().ends_with(".log"))?;
    log[first + 1..]
        .iter()
        .find(|o| o.kind == OpKind::Sync && o.path == log[first].path)
}

/// The WAL itself failed (a synced write's fsync, or an append): `close`
/// does not fsync it again and returns the recorded error.
#[test]
fn close_does_not_fsync_a_failed_wal_again_and_reports_it() {
    for (kind, sync) in [(OpKind::Sync, true), (OpKind::Append, false)] {
        let what = format!("{kind:?} failing");
        let fault = Arc::new(FaultFs::new());
        let db = Db::open(DIR, options(fault.clone())).unwrap();
        for i in 0..50 {
            db.put(format!("a{i:06}"), val(i)).unwrap();
        }
        fault.record_ops(true);
        fault.inject(FaultRule::new(kind, 0, ErrorKind::Other).on(".log"));
        let err = db
            .put_opt("x", "y", &WriteOptions::default().sync(sync))
            .expect_err("the write whose WAL operation failed");
        let cause = Arc::clone(recorded(&err));
        assert!(matches!(*cause, Error::Io { .. }), "{what}: {cause:?}");
        let closed = db.close();
        match &closed {
            Err(e) => assert!(
                Arc::ptr_eq(recorded(e), &cause),
                "{what}: close reported {e:?}"
            ),
            Ok(()) => panic!("{what}: close returned Ok after the WAL failed"),
        }
        let log = fault.ops_log();
        assert!(
            sync_after_failure(&log).is_none(),
            "{what}: close synced the WAL after it failed: {log:?}"
        );
        // Nothing acknowledged is lost to a reopen without power loss.
        let db = Db::open(DIR, options(fault.clone())).unwrap();
        for i in 0..50 {
            assert!(
                db.get(format!("a{i:06}")).unwrap().is_some(),
                "{what}: a{i}"
            );
        }
    }
}
