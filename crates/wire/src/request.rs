//! Request batches (WIRE_PROTOCOL §5) and their validation (§13).

use arrow_array::RecordBatch;

use crate::ipc::IpcBatch;
use crate::log::{ErrorInfo, quoted};
use crate::metadata::{self, Metadata};
use crate::{Result, WireError};

/// A validated request: the method to call and its one-row parameter batch.
#[derive(Debug, Clone)]
pub struct Request {
    /// Target method name.
    pub method: String,
    /// The parameter batch: one column per parameter, one row.
    pub params: RecordBatch,
    /// The request batch's full custom metadata (trace context, SHM segment...).
    pub metadata: Metadata,
}

impl Request {
    /// Client-supplied correlation id, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.metadata.get(metadata::REQUEST_ID)
    }

    /// Validates the first batch of a request stream.
    ///
    /// Checks run in the reference order: method key, then version, then the
    /// row count (only enforced when there are parameters).
    pub fn from_batch(batch: IpcBatch) -> Result<Self> {
        let IpcBatch {
            batch,
            metadata: md,
        } = batch;
        let method = md
            .get(metadata::METHOD)
            .ok_or_else(|| {
                WireError::Protocol(format!(
                    "Missing '{}' in request batch custom_metadata. Each request batch must carry \
                     the method name as a UTF-8 string under that key.",
                    metadata::METHOD
                ))
            })?
            .to_owned();
        match md.get(metadata::REQUEST_VERSION) {
            None => {
                return Err(WireError::Version(format!(
                    "Missing '{}' in request batch custom_metadata; set it to '{}'.",
                    metadata::REQUEST_VERSION,
                    metadata::PROTOCOL_VERSION
                )));
            }
            Some(v) if v != metadata::PROTOCOL_VERSION => {
                return Err(WireError::Version(format!(
                    "Unsupported request version '{}', expected '{}'.",
                    quoted(v),
                    metadata::PROTOCOL_VERSION
                )));
            }
            Some(_) => {}
        }
        if batch.num_columns() > 0 && batch.num_rows() != 1 {
            return Err(WireError::Protocol(format!(
                "Expected 1 row in request batch, got {}. Each parameter is a column and the \
                 batch must have exactly one row.",
                batch.num_rows()
            )));
        }
        Ok(Self {
            method,
            params: batch,
            metadata: md,
        })
    }

    /// Builds the metadata a client attaches to a request for `method`.
    pub fn metadata_for(method: &str) -> Metadata {
        Metadata::new()
            .with(metadata::METHOD, method)
            .with(metadata::REQUEST_VERSION, metadata::PROTOCOL_VERSION)
    }
}

/// Maps a request-level wire error to the error a server reports for it,
/// using the error type names clients of the reference match on.
pub fn request_error_info(err: &WireError) -> ErrorInfo {
    match err {
        WireError::Version(msg) => ErrorInfo::new("VersionError", msg.clone()),
        WireError::Protocol(msg) => ErrorInfo::new("RpcError", format!("ProtocolError: {msg}")),
        other => ErrorInfo::new("ArrowInvalid", with_causes(other)),
    }
}

/// `err`'s message followed by each of its causes, so the peer learns what
/// was wrong with its bytes and not only that something was.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn params(rows: usize) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let values: Vec<i64> = (0..rows as i64).collect();
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values))]).unwrap()
    }

    #[test]
    fn accepts_a_well_formed_request() {
        let md = Request::metadata_for("echo_int").with(metadata::REQUEST_ID, "abc");
        let req = Request::from_batch(IpcBatch {
            batch: params(1),
            metadata: md,
        })
        .unwrap();
        assert_eq!(req.method, "echo_int");
        assert_eq!(req.request_id(), Some("abc"));
    }

    #[test]
    fn rejects_missing_method() {
        let md = Metadata::new().with(metadata::REQUEST_VERSION, "1");
        let err = Request::from_batch(IpcBatch {
            batch: params(1),
            metadata: md,
        })
        .unwrap_err();
        assert!(matches!(err, WireError::Protocol(_)));
        assert_eq!(request_error_info(&err).error_type, "RpcError");
        assert!(
            request_error_info(&err)
                .message
                .starts_with("ProtocolError")
        );
    }

    #[test]
    fn rejects_missing_and_wrong_versions() {
        for md in [
            Metadata::new().with(metadata::METHOD, "m"),
            Request::metadata_for("m").with(metadata::REQUEST_VERSION, "2"),
        ] {
            let err = Request::from_batch(IpcBatch {
                batch: params(1),
                metadata: md,
            })
            .unwrap_err();
            assert!(matches!(err, WireError::Version(_)), "{err:?}");
            assert_eq!(request_error_info(&err).error_type, "VersionError");
        }
    }

    #[test]
    fn rejects_wrong_row_count_only_with_parameters() {
        let err = Request::from_batch(IpcBatch {
            batch: params(2),
            metadata: Request::metadata_for("m"),
        })
        .unwrap_err();
        assert!(err.to_string().contains("Expected 1 row"));
        let no_params = RecordBatch::new_empty(Arc::new(Schema::empty()));
        assert!(
            Request::from_batch(IpcBatch {
                batch: no_params,
                metadata: Request::metadata_for("m"),
            })
            .is_ok()
        );
    }
}
