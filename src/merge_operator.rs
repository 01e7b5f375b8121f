//! Merge operators: read-modify-write pushed into the engine.
//!
//! A merge writes an *operand* instead of a value ([`crate::Db::merge`],
//! [`crate::WriteBatch::merge`]); the key's value is the keyspace's
//! [`MergeOperator`] applied to the older value and the operands written
//! since, oldest first. Reads fold the operands they meet (gets,
//! iterators, snapshots, transactions); compaction folds them too, as far
//! as the live snapshots allow, so a counter incremented a million times
//! does not keep a million operands (docs/merge.md).
//!
//! Two operators ship with the engine: [`U64AddOperator`] (little-endian
//! `u64` counters, RocksDB's `uint64add`) and [`AppendOperator`] (string
//! appends with a separator, RocksDB's `stringappend`).

use std::fmt;
use std::sync::Arc;

use lightning_compaction::{MergeFn, OperandMerge, Shared};

/// Why a merge failed: the operator's own message. A read that needs the
/// failed merge returns [`crate::Error::Merge`] naming the key; compaction
/// keeps the operands instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeError {
    message: String,
}

impl MergeError {
    /// A merge error with `message`, which should say what was wrong with
    /// which operand or value.
    pub fn new(message: impl Into<String>) -> Self {
        MergeError {
            message: message.into(),
        }
    }

    /// The operator's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MergeError {}

/// Folds merge operands into a value. Set one per keyspace with
/// [`crate::Options::merge_operator`] (or
/// [`crate::KeyspaceOptions::merge_operator`]); it must be the same
/// operator (same [`name`](MergeOperator::name), same meaning) every time
/// the database is opened, because operands written by one run are folded
/// by later ones.
///
/// Both calls run on the reading thread or on compaction threads, many at
/// once, and must be deterministic: the same inputs always give the same
/// output.
///
/// ```
/// use lightning_db::{MergeError, MergeOperator};
///
/// /// Keeps the largest byte string seen.
/// #[derive(Debug)]
/// struct Max;
///
/// impl MergeOperator for Max {
///     fn name(&self) -> &str {
///         "max"
///     }
///     fn full_merge(
///         &self,
///         _key: &[u8],
///         existing: Option<&[u8]>,
///         operands: &[&[u8]],
///     ) -> Result<Vec<u8>, MergeError> {
///         let max = operands.iter().copied().chain(existing).max().unwrap_or_default();
///         Ok(max.to_vec())
///     }
/// }
/// assert_eq!(Max.full_merge(b"k", Some(b"b"), &[b"a", b"c"]).unwrap(), b"c");
/// ```
pub trait MergeOperator: Send + Sync {
    /// The operator's name, for logs, `Debug` and the options dump.
    fn name(&self) -> &str;

    /// The value of `key` given its `existing` value (`None`: the key is
    /// absent or deleted) and the `operands` written since, **oldest
    /// first** (at least one). An error fails the read that needed it.
    fn full_merge(
        &self,
        key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError>;

    /// One operand equivalent to `operands` (oldest first, at least two)
    /// applied in order, whatever the existing value; `None` when they do
    /// not combine without it (the default), and compaction then keeps
    /// them all. Associative operators (a sum, an append) should implement
    /// it: it is what lets compaction shrink a run of operands that a
    /// snapshot keeps from being folded into a value.
    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        let _ = (key, operands);
        None
    }
}

impl fmt::Debug for dyn MergeOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MergeOperator({})", self.name())
    }
}

/// Adds little-endian `u64` counters, wrapping on overflow (RocksDB's
/// `uint64add`). Every operand and the existing value must be exactly 8
/// bytes; anything else fails the merge. An absent value counts as 0.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::sync::Arc;
/// use lightning_db::{Db, Options, U64AddOperator};
///
/// let db = Db::open(dir.path(), Options::new().merge_operator(Some(Arc::new(U64AddOperator))))?;
/// db.merge("hits", 5u64.to_le_bytes())?;
/// db.merge("hits", 2u64.to_le_bytes())?;
/// assert_eq!(db.get("hits")?.as_deref(), Some(&7u64.to_le_bytes()[..]));
/// # Ok::<(), lightning_db::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct U64AddOperator;

impl U64AddOperator {
    fn decode(what: &str, b: &[u8]) -> Result<u64, MergeError> {
        let a: [u8; 8] = b.try_into().map_err(|_| {
            MergeError::new(format!(
                "uint64add: {what} is {} bytes, not an 8-byte little-endian u64",
                b.len()
            ))
        })?;
        Ok(u64::from_le_bytes(a))
    }

    fn sum(start: u64, operands: &[&[u8]]) -> Result<u64, MergeError> {
        operands.iter().try_fold(start, |acc, op| {
            Ok(acc.wrapping_add(Self::decode("an operand", op)?))
        })
    }
}

impl MergeOperator for U64AddOperator {
    fn name(&self) -> &str {
        "uint64add"
    }

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        let start = match existing {
            Some(v) => Self::decode("the existing value", v)?,
            None => 0,
        };
        Ok(Self::sum(start, operands)?.to_le_bytes().to_vec())
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Self::sum(0, operands)
            .ok()
            .map(|s| s.to_le_bytes().to_vec())
    }
}

/// Appends each operand to the value, with `separator` between pieces
/// (RocksDB's `stringappend`). An absent value starts empty, with no
/// leading separator.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::sync::Arc;
/// use lightning_db::{AppendOperator, Db, Options};
///
/// let op = AppendOperator::new(",");
/// let db = Db::open(dir.path(), Options::new().merge_operator(Some(Arc::new(op))))?;
/// db.put("tags", "red")?;
/// db.merge("tags", "green")?;
/// db.merge("tags", "blue")?;
/// assert_eq!(db.get("tags")?.as_deref(), Some(&b"red,green,blue"[..]));
/// # Ok::<(), lightning_db::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct AppendOperator {
    separator: Vec<u8>,
}

