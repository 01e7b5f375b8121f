//! Incremental backups (`BackupEngine`, RocksDB's): each backup is a
//! checkpoint whose SST and blob files go to a directory shared by every
//! backup, so a new backup stores only the files that changed.
//!
//! Layout of a backup directory:
//!
//! ```text
//! shared/<name>_<xxh3-64 hex>_<size>   SST and blob files, stored once
//! private/<id>/<name>                  the backup's manifest, CURRENT, WALs, OPTIONS
//! meta/<id>                            what backup <id> holds (meta.rs)
//! ```
//!
//! A backup is made in `tmp/` (a checkpoint), its files checksummed and
//! moved into place, and it exists once `meta/<id>` is renamed into place
//! (synced first): a crash (kill -9, power loss) at any point before
//! leaves the earlier backups as they were, and the leftovers (`tmp/`,
//! files no metadata names) are removed by the next `open`. A restore
//! verifies every file's size and checksum before it writes anything.

mod meta;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::filename::{parse_file_name, FileKind};
use crate::fs::{remove_dir_files, FileSystem};
use crate::Db;
use meta::{Meta, MetaFile};

/// A backup's id: 1, 2, 3, ... in the order they were made.
pub type BackupId = u64;

/// What [`BackupEngine::list`] says about one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupInfo {
    /// Its id.
    pub id: BackupId,
    /// When it was made, milliseconds since the Unix epoch (the
    /// database's clock).
    pub created_ms: u64,
    /// Files it holds.
    pub num_files: usize,
    /// Bytes of those files (shared files counted in full).
    pub size: u64,
}

/// Incremental backups of databases into one directory.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use lightning_db::{BackupEngine, Db, Options};
///
/// let db = Db::open(dir.path().join("db"), Options::default())?;
/// db.put("k", "v1")?;
/// let backups = BackupEngine::open(dir.path().join("backups"))?;
/// let first = backups.create_backup(&db)?;
/// db.put("k", "v2")?;
/// backups.create_backup(&db)?;
/// backups.verify(first)?;
/// backups.restore(first, dir.path().join("restored"))?;
/// let old = Db::open(dir.path().join("restored"), Options::default())?;
/// assert_eq!(old.get("k")?.as_deref(), Some(&b"v1"[..]));
/// # Ok::<(), lightning_db::Error>(())
/// ```
///
/// One engine at a time uses a backup directory: it holds the directory's
/// `LOCK` (another open fails with [`Error::Locked`]), and its calls run
/// one at a time.
#[derive(Debug)]
pub struct BackupEngine {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// Serializes the calls that change the directory.
    busy: parking_lot::Mutex<()>,
    _lock: Box<dyn crate::fs::FileLock>,
}

