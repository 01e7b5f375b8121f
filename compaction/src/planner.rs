//! Picks compaction jobs: leveled (RocksDB's level style with dynamic level
//! targets) or tiered (RocksDB's universal style, simplified), manual
//! `compact_range` steps, level targets and scores, the pending-bytes
//! estimate and write-stall decisions.
//!
//! Everything here is a pure function of a [`LevelState`] and a
//! [`CompactionConfig`]; no function panics on any state (an inconsistent
//! state may give a poor job, never a crash).

mod blob_gc;
mod fifo;
mod leveled;
mod periodic;
mod tiered;

use crate::config::{CompactionConfig, CompactionStyle};
use crate::types::{CompactionJob, FileInfo, KeyRange, LevelState};

pub use leveled::TOMBSTONE_MIN_ENTRIES;

/// Picks the next job, or `None` when nothing needs compacting (or
/// `disable_auto_compactions` is set).
///
/// Files with `being_compacted` set are never picked. When the engine marks
/// the files of each picked job as being compacted before picking again,
/// the jobs picked never conflict: no file is in two jobs, no two jobs
/// write overlapping key ranges into the same output level `>= 1`, and no
/// job's output range overlaps a file of its output level that another job
/// is compacting. (Tiered jobs may write level 0 concurrently: level-0
/// files may overlap, and each output takes its place in level 0 by its
/// largest sequence number, which the merged runs being consecutive keeps
/// correct.)
pub fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    if config.disable_auto_compactions || state.levels.len() < 2 {
        return None;
    }
    let job = match config.style {
        CompactionStyle::Leveled => leveled::pick(state, config),
        CompactionStyle::Tiered => tiered::pick(state, config),
        CompactionStyle::Fifo => return fifo::pick(state, config),
    };
    // Files past the period come after everything a score asks for, and
    // forced blob garbage collection last.
    job.or_else(|| periodic::pick(state, config))
        .or_else(|| blob_gc::pick(state, config))
}

/// One step of a manual compaction (see [`manual`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ManualStep {
    /// Run this job, then call [`manual`] again with
    /// `from_level = job.output_level`.
    Job(CompactionJob),
    /// Files the step needs are being compacted by another job; wait for it
    /// and call again with the same `from_level`.
    Busy,
    /// Everything overlapping the range is in the last level (or nothing
    /// overlaps it).
    Done,
}

/// One step of `compact_range(range)`: compacts everything overlapping
/// `range` down to the last level, one level at a time.
///
/// Contract: call with `from_level = 0`; on [`ManualStep::Job`] run the job
/// (it is a normal job with reason `Manual`, possibly a trivial move),
/// apply it, and call again with `from_level = job.output_level`; on
/// [`ManualStep::Busy`] wait for running jobs and retry; stop on
/// [`ManualStep::Done`]. The output level increases with every step, so
/// there are at most `num_levels` steps. Leveled: each step takes the
/// files of the first level at or below `from_level` (and above the last)
/// that overlap `range` (level 0: with every level-0 file overlapping them,
/// transitively) and compacts them with the overlapping files of the next
/// level (level 0: the base level). Tiered: the first step merges all runs
/// into the last level, whatever the range (like RocksDB's universal
/// `CompactRange`). FIFO: each step is the deletion [`pick`] would
/// choose now (whatever the range), until none is due. Manual steps run
/// even when `disable_auto_compactions` is set.
pub fn manual(
    state: &LevelState,
    config: &CompactionConfig,
    range: &KeyRange,
    from_level: usize,
) -> ManualStep {
    if state.levels.len() < 2 {
        return ManualStep::Done;
    }
    match config.style {
        CompactionStyle::Leveled => leveled::manual(state, config, range, from_level),
        CompactionStyle::Tiered => tiered::manual(state, config, from_level),
        // Nothing is ever merged: a manual compaction applies the
        // deletions due now, one job at a time.
        CompactionStyle::Fifo => match fifo::pick(state, config) {
            Some(job) => ManualStep::Job(job),
            None => ManualStep::Done,
        },
    }
}

/// After [`manual`] is done: a job that rewrites, in place, the files of
/// the deepest non-empty level below 0 that overlap `range`, so that
/// every key in it passes through compaction once (for a compaction
/// filter, as RocksDB's `bottommost_level_compaction`); `None` when there
/// are none. The caller must check that no other job uses those files.
pub fn manual_bottommost(
    state: &LevelState,
    config: &CompactionConfig,
    range: &KeyRange,
) -> Option<CompactionJob> {
    leveled::bottommost_job(state, config, range)
}

/// The level that level 0 compacts into: 1 without dynamic level bytes;
/// with them, the level that [`level_targets`] gives the first non-zero
/// target (levels above it are kept empty).
pub fn base_level(state: &LevelState, config: &CompactionConfig) -> usize {
    dynamic_targets(state, config).0
}

