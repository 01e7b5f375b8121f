//! [`ReadOptions`]: per-read settings (RocksDB's `ReadOptions`), and the
//! thread-local flags through which the block reads of one read see them.

use std::cell::Cell;
use std::ops::Bound;

use crate::snapshot::Snapshot;

/// How one read runs: [`crate::Db::get_opt`], [`crate::Db::range_opt`],
/// [`crate::Db::iter_opt`], [`crate::Db::prefix_opt`] and the same on
/// [`crate::Keyspace`]. The defaults are what the plain calls do.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let db = lightning_db::Db::open(dir.path(), lightning_db::Options::default())?;
/// use lightning_db::ReadOptions;
///
/// for k in ["a", "b", "c", "d"] {
///     db.put(k, "v")?;
/// }
/// let snap = db.snapshot();
/// db.delete("b")?;
/// // A scan of the snapshot that keeps its blocks out of the cache and
/// // stops before "d".
/// let ro = ReadOptions::new().snapshot(&snap).fill_cache(false).iterate_upper_bound("d");
/// let keys: Vec<_> = db.iter_opt(&ro).map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
/// assert_eq!(keys, ["a", "b", "c"]);
/// # Ok::<(), lightning_db::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadOptions<'a> {
    /// Put the blocks this read loads from compressed tables (or with
    /// `allow_mmap_reads` off) into the block cache (default `true`).
    /// Scans that read data once should say `false`, so they do not evict
    /// the working set.
    pub fill_cache: bool,
    /// Check the checksum of every block this read loads (default `true`).
    /// With `false`, blocks read straight from the file map skip the
    /// check (the hash is about a quarter of a point read's time); a
    /// damaged block may then return wrong data instead of
    /// `Error::Corruption`, though never a panic. Blocks read unverified
    /// are not cached, so other reads still verify them.
    pub verify_checksums: bool,
    /// Iterators start at this key (inclusive), whatever the range asked
    /// for says (RocksDB's `iterate_lower_bound`).
    pub iterate_lower_bound: Option<Vec<u8>>,
    /// Iterators stop before this key (exclusive; RocksDB's
    /// `iterate_upper_bound`).
    pub iterate_upper_bound: Option<Vec<u8>>,
    /// Read as of this snapshot (of the same database) instead of now.
    pub snapshot: Option<&'a Snapshot>,
}

impl Default for ReadOptions<'_> {
    fn default() -> Self {
        ReadOptions {
            fill_cache: true,
            verify_checksums: true,
            iterate_lower_bound: None,
            iterate_upper_bound: None,
            snapshot: None,
        }
    }
}

impl<'a> ReadOptions<'a> {
    /// The defaults: what `get` and `range` do.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`fill_cache`](Self::fill_cache).
    #[must_use]
    pub fn fill_cache(mut self, fill: bool) -> Self {
        self.fill_cache = fill;
        self
    }

    /// Sets [`verify_checksums`](Self::verify_checksums).
    #[must_use]
    pub fn verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    /// Sets [`iterate_lower_bound`](Self::iterate_lower_bound).
    #[must_use]
    pub fn iterate_lower_bound(mut self, key: impl AsRef<[u8]>) -> Self {
        self.iterate_lower_bound = Some(key.as_ref().to_vec());
        self
    }

    /// Sets [`iterate_upper_bound`](Self::iterate_upper_bound).
    #[must_use]
    pub fn iterate_upper_bound(mut self, key: impl AsRef<[u8]>) -> Self {
        self.iterate_upper_bound = Some(key.as_ref().to_vec());
        self
    }

    /// Sets [`snapshot`](Self::snapshot).
    #[must_use]
    pub fn snapshot(mut self, snapshot: &'a Snapshot) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// The flags block reads see (0: the defaults).
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(!self.fill_cache) * NO_FILL) | (u8::from(!self.verify_checksums) * NO_VERIFY)
    }

    /// `lo..hi` narrowed by the iterate bounds.
    pub(crate) fn narrow(
        &self,
        lo: Bound<Vec<u8>>,
        hi: Bound<Vec<u8>>,
    ) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let lo = match (&self.iterate_lower_bound, lo) {
            (Some(l), Bound::Unbounded) => Bound::Included(l.clone()),
            (Some(l), Bound::Included(k) | Bound::Excluded(k)) if *l > k => {
                Bound::Included(l.clone())
            }
            (_, lo) => lo,
        };
        let hi = match (&self.iterate_upper_bound, hi) {
            (Some(u), Bound::Unbounded) => Bound::Excluded(u.clone()),
            (Some(u), Bound::Included(k) | Bound::Excluded(k)) if *u <= k => {
                Bound::Excluded(u.clone())
            }
            (_, hi) => hi,
        };
        (lo, hi)
    }
}

/// Blocks loaded are not put into the block cache.
pub(crate) const NO_FILL: u8 = 1;
/// Blocks read from the file map are not verified (nor cached).
pub(crate) const NO_VERIFY: u8 = 2;

thread_local! {
    static FLAGS: Cell<u8> = const { Cell::new(0) };
}

/// The flags of the read running on this thread.
#[inline]
pub(crate) fn flags() -> u8 {
    FLAGS.with(Cell::get)
}

/// Sets this thread's read flags until dropped (then restores the
/// previous ones); nothing is written for the defaults.
pub(crate) struct FlagScope(Option<u8>);

impl FlagScope {
    /// Enters `flags` (from [`ReadOptions::flags`]).
    #[inline]
    pub(crate) fn enter(flags: u8) -> FlagScope {
        if flags == 0 && self::flags() == 0 {
            return FlagScope(None);
        }
        FlagScope(Some(FLAGS.with(|f| f.replace(flags))))
    }
}

impl Drop for FlagScope {
    fn drop(&mut self) {
        if let Some(prev) = self.0 {
            FLAGS.with(|f| f.set(prev));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_narrow_and_never_widen() {
        let b = |s: &str| s.as_bytes().to_vec();
        let ro = ReadOptions::new()
            .iterate_lower_bound("c")
            .iterate_upper_bound("f");
        assert_eq!(
            ro.narrow(Bound::Unbounded, Bound::Unbounded),
            (Bound::Included(b("c")), Bound::Excluded(b("f")))
        );
        assert_eq!(
            ro.narrow(Bound::Included(b("d")), Bound::Excluded(b("e"))),
            (Bound::Included(b("d")), Bound::Excluded(b("e")))
        );
        assert_eq!(
            ro.narrow(Bound::Excluded(b("a")), Bound::Included(b("z"))),
            (Bound::Included(b("c")), Bound::Excluded(b("f")))
        );
        assert_eq!(
            ro.narrow(Bound::Included(b("c")), Bound::Included(b("f"))),
            (Bound::Included(b("c")), Bound::Excluded(b("f")))
        );
        assert_eq!(ReadOptions::new().flags(), 0);
        assert_eq!(
            ReadOptions::new()
                .fill_cache(false)
                .verify_checksums(false)
                .flags(),
            3
        );
    }

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(flags(), 0);
        {
            let _a = FlagScope::enter(NO_FILL);
            assert_eq!(flags(), NO_FILL);
            {
                let _b = FlagScope::enter(0);
                assert_eq!(flags(), 0);
            }
            assert_eq!(flags(), NO_FILL);
        }
        assert_eq!(flags(), 0);
    }
}
