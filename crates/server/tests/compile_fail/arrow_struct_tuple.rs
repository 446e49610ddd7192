#[derive(vgirpc::ArrowStruct)]
pub struct Point(f64, f64);

fn main() {}
