//! The leveled style.

use super::{base_level, hull, is_bottommost, level_scores, overlap_range, ManualStep};
use crate::config::CompactionConfig;
use crate::types::{CompactionJob, CompactionReason, FileInfo, KeyRange, LevelInputs, LevelState};

/// A file is compacted for its tombstones only when it has at least this
/// many entries (and more than half of them are tombstones).
pub const TOMBSTONE_MIN_ENTRIES: u64 = 1000;

pub(super) fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let n = state.levels.len();
    let base = base_level(state, config);
    let scores = level_scores(state, config);
    let mut order: Vec<usize> = (0..n.saturating_sub(1))
        .filter(|&l| scores[l] >= 1.0)
        .collect();
    // Highest score first; ties go to the upper level.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    for level in order {
        let job = if level == 0 {
            pick_l0(state, config, base, scores[0])
        } else {
            pick_level(state, config, level, scores[level])
        };
        if job.is_some() {
            return job;
        }
    }
    pick_tombstones(state, config)
}

/// Level 0 into the base level: the oldest group of level-0 files that
/// overlap one another (transitively) and that no job is compacting, with
/// every base-level file overlapping them (and every level-0 file
/// overlapping those, until nothing changes).
fn pick_l0(
    state: &LevelState,
    config: &CompactionConfig,
    base: usize,
    score: f64,
) -> Option<CompactionJob> {
    let l0 = &state.levels[0];
    for group in l0_groups(l0) {
        if group.iter().any(|&i| l0[i].being_compacted) {
            continue;
        }
        let Some((lo, hi)) = hull(group.iter().map(|&i| &l0[i])) else {
            continue;
        };
        if let Some(job) = l0_job(
            state,
            config,
            base,
            lo,
            hi,
            CompactionReason::L0FileCount,
            score,
        ) {
            return Some(job);
        }
    }
    None
}

/// Groups of level-0 files whose ranges connect, oldest group first (by
/// its oldest file). Indices are into level 0 (newest first).
fn l0_groups(l0: &[FileInfo]) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..l0.len()).collect();
    idx.sort_by(|&a, &b| l0[a].smallest.cmp(&l0[b].smallest));
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut hi: Option<&[u8]> = None;
    for i in idx {
        let f = &l0[i];
        match (groups.last_mut(), hi) {
            (Some(g), Some(h)) if f.smallest.as_slice() <= h => {
                g.push(i);
                hi = Some(h.max(f.largest.as_slice()));
            }
            _ => {
                groups.push(vec![i]);
                hi = Some(f.largest.as_slice());
            }
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.iter().copied().max().unwrap_or(0)));
    groups
}

/// The level-0 job for `[lo, hi]`, closed under overlap in level 0 and the
/// base level; `None` if it needs a file being compacted.
fn l0_job(
    state: &LevelState,
    config: &CompactionConfig,
    base: usize,
    mut lo: Vec<u8>,
    mut hi: Vec<u8>,
    reason: CompactionReason,
    score: f64,
) -> Option<CompactionJob> {
    let l0 = &state.levels[0];
    let lower = state.levels.get(base)?;
    loop {
        let r = overlap_range(lower, &lo, &hi);
        let upper = l0.iter().filter(|f| f.overlaps(&lo, &hi));
        let (nlo, nhi) = hull(upper.chain(lower[r].iter()))?;
        if nlo == lo && nhi == hi {
            break;
        }
        lo = nlo.min(lo);
        hi = nhi.max(hi);
    }
    let upper: Vec<FileInfo> = l0
        .iter()
        .filter(|f| f.overlaps(&lo, &hi))
        .cloned()
        .collect();
    let lower_files = &lower[overlap_range(lower, &lo, &hi)];
    if upper.is_empty() || upper.iter().chain(lower_files).any(|f| f.being_compacted) {
        return None;
    }
    Some(make_job(
        state,
        config,
        0,
        upper,
        base,
        lower_files.to_vec(),
        reason,
        score,
    ))
}

/// Level `level >= 1` into the next: the file whose overlapping bytes in
/// the next level are smallest relative to its own size (RocksDB's
/// `kMinOverlappingRatio`), ties by key; the first such file that works.
fn pick_level(
    state: &LevelState,
    config: &CompactionConfig,
    level: usize,
    score: f64,
) -> Option<CompactionJob> {
    let files = &state.levels[level];
    let lower = state.levels.get(level + 1)?;
    let mut cands: Vec<(f64, usize)> = files
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.being_compacted)
        .map(|(i, f)| {
            let overlap: u64 = lower[overlap_range(lower, &f.smallest, &f.largest)]
                .iter()
                .map(|g| g.size)
                .sum();
            (overlap as f64 / f.size.max(1) as f64, i)
        })
        .collect();
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    cands.into_iter().find_map(|(_, i)| {
        level_job(
            state,
            config,
            level,
            i..i + 1,
            level + 1,
            CompactionReason::LevelSize,
            score,
        )
    })
}

/// Files `range` of `level` (expanded so that no user key is split between
/// picked and unpicked files) into `output` (the next level, or `level`
/// itself for an in-place rewrite of the last level).
fn level_job(
    state: &LevelState,
    config: &CompactionConfig,
    level: usize,
    range: std::ops::Range<usize>,
    output: usize,
    reason: CompactionReason,
    score: f64,
) -> Option<CompactionJob> {
    let files = state.levels.get(level)?;
    let (mut start, mut end) = (range.start, range.end.min(files.len()));
    if start >= end {
        return None;
    }
    while start > 0 && files[start - 1].largest >= files[start].smallest {
        start -= 1;
    }
    while end < files.len() && files[end].smallest <= files[end - 1].largest {
        end += 1;
    }
    let upper = &files[start..end];
    if upper.iter().any(|f| f.being_compacted) {
        return None;
    }
    let lower: Vec<FileInfo> = if output == level {
        Vec::new()
    } else {
        let (lo, hi) = hull(upper)?;
        let lower_level = state.levels.get(output)?;
        let lower = &lower_level[overlap_range(lower_level, &lo, &hi)];
        if lower.iter().any(|f| f.being_compacted) {
            return None;
        }
        lower.to_vec()
    };
    Some(make_job(
        state,
        config,
        level,
        upper.to_vec(),
        output,
        lower,
        reason,
        score,
    ))
}

