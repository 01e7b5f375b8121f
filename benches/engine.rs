//! Criterion micro-benchmarks of the hot paths, through the public API:
//! memtable insert and lookup (data in the active memtable), and SST point
//! lookup (data flushed to one file; bloom → B+Tree index → data block),
//! range deletion, and writes with several keyspaces.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lightning_db::{Db, Options, WriteBatch};

const N: u64 = 100_000;

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k
}

fn open(dir: &std::path::Path) -> Db {
    Db::open(dir, Options::default().write_buffer_size(512 << 20)).unwrap()
}

fn memtable(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(1));
    let value = [7u8; 100];
    g.bench_function("insert", |b| {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let mut i = 0u64;
        b.iter_batched(
            || {
                i += 1;
                let mut batch = WriteBatch::new();
                batch.put(key(i), value);
                batch
            },
            |batch| db.write(batch).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..N {
        db.put(key(i), value).unwrap();
    }
    let mut i = 0u64;
    g.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(db.get(key(i)).unwrap())
        })
    });
    g.finish();
}

fn sst(c: &mut Criterion) {
    let mut g = c.benchmark_group("sst");
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..N {
        db.put(key(i), [7u8; 100]).unwrap();
    }
    db.flush().unwrap();
    let mut i = 0u64;
    g.bench_function("point_lookup_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(db.get(key(i)).unwrap())
        })
    });
    g.bench_function("point_lookup_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(db.get(key(i + N)).unwrap())
        })
    });
    g.bench_function("scan_100", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(db.range(key(i)..).take(100).count())
        })
    });
    g.finish();
}

/// `delete_range` over 1M keys (issue 19: one write, under 1 ms): each
/// call deletes every key of a database of 1M keys flushed to SSTs.
fn range_delete(c: &mut Criterion) {
    let mut g = c.benchmark_group("range_delete");
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = WriteBatch::new();
    for i in 0..1_000_000u64 {
        b.put(i.to_be_bytes(), [7u8; 100]);
        if b.len() == 1000 {
            db.write(std::mem::take(&mut b)).unwrap();
        }
    }
    db.flush().unwrap();
    // Every call writes a tombstone over all the keys; the same range
    // each time, so that the millions of calls criterion makes pile up in
    // one fragment (overlapping ranges with different ends would make a
    // fragment per end, each listing every tombstone over it).
    // Once outside the measurement too: a filtered run skips it.
    db.delete_range(0u64.to_be_bytes()..2_000_000u64.to_be_bytes())
        .unwrap();
    g.bench_function("delete_range_1m_keys", |bench| {
        bench.iter(|| {
            db.delete_range(0u64.to_be_bytes()..2_000_000u64.to_be_bytes())
                .unwrap()
        })
    });
    assert_eq!(db.get(500_000u64.to_be_bytes()).unwrap(), None);
    g.finish();
}

/// A put into the default keyspace with no other keyspace and with 100
/// idle ones (every write group checks each keyspace's memtable size),
/// and a put into a keyspace of its own.
fn keyspaces(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyspaces");
    g.throughput(Throughput::Elements(1));
    let value = [7u8; 100];
    for idle in [0usize, 100] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        for k in 0..idle {
            db.keyspace(&format!("idle{k}")).unwrap();
        }
        let mut i = 0u64;
        g.bench_function(format!("put_default_with_{idle}_idle_keyspaces"), |b| {
            b.iter(|| {
                i += 1;
                db.put(key(i), value).unwrap()
            })
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let ks = db.keyspace("data").unwrap();
    let mut i = 0u64;
    g.bench_function("put_in_keyspace", |b| {
        b.iter(|| {
            i += 1;
            ks.put(key(i), value).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, memtable, sst, range_delete, keyspaces);
criterion_main!(benches);
