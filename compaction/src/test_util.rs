//! In-memory cursors, writers and sinks for the tests.

use crate::executor::JobInputs;
use crate::range_del::{FragmentedTombstones, RangeTombstone};
use crate::types::{EntryCursor, EntryKind, EntryRef, KeyRange, RunSink, RunWriter};
use std::sync::Mutex;

/// An owned entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub seq: u64,
    pub kind: EntryKind,
    pub value: Vec<u8>,
}

impl From<EntryRef<'_>> for Entry {
    fn from(e: EntryRef<'_>) -> Self {
        Entry {
            key: e.user_key.to_vec(),
            seq: e.seq,
            kind: e.kind,
            value: e.value.to_vec(),
        }
    }
}

/// A cursor over a vector of entries, in (key asc, seq desc) order.
pub struct VecCursor {
    entries: Vec<Entry>,
    pos: usize,
}

impl VecCursor {
    pub fn new(entries: Vec<Entry>) -> Self {
        VecCursor { entries, pos: 0 }
    }
}

impl EntryCursor for VecCursor {
    type Error = String;
    fn current(&self) -> Option<EntryRef<'_>> {
        self.entries.get(self.pos).map(|e| EntryRef {
            user_key: &e.key,
            seq: e.seq,
            kind: e.kind,
            value: &e.value,
        })
    }
    fn advance(&mut self) -> Result<(), String> {
        self.pos += 1;
        Ok(())
    }
}

/// Input runs and their range tombstones, held in memory.
pub struct MemInputs {
    pub runs: Vec<Vec<Entry>>,
    pub tombstones: FragmentedTombstones,
}

impl JobInputs for MemInputs {
    type Error = String;
    type Cursor = VecCursor;
    fn open(&self, range: &KeyRange) -> Result<Vec<VecCursor>, String> {
        Ok(self
            .runs
            .iter()
            .map(|r| {
                VecCursor::new(
                    r.iter()
                        .filter(|e| range.contains(&e.key))
                        .cloned()
                        .collect(),
                )
            })
            .collect())
    }
    fn range_tombstones(&self) -> Result<FragmentedTombstones, String> {
        Ok(self.tombstones.clone())
    }
}

/// A finished in-memory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemFile {
    pub entries: Vec<Entry>,
    pub tombstones: FragmentedTombstones,
}

/// A writer collecting entries and range tombstones; its size is key +
/// value bytes + 8 per entry. It fails when tombstones come twice, empty,
/// or before an entry.
pub struct MemWriter {
    file: MemFile,
    size: u64,
    tombstones_added: bool,
}

impl RunWriter for MemWriter {
    type Error = String;
    fn add(&mut self, e: EntryRef<'_>) -> Result<(), String> {
        if self.tombstones_added {
            return Err("entry after the range tombstones".into());
        }
        self.size += (e.user_key.len() + e.value.len() + 8) as u64;
        self.file.entries.push(e.into());
        Ok(())
    }
    fn add_range_tombstones(&mut self, ts: &FragmentedTombstones) -> Result<(), String> {
        if self.tombstones_added {
            return Err("range tombstones added twice".into());
        }
        if ts.is_empty() {
            return Err("empty range tombstones added".into());
        }
        self.tombstones_added = true;
        self.file.tombstones = ts.clone();
        Ok(())
    }
    fn estimated_size(&self) -> u64 {
        self.size
    }
}

/// A sink counting files.
#[derive(Default)]
pub struct MemSink {
    pub created: Mutex<u64>,
}

impl RunSink for MemSink {
    type Error = String;
    type Writer = MemWriter;
    type Output = MemFile;
    fn create(&self) -> Result<MemWriter, String> {
        *self.created.lock().map_err(|e| e.to_string())? += 1;
        Ok(MemWriter {
            file: MemFile {
                entries: Vec::new(),
                tombstones: FragmentedTombstones::empty(),
            },
            size: 0,
            tombstones_added: false,
        })
    }
    fn finish(&self, w: MemWriter) -> Result<MemFile, String> {
        Ok(w.file)
    }
}

/// The value a reader at `read_seq` sees for `key`: the newest version at
/// or below `read_seq`, unless it is a point tombstone or a range
/// tombstone deletes it (the raw rule: one covering `key` with a sequence
/// number in `(version, read_seq]`).
pub fn visible(
    points: &[Entry],
    tombstones: &[RangeTombstone],
    key: &[u8],
    read_seq: u64,
) -> Option<Vec<u8>> {
    let newest = points
        .iter()
        .filter(|e| e.key == key && e.seq <= read_seq)
        .max_by_key(|e| e.seq)?;
    let deleted = tombstones.iter().any(|t| {
        t.start.as_slice() <= key
            && key < t.end.as_slice()
            && newest.seq < t.seq
            && t.seq <= read_seq
    });
    (newest.kind != EntryKind::Delete && !deleted).then(|| newest.value.clone())
}

