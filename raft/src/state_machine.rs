//! [`StateMachineStore`]: the replicated map (`sm_data`), what was applied
//! (`sm_meta`), and snapshots as SST files.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lightning_db::{Db, IngestOptions, Keyspace, SstWriter, WriteBatch, WriteOptions};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::{any, from_json, to_json, NodeId, Request, Response, TypeConfig};

const LAST_APPLIED: &[u8] = b"last_applied";
const LAST_MEMBERSHIP: &[u8] = b"last_membership";
const SNAPSHOT_SEQ: &[u8] = b"snapshot_seq";

/// The metadata of the current snapshot, kept beside its file.
const CURRENT_META: &str = "current.json";
/// The current snapshot's SST (absent when the map was empty).
const CURRENT_SST: &str = "current.sst";
/// A snapshot being installed: its metadata (present from the intent
/// until the install is done) and its SST (absent for an empty map).
const INSTALL_META: &str = "install.json";
const INSTALL_SST: &str = "install.sst";

/// The state machine of one node. Clones share the database (the
/// snapshot builder is a clone).
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Db>,
    data: Keyspace,
    meta: Keyspace,
    /// Where snapshots are built, received and kept.
    dir: PathBuf,
}

/// What was applied, as one snapshot of the database shows it.
type Applied = (
    Option<LogId<NodeId>>,
    StoredMembership<NodeId, openraft::BasicNode>,
);

fn sm_read(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(any(e)).into()
}

fn sm_write(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(any(e)).into()
}

fn snap_err(
    meta: Option<&SnapshotMeta<NodeId, openraft::BasicNode>>,
    write: bool,
    e: impl std::error::Error + 'static,
) -> StorageError<NodeId> {
    let sig = meta.map(|m| m.signature());
    if write {
        StorageIOError::write_snapshot(sig, any(e)).into()
    } else {
        StorageIOError::read_snapshot(sig, any(e)).into()
    }
}

/// The current snapshot's metadata file.
#[derive(Serialize, Deserialize)]
struct CurrentMeta {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
}

impl StateMachineStore {
    /// The state machine in `db` (its keyspaces are created if missing),
    /// keeping snapshots in `dir`.
    pub fn new(db: Arc<Db>, dir: PathBuf) -> Result<StateMachineStore, lightning_db::Error> {
        std::fs::create_dir_all(&dir).map_err(|e| lightning_db::Error::Io {
            path: dir.clone(),
            source: e.into(),
        })?;
        let sm = StateMachineStore {
            data: db.keyspace("sm_data")?,
            meta: db.keyspace("sm_meta")?,
            db,
            dir,
        };
        // A snapshot install a crash interrupted is finished first.
        sm.finish_install().map_err(|e| {
            lightning_db::Error::Internal(format!("finishing a snapshot install: {e}"))
        })?;
        Ok(sm)
    }

