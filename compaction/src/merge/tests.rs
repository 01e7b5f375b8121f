use super::*;
use crate::range_del::RangeTombstone;
use crate::test_util::{
    check_files, file_tombstones, same_tombstones, visible, Entry, MemFile, MemSink, VecCursor,
};
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
        let policy = GcPolicy { snapshots: snaps.clone(), bottommost, merge: None, filter: None };
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
        merge: None,
        filter: None,
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
            merge: None,
            filter: None,
        },
    );
    assert!(out.is_empty());
    assert_eq!(stats.dropped_tombstones, 1);
    assert_eq!(stats.dropped_versions, 4);
}

// ---- Range tombstones ----

/// A point key: even `i` gives `[i / 2]`, odd gives `[i / 2, 3]`.
fn point_key(i: u8) -> Vec<u8> {
    if i.is_multiple_of(2) {
        vec![i / 2]
    } else {
        vec![i / 2, 3]
    }
}

/// A tombstone bound or split point: even `i` gives `[i / 2]` (a point
/// key), odd gives `[i / 2, 7]` (between point keys).
fn bound_key(i: u8) -> Vec<u8> {
    if i.is_multiple_of(2) {
        vec![i / 2]
    } else {
        vec![i / 2, 7]
    }
}

/// Every key the cases use, and a few around them.
fn alphabet() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0u8..26)
        .map(point_key)
        .chain((0u8..26).map(bound_key))
        .collect();
    keys.push(Vec::new());
    keys.sort();
    keys.dedup();
    keys
}

fn del(key: &[u8], seq: u64) -> Entry {
    Entry {
        key: key.to_vec(),
        seq,
        kind: EntryKind::Delete,
        value: Vec::new(),
    }
}

fn put(key: &[u8], seq: u64) -> Entry {
    Entry {
        key: key.to_vec(),
        seq,
        kind: EntryKind::Value,
        value: vec![seq as u8; 4],
    }
}

fn rt(start: &[u8], end: &[u8], seq: u64) -> RangeTombstone {
    RangeTombstone {
        start: start.to_vec(),
        end: end.to_vec(),
        seq,
    }
}

/// A random merge with range tombstones.
#[derive(Debug, Clone)]
struct RdCase {
    /// The job's input runs.
    inputs: Vec<Vec<Entry>>,
    /// The job's input range tombstones.
    tombstones: Vec<RangeTombstone>,
    /// Versions in a level below the job (older than all of its entries);
    /// empty when `bottommost`.
    below: Vec<Entry>,
    snapshots: Vec<u64>,
    bottommost: bool,
    /// Subcompaction split points, ascending, distinct.
    splits: Vec<Vec<u8>>,
    target_file_size: u64,
}

impl RdCase {
    fn ranges(&self) -> Vec<KeyRange> {
        let mut out = Vec::new();
        let mut start = None;
        for s in &self.splits {
            out.push(KeyRange {
                start: start.take(),
                end: Some(s.clone()),
            });
            start = Some(s.clone());
        }
        out.push(KeyRange { start, end: None });
        out
    }

    /// Every range's merge, as `run_job` does it: outputs in key order and
    /// the counters added up.
    fn run(&self) -> (Vec<MemFile>, MergeStats, Vec<FragmentedTombstones>) {
        let policy = GcPolicy {
            snapshots: self.snapshots.clone(),
            bottommost: self.bottommost,
            merge: None,
            filter: None,
        };
        let all = FragmentedTombstones::new(self.tombstones.clone());
        let mut files = Vec::new();
        let mut stats = MergeStats::default();
        let mut kept = Vec::new();
        for r in self.ranges() {
            let cursors: Vec<VecCursor> = self
                .inputs
                .iter()
                .map(|run| {
                    VecCursor::new(run.iter().filter(|e| r.contains(&e.key)).cloned().collect())
                })
                .collect();
            let ts = all.clip(r.start.as_deref(), r.end.as_deref());
            let mut snaps = self.snapshots.clone();
            snaps.sort_unstable();
            snaps.dedup();
            kept.push(ts.collect_garbage(&snaps, self.bottommost));
            let (out, s) = write_outputs(
                cursors,
                &policy,
                &ts,
                &r,
                &MemSink::default(),
                self.target_file_size,
            )
            .expect("in-memory merge");
            files.extend(out);
            stats.add(&s);
        }
        (files, stats, kept)
    }
}

