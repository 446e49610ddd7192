//! Transactions with performance on, and the span a transport bound.

use sentry_core::{Hub, TransactionContext};
use vgirpc::sentry::SentryConfig;

use super::*;

fn echo(server: &Server) {
    call(server, &anonymous(), "echo", vec![("value", text("x"))]);
}

#[test]
fn with_performance_each_call_is_a_transaction() {
    let items = items(
        SentryConfig::new()
            .with_performance()
            .with_params_recorded(),
        echo,
    );
    let [transaction] = transactions(&items)[..] else {
        panic!("one transaction: {items:?}");
    };
    assert_eq!(transaction.name.as_deref(), Some("vgi_rpc/echo"));
    let Some(Context::Trace(context)) = transaction.contexts.get("trace") else {
        panic!("{transaction:?}");
    };
    assert_eq!(context.op.as_deref(), Some("rpc.server"));
    let (status, data) = trace(transaction);
    assert_eq!(status, Some(SpanStatus::Ok));
    assert_eq!(data["rpc.system"], "vgi_rpc");
    assert_eq!(data["rpc.service"], "Reported");
    assert_eq!(data["rpc.method"], "echo");
    assert_eq!(data["rpc.method_type"], "unary");
    assert_eq!(data["rpc.param.value"], "x");
    // A unary call has no stream.
    assert!(!data.contains_key("rpc.stream_id"));
}

#[test]
fn the_op_name_is_configurable() {
    let items = items(
        SentryConfig::new()
            .with_performance()
            .with_op_name("rpc.custom"),
        echo,
    );
    let Some(Context::Trace(context)) = transactions(&items)[0].contexts.get("trace") else {
        panic!("{items:?}");
    };
    assert_eq!(context.op.as_deref(), Some("rpc.custom"));
}

#[test]
fn without_performance_there_is_no_transaction() {
    let items = items(SentryConfig::new(), |server| {
        echo(server);
        fail(server);
    });
    assert!(transactions(&items).is_empty(), "{items:?}");
    assert_eq!(items.len(), 1, "the failure's event only: {items:?}");
}

#[test]
fn a_failed_call_ends_its_transaction_in_error() {
    let items = items(SentryConfig::new().with_performance(), fail);
    let statuses: Vec<_> = transactions(&items)
        .into_iter()
        .map(|t| trace(t).0)
        .collect();
    assert_eq!(statuses, [Some(SpanStatus::InternalError)]);
    // The error itself is reported too.
    assert!(
        items
            .iter()
            .any(|item| matches!(item, EnvelopeItem::Event(_)))
    );
}

#[test]
fn a_stream_transaction_carries_its_stream_id() {
    let items = items(SentryConfig::new().with_performance(), |server| {
        serve_stream(server, "count");
    });
    let [transaction] = transactions(&items)[..] else {
        panic!("one transaction: {items:?}");
    };
    let (status, data) = trace(transaction);
    assert_eq!(status, Some(SpanStatus::Ok));
    assert_eq!(data["rpc.method"], "count");
    assert_eq!(data["rpc.method_type"], "stream");
    let Value::String(id) = &data["rpc.stream_id"] else {
        panic!("{data:?}");
    };
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
}

/// The transactions sent when the call `echo` succeeds while the
/// transport's own transaction `POST` is bound to the scope.
fn under_a_request(config: SentryConfig) -> Vec<EnvelopeItem> {
    items(config, |server| {
        let request = sentry_core::start_transaction(TransactionContext::new("POST", "http"));
        Hub::current().configure_scope(|scope| scope.set_span(Some(request.clone().into())));
        echo(server);
        Hub::current().configure_scope(|scope| scope.set_span(None));
        request.finish();
    })
}

#[test]
fn a_span_bound_by_the_transport_takes_the_call_data() {
    // Performance is off and the call succeeds: the transport's
    // transaction is all there is, named for the method.
    let items = under_a_request(SentryConfig::new().with_params_recorded());
    let [transaction] = transactions(&items)[..] else {
        panic!("the transport's transaction only: {items:?}");
    };
    assert_eq!(transaction.name.as_deref(), Some("rpc echo"));
    let (_, data) = trace(transaction);
    assert_eq!(data["rpc.system"], "vgi_rpc");
    assert_eq!(data["rpc.service"], "Reported");
    assert_eq!(data["rpc.method"], "echo");
    assert_eq!(data["rpc.method_type"], "unary");
    assert_eq!(data["rpc.param.value"], "x");

    let items = under_a_request(SentryConfig::new().without_transaction_name());
    let (_, data) = trace(transactions(&items)[0]);
    assert_eq!(transactions(&items)[0].name.as_deref(), Some("POST"));
    assert_eq!(data["rpc.method"], "echo");
    assert!(!data.contains_key("rpc.param.value"));
}
