#[derive(vgirpc::ArrowStruct)]
pub struct Point {
    #[arrow(rename = "")]
    pub x: f64,
}

fn main() {}
