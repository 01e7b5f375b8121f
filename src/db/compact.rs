//! The engine side of compaction: describing the tree to the planner,
//! scheduling jobs on the rayon pool, reading inputs and writing outputs
//! for the executor, and installing the results.
//!
//! Invariants:
//! - A file is input to at most one running job (`being_compacted`); the
//!   planner never picks it again until the job ends.
//! - A job's outputs are synced (and their directory entries) before the
//!   manifest edit that adds them and removes the inputs; the edit is one
//!   record, so a crash leaves either the inputs or the outputs live, never
//!   both or neither. Outputs of an interrupted job are orphans that the
//!   next open deletes.
//! - Input files are deleted only when the last version, iterator or
//!   snapshot holding them lets go (see `TableFile`).
//! - Flushes run on their own thread and never wait for a compaction.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use lightning_compaction::executor::{run_job, JobInputs};
use lightning_compaction::planner::{self, ManualStep, StallCause, WriteStall};
use lightning_compaction::stats::{CompactionStats, StallMicros};
use lightning_compaction::FragmentedTombstones;
use lightning_compaction::{
    CompactionJob, EntryRef, FileInfo, KeyRange, LevelState, RunSink, RunWriter, UserHooks,
};

use super::run_io::{file_meta, value_kind, TableCursor};
use super::tree::Tree;
use super::DbInner;
use crate::blob::{decode_ref, garbage as blob_garbage, BlobOutput, BlobTally};
use crate::error::{Error, Result};
use crate::filename::table_file_name;
use crate::iter::level::LevelIterator;
use crate::iter::InternalIterator;
use crate::key::{append_internal_key, encode_internal_key, ValueKind};
use crate::key::{is_range_end_bound, user_key, MAX_SEQUENCE};
use crate::metrics::{db_event, Stall};
use crate::sst::TableBuilder;
use crate::version::edit::{BlobFileMeta, BlobGarbage, FileMetaData, VersionEdit};
use crate::version::superversion::SuperVersion;
use crate::version::version::{TableFile, Version};

/// Bookkeeping of running compactions, behind `DbInner::compaction`.
#[derive(Debug, Default)]
pub(crate) struct CompactionState {
    /// Files that are input to a running job.
    pub(crate) being_compacted: HashSet<u64>,
    /// Running jobs.
    pub(crate) running: usize,
    /// A manual compaction wants the compaction threads to itself.
    pub(crate) manual: bool,
    pub(crate) next_job_id: u64,
}

/// Encodes a write-stall condition for the `stall_condition` atomic.
pub(crate) fn encode_stall(s: WriteStall) -> u8 {
    match s {
        WriteStall::None => 0,
        WriteStall::Slowdown {
            cause: StallCause::L0FileCount,
        } => 1,
        WriteStall::Slowdown {
            cause: StallCause::PendingCompactionBytes,
        } => 2,
        WriteStall::Stop {
            cause: StallCause::L0FileCount,
        } => 3,
        WriteStall::Stop {
            cause: StallCause::PendingCompactionBytes,
        } => 4,
    }
}

/// How severe a stall condition is (the worst of several keyspaces'
/// wins).
fn stall_rank(s: WriteStall) -> u8 {
    match s {
        WriteStall::None => 0,
        WriteStall::Slowdown { .. } => 1,
        WriteStall::Stop { .. } => 2,
    }
}

/// Decodes [`encode_stall`].
pub(crate) fn decode_stall(b: u8) -> WriteStall {
    match b {
        1 => WriteStall::Slowdown {
            cause: StallCause::L0FileCount,
        },
        2 => WriteStall::Slowdown {
            cause: StallCause::PendingCompactionBytes,
        },
        3 => WriteStall::Stop {
            cause: StallCause::L0FileCount,
        },
        4 => WriteStall::Stop {
            cause: StallCause::PendingCompactionBytes,
        },
        _ => WriteStall::None,
    }
}

/// Describes `version` to the planner.
pub(crate) fn level_state(
    version: &Version,
    busy: &HashSet<u64>,
    num_levels: usize,
    oldest_snapshot: Option<u64>,
    ages: Option<Ages>,
) -> LevelState {
    let mut levels = vec![Vec::new(); num_levels];
    for (level, f) in version.all_files() {
        // A file's age only matters to periodic compaction and FIFO: its
        // table (open already, unless the table cache evicted it) is
        // only asked then. A table that cannot be opened has no known age.
        let created_at = match ages {
            Some(_) => f.table().map_or(0, |t| t.properties().creation_time),
            None => 0,
        };
        if let Some(l) = levels.get_mut(level) {
            l.push(FileInfo {
                id: f.meta.number,
                size: f.meta.file_size,
                smallest: user_key(&f.meta.smallest).to_vec(),
                largest: user_key(&f.meta.largest).to_vec(),
                smallest_seq: f.meta.smallest_seq,
                largest_seq: f.meta.largest_seq,
                num_entries: f.meta.num_entries,
                num_deletions: f.meta.num_deletions,
                being_compacted: busy.contains(&f.meta.number),
                created_at,
            });
        }
    }
    let ages = ages.unwrap_or_default();
    LevelState {
        levels,
        oldest_snapshot,
        now: ages.now,
        ttl: ages.ttl,
        blob_gc_below: 0,
    }
}

