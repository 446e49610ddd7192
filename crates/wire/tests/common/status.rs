//! The conformance `Status` enum (vgi_rpc/conformance/_types.py) in Rust.

use vgirpc_macros::ArrowEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ArrowEnum)]
#[arrow(crate = "vgirpc_wire", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Status {
    Pending,
    Active,
    Closed,
}
