//! The conformance `BoundingBox` dataclass (vgi_rpc/conformance/_types.py)
//! in Rust.

use vgirpc_macros::ArrowStruct;

use super::point::Point;

#[derive(Debug, Clone, PartialEq, ArrowStruct)]
#[arrow(crate = "vgirpc_wire")]
pub(crate) struct BoundingBox {
    pub(crate) top_left: Point,
    pub(crate) bottom_right: Point,
    pub(crate) label: String,
}
