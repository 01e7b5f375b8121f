//! Version edits: the payload of a manifest record (docs/format.md,
//! "Manifest record payload: a version edit").
//!
//! An edit is a sequence of `tag: varint` + field. Tags 1–3 (log number,
//! next file number, last sequence) appear at most once; tag 4 adds a file
//! to a level, tag 5 removes one; in manifests of version 2 and later, tags
//! 6–8 add a blob file, add garbage to one, and remove one. In manifests of
//! version 3 ([`KEYSPACE_MANIFEST_VERSION`]) an edit concerns one keyspace:
//! tag 9 names it (absent: keyspace 0, `default`), tag 10 creates it (with
//! its name), tag 11 drops it, tag 12 records the largest keyspace id ever
//! allocated; each at most once. The encoder writes tags 9–12, then 1, 2,
//! 3, then every new file, then every deleted file, then the blob tags; the
//! decoder accepts any order. An edit without keyspace fields encodes as
//! in versions 1 and 2.
//!
//! Invariants checked by the decoder: known tags only, levels below
//! [`NUM_LEVELS`], internal keys of at least 8 bytes with a known kind and
//! a user key of at most `MAX_KEY_SIZE`, `smallest <= largest` in internal
//! key order, `smallest_seq <= largest_seq`, `num_deletions <= num_entries`,
//! no byte left over; keyspace ids of tag 9 above 0, keyspace names of 1 to
//! [`MAX_KEYSPACE_NAME_LEN`] bytes of UTF-8 other than `default`, tags 10
//! and 11 only for a keyspace other than 0, tag 11 without tag 10 or a new
//! file (tags 4, 6), tag 12 not below the edit's keyspace.
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cmp::Ordering;

use crate::coding::{put_length_prefixed, put_varint32, put_varint64, Cursor, DecodeError};
use crate::key::{compare_internal, parse_internal_key};
use crate::keyspace::{DEFAULT_KEYSPACE_NAME, MAX_KEYSPACE_NAME_LEN};
use crate::options::MAX_KEY_SIZE;

/// Number of levels a level number must be below.
pub(crate) const NUM_LEVELS: u32 = 64;

const TAG_LOG_NUMBER: u64 = 1;
const TAG_NEXT_FILE_NUMBER: u64 = 2;
const TAG_LAST_SEQUENCE: u64 = 3;
const TAG_NEW_FILE: u64 = 4;
const TAG_DELETED_FILE: u64 = 5;
const TAG_BLOB_FILE: u64 = 6;
const TAG_BLOB_GARBAGE: u64 = 7;
const TAG_DELETED_BLOB_FILE: u64 = 8;
const TAG_KEYSPACE: u64 = 9;
const TAG_KEYSPACE_ADDED: u64 = 10;
const TAG_KEYSPACE_DROPPED: u64 = 11;
const TAG_MAX_KEYSPACE_ID: u64 = 12;
const TAG_KEYSPACE_LOG_NUMBER: u64 = 13;

/// The first manifest version whose edits may hold blob file tags (6–8).
pub(crate) const BLOB_MANIFEST_VERSION: u32 = 2;
/// The first manifest version whose edits may hold keyspace tags (9–12);
/// it holds blob file tags too.
pub(crate) const KEYSPACE_MANIFEST_VERSION: u32 = 3;

/// What the manifest knows about one SST file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetaData {
    /// File number (`NNNNNN.sst`).
    pub number: u64,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Smallest internal key in the file.
    pub smallest: Vec<u8>,
    /// Largest internal key in the file.
    pub largest: Vec<u8>,
    /// Smallest sequence number of any entry.
    pub smallest_seq: u64,
    /// Largest sequence number of any entry.
    pub largest_seq: u64,
    /// Number of entries (values and tombstones).
    pub num_entries: u64,
    /// Number of tombstones.
    pub num_deletions: u64,
}

/// What the manifest knows about one blob file (`docs/format.md`, "Blob
/// files"): its totals, and the garbage compactions have found in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobFileMeta {
    /// File number (`NNNNNN.blob`).
    pub number: u64,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Records in the file.
    pub blob_count: u64,
    /// Sum of the records' sizes.
    pub blob_bytes: u64,
    /// Records no SST references any more.
    pub garbage_count: u64,
    /// Sum of those records' sizes.
    pub garbage_bytes: u64,
}

