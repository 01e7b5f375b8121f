//! Whole-table tests: round trips against a `BTreeMap` model, index depth,
//! large values, and corruption (byte flips, truncation, foreign files).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::error::{Error, Result};
use crate::fs::{FileSystem, PosixFs, WritableFile};
use crate::iter::InternalIterator;
use crate::key::{compare_internal, encode_internal_key, SeqNo, ValueKind, MAX_SEQUENCE};
use crate::options::Compression;

/// An in-memory writable file for building tables without a file system.
#[derive(Clone, Default)]
struct MemFile(Arc<Mutex<Vec<u8>>>);

impl WritableFile for MemFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn sync_data(&mut self) -> Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
}

/// Model: (user key, Reverse(seq)) → (kind, value); iteration order equals
/// internal-key order because each (user key, seq) appears once.
type Model = BTreeMap<(Vec<u8>, Reverse<u64>), (ValueKind, Vec<u8>)>;

fn entries(m: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.iter()
        .map(|((k, Reverse(s)), (kind, v))| (encode_internal_key(k, *s, *kind), v.clone()))
        .collect()
}

fn build(m: &Model, opts: TableBuildOptions) -> (Bytes, TableProperties) {
    let f = MemFile::default();
    let mut b = TableBuilder::new(Box::new(f.clone()), PathBuf::from("mem.sst"), opts);
    for (k, v) in entries(m) {
        b.add(&k, &v).unwrap();
    }
    let (props, size) = b.finish().unwrap();
    let data = f.0.lock().unwrap().clone();
    assert_eq!(size, data.len() as u64);
    (Bytes::from(data), props)
}

fn open(data: Bytes) -> Result<Arc<Table>> {
    Table::from_bytes(PathBuf::from("mem.sst"), data).map(Arc::new)
}

/// The same table opened for `pread`s (`allow_mmap_reads = false`), from
/// an in-memory file system.
fn open_pread(data: &Bytes) -> Arc<Table> {
    let fs = crate::testing::MemFs::new();
    let path = PathBuf::from("/mem.sst");
    let mut f = fs.create(&path).unwrap();
    f.append(data).unwrap();
    drop(f);
    Arc::new(Table::open_pread(&fs, &path).unwrap())
}

fn model_get(m: &Model, uk: &[u8], seq: SeqNo) -> Option<(SeqNo, ValueKind, Vec<u8>)> {
    m.range((uk.to_vec(), Reverse(seq))..=(uk.to_vec(), Reverse(0)))
        .next()
        .map(|((_, Reverse(s)), (k, v))| (*s, *k, v.clone()))
}

fn small_opts(block: usize, page: usize, zstd: bool) -> TableBuildOptions {
    TableBuildOptions {
        block_size: block,
        block_restart_interval: 3,
        index_page_size: page,
        bloom_bits_per_key: 10,
        compression: if zstd {
            Compression::Zstd { level: 1 }
        } else {
            Compression::None
        },
    }
}

fn simple_model(n: u32) -> Model {
    let mut m = Model::new();
    for i in 0..n {
        let k = format!("key{:06}", i * 7).into_bytes();
        m.insert(
            (k.clone(), Reverse(u64::from(i) + 10)),
            (
                ValueKind::Value,
                format!("value-{i}-").repeat(i as usize % 5).into_bytes(),
            ),
        );
        if i % 3 == 0 {
            m.insert(
                (k, Reverse(u64::from(i) + 5)),
                (ValueKind::Delete, Vec::new()),
            );
        }
    }
    m
}

/// Checks everything a reader can observe against the model, for the
/// table as given and, when it is held whole, opened for `pread`s too.
fn check_table(t: &Arc<Table>, m: &Model) {
    check_table_reads(t, m);
    if let Some(data) = t.data.whole() {
        check_table_reads(&open_pread(data), m);
    }
}

