//! Ingestion of SST files made by [`crate::SstWriter`] (`Db::ingest`,
//! RocksDB's `IngestExternalFile`). Design: docs/ingest-design.md.
//!
//! 1. Each file is opened and verified (every block's checksum; files on
//!    parallel threads), must hold
//!    only sequence number 0 (an `SstWriter` file) and no range
//!    tombstone, and the files must not overlap one another. They are
//!    linked (or copied) into the database under new file numbers.
//! 2. The rest runs as the write queue's leader, alone, once every
//!    earlier write is visible ([`DbInner::run_as_leader`]), with the next
//!    sequence number `S`:
//!    - if a memtable of the keyspace holds a key in a file's range, it
//!      must be flushed first (point reads look in memtables before files,
//!      so a file must never be newer than a memtable): the task stops,
//!      the memtables are flushed, and it runs again;
//!    - with no snapshot, no range tombstone and no file of the keyspace
//!      overlapping the files, they go to the last level as they are,
//!      entries at sequence 0 (the bulk-load case: nothing can tell them
//!      from data written long ago);
//!    - otherwise each is rewritten with every entry at `S` and placed
//!      just above the first level holding an overlapping file (level 0
//!      when that is level 0), as the newest data;
//!    - one manifest edit installs them all (all or nothing) with
//!      `last_sequence = S`; the row cache forgets everything (its range
//!      stamp is raised to `S`), and `S` is published.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::run_io::file_meta;
use super::tree::Tree;
use super::DbInner;
use crate::error::{escape_key, Error, Result};
use crate::filename::table_file_name;
use crate::iter::InternalIterator;
use crate::key::{encode_internal_key, parse_internal_key, user_key, ValueKind, MAX_SEQUENCE};
use crate::sst::{Table, TableBuilder, TableProperties};
use crate::version::edit::VersionEdit;

/// How [`crate::Db::ingest`] takes its files.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct IngestOptions {
    /// Link the files into the database and remove their original names
    /// (RocksDB's `move_files`); by default they are copied and left as
    /// they are. Either way the caller must not change them meanwhile.
    pub move_files: bool,
}

impl IngestOptions {
    /// Sets [`move_files`](Self::move_files).
    #[must_use]
    pub fn move_files(mut self, on: bool) -> Self {
        self.move_files = on;
        self
    }
}

/// One file taken in: its number in the database and what it holds.
struct Prepared {
    number: u64,
    props: TableProperties,
    size: u64,
    smallest: Vec<u8>,
    largest: Vec<u8>,
}

/// Memtable flushes the task asks for before giving up.
const MAX_FLUSH_ROUNDS: usize = 5;

impl DbInner {
    /// Ingests `files` into `tree` (see the module documentation).
    pub(crate) fn ingest(
        &self,
        tree: &Arc<Tree>,
        files: &[PathBuf],
        opts: &IngestOptions,
    ) -> Result<()> {
        self.writable()?;
        if files.is_empty() {
            return Ok(());
        }
        let plan: Arc<parking_lot::Mutex<Vec<Prepared>>> = Arc::default();
        let result = (|| {
            // Every file taken in goes into `plan` at once, so a failure
            // of another removes it again (below).
            let first_error = self.take_in_all(files, opts, &plan);
            if let Some(e) = first_error {
                return Err(e);
            }
            {
                let mut prepared = plan.lock();
                prepared.sort_by(|a, b| a.smallest.cmp(&b.smallest));
                for w in prepared.windows(2) {
                    if let [a, b] = w {
                        if b.smallest <= a.largest {
                            return Err(Error::InvalidArgument(format!(
                                "ingested files overlap: one ends at key {}, another starts at {}",
                                escape_key(&a.largest),
                                escape_key(&b.smallest)
                            )));
                        }
                    }
                }
            }
            for _ in 0..MAX_FLUSH_ROUNDS {
                let (t, p) = (Arc::clone(tree), Arc::clone(&plan));
                let installed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let done = Arc::clone(&installed);
                self.run_as_leader(Box::new(move |db: &DbInner, seq| {
                    let r = db.install_ingested(&t, &mut p.lock(), seq);
                    done.store(matches!(r, Ok(true)), Ordering::Release);
                    r
                }))?;
                if installed.load(Ordering::Acquire) {
                    return Ok(());
                }
                // A memtable holds keys of the range: flush, try again.
                self.flush_and_wait()?;
            }
            Err(Error::InvalidArgument(format!(
                "ingest into keyspace `{}`: writes kept landing in the ingested key range \
                 through {MAX_FLUSH_ROUNDS} flushes",
                tree.name
            )))
        })();
        if result.is_err() {
            // What was taken in and not installed goes.
            for p in plan.lock().iter() {
                let _ = self.fs.remove_file(&table_file_name(&self.dir, p.number));
            }
            return result;
        }
        if opts.move_files {
            for path in files {
                self.fs.remove_file(path)?;
            }
        }
        self.after_version_change();
        Ok(())
    }

