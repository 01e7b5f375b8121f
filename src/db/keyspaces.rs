//! Creating, finding and dropping keyspaces (`docs/keyspaces.md`).
//!
//! Both changes hold the write queue (so no write group is being formed
//! and the active memtables can be replaced) and then the versions lock
//! (so the manifest edit and the new set of trees are published
//! together). A keyspace is created with one manifest edit naming it and
//! its first WAL, and dropped with one edit; either is durable before the
//! call returns, and a crash leaves it whole or absent.

use std::sync::Arc;

use super::tree::{ActiveMems, Tree};
use super::write::WriteQueue;
use super::DbInner;
use crate::error::{Error, Result};
use crate::keyspace::{DEFAULT_KEYSPACE_NAME, MAX_KEYSPACE_NAME_LEN};
use crate::memtable::MemTable;
use crate::metrics::db_event;
use crate::options::KeyspaceOptions;
use crate::version::edit::VersionEdit;
use crate::version::superversion::SuperVersion;
use crate::version::version::Version;
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;

/// Checks a keyspace name: 1 to 255 bytes.
pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_KEYSPACE_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "a keyspace name is 1 to {MAX_KEYSPACE_NAME_LEN} bytes, not {} (`{}`)",
            name.len(),
            name.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

impl DbInner {
    /// The live keyspace named `name`, if any.
    pub(crate) fn find_tree(&self, name: &str) -> Option<Arc<Tree>> {
        if name == DEFAULT_KEYSPACE_NAME {
            return Some(Arc::clone(&self.default));
        }
        self.trees.read().values().find(|t| t.name == name).cloned()
    }

    /// The names of the live keyspaces, `default` first, then by id
    /// (creation order).
    pub(crate) fn keyspace_names(&self) -> Vec<String> {
        self.trees.read().values().map(|t| t.name.clone()).collect()
    }

    /// The keyspace `name`, created when missing. `options` replace the
    /// tree options of an existing keyspace, and give a new one its own;
    /// without, a new keyspace takes `Options::keyspaces[name]` or the
    /// database's defaults.
    /// Gives open keyspace `t` the options `ko`. Its merge operator,
    /// compaction filter or TTL may change what its keys read with no
    /// write, so for the default keyspace the change lands as a change of
    /// the row cache (`RowCache::begin_change`: every entry dies).
    fn reconfigure(&self, t: &Tree, ko: &KeyspaceOptions) -> Result<()> {
        let change = self
            .row_cache_of(t)
            .map(crate::row_cache::RowCache::begin_change);
        let set = t.set_options(self.opts.with_keyspace(ko));
        drop(change);
        set?;
        self.note_ttl(t);
        Ok(())
    }

    pub(crate) fn open_keyspace(
        &self,
        name: &str,
        options: Option<&KeyspaceOptions>,
    ) -> Result<Arc<Tree>> {
        self.check_open()?;
        check_name(name)?;
        if let Some(ko) = options {
            ko.validate()?;
        }
        if let Some(t) = self.find_tree(name) {
            if let Some(ko) = options {
                self.reconfigure(&t, ko)?;
            }
            return Ok(t);
        }
        let ws = self.writable()?;
        let mut q = ws.queue.lock();
        self.check_open()?;
        if let Some(e) = self.bg_error() {
            return Err(e);
        }
        // Created by another thread since the look-up above.
        if let Some(t) = self.find_tree(name) {
            drop(q);
            if let Some(ko) = options {
                self.reconfigure(&t, ko)?;
            }
            return Ok(t);
        }
        let topts = match options {
            Some(ko) => self.opts.with_keyspace(ko),
            None => super::replay::tree_options(&self.opts, name),
        };
        let mut versions = self.versions.lock();
        let id = versions.next_keyspace_id();
        let edit = VersionEdit {
            keyspace: id,
            keyspace_added: Some(name.to_string()),
            log_number: Some(q.wal_number),
            ..VersionEdit::default()
        };
        let version = match versions.log_and_apply(
            edit,
            &self.next_file_number,
            self.visible_seq.load(Ordering::Acquire),
            topts.compaction.num_levels,
        ) {
            Ok(v) => v,
            Err(e) => {
                drop(versions);
                return Err(Error::Background(self.set_bg_error_queue_locked(e, &mut q)));
            }
        };
        let mem = Arc::new(MemTable::for_tree(q.wal_number, &topts));
        let tree = Tree::new(
            id,
            name.to_string(),
            topts,
            SuperVersion {
                mem,
                imms: Vec::new(),
                version,
            },
        );
        self.note_ttl(&tree);
        self.trees.write().insert(id, Arc::clone(&tree));
        drop(versions);
        self.publish_keyspace_change(q);
        let keyspace = name.to_string();
        db_event!(
            self.metrics,
            INFO,
            "created keyspace",
            keyspace = keyspace,
            id = id
        );
        Ok(tree)
    }

    /// Gives the write group the active memtables of the keyspaces now
    /// (the trees map changed; versions lock released) and releases the
    /// queue.
    fn publish_keyspace_change(&self, mut q: MutexGuard<'_, WriteQueue>) {
        q.active = Arc::new(ActiveMems::of(self.all_trees()));
    }

    /// Drops the keyspace `name`: one manifest edit, durable on return;
    /// its handles fail from then on with [`Error::KeyspaceDropped`], and
    /// its files are deleted once no reader holds them.
    pub(crate) fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.check_open()?;
        if name == DEFAULT_KEYSPACE_NAME {
            return Err(Error::InvalidArgument(
                "the default keyspace cannot be dropped".into(),
            ));
        }
        let ws = self.writable()?;
        let mut q = ws.queue.lock();
        self.check_open()?;
        if let Some(e) = self.bg_error() {
            return Err(e);
        }
        let Some(tree) = self.find_tree(name) else {
            return Err(Error::InvalidArgument(format!(
                "there is no keyspace named `{name}`"
            )));
        };
        let mut versions = self.versions.lock();
        let edit = VersionEdit {
            keyspace: tree.id,
            keyspace_dropped: true,
            ..VersionEdit::default()
        };
        if let Err(e) = versions.log_and_apply(
            edit,
            &self.next_file_number,
            self.visible_seq.load(Ordering::Acquire),
            tree.opts().compaction.num_levels,
        ) {
            drop(versions);
            return Err(Error::Background(self.set_bg_error_queue_locked(e, &mut q)));
        }
        tree.mark_dropped();
        self.trees.write().remove(&tree.id);
        self.dropped_keyspaces
            .lock()
            .insert(tree.id, tree.name.clone());
        // Readers that hold the old superversion keep reading it; the
        // files go when the last of them is done.
        tree.sv.store(Arc::new(SuperVersion {
            mem: Arc::new(MemTable::new(q.wal_number, 0)),
            imms: Vec::new(),
            version: Arc::new(Version::empty(tree.opts().compaction.num_levels)),
        }));
        drop(versions);
        self.publish_keyspace_change(q);
        let (keyspace, id) = (name.to_string(), tree.id);
        db_event!(
            self.metrics,
            INFO,
            "dropped keyspace",
            keyspace = keyspace,
            id = id
        );
        // Its files no longer count toward write stalls.
        self.after_version_change();
        {
            let _f = self.flush.state.lock();
            self.flush.done_cv.notify_all();
        }
        Ok(())
    }
}
