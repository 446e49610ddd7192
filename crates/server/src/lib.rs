//! Rust server core of vgi-rpc, an RPC framework in which every request,
//! response, log line and error is an Apache Arrow IPC stream.
//!
//! A service is a trait of plain Rust methods marked `#[vgirpc::service]`;
//! the macro derives the Arrow schemas, `__describe__` rows and dispatch.
//! Unary methods return values; stream methods return a [`Stream`] whose
//! state produces or exchanges Arrow [`RecordBatch`](arrow_array::RecordBatch)es.
//!
//! ```
//! use vgirpc::{CallContext, RpcError, Server, TransportKind};
//!
//! /// A tiny calculator.
//! #[vgirpc::service]
//! pub trait Calculator {
//!     /// Add two numbers.
//!     fn add(&self, a: f64, b: f64) -> Result<f64, RpcError>;
//!     /// Divide, refusing zero.
//!     fn divide(&self, ctx: &CallContext, a: f64, b: f64) -> Result<f64, RpcError>;
//! }
//!
//! struct Calc;
//!
//! impl Calculator for Calc {
//!     fn add(&self, a: f64, b: f64) -> Result<f64, RpcError> {
//!         Ok(a + b)
//!     }
//!     fn divide(&self, ctx: &CallContext, a: f64, b: f64) -> Result<f64, RpcError> {
//!         if b == 0.0 {
//!             return Err(RpcError::value_error("division by zero"));
//!         }
//!         ctx.info(format!("dividing {a} by {b}"));
//!         Ok(a / b)
//!     }
//! }
//!
//! let server = Server::new(CalculatorServer::new(Calc)).unwrap();
//! assert_eq!(server.service().protocol_name(), "Calculator");
//! // A transport hands the server a connection; here, an empty one.
//! server.serve(std::io::empty(), std::io::sink(), TransportKind::Pipe).unwrap();
//! ```
//!
//! Transports live in their own crates (`vgirpc-pipe` for stdin/stdout);
//! this crate only needs a [`std::io::Read`] and a [`std::io::Write`].

#![warn(missing_docs)]

mod active_stream;
mod answer;
mod auth;
mod call_span;
mod collector;
mod conform;
mod connection;
mod context;
mod error;
mod maybe_ready;
mod observe;
#[cfg(feature = "otel")]
pub mod otel;
mod persist;
#[cfg(feature = "sentry")]
pub mod sentry;
mod server;
mod service;
mod session;
mod side;
mod state;
mod stream;
pub mod transport;

