//! Entry points into every on-disk decoder, for fuzzing (cargo feature
//! `testing`).
//!
//! Each function feeds arbitrary bytes to one decoder and checks what the
//! decoder promises (docs/format.md): it never panics, it rejects what it
//! cannot prove valid with [`crate::Error::Corruption`] (or
//! [`crate::Error::UnsupportedVersion`] / a decode error), and what it
//! accepts is consistent: it re-encodes to the same value, iterates the same
//! forwards and backwards, finds every key it iterates. **A panic in any of
//! these functions is a bug**, either in a decoder or in what it accepted.
//!
//! The cargo-fuzz targets under `fuzz/` call one function each; the crate's
//! tests run them on random and mutated valid encodings under proptest.
//!
//! Builds made by `cargo fuzz` (`--cfg fuzzing`) do not enforce the
//! checksums of log fragments, SST blocks and SST footers, so mutations
//! reach the decoders behind them; the checks here do not rely on them.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::batch::WriteBatch;
use crate::error::Error;
use crate::iter::InternalIterator;
use crate::key::{compare_internal, parse_internal_key, MAX_SEQUENCE};
use crate::log::{LogKind, LogReader};
use crate::sst::block::{read_block, valid_ikey, Block, BlockIter};
use crate::sst::filter::{FilterBuilder, FilterFormat, FilterReader};
use crate::sst::footer::FORMAT_VERSION;
use crate::sst::{BlockHandle, Footer, Table, TableProperties};
use crate::version::current::{encode_current, parse_current};
use crate::version::edit::VersionEdit;

/// Most entries a table or block is walked for (keeps one input fast).
const MAX_ENTRIES: usize = 20_000;

fn allowed(e: &Error) -> bool {
    e.is_corruption() || matches!(e, Error::UnsupportedVersion { .. })
}

/// A log file (WAL and manifest framing): opens `data` as a write-ahead
/// log and as a manifest (the expected file number is taken from the
/// header, so a well-formed header passes) and reads every record; WAL
/// records are decoded as write batches, manifest records as version edits.
/// Checks: records lie in the file in increasing order, a torn tail lies
/// inside the file, corruption is sticky, the end stays the end.
pub fn decode_log(data: &[u8]) {
    let number = data
        .get(19..27)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    for kind in [LogKind::Wal, LogKind::Manifest] {
        let bytes = Bytes::copy_from_slice(data);
        let mut r = match LogReader::new(PathBuf::from("000001.log"), bytes, kind, number) {
            Ok(r) => r,
            Err(e) => {
                assert!(allowed(&e), "log header: unexpected error {e}");
                continue;
            }
        };
        let mut prev_end = 0u64;
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    assert!(rec.offset >= prev_end, "records out of order");
                    assert!(rec.offset < data.len() as u64);
                    assert!(rec.payload.len() <= data.len());
                    prev_end = rec.offset + 1;
                    match kind {
                        LogKind::Wal => decode_write_batch(&rec.payload),
                        LogKind::Manifest => decode_version_edit(&rec.payload),
                    }
                }
                Ok(None) => {
                    if let Some(t) = r.torn_tail() {
                        assert!(t.offset <= data.len() as u64);
                    }
                    assert!(matches!(r.next_record(), Ok(None)), "end is not sticky");
                    break;
                }
                Err(e) => {
                    assert!(e.is_corruption(), "log record: unexpected error {e}");
                    assert!(r.next_record().is_err(), "corruption is not sticky");
                    break;
                }
            }
        }
    }
}

