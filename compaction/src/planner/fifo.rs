//! The FIFO style: nothing is merged; whole level-0 files are deleted,
//! oldest first, when the tree outgrows its size limit or when they are as
//! old as the tree's time to live.

use crate::config::CompactionConfig;
use crate::types::{CompactionJob, CompactionReason, FileInfo, LevelInputs, LevelState};

/// The oldest files to delete, or `None` when the tree is within its
/// limits. Files being deleted already are neither picked nor counted.
/// Files are ordered by their newest sequence number (the order they were
/// flushed in). Only level 0 is looked at: FIFO trees hold nothing else
/// (a tree that held files deeper before it turned FIFO keeps them until
/// a manual compaction).
pub(super) fn pick(state: &LevelState, config: &CompactionConfig) -> Option<CompactionJob> {
    let l0 = state.levels.first()?;
    let mut files: Vec<&FileInfo> = l0.iter().filter(|f| !f.being_compacted).collect();
    files.sort_by_key(|f| f.largest_seq);
    // By age first: those files go whatever the size.
    if state.ttl > 0 && state.now > 0 {
        let expired: Vec<FileInfo> = files
            .iter()
            .take_while(|f| f.created_at > 0 && f.created_at.saturating_add(state.ttl) <= state.now)
            .map(|f| (*f).clone())
            .collect();
        if !expired.is_empty() {
            return Some(job(expired, CompactionReason::FifoTtl));
        }
    }
    let mut total: u64 = files.iter().map(|f| f.size).sum();
    let limit = config.fifo.max_table_files_size;
    if total <= limit {
        return None;
    }
    let mut victims = Vec::new();
    for f in files {
        if total <= limit {
            break;
        }
        total -= f.size;
        victims.push(f.clone());
    }
    Some(job(victims, CompactionReason::FifoMaxSize))
}

fn job(files: Vec<FileInfo>, reason: CompactionReason) -> CompactionJob {
    CompactionJob {
        inputs: vec![LevelInputs { level: 0, files }],
        output_level: 0,
        trivial_move: false,
        reason,
        score: 0.0,
        target_file_size: 0,
        bottommost: false,
        max_subcompactions: 1,
    }
}
