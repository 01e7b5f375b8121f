//! Names of the files in a database directory (docs/format.md, "Files in a
//! database directory").
//!
//! Numbered files use the decimal file number zero-padded to at least 6
//! digits. [`parse_file_name`] accepts only the canonical spelling that the
//! `*_file_name` functions produce, so a name round-trips exactly and a
//! foreign file such as `7.log` is never taken for one of ours.
// Used by the Db (not yet written).

use std::path::{Path, PathBuf};

/// What a file in a database directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// `NNNNNN.log`: a write-ahead log.
    Log(u64),
    /// `NNNNNN.sst`: a sorted string table.
    Table(u64),
    /// `NNNNNN.blob`: a blob file (values written out of the SSTs).
    Blob(u64),
    /// `MANIFEST-NNNNNN`: a manifest.
    Manifest(u64),
    /// `CURRENT`: names the live manifest.
    Current,
    /// `LOCK`: held while the database is open.
    Lock,
    /// `CURRENT.tmp` or `OPTIONS-NNNNNN.tmp`: a file being written, renamed
    /// into place when complete. No other `*.tmp` name is ours.
    Temp,
    /// `OPTIONS-NNNNNN`: a record of the options a database was opened with.
    Options(u64),
    /// `LOG`: the event log (when `Options::event_log` is on).
    InfoLog,
    /// `LOG.old.T`: a rotated event log, `T` its rotation time in
    /// microseconds since the Unix epoch.
    OldInfoLog(u64),
}

fn numbered(n: u64) -> String {
    format!("{n:06}")
}

/// Path of write-ahead log number `n`: `dir/NNNNNN.log`.
pub(crate) fn log_file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}.log", numbered(n)))
}

/// Path of SST number `n`: `dir/NNNNNN.sst`.
pub(crate) fn table_file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}.sst", numbered(n)))
}

/// Path of blob file `n` (key-value separation, `docs/format.md`).
pub(crate) fn blob_file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{}.blob", numbered(n)))
}

/// Path of manifest number `n`: `dir/MANIFEST-NNNNNN`.
pub(crate) fn manifest_file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(manifest_base_name(n))
}

/// File name (no directory) of manifest number `n`.
pub(crate) fn manifest_base_name(n: u64) -> String {
    format!("MANIFEST-{}", numbered(n))
}

/// Path of options file number `n`: `dir/OPTIONS-NNNNNN`.
pub(crate) fn options_file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("OPTIONS-{}", numbered(n)))
}

/// Path of `CURRENT`.
pub(crate) fn current_file_name(dir: &Path) -> PathBuf {
    dir.join("CURRENT")
}

/// Path of `LOCK`.
pub(crate) fn lock_file_name(dir: &Path) -> PathBuf {
    dir.join("LOCK")
}

/// Path of the event log: `dir/LOG`.
pub(crate) fn info_log_file_name(dir: &Path) -> PathBuf {
    dir.join("LOG")
}

/// Path of an event log rotated at `micros`: `dir/LOG.old.<micros>`.
pub(crate) fn old_info_log_file_name(dir: &Path, micros: u64) -> PathBuf {
    dir.join(format!("LOG.old.{micros}"))
}

/// Path of the temporary file written before being renamed to `base`:
/// `dir/{base}.tmp` (for example `CURRENT.tmp`).
pub(crate) fn temp_file_name(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!("{base}.tmp"))
}

/// Parses a canonical file number: at least 6 digits, zero-padded exactly
/// as [`log_file_name`] writes it.
fn parse_number(s: &str) -> Option<u64> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (numbered(n) == s).then_some(n)
}

