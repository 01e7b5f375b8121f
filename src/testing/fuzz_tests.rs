//! Decoder robustness under proptest: every function of [`crate::testing::fuzzing`]
//! (one per on-disk decoder) is fed (a) random bytes and (b) valid
//! encodings mutated by bit flips, truncations, byte insertions and length
//! fields overwritten with huge values. The functions panic on any broken
//! promise (a decoder panic, or accepted bytes that do not re-encode or
//! iterate consistently), so "no panic" is the whole assertion.
//!
//! SST tables additionally get their block and footer checksums recomputed
//! after an in-place mutation, so the mutation reaches the block decoders
//! (without that it would only ever hit a checksum mismatch).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use proptest::prelude::*;

use crate::batch::WriteBatch;
use crate::coding::{checksum, put_varint64};
use crate::error::Result;
use crate::fs::WritableFile;
use crate::key::{encode_internal_key, ValueKind};
use crate::log::{LogKind, LogWriter};
use crate::options::{Compression, Options};
use crate::sst::block::{block_trailer, BlockBuilder};
use crate::sst::filter::FilterBuilder;
use crate::sst::{BlockHandle, Footer, Table, TableBuildOptions, TableBuilder, TableProperties};
use crate::testing::fuzzing;
use crate::version::current::encode_current;
use crate::version::edit::{FileMetaData, VersionEdit};

/// Collects appended bytes.
#[derive(Clone, Default)]
struct MemFile(Arc<Mutex<Vec<u8>>>);

impl WritableFile for MemFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.0.lock().extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn sync_data(&mut self) -> Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.0.lock().len() as u64
    }
}

/// One edit of a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(usize, u8),
    /// Cut the data at a position.
    Truncate(usize),
    /// Insert a byte.
    Insert(usize, u8),
    /// Overwrite bytes at a position with a huge length: a maximal varint
    /// (10 bytes), `u32::MAX` or `u64::MAX` little-endian.
    Huge(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(p, m)| Mutation::Flip(p, m)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        2 => (any::<usize>(), 0u8..4).prop_map(|(p, k)| Mutation::Huge(p, k)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..4)
}

/// Applies `muts`; returns whether every one kept the length (so
/// checksums can be fixed in place).
fn apply(data: &mut Vec<u8>, muts: &[Mutation]) -> bool {
    let mut same_len = true;
    for m in muts {
        let n = data.len();
        match *m {
            Mutation::Flip(p, x) if n > 0 => data[p % n] ^= x,
            Mutation::Truncate(p) => {
                data.truncate(p % (n + 1));
                same_len = false;
            }
            Mutation::Insert(p, b) => {
                data.insert(p % (n + 1), b);
                same_len = false;
            }
            Mutation::Huge(p, k) if n > 0 => {
                let huge: Vec<u8> = match k {
                    0 => vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                    1 => vec![0xff, 0xff, 0xff, 0x7f],
                    2 => u32::MAX.to_le_bytes().to_vec(),
                    _ => u64::MAX.to_le_bytes().to_vec(),
                };
                let p = p % n;
                for (i, b) in huge.into_iter().enumerate() {
                    if let Some(d) = data.get_mut(p + i) {
                        *d = b;
                    }
                }
            }
            _ => {}
        }
    }
    same_len
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..12)
}

/// A batch of `ops` numbered from `seq`, as a WAL record payload of log
/// format `version`.
fn batch_bytes_v(ops: &[(bool, Vec<u8>, Vec<u8>)], seq: u64, version: u32) -> Vec<u8> {
    let mut b = WriteBatch::new();
    for (put, k, v) in ops {
        if *put {
            b.put(k, v);
        } else {
            b.delete(k);
        }
    }
    b.set_sequence(seq);
    match version {
        1 => b.data().to_vec(),
        _ => b.with_wal_payload(<[u8]>::to_vec),
    }
}

fn batch_bytes(ops: &[(bool, Vec<u8>, Vec<u8>)], seq: u64) -> Vec<u8> {
    batch_bytes_v(ops, seq, 1)
}

fn batch_ops() -> impl Strategy<Value = Vec<(bool, Vec<u8>, Vec<u8>)>> {
    proptest::collection::vec((any::<bool>(), small_key(), bytes(40)), 1..12)
}

fn meta(n: u64, a: &[u8], b: &[u8]) -> FileMetaData {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    FileMetaData {
        number: n,
        file_size: n * 1000 + 7,
        smallest: encode_internal_key(lo, 9, ValueKind::Value),
        largest: encode_internal_key(hi, 3, ValueKind::Delete),
        smallest_seq: 3,
        largest_seq: 9,
        num_entries: 10,
        num_deletions: 2,
    }
}

