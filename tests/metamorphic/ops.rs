//! The operations of a metamorphic run and their random generator.
//!
//! Operations name snapshots, iterators and transactions by slot
//! (`0..SLOTS`); an operation on an empty slot does nothing, in the model
//! and in the engine alike, so any subsequence of a generated sequence is
//! itself a valid sequence (what the reducer relies on).

use std::fmt;
use std::ops::Bound;

use crate::common::Rng;

/// Slots for each of snapshots, iterators and transactions.
pub const SLOTS: u64 = 4;

pub type Key = Vec<u8>;
pub type Value = Vec<u8>;

/// A scan's bounds, direction and the most pairs it reads.
#[derive(Clone, Debug)]
pub struct Scan {
    pub lo: Bound<Key>,
    pub hi: Bound<Key>,
    pub reverse: bool,
    pub limit: usize,
}

/// One step of a run.
#[derive(Clone, Debug)]
pub enum Op {
    Put {
        key: Key,
        value: Value,
        sync: bool,
    },
    Delete {
        key: Key,
        sync: bool,
    },
    /// `merge` of `operand` (every option set has the append operator,
    /// `,` between pieces).
    Merge {
        key: Key,
        operand: Value,
        sync: bool,
    },
    /// `delete_range(lo..hi)`.
    DeleteRange {
        lo: Key,
        hi: Key,
        sync: bool,
    },
    Batch {
        ops: Vec<(Key, Option<Value>)>,
        sync: bool,
    },
    Get {
        key: Key,
    },
    Scan(Scan),
    Prefix {
        prefix: Key,
        reverse: bool,
    },
    SnapshotTake {
        id: usize,
    },
    SnapshotGet {
        id: usize,
        key: Key,
    },
    SnapshotScan {
        id: usize,
        scan: Scan,
    },
    SnapshotRelease {
        id: usize,
    },
    /// An iterator over the database as of now, read later a few pairs at
    /// a time while writes, flushes and compactions go on.
    IterOpen {
        id: usize,
        scan: Scan,
    },
    IterNext {
        id: usize,
        n: usize,
    },
    IterClose {
        id: usize,
    },
    TxnBegin {
        id: usize,
    },
    TxnGet {
        id: usize,
        key: Key,
    },
    TxnGetForUpdate {
        id: usize,
        key: Key,
    },
    TxnPut {
        id: usize,
        key: Key,
        value: Value,
    },
    TxnDelete {
        id: usize,
        key: Key,
    },
    TxnScan {
        id: usize,
        scan: Scan,
    },
    TxnCommit {
        id: usize,
        sync: bool,
    },
    TxnRollback {
        id: usize,
    },
    Flush,
    CompactRange {
        lo: Option<Key>,
        hi: Option<Key>,
    },
    WaitForCompactions,
    Verify,
    Reopen,
    /// Power loss (on the in-memory file system; a reopen elsewhere).
    Crash {
        seed: u64,
    },
}

fn hex(k: &[u8]) -> String {
    if k.iter().all(|b| b.is_ascii_alphanumeric()) {
        String::from_utf8_lossy(k).into_owned()
    } else {
        k.iter().map(|b| format!("{b:02x}")).collect::<String>() + "h"
    }
}

fn bound(b: &Bound<Key>, lo: bool) -> String {
    match (b, lo) {
        (Bound::Unbounded, _) => String::new(),
        (Bound::Included(k), true) => format!("[{}", hex(k)),
        (Bound::Excluded(k), true) => format!("({}", hex(k)),
        (Bound::Included(k), false) => format!("{}]", hex(k)),
        (Bound::Excluded(k), false) => format!("{})", hex(k)),
    }
}

