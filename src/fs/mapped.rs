//! [`MappedWritable`]: an append-only file written through a shared memory
//! map, for the WAL.
//!
//! An unsynced write must reach the operating system before it is
//! acknowledged (it then survives a crash of this process). Through
//! `write(2)` that is one system call per write, about a fifth of a small
//! unsynced put on this project's machine. Through a `MAP_SHARED` mapping
//! the copy into the page cache *is* the hand-over: an append is a
//! `memcpy`, with one page fault per 4 KiB page instead of a system call
//! per record.
//!
//! Invariants kept here:
//! - The file is always allocated (`fallocate`, real blocks, read as
//!   zeros) at least to the end of the mapped window. A store into a
//!   mapping past the end of the file, or into a hole the file system
//!   cannot fill because the disk is full, would kill the process with
//!   `SIGBUS`; with the blocks reserved first, a full disk is an
//!   [`Error::Io`] from `fallocate` instead, before any byte is copied.
//! - Only one window of [`WINDOW`] bytes is mapped at a time, so the
//!   mapping adds at most that much to the resident set. Unmapping a
//!   window leaves its dirty pages in the page cache, where `fdatasync`
//!   finds them: on Linux, `fdatasync` writes back every dirty page of the
//!   file however it was dirtied.
//! - A writer that syncs every group (synced writes) gains nothing from
//!   the map and loses to it: each `fdatasync` must then also
//!   write-protect the mapped page again, and it measured about 10 µs
//!   slower per sync than after a `pwrite`. So the file watches its
//!   callers: a sync with no unsynced flush since the previous one
//!   switches it to buffered `pwrite`s (the window is unmapped, so no
//!   page of the file stays mapped), and [`MAP_AFTER_FLUSHES`] unsynced
//!   flushes in a row switch it back. Either way the bytes land at the
//!   same offsets of the same preallocated file.
//! - Each finished window (a full MiB of records) is handed to the
//!   kernel's writeback at once, by a helper thread (`super::writeback`),
//!   so dirty WAL pages do not pile up until the next `fdatasync`. Nothing
//!   becomes durable by it; what changes is the cost of the sync that
//!   does: when a full memtable switches to a new WAL, the old one is
//!   synced on the writer's path, and that sync used to write back the
//!   whole 64 MiB (about 17-34 ms) at once.
//! - Bytes past [`WritableFile::len`] are zeros until
//!   [`WritableFile::trim`] cuts them off, the same preallocated tail the
//!   log format already allows (`docs/format.md`).
//!
//! The system calls are made through a [`MapBackend`]: [`PosixMap`] on a
//! real file, and `FaultFs`'s simulated file in the power-loss and
//! I/O-error tests, so that this logic is what those tests crash
//! (`docs/durability.md`). `MappedWritable` is generic over the backend:
//! the real one's `store` is an inlined `memcpy`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};

use super::WritableFile;
use crate::error::{Error, Result};
use crate::prefetch::WRITE_AHEAD;

/// Bytes mapped at a time (a multiple of every page size in use).
pub(crate) const WINDOW: u64 = 1 << 20;

/// Appends of at least this many bytes are written with `pwrite`, not
/// through the map: a large record's fragments (up to 32 KiB each) fault
/// fewer pages that way. Measured with 100 KB values: see the commit.
const DIRECT_APPEND: usize = 16 * 1024;

/// Unsynced flushes in a row after which a buffered file maps its window
/// again (see the module docs).
pub(crate) const MAP_AFTER_FLUSHES: u32 = 8;

