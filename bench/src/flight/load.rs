//! Many concurrent Flight callers, each on a connection of its own, as
//! `http_load` runs many keep-alive connections against our worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use arrow_flight::{Action, FlightClient};
use bytes::Bytes;
use futures::TryStreamExt as _;

use super::ECHO;
use super::client::connect;
use crate::load::{LoadPlan, TEXT};
use crate::procstat::cpu_seconds;
use crate::workloads::Run;

/// Longest the callers may take to finish their last call after a run.
const STRAGGLER_GRACE: Duration = Duration::from_secs(30);

/// What the callers are told to do.
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// One caller's count over the measured window.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    latencies_us: Vec<f64>,
}

/// `do_action(ECHO, TEXT)` back to back until told to stop, each reply
/// checked; calls completed while measuring are counted.
async fn caller(mut client: FlightClient, phase: Arc<AtomicU8>) -> Result<Tally> {
    let body = Bytes::from_static(TEXT.as_bytes());
    let mut tally = Tally::default();
    while phase.load(Ordering::Relaxed) != STOPPING {
        let start = Instant::now();
        let replies: Vec<Bytes> = client
            .do_action(Action::new(ECHO, body.clone()))
            .await?
            .try_collect()
            .await?;
        let elapsed = start.elapsed();
        ensure!(
            replies.as_slice() == [body.clone()],
            "do_action({ECHO:?}) answered {replies:?}"
        );
        if phase.load(Ordering::Relaxed) == MEASURING {
            tally.calls += 1;
            tally.latencies_us.push(elapsed.as_secs_f64() * 1e6);
        }
    }
    Ok(tally)
}

/// Runs the concurrent callers, on a multi-thread runtime of their own.
#[derive(Debug)]
pub(crate) struct FlightLoad {
    runtime: tokio::runtime::Runtime,
    plan: LoadPlan,
}

impl FlightLoad {
    /// Callers that warm up and measure as `plan` says.
    pub(crate) fn new(plan: LoadPlan) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("the Flight load runtime")?;
        Ok(Self { runtime, plan })
    }

    /// One run of `callers` connections to the Flight server at `url`
    /// (process `pid`): warmed up, then measured for the plan's duration.
    pub(crate) fn run(&self, url: &str, pid: u32, callers: usize) -> Result<Run> {
        self.runtime
            .block_on(load_run(url, pid, callers, self.plan))
    }
}

async fn load_run(url: &str, pid: u32, callers: usize, plan: LoadPlan) -> Result<Run> {
    let phase = Arc::new(AtomicU8::new(WARMING));
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let client = connect(url).await?;
        tasks.push(tokio::spawn(caller(client, Arc::clone(&phase))));
    }
    tokio::time::sleep(plan.warmup).await;
    let generator = std::process::id();
    let generator_before = cpu_seconds(generator).ok();
    let server_before = cpu_seconds(pid).ok();
    let start = Instant::now();
    phase.store(MEASURING, Ordering::Relaxed);
    tokio::time::sleep(plan.duration).await;
    phase.store(STOPPING, Ordering::Relaxed);
    let wall_s = start.elapsed().as_secs_f64();
    let server_after = cpu_seconds(pid).ok();
    let generator_after = cpu_seconds(generator).ok();
    let mut run = Run {
        ops: 0,
        wall_s,
        cpu_s: server_before.zip(server_after).map(|(b, a)| a - b),
        client_cpu_s: generator_before.zip(generator_after).map(|(b, a)| a - b),
        http_requests: None,
        bytes: 0,
        latencies_us: Vec::new(),
    };
    for (index, task) in tasks.into_iter().enumerate() {
        let tally = tokio::time::timeout(STRAGGLER_GRACE, task)
            .await
            .context("a Flight caller did not finish after the run")?
            .context("a Flight caller panicked")?
            .with_context(|| format!("Flight caller {index} of {callers}"))?;
        run.ops += tally.calls;
        run.latencies_us.extend(tally.latencies_us);
    }
    ensure!(run.ops > 0, "no Flight call was answered in {wall_s:.2} s");
    Ok(run)
}
