//! The workloads: ConformanceService calls with every answer checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use arrow_array::{ArrayRef, BinaryArray, Float64Array, RecordBatch, StringArray};

pub(crate) mod answers;
mod run;

use crate::procstat::{CpuTime, cpu_seconds, cpu_time};
use crate::servers::Endpoint;
pub(crate) use run::{Metric, Run};

use answers::{
    check_counter_batch, check_scaled, check_unary, factor_params, float_batch, float_values,
    int_params, one_row, payload_bytes,
};

/// Sizes of the heavier workloads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Values per round of the large exchange.
    pub(crate) large_values: usize,
    /// Rounds per large exchange session.
    pub(crate) large_rounds: usize,
    /// Rows per batch of the bulk producer.
    pub(crate) bulk_rows: usize,
    /// Batches per bulk stream.
    pub(crate) bulk_batches: usize,
}

/// What a unary answer must be.
#[derive(Debug, Clone)]
enum Expect {
    Void,
    Utf8(String),
    Float64(f64),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Job {
    Unary {
        method: &'static str,
        params: RecordBatch,
        expect: Expect,
    },
    /// `produce_n` or `produce_large_batches`: `batches` batches of `rows`
    /// rows, batch `k` holding `index = k*rows..`, `value = index * 10`.
    Produce {
        method: &'static str,
        params: RecordBatch,
        batches: usize,
        rows: usize,
    },
    /// `exchange_scale` by [`FACTOR`], `rounds` times the same input.
    Exchange {
        params: RecordBatch,
        rounds: usize,
        input: RecordBatch,
    },
}

/// The `exchange_scale` factor: doubling is exact in floating point, so
/// answers can be compared for equality.
pub(crate) const FACTOR: f64 = 2.0;

/// One workload.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) description: String,
    /// What one operation is called in labels: call, stream, session.
    pub(crate) op: &'static str,
    /// The numbers reported, the headline first.
    pub(crate) metrics: &'static [Metric],
    job: Job,
}

const UNARY_METRICS: &[Metric] = &[
    Metric::OpsPerSec,
    Metric::P50Us,
    Metric::P99Us,
    Metric::CpuUsPerOp,
];

