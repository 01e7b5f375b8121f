#!/usr/bin/env bash
# Issue 21's bulk-load figure against RocksDB: NUM sorted pairs through
# our SstWriter + Db::ingest (benches/bulk_load.rs) and through RocksDB's
# SstFileWriter + IngestExternalFile (benches/rocksdb_bulk_load.cc, built
# here against Debian's librocksdb-dev), interleaved, ROUNDS rounds.
#
#   benches/bulk_load_vs_rocksdb.sh [NUM=10000000] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
num="${1:-10000000}"
rounds="${2:-3}"
if [ ! -e /usr/include/rocksdb/sst_file_writer.h ]; then
    apt-get install -y librocksdb-dev >/dev/null
fi
bin="$(mktemp -d)/rocksdb_bulk_load"
g++ -O2 -std=c++17 benches/rocksdb_bulk_load.cc -lrocksdb -o "$bin"
cargo build --release --bench bulk_load >/dev/null 2>&1
ours="$(ls -t target/release/deps/bulk_load-* | grep -v '\.d$' | head -1)"
for r in $(seq 1 "$rounds"); do
    d="$(mktemp -d)"
    o="$("$ours" "$num" 1 | grep -o 'SstWriter+ingest [0-9]* ops/s' | awk '{print $2}')"
    "$bin" "$d" "$num" > "$d/out"
    k="$(awk '{print $2}' "$d/out")"
    rm -rf "$d"
    echo "round $r: ours $o ops/s, RocksDB $k ops/s, ratio $(echo "scale=2; $o / $k" | bc)"
done
