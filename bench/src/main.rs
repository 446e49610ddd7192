//! `vgirpc-bench`: our worker and the reference Python worker, side by side.
//!
//! One driver, built on our Rust client, runs the same ConformanceService
//! workloads against both servers on each transport, alternating between
//! them run by run, and reports medians, ratios and the server CPU time
//! each operation cost (a fairer comparison than wall time, which the
//! client's own cost caps). The machine's limits — a bare pipe, Unix
//! socket and TCP ping-pong and bandwidth, and the CPU a bare echo costs —
//! are measured in the same run, so latency, throughput and server CPU can
//! be judged against what the transport allows at all. On HTTP a load test
//! of many concurrent connections shows what each server sustains when our
//! client's per-call cost is out of the way.
//!
//! Usually started by `cargo xtask bench`, which builds it and finds both
//! workers. Results go to `<out>/results.json` and `<out>/results.md`
//! (`quick.*` with `--quick`, `soak.*` with `--soak`).

mod callers;
mod edge;
mod flight;
mod load;
mod observe;
mod options;
mod procstat;
mod raw;
mod report;
mod rpc;
mod s3;
mod servers;
mod stats;
mod workloads;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use crate::observe::ObserveResult;
use crate::options::{Options, Plan, USAGE};
use crate::procstat::{Machine, cpu_seconds, load_average, memory};
use crate::report::{Report, SoakResult, TransportResult, WorkloadResult};
use crate::servers::{Endpoint, Server, TransportKind, Workers};
use crate::workloads::{Metric, Run, Workload};

