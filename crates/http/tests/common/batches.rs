//! Reading the Arrow IPC streams of a reply's body.

use vgirpc::wire::ipc::{IpcBatch, StreamReader};

use super::reply::Reply;

impl Reply {
    /// Every batch of every IPC stream in the body.
    pub(crate) fn batches(&self) -> Vec<IpcBatch> {
        let mut cursor = std::io::Cursor::new(self.body().to_vec());
        let mut out = Vec::new();
        while let Some(mut reader) =
            StreamReader::try_open(&mut cursor, Default::default()).unwrap()
        {
            while let Some(batch) = reader.next_batch().unwrap() {
                out.push(batch);
            }
        }
        out
    }
}
