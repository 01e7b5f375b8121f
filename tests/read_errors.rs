//! No process death from storage: with `allow_mmap_reads = false` every SST
//! block is read with `pread`, so a device read error or a table file
//! shortened by someone else is an error of that one read, and the
//! database goes on serving the rest.
//!
//! Why it matters (issue 16): through a memory map, the same events are a
//! `SIGBUS` that kills the application embedding the engine. Reads of the
//! mapped default cannot be tested in-process that way (the test would
//! die); these tests pin down the mode that must survive.

mod common;

use std::io::ErrorKind;
use std::sync::Arc;

use lightning_db::testing::{FaultFs, FaultRule, OpKind};
use lightning_db::{Db, Error, Options};

fn key(i: u32) -> String {
    format!("key{i:06}")
}

fn fill(db: &Db, n: u32) {
    for i in 0..n {
        db.put(key(i), format!("value-{i}-").repeat(8)).unwrap();
    }
    db.flush().unwrap();
}

fn pread_opts() -> Options {
    Options::default()
        .allow_mmap_reads(false)
        // Every read goes to the file.
        .block_cache_size(0)
}

#[test]
fn a_failed_block_read_is_an_error_of_that_read_only() {
    let fs = Arc::new(FaultFs::new());
    let db = Db::open("/db", pread_opts().fs(fs.clone())).unwrap();
    fill(&db, 2000);
    let reads_before = fs.stats().ops(OpKind::Read);
    assert_eq!(db.get(key(7)).unwrap().map(|v| v.len()), Some(64));
    assert!(
        fs.stats().ops(OpKind::Read) > reads_before,
        "a get reads the file (nothing is mapped or cached)"
    );
    for error in [ErrorKind::Other, ErrorKind::InvalidData] {
        fs.inject(FaultRule::new(OpKind::Read, 0, error).on(".sst"));
        match db.get(key(1234)) {
            Err(Error::Io { source, path }) => {
                assert_eq!(source.kind(), error);
                assert!(
                    path.to_string_lossy().ends_with(".sst"),
                    "{}",
                    path.display()
                );
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
        // The next read, and writes, work.
        assert!(db.get(key(1234)).unwrap().is_some());
        db.put("after", "error").unwrap();
        // An iterator meeting the error reports it, then can be replaced.
        fs.inject(FaultRule::new(OpKind::Read, 0, error).on(".sst"));
        let items: Vec<_> = db.iter().collect();
        assert!(
            items.iter().any(|r| r.is_err()),
            "the scan reports the error"
        );
        assert_eq!(db.iter().count(), 2001);
    }
    db.close().unwrap();
}

#[test]
fn a_shortened_table_file_is_an_error_not_a_signal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), pread_opts()).unwrap();
    fill(&db, 5000);
    let ssts = common::files_with_suffix(dir.path(), ".sst");
    assert_eq!(ssts.len(), 1);
    // Someone else cuts the live file in half.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&ssts[0])
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    drop(f);
    let mut errors = 0;
    for i in (0..5000).step_by(7) {
        match db.get(key(i)) {
            Ok(v) => assert!(v.is_some(), "key {i}: a value or an error, never absent"),
            Err(e) => {
                assert!(
                    matches!(e, Error::Corruption { .. } | Error::Io { .. }),
                    "key {i}: {e}"
                );
                errors += 1;
            }
        }
    }
    assert!(errors > 0, "reads past the cut fail");
    // Scans fail with an error too, and the database still takes writes.
    assert!(db.iter().any(|r| r.is_err()));
    db.put("still", "alive").unwrap();
    assert_eq!(db.get("still").unwrap().as_deref(), Some(&b"alive"[..]));
}

#[test]
fn pread_and_mmap_reads_agree() {
    for mmap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default()
            .allow_mmap_reads(mmap)
            .write_buffer_size(64 * 1024);
        let db = Db::open(dir.path(), o.clone()).unwrap();
        fill(&db, 3000);
        for i in (0..3000).step_by(3) {
            db.delete(key(i)).unwrap();
        }
        db.compact_range::<&[u8], _>(..).unwrap();
        let fwd: Vec<_> = db.iter().map(|r| r.unwrap().0).collect();
        assert_eq!(fwd.len(), 2000, "mmap {mmap}");
        let mut back: Vec<_> = db.iter().rev().map(|r| r.unwrap().0).collect();
        back.reverse();
        assert_eq!(fwd, back);
        assert!(db.verify().unwrap().is_ok());
        drop(db);
        let db = Db::open(dir.path(), o).unwrap();
        assert_eq!(db.get(key(1)).unwrap().map(|v| v.len()), Some(64));
        assert!(db.get(key(3)).unwrap().is_none());
    }
}
