//! Results: medians, ratios, the targets, Markdown tables and JSON.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::procstat::{Machine, Memory};
use crate::raw::{Limits, Link, PING_BYTES};
use crate::servers::{Server, TransportKind};
use crate::stats::median;
use crate::workloads::{Metric, Run};

/// The runs of one workload on one transport, per server.
#[derive(Debug)]
pub(crate) struct WorkloadResult {
    pub(crate) name: &'static str,
    pub(crate) description: String,
    pub(crate) op: &'static str,
    pub(crate) metrics: &'static [Metric],
    pub(crate) unary: bool,
    pub(crate) runs: Vec<(Server, Vec<Run>)>,
}

impl WorkloadResult {
    /// Median over runs of `metric` for `server`.
    pub(crate) fn median(&self, server: Server, metric: Metric) -> Option<f64> {
        let (_, runs) = self.runs.iter().find(|(s, _)| *s == server)?;
        let values: Vec<f64> = runs.iter().filter_map(|r| r.metric(metric)).collect();
        median(&values)
    }

    /// The table cell for `metric`: its median, or for a CPU time below the
    /// clock-tick resolution, that bound.
    fn cell(&self, server: Server, metric: Metric) -> String {
        let value = self.median(server, metric);
        let scale = match metric {
            Metric::CpuUsPerOp => 1e6,
            Metric::CpuMsPerOp => 1e3,
            _ => return opt(value),
        };
        if value != Some(0.0) {
            return opt(value);
        }
        let ops: Vec<f64> = self
            .runs
            .iter()
            .filter(|(s, _)| *s == server)
            .flat_map(|(_, runs)| runs.iter().map(|r| r.ops as f64))
            .collect();
        let ops = median(&ops).unwrap_or(1.0);
        format!("< {}", num(crate::procstat::cpu_resolution() * scale / ops))
    }

    fn advantage(&self, metric: Metric) -> Option<f64> {
        let ours = self.median(Server::Ours, metric)?;
        let reference = self.median(Server::Reference, metric)?;
        metric.advantage(ours, reference)
    }

    fn to_json(&self) -> Value {
        let mut servers = Map::new();
        for (server, runs) in &self.runs {
            let medians: Map<String, Value> = self
                .metrics
                .iter()
                .map(|m| (m.key(self.op), json!(self.median(*server, *m))))
                .collect();
            servers.insert(
                server.name().to_owned(),
                json!({
                    "median": medians,
                    "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
                }),
            );
        }
        let ratios: Map<String, Value> = self
            .metrics
            .iter()
            .filter_map(|m| Some((m.key(self.op), json!(self.advantage(*m)?))))
            .collect();
        json!({
            "name": self.name,
            "description": self.description,
            "servers": servers,
            "ours_vs_reference": ratios,
        })
    }
}

/// One transport's results.
#[derive(Debug)]
pub(crate) enum TransportResult {
    Measured {
        transport: TransportKind,
        limits: Option<Limits>,
        workloads: Vec<WorkloadResult>,
        /// The HTTP load test, one result per connection count.
        load: Vec<WorkloadResult>,
    },
    NotMeasured {
        transport: TransportKind,
        reason: &'static str,
    },
}

/// The soak loop on one transport.
#[derive(Debug)]
pub(crate) struct SoakResult {
    pub(crate) transport: TransportKind,
    pub(crate) calls: u64,
    pub(crate) checkpoint: u64,
    pub(crate) at_checkpoint: Memory,
    pub(crate) at_end: Memory,
    pub(crate) samples: Vec<(u64, Memory)>,
    pub(crate) wall_s: f64,
}

impl SoakResult {
    /// Growth of the peak resident set from the checkpoint to the end.
    pub(crate) fn growth(&self) -> f64 {
        self.at_end.peak_kib as f64 / self.at_checkpoint.peak_kib as f64 - 1.0
    }
}

/// A target from the performance issue, evaluated.
#[derive(Debug)]
struct Target {
    what: String,
    transport: &'static str,
    measured: String,
    goal: &'static str,
    /// `None` when it could not be evaluated.
    met: Option<bool>,
    /// For ratio targets on server CPU: the best ratio the link allows.
    floor: Option<Floor>,
}

/// How far a server-CPU ratio can go at all: no server spends less CPU on a
/// small call than the raw echo peer does on a round trip over the same
/// link (one read, one write), so reference CPU / echo CPU bounds it.
#[derive(Debug, Clone, Copy)]
struct Floor {
    link: Link,
    reference_cpu_us: f64,
    /// `None` when the link was not measured in this run.
    echo_cpu_us: Option<f64>,
}

