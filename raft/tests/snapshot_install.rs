//! A snapshot install that a crash interrupts is finished at the next
//! open: the map is never left cleared or half replaced under an older
//! last-applied id (openraft would then apply the wrong entries to it).

use lightning_raft::{Request, TypeConfig};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};

fn set(index: u64, key: &str, value: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
        payload: EntryPayload::Normal(Request::Set {
            key: key.into(),
            value: value.into(),
        }),
    }
}

#[tokio::test]
async fn an_interrupted_install_is_finished_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    // The leader's map and its snapshot.
    let (_log, mut a) = lightning_raft::open(tmp.path().join("a")).unwrap();
    a.apply((1..=50).map(|i| set(i, &format!("k{i:02}"), &format!("a{i}"))))
        .await
        .unwrap();
    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let data = snap.snapshot.into_inner();
    assert!(!data.is_empty());
    // A follower with other keys crashes right after recording the
    // intent to install it (the layout of docs/format.md).
    let b_dir = tmp.path().join("b");
    {
        let (_log, mut b) = lightning_raft::open(&b_dir).unwrap();
        b.apply((1..=7).map(|i| set(i, &format!("old{i}"), "x")))
            .await
            .unwrap();
        std::fs::write(b_dir.join("snapshots/install.sst"), &data).unwrap();
        let meta = serde_json::json!({ "meta": snap.meta });
        std::fs::write(b_dir.join("snapshots/install.json"), meta.to_string()).unwrap();
    }
    let (_log, mut b) = lightning_raft::open(&b_dir).unwrap();
    for i in 1..=50 {
        assert_eq!(
            b.get(format!("k{i:02}")).unwrap(),
            Some(format!("a{i}").into_bytes())
        );
    }
    assert_eq!(b.get("old3").unwrap(), None);
    let (applied, _) = b.applied_state().await.unwrap();
    assert_eq!(applied, snap.meta.last_log_id);
    assert!(!b_dir.join("snapshots/install.json").exists());
    assert!(!b_dir.join("snapshots/install.sst").exists());
    let current = b.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, snap.meta);
}
