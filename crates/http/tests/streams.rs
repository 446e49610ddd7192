//! Producer and exchange streams over the HTTP transport: continuation
//! tokens across workers sharing a key, how much one response carries with
//! and without a cap, fresh tokens on every exchange output, refused
//! foreign or tampered tokens, cancellation, and states that cannot be
//! resumed.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod errors;
    pub(crate) mod exception;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod probe;
    pub(crate) mod probe_call;
    pub(crate) mod probe_start;
    pub(crate) mod probe_turns;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
    pub(crate) mod stream_token;
}

use std::sync::Arc;

use arrow_array::{Array, Float64Array, RecordBatch};
use common::errors::assert_error_contains;
use common::int_param::int;
use common::probe::{float_schema, keyed};
use common::probe_call::call;
use common::probe_start::start;
use common::probe_turns::{tick, turn, turn_by_turn};
use common::request::request;
use http::StatusCode;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc_http::{HttpConfig, TokenKey};

#[tokio::test(flavor = "multi_thread")]
async fn producers_continue_with_tokens_on_any_worker_sharing_the_key() {
    let a = start(turn_by_turn()).await;
    let b = start(turn_by_turn()).await;
    let mut reply = call(
        a.addr,
        "/count/init",
        request("count", vec![("limit", int(3))]),
    )
    .await;
    let mut seen = reply.ints();
    let mut servers = [b.addr, a.addr].into_iter().cycle();
    while let Some(token) = reply.stream_token() {
        let next = servers.next().unwrap();
        reply = call(
            next,
            "/count/exchange",
            turn(&token, tick(), Metadata::new()),
        )
        .await;
        assert_eq!(reply.status(), StatusCode::OK);
        seen.extend(reply.ints());
    }
    assert_eq!(seen, [0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cap_a_short_producer_arrives_in_one_response() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(500))]),
    )
    .await;
    assert_eq!(reply.ints(), (0..500).collect::<Vec<_>>());
    assert_eq!(reply.stream_token(), None, "no continuation was needed");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_cap_an_endless_producer_still_hands_out_a_token() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(i64::MAX))]),
    )
    .await;
    let ints = reply.ints();
    assert!(!ints.is_empty());
    assert_eq!(ints, (0..ints.len() as i64).collect::<Vec<_>>());
    assert!(
        reply.stream_token().is_some(),
        "the turn ended with a token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn producers_fill_the_body_up_to_the_cap_before_handing_out_a_token() {
    let server = start(keyed().with_max_response_bytes(1 << 20)).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(50))]),
    )
    .await;
    assert_eq!(reply.ints(), (0..50).collect::<Vec<_>>());
    assert_eq!(
        reply.stream_token(),
        None,
        "the stream finished inside one response"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exchanges_carry_a_fresh_token_on_every_output() {
    let server = start(keyed()).await;
    let reply = call(
        server.addr,
        "/scale/init",
        request(
            "scale",
            vec![("factor", Arc::new(Float64Array::from(vec![2.0])))],
        ),
    )
    .await;
    let mut token = reply
        .stream_token()
        .expect("exchange init hands out a token");
    for round in 1..=3 {
        let input = RecordBatch::try_new(
            float_schema(),
            vec![Arc::new(Float64Array::from(vec![f64::from(round)]))],
        )
        .unwrap();
        let reply = call(
            server.addr,
            "/scale/exchange",
            turn(&token, input, Metadata::new()),
        )
        .await;
        assert_eq!(reply.status(), StatusCode::OK);
        let output = reply.batches().pop().unwrap();
        let values = output
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(values.value(0), 2.0 * f64::from(round));
        token = output
            .metadata
            .get(metadata::STREAM_STATE)
            .unwrap()
            .to_owned();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_and_tampered_tokens_are_400() {
    let ours = start(turn_by_turn()).await;
    let theirs = start(
        HttpConfig::new()
            .with_token_key(TokenKey::new(b"other key"))
            .with_max_response_bytes(1),
    )
    .await;
    let reply = call(
        theirs.addr,
        "/count/init",
        request("count", vec![("limit", int(5))]),
    )
    .await;
    let token = reply.stream_token().unwrap();

    let reply = call(
        ours.addr,
        "/count/exchange",
        turn(&token, tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "State token signature verification failed"
    );

    let reply = call(
        ours.addr,
        "/count/exchange",
        turn("@@@", tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "Malformed state token"
    );

    let body = write_stream_bytes(&empty_schema(), [(&tick(), &Metadata::new())]).unwrap();
    let reply = call(ours.addr, "/count/exchange", body).await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error().expect("an error batch").message,
        "Missing state token in exchange request"
    );

    // A token minted for one method does not resume another.
    let reply = call(
        theirs.addr,
        "/scale/exchange",
        turn(&token, tick(), Metadata::new()),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_error_contains(&reply.error().expect("an error batch"), "belongs to method");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_ends_the_stream_with_an_empty_answer() {
    let server = start(turn_by_turn()).await;
    let reply = call(
        server.addr,
        "/count/init",
        request("count", vec![("limit", int(9))]),
    )
    .await;
    let token = reply.stream_token().unwrap();
    let cancel = Metadata::new().with(metadata::CANCEL, "1");
    let reply = call(server.addr, "/count/exchange", turn(&token, tick(), cancel)).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(reply.batches().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn states_without_stream_state_fail_clearly_over_http() {
    let server = start(turn_by_turn()).await;
    let reply = call(server.addr, "/forgetful/init", request("forgetful", vec![])).await;
    // The first batch is produced; handing out the token is what fails.
    assert_eq!(reply.ints(), [0]);
    let error = reply.error().expect("an error batch");
    assert_error_contains(&error, "#[vgirpc::stream_state]");
    assert_error_contains(&error, "Forgetful");
}
