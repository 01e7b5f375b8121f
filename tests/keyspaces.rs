//! Keyspaces (issue 19): isolation between keyspaces, atomic batches
//! across them, snapshots over all of them, drop and re-create, recovery,
//! per-keyspace options, WAL lifetime with an idle keyspace, and a model
//! test against one `BTreeMap` per keyspace.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use lightning_db::{Db, Error, KeyspaceOptions, Options, WriteBatch};
use proptest::prelude::*;

fn keys(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
) -> Vec<String> {
    it.map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
        .collect()
}

#[test]
fn keyspaces_are_independent_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    db.put("k", "default").unwrap();
    a.put("k", "in a").unwrap();
    b.put("k", "in b").unwrap();
    a.put("only-a", "1").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"default"[..]));
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"in b"[..]));
    assert_eq!(b.get("only-a").unwrap(), None);
    assert_eq!(keys(a.iter()), ["k", "only-a"]);
    assert_eq!(keys(a.iter().rev()), ["only-a", "k"]);
    assert_eq!(keys(db.iter()), ["k"]);
    b.delete("k").unwrap();
    assert_eq!(b.get("k").unwrap(), None);
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(db.keyspaces(), ["default", "a", "b"]);
    // Half in SST files, half in the WAL.
    db.flush().unwrap();
    a.put("after-flush", "2").unwrap();
    db.close().unwrap();

    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    assert_eq!(db.keyspaces(), ["default", "a", "b"]);
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    assert_eq!(keys(a.iter()), ["after-flush", "k", "only-a"]);
    assert_eq!(keys(b.iter()), Vec::<String>::new());
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"default"[..]));
    assert!(db.verify().unwrap().is_ok());
}

#[test]
fn a_batch_across_keyspaces_is_atomic_and_one_snapshot_sees_all() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let users = db.keyspace("users").unwrap();
    let index = db.keyspace("by_email").unwrap();
    let mut batch = WriteBatch::new();
    batch.put_in(&users, "u1", "ann@example.com");
    batch.put_in(&index, "ann@example.com", "u1");
    batch.put("count", "1");
    db.write(batch).unwrap();
    let snap = db.snapshot();
    let mut batch = WriteBatch::new();
    batch.delete_in(&users, "u1");
    batch.delete_range_in(&index, "a".."b");
    batch.put("count", "0");
    db.write(batch).unwrap();
    assert_eq!(users.get("u1").unwrap(), None);
    assert_eq!(index.get("ann@example.com").unwrap(), None);
    assert_eq!(
        snap.get_in(&users, "u1").unwrap().as_deref(),
        Some(&b"ann@example.com"[..])
    );
    assert_eq!(keys(snap.iter_in(&index)), ["ann@example.com"]);
    assert_eq!(keys(snap.prefix_in(&index, "ann")), ["ann@example.com"]);
    assert_eq!(snap.get("count").unwrap().as_deref(), Some(&b"1"[..]));
}

#[test]
fn drop_keyspace_removes_it_and_its_files_and_the_name_can_return() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let tmp = db.keyspace("tmp").unwrap();
    for i in 0..2000 {
        tmp.put(format!("k{i:05}"), [7u8; 100]).unwrap();
    }
    db.flush().unwrap();
    let sst = |d: &std::path::Path| common::files_with_suffix(d, ".sst").len();
    assert!(sst(dir.path()) > 0);
    let iter = tmp.iter();
    db.drop_keyspace("tmp").unwrap();
    // Handles refuse every call.
    assert!(matches!(tmp.get("k00001"), Err(Error::KeyspaceDropped(n)) if n == "tmp"));
    assert!(matches!(tmp.put("k", "v"), Err(Error::KeyspaceDropped(_))));
    assert!(matches!(
        tmp.iter().next(),
        Some(Err(Error::KeyspaceDropped(_)))
    ));
    // A batch naming it is refused whole.
    let mut b = WriteBatch::new();
    b.put("default-key", "v");
    b.put_in(&tmp, "k", "v");
    assert!(matches!(db.write(b), Err(Error::KeyspaceDropped(_))));
    assert_eq!(db.get("default-key").unwrap(), None);
    // An iterator opened before keeps reading what it pinned.
    assert_eq!(iter.count(), 2000);
    // The files are gone once nothing reads them.
    assert_eq!(sst(dir.path()), 0);
    assert_eq!(db.keyspaces(), ["default"]);
    let again = db.drop_keyspace("tmp");
    assert!(matches!(again, Err(Error::InvalidArgument(_))), "{again:?}");
    assert!(matches!(
        db.drop_keyspace("default"),
        Err(Error::InvalidArgument(_))
    ));
    // Re-created: empty, and so after a reopen (the old id's WAL records
    // must not come back into it).
    let again = db.keyspace("tmp").unwrap();
    assert_eq!(again.iter().count(), 0);
    again.put("new", "1").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let again = db.keyspace("tmp").unwrap();
    assert_eq!(keys(again.iter()), ["new"]);
    assert!(db.verify().unwrap().is_ok());
    drop(again);
    db.close().unwrap();
    let offline = Db::verify_dir(dir.path()).unwrap();
    assert!(offline.is_ok(), "{:?}", offline.problems);
}

