//! Sticky sessions over real HTTP: the headers, the runtime API, the
//! session-lost cases, DELETE /__session__, per-session serialization,
//! drain, streams and access records.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use common::errors::assert_error_contains;
use common::{Reply, int, request, send};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vgirpc::wire::ipc::{empty_schema, write_stream_bytes};
use vgirpc::wire::metadata::{self, Metadata};
use vgirpc::{
    ArrowStruct, CallContext, CallRecord, DispatchHook, ExchangeState, OutputCollector,
    ProducerState, RpcError, Server, SessionState, Stream,
};
use vgirpc_http::{
    AuthContext, DrainHandle, HttpConfig, HttpServer, StickyConfig, TokenKey, bearer_static,
};
use vgirpc_token::{Identity, SessionToken, unix_now};

// ---------------------------------------------------------------------------
// The service under test
// ---------------------------------------------------------------------------

#[vgirpc::service]
pub trait Tally {
    /// Opens a session holding a counter.
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError>;
    /// Opens a session living `millis`.
    fn open_briefly(&self, ctx: &CallContext, initial: i64, millis: i64) -> Result<i64, RpcError>;
    /// Adds to the counter, slowly: read, wait `millis`, write.
    fn add(&self, ctx: &CallContext, by: i64, millis: i64) -> Result<i64, RpcError>;
    /// Waits, holding its session, until another call is waiting too;
    /// false if none came within 30 s.
    fn meet(&self, ctx: &CallContext) -> Result<bool, RpcError>;
    /// Closes the session, returning the counter.
    fn close(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Closes the session and opens a new one holding the same value.
    fn reopen(&self, ctx: &CallContext) -> Result<i64, RpcError>;
    /// Emits the counter, incremented, `count` times.
    fn ticks(&self, count: i64) -> Result<Stream, RpcError>;
    /// Adds each input's `by` to the counter and emits it.
    fn adder(&self) -> Result<Stream, RpcError>;
}

struct Counter {
    value: i64,
    busy: AtomicBool,
    closes: Arc<AtomicUsize>,
}

impl SessionState for Counter {
    fn close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

struct TallyImpl {
    closes: Arc<AtomicUsize>,
    /// Calls inside `meet`.
    met: Arc<(Mutex<usize>, Condvar)>,
}

impl TallyImpl {
    fn counter(&self, value: i64) -> Counter {
        Counter {
            value,
            busy: AtomicBool::new(false),
            closes: self.closes.clone(),
        }
    }
}

fn no_counter() -> RpcError {
    RpcError::runtime_error("no counter bound")
}

fn value_schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, true)]))
}

impl Tally for TallyImpl {
    fn open(&self, ctx: &CallContext, initial: i64) -> Result<i64, RpcError> {
        ctx.open_session(self.counter(initial))?;
        Ok(initial)
    }
    fn open_briefly(&self, ctx: &CallContext, initial: i64, millis: i64) -> Result<i64, RpcError> {
        let ttl = Duration::from_millis(millis as u64);
        ctx.open_session_with_ttl(self.counter(initial), ttl)?;
        Ok(initial)
    }
    fn add(&self, ctx: &CallContext, by: i64, millis: i64) -> Result<i64, RpcError> {
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        assert!(
            !counter.busy.swap(true, Ordering::SeqCst),
            "two requests used one session at once"
        );
        let seen = counter.value;
        std::thread::sleep(Duration::from_millis(millis as u64));
        counter.value = seen + by;
        counter.busy.store(false, Ordering::SeqCst);
        Ok(counter.value)
    }
    fn meet(&self, ctx: &CallContext) -> Result<bool, RpcError> {
        let _held = ctx.session::<Counter>().ok_or_else(no_counter)?;
        let (count, arrived) = &*self.met;
        let mut count = count.lock().unwrap();
        *count += 1;
        arrived.notify_all();
        let (count, _) = arrived
            .wait_timeout_while(count, Duration::from_secs(30), |count| *count < 2)
            .unwrap();
        Ok(*count >= 2)
    }
    fn close(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let last = ctx.session::<Counter>().ok_or_else(no_counter)?.value;
        ctx.close_session()?;
        Ok(last)
    }
    fn reopen(&self, ctx: &CallContext) -> Result<i64, RpcError> {
        let last = ctx.session::<Counter>().ok_or_else(no_counter)?.value;
        ctx.close_session()?;
        ctx.open_session(self.counter(last))?;
        Ok(last)
    }
    fn ticks(&self, count: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(
            value_schema("value"),
            Ticks { count, done: 0 },
        ))
    }
    fn adder(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            value_schema("by"),
            value_schema("value"),
            Adder { turns: 0 },
        ))
    }
}

