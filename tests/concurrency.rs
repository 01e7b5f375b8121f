//! Several writer and reader threads at once, with flushes going on.
//!
//! Why it matters: batches must be atomic and snapshots consistent while
//! the memtable is frozen and flushed under the readers' feet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lightning_db::{Db, Options, WriteBatch};

const WRITERS: u64 = 4;
const READERS: usize = 4;
const ROUNDS: u64 = 3000;
const KEYS_PER_BATCH: u64 = 5;

fn key(w: u64, j: u64) -> Vec<u8> {
    format!("w{w}/k{j}").into_bytes()
}

#[test]
fn writers_and_readers_see_atomic_batches_and_stable_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            Options::default()
                .write_buffer_size(64 * 1024)
                .max_write_buffer_number(3),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let db = Arc::clone(&db);
        handles.push(std::thread::spawn(move || {
            for round in 1..=ROUNDS {
                let mut b = WriteBatch::new();
                for j in 0..KEYS_PER_BATCH {
                    // Padding makes the memtable fill and flush often.
                    let mut v = round.to_be_bytes().to_vec();
                    v.extend_from_slice(&[b'x'; 40]);
                    b.put(key(w, j), v);
                }
                db.write(b).unwrap();
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let db = Arc::clone(&db);
        let stop = Arc::clone(&stop);
        readers.push(std::thread::spawn(move || {
            let mut last_seen = vec![0u64; WRITERS as usize];
            let mut checks = 0u64;
            // At least one check even when the writers finish before this
            // thread first runs (a loaded machine).
            loop {
                let done = stop.load(Ordering::Relaxed);
                let snap = db.snapshot();
                for w in 0..WRITERS {
                    // Every key of one batch holds the same round.
                    let rounds: Vec<u64> = (0..KEYS_PER_BATCH)
                        .map(|j| {
                            snap.get(key(w, j))
                                .unwrap()
                                .map_or(0, |v| u64::from_be_bytes(v[..8].try_into().unwrap()))
                        })
                        .collect();
                    assert!(
                        rounds.iter().all(|&r| r == rounds[0]),
                        "torn batch seen: {rounds:?}"
                    );
                    assert!(rounds[0] >= last_seen[w as usize], "time went backwards");
                    last_seen[w as usize] = rounds[0];
                    // A scan of the same snapshot agrees with the gets.
                    let prefix = format!("w{w}/");
                    let scanned: Vec<u64> = snap
                        .prefix(prefix.as_bytes())
                        .map(|r| u64::from_be_bytes(r.unwrap().1[..8].try_into().unwrap()))
                        .collect();
                    if rounds[0] == 0 {
                        assert!(scanned.is_empty());
                    } else {
                        assert_eq!(scanned, vec![rounds[0]; KEYS_PER_BATCH as usize]);
                    }
                    let rev: Vec<u64> = snap
                        .prefix(prefix.as_bytes())
                        .rev()
                        .map(|r| u64::from_be_bytes(r.unwrap().1[..8].try_into().unwrap()))
                        .collect();
                    assert_eq!(rev.len(), scanned.len());
                }
                checks += 1;
                if done {
                    break;
                }
            }
            checks
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    for w in 0..WRITERS {
        for j in 0..KEYS_PER_BATCH {
            let v = db.get(key(w, j)).unwrap().unwrap();
            assert_eq!(u64::from_be_bytes(v[..8].try_into().unwrap()), ROUNDS);
        }
    }
    let db = Arc::into_inner(db).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.iter().count() as u64, WRITERS * KEYS_PER_BATCH);
}