/// The calls [`MappedWritable`] makes on its file, apart from its logic so
/// that the same logic (windows, blocks reserved ahead, the switches
/// between the map and `pwrite`, the trim, the writeback hand-off) runs
/// over the real file ([`PosixMap`]) and over a simulated one (`FaultFs`,
/// where a power cut or an injected error can hit each call).
/// `MappedWritable` is generic over it: the production append path has no
/// dynamic dispatch and no lock it did not have before.
///
/// Each method behaves as the system call it names; a failed call changes
/// nothing the writer relies on (the writer's state is only advanced after
/// a call succeeds).
pub(crate) trait MapBackend: Send + Sync + 'static {
    /// A window of the file mapped read-write and shared: a store through
    /// it is in the file (the page cache) at once.
    type Window: Send + Sync;

    /// `fallocate(offset, len)` (mode 0): reserves real blocks for the
    /// range, reading as zeros, and grows the file's size to at least
    /// `offset + len`.
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()>;

    /// `ftruncate(len)`: the file's size becomes `len`.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// `pwrite` of the whole of `data` at `offset` (inside the file's
    /// allocated size: the size does not change).
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;

    /// Maps `len` bytes of the file at `offset` (a multiple of the page
    /// size), shared and writable.
    ///
    /// # Safety
    ///
    /// While the window lives the caller keeps the whole of it inside the
    /// file's allocated size (never `set_len` below its end), and nothing
    /// else writes the file: on a real mapping a store past the end of
    /// the file is a `SIGBUS`, and another writer would alias the bytes.
    unsafe fn map(&self, offset: u64, len: usize) -> io::Result<Self::Window>;

    /// Copies `data` into `window` at `at` (offset inside the window). A
    /// range outside the window is an error that changes nothing.
    fn store(&self, window: &mut Self::Window, at: usize, data: &[u8]) -> io::Result<()>;

    /// `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;

    /// Asks for writeback of `len` bytes at `offset` to start, without
    /// waiting: a hint, never a durability point, never an error.
    fn start_writeback(&self, offset: u64, len: u64);
}

/// The real [`MapBackend`]: a file, `fallocate`, `pwrite`, `mmap` and the
/// writeback helper thread (`super::writeback`).
pub(super) struct PosixMap {
    /// Shared with pending writeback requests, which keep it open.
    file: Arc<File>,
}

impl PosixMap {
    /// Wraps `file`, opened for reading and writing (a shared writable
    /// mapping needs both).
    pub(super) fn new(file: File) -> PosixMap {
        PosixMap {
            file: Arc::new(file),
        }
    }
}

impl MapBackend for PosixMap {
    type Window = MmapMut;

    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        fallocate(&self.file, offset, len)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    unsafe fn map(&self, offset: u64, len: usize) -> io::Result<MmapMut> {
        // SAFETY: the caller keeps the window inside the allocated file and
        // is its only writer (this method's contract); other processes
        // modifying a live WAL are outside the engine's contract
        // (docs/durability.md), as for the read-only maps of SSTs.
        unsafe {
            MmapOptions::new()
                .offset(offset)
                .len(len)
                .map_mut(&*self.file)
        }
    }

