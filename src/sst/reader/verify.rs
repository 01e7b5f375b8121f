//! [`Table::verify`] and [`Table::verify_all`]: a walk of the whole file
//! that checks everything. The one verifier of an SST: `Db::verify`,
//! [`crate::inspect::SstFile::verify_all`] and `sst-dump --command=verify`
//! all run it.

use super::*;
use crate::error::escape_key;
use crate::key::{range_end_bound, range_start_bound};
use std::collections::HashMap;

/// What a verification walked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries in data blocks.
    pub num_entries: u64,
    /// Tombstones in data blocks.
    pub num_deletions: u64,
    /// Data blocks.
    pub num_data_blocks: u64,
    /// Index pages, root included.
    pub num_index_pages: u64,
    /// Stored bytes of data blocks with trailers.
    pub data_size: u64,
    /// Stored bytes of index pages with trailers.
    pub index_size: u64,
    /// Sum of internal key lengths.
    pub raw_key_size: u64,
    /// Sum of value lengths.
    pub raw_value_size: u64,
    /// Blob references (kind 2 entries), by the blob file they point into.
    pub blob_references: std::collections::BTreeMap<u64, u64>,
}

/// Which check a [`VerifyProblem`] failed; problems are capped per check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum VerifyCheck {
    /// A block or page could not be read: checksum, decompression or
    /// decoding failed (the walk skips it and goes on).
    Block,
    /// The index: separators out of order, a key outside its block's
    /// separators, an empty page, a page whose last separator is not its
    /// parent's entry.
    Index,
    /// Keys out of order within or across data blocks, or not internal
    /// keys.
    Order,
    /// The filter misses a key the file holds (point reads of it would
    /// find nothing).
    Filter,
    /// The properties block disagrees with the blocks.
    Properties,
    /// A blob reference that does not decode, or one in a table of a
    /// version before 3 (which cannot hold them).
    BlobReference,
    /// A merge operand (kind 3) in a table of a version before 5 (which
    /// cannot hold them).
    MergeOperand,
    /// A timed value (kind 4) in a table of a version before 6, or one too
    /// short to hold its 8-byte write time.
    TimedValue,
}

impl VerifyCheck {
    /// A short lowercase name (`"block"`, `"index"`, `"order"`,
    /// `"filter"`, `"properties"`).
    pub fn name(self) -> &'static str {
        match self {
            VerifyCheck::Block => "block",
            VerifyCheck::Index => "index",
            VerifyCheck::Order => "order",
            VerifyCheck::Filter => "filter",
            VerifyCheck::Properties => "properties",
            VerifyCheck::BlobReference => "blob_reference",
            VerifyCheck::MergeOperand => "merge_operand",
            VerifyCheck::TimedValue => "timed_value",
        }
    }
}

/// One problem [`crate::inspect::SstFile::verify_all`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyProblem {
    /// The check that failed.
    pub check: VerifyCheck,
    /// The problem: [`Error::Corruption`] naming the file and the offset
    /// of the block, page or properties concerned (or the error reading
    /// them).
    pub error: Error,
}

/// Everything [`crate::inspect::SstFile::verify_all`] found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyOutcome {
    /// What the walk read (the blocks it could read).
    pub report: VerifyReport,
    /// The problems, in file order, at most the cap of each check.
    pub problems: Vec<VerifyProblem>,
    /// Problems of a check found beyond the cap and not listed, by check.
    pub not_listed: Vec<(VerifyCheck, usize)>,
}

impl VerifyOutcome {
    /// True when no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Table {
    /// [`Table::verify_all`], stopping at the first problem: returns it as
    /// the error.
    pub fn verify(&self) -> Result<VerifyReport> {
        let outcome = self.walk(1, Some(1));
        match outcome.problems.into_iter().next() {
            Some(p) => Err(p.error),
            None => Ok(outcome.report),
        }
    }

    /// Walks every index page and data block and checks every checksum
    /// and decoding; that keys are strictly increasing within and across
    /// blocks; the separator invariant (every key of child `i` is `<= s_i`
    /// and `> s_{i-1}`, a page's last separator equals its entry in the
    /// parent); that the filter knows every user key; and, when every
    /// block could be read, that the counts, sizes, index depth, filter
    /// size, key range and sequence range in the properties match. An
    /// unreadable block is skipped and the walk goes on; at most
    /// `max_per_check` problems of each [`VerifyCheck`] are listed (the
    /// rest are counted in [`VerifyOutcome::not_listed`]).
    pub fn verify_all(&self, max_per_check: usize) -> VerifyOutcome {
        self.walk(max_per_check.max(1), None)
    }

