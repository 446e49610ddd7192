pub struct Point {
    pub x: f64,
    pub y: f64,
}

#[vgirpc::service]
pub trait Geometry {
    fn norm(&self, point: Point) -> Result<f64, vgirpc::RpcError>;
}

fn main() {}
