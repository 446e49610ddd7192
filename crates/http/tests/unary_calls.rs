//! Unary calls over the HTTP transport: a round trip with its capability
//! headers, request ids echoed back, method failures sent as 200 with the
//! error header, and bearer authentication refusing with 401 everywhere
//! but the health check.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod probe;
    pub(crate) mod probe_call;
    pub(crate) mod probe_start;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
}

use std::sync::Arc;

use arrow_array::{Array, Int64Array};
use bytes::Bytes;
use common::int_param::int;
use common::probe::{keyed, post};
use common::probe_call::call;
use common::probe_start::start;
use common::request::request;
use common::send::send;
use http::{Request, StatusCode};
use http_body_util::Full;
use vgirpc_http::{AuthContext, bearer_static};

#[tokio::test(flavor = "multi_thread")]
async fn unary_call_round_trips_with_capability_headers() {
    let server = start(keyed().with_max_request_bytes(1 << 20)).await;
    let reply = call(
        server.addr,
        "/echo",
        request("echo", vec![("value", int(42))]),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some(vgirpc_http::ARROW_STREAM)
    );
    assert_eq!(reply.header("vgi-max-request-bytes"), Some("1048576"));
    assert_eq!(reply.header("vgi-externalization-enabled"), Some("false"));
    assert_eq!(reply.header("x-request-id").map(str::len), Some(16));
    let result = reply.batches().pop().unwrap();
    let values = result
        .batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(values.value(0), 42);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_are_echoed() {
    let server = start(keyed()).await;
    let body = request("echo", vec![("value", int(1))]);
    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("x-request-id", "abc123")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.header("x-request-id"), Some("abc123"));
}

#[tokio::test(flavor = "multi_thread")]
async fn method_failures_travel_as_200_with_the_error_header() {
    let server = start(keyed()).await;
    let body = request(
        "fail",
        vec![(
            "message",
            Arc::new(arrow_array::StringArray::from(vec!["boom"])),
        )],
    );
    let reply = call(server.addr, "/fail", body).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let error = reply.error().expect("an error batch");
    assert_eq!(
        (error.error_type.as_str(), error.message.as_str()),
        ("RuntimeError", "boom")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_refuses_with_plain_text_401_but_not_health() {
    let tokens = [(
        "s3cret".to_owned(),
        AuthContext::authenticated("bearer", "alice"),
    )];
    let server = start(keyed().with_authenticate(bearer_static(tokens))).await;
    let body = request("echo", vec![("value", int(7))]);

    let reply = call(server.addr, "/echo", body.clone()).await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    assert!(String::from_utf8_lossy(reply.body()).contains("Authorization"));

    let health = send(
        server.addr,
        Request::get("/health")
            .header("host", "test")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status(), StatusCode::OK);
    let json: serde_json::Value = serde_json::from_slice(health.body()).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["protocol"], "Probe");

    let reply = send(
        server.addr,
        post("/echo", body.clone())
            .header("authorization", "Bearer s3cret")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(reply.ints(), [7]);

    // The method sees who called it.
    let body = request("whoami", vec![]);
    let reply = send(
        server.addr,
        post("/whoami", body.clone())
            .header("authorization", "Bearer s3cret")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::OK);
    let answer = reply.batches();
    let column = answer.last().unwrap().batch.column(0);
    let text = column
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(text.value(0), "bearer:alice");
}