    /// The walk, listing at most `cap` problems of each check; with
    /// `stop_after`, it ends once that many problems are listed.
    fn walk(&self, cap: usize, stop_after: Option<usize>) -> VerifyOutcome {
        let mut v = Verifier {
            t: self,
            out: VerifyOutcome::default(),
            counts: HashMap::new(),
            cap,
            stop_after,
            all_read: true,
            first_key: None,
            last_key: Vec::new(),
            smallest_seq: u64::MAX,
            largest_seq: 0,
        };
        v.out.report.num_index_pages = 1;
        v.out.report.index_size = self.footer.index_root.size + BLOCK_TRAILER_LEN as u64;
        v.page(self.root.clone(), self.footer.index_depth, None, None);
        if v.all_read && !v.stopped() {
            v.properties();
        }
        v.finish()
    }
}

impl Verifier<'_> {
    /// Widens the key and sequence ranges the walk found to the file's
    /// range tombstones, as the writer does (`TableBuilder::finish`).
    fn widen_to_range_tombstones(&mut self) {
        let Some(set) = self.t.range_dels.as_ref() else {
            return;
        };
        let Some((start, end)) = set.bounds() else {
            return;
        };
        let (lo, hi) = (range_start_bound(start), range_end_bound(end));
        match &self.first_key {
            Some(f) if compare_internal(f, &lo) != Ordering::Greater => {}
            _ => self.first_key = Some(lo),
        }
        if self.last_key.is_empty() || compare_internal(&hi, &self.last_key) == Ordering::Greater {
            self.last_key = hi;
        }
        self.smallest_seq = self.smallest_seq.min(set.min_seq());
        self.largest_seq = self.largest_seq.max(set.max_seq());
    }
}

struct Verifier<'a> {
    t: &'a Table,
    out: VerifyOutcome,
    counts: HashMap<VerifyCheck, usize>,
    cap: usize,
    stop_after: Option<usize>,
    /// Every block was read (the properties can be compared).
    all_read: bool,
    first_key: Option<Vec<u8>>,
    last_key: Vec<u8>,
    smallest_seq: u64,
    largest_seq: u64,
}

