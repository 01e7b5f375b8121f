//! Flushing frozen memtables to level-0 SST files, on a background thread.
//!
//! The flush thread takes the oldest frozen memtable, writes it to a new
//! SST file (synced, and its directory entry synced), records the file in
//! the manifest together with the new oldest-needed WAL number, publishes a
//! superversion without that memtable, and then deletes the WALs that are
//! no longer needed. Frozen memtables are flushed strictly oldest first, so
//! the WAL bookkeeping stays a single number.
//!
//! A failure puts the database into the background-error state (writes
//! stop); nothing is retried, because after a failed fsync the state of the
//! file on disk is unknown.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::run_io::{file_meta, value_kind, TableCursor};
use super::tree::Tree;
use super::DbInner;
use crate::blob::{BlobOutput, BlobTally};
use crate::error::Result;
use crate::filename::{log_file_name, parse_file_name, table_file_name, FileKind};
use crate::fs::FileSystem;
use crate::iter::InternalIterator;
use crate::key::{append_internal_key, ValueKind};
use crate::memtable::MemTable;
use crate::metrics::db_event;
use crate::options::Options;
use crate::sst::TableBuilder;
use crate::version::edit::{BlobFileMeta, FileMetaData, VersionEdit};
use crate::version::superversion::SuperVersion;
use lightning_compaction::{merge_runs, GcPolicy};

/// What the flush thread is asked to do.
#[derive(Debug, Default)]
pub(crate) struct FlushState {
    /// A frozen memtable may be waiting.
    pub(crate) pending: bool,
    /// Stop after the current flush.
    pub(crate) shutdown: bool,
    /// The flush thread is flushing (from taking `pending` until every
    /// frozen memtable it found is flushed and the WALs they freed are
    /// deleted): `flush()` waits for it to end as well as for the frozen
    /// memtables to be gone, so it never returns between a flush's
    /// publication and the deletion of its WALs.
    pub(crate) busy: bool,
}

/// What a flush wrote: the SST, and the blob files of its separated
/// values.
pub(crate) struct Flushed {
    pub(crate) table: FileMetaData,
    /// The blob files the SST references: those the flush wrote, and the
    /// memtable's live blob file, finished, with the records the flush
    /// dropped counted as garbage.
    pub(crate) blob_files: Vec<BlobFileMeta>,
    /// The memtable's live blob file when the SST references none of its
    /// records (all overwritten in the memtable): deleted once the flush
    /// is in the manifest (before, the WAL still names its records).
    pub(crate) dead_blob: Option<u64>,
}

/// Writes `mem` to the new SST file `number` in `dir`, synced, keeping of
/// each key only the versions a reader can see: the newest, and the newest
/// at or below each live snapshot in `snapshots` (the same MVCC rules as
/// compaction; tombstones are kept, since older versions may lie in SST
/// files). With `enable_blob_files`, values of at least `min_blob_size`
/// bytes go to new blob files (numbered from `numbers`, synced) and the
/// SST holds their references. Returns what it wrote, or `None` (and no
/// file) when `mem` is empty.
pub(crate) fn build_table(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    numbers: &AtomicU64,
    mem: &Arc<MemTable>,
    opts: &Options,
    snapshots: &[u64],
) -> Result<Option<Flushed>> {
    if mem.is_empty() {
        return Ok(None);
    }
    let path = table_file_name(dir, number);
    let file = fs.create(&path)?;
    let mut builder = TableBuilder::for_tree(file, path.clone(), opts, 0);
    let mut it: Box<dyn InternalIterator> = Box::new(mem.iter_frozen());
    it.seek_to_first();
    let policy = GcPolicy {
        snapshots: snapshots.to_vec(),
        bottommost: false,
        merge: crate::merge_operator::compaction_merge(&opts.merge_operator),
        // Compaction filters run in compaction only (as RocksDB's).
        filter: None,
    };
    let mut blobs = BlobOutput::new(fs, dir, numbers, opts);
    // The values put into the live blob file: it is complete (the
    // memtable is frozen), and is finished before the SST that references
    // it, so the manifest edit lists a whole file.
    let live = match mem.live_blob() {
        Some(f) => Some((f.finish()?, BlobTally::default())),
        None => None,
    };
    let mut key = Vec::new();
    // The merge drops what the memtable's own range tombstones delete in
    // the same snapshot stripe; the file keeps the tombstones that still
    // matter (not the bottommost level: older data lies below).
    let tombstones = mem.range_tombstones().unwrap_or_default();
    merge_runs(vec![TableCursor::new(it)?], &policy, &tombstones, |e| {
        key.clear();
        let kind = value_kind(e.kind);
        if let (ValueKind::BlobIndex, Some((_, kept))) = (kind, &live) {
            kept.note(e.user_key.len(), e.value)?;
        }
        match &mut blobs {
            Some(b) if kind == ValueKind::Value && b.separates(e.value.len()) => {
                append_internal_key(&mut key, e.user_key, e.seq, ValueKind::BlobIndex);
                let r = b.write(e.user_key, e.value)?;
                builder.add(&key, r)
            }
            _ => {
                append_internal_key(&mut key, e.user_key, e.seq, kind);
                builder.add(&key, e.value)
            }
        }
    })?;
    if !tombstones.is_empty() {
        let mut snaps = snapshots.to_vec();
        snaps.sort_unstable();
        builder.add_range_tombstones(&tombstones.collect_garbage(&snaps, false));
    }
    let blob_files = match blobs {
        Some(b) => b.finish()?,
        None => Vec::new(),
    };
    let (props, file_size) = builder.finish()?;
    let mut blob_files: Vec<BlobFileMeta> =
        blob_files.into_iter().map(BlobFileMeta::from).collect();
    let mut dead_blob = None;
    if let Some((info, kept)) = live {
        let (count, bytes) = kept.counts().get(&info.number).copied().unwrap_or((0, 0));
        if count > info.blob_count || bytes > info.blob_bytes {
            return Err(crate::error::Error::Internal(format!(
                "flush kept {count} references to live blob file {} of {} records",
                info.number, info.blob_count
            )));
        }
        if count == 0 {
            dead_blob = Some(info.number);
        } else {
            blob_files.push(BlobFileMeta {
                garbage_count: info.blob_count - count,
                garbage_bytes: info.blob_bytes - bytes,
                ..BlobFileMeta::from(info)
            });
        }
    }
    Ok(Some(Flushed {
        table: file_meta(number, file_size, &props),
        blob_files,
        dead_blob,
    }))
}

