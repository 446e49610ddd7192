//! A 256 MB answer externalized into S3 (moto's emulator) and fetched back
//! by our client: our worker with `--s3-storage` against the reference's
//! HTTP server with its own `S3Storage` (`conformance/reference_s3_server.py`),
//! both externalizing above the same 4 KiB threshold.
//!
//! One call is `oversized_unary(256 MB)`: the server makes the bytes,
//! uploads them as an IPC stream, answers with a pointer, and the client
//! fetches and decodes the stream. The emulator is emptied before each
//! call, outside the timing, so it never holds more than the one object.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::cast::AsArray;
use arrow_array::{Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use vgirpc_client::Client;
use vgirpc_client::http::{HttpOptions, HttpTransport};

use crate::procstat::cpu_seconds;
use crate::report::WorkloadResult;
use crate::rpc::{HttpRpc, Rpc};
use crate::servers::{Listener, Server, Workers};
use crate::workloads::{Metric, Run};

/// The workload's name, for `--workload`.
pub(crate) const NAME: &str = "s3_externalized_256mb";

/// The answer's size: 256 MB, a sixteenth of it with `--quick`.
const BYTES: usize = 256_000_000;
const QUICK_BYTES: usize = 16_000_000;

/// Both servers' externalization threshold (our worker's default).
const THRESHOLD: &str = "4096";

/// Where the emulator is, from the `AWS_*` variables `cargo xtask bench`
/// sets (and our worker and boto3 read).
struct Emulator {
    /// `host:port`.
    address: String,
    bucket: String,
}

impl Emulator {
    fn from_env() -> Option<Self> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").ok()?;
        let address = endpoint.strip_prefix("http://")?.trim_end_matches('/');
        Some(Self {
            address: address.to_owned(),
            bucket: std::env::var("AWS_BUCKET").ok()?,
        })
    }

    /// Drops every object (moto's reset drops the bucket too) and makes
    /// the bucket again: moto keeps what it stores until it exits.
    fn empty(&self) -> Result<()> {
        self.request("POST", "/moto-api/reset")?;
        self.request("PUT", &format!("/{}", self.bucket))
    }

    /// An unsigned request, which moto takes; anything but 200 fails.
    fn request(&self, method: &str, path: &str) -> Result<()> {
        let mut stream = TcpStream::connect(&self.address)
            .with_context(|| format!("connecting to the emulator at {}", self.address))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.address
        )?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        let status = reply.get(9..12).unwrap_or_default();
        ensure!(status == "200", "{method} {path} answered {status:?}");
        Ok(())
    }
}

/// The workload, `runs` calls per server alternating between them, or
/// nothing (with the reason on stderr) without an emulator or a reference
/// server to compare.
pub(crate) fn measure(
    runs: usize,
    quick: bool,
    workers: &Workers,
    reference_server: Option<&Path>,
) -> Result<Vec<WorkloadResult>> {
    let Some(emulator) = Emulator::from_env() else {
        eprintln!("http: {NAME} not measured (no AWS_ENDPOINT_URL/AWS_BUCKET of an emulator)");
        return Ok(Vec::new());
    };
    let bytes = if quick { QUICK_BYTES } else { BYTES };
    let mut endpoints = vec![(Server::Ours, start_ours(workers)?)];
    match (workers.program(Server::Reference), reference_server) {
        (Some(reference), Some(script)) => {
            endpoints.push((Server::Reference, start_reference(reference, script)?));
        }
        _ => eprintln!("http: {NAME} of our worker alone (no --reference-s3-server)"),
    }
    let mut measured: Vec<(Server, Vec<Run>)> =
        endpoints.iter().map(|(s, _)| (*s, Vec::new())).collect();
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "target_bytes",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(Int64Array::from(vec![bytes as i64]))],
    )?;
    for run in 0..runs {
        let order: Vec<usize> = if run % 2 == 0 {
            (0..endpoints.len()).collect()
        } else {
            (0..endpoints.len()).rev().collect()
        };
        for index in order {
            let (server, endpoint) = &mut endpoints[index];
            emulator.empty()?;
            let one = call(endpoint, &params, bytes)
                .with_context(|| format!("{NAME} on {}", server.name()))?;
            measured[index].1.push(one);
        }
    }
    emulator.empty()?;
    Ok(vec![WorkloadResult {
        name: NAME,
        description: format!(
            "oversized_unary({bytes}) over HTTP, the answer externalized into moto's S3 \
             emulator and fetched from it by our client"
        ),
        op: "call",
        metrics: &[Metric::MbPerSec, Metric::MsPerOp, Metric::CpuMsPerOp],
        // A bulk transfer: the small-call targets do not apply.
        unary: false,
        runs: measured,
    }])
}