/// The same allocator as our worker: the driver is the client of both
/// servers, and with glibc's allocator re-faulting freed 8 MB blocks it
/// would cap the large workloads below what either server can do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("raw-peer") {
        raw::peer_main(&args[1..])
    } else if args.first().map(String::as_str) == Some("flight-server") {
        flight::server::main(&args[1..])
    } else {
        match Options::parse(&args) {
            Ok(Some(options)) => run(&options),
            Ok(None) => {
                println!("{USAGE}");
                Ok(())
            }
            Err(err) => Err(err.context(format!("\n{USAGE}"))),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vgirpc-bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<()> {
    let started = Instant::now();
    let machine = Machine::read();
    let load_before = load_average();
    let plan = Plan::new(options);
    let scratch = std::env::temp_dir().join(format!("vgirpc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let mut workers = Workers::new(
        options.ours.clone(),
        options.reference.clone(),
        scratch.clone(),
    );
    let outcome = if options.soak {
        soak(options, &mut workers).map(|soak| ("soak", Vec::new(), soak, Vec::new()))
    } else {
        let mode = if options.quick { "quick" } else { "results" };
        bench(&plan, options, &mut workers, &scratch)
            .map(|(transports, observe)| (mode, transports, Vec::new(), observe))
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let (stem, transports, soak, observe) = outcome?;

    let report = Report {
        mode: match stem {
            "results" => "full",
            other => other,
        },
        runs: plan.runs,
        machine,
        load_average: [load_before, load_average()],
        command: std::env::args().collect::<Vec<_>>().join(" "),
        workers: json!({
            "ours": options.ours,
            "reference": options.reference,
        }),
        transports,
        soak,
        observe,
        duration_s: started.elapsed().as_secs_f64(),
    };
    let markdown = report.markdown();
    println!("\n{markdown}");
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let json_path = options.out.join(format!("{stem}.json"));
    let md_path = options.out.join(format!("{stem}.md"));
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report.to_json())? + "\n",
    )
    .with_context(|| format!("writing {}", json_path.display()))?;
    std::fs::write(&md_path, markdown).with_context(|| format!("writing {}", md_path.display()))?;
    println!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// The server order of run `run`: alternated so that neither server always
/// runs right after the other.
fn order(servers: &[Server], run: usize) -> Vec<Server> {
    let mut servers = servers.to_vec();
    if run % 2 == 1 {
        servers.reverse();
    }
    servers
}

fn bench(
    plan: &Plan,
    options: &Options,
    workers: &mut Workers,
    scratch: &std::path::Path,
) -> Result<(Vec<TransportResult>, Vec<ObserveResult>)> {
    let selected =
        |name: &str| options.workloads.is_empty() || options.workloads.iter().any(|w| w == name);
    let workloads: Vec<Workload> = workloads::all(plan.sizes)?
        .into_iter()
        .filter(|w| selected(w.name))
        .collect();
    let void_noop = workloads::all(plan.sizes)?
        .into_iter()
        .find(|w| w.name == "void_noop")
        .context("the void_noop workload")?;
    let servers = workers.servers();
    let mut results = Vec::new();
    let mut observed = Vec::new();
    for &transport in &options.transports {
        if let Some(reason) = transport.not_measurable() {
            eprintln!("{}: not measured ({reason})", transport.name());
            results.push(TransportResult::NotMeasured { transport, reason });
            continue;
        }
        eprintln!("{}: machine limits", transport.name());
        let limits = raw::measure(transport, plan.raw, scratch)?;

        let mut measured = Vec::new();
        if selected(SPAWN) {
            eprintln!("{}: spawn → first reply", transport.name());
            measured.push(spawn_first_reply(plan, workers, &servers, transport)?);
        }

        let mut endpoints = Vec::new();
        for &server in &servers {
            endpoints.push((server, workers.launch(server, transport)?));
        }
        for workload in &workloads {
            eprintln!("{}: {}", transport.name(), workload.name);
            let mut runs: Vec<(Server, Vec<Run>)> =
                servers.iter().map(|&s| (s, Vec::new())).collect();
            for (server, endpoint) in &mut endpoints {
                warm_up(workload, endpoint, plan.warmup)
                    .with_context(|| format!("{} on {}", workload.name, server.name()))?;
            }
            for run in 0..plan.runs {
                for server in order(&servers, run) {
                    let (_, endpoint) = endpoints
                        .iter_mut()
                        .find(|(s, _)| *s == server)
                        .context("every server has an endpoint")?;
                    let measured = workload
                        .measure(endpoint, plan.budget, plan.min_ops)
                        .with_context(|| format!("{} on {}", workload.name, server.name()))?;
                    if let Some((_, list)) = runs.iter_mut().find(|(s, _)| *s == server) {
                        list.push(measured);
                    }
                }
            }
            measured.push(WorkloadResult {
                name: workload.name,
                description: workload.description.clone(),
                op: workload.op,
                metrics: workload.metrics,
                unary: workload.is_unary(),
                runs,
            });
        }
        if transport == TransportKind::Http && selected(s3::NAME) {
            eprintln!("http: {}", s3::NAME);
            let script = options.reference_s3_server.as_deref();
            measured.extend(s3::measure(plan.runs, options.quick, workers, script)?);
        }
        let mut load = Vec::new();
        if transport == TransportKind::Http && selected(HTTP_LOAD) {
            load = http_load(plan, &servers, &endpoints)?;
        }
        if transport == TransportKind::Http && selected(EDGE) {
            load.extend(http_edge(plan, workers, &endpoints, scratch)?);
        }
        let mut flight = Vec::new();
        if transport == TransportKind::Http && selected(flight::NAME) {
            let (_, ours) = endpoints
                .iter_mut()
                .find(|(s, _)| *s == Server::Ours)
                .context("our worker has an endpoint")?;
            flight = flight::measure(plan, ours)?;
        }
        // Closing the connections stops the workers.
        drop(endpoints);
        if selected(observe::NAME) {
            eprintln!("{}: {}", transport.name(), observe::NAME);
            observed.extend(observe::measure(plan, workers, transport, &void_noop)?);
        }
        results.push(TransportResult::Measured {
            transport,
            limits,
            workloads: measured,
            load,
            flight,
        });
    }
    Ok((results, observed))
}

fn warm_up(workload: &Workload, endpoint: &mut Endpoint, warmup: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        workload.op(endpoint)?;
        if start.elapsed() >= warmup {
            return Ok(());
        }
    }
}

/// Name of the spawn workload, measured apart from the others.
const SPAWN: &str = "spawn_first_reply";

/// From starting a worker to its first answer (a void_noop call), each run
/// a fresh process; the server CPU is what the process used up to then.
fn spawn_first_reply(
    plan: &Plan,
    workers: &mut Workers,
    servers: &[Server],
    transport: TransportKind,
) -> Result<WorkloadResult> {
    let params = vgirpc_client::no_params();
    let mut runs: Vec<(Server, Vec<Run>)> = servers.iter().map(|&s| (s, Vec::new())).collect();
    for run in 0..plan.runs {
        for server in order(servers, run) {
            let start = Instant::now();
            let mut endpoint = workers.launch(server, transport)?;
            let answer = endpoint
                .rpc
                .unary("void_noop", &params)
                .with_context(|| format!("first call to {}", server.name()))?;
            let wall_s = start.elapsed().as_secs_f64();
            if answer.num_columns() != 0 {
                bail!("void_noop() returned columns: {:?}", answer.schema());
            }
            let cpu_s = cpu_seconds(endpoint.pid).ok();
            drop(endpoint);
            if let Some((_, list)) = runs.iter_mut().find(|(s, _)| *s == server) {
                list.push(Run {
                    ops: 1,
                    wall_s,
                    cpu_s,
                    user_cpu_s: None,
                    client_cpu_s: None,
                    http_requests: None,
                    bytes: 0,
                    latencies_us: vec![wall_s * 1e6],
                });
            }
        }
    }
    Ok(WorkloadResult {
        name: SPAWN,
        description: "start a worker, connect, first void_noop() answer".to_owned(),
        op: "spawn",
        metrics: &[Metric::MsPerOp, Metric::CpuMsPerOp],
        unary: false,
        runs,
    })
}

/// Name of the HTTP load test, measured apart from the others.
const HTTP_LOAD: &str = "http_load";

/// The HTTP load test at each connection count, against the HTTP workers
/// the other workloads used.
fn http_load(
    plan: &Plan,
    servers: &[Server],
    endpoints: &[(Server, Endpoint)],
) -> Result<Vec<WorkloadResult>> {
    let generator = load::Generator::new(plan.load)?;
    let mut results = Vec::new();
    for (connections, name) in load::LEVELS {
        eprintln!("http: {name}");
        let mut runs: Vec<(Server, Vec<Run>)> = servers.iter().map(|&s| (s, Vec::new())).collect();
        for run in 0..plan.runs {
            for server in order(servers, run) {
                let (_, endpoint) = endpoints
                    .iter()
                    .find(|(s, _)| *s == server)
                    .context("every server has an endpoint")?;
                let address = endpoint
                    .http_address
                    .context("the HTTP worker's address is known")?;
                let measured = generator
                    .run(address, endpoint.pid, connections)
                    .with_context(|| format!("{name} on {}", server.name()))?;
                if let Some((_, list)) = runs.iter_mut().find(|(s, _)| *s == server) {
                    list.push(measured);
                }
            }
        }
        results.push(WorkloadResult {
            name,
            description: format!(
                "{connections} keep-alive connection(s), echo_string back to back"
            ),
            op: "request",
            metrics: load::METRICS,
            unary: false,
            runs,
        });
    }
    Ok(results)
}

/// Name of the TLS and HTTP/2 measurements, of our worker alone.
const EDGE: &str = "http_edge";

/// [`edge::measure`] with our plain HTTP worker of `endpoints`.
fn http_edge(
    plan: &Plan,
    workers: &Workers,
    endpoints: &[(Server, Endpoint)],
    scratch: &std::path::Path,
) -> Result<Vec<WorkloadResult>> {
    let Some((_, plain)) = endpoints.iter().find(|(s, _)| *s == Server::Ours) else {
        return Ok(Vec::new());
    };
    let program = workers
        .program(Server::Ours)
        .context("our worker is known")?;
    let address = plain
        .http_address
        .context("the HTTP worker's address is known")?;
    eprintln!("http: TLS and HTTP/2 edge of our worker");
    let generator = load::Generator::new(plan.load)?;
    edge::measure(
        &generator,
        program,
        (address, plain.pid),
        (plan.runs, plan.load.duration.as_secs()),
        scratch,
    )
}

/// A long unary loop on our worker: does its memory stay flat?
fn soak(options: &Options, workers: &mut Workers) -> Result<Vec<SoakResult>> {
    let sizes = Plan::new(options).sizes;
    let all = workloads::all(sizes)?;
    let loop_workloads = workloads::small_unary(&all);
    let calls = options.soak_calls;
    // Call 10,000 is past warm-up (allocator pools, lazy statics); shorter
    // loops checkpoint at a tenth.
    let checkpoint = if calls >= 100_000 { 10_000 } else { calls / 10 };
    let sample_every = (calls / 20).max(1);
    let mut results = Vec::new();
    for &transport in &options.transports {
        if let Some(reason) = transport.not_measurable() {
            eprintln!("{}: not soaked ({reason})", transport.name());
            continue;
        }
        eprintln!("{}: soak, {calls} calls", transport.name());
        let mut endpoint = workers.launch(Server::Ours, transport)?;
        let start = Instant::now();
        let mut samples = Vec::new();
        let mut at_checkpoint = None;
        for call in 1..=calls {
            let workload = loop_workloads[(call % loop_workloads.len() as u64) as usize];
            workload
                .op(&mut endpoint)
                .with_context(|| format!("soak call {call}"))?;
            if call == checkpoint {
                at_checkpoint = Some(memory(endpoint.pid)?);
            }
            if call % sample_every == 0 {
                samples.push((call, memory(endpoint.pid)?));
            }
        }
        let at_end = memory(endpoint.pid)?;
        results.push(SoakResult {
            transport,
            calls,
            checkpoint,
            at_checkpoint: at_checkpoint.unwrap_or(at_end),
            at_end,
            samples,
            wall_s: start.elapsed().as_secs_f64(),
        });
    }
    Ok(results)
}
