//! The read API of issue 20: `multi_get` (one moment, every layer, every
//! handle), `contains_key`, `first_key_value`/`last_key_value`,
//! `len_approximate` and `compare_and_swap`, on databases being written.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::{fast_opts, no_compaction};
use lightning_db::{AppendOperator, Db, Error};

fn key(i: u32) -> Vec<u8> {
    format!("k{i:05}").into_bytes()
}

/// Values in every layer: the deepest level, level 0, the memtable, blob
/// files, merge operands, point and range deletions.
fn layered(db: &Db) {
    for i in 0..300 {
        db.put(key(i), format!("deep{i}")).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    for i in (0..300).step_by(3) {
        db.put(key(i), "x".repeat(300)).unwrap(); // a blob value
    }
    db.flush().unwrap();
    for i in (0..300).step_by(5) {
        db.merge(key(i), "m").unwrap();
    }
    for i in (0..300).step_by(7) {
        db.delete(key(i)).unwrap();
    }
    db.delete_range(key(100)..key(120)).unwrap();
}

fn opts() -> lightning_db::Options {
    no_compaction(fast_opts())
        .enable_blob_files(true)
        .min_blob_size(200)
        .merge_operator(Some(Arc::new(AppendOperator::new(","))))
}

#[test]
fn multi_get_equals_get_for_every_key_in_every_layer_and_handle() {
    lightning_db::testing::set_multi_get_reads_ahead(Some(false));
    multi_get_equals_get_everywhere();
}

/// The same, with every batch read in stages (each key's data block
/// located and requested from the OS first, as when reads wait for the
/// disk): the same answers.
#[test]
fn multi_get_in_stages_equals_get_for_every_key_in_every_layer_and_handle() {
    lightning_db::testing::set_multi_get_reads_ahead(Some(true));
    multi_get_equals_get_everywhere();
}

fn multi_get_equals_get_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    layered(&db);
    let snap = db.snapshot();
    // Keys in a scrambled order, with duplicates and absent keys.
    let mut keys: Vec<Vec<u8>> = (0..310).rev().map(key).collect();
    keys.extend([key(5), key(5), b"".to_vec(), b"zzz".to_vec(), key(110)]);
    let check = |got: Vec<lightning_db::Result<Option<lightning_db::Bytes>>>,
                 get: &dyn Fn(&[u8]) -> Option<lightning_db::Bytes>| {
        assert_eq!(got.len(), keys.len());
        for (k, g) in keys.iter().zip(got) {
            assert_eq!(g.unwrap(), get(k), "key {}", String::from_utf8_lossy(k));
        }
    };
    check(db.multi_get(&keys), &|k| db.get(k).unwrap());
    // Later writes: the snapshot's multi_get keeps its moment.
    for i in 0..300 {
        db.put(key(i), "later").unwrap();
    }
    check(snap.multi_get(&keys), &|k| snap.get(k).unwrap());
    check(db.multi_get(&keys), &|k| db.get(k).unwrap());
    // Keyspaces, and the transaction's own writes over its snapshot.
    let ks = db.keyspace("other").unwrap();
    ks.put(key(1), "ks").unwrap();
    check(ks.multi_get(&keys), &|k| ks.get(k).unwrap());
    check(snap.multi_get_in(&ks, &keys), &|k| {
        snap.get_in(&ks, k).unwrap()
    });
    let mut tx = db.transaction();
    tx.put(key(2), "mine");
    tx.delete(key(3));
    check(tx.multi_get(&keys), &|k| tx.get(k).unwrap());
    assert_eq!(
        tx.multi_get([key(2)])[0].as_ref().unwrap().as_deref(),
        Some(&b"mine"[..])
    );
    drop(tx);
    // Across a reopen.
    drop(snap);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    check(db.multi_get(&keys), &|k| db.get(k).unwrap());
    // A dropped keyspace or a closed database: an error per key.
    let gone = db.keyspace("gone").unwrap();
    db.drop_keyspace("gone").unwrap();
    assert!(gone
        .multi_get([key(1), key(2)])
        .iter()
        .all(|r| matches!(r, Err(Error::KeyspaceDropped(_)))));
}

