//! The service the authentication tests call: it reports who called it.

use serde_json::Value as Json;
use tokio::net::TcpListener;
use vgirpc::{CallContext, RpcError, Server};
use vgirpc_http::HttpServer;

/// Reports the caller.
#[vgirpc::service]
pub(crate) trait Who {
    /// `domain|principal|claims as JSON`.
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError>;
}

struct WhoImpl;

impl Who for WhoImpl {
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError> {
        let auth = ctx.auth();
        Ok(format!(
            "{}|{}|{}",
            auth.domain_or_empty(),
            auth.principal_or_empty(),
            Json::Object(auth.claims.clone())
        ))
    }
}

/// The [`Who`] service's server, before any transport.
pub(crate) fn who() -> Server {
    Server::new(WhoServer::new(WhoImpl)).unwrap()
}

/// Serves `http` on `listener` until the test ends.
pub(crate) fn serve(listener: TcpListener, http: HttpServer) {
    tokio::spawn(http.serve(listener, std::future::pending()));
}
