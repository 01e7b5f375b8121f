//! The version set: the current [`Version`] and the manifest that records
//! every change to it.
//!
//! Each change of the file set (a flush, later a compaction) is one
//! [`VersionEdit`], appended to the manifest as one checksummed record and
//! synced before the change is published, so after a crash the manifest
//! replays to exactly the published file sets. A new manifest is started at
//! every open, and whenever the manifest grows past
//! `Options::max_manifest_file_size`, with a full snapshot of the current
//! version, and `CURRENT` is switched to it atomically.
//!
//! Locking: the database keeps the `VersionSet` behind its versions mutex;
//! every method takes `&mut self`, so edits are applied one at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::filename::manifest_file_name;
use crate::fs::FileSystem;
use crate::log::{LogKind, LogReader, LogWriter};
use crate::version::blob_files::apply_blob_tags;
use crate::version::current::{read_current, write_current};
use crate::version::edit::{BlobFileMeta, FileMetaData, VersionEdit, BLOB_MANIFEST_VERSION};
use crate::version::table_cache::TableOpener;
use crate::version::version::Version;

/// What replaying a manifest yields.
#[derive(Debug, Default)]
pub(crate) struct RecoveredManifest {
    /// Live files: `(level, file number) -> metadata`.
    pub(crate) files: BTreeMap<(u32, u64), FileMetaData>,
    /// Live blob files: number -> metadata (with garbage).
    pub(crate) blob_files: BTreeMap<u64, BlobFileMeta>,
    /// WALs numbered below this are fully in SST files.
    pub(crate) log_number: u64,
    /// Next unused file number.
    pub(crate) next_file_number: u64,
    /// Largest sequence number in the files.
    pub(crate) last_sequence: u64,
    /// Number of the manifest that was replayed.
    pub(crate) manifest_number: u64,
}

/// Reads `CURRENT` and replays the manifest it names.
pub(crate) fn recover_manifest(fs: &dyn FileSystem, dir: &Path) -> Result<RecoveredManifest> {
    let manifest_number = read_current(fs, dir)?;
    let path = manifest_file_name(dir, manifest_number);
    let data = crate::fs::read_file_retrying(fs, &path)?;
    let mut reader = LogReader::new(path.clone(), data, LogKind::Manifest, manifest_number)?;
    let mut state = RecoveredManifest {
        manifest_number,
        ..RecoveredManifest::default()
    };
    let mut edits = 0u64;
    while let Some(record) = reader.next_record()? {
        let edit = VersionEdit::decode_versioned(&record.payload, reader.version())
            .map_err(|e| e.into_error(&path, record.offset))?;
        apply_to_state(&mut state, &edit)
            .map_err(|reason| Error::corruption(&path, record.offset, reason))?;
        edits += 1;
    }
    if edits == 0 {
        return Err(Error::corruption(
            &path,
            0,
            "manifest holds no version edit (a manifest always starts with a snapshot)",
        ));
    }
    if let Some(t) = reader.torn_tail() {
        tracing::info!(manifest = %path.display(), offset = t.offset, "manifest ends in a torn record; it was never acknowledged");
    }
    Ok(state)
}

pub(crate) fn apply_to_state(
    state: &mut RecoveredManifest,
    edit: &VersionEdit,
) -> Result<(), String> {
    if let Some(n) = edit.log_number {
        state.log_number = n;
    }
    if let Some(n) = edit.next_file_number {
        state.next_file_number = n;
    }
    if let Some(s) = edit.last_sequence {
        state.last_sequence = s;
    }
    for &(level, number) in &edit.deleted_files {
        if state.files.remove(&(level, number)).is_none() {
            return Err(format!(
                "edit deletes file {number} at level {level}, which is not live"
            ));
        }
    }
    for (level, meta) in &edit.new_files {
        if state
            .files
            .insert((*level, meta.number), meta.clone())
            .is_some()
        {
            return Err(format!("edit adds file {} twice", meta.number));
        }
    }
    apply_blob_tags(&mut state.blob_files, edit, |m| *m)?;
    Ok(())
}

impl RecoveredManifest {
    /// An edit that adds every live file and blob file: applied to an
    /// empty version, it gives the recovered one.
    pub(crate) fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            new_files: self
                .files
                .iter()
                .map(|((level, _), meta)| (*level, meta.clone()))
                .collect(),
            new_blob_files: self.blob_files.values().copied().collect(),
            ..VersionEdit::default()
        }
    }
}