/// The time now and a tree's time to live, in seconds, for the planner's
/// decisions by age (periodic compaction, FIFO).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ages {
    now: u64,
    ttl: u64,
}

impl DbInner {
    fn oldest_snapshot(&self) -> Option<u64> {
        self.snapshots.lock().keys().next().copied()
    }

    /// The tree as the planner sees it now.
    pub(super) fn current_level_state(&self, tree: &Tree, busy: &HashSet<u64>) -> LevelState {
        let version = Arc::clone(&tree.sv.load().version);
        let opts = tree.opts();
        let cfg = &opts.compaction;
        let ages = (cfg.periodic_compaction_seconds > 0
            || cfg.style == lightning_compaction::CompactionStyle::Fifo)
            .then(|| Ages {
                now: self.opts.clock.now_millis() / 1000,
                // Rounded up: a file goes no earlier than its last value
                // expires.
                ttl: opts
                    .ttl
                    .map_or(0, |t| t.as_secs() + u64::from(t.subsec_nanos() > 0)),
            });
        let mut state = level_state(&version, busy, cfg.num_levels, self.oldest_snapshot(), ages);
        state.blob_gc_below = self.blob_gc_below(tree, &version, &opts);
        state
    }

    /// Forced blob garbage collection (`blob_garbage_collection_force_threshold`):
    /// the file-number mark of the current round (every table numbered
    /// below it is rewritten), or 0 when no round is due.
    ///
    /// A round is due while the garbage of the oldest
    /// `blob_garbage_collection_age_cutoff` of the blob files is at least
    /// the threshold of their bytes. It marks the tables that exist when
    /// it starts: a table written later references none of those files'
    /// values (a flush references only its memtable's live file, and a
    /// compaction relocates the values of the oldest files holding
    /// garbage), so once the marked tables are rewritten the files hold
    /// only garbage and go. A round that ends with the same oldest files
    /// still due is not repeated (something else keeps them; a later,
    /// different set of files starts a new round), so rounds cannot loop.
    fn blob_gc_below(&self, tree: &Tree, version: &Version, opts: &crate::options::Options) -> u64 {
        let threshold = opts.blob_garbage_collection_force_threshold;
        if !opts.enable_blob_files || !opts.enable_blob_garbage_collection || threshold >= 1.0 {
            return 0;
        }
        let files = version.blob_files();
        let n = (files.len() as f64 * opts.blob_garbage_collection_age_cutoff) as usize;
        let oldest = || files.iter().take(n).map(|(_, f)| f.meta);
        let total: u64 = oldest().map(|m| m.blob_bytes).sum();
        let garbage: u64 = oldest().map(|m| m.garbage_bytes).sum();
        let mut round = tree.blob_gc.lock();
        if total == 0 || (garbage as f64) < threshold * total as f64 {
            round.below = 0;
            return 0;
        }
        let newest_victim = files.keys().take(n).next_back().copied().unwrap_or(0);
        if round.below != 0 {
            if version
                .all_files()
                .any(|(_, f)| f.meta.number < round.below)
            {
                return round.below;
            }
            if round.victims == newest_victim {
                // A whole round left these files due: not again.
                return 0;
            }
        }
        round.below = self.next_file_number.load(Ordering::Acquire);
        round.victims = newest_victim;
        tracing::debug!(
            db = self.metrics.label.as_str(),
            keyspace = tree.name.as_str(),
            blob_files = n,
            garbage_bytes = garbage,
            blob_bytes = total,
            below = round.below,
            "forced blob garbage collection: rewriting the tables that may reference the oldest blob files"
        );
        round.below
    }