impl Floor {
    fn max_ratio(&self) -> Option<f64> {
        self.echo_cpu_us
            .map(|echo| self.reference_cpu_us / echo)
            // A reference below the clock tick reads as zero: no bound.
            .filter(|r| r.is_finite() && *r > 0.0)
    }

    fn text(&self) -> String {
        match (self.echo_cpu_us, self.max_ratio()) {
            (Some(echo), Some(ratio)) => format!(
                "reference {} µs / {} echo {} µs = {}×",
                num(self.reference_cpu_us),
                self.link.name(),
                num(echo),
                num(ratio)
            ),
            (Some(_), None) => "–".to_owned(),
            (None, _) => format!("{} echo CPU not measured", self.link.name()),
        }
    }

    fn to_json(self) -> Value {
        json!({
            "link": self.link.name(),
            "reference_cpu_us": self.reference_cpu_us,
            "echo_cpu_us_per_round_trip": self.echo_cpu_us,
            "max_ratio": self.max_ratio(),
        })
    }
}

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
    pub(crate) duration_s: f64,
}

impl Report {
    /// Every link measured in this run, in report order.
    fn limits(&self) -> Vec<Limits> {
        self.transports
            .iter()
            .filter_map(|t| match t {
                TransportResult::Measured {
                    limits: Some(limits),
                    ..
                } => Some(*limits),
                _ => None,
            })
            .collect()
    }

