//! Recovery of the keyspaces' trees at open: each keyspace's recovered
//! version, and the WAL records replayed into its memtable.
//!
//! The WALs are shared by every keyspace, but each keyspace has flushed
//! up to its own log number: an operation of keyspace `k` read from WAL
//! `w` is replayed only when `w >= log_number(k)` (older WALs' data of
//! `k` is in its SST files), and an operation of a keyspace the manifest
//! does not list (dropped) is skipped. Sequence numbers advance over
//! every record, replayed or not.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::flush::build_table;
use crate::batch::{OpKind, WriteBatch};
use crate::blob::{read_value, BlobRef};
use crate::error::{Error, Result};
use crate::filename::blob_file_name;
use crate::fs::{FileSystem, RandomAccessFile};
use crate::memtable::MemTable;
use crate::options::Options;
use crate::version::edit::VersionEdit;
use crate::version::set::{KeyspaceVersion, RecoveredKeyspace, RecoveredManifest};
use crate::version::table_cache::TableOpener;
use crate::version::version::Version;

/// One keyspace during recovery.
pub(super) struct RecoveringTree {
    pub(super) id: u32,
    pub(super) name: String,
    /// The database's options with the keyspace's applied.
    pub(super) opts: Options,
    /// The version the manifest describes, then with the replay's files.
    pub(super) version: Version,
    /// WALs below this hold nothing of the keyspace that is not in its
    /// files.
    pub(super) log_number: u64,
    /// The memtable records are replayed into.
    pub(super) mem: Arc<MemTable>,
    /// The files the replay flushed (applied by [`finish_flushes`]).
    edit: VersionEdit,
}

/// The options of keyspace `name`'s tree: the database's, with the
/// keyspace's section of the options applied.
pub(crate) fn tree_options(opts: &Options, name: &str) -> Options {
    opts.with_keyspace(&opts.keyspace_options(name))
}

/// Every keyspace of `recovered`, with its version opened (so that a
/// missing or damaged table is found now) and an empty memtable whose key
/// filter has `bloom` bytes (0 for memtables only flushed).
pub(super) fn recovering_trees(
    fs: &dyn FileSystem,
    dir: &Path,
    recovered: &RecoveredManifest,
    opener: &TableOpener,
    opts: &Options,
    bloom: bool,
) -> Result<Vec<RecoveringTree>> {
    let mut out = Vec::with_capacity(recovered.keyspaces.len());
    for (&id, k) in &recovered.keyspaces {
        let kopts = tree_options(opts, &k.name);
        let version = recovered_version(fs, dir, k, opener, &kopts)?;
        let bloom_bytes = if bloom {
            kopts.memtable_bloom_bytes()
        } else {
            0
        };
        out.push(RecoveringTree {
            id,
            name: k.name.clone(),
            version,
            log_number: k.log_number,
            mem: Arc::new(MemTable::new(0, bloom_bytes)),
            opts: kopts,
            edit: VersionEdit {
                keyspace: id,
                ..VersionEdit::default()
            },
        });
    }
    Ok(out)
}

/// The version the manifest describes for keyspace `k`: every table
/// opened, and every blob file present (a missing one would fail only the
/// reads of its values, later; it is `Corruption` now, as a missing table
/// is).
fn recovered_version(
    fs: &dyn FileSystem,
    dir: &Path,
    k: &RecoveredKeyspace,
    opener: &TableOpener,
    opts: &Options,
) -> Result<Version> {
    let version = Version::empty(opts.compaction.num_levels).apply(
        &k.snapshot_edit(),
        |m| opener.open(m),
        |b| opener.blob_handle(b),
    )?;
    for &number in version.blob_files().keys() {
        let path = blob_file_name(dir, number);
        if !fs.exists(&path)? {
            return Err(Error::corruption(
                path,
                0,
                "the manifest lists this blob file but it is missing",
            ));
        }
    }
    Ok(version)
}

/// How a replay reads back the values of blob references: the live blob
/// files it reads, opened once each, and which keyspaces replay which
/// WAL.
pub(super) struct ReplayBlobs {
    files: HashMap<u64, Box<dyn RandomAccessFile>>,
    /// Each recovering keyspace's log number: WAL `w` is replayed into
    /// keyspace `k` when `w >= log_numbers[k]`.
    log_numbers: HashMap<u32, u64>,
    /// A missing value is an error, not the end of the log: the replay
    /// runs beside a live primary (a secondary's catch-up), which may
    /// delete a live blob file once flushed, so the manifest read is
    /// stale and the recovery must be retried. (A live primary never
    /// leaves a record without its value: values reach the OS first.)
    pub(super) missing_is_error: bool,
}

/// Why the values of a batch's blob references could not be read back.
pub(super) enum BlobReplayError {
    /// The value is not there whole (missing file, short file, checksum
    /// mismatch): the batch was never durable, and the log ends before it
    /// (`super::separate`).
    Missing(Error),
    /// Reading failed otherwise (an I/O error): recovery stops with it.
    Failed(Error),
}

impl ReplayBlobs {
    /// The reader of the replay into `trees`.
    pub(super) fn new(trees: &[RecoveringTree], missing_is_error: bool) -> ReplayBlobs {
        ReplayBlobs {
            files: HashMap::new(),
            log_numbers: trees.iter().map(|t| (t.id, t.log_number)).collect(),
            missing_is_error,
        }
    }
    /// A reader for a check of the WALs (`Db::verify`): keyspace `k`
    /// replays WAL `w` when `w >= log_numbers[k]`.
    pub(super) fn for_check(log_numbers: HashMap<u32, u64>) -> ReplayBlobs {
        ReplayBlobs {
            files: HashMap::new(),
            log_numbers,
            missing_is_error: true,
        }
    }