    /// Starts as many compaction jobs as the planner finds and the job
    /// limit allows.
    pub(crate) fn maybe_schedule_compaction(self: &Arc<Self>) {
        let Some(ws) = &self.write else {
            return;
        };
        if self.closed.load(Ordering::Acquire) || self.bg_error.set.load(Ordering::Acquire) {
            return;
        }
        // One background thread is the flush thread; the rest compact.
        let max_jobs = self
            .opts
            .compaction
            .max_background_jobs
            .saturating_sub(1)
            .max(1);
        let trees = self.all_trees();
        let mut st = self.compaction.state.lock();
        // Keyspaces take turns: each pass gives every keyspace with work
        // at most one job, so a busy keyspace cannot starve the others.
        loop {
            let mut started = false;
            for tree in &trees {
                if st.manual || st.running >= max_jobs {
                    return;
                }
                let topts = tree.opts();
                let cfg = &topts.compaction;
                if cfg.disable_auto_compactions || tree.is_dropped() {
                    continue;
                }
                let state = self.current_level_state(tree, &st.being_compacted);
                let Some(job) = planner::pick(&state, cfg) else {
                    continue;
                };
                for f in job.input_files() {
                    st.being_compacted.insert(f.id);
                }
                st.running += 1;
                st.next_job_id += 1;
                let id = st.next_job_id;
                let inner = Arc::clone(self);
                let tree = Arc::clone(tree);
                ws.pool.spawn(move || inner.compaction_job(&tree, id, job));
                started = true;
            }
            if !started {
                return;
            }
        }
    }

    /// Body of one scheduled job, on a pool thread.
    fn compaction_job(self: Arc<Self>, tree: &Tree, id: u64, job: CompactionJob) {
        let res = self.run_compaction(tree, id, &job);
        // A keyspace dropped while its job ran: whatever went wrong (its
        // files left the version), nothing of it is installed and its
        // outputs are orphans the next open deletes. Not an error.
        let res = res.or_else(|e| if tree.is_dropped() { Ok(()) } else { Err(e) });
        // The stall condition follows the new file set before the job
        // counts as done, so `wait_for_compactions` never returns to a
        // stale condition.
        self.after_version_change();
        {
            let mut st = self.compaction.state.lock();
            for f in job.input_files() {
                st.being_compacted.remove(&f.id);
            }
            st.running -= 1;
            if let Err(e) = res {
                drop(st);
                self.set_bg_error(e);
            }
        }
        self.compaction.done_cv.notify_all();
        self.maybe_schedule_compaction();
    }