/// What the directory entry `name` is; `None` for a file that is not part
/// of a database.
pub(crate) fn parse_file_name(name: &str) -> Option<FileKind> {
    match name {
        "CURRENT" => return Some(FileKind::Current),
        "LOCK" => return Some(FileKind::Lock),
        "LOG" => return Some(FileKind::InfoLog),
        _ => {}
    }
    if let Some(t) = name.strip_prefix("LOG.old.") {
        // Canonical decimal only: digits, no leading zero.
        return (t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty())
            .then(|| t.parse().ok())
            .flatten()
            .filter(|n: &u64| n.to_string() == t)
            .map(FileKind::OldInfoLog);
    }
    if let Some(base) = name.strip_suffix(".tmp") {
        // Only the temporary names this engine writes: any other `*.tmp`
        // belongs to someone else and is never deleted.
        let ours = base == "CURRENT"
            || base
                .strip_prefix("OPTIONS-")
                .is_some_and(|n| parse_number(n).is_some());
        return ours.then_some(FileKind::Temp);
    }
    if let Some(n) = name.strip_suffix(".log") {
        return parse_number(n).map(FileKind::Log);
    }
    if let Some(n) = name.strip_suffix(".sst") {
        return parse_number(n).map(FileKind::Table);
    }
    if let Some(n) = name.strip_suffix(".blob") {
        return parse_number(n).map(FileKind::Blob);
    }
    if let Some(n) = name.strip_prefix("MANIFEST-") {
        return parse_number(n).map(FileKind::Manifest);
    }
    if let Some(n) = name.strip_prefix("OPTIONS-") {
        return parse_number(n).map(FileKind::Options);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(p: PathBuf) -> String {
        p.file_name().unwrap().to_str().unwrap().to_string()
    }

    #[test]
    fn names_round_trip() {
        let d = Path::new("/db");
        for n in [0u64, 7, 123_456, 1_234_567, u64::MAX] {
            assert_eq!(
                parse_file_name(&base(log_file_name(d, n))),
                Some(FileKind::Log(n))
            );
            assert_eq!(
                parse_file_name(&base(table_file_name(d, n))),
                Some(FileKind::Table(n))
            );
            assert_eq!(
                parse_file_name(&base(blob_file_name(d, n))),
                Some(FileKind::Blob(n))
            );
            assert_eq!(
                parse_file_name(&base(manifest_file_name(d, n))),
                Some(FileKind::Manifest(n))
            );
            assert_eq!(
                parse_file_name(&base(options_file_name(d, n))),
                Some(FileKind::Options(n))
            );
        }
        assert_eq!(base(log_file_name(d, 7)), "000007.log");
        assert_eq!(base(table_file_name(d, 1_234_567)), "1234567.sst");
        assert_eq!(base(manifest_file_name(d, 7)), "MANIFEST-000007");
        assert_eq!(
            parse_file_name(&base(current_file_name(d))),
            Some(FileKind::Current)
        );
        assert_eq!(
            parse_file_name(&base(lock_file_name(d))),
            Some(FileKind::Lock)
        );
        assert_eq!(base(temp_file_name(d, "CURRENT")), "CURRENT.tmp");
        assert_eq!(
            parse_file_name(&base(info_log_file_name(d))),
            Some(FileKind::InfoLog)
        );
        assert_eq!(
            parse_file_name(&base(old_info_log_file_name(d, 1_700_000_000_000_000))),
            Some(FileKind::OldInfoLog(1_700_000_000_000_000))
        );
        assert_eq!(parse_file_name("CURRENT.tmp"), Some(FileKind::Temp));
        assert_eq!(
            parse_file_name(&base(temp_file_name(d, &base(options_file_name(d, 12))))),
            Some(FileKind::Temp)
        );
    }

    #[test]
    fn foreign_names_are_rejected() {
        for n in [
            "7.log",
            "0000007.log",
            "00000a.log",
            "+00007.log",
            "MANIFEST-",
            "MANIFEST-7",
            "manifest-000007",
            "000007.SST",
            ".tmp",
            "notes.tmp",
            "000007.log.tmp",
            "OPTIONS-7.tmp",
            "MANIFEST-000007.tmp",
            "CURRENT2",
            "LOG.old.",
            "LOG.old.01",
            "LOG.old.1x",
            "LOG.OLD.1",
            "log",
            "99999999999999999999999.sst",
            "",
        ] {
            assert_eq!(parse_file_name(n), None, "{n}");
        }
    }
}
