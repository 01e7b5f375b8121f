//! Time to live (`Options::ttl`): the write time stored with each value of
//! a keyspace that has one, the clock that supplies it, and the rule that
//! says when a value has expired.
//!
//! Format (docs/format.md, "Timed values"): a put into a keyspace with a
//! TTL is stamped when its write begins, and stored as internal-key kind 4
//! ([`ValueKind::TimedValue`](crate::key::ValueKind::TimedValue)) whose
//! value is `user_value ‖ write_time`, `write_time` being milliseconds
//! since the Unix epoch as 8 little-endian bytes. The WAL logs the stamped
//! value, so a replay gives every value its original time and expiry never
//! moves after a crash. Entries describe themselves: a keyspace whose TTL
//! is turned off keeps reading its timed values (the time is stripped and
//! nothing expires), and one whose TTL is turned on never misreads older
//! untimed values (they never expire).
//!
//! Expiry: a timed value written at `w` has expired for a reader at `now`
//! when `w + ttl <= now`, with `ttl` the keyspace's current setting. An
//! expired version reads as a **tombstone** at its sequence number: it
//! hides the older versions too, so an older value never reappears when a
//! newer one expires. Compaction turns expired values into tombstones (or
//! drops them on the bottommost level) with the compaction filter's rules
//! (`crate::compaction_filter`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes of the write time after a timed value's user value.
pub(crate) const TIME_LEN: usize = 8;

/// The source of "now" for TTL: write times and expiry checks.
/// `Options::clock`; the default is [`SystemClock`]. Tests drive time with
/// a [`ManualClock`].
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use lightning_db::{Db, ManualClock, Options};
///
/// # let dir = tempfile::tempdir().unwrap();
/// let clock = Arc::new(ManualClock::new(1_000_000));
/// let opts = Options::default()
///     .ttl(Some(Duration::from_secs(60)))
///     .clock(clock.clone());
/// let db = Db::open(dir.path(), opts)?;
/// db.put("session", "token")?;
/// clock.advance(Duration::from_secs(59));
/// assert!(db.get("session")?.is_some());
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(db.get("session")?, None);
/// # Ok::<(), lightning_db::Error>(())
/// ```
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch. Should not go backwards; if it
    /// does, values only live longer.
    fn now_millis(&self) -> u64;
}

/// The system's wall clock (`SystemTime::now`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for tests of expiry.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock reading `millis` milliseconds since the Unix epoch.
    pub fn new(millis: u64) -> Self {
        ManualClock {
            now: AtomicU64::new(millis),
        }
    }

    /// Sets the time, milliseconds since the Unix epoch.
    pub fn set(&self, millis: u64) {
        self.now.store(millis, Ordering::SeqCst);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(duration_millis(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// `d` in whole milliseconds, saturating.
pub(crate) fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Which timed values a read (or a compaction) treats as expired: those
/// written before `bound` milliseconds since the epoch. `Expiry::NEVER`
/// (bound 0) expires nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Expiry(u64);

impl Expiry {
    /// Nothing expires (no TTL).
    pub(crate) const NEVER: Expiry = Expiry(0);

    /// The expiry of a keyspace with time to live `ttl` for a reader at
    /// `now_ms`: a value written at `w` has expired when `w + ttl <= now`.
    pub(crate) fn at(ttl: Option<Duration>, now_ms: u64) -> Expiry {
        match ttl {
            None => Expiry::NEVER,
            Some(ttl) => {
                let ttl = duration_millis(ttl);
                // w + ttl <= now  <=>  w < now - ttl + 1.
                match now_ms.checked_sub(ttl) {
                    Some(d) => Expiry(d.saturating_add(1)),
                    None => Expiry::NEVER,
                }
            }
        }
    }

    /// True when a value written at `write_ms` has expired.
    #[inline]
    pub(crate) fn expired(self, write_ms: u64) -> bool {
        write_ms < self.0
    }

    /// True when nothing can expire.
    #[cfg(test)]
    pub(crate) fn is_never(self) -> bool {
        self.0 == 0
    }
}

/// `value ‖ write_ms`: a timed value's stored bytes.
pub(crate) fn append_time(value: &[u8], write_ms: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + TIME_LEN);
    v.extend_from_slice(value);
    v.extend_from_slice(&write_ms.to_le_bytes());
    v
}

/// Splits a timed value's stored bytes into the user value and the write
/// time; `None` when it is too short to hold a time (damaged).
#[inline]
pub(crate) fn split(stored: &[u8]) -> Option<(&[u8], u64)> {
    let at = stored.len().checked_sub(TIME_LEN)?;
    let (v, t) = stored.split_at(at);
    Some((v, u64::from_le_bytes(t.try_into().ok()?)))
}

/// The error for a timed value too short to hold its time.
pub(crate) fn short_value(key: &[u8]) -> crate::Error {
    crate::Error::Internal(format!(
        "timed value of key {} is shorter than its {TIME_LEN}-byte write time",
        crate::error::escape_key(key)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_write_time_plus_ttl_at_or_before_now() {
        let ttl = Some(Duration::from_millis(100));
        let e = Expiry::at(ttl, 1_000);
        assert!(e.expired(899));
        assert!(e.expired(900), "900 + 100 <= 1000");
        assert!(!e.expired(901));
        assert!(Expiry::at(None, 1_000).is_never());
        // Before the epoch plus the TTL, nothing can have expired.
        assert!(Expiry::at(ttl, 50).is_never());
        assert!(!Expiry::at(ttl, 50).expired(0));
        // At exactly the TTL, a value written at 0 has expired.
        assert!(Expiry::at(ttl, 100).expired(0));
        assert!(Expiry::at(Some(Duration::MAX), 2_000_000_000_000).is_never());
    }

    #[test]
    fn stored_bytes_round_trip_and_short_ones_are_refused() {
        let s = append_time(b"value", 0x0102_0304_0506_0708);
        assert_eq!(s.len(), 5 + TIME_LEN);
        assert_eq!(&s[5..], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(split(&s), Some((&b"value"[..], 0x0102_0304_0506_0708)));
        assert_eq!(split(&append_time(b"", 7)), Some((&b""[..], 7)));
        assert_eq!(split(b"1234567"), None);
    }
}
