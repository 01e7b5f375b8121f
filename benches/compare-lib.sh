# shellcheck shell=bash
# Helpers shared by benches/compare_rocksdb.sh and benches/compare.sh
# (sourced, not run). They install what a comparison needs, build our
# db_bench, and run one engine's db_bench under /usr/bin/time -v.
#
# Engines: lightning (our db_bench), rocksdb (RocksDB 7.8.3's db_bench from
# Debian's rocksdb-tools, /usr/bin/db_bench), fjall (our db_bench with
# --engine=fjall, built with the lightning-tools feature peer-fjall), lmdb
# (our db_bench with --engine=lmdb, built with the feature peer-lmdb).

ROCKSDB_BENCH=/usr/bin/db_bench

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# ensure_tools [ENGINE...]: installs time (/usr/bin/time -v: peak RSS and
# bytes written) and, when rocksdb is among the engines (or none are named),
# Debian's rocksdb-tools (RocksDB's db_bench), if missing.
ensure_tools() {
    local need=() e rocksdb=$(($# == 0))
    for e in "$@"; do [ "$e" = rocksdb ] && rocksdb=1; done
    [ "$rocksdb" = 0 ] || [ -x "$ROCKSDB_BENCH" ] || need+=(rocksdb-tools)
    [ -x /usr/bin/time ] || need+=(time)
    [ ${#need[@]} -eq 0 ] && return 0
    echo "installing ${need[*]}..." >&2
    if ! { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }; then
        die "could not install ${need[*]} (apt-get, as root)"
    fi
}

# build_ours [ENGINE...]: builds our db_bench in release mode, with the
# cargo feature of each peer engine among the arguments (fjall: peer-fjall,
# lmdb: peer-lmdb). Sets OURS to its path.
build_ours() {
    local peers=() features=() e
    for e in "$@"; do
        case "$e" in
            fjall) peers+=(peer-fjall) ;;
            lmdb) peers+=(peer-lmdb) ;;
        esac
    done
    [ ${#peers[@]} -gt 0 ] && features=(--features "$(IFS=,; echo "${peers[*]}")")
    cargo build --release -q -p lightning-tools --bin db_bench "${features[@]}" ||
        die "cargo build of db_bench failed"
    OURS="$PWD/target/release/db_bench"
}

# The command line of ENGINE's db_bench, in the array CMD.
engine_cmd() {
    case "$1" in
        lightning) CMD=("$OURS") ;;
        fjall) CMD=("$OURS" --engine=fjall) ;;
        lmdb) CMD=("$OURS" --engine=lmdb) ;;
        rocksdb) CMD=("$ROCKSDB_BENCH") ;;
        *) die "unknown engine '$1' (lightning, rocksdb, fjall, lmdb)" ;;
    esac
}

# run_engine ENGINE PREFIX FLAGS...: after a `sync`, runs ENGINE's db_bench with FLAGS under
# /usr/bin/time -v. Writes PREFIX.txt (stdout), PREFIX.err (stderr) and
# PREFIX.time (time's report). stdout and stderr go through pipes, so the
# bytes the benchmark writes to disk (time's "File system outputs") are
# only the database's. Fails with the end of stderr when db_bench fails.
run_engine() {
    local engine="$1" prefix="$2"
    shift 2
    engine_cmd "$engine"
    # Start on a quiet disk: commit what the previous step (or engine)
    # left behind, above all the removal of its database, so that this
    # run's fdatasyncs do not queue behind it. Without it the synced steps
    # swung with the engine order: right after removing a 1M-key database,
    # fillsync ran 6.3-7.4K ops/sec (one run with a p95 of 557 µs), after
    # the same removal and a `sync` 9.3-9.6K (p95 131-139 µs).
    sync
    if ! /usr/bin/time -v -o "$prefix.time" "${CMD[@]}" "$@" \
        2> >(cat >"$prefix.err") | cat >"$prefix.txt"; then
        sleep 0.2
        tail -5 "$prefix.err" >&2
        die "$engine failed: ${CMD[*]} $*"
    fi
}

# ops_lines FILE: "name ops_per_sec" for each db_bench result line, in both
# tools' formats ("fillrandom : 2.345 micros/op 426439 ops/sec; ...").
ops_lines() {
    awk '/ micros\/op / && / ops\/sec/ {
        for (i = 2; i <= NF; i++) if ($i ~ /^ops\/sec/) { print $1, $(i - 1); break }
    }' "$1"
}

# time_field FILE 'Label': a number from /usr/bin/time -v's report, e.g.
# 'Maximum resident set size (kbytes)' or 'File system outputs'.
time_field() {
    awk -v label="$2" -F': ' 'index($0, label) { v = $NF } END { print v + 0 }' "$1"
}
