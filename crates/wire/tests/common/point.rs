//! The conformance `Point` dataclass (vgi_rpc/conformance/_types.py) in
//! Rust.

use vgirpc_macros::ArrowStruct;

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
pub(crate) struct Point {
    pub(crate) x: f64,
    pub(crate) y: f64,
}
