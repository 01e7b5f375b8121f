//! A keyspace dropped between a write's own checks and its numbering.
//!
//! A write to a keyspace checks its handle (`Keyspace::live`) before it
//! reaches the write queue; a drop can land in between. Whoever numbers
//! the batch must see the drop and refuse the whole batch: an unsynced
//! write that finds the queue empty numbers itself (`write_direct`), any
//! other write is numbered by a group leader (`missing_keyspaces`). A
//! batch numbered anyway would be logged and acknowledged but inserted
//! into no memtable: an acknowledged write that no read ever sees.
//!
//! The window is forced with a test hook that runs on the writing thread
//! after the handle's check, before the queue is taken.

use std::sync::Arc;

use super::{tests_hooks, Db, DbInner};
use crate::error::Error;
use crate::keyspace::Keyspace;
use crate::options::{Options, WriteOptions};
use crate::WriteBatch;

/// How the racing write is made.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// `Keyspace::put`, unsynced: numbered by its own thread.
    Put,
    /// `Keyspace::put_opt` synced: numbered by a leader.
    SyncedPut,
    /// A batch with a put in the default keyspace and one in the dropped
    /// keyspace, unsynced then synced.
    Mixed { sync: bool },
}

/// Makes `shape`'s write of `key` to `ks` (and of `key` to the default
/// keyspace for a mixed batch) on `db`.
fn write(db: &Db, ks: &Keyspace, shape: Shape, key: &str) -> crate::Result<()> {
    match shape {
        Shape::Put => ks.put(key, "v"),
        Shape::SyncedPut => ks.put_opt(key, "v", &WriteOptions::synced()),
        Shape::Mixed { sync } => {
            let mut b = WriteBatch::new();
            b.put(key, "default side");
            b.put_in(ks, key, "v");
            db.write_opt(b, &WriteOptions { sync })
        }
    }
}

/// Runs the race for `shape`: the write must be refused, change nothing,
/// and leave the database writable, before and after a reopen.
fn dropped_under(shape: Shape) {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = "raced";
    {
        let db = Db::open(dir.path(), Options::default()).expect("open");
        let ks = db.keyspace("ks").expect("create ks");
        ks.put("before", "v").expect("a write before the drop");
        let inner: Arc<DbInner> = Arc::clone(db.inner());
        tests_hooks::set_once_at(tests_hooks::Point::BeforeWriteQueue, move || {
            inner.drop_keyspace("ks").expect("drop inside the window");
        });
        let got = write(&db, &ks, shape, key);
        assert!(tests_hooks::ran(), "{shape:?}: the hook did not run");
        assert!(
            matches!(got, Err(Error::KeyspaceDropped(ref name)) if name == "ks"),
            "{shape:?}: a write to a keyspace dropped before it was numbered returned {got:?}"
        );
        assert_eq!(
            db.get(key).expect("get"),
            None,
            "{shape:?}: part of a refused batch landed"
        );
        assert_eq!(db.keyspaces(), ["default"]);
        db.put("after", "v")
            .expect("the database still takes writes");
        db.close().expect("close");
    }
    let db = Db::open(dir.path(), Options::default()).expect("reopen");
    assert_eq!(
        db.get(key).expect("get"),
        None,
        "{shape:?}: part of a refused batch came back from the WAL"
    );
    assert_eq!(db.get("after").expect("get").as_deref(), Some(&b"v"[..]));
    assert_eq!(db.keyspaces(), ["default"]);
    let ks = db.keyspace("ks").expect("create ks again");
    assert_eq!(ks.get(key).expect("get"), None, "{shape:?}: resurrected");
    assert_eq!(
        ks.get("before").expect("get"),
        None,
        "{shape:?}: resurrected"
    );
}

#[test]
fn an_unsynced_put_to_a_keyspace_dropped_before_it_is_numbered_is_refused() {
    dropped_under(Shape::Put);
}

#[test]
fn a_synced_put_to_a_keyspace_dropped_before_it_is_numbered_is_refused() {
    dropped_under(Shape::SyncedPut);
}

#[test]
fn a_batch_touching_a_keyspace_dropped_before_it_is_numbered_is_refused_whole() {
    dropped_under(Shape::Mixed { sync: false });
    dropped_under(Shape::Mixed { sync: true });
}