/// Every batch writes the same value to `a` and `b`: a multi_get reads
/// one moment, so it always sees them equal (two gets need not).
#[test]
fn multi_get_reads_one_moment_while_a_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Db::open(
            dir.path(),
            common::churn_opts().fs(Arc::new(common::NoSyncFs)),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut b = lightning_db::WriteBatch::new();
                let v = n.to_be_bytes();
                b.put("a", v);
                b.put("b", v);
                b.put(format!("filler{}", n % 5000), [0u8; 64]);
                db.write(b).unwrap();
                n += 1;
            }
            n
        })
    };
    // Read until 20,000 reads are done and the writer has been seen to
    // move at least 100 times during them: on a loaded machine the writer
    // may not run at all during the first reads.
    let (mut reads, mut moves) = (0u64, 0u64);
    let mut last = 0u64;
    let start = std::time::Instant::now();
    while reads < 20_000 || moves < 100 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the writer moved {moves} times in {reads} reads"
        );
        let got = db.multi_get(["b", "a"]);
        let (b, a) = (got[0].as_ref().unwrap(), got[1].as_ref().unwrap());
        assert_eq!(a, b, "read {reads}: a and b from different moments");
        if let Some(v) = a {
            let n = u64::from_be_bytes(v[..].try_into().unwrap());
            assert!(n >= last, "went back from {last} to {n}");
            moves += u64::from(n > last);
            last = n;
        }
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > last);
}

#[test]
fn contains_first_last_and_len_on_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.first_key_value().unwrap(), None);
    assert_eq!(db.last_key_value().unwrap(), None);
    assert_eq!(db.len_approximate(), 0);
    layered(&db);
    let all: Vec<_> = db.iter().map(|r| r.unwrap()).collect();
    assert_eq!(db.first_key_value().unwrap().as_ref(), all.first());
    assert_eq!(db.last_key_value().unwrap().as_ref(), all.last());
    for i in 0..310 {
        assert_eq!(
            db.contains_key(key(i)).unwrap(),
            db.get(key(i)).unwrap().is_some()
        );
    }
    // Deleted at the ends: the first and last keys move.
    let (first, _) = all.first().unwrap().clone();
    let snap = db.snapshot();
    db.delete(&first).unwrap();
    assert_eq!(db.first_key_value().unwrap().as_ref(), all.get(1));
    assert_eq!(snap.first_key_value().unwrap().as_ref(), all.first());
    assert_eq!(snap.last_key_value().unwrap().as_ref(), all.last());
    assert!(snap.contains_key(&first).unwrap() && !db.contains_key(&first).unwrap());
    // The estimate counts entries, not distinct keys: within the number
    // of writes, and exact after a full compaction without snapshots.
    drop(snap);
    assert!(db.len_approximate() >= all.len() as u64 - 1);
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    // Operands kept on top of blob values count as entries of their own.
    assert!(db.len_approximate() >= db.iter().count() as u64);
    let ks = db.keyspace("ks").unwrap();
    for i in 0..100 {
        ks.put(key(i), "v").unwrap();
        ks.put(key(i), "w").unwrap();
    }
    ks.delete_range(key(0)..key(98)).unwrap();
    assert!(ks.len_approximate() >= 2);
    ks.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(ks.len_approximate(), 2);
    ks.delete_range(key(0)..key(100)).unwrap();
    ks.put("x", "1").unwrap();
    ks.put("y", "2").unwrap();
    ks.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(ks.first_key_value().unwrap().unwrap().0, "x");
    assert_eq!(ks.last_key_value().unwrap().unwrap().0, "y");
    assert!(ks.contains_key("x").unwrap() && !ks.contains_key("z").unwrap());
    assert_eq!(ks.len_approximate(), 2);
    let mut tx = db.transaction();
    tx.put("new", "v");
    assert!(tx.contains_key("new").unwrap());
    tx.delete(key(1));
    assert!(!tx.contains_key(key(1)).unwrap());
}

