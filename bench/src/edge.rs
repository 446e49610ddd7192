//! Our worker's HTTP edge measured against itself, as the reference
//! serves neither TLS nor HTTP/2: 64 HTTPS keep-alive connections and one
//! h2c connection with 64 streams in flight, each against 64 plain
//! HTTP/1.1 connections to the same binary, and what a new TLS client
//! waits for (TCP connect, full handshake, first reply).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context as _, Result, ensure};
use tokio_rustls::TlsConnector;
use vgirpc_fetch::TlsSettings;
use vgirpc_test_support::pki::Pki;

use crate::load::{self, Generator, Mode};
use crate::procstat::cpu_seconds;
use crate::report::WorkloadResult;
use crate::servers::{Listener, Server};
use crate::workloads::{Metric, Run};

/// Plain HTTP/1.1 at 64 connections, the baseline of the two below.
pub(crate) const PLAIN: &str = "edge_http1_64";
/// HTTPS (HTTP/1.1) at 64 keep-alive connections.
pub(crate) const HTTPS: &str = "edge_https_64";
/// One h2c connection, 64 streams in flight.
pub(crate) const H2C: &str = "edge_h2c_streams_64";
/// New TLS connection, handshake and first reply, one after another.
pub(crate) const FIRST_REPLY: &str = "edge_tls_first_reply";

/// Connections (or streams) of the load runs.
const CONCURRENCY: usize = 64;

/// Handshakes timed per run.
const HANDSHAKES: usize = 200;

/// Debian's nghttp2 load generator (`cargo xtask bench` installs it): one
/// client for both HTTP versions, and faster than the driver's own.
const H2LOAD: &str = "/usr/bin/h2load";
/// HTTP/1.1 at 64 connections, driven by h2load.
pub(crate) const H2LOAD_HTTP1: &str = "edge_h2load_http1_64";
/// One h2c connection with 64 streams in flight, driven by h2load.
pub(crate) const H2LOAD_H2C: &str = "edge_h2load_h2c_streams_64";

/// One h2load run against the worker at `address` (process `pid`): 64
/// HTTP/1.1 connections, or one HTTP/2 connection with 64 streams.
fn h2load(address: SocketAddr, pid: u32, body: &Path, http2: bool, seconds: u64) -> Result<Run> {
    let mut command = Command::new(H2LOAD);
    command.args(["-D", &seconds.to_string()]);
    if http2 {
        command.args(["-c", "1", "-m", &CONCURRENCY.to_string()]);
    } else {
        command.args(["--h1", "-c", &CONCURRENCY.to_string(), "-m", "1"]);
    }
    command
        .args([
            "-H",
            "content-type: application/vnd.apache.arrow.stream",
            "-d",
        ])
        .arg(body)
        .arg(format!("http://{address}/echo_string"));
    let before = cpu_seconds(pid).ok();
    let output = command.output().context("running h2load")?;
    let after = cpu_seconds(pid).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "h2load failed: {text}");
    let field = |line: &str, after: &str| -> Option<f64> {
        let rest = text.lines().find(|l| l.starts_with(line))?;
        let rest = &rest[rest.find(after)? + after.len()..];
        rest.split([' ', ',', 's'])
            .find(|w| !w.is_empty())?
            .parse()
            .ok()
    };
    let wall_s = field("finished in", "finished in ").context("h2load printed no time")?;
    let done = field("requests:", "started, ").context("h2load printed no count")?;
    let succeeded = field("requests:", "done, ").context("h2load printed no successes")?;
    // Status codes count replies that came in after the timer stopped
    // too, so they may pass the requests done; any non-2xx is a failure.
    // "status codes: 35650 2xx, 0 3xx, 0 4xx, 0 5xx"
    let refused: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("status codes: "))
        .context("h2load printed no status codes")?
        .split(", ")
        .filter_map(|count| count.split_once(' '))
        .filter(|(_, class)| *class != "2xx")
        .filter_map(|(n, _)| n.parse::<u64>().ok())
        .sum();
    ensure!(
        done > 0.0 && succeeded == done && refused == 0,
        "h2load: {succeeded} of {done} requests succeeded, {refused} not 2xx:\n{text}"
    );
    Ok(Run {
        ops: done as u64,
        wall_s,
        cpu_s: before.zip(after).map(|(b, a)| a - b),
        user_cpu_s: None,
        client_cpu_s: None,
        http_requests: None,
        bytes: 0,
        latencies_us: Vec::new(),
    })
}

