//! Runs an operation sequence on a database and on the model side by side;
//! the first answer that differs is a divergence.

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;

use lightning_db::fs::FileSystem;
use lightning_db::testing::{CrashMode, FaultFs};
use lightning_db::{Db, Error, Iter, Snapshot, Transaction, WalRecoveryMode, WriteBatch};
use lightning_db::{Options, WriteOptions};

use crate::config::{Config, FsKind};
use crate::model::{scan_pairs, IterModel, Model, State, TxnModel, Write};
use crate::ops::{Op, Scan, SLOTS};

/// What a run observed: one line per operation with an answer (reads,
/// commits, recoveries), for comparing runs of the same sequence.
pub type Log = Vec<String>;

/// A divergence: the index of the operation and what differed.
#[derive(Debug)]
pub struct Divergence {
    pub at: usize,
    pub what: String,
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn show(pairs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let keys: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v[..v.len().min(12)])
            )
        })
        .collect();
    format!("{} pairs [{}]", pairs.len(), keys.join(" "))
}

fn show_value(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "absent".into(),
        Some(v) => format!(
            "{} ({} bytes)",
            String::from_utf8_lossy(&v[..v.len().min(12)]),
            v.len()
        ),
    }
}

fn collect(
    it: impl Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>,
    limit: usize,
) -> Result<Pairs, String> {
    it.take(limit)
        .map(|r| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn range_of(s: &Scan) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (s.lo.clone(), s.hi.clone())
}

/// An engine iterator in its direction.
type DynIter =
    Box<dyn Iterator<Item = lightning_db::Result<(lightning_db::Bytes, lightning_db::Bytes)>>>;

fn directed(it: Iter, reverse: bool) -> DynIter {
    if reverse {
        Box::new(it.rev())
    } else {
        Box::new(it)
    }
}

/// The database under test and its handles.
struct Engine {
    db: Option<Db>,
    dir: PathBuf,
    fault: Option<Arc<FaultFs>>,
    _tmp: Option<tempfile::TempDir>,
    opts: Options,
    snapshots: Vec<Option<Snapshot>>,
    iters: Vec<Option<DynIter>>,
    txns: Vec<Option<Transaction>>,
}

impl Engine {
    fn new(cfg: &Config) -> Engine {
        let mut opts = cfg.opts.clone();
        let (dir, fault, tmp) = match cfg.fs {
            FsKind::Fault => {
                let fs = Arc::new(FaultFs::new());
                opts.fs = fs.clone() as Arc<dyn FileSystem>;
                (PathBuf::from("/db"), Some(fs), None)
            }
            FsKind::Posix => {
                let t = tempfile::tempdir().unwrap();
                (t.path().join("db"), None, Some(t))
            }
        };
        let db = Db::open(&dir, opts.clone()).unwrap_or_else(|e| panic!("first open: {e}"));
        let slots = SLOTS as usize;
        Engine {
            db: Some(db),
            dir,
            fault,
            _tmp: tmp,
            opts,
            snapshots: (0..slots).map(|_| None).collect(),
            iters: (0..slots).map(|_| None).collect(),
            txns: (0..slots).map(|_| None).collect(),
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }

    fn drop_handles(&mut self) {
        self.snapshots.iter_mut().for_each(|s| *s = None);
        self.iters.iter_mut().for_each(|s| *s = None);
        self.txns.iter_mut().for_each(|s| *s = None);
    }

    fn reopen(&mut self) -> Result<(), String> {
        self.drop_handles();
        if let Some(db) = self.db.take() {
            db.close().map_err(|e| format!("close: {e}"))?;
        }
        self.db = Some(Db::open(&self.dir, self.opts.clone()).map_err(|e| format!("reopen: {e}"))?);
        Ok(())
    }

    fn dump(&self) -> Result<State, String> {
        self.db()
            .iter()
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// Runs `ops` under `cfg`; `Ok(log)` when every answer matched the model.
pub fn run(cfg: &Config, ops: &[Op]) -> Result<Log, Divergence> {
    let mut e = Engine::new(cfg);
    let mut m = Model::new();
    let mut log = Log::new();
    for (at, op) in ops.iter().enumerate() {
        step(&mut e, &mut m, op, &mut log).map_err(|what| Divergence { at, what })?;
    }
    // The end state, and once more after a clean reopen.
    let check_all = |e: &Engine, m: &Model, what: &str| -> Result<(), String> {
        let got = e.dump()?;
        if got != m.state {
            return Err(format!(
                "{what}: database {} but model {}",
                show(&to_pairs(&got)),
                show(&to_pairs(&m.state))
            ));
        }
        Ok(())
    };
    let end = ops.len();
    check_all(&e, &m, "final state").map_err(|what| Divergence { at: end, what })?;
    e.reopen().map_err(|what| Divergence { at: end, what })?;
    m.all_durable();
    check_all(&e, &m, "final state after reopen").map_err(|what| Divergence { at: end, what })?;
    if let Some(db) = e.db.take() {
        db.close().map_err(|e| Divergence {
            at: end,
            what: format!("close: {e}"),
        })?;
    }
    Ok(log)
}

fn to_pairs(s: &State) -> Pairs {
    s.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
    show: impl Fn(&T) -> String,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: database says {}, model says {}",
            show(&got),
            show(&want)
        ))
    }
}

fn write_opts(sync: bool) -> WriteOptions {
    WriteOptions::default().sync(sync)
}

/// Runs one operation on both and compares.
fn step(e: &mut Engine, m: &mut Model, op: &Op, log: &mut Log) -> Result<(), String> {
    match op {
        Op::Put { key, value, sync } => {
            e.db()
                .put_opt(key, value, &write_opts(*sync))
                .map_err(|x| x.to_string())?;
            m.apply(&vec![(key.clone(), Some(value.clone()))], *sync);
        }
        Op::Delete { key, sync } => {
            e.db()
                .delete_opt(key, &write_opts(*sync))
                .map_err(|x| x.to_string())?;
            m.apply(&vec![(key.clone(), None)], *sync);
        }
        Op::Merge { key, operand, sync } => {
            e.db()
                .merge_opt(key, operand, &write_opts(*sync))
                .map_err(|x| x.to_string())?;
            // As a put of the folded value: what replaying it gives too.
            let folded = match m.state.get(key) {
                Some(old) => [old.as_slice(), b",", operand.as_slice()].concat(),
                None => operand.clone(),
            };
            m.apply(&vec![(key.clone(), Some(folded))], *sync);
        }
        Op::DeleteRange { lo, hi, sync } => {
            e.db()
                .delete_range_opt(lo.clone()..hi.clone(), &write_opts(*sync))
                .map_err(|x| x.to_string())?;
            m.apply_delete_range(lo, hi, *sync);
        }
        Op::Batch { ops, sync } => {
            let mut b = WriteBatch::new();
            for (k, v) in ops {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                }
            }
            e.db()
                .write_opt(b, &write_opts(*sync))
                .map_err(|x| x.to_string())?;
            if !ops.is_empty() {
                m.apply(ops, *sync);
            }
        }
        Op::Get { key } => {
            let got = e
                .db()
                .get(key)
                .map_err(|x| x.to_string())?
                .map(|v| v.to_vec());
            let want = m.state.get(key).cloned();
            log.push(format!("get {}", show_value(&want)));
            expect_eq("get", got, want, show_value)?;
        }
        Op::Scan(sc) => {
            let got = collect(directed(e.db().range(range_of(sc)), sc.reverse), sc.limit)?;
            let want = scan_pairs(&m.state, sc);
            log.push(format!("scan {}", show(&want)));
            expect_eq("scan", got, want, |p| show(p))?;
        }
        Op::Prefix { prefix, reverse } => {
            let it = e.db().prefix(prefix);
            let got = collect(directed(it, *reverse), usize::MAX)?;
            let mut want: Pairs = m
                .state
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if *reverse {
                want.reverse();
            }
            log.push(format!("prefix {}", show(&want)));
            expect_eq("prefix", got, want, |p| show(p))?;
        }
        Op::SnapshotTake { id } => {
            e.snapshots[*id] = Some(e.db().snapshot());
            m.snapshots[*id] = Some(m.state.clone());
        }
        Op::SnapshotGet { id, key } => {
            if let (Some(s), Some(ms)) = (&e.snapshots[*id], &m.snapshots[*id]) {
                let got = s.get(key).map_err(|x| x.to_string())?.map(|v| v.to_vec());
                let want = ms.get(key).cloned();
                log.push(format!("snapshot get {}", show_value(&want)));
                expect_eq("snapshot get", got, want, show_value)?;
            }
        }
        Op::SnapshotScan { id, scan } => {
            if let (Some(s), Some(ms)) = (&e.snapshots[*id], &m.snapshots[*id]) {
                let got = collect(directed(s.range(range_of(scan)), scan.reverse), scan.limit)?;
                let want = scan_pairs(ms, scan);
                log.push(format!("snapshot scan {}", show(&want)));
                expect_eq("snapshot scan", got, want, |p| show(p))?;
            }
        }
        Op::SnapshotRelease { id } => {
            e.snapshots[*id] = None;
            m.snapshots[*id] = None;
        }
        Op::IterOpen { id, scan } => {
            e.iters[*id] = Some(directed(e.db().range(range_of(scan)), scan.reverse));
            let all = Scan {
                limit: usize::MAX,
                ..scan.clone()
            };
            m.iters[*id] = Some(IterModel {
                pairs: scan_pairs(&m.state, &all),
                pos: 0,
            });
        }
        Op::IterNext { id, n } => {
            if let (Some(it), Some(mi)) = (&mut e.iters[*id], &mut m.iters[*id]) {
                let got = collect(it.by_ref(), *n)?;
                let end = (mi.pos + n).min(mi.pairs.len());
                let want = mi.pairs[mi.pos..end].to_vec();
                mi.pos = end;
                log.push(format!("iter next {}", show(&want)));
                expect_eq("iterator next", got, want, |p| show(p))?;
            }
        }
        Op::IterClose { id } => {
            e.iters[*id] = None;
            m.iters[*id] = None;
        }
        Op::TxnBegin { id } => {
            e.txns[*id] = Some(e.db().transaction());
            m.txns[*id] = Some(TxnModel {
                snapshot: m.state.clone(),
                snapshot_seq: m.seq,
                writes: Default::default(),
                for_update: Vec::new(),
            });
        }
        Op::TxnGet { id, key } | Op::TxnGetForUpdate { id, key } => {
            let for_update = matches!(op, Op::TxnGetForUpdate { .. });
            if let (Some(t), Some(mt)) = (&mut e.txns[*id], &mut m.txns[*id]) {
                let got = if for_update {
                    t.get_for_update(key)
                } else {
                    t.get(key)
                }
                .map_err(|x| x.to_string())?
                .map(|v| v.to_vec());
                if for_update && !mt.for_update.contains(key) {
                    mt.for_update.push(key.clone());
                }
                let want = match mt.writes.get(key) {
                    Some(own) => own.clone(),
                    None => mt.snapshot.get(key).cloned(),
                };
                log.push(format!("txn get {}", show_value(&want)));
                expect_eq("transaction get", got, want, show_value)?;
            }
        }
        Op::TxnPut { id, key, value } => {
            if let (Some(t), Some(mt)) = (&mut e.txns[*id], &mut m.txns[*id]) {
                t.put(key, value);
                mt.writes.insert(key.clone(), Some(value.clone()));
            }
        }
        Op::TxnDelete { id, key } => {
            if let (Some(t), Some(mt)) = (&mut e.txns[*id], &mut m.txns[*id]) {
                t.delete(key);
                mt.writes.insert(key.clone(), None);
            }
        }
        Op::TxnScan { id, scan } => {
            if let (Some(t), Some(mt)) = (&e.txns[*id], &m.txns[*id]) {
                let it = t.range(range_of(scan));
                let got: Pairs = if scan.reverse {
                    collect(it.rev(), scan.limit)?
                } else {
                    collect(it, scan.limit)?
                };
                let mut view = mt.snapshot.clone();
                for (k, v) in &mt.writes {
                    match v {
                        Some(v) => view.insert(k.clone(), v.clone()),
                        None => view.remove(k),
                    };
                }
                let want = scan_pairs(&view, scan);
                log.push(format!("txn scan {}", show(&want)));
                expect_eq("transaction scan", got, want, |p| show(p))?;
            }
        }
        Op::TxnCommit { id, sync } => {
            if let (Some(t), Some(mt)) = (e.txns[*id].take(), m.txns[*id].take()) {
                let got = t.commit_opt(&write_opts(*sync));
                let conflict = if mt.writes.is_empty() && mt.for_update.is_empty() {
                    None
                } else {
                    m.conflicts(&mt)
                };
                match (&got, &conflict) {
                    (Ok(()), None) => {
                        log.push("txn commit ok".into());
                        if !mt.writes.is_empty() {
                            let w: Write = mt.writes.into_iter().collect();
                            m.apply(&w, *sync);
                        }
                    }
                    (Err(Error::Conflict { .. }), Some(_)) => {
                        log.push("txn commit conflict".into())
                    }
                    _ => {
                        return Err(format!(
                            "transaction commit: database says {got:?}, model says {}",
                            match conflict {
                                Some(k) => format!("conflict on {}", String::from_utf8_lossy(&k)),
                                None => "ok".into(),
                            }
                        ))
                    }
                }
            }
        }
        Op::TxnRollback { id } => {
            if let Some(t) = e.txns[*id].take() {
                t.rollback();
            }
            m.txns[*id] = None;
        }
        Op::Flush => {
            e.db().flush().map_err(|x| format!("flush: {x}"))?;
            m.all_durable();
        }
        Op::CompactRange { lo, hi } => {
            let lo = lo.clone().map_or(Bound::Unbounded, Bound::Included);
            let hi = hi.clone().map_or(Bound::Unbounded, Bound::Included);
            e.db()
                .compact_range::<Vec<u8>, _>((lo, hi))
                .map_err(|x| format!("compact_range: {x}"))?;
            m.all_durable();
        }
        Op::WaitForCompactions => {
            e.db()
                .wait_for_compactions()
                .map_err(|x| format!("wait_for_compactions: {x}"))?;
        }
        Op::Verify => {
            let r = e.db().verify().map_err(|x| format!("verify: {x}"))?;
            if !r.is_ok() {
                return Err(format!("verify found problems: {:?}", r.problems));
            }
        }
        Op::Reopen => {
            e.reopen()?;
            m.all_durable();
            m.drop_handles();
        }
        Op::Crash { seed } => match e.fault.clone() {
            None => {
                // The real file system cannot lose power here.
                log.push(format!(
                    "crash recovered {0} of {0} pending batches (a clean reopen)",
                    m.pending.len()
                ));
                e.reopen()?;
                m.all_durable();
                m.drop_handles();
            }
            Some(fs) => {
                e.drop_handles();
                fs.power_off();
                drop(e.db.take());
                let mut mode = CrashMode::random(*seed);
                if e.opts.wal_recovery_mode == WalRecoveryMode::TolerateTornTail {
                    // That mode trusts the disk to write pages in order: a
                    // garbled page followed by intact data is corruption.
                    mode.tear_last_page = false;
                }
                fs.crash(*seed, mode);
                e.db = Some(
                    Db::open(&e.dir, e.opts.clone())
                        .map_err(|x| format!("reopen after crash ({mode:?}): {x}"))?,
                );
                let got = e.dump()?;
                let Some((kept, state)) = m.crash_candidates().into_iter().find(|(_, s)| *s == got)
                else {
                    return Err(format!(
                        "after the crash ({mode:?}) the database holds {}, which is no prefix of the {} batches since the last sync (durable: {})",
                        show(&to_pairs(&got)),
                        m.pending.len(),
                        show(&to_pairs(&m.durable))
                    ));
                };
                log.push(format!(
                    "crash recovered {kept} of {} pending batches",
                    m.pending.len()
                ));
                m.recovered(kept, state);
            }
        },
    }
    Ok(())
}
