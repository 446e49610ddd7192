//! Browser logins with OAuth 2.0 and PKCE, through a real server and a
//! mock authorization server: the redirect to log in, the callback's code
//! exchange, the cookies and their refusals, logout, the error pages, and
//! the token endpoint proxy.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use vgirpc::{CallContext, RpcError, Server};
use vgirpc_http::{
    AuthContext, HttpConfig, HttpServer, OAuthPkce, OAuthResourceMetadata, bearer_static,
    with_resource_metadata,
};

use common::errors::assert_error_contains;
use common::{Reply, request, send};

const SECRET: &[u8] = b"oauth test secret";
const CLIENT_ID: &str = "my-client-id";
const CLIENT_SECRET: &str = "my-client-secret";

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

/// A JWT-shaped token (unsigned: the server's authenticator only looks
/// it up) that expires at `exp`.
fn token_expiring(exp: i64) -> String {
    let payload = URL_SAFE_NO_PAD.encode(json!({ "sub": "alice", "exp": exp }).to_string());
    format!("eyJhbGciOiJub25lIn0.{payload}.c2ln")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A form's pairs, in order.
type Form = Vec<(String, String)>;

/// What the mock authorization server answers on `/token`, and the forms
/// it was sent there.
#[derive(Clone)]
struct Idp {
    url: String,
    forms: Arc<Mutex<Vec<Form>>>,
    answer: Arc<Mutex<(StatusCode, String)>>,
}

impl Idp {
    async fn start(access_token: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let idp = Idp {
            url: format!("http://{}", listener.local_addr().unwrap()),
            forms: Arc::default(),
            answer: Arc::new(Mutex::new((
                StatusCode::OK,
                json!({
                    "access_token": access_token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": "refresh/me",
                })
                .to_string(),
            ))),
        };
        let shared = idp.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let idp = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let idp = idp.clone();
                        async move { Ok::<_, Infallible>(idp.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        idp
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let (status, body) = match path.as_str() {
            "/.well-known/openid-configuration" => (
                StatusCode::OK,
                json!({
                    "issuer": self.url,
                    "authorization_endpoint": format!("{}/authorize", self.url),
                    "token_endpoint": format!("{}/token", self.url),
                })
                .to_string(),
            ),
            "/token" => {
                self.forms
                    .lock()
                    .unwrap()
                    .push(form(&String::from_utf8_lossy(&body)));
                self.answer.lock().unwrap().clone()
            }
            _ => (StatusCode::NOT_FOUND, String::new()),
        };
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }

    fn last_form(&self) -> Form {
        self.forms
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a token request")
    }
}

/// The pairs of a form or query string.
fn form(text: &str) -> Form {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'%' {
                let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                at += 3;
            } else {
                out.push(bytes[at]);
                at += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (decode(name), decode(value)))
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A server under `/vgi` whose only valid bearer tokens are `tokens`,
/// logging browsers in at `idp`.
async fn serve(idp: &Idp, tokens: &[&str]) -> SocketAddr {
    serve_with(idp, tokens, |metadata| metadata).await
}

async fn serve_with(
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
    let http = HttpServer::new(Server::new(WhoServer::new(WhoImpl)).unwrap(), config).unwrap();
    tokio::spawn(http.serve(listener, std::future::pending()));
    addr
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::get(path).header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(addr, builder.body(Full::new(Bytes::new())).unwrap()).await
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut builder = Request::post(path).header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = Full::new(Bytes::from(body.to_owned()));
    send(addr, builder.body(body).unwrap()).await
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

/// The `Set-Cookie` value for cookie `name`.
fn set_cookie<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", reply.headers))
}

/// The value part of a `Set-Cookie`.
fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .unwrap()
        .1
}

const BROWSER: (&str, &str) = ("accept", "text/html,application/xhtml+xml");

/// A login started by a browser at `path`: the authorization URL's query
/// and the session cookie.
async fn start_login(addr: SocketAddr, path: &str) -> (Vec<(String, String)>, String) {
    let reply = get(addr, path, &[BROWSER]).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{:?}", reply.body);
    let location = reply.header("location").unwrap();
    let (_, query) = location.split_once('?').unwrap();
    let session = cookie_value(set_cookie(&reply, "_vgi_oauth_session")).to_owned();
    (form(query), session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_refused_is_sent_to_log_in_with_a_pkce_challenge() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &[]).await;

    let reply = get(addr, "/vgi/describe?x=1", &[BROWSER]).await;
    assert_eq!(reply.status, StatusCode::FOUND);
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
    assert_eq!(api.status, StatusCode::UNAUTHORIZED);
    let post = whoami(addr, &[BROWSER]).await;
    assert_eq!(post.status, StatusCode::UNAUTHORIZED);
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
    assert_eq!(reply.status, StatusCode::FOUND, "{:?}", reply.body);
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
    assert_eq!(page.status, StatusCode::OK);
    let call = whoami(addr, &[("cookie", &cookie)]).await;
    assert_eq!(call.status, StatusCode::OK);
    assert!(call.body.windows(5).any(|w| w == b"alice"));
    let forged = whoami(addr, &[("cookie", "_vgi_auth=forged")]).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
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
    assert_eq!(reply.status, StatusCode::FOUND);
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
            .headers
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
    assert_eq!(back.status, StatusCode::FOUND);
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
    assert_eq!(relogin.status, StatusCode::FOUND);
    assert!(relogin.header("location").unwrap().starts_with(&idp.url));
    let elsewhere = get(
        addr,
        "/vgi?_vgi_return_to=https://evil.example/app",
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::OK);
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
    assert_eq!(good.status, StatusCode::FOUND);
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
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}");
        let page = String::from_utf8_lossy(&reply.body);
        assert!(
            page.contains("Session expired or invalid. Please try again."),
            "{why}: {page}"
        );
        assert!(reply.headers.get("set-cookie").is_none(), "{why}");
    }

    let mismatch = callback(forge_session(4, now(), "other")).await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&mismatch.body).contains("State mismatch"));
    let missing = get(addr, "/vgi/_oauth/callback?code=c&state=s1", &[]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&missing.body).contains("Session cookie missing"));
    let no_code = get(addr, "/vgi/_oauth/callback?state=s1", &[]).await;
    assert_eq!(no_code.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&no_code.body).contains("Missing authorization code"));
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
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = String::from_utf8_lossy(&reply.body);
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
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);
    let page = String::from_utf8_lossy(&failed.body);
    assert!(page.contains("Token exchange with the authorization server failed."));
    assert!(page.contains("400 Bad Request"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_deletes_the_auth_cookie() {
    let idp = Idp::start("tok").await;
    let addr = serve(&idp, &["tok"]).await;
    let reply = get(addr, "/vgi/_oauth/logout", &[("cookie", "_vgi_auth=tok")]).await;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header("location"), Some("/vgi"));
    assert_eq!(
        set_cookie(&reply, "_vgi_auth"),
        "_vgi_auth=; Max-Age=0; Path=/vgi; SameSite=Lax"
    );
    let post = post(addr, "/vgi/_oauth/logout", &[], "").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), Some("GET, OPTIONS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_proxy_adds_the_secret_and_nothing_else() {
    let idp = Idp::start("new").await;
    let addr = serve(&idp, &[]).await;

    let metadata = get(addr, "/.well-known/oauth-protected-resource/vgi", &[]).await;
    assert_eq!(metadata.status, StatusCode::OK);
    let document: Json = serde_json::from_slice(&metadata.body).unwrap();
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
    assert_eq!(reply.status, StatusCode::OK);
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
    assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        json.body,
        r#"{"error": "invalid_request", "error_description": "Content-Type must be application/x-www-form-urlencoded"}"#
    );
    let grant = post(
        addr,
        "/vgi/_oauth/token",
        &[form_type, ("origin", "https://evil.example")],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(grant.status, StatusCode::BAD_REQUEST);
    assert!(grant.header("access-control-allow-origin").is_none());
    let error: Json = serde_json::from_slice(&grant.body).unwrap();
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
    let document: Json = serde_json::from_slice(&metadata.body).unwrap();
    assert!(document.get("token_endpoint").is_none(), "{document}");
    // The login itself still works with a public client.
    let (params, _) = start_login(addr, "/vgi").await;
    assert_eq!(field(&params, "client_id"), Some(CLIENT_ID));
}

#[test]
fn the_flow_needs_metadata_with_a_client_id() {
    let server = || Server::new(WhoServer::new(WhoImpl)).unwrap();
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
        let err = HttpServer::new(server(), config).unwrap_err();
        assert_error_contains(&err, "client_id");
    }
}
