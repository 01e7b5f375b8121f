//! A read of the latest state loads its superversion before its sequence
//! number (`DbInner::latest_seq_after_sv`).
//!
//! Why it matters: the other order let a reader delayed between the two
//! loads read at a sequence number older than the superversion it then
//! loaded, whose compaction had already dropped the version that reader
//! needed: it read an older version, or nothing, for a key written long
//! before (found by `tests/linearizable_reads.rs` on a loaded machine).
//! Here the delay is a hook that runs, between the two loads, a write, a
//! flush and a full compaction (which drops the old version: no snapshot
//! needs it).

use std::sync::Arc;

use super::tests_hooks::{self, Point};
use crate::{Db, Options};

#[test]
fn a_read_delayed_between_superversion_and_sequence_number_still_finds_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let compact_all = |db: &Db| db.compact_range::<&[u8], _>(..).unwrap();
    for (i, read) in ["get", "iter", "range"].into_iter().enumerate() {
        let key = format!("k{i}");
        db.put(&key, "v1").unwrap();
        db.flush().unwrap();
        let other = Arc::clone(&db);
        let k = key.clone();
        tests_hooks::set_once(move || {
            other.put(&k, "v2").unwrap();
            other.flush().unwrap();
            compact_all(&other);
        });
        let got = match read {
            "get" => db.get(&key).unwrap(),
            "iter" => db
                .iter()
                .map(|r| r.unwrap())
                .find(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
            _ => db
                .range(key.as_bytes()..)
                .next()
                .map(|r| r.unwrap())
                .filter(|(k, _)| k == key.as_bytes())
                .map(|(_, v)| v),
        };
        assert!(tests_hooks::ran(), "{read}: the hook did not run");
        // The read began before the second write: either version is
        // right, no version is not.
        let got = got.map(|v| v.to_vec());
        assert!(
            got == Some(b"v1".to_vec()) || got == Some(b"v2".to_vec()),
            "{read}: read {got:?}"
        );
        assert_eq!(db.get(&key).unwrap().as_deref(), Some(&b"v2"[..]));
    }
}

/// The row cache must not keep what such a delayed read found: its
/// superversion can lack the memtable a newer write went to, so its
/// result is the newest version only as of the sequence number visible
/// before the superversion was loaded, not as of the one read after.
/// (Found by `tests/linearizable_reads.rs` in CI: a writer read back its
/// previous version from the row cache.)
#[test]
fn a_delayed_read_does_not_fill_the_row_cache_with_a_value_it_could_not_see_past() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default().row_cache_size(1 << 20)).unwrap());
    db.put("k", "v1").unwrap();
    // First miss: the slot remembers the key, so the next miss fills.
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    let other = Arc::clone(&db);
    tests_hooks::set_once(move || {
        // A new memtable, then a write into it: the delayed reader's
        // superversion does not hold it.
        other.flush().unwrap();
        other.put("k", "v2").unwrap();
    });
    let got = db.get("k").unwrap();
    assert!(tests_hooks::ran(), "the hook did not run");
    assert!(
        got.as_deref() == Some(&b"v1"[..]) || got.as_deref() == Some(&b"v2"[..]),
        "read {got:?}"
    );
    // The write returned before these reads began.
    for _ in 0..3 {
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
    }
}

/// Removes every key: a change of what keys read that comes with no
/// sequence number.
struct RemoveAll;

impl crate::CompactionFilter for RemoveAll {
    fn name(&self) -> &str {
        "remove-all"
    }
    fn filter(&self, _level: usize, _key: &[u8], _value: &[u8]) -> crate::Decision {
        crate::Decision::Remove
    }
}

/// Nor with what it found in files a compaction filter has since changed:
/// the read loaded its superversion before the filtered version was
/// installed, and fills after the whole compaction returned. The cache's
/// generation, loaded before the superversion, is older than the one the
/// compaction left, so the entry is never served (without the raise after
/// the install, it was: the reads below returned the removed value).
#[test]
fn a_delayed_read_does_not_fill_the_row_cache_with_a_value_a_compaction_filter_removed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .row_cache_size(1 << 20)
        .compaction_filter(Some(Arc::new(RemoveAll) as Arc<dyn crate::CompactionFilter>));
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    db.put("k", "v1").unwrap();
    db.flush().unwrap();
    // First miss: the slot remembers the key, so the next miss fills.
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    let other = Arc::clone(&db);
    tests_hooks::set_once(move || {
        other.compact_range::<&[u8], _>(..).unwrap();
    });
    let got = db.get("k").unwrap();
    assert!(tests_hooks::ran(), "the hook did not run");
    assert!(
        got.is_none() || got.as_deref() == Some(&b"v1"[..]),
        "read {got:?}"
    );
    // The compaction returned before these reads began.
    for _ in 0..3 {
        assert_eq!(db.get("k").unwrap(), None);
    }
}

