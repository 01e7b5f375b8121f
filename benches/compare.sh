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
#                      [--value_size=100] [--write_buffer_size=67108864] [--cache_size=8388608]
#                      [--bloom_bits=10] [--write_rate_limit=2097152]
#                      [--steps=STEP,...] [--large-values]
#                      [--blob] [--blob-engines=ENGINE,...] [--min_blob_size=4096]
#                      [--blob_file_size=B] [--blob_compression_type=T]
#                      [--enable_blob_garbage_collection=0|1] [--blob_garbage_collection_age_cutoff=F]
#                      [--blob_garbage_collection_force_threshold=F]
#                      [--out=DIR] [--keep-dbs] [--dry-run]
#
# Steps, each engine on its own database, the engines interleaved step by
# step (their order rotates from round to round):
#   1. fill: fresh DB: fillrandom, then flush and waitforcompaction (write
#      amplification, on-disk size and peak RSS are taken here)
#   2-6. on that DB (--use_existing_db=1): readrandom, readseq,
#      seekrandom --seek_nexts=10, readrandom_t2 (readrandom --threads=2),
#      readwhilewriting --benchmark_write_rate_limit=R
#   7. fillseq_overwrite: fresh DB: fillseq,overwrite
#   8. fillsync: fresh DB: fillsync --writes=1000
#   9. fillsync_t8: fresh DB: fillsync --writes=1000 --threads=8 (8000
#      synced writes)
# Not run by default: overwrite1, overwrite2, overwrite3: on step 1's DB
# (--use_existing_db=1), overwrite,flush,waitforcompaction: --num more
# random writes each, write amplification, on-disk size and peak RSS taken
# after each (they run after readwhilewriting when both are selected).
# Round k passes --seed=k to every engine, so that each draws fresh keys
# (our db_bench's --seed=0 draws the same keys in every process, as the
# fill did; RocksDB's derives the seed from the clock).
# --steps=fill,readrandom,... runs only the steps named (in the order
# above; a step on step 1's DB needs fill). --large-values is
# --steps=fill,readrandom,overwrite1,overwrite2,overwrite3 with, unless
# given, --num=10000 --value_size=100000 (issue 18's large values): a fresh
# fillrandom, readrandom on it, then three rounds of overwrite, with the
# write amplification of the overwrite rounds and the space amplification
# after them.
# --reads=N caps the operations of the point-read and seek steps
# (readrandom, seekrandom, readrandom --threads=2, readwhilewriting; by
# default each does --num) so that a 10M-key run fits in a session; the
# ratios are of ops/sec, so they do not depend on it. readseq always scans
# the whole database.
# Every run has --num, --key_size=16 --value_size=V (--value_size, default
# 100) --compression_type=none and explicit --write_buffer_size,
# --cache_size and --bloom_bits. Before the rounds, every engine runs every
# selected step on --num=2000 (1000 when 2000 values pass 64 MiB) as a
# check that it accepts every flag.
#
# Key-value separation (issue 18): --blob gives every engine
# --enable_blob_files=1 --min_blob_size=4096 (--min_blob_size=N to change
# it), RocksDB's integrated BlobDB flags, which our db_bench maps for fjall
# (its KV separation) and Lightning DB (its options of the same names).
# --blob-engines=rocksdb,fjall gives them to those engines only (implies
# --blob; e.g. a baseline of Lightning DB without blob files against the
# peers with them; the caption says which engines had them).
# --blob_file_size, --blob_compression_type,
# --enable_blob_garbage_collection, --blob_garbage_collection_age_cutoff
# and --blob_garbage_collection_force_threshold are passed to the same
# engines as given (RocksDB's defaults otherwise: 256 MiB, none, GC off,
# 0.25, 1.0; fjall has no forced GC and ignores the last).
#
# Write amplification = bytes the fillrandom process wrote to storage
# (/usr/bin/time -v "File system outputs" x 512: the kernel's per-process
# write_bytes, the same counter as /proc/<pid>/io, so WAL + flush +
# compaction + manifest (+ blob files) for every engine alike) / user
# bytes (num x (16 + value_size)), after the memtable was flushed and
# compaction settled; for the overwrite rounds, the bytes the three
# overwrite processes wrote / their user bytes (3 x num x (16 +
# value_size)). On-disk size: `du -B1` (allocated bytes, so fjall's sparse
# preallocated journal counts only what was written) of the database
# directory after the fillrandom process (the last overwrite round)
# exited. Space amplification after the overwrite rounds = that size /
# live user bytes, live keys being the expected number of distinct keys
# among the (1 + rounds) x num uniform random writes, num x (1 - (1 -
# 1/num)^writes) (every engine draws uniform keys; the exact count is not
# printed by RocksDB). Peak RSS: time's "Maximum resident set size" of the
# fillrandom process (and the largest over the overwrite rounds). See
# docs/benchmarks.md.
#
# Raw outputs stay in --out (default: a new temporary directory):
# r<round>-<step>-<engine>.{txt,err,time} (check/ for the flag check), and
# results.tsv with every number. The databases live under ${TMPDIR:-/tmp} and are removed after
# use unless --keep-dbs (step 1's after the last selected step that uses it). Expected time (docs/benchmarks.md): about 10
# minutes for 3 rounds at --num=1000000 on the 2-core machine, plus the
# first build; about 2 hours at --num=10000000.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/compare-lib.sh

