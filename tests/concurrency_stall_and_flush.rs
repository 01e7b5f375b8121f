//! Concurrency under pressure: writers mixing `sync: true` and
//! `sync: false`, `flush()` from several threads at once, reverse scans
//! running alongside, and write stalls with `max_write_buffer_number = 2`
//! and the smallest write buffer. Each test runs its threads with a
//! deadline (polled joins) so a deadlock fails instead of hanging CI.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::fast_opts;
use lightning_db::{Db, WriteBatch, WriteOptions};

fn join_all(handles: Vec<JoinHandle<()>>, limit: Duration) {
    let start = Instant::now();
    while !handles.iter().all(|h| h.is_finished()) {
        assert!(start.elapsed() < limit, "threads did not finish: deadlock?");
        std::thread::sleep(Duration::from_millis(20));
    }
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn mixed_sync_writers_flushers_and_reverse_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), fast_opts()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..4u32 {
        let db = Arc::clone(&db);
        writers.push(std::thread::spawn(move || {
            for i in 0..1500u32 {
                let mut b = WriteBatch::new();
                // Each batch writes the same counter to two keys: readers
                // must never see them differ (atomic batches).
                b.put(format!("t{t}/a"), i.to_be_bytes());
                b.put(format!("t{t}/b"), i.to_be_bytes());
                b.put(format!("t{t}/data/{i:05}"), vec![t as u8; 100]);
                db.write_opt(b, &WriteOptions::default().sync(i % 7 == 0))
                    .unwrap();
            }
        }));
    }
    let mut others = Vec::new();
    for _ in 0..2 {
        let db = Arc::clone(&db);
        let stop = Arc::clone(&stop);
        others.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                db.flush().unwrap();
            }
        }));
    }
    for _ in 0..2 {
        let db = Arc::clone(&db);
        let stop = Arc::clone(&stop);
        others.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let snap = db.snapshot();
                for t in 0..4 {
                    let a = snap.get(format!("t{t}/a")).unwrap();
                    let b = snap.get(format!("t{t}/b")).unwrap();
                    assert_eq!(a, b, "torn batch seen through a snapshot");
                }
                let mut prev: Option<lightning_db::Bytes> = None;
                for item in db.iter().rev().take(3000) {
                    let (k, _) = item.unwrap();
                    if let Some(p) = &prev {
                        assert!(k < *p, "reverse scan out of order");
                    }
                    prev = Some(k);
                }
            }
        }));
    }
    join_all(writers, Duration::from_secs(60));
    stop.store(true, Ordering::Release);
    join_all(others, Duration::from_secs(30));
    for t in 0..4 {
        assert_eq!(
            db.get(format!("t{t}/a")).unwrap().as_deref(),
            Some(&1499u32.to_be_bytes()[..])
        );
        assert_eq!(db.prefix(format!("t{t}/data/")).count(), 1500);
    }
    let db = Arc::try_unwrap(db).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    for t in 0..4 {
        assert_eq!(db.prefix(format!("t{t}/data/")).count(), 1500);
    }
}

#[test]
fn stalls_with_two_tiny_write_buffers_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let opts = fast_opts()
        .write_buffer_size(64 * 1024)
        .max_write_buffer_number(2);
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let mut hs = Vec::new();
    for t in 0..6u32 {
        let db = Arc::clone(&db);
        hs.push(std::thread::spawn(move || {
            for i in 0..400u32 {
                // Big values: nearly every write fills a memtable.
                db.put(format!("{t}-{i}"), vec![7u8; 30_000]).unwrap();
                if i % 50 == 0 {
                    db.flush().unwrap();
                }
            }
        }));
    }
    join_all(hs, Duration::from_secs(60));
    assert_eq!(db.iter().count(), 2400);
}
