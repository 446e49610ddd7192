#[derive(vgirpc::ArrowEnum)]
pub enum Shape {
    Circle(f64),
    Square,
}

fn main() {}