    /// The value of `key` in the replicated map, as applied on this node.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, lightning_db::Error> {
        Ok(self.data.get(key)?.map(|v| v.to_vec()))
    }

    /// What was applied: the last log id and the last membership.
    fn applied(
        &self,
        snap: Option<&lightning_db::Snapshot>,
    ) -> Result<Applied, StorageError<NodeId>> {
        let get = |k: &[u8]| match snap {
            Some(s) => s.get_in(&self.meta, k),
            None => self.meta.get(k),
        };
        let last = match get(LAST_APPLIED).map_err(sm_read)? {
            Some(v) => from_json(&v).map_err(sm_read)?,
            None => None,
        };
        let membership = match get(LAST_MEMBERSHIP).map_err(sm_read)? {
            Some(v) => from_json(&v).map_err(sm_read)?,
            None => StoredMembership::default(),
        };
        Ok((last, membership))
    }

    /// The current snapshot, if one was built or installed.
    fn read_current(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let meta_path = self.dir.join(CURRENT_META);
        let meta: CurrentMeta = match std::fs::read(&meta_path) {
            Ok(b) => from_json(&b).map_err(|e| snap_err(None, false, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snap_err(None, false, e)),
        };
        let data = match std::fs::read(self.dir.join(CURRENT_SST)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(snap_err(Some(&meta.meta), false, e)),
        };
        Ok(Some(Snapshot {
            meta: meta.meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }

    /// Carries out a snapshot install whose intent (`install.json`, and
    /// `install.sst` unless the map is empty) is on disk: the map becomes
    /// the snapshot's (cleared, the file ingested), the last-applied id
    /// and membership its, the snapshot the current one; then the intent
    /// goes, the metadata last. Each step may be done again: an install a
    /// crash interrupted is finished by running this at the next open.
    fn finish_install(&self) -> Result<(), StorageError<NodeId>> {
        let meta_path = self.dir.join(INSTALL_META);
        let meta: CurrentMeta = match std::fs::read(&meta_path) {
            Ok(b) => from_json(&b).map_err(|e| snap_err(None, false, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(snap_err(None, false, e)),
        };
        let meta = meta.meta;
        let err = |e| snap_err(Some(&meta), true, e);
        let sst = self.dir.join(INSTALL_SST);
        let data = match std::fs::read(&sst) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(err(e)),
        };
        let db_err = |e: lightning_db::Error| snap_err(Some(&meta), true, e);
        self.data.delete_range::<&[u8]>(..).map_err(db_err)?;
        if !data.is_empty() {
            self.data
                .ingest(&[&sst], &IngestOptions::default())
                .map_err(db_err)?;
        }
        let mut b = WriteBatch::new();
        b.put_in(
            &self.meta,
            LAST_APPLIED,
            to_json(&meta.last_log_id).map_err(sm_write)?,
        );
        b.put_in(
            &self.meta,
            LAST_MEMBERSHIP,
            to_json(&meta.last_membership).map_err(sm_write)?,
        );
        self.db
            .write_opt(b, &WriteOptions::synced())
            .map_err(sm_write)?;
        self.keep_current(&meta, &data)?;
        remove_if_present(&sst).map_err(err)?;
        remove_if_present(&meta_path).map_err(err)
    }

    /// Makes `data` (an SST, or empty) with `meta` the current snapshot:
    /// the file first, then the metadata, each written whole and renamed
    /// into place.
    fn keep_current(
        &self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        data: &[u8],
    ) -> Result<(), StorageError<NodeId>> {
        let err = |e| snap_err(Some(meta), true, e);
        let sst = self.dir.join(CURRENT_SST);
        if data.is_empty() {
            remove_if_present(&sst).map_err(err)?;
        } else {
            write_file(&sst, data).map_err(err)?;
        }
        let m = to_json(&CurrentMeta { meta: meta.clone() })
            .map_err(|e| snap_err(Some(meta), true, e))?;
        write_file(&self.dir.join(CURRENT_META), &m).map_err(err)
    }
}

/// Removes `path`; a file already gone is fine.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `data` to `path` durably: a temporary file, synced, renamed.
fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        // One database snapshot: the data and what was applied agree.
        let snap = self.db.snapshot();
        let (last_applied, membership) = self.applied(Some(&snap))?;
        let seq: u64 = match self.meta.get(SNAPSHOT_SEQ).map_err(sm_read)? {
            Some(v) => from_json(&v).map_err(sm_read)?,
            None => 0,
        } + 1;
        self.meta
            .put(SNAPSHOT_SEQ, to_json(&seq).map_err(sm_write)?)
            .map_err(sm_write)?;
        let snapshot_id = match &last_applied {
            Some(l) => format!("{}-{}-{seq}", l.leader_id, l.index),
            None => format!("--{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let building = self.dir.join(format!("build-{seq}.sst"));
        let mut w: Option<SstWriter> = None;
        for kv in snap.iter_in(&self.data) {
            let (k, v) = kv.map_err(|e| snap_err(Some(&meta), false, e))?;
            let writer = match &mut w {
                Some(w) => w,
                None => w.insert(
                    SstWriter::create(&building, &lightning_db::Options::default())
                        .map_err(|e| snap_err(Some(&meta), true, e))?,
                ),
            };
            writer
                .put(k, v)
                .map_err(|e| snap_err(Some(&meta), true, e))?;
        }
        let data = match w {
            Some(w) => {
                w.finish().map_err(|e| snap_err(Some(&meta), true, e))?;
                let d = std::fs::read(&building).map_err(|e| snap_err(Some(&meta), true, e))?;
                let _ = std::fs::remove_file(&building);
                d
            }
            None => Vec::new(),
        };
        self.keep_current(&meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<Applied, StorageError<NodeId>> {
        self.applied(None)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        // One batch for all the entries: data and last applied id are
        // written together. A key set twice in one call answers the value
        // of the earlier set: earlier writes are kept in `pending`.
        let mut b = WriteBatch::new();
        let mut pending: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = Default::default();
        let mut out = Vec::new();
        let mut last = None;
        let mut membership = None;
        for e in entries {
            last = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => out.push(Response::default()),
                EntryPayload::Normal(req) => {
                    let (key, new) = match req {
                        Request::Set { key, value } => (key, Some(value)),
                        Request::Delete { key } => (key, None),
                    };
                    let previous = match pending.get(&key) {
                        Some(v) => v.clone(),
                        None => self.data.get(&key).map_err(sm_read)?.map(|v| v.to_vec()),
                    };
                    match &new {
                        Some(v) => b.put_in(&self.data, &key, v),
                        None => b.delete_in(&self.data, &key),
                    }
                    pending.insert(key, new);
                    out.push(Response { previous });
                }
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(e.log_id), m));
                    out.push(Response::default());
                }
            }
        }
        if let Some(l) = last {
            b.put_in(
                &self.meta,
                LAST_APPLIED,
                to_json(&Some(l)).map_err(sm_write)?,
            );
        }
        if let Some(m) = membership {
            b.put_in(&self.meta, LAST_MEMBERSHIP, to_json(&m).map_err(sm_write)?);
        }
        if !b.is_empty() {
            self.db.write(b).map_err(sm_write)?;
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let err = |e| snap_err(Some(meta), true, e);
        // First the intent, durably: the snapshot's file and metadata. A
        // crash from here on is finished at the next open, so the map is
        // never left cleared (or half ingested) under an old last-applied
        // id, which would have openraft apply the wrong entries to it.
        let sst = self.dir.join(INSTALL_SST);
        if data.is_empty() {
            remove_if_present(&sst).map_err(err)?;
        } else {
            write_file(&sst, &data).map_err(err)?;
        }
        let m = to_json(&CurrentMeta { meta: meta.clone() })
            .map_err(|e| snap_err(Some(meta), true, e))?;
        write_file(&self.dir.join(INSTALL_META), &m).map_err(err)?;
        self.finish_install()
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        self.read_current()
    }
}
