//! Merge operands through [`merge_runs`]: every reader (at each snapshot
//! and at the latest state) folds the output to what it folded from the
//! input, with range tombstones, data below the merge, an operator that
//! fails on some operands and one that cannot always combine them.

use super::*;
use crate::range_del::RangeTombstone;
use crate::test_util::{Entry, VecCursor};
use crate::types::{OperandMerge, Shared};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Appends with `,`. Fails on the operand `X` (in a full or a partial
/// merge); cannot partially merge a run holding the operand `P`.
struct TestAppend;

impl OperandMerge for TestAppend {
    fn full_merge(&self, _key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        if operands.contains(&&b"X"[..]) {
            return None;
        }
        Some(
            base.into_iter()
                .chain(operands.iter().copied())
                .collect::<Vec<_>>()
                .join(&b","[..]),
        )
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        if operands.iter().any(|o| *o == b"X" || *o == b"P") {
            return None;
        }
        Some(operands.join(&b","[..]))
    }
}

/// One version of a key: sequence number, kind, value.
type Version = (u64, EntryKind, Vec<u8>);

/// What a reader at `snap` reads of each key: its folded value, `None`
/// when absent, or `Err` when a merge it needs fails. A range tombstone
/// at `t` acts as a deletion at `t` of every key it covers.
fn read_all(
    entries: &[Entry],
    tombstones: &[RangeTombstone],
    snap: u64,
) -> BTreeMap<Vec<u8>, Result<Option<Vec<u8>>, ()>> {
    let mut by_key: BTreeMap<Vec<u8>, Vec<Version>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.seq <= snap) {
        by_key
            .entry(e.key.clone())
            .or_default()
            .push((e.seq, e.kind, e.value.clone()));
    }
    let mut out = BTreeMap::new();
    for (key, mut versions) in by_key {
        for t in tombstones.iter().filter(|t| t.seq <= snap) {
            if t.start.as_slice() <= key.as_slice() && key.as_slice() < t.end.as_slice() {
                versions.push((t.seq, EntryKind::Delete, Vec::new()));
            }
        }
        // Oldest first; a point version and a tombstone never share a seq.
        versions.sort_by_key(|v| v.0);
        let mut cur: Option<Vec<u8>> = None;
        let mut ops: Vec<Vec<u8>> = Vec::new();
        for (_, kind, v) in versions {
            match kind {
                EntryKind::Merge => ops.push(v),
                EntryKind::Delete => (cur, ops) = (None, Vec::new()),
                _ => (cur, ops) = (Some(v), Vec::new()),
            }
        }
        let value = if ops.is_empty() {
            Ok(cur)
        } else {
            let refs: Vec<&[u8]> = ops.iter().map(|o| o.as_slice()).collect();
            TestAppend
                .full_merge(&key, cur.as_deref(), &refs)
                .map(Some)
                .ok_or(())
        };
        out.insert(key, value);
    }
    out.retain(|_, v| !matches!(v, Ok(None)));
    out
}

struct Case {
    inputs: Vec<Vec<Entry>>,
    below: Vec<Entry>,
    tombstones: Vec<RangeTombstone>,
    snapshots: Vec<u64>,
    bottommost: bool,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |e: &Entry| {
            format!(
                "{}@{} {:?} {}",
                e.key[1],
                e.seq,
                e.kind,
                e.value.escape_ascii()
            )
        };
        f.debug_struct("Case")
            .field(
                "inputs",
                &self
                    .inputs
                    .iter()
                    .map(|r| r.iter().map(show).collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            )
            .field("below", &self.below.iter().map(show).collect::<Vec<_>>())
            .field("tombstones", &self.tombstones)
            .field("snapshots", &self.snapshots)
            .field("bottommost", &self.bottommost)
            .finish()
    }
}

