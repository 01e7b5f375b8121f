//! Merge operators (issue 20): `Db::merge`, `WriteBatch::merge`,
//! `Keyspace::merge` with the shipped operators and with hostile ones;
//! what gets, scans both ways, snapshots, range deletions, blob values,
//! flush, compaction and reopen make of operands; refusals and errors.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::fast_opts;
use lightning_db::inspect::{SstFile, ValueKind};
use lightning_db::{
    AppendOperator, Db, Error, KeyspaceOptions, MergeError, MergeOperator, Options, U64AddOperator,
    WriteBatch,
};

fn add_opts() -> Options {
    fast_opts().merge_operator(Some(Arc::new(U64AddOperator)))
}

fn append_opts() -> Options {
    fast_opts().merge_operator(Some(Arc::new(AppendOperator::new(","))))
}

fn n(v: u64) -> [u8; 8] {
    v.to_le_bytes()
}

fn get_u64(db: &Db, k: &str) -> Option<u64> {
    db.get(k)
        .unwrap()
        .map(|v| u64::from_le_bytes(v[..].try_into().unwrap()))
}

fn get_str(db: &Db, k: &str) -> Option<String> {
    db.get(k)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

fn scan(db: &Db, rev: bool) -> Vec<(String, String)> {
    let conv = |r: lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>| {
        let (k, v) = r.unwrap();
        (
            String::from_utf8(k.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        )
    };
    match rev {
        false => db.iter().map(conv).collect(),
        true => db.iter().rev().map(conv).collect(),
    }
}

/// Every entry of every SST file of `dir`, as (user key, kind).
fn sst_entries(dir: &Path) -> Vec<(Vec<u8>, ValueKind)> {
    let mut out = Vec::new();
    for path in common::files_with_suffix(dir, ".sst") {
        let f = SstFile::open(&path).unwrap();
        for e in f.entries() {
            let e = e.unwrap();
            out.push((e.key.to_vec(), e.kind));
        }
    }
    out
}

#[test]
fn counters_add_on_absent_put_and_deleted_keys_in_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), add_opts()).unwrap();
    db.merge("fresh", n(3)).unwrap();
    db.put("base", n(100)).unwrap();
    db.merge("base", n(1)).unwrap();
    db.put("gone", n(50)).unwrap();
    db.delete("gone").unwrap();
    db.merge("gone", n(7)).unwrap();
    assert_eq!(get_u64(&db, "fresh"), Some(3));
    assert_eq!(get_u64(&db, "base"), Some(101));
    assert_eq!(get_u64(&db, "gone"), Some(7));
    // Operands in the memtable on top of a base in an SST.
    db.flush().unwrap();
    db.merge("base", n(10)).unwrap();
    assert_eq!(get_u64(&db, "base"), Some(111));
    // Operands spread over two SSTs and the memtable.
    db.flush().unwrap();
    db.merge("base", n(100)).unwrap();
    assert_eq!(get_u64(&db, "base"), Some(211));
    // A put hides every older operand.
    db.put("base", n(5)).unwrap();
    db.merge("base", n(1)).unwrap();
    assert_eq!(get_u64(&db, "base"), Some(6));
    db.close().unwrap();
    // The operands come back from the WAL (format 5) and the SSTs.
    let db = Db::open(dir.path(), add_opts()).unwrap();
    assert_eq!(get_u64(&db, "fresh"), Some(3));
    assert_eq!(get_u64(&db, "base"), Some(6));
    assert_eq!(get_u64(&db, "gone"), Some(7));
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn compaction_folds_operands_into_one_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::no_compaction(add_opts())).unwrap();
    for round in 0..4u64 {
        for i in 0..100u64 {
            db.merge(format!("c{i:03}"), n(i + round)).unwrap();
        }
        db.flush().unwrap();
    }
    let before = sst_entries(dir.path());
    assert_eq!(before.len(), 400);
    assert!(before.iter().all(|(_, k)| *k == ValueKind::Merge));
    db.compact_range::<&[u8], _>(..).unwrap();
    // Bottommost, no snapshot: one value per key.
    let after = sst_entries(dir.path());
    assert_eq!(after.len(), 100, "operands were not folded");
    assert!(after.iter().all(|(_, k)| *k == ValueKind::Value));
    for i in 0..100u64 {
        assert_eq!(get_u64(&db, &format!("c{i:03}")), Some(4 * i + 6));
    }
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn snapshots_keep_their_view_through_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), append_opts()).unwrap();
    db.put("k", "a").unwrap();
    db.merge("k", "b").unwrap();
    let s1 = db.snapshot();
    db.merge("k", "c").unwrap();
    db.merge("k", "d").unwrap();
    let s2 = db.snapshot();
    db.delete_range("k".."l").unwrap();
    db.merge("k", "e").unwrap();
    for _ in 0..2 {
        assert_eq!(s1.get("k").unwrap().as_deref(), Some(&b"a,b"[..]));
        assert_eq!(s2.get("k").unwrap().as_deref(), Some(&b"a,b,c,d"[..]));
        assert_eq!(get_str(&db, "k").as_deref(), Some("e"));
        let s2_scan: Vec<_> = s2.iter().rev().map(|r| r.unwrap().1).collect();
        assert_eq!(s2_scan, vec!["a,b,c,d"]);
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
    }
    // Each stripe keeps what its readers need: e (newest, on a range
    // tombstone), c,d (s2's operands, partially merged: their base is in
    // s1's stripe) and a,b (s1's, folded onto its base).
    let kinds: Vec<_> = sst_entries(dir.path())
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(
        kinds,
        vec![ValueKind::Merge, ValueKind::Merge, ValueKind::Value]
    );
    drop((s1, s2));
    db.merge("k", "f").unwrap();
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get_str(&db, "k").as_deref(), Some("e,f"));
    let kinds: Vec<_> = sst_entries(dir.path())
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(kinds, vec![ValueKind::Value], "no snapshot: one value");
}

