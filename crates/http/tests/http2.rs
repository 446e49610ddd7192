//! HTTP/2 served beside HTTP/1.1: a drain answers every stream already
//! received on a connection, then ends it with GOAWAY, and the server
//! stops.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod reply;
    pub(crate) mod request;
}

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::int_param::int;
use common::reply::Reply;
use common::request::request;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use vgirpc::{RpcError, Server};
use vgirpc_http::{ARROW_STREAM, HttpConfig, HttpServer};

/// A method that takes its time.
#[vgirpc::service]
pub trait Slow {
    /// Answers `millis` after sleeping that long.
    fn wait(&self, millis: i64) -> Result<i64, RpcError>;
}

struct SlowImpl;

impl Slow for SlowImpl {
    fn wait(&self, millis: i64) -> Result<i64, RpcError> {
        std::thread::sleep(Duration::from_millis(millis.unsigned_abs()));
        Ok(millis)
    }
}

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// One h2c connection (prior knowledge) to `addr`.
async fn connect(addr: SocketAddr) -> Sender {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn wait(mut sender: Sender, addr: SocketAddr, millis: i64) -> Result<Reply, hyper::Error> {
    let body = request("wait", vec![("millis", int(millis))]);
    let request = Request::post(format!("http://{addr}/wait"))
        .header(http::header::CONTENT_TYPE, ARROW_STREAM)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    assert_eq!(response.version(), Version::HTTP_2);
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply(Response::from_parts(parts, body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_answers_every_stream_in_flight_then_ends_the_connection() {
    drain_answers_every_stream_in_flight(HttpConfig::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_task_per_stream_a_drain_answers_every_stream_in_flight() {
    drain_answers_every_stream_in_flight(HttpConfig::new().with_http2_stream_tasks(true)).await;
}

async fn drain_answers_every_stream_in_flight(config: HttpConfig) {
    let server = Server::new(SlowServer::new(SlowImpl)).unwrap();
    let http = HttpServer::new(server, config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));

    let sender = connect(addr).await;
    let calls: Vec<_> = (0..16)
        .map(|i| tokio::spawn(wait(sender.clone(), addr, 400 + i)))
        .collect();
    // Every stream is under way before the drain starts.
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.send(()).unwrap();

    for (i, call) in calls.into_iter().enumerate() {
        let reply = call
            .await
            .unwrap()
            .expect("a stream received before the drain is answered");
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.ints(), [400 + i as i64]);
    }
    // GOAWAY: the connection takes no new stream, and the server stops.
    assert!(wait(sender, addr, 1).await.is_err());
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server stops once its connections have closed")
        .unwrap()
        .unwrap();
}