/// Threads increment one counter with compare-and-swap loops: every
/// successful swap counts once, none is lost, and conflicts never
/// surface.
#[test]
fn compare_and_swap_counts_exactly_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), fast_opts()).unwrap());
    let ks = db.keyspace("counters").unwrap();
    let failures = Arc::new(AtomicU64::new(0));
    const THREADS: u64 = 4;
    const EACH: u64 = 300;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, ks, failures) = (Arc::clone(&db), ks.clone(), Arc::clone(&failures));
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let (cur, r) = if t % 2 == 0 {
                            let cur = db.get("n").unwrap();
                            let next = cur
                                .as_ref()
                                .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()))
                                + 1;
                            (
                                cur.clone(),
                                db.compare_and_swap("n", cur.as_deref(), Some(&next.to_be_bytes()))
                                    .unwrap(),
                            )
                        } else {
                            let cur = ks.get("n").unwrap();
                            let next = cur
                                .as_ref()
                                .map_or(0, |v| u64::from_be_bytes(v[..].try_into().unwrap()))
                                + 1;
                            (
                                cur.clone(),
                                ks.compare_and_swap("n", cur.as_deref(), Some(&next.to_be_bytes()))
                                    .unwrap(),
                            )
                        };
                        match r {
                            Ok(()) => break,
                            Err(e) => {
                                assert_ne!(e.current, cur, "a failed swap reports what is there");
                                failures.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let read =
        |v: Option<lightning_db::Bytes>| u64::from_be_bytes(v.unwrap()[..].try_into().unwrap());
    assert_eq!(read(db.get("n").unwrap()), THREADS / 2 * EACH);
    assert_eq!(read(ks.get("n").unwrap()), THREADS / 2 * EACH);
    // Create-if-absent and delete-if-equal.
    assert!(db
        .compare_and_swap("lock", None, Some(b"a"))
        .unwrap()
        .is_ok());
    let e = db
        .compare_and_swap("lock", None, Some(b"b"))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (e.current.as_deref(), e.proposed.as_deref()),
        (Some(&b"a"[..]), Some(&b"b"[..]))
    );
    assert!(db
        .compare_and_swap("lock", Some(b"a"), None)
        .unwrap()
        .is_ok());
    assert!(!db.contains_key("lock").unwrap());
}

