//! Keys and values at the limits the API accepts, with the options
//! `validate()` accepts at their extremes: every one that is accepted must
//! flush, compact, reopen and read back.
//!
//! Why it matters (issue 16, defects 4 and 7): a write the API
//! acknowledges but that a later flush cannot write, or a reader cannot
//! read back, is data loss at best and a database that no longer opens at
//! worst.

use lightning_db::{Compression, Db, Options, MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Regression (defect 7): a maximum-size key with a maximum-size value was
/// accepted, stored compressed, and then read back as `Corruption` (the
/// reader's bound on a decompressed block was smaller than that entry).
#[test]
fn largest_key_with_largest_value_round_trips_compressed_or_not() {
    for compression in [Compression::Zstd { level: 1 }, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            compression,
            ..Options::default()
        };
        let key = vec![b'k'; MAX_KEY_SIZE];
        // Compressible, so zstd stores the block compressed.
        let mut value = vec![0u8; MAX_VALUE_SIZE];
        for (i, b) in value.iter_mut().enumerate().step_by(4096) {
            *b = (i / 4096) as u8;
        }
        let db = Db::open(dir.path(), o.clone()).unwrap();
        db.put(&key, &value).unwrap();
        db.put("small", "value").unwrap();
        db.flush().unwrap();
        let got = db.get(&key).unwrap().expect("present");
        assert!(got[..] == value[..], "{compression:?}: value differs");
        drop(got);
        let n = db.iter().map(|r| r.unwrap().0.len()).collect::<Vec<_>>();
        assert_eq!(n, vec![MAX_KEY_SIZE, 5]);
        assert!(db.verify().unwrap().is_ok());
        db.close().unwrap();
        let db = Db::open(dir.path(), o).unwrap();
        let got = db.get(&key).unwrap().expect("present after reopen");
        assert!(got[..] == value[..]);
        assert_eq!(db.get("small").unwrap().as_deref(), Some(&b"value"[..]));
    }
}