#[derive(Debug, Default, ArrowStruct)]
struct Ticks {
    count: i64,
    done: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Ticks {
    fn produce(&mut self, out: &mut OutputCollector, ctx: &CallContext) -> Result<(), RpcError> {
        if self.done == self.count {
            return out.finish();
        }
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        counter.value += 1;
        self.done += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}

#[derive(Debug, Default, ArrowStruct)]
struct Adder {
    turns: i64,
}

#[vgirpc::stream_state]
impl ExchangeState for Adder {
    fn exchange(
        &mut self,
        input: &vgirpc::AnnotatedBatch,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let by = input
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| RpcError::type_error("expected int64"))?;
        let mut counter = ctx.session::<Counter>().ok_or_else(no_counter)?;
        counter.value += by.iter().flatten().sum::<i64>();
        self.turns += 1;
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![counter.value]))])
    }
}

/// Keeps every access record.
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<CallRecord>>>);

impl DispatchHook for Records {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

struct TestServer {
    addr: SocketAddr,
    closes: Arc<AtomicUsize>,
    records: Records,
    drain: Option<DrainHandle>,
    _stop: oneshot::Sender<()>,
}

fn key() -> TokenKey {
    TokenKey::new(b"sticky test key")
}

fn sticky() -> HttpConfig {
    HttpConfig::new()
        .with_token_key(key())
        .with_sticky(StickyConfig::new().with_echo_header("x-route", "machine-7"))
}

async fn start(config: HttpConfig) -> TestServer {
    let closes = Arc::new(AtomicUsize::new(0));
    let server = Server::new(TallyServer::new(TallyImpl {
        closes: closes.clone(),
        met: Arc::default(),
    }))
    .unwrap();
    let records = Records::default();
    server.add_hook(records.clone());
    let http = HttpServer::new(server, config).unwrap();
    let drain = http.drain_handle();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(http.serve(listener, async {
        let _ = stopped.await;
    }));
    TestServer {
        addr,
        closes,
        records,
        drain,
        _stop: stop,
    }
}

/// Integers of a reply that must not carry an error.
trait Checked {
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
struct Session {
    accept: bool,
    token: Option<String>,
    bearer: Option<&'static str>,
}

impl Session {
    fn accepting() -> Self {
        Self {
            accept: true,
            ..Self::default()
        }
    }

    fn with(token: &str) -> Self {
        Self {
            accept: true,
            token: Some(token.to_owned()),
            bearer: None,
        }
    }

