//! Compaction settings. Names and defaults follow RocksDB's, so users who
//! know those know these.

use serde::{Deserialize, Serialize};

/// How the tree is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompactionStyle {
    /// Leveled: each level below 0 is one sorted run about
    /// `max_bytes_for_level_multiplier` times the one above. Low space and
    /// read amplification, more write amplification.
    #[default]
    Leveled,
    /// Tiered (RocksDB's "universal"): merge runs of similar size. Lower
    /// write amplification, more space and read amplification.
    Tiered,
}

/// Settings of the tiered (universal) style.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TieredConfig {
    /// A run joins a merge when its size is at most the merged size so far
    /// times `(100 + size_ratio) / 100` (default 1, percent).
    pub size_ratio: u32,
    /// Fewest runs merged by a size-ratio merge (default 2).
    pub min_merge_width: usize,
    /// Most runs merged at once (default unlimited: `usize::MAX`).
    pub max_merge_width: usize,
    /// When all runs but the oldest add up to more than this percentage of
    /// the oldest, everything is merged into one run (default 200).
    pub max_size_amplification_percent: u32,
}

impl Default for TieredConfig {
    fn default() -> Self {
        TieredConfig {
            size_ratio: 1,
            min_merge_width: 2,
            max_merge_width: usize::MAX,
            max_size_amplification_percent: 200,
        }
    }
}

/// Every compaction knob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// Leveled (default) or tiered.
    pub style: CompactionStyle,
    /// Number of levels, 0 included (default 7).
    pub num_levels: usize,
    /// Level-0 files that start a compaction (default 4).
    pub level0_file_num_compaction_trigger: usize,
    /// Level-0 files at which writes are slowed down (default 20).
    pub level0_slowdown_writes_trigger: usize,
    /// Level-0 files at which writes stop until compaction catches up
    /// (default 36).
    pub level0_stop_writes_trigger: usize,
    /// Target size of level 1 (or of the first non-empty level with
    /// dynamic level bytes), in bytes (default 256 MiB).
    pub max_bytes_for_level_base: u64,
    /// Size ratio between consecutive levels (default 10).
    pub max_bytes_for_level_multiplier: f64,
    /// Size the last level by the data and the levels above it by the
    /// multiplier, leaving upper levels empty while the data is small
    /// (default true).
    pub level_compaction_dynamic_level_bytes: bool,
    /// Target size of a compaction output file, in bytes (default 64 MiB).
    pub target_file_size_base: u64,
    /// Output files of level `n + 1` target this many times the size of
    /// level `n`'s (default 1).
    pub target_file_size_multiplier: u64,
    /// Threads for flushes and compactions together (default 2); at least
    /// one is kept for flushes.
    pub max_background_jobs: usize,
    /// Key-range pieces a single compaction may be split into, run in
    /// parallel (default 1).
    pub max_subcompactions: usize,
    /// Pending compaction bytes at which writes slow down (default 64 GiB;
    /// 0 disables).
    pub soft_pending_compaction_bytes_limit: u64,
    /// Pending compaction bytes at which writes stop (default 256 GiB;
    /// 0 disables).
    pub hard_pending_compaction_bytes_limit: u64,
    /// Do not compact automatically (for bulk loads; compact by hand with
    /// `compact_range`). Write stalls still apply (default false).
    pub disable_auto_compactions: bool,
    /// Settings of the tiered style.
    pub tiered: TieredConfig,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            style: CompactionStyle::Leveled,
            num_levels: 7,
            level0_file_num_compaction_trigger: 4,
            level0_slowdown_writes_trigger: 20,
            level0_stop_writes_trigger: 36,
            max_bytes_for_level_base: 256 << 20,
            max_bytes_for_level_multiplier: 10.0,
            level_compaction_dynamic_level_bytes: true,
            target_file_size_base: 64 << 20,
            target_file_size_multiplier: 1,
            max_background_jobs: 2,
            max_subcompactions: 1,
            soft_pending_compaction_bytes_limit: 64 << 30,
            hard_pending_compaction_bytes_limit: 256 << 30,
            disable_auto_compactions: false,
            tiered: TieredConfig::default(),
        }
    }
}

