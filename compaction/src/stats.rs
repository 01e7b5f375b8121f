//! Per-level compaction statistics and write amplification, printed like
//! RocksDB's `** Compaction Stats **` dump. Plain data: the engine wraps it
//! in whatever lock it likes and calls the `record_*` methods after each
//! flush, compaction and stall.

use crate::config::CompactionConfig;
use crate::planner::{level_scores, StallCause, WriteStall};
use crate::types::LevelState;
use std::fmt;

/// Counters of one level. Compaction counters are charged to the job's
/// output level, as RocksDB does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelStats {
    /// Files now in the level.
    pub files: usize,
    /// Of those, files being compacted.
    pub files_being_compacted: usize,
    /// Bytes now in the level.
    pub bytes: u64,
    /// Compaction score (see `planner::level_scores`).
    pub score: f64,
    /// Bytes read by compactions into this level from the levels above it
    /// ("Rn").
    pub read_bytes: u64,
    /// Bytes read by compactions into this level from this level itself
    /// ("Rnp1").
    pub read_output_level_bytes: u64,
    /// Bytes written into this level by compactions (and, for level 0,
    /// flushes).
    pub written_bytes: u64,
    /// Bytes moved into this level by trivial moves.
    pub moved_bytes: u64,
    /// Compactions (and flushes, for level 0) that wrote this level.
    pub compactions: u64,
    /// Time spent in those, in microseconds.
    pub compaction_micros: u64,
    /// Entries read by those compactions.
    pub input_entries: u64,
    /// Entries they dropped, including those of input files dropped
    /// whole without being read (every entry deleted by a range
    /// tombstone), so it may exceed `input_entries`.
    pub dropped_entries: u64,
}

impl LevelStats {
    /// Bytes written per byte read from the levels above (0 if none).
    pub fn write_amplification(&self) -> f64 {
        if self.read_bytes == 0 {
            0.0
        } else {
            self.written_bytes as f64 / self.read_bytes as f64
        }
    }
}

/// Time writes were held back, per cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StallMicros {
    /// Slowed down by the level-0 file count.
    pub l0_slowdown: u64,
    /// Stopped by the level-0 file count.
    pub l0_stop: u64,
    /// Slowed down by pending compaction bytes.
    pub pending_slowdown: u64,
    /// Stopped by pending compaction bytes.
    pub pending_stop: u64,
}

impl StallMicros {
    /// Total stall time.
    pub fn total(&self) -> u64 {
        self.l0_slowdown + self.l0_stop + self.pending_slowdown + self.pending_stop
    }
}

/// Statistics of the whole tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionStats {
    /// Per level.
    pub levels: Vec<LevelStats>,
    /// Key and value bytes the user wrote.
    pub user_bytes_written: u64,
    /// Bytes written by flushes.
    pub flush_bytes: u64,
    /// Flushes that wrote a file (also counted in level 0's
    /// `compactions`).
    pub flushes: u64,
    /// Time spent in those, in microseconds (also counted in level 0's
    /// `compaction_micros`).
    pub flush_micros: u64,
    /// Bytes written to the write-ahead log.
    pub wal_bytes: u64,
    /// Stall time per cause.
    pub stall_micros: StallMicros,
}

impl CompactionStats {
    /// Adds the per-level counters, file counts and bytes, and the flush
    /// counters of `other` (another tree of the same database) to these;
    /// a level's score becomes the larger of the two. The database-wide
    /// totals (`user_bytes_written`, `wal_bytes`, `stall_micros`) are
    /// left as they are: both trees report the same ones.
    pub fn absorb(&mut self, other: &CompactionStats) {
        if self.levels.len() < other.levels.len() {
            self.levels
                .resize(other.levels.len(), LevelStats::default());
        }
        for (a, b) in self.levels.iter_mut().zip(&other.levels) {
            a.files += b.files;
            a.files_being_compacted += b.files_being_compacted;
            a.bytes += b.bytes;
            a.score = a.score.max(b.score);
            a.read_bytes += b.read_bytes;
            a.read_output_level_bytes += b.read_output_level_bytes;
            a.written_bytes += b.written_bytes;
            a.moved_bytes += b.moved_bytes;
            a.compactions += b.compactions;
            a.compaction_micros += b.compaction_micros;
            a.input_entries += b.input_entries;
            a.dropped_entries += b.dropped_entries;
        }
        self.flush_bytes += other.flush_bytes;
        self.flushes += other.flushes;
        self.flush_micros += other.flush_micros;
    }

