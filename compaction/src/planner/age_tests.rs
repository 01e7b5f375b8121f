//! The planner's decisions by age: FIFO deletions (size and TTL) and
//! periodic compaction.

use super::*;
use crate::config::{CompactionStyle, FifoConfig};
use crate::types::CompactionReason;

fn file(id: u64, level_seq: u64, lo: u8, hi: u8, size: u64, created_at: u64) -> FileInfo {
    FileInfo {
        id,
        size,
        smallest: vec![lo],
        largest: vec![hi],
        smallest_seq: level_seq,
        largest_seq: level_seq,
        num_entries: 10,
        num_deletions: 0,
        being_compacted: false,
        created_at,
    }
}

fn state(levels: Vec<Vec<FileInfo>>, now: u64, ttl: u64) -> LevelState {
    LevelState {
        levels,
        oldest_snapshot: None,
        now,
        ttl,
        blob_gc_below: 0,
    }
}

fn fifo(limit: u64) -> CompactionConfig {
    CompactionConfig::default()
        .style(CompactionStyle::Fifo)
        .fifo(FifoConfig::default().max_table_files_size(limit))
}

fn ids(job: &CompactionJob) -> Vec<u64> {
    job.input_files().map(|f| f.id).collect()
}

#[test]
fn fifo_deletes_the_oldest_files_down_to_the_size_limit() {
    // Flushed in sequence order 1, 2, 3, 4 (listed newest first, as level
    // 0 is), 100 bytes each.
    let l0: Vec<FileInfo> = (1..=4).rev().map(|i| file(i, i, 0, 9, 100, 0)).collect();
    let mut levels = vec![l0, Vec::new(), Vec::new()];
    assert_eq!(pick(&state(levels.clone(), 0, 0), &fifo(400)), None);
    let job = pick(&state(levels.clone(), 0, 0), &fifo(250)).unwrap();
    assert_eq!(ids(&job), [1, 2], "the two oldest leave 200 <= 250");
    assert_eq!(job.reason, CompactionReason::FifoMaxSize);
    assert!(job.deletes_only());
    // A file being deleted already is neither picked nor counted.
    levels[0][3].being_compacted = true;
    let job = pick(&state(levels, 0, 0), &fifo(250)).unwrap();
    assert_eq!(ids(&job), [2]);
}

#[test]
fn fifo_deletes_files_as_old_as_the_ttl_whatever_the_size() {
    let l0 = vec![
        file(3, 3, 0, 9, 100, 1_000),
        file(2, 2, 0, 9, 100, 940),
        file(1, 1, 0, 9, 100, 900),
    ];
    let levels = vec![l0, Vec::new()];
    // ttl 60 at now 1000: files created at or before 940 go.
    let job = pick(&state(levels.clone(), 1_000, 60), &fifo(1 << 30)).unwrap();
    assert_eq!(ids(&job), [1, 2]);
    assert_eq!(job.reason, CompactionReason::FifoTtl);
    // One second earlier only the oldest has its age.
    let job = pick(&state(levels.clone(), 999, 60), &fifo(1 << 30)).unwrap();
    assert_eq!(ids(&job), [1]);
    // No TTL, or no clock, or an unknown age: nothing by age.
    assert_eq!(pick(&state(levels.clone(), 1_000, 0), &fifo(1 << 30)), None);
    assert_eq!(pick(&state(levels.clone(), 0, 60), &fifo(1 << 30)), None);
    let unknown = vec![vec![file(1, 1, 0, 9, 100, 0)], Vec::new()];
    assert_eq!(pick(&state(unknown, 1_000, 60), &fifo(1 << 30)), None);
}

#[test]
fn fifo_never_merges_and_never_stalls_writes() {
    let l0: Vec<FileInfo> = (1..=50).map(|i| file(i, i, 0, 9, 100, 0)).collect();
    let s = state(vec![l0, Vec::new()], 0, 0);
    let cfg = fifo(1 << 30);
    assert_eq!(pick(&s, &cfg), None);
    assert_eq!(pending_compaction_bytes(&s, &cfg), 0);
    assert_eq!(write_stall(&s, &cfg, 0), WriteStall::None);
    assert!(level_scores(&s, &cfg).iter().all(|&x| x == 0.0));
    assert_eq!(manual(&s, &cfg, &KeyRange::default(), 0), ManualStep::Done);
}

fn periodic(secs: u64) -> CompactionConfig {
    CompactionConfig::default().periodic_compaction_seconds(secs)
}

