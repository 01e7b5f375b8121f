//! Regression: a failure to create the next WAL during a memtable switch
//! deadlocked the writer.
//!
//! The switch runs in the write-group leader with the queue lock held; the
//! background-error path took the same lock to wake stalled writers. Now
//! the leader records the error without it, and the write fails fast.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_db::fs::{FileLock, FileSystem, PosixFs, WritableFile};
use lightning_db::{Bytes, Db, Error, Options, Result};

/// The real file system, except that creating the `fail_at`-th WAL fails.
#[derive(Debug)]
struct FailingWalCreate {
    wal_creates: AtomicU32,
    fail_at: u32,
}

impl FileSystem for FailingWalCreate {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        PosixFs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        if path.extension().is_some_and(|e| e == "log")
            && self.wal_creates.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at
        {
            return Err(Error::io(
                path,
                std::io::Error::other("injected: disk full"),
            ));
        }
        PosixFs.create(path)
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        PosixFs.read_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        PosixFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        PosixFs.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        PosixFs.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        PosixFs.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        PosixFs.exists(path)
    }
    fn file_size(&self, path: &Path) -> Result<u64> {
        PosixFs.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        PosixFs.lock(path)
    }
}

#[test]
fn failed_wal_creation_at_rotation_fails_writes_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        write_buffer_size: 64 * 1024,
        // The first WAL is created at open; the second at the first switch.
        fs: Arc::new(FailingWalCreate {
            wal_creates: AtomicU32::new(0),
            fail_at: 2,
        }),
        ..Options::default()
    };
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for i in 0..10_000u32 {
                if let Err(e) = db.put(i.to_be_bytes(), [0u8; 100]) {
                    return Some((i, e));
                }
            }
            None
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !writer.is_finished() {
        assert!(
            Instant::now() < deadline,
            "writer hung after a failed WAL rotation"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (failed_at, e) = writer.join().unwrap().expect("a write must fail");
    assert!(matches!(e, Error::Background(_)), "{e}");
    assert!(e.to_string().contains("injected"), "{e}");
    // Fail-stop: later writes fail at once; reads still work.
    assert!(matches!(db.put(b"x", b"y"), Err(Error::Background(_))));
    assert_eq!(db.get(0u32.to_be_bytes()).unwrap().unwrap().len(), 100);
    assert!(db.get((failed_at - 1).to_be_bytes()).unwrap().is_some());
}
