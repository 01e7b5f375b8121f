//! Helpers shared by the adversarial integration tests: a file system that
//! skips fsync (the tests simulate crashes by copying and editing files, so
//! durability calls only cost time), directory copies, and whole-database
//! dumps to compare against a `BTreeMap` model.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lightning_db::fs::{FileLock, FileSystem, PosixFs, WritableFile};
use lightning_db::{Bytes, Db, Options, Result};

/// The real file system with `sync_data` and `sync_dir` turned into
/// flushes: tests that never lose power do not need to wait for the disk.
#[derive(Debug)]
pub struct NoSyncFs;

struct NoSyncFile(Box<dyn WritableFile>);

impl WritableFile for NoSyncFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.0.append(data)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn sync_data(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl FileSystem for NoSyncFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        PosixFs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(NoSyncFile(PosixFs.create(path)?)))
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        PosixFs.read_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        PosixFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        PosixFs.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        PosixFs.list_dir(dir)
    }
    fn sync_dir(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        PosixFs.exists(path)
    }
    fn file_size(&self, path: &Path) -> Result<u64> {
        PosixFs.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        PosixFs.lock(path)
    }
}

/// Options with a small write buffer and no fsyncs.
pub fn fast_opts() -> Options {
    Options {
        write_buffer_size: 64 * 1024,
        fs: Arc::new(NoSyncFs),
        ..Options::default()
    }
}

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every pair of the database, forwards.
pub fn dump(db: &Db) -> Result<Model> {
    let mut m = Model::new();
    for item in db.iter() {
        let (k, v) = item?;
        m.insert(k.to_vec(), v.to_vec());
    }
    Ok(m)
}

/// Copies the regular files of `from` (not `LOCK`) into a new directory.
pub fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "LOCK" {
            continue;
        }
        std::fs::copy(e.path(), to.join(&name)).unwrap();
    }
}

/// Files of `dir` whose names end with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// A small deterministic PRNG (xorshift64*), so the tests need no
/// dependency and replay exactly.
pub struct Rng(pub u64);

impl Rng {
    /// SplitMix64: every seed, 0 included, gives a full-period stream.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `1 / n`.
    #[allow(dead_code)]
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// `opts` with automatic compaction off, so flushed files stay in level 0
/// (tests that need many level-0 files, or a fixed set of files to damage).
pub fn no_compaction(mut opts: Options) -> Options {
    opts.compaction.disable_auto_compactions = true;
    opts
}
