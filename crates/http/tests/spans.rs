//! Every HTTP stream turn runs inside the `rpc` span of its stream, so
//! tracing layers see one stream id across the requests of one stream.

use std::sync::{Arc, OnceLock};

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::SubscriberExt;
use vgirpc::wire::ipc::{StreamReader, empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::wire::request::Request as RpcRequest;
use vgirpc::{ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream};
use vgirpc_http::{HttpConfig, HttpServer, TokenKey};
use vgirpc_test_support::SpanCapture;

/// Service used by this test.
#[vgirpc::service]
pub trait Ticker {
    /// Produce `limit` one-row batches.
    fn count(&self, limit: i64) -> Result<Stream, RpcError>;
}

#[derive(Debug, Default, ArrowStruct)]
struct Counter {
    limit: i64,
    next: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Counter {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.next >= self.limit {
            return out.finish();
        }
        tracing::info!(turn = self.next, "producing");
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next]))])?;
        self.next += 1;
        Ok(())
    }
}

struct Impl;

impl Ticker for Impl {
    fn count(&self, limit: i64) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, true)]));
        Ok(Stream::producer(schema, Counter { limit, next: 0 }))
    }
}

/// Handlers run on the runtime's threads, not the test's, so the capture must be
/// the global subscriber; this test binary holds only this test.
fn capture() -> &'static SpanCapture {
    static CAPTURE: OnceLock<SpanCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = SpanCapture::default();
        tracing::subscriber::set_global_default(Registry::default().with(capture.clone()))
            .expect("no other global subscriber in this test binary");
        capture
    })
}

async fn post(addr: std::net::SocketAddr, path: &str, body: Vec<u8>) -> Vec<u8> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

fn token_of(body: &[u8]) -> Option<String> {
    let mut cursor = std::io::Cursor::new(body);
    while let Some(mut reader) = StreamReader::try_open(&mut cursor, Default::default()).unwrap() {
        while let Some(batch) = reader.next_batch().unwrap() {
            if let Some(token) = batch.metadata.get(metadata::STREAM_STATE) {
                return Some(token.to_owned());
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn each_stream_turn_runs_in_an_rpc_span_with_the_stream_id() {
    let capture = capture();
    let server = Server::new(TickerServer::new(Impl)).unwrap();
    // A one-byte cap: every producer turn ends after one batch, with a token.
    let config = HttpConfig::new()
        .with_token_key(TokenKey::new(b"span test key"))
        .with_max_response_bytes(1);
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending::<()>()));

    let schema = Arc::new(Schema::new(vec![Field::new(
        "limit",
        DataType::Int64,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![3]))]).unwrap();
    let init =
        write_stream_bytes(&schema, [(&params, &RpcRequest::metadata_for("count"))]).unwrap();
    let mut body = post(addr, "/count/init", init).await;
    let mut requests = 1;
    while let Some(token) = token_of(&body) {
        let tick = RecordBatch::new_empty(empty_schema());
        let md = Metadata::new().with(metadata::STREAM_STATE, token);
        let turn = write_stream_bytes(tick.schema_ref(), [(&tick, &md)]).unwrap();
        body = post(addr, "/count/exchange", turn).await;
        requests += 1;
    }
    assert!(requests > 1, "the stream took several HTTP requests");

    let turns = capture.spans_of("producing", "rpc");
    assert_eq!(turns.len(), 3, "one event per produced batch: {turns:?}");
    for span in &turns {
        assert_eq!(span["rpc.method"], "count");
        assert_eq!(span["rpc.method_type"], "stream");
    }
    let ids: Vec<&String> = turns.iter().map(|s| &s["rpc.stream_id"]).collect();
    assert_eq!(ids[0].len(), 32);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one stream id across turns: {ids:?}"
    );
}
