//! The `decimal128(20, 4)` the conformance types use.

use vgirpc_wire::types::Decimal128;

pub(crate) type Dec = Decimal128<20, 4>;

pub(crate) fn dec(unscaled: i128) -> Dec {
    Decimal128(unscaled)
}
