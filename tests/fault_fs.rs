//! The test file systems themselves: `MemFs` basics and the durability and
//! fault model of `FaultFs` (synced vs unsynced data, directory entries
//! durable only after `sync_dir`, power off, crash modes, fault rules), and
//! the WAL's mapped writer over it: a power cut after its blocks are
//! reserved, between its trim and the trim's sync, and ENOSPC from
//! `fallocate`. (The crash tests of its windows and of its switches
//! between the map and `pwrite` are unit tests in `src/fs/mapped.rs`.)

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;

use lightning_db::fs::FileSystem;
use lightning_db::testing::{CrashMode, FaultFs, FaultRule, MemFs, OpKind};
use lightning_db::{Db, Error, Options};

fn write(fs: &dyn FileSystem, path: &str, data: &[u8], sync: bool) {
    let mut f = fs.create(Path::new(path)).unwrap();
    f.append(data).unwrap();
    if sync {
        f.sync_data().unwrap();
    }
}

fn read(fs: &dyn FileSystem, path: &str) -> Option<Vec<u8>> {
    fs.read_file(Path::new(path)).ok().map(|b| b.to_vec())
}

#[test]
fn memfs_files_dirs_and_locks() {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new("/a/b")).unwrap();
    assert!(fs.exists(Path::new("/a")).unwrap());
    write(&fs, "/a/b/x", b"hello", false);
    assert_eq!(read(&fs, "/a/b/x").unwrap(), b"hello");
    assert_eq!(fs.file_size(Path::new("/a/b/x")).unwrap(), 5);
    fs.rename(Path::new("/a/b/x"), Path::new("/a/b/y")).unwrap();
    assert!(!fs.exists(Path::new("/a/b/x")).unwrap());
    let mut names = fs.list_dir(Path::new("/a/b")).unwrap();
    names.sort();
    assert_eq!(names, ["y"]);
    assert_eq!(fs.list_dir(Path::new("/a")).unwrap(), ["b"]);
    fs.remove_file(Path::new("/a/b/y")).unwrap();
    assert!(fs.remove_file(Path::new("/a/b/y")).is_err());
    assert!(fs.create(Path::new("/nope/x")).is_err());

    let l = fs.lock(Path::new("/a/LOCK")).unwrap();
    let clone = fs.clone();
    assert!(matches!(
        clone.lock(Path::new("/a/LOCK")),
        Err(Error::Locked(_))
    ));
    drop(l);
    clone.lock(Path::new("/a/LOCK")).unwrap();
}

#[test]
fn memfs_database_round_trip() {
    let fs = Arc::new(MemFs::new());
    let opts = || {
        Options::default()
            .fs(fs.clone())
            .write_buffer_size(64 * 1024)
    };
    {
        let db = Db::open("/db", opts()).unwrap();
        for i in 0..5000u32 {
            db.put(format!("k{i:05}"), vec![b'v'; 50]).unwrap();
        }
        assert!(matches!(Db::open("/db", opts()), Err(Error::Locked(_))));
        db.flush().unwrap();
        db.put("last", "x").unwrap();
        db.close().unwrap();
    }
    let db = Db::open("/db", opts()).unwrap();
    assert_eq!(db.iter().count(), 5001);
    assert_eq!(db.get("last").unwrap().unwrap(), "x");
}

#[test]
fn unsynced_data_is_lost_synced_data_kept() {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let mut f = fs.create(Path::new("/d/f")).unwrap();
    f.append(b"durable").unwrap();
    f.sync_data().unwrap();
    f.append(b" and not").unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    assert_eq!(read(&fs, "/d/f").unwrap(), b"durable and not");
    assert_eq!(fs.synced_len(Path::new("/d/f")), Some(7));
    fs.crash(1, CrashMode::DROP_UNSYNCED);
    assert_eq!(read(&fs, "/d/f").unwrap(), b"durable");
    // The handle from before the crash is dead.
    assert!(f.append(b"x").is_err());
    assert_eq!(read(&fs, "/d/f").unwrap(), b"durable");
}

