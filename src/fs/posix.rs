//! The real file system: `std::fs`, `fdatasync`, `flock` and `mmap`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::mapped::{MappedWritable, PosixMap};
use super::{FileLock, FileSystem, RandomAccessFile, WritableFile};
use crate::error::{Error, Result};

/// Size of the user-space write buffer of a [`WritableFile`].
const WRITE_BUFFER: usize = 64 * 1024;

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct PosixFs;

struct PosixWritable {
    path: PathBuf,
    /// Shared with writeback requests (`super::writeback`), which keep the
    /// descriptor open until they are made.
    file: std::sync::Arc<File>,
    buf: Vec<u8>,
    len: u64,
    /// Where the range of the next writeback request starts.
    writeback_from: u64,
    /// The file's size on disk when larger than `len` (a preallocated
    /// zero tail), else 0.
    allocated: u64,
}

impl PosixWritable {
    fn write_out(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            (&*self.file)
                .write_all(&self.buf)
                .map_err(|e| Error::io(&self.path, e))?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl WritableFile for PosixWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.len += data.len() as u64;
        if self.buf.len() + data.len() > WRITE_BUFFER {
            self.write_out()?;
            if data.len() >= WRITE_BUFFER {
                return (&*self.file)
                    .write_all(data)
                    .map_err(|e| Error::io(&self.path, e));
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.write_out()
    }

    fn sync_data(&mut self) -> Result<()> {
        self.write_out()?;
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn start_writeback(&mut self) -> Result<()> {
        self.write_out()?;
        super::writeback::request(
            &self.file,
            self.writeback_from,
            self.len - self.writeback_from,
        );
        self.writeback_from = self.len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> Result<()> {
        if len > self.len.max(self.allocated) {
            // `set_len` leaves the write position alone: appends go on at
            // `len - buf.len()`, overwriting the zeros.
            self.file
                .set_len(len)
                .map_err(|e| Error::io(&self.path, e))?;
            self.allocated = len;
        }
        Ok(())
    }

    fn trim(&mut self) -> Result<()> {
        if self.allocated > self.len {
            self.write_out()?;
            self.file
                .set_len(self.len)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.allocated = 0;
        Ok(())
    }
}

/// Creates `path` (truncating an existing file) for writing, and for
/// reading too when `read`.
fn create_file(path: &Path, read: bool) -> Result<File> {
    OpenOptions::new()
        .read(read)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// A file read with `pread`.
struct PosixRandom {
    path: PathBuf,
    file: File,
}

impl RandomAccessFile for PosixRandom {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match read_at(&self.file, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        Ok(done)
    }

    #[cfg(unix)]
    fn read_vec_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::fd::AsRawFd;
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        let mut done = 0usize;
        while done < len {
            let at = offset
                .checked_add(done as u64)
                .and_then(|a| libc::off_t::try_from(a).ok())
                .ok_or_else(|| {
                    Error::io(
                        &self.path,
                        std::io::Error::new(std::io::ErrorKind::InvalidInput, "offset too large"),
                    )
                })?;
            // SAFETY: the destination is the buffer's spare capacity
            // `done..len` (allocated above, `len` bytes); `pread` writes at
            // most `len - done` bytes there, and only the bytes it reports
            // written are counted in `done`, which bounds `set_len` below.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    buf.as_mut_ptr().add(done).cast(),
                    len - done,
                    at,
                )
            };
            match n {
                0 => break,
                n if n > 0 => done += n as usize,
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(Error::io(&self.path, e));
                    }
                }
            }
        }
        // SAFETY: `pread` initialized the first `done` bytes (see above).
        unsafe { buf.set_len(done) };
        Ok(buf)
    }

    fn size(&self) -> Result<u64> {
        Ok(self
            .file
            .metadata()
            .map_err(|e| Error::io(&self.path, e))?
            .len())
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

#[derive(Debug)]
struct PosixLock {
    _file: File,
}

impl FileLock for PosixLock {}

impl FileSystem for PosixFs {
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
    }

    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        let file = create_file(path, false)?;
        Ok(Box::new(PosixWritable {
            path: path.to_path_buf(),
            file: std::sync::Arc::new(file),
            buf: Vec::with_capacity(WRITE_BUFFER),
            len: 0,
            writeback_from: 0,
            allocated: 0,
        }))
    }

    fn create_mapped(&self, path: &Path) -> Result<Box<dyn WritableFile>> {
        // Read access too: a shared writable mapping needs both.
        let file = create_file(path, true)?;
        match MappedWritable::new(path.to_path_buf(), PosixMap::new(file))? {
            Some(mapped) => Ok(Box::new(mapped)),
            // No block reservation on this file system: plain appends.
            None => self.create(path),
        }
    }

    fn read_file(&self, path: &Path) -> Result<Bytes> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the engine maps only files it never modifies after they
        // were written and synced (SSTs, closed WALs and manifests at
        // recovery). Another process truncating the file would be outside
        // the engine's contract (documented in docs/durability.md).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Bytes::from_owner(map))
    }