/// Target size in bytes of each level (one entry per level of `state`).
///
/// Level 0 is driven by its file count, and the levels above the base
/// level are kept empty; their target is 0. Without
/// `level_compaction_dynamic_level_bytes`: level 1 is
/// `max_bytes_for_level_base` and each next level `multiplier` times the
/// one above. With it (RocksDB's algorithm): the largest level's size is
/// divided by the multiplier once per level up to the first non-empty
/// level; while that exceeds the base and there are empty levels above,
/// the base level moves up one more level; the base level's target is that
/// size (at least `base / multiplier`, at most `base`), each level below is
/// `multiplier` times the one above, and no target is below `base`.
pub fn level_targets(state: &LevelState, config: &CompactionConfig) -> Vec<u64> {
    dynamic_targets(state, config).1
}

fn dynamic_targets(state: &LevelState, config: &CompactionConfig) -> (usize, Vec<u64>) {
    let n = state.levels.len();
    let mut targets = vec![0u64; n];
    if n < 2 {
        return (1, targets);
    }
    let mult = if config.max_bytes_for_level_multiplier.is_finite()
        && config.max_bytes_for_level_multiplier >= 1.0
    {
        config.max_bytes_for_level_multiplier
    } else {
        10.0
    };
    let base = config.max_bytes_for_level_base.max(1);
    if !config.level_compaction_dynamic_level_bytes {
        let mut t = base as f64;
        for target in targets.iter_mut().skip(1) {
            *target = to_u64(t);
            t *= mult;
        }
        return (1, targets);
    }
    let first_non_empty = (1..n).find(|&l| state.level_bytes(l) > 0);
    let Some(first_non_empty) = first_non_empty else {
        // Empty tree: level 0 goes straight to the last level.
        targets[n - 1] = base;
        return (n - 1, targets);
    };
    let max_level_size = (1..n).map(|l| state.level_bytes(l)).max().unwrap_or(0);
    let mut cur = max_level_size as f64;
    for _ in first_non_empty..(n - 1) {
        cur /= mult;
    }
    let base_min = base as f64 / mult;
    let mut base_level = first_non_empty;
    let base_size = if cur <= base_min {
        base_min + 1.0
    } else {
        while base_level > 1 && cur > base as f64 {
            base_level -= 1;
            cur /= mult;
        }
        cur.min(base as f64).max(1.0)
    };
    let mut t = base_size;
    for (l, target) in targets.iter_mut().enumerate().skip(base_level) {
        if l > base_level {
            t *= mult;
        }
        *target = to_u64(t).max(base);
    }
    (base_level, targets)
}

fn to_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x as u64
    }
}

/// Compaction score of each level (one entry per level of `state`); a
/// level with a score of at least 1 needs compacting.
///
/// Leveled: level 0 is its file count (files not being compacted) divided
/// by `level0_file_num_compaction_trigger`; level `n >= 1` is its bytes
/// (files not being compacted) divided by its target; the last level and
/// levels with a target of 0 score 0. Tiered: level 0 holds the number of
/// sorted runs divided by the trigger, every other level 0.
pub fn level_scores(state: &LevelState, config: &CompactionConfig) -> Vec<f64> {
    let n = state.levels.len();
    let mut scores = vec![0.0; n];
    if n == 0 {
        return scores;
    }
    let trigger = config.level0_file_num_compaction_trigger.max(1) as f64;
    if config.style == CompactionStyle::Tiered {
        scores[0] = tiered::sorted_run_count(state) as f64 / trigger;
        return scores;
    }
    if config.style == CompactionStyle::Fifo {
        return scores;
    }
    let targets = level_targets(state, config);
    scores[0] = state.levels[0]
        .iter()
        .filter(|f| !f.being_compacted)
        .count() as f64
        / trigger;
    for (l, files) in state.levels.iter().enumerate().take(n - 1).skip(1) {
        let target = targets.get(l).copied().unwrap_or(0);
        if target == 0 {
            continue;
        }
        let bytes: u64 = files
            .iter()
            .filter(|f| !f.being_compacted)
            .map(|f| f.size)
            .sum();
        scores[l] = bytes as f64 / target as f64;
    }
    scores
}

