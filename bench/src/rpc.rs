//! The three call shapes the workloads need, over any client transport.
//!
//! Workloads talk to a server through [`Rpc`] rather than a concrete
//! `Client<T>`, so a transport whose client is not a byte-stream
//! [`Transport`] (HTTP, where every turn is a request) only needs its own
//! implementation of this trait to run every workload unchanged.

use anyhow::{Context as _, Result};
use arrow_array::RecordBatch;
use vgirpc_client::http::HttpTransport;
use vgirpc_client::{AsyncClient, Client, Transport};

/// A connection to one server, driven by one workload at a time.
pub(crate) trait Rpc {
    /// Calls a unary method and returns its result batch.
    fn unary(&mut self, method: &str, params: &RecordBatch) -> Result<RecordBatch>;

    /// Runs a producer stream to its end, handing every output batch to
    /// `each` in order.
    fn produce(
        &mut self,
        method: &str,
        params: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()>;

    /// Runs an exchange session of `rounds` turns, each sending `input` and
    /// handing the answer to `each`, then closes it.
    fn exchange(
        &mut self,
        method: &str,
        params: &RecordBatch,
        rounds: usize,
        input: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()>;

    /// HTTP requests sent so far, on HTTP connections.
    fn http_requests(&self) -> Option<u64> {
        None
    }
}

/// Our HTTP client, which also counts its requests.
pub(crate) struct HttpRpc(pub(crate) Client<HttpTransport>);

impl Rpc for HttpRpc {
    fn unary(&mut self, method: &str, params: &RecordBatch) -> Result<RecordBatch> {
        self.0.unary(method, params)
    }

    fn produce(
        &mut self,
        method: &str,
        params: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.0.produce(method, params, each)
    }

    fn exchange(
        &mut self,
        method: &str,
        params: &RecordBatch,
        rounds: usize,
        input: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.0.exchange(method, params, rounds, input, each)
    }

    fn http_requests(&self) -> Option<u64> {
        Some(self.0.transport().requests_sent())
    }
}

/// Our async client, one task at a time on a current-thread runtime: what
/// a call costs a tokio program beside the blocking client's cost.
pub(crate) struct AsyncRpc {
    runtime: tokio::runtime::Runtime,
    client: AsyncClient,
}

impl AsyncRpc {
    /// A client of the Unix socket at `path`, on one connection.
    pub(crate) fn connect_unix(path: &std::path::Path) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime")?;
        let client = runtime
            .block_on(AsyncClient::connect_unix_with(path, 1))
            .with_context(|| format!("connecting to {}", path.display()))?;
        Ok(Self { runtime, client })
    }
}

impl Rpc for AsyncRpc {
    fn unary(&mut self, method: &str, params: &RecordBatch) -> Result<RecordBatch> {
        let call = self.client.call(method, params);
        Ok(self
            .runtime
            .block_on(call)
            .with_context(|| format!("{method}()"))?
            .batch)
    }

    fn produce(
        &mut self,
        method: &str,
        params: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.runtime.block_on(async {
            let mut stream = self
                .client
                .stream(method, params)
                .await
                .with_context(|| format!("starting {method}()"))?;
            let mut index = 0;
            while let Some(batch) = stream
                .next_batch()
                .await
                .with_context(|| format!("{method}() batch {index}"))?
            {
                each(index, batch)?;
                index += 1;
            }
            stream
                .close()
                .await
                .with_context(|| format!("closing {method}()"))
        })
    }

    fn exchange(
        &mut self,
        method: &str,
        params: &RecordBatch,
        rounds: usize,
        input: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.runtime.block_on(async {
            let mut stream = self
                .client
                .stream(method, params)
                .await
                .with_context(|| format!("starting {method}()"))?;
            for round in 0..rounds {
                let output = stream
                    .exchange(input)
                    .await
                    .with_context(|| format!("{method}() round {round}"))?;
                each(round, output)?;
            }
            stream
                .close()
                .await
                .with_context(|| format!("closing {method}()"))
        })
    }
}

impl<T: Transport> Rpc for Client<T> {
    fn unary(&mut self, method: &str, params: &RecordBatch) -> Result<RecordBatch> {
        Ok(self
            .call(method, params)
            .with_context(|| format!("{method}()"))?
            .batch)
    }

    fn produce(
        &mut self,
        method: &str,
        params: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut stream = self
            .stream(method, params)
            .with_context(|| format!("starting {method}()"))?;
        let mut index = 0;
        while let Some(batch) = stream
            .next_batch()
            .with_context(|| format!("{method}() batch {index}"))?
        {
            each(index, batch)?;
            index += 1;
        }
        stream
            .close()
            .with_context(|| format!("closing {method}()"))?;
        Ok(())
    }

    fn exchange(
        &mut self,
        method: &str,
        params: &RecordBatch,
        rounds: usize,
        input: &RecordBatch,
        each: &mut dyn FnMut(usize, RecordBatch) -> Result<()>,
    ) -> Result<()> {
        let mut stream = self
            .stream(method, params)
            .with_context(|| format!("starting {method}()"))?;
        for round in 0..rounds {
            let output = stream
                .exchange(input)
                .with_context(|| format!("{method}() round {round}"))?;
            each(round, output)?;
        }
        stream
            .close()
            .with_context(|| format!("closing {method}()"))?;
        Ok(())
    }
}