/// A WAL record payload ([`WriteBatch`]), decoded as each WAL format
/// version (1: fixed header, 2: varint header, 3: range deletions, 4:
/// operations in a keyspace). An accepted batch encodes
/// back to exactly the input bytes in that version, holds `count`
/// operations within the limits, and has sequence numbers inside the
/// 56-bit range.
pub fn decode_write_batch(data: &[u8]) {
    for version in 1..=LogKind::Wal.format_version() {
        let Ok(mut b) = WriteBatch::from_wal_record(data, version) else {
            continue;
        };
        let encoded = |b: &mut WriteBatch| match version {
            1 => b.data().to_vec(),
            _ => b.with_wal_payload(<[u8]>::to_vec),
        };
        assert_eq!(
            encoded(&mut b),
            data,
            "accepted batch differs from its bytes"
        );
        assert_eq!(
            b.iter().count(),
            b.len(),
            "batch count differs from its ops"
        );
        assert!(b.check_limits().is_ok(), "accepted batch breaks the limits");
        if !b.is_empty() {
            assert!(b.sequence() + b.len() as u64 - 1 <= MAX_SEQUENCE);
        }
        let mut again = WriteBatch::new();
        for op in b.iter() {
            match op.kind {
                crate::batch::OpKind::PutTimed | crate::batch::OpKind::PutBlob => {
                    again.push_copy(&op)
                }
                crate::batch::OpKind::Put => again.put_in_id(op.keyspace, op.key, op.value),
                crate::batch::OpKind::Delete => again.delete_in_id(op.keyspace, op.key),
                crate::batch::OpKind::Merge => again.merge_in_id(op.keyspace, op.key, op.value),
                crate::batch::OpKind::DeleteRange => {
                    assert!(op.key < op.value, "accepted an empty range deletion");
                    again.push_range_tombstone_in(op.keyspace, op.key, op.value)
                }
            }
        }
        again.set_sequence(b.sequence());
        assert_eq!(
            encoded(&mut again),
            data,
            "batch does not re-encode to its bytes"
        );
    }
}

/// A manifest record payload ([`VersionEdit`]), decoded as each manifest
/// format version. An accepted edit encodes to bytes that decode to the
/// same edit.
pub fn decode_version_edit(data: &[u8]) {
    for version in 1..=LogKind::Manifest.format_version() {
        let Ok(e) = VersionEdit::decode_versioned(data, version) else {
            continue;
        };
        let mut buf = Vec::new();
        e.encode_into(&mut buf);
        let again =
            VersionEdit::decode_versioned(&buf, version).expect("re-encoded edit does not decode");
        assert_eq!(again, e, "edit does not round-trip");
    }
}

/// A `CURRENT` file. An accepted one is exactly what the writer writes for
/// the manifest number it names.
pub fn decode_current(data: &[u8]) {
    match parse_current(Path::new("CURRENT"), data) {
        Ok(n) => assert_eq!(
            encode_current(n).as_bytes(),
            data,
            "accepted CURRENT is not canonical"
        ),
        Err(e) => assert!(allowed(&e), "CURRENT: unexpected error {e}"),
    }
}

/// A block (data block or index page). The first byte selects the mode:
/// bit 0 treats the block as an index page (values are block handles); bit
/// 1 reads the rest as stored contents through the block reader, with
/// compression type `(byte >> 2) & 3` and a valid checksum (so zstd frames
/// are decoded); otherwise the rest is uncompressed block contents.
/// Checks: every entry has a valid internal key; a block whose restart
/// points are entry starts and whose keys increase iterates the same both
/// ways and finds every key by seek.
pub fn decode_block(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let index = mode & 1 != 0;
    let block = if mode & 2 != 0 {
        let ctype = (mode >> 2) & 3;
        let mut file = rest.to_vec();
        file.extend_from_slice(&crate::sst::block::block_trailer(rest, ctype));
        let len = file.len() as u64;
        let h = BlockHandle::new(0, rest.len() as u64);
        let file = crate::sst::table_data::TableData::Whole(Bytes::from(file));
        match read_block(Path::new("f.sst"), &file, len, h, "block") {
            Ok(b) => b,
            Err(e) => {
                assert!(e.is_corruption(), "block: unexpected error {e}");
                return;
            }
        }
    } else {
        match Block::new(Bytes::copy_from_slice(rest), 0, false) {
            Ok(b) => b,
            Err(_) => return,
        }
    };
    check_block(block, index);
}

