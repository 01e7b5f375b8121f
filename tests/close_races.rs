//! `close()` while transaction commits are in flight on other threads
//! (a `Transaction` keeps the database's shared state, not the `Db`, so it
//! can outlive the handle).
//!
//! Why it matters (issue 16, defect 6): a commit in flight could be
//! written to the WAL after `close()` had synced it and released the
//! directory — acknowledged but not durable, and written into a directory
//! another process may already have opened — and a WAL append failing
//! during close could deadlock (the write path took the WAL lock, then the
//! queue lock; close took them the other way round). After `close()`
//! returns the database must touch nothing: every commit either completed
//! before (and is in the WAL close synced) or fails with `Error::Closed`.

use std::io::ErrorKind;
use std::sync::{mpsc, Arc, Mutex};

mod common;

use common::within;
use lightning_db::testing::{CrashMode, FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options, Transaction};

fn opts(fs: &Arc<FaultFs>) -> Options {
    Options::default()
        .fs(fs.clone())
        .write_buffer_size(64 * 1024)
}

/// Committer threads: each commits the transactions it receives and
/// returns the keys of those acknowledged, and whether any commit failed
/// with something other than `Error::Closed` (allowed when `faults`).
type Committed = (Vec<String>, usize);

fn committers(
    rx: Arc<Mutex<mpsc::Receiver<(String, Transaction)>>>,
    faults: bool,
) -> Vec<std::thread::JoinHandle<Committed>> {
    (0..4)
        .map(|_| {
            let rx = Arc::clone(&rx);
            std::thread::spawn(move || {
                let (mut acked, mut closed) = (Vec::new(), 0);
                loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok((k, tx)) = next else { break };
                    match tx.commit() {
                        Ok(()) => acked.push(k),
                        Err(Error::Closed) => closed += 1,
                        Err(e) if faults => {
                            assert!(matches!(e, Error::Background(_) | Error::Io { .. }), "{e}")
                        }
                        Err(e) => panic!("commit: {e}"),
                    }
                }
                (acked, closed)
            })
        })
        .collect()
}

/// Opens a database, feeds transactions to the committers for a while,
/// closes it with commits in flight (injecting `fault` first, if any),
/// then checks that nothing was written after `close` returned and that
/// every acknowledged commit survives a power loss.
fn close_under_commits(round: u64, fault: Option<FaultRule>) {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open("/db", opts(&fs)).unwrap();
    let (send, recv) = mpsc::sync_channel::<(String, Transaction)>(64);
    let workers = committers(Arc::new(Mutex::new(recv)), fault.is_some());
    let feed = |db: &Db, from: u64, n: u64| {
        for i in from..from + n {
            let k = format!("k{i:07}");
            let mut tx = db.transaction();
            tx.put(&k, vec![(i % 251) as u8; 200]);
            send.send((k, tx)).unwrap();
        }
    };
    feed(&db, 0, 200 + round * 37);
    if let Some(rule) = fault.clone() {
        fs.inject(rule);
    }
    // Queued transactions outlive the handle: some commit while close runs.
    feed(&db, 1_000_000, 64);
    let fs2 = Arc::clone(&fs);
    let closed = within(10, "close", move || {
        let r = db.close();
        // From here on the closed database must not touch its files.
        fs2.record_ops(true);
        r
    });
    if fault.is_none() {
        closed.unwrap();
    }
    drop(send);
    let mut acked = Vec::new();
    for w in workers {
        acked.extend(w.join().unwrap().0);
    }
    let after: Vec<_> = fs
        .ops_log()
        .into_iter()
        .filter(|o| o.kind.is_mutation())
        .collect();
    assert!(
        after.is_empty(),
        "round {round}: written after close returned: {after:?}"
    );
    fs.clear_faults();
    if fault.is_none() {
        // Close synced the WAL: acknowledged commits survive power loss.
        fs.crash(round, CrashMode::DROP_UNSYNCED);
    }
    // After a failed WAL append the WAL is not synced again (its state is
    // unknown); acknowledged commits survive a crash of the process, which
    // reopening the same file system is.
    let db = Db::open("/db", opts(&fs)).unwrap();
    for k in &acked {
        assert!(
            db.get(k).unwrap().is_some(),
            "round {round}: {k} acknowledged but lost"
        );
    }
}

#[test]
fn nothing_is_written_after_close_returns() {
    for round in 0..20 {
        close_under_commits(round, None);
    }
}

#[test]
fn a_wal_failure_during_close_neither_deadlocks_nor_loses_acknowledged_writes() {
    for (round, skip) in [0u64, 2, 5, 20, 60].into_iter().enumerate() {
        close_under_commits(
            round as u64,
            Some(FaultRule::new(OpKind::Append, skip, ErrorKind::Other).on(".log")),
        );
    }
}