impl DbInner {
    /// The body of the flush thread.
    pub(crate) fn flush_loop(self: Arc<Self>) {
        loop {
            {
                let mut st = self.flush.state.lock();
                let mut aged = false;
                while !st.pending && !st.shutdown {
                    // With decisions by age (periodic compaction, FIFO's
                    // TTL), the thread also wakes now and then so that
                    // files age out while nothing is written.
                    match self.age_check_interval() {
                        None => self.flush.work_cv.wait(&mut st),
                        Some(d) => {
                            if self.flush.work_cv.wait_for(&mut st, d).timed_out() {
                                aged = true;
                                break;
                            }
                        }
                    }
                }
                if st.shutdown {
                    return;
                }
                if aged {
                    drop(st);
                    self.maybe_schedule_compaction();
                    continue;
                }
                st.pending = false;
                st.busy = true;
            }
            // Oldest memtable first within a keyspace; keyspaces in turn.
            while !self.bg_error.set.load(Ordering::Acquire) {
                let next = self.all_trees().into_iter().find_map(|t| {
                    let imm = t.sv.load().imms.last().cloned()?;
                    Some((t, imm))
                });
                let Some((tree, imm)) = next else {
                    break;
                };
                if let Err(e) = self.flush_one(&tree, &imm) {
                    self.set_bg_error(e);
                    break;
                }
                self.after_version_change();
                self.maybe_schedule_compaction();
                self.wake_stalled_writers();
                let _f = self.flush.state.lock();
                self.flush.done_cv.notify_all();
            }
            self.flush.state.lock().busy = false;
            self.flush.done_cv.notify_all();
        }
    }

