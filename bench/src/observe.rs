//! What reporting costs a call: our worker's server CPU per unary
//! `void_noop` with Sentry and OpenTelemetry on (`--observe-discard`:
//! a bound Sentry client whose transport drops envelopes, dispatch spans
//! recorded by the OpenTelemetry SDK and handed to an exporter that drops
//! them, request metrics aggregated) against both off, on the same
//! transport, the workers serving in turns. A third worker records only a
//! bare span per call through the OpenTelemetry SDK
//! (`--observe-bare-span`): the floor that any reporting of spans through
//! the SDK costs a call, whatever the framework around it does.
//!
//! Turns are measured at two lengths, because on a small virtual machine
//! the length changes how the scheduler places the client and the worker,
//! and with it what a call costs: in short turns a round trip over a pipe
//! takes about 11 µs, in turns of a second about 53 µs.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::Plan;
use crate::procstat::{CpuTime, cpu_resolution, cpu_time, threads_on_cpu_ns};
use crate::report::format::opt;
use crate::servers::{Endpoint, Server, TransportKind, Workers};
use crate::stats::median;
use crate::workloads::{Metric, Run, Workload};

/// The measurement's name, for `--workload`.
pub(crate) const NAME: &str = "observe_overhead";

/// The most both reporters together may add to a small call.
pub(crate) const BUDGET_US: f64 = 2.0;

/// Rounds of runs measured however few runs the plan asks for: the added
/// cost is a difference of a few microseconds between runs that land
/// several apart on a busy machine.
const MIN_ROUNDS: usize = 10;

/// The worker flag that turns both on.
const FLAG: &str = "--observe-discard";

/// The worker flag that records a bare span per call and nothing else.
const BARE_FLAG: &str = "--observe-bare-span";

/// The runs of `void_noop` with reporting off, on, and reduced to bare
/// spans, on one transport, in turns of one length.
#[derive(Debug)]
pub(crate) struct ObserveResult {
    pub(crate) transport: TransportKind,
    /// How long one worker served before the other took over.
    pub(crate) turn: Duration,
    pub(crate) off: Vec<Run>,
    pub(crate) on: Vec<Run>,
    /// Runs of the worker that records a bare span per call.
    pub(crate) bare: Vec<Run>,
}

fn cpu_values(runs: &[Run]) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.metric(Metric::CpuUsPerOp))
        .collect()
}

fn cpu_us(runs: &[Run]) -> Option<f64> {
    median(&cpu_values(runs))
}

/// Median user-space CPU µs per call: the reporters' own work, without
/// the system time of the link, which they leave unchanged (the same
/// system calls per call) but which varies most between runs.
fn user_cpu_us(runs: &[Run]) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(user_us_per_call).collect();
    median(&values)
}

/// The median of what each run with reporting on cost per call beyond the
/// run with it off next to it. The two runs of a pair follow each other,
/// so a machine that speeds up or slows down over the measurement moves
/// both alike, where it moves the two medians apart by its drift.
fn paired_added(off: &[Run], on: &[Run], per_call: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let differences: Vec<f64> = off
        .iter()
        .zip(on)
        .filter_map(|(off, on)| Some(per_call(on)? - per_call(off)?))
        .collect();
    median(&differences)
}

fn user_us_per_call(run: &Run) -> Option<f64> {
    Some(run.user_cpu_s? * 1e6 / run.ops as f64)
}

/// Highest minus lowest of `runs`' CPU per call: how far apart runs of one
/// binary land, against which the added cost is read.
fn spread_us(runs: &[Run]) -> Option<f64> {
    let values = cpu_values(runs);
    let lowest = values.iter().copied().reduce(f64::min)?;
    let highest = values.iter().copied().reduce(f64::max)?;
    Some(highest - lowest)
}

/// The median over `runs` of each run's round-trip p50: which state of
/// the scheduler the calls ran in.
fn median_p50_us(runs: &[Run]) -> Option<f64> {
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.metric(Metric::P50Us))
        .collect();
    median(&values)
}