    fn request(&self, method: Method, path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
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

async fn call(
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

async fn add(addr: SocketAddr, session: &Session, by: i64) -> Reply {
    call(
        addr,
        session,
        "add",
        vec![("by", int(by)), ("millis", int(0))],
    )
    .await
}

/// Opens a session holding `initial`; returns the opening reply and token.
async fn open(addr: SocketAddr, initial: i64) -> (Reply, String) {
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

fn assert_lost(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-vgi-rpc-error"), Some("true"));
    let error = reply.error().expect("an error batch");
    assert_eq!(error.error_type, "SessionLostError");
    assert_eq!(error.error_kind.as_deref(), Some("session_lost"));
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

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

    let off = start(HttpConfig::new().with_token_key(key())).await;
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
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
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
    assert!(off.drain.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn open_resume_and_close_with_their_headers() {
    let server = start(sticky()).await;
    let (opened, token) = open(server.addr, 7).await;
    assert_eq!(opened.int(), 7);
    assert_eq!(opened.header("vgi-echo-x-route"), Some("machine-7"));
    assert_eq!(opened.header("vgi-session-close"), None);

    let session = Session::with(&token);
    for expected in [17, 27] {
        let reply = add(server.addr, &session, 10).await;
        assert_eq!(reply.int(), expected);
        // Only the opening response names the token and the echo headers.
        assert_eq!(reply.header("vgi-session"), None);
        assert_eq!(reply.header("vgi-echo-x-route"), None);
    }

    let closed = call(server.addr, &session, "close", vec![]).await;
    assert_eq!(closed.int(), 27);
    assert_eq!(closed.header("vgi-session-close"), Some("true"));
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);

    // The registry really let go of it.
    assert_lost(&add(server.addr, &session, 1).await);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_reopened_in_one_call_hands_out_only_the_new_token() {
    let server = start(sticky()).await;
    let (_, old) = open(server.addr, 4).await;
    let reply = call(server.addr, &Session::with(&old), "reopen", vec![]).await;
    assert_eq!(reply.int(), 4);
    assert_eq!(reply.header("vgi-session-close"), None);
    let new = reply.header("vgi-session").unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_lost(&add(server.addr, &Session::with(&old), 1).await);
    assert_eq!(add(server.addr, &Session::with(&new), 1).await.int(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn opening_needs_the_clients_opt_in_and_no_session_yet() {
    let server = start(sticky()).await;
    let reply = call(
        server.addr,
        &Session::default(),
        "open",
        vec![("initial", int(1))],
    )
    .await;
    let error = reply.error().unwrap();
    assert_eq!(error.error_type, "RuntimeError");
    assert_error_contains(&error, "VGI-Session-Accept");
    assert_eq!(reply.header("vgi-session"), None);

    let (_, token) = open(server.addr, 1).await;
    let again = call(
        server.addr,
        &Session::with(&token),
        "open",
        vec![("initial", int(2))],
    )
    .await;
    let error = again.error().unwrap();
    assert_eq!(
        error.message,
        "a sticky session is already active for this request"
    );
    assert_eq!(server.closes.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_tokens_are_session_lost() {
    let server = start(sticky()).await;
    let (_, token) = open(server.addr, 1).await;

    assert_lost(&add(server.addr, &Session::with("not-a-real-token"), 1).await);
    assert_lost(&add(server.addr, &Session::with("%%%"), 1).await);
    // Sealed with another key.
    let (_, foreign) = {
        let other = start(
            HttpConfig::new()
                .with_token_key(TokenKey::new(b"another key"))
                .with_sticky(StickyConfig::new()),
        )
        .await;
        open(other.addr, 1).await
    };
    assert_lost(&add(server.addr, &Session::with(&foreign), 1).await);
    // Sealed with the right key, by another worker.
    let opened = SessionToken::open(&token, &key(), &Identity::Anonymous, unix_now()).unwrap();
    let elsewhere = SessionToken {
        server_id: "another-worker".into(),
        ..opened.clone()
    }
    .seal(&key(), &Identity::Anonymous)
    .unwrap();
    assert_lost(&add(server.addr, &Session::with(&elsewhere), 1).await);
    // Naming a session this worker never had.
    let unknown = SessionToken {
        session_id: [0; 12],
        ..opened
    }
    .seal(&key(), &Identity::Anonymous)
    .unwrap();
    assert_lost(&add(server.addr, &Session::with(&unknown), 1).await);

    // None of that disturbed the real session.
    assert_eq!(add(server.addr, &Session::with(&token), 1).await.int(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_bound_to_their_principal() {
    let auth = bearer_static([
        (
            "alice-token".to_owned(),
            AuthContext::authenticated("bearer", "alice"),
        ),
        (
            "bob-token".to_owned(),
            AuthContext::authenticated("bearer", "bob"),
        ),
    ]);
    let server = start(sticky().with_authenticate(auth)).await;
    let alice = Session {
        accept: true,
        token: None,
        bearer: Some("alice-token"),
    };
    let reply = call(server.addr, &alice, "open", vec![("initial", int(5))]).await;
    let token = reply.header("vgi-session").unwrap().to_owned();
    let alice = Session {
        token: Some(token.clone()),
        ..alice
    };
    let bob = Session {
        token: Some(token),
        bearer: Some("bob-token"),
        ..alice.clone()
    };
    assert_lost(&add(server.addr, &bob, 1).await);
    // Bob cannot end it either; DELETE stays 200 so he learns nothing.
    let reply = send(
        server.addr,
        bob.request(Method::DELETE, "/__session__", vec![]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(add(server.addr, &alice, 1).await.int(), 6);
    let reply = send(
        server.addr,
        alice.request(Method::DELETE, "/__session__", vec![]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_idempotent_and_closes_once() {
    let server = start(sticky()).await;
    let delete = |session: Session| {
        send(
            server.addr,
            session.request(Method::DELETE, "/__session__", vec![]),
        )
    };
    assert_eq!(delete(Session::default()).await.status, StatusCode::OK);
    assert_eq!(
        delete(Session::with("garbage")).await.status,
        StatusCode::OK
    );

    let (_, token) = open(server.addr, 3).await;
    let reply = delete(Session::with(&token)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.header("vgi-session-close"), Some("true"));
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_eq!(delete(Session::with(&token)).await.status, StatusCode::OK);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
    assert_lost(&add(server.addr, &Session::with(&token), 1).await);
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
    let server = start(sticky()).await;
    let drain = server.drain.clone().unwrap();
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
async fn sessions_expire_after_their_own_ttl() {
    let server = start(sticky()).await;
    let reply = call(
        server.addr,
        &Session::accepting(),
        "open_briefly",
        vec![("initial", int(1)), ("millis", int(300))],
    )
    .await;
    let token = reply.header("vgi-session").unwrap().to_owned();
    // Well past the TTL: lost whether the reaper or the lookup evicts it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_lost(&add(server.addr, &Session::with(&token), 1).await);
    assert_eq!(server.closes.load(Ordering::SeqCst), 1);
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
    let server = start(sticky()).await;
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

    let records = server.records.0.lock().unwrap().clone();
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
    let plain = start(HttpConfig::new().with_token_key(key())).await;
    call(
        plain.addr,
        &Session::default(),
        "add",
        vec![("by", int(1)), ("millis", int(0))],
    )
    .await;
    let record = plain.records.0.lock().unwrap()[0].clone();
    assert_eq!((record.session_action, record.session_id), (None, None));
}
