//! LMDB as a peer engine (`db_bench --engine=lmdb`, cargo feature
//! `peer-lmdb`): the same benchmark code as for Lightning DB, through heed
//! 0.22's public API (heed: the maintained Rust binding of LMDB, used by
//! Meilisearch; it builds LMDB's own C source), one `Env` in the database
//! directory (`data.mdb`, `lock.mdb`) and its unnamed database typed
//! `Database<Bytes, Bytes>`. LMDB is a copy-on-write B+tree in one memory
//! map: a read is a walk down the mapped pages with no cache, filter or
//! merge of its own, which makes it the anchor for read performance.
//!
//! # How the flags map to LMDB
//!
//! | flag | LMDB (heed 0.22) | note |
//! |---|---|---|
//! | every write | one write transaction (`Env::write_txn`, `Database::put` / `delete`, `RwTxn::commit`) per call | atomic. The env is opened with `EnvFlags::NO_SYNC`: the commit writes the dirty B+tree pages and the meta page with `pwrite` (no `WRITE_MAP`) into the OS page cache and returns without an fdatasync, so a process crash loses nothing, as RocksDB's unsynced WAL write. A power loss may lose the last commits; unlike RocksDB's WAL it may also leave the file inconsistent unless the file system keeps write order (LMDB's `MDB_NOSYNC` documentation) |
//! | `--sync`, `fillsync` | then `Env::force_sync()` (`mdb_env_sync(env, 1)`: one fdatasync of `data.mdb`) | the commit is durable when the call returns. LMDB's own synced commit (no `NO_SYNC`) makes two syncs per commit (data pages, then the meta page through an `O_DSYNC` descriptor); ours makes one, after both are written. No group commit: writers queue on LMDB's single writer lock, but the sync runs after the lock is released, so one writer's fdatasync also covers commits other threads made before it |
//! | `--num`, `--key_size`, `--value_size` | the map size: 64 GiB, or 8 x `--num` x (key + value) bytes if larger | the map is address space only: without `WRITE_MAP` `data.mdb` grows by the pages written |
//! | `--threads`, `--scanners` | `EnvOpenOptions::max_readers`: LMDB's 126, or threads + scanners + 2 if more | reader slots, one per thread (see below) |
//! | `--compression_type=none` | the only type accepted | LMDB stores values as given |
//! | `--bloom_bits` (default 10), `--write_buffer_size`, `--cache_size`, `--compaction_style`, `--max_background_jobs`, `--subcompactions` | ignored, with one warning (once per process) listing the ones given | a B+tree has no filters, memtable, block cache (the page cache is its cache), compaction or background threads. `--bloom_bits=0` is what LMDB does, so it is not warned about |
//! | `--enable_blob_files=1` | ignored, in the same warning | LMDB keeps a value larger than a page on its own overflow pages, outside the B+tree's leaves, always: its own key-value separation. The other blob flags do nothing without it, as in RocksDB |
//! | `--compression_level`, `--cache_policy`, `--stats_level` | ignored | Lightning DB's options (zstd level, cache policy, statistics), as for fjall |
//! | `--config` | refused | a Lightning DB options file |
//!
//! Read transactions use LMDB's thread-local reader slots (heed's default
//! `WithTls`; not `read_txn_without_tls`, i.e. not `MDB_NOTLS`): a thread
//! claims a slot in the reader table under its mutex once, and every later
//! read transaction of that thread reuses it without a lock. With
//! `MDB_NOTLS` every `mdb_txn_begin` claims a slot under the reader-table
//! mutex and every abort frees it, which costs short transactions on many
//! threads. The price of TLS, one read transaction per thread at a time
//! (`MDB_BAD_RSLOT` otherwise), never applies: every call below opens and
//! drops its own.
//!
//! Operations: `get` opens a read transaction (`Env::read_txn`), calls
//! `Database::get` and drops it (an abort, which is how LMDB ends a read
//! transaction); `readseq`/`readreverse` iterate `Database::iter` /
//! `rev_iter` in one read transaction; `seekrandom` opens a read
//! transaction and `Database::range(key..)` per seek and takes
//! `1 + seek_nexts` entries. Keys compare as LMDB's default, `memcmp` then
//! length: the same order as ours. `flush`, `compact` and
//! `waitforcompaction` do nothing: a commit already writes the B+tree
//! pages in place of a memtable flush, and there is no compaction (freed
//! pages are reused from LMDB's free list; the file never shrinks).
//! `stats` prints `Env::info` and `Env::stat`; the table bytes are the
//! length of `data.mdb`. `close` runs `Env::force_sync` (as fjall's close
//! persists its journal) and closes the env. `txnbank` is not supported
//! (the trait's default error).

