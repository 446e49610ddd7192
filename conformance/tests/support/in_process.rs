//! The conformance service served over HTTP inside the test process.

use vgirpc::Server;
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};
use vgirpc_http::HttpServer;

/// The conformance service, ready to be served.
pub(crate) fn conformance_server() -> Server {
    Server::new(ConformanceServiceServer::new(Conformance)).unwrap()
}

/// Serves `http` on a free loopback port for as long as the test process
/// lives; the port.
pub(crate) fn serve_in_process(http: HttpServer) -> u16 {
    vgirpc_test_support::serve_in_process(|listener| async move {
        http.serve(listener, std::future::pending()).await.unwrap();
    })
}
