//! What the server says besides data: the log messages it sends during a
//! call, and where a client hands them.

use serde_json::{Map, Value as Json};
use vgirpc_wire::log::{Level, LogRecord};
use vgirpc_wire::metadata::{self, Metadata};

/// A log message the server sent to the client during a call.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLog {
    /// Severity (never [`Level::Exception`]: those become errors).
    pub level: Level,
    /// The message text.
    pub message: String,
    /// Structured extras the server attached.
    pub extra: Map<String, Json>,
    /// Identity of the server process that logged, if sent.
    pub server_id: Option<String>,
    /// Correlation id of the call, if sent.
    pub request_id: Option<String>,
}

impl ServerLog {
    pub(crate) fn new(record: LogRecord, md: &Metadata) -> Self {
        Self {
            level: record.level,
            message: record.message,
            extra: record.extra,
            server_id: md.get(metadata::SERVER_ID).map(str::to_owned),
            request_id: md.get(metadata::REQUEST_ID).map(str::to_owned),
        }
    }
}

/// Receives every log message the server sends.
pub(crate) type LogCallback = Box<dyn FnMut(&ServerLog) + Send>;