fn check_table_reads(t: &Arc<Table>, m: &Model) {
    let es = entries(m);
    // Point reads of every present key at several snapshots.
    for ((uk, Reverse(s)), _) in m.iter() {
        for seq in [*s, s + 1, s.saturating_sub(1), MAX_SEQUENCE] {
            let got = t.get(uk, seq).unwrap().map(|(s, k, v)| (s, k, v.to_vec()));
            assert_eq!(got, model_get(m, uk, seq), "get {uk:?} @ {seq}");
        }
    }
    // Forward and backward scans.
    let mut it = t.iter();
    it.seek_to_first();
    for (k, v) in &es {
        assert!(it.valid(), "{:?}", it.status());
        assert_eq!(it.key(), &k[..]);
        assert_eq!(it.value(), &v[..]);
        it.next();
    }
    assert!(!it.valid());
    it.status().unwrap();
    it.seek_to_last();
    for (k, v) in es.iter().rev() {
        assert!(it.valid());
        assert_eq!(it.key(), &k[..]);
        assert_eq!(&it.value_bytes()[..], &v[..]);
        it.prev();
    }
    assert!(!it.valid());
    it.status().unwrap();
    let r = t.verify().unwrap();
    assert_eq!(r.num_entries, es.len() as u64);
}

fn check_seek(t: &Arc<Table>, es: &[(Vec<u8>, Vec<u8>)], target: &[u8]) {
    let mut it = t.iter();
    let i = es.partition_point(|(k, _)| compare_internal(k, target) == Ordering::Less);
    it.seek(target);
    match es.get(i) {
        Some((k, _)) => assert_eq!(it.key(), &k[..]),
        None => assert!(!it.valid()),
    }
    let j = es.partition_point(|(k, _)| compare_internal(k, target) != Ordering::Greater);
    it.seek_for_prev(target);
    if j == 0 {
        assert!(!it.valid());
    } else {
        assert_eq!(it.key(), &es[j - 1].0[..]);
    }
    it.status().unwrap();
}

#[test]
fn table_and_iterator_are_shareable() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Table>();
    send::<crate::sst::reader::TableIterator>();
}

#[test]
fn small_table_round_trip() {
    for zstd in [false, true] {
        let m = simple_model(500);
        let (data, props) = build(&m, small_opts(512, 256, zstd));
        assert_eq!(props.num_entries, m.len() as u64);
        let t = open(data).unwrap();
        assert_eq!(t.properties(), &props);
        check_table(&t, &m);
        assert_eq!(t.get(b"nope", MAX_SEQUENCE).unwrap(), None);
        assert_eq!(t.get(b"key0000005", MAX_SEQUENCE).unwrap(), None);
        assert_eq!(t.get(b"", MAX_SEQUENCE).unwrap(), None);
        assert_eq!(t.get(b"\xff\xff", MAX_SEQUENCE).unwrap(), None);
        // Below the first version of a key: nothing visible.
        assert_eq!(t.get(b"key000007", 0).unwrap(), None);
        let es = entries(&m);
        for (k, _) in es.iter().step_by(7) {
            check_seek(&t, &es, k);
        }
    }
}

/// Files of format version 1 (the probed bloom filter) still read, and
/// their filter still rejects absent keys.
#[test]
fn format_version_1_tables_still_read() {
    let m = simple_model(2000);
    let f = MemFile::default();
    let mut b = TableBuilder::new(
        Box::new(f.clone()),
        PathBuf::from("mem.sst"),
        small_opts(512, 256, false),
    )
    .with_format_version(1);
    for (k, v) in entries(&m) {
        b.add(&k, &v).unwrap();
    }
    b.finish().unwrap();
    let data = Bytes::from(f.0.lock().unwrap().clone());
    let t = open(data).unwrap();
    assert_eq!(t.footer().version, 1);
    let layout = t.layout().unwrap();
    assert!(!layout.filter.as_ref().unwrap().cache_local);
    check_table(&t, &m);
    assert_filter_rejects_absent_keys(&t);
}

