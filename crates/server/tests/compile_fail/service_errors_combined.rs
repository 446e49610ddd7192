// Every faulty method is reported, not only the first.
#[vgirpc::service]
pub trait Shop {
    fn price(&mut self) -> Result<f64, vgirpc::RpcError>;
    fn stock(&self) -> i64;
}

fn main() {}
