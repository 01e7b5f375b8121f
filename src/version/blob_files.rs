//! The blob files of a version (`docs/format.md`, "Blob files"): each
//! live blob file's totals and garbage as of that version, and a handle
//! shared by every version that lists the file, which opens it on first
//! read and deletes it from disk once it is obsolete and the last version
//! holding it is gone (as [`super::version::TableFile`] does for SSTs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::blob::{BlobFile, BlobRef};
use crate::error::{Error, Result};
use crate::filename::blob_file_name;
use crate::fs::FileSystem;
use crate::version::edit::{BlobFileMeta, VersionEdit};

/// A blob file on disk, shared by the versions that list it.
pub(crate) struct BlobFileHandle {
    number: u64,
    path: PathBuf,
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// The open file, after the first read.
    open: OnceLock<BlobFile>,
    /// Held while the file is being opened (one opener at a time).
    opening: Mutex<()>,
    obsolete: AtomicBool,
    /// The database's count of bytes read from blob files.
    bytes_read: Arc<AtomicU64>,
}

impl BlobFileHandle {
    /// A handle of blob file `number` of `dir`; the file is opened at its
    /// first read.
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        number: u64,
        bytes_read: Arc<AtomicU64>,
    ) -> Arc<BlobFileHandle> {
        Arc::new(BlobFileHandle {
            number,
            path: blob_file_name(dir, number),
            dir: dir.to_path_buf(),
            fs,
            open: OnceLock::new(),
            opening: Mutex::new(()),
            obsolete: AtomicBool::new(false),
            bytes_read,
        })
    }

    /// The open file (opened now if this is the first use). A failed open
    /// is returned and tried again by the next call.
    pub(crate) fn file(&self) -> Result<&BlobFile> {
        if let Some(f) = self.open.get() {
            return Ok(f);
        }
        let _one = self.opening.lock();
        if let Some(f) = self.open.get() {
            return Ok(f);
        }
        let f = BlobFile::open(self.fs.as_ref(), &self.dir, self.number)?;
        Ok(self.open.get_or_init(|| f))
    }

    /// Reads the value `r` refers to (which must name this file).
    pub(crate) fn read(&self, r: &BlobRef) -> Result<Bytes> {
        let v = self.file()?.read(r)?;
        self.bytes_read
            .fetch_add(u64::from(r.stored_len), Ordering::Relaxed);
        Ok(v)
    }

    /// Marks the file for deletion once no version holds it.
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for BlobFileHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            if let Err(e) = self.fs.remove_file(&self.path) {
                tracing::warn!(file = %self.path.display(), error = %e, "could not delete obsolete blob file");
            }
        }
    }
}

impl std::fmt::Debug for BlobFileHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobFileHandle")
            .field("number", &self.number)
            .finish_non_exhaustive()
    }
}

/// A live blob file as one version sees it.
#[derive(Debug, Clone)]
pub(crate) struct LiveBlobFile {
    /// Totals and garbage as of this version.
    pub(crate) meta: BlobFileMeta,
    /// The file.
    pub(crate) handle: Arc<BlobFileHandle>,
}

/// The live blob files of a version, by number.
pub(crate) type BlobFiles = BTreeMap<u64, LiveBlobFile>;

impl AsMut<BlobFileMeta> for LiveBlobFile {
    fn as_mut(&mut self) -> &mut BlobFileMeta {
        &mut self.meta
    }
}

impl AsMut<BlobFileMeta> for BlobFileMeta {
    fn as_mut(&mut self) -> &mut BlobFileMeta {
        self
    }
}

