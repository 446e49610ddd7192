//! The vgi-rpc wire format.
//!
//! Every vgi-rpc request, response, log line and error is an Apache Arrow IPC
//! stream; several streams follow each other on one byte stream. This crate
//! reads and writes those streams with per-batch custom metadata, defines the
//! `vgi_rpc.*` metadata keys, maps Rust types to Arrow types, builds log and
//! error batches, classifies received batches and builds `__describe__`.
//!
//! It does no I/O beyond [`std::io::Read`] and [`std::io::Write`] and knows
//! nothing of transports or async runtimes.

pub mod classify;
pub mod describe;
mod error;
pub mod ipc;
pub mod log;
pub mod metadata;
pub mod request;
pub mod types;
pub mod value;

pub use error::{Result, WireError};