fn check_block(block: Block, index: bool) {
    let restarts = block.restart_offsets();
    let mut it = BlockIter::new(block, Vec::new());
    it.seek_to_first();
    let mut fwd: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
    while it.valid() && fwd.len() < MAX_ENTRIES {
        assert!(valid_ikey(it.key()), "block yields an invalid internal key");
        if index {
            let _ = BlockHandle::decode_exact(it.value());
        }
        fwd.push((it.entry_offset(), it.key().to_vec(), it.value().to_vec()));
        it.next();
    }
    let complete = !it.valid() && it.error().is_none();
    let well_formed = complete
        && restarts
            .iter()
            .all(|r| fwd.iter().any(|(off, _, _)| off == r))
        && fwd
            .windows(2)
            .all(|w| matches!(w, [a, b] if compare_internal(&a.1, &b.1) == Ordering::Less));
    // Whatever the block holds, these must not panic.
    it.seek_to_last();
    let mut n = 0;
    let mut back = Vec::new();
    while it.valid() && n < MAX_ENTRIES {
        back.push((it.entry_offset(), it.key().to_vec(), it.value().to_vec()));
        it.prev();
        n += 1;
    }
    let back_err = it.error();
    if !well_formed {
        for (_, k, _) in fwd.iter().take(64) {
            it.seek(k);
        }
        return;
    }
    assert!(
        back_err.is_none(),
        "backward iteration fails where forward did not"
    );
    back.reverse();
    assert_eq!(back, fwd, "backward iteration differs from forward");
    for (i, (_, k, v)) in fwd.iter().enumerate() {
        it.seek(k);
        assert!(it.valid() && it.error().is_none(), "seek misses a key");
        assert_eq!(it.key(), &k[..]);
        assert_eq!(it.value(), &v[..]);
        if i > 0 {
            it.prev();
            assert!(it.valid());
            assert_eq!(it.key(), fwd.get(i - 1).map_or(&[][..], |e| &e.1[..]));
        }
    }
}

/// A block handle (index entry value). An accepted handle re-encodes to
/// exactly its bytes (varints are minimal).
pub fn decode_block_handle(data: &[u8]) {
    let Ok(h) = BlockHandle::decode_exact(data) else {
        return;
    };
    let mut buf = Vec::new();
    h.encode_to(&mut buf);
    assert_eq!(buf, data, "handle does not re-encode to its bytes");
    let _ = h.end_with_trailer();
}

/// An SST footer (the last 68 bytes of a file). An accepted footer has a
/// depth in 1..=64, a version this build reads (1..=`FORMAT_VERSION`), and
/// re-encodes to the input.
pub fn decode_footer(data: &[u8]) {
    let len = data.len() as u64 + 4096;
    match Footer::decode_from(data, Path::new("f.sst"), len) {
        Ok(f) => {
            assert!((1..=64).contains(&f.index_depth));
            assert!((1..=FORMAT_VERSION).contains(&f.version));
            let mut buf = Vec::new();
            f.encode_into(&mut buf);
            // Bytes 56..60 are the checksum, not enforced in fuzzing builds.
            assert_eq!(buf.get(..56), data.get(..56), "footer does not re-encode");
            assert_eq!(buf.get(60..), data.get(60..), "footer does not re-encode");
            if !cfg!(fuzzing) {
                assert_eq!(buf, data);
            }
        }
        Err(e) => assert!(allowed(&e), "footer: unexpected error {e}"),
    }
}

/// An SST properties block. Accepted properties re-encode to bytes that
/// decode to the same properties.
pub fn decode_properties(data: &[u8]) {
    let Ok(p) = TableProperties::decode(data) else {
        return;
    };
    let mut buf = Vec::new();
    p.encode_to(&mut buf);
    assert_eq!(
        TableProperties::decode(&buf).ok().as_ref(),
        Some(&p),
        "properties do not round-trip"
    );
}

/// A bloom filter block. An accepted filter answers for any key; and a
/// filter built from keys cut out of the input (bits per key from the
/// first byte) knows every one of them (no false negatives).
pub fn decode_filter(data: &[u8]) {
    for layout in [FilterFormat::Probed, FilterFormat::CacheLocal] {
        if let Ok(f) = FilterReader::new(Bytes::copy_from_slice(data), layout) {
            assert!(f.num_bytes() >= 8 && (1..=30).contains(&f.num_probes()));
            for k in data.chunks(5).take(64) {
                let _ = f.may_contain(k);
            }
        }
    }
    let Some((&bpk, rest)) = data.split_first() else {
        return;
    };
    let bits_per_key = u32::from(bpk % 40) + 1;
    let mut b = FilterBuilder::new(bits_per_key);
    let keys: Vec<&[u8]> = rest.chunks(3).take(4096).collect();
    for k in &keys {
        b.add(k);
    }
    // Any start offset: the padding that aligns the bits varies with it.
    let offset = u64::from(bpk);
    let f = FilterReader::new(Bytes::from(b.finish(offset)), FilterFormat::CacheLocal)
        .expect("built filter is refused");
    for k in &keys {
        assert!(f.may_contain(k), "filter false negative");
    }
}

