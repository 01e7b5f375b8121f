//! The row cache at the sizes `validate()` accepts (1 byte to
//! `usize::MAX`) and with entries at its edges: the longest key, an empty
//! value, key plus value exactly filling a slot (208 bytes) and one byte
//! more (a separate allocation), and values too large to cache. Each key
//! is read until the cache serves it, then overwritten, deleted and read
//! again: a hit is always the newest value, whatever the entry's shape.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{fast_opts, no_compaction};
use lightning_db::{CompactionFilter, Db, Decision, Error, MAX_KEY_SIZE};

/// Bytes of key plus value stored inside a slot (`src/row_cache.rs`).
const INLINE_BYTES: usize = 208;

fn cases() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (vec![0xab; MAX_KEY_SIZE], b"v".to_vec()),
        (b"empty value".to_vec(), Vec::new()),
        (vec![1u8; 16], vec![2u8; INLINE_BYTES - 16]),
        (vec![3u8; 16], vec![4u8; INLINE_BYTES - 15]),
        (b"large".to_vec(), vec![5u8; 256 << 10]),
    ]
}

/// `key`'s value by `get`, checked against `get_into` (into a buffer
/// holding leftovers), which a hit serves straight from its slot.
fn read(db: &Db, key: &[u8]) -> Option<Vec<u8>> {
    let got = db.get(key).unwrap().map(|v| v.to_vec());
    let mut buf = b"leftover bytes".to_vec();
    let found = db.get_into(key, &mut buf).unwrap();
    assert_eq!(found.then_some(&buf), got.as_ref(), "get_into disagrees");
    assert!(found || buf.is_empty(), "get_into left bytes behind");
    got
}

#[test]
fn every_size_and_entry_shape_reads_the_newest_value() {
    for size in [1usize, 64 << 10, 64 << 20, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let db = match Db::open(dir.path(), fast_opts().row_cache_size(size)) {
            Ok(db) => db,
            // The slot array (4 GiB at most) may not be mappable here:
            // a clear I/O error at open, never a panic.
            Err(Error::Io { .. }) if size == usize::MAX => continue,
            Err(e) => panic!("row_cache_size {size}: {e}"),
        };
        for (k, v) in cases() {
            db.put(&k, &v).unwrap();
            // Twice to be admitted, then served from the cache.
            for _ in 0..4 {
                assert_eq!(read(&db, &k).as_deref(), Some(&v[..]), "size {size}");
            }
            let mut newer = v.clone();
            newer.push(9);
            db.put(&k, &newer).unwrap();
            for _ in 0..4 {
                assert_eq!(read(&db, &k).as_deref(), Some(&newer[..]), "size {size}");
            }
            db.delete(&k).unwrap();
            for _ in 0..4 {
                assert_eq!(read(&db, &k), None, "size {size}");
            }
        }
        let stats = db.stats();
        if size >= 64 << 20 {
            assert!(
                stats.row_cache.hits > 0,
                "size {size}: the cache never served a read"
            );
        }
        assert!(
            stats.row_cache.usage_bytes <= size.max(64 << 10) as u64,
            "size {size}: {} bytes charged",
            stats.row_cache.usage_bytes
        );
    }
}

/// Entries too large for a slot, with the cache full of them: once every
/// key is overwritten (each entry dead), reads must be cached again, the
/// new entries replacing the dead ones, and after a change that kills
/// every entry (a compaction filter's) too. A full cache used to refuse
/// every such fill, the dead entries' bytes still counted.
#[test]
fn a_cache_full_of_dead_large_entries_takes_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let filter = Arc::new(RewriteWhenArmed(Arc::clone(&armed)));
    let opts = no_compaction(fast_opts())
        .row_cache_size(256 << 10)
        .compaction_filter(Some(filter as Arc<dyn CompactionFilter>));
    let db = Db::open(dir.path(), opts).unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("big{i:03}")).collect();
    let hits_over = |db: &Db, value: &[u8]| {
        let before = db.stats().row_cache.hits;
        for _ in 0..4 {
            for k in &keys {
                assert_eq!(read(db, k.as_bytes()).as_deref(), Some(value));
            }
        }
        db.stats().row_cache.hits - before
    };
    let first = vec![1u8; 4096];
    for k in &keys {
        db.put(k, &first).unwrap();
    }
    let served = hits_over(&db, &first);
    assert!(served > 0, "nothing cached: nothing tested");
    let full = db.stats().row_cache.usage_bytes;
    let second = vec![2u8; 4096];
    for k in &keys {
        db.put(k, &second).unwrap();
    }
    let again = hits_over(&db, &second);
    assert!(
        again * 2 >= served,
        "after every key was rewritten the cache served {again} reads, against {served} \
         before ({full} bytes charged when full)"
    );
    // A compaction filter rewrites every value: every entry dies at once.
    db.flush().unwrap();
    armed.store(true, Ordering::Relaxed);
    db.compact_range::<&[u8], _>(..).unwrap();
    let third = hits_over(&db, &[3u8; 4096]);
    assert!(
        third * 2 >= served,
        "after a compaction filter's change the cache served {third} reads, against {served}"
    );
}

/// Rewrites every value to 4 KiB of 3s once armed.
struct RewriteWhenArmed(Arc<AtomicBool>);

impl CompactionFilter for RewriteWhenArmed {
    fn name(&self) -> &str {
        "rewrite-when-armed"
    }
    fn filter(&self, _level: usize, _key: &[u8], _value: &[u8]) -> Decision {
        if self.0.load(Ordering::Relaxed) {
            Decision::ChangeValue(vec![3u8; 4096])
        } else {
            Decision::Keep
        }
    }
}
