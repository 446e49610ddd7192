//! The async typed client from tokio programs: 64 tasks sharing one client
//! on every transport it has (Unix socket, worker process, either with
//! shared memory, HTTP), and the blocking client used inside a runtime.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod workers;
}

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use support::workers::{UnixWorker, worker};
use tokio::task::JoinSet;
use vgirpc::Server;
use vgirpc_client::wire::metadata;
use vgirpc_client::{AsyncClient, Client};
use vgirpc_conformance::service::{
    Conformance, ConformanceServiceAsyncClient, ConformanceServiceClient, ConformanceServiceServer,
};
use vgirpc_http::{HttpConfig, HttpServer};

const TASKS: usize = 64;

fn values(values: &[f64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(values.to_vec()))]).unwrap()
}

fn running_sum(batch: &RecordBatch) -> f64 {
    batch
        .column_by_name("running_sum")
        .unwrap()
        .as_primitive::<Float64Type>()
        .value(0)
}

/// Every kind of call from `TASKS` tasks at once, through clones of one
/// client: each task checks that the answers are its own.
async fn exercise(client: ConformanceServiceAsyncClient) {
    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        let client = client.clone();
        tasks.spawn(async move {
            let text = format!("task {i}");
            assert_eq!(client.echo_string(text.clone()).await.unwrap(), text);
            // An async method on the server.
            let logged = client.echo_with_info_log(text.clone()).await.unwrap();
            assert_eq!(logged, text);
            let mut produced = client.produce_n(3).await.unwrap();
            let mut rows = 0;
            while let Some(batch) = produced.next_batch().await.unwrap() {
                rows += batch.num_rows();
            }
            assert_eq!(rows, 3);
            let mut exchange = client.exchange_accumulate().await.unwrap();
            let first = exchange.exchange(&values(&[i as f64])).await.unwrap();
            assert_eq!(running_sum(&first), i as f64);
            let second = exchange.exchange(&values(&[1.0, 2.0])).await.unwrap();
            assert_eq!(running_sum(&second), i as f64 + 3.0);
            exchange.close().await.unwrap();
            // A server error is the call's alone.
            let err = client.raise_value_error(text).await.unwrap_err();
            assert!(err.to_string().contains("ValueError"), "{err}");
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    let described = client.dynamic().describe().await.unwrap();
    assert_eq!(described.protocol_name, "ConformanceService");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_async_client_over_a_unix_socket() {
    let worker = UnixWorker::start("tasks");
    let client = AsyncClient::connect_unix_with(worker.path(), 16)
        .await
        .unwrap();
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_async_client_of_a_worker_process() {
    let client = AsyncClient::spawn(worker()).await.unwrap();
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_client_runs_on_a_current_thread_runtime() {
    let worker = UnixWorker::start("current");
    let client = AsyncClient::connect_unix_with(worker.path(), 2)
        .await
        .unwrap();
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

/// Large batches through the shared-memory segments of a client's
/// connections, both ways, from `TASKS` tasks at once; then the ordinary
/// calls over the same connections.
async fn exercise_shm(client: AsyncClient) {
    let mut tasks = JoinSet::new();
    for i in 0..TASKS {
        let client = client.clone();
        tasks.spawn(async move {
            // Large enough that both sides use the segment.
            let text = format!("{i}:{}", "x".repeat(100_000));
            let result = client
                .call("echo_string", &echo_params(&text))
                .await
                .unwrap();
            assert_eq!(result.batch.column(0).as_string::<i32>().value(0), text);
            let source = result.metadata.get(metadata::SHM_SOURCE).unwrap_or("");
            assert!(
                source.starts_with("vgirpc_"),
                "not through a segment: {source:?}"
            );

            let typed = ConformanceServiceAsyncClient::new(client);
            let mut exchange = typed.exchange_accumulate().await.unwrap();
            let out = exchange.exchange(&values(&[1.0; 10_000])).await.unwrap();
            assert_eq!(running_sum(&out), 10_000.0);
            let out = exchange
                .exchange(&values(&[i as f64; 10_000]))
                .await
                .unwrap();
            assert_eq!(running_sum(&out), 10_000.0 + 10_000.0 * i as f64);
            exchange.close().await.unwrap();

            let mut produced = typed.produce_large_batches(20_000, 2).await.unwrap();
            let mut rows = 0;
            while let Some(batch) = produced.next_batch().await.unwrap() {
                rows += batch.num_rows();
            }
            assert_eq!(rows, 40_000);
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

fn echo_params(value: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_async_client_over_unix_with_shared_memory() {
    let worker = UnixWorker::start("shm");
    let client = AsyncClient::connect_unix_with_shm(worker.path(), 8, 8 << 20)
        .await
        .unwrap();
    exercise_shm(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_async_client_of_a_worker_with_shared_memory() {
    let client = AsyncClient::spawn_with_shm(worker(), 8 << 20)
        .await
        .unwrap();
    exercise_shm(client).await;
}

/// Our HTTP server in this process, on the test's runtime.
async fn http_server() -> String {
    let server = Server::new(ConformanceServiceServer::new(Conformance)).unwrap();
    let http = HttpServer::new(server, HttpConfig::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { http.serve(listener, std::future::pending()).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_share_one_async_client_over_http() {
    let url = http_server().await;
    let client = AsyncClient::connect_http(&url).unwrap();
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_http_client_runs_beside_its_server_on_one_thread() {
    let url = http_server().await;
    let client = AsyncClient::connect_http(&url).unwrap();
    exercise(ConformanceServiceAsyncClient::new(client)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_works_inside_a_multi_threaded_runtime() {
    let url = http_server().await;
    let mut client = ConformanceServiceClient::new(Client::connect_http(&url).unwrap());
    assert_eq!(client.echo_string("inside".into()).unwrap(), "inside");
    let unix = UnixWorker::start("blocking");
    let mut over_unix = ConformanceServiceClient::new(Client::connect_unix(unix.path()).unwrap());
    assert_eq!(over_unix.add_floats(1.0, 2.0).unwrap(), 3.0);
    drop(client);
    drop(over_unix);
}

#[tokio::test(flavor = "current_thread")]
async fn the_blocking_client_works_inside_a_current_thread_runtime() {
    let url = http_server().await;
    // The server runs on this very thread: the blocking call must not
    // stall it, or it would wait for itself.
    let answer = tokio::task::spawn_blocking(move || {
        let mut client = ConformanceServiceClient::new(Client::connect_http(&url).unwrap());
        client.echo_string("pooled".into())
    })
    .await
    .unwrap();
    assert_eq!(answer.unwrap(), "pooled");
}