#[test]
fn periodic_compaction_moves_old_files_down_and_rewrites_the_last_level() {
    // Levels 0..3; a small tree (no score reaches 1).
    let levels = vec![
        Vec::new(),
        Vec::new(),
        vec![file(5, 5, 0, 4, 100, 500)],
        vec![file(7, 1, 0, 9, 1000, 100)],
    ];
    let cfg = periodic(1_000);
    // Nothing is due before its period.
    assert_eq!(pick(&state(levels.clone(), 1_099, 0), &cfg), None);
    // At 1100 the last-level file (created at 100) is due: rewritten in
    // place.
    let job = pick(&state(levels.clone(), 1_100, 0), &cfg).unwrap();
    assert_eq!(job.reason, CompactionReason::Periodic);
    assert_eq!(ids(&job), [7]);
    assert_eq!(job.output_level, 3);
    assert!(!job.trivial_move);
    // At 1500 both are due; the oldest goes first, then, with it busy,
    // the level-2 file moves into level 3 (with the file it overlaps,
    // which is busy: no job) ...
    let mut busy = levels.clone();
    busy[3][0].being_compacted = true;
    assert_eq!(pick(&state(busy, 1_500, 0), &cfg), None);
    // ... and with nothing below it overlapping, a trivial move.
    let mut apart = levels.clone();
    apart[3][0].smallest = vec![5];
    apart[3][0].created_at = 1_500;
    let job = pick(&state(apart, 1_500, 0), &cfg).unwrap();
    assert_eq!(ids(&job), [5]);
    assert_eq!(job.output_level, 3);
    assert!(job.trivial_move);
    // Off, without a clock, or for unknown ages: nothing.
    assert_eq!(pick(&state(levels.clone(), 1_500, 0), &periodic(0)), None);
    assert_eq!(pick(&state(levels.clone(), 0, 0), &cfg), None);
    let mut unknown = levels;
    unknown[2][0].created_at = 0;
    unknown[3][0].created_at = 0;
    assert_eq!(pick(&state(unknown, 1_500, 0), &cfg), None);
}

#[test]
fn periodic_compaction_of_a_level_0_file_and_in_the_tiered_style() {
    let levels = vec![vec![file(9, 9, 0, 9, 100, 10)], Vec::new(), Vec::new()];
    let job = pick(&state(levels.clone(), 2_000, 0), &periodic(1_000)).unwrap();
    assert_eq!(job.reason, CompactionReason::Periodic);
    assert_eq!(ids(&job), [9]);
    assert!(job.output_level > 0);
    // Tiered: one run on the last level is rewritten in place.
    let tiered = periodic(1_000).style(CompactionStyle::Tiered);
    let one_run = vec![Vec::new(), Vec::new(), vec![file(4, 4, 0, 9, 100, 10)]];
    let job = pick(&state(one_run, 2_000, 0), &tiered).unwrap();
    assert_eq!(job.reason, CompactionReason::Periodic);
    assert_eq!(
        (ids(&job), job.output_level, job.trivial_move),
        (vec![4], 2, false)
    );
    // FIFO never runs periodic compactions.
    let f = fifo(1 << 30).periodic_compaction_seconds(1_000);
    assert_eq!(pick(&state(levels, 2_000, 0), &f), None);
}

/// Forced blob garbage collection: the files below the engine's mark are
/// compacted, deepest first, as periodic compaction moves a due file
/// (in place on the last level, down from a middle level), with reason
/// `BlobGc`; after everything a score asks for; never in FIFO.
#[test]
fn forced_blob_gc_rewrites_the_marked_files() {
    let levels = vec![
        Vec::new(),
        Vec::new(),
        vec![file(5, 5, 0, 4, 100, 0)],
        vec![file(7, 1, 0, 9, 1000, 0), file(12, 2, 10, 20, 1000, 0)],
    ];
    let cfg = CompactionConfig::default();
    let mut s = state(levels.clone(), 0, 0);
    assert_eq!(pick(&s, &cfg), None, "no mark: nothing to do");
    s.blob_gc_below = 10;
    let job = pick(&s, &cfg).unwrap();
    assert_eq!(job.reason, CompactionReason::BlobGc);
    assert_eq!(
        (ids(&job), job.output_level, job.trivial_move),
        (vec![7], 3, false)
    );
    // File 12 was written after the mark: never picked. With 7 busy, the
    // level-2 file goes down (with 7 busy below it: no job).
    s.levels[3][0].being_compacted = true;
    assert_eq!(pick(&s, &cfg), None);
    // Nothing marked is left once the rewritten file has a new id.
    s.levels[3][0].being_compacted = false;
    s.levels[3][0].id = 13;
    s.levels[2][0].id = 14;
    assert_eq!(pick(&s, &cfg), None);
    // Tiered: every run is merged into one; FIFO: never.
    let mut t = state(levels.clone(), 0, 0);
    t.blob_gc_below = 10;
    let tiered = CompactionConfig::default().style(CompactionStyle::Tiered);
    let job = pick(&t, &tiered).unwrap();
    assert_eq!(job.reason, CompactionReason::BlobGc);
    assert_eq!(job.input_files().count(), 3);
    assert_eq!(pick(&t, &fifo(1 << 30)), None);
    // A score-driven job comes first: level 0 over its trigger.
    let mut busy_l0 = state(levels, 0, 0);
    busy_l0.blob_gc_below = 10;
    busy_l0.levels[0] = (20..25).map(|i| file(i, i, 0, 9, 10, 0)).collect();
    assert_eq!(
        pick(&busy_l0, &cfg).unwrap().reason,
        CompactionReason::L0FileCount
    );
}