impl From<crate::blob::BlobFileInfo> for BlobFileMeta {
    /// A new blob file: its totals, no garbage yet.
    fn from(f: crate::blob::BlobFileInfo) -> Self {
        BlobFileMeta {
            number: f.number,
            file_size: f.file_size,
            blob_count: f.blob_count,
            blob_bytes: f.blob_bytes,
            garbage_count: 0,
            garbage_bytes: 0,
        }
    }
}

impl From<crate::blob::Garbage> for BlobGarbage {
    fn from(g: crate::blob::Garbage) -> Self {
        BlobGarbage {
            number: g.file,
            count: g.count,
            bytes: g.bytes,
        }
    }
}

/// Garbage one edit adds to a live blob file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobGarbage {
    /// The blob file.
    pub number: u64,
    /// Records that became garbage.
    pub count: u64,
    /// Sum of their sizes.
    pub bytes: u64,
}

/// A change to the set of live files and to the counters kept in the
/// manifest. Applied whole or not at all (it is one manifest record).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WALs numbered below this are fully in SSTs and may be deleted.
    pub log_number: Option<u64>,
    /// The next file number to hand out.
    pub next_file_number: Option<u64>,
    /// Largest sequence number in any SST or WAL covered by the edit.
    pub last_sequence: Option<u64>,
    /// Files added, with their level.
    pub new_files: Vec<(u32, FileMetaData)>,
    /// Files removed: (level, file number).
    pub deleted_files: Vec<(u32, u64)>,
    /// Blob files added (manifest version 2).
    pub new_blob_files: Vec<BlobFileMeta>,
    /// Garbage added to live blob files (manifest version 2).
    pub blob_garbage: Vec<BlobGarbage>,
    /// Blob files removed (manifest version 2).
    pub deleted_blob_files: Vec<u64>,
    /// The keyspace the file tags (new and deleted files, blob files and
    /// garbage) and the log number of this edit apply to: 0 (`default`)
    /// unless set (manifest version 3, tag 9).
    pub keyspace: u32,
    /// This edit creates [`keyspace`](Self::keyspace), with this name
    /// (manifest version 3, tag 10).
    pub keyspace_added: Option<String>,
    /// This edit drops [`keyspace`](Self::keyspace) (manifest version 3,
    /// tag 11).
    pub keyspace_dropped: bool,
    /// The largest keyspace id ever allocated, so that ids are never
    /// reused (manifest version 3, tag 12; a snapshot edit carries it).
    pub max_keyspace_id: Option<u32>,
    /// Log numbers of other keyspaces: `(keyspace, log number)`, each
    /// raised to at least that (manifest version 3, tag 13). A flush
    /// records those that moved on while idle, so every WAL below the
    /// smallest log number may be deleted.
    pub keyspace_log_numbers: Vec<(u32, u64)>,
}

