//! With the `sentry` feature, failed calls reach Sentry as the reference's
//! `SentryConfig` describes: checked on the envelopes the SDK's test
//! transport captures.
#![cfg(feature = "sentry")]

use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field, Fields, Schema};
use sentry_core::protocol::{Event, Value};
use sentry_core::test::{with_captured_envelopes_options, with_captured_events};
use sentry_core::{ClientOptions, Envelope};
use vgirpc::sentry::{ParamValue, SentryConfig, short_hash, short_hash_of_length};
use vgirpc::transport::Call;
use vgirpc::wire::ipc::{StreamWriter, empty_schema, write_stream_bytes};
use vgirpc::wire::log::empty_batch;
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    ArrowStruct, AuthContext, CallContext, OutputCollector, Peer, ProducerState, RpcError, Server,
    Stream, TransportKind,
};

/// A request of the VGI protocol wrapping another.
#[derive(Debug, Clone, ArrowStruct)]
pub struct Bind {
    /// The wrapped call.
    pub bind_call: BindCall,
}

/// The wrapped call.
#[derive(Debug, Clone, ArrowStruct)]
pub struct BindCall {
    /// Transaction id.
    pub transaction_id: String,
}

/// Service used by these tests.
#[vgirpc::service]
pub trait Reported {
    /// Echo.
    fn echo(&self, value: String) -> Result<String, RpcError>;
    /// Always fails.
    fn fail(&self, value: String) -> Result<String, RpcError>;
    /// Fails, with parameters worth recording.
    fn search(
        &self,
        table: String,
        query: String,
        password: String,
        limit: i64,
    ) -> Result<i64, RpcError>;
    /// Fails, carrying an attach id.
    fn attach(&self, attach_id: Vec<u8>) -> Result<i64, RpcError>;
    /// Fails, carrying a transaction id two levels down.
    fn bind(&self, request: Bind) -> Result<i64, RpcError>;
    /// A stream whose first step fails.
    fn broken(&self) -> Result<Stream, RpcError>;
}

struct Broken;

impl ProducerState for Broken {
    fn produce(&mut self, _: &mut OutputCollector, _: &CallContext) -> Result<(), RpcError> {
        Err(RpcError::runtime_error("stream broke"))
    }
}

struct Impl;

impl Reported for Impl {
    fn echo(&self, value: String) -> Result<String, RpcError> {
        Ok(value)
    }
    fn fail(&self, value: String) -> Result<String, RpcError> {
        Err(RpcError::value_error(format!("bad {value}")))
    }
    fn search(&self, _: String, _: String, _: String, _: i64) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("search failed"))
    }
    fn attach(&self, _: Vec<u8>) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("attach failed"))
    }
    fn bind(&self, _: Bind) -> Result<i64, RpcError> {
        Err(RpcError::runtime_error("bind failed"))
    }
    fn broken(&self) -> Result<Stream, RpcError> {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        Ok(Stream::producer(schema, Broken))
    }
}

fn text(value: &str) -> ArrayRef {
    Arc::new(StringArray::from(vec![value]))
}

/// Dispatches `method` with `columns` from `peer` and tells the hooks.
fn call(server: &Server, peer: &Peer, method: &str, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
        .collect();
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let request = Request {
        method: method.to_owned(),
        params,
        metadata: Request::metadata_for(method),
    };
    match server.dispatch_from(request, peer) {
        Call::Answer(answer) => server.emit(answer.record.as_deref().unwrap()),
        Call::Stream(_) => panic!("{method} is unary"),
    }
}

fn anonymous() -> Peer {
    Peer::anonymous(TransportKind::Pipe)
}

/// Events from `calls` against a server built while the test client is
/// bound, configured by `config` when given.
fn events(config: Option<SentryConfig>, calls: impl FnOnce(&Server)) -> Vec<Event<'static>> {
    with_captured_events(|| {
        let server = Server::new(ReportedServer::new(Impl)).unwrap();
        if let Some(config) = config {
            server.instrument_sentry(config);
        }
        calls(&server);
    })
}

fn tag<'a>(event: &'a Event<'static>, key: &str) -> Option<&'a str> {
    event.tags.get(key).map(String::as_str)
}

fn fail(server: &Server) {
    call(server, &anonymous(), "fail", vec![("value", text("x"))]);
}