#[test]
fn transactions_span_keyspaces_and_conflict_per_keyspace() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let a = db.keyspace("a").unwrap();
    let b = db.keyspace("b").unwrap();
    a.put("k", "a0").unwrap();
    b.put("k", "b0").unwrap();

    // One commit writes both keyspaces and the default one, all or nothing.
    let mut tx = db.transaction();
    assert_eq!(tx.get_in(&a, "k").unwrap().as_deref(), Some(&b"a0"[..]));
    tx.put_in(&a, "k", "a1");
    tx.delete_in(&b, "k");
    tx.put("k", "d1");
    // The transaction reads its own writes, per keyspace.
    assert_eq!(tx.get_in(&a, "k").unwrap().as_deref(), Some(&b"a1"[..]));
    assert_eq!(tx.get_in(&b, "k").unwrap(), None);
    assert_eq!(tx.get("k").unwrap().as_deref(), Some(&b"d1"[..]));
    let seen: Vec<_> = tx.iter_in(&a).map(|r| r.unwrap().1).collect();
    assert_eq!(seen, ["a1"]);
    tx.commit().unwrap();
    assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"a1"[..]));
    assert_eq!(b.get("k").unwrap(), None);
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"d1"[..]));

    // The same key in another keyspace is another key: no conflict.
    let mut t1 = db.transaction();
    t1.put_in(&a, "x", "1");
    let mut t2 = db.transaction();
    t2.put_in(&b, "x", "2");
    t1.commit().unwrap();
    t2.commit().unwrap();

    // The same key in the same keyspace conflicts, and nothing of the
    // loser is written, in any keyspace.
    let mut t1 = db.transaction();
    t1.put_in(&a, "y", "1");
    let mut t2 = db.transaction();
    t2.put_in(&a, "y", "2");
    t2.put_in(&b, "side-effect", "2");
    t1.commit().unwrap();
    assert!(matches!(t2.commit(), Err(Error::Conflict { .. })));
    assert_eq!(b.get("side-effect").unwrap(), None);

    // get_for_update in a keyspace is checked too.
    let mut t1 = db.transaction();
    t1.get_for_update_in(&b, "guard").unwrap();
    t1.put("elsewhere", "1");
    b.put("guard", "changed").unwrap();
    assert!(matches!(t1.commit(), Err(Error::Conflict { .. })));

    // Serializable: a range read in one keyspace conflicts with a write
    // into that range of the same keyspace only.
    let serial = lightning_db::TransactionOptions::serializable();
    let mut t1 = db.transaction_opt(&serial);
    assert_eq!(t1.range_in(&a, "m".."n").count(), 0);
    t1.put("out", "1");
    b.put("m1", "other keyspace").unwrap();
    t1.commit().unwrap();
    let mut t1 = db.transaction_opt(&serial);
    assert_eq!(t1.range_in(&a, "m".."n").count(), 0);
    t1.put("out", "2");
    a.put("m1", "same keyspace").unwrap();
    assert!(matches!(t1.commit(), Err(Error::Conflict { .. })));

    // A transaction writing a keyspace dropped before its commit is
    // refused whole.
    let c = db.keyspace("c").unwrap();
    let mut t1 = db.transaction();
    t1.put_in(&c, "k", "v");
    t1.put("also", "v");
    db.drop_keyspace("c").unwrap();
    assert!(matches!(t1.commit(), Err(Error::KeyspaceDropped(_))));
    assert_eq!(db.get("also").unwrap(), None);

    // A keyspace of another database is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Db::open(other_dir.path(), common::fast_opts()).unwrap();
    let foreign = other.keyspace("a").unwrap();
    let mut t1 = db.transaction();
    t1.put_in(&foreign, "k", "v");
    assert!(matches!(t1.commit(), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        db.snapshot().get_in(&foreign, "k"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn keyspace_handles_are_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<lightning_db::Keyspace>();
}

#[test]
fn names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    assert!(matches!(db.keyspace(""), Err(Error::InvalidArgument(_))));
    let long = "x".repeat(256);
    assert!(matches!(db.keyspace(&long), Err(Error::InvalidArgument(_))));
    let max = "y".repeat(255);
    db.keyspace(&max).unwrap().put("k", "v").unwrap();
    // The default keyspace by name is the one `Db::put` writes.
    db.put("d", "1").unwrap();
    assert_eq!(
        db.keyspace("default").unwrap().get("d").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    db.keyspace("ünïcödé 🗝").unwrap().put("k", "v").unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    assert_eq!(
        db.keyspaces(),
        ["default".to_string(), max, "ünïcödé 🗝".into()]
    );
}

#[test]
fn keyspace_options_apply_to_their_keyspace_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts().write_buffer_size(8 << 20)).unwrap();
    let mut small = KeyspaceOptions::default();
    small.write_buffer_size = 64 << 10;
    let logs = db.keyspace_with("logs", &small).unwrap();
    for i in 0..3000 {
        logs.put(format!("k{i:05}"), [1u8; 100]).unwrap();
        db.put(format!("k{i:05}"), [1u8; 100]).unwrap();
    }
    db.wait_for_compactions().unwrap();
    // The small memtable of `logs` flushed on its own; the default
    // keyspace's 8 MiB one did not.
    let logs_files: u64 = (0..7)
        .map(|l| {
            logs.property_u64(&format!("lightning.num-files-at-level{l}"))
                .unwrap()
        })
        .sum();
    let default_files: u64 = (0..7)
        .map(|l| {
            db.property_u64(&format!("lightning.num-files-at-level{l}"))
                .unwrap()
        })
        .sum();
    assert!(logs_files > 0, "logs has {logs_files} files");
    assert_eq!(default_files, 0);
    assert_eq!(logs.iter().count(), 3000);
    assert_eq!(db.iter().count(), 3000);
}

