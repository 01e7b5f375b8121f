//! Random interleavings of several transactions (snapshot isolation and
//! serializable, mixed), plain writes, flushes and compactions, checked
//! step by step against a model of snapshot isolation: every read and
//! range scan (forwards, backwards, both ends mixed) returns what the model
//! says, every commit succeeds or fails with `Error::Conflict` exactly where
//! the model finds a conflict (naming one of the conflicting keys), and the
//! committed state always equals the model's.
//!
//! Keys live in two keyspaces (even keys in `default`, odd ones in
//! `other`), so transactions read and write both, each scan reads one, and
//! conflicts must be found per keyspace.
//!
//! Why it matters: the isolation promise of `docs/transactions.md` is only
//! as good as the cases it was checked on; here validation must also find
//! writes that moved into SST files.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use common::fast_opts;
use lightning_db::{
    AppendOperator, Db, Error, IsolationLevel, Keyspace, Transaction, TransactionOptions,
    WriteBatch,
};
use proptest::prelude::*;

const KEYS: u8 = 8;
const SLOTS: usize = 3;

fn key(k: u8) -> Vec<u8> {
    vec![b'k', b'0' + k]
}

/// The keyspaces the keys live in: key `k` in `SPACES[k % 2]`, so that
/// transactions and plain batches span two keyspaces.
const SPACES: [&str; 2] = ["default", "other"];

/// The index in [`SPACES`] of the keyspace holding `key` (from [`key`]).
fn home(key: &[u8]) -> usize {
    usize::from(key[1] - b'0') % SPACES.len()
}

#[derive(Debug, Clone)]
enum Op {
    Begin {
        slot: usize,
        serializable: bool,
    },
    Get {
        slot: usize,
        k: u8,
        for_update: bool,
    },
    Put {
        slot: usize,
        k: u8,
        v: u8,
    },
    Delete {
        slot: usize,
        k: u8,
    },
    /// `merge` of `[v]` (the append operator, `,` between pieces).
    Merge {
        slot: usize,
        k: u8,
        v: u8,
    },
    Range {
        slot: usize,
        /// The keyspace scanned (index in [`SPACES`]).
        space: usize,
        lo: Option<(u8, bool)>,
        hi: Option<(u8, bool)>,
        pattern: u32,
    },
    Commit {
        slot: usize,
    },
    Rollback {
        slot: usize,
    },
    PlainPut {
        k: u8,
        v: u8,
    },
    PlainDelete {
        k: u8,
    },
    PlainMerge {
        k: u8,
        v: u8,
    },
    /// `delete_range(key(lo)..key(hi))`.
    PlainDeleteRange {
        lo: u8,
        hi: u8,
    },
    Flush,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    let k = 0..KEYS;
    let bound = proptest::option::of((0..KEYS + 1, any::<bool>()));
    prop_oneof![
        1 => (slot.clone(), any::<bool>()).prop_map(|(slot, serializable)| Op::Begin { slot, serializable }),
        4 => (slot.clone(), k.clone(), any::<bool>()).prop_map(|(slot, k, for_update)| Op::Get { slot, k, for_update }),
        5 => (slot.clone(), k.clone(), any::<u8>()).prop_map(|(slot, k, v)| Op::Put { slot, k, v }),
        2 => (slot.clone(), k.clone()).prop_map(|(slot, k)| Op::Delete { slot, k }),
        2 => (slot.clone(), k.clone(), any::<u8>()).prop_map(|(slot, k, v)| Op::Merge { slot, k, v }),
        2 => (slot.clone(), 0..SPACES.len(), bound.clone(), bound, any::<u32>()).prop_map(|(slot, space, lo, hi, pattern)| Op::Range { slot, space, lo, hi, pattern }),
        3 => slot.clone().prop_map(|slot| Op::Commit { slot }),
        1 => slot.prop_map(|slot| Op::Rollback { slot }),
        2 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::PlainPut { k, v }),
        1 => k.clone().prop_map(|k| Op::PlainDelete { k }),
        1 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::PlainMerge { k, v }),
        1 => (k.clone(), 0..KEYS + 1).prop_map(|(lo, hi)| Op::PlainDeleteRange { lo, hi }),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
    ]
}