rounds=3
num=""
value_size=""
reads=""
steps=""
large=0
blob_engines=""
min_blob_size=4096
blob_extra=()
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
        --value_size=*) value_size="${a#*=}" ;;
        --steps=*) steps="${a#*=}" ;;
        --large-values) large=1 ;;
        --blob) [ -n "$blob_engines" ] || blob_engines=all ;;
        --blob-engines=*) blob_engines="${a#*=}" ;;
        --min_blob_size=*) min_blob_size="${a#*=}" ;;
        --blob_file_size=* | --blob_compression_type=* | --enable_blob_garbage_collection=* | \
            --blob_garbage_collection_age_cutoff=* | \
            --blob_garbage_collection_force_threshold=*) blob_extra+=("$a") ;;
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
if [ "$large" = 1 ]; then
    [ -n "$steps" ] || steps=fill,readrandom,overwrite1,overwrite2,overwrite3
    [ -n "$num" ] || num=10000
    [ -n "$value_size" ] || value_size=100000
fi
num="${num:-1000000}"
value_size="${value_size:-100}"
[ "$blob_engines" = all ] && blob_engines="$engines"
if [ -n "$blob_engines" ]; then
    IFS=, read -r -a BLOB_ENGINES <<<"$blob_engines"
    for e in "${BLOB_ENGINES[@]}"; do
        has "$e" || die "--blob-engines: '$e' is not in --engines=$engines"
    done
