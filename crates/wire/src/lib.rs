//! The vgi-rpc wire format.
//!
//! Every vgi-rpc request, response, log line and error is an Apache Arrow IPC
//! stream; several streams follow each other on one byte stream. This crate
//! reads and writes those streams with per-batch custom metadata, defines the
//! `vgi_rpc.*` metadata keys, maps Rust types to Arrow types, builds log and
//! error batches, classifies received batches, builds `__describe__` and lays
//! out shared-memory segments.
//!
//! It does no I/O beyond [`std::io::Read`] and [`std::io::Write`] and knows
//! nothing of transports or async runtimes.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, RecordBatch};
//! use arrow_schema::{DataType, Field, Schema};
//! use vgirpc_wire::ipc::{read_stream_bytes, write_stream_bytes};
//! use vgirpc_wire::request::Request;
//!
//! // A request for `add(a=1.0, b=2.0)`: one row, method and version in the
//! // batch's custom metadata (WIRE_PROTOCOL §5).
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("a", DataType::Float64, false),
//!     Field::new("b", DataType::Float64, false),
//! ]));
//! let params = RecordBatch::try_new(schema.clone(), vec![
//!     Arc::new(Float64Array::from(vec![1.0])),
//!     Arc::new(Float64Array::from(vec![2.0])),
//! ])?;
//! let bytes = write_stream_bytes(&schema, [(&params, &Request::metadata_for("add"))])?;
//!
//! let (_, mut batches) = read_stream_bytes(&bytes)?;
//! let request = Request::from_batch(batches.remove(0))?;
//! assert_eq!(request.method, "add");
//! assert_eq!(request.params, params);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod classify;
pub mod describe;
mod error;
pub mod ipc;
pub mod log;
pub mod metadata;
pub mod pyarrow;
pub mod request;
pub mod shm;
pub mod types;
pub mod value;

pub use error::{Result, WireError};
