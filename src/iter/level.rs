//! A cursor over one sorted level: files that do not overlap, in key
//! order, read one at a time.
//!
//! Only the file under the cursor has an open table iterator; moving past
//! its end opens the next (or previous) file. This keeps a scan over a deep
//! level as cheap as a scan over one file.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::InternalIterator;
use crate::error::Result;
use crate::key::{compare_internal, user_key};
use crate::version::version::{TableFile, Version};

/// Adds to `out` an iterator for every level-0 file of `v` and one
/// concatenating iterator for each deeper non-empty level.
pub(crate) fn add_version_iterators(v: &Arc<Version>, out: &mut Vec<Box<dyn InternalIterator>>) {
    for f in v.files(0) {
        out.push(table_iter(f, false));
    }
    for level in 1..v.num_levels() {
        if !v.files(level).is_empty() {
            out.push(Box::new(LevelIterator::over_level(Arc::clone(v), level)));
        }
    }
}

/// [`add_version_iterators`] for a scan of keys that all have prefix
/// `prefix` under the extractor named `extractor`: files whose filter
/// rules the prefix out, or whose key range misses it, are left out.
pub(crate) fn add_prefix_iterators(
    v: &Arc<Version>,
    extractor: &str,
    prefix: &[u8],
    out: &mut Vec<Box<dyn InternalIterator>>,
) {
    let end = super::db_iter::prefix_successor(prefix);
    let wanted = |f: &Arc<TableFile>| {
        let (lo, hi) = (user_key(&f.meta.smallest), user_key(&f.meta.largest));
        let overlaps = hi >= prefix && end.as_deref().is_none_or(|e| lo < e);
        // A table that cannot be opened is kept: its cursor reports why.
        overlaps
            && f.table()
                .map_or(true, |t| t.may_hold_prefix(extractor, prefix))
    };
    for f in v.files(0).iter().filter(|f| wanted(f)) {
        out.push(table_iter(f, false));
    }
    for level in 1..v.num_levels() {
        let files: Vec<Arc<TableFile>> = v
            .files(level)
            .iter()
            .filter(|f| wanted(f))
            .cloned()
            .collect();
        if !files.is_empty() {
            out.push(Box::new(LevelIterator::with_files(Files::Owned(files))));
        }
    }
}

/// A cursor over `f`'s table (one that hands the pages it passed back to
/// the OS with `releasing`), or one that reports why the table could not
/// be opened again.
pub(crate) fn table_iter(f: &TableFile, releasing: bool) -> Box<dyn InternalIterator> {
    match f.table() {
        Ok(t) if releasing => Box::new(t.iter_releasing()),
        Ok(t) => Box::new(t.iter()),
        Err(e) => Box::new(super::ErrorIterator::new(e)),
    }
}

/// The files a [`LevelIterator`] walks.
pub(crate) enum Files {
    /// A list of its own (a compaction's inputs).
    Owned(Vec<Arc<TableFile>>),
    /// One level of a version, shared: opening a cursor over a level then
    /// counts one reference instead of one per file.
    Level(Arc<Version>, usize),
}

impl Files {
    #[inline]
    fn get(&self) -> &[Arc<TableFile>] {
        match self {
            Files::Owned(v) => v,
            Files::Level(v, level) => v.files(*level),
        }
    }
}

/// Concatenation of the non-overlapping, key-ordered `files`.
pub(crate) struct LevelIterator {
    files: Files,
    /// Index of the file under the cursor and its iterator.
    current: Option<(usize, Box<dyn InternalIterator>)>,
    /// Open files with [`crate::sst::Table::iter_releasing`] (one forward
    /// pass, as a compaction reads).
    releasing: bool,
}

impl LevelIterator {
    /// A cursor over level `level` (not 0) of `version`.
    pub(crate) fn over_level(version: Arc<Version>, level: usize) -> Self {
        Self::with_files(Files::Level(version, level))
    }

    pub(crate) fn with_files(files: Files) -> Self {
        LevelIterator {
            files,
            current: None,
            releasing: false,
        }
    }

    /// A cursor for one forward pass that hands the pages it passed back
    /// to the OS (compaction inputs).
    pub(crate) fn new_releasing(files: Vec<Arc<TableFile>>) -> Self {
        LevelIterator {
            releasing: true,
            ..Self::with_files(Files::Owned(files))
        }
    }

    fn open(&mut self, i: usize) -> Option<&mut Box<dyn InternalIterator>> {
        let f = self.files.get().get(i)?;
        let it = table_iter(f, self.releasing);
        self.current = Some((i, it));
        self.current.as_mut().map(|(_, it)| it)
    }

    /// Moves forward over files whose iterators ended, stopping on an error.
    fn skip_forward(&mut self) {
        while let Some((i, it)) = &self.current {
            if it.valid() || it.status().is_err() {
                return;
            }
            let next = *i + 1;
            match self.open(next) {
                Some(it) => it.seek_to_first(),
                None => {
                    self.current = None;
                    return;
                }
            }
        }
    }

    fn skip_backward(&mut self) {
        while let Some((i, it)) = &self.current {
            if it.valid() || it.status().is_err() {
                return;
            }
            let Some(prev) = i.checked_sub(1) else {
                self.current = None;
                return;
            };
            if let Some(it) = self.open(prev) {
                it.seek_to_last();
            }
        }
    }
}

impl InternalIterator for LevelIterator {
    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|(_, it)| it.valid())
    }

    fn seek_to_first(&mut self) {
        match self.open(0) {
            Some(it) => it.seek_to_first(),
            None => self.current = None,
        }
        self.skip_forward();
    }

    fn seek_to_last(&mut self) {
        let Some(last) = self.files.get().len().checked_sub(1) else {
            self.current = None;
            return;
        };
        if let Some(it) = self.open(last) {
            it.seek_to_last();
        }
        self.skip_backward();
    }

    fn seek(&mut self, target: &[u8]) {
        // First file whose largest key is >= target.
        let i = self
            .files
            .get()
            .partition_point(|f| compare_internal(&f.meta.largest, target) == Ordering::Less);
        match self.open(i) {
            Some(it) => it.seek(target),
            None => self.current = None,
        }
        self.skip_forward();
    }

    fn seek_for_prev(&mut self, target: &[u8]) {
        // Last file whose smallest key is <= target.
        let n = self
            .files
            .get()
            .partition_point(|f| compare_internal(&f.meta.smallest, target) != Ordering::Greater);
        let Some(i) = n.checked_sub(1) else {
            self.current = None;
            return;
        };
        if let Some(it) = self.open(i) {
            it.seek_for_prev(target);
        }
        self.skip_backward();
    }

    fn next(&mut self) {
        if let Some((_, it)) = self.current.as_mut() {
            it.next();
        }
        self.skip_forward();
    }

    fn prev(&mut self) {
        if let Some((_, it)) = self.current.as_mut() {
            it.prev();
        }
        self.skip_backward();
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, it)| it.key())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |(_, it)| it.value())
    }

    fn value_bytes(&self) -> Bytes {
        self.current
            .as_ref()
            .map_or_else(Bytes::new, |(_, it)| it.value_bytes())
    }

    fn status(&self) -> Result<()> {
        self.current.as_ref().map_or(Ok(()), |(_, it)| it.status())
    }
}