impl Verifier<'_> {
    fn stopped(&self) -> bool {
        self.stop_after
            .is_some_and(|n| self.out.problems.len() >= n)
    }

    fn problem(&mut self, check: VerifyCheck, error: Error) {
        let n = self.counts.entry(check).or_insert(0);
        *n += 1;
        if *n <= self.cap {
            self.out.problems.push(VerifyProblem { check, error });
        }
    }

    fn fail(&mut self, check: VerifyCheck, offset: u64, reason: impl Into<String>) {
        let e = Error::corruption(&self.t.path, offset, reason);
        self.problem(check, e);
    }

    fn finish(mut self) -> VerifyOutcome {
        let cap = self.cap;
        self.out.not_listed = self
            .counts
            .iter()
            .filter(|(_, &n)| n > cap)
            .map(|(&c, &n)| (c, n - cap))
            .collect();
        self.out.not_listed.sort();
        self.out
    }

    /// Checks the page `block` at `level` whose keys must lie in
    /// `(lower, upper]`, with its last key equal to `upper` when given.
    fn page(&mut self, block: Block, level: u32, lower: Option<&[u8]>, upper: Option<&[u8]>) {
        let at = block.error_offset(&DecodeError {
            offset: 0,
            reason: "",
        });
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut prev: Option<Vec<u8>> = lower.map(<[u8]>::to_vec);
        let mut n = 0;
        while it.valid() && !self.stopped() {
            let sep = it.key().to_vec();
            if let Some(p) = &prev {
                if compare_internal(p, &sep) != Ordering::Less {
                    self.fail(VerifyCheck::Index, at, "index separators out of order");
                }
            }
            if let Some(u) = upper {
                if compare_internal(&sep, u) == Ordering::Greater {
                    self.fail(
                        VerifyCheck::Index,
                        at,
                        "index separator above its parent's separator",
                    );
                }
            }
            match self.t.child_handle(&it) {
                Err(e) => {
                    self.all_read = false;
                    self.problem(VerifyCheck::Block, e);
                }
                Ok(h) if level > 1 => match self.t.read_block(h, "index page", Access::Scan) {
                    Ok(child) => {
                        self.out.report.num_index_pages += 1;
                        self.out.report.index_size += h.size + BLOCK_TRAILER_LEN as u64;
                        self.page(child, level - 1, prev.as_deref(), Some(&sep));
                    }
                    Err(e) => {
                        self.all_read = false;
                        self.problem(VerifyCheck::Block, e);
                    }
                },
                Ok(h) => match self.t.read_block(h, "data block", Access::Scan) {
                    Ok(child) => {
                        self.out.report.num_data_blocks += 1;
                        self.out.report.data_size += h.size + BLOCK_TRAILER_LEN as u64;
                        self.data_block(child, h, prev.as_deref(), &sep);
                    }
                    Err(e) => {
                        self.all_read = false;
                        self.problem(VerifyCheck::Block, e);
                    }
                },
            }
            prev = Some(sep);
            n += 1;
            it.next();
        }
        if self.stopped() {
            return;
        }
        if let Some(e) = it.error() {
            self.all_read = false;
            let e = self.t.block_error(it.block(), e, "index page");
            self.problem(VerifyCheck::Block, e);
            return;
        }
        // Only the root of a table holding nothing but range tombstones
        // is empty.
        let tombstones_only = upper.is_none() && self.t.range_dels.is_some();
        if n == 0 && !tombstones_only {
            self.fail(VerifyCheck::Index, at, "empty index page");
        }
        if let (Some(u), Some(p)) = (upper, &prev) {
            if u != &p[..] {
                self.fail(
                    VerifyCheck::Index,
                    at,
                    "page's last separator differs from its parent's entry",
                );
            }
        }
    }

    fn data_block(&mut self, block: Block, h: BlockHandle, lower: Option<&[u8]>, upper: &[u8]) {
        let mut it = BlockIter::new(block, Vec::new());
        it.seek_to_first();
        let mut n = 0;
        let (mut order_reported, mut index_reported) = (false, false);
        while it.valid() && !self.stopped() {
            let k = it.key();
            let Some(p) = parse_internal_key(k) else {
                self.fail(VerifyCheck::Order, h.offset, "invalid internal key");
                it.next();
                continue;
            };
            let ordered =
                self.first_key.is_none() || compare_internal(&self.last_key, k) == Ordering::Less;
            if !ordered && !order_reported {
                order_reported = true;
                let before = parse_internal_key(&self.last_key).map_or_else(
                    || escape_key(&self.last_key),
                    |q| format!("{}@{}", escape_key(q.user_key), q.seq),
                );
                self.fail(
                    VerifyCheck::Order,
                    h.offset,
                    format!(
                        "keys out of order in or before the data block at offset {}: {before} then {}@{}",
                        h.offset,
                        escape_key(p.user_key),
                        p.seq
                    ),
                );
            }
            let outside = lower.is_some_and(|l| compare_internal(k, l) != Ordering::Greater)
                || compare_internal(k, upper) == Ordering::Greater;
            if outside && !index_reported {
                index_reported = true;
                self.fail(
                    VerifyCheck::Index,
                    h.offset,
                    format!(
                        "data block at offset {} holds {}@{}, outside its index separators",
                        h.offset,
                        escape_key(p.user_key),
                        p.seq
                    ),
                );
            }
            let new_user_key = self.first_key.is_none() || user_key(&self.last_key) != p.user_key;
            if new_user_key && !self.t.may_contain(p.user_key) {
                self.fail(
                    VerifyCheck::Filter,
                    self.t.footer.filter.offset,
                    format!(
                        "the bloom filter misses key {} (point reads of it would find nothing)",
                        escape_key(p.user_key)
                    ),
                );
            }
            if p.kind == ValueKind::BlobIndex {
                self.blob_reference(h.offset, p.user_key, it.value());
            }
            if p.kind == ValueKind::Merge
                && self.t.footer.version < super::super::footer::MERGE_FORMAT_VERSION
            {
                self.fail(
                    VerifyCheck::MergeOperand,
                    h.offset,
                    format!(
                        "merge operand of key {} in a table of format version {} (merge operands need 5)",
                        escape_key(p.user_key),
                        self.t.footer.version
                    ),
                );
            }
            if p.kind == ValueKind::TimedValue {
                let old = self.t.footer.version < super::super::footer::TTL_FORMAT_VERSION;
                if old || crate::ttl::split(it.value()).is_none() {
                    let why = if old {
                        format!(
                            "in a table of format version {} (timed values need 6)",
                            self.t.footer.version
                        )
                    } else {
                        format!(
                            "of {} bytes, too short for its write time",
                            it.value().len()
                        )
                    };
                    self.fail(
                        VerifyCheck::TimedValue,
                        h.offset,
                        format!("timed value of key {} {why}", escape_key(p.user_key)),
                    );
                }
            }
            let r = &mut self.out.report;
            r.num_entries += 1;
            if p.kind == ValueKind::Delete {
                r.num_deletions += 1;
            }
            r.raw_key_size += k.len() as u64;
            r.raw_value_size += it.value().len() as u64;
            self.smallest_seq = self.smallest_seq.min(p.seq);
            self.largest_seq = self.largest_seq.max(p.seq);
            if self.first_key.is_none() {
                self.first_key = Some(k.to_vec());
            }
            self.last_key.clear();
            self.last_key.extend_from_slice(k);
            n += 1;
            it.next();
        }
        if self.stopped() {
            return;
        }
        if let Some(e) = it.error() {
            self.all_read = false;
            let e = self.t.block_error(it.block(), e, "data block");
            self.problem(VerifyCheck::Block, e);
            return;
        }
        if n == 0 {
            self.fail(VerifyCheck::Index, h.offset, "empty data block");
        }
    }

    /// Counts a blob reference, or reports it.
    fn blob_reference(&mut self, offset: u64, user_key: &[u8], value: &[u8]) {
        if self.t.footer.version < super::super::footer::BLOB_FORMAT_VERSION {
            self.fail(
                VerifyCheck::BlobReference,
                offset,
                format!(
                    "blob reference of key {} in a table of format version {} (blob references need 3)",
                    escape_key(user_key),
                    self.t.footer.version
                ),
            );
            return;
        }
        match crate::blob::BlobRef::decode(value) {
            Ok(r) => {
                *self
                    .out
                    .report
                    .blob_references
                    .entry(r.file_number)
                    .or_insert(0) += 1;
            }
            Err(e) => self.fail(
                VerifyCheck::BlobReference,
                offset,
                format!(
                    "bad blob reference of key {}: {}",
                    escape_key(user_key),
                    e.reason
                ),
            ),
        }
    }

    /// The properties against what the walk counted (every block read).
    fn properties(&mut self) {
        self.widen_to_range_tombstones();
        let t = self.t;
        let p = &t.props;
        let r = self.out.report.clone();
        let f = &t.footer.filter;
        let filter_size = if f.size == 0 && f.offset == 0 {
            0
        } else {
            f.size + BLOCK_TRAILER_LEN as u64
        };
        let checks: [(&str, u64, u64); 12] = [
            ("num_entries", p.num_entries, r.num_entries),
            ("num_deletions", p.num_deletions, r.num_deletions),
            ("num_data_blocks", p.num_data_blocks, r.num_data_blocks),
            ("num_index_pages", p.num_index_pages, r.num_index_pages),
            ("data_size", p.data_size, r.data_size),
            ("index_size", p.index_size, r.index_size),
            ("raw_key_size", p.raw_key_size, r.raw_key_size),
            ("raw_value_size", p.raw_value_size, r.raw_value_size),
            ("smallest_seq", p.smallest_seq, self.smallest_seq),
            ("largest_seq", p.largest_seq, self.largest_seq),
            (
                "index_depth",
                p.index_depth,
                u64::from(t.footer.index_depth),
            ),
            ("filter_size", p.filter_size, filter_size),
        ];
        let at = t.footer.properties.offset;
        for (name, said, found) in checks {
            if said != found {
                self.fail(
                    VerifyCheck::Properties,
                    at,
                    format!("properties say {name} = {said}, the file holds {found}"),
                );
            }
        }
        let show = |k: &[u8]| {
            parse_internal_key(k).map_or_else(
                || escape_key(k),
                |q| format!("{}@{}", escape_key(q.user_key), q.seq),
            )
        };
        let ranges = t.range_dels.as_ref().map_or(0, |r| r.len() as u64);
        if p.num_range_deletions != ranges {
            self.fail(
                VerifyCheck::Properties,
                at,
                format!(
                    "properties say num_range_deletions = {}, the file holds {ranges}",
                    p.num_range_deletions
                ),
            );
        }
        if self.first_key.as_deref() != Some(&p.smallest_key[..]) {
            let first = self.first_key.as_deref().map_or("none".into(), show);
            self.fail(
                VerifyCheck::Properties,
                at,
                format!(
                    "properties say smallest_key = {}, the first entry is {first}",
                    show(&p.smallest_key)
                ),
            );
        }
        if self.last_key != p.largest_key {
            let last = show(&self.last_key);
            self.fail(
                VerifyCheck::Properties,
                at,
                format!(
                    "properties say largest_key = {}, the last entry is {last}",
                    show(&p.largest_key)
                ),
            );
        }
    }
}
