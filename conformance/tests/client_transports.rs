//! What the client suite cannot see through the typed client: that the
//! shared-memory side channel is really used and released, that HTTP
//! streams outlive the worker that opened them, sticky sessions, bearer
//! authentication, retries, and externalized batches.
//!
//! Against our worker binary, the HTTP server in this process, and the
//! Python reference when its venv exists (`cargo xtask conformance`
//! creates it).

// Each test binary names only the helper modules it uses, so that none of
// their items goes unused in it.
#[path = "support"]
mod support {
    pub(crate) mod in_process;
    pub(crate) mod raw_http;
}

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use support::in_process::{conformance_server, serve_in_process};
use support::raw_http::{MemoryStorage, proxy, serve_objects};
use vgirpc::client::{Client, ClientError, ShmSegment, ShmTransport, SubprocessTransport};
use vgirpc::wire::metadata;
use vgirpc_client::http::{HttpOptions, HttpTransport, RetryPolicy, StickySession};
use vgirpc_conformance::service::ConformanceServiceClient;
use vgirpc_http::{AuthContext, ExternalConfig, HttpConfig, HttpServer, bearer_static};

const WORKER: &str = env!("CARGO_BIN_EXE_vgi-conformance-worker");

/// A process this test started; killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command`, which announces its port as `PORT:<n>` on its first
/// line, and waits until the port accepts connections.
fn listening(mut command: Command) -> (Process, u16) {
    command.stdout(Stdio::piped()).stdin(Stdio::null());
    // Wrapped at once, so the process is stopped however this function ends.
    let mut process = Process(command.spawn().expect("the server starts"));
    let stdout = process.0.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("PORT:")
        .unwrap_or_else(|| panic!("expected PORT:<n>, got {line:?}"))
        .parse()
        .unwrap();
    // The reference announces the port just before it binds.
    for _ in 0..1000 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (process, port);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("port {port} never accepted a connection");
}

fn our_http_worker(args: &[&str]) -> (Process, u16) {
    let mut command = Command::new(WORKER);
    command.arg("--http").args(args);
    listening(command)
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn http_client(url: &str) -> ConformanceServiceClient<HttpTransport> {
    ConformanceServiceClient::new(Client::connect_http(url).unwrap())
}

fn value_batch(values: &[f64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(values.to_vec()))]).unwrap()
}

fn float(batch: &RecordBatch, column: &str) -> f64 {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Float64Type>()
        .value(0)
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn echo_params(value: &str) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]));
    RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![value]))]).unwrap()
}

/// Results and stream inputs travel through the segment, and each region
/// is released the way the protocol says: the client frees what it read
/// at once, the server frees an input when the next one arrives.
fn check_shm(command: Command) {
    let segment = ShmSegment::create(8 << 20).unwrap();
    let name = segment.name().to_owned();
    let client = Client::spawn(command).unwrap().with_shm(segment);
    let mut svc = ConformanceServiceClient::new(client);
    let in_use = |svc: &ConformanceServiceClient<ShmTransport<SubprocessTransport>>| {
        let client: &Client<_> = svc.as_ref();
        client.transport().segment().regions_in_use().unwrap()
    };

    // Large enough that both sides use the segment rather than the pipe.
    let text = "x".repeat(100_000);
    let result = svc
        .dynamic()
        .call("echo_string", &echo_params(&text))
        .unwrap();
    assert_eq!(result.batch.column(0).as_string::<i32>().value(0), text);
    assert_eq!(
        result.metadata.get(metadata::SHM_SOURCE),
        Some(name.as_str()),
        "the result came through the segment"
    );
    assert_eq!(in_use(&svc), 0, "the client freed the result region");

    let mut session = svc.exchange_accumulate().unwrap();
    let out = session.exchange(&value_batch(&[1.0; 10_000])).unwrap();
    assert_eq!(float(&out, "running_sum"), 10_000.0);
    let out = session.exchange(&value_batch(&[10.0; 10_000])).unwrap();
    assert_eq!(float(&out, "running_sum"), 110_000.0);
    session.close().unwrap();
    drop(session);
    // Only the last input is left: the server freed the first when the
    // second arrived, and nobody reads the last one again.
    assert_eq!(in_use(&svc), 1);

    let batches: Vec<RecordBatch> = svc
        .produce_large_batches(20_000, 3)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.num_rows() == 20_000));
    assert_eq!(in_use(&svc), 0, "a new call starts on an empty segment");
    svc.into_dynamic().close().unwrap();
}

