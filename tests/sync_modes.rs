//! WAL sync modes: per-write sync, sync every N bytes, sync every N ms,
//! and group commit sharing fsyncs between concurrent synced writers.
//!
//! Why it matters: these are the durability promises users pick between;
//! each must actually issue the fsyncs it promises (and not more).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lightning_db::fs::{FileLock, FileSystem, PosixFs, WritableFile};
use lightning_db::{Bytes, Db, Options, Result, WriteBatch, WriteOptions};

/// The real file system, counting fdatasyncs of WAL files.
#[derive(Debug, Default)]
struct CountingFs {
    wal_syncs: Arc<AtomicU64>,
}

struct CountingFile {
    inner: Box<dyn WritableFile>,
    syncs: Option<Arc<AtomicU64>>,
}

impl WritableFile for CountingFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn sync_data(&mut self) -> Result<()> {
        if let Some(c) = &self.syncs {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.sync_data()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl FileSystem for CountingFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        PosixFs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let is_wal = path.extension().is_some_and(|e| e == "log");
        Ok(Box::new(CountingFile {
            inner: PosixFs.create(path)?,
            syncs: is_wal.then(|| Arc::clone(&self.wal_syncs)),
        }))
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

fn open(dir: &Path, f: impl FnOnce(&mut Options)) -> (Db, Arc<AtomicU64>) {
    let fs = CountingFs::default();
    let syncs = Arc::clone(&fs.wal_syncs);
    let mut o = Options::default().fs(Arc::new(fs));
    f(&mut o);
    let db = Db::open(dir, o).unwrap();
    (db, syncs)
}

#[test]
fn sync_writes_fsync_and_unsynced_writes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path(), |_| {});
    let base = syncs.load(Ordering::Relaxed);
    for i in 0..20u32 {
        db.put(i.to_be_bytes(), b"v").unwrap();
    }
    assert_eq!(
        syncs.load(Ordering::Relaxed),
        base,
        "sync: false must not fsync"
    );
    for i in 0..10u32 {
        db.write_opt(
            {
                let mut b = WriteBatch::new();
                b.put(i.to_be_bytes(), b"s");
                b
            },
            &WriteOptions::default().sync(true),
        )
        .unwrap();
    }
    assert_eq!(syncs.load(Ordering::Relaxed), base + 10);
}

#[test]
fn wal_bytes_per_sync_bounds_unsynced_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path(), |o| o.wal_bytes_per_sync = 4096);
    let base = syncs.load(Ordering::Relaxed);
    for i in 0..100u32 {
        db.put(i.to_be_bytes(), [7u8; 200]).unwrap();
    }
    // About 100 * 220 bytes of records: one sync per 4 KiB.
    let n = syncs.load(Ordering::Relaxed) - base;
    assert!(
        (4..=6).contains(&n),
        "{n} syncs for ~22 KB at 4 KiB per sync"
    );
}

#[test]
fn wal_sync_interval_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path(), |o| o.wal_sync_interval_ms = 20);
    std::thread::sleep(std::time::Duration::from_millis(60));
    let idle = syncs.load(Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_eq!(
        syncs.load(Ordering::Relaxed),
        idle,
        "an idle WAL is not synced"
    );
    db.put(b"k", b"v").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while syncs.load(Ordering::Relaxed) == idle {
        assert!(
            std::time::Instant::now() < deadline,
            "no background sync within 2 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    db.close().unwrap();
}

#[test]
fn concurrent_synced_writers_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let (db, syncs) = open(dir.path(), |_| {});
    let db = Arc::new(db);
    let base = syncs.load(Ordering::Relaxed);
    let threads = 16u64;
    let per_thread = 30u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let mut b = WriteBatch::new();
                    b.put((t * 1000 + i).to_be_bytes(), [1u8; 100]);
                    db.write_opt(b, &WriteOptions::default().sync(true))
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = syncs.load(Ordering::Relaxed) - base;
    let writes = threads * per_thread;
    println!("{writes} synced writes from {threads} threads took {n} fsyncs");
    assert!(
        n < writes,
        "group commit shared no fsync ({n} for {writes} writes)"
    );
    assert_eq!(db.iter().count() as u64, writes);
}
