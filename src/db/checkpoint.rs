//! Online checkpoints (`Db::checkpoint`, RocksDB's `Checkpoint`): an
//! openable copy of the live database, made while writes go on.
//!
//! How it stays consistent (a checkpoint opens to exactly a prefix of the
//! write history, every keyspace at the same sequence number):
//!
//! 1. WAL deletion is paused (`checkpoints` > 0: `delete_obsolete_wals`
//!    skips), so every WAL the captured state needs stays on disk.
//! 2. Under the versions lock, the current version of every keyspace is
//!    captured (holding the `Arc<Version>`s keeps their SST and blob files
//!    alive), and a manifest of exactly that state is written into the
//!    checkpoint. Each keyspace's flushed data then ends at or below the
//!    sequence number visible at that moment.
//! 3. The SSTs and blob files are hard-linked (copied where links are not
//!    possible: `FileSystem::link`); they are immutable.
//! 4. Under the WAL lock (no group is appending), the live WAL's length is
//!    taken: a record boundary. Every WAL from the captured state's
//!    smallest log number on is copied, the live one up to that length.
//!    The copied WALs hold every record up to some sequence number at or
//!    above the flushed data's, so recovery in the checkpoint replays each
//!    keyspace up to the same point: a prefix of the history, holding
//!    every write acknowledged before the call began.
//!
//! 5. The live blob files (values put since the last flush, named by the
//!    copied WAL records: `super::separate`) of every memtable present at
//!    step 2 or at step 4 are copied up to what was readable at step 4,
//!    which covers every value the copied WAL prefix names.
//!
//! Everything is written into `<dir>.tmp` (a stale one is removed first),
//! synced, and renamed to `dir` at the end: a crash during a checkpoint
//! leaves no half-made `dir`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::DbInner;
use crate::error::{Error, Result};
use crate::filename::{
    blob_file_name, log_file_name, manifest_file_name, parse_file_name, table_file_name, FileKind,
};

/// Bytes copied per read when a WAL is copied.
const COPY_CHUNK: usize = 1 << 20;

/// Pauses WAL deletion while it lives.
struct PauseDeletions<'a>(&'a DbInner);

impl Drop for PauseDeletions<'_> {
    fn drop(&mut self) {
        self.0.checkpoints.fetch_sub(1, Ordering::SeqCst);
    }
}

