//! Internal keys: a user key with the sequence number and kind of one
//! version of it.
//!
//! Encoding (used in the memtable, in SST blocks and index pages):
//! `user_key ‖ trailer`, where `trailer` is 8 little-endian bytes holding
//! `(seqno << 8) | kind`. Internal keys order by user key ascending
//! (bytewise), then by trailer **descending**, so the newest version of a
//! key comes first and a seek to `(key, snapshot_seq)` lands on the newest
//! version the snapshot may see.

use std::cmp::Ordering;

/// Largest sequence number (56 bits; the low byte of the trailer holds the kind).
pub const MAX_SEQUENCE: u64 = (1 << 56) - 1;

/// Bytes of the trailer after the user key.
pub const TRAILER_LEN: usize = 8;

/// Sequence number of a write. Every batch gets consecutive numbers from one
/// monotonic counter.
pub type SeqNo = u64;

/// What one version of a key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum ValueKind {
    /// The key was deleted at this sequence number.
    Delete = 0,
    /// The key was set to a value.
    Value = 1,
    /// The key was set to a value that lives in a blob file; the entry's
    /// value is a blob reference (`docs/format.md`, "Blob files"). Only in
    /// SST files: memtables, WALs and write batches hold whole values.
    BlobIndex = 2,
    /// A merge operand: the key's value is the keyspace's merge operator
    /// applied to the older value and every newer operand
    /// ([`crate::MergeOperator`]). The entry's value is the operand.
    Merge = 3,
    /// The key was set to a value written at a known time, in a keyspace
    /// with a time to live (`Options::ttl`). The entry's value is the
    /// user's value followed by the write time, milliseconds since the
    /// Unix epoch as 8 little-endian bytes (docs/format.md, "Timed values"). Memtables,
    /// WALs (as operation kinds 9 and 10) and SSTs of format 6 hold it.
    TimedValue = 4,
}

impl ValueKind {
    /// The kind with the largest code; a lookup key uses it so that it sorts
    /// before every entry with the same user key and sequence number.
    pub const FOR_SEEK: ValueKind = ValueKind::TimedValue;

    /// Decodes a kind byte; `None` for unknown codes.
    pub fn from_u8(b: u8) -> Option<ValueKind> {
        match b {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Value),
            2 => Some(ValueKind::BlobIndex),
            3 => Some(ValueKind::Merge),
            4 => Some(ValueKind::TimedValue),
            _ => None,
        }
    }

    /// True for the kinds that set a whole value (inline or in a blob
    /// file): not a tombstone, not a merge operand.
    #[inline]
    pub fn is_value(self) -> bool {
        matches!(
            self,
            ValueKind::Value | ValueKind::BlobIndex | ValueKind::TimedValue
        )
    }
}

/// Packs a sequence number and kind into a trailer value.
#[inline]
pub fn pack_trailer(seq: SeqNo, kind: ValueKind) -> u64 {
    debug_assert!(seq <= MAX_SEQUENCE);
    (seq << 8) | kind as u64
}