impl fmt::Display for Scan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}{} limit {}",
            bound(&self.lo, true),
            bound(&self.hi, false),
            if self.reverse { " rev" } else { "" },
            self.limit
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = |v: &Value| format!("<{} bytes>", v.len());
        let s = |sync: &bool| if *sync { " sync" } else { "" };
        match self {
            Op::Put { key, value, sync } => write!(f, "put {} {}{}", hex(key), v(value), s(sync)),
            Op::Merge { key, operand, sync } => {
                write!(f, "merge {} {}{}", hex(key), v(operand), s(sync))
            }
            Op::Delete { key, sync } => write!(f, "delete {}{}", hex(key), s(sync)),
            Op::DeleteRange { lo, hi, sync } => {
                write!(f, "delete_range {}..{}{}", hex(lo), hex(hi), s(sync))
            }
            Op::Batch { ops, sync } => {
                write!(f, "batch{} [", s(sync))?;
                for (k, val) in ops {
                    match val {
                        Some(val) => write!(f, " put {} {}", hex(k), v(val))?,
                        None => write!(f, " delete {}", hex(k))?,
                    }
                }
                write!(f, " ]")
            }
            Op::Get { key } => write!(f, "get {}", hex(key)),
            Op::Scan(sc) => write!(f, "scan {sc}"),
            Op::Prefix { prefix, reverse } => {
                write!(
                    f,
                    "prefix {}{}",
                    hex(prefix),
                    if *reverse { " rev" } else { "" }
                )
            }
            Op::SnapshotTake { id } => write!(f, "snapshot#{id} take"),
            Op::SnapshotGet { id, key } => write!(f, "snapshot#{id} get {}", hex(key)),
            Op::SnapshotScan { id, scan } => write!(f, "snapshot#{id} scan {scan}"),
            Op::SnapshotRelease { id } => write!(f, "snapshot#{id} release"),
            Op::IterOpen { id, scan } => write!(f, "iter#{id} open {scan}"),
            Op::IterNext { id, n } => write!(f, "iter#{id} next {n}"),
            Op::IterClose { id } => write!(f, "iter#{id} close"),
            Op::TxnBegin { id } => write!(f, "txn#{id} begin"),
            Op::TxnGet { id, key } => write!(f, "txn#{id} get {}", hex(key)),
            Op::TxnGetForUpdate { id, key } => write!(f, "txn#{id} get_for_update {}", hex(key)),
            Op::TxnPut { id, key, value } => write!(f, "txn#{id} put {} {}", hex(key), v(value)),
            Op::TxnDelete { id, key } => write!(f, "txn#{id} delete {}", hex(key)),
            Op::TxnScan { id, scan } => write!(f, "txn#{id} scan {scan}"),
            Op::TxnCommit { id, sync } => write!(f, "txn#{id} commit{}", s(sync)),
            Op::TxnRollback { id } => write!(f, "txn#{id} rollback"),
            Op::Flush => write!(f, "flush"),
            Op::CompactRange { lo, hi } => write!(
                f,
                "compact_range {}..{}",
                lo.as_deref().map(hex).unwrap_or_default(),
                hi.as_deref().map(hex).unwrap_or_default()
            ),
            Op::WaitForCompactions => write!(f, "wait_for_compactions"),
            Op::Verify => write!(f, "verify"),
            Op::Reopen => write!(f, "reopen"),
            Op::Crash { seed } => write!(f, "crash (seed {seed})"),
        }
    }
}

