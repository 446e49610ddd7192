//! Ours against Arrow Flight: the same workloads, on HTTP against our worker
//! and over gRPC on the loopback against an Arrow Flight server (arrow-rs's
//! `arrow-flight` with tonic, in a process of its own so its CPU time can be
//! read), runs alternating, every answer checked the same way.
//!
//! | ours | Flight |
//! |---|---|
//! | `void_noop` | `do_action("void_noop")`, empty body, no results |
//! | `produce_n_50` | `do_get` of 50 one-row `{index, value}` batches |
//! | `exchange_small_20` | `do_exchange`, 20 rounds of 4 float64 on one call |
//! | `exchange_large` | `do_exchange`, the same 8 MB float64 batches |
//! | `produce_bulk` | `do_get` of the same int64 batches |
//! | `http_load_64` | 64 connections calling `do_action("echo", text)` |

mod client;
mod load;
pub(crate) mod server;

use anyhow::{Context as _, Result};
use arrow_flight::encode::FlightDataEncoderBuilder;

use crate::Plan;
use crate::report::WorkloadResult;
use crate::servers::{Endpoint, Server};
use crate::workloads::{self, Run};
use client::FlightPeer;
use load::FlightLoad;

/// The measurement's name, for `--workload`.
pub(crate) const NAME: &str = "flight";

/// The Flight action standing for `void_noop`.
const NOOP: &str = "void_noop";

/// The Flight action the concurrent callers send: the body comes back.
const ECHO: &str = "echo";

/// Our workloads given a Flight equivalent, in report order.
const PAIRED: [&str; 5] = [
    "void_noop",
    "produce_n_50",
    "exchange_small_20",
    "exchange_large",
    "produce_bulk",
];

/// Concurrent callers of the load comparison, and our load test it pairs with.
const CALLERS: usize = 64;
const LOAD_NAME: &str = "http_load_64";

/// Batches go as one Flight message each, as ours go as one IPC message:
/// the encoder would otherwise split anything above 2 MB.
fn encoder() -> FlightDataEncoderBuilder {
    FlightDataEncoderBuilder::new().with_max_flight_data_size(usize::MAX)
}

/// Measures each paired workload on our HTTP worker (`ours`) and on a
/// Flight server started for the purpose; one result per workload, with
/// runs for [`Server::Ours`] and [`Server::Flight`].
pub(crate) fn measure(plan: &Plan, ours: &mut Endpoint) -> Result<Vec<WorkloadResult>> {
    let mut peer = FlightPeer::launch()?;
    let all = workloads::all(plan.sizes)?;
    let mut results = Vec::new();
    for name in PAIRED {
        let workload = all
            .iter()
            .find(|w| w.name == name)
            .with_context(|| format!("the {name} workload"))?;
        let shape = workload
            .shape()
            .with_context(|| format!("{name} has no Flight equivalent"))?;
        eprintln!("http: {NAME}: {name}");
        crate::warm_up(workload, ours, plan.warmup).with_context(|| format!("{name} on ours"))?;
        peer.warm_up(shape, plan.warmup)
            .with_context(|| format!("{name} on Flight"))?;
        let mut runs = (Vec::new(), Vec::new());
        for run in 0..plan.runs {
            for server in crate::order(&[Server::Ours, Server::Flight], run) {
                if server == Server::Ours {
                    let measured = workload.measure(ours, plan.budget, plan.min_ops);
                    runs.0
                        .push(measured.with_context(|| format!("{name} on ours"))?);
                } else {
                    let measured = peer.measure(shape, plan.budget, plan.min_ops);
                    runs.1
                        .push(measured.with_context(|| format!("{name} on Flight"))?);
                }
            }
        }
        results.push(WorkloadResult {
            name: workload.name,
            description: format!(
                "{}; Flight: {}",
                workload.description,
                client::describe(shape)
            ),
            op: workload.op,
            metrics: workload.metrics,
            unary: workload.is_unary(),
            runs: vec![(Server::Ours, runs.0), (Server::Flight, runs.1)],
        });
    }
    results.push(concurrent(plan, ours, &peer)?);
    Ok(results)
}

/// `http_load_64` on our worker against as many Flight callers, each on a
/// connection of its own.
fn concurrent(plan: &Plan, ours: &Endpoint, peer: &FlightPeer) -> Result<WorkloadResult> {
    eprintln!("http: {NAME}: {LOAD_NAME}");
    let address = ours
        .http_address
        .context("the HTTP worker's address is known")?;
    let generator = crate::load::Generator::new(plan.load)?;
    let flight = FlightLoad::new(plan.load)?;
    let mut runs: (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
    for run in 0..plan.runs {
        for server in crate::order(&[Server::Ours, Server::Flight], run) {
            if server == Server::Ours {
                let measured = generator.run(address, ours.pid, CALLERS);
                runs.0
                    .push(measured.with_context(|| format!("{LOAD_NAME} on ours"))?);
            } else {
                let measured = flight.run(&peer.url, peer.pid, CALLERS);
                runs.1
                    .push(measured.with_context(|| format!("{LOAD_NAME} on Flight"))?);
            }
        }
    }
    Ok(WorkloadResult {
        name: LOAD_NAME,
        description: format!(
            "{CALLERS} connections back to back: echo_string({:?}) on ours; \
             Flight: do_action({ECHO:?}) with the same bytes",
            crate::load::TEXT
        ),
        op: "request",
        metrics: crate::load::METRICS,
        unary: false,
        runs: vec![(Server::Ours, runs.0), (Server::Flight, runs.1)],
    })
}
