//! `db_bench` runs every benchmark and prints lines in RocksDB's format.
//!
//! Why it matters: users compare its output with RocksDB's `db_bench` line
//! by line, and scripts parse it.

use std::process::Command;

/// Parses `name : X micros/op Y ops/sec;[ Z MB/s][ (a of b found)]`.
fn parse_line(line: &str) -> Option<(String, f64, f64)> {
    let (name, rest) = line.split_once(" : ")?;
    let mut words = rest.split_whitespace();
    let micros: f64 = words.next()?.parse().ok()?;
    if words.next()? != "micros/op" {
        return None;
    }
    let ops: f64 = words.next()?.parse().ok()?;
    if words.next()? != "ops/sec;" {
        return None;
    }
    Some((name.trim().to_string(), micros, ops))
}

/// The benchmarks that print a `micros/op` line.
const BENCHMARKS: [&str; 12] = [
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "multireadrandom",
    "readhot",
    "readseq",
    "readreverse",
    "seekrandom",
    "deleterandom",
    "readwhilewriting",
    "fillsync",
];

/// Runs every benchmark on `engine`, checks each line, returns stdout.
fn run_every_benchmark(engine: &str) -> String {
    let benchmarks = BENCHMARKS;
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            &format!("--engine={engine}"),
            "--num=10000",
            &format!(
                "--benchmarks={},flush,waitforcompaction,stats",
                benchmarks.join(",")
            ),
            "--histogram=1",
            "--seek_nexts=10",
            "--benchmark_write_rate_limit=1000000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<_> = stdout.lines().filter_map(parse_line).collect();
    for b in benchmarks {
        let (_, micros, ops) = parsed
            .iter()
            .find(|(n, _, _)| n == b)
            .unwrap_or_else(|| panic!("no line for {b} in:\n{stdout}"));
        assert!(
            *micros > 0.0 && *ops > 0.0,
            "{b}: {micros} micros/op {ops} ops/sec"
        );
    }
    let found = stdout
        .lines()
        .find(|l| l.starts_with("readrandom"))
        .unwrap();
    assert!(found.contains(" of 10000 found)"), "{found}");
    assert!(stdout.contains("Microseconds per op: P50:"), "{stdout}");
    assert!(stdout.contains("flush        :"), "{stdout}");
    assert!(stdout.contains("Peak memory (VmHWM):"), "{stdout}");
    stdout
}

#[test]
fn every_benchmark_runs_and_its_line_parses() {
    let stdout = run_every_benchmark("lightning");
    assert!(stdout.contains("** Compaction Stats **"), "{stdout}");
}

/// The peer engine runs the same benchmarks through the same code.
#[cfg(feature = "peer-fjall")]
#[test]
fn every_benchmark_runs_on_fjall() {
    let stdout = run_every_benchmark("fjall");
    assert!(stdout.contains("fjall 3 (peer engine)"), "{stdout}");
    assert!(stdout.contains("tables ("), "{stdout}");
}

/// The `(found of reads)` of `fillrandom,readrandom` on `engine`.
#[cfg(any(feature = "peer-fjall", feature = "peer-lmdb"))]
fn readrandom_found(engine: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            &format!("--engine={engine}"),
            "--num=5000",
            "--benchmarks=fillrandom,readrandom",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("readrandom"))
        .unwrap();
    line[line.rfind('(').unwrap()..].to_string()
}

/// Both engines see the same keys: the same seeds give the same number of
/// distinct keys, so `readrandom` finds exactly as many.
#[cfg(feature = "peer-fjall")]
#[test]
fn fjall_and_lightning_get_the_same_keys() {
    assert_eq!(readrandom_found("lightning"), readrandom_found("fjall"));
}

/// The read peer runs the same benchmarks through the same code.
#[cfg(feature = "peer-lmdb")]
#[test]
fn every_benchmark_runs_on_lmdb() {
    let stdout = run_every_benchmark("lmdb");
    assert!(stdout.contains("(mdb.master) via heed"), "{stdout}");
    assert!(stdout.contains("B+tree depth"), "{stdout}");
}

