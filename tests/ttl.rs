//! Time to live (issue 20): `Options::ttl` with a `ManualClock`. Expired
//! values are invisible to every read at once (gets, both iterator
//! directions, multi_get, snapshots, transactions), an expired version
//! hides the older ones, write times survive a reopen, compaction drops
//! expired values, and turning the TTL on or off never misreads a value.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{fast_opts, no_compaction};
use lightning_db::{
    CompactionFilter, Db, Decision, KeyspaceOptions, ManualClock, Options, U64AddOperator,
    WriteBatch,
};

const T0: u64 = 1_700_000_000_000;
const MINUTE: Duration = Duration::from_secs(60);

fn opts(clock: &Arc<ManualClock>, ttl: Option<Duration>) -> Options {
    no_compaction(fast_opts())
        .ttl(ttl)
        .clock(clock.clone() as Arc<dyn lightning_db::Clock>)
}

fn keys_fwd(db: &Db) -> Vec<String> {
    db.iter()
        .map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
        .collect()
}

fn keys_rev(db: &Db) -> Vec<String> {
    let mut v: Vec<String> = db
        .iter()
        .rev()
        .map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
        .collect();
    v.reverse();
    v
}

fn get(db: &Db, k: &str) -> Option<String> {
    db.get(k)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// Every read shape agrees on what is live, in memtables and in files.
#[test]
fn expired_values_vanish_from_every_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
    for flushed in [false, true] {
        db.put("a", "1").unwrap();
        clock.advance(Duration::from_secs(30));
        db.put("b", "2").unwrap();
        db.put("c", "3").unwrap();
        if flushed {
            db.flush().unwrap();
        }
        let snap = db.snapshot();
        // t = 30 s: everything is live, values read without their time.
        assert_eq!(get(&db, "a").as_deref(), Some("1"));
        assert_eq!(keys_fwd(&db), ["a", "b", "c"]);
        assert_eq!(keys_rev(&db), ["a", "b", "c"]);
        // t = 60 s: "a" (written at 0) has expired, exactly at its TTL.
        clock.advance(Duration::from_secs(30));
        assert_eq!(get(&db, "a"), None, "flushed={flushed}");
        assert!(!db.contains_key("a").unwrap());
        assert_eq!(keys_fwd(&db), ["b", "c"]);
        assert_eq!(keys_rev(&db), ["b", "c"]);
        let got = db.multi_get(["a", "b", "zz"]);
        assert_eq!(got[0].as_ref().unwrap(), &None);
        assert_eq!(got[1].as_ref().unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(got[2].as_ref().unwrap(), &None);
        // A snapshot taken before the expiry reads by the clock too.
        assert_eq!(snap.get("a").unwrap(), None);
        assert_eq!(snap.get("b").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            db.first_key_value().unwrap().map(|(k, _)| k.to_vec()),
            Some(b"b".to_vec())
        );
        // t = 89.999 s: "b" and "c" still live; at 90 s they go.
        clock.advance(Duration::from_millis(29_999));
        assert_eq!(keys_fwd(&db), ["b", "c"]);
        clock.advance(Duration::from_millis(1));
        assert_eq!(keys_fwd(&db), Vec::<String>::new());
        assert_eq!(keys_rev(&db), Vec::<String>::new());
        assert_eq!(db.last_key_value().unwrap(), None);
        assert_eq!(db.prefix("b").count(), 0);
        drop(snap);
    }
}

/// An expired version reads as a tombstone: the older value under it (a
/// value written before the TTL was turned on, which never expires) does
/// not come back.
#[test]
fn an_expired_value_hides_the_older_versions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let db = Db::open(dir.path(), opts(&clock, None)).unwrap();
        db.put("k", "untimed").unwrap();
        db.put("m", "untimed").unwrap();
        db.flush().unwrap();
    }
    let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
    // Written without a TTL: never expires.
    clock.advance(MINUTE * 10);
    assert_eq!(get(&db, "k").as_deref(), Some("untimed"));
    db.put("k", "timed").unwrap();
    for step in ["memtable", "flushed", "compacted"] {
        match step {
            "flushed" => db.flush().unwrap(),
            "compacted" => {
                // Compaction before the expiry keeps both versions' effect.
                db.compact_range::<&[u8], _>(..).unwrap();
            }
            _ => {}
        }
        assert_eq!(get(&db, "k").as_deref(), Some("timed"), "{step}");
    }
    clock.advance(MINUTE);
    assert_eq!(get(&db, "k"), None);
    assert_eq!(keys_fwd(&db), ["m"]);
    assert_eq!(keys_rev(&db), ["m"]);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k"), None, "after compaction");
    assert_eq!(keys_fwd(&db), ["m"]);
}

