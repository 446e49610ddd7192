//! The HTTP transport mounted in someone else's axum app, under `/vgi`
//! beside the app's own routes, called by our client and by the reference
//! Python client with that prefix.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use vgirpc::Server;
use vgirpc_client::Client;
use vgirpc_client::http::HttpOptions;
use vgirpc_conformance::service::{
    Conformance, ConformanceServiceClient, ConformanceServiceServer,
};
use vgirpc_http::{HttpConfig, HttpServer};

/// Serves an axum app with its own routes and the vgi-rpc service nested
/// under `/vgi`, on a free port, until the test process ends.
fn start_app() -> u16 {
    let server = Server::new(ConformanceServiceServer::new(Conformance)).unwrap();
    // axum strips the mount path, so the service itself has no prefix.
    let http = HttpServer::new(server, HttpConfig::new()).unwrap();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the app's own page" }))
        .nest_service("/vgi", http.service());
    vgirpc_test_support::serve_in_process(|listener| async move {
        axum::serve(listener, app).await.unwrap();
    })
}

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn the_service_mounts_under_a_prefix_beside_the_apps_own_routes() {
    let port = start_app();
    assert!(get(port, "/").contains("the app's own page"));
    let health = get(port, "/vgi/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    let url = format!("http://127.0.0.1:{port}");
    let client = Client::connect_http_with(&url, HttpOptions::new().prefix("/vgi")).unwrap();
    let mut service = ConformanceServiceClient::new(client);
    assert_eq!(
        service.echo_string("through axum".into()).unwrap(),
        "through axum"
    );
    // An async method, awaited inside axum's runtime.
    assert_eq!(
        service.echo_with_info_log("logged".into()).unwrap(),
        "logged"
    );
    let mut stream = service.produce_with_logs(3).unwrap();
    let mut indices = Vec::new();
    while let Some(batch) = stream.next_batch().unwrap() {
        indices.extend(
            batch
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec(),
        );
    }
    assert_eq!(indices, [0, 1, 2]);

    if let Some(bin) = vgirpc_conformance::reference::venv_bin() {
        let script = "\
import sys
from vgi_rpc.conformance import ConformanceService
from vgi_rpc.http import http_connect
with http_connect(ConformanceService, sys.argv[1], prefix='/vgi') as svc:
    assert svc.echo_string(value='from python') == 'from python'
    assert svc.echo_with_info_log(value='logged') == 'logged'
    batches = list(svc.produce_with_logs(count=3))
    assert [b.batch.column('index')[0].as_py() for b in batches] == [0, 1, 2]
print('reference client ok')
";
        let output = Command::new(bin.join("python"))
            .args(["-c", script, &url])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("reference client ok"));
    }
}
