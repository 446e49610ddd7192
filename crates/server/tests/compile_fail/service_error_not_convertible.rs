pub struct NotAnError;

#[vgirpc::service]
pub trait Shop {
    fn price(&self) -> Result<f64, NotAnError>;
}

fn main() {}
