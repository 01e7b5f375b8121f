//! [`MemFs`]: a plain in-memory file system.
//!
//! Thread-safe and cheap to clone (clones share the files). Data written is
//! visible at once; `sync_data` and `sync_dir` succeed and cost nothing;
//! [`FileSystem::read_file`] returns a copy of the content as [`Bytes`];
//! locks exclude each other within one `MemFs` (and its clones). Nothing
//! ever fails except for missing files and directories. It is a
//! [`FaultFs`] that is never crashed and never injects a fault, so it
//! behaves exactly like one between crashes.

use std::path::Path;

use bytes::Bytes;

use super::FaultFs;
use crate::error::Result;
use crate::fs::{FileLock, FileSystem, RandomAccessFile, WritableFile};

/// An in-memory [`FileSystem`] (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    inner: FaultFs,
}

impl MemFs {
    /// An empty file system holding only the root directory `/`.
    pub fn new() -> MemFs {
        MemFs::default()
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.inner.create(path)
    }
    fn create_mapped(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.inner.create_mapped(path)
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        self.inner.read_file(path)
    }
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        self.inner.open_random(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn file_size(&self, path: &Path) -> Result<u64> {
        self.inner.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}