fn arb_rd_case() -> impl Strategy<Value = RdCase> {
    (1usize..5, 0usize..60, any::<bool>())
        .prop_flat_map(|(runs, n, bottommost)| {
            let below_n = if bottommost { 0..1usize } else { 0..12usize };
            (
                Just(runs),
                // (tombstone?, key or start, end, run, delete?, value)
                prop::collection::vec((0u8..100, 0u8..21, 0u8..26, 0usize..runs, any::<bool>()), n),
                prop::collection::vec((0u8..21, any::<bool>()), below_n),
                prop::collection::vec(0u64..80, 0..4),
                Just(bottommost),
                prop::collection::btree_set(0u8..26, 0..3),
                1u64..60,
            )
        })
        .prop_map(
            |(runs, events, below, snapshots, bottommost, splits, target)| {
                // Sequence numbers: `below` first (older), then the job's
                // entries and tombstones, one each.
                let mut seq = 0u64;
                let below: Vec<Entry> = below
                    .into_iter()
                    .map(|(k, d)| {
                        seq += 1;
                        if d {
                            del(&point_key(k), seq)
                        } else {
                            put(&point_key(k), seq)
                        }
                    })
                    .collect();
                let mut inputs = vec![Vec::new(); runs];
                let mut tombstones = Vec::new();
                for (what, a, b, run, d) in events {
                    seq += 1;
                    if what < 15 {
                        // Mostly non-empty ranges.
                        let (a, b) = (bound_key(a), bound_key(b));
                        let (s, e) = if a <= b { (a, b) } else { (b, a) };
                        tombstones.push(rt(&s, &e, seq));
                    } else {
                        let k = point_key(a);
                        inputs[run].push(if d { del(&k, seq) } else { put(&k, seq) });
                    }
                }
                for inp in &mut inputs {
                    inp.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
                }
                RdCase {
                    inputs,
                    tombstones,
                    below,
                    snapshots,
                    bottommost,
                    splits: splits.into_iter().map(bound_key).collect(),
                    target_file_size: target,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn range_tombstones_preserve_every_snapshot_view(case in arb_rd_case()) {
        let (files, stats, kept) = case.run();
        let ranges = case.ranges();

        // Shape: order, no overlap, tombstones inside each file's range.
        let per_range = check_files(&files, &ranges);
        prop_assert!(per_range.is_ok(), "{:?}", per_range);
        let per_range = per_range.unwrap_or_default();

        // What every reader sees, for every key, is unchanged (levels
        // below the job included).
        let all_in: Vec<Entry> = case.inputs.iter().flatten().chain(&case.below).cloned().collect();
        let all_out: Vec<Entry> = files.iter().flat_map(|f| f.entries.iter()).chain(&case.below).cloned().collect();
        let ts_out = file_tombstones(&files);
        let readers: Vec<u64> = case.snapshots.iter().copied().chain([u64::MAX]).collect();
        for k in alphabet() {
            for &r in &readers {
                prop_assert_eq!(
                    visible(&all_out, &ts_out, &k, r),
                    visible(&all_in, &case.tombstones, &k, r),
                    "key {:?} reader {}", k, r
                );
            }
        }

        // The files hold exactly what garbage collection keeps of the
        // tombstones; a range whose entries all went holds them in one file.
        let want = FragmentedTombstones::merge(&kept);
        let got = FragmentedTombstones::new(ts_out.clone());
        prop_assert!(same_tombstones(&got, &want), "files {:?}\nwant {:?}", got, want);
        for (i, k) in kept.iter().enumerate() {
            let entries_in_range = files
                .iter()
                .flat_map(|f| &f.entries)
                .any(|e| ranges[i].contains(&e.key));
            if !entries_in_range {
                prop_assert_eq!(per_range[i], usize::from(!k.is_empty()), "range {}", i);
            }
        }

        let mut snaps = case.snapshots.clone();
        snaps.sort_unstable();
        let stripe = |s: u64| snaps.partition_point(|&x| x < s);
        if case.bottommost {
            prop_assert!(!ts_out.iter().any(|t| stripe(t.seq) == 0), "earliest-stripe range tombstone kept");
            prop_assert!(
                !all_out.iter().any(|e| e.kind == EntryKind::Delete && stripe(e.seq) == 0),
                "earliest-stripe point tombstone kept"
            );
        }
        // No entry survives that a range tombstone of its stripe deletes.
        for e in files.iter().flat_map(|f| &f.entries) {
            prop_assert!(
                !ts_out.iter().chain(&case.tombstones).any(|t| t.start <= e.key
                    && e.key < t.end
                    && t.seq > e.seq
                    && stripe(t.seq) == stripe(e.seq)),
                "covered entry kept: {:?}", e
            );
        }

        // Counters.
        let n_in = case.inputs.iter().map(Vec::len).sum::<usize>() as u64;
        prop_assert_eq!(stats.input_entries, n_in);
        prop_assert_eq!(stats.output_entries, (all_out.len() - case.below.len()) as u64);
        prop_assert_eq!(
            stats.output_entries
                + stats.dropped_versions
                + stats.dropped_tombstones
                + stats.dropped_by_range_tombstones,
            stats.input_entries
        );
        prop_assert_eq!(stats.output_range_tombstones, ts_out.len() as u64);
        if case.tombstones.is_empty() {
            prop_assert_eq!(stats.dropped_by_range_tombstones, 0);
        }
    }
}

fn merge_one(
    inputs: Vec<Vec<Entry>>,
    tombstones: &[RangeTombstone],
    snapshots: &[u64],
    bottommost: bool,
    target_file_size: u64,
) -> (Vec<MemFile>, MergeStats) {
    let policy = GcPolicy {
        snapshots: snapshots.to_vec(),
        bottommost,
        merge: None,
        filter: None,
    };
    let cursors = inputs.into_iter().map(VecCursor::new).collect();
    let ts = FragmentedTombstones::new(tombstones.to_vec());
    write_outputs(
        cursors,
        &policy,
        &ts,
        &KeyRange::all(),
        &MemSink::default(),
        target_file_size,
    )
    .expect("in memory")
}

fn seqs(files: &[MemFile]) -> Vec<(Vec<u8>, u64)> {
    files
        .iter()
        .flat_map(|f| &f.entries)
        .map(|e| (e.key.clone(), e.seq))
        .collect()
}

#[test]
fn covered_version_in_the_same_stripe_is_dropped() {
    // b@5 and b@3 under [a, c)@7, no snapshot: both deleted for everyone.
    let (files, stats) = merge_one(
        vec![vec![put(b"b", 5), put(b"b", 3), put(b"c", 4)]],
        &[rt(b"a", b"c", 7)],
        &[],
        false,
        1 << 20,
    );
    assert_eq!(seqs(&files), vec![(b"c".to_vec(), 4)]);
    assert_eq!(stats.dropped_by_range_tombstones, 1);
    assert_eq!(stats.dropped_versions, 1);
    // Not bottommost: the tombstone stays (it deletes versions below).
    assert_eq!(files.len(), 1);
    assert_eq!(file_tombstones(&files), vec![rt(b"a", b"c", 7)]);
    assert_eq!(stats.input_range_tombstones, 1);
    assert_eq!(stats.output_range_tombstones, 1);

    // A covered point tombstone goes too.
    let (files, stats) = merge_one(
        vec![vec![del(b"b", 5)]],
        &[rt(b"a", b"c", 7)],
        &[],
        false,
        1,
    );
    assert!(seqs(&files).is_empty());
    assert_eq!(stats.dropped_by_range_tombstones, 1);
}

#[test]
fn a_snapshot_between_version_and_tombstone_protects_the_version() {
    // Snapshot 6 sees b@5; the tombstone @7 is in the next stripe.
    let (files, stats) = merge_one(
        vec![vec![put(b"b", 5), put(b"b", 4)]],
        &[rt(b"a", b"c", 7)],
        &[6],
        false,
        1 << 20,
    );
    assert_eq!(seqs(&files), vec![(b"b".to_vec(), 5)]);
    assert_eq!(stats.dropped_by_range_tombstones, 0);
    assert_eq!(stats.dropped_versions, 1);
    // The oldest tombstone above decides: @6 is in b@5's stripe.
    let (files, stats) = merge_one(
        vec![vec![put(b"b", 5)]],
        &[rt(b"a", b"c", 7), rt(b"b", b"d", 6)],
        &[6],
        false,
        1 << 20,
    );
    assert!(seqs(&files).is_empty());
    assert_eq!(stats.dropped_by_range_tombstones, 1);
    // Both tombstones stay (in different stripes): [a, b)@7, [b, c)@7,6,
    // [c, d)@6.
    assert_eq!(file_tombstones(&files).len(), 4);
}

#[test]
fn bottommost_drops_the_earliest_stripes_tombstones() {
    // Snapshot 10. Stripe 0: [a, c)@8; stripe 1: [a, d)@12, [b, d)@15.
    let tombstones = [rt(b"a", b"c", 8), rt(b"a", b"d", 12), rt(b"b", b"d", 15)];
    let inputs = vec![vec![
        put(b"a", 9),  // above @8, below @12 (next stripe): kept
        put(b"a", 5),  // older, same stripe as a@9: dropped as a version
        put(b"b", 11), // stripe 1, under @12: dropped
        put(b"b", 7),  // stripe 0, under @8: dropped
        del(b"c", 6),  // a point tombstone of stripe 0: dropped
        put(b"c", 2),  // and what it hides
        put(b"e", 3),  // nothing covers it
    ]];
    let (files, stats) = merge_one(inputs, &tombstones, &[10], true, 1 << 20);
    assert_eq!(seqs(&files), vec![(b"a".to_vec(), 9), (b"e".to_vec(), 3)]);
    assert_eq!(stats.dropped_by_range_tombstones, 2);
    assert_eq!(stats.dropped_tombstones, 1);
    assert_eq!(stats.dropped_versions, 2);
    // @8 is gone, @12 only where @15 does not cover.
    assert_eq!(
        file_tombstones(&files),
        vec![rt(b"a", b"b", 12), rt(b"b", b"d", 15)]
    );
    // Not bottommost, all three stay (@8 and @12 are the newest of their
    // stripes on [a, b)), and b@7 goes (under @8, same stripe).
    let inputs = vec![vec![put(b"b", 7)]];
    let (files, _) = merge_one(inputs, &tombstones, &[10], false, 1 << 20);
    assert!(seqs(&files).is_empty());
    assert_eq!(
        file_tombstones(&files),
        vec![
            rt(b"a", b"b", 12),
            rt(b"a", b"b", 8),
            rt(b"b", b"c", 15),
            rt(b"b", b"c", 8),
            rt(b"c", b"d", 15),
        ]
    );
}

#[test]
fn tombstones_alone_make_one_file() {
    let inputs = vec![vec![put(b"b", 1), put(b"c", 2), put(b"d", 3)]];
    let (files, stats) = merge_one(inputs, &[rt(b"a", b"z", 9)], &[], false, 1);
    assert_eq!(files.len(), 1);
    assert!(files[0].entries.is_empty());
    assert_eq!(file_tombstones(&files), vec![rt(b"a", b"z", 9)]);
    assert_eq!(stats.dropped_by_range_tombstones, 3);
    // Bottommost: nothing at all survives, and no file is made.
    let inputs = vec![vec![put(b"b", 1)]];
    let (files, _) = merge_one(inputs, &[rt(b"a", b"z", 9)], &[], true, 1);
    assert!(files.is_empty());
    // No entry and no tombstone: no file.
    let (files, _) = merge_one(vec![vec![]], &[], &[], false, 1);
    assert!(files.is_empty());
}

#[test]
fn files_split_the_tombstones_at_their_boundaries() {
    // One entry per file (target 1); a tombstone spans them all; the
    // merge covers [b, x).
    let inputs = vec![vec![put(b"c", 1), put(b"e", 2), put(b"g", 3)]];
    let ts = FragmentedTombstones::new([rt(b"a", b"z", 4)]);
    let range = KeyRange {
        start: Some(b"b".to_vec()),
        end: Some(b"x".to_vec()),
    };
    let policy = GcPolicy {
        snapshots: vec![3],
        bottommost: false,
        merge: None,
        filter: None,
    };
    let cursors = inputs.into_iter().map(VecCursor::new).collect();
    let clipped = ts.clip(Some(b"b"), Some(b"x"));
    let (files, stats) = write_outputs(cursors, &policy, &clipped, &range, &MemSink::default(), 1)
        .expect("in memory");
    assert_eq!(files.len(), 3);
    let spans: Vec<(Vec<u8>, Vec<u8>)> = file_tombstones(&files)
        .into_iter()
        .map(|t| (t.start, t.end))
        .collect();
    assert_eq!(
        spans,
        vec![
            (b"b".to_vec(), b"e".to_vec()),
            (b"e".to_vec(), b"g".to_vec()),
            (b"g".to_vec(), b"x".to_vec()),
        ]
    );
    assert_eq!(stats.input_range_tombstones, 1);
    assert_eq!(stats.output_range_tombstones, 3);
    assert!(check_files(&files, std::slice::from_ref(&range)).is_ok());
}
