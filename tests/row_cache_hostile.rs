//! Adversarial tests of the row cache (`Options::row_cache_size`): every
//! way a key's value can change, with the cache on, against the same
//! operations on a database with the cache off (or the value expected).
//! Each key is read several times in a row (a key is admitted on its
//! second miss), and each test asserts that the cache did serve reads.
//!
//! Two of them found bugs, fixed since: the row cache was not invalidated
//! when `Db::keyspace_with("default", ..)` changed the default keyspace's
//! options at run time (a TTL switched on hid a compaction filter's
//! removals from the cache; a new merge operator was not applied to cached
//! merge results).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{fast_opts, no_compaction};
use std::sync::atomic::AtomicU64;

use lightning_db::{
    AppendOperator, Clock, CompactionFilter, Db, Decision, IngestOptions, KeyspaceOptions,
    ManualClock, MergeOperator, Options, SstWriter, U64AddOperator, WriteBatch,
};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;

fn s(v: Option<lightning_db::Bytes>) -> Option<Vec<u8>> {
    v.map(|b| b.to_vec())
}

/// Reads `k` `n` times, asserting each read is `want`.
fn read_n(db: &Db, k: &[u8], want: Option<&[u8]>, n: usize, what: &str) {
    for i in 0..n {
        assert_eq!(
            s(db.get(k).unwrap()).as_deref(),
            want,
            "{what}: read {i} of {:?}",
            String::from_utf8_lossy(k)
        );
    }
}

/// Reads `k` until the cache serves it (asserting every read is `want`);
/// fails if it never does.
fn warm(db: &Db, k: &[u8], want: Option<&[u8]>) {
    let before = db.stats().row_cache.hits;
    read_n(db, k, want, 4, "warming");
    assert!(
        db.stats().row_cache.hits > before,
        "the cache never served {:?}: nothing would be tested",
        String::from_utf8_lossy(k)
    );
}

/// Runs `run` (a scenario's reads, given a row cache size) without a row
/// cache and with one: the reads must be the same.
fn same_with_and_without_cache(run: impl Fn(usize) -> Vec<Option<Vec<u8>>>) {
    let without = run(0);
    let with = run(1 << 20);
    assert_eq!(
        with, without,
        "reads with the row cache differ from reads without it"
    );
}

/// A filter removing every key starting with `x`, once armed.
struct RemoveX(Arc<AtomicBool>);

impl CompactionFilter for RemoveX {
    fn name(&self) -> &str {
        "remove-x"
    }
    fn filter(&self, _level: usize, key: &[u8], _value: &[u8]) -> Decision {
        if self.0.load(Ordering::SeqCst) && key.starts_with(b"x") {
            Decision::Remove
        } else {
            Decision::Keep
        }
    }
}

/// A value cached while the default keyspace had no TTL, removed by a
/// compaction filter while it had one, must not come back from the cache
/// once the TTL is switched off again: every read of `x` returns `None`
/// (as with the cache off), whatever the TTL setting.
///
/// It did come back: the cache is not served for a tree with a TTL, and
/// such a tree's compactions did not invalidate it, so the entries from
/// before the TTL outlived the filter's removal. Now both the option
/// change and the compaction invalidate it (`DbInner::reconfigure`,
/// `DbInner::row_cache_of`).
#[test]
fn a_filter_removal_while_a_ttl_is_on_is_not_undone_when_the_ttl_goes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let armed = Arc::new(AtomicBool::new(false));
    let filter = Arc::new(RemoveX(Arc::clone(&armed))) as Arc<dyn CompactionFilter>;
    let opts = no_compaction(fast_opts())
        .row_cache_size(1 << 20)
        .clock(clock.clone() as Arc<dyn Clock>)
        .compaction_filter(Some(Arc::clone(&filter)));
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    db.put("x1", "old").unwrap();
    db.flush().unwrap();
    warm(&db, b"x1", Some(b"old"));

    // TTL on (the cache is bypassed), the filter removes x1.
    let ttl_on = KeyspaceOptions::from_options(&opts).ttl(Some(Duration::from_secs(3600)));
    db.keyspace_with("default", &ttl_on).unwrap();
    armed.store(true, Ordering::SeqCst);
    db.compact_range::<&[u8], _>(..).unwrap();
    read_n(&db, b"x1", None, 3, "TTL on, after the filter");

    // TTL off again: the filter's removal must still be read.
    let ttl_off = KeyspaceOptions::from_options(&opts).ttl(None);
    db.keyspace_with("default", &ttl_off).unwrap();
    read_n(&db, b"x1", None, 3, "TTL off again, after the filter");
}

