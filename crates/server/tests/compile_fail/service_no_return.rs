#[vgirpc::service]
pub trait Shop {
    fn restock(&self);
}

fn main() {}