    /// Runs `job` to completion and installs its result.
    pub(crate) fn run_compaction(&self, tree: &Tree, id: u64, job: &CompactionJob) -> Result<()> {
        let start = Instant::now();
        let topts = tree.opts();
        // A compaction filter must see every key a job moves: no file
        // changes level without being rewritten.
        let rewritten;
        let job = if job.trivial_move && topts.compaction_filter.is_some() {
            rewritten = CompactionJob {
                trivial_move: false,
                max_subcompactions: topts.compaction.max_subcompactions.max(1),
                ..job.clone()
            };
            &rewritten
        } else {
            job
        };
        let version = Arc::clone(&tree.sv.load().version);
        let mut edit = VersionEdit {
            keyspace: tree.id,
            ..VersionEdit::default()
        };
        for li in &job.inputs {
            for f in &li.files {
                edit.deleted_files.push((li.level as u32, f.id));
            }
        }
        let span = tracing::info_span!(
            "compaction",
            db = self.metrics.label.as_str(),
            keyspace = tree.name.as_str(),
            job = id,
            style = ?topts.compaction.style,
            reason = ?job.reason,
            input_levels = %input_levels(job),
            output_level = job.output_level,
            input_files = job.input_files().count(),
            input_bytes = job.input_bytes(),
            trivial_move = job.trivial_move,
        );
        let _enter = span.enter();
        tracing::debug!(
            files = %job
                .input_files()
                .map(|f| f.id.to_string())
                .collect::<Vec<_>>()
                .join(","),
            "compaction started"
        );
        let (read_by_level, written, outputs_count, dropped, entries) = if job.deletes_only() {
            // FIFO: the files go whole, unread.
            (Vec::new(), 0, 0, (0, 0, 0), (0, 0))
        } else if job.trivial_move {
            for li in &job.inputs {
                for f in &li.files {
                    let tf = find_file(&version, li.level, f.id)?;
                    edit.new_files
                        .push((job.output_level as u32, tf.meta.clone()));
                }
            }
            (Vec::new(), 0, edit.new_files.len(), (0, 0, 0), (0, 0))
        } else {
            let blobs = JobBlobs::new(&version, &topts);
            let read_refs = blobs.as_ref().map(|_| Arc::new(BlobTally::default()));
            let snapshots: Vec<u64> = self.snapshots.lock().keys().copied().collect();
            let inputs = EngineInputs::new(&version, job, read_refs.clone(), &snapshots)?;
            let skipped_entries = inputs.skipped_entries;
            if !inputs.skipped.is_empty() {
                tracing::debug!(
                    files = ?inputs.skipped,
                    "input files entirely deleted by range tombstones: not read"
                );
            }
            let sink = EngineSink {
                inner: self,
                opts: &topts,
                level: job.output_level,
                blobs: blobs.as_ref(),
            };
            let hooks = UserHooks {
                merge: crate::merge_operator::compaction_merge(&topts.merge_operator),
                filter: crate::compaction_filter::job_filter(
                    &topts,
                    self.opts.clock.now_millis(),
                    job.output_level,
                    &version,
                ),
            };
            let pool = &self.writable()?.pool;
            let result = run_job(job, &inputs, &sink, &snapshots, hooks, pool)?;
            if !result.outputs.is_empty() {
                self.fs.sync_dir(&self.dir)?;
            }
            let written: u64 = result
                .outputs
                .iter()
                .map(|o| o.table.file_size + o.blob_files.iter().map(|b| b.file_size).sum::<u64>())
                .sum();
            let n = result.outputs.len();
            for o in result.outputs {
                edit.new_files.push((job.output_level as u32, o.table));
                edit.new_blob_files.extend(o.blob_files);
            }
            if let (Some(read), Some(b)) = (&read_refs, &blobs) {
                edit.blob_garbage = blob_garbage(read, &b.kept)?
                    .into_iter()
                    .map(BlobGarbage::from)
                    .collect();
                let moved = b.relocated.load(Ordering::Relaxed);
                if moved > 0 {
                    self.io.blob_gc_runs.fetch_add(1, Ordering::Relaxed);
                    self.io
                        .blob_gc_relocated
                        .fetch_add(moved, Ordering::Relaxed);
                }
            }
            let blob_bytes: u64 = edit.new_blob_files.iter().map(|b| b.file_size).sum();
            self.io
                .blob_bytes_written
                .fetch_add(blob_bytes, Ordering::Relaxed);
            let read: Vec<(usize, u64)> = job
                .inputs
                .iter()
                .map(|li| (li.level, li.files.iter().map(|f| f.size).sum()))
                .collect();
            let s = &result.stats;
            (
                read,
                written,
                n,
                (
                    s.dropped_versions + s.dropped_by_range_tombstones,
                    s.dropped_tombstones,
                    s.filtered_entries,
                ),
                (
                    s.input_entries,
                    s.dropped_versions
                        + s.dropped_tombstones
                        + s.dropped_by_range_tombstones
                        + skipped_entries,
                ),
            )
        };
        // A filter's decisions and FIFO's whole-file deletions change what
        // keys read with no write, so with no sequence number the row
        // cache could compare its entries to: the new version lands as a
        // change of the cache (`RowCache::begin_change`), which forgets
        // every entry.
        let change = self
            .row_cache_of(tree)
            .filter(|_| job.deletes_only() || dropped.2 > 0)
            .map(crate::row_cache::RowCache::begin_change);
        #[cfg(test)]
        if change.is_some() {
            super::tests_hooks::reached(super::tests_hooks::Point::RowCacheChangeBegun);
        }
        let installed = self.install_edit(tree, edit);
        #[cfg(test)]
        if change.is_some() {
            super::tests_hooks::reached(super::tests_hooks::Point::RowCacheChangeInstalled);
        }
        drop(change);
        installed?;
        let elapsed = start.elapsed();
        let micros = elapsed.as_micros() as u64;
        self.metrics.bg.compaction_duration.record(elapsed);
        {
            let mut stats = tree.stats.lock();
            if job.deletes_only() {
                // Nothing read or written.
            } else if job.trivial_move {
                stats.record_trivial_move(job.output_level, job.input_bytes());
            } else {
                stats.record_compaction(job.output_level, &read_by_level, written, micros);
                stats.record_entries(job.output_level, entries.0, entries.1);
            }
        }
        db_event!(
            self.metrics,
            INFO,
            "compaction finished",
            keyspace = tree.name.as_str(),
            job = id,
            reason = format!("{:?}", job.reason),
            input_levels = input_levels(job),
            output_level = job.output_level,
            input_files = job.input_files().count(),
            input_bytes = job.input_bytes(),
            output_files = outputs_count,
            output_bytes = written,
            dropped_versions = dropped.0,
            dropped_tombstones = dropped.1,
            filtered_entries = dropped.2,
            trivial_move = job.trivial_move,
            duration_ms = micros / 1000,
        );
        Ok(())
    }

    /// Records `edit` (of `tree`'s keyspace) in the manifest and
    /// publishes the new version.
    /// Nothing is installed for a keyspace dropped meanwhile (the job's
    /// outputs are orphans the next open deletes).
    pub(crate) fn install_edit(&self, tree: &Tree, edit: VersionEdit) -> Result<()> {
        self.install_edit_at(tree, edit, self.visible_seq.load(Ordering::Acquire))
    }