/// The current version and the open manifest.
pub(crate) struct VersionSet {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    current: Arc<Version>,
    /// The manifest edits are appended to; `None` for a database opened
    /// read-only, whose manifest is only read.
    manifest: Option<LogWriter>,
    /// Number of the manifest `manifest` writes (the one `CURRENT` names).
    manifest_number: u64,
    /// Its format version: 1, or [`BLOB_MANIFEST_VERSION`] once the file
    /// set has blob files (only that version may hold blob tags).
    manifest_version: u32,
    log_number: u64,
    last_sequence: u64,
    /// Opens the tables that edits add.
    opener: TableOpener,
    /// The manifest is rewritten before an edit once it is this long
    /// (`Options::max_manifest_file_size`).
    max_manifest_file_size: u64,
}

impl VersionSet {
    /// Starts manifest `manifest_number` holding a snapshot of `version`,
    /// syncs it, and points `CURRENT` at it. The manifest is rewritten the
    /// same way once it grows past `max_manifest_file_size` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        opener: TableOpener,
        manifest_number: u64,
        version: Arc<Version>,
        log_number: u64,
        next_file_number: u64,
        last_sequence: u64,
        max_manifest_file_size: u64,
    ) -> Result<Self> {
        let (fs, dir) = (Arc::clone(&opener.fs), opener.dir.clone());
        let (manifest, manifest_version) = start_manifest(
            fs.as_ref(),
            &dir,
            manifest_number,
            &version,
            log_number,
            next_file_number,
            last_sequence,
            false,
        )?;
        write_current(fs.as_ref(), &dir, manifest_number)?;
        Ok(VersionSet {
            dir,
            fs,
            current: version,
            manifest: Some(manifest),
            manifest_number,
            manifest_version,
            log_number,
            last_sequence,
            opener,
            max_manifest_file_size,
        })
    }

    /// The version set of a database opened read-only: `version` was
    /// recovered from manifest `manifest_number`, which is only read.
    /// [`VersionSet::log_and_apply`] fails with [`Error::ReadOnly`].
    pub(crate) fn read_only(
        opener: TableOpener,
        manifest_number: u64,
        version: Arc<Version>,
        log_number: u64,
        last_sequence: u64,
    ) -> Self {
        VersionSet {
            dir: opener.dir.clone(),
            fs: Arc::clone(&opener.fs),
            current: version,
            manifest: None,
            manifest_number,
            manifest_version: 0,
            log_number,
            last_sequence,
            opener,
            max_manifest_file_size: u64::MAX,
        }
    }

    /// Number of the live manifest.
    pub(crate) fn manifest_number(&self) -> u64 {
        self.manifest_number
    }

    /// The current version.
    pub(crate) fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current)
    }

    /// Bytes of values read from blob files since open.
    pub(crate) fn blob_bytes_read(&self) -> u64 {
        self.opener
            .blob_bytes_read
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The table cache of the tables this set opens.
    pub(crate) fn table_cache(&self) -> &crate::version::table_cache::TableCache {
        &self.opener.tables
    }

    /// WALs below this number are no longer needed.
    pub(crate) fn log_number(&self) -> u64 {
        self.log_number
    }

    /// Records `edit` durably in the manifest, then makes the version it
    /// produces current. `next_file_number` and `last_sequence` are written
    /// into the edit. On error nothing is published; the caller must stop
    /// writing (the manifest's state on disk is unknown).
    ///
    /// When the manifest has grown past `max_manifest_file_size`, a new one
    /// is started first ([`VersionSet::rotate_manifest`]), numbered from
    /// `next_file`; the edit then goes to the new manifest.
    pub(crate) fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        next_file: &AtomicU64,
        last_sequence: u64,
    ) -> Result<Arc<Version>> {
        let span = tracing::debug_span!(
            "manifest_write",
            manifest = self.manifest_number,
            new_files = edit.new_files.len(),
            deleted_files = edit.deleted_files.len(),
        );
        let _enter = span.enter();
        let Some(manifest) = &self.manifest else {
            return Err(Error::ReadOnly(self.dir.clone()));
        };
        let needs_blob_version =
            edit.has_blob_tags() && self.manifest_version < BLOB_MANIFEST_VERSION;
        if manifest.len() >= self.max_manifest_file_size || needs_blob_version {
            // The edit goes into the new manifest: it must be of the blob
            // version when the edit has blob tags, even if the file set
            // has no blob file left (its last ones die in this edit).
            self.rotate_manifest(next_file, edit.has_blob_tags())?;
        }
        // A blob file all of whose records are garbage after this edit
        // leaves the version with it (decided here, under the lock, from
        // the current totals: concurrent compactions add garbage to the
        // same files).
        for g in &edit.blob_garbage {
            if let Some(f) = self.current.blob_files().get(&g.number) {
                let dead = f.meta.garbage_count.saturating_add(g.count) >= f.meta.blob_count;
                if dead && !edit.deleted_blob_files.contains(&g.number) {
                    edit.deleted_blob_files.push(g.number);
                }
            }
        }
        edit.next_file_number = Some(next_file.load(Ordering::Acquire));
        let last_sequence = last_sequence.max(self.last_sequence);
        edit.last_sequence = Some(last_sequence);
        let opener = &self.opener;
        let version =
            self.current
                .apply(&edit, |meta| opener.open(meta), |b| opener.blob_handle(b))?;
        let mut buf = Vec::new();
        edit.encode_into(&mut buf);
        let blob_files = self.current.blob_files();
        let removed_blobs: Vec<_> = edit
            .deleted_blob_files
            .iter()
            .filter_map(|n| blob_files.get(n).map(|f| Arc::clone(&f.handle)))
            .collect();
        let manifest = self
            .manifest
            .as_mut()
            .ok_or_else(|| Error::ReadOnly(self.dir.clone()))?;
        manifest.add_record(&buf)?;
        manifest.sync()?;
        for &(level, number) in &edit.deleted_files {
            if edit.new_files.iter().any(|(_, m)| m.number == number) {
                continue; // moved, not deleted
            }
            if let Some(f) = self
                .current
                .files(level as usize)
                .iter()
                .find(|f| f.meta.number == number)
            {
                f.mark_obsolete();
            }
        }
        for b in removed_blobs {
            b.mark_obsolete();
        }
        if let Some(n) = edit.log_number {
            self.log_number = n;
        }
        self.last_sequence = last_sequence;
        self.current = Arc::new(version);
        Ok(Arc::clone(&self.current))
    }
}

