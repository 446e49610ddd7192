pub struct Ticks;

#[vgirpc::stream_state]
impl Ticks {
    pub fn new() -> Self {
        Ticks
    }
}

fn main() {}
