//! The OAuth 2.0 PKCE endpoints besides a successful login: the
//! callback's refusals and error pages, logout, the token endpoint proxy
//! and what the resource metadata advertises, and the configuration the
//! flow needs.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod clock;
    pub(crate) mod errors;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod send;
}
mod oauth_support;

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::clock::now;
use common::errors::assert_error_contains;
use common::reply::Reply;
use common::send::send;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use http_body_util::Full;
use oauth_support::browser::{set_cookie, start_login};
use oauth_support::idp::{Idp, field, form};
use oauth_support::server::{CLIENT_ID, SECRET, get, serve, serve_with, who};
use serde_json::Value as Json;
use sha2::Sha256;
use vgirpc_http::{
    HttpConfig, HttpServer, OAuthPkce, OAuthResourceMetadata, bearer_static, with_resource_metadata,
};

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut builder = Request::post(path).header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = Full::new(Bytes::from(body.to_owned()));
    send(addr, builder.body(body).unwrap()).await
}

/// A session cookie made as the server makes them, with the secret it was
/// given.
fn forge_session(version: u8, created_at: i64, state: &str) -> String {
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, SECRET)
        .expand(b"vgi-rpc oauth-pkce session cookie", &mut key)
        .unwrap();
    let mut payload = vec![version];
    payload.extend_from_slice(&(created_at as u64).to_le_bytes());
    for field in ["verifier", state, "/vgi/describe", ""] {
        payload.extend_from_slice(&(field.len() as u16).to_le_bytes());
        payload.extend_from_slice(field.as_bytes());
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(&payload);
    payload.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE_NO_PAD.encode(payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_expired_and_old_session_cookies_are_refused() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &["tok"]).await;
    let callback = |cookie: String| async move {
        get(
            addr,
            "/vgi/_oauth/callback?code=c&state=s1",
            &[("cookie", &format!("_vgi_oauth_session={cookie}"))],
        )
        .await
    };

    // The forgery matches the server's format: a fresh one goes through.
    let good = callback(forge_session(4, now(), "s1")).await;
    assert_eq!(good.status(), StatusCode::FOUND);
    assert_eq!(good.header("location"), Some("/vgi/describe"));

    let mut raw = URL_SAFE_NO_PAD
        .decode(forge_session(4, now(), "s1"))
        .unwrap();
    let last = raw.len() - 40;
    raw[last] ^= 0x20;
    for (cookie, why) in [
        (URL_SAFE_NO_PAD.encode(raw), "tampered"),
        (forge_session(4, now() - 601, "s1"), "expired"),
        (forge_session(4, now() + 60, "s1"), "from the future"),
        (forge_session(3, now(), "s1"), "old version"),
        ("bm90IGEgY29va2ll".to_owned(), "not a cookie"),
    ] {
        let reply = callback(cookie).await;
        assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{why}");
        let page = String::from_utf8_lossy(reply.body());
        assert!(
            page.contains("Session expired or invalid. Please try again."),
            "{why}: {page}"
        );
        assert!(reply.headers().get("set-cookie").is_none(), "{why}");
    }

    let mismatch = callback(forge_session(4, now(), "other")).await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(mismatch.body()).contains("State mismatch"));
    let missing = get(addr, "/vgi/_oauth/callback?code=c&state=s1", &[]).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(missing.body()).contains("Session cookie missing"));
    let no_code = get(addr, "/vgi/_oauth/callback?state=s1", &[]).await;
    assert_eq!(no_code.status(), StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(no_code.body()).contains("Missing authorization code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_escape_what_they_show() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &[]).await;

    let reply = get(
        addr,
        "/vgi/_oauth/callback?error=access_denied\
         &error_description=%3Cscript%3Ealert(%27x%27)%3C%2Fscript%3E",
        &[],
    )
    .await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = String::from_utf8_lossy(reply.body());
    assert!(page.contains("The authorization server returned an error."));
    assert!(page.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"));
    assert!(!page.contains("<script"));
    assert!(page.contains("<a href=\"/vgi\">Try again</a>"));

    // The authorization server refusing the code is a bad gateway.
    *idp.answer.lock().unwrap() = (
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_grant"}"#.to_owned(),
    );
    let cookie = format!("_vgi_oauth_session={}", forge_session(4, now(), "s"));
    let failed = get(
        addr,
        "/vgi/_oauth/callback?code=c&state=s",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(failed.status(), StatusCode::BAD_GATEWAY);
    let page = String::from_utf8_lossy(failed.body());
    assert!(page.contains("Token exchange with the authorization server failed."));
    assert!(page.contains("400 Bad Request"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_deletes_the_auth_cookie() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &["tok"]).await;
    let reply = get(addr, "/vgi/_oauth/logout", &[("cookie", "_vgi_auth=tok")]).await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(reply.header("location"), Some("/vgi"));
    assert_eq!(
        set_cookie(&reply, "_vgi_auth"),
        "_vgi_auth=; Max-Age=0; Path=/vgi; SameSite=Lax"
    );
    let post = post(addr, "/vgi/_oauth/logout", &[], "").await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, OPTIONS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_proxy_adds_the_secret_and_nothing_else() {
    let idp = Idp::start("new").await;
    let addr = serve(&idp, &[]).await;

    let metadata = get(addr, "/.well-known/oauth-protected-resource/vgi", &[]).await;
    assert_eq!(metadata.status(), StatusCode::OK);
    let document: Json = serde_json::from_slice(metadata.body()).unwrap();
    assert_eq!(
        document["token_endpoint"],
        format!("http://{addr}/vgi/_oauth/token")
    );
    assert_eq!(document["client_id"], CLIENT_ID);

    let form_type = ("content-type", "application/x-www-form-urlencoded");
    let reply = post(
        addr,
        "/vgi/_oauth/token",
        &[form_type, ("origin", "http://localhost:5173")],
        "grant_type=refresh_token&refresh_token=r%2Bt&scope=openid+email&extra=dropped",
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let sent = idp.last_form();
    assert_eq!(
        sent,
        form(
            "grant_type=refresh_token&client_id=my-client-id&client_secret=my-client-secret\
             &refresh_token=r%2Bt&scope=openid+email"
        )
    );

    let json = post(
        addr,
        "/vgi/_oauth/token",
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        json.body(),
        r#"{"error": "invalid_request", "error_description": "Content-Type must be application/x-www-form-urlencoded"}"#
    );
    let grant = post(
        addr,
        "/vgi/_oauth/token",
        &[form_type, ("origin", "https://evil.example")],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(grant.status(), StatusCode::BAD_REQUEST);
    assert!(grant.header("access-control-allow-origin").is_none());
    let error: Json = serde_json::from_slice(grant.body()).unwrap();
    assert_eq!(error["error"], "unsupported_grant_type");
    assert_eq!(idp.forms.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_secret_nothing_is_advertised() {
    let idp = Idp::start("tok").await;
    let addr = serve_with(&idp, &[], |metadata| OAuthResourceMetadata {
        client_secret: None,
        ..metadata
    })
    .await;
    let metadata = get(addr, "/.well-known/oauth-protected-resource/vgi", &[]).await;
    let document: Json = serde_json::from_slice(metadata.body()).unwrap();
    assert!(document.get("token_endpoint").is_none(), "{document}");
    // The login itself still works with a public client.
    let (params, _) = start_login(addr, "/vgi").await;
    assert_eq!(field(&params, "client_id"), Some(CLIENT_ID));
}

#[test]
fn the_flow_needs_metadata_with_a_client_id() {
    let pkce = || OAuthPkce::new().with_session_secret(SECRET);
    let no_metadata = HttpConfig::new()
        .with_authenticate(bearer_static([]))
        .with_oauth_pkce(pkce());
    let no_client = HttpConfig::new()
        .with_authenticate(
            with_resource_metadata(
                bearer_static([]),
                OAuthResourceMetadata::new("https://api.example/vgi", ["https://idp.example"]),
            )
            .unwrap(),
        )
        .with_oauth_pkce(pkce());
    for config in [
        HttpConfig::new().with_oauth_pkce(pkce()),
        no_metadata,
        no_client,
    ] {
        let err = HttpServer::new(who(), config).unwrap_err();
        assert_error_contains(&err, "client_id");
    }
}
