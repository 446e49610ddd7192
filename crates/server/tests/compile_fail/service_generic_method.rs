#[vgirpc::service]
pub trait Shop {
    fn price<T>(&self, item: T) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
