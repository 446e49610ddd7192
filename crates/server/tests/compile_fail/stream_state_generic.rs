use vgirpc::{CallContext, OutputCollector, ProducerState, RpcError};

pub struct Ticks<T>(T);

#[vgirpc::stream_state]
impl<T: Send + 'static> ProducerState for Ticks<T> {
    fn produce(&mut self, out: &mut OutputCollector, _ctx: &CallContext) -> Result<(), RpcError> {
        out.finish()
    }
}

fn main() {}
