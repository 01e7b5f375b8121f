//! In-memory cursors, writers and sinks for the tests.

use crate::executor::JobInputs;
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

/// Input runs held in memory.
pub struct MemInputs {
    pub runs: Vec<Vec<Entry>>,
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
}

/// A writer collecting entries; its size is key + value bytes + 8 per
/// entry.
pub struct MemWriter {
    pub entries: Vec<Entry>,
    size: u64,
}

impl RunWriter for MemWriter {
    type Error = String;
    fn add(&mut self, e: EntryRef<'_>) -> Result<(), String> {
        self.size += (e.user_key.len() + e.value.len() + 8) as u64;
        self.entries.push(e.into());
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
    type Output = Vec<Entry>;
    fn create(&self) -> Result<MemWriter, String> {
        *self.created.lock().map_err(|e| e.to_string())? += 1;
        Ok(MemWriter {
            entries: Vec::new(),
            size: 0,
        })
    }
    fn finish(&self, w: MemWriter) -> Result<Vec<Entry>, String> {
        Ok(w.entries)
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