    /// [`install_edit`](Self::install_edit) recording `last_sequence` as
    /// the last sequence number (an ingestion's, not yet published).
    pub(crate) fn install_edit_at(
        &self,
        tree: &Tree,
        edit: VersionEdit,
        last_sequence: u64,
    ) -> Result<()> {
        debug_assert_eq!(edit.keyspace, tree.id);
        let mut versions = self.versions.lock();
        if tree.is_dropped() {
            return Ok(());
        }
        let version = versions.log_and_apply(
            edit,
            &self.next_file_number,
            last_sequence,
            tree.opts().compaction.num_levels,
        )?;
        let cur = tree.sv.load_full();
        tree.sv.store(Arc::new(SuperVersion {
            mem: Arc::clone(&cur.mem),
            imms: cur.imms.clone(),
            version,
        }));
        Ok(())
    }

    /// After the file set changed: recompute the write-stall condition and
    /// wake writers that wait for it.
    /// The condition is the worst of every keyspace's: one keyspace
    /// behind on compaction slows every writer, as in RocksDB.
    pub(crate) fn after_version_change(&self) {
        let mut cond = WriteStall::None;
        for tree in self.all_trees() {
            let topts = tree.opts();
            let cfg = &topts.compaction;
            // As in RocksDB, without automatic compactions nothing would
            // ever lift a stall, so stalls are off too (bulk-load mode).
            if cfg.disable_auto_compactions || tree.is_dropped() {
                continue;
            }
            let state = self.current_level_state(&tree, &HashSet::new());
            let pending = planner::pending_compaction_bytes(&state, cfg);
            let c = planner::write_stall(&state, cfg, pending);
            if stall_rank(c) > stall_rank(cond) {
                cond = c;
            }
        }
        let code = encode_stall(cond);
        let previous = self.compaction.stall_condition.swap(code, Ordering::AcqRel);
        if previous != code {
            self.log_stall_condition(decode_stall(previous), cond);
        }
        self.wake_stalled_writers();
    }