/// Appends the encoded internal key to `out`.
#[inline]
pub fn append_internal_key(out: &mut Vec<u8>, user_key: &[u8], seq: SeqNo, kind: ValueKind) {
    out.extend_from_slice(user_key);
    out.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

/// Encodes an internal key into a new vector.
pub fn encode_internal_key(user_key: &[u8], seq: SeqNo, kind: ValueKind) -> Vec<u8> {
    let mut v = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append_internal_key(&mut v, user_key, seq, kind);
    v
}

/// The smallest key of a file whose range tombstone starts at `start`:
/// before every version of `start` (sequence number [`MAX_SEQUENCE`],
/// which no write uses).
pub(crate) fn range_start_bound(start: &[u8]) -> Vec<u8> {
    encode_internal_key(start, MAX_SEQUENCE, ValueKind::FOR_SEEK)
}

/// The largest key of a file whose range tombstone ends (exclusively) at
/// `end`: the file covers the user keys below `end`, not `end` itself, so
/// the next file of its level may start at `end`
/// ([`is_range_end_bound`]). Sequence number [`MAX_SEQUENCE`] and kind
/// delete: no entry has that trailer.
pub(crate) fn range_end_bound(end: &[u8]) -> Vec<u8> {
    encode_internal_key(end, MAX_SEQUENCE, ValueKind::Delete)
}

/// True when the file bound `ikey` is a [`range_end_bound`] (exclusive).
#[inline]
pub(crate) fn is_range_end_bound(ikey: &[u8]) -> bool {
    trailer(ikey) == pack_trailer(MAX_SEQUENCE, ValueKind::Delete)
}

/// True when a file whose largest key is `largest` ends before user key
/// `k`: its largest user key is below `k`, or equal to `k` as an
/// exclusive bound.
#[inline]
pub(crate) fn ends_before(largest: &[u8], k: &[u8]) -> bool {
    match user_key(largest).cmp(k) {
        Ordering::Less => true,
        Ordering::Equal => is_range_end_bound(largest),
        Ordering::Greater => false,
    }
}

/// A decoded view of an encoded internal key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The user's key.
    pub user_key: &'a [u8],
    /// Sequence number of this version.
    pub seq: SeqNo,
    /// Value or tombstone.
    pub kind: ValueKind,
}

/// Splits an encoded internal key; `None` when it is shorter than a trailer
/// or has an unknown kind (callers report corruption).
#[inline]
pub fn parse_internal_key(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    let split = ikey.len().checked_sub(TRAILER_LEN)?;
    let (user_key, t) = ikey.split_at(split);
    let mut a = [0u8; 8];
    a.copy_from_slice(t);
    let trailer = u64::from_le_bytes(a);
    let kind = ValueKind::from_u8(trailer as u8)?;
    Some(ParsedKey {
        user_key,
        seq: trailer >> 8,
        kind,
    })
}

/// The user-key part of an encoded internal key (the whole slice if it is
/// too short to hold a trailer).
#[inline]
pub fn user_key(ikey: &[u8]) -> &[u8] {
    &ikey[..ikey.len().saturating_sub(TRAILER_LEN)]
}

#[inline]
fn trailer(ikey: &[u8]) -> u64 {
    let n = ikey.len();
    if n < TRAILER_LEN {
        return 0;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&ikey[n - TRAILER_LEN..]);
    u64::from_le_bytes(a)
}

/// Compares two user keys bytewise, as `a.cmp(b)` does. The first
/// [`INLINE_COMPARE`] bytes are compared 8 at a time as big-endian
/// integers, inline: keys with a shared 8-byte prefix (zero-padded
/// integers, db_bench's keys, a keyspace prefix) then cost no `memcmp`
/// call, which for 16-byte keys costs more than the comparison itself.
/// Longer common prefixes go on with `memcmp`.
#[inline]
pub fn compare_user_keys(a: &[u8], b: &[u8]) -> Ordering {
    let (mut a, mut b) = (a, b);
    for _ in 0..INLINE_COMPARE / 8 {
        match (a.split_first_chunk::<8>(), b.split_first_chunk::<8>()) {
            (Some((x, ra)), Some((y, rb))) => {
                let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (ra, rb);
            }
            _ => break,
        }
    }
    if a.is_empty() || b.is_empty() {
        // Equal so far and one has ended (16-byte keys, after two
        // chunks): no `memcmp` call for nothing.
        return a.len().cmp(&b.len());
    }
    a.cmp(b)
}

/// How many leading bytes [`compare_user_keys`] and [`same_user_key`]
/// compare inline before calling `memcmp`.
const INLINE_COMPARE: usize = 32;

/// `a == b` for user keys, inline for keys of up to [`INLINE_COMPARE`]
/// bytes (see [`compare_user_keys`]).
#[inline]
pub fn same_user_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    compare_user_keys(a, b) == Ordering::Equal
}

