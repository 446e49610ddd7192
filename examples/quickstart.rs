//! A first look at vgi-rpc: one small service, served over a pipe, a Unix
//! socket and HTTP, and called over each of them with the typed client the
//! service macro generates.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! It calls a unary method, reads a producer stream and drives an exchange
//! stream on every transport, prints what came back, then times a burst of
//! small calls over the Unix socket.

use std::error::Error;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use vgirpc::client::{Client, Transport};
use vgirpc::transport::NoSideChannels;
use vgirpc::{
    AnnotatedBatch, ArrowStruct, CallContext, ExchangeState, OutputCollector, ProducerState,
    RpcError, Server, Stream,
};
use vgirpc_http::{HttpConfig, HttpServer};
use vgirpc_pipe::UnixConfig;

/// A tiny shop: a price lookup, a countdown and a running total.
#[vgirpc::service]
pub trait Shop {
    /// The price of `quantity` items called `item`.
    fn price(&self, item: String, quantity: i64) -> Result<f64, RpcError>;
    /// Streams `from`, `from - 1`, ..., `1`: a producer, one row per batch.
    fn countdown(&self, from: i64) -> Result<Stream, RpcError>;
    /// Answers each batch of `amount`s with the total so far: an exchange.
    fn running_total(&self) -> Result<Stream, RpcError>;
}

struct Store;

impl Shop for Store {
    fn price(&self, item: String, quantity: i64) -> Result<f64, RpcError> {
        let unit = match item.as_str() {
            "apple" => 0.5,
            "pear" => 0.75,
            other => return Err(RpcError::value_error(format!("we sell no {other}"))),
        };
        Ok(unit * quantity as f64)
    }

    fn countdown(&self, from: i64) -> Result<Stream, RpcError> {
        Ok(Stream::producer(count_schema(), Countdown { next: from }))
    }

    fn running_total(&self) -> Result<Stream, RpcError> {
        Ok(Stream::exchange(
            amount_schema(),
            total_schema(),
            RunningTotal::default(),
        ))
    }
}

fn count_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
}

fn amount_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "amount",
        DataType::Float64,
        false,
    )]))
}

fn total_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "total",
        DataType::Float64,
        false,
    )]))
}

/// The countdown's state. Over HTTP it travels to the client between
/// requests, so it is an `ArrowStruct` and a `#[vgirpc::stream_state]`.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct Countdown {
    pub next: i64,
}

#[vgirpc::stream_state]
impl ProducerState for Countdown {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        if self.next <= 0 {
            return out.finish();
        }
        out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next]))])?;
        self.next -= 1;
        Ok(())
    }
}

/// The running total's state.
#[derive(Debug, Clone, Default, ArrowStruct)]
pub struct RunningTotal {
    pub total: f64,
}

#[vgirpc::stream_state]
impl ExchangeState for RunningTotal {
    fn exchange(
        &mut self,
        input: &AnnotatedBatch,
        out: &mut OutputCollector,
        _ctx: &CallContext,
    ) -> Result<(), RpcError> {
        let amounts = input
            .batch
            .column_by_name("amount")
            .and_then(|column| column.as_primitive_opt::<Float64Type>())
            .ok_or_else(|| RpcError::type_error("expected a float64 column 'amount'"))?;
        self.total += amounts.iter().flatten().sum::<f64>();
        out.emit_arrays(vec![Arc::new(Float64Array::from(vec![self.total]))])
    }
}

/// Calls every kind of method once over `shop` and prints the answers.
fn tour<T: Transport>(transport: &str, shop: &mut ShopClient<T>) -> Result<(), Box<dyn Error>> {
    let price = shop.price("apple".into(), 3)?;
    show(transport, "price(\"apple\", 3)", format!("= {price}"));

    let mut counted: Vec<i64> = Vec::new();
    for batch in shop.countdown(3)? {
        counted.extend(batch?.column(0).as_primitive::<Int64Type>().values().iter());
    }
    show(transport, "countdown(3)", format!("= {counted:?}"));

    let mut totals = Vec::new();
    let mut running = shop.running_total()?;
    for amounts in [vec![1.0, 2.0], vec![0.5]] {
        let input =
            RecordBatch::try_new(amount_schema(), vec![Arc::new(Float64Array::from(amounts))])?;
        let answer = running.exchange(&input)?;
        totals.push(answer.column(0).as_primitive::<Float64Type>().value(0));
    }
    running.close()?;
    drop(running);
    show(
        transport,
        "running_total([1, 2], [0.5])",
        format!("= {totals:?}"),
    );

    let refused = shop.price("kiwi".into(), 1).unwrap_err();
    show(transport, "price(\"kiwi\", 1)", format!("-> {refused}"));
    Ok(())
}

/// One line of the tour: where, what was called, what came back.
fn show(transport: &str, call: &str, outcome: String) {
    println!("{transport:>4}: {call:<28} {outcome}");
}

fn main() -> Result<(), Box<dyn Error>> {
    let server = Server::new(ShopServer::new(Store))?;

    // Started again by the pipe tour below: serve stdin/stdout and exit.
    if std::env::args().nth(1).as_deref() == Some("--serve-pipe") {
        vgirpc_pipe::serve_stdio(&server)?;
        return Ok(());
    }

    // A pipe: the client starts the worker process and talks over its
    // stdin and stdout. Here the worker is this program itself.
    let mut worker = Command::new(std::env::current_exe()?);
    worker.arg("--serve-pipe");
    let mut shop = ShopClient::new(Client::spawn(worker)?);
    tour("pipe", &mut shop)?;
    shop.into_dynamic().close()?;

    // A Unix socket, served from a thread of this process.
    let dir = std::env::temp_dir().join(format!("vgirpc-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("shop.sock");
    let mut config = UnixConfig::new(&socket);
    config.threaded = true;
    let (listening, ready) = std::sync::mpsc::channel();
    let (stop_unix, unix_stopped) = tokio::sync::oneshot::channel::<()>();
    let unix_server = server.clone();
    let unix = std::thread::spawn(move || {
        let ready = move |_: &std::path::Path| {
            let _ = listening.send(());
        };
        let stop = async {
            let _ = unix_stopped.await;
        };
        vgirpc_pipe::serve_unix_until(&unix_server, &config, NoSideChannels, ready, stop)
    });
    ready.recv()?;
    let mut shop = ShopClient::new(Client::connect_unix(&socket)?);
    tour("unix", &mut shop)?;

    // How fast: a burst of small calls on the same connection.
    let calls = 2_000;
    let started = Instant::now();
    for i in 0..calls {
        shop.price("pear".into(), i)?;
    }
    let elapsed = started.elapsed();
    let per_call = elapsed.as_secs_f64() * 1e6 / calls as f64;
    show(
        "unix",
        &format!("{calls} x price(..)"),
        format!(
            "in {:.0} ms: {per_call:.0} µs per call",
            elapsed.as_secs_f64() * 1e3
        ),
    );
    drop(shop);
    let _ = stop_unix.send(());
    unix.join().map_err(|_| "the unix server panicked")??;
    let _ = std::fs::remove_dir_all(&dir);

    // HTTP, served by hyper on a tokio runtime.
    let runtime = tokio::runtime::Runtime::new()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}", listener.local_addr()?);
    let http = {
        let _inside = runtime.enter();
        HttpServer::new(server, HttpConfig::new())?
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(http.serve(listener, async {
        let _ = http_stopped.await;
    }));
    let mut shop = ShopClient::new(Client::connect_http(&url)?);
    tour("http", &mut shop)?;
    drop(shop);
    let _ = stop_http.send(());
    runtime.block_on(serving)??;
    Ok(())
}