/// The table's filter turns away more than 95 % of 2000 absent keys.
fn assert_filter_rejects_absent_keys(t: &Table) {
    let rejected = (0..2000)
        .filter(|i| !t.may_contain(format!("absent{i}").as_bytes()))
        .count();
    assert!(
        rejected > 1900,
        "the filter rejected only {rejected} of 2000"
    );
}

/// The current format writes the cache-local filter with its bits on a
/// 64-byte file offset, and that filter rejects absent keys.
#[test]
fn cache_local_filter_is_line_aligned() {
    for n in [1, 37, 2000] {
        let m = simple_model(n);
        let (data, _) = build(&m, small_opts(512, 256, false));
        let t = open(data.clone()).unwrap();
        assert_eq!(t.footer().version, super::footer::PLAIN_FORMAT_VERSION);
        let fl = t.layout().unwrap().filter.unwrap();
        assert!(fl.cache_local);
        // Contents end with num_probes and the padding length.
        let end = (fl.handle.offset + fl.handle.size) as usize;
        let pad = u64::from(data[end - 1]);
        assert_eq!((fl.handle.offset + pad) % 64, 0, "{n} keys");
        assert_eq!(fl.num_bytes % 64, 0);
        check_table(&t, &m);
        assert_filter_rejects_absent_keys(&t);
    }
}

#[test]
fn index_is_a_multi_level_tree() {
    let m = simple_model(20_000);
    let (data, props) = build(&m, small_opts(4096, 4096, false));
    assert!(props.num_data_blocks > 200, "{props:?}");
    assert!(props.index_depth >= 2, "{props:?}");
    let t = open(data).unwrap();
    check_table(&t, &m);
    let layout = t.layout().unwrap();
    assert_eq!(layout.index_levels.len() as u64, props.index_depth);
    assert_eq!(layout.index_levels[0].pages.len(), 1);
    assert_eq!(layout.data_blocks.len() as u64, props.num_data_blocks);
    let pages: usize = layout.index_levels.iter().map(|l| l.pages.len()).sum();
    assert_eq!(pages as u64, props.num_index_pages);
    for l in &layout.index_levels {
        for p in &l.pages {
            assert!(p.entries >= 2 || l.pages.len() == 1);
            assert_eq!(p.entries, p.separators.len());
        }
    }
    let entries: usize = layout.data_blocks.iter().map(|b| b.entries).sum();
    assert_eq!(entries, m.len());
    let f = layout.filter.unwrap();
    assert_eq!(f.num_probes, 7);
    assert_eq!(f.bits_per_key, 10);
    assert_eq!(f.handle, t.footer().filter);
    assert!(f.num_bytes * 8 >= 10 * m.len() / 2);
    assert_eq!(layout.file_size, t.file_size());
    assert_eq!(layout.footer, *t.footer());
    assert_eq!(&layout.properties, t.properties());
    assert_eq!(layout.index_levels[0].level as u64, props.index_depth);
    assert_eq!(
        layout.index_levels[0].pages[0].handle,
        t.footer().index_root
    );
    assert!(layout.index_levels.iter().all(|l| l
        .pages
        .iter()
        .all(|p| p.compression == "none" && p.uncompressed_size > 0)));
    let mut end = 0;
    for b in &layout.data_blocks {
        assert!(b.handle.offset >= end);
        end = b.handle.offset + b.stored_size;
        assert_eq!(b.uncompressed_size, b.handle.size);
        assert_eq!(b.restarts, b.entries.div_ceil(3));
    }
    assert_eq!(t.path(), std::path::Path::new("mem.sst"));

    // Tiny blocks and pages: a deep tree.
    let m = simple_model(300);
    let (data, props) = build(&m, small_opts(32, 32, false));
    assert!(props.index_depth >= 3, "{props:?}");
    check_table(&open(data).unwrap(), &m);
}

