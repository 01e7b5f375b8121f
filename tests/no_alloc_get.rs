//! `Db::get` allocates nothing in steady state: a counting global
//! allocator (counting only this thread's allocations while armed) checks
//! point lookups that hit the memtable, hit an SST file (compressed and
//! cached, or mmapped), and miss. A scan with `Iter::next_ref` allocates
//! nothing per entry. A single-threaded `put` allocates only its skiplist
//! node (and, now and then, a memtable arena chunk).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use lightning_db::{Compression, Db, Options, WriteOptions};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

fn check(compression: Compression) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default().compression(compression);
    o.compaction.disable_auto_compactions = true;
    let db = Db::open(dir.path(), o).unwrap();
    for i in 0..20_000u32 {
        db.put(format!("sst{i:08}"), format!("value-{i}").repeat(4))
            .unwrap();
    }
    db.flush().unwrap();
    for i in 0..1_000u32 {
        db.put(format!("mem{i:08}"), format!("value-{i}")).unwrap();
    }
    let keys: Vec<Vec<u8>> = (0..2_000u32)
        .flat_map(|i| {
            [
                format!("sst{:08}", i * 10).into_bytes(),
                format!("mem{:08}", i / 2).into_bytes(),
                format!("none{i:08}").into_bytes(),
            ]
        })
        .collect();
    let lookup_all = || {
        let mut found = 0;
        for k in &keys {
            if let Some(v) = db.get(k).unwrap() {
                found += v.len();
            }
        }
        found
    };
    // Warm up: thread-local buffers, the block cache, the shared
    // representation of memtable values.
    let expected = lookup_all();
    assert!(expected > 0);
    let mut found = 0;
    let n = allocations(|| found = lookup_all());
    assert_eq!(found, expected);
    assert_eq!(
        n,
        0,
        "{n} allocations in {} gets ({compression:?})",
        keys.len()
    );

    // A scan over the table and the memtable: allocations only when the
    // cursor opens (the merge of sources, one cursor per file), none per
    // entry.
    let mut it = db.iter();
    assert!(it.next_ref().is_some());
    let mut entries = 0u64;
    let mut bytes = 0usize;
    let n = allocations(|| {
        while let Some(item) = it.next_ref() {
            let (k, v) = item.unwrap();
            bytes += k.len() + v.len();
            entries += 1;
        }
    });
    assert_eq!(entries, 20_999);
    assert!(bytes > 0);
    assert!(
        n <= 4,
        "{n} allocations in a scan of {entries} entries ({compression:?})"
    );
}

#[test]
fn get_allocates_nothing_in_steady_state_uncompressed() {
    check(Compression::None);
}

#[test]
fn get_allocates_nothing_in_steady_state_compressed_and_cached() {
    check(Compression::Zstd { level: 3 });
}

#[test]
fn put_allocates_only_its_skiplist_node() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let value = vec![7u8; 100];
    let opts = WriteOptions::default();
    // Warm up: this thread's spare writer and batch, the WAL buffer.
    for i in 0..1_000u32 {
        db.put_opt(i.to_be_bytes(), &value, &opts).unwrap();
    }
    let puts = 10_000u32;
    let n = allocations(|| {
        for i in 1_000..1_000 + puts {
            db.put_opt(i.to_be_bytes(), &value, &opts).unwrap();
            db.delete_opt((i - 1_000).to_be_bytes(), &opts).unwrap();
        }
    });
    let writes = 2 * u64::from(puts);
    // One node per write, plus an arena chunk per MiB of keys and values.
    assert!(
        n <= writes + 8,
        "{n} allocations in {writes} single-operation writes"
    );
    assert!(
        n >= writes,
        "the counting allocator missed the skiplist nodes ({n})"
    );
}

/// A seek opens a cursor over every source. Its key buffers come from the
/// thread's spares: 16 allocations per seek over three tables here, 25
/// before they did. What is left is the cursor structure itself.
#[test]
fn a_seek_reuses_the_key_buffers_of_earlier_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default();
    o.compaction.disable_auto_compactions = true;
    let db = Db::open(dir.path(), o).unwrap();
    for f in 0..3 {
        for i in 0..20_000u32 {
            db.put(format!("k{:08}", i * 3 + f), [1u8; 100]).unwrap();
        }
        db.flush().unwrap();
    }
    let keys: Vec<String> = (0..100u32).map(|i| format!("k{:08}", i * 97)).collect();
    let seek = |k: &String| {
        let mut it = db.range(k.as_bytes()..);
        let mut n = 0;
        while n < 11 && it.next_ref().is_some() {
            n += 1;
        }
        n
    };
    // Warm up the spares.
    assert_eq!(seek(&keys[0]), 11);
    let mut found = 0;
    let n = allocations(|| found = keys.iter().map(seek).sum::<usize>());
    assert_eq!(found, 1100);
    let per_seek = n as f64 / keys.len() as f64;
    assert!(per_seek <= 22.0, "{per_seek} allocations per seek");
}