/// A value cached while the TTL was off, expired while the TTL was on
/// again and compacted, then the TTL off again: reads must not depend on
/// the cache (this compaction keeps the value, so both read it; the
/// filter variant above is where they differ).
#[test]
fn a_ttl_drop_is_read_after_the_ttl_is_switched_off() {
    let run = |row_cache: usize| -> Vec<Option<Vec<u8>>> {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let opts = no_compaction(fast_opts())
            .row_cache_size(row_cache)
            .clock(clock.clone() as Arc<dyn Clock>);
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let ttl_on = KeyspaceOptions::from_options(&opts).ttl(Some(Duration::from_secs(60)));
        let ttl_off = KeyspaceOptions::from_options(&opts).ttl(None);
        let mut out = Vec::new();
        // A timed value (written under a TTL), then read without one.
        db.keyspace_with("default", &ttl_on).unwrap();
        db.put("k", "timed").unwrap();
        db.flush().unwrap();
        db.keyspace_with("default", &ttl_off).unwrap();
        for _ in 0..4 {
            out.push(s(db.get("k").unwrap()));
        }
        if row_cache > 0 {
            assert!(db.stats().row_cache.hits > 0, "nothing cached");
        }
        // TTL on again: it expires and a compaction drops it.
        db.keyspace_with("default", &ttl_on).unwrap();
        clock.advance(Duration::from_secs(120));
        out.push(s(db.get("k").unwrap()));
        db.compact_range::<&[u8], _>(..).unwrap();
        out.push(s(db.get("k").unwrap()));
        // TTL off: whatever a read returns, it must not depend on the cache.
        db.keyspace_with("default", &ttl_off).unwrap();
        for _ in 0..4 {
            out.push(s(db.get("k").unwrap()));
        }
        out
    };
    same_with_and_without_cache(run);
}

/// Sums, then a different operator: a read after `keyspace_with` replaced
/// the merge operator of the default keyspace folds the operands with the
/// new one (`Tree::merge_operator` is read at every read), with the cache
/// off. With the cache on, a result folded with the old operator must not
/// be served (it was, until option changes invalidated the cache:
/// `DbInner::reconfigure`).
#[test]
fn a_merge_operator_replaced_at_run_time_is_applied_as_with_the_cache_off() {
    let run = |row_cache: usize| -> Vec<Option<Vec<u8>>> {
        let dir = tempfile::tempdir().unwrap();
        let opts = no_compaction(fast_opts())
            .row_cache_size(row_cache)
            .merge_operator(Some(Arc::new(U64AddOperator) as Arc<dyn MergeOperator>));
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        db.merge("m", 1u64.to_le_bytes()).unwrap();
        db.merge("m", 2u64.to_le_bytes()).unwrap();
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(s(db.get("m").unwrap()));
        }
        if row_cache > 0 {
            assert!(db.stats().row_cache.hits > 0, "nothing cached");
        }
        let append = KeyspaceOptions::from_options(&opts)
            .merge_operator(Some(
                Arc::new(AppendOperator::new("+")) as Arc<dyn MergeOperator>
            ));
        db.keyspace_with("default", &append).unwrap();
        for _ in 0..4 {
            out.push(s(db.get("m").unwrap()));
        }
        out
    };
    same_with_and_without_cache(run);
}

// ---------------------------------------------------------------------
// A model-based test: random mixes of every kind of change, with the
// cache on, against the same steps on a database with the cache off.
// ---------------------------------------------------------------------

