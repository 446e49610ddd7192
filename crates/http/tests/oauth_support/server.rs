//! The server under test: a service reporting its caller, under `/vgi`,
//! logging browsers in at the mock authorization server.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::net::TcpListener;
use vgirpc::{CallContext, RpcError, Server};
use vgirpc_http::{
    AuthContext, HttpConfig, HttpServer, OAuthPkce, OAuthResourceMetadata, bearer_static,
    with_resource_metadata,
};

use super::idp::Idp;
use crate::common::reply::Reply;
use crate::common::send::send;

/// Seals the login session cookies; a test forging one seals it with this too.
pub(crate) const SECRET: &[u8] = b"oauth test secret";
pub(crate) const CLIENT_ID: &str = "my-client-id";
pub(crate) const CLIENT_SECRET: &str = "my-client-secret";

/// Reports the caller.
#[vgirpc::service]
trait Who {
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError>;
}

struct WhoImpl;

impl Who for WhoImpl {
    fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError> {
        Ok(ctx.auth().principal_or_empty().to_owned())
    }
}

/// The [`Who`] service's server, before any transport.
pub(crate) fn who() -> Server {
    Server::new(WhoServer::new(WhoImpl)).unwrap()
}

/// A server under `/vgi` whose only valid bearer tokens are `tokens`,
/// logging browsers in at `idp`.
pub(crate) async fn serve(idp: &Idp, tokens: &[&str]) -> SocketAddr {
    serve_with(idp, tokens, |metadata| metadata).await
}

pub(crate) async fn serve_with(
    idp: &Idp,
    tokens: &[&str],
    adjust: impl FnOnce(OAuthResourceMetadata) -> OAuthResourceMetadata,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metadata = adjust(OAuthResourceMetadata {
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(CLIENT_SECRET.into()),
        ..OAuthResourceMetadata::new(format!("http://{addr}/vgi"), [idp.url.clone()])
    });
    let auth = bearer_static(tokens.iter().map(|t| {
        (
            (*t).to_owned(),
            AuthContext::authenticated("bearer", "alice"),
        )
    }));
    let config = HttpConfig::new()
        .with_prefix("/vgi")
        .with_authenticate(with_resource_metadata(auth, metadata).unwrap())
        .with_oauth_pkce(OAuthPkce::new().with_session_secret(SECRET));
    let http = HttpServer::new(who(), config).unwrap();
    tokio::spawn(http.serve(listener, std::future::pending()));
    addr
}

pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::get(path).header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(addr, builder.body(Full::new(Bytes::new())).unwrap()).await
}
