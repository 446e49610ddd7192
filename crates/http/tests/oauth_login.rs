//! Browser logins with OAuth 2.0 and PKCE, through a real server and a
//! mock authorization server: the redirect to log in, the callback's code
//! exchange and the cookie it sets, and the return to an allowed frontend.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod clock;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}
mod oauth_support;

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use common::clock::now;
use common::reply::Reply;
use common::request::request;
use common::send::send;
use http::{Request, StatusCode};
use http_body_util::Full;
use oauth_support::browser::{BROWSER, set_cookie, start_login};
use oauth_support::idp::{Idp, field, form};
use oauth_support::server::{CLIENT_ID, CLIENT_SECRET, get, serve};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A JWT-shaped token (unsigned: the server's authenticator only looks
/// it up) that expires at `exp`.
fn token_expiring(exp: i64) -> String {
    let payload = URL_SAFE_NO_PAD.encode(json!({ "sub": "alice", "exp": exp }).to_string());
    format!("eyJhbGciOiJub25lIn0.{payload}.c2ln")
}

async fn whoami(addr: SocketAddr, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::post("/vgi/whoami")
        .header("host", addr.to_string())
        .header("content-type", vgirpc_http::ARROW_STREAM);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = Bytes::from(request("whoami", vec![]));
    send(addr, builder.body(Full::new(body)).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_refused_is_sent_to_log_in_with_a_pkce_challenge() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &[]).await;

    let reply = get(addr, "/vgi/describe?x=1", &[BROWSER]).await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    assert_eq!(
        reply.header("cache-control"),
        Some("no-cache, no-store, must-revalidate")
    );
    // The refusal's challenge stays, for clients that follow no redirects.
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains("client_id=\"my-client-id\"")
    );
    let location = reply.header("location").unwrap();
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, format!("{}/authorize", idp.url));
    let params = form(query);
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response_type",
            "client_id",
            "redirect_uri",
            "code_challenge",
            "code_challenge_method",
            "state",
            "scope"
        ]
    );
    assert_eq!(field(&params, "response_type"), Some("code"));
    assert_eq!(field(&params, "client_id"), Some(CLIENT_ID));
    assert_eq!(
        field(&params, "redirect_uri").unwrap(),
        format!("http://{addr}/vgi/_oauth/callback")
    );
    assert_eq!(field(&params, "code_challenge_method"), Some("S256"));
    assert_eq!(field(&params, "code_challenge").unwrap().len(), 43);
    assert_eq!(field(&params, "state").unwrap().len(), 32);
    assert_eq!(field(&params, "scope"), Some("openid email"));

    let session = set_cookie(&reply, "_vgi_oauth_session");
    let (_, attributes) = session.split_once(';').unwrap();
    assert_eq!(
        attributes,
        " HttpOnly; Max-Age=600; Path=/vgi/_oauth/; SameSite=Lax"
    );

    // Two logins never share a challenge or a state.
    let (again, _) = start_login(addr, "/vgi").await;
    assert_ne!(field(&again, "state"), field(&params, "state"));
    assert_ne!(
        field(&again, "code_challenge"),
        field(&params, "code_challenge")
    );

    // Only browsers' GETs: an API client keeps its 401.
    let api = get(addr, "/vgi", &[("accept", "application/json")]).await;
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let post = whoami(addr, &[BROWSER]).await;
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert!(post.header("location").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_exchanges_the_code_and_sets_the_auth_cookie() {
    let token = token_expiring(now() + 3600);
    let idp = Idp::start(&token).await;
    let addr = serve(&idp, &[&token]).await;
    let (params, session) = start_login(addr, "/vgi/describe?x=1").await;
    let state = field(&params, "state").unwrap();

    let reply = get(
        addr,
        &format!("/vgi/_oauth/callback?code=the-code&state={state}"),
        &[("cookie", &format!("_vgi_oauth_session={session}"))],
    )
    .await;
    assert_eq!(reply.status(), StatusCode::FOUND, "{:?}", reply.body());
    assert_eq!(reply.header("location"), Some("/vgi/describe?x=1"));

    // The exchange proves the browser holds the verifier behind the challenge.
    let sent = idp.last_form();
    assert_eq!(field(&sent, "grant_type"), Some("authorization_code"));
    assert_eq!(field(&sent, "code"), Some("the-code"));
    assert_eq!(field(&sent, "client_id"), Some(CLIENT_ID));
    assert_eq!(field(&sent, "client_secret"), Some(CLIENT_SECRET));
    assert_eq!(
        field(&sent, "redirect_uri").unwrap(),
        format!("http://{addr}/vgi/_oauth/callback")
    );
    let verifier = field(&sent, "code_verifier").unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        field(&params, "code_challenge").unwrap()
    );

    // Readable by the page's scripts (no HttpOnly), for the whole prefix.
    let auth = set_cookie(&reply, "_vgi_auth");
    assert_eq!(
        auth,
        format!("_vgi_auth={token}; Max-Age=3600; Path=/vgi; SameSite=Lax")
    );
    assert_eq!(
        set_cookie(&reply, "_vgi_oauth_session"),
        "_vgi_oauth_session=; HttpOnly; Max-Age=0; Path=/vgi/_oauth/; SameSite=Lax"
    );

    // The cookie now authenticates, for pages and calls alike.
    let cookie = format!("_vgi_auth={token}");
    let page = get(addr, "/vgi", &[BROWSER, ("cookie", &cookie)]).await;
    assert_eq!(page.status(), StatusCode::OK);
    let call = whoami(addr, &[("cookie", &cookie)]).await;
    assert_eq!(call.status(), StatusCode::OK);
    assert!(call.body().windows(5).any(|w| w == b"alice"));
    let forged = whoami(addr, &[("cookie", "_vgi_auth=forged")]).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_to_is_honoured_only_for_allowed_origins() {
    let token = token_expiring(now() + 3600);
    let idp = Idp::start(&token).await;
    let addr = serve(&idp, &[&token]).await;

    let (foreign, _) = start_login(addr, "/vgi?_vgi_return_to=https://evil.example/cb").await;
    assert_eq!(field(&foreign, "access_type"), None);

    let (params, session) =
        start_login(addr, "/vgi?_vgi_return_to=http://localhost:5173/cb%23x").await;
    assert_eq!(field(&params, "access_type"), Some("offline"));
    assert_eq!(field(&params, "prompt"), Some("consent"));
    let state = field(&params, "state").unwrap();
    let reply = get(
        addr,
        &format!("/vgi/_oauth/callback?code=c&state={state}"),
        &[("cookie", &format!("_vgi_oauth_session={session}"))],
    )
    .await;
    assert_eq!(reply.status(), StatusCode::FOUND);
    let token_endpoint = format!("{}/token", idp.url).replace(':', "%3A");
    assert_eq!(
        reply.header("location").unwrap(),
        format!(
            "http://localhost:5173/cb#x&token={token}&refresh_token=refresh/me\
             &token_endpoint={token_endpoint}&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"
        )
    );
    // The token went to the frontend, not into a cookie here.
    assert!(
        reply
            .headers()
            .get_all("set-cookie")
            .iter()
            .all(|c| c.to_str().unwrap().starts_with("_vgi_oauth_session=;"))
    );

    // Already logged in: straight back to the frontend, unless the token expired.
    let cookie = format!("_vgi_auth={token}");
    let back = get(
        addr,
        "/vgi?_vgi_return_to=https://cupola.query-farm.services/app",
        &[BROWSER, ("cookie", &cookie)],
    )
    .await;
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_eq!(
        back.header("location").unwrap(),
        format!("https://cupola.query-farm.services/app#token={token}")
    );
    let stale = format!("_vgi_auth={}", token_expiring(now() - 10));
    let relogin = get(
        addr,
        "/vgi?_vgi_return_to=https://cupola.query-farm.services/app",
        &[BROWSER, ("cookie", &stale)],
    )
    .await;
    assert_eq!(relogin.status(), StatusCode::FOUND);
    assert!(relogin.header("location").unwrap().starts_with(&idp.url));
    let elsewhere = get(
        addr,
        "/vgi?_vgi_return_to=https://evil.example/app",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::OK);
}
