//! Metamorphic test (after Pebble's `metamorphic/`): random operation
//! sequences — puts, deletes, batches, gets, scans and prefix scans both
//! ways, snapshots, long-lived iterators read while writes, flushes and
//! compactions go on, optimistic transactions with conflicts, flush,
//! compact_range, verify, reopen, and power loss followed by recovery — run
//! under several randomly drawn option sets. Every run is checked step by
//! step against a `BTreeMap` model (after a power loss: the recovered state
//! must be the last synced state plus a prefix of the batches acknowledged
//! since), and the answers of all runs of one sequence are compared with
//! each other.
//!
//! Why it matters: each option (tiny memtables and files, every compaction
//! style, compression, the mapped WAL, small manifests, the real or the
//! in-memory file system) switches a different path on; a defect that only
//! one combination reaches shows up as a run that disagrees with the model.
//!
//! A failing run is reduced (operations are dropped while it still fails)
//! and printed with the command that replays it.
//!
//! Sizes (environment): `LIGHTNING_METAMORPHIC_SEQS` sequences (default 8)
//! of `LIGHTNING_METAMORPHIC_OPS` operations (default 800), each run under
//! `LIGHTNING_METAMORPHIC_CONFIGS` option sets (default 4, the first
//! sequence also under the defaults), from `LIGHTNING_METAMORPHIC_SEED`
//! (default: random, printed). Replay one run with
//! `LIGHTNING_METAMORPHIC_REPLAY=<sequence seed>:<ops>:<option set>[:<kept
//! op indices, comma-separated>]`.

#[path = "../common/mod.rs"]
mod common;
mod config;
mod model;
mod ops;
mod runner;

use std::time::Instant;

use config::Config;
use ops::{Generator, Op};
use runner::{run, Divergence, Log};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// Drops operations from `ops` (indices into the original sequence) while
/// `cfg` still diverges on what is left: halves first, then smaller chunks,
/// down to single operations.
fn reduce(cfg: &Config, all: &[Op], mut kept: Vec<usize>) -> (Vec<usize>, Divergence) {
    let ops_of = |k: &[usize]| k.iter().map(|&i| all[i].clone()).collect::<Vec<_>>();
    let mut last = run(cfg, &ops_of(&kept)).expect_err("the run to reduce fails");
    // Nothing after the divergence matters.
    kept.truncate(last.at + 1);
    let mut chunk = kept.len().div_ceil(2);
    while chunk >= 1 {
        let mut start = 0;
        while start < kept.len() {
            let end = (start + chunk).min(kept.len());
            let candidate: Vec<usize> = kept[..start].iter().chain(&kept[end..]).copied().collect();
            match run(cfg, &ops_of(&candidate)) {
                Err(d) => {
                    kept = candidate;
                    kept.truncate(d.at + 1);
                    last = d;
                }
                Ok(_) => start = end,
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    (kept, last)
}

/// Fails the test with the reduced reproduction of `cfg` on sequence `seed`.
fn report(seed: u64, n: usize, cfg: &Config, all: &[Op], kept: Vec<usize>) -> ! {
    let (kept, d) = reduce(cfg, all, kept);
    let mut msg = format!(
        "metamorphic divergence: sequence {seed} ({n} operations), {cfg:?}\n\
         reduced to {} operations; the last one diverges: {}\n",
        kept.len(),
        d.what
    );
    for &i in &kept {
        msg += &format!("  #{i}: {}\n", all[i]);
    }
    let list: Vec<String> = kept.iter().map(|i| i.to_string()).collect();
    msg += &format!(
        "replay: LIGHTNING_METAMORPHIC_REPLAY={seed}:{n}:{}:{} cargo test --release --test metamorphic -- --nocapture\n",
        cfg.seed,
        list.join(",")
    );
    panic!("{msg}");
}

/// The first line where two logs of the same sequence differ, unless a
/// power loss before it recovered different prefixes (then they may).
fn compare_logs(a: &Log, b: &Log) -> Option<usize> {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x != y {
            if x.starts_with("crash recovered") && y.starts_with("crash recovered") {
                return None;
            }
            return Some(i);
        }
    }
    None
}

#[test]
fn metamorphic() {
    if let Ok(spec) = std::env::var("LIGHTNING_METAMORPHIC_REPLAY") {
        let parts: Vec<&str> = spec.split(':').collect();
        let num = |i: usize| -> u64 { parts[i].parse().expect("LIGHTNING_METAMORPHIC_REPLAY") };
        let (seed, n, cfg) = (num(0), num(1) as usize, Config::draw(num(2)));
        let all = Generator::ops(seed, n);
        let kept: Vec<usize> = match parts.get(3) {
            Some(list) if !list.is_empty() => list.split(',').map(|i| i.parse().unwrap()).collect(),
            _ => (0..n).collect(),
        };
        for &i in &kept {
            println!("#{i}: {}", all[i]);
        }
        let ops: Vec<Op> = kept.iter().map(|&i| all[i].clone()).collect();
        if let Err(d) = run(&cfg, &ops) {
            panic!(
                "diverges at kept operation {} (#{}): {}",
                d.at,
                kept.get(d.at).copied().unwrap_or(n),
                d.what
            );
        }
        return;
    }
    let seqs = env_u64("LIGHTNING_METAMORPHIC_SEQS", 8);
    let n = env_u64("LIGHTNING_METAMORPHIC_OPS", 800) as usize;
    let configs = env_u64("LIGHTNING_METAMORPHIC_CONFIGS", 4);
    let base = env_u64(
        "LIGHTNING_METAMORPHIC_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    println!(
        "metamorphic: seed {base}, {seqs} sequences of {n} operations, {configs} option sets each"
    );
    let start = Instant::now();
    let mut total_ops = 0u64;
    let mut option_sets = std::collections::BTreeSet::new();
    for s in 0..seqs {
        let seed = base.wrapping_add(s);
        let all = Generator::ops(seed, n);
        let mut first: Option<(u64, Log)> = None;
        for c in 0..configs {
            // The defaults once; otherwise option sets drawn from the seed.
            let cfg_seed = if s == 0 && c == 0 {
                0
            } else {
                common::Rng(seed ^ c.wrapping_mul(0x9e37_79b9_7f4a_7c15)).next() | 1
            };
            let cfg = Config::draw(cfg_seed);
            option_sets.insert(cfg_seed);
            match run(&cfg, &all) {
                Ok(log) => {
                    total_ops += n as u64;
                    if let Some((other, l0)) = &first {
                        if let Some(i) = compare_logs(l0, &log) {
                            panic!(
                                "sequence {seed}: option sets {other} and {cfg_seed} agree with the model but not with each other at answer {i}: {:?} vs {:?}",
                                l0[i], log[i]
                            );
                        }
                    } else {
                        first = Some((cfg_seed, log));
                    }
                }
                Err(_) => report(seed, n, &cfg, &all, (0..n).collect()),
            }
        }
    }
    println!(
        "metamorphic: {total_ops} operations over {} option sets in {:.1} s, no divergence",
        option_sets.len(),
        start.elapsed().as_secs_f64()
    );
}