/// A server with S3 storage and our client of it.
struct S3Endpoint {
    rpc: HttpRpc,
    pid: u32,
    /// Stops the server when dropped, after the client.
    _listener: Listener,
}

fn start_ours(workers: &Workers) -> Result<S3Endpoint> {
    let program = workers
        .program(Server::Ours)
        .context("our worker is known")?;
    let mut command = Command::new(program);
    command.args([
        "--http",
        "--s3-storage",
        "--externalize-threshold",
        THRESHOLD,
    ]);
    connect(command)
}

/// The reference server runs on the interpreter of the reference worker's
/// venv, which has vgi-rpc and boto3.
fn start_reference(reference: &Path, script: &Path) -> Result<S3Endpoint> {
    let python = reference
        .parent()
        .context("the reference worker's directory")?
        .join("python");
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--externalize-threshold", THRESHOLD]);
    connect(command)
}

fn connect(command: Command) -> Result<S3Endpoint> {
    let listener = Listener::start(command, "PORT:", None)?;
    let url = format!("http://127.0.0.1:{}", listener.ready);
    listener.wait_for_tcp(&url)?;
    let transport = HttpTransport::new(&url, HttpOptions::new())
        .with_context(|| format!("an HTTP client for {url}"))?;
    Ok(S3Endpoint {
        rpc: HttpRpc(Client::new(transport)),
        pid: listener.child.id(),
        _listener: listener,
    })
}

/// One call, timed from request to decoded answer; the answer is checked
/// after the clock stops.
fn call(endpoint: &mut S3Endpoint, params: &RecordBatch, bytes: usize) -> Result<Run> {
    let client_before = cpu_seconds(std::process::id()).ok();
    let cpu_before = cpu_seconds(endpoint.pid).ok();
    let requests_before = endpoint.rpc.http_requests();
    let start = Instant::now();
    let answer = endpoint.rpc.unary("oversized_unary", params)?;
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_s = cpu_before
        .zip(cpu_seconds(endpoint.pid).ok())
        .map(|(b, a)| a - b);
    let client_cpu_s = client_before
        .zip(cpu_seconds(std::process::id()).ok())
        .map(|(b, a)| a - b);
    let requests = endpoint
        .rpc
        .http_requests()
        .zip(requests_before)
        .map(|(a, b)| a - b);
    let Some(column) = answer
        .column_by_name("result")
        .and_then(|c| c.as_binary_opt::<i32>())
    else {
        bail!("oversized_unary answered {:?}", answer.schema());
    };
    ensure!(column.len() == 1, "{} rows, not one", column.len());
    let value = column.value(0);
    ensure!(value.len() == bytes, "{} bytes, not {bytes}", value.len());
    ensure!(value.iter().all(|b| *b == 0), "bytes other than zero");
    Ok(Run {
        ops: 1,
        wall_s,
        cpu_s,
        user_cpu_s: None,
        client_cpu_s,
        http_requests: requests,
        bytes: bytes as u64,
        latencies_us: vec![wall_s * 1e6],
    })
}