impl VersionEdit {
    /// Appends the encoding of this edit to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        if self.keyspace != 0 {
            put_varint64(out, TAG_KEYSPACE);
            put_varint32(out, self.keyspace);
        }
        if let Some(name) = &self.keyspace_added {
            put_varint64(out, TAG_KEYSPACE_ADDED);
            put_length_prefixed(out, name.as_bytes());
        }
        if self.keyspace_dropped {
            put_varint64(out, TAG_KEYSPACE_DROPPED);
        }
        if let Some(n) = self.max_keyspace_id {
            put_varint64(out, TAG_MAX_KEYSPACE_ID);
            put_varint32(out, n);
        }
        if let Some(n) = self.log_number {
            put_varint64(out, TAG_LOG_NUMBER);
            put_varint64(out, n);
        }
        for &(ks, n) in &self.keyspace_log_numbers {
            put_varint64(out, TAG_KEYSPACE_LOG_NUMBER);
            put_varint32(out, ks);
            put_varint64(out, n);
        }
        if let Some(n) = self.next_file_number {
            put_varint64(out, TAG_NEXT_FILE_NUMBER);
            put_varint64(out, n);
        }
        if let Some(n) = self.last_sequence {
            put_varint64(out, TAG_LAST_SEQUENCE);
            put_varint64(out, n);
        }
        for (level, f) in &self.new_files {
            put_varint64(out, TAG_NEW_FILE);
            put_varint32(out, *level);
            put_varint64(out, f.number);
            put_varint64(out, f.file_size);
            put_length_prefixed(out, &f.smallest);
            put_length_prefixed(out, &f.largest);
            put_varint64(out, f.smallest_seq);
            put_varint64(out, f.largest_seq);
            put_varint64(out, f.num_entries);
            put_varint64(out, f.num_deletions);
        }
        for (level, number) in &self.deleted_files {
            put_varint64(out, TAG_DELETED_FILE);
            put_varint32(out, *level);
            put_varint64(out, *number);
        }
        for b in &self.new_blob_files {
            put_varint64(out, TAG_BLOB_FILE);
            for v in [
                b.number,
                b.file_size,
                b.blob_count,
                b.blob_bytes,
                b.garbage_count,
                b.garbage_bytes,
            ] {
                put_varint64(out, v);
            }
        }
        for g in &self.blob_garbage {
            put_varint64(out, TAG_BLOB_GARBAGE);
            put_varint64(out, g.number);
            put_varint64(out, g.count);
            put_varint64(out, g.bytes);
        }
        for n in &self.deleted_blob_files {
            put_varint64(out, TAG_DELETED_BLOB_FILE);
            put_varint64(out, *n);
        }
    }

    /// True when the edit has blob file tags, which only manifests of
    /// [`BLOB_MANIFEST_VERSION`] may hold. (Used once the manifest writes
    /// them: issue 18 is being built.)
    #[allow(dead_code)]
    pub(crate) fn has_blob_tags(&self) -> bool {
        !self.new_blob_files.is_empty()
            || !self.blob_garbage.is_empty()
            || !self.deleted_blob_files.is_empty()
    }

    /// True when the edit has keyspace tags (9–13), which only manifests
    /// of [`KEYSPACE_MANIFEST_VERSION`] may hold.
    pub(crate) fn has_keyspace_tags(&self) -> bool {
        self.keyspace != 0
            || self.keyspace_added.is_some()
            || self.keyspace_dropped
            || self.max_keyspace_id.is_some()
            || !self.keyspace_log_numbers.is_empty()
    }

    /// The encoding of this edit in a new buffer.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Decodes and validates an edit of a version 1 manifest
    /// ([`VersionEdit::decode_versioned`]).
    #[cfg(test)]
    pub(crate) fn decode_from(data: &[u8]) -> Result<VersionEdit, DecodeError> {
        Self::decode_versioned(data, 1)
    }

    /// Decodes and validates an edit of a manifest of format `version`
    /// (blob file tags only from [`BLOB_MANIFEST_VERSION`], keyspace tags
    /// only from [`KEYSPACE_MANIFEST_VERSION`]); offsets in the error are
    /// relative to `data`.
    pub(crate) fn decode_versioned(data: &[u8], version: u32) -> Result<VersionEdit, DecodeError> {
        let blobs = version >= BLOB_MANIFEST_VERSION;
        let keyspaces = version >= KEYSPACE_MANIFEST_VERSION;
        let mut c = Cursor::new(data);
        let mut edit = VersionEdit::default();
        // Where tags 9-13 and the first new file (tag 4 or 6) are, for the
        // checks that involve several tags (any order is valid).
        let (mut keyspace_at, mut added_at, mut dropped_at, mut max_id_at, mut new_file_at) =
            (None, None, None, None, None);
        let mut other_log_at = None;
        while !c.is_empty() {
            let tag_at = c.position();
            let dup = DecodeError {
                offset: tag_at,
                reason: "field repeated in version edit",
            };
            match c.varint64("bad tag in version edit")? {
                TAG_LOG_NUMBER => {
                    let v = c.varint64("bad log number")?;
                    if edit.log_number.replace(v).is_some() {
                        return Err(dup);
                    }
                }
                TAG_NEXT_FILE_NUMBER => {
                    let v = c.varint64("bad next file number")?;
                    if edit.next_file_number.replace(v).is_some() {
                        return Err(dup);
                    }
                }
                TAG_LAST_SEQUENCE => {
                    let v = c.varint64("bad last sequence")?;
                    if edit.last_sequence.replace(v).is_some() {
                        return Err(dup);
                    }
                }
                TAG_KEYSPACE if keyspaces => {
                    if keyspace_at.replace(tag_at).is_some() {
                        return Err(dup);
                    }
                    let at = c.position();
                    edit.keyspace = c.varint32("bad keyspace id")?;
                    if edit.keyspace == 0 {
                        // Keyspace 0 is written as no tag 9.
                        return Err(DecodeError {
                            offset: at,
                            reason: "keyspace id 0 in a keyspace tag",
                        });
                    }
                }
                TAG_KEYSPACE_ADDED if keyspaces => {
                    if added_at.replace(tag_at).is_some() {
                        return Err(dup);
                    }
                    edit.keyspace_added = Some(decode_keyspace_name(&mut c)?);
                }
                TAG_KEYSPACE_DROPPED if keyspaces => {
                    if dropped_at.replace(tag_at).is_some() {
                        return Err(dup);
                    }
                    edit.keyspace_dropped = true;
                }
                TAG_MAX_KEYSPACE_ID if keyspaces => {
                    if max_id_at.replace(tag_at).is_some() {
                        return Err(dup);
                    }
                    edit.max_keyspace_id = Some(c.varint32("bad max keyspace id")?);
                }
                TAG_KEYSPACE_LOG_NUMBER if keyspaces => {
                    let ks = c.varint32("bad keyspace id")?;
                    let n = c.varint64("bad keyspace log number")?;
                    if edit.keyspace_log_numbers.iter().any(|&(k, _)| k == ks) {
                        return Err(dup);
                    }
                    other_log_at.get_or_insert(tag_at);
                    edit.keyspace_log_numbers.push((ks, n));
                }
                TAG_NEW_FILE => {
                    new_file_at.get_or_insert(tag_at);
                    let level = decode_level(&mut c)?;
                    let f = decode_file(&mut c, tag_at)?;
                    edit.new_files.push((level, f));
                }
                TAG_DELETED_FILE => {
                    let level = decode_level(&mut c)?;
                    let number = c.varint64("bad deleted file number")?;
                    edit.deleted_files.push((level, number));
                }
                TAG_BLOB_FILE if blobs => {
                    new_file_at.get_or_insert(tag_at);
                    let b = BlobFileMeta {
                        number: c.varint64("bad blob file number")?,
                        file_size: c.varint64("bad blob file size")?,
                        blob_count: c.varint64("bad blob count")?,
                        blob_bytes: c.varint64("bad blob bytes")?,
                        garbage_count: c.varint64("bad blob garbage count")?,
                        garbage_bytes: c.varint64("bad blob garbage bytes")?,
                    };
                    if b.garbage_count > b.blob_count || b.garbage_bytes > b.blob_bytes {
                        return Err(DecodeError {
                            offset: tag_at,
                            reason: "blob file metadata counts more garbage than blobs",
                        });
                    }
                    if b.blob_bytes > b.file_size {
                        return Err(DecodeError {
                            offset: tag_at,
                            reason: "blob file metadata counts more bytes than the file has",
                        });
                    }
                    edit.new_blob_files.push(b);
                }
                TAG_BLOB_GARBAGE if blobs => {
                    edit.blob_garbage.push(BlobGarbage {
                        number: c.varint64("bad blob garbage file number")?,
                        count: c.varint64("bad blob garbage count")?,
                        bytes: c.varint64("bad blob garbage bytes")?,
                    });
                }
                TAG_DELETED_BLOB_FILE if blobs => {
                    let n = c.varint64("bad deleted blob file number")?;
                    edit.deleted_blob_files.push(n);
                }
                _ => {
                    return Err(DecodeError {
                        offset: tag_at,
                        reason: "unknown tag in version edit",
                    })
                }
            }
        }
        let bad = |offset, reason| Err(DecodeError { offset, reason });
        if edit.keyspace == 0 {
            if let Some(at) = added_at.or(dropped_at) {
                return bad(at, "keyspace 0 (default) cannot be added or dropped");
            }
        }
        if let Some(at) = dropped_at {
            if let Some(other) = added_at.or(new_file_at) {
                return bad(
                    at.max(other),
                    "keyspace dropped by an edit that adds it or adds a file",
                );
            }
        }
        if let Some(at) = other_log_at {
            if edit
                .keyspace_log_numbers
                .iter()
                .any(|&(k, _)| k == edit.keyspace)
            {
                return bad(
                    at,
                    "an edit's own keyspace in a tag 13 (its log number is tag 1)",
                );
            }
        }
        if let (Some(at), Some(max)) = (max_id_at, edit.max_keyspace_id) {
            if max < edit.keyspace {
                return bad(at, "max keyspace id below the edit's keyspace");
            }
        }
        Ok(edit)
    }
}

