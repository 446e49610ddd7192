#[vgirpc::service]
pub trait Shop {
    fn price(item: String) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