impl ObserveResult {
    /// Median server CPU µs per call with reporting off.
    pub(crate) fn off_us(&self) -> Option<f64> {
        cpu_us(&self.off)
    }

    /// Median server CPU µs per call with Sentry and OpenTelemetry on.
    pub(crate) fn on_us(&self) -> Option<f64> {
        cpu_us(&self.on)
    }

    /// What reporting adds per call: the median over the pairs of runs.
    pub(crate) fn added_us(&self) -> Option<f64> {
        paired_added(&self.off, &self.on, |run| run.metric(Metric::CpuUsPerOp))
    }

    /// What reporting adds to the user-space CPU per call, over the pairs.
    pub(crate) fn added_user_us(&self) -> Option<f64> {
        paired_added(&self.off, &self.on, user_us_per_call)
    }

    /// What a bare span through the SDK adds per call, over the pairs.
    pub(crate) fn bare_added_us(&self) -> Option<f64> {
        paired_added(&self.off, &self.bare, |run| run.metric(Metric::CpuUsPerOp))
    }

    /// What a bare span adds to the user-space CPU per call.
    pub(crate) fn bare_added_user_us(&self) -> Option<f64> {
        paired_added(&self.off, &self.bare, user_us_per_call)
    }

    /// The on median minus the off median: the same cost read without
    /// pairing, as earlier runs reported it.
    pub(crate) fn medians_apart_us(&self) -> Option<f64> {
        Some(self.on_us()? - self.off_us()?)
    }

    /// How far apart the runs with reporting off land.
    pub(crate) fn off_spread_us(&self) -> Option<f64> {
        spread_us(&self.off)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "transport": self.transport.name(),
            "turn_ms": self.turn.as_millis(),
            "round_trip_p50_us_off": median_p50_us(&self.off),
            "workload": "void_noop",
            "server_cpu_us_per_call_off": self.off_us(),
            "server_cpu_us_per_call_on": self.on_us(),
            "added_us": self.added_us(),
            "medians_apart_us": self.medians_apart_us(),
            "pairs": self.off.len().min(self.on.len()),
            "server_user_cpu_us_per_call_off": user_cpu_us(&self.off),
            "server_user_cpu_us_per_call_on": user_cpu_us(&self.on),
            "added_user_us": self.added_user_us(),
            "off_spread_us": self.off_spread_us(),
            "budget_us": BUDGET_US,
            "met": self.added_us().map(|added| added <= BUDGET_US),
            "met_in_user_space": self.added_user_us().map(|added| added <= BUDGET_US),
            "server_cpu_us_per_call_bare_span": cpu_us(&self.bare),
            "bare_span_added_us": self.bare_added_us(),
            "bare_span_added_user_us": self.bare_added_user_us(),
        })
    }
}

