//! In-memory cursors, writers and sinks for the tests.

use crate::executor::JobInputs;
use crate::range_del::FragmentedTombstones;
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
