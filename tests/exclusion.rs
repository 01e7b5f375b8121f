//! A database directory is opened by one process at a time: a second
//! process gets `Error::Locked`, and can open it once the first closes.
//!
//! Why it matters: two writers on one directory would corrupt it.

use std::process::Command;

use lightning_db::{Db, Error, Options};

const CHILD_ENV: &str = "LIGHTNING_EXCLUSION_CHILD_DIR";

/// The child: tries to open the directory and reports the outcome through
/// its exit code: 0 opened, 3 locked, 4 any other error.
#[test]
#[ignore = "child process of second_process_gets_locked; run by the parent"]
fn exclusion_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let code = match Db::open(&dir, Options::default()) {
        Ok(db) => {
            db.put(b"child", b"was here").unwrap();
            db.close().unwrap();
            0
        }
        Err(Error::Locked(_)) => 3,
        Err(e) => {
            eprintln!("{e}");
            4
        }
    };
    std::process::exit(code);
}

fn run_child(dir: &std::path::Path) -> i32 {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exclusion_child", "--ignored", "--nocapture"])
        .env(CHILD_ENV, dir)
        .status()
        .unwrap()
        .code()
        .unwrap()
}

#[test]
fn second_process_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"parent", b"1").unwrap();
    assert_eq!(
        run_child(dir.path()),
        3,
        "a second process must get Error::Locked"
    );
    assert_eq!(db.get(b"parent").unwrap().as_deref(), Some(&b"1"[..]));
    db.close().unwrap();
    assert_eq!(run_child(dir.path()), 0, "after close the lock is free");
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"child").unwrap().as_deref(), Some(&b"was here"[..]));
}
