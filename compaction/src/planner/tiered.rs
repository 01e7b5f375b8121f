//! The tiered style (RocksDB's universal compaction, simplified).

use super::{hull, ManualStep};
use crate::config::CompactionConfig;
use crate::types::{CompactionJob, CompactionReason, FileInfo, LevelInputs, LevelState};

/// A sorted run: one level-0 file, or one whole level `>= 1`.
struct Run<'a> {
    level: usize,
    files: Vec<&'a FileInfo>,
    size: u64,
    busy: bool,
}

/// Runs newest first: level-0 files (in their order, newest first), then
/// each non-empty level from the top.
fn sorted_runs(state: &LevelState) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    for (level, files) in state.levels.iter().enumerate() {
        if level == 0 {
            for f in files {
                runs.push(Run {
                    level: 0,
                    files: vec![f],
                    size: f.size,
                    busy: f.being_compacted,
                });
            }
        } else if !files.is_empty() {
            runs.push(Run {
                level,
                files: files.iter().collect(),
                size: files.iter().map(|f| f.size).sum(),
                busy: files.iter().any(|f| f.being_compacted),
            });
        }
    }
    runs
}

pub(super) fn sorted_run_count(state: &LevelState) -> usize {
    state.levels.first().map_or(0, |l| l.len())
        + state
            .levels
            .iter()
            .skip(1)
            .filter(|l| !l.is_empty())
            .count()
}

/// True when all runs but the oldest exceed
/// `max_size_amplification_percent` of the oldest.
fn size_amp(runs: &[Run<'_>], config: &CompactionConfig) -> Option<f64> {
    let (oldest, newer) = runs.split_last()?;
    if newer.is_empty() {
        return None;
    }
    let newer_bytes: u128 = newer.iter().map(|r| r.size as u128).sum();
    let pct = config.tiered.max_size_amplification_percent.max(1) as u128;
    if newer_bytes * 100 > oldest.size as u128 * pct {
        let ratio = newer_bytes as f64 / (oldest.size.max(1) as f64 * pct as f64 / 100.0);
        Some(ratio)
    } else {
        None
    }
}

pub(super) fn pending_bytes(state: &LevelState, config: &CompactionConfig) -> u64 {
    let runs = sorted_runs(state);
    let due = runs.len() > config.level0_file_num_compaction_trigger.max(1)
        || size_amp(&runs, config).is_some();
    if due {
        let n = runs.len();
        runs.iter().take(n.saturating_sub(1)).map(|r| r.size).sum()
    } else {
        0
    }
}

pub(super) fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let runs = sorted_runs(state);
    let last = state.levels.len() - 1;
    let trigger = config.level0_file_num_compaction_trigger.max(1);
    let min_width = config.tiered.min_merge_width.max(2);
    let max_width = config.tiered.max_merge_width.max(min_width);
    // (a) Space amplification: merge everything into the last level.
    if runs.len() >= 2 && !runs.iter().any(|r| r.busy) {
        if let Some(score) = size_amp(&runs, config) {
            if let Some(job) = job(
                state,
                config,
                &runs,
                0..runs.len(),
                Some(last),
                CompactionReason::SizeAmplification,
                score,
            ) {
                return Some(job);
            }
        }
    }
    if runs.len() < trigger.max(min_width) {
        return None;
    }
    let score = runs.len() as f64 / trigger as f64;
    // (b) Size ratio: from each start (newest first), gather runs while the
    // next is not much bigger than everything gathered so far.
    let ratio = 100 + config.tiered.size_ratio as u128;
    for start in 0..runs.len() {
        if runs[start].busy {
            continue;
        }
        let mut acc = runs[start].size as u128;
        let mut end = start + 1;
        while end < runs.len()
            && end - start < max_width
            && !runs[end].busy
            && runs[end].size as u128 * 100 <= acc * ratio
        {
            acc += runs[end].size as u128;
            end += 1;
        }
        if end - start >= min_width {
            if let Some(job) = job(
                state,
                config,
                &runs,
                start..end,
                None,
                CompactionReason::SizeRatio,
                score,
            ) {
                return Some(job);
            }
        }
    }
    // (c) Too many runs: merge the newest `count - trigger + 1`. Runs being
    // compacted will become one run each job, so they count as one; only
    // the newest runs, before any run being compacted, are taken (merging
    // older ones would drag the big bottom runs in for little gain).
    let busy = runs.iter().filter(|r| r.busy).count();
    let effective = runs.len() - busy + usize::from(busy > 0);
    if effective > trigger {
        let want = (effective - trigger + 1).clamp(2, max_width);
        let end = runs.iter().take(want).take_while(|r| !r.busy).count();
        if end >= 2 {
            return job(
                state,
                config,
                &runs,
                0..end,
                None,
                CompactionReason::RunCount,
                score,
            );
        }
    }
    None
}

