//! Authenticators in a chain, through a real server: the first to accept
//! wins, a forbidden caller stops the chain, and a refusal carries every
//! challenge.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "auth_support"]
mod auth_support {
    pub(crate) mod caller;
    pub(crate) mod caller_domain;
    pub(crate) mod refusal;
    pub(crate) mod request;
    pub(crate) mod start;
    pub(crate) mod who;
}
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use auth_support::caller::{caller, whoami};
use auth_support::refusal::refusal;
use auth_support::start::start;
use http::request::Parts;
use vgirpc_http::{AuthContext, AuthRejection, HttpConfig, bearer_static, chain, mtls_xfcc};

fn api_keys() -> impl vgirpc_http::Authenticate {
    bearer_static([(
        "k-123".to_owned(),
        AuthContext::authenticated("apikey", "ci-bot"),
    )])
}

/// Accepts `X-Basic: ok`; refuses everyone else with a `Basic` challenge,
/// and `X-Basic: banned` for good.
fn basic(request: &Parts) -> Result<AuthContext, AuthRejection> {
    match request.headers.get("x-basic").and_then(|v| v.to_str().ok()) {
        Some("ok") => Ok(AuthContext::authenticated("basic", "bea")),
        Some("banned") => Err(AuthRejection::forbidden("account disabled")),
        _ => Err(AuthRejection::new("no basic credentials")
            .with_challenge("Basic realm=\"vgi\", charset=\"UTF-8\"")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_authenticator_that_accepts_names_the_caller() {
    let auth = chain(api_keys()).or(basic).or(mtls_xfcc());
    let addr = start(HttpConfig::new().with_authenticate(auth)).await;
    let xfcc = ("x-forwarded-client-cert", "Subject=\"CN=svc\"");

    let both = whoami(
        addr,
        &[("authorization", "Bearer k-123"), ("x-basic", "ok")],
    )
    .await;
    assert_eq!(caller(&both).domain(), "apikey");
    let who = caller(&whoami(addr, &[("x-basic", "ok"), xfcc]).await);
    assert_eq!((who.domain(), who.principal()), ("basic", "bea"));
    // A wrong key is no reason to stop: the certificate still counts.
    let who = caller(&whoami(addr, &[("authorization", "Bearer nope"), xfcc]).await);
    assert_eq!((who.domain(), who.principal()), ("mtls", "svc"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_carries_every_challenge_and_a_forbidden_caller_stops_the_chain() {
    let auth = chain(api_keys()).or(basic).or(api_keys()).or(mtls_xfcc());
    let addr = start(HttpConfig::new().with_authenticate(auth)).await;

    let nobody = whoami(addr, &[]).await;
    assert_eq!(refusal(&nobody), "No authenticator accepted the request");
    // In order, each once; the certificate authenticator has none.
    assert_eq!(
        nobody.header("www-authenticate"),
        Some("Bearer, Basic realm=\"vgi\", charset=\"UTF-8\"")
    );

    // Banned before the certificate is even looked at.
    let banned = whoami(
        addr,
        &[
            ("x-basic", "banned"),
            ("x-forwarded-client-cert", "Subject=\"CN=svc\""),
        ],
    )
    .await;
    assert_eq!(refusal(&banned), "account disabled");
    assert_eq!(banned.header("www-authenticate"), None);

    // Without challenges, none is sent.
    let quiet = chain(mtls_xfcc()).or(mtls_xfcc());
    let addr = start(HttpConfig::new().with_authenticate(quiet)).await;
    let reply = whoami(addr, &[]).await;
    assert_eq!(refusal(&reply), "No authenticator accepted the request");
    assert_eq!(reply.header("www-authenticate"), None);
}
