//! The model: what a key-value store with snapshots, iterators and
//! optimistic transactions answers, on a `BTreeMap`; and which states a
//! power loss may leave.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::ops::{Key, Scan, Value, SLOTS};

pub type State = BTreeMap<Key, Value>;
pub type Write = Vec<(Key, Option<Value>)>;

/// A transaction as the model sees it.
pub struct TxnModel {
    /// The state at its start, and the number of batches then.
    pub snapshot: State,
    pub snapshot_seq: u64,
    /// Its own writes, newest per key.
    pub writes: BTreeMap<Key, Option<Value>>,
    /// Keys read with `get_for_update`.
    pub for_update: Vec<Key>,
}

/// An open iterator: the pairs it will return, and how many it returned.
pub struct IterModel {
    pub pairs: Vec<(Key, Value)>,
    pub pos: usize,
}

#[derive(Default)]
pub struct Model {
    pub state: State,
    /// Batches applied so far (the model's sequence number).
    pub seq: u64,
    /// The batch that last wrote each key (for transaction conflicts).
    pub last_write: HashMap<Key, u64>,
    /// Range deletions: the batch, and `[lo, hi)` (for conflicts too).
    pub range_writes: Vec<(u64, Key, Key)>,
    /// What a power loss keeps at least: the state at the last point
    /// everything was synced, and the batches acknowledged since, in order.
    pub durable: State,
    pub pending: Vec<Write>,
    pub snapshots: Vec<Option<State>>,
    pub iters: Vec<Option<IterModel>>,
    pub txns: Vec<Option<TxnModel>>,
}

/// The pairs of `state` in `scan` (empty for an inverted range), in scan
/// order, at most `scan.limit`.
pub fn scan_pairs(state: &State, scan: &Scan) -> Vec<(Key, Value)> {
    let inverted = match (&scan.lo, &scan.hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    };
    if inverted {
        return Vec::new();
    }
    let it = state.range((scan.lo.clone(), scan.hi.clone()));
    let pairs = |i: &mut dyn Iterator<Item = (&Key, &Value)>| {
        i.take(scan.limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if scan.reverse {
        pairs(&mut it.rev())
    } else {
        pairs(&mut { it })
    }
}

impl Model {
    pub fn new() -> Model {
        let slots = SLOTS as usize;
        Model {
            snapshots: (0..slots).map(|_| None).collect(),
            iters: (0..slots).map(|_| None).collect(),
            txns: (0..slots).map(|_| None).collect(),
            ..Model::default()
        }
    }

    /// Applies an acknowledged `delete_range(lo..hi)` (a batch when the
    /// range is not empty): as the deletes of the keys it covers now,
    /// which is also what replaying it after a power loss gives.
    pub fn apply_delete_range(&mut self, lo: &Key, hi: &Key, sync: bool) {
        if lo >= hi {
            return;
        }
        let w: Write = self
            .state
            .range(lo.clone()..hi.clone())
            .map(|(k, _)| (k.clone(), None))
            .collect();
        self.range_writes
            .push((self.seq + 1, lo.clone(), hi.clone()));
        self.apply(&w, sync);
    }

    /// Applies an acknowledged batch; with `sync` everything so far is
    /// durable.
    pub fn apply(&mut self, w: &Write, sync: bool) {
        self.seq += 1;
        for (k, v) in w {
            match v {
                Some(v) => self.state.insert(k.clone(), v.clone()),
                None => self.state.remove(k),
            };
            self.last_write.insert(k.clone(), self.seq);
        }
        if sync {
            self.all_durable();
        } else {
            self.pending.push(w.clone());
        }
    }

    /// Everything applied so far survives a power loss (after a synced
    /// write, a flush, a clean close).
    pub fn all_durable(&mut self) {
        self.durable = self.state.clone();
        self.pending.clear();
    }

    /// The states a power loss may leave, newest first: the durable state
    /// plus each prefix of the pending batches.
    pub fn crash_candidates(&self) -> Vec<(usize, State)> {
        let mut s = self.durable.clone();
        let mut out = vec![(0, s.clone())];
        for (i, w) in self.pending.iter().enumerate() {
            for (k, v) in w {
                match v {
                    Some(v) => s.insert(k.clone(), v.clone()),
                    None => s.remove(k),
                };
            }
            out.push((i + 1, s.clone()));
        }
        out.reverse();
        out
    }

    /// After a power loss recovered `kept` of the pending batches: those
    /// after them never happened. Handles are gone.
    pub fn recovered(&mut self, kept: usize, state: State) {
        let lost = (self.pending.len() - kept) as u64;
        self.seq -= lost;
        let seq = self.seq;
        self.last_write.retain(|_, s| *s <= seq);
        self.range_writes.retain(|(s, _, _)| *s <= seq);
        self.state = state;
        self.all_durable();
        self.drop_handles();
    }

    /// Snapshots, iterators and transactions end (a reopen).
    pub fn drop_handles(&mut self) {
        self.snapshots.iter_mut().for_each(|s| *s = None);
        self.iters.iter_mut().for_each(|s| *s = None);
        self.txns.iter_mut().for_each(|s| *s = None);
    }

    /// Whether a commit of `t` conflicts (snapshot isolation: a key it
    /// wrote or read for update was written after its snapshot).
    pub fn conflicts(&self, t: &TxnModel) -> Option<Key> {
        t.writes
            .keys()
            .chain(t.for_update.iter())
            .find(|k| {
                self.last_write.get(*k).is_some_and(|&s| s > t.snapshot_seq)
                    || self
                        .range_writes
                        .iter()
                        .any(|(s, lo, hi)| *s > t.snapshot_seq && lo <= *k && *k < hi)
            })
            .cloned()
    }
}