/// A whole SST file, opened from bytes. Reads everything: iterates both
/// ways, verifies, looks up keys, seeks, and describes the layout. When
/// `Table::verify` accepts the file, iteration must succeed in both
/// directions with the same entries as many as the properties say, and
/// every entry must be found by `get` (with model semantics: the first
/// entry of the user key at or below the sequence number) and by `seek`.
pub fn read_table(data: &[u8]) {
    let t = match Table::from_bytes(PathBuf::from("000001.sst"), Bytes::copy_from_slice(data)) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            assert!(allowed(&e), "table open: unexpected error {e}");
            return;
        }
    };
    let mut it = t.iter();
    it.seek_to_first();
    let mut fwd: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while it.valid() && fwd.len() < MAX_ENTRIES {
        fwd.push((it.key().to_vec(), it.value().to_vec()));
        it.next();
    }
    let truncated = it.valid();
    let fwd_status = it.status();
    if let Err(e) = &fwd_status {
        assert!(e.is_corruption(), "iteration: unexpected error {e}");
    }
    let verified = t.verify();
    if let Err(e) = &verified {
        assert!(e.is_corruption(), "verify: unexpected error {e}");
    }
    let _ = t.layout();
    let Ok(report) = verified else {
        // Damaged: reading must still not panic.
        it.seek_to_last();
        let mut n = 0;
        while it.valid() && n < MAX_ENTRIES {
            it.prev();
            n += 1;
        }
        for (k, _) in fwd.iter().take(256) {
            if let Some(p) = parse_internal_key(k) {
                let _ = t.get(p.user_key, p.seq);
            }
            it.seek(k);
            it.seek_for_prev(k);
        }
        return;
    };
    assert!(
        fwd_status.is_ok(),
        "verify accepts a table iteration rejects"
    );
    if truncated {
        return;
    }
    assert_eq!(fwd.len() as u64, report.num_entries);
    assert_eq!(fwd.len() as u64, t.properties().num_entries);
    it.seek_to_last();
    let mut back = Vec::new();
    while it.valid() && back.len() <= fwd.len() {
        back.push((it.key().to_vec(), it.value().to_vec()));
        it.prev();
    }
    assert!(
        it.status().is_ok(),
        "verify accepts a table backward iteration rejects"
    );
    back.reverse();
    assert!(back == fwd, "backward iteration differs from forward");
    for (i, (k, v)) in fwd.iter().enumerate().take(2000) {
        let p = parse_internal_key(k).expect("verified table holds a bad key");
        let want = fwd
            .iter()
            .filter_map(|(k2, v2)| parse_internal_key(k2).map(|p2| (p2, v2)))
            .find(|(p2, _)| p2.user_key == p.user_key && p2.seq <= p.seq)
            .map(|(p2, v2)| (p2.seq, p2.kind, v2.clone()));
        let got = t
            .get(p.user_key, p.seq)
            .expect("get fails on a verified table")
            .map(|(s, kind, v)| (s, kind, v.to_vec()));
        assert_eq!(got, want, "get differs from the entries");
        it.seek(k);
        assert!(it.valid(), "seek misses a key");
        assert_eq!(it.key(), &k[..]);
        assert_eq!(it.value(), &v[..]);
        if i > 0 {
            it.prev();
            assert!(it.valid(), "prev after seek ends early");
            assert_eq!(Some(it.key()), fwd.get(i - 1).map(|e| &e.0[..]));
        }
    }
}

/// A TOML configuration file ([`crate::Options::from_toml_str`]). Accepted
/// options are valid, and their TOML form reads back to the same options.
pub fn parse_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match crate::Options::from_toml_str(text) {
        Ok(o) => {
            assert!(o.validate().is_ok(), "accepted options are invalid");
            let s = o.to_toml_string();
            let again = crate::Options::from_toml_str(&s).expect("own TOML refused");
            assert_eq!(again.to_toml_string(), s, "options do not round-trip");
        }
        Err(e) => assert!(
            matches!(e, Error::InvalidArgument(_)),
            "config: unexpected error {e}"
        ),
    }
}