    /// Replaces the keyspaces' log numbers with newer ones.
    pub(super) fn set_log_numbers(&mut self, log_numbers: HashMap<u32, u64>) {
        self.log_numbers = log_numbers;
    }

    /// Puts back inline the values `batch`'s blob references name (values
    /// written to a live blob file at put time), for the operations of
    /// the keyspaces that replay WAL `wal`; the others are never inserted
    /// and may name files long gone.
    pub(super) fn resolve(
        &mut self,
        fs: &dyn FileSystem,
        dir: &Path,
        wal: u64,
        batch: &mut WriteBatch,
    ) -> std::result::Result<(), BlobReplayError> {
        if !batch.has_blob_refs() {
            return Ok(());
        }
        let log_numbers = &self.log_numbers;
        let replays = |ks: u32| log_numbers.get(&ks).is_some_and(|&l| wal >= l);
        let files = &mut self.files;
        batch.replace_ops(|op| {
            if op.kind != OpKind::PutBlob || !replays(op.keyspace) {
                return Ok(None);
            }
            let r = BlobRef::decode(op.value).map_err(|e| {
                // The WAL record was checksummed: a reference that does
                // not decode is a bug or deliberate damage.
                BlobReplayError::Failed(Error::corruption(
                    dir,
                    0,
                    format!("bad blob reference in a WAL record: {}", e.reason),
                ))
            })?;
            let path = blob_file_name(dir, r.file_number);
            let file = match files.entry(r.file_number) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => match fs.open_random(&path) {
                    Ok(f) => v.insert(f),
                    Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => {
                        return Err(BlobReplayError::Missing(e))
                    }
                    Err(e) => return Err(BlobReplayError::Failed(e)),
                },
            };
            let size = file.size().map_err(BlobReplayError::Failed)?;
            match read_value(file.as_ref(), &path, r.file_number, &r, size) {
                Ok(v) => Ok(Some((OpKind::Put, v))),
                Err(e) if e.is_corruption() => Err(BlobReplayError::Missing(e)),
                Err(e) => Err(BlobReplayError::Failed(e)),
            }
        })
    }
}

/// Replays `batch`, read from WAL `wal`, into the memtables of the trees
/// it writes to that still need that WAL. Returns the batch's last
/// sequence number.
pub(super) fn replay_batch(trees: &[RecoveringTree], wal: u64, batch: &WriteBatch) -> u64 {
    let last = batch.sequence() + u64::from(batch.count()).saturating_sub(1);
    if !batch.has_keyspace_ops() {
        if let Some(t) = trees.first().filter(|t| t.id == 0 && wal >= t.log_number) {
            t.mem.insert_batch(batch);
        }
        return last;
    }
    for t in trees {
        if wal >= t.log_number && batch.iter().any(|op| op.keyspace == t.id) {
            t.mem.insert_batch_in(batch, t.id);
        }
    }
    last
}

/// Flushes every tree whose replay memtable is full (`full_only`) or
/// holds anything, to new level-0 files numbered from `numbers`.
pub(super) fn flush_replayed(
    fs: &dyn FileSystem,
    dir: &Path,
    trees: &mut [RecoveringTree],
    numbers: &AtomicU64,
    full_only: bool,
) -> Result<()> {
    for t in trees {
        if t.mem.is_empty() || (full_only && t.mem.approximate_size() < t.opts.write_buffer_size) {
            continue;
        }
        let n = numbers.fetch_add(1, Ordering::AcqRel);
        if let Some(f) = build_table(fs, dir, n, numbers, &t.mem, &t.opts, &[])? {
            t.edit.new_files.push((0, f.table));
            t.edit.new_blob_files.extend(f.blob_files);
        }
        t.mem = Arc::new(MemTable::new(0, 0));
    }
    Ok(())
}

/// Applies the files each tree's replay flushed to its version; returns
/// how many files that was.
pub(super) fn finish_flushes(trees: &mut [RecoveringTree], opener: &TableOpener) -> Result<usize> {
    let mut n = 0;
    for t in trees {
        if t.edit.new_files.is_empty() {
            continue;
        }
        n += t.edit.new_files.len();
        let v = std::mem::replace(&mut t.version, Version::empty(0));
        t.version = v.apply(&t.edit, |m| opener.open(m), |b| opener.blob_handle(b))?;
        t.edit.new_files.clear();
        t.edit.new_blob_files.clear();
    }
    Ok(n)
}

/// A recovered keyspace ready to serve: its options, version and replay
/// memtable.
pub(super) struct RecoveredTree {
    pub(super) id: u32,
    pub(super) name: String,
    pub(super) opts: Options,
    pub(super) version: Arc<Version>,
    pub(super) mem: Arc<MemTable>,
}

/// Splits the recovering trees into the version set's keyspaces (each
/// with the log number `log_number` gives it) and the trees to serve.
pub(super) fn finish_trees(
    trees: Vec<RecoveringTree>,
    log_number: impl Fn(&RecoveringTree) -> u64,
) -> (BTreeMap<u32, KeyspaceVersion>, Vec<RecoveredTree>) {
    let mut keyspaces = BTreeMap::new();
    let mut out = Vec::with_capacity(trees.len());
    for t in trees {
        let log = log_number(&t);
        let version = Arc::new(t.version);
        keyspaces.insert(
            t.id,
            KeyspaceVersion {
                name: t.name.clone(),
                version: Arc::clone(&version),
                log_number: log,
            },
        );
        out.push(RecoveredTree {
            id: t.id,
            name: t.name,
            opts: t.opts,
            version,
            mem: t.mem,
        });
    }
    (keyspaces, out)
}
