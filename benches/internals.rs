//! Criterion micro-benchmarks of the innermost hot paths, each alone (cargo
//! feature `bench-internals`):
//!
//! ```text
//! cargo bench --features bench-internals --bench internals
//! ```
//!
//! - `block/seek`: one seek inside a 4 KiB data block (binary search over
//!   restart points, then a scan of at most 16 prefix-compressed entries);
//! - `bloom/probe_hit` and `bloom/probe_miss`: one filter probe (10 bits
//!   per key);
//! - `index/descent`: one point lookup in a 100K-entry SST without a
//!   filter: the B+Tree index pages, then the data block;
//! - `wal/append`: framing, checksum and buffering of one 140-byte record.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lightning_db::testing::bench_internals::{BlockSeek, Bloom, IndexDescent, WalAppend};

fn key(i: u64) -> Vec<u8> {
    // db_bench's key shape: 8-byte big-endian number, then padding.
    let mut k = i.to_be_bytes().to_vec();
    k.resize(16, b'0');
    k
}

fn hot_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("internals");
    g.throughput(Throughput::Elements(1));

    let block_keys: Vec<Vec<u8>> = (0..32).map(|i| key(i * 2)).collect();
    let mut block = BlockSeek::new(&block_keys);
    let mut i = 0u64;
    g.bench_function("block/seek", |b| {
        b.iter(|| {
            i = (i + 7) % 64;
            black_box(block.seek(&key(i)))
        })
    });

    let set: Vec<Vec<u8>> = (0..100_000).map(|i| key(i * 2)).collect();
    let bloom = Bloom::new(&set, 10);
    g.bench_function("bloom/probe_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(bloom.may_contain(&key(i * 2)))
        })
    });
    g.bench_function("bloom/probe_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(bloom.may_contain(&key(i * 2 + 1)))
        })
    });

    let table = IndexDescent::new(&set);
    assert!(table.get(&key(2)) && !table.get(&key(3)));
    g.bench_function("index/descent", |b| {
        b.iter(|| {
            i = (i + 7919) % 100_000;
            black_box(table.get(&key(i * 2)))
        })
    });

    let mut wal = WalAppend::new();
    let record = [5u8; 140];
    g.bench_function("wal/append", |b| b.iter(|| wal.append(black_box(&record))));
    g.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
