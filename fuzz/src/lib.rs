//! What the fuzz targets share: the allocation budget and time limit every
//! input is held to, the bounded conformance service the request and HTTP
//! targets serve, the in-process HTTP transport, and token sealing.
//!
//! Each target in `fuzz_targets/` is one entry point that reads bytes a
//! peer controls; `docs/reliability.md` says how to run them.

pub mod budget;
pub mod http;
pub mod service;
pub mod tokens;
