//! Reading records back from a log file.
//!
//! The reader works over the whole file content as [`Bytes`] (a memory map
//! from [`crate::fs::FileSystem::read_file`]). A record held in one `FULL`
//! fragment is returned as a zero-copy slice of that content; a record split
//! over several fragments is assembled into one new buffer.
//!
//! Damage handling (docs/format.md, "Reading and torn tails"): the reader
//! stops at the first fragment that is incomplete, fails its checksum, has
//! an unknown type or a length that leaves its block. If a valid fragment
//! starts anywhere after it (at any byte of the damaged block, or at a
//! later block boundary), that is mid-file corruption and
//! [`LogReader::next_record`] fails with [`Error::Corruption`] at the offset
//! of the bad fragment. Otherwise it is a torn tail: the records before it
//! are the log, [`LogReader::torn_tail`] says where valid data ends. A
//! fragment that is valid itself but breaks the FIRST/MIDDLE/LAST sequence
//! is always corruption: a crash during an append cannot produce it.
//!
//! The header record is checked by [`LogReader::new`]. A file that is empty,
//! or whose first header-length bytes are a prefix of the expected header
//! (possibly empty) followed only by zeros or by the end of the file (the
//! zeros are the preallocated tail of a WAL whose header write was cut
//! short), or a WAL whose header is garbled and after which no valid
//! fragment follows (a torn page before its first sync), is a log created
//! but never written before a crash: an empty log with a torn tail at
//! offset 0. A file whose header is complete
//! but wrong (foreign magic, garbage) is corruption; a newer version is
//! [`Error::UnsupportedVersion`].
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;
use std::path::PathBuf;

use bytes::Bytes;

use super::format::{
    encode_file_header, fragment_checksum, FragmentType, LogKind, BLOCK_SIZE, FILE_HEADER_LEN,
    FILE_HEADER_PAYLOAD_LEN, HEADER_LEN,
};
use crate::coding::{checksum_matches, Cursor};
use crate::error::{Error, Result};

/// One logical record read from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRecord {
    /// File offset of the record's first fragment header.
    pub offset: u64,
    /// The record's bytes: a slice of the file content for a `FULL`
    /// fragment, a new buffer for a record split over several fragments.
    pub payload: Bytes,
}

/// Where a log stops being valid because of an interrupted write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// End of the last whole record: everything from here on is dropped.
    pub offset: u64,
    /// What the reader found there.
    pub reason: &'static str,
}

/// The outcome of decoding one fragment.
enum Fragment {
    /// A fragment whose checksum, type and length are valid.
    Valid {
        ty: FragmentType,
        /// Absolute offset of the payload.
        start: usize,
        /// Payload length.
        len: usize,
    },
    /// Anything else, with why.
    Bad(&'static str),
}

/// Decodes the fragment at `pos`, which must leave at least `HEADER_LEN`
/// bytes in its block. Never reads outside `data`.
fn decode_fragment(data: &[u8], pos: usize) -> Fragment {
    let Some(rest) = data.get(pos..) else {
        return Fragment::Bad("fragment starts past the end of the file");
    };
    let mut c = Cursor::new(rest);
    let (Ok(sum), Ok(len), Ok(ty)) = (
        c.u32("checksum"),
        c.bytes(2, "length").map(|b| {
            let mut a = [0u8; 2];
            a.copy_from_slice(b);
            u16::from_le_bytes(a) as usize
        }),
        c.u8("type"),
    ) else {
        return Fragment::Bad("truncated fragment header");
    };
    let in_block = BLOCK_SIZE - pos % BLOCK_SIZE;
    if HEADER_LEN + len > in_block {
        return Fragment::Bad("fragment length runs past the end of its block");
    }
    let Ok(payload) = c.bytes(len, "payload") else {
        return Fragment::Bad("truncated fragment payload");
    };
    let Some(fty) = FragmentType::from_u8(ty) else {
        return Fragment::Bad("unknown fragment type");
    };
    if !checksum_matches(fragment_checksum(ty, payload), sum) {
        return Fragment::Bad("fragment checksum mismatch");
    }
    Fragment::Valid {
        ty: fty,
        start: pos + HEADER_LEN,
        len,
    }
}

/// True when `data`, the content of a log file, holds at least one valid
/// record fragment after its header: what a file that only held a header
/// (or a header torn by a power loss, or zeros) never does. Used to tell
/// what an interrupted creation leaves behind from a log with data.
pub(crate) fn holds_a_fragment(data: &[u8]) -> bool {
    // A valid header is a fragment too: skip it when it is there.
    let from = match decode_fragment(data, 0) {
        Fragment::Valid { start, len, .. } => start + len,
        Fragment::Bad(_) => 1,
    };
    (from..data.len()).any(|p| {
        BLOCK_SIZE - p % BLOCK_SIZE >= HEADER_LEN
            && matches!(decode_fragment(data, p), Fragment::Valid { .. })
    })
}

/// Reads the records of one log file in order.
pub(crate) struct LogReader {
    path: PathBuf,
    data: Bytes,
    /// Offset of the next fragment to read.
    pos: usize,
    /// End offset of the last whole record returned (or of the header).
    valid_len: usize,
    /// Reading finished (clean end or torn tail).
    done: bool,
    torn: Option<TornTail>,
    /// Mid-file corruption found: repeated on every later call.
    corrupt: Option<(u64, &'static str)>,
    kind: LogKind,
    /// Format version from the header record (the current one of `kind`
    /// when the header is torn: then there are no records).
    version: u32,
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.path)
            .field("len", &self.data.len())
            .field("pos", &self.pos)
            .field("valid_len", &self.valid_len)
            .field("torn", &self.torn)
            .field("corrupt", &self.corrupt)
            .finish()
    }
}