    fn targets(&self) -> Vec<Target> {
        let links = self.limits();
        let floor = |transport: TransportKind, reference: Option<f64>| {
            let link = Link::under(transport);
            reference.map(|reference_cpu_us| Floor {
                link,
                reference_cpu_us,
                echo_cpu_us: links
                    .iter()
                    .find(|l| l.link == link)
                    .map(|l| l.echo_cpu_us)
                    .filter(|e| e.is_finite()),
            })
        };
        let mut targets = Vec::new();
        for result in &self.transports {
            let TransportResult::Measured {
                transport,
                limits,
                workloads,
                load,
            } = result
            else {
                continue;
            };
            let name = transport.name();
            let find = |wanted: &str| workloads.iter().find(|w| w.name == wanted);
            for w in workloads.iter().filter(|w| w.unary) {
                let ours = w.median(Server::Ours, Metric::CpuUsPerOp);
                let reference = w.median(Server::Reference, Metric::CpuUsPerOp);
                let ratio = ours.zip(reference).map(|(o, r)| r / o);
                targets.push(Target {
                    what: format!("server CPU per call, {}", w.name),
                    transport: name,
                    measured: match (ours, reference) {
                        (Some(o), Some(r)) => format!(
                            "{} µs vs {} µs = 1/{}",
                            num(o),
                            num(r),
                            num(ratio.unwrap_or(f64::NAN))
                        ),
                        (Some(o), None) => format!("{} µs (no reference)", num(o)),
                        _ => "n/a".to_owned(),
                    },
                    goal: "≤ 1/20 of reference",
                    met: ratio.map(|r| r >= 20.0),
                    floor: floor(*transport, reference),
                });
            }
            if let Some(w) = load.iter().find(|w| w.name == "http_load_64") {
                let ours = w.median(Server::Ours, Metric::OpsPerSec);
                let reference = w.median(Server::Reference, Metric::OpsPerSec);
                let ratio = ours.zip(reference).map(|(o, r)| o / r);
                targets.push(Target {
                    what: "HTTP load at 64 connections, requests/s".to_owned(),
                    transport: name,
                    measured: match (ours, reference) {
                        (Some(o), Some(r)) => format!(
                            "{} vs {} = {}×",
                            num(o),
                            num(r),
                            num(ratio.unwrap_or(f64::NAN))
                        ),
                        (Some(o), None) => format!("{} (no reference)", num(o)),
                        _ => "n/a".to_owned(),
                    },
                    goal: "≥ 20× reference req/s",
                    met: ratio.map(|r| r >= 20.0),
                    floor: floor(*transport, w.median(Server::Reference, Metric::CpuUsPerOp)),
                });
            }
            edge_targets(load, name, &mut targets);
            // The latency and bandwidth goals were set for the byte-stream
            // transports; the TCP floor under HTTP only bounds CPU.
            if let Some(limits) = limits.filter(|l| l.link != Link::Tcp) {
                for w in workloads
                    .iter()
                    .filter(|w| w.unary && w.name != "echo_bytes_64k")
                {
                    let p50 = w.median(Server::Ours, Metric::P50Us);
                    let ratio = p50.map(|p| p / limits.ping_pong_p50_us);
                    targets.push(Target {
                        what: format!("unary p50 vs raw ping-pong, {}", w.name),
                        transport: name,
                        measured: format!(
                            "{} µs vs {} µs = {}×",
                            opt(p50),
                            num(limits.ping_pong_p50_us),
                            opt(ratio)
                        ),
                        goal: "≤ 2×",
                        met: ratio.map(|r| r <= 2.0),
                        floor: None,
                    });
                }
                if let Some(w) = find("exchange_large") {
                    let mb = w.median(Server::Ours, Metric::MbPerSec);
                    let share = mb.map(|m| m / limits.bandwidth_mb_s);
                    targets.push(Target {
                        what: "8 MB exchange rounds vs raw bandwidth".to_owned(),
                        transport: name,
                        measured: format!(
                            "{} MB/s vs {} MB/s = {}%",
                            opt(mb),
                            num(limits.bandwidth_mb_s),
                            opt(share.map(|s| s * 100.0))
                        ),
                        goal: "≥ 50%",
                        met: share.map(|s| s >= 0.5),
                        floor: None,
                    });
                }
            }
            if *transport == TransportKind::Unix
                && let Some(w) = find("produce_bulk")
            {
                let mb = w.median(Server::Ours, Metric::MbPerSec);
                targets.push(Target {
                    what: "bulk produce throughput".to_owned(),
                    transport: name,
                    measured: format!("{} MB/s", opt(mb)),
                    goal: "≥ 2000 MB/s",
                    met: mb.map(|m| m >= 2000.0),
                    floor: None,
                });
            }
            if let Some(w) = find("spawn_first_reply") {
                let ms = w.median(Server::Ours, Metric::MsPerOp);
                targets.push(Target {
                    what: "spawn → first reply".to_owned(),
                    transport: name,
                    measured: format!("{} ms", opt(ms)),
                    goal: "≤ 10 ms",
                    met: ms.map(|m| m <= 10.0),
                    floor: None,
                });
            }
        }
        targets.extend(self.async_client_targets());
        for soak in &self.soak {
            targets.push(Target {
                what: format!(
                    "peak RSS, call {} → call {}",
                    thousands(soak.checkpoint),
                    thousands(soak.calls)
                ),
                transport: soak.transport.name(),
                measured: format!(
                    "{} KiB → {} KiB = {:+.1}%",
                    thousands(soak.at_checkpoint.peak_kib),
                    thousands(soak.at_end.peak_kib),
                    soak.growth() * 100.0
                ),
                goal: "within 10%",
                met: Some(soak.growth().abs() <= 0.10),
                floor: None,
            });
        }
        targets
    }

    /// The async client's unary p50 against the blocking client's, both
    /// over a Unix socket to our worker in the same run.
    fn async_client_targets(&self) -> Vec<Target> {
        let unary_p50 = |kind: TransportKind| {
            self.transports.iter().find_map(|result| match result {
                TransportResult::Measured {
                    transport,
                    workloads,
                    ..
                } if *transport == kind => Some(
                    workloads
                        .iter()
                        .filter(|w| w.unary)
                        .map(|w| (w.name, w.median(Server::Ours, Metric::P50Us)))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
        };
        let (Some(blocking), Some(awaited)) = (
            unary_p50(TransportKind::Unix),
            unary_p50(TransportKind::UnixAsync),
        ) else {
            return Vec::new();
        };
        blocking
            .into_iter()
            .filter_map(|(name, blocking)| {
                let awaited = awaited.iter().find(|(n, _)| *n == name)?.1;
                let ratio = awaited.zip(blocking).map(|(a, b)| a / b);
                Some(Target {
                    what: format!("async client unary p50 vs blocking, {name}"),
                    transport: TransportKind::UnixAsync.name(),
                    measured: format!(
                        "{} µs vs {} µs = {}×",
                        opt(awaited),
                        opt(blocking),
                        opt(ratio)
                    ),
                    goal: "≤ 1.5×",
                    met: ratio.map(|r| r <= 1.5),
                    floor: None,
                })
            })
            .collect()
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
                    ..
                } => {
                    if !workloads.is_empty() {
                        let _ = writeln!(out, "### {}\n", transport.name());
                        workload_table(&mut out, workloads);
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
                        workload_table(&mut out, load);
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
                } => json!({
                    "transport": transport.name(),
                    "measured": true,
                    "machine_limits": limits.map(Limits::to_json),
                    "workloads": workloads.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
                    "http_load": load.iter().map(WorkloadResult::to_json).collect::<Vec<_>>(),
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
            "targets": targets,
            "duration_s": self.duration_s,
        })
    }
}

/// One row per workload and metric, ours beside the reference.
fn workload_table(out: &mut String, workloads: &[WorkloadResult]) {
    let _ = writeln!(
        out,
        "| workload | metric | ours | reference | ours vs reference |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|");
    for w in workloads {
        // Metrics no server reported on this transport (HTTP requests off
        // HTTP) get no row.
        let reported = w.metrics.iter().filter(|m| {
            w.median(Server::Ours, **m).is_some() || w.median(Server::Reference, **m).is_some()
        });
        for (i, metric) in reported.enumerate() {
            let name = if i == 0 { w.name } else { "" };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} |",
                metric.label(w.op),
                w.cell(Server::Ours, *metric),
                w.cell(Server::Reference, *metric),
                w.advantage(*metric)
                    .filter(|a| a.is_finite())
                    .map_or_else(|| "–".to_owned(), |a| format!("{}×", num(a)))
            );
        }
    }
    out.push('\n');
}

fn opt(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), num)
}

