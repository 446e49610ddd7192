//! The Flight side of each paired workload: arrow-rs's `FlightClient` on a
//! one-thread runtime (as our client's calls are sequential on one), every
//! answer checked with the checks our workloads use.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use arrow_array::RecordBatch;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightClient, Ticket};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};
use tonic::transport::Channel;

use super::{NOOP, encoder};
use crate::procstat::cpu_seconds;
use crate::servers::Listener;
use crate::workloads::answers::{check_counter_batch, check_scaled, float_values, payload_bytes};
use crate::workloads::{Run, Shape};

/// What the Flight peer does for a workload of `shape`, for the report.
pub(crate) fn describe(shape: Shape<'_>) -> String {
    match shape {
        Shape::Void => format!("do_action({NOOP:?}), empty body, no results"),
        Shape::Produce { batches, rows } => {
            format!("do_get of {batches} batches × {rows} row(s)")
        }
        Shape::Exchange { rounds, .. } => {
            format!("do_exchange, {rounds} rounds on one call")
        }
    }
}

/// A connection to a running Flight server.
pub(crate) struct FlightPeer {
    runtime: tokio::runtime::Runtime,
    client: FlightClient,
    /// The server's process id, for CPU readings.
    pub(crate) pid: u32,
    /// Where the server listens, for the concurrent callers' connections.
    pub(crate) url: String,
    /// Stops the server when the peer drops. Declared last so the
    /// connection closes first.
    _listener: Listener,
}

impl std::fmt::Debug for FlightPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightPeer")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A client on a new connection to `url`, with gRPC's 4 MB message limit
/// lifted for the 8 MB exchange batches.
pub(crate) async fn connect(url: &str) -> Result<FlightClient> {
    let channel = Channel::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connecting to the Flight server at {url}"))?;
    let inner = FlightServiceClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    Ok(FlightClient::new_from_inner(inner))
}

impl FlightPeer {
    /// Starts `vgirpc-bench flight-server` and connects to it.
    pub(crate) fn launch() -> Result<Self> {
        let program = std::env::current_exe().context("finding this program")?;
        let mut command = Command::new(program);
        command.arg("flight-server");
        let listener = Listener::start(command, "PORT:", None)?;
        let url = format!("http://127.0.0.1:{}", listener.ready);
        listener.wait_for_tcp(&url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("the Flight client's runtime")?;
        let client = runtime.block_on(connect(&url))?;
        Ok(Self {
            runtime,
            client,
            pid: listener.child.id(),
            url,
            _listener: listener,
        })
    }

    /// The Flight call equivalent to one operation of a workload of
    /// `shape`, answer checked; returns the payload bytes moved.
    pub(crate) fn op(&mut self, shape: Shape<'_>) -> Result<u64> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            match shape {
                Shape::Void => noop(client).await.map(|()| 0),
                Shape::Produce { batches, rows } => produce(client, batches, rows).await,
                Shape::Exchange { rounds, input } => exchange(client, rounds, input).await,
            }
        })
    }

    /// Unmeasured operations for at least `warmup`.
    pub(crate) fn warm_up(&mut self, shape: Shape<'_>, warmup: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            self.op(shape)?;
            if start.elapsed() >= warmup {
                return Ok(());
            }
        }
    }

    /// [`FlightPeer::op`] repeated as [`crate::workloads::Workload::measure`]
    /// repeats ours: at least `min_ops` times and for at least `budget`.
    pub(crate) fn measure(
        &mut self,
        shape: Shape<'_>,
        budget: Duration,
        min_ops: u64,
    ) -> Result<Run> {
        let client = std::process::id();
        let client_before = cpu_seconds(client).ok();
        let cpu_before = cpu_seconds(self.pid).ok();
        let start = Instant::now();
        let mut ops = 0;
        let mut bytes = 0;
        let mut latencies_us = Vec::new();
        while ops < min_ops || start.elapsed() < budget {
            let op_start = Instant::now();
            bytes += self.op(shape)?;
            latencies_us.push(op_start.elapsed().as_secs_f64() * 1e6);
            ops += 1;
        }
        let wall_s = start.elapsed().as_secs_f64();
        let cpu_after = cpu_seconds(self.pid).ok();
        let client_after = cpu_seconds(client).ok();
        let delta = |before: Option<f64>, after: Option<f64>| {
            before.zip(after).map(|(before, after)| after - before)
        };
        Ok(Run {
            ops,
            wall_s,
            cpu_s: delta(cpu_before, cpu_after),
            user_cpu_s: None,
            client_cpu_s: delta(client_before, client_after),
            http_requests: None,
            bytes,
            latencies_us,
        })
    }
}

/// `do_action(NOOP)` with an empty body, answered by no result: one
/// request message and an empty reply stream is the least a Flight call
/// can carry, as `void_noop` is the least of ours.
async fn noop(client: &mut FlightClient) -> Result<()> {
    let action = Action::new(NOOP, "");
    let results: Vec<_> = client.do_action(action).await?.try_collect().await?;
    ensure!(
        results.is_empty(),
        "do_action({NOOP:?}) returned {} results",
        results.len()
    );
    Ok(())
}

/// `do_get` of `batches` batches of `rows` rows, as our producers send.
async fn produce(client: &mut FlightClient, batches: usize, rows: usize) -> Result<u64> {
    let ticket = Ticket::new(format!("{rows},{batches}"));
    let mut stream = client.do_get(ticket).await?;
    let mut seen = 0;
    let mut bytes = 0;
    while let Some(batch) = stream.try_next().await? {
        check_counter_batch(&batch, seen, rows).with_context(|| format!("do_get batch {seen}"))?;
        seen += 1;
        bytes += payload_bytes(&batch);
    }
    ensure!(seen == batches, "do_get sent {seen} batches, not {batches}");
    Ok(bytes as u64)
}

/// One `do_exchange` call, `rounds` times `input` sent and its doubled
/// answer awaited before the next is sent.
async fn exchange(client: &mut FlightClient, rounds: usize, input: &RecordBatch) -> Result<u64> {
    let values = float_values(input)?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel::<RecordBatch>();
    // Queued before the call so the call's request stream has its schema
    // and first batch to send at once.
    sender.send(input.clone())?;
    let requests = stream::unfold(receiver, |mut receiver| async move {
        let batch = receiver.recv().await?;
        Some((Ok(batch), receiver))
    });
    let mut replies = client.do_exchange(encoder().build(requests)).await?;
    let mut bytes = 0;
    for round in 0..rounds {
        if round > 0 {
            sender.send(input.clone())?;
        }
        let Some(out) = replies.next().await else {
            bail!("do_exchange ended after {round} of {rounds} rounds");
        };
        let out = out?;
        check_scaled(values, &out).with_context(|| format!("round {round}"))?;
        bytes += payload_bytes(input) + payload_bytes(&out);
    }
    // Ending the request stream ends the call, as closing ours does.
    drop(sender);
    ensure!(
        replies.try_next().await?.is_none(),
        "do_exchange answered more than {rounds} rounds"
    );
    Ok(bytes as u64)
}
