//! Results: medians, ratios, the targets, Markdown tables and JSON.

pub(crate) mod format;
mod results;
mod targets;

use std::fmt::Write as _;

use serde_json::{Value, json};

pub(crate) use results::{SoakResult, TransportResult, WorkloadResult};

use crate::observe::ObserveResult;
use crate::procstat::Machine;
use crate::raw::{Limits, PING_BYTES};
use crate::servers::Server;
use format::num;
use targets::{Floor, Target};

/// Everything one invocation measured.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) runs: usize,
    pub(crate) machine: Machine,
    /// Load averages when the run started and ended.
    pub(crate) load_average: [String; 2],
    pub(crate) command: String,
    pub(crate) workers: Value,
    pub(crate) transports: Vec<TransportResult>,
    pub(crate) soak: Vec<SoakResult>,
    /// What Sentry and OpenTelemetry add to a small call, per transport.
    pub(crate) observe: Vec<ObserveResult>,
    pub(crate) duration_s: f64,
}

impl Report {
    /// Every link measured in this run, in report order.
    fn limits(&self) -> Vec<Limits> {
        targets::limits(&self.transports)
    }

    fn targets(&self) -> Vec<Target> {
        targets::targets(&self.transports, &self.soak)
    }

    /// The report as Markdown: machine, limits, one table per transport,
    /// the targets.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(out, "## vgi-rpc bench ({} mode)\n", self.mode);
        let _ = writeln!(
            out,
            "Machine: {}, {} logical CPUs, {:.1} GiB, Linux {}.  ",
            m.cpu_model, m.logical_cpus, m.memory_gib, m.kernel
        );
        let _ = writeln!(
            out,
            "Load average (1/5/15 min): {} at the start, {} at the end.  ",
            self.load_average[0], self.load_average[1]
        );
        let _ = writeln!(out, "Command: `{}`  ", self.command);
        if !self.transports.is_empty() {
            let _ = writeln!(
                out,
                "Each number is the median of {} run(s); ratios say how many times \
                 better ours is (above 1: ours is faster or cheaper). Server CPU is \
                 user + system time from /proc/<pid>/stat ({} ms resolution).\n",
                self.runs,
                crate::procstat::cpu_resolution() * 1e3
            );
        } else {
            out.push('\n');
        }
        if self.mode == "quick" {
            let _ = writeln!(
                out,
                "Quick mode: reduced sizes and a single short run; a smoke test of the \
                 driver, not a measurement.\n"
            );
        }
        let limits = self.limits();
        if !limits.is_empty() {
            let _ = writeln!(out, "### Machine limits (same run)\n");
            let _ = writeln!(
                out,
                "Echo peer CPU is the raw peer's own time on a CPU per round trip \
                 (/proc/<pid>/schedstat): the floor for any server's CPU per small call \
                 on that link (pipe for pipe and shm, tcp for http).\n"
            );
            let _ = writeln!(
                out,
                "| link | raw ping-pong p50 µs ({PING_BYTES} B) | p99 µs | echo peer CPU µs/round trip | raw bandwidth MB/s |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for l in &limits {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    l.link.name(),
                    num(l.ping_pong_p50_us),
                    num(l.ping_pong_p99_us),
                    num(l.echo_cpu_us),
                    num(l.bandwidth_mb_s)
                );
            }
            out.push('\n');
        }
        for result in &self.transports {
            match result {
                TransportResult::NotMeasured { transport, reason } => {
                    let _ = writeln!(out, "### {}\n\nNot measured: {reason}.\n", transport.name());
                }
                TransportResult::Measured {
                    transport,
                    workloads,
                    load,
                    flight,
                    ..
                } => {
                    if !workloads.is_empty() {
                        let _ = writeln!(out, "### {}\n", transport.name());
                        workload_table(&mut out, workloads, Server::Reference);
                    }
                    if !load.is_empty() {
                        let _ = writeln!(out, "### {}: server-only load\n", transport.name());
                        let _ = writeln!(
                            out,
                            "N keep-alive HTTP/1.1 connections, each sending the same \
                             uncompressed echo_string request back to back (encoded once; \
                             every reply decoded and checked). The load generator shares \
                             the machine with the server: its CPU use, in cores, shows \
                             whether it was the limit.\n"
                        );
                        workload_table(&mut out, load, Server::Reference);
                    }
                    if !flight.is_empty() {
                        flight_section(&mut out, transport.name(), flight);
                    }
                }
            }
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(out, "### Targets\n");
            let _ = writeln!(
                out,
                "| target | transport | measured | goal | met | what the link allows |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for t in &targets {
                let met = match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "n/a",
                };
                let floor = t.floor.map_or_else(String::new, |f| f.text());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {met} | {floor} |",
                    t.what, t.transport, t.measured, t.goal
                );
            }
            out.push('\n');
        }
        crate::observe::markdown(&mut out, &self.observe);
        let _ = writeln!(out, "Total time: {:.1} s.", self.duration_s);
        out
    }

    pub(crate) fn to_json(&self) -> Value {
        let transports: Vec<Value> = self
            .transports
            .iter()
            .map(|t| match t {
                TransportResult::NotMeasured { transport, reason } => json!({
                    "transport": transport.name(),
                    "measured": false,
                    "reason": reason,
                }),
                TransportResult::Measured {
                    transport,
                    limits,
                    workloads,
                    load,
                    flight,
                } => json!({
                    "transport": transport.name(),
                    "measured": true,
                    "machine_limits": limits.map(Limits::to_json),
                    "workloads": workloads.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
                    "http_load": load.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
                    "arrow_flight": flight.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
                }),
            })
            .collect();
        let targets: Vec<Value> = self
            .targets()
            .iter()
            .map(|t| {
                json!({
                    "target": t.what,
                    "transport": t.transport,
                    "measured": t.measured,
                    "goal": t.goal,
                    "met": t.met,
                    "floor": t.floor.map(Floor::to_json),
                })
            })
            .collect();
        let soak: Vec<Value> = self
            .soak
            .iter()
            .map(|s| {
                json!({
                    "transport": s.transport.name(),
                    "calls": s.calls,
                    "checkpoint_call": s.checkpoint,
                    "peak_rss_kib_at_checkpoint": s.at_checkpoint.peak_kib,
                    "peak_rss_kib_at_end": s.at_end.peak_kib,
                    "rss_kib_at_end": s.at_end.rss_kib,
                    "growth": s.growth(),
                    "wall_s": s.wall_s,
                    "samples": s.samples.iter().map(|(call, m)| json!({
                        "call": call, "rss_kib": m.rss_kib, "peak_rss_kib": m.peak_kib,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "mode": self.mode,
            "runs": self.runs,
            "command": self.command,
            "machine": self.machine.to_json(),
            "load_average": {"start": self.load_average[0], "end": self.load_average[1]},
            "workers": self.workers,
            "transports": transports,
            "soak": soak,
            "observe_overhead": self.observe.iter().map(ObserveResult::to_json).collect::<Vec<_>>(),
            "targets": targets,
            "duration_s": self.duration_s,
        })
    }
}

/// The ours-against-Arrow-Flight table of one transport.
fn flight_section(out: &mut String, transport: &str, flight: &[WorkloadResult]) {
    let _ = writeln!(out, "### {transport}: ours vs Arrow Flight\n");
    let _ = writeln!(
        out,
        "The same workloads against an arrow-rs Arrow Flight server (gRPC on one \
         loopback HTTP/2 connection, its own process) through arrow-rs's \
         FlightClient, runs alternating with ours on HTTP/1.1 with our client's \
         defaults; every Flight answer is checked as ours are. A Flight exchange is \
         one streaming call where ours is one request per round, and Flight's \
         no-op and load calls are actions (opaque bytes), not Arrow batches.\n"
    );
    for w in flight {
        let _ = writeln!(out, "- {}: {}", w.name, w.description);
    }
    out.push('\n');
    workload_table(out, flight, Server::Flight);
}

/// One row per workload and metric, ours beside `peer`.
fn workload_table(out: &mut String, workloads: &[WorkloadResult], peer: Server) {
    let peer_name = peer.name();
    let _ = writeln!(
        out,
        "| workload | metric | ours | {peer_name} | ours vs {peer_name} |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for w in workloads {
        // Metrics no server reported on this transport (HTTP requests off
        // HTTP) get no row.
        let reported = w
            .metrics
            .iter()
            .filter(|m| w.median(Server::Ours, **m).is_some() || w.median(peer, **m).is_some());
        for (i, metric) in reported.enumerate() {
            let name = if i == 0 { w.name } else { "" };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} |",
                metric.label(w.op),
                w.cell(Server::Ours, *metric),
                w.cell(peer, *metric),
                w.advantage(peer, *metric)
                    .filter(|a| a.is_finite())
                    .map_or_else(|| "–".to_owned(), |a| format!("{}×", num(a)))
            );
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Link;
    use crate::servers::TransportKind;
    use crate::workloads::Run;

    fn run(ops: u64, server_cpu_s: f64) -> Run {
        Run {
            ops,
            wall_s: 1.0,
            cpu_s: Some(server_cpu_s),
            user_cpu_s: None,
            client_cpu_s: Some(0.5),
            http_requests: None,
            bytes: 0,
            latencies_us: vec![100.0],
        }
    }

    fn result(name: &'static str, unary: bool, ours: Run, reference: Run) -> WorkloadResult {
        WorkloadResult {
            name,
            description: String::new(),
            op: "call",
            metrics: crate::load::METRICS,
            unary,
            runs: vec![
                (Server::Ours, vec![ours]),
                (Server::Reference, vec![reference]),
            ],
        }
    }

    fn limits(link: Link, echo_cpu_us: f64) -> Limits {
        Limits {
            link,
            ping_pong_p50_us: 10.0,
            ping_pong_p99_us: 20.0,
            echo_cpu_us,
            bandwidth_mb_s: 1000.0,
        }
    }

    #[test]
    fn targets_carry_the_link_floor() {
        let measured = |transport, limits, workloads, load| TransportResult::Measured {
            transport,
            limits,
            workloads,
            load,
            flight: Vec::new(),
        };
        let report = Report {
            mode: "full",
            runs: 1,
            machine: Machine::read(),
            load_average: [String::new(), String::new()],
            command: String::new(),
            workers: Value::Null,
            transports: vec![
                measured(
                    TransportKind::Pipe,
                    Some(limits(Link::Pipe, 2.0)),
                    vec![],
                    vec![],
                ),
                // 10 µs against 100 µs per call; shm is judged on the pipe.
                measured(
                    TransportKind::Shm,
                    None,
                    vec![result("void_noop", true, run(1000, 0.01), run(1000, 0.1))],
                    vec![],
                ),
                // 30,000 against 1,000 requests/s, the reference at 1 ms each.
                measured(
                    TransportKind::Http,
                    Some(limits(Link::Tcp, 10.0)),
                    vec![],
                    vec![result(
                        "http_load_64",
                        false,
                        run(30_000, 1.2),
                        run(1000, 1.0),
                    )],
                ),
            ],
            soak: Vec::new(),
            observe: Vec::new(),
            duration_s: 1.0,
        };
        let targets = report.targets();
        let [cpu, load] = targets.as_slice() else {
            panic!("{targets:?}");
        };
        assert_eq!((cpu.transport, cpu.met), ("shm", Some(false)));
        let floor = cpu.floor.unwrap();
        assert_eq!((floor.link, floor.max_ratio()), (Link::Pipe, Some(50.0)));

        assert_eq!((load.transport, load.met), ("http", Some(true)));
        assert_eq!(load.measured, "30,000 vs 1,000 = 30.0×");
        assert_eq!(load.floor.unwrap().max_ratio(), Some(100.0));
        let markdown = report.markdown();
        assert!(
            markdown.contains("| tcp | 10.0 | 20.0 | 10.0 | 1,000 |"),
            "{markdown}"
        );
        assert!(markdown.contains("reference 1,000 µs / tcp echo 10.0 µs = 100×"));
    }
}
