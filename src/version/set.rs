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
use crate::version::edit::{
    BlobFileMeta, FileMetaData, VersionEdit, BLOB_MANIFEST_VERSION, KEYSPACE_MANIFEST_VERSION,
};
use crate::version::table_cache::TableOpener;
use crate::version::version::Version;

/// What replaying a manifest yields for one keyspace.
#[derive(Debug, Default, Clone)]
pub(crate) struct RecoveredKeyspace {
    /// The keyspace's name.
    pub(crate) name: String,
    /// Live files: `(level, file number) -> metadata`.
    pub(crate) files: BTreeMap<(u32, u64), FileMetaData>,
    /// Live blob files: number -> metadata (with garbage).
    pub(crate) blob_files: BTreeMap<u64, BlobFileMeta>,
    /// WALs numbered below this hold nothing of this keyspace that is
    /// not in its SST files.
    pub(crate) log_number: u64,
}

/// What replaying a manifest yields.
#[derive(Debug)]
pub(crate) struct RecoveredManifest {
    /// Every live keyspace by id; the default one (0) always.
    pub(crate) keyspaces: BTreeMap<u32, RecoveredKeyspace>,
    /// The largest keyspace id ever allocated (ids are never reused).
    pub(crate) max_keyspace_id: u32,
    /// Next unused file number.
    pub(crate) next_file_number: u64,
    /// Largest sequence number in the files.
    pub(crate) last_sequence: u64,
    /// Number of the manifest that was replayed.
    pub(crate) manifest_number: u64,
}

impl Default for RecoveredManifest {
    fn default() -> Self {
        let default = RecoveredKeyspace {
            name: crate::keyspace::DEFAULT_KEYSPACE_NAME.to_string(),
            ..RecoveredKeyspace::default()
        };
        RecoveredManifest {
            keyspaces: BTreeMap::from([(0, default)]),
            max_keyspace_id: 0,
            next_file_number: 0,
            last_sequence: 0,
            manifest_number: 0,
        }
    }
}

impl RecoveredManifest {
    /// The oldest WAL some keyspace still needs.
    pub(crate) fn min_log_number(&self) -> u64 {
        smallest_log(self.keyspaces.values().map(|k| k.log_number))
    }

    /// Every live file of every keyspace: `(keyspace, level, metadata)`.
    pub(crate) fn all_files(&self) -> impl Iterator<Item = (u32, u32, &FileMetaData)> {
        self.keyspaces.iter().flat_map(|(id, k)| {
            k.files
                .iter()
                .map(move |((level, _), meta)| (*id, *level, meta))
        })
    }
}

