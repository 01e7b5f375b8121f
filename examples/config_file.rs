//! Tuning from a config file: a TOML file with RocksDB's option names (every
//! key, with its default and range, is in `lightning.example.toml` and
//! `docs/config.md`). Missing keys take their defaults; a bad key or value is
//! an error naming the key, the line and what is allowed.
//!
//! ```text
//! cargo run --example config_file                     # the file below
//! cargo run --example config_file -- my-lightning.toml
//! ```

use lightning_db::{Db, Options};

/// A write-heavy profile: bigger memtables, more of them, compression below
/// level 1, and a periodic WAL sync instead of one per write.
const CONFIG: &str = r#"
write_buffer_size = "128MiB"
max_write_buffer_number = 4
compression_per_level = ["none", "none", "zstd"]
wal_sync_interval_ms = 100

[compaction]
level0_file_num_compaction_trigger = 8
max_background_jobs = 4
target_file_size_base = "128MiB"
"#;

fn main() -> lightning_db::Result<()> {
    let opts = match std::env::args().nth(1) {
        Some(path) => Options::from_toml_file(path)?,
        None => Options::from_toml_str(CONFIG)?,
    };
    println!(
        "write_buffer_size {} x {}, level-0 trigger {}, WAL synced every {} ms",
        opts.write_buffer_size,
        opts.max_write_buffer_number,
        opts.compaction.level0_file_num_compaction_trigger,
        opts.wal_sync_interval_ms
    );

    // A mistake is caught before anything is opened, and says what to fix.
    let typo = Options::from_toml_str("write_bufer_size = \"1MiB\"").unwrap_err();
    println!("a typo: {typo}");
    let out_of_range = Options::from_toml_str("max_write_buffer_number = 1").unwrap_err();
    println!("out of range: {out_of_range}");

    // Options can also be adjusted in code after loading.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Db::open(dir.path(), opts.metrics_label("orders".into()))?;
    db.put("k", "v")?;
    println!("{}", db.property("lightning.stats").unwrap_or_default());
    db.close()
}
