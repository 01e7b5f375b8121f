//! A 3-node replicated key-value service: each node is an openraft
//! `Raft` whose log and state machine live in its own Lightning DB
//! (`lightning_raft`), serving Raft RPCs and a client API over HTTP on
//! loopback. A client finds the leader, writes and reads through it, then
//! measures replicated writes per second with 1, 8 and 64 concurrent
//! clients. It stops by itself.
//!
//! ```sh
//! cargo run --release -p lightning-raft --example kv_cluster [-- --seconds 3]
//! ```
//!
//! HTTP API of every node (JSON bodies):
//! - `POST /write` `{"Set":{"key":[..],"value":[..]}}` → `{"Ok":{"previous":..}}`
//!   (on the leader; elsewhere an error naming the leader);
//! - `POST /read` `"key"` → `{"Ok":"value"|null}`, linearizable (leader only);
//! - `GET /leader` → the leader's address, if known;
//! - `POST /raft/append`, `/raft/vote`, `/raft/snapshot`: Raft's RPCs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::{get, post};
use axum::Json;
use lightning_raft::{NodeId, Request, Response, StateMachineStore, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One node's handles, shared by its HTTP handlers.
#[derive(Clone)]
struct App {
    raft: Raft<TypeConfig>,
    sm: StateMachineStore,
}

async fn append(
    State(app): State<App>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(app.raft.append_entries(req).await)
}

async fn vote(
    State(app): State<App>,
    Json(req): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(app.raft.vote(req).await)
}

async fn snapshot(
    State(app): State<App>,
    Json(req): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(app.raft.install_snapshot(req).await)
}

async fn write(State(app): State<App>, Json(req): Json<Request>) -> Json<Result<Response, String>> {
    Json(
        app.raft
            .client_write(req)
            .await
            .map(|r| r.data)
            .map_err(|e| e.to_string()),
    )
}

async fn read(
    State(app): State<App>,
    Json(key): Json<String>,
) -> Json<Result<Option<String>, String>> {
    let r = async {
        app.raft
            .ensure_linearizable()
            .await
            .map_err(|e| e.to_string())?;
        let v = app.sm.get(&key).map_err(|e| e.to_string())?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    };
    Json(r.await)
}

async fn leader(State(app): State<App>) -> Json<Option<String>> {
    let m = app.raft.metrics().borrow().clone();
    let addr = m
        .current_leader
        .and_then(|l| m.membership_config.membership().get_node(&l).cloned())
        .map(|n| n.addr);
    Json(addr)
}

/// The Raft network: a peer's RPC is an HTTP POST to it.
#[derive(Clone)]
struct HttpNetwork {
    client: reqwest::Client,
}

struct HttpPeer {
    client: reqwest::Client,
    target: NodeId,
    addr: String,
}

impl HttpPeer {
    async fn call<Q, P, E>(
        &self,
        path: &str,
        req: Q,
    ) -> Result<P, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Q: Serialize,
        P: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let resp = self
            .client
            .post(format!("http://{}/raft/{path}", self.addr))
            .json(&req)
            .send()
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let r: Result<P, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for HttpPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("append", rpc).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", rpc).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", rpc).await
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpPeer;
    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> HttpPeer {
        HttpPeer {
            client: self.client.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// The client side: asks any node for the leader, then writes there.
struct Client {
    http: reqwest::Client,
    nodes: Vec<String>,
    leader: Option<String>,
}

impl Client {
    async fn leader(&mut self) -> String {
        if let Some(l) = &self.leader {
            return l.clone();
        }
        loop {
            for n in &self.nodes {
                let r = self.http.get(format!("http://{n}/leader")).send().await;
                if let Ok(r) = r {
                    if let Ok(Some(l)) = r.json::<Option<String>>().await {
                        self.leader = Some(l.clone());
                        return l;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts `req` to the leader's `path` until it answers `Ok`, finding
    /// the leader again after a failure.
    async fn call<Q: Serialize, P: DeserializeOwned>(&mut self, path: &str, req: &Q) -> P {
        loop {
            let l = self.leader().await;
            let r = self
                .http
                .post(format!("http://{l}/{path}"))
                .json(req)
                .send()
                .await;
            if let Ok(r) = r {
                if let Ok(Ok(v)) = r.json::<Result<P, String>>().await {
                    return v;
                }
            }
            self.leader = None;
        }
    }

    async fn write(&mut self, key: &str, value: &str) -> Response {
        let req = Request::Set {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        };
        self.call("write", &req).await
    }

    async fn read(&mut self, key: &str) -> Option<String> {
        self.call("read", &key).await
    }
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .map(|s| s.parse().expect("--seconds N"))
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let config = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let http = reqwest::Client::new();
    let mut members = BTreeMap::new();
    let mut nodes = Vec::new();
    let mut rafts = Vec::new();
    for id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (log, sm) = lightning_raft::open(tmp.path().join(format!("node{id}"))).unwrap();
        let raft = Raft::new(
            id,
            Arc::clone(&config),
            HttpNetwork {
                client: http.clone(),
            },
            log,
            sm.clone(),
        )
        .await
        .unwrap();
        let app = App {
            raft: raft.clone(),
            sm,
        };
        let routes = axum::Router::new()
            .route("/raft/append", post(append))
            .route("/raft/vote", post(vote))
            .route("/raft/snapshot", post(snapshot))
            .route("/write", post(write))
            .route("/read", post(read))
            .route("/leader", get(leader))
            .with_state(app);
        tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
        println!(
            "node {id} on http://{addr}, data in {}",
            tmp.path().join(format!("node{id}")).display()
        );
        members.insert(id, BasicNode { addr: addr.clone() });
        nodes.push(addr);
        rafts.push(raft);
    }
    rafts[0].initialize(members).await.unwrap();

    let mut client = Client {
        http: http.clone(),
        nodes: nodes.clone(),
        leader: None,
    };
    println!("leader: http://{}", client.leader().await);
    client.write("greeting", "hello").await;
    let previous = client.write("greeting", "hello, replicated").await;
    let value = client.read("greeting").await;
    println!(
        "wrote greeting twice (previous value {:?}); read back {:?}",
        previous
            .previous
            .map(|v| String::from_utf8_lossy(&v).into_owned()),
        value
    );
    assert_eq!(value.as_deref(), Some("hello, replicated"));

    println!("replicated writes through the leader, {seconds} s each (100-byte values):");
    let leader = client.leader().await;
    for clients in [1usize, 8, 64] {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (http, done, leader, nodes) = (
                    http.clone(),
                    Arc::clone(&done),
                    leader.clone(),
                    nodes.clone(),
                );
                tokio::spawn(async move {
                    let mut client = Client {
                        http,
                        nodes,
                        leader: Some(leader),
                    };
                    let value = "v".repeat(100);
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        client.write(&format!("c{c}-{i}"), &value).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let n = done.load(Ordering::Relaxed);
        println!(
            "  {clients:>2} client(s): {n} writes, {:.0} writes/s",
            n as f64 / seconds as f64
        );
    }
    for r in rafts {
        r.shutdown().await.unwrap();
    }
}