impl VersionSet {
    /// Replaces the manifest by a new one holding a snapshot of the current
    /// version (the same steps as at open): the new manifest is written and
    /// synced, `CURRENT` is switched to it (temporary file, sync, rename,
    /// directory sync), and only then is the old manifest deleted. A crash
    /// at any point leaves `CURRENT` naming a complete manifest describing
    /// the current version. An error is returned as it is (the caller
    /// stops writing): after a failed switch of `CURRENT` it is not known
    /// which manifest it names. With `blobs`, the new manifest is of
    /// [`BLOB_MANIFEST_VERSION`] even before the file set has a blob file.
    fn rotate_manifest(&mut self, next_file: &AtomicU64, blobs: bool) -> Result<()> {
        let number = next_file.fetch_add(1, Ordering::AcqRel);
        let old = self.manifest_number;
        let (manifest, manifest_version) = start_manifest(
            self.fs.as_ref(),
            &self.dir,
            number,
            &self.current,
            self.log_number,
            next_file.load(Ordering::Acquire),
            self.last_sequence,
            blobs,
        )?;
        write_current(self.fs.as_ref(), &self.dir, number)?;
        let old_len = self.manifest.as_ref().map_or(0, LogWriter::len);
        self.manifest = Some(manifest);
        self.manifest_number = number;
        self.manifest_version = manifest_version;
        tracing::info!(
            old_manifest = old,
            old_bytes = old_len,
            new_manifest = number,
            "manifest rewritten (max_manifest_file_size)"
        );
        let path = manifest_file_name(&self.dir, old);
        if let Err(e) = self.fs.remove_file(&path) {
            // Harmless: the next open deletes every manifest but the one
            // CURRENT names.
            tracing::warn!(file = %path.display(), error = %e, "could not delete the old manifest");
        }
        Ok(())
    }
}

/// Writes manifest `number`: its header and one record, a snapshot of
/// `version` (files and blob files) with the log number, next file number
/// and last sequence; synced. `CURRENT` is not touched. The manifest is of
/// version 1, which older builds read, unless the file set has blob files
/// or `blobs` asks for [`BLOB_MANIFEST_VERSION`]; returns the writer and
/// the version.
#[allow(clippy::too_many_arguments)]
fn start_manifest(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    version: &Version,
    log_number: u64,
    next_file_number: u64,
    last_sequence: u64,
    blobs: bool,
) -> Result<(LogWriter, u32)> {
    let path = manifest_file_name(dir, number);
    let file = fs.create(&path)?;
    let format = if blobs || !version.blob_files().is_empty() {
        BLOB_MANIFEST_VERSION
    } else {
        1
    };
    let mut manifest = LogWriter::with_version(file, path, LogKind::Manifest, number, format)?;
    let mut snapshot = VersionEdit {
        log_number: Some(log_number),
        next_file_number: Some(next_file_number),
        last_sequence: Some(last_sequence),
        ..VersionEdit::default()
    };
    for (level, f) in version.all_files() {
        snapshot.new_files.push((level as u32, f.meta.clone()));
    }
    snapshot.new_blob_files = version.blob_files().values().map(|b| b.meta).collect();
    let mut buf = Vec::new();
    snapshot.encode_into(&mut buf);
    manifest.add_record(&buf)?;
    manifest.sync()?;
    Ok((manifest, format))
}
