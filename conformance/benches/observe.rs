//! What Sentry and OpenTelemetry add to one dispatch, in process: the
//! conformance service's `void_noop` dispatched plain, then with the
//! worker's `--observe-discard` observers installed (a bound Sentry client
//! dropping its envelopes, dispatch spans handed to an exporter that drops
//! them, request metrics aggregated). No transport is involved, so the figures
//! are the user-space cost alone; `cargo xtask bench --workload
//! observe_overhead` measures the same over a pipe.

use std::hint::black_box;

use arrow_array::RecordBatch;
use criterion::{Criterion, criterion_group, criterion_main};
use vgirpc::transport::Call;
use vgirpc::wire::request::Request;
use vgirpc::{Peer, Server, TransportKind};
use vgirpc_conformance::observe::{Observers, Reporting};
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};

fn void_noop() -> Request {
    Request {
        method: "void_noop".to_owned(),
        params: RecordBatch::new_empty(vgirpc::wire::ipc::empty_schema()),
        metadata: Request::metadata_for("void_noop"),
    }
}

fn server() -> Server {
    Server::new(ConformanceServiceServer::new(Conformance)).expect("the conformance service")
}

fn dispatch(server: &Server, peer: &Peer, request: &Request) {
    match server.dispatch_from(black_box(request.clone()), peer) {
        Call::Answer(answer) => {
            assert!(answer.failure.is_none(), "void_noop failed");
            // As a transport does once the answer is written.
            if let Some(record) = &answer.record {
                server.emit(record);
            }
            black_box(answer);
        }
        Call::Stream(_) => unreachable!("void_noop is unary"),
    }
}

fn observe(c: &mut Criterion) {
    let peer = Peer::anonymous(TransportKind::Pipe);
    let request = void_noop();

    // Plain first: the observers, once installed, are global.
    let plain = server();
    c.bench_function("dispatch/void_noop/plain", |b| {
        b.iter(|| dispatch(&plain, &peer, &request))
    });

    let observers = Observers::start(Reporting::Discard).expect("observers with nowhere to send");
    let observed = server();
    observers.instrument(&observed);
    c.bench_function("dispatch/void_noop/observed", |b| {
        b.iter(|| dispatch(&observed, &peer, &request))
    });
}

criterion_group!(benches, observe);
criterion_main!(benches);