/// The Markdown section for `results`, empty when nothing was measured.
pub(crate) fn markdown(out: &mut String, results: &[ObserveResult]) {
    if results.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Sentry and OpenTelemetry on (`{NAME}`)\n");
    let _ = writeln!(
        out,
        "Our worker's server CPU per `void_noop` call, plain and with `{FLAG}` \
         (Sentry bound with a transport that drops envelopes, OpenTelemetry \
         spans recorded and handed to an exporter that drops them, metrics \
         aggregated); budget: \
         at most +{BUDGET_US} µs. The workers serve in turns, plain, \
         observed and with bare spans, for a second each per round, at least \
         {MIN_ROUNDS} rounds, each worker's CPU read over the round (summed over \
         its threads, in nanoseconds); the added cost is the median over the \
         rounds of observed minus plain, read against the budget. Short turns ({SHORT_TURN_MS} ms) \
         let a drifting machine fall on all workers alike; long turns (the \
         whole second) are how the other small-call workloads run, and on a \
         small virtual machine the two lengths put a call in different \
         states of the scheduler (see the round-trip p50). \
         \"medians apart\" is the observed median minus the plain one. The \
         spread is how far apart the plain pairs land (highest minus \
         lowest). The user columns are the user-space part of the same CPU \
         (clock ticks): the reporters' own work, without the system time of \
         the link's calls, which reporting does not change in number. \
         The bare span columns are a third worker in the same turns, \
         `{BARE_FLAG}`: one span per call with a fixed name and no \
         attributes, started and ended through the SDK into the same \
         dropping exporter, nothing else reported, against the plain one.\n"
    );
    let _ = writeln!(
        out,
        "| transport | turns | pairs | off p50 µs | off µs/call | on µs/call | added µs \
         | medians apart µs | off spread µs | within budget | off user µs | on user µs \
         | added user µs | user within budget | bare span added µs \
         | bare span added user µs |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---:|"
    );
    let verdict = |added: Option<f64>| match added {
        Some(added) if added <= BUDGET_US => "yes",
        Some(_) => "no",
        None => "",
    };
    for result in results {
        let _ = writeln!(
            out,
            "| {} | {} ms | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            result.transport.name(),
            result.turn.as_millis(),
            result.off.len().min(result.on.len()),
            opt(median_p50_us(&result.off)),
            opt(result.off_us()),
            opt(result.on_us()),
            opt(result.added_us()),
            opt(result.medians_apart_us()),
            opt(result.off_spread_us()),
            verdict(result.added_us()),
            opt(user_cpu_us(&result.off)),
            opt(user_cpu_us(&result.on)),
            opt(result.added_user_us()),
            verdict(result.added_user_us()),
            opt(result.bare_added_us()),
            opt(result.bare_added_user_us()),
        );
    }
    out.push('\n');
}

/// Starts our worker plain, observed and with bare spans on `transport`
/// and measures `void_noop` on each, in short turns and in long ones.
pub(crate) fn measure(
    plan: &Plan,
    workers: &mut Workers,
    transport: TransportKind,
    void_noop: &Workload,
) -> Result<Vec<ObserveResult>> {
    let mut off = workers.launch(Server::Ours, transport)?;
    let mut on = workers.launch_with(Server::Ours, transport, &[FLAG])?;
    let mut bare = workers.launch_with(Server::Ours, transport, &[BARE_FLAG])?;
    for endpoint in [&mut off, &mut on, &mut bare] {
        crate::warm_up(void_noop, endpoint, plan.warmup)?;
    }
    let short = Duration::from_millis(SHORT_TURN_MS);
    let mut results = Vec::new();
    for turn in [short, plan.budget.max(short)] {
        let mut result = ObserveResult {
            transport,
            turn,
            off: Vec::new(),
            on: Vec::new(),
            bare: Vec::new(),
        };
        for round in 0..plan.runs.max(MIN_ROUNDS) {
            let endpoints = [&mut off, &mut on, &mut bare];
            let [off_run, on_run, bare_run] =
                measure_in_turns(void_noop, endpoints, plan.budget, turn, round)
                    .with_context(|| format!("{NAME} on {}", transport.name()))?;
            result.off.push(off_run);
            result.on.push(on_run);
            result.bare.push(bare_run);
        }
        results.push(result);
    }
    Ok(results)
}

/// The length of the short turns, in milliseconds.
const SHORT_TURN_MS: u64 = 20;

/// One round: `void_noop` on every endpoint for `budget` each, in turns of
/// `turn`, round `round` starting with endpoint `round % N`. Each
/// endpoint's CPU is read over the whole round, which counts its own turns
/// only, since a worker does nothing while another serves.
fn measure_in_turns<const N: usize>(
    void_noop: &Workload,
    endpoints: [&mut Endpoint; N],
    budget: Duration,
    turn: Duration,
    round: usize,
) -> Result<[Run; N]> {
    let before = endpoints
        .each_ref()
        .map(|endpoint| CpuReading::take(endpoint.pid));
    let mut runs = [(); N].map(|()| Run::empty());
    let turns = (budget.as_nanos() / turn.as_nanos()).max(1) as usize;
    for index in 0..turns * N {
        let which = (index + round) % N;
        runs[which].absorb(void_noop.measure(&mut *endpoints[which], turn, 1)?);
    }
    for (which, run) in runs.iter_mut().enumerate() {
        let after = CpuReading::take(endpoints[which].pid);
        run.cpu_s = before[which].cpu_s_until(&after);
        run.user_cpu_s = before[which].user_s_until(&after);
    }
    Ok(runs)
}

