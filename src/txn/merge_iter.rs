//! [`TxnIter`]: a transaction's own writes merged over its snapshot.
//!
//! Each direction has its own snapshot [`Iter`] and its own cursor over the
//! write set, each only ever moved one way, so the two ends never share a
//! buffered entry. As in [`Iter`], the two ends stop when they meet: the
//! front yields only keys below the last key the back yielded, and the
//! other way round, so every key is yielded once.

use std::cmp::Ordering;
use std::collections::btree_map;
use std::iter::{Peekable, Rev};

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::iter::db_iter::Iter;
use crate::merge_operator::{fold, MergeOperator};

/// What a transaction did to one key: a put or a delete (or neither:
/// the snapshot's value), then merge operands on top.
#[derive(Debug, Clone)]
pub(crate) struct OwnWrite {
    /// `Some(Some(v))`: put `v`; `Some(None)`: delete; `None`: the
    /// operands apply to the snapshot's value.
    pub(crate) base: Option<Option<Bytes>>,
    /// Merge operands since the base, oldest first.
    pub(crate) operands: Vec<Bytes>,
}

impl OwnWrite {
    /// The value this write gives the key, from the snapshot's value
    /// `snap` (asked for only when the write has no base of its own),
    /// folded by `op`.
    pub(crate) fn value(
        &self,
        key: &[u8],
        snap: impl FnOnce() -> Result<Option<Bytes>>,
        op: Option<&Arc<dyn MergeOperator>>,
    ) -> Result<Option<Bytes>> {
        let base = match &self.base {
            Some(b) => b.clone(),
            None => snap()?,
        };
        if self.operands.is_empty() {
            return Ok(base);
        }
        let newest_first: Vec<Bytes> = self.operands.iter().rev().cloned().collect();
        fold(op, key, base.as_deref(), &newest_first).map(Some)
    }
}

/// The transaction's writes, by key.
pub(crate) type WriteSet = std::collections::BTreeMap<Bytes, OwnWrite>;

type Own<'a> = btree_map::Range<'a, Bytes, OwnWrite>;

/// An iterator over a transaction's view of a key range: its own writes
/// (puts win, deletes hide) over the snapshot it reads, in key order, or
/// reverse order with `.rev()` / `next_back`; both ends may be mixed.
///
/// It borrows the transaction (no writes while it lives) and pins the
/// snapshot's memtables and files as [`Iter`] does. A read error is yielded
/// once as `Err` and ends the iteration.
pub struct TxnIter<'a> {
    snap_front: Peekable<Iter>,
    snap_back: Peekable<Rev<Iter>>,
    own_front: Peekable<Own<'a>>,
    own_back: Peekable<Rev<Own<'a>>>,
    /// Last key yielded from the front (the back must stay above it).
    front_last: Option<Bytes>,
    /// Last key yielded from the back (the front must stay below it).
    back_last: Option<Bytes>,
    /// Folds the transaction's own merge operands.
    merge: Option<Arc<dyn MergeOperator>>,
    done: bool,
}

impl std::fmt::Debug for TxnIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnIter")
            .field("front_last", &self.front_last)
            .field("back_last", &self.back_last)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Which source the next entry comes from.
enum Pick {
    Snapshot,
    Own,
    /// Both have the key: the transaction's write wins.
    Both,
}

/// Chooses between the snapshot's next key and the write set's next key;
/// `want` is the ordering that goes first (`Less` forwards, `Greater`
/// backwards). `None` when both are exhausted.
fn pick(snap: Option<&Bytes>, own: Option<&Bytes>, want: Ordering) -> Option<Pick> {
    Some(match (snap, own) {
        (None, None) => return None,
        (Some(_), None) => Pick::Snapshot,
        (None, Some(_)) => Pick::Own,
        (Some(s), Some(o)) => match s.cmp(o) {
            Ordering::Equal => Pick::Both,
            ord if ord == want => Pick::Snapshot,
            _ => Pick::Own,
        },
    })
}

/// One step of one end: the next entry of the merge of `snap` and `own`
/// in the order `want` (own merge operands folded onto the snapshot's
/// value by `op`), with own deletes skipped, or `None` at the end or where
/// `stop` says the other end has been reached.
fn step<'a, S, O>(
    snap: &mut Peekable<S>,
    own: &mut Peekable<O>,
    want: Ordering,
    op: Option<&Arc<dyn MergeOperator>>,
    stop: impl Fn(&Bytes) -> bool,
) -> Option<Result<(Bytes, Bytes)>>
where
    S: Iterator<Item = Result<(Bytes, Bytes)>>,
    O: Iterator<Item = (&'a Bytes, &'a OwnWrite)>,
{
    loop {
        if let Some(Err(_)) = snap.peek() {
            return snap.next();
        }
        let snap_key = match snap.peek() {
            Some(Ok((k, _))) => Some(k),
            _ => None,
        };
        let own_key = own.peek().map(|(k, _)| *k);
        let (key, value) = match pick(snap_key, own_key, want)? {
            Pick::Snapshot => match snap.next()? {
                Ok((k, v)) => (k, Some(v)),
                Err(e) => return Some(Err(e)),
            },
            Pick::Own => {
                let (k, w) = own.next()?;
                match w.value(k, || Ok(None), op) {
                    Ok(v) => (k.clone(), v),
                    Err(e) => return Some(Err(e)),
                }
            }
            Pick::Both => {
                let snap_value = match snap.next()? {
                    Ok((_, v)) => Some(v),
                    Err(e) => return Some(Err(e)),
                };
                let (k, w) = own.next()?;
                match w.value(k, || Ok(snap_value), op) {
                    Ok(v) => (k.clone(), v),
                    Err(e) => return Some(Err(e)),
                }
            }
        };
        if stop(&key) {
            return None;
        }
        if let Some(v) = value {
            return Some(Ok((key, v)));
        }
    }
}

impl<'a> TxnIter<'a> {
    /// Merges `own` (the write set restricted to the range) over the two
    /// snapshot iterators of the same range; `merge` folds own operands.
    pub(crate) fn new(
        snap_front: Iter,
        snap_back: Iter,
        own: Option<Own<'a>>,
        merge: Option<Arc<dyn MergeOperator>>,
    ) -> Self {
        let (own_front, own_back) = match own {
            Some(r) => (r.clone(), r),
            None => (Own::default(), Own::default()),
        };
        TxnIter {
            snap_front: snap_front.peekable(),
            snap_back: snap_back.rev().peekable(),
            own_front: own_front.peekable(),
            own_back: own_back.rev().peekable(),
            front_last: None,
            back_last: None,
            merge,
            done: false,
        }
    }
}

impl Iterator for TxnIter<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let back_last = self.back_last.clone();
        let item = step(
            &mut self.snap_front,
            &mut self.own_front,
            Ordering::Less,
            self.merge.as_ref(),
            |k| back_last.as_ref().is_some_and(|b| k >= b),
        );
        match &item {
            Some(Ok((k, _))) => self.front_last = Some(k.clone()),
            _ => self.done = true,
        }
        item
    }
}

impl DoubleEndedIterator for TxnIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let front_last = self.front_last.clone();
        let item = step(
            &mut self.snap_back,
            &mut self.own_back,
            Ordering::Greater,
            self.merge.as_ref(),
            |k| front_last.as_ref().is_some_and(|f| k <= f),
        );
        match &item {
            Some(Ok((k, _))) => self.back_last = Some(k.clone()),
            _ => self.done = true,
        }
        item
    }
}

impl std::iter::FusedIterator for TxnIter<'_> {}