#[test]
fn directory_entries_need_sync_dir() {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    write(&fs, "/d/old", b"1", true);
    fs.sync_dir(Path::new("/d")).unwrap();
    // Created and synced, directory not synced: gone after a crash.
    write(&fs, "/d/new", b"2", true);
    // Renamed without sync_dir: undone. Removed without sync_dir: back.
    fs.rename(Path::new("/d/old"), Path::new("/d/renamed"))
        .unwrap();
    assert!(!fs.is_entry_durable(Path::new("/d/renamed")));
    fs.crash(2, CrashMode::DROP_UNSYNCED);
    assert_eq!(read(&fs, "/d/new"), None);
    assert_eq!(read(&fs, "/d/renamed"), None);
    assert_eq!(read(&fs, "/d/old").unwrap(), b"1");
    fs.remove_file(Path::new("/d/old")).unwrap();
    fs.crash(3, CrashMode::DROP_UNSYNCED);
    assert_eq!(read(&fs, "/d/old").unwrap(), b"1");
    // After sync_dir everything sticks.
    write(&fs, "/d/new", b"2", true);
    fs.rename(Path::new("/d/old"), Path::new("/d/renamed"))
        .unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    assert!(fs.is_entry_durable(Path::new("/d/renamed")));
    fs.crash(4, CrashMode::DROP_UNSYNCED);
    assert_eq!(read(&fs, "/d/new").unwrap(), b"2");
    assert_eq!(read(&fs, "/d/renamed").unwrap(), b"1");
    assert_eq!(read(&fs, "/d/old"), None);
    // keep_unsynced_dir_ops keeps the live namespace.
    write(&fs, "/d/eager", b"abc", false);
    fs.crash(
        5,
        CrashMode {
            keep_unsynced_dir_ops: true,
            ..CrashMode::DROP_UNSYNCED
        },
    );
    assert_eq!(read(&fs, "/d/eager").unwrap(), b"");
}

#[test]
fn crash_modes_keep_prefixes_and_tear_only_unsynced_pages() {
    let synced: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let tail: Vec<u8> = (0..9_000u32).map(|i| (i * 7) as u8).collect();
    let (mut kept_some, mut torn) = (false, false);
    for seed in 0..200 {
        let fs = FaultFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let mut f = fs.create(Path::new("/d/f")).unwrap();
        f.append(&synced).unwrap();
        f.sync_data().unwrap();
        f.append(&tail).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        let mode = CrashMode {
            keep_unsynced_prefix: true,
            tear_last_page: seed % 2 == 0,
            keep_unsynced_dir_ops: false,
        };
        fs.crash(seed, mode);
        let got = read(&fs, "/d/f").unwrap();
        assert!(got.len() >= synced.len() && got.len() <= synced.len() + tail.len());
        assert_eq!(&got[..synced.len()], &synced[..], "seed {seed}");
        let extra = &got[synced.len()..];
        kept_some |= !extra.is_empty();
        if extra != &tail[..extra.len()] {
            assert!(mode.tear_last_page, "seed {seed}");
            // Only the last page (from the sync point on) differs.
            let page_start = (got.len() - 1) / 4096 * 4096;
            let from = page_start.max(synced.len()) - synced.len();
            assert_eq!(&extra[..from], &tail[..from], "seed {seed}");
            torn = true;
        }
        // The same seed replays.
        let fs2 = FaultFs::new();
        fs2.create_dir_all(Path::new("/d")).unwrap();
        let mut f2 = fs2.create(Path::new("/d/f")).unwrap();
        f2.append(&synced).unwrap();
        f2.sync_data().unwrap();
        f2.append(&tail).unwrap();
        fs2.sync_dir(Path::new("/d")).unwrap();
        fs2.crash(seed, mode);
        assert_eq!(read(&fs2, "/d/f").unwrap(), got);
    }
    assert!(kept_some && torn);
}

