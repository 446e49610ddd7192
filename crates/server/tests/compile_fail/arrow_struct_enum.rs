#[derive(vgirpc::ArrowStruct)]
pub enum Colour {
    Red,
    Green,
}

fn main() {}
