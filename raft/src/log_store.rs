//! [`LogStore`]: the Raft log, the vote and the committed log id, in the
//! `raft_log` and `raft_meta` keyspaces.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use lightning_db::{Db, Keyspace, WriteBatch, WriteOptions};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};

use crate::{any, from_json, read_logs_err, to_json, write_logs_err, NodeId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log store of one node. Clones share the database (openraft reads
/// the log through a clone while it appends).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Db>,
    log: Keyspace,
    meta: Keyspace,
}

/// The key of the entry at `index`: big-endian, so keys sort as indexes.
fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    /// The log store in `db` (its keyspaces are created if missing).
    pub fn new(db: Arc<Db>) -> Result<LogStore, lightning_db::Error> {
        Ok(LogStore {
            log: db.keyspace("raft_log")?,
            meta: db.keyspace("raft_meta")?,
            db,
        })
    }

    /// The database the log lives in.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn read_meta<T: for<'de> serde::Deserialize<'de>>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<NodeId>> {
        match self.meta.get(key).map_err(read_logs_err)? {
            Some(v) => from_json(&v).map(Some).map_err(read_logs_err),
            None => Ok(None),
        }
    }

    /// Writes `batch` and waits until it is durable.
    fn write_synced(&self, batch: WriteBatch) -> Result<(), lightning_db::Error> {
        self.db.write_opt(batch, &WriteOptions::synced())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self.log.range((start, end)) {
            let (_, v) = kv.map_err(read_logs_err)?;
            out.push(from_json(&v).map_err(read_logs_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED)?;
        let last = match self.log.iter().next_back() {
            Some(kv) => {
                let (_, v) = kv.map_err(read_logs_err)?;
                let e: Entry<TypeConfig> = from_json(&v).map_err(read_logs_err)?;
                Some(e.log_id)
            }
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut b = WriteBatch::new();
        b.put_in(
            &self.meta,
            VOTE,
            to_json(vote).map_err(|e| StorageIOError::write_vote(any(e)))?,
        );
        self.write_synced(b)
            .map_err(|e| StorageIOError::write_vote(any(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        match self
            .meta
            .get(VOTE)
            .map_err(|e| StorageIOError::read_vote(any(e)))?
        {
            Some(v) => from_json(&v)
                .map(Some)
                .map_err(|e| StorageIOError::read_vote(any(e)).into()),
            None => Ok(None),
        }
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // Not synced: a committed id that is lost only makes the node
        // learn it again from the leader.
        let v = to_json(&committed).map_err(write_logs_err)?;
        self.meta.put(COMMITTED, v).map_err(write_logs_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        // One batch: the entries become durable together, never with a
        // hole, before openraft is told.
        let mut b = WriteBatch::new();
        for e in entries {
            let v =
                to_json(&e).map_err(|err| StorageIOError::write_log_entry(e.log_id, any(err)))?;
            b.put_in(&self.log, index_key(e.log_id.index), v);
        }
        let r = self.write_synced(b);
        let result = r
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(result);
        r.map_err(write_logs_err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Entries from `log_id.index` on go (a leader's conflicting tail).
        let mut b = WriteBatch::new();
        b.delete_range_in(&self.log, index_key(log_id.index)..);
        self.write_synced(b).map_err(write_logs_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        // Entries up to `log_id.index` go, and the purge point is recorded
        // in the same batch: the log state never shows a hole.
        let mut b = WriteBatch::new();
        b.put_in(
            &self.meta,
            LAST_PURGED,
            to_json(&log_id).map_err(write_logs_err)?,
        );
        b.delete_range_in(&self.log, ..=index_key(log_id.index));
        self.write_synced(b).map_err(write_logs_err)
    }
}