fn arb_case() -> impl Strategy<Value = Case> {
    let version = (0u8..4, 0u8..10, 0usize..3);
    (
        prop::collection::vec(version.clone(), 0..12),
        prop::collection::vec(version, 1..40),
        prop::collection::vec((0u8..4, 1u8..4, 0u64..60), 0..3),
        prop::collection::vec(0u64..60, 0..4),
        any::<bool>(),
    )
        .prop_map(|(below, versions, ts, snapshots, bottommost)| {
            let entry = |seq: u64, (k, what, _): (u8, u8, usize)| {
                let (kind, value) = match what {
                    0 => (EntryKind::Delete, Vec::new()),
                    1 | 2 => (EntryKind::Value, vec![b'v', b'0' + what]),
                    3 => (EntryKind::Indirect, b"ref".to_vec()),
                    7 => (EntryKind::Merge, b"X".to_vec()),
                    8 => (EntryKind::Merge, b"P".to_vec()),
                    _ => (EntryKind::Merge, vec![b'm', b'0' + what]),
                };
                Entry {
                    key: vec![b'k', k],
                    seq,
                    kind,
                    value,
                }
            };
            let below: Vec<Entry> = match bottommost {
                true => Vec::new(),
                false => below
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| entry(i as u64 + 1, v))
                    .collect(),
            };
            let base = below.len() as u64 + 1;
            let mut inputs = vec![Vec::new(); 3];
            for (i, v) in versions.into_iter().enumerate() {
                inputs[v.2].push(entry(base + i as u64 * 2, v));
            }
            for run in &mut inputs {
                run.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
            }
            // Odd sequence numbers: never a point version's.
            let tombstones = ts
                .into_iter()
                .map(|(start, len, at)| RangeTombstone {
                    start: vec![b'k', start],
                    end: vec![b'k', start + len],
                    seq: base + (at | 1),
                })
                .collect();
            Case {
                inputs,
                below,
                tombstones,
                snapshots,
                bottommost,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_reader_folds_the_output_as_the_input(case in arb_case()) {
        let all: Vec<Entry> = case.inputs.iter().flatten().cloned().collect();
        let policy = GcPolicy {
            snapshots: case.snapshots.clone(),
            bottommost: case.bottommost,
            merge: Some(Shared(Arc::new(TestAppend) as Arc<dyn OperandMerge>)),
            filter: None,
        };
        let ts = FragmentedTombstones::new(case.tombstones.clone());
        let mut snaps = case.snapshots.clone();
        snaps.sort_unstable();
        snaps.dedup();
        let kept = ts.collect_garbage(&snaps, case.bottommost);
        let kept: Vec<RangeTombstone> = kept.tombstones().collect();
        let cursors: Vec<VecCursor> = case.inputs.iter().cloned().map(VecCursor::new).collect();
        let mut out = Vec::new();
        let stats = merge_runs(cursors, &policy, &ts, |e| {
            out.push(Entry::from(e));
            Ok::<(), String>(())
        })
        .expect("in memory");
        for w in out.windows(2) {
            prop_assert!(
                w[0].key < w[1].key || (w[0].key == w[1].key && w[0].seq > w[1].seq),
                "out of order: {:?} {:?}", (w[0].key[1], w[0].seq), (w[1].key[1], w[1].seq)
            );
        }
        let mut with_below = all.clone();
        with_below.extend(case.below.iter().cloned());
        let mut out_below = out.clone();
        out_below.extend(case.below.iter().cloned());
        let mut points = snaps.clone();
        points.push(u64::MAX);
        for &s in &points {
            prop_assert_eq!(
                read_all(&with_below, &case.tombstones, s),
                read_all(&out_below, &kept, s),
                "reader at {}; output {:?}", s,
                out.iter().map(|e| format!("{}@{} {:?} {}", e.key[1], e.seq, e.kind, e.value.escape_ascii())).collect::<Vec<_>>()
            );
        }
        prop_assert_eq!(stats.input_entries, all.len() as u64);
        prop_assert_eq!(stats.output_entries, out.len() as u64);
    }
}

/// Without snapshots, on the bottommost level, a key's operands and base
/// become one value; with a snapshot between them, each stripe keeps its
/// own, partially merged.
#[test]
fn operands_fold_into_a_value_or_a_combined_operand() {
    let e = |seq, kind, v: &str| Entry {
        key: b"a".to_vec(),
        seq,
        kind,
        value: v.as_bytes().to_vec(),
    };
    let input = vec![
        e(9, EntryKind::Merge, "d"),
        e(8, EntryKind::Merge, "c"),
        e(5, EntryKind::Merge, "b"),
        e(3, EntryKind::Value, "a"),
    ];
    let run = |snapshots: Vec<u64>, bottommost| {
        let policy = GcPolicy {
            snapshots,
            bottommost,
            merge: Some(Shared(Arc::new(TestAppend) as Arc<dyn OperandMerge>)),
            filter: None,
        };
        let mut out = Vec::new();
        merge_runs(
            vec![VecCursor::new(input.clone())],
            &policy,
            &FragmentedTombstones::empty(),
            |e| {
                out.push((e.seq, e.kind, String::from_utf8(e.value.to_vec()).unwrap()));
                Ok::<(), String>(())
            },
        )
        .unwrap();
        out
    };
    assert_eq!(
        run(vec![], false),
        vec![(9, EntryKind::Value, "a,b,c,d".into())]
    );
    assert_eq!(
        run(vec![6], false),
        vec![
            (9, EntryKind::Merge, "c,d".into()),
            (5, EntryKind::Value, "a,b".into())
        ]
    );
}
