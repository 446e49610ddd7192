//! The worker reports failed calls to the Sentry project `SENTRY_DSN` names,
//! and reports nothing without it: checked against a local HTTP endpoint
//! standing in for Sentry's ingestion.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use sentry::Envelope;
use sentry::protocol::{EnvelopeItem, Event};
use vgirpc::wire::ipc::{StreamReader, empty_schema, write_stream_bytes};
use vgirpc::wire::request::Request;

/// What the stand-in received: request path and body, in arrival order.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// An HTTP/1.1 endpoint answering every POST with 200, keeping each body.
fn ingest() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Received::default();
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let store = store.clone();
            std::thread::spawn(move || serve_connection(stream, &store));
        }
    });
    (port, received)
}

/// Reads requests until the client closes; the transport keeps its
/// connection alive between envelopes.
fn serve_connection(stream: TcpStream, store: &Received) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        store.lock().unwrap().push((path, body));
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            .unwrap();
    }
}

fn request(method: &str, message: Option<&str>) -> Vec<u8> {
    let Some(message) = message else {
        let params = RecordBatch::new_empty(empty_schema());
        return write_stream_bytes(
            params.schema_ref(),
            [(&params, &Request::metadata_for(method))],
        )
        .unwrap();
    };
    let schema = Arc::new(Schema::new(vec![Field::new(
        "message",
        DataType::Utf8,
        false,
    )]));
    let params =
        RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec![message]))]).unwrap();
    write_stream_bytes(
        params.schema_ref(),
        [(&params, &Request::metadata_for(method))],
    )
    .unwrap()
}

const CALLS: [(&str, Option<&str>); 2] = [("raise_value_error", Some("boom")), ("void_noop", None)];

fn worker(dsn: Option<&str>) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vgi-conformance-worker"));
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("SENTRY_DSN");
    if let Some(dsn) = dsn {
        command.env("SENTRY_DSN", dsn);
    }
    command
}

/// Runs the worker over pipes for one failing and one succeeding call,
/// then closes its stdin and waits for it to exit.
fn run_worker(dsn: Option<&str>) {
    let mut worker = worker(dsn).spawn().expect("worker starts");
    let mut stdin = worker.stdin.take().unwrap();
    let mut stdout = worker.stdout.take().unwrap();
    for (method, message) in CALLS {
        stdin.write_all(&request(method, message)).unwrap();
        stdin.flush().unwrap();
        let mut reader = StreamReader::open(&mut stdout).unwrap();
        reader.drain().unwrap();
    }
    drop(stdin);
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// The same two calls over HTTP, then SIGTERM.
fn run_http_worker(dsn: &str) {
    let mut worker = worker(Some(dsn))
        .arg("--http")
        .spawn()
        .expect("worker starts");
    let mut ready = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let port: u16 = ready.trim().strip_prefix("PORT:").unwrap().parse().unwrap();
    for (method, message) in CALLS {
        let body = request(method, message);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "POST /{method} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/vnd.apache.arrow.stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{method}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

fn events(received: &Received) -> Vec<Event<'static>> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(path, body)| {
            assert_eq!(path, "/api/1/envelope/");
            Envelope::from_slice(body)
                .expect("an envelope")
                .into_items()
                .filter_map(|item| match item {
                    EnvelopeItem::Event(event) => Some(*event),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The one event received, checked against what the worker reports of
/// a failed `raise_value_error`.
fn check_reported(received: &Received) {
    let events = events(received);
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}");
    };
    assert_eq!(event.transaction.as_deref(), Some("rpc raise_value_error"));
    let exception = &event.exception.values[0];
    assert_eq!(exception.ty, "ValueError");
    assert_eq!(exception.value.as_deref(), Some("boom"));
    let tag = |key: &str| event.tags.get(key).map(String::as_str);
    assert_eq!(tag("rpc.method"), Some("raise_value_error"));
    assert_eq!(tag("rpc.method_type"), Some("unary"));
    assert_eq!(tag("auth.authenticated"), Some("false"));
    let Some(sentry::protocol::Context::Other(rpc)) = event.contexts.get("rpc") else {
        panic!("rpc context: {:?}", event.contexts);
    };
    assert_eq!(rpc["service"], "ConformanceService");
}

#[test]
fn a_failed_call_reaches_the_project_named_by_sentry_dsn() {
    let (port, received) = ingest();
    run_worker(Some(&format!("http://publickey@127.0.0.1:{port}/1")));
    // The worker flushed before it exited, so everything has arrived.
    check_reported(&received);
}

#[test]
fn over_http_too() {
    let (port, received) = ingest();
    run_http_worker(&format!("http://publickey@127.0.0.1:{port}/1"));
    check_reported(&received);
}

#[test]
fn without_sentry_dsn_nothing_is_sent() {
    let (_, received) = ingest();
    run_worker(None);
    // Empty is the same as unset, not a DSN that fails to parse.
    run_worker(Some(""));
    std::thread::sleep(Duration::from_millis(200));
    assert!(received.lock().unwrap().is_empty());
}
