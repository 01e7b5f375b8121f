//! A disk that fills up under the WAL, with the WAL written through a
//! memory map (`wal_mmap`, the default) and with plain appends.
//!
//! The full disk is simulated with `RLIMIT_FSIZE` (with `SIGXFSZ`
//! ignored): a write, `ftruncate` or `fallocate` past the limit fails with
//! `EFBIG`, as one past a full disk fails with `ENOSPC`. The limit is
//! process-wide, so this file holds one test and runs the two modes one
//! after the other.
//!
//! What must hold: the failing write returns an error (a store into an
//! unreserved part of the map would have killed the process with
//! `SIGBUS`), later writes are refused (fail-stop), reads go on, and after
//! the space comes back a reopen finds every acknowledged write.

use lightning_db::{Db, Error, Options};

fn key(i: u32) -> String {
    format!("key-{i:08}")
}

fn value(i: u32) -> Vec<u8> {
    format!("value-{i:08}-").repeat(16).into_bytes()
}

fn set_file_size_limit(limit: libc::rlim_t) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut r), 0);
        r.rlim_cur = limit.min(r.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
    }
}

fn is_file_too_large(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => source.raw_os_error() == Some(libc::EFBIG),
        Error::Background(inner) => is_file_too_large(inner),
        _ => false,
    }
}

#[test]
fn a_full_disk_fails_the_write_and_loses_nothing_acknowledged() {
    // SAFETY: ignoring a signal; writes past the limit then fail with
    // EFBIG instead of killing the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    for wal_mmap in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let opts = || {
            Options::default()
                // One memtable for the whole test: the WAL is what grows.
                .write_buffer_size(256 << 20)
                .wal_mmap(wal_mmap)
        };
        let db = Db::open(dir.path(), opts()).unwrap();
        set_file_size_limit(20 << 20);
        let mut acked = 0u32;
        let err = loop {
            assert!(
                acked < 1_000_000,
                "the limit never bit (wal_mmap {wal_mmap})"
            );
            match db.put(key(acked), value(acked)) {
                Ok(()) => acked += 1,
                Err(e) => break e,
            }
        };
        assert!(
            is_file_too_large(&err),
            "wal_mmap {wal_mmap}: the error names the failed reservation: {err}"
        );
        assert!(
            acked > 10_000,
            "wal_mmap {wal_mmap}: {acked} writes before the limit"
        );
        let again = db.put("after", "the error").unwrap_err();
        assert!(
            matches!(again, Error::Background(_)),
            "wal_mmap {wal_mmap}: fail-stop after the error: {again}"
        );
        for i in [0, acked / 2, acked - 1] {
            assert_eq!(
                db.get(key(i)).unwrap().as_deref(),
                Some(value(i).as_slice()),
                "wal_mmap {wal_mmap}: reads go on (key {i})"
            );
        }
        drop(db);

        set_file_size_limit(libc::RLIM_INFINITY);
        let db = Db::open(dir.path(), opts()).unwrap();
        for i in 0..acked {
            assert_eq!(
                db.get(key(i)).unwrap().as_deref(),
                Some(value(i).as_slice()),
                "wal_mmap {wal_mmap}: acknowledged key {i} of {acked} after reopen"
            );
        }
        assert_eq!(db.get("after").unwrap(), None);
        db.close().unwrap();
    }
}
