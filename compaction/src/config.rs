//! Compaction settings. Names and defaults follow RocksDB's, so users who
//! know those know these.

use serde::{Deserialize, Serialize};

/// Generates one chaining setter per listed field of an options struct:
/// `fn field(self, value) -> Self`, named as the field, documented as
/// setting it. With `#[non_exhaustive]` on the struct, this is how code
/// outside the crate builds one (`Default`, then setters), so adding a
/// field later breaks no caller. Used by this crate's configs and by
/// `lightning-db`'s `Options`; not part of the stable API.
#[doc(hidden)]
#[macro_export]
macro_rules! option_setters {
    ($ty:ident { $($(#[$attr:meta])* $field:ident : $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                $(#[$attr])*
                #[doc = concat!(
                    "Sets [`", stringify!($ty), "::", stringify!($field),
                    "`] (see there) and returns the options, for chaining."
                )]
                #[must_use]
                pub fn $field(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
        // Every field has its setter: this pattern names them all, so a
        // field added without one fails to compile.
        const _: fn(&$ty) = |o| {
            let $ty { $($(#[$attr])* $field: _),* } = o;
        };
    };
}

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
    /// FIFO (RocksDB's `kCompactionStyleFIFO`, fjall's FIFO): for log-like
    /// data. Every file stays in level 0 and nothing is merged; the oldest
    /// files are deleted whole when the tree outgrows
    /// `fifo.max_table_files_size`, or once they are as old as the tree's
    /// time to live. Level-0 write stalls do not apply.
    Fifo,
}

/// Settings of the FIFO style. Build one from `FifoConfig::default()` and
/// its setters (one per field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(deny_unknown_fields, default)]
pub struct FifoConfig {
    /// The oldest files are deleted while the tree's files add up to more
    /// than this (default 1 GiB; RocksDB's
    /// `compaction_options_fifo.max_table_files_size`).
    #[serde(
        deserialize_with = "units::de_size",
        serialize_with = "units::ser_size"
    )]
    pub max_table_files_size: u64,
}

impl Default for FifoConfig {
    fn default() -> Self {
        FifoConfig {
            max_table_files_size: 1 << 30,
        }
    }
}

/// Settings of the tiered (universal) style. Build one from
/// `TieredConfig::default()` and its setters (one per field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(deny_unknown_fields, default)]
pub struct TieredConfig {
    /// A run joins a merge when its size is at most the merged size so far
    /// times `(100 + size_ratio) / 100` (default 1, percent).
    pub size_ratio: u32,
    /// Fewest runs merged by a size-ratio merge (default 2).
    #[serde(
        deserialize_with = "units::de_count",
        serialize_with = "units::ser_count"
    )]
    pub min_merge_width: usize,
    /// Most runs merged at once (default unlimited: `usize::MAX`).
    #[serde(
        deserialize_with = "units::de_count",
        serialize_with = "units::ser_count"
    )]
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