use std::path::Path;
use std::sync::Once;

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions};

use crate::engine::{Engine, Result};
use crate::Flags;

/// The smallest map size: address space, not disk.
const MIN_MAP_SIZE: u64 = 64 << 30;

/// LMDB's default number of reader slots.
const LMDB_MAX_READERS: u32 = 126;

/// An LMDB environment with the database the benchmarks use.
pub struct Lmdb {
    env: Env,
    db: Database<Bytes, Bytes>,
    settings: String,
}

/// The map size for `flags`: 64 GiB, or 8 x the user bytes of `--num`
/// entries if larger (a B+tree after random inserts is about 2-3x the user
/// bytes; the free list needs more while long read transactions pin pages),
/// rounded up to a GiB (a multiple of the page size, as LMDB needs).
fn map_size(flags: &Flags) -> Result<usize> {
    let entry = (flags.key_size + flags.value_size) as u64;
    let want = flags.num.saturating_mul(entry).saturating_mul(8);
    let size = want
        .max(MIN_MAP_SIZE)
        .div_ceil(1 << 30)
        .saturating_mul(1 << 30);
    usize::try_from(size).map_err(|_| format!("--engine=lmdb: map size {size} too large").into())
}

impl Engine for Lmdb {
    fn open(path: &Path, flags: &Flags) -> Result<Self> {
        if flags.compression_type != "none" {
            return Err(format!(
                "--engine=lmdb: --compression_type={} is not supported (none only)",
                flags.compression_type
            )
            .into());
        }
        if flags.config.is_some() {
            return Err("--engine=lmdb: --config is a Lightning DB options file".into());
        }
        let mut ignored = Vec::new();
        if flags.bloom_bits != 0 {
            ignored.push(format!("--bloom_bits={}", flags.bloom_bits));
        }
        if let Some(b) = flags.write_buffer_size {
            ignored.push(format!("--write_buffer_size={b}"));
        }
        if let Some(b) = flags.cache_size {
            ignored.push(format!("--cache_size={b}"));
        }
        if let Some(s) = flags.compaction_style {
            ignored.push(format!("--compaction_style={s}"));
        }
        if let Some(j) = flags.max_background_jobs {
            ignored.push(format!("--max_background_jobs={j}"));
        }
        if let Some(s) = flags.subcompactions {
            ignored.push(format!("--subcompactions={s}"));
        }
        if flags.enable_blob_files {
            ignored.push("--enable_blob_files=1".to_string());
        }
        // Once per process: db_bench opens the engine again for every
        // fresh-database benchmark.
        static WARNED: Once = Once::new();
        if !ignored.is_empty() {
            WARNED.call_once(|| {
                eprintln!(
                    "db_bench: warning: {} ignored: LMDB has no bloom filter, memtable, block cache, compaction, background threads or blob files (large values go to overflow pages)",
                    ignored.join(" ")
                );
            });
        }

        std::fs::create_dir_all(path)?;
        let map_size = map_size(flags)?;
        let readers = u32::try_from(flags.threads + flags.scanners + 2)
            .unwrap_or(u32::MAX)
            .max(LMDB_MAX_READERS);
        let mut options = EnvOpenOptions::new();
        options.map_size(map_size).max_readers(readers);
        // SAFETY (heed's conditions for both calls): `NO_SYNC` only risks
        // what the module doc says (the last commits, or the file's
        // consistency, on a system crash; a benchmark accepts that). The
        // memory map is sound as long as nothing modifies `data.mdb` but
        // LMDB: the directory is the benchmark's own, on a local file
        // system, and heed refuses a second `Env` on one path in a process.
        let env = unsafe {
            options.flags(EnvFlags::NO_SYNC);
            options.open(path)?
        };
        let mut wtxn = env.write_txn()?;
        let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, None)?;
        wtxn.commit()?;

