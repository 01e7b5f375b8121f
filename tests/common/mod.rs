//! Helpers shared by the adversarial integration tests: a file system that
//! skips fsync (the tests simulate crashes by copying and editing files, so
//! durability calls only cost time), directory copies, and whole-database
//! dumps to compare against a `BTreeMap` model.
#![allow(dead_code)]

pub mod gate;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lightning_db::fs::{FileLock, FileSystem, PosixFs, RandomAccessFile, WritableFile};
use lightning_db::{Bytes, Db, Options, Result};

/// The real file system with `sync_data` and `sync_dir` turned into
/// flushes: tests that never lose power do not need to wait for the disk.
#[derive(Debug)]
pub struct NoSyncFs;

struct NoSyncFile(Box<dyn WritableFile>);

impl WritableFile for NoSyncFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.0.append(data)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn sync_data(&mut self) -> Result<()> {
        self.0.flush()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl FileSystem for NoSyncFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        PosixFs.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        Ok(Box::new(NoSyncFile(PosixFs.create(path)?)))
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        PosixFs.read_file(path)
    }
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        PosixFs.open_random(path)
    }
    unsafe fn release_read_pages(&self, data: &[u8]) {
        // SAFETY: forwarded under the caller's guarantee (`read_file` above
        // is PosixFs's).
        unsafe { PosixFs.release_read_pages(data) }
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        PosixFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        PosixFs.remove_file(path)
    }
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        PosixFs.link(from, to)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        PosixFs.list_dir(dir)
    }
    fn sync_dir(&self, _dir: &Path) -> Result<()> {
        Ok(())
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

/// Options with a small write buffer and no fsyncs.
pub fn fast_opts() -> Options {
    Options::default()
        .write_buffer_size(64 * 1024)
        .fs(Arc::new(NoSyncFs))
}

/// Options under which background work never rests: small memtables and a
/// tiny tree, so writes keep switching memtables, flushing and compacting
/// (two subcompactions per job), and a small manifest that is rewritten
/// often.
pub fn churn_opts() -> Options {
    let mut o = Options::default()
        .write_buffer_size(64 * 1024)
        .max_write_buffer_number(3)
        // The manifest is rewritten every few dozen edits, so crashes land
        // during rewrites too.
        .max_manifest_file_size(4096);
    o.compaction.level0_file_num_compaction_trigger = 2;
    o.compaction.max_bytes_for_level_base = 64 * 1024;
    o.compaction.target_file_size_base = 64 * 1024;
    o.compaction.max_subcompactions = 2;
    o
}

/// Runs the ignored test `child_test` of this test binary as a child
/// process with the environment `envs`, kills it with SIGKILL after
/// `run_for`, and returns the lines it printed, complete ones only (a line
/// cut by the kill is dropped). Note that the first line follows libtest's
/// `test <name> ... ` on the same line. Panics if the child exits on its
/// own.
pub fn run_child_then_kill(
    child_test: &str,
    envs: &[(&str, String)],
    run_for: Duration,
) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            child_test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child's stderr, kept to show why it stopped if it does on its own.
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut out = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match out.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    line.pop();
                    lines.push(line);
                }
                _ => return lines,
            }
        }
    });
    let t = Instant::now();
    while t.elapsed() < run_for {
        if let Ok(Some(status)) = child.try_wait() {
            let err = errors.join().unwrap_or_default();
            let mut cut = err.len().saturating_sub(4000);
            while !err.is_char_boundary(cut) {
                cut += 1;
            }
            let tail = &err[cut..];
            panic!("child {child_test} exited on its own: {status}; its stderr ends:\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(errors);
    reader.join().unwrap()
}

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every pair of the database, forwards.
pub fn dump(db: &Db) -> Result<Model> {
    let mut m = Model::new();
    for item in db.iter() {
        let (k, v) = item?;
        m.insert(k.to_vec(), v.to_vec());
    }
    Ok(m)
}

/// Copies the regular files of `from` (not `LOCK`) into a new directory.
pub fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "LOCK" {
            continue;
        }
        std::fs::copy(e.path(), to.join(&name)).unwrap();
    }
}

