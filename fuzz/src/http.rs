//! The HTTP transport in-process: raw request bytes go into the same hyper
//! HTTP/1.1 connection handling and tower stack a worker runs, over an
//! in-memory duplex pipe instead of a socket.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::runtime::Runtime;
use tower::ServiceExt as _;
use vgirpc_http::{HttpConfig, HttpServer, HttpService, RemoteAddr};

use crate::{service, tokens};

/// Far beyond the time limit: only a connection that never finishes gets
/// here, and it would otherwise stall the whole run.
const HANG_LIMIT: Duration = Duration::from_secs(5);

/// The most a producer answers in one response before it hands out a
/// continuation token.
const RESPONSE_CAP: u64 = 16 * 1024;

/// A runtime and the service stack of a worker serving the bounded
/// conformance service, tokens sealed with the harness key and no expiry,
/// so captured exchange requests stay valid in the corpus.
#[derive(Debug)]
pub struct HttpHarness {
    runtime: Runtime,
    service: HttpService<Incoming>,
}

impl Default for HttpHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpHarness {
    /// Builds the runtime (multi-threaded, as a worker's: methods run in
    /// place on its threads) and the service.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        // Without a response cap a producer runs to its end inside one
        // response, as the reference's does; resuming an endless one
        // (`cancellable_producer`, from a corpus token) would then never
        // answer. Deployments set the cap; so does the harness, low enough
        // that a producer of small batches is cut well within the time
        // limit under coverage instrumentation (1 MiB of them took 100 ms).
        let config = HttpConfig::new()
            .with_token_key(tokens::key())
            .with_token_ttl(0)
            .with_max_response_bytes(RESPONSE_CAP);
        let server = {
            let _entered = runtime.enter();
            HttpServer::new(service::conformance_server(), config).expect("a valid HTTP config")
        };
        Self {
            runtime,
            service: server.service::<Incoming>(),
        }
    }

    /// Sends `request` (one or more HTTP/1.1 requests as they arrive on a
    /// socket), half-closes, and returns everything the server answered
    /// until it closed the connection.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        self.runtime.block_on(async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let peer = SocketAddr::from((Ipv4Addr::LOCALHOST, 40_000));
            let service =
                self.service
                    .clone()
                    .map_request(move |mut request: Request<Incoming>| {
                        request.extensions_mut().insert(RemoteAddr(peer));
                        request
                    });
            let connection = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(service));
            let served = tokio::spawn(connection);
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let send = async {
                // The server may stop reading (a rejected request) and
                // close; what it answered is still read below.
                if to_server.write_all(request).await.is_ok() {
                    let _ = to_server.shutdown().await;
                }
            };
            let mut response = Vec::new();
            let receive = from_server.read_to_end(&mut response);
            let finished = tokio::time::timeout(HANG_LIMIT, async {
                let (_, _, connection) = tokio::join!(send, receive, served);
                connection
            })
            .await;
            match finished {
                Ok(Ok(_)) => response,
                Ok(Err(join_error)) => std::panic::resume_unwind(join_error.into_panic()),
                Err(_) => hang(request.len()),
            }
        })
    }
}

fn hang(len: usize) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "\n==== HANG: the connection for a {len}-byte request did not finish within {} s",
        HANG_LIMIT.as_secs()
    );
    std::process::abort();
}
