//! What one measured run of a workload yields, and the numbers reported
//! from it.

use serde_json::{Value, json};

use crate::stats::percentile;

/// A number reported for a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Operations per second, sequential.
    OpsPerSec,
    /// Milliseconds per operation.
    MsPerOp,
    /// Median operation latency, microseconds.
    P50Us,
    /// 99th percentile operation latency, microseconds.
    P99Us,
    /// Payload throughput, 10^6 bytes per second.
    MbPerSec,
    /// Server CPU (user + system) per operation, microseconds.
    CpuUsPerOp,
    /// Server CPU (user + system) per operation, milliseconds.
    CpuMsPerOp,
    /// This driver's CPU over the run divided by wall time: how many cores
    /// the load generator kept busy.
    GeneratorCores,
    /// HTTP requests per operation (http only).
    RequestsPerOp,
}

impl Metric {
    /// Header text, e.g. `calls/s` for an operation called a call.
    pub(crate) fn label(self, op: &str) -> String {
        match self {
            Metric::OpsPerSec => format!("{op}s/s"),
            Metric::MsPerOp => format!("ms/{op}"),
            Metric::P50Us => "p50 µs".to_owned(),
            Metric::P99Us => "p99 µs".to_owned(),
            Metric::MbPerSec => "MB/s".to_owned(),
            Metric::CpuUsPerOp => format!("server CPU µs/{op}"),
            Metric::CpuMsPerOp => format!("server CPU ms/{op}"),
            Metric::GeneratorCores => "load generator CPU, cores".to_owned(),
            Metric::RequestsPerOp => format!("HTTP requests/{op}"),
        }
    }

    /// JSON key, e.g. `calls_per_s`.
    pub(crate) fn key(self, op: &str) -> String {
        match self {
            Metric::OpsPerSec => format!("{op}s_per_s"),
            Metric::MsPerOp => format!("ms_per_{op}"),
            Metric::P50Us => "p50_us".to_owned(),
            Metric::P99Us => "p99_us".to_owned(),
            Metric::MbPerSec => "mb_per_s".to_owned(),
            Metric::CpuUsPerOp => format!("server_cpu_us_per_{op}"),
            Metric::CpuMsPerOp => format!("server_cpu_ms_per_{op}"),
            Metric::GeneratorCores => "generator_cpu_cores".to_owned(),
            Metric::RequestsPerOp => format!("http_requests_per_{op}"),
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Metric::OpsPerSec | Metric::MbPerSec)
    }

    /// How many times better `ours` is than `reference` (above 1: ours
    /// wins); `None` for what describes the driver, not the servers.
    pub(crate) fn advantage(self, ours: f64, reference: f64) -> Option<f64> {
        if self == Metric::GeneratorCores {
            None
        } else if self.higher_is_better() {
            Some(ours / reference)
        } else {
            Some(reference / ours)
        }
    }
}

/// What one measured run saw.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) ops: u64,
    pub(crate) wall_s: f64,
    /// Server CPU over the run, when the process could be read.
    pub(crate) cpu_s: Option<f64>,
    /// The user-space part of `cpu_s`, where the run read it.
    pub(crate) user_cpu_s: Option<f64>,
    /// This driver's CPU over the run: the client's share of the cost.
    pub(crate) client_cpu_s: Option<f64>,
    /// HTTP requests the client sent over the run (http only).
    pub(crate) http_requests: Option<u64>,
    /// Payload bytes moved, both directions.
    pub(crate) bytes: u64,
    pub(crate) latencies_us: Vec<f64>,
}

impl Run {
    /// A run of no operations, for [`Run::absorb`] to add to.
    pub(crate) fn empty() -> Self {
        // Nothing done took no time: every count starts at zero, so that
        // a sum stays known until a part whose count was not read.
        Self {
            ops: 0,
            wall_s: 0.0,
            cpu_s: Some(0.0),
            user_cpu_s: Some(0.0),
            client_cpu_s: Some(0.0),
            http_requests: Some(0),
            bytes: 0,
            latencies_us: Vec::new(),
        }
    }

