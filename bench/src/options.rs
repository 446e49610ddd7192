//! The command line, and the plan of run counts, durations and sizes it
//! chooses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::callers::LoadPlan;
use crate::raw::RawPlan;
use crate::servers::TransportKind;
use crate::workloads::{self, Sizes};

pub(crate) const USAGE: &str = "\
usage: vgirpc-bench --ours WORKER [--reference WORKER] [options]

  --ours PATH          our worker binary (vgi-conformance-worker)
  --reference PATH     the reference worker (vgi-rpc-conformance); without it
                       only ours is measured
  --transport NAME     pipe, unix, shm, http or unix-async (repeatable; default: all)
  --reference-s3-server PATH
                       the reference's HTTP server on S3 storage
                       (conformance/reference_s3_server.py), run by the
                       reference worker's Python; with AWS_ENDPOINT_URL and
                       AWS_BUCKET naming moto's emulator, the http transport
                       adds s3_externalized_256mb
  --quick              small sizes, one short run: finishes in seconds
  --runs N             runs per workload and server (default 5)
  --workload NAME      run only this workload (repeatable; e.g. void_noop,
                       spawn_first_reply, http_load, http_edge,
                       observe_overhead, flight); handy under a profiler
  --soak               instead of the benchmark: a long unary loop on our
                       worker, reporting peak RSS growth
  --soak-calls N       calls in the soak loop (default 1000000)
  --out DIR            where results go (default target/bench)";

/// Command-line options.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) ours: PathBuf,
    pub(crate) reference: Option<PathBuf>,
    pub(crate) reference_s3_server: Option<PathBuf>,
    pub(crate) transports: Vec<TransportKind>,
    /// Workload names to run; empty means all.
    pub(crate) workloads: Vec<String>,
    pub(crate) quick: bool,
    runs: Option<usize>,
    pub(crate) soak: bool,
    pub(crate) soak_calls: u64,
    pub(crate) out: PathBuf,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Option<Self>> {
        let mut ours = None;
        let mut options = Options {
            ours: PathBuf::new(),
            reference: None,
            reference_s3_server: None,
            transports: Vec::new(),
            workloads: Vec::new(),
            quick: false,
            runs: None,
            soak: false,
            soak_calls: 1_000_000,
            out: PathBuf::from("target/bench"),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .with_context(|| format!("{arg} needs a value"))
            };
            match arg.as_str() {
                "--ours" => ours = Some(PathBuf::from(value()?)),
                "--reference" => options.reference = Some(PathBuf::from(value()?)),
                "--reference-s3-server" => {
                    options.reference_s3_server = Some(PathBuf::from(value()?));
                }
                "--transport" => options.transports.push(TransportKind::parse(&value()?)?),
                "--workload" => options.workloads.push(value()?),
                "--quick" => options.quick = true,
                "--runs" => {
                    let runs: usize = value()?.parse().context("--runs takes a number")?;
                    if runs == 0 {
                        bail!("--runs must be at least 1");
                    }
                    options.runs = Some(runs);
                }
                "--soak" => options.soak = true,
                "--soak-calls" => {
                    options.soak_calls = value()?.parse().context("--soak-calls takes a number")?;
                }
                "--out" => options.out = PathBuf::from(value()?),
                "-h" | "--help" => return Ok(None),
                other => bail!("unknown argument {other:?}"),
            }
        }
        options.ours = ours.context("--ours is required")?;
        let known = workloads::names();
        if let Some(unknown) = options
            .workloads
            .iter()
            .find(|w| !known.contains(&w.as_str()))
        {
            bail!("unknown workload {unknown:?} (known: {})", known.join(", "));
        }
        if options.transports.is_empty() {
            options.transports = TransportKind::ALL.to_vec();
        }
        Ok(Some(options))
    }
}

/// How long and how big everything is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) runs: usize,
    /// Each measured run repeats its operation at least this long...
    pub(crate) budget: Duration,
    /// ...and at least this many times.
    pub(crate) min_ops: u64,
    /// Unmeasured operations before a workload's first run, per server.
    pub(crate) warmup: Duration,
    pub(crate) sizes: Sizes,
    pub(crate) raw: RawPlan,
    pub(crate) load: LoadPlan,
}

impl Plan {
    pub(crate) fn new(options: &Options) -> Self {
        if options.quick {
            let runs = options.runs.unwrap_or(1);
            Plan {
                runs,
                budget: Duration::from_millis(20),
                min_ops: 1,
                warmup: Duration::ZERO,
                sizes: Sizes {
                    large_values: 100_000,
                    large_rounds: 2,
                    bulk_rows: 10_000,
                    bulk_batches: 4,
                },
                raw: RawPlan {
                    round_trips: 1_000,
                    bulk_bytes: 32 << 20,
                    runs,
                },
                load: LoadPlan {
                    warmup: Duration::from_millis(50),
                    duration: Duration::from_millis(200),
                },
            }
        } else {
            let runs = options.runs.unwrap_or(5);
            Plan {
                runs,
                budget: Duration::from_secs(1),
                min_ops: 3,
                warmup: Duration::from_millis(200),
                sizes: Sizes {
                    large_values: 1_000_000,
                    large_rounds: 16,
                    bulk_rows: 100_000,
                    bulk_batches: 50,
                },
                raw: RawPlan {
                    round_trips: 20_000,
                    bulk_bytes: 512 << 20,
                    runs,
                },
                load: LoadPlan {
                    warmup: Duration::from_millis(200),
                    duration: Duration::from_secs(1),
                },
            }
        }
    }
}