impl AppendOperator {
    /// An operator that puts `separator` (may be empty) between pieces.
    pub fn new(separator: impl AsRef<[u8]>) -> Self {
        AppendOperator {
            separator: separator.as_ref().to_vec(),
        }
    }

    fn join(&self, first: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        let len = first.map_or(0, |f| f.len() + self.separator.len())
            + operands.iter().map(|o| o.len()).sum::<usize>()
            + self.separator.len() * operands.len().saturating_sub(1);
        let mut out = Vec::with_capacity(len);
        for (i, piece) in first
            .into_iter()
            .chain(operands.iter().copied())
            .enumerate()
        {
            if i > 0 {
                out.extend_from_slice(&self.separator);
            }
            out.extend_from_slice(piece);
        }
        out
    }
}

impl MergeOperator for AppendOperator {
    fn name(&self) -> &str {
        "stringappend"
    }

    fn full_merge(
        &self,
        _key: &[u8],
        existing: Option<&[u8]>,
        operands: &[&[u8]],
    ) -> Result<Vec<u8>, MergeError> {
        Ok(self.join(existing, operands))
    }

    fn partial_merge(&self, _key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(self.join(None, operands))
    }
}

/// The compaction crate's view of a keyspace's merge operator: a failed
/// merge keeps the operands (`None`) instead of failing the job.
struct CompactionMerge(Arc<dyn MergeOperator>);

impl OperandMerge for CompactionMerge {
    fn full_merge(&self, key: &[u8], base: Option<&[u8]>, operands: &[&[u8]]) -> Option<Vec<u8>> {
        match self.0.full_merge(key, base, operands) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(
                    operator = self.0.name(),
                    key = %crate::error::escape_key(key),
                    error = %e,
                    "merge failed in flush or compaction; its operands are kept"
                );
                None
            }
        }
    }

    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        self.0.partial_merge(key, operands)
    }
}

/// What flush and compaction fold operands with (`None`: no operator, the
/// operands are kept).
pub(crate) fn compaction_merge(op: &Option<Arc<dyn MergeOperator>>) -> Option<MergeFn> {
    op.as_ref()
        .map(|op| Shared(Arc::new(CompactionMerge(Arc::clone(op))) as Arc<dyn OperandMerge>))
}

/// The value of `key` from `base` and `operands` (newest first, as a read
/// meets them) under `op`; the error names the key and the operator (or
/// says there is none).
pub(crate) fn fold(
    op: Option<&Arc<dyn MergeOperator>>,
    key: &[u8],
    base: Option<&[u8]>,
    operands_newest_first: &[bytes::Bytes],
) -> crate::Result<bytes::Bytes> {
    let Some(op) = op else {
        return Err(crate::Error::Merge {
            key: bytes::Bytes::copy_from_slice(key),
            operator: String::new(),
            reason: format!(
                "{} operand(s) found; set Options::merge_operator to read them",
                operands_newest_first.len()
            ),
        });
    };
    let oldest_first: Vec<&[u8]> = operands_newest_first.iter().rev().map(|b| &b[..]).collect();
    op.full_merge(key, base, &oldest_first)
        .map(bytes::Bytes::from)
        .map_err(|e| crate::Error::Merge {
            key: bytes::Bytes::copy_from_slice(key),
            operator: op.name().to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64add_adds_wraps_and_refuses_bad_widths() {
        let op = U64AddOperator;
        let one = 1u64.to_le_bytes();
        let max = u64::MAX.to_le_bytes();
        assert_eq!(
            op.full_merge(b"k", None, &[&one, &one]).unwrap(),
            2u64.to_le_bytes()
        );
        assert_eq!(
            op.full_merge(b"k", Some(&max), &[&one]).unwrap(),
            0u64.to_le_bytes()
        );
        assert_eq!(
            op.partial_merge(b"k", &[&one, &max]).unwrap(),
            0u64.to_le_bytes()
        );
        let e = op.full_merge(b"k", Some(b"abc"), &[&one]).unwrap_err();
        assert!(e.message().contains("existing value is 3 bytes"), "{e}");
        assert!(op.full_merge(b"k", None, &[b"1234567"]).is_err());
        assert_eq!(op.partial_merge(b"k", &[&one, b"x"]), None);
    }

    #[test]
    fn append_joins_with_the_separator_only_between_pieces() {
        let op = AppendOperator::new("--");
        assert_eq!(op.full_merge(b"k", None, &[b"a"]).unwrap(), b"a");
        assert_eq!(op.full_merge(b"k", Some(b""), &[b"a"]).unwrap(), b"--a");
        assert_eq!(
            op.full_merge(b"k", Some(b"x"), &[b"a", b"b"]).unwrap(),
            b"x--a--b"
        );
        let partial = op.partial_merge(b"k", &[b"a", b"b"]).unwrap();
        assert_eq!(partial, b"a--b");
        // Folding the partial result equals folding the operands.
        assert_eq!(
            op.full_merge(b"k", Some(b"x"), &[&partial]).unwrap(),
            op.full_merge(b"k", Some(b"x"), &[b"a", b"b"]).unwrap()
        );
        let empty = AppendOperator::new("");
        assert_eq!(empty.full_merge(b"k", Some(b"x"), &[b"y"]).unwrap(), b"xy");
    }
}
