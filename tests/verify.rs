//! `Db::verify` and `Db::verify_dir`: a clean database verifies with no
//! problem; damage in several files is reported for every file, not just
//! the first, and verification never changes the directory.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use common::snapshot_dir;

use lightning_db::inspect::SstFile;
use lightning_db::{Db, Error, Options};

fn opts() -> Options {
    let mut o = Options::default().write_buffer_size(1 << 20);
    o.compaction.disable_auto_compactions = true;
    o
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Three flushed SSTs and a WAL of several 32 KiB blocks.
fn build(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    for round in 0..3u32 {
        for i in 0..2000u32 {
            db.put(
                format!("key{:05}", i * 3 + round),
                format!("value-{round}-{i}"),
            )
            .unwrap();
        }
        db.flush().unwrap();
    }
    for i in 0..200u32 {
        db.put(format!("wal{i:04}"), vec![b'w'; 1000]).unwrap();
    }
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    db.close().unwrap();
}

fn flip(path: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    use std::io::Read;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0x40]).unwrap();
}

/// Offset of a byte inside the second data block of an SST.
fn data_block_byte(path: &Path) -> u64 {
    let layout = SstFile::open(path).unwrap().layout().unwrap();
    let h = layout.data_blocks[1].handle;
    h.offset + h.size / 2
}

fn problem_file(e: &Error) -> PathBuf {
    match e {
        Error::Corruption { file, .. } | Error::UnsupportedVersion { file, .. } => file.clone(),
        Error::Io { path, .. } => path.clone(),
        other => panic!("unexpected problem {other}"),
    }
}

#[test]
fn clean_database_verifies() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = snapshot_dir(dir.path());
    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(r.torn_tails.is_empty());
    // CURRENT, the manifest, 3 SSTs, 1 WAL.
    assert_eq!(r.files_checked, 6, "{r:?}");
    assert_eq!(r.sst_entries, 6000);
    assert_eq!(r.wal_batches, 200);
    let total: u64 = before
        .iter()
        .filter(|(n, _)| *n != "LOCK" && !n.starts_with("OPTIONS"))
        .map(|(_, b)| b.len() as u64)
        .sum();
    assert_eq!(r.bytes_checked, total);
    assert_eq!(
        snapshot_dir(dir.path()),
        before,
        "verify_dir changed the directory"
    );

    // A read-only handle has no live WAL: it checks every WAL whole.
    let ro = Db::open_read_only(dir.path(), opts()).unwrap();
    let r = ro.verify().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!((r.sst_entries, r.wal_batches), (6000, 200), "{r:?}");
    drop(ro);

    let db = Db::open(dir.path(), opts()).unwrap();
    let r = db.verify().unwrap();
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.sst_entries, 6200, "the reopen flushed the WAL");
}

#[test]
fn damage_in_several_files_is_reported_for_each() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let ssts = files(dir.path(), ".sst");
    let wals = files(dir.path(), ".log");
    assert_eq!(ssts.len(), 3);
    assert_eq!(wals.len(), 1);
    let wal_len = std::fs::metadata(&wals[0]).unwrap().len();
    assert!(wal_len > 3 * 32 * 1024);
    for s in &ssts[..2] {
        flip(s, data_block_byte(s));
    }
    // Inside the first block of the WAL, with valid blocks after it: real
    // damage, not a torn tail.
    flip(&wals[0], 5000);
    let before = snapshot_dir(dir.path());

    let r = Db::verify_dir(dir.path()).unwrap();
    assert!(r.problems.len() >= 3, "{:?}", r.problems);
    let named: Vec<PathBuf> = r.problems.iter().map(problem_file).collect();
    for f in ssts[..2].iter().chain(&wals) {
        assert!(
            named.contains(f),
            "no problem names {}: {:?}",
            f.display(),
            r.problems
        );
    }
    assert!(!named.contains(&ssts[2]), "the intact SST was reported");
    for p in &r.problems {
        assert!(p.is_corruption(), "{p}");
    }
    assert_eq!(r.files_checked, 6);
    assert_eq!(
        snapshot_dir(dir.path()),
        before,
        "verify_dir changed the directory"
    );
}

#[test]
fn verify_finds_damage_under_an_open_database() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let db = Db::open(dir.path(), opts()).unwrap();
    assert!(db.verify().unwrap().is_ok());
    // Damage an SST behind the open handle's back (the file is mapped).
    let sst = files(dir.path(), ".sst")[0].clone();
    flip(&sst, data_block_byte(&sst));
    let r = db.verify().unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(problem_file(&r.problems[0]), sst);
    // Writes and verification can run together.
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..2000u32 {
                db.put(format!("live{i}"), b"v").unwrap();
            }
        });
        for _ in 0..5 {
            let r = db.verify().unwrap();
            assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        }
    });
}

#[test]
fn damaged_manifest_falls_back_to_every_file() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let manifest = files(dir.path(), "")
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .unwrap();
    flip(&manifest, 30);
    let r = Db::verify_dir(dir.path()).unwrap();
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(problem_file(&r.problems[0]), manifest);
    // Still checked every SST and the WAL.
    assert_eq!(r.sst_entries, 6000);
    assert_eq!(r.wal_batches, 200);
    assert!(matches!(
        Db::verify_dir(dir.path().join("nope")),
        Err(Error::Io { .. })
    ));
}
