//! Transactions committing at the same time, from many threads, while the
//! memtable is switched, flushed and compacted.
//!
//! - Lost updates: threads increment one counter; every increment counts.
//! - Same snapshot, same key: transactions that all read at one snapshot
//!   and commit together (so the write group validates them against each
//!   other) have exactly one winner, and the losers leave nothing behind.
//! - Serializable: a write-skew-prone invariant ("at least one doctor on
//!   call") holds under concurrent serializable transactions.
//!
//! Why it matters: validation runs in the write-group leader against the
//! earlier members of its own group; a conflict missed there is invisible
//! to single-threaded tests.

mod common;

use std::sync::{Arc, Barrier, Mutex};

use common::{churn_opts, Rng};
use lightning_db::{Db, Error, TransactionOptions, WriteBatch, WriteOptions};

fn patient() -> TransactionOptions {
    TransactionOptions::default().max_retries(10_000)
}

fn parse(v: Option<lightning_db::Bytes>) -> u64 {
    v.map_or(0, |v| std::str::from_utf8(&v).unwrap().parse().unwrap())
}

#[test]
fn no_lost_updates_on_a_hot_counter() {
    const THREADS: u64 = 8;
    const INCREMENTS: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), churn_opts()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..INCREMENTS {
                    db.transaction_with_opt(&patient(), |tx| {
                        let n = parse(tx.get("counter")?);
                        tx.put("counter", (n + 1).to_string());
                        // Filler, so memtables switch and flush meanwhile.
                        tx.put(format!("fill/{t}/{i}"), [b'x'; 200]);
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(parse(db.get("counter").unwrap()), THREADS * INCREMENTS);
}

#[test]
fn same_snapshot_commits_have_exactly_one_winner() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), churn_opts()).unwrap());
    let barrier = Arc::new(Barrier::new(THREADS));
    let winners = Arc::new(Mutex::new(vec![Vec::new(); ROUNDS]));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, barrier, winners) =
                (Arc::clone(&db), Arc::clone(&barrier), Arc::clone(&winners));
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let mut tx = db.transaction();
                    let n = parse(tx.get("hot").unwrap());
                    tx.put("hot", (n + 1).to_string());
                    tx.put(format!("own/{round}/{t}"), "x");
                    // Everyone has its snapshot before anyone commits.
                    barrier.wait();
                    // A synced write holds the write queue while the
                    // others queue up behind it, so that one group takes
                    // several of the transactions and must validate them
                    // against each other.
                    if t == 0 {
                        let mut plug = WriteBatch::new();
                        plug.put("plug", round.to_string());
                        db.write_opt(plug, &WriteOptions::default().sync(true))
                            .unwrap();
                    } else {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    match tx.commit() {
                        Ok(()) => winners.lock().unwrap()[round].push(t),
                        Err(Error::Conflict { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let winners = winners.lock().unwrap();
    for (round, w) in winners.iter().enumerate() {
        assert_eq!(w.len(), 1, "round {round}: winners {w:?}");
        for t in 0..THREADS {
            let own = db.get(format!("own/{round}/{t}")).unwrap();
            assert_eq!(own.is_some(), w[0] == t, "round {round} thread {t}");
        }
    }
    assert_eq!(parse(db.get("hot").unwrap()), ROUNDS as u64);
}

#[test]
fn serializable_keeps_a_write_skew_invariant_under_concurrency() {
    const THREADS: u64 = 6;
    const STEPS: u64 = 150;
    const DOCTORS: u64 = 3;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), churn_opts()).unwrap());
    for d in 0..DOCTORS {
        db.put(format!("oncall/{d}"), "1").unwrap();
    }
    let opts = TransactionOptions::serializable().max_retries(10_000);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let mut rng = Rng(t);
                for _ in 0..STEPS {
                    let d = rng.below(DOCTORS);
                    db.transaction_with_opt(&opts, |tx| {
                        let on = tx
                            .prefix("oncall/")
                            .filter(|r| r.as_ref().map_or(true, |(_, v)| v.as_ref() == b"1"))
                            .count();
                        let me = format!("oncall/{d}");
                        if tx.get(&me)?.as_deref() == Some(b"1") {
                            // Go off call only if someone else stays on.
                            if on >= 2 {
                                tx.put(&me, "0");
                            }
                        } else {
                            tx.put(&me, "1");
                        }
                        Ok(())
                    })
                    .unwrap();
                    let snap = db.snapshot();
                    let on = snap
                        .prefix("oncall/")
                        .filter(|r| r.as_ref().unwrap().1.as_ref() == b"1")
                        .count();
                    assert!(on >= 1, "nobody on call: write skew got through");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