/// Every workload, in report order.
pub(crate) fn all(sizes: Sizes) -> Result<Vec<Workload>> {
    let text = "hello, vgi-rpc bench";
    let blob: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let large_input: Vec<f64> = (0..sizes.large_values).map(|i| i as f64).collect();
    Ok(vec![
        Workload {
            name: "void_noop",
            description: "unary void_noop()".to_owned(),
            op: "call",
            metrics: UNARY_METRICS,
            job: Job::Unary {
                method: "void_noop",
                params: vgirpc_client::no_params(),
                expect: Expect::Void,
            },
        },
        Workload {
            name: "echo_string",
            description: format!("unary echo_string({text:?})"),
            op: "call",
            metrics: UNARY_METRICS,
            job: Job::Unary {
                method: "echo_string",
                params: one_row(vec![(
                    "value",
                    Arc::new(StringArray::from(vec![text])) as ArrayRef,
                )])?,
                expect: Expect::Utf8(text.to_owned()),
            },
        },
        Workload {
            name: "add_floats",
            description: "unary add_floats(1.5, 2.25)".to_owned(),
            op: "call",
            metrics: UNARY_METRICS,
            job: Job::Unary {
                method: "add_floats",
                params: one_row(vec![
                    ("a", Arc::new(Float64Array::from(vec![1.5])) as ArrayRef),
                    ("b", Arc::new(Float64Array::from(vec![2.25])) as ArrayRef),
                ])?,
                expect: Expect::Float64(3.75),
            },
        },
        Workload {
            name: "echo_bytes_64k",
            description: "unary echo_bytes(64 KiB)".to_owned(),
            op: "call",
            metrics: &[
                Metric::OpsPerSec,
                Metric::MbPerSec,
                Metric::P50Us,
                Metric::CpuUsPerOp,
            ],
            job: Job::Unary {
                method: "echo_bytes",
                params: one_row(vec![(
                    "data",
                    Arc::new(BinaryArray::from(vec![blob.as_slice()])) as ArrayRef,
                )])?,
                expect: Expect::Binary(blob),
            },
        },
        Workload {
            name: "produce_n_50",
            description: "produce_n(50): 50 one-row batches".to_owned(),
            op: "stream",
            metrics: &[Metric::MsPerOp, Metric::CpuMsPerOp, Metric::RequestsPerOp],
            job: Job::Produce {
                method: "produce_n",
                params: int_params(&[("count", 50)])?,
                batches: 50,
                rows: 1,
            },
        },
        Workload {
            name: "exchange_small_20",
            description: "exchange_scale: 20 rounds of 4 float64".to_owned(),
            op: "session",
            metrics: &[Metric::MsPerOp, Metric::CpuMsPerOp],
            job: Job::Exchange {
                params: factor_params()?,
                rounds: 20,
                input: float_batch(vec![1.0, 2.5, -3.0, 4.25])?,
            },
        },
        Workload {
            name: "exchange_large",
            description: format!(
                "exchange_scale: {} rounds of {} float64 ({:.1} MB each way)",
                sizes.large_rounds,
                sizes.large_values,
                sizes.large_values as f64 * 8.0 / 1e6
            ),
            op: "session",
            metrics: &[Metric::MbPerSec, Metric::MsPerOp, Metric::CpuMsPerOp],
            job: Job::Exchange {
                params: factor_params()?,
                rounds: sizes.large_rounds,
                input: float_batch(large_input)?,
            },
        },
        Workload {
            name: "produce_bulk",
            description: format!(
                "produce_large_batches({}, {}): {:.1} MB of int64",
                sizes.bulk_rows,
                sizes.bulk_batches,
                (sizes.bulk_rows * sizes.bulk_batches * 16) as f64 / 1e6
            ),
            op: "stream",
            metrics: &[Metric::MbPerSec, Metric::MsPerOp, Metric::CpuMsPerOp],
            job: Job::Produce {
                method: "produce_large_batches",
                params: int_params(&[
                    ("rows_per_batch", sizes.bulk_rows as i64),
                    ("batch_count", sizes.bulk_batches as i64),
                ])?,
                batches: sizes.bulk_batches,
                rows: sizes.bulk_rows,
            },
        },
    ])
}

/// Names of every workload: [`all`]'s, the spawn measurement, the HTTP
/// load test and edge, the answer externalized into S3, what Sentry and
/// OpenTelemetry add to a call, and the comparison with Arrow Flight.
pub(crate) fn names() -> Vec<&'static str> {
    vec![
        "spawn_first_reply",
        "void_noop",
        "echo_string",
        "add_floats",
        "echo_bytes_64k",
        "produce_n_50",
        "exchange_small_20",
        "exchange_large",
        "produce_bulk",
        "http_load",
        "http_edge",
        crate::s3::NAME,
        crate::observe::NAME,
        crate::flight::NAME,
    ]
}

/// The three small unary workloads, for the soak loop.
pub(crate) fn small_unary(workloads: &[Workload]) -> Vec<&Workload> {
    workloads
        .iter()
        .filter(|w| matches!(w.name, "void_noop" | "echo_string" | "add_floats"))
        .collect()
}

/// What a workload's operation sends and expects, for another RPC system
/// to do the same.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    /// A call with no parameters and no result.
    Void,
    /// A stream of `batches` counter batches of `rows` rows.
    Produce { batches: usize, rows: usize },
    /// `rounds` times `input` sent and answered doubled.
    Exchange {
        rounds: usize,
        input: &'a RecordBatch,
    },
}

impl Workload {
    /// Whether this is a unary workload (whose CPU and latency targets apply).
    pub(crate) fn is_unary(&self) -> bool {
        matches!(self.job, Job::Unary { .. })
    }

