//! Many concurrent Flight callers, each on a connection of its own, as
//! `http_load` runs many keep-alive connections against our worker.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use arrow_flight::{Action, FlightClient};
use bytes::Bytes;
use futures::TryStreamExt as _;

use super::ECHO;
use super::client::connect;
use crate::callers::{self, Caller, LoadPlan};
use crate::load::TEXT;
use crate::workloads::Run;

/// One connection calling `do_action(ECHO, TEXT)`.
struct Echo {
    client: FlightClient,
    body: Bytes,
}

impl Caller for Echo {
    async fn call(&mut self) -> Result<Duration> {
        let start = Instant::now();
        let replies: Vec<Bytes> = self
            .client
            .do_action(Action::new(ECHO, self.body.clone()))
            .await?
            .try_collect()
            .await?;
        let latency = start.elapsed();
        ensure!(
            replies.as_slice() == [self.body.clone()],
            "do_action({ECHO:?}) answered {replies:?}"
        );
        Ok(latency)
    }
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
        self.runtime.block_on(async {
            let mut echoes = Vec::with_capacity(callers);
            for _ in 0..callers {
                echoes.push(Echo {
                    client: connect(url).await?,
                    body: Bytes::from_static(TEXT.as_bytes()),
                });
            }
            callers::run(echoes, pid, self.plan).await
        })
    }
}
