//! The run both load tests share, ours over HTTP and Arrow Flight's: many
//! callers sending requests back to back, warmed up, then measured for a
//! fixed window, with the server's and this generator's CPU read around it.
//!
//! What a request is belongs to each test; this module only keeps the
//! callers going and counts what they complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};

use crate::procstat::cpu_seconds;
use crate::workloads::Run;

/// How long each load run lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadPlan {
    /// Unmeasured load on fresh connections before each run.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) duration: Duration,
}

/// One of the concurrent callers: a connection, or a stream of one.
pub(crate) trait Caller: Send + 'static {
    /// One request, its answer checked. Returns the time from sending to
    /// the whole answer received: what a latency counts, leaving out the
    /// wait for the connection to be free and the check.
    fn call(&mut self) -> impl Future<Output = Result<Duration>> + Send;
}

/// Longest a run may take past its end for in-flight requests to finish.
const STRAGGLER_GRACE: Duration = Duration::from_secs(30);

/// What the callers are told to do.
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

/// What one caller saw in the measured window.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    latencies_us: Vec<f64>,
}

/// `caller`'s requests back to back until `phase` says stop; those
/// answered while measuring are counted.
async fn until_stopped(mut caller: impl Caller, phase: Arc<AtomicU8>) -> Result<Tally> {
    let mut tally = Tally::default();
    while phase.load(Ordering::Relaxed) != STOPPING {
        let latency = caller.call().await?;
        if phase.load(Ordering::Relaxed) == MEASURING {
            tally.requests += 1;
            tally.latencies_us.push(latency.as_secs_f64() * 1e6);
        }
    }
    Ok(tally)
}

/// One run of `callers` against the server process `pid`: warmed up for
/// `plan.warmup`, then measured for `plan.duration`. Each caller is
/// dropped, closing its connection, when its last request is answered.
pub(crate) async fn run(callers: Vec<impl Caller>, pid: u32, plan: LoadPlan) -> Result<Run> {
    let count = callers.len();
    let phase = Arc::new(AtomicU8::new(WARMING));
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|caller| tokio::spawn(until_stopped(caller, Arc::clone(&phase))))
        .collect();
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
        user_cpu_s: None,
        client_cpu_s: generator_before.zip(generator_after).map(|(b, a)| a - b),
        http_requests: None,
        bytes: 0,
        latencies_us: Vec::new(),
    };
    let finished = tokio::time::timeout(STRAGGLER_GRACE, join_all(tasks))
        .await
        .with_context(|| format!("requests still unanswered {STRAGGLER_GRACE:?} after the run"))?;
    for (index, tally) in finished.into_iter().enumerate() {
        let tally = tally
            .context("a caller's task panicked")?
            .with_context(|| format!("caller {index} of {count}"))?;
        run.ops += tally.requests;
        run.latencies_us.extend(tally.latencies_us);
    }
    ensure!(run.ops > 0, "no request was answered in {wall_s:.2} s");
    Ok(run)
}

/// Awaits every task in turn: they run concurrently, so the order costs
/// nothing.
async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await);
    }
    results
}