#[test]
fn a_failed_call_is_reported_with_its_method_in_the_transaction_name() {
    let events = events(None, fail);
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}");
    };
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "ValueError");
    assert_eq!(exception.value.as_deref(), Some("bad x"));
    assert_eq!(event.transaction.as_deref(), Some("rpc fail"));
    assert_eq!(tag(event, "rpc.method"), Some("fail"));
    assert_eq!(tag(event, "rpc.method_type"), Some("unary"));
    assert_eq!(tag(event, "auth.authenticated"), Some("false"));
    assert_eq!(tag(event, "auth.domain"), None);
    let sentry_core::protocol::Context::Other(rpc) = &event.contexts["rpc"] else {
        panic!("rpc context: {:?}", event.contexts);
    };
    assert_eq!(rpc["method"], "fail");
    assert_eq!(rpc["service"], "Reported");
    assert_eq!(rpc["server_id"], vgirpc::server_id());
    assert!(event.user.is_none());
}

#[test]
fn successful_calls_are_not_reported() {
    let events = events(None, |server| {
        call(server, &anonymous(), "echo", vec![("value", text("x"))]);
    });
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn ignored_error_types_and_disabled_capture_report_nothing() {
    let ignored = events(
        Some(SentryConfig::new().with_ignored_error_type("ValueError")),
        fail,
    );
    assert!(ignored.is_empty());
    let off = events(Some(SentryConfig::new().without_error_capture()), fail);
    assert!(off.is_empty());
    // Another type is still reported.
    let other = events(
        Some(SentryConfig::new().with_ignored_error_type("PermissionError")),
        fail,
    );
    assert_eq!(other.len(), 1);
}

#[test]
fn an_explicit_configuration_replaces_the_attached_one() {
    // The server attached the default on creation; the explicit one wins
    // and no second report is made.
    let events = events(
        Some(SentryConfig::new().with_custom_tag("deployment", "test")),
        fail,
    );
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}");
    };
    assert_eq!(tag(event, "deployment"), Some("test"));
}

#[test]
fn without_a_bound_client_nothing_is_attached_or_decoded() {
    let server = Server::new(ReportedServer::new(Impl)).unwrap();
    let request = Request {
        method: "fail".to_owned(),
        params: RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "value",
                DataType::Utf8,
                false,
            )])),
            vec![text("x")],
        )
        .unwrap(),
        metadata: Request::metadata_for("fail"),
    };
    let Call::Answer(answer) = server.dispatch_from(request, &anonymous()) else {
        panic!("fail is unary");
    };
    // No hook, so the request was neither kept nor serialised for one.
    let record = answer.record.unwrap();
    assert!(record.request_data.is_none());
    assert!(record.params.is_none());
}

#[test]
fn the_user_comes_from_the_principal_and_claims() {
    let auth = AuthContext::authenticated("jwt", "sub-123")
        .with_claim("preferred_username", "alice")
        .with_claim("email", "alice@example.com")
        .with_claim("name", "")
        .with_claim("nickname", "al")
        .with_claim("tenant", "acme")
        .with_claim("level", 42)
        .with_claim("admin", true)
        .with_claim("groups", serde_json::json!(["a"]));
    let peer = Peer::anonymous(TransportKind::Http).with_auth(auth);
    let config = SentryConfig::new()
        .with_user_claim("username", "nickname")
        .with_claim_tag("tenant", "auth.tenant")
        .with_claim_tag("level", "auth.level")
        .with_claim_tag("admin", "auth.admin")
        .with_claim_tag("groups", "auth.groups");
    let events = events(Some(config), |server| {
        call(server, &peer, "fail", vec![("value", text("x"))]);
    });
    let event = &events[0];
    let user = event.user.as_ref().unwrap();
    assert_eq!(user.id.as_deref(), Some("sub-123"));
    assert_eq!(user.username.as_deref(), Some("al"));
    assert_eq!(user.email.as_deref(), Some("alice@example.com"));
    // An empty claim is skipped.
    assert!(!user.other.contains_key("name"));
    assert_eq!(tag(event, "auth.domain"), Some("jwt"));
    assert_eq!(tag(event, "auth.authenticated"), Some("true"));
    assert_eq!(tag(event, "auth.tenant"), Some("acme"));
    assert_eq!(tag(event, "auth.level"), Some("42"));
    assert_eq!(tag(event, "auth.admin"), Some("True"));
    assert_eq!(tag(event, "auth.groups"), None);

    let quiet = events_without_context(&peer);
    assert!(quiet.user.is_none());
    assert_eq!(tag(&quiet, "auth.domain"), None);
}

fn events_without_context(peer: &Peer) -> Event<'static> {
    let events = events(
        Some(SentryConfig::new().without_request_context()),
        |server| call(server, peer, "fail", vec![("value", text("x"))]),
    );
    let mut events = events;
    let event = events.remove(0);
    assert!(!event.contexts.contains_key("rpc"));
    event
}

