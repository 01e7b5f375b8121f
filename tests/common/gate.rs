//! [`GateFs`]: a file system wrapper that holds one chosen operation (an
//! append, sync, create or open on a file whose name contains a given string)
//! until the test releases it. Tests use it to order their own threads
//! against the engine's: a write group holding the WAL lock in the middle
//! of its append while another thread closes the database; a flush held
//! before its SST exists while the test writes more data.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lightning_db::fs::{FileLock, FileSystem, RandomAccessFile, WritableFile};
use lightning_db::{Bytes, Result};

/// The operations a [`Gate`] can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOp {
    Create,
    Append,
    Sync,
    /// `open_random`: opening a file for positional reads.
    Open,
}

#[derive(Debug, Default)]
struct GateState {
    /// The next operation of this kind on a name containing this string
    /// is held (once: the gate disarms when it catches one).
    armed: Option<(GateOp, String)>,
    /// An operation is waiting at the gate.
    holding: bool,
    /// The test opened the gate for the operation waiting there.
    released: bool,
}

/// The control side of a [`GateFs`].
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

impl Gate {
    /// Holds the next `op` on a file whose name contains `name`.
    pub fn arm(&self, op: GateOp, name: &str) {
        let mut s = self.state.lock().unwrap();
        s.armed = Some((op, name.to_string()));
        s.released = false;
    }

    /// Waits (at most `timeout`) until an operation is held; true if one is.
    pub fn wait_holding(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        while !s.holding {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.cv.wait_timeout(s, left).unwrap().0;
        }
        true
    }

    /// Lets the held operation go on (into the wrapped file system, where a
    /// fault rule may make it fail).
    pub fn release(&self) {
        let mut s = self.state.lock().unwrap();
        s.released = true;
        self.cv.notify_all();
    }

    fn pass(&self, op: GateOp, path: &Path) {
        let mut s = self.state.lock().unwrap();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match &s.armed {
            Some((o, n)) if *o == op && name.contains(n.as_str()) => {}
            _ => return,
        }
        s.armed = None;
        s.holding = true;
        self.cv.notify_all();
        while !s.released {
            s = self.cv.wait(s).unwrap();
        }
        s.holding = false;
        s.released = false;
    }
}

/// A [`FileSystem`] that passes every call to `inner`, holding armed
/// operations at its [`Gate`] first.
#[derive(Debug)]
pub struct GateFs {
    inner: Arc<dyn FileSystem>,
    gate: Arc<Gate>,
}

impl GateFs {
    pub fn new(inner: Arc<dyn FileSystem>) -> (Arc<GateFs>, Arc<Gate>) {
        let gate = Arc::new(Gate::default());
        let fs = Arc::new(GateFs {
            inner,
            gate: Arc::clone(&gate),
        });
        (fs, gate)
    }

    fn wrap(&self, path: &Path, file: Box<dyn WritableFile>) -> Box<dyn WritableFile> {
        Box::new(GateFile {
            inner: file,
            path: path.to_path_buf(),
            gate: Arc::clone(&self.gate),
        })
    }
}

struct GateFile {
    inner: Box<dyn WritableFile>,
    path: std::path::PathBuf,
    gate: Arc<Gate>,
}

impl WritableFile for GateFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.gate.pass(GateOp::Append, &self.path);
        self.inner.append(data)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn sync_data(&mut self) -> Result<()> {
        self.gate.pass(GateOp::Sync, &self.path);
        self.inner.sync_data()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn preallocate(&mut self, len: u64) -> Result<()> {
        self.inner.preallocate(len)
    }
    fn trim(&mut self) -> Result<()> {
        self.inner.trim()
    }
}

impl FileSystem for GateFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.gate.pass(GateOp::Create, path);
        let f = self.inner.create(path)?;
        Ok(self.wrap(path, f))
    }
    fn create_mapped(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.gate.pass(GateOp::Create, path);
        let f = self.inner.create_mapped(path)?;
        Ok(self.wrap(path, f))
    }
    fn read_file(&self, path: &Path) -> Result<Bytes> {
        self.inner.read_file(path)
    }
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        self.gate.pass(GateOp::Open, path);
        self.inner.open_random(path)
    }
    fn lock_shared(&self, path: &Path) -> Result<Option<Box<dyn FileLock>>> {
        self.inner.lock_shared(path)
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
