//! Log and error batches (WIRE_PROTOCOL §8).
//!
//! Both are zero-row batches on the schema of the stream they travel in; the
//! payload is entirely in the message's custom metadata.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::{Map, Value as Json};

use crate::WireError;
use crate::metadata::{self, Metadata};

/// Severity of a log batch; `Exception` marks an error batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// An error that ends the call; clients raise it.
    Exception,
    /// A failure the server reported without ending the call.
    Error,
    /// Something the client should look at.
    Warn,
    /// Normal progress information.
    Info,
    /// Detail for debugging.
    Debug,
    /// Finest-grained detail.
    Trace,
}

impl Level {
    /// The wire spelling of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Exception => "EXCEPTION",
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = WireError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "EXCEPTION" => Level::Exception,
            "ERROR" => Level::Error,
            "WARN" => Level::Warn,
            "INFO" => Level::Info,
            "DEBUG" => Level::Debug,
            "TRACE" => Level::Trace,
            other => {
                return Err(WireError::Protocol(format!("unknown log level {other:?}")));
            }
        })
    }
}

/// A client-directed log message with optional structured extras.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Severity.
    pub level: Level,
    /// Human-readable text.
    pub message: String,
    /// Structured extras, sent as the `vgi_rpc.log_extra` JSON object.
    pub extra: Map<String, Json>,
}

impl LogRecord {
    /// A record without extras.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds one extra key-value pair.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Json>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// The metadata of the zero-row batch carrying this record.
    ///
    /// An `error_kind` extra is also hoisted to `vgi_rpc.error_kind`, so
    /// clients can match on it without parsing the JSON.
    pub fn to_metadata(&self) -> Metadata {
        let mut md = Metadata::new()
            .with(metadata::LOG_LEVEL, self.level.as_str())
            .with(metadata::LOG_MESSAGE, self.message.as_str());
        if !self.extra.is_empty() {
            md.insert(
                metadata::LOG_EXTRA,
                serde_json::to_string(&self.extra).unwrap_or_else(|_| "{}".into()),
            );
            if let Some(Json::String(kind)) = self.extra.get("error_kind") {
                md.insert(metadata::ERROR_KIND, kind.as_str());
            }
        }
        md
    }

    /// Parses a record from batch metadata; `None` unless both the level and
    /// message keys are present.
    pub fn from_metadata(md: &Metadata) -> Option<Self> {
        let level = md.get(metadata::LOG_LEVEL)?.parse().ok()?;
        let message = md.get(metadata::LOG_MESSAGE)?.to_owned();
        let extra = md
            .get(metadata::LOG_EXTRA)
            .and_then(|raw| serde_json::from_str::<Json>(raw).ok())
            .and_then(|json| match json {
                Json::Object(map) => Some(map),
                _ => None,
            })
            .unwrap_or_default();
        Some(Self {
            level,
            message,
            extra,
        })
    }
}

/// Longest traceback text sent on the wire; longer ones are cut.
pub const MAX_TRACEBACK_CHARS: usize = 16_000;

/// Longest piece of a peer's text (a method name, a version) quoted in an
/// error message.
pub const MAX_QUOTED_BYTES: usize = 256;

/// `text` as an error message may quote it: whole when short, otherwise
/// its first [`MAX_QUOTED_BYTES`] and a note of its full length, so a peer
/// cannot make an answer as large as what it sent.
pub fn quoted(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_QUOTED_BYTES {
        return Cow::Borrowed(text);
    }
    let mut end = MAX_QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// A server-side error as carried by an EXCEPTION batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Name of the error type (`ValueError`, `ProtocolError`, ...).
    pub error_type: String,
    /// The error's own message, without the type prefix.
    pub message: String,
    /// Formatted traceback or error chain, possibly empty.
    pub traceback: String,
    /// Stable machine-readable category (`session_lost`, ...), if any.
    pub error_kind: Option<String>,
}

impl ErrorInfo {
    /// An error of type `error_type` with `message`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            traceback: String::new(),
            error_kind: None,
        }
    }

    /// The EXCEPTION log record: the message reads `Type: message` and the
    /// extras follow the §8 `log_extra` structure.
    pub fn to_log_record(&self) -> LogRecord {
        let mut traceback = self.traceback.clone();
        if traceback.chars().count() > MAX_TRACEBACK_CHARS {
            traceback = traceback.chars().take(MAX_TRACEBACK_CHARS).collect();
            traceback.push_str("\n… <traceback truncated>");
        }
        if traceback.is_empty() {
            traceback = format!("{}: {}\n", self.error_type, self.message);
        }
        let mut record = LogRecord::new(
            Level::Exception,
            format!("{}: {}", self.error_type, self.message),
        )
        .with_extra("exception_type", self.error_type.as_str())
        .with_extra("exception_message", self.message.as_str())
        .with_extra("traceback", traceback)
        .with_extra("frames", Json::Array(Vec::new()));
        if let Some(kind) = &self.error_kind {
            record = record.with_extra("error_kind", kind.as_str());
        }
        record
    }

    /// Extracts the error from an EXCEPTION record (§8 client rules).
    pub fn from_log_record(record: &LogRecord) -> Self {
        let text = |key: &str| record.extra.get(key).and_then(Json::as_str);
        Self {
            error_type: text("exception_type").unwrap_or("EXCEPTION").to_owned(),
            message: text("exception_message")
                .map(str::to_owned)
                .unwrap_or_else(|| record.message.clone()),
            traceback: text("traceback").unwrap_or("").to_owned(),
            error_kind: text("error_kind").map(str::to_owned),
        }
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

/// A zero-row batch on `schema`, the carrier of log, error and pointer batches.
pub fn empty_batch(schema: &SchemaRef) -> RecordBatch {
    RecordBatch::new_empty(schema.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips_through_metadata() {
        let mut err = ErrorInfo::new("ValueError", "bad input");
        err.error_kind = Some("session_lost".into());
        let md = err.to_log_record().to_metadata();
        assert_eq!(md.get(metadata::LOG_LEVEL), Some("EXCEPTION"));
        assert_eq!(md.get(metadata::LOG_MESSAGE), Some("ValueError: bad input"));
        assert_eq!(md.get(metadata::ERROR_KIND), Some("session_lost"));
        let back = ErrorInfo::from_log_record(&LogRecord::from_metadata(&md).unwrap());
        assert_eq!(back.error_type, "ValueError");
        assert_eq!(back.message, "bad input");
        assert_eq!(back.error_kind.as_deref(), Some("session_lost"));
    }

    #[test]
    fn long_tracebacks_are_truncated() {
        let mut err = ErrorInfo::new("RuntimeError", "x");
        err.traceback = "y".repeat(MAX_TRACEBACK_CHARS + 10);
        let record = err.to_log_record();
        let tb = record.extra["traceback"].as_str().unwrap();
        assert!(tb.ends_with("<traceback truncated>"));
        assert!(tb.chars().count() < MAX_TRACEBACK_CHARS + 40);
    }

    #[test]
    fn extras_are_a_json_object() {
        let record = LogRecord::new(Level::Info, "hi").with_extra("source", "conformance");
        let md = record.to_metadata();
        assert_eq!(
            md.get(metadata::LOG_EXTRA),
            Some(r#"{"source":"conformance"}"#)
        );
        assert_eq!(LogRecord::from_metadata(&md), Some(record));
    }
}
