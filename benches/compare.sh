#!/usr/bin/env bash
# The performance issue's side-by-side run: Lightning DB's db_bench,
# RocksDB 7.8.3's db_bench (Debian's rocksdb-tools) and fjall 3 (our
# db_bench --engine=fjall), same flags, interleaved, median of N rounds.
# Prints one markdown table with ops/sec, ratios ours / RocksDB and
# ours / fjall, write amplification, on-disk size and peak RSS. With lmdb
# in --engines, LMDB (our db_bench --engine=lmdb, built with the peer-lmdb
# feature; the anchor for reads) runs too, with a ratio ours / LMDB.
#
#   benches/compare.sh [--rounds=3] [--num=1000000] [--reads=N] [--engines=lightning,rocksdb,fjall[,lmdb]]
#                      [--write_buffer_size=67108864] [--cache_size=8388608]
#                      [--bloom_bits=10] [--write_rate_limit=2097152]
#                      [--out=DIR] [--keep-dbs] [--dry-run]
#
# Steps, each engine on its own database, the engines interleaved step by
# step (their order rotates from round to round):
#   1. fresh DB: fillrandom, then flush and waitforcompaction (write
#      amplification, on-disk size and peak RSS are taken here)
#   2-6. on that DB (--use_existing_db=1): readrandom, readseq,
#      seekrandom --seek_nexts=10, readrandom --threads=2,
#      readwhilewriting --benchmark_write_rate_limit=R
#   7. fresh DB: fillseq,overwrite
#   8. fresh DB: fillsync --writes=1000
#   9. fresh DB: fillsync --writes=1000 --threads=8 (8000 synced writes)
# --reads=N caps the operations of the point-read and seek steps
# (readrandom, seekrandom, readrandom --threads=2, readwhilewriting; by
# default each does --num) so that a 10M-key run fits in a session; the
# ratios are of ops/sec, so they do not depend on it. readseq always scans
# the whole database.
# Every run has --num, --key_size=16 --value_size=100
# --compression_type=none and explicit --write_buffer_size, --cache_size
# and --bloom_bits. Before the rounds, every engine runs every step on
# --num=2000 as a check that it accepts every flag.
#
# Write amplification = bytes the fillrandom process wrote to storage
# (/usr/bin/time -v "File system outputs" x 512: the kernel's per-process
# write_bytes, the same counter as /proc/<pid>/io, so WAL + flush +
# compaction + manifest for every engine alike) / user bytes
# (num x (16 + 100)), after the memtable was flushed and compaction
# settled. On-disk size: `du -B1` (allocated bytes, so fjall's sparse
# preallocated journal counts only what was written) of the database
# directory after the fillrandom process exited. Peak RSS: time's
# "Maximum resident set size" of that process. See docs/benchmarks.md.
#
# Raw outputs stay in --out (default: a new temporary directory):
# r<round>-<step>-<engine>.{txt,err,time} (check/ for the flag check), and
# results.tsv with every number. The databases live under ${TMPDIR:-/tmp} and are removed after
# use unless --keep-dbs. Expected time (docs/benchmarks.md): about 10
# minutes for 3 rounds at --num=1000000 on the 2-core machine, plus the
# first build; about 2 hours at --num=10000000.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/compare-lib.sh

rounds=3
num=1000000
reads=""
engines=lightning,rocksdb,fjall
write_buffer_size=67108864
cache_size=8388608
bloom_bits=10
rate=2097152
OUT="${OUT:-}"
keep=0
dry=0
for a in "$@"; do
    case "$a" in
        --rounds=*) rounds="${a#*=}" ;;
        --num=*) num="${a#*=}" ;;
        --reads=*) reads="${a#*=}" ;;
        --engines=*) engines="${a#*=}" ;;
        --write_buffer_size=*) write_buffer_size="${a#*=}" ;;
        --cache_size=*) cache_size="${a#*=}" ;;
        --bloom_bits=*) bloom_bits="${a#*=}" ;;
        --write_rate_limit=* | --benchmark_write_rate_limit=*) rate="${a#*=}" ;;
        --out=*) OUT="${a#*=}" ;;
        --keep-dbs) keep=1 ;;
        --dry-run) dry=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$a' (see --help)" ;;
    esac
done
IFS=, read -r -a ENGINES <<<"$engines"
for e in "${ENGINES[@]}"; do
    case "$e" in lightning | rocksdb | fjall | lmdb) ;; *) die "unknown engine '$e' (lightning, rocksdb, fjall, lmdb)" ;; esac
done
has() { [[ ",$engines," == *",$1,"* ]]; }

common=(--num="$num" --key_size=16 --value_size=100 --compression_type=none
    --write_buffer_size="$write_buffer_size" --cache_size="$cache_size"
    --bloom_bits="$bloom_bits")