/// Draws operation sequences. Keys come from a small alphabet so that
/// writes overwrite and delete each other, with now and then a long key;
/// values carry the index of the operation that wrote them, so that every
/// state of a run is distinct.
pub struct Generator {
    rng: Rng,
    index: usize,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng(seed ^ 0x6d65_7461),
            index: 0,
        }
    }

    fn key(&mut self) -> Key {
        let r = &mut self.rng;
        if r.one_in(20) {
            // A long key sharing a prefix with the short ones.
            let mut k = vec![b'a' + r.below(8) as u8];
            k.extend((0..r.below(200)).map(|i| b'a' + (i % 26) as u8));
            k
        } else {
            (0..1 + r.below(3))
                .map(|_| b'a' + r.below(8) as u8)
                .collect()
        }
    }

    fn value(&mut self) -> Value {
        let r = &mut self.rng;
        let len = match r.below(40) {
            0 => 2000 + r.below(6000) as usize,
            1..=3 => 0,
            _ => r.below(400) as usize,
        };
        let mut v = format!("v{}:", self.index).into_bytes();
        v.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(self.index as u8)));
        v
    }

    fn slot(&mut self) -> usize {
        self.rng.below(SLOTS) as usize
    }

    fn key_bound(&mut self) -> Bound<Key> {
        match self.rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.key()),
            _ => Bound::Excluded(self.key()),
        }
    }

    fn scan(&mut self) -> Scan {
        Scan {
            lo: self.key_bound(),
            hi: self.key_bound(),
            reverse: self.rng.one_in(2),
            limit: 1 + self.rng.below(60) as usize,
        }
    }

    fn sync(&mut self) -> bool {
        self.rng.one_in(8)
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        self.index += 1;
        let choice = self.rng.below(1000);
        match choice {
            0..=219 => Op::Put {
                key: self.key(),
                value: self.value(),
                sync: self.sync(),
            },
            220..=249 => Op::Merge {
                key: self.key(),
                operand: self.value(),
                sync: self.sync(),
            },
            250..=314 => Op::Delete {
                key: self.key(),
                sync: self.sync(),
            },
            315..=329 => Op::DeleteRange {
                lo: self.key(),
                hi: self.key(),
                sync: self.sync(),
            },
            330..=389 => {
                let n = self.rng.below(8) as usize;
                let ops = (0..n)
                    .map(|_| {
                        let k = self.key();
                        let v = (!self.rng.one_in(4)).then(|| self.value());
                        (k, v)
                    })
                    .collect();
                Op::Batch {
                    ops,
                    sync: self.sync(),
                }
            }
            390..=519 => Op::Get { key: self.key() },
            520..=559 => Op::Scan(self.scan()),
            560..=574 => Op::Prefix {
                prefix: (0..self.rng.below(3))
                    .map(|_| b'a' + self.rng.below(8) as u8)
                    .collect(),
                reverse: self.rng.one_in(2),
            },
            575..=594 => Op::SnapshotTake { id: self.slot() },
            595..=634 => Op::SnapshotGet {
                id: self.slot(),
                key: self.key(),
            },
            635..=654 => Op::SnapshotScan {
                id: self.slot(),
                scan: self.scan(),
            },
            655..=664 => Op::SnapshotRelease { id: self.slot() },
            665..=684 => Op::IterOpen {
                id: self.slot(),
                scan: self.scan(),
            },
            685..=724 => Op::IterNext {
                id: self.slot(),
                n: 1 + self.rng.below(10) as usize,
            },
            725..=729 => Op::IterClose { id: self.slot() },
            730..=754 => Op::TxnBegin { id: self.slot() },
            755..=779 => Op::TxnGet {
                id: self.slot(),
                key: self.key(),
            },
            780..=789 => Op::TxnGetForUpdate {
                id: self.slot(),
                key: self.key(),
            },
            790..=829 => Op::TxnPut {
                id: self.slot(),
                key: self.key(),
                value: self.value(),
            },
            830..=844 => Op::TxnDelete {
                id: self.slot(),
                key: self.key(),
            },
            845..=859 => Op::TxnScan {
                id: self.slot(),
                scan: self.scan(),
            },
            860..=889 => Op::TxnCommit {
                id: self.slot(),
                sync: self.sync(),
            },
            890..=899 => Op::TxnRollback { id: self.slot() },
            900..=929 => Op::Flush,
            930..=949 => Op::CompactRange {
                lo: (!self.rng.one_in(3)).then(|| self.key()),
                hi: (!self.rng.one_in(3)).then(|| self.key()),
            },
            950..=959 => Op::WaitForCompactions,
            960..=969 => Op::Verify,
            970..=984 => Op::Reopen,
            _ => Op::Crash {
                seed: self.rng.next(),
            },
        }
    }

    /// `n` operations.
    pub fn ops(seed: u64, n: usize) -> Vec<Op> {
        let mut g = Generator::new(seed);
        (0..n).map(|_| g.next_op()).collect()
    }
}