/// The filter compaction of the tests below, on a database holding "k" =
/// "v1" in a file, whose row cache has seen one miss of "k" (the next
/// miss fills).
fn remove_all_db(dir: &std::path::Path) -> Arc<Db> {
    let opts = Options::default()
        .row_cache_size(1 << 20)
        .compaction_filter(Some(Arc::new(RemoveAll) as Arc<dyn crate::CompactionFilter>));
    let db = Arc::new(Db::open(dir, opts).unwrap());
    db.put("k", "v1").unwrap();
    db.flush().unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    db
}

/// Reads that run while the change lands, before the install (they find
/// the old value, and may try to fill) and after it: none may serve the
/// old value once the new version is installed, not even before the
/// compaction returns (with fills kept during a change, or an entry
/// cached before it still served, the read after the install was served
/// the removed value from the cache).
#[test]
fn no_read_is_served_the_old_value_once_a_compaction_filter_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let db = remove_all_db(dir.path());
    // Cached before the change: it must die when the change begins.
    for _ in 0..2 {
        assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
    }
    assert_eq!(db.stats().row_cache.hits, 1, "not cached: nothing tested");
    let other = Arc::clone(&db);
    tests_hooks::set_once_at(Point::RowCacheChangeBegun, move || {
        // Before the install: the old version, read twice (a fill).
        for _ in 0..2 {
            assert_eq!(other.get("k").unwrap().as_deref(), Some(&b"v1"[..]));
        }
        let again = Arc::clone(&other);
        tests_hooks::set_once_at(Point::RowCacheChangeInstalled, move || {
            // Installed, the change not ended yet.
            assert_eq!(again.get("k").unwrap(), None);
        });
    });
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(tests_hooks::ran(), "the second hook did not run");
    for _ in 0..3 {
        assert_eq!(db.get("k").unwrap(), None);
    }
}

/// A read that loads its superversion while the change lands (the old
/// one) and fills only after the compaction returned: the entry must not
/// be served (without the raise at the change's end, the reads after
/// returned the removed value).
#[test]
fn a_read_begun_while_a_compaction_filter_lands_and_filling_after_is_not_served() {
    use std::sync::mpsc::channel;
    let dir = tempfile::tempdir().unwrap();
    let db = remove_all_db(dir.path());
    let (start_tx, start_rx) = channel::<()>();
    let (loaded_tx, loaded_rx) = channel::<()>();
    let (done_tx, done_rx) = channel::<()>();
    let reader = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            start_rx.recv().unwrap();
            tests_hooks::set_once(move || {
                // Generation and superversion loaded: hold the read until
                // the compaction has returned.
                loaded_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            });
            let got = db.get("k").unwrap();
            assert!(tests_hooks::ran(), "the reader's hook did not run");
            got
        })
    };
    tests_hooks::set_once_at(Point::RowCacheChangeBegun, move || {
        // The change has begun, nothing is installed: the reader loads
        // the old superversion now.
        start_tx.send(()).unwrap();
        loaded_rx.recv().unwrap();
    });
    db.compact_range::<&[u8], _>(..).unwrap();
    done_tx.send(()).unwrap();
    let got = reader.join().unwrap();
    // It began before the compaction returned: either answer.
    assert!(
        got.is_none() || got.as_deref() == Some(&b"v1"[..]),
        "{got:?}"
    );
    for _ in 0..3 {
        assert_eq!(db.get("k").unwrap(), None);
    }
}

/// An ingested file that goes in untouched (no overlap, no snapshot) is
/// read from the moment it is installed, at sequence number 0, before the
/// ingestion's sequence number is published. A row-cache entry of the
/// same key (here its absence) must not be served from then on: a read
/// that misses the cache already sees the file, and a later cached read
/// must not go back (with the row cache told only after the install,
/// `get` returned the cached absence while `multi_get`, which does not
/// use the cache, returned the ingested value).
#[test]
fn a_cached_value_is_not_served_once_an_ingested_file_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default().row_cache_size(1 << 20)).unwrap());
    db.put("a", "elsewhere").unwrap();
    db.flush().unwrap();
    for _ in 0..3 {
        assert_eq!(db.get("k").unwrap(), None);
    }
    assert!(
        db.stats().row_cache.hits > 0,
        "absence not cached: nothing tested"
    );
    let path = dir.path().join("ingest.sst");
    let mut w = crate::SstWriter::create(&path, &Options::default()).unwrap();
    w.put("k", "v2").unwrap();
    w.finish().unwrap();
    let other = Arc::clone(&db);
    // Checked once the ingestion returned: a panic inside it would leave
    // its write-queue leadership held.
    let seen = Arc::new(parking_lot::Mutex::new(None));
    let record = Arc::clone(&seen);
    tests_hooks::set_once_at(Point::IngestInstalled, move || {
        let uncached = other.multi_get(["k"]).pop().unwrap().unwrap();
        *record.lock() = Some((other.get("k").unwrap(), uncached));
    });
    db.ingest(&[&path], &crate::IngestOptions::default())
        .unwrap();
    assert!(
        tests_hooks::ran(),
        "the hook did not run on the ingesting thread"
    );
    let (cached, uncached) = seen.lock().take().unwrap();
    assert_eq!(
        cached, uncached,
        "the cache and the files disagreed while the file landed"
    );
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v2"[..]));
}