/// All range tombstones of `files`.
pub fn file_tombstones(files: &[MemFile]) -> Vec<RangeTombstone> {
    files
        .iter()
        .flat_map(|f| f.tombstones.tombstones())
        .collect()
}

/// Two sets with the same tombstones, however fragmented.
pub fn same_tombstones(a: &FragmentedTombstones, b: &FragmentedTombstones) -> bool {
    FragmentedTombstones::new(a.tombstones()) == FragmentedTombstones::new(b.tombstones())
}

/// Checks the shape of the files a job (or one merge) wrote for the key
/// ranges `ranges` (in order, adjacent): no file is empty; entries are in
/// (key asc, seq desc) order; each file lies in one range, the files of a
/// range in key order; file `i` of a range covers `[lo_i, hi_i)` (`lo_0`
/// the range's start, later ones their first key, `hi_i` the next file's
/// first key or the range's end) and its entries and tombstones lie in
/// it; only a range's single file may hold tombstones alone; a file's
/// entries end below the next file's smallest key and its tombstones end
/// at or below it. Returns the number of files per range.
pub fn check_files(files: &[MemFile], ranges: &[KeyRange]) -> Result<Vec<usize>, String> {
    let smallest = |f: &MemFile| -> Result<Vec<u8>, String> {
        let a = f.entries.first().map(|e| e.key.clone());
        let b = f.tombstones.bounds().map(|(s, _)| s.to_vec());
        match (a, b) {
            (Some(a), Some(b)) => Ok(a.min(b)),
            (Some(k), None) | (None, Some(k)) => Ok(k),
            (None, None) => Err("an empty file".into()),
        }
    };
    let mut which = Vec::with_capacity(files.len());
    for (i, f) in files.iter().enumerate() {
        for w in f.entries.windows(2) {
            if !(w[0].key < w[1].key || (w[0].key == w[1].key && w[0].seq > w[1].seq)) {
                return Err(format!("file {i}: entries out of order: {w:?}"));
            }
        }
        let s = smallest(f)?;
        let r = ranges
            .iter()
            .position(|r| r.contains(&s))
            .ok_or(format!("file {i} starts outside every range"))?;
        if which.last().is_some_and(|&p| p > r) {
            return Err(format!("file {i}: ranges out of order"));
        }
        which.push(r);
    }
    let mut per_range = vec![0usize; ranges.len()];
    for &r in &which {
        per_range[r] += 1;
    }
    for (i, f) in files.iter().enumerate() {
        let r = &ranges[which[i]];
        let first_of_range = i == 0 || which[i - 1] != which[i];
        let last_of_range = i + 1 == files.len() || which[i + 1] != which[i];
        if f.entries.is_empty() && per_range[which[i]] != 1 {
            return Err(format!("file {i}: tombstones only, but not alone"));
        }
        let lo: Option<Vec<u8>> = if first_of_range {
            r.start.clone()
        } else {
            Some(f.entries[0].key.clone())
        };
        let hi: Option<Vec<u8>> = if last_of_range {
            r.end.clone()
        } else {
            Some(files[i + 1].entries[0].key.clone())
        };
        let span = KeyRange {
            start: lo.clone(),
            end: hi.clone(),
        };
        if let Some(e) = f.entries.iter().find(|e| !span.contains(&e.key)) {
            return Err(format!("file {i}: entry {e:?} outside {span:?}"));
        }
        if let Some((s, e)) = f.tombstones.bounds() {
            let low_ok = lo.as_deref().is_none_or(|lo| lo <= s);
            let high_ok = hi.as_deref().is_none_or(|hi| e <= hi);
            if !(low_ok && high_ok) {
                return Err(format!(
                    "file {i}: tombstones [{s:?}, {e:?}) outside {span:?}"
                ));
            }
        }
        if let Some(next) = files.get(i + 1) {
            let n = smallest(next)?;
            if f.entries.last().is_some_and(|e| e.key >= n) {
                return Err(format!("file {i}: entries overlap the next file"));
            }
            if f.tombstones.bounds().is_some_and(|(_, e)| e > n.as_slice()) {
                return Err(format!("file {i}: tombstones overlap the next file"));
            }
        }
    }
    Ok(per_range)
}

/// A small deterministic random number generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`lo` if empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next() % (hi - lo)
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}
