//! Prefix extractors: the part of a key that prefix scans share, so that
//! SST filters can answer "does this file hold any key with this
//! prefix?" (RocksDB's `prefix_extractor`).
//!
//! With [`crate::Options::prefix_extractor`] set, every SST file written
//! afterwards adds each distinct prefix of its keys to its bloom filter
//! (beside the whole keys) and records the extractor's name. A scan whose
//! range lies within one prefix ([`crate::Db::prefix`] with a prefix at
//! least as long as the extracted one, or a range inside it) then skips
//! the files whose filter says no, instead of seeking in every level. A
//! file written with another extractor (or none) is always read.

use std::fmt;

/// Extracts the prefix of a key.
///
/// The contract scans rely on: `prefix(k)`, when `Some`, is a prefix of
/// `k`, and every key that starts with `prefix(k)` has that same prefix.
/// A fixed length ([`FixedPrefix`]) satisfies it; so does "up to and
/// including the first `/`". The name must change whenever the function
/// does: files record it, and a file with another name is not filtered.
///
/// ```
/// use lightning_db::{FixedPrefix, PrefixExtractor};
///
/// let p = FixedPrefix::new(4);
/// assert_eq!(p.prefix(b"user1234"), Some(&b"user"[..]));
/// assert_eq!(p.prefix(b"usr"), None); // shorter keys have no prefix
/// ```
pub trait PrefixExtractor: Send + Sync {
    /// The extractor's name, recorded in every SST file it filtered.
    fn name(&self) -> &str;

    /// The prefix of `key`, or `None` when the key has none (it is then
    /// found by whole-key lookups only).
    fn prefix<'a>(&self, key: &'a [u8]) -> Option<&'a [u8]>;
}

impl fmt::Debug for dyn PrefixExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrefixExtractor({})", self.name())
    }
}

/// The first `len` bytes of each key (RocksDB's `NewFixedPrefixTransform`);
/// shorter keys have no prefix.
#[derive(Debug, Clone)]
pub struct FixedPrefix {
    len: usize,
    name: String,
}

impl FixedPrefix {
    /// Prefixes of `len` bytes (at least 1).
    pub fn new(len: usize) -> Self {
        let len = len.max(1);
        FixedPrefix {
            len,
            name: format!("fixed:{len}"),
        }
    }
}

impl PrefixExtractor for FixedPrefix {
    fn name(&self) -> &str {
        &self.name
    }

    fn prefix<'a>(&self, key: &'a [u8]) -> Option<&'a [u8]> {
        key.get(..self.len)
    }
}

/// The prefix every key of `[lo, hi)` shares under `x`, if there is one:
/// `x`'s prefix `p` of the lower bound, when the upper bound does not
/// reach past the keys starting with `p`.
pub(crate) fn shared_prefix<'a>(
    x: &dyn PrefixExtractor,
    lo: &'a std::ops::Bound<Vec<u8>>,
    hi: &std::ops::Bound<Vec<u8>>,
) -> Option<&'a [u8]> {
    use std::ops::Bound;
    let lo = match lo {
        Bound::Included(k) | Bound::Excluded(k) => k.as_slice(),
        Bound::Unbounded => return None,
    };
    let p = x.prefix(lo)?;
    let end = crate::iter::db_iter::prefix_successor(p);
    let inside = match (hi, &end) {
        (Bound::Unbounded, _) => false,
        (Bound::Excluded(h), Some(e)) => h <= e,
        (Bound::Included(h), _) => h.starts_with(p),
        (Bound::Excluded(_), None) => true,
    };
    inside.then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound::{Excluded, Included, Unbounded};

    #[test]
    fn a_range_shares_a_prefix_only_when_it_stays_inside_it() {
        let x = FixedPrefix::new(2);
        let b = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            shared_prefix(&x, &Included(b("abc")), &Excluded(b("abd"))),
            Some(&b"ab"[..])
        );
        assert_eq!(
            shared_prefix(&x, &Included(b("ab")), &Excluded(b("ac"))),
            Some(&b"ab"[..])
        );
        assert_eq!(
            shared_prefix(&x, &Included(b("abz")), &Included(b("abzz"))),
            Some(&b"ab"[..])
        );
        assert_eq!(
            shared_prefix(&x, &Included(b("ab")), &Excluded(b("ad"))),
            None
        );
        assert_eq!(
            shared_prefix(&x, &Included(b("ab")), &Included(b("ac"))),
            None
        );
        assert_eq!(shared_prefix(&x, &Included(b("ab")), &Unbounded), None);
        assert_eq!(
            shared_prefix(&x, &Included(b("a")), &Excluded(b("b"))),
            None
        );
        assert_eq!(shared_prefix(&x, &Unbounded, &Excluded(b("ab"))), None);
        let all_ff = vec![0xff, 0xff];
        assert_eq!(
            shared_prefix(
                &x,
                &Included(all_ff.clone()),
                &Excluded(vec![0xff, 0xff, 0xff])
            ),
            Some(&all_ff[..])
        );
    }
}