/// A manual job rewriting, in place, the files of the deepest non-empty
/// level that overlap `range` (RocksDB's bottommost-level compaction, for
/// a compaction filter to see them); `None` when no file overlaps.
pub(super) fn bottommost_job(
    state: &LevelState,
    config: &CompactionConfig,
    range: &KeyRange,
) -> Option<CompactionJob> {
    let level = (1..state.levels.len())
        .rev()
        .find(|&l| !state.levels[l].is_empty())?;
    let files: Vec<FileInfo> = state.levels[level]
        .iter()
        .filter(|f| range.overlaps(&f.smallest, &f.largest))
        .cloned()
        .collect();
    if files.is_empty() {
        return None;
    }
    let job = make_job(
        state,
        config,
        level,
        files,
        level,
        Vec::new(),
        CompactionReason::Manual,
        0.0,
    );
    Some(job)
}

#[allow(clippy::too_many_arguments)]
fn make_job(
    state: &LevelState,
    config: &CompactionConfig,
    level: usize,
    upper: Vec<FileInfo>,
    output: usize,
    lower: Vec<FileInfo>,
    reason: CompactionReason,
    score: f64,
) -> CompactionJob {
    let (lo, hi) = hull(upper.iter().chain(lower.iter())).unwrap_or_default();
    let trivial_move = output != level && upper.len() == 1 && lower.is_empty();
    let mut inputs = vec![LevelInputs {
        level,
        files: upper,
    }];
    if !lower.is_empty() {
        inputs.push(LevelInputs {
            level: output,
            files: lower,
        });
    }
    CompactionJob {
        inputs,
        output_level: output,
        trivial_move,
        reason,
        score,
        target_file_size: config.target_file_size(output),
        bottommost: is_bottommost(state, output, &lo, &hi),
        max_subcompactions: if trivial_move {
            1
        } else {
            config.max_subcompactions.max(1)
        },
    }
}

/// When no level needs compacting: the file of a level `>= 1` densest in
/// tombstones (more than half, at least [`TOMBSTONE_MIN_ENTRIES`] entries)
/// is compacted into the next level, or, in the last level, rewritten in
/// place (only when all its entries are at or below the oldest snapshot,
/// so its tombstones surely go).
fn pick_tombstones(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let n = state.levels.len();
    let last = n - 1;
    let mut cands: Vec<(f64, usize, usize)> = Vec::new();
    for (l, files) in state.levels.iter().enumerate().skip(1) {
        for (i, f) in files.iter().enumerate() {
            if f.being_compacted
                || f.num_entries < TOMBSTONE_MIN_ENTRIES
                || f.num_deletions.saturating_mul(2) <= f.num_entries
            {
                continue;
            }
            if l == last && state.oldest_snapshot.is_some_and(|s| f.largest_seq > s) {
                continue;
            }
            cands.push((f.num_deletions as f64 / f.num_entries as f64, l, i));
        }
    }
    cands.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    cands.into_iter().find_map(|(density, l, i)| {
        let output = if l == last { l } else { l + 1 };
        level_job(
            state,
            config,
            l,
            i..i + 1,
            output,
            CompactionReason::TombstoneDensity,
            density,
        )
    })
}

/// The periodic-compaction job for file `i` of `level` (see
/// `super::periodic`); `None` when a file it needs is busy.
pub(super) fn periodic_job(
    state: &LevelState,
    config: &CompactionConfig,
    level: usize,
    i: usize,
) -> Option<CompactionJob> {
    let last = state.levels.len() - 1;
    if level == 0 {
        let f = state.levels[0].get(i)?;
        let base = base_level(state, config);
        return l0_job(
            state,
            config,
            base,
            f.smallest.clone(),
            f.largest.clone(),
            CompactionReason::Periodic,
            0.0,
        );
    }
    let output = if level == last { level } else { level + 1 };
    level_job(
        state,
        config,
        level,
        i..i + 1,
        output,
        CompactionReason::Periodic,
        0.0,
    )
}

pub(super) fn manual(
    state: &LevelState,
    config: &CompactionConfig,
    range: &KeyRange,
    from_level: usize,
) -> ManualStep {
    let n = state.levels.len();
    let base = base_level(state, config);
    for level in from_level..n - 1 {
        let files = &state.levels[level];
        let hits: Vec<usize> = (0..files.len())
            .filter(|&i| range.overlaps(&files[i].smallest, &files[i].largest))
            .collect();
        let (Some(&first), Some(&last)) = (hits.first(), hits.last()) else {
            continue;
        };
        let job = if level == 0 {
            let Some((lo, hi)) = hull(hits.iter().map(|&i| &files[i])) else {
                continue;
            };
            l0_job(state, config, base, lo, hi, CompactionReason::Manual, 0.0)
        } else {
            level_job(
                state,
                config,
                level,
                first..last + 1,
                level + 1,
                CompactionReason::Manual,
                0.0,
            )
        };
        return match job {
            Some(job) => ManualStep::Job(job),
            None => ManualStep::Busy,
        };
    }
    ManualStep::Done
}
