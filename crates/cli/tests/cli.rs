//! `vgi-rpc` as a user runs it: the built binary against a conformance
//! worker (this package's `conformance_worker` example).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgirpc::{Server, Service};
use vgirpc_conformance::service::{Conformance, ConformanceServiceServer};
use vgirpc_http::{AuthContext, AuthRejection, ClientAuth, HttpConfig, HttpServer, TlsConfig};
use vgirpc_pipe::{ShmSideChannels, UnixConfig};
use vgirpc_test_support::pki::Pki;
use vgirpc_wire::ipc::{StreamReader, write_stream_bytes};
use vgirpc_wire::metadata::Metadata;

fn worker() -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_vgi-rpc"));
    let path = bin
        .parent()
        .expect("the binary lives in a directory")
        .join("examples")
        .join(format!(
            "conformance_worker{}",
            std::env::consts::EXE_SUFFIX
        ));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test -p vgirpc-cli`, which builds examples",
        path.display()
    );
    path.display().to_string()
}

fn vgi_rpc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vgi-rpc"))
        .args(args)
        .output()
        .expect("vgi-rpc runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 errors")
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "vgi-rpc failed: {}\n{}",
        output.status,
        stderr(output)
    );
    stdout(output)
}

#[test]
fn describe_lists_every_method_with_its_parameter_types() {
    let text = succeeded(&vgi_rpc(&["--cmd", &worker(), "describe"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "method\ttype\tparams\treturns\theader");
    let service = ConformanceServiceServer::new(Conformance);
    assert_eq!(lines.len(), 1 + service.methods().len());
    for method in service.methods() {
        let line = lines
            .iter()
            .find(|l| l.split('\t').next() == Some(method.name.as_str()))
            .unwrap_or_else(|| panic!("{} is not listed", method.name));
        for field in method.params_schema.fields() {
            assert!(
                line.contains(&format!("{}: ", field.name())),
                "{line:?} lacks parameter {}",
                field.name()
            );
        }
    }
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name}\t")))
            .copied()
            .unwrap_or_default()
    };
    assert_eq!(
        row("add_floats"),
        "add_floats\tunary\ta: double not null, b: double not null\tresult: double not null\t"
    );
    assert_eq!(
        row("produce_with_header"),
        "produce_with_header\tstream\tcount: int64 not null\t\t\
         total_expected: int64 not null, description: string not null"
    );
}

#[test]
fn describe_as_a_table_reads_like_the_reference() {
    let text = succeeded(&vgi_rpc(&["-c", &worker(), "-f", "table", "describe"]));
    assert!(
        text.starts_with("RPC Service: ConformanceService\n"),
        "{text}"
    );
    assert!(text.contains("\n  echo_string(unary)\n    params: value: string not null\n"));
    assert!(text.contains("  protocol_hash: "));
}

#[test]
fn a_unary_call_prints_its_result() {
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker(),
        "call",
        "echo_string",
        "value=hi",
    ]));
    assert_eq!(text, "hi\n");
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker(),
        "call",
        "add_floats",
        "a=1.5",
        "b=2.25",
    ]));
    assert_eq!(text, "3.75\n");
    // Omitted parameters take the server's defaults.
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "call",
        "concatenate",
        "prefix=a",
        "suffix=b",
    ]));
    assert_eq!(text, "a-b\n");
    // ... and a missing required one is the server's error to report.
    let output = vgi_rpc(&["-c", &worker(), "call", "echo_point", "--json", "{}"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "vgi-rpc: TypeError: echo_point() missing required parameter 'point'\n"
    );
    // Typed values: JSON for containers, text for dates; JSON output.
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "-f",
        "json",
        "call",
        "echo_dict",
        r#"mapping={"b": 2, "a": 1}"#,
    ]));
    assert_eq!(text, "{\"result\":{\"a\":1,\"b\":2}}\n");
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "-f",
        "json",
        "call",
        "echo_nested_list",
        "matrix=[[1, 2], [], [3]]",
    ]));
    assert_eq!(text, "{\"result\":[[1,2],[],[3]]}\n");
    // A struct parameter, from the schema our worker publishes for it.
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "-f",
        "json",
        "call",
        "echo_point",
        "--json",
        r#"{"point": {"x": 1.5, "y": 2}}"#,
    ]));
    assert_eq!(text, "{\"result\":{\"x\":1.5,\"y\":2.0}}\n");
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "call",
        "echo_date",
        "value=2026-04-25",
    ]));
    assert_eq!(text, "2026-04-25\n");
}

#[test]
fn a_producer_stream_prints_its_rows() {
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker(),
        "call",
        "produce_n",
        "count=3",
    ]));
    assert_eq!(text, "index\tvalue\n0\t0\n1\t10\n2\t20\n");
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker(),
        "--format",
        "json",
        "call",
        "produce_with_header",
        "count=2",
    ]));
    assert_eq!(
        text,
        "{\"__header__\":{\"description\":\"producing 2 batches\",\"total_expected\":2}}\n\
         {\"index\":0,\"value\":0}\n{\"index\":1,\"value\":10}\n"
    );
    let text = succeeded(&vgi_rpc(&[
        "-c",
        &worker(),
        "-f",
        "table",
        "call",
        "produce_n",
        "count=2",
    ]));
    assert_eq!(text, "index  value\n-----  -----\n0      0\n1      10\n");
}

#[test]
fn an_exchange_sends_every_batch_of_the_input_file() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Float64,
        true,
    )]));
    let first = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Float64Array::from(vec![1.0, 2.0]))],
    )
    .unwrap();
    let second = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Float64Array::from(vec![10.0]))],
    )
    .unwrap();
    let none = Metadata::new();
    let bytes = write_stream_bytes(&schema, [(&first, &none), (&second, &none)]).unwrap();
    let dir = std::env::temp_dir().join(format!("vgi-rpc-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("values.arrows");
    std::fs::write(&input, bytes).unwrap();

    let text = vgi_rpc(&[
        "-c",
        &worker(),
        "call",
        "exchange_scale",
        "factor=2",
        "--input",
        input.to_str().unwrap(),
    ]);
    let arrow = vgi_rpc(&[
        "-c",
        &worker(),
        "-f",
        "arrow",
        "call",
        "exchange_scale",
        "factor=3",
        "-i",
        input.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(succeeded(&text), "value\n2.0\n4.0\n20.0\n");
    assert!(arrow.status.success(), "{}", stderr(&arrow));
    let mut reader = StreamReader::open(arrow.stdout.as_slice()).unwrap();
    let mut values = Vec::new();
    while let Some(batch) = reader.next_batch().unwrap() {
        let column = batch.batch.column(0);
        let column = column.as_any().downcast_ref::<Float64Array>().unwrap();
        values.extend(column.values().iter().copied());
    }
    assert_eq!(values, [3.0, 6.0, 30.0]);
}

#[test]
fn the_reference_workers_struct_parameters_are_refused_as_json_naming_them() {
    let Some(bin) = vgirpc_conformance::reference::venv_bin() else {
        return;
    };
    let worker = format!("'{}' --describe", bin.join("vgi-rpc-conformance").display());
    // The reference describes a dataclass parameter as plain binary, with
    // no schema to build it from.
    let output = vgi_rpc(&[
        "--cmd",
        &worker,
        "call",
        "echo_point",
        r#"point={"x": 1, "y": 2}"#,
    ]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(
            "vgi-rpc: parameter 'point' of echo_point (binary): the service's description \
             carries no schema for this parameter"
        ),
        "{text}"
    );
    // Its list and map parameters take JSON.
    let text = succeeded(&vgi_rpc(&[
        "--cmd",
        &worker,
        "-f",
        "json",
        "call",
        "echo_nested_list",
        "matrix=[[1, 2], [3]]",
    ]));
    assert_eq!(text, "{\"result\":[[1,2],[3]]}\n");
}

#[test]
fn an_exchange_without_input_says_what_it_got() {
    let output = vgi_rpc(&["-c", &worker(), "call", "exchange_scale", "factor=2"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("Input schema mismatch: expected "), "{text}");
    assert!(
        text.trim_end().ends_with("got a batch with no columns"),
        "{text}"
    );
}

#[test]
fn a_wrong_parameter_name_is_a_one_line_usage_error() {
    let output = vgi_rpc(&["--cmd", &worker(), "call", "echo_string", "nope=hi"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "vgi-rpc: unknown parameter 'nope' for echo_string; expected one of: value\n"
    );
}

#[test]
fn a_server_error_is_one_line_and_exit_status_one() {
    let output = vgi_rpc(&["-c", &worker(), "call", "raise_value_error", "message=boom"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "vgi-rpc: ValueError: boom\n");
    let output = vgi_rpc(&["-c", &worker(), "call", "no_such_method"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("vgi-rpc: unknown method 'no_such_method'; available: "));
    assert_eq!(stderr(&output).lines().count(), 1);
}

#[test]
fn verbose_prints_server_logs_on_stderr() {
    let output = vgi_rpc(&[
        "-v",
        "-c",
        &worker(),
        "call",
        "echo_with_info_log",
        "value=x",
    ]);
    assert_eq!(succeeded(&output), "x\n");
    assert_eq!(stderr(&output), "[INFO] info: x\n");
    let quiet = vgi_rpc(&["-c", &worker(), "call", "echo_with_info_log", "value=x"]);
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn a_dead_worker_is_reported_with_its_exit_status() {
    let output = vgi_rpc(&["--cmd", "sh -c 'echo no config >&2; exit 3'", "describe"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("no config"), "{text}");
}

/// Our HTTP server with the conformance service, on a free port of this
/// test process; returns its base URL. It serves until the process ends.
fn http_worker() -> String {
    http_worker_with(HttpConfig::new())
}

fn http_worker_with(config: HttpConfig) -> String {
    serve_http(config, "http")
}

/// Serves the conformance service with `config`; returns its URL.
fn serve_http(config: HttpConfig, scheme: &str) -> String {
    let server = Server::new(ConformanceServiceServer::new(Conformance)).unwrap();
    let http = HttpServer::new(server, config).unwrap();
    let port = vgirpc_test_support::serve_in_process(|listener| async move {
        http.serve(listener, std::future::pending()).await.unwrap();
    });
    format!("{scheme}://127.0.0.1:{port}")
}

#[test]
fn https_with_a_private_ca_and_a_client_certificate() {
    let pki = Pki::generate();
    let dir = std::env::temp_dir().join(format!("vgi-cli-tls-{}", std::process::id()));
    let files = pki.write_to(&dir).unwrap();
    let tls = TlsConfig::from_pem_files(&files.server_cert, &files.server_key)
        .unwrap()
        .with_client_ca_file(&files.ca, ClientAuth::Required)
        .unwrap();
    let url = serve_http(HttpConfig::new().with_tls(tls), "https");
    let [ca, cert, key] = [&files.ca, &files.client_cert, &files.client_key]
        .map(|path| path.to_str().unwrap().to_owned());
    let call = ["call", "echo_string", "value=over tls"];

    let with_identity = [
        "--url",
        &url,
        "--ca-cert",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    let output = vgi_rpc(&[&with_identity[..], &call[..]].concat());
    assert_eq!(succeeded(&output), "over tls\n");

    // The server's CA is not among the system's roots.
    let output = vgi_rpc(&[&["--url", url.as_str()][..], &call[..]].concat());
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("certificate"),
        "{}",
        stderr(&output)
    );

    let output = vgi_rpc(
        &[
            &["--url", &url, "--ca-cert", &ca, "--client-cert", &cert][..],
            &call[..],
        ]
        .concat(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("go together"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn http2_prior_knowledge_over_plain_http() {
    let url = http_worker();
    let output = vgi_rpc(&["--url", &url, "--http2", "call", "echo_int", "value=7"]);
    assert_eq!(succeeded(&output), "7\n");
}

/// Our worker listening on a Unix socket of its own, on a thread of this
/// test process; returns the socket path.
fn unix_worker() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vgi-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("worker.sock");
    let config = UnixConfig::new(&path);
    let (ready, bound) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::new(ConformanceServiceServer::new(Conformance)).unwrap();
        vgirpc_pipe::serve_unix(&server, &config, ShmSideChannels, |_| {
            ready.send(()).unwrap();
        })
        .unwrap();
    });
    bound.recv().unwrap();
    path
}

#[test]
fn headers_and_a_bearer_token_reach_an_authenticating_server() {
    // Lets in only requests with the right token and a tenant header.
    let config = HttpConfig::new().with_authenticate(|request: &http::request::Parts| {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        match (header("authorization"), header("x-tenant")) {
            (Some("Bearer s3cret"), Some(tenant)) => Ok(AuthContext::authenticated("test", tenant)),
            _ => Err(AuthRejection::new("token and tenant required")),
        }
    });
    let url = http_worker_with(config);
    let call = |extra: &[&str]| {
        let mut args = vec!["--url", url.as_str()];
        args.extend_from_slice(extra);
        args.extend(["call", "echo_string", "value=let in"]);
        vgi_rpc(&args)
    };
    let text = succeeded(&call(&["-H", "X-Tenant: blue", "--bearer", "s3cret"]));
    assert_eq!(text, "let in\n");

    let refused = call(&["--bearer", "s3cret"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        "vgi-rpc: AuthenticationError: token and tenant required\n"
    );

    // The token may come from the environment instead.
    let from_env = Command::new(env!("CARGO_BIN_EXE_vgi-rpc"))
        .args([
            "--url",
            &url,
            "-H",
            "X-Tenant: blue",
            "call",
            "echo_string",
            "value=env",
        ])
        .env("VGI_RPC_BEARER", "s3cret")
        .output()
        .unwrap();
    assert_eq!(succeeded(&from_env), "env\n");

    let misplaced = vgi_rpc(&["--cmd", &worker(), "--bearer", "x", "describe"]);
    assert_eq!(misplaced.status.code(), Some(2));
    assert_eq!(
        stderr(&misplaced),
        "vgi-rpc: --bearer only applies to --url\n"
    );
}

#[test]
fn calls_reach_a_server_over_http() {
    let url = http_worker();
    let text = succeeded(&vgi_rpc(&[
        "--url",
        &url,
        "call",
        "echo_string",
        "value=hi",
    ]));
    assert_eq!(text, "hi\n");
    let text = succeeded(&vgi_rpc(&["-u", &url, "call", "produce_n", "count=3"]));
    assert_eq!(text, "index\tvalue\n0\t0\n1\t10\n2\t20\n");
    let text = succeeded(&vgi_rpc(&["--url", &url, "describe"]));
    assert!(text.contains("\necho_string\tunary\t"), "{text}");
    // Server errors travel as over a pipe.
    let output = vgi_rpc(&["--url", &url, "call", "raise_value_error", "message=boom"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "vgi-rpc: ValueError: boom\n");
    // A prefix the server does not serve is a plain HTTP error.
    let output = vgi_rpc(&["--url", &url, "--prefix", "/nope", "describe"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("HTTP 404"), "{}", stderr(&output));
}

#[test]
fn calls_reach_a_worker_over_a_unix_socket() {
    let socket = unix_worker();
    let socket = socket.to_str().unwrap();
    let text = succeeded(&vgi_rpc(&[
        "--unix",
        socket,
        "call",
        "echo_string",
        "value=hi",
    ]));
    assert_eq!(text, "hi\n");
    let text = succeeded(&vgi_rpc(&[
        "--unix",
        socket,
        "call",
        "produce_n",
        "count=2",
    ]));
    assert_eq!(text, "index\tvalue\n0\t0\n1\t10\n");
}

#[test]
fn unreachable_servers_and_misplaced_options_are_reported() {
    let output = vgi_rpc(&["--unix", "/nonexistent/x.sock", "describe"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot connect to /nonexistent/x.sock"),
        "{}",
        stderr(&output)
    );
    let output = vgi_rpc(&["--url", "ftp://127.0.0.1:1", "describe"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("use http:// or https://"),
        "{}",
        stderr(&output)
    );
    let output = vgi_rpc(&["--unix", "/tmp/x.sock", "--prefix", "/vgi", "describe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--prefix"), "{}", stderr(&output));
    let output = vgi_rpc(&["describe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--cmd"), "{}", stderr(&output));
}