    /// How often the flush thread looks for files that aged into a
    /// compaction (`None`: no keyspace decides by age): a tenth of the
    /// shortest periodic-compaction period or FIFO time to live, between
    /// 1 second and 10 minutes.
    fn age_check_interval(&self) -> Option<std::time::Duration> {
        let shortest = self
            .all_trees()
            .iter()
            .filter_map(|t| {
                let o = t.opts();
                let c = &o.compaction;
                let fifo_ttl = o
                    .ttl
                    .filter(|_| c.style == lightning_compaction::CompactionStyle::Fifo);
                let periodic = (c.periodic_compaction_seconds > 0)
                    .then(|| std::time::Duration::from_secs(c.periodic_compaction_seconds));
                fifo_ttl.into_iter().chain(periodic).min()
            })
            .min()?;
        Some((shortest / 10).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(600),
        ))
    }

    /// Flushes `imm`, the oldest frozen memtable of `tree`.
    fn flush_one(&self, tree: &Tree, imm: &Arc<MemTable>) -> Result<()> {
        let start = Instant::now();
        let number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let span = tracing::info_span!(
            "flush",
            db = self.metrics.label.as_str(),
            keyspace = tree.name.as_str(),
            file = number,
            entries = imm.num_entries(),
            memtable_bytes = imm.approximate_size(),
        );
        let _enter = span.enter();
        let snapshots: Vec<u64> = self.snapshots.lock().keys().copied().collect();
        let flushed = build_table(
            self.fs.as_ref(),
            &self.dir,
            number,
            &self.next_file_number,
            imm,
            &tree.opts(),
            &snapshots,
        )?;
        if flushed.is_some() {
            self.fs.sync_dir(&self.dir)?;
        }
        let obsolete_below;
        {
            let mut versions = self.versions.lock();
            if tree.is_dropped() {
                // Dropped while this flush ran: its output is an orphan,
                // deleted by the next open like any file no manifest lists.
                return Ok(());
            }
            let cur = tree.sv.load_full();
            // The oldest memtable of the keyspace still unflushed after
            // this one names the oldest WAL it still needs.
            let remaining: Vec<Arc<MemTable>> = cur
                .imms
                .iter()
                .filter(|m| !Arc::ptr_eq(m, imm))
                .cloned()
                .collect();
            let log_number = remaining
                .last()
                .map_or(cur.mem.log_number(), |m| m.log_number());
            let mut edit = VersionEdit {
                keyspace: tree.id,
                log_number: Some(log_number),
                ..VersionEdit::default()
            };
            if let Some(f) = &flushed {
                edit.new_files.push((0, f.table.clone()));
                edit.new_blob_files = f.blob_files.clone();
                // The live blob file's records were counted as they were
                // written (`super::separate`); its header and footer now.
                let live = imm.live_blob().map(|b| b.number());
                let blob_bytes: u64 = f
                    .blob_files
                    .iter()
                    .map(|b| {
                        if Some(b.number) == live {
                            (crate::blob::format::HEADER_LEN + crate::blob::format::FOOTER_LEN)
                                as u64
                        } else {
                            b.file_size
                        }
                    })
                    .sum();
                self.io
                    .blob_bytes_written
                    .fetch_add(blob_bytes, Ordering::Relaxed);
            }
            // The other keyspaces' log numbers follow their memtables
            // (an idle one's moved on with every new WAL), so that every
            // WAL below the smallest recorded number may go.
            for t in self.all_trees() {
                let recorded = versions.keyspaces().get(&t.id).map(|k| k.log_number);
                let needed = t.oldest_log_needed();
                if t.id != tree.id && recorded.is_some_and(|r| r < needed) {
                    edit.keyspace_log_numbers.push((t.id, needed));
                }
            }
            let version = versions.log_and_apply(
                edit,
                &self.next_file_number,
                self.visible_seq.load(Ordering::Acquire),
                tree.opts().compaction.num_levels,
            )?;
            tree.sv.store(Arc::new(SuperVersion {
                mem: Arc::clone(&cur.mem),
                imms: remaining,
                version,
            }));
            if let Some(m) = flushed.as_ref().map(|f| &f.table) {
                let elapsed = start.elapsed();
                tree.stats
                    .lock()
                    .record_flush(m.file_size, elapsed.as_micros() as u64);
                self.metrics.bg.flush_duration.record(elapsed);
            }
            // Every keyspace's oldest needed WAL (read under the versions
            // lock, which every memtable switch takes).
            obsolete_below = versions.min_log_number();
        }
        db_event!(
            self.metrics,
            INFO,
            "flushed memtable",
            keyspace = tree.name.as_str(),
            file = number,
            entries = imm.num_entries(),
            memtable_bytes = imm.approximate_size(),
            file_bytes = flushed.as_ref().map_or(0, |f| f.table.file_size),
            blob_files = flushed.as_ref().map_or(0, |f| f.blob_files.len()),
            blob_bytes = flushed.as_ref().map_or(0, |f| f
                .blob_files
                .iter()
                .map(|b| b.file_size)
                .sum::<u64>()),
            duration_ms = start.elapsed().as_millis() as u64,
        );
        self.delete_obsolete_wals(obsolete_below);
        if let Some(n) = flushed.as_ref().and_then(|f| f.dead_blob) {
            // Every record was overwritten in the memtable, and the flush
            // is in the manifest: nothing names the file any more (readers
            // of older superversions keep their open handle).
            let p = crate::filename::blob_file_name(&self.dir, n);
            if let Err(e) = self.fs.remove_file(&p) {
                tracing::warn!(file = %p.display(), error = %e, "could not delete a dead live blob file");
            }
        }
        Ok(())
    }

    /// Deletes WAL files numbered below `below` (their contents are in
    /// SST files recorded in the manifest).
    fn delete_obsolete_wals(&self, below: u64) {
        // A checkpoint being made may still copy them; the next flush
        // after it deletes them.
        if self.checkpoints.load(Ordering::SeqCst) > 0 {
            return;
        }
        let Ok(names) = self.fs.list_dir(&self.dir) else {
            return;
        };
        for name in names {
            if let Some(FileKind::Log(n)) = parse_file_name(&name) {
                if n < below {
                    let p = log_file_name(&self.dir, n);
                    tracing::debug!(db = self.metrics.label.as_str(), file = %p.display(), "deleting obsolete WAL");
                    if let Err(e) = self.fs.remove_file(&p) {
                        tracing::warn!(file = %p.display(), error = %e, "could not delete obsolete WAL");
                    }
                }
            }
        }
    }

    /// Freezes the memtable and waits until every frozen memtable is in an
    /// SST file.
    pub(crate) fn flush_and_wait(&self) -> Result<()> {
        self.write(crate::batch::WriteBatch::new(), false, true)?;
        let mut st = self.flush.state.lock();
        loop {
            if let Some(e) = self.bg_error() {
                return Err(e);
            }
            if !st.busy && self.all_trees().iter().all(|t| t.sv.load().imms.is_empty()) {
                return Ok(());
            }
            if st.shutdown {
                return Err(crate::error::Error::Closed);
            }
            self.flush.done_cv.wait(&mut st);
        }
    }
}
