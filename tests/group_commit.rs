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

mod common;

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
    common::check_then_reopen(db, dir.path(), opts, check);
}

/// Wake-ups: a leader wakes only the writers it finds parked (made leader,
/// answered, or published); one still waiting actively sees the change
/// itself. A lost wake-up leaves a writer parked for ever, so this test
/// runs the writers under a deadline and fails, instead of hanging, if
/// they do not all finish. Sixteen threads on however few cores, tiny
/// unsynced writes with some synced ones, and pauses of different lengths
/// so that writers are caught both spinning and parked at every step.
#[test]
fn no_writer_waits_for_ever_when_only_parked_writers_are_woken() {
    const THREADS: u64 = 16;
    const WRITES: u64 = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let db =
        Arc::new(Db::open(dir.path(), Options::default().write_buffer_size(512 * 1024)).unwrap());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    for t in 0..THREADS {
        let db = Arc::clone(&db);
        let done_tx = done_tx.clone();
        std::thread::spawn(move || {
            for i in 0..WRITES {
                let wo = WriteOptions::default().sync(t == 0 && i % 50 == 0);
                db.put_opt(key(t, i, 0), value(t, i, 0), &wo).unwrap();
                match (t + i) % 97 {
                    0 => std::thread::sleep(std::time::Duration::from_micros(200)),
                    1..=3 => std::thread::yield_now(),
                    _ => {}
                }
            }
            done_tx.send(t).unwrap();
        });
    }
    drop(done_tx);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut finished = 0;
    while finished < THREADS {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match done_rx.recv_timeout(left) {
            Ok(_) => finished += 1,
            Err(e) => panic!(
                "{} of {THREADS} writer threads still waiting after 120 s ({e}): a lost wake-up",
                THREADS - finished
            ),
        }
    }
    for t in 0..THREADS {
        for i in (0..WRITES).step_by(7) {
            assert_eq!(
                db.get(key(t, i, 0)).unwrap().as_deref(),
                Some(value(t, i, 0).as_slice()),
                "entry {t}/{i}"
            );
        }
    }
    assert_eq!(
        db.property_u64("lightning.latest-sequence-number"),
        Some(THREADS * WRITES)
    );
}