fn edit_bytes(files: &[(u32, Vec<u8>, Vec<u8>)], deleted: &[(u32, u64)], n: u64) -> Vec<u8> {
    let e = VersionEdit {
        log_number: Some(n),
        next_file_number: Some(n + 100),
        last_sequence: Some(n * 3),
        new_files: files
            .iter()
            .enumerate()
            .map(|(i, (l, a, b))| (*l, meta(i as u64 + 1, a, b)))
            .collect(),
        deleted_files: deleted.to_vec(),
        ..VersionEdit::default()
    };
    let mut out = Vec::new();
    e.encode_into(&mut out);
    out
}

fn log_bytes(kind: LogKind, number: u64, records: &[Vec<u8>]) -> Vec<u8> {
    let f = MemFile::default();
    let mut w = LogWriter::new(Box::new(f.clone()), PathBuf::from("x"), kind, number).unwrap();
    for r in records {
        w.add_record(r).unwrap();
    }
    w.sync().unwrap();
    let d = f.0.lock().clone();
    d
}

/// (user key, newest first) → (kind, value): iterates in internal-key order.
type Model = BTreeMap<(Vec<u8>, Reverse<u64>), (ValueKind, Vec<u8>)>;

/// Sorted distinct internal keys with values, from random user keys.
fn table_entries(keys: &[(Vec<u8>, u8, bool, Vec<u8>)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut m: Model = BTreeMap::new();
    for (k, s, put, v) in keys {
        let kind = if *put {
            ValueKind::Value
        } else {
            ValueKind::Delete
        };
        let v = if *put { v.clone() } else { Vec::new() };
        m.insert((k.clone(), Reverse(u64::from(*s) + 1)), (kind, v));
    }
    m.into_iter()
        .map(|((k, Reverse(s)), (kind, v))| (encode_internal_key(&k, s, kind), v))
        .collect()
}

fn block_bytes(entries: &[(Vec<u8>, Vec<u8>)], interval: usize) -> Vec<u8> {
    let mut b = BlockBuilder::new(interval);
    for (k, v) in entries {
        b.add(k, v);
    }
    b.finish().to_vec()
}

fn table_bytes(entries: &[(Vec<u8>, Vec<u8>)], small: bool, zstd: bool) -> Vec<u8> {
    let opts = TableBuildOptions {
        block_size: if small { 64 } else { 512 },
        block_restart_interval: if small { 2 } else { 16 },
        index_page_size: if small { 64 } else { 4096 },
        bloom_bits_per_key: if small { 0 } else { 10 },
        compression: if zstd {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        },
    };
    let f = MemFile::default();
    let mut b = TableBuilder::new(Box::new(f.clone()), PathBuf::from("t.sst"), opts);
    for (k, v) in entries {
        b.add(k, v).unwrap();
    }
    b.finish().unwrap();
    let d = f.0.lock().clone();
    d
}

/// Recomputes the checksum of every block `layout` knows and of the footer.
fn fix_checksums(data: &mut [u8], handles: &[BlockHandle]) {
    for h in handles {
        let (o, s) = (h.offset as usize, h.size as usize);
        if o + s + 5 > data.len() {
            continue;
        }
        let t = block_trailer(&data[o..o + s], data[o + s]);
        data[o + s + 1..o + s + 5].copy_from_slice(&t[1..]);
    }
    let n = data.len();
    if n >= Footer::ENCODED_LEN {
        let f = n - Footer::ENCODED_LEN;
        let sum = checksum(&data[f..f + 56]).to_le_bytes();
        data[f + 56..f + 60].copy_from_slice(&sum);
    }
}

fn all_handles(data: &[u8]) -> Vec<BlockHandle> {
    let t = Table::from_bytes(PathBuf::from("t.sst"), Bytes::copy_from_slice(data)).unwrap();
    let l = t.layout().unwrap();
    let mut hs: Vec<BlockHandle> = l.data_blocks.iter().map(|b| b.handle).collect();
    for lvl in &l.index_levels {
        hs.extend(lvl.pages.iter().map(|p| p.handle));
    }
    hs.push(l.footer.properties);
    if l.footer.filter != BlockHandle::default() {
        hs.push(l.footer.filter);
    }
    hs
}

fn table_input() -> impl Strategy<Value = Vec<(Vec<u8>, u8, bool, Vec<u8>)>> {
    proptest::collection::vec((small_key(), any::<u8>(), any::<bool>(), bytes(30)), 1..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn log_random(d in bytes(300)) {
        fuzzing::decode_log(&d);
    }

    #[test]
    fn log_mutated(
        recs in proptest::collection::vec((batch_ops(), 0u64..1000), 1..6),
        manifest in any::<bool>(),
        big in any::<bool>(),
        muts in mutations(),
    ) {
        let (kind, records): (LogKind, Vec<Vec<u8>>) = if manifest {
            let r = recs.iter().map(|(ops, n)| {
                let files: Vec<_> = ops.iter().map(|(_, k, v)| (1u32, k.clone(), v.clone())).collect();
                edit_bytes(&files, &[(2, *n)], *n)
            }).collect();
            (LogKind::Manifest, r)
        } else {
            (LogKind::Wal, recs.iter().map(|(ops, s)| batch_bytes_v(ops, *s, 2)).collect())
        };
        let mut records = records;
        if big {
            // Records that span blocks (FIRST/MIDDLE/LAST fragments).
            records.push(vec![0x5a; 40_000]);
            records.push(records[0].clone());
        }
        let mut d = log_bytes(kind, 7, &records);
        apply(&mut d, &muts);
        fuzzing::decode_log(&d);
    }

    #[test]
    fn write_batch_random(d in bytes(200)) {
        fuzzing::decode_write_batch(&d);
    }

    #[test]
    fn write_batch_mutated(ops in batch_ops(), seq in 0u64..(1 << 56), muts in mutations()) {
        let mut d = batch_bytes(&ops, seq);
        fuzzing::decode_write_batch(&d);
        apply(&mut d, &muts);
        fuzzing::decode_write_batch(&d);
    }

    #[test]
    fn write_batch_v2_mutated(ops in batch_ops(), seq in 0u64..(1 << 56), muts in mutations()) {
        let mut d = batch_bytes_v(&ops, seq, 2);
        fuzzing::decode_write_batch(&d);
        apply(&mut d, &muts);
        fuzzing::decode_write_batch(&d);
    }

    #[test]
    fn version_edit_random(d in bytes(200)) {
        fuzzing::decode_version_edit(&d);
    }

    #[test]
    fn version_edit_mutated(
        files in proptest::collection::vec((0u32..70, small_key(), small_key()), 0..5),
        deleted in proptest::collection::vec((0u32..70, any::<u64>()), 0..4),
        n in any::<u64>(),
        muts in mutations(),
    ) {
        let mut d = edit_bytes(&files, &deleted, n >> 2);
        fuzzing::decode_version_edit(&d);
        apply(&mut d, &muts);
        fuzzing::decode_version_edit(&d);
    }

    #[test]
    fn current_random(d in bytes(80)) {
        fuzzing::decode_current(&d);
    }

    #[test]
    fn current_mutated(n in any::<u64>(), muts in mutations()) {
        let mut d = encode_current(n).into_bytes();
        fuzzing::decode_current(&d);
        apply(&mut d, &muts);
        fuzzing::decode_current(&d);
    }

    #[test]
    fn block_random(d in bytes(300)) {
        fuzzing::decode_block(&d);
    }

    #[test]
    fn block_mutated(
        keys in table_input(),
        interval in 1usize..5,
        mode in any::<u8>(),
        muts in mutations(),
    ) {
        let entries = table_entries(&keys);
        let index = mode & 1 != 0;
        let entries: Vec<_> = if index {
            entries.iter().enumerate().map(|(i, (k, _))| {
                let mut v = Vec::new();
                BlockHandle::new(i as u64 * 100, 90).encode_to(&mut v);
                (k.clone(), v)
            }).collect()
        } else {
            entries
        };
        let mut contents = block_bytes(&entries, interval);
        if mode & 2 != 0 && mode & 4 != 0 {
            // zstd-compressed contents.
            contents = zstd::bulk::compress(&contents, 1).unwrap();
        }
        let mut d = vec![mode & 0b111];
        d.extend_from_slice(&contents);
        fuzzing::decode_block(&d);
        let mut tail = d.split_off(1);
        apply(&mut tail, &muts);
        d.extend_from_slice(&tail);
        fuzzing::decode_block(&d);
    }

    #[test]
    fn block_handle_random(d in bytes(24)) {
        fuzzing::decode_block_handle(&d);
    }

    #[test]
    fn block_handle_mutated(o in any::<u64>(), s in any::<u64>(), muts in mutations()) {
        let mut d = Vec::new();
        BlockHandle::new(o >> (o % 64), s >> (s % 64)).encode_to(&mut d);
        fuzzing::decode_block_handle(&d);
        apply(&mut d, &muts);
        fuzzing::decode_block_handle(&d);
    }

    #[test]
    fn footer_random(d in bytes(80)) {
        fuzzing::decode_footer(&d);
    }

    #[test]
    fn footer_mutated(hs in proptest::collection::vec(any::<u64>(), 6), depth in 0u32..20, fix in any::<bool>(), muts in mutations()) {
        let f = Footer {
            index_root: BlockHandle::new(hs[0], hs[1]),
            filter: BlockHandle::new(hs[2], hs[3]),
            properties: BlockHandle::new(hs[4], hs[5]),
            index_depth: depth,
            version: 1,
        };
        let mut d = Vec::new();
        f.encode_into(&mut d);
        fuzzing::decode_footer(&d);
        let same = apply(&mut d, &muts);
        if fix && same {
            let sum = checksum(&d[..56]).to_le_bytes();
            d[56..60].copy_from_slice(&sum);
        }
        fuzzing::decode_footer(&d);
    }

    #[test]
    fn properties_random(d in bytes(200)) {
        fuzzing::decode_properties(&d);
    }

    #[test]
    fn properties_mutated(ints in proptest::collection::vec(any::<u64>(), 15), a in small_key(), b in small_key(), muts in mutations()) {
        let p = TableProperties {
            num_entries: ints[0],
            num_deletions: ints[1],
            smallest_key: a,
            largest_key: b,
            smallest_seq: ints[2],
            largest_seq: ints[3],
            raw_key_size: ints[4],
            raw_value_size: ints[5],
            data_size: ints[6],
            num_data_blocks: ints[7],
            index_size: ints[8],
            num_index_pages: ints[9],
            index_depth: ints[10] % 17,
            filter_size: ints[11],
            bloom_bits_per_key: ints[12] % 64,
            compression: "zstd:3".into(),
            creation_time: ints[13],
            num_range_deletions: ints[14] % 3,
            range_deletions_offset: ints[0] / 2,
            range_deletions_size: ints[1] / 2,
            prefix_extractor: if ints[2] % 2 == 0 { String::new() } else { "fixed:3".into() },
        };
        let mut d = Vec::new();
        p.encode_to(&mut d);
        if ints[14] % 2 == 0 {
            // An unknown (newer) tag the reader must skip.
            put_varint64(&mut d, 40);
            put_varint64(&mut d, 2);
            d.extend_from_slice(b"xy");
        }
        fuzzing::decode_properties(&d);
        apply(&mut d, &muts);
        fuzzing::decode_properties(&d);
    }

    #[test]
    fn filter_random(d in bytes(200)) {
        fuzzing::decode_filter(&d);
    }

    #[test]
    fn filter_mutated(keys in proptest::collection::vec(small_key(), 0..50), bpk in 1u32..30, muts in mutations()) {
        let mut b = FilterBuilder::new(bpk);
        for k in &keys {
            b.add(k);
        }
        for mut d in [b.finish(u64::from(bpk)), b.finish_probed()] {
            fuzzing::decode_filter(&d);
            apply(&mut d, &muts);
            fuzzing::decode_filter(&d);
        }
    }

    #[test]
    fn config_random(s in "\\PC{0,120}") {
        fuzzing::parse_config(s.as_bytes());
    }

    #[test]
    fn config_mutated(muts in mutations()) {
        let mut d = Options::default().to_toml_string().into_bytes();
        apply(&mut d, &muts);
        fuzzing::parse_config(&d);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn table_random(d in bytes(400)) {
        fuzzing::read_table(&d);
    }

    #[test]
    fn table_mutated(
        keys in table_input(),
        small in any::<bool>(),
        zstd in any::<bool>(),
        fix in any::<bool>(),
        muts in mutations(),
    ) {
        let entries = table_entries(&keys);
        let mut d = table_bytes(&entries, small, zstd);
        fuzzing::read_table(&d);
        let handles = all_handles(&d);
        let same = apply(&mut d, &muts);
        if fix && same {
            fix_checksums(&mut d, &handles);
        }
        fuzzing::read_table(&d);
    }
}

/// The fuzz target functions by target name (`fuzz/fuzz_targets/`).
fn target(name: &str) -> Option<fn(&[u8])> {
    Some(match name {
        "wal_reader" => fuzzing::decode_log,
        "write_batch" => fuzzing::decode_write_batch,
        "version_edit" => fuzzing::decode_version_edit,
        "current_file" => fuzzing::decode_current,
        "sst_table" => fuzzing::read_table,
        "block" => fuzzing::decode_block,
        "block_handle" => fuzzing::decode_block_handle,
        "footer" => fuzzing::decode_footer,
        "properties" => fuzzing::decode_properties,
        "filter" => fuzzing::decode_filter,
        "config_toml" => fuzzing::parse_config,
        _ => return None,
    })
}

/// Every input that once made a fuzz target fail
/// (`fuzz/regressions/<target>/`) and every committed seed
/// (`fuzz/corpus/<target>/seed-*`) passes its target's checks.
#[test]
fn fuzz_regressions_and_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for sub in ["regressions", "corpus"] {
        let Ok(dirs) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for d in dirs {
            let d = d.unwrap();
            let name = d.file_name().into_string().unwrap();
            let f = target(&name).unwrap_or_else(|| panic!("no fuzz target {name}"));
            for file in std::fs::read_dir(d.path()).unwrap() {
                let file = file.unwrap();
                let fname = file.file_name().into_string().unwrap();
                if sub == "corpus" && !fname.starts_with("seed-") {
                    continue;
                }
                f(&std::fs::read(file.path()).unwrap());
                n += 1;
            }
        }
    }
    assert!(
        n > 0,
        "no fuzz regression or seed found under {}",
        root.display()
    );
}

/// A table of 40 entries with `value_len`-byte values, whose block at `h`
/// (chosen from the table's handles) has restart point `i` (`None`: the
/// last) moved one byte forward, inside the entry it started, and every
/// checksum fixed. The table reader must refuse it: forward iteration
/// must not pass what backward iteration would misread.
fn assert_shifted_restart_refused(
    value_len: usize,
    pick: impl Fn(&Table, &[BlockHandle]) -> BlockHandle,
    i: Option<usize>,
) {
    let keys: Vec<(Vec<u8>, u8, bool, Vec<u8>)> = (0..40u8)
        .map(|k| (vec![b'k', k], 1, true, vec![b'v'; value_len]))
        .collect();
    let entries = table_entries(&keys);
    let mut d = table_bytes(&entries, false, false);
    let handles = all_handles(&d);
    let t = Table::from_bytes(PathBuf::from("t.sst"), Bytes::from(d.clone())).unwrap();
    let h = pick(&t, &handles);
    // The restart array ends the block: `restarts: u32 × n ‖ n: u32`.
    let end = (h.offset + h.size) as usize;
    let n = u32::from_le_bytes(d[end - 4..end].try_into().unwrap()) as usize;
    assert!(n >= 2);
    let at = end - 4 - 4 * n + 4 * i.unwrap_or(n - 1);
    let r = u32::from_le_bytes(d[at..at + 4].try_into().unwrap());
    d[at..at + 4].copy_from_slice(&(r + 1).to_le_bytes());
    fix_checksums(&mut d, &handles);
    fuzzing::read_table(&d);
    let t = Table::from_bytes(PathBuf::from("t.sst"), Bytes::from(d)).unwrap();
    let e = t.verify().unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert!(
        e.to_string().contains("restart point inside an entry"),
        "{e}"
    );
}

/// A data block whose second restart point lies inside an entry.
#[test]
fn misaligned_restart_point_is_refused() {
    assert_shifted_restart_refused(5, |_, hs| hs[0], Some(1));
}

/// Every footer version this build reads passes the footer target: format
/// 2 (the cache-local filter) once failed its "version 1" check when a
/// mutation landed on the version field and the checksum was fixed.
#[test]
fn footer_of_every_readable_version_passes() {
    for version in 1..=crate::sst::footer::FORMAT_VERSION {
        let f = Footer {
            index_root: BlockHandle::new(0, 100),
            filter: BlockHandle::new(105, 40),
            properties: BlockHandle::new(150, 60),
            index_depth: 1,
            version,
        };
        let mut d = Vec::new();
        f.encode_into(&mut d);
        fuzzing::decode_footer(&d);
    }
}

/// An index page whose last restart point lies inside its last entry:
/// forward iteration once ended cleanly on it while backward iteration
/// decoded from the middle of the entry (found by `table_mutated`).
#[test]
fn restart_point_inside_last_index_entry_is_refused() {
    assert_shifted_restart_refused(20, |t, _| t.layout().unwrap().footer.index_root, None);
}
