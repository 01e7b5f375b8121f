//! Transaction semantics, one behaviour per test: own writes, snapshot
//! reads, first-committer-wins conflicts (also after the conflicting write
//! was flushed and compacted), `get_for_update`, the merged range iterator
//! in both directions, rollback, retries, and serializable validation
//! (write skew and phantoms).
//!
//! Why it matters: each of these is a promise of `docs/transactions.md`;
//! a conflict missed because data moved to an SST would silently lose an
//! update.

mod common;

use common::fast_opts;
use lightning_db::{
    ConflictKind, Db, Error, IsolationLevel, TransactionOptions, WriteOptions, MAX_KEY_SIZE,
};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    (dir, db)
}

fn get(db: &Db, k: &str) -> Option<String> {
    db.get(k)
        .unwrap()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

fn conflict_of(r: lightning_db::Result<()>) -> (Vec<u8>, ConflictKind) {
    match r {
        Err(Error::Conflict { key, kind, .. }) => (key.to_vec(), kind),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn own_writes_are_visible_inside_and_only_after_commit_outside() {
    let (_d, db) = open();
    db.put("a", "1").unwrap();
    let mut tx = db.transaction();
    tx.put("a", "2");
    tx.put("b", "3");
    tx.delete("a");
    assert_eq!(tx.get("a").unwrap(), None);
    assert_eq!(tx.get("b").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(get(&db, "a").as_deref(), Some("1"));
    assert_eq!(get(&db, "b"), None);
    tx.put("a", "4");
    tx.commit().unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some("4"));
    assert_eq!(get(&db, "b").as_deref(), Some("3"));
}

#[test]
fn reads_stay_at_the_snapshot() {
    let (_d, db) = open();
    db.put("a", "1").unwrap();
    let tx = db.transaction();
    db.put("a", "2").unwrap();
    db.put("new", "x").unwrap();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(tx.get("new").unwrap(), None);
    assert_eq!(tx.iter().count(), 1);
    // Read-only: commits although what it read changed.
    tx.commit().unwrap();
}

#[test]
fn first_committer_wins_and_the_loser_writes_nothing() {
    let (_d, db) = open();
    let mut t1 = db.transaction();
    let mut t2 = db.transaction();
    t1.put("k", "t1");
    t2.put("other", "t2");
    t2.put("k", "t2");
    t1.commit().unwrap();
    let (key, kind) = conflict_of(t2.commit());
    assert_eq!((key.as_slice(), kind), (&b"k"[..], ConflictKind::Write));
    assert_eq!(get(&db, "k").as_deref(), Some("t1"));
    assert_eq!(get(&db, "other"), None);
}

#[test]
fn plain_writes_and_deletes_after_the_snapshot_conflict() {
    let (_d, db) = open();
    db.put("k", "0").unwrap();
    let mut tx = db.transaction();
    tx.put("k", "tx");
    db.delete("k").unwrap();
    conflict_of(tx.commit());
    // A delete of an absent key is a write too.
    let mut tx = db.transaction();
    tx.put("absent", "tx");
    db.delete("absent").unwrap();
    conflict_of(tx.commit());
}

#[test]
fn disjoint_writers_both_commit() {
    let (_d, db) = open();
    let mut t1 = db.transaction();
    let mut t2 = db.transaction();
    t1.put("a", "1");
    t2.put("b", "2");
    t1.commit().unwrap();
    t2.commit().unwrap();
    assert_eq!(get(&db, "a").as_deref(), Some("1"));
    assert_eq!(get(&db, "b").as_deref(), Some("2"));
}

#[test]
fn conflicts_are_found_after_the_write_was_flushed_and_compacted() {
    let (_d, db) = open();
    for i in 0..200 {
        db.put(format!("k{i:03}"), "old").unwrap();
    }
    db.flush().unwrap();
    let mut t_flush = db.transaction();
    let mut t_compact = db.transaction();
    let mut t_clean = db.transaction();
    t_flush.put("k010", "tx");
    t_compact.put("k020", "tx");
    t_clean.put("k030", "tx"); // written before the snapshot only
    db.put("k010", "new").unwrap();
    db.flush().unwrap();
    conflict_of(t_flush.commit());
    db.put("k020", "new").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    conflict_of(t_compact.commit());
    t_clean.commit().unwrap();
    assert_eq!(get(&db, "k030").as_deref(), Some("tx"));
}

#[test]
fn a_deleted_then_compacted_key_still_conflicts() {
    let (_d, db) = open();
    db.put("k", "v").unwrap();
    db.flush().unwrap();
    let mut tx = db.transaction();
    tx.put("k", "tx");
    db.delete("k").unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    conflict_of(tx.commit());
}

#[test]
fn get_for_update_conflicts_without_a_write_of_that_key() {
    let (_d, db) = open();
    db.put("limit", "10").unwrap();
    let mut tx = db.transaction();
    assert_eq!(
        tx.get_for_update("limit").unwrap().as_deref(),
        Some(&b"10"[..])
    );
    tx.put("spent", "10");
    db.put("limit", "5").unwrap();
    let (key, kind) = conflict_of(tx.commit());
    assert_eq!(
        (key.as_slice(), kind),
        (&b"limit"[..], ConflictKind::ForUpdate)
    );
    // With nothing written, the check still runs.
    let mut tx = db.transaction();
    tx.get_for_update("limit").unwrap();
    db.put("limit", "6").unwrap();
    conflict_of(tx.commit());
    let mut tx = db.transaction();
    tx.get_for_update("limit").unwrap();
    tx.commit().unwrap();
}

#[test]
fn rollback_and_drop_write_nothing() {
    let (_d, db) = open();
    let mut tx = db.transaction();
    tx.put("a", "1");
    tx.rollback();
    let mut tx = db.transaction();
    tx.put("b", "1");
    drop(tx);
    assert_eq!(get(&db, "a"), None);
    assert_eq!(get(&db, "b"), None);
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn collect(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
) -> Pairs {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

#[test]
fn range_merges_own_writes_over_the_snapshot_both_ways() {
    let (_d, db) = open();
    for k in ["b", "d", "f", "h"] {
        db.put(k, "db").unwrap();
    }
    db.flush().unwrap();
    db.put("j", "db").unwrap();
    let mut tx = db.transaction();
    tx.put("a", "tx"); // before everything
    tx.put("d", "tx"); // overwrite
    tx.delete("f"); // hide
    tx.put("g", "tx"); // between
    tx.delete("zz"); // delete of an absent key
    db.put("c", "later").unwrap(); // after the snapshot: invisible
    let expect: Pairs = [
        ("a", "tx"),
        ("b", "db"),
        ("d", "tx"),
        ("g", "tx"),
        ("h", "db"),
        ("j", "db"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect();
    assert_eq!(collect(tx.iter()), expect);
    let mut rev = collect(tx.iter().rev());
    rev.reverse();
    assert_eq!(rev, expect);
    // Mixed ends meet in the middle without repeating or skipping a key.
    for split in 0..=expect.len() {
        let mut it = tx.iter();
        let mut front = collect(it.by_ref().take(split));
        let mut back = collect(it.rev());
        back.reverse();
        front.extend(back);
        assert_eq!(front, expect, "split {split}");
    }
    let bounded = collect(tx.range("b".."h"));
    assert_eq!(bounded, expect[1..4].to_vec());
    assert_eq!(collect(tx.range("d"..="g").rev()).len(), 2);
    assert_eq!(
        collect(tx.prefix("g")),
        vec![(b"g".to_vec(), b"tx".to_vec())]
    );
    #[allow(clippy::reversed_empty_ranges)]
    let empty = collect(tx.range("x".."a"));
    assert!(empty.is_empty());
}

#[test]
fn conflict_error_names_the_key_and_says_what_to_do() {
    let (_d, db) = open();
    let mut tx = db.transaction();
    tx.put(b"acct\x01", "1");
    db.put(b"acct\x01", "2").unwrap();
    let msg = tx.commit().unwrap_err().to_string();
    assert!(msg.contains("acct\\x01"), "{msg}");
    assert!(msg.contains("retry"), "{msg}");
}

#[test]
fn oversized_key_fails_the_commit_and_writes_nothing() {
    let (_d, db) = open();
    let mut tx = db.transaction();
    tx.put("ok", "1");
    tx.put(vec![b'k'; MAX_KEY_SIZE + 1], "1");
    assert!(matches!(tx.commit(), Err(Error::InvalidArgument(_))));
    assert_eq!(get(&db, "ok"), None);
}

#[test]
fn synced_commit_and_commit_after_close() {
    let (_d, db) = open();
    let mut tx = db.transaction();
    tx.put("a", "1");
    tx.commit_opt(&WriteOptions::default().sync(true)).unwrap();
    let mut late = db.transaction();
    late.put("b", "1");
    db.close().unwrap();
    assert!(matches!(late.commit(), Err(Error::Closed)));
}

#[test]
fn read_only_database_refuses_writing_commits() {
    let dir = tempfile::tempdir().unwrap();
    Db::open(dir.path(), fast_opts())
        .unwrap()
        .put("a", "1")
        .unwrap();
    let db = Db::open_read_only(dir.path(), fast_opts()).unwrap();
    let mut tx = db.transaction();
    assert_eq!(tx.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    tx.put("a", "2");
    assert!(matches!(tx.commit(), Err(Error::ReadOnly(_))));
    db.transaction().commit().unwrap();
}

#[test]
fn transaction_with_retries_a_conflict_and_runs_the_closure_again() {
    let (_d, db) = open();
    db.put("n", "0").unwrap();
    let mut runs = 0;
    let n = db
        .transaction_with(|tx| {
            runs += 1;
            let n: u32 = std::str::from_utf8(&tx.get("n")?.unwrap())
                .unwrap()
                .parse()
                .unwrap();
            if runs == 1 {
                db.put("n", "10")?; // another commit slips in
            }
            tx.put("n", (n + 1).to_string());
            Ok(n + 1)
        })
        .unwrap();
    assert_eq!((runs, n), (2, 11));
    assert_eq!(get(&db, "n").as_deref(), Some("11"));
}

#[test]
fn transaction_with_gives_up_after_max_retries_and_passes_other_errors() {
    let (_d, db) = open();
    let opts = TransactionOptions::default().max_retries(3);
    let mut runs = 0;
    let r = db.transaction_with_opt(&opts, |tx| {
        runs += 1;
        tx.put("k", "tx");
        db.put("k", "other")
    });
    assert!(r.unwrap_err().is_conflict());
    assert_eq!(runs, 4);
    let mut runs = 0;
    let r: lightning_db::Result<()> = db.transaction_with(|tx| {
        runs += 1;
        tx.put("k", "tx");
        Err(Error::InvalidArgument("domain error".into()))
    });
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
    assert_eq!(runs, 1);
    assert_eq!(get(&db, "k").as_deref(), Some("other"));
}

/// Two on-call doctors; each goes off call if the other is still on call.
/// Under snapshot isolation both commit (write skew: nobody is on call);
/// under serializable isolation the second aborts.
fn doctors(isolation: IsolationLevel) -> (lightning_db::Result<()>, lightning_db::Result<()>) {
    let (_d, db) = open();
    db.put("oncall/alice", "yes").unwrap();
    db.put("oncall/bob", "yes").unwrap();
    let opts = TransactionOptions::default().isolation(isolation);
    let go_off = |me: &str| {
        let mut tx = db.transaction_opt(&opts);
        let on: Vec<_> = tx
            .prefix("oncall/")
            .map(|r| r.unwrap())
            .filter(|(_, v)| v.as_ref() == b"yes")
            .collect();
        assert_eq!(on.len(), 2);
        tx.put(format!("oncall/{me}"), "no");
        tx
    };
    let alice = go_off("alice");
    let bob = go_off("bob");
    (alice.commit(), bob.commit())
}

#[test]
fn write_skew_commits_under_snapshot_isolation() {
    let (a, b) = doctors(IsolationLevel::Snapshot);
    a.unwrap();
    b.unwrap();
}

#[test]
fn write_skew_aborts_under_serializable() {
    let (a, b) = doctors(IsolationLevel::Serializable);
    a.unwrap();
    let (key, kind) = conflict_of(b);
    assert_eq!(
        (key.as_slice(), kind),
        (&b"oncall/alice"[..], ConflictKind::Range)
    );
}

#[test]
fn serializable_point_reads_and_phantoms_conflict() {
    let (_d, db) = open();
    let ser = TransactionOptions::serializable();
    db.put("x", "1").unwrap();
    // A key read (found) and written by another commit.
    let mut tx = db.transaction_opt(&ser);
    tx.get("x").unwrap();
    tx.put("y", "1");
    db.put("x", "2").unwrap();
    let (key, kind) = conflict_of(tx.commit());
    assert_eq!((key.as_slice(), kind), (&b"x"[..], ConflictKind::Read));
    // A key read as absent and then inserted.
    let mut tx = db.transaction_opt(&ser);
    assert_eq!(tx.get("ghost").unwrap(), None);
    tx.put("y", "2");
    db.put("ghost", "boo").unwrap();
    conflict_of(tx.commit());
    // An insert into a scanned range (a phantom), flushed meanwhile.
    let mut tx = db.transaction_opt(&ser);
    assert_eq!(tx.range("p0".."p9").count(), 0);
    tx.put("y", "3");
    db.put("p5", "phantom").unwrap();
    db.flush().unwrap();
    conflict_of(tx.commit());
    // Writes outside what was read do not conflict; read-only commits.
    let mut tx = db.transaction_opt(&ser);
    tx.get("x").unwrap();
    tx.range("p0".."p4").count();
    tx.put("y", "4");
    db.put("p6", "outside").unwrap();
    db.put("zzz", "outside").unwrap();
    tx.commit().unwrap();
    let ro = db.transaction_opt(&ser);
    ro.get("x").unwrap();
    db.put("x", "3").unwrap();
    ro.commit().unwrap();
}