fn search(server: &Server, query: &str) {
    call(
        server,
        &anonymous(),
        "search",
        vec![
            ("table", text("orders")),
            ("query", text(query)),
            ("password", text("hunter2")),
            ("limit", Arc::new(Int64Array::from(vec![10]))),
        ],
    );
}

#[test]
fn parameters_are_recorded_only_when_asked_redacted_and_cut() {
    let events_of = |config: SentryConfig, query: String| {
        events(Some(config), move |server| search(server, &query))
    };
    let plain = events_of(SentryConfig::new(), "q".into());
    assert!(plain[0].extra.keys().all(|k| !k.starts_with("rpc.param.")));

    let long = "é".repeat(700); // 1400 bytes
    let recorded = events_of(SentryConfig::new().with_params_recorded(), long);
    let extra = &recorded[0].extra;
    assert_eq!(extra["rpc.param.table"], "orders");
    assert_eq!(extra["rpc.param.limit"], 10);
    let Value::String(query) = &extra["rpc.param.query"] else {
        panic!("{extra:?}");
    };
    assert_eq!(query.len(), 1024);
    assert!(!extra.contains_key("rpc.param.password"));

    let own = events_of(
        SentryConfig::new()
            .with_params_recorded()
            .with_max_param_value_bytes(4)
            .with_param_redactor(|params| {
                params.into_iter().filter(|(k, _)| k != "table").collect()
            }),
        "abcdefgh".into(),
    );
    let extra = &own[0].extra;
    assert_eq!(extra["rpc.param.password"], "hunt");
    assert_eq!(extra["rpc.param.query"], "abcd");
    assert!(!extra.contains_key("rpc.param.table"));
}

#[test]
fn tag_params_become_tags_clipped_to_200_characters() {
    let long = "t".repeat(300);
    let events = events(
        Some(
            SentryConfig::new()
                .with_tag_param("table")
                .with_tag_param("limit")
                .with_tag_param("query")
                .with_tag_param("missing"),
        ),
        |server| search(server, &long),
    );
    let event = &events[0];
    assert_eq!(tag(event, "rpc.param.table"), Some("orders"));
    assert_eq!(tag(event, "rpc.param.limit"), Some("10"));
    assert_eq!(tag(event, "rpc.param.query").map(str::len), Some(200));
    assert_eq!(tag(event, "rpc.param.missing"), None);
}

#[test]
fn attach_and_transaction_ids_are_tagged_by_short_hash() {
    let id = [0xde, 0xad, 0xbe, 0xef];
    let events = events(None, |server| {
        call(
            server,
            &anonymous(),
            "attach",
            vec![("attach_id", Arc::new(BinaryArray::from(vec![&id[..]])))],
        );
        let inner = StructArray::from(vec![(
            Arc::new(Field::new("transaction_id", DataType::Utf8, false)),
            text("tx-1"),
        )]);
        let outer = StructArray::from(vec![(
            Arc::new(Field::new(
                "bind_call",
                DataType::Struct(Fields::from(vec![Field::new(
                    "transaction_id",
                    DataType::Utf8,
                    false,
                )])),
                false,
            )),
            Arc::new(inner) as ArrayRef,
        )]);
        call(
            server,
            &anonymous(),
            "bind",
            vec![("request", Arc::new(outer))],
        );
    });
    assert_eq!(events.len(), 2);
    assert_eq!(
        tag(&events[0], "vgi.attach_id"),
        Some(short_hash("deadbeef").as_str())
    );
    assert_eq!(
        tag(&events[1], "vgi.transaction_id"),
        Some(short_hash("tx-1").as_str())
    );
    assert_eq!(tag(&events[1], "vgi.attach_id"), None);
}

#[test]
fn short_hash_is_a_sha256_prefix_with_bytes_as_their_hex() {
    // SHA-256 of "abc".
    assert_eq!(short_hash("abc"), "ba7816bf8f01");
    assert_eq!(short_hash_of_length("abc", 8), "ba7816bf");
    let bytes = vec![0xab, 0xcd];
    assert_eq!(short_hash(&bytes), short_hash("abcd"));
    assert_eq!(short_hash(&bytes[..]), short_hash(&"abcd".to_owned()));
}