type Val = Option<Vec<u8>>;
type Range = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The committed history: per key, `(commit number, value)` oldest first,
/// and the range deletions `(commit number, [start, end))`.
#[derive(Default)]
struct History {
    commits: u64,
    versions: BTreeMap<Vec<u8>, Vec<(u64, Val)>>,
    range_dels: Vec<(u64, Vec<u8>, Vec<u8>)>,
}

impl History {
    fn at(&self, k: &[u8], snap: u64) -> Val {
        let point = self
            .versions
            .get(k)
            .and_then(|vs| vs.iter().rev().find(|(c, _)| *c <= snap));
        let deleted_at = self
            .range_dels
            .iter()
            .filter(|(c, a, b)| *c <= snap && a.as_slice() <= k && k < b.as_slice())
            .map(|(c, _, _)| *c)
            .max();
        match (point, deleted_at) {
            (Some((c, v)), d) if d.is_none_or(|d| d < *c) => v.clone(),
            _ => None,
        }
    }
    fn written_after(&self, k: &[u8], snap: u64) -> bool {
        self.versions
            .get(k)
            .is_some_and(|vs| vs.iter().any(|(c, _)| *c > snap))
            || self
                .range_dels
                .iter()
                .any(|(c, a, b)| *c > snap && a.as_slice() <= k && k < b.as_slice())
    }
    fn delete_range(&mut self, a: Vec<u8>, b: Vec<u8>) {
        self.commits += 1;
        if a < b {
            self.range_dels.push((self.commits, a, b));
        }
    }
    /// The first key of each range deletion after `snap` inside `r` (what
    /// a serializable scan of `r` conflicts on).
    fn range_deleted_in(&self, r: &Range, snap: u64) -> Vec<Vec<u8>> {
        self.range_dels
            .iter()
            .filter(|(c, _, _)| *c > snap)
            .filter_map(|(_, a, b)| {
                let first = match &r.0 {
                    Bound::Included(l) if l > a => l.clone(),
                    Bound::Excluded(l) if l >= a => {
                        let mut k = l.clone();
                        k.push(0);
                        k
                    }
                    _ => a.clone(),
                };
                let below_hi = match &r.1 {
                    Bound::Unbounded => true,
                    Bound::Included(h) => first <= *h,
                    Bound::Excluded(h) => first < *h,
                };
                (first < *b && below_hi).then_some(first)
            })
            .collect()
    }
    fn commit(&mut self, writes: &BTreeMap<Vec<u8>, Val>) {
        self.commits += 1;
        for (k, v) in writes {
            self.versions
                .entry(k.clone())
                .or_default()
                .push((self.commits, v.clone()));
        }
    }
    fn latest(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.versions
            .keys()
            .filter_map(|k| self.at(k, self.commits).map(|v| (k.clone(), v)))
            .collect()
    }
}

/// The model of one open transaction.
struct ModelTxn {
    snap: u64,
    serializable: bool,
    writes: BTreeMap<Vec<u8>, Val>,
    for_update: BTreeSet<Vec<u8>>,
    reads: BTreeSet<Vec<u8>>,
    /// Ranges scanned, with the keyspace scanned.
    ranges: Vec<(usize, Range)>,
}

impl ModelTxn {
    fn get(&self, h: &History, k: &[u8]) -> Val {
        match self.writes.get(k) {
            Some(v) => v.clone(),
            None => h.at(k, self.snap),
        }
    }
    /// Keys whose later writes make the commit fail.
    fn conflicting_keys(&self, h: &History) -> BTreeSet<Vec<u8>> {
        let mut check: BTreeSet<Vec<u8>> = self.writes.keys().cloned().collect();
        check.extend(self.for_update.iter().cloned());
        if self.serializable {
            check.extend(self.reads.iter().cloned());
            for (space, r) in &self.ranges {
                check.extend(
                    h.versions
                        .range(r.clone())
                        .map(|(k, _)| k.clone())
                        .filter(|k| home(k) == *space),
                );
            }
        }
        let mut conflicts: BTreeSet<Vec<u8>> = check
            .into_iter()
            .filter(|k| h.written_after(k, self.snap))
            .collect();
        if self.serializable {
            // Range deletions are written to every keyspace.
            for (_, r) in &self.ranges {
                conflicts.extend(h.range_deleted_in(r, self.snap));
            }
        }
        conflicts
    }
}

