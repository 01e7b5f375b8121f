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
