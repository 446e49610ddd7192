//! What the authentication tests share: a service that reports who called
//! it, a server to run it, keys made on the spot, and a JWKS server.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use vgirpc::{CallContext, RpcError, Server};
use vgirpc_http::{HttpConfig, HttpServer};

use crate::common::{Reply, request, send};

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

/// Serves [`Who`] as `config` says.
pub(crate) async fn start(config: HttpConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve(listener, server(config));
    addr
}

/// [`Who`] behind the HTTP stack `config` describes.
pub(crate) fn server(config: HttpConfig) -> HttpServer {
    HttpServer::new(who(), config).unwrap()
}

/// The [`Who`] service's server, before any transport.
pub(crate) fn who() -> Server {
    Server::new(WhoServer::new(WhoImpl)).unwrap()
}

/// Serves `http` on `listener` until the test ends.
pub(crate) fn serve(listener: TcpListener, http: HttpServer) {
    tokio::spawn(http.serve(listener, std::future::pending()));
}

/// A `GET` of `path`.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    let request = Request::get(path)
        .header("host", "test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, request).await
}

/// Calls `whoami` with `headers`.
pub(crate) async fn whoami(addr: SocketAddr, headers: &[(&str, &str)]) -> Reply {
    whoami_at(addr, "/whoami", headers).await
}

/// Calls `whoami` at `path` (under a prefix) with `headers`.
pub(crate) async fn whoami_at(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::post(path)
        .header("host", "test")
        .header("content-type", vgirpc_http::ARROW_STREAM);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = Bytes::from(request("whoami", vec![]));
    send(addr, builder.body(Full::new(body)).unwrap()).await
}

/// A caller as `whoami` reports it.
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) domain: String,
    pub(crate) principal: String,
    pub(crate) claims: Json,
}

/// The caller an accepted `whoami` reply names; panics on any other reply.
pub(crate) fn caller(reply: &Reply) -> Caller {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let batches = reply.batches();
    let column = batches.last().unwrap().batch.column(0).clone();
    let text = column
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .value(0)
        .to_owned();
    let mut parts = text.splitn(3, '|');
    Caller {
        domain: parts.next().unwrap().to_owned(),
        principal: parts.next().unwrap().to_owned(),
        claims: serde_json::from_str(parts.next().unwrap()).unwrap(),
    }
}

/// A `401` reply's body.
pub(crate) fn refusal(reply: &Reply) -> String {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{:?}", reply.body);
    String::from_utf8(reply.body.to_vec()).unwrap()
}

/// A signing key and its public JWK.
pub(crate) struct Signer {
    pub(crate) kid: String,
    pub(crate) alg: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) jwk: Json,
}

impl Signer {
    /// An RSA key (RS256).
    pub(crate) fn rsa(kid: &str) -> Self {
        let private = <rsa::PrivateKey as rsa::Generate>::generate();
        let der = private.to_pkcs1_der().unwrap();
        Self {
            kid: kid.into(),
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(private.n_bytes()),
                "e": URL_SAFE_NO_PAD.encode(private.e_bytes()),
            }),
        }
    }

    /// A P-256 key (ES256).
    pub(crate) fn ec(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "EC", "kid": kid, "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }),
        }
    }

    /// An Ed25519 key (EdDSA).
    pub(crate) fn ed(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "OKP", "kid": kid, "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
            }),
        }
    }

    /// `claims` signed with this key, the header naming its id.
    pub(crate) fn sign(&self, claims: &Json) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// A JWKS document of `signers`' public keys.
pub(crate) fn jwks(signers: &[&Signer]) -> Json {
    json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() })
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An identity provider's key endpoint: `/jwks.json`, and OpenID Connect
/// discovery pointing at it. Counts the key fetches.
#[derive(Clone)]
pub(crate) struct JwksServer {
    pub(crate) base: String,
    document: Arc<Mutex<Json>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub(crate) async fn start(document: Json) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = Self {
            base,
            document: Arc::new(Mutex::new(document)),
            fetches: Arc::new(AtomicUsize::new(0)),
        };
        let state = server.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(request.uri().path())) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let json = |value: &Json| {
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(value.to_string())))
                .unwrap()
        };
        match path {
            "/jwks.json" => {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                json(&self.document.lock().unwrap())
            }
            "/.well-known/openid-configuration" => json(&json!({
                "issuer": self.base,
                "jwks_uri": self.jwks_url(),
            })),
            _ => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        }
    }

    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    /// Serves `document` from now on.
    pub(crate) fn set(&self, document: Json) {
        *self.document.lock().unwrap() = document;
    }

    /// Key fetches so far.
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