    fn link(&self, from: &Path, to: &Path) -> Result<()> {
        match std::fs::hard_link(from, to) {
            Ok(()) => Ok(()),
            // Another file system, or one without hard links: a copy.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::CrossesDevices
                        | std::io::ErrorKind::Unsupported
                        | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                super::copy_file(self, from, to)
            }
            Err(e) => Err(Error::io(to, e)),
        }
    }

    fn open_random(&self, path: &Path) -> Result<Box<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Box::new(PosixRandom {
            path: path.to_path_buf(),
            file,
        }))
    }

    unsafe fn release_read_pages(&self, data: &[u8]) {
        // Whole pages inside `data` only: a neighbour's page may be in use.
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        let start = (data.as_ptr() as usize).next_multiple_of(page);
        let end = (data.as_ptr() as usize + data.len()) / page * page;
        if end > start {
            // SAFETY: the caller guarantees `data` is inside a live
            // read-only file mapping from `read_file`; MADV_DONTNEED on such
            // a mapping only unmaps the pages (a later access reads the
            // same file contents back). The result is a hint: errors are
            // ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }

    unsafe fn will_need(&self, data: &[u8]) {
        // The pages holding `data`: the map starts on a page and its last
        // page is whole, so the rounded range stays inside it.
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        let start = data.as_ptr() as usize / page * page;
        let end = (data.as_ptr() as usize + data.len()).next_multiple_of(page);
        if end > start {
            // SAFETY: the caller guarantees `data` is inside a live file
            // mapping from `read_file`; MADV_WILLNEED only starts reading
            // its pages in. The result is a hint: errors are ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_WILLNEED);
            }
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        std::fs::rename(from, to).map_err(|e| Error::io(from, e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
        f.sync_all().map_err(|e| Error::io(dir, e))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| Error::io(path, e))
    }

    fn file_size(&self, path: &Path) -> Result<u64> {
        Ok(std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len())
    }

    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(PosixLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::Locked(path.parent().unwrap_or(path).to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }

    fn lock_shared(&self, path: &Path) -> Result<Option<Box<dyn FileLock>>> {
        // Opened for reading only: nothing is created or written.
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Box::new(PosixLock { _file: file }))),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(Error::Locked(path.parent().unwrap_or(path).to_path_buf()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writeback requests are hints: the file holds exactly what was
    /// appended, in order, whether they come between appends or not, and
    /// whatever is buffered is handed to the OS by the request.
    /// `read_vec_at` reads what `read_at` reads, whole or cut at the
    /// file's end, at any offset and length.
    #[test]
    fn read_vec_at_reads_what_read_at_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = PosixFs.open_random(&path).unwrap();
        for (offset, len) in [
            (0u64, 0usize),
            (0, 1),
            (7, 100_000),
            (299_999, 1),
            (299_990, 100),
            (300_000, 10),
            (400_000, 10),
            (12_345, 250_000),
        ] {
            let got = f.read_vec_at(offset, len).unwrap();
            let mut want = vec![0u8; len];
            let n = f.read_at(offset, &mut want).unwrap();
            want.truncate(n);
            assert_eq!(got, want, "offset {offset}, len {len}");
        }
    }

    #[test]
    fn writeback_requests_leave_the_contents_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut f = PosixFs.create(&path).unwrap();
        let mut expect = Vec::new();
        for i in 0..200u32 {
            let chunk = vec![i as u8; 1 + (i as usize * 997) % 70_000];
            f.append(&chunk).unwrap();
            expect.extend_from_slice(&chunk);
            if i % 7 == 0 {
                f.start_writeback().unwrap();
                // Handed to the OS: visible to another reader already.
                assert_eq!(std::fs::read(&path).unwrap().len(), expect.len());
            }
        }
        f.sync_data().unwrap();
        assert_eq!(f.len(), expect.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), expect);
    }
}
