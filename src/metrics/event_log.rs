//! The event log: an optional, human-readable `LOG` file in the database
//! directory (like RocksDB's `LOG`), off by default
//! (`Options::event_log`).
//!
//! Each line is one event at level `INFO` or above, in logfmt style:
//!
//! ```text
//! 2025-01-31T12:00:00.123456Z  INFO lightning_db::db::flush: flushed memtable db=/data/db file=12 entries=10000 ...
//! ```
//!
//! Rotation: each open starts a new `LOG`, renaming the previous one to
//! `LOG.old.<microseconds since the epoch>`; so does a `LOG` reaching
//! `event_log_max_file_size`. Only the newest `event_log_keep_files` old
//! files are kept. Lines are handed to the operating system as they are
//! written and never synced: the file is informational.
//!
//! Writing the log never fails an operation of the database: a failure
//! is reported once through `tracing` and the log stops.
//!
//! Locking: the state sits behind its own mutex, taken last (while the
//! write queue or any other lock may be held) and never held while taking
//! another.

use std::fmt::{Display, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use tracing::Level;

use crate::error::Result;
use crate::filename::{info_log_file_name, old_info_log_file_name, parse_file_name, FileKind};
use crate::fs::{FileSystem, WritableFile};

/// Settings of the event log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventLogConfig {
    /// Rotate when the file would grow past this many bytes (0: never).
    pub(crate) max_file_size: u64,
    /// Old files (`LOG.old.*`) kept after a rotation.
    pub(crate) keep_files: usize,
}

struct State {
    file: Option<Box<dyn WritableFile>>,
    /// Microseconds of the last rotation name handed out (names stay
    /// unique when two rotations fall in one microsecond).
    last_rotation: u64,
}

/// The `LOG` file of one database.
pub(crate) struct EventLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    config: EventLogConfig,
    state: Mutex<State>,
}

/// Microseconds since the Unix epoch now.
fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl EventLog {
    /// Starts the event log of `dir`: renames an existing `LOG` to
    /// `LOG.old.*`, deletes old files beyond the configured number, and
    /// creates a new `LOG`.
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: EventLogConfig,
    ) -> Result<EventLog> {
        let log = EventLog {
            fs,
            dir: dir.to_path_buf(),
            config,
            state: Mutex::new(State {
                file: None,
                last_rotation: 0,
            }),
        };
        {
            let mut st = log.state.lock();
            log.rotate(&mut st)?;
        }
        Ok(log)
    }

    /// Renames the current `LOG` (if any) away, prunes old files and
    /// starts a new `LOG`.
    fn rotate(&self, st: &mut State) -> Result<()> {
        st.file = None;
        let current = info_log_file_name(&self.dir);
        if self.fs.exists(&current)? {
            let micros = now_micros().max(st.last_rotation + 1);
            st.last_rotation = micros;
            self.fs
                .rename(&current, &old_info_log_file_name(&self.dir, micros))?;
        }
        self.prune()?;
        st.file = Some(self.fs.create(&current)?);
        Ok(())
    }

    /// Deletes the oldest `LOG.old.*` files beyond `keep_files`.
    fn prune(&self) -> Result<()> {
        let mut old: Vec<u64> = self
            .fs
            .list_dir(&self.dir)?
            .iter()
            .filter_map(|n| match parse_file_name(n) {
                Some(FileKind::OldInfoLog(t)) => Some(t),
                _ => None,
            })
            .collect();
        old.sort_unstable();
        let excess = old.len().saturating_sub(self.config.keep_files);
        for t in &old[..excess] {
            self.fs
                .remove_file(&old_info_log_file_name(&self.dir, *t))?;
        }
        Ok(())
    }

    /// Writes one event line. Errors stop the log (reported once).
    pub(crate) fn write(
        &self,
        level: Level,
        target: &str,
        message: &str,
        fields: &[(&str, &dyn Display)],
    ) {
        let line = format_line(now_micros(), level, target, message, fields);
        let mut st = self.state.lock();
        let res = (|| {
            let Some(f) = st.file.as_ref() else {
                return Ok(());
            };
            let max = self.config.max_file_size;
            if max > 0 && !f.is_empty() && f.len() + line.len() as u64 > max {
                self.rotate(&mut st)?;
            }
            if let Some(f) = st.file.as_mut() {
                f.append(line.as_bytes())?;
                f.flush()?;
            }
            Ok::<(), crate::Error>(())
        })();
        if let Err(e) = res {
            st.file = None;
            tracing::warn!(dir = %self.dir.display(), error = %e, "event log failed; no more events are written to it");
        }
    }
}

/// One line: time, level, target, message, then `key=value` pairs
/// (values quoted when they hold spaces, quotes, `=` or nothing).
fn format_line(
    micros: u64,
    level: Level,
    target: &str,
    message: &str,
    fields: &[(&str, &dyn Display)],
) -> String {
    let mut line = format!(
        "{}.{:06}Z {:>5} {target}: {message}",
        rfc3339_utc(micros / 1_000_000).trim_end_matches('Z'),
        micros % 1_000_000,
        level.as_str()
    );
    for (k, v) in fields {
        let v = v.to_string();
        let _ = if v.is_empty() || v.contains([' ', '"', '=', '\n', '\t']) {
            write!(line, " {k}={v:?}")
        } else {
            write!(line, " {k}={v}")
        };
    }
    line.push('\n');
    line
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub(crate) fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemFs;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn lines_are_logfmt() {
        let l = format_line(
            1_700_000_000_000_042,
            Level::INFO,
            "lightning_db::db::flush",
            "flushed memtable",
            &[
                ("file", &12u64),
                ("path", &"/a b/c"),
                ("empty", &""),
                ("ok", &true),
            ],
        );
        assert_eq!(
            l,
            "2023-11-14T22:13:20.000042Z  INFO lightning_db::db::flush: flushed memtable \
             file=12 path=\"/a b/c\" empty=\"\" ok=true\n"
        );
    }

    #[test]
    fn rotates_by_size_and_at_open_keeping_the_newest() {
        let fs = Arc::new(MemFs::new());
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let cfg = EventLogConfig {
            max_file_size: 300,
            keep_files: 2,
        };
        let log = EventLog::open(fs.clone(), dir, cfg).unwrap();
        for i in 0..20u64 {
            log.write(Level::INFO, "t", "event", &[("i", &i)]);
        }
        drop(log);
        let count_old = || {
            fs.list_dir(dir)
                .unwrap()
                .iter()
                .filter(|n| n.starts_with("LOG.old."))
                .count()
        };
        assert_eq!(count_old(), 2);
        let current = fs.read_file(&info_log_file_name(dir)).unwrap();
        assert!(current.len() <= 300, "{}", current.len());
        assert!(String::from_utf8_lossy(&current).contains("i=19"));
        // A new open starts a new LOG.
        let log = EventLog::open(fs.clone(), dir, cfg).unwrap();
        assert_eq!(fs.read_file(&info_log_file_name(dir)).unwrap().len(), 0);
        assert_eq!(count_old(), 2);
        drop(log);
        // keep_files = 0 keeps none.
        let cfg0 = EventLogConfig {
            max_file_size: 0,
            keep_files: 0,
        };
        let _log = EventLog::open(fs.clone(), dir, cfg0).unwrap();
        assert_eq!(count_old(), 0);
    }
}