/// A keyspace name (tag 10): 1 to [`MAX_KEYSPACE_NAME_LEN`] bytes of
/// UTF-8, not [`DEFAULT_KEYSPACE_NAME`].
fn decode_keyspace_name(c: &mut Cursor<'_>) -> Result<String, DecodeError> {
    let at = c.position();
    let name = c.length_prefixed("bad keyspace name")?;
    let bad = |reason| DecodeError { offset: at, reason };
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(bad("keyspace name not 1 to 255 bytes long"));
    }
    let name = std::str::from_utf8(name).map_err(|_| bad("keyspace name not UTF-8"))?;
    if name == DEFAULT_KEYSPACE_NAME {
        return Err(bad("keyspace name 'default' is keyspace 0's"));
    }
    Ok(name.to_owned())
}

fn decode_level(c: &mut Cursor<'_>) -> Result<u32, DecodeError> {
    let at = c.position();
    let level = c.varint32("bad level")?;
    if level >= NUM_LEVELS {
        return Err(DecodeError {
            offset: at,
            reason: "level out of range (at most 63)",
        });
    }
    Ok(level)
}

fn decode_internal_key(c: &mut Cursor<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    let at = c.position();
    let k = c.length_prefixed(what)?;
    let bad = |reason| DecodeError { offset: at, reason };
    let parsed = parse_internal_key(k).ok_or(bad("invalid internal key in file metadata"))?;
    if parsed.user_key.len() > MAX_KEY_SIZE {
        return Err(bad(
            "internal key longer than MAX_KEY_SIZE in file metadata",
        ));
    }
    Ok(k.to_vec())
}