    /// This workload's [`Shape`]; `None` for the unary calls with
    /// parameters, which no other system is compared on.
    pub(crate) fn shape(&self) -> Option<Shape<'_>> {
        match &self.job {
            Job::Unary {
                expect: Expect::Void,
                ..
            } => Some(Shape::Void),
            Job::Unary { .. } => None,
            Job::Produce { batches, rows, .. } => Some(Shape::Produce {
                batches: *batches,
                rows: *rows,
            }),
            Job::Exchange { rounds, input, .. } => Some(Shape::Exchange {
                rounds: *rounds,
                input,
            }),
        }
    }

    /// One operation, answer checked; returns the payload bytes moved.
    pub(crate) fn op(&self, endpoint: &mut Endpoint) -> Result<u64> {
        let rpc = endpoint.rpc.as_mut();
        match &self.job {
            Job::Unary {
                method,
                params,
                expect,
            } => {
                let result = rpc.unary(method, params)?;
                check_unary(method, &result, expect)?;
                Ok((payload_bytes(params) + payload_bytes(&result)) as u64)
            }
            Job::Produce {
                method,
                params,
                batches,
                rows,
            } => {
                let mut seen = 0;
                let mut bytes = 0;
                rpc.produce(method, params, &mut |index, batch| {
                    check_counter_batch(&batch, index, *rows)
                        .with_context(|| format!("{method}() batch {index}"))?;
                    seen += 1;
                    bytes += payload_bytes(&batch);
                    Ok(())
                })?;
                ensure!(
                    seen == *batches,
                    "{method}() sent {seen} batches, not {batches}"
                );
                Ok(bytes as u64)
            }
            Job::Exchange {
                params,
                rounds,
                input,
            } => {
                let values = float_values(input)?;
                let mut bytes = 0;
                rpc.exchange(
                    "exchange_scale",
                    params,
                    *rounds,
                    input,
                    &mut |round, out| {
                        check_scaled(values, &out).with_context(|| format!("round {round}"))?;
                        bytes += payload_bytes(input) + payload_bytes(&out);
                        Ok(())
                    },
                )?;
                Ok(bytes as u64)
            }
        }
    }

    /// Repeats [`Workload::op`] until both `min_ops` operations were done and
    /// `budget` has passed, reading the server's CPU time around the loop.
    pub(crate) fn measure(
        &self,
        endpoint: &mut Endpoint,
        budget: Duration,
        min_ops: u64,
    ) -> Result<Run> {
        let client = std::process::id();
        let client_before = cpu_seconds(client).ok();
        let cpu_before = cpu_time(endpoint.pid).ok();
        let requests_before = endpoint.rpc.http_requests();
        let start = Instant::now();
        let mut ops = 0;
        let mut bytes = 0;
        let mut latencies_us = Vec::new();
        while ops < min_ops || start.elapsed() < budget {
            let op_start = Instant::now();
            bytes += self.op(endpoint)?;
            latencies_us.push(op_start.elapsed().as_secs_f64() * 1e6);
            ops += 1;
        }
        let wall_s = start.elapsed().as_secs_f64();
        let cpu_after = cpu_time(endpoint.pid).ok();
        let client_after = cpu_seconds(client).ok();
        let requests_after = endpoint.rpc.http_requests();
        let delta = |before: Option<f64>, after: Option<f64>| {
            before.zip(after).map(|(before, after)| after - before)
        };
        Ok(Run {
            ops,
            wall_s,
            cpu_s: delta(
                cpu_before.map(CpuTime::total_s),
                cpu_after.map(CpuTime::total_s),
            ),
            user_cpu_s: delta(
                cpu_before.map(|cpu| cpu.user_s),
                cpu_after.map(|cpu| cpu.user_s),
            ),
            client_cpu_s: delta(client_before, client_after),
            http_requests: requests_before
                .zip(requests_after)
                .map(|(before, after)| after - before),
            bytes,
            latencies_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Sizes {
        Sizes {
            large_values: 10,
            large_rounds: 2,
            bulk_rows: 10,
            bulk_batches: 2,
        }
    }

    #[test]
    fn names_list_every_workload() {
        let mut expected = vec!["spawn_first_reply"];
        expected.extend(all(sizes()).unwrap().iter().map(|w| w.name));
        expected.extend([
            "http_load",
            "http_edge",
            crate::s3::NAME,
            crate::observe::NAME,
            crate::flight::NAME,
        ]);
        assert_eq!(names(), expected);
    }
}