impl BackupEngine {
    /// Opens (creating it if missing) the backup directory `dir` on the
    /// real file system, and removes what an interrupted backup left.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_fs(dir, crate::fs::default_fs())
    }

    /// [`open`](Self::open) on the file system `fs`, which must be the
    /// one of the databases backed up (their files are linked into it).
    pub fn open_with_fs(dir: impl AsRef<Path>, fs: Arc<dyn FileSystem>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        for sub in ["shared", "private", "meta"] {
            fs.create_dir_all(&dir.join(sub))?;
        }
        let lock = fs.lock(&dir.join("LOCK"))?;
        let engine = BackupEngine {
            dir,
            fs,
            busy: parking_lot::Mutex::new(()),
            _lock: lock,
        };
        engine.collect_garbage()?;
        Ok(engine)
    }

    /// Backs `db` up: a checkpoint of it (see [`Db::checkpoint`]), whose
    /// SST and blob files are stored once in `shared/` and reused by later
    /// backups. Returns the new backup's id.
    pub fn create_backup(&self, db: &Db) -> Result<BackupId> {
        let _busy = self.busy.lock();
        let id = self.ids()?.last().map_or(1, |l| l + 1);
        let tmp = self.dir.join("tmp");
        if self.fs.exists(&tmp)? {
            remove_dir_files(self.fs.as_ref(), &tmp)?;
        }
        db.checkpoint(&tmp)?;
        let private = self.dir.join("private").join(id.to_string());
        if self.fs.exists(&private)? {
            remove_dir_files(self.fs.as_ref(), &private)?;
        }
        self.fs.create_dir_all(&private)?;
        let mut names = self.fs.list_dir(&tmp)?;
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for name in names {
            let from = tmp.join(&name);
            let data = self.fs.read_file(&from)?;
            let (size, checksum) = (data.len() as u64, xxhash_rust::xxh3::xxh3_64(&data));
            drop(data);
            let shared = matches!(
                parse_file_name(&name),
                Some(FileKind::Table(_) | FileKind::Blob(_))
            );
            let stored = if shared {
                format!("shared/{name}_{checksum:016x}_{size}")
            } else {
                format!("private/{id}/{name}")
            };
            let to = self.dir.join(&stored);
            if shared && self.fs.exists(&to)? {
                // Stored by an earlier backup: same name, size and checksum.
                self.fs.remove_file(&from)?;
            } else {
                self.fs.rename(&from, &to)?;
            }
            files.push(MetaFile {
                stored,
                size,
                checksum,
                name,
            });
        }
        self.fs.sync_dir(&self.dir.join("shared"))?;
        self.fs.sync_dir(&private)?;
        remove_dir_files(self.fs.as_ref(), &tmp)?;
        let meta = Meta {
            id,
            created_ms: db.clock_millis(),
            files,
        };
        let path = self.meta_path(id);
        let part = self.dir.join("meta").join(format!("{id}.tmp"));
        let mut f = self.fs.create(&part)?;
        f.append(&meta.encode())?;
        f.sync_data()?;
        drop(f);
        self.fs.rename(&part, &path)?;
        self.fs.sync_dir(&self.dir.join("meta"))?;
        tracing::info!(backup = id, dir = %self.dir.display(), "backup made");
        Ok(id)
    }

    /// The backups, oldest first. A backup whose metadata is damaged is
    /// an [`Error::Corruption`] naming it.
    pub fn list(&self) -> Result<Vec<BackupInfo>> {
        self.ids()?
            .into_iter()
            .map(|id| {
                let m = self.meta(id)?;
                Ok(BackupInfo {
                    id,
                    created_ms: m.created_ms,
                    num_files: m.files.len(),
                    size: m.files.iter().map(|f| f.size).sum(),
                })
            })
            .collect()
    }

    /// Checks that every file of backup `id` is there with its recorded
    /// size and checksum; the first that is not is an
    /// [`Error::Corruption`] naming it.
    pub fn verify(&self, id: BackupId) -> Result<()> {
        let m = self.meta(id)?;
        for f in &m.files {
            self.check_file(f)?;
        }
        Ok(())
    }

    /// Restores backup `id` into the new directory `target` (which must
    /// not exist or be empty), after verifying every file: a damaged
    /// backup writes nothing. Open the result with [`Db::open`].
    pub fn restore(&self, id: BackupId, target: impl AsRef<Path>) -> Result<()> {
        let target = target.as_ref();
        self.verify(id)?;
        if self.fs.exists(target)? && !self.fs.list_dir(target)?.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "restore target {} is not empty",
                target.display()
            )));
        }
        self.fs.create_dir_all(target)?;
        let m = self.meta(id)?;
        for f in &m.files {
            crate::fs::copy_file(
                self.fs.as_ref(),
                &self.dir.join(&f.stored),
                &target.join(&f.name),
            )?;
        }
        self.fs.sync_dir(target)?;
        Ok(())
    }

    /// Deletes backup `id` and the shared files no other backup uses.
    pub fn delete_backup(&self, id: BackupId) -> Result<()> {
        let _busy = self.busy.lock();
        let path = self.meta_path(id);
        if !self.fs.exists(&path)? {
            return Err(Error::InvalidArgument(format!(
                "no backup {id} in {}",
                self.dir.display()
            )));
        }
        self.fs.remove_file(&path)?;
        self.fs.sync_dir(&self.dir.join("meta"))?;
        self.collect_garbage()
    }

    /// Keeps the `keep` newest backups and deletes the others.
    pub fn purge_old(&self, keep: usize) -> Result<()> {
        let _busy = self.busy.lock();
        let ids = self.ids()?;
        for &id in ids.iter().take(ids.len().saturating_sub(keep)) {
            self.fs.remove_file(&self.meta_path(id))?;
        }
        self.fs.sync_dir(&self.dir.join("meta"))?;
        self.collect_garbage()
    }

    fn meta_path(&self, id: BackupId) -> PathBuf {
        self.dir.join("meta").join(id.to_string())
    }

    fn meta(&self, id: BackupId) -> Result<Meta> {
        let path = self.meta_path(id);
        let m = Meta::decode(&path, &self.fs.read_file(&path)?)?;
        if m.id != id {
            return Err(Error::corruption(
                &path,
                0,
                format!("names backup {}", m.id),
            ));
        }
        Ok(m)
    }

    /// The ids of the backups (complete metadata files), ascending.
    fn ids(&self) -> Result<Vec<BackupId>> {
        let mut ids: Vec<BackupId> = self
            .fs
            .list_dir(&self.dir.join("meta"))?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn check_file(&self, f: &MetaFile) -> Result<()> {
        let path = self.dir.join(&f.stored);
        if !self.fs.exists(&path)? {
            return Err(Error::corruption(&path, 0, "file of the backup is missing"));
        }
        let data = self.fs.read_file(&path)?;
        if data.len() as u64 != f.size {
            return Err(Error::corruption(
                &path,
                0,
                format!("{} bytes where the backup recorded {}", data.len(), f.size),
            ));
        }
        if xxhash_rust::xxh3::xxh3_64(&data) != f.checksum {
            return Err(Error::corruption(
                &path,
                0,
                "checksum mismatch: the file is damaged",
            ));
        }
        Ok(())
    }

    /// Removes what no complete backup names: `tmp/`, `meta/*.tmp`,
    /// private directories of unknown ids, unreferenced shared files.
    fn collect_garbage(&self) -> Result<()> {
        let fs = self.fs.as_ref();
        let tmp = self.dir.join("tmp");
        if fs.exists(&tmp)? {
            remove_dir_files(fs, &tmp)?;
        }
        let ids = self.ids()?;
        let mut live: BTreeSet<String> = BTreeSet::new();
        for &id in &ids {
            for f in self.meta(id)?.files {
                live.insert(f.stored);
            }
        }
        for name in fs.list_dir(&self.dir.join("meta"))? {
            if name.parse::<BackupId>().is_err() {
                fs.remove_file(&self.dir.join("meta").join(name))?;
            }
        }
        for name in fs.list_dir(&self.dir.join("shared"))? {
            if !live.contains(&format!("shared/{name}")) {
                fs.remove_file(&self.dir.join("shared").join(name))?;
            }
        }
        for name in fs.list_dir(&self.dir.join("private"))? {
            if !name.parse::<BackupId>().is_ok_and(|id| ids.contains(&id)) {
                remove_dir_files(fs, &self.dir.join("private").join(name))?;
            }
        }
        Ok(())
    }
}
