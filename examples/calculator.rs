//! The README's calculator, whole: the service, a worker serving it on
//! stdin/stdout, the blocking typed client that spawns the worker, and the
//! async typed client shared by 64 tasks.
//!
//! ```text
//! cargo run --example calculator                      # spawns itself as the worker
//! cargo run --example calculator -- worker            # the worker alone, for any vgi-rpc client
//! cargo run --example calculator -- http 127.0.0.1:0  # the service over HTTP; prints its URL
//! ```
//!
//! Struct parameters can be given to the `vgi-rpc` CLI as JSON:
//!
//! ```text
//! vgi-rpc --cmd 'target/debug/examples/calculator worker' call translate 'point={"x": 1, "y": 2}' dx=0.5
//! ```

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::Int64Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_schema::{DataType, Field, Schema};
use vgirpc::client::{AsyncClient, Client};
use vgirpc::{ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream};
use vgirpc_http::{HttpConfig, HttpServer, ShutdownSignals};

/// A tiny calculator.
#[vgirpc::service]
pub trait Calculator {
    /// Add two numbers.
    fn add(&self, a: f64, b: f64) -> Result<f64, RpcError>;
    /// Count from zero, one batch per tick.
    fn count(&self, ctx: &CallContext, limit: i64) -> Result<Stream, RpcError>;
    /// Move a point; with no offsets, the point comes back as it was sent.
    fn translate(
        &self,
        point: Point,
        #[default(0.0)] dx: f64,
        #[default(0.0)] dy: f64,
    ) -> Result<Point, RpcError>;
}

/// A point in the plane: a struct parameter and result, which travels as
/// one Arrow row.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

struct Calc;

impl Calculator for Calc {
    fn add(&self, a: f64, b: f64) -> Result<f64, RpcError> {
        Ok(a + b)
    }

    fn count(&self, ctx: &CallContext, limit: i64) -> Result<Stream, RpcError> {
        // Logs travel to the client beside the data.
        ctx.info(format!("counting to {limit}"));
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        Ok(Stream::producer(schema, Counter { next: 0, limit }))
    }

    fn translate(&self, point: Point, dx: f64, dy: f64) -> Result<Point, RpcError> {
        Ok(Point {
            x: point.x + dx,
            y: point.y + dy,
        })
    }
}

/// Where a count stands: one row per step until `limit`.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct Counter {
    pub next: i64,
    pub limit: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Counter {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.next >= self.limit {
            return out.finish();
        }
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next]))])?;
        self.next += 1;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        // A worker: serves until stdin closes or SIGTERM/SIGINT arrives.
        Some("worker") => {
            let server = Server::new(CalculatorServer::new(Calc))?;
            vgirpc_pipe::serve_stdio(&server)?;
            return Ok(());
        }
        Some("http") => return serve_http(&args.next().unwrap_or("127.0.0.1:8000".into())),
        _ => {}
    }

    // The blocking client: each call waits for its answer.
    let client =
        Client::spawn(worker()?)?.with_log_callback(|log| println!("server says: {}", log.message));
    let mut calc = CalculatorClient::new(client);
    println!("add(1, 2) = {}", calc.add(1.0, 2.0)?);
    let moved = calc.translate(Point { x: 1.0, y: 2.0 }, 0.5, 0.0)?;
    println!("translate((1, 2), 0.5, 0) = ({}, {})", moved.x, moved.y);
    for batch in calc.count(3)? {
        let batch = batch?;
        println!(
            "count: {}",
            batch.column(0).as_primitive::<Int64Type>().value(0)
        );
    }
    calc.into_dynamic().close()?;

    // The async client: calls take `&self`, so clones serve many tasks; a
    // worker process answers them one after another.
    let runtime = tokio::runtime::Runtime::new()?;
    let total = runtime.block_on(async {
        let calc = CalculatorAsyncClient::new(AsyncClient::spawn(worker()?).await?);
        let tasks: Vec<_> = (0..64_i32)
            .map(|i| {
                let calc = calc.clone();
                tokio::spawn(async move { calc.add(f64::from(i), 1.0).await })
            })
            .collect();
        let mut total = 0.0;
        for task in tasks {
            total += task.await??;
        }
        Ok::<f64, Box<dyn Error>>(total)
    })?;
    println!("64 tasks added up to {total}");
    Ok(())
}

/// Serves the calculator over HTTP at `addr` until SIGTERM or SIGINT, first
/// printing its URL (with port 0, the port the system chose).
fn serve_http(addr: &str) -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let signals = ShutdownSignals::install()?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let http = HttpServer::new(Server::new(CalculatorServer::new(Calc))?, HttpConfig::new())?;
        println!("http://{}", listener.local_addr()?);
        http.serve_until_signalled(listener, signals, Duration::ZERO)
            .await?;
        Ok(())
    })
}

/// This program again, as a worker.
fn worker() -> std::io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("worker");
    Ok(command)
}
