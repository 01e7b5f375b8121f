//! Using the database from an async (tokio) service.
//!
//! ```text
//! cargo run --example async_service
//! ```
//!
//! Every `Db` call blocks its thread: a read may fault in a page of an SST
//! file, a write waits for the write-ahead log (and its fsync when synced),
//! and `Db::transaction_with` sleeps between retries. On an async runtime,
//! run them on the blocking pool (`tokio::task::spawn_blocking`), never on
//! an executor thread, so one slow disk does not stall every task. `Db` is
//! `Send + Sync`: share it with an `Arc`.

use std::sync::Arc;
use std::time::Duration;

use lightning_db::{Db, Options, WriteOptions};

/// A request the service handles.
enum Request {
    Put { key: String, value: String },
    Get { key: String },
    Increment { key: String },
}

/// Handles one request on the blocking pool; the async caller just awaits.
async fn handle(db: Arc<Db>, req: Request) -> lightning_db::Result<Option<String>> {
    tokio::task::spawn_blocking(move || match req {
        Request::Put { key, value } => {
            db.put_opt(key, value, &WriteOptions::synced())?;
            Ok(None)
        }
        Request::Get { key } => Ok(db
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned())),
        Request::Increment { key } => db.transaction_with(|tx| {
            let n: u64 = tx
                .get(&key)?
                .map_or(0, |v| String::from_utf8_lossy(&v).parse().unwrap_or(0));
            tx.put(&key, (n + 1).to_string());
            Ok(Some((n + 1).to_string()))
        }),
    })
    .await
    .expect("the blocking task panicked")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> lightning_db::Result<()> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Arc::new(Db::open(dir.path(), Options::default())?);

    handle(
        Arc::clone(&db),
        Request::Put {
            key: "greeting".into(),
            value: "hello".into(),
        },
    )
    .await?;

    // 200 concurrent increments of one counter: transactions conflict and
    // retry on the blocking pool, while the executor stays free.
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let db = Arc::clone(&db);
            tokio::spawn(handle(
                db,
                Request::Increment {
                    key: "counter".into(),
                },
            ))
        })
        .collect();
    let ticker = tokio::spawn(async {
        // Keeps running on the executor: nothing blocks it.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    for t in tasks {
        t.await.expect("an increment task")?;
    }
    ticker.await.expect("the ticker");

    let counter = handle(
        Arc::clone(&db),
        Request::Get {
            key: "counter".into(),
        },
    )
    .await?;
    let greeting = handle(
        Arc::clone(&db),
        Request::Get {
            key: "greeting".into(),
        },
    )
    .await?;
    println!("greeting = {greeting:?}, counter = {counter:?}");
    assert_eq!(counter.as_deref(), Some("200"));

    // Close on the blocking pool too (it syncs the WAL).
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("no other handle is left"));
    tokio::task::spawn_blocking(move || db.close())
        .await
        .expect("close panicked")
}
