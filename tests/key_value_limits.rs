//! Keys and values at the limits the API accepts, with the options
//! `validate()` accepts at their extremes: every one that is accepted must
//! flush, compact, reopen and read back.
//!
//! Why it matters (issue 16, defects 4 and 7): a write the API
//! acknowledges but that a later flush cannot write, or a reader cannot
//! read back, is data loss at best and a database that no longer opens at
//! worst.

use lightning_db::{Compression, Db, Options, MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Regression (defect 7): a maximum-size key with a maximum-size value was
/// accepted, stored compressed, and then read back as `Corruption` (the
/// reader's bound on a decompressed block was smaller than that entry).
#[test]
fn largest_key_with_largest_value_round_trips_compressed_or_not() {
    for compression in [Compression::Zstd { level: 1 }, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let o = Options::default().compression(compression);
        let key = vec![b'k'; MAX_KEY_SIZE];
        // Compressible, so zstd stores the block compressed.
        let mut value = vec![0u8; MAX_VALUE_SIZE];
        for (i, b) in value.iter_mut().enumerate().step_by(4096) {
            *b = (i / 4096) as u8;
        }
        let db = Db::open(dir.path(), o.clone()).unwrap();
        db.put(&key, &value).unwrap();
        db.put("small", "value").unwrap();
        db.flush().unwrap();
        let got = db.get(&key).unwrap().expect("present");
        assert!(got[..] == value[..], "{compression:?}: value differs");
        drop(got);
        let n = db.iter().map(|r| r.unwrap().0.len()).collect::<Vec<_>>();
        assert_eq!(n, vec![MAX_KEY_SIZE, 5]);
        assert!(db.verify().unwrap().is_ok());
        db.close().unwrap();
        let db = Db::open(dir.path(), o).unwrap();
        let got = db.get(&key).unwrap().expect("present after reopen");
        assert!(got[..] == value[..]);
        assert_eq!(db.get("small").unwrap().as_deref(), Some(&b"value"[..]));
    }
}

/// Keys of 208 bytes sharing a 200-byte prefix: separators cannot be
/// shortened, so with the smallest pages every index page holds only 2
/// entries and the index B+Tree is about `log2(blocks)` deep.
fn long_prefix_key(i: u32) -> Vec<u8> {
    let mut k = vec![b'p'; 200];
    k.extend_from_slice(format!("{i:08}").as_bytes());
    k
}

/// Regression (defect 4): with `block_size = index_page_size = 256` such
/// keys made the index deeper than the 16 levels the format allowed; the
/// flush failed, writes stopped, and every reopen failed replaying the WAL.
/// (The report's figures: 300,000 keys.)
#[test]
fn long_shared_prefixes_with_the_smallest_pages_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .block_size(256)
        .index_page_size(256)
        .write_buffer_size(256 << 20);
    o.validate().unwrap();
    let n = 300_000;
    let db = Db::open(dir.path(), o.clone()).unwrap();
    for i in 0..n {
        db.put(long_prefix_key(i), i.to_le_bytes()).unwrap();
    }
    db.flush().unwrap();
    let check = |db: &Db| {
        for i in (0..n).step_by(37) {
            assert_eq!(
                db.get(long_prefix_key(i)).unwrap().as_deref(),
                Some(&i.to_le_bytes()[..]),
                "key {i}"
            );
        }
        assert_eq!(db.iter().count(), n as usize);
        let last = db.iter().next_back().unwrap().unwrap().0;
        assert_eq!(&last[..], &long_prefix_key(n - 1)[..]);
        let from = long_prefix_key(n / 2);
        let first = db.range(from.clone()..).next().unwrap().unwrap().0;
        assert_eq!(&first[..], &from[..]);
    };
    check(&db);
    assert!(db.verify().unwrap().is_ok());
    db.compact_range::<&[u8], _>(..).unwrap();
    check(&db);
    db.close().unwrap();
    let db = Db::open(dir.path(), o).unwrap();
    check(&db);
}

/// The largest keys (64 KiB, differing only in their last bytes, so no
/// separator is shorter than a key) with the smallest blocks and pages
/// `validate()` accepts: one entry per block, two per index page.
#[test]
fn largest_keys_with_the_smallest_pages() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default()
        .block_size(256)
        .index_page_size(256)
        .compression(Compression::Zstd { level: 1 });
    o.validate().unwrap();
    let key = |i: u32| {
        let mut k = vec![b'x'; MAX_KEY_SIZE - 4];
        k.extend_from_slice(&i.to_be_bytes());
        k
    };
    let n = 300;
    let db = Db::open(dir.path(), o.clone()).unwrap();
    for i in 0..n {
        db.put(key(i), i.to_le_bytes()).unwrap();
        if i % 100 == 99 {
            db.flush().unwrap();
        }
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), o).unwrap();
    for i in 0..n {
        assert_eq!(
            db.get(key(i)).unwrap().as_deref(),
            Some(&i.to_le_bytes()[..])
        );
    }
    let fwd: Vec<_> = db.iter().map(|r| r.unwrap().0).collect();
    assert_eq!(fwd.len(), n as usize);
    let mut back: Vec<_> = db.iter().rev().map(|r| r.unwrap().0).collect();
    back.reverse();
    assert_eq!(fwd, back);
    assert!(db.verify().unwrap().is_ok());
}
