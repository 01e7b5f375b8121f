use super::*;
use crate::range_del::RangeTombstone;
use crate::test_util::{
    check_files, file_tombstones, same_tombstones, visible, Entry, MemFile, MemInputs, MemSink,
};
use crate::types::{CompactionReason, EntryKind, FileInfo, LevelInputs};
use std::collections::HashSet;

fn key(i: u32) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

/// Three runs over 2000 keys with several versions each, and a job whose
/// input files are 10 slices of each run.
fn setup() -> (MemInputs, CompactionJob) {
    setup_with(Vec::new())
}

/// As [`setup`], with range tombstones among the inputs; the points' sequence
/// numbers skip the tombstones'.
fn setup_with(tombstones: Vec<RangeTombstone>) -> (MemInputs, CompactionJob) {
    let reserved: HashSet<u64> = tombstones.iter().map(|t| t.seq).collect();
    let mut runs: Vec<Vec<Entry>> = vec![Vec::new(); 3];
    let mut seq = 1;
    for i in 0..2000u32 {
        for v in 0..(i % 4 + 1) {
            while reserved.contains(&seq) {
                seq += 1;
            }
            let run = ((i + v) % 3) as usize;
            runs[run].push(Entry {
                key: key(i),
                seq,
                kind: if (i + v) % 7 == 0 {
                    EntryKind::Delete
                } else {
                    EntryKind::Value
                },
                value: vec![b'v'; (i % 50) as usize],
            });
            seq += 1;
        }
    }
    for r in &mut runs {
        r.sort_by(|a, b| a.key.cmp(&b.key).then(b.seq.cmp(&a.seq)));
    }
    let mut inputs = Vec::new();
    for (level, r) in runs.iter().enumerate() {
        let files = r
            .chunks(r.len().div_ceil(10).max(1))
            .enumerate()
            .map(|(i, c)| FileInfo {
                id: (level * 100 + i) as u64,
                size: c.iter().map(|e| (e.key.len() + e.value.len()) as u64).sum(),
                smallest: c[0].key.clone(),
                largest: c[c.len() - 1].key.clone(),
                smallest_seq: 0,
                largest_seq: 0,
                num_entries: c.len() as u64,
                num_deletions: 0,
                being_compacted: false,
                created_at: 0,
            })
            .collect();
        inputs.push(LevelInputs { level, files });
    }
    let job = CompactionJob {
        inputs,
        output_level: 3,
        trivial_move: false,
        reason: CompactionReason::Manual,
        score: 0.0,
        target_file_size: 4096,
        bottommost: true,
        max_subcompactions: 4,
    };
    (
        MemInputs {
            runs,
            tombstones: FragmentedTombstones::new(tombstones),
        },
        job,
    )
}

fn run(job: &CompactionJob, inputs: &MemInputs) -> JobResult<MemFile> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("pool");
    run_job(
        job,
        inputs,
        &MemSink::default(),
        &[500, 3000],
        Default::default(),
        &pool,
    )
    .expect("in memory")
}

#[test]
fn four_subcompactions_equal_one() {
    let (inputs, job) = setup();
    let split = run(&job, &inputs);
    assert_eq!(split.subcompactions, 4);
    let one = run(
        &CompactionJob {
            max_subcompactions: 1,
            ..job.clone()
        },
        &inputs,
    );
    assert_eq!(one.subcompactions, 1);
    let flat = |r: &JobResult<MemFile>| {
        r.outputs
            .iter()
            .flat_map(|f| f.entries.iter())
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(flat(&split), flat(&one));
    assert_eq!(split.stats, one.stats);
    assert!(split.stats.dropped_tombstones > 0 && split.stats.dropped_versions > 0);

    // The ranges carry roughly equal input bytes.
    let ranges = subcompaction_ranges(&job);
    let bytes: Vec<u64> = ranges
        .iter()
        .map(|r| {
            inputs
                .runs
                .iter()
                .flatten()
                .filter(|e| r.contains(&e.key))
                .map(|e| (e.key.len() + e.value.len()) as u64)
                .sum()
        })
        .collect();
    let total: u64 = bytes.iter().sum();
    for b in &bytes {
        assert!(*b > total / 8 && *b < total / 2, "unbalanced: {bytes:?}");
    }

    for result in [&split, &one] {
        let mut seen = HashSet::new();
        let n = result.outputs.len();
        assert!(n > 10, "expected many outputs, got {n}");
        for (i, out) in result.outputs.iter().enumerate() {
            let out = &out.entries;
            assert!(!out.is_empty());
            // No user key spans two outputs.
            let keys: HashSet<&Vec<u8>> = out.iter().map(|e| &e.key).collect();
            for k in keys {
                assert!(seen.insert(k.clone()), "key split across outputs");
            }
            // Cut once the target is reached, not before, not much after.
            let size: u64 = out
                .iter()
                .map(|e| (e.key.len() + e.value.len() + 8) as u64)
                .sum();
            let last_key = &out[out.len() - 1].key;
            let before_last: u64 = out
                .iter()
                .filter(|e| &e.key != last_key)
                .map(|e| (e.key.len() + e.value.len() + 8) as u64)
                .sum();
            assert!(
                before_last < job.target_file_size,
                "output {i} cut too late"
            );
            if i + 1 < n && result.subcompactions == 1 {
                assert!(size >= job.target_file_size, "output {i} cut too early");
            }
        }
    }
}

#[test]
fn ranges_cover_everything_in_order() {
    let (_, job) = setup();
    for n in 1..=8 {
        let ranges = subcompaction_ranges(&CompactionJob {
            max_subcompactions: n,
            ..job.clone()
        });
        assert!(ranges.len() <= n && !ranges.is_empty());
        assert_eq!(ranges[0].start, None);
        assert_eq!(ranges[ranges.len() - 1].end, None);
        for w in ranges.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(w[0]
                .start
                .as_ref()
                .is_none_or(|s| Some(s) < w[0].end.as_ref()));
        }
    }
    // A job without inputs still gets one range.
    let empty = CompactionJob {
        inputs: vec![],
        ..job
    };
    assert_eq!(subcompaction_ranges(&empty), vec![KeyRange::all()]);
}

