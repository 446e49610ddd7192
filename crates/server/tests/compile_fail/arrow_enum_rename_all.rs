#[derive(vgirpc::ArrowEnum)]
#[arrow(rename_all = "kebab-case")]
pub enum Shape {
    Circle,
    Square,
}

fn main() {}
