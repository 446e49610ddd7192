//! Browser apps of other origins: preflights answered before
//! authentication, allowed origins echoed, the headers a client reads
//! exposed, and credentials never paired with `*`.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod errors;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::net::SocketAddr;
use std::time::Duration;

use arrow_array::ArrayRef;
use bytes::Bytes;
use common::errors::assert_error_contains;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use vgirpc::{RpcError, Server};
use vgirpc_http::{AuthRejection, CorsConfig, HttpConfig, HttpError, HttpServer, StickyConfig};

/// A one-method service.
#[vgirpc::service]
pub trait Echo {
    /// Echo `value`.
    fn echo(&self, value: String) -> Result<String, RpcError>;
}

struct EchoImpl;

impl Echo for EchoImpl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
}

async fn start(config: HttpConfig) -> SocketAddr {
    let http = HttpServer::new(Server::new(EchoServer::new(EchoImpl)).unwrap(), config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http.serve(listener, std::future::pending()));
    addr
}

fn echo_body() -> Vec<u8> {
    let value: ArrayRef = std::sync::Arc::new(arrow_array::StringArray::from(vec!["hi"]));
    request("echo", vec![("value", value)])
}

async fn preflight(addr: SocketAddr, origin: &str) -> Reply {
    let request = Request::builder()
        .method(Method::OPTIONS)
        .uri("/echo")
        .header("host", "test")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, request).await
}

async fn echo_from(addr: SocketAddr, origin: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/echo")
        .header("host", "test")
        .header("origin", origin)
        .header("content-type", vgirpc_http::ARROW_STREAM);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(
        addr,
        request.body(Full::new(Bytes::from(echo_body()))).unwrap(),
    )
    .await
}

fn exposed(reply: &Reply) -> Vec<String> {
    reply
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

/// Only `secret` gets in.
fn token_checked() -> HttpConfig {
    HttpConfig::new().with_authenticate(vgirpc_http::bearer(|token| {
        if token == "secret" {
            Ok(vgirpc::AuthContext::authenticated("test", "alice"))
        } else {
            Err(AuthRejection::new("bad token"))
        }
    }))
}

#[tokio::test]
async fn a_listed_origin_gets_preflight_and_exposed_headers_even_behind_authentication() {
    let cors = CorsConfig::origins(["https://app.example"]).max_age(Some(Duration::from_secs(600)));
    let addr = start(token_checked().with_cors(cors)).await;

    // The preflight carries no credentials; it is answered all the same.
    let answer = preflight(addr, "https://app.example").await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = answer.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = answer.header("access-control-allow-headers").unwrap();
    assert!(headers.contains("authorization"), "{headers}");
    assert_eq!(answer.header("access-control-max-age"), Some("600"));

    let call = echo_from(addr, "https://app.example", Some("secret")).await;
    assert_eq!(call.status(), StatusCode::OK);
    assert_eq!(
        call.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let names = exposed(&call);
    for name in [
        "x-request-id",
        "www-authenticate",
        "x-vgi-rpc-error",
        "vgi-supported-encodings",
        "vgi-externalization-enabled",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }

    // A refusal is readable by the page too, so it can ask for a login.
    let refused = echo_from(addr, "https://app.example", Some("wrong")).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test]
async fn other_origins_get_no_allowance() {
    let addr =
        start(HttpConfig::new().with_cors(CorsConfig::origins(["https://app.example"]))).await;
    let answer = preflight(addr, "https://evil.example").await;
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let call = echo_from(addr, "https://evil.example", None).await;
    // The server answers (CORS is the browser's to enforce), without the
    // header that would let the other origin's script read it.
    assert_eq!(call.status(), StatusCode::OK);
    assert_eq!(call.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn any_origin_is_a_star_and_refuses_credentials() {
    let addr = start(HttpConfig::new().with_cors(CorsConfig::any_origin())).await;
    let call = echo_from(addr, "https://anywhere.example", None).await;
    assert_eq!(call.header("access-control-allow-origin"), Some("*"));
    assert_eq!(call.header("access-control-allow-credentials"), None);

    let both = CorsConfig::any_origin().allow_credentials(true);
    let err = HttpServer::new(
        Server::new(EchoServer::new(EchoImpl)).unwrap(),
        HttpConfig::new().with_cors(both),
    )
    .unwrap_err();
    assert!(matches!(err, HttpError::Config(_)), "{err:?}");
    assert_error_contains(&err, "credentials");
}

#[tokio::test]
async fn credentials_with_a_list_and_session_headers_on_sticky_servers() {
    let cors = CorsConfig::origins(["https://app.example"]).allow_credentials(true);
    let config = HttpConfig::new()
        .with_sticky(StickyConfig::default())
        .with_cors(cors);
    let addr = start(config).await;
    let call = echo_from(addr, "https://app.example", None).await;
    assert_eq!(
        call.header("access-control-allow-credentials"),
        Some("true")
    );
    let names = exposed(&call);
    for name in ["vgi-session", "vgi-session-close", "vgi-sticky-enabled"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
}

#[tokio::test]
async fn without_cors_no_headers_are_added() {
    let addr = start(HttpConfig::new()).await;
    let call = echo_from(addr, "https://app.example", None).await;
    assert_eq!(call.status(), StatusCode::OK);
    assert_eq!(call.header("access-control-allow-origin"), None);
}