#[test]
fn range_tombstones_across_subcompactions() {
    let rt = |a: u32, b: u32, seq: u64| RangeTombstone {
        start: key(a),
        end: key(b),
        seq,
    };
    // Snapshots are 500 and 3000 (see `run`); the points take 1..~5000.
    let tombstones = vec![
        rt(100, 1200, 400),   // earliest stripe: goes on the bottommost level
        rt(300, 700, 2000),   // middle stripe
        rt(900, 1900, 4000),  // latest stripe
        rt(1500, 1510, 2500), // inside the one above, older stripe
        rt(1990, 2500, 4500), // past the last key
    ];
    let (inputs, job) = setup_with(tombstones.clone());
    let ranges = subcompaction_ranges(&job);
    assert_eq!(ranges.len(), 4);
    // Some split point falls strictly inside a tombstone.
    let split_inside = ranges
        .iter()
        .filter_map(|r| r.end.as_ref())
        .any(|e| tombstones.iter().any(|t| t.start < *e && *e < t.end));
    assert!(split_inside, "no tombstone spans a split point: {ranges:?}");

    let points: Vec<Entry> = inputs.runs.iter().flatten().cloned().collect();
    let mut keys: Vec<Vec<u8>> = (0..2100).map(key).collect();
    keys.extend(ranges.iter().filter_map(|r| r.end.clone()));
    let snapshots = [500u64, 3000];
    for bottommost in [true, false] {
        let job = CompactionJob {
            bottommost,
            ..job.clone()
        };
        let split = run(&job, &inputs);
        let one = run(
            &CompactionJob {
                max_subcompactions: 1,
                ..job.clone()
            },
            &inputs,
        );
        assert_eq!(split.subcompactions, 4);
        for (result, ranges) in [(&split, ranges.clone()), (&one, vec![KeyRange::all()])] {
            let per_range = check_files(&result.outputs, &ranges).expect("file shapes");
            assert!(per_range.iter().all(|&n| n > 1), "{per_range:?}");
            let out: Vec<Entry> = result
                .outputs
                .iter()
                .flat_map(|f| f.entries.iter())
                .cloned()
                .collect();
            let ts_out = file_tombstones(&result.outputs);
            for r in snapshots.iter().copied().chain([u64::MAX]) {
                for k in &keys {
                    assert_eq!(
                        visible(&out, &ts_out, k, r),
                        visible(&points, &tombstones, k, r),
                        "key {k:?} reader {r} bottommost {bottommost}"
                    );
                }
            }
            // The files hold what garbage collection keeps, split or not.
            let kept = inputs.tombstones.collect_garbage(&snapshots, bottommost);
            assert!(same_tombstones(
                &FragmentedTombstones::new(ts_out.clone()),
                &kept
            ));
            assert_eq!(ts_out.iter().any(|t| t.seq == 400), !bottommost);
            let s = &result.stats;
            assert!(s.dropped_by_range_tombstones > 0);
            assert_eq!(
                s.output_entries
                    + s.dropped_versions
                    + s.dropped_tombstones
                    + s.dropped_by_range_tombstones,
                s.input_entries
            );
            assert_eq!(s.input_range_tombstones, inputs.tombstones.len() as u64);
            assert_eq!(s.output_range_tombstones, ts_out.len() as u64);
        }
        // Splitting changes where files are cut, not what they hold.
        let flat = |r: &JobResult<MemFile>| {
            r.outputs
                .iter()
                .flat_map(|f| f.entries.iter())
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(flat(&split), flat(&one));
        let same = |mut s: MergeStats| {
            s.output_range_tombstones = 0;
            s
        };
        assert_eq!(same(split.stats), same(one.stats));
    }
}
