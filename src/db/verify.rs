//! Whole-database verification: [`Db::verify`] on an open database and
//! [`Db::verify_dir`] on a closed directory.
//!
//! Every live SST is read completely ([`Table::verify`]: every block
//! checksum, key order, the index separators, the filter and the
//! properties) and checked against what the manifest says about it; the
//! manifest and every live WAL are decoded completely, and the values WAL
//! records name in blob files (written at put time) are read back and
//! checked, for the keyspaces that replay the WAL. Problems are
//! collected, not returned one at a time: a damaged file does not stop the
//! check of the others. Inside one file, checking stops at its first
//! problem (what follows damage cannot be trusted).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::replay::{BlobReplayError, ReplayBlobs};
use super::Db;
use crate::batch::WriteBatch;
use crate::blob::BlobFile;
use crate::error::{Error, Result};
use crate::filename::{
    blob_file_name, current_file_name, log_file_name, manifest_file_name, parse_file_name,
    table_file_name, FileKind,
};
use crate::fs::{lock_shared_or_live, read_prefix, FileSystem};
use crate::log::{LogKind, LogReader};
use crate::sst::Table;
use crate::version::current::read_current;
use crate::version::edit::{BlobFileMeta, FileMetaData, VersionEdit};
use crate::version::set::{apply_to_state, RecoveredManifest};

/// What [`Db::verify`] or [`Db::verify_dir`] checked, and every problem
/// found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// Files read and checked completely: `CURRENT` (by
    /// [`Db::verify_dir`]), the manifest, every live SST file and every
    /// live WAL. A file that could not be read or decoded counts too.
    pub files_checked: u64,
    /// Total size in bytes of the files checked.
    pub bytes_checked: u64,
    /// Entries (values and tombstones) in the SST files that verified.
    pub sst_entries: u64,
    /// WAL batches decoded.
    pub wal_batches: u64,
    /// Every problem found, at most one per file, each naming its file:
    /// [`Error::Corruption`] (with the offset of the damage),
    /// [`Error::UnsupportedVersion`], or [`Error::Io`] for a file that is
    /// missing or unreadable. Empty when the database is intact.
    pub problems: Vec<Error>,
    /// The last WAL ends in a torn record: `(file, offset, reason)`. This
    /// is what a crash during a write leaves, not damage; recovery drops
    /// the record (it was never acknowledged with `sync`). A torn record in
    /// any other WAL is a problem.
    pub torn_tails: Vec<(PathBuf, u64, &'static str)>,
    /// [`Db::verify_dir`] found the database open by a writer (its `LOCK`
    /// held), and checked it live: files were read with positional reads as
    /// they were at that moment, the newest WAL's torn tail may be a write
    /// in progress, and files the writer deleted during the check (after a
    /// flush or compaction) are not problems. Always false for
    /// [`Db::verify`], which checks under the database's own locks.
    pub live: bool,
}