    #[inline]
    fn store(&self, window: &mut MmapMut, at: usize, data: &[u8]) -> io::Result<()> {
        match at
            .checked_add(data.len())
            .and_then(|end| window.get_mut(at..end))
        {
            Some(dst) => {
                dst.copy_from_slice(data);
                // The lines as far ahead as were just written, for the
                // next appends (see `prefetch_write_lines`).
                if let Some(ahead) = window.get(at + WRITE_AHEAD..) {
                    let n = ahead.len().min(data.len());
                    crate::prefetch::prefetch_write_lines(ahead.as_ptr(), n);
                }
                Ok(())
            }
            None => Err(io::Error::other("append offset outside the mapped window")),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn start_writeback(&self, offset: u64, len: u64) {
        super::writeback::request(&self.file, offset, len);
    }
}

/// A [`WritableFile`] whose appends are copies into a shared mapping (see
/// the module docs), over the file calls of `B`.
pub(crate) struct MappedWritable<B: MapBackend> {
    path: PathBuf,
    file: B,
    /// Bytes appended (the logical size).
    len: u64,
    /// The file's size: every byte below it is allocated.
    allocated: u64,
    /// The mapped window, covering `window_start..window_start + WINDOW`.
    window: Option<B::Window>,
    window_start: u64,
    /// True while appends are buffered in `buf` and written with `pwrite`
    /// (a writer that syncs every group); false while they go to the map.
    buffered: bool,
    /// Appended, not yet written (only while `buffered`); it ends at `len`.
    buf: Vec<u8>,
    /// Unsynced flushes since the last sync.
    flushes_since_sync: u32,
    /// Writeback was requested for the bytes below this offset.
    writeback_from: u64,
}

impl<B: MapBackend> MappedWritable<B> {
    /// Wraps `file`, just created empty at `path`. `Ok(None)` when the file
    /// system cannot reserve blocks (`fallocate` unsupported): the caller
    /// then writes the file with plain appends.
    pub(crate) fn new(path: PathBuf, file: B) -> Result<Option<MappedWritable<B>>> {
        let mut w = MappedWritable {
            path,
            file,
            len: 0,
            allocated: 0,
            window: None,
            window_start: 0,
            buffered: false,
            buf: Vec::new(),
            flushes_since_sync: 0,
            writeback_from: 0,
        };
        match w.allocate(WINDOW) {
            Ok(()) => Ok(Some(w)),
            Err(Error::Io { source, .. })
                if source.raw_os_error() == Some(libc::EOPNOTSUPP)
                    || source.kind() == io::ErrorKind::Unsupported =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Reserves real blocks up to `end` (rounded up to [`WINDOW`]), growing
    /// the file's size with them.
    fn allocate(&mut self, end: u64) -> Result<()> {
        if end <= self.allocated {
            return Ok(());
        }
        let end = end.next_multiple_of(WINDOW);
        self.file
            .allocate(self.allocated, end - self.allocated)
            .map_err(|e| Error::io(&self.path, e))?;
        self.allocated = end;
        Ok(())
    }

    /// Has the writeback helper start writing back the whole windows
    /// written since the last call (see the module docs).
    fn start_writeback(&mut self) {
        let upto = self.len / WINDOW * WINDOW;
        if upto > self.writeback_from {
            self.file
                .start_writeback(self.writeback_from, upto - self.writeback_from);
            self.writeback_from = upto;
        }
    }

    /// Maps the window holding offset `self.len`, allocating it first.
    fn map_window(&mut self) -> Result<()> {
        let start = self.len / WINDOW * WINDOW;
        if self.window.is_none() || self.window_start != start {
            // Unmap the old window first: at most one is resident.
            self.window = None;
            self.start_writeback();
            self.allocate(start + WINDOW)?;
            // SAFETY: the window lies inside the allocated file (just
            // above), which this writer created and alone writes; the file
            // is never cut below a live window (`trim` unmaps first).
            let map = unsafe { self.file.map(start, WINDOW as usize) }
                .map_err(|e| Error::io(&self.path, e))?;
            self.window = Some(map);
            self.window_start = start;
        }
        Ok(())
    }

    /// Writes the buffered bytes at their offset (they end at `len`; the
    /// space is allocated, so the file size does not change).
    fn write_out(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let at = self.len - self.buf.len() as u64;
            self.allocate(self.len)?;
            self.file
                .write_at(&self.buf, at)
                .map_err(|e| Error::io(&self.path, e))?;
            self.buf.clear();
            self.start_writeback();
        }
        Ok(())
    }
}

impl<B: MapBackend> WritableFile for MappedWritable<B> {
    fn append(&mut self, mut data: &[u8]) -> Result<()> {
        if self.buffered {
            self.buf.extend_from_slice(data);
            self.len += data.len() as u64;
            return Ok(());
        }
        if data.len() >= DIRECT_APPEND {
            // A large piece (a fragment of a large record) costs one
            // `pwrite` instead of faulting its pages into the map one by
            // one; the map and `pwrite` share the page cache, so the bytes
            // land in the same pages either way.
            self.allocate(self.len + data.len() as u64)?;
            self.file
                .write_at(data, self.len)
                .map_err(|e| Error::io(&self.path, e))?;
            self.len += data.len() as u64;
            self.start_writeback();
            return Ok(());
        }
        while !data.is_empty() {
            self.map_window()?;
            let at = (self.len % WINDOW) as usize;
            let n = (WINDOW as usize - at).min(data.len());
            let (now, rest) = data.split_at(n);
            let Some(window) = self.window.as_mut() else {
                let e = io::Error::other("no window mapped");
                return Err(Error::io(&self.path, e));
            };
            self.file
                .store(window, at, now)
                .map_err(|e| Error::io(&self.path, e))?;
            self.len += n as u64;
            data = rest;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        // Mapped: the copies are in the page cache already.
        self.write_out()?;
        self.flushes_since_sync = self.flushes_since_sync.saturating_add(1);
        if self.buffered && self.flushes_since_sync >= MAP_AFTER_FLUSHES {
            self.buffered = false;
        }
        Ok(())
    }

    fn sync_data(&mut self) -> Result<()> {
        self.write_out()?;
        if !self.buffered && self.flushes_since_sync == 0 {
            // No unsynced flush since the previous sync (or since the file
            // was created, e.g. the sync of a new WAL's header): the
            // writer syncs every group, or has not written yet.
            self.buffered = true;
            self.window = None;
        }
        self.flushes_since_sync = 0;
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn preallocate(&mut self, len: u64) -> Result<()> {
        self.allocate(len)
    }

    fn trim(&mut self) -> Result<()> {
        self.write_out()?;
        self.window = None;
        if self.allocated > self.len {
            self.file
                .set_len(self.len)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.allocated = self.len;
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn fallocate(file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let offset = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let len = libc::off_t::try_from(len).map_err(std::io::Error::other)?;
    loop {
        // SAFETY: a plain system call on a descriptor `file` owns.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn fallocate(_file: &File, _offset: u64, _len: u64) -> std::io::Result<()> {
    // Elsewhere `fdatasync` is not known to write back pages dirtied
    // through a mapping: use plain appends.
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(dir: &std::path::Path) -> MappedWritable<PosixMap> {
        let path = dir.join("000001.log");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        MappedWritable::new(path, PosixMap::new(file))
            .unwrap()
            .expect("fallocate works on the test directory")
    }

    /// Appends of every size, across window boundaries, read back the same
    /// through the file (not the mapping), before and after the trim.
    #[test]
    fn appends_cross_windows_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = create(dir.path());
        let mut expect = Vec::new();
        let mut n = 0u32;
        while (expect.len() as u64) < 3 * WINDOW + 12345 {
            // Sizes 0..9000 through the map, every third up to 40,000
            // (written with `pwrite` from DIRECT_APPEND on), and one larger
            // than a whole window.
            let size = if n == 40 {
                WINDOW as usize + 777
            } else if n.is_multiple_of(3) {
                (n as usize * 7919) % 40_000
            } else {
                (n as usize * 7919) % 9000
            };
            let chunk: Vec<u8> = (0..size).map(|i| (i as u32 ^ n) as u8 | 1).collect();
            w.append(&chunk).unwrap();
            expect.extend_from_slice(&chunk);
            n += 1;
        }
        w.flush().unwrap();
        assert_eq!(w.len(), expect.len() as u64);
        assert_eq!(
            w.writeback_from,
            w.len() / WINDOW * WINDOW,
            "writeback was requested for every finished window"
        );
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert!(on_disk.len() as u64 >= w.len(), "the file holds every byte");
        assert_eq!(&on_disk[..expect.len()], &expect[..]);
        assert!(
            on_disk[expect.len()..].iter().all(|&b| b == 0),
            "the preallocated tail reads as zeros"
        );
        w.sync_data().unwrap();
        w.trim().unwrap();
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(on_disk, expect, "after the trim the file ends at the data");
    }

    /// Data appended is in the file without any flush or sync: what a
    /// crash of the process leaves.
    #[test]
    fn appends_are_visible_without_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = create(dir.path());
        w.append(b"hello").unwrap();
        w.append(b", world").unwrap();
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(&on_disk[..12], b"hello, world");
        // Dropping without a trim leaves the zero tail, as a crash would.
        drop(w);
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(on_disk.len() as u64, WINDOW);
        assert_eq!(&on_disk[..12], b"hello, world");
    }

    /// A writer that syncs every group switches to buffered writes and
    /// back to the map after unsynced flushes, and the bytes land in order
    /// through every switch, across window boundaries.
    #[test]
    fn synced_writers_switch_to_buffered_writes_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = create(dir.path());
        let mut expect = Vec::new();
        let mut seen_buffered = 0;
        let mut seen_mapped = 0;
        for phase in 0..12u32 {
            let synced = phase % 2 == 0;
            for i in 0..400u32 {
                let chunk: Vec<u8> = (0..(i * 31 + phase) % 1500)
                    .map(|b| (b ^ i ^ phase) as u8 | 1)
                    .collect();
                w.append(&chunk).unwrap();
                expect.extend_from_slice(&chunk);
                if synced {
                    w.sync_data().unwrap();
                } else {
                    w.flush().unwrap();
                }
                if w.buffered {
                    seen_buffered += 1;
                    assert!(w.window.is_none(), "no page stays mapped while buffered");
                } else {
                    seen_mapped += 1;
                }
            }
            if synced {
                assert!(w.buffered, "a synced writer writes with pwrite");
            } else {
                assert!(!w.buffered, "an unsynced writer writes to the map");
            }
        }
        assert!(seen_buffered > 2000 && seen_mapped > 2000);
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(&on_disk[..expect.len()], &expect[..]);
        w.trim().unwrap();
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(on_disk, expect);
    }

    /// `preallocate` reserves whole windows ahead without moving the data.
    #[test]
    fn preallocate_grows_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = create(dir.path());
        w.append(b"abc").unwrap();
        w.preallocate(3 * WINDOW + 1).unwrap();
        let meta = std::fs::metadata(dir.path().join("000001.log")).unwrap();
        assert_eq!(meta.len(), 4 * WINDOW);
        assert_eq!(w.len(), 3);
        w.append(b"def").unwrap();
        let on_disk = std::fs::read(dir.path().join("000001.log")).unwrap();
        assert_eq!(&on_disk[..7], b"abcdef\0");
    }
}

/// The writer over `FaultFs`'s simulated file: what a power cut leaves at
/// each point of its state machine.
#[cfg(test)]
mod fault_tests {
    use std::path::Path;

    use super::super::FileSystem;
    use super::*;
    use crate::testing::fault::FaultMap;
    use crate::testing::{CrashMode, FaultFs, PAGE_SIZE};

    const PATH: &str = "/d/000001.log";

    /// A mapped writer on a new file whose directory entry is durable.
    fn create(fs: &FaultFs) -> MappedWritable<FaultMap> {
        fs.create_dir_all(Path::new("/d")).unwrap();
        let w = fs
            .create_mapped_writable(Path::new(PATH))
            .unwrap()
            .expect("FaultFs reserves blocks");
        fs.sync_dir(Path::new("/d")).unwrap();
        w
    }

    fn read(fs: &FaultFs) -> Vec<u8> {
        fs.read_file(Path::new(PATH)).unwrap().to_vec()
    }

    /// Every crash mode.
    fn modes() -> impl Iterator<Item = CrashMode> {
        (0..8u8).map(|m| CrashMode {
            keep_unsynced_prefix: m & 1 != 0,
            tear_last_page: m & 2 != 0,
            keep_unsynced_dir_ops: m & 4 != 0,
        })
    }

    /// `n` bytes, none of them zero (so a kept prefix ends where the zero
    /// tail starts), different for each `tag`.
    fn bytes(n: usize, tag: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) ^ tag) as u8 | 1)
            .collect()
    }

    /// Appends `data` in pieces of varied sizes (one flush every few).
    fn append_in_pieces(w: &mut MappedWritable<FaultMap>, data: &[u8]) {
        let mut rest = data;
        let mut i = 0usize;
        while !rest.is_empty() {
            // Every fourth piece large enough for a direct `pwrite`.
            let max = if i % 4 == 3 { 40_000 } else { 9000 };
            let n = ((i * 7919) % max + 1).min(rest.len());
            let (now, later) = rest.split_at(n);
            w.append(now).unwrap();
            if i % 5 == 4 {
                w.flush().unwrap();
            }
            rest = later;
            i += 1;
        }
        w.flush().unwrap();
    }

    /// Checks a file after a crash: `synced` intact; then a prefix of
    /// `unsynced`, whose last 4 KiB page (from the sync point on) may be
    /// garbled if `mode` tears; then zeros. Returns the kept length.
    fn check_crashed(got: &[u8], synced: &[u8], unsynced: &[u8], mode: CrashMode) -> usize {
        assert!(got.len() >= synced.len(), "synced bytes lost: {mode:?}");
        assert!(
            got[..synced.len()] == *synced,
            "synced bytes damaged: {mode:?}"
        );
        let after = &got[synced.len()..];
        let kept = after.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        assert!(kept <= unsynced.len(), "more than was written: {mode:?}");
        if !mode.keep_unsynced_prefix {
            assert_eq!(kept, 0, "unsynced bytes kept: {mode:?}");
        }
        let exact = if mode.tear_last_page && kept > 0 {
            let last_page = (synced.len() + kept - 1) / PAGE_SIZE * PAGE_SIZE;
            last_page.max(synced.len()) - synced.len()
        } else {
            kept
        };
        assert!(
            after[..exact] == unsynced[..exact],
            "the kept unsynced bytes are not a prefix of those written: {mode:?}"
        );
        kept
    }

    /// Unsynced appends inside the window of the last sync, and across one
    /// and two window boundaries: a crash keeps the synced bytes and a
    /// prefix of the rest (possibly torn in its last page), then zeros;
    /// the file's size is that of the last sync unless the size changes
    /// since (the next windows' blocks) reached the journal.
    #[test]
    fn crash_with_unsynced_appends_inside_a_window_and_across_boundaries() {
        let synced = bytes(700_000, 1);
        for (case, unsynced_len) in [
            ("inside the window", 200_000),
            ("across one boundary", 600_000),
            ("across two boundaries", WINDOW as usize + 600_000),
        ] {
            let unsynced = bytes(unsynced_len, 2);
            for (seed, mode) in modes().enumerate() {
                let what = format!("{case}, {mode:?}");
                let fs = FaultFs::new();
                let mut w = create(&fs);
                append_in_pieces(&mut w, &synced);
                w.sync_data().unwrap();
                assert!(!w.buffered, "{what}: a writer that flushes stays mapped");
                append_in_pieces(&mut w, &unsynced);
                assert!(!w.buffered, "{what}");
                let end = synced.len() + unsynced.len();
                // Windows finished since the start were handed over.
                assert_eq!(w.writeback_from, end as u64 / WINDOW * WINDOW, "{what}");
                assert_eq!(fs.stats().writeback_requests, end as u64 / WINDOW, "{what}");
                // Stores are in the file at once (a process crash keeps
                // them), unsynced.
                let live = read(&fs);
                assert_eq!(live.len() as u64, w.allocated, "{what}");
                assert!(live[..synced.len()] == *synced, "{what}");
                assert!(live[synced.len()..end] == *unsynced, "{what}");
                assert!(live[end..].iter().all(|&b| b == 0), "{what}");
                assert_eq!(fs.synced_len(Path::new(PATH)), Some(synced.len() as u64));

                fs.crash(seed as u64, mode);
                let got = read(&fs);
                let kept = check_crashed(&got, &synced, &unsynced, mode);
                // The size: 1 MiB at the sync; more only from size changes
                // kept (all of them with eager metadata).
                let size = got.len() as u64;
                if mode.keep_unsynced_dir_ops {
                    assert_eq!(size, w.allocated, "{what}");
                } else if !mode.keep_unsynced_prefix {
                    assert_eq!(size, WINDOW, "{what}");
                } else {
                    assert!(size >= WINDOW.max((synced.len() + kept) as u64), "{what}");
                    assert!(size <= w.allocated, "{what}");
                }
                // The writer is dead after the crash, and fails cleanly.
                assert!(w.append(b"x").is_err(), "{what}");
                assert!(w.sync_data().is_err(), "{what}");
            }
        }
    }

    /// A writer that syncs every write goes to buffered `pwrite`s and back
    /// to the map after unsynced flushes. After each step of such a
    /// history the writer is in the mode the rule gives (module docs), the
    /// file holds what was flushed (a process crash keeps it) and, while
    /// mapped, every byte appended; and a power cut there keeps the synced
    /// bytes and a prefix of what the file held.
    #[test]
    fn crash_around_the_switches_between_pwrite_and_the_map() {
        #[derive(Clone, Copy, Debug)]
        enum Step {
            Append(usize),
            Flush,
            Sync,
        }
        use Step::*;
        // Synced writes (to pwrite at the first sync), unsynced ones (back
        // to the map), two appends while mapped, a sync that keeps the map
        // and one that leaves it, and appends left in the buffer.
        let mut script = vec![Append(27), Sync];
        for i in 0..3 {
            script.extend([Append(100 + i), Sync]);
        }
        for i in 0..MAP_AFTER_FLUSHES as usize + 2 {
            script.extend([Append(300 + i * 13), Flush]);
        }
        script.extend([Append(5000), Append(70), Sync, Sync, Append(900), Flush]);
        script.extend([Append(40), Append(PAGE_SIZE + 3)]);
        let total = script
            .iter()
            .map(|s| if let Append(n) = s { *n } else { 0 })
            .sum();
        let data = bytes(total, 3);
        let (mut saw_buffered, mut saw_mapped) = (false, false);
        for cut in 0..=script.len() {
            for mode in [
                CrashMode::DROP_UNSYNCED,
                CrashMode {
                    keep_unsynced_prefix: true,
                    tear_last_page: true,
                    keep_unsynced_dir_ops: false,
                },
            ] {
                let what = format!("power cut after step {cut}, {mode:?}");
                let fs = FaultFs::new();
                let mut w = create(&fs);
                let (mut appended, mut flushed, mut synced) = (0, 0, 0);
                // The rule: a sync with no flush since the last one goes to
                // pwrite; MAP_AFTER_FLUSHES flushes in a row go back.
                let (mut buffered, mut flushes) = (false, 0);
                for (i, step) in script[..cut].iter().enumerate() {
                    match *step {
                        Append(n) => {
                            w.append(&data[appended..appended + n]).unwrap();
                            appended += n;
                        }
                        Flush => {
                            w.flush().unwrap();
                            flushed = appended;
                            flushes += 1;
                            if buffered && flushes >= MAP_AFTER_FLUSHES {
                                buffered = false;
                            }
                        }
                        Sync => {
                            w.sync_data().unwrap();
                            (flushed, synced) = (appended, appended);
                            if !buffered && flushes == 0 {
                                buffered = true;
                            }
                            flushes = 0;
                        }
                    }
                    let what = format!("{what}, step {i} ({step:?})");
                    assert_eq!(w.buffered, buffered, "{what}");
                    let live = read(&fs);
                    let visible = live.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    if w.buffered {
                        saw_buffered = true;
                        assert!(w.window.is_none(), "{what}: a window stays mapped");
                        assert_eq!(visible, flushed, "{what}");
                    } else {
                        saw_mapped = true;
                        assert_eq!(visible, appended, "{what}: a store is not in the file");
                    }
                    assert!(live[..visible] == data[..visible], "{what}");
                    assert_eq!(fs.synced_len(Path::new(PATH)), Some(synced as u64));
                }
                let live = read(&fs);
                let written = live.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                fs.crash(cut as u64, mode);
                check_crashed(&read(&fs), &data[..synced], &data[synced..written], mode);
            }
        }
        assert!(saw_buffered && saw_mapped);
    }
}