rflag=""
[ -n "$reads" ] && rflag="--reads=$reads"
# step name | database (fresh: a new one; fill: step 1's) | flags
STEPS=(
    "fill|fresh|--benchmarks=fillrandom,flush,waitforcompaction"
    "readrandom|fill|--use_existing_db=1 --benchmarks=readrandom $rflag"
    "readseq|fill|--use_existing_db=1 --benchmarks=readseq"
    "seekrandom|fill|--use_existing_db=1 --benchmarks=seekrandom --seek_nexts=10 $rflag"
    "readrandom_t2|fill|--use_existing_db=1 --benchmarks=readrandom --threads=2 $rflag"
    "readwhilewriting|fill|--use_existing_db=1 --benchmarks=readwhilewriting --benchmark_write_rate_limit=$rate $rflag"
    "fillseq_overwrite|fresh|--benchmarks=fillseq,overwrite"
    "fillsync|fresh|--benchmarks=fillsync --writes=1000"
    "fillsync_t8|fresh|--benchmarks=fillsync --writes=1000 --threads=8"
)

if [ "$dry" = 1 ]; then
    OURS=target/release/db_bench
    for s in "${STEPS[@]}"; do
        IFS='|' read -r step db flags <<<"$s"
        for e in "${ENGINES[@]}"; do
            engine_cmd "$e"
            # shellcheck disable=SC2086
            echo "$step: ${CMD[*]} --db=DIR/$e-$([ "$db" = fill ] && echo fill || echo "$step") ${common[*]} $flags"
        done
    done
    exit 0
fi

ensure_tools "${ENGINES[@]}"
build_ours "${ENGINES[@]}"
OUT="${OUT:-$(mktemp -d -t compare-XXXXXX)}"
mkdir -p "$OUT"
WORK="$(mktemp -d -t compare-dbs-XXXXXX)"
[ "$keep" = 1 ] || trap 'rm -rf "$WORK"' EXIT
echo "outputs in $OUT, databases in $WORK" >&2
results="$OUT/results.tsv"
printf 'round\tstep\tengine\tmetric\tvalue\n' >"$results"

# run_step ROUND STEP DB FLAGS ENGINE [EXTRA...]: one db_bench process.
run_step() {
    local round="$1" step="$2" db="$3" flags="$4" engine="$5"
    shift 5
    local dir="$WORK/r$round-$engine-fill"
    [ "$db" = fresh ] && [ "$step" != fill ] && dir="$WORK/r$round-$engine-$step"
    [ "$step" = fill ] && rm -rf "$dir"
    mkdir -p "$dir"
    local prefix="$OUT/r$round-$step-$engine" t0 t1
    [ "$round" = check ] && prefix="$OUT/check/$step-$engine"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    run_engine "$engine" "$prefix" --db="$dir/db" "${common[@]}" $flags "$@"
    t1=$(date +%s.%N)
    local suffix=""
    case "$step" in
        readrandom_t2) suffix=", 2 threads" ;;
        fillsync_t8) suffix=", 8 threads" ;;
    esac
    ops_lines "$prefix.txt" | while read -r name ops; do
        printf '%s\t%s\t%s\tops\t%s\n' "$round" "$name$suffix" "$engine" "$ops"
    done >>"$results"
    {
        printf '%s\t%s\t%s\twall_s\t%s\n' "$round" "$step" "$engine" "$(awk "BEGIN { print $t1 - $t0 }")"
        printf '%s\t%s\t%s\trss_kib\t%s\n' "$round" "$step" "$engine" \
            "$(time_field "$prefix.time" 'Maximum resident set size (kbytes)')"
    } >>"$results"
    if [ "$step" = fill ]; then
        local blocks
        blocks=$(time_field "$prefix.time" 'File system outputs')
        {
            printf '%s\tfill\t%s\twritten_bytes\t%s\n' "$round" "$engine" "$((blocks * 512))"
            printf '%s\tfill\t%s\tuser_bytes\t%s\n' "$round" "$engine" "$((num * 116))"
            printf '%s\tfill\t%s\tdisk_bytes\t%s\n' "$round" "$engine" "$(du -sB1 "$dir/db" | cut -f1)"
        } >>"$results"
    fi
    if [ "$db" = fresh ] && [ "$step" != fill ] && [ "$keep" = 0 ]; then rm -rf "$dir"; fi
    if [ "$step" = readwhilewriting ] && [ "$keep" = 0 ]; then rm -rf "$dir"; fi
    return 0
}

# Check: every engine accepts every flag of every step (tiny --num; not
# below 1000: RocksDB's fillsync draws keys from --num / 1000).
check_flags() {
    local saved=("${common[@]}")
    mkdir -p "$OUT/check"
    common=(--num=2000 --key_size=16 --value_size=100 --compression_type=none
        --write_buffer_size="$write_buffer_size" --cache_size="$cache_size"
        --bloom_bits="$bloom_bits")
    for e in "${ENGINES[@]}"; do
        for s in "${STEPS[@]}"; do
            IFS='|' read -r step db flags <<<"$s"
            run_step check "$step" "$db" "$flags" "$e"
            ops_lines "$OUT/check/$step-$e.txt" | grep -q . ||
                die "$e printed no result line for step $step (see $OUT/check/$step-$e.txt)"
        done
    done
    common=("${saved[@]}")
    # The check's rows are not part of the results.
    grep -v '^check' "$results" >"$results.tmp" && mv "$results.tmp" "$results"
}
check_flags
echo "flag check passed: ${ENGINES[*]}" >&2