/// Output level of merging `runs[range]`: the oldest picked run's level if
/// it is `>= 1`; level 0 if an older level-0 file remains; otherwise the
/// level just above the next non-empty level (the last level if none).
fn output_level(state: &LevelState, runs: &[Run<'_>], range: &std::ops::Range<usize>) -> usize {
    let last = state.levels.len() - 1;
    let oldest = range.end.saturating_sub(1);
    match runs.get(oldest) {
        Some(r) if r.level >= 1 => r.level,
        _ => match runs.get(range.end) {
            None => last,
            Some(next) if next.level >= 2 => next.level - 1,
            Some(_) => 0,
        },
    }
}

fn job(
    state: &LevelState,
    config: &CompactionConfig,
    runs: &[Run<'_>],
    range: std::ops::Range<usize>,
    output: Option<usize>,
    reason: CompactionReason,
    score: f64,
) -> Option<CompactionJob> {
    let picked = runs.get(range.clone())?;
    if picked.len() < 2 || picked.iter().any(|r| r.busy) {
        return None;
    }
    let output_level = output.unwrap_or_else(|| output_level(state, runs, &range));
    let mut inputs: Vec<LevelInputs> = Vec::new();
    for r in picked {
        match inputs.last_mut() {
            Some(li) if li.level == r.level => {
                li.files.extend(r.files.iter().map(|f| (*f).clone()))
            }
            _ => inputs.push(LevelInputs {
                level: r.level,
                files: r.files.iter().map(|f| (*f).clone()).collect(),
            }),
        }
    }
    let (lo, hi) = hull(picked.iter().flat_map(|r| r.files.iter().copied()))?;
    Some(CompactionJob {
        inputs,
        output_level,
        trivial_move: false,
        reason,
        score,
        // A level-0 output is one run, so one file.
        target_file_size: if output_level == 0 {
            u64::MAX
        } else {
            config.target_file_size(output_level)
        },
        // Every run older than the picked ones comes after them, level-0
        // runs left out included (checking only the levels below the
        // output missed those when the output is level 0, and the merge
        // dropped tombstones that still shadowed their values).
        bottommost: runs
            .get(range.end..)
            .unwrap_or_default()
            .iter()
            .all(|r| r.files.iter().all(|f| !f.overlaps(&lo, &hi))),
        // Subcompactions write one file each: a level-0 output must stay
        // one file, or the merge would raise the run count it was meant to
        // lower (and the planner would merge the pieces again, forever).
        max_subcompactions: if output_level == 0 {
            1
        } else {
            config.max_subcompactions.max(1)
        },
    })
}

/// Every file of the tree, level by level.
fn all_inputs(state: &LevelState) -> Vec<LevelInputs> {
    state
        .levels
        .iter()
        .enumerate()
        .filter(|(_, fs)| !fs.is_empty())
        .map(|(level, fs)| LevelInputs {
            level,
            files: fs.clone(),
        })
        .collect()
}

/// A job merging every run into one on the last level, or rewriting that
/// one run in place when it is all there is (periodic compaction); `None`
/// when the tree is empty or a run is being compacted.
pub(super) fn rewrite_all(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let last = state.levels.len() - 1;
    let runs = sorted_runs(state);
    if runs.is_empty() || runs.iter().any(|r| r.busy) {
        return None;
    }
    let inputs = all_inputs(state);
    Some(CompactionJob {
        inputs,
        output_level: last,
        trivial_move: false,
        reason: CompactionReason::Periodic,
        score: 0.0,
        target_file_size: config.target_file_size(last),
        bottommost: true,
        max_subcompactions: config.max_subcompactions.max(1),
    })
}

pub(super) fn manual(
    state: &LevelState,
    config: &CompactionConfig,
    from_level: usize,
) -> ManualStep {
    let last = state.levels.len() - 1;
    let runs = sorted_runs(state);
    if from_level > 0 || runs.is_empty() || (runs.len() == 1 && runs[0].level == last) {
        return ManualStep::Done;
    }
    if runs.iter().any(|r| r.busy) {
        return ManualStep::Busy;
    }
    let inputs = all_inputs(state);
    let trivial_move = runs.len() == 1 && runs[0].files.len() == 1;
    ManualStep::Job(CompactionJob {
        inputs,
        output_level: last,
        trivial_move,
        reason: CompactionReason::Manual,
        score: 0.0,
        target_file_size: config.target_file_size(last),
        bottommost: true,
        max_subcompactions: if trivial_move {
            1
        } else {
            config.max_subcompactions.max(1)
        },
    })
}
