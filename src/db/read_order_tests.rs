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

use super::tests_hooks;
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
