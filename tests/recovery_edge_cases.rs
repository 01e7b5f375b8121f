//! Recovery edge cases: many reopens with writes in between, empty WALs,
//! leftovers of a crash in the directory (`CURRENT.tmp`, orphan SSTs, a
//! stale WAL below the manifest's log number, a zero-length WAL), a WAL
//! truncated at (nearly) every length, and options changed between opens.
//!
//! Recovery is the code that runs least often and matters most: a bug here
//! turns a crash into lost or resurrected data, or a database that no
//! longer opens.

mod common;

use common::{copy_db, dump, fast_opts, files_with_suffix, Model, Rng};
use lightning_db::{inspect, Compression, Db, WriteBatch};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

#[test]
fn reopen_many_times_with_writes_in_between() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut rng = Rng(7);
    for round in 0..40u64 {
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        assert_eq!(dump(&db).unwrap(), model, "round {round}: after reopen");
        let n = rng.below(300);
        for _ in 0..n {
            let k = key(rng.below(500));
            if rng.below(4) == 0 {
                db.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = vec![round as u8; rng.below(400) as usize];
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        if round % 3 == 0 {
            db.flush().unwrap();
        }
        if round % 5 == 0 {
            // Also test drop without close.
            drop(db);
        } else {
            db.close().unwrap();
        }
    }
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_deref(), Some(v.as_slice()));
    }
}

#[test]
fn reopen_with_empty_wal_many_times() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
    }
    for _ in 0..20 {
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        db.close().unwrap();
    }
    // Files do not pile up: one manifest, one WAL, one table.
    assert_eq!(files_with_suffix(dir.path(), ".log").len(), 1);
    assert_eq!(files_with_suffix(dir.path(), ".sst").len(), 1);
    let manifests = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("MANIFEST-")
        })
        .count();
    assert_eq!(manifests, 1);
}

/// Builds a closed database with flushed tables and unflushed WAL data.
fn build_db(dir: &std::path::Path) -> Model {
    let mut model = Model::new();
    let db = Db::open(dir, fast_opts()).unwrap();
    for i in 0..200 {
        db.put(key(i), format!("v{i}")).unwrap();
        model.insert(key(i), format!("v{i}").into_bytes());
    }
    db.flush().unwrap();
    for i in 100..150 {
        db.put(key(i), format!("w{i}")).unwrap();
        model.insert(key(i), format!("w{i}").into_bytes());
    }
    db.close().unwrap();
    model
}

#[test]
fn leftover_current_tmp_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let model = build_db(dir.path());
    std::fs::write(dir.path().join("CURRENT.tmp"), b"garbage from a crash").unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
    assert!(!dir.path().join("CURRENT.tmp").exists());
}

/// Regression (issue 16, defect 8): only the temporary names this engine
/// writes (`CURRENT.tmp`, `OPTIONS-NNNNNN.tmp`) are its own. Any other
/// `*.tmp` used to be deleted at open, and a directory of such a name
/// failed every open.
#[test]
fn foreign_tmp_files_and_directories_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = build_db(dir.path());
    std::fs::write(dir.path().join("notes.tmp"), b"the user's file").unwrap();
    std::fs::create_dir(dir.path().join("scratch.tmp")).unwrap();
    std::fs::write(dir.path().join("OPTIONS-000099.tmp"), b"half written").unwrap();
    for _ in 0..2 {
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        assert_eq!(dump(&db).unwrap(), model);
        db.close().unwrap();
    }
    assert!(dir.path().join("notes.tmp").is_file());
    assert!(dir.path().join("scratch.tmp").is_dir());
    assert!(!dir.path().join("OPTIONS-000099.tmp").exists());
}

/// Regression (issue 16, defect 8): an open that refuses a directory
/// (`create_if_missing = false`, or foreign files) used to leave a `LOCK`
/// file behind in it.
#[test]
fn refused_open_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = fast_opts().create_if_missing(false);
    assert!(matches!(
        Db::open(dir.path(), o),
        Err(lightning_db::Error::NotADatabase { .. })
    ));
    std::fs::write(dir.path().join("photo.jpg"), b"not a database").unwrap();
    assert!(matches!(
        Db::open(dir.path(), fast_opts()),
        Err(lightning_db::Error::NotADatabase { .. })
    ));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["photo.jpg"]);
}

