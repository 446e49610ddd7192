use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde_json::Value as Json;
use vgirpc_wire::log::{Level, LogRecord};

/// The transport binding a server is serving on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Standard input/output of a worker process (also the shared-memory side channel).
    Pipe,
    /// A Unix domain socket.
    Unix,
    /// Stateless HTTP.
    Http,
}

impl TransportKind {
    /// Lowercase name as used in logs (`pipe`, `unix`, `http`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Pipe => "pipe",
            TransportKind::Unix => "unix",
            TransportKind::Http => "http",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// This process's server identity: 12 hex characters, fixed for the
/// lifetime of the process so every log line of one worker agrees.
pub fn server_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| random_hex(6))
}

/// A fresh 16-hex-character request id.
pub fn new_request_id() -> String {
    random_hex(8)
}

/// What a method knows about the call it is serving, and its channel for
/// client-directed log messages.
pub struct CallContext {
    request_id: String,
    method: String,
    transport: TransportKind,
    logs: Mutex<Vec<LogRecord>>,
}

impl fmt::Debug for CallContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallContext")
            .field("request_id", &self.request_id)
            .field("method", &self.method)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// A context for one call of `method`.
    pub fn new(
        request_id: impl Into<String>,
        method: impl Into<String>,
        transport: TransportKind,
    ) -> Self {
        Self {
            request_id: request_id.into(),
            method: method.into(),
            transport,
            logs: Mutex::new(Vec::new()),
        }
    }

    /// Correlation id of this request.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Identity of this server process.
    pub fn server_id(&self) -> &'static str {
        server_id()
    }

    /// Name of the method being called.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The transport the call arrived on.
    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    /// Sends a log message to the client.
    ///
    /// `Level::Exception` is reserved for errors; return an
    /// [`RpcError`](crate::RpcError) instead.
    pub fn log(&self, level: Level, message: impl Into<String>) {
        self.push(LogRecord::new(level, message));
    }

    /// Sends a log message with structured extras to the client.
    pub fn log_with<K, V>(
        &self,
        level: Level,
        message: impl Into<String>,
        extra: impl IntoIterator<Item = (K, V)>,
    ) where
        K: Into<String>,
        V: Into<Json>,
    {
        let mut record = LogRecord::new(level, message);
        for (k, v) in extra {
            record.extra.insert(k.into(), v.into());
        }
        self.push(record);
    }

    /// [`Level::Trace`] shorthand for [`CallContext::log`].
    pub fn trace(&self, message: impl Into<String>) {
        self.log(Level::Trace, message);
    }

    /// [`Level::Debug`] shorthand for [`CallContext::log`].
    pub fn debug(&self, message: impl Into<String>) {
        self.log(Level::Debug, message);
    }

    /// [`Level::Info`] shorthand for [`CallContext::log`].
    pub fn info(&self, message: impl Into<String>) {
        self.log(Level::Info, message);
    }

    /// [`Level::Warn`] shorthand for [`CallContext::log`].
    pub fn warn(&self, message: impl Into<String>) {
        self.log(Level::Warn, message);
    }

    /// [`Level::Error`] shorthand for [`CallContext::log`].
    pub fn error(&self, message: impl Into<String>) {
        self.log(Level::Error, message);
    }

    fn push(&self, record: LogRecord) {
        self.logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(record);
    }

    /// Takes the log messages queued so far, in order.
    pub(crate) fn take_logs(&self) -> Vec<LogRecord> {
        std::mem::take(
            &mut *self
                .logs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_is_stable_and_twelve_hex_chars() {
        let id = server_id();
        assert_eq!(id.len(), 12);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(id, server_id());
        assert_eq!(new_request_id().len(), 16);
    }

    #[test]
    fn logs_keep_order_and_extras() {
        let ctx = CallContext::new("r", "m", TransportKind::Pipe);
        ctx.debug("one");
        ctx.log_with(Level::Info, "two", [("source", "test")]);
        let logs = ctx.take_logs();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[1].extra["source"], "test");
        assert!(ctx.take_logs().is_empty());
    }
}
