//! Periodic compaction (`periodic_compaction_seconds`, RocksDB's): a file
//! older than the period is compacted even when no level needs it, so a
//! compaction filter or a time to live reaches data nobody writes near.

use super::{leveled, tiered};
use crate::config::{CompactionConfig, CompactionStyle};
use crate::types::{CompactionJob, CompactionReason, LevelState};

/// True when `f` (written at `created_at`) is due at `state.now`.
fn due(state: &LevelState, period: u64, created_at: u64) -> bool {
    created_at > 0 && state.now > 0 && created_at.saturating_add(period) <= state.now
}

/// A job for the oldest due file that no job is compacting, or `None`.
/// Leveled: a level-0 file goes into the base level with what it
/// overlaps; a file of a middle level into the next level (a trivial move
/// when it overlaps nothing there: it is rewritten once it reaches the
/// last level); a last-level file is rewritten in place. Tiered: every
/// run is merged into one on the last level, or that one run rewritten in
/// place. The job's reason is [`CompactionReason::Periodic`].
pub(super) fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let period = config.periodic_compaction_seconds;
    if period == 0 || state.now == 0 || state.levels.len() < 2 {
        return None;
    }
    let mut due_files: Vec<(u64, usize, usize)> = Vec::new();
    for (l, files) in state.levels.iter().enumerate() {
        for (i, f) in files.iter().enumerate() {
            if !f.being_compacted && due(state, period, f.created_at) {
                due_files.push((f.created_at, l, i));
            }
        }
    }
    due_files.sort_unstable();
    let mut job = match config.style {
        CompactionStyle::Leveled => due_files
            .into_iter()
            .find_map(|(_, l, i)| leveled::periodic_job(state, config, l, i))?,
        CompactionStyle::Tiered if !due_files.is_empty() => tiered::rewrite_all(state, config)?,
        _ => return None,
    };
    job.reason = CompactionReason::Periodic;
    Some(job)
}