    /// [`take_in`](Self::take_in) for every file, on as many threads as
    /// there are CPUs (verifying a file reads every block: 10M pairs in
    /// 20 files took 0.53 s on one thread). Each file taken in is pushed
    /// to `plan`; returns the first error in `files`' order, if any.
    fn take_in_all(
        &self,
        files: &[PathBuf],
        opts: &IngestOptions,
        plan: &parking_lot::Mutex<Vec<Prepared>>,
    ) -> Option<Error> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let errors = parking_lot::Mutex::new(Vec::new());
        let work = || loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = files.get(i) else { break };
            match self.take_in(path, opts) {
                Ok(p) => plan.lock().push(p),
                Err(e) => errors.lock().push((i, e)),
            }
        };
        if threads <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(work);
                }
                work();
            });
        }
        let mut errors = errors.into_inner();
        errors.sort_by_key(|(i, _)| *i);
        errors.into_iter().next().map(|(_, e)| e)
    }

    /// Checks `path` and links (or copies) it into the database.
    fn take_in(&self, path: &Path, opts: &IngestOptions) -> Result<Prepared> {
        let table = Table::open(self.fs.as_ref(), path)?;
        let outcome = table.verify_all(1);
        if let Some(p) = outcome.problems.into_iter().next() {
            return Err(p.error);
        }
        let props = table.properties().clone();
        if props.largest_seq != 0 || props.num_range_deletions > 0 {
            return Err(Error::InvalidArgument(format!(
                "{} was not written by SstWriter (its entries carry sequence numbers or range \
                 deletions); only SstWriter files can be ingested",
                path.display()
            )));
        }
        if props.num_entries == 0 {
            return Err(Error::InvalidArgument(format!(
                "{} holds no entry",
                path.display()
            )));
        }
        let (smallest, largest) = (
            user_key(&props.smallest_key).to_vec(),
            user_key(&props.largest_key).to_vec(),
        );
        drop(table);
        let number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let to = table_file_name(&self.dir, number);
        if opts.move_files {
            self.fs.link(path, &to)?;
        } else {
            crate::fs::copy_file(self.fs.as_ref(), path, &to)?;
        }
        let size = self.fs.file_size(&to)?;
        Ok(Prepared {
            number,
            props,
            size,
            smallest,
            largest,
        })
    }

    /// The leader's part: `Ok(true)` once installed and `seq` published
    /// (`files` is then emptied), `Ok(false)` when the memtables must be
    /// flushed first (nothing done).
    fn install_ingested(&self, tree: &Tree, files: &mut Vec<Prepared>, seq: u64) -> Result<bool> {
        if tree.is_dropped() {
            return Err(Error::KeyspaceDropped(tree.name.clone()));
        }
        let sv = tree.sv.load_full();
        for m in std::iter::once(&sv.mem).chain(&sv.imms) {
            for f in files.iter() {
                let mut it = m.iter();
                it.seek(&encode_internal_key(
                    &f.smallest,
                    MAX_SEQUENCE,
                    ValueKind::FOR_SEEK,
                ));
                if it.valid()
                    && parse_internal_key(it.key())
                        .is_some_and(|p| p.user_key <= f.largest.as_slice())
                {
                    return Ok(false);
                }
            }
        }
        let version = &sv.version;
        let overlaps = |level: usize| {
            version.files(level).iter().any(|t| {
                files.iter().any(|f| {
                    user_key(&t.meta.smallest) <= f.largest.as_slice()
                        && f.smallest.as_slice() <= user_key(&t.meta.largest)
                })
            })
        };
        let last = version.num_levels() - 1;
        let first_overlap = (0..=last).find(|&l| overlaps(l));
        // Held until `seq` is published: no snapshot is taken between the
        // check and the install.
        let snapshots = self.snapshots.lock();
        let untouched =
            first_overlap.is_none() && snapshots.is_empty() && sv.range_tombstone_sets().is_empty();
        let level = match first_overlap {
            None => last,
            Some(0) => 0,
            Some(l) => l - 1,
        };
        let topts = tree.opts();
        let mut edit = VersionEdit {
            keyspace: tree.id,
            ..VersionEdit::default()
        };
        let mut rewritten: Vec<u64> = Vec::new();
        let install = (|| {
            for f in files.iter() {
                if untouched {
                    edit.new_files
                        .push((level as u32, file_meta(f.number, f.size, &f.props)));
                } else {
                    let (number, props, size) = self.rewrite_at(f, seq, &topts, level)?;
                    rewritten.push(number);
                    edit.new_files
                        .push((level as u32, file_meta(number, size, &props)));
                }
            }
            self.fs.sync_dir(&self.dir)?;
            // The row cache first: a file that goes in untouched is read
            // (at sequence number 0) from the install on, before `seq` is
            // published, and a hit must not serve an older value then.
            if let Some(rc) = &self.row_cache {
                rc.note_range_write(seq);
            }
            // A failed manifest write leaves the file set unknown: fail
            // stop, as after a compaction's.
            self.install_edit_at(tree, edit, seq)
                .map_err(|e| Error::Background(self.set_bg_error(e)))
        })();
        if let Err(e) = install {
            for n in rewritten {
                let _ = self.fs.remove_file(&table_file_name(&self.dir, n));
            }
            return Err(e);
        }
        if !untouched {
            // The originals were rewritten; their links go.
            for f in files.iter() {
                let _ = self.fs.remove_file(&table_file_name(&self.dir, f.number));
            }
        }
        files.clear();
        #[cfg(test)]
        super::tests_hooks::reached(super::tests_hooks::Point::IngestInstalled);
        self.visible_seq.store(seq, Ordering::Release);
        drop(snapshots);
        tracing::info!(
            db = self.metrics.label.as_str(),
            keyspace = tree.name.as_str(),
            level,
            seq,
            rewritten = !untouched,
            "ingested files"
        );
        Ok(true)
    }

    /// Rewrites ingested file `f` with every entry at `seq`, for `level`.
    fn rewrite_at(
        &self,
        f: &Prepared,
        seq: u64,
        topts: &crate::Options,
        level: usize,
    ) -> Result<(u64, TableProperties, u64)> {
        let src = Arc::new(Table::open(
            self.fs.as_ref(),
            &table_file_name(&self.dir, f.number),
        )?);
        let number = self.next_file_number.fetch_add(1, Ordering::AcqRel);
        let path = table_file_name(&self.dir, number);
        let file = self.fs.create(&path)?;
        let mut b = TableBuilder::for_tree(file, path, topts, level);
        let mut it = src.iter();
        it.seek_to_first();
        let mut key = Vec::new();
        while it.valid() {
            let p = parse_internal_key(it.key())
                .ok_or_else(|| Error::Internal("malformed key in an ingested file".into()))?;
            key.clear();
            crate::key::append_internal_key(&mut key, p.user_key, seq, p.kind);
            b.add(&key, it.value())?;
            it.next();
        }
        it.status()?;
        let (props, size) = b.finish()?;
        Ok((number, props, size))
    }
}
