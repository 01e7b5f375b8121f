//! Batched point reads: many keys against one superversion and one
//! sequence number.

use bytes::Bytes;

use super::{DbInner, Tree};
use crate::error::Result;
use crate::key::compare_user_keys;
use crate::key::SeqNo;
use crate::memtable::Lookup;
use crate::sst::filter_hash;
use crate::version::version::Located;

impl DbInner {
    /// The values of `keys` (in the caller's order) in `tree` at `seq`
    /// (`None`: the latest state), all read from one superversion at one
    /// sequence number: each result is exactly what `get` at that
    /// sequence number returns. The row cache is not consulted (it answers
    /// single gets).
    ///
    /// Keys are looked up in key order, so that keys close together read
    /// each file's pages in order. When this thread's reads have been
    /// waiting for the disk ([`reads_ahead`]), the batch goes in stages
    /// instead: each key's index descent (index pages are pinned in
    /// memory) finds its data block and asks the OS to read it in, and
    /// only then are the blocks read, so that the batch's disk reads
    /// overlap instead of following one another. With every block in
    /// memory the stages cost more than they save, and are skipped (a
    /// staged batch measured 0.75-0.95x the plain one; so did a pass that
    /// only prefetched every key's filter lines, or the next key's block
    /// into the CPU cache).
    pub(crate) fn multi_get(
        &self,
        tree: &Tree,
        seq: Option<SeqNo>,
        keys: &[&[u8]],
    ) -> Vec<Result<Option<Bytes>>> {
        let sv = tree.sv.load_full();
        let seq =
            seq.unwrap_or_else(|| self.visible_seq.load(std::sync::atomic::Ordering::Acquire));
        let hashes: Vec<u64> = keys.iter().map(|k| filter_hash(k)).collect();
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| compare_user_keys(keys[a], keys[b]));
        let merge = || tree.merge_operator();
        let expiry = tree.expiry(&*self.opts.clock);
        let staged = keys.len() > 1 && reads_ahead();
        // Staged: the memtables' answers, then each other key's data block.
        let mut found: Vec<Option<Lookup>> = Vec::new();
        let mut located: Vec<Option<Located>> = Vec::new();
        if staged {
            found = order
                .iter()
                .map(|&i| sv.mem_get(keys[i], hashes[i], seq))
                .collect();
            located = order
                .iter()
                .zip(&found)
                .map(|(&i, f)| match f {
                    Some(_) => None,
                    None => sv.version.locate(keys[i], hashes[i], seq),
                })
                .collect();
        }
        let mut out: Vec<(usize, Result<Option<Bytes>>)> = Vec::with_capacity(keys.len());
        for (n, &i) in order.iter().enumerate() {
            let timer = self.metrics.op_timer();
            let r = if staged {
                match found.get_mut(n).and_then(Option::take) {
                    Some(l) => Ok(Some(l)),
                    None => {
                        let at = located.get_mut(n).and_then(Option::take);
                        sv.version.get_located(keys[i], hashes[i], seq, at)
                    }
                }
                .and_then(|l| sv.finish_get(keys[i], l, seq, expiry, &merge))
            } else {
                sv.get_hashed(keys[i], hashes[i], seq, expiry, &merge)
            };
            let got = match &r {
                Ok(Some(v)) => Some(v.len()),
                _ => None,
            };
            self.metrics
                .record_get(got, crate::sst::take_filter_counts(), timer);
            out.push((i, r));
        }
        out.sort_unstable_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    }
}

/// [`DbInner::multi_get`]'s choice: stage the batch (ask the OS for every
/// data block first) when this thread has taken major page faults (reads
/// of mapped file pages that were not in memory) since its last batch
/// began. One `getrusage` per batch; Linux only (elsewhere never staged).
fn reads_ahead() -> bool {
    match READS_AHEAD.with(std::cell::Cell::get) {
        ALWAYS => return true,
        NEVER => return false,
        _ => {}
    }
    thread_local! {
        /// This thread's major faults when its last batch began.
        static LAST_FAULTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let now = major_faults();
    LAST_FAULTS.with(|last| last.replace(now) < now)
}

/// This thread's major page faults so far.
#[cfg(target_os = "linux")]
fn major_faults() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value, which getrusage
    // overwrites.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into `r`, a valid rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) } != 0 {
        return 0;
    }
    u64::try_from(r.ru_majflt).unwrap_or(0)
}

/// This thread's major page faults so far: not measured here.
#[cfg(not(target_os = "linux"))]
fn major_faults() -> u64 {
    0
}

/// [`reads_ahead`] decides (the default).
const AUTO: u8 = 0;
/// Every batch is staged.
const ALWAYS: u8 = 1;
/// No batch is staged.
const NEVER: u8 = 2;
thread_local! {
    /// This thread's mode, set by [`set_multi_get_reads_ahead`].
    static READS_AHEAD: std::cell::Cell<u8> = const { std::cell::Cell::new(AUTO) };
}

/// Test hook: `Some(true)` stages every `multi_get` batch of the calling
/// thread, `Some(false)` none, `None` lets each batch decide (the default).
#[cfg(feature = "testing")]
pub(crate) fn set_multi_get_reads_ahead(mode: Option<bool>) {
    let v = match mode {
        None => AUTO,
        Some(true) => ALWAYS,
        Some(false) => NEVER,
    };
    READS_AHEAD.with(|m| m.set(v));
}

/// Keys as byte slices.
pub(crate) fn key_slices<K: AsRef<[u8]>>(keys: &[K]) -> Vec<&[u8]> {
    keys.iter().map(|k| k.as_ref()).collect()
}
