//! The bank test: threads move money between accounts with
//! read-modify-write transactions (`transaction_with`), while the memtable
//! is flushed and compacted under them.
//!
//! - In process: an auditor sums every account through snapshots, through
//!   a transaction's range scan and through a transaction's point reads, and
//!   always finds the same total; no balance ever goes negative.
//! - Across crashes: a child process runs the transfers until it is killed
//!   with SIGKILL; after each reopen the total is unchanged and every
//!   balance equals the result of exactly the transfers acknowledged before
//!   the kill, plus at most the one each thread had in flight (the
//!   transaction records itself, so the parent can tell).
//!
//! Why it matters: a lost update (a conflict missed) or a torn transaction
//! (half of a transfer after a crash) shows up as money created or
//! destroyed. `LIGHTNING_TXN_CRASH_CYCLES=N` sets the number of kill
//! cycles (default 6).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{fast_opts, Rng};
use lightning_db::{Db, Result, Transaction, TransactionOptions};

const ACCOUNTS: u64 = 16;
const INITIAL: u64 = 1000;
const TOTAL: u64 = ACCOUNTS * INITIAL;

fn account(i: u64) -> String {
    format!("acct/{i:04}")
}

/// A balance, padded so the memtable fills (and flushes) often.
fn encode_balance(b: u64) -> Vec<u8> {
    let mut v = b.to_be_bytes().to_vec();
    v.resize(64, b'.');
    v
}

fn decode_balance(v: &[u8]) -> u64 {
    u64::from_be_bytes(v[..8].try_into().unwrap())
}

fn balance(tx: &Transaction, i: u64) -> Result<u64> {
    Ok(decode_balance(
        &tx.get(account(i))?.expect("account exists"),
    ))
}

fn create_accounts(db: &Db) {
    for i in 0..ACCOUNTS {
        db.put(account(i), encode_balance(INITIAL)).unwrap();
    }
}

/// One transfer of up to `want` from `from` to `to` (less when `from` has
/// less); returns the amount moved.
fn transfer(tx: &mut Transaction, from: u64, to: u64, want: u64) -> Result<u64> {
    let (fb, tb) = (balance(tx, from)?, balance(tx, to)?);
    let amount = want.min(fb);
    tx.put(account(from), encode_balance(fb - amount));
    tx.put(account(to), encode_balance(tb + amount));
    Ok(amount)
}

/// Two distinct accounts and an amount.
fn pick(rng: &mut Rng) -> (u64, u64, u64) {
    let from = rng.below(ACCOUNTS);
    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
    (from, to, 1 + rng.below(200))
}

fn sum_of(items: impl Iterator<Item = Result<(lightning_db::Bytes, lightning_db::Bytes)>>) -> u64 {
    items.map(|r| decode_balance(&r.unwrap().1)).sum()
}

#[test]
fn concurrent_transfers_keep_the_total() {
    const THREADS: u64 = 8;
    const TRANSFERS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), fast_opts()).unwrap());
    create_accounts(&db);
    let runs = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS as usize + 1));
    let mut workers = Vec::new();
    for t in 0..THREADS {
        let (db, runs, start) = (Arc::clone(&db), Arc::clone(&runs), Arc::clone(&start));
        workers.push(std::thread::spawn(move || {
            let mut rng = Rng(t);
            let opts = TransactionOptions::default().max_retries(1000);
            start.wait();
            for _ in 0..TRANSFERS {
                let (from, to, want) = pick(&mut rng);
                db.transaction_with_opt(&opts, |tx| {
                    runs.fetch_add(1, Ordering::Relaxed);
                    transfer(tx, from, to, want)
                })
                .unwrap();
            }
        }));
    }
    let auditor = {
        let (db, done, start) = (Arc::clone(&db), Arc::clone(&done), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            let mut audits = 0u64;
            loop {
                // Read `done` first: the last round starts after the writers
                // finished, so at least one audit sees the final state.
                let last = done.load(Ordering::Acquire);
                assert_eq!(
                    sum_of(db.snapshot().prefix("acct/")),
                    TOTAL,
                    "snapshot scan"
                );
                let tx = db.transaction();
                assert_eq!(sum_of(tx.prefix("acct/").rev()), TOTAL, "transaction scan");
                let by_get: u64 = (0..ACCOUNTS).map(|i| balance(&tx, i).unwrap()).sum();
                assert_eq!(by_get, TOTAL, "transaction point reads");
                audits += 1;
                if last {
                    return audits;
                }
            }
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    let audits = auditor.join().unwrap();
    assert_eq!(sum_of(db.iter()), TOTAL);
    let runs = runs.load(Ordering::Relaxed);
    let commits = THREADS * TRANSFERS;
    println!(
        "{commits} transfers committed in {runs} runs ({:.1}% aborted), {audits} audits",
        100.0 * (runs - commits) as f64 / runs as f64
    );
}

// ---- Crash variant ----

const CRASH_THREADS: u64 = 4;
const CHILD_ENV: &str = "LIGHTNING_TXN_BANK_CHILD_DIR";

fn last_key(t: u64) -> String {
    format!("last/{t}")
}

/// A transfer as the child reports it and records it under `last/<t>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Transfer {
    n: u64,
    from: u64,
    to: u64,
    amount: u64,
}

impl Transfer {
    fn encode(&self) -> String {
        format!("{} {} {} {}", self.n, self.from, self.to, self.amount)
    }
    fn decode(s: &str) -> Option<Transfer> {
        let v: Vec<u64> = s
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [n, from, to, amount] = v[..] else {
            return None;
        };
        Some(Transfer {
            n,
            from,
            to,
            amount,
        })
    }
}

