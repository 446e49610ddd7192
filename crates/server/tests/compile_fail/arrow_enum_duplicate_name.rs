#[derive(vgirpc::ArrowEnum)]
pub enum Shape {
    #[arrow(rename = "Square")]
    Circle,
    Square,
}

fn main() {}
