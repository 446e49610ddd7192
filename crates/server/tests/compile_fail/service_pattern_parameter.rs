#[vgirpc::service]
pub trait Shop {
    fn price(&self, (item, quantity): (String, i64)) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
