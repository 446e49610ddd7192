//! The service the request and HTTP targets serve: the conformance service,
//! whose methods the seed traffic calls, with its deliberate amplifiers
//! bounded.
//!
//! Some conformance methods exist to make a lot of output from a small
//! request (`oversized_unary(target_bytes)`, `produce_n(count)`, ...), and
//! `cancellable_producer` produces until it is cancelled. That is what the
//! caller asked for, not a flaw in the framework, so the harness refuses
//! those arguments above a small bound with an ordinary error, before the
//! method runs. Everything else reaches the conformance service unchanged.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use vgirpc::wire::describe::MethodDescription;
use vgirpc::{CallContext, MaybeReady, Outcome, RpcError, Server, Service, TransportKind};
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};

/// Parameters that size a method's output, and the largest magnitude
/// allowed.
const SIZING_PARAMS: &[&str] = &[
    "count",
    "batch_count",
    "rows_per_batch",
    "target_bytes",
    "emit_before_error",
];
const MAX_SIZING_VALUE: u64 = 64;

/// Methods that run until the client stops them, which no single fuzz
/// input does over HTTP.
const UNBOUNDED_METHODS: &[&str] = &["cancellable_producer"];

/// The conformance service with its amplifying arguments bounded.
#[derive(Debug)]
pub struct Bounded<S>(S);

impl<S: Service> Service for Bounded<S> {
    fn protocol_name(&self) -> &str {
        self.0.protocol_name()
    }

    fn methods(&self) -> &[MethodDescription] {
        self.0.methods()
    }

    fn call<'a>(
        &'a self,
        index: usize,
        params: &'a RecordBatch,
        ctx: &'a CallContext,
    ) -> MaybeReady<'a, Result<Outcome, RpcError>> {
        let name = self.0.methods().get(index).map(|m| m.name.as_str());
        if name.is_some_and(|name| UNBOUNDED_METHODS.contains(&name)) {
            return MaybeReady::Ready(Err(RpcError::runtime_error(
                "refused by the fuzz harness: runs until cancelled",
            )));
        }
        if let Some(param) = oversized_param(params) {
            return MaybeReady::Ready(Err(RpcError::value_error(format!(
                "refused by the fuzz harness: {param} above {MAX_SIZING_VALUE}"
            ))));
        }
        self.0.call(index, params, ctx)
    }

    fn on_serve_start(&self, kind: TransportKind) -> Result<(), RpcError> {
        self.0.on_serve_start(kind)
    }
}

/// The first sizing parameter above the bound, if any.
fn oversized_param(params: &RecordBatch) -> Option<&'static str> {
    SIZING_PARAMS.iter().copied().find(|&name| {
        params.column_by_name(name).is_some_and(|column| {
            column.data_type() == &DataType::Int64
                && column
                    .as_primitive::<Int64Type>()
                    .iter()
                    .flatten()
                    .any(|value| value.unsigned_abs() > MAX_SIZING_VALUE)
        })
    })
}

/// A server for the bounded conformance service.
pub fn conformance_server() -> Server {
    Server::new(Bounded(ConformanceServiceServer::new(Conformance)))
        .expect("the conformance service describes itself")
}
