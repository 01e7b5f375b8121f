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
    let o = Options::default().wal_recovery_mode(WalRecoveryMode::TolerateTornTail);
    match Db::open(dir.path(), o) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, log);
            assert!(offset <= 45_000, "offset {offset}");
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
    // A read-only open follows the same mode (it used to ignore it).
    let o = Options::default().wal_recovery_mode(WalRecoveryMode::TolerateTornTail);
    assert!(matches!(
        Db::open_read_only(dir.path(), o),
        Err(Error::Corruption { .. })
    ));
    let ro = Db::open_read_only(dir.path(), Options::default()).unwrap();
    for round in 0..6u8 {
        assert_eq!(
            ro.get([round, 0]).unwrap().is_some(),
            round < 2,
            "round {round}"
        );
    }
    drop(ro);
    // Nothing was changed: the default mode still recovers the prefix.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(db.get([1u8, 19]).unwrap().is_some());
}

/// Regression (issue 16, defect 3): one flipped bit in a record followed by
/// intact, synced records *in the same 32 KiB block*. `tolerate_torn_tail`
/// used to look for valid data only at later block boundaries, so it took
/// the damage for a torn tail and silently dropped the synced records after
/// it.
#[test]
fn tolerate_torn_tail_refuses_damage_followed_by_records_in_the_same_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let sync = lightning_db::WriteOptions::default().sync(true);
    for i in 0..10u8 {
        db.put_opt([i], vec![i; 100], &sync).unwrap();
    }
    db.close().unwrap();
    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let log = logs.pop().unwrap();
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.len() < 32768, "every record lies in the first block");
    // Inside the value of the third record (header ~30 B, records ~120 B).
    let at = bytes.len() - 7 * 120;
    bytes[at] ^= 0x01;
    std::fs::write(&log, &bytes).unwrap();
    let o = Options::default().wal_recovery_mode(WalRecoveryMode::TolerateTornTail);
    match Db::open(dir.path(), o) {
        Err(Error::Corruption { file, .. }) => assert_eq!(file, log),
        Ok(db) => {
            let present = (0..10u8)
                .filter(|&i| db.get([i]).unwrap().is_some())
                .count();
            panic!("open succeeded with {present} of 10 synced records");
        }
        Err(e) => panic!("expected Corruption, got {e}"),
    }
    // The default mode recovers the prefix before the damage.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert!(db.get([0u8]).unwrap().is_some());
    assert!(db.get([9u8]).unwrap().is_none());
}
