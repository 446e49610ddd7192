//! The reference vgi-rpc `ConformanceService`, implemented with `vgirpc`.
//!
//! The binary `vgi-conformance-worker` serves it; the reference Python
//! conformance suite drives that worker to judge wire compatibility. The
//! library form lets Rust tests call the same service in-process, and
//! [`client_suite`] (the binary `client_conformance`) judges the Rust
//! client against both the reference worker and ours.

pub mod client_suite;
pub mod observe;
pub mod probe;
pub mod reference;
pub mod service;
pub mod states;
pub mod types;
