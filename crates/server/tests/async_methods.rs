//! `async fn` methods and async stream states, mixed with plain ones in one
//! service, dispatched from async code (awaited) and from plain threads
//! (blocked on), with and without a runtime around them.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::transport::{Answer, Call, Step};
use vgirpc::wire::ipc::{IpcBatch, empty_schema};
use vgirpc::wire::metadata::Metadata;
use vgirpc::wire::request::Request;
use vgirpc::{
    AnnotatedBatch, AsyncExchangeState, AsyncProducerState, CallContext, OutputCollector, Peer,
    RpcError, Server, Stream, TransportKind,
};

/// A service mixing sync and async methods.
#[vgirpc::service]
pub trait Mixed {
    /// Plain.
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
    /// Sleeps, logs and adds.
    async fn slow_add(&self, ctx: &CallContext, a: i64, b: i64) -> Result<i64, RpcError>;
    /// Panics after awaiting.
    async fn explode(&self) -> Result<i64, RpcError>;
    /// Counts to `n`, awaiting between rows.
    async fn count(&self, n: i64) -> Result<Stream, RpcError>;
    /// Adds `offset` to each input, awaiting in each step.
    async fn shift(&self, offset: i64) -> Result<Stream, RpcError>;
}

struct MixedImpl;

impl Mixed for MixedImpl {
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError> {
        Ok(a + b)
    }

    async fn slow_add(&self, ctx: &CallContext, a: i64, b: i64) -> Result<i64, RpcError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ctx.info("slept");
        Ok(a + b)
    }

    async fn explode(&self) -> Result<i64, RpcError> {
        tokio::task::yield_now().await;
        panic!("async method went wrong");
    }

    async fn count(&self, n: i64) -> Result<Stream, RpcError> {
        tokio::task::yield_now().await;
        Ok(Stream::async_producer(
            value_schema(),
            Counter { next: 0, end: n },
        ))
    }

    async fn shift(&self, offset: i64) -> Result<Stream, RpcError> {
        Ok(Stream::async_exchange(
            value_schema(),
            value_schema(),
            Shift { offset },
        ))
    }
}

struct Counter {
    next: i64,
    end: i64,
}

impl AsyncProducerState for Counter {
    async fn produce(
        &mut self,
        out: &mut OutputCollector,
        ctx: &CallContext,
    ) -> Result<(), RpcError> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if self.next == self.end {
            ctx.info("done");
            return out.finish();
        }
        self.next += 1;
        out.emit_arrays(vec![values(&[self.next])])
    }
}

struct Shift {
    offset: i64,
}

impl AsyncExchangeState for Shift {
    async fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        tokio::task::yield_now().await;
        let shifted: Vec<i64> = input
            .batch
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|v| v + self.offset)
            .collect();
        if shifted.contains(&13) {
            panic!("unlucky step");
        }
        out.emit_arrays(vec![values(&shifted)])
    }
}

fn value_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Int64,
        false,
    )]))
}

fn values(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn server() -> Server {
    Server::new(MixedServer::new(MixedImpl)).unwrap()
}

fn request(method: &str, params: &[(&str, i64)]) -> Request {
    let schema = Schema::new(
        params
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Int64, false))
            .collect::<Vec<_>>(),
    );
    let columns = params.iter().map(|(_, v)| values(&[*v])).collect();
    let batch = if params.is_empty() {
        RecordBatch::new_empty(empty_schema())
    } else {
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    };
    Request::from_batch(IpcBatch {
        batch,
        metadata: Request::metadata_for(method),
    })
    .unwrap()
}

fn answer(call: Call) -> Answer {
    match call {
        Call::Answer(answer) => answer,
        Call::Stream(_) => panic!("expected an answer"),
    }
}

fn int_result(answer: &Answer) -> Result<i64, String> {
    if let Some((_, info)) = &answer.failure {
        return Err(format!("{}: {}", info.error_type, info.message));
    }
    let (batch, _) = answer.batches.last().unwrap();
    Ok(batch.column(0).as_primitive::<Int64Type>().value(0))
}

fn tick() -> IpcBatch {
    IpcBatch {
        batch: RecordBatch::new_empty(empty_schema()),
        metadata: Metadata::new(),
    }
}

