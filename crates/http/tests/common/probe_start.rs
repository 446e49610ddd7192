//! The probe service alone behind a real listener.

use vgirpc::Server;
use vgirpc_http::HttpConfig;

use super::probe::{ProbeImpl, ProbeServer, TestServer, start_with};

pub(crate) async fn start(config: HttpConfig) -> TestServer {
    start_with(Server::new(ProbeServer::new(ProbeImpl)).unwrap(), config).await
}
