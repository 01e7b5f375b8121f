//! WALs are preallocated ahead of their data (a sparse zero tail, so a
//! synced append need not change the file size) and trimmed when closed.
//! A copy taken while the database is open is what a crash leaves: the
//! zero tail must read as the end of the log and lose nothing written.

mod common;

use std::path::Path;

use common::{copy_db, files_with_suffix};
use lightning_db::{Db, Options, WriteOptions};

fn wal_sizes(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = files_with_suffix(dir, ".log")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    v.sort();
    v
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i:06}-").repeat(40).into_bytes()
}

#[test]
fn a_crash_copy_with_a_zero_tail_recovers_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let opts = || {
        Options::default()
            // Large enough that everything stays in one WAL.
            .write_buffer_size(64 << 20)
    };
    let db = Db::open(dir.path(), opts()).unwrap();
    let sync = WriteOptions::default().sync(true);
    // About 12 MiB of WAL: the preallocation is extended twice.
    for i in 0..20_000u32 {
        let mut b = lightning_db::WriteBatch::new();
        b.put(format!("k{i:06}"), value(i));
        db.write_opt(b, &WriteOptions::default().sync(i % 1000 == 0))
            .unwrap();
    }
    let mut b = lightning_db::WriteBatch::new();
    b.put("last", "synced");
    db.write_opt(b, &sync).unwrap();
    let sizes = wal_sizes(dir.path());
    assert_eq!(sizes.len(), 1);
    assert_eq!(
        sizes[0] % (4 << 20),
        0,
        "the live WAL is preallocated: {sizes:?}"
    );
    copy_db(dir.path(), copy.path());

    // The copy: a WAL whose tail is zeros, as after a crash.
    let crashed = Db::open(copy.path(), opts()).unwrap();
    for i in 0..20_000u32 {
        assert_eq!(
            crashed.get(format!("k{i:06}")).unwrap().as_deref(),
            Some(value(i).as_slice()),
            "key {i}"
        );
    }
    assert_eq!(
        crashed.get("last").unwrap().as_deref(),
        Some(&b"synced"[..])
    );
    drop(crashed);

    // A clean close trims the tail: the WAL ends at its last record.
    db.close().unwrap();
    let sizes = wal_sizes(dir.path());
    assert!(
        sizes.iter().all(|&s| s % (4 << 20) != 0),
        "closed WALs are trimmed: {sizes:?}"
    );
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(
        db.get("k019999").unwrap().as_deref(),
        Some(value(19_999).as_slice())
    );
}

#[test]
fn a_rotated_wal_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put("a", "1").unwrap();
    // The flush rotates the WAL: the old one is trimmed and synced before
    // the new one is created (and deleted once the flush is recorded).
    db.flush().unwrap();
    db.put("b", "2").unwrap();
    let sizes = wal_sizes(dir.path());
    assert!(!sizes.is_empty());
    assert_eq!(
        sizes.iter().filter(|&&s| s % (4 << 20) == 0).count(),
        1,
        "only the live WAL keeps a preallocated tail: {sizes:?}"
    );
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(db.get("b").unwrap().as_deref(), Some(&b"2"[..]));
}
