#[vgirpc::service(name = "x")]
pub trait Shop {
    fn price(&self) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