        let stat = env.stat();
        let settings = format!(
            "Options: map_size {} GiB, page size {}, max_readers {}, flags NO_SYNC (sync writes: commit + mdb_env_sync), thread-local reader slots, compression none, sync {}",
            map_size >> 30,
            stat.page_size,
            env.max_readers(),
            flags.sync
        );
        Ok(Lmdb { env, db, settings })
    }

    fn name(&self) -> String {
        // heed builds LMDB's mdb.master branch, which calls itself 0.9.70.
        let v = heed::lmdb_version();
        format!(
            "LMDB {}.{}.{} (mdb.master) via heed 0.22 (peer engine)",
            v.major, v.minor, v.patch
        )
    }

    fn options(&self) -> String {
        self.settings.clone()
    }

    fn put(&self, key: &[u8], value: &[u8], sync: bool) -> Result<()> {
        let mut wtxn = self.env.write_txn()?;
        self.db.put(&mut wtxn, key, value)?;
        wtxn.commit()?;
        if sync {
            self.env.force_sync()?;
        }
        Ok(())
    }

    fn delete(&self, key: &[u8], sync: bool) -> Result<()> {
        let mut wtxn = self.env.write_txn()?;
        self.db.delete(&mut wtxn, key)?;
        wtxn.commit()?;
        if sync {
            self.env.force_sync()?;
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        let rtxn = self.env.read_txn()?;
        Ok(self.db.get(&rtxn, key)?.map(<[u8]>::len))
    }

    fn scan(&self, reverse: bool, limit: u64, mut visit: impl FnMut(&[u8], &[u8])) -> Result<()> {
        let rtxn = self.env.read_txn()?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if reverse {
            for item in self.db.rev_iter(&rtxn)?.take(limit) {
                let (k, v) = item?;
                visit(k, v);
            }
        } else {
            for item in self.db.iter(&rtxn)?.take(limit) {
                let (k, v) = item?;
                visit(k, v);
            }
        }
        Ok(())
    }

    fn seek(
        &self,
        key: &[u8],
        end: Option<&[u8]>,
        nexts: u64,
        mut visit: impl FnMut(&[u8], &[u8]),
    ) -> Result<()> {
        use std::ops::Bound;
        let rtxn = self.env.read_txn()?;
        let n = usize::try_from(nexts)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let range: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(key),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        for item in self.db.range(&rtxn, &range)?.take(n) {
            let (k, v) = item?;
            visit(k, v);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        // No memtable: every commit already wrote its B+tree pages.
        Ok(())
    }

    fn compact(&self) -> Result<()> {
        // No compaction: freed pages are reused from the free list.
        Ok(())
    }

    fn wait_for_compactions(&self) -> Result<()> {
        // No background work.
        Ok(())
    }

    fn stats(&self) -> String {
        let info = self.env.info();
        let stat = self.env.stat();
        let psize = u64::from(stat.page_size);
        format!(
            "lmdb: {} entries, B+tree depth {}, {} branch + {} leaf + {} overflow pages of {} bytes ({:.2} MiB), \
             last page {} ({:.2} MiB used of data.mdb {:.2} MiB), last txn {}, readers {} of {}, map {:.0} GiB",
            stat.entries,
            stat.depth,
            stat.branch_pages,
            stat.leaf_pages,
            stat.overflow_pages,
            psize,
            (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as f64 * psize as f64
                / 1048576.0,
            info.last_page_number,
            (info.last_page_number as u64 + 1) as f64 * psize as f64 / 1048576.0,
            self.sst_bytes() as f64 / 1048576.0,
            info.last_txn_id,
            info.number_of_readers,
            info.maximum_number_of_readers,
            info.map_size as f64 / (1u64 << 30) as f64
        )
    }

    fn sst_bytes(&self) -> u64 {
        self.env.real_disk_size().unwrap_or(0)
    }

    fn close(self) -> Result<()> {
        self.env.force_sync()?;
        // The last `Env` handle closes the environment (`mdb_env_close`);
        // the event is signalled once it has, so the next open of the same
        // path (a fresh benchmark) finds it closed.
        let Lmdb { env, .. } = self;
        env.prepare_for_closing().wait();
        Ok(())
    }
}