/// Write times are logged: a replayed WAL and flushed files keep them, so
/// reopening never extends a value's life.
#[test]
fn write_times_survive_reopen_from_the_wal_and_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
        db.put("in-file", "f").unwrap();
        db.flush().unwrap();
        db.put("in-wal", "w").unwrap();
        // The files as a crash leaves them: "in-wal" only in the WAL.
        common::copy_db(dir.path(), crashed.path());
    }
    clock.advance(Duration::from_secs(59));
    {
        let db = Db::open(crashed.path(), opts(&clock, Some(MINUTE))).unwrap();
        assert_eq!(keys_fwd(&db), ["in-file", "in-wal"]);
        clock.advance(Duration::from_secs(1));
        assert_eq!(keys_fwd(&db), Vec::<String>::new(), "replay moved the time");
        clock.advance(Duration::from_secs(59));
        let fresh = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
        assert_eq!(keys_fwd(&fresh), Vec::<String>::new());
        clock.set(T0 + 59_000);
    }
    {
        let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
        assert_eq!(keys_fwd(&db), ["in-file", "in-wal"]);
    }
    clock.advance(Duration::from_secs(1));
    let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
    assert_eq!(keys_fwd(&db), Vec::<String>::new());
}

/// Compaction drops expired values for good: with the TTL turned off
/// afterwards, what compaction removed stays gone, and what it had not
/// yet compacted comes back (nothing expires without a TTL).
#[test]
fn compaction_drops_expired_values_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
        for i in 0..500 {
            db.put(format!("old{i:04}"), "x").unwrap();
        }
        db.flush().unwrap();
        clock.advance(MINUTE);
        for i in 0..500 {
            db.put(format!("new{i:04}"), "y").unwrap();
        }
        db.flush().unwrap();
        assert_eq!(db.iter().count(), 500);
        db.compact_range::<&[u8], _>(..).unwrap();
        assert_eq!(db.iter().count(), 500);
        // Expire the new ones too, but do not compact.
        clock.advance(MINUTE);
        assert_eq!(db.iter().count(), 0);
    }
    let db = Db::open(dir.path(), opts(&clock, None)).unwrap();
    let live = keys_fwd(&db);
    assert_eq!(live.len(), 500, "only the uncompacted values are back");
    assert!(live.iter().all(|k| k.starts_with("new")));
    // Timed values read without their time once the TTL is off.
    assert_eq!(get(&db, "new0000").as_deref(), Some("y"));
    drop(db);
    // A `compact_range` over one file already on the last level rewrites
    // it (nothing else would drop its expired values).
    clock.advance(MINUTE * 2);
    {
        let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
    }
    let db = Db::open(dir.path(), opts(&clock, None)).unwrap();
    assert_eq!(keys_fwd(&db), Vec::<String>::new());
}

/// The TTL is a per-keyspace option, can change on an open keyspace, and
/// applies to values already written.
#[test]
fn ttl_per_keyspace_and_changed_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(dir.path(), opts(&clock, None)).unwrap();
    let sessions = db
        .keyspace_with(
            "sessions",
            &KeyspaceOptions::from_options(&opts(&clock, Some(MINUTE))),
        )
        .unwrap();
    db.put("k", "forever").unwrap();
    sessions.put("k", "session").unwrap();
    let mut b = WriteBatch::new();
    b.put_in(&sessions, "batched", "s");
    b.put("batched", "d");
    db.write(b).unwrap();
    clock.advance(MINUTE);
    assert_eq!(get(&db, "k").as_deref(), Some("forever"));
    assert_eq!(get(&db, "batched").as_deref(), Some("d"));
    assert_eq!(sessions.get("k").unwrap(), None);
    assert_eq!(sessions.get("batched").unwrap(), None);
    assert_eq!(sessions.iter().count(), 0);
    // A longer TTL brings them back (expiry uses the current setting).
    let sessions = db
        .keyspace_with(
            "sessions",
            &KeyspaceOptions::from_options(&opts(&clock, Some(MINUTE * 2))),
        )
        .unwrap();
    assert_eq!(sessions.get("k").unwrap().as_deref(), Some(&b"session"[..]));
    assert_eq!(sessions.iter().count(), 2);
}

