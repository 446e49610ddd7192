#[vgirpc::service]
pub trait Shop {
    fn price(&mut self) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