#[test]
fn read_options_bounds_snapshots_and_keyspaces() {
    use lightning_db::ReadOptions;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    for k in ["a", "b", "c", "d", "e"] {
        db.put(k, k).unwrap();
    }
    type Pairs = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>;
    fn keys(it: impl Iterator<Item = Pairs>) -> Vec<String> {
        it.map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
            .collect()
    }
    let ro = ReadOptions::new()
        .iterate_lower_bound("b")
        .iterate_upper_bound("e");
    assert_eq!(keys(db.iter_opt(&ro)), ["b", "c", "d"]);
    assert_eq!(keys(db.iter_opt(&ro).rev()), ["d", "c", "b"]);
    // The bounds narrow the range, never widen it.
    assert_eq!(keys(db.range_opt("c".., &ro)), ["c", "d"]);
    assert_eq!(keys(db.range_opt("a"..="c", &ro)), ["b", "c"]);
    assert_eq!(keys(db.prefix_opt("e", &ro)), Vec::<String>::new());
    let inverted = ReadOptions::new()
        .iterate_lower_bound("d")
        .iterate_upper_bound("b");
    assert!(keys(db.iter_opt(&inverted)).is_empty());
    let empty = ReadOptions::new()
        .iterate_lower_bound("c")
        .iterate_upper_bound("c");
    assert!(keys(db.iter_opt(&empty)).is_empty());
    // A snapshot.
    let snap = db.snapshot();
    db.delete("c").unwrap();
    let at = ReadOptions::new().snapshot(&snap);
    assert_eq!(db.get_opt("c", &at).unwrap().as_deref(), Some(&b"c"[..]));
    assert_eq!(db.get_opt("c", &ReadOptions::new()).unwrap(), None);
    assert_eq!(keys(db.iter_opt(&at)).len(), 5);
    // A snapshot of another database is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Db::open(other_dir.path(), fast_opts()).unwrap();
    let foreign = other.snapshot();
    let bad = ReadOptions::new().snapshot(&foreign);
    assert!(matches!(
        db.get_opt("a", &bad),
        Err(Error::InvalidArgument(_))
    ));
    assert!(db.iter_opt(&bad).next().unwrap().is_err());
    // Keyspaces.
    let ks = db.keyspace("ks").unwrap();
    ks.put("x1", "1").unwrap();
    ks.put("x2", "2").unwrap();
    let snap2 = db.snapshot();
    ks.delete("x1").unwrap();
    let ro = ReadOptions::new()
        .snapshot(&snap2)
        .iterate_upper_bound("x2");
    assert_eq!(keys(ks.iter_opt(&ro)), ["x1"]);
    assert_eq!(ks.get_opt("x1", &ro).unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(keys(ks.prefix_opt("x", &ReadOptions::new())), ["x2"]);
    assert_eq!(keys(ks.range_opt("x".."y", &ReadOptions::new())), ["x2"]);
}

#[test]
fn fill_cache_off_leaves_the_block_cache_alone() {
    use lightning_db::{Compression, ReadOptions};
    let dir = tempfile::tempdir().unwrap();
    // Compressed blocks go through the cache.
    let db = Db::open(
        dir.path(),
        fast_opts().compression(Compression::Zstd { level: 1 }),
    )
    .unwrap();
    for i in 0..2000 {
        db.put(key(i), "v".repeat(100)).unwrap();
    }
    db.flush().unwrap();
    let inserts = || db.block_cache_stats().inserts;
    let before = inserts();
    let no_fill = ReadOptions::new().fill_cache(false);
    assert_eq!(db.iter_opt(&no_fill).count(), 2000);
    assert_eq!(db.get_opt(key(7), &no_fill).unwrap().unwrap().len(), 100);
    assert_eq!(inserts(), before, "a scan without fill_cache cached blocks");
    assert_eq!(db.iter().count(), 2000);
    assert!(inserts() > before, "the default scan caches blocks");
}

#[test]
fn verify_checksums_off_skips_the_hash_but_never_caches_or_hides_damage() {
    use lightning_db::inspect::SstFile;
    use lightning_db::ReadOptions;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    for i in 0..500 {
        db.put(key(i), format!("value-{i:05}")).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    // Damage one byte in the middle of the first data block.
    let sst = common::files_with_suffix(dir.path(), ".sst").pop().unwrap();
    let h = SstFile::open(&sst).unwrap().data_block_refs().unwrap()[0].handle;
    let mut bytes = std::fs::read(&sst).unwrap();
    let at = (h.offset + h.size / 2) as usize;
    bytes[at] ^= 0x01;
    std::fs::write(&sst, &bytes).unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let unverified = ReadOptions::new().verify_checksums(false);
    let first_block_keys: Vec<Vec<u8>> = (0..20).map(key).collect();
    // Without the check, a read returns what the block says (or an error
    // if its structure is broken); it never panics.
    let unchecked_ok = first_block_keys
        .iter()
        .filter(|k| db.get_opt(k, &unverified).is_ok())
        .count();
    assert!(
        unchecked_ok > 0,
        "every unverified read still failed the checksum"
    );
    let _ = db.iter_opt(&unverified).count();
    // The default reads still find the damage: nothing unverified was
    // kept.
    let damaged = first_block_keys
        .iter()
        .filter(|k| matches!(db.get(k), Err(e) if e.is_corruption()))
        .count();
    assert_eq!(damaged, first_block_keys.len());
    assert!(db.iter().any(|r| r.is_err()));
}