#[test]
fn the_shared_memory_side_channel_carries_batches_both_ways() {
    check_shm(Command::new(WORKER));
    if let Some(bin) = vgirpc_conformance::reference::venv_bin() {
        let mut command = Command::new(bin.join("vgi-rpc-conformance"));
        command.arg("--describe");
        check_shm(command);
    }
}

#[test]
fn an_http_stream_survives_a_server_restart_when_the_workers_share_the_token_key() {
    let key = "5c1e9a0f4b7d2e8c6a3f1b0d9e7c5a2f4b8d6e1c3a5f7b9d0e2c4a6f8b1d3e5c";
    let (first, port) = our_http_worker(&["--token-key", key]);
    let mut svc = http_client(&url(port));
    let mut session = svc.exchange_accumulate().unwrap();
    let out = session.exchange(&value_batch(&[1.0, 2.0])).unwrap();
    assert_eq!(float(&out, "running_sum"), 3.0);

    drop(first);
    let (second, _) = our_http_worker(&["--token-key", key, "--port", &port.to_string()]);
    // The state rides in the token: the new worker continues the stream.
    let out = session.exchange(&value_batch(&[10.0])).unwrap();
    assert_eq!(float(&out, "running_sum"), 13.0);
    assert_eq!(ints(&out, "exchange_count"), [2]);
    session.close().unwrap();
    drop(session);

    // A producer, too: its continuation token outlives the worker.
    let mut producer = svc.produce_n(4).unwrap();
    let early: Vec<RecordBatch> = (0..2)
        .map(|_| producer.next_batch().unwrap().unwrap())
        .collect();
    drop(second);
    let (third, _) = our_http_worker(&["--token-key", key, "--port", &port.to_string()]);
    let late: Vec<RecordBatch> = producer.by_ref().collect::<Result<_, _>>().unwrap();
    let indexes: Vec<i64> = early
        .iter()
        .chain(&late)
        .flat_map(|b| ints(b, "index"))
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3]);
    drop(producer);

    // A worker with another key cannot open the token.
    let mut session = svc.exchange_accumulate().unwrap();
    session.exchange(&value_batch(&[1.0])).unwrap();
    drop(third);
    let (_other, _) = our_http_worker(&["--port", &port.to_string()]);
    match session.exchange(&value_batch(&[1.0])) {
        Err(ClientError::Remote { message, .. }) => {
            assert!(message.contains("State token"), "{message}");
        }
        other => panic!("expected the token to be refused, got {other:?}"),
    }
}