impl LogReader {
    /// Opens the log whose whole content is `data`, read from `path`, and
    /// checks its header record: the magic of `kind`, a version this build
    /// reads ([`Error::UnsupportedVersion`] if newer), and a file number
    /// equal to `expected_file_number` ([`Error::Corruption`] otherwise).
    /// An empty file or a torn header is not an error: the log is empty and
    /// [`torn_tail`](Self::torn_tail) reports offset 0.
    pub(crate) fn new(
        path: PathBuf,
        data: Bytes,
        kind: LogKind,
        expected_file_number: u64,
    ) -> Result<Self> {
        let mut r = LogReader {
            path,
            data,
            pos: 0,
            valid_len: 0,
            done: false,
            torn: None,
            corrupt: None,
            kind,
            version: kind.format_version(),
        };
        if r.data.is_empty() {
            r.finish_torn("empty file: the log header was never written");
            return Ok(r);
        }
        match decode_fragment(&r.data, 0) {
            Fragment::Valid { ty, start, len } => {
                let payload = r.data.get(start..start + len).unwrap_or_default();
                r.version = r.check_header(ty, payload, kind, expected_file_number)?;
                r.pos = start + len;
                r.valid_len = r.pos;
                Ok(r)
            }
            Fragment::Bad(reason) => {
                let n = r.data.len().min(FILE_HEADER_LEN);
                let head = r.data.get(..n).unwrap_or_default();
                // A prefix of the header any supported version writes,
                // then only zeros: the end of the file, or the zero tail
                // of a preallocated WAL (docs/format.md). Or a WAL header
                // garbled by a torn page before it was ever synced: then
                // nothing valid follows it (a WAL gets its first record
                // only after its header is synced).
                let plausible = (1..=kind.format_version()).any(|v| {
                    let expected = encode_file_header(kind, expected_file_number, v);
                    let same = head
                        .iter()
                        .zip(expected.iter())
                        .take_while(|(a, b)| a == b)
                        .count();
                    head.get(same..).unwrap_or_default().iter().all(|&b| b == 0)
                }) || (kind == LogKind::Wal && !holds_a_fragment(&r.data));
                if !plausible {
                    return Err(Error::corruption(
                        &r.path,
                        0,
                        format!("not a {}: bad header record ({reason})", kind.name()),
                    ));
                }
                r.damage(0, "log header incomplete or zero-filled")?;
                Ok(r)
            }
        }
    }

    /// The log's format version, from its header record.
    pub(crate) fn version(&self) -> u32 {
        self.version
    }

    fn check_header(
        &self,
        ty: FragmentType,
        payload: &[u8],
        kind: LogKind,
        expected_file_number: u64,
    ) -> Result<u32> {
        let err = |reason: String| Error::corruption(&self.path, 0, reason);
        if ty != FragmentType::Full || payload.len() != FILE_HEADER_PAYLOAD_LEN {
            return Err(err(format!(
                "not a {}: first record is not a log header",
                kind.name()
            )));
        }
        let mut c = Cursor::new(payload);
        let (Ok(magic), Ok(version), Ok(number)) =
            (c.bytes(8, "magic"), c.u32("version"), c.u64("file number"))
        else {
            return Err(err("truncated log header".into()));
        };
        if magic != kind.magic() {
            return Err(err(format!(
                "not a {}: bad magic {magic:02x?}",
                kind.name()
            )));
        }
        if version > kind.format_version() {
            return Err(Error::UnsupportedVersion {
                file: self.path.clone(),
                found: version,
                supported: kind.format_version(),
            });
        }
        if version == 0 {
            return Err(err("log format version 0 is invalid".into()));
        }
        if number != expected_file_number {
            return Err(err(format!(
                "log header names file number {number}, but the file name says \
                 {expected_file_number} (renamed or misplaced file)"
            )));
        }
        Ok(version)
    }

    /// Stops reading at a torn tail ending at the last whole record.
    fn finish_torn(&mut self, reason: &'static str) {
        self.torn = Some(TornTail {
            offset: self.valid_len as u64,
            reason,
        });
        self.done = true;
        self.pos = self.data.len();
    }