#[test]
fn fault_rules_fail_the_chosen_call_and_the_fs_keeps_working() {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.fail_after(OpKind::Append, 2, ErrorKind::StorageFull);
    let mut f = fs.create(Path::new("/d/f")).unwrap();
    f.append(b"a").unwrap();
    f.append(b"b").unwrap();
    let e = f.append(b"c").unwrap_err();
    match e {
        Error::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::StorageFull),
        other => panic!("{other}"),
    }
    f.append(b"d").unwrap();
    assert_eq!(read(&fs, "/d/f").unwrap(), b"abd");
    let st = fs.stats();
    assert_eq!(st.ops(OpKind::Append), 4);
    assert_eq!(st.injected(OpKind::Append), 1);

    // Path filters and repeated failures.
    fs.inject(
        FaultRule::new(OpKind::Sync, 0, ErrorKind::Other)
            .on(".log")
            .times(2),
    );
    write(&fs, "/d/x.sst", b"1", true);
    let mut l = fs.create(Path::new("/d/1.log")).unwrap();
    assert!(l.sync_data().is_err());
    assert!(l.sync_data().is_err());
    l.sync_data().unwrap();

    // A failed rename changes nothing; a failed read is reported.
    fs.fail_after(OpKind::Rename, 0, ErrorKind::Other);
    assert!(fs.rename(Path::new("/d/f"), Path::new("/d/g")).is_err());
    assert!(fs.exists(Path::new("/d/f")).unwrap());
    fs.fail_after(OpKind::Read, 0, ErrorKind::Interrupted);
    assert!(fs.read_file(Path::new("/d/f")).is_err());
    assert!(fs.read_file(Path::new("/d/f")).is_ok());

    // Random mode is seeded.
    let run = |seed| {
        let fs = FaultFs::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        fs.fail_randomly(seed, 0.3, &[OpKind::Append], ErrorKind::Other);
        let mut f = fs.create(Path::new("/d/f")).unwrap();
        (0..100).map(|_| f.append(b"x").is_ok()).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    let fails = run(7).iter().filter(|ok| !**ok).count();
    assert!((10..60).contains(&fails), "{fails}");
}

#[test]
fn power_off_freezes_everything_until_the_crash() {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.power_off_after(2);
    let mut f = fs.create(Path::new("/d/f")).unwrap(); // 1
    f.append(b"a").unwrap(); // 2
    assert!(f.sync_data().is_err()); // power goes off
    assert!(!fs.is_powered());
    assert!(fs.sync_dir(Path::new("/d")).is_err());
    assert!(fs.create(Path::new("/d/g")).is_err());
    let _lock = fs.lock(Path::new("/d/LOCK")).unwrap_err();
    fs.crash(0, CrashMode::DROP_UNSYNCED);
    assert!(fs.is_powered());
    assert!(!fs.exists(Path::new("/d/f")).unwrap());
    fs.lock(Path::new("/d/LOCK")).unwrap();
    fs.crash(0, CrashMode::DROP_UNSYNCED);
    // The crash released the lock.
    fs.lock(Path::new("/d/LOCK")).unwrap();
}

/// Preallocated zero tails (a WAL's) and `trim`: appends overwrite the
/// zeros in place; the tail, the writes into it and a trim are durable only
/// after a sync, and a crash before keeps what was synced.
#[test]
fn preallocated_tails_and_trim_follow_the_sync() {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let p = Path::new("/d/w");
    let mut f = fs.create(p).unwrap();
    f.append(b"head").unwrap();
    f.preallocate(64).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    let mut want = b"head".to_vec();
    want.resize(64, 0);
    assert_eq!(&fs.read_file(p).unwrap()[..], &want[..]);
    // Written into the zero tail, unsynced: lost to a crash, zeros stay.
    f.append(b"more").unwrap();
    assert_eq!(&fs.read_file(p).unwrap()[..8], b"headmore");
    assert_eq!(fs.read_file(p).unwrap().len(), 64, "in place, not appended");
    drop(f);
    fs.crash(1, CrashMode::DROP_UNSYNCED);
    assert_eq!(&fs.read_file(p).unwrap()[..], &want[..]);
    // Synced writes into the tail survive; an unsynced trim does not.
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    let mut f = fs.create(p).unwrap();
    f.append(b"head").unwrap();
    f.preallocate(64).unwrap();
    f.append(b"more").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    f.trim().unwrap();
    assert_eq!(&fs.read_file(p).unwrap()[..], b"headmore");
    drop(f);
    fs.crash(2, CrashMode::DROP_UNSYNCED);
    let got = fs.read_file(p).unwrap();
    assert_eq!(got.len(), 64, "the trim was never synced");
    assert_eq!(&got[..8], b"headmore");
    // A crash keeping part of the unsynced writes keeps a prefix of them.
    let mut f = fs.create(p).unwrap();
    f.append(&[7u8; 100]).unwrap();
    f.preallocate(200).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    f.append(&[9u8; 50]).unwrap();
    drop(f);
    fs.crash(
        3,
        CrashMode {
            keep_unsynced_prefix: true,
            tear_last_page: false,
            keep_unsynced_dir_ops: false,
        },
    );
    let got = fs.read_file(p).unwrap();
    assert_eq!(got.len(), 200);
    assert!(got[..100].iter().all(|&b| b == 7));
    let nines = got[100..].iter().take_while(|&&b| b == 9).count();
    assert!(
        got[100 + nines..].iter().all(|&b| b == 0),
        "a prefix, then zeros"
    );
}