/// Every compaction knob. Build one from `CompactionConfig::default()` and
/// its setters (one per field), or read it from the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(deny_unknown_fields, default)]
pub struct CompactionConfig {
    /// Leveled (default) or tiered.
    pub style: CompactionStyle,
    /// Number of levels, 0 included (default 7).
    pub num_levels: usize,
    /// Level-0 files that start a compaction (default 4).
    #[serde(
        deserialize_with = "units::de_count",
        serialize_with = "units::ser_count"
    )]
    pub level0_file_num_compaction_trigger: usize,
    /// Level-0 files at which writes are slowed down (default 20).
    #[serde(
        deserialize_with = "units::de_count",
        serialize_with = "units::ser_count"
    )]
    pub level0_slowdown_writes_trigger: usize,
    /// Level-0 files at which writes stop until compaction catches up
    /// (default 36).
    #[serde(
        deserialize_with = "units::de_count",
        serialize_with = "units::ser_count"
    )]
    pub level0_stop_writes_trigger: usize,
    /// Target size of level 1 (or of the first non-empty level with
    /// dynamic level bytes), in bytes (default 256 MiB).
    #[serde(
        deserialize_with = "units::de_size",
        serialize_with = "units::ser_size"
    )]
    pub max_bytes_for_level_base: u64,
    /// Size ratio between consecutive levels (default 10).
    pub max_bytes_for_level_multiplier: f64,
    /// Size the last level by the data and the levels above it by the
    /// multiplier, leaving upper levels empty while the data is small
    /// (default true).
    pub level_compaction_dynamic_level_bytes: bool,
    /// Target size of a compaction output file, in bytes (default 64 MiB).
    #[serde(
        deserialize_with = "units::de_size",
        serialize_with = "units::ser_size"
    )]
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
    #[serde(
        deserialize_with = "units::de_size",
        serialize_with = "units::ser_size"
    )]
    pub soft_pending_compaction_bytes_limit: u64,
    /// Pending compaction bytes at which writes stop (default 256 GiB;
    /// 0 disables).
    #[serde(
        deserialize_with = "units::de_size",
        serialize_with = "units::ser_size"
    )]
    pub hard_pending_compaction_bytes_limit: u64,
    /// Do not compact automatically (for bulk loads; compact by hand with
    /// `compact_range`). As in RocksDB, the level-0 and pending-bytes write
    /// stalls are off too, since no compaction would lift them
    /// (default false).
    pub disable_auto_compactions: bool,
    /// A file older than this many seconds is compacted even when no level
    /// needs it, so that a compaction filter or a TTL reaches cold data
    /// (RocksDB's name; default 0: off). Leveled: the file moves down a
    /// level, or is rewritten in place on the last level; tiered:
    /// everything is merged into one run. Not with FIFO, which never
    /// merges.
    pub periodic_compaction_seconds: u64,
    /// Settings of the tiered style.
    pub tiered: TieredConfig,
    /// Settings of the FIFO style.
    pub fifo: FifoConfig,
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
            periodic_compaction_seconds: 0,
            tiered: TieredConfig::default(),
            fifo: FifoConfig::default(),
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
        check(
            self.fifo.max_table_files_size >= 1 << 16,
            "fifo.max_table_files_size",
            self.fifo.max_table_files_size,
            ">= 64 KiB",
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

/// Byte sizes and counts as written in configuration files.
///
/// A **size** is an integer number of bytes or a string holding a whole
/// number with an optional unit: `"512"`, `"4 KiB"`, `"64MiB"`, `"1GiB"`.
/// `B`, `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `KB`, `MB`, `GB`,
/// `TB` are powers of 1000. Units are case-insensitive; spaces between the
/// number and the unit are allowed.
///
/// A **count** is a non-negative integer, or `"unlimited"` for the largest
/// value (`usize::MAX`).
pub mod units {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    /// What a size may be, for error messages.
    pub const SIZE_SYNTAX: &str = "a number of bytes, or a string with a unit such as \"64MiB\", \"4 KiB\", \"1GiB\" or \"512\" (KiB/MiB/GiB/TiB are powers of 1024, KB/MB/GB/TB powers of 1000)";

    /// What a count may be, for error messages.
    pub const COUNT_SYNTAX: &str = "a non-negative integer or \"unlimited\"";

    const UNITS: &[(&str, u64)] = &[
        ("", 1),
        ("b", 1),
        ("kib", 1 << 10),
        ("mib", 1 << 20),
        ("gib", 1 << 30),
        ("tib", 1 << 40),
        ("kb", 1_000),
        ("mb", 1_000_000),
        ("gb", 1_000_000_000),
        ("tb", 1_000_000_000_000),
    ];

    /// Parses a size string (see the module documentation).
    pub fn parse_size(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits_end);
        let bad = || format!("bad size {s:?}: expected {SIZE_SYNTAX}");
        if num.is_empty() {
            return Err(bad());
        }
        let unit = unit.trim_start().to_ascii_lowercase();
        let mult = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(bad)?;
        let n: u64 = num
            .parse()
            .map_err(|_| format!("size {s:?} does not fit in 64 bits"))?;
        n.checked_mul(mult)
            .ok_or_else(|| format!("size {s:?} does not fit in 64 bits"))
    }

    /// Formats a size with the largest binary unit that divides it exactly
    /// (`"64MiB"`), or as plain digits; [`parse_size`] reads it back.
    pub fn format_size(n: u64) -> String {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if n != 0 && n.trailing_zeros() >= shift {
                return format!("{}{unit}", n >> shift);
            }
        }
        n.to_string()
    }

    /// A size for people, rounded to one decimal in the largest binary
    /// unit it reaches: `"1023 B"`, `"1.5 KiB"`, `"64.0 MiB"`.
    pub fn human_size(n: u64) -> String {
        const NAMES: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = n as f64;
        let mut u = 0;
        while v >= 1024.0 && u + 1 < NAMES.len() {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            format!("{n} B")
        } else {
            format!("{v:.1} {}", NAMES[u])
        }
    }

    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(SIZE_SYNTAX)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("size {v} is negative")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_size(v).map_err(E::custom)
        }
    }

    /// Deserializes a size (integer or string with a unit).
    pub fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(SizeVisitor)
    }

    /// Serializes a size as an integer, or as a string of digits when it
    /// does not fit in an `i64` (TOML integers are 64-bit signed).
    pub fn ser_size<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*v) {
            Ok(i) => s.serialize_i64(i),
            Err(_) => s.serialize_str(&v.to_string()),
        }
    }

    struct CountVisitor;

    impl Visitor<'_> for CountVisitor {
        type Value = usize;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(COUNT_SYNTAX)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
            usize::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<usize, E> {
            usize::try_from(v)
                .map_err(|_| E::custom(format!("{v} is negative; expected {COUNT_SYNTAX}")))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
            if v == "unlimited" {
                return Ok(usize::MAX);
            }
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(n) = v.parse() {
                    return Ok(n);
                }
            }
            Err(E::custom(format!(
                "bad count {v:?}: expected {COUNT_SYNTAX}"
            )))
        }
    }

    /// Deserializes a count (integer, or `"unlimited"` for `usize::MAX`).
    pub fn de_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        d.deserialize_any(CountVisitor)
    }

    /// Serializes a count: `"unlimited"` for `usize::MAX`, an integer when
    /// it fits in an `i64`, else a string of digits.
    pub fn ser_count<S: Serializer>(v: &usize, s: S) -> Result<S::Ok, S::Error> {
        if *v == usize::MAX {
            return s.serialize_str("unlimited");
        }
        match i64::try_from(*v) {
            Ok(i) => s.serialize_i64(i),
            Err(_) => s.serialize_str(&v.to_string()),
        }
    }
}