/// A client TLS setup trusting `pki`'s CA alone, speaking HTTP/1.1.
fn connector(pki: &Pki) -> Result<TlsConnector> {
    let mut config = TlsSettings::new()
        .system_roots(false)
        .ca_certificate_pem(pki.ca_pem.as_bytes())
        .client_config()?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Our worker `program` serving HTTPS with `pki`'s server certificate.
fn start_tls_worker(program: &Path, pki: &Pki, scratch: &Path) -> Result<(Listener, SocketAddr)> {
    let files = pki
        .write_to(&scratch.join("edge-pki"))
        .context("writing the test certificates")?;
    let mut command = Command::new(program);
    command
        .arg("--http")
        .arg("--tls-cert")
        .arg(&files.server_cert)
        .arg("--tls-key")
        .arg(&files.server_key);
    let listener = Listener::start(command, "PORT:", None)?;
    let url = format!("https://127.0.0.1:{}", listener.ready);
    listener.wait_for_tcp(&url)?;
    let address = format!("127.0.0.1:{}", listener.ready)
        .parse()
        .with_context(|| format!("the worker's port {:?}", listener.ready))?;
    Ok((listener, address))
}

/// The edge workloads, `runs` runs each, interleaved so a change of the
/// machine's speed hits all alike; `plain` is our plain HTTP worker
/// (process `pid`).
pub(crate) fn measure(
    generator: &Generator,
    program: &Path,
    plain: (SocketAddr, u32),
    (runs, plan_seconds): (usize, u64),
    scratch: &Path,
) -> Result<Vec<WorkloadResult>> {
    let pki = Pki::generate();
    let tls = connector(&pki)?;
    let (listener, tls_address) = start_tls_worker(program, &pki, scratch)?;
    let tls_pid = listener.child.id();
    let (plain_address, plain_pid) = plain;
    let mut plain_runs = Vec::new();
    let mut https_runs = Vec::new();
    let mut h2c_runs = Vec::new();
    let mut first_reply_runs = Vec::new();
    let body = scratch.join("edge-echo.arrow");
    std::fs::write(&body, load::echo_body()?).context("writing the h2load request body")?;
    let external = Path::new(H2LOAD).is_file();
    let seconds = plan_seconds.max(1);
    let mut h2load_http1 = Vec::new();
    let mut h2load_h2c = Vec::new();
    for _ in 0..runs {
        if external {
            h2load_http1.push(h2load(plain_address, plain_pid, &body, false, seconds)?);
            h2load_h2c.push(h2load(plain_address, plain_pid, &body, true, seconds)?);
        }
        let http1 = Mode::Http1 {
            connections: CONCURRENCY,
            tls: None,
        };
        plain_runs.push(generator.run_mode(plain_address, plain_pid, http1)?);
        let https = Mode::Http1 {
            connections: CONCURRENCY,
            tls: Some(tls.clone()),
        };
        https_runs.push(generator.run_mode(tls_address, tls_pid, https)?);
        let h2c = Mode::Http2 {
            streams: CONCURRENCY,
        };
        h2c_runs.push(generator.run_mode(plain_address, plain_pid, h2c)?);
        first_reply_runs.push(generator.handshakes(tls_address, tls_pid, &tls, HANDSHAKES)?);
    }
    let ours = |runs: Vec<Run>| vec![(Server::Ours, runs)];
    let mut results = Vec::new();
    if external {
        let metrics = &[Metric::OpsPerSec, Metric::CpuUsPerOp];
        results.push(WorkloadResult {
            name: H2LOAD_HTTP1,
            description: format!("our worker, h2load, {CONCURRENCY} HTTP/1.1 connections"),
            op: "request",
            metrics,
            unary: false,
            runs: ours(h2load_http1),
        });
        results.push(WorkloadResult {
            name: H2LOAD_H2C,
            description: format!("our worker, h2load, one h2c connection, {CONCURRENCY} streams"),
            op: "request",
            metrics,
            unary: false,
            runs: ours(h2load_h2c),
        });
    }
    results.extend([
        WorkloadResult {
            name: PLAIN,
            description: format!("our worker, {CONCURRENCY} plain HTTP/1.1 keep-alive connections"),
            op: "request",
            metrics: load::METRICS,
            unary: false,
            runs: ours(plain_runs),
        },
        WorkloadResult {
            name: HTTPS,
            description: format!(
                "our worker, {CONCURRENCY} HTTPS keep-alive connections (HTTP/1.1)"
            ),
            op: "request",
            metrics: load::METRICS,
            unary: false,
            runs: ours(https_runs),
        },
        WorkloadResult {
            name: H2C,
            description: format!(
                "our worker, one h2c connection with {CONCURRENCY} streams in flight"
            ),
            op: "request",
            metrics: load::METRICS,
            unary: false,
            runs: ours(h2c_runs),
        },
        WorkloadResult {
            name: FIRST_REPLY,
            description:
                "our worker, new TLS connection: connect, full handshake, first echo_string reply"
                    .to_owned(),
            op: "connection",
            metrics: &[Metric::P50Us, Metric::P99Us, Metric::CpuUsPerOp],
            unary: false,
            runs: ours(first_reply_runs),
        },
    ]);
    Ok(results)
}
