//! Behaviour of the public API: reads after writes, limits, reopen,
//! locking, and refusal of foreign directories.

use lightning_db::{Db, Error, Options, WriteBatch, WriteOptions, MAX_KEY_SIZE};

fn small() -> Options {
    Options::default().write_buffer_size(256 * 1024)
}

#[test]
fn put_get_delete_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"missing").unwrap(), None);
    db.put(b"a", b"1").unwrap();
    db.put(b"b", b"2").unwrap();
    assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
    db.delete(b"a").unwrap();
    assert_eq!(db.get(b"a").unwrap(), None);
    let mut batch = WriteBatch::new();
    batch.put(b"c", b"3");
    batch.delete(b"b");
    batch.put(b"c", b"4");
    db.write_opt(batch, &WriteOptions::default().sync(true))
        .unwrap();
    assert_eq!(db.get(b"b").unwrap(), None);
    assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"4"[..]));
}

#[test]
fn empty_key_and_empty_value_are_legal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"", b"empty key").unwrap();
    db.put(b"k", b"").unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b""[..]));
    db.flush().unwrap();
    assert_eq!(db.get(b"").unwrap().as_deref(), Some(&b"empty key"[..]));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b""[..]));
    let all: Vec<_> = db.iter().map(|r| r.unwrap().0.to_vec()).collect();
    assert_eq!(all, vec![b"".to_vec(), b"k".to_vec()]);
}

#[test]
fn oversized_key_is_rejected_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let big = vec![1u8; MAX_KEY_SIZE + 1];
    let mut b = WriteBatch::new();
    b.put(b"ok", b"1");
    b.put(&big, b"2");
    match db.write(b) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("key"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(db.get(b"ok").unwrap(), None);
    db.put(vec![2u8; MAX_KEY_SIZE], b"max key").unwrap();
}

#[test]
fn large_values_survive_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let one_mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let sixteen: Vec<u8> = (0..16 << 20).map(|i| (i % 241) as u8).collect();
    let hundred_k = vec![9u8; 100 * 1024];
    {
        let db = Db::open(dir.path(), small()).unwrap();
        db.put(b"1m", &one_mib).unwrap();
        db.put(b"16m", &sixteen).unwrap();
        db.put(b"100k", &hundred_k).unwrap();
        assert_eq!(db.get(b"16m").unwrap().unwrap().as_ref(), &sixteen[..]);
        db.close().unwrap();
    }
    // Recovered from the WAL.
    let db = Db::open(dir.path(), small()).unwrap();
    assert_eq!(db.get(b"1m").unwrap().unwrap().as_ref(), &one_mib[..]);
    assert_eq!(db.get(b"16m").unwrap().unwrap().as_ref(), &sixteen[..]);
    db.flush().unwrap();
    db.close().unwrap();
    // Read from SST files.
    let db = Db::open(dir.path(), small()).unwrap();
    assert_eq!(db.get(b"1m").unwrap().unwrap().as_ref(), &one_mib[..]);
    assert_eq!(db.get(b"16m").unwrap().unwrap().as_ref(), &sixteen[..]);
    assert_eq!(db.get(b"100k").unwrap().unwrap().as_ref(), &hundred_k[..]);
}

#[test]
fn a_million_small_keys_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1_000_000u32;
    let opts = || Options::default().write_buffer_size(8 << 20);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for chunk in 0..n / 1000 {
            let mut b = WriteBatch::new();
            for i in chunk * 1000..(chunk + 1) * 1000 {
                b.put(format!("key{i:08}"), i.to_le_bytes());
            }
            db.write(b).unwrap();
        }
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in (0..n).step_by(997) {
        let v = db.get(format!("key{i:08}")).unwrap().unwrap();
        assert_eq!(v.as_ref(), &i.to_le_bytes());
    }
    assert_eq!(db.iter().count(), n as usize);
    let last = db.iter().next_back().unwrap().unwrap();
    assert_eq!(last.0.as_ref(), format!("key{:08}", n - 1).as_bytes());
}

#[test]
fn second_open_of_same_directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked(p)) => assert_eq!(p, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    db.close().unwrap();
    Db::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn foreign_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), b"user data").unwrap();
    match Db::open(dir.path(), Options::default()) {
        Err(Error::NotADatabase { reason, .. }) => assert!(reason.contains("precious.txt")),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(dir.path().join("precious.txt")).unwrap(),
        b"user data"
    );
}

#[test]
fn bad_options_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().max_write_buffer_number(1);
    match Db::open(dir.path(), o) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("max_write_buffer_number"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn snapshot_is_stable_across_writes_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    for i in 0..1000u32 {
        db.put(i.to_be_bytes(), b"old").unwrap();
    }
    let snap = db.snapshot();
    for i in 0..1000u32 {
        if i % 2 == 0 {
            db.put(i.to_be_bytes(), b"new").unwrap();
        } else {
            db.delete(i.to_be_bytes()).unwrap();
        }
    }
    db.flush().unwrap();
    db.put(5000u32.to_be_bytes(), b"later").unwrap();
    assert_eq!(snap.iter().count(), 1000);
    assert!(snap.iter().all(|r| r.unwrap().1.as_ref() == b"old"));
    assert_eq!(
        snap.get(1u32.to_be_bytes()).unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(db.get(1u32.to_be_bytes()).unwrap(), None);
    assert_eq!(db.iter().count(), 501);
    assert_eq!(snap.iter().rev().count(), 1000);
}

#[test]
fn flush_keeps_only_versions_a_reader_can_see() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v1").unwrap();
    db.put(b"k", b"v2").unwrap();
    let snap = db.snapshot();
    db.put(b"k", b"v3").unwrap();
    db.put(b"k", b"v4").unwrap();
    db.flush().unwrap();
    assert_eq!(snap.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v4"[..]));
    let ssts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sst"))
        .collect();
    assert_eq!(ssts.len(), 1);
    let versions: Vec<_> = lightning_db::inspect::SstFile::open(&ssts[0])
        .unwrap()
        .entries()
        .map(|e| e.unwrap().value.to_vec())
        .collect();
    // v4 (newest) and v2 (the snapshot's); v1 and v3 are shadowed.
    assert_eq!(versions, vec![b"v4".to_vec(), b"v2".to_vec()]);
}