#[test]
fn transactions_stamp_their_puts_and_read_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(dir.path(), opts(&clock, Some(MINUTE))).unwrap();
    db.put("old", "o").unwrap();
    clock.advance(Duration::from_secs(30));
    let mut tx = db.transaction();
    tx.put("new", "n");
    assert_eq!(tx.get("new").unwrap().as_deref(), Some(&b"n"[..]));
    assert_eq!(tx.get("old").unwrap().as_deref(), Some(&b"o"[..]));
    tx.commit().unwrap();
    clock.advance(Duration::from_secs(30));
    let tx = db.transaction();
    assert_eq!(tx.get("old").unwrap(), None);
    assert_eq!(tx.get("new").unwrap().as_deref(), Some(&b"n"[..]));
    drop(tx);
    clock.advance(Duration::from_secs(30));
    assert_eq!(get(&db, "new"), None);
    // compare_and_swap sees an expired key as absent.
    db.compare_and_swap("new", None::<&[u8]>, Some(&b"again"[..]))
        .unwrap()
        .unwrap();
    assert_eq!(get(&db, "new").as_deref(), Some("again"));
}

#[test]
fn merges_into_a_ttl_keyspace_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(
        dir.path(),
        opts(&clock, Some(MINUTE)).merge_operator(Some(Arc::new(U64AddOperator))),
    )
    .unwrap();
    let e = db.merge("n", 1u64.to_le_bytes()).unwrap_err();
    assert!(e.to_string().contains("TTL"), "{e}");
    let mut b = WriteBatch::new();
    b.put("p", "v");
    b.merge("n", 1u64.to_le_bytes());
    assert!(db.write(b).is_err());
    assert_eq!(get(&db, "p"), None, "the batch was refused whole");
}

/// A user's compaction filter sees values without their time, and a value
/// it changes keeps its time (and so still expires).
#[test]
fn a_compaction_filter_sees_user_values_and_changed_values_keep_their_time() {
    struct Upper;
    impl CompactionFilter for Upper {
        fn name(&self) -> &str {
            "upper"
        }
        fn filter(&self, _: usize, _: &[u8], value: &[u8]) -> Decision {
            assert_eq!(value, b"abc", "the filter saw the write time");
            Decision::ChangeValue(value.to_ascii_uppercase())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(
        dir.path(),
        opts(&clock, Some(MINUTE)).compaction_filter(Some(Arc::new(Upper))),
    )
    .unwrap();
    db.put("k", "abc").unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get(&db, "k").as_deref(), Some("ABC"));
    clock.advance(MINUTE);
    assert_eq!(get(&db, "k"), None, "the changed value kept its time");
}

/// With the row cache on, a cached value is never served past its expiry
/// (the row cache skips keyspaces with a TTL); large values with blob
/// files on stay inline and expire the same.
#[test]
fn row_cache_and_blob_files_do_not_outlive_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let db = Db::open(
        dir.path(),
        opts(&clock, Some(MINUTE))
            .row_cache_size(1 << 20)
            .enable_blob_files(true)
            .min_blob_size(16),
    )
    .unwrap();
    let big = vec![7u8; 10_000];
    db.put("hot", "v").unwrap();
    db.put("big", &big).unwrap();
    db.flush().unwrap();
    for _ in 0..5 {
        assert_eq!(get(&db, "hot").as_deref(), Some("v"));
    }
    assert_eq!(db.get("big").unwrap().as_deref(), Some(&big[..]));
    clock.advance(MINUTE);
    assert_eq!(get(&db, "hot"), None);
    assert_eq!(db.get("big").unwrap(), None);
}

#[test]
fn a_zero_ttl_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = Db::open(dir.path(), fast_opts().ttl(Some(Duration::ZERO))).unwrap_err();
    assert!(e.to_string().contains("ttl"), "{e}");
}

/// Operands written while the TTL was off fold onto a timed base without
/// its time, and onto nothing once that base has expired (every read
/// path: get, both iterator directions).
#[test]
fn operands_fold_onto_a_timed_base_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let with = |ttl: Option<Duration>| {
        opts(&clock, ttl).merge_operator(Some(Arc::new(lightning_db::AppendOperator::new(","))))
    };
    {
        let db = Db::open(dir.path(), with(Some(MINUTE))).unwrap();
        db.put("k", "base").unwrap();
        db.put("other", "o").unwrap();
    }
    {
        let db = Db::open(dir.path(), with(None)).unwrap();
        db.merge("k", "x").unwrap();
        assert_eq!(get(&db, "k").as_deref(), Some("base,x"));
    }
    let db = Db::open(dir.path(), with(Some(MINUTE))).unwrap();
    for flushed in [false, true] {
        if flushed {
            db.flush().unwrap();
        }
        assert_eq!(
            get(&db, "k").as_deref(),
            Some("base,x"),
            "flushed={flushed}"
        );
    }
    clock.advance(MINUTE);
    assert_eq!(get(&db, "k").as_deref(), Some("x"));
    let fwd: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    assert_eq!(fwd, [(b"k".to_vec(), b"x".to_vec())]);
    let rev: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .rev()
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect();
    assert_eq!(rev, fwd);
}
