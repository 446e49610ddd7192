//! JWT bearer authentication against a JWKS, through a real server: who
//! the caller is, every refusal and its message, key rotation, and the
//! places keys come from.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "auth_support"]
mod auth_support {
    pub(crate) mod caller;
    pub(crate) mod caller_claims;
    pub(crate) mod caller_domain;
    pub(crate) mod ec_key;
    pub(crate) mod jwks_server;
    pub(crate) mod refusal;
    pub(crate) mod request;
    pub(crate) mod signer;
    pub(crate) mod start;
    pub(crate) mod who;
}
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod clock;
    pub(crate) mod errors;
    pub(crate) mod header;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use auth_support::caller::{caller, whoami};
use auth_support::jwks_server::JwksServer;
use auth_support::refusal::refusal;
use auth_support::signer::{Signer, jwks};
use auth_support::start::start;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::clock::now;
use common::errors::assert_error_contains;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};
use vgirpc_http::{HttpConfig, HttpError, JwksSource, JwtAuthenticator, JwtConfig};

const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "vgi-api";

/// One RSA key for the whole binary: making one takes a while.
fn rsa() -> &'static Signer {
    static KEY: OnceLock<Signer> = OnceLock::new();
    KEY.get_or_init(|| Signer::rsa("rsa-1"))
}

fn claims(sub: &str) -> Json {
    json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now(), "exp": now() + 600 })
}

fn with(mut claims: Json, extra: Json) -> Json {
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    claims
}

fn config(source: JwksSource) -> JwtConfig {
    JwtConfig::new([ISSUER], [AUDIENCE]).jwks(source)
}

async fn server(config: JwtConfig) -> std::net::SocketAddr {
    let auth = tokio::task::spawn_blocking(move || JwtAuthenticator::new(config))
        .await
        .unwrap()
        .unwrap();
    start(HttpConfig::new().with_authenticate(auth)).await
}