fn data_values(step: &Step) -> Vec<i64> {
    let entries = match step {
        Step::Continue(entries) | Step::Finished(entries) | Step::Failed(entries, _) => entries,
    };
    entries
        .iter()
        .filter(|(batch, _)| batch.num_rows() > 0)
        .flat_map(|(batch, _)| {
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn async_methods_answer_from_a_thread_without_a_runtime() {
    let server = server();
    let sum = answer(server.dispatch(
        request("slow_add", &[("a", 2), ("b", 3)]),
        TransportKind::Pipe,
    ));
    assert_eq!(int_result(&sum), Ok(5));
    // The log sent while the future ran arrives before the result.
    assert_eq!(sum.batches.len(), 2);
    let plain = answer(server.dispatch(request("add", &[("a", 1), ("b", 1)]), TransportKind::Pipe));
    assert_eq!(int_result(&plain), Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_methods_are_awaited_by_async_dispatch() {
    let server = server();
    let calls = (0..16).map(|i| {
        let server = server.clone();
        tokio::spawn(async move {
            let call = server
                .dispatch_async(
                    request("slow_add", &[("a", i), ("b", 100)]),
                    &Peer::anonymous(TransportKind::Http),
                )
                .await;
            int_result(&answer(call))
        })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.unwrap(), Ok(i as i64 + 100));
    }
    // Blocking dispatch inside the runtime neither panics nor deadlocks.
    let sum = answer(server.dispatch(
        request("slow_add", &[("a", 4), ("b", 4)]),
        TransportKind::Http,
    ));
    assert_eq!(int_result(&sum), Ok(8));
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_dispatch_inside_a_current_thread_runtime_completes() {
    let sum = answer(server().dispatch(
        request("slow_add", &[("a", 1), ("b", 2)]),
        TransportKind::Unix,
    ));
    assert_eq!(int_result(&sum), Ok(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_async_method_fails_its_call_only() {
    let server = server();
    for _ in 0..2 {
        let call = server
            .dispatch_async(
                request("explode", &[]),
                &Peer::anonymous(TransportKind::Unix),
            )
            .await;
        let failed = int_result(&answer(call)).unwrap_err();
        assert!(failed.contains("async method went wrong"), "{failed}");
    }
    let blocked = answer(server.dispatch(request("explode", &[]), TransportKind::Pipe));
    assert!(int_result(&blocked).unwrap_err().contains("went wrong"));
    let call = server
        .dispatch_async(
            request("add", &[("a", 1), ("b", 2)]),
            &Peer::anonymous(TransportKind::Unix),
        )
        .await;
    assert_eq!(int_result(&answer(call)), Ok(3));
}

#[test]
fn bad_parameters_of_an_async_method_fail_before_it_runs() {
    let call = answer(server().dispatch(request("slow_add", &[("a", 1)]), TransportKind::Pipe));
    let failed = int_result(&call).unwrap_err();
    assert!(
        failed.contains("missing required parameter 'b'"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_producers_stream_until_they_finish() {
    let Call::Stream(open) = server()
        .dispatch_async(
            request("count", &[("n", 3)]),
            &Peer::anonymous(TransportKind::Unix),
        )
        .await
    else {
        panic!("expected a stream");
    };
    let mut stream = open.stream;
    let mut seen = Vec::new();
    loop {
        let step = stream.step_async(tick()).await;
        seen.extend(data_values(&step));
        if !matches!(step, Step::Continue(_)) {
            assert!(matches!(step, Step::Finished(_)));
            break;
        }
    }
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn async_exchanges_step_from_a_plain_thread_and_survive_a_panic() {
    let Call::Stream(open) =
        server().dispatch(request("shift", &[("offset", 10)]), TransportKind::Pipe)
    else {
        panic!("expected a stream");
    };
    let mut stream = open.stream;
    let input = |v: i64| IpcBatch {
        batch: RecordBatch::try_new(value_schema(), vec![values(&[v])]).unwrap(),
        metadata: Metadata::new(),
    };
    assert_eq!(data_values(&stream.step(input(1))), [11]);
    let Step::Failed(_, info) = stream.step(input(3)) else {
        panic!("a panicking step fails");
    };
    assert_eq!(info.error_kind.as_deref(), Some("panic"));
    assert!(info.message.contains("unlucky step"), "{}", info.message);
}
