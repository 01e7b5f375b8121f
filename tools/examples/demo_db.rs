//! Builds a small database to try `sst-dump` on:
//! `cargo run -p lightning-tools --example demo_db -- /tmp/demo-db`, then
//! `sst-dump --file /tmp/demo-db --command=summary`. A second argument
//! `tiny` writes only a few keys (the examples in docs/sst-dump.md).
//!
//! Several flushed level-0 files (auto compaction off, so they stay put),
//! overwrites, tombstones, one compacted level, and a WAL with unflushed
//! writes.

use lightning_db::{Compression, Db, Options};

fn main() -> lightning_db::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/lightning-demo-db".into());
    let mut o = Options::default()
        .write_buffer_size(64 << 10)
        .block_size(1024)
        .compression(Compression::Zstd { level: 3 });
    o.compaction.disable_auto_compactions = true;
    let db = Db::open(&dir, o)?;
    if std::env::args().nth(2).as_deref() == Some("tiny") {
        // A few keys, for documentation examples.
        db.put("apple", "red")?;
        db.put("banana", "yellow")?;
        db.put("cherry", "dark red")?;
        db.flush()?;
        db.put("apple", "green")?;
        db.delete("banana")?;
        db.put("durian", "D".repeat(100))?;
        db.flush()?;
        db.put("elderberry", "purple")?;
        return db.close();
    }
    for round in 0..4u32 {
        for i in 0..500u32 {
            let k = format!("user:{:05}", i * 7 % 1000 + round);
            let v = format!(
                "{{\"round\":{round},\"n\":{i},\"pad\":\"{}\"}}",
                "x".repeat((i % 40) as usize)
            );
            db.put(k, v)?;
        }
        for i in (0..500u32).step_by(25) {
            db.delete(format!("user:{:05}", i + round))?;
        }
        db.flush()?;
        if round == 1 {
            db.compact_range::<&[u8], _>(..)?;
        }
    }
    db.put(b"\x00binary\xffkey", [0u8, 1, 2, 255])?;
    db.put("unflushed", "in the WAL only")?;
    db.delete("user:00007")?;
    // Leave the last writes in the WAL: drop without flushing.
    db.close()
}