impl IntegrityReport {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Adds the counts, problems and torn tails of `other` (a check of one
    /// more file) to this report.
    fn merge(&mut self, other: IntegrityReport) {
        self.files_checked += other.files_checked;
        self.bytes_checked += other.bytes_checked;
        self.sst_entries += other.sst_entries;
        self.wal_batches += other.wal_batches;
        self.problems.extend(other.problems);
        self.torn_tails.extend(other.torn_tails);
    }

    fn file(&mut self, len: u64) {
        self.files_checked += 1;
        self.bytes_checked += len;
    }
}

impl Db {
    /// Verifies the open database: every live SST file (every block
    /// checksum, key order within and across blocks, the index separators,
    /// the filter knows every key, the properties match the blocks and the
    /// manifest's metadata), the manifest (every edit decodes and applies),
    /// every live WAL (every record and batch decodes), and every live
    /// blob file with the references to it, including the values WAL
    /// records name in blob files still being written. Reads and
    /// writes may go on meanwhile; files are checked as they were when the
    /// call started.
    ///
    /// Damage is reported in [`IntegrityReport::problems`], all of it, not
    /// just the first; `Err` only for a closed database.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
    /// db.put("k", "v")?;
    /// db.flush()?;
    /// let report = db.verify()?;
    /// assert!(report.is_ok(), "{report:?}");
    /// # Ok::<(), lightning_db::Error>(())
    /// ```
    pub fn verify(&self) -> Result<IntegrityReport> {
        let inner = &self.inner;
        inner.check_open()?;
        let fs = inner.fs.as_ref();
        let dir = inner.dir.as_path();
        let mut r = IntegrityReport::default();
        // The manifest is appended (and synced) under the versions lock:
        // read under it, it ends at a whole record.
        let log_numbers = |vs: &crate::version::set::VersionSet| -> HashMap<u32, u64> {
            vs.keyspaces()
                .iter()
                .map(|(id, k)| (*id, k.log_number))
                .collect()
        };
        let (versions, manifest_number, log_number, manifest, wal_replays) = {
            let vs = inner.versions.lock();
            let n = vs.manifest_number();
            let data = read_prefix(fs, &manifest_file_name(dir, n), None);
            let versions: Vec<_> = vs
                .keyspaces()
                .values()
                .map(|k| Arc::clone(&k.version))
                .collect();
            (versions, n, vs.min_log_number(), data, log_numbers(&vs))
        };
        match manifest {
            Ok(data) => {
                check_manifest(manifest_number, dir, data, &mut r);
            }
            Err(e) => {
                r.file(0);
                r.problems.push(e);
            }
        }
        let mut blobs = BlobCheck::new(Some(
            versions
                .iter()
                .flat_map(|v| v.blob_files().iter().map(|(n, f)| (*n, f.meta)))
                .collect(),
        ));
        for (_, f) in versions.iter().flat_map(|v| v.all_files()) {
            let path = table_file_name(dir, f.meta.number);
            match f.table() {
                Ok(t) => {
                    r.file(t.file_size());
                    check_table(&t, Some(&f.meta), &path, &mut blobs, &mut r);
                }
                Err(e) => {
                    blobs.incomplete = true;
                    r.file(0);
                    r.problems.push(e);
                }
            }
        }
        blobs.check_files(fs, dir, false, &[], &mut r);
        // WAL records are appended and flushed under the WAL lock: the
        // live WAL's length taken under it ends at a whole record, and the
        // file is read up to there with positional reads. (It must not be
        // mapped: it carries a preallocated tail that a WAL switch cuts
        // off, and a mapping would fault past the new end.) Older WALs are
        // finished and immutable; newer ones were started after this call.
        // A read-only handle has no live WAL: every WAL is read whole.
        let (live_wal, live_len) = match &inner.write {
            Some(ws) => {
                let w = ws.wal.lock();
                (w.file_number(), Some(w.len()))
            }
            None => (u64::MAX, None),
        };
        let mut logs: Vec<u64> = fs
            .list_dir(dir)?
            .iter()
            .filter_map(|n| match parse_file_name(n) {
                Some(FileKind::Log(x)) if x >= log_number && x <= live_wal => Some(x),
                _ => None,
            })
            .collect();
        logs.sort_unstable();
        let count = logs.len();
        let live = inner.write.is_some();
        let mut values = WalValues {
            fs,
            dir,
            reader: ReplayBlobs::for_check(wal_replays),
            live,
            refresh: live
                .then(|| Box::new(|| Some(log_numbers(&inner.versions.lock()))) as Refresh<'_>),
        };
        for (i, n) in logs.into_iter().enumerate() {
            let path = log_file_name(dir, n);
            let len = if n == live_wal { live_len } else { None };
            match read_prefix(fs, &path, len) {
                Ok(d) => check_wal(&path, n, d, i + 1 == count, &mut values, &mut r),
                // Deleted as obsolete by a flush since the listing.
                Err(_) if !fs.exists(&path).unwrap_or(true) => {}
                Err(e) => {
                    r.file(0);
                    r.problems.push(e);
                }
            }
        }
        Ok(r)
    }

    /// Verifies the database in the directory `path`: the same checks as
    /// [`Db::verify`], read-only. It creates, writes, renames and deletes
    /// nothing. It holds a shared lock on `LOCK` while it runs (as
    /// [`Db::open_read_only`] does), so no writer opens the database
    /// meanwhile; when a writer already has it open, the check runs live
    /// and says so ([`IntegrityReport::live`]). Nothing is memory-mapped
    /// that a writer may shorten, so a live check never endangers the
    /// process.
    ///
    /// `CURRENT` and the manifest are checked first. When they cannot be
    /// read, every SST and WAL file in the directory is checked instead of
    /// the live ones. A live SST or WAL that is missing is a problem.
    ///
    /// `Err` only when `path` cannot be listed or is not a database (no
    /// `CURRENT`); all damage goes to [`IntegrityReport::problems`].
    pub fn verify_dir(path: impl AsRef<Path>) -> Result<IntegrityReport> {
        verify_dir_with(&crate::fs::PosixFs, path.as_ref())
    }
}

/// [`Db::verify_dir`] through the file system `fs`.
pub(crate) fn verify_dir_with(fs: &dyn FileSystem, dir: &Path) -> Result<IntegrityReport> {
    let (_lock, live) = lock_shared_or_live(fs, dir)?;
    let mut names = fs.list_dir(dir)?;
    if !names
        .iter()
        .any(|n| parse_file_name(n) == Some(FileKind::Current))
    {
        return Err(Error::NotADatabase {
            path: dir.to_path_buf(),
            reason: "no CURRENT file".into(),
        });
    }
    let mut r = IntegrityReport {
        live,
        ..IntegrityReport::default()
    };
    r.file(fs.file_size(&current_file_name(dir)).unwrap_or(0));
    // Live, the writer may start a new manifest and delete the one
    // `CURRENT` named between the two reads: read `CURRENT` again then.
    let attempts = if live { crate::log::LIVE_WAL_READS } else { 1 };
    let mut state = None;
    for attempt in 1..=attempts {
        match read_current(fs, dir) {
            Ok(n) => {
                let path = manifest_file_name(dir, n);
                match read_prefix(fs, &path, None) {
                    Ok(data) => state = check_manifest(n, dir, data, &mut r),
                    Err(e)
                        if attempt < attempts
                            && e.io_kind() == Some(std::io::ErrorKind::NotFound) =>
                    {
                        continue
                    }
                    Err(e) => {
                        r.file(0);
                        r.problems.push(e);
                    }
                }
            }
            Err(e) => r.problems.push(e),
        }
        break;
    }

    if live {
        // Files the manifest names were created before it named them; list
        // after reading it so that they are all seen.
        names = fs.list_dir(dir)?;
    }
    let mut tables: BTreeMap<u64, Option<FileMetaData>> = BTreeMap::new();
    let mut logs: Vec<u64> = Vec::new();
    let mut blob_names: Vec<u64> = Vec::new();
    for n in &names {
        match parse_file_name(n) {
            Some(FileKind::Table(x)) if state.is_none() => {
                tables.insert(x, None);
            }
            Some(FileKind::Blob(x)) if state.is_none() => blob_names.push(x),
            Some(FileKind::Log(x)) if state.as_ref().is_none_or(|s| x >= s.min_log_number()) => {
                logs.push(x)
            }
            _ => {}
        }
    }
    if let Some(s) = &state {
        for (_, _, meta) in s.all_files() {
            tables.insert(meta.number, Some(meta.clone()));
        }
        logs.sort_unstable();
        // Live, the writer may have deleted it after a newer edit.
        let min_log = s.min_log_number();
        if !live && logs.first() != Some(&min_log) {
            r.problems.push(Error::corruption(
                log_file_name(dir, min_log),
                0,
                "the manifest names this WAL as the oldest still needed but it is missing",
            ));
        }
    }
    let mut blobs = BlobCheck::new(state.as_ref().map(|s| {
        s.keyspaces
            .values()
            .flat_map(|k| k.blob_files.iter().map(|(n, m)| (*n, *m)))
            .collect()
    }));
    for (number, meta) in tables {
        let path = table_file_name(dir, number);
        // SSTs are never shortened by the engine: mapping them is safe
        // also while a writer has the database open.
        let data = match fs.read_file(&path) {
            Ok(d) => d,
            // Deleted by the live writer's compaction since the listing.
            Err(_) if live && !fs.exists(&path).unwrap_or(true) => continue,
            Err(e) => {
                blobs.incomplete = true;
                r.file(0);
                r.problems.push(match fs.exists(&path) {
                    Ok(false) => Error::corruption(
                        &path,
                        0,
                        "the manifest lists this table file but it is missing",
                    ),
                    _ => e,
                });
                continue;
            }
        };
        r.file(data.len() as u64);
        match Table::from_bytes(path.clone(), data) {
            Ok(t) => check_table(&t, meta.as_ref(), &path, &mut blobs, &mut r),
            Err(e) => {
                blobs.incomplete = true;
                r.problems.push(e);
            }
        }
    }
    blobs.check_files(fs, dir, live, &blob_names, &mut r);
    logs.sort_unstable();
    let count = logs.len();
    // Without a manifest it is unknown which WAL replays into which
    // keyspace: no reference is checked.
    let mut values = WalValues {
        fs,
        dir,
        reader: ReplayBlobs::for_check(state.as_ref().map(log_numbers).unwrap_or_default()),
        live,
        refresh: live.then(|| {
            Box::new(move || {
                // The writer may be appending to the manifest: read it
                // again while it reads as damaged.
                for _ in 0..crate::log::LIVE_WAL_READS {
                    let state = read_current(fs, dir).ok().and_then(|n| {
                        let data = read_prefix(fs, &manifest_file_name(dir, n), None).ok()?;
                        check_manifest(n, dir, data, &mut IntegrityReport::default())
                    });
                    if let Some(s) = state {
                        return Some(log_numbers(&s));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                None
            }) as Refresh<'_>
        }),
    };
    for (i, n) in logs.into_iter().enumerate() {
        let path = log_file_name(dir, n);
        let last = i + 1 == count;
        // The newest WAL of a live database is being appended to: read it
        // again while it reads as damaged (see `crate::log::reread_live_wal`).
        let attempts = if live && last {
            crate::log::LIVE_WAL_READS
        } else {
            1
        };
        for attempt in 1..=attempts {
            match read_prefix(fs, &path, None) {
                Ok(d) => {
                    let mut one = IntegrityReport::default();
                    check_wal(&path, n, d, last, &mut values, &mut one);
                    if one.problems.is_empty() || attempt == attempts {
                        r.merge(one);
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                // Deleted by the live writer's flush since the listing.
                Err(_) if live && !fs.exists(&path).unwrap_or(true) => break,
                Err(e) => {
                    r.file(0);
                    r.problems.push(e);
                    break;
                }
            }
        }
    }
    Ok(r)
}

/// Which WAL each keyspace of `state` replays: from its log number on.
fn log_numbers(state: &RecoveredManifest) -> HashMap<u32, u64> {
    state
        .keyspaces
        .iter()
        .map(|(id, k)| (*id, k.log_number))
        .collect()
}

/// Decodes every edit of manifest `number` and applies it; the recovered
/// state when all of it is sound.
fn check_manifest(
    number: u64,
    dir: &Path,
    data: Bytes,
    r: &mut IntegrityReport,
) -> Option<RecoveredManifest> {
    let path = manifest_file_name(dir, number);
    r.file(data.len() as u64);
    let mut state = RecoveredManifest {
        manifest_number: number,
        ..RecoveredManifest::default()
    };
    let result = (|| {
        let mut reader = LogReader::new(path.clone(), data, LogKind::Manifest, number)?;
        let mut edits = 0u64;
        while let Some(rec) = reader.next_record()? {
            let edit = VersionEdit::decode_versioned(&rec.payload, reader.version())
                .map_err(|e| e.into_error(&path, rec.offset))?;
            apply_to_state(&mut state, &edit)
                .map_err(|reason| Error::corruption(&path, rec.offset, reason))?;
            edits += 1;
        }
        if edits == 0 {
            return Err(Error::corruption(
                &path,
                0,
                "manifest holds no version edit",
            ));
        }
        Ok(())
    })();
    match result {
        Ok(()) => Some(state),
        Err(e) => {
            r.problems.push(e);
            None
        }
    }
}

/// [`Table::verify`] plus the manifest's metadata against the properties.
fn check_table(
    t: &Table,
    meta: Option<&FileMetaData>,
    path: &Path,
    blobs: &mut BlobCheck,
    r: &mut IntegrityReport,
) {
    let report = match t.verify() {
        Ok(v) => v,
        Err(e) => {
            blobs.incomplete = true;
            r.problems.push(e);
            return;
        }
    };
    r.sst_entries += report.num_entries;
    if let Err(e) = blobs.note_table(path, &report.blob_references) {
        r.problems.push(e);
    }
    let Some(m) = meta else { return };
    let p = t.properties();
    let mismatch = if m.file_size != t.file_size() {
        Some(format!(
            "file is {} bytes but the manifest recorded {}",
            t.file_size(),
            m.file_size
        ))
    } else if m.smallest != p.smallest_key || m.largest != p.largest_key {
        Some("key range differs from the manifest's".into())
    } else if (m.num_entries, m.num_deletions) != (p.num_entries, p.num_deletions) {
        Some(format!(
            "holds {} entries ({} deletions) but the manifest recorded {} ({})",
            p.num_entries, p.num_deletions, m.num_entries, m.num_deletions
        ))
    } else if (m.smallest_seq, m.largest_seq) != (p.smallest_seq, p.largest_seq) {
        Some("sequence range differs from the manifest's".into())
    } else {
        None
    };
    if let Some(reason) = mismatch {
        r.problems.push(Error::corruption(path, 0, reason));
    }
}

/// The blob files of the file set being verified, and the references the
/// checked tables hold into them.
struct BlobCheck {
    /// The manifest's live blob files (`None` when it could not be read:
    /// every blob file in the directory is then walked on its own).
    live: Option<BTreeMap<u64, BlobFileMeta>>,
    /// References found, by blob file.
    refs: BTreeMap<u64, u64>,
    /// Some table could not be checked: reference counts are incomplete.
    incomplete: bool,
}

impl BlobCheck {
    fn new(live: Option<BTreeMap<u64, BlobFileMeta>>) -> Self {
        BlobCheck {
            live,
            refs: BTreeMap::new(),
            incomplete: false,
        }
    }

    /// Counts the references of the table at `path`; a reference to a blob
    /// file the manifest does not list is a problem (a dangling reference).
    fn note_table(&mut self, path: &Path, refs: &BTreeMap<u64, u64>) -> Result<()> {
        for (&file, &n) in refs {
            *self.refs.entry(file).or_insert(0) += n;
            if let Some(live) = &self.live {
                if !live.contains_key(&file) {
                    return Err(Error::corruption(
                        path,
                        0,
                        format!(
                            "{n} blob reference(s) into blob file {file}, which the manifest does \
                             not list (dangling references)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Walks every live blob file (or, without a manifest, every blob file
    /// in `unlisted`): every record's checksums, the footer's counts, the
    /// manifest's size and counts; and, when every table was checked, that
    /// the tables reference exactly the records the manifest counts as
    /// live. `live` (a check of a database a writer has open): a file
    /// deleted meanwhile is not a problem.
    fn check_files(
        &self,
        fs: &dyn FileSystem,
        dir: &Path,
        live: bool,
        unlisted: &[u64],
        r: &mut IntegrityReport,
    ) {
        let files: Vec<(u64, Option<BlobFileMeta>)> = match &self.live {
            Some(m) => m.iter().map(|(n, b)| (*n, Some(*b))).collect(),
            None => unlisted.iter().map(|n| (*n, None)).collect(),
        };
        for (number, meta) in files {
            let path = blob_file_name(dir, number);
            if meta.is_none() && !crate::blob::is_finished(fs, dir, number).unwrap_or(true) {
                // Without a manifest: a file the write path is appending
                // to, or that a crash left. No manifest names it; the WAL
                // check reads the values its records name.
                match crate::blob::walk_unfinished(fs, dir, number, false, |_, _| Ok(())) {
                    Ok(w) => r.file(w.size),
                    Err(_) if live && !fs.exists(&path).unwrap_or(true) => {}
                    Err(e) => {
                        r.file(0);
                        r.problems.push(e);
                    }
                }
                continue;
            }
            let file = match BlobFile::open(fs, dir, number) {
                Ok(f) => f,
                Err(_) if live && !fs.exists(&path).unwrap_or(true) => continue,
                Err(e) => {
                    r.file(0);
                    r.problems.push(e);
                    continue;
                }
            };
            r.file(file.size());
            if let Err(e) = file.walk(true, |_, _| Ok(())) {
                r.problems.push(e);
                continue;
            }
            let Some(m) = meta else { continue };
            let footer = file.footer();
            let problem = if file.size() != m.file_size {
                Some(format!(
                    "blob file is {} bytes but the manifest recorded {}",
                    file.size(),
                    m.file_size
                ))
            } else if (footer.blob_count, footer.blob_bytes) != (m.blob_count, m.blob_bytes) {
                Some(format!(
                    "blob file holds {} records ({} bytes) but the manifest recorded {} ({})",
                    footer.blob_count, footer.blob_bytes, m.blob_count, m.blob_bytes
                ))
            } else {
                let referenced = self.refs.get(&number).copied().unwrap_or(0);
                let alive = m.blob_count - m.garbage_count;
                (!self.incomplete && !live && referenced != alive).then(|| {
                    format!(
                        "the tables reference {referenced} records of this blob file but the \
                         manifest counts {alive} live ({} records, {} garbage)",
                        m.blob_count, m.garbage_count
                    )
                })
            };
            if let Some(reason) = problem {
                r.problems.push(Error::corruption(&path, 0, reason));
            }
        }
    }
}

/// Decodes every record of WAL `number` as a write batch. A torn tail is a
/// problem unless this is the last WAL.
fn check_wal(
    path: &Path,
    number: u64,
    data: Bytes,
    last: bool,
    values: &mut WalValues<'_>,
    r: &mut IntegrityReport,
) {
    r.file(data.len() as u64);
    let result = (|| {
        let mut reader = LogReader::new(path.to_path_buf(), data, LogKind::Wal, number)?;
        while let Some(rec) = reader.next_record()? {
            let mut batch = WriteBatch::from_wal_record(&rec.payload, reader.version())
                .map_err(|e| e.into_error(path, rec.offset))?;
            r.wal_batches += 1;
            match values.check(number, &mut batch) {
                Ok(()) => {}
                Err(BlobReplayError::Missing(e)) => {
                    return Ok(Some((rec.offset, MISSING_VALUE, Some(e))))
                }
                Err(BlobReplayError::Failed(e)) => return Err(e),
            }
        }
        Ok(reader.torn_tail().map(|t| (t.offset, t.reason, None)))
    })();
    match result {
        Ok(None) => {}
        // The last WAL may end in a torn record (a write in progress, or a
        // crash's). Offline it may also end at a record whose value its
        // blob file does not hold whole: recovery ends the log there too,
        // as after a power loss the unsynced tails of a WAL and of a blob
        // file survive independently. Live, values reach the OS before
        // their record: a missing one is damage.
        Ok(Some((offset, reason, ref missing))) if last && (missing.is_none() || !values.live) => {
            r.torn_tails.push((path.to_path_buf(), offset, reason))
        }
        Ok(Some((offset, _, Some(e)))) => r.problems.push(Error::corruption(
            path,
            offset,
            format!("a WAL record names a value its blob file does not hold whole: {e}"),
        )),
        Ok(Some((offset, reason, None))) => r.problems.push(Error::corruption(
            path,
            offset,
            format!("WAL ends in a damaged record ({reason}) but a newer WAL follows it"),
        )),
        Err(e) => r.problems.push(e),
    }
}

/// Reads the keyspaces' log numbers again (`WalValues::refresh`).
type Refresh<'a> = Box<dyn FnMut() -> Option<HashMap<u32, u64>> + 'a>;

/// The reason given for a WAL record whose blob value is not there whole.
const MISSING_VALUE: &str = "a record names a value its blob file does not hold whole";

/// How the WAL check reads back the values WAL records name by reference
/// (values written to a blob file at put time, `super::separate`), as
/// recovery would: for the keyspaces that replay the WAL only (the
/// others' references may name files long gone).
struct WalValues<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    reader: ReplayBlobs,
    /// The database is open for writing meanwhile.
    live: bool,
    /// The keyspaces' log numbers now. Live, a flush since they were read
    /// may have finished the blob file a WAL names and garbage collection
    /// deleted it: the WAL then no longer replays into that keyspace. A
    /// missing value is looked up again with newer log numbers before it
    /// counts as damage.
    refresh: Option<Refresh<'a>>,
}

impl WalValues<'_> {
    /// Reads back and checks every value `batch` (from WAL `wal`) names
    /// by reference; the error of the first that is not there whole.
    fn check(
        &mut self,
        wal: u64,
        batch: &mut WriteBatch,
    ) -> std::result::Result<(), BlobReplayError> {
        match self.reader.resolve(self.fs, self.dir, wal, batch) {
            Err(BlobReplayError::Missing(e)) => match self.refresh.as_mut().and_then(|f| f()) {
                Some(newer) => {
                    self.reader.set_log_numbers(newer);
                    self.reader.resolve(self.fs, self.dir, wal, batch)
                }
                None => Err(BlobReplayError::Missing(e)),
            },
            other => other,
        }
    }
}
