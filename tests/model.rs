//! Model-based test: random sequences of writes, reads, scans, snapshots,
//! flushes and reopens, checked step by step against a `BTreeMap`.
//!
//! Why it matters: this is the broadest check that every read path
//! (memtables, frozen memtables, level-0 files, recovery) agrees with the
//! simplest possible definition of a key-value store.
//!
//! With a TTL (issue 20) the database runs on a `ManualClock` that the
//! sequence advances (`Advance`); the model keeps each key's write time
//! and hides keys whose time plus the TTL has passed, and merges are
//! refused (a keyspace with a TTL takes none; batch merges become puts).
//! Ingested files (`SstWriter` + `Db::ingest`, issue 21) apply like a
//! batch; their values carry no write time and never expire.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use std::sync::Arc;
use std::time::Duration;

use lightning_db::{AppendOperator, Db, ManualClock, Options, WriteBatch};
use proptest::prelude::*;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Merge(Vec<u8>, Vec<u8>),
    Batch(Vec<BatchItem>),
    DeleteRange(Option<(Vec<u8>, bool)>, Option<(Vec<u8>, bool)>),
    DeletePrefix(Vec<u8>),
    Get(Vec<u8>),
    MultiGet(Vec<Vec<u8>>),
    /// `first_key_value`, `last_key_value` and `contains_key`.
    Ends(Vec<u8>),
    Range(Option<(Vec<u8>, bool)>, Option<(Vec<u8>, bool)>, bool),
    Prefix(Vec<u8>, bool),
    Snapshot,
    SnapshotGet(usize, Vec<u8>),
    SnapshotScan(usize, bool),
    Flush,
    CompactRange(Option<Vec<u8>>, Option<Vec<u8>>),
    Reopen,
    /// Moves the clock forward by this many milliseconds (TTL runs).
    Advance(u16),
    /// Writes these puts (`Some`) and deletes with an `SstWriter` and
    /// ingests the file (issue 21).
    Ingest(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

#[derive(Debug, Clone)]
enum BatchItem {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Merge(Vec<u8>, Vec<u8>),
    DeleteRange(Option<(Vec<u8>, bool)>, Option<(Vec<u8>, bool)>),
}

fn batch_item() -> impl Strategy<Value = BatchItem> {
    prop_oneof![
        6 => (key(), value()).prop_map(|(k, v)| BatchItem::Put(k, v)),
        3 => key().prop_map(BatchItem::Delete),
        2 => (key(), value()).prop_map(|(k, v)| BatchItem::Merge(k, v)),
        1 => (bound(), bound()).prop_map(|(a, b)| BatchItem::DeleteRange(a, b)),
    ]
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(0u8..4, 0..4),
        1 => proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => (0usize..3000).prop_map(|n| vec![7u8; n]),
    ]
}

fn bound() -> impl Strategy<Value = Option<(Vec<u8>, bool)>> {
    proptest::option::of((key(), any::<bool>()))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        6 => key().prop_map(Op::Delete),
        6 => (key(), value()).prop_map(|(k, v)| Op::Merge(k, v)),
        4 => proptest::collection::vec(batch_item(), 0..6).prop_map(Op::Batch),
        2 => (bound(), bound()).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        1 => proptest::collection::vec(0u8..4, 0..3).prop_map(Op::DeletePrefix),
        10 => key().prop_map(Op::Get),
        3 => proptest::collection::vec(key(), 0..12).prop_map(Op::MultiGet),
        1 => key().prop_map(Op::Ends),
        4 => (bound(), bound(), any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        2 => (proptest::collection::vec(0u8..4, 0..3), any::<bool>()).prop_map(|(p, r)| Op::Prefix(p, r)),
        2 => Just(Op::Snapshot),
        3 => (any::<usize>(), key()).prop_map(|(i, k)| Op::SnapshotGet(i, k)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, r)| Op::SnapshotScan(i, r)),
        2 => Just(Op::Flush),
        1 => (proptest::option::of(key()), proptest::option::of(key())).prop_map(|(a, b)| Op::CompactRange(a, b)),
        1 => Just(Op::Reopen),
        3 => (0u16..700).prop_map(Op::Advance),
        2 => proptest::collection::vec((key(), proptest::option::of(value())), 1..20).prop_map(Op::Ingest),
    ]
}