fn to_bound(b: Option<(u8, bool)>) -> Bound<Vec<u8>> {
    match b {
        None => Bound::Unbounded,
        Some((k, true)) => Bound::Included(key(k)),
        Some((k, false)) => Bound::Excluded(key(k)),
    }
}

fn empty(lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}

/// Reads `lo..hi` from both ends as `pattern`'s bits say (1: front).
fn scan(
    tx: &Transaction,
    ks: &Keyspace,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    pattern: u32,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut it = tx.range_in(ks, (lo, hi));
    let (mut front, mut back) = (Vec::new(), Vec::new());
    for i in 0.. {
        let from_front = i >= 32 || pattern >> i & 1 == 1;
        let item = if from_front {
            it.next()
        } else {
            it.next_back()
        };
        let Some(r) = item else { break };
        let (k, v) = r.unwrap();
        if from_front {
            front.push((k.to_vec(), v.to_vec()));
        } else {
            back.push((k.to_vec(), v.to_vec()));
        }
    }
    back.reverse();
    front.extend(back);
    front
}

impl Op {
    /// The transaction slot the operation works on, if any.
    fn slot(&self) -> Option<usize> {
        match self {
            Op::Get { slot, .. }
            | Op::Put { slot, .. }
            | Op::Delete { slot, .. }
            | Op::Merge { slot, .. }
            | Op::Range { slot, .. }
            | Op::Commit { slot }
            | Op::Rollback { slot } => Some(*slot),
            _ => None,
        }
    }
}

/// `old` with the operand `[v]` appended (the test's append operator).
fn appended(old: Val, v: u8) -> Vec<u8> {
    match old {
        Some(mut o) => {
            o.extend_from_slice(&[b',', v]);
            o
        }
        None => vec![v],
    }
}