/// Regression (issue 16, defect 8): the manifest was only ever rewritten at
/// open, so a database open for a long time grew it without bound, and the
/// next open replayed all of it. Past `max_manifest_file_size` the next
/// edit starts a new manifest with a snapshot; the old one is deleted.
#[test]
fn manifest_is_rewritten_past_max_manifest_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || fast_opts().max_manifest_file_size(2048);
    let manifests = |p: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("MANIFEST-"))
            .collect();
        v.sort();
        v
    };
    let db = Db::open(dir.path(), opts()).unwrap();
    let first = manifests(dir.path());
    let mut model = std::collections::BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..60u64 {
        for i in 0..20u64 {
            let k = key(round * 7 + i);
            let v = format!("r{round}.{i}").into_bytes();
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
        db.flush().unwrap();
        // A compaction in the background may be between writing a new
        // manifest and deleting the old one: look once it is done.
        db.wait_for_compactions().unwrap();
        let m = manifests(dir.path());
        assert_eq!(m.len(), 1, "round {round}: one manifest at a time: {m:?}");
        let len = std::fs::metadata(dir.path().join(&m[0])).unwrap().len();
        assert!(
            len < 2048 + 4096,
            "round {round}: the manifest is {len} bytes"
        );
        seen.insert(m[0].clone());
    }
    assert!(
        seen.len() >= 3,
        "the manifest was rewritten: {seen:?} (first {first:?})"
    );
    assert_eq!(dump(&db).unwrap(), model);
    assert!(db.verify().unwrap().is_ok());
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
}

#[test]
fn orphan_sst_not_in_manifest_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let model = build_db(dir.path());
    // An orphan with a high number, holding a valid table with other data
    // (copied from another database), and one holding garbage.
    let other = tempfile::tempdir().unwrap();
    {
        let db = Db::open(other.path(), fast_opts()).unwrap();
        db.put(b"zombie", b"should never appear").unwrap();
        db.put(key(5), b"zombie value").unwrap();
        db.flush().unwrap();
    }
    let src = files_with_suffix(other.path(), ".sst").pop().unwrap();
    std::fs::copy(&src, dir.path().join("000900.sst")).unwrap();
    std::fs::write(dir.path().join("000901.sst"), b"not a table").unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
    assert_eq!(db.get(b"zombie").unwrap(), None);
    // New files must not collide with the orphans' numbers.
    for i in 0..2000 {
        db.put(key(i % 300), vec![1u8; 100]).unwrap();
    }
    db.flush().unwrap();
    drop(db);
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(db.get(b"zombie").unwrap(), None);
}

#[test]
fn stale_wal_below_log_number_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    // A WAL that holds an old value of key 5 and a key deleted later.
    let stale = tempfile::tempdir().unwrap();
    {
        let db = Db::open(stale.path(), fast_opts()).unwrap();
        db.put(key(5), b"stale").unwrap();
        db.put(b"resurrected", b"stale").unwrap();
    }
    let stale_wal = files_with_suffix(stale.path(), ".log").pop().unwrap();
    let model = build_db(dir.path());
    // Give it number 1: below every log number of `dir`'s manifest.
    let wal_bytes = std::fs::read(&stale_wal).unwrap();
    let n = inspect::read_wal(&stale_wal).unwrap().file_number;
    let target = dir.path().join(format!("{n:06}.log"));
    assert!(!target.exists());
    std::fs::write(&target, wal_bytes).unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
    assert!(!target.exists(), "the stale WAL is deleted");
}

#[test]
fn zero_length_newest_wal_opens() {
    let dir = tempfile::tempdir().unwrap();
    let model = build_db(dir.path());
    // A WAL created but never written by a crash right after a rotation.
    std::fs::write(dir.path().join("000950.log"), b"").unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(dump(&db).unwrap(), model);
    db.put(b"after", b"x").unwrap();
    drop(db);
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(db.get(key(120)).unwrap().as_deref(), Some(&b"w120"[..]));
}