/// Every crash mode.
fn all_modes() -> impl Iterator<Item = CrashMode> {
    (0..8u8).map(|m| CrashMode {
        keep_unsynced_prefix: m & 1 != 0,
        tear_last_page: m & 2 != 0,
        keep_unsynced_dir_ops: m & 4 != 0,
    })
}

/// A new WAL-like file `/d/1.log` with a durable directory entry: through
/// the mapped writer or with plain appends.
fn create_log(fs: &FaultFs, mapped: bool) -> Box<dyn lightning_db::fs::WritableFile> {
    fs.create_dir_all(Path::new("/d")).unwrap();
    let f = if mapped {
        fs.create_mapped(Path::new("/d/1.log")).unwrap()
    } else {
        fs.create(Path::new("/d/1.log")).unwrap()
    };
    fs.sync_dir(Path::new("/d")).unwrap();
    f
}

const MIB: u64 = 1 << 20;

/// A WAL whose blocks were reserved (or whose sparse tail was set) and
/// nothing written yet, when the power fails: the size change is
/// metadata, durable at the file's next sync. Without it the crash keeps
/// the synced size (0) or, where the journal committed them, a prefix of
/// the size changes: the file comes back empty or as zeros, never
/// anything else. After a sync the size is kept in every mode.
#[test]
fn crash_after_preallocate_before_any_append() {
    let len = 5 * MIB + 100;
    for mapped in [true, false] {
        // The mapped writer reserves whole 1 MiB windows: its first at
        // creation, then up to the next window boundary.
        let sizes: &[u64] = if mapped {
            &[0, MIB, 6 * MIB]
        } else {
            &[0, len]
        };
        let live = *sizes.last().unwrap();
        for synced in [false, true] {
            for (seed, mode) in all_modes().enumerate() {
                let what = format!("mapped {mapped}, synced {synced}, {mode:?}");
                let fs = FaultFs::new();
                let mut f = create_log(&fs, mapped);
                f.preallocate(len).unwrap();
                assert_eq!(f.len(), 0, "{what}");
                assert_eq!(fs.file_size(Path::new("/d/1.log")).unwrap(), live, "{what}");
                if synced {
                    f.sync_data().unwrap();
                }
                fs.crash(seed as u64, mode);
                let got = read(&fs, "/d/1.log").unwrap();
                assert!(got.iter().all(|&b| b == 0), "{what}");
                let size = got.len() as u64;
                assert!(sizes.contains(&size), "{what}: size {size}");
                if synced || mode.keep_unsynced_dir_ops {
                    assert_eq!(size, live, "{what}");
                } else if !mode.keep_unsynced_prefix {
                    assert_eq!(size, 0, "{what}");
                }
            }
        }
    }
}

/// Checks a file after a crash: `synced` intact, then a prefix of
/// `unsynced` (its last 4 KiB page, from the sync point on, may be garbled
/// when `mode` tears), then only zeros. Returns the kept length.
fn check_after_crash(got: &[u8], synced: &[u8], unsynced: &[u8], mode: CrashMode) -> usize {
    assert!(got.len() >= synced.len() && got[..synced.len()] == *synced);
    let after = &got[synced.len()..];
    let kept = after.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    assert!(kept <= unsynced.len());
    assert!(mode.keep_unsynced_prefix || kept == 0);
    let exact = if mode.tear_last_page && kept > 0 {
        ((synced.len() + kept - 1) / 4096 * 4096).max(synced.len()) - synced.len()
    } else {
        kept
    };
    assert!(after[..exact] == unsynced[..exact]);
    kept
}