elif [ ${#blob_extra[@]} -gt 0 ]; then
    die "${blob_extra[0]} needs --blob or --blob-engines"
fi
# blob_flags ENGINE: the blob flags of ENGINE, in the array BLOB.
blob_flags() {
    BLOB=()
    [ -n "$1" ] && [[ ",$blob_engines," == *",$1,"* ]] || return 0
    BLOB=(--enable_blob_files=1 --min_blob_size="$min_blob_size" "${blob_extra[@]}")
}

common=(--num="$num" --key_size=16 --value_size="$value_size" --compression_type=none
    --write_buffer_size="$write_buffer_size" --cache_size="$cache_size"
    --bloom_bits="$bloom_bits")

rflag=""
[ -n "$reads" ] && rflag="--reads=$reads"
# step name | database (fresh: a new one; fill: step 1's) | flags
ALL_STEPS=(
    "fill|fresh|--benchmarks=fillrandom,flush,waitforcompaction"
    "readrandom|fill|--use_existing_db=1 --benchmarks=readrandom $rflag"
    "readseq|fill|--use_existing_db=1 --benchmarks=readseq"
    "seekrandom|fill|--use_existing_db=1 --benchmarks=seekrandom --seek_nexts=10 $rflag"
    "readrandom_t2|fill|--use_existing_db=1 --benchmarks=readrandom --threads=2 $rflag"
    "readwhilewriting|fill|--use_existing_db=1 --benchmarks=readwhilewriting --benchmark_write_rate_limit=$rate $rflag"
    "overwrite1|fill|--use_existing_db=1 --benchmarks=overwrite,flush,waitforcompaction --seed=1"
    "overwrite2|fill|--use_existing_db=1 --benchmarks=overwrite,flush,waitforcompaction --seed=2"
    "overwrite3|fill|--use_existing_db=1 --benchmarks=overwrite,flush,waitforcompaction --seed=3"
    "fillseq_overwrite|fresh|--benchmarks=fillseq,overwrite"
    "fillsync|fresh|--benchmarks=fillsync --writes=1000"
    "fillsync_t8|fresh|--benchmarks=fillsync --writes=1000 --threads=8"
)
[ -n "$steps" ] || steps=fill,readrandom,readseq,seekrandom,readrandom_t2,readwhilewriting,fillseq_overwrite,fillsync,fillsync_t8
STEPS=()
for s in "${ALL_STEPS[@]}"; do
    [[ ",$steps," == *",${s%%|*},"* ]] && STEPS+=("$s")
done
for name in ${steps//,/ }; do
    printf '%s\n' "${ALL_STEPS[@]}" | grep -q "^$name|" ||
        die "unknown step '$name' in --steps (one of: $(printf '%s\n' "${ALL_STEPS[@]}" | cut -d'|' -f1 | paste -sd, -))"
done
# The last selected step on step 1's database: that database is removed
# after it.
last_fill=""
for s in "${STEPS[@]}"; do
    IFS='|' read -r step db _ <<<"$s"
    [ "$db" = fill ] && last_fill="$step"
done
if [ -n "$last_fill" ] && [[ ",$steps," != *",fill,"* ]]; then
    die "step $last_fill runs on step 1's database: add fill to --steps"
fi

if [ "$dry" = 1 ]; then
    OURS=target/release/db_bench
    for s in "${STEPS[@]}"; do
        IFS='|' read -r step db flags <<<"$s"
        for e in "${ENGINES[@]}"; do
            engine_cmd "$e"
            blob_flags "$e"
            # shellcheck disable=SC2086
            echo "$step: ${CMD[*]} --db=DIR/$e-$([ "$db" = fill ] && echo fill || echo "$step") ${common[*]} $flags${BLOB[*]:+ ${BLOB[*]}}"
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
    blob_flags "$engine"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    run_engine "$engine" "$prefix" --db="$dir/db" "${common[@]}" $flags "${BLOB[@]}" "$@"
    t1=$(date +%s.%N)
    local suffix=""
    case "$step" in
        readrandom_t2) suffix=", 2 threads" ;;
        fillsync_t8) suffix=", 8 threads" ;;
        overwrite[0-9]) suffix=" #${step#overwrite}" ;;
    esac
    ops_lines "$prefix.txt" | while read -r name ops; do
        printf '%s\t%s\t%s\tops\t%s\n' "$round" "$name$suffix" "$engine" "$ops"
    done >>"$results"
    {
        printf '%s\t%s\t%s\twall_s\t%s\n' "$round" "$step" "$engine" "$(awk "BEGIN { print $t1 - $t0 }")"
        printf '%s\t%s\t%s\trss_kib\t%s\n' "$round" "$step" "$engine" \
            "$(time_field "$prefix.time" 'Maximum resident set size (kbytes)')"
    } >>"$results"
    case "$step" in fill | overwrite[0-9])
        local blocks
        blocks=$(time_field "$prefix.time" 'File system outputs')
        {
            printf '%s\t%s\t%s\twritten_bytes\t%s\n' "$round" "$step" "$engine" "$((blocks * 512))"
            printf '%s\t%s\t%s\tuser_bytes\t%s\n' "$round" "$step" "$engine" "$((num * (16 + value_size)))"
            printf '%s\t%s\t%s\tdisk_bytes\t%s\n' "$round" "$step" "$engine" "$(du -sB1 "$dir/db" | cut -f1)"
        } >>"$results"
        ;;
    esac
    if [ "$db" = fresh ] && [ "$step" != fill ] && [ "$keep" = 0 ]; then rm -rf "$dir"; fi
    if [ "$step" = "$last_fill" ] && [ "$keep" = 0 ]; then rm -rf "$dir"; fi
    return 0
}

