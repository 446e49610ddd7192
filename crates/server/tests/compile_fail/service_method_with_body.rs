#[vgirpc::service]
pub trait Shop {
    fn price(&self) -> Result<f64, vgirpc::RpcError> {
        Ok(1.0)
    }
}

fn main() {}