/// Estimate of the bytes compactions must rewrite to bring every level to
/// its target (RocksDB's `EstimateCompactionBytesNeeded`).
///
/// Leveled: if level 0 has reached its trigger (or outgrown the base
/// target) its bytes plus the base level's count; then, going down from
/// the base level, each level's size plus what the level above pushes into
/// it is compared with its target, and the excess, times one plus the size
/// ratio of the next level to this one, is added. Tiered: when a merge is
/// due (too many runs or too much space amplification), the bytes of all
/// runs but the oldest; otherwise 0.
pub fn pending_compaction_bytes(state: &LevelState, config: &CompactionConfig) -> u64 {
    let n = state.levels.len();
    if n < 2 {
        return 0;
    }
    if config.style == CompactionStyle::Tiered {
        return tiered::pending_bytes(state, config);
    }
    if config.style == CompactionStyle::Fifo {
        // FIFO rewrites nothing.
        return 0;
    }
    let (base, targets) = dynamic_targets(state, config);
    let mut estimated: u128 = 0;
    let l0_bytes = state.level_bytes(0);
    let l0_triggered = l0_bytes > 0
        && (state.levels[0].len() >= config.level0_file_num_compaction_trigger
            || l0_bytes >= targets.get(base).copied().unwrap_or(u64::MAX));
    let mut to_next: u128 = 0;
    if l0_triggered {
        to_next = l0_bytes as u128;
        estimated += l0_bytes as u128;
    }
    for level in base..n - 1 {
        let mut level_size = state.level_bytes(level) as u128;
        if level == base && l0_triggered {
            estimated += level_size;
        }
        level_size += to_next;
        to_next = 0;
        let target = targets.get(level).copied().unwrap_or(0) as u128;
        if target > 0 && level_size > target {
            to_next = level_size - target;
            let next_size = state.level_bytes(level + 1) as f64;
            let ratio = next_size / level_size as f64;
            estimated += (to_next as f64 * (ratio + 1.0)) as u128;
        }
    }
    u64::try_from(estimated).unwrap_or(u64::MAX)
}

/// What caused a write stall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StallCause {
    /// Too many level-0 files (tiered: sorted runs).
    L0FileCount,
    /// Too many pending compaction bytes.
    PendingCompactionBytes,
}

impl std::fmt::Display for StallCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StallCause::L0FileCount => "l0-file-count",
            StallCause::PendingCompactionBytes => "pending-compaction-bytes",
        })
    }
}

/// Whether writes should go on, slow down or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteStall {
    /// Writes go on.
    None,
    /// Writes are delayed.
    Slowdown {
        /// Why.
        cause: StallCause,
    },
    /// Writes wait until compaction catches up.
    Stop {
        /// Why.
        cause: StallCause,
    },
}

/// The write-stall decision (RocksDB's rules): stop when level 0 has
/// `level0_stop_writes_trigger` files (tiered: sorted runs) or
/// `pending_bytes` reaches `hard_pending_compaction_bytes_limit`; slow
/// down when level 0 reaches `level0_slowdown_writes_trigger` or
/// `pending_bytes` reaches `soft_pending_compaction_bytes_limit`. A limit
/// of 0 is off. Stops win over slowdowns; level 0 is reported before
/// pending bytes.
pub fn write_stall(
    state: &LevelState,
    config: &CompactionConfig,
    pending_bytes: u64,
) -> WriteStall {
    let l0 = match config.style {
        CompactionStyle::Leveled => state.levels.first().map_or(0, |l| l.len()),
        CompactionStyle::Tiered => tiered::sorted_run_count(state),
        // Level 0 is where FIFO keeps everything; its size limit bounds it.
        CompactionStyle::Fifo => 0,
    };
    let hard = config.hard_pending_compaction_bytes_limit;
    let soft = config.soft_pending_compaction_bytes_limit;
    if l0 >= config.level0_stop_writes_trigger {
        WriteStall::Stop {
            cause: StallCause::L0FileCount,
        }
    } else if hard > 0 && pending_bytes >= hard {
        WriteStall::Stop {
            cause: StallCause::PendingCompactionBytes,
        }
    } else if l0 >= config.level0_slowdown_writes_trigger {
        WriteStall::Slowdown {
            cause: StallCause::L0FileCount,
        }
    } else if soft > 0 && pending_bytes >= soft {
        WriteStall::Slowdown {
            cause: StallCause::PendingCompactionBytes,
        }
    } else {
        WriteStall::None
    }
}

// ---- shared helpers ----

/// The smallest and largest user key of `files`.
pub(crate) fn hull<'a>(
    files: impl IntoIterator<Item = &'a FileInfo>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut out: Option<(&[u8], &[u8])> = None;
    for f in files {
        out = Some(match out {
            None => (f.smallest.as_slice(), f.largest.as_slice()),
            Some((lo, hi)) => (lo.min(f.smallest.as_slice()), hi.max(f.largest.as_slice())),
        });
    }
    out.map(|(lo, hi)| (lo.to_vec(), hi.to_vec()))
}

/// Indices of the files of a sorted, non-overlapping level that overlap
/// `[lo, hi]`.
pub(crate) fn overlap_range(files: &[FileInfo], lo: &[u8], hi: &[u8]) -> std::ops::Range<usize> {
    let start = files.partition_point(|f| f.largest.as_slice() < lo);
    let mut end = start;
    while end < files.len() && files[end].smallest.as_slice() <= hi {
        end += 1;
    }
    start..end
}

/// True when no file in a level below `output_level` overlaps `[lo, hi]`.
pub(crate) fn is_bottommost(state: &LevelState, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    state
        .levels
        .iter()
        .skip(output_level + 1)
        .all(|files| files.iter().all(|f| !f.overlaps(lo, hi)))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod age_tests;