option_setters!(TieredConfig {
    size_ratio: u32,
    min_merge_width: usize,
    max_merge_width: usize,
    max_size_amplification_percent: u32,
});

option_setters!(FifoConfig {
    max_table_files_size: u64,
});

option_setters!(CompactionConfig {
    style: CompactionStyle,
    num_levels: usize,
    level0_file_num_compaction_trigger: usize,
    level0_slowdown_writes_trigger: usize,
    level0_stop_writes_trigger: usize,
    max_bytes_for_level_base: u64,
    max_bytes_for_level_multiplier: f64,
    level_compaction_dynamic_level_bytes: bool,
    target_file_size_base: u64,
    target_file_size_multiplier: u64,
    max_background_jobs: usize,
    max_subcompactions: usize,
    soft_pending_compaction_bytes_limit: u64,
    hard_pending_compaction_bytes_limit: u64,
    disable_auto_compactions: bool,
    periodic_compaction_seconds: u64,
    tiered: TieredConfig,
    fifo: FifoConfig,
});

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

    #[test]
    fn sizes_parse_and_format() {
        use units::{format_size, parse_size};
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("3KB"), Ok(3000));
        assert_eq!(parse_size("5 MB"), Ok(5_000_000));
        assert_eq!(parse_size("7GB"), Ok(7_000_000_000));
        assert_eq!(parse_size("9B"), Ok(9));
        for bad in [
            "",
            "MiB",
            "-1",
            "1.5GiB",
            "12 parsecs",
            "1 K",
            "99999999999999999999",
            "20000000TiB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        for n in [
            0,
            1,
            1000,
            4096,
            64 << 20,
            3 << 30,
            5 << 40,
            u64::MAX,
            (1 << 40) + 1,
        ] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(3072), "3KiB");
    }
}