pub use auth::AuthContext;
pub use collector::{OutputCollector, ResponseBudget};
pub use context::{CallContext, Peer, TransportKind, new_request_id, server_id, set_server_id};
pub use error::{RpcError, ServeError};
pub use maybe_ready::{BoxFuture, MaybeReady, block_on};
pub use observe::{AuthFailure, CallRecord, CallStats, CallStatus, DispatchHook};
pub use server::Server;
pub use service::{Outcome, Service};
pub use session::{SessionRef, SessionState};
pub use state::{
    AnnotatedBatch, AsyncExchangeState, AsyncProducerState, ExchangeState, ProducerState,
};
pub use stream::{NoHeader, Stream};
#[cfg(feature = "client")]
pub use vgirpc_client as client;
/// Turns a trait into a vgi-rpc service.
///
/// The trait is the service's contract: the method names are the RPC
/// names, parameter names are the Arrow column names of the request, and
/// the doc comments document the generated clients and the service's
/// description ([`wire::describe::MethodDescription::doc`], which the HTTP
/// describe page shows). `__describe__` carries no documentation: the
/// reference dropped it in describe version 4.
///
/// # Methods
///
/// Every method takes `&self` first and returns a `Result` whose error
/// converts into [`RpcError`] (its `error_type` and message reach the
/// client as an EXCEPTION batch). Any `std::error::Error + Send + Sync`
/// converts, named after its type (I/O errors by their kind:
/// `FileNotFoundError`, `PermissionError`, ...); so does `anyhow::Error`
/// (default feature `anyhow`, as a `RuntimeError` carrying its context
/// chain). Aliases that fix the error type are accepted wherever
/// `Result<T, E>` is: `anyhow::Result<T>`, `io::Result<T>`, or any alias
/// of your own whose name ends in `Result`:
///
/// | signature | kind | the client receives |
/// |---|---|---|
/// | `fn m(&self, ..) -> Result<T, E>` | unary | one value `T` |
/// | `fn m(&self, ..) -> Result<(), E>` | unary | nothing (a zero-row result) |
/// | `fn m(&self, ..) -> Result<Stream, E>` | producer or exchange stream | the batches of the [`Stream`] |
/// | `fn m(&self, ..) -> Result<Stream<H>, E>` | stream with a header | a header `H` first, then the batches |
///
/// Any of them may be an `async fn`, in the same trait as plain ones; the
/// trait then declares it as `fn m(..) -> impl Future<Output = ..> + Send`,
/// and implementations write `async fn` as usual. Async transports await
/// it; the pipe and Unix transports block their connection's thread on it,
/// on the caller's tokio runtime when there is one ([`block_on`]). Plain
/// methods run where the request was read, with no runtime involved. A
/// stream's state may be async as well ([`AsyncProducerState`],
/// [`AsyncExchangeState`]).
///
/// Parameters are plain names of any type with an Arrow mapping
/// ([`ArrowValue`]: `bool`, integers, floats, `String`, `Vec<u8>`,
/// `Vec<T>`, maps, `Option<T>`, chrono types, `#[derive(ArrowStruct)]`
/// structs and `#[derive(ArrowEnum)]` enums; the full table is in
/// [`wire::types`]). Unary results and stream headers follow the same
/// mapping. Besides them, a method may take one `&CallContext` anywhere in
/// its parameter list: it is not sent over the wire, and gives the method
/// its caller ([`CallContext::auth`]), logging to the client
/// ([`CallContext::info`] and friends) and sticky sessions.
///
/// `#[default(expr)]` on a parameter fills it in when a client omits it
/// (clients of other languages may; the typed clients generated here
/// always send every parameter). `expr` is anything that converts `Into`
/// the parameter's type; it is evaluated on every call that omits the
/// parameter, and once more when the server is built, for the description
/// ([`wire::describe::MethodDescription::param_defaults`]: the value as
/// Arrow renders it, strings quoted, `None` as `null`; like the docs, it
/// stays off the wire).
///
/// `#[vgirpc::service(crate = "path::to::vgirpc")]` names the crate when it
/// is not reachable as `vgirpc` (a renamed dependency, or a crate that
/// re-exports it); `#[stream_state(crate = "..")]` takes the same argument,
/// and the derives take `#[arrow(crate = "path::to::vgirpc::wire")]`.
///
/// An optional `fn on_serve_start(&self, kind: TransportKind) ->
/// Result<(), RpcError>` runs once when a transport starts serving, before
/// any request; without it the macro adds one that does nothing.
///
/// # What it generates
///
/// For `trait Shop`:
///
/// - **The trait itself**, with `Send + Sync + 'static` added to its
///   supertraits (implementations are shared by every connection), and
///   `async fn`s rewritten as above.
/// - **`ShopServer<T: Shop>`**: the [`Service`] that [`Server::new`]
///   serves. It holds the Arrow schemas and `__describe__` rows derived from
///   the signatures, with each method's docs and defaults, and dispatches
///   each request to `T`.
/// - **`ShopClient<T: Transport = SubprocessTransport>`** (with the default
///   feature `client`): a blocking typed client with one method per RPC
///   taking `&mut self`, Rust values in and out. Stream methods return a
///   [`client::TypedStream`] (an iterator of batches for producers;
///   `exchange` for exchanges).
/// - **`ShopAsyncClient`** (feature `client`): the same as async methods
///   on `&self` over a [`client::AsyncClient`]; it is `Clone`, so one client
///   serves many tasks.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
///
/// use arrow_array::Int64Array;
/// use arrow_schema::{DataType, Field, Schema};
/// use vgirpc::{
///     ArrowStruct, CallContext, OutputCollector, ProducerState, RpcError, Server, Stream,
/// };
///
/// /// A tiny shop.
/// #[vgirpc::service]
/// pub trait Shop {
///     /// The price of `quantity` items called `item`.
///     fn price(&self, item: String, #[default(1)] quantity: i64) -> Result<f64, RpcError>;
///     /// Who is asking.
///     async fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError>;
///     /// Counts down from `from`, one row per batch.
///     fn countdown(&self, from: i64) -> Result<Stream, RpcError>;
/// }
///
/// struct Store;
///
/// impl Shop for Store {
///     fn price(&self, item: String, quantity: i64) -> Result<f64, RpcError> {
///         match item.as_str() {
///             "apple" => Ok(0.5 * quantity as f64),
///             other => Err(RpcError::value_error(format!("we sell no {other}"))),
///         }
///     }
///
///     async fn whoami(&self, ctx: &CallContext) -> Result<String, RpcError> {
///         Ok(ctx.auth().principal_or_empty().to_owned())
///     }
///
///     fn countdown(&self, from: i64) -> Result<Stream, RpcError> {
///         let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
///         Ok(Stream::producer(schema, Countdown { next: from }))
///     }
/// }
///
/// /// A producer's state; over HTTP it travels to the client between
/// /// requests, hence `ArrowStruct` and `#[vgirpc::stream_state]`.
/// #[derive(Debug, Clone, Default, ArrowStruct)]
/// pub struct Countdown {
///     pub next: i64,
/// }
///
/// #[vgirpc::stream_state]
/// impl ProducerState for Countdown {
///     fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
///         if self.next <= 0 {
///             return out.finish();
///         }
///         out.emit_arrays(vec![Arc::new(Int64Array::from(vec![self.next]))])?;
///         self.next -= 1;
///         Ok(())
///     }
/// }
///
/// let server = Server::new(ShopServer::new(Store))?;
/// assert_eq!(server.service().protocol_name(), "Shop");
/// # Ok::<(), vgirpc::ServeError>(())
/// ```
///
/// Served with `vgirpc_pipe::serve_stdio(&server)`, the worker answers any
/// vgi-rpc client; `ShopClient::new(Client::spawn(worker_command)?)` calls
/// it with `shop.price("apple".into(), 3)?`. See `examples/` in the
/// repository for complete programs.
///
/// # Errors it reports
///
/// At compile time, on the offending item: an unknown argument to the
/// attribute, a method with a body, a generic method, a receiver other
/// than `&self`, a parameter that is a pattern rather than a name,
/// `#[default]` on the context, a return type that is not a `Result`, and
/// `Stream` with more than one header type. Types that never have an Arrow
/// form get one error each, with the fix: references (`&str`: use
/// `String`), tuples (use an `ArrowStruct`), arrays, `usize`/`isize` (use
/// `u64`/`i64`) and `char`. Any other type without an Arrow mapping fails
/// where it is used, saying what is supported and suggesting
/// `#[derive(ArrowStruct)]`.
#[doc(inline)]
pub use vgirpc_macros::service;
pub use vgirpc_macros::stream_state;
pub use vgirpc_macros::{ArrowEnum, ArrowStruct};
pub use vgirpc_wire as wire;
pub use vgirpc_wire::log::Level;
pub use vgirpc_wire::types::{
    ArrowStruct, ArrowValue, Decimal128, DictString, FixedBinary, LargeBinary, LargeString,
};

/// Re-exports of the Arrow crates the public API speaks in.
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_schema as schema;
}

#[doc(hidden)]
pub mod __private;

/// Expands to the items given when the `client` feature is on, and to
/// nothing without it: `#[service]` wraps the typed clients it generates in
/// it, since a feature of this crate cannot be tested by a `#[cfg]` in the
/// user's.
#[cfg(feature = "client")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_client {
    ($($item:item)*) => { $($item)* };
}

#[cfg(not(feature = "client"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_client {
    ($($item:item)*) => {};
}