    /// Compacts every file overlapping `[lo, hi]` down to the last level.
    pub(crate) fn compact_range(
        self: &Arc<Self>,
        tree: &Tree,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> Result<()> {
        self.flush_and_wait()?;
        {
            let mut st = self.compaction.state.lock();
            while st.manual {
                self.compaction.done_cv.wait(&mut st);
            }
            st.manual = true;
            while st.running > 0 {
                self.compaction.done_cv.wait(&mut st);
            }
        }
        let res = (|| {
            let topts = tree.opts();
            let cfg = &topts.compaction;
            // The planner's ranges are half-open; an inclusive end is
            // widened to the next key so it is covered.
            let range = KeyRange {
                start: match lo {
                    Bound::Included(k) | Bound::Excluded(k) => Some(k),
                    Bound::Unbounded => None,
                },
                end: match hi {
                    Bound::Included(mut k) => {
                        k.push(0);
                        Some(k)
                    }
                    Bound::Excluded(k) => Some(k),
                    Bound::Unbounded => None,
                },
            };
            let mut from_level = 0;
            // With a compaction filter or a TTL, the deepest level is
            // rewritten in place at the end unless a job of this call just
            // wrote it (RocksDB's `kIfHaveCompactionFilter`), so expired
            // and filtered keys go.
            let mut bottom_pass = topts.compaction_filter.is_some() || topts.ttl.is_some();
            loop {
                if let Some(e) = self.bg_error() {
                    return Err(e);
                }
                let state = self.current_level_state(tree, &HashSet::new());
                let job = match planner::manual(&state, cfg, &range, from_level) {
                    // No other job runs while `manual` is set.
                    ManualStep::Done if bottom_pass => {
                        bottom_pass = false;
                        match planner::manual_bottommost(&state, cfg, &range) {
                            Some(job) if job.output_level != from_level => job,
                            _ => return Ok(()),
                        }
                    }
                    ManualStep::Done | ManualStep::Busy => return Ok(()),
                    ManualStep::Job(job) => job,
                };
                let id = {
                    let mut st = self.compaction.state.lock();
                    st.next_job_id += 1;
                    st.next_job_id
                };
                // As for automatic compactions: after a failed fsync of an
                // output or of the manifest their state on disk is
                // unknown, so the database stops accepting writes.
                match self.run_compaction(tree, id, &job) {
                    Ok(()) => {}
                    Err(_) if tree.is_dropped() => {
                        return Err(Error::KeyspaceDropped(tree.name.clone()))
                    }
                    Err(e) => return Err(Error::Background(self.set_bg_error(e))),
                }
                self.after_version_change();
                from_level = job.output_level;
            }
        })();
        {
            let mut st = self.compaction.state.lock();
            st.manual = false;
        }
        self.compaction.done_cv.notify_all();
        self.maybe_schedule_compaction();
        res
    }

    /// Waits until no compaction runs and the planner finds nothing to do
    /// (or automatic compaction is off), and no memtable waits for flush.
    pub(crate) fn wait_for_compactions(self: &Arc<Self>) -> Result<()> {
        loop {
            if let Some(e) = self.bg_error() {
                return Err(e);
            }
            self.check_open()?;
            self.maybe_schedule_compaction();
            let mut st = self.compaction.state.lock();
            let flushed = self.all_trees().iter().all(|t| t.sv.load().imms.is_empty());
            if st.running == 0 && !st.manual && flushed {
                return Ok(());
            }
            self.compaction
                .done_cv
                .wait_for(&mut st, std::time::Duration::from_millis(50));
        }
    }

    /// Reports a change of the write-stall condition (at flush and
    /// compaction granularity, never per write).
    fn log_stall_condition(&self, previous: WriteStall, now: WriteStall) {
        let name = |s: WriteStall| match Stall::from_condition(s) {
            None => "none".to_string(),
            Some(st) => format!("{}:{}", st.kind(), st.cause()),
        };
        db_event!(
            self.metrics,
            INFO,
            "write stall condition changed",
            condition = name(now),
            previous = name(previous),
            level0_files = self
                .all_trees()
                .iter()
                .map(|t| t.sv.load().version.files(0).len())
                .max()
                .unwrap_or(0),
        );
    }

    /// Every keyspace's statistics summed (see
    /// [`CompactionStats::absorb`]).
    pub(crate) fn total_compaction_stats(&self) -> CompactionStats {
        let mut total: Option<CompactionStats> = None;
        for t in self.all_trees() {
            let s = self.compaction_stats(&t);
            match &mut total {
                None => total = Some(s),
                Some(acc) => acc.absorb(&s),
            }
        }
        total.unwrap_or_default()
    }

    /// `tree`'s statistics with the current level sizes and scores
    /// filled in (the byte and stall totals are the database's).
    pub(crate) fn compaction_stats(&self, tree: &Tree) -> CompactionStats {
        let st = self.compaction.state.lock();
        let state = self.current_level_state(tree, &st.being_compacted);
        drop(st);
        let mut stats = tree.stats.lock().clone();
        stats.refresh(&state, &tree.opts().compaction);
        stats.user_bytes_written = self.io.user_bytes.load(Ordering::Relaxed);
        stats.wal_bytes = self.io.wal_bytes.load(Ordering::Relaxed);
        let st = self.stall_stats();
        stats.stall_micros = StallMicros {
            l0_slowdown: st.level0_slowdown.micros,
            l0_stop: st.level0_stop.micros,
            pending_slowdown: st.pending_compaction_slowdown.micros,
            pending_stop: st.pending_compaction_stop.micros,
        };
        stats
    }
}

/// The input levels of `job`, as `0,1`.
fn input_levels(job: &CompactionJob) -> String {
    job.inputs
        .iter()
        .map(|li| li.level.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn find_file(version: &Version, level: usize, id: u64) -> Result<Arc<TableFile>> {
    version
        .files(level)
        .iter()
        .find(|f| f.meta.number == id)
        .cloned()
        .ok_or_else(|| {
            Error::Internal(format!(
                "compaction input file {id} is not in level {level} of the current version"
            ))
        })
}

/// The input files of a job, opened from the version they were picked in.
struct EngineInputs {
    /// Per input level: level-0 files one by one, deeper levels as one run.
    runs: Vec<(usize, Vec<Arc<TableFile>>)>,
    /// Counts the blob references the inputs hold (when the version has
    /// blob files).
    tally: Option<Arc<BlobTally>>,
    /// The range tombstones of every input file.
    tombstones: FragmentedTombstones,
    /// Input files left out of the runs: every version in them is deleted
    /// by a range tombstone of the job in its own snapshot stripe, so the
    /// merge would drop all of it (they are still removed by the job).
    skipped: Vec<u64>,
    /// Entries of the skipped files (counted as dropped, not as read).
    skipped_entries: u64,
}

impl EngineInputs {
    fn new(
        version: &Version,
        job: &CompactionJob,
        tally: Option<Arc<BlobTally>>,
        snapshots: &[u64],
    ) -> Result<Self> {
        let mut all = Vec::new();
        for li in &job.inputs {
            for f in &li.files {
                all.push(find_file(version, li.level, f.id)?);
            }
        }
        let tombstones = FragmentedTombstones::merge(
            all.iter()
                .filter_map(|f| f.range_tombstones())
                .map(|t| t.as_ref()),
        );
        // A file whose blob references were not read would leave its
        // garbage uncounted: only without blob files.
        let mut snaps = snapshots.to_vec();
        snaps.sort_unstable();
        let can_skip = !tombstones.is_empty() && version.blob_files().is_empty();
        let skipped_files: Vec<&Arc<TableFile>> = all
            .iter()
            .filter(|f| can_skip && entirely_deleted(&tombstones, f, &snaps))
            .collect();
        let skipped_entries = skipped_files.iter().map(|f| f.meta.num_entries).sum();
        let skipped: Vec<u64> = skipped_files.iter().map(|f| f.meta.number).collect();
        let mut runs = Vec::new();
        for li in &job.inputs {
            let mut files = Vec::with_capacity(li.files.len());
            for f in &li.files {
                if !skipped.contains(&f.id) {
                    files.push(find_file(version, li.level, f.id)?);
                }
            }
            if files.is_empty() {
                continue;
            }
            if li.level == 0 {
                for f in files {
                    runs.push((0, vec![f]));
                }
            } else {
                files.sort_by(|a, b| {
                    crate::key::compare_internal(&a.meta.smallest, &b.meta.smallest)
                });
                runs.push((li.level, files));
            }
        }
        Ok(EngineInputs {
            runs,
            tally,
            tombstones,
            skipped,
            skipped_entries,
        })
    }
}

/// True when every version `f` holds is deleted by one of `tombstones` in
/// its own snapshot stripe.
fn entirely_deleted(tombstones: &FragmentedTombstones, f: &TableFile, snapshots: &[u64]) -> bool {
    let m = &f.meta;
    tombstones.deletes_all(
        user_key(&m.smallest),
        user_key(&m.largest),
        !is_range_end_bound(&m.largest),
        m.smallest_seq,
        m.largest_seq,
        snapshots,
    )
}

impl JobInputs for EngineInputs {
    type Error = Error;
    type Cursor = TableCursor;

    fn range_tombstones(&self) -> Result<FragmentedTombstones> {
        Ok(self.tombstones.clone())
    }

    fn open(&self, range: &KeyRange) -> Result<Vec<TableCursor>> {
        let mut out = Vec::with_capacity(self.runs.len());
        for (_, files) in &self.runs {
            // Inputs are read once, forwards: release pages behind.
            let mut it: Box<dyn InternalIterator> = if files.len() == 1 {
                crate::iter::level::table_iter(&files[0], true)
            } else {
                Box::new(LevelIterator::new_releasing(files.clone()))
            };
            match &range.start {
                Some(s) => it.seek(&encode_internal_key(s, MAX_SEQUENCE, ValueKind::FOR_SEEK)),
                None => it.seek_to_first(),
            }
            out.push(TableCursor::bounded(it, range.end.clone())?.with_tally(self.tally.clone()));
        }
        Ok(out)
    }
}

/// Writes compaction outputs as SST files at one level.
struct EngineSink<'a> {
    inner: &'a DbInner,
    /// The options of the job's keyspace.
    opts: &'a crate::options::Options,
    level: usize,
    /// The blob files of the job's version and what to do with them.
    blobs: Option<&'a JobBlobs>,
}

/// The smallest fraction of garbage that makes garbage collection move a
/// blob file's live values (unless `blob_garbage_collection_force_threshold`
/// is lower). Moving a file's live values costs their bytes and reclaims
/// its garbage: under random overwrites, collecting files that are half
/// garbage costs about one byte written per byte reclaimed, and measured
/// (10K x 100 KB, 3 overwrite rounds) gave write amplification 1.41 and
/// space amplification 1.51, against 1.54 and 1.43 collecting any file
/// with garbage (RocksDB's rule; fjall's default bar is a quarter).
const GC_MIN_GARBAGE: f64 = 0.5;

/// A job's view of the blob files: the version whose blob files its
/// inputs reference, the references its outputs carry over, and the old
/// files whose values it rewrites (garbage collection).
struct JobBlobs {
    version: Arc<Version>,
    /// References carried over unchanged into the outputs.
    kept: BlobTally,
    /// Blob files whose live values move to new blob files.
    collect: HashSet<u64>,
    /// Bytes of values moved so far.
    relocated: AtomicU64,
}

impl JobBlobs {
    /// The blob side of a job on `version`: of the oldest
    /// `blob_garbage_collection_age_cutoff` of its blob files, those that
    /// are at least [`GC_MIN_GARBAGE`] garbage (or
    /// `blob_garbage_collection_force_threshold`, when lower) are
    /// collected when garbage collection is on. `None` when the version
    /// has no blob file and blob files are off.
    fn new(version: &Arc<Version>, opts: &crate::options::Options) -> Option<JobBlobs> {
        let files = version.blob_files();
        if files.is_empty() && !opts.enable_blob_files {
            return None;
        }
        let collect = if opts.enable_blob_files && opts.enable_blob_garbage_collection {
            let n = (files.len() as f64 * opts.blob_garbage_collection_age_cutoff) as usize;
            let bar = opts
                .blob_garbage_collection_force_threshold
                .min(GC_MIN_GARBAGE);
            files
                .iter()
                .take(n)
                .filter(|(_, f)| {
                    f.meta.garbage_count > 0
                        && f.meta.garbage_bytes as f64 >= bar * f.meta.blob_bytes as f64
                })
                .map(|(n, _)| *n)
                .collect()
        } else {
            HashSet::new()
        };
        Some(JobBlobs {
            version: Arc::clone(version),
            kept: BlobTally::default(),
            collect,
            relocated: AtomicU64::new(0),
        })
    }
}

/// One output file being written, and the blob files its separated and
/// relocated values go to.
pub(crate) struct OutputWriter<'a> {
    number: u64,
    builder: TableBuilder,
    key_buf: Vec<u8>,
    job: Option<&'a JobBlobs>,
    blob_out: Option<BlobOutput<'a>>,
}

impl RunWriter for OutputWriter<'_> {
    type Error = Error;