/// The last transfer of thread `t` recorded in `db`, if any.
fn recorded(db: &Db, t: u64) -> Option<Transfer> {
    let v = db.get(last_key(t)).unwrap()?;
    Transfer::decode(std::str::from_utf8(&v).unwrap())
}

/// The child: `CRASH_THREADS` threads transfer until killed, each
/// continuing its numbering from what the database recorded, and print
/// `ack <thread> <n> <from> <to> <amount>` after each commit returned.
#[test]
#[ignore = "child process of bank_survives_kill_9; run by the parent"]
fn bank_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Arc::new(Db::open(&dir, common::churn_opts()).unwrap());
    let mut threads = Vec::new();
    for t in 0..CRASH_THREADS {
        let db = Arc::clone(&db);
        threads.push(std::thread::spawn(move || {
            let mut n = recorded(&db, t).map_or(0, |r| r.n);
            let mut rng = Rng(n * CRASH_THREADS + t);
            let opts = TransactionOptions::default().max_retries(1000);
            loop {
                n += 1;
                let (from, to, want) = pick(&mut rng);
                let sync = rng.one_in(4);
                let opts = opts.sync(sync);
                let done = db
                    .transaction_with_opt(&opts, |tx| {
                        let amount = transfer(tx, from, to, want)?;
                        let rec = Transfer {
                            n,
                            from,
                            to,
                            amount,
                        };
                        tx.put(last_key(t), rec.encode());
                        Ok(rec)
                    })
                    .unwrap();
                println!("ack {t} {}", done.encode());
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs one child for `run_for`, kills it, and returns the acknowledged
/// transfers.
fn run_child(dir: &Path, run_for: Duration) -> Vec<(u64, Transfer)> {
    let lines = common::run_child_then_kill(
        "bank_crash_child",
        &[(CHILD_ENV, dir.display().to_string())],
        run_for,
    );
    lines
        .iter()
        .filter_map(|line| {
            // The first ack follows libtest's "test bank_crash_child ... ".
            let rest = &line[line.find("ack ")? + 4..];
            let (t, rec) = rest.split_once(' ')?;
            Some((t.parse().ok()?, Transfer::decode(rec)?))
        })
        .collect()
}

#[test]
fn bank_survives_kill_9() {
    let cycles: u32 = std::env::var("LIGHTNING_TXN_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), common::churn_opts()).unwrap();
        create_accounts(&db);
        db.close().unwrap();
    }
    let mut balances: BTreeMap<u64, u64> = (0..ACCOUNTS).map(|i| (i, INITIAL)).collect();
    // Transfers are applied thread by thread, not in the order they
    // committed, so a balance may dip below zero on the way; wrapping
    // arithmetic commutes, and the sums of a cycle are exact again once
    // all of them are applied.
    let apply = |b: &mut BTreeMap<u64, u64>, r: &Transfer| {
        let from = b.get_mut(&r.from).unwrap();
        *from = from.wrapping_sub(r.amount);
        let to = b.get_mut(&r.to).unwrap();
        *to = to.wrapping_add(r.amount);
    };
    // Per thread: the number of its last transfer in the database.
    let mut last_n = [0u64; CRASH_THREADS as usize];
    let mut rng = Rng(7);
    let mut total_acked = 0usize;
    let mut in_flight = 0usize;
    for cycle in 0..cycles {
        let acks = run_child(dir.path(), Duration::from_millis(200 + rng.below(500)));
        total_acked += acks.len();
        let mut check_opts = common::churn_opts();
        check_opts.compaction.disable_auto_compactions = true;
        let db = Db::open(dir.path(), check_opts).unwrap();
        for t in 0..CRASH_THREADS {
            let mine: Vec<&Transfer> = acks
                .iter()
                .filter(|(at, _)| *at == t)
                .map(|(_, r)| r)
                .collect();
            let acked_n = mine.last().map_or(last_n[t as usize], |r| r.n);
            for (i, r) in mine.iter().enumerate() {
                assert_eq!(
                    r.n,
                    last_n[t as usize] + 1 + i as u64,
                    "cycle {cycle}: thread {t} numbering"
                );
                apply(&mut balances, r);
            }
            let rec = recorded(&db, t);
            let rec_n = rec.map_or(0, |r| r.n);
            if rec_n == acked_n + 1 {
                // Committed (durable) but killed before its ack was printed.
                apply(&mut balances, &rec.unwrap());
                in_flight += 1;
            } else {
                assert_eq!(
                    rec_n, acked_n,
                    "cycle {cycle}: thread {t} lost acknowledged transfers"
                );
                if let (Some(rec), Some(last)) = (rec, mine.last()) {
                    assert_eq!(
                        &rec, *last,
                        "cycle {cycle}: thread {t} record differs from its ack"
                    );
                }
            }
            last_n[t as usize] = rec_n;
        }
        let state: BTreeMap<u64, u64> = (0..ACCOUNTS)
            .map(|i| (i, decode_balance(&db.get(account(i)).unwrap().unwrap())))
            .collect();
        assert_eq!(
            state.values().sum::<u64>(),
            TOTAL,
            "cycle {cycle}: money created or destroyed"
        );
        assert_eq!(
            state, balances,
            "cycle {cycle}: balances are not the acknowledged transfers"
        );
        assert_eq!(sum_of(db.snapshot().prefix("acct/").rev()), TOTAL);
        db.close().unwrap();
    }
    assert!(total_acked > 0, "the children acknowledged nothing");
    println!(
        "{cycles} kill cycles, {total_acked} acknowledged transfers and {in_flight} committed \
         but unacknowledged ones, balances exact"
    );
}
