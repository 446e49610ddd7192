//! The mock authorization server: its discovery document and its token
//! endpoint, which records every form it is sent.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

/// A form's pairs, in order.
pub(crate) type Form = Vec<(String, String)>;

/// What the mock authorization server answers on `/token`, and the forms
/// it was sent there.
#[derive(Clone)]
pub(crate) struct Idp {
    pub(crate) url: String,
    pub(crate) forms: Arc<Mutex<Vec<Form>>>,
    pub(crate) answer: Arc<Mutex<(StatusCode, String)>>,
}

impl Idp {
    pub(crate) async fn start(access_token: &str) -> Self {
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

    pub(crate) fn last_form(&self) -> Form {
        self.forms
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a token request")
    }
}

/// The pairs of a form or query string.
pub(crate) fn form(text: &str) -> Form {
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

pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}
