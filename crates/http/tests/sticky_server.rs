//! Sticky sessions as the whole server sees them: the capabilities it
//! advertises, calls serialized per session, stream turns resuming their
//! session, draining, and the session fields of access records.

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "common"]
mod common {
    pub(crate) mod batches;
    pub(crate) mod exception;
    pub(crate) mod header;
    pub(crate) mod int_param;
    pub(crate) mod ints;
    pub(crate) mod reply;
    pub(crate) mod request;
    pub(crate) mod send;
    pub(crate) mod stream_token;
}
mod sticky_support;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use common::int_param::int;
use common::request::request;
use common::send::send;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use sticky_support::server::{TestServer, key, serve, start, sticky};
use sticky_support::session::{Checked, Session, add, assert_lost, call, open};
use sticky_support::tally::{tally, value_schema};
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::{CallRecord, DispatchHook};
use vgirpc_http::{DrainHandle, HttpConfig, HttpServer, StickyConfig};

/// Keeps every access record.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<CallRecord>>>);

impl DispatchHook for Records {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

/// [`start`], keeping every access record.
async fn start_recording(config: HttpConfig) -> (TestServer, Records) {
    let closes = Arc::default();
    let service = tally(Arc::clone(&closes));
    let records = Records::default();
    service.add_hook(records.clone());
    let server = serve(HttpServer::new(service, config).unwrap(), closes).await;
    (server, records)
}

/// [`start`], keeping the handle that drains the server.
async fn start_drainable(config: HttpConfig) -> (TestServer, Option<DrainHandle>) {
    let closes = Arc::default();
    let http = HttpServer::new(tally(Arc::clone(&closes)), config).unwrap();
    let drain = http.drain_handle();
    (serve(http, closes).await, drain)
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_are_advertised_only_when_sticky() {
    let options = |addr| {
        send(
            addr,
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/health")
                .header("host", "test")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
    };
    let on = start(sticky()).await;
    let reply = options(on.addr).await;
    assert_eq!(reply.header("vgi-sticky-enabled"), Some("true"));
    assert_eq!(reply.header("vgi-sticky-default-ttl"), Some("300"));
    assert_eq!(reply.header("vgi-sticky-echo-headers"), Some("x-route"));

    let (off, drain) = start_drainable(HttpConfig::new().with_token_key(key())).await;
    let reply = options(off.addr).await;
    for name in [
        "vgi-sticky-enabled",
        "vgi-sticky-default-ttl",
        "vgi-sticky-echo-headers",
    ] {
        assert_eq!(reply.header(name), None, "{name}");
    }
    // Without sticky sessions the session endpoint does not exist, and
    // opening a session is the transport's error.
    let reply = send(
        off.addr,
        Session::accepting().request(Method::DELETE, "/__session__", vec![]),
    )
    .await;
    assert_eq!(reply.status(), StatusCode::METHOD_NOT_ALLOWED);
    let reply = call(
        off.addr,
        &Session::accepting(),
        "open",
        vec![("initial", int(1))],
    )
    .await;
    assert_eq!(reply.header("vgi-session"), None);
    let error = reply.error().unwrap();
    assert_eq!(error.error_type, "RuntimeError");
    assert_eq!(
        error.message,
        "sticky sessions not available on this transport"
    );
    assert!(drain.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_session_serializes_while_two_sessions_overlap() {
    const REQUESTS: i64 = 8;
    let server = start(sticky()).await;
    let (_, token) = open(server.addr, 0).await;
    // Each add reads, sleeps, then writes: overlapping calls would lose
    // updates (and trip the counter's busy flag).
    let adds: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let session = Session::with(&token);
            let addr = server.addr;
            tokio::spawn(async move {
                call(
                    addr,
                    &session,
                    "add",
                    vec![("by", int(1)), ("millis", int(20))],
                )
                .await
            })
        })
        .collect();
    for add in adds {
        let reply = add.await.unwrap();
        assert_eq!(reply.error().map(|e| e.message), None);
    }
    assert_eq!(
        add(server.addr, &Session::with(&token), 0).await.int(),
        REQUESTS
    );

    // Two sessions: each call holds its session until the other call is
    // inside its method too, which only happens if they run in parallel.
    let (_, other) = open(server.addr, 0).await;
    let meets: Vec<_> = [token, other]
        .into_iter()
        .map(|token| {
            let addr = server.addr;
            tokio::spawn(async move { call(addr, &Session::with(&token), "meet", vec![]).await })
        })
        .collect();
    for meet in meets {
        let reply = meet.await.unwrap();
        let met = reply
            .batches()
            .into_iter()
            .find(|b| b.batch.num_rows() == 1);
        let met = met.expect("a result").batch;
        let met = met
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::BooleanArray>()
            .unwrap()
            .value(0);
        assert!(met, "calls on two sessions could not run at the same time");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn draining_refuses_new_sessions_and_serves_existing_ones() {
    let (server, drain) = start_drainable(sticky()).await;
    let drain = drain.unwrap();
    let (_, token) = open(server.addr, 10).await;
    drain.drain();
    assert!(drain.is_draining());

    let refused = call(
        server.addr,
        &Session::accepting(),
        "open",
        vec![("initial", int(1))],
    )
    .await;
    let error = refused.error().unwrap();
    assert_eq!(error.error_type, "ServerDrainingError");
    assert_eq!(error.error_kind.as_deref(), Some("server_draining"));
    assert_eq!(refused.header("vgi-session"), None);
    assert_eq!(add(server.addr, &Session::with(&token), 5).await.int(), 15);

    assert_eq!(drain.shutdown(), 1);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_lost(&add(server.addr, &Session::with(&token), 1).await);

    drain.cancel_drain();
    open(server.addr, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_and_exchange_turns_resume_the_session() {
    let server = start(
        HttpConfig::new()
            .with_token_key(key())
            .with_sticky(StickyConfig::new()),
    )
    .await;
    let (_, token) = open(server.addr, 0).await;
    let session = Session::with(&token);

    // Without a response cap every producer turn is its own request.
    let mut seen = Vec::new();
    let body = request("ticks", vec![("count", int(3))]);
    let mut reply = send(
        server.addr,
        session.request(Method::POST, "/ticks/init", body),
    )
    .await;
    loop {
        seen.extend(reply.checked_ints());
        let Some(state) = reply.stream_token() else {
            break;
        };
        let tick = RecordBatch::new_empty(empty_schema());
        let md = Metadata::new().with(metadata::STREAM_STATE, state);
        let body = write_stream_bytes(tick.schema_ref(), [(&tick, &md)]).unwrap();
        reply = send(
            server.addr,
            session.request(Method::POST, "/ticks/exchange", body),
        )
        .await;
    }
    assert_eq!(seen, [1, 2, 3]);

    let body = request("adder", vec![]);
    let reply = send(
        server.addr,
        session.request(Method::POST, "/adder/init", body),
    )
    .await;
    let mut state = reply.stream_token().unwrap();
    for (by, expected) in [(10, 13), (5, 18)] {
        let input = RecordBatch::try_new(value_schema("by"), vec![int(by)]).unwrap();
        let md = Metadata::new().with(metadata::STREAM_STATE, state.as_str());
        let body = write_stream_bytes(input.schema_ref(), [(&input, &md)]).unwrap();
        let reply = send(
            server.addr,
            session.request(Method::POST, "/adder/exchange", body),
        )
        .await;
        assert_eq!(reply.int(), expected);
        state = reply.stream_token().unwrap();
    }
    assert_eq!(add(server.addr, &session, 0).await.int(), 18);

    // A stream without a session fails like a unary call would.
    let body = request("ticks", vec![("count", int(1))]);
    let reply = send(
        server.addr,
        Session::default().request(Method::POST, "/ticks/init", body),
    )
    .await;
    assert_eq!(reply.error().unwrap().message, "no counter bound");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_records_carry_the_session_lifecycle() {
    let (server, recorded) = start_recording(sticky()).await;
    call(
        server.addr,
        &Session::default(),
        "add",
        vec![("by", int(1)), ("millis", int(0))],
    )
    .await;
    let (_, token) = open(server.addr, 1).await;
    add(server.addr, &Session::with(&token), 1).await;
    call(server.addr, &Session::with(&token), "close", vec![]).await;

    let records = recorded.0.lock().unwrap().clone();
    let lifecycle: Vec<_> = records
        .iter()
        .map(|r| (r.method.as_str(), r.session_action.as_deref()))
        .collect();
    assert_eq!(
        lifecycle,
        [
            ("add", Some("none")),
            ("open", Some("open")),
            ("add", Some("resume")),
            ("close", Some("close")),
        ]
    );
    assert_eq!(records[0].session_id, None);
    let id = records[1].session_id.clone().expect("an id on open");
    assert_eq!(id.len(), 24);
    assert!(
        records[1..]
            .iter()
            .all(|r| r.session_id.as_deref() == Some(id.as_str()))
    );

    // Non-sticky servers leave both fields out.
    let (plain, plain_recorded) = start_recording(HttpConfig::new().with_token_key(key())).await;
    call(
        plain.addr,
        &Session::default(),
        "add",
        vec![("by", int(1)), ("millis", int(0))],
    )
    .await;
    let record = plain_recorded.0.lock().unwrap()[0].clone();
    assert_eq!((record.session_action, record.session_id), (None, None));
}
