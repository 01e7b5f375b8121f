//! openraft's own storage test suite (`openraft::testing::Suite`): every
//! case on a fresh Lightning DB, with the default options and with
//! options at the small end (`open_with_options`).

use lightning_raft::{LogStore, NodeId, StateMachineStore, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Builder {
    options: Option<lightning_db::Options>,
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let (log, sm) = match &self.options {
            None => lightning_raft::open(dir.path()).unwrap(),
            Some(o) => lightning_raft::open_with_options(dir.path(), o.clone()).unwrap(),
        };
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder { options: None }).unwrap();
}

/// The smallest memtable and the fewest of them `validate` accepts, and
/// no block cache: the suite's logs and snapshots go through flushes and
/// SST reads rather than staying in one memtable.
#[test]
fn openraft_storage_suite_with_small_memtables() {
    let o = lightning_db::Options::default()
        .write_buffer_size(64 * 1024)
        .max_write_buffer_number(2)
        .block_cache_size(0);
    Suite::test_all(Builder { options: Some(o) }).unwrap();
}
