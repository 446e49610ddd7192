//! Reading the continuation token a reply hands out.

use vgirpc::wire::metadata;

use super::reply::Reply;

impl Reply {
    /// The continuation token, if the reply hands one out.
    pub(crate) fn stream_token(&self) -> Option<String> {
        self.batches()
            .iter()
            .find_map(|b| b.metadata.get(metadata::STREAM_STATE).map(str::to_owned))
    }
}
