//! Inspecting a database that is open and being written: `Db::verify`,
//! `Db::verify_dir` and `inspect::read_wal` while a writer rotates WALs
//! and flushes small memtables.
//!
//! Why it matters (issue 16, defect 1): `verify()` mapped the live WAL with
//! its preallocated tail and decoded it after releasing the WAL lock; a
//! memtable switch trimmed the file under the mapping and the process died
//! of `SIGBUS`, and a half-written record could be reported as corruption.
//! An operator's check of a running database must never kill it, and must
//! not report damage that is only a write in progress.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_db::{inspect, Db, Options};

fn opts() -> Options {
    Options::default().write_buffer_size(64 * 1024)
}

/// Runs `check` over and over for `secs` seconds while another thread
/// writes values of a few KiB.
fn while_writing(db: &Arc<Db>, secs: u64, mut check: impl FnMut(u32)) {
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = vec![(i % 251) as u8; 3000 + (i % 2000) as usize];
                db.put(format!("key{:08}", i % 5000), v).unwrap();
                i += 1;
            }
            i
        })
    };
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        check(round);
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 1000, "the writer made progress ({writes} writes)");
    assert!(round > 3, "checked {round} times");
}

#[test]
fn verify_on_a_database_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
    while_writing(&db, 4, |round| {
        let r = db.verify().unwrap();
        assert!(r.is_ok(), "round {round}: {:?}", r.problems);
    });
}

#[test]
fn verify_dir_and_read_wal_on_a_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts()).unwrap());
    let path = dir.path().to_path_buf();
    while_writing(&db, 4, |round| {
        let r = Db::verify_dir(&path).unwrap();
        assert!(r.is_ok(), "round {round}: {:?}", r.problems);
        assert!(r.live, "the report says the database was open");
        for e in std::fs::read_dir(&path).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                match inspect::read_wal(&p) {
                    Ok(w) => assert!(w.live, "{}: the WAL is reported live", p.display()),
                    // Deleted by a flush since the listing.
                    Err(lightning_db::Error::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
        }
    });
}
