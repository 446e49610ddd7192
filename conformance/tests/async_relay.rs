//! A service whose methods are `async fn`s that sleep and call another
//! vgi-rpc service (the conformance worker, over a Unix socket), served
//! over a pipe, a Unix socket and HTTP.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod workers;
}

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use support::workers::UnixWorker;
use vgirpc::transport::NoSideChannels;
use vgirpc::{AsyncProducerState, CallContext, OutputCollector, RpcError, Server, Stream};
use vgirpc_client::{AsyncClient, Client};
use vgirpc_conformance::service::ConformanceServiceAsyncClient;
use vgirpc_http::{HttpConfig, HttpServer};
use vgirpc_pipe::{UnixConfig, serve_pipe, serve_unix_until};

/// Relays calls to a downstream vgi-rpc service.
#[vgirpc::service]
pub trait Relay {
    /// Waits a little, then has the downstream service echo `value`.
    async fn relay(&self, ctx: &CallContext, value: String) -> Result<String, RpcError>;
    /// Streams `count` rows, each echoed by the downstream service.
    async fn relay_rows(&self, count: i64) -> Result<Stream, RpcError>;
    /// A plain method beside the async ones.
    fn plain(&self, value: String) -> Result<String, RpcError>;
}

struct RelayImpl {
    downstream: PathBuf,
}

/// A downstream client for one call: connections belong to the runtime
/// that awaits them, which differs between transports.
async fn downstream(path: &PathBuf) -> Result<ConformanceServiceAsyncClient, RpcError> {
    let client = AsyncClient::connect_unix_with(path, 1).await?;
    Ok(ConformanceServiceAsyncClient::new(client))
}

impl Relay for RelayImpl {
    async fn relay(&self, ctx: &CallContext, value: String) -> Result<String, RpcError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let echoed = downstream(&self.downstream)
            .await?
            .echo_string(value)
            .await?;
        ctx.info("relayed");
        Ok(format!("relayed: {echoed}"))
    }

    async fn relay_rows(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::async_producer(
            row_schema(),
            RelayRows {
                downstream: self.downstream.clone(),
                next: 0,
                count,
            },
        ))
    }

    fn plain(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
}

struct RelayRows {
    downstream: PathBuf,
    next: i64,
    count: i64,
}

impl AsyncProducerState for RelayRows {
    async fn produce(
        &mut self,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        if self.next == self.count {
            return out.finish();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        let row = downstream(&self.downstream)
            .await?
            .echo_string(format!("row {}", self.next))
            .await?;
        self.next += 1;
        let column: ArrayRef = Arc::new(StringArray::from(vec![row]));
        out.emit_arrays(vec![column])
    }
}

fn row_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("row", DataType::Utf8, false)]))
}

fn relay_server(downstream: &UnixWorker) -> Server {
    Server::new(RelayServer::new(RelayImpl {
        downstream: downstream.path().to_owned(),
    }))
    .unwrap()
}

fn rows(batches: impl IntoIterator<Item = arrow_array::RecordBatch>) -> Vec<String> {
    batches
        .into_iter()
        .flat_map(|batch| {
            batch
                .column(0)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn expected_rows() -> Vec<String> {
    vec!["row 0".to_owned(), "row 1".to_owned(), "row 2".to_owned()]
}

#[test]
fn async_methods_relay_over_a_pipe() {
    let downstream = UnixWorker::start("relay-pipe");
    let server = relay_server(&downstream);
    let (client_end, server_end) = std::os::unix::net::UnixStream::pair().unwrap();
    let serving = std::thread::spawn(move || {
        let reader = server_end.try_clone().unwrap();
        serve_pipe(&server, reader, server_end)
    });
    let reader = client_end.try_clone().unwrap();
    let mut client = RelayClient::new(Client::from_io(reader, client_end));
    assert_eq!(client.relay("hi".into()).unwrap(), "relayed: hi");
    assert_eq!(client.plain("sync".into()).unwrap(), "sync");
    let stream = client.relay_rows(3).unwrap();
    let batches: Vec<_> = stream.collect::<Result<_, _>>().unwrap();
    assert_eq!(rows(batches), expected_rows());
    client.into_dynamic().close().unwrap();
    serving.join().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_methods_relay_over_a_unix_socket_to_concurrent_callers() {
    let downstream = UnixWorker::start("relay-unix");
    let server = relay_server(&downstream);
    let path = std::env::temp_dir().join(format!("vgi-relay-{}.sock", std::process::id()));
    let mut config = UnixConfig::new(&path);
    config.threaded = true;
    let (ready, listening) = channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        serve_unix_until(
            &server,
            &config,
            NoSideChannels,
            |_| ready.send(()).unwrap(),
            async {
                let _ = stopped.await;
            },
        )
    });
    listening.recv_timeout(Duration::from_secs(30)).unwrap();
    let client = AsyncClient::connect_unix_with(&path, 4).await.unwrap();
    let client = RelayAsyncClient::new(client);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.relay(format!("caller {i}")).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), format!("relayed: caller {i}"));
    }
    let mut stream = client.relay_rows(3).await.unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = stream.next_batch().await.unwrap() {
        batches.push(batch);
    }
    assert_eq!(rows(batches), expected_rows());
    drop(client);
    stop.send(()).unwrap();
    tokio::task::spawn_blocking(move || serving.join().unwrap().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_methods_relay_over_http() {
    let downstream = UnixWorker::start("relay-http");
    let http = HttpServer::new(relay_server(&downstream), HttpConfig::new()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { http.serve(listener, std::future::pending()).await });
    let relayed = tokio::task::spawn_blocking(move || {
        let mut client = RelayClient::new(Client::connect_http(&url).unwrap());
        let relayed = client.relay("over http".into()).unwrap();
        let stream = client.relay_rows(3).unwrap();
        let batches: Vec<_> = stream.collect::<Result<_, _>>().unwrap();
        (relayed, rows(batches))
    })
    .await
    .unwrap();
    assert_eq!(relayed, ("relayed: over http".to_owned(), expected_rows()));
}