/// A number with as many digits as are worth reading.
fn num(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    let magnitude = value.abs();
    if magnitude >= 1000.0 {
        let sign = if value < 0.0 { "-" } else { "" };
        format!("{sign}{}", thousands(magnitude.round() as u64))
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The goals of our worker's TLS and HTTP/2 edge, each against its own
/// plain HTTP/1.1 at the same concurrency and with the same client.
fn edge_targets(load: &[WorkloadResult], transport: &'static str, targets: &mut Vec<Target>) {
    use crate::edge;
    let ops = |name: &str| {
        load.iter()
            .find(|w| w.name == name)
            .and_then(|w| w.median(Server::Ours, Metric::OpsPerSec))
    };
    let mut versus = |what: &str, (name, base): (&str, &str), goal: &'static str, at_least: f64| {
        let (Some(measured), Some(base)) = (ops(name), ops(base)) else {
            return;
        };
        targets.push(Target {
            what: what.to_owned(),
            transport,
            measured: format!(
                "{} vs {} req/s = {}×",
                num(measured),
                num(base),
                num(measured / base)
            ),
            goal,
            met: Some(measured / base >= at_least),
            floor: None,
        });
    };
    versus(
        "HTTPS keep-alive at 64 connections vs plain HTTP/1.1",
        (edge::HTTPS, edge::PLAIN),
        "≥ 0.7× plain",
        0.7,
    );
    // h2load drives both versions alike when it is installed; the
    // driver's own HTTP/2 client costs more per request than its HTTP/1.1.
    let h2 = if ops(edge::H2LOAD_H2C).is_some() {
        (edge::H2LOAD_H2C, edge::H2LOAD_HTTP1)
    } else {
        (edge::H2C, edge::PLAIN)
    };
    versus(
        "HTTP/2, 64 streams on one connection vs HTTP/1.1 at 64 connections",
        h2,
        "≥ 1× HTTP/1.1",
        1.0,
    );
    if let Some(first) = load.iter().find(|w| w.name == edge::FIRST_REPLY) {
        let p50 = first.median(Server::Ours, Metric::P50Us);
        targets.push(Target {
            what: "new TLS connection: handshake and first reply, p50".to_owned(),
            transport,
            measured: format!("{} µs", opt(p50)),
            goal: "reported",
            met: p50.map(|_| true),
            floor: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ops: u64, server_cpu_s: f64) -> Run {
        Run {
            ops,
            wall_s: 1.0,
            cpu_s: Some(server_cpu_s),
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

    #[test]
    fn a_floor_needs_its_link() {
        let floor = Floor {
            link: Link::Unix,
            reference_cpu_us: 100.0,
            echo_cpu_us: None,
        };
        assert_eq!(floor.max_ratio(), None);
        assert_eq!(floor.text(), "unix echo CPU not measured");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(1234567.8), "1,234,568");
        assert_eq!(num(-2500.0), "-2,500");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(0.1234), "0.123");
        assert_eq!(num(f64::NAN), "–");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