impl DbInner {
    /// Makes the checkpoint `dir` (see the module documentation).
    pub(crate) fn checkpoint(&self, dir: &Path) -> Result<()> {
        self.check_open()?;
        let fs = self.fs.as_ref();
        if fs.exists(dir)? {
            return Err(Error::InvalidArgument(format!(
                "checkpoint directory {} exists already; a checkpoint is made into a new one",
                dir.display()
            )));
        }
        let tmp = tmp_dir(dir)?;
        if fs.exists(&tmp)? {
            crate::fs::remove_dir_files(fs, &tmp)?;
        }
        fs.create_dir_all(&tmp)?;
        self.checkpoints.fetch_add(1, Ordering::SeqCst);
        let _pause = PauseDeletions(self);
        let result = self.fill_checkpoint(&tmp);
        if let Err(e) = result {
            // Best effort: the half-made copy goes.
            let _ = crate::fs::remove_dir_files(fs, &tmp);
            return Err(e);
        }
        fs.rename(&tmp, dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)?;
        }
        tracing::info!(
            db = self.metrics.label.as_str(),
            dir = %dir.display(),
            "checkpoint made"
        );
        Ok(())
    }

    fn fill_checkpoint(&self, tmp: &Path) -> Result<()> {
        let fs = self.fs.as_ref();
        // 2. The file set, and its manifest.
        let manifest_number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let (versions, min_log, mut live_blobs) = {
            let set = self.versions.lock();
            // The live blob files of the memtables not yet flushed as of
            // this state: the copied WALs name their values.
            let live_blobs = self.live_blob_files();
            let versions: Vec<Arc<crate::version::version::Version>> = set
                .keyspaces()
                .values()
                .map(|k| Arc::clone(&k.version))
                .collect();
            let min_log = set.min_log_number();
            set.write_manifest_copy(
                tmp,
                manifest_number,
                self.next_file_number.load(Ordering::Acquire),
            )?;
            (versions, min_log, live_blobs)
        };
        crate::version::current::write_current(fs, tmp, manifest_number)?;
        // 3. The immutable files.
        for v in &versions {
            for (_, f) in v.all_files() {
                let n = f.meta.number;
                fs.link(&table_file_name(&self.dir, n), &table_file_name(tmp, n))?;
            }
            for &n in v.blob_files().keys() {
                fs.link(&blob_file_name(&self.dir, n), &blob_file_name(tmp, n))?;
            }
        }
        // 4. The WALs, the live one up to a record boundary.
        let live = match &self.write {
            Some(ws) => {
                let mut wal = ws.wal.lock();
                wal.check_failed()?;
                wal.flush()?;
                // The live blob files now, and how much of each the WAL
                // prefix taken here may name: values are appended before
                // the records that name them, under this lock.
                for f in self.live_blob_files() {
                    if !live_blobs.iter().any(|g| g.number() == f.number()) {
                        live_blobs.push(f);
                    }
                }
                Some((wal.file_number(), wal.len()))
            }
            None => None,
        };
        let blob_lens: Vec<u64> = live_blobs.iter().map(|f| f.readable_len()).collect();
        let mut logs: Vec<u64> = fs
            .list_dir(&self.dir)?
            .iter()
            .filter_map(|name| match parse_file_name(name) {
                Some(FileKind::Log(n)) if n >= min_log => Some(n),
                _ => None,
            })
            .collect();
        logs.sort_unstable();
        for n in logs {
            let len = match live {
                Some((live_n, len)) if live_n == n => Some(len),
                // A WAL created after the live one's length was taken
                // holds nothing the checkpoint includes.
                Some((live_n, _)) if n > live_n => continue,
                _ => None,
            };
            copy_prefix(
                fs,
                &log_file_name(&self.dir, n),
                &log_file_name(tmp, n),
                len,
            )?;
        }
        // The live blob files, each up to what the copied WALs may name,
        // through its open handle (a flush may finish it meanwhile, and a
        // compaction delete it: the handle still reads).
        for (f, len) in live_blobs.iter().zip(blob_lens) {
            copy_from(
                f.reader(),
                &blob_file_name(&self.dir, f.number()),
                fs,
                &blob_file_name(tmp, f.number()),
                Some(len),
            )?;
        }
        // The options the database runs with, for reference.
        for name in fs.list_dir(&self.dir)? {
            if let Some(FileKind::Options(n)) = parse_file_name(&name) {
                let from = crate::filename::options_file_name(&self.dir, n);
                copy_prefix(fs, &from, &crate::filename::options_file_name(tmp, n), None)?;
            }
        }
        debug_assert!(fs.exists(&manifest_file_name(tmp, manifest_number))?);
        fs.sync_dir(tmp)?;
        drop(versions);
        Ok(())
    }
}

impl DbInner {
    /// The live blob files of every keyspace's memtables, active and
    /// frozen (those not flushed yet).
    fn live_blob_files(&self) -> Vec<Arc<crate::blob::LiveBlobFile>> {
        let mut out = Vec::new();
        for t in self.all_trees() {
            let sv = t.sv.load();
            for m in std::iter::once(&sv.mem).chain(&sv.imms) {
                if let Some(f) = m.live_blob() {
                    out.push(Arc::clone(f));
                }
            }
        }
        out
    }
}

/// `<dir>.tmp`, beside `dir`.
fn tmp_dir(dir: &Path) -> Result<PathBuf> {
    let Some(name) = dir.file_name() else {
        return Err(Error::InvalidArgument(format!(
            "checkpoint directory {} has no name",
            dir.display()
        )));
    };
    let mut tmp = name.to_os_string();
    tmp.push(".tmp");
    Ok(dir.with_file_name(tmp))
}

/// Copies the first `len` bytes of `from` (all of it for `None`) into the
/// new file `to`, and syncs it. Reads by position: `from` may be a live
/// WAL that grows meanwhile.
fn copy_prefix(
    fs: &dyn crate::fs::FileSystem,
    from: &Path,
    to: &Path,
    len: Option<u64>,
) -> Result<()> {
    let src = fs.open_random(from)?;
    copy_from(src.as_ref(), from, fs, to, len)
}

/// [`copy_prefix`] from the open handle `src` of `from`.
fn copy_from(
    src: &dyn crate::fs::RandomAccessFile,
    from: &Path,
    fs: &dyn crate::fs::FileSystem,
    to: &Path,
    len: Option<u64>,
) -> Result<()> {
    let len = match len {
        Some(l) => l,
        None => src.size()?,
    };
    let mut out = fs.create(to)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut at = 0u64;
    while at < len {
        let want = usize::try_from(len - at)
            .unwrap_or(COPY_CHUNK)
            .min(COPY_CHUNK);
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = src.read_at(at, chunk)?;
        if n == 0 {
            return Err(Error::corruption(
                from,
                at,
                "file ended before the length being copied",
            ));
        }
        out.append(chunk.get(..n).unwrap_or_default())?;
        at += n as u64;
    }
    out.sync_data()
}
