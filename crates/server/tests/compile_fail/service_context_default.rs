use vgirpc::{CallContext, RpcError};

#[vgirpc::service]
pub trait Shop {
    fn price(&self, #[default(1)] ctx: &CallContext) -> Result<f64, RpcError>;
}

fn main() {}
