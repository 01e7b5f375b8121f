use super::*;
use crate::test_util::{Entry, VecCursor};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// What a reader at `snap` sees: per key, the newest version at or below
/// `snap` (tombstones included).
fn view(entries: &[Entry], snap: u64) -> BTreeMap<Vec<u8>, (u64, EntryKind, Vec<u8>)> {
    let mut out: BTreeMap<Vec<u8>, (u64, EntryKind, Vec<u8>)> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.seq <= snap) {
        let newer = out.get(&e.key).is_some_and(|(s, _, _)| *s > e.seq);
        if !newer {
            out.insert(e.key.clone(), (e.seq, e.kind, e.value.clone()));
        }
    }
    out
}

/// Just the values (a tombstone and no version look the same).
fn values(v: &BTreeMap<Vec<u8>, (u64, EntryKind, Vec<u8>)>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    v.iter()
        .filter(|(_, (_, k, _))| *k == EntryKind::Value)
        .map(|(key, (_, _, val))| (key.clone(), val.clone()))
        .collect()
}

fn run(inputs: Vec<Vec<Entry>>, policy: &GcPolicy) -> (Vec<Entry>, MergeStats) {
    let cursors: Vec<VecCursor> = inputs.into_iter().map(VecCursor::new).collect();
    let mut out = Vec::new();
    let stats = merge_runs(cursors, policy, &FragmentedTombstones::empty(), |e| {
        out.push(Entry::from(e));
        Ok(())
    })
    .expect("in-memory cursors do not fail");
    (out, stats)
}

fn arb_case() -> impl Strategy<Value = (Vec<Vec<Entry>>, Vec<u64>, bool)> {
    (1usize..6, 0usize..80)
        .prop_flat_map(|(runs, n)| {
            (
                Just(runs),
                prop::collection::vec((0u8..10, 0usize..runs, any::<bool>(), 0u8..4), n),
                prop::collection::vec(0u64..100, 0..5),
                any::<bool>(),
            )
        })
        .prop_map(|(runs, versions, snaps, bottommost)| {
            let mut inputs = vec![Vec::new(); runs];
            for (i, (k, run, del, v)) in versions.into_iter().enumerate() {
                inputs[run].push(Entry {
                    key: vec![b'k', k],
                    seq: i as u64 + 1,
                    kind: if del {
                        EntryKind::Delete
                    } else {
                        EntryKind::Value
                    },
                    value: if del { Vec::new() } else { vec![v; 3] },
                });
            }
            for inp in &mut inputs {
                inp.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
            }
            (inputs, snaps, bottommost)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merge_preserves_every_snapshot_view((inputs, snaps, bottommost) in arb_case()) {
        let all: Vec<Entry> = inputs.iter().flatten().cloned().collect();
        let policy = GcPolicy { snapshots: snaps.clone(), bottommost };
        let (out, stats) = run(inputs, &policy);

        // Sorted by (key asc, seq desc), no duplicates.
        for w in out.windows(2) {
            prop_assert!(
                w[0].key < w[1].key || (w[0].key == w[1].key && w[0].seq > w[1].seq),
                "out of order: {:?}", w
            );
        }
        let mut points = snaps.clone();
        points.push(u64::MAX);
        for &s in &points {
            let (before, after) = (view(&all, s), view(&out, s));
            if bottommost {
                prop_assert_eq!(values(&before), values(&after), "snapshot {}", s);
            } else {
                // Nothing may be below us: tombstones must survive as well.
                prop_assert_eq!(before, after, "snapshot {}", s);
            }
        }
        let earliest = snaps.iter().copied().min().unwrap_or(u64::MAX);
        if bottommost {
            prop_assert!(
                !out.iter().any(|e| e.kind == EntryKind::Delete && e.seq <= earliest),
                "a tombstone of the earliest stripe survived"
            );
        } else {
            prop_assert_eq!(stats.dropped_tombstones, 0);
        }
        prop_assert_eq!(stats.input_entries, all.len() as u64);
        prop_assert_eq!(stats.output_entries, out.len() as u64);
        prop_assert_eq!(
            stats.output_entries + stats.dropped_versions + stats.dropped_tombstones,
            stats.input_entries
        );
        let bytes = |v: &[Entry]| v.iter().map(|e| (e.key.len() + e.value.len()) as u64).sum::<u64>();
        prop_assert_eq!(stats.input_bytes, bytes(&all));
        prop_assert_eq!(stats.output_bytes, bytes(&out));
    }
}

#[test]
fn stripes_keep_newest_per_snapshot() {
    let e = |seq, kind| Entry {
        key: b"a".to_vec(),
        seq,
        kind,
        value: if kind == EntryKind::Value {
            vec![seq as u8]
        } else {
            vec![]
        },
    };
    // Versions 9 (del), 7, 5 (del), 3, 1; snapshots 4 and 6.
    let input = vec![
        e(9, EntryKind::Delete),
        e(7, EntryKind::Value),
        e(5, EntryKind::Delete),
        e(3, EntryKind::Value),
        e(1, EntryKind::Value),
    ];
    let policy = GcPolicy {
        snapshots: vec![4, 6],
        bottommost: true,
    };
    let (out, stats) = run(vec![input.clone()], &policy);
    let seqs: Vec<u64> = out.iter().map(|e| e.seq).collect();
    // Stripe latest keeps 9; stripe 6 keeps 5; stripe 4 keeps 3.
    assert_eq!(seqs, vec![9, 5, 3]);
    assert_eq!(stats.dropped_versions, 2);
    // Without snapshots, bottommost: the tombstone 9 hides everything.
    let (out, stats) = run(
        vec![input],
        &GcPolicy {
            snapshots: vec![],
            bottommost: true,
        },
    );
    assert!(out.is_empty());
    assert_eq!(stats.dropped_tombstones, 1);
    assert_eq!(stats.dropped_versions, 4);
}