fn decode_file(c: &mut Cursor<'_>, tag_at: usize) -> Result<FileMetaData, DecodeError> {
    let number = c.varint64("bad file number")?;
    let file_size = c.varint64("bad file size")?;
    let smallest = decode_internal_key(c, "bad smallest key")?;
    let largest = decode_internal_key(c, "bad largest key")?;
    let smallest_seq = c.varint64("bad smallest sequence")?;
    let largest_seq = c.varint64("bad largest sequence")?;
    let num_entries = c.varint64("bad entry count")?;
    let num_deletions = c.varint64("bad deletion count")?;
    let bad = |reason| DecodeError {
        offset: tag_at,
        reason,
    };
    if compare_internal(&smallest, &largest) == Ordering::Greater {
        return Err(bad("file metadata smallest key is after largest key"));
    }
    if smallest_seq > largest_seq {
        return Err(bad("file metadata smallest_seq is above largest_seq"));
    }
    if num_deletions > num_entries {
        return Err(bad("file metadata counts more deletions than entries"));
    }
    Ok(FileMetaData {
        number,
        file_size,
        smallest,
        largest,
        smallest_seq,
        largest_seq,
        num_entries,
        num_deletions,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::key::{encode_internal_key, ValueKind};
    use proptest::prelude::*;

    fn file(n: u64) -> FileMetaData {
        FileMetaData {
            number: n,
            file_size: 1 << 20,
            smallest: encode_internal_key(b"apple", 5, ValueKind::Value),
            largest: encode_internal_key(b"zebra", 9, ValueKind::Delete),
            smallest_seq: 5,
            largest_seq: 900,
            num_entries: 1000,
            num_deletions: 10,
        }
    }

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(12),
            next_file_number: Some(40),
            last_sequence: Some(1 << 40),
            new_files: vec![(0, file(13)), (63, file(u64::MAX))],
            deleted_files: vec![(1, 7), (2, 8)],
            ..Default::default()
        }
    }

    fn blob_sample() -> VersionEdit {
        VersionEdit {
            new_blob_files: vec![BlobFileMeta {
                number: 21,
                file_size: 1 << 30,
                blob_count: 10_000,
                blob_bytes: (1 << 30) - 48,
                garbage_count: 3,
                garbage_bytes: 300_060,
            }],
            blob_garbage: vec![BlobGarbage {
                number: 17,
                count: 2,
                bytes: 200_040,
            }],
            deleted_blob_files: vec![5, 6],
            ..sample()
        }
    }

    #[test]
    fn blob_tags_round_trip_in_version_2_only() {
        let e = blob_sample();
        assert!(e.has_blob_tags() && !sample().has_blob_tags());
        let d = e.encode();
        assert_eq!(VersionEdit::decode_versioned(&d, 2).unwrap(), e);
        // A version 1 manifest never holds them: an unknown tag there.
        let err = VersionEdit::decode_from(&d).unwrap_err();
        assert_eq!(err.reason, "unknown tag in version edit");
        for n in 0..d.len() {
            let _ = VersionEdit::decode_versioned(&d[..n], 2);
        }
        let reject = |e: &VersionEdit| VersionEdit::decode_versioned(&e.encode(), 2).unwrap_err();
        let mut e = blob_sample();
        e.new_blob_files[0].garbage_count = 10_001;
        assert!(reject(&e).reason.contains("more garbage"));
        let mut e = blob_sample();
        e.new_blob_files[0].garbage_bytes = 1 << 30;
        assert!(reject(&e).reason.contains("more garbage"));
        let mut e = blob_sample();
        e.new_blob_files[0].blob_bytes = (1 << 30) + 1;
        e.new_blob_files[0].garbage_bytes = 0;
        assert!(reject(&e).reason.contains("more bytes"));
    }

    #[test]
    fn round_trip() {
        for e in [VersionEdit::default(), sample()] {
            let d = e.encode();
            assert_eq!(VersionEdit::decode_from(&d).unwrap(), e);
        }
        // Exact encoding of the simple tags.
        let e = VersionEdit {
            log_number: Some(1),
            next_file_number: Some(300),
            ..Default::default()
        };
        assert_eq!(e.encode(), vec![1, 1, 2, 0xac, 0x02]);
    }

    #[test]
    fn corruption_is_rejected() {
        let good = sample().encode();
        for n in 0..good.len() {
            // Every strict prefix either fails or is a shorter valid edit at a
            // field boundary; it never panics.
            let _ = VersionEdit::decode_from(&good[..n]);
        }
        let reject = |d: &[u8]| VersionEdit::decode_from(d).unwrap_err();
        assert_eq!(reject(&[9, 1]).offset, 0); // unknown tag
        assert_eq!(reject(&[1, 1, 1, 2]).offset, 2); // repeated tag
        assert!(reject(&[5, 64, 1]).offset == 1); // level 64
        assert!(reject(&[1]).reason.contains("log number"));
        let mut e = sample();
        e.new_files[0].1.smallest = b"short".to_vec();
        reject(&e.encode());
        let mut e = sample();
        let f = &mut e.new_files[0].1;
        std::mem::swap(&mut f.smallest, &mut f.largest);
        reject(&e.encode());
        let mut e = sample();
        e.new_files[0].1.num_deletions = 1001;
        reject(&e.encode());
        let mut e = sample();
        e.new_files[0].1.smallest_seq = 901;
        reject(&e.encode());
        let mut e = sample();
        e.new_files[0].1.smallest = encode_internal_key(b"a", 1, ValueKind::Value);
        let n = e.new_files[0].1.smallest.len();
        e.new_files[0].1.smallest[n - 8] = 9; // unknown kind
        reject(&e.encode());
    }

    const V3: u32 = KEYSPACE_MANIFEST_VERSION;

    /// An edit that creates keyspace 7, named "users", with files.
    fn keyspace_sample() -> VersionEdit {
        VersionEdit {
            keyspace: 7,
            keyspace_added: Some("users".into()),
            max_keyspace_id: Some(7),
            ..sample()
        }
    }

    /// An edit that drops keyspace 9 and deletes its files.
    fn drop_sample() -> VersionEdit {
        VersionEdit {
            keyspace: 9,
            keyspace_dropped: true,
            deleted_files: vec![(0, 30), (3, 31)],
            deleted_blob_files: vec![32],
            ..Default::default()
        }
    }

    #[test]
    fn keyspace_tags_round_trip_in_version_3_only() {
        let edits = [
            keyspace_sample(),
            drop_sample(),
            // A snapshot edit of keyspace 0: the largest id ever allocated.
            VersionEdit {
                max_keyspace_id: Some(12),
                ..sample()
            },
            VersionEdit {
                max_keyspace_id: Some(0),
                ..Default::default()
            },
            // Files and blob files of keyspace u32::MAX.
            VersionEdit {
                keyspace: u32::MAX,
                ..blob_sample()
            },
        ];
        for e in &edits {
            assert!(e.has_keyspace_tags(), "{e:?}");
            let d = e.encode();
            assert_eq!(&VersionEdit::decode_versioned(&d, V3).unwrap(), e);
            // Versions 1 and 2 never hold them: the first tag is unknown.
            for v in 1..V3 {
                let err = VersionEdit::decode_versioned(&d, v).unwrap_err();
                assert_eq!((err.offset, err.reason), (0, "unknown tag in version edit"));
            }
            for n in 0..d.len() {
                let _ = VersionEdit::decode_versioned(&d[..n], V3);
            }
        }
        // Version 3 reads everything versions 1 and 2 hold, byte for byte
        // as before: an edit without keyspace fields has no keyspace tag.
        for e in [VersionEdit::default(), sample(), blob_sample()] {
            assert!(!e.has_keyspace_tags());
            let d = e.encode();
            assert_eq!(VersionEdit::decode_versioned(&d, V3).unwrap(), e);
        }
        assert_eq!(
            VersionEdit::decode_versioned(&blob_sample().encode(), 2).unwrap(),
            blob_sample()
        );
        // Each tag alone is refused before version 3.
        for d in [&[9u8, 1][..], &[10, 1, b'a'], &[11], &[12, 0]] {
            for v in 1..V3 {
                let err = VersionEdit::decode_versioned(d, v).unwrap_err();
                assert_eq!(err.reason, "unknown tag in version edit", "{d:?} v{v}");
            }
        }
        // Exact encoding: tags 9, 10, 11, 12 come first.
        let e = VersionEdit {
            keyspace: 300,
            keyspace_added: Some("ab".into()),
            max_keyspace_id: Some(301),
            log_number: Some(1),
            ..Default::default()
        };
        assert_eq!(
            e.encode(),
            vec![9, 0xac, 0x02, 10, 2, b'a', b'b', 12, 0xad, 0x02, 1, 1]
        );
        let e = VersionEdit {
            keyspace: 5,
            keyspace_dropped: true,
            ..Default::default()
        };
        assert_eq!(e.encode(), vec![9, 5, 11]);
        // Names: 255 bytes of UTF-8 is the longest.
        let long = "é".repeat(127) + "x";
        assert_eq!(long.len(), 255);
        let e = VersionEdit {
            keyspace: 2,
            keyspace_added: Some(long),
            ..Default::default()
        };
        assert_eq!(VersionEdit::decode_versioned(&e.encode(), V3).unwrap(), e);
    }

    #[test]
    fn keyspace_tags_refuse_what_no_writer_writes() {
        let reject = |d: &[u8]| VersionEdit::decode_versioned(d, V3).unwrap_err();
        // Keyspace 0 is written as no tag 9; ids are 32 bits.
        let e = reject(&[9, 0]);
        assert_eq!((e.offset, e.reason), (1, "keyspace id 0 in a keyspace tag"));
        assert_eq!(reject(&[9, 0x80, 0x80, 0x80, 0x80, 0x10]).offset, 1);
        assert_eq!(reject(&[12, 0x80, 0x80, 0x80, 0x80, 0x10]).offset, 1);
        assert!(reject(&[9, 0x85, 0x00]).offset == 1); // non-minimal
                                                       // Each tag at most once.
        for (d, at) in [
            (&[9u8, 1, 9, 2][..], 2),
            (&[9, 1, 9, 1], 2),
            (&[9, 1, 10, 1, b'a', 10, 1, b'b'], 5),
            (&[9, 1, 11, 11], 3),
            (&[12, 1, 12, 1], 2),
        ] {
            let e = reject(d);
            assert_eq!(
                (e.offset, e.reason),
                (at, "field repeated in version edit"),
                "{d:?}"
            );
        }
        // Bad names.
        let name_err = |name: &[u8]| {
            let mut d = vec![9, 1, 10];
            put_length_prefixed(&mut d, name);
            let e = reject(&d);
            assert_eq!(e.offset, 3, "{name:?}");
            e.reason
        };
        assert!(name_err(b"").contains("1 to 255"));
        assert!(name_err(&[b'a'; 256]).contains("1 to 255"));
        assert!(name_err(&[b'a', 0xff]).contains("UTF-8"));
        assert!(name_err(&[0xc3]).contains("UTF-8")); // a cut character
        assert!(name_err(b"default").contains("'default'"));
        assert!(VersionEdit::decode_versioned(
            &[9, 1, 10, 8, b'd', b'e', b'f', b'a', b'u', b'l', b't', b'2'],
            V3
        )
        .is_ok());
        assert!(reject(&[9, 1, 10, 5, b'a'])
            .reason
            .contains("keyspace name")); // runs past
                                         // Keyspace 0 (no tag 9) is never added nor dropped.
        let e = reject(&[10, 1, b'a']);
        assert_eq!(
            (e.offset, e.reason),
            (0, "keyspace 0 (default) cannot be added or dropped")
        );
        assert_eq!(reject(&[2, 5, 11]).offset, 2);
        // Dropped with added, or with a new file or blob file, in any order.
        let conflict = "keyspace dropped by an edit that adds it or adds a file";
        assert_eq!(reject(&[9, 1, 10, 1, b'a', 11]).reason, conflict);
        assert_eq!(reject(&[11, 9, 1, 10, 1, b'a']).reason, conflict);
        let mut add_file = sample();
        add_file.deleted_files.clear();
        add_file.new_files.truncate(1);
        let mut d = vec![9, 1];
        add_file.encode_into(&mut d);
        assert!(VersionEdit::decode_versioned(&d, V3).is_ok());
        d.push(11);
        assert_eq!(reject(&d).reason, conflict);
        let mut d = vec![9, 1, 11];
        add_file.encode_into(&mut d);
        assert_eq!(reject(&d).reason, conflict);
        let blob = VersionEdit {
            keyspace: 4,
            keyspace_dropped: true,
            new_blob_files: blob_sample().new_blob_files,
            ..Default::default()
        };
        assert_eq!(reject(&blob.encode()).reason, conflict);
        // Dropped with deleted files and blob garbage: fine (drop_sample).
        let garbage = VersionEdit {
            blob_garbage: blob_sample().blob_garbage,
            ..drop_sample()
        };
        assert_eq!(
            VersionEdit::decode_versioned(&garbage.encode(), V3).unwrap(),
            garbage
        );
        // The largest id allocated is at least the edit's keyspace.
        let e = reject(&[9, 5, 12, 4]);
        assert_eq!(
            (e.offset, e.reason),
            (2, "max keyspace id below the edit's keyspace")
        );
        assert!(VersionEdit::decode_versioned(&[12, 5, 9, 5], V3).is_ok());
        // Truncations of every keyspace tag fail (but for a cut at a tag
        // boundary that leaves a shorter valid edit: `9, 1`).
        for d in [
            &[9u8, 0xac, 0x02][..],
            &[9, 1, 10, 2, b'a', b'b'],
            &[12, 0xac, 0x02],
        ] {
            for n in 1..d.len() {
                let cut = &d[..n];
                if cut != [9, 1] {
                    assert!(VersionEdit::decode_versioned(cut, V3).is_err(), "{cut:?}");
                }
            }
        }
    }

    /// A valid edit of manifest version 3: one of a few shapes of
    /// keyspace fields, on a sample's files.
    fn arb_keyspace_edit() -> impl Strategy<Value = VersionEdit> {
        (
            prop_oneof![Just(0u32), 1u32..1000, Just(u32::MAX)],
            0u8..3,
            "[a-z0-9_.-]{1,20}|\\PC{1,10}",
            proptest::option::of(0u32..3),
            any::<bool>(),
        )
            .prop_map(|(keyspace, what, name, max_above, blobs)| {
                let base = if blobs { blob_sample() } else { sample() };
                let mut e = VersionEdit {
                    keyspace,
                    max_keyspace_id: max_above.map(|a| keyspace.saturating_add(a)),
                    ..base
                };
                match (what, keyspace) {
                    (_, 0) => {}
                    (1, _) if name != DEFAULT_KEYSPACE_NAME && name.len() <= 255 => {
                        e.keyspace_added = Some(name)
                    }
                    (2, _) => {
                        e.keyspace_dropped = true;
                        e.new_files.clear();
                        e.new_blob_files.clear();
                    }
                    _ => {}
                }
                e
            })
    }

    proptest! {
        #[test]
        fn decoder_never_panics_on_random_bytes(d in proptest::collection::vec(any::<u8>(), 0..300)) {
            for v in 1..=V3 {
                if let Ok(e) = VersionEdit::decode_versioned(&d, v) {
                    // Whatever decodes re-encodes to something that decodes the same.
                    prop_assert_eq!(VersionEdit::decode_versioned(&e.encode(), v).unwrap(), e);
                }
            }
        }

        #[test]
        fn keyspace_edits_round_trip(e in arb_keyspace_edit()) {
            let d = e.encode();
            prop_assert_eq!(&VersionEdit::decode_versioned(&d, V3).unwrap(), &e);
            let older = VersionEdit::decode_versioned(&d, BLOB_MANIFEST_VERSION);
            prop_assert_eq!(older.is_ok(), !e.has_keyspace_tags());
        }

        #[test]
        fn decoder_never_panics_on_mutations(
            e in arb_keyspace_edit(),
            muts in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..5),
            cut in any::<usize>(),
        ) {
            for mut d in [sample().encode(), e.encode()] {
                for (p, x) in &muts {
                    let i = p % d.len();
                    d[i] = *x;
                }
                d.truncate(cut % (d.len() + 1));
                for v in 1..=V3 {
                    if let Ok(e) = VersionEdit::decode_versioned(&d, v) {
                        prop_assert_eq!(VersionEdit::decode_versioned(&e.encode(), v).unwrap(), e);
                    }
                }
            }
        }
    }
}
