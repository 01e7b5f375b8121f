//! A linearizability checker for histories of a key-value map (the
//! Wing & Gong search with Lowe's memoization, as Porcupine and Knossos
//! do it). Linearizability is local: a history of the map is
//! linearizable when each key's history, as a read/write register, is;
//! each key is checked on its own.

use std::collections::{BTreeMap, HashSet};

/// One operation a client ran: what it did, when it was invoked and when
/// it returned (`None`: its outcome is unknown, e.g. the node it went to
/// died; it may have taken effect at any time after `call`, or never).
#[derive(Debug, Clone)]
pub struct Op {
    pub key: String,
    pub kind: Kind,
    pub call: u64,
    pub ret: Option<u64>,
}

/// A write of a value, or a read that saw one (`None`: the key absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Write(String),
    Read(Option<String>),
}

/// `Err` with the first key whose history is not linearizable (and that
/// history), else `Ok`. Every key starts absent.
pub fn check(history: &[Op]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    for (key, ops) in by_key {
        if !register_linearizable(&ops) {
            return Err(format!("key {key}: not linearizable: {ops:#?}"));
        }
    }
    Ok(())
}

/// Whether `ops` (all on one key) can be ordered so that the order
/// respects real time (an op that returned before another was called
/// comes first) and every read sees the latest write before it. Ops of
/// unknown outcome may be left out; every other op must be placed.
fn register_linearizable(ops: &[&Op]) -> bool {
    let n = ops.len();
    assert!(n <= 128, "histories of at most 128 ops per key");
    let ret = |i: usize| ops[i].ret.unwrap_or(u64::MAX);
    let must: u128 = (0..n)
        .filter(|&i| ops[i].ret.is_some())
        .fold(0, |m, i| m | 1 << i);
    // Depth-first over (placed set, register value); states seen once.
    let mut seen: HashSet<(u128, Option<String>)> = HashSet::new();
    let mut stack: Vec<(u128, Option<String>)> = vec![(0, None)];
    while let Some((done, value)) = stack.pop() {
        if done & must == must {
            return true;
        }
        if !seen.insert((done, value.clone())) {
            continue;
        }
        // An op may go next only if it was called before every op not yet
        // placed returned (else one of those precedes it in real time).
        let horizon = (0..n)
            .filter(|&i| done & (1 << i) == 0)
            .map(ret)
            .min()
            .unwrap_or(u64::MAX);
        for (i, op) in ops.iter().enumerate() {
            if done & (1 << i) != 0 || op.call > horizon {
                continue;
            }
            let next = match &op.kind {
                Kind::Write(v) => Some(Some(v.clone())),
                Kind::Read(seen_value) => (*seen_value == value).then(|| value.clone()),
            };
            if let Some(v) = next {
                stack.push((done | 1 << i, v));
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(key: &str, v: &str, call: u64, ret: Option<u64>) -> Op {
        Op {
            key: key.into(),
            kind: Kind::Write(v.into()),
            call,
            ret,
        }
    }

    fn r(key: &str, v: Option<&str>, call: u64, ret: u64) -> Op {
        Op {
            key: key.into(),
            kind: Kind::Read(v.map(Into::into)),
            call,
            ret: Some(ret),
        }
    }

    #[test]
    fn sequential_histories() {
        assert!(check(&[w("a", "1", 0, Some(1)), r("a", Some("1"), 2, 3)]).is_ok());
        assert!(check(&[r("a", None, 0, 1), w("a", "1", 2, Some(3))]).is_ok());
        // A stale read after the write returned.
        assert!(check(&[w("a", "1", 0, Some(1)), r("a", None, 2, 3)]).is_err());
        // A read of a value never written.
        assert!(check(&[r("a", Some("9"), 0, 1)]).is_err());
    }

    #[test]
    fn concurrent_operations_may_go_either_way() {
        // The read overlaps the write: it may see either value.
        for seen in [None, Some("1")] {
            assert!(check(&[w("a", "1", 0, Some(10)), r("a", seen, 5, 6)]).is_ok());
        }
        // Two reads inside one write: once one saw it, a later one must.
        let h = [
            w("a", "1", 0, Some(100)),
            r("a", Some("1"), 10, 20),
            r("a", None, 30, 40),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn writes_of_unknown_outcome() {
        // Taken effect, late, or never: all fine.
        assert!(check(&[w("a", "1", 0, None), r("a", Some("1"), 50, 60)]).is_ok());
        assert!(check(&[w("a", "1", 0, None), r("a", None, 50, 60)]).is_ok());
        // But not before it was called.
        assert!(check(&[r("a", Some("1"), 0, 5), w("a", "1", 10, None)]).is_err());
        // And once seen, not undone.
        let h = [
            w("a", "1", 0, None),
            r("a", Some("1"), 10, 20),
            r("a", None, 30, 40),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn keys_are_checked_apart() {
        let h = [
            w("a", "1", 0, Some(1)),
            w("b", "2", 0, Some(1)),
            r("a", Some("1"), 2, 3),
            r("b", None, 2, 3),
        ];
        let e = check(&h).unwrap_err();
        assert!(e.starts_with("key b"), "{e}");
    }
}
