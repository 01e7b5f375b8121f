//! Group commit under contention: many threads, batches of different
//! sizes, synced and unsynced writes mixed, so leaders build groups of
//! several writers while others queue and each thread reuses its writer
//! and batch buffers from one write to the next.
//!
//! Why it matters: a leader reads, numbers, logs and inserts other
//! threads' batches while those threads are parked. A batch handed over
//! too early or too late (reused by its thread while still being written,
//! written twice, skipped) shows here as a missing, wrong or extra entry,
//! or as a sequence number count that does not match the writes.

use std::sync::Arc;

use lightning_db::{Db, Options, WriteBatch, WriteOptions};

const THREADS: u64 = 8;
const WRITES: u64 = 600;

fn key(t: u64, i: u64, j: u64) -> Vec<u8> {
    format!("t{t:02}/w{i:05}/k{j}").into_bytes()
}

/// Distinct per entry, with a length that varies (up to a few KiB), so a
/// mixed-up batch cannot go unnoticed.
fn value(t: u64, i: u64, j: u64) -> Vec<u8> {
    let mut v = format!("value of {t}/{i}/{j};").into_bytes();
    let len = ((t * 131 + i * 17 + j * 7) % 3000) as usize;
    v.resize(v.len() + len, b'a' + (i % 26) as u8);
    v
}

/// Entries in write `i` of thread `t`: 1 to 4.
fn batch_len(t: u64, i: u64) -> u64 {
    1 + (t + i) % 4
}

#[test]
fn every_batch_of_every_thread_is_written_once_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        // Small memtables: groups also cross memtable switches and flushes.
        .write_buffer_size(256 * 1024);
    let db = Arc::new(Db::open(dir.path(), opts.clone()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    // Every fifth write of the even threads is synced: those
                    // gather company; the rest ride along in their groups.
                    let sync = t % 2 == 0 && i % 5 == 0;
                    let wo = WriteOptions::default().sync(sync);
                    let n = batch_len(t, i);
                    if n == 1 {
                        // Db::put reuses the thread's spare batch buffer.
                        db.put_opt(key(t, i, 0), value(t, i, 0), &wo).unwrap();
                    } else {
                        let mut b = WriteBatch::new();
                        for j in 0..n {
                            b.put(key(t, i, j), value(t, i, j));
                        }
                        db.write_opt(b, &wo).unwrap();
                    }
                    // Acknowledged means visible, to the writer at least.
                    let last = batch_len(t, i) - 1;
                    assert_eq!(
                        db.get(key(t, i, last)).unwrap().as_deref(),
                        Some(value(t, i, last).as_slice()),
                        "own write {t}/{i} not visible after it returned"
                    );
                }
            })
        })
        .collect();
    for h in threads {
        h.join().unwrap();
    }

    let expected: u64 = (0..THREADS)
        .flat_map(|t| (0..WRITES).map(move |i| batch_len(t, i)))
        .sum();
    let check = |db: &Db| {
        assert_eq!(
            db.property_u64("lightning.latest-sequence-number"),
            Some(expected),
            "one sequence number per entry written"
        );
        let mut count = 0u64;
        for t in 0..THREADS {
            for i in 0..WRITES {
                for j in 0..batch_len(t, i) {
                    let got = db.get(key(t, i, j)).unwrap();
                    assert_eq!(
                        got.as_deref(),
                        Some(value(t, i, j).as_slice()),
                        "entry {t}/{i}/{j}"
                    );
                    count += 1;
                }
            }
        }
        assert_eq!(db.iter().count() as u64, count, "no extra entries");
    };
    check(&db);

    // The WAL and the flushed tables hold the same: reopen and check again.
    let db = Arc::into_inner(db).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    check(&db);
}