#[test]
fn large_values_get_own_blocks_and_are_zero_copy() {
    let mut m = Model::new();
    m.insert(
        (b"a".to_vec(), Reverse(1)),
        (ValueKind::Value, b"small".to_vec()),
    );
    m.insert(
        (b"b".to_vec(), Reverse(2)),
        (ValueKind::Value, vec![7u8; 3 << 20]),
    );
    m.insert(
        (b"c".to_vec(), Reverse(3)),
        (ValueKind::Value, b"small".to_vec()),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000001.sst");
    let fs = PosixFs;
    let opts = TableBuildOptions::for_level(&crate::options::Options::default(), 0);
    assert_eq!(opts, TableBuildOptions::default());
    let mut b = TableBuilder::new(fs.create(&path).unwrap(), path.clone(), opts);
    for (k, v) in entries(&m) {
        b.add(&k, &v).unwrap();
    }
    assert!(b.estimated_file_size() > 3 << 20);
    assert_eq!(b.num_entries(), 3);
    let (props, size) = b.finish().unwrap();
    assert_eq!(props.num_data_blocks, 3);
    assert_eq!(size, fs.file_size(&path).unwrap());
    let t = Arc::new(Table::open(&fs, &path).unwrap());
    check_table(&t, &m);
    let (_, _, v) = t.get(b"b", 10).unwrap().unwrap();
    let file = fs.read_file(&path).unwrap();
    drop(file);
    // The value lies inside the table's mapping.
    let base = t.file_bytes().as_ptr() as usize;
    let p = v.as_ptr() as usize;
    assert!(p >= base && p + v.len() <= base + t.file_bytes().len());
}

#[test]
fn zstd_tables_compress() {
    let mut m = Model::new();
    for i in 0..2000u64 {
        m.insert(
            (format!("k{i:08}").into_bytes(), Reverse(i)),
            (ValueKind::Value, b"abcdefgh".repeat(20)),
        );
    }
    let (plain, _) = build(&m, small_opts(4096, 4096, false));
    let (packed, props) = build(&m, small_opts(4096, 4096, true));
    assert!(
        packed.len() * 3 < plain.len(),
        "{} vs {}",
        packed.len(),
        plain.len()
    );
    assert_eq!(props.compression, "zstd:1");
    let t = open(packed).unwrap();
    check_table(&t, &m);
    assert!(t
        .layout()
        .unwrap()
        .data_blocks
        .iter()
        .all(|b| b.compression == "zstd"));
}

#[test]
fn builder_rejects_bad_input() {
    let f = MemFile::default();
    let b = TableBuilder::new(
        Box::new(f.clone()),
        PathBuf::from("e.sst"),
        TableBuildOptions::default(),
    );
    assert!(matches!(b.finish(), Err(crate::Error::InvalidArgument(_))));
    let mut b = TableBuilder::new(
        Box::new(f),
        PathBuf::from("e.sst"),
        TableBuildOptions::default(),
    );
    assert!(b.add(b"short", b"").is_err());
}

fn assert_corruption<T: std::fmt::Debug>(r: Result<T>) {
    match r {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(v) => panic!("expected corruption, got {v:?}"),
    }
}

/// A block handle that runs past the end of the file, or whose end does
/// not fit in 64 bits, is a corruption error, never a panic or a wrapped
/// offset.
#[test]
fn handles_past_the_file_are_corruption() {
    let m = simple_model(50);
    let (data, _) = build(&m, small_opts(512, 256, false));
    let t = open(data.clone()).unwrap();
    let len = data.len() as u64;
    for h in [
        BlockHandle::new(u64::MAX - 2, 10),
        BlockHandle::new(3, u64::MAX),
        BlockHandle::new(len - 3, 100),
        BlockHandle::new(len + 100, 1),
    ] {
        assert_corruption(t.read_block(h, "data block", crate::cache::Access::Point));
    }
}

#[test]
fn foreign_files_are_refused() {
    assert_corruption(open(Bytes::new()));
    assert_corruption(open(Bytes::from_static(b"short")));
    let noise: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    assert_corruption(open(Bytes::from(noise.clone())));
    let mut fake = noise;
    fake.extend_from_slice(b"LIGHTSST");
    let e = open(Bytes::from(fake)).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    let e = open(Bytes::from_static(b"0123")).unwrap_err();
    assert!(e.to_string().contains("not an SST file"), "{e}");
}

/// Opens `data` and reads everything; every observation must be correct or
/// a `Corruption` error. Never a panic, never a wrong value.
fn read_all_or_corruption(data: Bytes, m: &Model) {
    let t = match open(data) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                e.is_corruption() || matches!(e, crate::Error::UnsupportedVersion { .. }),
                "{e}"
            );
            return;
        }
    };
    let es = entries(m);
    let mut it = t.iter();
    it.seek_to_first();
    let mut i = 0;
    while it.valid() {
        assert_eq!((it.key(), it.value()), (&es[i].0[..], &es[i].1[..]));
        i += 1;
        it.next();
    }
    if i != es.len() {
        assert!(it.status().unwrap_err().is_corruption());
    }
    it.seek_to_last();
    let mut i = es.len();
    while it.valid() {
        i -= 1;
        assert_eq!((it.key(), it.value()), (&es[i].0[..], &es[i].1[..]));
        it.prev();
    }
    if i != 0 {
        assert!(it.status().unwrap_err().is_corruption());
    }
    for ((uk, Reverse(s)), _) in m.iter() {
        match t.get(uk, *s) {
            Ok(got) => assert_eq!(
                got.map(|(s, k, v)| (s, k, v.to_vec())),
                model_get(m, uk, *s)
            ),
            Err(e) => assert!(e.is_corruption(), "{e}"),
        }
    }
    // Every byte of a file is covered by a checksum, so a damaged file that
    // still opens fails verification.
    assert!(t.verify().unwrap_err().is_corruption());
    let _ = t.layout();
}

