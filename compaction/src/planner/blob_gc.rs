//! Forced blob garbage collection (RocksDB's
//! `blob_garbage_collection_force_threshold`): when the engine finds the
//! oldest blob files full enough of garbage, it marks every file that may
//! still reference them (`LevelState::blob_gc_below`), and each is
//! compacted even though no level needs it, so that the compaction
//! relocates their live values and the old blob files go.

use super::{leveled, tiered};
use crate::config::{CompactionConfig, CompactionStyle};
use crate::types::{CompactionJob, CompactionReason, LevelState};

/// A job for a marked file that no job is compacting, deepest level
/// first, or `None`. Leveled: as periodic compaction moves a due file
/// (a middle-level file goes down, by a trivial move when nothing
/// overlaps it, keeping its id and so its mark; a last-level file is
/// rewritten in place). Tiered: every run is merged into one. The job's
/// reason is [`CompactionReason::BlobGc`].
pub(super) fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let below = state.blob_gc_below;
    if below == 0 || state.levels.len() < 2 {
        return None;
    }
    let marked = state
        .levels
        .iter()
        .enumerate()
        .rev()
        .flat_map(|(l, files)| {
            files
                .iter()
                .enumerate()
                .filter(move |(_, f)| f.id < below && !f.being_compacted)
                .map(move |(i, _)| (l, i))
        });
    let mut job = match config.style {
        CompactionStyle::Leveled => {
            let mut marked = marked;
            marked.find_map(|(l, i)| leveled::periodic_job(state, config, l, i))?
        }
        CompactionStyle::Tiered => {
            let mut marked = marked;
            marked.next()?;
            tiered::rewrite_all(state, config)?
        }
        CompactionStyle::Fifo => return None,
    };
    job.reason = CompactionReason::BlobGc;
    Some(job)
}
