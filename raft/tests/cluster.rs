//! A 3-node cluster in one process (the network is a map of the nodes'
//! `Raft` handles): writes through the leader while the leader, then a
//! follower, is killed and restarted from its Lightning DB directory. No
//! acknowledged write may be lost, every node ends with the same map, and
//! a node that was down while the others purged their logs catches up
//! through a snapshot (an SST ingested into its map).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lightning_raft::{NodeId, Request, StateMachineStore, TypeConfig};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};

mod checker;

/// The running nodes, by id: what the network (and a client) reaches.
#[derive(Clone, Default)]
struct Router(Arc<Mutex<HashMap<NodeId, Node>>>);

impl Router {
    fn get(&self, id: NodeId) -> Option<Raft<TypeConfig>> {
        self.0.lock().unwrap().get(&id).map(|n| n.raft.clone())
    }

    /// The node that is leader now, as its own metrics say.
    fn leader(&self) -> Option<Node> {
        let nodes = self.0.lock().unwrap();
        nodes
            .iter()
            .find(|(id, n)| {
                let m = n.raft.metrics().borrow().clone();
                m.state == ServerState::Leader && m.current_leader == Some(**id)
            })
            .map(|(_, n)| n.clone())
    }
}

struct Net {
    router: Router,
    target: NodeId,
}

/// What a call to a node that is down gets.
fn down<E: std::error::Error>(target: NodeId) -> RPCError<NodeId, BasicNode, E> {
    let e = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        format!("node {target} is down"),
    );
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for Net {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self
            .router
            .get(self.target)
            .ok_or_else(|| down(self.target))?;
        raft.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self
            .router
            .get(self.target)
            .ok_or_else(|| down(self.target))?;
        raft.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self
            .router
            .get(self.target)
            .ok_or_else(|| down(self.target))?;
        raft.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Net;
    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Net {
        Net {
            router: self.clone(),
            target,
        }
    }
}

#[derive(Clone)]
struct Node {
    raft: Raft<TypeConfig>,
    sm: StateMachineStore,
}

struct Cluster {
    router: Router,
    config: Arc<Config>,
    dirs: BTreeMap<NodeId, PathBuf>,
    nodes: BTreeMap<NodeId, Node>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    async fn new(ids: &[NodeId]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config {
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            // Small, so that logs are purged and a node that was down
            // needs a snapshot.
            snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
            max_in_snapshot_log_to_keep: 20,
            purge_batch_size: 1,
            ..Default::default()
        };
        let mut c = Cluster {
            router: Router::default(),
            config: Arc::new(config.validate().unwrap()),
            dirs: ids
                .iter()
                .map(|&id| (id, tmp.path().join(format!("node{id}"))))
                .collect(),
            nodes: BTreeMap::new(),
            _tmp: tmp,
        };
        for &id in ids {
            c.start(id).await;
        }
        c
    }

