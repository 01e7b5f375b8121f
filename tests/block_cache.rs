//! The block cache through the public API: compressed blocks are served
//! from it after the first read, its bound covers pinned filters and index
//! roots, one cache can serve two databases, and damage in a block is still
//! found (the cache only ever holds verified blocks).

mod common;

use std::sync::Arc;

use common::{fast_opts, files_with_suffix, no_compaction, Rng};
use lightning_db::{BlockCache, CachePolicy, Compression, Db, Options};

fn value(i: u64) -> Vec<u8> {
    // Compressible: a repeated pattern, so zstd blocks are stored
    // compressed.
    format!("value-{i:08}-").repeat(8).into_bytes()
}

fn compressed_opts(cache_bytes: usize) -> Options {
    let mut o = no_compaction(fast_opts());
    o.compression = Compression::Zstd { level: 3 };
    o.block_cache_size = cache_bytes;
    o
}

fn fill(db: &Db, n: u64) {
    for i in 0..n {
        db.put(format!("key{i:08}"), value(i)).unwrap();
    }
    db.flush().unwrap();
}

#[test]
fn compressed_blocks_are_read_once_then_hit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), compressed_opts(64 << 20)).unwrap();
    fill(&db, 20_000);
    let before = db.block_cache_stats();
    for _ in 0..3 {
        for i in (0..20_000).step_by(7) {
            assert_eq!(
                db.get(format!("key{i:08}")).unwrap().as_deref(),
                Some(value(i).as_slice())
            );
        }
    }
    let st = db.block_cache_stats();
    let (hits, misses) = (st.hits - before.hits, st.misses - before.misses);
    assert!(misses > 0, "the first pass reads blocks from the file");
    assert!(
        hits >= 2 * misses,
        "later passes hit: {hits} hits, {misses} misses"
    );
    assert!(
        st.pinned_bytes > 0,
        "the table's filter and root are charged"
    );
    assert!(st.usage_bytes + st.pinned_bytes <= st.capacity_bytes);
    // Iteration reads through the cache too and sees every entry.
    assert_eq!(db.iter().count(), 20_000);
    assert_eq!(db.iter().rev().count(), 20_000);
}

#[test]
fn a_small_cache_stays_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 256 << 10;
    let db = Db::open(dir.path(), compressed_opts(cap)).unwrap();
    fill(&db, 30_000);
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let i = rng.below(30_000);
        assert_eq!(
            db.get(format!("key{i:08}")).unwrap().as_deref(),
            Some(value(i).as_slice())
        );
    }
    let st = db.block_cache_stats();
    assert!(st.evictions > 0, "{st:?}");
    assert!(st.usage_bytes + st.pinned_bytes <= cap as u64, "{st:?}");
}

#[test]
fn uncompressed_tables_bypass_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = compressed_opts(8 << 20);
    o.compression = Compression::None;
    let db = Db::open(dir.path(), o).unwrap();
    fill(&db, 5_000);
    for i in 0..5_000 {
        assert!(db.get(format!("key{i:08}")).unwrap().is_some());
    }
    let st = db.block_cache_stats();
    assert_eq!((st.hits, st.misses), (0, 0), "{st:?}");
    assert!(st.pinned_bytes > 0);
}

#[test]
fn one_cache_serves_two_databases() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cache = Arc::new(BlockCache::new(16 << 20, CachePolicy::Lru));
    let open = |p: &std::path::Path| {
        let mut o = compressed_opts(0);
        o.block_cache = Some(Arc::clone(&cache));
        Db::open(p, o).unwrap()
    };
    let (da, db) = (open(a.path()), open(b.path()));
    fill(&da, 5_000);
    db.put("only-in-b", "b").unwrap();
    fill(&db, 5_000);
    for i in 0..5_000 {
        let k = format!("key{i:08}");
        assert_eq!(da.get(&k).unwrap(), db.get(&k).unwrap());
    }
    assert_eq!(da.get("only-in-b").unwrap(), None);
    let st = cache.stats();
    assert!(st.inserts > 0);
    assert_eq!(da.block_cache_stats(), st, "both report the shared cache");
}

#[test]
fn a_damaged_compressed_block_is_an_error_not_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), compressed_opts(8 << 20)).unwrap();
        fill(&db, 5_000);
        db.close().unwrap();
    }
    // Keys were written in order, so the oldest table holds the first key,
    // in its first data block, at offset 0.
    let mut sst = files_with_suffix(dir.path(), ".sst");
    sst.sort();
    let mut bytes = std::fs::read(&sst[0]).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&sst[0], &bytes).unwrap();
    let db = Db::open(dir.path(), compressed_opts(8 << 20)).unwrap();
    for _ in 0..2 {
        // Twice: a failed read must not leave anything in the cache.
        let err = db.get("key00000000").unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
    assert_eq!(db.block_cache_stats().inserts, 0);
}