#[cfg(feature = "peer-lmdb")]
#[test]
fn lmdb_and_lightning_get_the_same_keys() {
    assert_eq!(readrandom_found("lightning"), readrandom_found("lmdb"));
}

/// LMDB's write transactions are not driven by txnbank: it says so.
#[cfg(feature = "peer-lmdb")]
#[test]
fn txnbank_on_lmdb_fails_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--engine=lmdb", "--benchmarks=txnbank", "--writes=10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("txnbank needs transactions"));
}

#[cfg(not(feature = "peer-fjall"))]
#[test]
fn fjall_engine_without_the_feature_says_how_to_build_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--engine=fjall", "--num=10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features peer-fjall"));
}

#[cfg(not(feature = "peer-lmdb"))]
#[test]
fn lmdb_engine_without_the_feature_says_how_to_build_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--engine=lmdb", "--num=10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features peer-lmdb"));
}

#[test]
fn unknown_benchmark_and_bad_flag_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--num=10", "--benchmarks=fillseq,nosuchbench"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nosuchbench") && stderr.contains("fillrandom"),
        "the error names the bad benchmark and lists the good ones: {stderr}"
    );
    // Refused before anything ran: no fillseq result line.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("fillseq"), "{stdout}");
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--compression_type=lz4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lz4"));
}

/// The blob flags reach Lightning DB's options: with
/// `--enable_blob_files=1` large values are written to blob files and read
/// back (readrandom finds them all); a value the options refuse is a bad
/// flag (exit code 2) before any benchmark runs.
#[test]
fn blob_flags_turn_on_key_value_separation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            "--num=200",
            "--value_size=8000",
            "--benchmarks=fillseq,flush,readrandom",
            "--enable_blob_files=1",
            "--min_blob_size=4096",
            "--blob_file_size=1048576",
            "--enable_blob_garbage_collection=1",
            "--blob_garbage_collection_age_cutoff=0.5",
        ])
        .arg(format!("--db={}", db.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(200 of 200 found)"), "{stdout}");
    let blobs = std::fs::read_dir(&db)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "blob")
        })
        .count();
    assert!(blobs >= 1, "no blob file in {}", db.display());

    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            "--num=10",
            "--benchmarks=fillrandom",
            "--enable_blob_files=1",
            "--blob_file_size=1000",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("blob_file_size"));

    // An age cutoff outside [0, 1] is a bad flag.
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args(["--num=10", "--blob_garbage_collection_age_cutoff=1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// fjall takes the blob flags as its key-value separation: the header says
/// so, and large values written and overwritten read back.
#[cfg(feature = "peer-fjall")]
#[test]
fn fjall_accepts_the_blob_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            "--engine=fjall",
            "--num=300",
            "--value_size=5000",
            "--benchmarks=fillrandom,overwrite,flush,waitforcompaction,readrandom",
            "--enable_blob_files=1",
            "--min_blob_size=4096",
            "--blob_file_size=1048576",
            "--blob_compression_type=none",
            "--enable_blob_garbage_collection=1",
            "--blob_garbage_collection_age_cutoff=0.5",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("kv separation on (threshold 4096, file size 1048576"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("readrandom"))
        .unwrap();
    assert!(!line.contains("(0 of"), "{line}");
    // zstd blobs: not in fjall (a bad flag, exit code 2).
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            "--engine=fjall",
            "--num=10",
            "--enable_blob_files=1",
            "--blob_compression_type=zstd",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn use_existing_db_reads_what_an_earlier_run_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
            .arg(format!("--db={}", db.display()))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["--num=5000", "--benchmarks=fillseq"]);
    let out = run(&[
        "--num=5000",
        "--benchmarks=readrandom",
        "--use_existing_db=1",
    ]);
    let line = out.lines().find(|l| l.starts_with("readrandom")).unwrap();
    assert!(line.contains("(5000 of 5000 found)"), "{line}");
}

