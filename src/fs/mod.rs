//! The file-system seam: every byte the engine reads or writes goes through
//! [`FileSystem`].
//!
//! [`PosixFs`] is the real implementation and the default. Tests can swap
//! in `MemFs` (in memory) or `FaultFs` (in memory, separating synced
//! from merely written data, simulating power loss and injecting I/O
//! errors): both are in `lightning_db::testing`, behind the `testing` feature. The trait is deliberately small: whole-file read-only mapping for
//! immutable files, append-only writable files, and directory operations.
//!
//! Every method reports failures as [`crate::Error::Io`] naming the path.

pub(crate) mod mapped;
mod posix;
mod writeback;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;

pub use posix::PosixFs;

/// Bytes a writer of a large file (a blob file, an SST) appends between
/// two [`WritableFile::start_writeback`] requests (RocksDB's
/// `bytes_per_sync`: its default is 0 = off, but its docs suggest 1 MiB).
pub(crate) const WRITEBACK_BYTES: u64 = 1 << 20;

/// A file opened for appending. Data passes through three states:
/// appended (may sit in a user-space buffer), flushed (the OS has it: it
/// survives a crash of this process), synced (on stable storage: it
/// survives a power loss).
pub trait WritableFile: Send + Sync {
    /// Appends `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Hands everything appended so far to the operating system.
    fn flush(&mut self) -> Result<()>;
    /// Flushes, then makes the file's data durable (`fdatasync`). After an
    /// error the state of the data is unknown: callers must not retry as if
    /// it were safe.
    fn sync_data(&mut self) -> Result<()>;
    /// Bytes appended so far (the file's logical size).
    fn len(&self) -> u64;
    /// Hands everything appended so far to the operating system and asks
    /// it to start writing what was appended since the last call back to
    /// storage, without waiting (Linux's `sync_file_range`; RocksDB's
    /// `bytes_per_sync`): a later `sync_data` then has less left to wait
    /// for. A hint: nothing becomes durable. The default only flushes.
    fn start_writeback(&mut self) -> Result<()> {
        self.flush()
    }
    /// Extends the file to at least `len` bytes with a zero-filled (sparse)
    /// tail, without moving where appends go. Appends inside that tail then
    /// leave the file size unchanged, so an `fdatasync` after them need not
    /// record a new size: on ext4 a synced small append measured 150-220 µs
    /// on this project's machine against 115-130 µs inside a preallocated
    /// tail. Readers of such a file see zeros after the data. The default
    /// does nothing.
    fn preallocate(&mut self, _len: u64) -> Result<()> {
        Ok(())
    }
    /// Cuts a preallocated tail off: the file's size becomes [`len`](Self::len)
    /// (durable at the next `sync_data`). The default does nothing.
    fn trim(&mut self) -> Result<()> {
        Ok(())
    }
    /// True when nothing was appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file opened for positional reads (`pread`). Nothing is mapped: a
/// file shortened by anyone, or a device read error, is an
/// [`crate::Error::Io`] (or a short read) for that call, never a signal
/// that kills the process. The handle keeps reading the file it opened
/// even after the name is removed or replaced.
pub trait RandomAccessFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset` into `buf`; returns how
    /// many were read, fewer only at the end of the file (0 past it).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;
    /// The file's size now (it may change while another handle writes it).
    fn size(&self) -> Result<u64>;
    /// Reads up to `len` bytes at `offset` into a new buffer, fewer only
    /// at the end of the file. An implementation may read into the
    /// buffer's memory without zero-filling it first (a large value's
    /// read then touches its bytes once, not twice); the default
    /// zero-fills and calls [`read_at`](Self::read_at).
    fn read_vec_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let n = self.read_at(offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// A [`RandomAccessFile`] over bytes read once: what
/// [`FileSystem::open_random`] gives by default.
struct BytesFile(Bytes);

impl RandomAccessFile for BytesFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = self.0.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
    fn size(&self) -> Result<u64> {
        Ok(self.0.len() as u64)
    }
}

/// An exclusive lock on a file, released when dropped.
pub trait FileLock: Send + Sync + fmt::Debug {}

/// The file-system operations the engine needs.
pub trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;
    /// Creates `path` (truncating any existing file) for appending.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Creates `path` like [`create`](Self::create), for a file whose
    /// unsynced appends must reach the operating system one by one (the
    /// WAL). [`PosixFs`] writes it through a shared memory map: an append
    /// is a copy into the page cache and [`WritableFile::flush`] costs
    /// nothing; the file carries a preallocated zero tail until
    /// [`WritableFile::trim`]. The default is [`create`](Self::create).
    fn create_mapped(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        self.create(path)
    }
    /// The whole content of an existing file, read-only. The real file
    /// system maps it into memory, so this is cheap for large immutable
    /// files. The file must not be modified while the returned bytes live.
    fn read_file(&self, path: &Path) -> Result<Bytes>;
    /// Opens the existing file `path` for positional reads (`pread`), for
    /// files that may change while they are read (a live WAL or manifest)
    /// or that must not be mapped. The default reads the whole file once
    /// through [`read_file`](Self::read_file): right for in-memory file
    /// systems, not for one whose `read_file` maps files.
    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        Ok(Box::new(BytesFile(self.read_file(path)?)))
    }
    /// Says that `data`, part of what [`read_file`](Self::read_file)
    /// returned, will not be read again soon. The real file system drops
    /// those pages from this process's memory map (they stay in the OS page
    /// cache, and a later read faults them back in unchanged), so reading a
    /// large file once, as a compaction does, does not grow the resident
    /// set by the whole file. The default does nothing.
    ///
    /// # Safety
    ///
    /// `data` must lie inside bytes returned by `read_file` of this file
    /// system that are still alive: on memory that is not a read-only file
    /// mapping the hint could discard contents.
    unsafe fn release_read_pages(&self, _data: &[u8]) {}
    /// Asks the OS to start reading the pages of `data` (inside a file
    /// map from [`read_file`](Self::read_file)) into memory in the
    /// background: a hint, which the default ignores.
    ///
    /// # Safety
    /// `data` must lie inside a live mapping returned by `read_file`.
    unsafe fn will_need(&self, _data: &[u8]) {}
    /// Atomically renames `from` to `to`, replacing `to`. Durable only after
    /// [`FileSystem::sync_dir`] on the parent.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Gives the immutable file `from` a second name `to` (a hard link,
    /// for checkpoints), or where that is not possible makes `to` a
    /// synced copy of it. Durable only after [`FileSystem::sync_dir`] on
    /// `to`'s parent. `to` must not exist. The default copies, through
    /// [`read_file`](Self::read_file) and [`create`](Self::create).
    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        copy_file(self, from, to)
    }
    /// Names of the entries of a directory (not full paths), in no order.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;
    /// True when `path` exists.
    fn exists(&self, path: &Path) -> Result<bool>;
    /// Size of a file in bytes.
    fn file_size(&self, path: &Path) -> Result<u64>;
    /// Takes an exclusive lock on `path` (creating it), failing with
    /// [`crate::Error::Locked`] when another holder has it, in this process
    /// or another.
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>>;
    /// Takes a shared lock on the existing file `path` without creating or
    /// writing it: any number of shared holders coexist, and they exclude
    /// the exclusive [`FileSystem::lock`] (each fails with
    /// [`crate::Error::Locked`] while the other is held). `Ok(None)` when
    /// `path` does not exist. Used by [`crate::Db::open_read_only`].
    ///
    /// The default takes no lock and returns `Ok(None)` (for file systems
    /// without locking); [`PosixFs`] takes an `flock` shared lock.
    fn lock_shared(&self, path: &Path) -> Result<Option<Box<dyn FileLock>>> {
        let _ = path;
        Ok(None)
    }
}

/// Copies the whole file `from` to the new file `to` through `fs`, and
/// syncs the copy (the default of [`FileSystem::link`]).
pub(crate) fn copy_file<F: FileSystem + ?Sized>(fs: &F, from: &Path, to: &Path) -> Result<()> {
    if fs.exists(to)? {
        return Err(crate::Error::io(
            to,
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "link target exists"),
        ));
    }
    let data = fs.read_file(from)?;
    let mut out = fs.create(to)?;
    out.append(&data)?;
    out.sync_data()
}

/// Removes the files of `dir`, then `dir` itself (for directories the
/// engine makes whole, with no subdirectory: checkpoints, backups). The
/// directory itself goes through `std::fs` (the trait has no call for
/// it); one that is already gone, or that only an in-memory file system
/// knows, is fine.
pub(crate) fn remove_dir_files(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    for name in fs.list_dir(dir)? {
        fs.remove_file(&dir.join(name))?;
    }
    std::fs::remove_dir(dir).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(crate::Error::io(dir, e)),
    })
}

/// The default file system.
pub fn default_fs() -> Arc<dyn FileSystem> {
    Arc::new(PosixFs)
}

/// The first `len` bytes of `path` (all of it with `None`, or fewer when
/// the file is shorter), read with positional reads into one buffer:
/// nothing is mapped, so a file that shrinks or fails meanwhile gives a
/// shorter result or [`crate::Error::Io`], never a signal. A transient
/// error (`Interrupted`, `WouldBlock`) is retried as in
/// [`read_file_retrying`]. For files that may change while they are read:
/// the live WAL and manifest, and files of a database another process has
/// open.
pub(crate) fn read_prefix(fs: &dyn FileSystem, path: &Path, len: Option<u64>) -> Result<Bytes> {
    let file = retry_transient(path, || fs.open_random(path))?;
    let len = match len {
        Some(n) => n,
        None => retry_transient(path, || file.size())?,
    };
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
    let mut done = 0;
    while done < buf.len() {
        let n = retry_transient(path, || file.read_at(done as u64, &mut buf[done..]))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(Bytes::from(buf))
}

/// A shared lock on the `LOCK` of database directory `dir`, for a tool
/// that reads the database and wants a stable view: `(Some(lock), false)`
/// while it is held, `(None, false)` when there is no `LOCK` file (the
/// database was never opened for writing here, or the file system does
/// not lock), and `(None, true)` when a writer has the database open: the
/// caller then reads it live and must say so.
pub(crate) fn lock_shared_or_live(
    fs: &dyn FileSystem,
    dir: &Path,
) -> Result<(Option<Box<dyn FileLock>>, bool)> {
    match fs.lock_shared(&crate::filename::lock_file_name(dir)) {
        Ok(lock) => Ok((lock, false)),
        Err(crate::Error::Locked(_)) => Ok((None, true)),
        Err(e) => Err(e),
    }
}

/// Attempts of [`read_file_retrying`] for a transient error.
pub(crate) const READ_ATTEMPTS: u32 = 3;

/// [`FileSystem::read_file`], retried with a short backoff (1 ms, then
/// 2 ms) when it fails with a transient error (`Interrupted` — EINTR, as
/// some network and FUSE file systems return — or `WouldBlock`), up to
/// [`READ_ATTEMPTS`] attempts in all. Every read of the engine goes
/// through here. Writes and syncs are never retried: after a failed write
/// or fsync the state of the data is unknown.
pub(crate) fn read_file_retrying(fs: &dyn FileSystem, path: &Path) -> Result<Bytes> {
    retry_transient(path, || fs.read_file(path))
}

/// Runs the read `f` on `path`, retrying a transient error as
/// [`read_file_retrying`] says.
fn retry_transient<T>(path: &Path, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match f() {
            Err(crate::Error::Io { source, .. })
                if attempt < READ_ATTEMPTS
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) =>
            {
                tracing::warn!(file = %path.display(), attempt, error = %source, "transient read error; retrying");
                std::thread::sleep(std::time::Duration::from_millis(1 << (attempt - 1)));
                attempt += 1;
            }
            other => return other,
        }
    }
}
