#!/usr/bin/env bash
# What the metrics cost: db_bench --benchmarks=fillrandom,readrandom with
# --stats_level=off, counters (the default) and all, interleaved (the
# order rotates every round), median ops/sec of N rounds, and each level's
# ratio to `off`. docs/observability.md reports the figures.
#
#   benches/metrics_overhead.sh [--rounds=5] [--num=1000000] [--base=PATH]
#                               [--out=DIR] [extra db_bench flags...]
#
# --base=PATH adds another db_bench binary (for example one built from the
# commit before the metrics existed) as variant `base`, run without
# --stats_level. Every run uses a fresh temporary database. Raw outputs
# stay in --out (default: a new temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5
num=1000000
base=""
OUT=""
extra=()
for a in "$@"; do
    case "$a" in
        --rounds=*) rounds="${a#*=}" ;;
        --num=*) num="${a#*=}" ;;
        --base=*) base="${a#*=}" ;;
        --out=*) OUT="${a#*=}" ;;
        *) extra+=("$a") ;;
    esac
done
OUT="${OUT:-$(mktemp -d -t metrics-overhead-XXXXXX)}"
mkdir -p "$OUT"

cargo build --release -q -p lightning-tools --bin db_bench
bin="$PWD/target/release/db_bench"
variants=(off counters all)
[ -n "$base" ] && variants+=(base)

run() { # variant round
    local v="$1" r="$2" out="$OUT/r$2-$1.txt"
    if [ "$v" = base ]; then
        "$base" --benchmarks=fillrandom,readrandom --num="$num" "${extra[@]}" >"$out" 2>&1
    else
        "$bin" --benchmarks=fillrandom,readrandom --num="$num" --stats_level="$v" "${extra[@]}" >"$out" 2>&1
    fi
}

n=${#variants[@]}
for ((r = 1; r <= rounds; r++)); do
    for ((i = 0; i < n; i++)); do
        v="${variants[$(((i + r) % n))]}"
        echo "round $r: $v" >&2
        run "$v" "$r"
    done
done

python3 - "$OUT" "$rounds" "${variants[@]}" <<'EOF'
import re, statistics, sys
out, rounds, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
benches = ["fillrandom", "readrandom"]
ops = {}
for v in variants:
    for r in range(1, rounds + 1):
        for line in open(f"{out}/r{r}-{v}.txt"):
            m = re.match(r"(\w+)\s+:\s+[\d.]+ micros/op (\d+) ops/sec", line)
            if m and m.group(1) in benches:
                ops.setdefault((v, m.group(1)), []).append(int(m.group(2)))
print(f"| variant | " + " | ".join(f"{b} ops/s (median of {rounds}) | vs off" for b in benches) + " |")
print("|---|" + "---|---|" * len(benches))
for v in variants:
    cells = []
    for b in benches:
        med = statistics.median(ops[(v, b)])
        ref = statistics.median(ops[("off", b)])
        cells.append(f"{med:,.0f} | {100 * (med / ref - 1):+.1f} %")
    print(f"| {v} | " + " | ".join(cells) + " |")
print()
for v in variants:
    for b in benches:
        print(f"{v} {b}: " + " ".join(f"{x:,}" for x in ops[(v, b)]))
print(f"raw outputs: {out}")
EOF
