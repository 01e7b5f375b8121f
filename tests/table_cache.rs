//! The table cache (`max_open_files`): a database with many more SST files
//! than may be open at once reads correctly while files are closed and
//! opened again, also from several threads during compaction.
//!
//! Why it matters (issue 16, defect 8): every table was open (mapped) for
//! its whole life, so `vm.max_map_count` (65,530 maps) capped a database
//! with small files, and filters and index pages of every file stayed in
//! memory. Now at most `max_open_files` are open, and never more than the
//! system allows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use lightning_db::{Db, Options};

fn key(i: u32) -> String {
    format!("key{i:07}")
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("v{round}-{i}-").repeat(10).into_bytes()
}

fn opts(max_open_files: i64, mmap: bool) -> Options {
    let mut o = Options::default()
        .write_buffer_size(64 * 1024)
        .max_open_files(max_open_files)
        .allow_mmap_reads(mmap);
    o.compaction.target_file_size_base = 64 * 1024;
    o.compaction.max_bytes_for_level_base = 256 * 1024;
    o
}

fn prop(db: &Db, name: &str) -> u64 {
    db.property_u64(name).unwrap()
}

fn files(db: &Db) -> u64 {
    (0..7)
        .map(|l| prop(db, &format!("lightning.num-files-at-level{l}")))
        .sum()
}

/// Maps of files in `dir` (Linux: lines of /proc/self/maps).
fn maps_in(dir: &std::path::Path) -> Option<usize> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let d = dir.to_string_lossy();
    Some(maps.lines().filter(|l| l.contains(d.as_ref())).count())
}

#[test]
fn many_more_files_than_may_be_open() {
    for mmap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts(16, mmap)).unwrap();
        assert_eq!(prop(&db, "lightning.max-open-tables"), 16);
        let mut model = BTreeMap::new();
        let n = 40_000;
        for i in 0..n {
            db.put(key(i), value(i, 0)).unwrap();
            model.insert(key(i).into_bytes(), value(i, 0));
        }
        db.flush().unwrap();
        db.wait_for_compactions().unwrap();
        let total = files(&db);
        assert!(total > 40, "mmap {mmap}: {total} files");
        for round in 0..2 {
            for i in (0..n).step_by(97) {
                let got = db.get(key(i)).unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(&value(i, 0)[..]),
                    "mmap {mmap}: key {i}"
                );
                assert!(
                    prop(&db, "lightning.num-open-tables") <= 16,
                    "round {round}"
                );
            }
        }
        if let (true, Some(maps)) = (mmap, maps_in(dir.path())) {
            // The open tables' maps, plus the WAL's window.
            assert!(maps <= 16 + 2, "{maps} maps of the database's files");
        }
        let all: BTreeMap<Vec<u8>, Vec<u8>> = db
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        assert_eq!(all, model);
        let back = db.iter().rev().count();
        assert_eq!(back, model.len());
        assert!(prop(&db, "lightning.num-open-tables") <= 16);
        assert!(db.verify().unwrap().is_ok());
        db.close().unwrap();
        let db = Db::open(dir.path(), opts(16, mmap)).unwrap();
        assert!(prop(&db, "lightning.num-open-tables") <= 16);
        assert_eq!(
            db.get(key(n - 1)).unwrap().as_deref(),
            Some(&value(n - 1, 0)[..])
        );
    }
}

#[test]
fn readers_and_compaction_with_a_small_table_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), opts(16, true)).unwrap());
    let n = 20_000;
    for i in 0..n {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = t * 7919;
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 7919) % n;
                    let v = db.get(key(i)).unwrap().expect("every key is present");
                    // Rewritten concurrently: either round's value.
                    assert!(v.starts_with(b"v0-") || v.starts_with(b"v1-"), "key {i}");
                    reads += 1;
                    if reads.is_multiple_of(500) {
                        let c = db.range(key(i)..key(i + 50)).count();
                        assert!(c > 0);
                    }
                }
                reads
            })
        })
        .collect();
    // Rewrite everything: flushes and compactions replace the files the
    // readers open and close.
    for i in 0..n {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    db.wait_for_compactions().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 100);
    }
    assert!(prop(&db, "lightning.num-open-tables") <= 16);
    for i in (0..n).step_by(13) {
        assert_eq!(db.get(key(i)).unwrap().as_deref(), Some(&value(i, 1)[..]));
    }
}

#[test]
fn the_system_bounds_max_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts(-1, true)).unwrap();
    let max = prop(&db, "lightning.max-open-tables");
    if let Ok(s) = std::fs::read_to_string("/proc/sys/vm/max_map_count") {
        let maps: u64 = s.trim().parse().unwrap();
        assert!(
            max <= maps / 2,
            "{max} tables open at most, {maps} maps allowed"
        );
    }
    assert!(max >= 64);
    let o = Options::default().max_open_files(5);
    assert!(o.validate().is_err());
}
