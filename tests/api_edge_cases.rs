//! Edges of the public API: keys of exactly `MAX_KEY_SIZE` and one byte
//! more, empty batches, deleting a missing key, ranges with start > end,
//! prefixes `[0xff, 0xff]` and empty, and 0-byte next to 16 MiB values in
//! one batch, each also after a flush and a reopen.

mod common;

use common::fast_opts;
use lightning_db::{Db, Error, WriteBatch, MAX_KEY_SIZE};

#[test]
fn limits_and_odd_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), fast_opts()).unwrap();
    let max_key = vec![0xabu8; MAX_KEY_SIZE];
    db.put(&max_key, b"max").unwrap();
    let too_big = vec![0xabu8; MAX_KEY_SIZE + 1];
    assert!(matches!(
        db.put(&too_big, b"x"),
        Err(Error::InvalidArgument(_))
    ));
    let mut b = WriteBatch::new();
    b.put(b"fine", b"1");
    b.put(&too_big, b"x");
    assert!(matches!(db.write(b), Err(Error::InvalidArgument(_))));
    assert_eq!(
        db.get(b"fine").unwrap(),
        None,
        "a rejected batch writes nothing"
    );
    db.write(WriteBatch::new()).unwrap();
    db.delete(b"never-there").unwrap();

    let big = vec![0x5au8; 16 << 20];
    let mut b = WriteBatch::new();
    b.put(b"empty", b"");
    b.put(b"big", &big);
    b.put([0xff, 0xff], b"ffff");
    b.put([0xff, 0xff, 0x00], b"ffff00");
    db.write(b).unwrap();

    let mut db = Some(db);
    for round in 0..3 {
        if round == 2 {
            drop(db.take());
            db = Some(Db::open(dir.path(), fast_opts()).unwrap());
        }
        let db = db.as_ref().unwrap();
        assert_eq!(db.get(&max_key).unwrap().as_deref(), Some(&b"max"[..]));
        assert_eq!(db.get(&too_big).unwrap(), None);
        assert_eq!(db.get(b"empty").unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(db.get(b"big").unwrap().as_deref(), Some(&big[..]));
        assert_eq!(db.get(b"never-there").unwrap(), None);
        assert_eq!(db.range(&b"z"[..]..&b"a"[..]).count(), 0);
        assert_eq!(db.range(&b"z"[..]..&b"a"[..]).rev().count(), 0);
        #[allow(clippy::reversed_empty_ranges)]
        let n = db.range(&b"z"[..]..=&b"a"[..]).count();
        assert_eq!(n, 0);
        assert_eq!(db.range(&b"b"[..]..&b"b"[..]).count(), 0);
        let ff: Vec<_> = db
            .prefix([0xff, 0xff])
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        assert_eq!(ff, vec![vec![0xff, 0xff], vec![0xff, 0xff, 0x00]]);
        let ffr: Vec<_> = db
            .prefix([0xff, 0xff])
            .rev()
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        assert_eq!(ffr, vec![vec![0xff, 0xff, 0x00], vec![0xff, 0xff]]);
        assert_eq!(db.prefix(b"").count(), 5);
        assert_eq!(db.prefix(b"").rev().count(), 5);
        if round == 0 {
            db.flush().unwrap();
        }
    }
}