/// A WAL trimmed (its preallocated tail cut off at rotation or close) and
/// not yet synced when the power fails: the trim is undone (the tail of
/// the last sync comes back, zeros after the data) or kept over lost
/// data (zeros up to the trimmed length); the synced data is intact and
/// at most a prefix of the unsynced data survives. After the sync the
/// file is exactly its data in every mode.
#[test]
fn crash_between_trim_and_its_sync() {
    let synced: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8 | 1).collect();
    let unsynced: Vec<u8> = (0..5000u32).map(|i| (i % 241) as u8 | 0x80).collect();
    let total = (synced.len() + unsynced.len()) as u64;
    for mapped in [true, false] {
        for sync_after_trim in [false, true] {
            for (seed, mode) in all_modes().enumerate() {
                let what = format!("mapped {mapped}, sync after trim {sync_after_trim}, {mode:?}");
                let fs = FaultFs::new();
                let mut f = create_log(&fs, mapped);
                // As the log writer does: the tail first, then records.
                f.preallocate(8 * MIB).unwrap();
                f.append(&synced).unwrap();
                f.sync_data().unwrap();
                f.append(&unsynced).unwrap();
                f.flush().unwrap();
                f.trim().unwrap();
                assert_eq!(fs.file_size(Path::new("/d/1.log")).unwrap(), total);
                if sync_after_trim {
                    f.sync_data().unwrap();
                }
                fs.crash(seed as u64, mode);
                let got = read(&fs, "/d/1.log").unwrap();
                if sync_after_trim {
                    assert_eq!(got.len() as u64, total, "{what}");
                    assert!(got[..synced.len()] == synced[..], "{what}");
                    assert!(got[synced.len()..] == unsynced[..], "{what}");
                    continue;
                }
                let kept = check_after_crash(&got, &synced, &unsynced, mode);
                let size = got.len() as u64;
                let untrimmed = 8 * MIB;
                assert!(size == untrimmed || size == total, "{what}: size {size}");
                if mode.keep_unsynced_dir_ops {
                    assert_eq!(size, total, "{what}: the trim reached the journal");
                } else if !mode.keep_unsynced_prefix {
                    assert_eq!(size, untrimmed, "{what}: the trim is undone");
                    assert_eq!(kept, 0, "{what}");
                }
            }
        }
    }
}

/// ENOSPC from `fallocate` when the mapped writer reserves its next
/// window: the append that needed it fails with that error (no signal,
/// nothing stored past the reserved blocks), what was written before is
/// intact, and the file can still be synced. A failed `preallocate` is
/// the same error and leaves the size alone.
#[test]
fn fallocate_enospc_is_an_error_before_any_store_past_the_blocks() {
    let fs = FaultFs::new();
    // The creation's reservation succeeds, the next one fails.
    fs.inject(FaultRule::new(OpKind::Allocate, 1, ErrorKind::StorageFull).on(".log"));
    let mut f = create_log(&fs, true);
    let first: Vec<u8> = (0..MIB as u32 - 10).map(|i| (i % 253) as u8 | 1).collect();
    f.append(&first).unwrap();
    f.flush().unwrap();
    let e = f.append(&[7u8; 100]).unwrap_err();
    match &e {
        Error::Io { source, .. } => assert_eq!(source.kind(), ErrorKind::StorageFull, "{e}"),
        other => panic!("{other}"),
    }
    assert_eq!(fs.stats().injected(OpKind::Allocate), 1);
    // The first 10 bytes fitted in the reserved window; nothing past it.
    let got = read(&fs, "/d/1.log").unwrap();
    assert_eq!(got.len() as u64, MIB);
    assert!(got[..first.len()] == first[..]);
    assert_eq!(&got[first.len()..], &[7u8; 10]);
    f.sync_data().unwrap();
    fs.inject(FaultRule::new(OpKind::Allocate, 0, ErrorKind::StorageFull));
    let e = f.preallocate(8 * MIB).unwrap_err();
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == ErrorKind::StorageFull));
    assert_eq!(fs.file_size(Path::new("/d/1.log")).unwrap(), MIB);
    fs.crash(1, CrashMode::DROP_UNSYNCED);
    assert_eq!(read(&fs, "/d/1.log").unwrap(), got);
}

/// `Unsupported` from the first `fallocate` (a file system without it):
/// the mapped file falls back to plain appends, as on `PosixFs`.
#[test]
fn mapped_file_without_fallocate_falls_back_to_appends() {
    let fs = FaultFs::new();
    fs.inject(FaultRule::new(OpKind::Allocate, 0, ErrorKind::Unsupported));
    let mut f = create_log(&fs, true);
    f.append(b"abc").unwrap();
    f.flush().unwrap();
    assert_eq!(read(&fs, "/d/1.log").unwrap(), b"abc");
    let st = fs.stats();
    assert_eq!((st.ops(OpKind::Create), st.ops(OpKind::Flush)), (2, 1));
}