# Check: every engine accepts every flag of every step (tiny --num; not
# below 1000: RocksDB's fillsync draws keys from --num / 1000).
check_flags() {
    local saved=("${common[@]}") saved_num="$num" check_num=2000
    [ $((2000 * value_size)) -le 67108864 ] || check_num=1000
    num=$check_num
    mkdir -p "$OUT/check"
    common=(--num="$check_num" --key_size=16 --value_size="$value_size" --compression_type=none
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
    num="$saved_num"
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
rocks_version=$(cat "$OUT"/check/*-rocksdb.err 2>/dev/null | awk '/^RocksDB:/ { print $NF; exit }' || true)
fjall_version=$(awk '/^name = "fjall"/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
heed_version=$(awk '/^name = "heed"/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
lmdb_version=$(cat "$OUT"/check/*-lmdb.txt 2>/dev/null | awk '/^LMDB / { print $2; exit }' || true)
ours_version="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo +dirty)"

python3 - "$results" "$rounds" "$num" "$write_buffer_size" "$cache_size" "$bloom_bits" "$rate" \
    "${rocks_version:-?}" "${fjall_version:-?}" "$ours_version" "$engines" "$(nproc)" "$(uname -r)" \
    "${lmdb_version:-?}" "${heed_version:-?}" "$value_size" "$blob_engines" \
    "$(blob_flags "${BLOB_ENGINES[0]:-}"; echo "${BLOB[*]}")" <<'PY'
import csv, statistics, sys
from collections import defaultdict

(path, rounds, num, wbs, cache, bloom, rate, rocks_v, fjall_v, ours_v,
 engines, cores, kernel, lmdb_v, heed_v, value_size, blob_engines, blob_flags) = sys.argv[1:]
engines = engines.split(",")
blob_engines = [e for e in blob_engines.split(",") if e]
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

def write_amp(steps, e):
    """Median over rounds of (bytes written / user bytes), summed over steps."""
    ws = [vals.get((s, e, "written_bytes")) for s in steps]
    us = [vals.get((s, e, "user_bytes")) for s in steps]
    if not all(ws) or not all(us) or len({len(x) for x in ws + us}) != 1:
        return None
    return statistics.median(sum(w[r] for w in ws) / sum(u[r] for u in us) for r in range(len(ws[0])))

wa = {e: write_amp(["fill"], e) for e in engines}
overwrites = sorted({s for (s, e, m) in vals if s.startswith("overwrite") and m == "written_bytes"})

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
blob_note = ""
if blob_engines:
    with_blob = ", ".join(names[e] for e in engines if e in blob_engines)
    without = ", ".join(names[e] for e in engines if e not in blob_engines)
    blob_note = f" Blob files (`{blob_flags}`): {with_blob}" + (f"; without: {without}." if without else ".")
print(" vs ".join(what[e] for e in ["lightning"] + others if e in engines) +
      f": `--num={num} --key_size=16 --value_size={value_size} --compression_type=none "
      f"--write_buffer_size={wbs} --cache_size={cache} --bloom_bits={bloom}`"
      + (f", readwhilewriting writer at `--benchmark_write_rate_limit={rate}`" if "readwhilewriting" in order else "")
      + f"; median of {rounds} interleaved round(s); {cores} cores, Linux {kernel}."
      + blob_note)
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
if overwrites:
    last = overwrites[-1]
    span = f"{len(overwrites)} overwrite round(s)"
    row(f"write amplification, {span} (lower is better)",
        {e: write_amp(overwrites, e) for e in engines}, lambda v: f"{v:.2f}")
    row(f"on-disk size after {span}, MiB (lower is better)",
        {e: med(last, e, "disk_bytes") / mib if med(last, e, "disk_bytes") is not None else None for e in engines},
        lambda v: f"{v:.1f}")
    # Live keys: expected distinct keys among (1 + rounds) x num uniform draws.
    n = int(num)
    live = n * (1 - (1 - 1 / n) ** (n * (1 + len(overwrites)))) * (16 + int(value_size))
    row(f"space amplification after {span} (on-disk / {live / mib:.1f} MiB live, lower is better)",
        {e: med(last, e, "disk_bytes") / live if med(last, e, "disk_bytes") is not None else None for e in engines},
        lambda v: f"{v:.2f}")
    row(f"peak RSS, largest of the {span}, MiB (lower is better)",
        {e: max(med(s, e, "rss_kib") for s in overwrites) / 1024
         if all(med(s, e, "rss_kib") is not None for s in overwrites) else None for e in engines},
        lambda v: f"{v:.1f}")
total = sum(sum(v) for (s, e, m), v in vals.items() if m == "wall_s")
print()
print(f"Ratios are ours / theirs: above 1 is better for ops/sec, below 1 for the last {7 if overwrites else 'three'} rows. "
      f"Raw numbers: {path}. Wall time of the rounds: {total / 60:.1f} min.")
PY
