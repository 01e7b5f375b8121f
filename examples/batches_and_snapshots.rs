//! Atomic write batches, durable writes, and snapshots that keep a
//! consistent view while writers go on.
//!
//! ```text
//! cargo run --example batches_and_snapshots
//! ```

use std::sync::Arc;

use lightning_db::{Db, Options, WriteBatch, WriteOptions};

fn main() -> lightning_db::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Arc::new(Db::open(dir.path(), Options::default())?);

    // An order and its stock change land together or not at all, also
    // across a crash. `WriteOptions::synced()` returns only once the batch
    // is durable (it survives a power loss); without it a write survives a
    // crash of the process, and many writers share one fsync (group commit).
    db.put("stock/book", "10")?;
    let mut batch = WriteBatch::new();
    batch.put("order/0001", "book x1");
    batch.put("stock/book", "9");
    db.write_opt(batch, &WriteOptions::synced())?;

    // A snapshot sees the database as it was when taken, whatever is
    // written, flushed or compacted afterwards.
    let snap = db.snapshot();
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || -> lightning_db::Result<()> {
            for i in 2..=100u32 {
                let mut batch = WriteBatch::new();
                batch.put(format!("order/{i:04}"), "book x1");
                batch.put("stock/book", (10 - i.min(10)).to_string());
                db.write(batch)?;
            }
            db.flush()
        })
    };
    // Meanwhile the snapshot still sees exactly one order and stock 9.
    assert_eq!(snap.prefix("order/").count(), 1);
    assert_eq!(snap.get("stock/book")?.as_deref(), Some(&b"9"[..]));
    writer.join().expect("the writer thread")?;
    assert_eq!(snap.prefix("order/").count(), 1);
    println!(
        "snapshot at sequence {}: 1 order; now: {} orders",
        snap.sequence(),
        db.prefix("order/").count()
    );
    // Dropping the snapshot lets compaction discard the versions it kept.
    drop(snap);
    Ok(())
}
