//! The reference vgi-rpc `ConformanceService`, implemented with `vgirpc`.
//!
//! The binary `vgi-conformance-worker` serves it; the reference Python
//! conformance suite drives that worker to judge wire compatibility. The
//! library form lets Rust tests call the same service in-process.

pub mod probe;
pub mod service;
pub mod states;
pub mod types;
