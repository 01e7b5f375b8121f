//! The basics: open a database, write, read, scan, delete, close, reopen.
//!
//! ```text
//! cargo run --example basic            # in a temporary directory
//! cargo run --example basic -- /tmp/db # or in a directory of your own
//! ```

use lightning_db::{Db, Options};

fn main() -> lightning_db::Result<()> {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);

    // Defaults follow RocksDB's; change what you need with the setters.
    let db = Db::open(&dir, Options::new().write_buffer_size(8 << 20))?;

    // Keys and values are bytes: anything `AsRef<[u8]>`.
    db.put("fruit/apple", "red")?;
    db.put("fruit/banana", "yellow")?;
    db.put("fruit/cherry", "dark red")?;
    db.put("vegetable/leek", "green")?;

    let apple = db.get("fruit/apple")?;
    println!("apple: {:?}", apple.as_deref().map(String::from_utf8_lossy));

    // Scans are in key order; `.rev()` walks backwards.
    println!("every fruit:");
    for item in db.prefix("fruit/") {
        let (key, value) = item?;
        println!(
            "  {} = {}",
            String::from_utf8_lossy(&key),
            String::from_utf8_lossy(&value)
        );
    }
    let (last, _) = db.range("fruit/".."fruit0").next_back().expect("a fruit")?;
    println!("last fruit: {}", String::from_utf8_lossy(&last));

    db.delete("fruit/banana")?;
    assert_eq!(db.get("fruit/banana")?, None);

    // `close` reports what dropping cannot (a failed WAL sync). Everything
    // acknowledged is there after a reopen, even without a flush.
    db.close()?;
    let db = Db::open(&dir, Options::default())?;
    assert_eq!(db.prefix("fruit/").count(), 2);
    println!("after reopen: {} keys", db.iter().count());
    db.close()
}