#[test]
fn an_idle_keyspace_does_not_keep_old_wals() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let idle = db.keyspace("idle").unwrap();
    idle.put("once", "v").unwrap();
    // Only the default keyspace is written from now on: its memtable
    // switches WALs again and again.
    for i in 0..20_000 {
        db.put(format!("k{i:06}"), [3u8; 100]).unwrap();
    }
    db.flush().unwrap();
    let wals = common::files_with_suffix(dir.path(), ".log").len();
    assert!(wals <= 2, "{wals} WALs kept alive");
    db.close().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    assert_eq!(
        db.keyspace("idle").unwrap().get("once").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// A keyspace written once and then left alone keeps a non-empty memtable
/// in an old WAL: once the live WALs pass `max_total_wal_size` it is
/// flushed, without any call to `flush`, and the old WALs go.
#[test]
fn max_total_wal_size_flushes_the_keyspace_that_pins_old_wals() {
    let dir = tempfile::tempdir().unwrap();
    let opts = common::fast_opts().max_total_wal_size(512 << 10);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let rare = db.keyspace("rare").unwrap();
    rare.put("once", "v").unwrap();
    for i in 0..40_000 {
        db.put(format!("k{i:06}"), [3u8; 100]).unwrap();
    }
    db.wait_for_compactions().unwrap();
    let wals = common::files_with_suffix(dir.path(), ".log").len();
    // 64 KiB memtables: 512 KiB of WALs is about 8 of them.
    assert!(wals <= 12, "{wals} WALs kept alive");
    let rare_files: u64 = (0..7)
        .map(|l| {
            rare.property_u64(&format!("lightning.num-files-at-level{l}"))
                .unwrap()
        })
        .sum();
    assert_eq!(rare_files, 1, "the rarely written keyspace was flushed");
    drop(rare);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(
        db.keyspace("rare").unwrap().get("once").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

/// A keyspace created and never written: its empty memtable moves on
/// with every new WAL, and the flushes of the default keyspace record
/// that (manifest tag 13), so old WALs go without any flush of it.
#[test]
fn an_empty_keyspace_does_not_keep_old_wals() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    let empty = db.keyspace("empty").unwrap();
    for i in 0..20_000 {
        db.put(format!("k{i:06}"), [3u8; 100]).unwrap();
    }
    db.wait_for_compactions().unwrap();
    let wals = common::files_with_suffix(dir.path(), ".log").len();
    assert!(wals <= 3, "{wals} WALs kept alive");
    drop(empty);
    db.close().unwrap();
    // The log numbers recorded let the next open skip those WALs.
    let db = Db::open(dir.path(), common::fast_opts()).unwrap();
    assert_eq!(db.keyspace("empty").unwrap().iter().count(), 0);
    assert_eq!(db.iter().count(), 20_000);
}

#[test]
fn read_only_open_sees_keyspaces() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        db.keyspace("a").unwrap().put("k", "v").unwrap();
    }
    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    assert_eq!(ro.keyspaces(), ["default", "a"]);
    assert_eq!(
        ro.keyspace("a").unwrap().get("k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(matches!(ro.keyspace("new"), Err(Error::ReadOnly(_))));
    assert!(matches!(ro.drop_keyspace("a"), Err(Error::ReadOnly(_))));
}

#[test]
fn keyspaces_from_concurrent_threads() {
    let dir = tempfile::tempdir().unwrap();
    let db = std::sync::Arc::new(Db::open(dir.path(), common::fast_opts()).unwrap());
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = &db;
            s.spawn(move || {
                for round in 0..5 {
                    let name = format!("ks{}", (t + round) % 3);
                    let ks = db.keyspace(&name).unwrap();
                    for i in 0..500 {
                        let mut b = WriteBatch::new();
                        b.put_in(&ks, format!("t{t}-{i}"), "v");
                        b.put(format!("t{t}-{i}"), &name);
                        match db.write(b) {
                            Ok(()) | Err(Error::KeyspaceDropped(_)) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    if t == 0 && round == 2 {
                        db.drop_keyspace("ks1").unwrap();
                    }
                }
            });
        }
    });
    for name in db.keyspaces() {
        let ks = db.keyspace(&name).unwrap();
        for r in ks.iter() {
            r.unwrap();
        }
    }
    assert!(db.verify().unwrap().is_ok());
}

// ---------------------------------------------------------------------
// Model test

const NAMES: [&str; 4] = ["default", "a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Vec<u8>, Vec<u8>),
    Delete(usize, Vec<u8>),
    Batch(Vec<(usize, Option<Vec<u8>>, Vec<u8>)>),
    DeleteRange(usize, Vec<u8>, Vec<u8>),
    Get(usize, Vec<u8>),
    Scan(usize, bool),
    Snapshot,
    SnapshotScan(usize, usize, bool),
    Drop(usize),
    Flush,
    Compact(usize),
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0u8..6, 0..3)
}