/// The sticky-session contract against a sticky server at `url`, whose
/// opening responses ask for `x-vgi-conformance-echo` to be echoed.
fn check_sticky(url: &str, options: &HttpOptions) {
    let connect =
        || ConformanceServiceClient::new(Client::connect_http_with(url, options.clone()).unwrap());
    let mut svc = connect();
    // Outside a scope the client does not opt in, and the server refuses.
    match svc.open_counter(1) {
        Err(ClientError::Remote { message, .. }) => {
            assert!(message.contains("VGI-Session-Accept"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let detached = {
        let mut session = StickySession::begin(&mut svc, None);
        assert_eq!(session.token(), None);
        assert_eq!(session.open_counter(7).unwrap(), 7);
        assert!(session.token().is_some(), "the server minted a token");
        assert_eq!(
            session.echo_headers(),
            [(
                "x-vgi-conformance-echo".to_owned(),
                "conformance-fixed-marker".to_owned()
            )]
        );
        assert_eq!(session.increment_counter(10).unwrap(), 17);
        let values: Vec<i64> = session
            .stream_session_counter(2)
            .unwrap()
            .map(|b| ints(&b.unwrap(), "value")[0])
            .collect();
        assert_eq!(values, [18, 19], "streams reach the session on every turn");
        session.detach().expect("a live session")
    };

    // Resumed by another client, as another process would.
    let mut other = connect();
    {
        let mut session = StickySession::resume(&mut other, detached.clone());
        assert_eq!(session.increment_counter(1).unwrap(), 20);
        // Leaving the scope ends the session on the server.
    }
    let mut session = StickySession::resume(&mut other, detached);
    let err = session.increment_counter(1).unwrap_err();
    assert!(err.is_session_lost(), "{err:?}");
    drop(session);

    // A scope on the dynamic client works alike; closing the session from
    // the server side clears the token, leaving nothing to end.
    let mut scope = svc.dynamic().with_session_token(None);
    let initial = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "initial",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(arrow_array::Int64Array::from(vec![5]))],
    )
    .unwrap();
    scope.call("open_counter", &initial).unwrap();
    assert!(scope.token().is_some());
    let closed = scope
        .call("close_counter", &vgirpc::client::no_params())
        .unwrap();
    assert_eq!(ints(&closed.batch, "result"), [5]);
    assert_eq!(scope.token(), None);
    assert!(scope.echo_headers().is_empty());
    scope.end().unwrap();
}

#[test]
fn sticky_sessions_open_resume_detach_and_release() {
    let (_ours, port) = our_http_worker(&[]);
    check_sticky(&url(port), &HttpOptions::new());
    // Sessions live in the worker, whatever the HTTP version.
    check_sticky(&url(port), &HttpOptions::new().http2_prior_knowledge(true));
    if let Some(bin) = vgirpc_conformance::reference::venv_bin() {
        // The reference's sticky conformance server, as its test suite
        // configures it: sticky sessions with one echoed routing header.
        let script = "\
import socket, sys, waitress
from vgi_rpc.conformance import ConformanceService, ConformanceServiceImpl
from vgi_rpc.http import make_wsgi_app
from vgi_rpc.rpc import RpcServer
app = make_wsgi_app(RpcServer(ConformanceService, ConformanceServiceImpl()), enable_sticky=True,
                    sticky_echo_headers={'x-vgi-conformance-echo': 'conformance-fixed-marker'})
s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
print(f'PORT:{port}', flush=True)
waitress.serve(app, host='127.0.0.1', port=port, _quiet=True)
";
        let mut command = Command::new(bin.join("python"));
        command.args(["-c", script]);
        let (_reference, port) = listening(command);
        check_sticky(&url(port), &HttpOptions::new());
    }
}

/// Our HTTP server with the conformance service in this process, on a
/// free port; serves until the process ends.
fn in_process_server(config: HttpConfig) -> u16 {
    serve_in_process(HttpServer::new(conformance_server(), config).unwrap())
}

#[test]
fn a_bearer_token_is_sent_with_every_request() {
    let alice = AuthContext::authenticated("test", "alice");
    let port = in_process_server(
        HttpConfig::new().with_authenticate(bearer_static([("s3cret".to_owned(), alice)])),
    );
    let options = HttpOptions::new().bearer_token("s3cret");
    let mut svc =
        ConformanceServiceClient::new(Client::connect_http_with(&url(port), options).unwrap());
    assert_eq!(svc.echo_string("hi".into()).unwrap(), "hi");
    let mut session = svc.exchange_accumulate().unwrap();
    assert_eq!(
        float(
            &session.exchange(&value_batch(&[2.0])).unwrap(),
            "running_sum"
        ),
        2.0
    );
    drop(session);

    for options in [HttpOptions::new(), HttpOptions::new().bearer_token("wrong")] {
        let mut svc =
            ConformanceServiceClient::new(Client::connect_http_with(&url(port), options).unwrap());
        match svc.echo_string("hi".into()) {
            Err(ClientError::Remote { error_type, .. }) => {
                assert_eq!(error_type, "AuthenticationError");
            }
            other => panic!("expected an authentication error, got {other:?}"),
        }
    }
}

#[test]
fn gateway_errors_are_retried_for_repeatable_requests_only() {
    let upstream = in_process_server(HttpConfig::new());
    let policy = RetryPolicy::default()
        .max_retries(3)
        .backoff(Duration::from_millis(1), Duration::from_millis(5));
    let client = |port: u16| {
        let options = HttpOptions::new().retry(policy.clone());
        ConformanceServiceClient::new(Client::connect_http_with(&url(port), options).unwrap())
    };
    let count = |seen: &Mutex<Vec<String>>, path: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|line| line.split_whitespace().nth(1) == Some(path))
            .count()
    };

    // Two failures, then the answer.
    let (port, seen) = proxy(upstream, |line, before| {
        line.contains("/echo_string ") && before < 2
    });
    assert_eq!(
        client(port).echo_string("through".into()).unwrap(),
        "through"
    );
    assert_eq!(count(&seen, "/echo_string"), 3);

    // Failures beyond the policy: the last status is reported.
    let (port, seen) = proxy(upstream, |line, _| line.contains("/echo_string "));
    match client(port).echo_string("x".into()) {
        Err(ClientError::Http { status: 503, .. }) => {}
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    assert_eq!(
        count(&seen, "/echo_string"),
        4,
        "one attempt and three retries"
    );

    // A producer's continuation asks for the same batches again: retried.
    // A one-byte response cap makes the producer continue turn by turn.
    let turn_by_turn = in_process_server(HttpConfig::new().with_max_response_bytes(1));
    let (port, seen) = proxy(turn_by_turn, |line, before| {
        line.contains("/produce_n/exchange") && before == 0
    });
    let mut svc = client(port);
    let batches: Vec<RecordBatch> = svc.produce_n(3).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 3);
    assert!(count(&seen, "/produce_n/exchange") >= 3);

    // An exchange turn is never repeated: its input may have been processed.
    let (port, seen) = proxy(upstream, |line, _| {
        line.contains("/exchange_accumulate/exchange")
    });
    let mut svc = client(port);
    let mut session = svc.exchange_accumulate().unwrap();
    match session.exchange(&value_batch(&[1.0])) {
        Err(ClientError::Http { status: 503, .. }) => {}
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    drop(session);
    assert_eq!(count(&seen, "/exchange_accumulate/exchange"), 1);
}

#[test]
fn externalized_batches_are_fetched_checked_and_returned_in_place() {
    for compression in [None, Some(3)] {
        let storage = Arc::new(MemoryStorage::default());
        serve_objects(storage.clone());
        let mut external = ExternalConfig::new(storage.clone())
            .with_threshold(1024)
            .allow_any_url();
        if let Some(level) = compression {
            external = external.with_compression(level);
        }
        let port = in_process_server(HttpConfig::new().with_external(external));
        let mut svc = http_client(&url(port));

        let bytes = svc.oversized_unary(100_000).unwrap();
        assert_eq!(bytes.len(), 100_000);
        let raw = svc
            .dynamic()
            .call("echo_string", &echo_params(&"x".repeat(5000)))
            .unwrap();
        let source = raw.metadata.get(metadata::LOCATION_SOURCE).unwrap_or("");
        assert!(source.contains("/objects/"), "{:?}", raw.metadata);
        assert_eq!(raw.batch.column(0).as_string::<i32>().value(0).len(), 5000);

        let batches: Vec<RecordBatch> = svc
            .produce_large_batches(5_000, 3)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            15_000
        );
        let mut session = svc.exchange_oversized(5_000).unwrap();
        for _ in 0..2 {
            let out = session.exchange(&value_batch(&[1.0])).unwrap();
            assert_eq!(out.num_rows(), 5_000);
        }
        drop(session);
        let uploaded = storage.objects.lock().unwrap().len();
        assert!(
            uploaded >= 7,
            "{uploaded} objects: the batches went through storage"
        );
        let compressed = storage
            .objects
            .lock()
            .unwrap()
            .iter()
            .all(|(_, encoding)| encoding.as_deref() == compression.map(|_| "zstd"));
        assert!(compressed);
    }
}
