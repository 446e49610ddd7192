//! A mock identity provider serving its keys.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;

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
