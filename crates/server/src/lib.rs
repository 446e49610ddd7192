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

mod active_stream;
mod answer;
mod auth;
mod collector;
mod conform;
mod connection;
mod context;
mod error;
mod maybe_ready;
mod observe;
#[cfg(feature = "otel")]
mod otel;
mod persist;
mod server;
mod service;
mod session;
mod side;
mod state;
mod stream;

pub use active_stream::{ActiveStream, Step};
pub use answer::{Answer, FailureKind, error_batch};
pub use auth::AuthContext;
pub use collector::OutputCollector;
pub use connection::Served;
pub use context::{CallContext, Peer, TransportKind, new_request_id, server_id, set_server_id};
pub use error::{RpcError, ServeError};
pub use maybe_ready::{BoxFuture, MaybeReady, block_on};
pub use observe::{CallRecord, CallStats, CallStatus, DispatchHook};
pub use persist::SavedStream;
pub use server::{Call, OpenStream, Server};
pub use service::{Outcome, Service};
pub use session::{SessionAction, SessionHost, SessionRef, SessionState, StateGuard};
pub use side::{NoSideChannels, SideChannel, SideChannels};
pub use state::{
    AnnotatedBatch, AsyncExchangeState, AsyncProducerState, ExchangeState, ProducerState,
};
pub use stream::{NoHeader, Stream};
#[cfg(feature = "client")]
pub use vgirpc_client as client;
pub use vgirpc_macros::stream_state;
pub use vgirpc_macros::{ArrowEnum, ArrowStruct, service};
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