/// Applies the blob tags of `edit` to `files` (a version's live blob
/// files, or a manifest replay's metadata): garbage added (to live files,
/// never beyond their totals), deleted files removed (they must be live),
/// new files added (they must not be live) as made by `make`. Returns the
/// removed entries; on error (the reason) `files` may be partly changed.
pub(crate) fn apply_blob_tags<T: AsMut<BlobFileMeta>>(
    files: &mut BTreeMap<u64, T>,
    edit: &VersionEdit,
    mut make: impl FnMut(&BlobFileMeta) -> T,
) -> std::result::Result<Vec<T>, String> {
    for g in &edit.blob_garbage {
        let Some(f) = files.get_mut(&g.number) else {
            return Err(format!(
                "edit adds garbage to blob file {}, which is not live",
                g.number
            ));
        };
        let m = f.as_mut();
        let count = m.garbage_count.saturating_add(g.count);
        let bytes = m.garbage_bytes.saturating_add(g.bytes);
        if count > m.blob_count || bytes > m.blob_bytes {
            return Err(format!(
                "edit counts more garbage in blob file {} than it holds \
                 ({count} of {} records, {bytes} of {} bytes)",
                g.number, m.blob_count, m.blob_bytes
            ));
        }
        m.garbage_count = count;
        m.garbage_bytes = bytes;
    }
    let mut removed = Vec::new();
    for n in &edit.deleted_blob_files {
        match files.remove(n) {
            Some(f) => removed.push(f),
            None => return Err(format!("edit deletes blob file {n}, which is not live")),
        }
    }
    for meta in &edit.new_blob_files {
        if files.contains_key(&meta.number) {
            return Err(format!("edit adds blob file {} twice", meta.number));
        }
        files.insert(meta.number, make(meta));
    }
    Ok(removed)
}

/// The blob files of a version after `edit` ([`apply_blob_tags`]), new
/// files with a handle from `open`.
pub(crate) fn apply_blob_edit(
    files: &BlobFiles,
    edit: &VersionEdit,
    mut open: impl FnMut(&BlobFileMeta) -> Arc<BlobFileHandle>,
) -> Result<BlobFiles> {
    if !edit.has_blob_tags() {
        return Ok(files.clone());
    }
    let mut files = files.clone();
    apply_blob_tags(&mut files, edit, |meta| LiveBlobFile {
        meta: *meta,
        handle: open(meta),
    })
    .map_err(|reason| Error::Internal(format!("version {reason}")))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::edit::BlobGarbage;

    fn meta(number: u64) -> BlobFileMeta {
        BlobFileMeta {
            number,
            file_size: 1000,
            blob_count: 10,
            blob_bytes: 900,
            garbage_count: 0,
            garbage_bytes: 0,
        }
    }

    #[test]
    fn edits_add_garbage_and_remove_files_and_refuse_what_is_not_live() {
        let fs: Arc<dyn FileSystem> = Arc::new(crate::testing::MemFs::new());
        let open = |m: &BlobFileMeta| {
            BlobFileHandle::new(Arc::clone(&fs), Path::new("/db"), m.number, Arc::default())
        };
        let add = VersionEdit {
            new_blob_files: vec![meta(1), meta(2)],
            ..Default::default()
        };
        let files = apply_blob_edit(&BlobFiles::new(), &add, open).unwrap();
        assert_eq!(files.len(), 2);
        let garbage = VersionEdit {
            blob_garbage: vec![BlobGarbage {
                number: 1,
                count: 4,
                bytes: 360,
            }],
            deleted_blob_files: vec![2],
            ..Default::default()
        };
        let after = apply_blob_edit(&files, &garbage, open).unwrap();
        assert_eq!(after[&1].meta.garbage_count, 4);
        assert_eq!(after[&1].meta.garbage_bytes, 360);
        assert!(!after.contains_key(&2));
        let mut metas: BTreeMap<u64, BlobFileMeta> = BTreeMap::new();
        apply_blob_tags(&mut metas, &add, |m| *m).unwrap();
        let gone = apply_blob_tags(&mut metas, &garbage, |m| *m).unwrap();
        assert_eq!(gone.iter().map(|m| m.number).collect::<Vec<_>>(), vec![2]);
        assert_eq!(metas[&1].garbage_count, 4);
        // The older set is unchanged (versions are immutable).
        assert_eq!(files[&1].meta.garbage_count, 0);
        // Refused: adding twice, deleting or adding garbage to a file that
        // is not live, garbage beyond the totals.
        assert!(apply_blob_edit(&after, &add, open).is_err());
        assert!(apply_blob_edit(&after, &garbage, open).is_err());
        let too_much = VersionEdit {
            blob_garbage: vec![BlobGarbage {
                number: 1,
                count: 7,
                bytes: 1,
            }],
            ..Default::default()
        };
        assert!(apply_blob_edit(&after, &too_much, open).is_err());
    }
}