    /// Starts node `id` on its directory (as left by a previous run).
    async fn start(&mut self, id: NodeId) {
        // The previous run's database may still be closing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (log, sm) = loop {
            match lightning_raft::open(&self.dirs[&id]) {
                Ok(s) => break s,
                Err(lightning_db::Error::Locked(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("node {id}: {e}"),
            }
        };
        let raft = Raft::new(
            id,
            Arc::clone(&self.config),
            self.router.clone(),
            log,
            sm.clone(),
        )
        .await
        .unwrap();
        let node = Node { raft, sm };
        self.router.0.lock().unwrap().insert(id, node.clone());
        self.nodes.insert(id, node);
    }

    /// Stops node `id` at once: unreachable, its Raft shut down, its
    /// database closed.
    async fn kill(&mut self, id: NodeId) {
        self.router.0.lock().unwrap().remove(&id);
        let node = self.nodes.remove(&id).unwrap();
        node.raft.shutdown().await.unwrap();
    }

    async fn leader(&self) -> NodeId {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for (id, n) in &self.nodes {
                let m = n.raft.metrics().borrow().clone();
                if m.state == ServerState::Leader && m.current_leader == Some(*id) {
                    return *id;
                }
            }
            assert!(Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `key = value` through the leader, retrying on another
    /// leader until it is acknowledged.
    async fn write(&self, key: &str, value: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = self.leader().await;
            let req = Request::Set {
                key: key.as_bytes().to_vec(),
                value: value.as_bytes().to_vec(),
            };
            match self.nodes[&leader].raft.client_write(req).await {
                Ok(_) => return,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "write of {key} never acknowledged: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Waits until every running node has applied what the leader has.
    async fn settle(&self) {
        let leader = self.leader().await;
        let want = self.nodes[&leader].raft.metrics().borrow().last_log_index;
        for (id, n) in &self.nodes {
            n.raft
                .wait(Some(Duration::from_secs(30)))
                .applied_index_at_least(want, "settle")
                .await
                .unwrap_or_else(|e| panic!("node {id} did not catch up: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_survives_killing_its_leader_then_a_follower() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let members: BTreeMap<NodeId, BasicNode> = [1, 2, 3]
        .iter()
        .map(|&id| (id, BasicNode::default()))
        .collect();
    c.nodes[&1].raft.initialize(members).await.unwrap();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut n = 0u32;
    let mut write_some = |count: u32| {
        let start = n;
        n += count;
        start..n
    };
    for i in write_some(150) {
        let (k, v) = (format!("k{:03}", i % 97), format!("v{i}"));
        c.write(&k, &v).await;
        acked.insert(k, v);
    }
    // The leader dies; the others elect one and go on.
    let first = c.leader().await;
    let behind = c.nodes[&first]
        .raft
        .metrics()
        .borrow()
        .last_log_index
        .unwrap();
    c.kill(first).await;
    for i in write_some(250) {
        let (k, v) = (format!("k{:03}", i % 97), format!("v{i}"));
        c.write(&k, &v).await;
        acked.insert(k, v);
    }
    // It comes back behind purged logs: only a snapshot can bring it up
    // to date.
    let leader = c.leader().await;
    let purged = c.nodes[&leader].raft.metrics().borrow().purged;
    assert!(
        purged.is_some_and(|p| p.index > behind),
        "the leader kept the logs node {first} lacks ({purged:?}, it has up to {behind})"
    );
    c.start(first).await;
    c.settle().await;
    let m = c.nodes[&first].raft.metrics().borrow().clone();
    assert!(
        m.snapshot.is_some(),
        "node {first} caught up without a snapshot: {m:?}"
    );
    // A follower dies and comes back.
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.kill(follower).await;
    for i in write_some(100) {
        let (k, v) = (format!("k{:03}", i % 97), format!("v{i}"));
        c.write(&k, &v).await;
        acked.insert(k, v);
    }
    c.start(follower).await;
    c.settle().await;
    // Every node holds exactly the acknowledged map.
    let ids: BTreeSet<NodeId> = c.nodes.keys().copied().collect();
    assert_eq!(ids.len(), 3);
    for (id, node) in &c.nodes {
        for (k, v) in &acked {
            assert_eq!(
                node.sm.get(k).unwrap().as_deref(),
                Some(v.as_bytes()),
                "node {id}, key {k}"
            );
        }
    }
    for id in ids {
        c.kill(id).await;
    }
}

/// What one client does until `stop`: random writes (unique values) and
/// linearizable reads (`ensure_linearizable` on the leader, then its map)
/// of a few keys, each recorded with when it was called and returned. A
/// write whose outcome is unknown (the leader died under it) is recorded
/// without a return; a request refused before anything was proposed (not
/// the leader) is not recorded.
async fn client(
    router: Router,
    id: u32,
    stop: Arc<std::sync::atomic::AtomicBool>,
    epoch: Instant,
) -> Vec<checker::Op> {
    use checker::{Kind, Op};
    let now = || epoch.elapsed().as_nanos() as u64;
    let mut history = Vec::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(id);
    let mut done = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // Paced, so that each key's history stays small enough to search.
        tokio::time::sleep(Duration::from_millis(10)).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = format!("key{}", rng % 16);
        let Some(node) = router.leader() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        done += 1;
        if rng.is_multiple_of(3) {
            let value = format!("c{id}-{done}");
            let call = now();
            let req = Request::Set {
                key: key.clone().into_bytes(),
                value: value.clone().into_bytes(),
            };
            let ret = match node.raft.client_write(req).await {
                Ok(_) => Some(now()),
                Err(e) if e.forward_to_leader::<BasicNode>().is_some() => continue,
                Err(_) => None,
            };
            history.push(Op {
                key,
                kind: Kind::Write(value),
                call,
                ret,
            });
        } else {
            let call = now();
            if node.raft.ensure_linearizable().await.is_err() {
                continue;
            }
            let Ok(v) = node.sm.get(&key) else { continue };
            let ret = now();
            history.push(Op {
                key,
                kind: Kind::Read(v.map(|v| String::from_utf8(v).unwrap())),
                call,
                ret: Some(ret),
            });
        }
    }
    history
}

/// Concurrent clients write and read a few keys while the leader, then a
/// follower, is killed and restarted: the history of every client's
/// operations is linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_a_linearizable_map_through_kills() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let members: BTreeMap<NodeId, BasicNode> = [1, 2, 3]
        .iter()
        .map(|&id| (id, BasicNode::default()))
        .collect();
    c.nodes[&1].raft.initialize(members).await.unwrap();
    c.leader().await;
    let epoch = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|id| tokio::spawn(client(c.router.clone(), id, Arc::clone(&stop), epoch)))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let leader = c.leader().await;
    c.kill(leader).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.start(leader).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.kill(follower).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.start(follower).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut history = Vec::new();
    for h in clients {
        history.extend(h.await.unwrap());
    }
    let unknown = history.iter().filter(|o| o.ret.is_none()).count();
    let reads = history
        .iter()
        .filter(|o| matches!(o.kind, checker::Kind::Read(_)))
        .count();
    assert!(
        reads > 100 && history.len() - reads > 50,
        "{} ops",
        history.len()
    );
    if let Err(e) = checker::check(&history) {
        panic!("{e}");
    }
    eprintln!(
        "{} operations ({reads} reads, {unknown} of unknown outcome) linearizable",
        history.len()
    );
    for id in c.nodes.keys().copied().collect::<Vec<_>>() {
        c.kill(id).await;
    }
}

/// Every node stops at once and starts again from its directory: the
/// votes, logs and maps on disk bring the cluster back, with every
/// acknowledged write, and it takes new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restarts_from_its_directories() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let members: BTreeMap<NodeId, BasicNode> = [1, 2, 3]
        .iter()
        .map(|&id| (id, BasicNode::default()))
        .collect();
    c.nodes[&1].raft.initialize(members).await.unwrap();
    let mut acked = BTreeMap::new();
    for i in 0..250u32 {
        let (k, v) = (format!("k{:03}", i % 61), format!("v{i}"));
        c.write(&k, &v).await;
        acked.insert(k, v);
    }
    let votes: BTreeMap<NodeId, _> = c
        .nodes
        .iter()
        .map(|(id, n)| (*id, n.raft.metrics().borrow().vote))
        .collect();
    for id in [1, 2, 3] {
        c.kill(id).await;
    }
    // What each node finds on disk: at least the vote it had.
    for (id, vote) in &votes {
        use openraft::storage::RaftLogStorage;
        let (mut log, _) = lightning_raft::open(&c.dirs[id]).unwrap();
        let kept = log.read_vote().await.unwrap().unwrap();
        assert!(
            kept >= *vote,
            "node {id}: vote {vote:?} on disk as {kept:?}"
        );
    }
    for id in [1, 2, 3] {
        c.start(id).await;
    }
    c.write("after", "restart").await;
    acked.insert("after".into(), "restart".into());
    c.settle().await;
    for (id, node) in &c.nodes {
        for (k, v) in &acked {
            assert_eq!(
                node.sm.get(k).unwrap().as_deref(),
                Some(v.as_bytes()),
                "node {id}, key {k}"
            );
        }
    }
    for id in [1, 2, 3] {
        c.kill(id).await;
    }
}
