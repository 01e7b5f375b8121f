//! Unsynced writes that find the write queue empty skip it: they number
//! and log themselves with the queue locked and publish through the same
//! publication queue as the groups (`db::write`, `write_direct`). These
//! tests mix them with everything that still goes through a leader —
//! transactions, synced writes, flushes, memtable switches — from several
//! threads at once.
//!
//! Why it matters: a direct write numbered or logged while a leader works
//! with the queue unlocked (validating a transaction, logging a group)
//! would take sequence numbers the leader is handing out, slip between a
//! transaction's validation and its commit, or reach the WAL out of
//! order. Each shows below as a lost increment, a sequence count that does
//! not match the writes, or a difference after replaying the WAL.

mod common;

use std::sync::Arc;

use lightning_db::{Db, Options, WriteOptions};

const TX_THREADS: u64 = 2;
const INCREMENTS: u64 = 300;
const PLAIN_THREADS: u64 = 2;
const PLAIN_WRITES: u64 = 4_000;

fn plain_key(t: u64, i: u64) -> Vec<u8> {
    format!("plain/{t}/{i:06}").into_bytes()
}

/// A counter read and increased by transactions, beside plain writers
/// that keep the queue mostly empty (so most of their writes go direct),
/// a synced write now and then, and flushes: no increment is lost, and
/// the sequence numbers count exactly the entries written, live and after
/// the WAL and tables are read back.
#[test]
fn transactions_and_direct_writes_share_one_numbering() {
    let dir = tempfile::tempdir().unwrap();
    // Small memtables: direct writes meet memtable switches (which they
    // leave to a leader) and flushes.
    let opts = Options::default().write_buffer_size(128 * 1024);
    let db = Arc::new(Db::open(dir.path(), opts.clone()).unwrap());
    let mut threads = Vec::new();
    for _ in 0..TX_THREADS {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            let mut done = 0;
            while done < INCREMENTS {
                let mut tx = db.transaction();
                let n: u64 = match tx.get_for_update("counter").unwrap() {
                    Some(v) => std::str::from_utf8(&v).unwrap().parse().unwrap(),
                    None => 0,
                };
                tx.put("counter", (n + 1).to_string());
                // Every increment also writes a key of its own, so the
                // entry count below depends on every commit.
                tx.put(format!("inc/{n:06}"), "x");
                match tx.commit() {
                    Ok(()) => done += 1,
                    Err(e) if e.is_conflict() => {}
                    Err(e) => panic!("commit: {e}"),
                }
            }
        }));
    }
    for t in 0..PLAIN_THREADS {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            for i in 0..PLAIN_WRITES {
                let wo = WriteOptions::default().sync(t == 0 && i % 400 == 0);
                db.put_opt(plain_key(t, i), i.to_le_bytes(), &wo).unwrap();
                // Acknowledged means visible, to the writer at least.
                assert_eq!(
                    db.get(plain_key(t, i)).unwrap().as_deref(),
                    Some(&i.to_le_bytes()[..]),
                    "own write {t}/{i}"
                );
                if t == 1 && i % 1_000 == 999 {
                    db.flush().unwrap();
                }
            }
        }));
    }
    for h in threads {
        h.join().unwrap();
    }
    let increments = TX_THREADS * INCREMENTS;
    // Each commit writes two entries, each plain write one.
    let entries = 2 * increments + PLAIN_THREADS * PLAIN_WRITES;
    let check = |db: &Db| {
        assert_eq!(
            db.get("counter").unwrap().as_deref(),
            Some(increments.to_string().as_bytes()),
            "an increment was lost"
        );
        assert_eq!(
            db.property_u64("lightning.latest-sequence-number"),
            Some(entries),
            "one sequence number per entry written"
        );
        for t in 0..PLAIN_THREADS {
            for i in 0..PLAIN_WRITES {
                assert_eq!(
                    db.get(plain_key(t, i)).unwrap().as_deref(),
                    Some(&i.to_le_bytes()[..]),
                    "plain write {t}/{i}"
                );
            }
        }
        let distinct = 1 + increments + PLAIN_THREADS * PLAIN_WRITES;
        assert_eq!(db.iter().count() as u64, distinct, "no extra entries");
    };
    common::check_then_reopen(db, dir.path(), opts, check);
}

/// A keyspace dropped while threads write to it without queueing: each
/// write either lands (before the drop) or gets `KeyspaceDropped`, none
/// lands after one was refused, nothing deadlocks, and the writes to the
/// default keyspace beside them all land.
#[test]
fn a_keyspace_dropped_under_direct_writers() {
    use std::sync::atomic::{AtomicU64, Ordering};
    const AFTER: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let ks = db.keyspace("doomed").unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (db, ks, progress) = (Arc::clone(&db), ks.clone(), Arc::clone(&progress));
            std::thread::spawn(move || {
                let (mut landed, mut refused) = (0u64, 0u64);
                let mut i = 0u64;
                // Until the drop is seen, then some more: all refused.
                while refused < AFTER {
                    assert!(i < 10_000_000, "the keyspace was never dropped");
                    db.put(plain_key(t, i), "d").unwrap();
                    match ks.put(plain_key(t, i), "k") {
                        Ok(()) => {
                            assert_eq!(refused, 0, "write {t}/{i} landed after a refusal");
                            landed += 1;
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(lightning_db::Error::KeyspaceDropped(_)) => refused += 1,
                        Err(e) => panic!("write {t}/{i}: {e}"),
                    }
                    i += 1;
                }
                (landed, i)
            })
        })
        .collect();
    while progress.load(Ordering::Relaxed) < 2_000 {
        std::thread::yield_now();
    }
    db.drop_keyspace("doomed").unwrap();
    for (t, w) in writers.into_iter().enumerate() {
        let (landed, written) = w.join().unwrap();
        assert!(landed + AFTER <= written);
        for i in 0..written {
            assert_eq!(
                db.get(plain_key(t as u64, i)).unwrap().as_deref(),
                Some(&b"d"[..]),
                "default keyspace {t}/{i}"
            );
        }
    }
    let again = db.keyspace("doomed").unwrap();
    assert!(
        again.get(plain_key(0, 0)).unwrap().is_none(),
        "a new keyspace is empty"
    );
}
