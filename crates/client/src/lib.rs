//! Client side of vgi-rpc, an RPC framework in which every request,
//! response, log line and error is an Apache Arrow IPC stream.
//!
//! [`Client`] calls methods by name with Arrow record batches: unary calls
//! ([`Client::call`]), producer and exchange streams ([`Client::stream`],
//! [`StreamCall`]) and introspection ([`Client::describe`]). Services
//! declared with `#[vgirpc::service]` also get a typed `<Trait>Client` that
//! wraps this one with plain Rust parameters and results.
//!
//! A client runs over a [`Transport`]:
//!
//! | transport | made by | reaches |
//! |---|---|---|
//! | [`SubprocessTransport`] | [`Client::spawn`] | a worker it starts, over its stdin/stdout |
//! | [`UnixTransport`] | [`Client::connect_unix`] | a worker listening on a Unix socket |
//! | [`ShmTransport`] | [`Client::with_shm`] | either of those, with batches passed through a shared-memory segment the client owns |
//! | [`PipeTransport`] | [`Client::from_io`] | any reader/writer pair |
//! | `http::HttpTransport` | `Client::connect_http` | an HTTP server (feature `http`), with sticky sessions (`http::StickySession`) |
//!
//! The first four are byte-stream [`Connection`]s speaking the pipe
//! protocol; over HTTP every call is a request of its own. Typed clients
//! work over all of them.
//!
//! ```no_run
//! use std::process::Command;
//! use std::sync::Arc;
//!
//! use arrow_array::{RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use vgirpc_client::Client;
//!
//! let mut client = Client::spawn(Command::new("vgi-conformance-worker"))?
//!     .with_log_callback(|log| eprintln!("[{}] {}", log.level, log.message));
//! let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, false)]));
//! let params = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["hi"]))])?;
//! let answer = client.call("echo_string", &params)?;
//! println!("{:?}", answer.batch.column(0));
//!
//! for method in client.describe()?.methods {
//!     println!("{} ({})", method.name, method.method_type.as_str());
//! }
//! client.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod async_client;
mod client;
mod error;
#[cfg(feature = "http")]
pub mod http;
mod log;
mod pipe;
mod shm;
mod stream;
mod subprocess;
mod trace;
mod transport;
mod unix;

pub use async_client::{AsyncClient, AsyncStream, AsyncTypedStream};
pub use client::{CallResult, Client, no_params};
pub use error::{ClientError, SERVER_DRAINING, SESSION_LOST, WorkerExit};
pub use log::ServerLog;
pub use pipe::PipeStream;
pub use shm::{ShmSegment, ShmTransport};
pub use stream::{StreamCall, TypedStream};
pub use subprocess::{
    KillHandle, StderrMode, SubprocessOptions, SubprocessTransport, WorkerStdin, WorkerStdout,
};
pub use transport::{Connection, PipeTransport, Transport};
pub use unix::{ShutdownHandle, UnixTransport};
pub use vgirpc_wire as wire;

#[doc(hidden)]
pub mod __private;
