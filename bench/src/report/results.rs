//! What a run measured: the runs of each workload per server, per transport,
//! and the soak.

use serde_json::{Map, Value, json};

use super::format::{num, opt};
use crate::procstat::Memory;
use crate::raw::Limits;
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
    pub(super) fn cell(&self, server: Server, metric: Metric) -> String {
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

    /// How many times better ours is than `peer` on `metric`.
    pub(super) fn advantage(&self, peer: Server, metric: Metric) -> Option<f64> {
        let ours = self.median(Server::Ours, metric)?;
        let theirs = self.median(peer, metric)?;
        metric.advantage(ours, theirs)
    }

    pub(super) fn to_json(&self) -> Value {
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
        let mut result = json!({
            "name": self.name,
            "description": self.description,
            "servers": servers,
        });
        for (peer, _) in self.runs.iter().filter(|(s, _)| *s != Server::Ours) {
            let ratios: Map<String, Value> = self
                .metrics
                .iter()
                .filter_map(|m| Some((m.key(self.op), json!(self.advantage(*peer, *m)?))))
                .collect();
            result[format!("ours_vs_{}", peer.name())] = Value::Object(ratios);
        }
        result
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
        /// Ours against Arrow Flight (http only).
        flight: Vec<WorkloadResult>,
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