#[test]
fn byte_flips_and_truncations_are_detected() {
    for zstd in [false, true] {
        let m = simple_model(40);
        let (data, props) = build(&m, small_opts(128, 64, zstd));
        assert!(props.index_depth >= 2);
        let orig = data.to_vec();
        for i in 0..orig.len() {
            for x in [0x01u8, 0x80] {
                let mut b = orig.clone();
                b[i] ^= x;
                read_all_or_corruption(Bytes::from(b), &m);
            }
        }
        for n in 0..orig.len() {
            let r = open(Bytes::copy_from_slice(&orig[..n]));
            assert_corruption(r.map(|_| ()));
        }
    }
}

#[test]
fn byte_flips_in_a_bigger_table() {
    let m = simple_model(3000);
    let (data, _) = build(&m, small_opts(1024, 512, false));
    let orig = data.to_vec();
    for i in (0..orig.len()).step_by(97) {
        let mut b = orig.clone();
        b[i] ^= 0x20;
        read_all_or_corruption(Bytes::from(b), &m);
    }
}

#[test]
fn oversized_zstd_frames_are_refused() {
    // A frame header claiming 300 MiB of content: refused before allocating.
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    frame.extend_from_slice(&(300u64 << 20).to_le_bytes());
    frame.extend_from_slice(&[0; 8]);
    let mut file = frame.clone();
    file.extend_from_slice(&super::block::block_trailer(&frame, 1));
    let len = file.len() as u64;
    let data = super::table_data::TableData::Whole(Bytes::from(file));
    let h = BlockHandle::new(0, frame.len() as u64);
    let e = super::block::read_block(std::path::Path::new("z.sst"), &data, len, h, "data block")
        .unwrap_err();
    assert!(e.to_string().contains("256 MiB"), "{e}");
}

#[derive(Debug, Clone)]
enum Op {
    Next,
    Prev,
    Seek(Vec<u8>, u64),
    SeekForPrev(Vec<u8>, u64),
}

fn user_key_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, b'a', b'b', 0xff]), 0..6)
}

