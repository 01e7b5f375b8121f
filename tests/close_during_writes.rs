//! Issue 16, defect 1: transaction commits racing `Db::close`.
//!
//! Why it matters: a `Transaction` holds the database's shared state, not
//! the `Db`, so its commit can run while another thread closes the
//! database (or after it did). `close` promises that the WAL it syncs
//! holds every acknowledged write; a commit that reached the WAL after
//! `close` had synced it was still acknowledged, and wrote to the
//! directory after `close` returned. And when that late commit's WAL
//! append failed, it recorded the background error by taking the write
//! queue while holding the WAL, the reverse of `close`'s order (queue,
//! then WAL): both threads hung.
//!
//! Promise checked: once `close` returns, every commit either completed
//! before (it is in the files `close` left) or fails with `Error::Closed`
//! and wrote nothing; nothing changes in the directory after `close`
//! returned; a WAL failure during `close` ends in errors, not a hang.

mod common;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::gate::{GateFs, GateOp};
use common::{snapshot_dir, within};
use lightning_db::testing::{FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options, Transaction, TransactionOptions, WriteBatch};

/// Keys every commit validates (see [`begin`]).
const PRE_KEYS: u64 = 30_000;

fn key(t: usize, i: usize) -> String {
    format!("t{t}/{i:05}")
}

/// A serializable transaction that scanned `pre/` and writes `key`: its
/// commit validates the whole range, so it stays in its write group for a
/// while, as a commit after a long scan does.
fn begin(db: &Db, key: &str) -> Transaction {
    let mut tx = db.transaction_opt(&TransactionOptions::serializable());
    drop(tx.prefix("pre/"));
    tx.put(key, "v");
    tx
}

#[test]
fn commits_racing_close_are_in_the_files_it_left_or_refused() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 150;
    for round in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default().write_buffer_size(16 << 20);
        let db = Db::open(dir.path(), opts).unwrap();
        let mut b = WriteBatch::new();
        for i in 0..PRE_KEYS {
            b.put(format!("pre/{i:06}"), "v");
        }
        db.write(b).unwrap();
        // Transactions begun now, committed by the writers while (and
        // after) the database closes.
        let work: Vec<Vec<Transaction>> = (0..THREADS)
            .map(|t| (0..PER_THREAD).map(|i| begin(&db, &key(t, i))).collect())
            .collect();
        let closed = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = work
            .into_iter()
            .enumerate()
            .map(|(t, txs)| {
                let closed = Arc::clone(&closed);
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut refused = Vec::new();
                    for (i, tx) in txs.into_iter().enumerate() {
                        let begun_after_close = closed.load(Ordering::SeqCst);
                        match tx.commit() {
                            Ok(()) if !begun_after_close => acked.push(i),
                            Ok(()) => panic!(
                                "round {round}: commit {t}/{i} begun after close returned got Ok"
                            ),
                            Err(Error::Closed) => refused.push(i),
                            Err(e) => panic!("round {round}: commit {t}/{i}: {e}"),
                        }
                    }
                    (acked, refused)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(300 + round * 997 % 3000));
        db.close().unwrap();
        let at_close = snapshot_dir(dir.path());
        closed.store(true, Ordering::SeqCst);
        let results: Vec<(Vec<usize>, Vec<usize>)> =
            writers.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            snapshot_dir(dir.path()) == at_close,
            "round {round}: files changed after close returned"
        );
        let copy = tempfile::tempdir().unwrap();
        for (name, data) in at_close.iter().filter(|(n, _)| *n != "LOCK") {
            std::fs::write(copy.path().join(name), data).unwrap();
        }
        let db = Db::open(copy.path(), Options::default()).unwrap();
        for (t, (acked, refused)) in results.iter().enumerate() {
            for &i in acked {
                assert!(
                    db.get(key(t, i)).unwrap().is_some(),
                    "round {round}: acknowledged commit {t}/{i} is not in the files close left"
                );
            }
            for &i in refused {
                assert!(
                    db.get(key(t, i)).unwrap().is_none(),
                    "round {round}: commit {t}/{i} refused with Closed was written"
                );
            }
        }
    }
}

/// A commit's WAL append fails while another thread closes the database:
/// the commit holds the WAL when it fails, and `close` waits for it.
#[test]
fn a_wal_append_failing_while_close_runs_does_not_deadlock() {
    let fault = Arc::new(FaultFs::new());
    let (fs, gate) = GateFs::new(fault.clone());
    let db = Db::open("/db", Options::default().fs(fs)).unwrap();
    db.put("before", "v").unwrap();
    let tx = begin(&db, "in-flight");
    fault.record_ops(true);
    // The commit's WAL append waits at the gate, WAL lock held, then fails.
    fault.inject(FaultRule::new(OpKind::Append, 0, ErrorKind::Other).on(".log"));
    gate.arm(GateOp::Append, ".log");
    let (commit_tx, commit_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = commit_tx.send(tx.commit());
    });
    assert!(gate.wait_holding(Duration::from_secs(10)), "no WAL append");
    let (close_tx, close_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = close_tx.send(db.close());
    });
    // Let close get as far as it goes while the append is held.
    std::thread::sleep(Duration::from_millis(200));
    gate.release();
    let commit = commit_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the commit did not return (deadlock?)");
    let close = close_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("close did not return (deadlock?)");
    match &commit {
        Err(Error::Background(e)) => assert!(
            matches!(&**e, Error::Io { source, .. } if source.kind() == ErrorKind::Other),
            "{e:?}"
        ),
        other => panic!("commit whose WAL append failed: {other:?}"),
    }
    // The WAL failed: close reports the same error and does not sync it.
    match &close {
        Err(Error::Background(e)) => match &commit {
            Err(Error::Background(c)) => assert!(Arc::ptr_eq(e, c), "{e:?}"),
            _ => unreachable!(),
        },
        other => panic!("close after the WAL failed: {other:?}"),
    }
    let log = fault.ops_log();
    let failed = log
        .iter()
        .position(|o| o.failed)
        .expect("the failed append");
    assert!(
        !log[failed..].iter().any(|o| o.kind == OpKind::Sync),
        "a sync after the WAL failed: {log:?}"
    );
    let db = within(20, "reopen", move || {
        Db::open("/db", Options::default().fs(fault))
    })
    .unwrap();
    assert_eq!(db.get("before").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(db.get("in-flight").unwrap().is_none());
}