/// Regression: `overwrite` drew the same random keys as the `fillrandom`
/// before it (one seed for every benchmark), so it overwrote only what was
/// there; RocksDB's draws fresh keys, and the two runs must be comparable.
#[test]
fn overwrite_draws_fresh_random_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .arg(format!("--db={}", db.display()))
        .args(["--num=10000", "--benchmarks=fillrandom,overwrite"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let db = lightning_db::Db::open(&db, lightning_db::Options::default()).unwrap();
    let n = db.iter().count();
    // 20,000 uniform draws from 10,000 keys cover about 1 - e^-2 = 86.5 %;
    // the same 10,000 draws twice would cover 63.2 %.
    assert!(n > 8_200, "{n} distinct keys after fillrandom + overwrite");
}

/// The bank-transfer transaction benchmark (Lightning DB only): its line
/// parses and the abort rate follows it.
#[test]
fn txnbank_runs_and_reports_its_abort_rate() {
    let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
        .args([
            "--benchmarks=txnbank",
            "--writes=2000",
            "--threads=2",
            "--accounts=16",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, micros, ops) = stdout
        .lines()
        .filter_map(parse_line)
        .find(|(n, _, _)| n == "txnbank")
        .unwrap_or_else(|| panic!("no txnbank line in:\n{stdout}"));
    assert!(micros > 0.0 && ops > 0.0, "{stdout}");
    assert!(stdout.contains("aborted attempts:"), "{stdout}");
    assert!(stdout.contains("; 16 accounts)"), "{stdout}");
}

/// `mergerandom` merges with the chosen operator (the database reads back
/// with it, every key), and `updaterandom` counts exactly: 2 threads ×
/// 3,000 transactional increments sum to 6,000.
#[test]
fn mergerandom_and_updaterandom_count() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let run = |bench: &str, db: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_db_bench"))
            .args([
                &format!("--benchmarks={bench}"),
                &format!("--db={db}"),
                "--num=500",
                "--writes=3000",
                "--threads=2",
            ])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let merged = dir.path().join("merged");
    let (ok, stdout, stderr) = run(
        "mergerandom",
        merged.to_str().unwrap(),
        &["--merge_operator=stringappend", "--value_size=8"],
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .filter_map(parse_line)
            .any(|(n, _, _)| n == "mergerandom"),
        "{stdout}"
    );
    let opts = lightning_db::Options::default()
        .merge_operator(Some(Arc::new(lightning_db::AppendOperator::new(","))));
    let db = lightning_db::Db::open(&merged, opts).unwrap();
    let mut pieces = 0;
    for r in db.iter() {
        let (_, v) = r.unwrap();
        // 8-byte operands joined by ',': (len + 1) / 9 of them.
        assert_eq!((v.len() + 1) % 9, 0, "{v:?}");
        pieces += (v.len() + 1) / 9;
    }
    assert_eq!(pieces, 6000);
    drop(db);

    let counted = dir.path().join("counted");
    let (ok, stdout, stderr) = run(
        "updaterandom",
        counted.to_str().unwrap(),
        &["--value_size=8"],
    );
    assert!(ok, "{stdout}\n{stderr}");
    let db = lightning_db::Db::open(&counted, lightning_db::Options::default()).unwrap();
    let total: u64 = db
        .iter()
        .map(|r| u64::from_le_bytes(r.unwrap().1[..8].try_into().unwrap()))
        .sum();
    assert_eq!(total, 6000);
    drop(db);

    let (ok, _, stderr) = run(
        "mergerandom",
        dir.path().join("bad").to_str().unwrap(),
        &["--merge_operator=uint64add", "--value_size=16"],
    );
    assert!(!ok && stderr.contains("needs --value_size=8"), "{stderr}");
    let (ok, _, stderr) = run(
        "mergerandom",
        dir.path().join("none").to_str().unwrap(),
        &["--value_size=8"],
    );
    assert!(!ok && stderr.contains("no merge operator"), "{stderr}");
}