    fn add(&mut self, e: EntryRef<'_>) -> Result<()> {
        self.key_buf.clear();
        let kind = value_kind(e.kind);
        if let Some(job) = self.job {
            match kind {
                ValueKind::BlobIndex => {
                    let r = decode_ref(e.value)?;
                    let out = self
                        .blob_out
                        .as_mut()
                        .filter(|_| job.collect.contains(&r.file_number));
                    let Some(out) = out else {
                        job.kept.note(e.user_key.len(), e.value)?;
                        append_internal_key(&mut self.key_buf, e.user_key, e.seq, kind);
                        return self.builder.add(&self.key_buf, e.value);
                    };
                    // Garbage collection: the value moves to a new blob
                    // file; the old record is not kept, so it becomes
                    // garbage.
                    let value = job.version.read_blob(e.value, None)?;
                    job.relocated
                        .fetch_add(value.len() as u64, Ordering::Relaxed);
                    let new_ref = out.write(e.user_key, &value)?;
                    append_internal_key(&mut self.key_buf, e.user_key, e.seq, kind);
                    return self.builder.add(&self.key_buf, new_ref);
                }
                ValueKind::Value => {
                    if let Some(out) = self
                        .blob_out
                        .as_mut()
                        .filter(|o| o.separates(e.value.len()))
                    {
                        let r = out.write(e.user_key, e.value)?;
                        let k = ValueKind::BlobIndex;
                        append_internal_key(&mut self.key_buf, e.user_key, e.seq, k);
                        return self.builder.add(&self.key_buf, r);
                    }
                }
                _ => {}
            }
        }
        append_internal_key(&mut self.key_buf, e.user_key, e.seq, kind);
        self.builder.add(&self.key_buf, e.value)
    }