    /// Compactions (trivial moves included) that wrote `level`, flushes
    /// not counted.
    pub fn compactions_into(&self, level: usize) -> u64 {
        let l = self.levels.get(level).map_or(0, |l| l.compactions);
        if level == 0 {
            l.saturating_sub(self.flushes)
        } else {
            l
        }
    }

    /// Microseconds spent in compactions that wrote `level`, flushes not
    /// counted.
    pub fn compaction_micros_into(&self, level: usize) -> u64 {
        let l = self.levels.get(level).map_or(0, |l| l.compaction_micros);
        if level == 0 {
            l.saturating_sub(self.flush_micros)
        } else {
            l
        }
    }

    /// Bytes written into `level` by compactions, flushes not counted.
    pub fn compaction_written_into(&self, level: usize) -> u64 {
        let l = self.levels.get(level).map_or(0, |l| l.written_bytes);
        if level == 0 {
            l.saturating_sub(self.flush_bytes)
        } else {
            l
        }
    }

    /// Empty statistics for `num_levels` levels.
    pub fn new(num_levels: usize) -> Self {
        CompactionStats {
            levels: vec![LevelStats::default(); num_levels],
            ..Default::default()
        }
    }

    fn level_mut(&mut self, level: usize) -> &mut LevelStats {
        if self.levels.len() <= level {
            self.levels.resize(level + 1, LevelStats::default());
        }
        &mut self.levels[level]
    }

    /// Records user writes: `user_bytes` of keys and values, `wal_bytes`
    /// appended to the log.
    pub fn record_user_write(&mut self, user_bytes: u64, wal_bytes: u64) {
        self.user_bytes_written += user_bytes;
        self.wal_bytes += wal_bytes;
    }

    /// Records a flush that wrote a level-0 file of `bytes` in `micros`.
    pub fn record_flush(&mut self, bytes: u64, micros: u64) {
        self.flush_bytes += bytes;
        self.flushes += 1;
        self.flush_micros += micros;
        let l0 = self.level_mut(0);
        l0.written_bytes += bytes;
        l0.compactions += 1;
        l0.compaction_micros += micros;
    }

    /// Records a compaction into `output_level`: `read_by_level` lists
    /// `(level, bytes read from it)`, `written` the bytes of the new files.
    pub fn record_compaction(
        &mut self,
        output_level: usize,
        read_by_level: &[(usize, u64)],
        written: u64,
        micros: u64,
    ) {
        let l = self.level_mut(output_level);
        for &(level, bytes) in read_by_level {
            if level == output_level {
                l.read_output_level_bytes += bytes;
            } else {
                l.read_bytes += bytes;
            }
        }
        l.written_bytes += written;
        l.compactions += 1;
        l.compaction_micros += micros;
    }

    /// Records the entry counts of a compaction into `output_level`.
    pub fn record_entries(&mut self, output_level: usize, input_entries: u64, dropped: u64) {
        let l = self.level_mut(output_level);
        l.input_entries += input_entries;
        l.dropped_entries += dropped;
    }

    /// Records a trivial move of `bytes` into `output_level`.
    pub fn record_trivial_move(&mut self, output_level: usize, bytes: u64) {
        let l = self.level_mut(output_level);
        l.moved_bytes += bytes;
        l.compactions += 1;
    }

