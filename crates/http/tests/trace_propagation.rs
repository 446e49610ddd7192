//! One trace across two processes: with the `otel` feature our client sends
//! the caller's W3C trace context, and our server's dispatch span, in a
//! process of its own, continues it, over a pipe and over HTTP.
//!
//! The test binary is its own server: run with `VGI_TRACE_CHILD` set it
//! serves (a pipe on stdin/stdout, or HTTP on a port it prints) and, once
//! its caller closes stdin, writes the spans it finished to stderr. Its own
//! `main` (no libtest harness) keeps stdout free for the pipe.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use vgirpc::client::Client;
use vgirpc::otel::OtelConfig;
use vgirpc::{RpcError, Server, TransportKind};
use vgirpc_http::{HttpConfig, HttpServer};

/// Service used by this test.
#[vgirpc::service]
pub trait Calc {
    /// Adds.
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError>;
}

struct Impl;

impl Calc for Impl {
    fn add(&self, a: i64, b: i64) -> Result<i64, RpcError> {
        Ok(a + b)
    }
}

const CHILD: &str = "VGI_TRACE_CHILD";

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok("pipe") => child(serve_pipe),
        Ok("http") => child(serve_http),
        _ => {
            for transport in ["pipe", "http"] {
                one_trace_over(transport);
                println!("test trace_propagation over {transport} ... ok");
            }
        }
    }
}

/// Serves with an in-memory span exporter, then reports each finished span
/// as `name trace_id span_id parent_span_id` on stderr.
fn child(serve: fn(&SdkTracerProvider)) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    serve(&provider);
    provider.force_flush().unwrap();
    let mut stderr = std::io::stderr().lock();
    for span in exporter.get_finished_spans().unwrap() {
        writeln!(
            stderr,
            "{} {} {} {}",
            span.name,
            span.span_context.trace_id(),
            span.span_context.span_id(),
            span.parent_span_id
        )
        .unwrap();
    }
}

/// Our server with its dispatch spans recorded through `provider`.
fn instrumented(provider: &SdkTracerProvider) -> Server {
    let server = Server::new(CalcServer::new(Impl)).unwrap();
    server.instrument_otel(
        OtelConfig::new()
            .with_tracer_provider(provider)
            .without_metrics(),
    );
    server
}

fn serve_pipe(provider: &SdkTracerProvider) {
    let server = instrumented(provider);
    server
        .serve(std::io::stdin(), std::io::stdout(), TransportKind::Pipe)
        .unwrap();
}

fn serve_http(provider: &SdkTracerProvider) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = instrumented(provider);
        let http = HttpServer::new(server, HttpConfig::new()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        });
        http.serve(listener, async {
            let _ = stdin_closed.await;
        })
        .await
        .unwrap();
    });
}

fn spawn(transport: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, transport)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Calls `add` twice inside one client span against a server process over
/// `transport`: both dispatch spans must be children of that span.
fn one_trace_over(transport: &str) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("client")));
    let mut child = spawn(transport);
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        let caller = tracing::info_span!("caller");
        let _entered = caller.enter();
        match transport {
            "pipe" => {
                let stdout = child.stdout.take().unwrap();
                let stdin = child.stdin.take().unwrap();
                let mut calc = CalcClient::new(Client::from_io(stdout, stdin));
                assert_eq!(calc.add(1, 2).unwrap(), 3);
                assert_eq!(calc.add(3, 4).unwrap(), 7);
            }
            _ => {
                let mut port = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut port)
                    .unwrap();
                let url = format!("http://127.0.0.1:{}", port.trim());
                let mut calc = CalcClient::new(Client::connect_http(&url).unwrap());
                assert_eq!(calc.add(1, 2).unwrap(), 3);
                assert_eq!(calc.add(3, 4).unwrap(), 7);
                drop(calc);
                drop(child.stdin.take());
            }
        }
        let context = caller.context();
        let span = context.span();
        let ids = span.span_context();
        (ids.trace_id().to_string(), ids.span_id().to_string())
    });
    let mut report = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut report)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{transport} server: {status}\n{report}");

    let rpc: Vec<Vec<&str>> = report
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .filter(|fields| fields.first() == Some(&"vgi_rpc/add"))
        .collect();
    assert_eq!(rpc.len(), 2, "{transport}: server spans:\n{report}");
    for fields in &rpc {
        assert_eq!(fields[1], trace_id, "{transport}: another trace\n{report}");
        assert_eq!(fields[3], span_id, "{transport}: another parent\n{report}");
    }
    provider.force_flush().unwrap();
    let client_spans = exporter.get_finished_spans().unwrap();
    assert!(
        client_spans
            .iter()
            .any(|s| s.name == "caller" && s.span_context.trace_id().to_string() == trace_id)
    );
}
