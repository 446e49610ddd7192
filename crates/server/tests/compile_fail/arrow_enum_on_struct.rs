#[derive(vgirpc::ArrowEnum)]
pub struct Shape {
    pub sides: i64,
}

fn main() {}