    fn corruption_error(&self, offset: u64, reason: &'static str) -> Error {
        Error::corruption(&self.path, offset, reason)
    }

    /// Damage at `offset`: a torn tail unless a valid fragment starts after
    /// it, in which case mid-file corruption.
    ///
    /// An interrupted append leaves nothing valid behind the record it
    /// tore: the rest of the file is the zeros of the preallocated tail, or
    /// nothing. So a valid fragment anywhere after the damage means real
    /// damage, never a torn tail. Fragments need not start at fixed offsets
    /// inside a block, so the rest of the damaged block is tried at every
    /// byte; every later block starts with a fragment, so only its first
    /// byte is tried. A manifest is searched at every byte to its end (it is
    /// small): taking damage there for a torn tail would silently drop the
    /// flushes recorded after it, whose WALs are already deleted.
    ///
    /// The search costs at most one checksum per byte of the damaged block
    /// whose header looks valid; it runs once per damaged log.
    fn damage(&mut self, offset: usize, reason: &'static str) -> Result<()> {
        let block_end = if self.kind == LogKind::Manifest {
            self.data.len()
        } else {
            ((offset / BLOCK_SIZE + 1) * BLOCK_SIZE).min(self.data.len())
        };
        let valid_at = |p: usize| {
            BLOCK_SIZE - p % BLOCK_SIZE >= HEADER_LEN
                && matches!(decode_fragment(&self.data, p), Fragment::Valid { .. })
        };
        let later_valid = (offset + 1..block_end).any(valid_at)
            || (block_end..self.data.len())
                .step_by(BLOCK_SIZE)
                .any(valid_at);
        if later_valid {
            return Err(self.fail(offset as u64, reason));
        }
        self.finish_torn(reason);
        Ok(())
    }

    /// Records mid-file corruption (repeated by later calls) and returns it.
    fn fail(&mut self, offset: u64, reason: &'static str) -> Error {
        self.corrupt = Some((offset, reason));
        self.done = true;
        self.corruption_error(offset, reason)
    }

    /// The next whole record. `Ok(None)` at the clean end of the log or at
    /// a torn tail (then [`torn_tail`](Self::torn_tail) is set).
    /// [`Error::Corruption`] names the file and the offset of the bad
    /// fragment when the damage is followed by valid data; every later call
    /// returns the same error.
    pub(crate) fn next_record(&mut self) -> Result<Option<LogRecord>> {
        if let Some((offset, reason)) = self.corrupt {
            return Err(self.corruption_error(offset, reason));
        }
        if self.done {
            return Ok(None);
        }
        // Start offset of a split record being assembled, and its bytes.
        let mut record_start: Option<usize> = None;
        let mut assembled: Vec<u8> = Vec::new();
        loop {
            let in_block = BLOCK_SIZE - self.pos % BLOCK_SIZE;
            if in_block < HEADER_LEN {
                // Block trailer: zero padding the writer left.
                let next = self.pos + in_block;
                if next > self.data.len() {
                    // The writer pads a block's tail only when the next
                    // record comes: a log may end here cleanly, with part
                    // or none of the padding written.
                    let tail = self.data.get(self.pos..).unwrap_or_default();
                    if !tail.iter().all(|&b| b == 0) {
                        self.damage(self.pos, "non-zero bytes in a block's padding")?;
                    } else if record_start.is_some() {
                        self.finish_torn("file ends inside a record split over fragments");
                    } else {
                        self.done = true;
                    }
                    return Ok(None);
                }
                self.pos = next;
            }
            if self.pos >= self.data.len() {
                if record_start.is_some() {
                    self.finish_torn("file ends inside a record split over fragments");
                } else {
                    self.done = true;
                }
                return Ok(None);
            }
            let frag_offset = self.pos;
            let (ty, start, len) = match decode_fragment(&self.data, frag_offset) {
                Fragment::Valid { ty, start, len } => (ty, start, len),
                Fragment::Bad(reason) => {
                    self.damage(frag_offset, reason)?;
                    return Ok(None);
                }
            };
            let end = start + len;
            let payload = self.data.get(start..end).unwrap_or_default();
            match (ty, record_start) {
                (FragmentType::Full, None) => {
                    self.pos = end;
                    self.valid_len = end;
                    return Ok(Some(LogRecord {
                        offset: frag_offset as u64,
                        payload: self.data.slice(start..end),
                    }));
                }
                (FragmentType::First, None) => {
                    record_start = Some(frag_offset);
                    assembled.reserve_exact(self.split_record_size_hint(frag_offset));
                    assembled.extend_from_slice(payload);
                }
                (FragmentType::Middle, Some(_)) => assembled.extend_from_slice(payload),
                (FragmentType::Last, Some(first)) => {
                    assembled.extend_from_slice(payload);
                    self.pos = end;
                    self.valid_len = end;
                    return Ok(Some(LogRecord {
                        offset: first as u64,
                        payload: Bytes::from(assembled),
                    }));
                }
                (FragmentType::Full | FragmentType::First, Some(_)) => {
                    return Err(self.fail(
                        frag_offset as u64,
                        "record starts before the previous split record ended",
                    ));
                }
                (FragmentType::Middle | FragmentType::Last, None) => {
                    return Err(self.fail(
                        frag_offset as u64,
                        "continuation fragment without a FIRST fragment",
                    ));
                }
            }
            self.pos = end;
        }
    }