/// A worker's CPU so far, read two ways: summed over its threads in
/// nanoseconds, and from `/proc/<pid>/stat`, in clock ticks but counting
/// threads that have exited.
struct CpuReading {
    threads_ns: Option<u64>,
    ticks: Option<CpuTime>,
}

impl CpuReading {
    fn take(pid: u32) -> Self {
        Self {
            ticks: cpu_time(pid).ok(),
            threads_ns: threads_on_cpu_ns(pid).ok(),
        }
    }

    /// CPU seconds from `self` to `later`: the exact sum over threads,
    /// unless threads that exited in between took more than the ticks'
    /// resolution with them, when the ticks are all there is.
    fn cpu_s_until(&self, later: &CpuReading) -> Option<f64> {
        let ticks = Some(later.ticks?.total_s() - self.ticks?.total_s());
        let exact = later
            .threads_ns
            .zip(self.threads_ns)
            .and_then(|(later, earlier)| later.checked_sub(earlier))
            .map(|ns| ns as f64 / 1e9);
        match (exact, ticks) {
            (Some(exact), Some(ticks)) if ticks - exact > 2.0 * cpu_resolution() => Some(ticks),
            (Some(exact), _) => Some(exact),
            (None, ticks) => ticks,
        }
    }

    fn user_s_until(&self, later: &CpuReading) -> Option<f64> {
        Some(later.ticks?.user_s - self.ticks?.user_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of a million calls that cost `cpu_us` each, `user_us` of it
    /// in user space.
    fn run(cpu_us: f64, user_us: f64) -> Run {
        Run {
            ops: 1_000_000,
            wall_s: 1.0,
            cpu_s: Some(cpu_us),
            user_cpu_s: Some(user_us),
            client_cpu_s: None,
            http_requests: None,
            bytes: 0,
            latencies_us: Vec::new(),
        }
    }

    #[test]
    fn the_added_cost_is_read_within_each_pair() {
        // The machine slows down after the first pair: the medians land far
        // apart, while each pair still shows reporting's own microsecond.
        let result = ObserveResult {
            transport: TransportKind::Unix,
            turn: Duration::from_secs(1),
            off: vec![run(10.0, 3.0), run(20.0, 6.0), run(20.0, 6.0)],
            on: vec![run(11.0, 3.5), run(21.0, 6.5), run(21.0, 6.5)],
            bare: vec![run(10.5, 3.25), run(20.5, 6.25), run(20.5, 6.25)],
        };
        let close = |a: Option<f64>, b: f64| (a.expect("measured") - b).abs() < 1e-9;
        assert!(close(result.added_us(), 1.0));
        assert!(close(result.added_user_us(), 0.5));
        assert!(close(result.medians_apart_us(), 1.0));
        assert!(close(result.bare_added_us(), 0.5));
        assert!(close(result.bare_added_user_us(), 0.25));

        let drifted = ObserveResult {
            transport: TransportKind::Unix,
            turn: Duration::from_secs(1),
            off: vec![run(10.0, 3.0), run(10.0, 3.0), run(30.0, 9.0)],
            on: vec![run(11.0, 3.5), run(31.0, 9.5), run(31.0, 9.5)],
            bare: Vec::new(),
        };
        assert!(close(drifted.added_us(), 1.0));
        assert!(close(drifted.medians_apart_us(), 21.0));
        assert_eq!(drifted.to_json()["met"], serde_json::json!(true));
    }
}
