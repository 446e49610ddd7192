#[derive(vgirpc::ArrowStruct)]
pub struct Point {
    #[arrow(name = "x_coordinate")]
    pub x: f64,
}

fn main() {}
