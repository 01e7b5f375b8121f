//! Process crashes in the middle of flushes and compactions.
//!
//! A child process (this test binary, re-run with an environment variable)
//! writes synced batches into a database tuned so that flushes and
//! compactions run all the time, and reports each acknowledged batch on
//! stdout. The parent kills it with SIGKILL at a random moment, reopens
//! the database and checks that it holds exactly the batches up to the
//! last acknowledged one (or one more: a batch can be durable before its
//! acknowledgement is printed), and that no SST file is left that the
//! manifest does not list. Then the next child continues from there.
//!
//! Why it matters: a crash between writing compaction outputs and the
//! manifest edit must lose nothing, duplicate nothing, and leave no orphan.
//!
//! `LIGHTNING_CRASH_CYCLES=N` sets the number of kill cycles (default 8).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lightning_db::{inspect, Db, Options, WriteBatch, WriteOptions};

const KEYS: u64 = 3000;
const PER_BATCH: u64 = 40;
const CHILD_ENV: &str = "LIGHTNING_CRASH_CHILD_DIR";
const START_ENV: &str = "LIGHTNING_CRASH_CHILD_START";

fn options() -> Options {
    let mut o = Options {
        write_buffer_size: 64 * 1024,
        max_write_buffer_number: 3,
        ..Options::default()
    };
    o.compaction.level0_file_num_compaction_trigger = 2;
    o.compaction.max_bytes_for_level_base = 64 * 1024;
    o.compaction.target_file_size_base = 64 * 1024;
    o.compaction.max_subcompactions = 2;
    o
}

fn batch_keys(round: u64) -> impl Iterator<Item = u64> {
    (0..PER_BATCH).map(move |j| (round * 7919 + j * 13) % KEYS)
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:06}").into_bytes()
}

fn value(round: u64) -> Vec<u8> {
    let mut v = round.to_be_bytes().to_vec();
    v.resize(100, b'v');
    v
}

/// The state after rounds `0..n`.
fn model(n: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for r in 0..n {
        for k in batch_keys(r) {
            m.insert(key(k), value(r));
        }
    }
    m
}

/// The child: writes synced rounds from `START` on, forever.
#[test]
#[ignore = "child process of crash_then_reopen_loses_nothing; run by the parent"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, options()).unwrap();
    let mut out = std::io::stdout().lock();
    for round in start.. {
        let mut b = WriteBatch::new();
        for k in batch_keys(round) {
            b.put(key(k), value(round));
        }
        db.write_opt(b, &WriteOptions { sync: true }).unwrap();
        writeln!(out, "ack {round}").unwrap();
        out.flush().unwrap();
    }
}

fn live_files(dir: &Path) -> BTreeSet<u64> {
    let n = inspect::read_current(dir).unwrap();
    let mut live = BTreeSet::new();
    for (_, edit) in inspect::read_manifest(dir.join(format!("MANIFEST-{n:06}"))).unwrap() {
        for (_, f) in &edit.deleted_files {
            live.remove(f);
        }
        for (_, m) in &edit.new_files {
            live.insert(m.number);
        }
    }
    live
}

fn sst_files(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sst").and_then(|n| n.parse().ok())
        })
        .collect()
}

#[test]
fn crash_then_reopen_loses_nothing() {
    let cycles: u32 = std::env::var("LIGHTNING_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut next_round = 0u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut total_acked = 0u64;
    for cycle in 0..cycles {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(150 + seed % 600);
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env(START_ENV, next_round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(r) = line.strip_prefix("ack ") {
                    last = r.trim().parse::<u64>().ok();
                }
            }
            last
        });
        let t = Instant::now();
        while t.elapsed() < run_for {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("child exited on its own in cycle {cycle}: {status}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        // Rounds 0..=acked were acknowledged (none if nothing was printed).
        let min_rounds = acked.map_or(next_round, |a| a + 1);
        total_acked += min_rounds - next_round;

        // No automatic compaction in the checking open: its outputs would
        // appear beside the live files while they are compared.
        let mut check_opts = options();
        check_opts.compaction.disable_auto_compactions = true;
        let db = Db::open(dir.path(), check_opts).unwrap();
        let state: BTreeMap<Vec<u8>, Vec<u8>> = db
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        let recovered = (min_rounds..=min_rounds + 1)
            .find(|&n| model(n) == state)
            .unwrap_or_else(|| {
                panic!(
                    "cycle {cycle}: state after reopen is not the first {min_rounds} or {} rounds",
                    min_rounds + 1
                )
            });
        assert_eq!(
            sst_files(dir.path()),
            live_files(dir.path()),
            "cycle {cycle}: orphan or missing SST files after reopen"
        );
        db.close().unwrap();
        next_round = recovered;
    }
    assert!(total_acked > 0, "the children acknowledged nothing");
    println!("{cycles} crash cycles, {total_acked} acknowledged batches, none lost");
}
