#[vgirpc::service]
pub trait Greeter {
    fn greet(&self, name: &str, tags: &[String]) -> Result<String, vgirpc::RpcError>;
}

fn main() {}