    /// Records `micros` of writes held back by `stall`.
    pub fn record_stall(&mut self, stall: WriteStall, micros: u64) {
        let s = &mut self.stall_micros;
        match stall {
            WriteStall::None => {}
            WriteStall::Slowdown {
                cause: StallCause::L0FileCount,
            } => s.l0_slowdown += micros,
            WriteStall::Stop {
                cause: StallCause::L0FileCount,
            } => s.l0_stop += micros,
            WriteStall::Slowdown {
                cause: StallCause::PendingCompactionBytes,
            } => s.pending_slowdown += micros,
            WriteStall::Stop {
                cause: StallCause::PendingCompactionBytes,
            } => s.pending_stop += micros,
        }
    }

    /// Updates files, bytes and scores from the current tree.
    pub fn refresh(&mut self, state: &LevelState, config: &CompactionConfig) {
        let scores = level_scores(state, config);
        for (level, files) in state.levels.iter().enumerate() {
            let l = self.level_mut(level);
            l.files = files.len();
            l.files_being_compacted = files.iter().filter(|f| f.being_compacted).count();
            l.bytes = files.iter().map(|f| f.size).sum();
            l.score = scores.get(level).copied().unwrap_or(0.0);
        }
    }

    /// Bytes written by flushes and compactions.
    pub fn total_written(&self) -> u64 {
        self.levels.iter().map(|l| l.written_bytes).sum()
    }

    /// (flush + compaction bytes written) / user bytes written; 0 before
    /// any user write.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            0.0
        } else {
            self.total_written() as f64 / self.user_bytes_written as f64
        }
    }
}

const GB: f64 = (1u64 << 30) as f64;

fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= GB {
        format!("{:.2} GB", b / GB)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.2} MB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} KB", b / 1024.0)
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, l: &LevelStats, score: Option<f64>) -> fmt::Result {
    let read = l.read_bytes + l.read_output_level_bytes;
    writeln!(
        f,
        "{:>5} {:>8} {:>10} {:>5} {:>8.1} {:>7.1} {:>8.1} {:>9.1} {:>9.1} {:>5.1} {:>9.3} {:>9} {:>10} {:>8}",
        name,
        format!("{}/{}", l.files, l.files_being_compacted),
        size(l.bytes),
        score.map_or("-".to_string(), |s| format!("{s:.1}")),
        read as f64 / GB,
        l.read_bytes as f64 / GB,
        l.read_output_level_bytes as f64 / GB,
        l.written_bytes as f64 / GB,
        l.moved_bytes as f64 / GB,
        l.write_amplification(),
        l.compaction_micros as f64 / 1e6,
        l.compactions,
        l.input_entries,
        l.dropped_entries,
    )
}

