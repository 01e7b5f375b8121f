//! Starting kernel writeback of finished WAL ranges on a helper thread.
//!
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)` asks the kernel to start
//! writing a range back without waiting for it. The call is a hint, never
//! a durability point, but it is not free: the kernel builds and submits
//! the I/O in the caller's context (about half a millisecond per MiB of a
//! preallocated ext4 file here). On the writer's thread that cost merely
//! replaced the `fdatasync` it was meant to shorten, so one process-wide
//! helper thread makes the calls instead, on the other core.
//!
//! Invariants:
//! - A request holds its own reference to the file, so the descriptor
//!   stays open until the call is made, whatever the writer does.
//! - Nothing waits for a request: when the queue is full, or the helper
//!   cannot be started, a request is dropped (the next `fdatasync` then
//!   writes the range back itself). Errors are dropped too: writeback
//!   errors are kept by the kernel for the file and reported by that
//!   `fdatasync`, which this call does not consume.

use std::fs::File;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, OnceLock};

/// Ranges waiting for the helper; beyond this, requests are dropped.
const QUEUE: usize = 256;

struct Request {
    file: Arc<File>,
    offset: u64,
    len: u64,
}

/// The helper's queue; `None` when the helper could not be started.
fn queue() -> Option<&'static SyncSender<Request>> {
    static QUEUE_TX: OnceLock<Option<SyncSender<Request>>> = OnceLock::new();
    QUEUE_TX
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Request>(QUEUE);
            std::thread::Builder::new()
                .name("lightning-writeback".into())
                .spawn(move || {
                    let mut supported = true;
                    for r in rx {
                        if supported {
                            supported = start_writeback(&r.file, r.offset, r.len);
                        }
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Asks the helper thread to start writeback of `len` bytes of `file` at
/// `offset`. Returns at once; see the module docs for what may be dropped.
pub(super) fn request(file: &Arc<File>, offset: u64, len: u64) {
    if !cfg!(target_os = "linux") || len == 0 {
        return;
    }
    let Some(q) = queue() else { return };
    let r = Request {
        file: Arc::clone(file),
        offset,
        len,
    };
    // When the queue is full (or the helper is gone) the hint is dropped.
    let _ = q.try_send(r);
}

/// One `sync_file_range(SYNC_FILE_RANGE_WRITE)`; false when the kernel
/// does not support it here (stop asking).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return true;
    };
    loop {
        // SAFETY: a plain system call on a descriptor the request keeps open.
        let r = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if r == 0 {
            return true;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::ESPIPE) => return false,
            _ => {
                tracing::debug!(error = %e, "sync_file_range failed; the next fdatasync reports write errors");
                return true;
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) -> bool {
    false
}
