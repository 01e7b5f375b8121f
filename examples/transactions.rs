//! Optimistic transactions: money moves between accounts from several
//! threads at once, and the total never changes.
//!
//! ```text
//! cargo run --release --example transactions
//! ```
//!
//! Each transfer reads two balances and writes both. Under snapshot
//! isolation a commit fails with `Error::Conflict` when another commit
//! wrote one of its keys after its snapshot; `Db::transaction_with` then
//! runs the closure again on a fresh snapshot.

use std::sync::Arc;

use lightning_db::{Bytes, Db, Options, Result, Transaction};

const ACCOUNTS: u64 = 10;
const START: u64 = 1_000;

fn balance(v: Option<Bytes>) -> u64 {
    v.map_or(0, |v| {
        std::str::from_utf8(&v)
            .expect("a number")
            .parse()
            .expect("a number")
    })
}

fn transfer(tx: &mut Transaction, from: u64, to: u64, amount: u64) -> Result<bool> {
    let (from_key, to_key) = (format!("acct/{from}"), format!("acct/{to}"));
    let a = balance(tx.get(&from_key)?);
    if a < amount {
        return Ok(false); // nothing written; the commit is a no-op
    }
    let b = balance(tx.get(&to_key)?);
    tx.put(from_key, (a - amount).to_string());
    tx.put(to_key, (b + amount).to_string());
    Ok(true)
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Arc::new(Db::open(dir.path(), Options::default())?);
    for i in 0..ACCOUNTS {
        db.put(format!("acct/{i}"), START.to_string())?;
    }
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || -> Result<u64> {
                let mut done = 0;
                for i in 0..500u64 {
                    let from = (t * 7 + i * 3) % ACCOUNTS;
                    let to = (from + 1 + i % (ACCOUNTS - 1)) % ACCOUNTS;
                    if db.transaction_with(|tx| transfer(tx, from, to, 1 + i % 50))? {
                        done += 1;
                    }
                }
                Ok(done)
            })
        })
        .collect();
    let mut transfers = 0;
    for t in threads {
        transfers += t.join().expect("a transfer thread")?;
    }
    let total: u64 = db
        .prefix("acct/")
        .map(|r| r.map(|(_, v)| balance(Some(v))))
        .sum::<Result<u64>>()?;
    let stats = db.stats();
    println!(
        "{transfers} transfers, total {total} (expected {}); commits {}, conflicts retried {}",
        ACCOUNTS * START,
        stats.transactions.commits,
        stats.transactions.conflicts
    );
    assert_eq!(total, ACCOUNTS * START);
    Ok(())
}
