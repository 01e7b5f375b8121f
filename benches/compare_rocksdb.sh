#!/usr/bin/env bash
# Runs Lightning DB's db_bench and RocksDB's db_bench (Debian's
# rocksdb-tools, installed if missing) on the same flags, interleaved
# A B A B, and prints per benchmark the median ops/sec of each and the ratio
# ours / RocksDB.
#
#   benches/compare_rocksdb.sh [--rounds=3] [db_bench flags...]
#
# Example (the performance issue's settings):
#   benches/compare_rocksdb.sh --rounds=3 --num=1000000 --key_size=16 \
#     --value_size=100 --compression_type=none --bloom_bits=10 \
#     --benchmarks=fillrandom,readrandom,readseq,seekrandom
#
# Each benchmark list runs in one process per engine per round on a fresh
# temporary directory, so read benchmarks read what the fills before them
# in the same list wrote. Raw outputs are kept in $OUT (default: a new
# temporary directory), named <engine>-<round>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3
flags=()
for a in "$@"; do
    case "$a" in
        --rounds=*) rounds="${a#--rounds=}" ;;
        *) flags+=("$a") ;;
    esac
done
if ! printf '%s\n' "${flags[@]:-}" | grep -q -- '--benchmarks='; then
    flags+=("--benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom")
fi

if [ ! -x /usr/bin/db_bench ]; then
    echo "installing rocksdb-tools (RocksDB's db_bench)..." >&2
    apt-get update -qq && apt-get install -y -qq rocksdb-tools >/dev/null
fi
cargo build --release -q -p lightning-tools --bin db_bench
ours="$PWD/target/release/db_bench"
OUT="${OUT:-$(mktemp -d -t compare-rocksdb-XXXXXX)}"
mkdir -p "$OUT"
echo "outputs in $OUT" >&2

for r in $(seq 1 "$rounds"); do
    for engine in lightning rocksdb; do
        dir="$(mktemp -d -t "bench-$engine-XXXXXX")"
        if [ "$engine" = lightning ]; then
            "$ours" --db="$dir/db" "${flags[@]}" >"$OUT/$engine-$r.txt" 2>&1
        else
            /usr/bin/db_bench --db="$dir/db" "${flags[@]}" >"$OUT/$engine-$r.txt" 2>&1
        fi
        rm -rf "$dir"
        echo "round $r $engine done" >&2
    done
done

# Lines look like: "fillrandom   :       2.345 micros/op 426439 ops/sec; ..."
awk '
    FNR == 1 { split(FILENAME, p, "/"); split(p[length(p)], q, "-"); engine = q[1] }
    / micros\/op / && / ops\/sec/ {
        name = $1
        for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^ops\/sec/) ops = $i
        key = engine SUBSEP name
        vals[key] = vals[key] " " ops
        if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    }
    function median(s,    a, m, i, j, t) {
        m = split(s, a, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        if (m == 0) return 0
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        printf "%-18s %14s %14s %8s\n", "benchmark", "lightning", "rocksdb", "ratio"
        for (k = 1; k <= n; k++) {
            name = order[k]
            l = median(vals["lightning" SUBSEP name]); r = median(vals["rocksdb" SUBSEP name])
            printf "%-18s %14.0f %14.0f %8s\n", name, l, r, (r > 0 ? sprintf("%.2fx", l / r) : "-")
        }
    }
' "$OUT"/lightning-*.txt "$OUT"/rocksdb-*.txt