/// The smallest of the keyspaces' log numbers: WALs below it hold nothing
/// any keyspace needs.
fn smallest_log(logs: impl Iterator<Item = u64>) -> u64 {
    logs.min().unwrap_or(0)
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

/// Applies `edit` to the replay state; `Err` with the reason when the
/// edit does not fit it (a damaged or foreign manifest).
pub(crate) fn apply_to_state(
    state: &mut RecoveredManifest,
    edit: &VersionEdit,
) -> Result<(), String> {
    if let Some(n) = edit.next_file_number {
        state.next_file_number = n;
    }
    if let Some(s) = edit.last_sequence {
        state.last_sequence = s;
    }
    if let Some(m) = edit.max_keyspace_id {
        state.max_keyspace_id = state.max_keyspace_id.max(m);
    }
    let id = edit.keyspace;
    if let Some(name) = &edit.keyspace_added {
        if state.keyspaces.contains_key(&id) {
            return Err(format!("edit adds keyspace {id} (`{name}`), which exists"));
        }
        if state.keyspaces.values().any(|k| &k.name == name) {
            return Err(format!("edit adds a second keyspace named `{name}`"));
        }
        state.max_keyspace_id = state.max_keyspace_id.max(id);
        state.keyspaces.insert(
            id,
            RecoveredKeyspace {
                name: name.clone(),
                ..RecoveredKeyspace::default()
            },
        );
    }
    for &(other, n) in &edit.keyspace_log_numbers {
        match state.keyspaces.get_mut(&other) {
            Some(k) => k.log_number = k.log_number.max(n),
            None => {
                return Err(format!(
                    "edit sets the log number of keyspace {other}, which is not live"
                ))
            }
        }
    }
    if edit.keyspace_dropped {
        if id == 0 {
            return Err("edit drops the default keyspace".into());
        }
        if state.keyspaces.remove(&id).is_none() {
            return Err(format!("edit drops keyspace {id}, which is not live"));
        }
        return Ok(());
    }
    let Some(ks) = state.keyspaces.get_mut(&id) else {
        return Err(format!("edit changes keyspace {id}, which is not live"));
    };
    if let Some(n) = edit.log_number {
        ks.log_number = n;
    }
    for &(level, number) in &edit.deleted_files {
        if ks.files.remove(&(level, number)).is_none() {
            return Err(format!(
                "edit deletes file {number} at level {level}, which is not live"
            ));
        }
    }
    for (level, meta) in &edit.new_files {
        if ks
            .files
            .insert((*level, meta.number), meta.clone())
            .is_some()
        {
            return Err(format!("edit adds file {} twice", meta.number));
        }
    }
    apply_blob_tags(&mut ks.blob_files, edit, |m| *m)?;
    Ok(())
}

impl RecoveredKeyspace {
    /// An edit that adds every live file and blob file of the keyspace:
    /// applied to an empty version, it gives the recovered one.
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

/// One keyspace in the version set.
pub(crate) struct KeyspaceVersion {
    /// Its name.
    pub(crate) name: String,
    /// Its current version.
    pub(crate) version: Arc<Version>,
    /// The log number the manifest records for it.
    pub(crate) log_number: u64,
}

/// The current version of every keyspace and the open manifest.
pub(crate) struct VersionSet {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// Every live keyspace by id; the default one (0) always.
    keyspaces: BTreeMap<u32, KeyspaceVersion>,
    /// The largest keyspace id ever allocated.
    max_keyspace_id: u32,
    /// The manifest edits are appended to; `None` for a database opened
    /// read-only, whose manifest is only read.
    manifest: Option<LogWriter>,
    /// Number of the manifest `manifest` writes (the one `CURRENT` names).
    manifest_number: u64,
    /// Its format version: 1; [`BLOB_MANIFEST_VERSION`] once the file
    /// set has blob files; [`KEYSPACE_MANIFEST_VERSION`] once the database
    /// has had a keyspace besides the default one (only those versions may
    /// hold those tags).
    manifest_version: u32,
    last_sequence: u64,
    /// Opens the tables that edits add.
    opener: TableOpener,
    /// The manifest is rewritten before an edit once it is this long
    /// (`Options::max_manifest_file_size`).
    max_manifest_file_size: u64,
}

impl VersionSet {
    /// Starts manifest `manifest_number` holding a snapshot of
    /// `keyspaces`, syncs it, and points `CURRENT` at it. The manifest is
    /// rewritten the same way once it grows past `max_manifest_file_size`
    /// bytes.
    pub(crate) fn create(
        opener: TableOpener,
        manifest_number: u64,
        keyspaces: BTreeMap<u32, KeyspaceVersion>,
        max_keyspace_id: u32,
        next_file_number: u64,
        last_sequence: u64,
        max_manifest_file_size: u64,
    ) -> Result<Self> {
        let (fs, dir) = (Arc::clone(&opener.fs), opener.dir.clone());
        let mut set = VersionSet {
            dir,
            fs,
            keyspaces,
            max_keyspace_id,
            manifest: None,
            manifest_number,
            manifest_version: 0,
            last_sequence,
            opener,
            max_manifest_file_size,
        };
        let (manifest, manifest_version) =
            set.start_manifest(&set.dir, manifest_number, next_file_number, 1)?;
        write_current(set.fs.as_ref(), &set.dir, manifest_number)?;
        set.manifest = Some(manifest);
        set.manifest_version = manifest_version;
        Ok(set)
    }

    /// The version set of a database opened read-only: `keyspaces` were
    /// recovered from manifest `manifest_number`, which is only read.
    /// [`VersionSet::log_and_apply`] fails with [`Error::ReadOnly`].
    pub(crate) fn read_only(
        opener: TableOpener,
        manifest_number: u64,
        keyspaces: BTreeMap<u32, KeyspaceVersion>,
        max_keyspace_id: u32,
        last_sequence: u64,
    ) -> Self {
        VersionSet {
            dir: opener.dir.clone(),
            fs: Arc::clone(&opener.fs),
            keyspaces,
            max_keyspace_id,
            manifest: None,
            manifest_number,
            manifest_version: 0,
            last_sequence,
            opener,
            max_manifest_file_size: u64::MAX,
        }
    }

    /// Number of the live manifest.
    pub(crate) fn manifest_number(&self) -> u64 {
        self.manifest_number
    }

    /// Every live keyspace.
    pub(crate) fn keyspaces(&self) -> &BTreeMap<u32, KeyspaceVersion> {
        &self.keyspaces
    }

    /// The count behind [`VersionSet::blob_bytes_read`], shared with the
    /// live blob files of the memtables.
    pub(crate) fn blob_bytes_read_counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.opener.blob_bytes_read)
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

    /// The oldest WAL the manifest says some keyspace still needs.
    pub(crate) fn min_log_number(&self) -> u64 {
        smallest_log(self.keyspaces.values().map(|k| k.log_number))
    }

    /// Records `edit` durably in the manifest, then makes the version it
    /// produces current for its keyspace (`edit.keyspace`) and returns
    /// it. `next_file_number` and `last_sequence` are written into the
    /// edit. On error nothing is published; the caller must stop writing
    /// (the manifest's state on disk is unknown).
    ///
    /// An edit that adds a keyspace (`keyspace_added`) creates it with an
    /// empty version of `num_levels` levels (ignored otherwise); one that
    /// drops it removes it and marks its files obsolete (they are deleted
    /// once no reader holds them) and returns its last version.
    ///
    /// When the manifest has grown past `max_manifest_file_size`, a new one
    /// is started first ([`VersionSet::rotate_manifest`]), numbered from
    /// `next_file`; the edit then goes to the new manifest.
    pub(crate) fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        next_file: &AtomicU64,
        last_sequence: u64,
        num_levels: usize,
    ) -> Result<Arc<Version>> {
        let span = tracing::debug_span!(
            "manifest_write",
            manifest = self.manifest_number,
            keyspace = edit.keyspace,
            new_files = edit.new_files.len(),
            deleted_files = edit.deleted_files.len(),
        );
        let _enter = span.enter();
        let Some(manifest) = &self.manifest else {
            return Err(Error::ReadOnly(self.dir.clone()));
        };
        let id = edit.keyspace;
        let base = match (&edit.keyspace_added, self.keyspaces.get(&id)) {
            (None, Some(k)) => Arc::clone(&k.version),
            (Some(_), None) if id > self.max_keyspace_id => Arc::new(Version::empty(num_levels)),
            _ => {
                return Err(Error::Internal(format!(
                    "version edit for keyspace {id} does not fit the live keyspaces"
                )))
            }
        };
        if edit.keyspace_added.is_some() {
            edit.max_keyspace_id = Some(id);
        }
        // The format the edit needs: a new manifest of that version is
        // started for it, even if the file set does not need it (the last
        // blob files die in this edit).
        let needs = if edit.has_keyspace_tags() {
            KEYSPACE_MANIFEST_VERSION
        } else if edit.has_blob_tags() {
            BLOB_MANIFEST_VERSION
        } else {
            1
        };
        if manifest.len() >= self.max_manifest_file_size || needs > self.manifest_version {
            self.rotate_manifest(next_file, needs)?;
        }
        // A blob file all of whose records are garbage after this edit
        // leaves the version with it (decided here, under the lock, from
        // the current totals: concurrent compactions add garbage to the
        // same files).
        for g in &edit.blob_garbage {
            if let Some(f) = base.blob_files().get(&g.number) {
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
        let version = if edit.keyspace_dropped {
            Version::empty(base.num_levels())
        } else {
            base.apply(&edit, |meta| opener.open(meta), |b| opener.blob_handle(b))?
        };
        let mut buf = Vec::new();
        edit.encode_into(&mut buf);
        let blob_files = base.blob_files();
        let removed_blobs: Vec<_> = if edit.keyspace_dropped {
            blob_files.values().map(|f| Arc::clone(&f.handle)).collect()
        } else {
            edit.deleted_blob_files
                .iter()
                .filter_map(|n| blob_files.get(n).map(|f| Arc::clone(&f.handle)))
                .collect()
        };
        let manifest = self
            .manifest
            .as_mut()
            .ok_or_else(|| Error::ReadOnly(self.dir.clone()))?;
        manifest.add_record(&buf)?;
        manifest.sync()?;
        if edit.keyspace_dropped {
            for (_, f) in base.all_files() {
                f.mark_obsolete();
            }
        }
        for &(level, number) in &edit.deleted_files {
            if edit.new_files.iter().any(|(_, m)| m.number == number) {
                continue; // moved, not deleted
            }
            if let Some(f) = base
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
        for &(other, n) in &edit.keyspace_log_numbers {
            if let Some(k) = self.keyspaces.get_mut(&other) {
                k.log_number = k.log_number.max(n);
            }
        }
        self.last_sequence = last_sequence;
        if let Some(m) = edit.max_keyspace_id {
            self.max_keyspace_id = self.max_keyspace_id.max(m);
        }
        if edit.keyspace_dropped {
            self.keyspaces.remove(&id);
            return Ok(base);
        }
        let version = Arc::new(version);
        match (&edit.keyspace_added, self.keyspaces.get_mut(&id)) {
            (_, Some(k)) => {
                k.version = Arc::clone(&version);
                if let Some(n) = edit.log_number {
                    k.log_number = n;
                }
            }
            (Some(name), None) => {
                self.keyspaces.insert(
                    id,
                    KeyspaceVersion {
                        name: name.clone(),
                        version: Arc::clone(&version),
                        log_number: edit.log_number.unwrap_or(0),
                    },
                );
            }
            (None, None) => unreachable!("checked above"),
        }
        Ok(version)
    }

    /// The id the next keyspace gets.
    pub(crate) fn next_keyspace_id(&self) -> u32 {
        self.max_keyspace_id.saturating_add(1)
    }
}

impl VersionSet {
    /// Replaces the manifest by a new one holding a snapshot of the current
    /// versions (the same steps as at open): the new manifest is written
    /// and synced, `CURRENT` is switched to it (temporary file, sync,
    /// rename, directory sync), and only then is the old manifest deleted.
    /// A crash at any point leaves `CURRENT` naming a complete manifest
    /// describing the current versions. An error is returned as it is
    /// (the caller stops writing): after a failed switch of `CURRENT` it
    /// is not known which manifest it names. The new manifest is of format
    /// `at_least` or later.
    fn rotate_manifest(&mut self, next_file: &AtomicU64, at_least: u32) -> Result<()> {
        let number = next_file.fetch_add(1, Ordering::AcqRel);
        let old = self.manifest_number;
        let (manifest, manifest_version) = self.start_manifest(
            &self.dir,
            number,
            next_file.load(Ordering::Acquire),
            at_least,
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
            "manifest rewritten"
        );
        let path = manifest_file_name(&self.dir, old);
        if let Err(e) = self.fs.remove_file(&path) {
            // Harmless: the next open deletes every manifest but the one
            // CURRENT names.
            tracing::warn!(file = %path.display(), error = %e, "could not delete the old manifest");
        }
        Ok(())
    }

    /// Writes manifest `number` into `dir` (another database's directory:
    /// a checkpoint), holding every keyspace's current files as of now,
    /// and syncs it. The caller writes that directory's `CURRENT`.
    pub(crate) fn write_manifest_copy(
        &self,
        dir: &Path,
        number: u64,
        next_file_number: u64,
    ) -> Result<()> {
        let (mut manifest, _) =
            self.start_manifest(dir, number, next_file_number, self.manifest_version)?;
        manifest.finish()
    }

    /// Writes manifest `number`: its header and a snapshot of every
    /// keyspace, one record each (the default keyspace's first, with the
    /// next file number, last sequence and largest keyspace id), synced.
    /// `CURRENT` is not touched. The format is the oldest that can hold
    /// the snapshot, and at least `at_least`: version 1, which older
    /// builds read, unless a keyspace has blob files
    /// ([`BLOB_MANIFEST_VERSION`]) or the database has had other
    /// keyspaces ([`KEYSPACE_MANIFEST_VERSION`]). Returns the writer and
    /// the format.
    fn start_manifest(
        &self,
        dir: &Path,
        number: u64,
        next_file_number: u64,
        at_least: u32,
    ) -> Result<(LogWriter, u32)> {
        let mut records = Vec::with_capacity(self.keyspaces.len());
        for (&id, k) in &self.keyspaces {
            let mut e = VersionEdit {
                keyspace: id,
                log_number: Some(k.log_number),
                ..VersionEdit::default()
            };
            if id == 0 {
                e.next_file_number = Some(next_file_number);
                e.last_sequence = Some(self.last_sequence);
                e.max_keyspace_id = (self.max_keyspace_id > 0).then_some(self.max_keyspace_id);
            } else {
                e.keyspace_added = Some(k.name.clone());
            }
            for (level, f) in k.version.all_files() {
                e.new_files.push((level as u32, f.meta.clone()));
            }
            e.new_blob_files = k.version.blob_files().values().map(|b| b.meta).collect();
            records.push(e);
        }
        let format = records
            .iter()
            .map(|e| {
                if e.has_keyspace_tags() {
                    KEYSPACE_MANIFEST_VERSION
                } else if e.has_blob_tags() {
                    BLOB_MANIFEST_VERSION
                } else {
                    1
                }
            })
            .fold(at_least.max(1), u32::max);
        let path = manifest_file_name(dir, number);
        let file = self.fs.create(&path)?;
        let mut manifest = LogWriter::with_version(file, path, LogKind::Manifest, number, format)?;
        let mut buf = Vec::new();
        for e in &records {
            buf.clear();
            e.encode_into(&mut buf);
            manifest.add_record(&buf)?;
        }
        manifest.sync()?;
        Ok((manifest, format))
    }
}