fn model_strategy() -> impl Strategy<Value = Model> {
    prop::collection::vec(
        (
            user_key_strategy(),
            0u64..30,
            any::<bool>(),
            prop_oneof![8 => prop::collection::vec(any::<u8>(), 0..20), 1 => prop::collection::vec(any::<u8>(), 100..600)],
        ),
        1..300,
    )
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, s, del, val)| {
                let kind = if del { ValueKind::Delete } else { ValueKind::Value };
                let val = if del { Vec::new() } else { val };
                ((k, Reverse(s)), (kind, val))
            })
            .collect()
    })
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Next),
        3 => Just(Op::Prev),
        1 => (user_key_strategy(), 0u64..32).prop_map(|(k, s)| Op::Seek(k, s)),
        1 => (user_key_strategy(), 0u64..32).prop_map(|(k, s)| Op::SeekForPrev(k, s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tables_match_the_model(
        m in model_strategy(),
        block_size in 32usize..600,
        page_size in 32usize..400,
        restart in 1usize..6,
        bloom in prop::sample::select(vec![0u32, 1, 10]),
        zstd in any::<bool>(),
        probes in prop::collection::vec((user_key_strategy(), 0u64..32), 0..30),
        ops in prop::collection::vec(op_strategy(), 0..60),
    ) {
        let opts = TableBuildOptions {
            block_size,
            block_restart_interval: restart,
            index_page_size: page_size,
            bloom_bits_per_key: bloom,
            compression: if zstd { Compression::Zstd { level: 1 } } else { Compression::None },
        };
        let (data, props) = build(&m, opts);
        prop_assert_eq!(props.num_entries, m.len() as u64);
        let t = open(data).unwrap();
        check_table(&t, &m);
        let es = entries(&m);
        for (uk, seq) in &probes {
            let got = t.get(uk, *seq).unwrap().map(|(s, k, v)| (s, k, v.to_vec()));
            prop_assert_eq!(got, model_get(&m, uk, *seq));
            for kind in [ValueKind::Value, ValueKind::Delete] {
                check_seek(&t, &es, &encode_internal_key(uk, *seq, kind));
            }
        }
        // Mixed movements against a position in the model.
        let mut it = t.iter();
        it.seek_to_first();
        let mut pos: Option<usize> = Some(0);
        for op in ops {
            match op {
                Op::Next => if pos.is_some() { it.next(); pos = pos.and_then(|p| (p + 1 < es.len()).then_some(p + 1)); },
                Op::Prev => if pos.is_some() { it.prev(); pos = pos.and_then(|p| p.checked_sub(1)); },
                Op::Seek(k, s) => {
                    let target = encode_internal_key(&k, s, ValueKind::FOR_SEEK);
                    it.seek(&target);
                    let i = es.partition_point(|(k, _)| compare_internal(k, &target) == Ordering::Less);
                    pos = (i < es.len()).then_some(i);
                }
                Op::SeekForPrev(k, s) => {
                    let target = encode_internal_key(&k, s, ValueKind::Delete);
                    it.seek_for_prev(&target);
                    let j = es.partition_point(|(k, _)| compare_internal(k, &target) != Ordering::Greater);
                    pos = j.checked_sub(1);
                }
            }
            match pos {
                Some(p) => {
                    prop_assert!(it.valid());
                    prop_assert_eq!(it.key(), &es[p].0[..]);
                    prop_assert_eq!(it.value(), &es[p].1[..]);
                }
                None => prop_assert!(!it.valid()),
            }
            it.status().unwrap();
        }
    }
}

/// Rewrites the properties block (and footer) of a table with `edit`
/// applied, keeping every checksum valid.
fn with_properties(data: &Bytes, edit: impl FnOnce(&mut TableProperties)) -> Bytes {
    let t = open(data.clone()).unwrap();
    let mut p = t.properties().clone();
    edit(&mut p);
    let f = *t.footer();
    let mut out = data[..f.properties.offset as usize].to_vec();
    let mut contents = Vec::new();
    p.encode_to(&mut contents);
    out.extend_from_slice(&contents);
    out.extend_from_slice(&super::block::block_trailer(&contents, 0));
    Footer {
        properties: BlockHandle::new(f.properties.offset, contents.len() as u64),
        ..f
    }
    .encode_into(&mut out);
    Bytes::from(out)
}

#[test]
fn verify_checks_properties_against_blocks() {
    let m = simple_model(200);
    let (data, _) = build(&m, small_opts(256, 128, false));
    let t = open(data.clone()).unwrap();
    let r = t.verify().unwrap();
    assert_eq!(r.num_entries, t.properties().num_entries);
    assert_eq!(r.num_index_pages, t.properties().num_index_pages);
    let same = with_properties(&data, |_| {});
    open(same).unwrap().verify().unwrap();
    type Edit = Box<dyn Fn(&mut TableProperties)>;
    let edits: Vec<Edit> = vec![
        Box::new(|p| p.num_entries += 1),
        Box::new(|p| p.num_deletions -= 1),
        Box::new(|p| p.num_index_pages += 1),
        Box::new(|p| p.data_size -= 1),
        Box::new(|p| p.largest_seq += 1),
        Box::new(|p| p.smallest_key = b"zzzzzzzz\x01".to_vec()),
    ];
    for e in edits {
        let bad = with_properties(&data, e);
        let err = open(bad).unwrap().verify().unwrap_err();
        assert!(
            err.is_corruption() && err.to_string().contains("properties"),
            "{err}"
        );
    }
    // A depth that disagrees with the footer is refused at open.
    let bad = with_properties(&data, |p| p.index_depth += 1);
    assert_corruption(open(bad).map(|_| ()));
}

#[test]
#[ignore]
fn perf_smoke() {
    let m = simple_model(200_000);
    let (data, props) = build(&m, TableBuildOptions::default());
    let t = open(data).unwrap();
    let keys: Vec<Vec<u8>> = m.keys().map(|(k, _)| k.clone()).collect();
    let start = std::time::Instant::now();
    for k in &keys {
        assert!(t.get(k, MAX_SEQUENCE).unwrap().is_some());
    }
    let el = start.elapsed();
    eprintln!(
        "depth {} gets: {:?}/op",
        props.index_depth,
        el / keys.len() as u32
    );
    let start = std::time::Instant::now();
    let mut it = t.iter();
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    eprintln!("scan: {:?}/entry", start.elapsed() / n);
}

#[test]
fn verify_all_goes_on_past_damaged_blocks_and_caps_each_check() {
    let m = simple_model(400);
    let (data, _) = build(&m, small_opts(256, 128, false));
    let layout = open(data.clone()).unwrap().layout().unwrap();
    let blocks = &layout.data_blocks;
    assert!(blocks.len() >= 6, "{} blocks", blocks.len());
    let mut bad = data.to_vec();
    let damaged = [1, 3, 5];
    for &i in &damaged {
        bad[blocks[i].handle.offset as usize + 1] ^= 0x40;
    }
    let t = open(Bytes::from(bad)).unwrap();
    let all = t.verify_all(100);
    assert_eq!(all.problems.len(), damaged.len(), "{:?}", all.problems);
    for (p, &i) in all.problems.iter().zip(&damaged) {
        assert_eq!(p.check, VerifyCheck::Block);
        match &p.error {
            Error::Corruption { offset, .. } => assert_eq!(*offset, blocks[i].handle.offset),
            e => panic!("not a corruption: {e}"),
        }
    }
    // The walk read every other block; the properties are not compared
    // with a partial count.
    assert_eq!(
        all.report.num_data_blocks,
        (blocks.len() - damaged.len()) as u64
    );
    assert!(all.not_listed.is_empty());
    let capped = t.verify_all(2);
    assert_eq!(capped.problems.len(), 2);
    assert_eq!(capped.not_listed, vec![(VerifyCheck::Block, 1)]);
    // `verify` stops at the first problem.
    assert_eq!(
        t.verify().unwrap_err().to_string(),
        all.problems[0].error.to_string()
    );
    // A sound file has no problem at all.
    let sound = open(data).unwrap().verify_all(100);
    assert!(sound.is_ok(), "{:?}", sound.problems);
    assert_eq!(sound.report.num_data_blocks, blocks.len() as u64);
}