#[test]
fn scans_fold_in_both_directions_and_between_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), append_opts()).unwrap();
    db.put("a", "1").unwrap();
    db.merge("b", "x").unwrap();
    db.put("c", "3").unwrap();
    db.flush().unwrap();
    db.merge("b", "y").unwrap();
    db.merge("a", "2").unwrap();
    db.merge("d", "z").unwrap();
    db.delete("c").unwrap();
    db.merge("c", "4").unwrap();
    let want = vec![
        ("a".to_string(), "1,2".to_string()),
        ("b".into(), "x,y".into()),
        ("c".into(), "4".into()),
        ("d".into(), "z".into()),
    ];
    assert_eq!(scan(&db, false), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(scan(&db, true), rev);
    // Both ends of one iterator meet on a folded key.
    let mut it = db.iter();
    assert_eq!(it.next().unwrap().unwrap().0, "a");
    assert_eq!(it.next_back().unwrap().unwrap().0, "d");
    assert_eq!(it.next().unwrap().unwrap().1, "x,y");
    assert_eq!(it.next_back().unwrap().unwrap().1, "4");
    assert!(it.next().is_none() && it.next_back().is_none());
    // Borrowed reads see the folded value too.
    let mut it = db.range("b".."c");
    let (k, v) = it.next_ref().unwrap().unwrap();
    assert_eq!((k, v), (&b"b"[..], &b"x,y"[..]));
    assert!(it.next_ref().is_none());
}

#[test]
fn a_range_deletion_ends_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), append_opts()).unwrap();
    db.put("k1", "old").unwrap();
    db.merge("k1", "older-op").unwrap();
    db.merge("k2", "x").unwrap();
    db.flush().unwrap();
    db.delete_prefix("k").unwrap();
    db.merge("k1", "new").unwrap();
    assert_eq!(get_str(&db, "k1").as_deref(), Some("new"));
    assert_eq!(get_str(&db, "k2"), None);
    assert_eq!(scan(&db, false), vec![("k1".into(), "new".into())]);
    assert_eq!(scan(&db, true), vec![("k1".into(), "new".into())]);
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get_str(&db, "k1").as_deref(), Some("new"));
    assert_eq!(scan(&db, true), vec![("k1".into(), "new".into())]);
}

#[test]
fn merges_onto_blob_values() {
    let dir = tempfile::tempdir().unwrap();
    let opts = append_opts().enable_blob_files(true).min_blob_size(64);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let big = "v".repeat(1000);
    db.put("k", &big).unwrap();
    db.flush().unwrap();
    assert!(!common::files_with_suffix(dir.path(), ".blob").is_empty());
    db.merge("k", "tail").unwrap();
    let want = format!("{big},tail");
    assert_eq!(get_str(&db, "k").as_deref(), Some(want.as_str()));
    assert_eq!(scan(&db, true), vec![("k".into(), want.clone())]);
    // Compaction cannot read the blob value: it keeps the operand and the
    // reference, and reads still fold them.
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(get_str(&db, "k").as_deref(), Some(want.as_str()));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(get_str(&db, "k").as_deref(), Some(want.as_str()));
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn merge_without_an_operator_is_refused_and_operands_survive_a_run_without_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        let e = db.merge("k", n(1)).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("no merge operator"), "{e}");
        // A batch with one merge is refused whole.
        let mut b = WriteBatch::new();
        b.put("other", "v");
        b.merge("k", n(1));
        assert!(db.write(b).is_err());
        assert_eq!(db.get("other").unwrap(), None);
    }
    {
        let db = Db::open(dir.path(), add_opts()).unwrap();
        db.put("k", n(1)).unwrap();
        db.merge("k", n(2)).unwrap();
        db.close().unwrap();
    }
    {
        // Opened without the operator: reads of the key fail with an error
        // that says so; other keys read fine; compaction keeps operands.
        let db = Db::open(dir.path(), fast_opts()).unwrap();
        db.put("plain", "p").unwrap();
        let e = db.get("k").unwrap_err();
        assert!(
            matches!(&e, Error::Merge { operator, .. } if operator.is_empty()),
            "{e}"
        );
        assert!(e.to_string().contains("no merge operator"), "{e}");
        assert_eq!(db.get("plain").unwrap().as_deref(), Some(&b"p"[..]));
        assert!(db.iter().any(|r| r.is_err()));
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        assert!(sst_entries(dir.path())
            .iter()
            .any(|(_, k)| *k == ValueKind::Merge));
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), add_opts()).unwrap();
    assert_eq!(get_u64(&db, "k"), Some(3));
}