/// Truncates the newest WAL at many lengths: every open must succeed with
/// the state after some prefix of the batches, growing with the length.
#[test]
fn wal_truncated_at_every_length() {
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("db");
    let mut states: Vec<Model> = vec![Model::new()];
    let mut rng = Rng(99);
    {
        let big = fast_opts().write_buffer_size(16 << 20);
        let db = Db::open(&src, big).unwrap();
        let mut model = Model::new();
        for b in 0..60u64 {
            let mut batch = WriteBatch::new();
            let ops = 1 + rng.below(6);
            for _ in 0..ops {
                let k = key(rng.below(40));
                if rng.below(5) == 0 {
                    batch.delete(&k);
                    model.remove(&k);
                } else {
                    // Some values are big enough to span WAL blocks.
                    let len = if rng.below(10) == 0 {
                        20_000
                    } else {
                        rng.below(200) as usize
                    };
                    let v = vec![b as u8; len];
                    batch.put(&k, &v);
                    model.insert(k, v);
                }
            }
            db.write(batch).unwrap();
            states.push(model.clone());
        }
        db.close().unwrap();
    }
    let wal = files_with_suffix(&src, ".log").pop().unwrap();
    let contents = inspect::read_wal(&wal).unwrap();
    assert_eq!(contents.batches.len(), 60, "all batches in one WAL");
    let full = std::fs::read(&wal).unwrap();
    let mut lengths: Vec<usize> = (0..64).collect();
    lengths.extend((0..full.len()).step_by(97));
    for b in &contents.batches {
        let o = b.offset as usize;
        lengths.extend([o.saturating_sub(1), o, o + 1, o + 7, o + 8]);
    }
    for blk in (0..full.len()).step_by(32 * 1024) {
        lengths.extend([blk.saturating_sub(1), blk, blk + 1]);
    }
    lengths.push(full.len());
    lengths.sort_unstable();
    lengths.dedup();
    lengths.retain(|&l| l <= full.len());
    for (i, &len) in lengths.iter().enumerate() {
        let d = base.path().join(format!("t{i}"));
        copy_db(&src, &d);
        let w = d.join(wal.file_name().unwrap());
        std::fs::write(&w, &full[..len]).unwrap();
        let db = Db::open(&d, fast_opts())
            .unwrap_or_else(|e| panic!("truncation at {len} of {}: {e}", full.len()));
        let got = dump(&db).unwrap();
        // Batches whose record ended before `len` must be there.
        let complete = contents
            .batches
            .iter()
            .skip(1)
            .filter(|b| (b.offset as usize) <= len)
            .count();
        let started = contents
            .batches
            .iter()
            .filter(|b| (b.offset as usize) < len)
            .count();
        assert!(
            (complete..=started).any(|p| states[p] == got),
            "truncation at {len}: state is no prefix of the batches with {complete}..={started} batches"
        );
        if len == full.len() {
            assert_eq!(got, states[60]);
        }
        drop(db);
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn options_changed_between_opens() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut rng = Rng(3);
    let variants = [
        (4096usize, 10u32, Compression::None, 64 * 1024usize),
        (512, 0, Compression::Zstd { level: 3 }, 128 * 1024),
        (16384, 20, Compression::None, 64 * 1024),
        (1024, 1, Compression::Zstd { level: 1 }, 1 << 20),
        (256, 10, Compression::None, 64 * 1024),
    ];
    for round in 0..3 {
        for (i, (block, bloom, comp, wbs)) in variants.iter().enumerate() {
            let opts = fast_opts()
                .block_size(*block)
                .bloom_bits_per_key(*bloom)
                .compression(*comp)
                .write_buffer_size(*wbs);
            let db = Db::open(dir.path(), opts).unwrap();
            assert_eq!(dump(&db).unwrap(), model, "round {round} variant {i}");
            for _ in 0..600 {
                let k = key(rng.below(1000));
                if rng.below(6) == 0 {
                    db.delete(&k).unwrap();
                    model.remove(&k);
                } else {
                    let v = vec![b'a' + (rng.below(26) as u8); rng.below(300) as usize];
                    db.put(&k, &v).unwrap();
                    model.insert(k, v);
                }
            }
            if i % 2 == 0 {
                db.flush().unwrap();
            }
            for k in 0..1000 {
                let k = key(k);
                assert_eq!(
                    db.get(&k).unwrap().as_deref(),
                    model.get(&k).map(|v| v.as_slice())
                );
            }
        }
    }
}
