#[derive(vgirpc::ArrowStruct)]
pub struct Point {
    #[arrow(rename = "y")]
    pub x: f64,
    pub y: f64,
}

fn main() {}