    /// Sum of the payload lengths of the fragments that seem to make up the
    /// split record starting at `pos` (headers only, no checksums), so the
    /// record is assembled in one allocation instead of by doubling. Never
    /// more than the bytes left in the file: no allocation trusts a length
    /// from disk beyond what is there.
    fn split_record_size_hint(&self, mut pos: usize) -> usize {
        let mut total = 0usize;
        let mut first = true;
        loop {
            let in_block = BLOCK_SIZE - pos % BLOCK_SIZE;
            if in_block < HEADER_LEN {
                pos += in_block;
            }
            let (Some(len_bytes), Some(&ty)) =
                (self.data.get(pos + 4..pos + 6), self.data.get(pos + 6))
            else {
                break;
            };
            let len = usize::from(u16::from_le_bytes([
                len_bytes.first().copied().unwrap_or(0),
                len_bytes.get(1).copied().unwrap_or(0),
            ]));
            let expected = if first {
                FragmentType::First
            } else {
                FragmentType::Middle
            };
            match FragmentType::from_u8(ty) {
                Some(t) if t == expected => {}
                Some(FragmentType::Last) if !first => {
                    total += len;
                    break;
                }
                _ => break,
            }
            total += len;
            first = false;
            pos += HEADER_LEN + len;
        }
        total.min(self.data.len())
    }

    /// The torn tail found, if reading stopped at one.
    pub(crate) fn torn_tail(&self) -> Option<TornTail> {
        self.torn
    }

    #[cfg(test)]
    /// End offset of the last whole record read (or of the header record;
    /// 0 when the header is torn).
    pub(crate) fn valid_len(&self) -> u64 {
        self.valid_len as u64
    }

    #[cfg(test)]
    /// The file being read.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::log::test_util::VecFile;
    use crate::log::writer::LogWriter;

    const NUM: u64 = 7;

    fn path() -> PathBuf {
        PathBuf::from("000007.log")
    }

    fn write_log(records: &[Vec<u8>]) -> Vec<u8> {
        let f = VecFile::default();
        let mut w = LogWriter::new(Box::new(f.clone()), path(), LogKind::Wal, NUM).unwrap();
        for r in records {
            w.add_record(r).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.len(), f.data.lock().len() as u64);
        let d = f.data.lock().clone();
        d
    }

