//! A producer sees its response budget on the output collector: what the
//! HTTP body can still take under `max_response_bytes`, shrinking as the
//! response fills, and `None` without a cap.

use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use vgirpc::wire::ipc::write_stream_bytes;
use vgirpc::wire::request::Request as RpcRequest;
use vgirpc::{ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};

/// What one `produce` call saw: remaining wire and external bytes, data
/// bytes so far, whether externalization is on.
type Seen = (Option<u64>, Option<u64>, u64, bool);

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// Service used by this test.
#[vgirpc::service]
pub trait Budgeted {
    /// Produce three batches of 100 rows.
    fn rows(&self) -> Result<Stream, RpcError>;
}

#[derive(Debug, Default, ArrowStruct)]
struct Rows {
    next: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Rows {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.next == 3 {
            return out.finish();
        }
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next; 100]))])?;
        SEEN.lock().unwrap().push((
            out.remaining_response_bytes(),
            out.remaining_externalized_response_bytes(),
            out.total_data_bytes(),
            out.externalization_enabled(),
        ));
        assert!(!out.finished());
        self.next += 1;
        Ok(())
    }
}

struct Impl;

impl Budgeted for Impl {
    fn rows(&self) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, true)]));
        Ok(Stream::producer(schema, Rows::default()))
    }
}

async fn produce_all(config: HttpConfig) -> Vec<Seen> {
    let server = Server::new(BudgetedServer::new(Impl)).unwrap();
    let http =
        HttpServer::new(server, config.with_token_key(TokenKey::new(b"budget key"))).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending::<()>()));
    let params = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let init = write_stream_bytes(
        params.schema_ref(),
        [(&params, &RpcRequest::metadata_for("rows"))],
    )
    .unwrap();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/rows/init")
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
        .body(Full::new(Bytes::from(init)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert!(response.status().is_success());
    response.into_body().collect().await.unwrap();
    std::mem::take(&mut *SEEN.lock().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_shrinks_as_the_response_fills_and_is_none_without_a_cap() {
    let capped = produce_all(HttpConfig::new().with_max_response_bytes(1 << 20)).await;
    assert_eq!(capped.len(), 3, "{capped:?}");
    let remaining: Vec<u64> = capped.iter().map(|s| s.0.expect("a cap")).collect();
    assert!(
        remaining[0] < 1 << 20,
        "the schema is already written: {remaining:?}"
    );
    assert!(
        remaining[0] - remaining[1] >= 800 && remaining[1] - remaining[2] >= 800,
        "each 800-byte batch is spent: {remaining:?}"
    );
    let data: Vec<u64> = capped.iter().map(|s| s.2).collect();
    assert!(
        data[0] >= 800 && data[1] == 2 * data[0] && data[2] == 3 * data[0],
        "{data:?}"
    );
    assert!(
        capped.iter().all(|s| s.1.is_none() && !s.3),
        "no storage: {capped:?}"
    );

    let uncapped = produce_all(HttpConfig::new()).await;
    assert_eq!(uncapped.len(), 3);
    assert!(
        uncapped.iter().all(|s| s.0.is_none() && s.1.is_none()),
        "{uncapped:?}"
    );
}
