#!/usr/bin/env bash
# Runs Lightning DB's db_bench and RocksDB's db_bench (Debian's
# rocksdb-tools, installed if missing) on the same flags, interleaved
# A B A B, and prints per benchmark the median ops/sec of each and the ratio
# ours / RocksDB. With --engines=lightning,rocksdb,fjall, fjall 3 (our
# db_bench --engine=fjall, built with the peer-fjall feature) runs too,
# with a ratio ours / fjall; likewise lmdb (our db_bench --engine=lmdb,
# built with the peer-lmdb feature) with a ratio ours / lmdb.
#
#   benches/compare_rocksdb.sh [--rounds=3] [--engines=lightning,rocksdb[,fjall][,lmdb]] [db_bench flags...]
#
# Example:
#   benches/compare_rocksdb.sh --rounds=3 --num=1000000 --key_size=16 \
#     --value_size=100 --compression_type=none --bloom_bits=10 \
#     --benchmarks=fillrandom,readrandom,readseq,seekrandom
#
# For the performance issue's full set of steps (fresh databases, steps
# reusing one, write amplification, on-disk size, peak RSS), use
# benches/compare.sh.
#
# Each benchmark list runs in one process per engine per round on a fresh
# temporary directory, so read benchmarks read what the fills before them
# in the same list wrote. Raw outputs are kept in $OUT (default: a new
# temporary directory), named <engine>-<round>.{txt,err,time}.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/compare-lib.sh

rounds=3
engines=lightning,rocksdb
flags=()
for a in "$@"; do
    case "$a" in
        --rounds=*) rounds="${a#--rounds=}" ;;
        --engines=*) engines="${a#--engines=}" ;;
        *) flags+=("$a") ;;
    esac
done
if ! printf '%s\n' "${flags[@]:-}" | grep -q -- '--benchmarks='; then
    flags+=("--benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom")
fi
IFS=, read -r -a ENGINES <<<"$engines"
for e in "${ENGINES[@]}"; do
    case "$e" in
        lightning | rocksdb | fjall | lmdb) ;;
        *) die "unknown engine '$e' (lightning, rocksdb, fjall, lmdb)" ;;
    esac
done

ensure_tools "${ENGINES[@]}"
build_ours "${ENGINES[@]}"
OUT="${OUT:-$(mktemp -d -t compare-rocksdb-XXXXXX)}"
mkdir -p "$OUT"
echo "outputs in $OUT" >&2

for r in $(seq 1 "$rounds"); do
    for engine in "${ENGINES[@]}"; do
        dir="$(mktemp -d -t "bench-$engine-XXXXXX")"
        run_engine "$engine" "$OUT/$engine-$r" --db="$dir/db" "${flags[@]}"
        rm -rf "$dir"
        echo "round $r $engine done" >&2
    done
done

for engine in "${ENGINES[@]}"; do
    for r in $(seq 1 "$rounds"); do
        ops_lines "$OUT/$engine-$r.txt" | sed "s/^/$engine /"
    done
done | awk -v engines="$engines" '
    # Input lines: engine benchmark ops_per_sec
    {
        key = $1 SUBSEP $2
        vals[key] = vals[key] " " $3
        if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 }
    }
    function median(s,    a, m, i, j, t) {
        m = split(s, a, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        if (m == 0) return 0
        return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        ne = split(engines, e, ",")
        printf "%-18s", "benchmark"
        for (i = 1; i <= ne; i++) printf " %14s", e[i]
        for (i = 1; i <= ne; i++) if (e[i] != "lightning") printf " %10s", "ours/" e[i]
        printf "\n"
        for (k = 1; k <= n; k++) {
            name = order[k]
            printf "%-18s", name
            l = median(vals["lightning" SUBSEP name])
            for (i = 1; i <= ne; i++) printf " %14.0f", median(vals[e[i] SUBSEP name])
            for (i = 1; i <= ne; i++) if (e[i] != "lightning") {
                r = median(vals[e[i] SUBSEP name])
                printf " %10s", (r > 0 && l > 0 ? sprintf("%.2fx", l / r) : "-")
            }
            printf "\n"
        }
    }
'
