//! Issue 16, defect 6: writes racing `close`.
//!
//! Why it matters: `close` promises that the WAL it syncs holds every
//! acknowledged write. A write group that took the WAL after `close` had
//! synced it was still acknowledged, and its record reached the file after
//! `close` returned (another process may already have opened the directory
//! by then). Here `shutdown`, the body of both `close` and `drop`, runs on
//! one thread while others write with `put`, with batches and with
//! transaction commits through the same `&Db` (outside this crate `close`
//! takes the `Db` by value, so only transactions can race it there: see
//! `tests/close_during_writes.rs`).
//!
//! Checked, on a real directory: a write begun after `close` returned is
//! refused with `Error::Closed`; no file changes after `close` returned;
//! the files as `close` left them hold every acknowledged write.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::Db;
use crate::batch::WriteBatch;
use crate::error::Error;
use crate::options::Options;
use crate::txn::TransactionOptions;

fn key(t: usize, i: u64) -> String {
    format!("t{t}/{i:06}")
}

fn val(t: usize, i: u64) -> Vec<u8> {
    let mut v = format!("value {t}/{i};").into_bytes();
    v.resize(100, b'a' + (i % 26) as u8);
    v
}

/// Every file of `dir`: name → content.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Writer `t`'s `i`-th write: a put, a batch or a transaction by `t % 3`.
fn write(db: &Db, t: usize, i: u64) -> crate::Result<()> {
    match t % 3 {
        0 => db.put(key(t, i), val(t, i)),
        1 => {
            let mut b = WriteBatch::new();
            b.put(key(t, i), val(t, i));
            b.delete(format!("gone/{t}/{i}"));
            db.write(b)
        }
        _ => {
            // Its commit validates the whole `pre/` range: it stays in its
            // write group for a while (as a commit after a long scan does).
            let mut tx = db.transaction_opt(&TransactionOptions::serializable());
            drop(tx.prefix("pre/"));
            tx.put(key(t, i), val(t, i));
            tx.commit()
        }
    }
}

/// Keys that serializable commits validate (see [`write`]).
fn prepopulate(db: &Db) {
    let mut b = WriteBatch::new();
    for i in 0..PRE_KEYS {
        b.put(format!("pre/{i:06}"), "v");
    }
    db.write(b).unwrap();
}

const PRE_KEYS: u64 = 30_000;

#[test]
fn writes_racing_close_are_in_the_synced_wal_or_refused() {
    const THREADS: usize = 6;
    const ROUNDS: u64 = 20;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            write_buffer_size: 16 << 20,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        prepopulate(&db);
        let closed = AtomicBool::new(false);
        let at_close = Mutex::new(BTreeMap::new());
        let acked: Vec<Vec<u64>> = std::thread::scope(|s| {
            let writers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (db, closed) = (&db, &closed);
                    s.spawn(move || {
                        let mut acked = Vec::new();
                        for i in 0.. {
                            let begun_after_close = closed.load(Ordering::SeqCst);
                            match write(db, t, i) {
                                Ok(()) => {
                                    assert!(
                                        !begun_after_close,
                                        "round {round}: write {t}/{i} begun after close returned got Ok"
                                    );
                                    acked.push(i);
                                }
                                Err(Error::Closed) => break,
                                Err(e) => panic!("round {round}: write {t}/{i}: {e}"),
                            }
                        }
                        while !closed.load(Ordering::SeqCst) {
                            std::thread::yield_now();
                        }
                        let late = write(db, t, u64::MAX);
                        assert!(matches!(late, Err(Error::Closed)), "{late:?}");
                        acked
                    })
                })
                .collect();
            s.spawn(|| {
                std::thread::sleep(Duration::from_micros(200 + round * 997 % 3000));
                db.shutdown().unwrap();
                *at_close.lock() = files(dir.path());
                closed.store(true, Ordering::SeqCst);
            });
            writers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let at_close = at_close.into_inner();
        assert!(
            files(dir.path()) == at_close,
            "round {round}: files changed after close returned"
        );
        drop(db);
        // The files as close left them hold every acknowledged write.
        let copy = tempfile::tempdir().unwrap();
        for (name, data) in at_close.iter().filter(|(n, _)| *n != "LOCK") {
            std::fs::write(copy.path().join(name), data).unwrap();
        }
        let db = Db::open(copy.path(), Options::default()).unwrap();
        for (t, writes) in acked.iter().enumerate() {
            for &i in writes {
                assert_eq!(
                    db.get(key(t, i)).unwrap().as_deref(),
                    Some(&val(t, i)[..]),
                    "round {round}: acknowledged write {t}/{i} is not in the files close left"
                );
            }
        }
    }
}
