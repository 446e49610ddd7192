#[vgirpc::service]
pub trait Shop {
    fn price(&self) -> f64;
}

fn main() {}