/// Keys: `f*` are put, deleted and filtered (never merged: a filter does
/// not see operands); `m*` are put, deleted and merged.
const KEYS: [&str; 10] = ["f0", "f1", "f2", "f3", "f4", "m0", "m1", "m2", "m3", "m4"];

/// The filter of the model test: on `f*` keys, removes odd values and sets
/// bit 40 of even ones (idempotent, so how many compactions rewrite a key
/// does not matter).
struct OddOutEvenTagged;

const TAG: u64 = 1 << 40;

impl CompactionFilter for OddOutEvenTagged {
    fn name(&self) -> &str {
        "odd-out-even-tagged"
    }
    fn filter(&self, _level: usize, key: &[u8], value: &[u8]) -> Decision {
        if !key.starts_with(b"f") {
            return Decision::Keep;
        }
        let v = u64::from_le_bytes(value.try_into().unwrap());
        if v % 2 == 1 {
            Decision::Remove
        } else if v & TAG == 0 {
            Decision::ChangeValue((v | TAG).to_le_bytes().to_vec())
        } else {
            Decision::Keep
        }
    }
}

#[derive(Debug, Clone)]
enum W {
    Put(usize, u64),
    Delete(usize),
    /// On an `m*` key only (the index is mapped into them).
    Merge(usize, u64),
    /// `[KEYS[a], KEYS[b])`.
    DeleteRange(usize, usize),
    /// `f`, `m`, `f1`, ...
    DeletePrefix(&'static str),
}

#[derive(Debug, Clone)]
enum Op {
    One(W),
    Batch(Vec<W>),
    /// Through `transaction_with` (range deletions are not transactional:
    /// mapped to deletes).
    Txn(Vec<W>),
    /// A write to keyspace `ks` with the same key (must not touch the
    /// default keyspace), then `drop_keyspace` when the flag is set.
    OtherKeyspace(usize, u64, bool),
    /// Takes a snapshot, applies the write, reads every key through the
    /// snapshot (the model before) and the database (after).
    UnderSnapshot(W),
    /// Ingests an `SstWriter` file: `(key, Some(v) put | None delete)`.
    Ingest(Vec<(usize, Option<u64>)>),
    Flush,
    /// A full `compact_range`: the filter runs on every `f*` key.
    Compact,
    Reopen,
}

fn w_strategy() -> impl Strategy<Value = W> {
    prop_oneof![
        4 => (0..KEYS.len(), 0..6u64).prop_map(|(k, v)| W::Put(k, v)),
        2 => (0..KEYS.len()).prop_map(W::Delete),
        3 => (0..5usize, 1..4u64).prop_map(|(k, v)| W::Merge(k, v)),
        1 => (0..KEYS.len(), 0..KEYS.len()).prop_map(|(a, b)| W::DeleteRange(a.min(b), a.max(b))),
        1 => prop::sample::select(vec!["f", "m", "f1", "m3", "x"]).prop_map(W::DeletePrefix),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => w_strategy().prop_map(Op::One),
        2 => prop::collection::vec(w_strategy(), 1..4).prop_map(Op::Batch),
        2 => prop::collection::vec(w_strategy(), 1..4).prop_map(Op::Txn),
        1 => (0..KEYS.len(), 0..6u64, any::<bool>()).prop_map(|(k, v, d)| Op::OtherKeyspace(k, v, d)),
        2 => w_strategy().prop_map(Op::UnderSnapshot),
        2 => prop::collection::btree_map(0..KEYS.len(), prop::option::of(0..6u64), 1..5)
            .prop_map(|m| Op::Ingest(m.into_iter().collect())),
        2 => Just(Op::Flush),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn mkey(k: usize) -> &'static str {
    KEYS[5 + k % 5]
}

fn apply_batch(b: &mut WriteBatch, w: &W) {
    match *w {
        W::Put(k, v) => b.put(KEYS[k], v.to_le_bytes()),
        W::Delete(k) => b.delete(KEYS[k]),
        W::Merge(k, n) => b.merge(mkey(k), n.to_le_bytes()),
        W::DeleteRange(a, c) => b.delete_range(KEYS[a]..KEYS[c]),
        W::DeletePrefix(p) => b.delete_prefix(p),
    }
}

fn apply_db(db: &Db, w: &W) {
    match *w {
        W::Put(k, v) => db.put(KEYS[k], v.to_le_bytes()).unwrap(),
        W::Delete(k) => db.delete(KEYS[k]).unwrap(),
        W::Merge(k, n) => db.merge(mkey(k), n.to_le_bytes()).unwrap(),
        W::DeleteRange(a, b) => db.delete_range(KEYS[a]..KEYS[b]).unwrap(),
        W::DeletePrefix(p) => db.delete_prefix(p).unwrap(),
    }
}

/// `w` as a transaction can write it (range deletions become deletes of
/// the model's keys in the range).
fn txn_writes(present: &[bool], w: &W) -> Vec<W> {
    match *w {
        W::DeleteRange(a, b) => (a..b).map(W::Delete).collect(),
        W::DeletePrefix(p) => KEYS
            .iter()
            .enumerate()
            .filter(|(i, k)| k.starts_with(p) && present[*i])
            .map(|(i, _)| W::Delete(i))
            .collect(),
        ref w => vec![w.clone()],
    }
}

fn model_opts(filter: &Arc<dyn CompactionFilter>, row_cache: usize) -> Options {
    no_compaction(fast_opts())
        .row_cache_size(row_cache)
        .merge_operator(Some(Arc::new(U64AddOperator) as Arc<dyn MergeOperator>))
        .compaction_filter(Some(Arc::clone(filter)))
}

fn as_u64(v: Option<lightning_db::Bytes>) -> Option<u64> {
    v.map(|b| u64::from_le_bytes(b[..].try_into().unwrap()))
}

/// Every key's value in `db` as read by `multi_get` (which does not use
/// the row cache).
fn read_all_uncached(db: &Db) -> Vec<Option<u64>> {
    db.multi_get(KEYS)
        .into_iter()
        .map(|r| as_u64(r.unwrap()))
        .collect()
}

/// Reads every key of `a` (row cache on) 3 times through `get` (cached
/// after the second) and compares with `b` (the same operations, cache
/// off), read through `get` and `multi_get`.
fn check_all(a: &Db, b: &Db, step: usize, op: &Op) -> std::result::Result<(), TestCaseError> {
    let want: Vec<Option<u64>> = KEYS.iter().map(|k| as_u64(b.get(k).unwrap())).collect();
    prop_assert_eq!(
        &read_all_uncached(b),
        &want,
        "step {}: the reference disagrees with itself",
        step
    );
    prop_assert_eq!(
        &read_all_uncached(a),
        &want,
        "step {} ({:?}): multi_get",
        step,
        op
    );
    for (k, want) in KEYS.iter().zip(&want) {
        for r in 0..3 {
            let got = as_u64(a.get(k).unwrap());
            prop_assert_eq!(
                got,
                *want,
                "step {} ({:?}): get {} (read {})",
                step,
                op,
                k,
                r
            );
        }
    }
    Ok(())
}

/// A transaction on `db` writing `writes` and reading every key after
/// them (its own writes over its snapshot, the snapshot read through the
/// cache when there is one).
fn txn(db: &Db, writes: &[W]) -> Vec<Option<u64>> {
    db.transaction_with(|tx| {
        for w in writes {
            match *w {
                W::Put(k, v) => tx.put(KEYS[k], v.to_le_bytes()),
                W::Delete(k) => tx.delete(KEYS[k]),
                W::Merge(k, n) => tx.merge(mkey(k), n.to_le_bytes()),
                _ => unreachable!(),
            }
        }
        KEYS.iter().map(|k| Ok(as_u64(tx.get(k)?))).collect()
    })
    .unwrap()
}

/// Applies `op` to `db` (`n`: the op's index, for file names).
fn apply_op(
    db: Db,
    dir: &std::path::Path,
    op: &Op,
    n: usize,
    row_cache: usize,
    filter: &Arc<dyn CompactionFilter>,
) -> (Db, Vec<Vec<Option<u64>>>) {
    let mut seen = Vec::new();
    let db = match op {
        Op::One(w) => {
            apply_db(&db, w);
            db
        }
        Op::Batch(ws) => {
            let mut b = WriteBatch::new();
            for w in ws {
                apply_batch(&mut b, w);
            }
            db.write(b).unwrap();
            db
        }
        Op::Txn(ws) => {
            let present: Vec<bool> = read_all_uncached(&db).iter().map(Option::is_some).collect();
            let writes: Vec<W> = ws.iter().flat_map(|w| txn_writes(&present, w)).collect();
            seen.push(txn(&db, &writes));
            db
        }
        Op::OtherKeyspace(k, v, drop) => {
            let ks = db.keyspace("ks").unwrap();
            ks.put(KEYS[*k], v.wrapping_add(100).to_le_bytes()).unwrap();
            ks.delete_range(KEYS[0]..KEYS[9]).unwrap();
            ks.put(KEYS[*k], v.wrapping_add(200).to_le_bytes()).unwrap();
            seen.push(vec![as_u64(ks.get(KEYS[*k]).unwrap())]);
            if *drop {
                db.drop_keyspace("ks").unwrap();
            }
            db
        }
        Op::UnderSnapshot(w) => {
            let snap = db.snapshot();
            apply_db(&db, w);
            for _ in 0..3 {
                seen.push(KEYS.iter().map(|k| as_u64(snap.get(k).unwrap())).collect());
                seen.push(KEYS.iter().map(|k| as_u64(db.get(k).unwrap())).collect());
            }
            drop(snap);
            db
        }
        Op::Ingest(entries) => {
            let path = dir.join(format!("in{n}.sst"));
            let mut w = SstWriter::create(&path, &Options::default()).unwrap();
            for (k, v) in entries {
                match v {
                    Some(v) => w.put(KEYS[*k], v.to_le_bytes()).unwrap(),
                    None => w.delete(KEYS[*k]).unwrap(),
                }
            }
            w.finish().unwrap();
            db.ingest(&[&path], &IngestOptions::default()).unwrap();
            db
        }
        Op::Flush => {
            db.flush().unwrap();
            db
        }
        Op::Compact => {
            db.compact_range::<&[u8], _>(..).unwrap();
            db
        }
        Op::Reopen => {
            db.close().unwrap();
            Db::open(dir.join("db"), model_opts(filter, row_cache)).unwrap()
        }
    };
    (db, seen)
}

/// Runs `ops` on a database with the row cache and one without, and
/// compares every read.
fn run_model(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let filter = Arc::new(OddOutEvenTagged) as Arc<dyn CompactionFilter>;
    let mut a = Db::open(da.path().join("db"), model_opts(&filter, 1 << 20)).unwrap();
    let mut b = Db::open(db_dir.path().join("db"), model_opts(&filter, 0)).unwrap();
    let mut hits = 0;
    for (step, op) in ops.iter().enumerate() {
        if matches!(op, Op::Reopen) {
            hits += a.stats().row_cache.hits;
        }
        let (a2, seen_a) = apply_op(a, da.path(), op, step, 1 << 20, &filter);
        let (b2, seen_b) = apply_op(b, db_dir.path(), op, step, 0, &filter);
        (a, b) = (a2, b2);
        prop_assert_eq!(
            seen_a,
            seen_b,
            "step {} ({:?}): reads inside the operation",
            step,
            op
        );
        check_all(&a, &b, step, op)?;
    }
    hits += a.stats().row_cache.hits;
    prop_assert!(hits > 0, "the cache never served a read");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn model_mix_of_every_change_with_the_row_cache(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run_model(ops)?;
    }
}

// ---------------------------------------------------------------------
// Concurrency: a counter changed by every kind of write, read by threads
// that check each read against what had completed before it began.
// ---------------------------------------------------------------------

/// One writer advances counter `c` by merges, puts, transactions, batches
/// and ingested files (each change publishes the new value in `done`
/// after it returns), with flushes, compactions, range deletions of other
/// keys and ingests of other keys (which raise the cache's range stamp)
/// in between, and a compaction filter that rewrites other keys (a
/// `begin_change` at every compaction). Readers load `done`, then read `c`
/// through the cache: the value must be at least `done` (not stale) and
/// never below their previous read (no going back).
#[test]
fn concurrent_readers_never_read_a_counter_older_than_a_completed_change() {
    const ROUNDS: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let filter = Arc::new(OddOutEvenTagged) as Arc<dyn CompactionFilter>;
    let mut opts = fast_opts()
        .row_cache_size(1 << 20)
        .merge_operator(Some(Arc::new(U64AddOperator) as Arc<dyn MergeOperator>))
        .compaction_filter(Some(filter));
    opts.compaction.level0_file_num_compaction_trigger = 2;
    let db = Arc::new(Db::open(dir.path().join("db"), opts).unwrap());
    db.put("c", 0u64.to_le_bytes()).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, done, stop) = (Arc::clone(&db), Arc::clone(&done), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut last, mut reads) = (0u64, 0u64);
                while !stop.load(Ordering::SeqCst) {
                    let floor = done.load(Ordering::SeqCst);
                    let v = as_u64(db.get("c").unwrap()).expect("c is never absent");
                    assert!(v >= floor, "stale: read {v} after {floor} completed");
                    assert!(v >= last, "went back: read {v} after reading {last}");
                    last = v;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let compactor = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                db.compact_range::<&[u8], _>(..).unwrap();
                std::thread::yield_now();
            }
        })
    };
    let hits0 = db.stats().row_cache.hits;
    let mut n = 0u64;
    for round in 0..ROUNDS {
        match round % 8 {
            0 | 1 => db.merge("c", 1u64.to_le_bytes()).unwrap(),
            2 => db.put("c", (n + 1).to_le_bytes()).unwrap(),
            3 => db
                .transaction_with(|tx| {
                    let v = as_u64(tx.get_for_update("c")?).unwrap();
                    tx.put("c", (v + 1).to_le_bytes());
                    Ok(())
                })
                .unwrap(),
            4 => {
                let mut b = WriteBatch::new();
                b.delete_range("f0".."f9");
                b.merge("c", 1u64.to_le_bytes());
                b.put(format!("f{}", round % 5), (round * 2).to_le_bytes());
                db.write(b).unwrap();
            }
            5 => {
                let path = dir.path().join(format!("c{round}.sst"));
                let mut w = SstWriter::create(&path, &Options::default()).unwrap();
                w.put("c", (n + 1).to_le_bytes()).unwrap();
                w.finish().unwrap();
                db.ingest(&[&path], &IngestOptions::default()).unwrap();
            }
            6 => {
                // Another key's ingest (a range stamp), and a flush.
                let path = dir.path().join(format!("o{round}.sst"));
                let mut w = SstWriter::create(&path, &Options::default()).unwrap();
                w.put(format!("o{round:05}"), round.to_le_bytes()).unwrap();
                w.finish().unwrap();
                db.ingest(&[&path], &IngestOptions::default()).unwrap();
                db.flush().unwrap();
                done.store(n, Ordering::SeqCst);
                continue;
            }
            _ => {
                db.flush().unwrap();
                continue;
            }
        }
        n += 1;
        done.store(n, Ordering::SeqCst);
        // The writer's own read: its change completed.
        assert_eq!(as_u64(db.get("c").unwrap()), Some(n), "round {round}");
    }
    stop.store(true, Ordering::SeqCst);
    compactor.join().unwrap();
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let hits = db.stats().row_cache.hits - hits0;
    assert!(reads > 0);
    assert!(hits > 0, "the cache served no read: nothing tested");
    eprintln!("reads {reads}, cache hits {hits}");
}