#[test]
fn only_primitives_and_homogeneous_lists_are_safe_params() {
    let config = SentryConfig::new();
    let safe = config.safe_params(vec![
        ("a".into(), ParamValue::Int(1)),
        ("b".into(), ParamValue::Bytes(vec![1])),
        (
            "c".into(),
            ParamValue::List(vec![ParamValue::Int(1), ParamValue::Int(2)]),
        ),
        (
            "d".into(),
            ParamValue::List(vec![ParamValue::Int(1), ParamValue::Text("x".into())]),
        ),
        ("e".into(), ParamValue::List(vec![])),
        ("f".into(), ParamValue::Struct(vec![])),
        ("api_key".into(), ParamValue::Text("k".into())),
        ("Authorization".into(), ParamValue::Text("k".into())),
        ("g".into(), ParamValue::Bool(true)),
    ]);
    let keys: Vec<_> = safe.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "c", "g"]);
    assert_eq!(safe[1].1, serde_json::json!([1, 2]));
}

#[test]
fn with_performance_each_call_is_a_transaction() {
    let envelopes: Vec<Envelope> = with_captured_envelopes_options(
        || {
            let server = Server::new(ReportedServer::new(Impl)).unwrap();
            server.instrument_sentry(
                SentryConfig::new()
                    .with_performance()
                    .with_params_recorded(),
            );
            call(&server, &anonymous(), "echo", vec![("value", text("x"))]);
        },
        ClientOptions::new().traces_sample_rate(1.0),
    );
    let transaction = envelopes
        .iter()
        .flat_map(|e| e.items())
        .find_map(|item| match item {
            sentry_core::protocol::EnvelopeItem::Transaction(t) => Some(t),
            _ => None,
        })
        .expect("a transaction");
    assert_eq!(transaction.name.as_deref(), Some("vgi_rpc/echo"));
    let trace = match transaction.contexts.get("trace") {
        Some(sentry_core::protocol::Context::Trace(trace)) => trace,
        other => panic!("trace context: {other:?}"),
    };
    assert_eq!(trace.op.as_deref(), Some("rpc.server"));
    assert_eq!(trace.status, Some(sentry_core::protocol::SpanStatus::Ok));
    assert_eq!(trace.data["rpc.method"], "echo");
    assert_eq!(trace.data["rpc.system"], "vgi_rpc");
    assert_eq!(trace.data["rpc.param.value"], "x");
}

#[test]
fn a_failed_stream_is_reported_as_a_stream() {
    let no_params = RecordBatch::new_empty(empty_schema());
    let mut input = write_stream_bytes(
        no_params.schema_ref(),
        [(&no_params, &Request::metadata_for("broken"))],
    )
    .unwrap();
    let ticks = empty_schema();
    let mut writer = StreamWriter::try_new(Vec::new(), &ticks).unwrap();
    writer
        .write(&empty_batch(&ticks), &Metadata::new())
        .unwrap();
    input.extend(writer.finish().unwrap());
    let events = with_captured_events(|| {
        let server = Server::new(ReportedServer::new(Impl)).unwrap();
        server
            .serve(
                std::io::Cursor::new(input),
                std::io::sink(),
                TransportKind::Pipe,
            )
            .unwrap();
    });
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}");
    };
    assert_eq!(event.exception.values[0].ty, "RuntimeError");
    assert_eq!(event.transaction.as_deref(), Some("rpc broken"));
    assert_eq!(tag(event, "rpc.method_type"), Some("stream"));
}

#[test]
fn the_transaction_name_can_be_left_to_the_transport() {
    let events = events(Some(SentryConfig::new().without_transaction_name()), fail);
    assert_eq!(events[0].transaction, None);
    assert_eq!(tag(&events[0], "rpc.method"), Some("fail"));
}

#[test]
fn a_failed_call_ends_its_transaction_in_error() {
    let envelopes: Vec<Envelope> = with_captured_envelopes_options(
        || {
            let server = Server::new(ReportedServer::new(Impl)).unwrap();
            server.instrument_sentry(SentryConfig::new().with_performance());
            fail(&server);
        },
        ClientOptions::new().traces_sample_rate(1.0),
    );
    let items: Vec<_> = envelopes.iter().flat_map(|e| e.items()).collect();
    let statuses: Vec<_> = items
        .iter()
        .filter_map(|item| match item {
            sentry_core::protocol::EnvelopeItem::Transaction(t) => match t.contexts.get("trace") {
                Some(sentry_core::protocol::Context::Trace(trace)) => trace.status,
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [sentry_core::protocol::SpanStatus::InternalError]);
    // The error itself is reported too.
    assert!(
        items
            .iter()
            .any(|item| matches!(item, sentry_core::protocol::EnvelopeItem::Event(_)))
    );
}
