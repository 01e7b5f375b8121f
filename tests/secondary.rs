//! Secondary instances (issue 21): a follower opened beside a live
//! primary (which `open_read_only` refuses) catches up to prefixes of the
//! primary's history that hold every acknowledged write, keeps reading
//! views whose files the primary deleted, and refuses writes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::churn_opts;
use lightning_db::{Db, Error, WriteBatch};

fn key(i: u64) -> String {
    format!("k{i:08}")
}

#[test]
fn a_follower_catches_up_to_prefixes_while_the_primary_writes() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Arc::new(Db::open(dir.path(), churn_opts()).unwrap());
    let other = primary.keyspace("other").unwrap();
    assert!(matches!(
        Db::open_read_only(dir.path(), churn_opts()),
        Err(Error::Locked(_))
    ));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, stop) = (Arc::clone(&primary), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) || i < 3000 {
                i += 1;
                let mut b = WriteBatch::new();
                b.put(key(i), format!("v{i}"));
                b.put_in(&other, key(i), format!("o{i}"));
                b.put("counter", i.to_be_bytes());
                db.write(b).unwrap();
                acked.store(i, Ordering::SeqCst);
            }
        })
    };
    let follower = Db::open_secondary(dir.path(), churn_opts()).unwrap();
    let mut last = 0;
    let mut old_views = Vec::new();
    for round in 0..15 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let floor = acked.load(Ordering::SeqCst);
        follower.try_catch_up_with_primary().unwrap();
        let view = follower.db();
        let c = view
            .get("counter")
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()));
        assert!(c >= floor, "round {round}: {c} < acknowledged {floor}");
        assert!(c >= last, "round {round}: went back from {last} to {c}");
        last = c;
        let main = view.range(key(0)..key(u64::MAX)).count() as u64;
        let side = view.keyspace("other").unwrap().iter().count() as u64;
        assert_eq!((main, side), (c, c), "round {round}: not a prefix");
        assert!(view.put("x", "y").is_err(), "a follower took a write");
        old_views.push((view, c));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    // Compactions deleted files the old views use: they still read them.
    primary.compact_range::<&[u8], _>(..).unwrap();
    for (view, c) in &old_views {
        assert_eq!(view.range(key(0)..key(u64::MAX)).count() as u64, *c);
        assert_eq!(
            view.get(key(*c)).unwrap().as_deref(),
            Some(format!("v{c}").as_bytes())
        );
    }
}

#[test]
fn a_follower_of_a_closed_primary_sees_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), churn_opts()).unwrap();
        for i in 0..500 {
            db.put(key(i), "v").unwrap();
        }
    }
    let f = Db::open_secondary(dir.path(), churn_opts()).unwrap();
    assert_eq!(f.db().iter().count(), 500);
    f.try_catch_up_with_primary().unwrap();
    assert_eq!(f.db().iter().count(), 500);
    // Not a database: a clear error.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Db::open_secondary(empty.path(), churn_opts()),
        Err(Error::NotADatabase { .. })
    ));
}

/// A view opens every file when it is made: files the primary deletes
/// right after (a compaction) stay readable by it.
#[test]
fn a_view_reads_files_deleted_before_it_first_touched_them() {
    let dir = tempfile::tempdir().unwrap();
    let primary = Db::open(dir.path(), common::no_compaction(common::fast_opts())).unwrap();
    for round in 0..5u64 {
        for i in 0..200 {
            primary
                .put(key(round * 1000 + i), format!("v{round}"))
                .unwrap();
        }
        primary.flush().unwrap();
    }
    let follower = Db::open_secondary(dir.path(), common::fast_opts()).unwrap();
    let view = follower.db();
    primary.compact_range::<&[u8], _>(..).unwrap();
    assert!(
        common::files_with_suffix(dir.path(), ".sst").len() < 5,
        "the compaction did not replace the files"
    );
    assert_eq!(view.iter().count(), 1000);
    assert_eq!(view.get(key(4000)).unwrap().as_deref(), Some(&b"v4"[..]));
}