start=$(date +%s)
for r in $(seq 1 "$rounds"); do
    # Rotate the engine order from round to round.
    order=()
    n=${#ENGINES[@]}
    for i in $(seq 0 $((n - 1))); do order+=("${ENGINES[$(((i + r - 1) % n))]}"); done
    for s in "${STEPS[@]}"; do
        IFS='|' read -r step db flags <<<"$s"
        for e in "${order[@]}"; do
            run_step "$r" "$step" "$db" "$flags" "$e"
        done
        echo "round $r/$rounds: $step done ($((($(date +%s) - start) / 60)) min)" >&2
    done
done

# Versions, for the table's caption.
rocks_version=$(awk '/^RocksDB:/ { print $NF; exit }' "$OUT"/check/fill-rocksdb.err 2>/dev/null || true)
fjall_version=$(awk '/^name = "fjall"/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
heed_version=$(awk '/^name = "heed"/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
lmdb_version=$(awk '/^LMDB / { print $2; exit }' "$OUT"/check/fill-lmdb.txt 2>/dev/null || true)
ours_version="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"

python3 - "$results" "$rounds" "$num" "$write_buffer_size" "$cache_size" "$bloom_bits" "$rate" \
    "${rocks_version:-?}" "${fjall_version:-?}" "$ours_version" "$engines" "$(nproc)" "$(uname -r)" \
    "${lmdb_version:-?}" "${heed_version:-?}" <<'PY'
import csv, statistics, sys
from collections import defaultdict

(path, rounds, num, wbs, cache, bloom, rate, rocks_v, fjall_v, ours_v,
 engines, cores, kernel, lmdb_v, heed_v) = sys.argv[1:]
engines = engines.split(",")
vals = defaultdict(list)  # (step, engine, metric) -> values over rounds
order = []
with open(path) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        key = (row["step"], row["engine"], row["metric"])
        vals[key].append(float(row["value"]))
        if row["metric"] == "ops" and row["step"] not in order:
            order.append(row["step"])

def med(step, engine, metric):
    v = vals.get((step, engine, metric))
    return statistics.median(v) if v else None

wa = {}
for e in engines:
    w, u = vals.get(("fill", e, "written_bytes")), vals.get(("fill", e, "user_bytes"))
    if w and u:
        wa[e] = statistics.median(a / b for a, b in zip(w, u))

names = {"lightning": "Lightning DB", "rocksdb": "RocksDB", "fjall": "fjall", "lmdb": "LMDB"}
others = [e for e in ("rocksdb", "fjall", "lmdb") if e in engines]
head = ["benchmark"] + [names[e] for e in engines]
if "lightning" in engines:
    head += ["ours / " + names[e] for e in others]

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"

def row(label, per_engine, fmt):
    cells = [label] + [fmt(per_engine.get(e)) if per_engine.get(e) is not None else "-" for e in engines]
    if "lightning" in engines:
        cells += [ratio(per_engine.get("lightning"), per_engine.get(e)) for e in others]
    print("| " + " | ".join(cells) + " |")

mib = 1048576
what = {"lightning": f"Lightning DB {ours_v}",
        "rocksdb": f"RocksDB {rocks_v} `db_bench` (Debian rocksdb-tools)",
        "fjall": f"fjall {fjall_v} (`db_bench --engine=fjall`)",
        "lmdb": f"LMDB {lmdb_v} via heed {heed_v} (`db_bench --engine=lmdb`)"}
print(" vs ".join(what[e] for e in ["lightning"] + others if e in engines) +
      f": `--num={num} --key_size=16 --value_size=100 --compression_type=none "
      f"--write_buffer_size={wbs} --cache_size={cache} --bloom_bits={bloom}`, readwhilewriting writer at "
      f"`--benchmark_write_rate_limit={rate}`; median of {rounds} interleaved round(s); {cores} cores, Linux {kernel}.")
print()
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
for step in order:
    row(f"{step} (ops/sec)", {e: med(step, e, "ops") for e in engines}, lambda v: f"{v:,.0f}")
row("write amplification, fillrandom (lower is better)", wa, lambda v: f"{v:.2f}")
row("on-disk size after fillrandom, MiB (lower is better)",
    {e: med("fill", e, "disk_bytes") / mib if med("fill", e, "disk_bytes") is not None else None for e in engines},
    lambda v: f"{v:.1f}")
row("peak RSS, fillrandom, MiB (lower is better)",
    {e: med("fill", e, "rss_kib") / 1024 if med("fill", e, "rss_kib") is not None else None for e in engines},
    lambda v: f"{v:.1f}")
total = sum(sum(v) for (s, e, m), v in vals.items() if m == "wall_s")
print()
print(f"Ratios are ours / theirs: above 1 is better for ops/sec, below 1 for the last three rows. "
      f"Raw numbers: {path}. Wall time of the rounds: {total / 60:.1f} min.")
PY
