//! The conformance `ConformanceHeader` dataclass
//! (vgi_rpc/conformance/_types.py) in Rust.

use vgirpc_macros::ArrowStruct;

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
pub(crate) struct ConformanceHeader {
    pub(crate) total_expected: i64,
    pub(crate) description: String,
}