fn to_bound(b: &Option<(Vec<u8>, bool)>) -> Bound<Vec<u8>> {
    match b {
        None => Bound::Unbounded,
        Some((k, true)) => Bound::Included(k.clone()),
        Some((k, false)) => Bound::Excluded(k.clone()),
    }
}

fn model_range(m: &Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let empty = match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    };
    if empty {
        return vec![];
    }
    m.range((lo.clone(), hi.clone()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn model_delete_range(m: &mut Model, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) {
    for (k, _) in model_range(m, lo, hi) {
        m.remove(&k);
    }
}

fn collect(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.expect("iteration failed");
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

/// The model of a merge with the test's operator, `AppendOperator::new(",")`.
fn model_merge(m: &mut Model, k: Vec<u8>, operand: Vec<u8>) {
    let v = match m.remove(&k) {
        Some(mut old) => {
            old.push(b',');
            old.extend_from_slice(&operand);
            old
        }
        None => operand,
    };
    m.insert(k, v);
}

/// The TTL of TTL runs; `Advance` moves the clock by up to 0.7 of it.
const TTL: Duration = Duration::from_millis(1000);

/// The keys of `m` still live at `now` under [`TTL`] (all without one).
fn live(m: &Model, stamps: &Stamps, now: u64, ttl: bool) -> Model {
    if !ttl {
        return m.clone();
    }
    let ttl = TTL.as_millis() as u64;
    m.iter()
        .filter(|(k, _)| stamps.get(*k).is_some_and(|&w| w + ttl > now))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Each model key's write time (TTL runs).
type Stamps = BTreeMap<Vec<u8>, u64>;

fn options(blobs: bool) -> Options {
    // A tiny tree, so that flushes trigger compactions often; a small row
    // cache (issue 17), so that keys read twice are served from it; with
    // `blobs`, values of 20 bytes and more go to blob files and garbage
    // collection drains the older half of them (issue 18).
    common::churn_opts()
        .block_size(512)
        .index_page_size(256)
        .row_cache_size(64 << 10)
        .merge_operator(Some(std::sync::Arc::new(AppendOperator::new(","))))
        // Prefix scans of 2 bytes and more skip files by prefix filter.
        .prefix_extractor(Some(std::sync::Arc::new(lightning_db::FixedPrefix::new(2))))
        .enable_blob_files(blobs)
        .min_blob_size(20)
        .blob_file_size(1 << 20)
        .enable_blob_garbage_collection(true)
        .blob_garbage_collection_age_cutoff(0.5)
}

fn run(ops: Vec<Op>, blobs: bool, ttl: bool) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let opts = || {
        let o = options(blobs).clock(clock.clone() as Arc<dyn lightning_db::Clock>);
        if ttl {
            o.ttl(Some(TTL))
        } else {
            o
        }
    };
    let mut db = Some(Db::open(dir.path(), opts()).unwrap());
    let mut model = Model::new();
    // Write times, kept for the keys of `model` (TTL runs).
    let mut stamps = Stamps::new();
    let mut snaps: Vec<(lightning_db::Snapshot, Model, Stamps)> = Vec::new();
    // One buffer for every `get_into`: what a read leaves in it must not
    // leak into the next.
    let mut buf: Vec<u8> = b"left over".to_vec();
    for op in ops {
        let d = db.as_ref().unwrap();
        let now = lightning_db::Clock::now_millis(&*clock);
        // What reads must see now.
        let view = |m: &Model, s: &Stamps| live(m, s, now, ttl);
        match op {
            Op::Put(k, v) => {
                d.put(&k, &v).unwrap();
                stamps.insert(k.clone(), now);
                model.insert(k, v);
            }
            Op::Delete(k) => {
                d.delete(&k).unwrap();
                model.remove(&k);
            }
            Op::Merge(k, v) if ttl => {
                prop_assert!(d.merge(&k, &v).is_err(), "a TTL keyspace took a merge");
            }
            Op::Merge(k, v) => {
                d.merge(&k, &v).unwrap();
                model_merge(&mut model, k, v);
            }
            Op::Batch(ops) => {
                let mut b = WriteBatch::new();
                for item in ops {
                    match item {
                        BatchItem::Put(k, v) => {
                            b.put(&k, &v);
                            stamps.insert(k.clone(), now);
                            model.insert(k, v);
                        }
                        BatchItem::Merge(k, v) if ttl => {
                            b.put(&k, &v);
                            stamps.insert(k.clone(), now);
                            model.insert(k, v);
                        }
                        BatchItem::Delete(k) => {
                            b.delete(&k);
                            model.remove(&k);
                        }
                        BatchItem::Merge(k, v) => {
                            b.merge(&k, &v);
                            model_merge(&mut model, k, v);
                        }
                        BatchItem::DeleteRange(lo, hi) => {
                            let (lo, hi) = (to_bound(&lo), to_bound(&hi));
                            b.delete_range::<Vec<u8>>((lo.clone(), hi.clone()));
                            model_delete_range(&mut model, &lo, &hi);
                        }
                    }
                }
                d.write(b).unwrap();
            }
            Op::DeleteRange(lo, hi) => {
                let (lo, hi) = (to_bound(&lo), to_bound(&hi));
                d.delete_range::<Vec<u8>>((lo.clone(), hi.clone())).unwrap();
                model_delete_range(&mut model, &lo, &hi);
            }
            Op::DeletePrefix(p) => {
                d.delete_prefix(&p).unwrap();
                model.retain(|k, _| !k.starts_with(&p));
            }
            Op::Get(k) => {
                let want = view(&model, &stamps).get(&k).cloned();
                let got = d.get(&k).unwrap().map(|v| v.to_vec());
                prop_assert_eq!(&got, &want);
                // `get_into` twice: the second may be a row-cache hit.
                for _ in 0..2 {
                    let found = d.get_into(&k, &mut buf).unwrap();
                    prop_assert_eq!(found.then(|| buf.clone()), want.clone());
                    prop_assert!(found || buf.is_empty());
                }
            }
            Op::MultiGet(keys) => {
                // Both ways of reading a batch: in stages or key by key.
                lightning_db::testing::set_multi_get_reads_ahead(Some(keys.len() % 2 == 0));
                let got: Vec<Option<Vec<u8>>> = d
                    .multi_get(&keys)
                    .into_iter()
                    .map(|r| r.unwrap().map(|v| v.to_vec()))
                    .collect();
                let m = view(&model, &stamps);
                let want: Vec<Option<Vec<u8>>> = keys.iter().map(|k| m.get(k).cloned()).collect();
                prop_assert_eq!(got, want);
            }
            Op::Ends(k) => {
                let pair = |p: Option<(lightning_db::Bytes, lightning_db::Bytes)>| {
                    p.map(|(k, v)| (k.to_vec(), v.to_vec()))
                };
                let m = view(&model, &stamps);
                let first = m.iter().next().map(|(k, v)| (k.clone(), v.clone()));
                let last = m.iter().next_back().map(|(k, v)| (k.clone(), v.clone()));
                prop_assert_eq!(pair(d.first_key_value().unwrap()), first);
                prop_assert_eq!(pair(d.last_key_value().unwrap()), last);
                prop_assert_eq!(d.contains_key(&k).unwrap(), m.contains_key(&k));
            }
            Op::Range(a, b, rev) => {
                let (lo, hi) = (to_bound(&a), to_bound(&b));
                let mut want = model_range(&view(&model, &stamps), &lo, &hi);
                let got = if rev {
                    want.reverse();
                    collect(d.range::<Vec<u8>, _>((lo, hi)).rev())
                } else {
                    collect(d.range::<Vec<u8>, _>((lo, hi)))
                };
                prop_assert_eq!(got, want);
            }
            Op::Prefix(p, rev) => {
                let mut want: Vec<_> = view(&model, &stamps)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with(&p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let got = if rev {
                    want.reverse();
                    collect(d.prefix(&p).rev())
                } else {
                    collect(d.prefix(&p))
                };
                prop_assert_eq!(got, want);
            }
            // A snapshot reads its versions, expired by the clock now.
            Op::Snapshot => snaps.push((d.snapshot(), model.clone(), stamps.clone())),
            Op::SnapshotGet(i, k) => {
                if !snaps.is_empty() {
                    let (s, m, st) = &snaps[i % snaps.len()];
                    let got = s.get(&k).unwrap().map(|v| v.to_vec());
                    let want = view(m, st).get(&k).cloned();
                    prop_assert_eq!(got, want.clone());
                    let found = s.get_into(&k, &mut buf).unwrap();
                    prop_assert_eq!(found.then(|| buf.clone()), want);
                }
            }
            Op::SnapshotScan(i, rev) => {
                if !snaps.is_empty() {
                    let (s, m, st) = &snaps[i % snaps.len()];
                    let mut want: Vec<_> = view(m, st).into_iter().collect();
                    let got = if rev {
                        want.reverse();
                        collect(s.iter().rev())
                    } else {
                        collect(s.iter())
                    };
                    prop_assert_eq!(got, want);
                }
            }
            Op::Flush => d.flush().unwrap(),
            Op::CompactRange(a, b) => match (a, b) {
                (Some(a), Some(b)) => d.compact_range(a..=b).unwrap(),
                (Some(a), None) => d.compact_range(a..).unwrap(),
                (None, Some(b)) => d.compact_range(..b).unwrap(),
                (None, None) => d.compact_range::<Vec<u8>, _>(..).unwrap(),
            },
            Op::Reopen => {
                snaps.clear();
                db.take().unwrap().close().unwrap();
                db = Some(Db::open(dir.path(), opts()).unwrap());
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
            Op::Ingest(entries) => {
                // Sorted, one entry per key (the last one given wins).
                let sorted: BTreeMap<Vec<u8>, Option<Vec<u8>>> = entries.into_iter().collect();
                let path = dir.path().join("ingest.sst");
                let mut w = lightning_db::SstWriter::create(&path, &opts()).unwrap();
                for (k, v) in &sorted {
                    match v {
                        Some(v) => w.put(k, v).unwrap(),
                        None => w.delete(k).unwrap(),
                    }
                }
                w.finish().unwrap();
                d.ingest(
                    &[&path],
                    &lightning_db::IngestOptions::default().move_files(true),
                )
                .unwrap();
                for (k, v) in sorted {
                    match v {
                        Some(v) => {
                            // Ingested values carry no write time: they
                            // never expire.
                            stamps.insert(k.clone(), u64::MAX / 2);
                            model.insert(k, v);
                        }
                        None => {
                            model.remove(&k);
                        }
                    }
                }
            }
        }
        // Keys a write removed from the model lose their time.
        stamps.retain(|k, _| model.contains_key(k));
    }
    // Final full check, then once more after a reopen.
    let d = db.take().unwrap();
    let now = lightning_db::Clock::now_millis(&*clock);
    let all: Vec<_> = live(&model, &stamps, now, ttl).into_iter().collect();
    prop_assert_eq!(collect(d.iter()), all.clone());
    drop(snaps);
    d.close().unwrap();
    let d = Db::open(dir.path(), opts()).unwrap();
    prop_assert_eq!(collect(d.iter()), all);
    // Every file sound, and (with blob files) the tables reference exactly
    // the blob records the manifest counts as live.
    let report = d.verify().unwrap();
    prop_assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn matches_btreemap_model(ops in proptest::collection::vec(op(), 1..250), blobs in any::<bool>()) {
        run(ops, blobs, false)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With a TTL on a clock the sequence advances.
    #[test]
    fn matches_btreemap_model_with_a_ttl(ops in proptest::collection::vec(op(), 1..250), blobs in any::<bool>()) {
        run(ops, blobs, true)?;
    }
}
