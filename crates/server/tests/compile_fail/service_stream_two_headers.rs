use vgirpc::{RpcError, Stream};

#[vgirpc::service]
pub trait Shop {
    fn stock(&self) -> Result<Stream<i64, i64>, RpcError>;
}

fn main() {}