    /// Adds `part`'s operations, time, latencies and counts to this run;
    /// a count stays known only while every part's was read. A caller
    /// reading a process's CPU over several parts sets the CPU fields
    /// itself.
    pub(crate) fn absorb(&mut self, part: Run) {
        fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
            a.zip(b).map(|(a, b)| a + b)
        }
        self.ops += part.ops;
        self.wall_s += part.wall_s;
        self.bytes += part.bytes;
        self.latencies_us.extend(part.latencies_us);
        self.cpu_s = sum(self.cpu_s, part.cpu_s);
        self.user_cpu_s = sum(self.user_cpu_s, part.user_cpu_s);
        self.client_cpu_s = sum(self.client_cpu_s, part.client_cpu_s);
        self.http_requests = sum(self.http_requests, part.http_requests);
    }

    pub(crate) fn metric(&self, metric: Metric) -> Option<f64> {
        let ops = self.ops as f64;
        match metric {
            Metric::OpsPerSec => Some(ops / self.wall_s),
            Metric::MsPerOp => Some(self.wall_s * 1e3 / ops),
            Metric::P50Us => percentile(&self.latencies_us, 50.0),
            Metric::P99Us => percentile(&self.latencies_us, 99.0),
            Metric::MbPerSec => Some(self.bytes as f64 / self.wall_s / 1e6),
            Metric::CpuUsPerOp => self.cpu_s.map(|cpu| cpu * 1e6 / ops),
            Metric::CpuMsPerOp => self.cpu_s.map(|cpu| cpu * 1e3 / ops),
            Metric::GeneratorCores => self.client_cpu_s.map(|cpu| cpu / self.wall_s),
            Metric::RequestsPerOp => self.http_requests.map(|requests| requests as f64 / ops),
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "ops": self.ops,
            "wall_s": self.wall_s,
            "server_cpu_s": self.cpu_s,
            "server_user_cpu_s": self.user_cpu_s,
            "client_cpu_s": self.client_cpu_s,
            "http_requests": self.http_requests,
            "bytes": self.bytes,
            "p50_us": percentile(&self.latencies_us, 50.0),
            "p99_us": percentile(&self.latencies_us, 99.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbed_parts_add_up_to_one_run() {
        let part = |ops: u64, cpu_s: Option<f64>| Run {
            ops,
            wall_s: 0.5,
            cpu_s,
            user_cpu_s: cpu_s.map(|cpu| cpu / 2.0),
            client_cpu_s: None,
            http_requests: None,
            bytes: 10,
            latencies_us: vec![1.0; ops as usize],
        };
        let mut run = Run::empty();
        run.absorb(part(3, Some(0.25)));
        run.absorb(part(5, Some(0.5)));
        assert_eq!(run.ops, 8);
        assert_eq!(run.bytes, 20);
        assert_eq!(run.wall_s, 1.0);
        assert_eq!(run.latencies_us.len(), 8);
        assert_eq!(run.cpu_s, Some(0.75));
        assert_eq!(run.user_cpu_s, Some(0.375));
        // A part whose CPU could not be read leaves the sum unknown.
        run.absorb(part(1, None));
        assert_eq!(run.cpu_s, None);
    }

    #[test]
    fn generator_cores_are_not_compared() {
        let run = Run {
            ops: 100,
            wall_s: 2.0,
            cpu_s: Some(0.1),
            user_cpu_s: None,
            client_cpu_s: Some(0.5),
            http_requests: Some(300),
            bytes: 0,
            latencies_us: Vec::new(),
        };
        assert_eq!(run.metric(Metric::GeneratorCores), Some(0.25));
        assert_eq!(run.metric(Metric::RequestsPerOp), Some(3.0));
        assert_eq!(run.metric(Metric::CpuUsPerOp), Some(1000.0));
        assert_eq!(Metric::GeneratorCores.advantage(0.5, 0.25), None);
        assert_eq!(Metric::OpsPerSec.advantage(30.0, 10.0), Some(3.0));
    }
}
