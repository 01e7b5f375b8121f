//! Many overlapping level-0 files (no compaction yet): overwrites and
//! deletes spread over 50+ flushed tables, compared with a `BTreeMap`
//! model through gets, forward and reverse ranges, prefixes, and
//! snapshots taken along the way. Also checks that iterators and
//! snapshots created before later flushes keep their view, including
//! after the `Db` is dropped.
//!
//! Level 0 is the part of the tree where every read merges every file, so
//! ordering mistakes between files show up here first.

mod common;

use std::ops::Bound;

use common::{fast_opts, no_compaction, Model, Rng};
use lightning_db::{Db, Snapshot};

fn key(i: u64) -> Vec<u8> {
    format!("k{:03}/{}", i % 97, i).into_bytes()
}

fn collect(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
type RangeFn<'a> = dyn Fn(Bound<Vec<u8>>, Bound<Vec<u8>>, bool) -> Pairs + 'a;

fn check_ranges(db_range: &RangeFn<'_>, model: &Model, rng: &mut Rng) {
    for _ in 0..10 {
        let a = key(rng.below(400));
        let b = key(rng.below(400));
        let lo = match rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(a.clone()),
            _ => Bound::Excluded(a.clone()),
        };
        let hi = match rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(b.clone()),
            _ => Bound::Excluded(b.clone()),
        };
        let valid = match (&lo, &hi) {
            (Bound::Included(x), Bound::Included(y)) => x <= y,
            (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
                x < y
            }
            _ => true,
        };
        let want: Vec<_> = if valid {
            model
                .range((lo.clone(), hi.clone()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(db_range(lo.clone(), hi.clone(), false), want);
        let mut rev = db_range(lo, hi, true);
        rev.reverse();
        assert_eq!(rev, want);
    }
}

#[test]
fn fifty_overlapping_l0_files_match_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), no_compaction(fast_opts())).unwrap();
    let mut model = Model::new();
    let mut rng = Rng(2024);
    let mut snaps: Vec<(Snapshot, Model)> = Vec::new();
    for round in 0..55u64 {
        for _ in 0..60 {
            let k = key(rng.below(400));
            if rng.below(3) == 0 {
                db.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("r{round}-{}", rng.below(1000)).into_bytes();
                db.put(&k, &v).unwrap();
                model.insert(k, v);
            }
        }
        if round % 11 == 0 {
            snaps.push((db.snapshot(), model.clone()));
        }
        db.flush().unwrap();
    }
    for i in 0..400 {
        let k = key(i);
        assert_eq!(
            db.get(&k).unwrap().as_deref(),
            model.get(&k).map(|v| v.as_slice())
        );
    }
    let r = |lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, rev: bool| {
        if rev {
            collect(db.range((lo, hi)).rev())
        } else {
            collect(db.range((lo, hi)))
        }
    };
    check_ranges(&r, &model, &mut rng);
    for p in [&b"k01"[..], b"k042/", b"", b"\xff\xff", b"k096/96"] {
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.starts_with(p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(collect(db.prefix(p)), want);
        let mut rev = collect(db.prefix(p).rev());
        rev.reverse();
        assert_eq!(rev, want);
    }
    for (s, m) in &snaps {
        for i in 0..400 {
            let k = key(i);
            assert_eq!(
                s.get(&k).unwrap().as_deref(),
                m.get(&k).map(|v| v.as_slice())
            );
        }
        let r = |lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>, rev: bool| {
            if rev {
                collect(s.range((lo, hi)).rev())
            } else {
                collect(s.range((lo, hi)))
            }
        };
        check_ranges(&r, m, &mut rng);
    }
    // Same after reopen.
    drop(snaps);
    drop(db);
    let db = Db::open(dir.path(), no_compaction(fast_opts())).unwrap();
    assert_eq!(common::dump(&db).unwrap(), model);
}

#[test]
fn iterator_and_snapshot_keep_their_view_across_flushes_and_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), no_compaction(fast_opts())).unwrap();
    let mut model = Model::new();
    for i in 0..2000u64 {
        db.put(key(i), format!("a{i}")).unwrap();
        model.insert(key(i), format!("a{i}").into_bytes());
    }
    let it = db.iter();
    let rit = db.iter().rev();
    let snap = db.snapshot();
    let many: Vec<Snapshot> = (0..100).map(|_| db.snapshot()).collect();
    for round in 0..10u64 {
        for i in 0..2000u64 {
            if i % 3 == 0 {
                db.delete(key(i)).unwrap();
            } else {
                db.put(key(i), format!("b{round}-{i}")).unwrap();
            }
        }
        db.flush().unwrap();
    }
    drop(db);
    let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(collect(it), want);
    let mut r = collect(rit);
    r.reverse();
    assert_eq!(r, want);
    // Reads through a snapshot of a dropped database: correct data or an
    // error, never other data.
    for (k, v) in &model {
        if let Ok(got) = snap.get(k) {
            assert_eq!(got.as_deref(), Some(v.as_slice()));
        }
    }
    for (k, v) in snap.iter().flatten() {
        assert_eq!(model.get(&k[..]).map(|v| v.as_slice()), Some(&v[..]));
    }
    drop(many);
    let db = Db::open(dir.path(), no_compaction(fast_opts())).unwrap();
    assert_eq!(db.get(key(3)).unwrap(), None);
    assert_eq!(db.get(key(4)).unwrap().as_deref(), Some(&b"b9-4"[..]));
}
