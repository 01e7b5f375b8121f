//! `wal_recovery_mode`: what recovery does with damage in the middle of
//! the newest WAL (followed by valid records).
//!
//! Why it matters: after a power loss, unsynced pages of the newest WAL may
//! come back scrambled; the default must still open at a consistent prefix,
//! while the strict mode must refuse rather than drop data silently.

use lightning_db::{Db, Error, Options, WalRecoveryMode, WriteBatch};

fn build(dir: &std::path::Path) -> std::path::PathBuf {
    let db = Db::open(dir, Options::default()).unwrap();
    for round in 0..6u8 {
        let mut b = WriteBatch::new();
        for i in 0..20u8 {
            b.put([round, i], vec![round; 1000]);
        }
        db.write(b).unwrap();
    }
    db.close().unwrap();
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn damage(log: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(log).unwrap();
    assert!(bytes.len() > 3 * 32768, "the WAL spans several blocks");
    bytes[at] ^= 0x40;
    std::fs::write(log, bytes).unwrap();
}

#[test]
fn point_in_time_recovers_the_prefix_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path());
    // Inside the third batch (each is about 20.1 KB).
    damage(&log, 45_000);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for round in 0..6u8 {
        let present = db.get([round, 0]).unwrap().is_some();
        assert_eq!(present, round < 2, "round {round}");
        // All or nothing per batch.
        let n = (0..20u8)
            .filter(|&i| db.get([round, i]).unwrap().is_some())
            .count();
        assert!(n == 0 || n == 20, "round {round}: {n} of 20 keys");
    }
}

#[test]
fn tolerate_torn_tail_refuses_damage_followed_by_valid_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path());
    damage(&log, 45_000);
    let o = Options {
        wal_recovery_mode: WalRecoveryMode::TolerateTornTail,
        ..Options::default()
    };
    match Db::open(dir.path(), o) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, log);
            assert!(offset <= 45_000, "offset {offset}");
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
    // Nothing was changed: the default mode still recovers the prefix.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(db.get([1u8, 19]).unwrap().is_some());
}
