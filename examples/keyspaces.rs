//! Keyspaces: separate sorted maps in one database, each tuned on its
//! own, written together atomically, read at one snapshot, and dropped in
//! one step.
//!
//! ```text
//! cargo run --example keyspaces
//! ```

use lightning_db::{Compression, Db, KeyspaceOptions, Options, WriteBatch};

fn main() -> lightning_db::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Db::open(dir.path(), Options::default())?;

    // Users and an index of them by e-mail; a log keyspace with its own
    // settings (compressed, larger memtables).
    let users = db.keyspace("users")?;
    let by_email = db.keyspace("by_email")?;
    let mut log_opts = KeyspaceOptions::default();
    log_opts.compression = Compression::Zstd { level: 3 };
    log_opts.write_buffer_size = 16 << 20;
    let log = db.keyspace_with("log", &log_opts)?;

    // A user and its index entry land together or not at all, also
    // across a crash: one batch, one WAL record.
    let mut b = WriteBatch::new();
    b.put_in(&users, "u1", "ann@example.com");
    b.put_in(&by_email, "ann@example.com", "u1");
    b.put_in(&log, "0001", "created u1");
    db.write(b)?;

    // One snapshot sees every keyspace at the same moment.
    let snap = db.snapshot();
    users.put("u1", "ann@new.example.com")?;
    assert_eq!(
        snap.get_in(&users, "u1")?.as_deref(),
        Some(&b"ann@example.com"[..])
    );
    assert_eq!(
        snap.get_in(&by_email, "ann@example.com")?.as_deref(),
        Some(&b"u1"[..])
    );
    drop(snap);

    // A transaction reads and writes several keyspaces; a conflicting
    // commit elsewhere makes it retry.
    db.transaction_with(|tx| {
        let old = tx.get_in(&users, "u1")?.expect("u1 exists");
        tx.delete_in(&by_email, "ann@example.com");
        tx.put_in(&by_email, old, "u1");
        tx.put_in(&log, "0002", "re-indexed u1");
        Ok(())
    })?;
    assert!(by_email.get("ann@new.example.com")?.is_some());
    assert!(by_email.get("ann@example.com")?.is_none());

    // Dropping a keyspace is one durable step; its handles refuse calls.
    db.drop_keyspace("log")?;
    assert!(log.get("0001").is_err());
    assert_eq!(db.keyspaces(), ["default", "users", "by_email"]);
    println!("keyspaces: {:?}", db.keyspaces());
    Ok(())
}
