#[vgirpc::service]
pub trait Shop {
    fn price(&self, quantity: usize) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