/// A setting out of range: which one, its value, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting's name (as in the config file).
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` = {} is not allowed: {}",
            self.key, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

fn check(
    ok: bool,
    key: &'static str,
    value: impl std::fmt::Display,
    allowed: impl Into<String>,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key,
            value: value.to_string(),
            allowed: allowed.into(),
        })
    }
}

impl CompactionConfig {
    /// Checks every value and every relation between values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            (2..=16).contains(&self.num_levels),
            "num_levels",
            self.num_levels,
            "2 ..= 16",
        )?;
        check(
            self.level0_file_num_compaction_trigger >= 1,
            "level0_file_num_compaction_trigger",
            self.level0_file_num_compaction_trigger,
            ">= 1",
        )?;
        check(
            self.level0_slowdown_writes_trigger >= self.level0_file_num_compaction_trigger,
            "level0_slowdown_writes_trigger",
            self.level0_slowdown_writes_trigger,
            format!(
                ">= level0_file_num_compaction_trigger ({})",
                self.level0_file_num_compaction_trigger
            ),
        )?;
        check(
            self.level0_stop_writes_trigger >= self.level0_slowdown_writes_trigger,
            "level0_stop_writes_trigger",
            self.level0_stop_writes_trigger,
            format!(
                ">= level0_slowdown_writes_trigger ({})",
                self.level0_slowdown_writes_trigger
            ),
        )?;
        check(
            self.max_bytes_for_level_base >= 1 << 16,
            "max_bytes_for_level_base",
            self.max_bytes_for_level_base,
            ">= 64 KiB",
        )?;
        check(
            self.max_bytes_for_level_multiplier >= 2.0
                && self.max_bytes_for_level_multiplier <= 1000.0,
            "max_bytes_for_level_multiplier",
            self.max_bytes_for_level_multiplier,
            "2 ..= 1000",
        )?;
        check(
            self.target_file_size_base >= 1 << 16,
            "target_file_size_base",
            self.target_file_size_base,
            ">= 64 KiB",
        )?;
        check(
            (1..=100).contains(&self.target_file_size_multiplier),
            "target_file_size_multiplier",
            self.target_file_size_multiplier,
            "1 ..= 100",
        )?;
        check(
            (1..=256).contains(&self.max_background_jobs),
            "max_background_jobs",
            self.max_background_jobs,
            "1 ..= 256",
        )?;
        check(
            (1..=64).contains(&self.max_subcompactions),
            "max_subcompactions",
            self.max_subcompactions,
            "1 ..= 64",
        )?;
        check(
            self.hard_pending_compaction_bytes_limit == 0
                || self.hard_pending_compaction_bytes_limit
                    >= self.soft_pending_compaction_bytes_limit,
            "hard_pending_compaction_bytes_limit",
            self.hard_pending_compaction_bytes_limit,
            format!(
                "0 (off) or >= soft_pending_compaction_bytes_limit ({})",
                self.soft_pending_compaction_bytes_limit
            ),
        )?;
        check(
            self.tiered.min_merge_width >= 2,
            "tiered.min_merge_width",
            self.tiered.min_merge_width,
            ">= 2",
        )?;
        check(
            self.tiered.max_merge_width >= self.tiered.min_merge_width,
            "tiered.max_merge_width",
            self.tiered.max_merge_width,
            format!(
                ">= tiered.min_merge_width ({})",
                self.tiered.min_merge_width
            ),
        )?;
        check(
            self.tiered.max_size_amplification_percent >= 1,
            "tiered.max_size_amplification_percent",
            self.tiered.max_size_amplification_percent,
            ">= 1",
        )?;
        Ok(())
    }

    /// Target size of output files written to `level` (level 0 and 1 use
    /// the base).
    pub fn target_file_size(&self, level: usize) -> u64 {
        let mut size = self.target_file_size_base;
        for _ in 1..level.max(1) {
            size = size.saturating_mul(self.target_file_size_multiplier);
        }
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_rocksdb() {
        let c = CompactionConfig::default();
        c.validate().unwrap();
        assert_eq!(c.level0_file_num_compaction_trigger, 4);
        assert_eq!(c.level0_slowdown_writes_trigger, 20);
        assert_eq!(c.level0_stop_writes_trigger, 36);
        assert_eq!(c.max_bytes_for_level_base, 256 << 20);
        assert_eq!(c.target_file_size_base, 64 << 20);
    }

    #[test]
    fn contradictions_name_the_key() {
        let c = CompactionConfig {
            level0_stop_writes_trigger: 10,
            ..CompactionConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.key, "level0_stop_writes_trigger");
        assert!(e.allowed.contains("20"), "{e}");
    }
}