/// Fails every merge whose operands include `bad`; counts its calls.
struct Picky {
    calls: AtomicUsize,
}

impl MergeOperator for Picky {
    fn name(&self) -> &str {
        "picky"
    }
    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if operands.contains(&&b"bad"[..]) {
            return Err(MergeError::new("operand `bad` refused"));
        }
        let mut v = existing.unwrap_or_default().to_vec();
        for o in operands {
            v.extend_from_slice(o);
        }
        Ok(v)
    }
}

#[test]
fn a_failing_operator_fails_the_read_and_compaction_keeps_the_operands() {
    let dir = tempfile::tempdir().unwrap();
    let op = Arc::new(Picky {
        calls: AtomicUsize::new(0),
    });
    let db = Db::open(dir.path(), fast_opts().merge_operator(Some(op.clone()))).unwrap();
    db.put("k", "a").unwrap();
    db.merge("k", "bad").unwrap();
    db.merge("ok", "x").unwrap();
    let e = db.get("k").unwrap_err();
    match &e {
        Error::Merge {
            key,
            operator,
            reason,
        } => {
            assert_eq!((&key[..], operator.as_str()), (&b"k"[..], "picky"));
            assert!(reason.contains("operand `bad` refused"), "{reason}");
        }
        other => panic!("{other}"),
    }
    // The scan yields the error once and ends.
    let mut it = db.iter();
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
    assert_eq!(db.get("ok").unwrap().as_deref(), Some(&b"x"[..]));
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let kinds: Vec<_> = sst_entries(dir.path())
        .into_iter()
        .filter(|(k, _)| k == b"k")
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(kinds, vec![ValueKind::Merge, ValueKind::Value]);
    // A newer put ends the failure.
    db.put("k", "fresh").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"fresh"[..]));
    assert!(op.calls.load(Ordering::Relaxed) > 0);
}

#[test]
fn keyspaces_have_their_own_operators() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), add_opts()).unwrap();
    let tags = db
        .keyspace_with(
            "tags",
            &KeyspaceOptions::from_options(&fast_opts())
                .merge_operator(Some(Arc::new(AppendOperator::new("|")))),
        )
        .unwrap();
    let plain = db
        .keyspace_with("plain", &KeyspaceOptions::from_options(&fast_opts()))
        .unwrap();
    tags.merge("t", "x").unwrap();
    tags.merge("t", "y").unwrap();
    db.merge("t", n(2)).unwrap();
    let mut b = WriteBatch::new();
    b.merge_in(&tags, "t", "z");
    b.merge("t", n(3));
    db.write(b).unwrap();
    assert_eq!(tags.get("t").unwrap().as_deref(), Some(&b"x|y|z"[..]));
    assert_eq!(get_u64(&db, "t"), Some(5));
    assert!(matches!(
        plain.merge("t", "x").unwrap_err(),
        Error::InvalidArgument(_)
    ));
    let mut b = WriteBatch::new();
    b.merge_in(&plain, "t", "x");
    assert!(db.write(b).is_err());
    let scanned: Vec<_> = tags.iter().rev().map(|r| r.unwrap().1).collect();
    assert_eq!(scanned, vec![&b"x|y|z"[..]]);
}

#[test]
fn concurrent_counters_lose_no_increment() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = common::churn_opts().merge_operator(Some(Arc::new(U64AddOperator)));
    opts.fs = Arc::new(common::NoSyncFs);
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    const THREADS: u64 = 4;
    const PER: u64 = 5_000;
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..PER {
                    db.merge(format!("ctr{}", i % 16), n(t + 1)).unwrap();
                }
            })
        })
        .collect();
    // A reader sees every counter only grow.
    let reader = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            let mut last = [0u64; 16];
            for _ in 0..200 {
                for (i, l) in last.iter_mut().enumerate() {
                    let v = get_u64(&db, &format!("ctr{i}")).unwrap_or(0);
                    assert!(v >= *l, "counter {i} went back from {l} to {v}");
                    *l = v;
                }
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let total: u64 = (0..16)
        .map(|i| get_u64(&db, &format!("ctr{i}")).unwrap())
        .sum();
    assert_eq!(total, PER * (1..=THREADS).sum::<u64>());
    db.wait_for_compactions().unwrap();
    let after: u64 = (0..16)
        .map(|i| get_u64(&db, &format!("ctr{i}")).unwrap())
        .sum();
    assert_eq!(after, total);
}
