//! Which calls are reported, and when the server reports at all.

use std::sync::{Arc, Mutex};

use sentry_core::test::with_captured_events;
use sentry_core::{Client, ClientOptions, Hub};
use vgirpc::sentry::SentryConfig;
use vgirpc::transport::Call;
use vgirpc::wire::request::Request;
use vgirpc::{CallRecord, DispatchHook, Server};

use super::*;

#[test]
fn a_failed_call_is_reported_with_its_method_in_the_transaction_name() {
    // No instrument_sentry: the bound client alone attached the reporting.
    let event = event(None, fail);
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "ValueError");
    assert_eq!(exception.value.as_deref(), Some("bad x"));
    assert_eq!(event.transaction.as_deref(), Some("rpc fail"));
    assert_eq!(tag(&event, "rpc.method"), Some("fail"));
    assert_eq!(tag(&event, "rpc.method_type"), Some("unary"));
    assert_eq!(tag(&event, "auth.authenticated"), Some("false"));
    assert_eq!(tag(&event, "auth.domain"), None);
    let Context::Other(rpc) = &event.contexts["rpc"] else {
        panic!("rpc context: {:?}", event.contexts);
    };
    assert_eq!(rpc["method"], "fail");
    assert_eq!(rpc["method_type"], "unary");
    assert_eq!(rpc["service"], "Reported");
    assert_eq!(rpc["server_id"], vgirpc::server_id());
    assert!(event.user.is_none());
    // Parameters stay off error events unless tagged by name.
    assert!(event.extra.keys().all(|k| !k.starts_with("rpc.param.")));
    assert!(event.tags.keys().all(|k| !k.starts_with("rpc.param.")));
}

#[test]
fn successful_calls_are_not_reported() {
    let events = events(None, |server| {
        call(server, &anonymous(), "echo", vec![("value", text("x"))]);
        serve_stream(server, "count");
    });
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn ignored_error_types_and_disabled_capture_report_nothing() {
    let denied = |server: &Server| call(server, &anonymous(), "denied", vec![]);
    let ignored = events(
        Some(SentryConfig::new().with_ignored_error_type("PermissionError")),
        denied,
    );
    assert!(ignored.is_empty(), "{ignored:?}");
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
fn a_failed_stream_is_reported_as_a_stream() {
    let event = event(None, |server| serve_stream(server, "broken"));
    assert_eq!(event.exception.values[0].ty, "RuntimeError");
    assert_eq!(event.transaction.as_deref(), Some("rpc broken"));
    assert_eq!(tag(&event, "rpc.method_type"), Some("stream"));
    // One value per stream: span data only, never a tag.
    assert_eq!(tag(&event, "rpc.stream_id"), None);
}

#[test]
fn the_transaction_name_can_be_left_to_the_transport() {
    let event = event(Some(SentryConfig::new().without_transaction_name()), fail);
    assert_eq!(event.transaction, None);
    assert_eq!(tag(&event, "rpc.method"), Some("fail"));
}

#[test]
fn an_explicit_configuration_replaces_the_attached_one() {
    // The server attached the default on creation; the explicit one wins
    // and no second report is made.
    let event = event(
        Some(
            SentryConfig::new()
                .with_custom_tag("env", "test")
                .with_custom_tag("region", "us-east-1"),
        ),
        fail,
    );
    assert_eq!(tag(&event, "env"), Some("test"));
    assert_eq!(tag(&event, "region"), Some("us-east-1"));
}

#[test]
fn a_later_configuration_replaces_an_earlier_one() {
    let event = event(None, |server| {
        server.instrument_sentry(SentryConfig::new().with_custom_tag("first", "1"));
        server.instrument_sentry(SentryConfig::new().with_custom_tag("second", "2"));
        fail(server);
    });
    assert_eq!(tag(&event, "first"), None);
    assert_eq!(tag(&event, "second"), Some("2"));
}

/// Counts the calls it is told about.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<Vec<String>>>);

impl DispatchHook for Counter {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.method.clone());
    }
}

#[test]
fn other_hooks_run_beside_sentry_and_survive_its_replacement() {
    let counter = Counter::default();
    let seen = counter.clone();
    let event = event(None, move |server| {
        server.add_hook(counter);
        server.instrument_sentry(SentryConfig::new().with_custom_tag("explicit", "1"));
        fail(server);
    });
    assert_eq!(tag(&event, "explicit"), Some("1"));
    assert_eq!(*seen.0.lock().unwrap(), ["fail"]);
}

fn fail_request() -> Request {
    Request {
        method: "fail".to_owned(),
        params: arrow_array::RecordBatch::try_new(
            Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
                "value",
                arrow_schema::DataType::Utf8,
                false,
            )])),
            vec![text("x")],
        )
        .unwrap(),
        metadata: Request::metadata_for("fail"),
    }
}

/// Whether a server built now kept the request's parameters for Sentry.
fn keeps_params() -> bool {
    let server = Server::new(ReportedServer::new(Impl)).unwrap();
    let Call::Answer(answer) = server.dispatch_from(fail_request(), &anonymous()) else {
        panic!("fail is unary");
    };
    // No hook, so the request was neither kept nor serialised for one.
    let record = answer.record.unwrap();
    assert!(record.request_data.is_none());
    record.params.is_some()
}

#[test]
fn without_a_bound_client_nothing_is_attached_or_decoded() {
    assert!(!keeps_params());
    // A client without a DSN sends nothing, so it is no reason either.
    let disabled = Arc::new(Client::from(ClientOptions::default()));
    let hub = Arc::new(Hub::new(Some(disabled), Default::default()));
    assert!(!Hub::run(hub, keeps_params));
    // With a client that sends, the parameters are kept.
    let mut kept = false;
    let _ = with_captured_events(|| kept = keeps_params());
    assert!(kept);
}