async fn bearer(addr: std::net::SocketAddr, token: &str) -> common::reply::Reply {
    whoami(addr, &[("authorization", &format!("Bearer {token}"))]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_names_the_caller_and_carries_every_claim() {
    let (ec, ed) = (Signer::ec("ec-1"), Signer::ed("ed-1"));
    let keys = jwks(&[rsa(), &ec, &ed]).to_string();
    let addr = server(config(JwksSource::Json(keys))).await;

    let token = rsa().sign(&with(claims("alice"), json!({ "scope": "read write" })));
    let who = caller(&bearer(addr, &token).await);
    assert_eq!(who.domain(), "jwt");
    assert_eq!(who.principal(), "alice");
    assert_eq!(who.claims()["scope"], "read write");
    assert_eq!(who.claims()["iss"], ISSUER);
    assert_eq!(who.claims()["aud"], AUDIENCE);

    for (signer, name) in [(&ec, "bob"), (&ed, "carol")] {
        let who = caller(&bearer(addr, &signer.sign(&claims(name))).await);
        assert_eq!(who.principal(), name, "{:?}", signer.alg);
    }

    // An audience list naming ours is accepted too.
    let token = rsa().sign(&with(claims("dave"), json!({ "aud": ["other", AUDIENCE] })));
    assert_eq!(caller(&bearer(addr, &token).await).principal(), "dave");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_principal_claim_domain_and_issuers_are_configurable() {
    let keys = jwks(&[rsa()]).to_string();
    let config = JwtConfig::new(["https://first.test", ISSUER], [AUDIENCE])
        .jwks(JwksSource::Json(keys))
        .principal_claim("email")
        .domain("corp");
    let addr = server(config).await;

    let token = rsa().sign(&with(claims("u-1"), json!({ "email": "eve@corp.test" })));
    let who = caller(&bearer(addr, &token).await);
    assert_eq!((who.domain(), who.principal()), ("corp", "eve@corp.test"));

    // Missing: empty, as in the reference.
    let who = caller(&bearer(addr, &rsa().sign(&claims("u-2"))).await);
    assert_eq!(who.principal(), "");
}

/// `payload` signed with HS256 under `secret`, naming the RSA key's id.
fn hmac_token(secret: &[u8], payload: &Json) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(rsa().kid.clone());
    jsonwebtoken::encode(&header, payload, &EncodingKey::from_secret(secret).unwrap()).unwrap()
}

fn unsigned(payload: &Json) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT" }).to_string());
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload.to_string()))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_refusal_is_a_401_that_says_why() {
    let keys = jwks(&[rsa()]).to_string();
    let addr = server(config(JwksSource::Json(keys))).await;
    let good = rsa().sign(&claims("alice"));
    let mut forged = good.split('.').map(str::to_owned).collect::<Vec<_>>();
    forged[1] = URL_SAFE_NO_PAD.encode(claims("mallory").to_string());
    // The public key as an HMAC secret: what algorithm confusion tries.
    let public_as_secret = rsa().jwk["n"].as_str().unwrap().as_bytes().to_vec();

    let cases = [
        (
            "expired",
            rsa().sign(&with(claims("a"), json!({ "exp": now() - 5 }))),
            "expired_token: The token is expired",
        ),
        (
            "not yet valid",
            rsa().sign(&with(claims("a"), json!({ "nbf": now() + 300 }))),
            "invalid_claim: The token is not yet valid",
        ),
        (
            "wrong issuer",
            rsa().sign(&with(claims("a"), json!({ "iss": "https://evil.test/" }))),
            "invalid_claim: Invalid claim: 'iss'",
        ),
        (
            "wrong audience",
            rsa().sign(&with(claims("a"), json!({ "aud": "someone-else" }))),
            "invalid_claim: Invalid claim: 'aud'",
        ),
        (
            "no audience",
            rsa().sign(&json!({ "iss": ISSUER, "sub": "a", "exp": now() + 60 })),
            "missing_claim: Missing claim: 'aud'",
        ),
        (
            "bad signature",
            forged.join("."),
            "bad_signature: The signature does not verify",
        ),
        (
            "alg none",
            unsigned(&claims("a")),
            "unsupported_algorithm: Algorithm 'none' is not allowed",
        ),
        (
            "HS256 keyed with the public key",
            hmac_token(&public_as_secret, &claims("a")),
            "unsupported_algorithm: Algorithm 'HS256' is not allowed",
        ),
        (
            "unknown kid",
            Signer::ec("ec-unknown").sign(&claims("a")),
            "invalid_key_id: No key for kid: 'ec-unknown'",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_owned(),
            "decode_error: Invalid JSON Web Signature",
        ),
    ];
    for (case, token, reason) in cases {
        let reply = bearer(addr, &token).await;
        let message = format!("Invalid JWT: {reason}");
        assert_eq!(refusal(&reply), message, "{case}");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                format!("Bearer error=\"invalid_token\", error_description=\"{message}\"").as_str()
            ),
            "{case}"
        );
    }

    for headers in [vec![], vec![("authorization", "Basic YTpi")]] {
        let reply = whoami(addr, &headers).await;
        assert_eq!(refusal(&reply), "Missing or invalid Authorization header");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn leeway_forgives_clock_skew_on_exp_and_nbf() {
    let keys = jwks(&[rsa()]).to_string();
    let strict = server(config(JwksSource::Json(keys.clone()))).await;
    let lenient = server(config(JwksSource::Json(keys)).leeway(Duration::from_secs(60))).await;

    let late = rsa().sign(&with(claims("a"), json!({ "exp": now() - 20 })));
    let early = rsa().sign(&with(claims("a"), json!({ "nbf": now() + 20 })));
    for token in [&late, &early] {
        assert_eq!(bearer(strict, token).await.status(), 401);
        assert_eq!(caller(&bearer(lenient, token).await).principal(), "a");
    }
    let ancient = rsa().sign(&with(claims("a"), json!({ "exp": now() - 120 })));
    assert_eq!(bearer(lenient, &ancient).await.status(), 401);

    // `exp` is checked when present; required only on request.
    let no_exp = rsa().sign(&json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "a" }));
    assert_eq!(caller(&bearer(strict, &no_exp).await).principal(), "a");
    let keys = jwks(&[rsa()]).to_string();
    let demanding = server(config(JwksSource::Json(keys)).require_exp(true)).await;
    assert_eq!(
        refusal(&bearer(demanding, &no_exp).await),
        "Invalid JWT: missing_claim: Missing claim: 'exp'"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_kid_refreshes_the_key_set_at_a_limited_rate() {
    let idp = JwksServer::start(jwks(&[rsa()])).await;
    let config = config(JwksSource::Url(idp.jwks_url()))
        .refresh(Duration::from_secs(3600), Duration::from_millis(300));
    let addr = server(config).await;
    assert_eq!(idp.fetches(), 1);
    assert_eq!(
        caller(&bearer(addr, &rsa().sign(&claims("a"))).await).principal(),
        "a"
    );

    // The provider rotates in a new key; a token signed with it is refused
    // until the set is fetched again, which that refusal asked for.
    let rotated = Signer::ec("ec-2");
    idp.set(jwks(&[rsa(), &rotated]));
    let token = rotated.sign(&claims("b"));
    let started = Instant::now();
    let first = bearer(addr, &token).await;
    assert_eq!(
        refusal(&first),
        "Invalid JWT: invalid_key_id: No key for kid: 'ec-2'"
    );
    loop {
        let reply = bearer(addr, &token).await;
        if reply.status() == 200 {
            assert_eq!(caller(&reply).principal(), "b");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never refreshed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The refresh waited out the minimum interval after the first fetch.
    let after_rotation = idp.fetches();
    assert!(after_rotation >= 2, "{after_rotation}");

    // A flood of made-up key ids costs at most one fetch per interval.
    let burst = Instant::now();
    for i in 0..40 {
        let stranger = Signer::ed(&format!("made-up-{i}"));
        assert_eq!(
            bearer(addr, &stranger.sign(&claims("x"))).await.status(),
            401
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let intervals = burst.elapsed().as_millis() / 300 + 1;
    let extra = (idp.fetches() - after_rotation) as u128;
    assert!(
        extra <= intervals,
        "{extra} fetches in {intervals} intervals"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_come_from_a_file_or_from_discovery() {
    let dir = std::env::temp_dir().join(format!("vgirpc-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("jwks.json");
    std::fs::write(&file, jwks(&[rsa()]).to_string()).unwrap();
    let addr = server(config(JwksSource::parse(file.to_str().unwrap()))).await;
    assert_eq!(
        caller(&bearer(addr, &rsa().sign(&claims("f"))).await).principal(),
        "f"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // OpenID Connect discovery on the first issuer finds jwks_uri.
    let idp = JwksServer::start(jwks(&[rsa()])).await;
    let discovered = JwtConfig::new([idp.base.clone()], [AUDIENCE]);
    let addr = server(discovered).await;
    let token = rsa().sign(&with(claims("d"), json!({ "iss": idp.base })));
    assert_eq!(caller(&bearer(addr, &token).await).principal(), "d");
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configurations_fail_at_start() {
    let keys = || JwksSource::Json(jwks(&[rsa()]).to_string());
    let fails = |config: JwtConfig| async move {
        let error = tokio::task::spawn_blocking(move || JwtAuthenticator::new(config))
            .await
            .unwrap()
            .unwrap_err();
        match error {
            HttpError::Config(message) => message,
            other => panic!("{other}"),
        }
    };
    let two_algorithms = config(keys()).algorithms(["RS256", "HS256"]);
    assert_error_contains(&fails(two_algorithms).await, "\"HS256\" is not accepted");
    let unsigned = config(keys()).algorithms(["none"]);
    assert_error_contains(&fails(unsigned).await, "\"none\"");
    let no_issuer = JwtConfig::new(Vec::<String>::new(), [AUDIENCE]).jwks(keys());
    assert_error_contains(&fails(no_issuer).await, "issuer");
    let no_audience = JwtConfig::new([ISSUER], Vec::<String>::new()).jwks(keys());
    assert_error_contains(&fails(no_audience).await, "audience");
    let secret_only = json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0", "kid": "s" }] });
    let secret_only = config(JwksSource::Json(secret_only.to_string()));
    assert_error_contains(&fails(secret_only).await, "no public signing key");

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks.json", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = config(JwksSource::Url(url));
    assert_error_contains(&fails(unreachable).await, "cannot load the JWKS");
}