fn ks() -> impl Strategy<Value = usize> {
    0usize..4
}

fn op() -> impl Strategy<Value = Op> {
    let value = proptest::collection::vec(any::<u8>(), 0..30);
    prop_oneof![
        20 => (ks(), key(), value.clone()).prop_map(|(s, k, v)| Op::Put(s, k, v)),
        5 => (ks(), key()).prop_map(|(s, k)| Op::Delete(s, k)),
        6 => proptest::collection::vec((ks(), proptest::option::of(value), key()), 1..6)
            .prop_map(Op::Batch),
        2 => (ks(), key(), key()).prop_map(|(s, a, b)| Op::DeleteRange(s, a, b)),
        10 => (ks(), key()).prop_map(|(s, k)| Op::Get(s, k)),
        4 => (ks(), any::<bool>()).prop_map(|(s, r)| Op::Scan(s, r)),
        2 => Just(Op::Snapshot),
        3 => (any::<usize>(), ks(), any::<bool>()).prop_map(|(i, s, r)| Op::SnapshotScan(i, s, r)),
        2 => (1usize..4).prop_map(Op::Drop),
        2 => Just(Op::Flush),
        1 => ks().prop_map(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
/// Keyspace index -> contents; absent = dropped (or never created).
type Model = BTreeMap<usize, Tree>;

fn model_opts() -> Options {
    let mut ks = KeyspaceOptions::default();
    ks.write_buffer_size = 64 << 10;
    ks.block_size = 256;
    let mut o = common::churn_opts().block_size(512);
    o.keyspaces.insert("b".into(), ks);
    o
}

fn contents(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Some(Db::open(dir.path(), model_opts()).unwrap());
    let mut model: Model = BTreeMap::from([(0, Tree::new())]);
    let mut snaps: Vec<(lightning_db::Snapshot, Model)> = Vec::new();
    for op in ops {
        let d = db.as_ref().unwrap();
        // Every keyspace an operation names exists from then on.
        let handle = |model: &mut Model, i: usize| {
            model.entry(i).or_default();
            d.keyspace(NAMES[i]).unwrap()
        };
        match op {
            Op::Put(i, k, v) => {
                handle(&mut model, i).put(&k, &v).unwrap();
                model.get_mut(&i).unwrap().insert(k, v);
            }
            Op::Delete(i, k) => {
                handle(&mut model, i).delete(&k).unwrap();
                model.get_mut(&i).unwrap().remove(&k);
            }
            Op::Batch(items) => {
                let mut b = WriteBatch::new();
                for (i, v, k) in items {
                    let h = handle(&mut model, i);
                    let m = model.get_mut(&i).unwrap();
                    match v {
                        Some(v) => {
                            b.put_in(&h, &k, &v);
                            m.insert(k, v);
                        }
                        None => {
                            b.delete_in(&h, &k);
                            m.remove(&k);
                        }
                    }
                }
                d.write(b).unwrap();
            }
            Op::DeleteRange(i, a, b) => {
                let h = handle(&mut model, i);
                h.delete_range(a.clone()..b.clone()).unwrap();
                if a < b {
                    model
                        .get_mut(&i)
                        .unwrap()
                        .retain(|k, _| !(k >= &a && k < &b));
                }
            }
            Op::Get(i, k) => {
                let h = handle(&mut model, i);
                let got = h.get(&k).unwrap().map(|v| v.to_vec());
                prop_assert_eq!(got, model[&i].get(&k).cloned());
            }
            Op::Scan(i, rev) => {
                let h = handle(&mut model, i);
                let mut want: Vec<_> = model[&i].clone().into_iter().collect();
                let got = if rev {
                    want.reverse();
                    contents(
                        h.range::<Vec<u8>, _>((
                            Bound::<Vec<u8>>::Unbounded,
                            Bound::<Vec<u8>>::Unbounded,
                        ))
                        .rev(),
                    )
                } else {
                    contents(h.iter())
                };
                prop_assert_eq!(got, want);
            }
            Op::Snapshot => snaps.push((d.snapshot(), model.clone())),
            Op::SnapshotScan(n, i, rev) => {
                if !snaps.is_empty() {
                    let (s, m) = &snaps[n % snaps.len()];
                    // Only keyspaces that still exist can be named.
                    if let (Some(want), Some(_)) = (m.get(&i), model.get(&i)) {
                        let h = d.keyspace(NAMES[i]).unwrap();
                        let mut want: Vec<_> = want.clone().into_iter().collect();
                        let got = if rev {
                            want.reverse();
                            contents(s.iter_in(&h).rev())
                        } else {
                            contents(s.iter_in(&h))
                        };
                        prop_assert_eq!(got, want);
                    }
                }
            }
            Op::Drop(i) => {
                if model.remove(&i).is_some() {
                    d.drop_keyspace(NAMES[i]).unwrap();
                    // A snapshot's view of a dropped keyspace cannot be
                    // named any more (a new one of the name is another).
                    for (_, m) in &mut snaps {
                        m.remove(&i);
                    }
                }
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact(i) => {
                handle(&mut model, i)
                    .compact_range::<Vec<u8>, _>(..)
                    .unwrap();
            }
            Op::Reopen => {
                snaps.clear();
                db.take().unwrap().close().unwrap();
                db = Some(Db::open(dir.path(), model_opts()).unwrap());
            }
        }
    }
    let d = db.take().unwrap();
    drop(snaps);
    d.close().unwrap();
    let d = Db::open(dir.path(), model_opts()).unwrap();
    let names: Vec<String> = model.keys().map(|&i| NAMES[i].to_string()).collect();
    let mut got_names = d.keyspaces();
    got_names.sort();
    let mut want_names = names.clone();
    want_names.sort();
    prop_assert_eq!(got_names, want_names);
    for (i, m) in &model {
        let h = d.keyspace(NAMES[*i]).unwrap();
        prop_assert_eq!(
            contents(h.iter()),
            m.clone().into_iter().collect::<Vec<_>>()
        );
    }
    let report = d.verify().unwrap();
    prop_assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_btreemap_per_keyspace(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops)?;
    }
}
