#[vgirpc::service]
pub trait Geometry {
    fn distance(&self, from: (f64, f64), to: [f64; 2]) -> Result<char, vgirpc::RpcError>;
}

fn main() {}