fn begin(db: &Db, h: &History, serializable: bool) -> (Transaction, ModelTxn) {
    let opts = TransactionOptions::default().isolation(if serializable {
        IsolationLevel::Serializable
    } else {
        IsolationLevel::Snapshot
    });
    let m = ModelTxn {
        snap: h.commits,
        serializable,
        writes: BTreeMap::new(),
        for_update: BTreeSet::new(),
        reads: BTreeSet::new(),
        ranges: Vec::new(),
    };
    (db.transaction_opt(&opts), m)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let opts = fast_opts().merge_operator(Some(Arc::new(AppendOperator::new(","))));
    let db = Db::open(dir.path(), opts).unwrap();
    let ks: Vec<Keyspace> = SPACES.iter().map(|n| db.keyspace(n).unwrap()).collect();
    let mut h = History::default();
    let mut txs: Vec<Option<(Transaction, ModelTxn)>> = (0..SLOTS).map(|_| None).collect();
    for (step, op) in ops.into_iter().enumerate() {
        // An operation on an idle slot begins a transaction there first
        // (serializable in the last slot).
        if let Some(slot) = op.slot() {
            if txs[slot].is_none() {
                txs[slot] = Some(begin(&db, &h, slot == SLOTS - 1));
            }
        }
        match op {
            Op::Begin { slot, serializable } => {
                if let Some((tx, _)) = txs[slot].take() {
                    tx.rollback();
                }
                txs[slot] = Some(begin(&db, &h, serializable));
            }
            Op::Get {
                slot,
                k,
                for_update,
            } => {
                if let Some((tx, m)) = &mut txs[slot] {
                    let k = key(k);
                    let space = &ks[home(&k)];
                    let got = if for_update {
                        m.for_update.insert(k.clone());
                        tx.get_for_update_in(space, &k).unwrap()
                    } else {
                        tx.get_in(space, &k).unwrap()
                    };
                    m.reads.insert(k.clone());
                    prop_assert_eq!(got.map(|v| v.to_vec()), m.get(&h, &k), "step {}: get", step);
                }
            }
            Op::Put { slot, k, v } => {
                if let Some((tx, m)) = &mut txs[slot] {
                    tx.put_in(&ks[home(&key(k))], key(k), [v]);
                    m.writes.insert(key(k), Some(vec![v]));
                }
            }
            Op::Delete { slot, k } => {
                if let Some((tx, m)) = &mut txs[slot] {
                    tx.delete_in(&ks[home(&key(k))], key(k));
                    m.writes.insert(key(k), None);
                }
            }
            Op::Merge { slot, k, v } => {
                if let Some((tx, m)) = &mut txs[slot] {
                    tx.merge_in(&ks[home(&key(k))], key(k), [v]);
                    let now = appended(m.get(&h, &key(k)), v);
                    m.writes.insert(key(k), Some(now));
                }
            }
            Op::Range {
                slot,
                space,
                lo,
                hi,
                pattern,
            } => {
                if let Some((tx, m)) = &mut txs[slot] {
                    let (lo, hi) = (to_bound(lo), to_bound(hi));
                    let got = scan(tx, &ks[space], lo.clone(), hi.clone(), pattern);
                    let expect: Vec<(Vec<u8>, Vec<u8>)> = if empty(&lo, &hi) {
                        Vec::new()
                    } else {
                        let mut keys: BTreeSet<Vec<u8>> = h
                            .versions
                            .range((lo.clone(), hi.clone()))
                            .map(|(k, _)| k.clone())
                            .collect();
                        keys.extend(
                            m.writes
                                .range((lo.clone(), hi.clone()))
                                .map(|(k, _)| k.clone()),
                        );
                        keys.into_iter()
                            .filter(|k| home(k) == space)
                            .filter_map(|k| m.get(&h, &k).map(|v| (k, v)))
                            .collect()
                    };
                    if !empty(&lo, &hi) {
                        m.ranges.push((space, (lo, hi)));
                    }
                    prop_assert_eq!(got, expect, "step {}: range", step);
                }
            }
            Op::Commit { slot } => {
                if let Some((tx, m)) = txs[slot].take() {
                    let conflicts = if m.writes.is_empty() && m.for_update.is_empty() {
                        BTreeSet::new()
                    } else {
                        m.conflicting_keys(&h)
                    };
                    match tx.commit() {
                        Ok(()) => {
                            prop_assert!(
                                conflicts.is_empty(),
                                "step {}: committed despite conflicts on {:?}",
                                step,
                                conflicts
                            );
                            if !m.writes.is_empty() {
                                h.commit(&m.writes);
                            }
                        }
                        Err(Error::Conflict { key, .. }) => {
                            prop_assert!(
                                conflicts.contains(key.as_ref()),
                                "step {}: conflict on {:?}, model has {:?}",
                                step,
                                key,
                                conflicts
                            );
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("step {step}: {e}"))),
                    }
                }
            }
            Op::Rollback { slot } => {
                if let Some((tx, _)) = txs[slot].take() {
                    tx.rollback();
                }
            }
            Op::PlainPut { k, v } => {
                ks[home(&key(k))].put(key(k), [v]).unwrap();
                h.commit(&BTreeMap::from([(key(k), Some(vec![v]))]));
            }
            Op::PlainDelete { k } => {
                ks[home(&key(k))].delete(key(k)).unwrap();
                h.commit(&BTreeMap::from([(key(k), None)]));
            }
            Op::PlainMerge { k, v } => {
                ks[home(&key(k))].merge(key(k), [v]).unwrap();
                let now = appended(h.at(&key(k), h.commits), v);
                h.commit(&BTreeMap::from([(key(k), Some(now))]));
            }
            Op::PlainDeleteRange { lo, hi } => {
                // One batch over both keyspaces: one commit.
                let mut b = WriteBatch::new();
                for space in &ks {
                    b.delete_range_in(space, key(lo)..key(hi));
                }
                db.write(b).unwrap();
                h.delete_range(key(lo), key(hi));
            }
            Op::Flush => db.flush().unwrap(),
            Op::Compact => {
                for space in &ks {
                    space.compact_range::<&[u8], _>(..).unwrap();
                }
            }
        }
        let mut state = BTreeMap::new();
        for (i, space) in ks.iter().enumerate() {
            for r in space.iter() {
                let (k, v) = r.unwrap();
                prop_assert_eq!(home(&k), i, "step {}: key in the wrong keyspace", step);
                state.insert(k.to_vec(), v.to_vec());
            }
        }
        prop_assert_eq!(state, h.latest(), "step {}: committed state", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_transactions_match_the_snapshot_isolation_model(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        run(ops)?;
    }
}
