//! Requests taking part in sessions, and what their replies must say.

use std::net::SocketAddr;

use arrow_array::ArrayRef;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;

use crate::common::int_param::int;
use crate::common::reply::Reply;
use crate::common::request::request;
use crate::common::send::send;

/// Integers of a reply that must not carry an error.
pub(crate) trait Checked {
    fn checked_ints(&self) -> Vec<i64>;
    fn int(&self) -> i64;
}

impl Checked for Reply {
    fn checked_ints(&self) -> Vec<i64> {
        if let Some(error) = self.error() {
            panic!("unexpected error: {error}");
        }
        self.ints()
    }

    fn int(&self) -> i64 {
        let ints = self.checked_ints();
        assert_eq!(ints.len(), 1, "{ints:?}");
        ints[0]
    }
}

/// How a request takes part in sessions.
#[derive(Clone, Default)]
pub(crate) struct Session {
    pub(crate) accept: bool,
    pub(crate) token: Option<String>,
    pub(crate) bearer: Option<&'static str>,
}

impl Session {
    pub(crate) fn accepting() -> Self {
        Self {
            accept: true,
            ..Self::default()
        }
    }

    pub(crate) fn with(token: &str) -> Self {
        Self {
            accept: true,
            token: Some(token.to_owned()),
            bearer: None,
        }
    }

    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "test")
            .header("content-type", vgirpc_http::ARROW_STREAM);
        if self.accept {
            builder = builder.header("VGI-Session-Accept", "true");
        }
        if let Some(token) = &self.token {
            builder = builder.header("VGI-Session", token);
        }
        if let Some(bearer) = self.bearer {
            builder = builder.header("authorization", format!("Bearer {bearer}"));
        }
        builder.body(Full::new(Bytes::from(body))).unwrap()
    }
}

pub(crate) async fn call(
    addr: SocketAddr,
    session: &Session,
    method: &str,
    params: Vec<(&str, ArrayRef)>,
) -> Reply {
    let body = request(method, params);
    send(
        addr,
        session.request(Method::POST, &format!("/{method}"), body),
    )
    .await
}

pub(crate) async fn add(addr: SocketAddr, session: &Session, by: i64) -> Reply {
    call(
        addr,
        session,
        "add",
        vec![("by", int(by)), ("millis", int(0))],
    )
    .await
}

/// Opens a session holding `initial`; returns the opening reply and token.
pub(crate) async fn open(addr: SocketAddr, initial: i64) -> (Reply, String) {
    let reply = call(
        addr,
        &Session::accepting(),
        "open",
        vec![("initial", int(initial))],
    )
    .await;
    let token = reply
        .header("vgi-session")
        .expect("the opening response carries the token")
        .to_owned();
    (reply, token)
}

pub(crate) fn assert_lost(reply: &Reply) {
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let error = reply.error().expect("an error batch");
    assert_eq!(error.error_type, "SessionLostError");
    assert_eq!(error.error_kind.as_deref(), Some("session_lost"));
}