    fn estimated_size(&self) -> u64 {
        self.builder.estimated_file_size()
    }

    fn add_range_tombstones(&mut self, tombstones: &FragmentedTombstones) -> Result<()> {
        self.builder.add_range_tombstones(tombstones);
        Ok(())
    }
}

/// A finished compaction output: the SST and the blob files written with
/// it.
pub(crate) struct CompactionOutput {
    table: FileMetaData,
    blob_files: Vec<BlobFileMeta>,
}

impl<'a> RunSink for EngineSink<'a> {
    type Error = Error;
    type Writer = OutputWriter<'a>;
    type Output = CompactionOutput;

    fn create(&self) -> Result<OutputWriter<'a>> {
        let inner = self.inner;
        let number = inner.next_file_number.fetch_add(1, Ordering::AcqRel);
        let path = table_file_name(&inner.dir, number);
        let file = inner.fs.create(&path)?;
        Ok(OutputWriter {
            number,
            builder: TableBuilder::for_tree(file, path, self.opts, self.level),
            key_buf: Vec::new(),
            job: self.blobs,
            blob_out: BlobOutput::new(
                inner.fs.as_ref(),
                &inner.dir,
                &inner.next_file_number,
                self.opts,
            ),
        })
    }

    fn finish(&self, w: OutputWriter<'a>) -> Result<CompactionOutput> {
        let (props, file_size) = w.builder.finish()?;
        let blob_files = match w.blob_out {
            Some(b) => b.finish()?,
            None => Vec::new(),
        };
        Ok(CompactionOutput {
            table: file_meta(w.number, file_size, &props),
            blob_files: blob_files.into_iter().map(BlobFileMeta::from).collect(),
        })
    }
}
