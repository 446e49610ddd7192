//! RFC 9728 discovery, through a real server: the metadata document served
//! to anyone, its URL in every `401` challenge, and the client helpers
//! that follow it.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "auth_support"]
mod auth_support {
    pub(crate) mod ec_key;
    pub(crate) mod refusal;
    pub(crate) mod request;
    pub(crate) mod start;
    pub(crate) mod who;
}
#[path = "common"]
mod common {
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::net::SocketAddr;

use auth_support::ec_key::ec_key;
use auth_support::refusal::refusal;
use auth_support::request::whoami_at;
use auth_support::start::{server, start};
use auth_support::who::serve;
use bytes::Bytes;
use common::reply::Reply;
use common::send::send;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use tokio::net::TcpListener;
use vgirpc_client::http::{
    BearerChallenge, HttpOptions, fetch_oauth_metadata, fetch_oauth_metadata_blocking,
    oauth_metadata, oauth_metadata_blocking, parse_resource_metadata_url,
};
use vgirpc_http::{
    Authenticate, HttpConfig, JwksSource, JwtAuthenticator, JwtConfig, OAuthResourceMetadata,
    bearer_static, chain, mtls_xfcc, with_resource_metadata,
};

/// A `GET` of `path`.
async fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = Request::get(path)
        .header("host", "test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, request).await
}

/// Serves `auth` under `/vgi` with metadata naming the server's own URL.
async fn publish(auth: impl Authenticate) -> (SocketAddr, OAuthResourceMetadata) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metadata = OAuthResourceMetadata {
        scopes_supported: vec!["vgi.read".into()],
        resource_name: Some("Who".into()),
        client_id: Some("cli-123".into()),
        use_id_token_as_bearer: true,
        ..OAuthResourceMetadata::new(format!("http://{addr}/vgi"), ["https://idp.test"])
    };
    let auth = with_resource_metadata(auth, metadata.clone()).unwrap();
    let config = HttpConfig::new()
        .with_prefix("/vgi")
        .with_authenticate(auth);
    serve(listener, server(config));
    (addr, metadata)
}

fn no_tokens() -> impl Authenticate {
    bearer_static([])
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_public_and_every_401_points_to_it() {
    let (addr, _) = publish(no_tokens()).await;
    let expected = json!({
        "resource": format!("http://{addr}/vgi"),
        "authorization_servers": ["https://idp.test"],
        "scopes_supported": ["vgi.read"],
        "resource_name": "Who",
        "client_id": "cli-123",
        "use_id_token_as_bearer": true,
    });
    for path in [
        "/.well-known/oauth-protected-resource/vgi",
        "/.well-known/oauth-protected-resource",
    ] {
        let reply = get(addr, path).await;
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("public, max-age=60"));
        let document: serde_json::Value = serde_json::from_slice(reply.body()).unwrap();
        assert_eq!(document, expected, "{path}");
    }

    let reply = whoami_at(addr, "/vgi/whoami", &[]).await;
    assert_eq!(refusal(&reply), "Missing or invalid Authorization header");
    let url = format!("http://{addr}/.well-known/oauth-protected-resource/vgi");
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            r#"Bearer resource_metadata="{url}", client_id="cli-123", use_id_token_as_bearer="true""#
        )
    );

    // A refused JWT keeps its error beside the metadata.
    let (_, jwk) = ec_key("k");
    let jwt = JwtAuthenticator::new(
        JwtConfig::new(["https://idp.test"], ["vgi"])
            .jwks(JwksSource::Json(json!({ "keys": [jwk] }).to_string())),
    )
    .unwrap();
    let (addr, _) = publish(jwt).await;
    let reply = whoami_at(addr, "/vgi/whoami", &[("authorization", "Bearer x.y.z")]).await;
    let url = format!("http://{addr}/.well-known/oauth-protected-resource/vgi");
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            r#"Bearer resource_metadata="{url}", client_id="cli-123", use_id_token_as_bearer="true", error="invalid_token", error_description="Invalid JWT: decode_error: Invalid JSON Web Signature""#
        )
    );

    // Authenticators without a challenge of their own get the Bearer one,
    // and a chain publishes its members' metadata.
    let (addr, _) = publish(chain(mtls_xfcc())).await;
    let reply = whoami_at(addr, "/vgi/whoami", &[]).await;
    let url = format!("http://{addr}/.well-known/oauth-protected-resource/vgi");
    assert_eq!(
        reply.header("www-authenticate").unwrap(),
        format!(
            r#"Bearer resource_metadata="{url}", client_id="cli-123", use_id_token_as_bearer="true""#
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_discovers_the_metadata_from_the_server_or_from_a_401() {
    let (addr, published) = publish(no_tokens()).await;
    let base = format!("http://{addr}");
    let options = HttpOptions::new().prefix("/vgi");

    let found = oauth_metadata(&base, &options).await.unwrap().unwrap();
    assert_eq!(found.resource, published.resource);
    assert_eq!(found.authorization_servers, published.authorization_servers);
    assert_eq!(found.scopes_supported, ["vgi.read"]);
    assert_eq!(found.bearer_methods_supported, ["header"]);
    assert_eq!(found.client_id.as_deref(), Some("cli-123"));
    assert!(found.use_id_token_as_bearer);

    // The discovery a client makes from a refusal alone.
    let refused = whoami_at(addr, "/vgi/whoami", &[]).await;
    let header = refused.header("www-authenticate").unwrap();
    let url = parse_resource_metadata_url(header).unwrap();
    assert_eq!(
        fetch_oauth_metadata(&url, &HttpOptions::new())
            .await
            .unwrap(),
        found
    );
    let challenge = BearerChallenge::parse(header);
    assert_eq!(challenge.client_id.as_deref(), Some("cli-123"));
    assert!(challenge.use_id_token_as_bearer);

    let (blocking_found, blocking_fetched) = tokio::task::spawn_blocking(move || {
        (
            oauth_metadata_blocking(&base, &options).unwrap(),
            fetch_oauth_metadata_blocking(&url, &HttpOptions::new()).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(blocking_found.as_ref(), Some(&found));
    assert_eq!(blocking_fetched, found);

    // A server that publishes nothing.
    let plain = start(HttpConfig::new()).await;
    let none = oauth_metadata(&format!("http://{plain}"), &HttpOptions::new()).await;
    assert_eq!(none.unwrap(), None);
}