/// The length of the longest common prefix of `a` and `b`, 8 bytes at a
/// time (a block's prefix compression asks this of every key it adds).
#[inline]
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while let (Some(x), Some(y)) = (
        a.get(i..).and_then(|r| r.first_chunk::<8>()),
        b.get(i..).and_then(|r| r.first_chunk::<8>()),
    ) {
        let d = u64::from_be_bytes(*x) ^ u64::from_be_bytes(*y);
        if d != 0 {
            return i + (d.leading_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

/// Compares two encoded internal keys: user key ascending, then trailer
/// (sequence number, kind) descending.
#[inline]
pub fn compare_internal(a: &[u8], b: &[u8]) -> Ordering {
    match compare_user_keys(user_key(a), user_key(b)) {
        Ordering::Equal => trailer(b).cmp(&trailer(a)),
        o => o,
    }
}

/// Compares the encoded internal key `k` with the internal key given as
/// its parts, user key `uk` and packed `trailer`, without encoding it.
#[inline]
pub(crate) fn compare_with_parts(k: &[u8], uk: &[u8], trailer: u64) -> Ordering {
    match compare_user_keys(user_key(k), uk) {
        Ordering::Equal => trailer.cmp(&self::trailer(k)),
        o => o,
    }
}

/// The user key and packed trailer of an encoded internal key (the
/// trailer is 0 when the key is too short to hold one).
#[inline]
pub(crate) fn split_internal_key(ikey: &[u8]) -> (&[u8], u64) {
    (user_key(ikey), trailer(ikey))
}

/// The first 8 bytes of `user_key`, big-endian, zero-padded: comparing
/// two prefixes orders the keys as comparing the keys would, except that
/// equal prefixes say nothing (compare the whole keys then). If padded
/// prefixes differ, they first differ where both keys have real bytes, or
/// where the shorter key ended (padding 0 against a byte >= 0); either way
/// the smaller prefix belongs to the smaller key.
#[inline]
pub(crate) fn key_prefix(user_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user_key.len().min(8);
    b[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(b)
}

/// Writes into `out` a short internal key `s` with `a <= s < b` (`a < b`
/// in internal order): a shortened user key with the largest trailer, or
/// `a` itself when no shorter user key fits between them.
pub(crate) fn shortest_separator(a: &[u8], b: &[u8], out: &mut Vec<u8>) {
    debug_assert_eq!(compare_internal(a, b), Ordering::Less);
    out.clear();
    let (ua, ub) = (user_key(a), user_key(b));
    let n = ua.iter().zip(ub).take_while(|(x, y)| x == y).count();
    if let (Some(&da), Some(&db)) = (ua.get(n), ub.get(n)) {
        // ua < ub, so da < db.
        if da < db {
            if da.wrapping_add(1) < db {
                out.extend_from_slice(&ua[..n]);
                out.push(da + 1);
                append_internal_key_trailer(out);
                return;
            }
            // da + 1 == db: keep ua[..=n] and bump a later byte of ua.
            if let Some(i) = ua[n + 1..].iter().position(|&x| x < 0xff) {
                let i = n + 1 + i;
                out.extend_from_slice(&ua[..i]);
                out.push(ua[i] + 1);
                append_internal_key_trailer(out);
                return;
            }
        }
    }
    out.extend_from_slice(a);
}

/// Writes into `out` a short internal key `>= a`: the first user-key byte
/// below 0xff bumped, truncated after it, with the largest trailer; or `a`.
pub(crate) fn short_successor(a: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let ua = user_key(a);
    if let Some(i) = ua.iter().position(|&x| x < 0xff) {
        out.extend_from_slice(&ua[..i]);
        out.push(ua[i] + 1);
        append_internal_key_trailer(out);
    } else {
        out.extend_from_slice(a);
    }
}

/// The trailer of a separator: the largest sequence number, so it sorts
/// before every entry of its user key. Its kind is `Value`, not
/// [`ValueKind::FOR_SEEK`], so that tables without blob references hold
/// only kinds older builds read.
fn append_internal_key_trailer(out: &mut Vec<u8>) {
    append_internal_key(out, &[], MAX_SEQUENCE, ValueKind::Value);
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn same_key_and_common_prefix_are_bytewise(
            a in proptest::collection::vec(0u8..3, 0..48),
            b in proptest::collection::vec(0u8..3, 0..48),
        ) {
            proptest::prop_assert_eq!(same_user_key(&a, &b), a == b);
            proptest::prop_assert!(same_user_key(&a, &a));
            let want = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            proptest::prop_assert_eq!(common_prefix_len(&a, &b), want);
            proptest::prop_assert_eq!(common_prefix_len(&a, &a), a.len());
        }

        #[test]
        fn compare_user_keys_is_bytewise(
            a in proptest::collection::vec(0u8..2, 0..48),
            b in proptest::collection::vec(0u8..2, 0..48),
        ) {
            proptest::prop_assert_eq!(compare_user_keys(&a, &b), a.cmp(&b));
            proptest::prop_assert_eq!(compare_user_keys(&b, &a), b.cmp(&a));
            proptest::prop_assert_eq!(compare_user_keys(&a, &a), std::cmp::Ordering::Equal);
        }
    }

    #[test]
    fn order_is_user_key_then_newest_first() {
        let a1 = encode_internal_key(b"a", 1, ValueKind::Value);
        let a2 = encode_internal_key(b"a", 2, ValueKind::Delete);
        let ab = encode_internal_key(b"ab", 9, ValueKind::Value);
        assert_eq!(compare_internal(&a2, &a1), Ordering::Less);
        assert_eq!(compare_internal(&a1, &ab), Ordering::Less);
        assert_eq!(compare_internal(&a2, &ab), Ordering::Less);
        let seek = encode_internal_key(b"a", 1, ValueKind::FOR_SEEK);
        assert_ne!(compare_internal(&seek, &a1), Ordering::Greater);
    }

    #[test]
    fn parse_round_trip() {
        let k = encode_internal_key(b"key", 42, ValueKind::Delete);
        let p = parse_internal_key(&k).unwrap();
        assert_eq!(p.user_key, b"key");
        assert_eq!(p.seq, 42);
        assert_eq!(p.kind, ValueKind::Delete);
        assert!(parse_internal_key(b"short").is_none());
        let mut bad = k.clone();
        let n = bad.len();
        bad[n - 8] = 7;
        assert!(parse_internal_key(&bad).is_none());
    }

    fn sep_ik(k: &[u8], s: u64) -> Vec<u8> {
        encode_internal_key(k, s, ValueKind::Value)
    }

    #[test]
    fn separators_are_short_and_between() {
        let cases: &[(&[u8], u64, &[u8], u64)] = &[
            (b"abc", 5, b"abd", 5),
            (b"abc", 5, b"abx", 5),
            (b"abc", 5, b"abcd", 5),
            (b"ab\xff\xff", 5, b"ac", 5),
            (b"ab\xffz", 5, b"ac", 5),
            (b"a", 9, b"a", 3),
            (b"", 9, b"", 3),
            (b"", 9, b"a", 3),
            (b"helloworld", 1, b"help", 1),
        ];
        let mut out = Vec::new();
        for &(a, sa, b, sb) in cases {
            let (a, b) = (sep_ik(a, sa), sep_ik(b, sb));
            shortest_separator(&a, &b, &mut out);
            assert_ne!(compare_internal(&a, &out), Ordering::Greater);
            assert_eq!(compare_internal(&out, &b), Ordering::Less);
            assert!(out.len() <= a.len());
            short_successor(&a, &mut out);
            assert_ne!(compare_internal(&a, &out), Ordering::Greater);
        }
        shortest_separator(&sep_ik(b"helloworld", 1), &sep_ik(b"hellz", 1), &mut out);
        assert_eq!(user_key(&out), b"hellp");
    }
}