/// Every file of `dir` with its bytes (name → content).
pub fn snapshot_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Files of `dir` whose names end with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// A small deterministic PRNG (xorshift64*), so the tests need no
/// dependency and replay exactly.
pub struct Rng(pub u64);

impl Rng {
    /// SplitMix64: every seed, 0 included, gives a full-period stream.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `1 / n`.
    #[allow(dead_code)]
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// `opts` with automatic compaction off, so flushed files stay in level 0
/// (tests that need many level-0 files, or a fixed set of files to damage).
pub fn no_compaction(mut opts: Options) -> Options {
    opts.compaction.disable_auto_compactions = true;
    opts
}

/// An in-memory file system whose creation of `.sst` files waits while
/// its gate is closed (after letting the first `pass` through): holds
/// flushes and compactions at a known point, so stalls can be caused on
/// purpose. [`GateFs::open`] lets everything through from then on.
#[derive(Debug)]
pub struct GateFs {
    inner: lightning_db::testing::MemFs,
    /// (open, creations still let through while closed)
    state: std::sync::Mutex<(bool, u64)>,
    cv: std::sync::Condvar,
}

impl GateFs {
    /// A closed gate that lets `pass` `.sst` creations through first.
    pub fn new(pass: u64) -> Arc<GateFs> {
        Arc::new(GateFs {
            inner: lightning_db::testing::MemFs::new(),
            state: std::sync::Mutex::new((false, pass)),
            cv: std::sync::Condvar::new(),
        })
    }

    /// Opens the gate for good.
    pub fn open(&self) {
        self.state.lock().unwrap().0 = true;
        self.cv.notify_all();
    }

    /// A guard that opens the gate when dropped: declared after the
    /// database, it lets a failing test's database close instead of
    /// waiting forever for a job held at the gate.
    pub fn open_on_drop(self: &Arc<Self>) -> impl Drop {
        struct Guard(Arc<GateFs>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.open();
            }
        }
        Guard(Arc::clone(self))
    }
}

impl FileSystem for GateFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        if path.extension().is_some_and(|e| e == "sst") {
            let mut st = self.state.lock().unwrap();
            loop {
                if st.0 {
                    break;
                }
                if st.1 > 0 {
                    st.1 -= 1;
                    break;
                }
                st = self.cv.wait(st).unwrap();
            }
        }
        self.inner.create(path)
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        self.inner.read_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn file_size(&self, path: &Path) -> Result<u64> {
        self.inner.file_size(path)
    }
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}

/// Polls `cond` every few milliseconds for up to 20 s; panics naming
/// `what` when it never holds.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Opens a database on a [`GateFs`] with `o`'s other settings, two 64 KiB
/// memtables, and writes over two memtables' worth from a thread while the
/// first flush is held at the gate: the writer stalls waiting for it.
/// Keeps the stall for `hold`, then releases the gate, joins the writer and
/// returns the database.
pub fn memtable_stall(o: Options, hold: Duration) -> Arc<Db> {
    let fs = GateFs::new(0);
    let o = o
        .fs(fs.clone())
        .write_buffer_size(64 << 10)
        .max_write_buffer_number(2);
    let db = Arc::new(Db::open("/db", o).unwrap());
    let _gate = fs.open_on_drop();
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for i in 0..2_000 {
                db.put(format!("k{i:05}"), [1u8; 100]).unwrap();
            }
        })
    };
    wait_until("a memtable stall", || {
        db.stats().stalls.memtable_stop.count >= 1
    });
    std::thread::sleep(hold);
    fs.open();
    writer.join().unwrap();
    db
}

/// Runs `f` on another thread and fails the test if it does not return
/// within `secs` seconds (a deadlock would otherwise hang the test run).
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s (deadlock?)"))
}

/// Runs `check` on `db`, then closes it (every other handle must be gone),
/// reopens `dir` with `opts` and runs `check` again: what the WAL and the
/// tables hold reads back the same.
pub fn check_then_reopen(db: Arc<Db>, dir: &Path, opts: Options, check: impl Fn(&Db)) {
    check(&db);
    let db = Arc::into_inner(db).expect("no other handle to the database");
    db.close().unwrap();
    check(&Db::open(dir, opts).unwrap());
}