impl fmt::Display for CompactionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "** Compaction Stats **")?;
        let header = format!(
            "{:>5} {:>8} {:>10} {:>5} {:>8} {:>7} {:>8} {:>9} {:>9} {:>5} {:>9} {:>9} {:>10} {:>8}",
            "Level",
            "Files",
            "Size",
            "Score",
            "Read(GB)",
            "Rn(GB)",
            "Rnp1(GB)",
            "Write(GB)",
            "Moved(GB)",
            "W-Amp",
            "Comp(sec)",
            "Comp(cnt)",
            "KeyIn",
            "KeyDrop"
        );
        writeln!(f, "{header}")?;
        writeln!(f, "{}", "-".repeat(header.len()))?;
        let mut sum = LevelStats::default();
        for (i, l) in self.levels.iter().enumerate() {
            sum.files += l.files;
            sum.files_being_compacted += l.files_being_compacted;
            sum.bytes += l.bytes;
            sum.read_bytes += l.read_bytes;
            sum.read_output_level_bytes += l.read_output_level_bytes;
            sum.written_bytes += l.written_bytes;
            sum.moved_bytes += l.moved_bytes;
            sum.compactions += l.compactions;
            sum.compaction_micros += l.compaction_micros;
            sum.input_entries += l.input_entries;
            sum.dropped_entries += l.dropped_entries;
            if l.files == 0 && l.compactions == 0 {
                continue;
            }
            row(f, &format!("L{i}"), l, Some(l.score))?;
        }
        // As in RocksDB, the Sum line's W-Amp is per byte flushed.
        let sum_wamp = if self.flush_bytes == 0 {
            0.0
        } else {
            sum.written_bytes as f64 / self.flush_bytes as f64
        };
        writeln!(
            f,
            "{:>5} {:>8} {:>10} {:>5} {:>8.1} {:>7.1} {:>8.1} {:>9.1} {:>9.1} {:>5.1} {:>9.3} {:>9} {:>10} {:>8}",
            "Sum",
            format!("{}/{}", sum.files, sum.files_being_compacted),
            size(sum.bytes),
            "-",
            (sum.read_bytes + sum.read_output_level_bytes) as f64 / GB,
            sum.read_bytes as f64 / GB,
            sum.read_output_level_bytes as f64 / GB,
            sum.written_bytes as f64 / GB,
            sum.moved_bytes as f64 / GB,
            sum_wamp,
            sum.compaction_micros as f64 / 1e6,
            sum.compactions,
            sum.input_entries,
            sum.dropped_entries,
        )?;
        writeln!(
            f,
            "Cumulative writes: {} user, {} WAL, {} flushed; write amplification {:.2}",
            size(self.user_bytes_written),
            size(self.wal_bytes),
            size(self.flush_bytes),
            self.write_amplification()
        )?;
        let s = &self.stall_micros;
        writeln!(
            f,
            "Stalls(sec): l0-slowdown {:.3}, l0-stop {:.3}, pending-slowdown {:.3}, pending-stop {:.3}, total {:.3}",
            s.l0_slowdown as f64 / 1e6,
            s.l0_stop as f64 / 1e6,
            s.pending_slowdown as f64 / 1e6,
            s.pending_stop as f64 / 1e6,
            s.total() as f64 / 1e6
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::FileInfo;

    #[test]
    fn display_has_header_rows_and_sum() {
        let mut s = CompactionStats::new(3);
        s.record_user_write(100 << 20, 110 << 20);
        s.record_flush(64 << 20, 1_500_000);
        s.record_flush(64 << 20, 1_500_000);
        s.record_compaction(1, &[(0, 128 << 20), (1, 64 << 20)], 180 << 20, 3_000_000);
        s.record_entries(1, 1000, 100);
        s.record_trivial_move(2, 10 << 20);
        let f = |id, size| FileInfo {
            id,
            size,
            smallest: vec![id as u8],
            largest: vec![id as u8],
            smallest_seq: 0,
            largest_seq: 0,
            num_entries: 1,
            num_deletions: 0,
            being_compacted: false,
            created_at: 0,
        };
        let state = LevelState {
            levels: vec![vec![f(1, 10)], vec![f(2, 180 << 20)], vec![]],
            oldest_snapshot: None,
            now: 0,
            ttl: 0,
            blob_gc_below: 0,
        };
        s.refresh(&state, &CompactionConfig::default());
        let text = s.to_string();
        assert!(text.starts_with("** Compaction Stats **\n"), "{text}");
        for col in [
            "Level",
            "Files",
            "Size",
            "Score",
            "Read(GB)",
            "Write(GB)",
            "W-Amp",
            "Comp(sec)",
            "Comp(cnt)",
        ] {
            assert!(text.contains(col), "{col} missing:\n{text}");
        }
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("L0 ")),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l.trim_start().starts_with("L1 ")),
            "{text}"
        );
        let sum = text
            .lines()
            .find(|l| l.trim_start().starts_with("Sum"))
            .expect("Sum line");
        assert!(sum.contains("2/0"), "{sum}");
        // (128 MiB flushed + 180 MiB compacted) / 100 MiB user.
        assert!((s.write_amplification() - 3.08).abs() < 1e-9);
        assert!(text.contains("write amplification 3.08"), "{text}");
    }
}
