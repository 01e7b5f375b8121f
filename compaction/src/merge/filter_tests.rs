//! The compaction filter through [`merge_runs`]: every snapshot reads what
//! it read before; the latest state reads the filter's decision on each
//! key's newest value, if that value was newer than every snapshot.

use super::*;
use crate::test_util::{Entry, VecCursor};
use crate::types::{EntryFilter, Shared};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Removes keys whose last byte is odd; rewrites the value of keys whose
/// last byte is 2 to `changed`.
struct OddOut;

impl EntryFilter for OddOut {
    fn filter(&self, key: &[u8], kind: EntryKind, _value: &[u8]) -> FilterDecision {
        assert_ne!(kind, EntryKind::Delete, "tombstones are not filtered");
        match key.last() {
            Some(b) if b % 2 == 1 => FilterDecision::Remove,
            Some(2) => FilterDecision::ChangeValue(b"changed".to_vec()),
            _ => FilterDecision::Keep,
        }
    }
}

/// Per key, the newest version at or below `snap`: its value, or `None`
/// for a tombstone.
fn read(entries: &[Entry], snap: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut newest: BTreeMap<Vec<u8>, &Entry> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.seq <= snap) {
        if newest.get(&e.key).is_none_or(|n| n.seq < e.seq) {
            newest.insert(e.key.clone(), e);
        }
    }
    newest
        .into_iter()
        .filter(|(_, e)| e.kind != EntryKind::Delete)
        .map(|(k, e)| (k, e.value.clone()))
        .collect()
}

fn arb_case() -> impl Strategy<Value = (Vec<Vec<Entry>>, Vec<Entry>, Vec<u64>, bool)> {
    (
        prop::collection::vec((0u8..6, any::<bool>()), 0..10),
        prop::collection::vec((0u8..6, any::<bool>(), 0usize..3), 1..40),
        prop::collection::vec(0u64..60, 0..3),
        any::<bool>(),
    )
        .prop_map(|(below, versions, snaps, bottommost)| {
            let entry = |seq: u64, k: u8, del: bool| Entry {
                key: vec![b'k', k],
                seq,
                kind: if del {
                    EntryKind::Delete
                } else {
                    EntryKind::Value
                },
                value: if del {
                    Vec::new()
                } else {
                    vec![b'v', seq as u8]
                },
            };
            let below: Vec<Entry> = match bottommost {
                true => Vec::new(),
                false => below
                    .iter()
                    .enumerate()
                    .map(|(i, &(k, d))| entry(i as u64 + 1, k, d))
                    .collect(),
            };
            let base = below.len() as u64 + 1;
            let mut inputs = vec![Vec::new(); 3];
            for (i, (k, del, run)) in versions.into_iter().enumerate() {
                inputs[run].push(entry(base + i as u64, k, del));
            }
            for run in &mut inputs {
                run.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
            }
            let snaps = snaps.into_iter().map(|s| base + s).collect();
            (inputs, below, snaps, bottommost)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn snapshots_read_the_same_and_the_latest_state_reads_the_filter(
        (inputs, below, snaps, bottommost) in arb_case()
    ) {
        let all: Vec<Entry> = inputs.iter().flatten().cloned().collect();
        let policy = GcPolicy {
            snapshots: snaps.clone(),
            bottommost,
            merge: None,
            filter: Some(Shared(Arc::new(OddOut) as Arc<dyn EntryFilter>)),
        };
        let cursors: Vec<VecCursor> = inputs.iter().cloned().map(VecCursor::new).collect();
        let mut out = Vec::new();
        let stats = merge_runs(cursors, &policy, &FragmentedTombstones::empty(), |e| {
            out.push(Entry::from(e));
            Ok::<(), String>(())
        })
        .expect("in memory");
        let with = |v: &[Entry]| {
            let mut x = v.to_vec();
            x.extend(below.iter().cloned());
            x
        };
        let (before, after) = (with(&all), with(&out));
        for &s in &snaps {
            prop_assert_eq!(read(&before, s), read(&after, s), "snapshot {}", s);
        }
        // The latest state: the filter decided every key whose newest
        // version in the merge is a value above every snapshot.
        let top = snaps.iter().copied().max().unwrap_or(0);
        let mut want = read(&before, u64::MAX);
        let mut filtered = 0;
        for (k, newest) in read_newest(&all) {
            if newest.seq <= top || newest.kind == EntryKind::Delete {
                continue;
            }
            filtered += u64::from(k[1] % 2 == 1 || k[1] == 2);
            match k[1] {
                b if b % 2 == 1 => {
                    want.remove(&k);
                }
                2 => {
                    want.insert(k, b"changed".to_vec());
                }
                _ => {}
            }
        }
        prop_assert_eq!(read(&after, u64::MAX), want);
        prop_assert_eq!(stats.filtered_entries, filtered);
    }
}

/// Each key's newest version among `entries`.
fn read_newest(entries: &[Entry]) -> BTreeMap<Vec<u8>, Entry> {
    let mut newest: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
    for e in entries {
        if newest.get(&e.key).is_none_or(|n| n.seq < e.seq) {
            newest.insert(e.key.clone(), e.clone());
        }
    }
    newest
}