    /// Reads every record; returns them plus the final result (Ok or Err).
    fn read_all(data: &[u8]) -> (Vec<LogRecord>, Result<Option<TornTail>>) {
        let mut r = match LogReader::new(path(), Bytes::copy_from_slice(data), LogKind::Wal, NUM) {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Err(e)),
        };
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => out.push(rec),
                Ok(None) => {
                    // Reading again stays at the end.
                    assert!(r.next_record().unwrap().is_none());
                    return (out, Ok(r.torn_tail()));
                }
                Err(e) => {
                    assert!(r.next_record().is_err(), "corruption must be sticky");
                    return (out, Err(e));
                }
            }
        }
    }

    fn round_trip(records: &[Vec<u8>]) -> Vec<u8> {
        let data = write_log(records);
        let (got, end) = read_all(&data);
        assert_eq!(end.unwrap(), None, "clean log must not report a torn tail");
        assert_eq!(got.len(), records.len());
        for (g, want) in got.iter().zip(records) {
            assert_eq!(&g.payload[..], &want[..]);
        }
        data
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn empty_and_small_records() {
        round_trip(&[]);
        round_trip(&[vec![]]);
        round_trip(&[vec![], b"a".to_vec(), vec![], b"hello".to_vec()]);
    }

    #[test]
    fn block_sized_and_straddling_records() {
        let first = BLOCK_SIZE - FILE_HEADER_LEN - HEADER_LEN;
        // Exactly fills the first block, then whole-block records.
        round_trip(&[
            pattern(first, 1),
            pattern(BLOCK_SIZE - HEADER_LEN, 2),
            pattern(BLOCK_SIZE - HEADER_LEN, 3),
            b"x".to_vec(),
        ]);
        // One byte more or less than a block; straddling records.
        round_trip(&[
            pattern(first + 1, 1),
            pattern(BLOCK_SIZE, 2),
            pattern(BLOCK_SIZE - 1, 3),
            pattern(3 * BLOCK_SIZE + 17, 4),
            vec![],
        ]);
    }

    #[test]
    fn block_trailer_padding_cases() {
        // Leave 0..=8 bytes at the end of the first block, then write a record.
        for left in 0..=8usize {
            let first = BLOCK_SIZE - FILE_HEADER_LEN - HEADER_LEN - left;
            let data = round_trip(&[pattern(first, 9), pattern(100, 1), pattern(40_000, 2)]);
            if (1..HEADER_LEN).contains(&left) {
                assert!(data[BLOCK_SIZE - left..BLOCK_SIZE].iter().all(|&b| b == 0));
            }
            let (recs, _) = read_all(&data);
            let expect_second = if left < HEADER_LEN {
                BLOCK_SIZE
            } else {
                BLOCK_SIZE - left
            };
            assert_eq!(recs[1].offset, expect_second as u64, "left {left}");
        }
    }

    #[test]
    fn large_records() {
        round_trip(&[pattern(1 << 20, 5), b"after".to_vec()]);
        round_trip(&[b"before".to_vec(), pattern(40 << 20, 6), b"after".to_vec()]);
    }

    #[test]
    fn many_small_records_few_appends() {
        let recs: Vec<Vec<u8>> = (0..10_000).map(|i| pattern(i % 97, i as u8)).collect();
        round_trip(&recs);
        let f = VecFile::default();
        let mut w = LogWriter::new(Box::new(f.clone()), path(), LogKind::Wal, NUM).unwrap();
        for r in &recs {
            w.add_record(r).unwrap();
        }
        // Nothing was flushed or synced per record.
        assert_eq!(*f.flushes.lock(), 0);
        assert_eq!(*f.syncs.lock(), 0);
        w.flush().unwrap();
        assert_eq!(*f.flushes.lock(), 1);
    }

    #[test]
    fn split_records_are_assembled_in_one_allocation() {
        let big = pattern(5 * BLOCK_SIZE + 123, 3);
        let data = Bytes::from(write_log(&[b"a".to_vec(), big.clone()]));
        let mut r = LogReader::new(path(), data.clone(), LogKind::Wal, NUM).unwrap();
        r.next_record().unwrap().unwrap();
        let first = FILE_HEADER_LEN + HEADER_LEN + 1;
        assert_eq!(r.split_record_size_hint(first), big.len());
        assert_eq!(&r.next_record().unwrap().unwrap().payload[..], &big[..]);
        // Truncated: the hint never exceeds the file.
        let cut = data.slice(..2 * BLOCK_SIZE);
        let r = LogReader::new(path(), cut, LogKind::Wal, NUM).unwrap();
        assert!(r.split_record_size_hint(first) <= 2 * BLOCK_SIZE);
    }

    #[test]
    fn full_fragments_are_zero_copy() {
        let data = Bytes::from(write_log(&[b"abc".to_vec()]));
        let mut r = LogReader::new(path(), data.clone(), LogKind::Wal, NUM).unwrap();
        let rec = r.next_record().unwrap().unwrap();
        let base = data.as_ptr() as usize;
        let p = rec.payload.as_ptr() as usize;
        assert!(p >= base && p < base + data.len());
        assert_eq!(rec.offset, FILE_HEADER_LEN as u64);
    }

    fn small_log_records() -> Vec<Vec<u8>> {
        vec![
            b"one".to_vec(),
            vec![],
            pattern(50, 3),
            b"four".to_vec(),
            pattern(20, 5),
        ]
    }

    fn assert_prefix(got: &[LogRecord], want: &[Vec<u8>]) {
        assert!(got.len() <= want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(&g.payload[..], &w[..], "a returned record differs");
        }
    }

    /// Regression: a log whose last record ends 1 to 6 bytes before a
    /// block boundary ends cleanly (the writer pads a block's tail only
    /// when the next record comes). It used to read as a torn tail ("file
    /// ends inside a block's zero padding"), so recovery refused a rotated
    /// WAL ending there as damage followed by a newer WAL, and a live
    /// `verify` reported it.
    #[test]
    fn log_ending_just_before_a_block_boundary_ends_cleanly() {
        for gap in 0..HEADER_LEN {
            // One record filling the first block up to `gap` bytes.
            let first_len = BLOCK_SIZE - FILE_HEADER_LEN - HEADER_LEN - gap;
            let recs = vec![pattern(first_len, 1)];
            let data = write_log(&recs);
            assert_eq!(data.len(), BLOCK_SIZE - gap);
            let (got, end) = read_all(&data);
            assert_eq!(got.len(), 1, "gap {gap}");
            assert_eq!(end.unwrap(), None, "gap {gap}: a clean end");
            // The padding written when the next record comes, then cut.
            let recs = vec![pattern(first_len, 1), b"next".to_vec()];
            let data = write_log(&recs);
            for cut in BLOCK_SIZE - gap..=BLOCK_SIZE {
                let (got, end) = read_all(&data[..cut]);
                assert_eq!(got.len(), 1, "gap {gap}, cut {cut}");
                assert_eq!(end.unwrap(), None, "gap {gap}, cut {cut}: a clean end");
            }
            // Garbage where the padding goes, at the end of the file, is
            // a torn tail, not a clean end. (Complete padding is skipped
            // unread: it holds no record.)
            if gap > 1 {
                let mut d = data[..BLOCK_SIZE - gap + 1].to_vec();
                *d.last_mut().unwrap() = 0x5a;
                let (_, end) = read_all(&d);
                assert!(end.unwrap().is_some(), "gap {gap}: a torn tail");
            }
        }
    }

    #[test]
    fn torn_tail_at_every_truncation() {
        let recs = small_log_records();
        let data = write_log(&recs);
        let (clean, _) = read_all(&data);
        let mut boundaries: Vec<usize> = clean
            .iter()
            .map(|r| r.offset as usize + HEADER_LEN + r.payload.len())
            .collect();
        boundaries.push(FILE_HEADER_LEN);
        for n in 0..data.len() {
            let (got, end) = read_all(&data[..n]);
            let torn = end.unwrap_or_else(|e| panic!("truncation at {n}: {e}"));
            assert_prefix(&got, &recs);
            if boundaries.contains(&n) {
                assert!(torn.is_none(), "cut at a record boundary is a clean end");
            } else {
                let t = torn.expect("a truncated log reports a torn tail");
                let valid = got.last().map_or(
                    if n < FILE_HEADER_LEN {
                        0
                    } else {
                        FILE_HEADER_LEN
                    },
                    |r| r.offset as usize + HEADER_LEN + r.payload.len(),
                );
                assert_eq!(t.offset as usize, valid, "truncation at {n}");
            }
        }
        // A multi-block log truncated at and around fragment boundaries.
        let big = vec![pattern(70_000, 1), b"x".to_vec(), pattern(33_000, 2)];
        let data = write_log(&big);
        let cuts = [
            FILE_HEADER_LEN + 1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 3,
            BLOCK_SIZE + HEADER_LEN,
            2 * BLOCK_SIZE + 10,
            data.len() - 1,
        ];
        for n in cuts {
            let (got, end) = read_all(&data[..n]);
            assert!(end.unwrap().is_some(), "cut at {n}");
            assert_prefix(&got, &big);
        }
    }

    #[test]
    fn flipping_any_byte_never_yields_wrong_records() {
        let recs = small_log_records();
        let data = write_log(&recs);
        let (clean, _) = read_all(&data);
        let last_record = clean.last().unwrap().offset as usize;
        for i in 0..data.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut d = data.clone();
                d[i] ^= mask;
                let (got, end) = read_all(&d);
                assert_prefix(&got, &recs);
                match &end {
                    Ok(_) => {}
                    Err(e) => assert!(
                        e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. }),
                        "byte {i}: {e}"
                    ),
                }
                if i >= last_record {
                    // Damage in the last record is a torn tail.
                    assert!(end.unwrap().is_some() || got.len() == recs.len());
                } else if i >= FILE_HEADER_LEN {
                    // Damage followed by a valid record, even in the same
                    // block, is never taken for a torn tail.
                    assert!(end.is_err(), "byte {i}: {end:?}");
                }
            }
        }
    }

    #[test]
    fn mid_file_corruption_is_reported_with_offset() {
        let recs: Vec<Vec<u8>> = (0..40).map(|i| pattern(3000, i)).collect();
        let data = write_log(&recs);
        let (clean, _) = read_all(&data);
        // Damage the payload of record 3 (a FULL fragment in block 0).
        let mut d = data.clone();
        let off = clean[3].offset as usize;
        d[off + HEADER_LEN + 5] ^= 0x10;
        let (got, end) = read_all(&d);
        assert_eq!(got.len(), 3);
        match end {
            Err(Error::Corruption { offset, file, .. }) => {
                assert_eq!(offset, off as u64);
                assert_eq!(file, path());
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        // Zero a whole range in the middle: still corruption, not a torn tail.
        let mut d = data.clone();
        let off = clean[5].offset as usize;
        d[off..off + 5000].fill(0);
        let (got, end) = read_all(&d);
        assert_eq!(got.len(), 5);
        assert!(matches!(end, Err(Error::Corruption { offset, .. }) if offset == off as u64));
        // Damage in the last block only: a torn tail.
        let mut d = data.clone();
        let last = clean.last().unwrap().offset as usize;
        d[last + 9] ^= 1;
        let (got, end) = read_all(&d);
        assert_eq!(got.len(), recs.len() - 1);
        assert_eq!(end.unwrap().unwrap().offset, last as u64);
    }

    #[test]
    fn damage_inside_split_record_followed_by_valid_blocks() {
        let recs = vec![pattern(100_000, 1), pattern(40_000, 2), b"end".to_vec()];
        let data = write_log(&recs);
        // The MIDDLE fragment at the start of block 1.
        let mut d = data.clone();
        d[BLOCK_SIZE + HEADER_LEN + 1] ^= 4;
        let (got, end) = read_all(&d);
        assert!(got.is_empty());
        assert!(
            matches!(end, Err(Error::Corruption { offset, .. }) if offset == BLOCK_SIZE as u64)
        );
    }

    #[test]
    fn sequence_breaks_are_corruption() {
        // Hand-build: header, then a FIRST fragment followed by a FULL one.
        let mut d = encode_file_header(LogKind::Wal, NUM, 2).to_vec();
        let frag = |ty: FragmentType, p: &[u8], d: &mut Vec<u8>| {
            d.extend_from_slice(&super::super::format::encode_fragment_header(ty, p));
            d.extend_from_slice(p);
        };
        let mut a = d.clone();
        frag(FragmentType::First, b"ab", &mut a);
        let full_at = a.len();
        frag(FragmentType::Full, b"cd", &mut a);
        let (got, end) = read_all(&a);
        assert!(got.is_empty());
        assert!(matches!(end, Err(Error::Corruption { offset, .. }) if offset == full_at as u64));
        // A LAST fragment with no FIRST.
        let at = d.len();
        frag(FragmentType::Last, b"ab", &mut d);
        let (_, end) = read_all(&d);
        assert!(matches!(end, Err(Error::Corruption { offset, .. }) if offset == at as u64));
    }

    #[test]
    fn header_checks() {
        let data = write_log(&[b"r".to_vec()]);
        // Wrong kind (magic).
        let e =
            LogReader::new(path(), Bytes::from(data.clone()), LogKind::Manifest, NUM).unwrap_err();
        assert!(e.is_corruption(), "{e}");
        // Wrong file number.
        let e = LogReader::new(path(), Bytes::from(data.clone()), LogKind::Wal, 8).unwrap_err();
        assert!(matches!(e, Error::Corruption { offset: 0, .. }), "{e}");
        // Newer version with a valid checksum.
        let newer = LogKind::Wal.format_version() + 1;
        let payload = super::super::format::encode_file_header_payload(LogKind::Wal, NUM, newer);
        let mut d =
            super::super::format::encode_fragment_header(FragmentType::Full, &payload).to_vec();
        d.extend_from_slice(&payload);
        let e = LogReader::new(path(), Bytes::from(d), LogKind::Wal, NUM).unwrap_err();
        assert!(
            matches!(
                e,
                Error::UnsupportedVersion {
                    found,
                    supported,
                    ..
                } if found == newer && supported == newer - 1
            ),
            "{e}"
        );
        // Garbage: not a manifest.
        let e = LogReader::new(
            path(),
            Bytes::from_static(b"hello world, not a log at all"),
            LogKind::Manifest,
            NUM,
        )
        .unwrap_err();
        assert!(e.is_corruption());
        let e =
            LogReader::new(path(), Bytes::from_static(b"xy"), LogKind::Manifest, NUM).unwrap_err();
        assert!(e.is_corruption());
        // A WAL whose header a power loss garbled before its first sync:
        // nothing valid follows, so it is an empty log, torn at 0. With a
        // valid record after the garbled header, it is corruption.
        let mut torn = data.clone();
        torn[3] ^= 0x5a;
        let with_records = torn.clone();
        torn.truncate(FILE_HEADER_LEN);
        torn.resize(8192, 0);
        let mut r = LogReader::new(path(), Bytes::from(torn), LogKind::Wal, NUM).unwrap();
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.torn_tail().unwrap().offset, 0);
        let recs = write_log(&[b"a record".to_vec()]);
        let mut with_records = with_records[..FILE_HEADER_LEN].to_vec();
        with_records.extend_from_slice(&recs[FILE_HEADER_LEN..]);
        let e = LogReader::new(path(), Bytes::from(with_records), LogKind::Wal, NUM)
            .and_then(|mut r| r.next_record());
        assert!(e.is_err_and(|e| e.is_corruption()));
        // A partial manifest header followed by anything but zeros is not ours.
        // (A WAL's would be a header torn before its first sync.)
        let manifest_header = encode_file_header(LogKind::Manifest, NUM, 1);
        let mut d = manifest_header[..10].to_vec();
        d.resize(4096, 0);
        let mut r = LogReader::new(path(), Bytes::from(d.clone()), LogKind::Manifest, NUM).unwrap();
        assert!(r.next_record().unwrap().is_none());
        d[20] = 1;
        let e = LogReader::new(path(), Bytes::from(d), LogKind::Manifest, NUM).unwrap_err();
        assert!(e.is_corruption(), "{e}");
        // Empty, zero-filled, or a partial header, alone or followed by the
        // zeros of a preallocated tail (a power cut during the header
        // write of a new mapped WAL): an empty log with a torn tail.
        let mut cases = vec![vec![], vec![0u8; 5], vec![0u8; 4096]];
        for k in 1..FILE_HEADER_LEN {
            cases.push(data[..k].to_vec());
            // (Unless the header's remaining bytes are zeros: it is whole.)
            if data[k..FILE_HEADER_LEN].iter().any(|&b| b != 0) {
                let mut zero_tail = data[..k].to_vec();
                zero_tail.resize(4096, 0);
                cases.push(zero_tail);
            }
        }
        for d in cases {
            let mut r = LogReader::new(path(), Bytes::from(d), LogKind::Wal, NUM).unwrap();
            assert!(r.next_record().unwrap().is_none());
            assert_eq!(r.torn_tail().unwrap().offset, 0);
            assert_eq!(r.valid_len(), 0);
        }
        // Exactly the header: a clean, empty log.
        let mut r = LogReader::new(
            path(),
            Bytes::copy_from_slice(&data[..FILE_HEADER_LEN]),
            LogKind::Wal,
            NUM,
        )
        .unwrap();
        assert!(r.next_record().unwrap().is_none());
        assert!(r.torn_tail().is_none());
        assert_eq!(r.valid_len(), FILE_HEADER_LEN as u64);
    }

    #[test]
    fn writer_refuses_after_failure() {
        struct Failing;
        impl crate::fs::WritableFile for Failing {
            fn append(&mut self, _: &[u8]) -> Result<()> {
                Err(Error::io("f", std::io::Error::other("disk full")))
            }
            fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn sync_data(&mut self) -> Result<()> {
                Ok(())
            }
            fn len(&self) -> u64 {
                0
            }
        }
        assert!(LogWriter::new(Box::new(Failing), path(), LogKind::Wal, 1).is_err());

        // Fails on the 6th append (header and "ok" take 4, the FIRST
        // fragment header 1): the record being written is cut short
        // and the writer refuses everything after it.
        struct FailAfter(VecFile, usize);
        impl crate::fs::WritableFile for FailAfter {
            fn append(&mut self, d: &[u8]) -> Result<()> {
                if self.1 == 0 {
                    return Err(Error::io("f", std::io::Error::other("disk full")));
                }
                self.1 -= 1;
                self.0.append(d)
            }
            fn flush(&mut self) -> Result<()> {
                Ok(())
            }
            fn sync_data(&mut self) -> Result<()> {
                Ok(())
            }
            fn len(&self) -> u64 {
                self.0.len()
            }
        }
        let f = VecFile::default();
        let mut w =
            LogWriter::new(Box::new(FailAfter(f.clone(), 5)), path(), LogKind::Wal, NUM).unwrap();
        w.add_record(b"ok").unwrap();
        assert!(w.add_record(&pattern(70_000, 1)).is_err());
        assert!(w.add_record(b"later").is_err());
        assert!(w.flush().is_err());
        assert!(w.sync().is_err());
        let data = f.data.lock().clone();
        let (got, end) = read_all(&data);
        assert_eq!(got.len(), 1);
        assert!(end.unwrap().is_some());
    }

    #[test]
    fn writer_requires_empty_file() {
        let f = VecFile::default();
        f.data.lock().push(1);
        assert!(matches!(
            LogWriter::new(Box::new(f), path(), LogKind::Wal, 1),
            Err(Error::Internal(_))
        ));
    }

    #[test]
    fn posix_file_round_trip() {
        use crate::fs::{FileSystem, PosixFs};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("000009.log");
        let fs = PosixFs;
        let mut w =
            LogWriter::new(fs.create(&p).unwrap(), p.clone(), LogKind::Manifest, 9).unwrap();
        let recs = [pattern(10, 1), pattern(100_000, 2), vec![]];
        for r in &recs {
            w.add_record(r).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.path(), p.as_path());
        assert_eq!(w.file_number(), 9);
        assert_eq!(w.kind(), LogKind::Manifest);
        assert_eq!(fs.file_size(&p).unwrap(), w.len());
        let mut r =
            LogReader::new(p.clone(), fs.read_file(&p).unwrap(), LogKind::Manifest, 9).unwrap();
        for want in &recs {
            assert_eq!(&r.next_record().unwrap().unwrap().payload[..], &want[..]);
        }
        assert!(r.next_record().unwrap().is_none());
        assert_eq!(r.valid_len(), w.len());
        assert_eq!(r.path(), p.as_path());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]

            #[test]
            fn random_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..2000)) {
                let (_, _) = read_all(&d);
            }

            #[test]
            fn mutated_logs_yield_prefixes(
                lens in proptest::collection::vec(0usize..5000, 1..30),
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
                cut in any::<usize>(),
            ) {
                let recs: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| pattern(l, i as u8)).collect();
                let mut d = write_log(&recs);
                for (pos, x) in flips {
                    let p = pos % d.len();
                    d[p] ^= x.max(1);
                }
                d.truncate(cut % (d.len() + 1));
                let (got, _) = read_all(&d);
                assert_prefix(&got, &recs);
            }
        }
    }
}
