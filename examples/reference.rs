//! A typed Rust client for a service written in Python: the reference
//! vgi-rpc package's conformance worker. The trait below declares the part
//! of its interface this program calls; nothing implements it here, the
//! generated `ConformanceServiceClient` is all a caller needs.
//!
//! ```text
//! pip install vgi-rpc==0.17.1
//! cargo run --example reference -- vgi-rpc-conformance --describe
//! ```
//!
//! The arguments are the worker's command line (`cargo xtask ci` passes the
//! one it installed); `--describe` turns on the worker's introspection.

use std::error::Error;
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use vgirpc::client::Client;
use vgirpc::{ArrowStruct, RpcError, Stream};

/// A point, as the Python service's dataclass defines it.
#[derive(Debug, Clone, PartialEq, ArrowStruct)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

/// Methods of the reference `ConformanceService`, with the Rust types that
/// match its Python annotations (`str` is `String`, `float` is `f64`,
/// `list[int]` is `Vec<i64>`, a dataclass is an `ArrowStruct`).
#[vgirpc::service]
pub trait ConformanceService {
    /// Echo a string.
    fn echo_string(&self, value: String) -> Result<String, RpcError>;
    /// Add two floats.
    fn add_floats(&self, a: f64, b: f64) -> Result<f64, RpcError>;
    /// Echo a point.
    fn echo_point(&self, point: Point) -> Result<Point, RpcError>;
    /// Produce `count` batches of one row each.
    fn produce_n(&self, count: i64) -> Result<Stream, RpcError>;
    /// Raise a ValueError with `message`.
    fn raise_value_error(&self, message: String) -> Result<String, RpcError>;
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut words = std::env::args().skip(1);
    let mut command = match words.next() {
        Some(program) => Command::new(program),
        None => {
            let mut default = Command::new("vgi-rpc-conformance");
            default.arg("--describe");
            default
        }
    };
    command.args(words);

    let mut service = ConformanceServiceClient::new(Client::spawn(command)?);
    let description = service.dynamic().describe()?;
    println!(
        "{} serves {} methods",
        description.protocol_name,
        description.methods.len()
    );

    println!("echo_string: {}", service.echo_string("from Rust".into())?);
    println!("add_floats: {}", service.add_floats(1.5, 2.25)?);
    let point = service.echo_point(Point { x: 3.0, y: -4.0 })?;
    println!("echo_point: ({}, {})", point.x, point.y);

    let mut values = Vec::new();
    for batch in service.produce_n(4)? {
        let batch = batch?;
        let column = batch
            .column_by_name("value")
            .ok_or("produce_n's batches have a value column")?;
        values.extend(column.as_primitive::<Int64Type>().values().iter().copied());
    }
    println!("produce_n: {values:?}");

    // Python exceptions arrive typed, with their message.
    match service.raise_value_error("no thanks".into()) {
        Err(err) => println!("raise_value_error: {err}"),
        Ok(answer) => return Err(format!("expected an error, got {answer:?}").into()),
    }

    service.into_dynamic().close()?;
    Ok(())
}
