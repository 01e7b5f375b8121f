//! Issue 22: every writer of a write group whose WAL append fails gets the
//! same error, with its kind.
//!
//! Why it matters: a caller decides what to do from the error's kind (an
//! I/O error with `StorageFull` means "free space and reopen", a
//! corruption means "restore"). The writers of one group share one WAL
//! append, so they share one failure; a follower that got the leader's
//! message flattened into `InvalidArgument` would be told its own
//! arguments were wrong.
//!
//! The contract (`Db::write_opt`): a failed WAL write or fsync stops the
//! database, and every writer of that group — leader and followers alike —
//! gets `Error::Background` holding the very same recorded error (one
//! `Arc`), an `Error::Io` with the operating system's error kind; so does
//! every later write.

mod common;

use std::io::ErrorKind;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::gate::{GateFs, GateOp};
use lightning_db::testing::{FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options, WriteOptions};

/// `Error::Background` around an `Error::Io` of `kind`: the recorded error.
fn background_io(e: &Error, kind: ErrorKind) -> Arc<Error> {
    match e {
        Error::Background(inner) => match &**inner {
            Error::Io { source, .. } if source.kind() == kind => Arc::clone(inner),
            other => panic!("background error is not an I/O error of kind {kind:?}: {other:?}"),
        },
        other => panic!("not a background error: {other:?}"),
    }
}

#[test]
fn every_writer_of_a_group_whose_wal_append_fails_gets_the_same_io_error() {
    let fault = Arc::new(FaultFs::new());
    let (fs, gate) = GateFs::new(fault.clone());
    let db = Arc::new(
        Db::open(
            "/db",
            Options::default()
                .fs(fs)
                // The plain writer appends a record before its fsync; the
                // mapped one may hold it in its buffer until the fsync the
                // gate holds, where the injected failure would hit it too.
                .wal_mmap(false),
        )
        .unwrap(),
    );
    // The first writer's group holds the WAL in its fsync...
    gate.arm(GateOp::Sync, ".log");
    let (tx, rx) = mpsc::channel();
    let d = Arc::clone(&db);
    let first = tx.clone();
    std::thread::spawn(move || {
        let r = d.put_opt("first", "v", &WriteOptions::default().sync(true));
        first.send((0usize, r)).unwrap();
    });
    assert!(gate.wait_holding(Duration::from_secs(10)), "no WAL sync");
    // ...while four more writers queue behind it: the next group.
    const FOLLOWERS: usize = 4;
    for i in 1..=FOLLOWERS {
        let d = Arc::clone(&db);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = d.put(format!("key{i}"), "v");
            tx.send((i, r)).unwrap();
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    // That group's WAL append fails.
    fault.inject(FaultRule::new(OpKind::Append, 0, ErrorKind::StorageFull).on(".log"));
    gate.release();
    let mut results: Vec<_> = (0..=FOLLOWERS)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("a writer did not return (deadlock?)")
        })
        .collect();
    results.sort_by_key(|(i, _)| *i);
    assert!(results[0].1.is_ok(), "first writer: {:?}", results[0].1);
    let errors: Vec<Arc<Error>> = results[1..]
        .iter()
        .map(|(i, r)| match r {
            Err(e) => background_io(e, ErrorKind::StorageFull),
            Ok(()) => panic!("writer {i} of the failed group got Ok"),
        })
        .collect();
    for e in &errors[1..] {
        assert!(Arc::ptr_eq(e, &errors[0]), "one recorded error for all");
    }
    assert_eq!(fault.stats().injected(OpKind::Append), 1);
    // Every later write gets the same error.
    let later = db.put("later", "v").unwrap_err();
    assert!(Arc::ptr_eq(
        &background_io(&later, ErrorKind::StorageFull),
        &errors[0]
    ));
    assert_eq!(db.get("first").unwrap().as_deref(), Some(&b"v"[..]));
    for i in 1..=FOLLOWERS {
        assert!(db.get(format!("key{i}")).unwrap().is_none(), "key{i}");
    }
}

/// An unsynced write with no other writer about goes direct (it logs its
/// own batch with the write queue locked): its failed WAL append is
/// recorded as the background error there, without a deadlock on the
/// queue, it is not visible, and every later write gets the same error.
#[test]
fn a_direct_write_whose_wal_append_fails_stops_the_database() {
    let fault = Arc::new(FaultFs::new());
    let db =
        Arc::new(Db::open("/db", Options::default().fs(fault.clone()).wal_mmap(false)).unwrap());
    db.put("before", "v").unwrap();
    fault.inject(FaultRule::new(OpKind::Append, 0, ErrorKind::StorageFull).on(".log"));
    let (tx, rx) = mpsc::channel();
    let d = Arc::clone(&db);
    std::thread::spawn(move || tx.send(d.put("failed", "v")).unwrap());
    let r = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the direct writer did not return (deadlock?)");
    let recorded = background_io(&r.unwrap_err(), ErrorKind::StorageFull);
    assert_eq!(fault.stats().injected(OpKind::Append), 1);
    let later = db.put("later", "v").unwrap_err();
    assert!(Arc::ptr_eq(
        &background_io(&later, ErrorKind::StorageFull),
        &recorded
    ));
    assert_eq!(db.get("before").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(db.get("failed").unwrap().is_none());
    assert!(db.get("later").unwrap().is_none());
}
