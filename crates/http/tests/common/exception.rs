//! Reading the error a reply's EXCEPTION batch carries.

use vgirpc::wire::log::{ErrorInfo, LogRecord};
use vgirpc::wire::metadata;

use super::reply::Reply;

impl Reply {
    /// The error an EXCEPTION batch carries, if there is one.
    pub(crate) fn error(&self) -> Option<ErrorInfo> {
        self.batches()
            .into_iter()
            .find(|b| b.metadata.get(metadata::LOG_LEVEL) == Some("EXCEPTION"))
            .map(|b| ErrorInfo::from_log_record(&LogRecord::from_metadata(&b.metadata).unwrap()))
    }
}
